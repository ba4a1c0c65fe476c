# SPDX-License-Identifier: MIT
"""Local delivery beyond the mailbox, as Postfix's local(8) does it:
aliases (newaliases, ternmap -a), address extensions, .forward files,
|command, /file and :include: targets, Delivered-To and the loops it
catches, and root's mail. Recipients are system users of a
$mydestination domain (localhost); most of it needs root."""

import os
import pwd
import re
import stat
import uuid

import harness
from harness import (TernTestCase, make_message, run, skip_unless_root,
                     smtp_send)

SENDER = "sender@example.org"


def write(path, text, mode=0o644, owner=None):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


class AliasTest(TernTestCase):

    def setUp(self):
        super().setUp()
        self.out = os.path.join(self.tern.tmp, "out-%s" % uuid.uuid4().hex[:8])
        os.mkdir(self.out)
        # Commands and files of aliases run as default_privs (nobody).
        os.chmod(self.out, 0o1777)

    def aliases(self, text):
        t = self.tern
        write(os.path.join(t.dir, "aliases"), text)
        run([t.sbin("newaliases"), "-c", t.dir])

    def user(self):
        return self.tern.create_system_user()

    def send(self, rcpt, body=b"hello\n", extra_headers=b""):
        _, msg = make_message(SENDER, rcpt, body=body)
        return smtp_send(self.tern.smtp_port, SENDER, [rcpt],
                         extra_headers + msg)

    def mailbox(self, pw, count=1):
        t = self.tern
        t.wait_for_maildir(t.system_maildir(pw), count)
        return harness.read_maildir(t.system_maildir(pw))

    def test_alias_fans_out_to_three_users(self):
        skip_unless_root("system users")
        t = self.tern
        users = [self.user() for _ in range(3)]
        name = "team%s" % uuid.uuid4().hex[:6]
        self.aliases("# a team\n%s: %s,\n  %s, %s\n" % (
            name, users[0].pw_name, users[1].pw_name, users[2].pw_name))
        since = t.log_size()
        qid = self.send("%s@localhost" % name)
        t.wait_for_log(r"%s: to=<%s@localhost>, relay=local, .*dsn=2\.0\.0,"
                       r" status=sent \(forwarded as [0-9A-Z]+\)"
                       % (qid, name), since=since)
        origin = t.conf_get("myorigin")
        for pw in users:
            msgs = self.mailbox(pw)
            self.assertEqual(len(msgs), 1)
            head = msgs[0].split(b"\n\n", 1)[0]
            self.assertIn(("Delivered-To: %s@%s\n" % (pw.pw_name, origin))
                          .encode(), head)
            self.assertIn(("Delivered-To: %s@localhost\n" % name).encode(),
                          head)
            t.wait_for_log(r"to=<%s@%s>, orig_to=<%s@localhost>, "
                           r"relay=local, .*status=sent"
                           % (pw.pw_name, re.escape(origin), name),
                           since=since)

    def test_rcpt_knows_aliases_and_extensions(self):
        """smtpd accepts what local will deliver (an alias, with or
        without an extension, a user+ext) and refuses the rest."""
        skip_unless_root("system users")
        t = self.tern
        pw = self.user()
        name = "known%s" % uuid.uuid4().hex[:6]
        self.aliases("%s: %s\n" % (name, pw.pw_name))
        for rcpt, code in (("%s@localhost" % name, 250),
                           ("%s+x@localhost" % name, 250),
                           ("%s+tag@localhost" % pw.pw_name, 250),
                           ("no%s@localhost" % name, 550)):
            with harness.SmtpConn(t.smtp_port) as c:
                c.cmd("EHLO client.example.org")
                c.cmd("MAIL FROM:<%s>" % SENDER)
                r = c.cmd("RCPT TO:<%s>" % rcpt)
                self.assertEqual(r[0], code, (rcpt, r))

    def test_extension_goes_to_user_and_its_forward_file(self):
        skip_unless_root("system users")
        t = self.tern
        pw = self.user()
        since = t.log_size()
        qid = self.send("%s+lists@localhost" % pw.pw_name)
        msgs = self.mailbox(pw)
        self.assertIn(("Delivered-To: %s+lists@localhost\n" % pw.pw_name)
                      .encode(), msgs[0])
        t.wait_for_log(r"%s: to=<%s\+lists@localhost>, relay=local.*"
                       r"status=sent \(delivered to maildir"
                       % (qid, pw.pw_name), since=since)
        # ~/.forward+lists wins over ~/.forward for that extension.
        box = os.path.join(pw.pw_dir, "lists.mbox")
        write(os.path.join(pw.pw_dir, ".forward+lists"), box + "\n",
              0o600, pw)
        write(os.path.join(pw.pw_dir, ".forward"), "nobody-here\n",
              0o600, pw)
        self.send("%s+lists@localhost" % pw.pw_name)
        harness.wait_until(lambda: os.path.exists(box) and
                           b"\n\n" in open(box, "rb").read(),
                           harness.DELIVERY_TIMEOUT, box)
        self.assertEqual(os.stat(box).st_uid, pw.pw_uid)
        self.assertEqual(len(harness.maildir_files(t.system_maildir(pw))), 1)

    def test_forward_file_and_an_ignored_one(self):
        skip_unless_root("system users")
        t = self.tern
        a, b = self.user(), self.user()
        write(os.path.join(a.pw_dir, ".forward"),
              "# keep a copy\n%s, \\%s\n" % (b.pw_name, a.pw_name), 0o644, a)
        since = t.log_size()
        self.send("%s@localhost" % a.pw_name)
        self.mailbox(a)
        msgs = self.mailbox(b)
        self.assertIn(("Delivered-To: %s@localhost\n" % a.pw_name).encode(),
                      msgs[0])
        # Group-writable: someone else could redirect the mail; ignored.
        c = self.user()
        write(os.path.join(c.pw_dir, ".forward"), "%s\n" % b.pw_name,
              0o664, c)
        self.send("%s@localhost" % c.pw_name)
        self.mailbox(c)
        t.wait_for_log(r"to=<%s@localhost>: ignoring .*\.forward: writable "
                       r"by group or others" % c.pw_name, since=since)
        self.assertEqual(len(harness.maildir_files(t.system_maildir(b))), 1)

    def test_pipe_alias_gets_message_and_environment(self):
        skip_unless_root("commands run as default_privs")
        t = self.tern
        env_out = os.path.join(self.out, "env")
        msg_out = os.path.join(self.out, "msg")
        self.aliases('pipe: "|env > %s; cat > %s"\n'
                     "fail: |echo no such list; exit 67\n"
                     "later: |exit 75\n" % (env_out, msg_out))
        since = t.log_size()
        qid = self.send("pipe+x@localhost", body=b"From me\nline two\n")
        t.wait_for_log(r"%s: to=<pipe\+x@localhost>, relay=local, .*"
                       r"status=sent \(delivered to command: " % qid,
                       since=since)
        env = dict(line.split("=", 1) for line in
                   open(env_out).read().splitlines() if "=" in line)
        self.assertEqual(env["SENDER"], SENDER)
        self.assertEqual(env["RECIPIENT"], "pipe+x@localhost")
        self.assertEqual(env["LOCAL"], "pipe+x")
        self.assertEqual(env["EXTENSION"], "x")
        self.assertEqual(env["DOMAIN"], "localhost")
        self.assertEqual(env["USER"], "nobody")
        self.assertEqual(env["PATH"], "/usr/bin:/bin")
        self.assertEqual(env["ORIGINAL_RECIPIENT"], "pipe+x@localhost")
        self.assertEqual(os.stat(msg_out).st_uid, pwd.getpwnam("nobody")
                         .pw_uid)
        data = open(msg_out, "rb").read()
        self.assertTrue(data.startswith(
            ("Return-Path: <%s>\nDelivered-To: pipe+x@localhost\n"
             % SENDER).encode()), data[:200])
        self.assertNotIn(b"\r", data)
        self.assertTrue(data.endswith(b"\nFrom me\nline two\n"), data)
        qid = self.send("fail@localhost")
        t.wait_for_log(r"%s: to=<fail@localhost>, .*dsn=5\.1\.1, "
                       r"status=bounced \(command exited with status 67: "
                       r"no such list\)" % qid, since=since)
        qid = self.send("later@localhost")
        t.wait_for_log(r"%s: to=<later@localhost>, .*dsn=4\.3\.0, "
                       r"status=deferred \(command exited with status 75"
                       % qid, since=since)

    def test_file_alias_appends_mbox(self):
        skip_unless_root("files written as default_privs")
        t = self.tern
        box = os.path.join(self.out, "archive")
        self.aliases("archive: %s\n" % box)
        since = t.log_size()
        for _ in range(2):
            qid = self.send("archive@localhost",
                            body=b"From the start\n>From quoted\nend\n")
            t.wait_for_log(r"%s: to=<archive@localhost>, .*status=sent "
                           r"\(delivered to file: %s\)" % (qid, box),
                           since=since)
        data = open(box, "rb").read()
        entries = re.split(rb"(?m)^From ", data)
        self.assertEqual(entries[0], b"")
        self.assertEqual(len(entries), 3, data)
        for e in entries[1:]:
            self.assertTrue(e.startswith(SENDER.encode() + b" "), e[:80])
            self.assertIn(b"\nDelivered-To: archive@localhost\n", e)
            # Postfix's quoting: "From " lines only (mboxo).
            self.assertIn(b"\n>From the start\n>From quoted\nend\n\n", e)
        st = os.stat(box)
        self.assertEqual(st.st_uid, pwd.getpwnam("nobody").pw_uid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)

    def test_include_file(self):
        skip_unless_root("system users")
        t = self.tern
        u1, u2 = self.user(), self.user()
        inc = os.path.join(self.out, "staff.inc")
        write(inc, "# the staff\n%s\n%s, %s\n" % (u1.pw_name, u2.pw_name,
                                                 u1.pw_name))
        self.aliases("staff: :include:%s\n" % inc)
        self.send("staff@localhost")
        self.mailbox(u1)
        self.mailbox(u2)
        self.tern.wait_queue_empty()
        self.assertEqual(len(harness.maildir_files(t.system_maildir(u1))), 1)

    def test_delivered_to_loop_bounces(self):
        skip_unless_root("system users")
        t = self.tern
        pw = self.user()
        since = t.log_size()
        qid = self.send("%s@localhost" % pw.pw_name, extra_headers=(
            "Delivered-To: %s@LocalHost\n" % pw.pw_name).encode())
        t.wait_for_log(r"%s: to=<%s@localhost>, .*dsn=5\.4\.6, "
                       r"status=bounced \(mail forwarding loop for "
                       r"%s@localhost\)" % (qid, pw.pw_name, pw.pw_name),
                       since=since)
        self.assertEqual(harness.maildir_files(t.system_maildir(pw)), [])

    def test_alias_loop_bounces(self):
        t = self.tern
        self.aliases("loopa: loopb\nloopb: loopa\n")
        since = t.log_size()
        self.send("loopa@localhost")
        # loopa -> loopb -> loopa@$myorigin -> loopb again: the copy
        # carries Delivered-To: loopb@$myorigin and bounces there.
        origin = re.escape(t.conf_get("myorigin"))
        t.wait_for_log(r"to=<loopb@%s>, orig_to=<loopa@localhost>, .*"
                       r"dsn=5\.4\.6, status=bounced \(mail forwarding loop "
                       r"for loopb@%s\)" % (origin, origin), since=since)

    def test_self_alias_means_mailbox(self):
        skip_unless_root("system users")
        t = self.tern
        a, b = self.user(), self.user()
        self.aliases("%s: %s, %s\n" % (a.pw_name, a.pw_name, b.pw_name))
        self.send("%s@localhost" % a.pw_name)
        self.mailbox(a)
        self.mailbox(b)
        t.wait_queue_empty()
        self.assertEqual(len(harness.maildir_files(t.system_maildir(a))), 1)

    def test_root_mail_goes_to_its_alias_never_to_root(self):
        skip_unless_root("system users")
        t = self.tern
        # As tern init leaves it without SUDO_USER: root unaliased.
        self.aliases("postmaster: root\n")
        since = t.log_size()
        qid = self.send("root@localhost")
        t.wait_for_log(r"%s: to=<root@localhost>, .*dsn=4\.3\.0, "
                       r"status=deferred \(refusing to deliver to root's "
                       r"mailbox: alias root to a user\)" % qid, since=since)
        admin = self.user()
        self.aliases("postmaster: root\nroot: %s\n" % admin.pw_name)
        self.send("postmaster@localhost")
        msgs = self.mailbox(admin)
        self.assertIn(b"Delivered-To: postmaster@localhost\n", msgs[0])


class NewaliasesTest(TernTestCase):
    """Building the table: newaliases and ternmap -a; no root needed."""

    start_instance = False

    def test_init_writes_and_builds_default_aliases(self):
        t = self.tern
        with open(os.path.join(t.dir, "aliases")) as f:
            text = f.read()
        for line in ("postmaster: root", "MAILER-DAEMON: postmaster",
                     "abuse: postmaster"):
            self.assertIn(line + "\n", text)
        q = run([t.sbin("ternmap"), "-c", t.dir, "-q", "mailer-daemon",
                 os.path.join(t.dir, "aliases")])
        self.assertEqual(q.stdout, "postmaster\n")

    def test_newaliases_and_ternmap_a_build_and_name_bad_lines(self):
        t = self.tern
        src = os.path.join(t.tmp, "aliases-%s" % uuid.uuid4().hex[:6])
        write(src, '# list\nStaff: a, b,\n\tc\n"Odd Name": "|cmd, x"\n')
        run([t.sbin("ternmap"), "-c", t.dir, "-a", src])
        q = run([t.sbin("ternmap"), "-c", t.dir, "-q", "staff", src])
        self.assertEqual(q.stdout, "a, b,\tc\n")
        q = run([t.sbin("ternmap"), "-c", t.dir, "-q", "odd name", src])
        self.assertEqual(q.stdout, '"|cmd, x"\n')
        write(src, "ok: a\nbroken line without colon\n")
        r = run([t.sbin("ternmap"), "-c", t.dir, "-a", src], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s, line 2: " % src, r.stderr)
        # The old table stays.
        q = run([t.sbin("ternmap"), "-c", t.dir, "-q", "staff", src])
        self.assertEqual(q.returncode, 0)
        t.conf_set(alias_database="hash:%s" % src)
        r = run([t.sbin("newaliases"), "-c", t.dir], check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s, line 2: " % src, r.stderr)
        write(src, "ok: a\n")
        run([t.sbin("newaliases"), "-c", t.dir])
        q = run([t.sbin("ternmap"), "-c", t.dir, "-q", "ok", src])
        self.assertEqual(q.stdout, "a\n")
