# SPDX-License-Identifier: MIT
"""Delivery under failure: the queue manager's deferrals, backoff and
crash recovery, local delivery's identities and the admin tools that feed
it (ternuser, ternconf). Every failure defers and retries; none bounces,
loses or repeats a delivery that was recorded."""

import os
import re
import shutil
import stat
import subprocess
import uuid

import harness
from harness import (TernTestCase, is_root, make_message, skip_unless_root,
                     place_queue_file, queue_file,
                     smtp_send, wait_until)

SENDER = "sender@example.org"
# Fast retries: a deferred message is due again within two seconds.
FAST_RETRY = dict(minimal_backoff_time="1", maximal_backoff_time="2",
                  queue_run_delay="1")
# qmgr retries a failed move out of active/ every 5 s.
STUCK_TIMEOUT = 20
CONCURRENT_USERS = 12


def new_addr(tag):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


def block_maildir(maildir):
    """Puts a regular file where the maildir goes: every delivery attempt
    fails as a full disk would, with a temporary error."""
    shutil.rmtree(maildir, ignore_errors=True)
    with open(maildir, "w") as f:
        f.write("not a maildir\n")


class PlusAddressTest(TernTestCase):
    """user+tag@ a virtual domain is accepted at RCPT and lands in user's
    mailbox, as user+tag@ a local domain does (recipient_delimiter)."""

    def test_virtual_user_with_extension(self):
        t = self.tern
        user = new_addr("plus")
        t.add_user(user, "pw")
        local, domain = user.split("@")
        tagged = "%s+lists@%s" % (local, domain)
        _, msg = make_message(SENDER, tagged)
        qid = smtp_send(t.smtp_port, SENDER, [tagged], msg)
        t.wait_for_maildir(t.virtual_maildir(user), 1)
        t.wait_for_log(r"%s: to=<%s>, relay=local.*status=sent"
                       % (qid, re.escape(tagged)))
        # Without the user the tag means nothing: refused at RCPT.
        with harness.SmtpConn(t.smtp_port) as c:
            c.cmd("EHLO client.example.org")
            c.cmd("MAIL FROM:<%s>" % SENDER)
            code, _ = c.cmd("RCPT TO:<nobody%s+lists@%s>" % (local, domain))
            self.assertEqual(code, 550)


class DeferTest(TernTestCase):
    """A temporary failure defers the message, which is retried with
    backoff and delivered exactly once per recipient."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(**FAST_RETRY)

    def test_unwritable_maildir_defers_and_retry_delivers_once(self):
        t = self.tern
        ok, blocked = new_addr("ok"), new_addr("full")
        t.add_user(ok, "pw")
        t.add_user(blocked, "pw")
        block_maildir(t.virtual_maildir(blocked))
        since = t.log_size()
        _, msg = make_message(SENDER, ok)
        qid = smtp_send(t.smtp_port, SENDER, [ok, blocked], msg)
        t.wait_for_log(r"%s: to=<%s>.*dsn=4\.[0-9.]+, status=deferred"
                       % (qid, blocked), since=since)
        t.wait_for_maildir(t.virtual_maildir(ok), 1)
        # Retried several times, never bounced, never delivered twice.
        t.wait_for_log(r"(?s)%s: to=<%s>.*status=deferred.*"
                       r"%s: to=<%s>.*status=deferred"
                       % (qid, blocked, qid, blocked), since=since)
        self.assertNotRegex(t.log()[since:], r"%s: .*status=bounced" % qid)
        os.unlink(t.virtual_maildir(blocked))
        t.wait_for_maildir(t.virtual_maildir(blocked), 1)
        t.wait_for_log(r"%s: removed" % qid, since=since)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(ok)), 1)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(blocked)),
                         1)

    def test_failed_move_to_deferred_is_retried_without_restart(self):
        t = self.tern
        rcpt = new_addr("stuck")
        t.add_user(rcpt, "pw")
        block_maildir(t.virtual_maildir(rcpt))
        deferred = os.path.join(t.queue_dir, "deferred")
        mode = stat.S_IMODE(os.stat(deferred).st_mode)
        since = t.log_size()
        os.chmod(deferred, 0o500)  # qmgr (not root) cannot rename into it
        try:
            _, msg = make_message(SENDER, rcpt)
            qid = smtp_send(t.smtp_port, SENDER, [rcpt], msg)
            t.wait_for_log(r"%s: rename .*deferred" % qid, since=since)
            self.assertIn(qid, t.queue_files("active"))
        finally:
            os.chmod(deferred, mode)
        os.unlink(t.virtual_maildir(rcpt))
        # No restart: qmgr itself moves it on, and it is delivered.
        t.wait_for_maildir(t.virtual_maildir(rcpt), 1,
                           timeout=STUCK_TIMEOUT)
        t.wait_for_log(r"%s: removed" % qid, since=since)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(rcpt)), 1)


class QueueRecoveryTest(TernTestCase):
    """What qmgr finds in the queue directories when it starts."""

    def test_active_file_recovered_and_marked_recipient_not_repeated(self):
        t = self.tern
        done, pending = new_addr("done"), new_addr("pend")
        t.add_user(done, "pw")
        t.add_user(pending, "pw")
        t.stop()
        content = b"Subject: recovered\r\n\r\nbody\r\n"
        qid = place_queue_file(t, "active", queue_file(
            SENDER, [(done, b"D"), (pending, b"R")], content))
        since = t.log_size()
        t.start()
        files = t.wait_for_maildir(t.virtual_maildir(pending), 1)
        with open(files[0], "rb") as f:
            self.assertEqual(f.read(), ("Return-Path: <%s>\n" % SENDER)
                             .encode() + b"Subject: recovered\n\nbody\n")
        t.wait_for_log(r"%s: removed" % qid, since=since)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(done)), 0)
        self.assertNotIn(qid, t.queue_files("active"))

    def test_corrupt_incoming_file_moved_to_corrupt(self):
        t = self.tern
        qid = place_queue_file(t, "incoming", b"V\0\0\0\x06TERNQ1Xgarbage")
        wait_until(lambda: qid in t.queue_files("corrupt"),
                   harness.DELIVERY_TIMEOUT, "%s in corrupt/" % qid)
        t.wait_for_log(r"%s: corrupt queue file" % qid)
        self.assertNotIn(qid, t.queue_files("incoming"))


class ActiveLimitTest(TernTestCase):
    """qmgr_message_active_limit=1 still delivers everything, one at a time."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(qmgr_message_active_limit="1", **FAST_RETRY)

    def test_limit_of_one_delivers_all(self):
        t = self.tern
        rcpt = new_addr("lim")
        t.add_user(rcpt, "pw")
        for _ in range(4):
            _, msg = make_message(SENDER, rcpt)
            smtp_send(t.smtp_port, SENDER, [rcpt], msg)
        t.wait_for_maildir(t.virtual_maildir(rcpt), 4)
        t.wait_queue_empty(("incoming", "active", "deferred"))


class LocalSecurityTest(TernTestCase):
    """Local delivery writes only as the mailbox owner."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(**FAST_RETRY)

    def test_maildir_symlink_to_root_directory_is_not_written(self):
        skip_unless_root("delivery to a system user's home")
        t = self.tern
        pw = t.create_system_user()
        target = os.path.join(t.tmp, "rootonly")
        os.mkdir(target, 0o700)
        os.symlink(target, t.system_maildir(pw))
        rcpt = "%s@localhost" % pw.pw_name
        since = t.log_size()
        _, msg = make_message(SENDER, rcpt)
        qid = smtp_send(t.smtp_port, SENDER, [rcpt], msg)
        t.wait_for_log(r"%s: to=<%s>.*status=deferred" % (qid, rcpt),
                       since=since)
        self.assertEqual(os.listdir(target), [])

    def test_domain_directory_made_by_local_belongs_to_vmail(self):
        t = self.tern
        domain = "d%s.example" % uuid.uuid4().hex[:8]
        t.ternconf("-e", "virtual_mailbox_domains=%s, %s"
                   % (harness.VIRTUAL_DOMAIN, domain))
        rcpt = "u@%s" % domain
        t.add_user(rcpt, "pw")
        # As if the store lost it: local makes it again when delivering.
        shutil.rmtree(os.path.join(t.vmail_base, domain))
        t.reload()
        t.wait_smtp()
        _, msg = make_message(SENDER, rcpt)
        smtp_send(t.smtp_port, SENDER, [rcpt], msg)
        t.wait_for_maildir(t.virtual_maildir(rcpt), 1)
        st = os.stat(os.path.join(t.vmail_base, domain))
        owner = harness.pwd.getpwnam("vmail").pw_uid if is_root() \
            else os.geteuid()
        self.assertEqual(st.st_uid, owner)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o711)


class TernuserTest(TernTestCase):
    start_instance = False

    def users(self):
        return self.tern.ternuser("list").stdout.split()

    def test_concurrent_adds_lose_nothing(self):
        t = self.tern
        addrs = [new_addr("c%d-" % i) for i in range(CONCURRENT_USERS)]
        procs = [subprocess.Popen(
            [t.sbin("ternuser"), "-c", t.dir, "add", a, "-"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT) for a in addrs]
        for p in procs:
            p.stdin.write(b"secret\n")
            p.stdin.close()
        for p in procs:
            out = p.stdout.read()
            p.wait(timeout=harness.COMMAND_TIMEOUT)
            p.stdout.close()
            harness.check_sanitizer_output(out.decode(errors="replace"),
                                           "ternuser add")
            self.assertEqual(p.returncode, 0, out)
        self.assertEqual(sorted(a for a in self.users() if a in addrs),
                         sorted(addrs))
        with open(t.conf_get("virtual_mailbox_list")) as f:
            listed = f.read().split()
        self.assertEqual(sorted(a for a in listed if a in addrs),
                         sorted(addrs))

    def test_bad_names_rejected_and_nothing_written(self):
        t = self.tern
        user_file = t.conf_get("user_file")
        before = open(user_file, "rb").read() \
            if os.path.exists(user_file) else None
        d = harness.VIRTUAL_DOMAIN
        for bad in ("../x@" + d, "a/b@" + d, ".@" + d, "..@" + d,
                    "x@not-listed.example", "nodomain", "a b@" + d,
                    "x@" + d + "/..", "@" + d):
            res = t.ternuser("add", bad, "-", input=b"pw\n", check=False)
            self.assertNotEqual(res.returncode, 0, bad)
        after = open(user_file, "rb").read() \
            if os.path.exists(user_file) else None
        self.assertEqual(before, after)
        for name in os.listdir(os.path.join(t.vmail_base, d)) \
                if os.path.isdir(os.path.join(t.vmail_base, d)) else []:
            self.assertNotIn(name, ("..", ".", "a", "x"))

    def test_crlf_password_and_file_modes(self):
        t = self.tern
        addr = new_addr("crlf")
        t.ternuser("add", addr, "-", input=b"s3cret\r\n")
        user_file = t.conf_get("user_file")
        with open(user_file) as f:
            line = [l for l in f if l.startswith(addr + ":")][0]
        stored = line.split(":")[1]
        # yescrypt where libxcrypt has it, else SHA512-CRYPT.
        self.assertTrue(stored.startswith(("{CRYPT}$y$",
                                           "{SHA512-CRYPT}$6$")), stored)
        res = subprocess.run(
            ["openssl", "passwd", "-6", "-salt",
             stored.split("$")[2], "s3cret"], capture_output=True)
        if res.returncode == 0 and "$6$" in stored:
            self.assertEqual(res.stdout.decode().strip(),
                             stored[len("{SHA512-CRYPT}"):])
        self.assertEqual(stat.S_IMODE(os.stat(user_file).st_mode), 0o640)
        lst = t.conf_get("virtual_mailbox_list")
        self.assertEqual(stat.S_IMODE(os.stat(lst).st_mode), 0o644)
        self.assertFalse(open(lst).read().count("$6$"))


class TernconfTest(TernTestCase):
    start_instance = False

    def test_bad_values_leave_tern_conf_untouched(self):
        t = self.tern
        path = os.path.join(t.dir, "tern.conf")
        before = open(path, "rb").read()
        for args in (["queue_directory="], ["queue_directory=relative"],
                     ["virtual_mailbox_base=mail"], ["mail_owner="],
                     ["home_mailbox=/etc/"], ["ipc_timeout=0"],
                     ["message_size_limit=lots"], ["no_such_param=1"],
                     ["myhostname=${"],
                     ["myhostname=first.example", "smtpd_banner=a\nb"],
                     ["myhostname=first.example",
                      "smtpd_banner=" + "x" * 5000]):
            res = t.ternconf("-e", *args, check=False)
            self.assertNotEqual(res.returncode, 0, args)
            self.assertEqual(open(path, "rb").read(), before, args)
        t.ternconf("-e", "myhostname=good.example", "maillog_file=" +
                   t.conf_get("maillog_file"))
        self.assertEqual(t.conf_get("myhostname"), "good.example")
        self.assertEqual(t.check().returncode, 0, t.check().output)
