# SPDX-License-Identifier: MIT
"""The fetch daemon: an "office" tern instance (127.0.0.3) collects the
POP3 accounts an "ISP" tern instance (127.0.0.2, with its POP3 login
services) holds for it, over pop3s and STLS with a certificate from a CA
made here. What a user sees: the office users' maildirs, the ISP's
mailboxes emptied (or kept), `tern fetch` summaries, the log line of a
refused accounts file. One ISP user per test, so tests do not touch
each other's mail.
"""

import contextlib
import email
import email.policy
import imaplib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import tempfile
import time
import unittest
import uuid

import harness
from harness import TernTestCase

PW = "Isp-pw-42"
# A message may take this long however steadily it comes (the office's
# fetch_message_timeout); fetch_timeout, one wait, is longer.
MESSAGE_TIMEOUT = 3
ACCOUNTS = None   # the office's accounts file
TMP = None


def make_ca(directory):
    """A CA and a leaf for IP 127.0.0.2 signed by it; (ca, cert, key)."""
    ca_key = os.path.join(directory, "ca.key")
    ca = os.path.join(directory, "ca.crt")
    key = os.path.join(directory, "isp.key")
    csr = os.path.join(directory, "isp.csr")
    cert = os.path.join(directory, "isp.crt")
    ext = os.path.join(directory, "ext.cnf")
    harness.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-sha256", "-days", "2", "-subj", "/CN=tern test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", ca_key, "-out", ca])
    harness.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes",
                 "-subj", "/CN=127.0.0.2", "-keyout", key, "-out", csr])
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.2\n"
                "basicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    harness.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca,
                 "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
                 "-sha256", "-extfile", ext, "-out", cert])
    os.chmod(key, 0o600)
    os.chmod(ca, 0o644)
    return ca, cert, key


class TricklePop3:
    """A POP3 server that offers one message and then sends its content
    a byte every 0.3 s: each wait is short, the whole never ends."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.5)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                self.session(conn)

    def session(self, conn):
        conn.settimeout(30)
        f = conn.makefile("rb")
        conn.sendall(b"+OK trickle\r\n")
        replies = {b"USER": b"+OK\r\n", b"PASS": b"+OK\r\n",
                   b"UIDL": b"+OK\r\n1 slow-1\r\n.\r\n",
                   b"LIST": b"+OK\r\n1 100\r\n.\r\n"}
        try:
            for line in f:
                cmd = line.split(b" ", 1)[0].strip().upper()
                if cmd == b"RETR":
                    conn.sendall(b"+OK\r\nSubject: slow\r\n\r\n")
                    while not self.stop.wait(0.3):
                        conn.sendall(b"x")
                    return
                conn.sendall(replies.get(cmd, b"-ERR no\r\n"))
        except OSError:
            return

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def message(tag, i, envelope_to=None):
    """The ISP's i-th message tagged tag; envelope_to: the recipient its
    delivery named (X-Original-To), for multidrop accounts."""
    return (("X-Original-To: %s\r\n" % envelope_to if envelope_to else "") +
            "From: Sender <sender@example.org>\r\n"
            "To: someone@example.test\r\n"
            "Subject: %s %d\r\n"
            "Message-ID: <%s.%d@example.org>\r\n"
            "\r\n"
            "body of %s %d\r\n"
            ".a line with a leading dot\r\n" % (tag, i, tag, i, tag, i)
            ).encode()


class FetchTest(TernTestCase):
    instance_options = {"mail_access": True, "address": "127.0.0.2"}

    @classmethod
    def configure(cls, tern):
        global TMP
        if not harness.is_root():
            raise unittest.SkipTest("the accounts file must be root's "
                                    "(run as root)")
        TMP = os.path.realpath(tempfile.mkdtemp(prefix="tern-fetch-"))
        harness.record_for_cleanup("dir", TMP)
        os.chmod(TMP, 0o755)
        cls.ca, cert, key = make_ca(TMP)
        tern.conf_set(login_tls_cert_file=cert, login_tls_key_file=key)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.office = None
        cls.trickle = TricklePop3()
        try:
            cls.office = harness.TernInstance(address="127.0.0.3")
            # The tests restart fetch on purpose: master brings it back
            # within a second rather than after its backoff.
            cls.office.conf_set(fetch_interval="0", fetch_timeout="10",
                                fetch_message_timeout=str(MESSAGE_TIMEOUT),
                                service_throttle_time="1")
            cls.write_accounts(cls.office)
            cls.office.start()
            for user in ("alice", "bob", "carol", "dave", "erin", "frank",
                         "gina", "harry", "ivy"):
                cls.office.add_user(user + "@example.test", "Office-pw-1")
        except BaseException:
            if cls.office is not None:
                cls.office.close()
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.trickle.close()
        if cls.office is not None:
            cls.office.check_log()
            cls.office.close()
        super().tearDownClass()
        if TMP is not None and os.environ.get("TERN_KEEP") != "1":
            shutil.rmtree(TMP, ignore_errors=True)

    @classmethod
    def write_accounts(cls, office, mode=0o600):
        isp = "127.0.0.2"
        s, p = cls.tern.pop3s_port, cls.tern.pop3_port
        lines = [
            "# test accounts",
            "verified pop3s://u1@example.test@%s:%d password=%s "
            "to=alice@example.test tls_ca_file=%s" % (isp, s, PW, cls.ca),
            "noca pop3s://u2@example.test@%s:%d password=%s "
            "to=bob@example.test" % (isp, s, PW),
            "selfok pop3s://u2@example.test@%s:%d password=%s "
            "to=bob@example.test tls_verify=no" % (isp, s, PW),
            "kept pop3://u3@example.test@%s:%d password=%s "
            "to=carol@example.test keep=yes tls_ca_file=%s"
            % (isp, p, PW, cls.ca),
            "bulk pop3s://u4@example.test@%s:%d password=%s "
            "to=dave@example.test tls_ca_file=%s" % (isp, s, PW, cls.ca),
            "imapsone imaps://u5@example.test@%s:%d password=%s "
            "to=erin@example.test tls_ca_file=%s"
            % (isp, cls.tern.imaps_port, PW, cls.ca),
            "imapkept imap://u6@example.test@%s:%d/INBOX password=%s "
            "to=frank@example.test keep=yes tls_ca_file=%s"
            % (isp, cls.tern.imap_port, PW, cls.ca),
            "imapbulk imaps://u8@example.test@%s:%d password=%s "
            "to=gina@example.test tls_ca_file=%s"
            % (isp, cls.tern.imaps_port, PW, cls.ca),
            "multibulk pop3s://u9@example.test@%s:%d password=%s "
            "multidrop=yes tls_ca_file=%s" % (isp, s, PW, cls.ca),
            "slow pop3://u7@127.0.0.1:%d password=x to=alice@example.test "
            "tls=none" % cls.trickle.port,
        ]
        path = os.path.join(office.dir, "fetch_accounts")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, mode)
        return path

    # ----- helpers

    def isp_user(self, local, count, tag, envelope_to=()):
        """An ISP user holding count messages (files in its maildir's
        new/, as a delivery leaves them); with envelope_to, message i is
        for envelope_to[i % len(envelope_to)]."""
        addr = "%s@example.test" % local
        t = self.tern
        t.add_user(addr, PW)
        md = t.virtual_maildir(addr)
        st = os.stat(t.vmail_base)
        for sub in ("", "new", "cur", "tmp"):
            d = os.path.join(md, sub)
            os.makedirs(d, exist_ok=True)
        for root in (os.path.dirname(os.path.dirname(md)),
                     os.path.dirname(md)):
            os.chown(root, st.st_uid, st.st_gid)
        for sub in ("", "new", "cur", "tmp"):
            os.chown(os.path.join(md, sub), st.st_uid, st.st_gid)
        for i in range(count):
            name = os.path.join(md, "new", "%d.M%dP%d.isp" %
                                (1700000000 + i, i, os.getpid()))
            with open(name, "wb") as f:
                f.write(message(tag, i, envelope_to[i % len(envelope_to)]
                                if envelope_to else None))
            os.chown(name, st.st_uid, st.st_gid)
        return md

    def isp_left(self, md):
        return len(os.listdir(os.path.join(md, "new"))) + \
            len(os.listdir(os.path.join(md, "cur")))

    def fetch(self, *args, check=True):
        r = self.office.tern("fetch", *args, check=False)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def office_messages(self, addr, count):
        md = self.office.virtual_maildir(addr)
        self.office.wait_for_maildir(md, count)
        return [email.message_from_bytes(d, policy=email.policy.compat32)
                for d in harness.read_maildir(md)]

    def fetch_pid(self):
        pids = self.office.pids(program="fetch")
        self.assertEqual(len(pids), 1, self.office.describe_pids())
        return pids[0]

    def restart_fetch(self, sig=signal.SIGTERM):
        old = self.fetch_pid()
        os.kill(old, sig)
        harness.wait_until(
            lambda: self.office.pids(program="fetch") not in ([], [old]),
            harness.START_TIMEOUT, "master restarts fetch")

    # ----- tests

    def test_pop3s_single_drop_verified_and_removed_from_the_isp(self):
        md = self.isp_user("u1", 5, "single")
        r = self.fetch("verified")
        self.assertRegex(r.stdout, r"^verified: 5 queued, 0 skipped, "
                         r"5 deleted, 0 left, 0 refused, 5 listed\n$")
        msgs = self.office_messages("alice@example.test", 5)
        self.assertEqual(sorted(m["Subject"] for m in msgs),
                         ["single %d" % i for i in range(5)])
        for m in msgs:
            i = int(m["Subject"].split()[1])
            self.assertEqual(m.get_payload().replace("\r\n", "\n"),
                             "body of single %d\n.a line with a leading "
                             "dot\n" % i)
            self.assertIn("X-Tern-Fetched", m)
            top = m.get_all("Received")[0]
            self.assertRegex(top, r"from 127\.0\.0\.2 \(127\.0\.0\.2 "
                             r"\[127\.0\.0\.2\]\)")
            self.assertIn("with POP3S", top)
            self.assertIn("for <alice@example.test>", top)
            self.assertEqual(m["Return-Path"], "<>")
        harness.wait_until(lambda: self.isp_left(md) == 0, 10,
                           "the ISP's copies removed")
        self.office.wait_for_log(r"account verified: TLS TLSv1\.[23].*"
                                 r"verified")

    def test_unknown_ca_is_refused_unless_tls_verify_no(self):
        md = self.isp_user("u2", 2, "selfsigned")
        r = self.fetch("noca", check=False)
        self.assertNotEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stdout, r"^noca: 0 queued.*error: TLS "
                         r"handshake with 127\.0\.0\.2 failed: .*"
                         r"certificate verify failed")
        self.assertEqual(self.isp_left(md), 2)
        r = self.fetch("selfok")
        self.assertRegex(r.stdout, r"^selfok: 2 queued, 0 skipped, "
                         r"2 deleted")
        self.office_messages("bob@example.test", 2)
        self.office.wait_for_log(r"account selfok: TLS .*not verified")

    def test_keep_yes_skips_what_was_fetched_across_a_restart(self):
        md = self.isp_user("u3", 3, "kept")
        r = self.fetch("kept")
        self.assertRegex(r.stdout, r"^kept: 3 queued, 0 skipped, "
                         r"0 deleted, 0 left, 0 refused, 3 listed")
        self.office_messages("carol@example.test", 3)
        self.restart_fetch()
        r = self.fetch("kept")
        self.assertRegex(r.stdout, r"^kept: 0 queued, 3 skipped, "
                         r"0 deleted, 0 left, 0 refused, 3 listed")
        self.assertEqual(self.isp_left(md), 3)
        self.assertEqual(harness.maildir_count(
            self.office.virtual_maildir("carol@example.test")), 3)

    def kill_during_collection(self, account, isp_local, office_addrs, n):
        """Kills fetch with SIGKILL while it collects n messages; every
        message arrives exactly once and the ISP's copies go. With several
        office_addrs the account is multidrop: message i is for
        office_addrs[i % len(office_addrs)] and must reach only it."""
        md = self.isp_user(isp_local, n, account,
                           office_addrs if len(office_addrs) > 1 else ())
        since = self.office.log_size()
        first = subprocess.Popen(
            [self.office.sbin("tern"), "-c", self.office.dir, "fetch",
             account], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pid = self.fetch_pid()

        def queued():
            with open(self.office.log_path, errors="replace") as f:
                f.seek(since)
                return len(re.findall(r"account=%s id=" % account,
                                      f.read()))
        harness.wait_until(lambda: queued() >= n // 5, 30,
                           "some messages queued")
        os.kill(pid, signal.SIGKILL)
        first.communicate(timeout=30)
        harness.wait_until(
            lambda: self.office.pids(program="fetch") not in ([], [pid]),
            harness.START_TIMEOUT, "master restarts fetch")
        for _ in range(5):
            r = self.fetch(account)
            if re.search(r" 0 left", r.stdout) and "error" not in r.stdout:
                break
        self.assertRegex(r.stdout, r"^%s: \d+ queued, \d+ skipped, "
                         r"\d+ deleted, 0 left, 0 refused" % account)
        for k, addr in enumerate(office_addrs):
            mine = range(k, n, len(office_addrs))
            msgs = self.office_messages(addr, len(mine))
            ids = [m["Message-ID"] for m in msgs]
            self.assertEqual(len(ids), len(mine), addr)
            self.assertEqual(sorted(set(ids)), sorted(
                "<%s.%d@example.org>" % (account, i) for i in mine), addr)
        harness.wait_until(lambda: self.isp_left(md) == 0, 10,
                           "the ISP's copies removed")

    def test_kill_9_during_collection_loses_and_duplicates_nothing(self):
        self.kill_during_collection("bulk", "u4", ["dave@example.test"], 200)

    def test_kill_9_during_imap_collection_loses_and_duplicates_nothing(self):
        self.kill_during_collection("imapbulk", "u8", ["gina@example.test"],
                                    150)

    def test_kill_9_during_multidrop_collection_routes_each_once(self):
        self.kill_during_collection(
            "multibulk", "u9", ["harry@example.test", "ivy@example.test"],
            200)

    def isp_imap(self, local):
        """The ISP user's INBOX as its owner sees it over IMAP."""
        c = imaplib.IMAP4("127.0.0.2", self.tern.imap_port)
        c.starttls(ssl_context=ssl.create_default_context(cafile=self.ca))
        c.login("%s@example.test" % local, PW)
        c.select("INBOX")
        return c

    def test_imaps_single_drop_expunged_at_the_isp(self):
        md = self.isp_user("u5", 4, "imaps")
        r = self.fetch("imapsone")
        self.assertRegex(r.stdout, r"^imapsone: 4 queued, 0 skipped, "
                         r"4 deleted, 0 left, 0 refused, 4 listed\n$")
        msgs = self.office_messages("erin@example.test", 4)
        self.assertEqual(sorted(m["Subject"] for m in msgs),
                         ["imaps %d" % i for i in range(4)])
        for m in msgs:
            i = int(m["Subject"].split()[1])
            self.assertEqual(m.get_payload().replace("\r\n", "\n"),
                             "body of imaps %d\n.a line with a leading "
                             "dot\n" % i)
            top = m.get_all("Received")[0]
            self.assertIn("with IMAPS", top)
            self.assertIn("for <erin@example.test>", top)
        self.assertEqual(self.isp_left(md), 0)
        r = self.fetch("imapsone")
        self.assertRegex(r.stdout, r"^imapsone: 0 queued, 0 skipped, "
                         r"0 deleted, 0 left, 0 refused, 0 listed\n$")

    def test_imap_starttls_keep_marks_seen_and_skips_by_uid(self):
        md = self.isp_user("u6", 3, "imapkept")
        r = self.fetch("imapkept")
        self.assertRegex(r.stdout, r"^imapkept: 3 queued, 0 skipped, "
                         r"0 deleted, 0 left, 0 refused, 3 listed\n$")
        self.office_messages("frank@example.test", 3)
        c = self.isp_imap("u6")
        try:
            self.assertEqual(c.search(None, "SEEN")[1][0].split(),
                             [b"1", b"2", b"3"])
        finally:
            c.logout()
        r = self.fetch("imapkept")
        self.assertRegex(r.stdout, r"^imapkept: 0 queued, 3 skipped, "
                         r"0 deleted, 0 left, 0 refused, 3 listed\n$")
        self.assertEqual(self.isp_left(md), 3)

        # A new UIDVALIDITY: the UIDs may name other messages now, so
        # nothing is skipped (kept mail comes again) and the log says so.
        uidlist = os.path.join(md, "dovecot-uidlist")
        with open(uidlist) as f:
            head, rest = f.read().split("\n", 1)
        head = re.sub(r" V(\d+)", lambda m: " V%d" % (int(m.group(1)) + 7),
                      head)
        with open(uidlist, "w") as f:
            f.write(head + "\n" + rest)
        for cache in ("tern.index", "tern.index.log"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(md, cache))
        r = self.fetch("imapkept")
        self.assertRegex(r.stdout, r"^imapkept: 3 queued, 0 skipped")
        self.office.wait_for_log(r"account imapkept: the UIDVALIDITY of "
                                 r"INBOX changed")
        self.assertEqual(len(self.office_messages("frank@example.test", 6)),
                         6)

    def test_a_trickling_server_is_cut_at_fetch_message_timeout(self):
        start = time.monotonic()
        r = self.fetch("slow")
        took = time.monotonic() - start
        self.assertRegex(r.stdout, r"^slow: 0 queued, 0 skipped, 0 deleted, "
                         r"0 left, 0 refused, 1 listed; error: a message "
                         r"broke off: a message took longer than "
                         r"fetch_message_timeout\n$")
        self.assertGreaterEqual(took, MESSAGE_TIMEOUT)
        self.assertLess(took, 10, "fetch_timeout (10 s) is what ended it")

    def test_z_accounts_file_with_a_wrong_mode_is_refused(self):
        path = self.write_accounts(self.office, mode=0o644)
        try:
            self.restart_fetch()
            r = self.fetch("verified", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("must be owned by root with mode 0600",
                          r.stdout)
            self.office.wait_for_log(
                r"fetch_accounts %s: holds passwords, so it must be owned "
                r"by root with mode 0600 \(it is uid 0 mode 0644\): "
                r"refused" % re.escape(path))
            os.chown(path, 65534, 0)
            os.chmod(path, 0o600)
            self.restart_fetch()
            r = self.fetch("verified", check=False)
            self.assertIn("it is uid 65534 mode 0600", r.stdout)
        finally:
            self.write_accounts(self.office)
            os.chown(path, 0, 0)
            self.restart_fetch()


if __name__ == "__main__":
    unittest.main()
