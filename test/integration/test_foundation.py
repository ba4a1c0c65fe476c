# SPDX-License-Identifier: MIT
"""Acceptance tests of the foundation: mail in over SMTP (python3 smtplib
and swaks), stored byte-exact in system and virtual maildirs; restart,
kill -9 and reload of a running instance; privilege separation; the SMTP
errors a client sees; the admin tools and their man pages."""

import contextlib
import os
import pwd
import re
import signal
import stat
import unittest
import uuid

import harness
from harness import (SmtpConn, TernTestCase, is_root, make_message,
                     read_maildir, run, skip_unless_root, smtp_send,
                     wait_until)

SENDER = "sender@example.org"
VUSER = "alice@example.test"
VPASS = "alice-Secret-42"

# 1500 bytes on one line: longer than RFC 5322's 998 but within the
# smtpd_command_line-independent DATA line limit, so it must pass intact.
LONG_LINE = ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN" * 30)


def tricky_message(rcpt, final_newline=True):
    """A message that catches dot-stuffing, 8-bit, long-line and line-end
    mistakes; returns (message_id, bytes with LF endings)."""
    mid = "<%s@client.example.org>" % uuid.uuid4().hex
    assert len(LONG_LINE) == 1500
    text = (
        "From: Sender <%s>\n"
        "To: <%s>\n"
        "Subject: byte-exact delivery\n"
        "Message-ID: %s\n"
        "Date: Mon, 01 Jan 2024 00:00:00 +0000\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "first line\n"
        ".leading dot\n"
        "..two leading dots\n"
        ".\n"
        " .space then dot\n"
        "UTF-8: Gr\u00fc\u00dfe aus K\u00f6ln, na\u00efve caf\u00e9, "
        "\u65e5\u672c\u8a9e \u2713\n"
        "%s\n"
        "trailing blanks   \n"
        "\tstarts with a tab\n"
        "\n"
        "last line" % (SENDER, rcpt, mid, LONG_LINE))
    if final_newline:
        text += "\n"
    return mid, text.encode("utf-8")


def count_in(maildir, needle):
    return sum(1 for m in read_maildir(maildir) if needle.encode() in m)


class DeliveryTest(TernTestCase):
    """Messages arrive byte-exact where a user looks for them."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(VUSER, VPASS)

    def check_delivery(self, maildir, qid, original, owner_uid):
        files = self.tern.wait_for_maildir(maildir, 1)
        self.assertEqual(len(files), 1, files)
        with open(files[0], "rb") as f:
            data = f.read()
        received = self.assertDelivered(data, SENDER, original, qid)
        self.assertEqual(os.stat(files[0]).st_uid, owner_uid)
        # The same queue ID is in the log, on the delivery line.
        self.tern.wait_for_log(r"%s: to=<[^>]*>.*status=sent" % qid)
        return received

    def test_smtplib_to_virtual_user_byte_exact(self):
        mid, msg = tricky_message(VUSER)
        qid = smtp_send(self.tern.smtp_port, SENDER, [VUSER], msg)
        owner = pwd.getpwnam("vmail").pw_uid if is_root() \
            else os.geteuid()
        self.check_delivery(self.tern.virtual_maildir(VUSER), qid, msg, owner)

    def test_smtplib_to_system_user_byte_exact(self):
        skip_unless_root("delivery to a system user's home")
        pw = self.tern.create_system_user()
        rcpt = "%s@localhost" % pw.pw_name
        mid, msg = tricky_message(rcpt)
        qid = smtp_send(self.tern.smtp_port, SENDER, [rcpt], msg)
        self.check_delivery(self.tern.system_maildir(pw), qid, msg,
                            pw.pw_uid)

    def test_swaks_byte_exact(self):
        rcpt = "bob@example.test"
        self.tern.add_user(rcpt, "bob-pw-1")
        # swaks ends the data with CRLF "." itself: the file has no final
        # newline, and what is stored is the file plus one LF.
        mid, msg = tricky_message(rcpt, final_newline=False)
        path = os.path.join(self.tern.tmp, "swaks-%s.eml" % uuid.uuid4().hex)
        with open(path, "wb") as f:
            f.write(msg)
        res = run(["swaks", "--server", "127.0.0.1:%d" % self.tern.smtp_port,
                   "--helo", "client.example.org", "--from", SENDER,
                   "--to", rcpt, "--data", "@" + path, "--timeout", "20"],
                  timeout=60)
        replies = [l for l in res.stdout.splitlines()
                   if l.lstrip().startswith("<-  250") and "queued" in l]
        self.assertTrue(replies, res.stdout)
        qid = harness.queue_id_of(replies[-1])
        owner = pwd.getpwnam("vmail").pw_uid if is_root() \
            else os.geteuid()
        self.check_delivery(self.tern.virtual_maildir(rcpt), qid, msg + b"\n",
                            owner)

    def test_daemons_run_as_documented_users(self):
        skip_unless_root("privilege separation")
        t = self.tern
        # Deliver once so that local delivery has been started.
        rcpt = "carol@example.test"
        t.add_user(rcpt, "carol-pw")
        _, msg = make_message(SENDER, rcpt)
        smtp_send(t.smtp_port, SENDER, [rcpt], msg)
        t.wait_for_maildir(t.virtual_maildir(rcpt), 1)
        tern_uid = pwd.getpwnam("tern").pw_uid

        master = t.master_pid()
        self.assertIsNotNone(master, t.describe_pids())
        self.assertEqual(harness.process_uids(master), (0, 0, 0, 0))
        for prog in ("smtpd", "qmgr", "anvil", "proxymap"):
            pids = t.pids(prog)
            self.assertTrue(pids, "no %s running: %s"
                            % (prog, t.describe_pids()))
            for pid in pids:
                # All four uids: a dropped process cannot get root back.
                self.assertEqual(harness.process_uids(pid), (tern_uid,) * 4,
                                 "%s pid %d runs as %s"
                                 % (prog, pid, t.process_user(pid)))
        # smtpd holds no supplementary group (not ternauth's: the user
        # file stays out of its reach).
        for pid in t.pids("smtpd"):
            with open("/proc/%d/status" % pid) as f:
                groups = [l.split()[1:] for l in f if l.startswith("Groups:")]
            self.assertEqual(groups, [[str(pwd.getpwnam("tern").pw_gid)]])
        local = t.pids("local")
        self.assertTrue(local, "no local running: %s" % t.describe_pids())
        # local is root between deliveries (it may be the recipient's uid
        # for a moment while it finishes one).
        wait_until(lambda: all(harness.process_uids(p)[1] == 0
                               for p in t.pids("local")), 10,
                   "local to run as root; runs as %s"
                   % [t.process_user(p) for p in t.pids("local")])


class SmtpErrorTest(TernTestCase):
    """The replies a client sees for its mistakes; none of them hurts the
    server."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(VUSER, VPASS)

    def session(self):
        c = SmtpConn(self.tern.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.banner[0], 220, c.banner)
        code, text = c.cmd("EHLO client.example.org")
        self.assertEqual(code, 250, text)
        return c

    def assertReply(self, reply, code, enhanced):
        self.assertEqual(reply[0], code, reply)
        self.assertTrue(reply[1].startswith(enhanced), reply)

    def test_unknown_virtual_user_550(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, "2.")
        self.assertReply(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1")
        # The session goes on: a known user is still accepted.
        self.assertReply(c.cmd("RCPT TO:<%s>" % VUSER), 250, "2.")

    def test_relay_denied_554(self):
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, "2.")
        reply = c.cmd("RCPT TO:<someone@example.net>")
        self.assertReply(reply, 554, "5.7.1")
        self.assertIn("Relay access denied", reply[1])

    def test_rcpt_before_mail_503(self):
        c = self.session()
        self.assertReply(c.cmd("RCPT TO:<%s>" % VUSER), 503, "5.5.1")

    def test_overlong_command_line_500(self):
        limit = int(self.tern.conf_get("smtpd_command_line_limit"))
        pids = self.tern.pids("smtpd")
        c = self.session()
        reply = c.cmd("NOOP " + "x" * (limit + 100))
        self.assertReply(reply, 500, "5.5.2")
        # Nobody crashed: same processes, and new sessions are served.
        self.tern.wait_smtp(10)
        self.assertEqual(self.tern.pids("smtpd"), pids)

    def test_garbage_and_unknown_command_500(self):
        pids = self.tern.pids("smtpd")
        c = self.session()
        c.send(b"\x00\x01\xff\xfe\x80garbage\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.cmd("XYZZY plugh"), 500, "5.5.2")
        # The same session still works.
        self.assertReply(c.cmd("NOOP"), 250, "2.")
        self.assertReply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, "2.")
        self.assertEqual(self.tern.pids("smtpd"), pids)

    def test_bare_lf_in_data_normalized_and_delivered(self):
        # smtpd_forbid_bare_newline = normalize (the default): the bare
        # LF ends a line like CRLF; test_cleanup has the other values.
        t = self.tern
        rcpt = "dave@example.test"
        t.add_user(rcpt, "dave-pw")
        maildir = t.virtual_maildir(rcpt)
        bare_mid = "<%s@client.example.org>" % uuid.uuid4().hex
        c = self.session()
        self.assertReply(c.cmd("MAIL FROM:<%s>" % SENDER), 250, "2.")
        self.assertReply(c.cmd("RCPT TO:<%s>" % rcpt), 250, "2.")
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(("Subject: bare LF\r\nMessage-ID: %s\r\n\r\n"
                "line one\nline two\r\n.\r\n" % bare_mid).encode())
        self.assertReply(c.reply(), 250, "2.0.0")
        t.wait_for_maildir(maildir, 1)
        t.wait_queue_empty()
        self.assertEqual(count_in(maildir, bare_mid), 1)
        self.assertIn(b"\n\nline one\nline two\n",
                      t.read_maildir(maildir)[0])


class SizeLimitTest(TernTestCase):
    """message_size_limit is enforced with 552 5.3.4."""

    LIMIT = 2048

    @classmethod
    def configure(cls, tern):
        tern.conf_set(message_size_limit=str(cls.LIMIT))
        tern.add_user(VUSER, VPASS)

    def test_over_limit_552_and_under_limit_delivered(self):
        t = self.tern
        maildir = t.virtual_maildir(VUSER)
        big_mid, big = make_message(SENDER, VUSER,
                                    body=(b"y" * 70 + b"\n") * 60)
        self.assertGreater(len(big), self.LIMIT)
        with SmtpConn(t.smtp_port) as c:
            c.cmd("EHLO client.example.org")
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<%s>" % VUSER)[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(harness.to_crlf(big) + b".\r\n")
            code, text = c.reply()
            self.assertEqual(code, 552, text)
            self.assertTrue(text.startswith("5.3.4"), text)
        small_mid, small = make_message(SENDER, VUSER)
        self.assertLess(len(small), self.LIMIT // 2)
        smtp_send(t.smtp_port, SENDER, [VUSER], small)
        t.wait_for_maildir(maildir, 1)
        t.wait_queue_empty()
        self.assertEqual(count_in(maildir, small_mid), 1)
        self.assertEqual(count_in(maildir, big_mid), 0)


class LifecycleTest(TernTestCase):
    """Start, stop, restart, crash and reload of a whole instance; each
    test has its own instance."""

    class_instance = False

    def instance_with_user(self):
        t = self.new_instance(configure=lambda i: i.add_user(VUSER, VPASS))
        return t, t.virtual_maildir(VUSER)

    def test_restart_loses_nothing(self):
        t, maildir = self.instance_with_user()
        self.assertEqual(t.status().returncode, 0, "tern status while running")
        mid1, msg1 = make_message(SENDER, VUSER, subject="before stop")
        smtp_send(t.smtp_port, SENDER, [VUSER], msg1)
        # Stop right after the 250: the message is ours and must survive.
        t.stop()
        self.assertNotEqual(t.status().returncode, 0,
                            "tern status after stop")
        with self.assertRaises(OSError):
            SmtpConn(t.smtp_port, timeout=5).close()
        t.start()
        mid2, msg2 = make_message(SENDER, VUSER, subject="after start")
        smtp_send(t.smtp_port, SENDER, [VUSER], msg2)
        t.wait_for_maildir(maildir, 2)
        t.wait_queue_empty()
        self.assertEqual(count_in(maildir, mid1), 1)
        self.assertEqual(count_in(maildir, mid2), 1)
        self.assertEqual(harness.maildir_count(maildir), 2)

    def test_kill_9_smtpd_mid_transaction(self):
        t, maildir = self.instance_with_user()
        svc = t.service_name_for_port(t.smtp_port)
        half_mid = "<%s@client.example.org>" % uuid.uuid4().hex
        c = SmtpConn(t.smtp_port)
        self.addCleanup(c.close)
        c.cmd("EHLO client.example.org")
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<%s>" % VUSER)[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(("Subject: half\r\nMessage-ID: %s\r\n\r\n" % half_mid).encode()
               + b"some body bytes\r\n" * 200)
        # smtpd writes into tmp/ as the body arrives; give it a moment to
        # get that far (the kill comes with DATA open either way).
        with contextlib.suppress(AssertionError):
            wait_until(lambda: t.queue_files("tmp"), 2, "a file in tmp/")
        victims = t.pids("smtpd", svc)
        self.assertTrue(victims, t.describe_pids())
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        self.assertTrue(c.closed_by_peer(), "session survived kill -9")
        # master notices, logs it and serves the port again.
        for pid in victims:
            t.wait_for_log(r"\b%d\b.*(signal 9|SIGKILL|killed)|"
                           r"(signal 9|SIGKILL|killed).*\b%d\b" % (pid, pid))
        t.wait_smtp(30)
        new = wait_until(lambda: [p for p in t.pids("smtpd", svc)
                                  if p not in victims], 30,
                         "a new smtpd for service %s" % svc)
        self.assertTrue(new)
        # A new message goes through; the half one never shows up.
        mid, msg = make_message(SENDER, VUSER)
        smtp_send(t.smtp_port, SENDER, [VUSER], msg)
        t.wait_for_maildir(maildir, 1)
        t.wait_queue_empty(("incoming", "active"))
        self.assertEqual(t.queue_files("deferred"), [])
        self.assertEqual(count_in(maildir, mid), 1)
        self.assertEqual(count_in(maildir, half_mid), 0)
        self.assertEqual(harness.maildir_count(maildir), 1)

    def test_second_master_refused(self):
        t = self.new_instance()
        master = t.master_pid()
        res = t.tern("start", check=False)
        self.assertNotEqual(res.returncode, 0, res.output)
        self.assertRegex(res.output.lower(), r"already running|is running|lock")
        self.assertTrue(harness.pid_alive(master))
        self.assertEqual(t.master_pid(), master)
        t.wait_smtp(10)

    def test_reload_changes_banner(self):
        t = self.new_instance()
        master = t.master_pid()
        token = "reload-%s" % uuid.uuid4().hex[:8]
        self.assertNotIn(token, t.wait_smtp())
        t.conf_set(smtpd_banner="%s ESMTP tern" % token)
        t.reload()
        def new_banner():
            # smtpd restarts after the reload: no banner for a while is
            # "not yet", up to the outer deadline.
            with contextlib.suppress(AssertionError):
                return token in t.wait_smtp(5)
            return False
        wait_until(new_banner, 60, "new sessions to see the new banner")
        self.assertEqual(t.master_pid(), master)

    def test_reload_restarts_only_changed_service(self):
        t = self.new_instance()
        smtp = t.service_name_for_port(t.smtp_port)
        sub = t.service_name_for_port(t.submission_port)
        t.wait_smtp(port=t.submission_port)
        before_smtp = t.pids("smtpd", smtp)
        before_sub = t.pids("smtpd", sub)
        before_qmgr = t.pids("qmgr")
        self.assertTrue(before_smtp and before_sub and before_qmgr,
                        t.describe_pids())
        with open(t.services_path()) as f:
            line = [l for l in f if l.split()[:1] == [sub]][0]
        maxproc = line.split()[5]
        t.edit_service(sub, 5, "7" if maxproc != "7" else "6")
        t.reload()
        wait_until(lambda: not set(t.pids("smtpd", sub)) & set(before_sub),
                   30, "the changed service's smtpd to be replaced")
        t.wait_smtp(port=t.submission_port)
        t.wait_smtp(port=t.smtp_port)
        self.assertEqual(t.pids("smtpd", smtp), before_smtp)
        self.assertEqual(t.pids("qmgr"), before_qmgr)

    def test_check_repairs_queue_dir_mode(self):
        t = self.new_instance(start=False)
        incoming = os.path.join(t.queue_dir, "incoming")
        os.chmod(incoming, 0o777)
        res = t.check()
        self.assertEqual(stat.S_IMODE(os.stat(incoming).st_mode), 0o700,
                         res.output)
        self.assertEqual(res.returncode, 0, res.output)


class ToolsTest(TernTestCase):
    """ternconf, ternuser and the man pages, as an admin uses them."""

    def test_every_parameter_documented(self):
        res = self.tern.ternconf("-d")
        printed = set()
        for line in res.stdout.splitlines():
            name, sep, _ = line.partition(" = ")
            if sep and not line.startswith("#"):
                printed.add(name.strip())
        with open(os.path.join(harness.SRC_DIR, "lib", "mail",
                               "params.def")) as f:
            declared = set(re.findall(r"^PARAM\(\s*\w+\s*,\s*(\w+)\s*,",
                                      f.read(), re.M))
        self.assertTrue(declared)
        self.assertEqual(printed, declared,
                         "ternconf -d must print exactly the parameters "
                         "of params.def")
        with open(os.path.join(harness.SRC_DIR, "man", "man5",
                               "tern.conf.5")) as f:
            page = f.read().replace("\\_", "_").replace("\\-", "-")
        missing = [n for n in sorted(printed)
                   if not re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])"
                                    % re.escape(n), page)]
        self.assertEqual(missing, [], "parameters missing from tern.conf.5")

    def test_every_program_has_a_man_page(self):
        progs = sorted(os.listdir(harness.SBIN_DIR)) + \
            sorted(os.listdir(harness.DAEMON_DIR))
        for expected in ("tern", "ternconf", "ternuser", "master", "smtpd",
                         "qmgr", "local"):
            self.assertIn(expected, progs)
        man = os.path.join(harness.SRC_DIR, "man")
        pages = set()
        for sect in os.listdir(man):
            if sect.startswith("man") and os.path.isdir(
                    os.path.join(man, sect)):
                pages.update(n.rsplit(".", 1)[0]
                             for n in os.listdir(os.path.join(man, sect)))
        self.assertEqual([p for p in progs if p not in pages], [],
                         "installed programs without a man page")

    def test_ternuser_add_list_del(self):
        t = self.tern
        addr = "erin-%s@example.test" % uuid.uuid4().hex[:6]
        password = "pw-%s" % uuid.uuid4().hex
        t.add_user(addr, password)
        self.assertIn(addr, t.ternuser("list").stdout.split())
        user_file = t.conf_get("user_file")
        with open(user_file) as f:
            text = f.read()
        self.assertNotIn(password, text)
        line = [l for l in text.splitlines() if l.startswith(addr + ":")]
        self.assertEqual(len(line), 1, text)
        self.assertTrue(line[0].split(":")[1].startswith(
            ("{CRYPT}$y$", "{SHA512-CRYPT}$6$")), line[0])
        with open(t.conf_get("virtual_mailbox_list")) as f:
            listed = f.read()
        self.assertIn(addr, listed.split())
        self.assertNotIn("$6$", listed)
        self.assertNotIn("$y$", listed)
        # A second add of the same user fails and changes nothing.
        res = t.ternuser("add", addr, "-", input=b"other\n", check=False)
        self.assertNotEqual(res.returncode, 0, res.output)
        with open(user_file) as f:
            self.assertEqual(f.read(), text)
        # smtpd sees the account come and go.
        with SmtpConn(t.smtp_port) as c:
            c.cmd("EHLO client.example.org")
            c.cmd("MAIL FROM:<%s>" % SENDER)
            self.assertEqual(c.cmd("RCPT TO:<%s>" % addr)[0], 250)
        t.ternuser("del", addr)
        self.assertNotIn(addr, t.ternuser("list").stdout.split())
        with open(user_file) as f:
            self.assertNotIn(addr, f.read())
        with SmtpConn(t.smtp_port) as c:
            c.cmd("EHLO client.example.org")
            c.cmd("MAIL FROM:<%s>" % SENDER)
            code, text = c.cmd("RCPT TO:<%s>" % addr)
            self.assertEqual(code, 550, text)
            self.assertTrue(text.startswith("5.1.1"), text)


if __name__ == "__main__":
    unittest.main()
