# SPDX-License-Identifier: MIT
"""The root/tern boundary and the review's findings: what a root process
does with names inside tern-owned directories, what a daemon inherits from
master, and the address-case and duplicate rules that decide which
mailbox gets a message. Each test here failed before its fix."""

import os
import re
import stat
import subprocess
import uuid

import harness
from harness import (SmtpConn, TernTestCase, make_message, queue_file,
                     skip_unless_root, smtp_send, wait_until)

SENDER = "sender@example.org"
# local must answer a request for a planted file at once, not wait on it.
LOCAL_ANSWER_TIMEOUT = 15
CASE_VARIANTS = 200


def new_addr(tag):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


def case_variants(addr, count):
    """count distinct spellings of addr that differ only in letter case."""
    letters = [i for i, c in enumerate(addr) if c.isalpha()]
    out = []
    for n in range(1, count + 1):
        chars = list(addr)
        for bit, i in enumerate(letters):
            if n >> bit & 1:
                chars[i] = chars[i].upper()
        out.append("".join(chars))
    assert len(set(out)) == count, "address too short for %d variants" % count
    return out


class SocketOwnershipTest(TernTestCase):
    class_instance = False

    def test_master_creates_sockets_as_mail_owner_never_chowns_by_path(self):
        """master binds private/ and public/ sockets with mail_owner's
        effective ids and a umask: root never chmods, chowns or unlinks a
        name in a directory that tern owns (a swapped-in symlink would
        otherwise get a root file chowned to tern)."""
        skip_unless_root("master binds as root")
        t = self.new_instance(start=False)
        trace = os.path.join(t.tmp, "strace.out")
        # LeakSanitizer cannot run under ptrace; every other test checks
        # leaks.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        proc = subprocess.Popen(
            ["strace", "-f", "-qq", "-o", trace, "-e",
             "trace=chmod,fchmodat,chown,lchown,fchownat,unlink,unlinkat,bind",
             t.sbin("tern"), "-c", t.dir, "start"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env)
        try:
            t.wait_ready()
            t.reload()   # a reload binds nothing new, but runs the code
            t.wait_ready()
            sock = os.path.join(t.queue_dir, "private", "qmgr")
            st = os.lstat(sock)
            self.assertTrue(stat.S_ISSOCK(st.st_mode))
            self.assertEqual(harness.uid_name(st.st_uid), "tern")
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            t.stop()
            proc.wait(timeout=harness.STOP_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with open(trace) as f:
            lines = f.read().splitlines()
        socket_dirs = [os.path.join(t.queue_dir, d) + "/"
                       for d in ("private", "public")]
        binds = [l for l in lines if " bind(" in l and socket_dirs[0] in l]
        self.assertTrue(binds, "strace saw no bind of a private/ socket")
        by_path = [l for l in lines
                   if re.search(r"\b(chmod|fchmodat|chown|lchown|fchownat)\(",
                                l) and any(d in l for d in socket_dirs)]
        self.assertEqual(by_path, [], "root changed a socket by its name")


class LocalOpenTest(TernTestCase):
    """local runs as root and opens active/ID itself: a name planted
    there by a tern process must not make it wait, read another file, or
    deliver a file that tern did not write."""

    def setUp(self):
        super().setUp()
        # qmgr takes back whatever is in active/ when it starts: plant
        # names only once that scan is over (qmgr sleeps in its loop).
        self.tern.wait_ready()

    def request(self, qid):
        return dict(harness.attr_request(
            os.path.join(self.tern.queue_dir, "private", "local"),
            [("request", "deliver"), ("queue_id", qid),
             ("queue_file", "active/" + qid), ("rcpt_index", 0)],
            timeout=LOCAL_ANSWER_TIMEOUT))

    def test_fifo_in_active_is_refused_at_once(self):
        skip_unless_root("local delivery as root")
        qid = harness.queue_id()
        path = os.path.join(self.tern.queue_dir, "active", qid)
        os.mkfifo(path, 0o600)
        os.chown(path, *self.tern_ids())
        try:
            reply = self.request(qid)
        finally:
            os.unlink(path)
        self.assertEqual(reply["result"], "defer")
        self.assertIn("not a regular file", reply["text"])

    def test_symlink_to_root_file_is_not_followed(self):
        skip_unless_root("local delivery as root")
        t = self.tern
        rcpt = new_addr("sym")
        t.add_user(rcpt, "pw")
        secret = os.path.join(t.tmp, "root-only")
        os.mkdir(secret, 0o700)
        target = os.path.join(secret, "qfile")
        with open(target, "wb") as f:
            f.write(queue_file(SENDER, [(rcpt, b"R")],
                               b"Subject: root's secret\r\n\r\nsecret\r\n"))
        os.chmod(target, 0o600)
        qid = harness.queue_id()
        link = os.path.join(t.queue_dir, "active", qid)
        os.symlink(target, link)
        os.lchown(link, *self.tern_ids())
        try:
            reply = self.request(qid)
        finally:
            os.unlink(link)
        self.assertEqual(reply["result"], "defer")
        self.assertIn("symbolic links", reply["text"])
        self.assertEqual(harness.maildir_count(t.virtual_maildir(rcpt)), 0)

    def test_file_not_owned_by_mail_owner_is_refused(self):
        skip_unless_root("local delivery as root")
        t = self.tern
        rcpt = new_addr("own")
        t.add_user(rcpt, "pw")
        qid = harness.queue_id()
        path = os.path.join(t.queue_dir, "active", qid)
        with open(path, "wb") as f:
            f.write(queue_file(SENDER, [(rcpt, b"R")],
                               b"Subject: planted\r\n\r\nx\r\n"))
        try:
            reply = self.request(qid)
        finally:
            os.unlink(path)
        self.assertEqual(reply["result"], "defer")
        self.assertIn("owned by uid 0", reply["text"])
        self.assertEqual(harness.maildir_count(t.virtual_maildir(rcpt)), 0)

    @staticmethod
    def tern_ids():
        pw = harness.pwd.getpwnam("tern")
        return pw.pw_uid, pw.pw_gid


class EnvironmentTest(TernTestCase):
    class_instance = False

    def test_daemons_get_only_import_environment(self):
        probe = "TERN_TEST_PROBE_%s" % uuid.uuid4().hex[:8]
        os.environ[probe] = "must-not-leak"
        os.environ["TZ"] = "UTC"
        try:
            t = self.new_instance()
        finally:
            del os.environ[probe]
        daemons = t.wait_ready()
        for pid in daemons:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = dict(e.split(b"=", 1) for e in f.read().split(b"\0")
                           if b"=" in e)
            self.assertNotIn(probe.encode(), env, "pid %d" % pid)
            self.assertNotIn(b"PATH", env, "pid %d" % pid)
            self.assertEqual(env.get(b"TZ"), b"UTC", "pid %d" % pid)
            self.assertEqual(env.get(b"LANG"), b"C", "pid %d" % pid)
            self.assertIn(b"TERN_LISTEN_FDS", env, "pid %d" % pid)


class AddressCaseTest(TernTestCase):
    """One case rule for smtpd and local (addr_local_fold): what RCPT
    accepts is what local delivers, and one mailbox gets one copy."""

    def test_mixed_case_system_user_accepted_and_delivered(self):
        t = self.tern
        pw = t.create_system_user()
        spelled = "%s@LocalHost" % pw.pw_name.upper()
        quoted = '"%s"@localhost' % pw.pw_name.capitalize()
        for rcpt in (spelled, quoted):
            smtp_send(t.smtp_port, SENDER, [rcpt],
                      make_message(SENDER, rcpt)[1])
        t.wait_for_maildir(t.system_maildir(pw), 2)

    def test_case_variants_of_one_mailbox_get_one_copy(self):
        t = self.tern
        rcpt = new_addr("popbox")
        t.add_user(rcpt, "pw")
        variants = case_variants(rcpt, CASE_VARIANTS)
        qid = smtp_send(t.smtp_port, SENDER, variants,
                        make_message(SENDER, rcpt)[1])
        t.wait_for_log(r"%s: removed" % qid)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(rcpt)), 1)
        self.assertRegex(t.log(), r"%s: from=<%s>, size=\d+, nrcpt=1 "
                         % (qid, re.escape(SENDER)))

    def test_quoted_at_sign_is_part_of_the_local_part(self):
        """<"root@localhost"> is one local part without a domain: it must
        never be split into "root and localhost" inside the quotes."""
        with SmtpConn(self.tern.smtp_port) as c:
            c.cmd("EHLO client.example.org")
            self.assertEqual(c.cmd("MAIL FROM:<>")[0], 250)
            code, text = c.cmd('RCPT TO:<"root@localhost">')
            self.assertEqual(code, 550, text)
            self.assertIn("5.1.1", text)
            self.assertIn("local recipient table", text)

    def test_replies_echo_only_printable_ascii(self):
        def line(c, data):
            c.send(data)
            raw = b""
            while not raw.endswith(b"\r\n"):
                raw += c.sock.recv(4096)
            self.assertTrue(all(0x20 <= b < 0x7f for b in raw[:-2]), raw)
            return raw

        with SmtpConn(self.tern.smtp_port) as c:
            c.cmd("EHLO client.example.org")
            raw = line(c, b"MAIL FROM:<> X=\x7f\xe9\xff\r\n")
            self.assertTrue(raw.startswith(b"555 5.5.4 "), raw)
            raw = line(c, b"MAIL FROM:<> SMTPUTF8\r\n")
            self.assertTrue(raw.startswith(b"250 "), raw)
            # An unknown UTF-8 recipient is named in the 550, as "?"s.
            raw = line(c, "RCPT TO:<n\u00f6body@example.test>\r\n"
                       .encode())
            self.assertTrue(raw.startswith(b"550 5.1.1 <n??body@"), raw)


if __name__ == "__main__":
    import unittest
    unittest.main()
