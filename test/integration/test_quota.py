# SPDX-License-Identifier: MIT
"""Mailbox quotas, repeated deliveries and ternuser's account commands, as
an admin and a mail user see them: a virtual user with `ternuser quota`
gets mail until the mailbox is full, then local refuses the next message
(5.2.2 in the log, nothing stored) or, with quota_full_tempfail, keeps it
queued until the quota is raised; the Maildir++ maildirsize file is kept
as Dovecot reads it; a delivery that local is asked for twice (qmgr lost
the first answer, or took the message back after a crash) is stored once,
even after the user has read it; `ternuser passwd` changes what SMTP AUTH
accepts; `ternuser del --purge` removes the mail without following links.
"""

import os
import pwd
import smtplib
import ssl
import stat
import uuid

import harness
from harness import TernTestCase, skip_unless_root, wait_until

SENDER = "sender@client.example.org"
# Deadline for one answer of local through its socket.
LOCAL_ANSWER_TIMEOUT = 30
SHORT = harness.SMTP_TIMEOUT


def new_addr(tag):
    return "%s-%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


def send(t, rcpt, subject="quota test"):
    _, msg = harness.make_message(SENDER, rcpt, subject, b"x" * 200 + b"\n")
    return harness.smtp_send(t.smtp_port, SENDER, [rcpt], msg)


def maildirsize(maildir):
    with open(os.path.join(maildir, "maildirsize")) as f:
        return f.read().splitlines()


class QuotaBounceTest(TernTestCase):
    """The default: a full mailbox refuses mail for good (5.2.2)."""

    def test_message_limit_fills_then_refuses_with_5_2_2(self):
        t = self.tern
        addr = new_addr("full")
        t.add_user(addr, "pw")
        # No size limit of its own (0), three messages.
        t.ternuser("quota", addr, "0", "3")
        self.assertIn("%s\tstorage=0\tmessages=3" % addr,
                      t.ternuser("list").stdout.splitlines())
        with open(t.conf_get("virtual_mailbox_list")) as f:
            self.assertIn("%s\tquota=0S,3C" % addr, f.read().splitlines())
        md = t.virtual_maildir(addr)
        for i in range(3):
            send(t, addr)
            t.wait_for_maildir(md, i + 1)
        since = t.log_size()
        qid = send(t, addr)
        t.wait_for_log(r"%s: to=<%s>, relay=local, .*dsn=5\.2\.2, "
                       r"status=bounced \(mailbox full" % (qid, addr),
                       since=since)
        self.assertEqual(harness.maildir_count(md), 3)
        self.assertEqual(harness.maildir_files(md, "tmp"), [])
        # Maildir++ as Dovecot reads it: the limits, then sums.
        lines = maildirsize(md)
        self.assertEqual(lines[0], "3C")
        self.assertEqual(sum(int(l.split()[1]) for l in lines[1:]), 3)

    def test_size_limit_counts_stored_bytes(self):
        t = self.tern
        addr = new_addr("size")
        t.add_user(addr, "pw")
        md = t.virtual_maildir(addr)
        send(t, addr)
        first = t.wait_for_maildir(md, 1)[0]
        size = os.path.getsize(first)
        self.assertRegex(first, r",S=%d,W=\d+$" % size)
        # Room for two messages of this size and a half.
        t.ternuser("quota", addr, str(size * 5 // 2))
        send(t, addr)
        t.wait_for_maildir(md, 2)
        since = t.log_size()
        qid = send(t, addr)
        t.wait_for_log(r"%s: to=<%s>,.*dsn=5\.2\.2, status=bounced"
                       % (qid, addr), since=since)
        self.assertEqual(harness.maildir_count(md), 2)
        self.assertEqual(maildirsize(md)[0], "%dS" % (size * 5 // 2))
        # "-" gives the user back to the defaults (no limit here).
        t.ternuser("quota", addr, "-", "-")
        self.assertIn(addr, t.ternuser("list").stdout.splitlines())
        send(t, addr)
        t.wait_for_maildir(md, 3)

    def test_global_limit_applies_to_users_without_their_own(self):
        t = self.new_instance(configure=lambda i: i.conf_set(
            mailbox_message_limit="1"))
        limited, own = new_addr("dflt"), new_addr("own")
        t.add_user(limited, "pw")
        t.add_user(own, "pw")
        t.ternuser("quota", own, "0", "0")
        for addr in (limited, own):
            send(t, addr)
            t.wait_for_maildir(t.virtual_maildir(addr), 1)
        since = t.log_size()
        qid = send(t, limited)
        t.wait_for_log(r"%s: to=<%s>,.*dsn=5\.2\.2" % (qid, limited),
                       since=since)
        send(t, own)
        t.wait_for_maildir(t.virtual_maildir(own), 2)
        self.assertEqual(harness.maildir_count(t.virtual_maildir(limited)),
                         1)


class QuotaDeferTest(TernTestCase):
    """quota_full_tempfail = yes: the message waits for room."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(quota_full_tempfail="yes", queue_run_delay="1",
                      minimal_backoff_time="1", maximal_backoff_time="2")

    def test_deferred_then_delivered_when_the_quota_is_raised(self):
        t = self.tern
        addr = new_addr("defer")
        t.add_user(addr, "pw")
        t.ternuser("quota", addr, "0", "1")
        md = t.virtual_maildir(addr)
        send(t, addr)
        t.wait_for_maildir(md, 1)
        since = t.log_size()
        qid = send(t, addr, "second")
        t.wait_for_log(r"%s: to=<%s>,.*dsn=4\.2\.2, status=deferred "
                       r"\(mailbox full" % (qid, addr), since=since)
        wait_until(lambda: qid in t.queue_files("deferred"),
                   harness.DELIVERY_TIMEOUT, "%s in deferred/" % qid)
        self.assertEqual(harness.maildir_count(md), 1)
        t.ternuser("quota", addr, "0", "2")
        t.wait_for_maildir(md, 2)
        t.wait_for_log(r"%s: to=<%s>,.*status=sent" % (qid, addr),
                       since=since)
        wait_until(lambda: not any(qid in t.queue_files(s) for s in
                                   ("incoming", "active", "deferred")),
                   harness.DELIVERY_TIMEOUT, "%s to leave the queue" % qid)
        self.assertIn(b"Subject: second", harness.read_maildir(md)[1])


class RepeatedDeliveryTest(TernTestCase):
    """local asked twice for one delivery, as after a lost answer or a
    crash between the maildir write and qmgr's mark."""

    def setUp(self):
        super().setUp()
        # qmgr takes back what is in active/ when it starts: plant files
        # only once that is over.
        self.tern.wait_ready()

    def request(self, qid, recovered=False):
        pairs = [("request", "deliver"), ("queue_id", qid),
                 ("queue_file", "active/" + qid), ("rcpt_index", 0)]
        if recovered:
            pairs.append(("recovered", "1"))
        return dict(harness.attr_request(
            os.path.join(self.tern.queue_dir, "private", "local"), pairs,
            timeout=LOCAL_ANSWER_TIMEOUT))

    def test_second_request_stores_nothing_even_after_the_mail_was_read(self):
        t = self.tern
        addr = new_addr("again")
        t.add_user(addr, "pw")
        md = t.virtual_maildir(addr)
        qid = harness.place_queue_file(t, "active", harness.queue_file(
            SENDER, [(addr, b"R")], b"Subject: once\r\n\r\nbody\r\n"))
        self.addCleanup(lambda: os.path.exists(
            os.path.join(t.queue_dir, "active", qid)) and os.unlink(
                os.path.join(t.queue_dir, "active", qid)))
        reply = self.request(qid)
        self.assertEqual((reply["result"], reply["dsn"]), ("sent", "2.0.0"))
        self.assertEqual(reply["text"], "delivered to maildir")
        files = harness.maildir_files(md)
        self.assertEqual(len(files), 1)
        name = os.path.basename(files[0])
        self.assertRegex(name, r"^\d+\.M\d{6}Q%sR0\..+,S=\d+,W=\d+$" % qid)
        since = t.log_size()
        reply = self.request(qid)
        self.assertEqual((reply["result"], reply["dsn"]), ("sent", "2.0.0"))
        self.assertEqual(reply["text"], "already delivered to maildir")
        t.wait_for_log(r"%s: to=<%s>,.*status=sent \(already delivered"
                       % (qid, addr), since=since)
        self.assertEqual(harness.maildir_files(md), files)
        # The user reads it: an IMAP server moves it to cur/ with flags.
        os.rename(files[0], os.path.join(md, "cur", name + ":2,S"))
        reply = self.request(qid, recovered=True)
        self.assertEqual(reply["text"], "already delivered to maildir")
        self.assertEqual(harness.maildir_count(md), 1)
        self.assertEqual(harness.maildir_files(md, "tmp"), [])


class TernuserAccountTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        tern.conf_set(auth_failure_delay="1", auth_failure_delay_max="1")

    def login(self, user, password):
        """SMTP AUTH on the submission port after STARTTLS: the code."""
        t = self.tern
        ctx = ssl.create_default_context(
            cafile=t.conf_get("smtpd_tls_cert_file"))
        ctx.load_verify_locations(cafile=t.conf_get("smtpd_tls_eccert_file"))
        ctx.check_hostname = False
        with smtplib.SMTP("127.0.0.1", t.submission_port,
                          timeout=SHORT) as s:
            s.ehlo("client.example.org")
            s.starttls(context=ctx)
            s.ehlo("client.example.org")
            try:
                return s.login(user, password)[0]
            except smtplib.SMTPAuthenticationError as e:
                return e.smtp_code

    def stored_hash(self, user):
        with open(self.tern.conf_get("user_file")) as f:
            return [l.split(":")[1] for l in f
                    if l.startswith(user + ":")][0]

    def test_passwd_changes_what_auth_accepts(self):
        t = self.tern
        user = new_addr("pw")
        t.add_user(user, "first-Pw1")
        self.assertEqual(self.login(user, "first-Pw1"), 235)
        old = self.stored_hash(user)
        t.ternuser("passwd", user, "-", input=b"second-Pw2\n")
        self.assertNotEqual(self.stored_hash(user), old)
        self.assertTrue(self.stored_hash(user).startswith(
            ("{CRYPT}$y$", "{SHA512-CRYPT}$6$")), self.stored_hash(user))
        self.assertEqual(self.login(user, "second-Pw2"), 235)
        self.assertEqual(self.login(user, "first-Pw1"), 535)
        # -p for scripts that accept the password showing in ps(1).
        t.ternuser("passwd", "-p", "third-Pw3", user)
        self.assertEqual(self.login(user, "third-Pw3"), 235)
        # Standard input that is not a terminal needs no "-".
        t.ternuser("passwd", user, input=b"fourth-Pw4\n")
        self.assertEqual(self.login(user, "fourth-Pw4"), 235)
        # No password in clear (a hash may contain "Pw" by chance: look
        # for the whole passwords).
        with open(t.conf_get("user_file")) as f:
            stored = f.read()
        for pw in ("first-Pw1", "second-Pw2", "third-Pw3", "fourth-Pw4"):
            self.assertNotIn(pw, stored)

    def test_passwords_on_the_command_line_need_dash_p(self):
        t = self.tern
        user = new_addr("argv")
        res = t.ternuser("add", user, "secret", check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("-p", res.stderr)
        self.assertNotIn(user, t.ternuser("list").stdout.split())
        t.ternuser("add", "-p", "s3cret-Pw", user)
        self.assertEqual(self.login(user, "s3cret-Pw"), 235)
        res = t.ternuser("passwd", new_addr("nobody"), "-", input=b"x\n",
                         check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("no such user", res.stderr)

    def test_old_sha512_crypt_entries_still_log_in(self):
        t = self.tern
        user = new_addr("old")
        t.add_user(user, "placeholder")
        res = harness.run(["openssl", "passwd", "-6", "-salt",
                           "abcdefghijklmnop", "legacy-Pw"], check=False)
        if res.returncode != 0:
            self.skipTest("openssl passwd -6 is not available")
        path = t.conf_get("user_file")
        with open(path) as f:
            lines = f.read().splitlines()
        lines = [l if not l.startswith(user + ":") else
                 "%s:{SHA512-CRYPT}%s::::::" % (user, res.stdout.strip())
                 for l in lines]
        st = os.stat(path)
        with open(path + ".new", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path + ".new", stat.S_IMODE(st.st_mode))
        if harness.is_root():
            os.chown(path + ".new", st.st_uid, st.st_gid)
        os.rename(path + ".new", path)
        self.assertEqual(self.login(user, "legacy-Pw"), 235)

    def test_del_purge_removes_the_mail_but_follows_no_link(self):
        t = self.tern
        user = new_addr("purge")
        t.add_user(user, "pw")
        md = t.virtual_maildir(user)
        send(t, user)
        t.wait_for_maildir(md, 1)
        user_dir = os.path.dirname(md.rstrip("/"))
        outside = os.path.join(t.tmp, "outside-%s" % uuid.uuid4().hex[:6])
        os.mkdir(outside)
        with open(os.path.join(outside, "keep"), "w") as f:
            f.write("not mail\n")
        os.symlink(outside, os.path.join(md, "cur", "link-to-dir"))
        os.symlink(os.path.join(outside, "keep"),
                   os.path.join(user_dir, "link-to-file"))
        if harness.is_root():
            vmail = pwd.getpwnam("vmail")
            for p in (os.path.join(md, "cur", "link-to-dir"),
                      os.path.join(user_dir, "link-to-file")):
                os.lchown(p, vmail.pw_uid, vmail.pw_gid)
        out = t.ternuser("del", "--purge", user).stdout
        self.assertIn("removed", out)
        self.assertFalse(os.path.lexists(user_dir))
        self.assertTrue(os.path.isdir(os.path.dirname(user_dir)))
        self.assertEqual(os.listdir(outside), ["keep"])
        self.assertNotIn(user, t.ternuser("list").stdout.split())
        # Without --purge the mail stays.
        other = new_addr("keep")
        t.add_user(other, "pw")
        t.ternuser("del", other)
        self.assertTrue(os.path.isdir(t.virtual_maildir(other)))

    def test_purge_runs_as_vmail(self):
        skip_unless_root("the identity purge removes files as")
        t = self.tern
        user = new_addr("rootfile")
        t.add_user(user, "pw")
        md = t.virtual_maildir(user)
        # A file only root may remove: purge, acting as vmail, cannot.
        os.mkdir(os.path.join(md, "cur", "rootdir"), 0o755)
        with open(os.path.join(md, "cur", "rootdir", "f"), "w") as f:
            f.write("x")
        res = t.ternuser("del", "--purge", user, check=False)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("Permission denied", res.stderr)
        self.assertTrue(os.path.exists(os.path.join(md, "cur", "rootdir",
                                                     "f")))
