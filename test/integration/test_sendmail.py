# SPDX-License-Identifier: MIT
"""sendmail and terndrop, run as an ordinary user as scripts, PHP, mutt
and git run them: what lands in maildrop/ (a queue file owned by the
user, mode 0544 when complete, that no other user can open), -t with
To/Cc/Bcc (Bcc gone), -i and the lone dot, an SMTP session with -bs,
the refusals (authorized_submit_users, local_login_sender_maps,
message_size_limit) with their sysexits codes, -bv, and, where the
pickup daemon is installed, delivery - also of mail submitted while
tern was stopped."""

import os
import shutil
import stat
import subprocess
import unittest

import harness
from harness import TernTestCase, run, wait_until

RCPT = "rcpt@example.test"
CC = "cc@example.test"
BCC = "bcc@example.test"
SENDER = "someone@example.org"
EX_USAGE, EX_DATAERR, EX_NOPERM = 64, 65, 77


def records(path):
    with open(path, "rb") as f:
        return harness.queue_file_records(f.read())


def envelope(path):
    """(sender, [recipients], content bytes, {attr: value})"""
    sender, rcpts, content, attrs = None, [], None, {}
    for rtype, payload in records(path):
        if rtype == "S":
            sender = payload.decode()
        elif rtype == "R":
            rcpts.append(payload.split(b"\0")[0].decode())
        elif rtype == "M":
            content = payload
        elif rtype == "A":
            k, _, v = payload.decode().partition("=")
            attrs[k] = v
    return sender, rcpts, content, attrs


class SendmailBase(TernTestCase):
    @classmethod
    def setUpClass(cls):
        harness.skip_unless_root("running sendmail as an ordinary user")
        super().setUpClass()
        cls.user = cls.tern.create_system_user()
        cls.other = cls.tern.create_system_user()
        cls.sendmail = cls.tern.sbin("sendmail")

    def as_user(self, pw, argv, input=None, check=False, env=None):
        cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
               "--init-groups", "--reset-env"]
        e = {k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")}
        e.update(HOME=pw.pw_dir, USER=pw.pw_name, PATH="/usr/bin:/bin")
        e.update(env or {})
        return run(cmd + list(argv), check=check, input=input, env=e)

    def sm(self, *args, input=b"", pw=None, check=True):
        res = self.as_user(pw or self.user,
                           [self.sendmail, "-C", self.tern.dir] + list(args),
                           input=input)
        if check:
            self.assertEqual(res.returncode, 0, res.output)
        return res

    def maildrop(self):
        return set(self.tern.queue_files("maildrop"))

    def submitted(self, before):
        """The maildrop file a submission made (when pickup is not
        there to take it), else None."""
        new = self.maildrop() - before
        if not new:
            return None
        self.assertEqual(len(new), 1, new)
        return os.path.join(self.tern.queue_dir, "maildrop", new.pop())

    def setUp(self):
        super().setUp()
        if self.as_user(self.user, ["test", "-x", self.sendmail]).returncode:
            self.skipTest("%s is not reachable by an ordinary user"
                          % self.sendmail)



class MaildropTest(SendmailBase):
    """tern stopped: what sendmail and terndrop leave in maildrop/."""
    start_instance = False

    # ----- what terndrop leaves

    def test_maildrop_file_owned_by_user_ready_and_private(self):
        before = self.maildrop()
        self.sm("-f", SENDER, "-i", "-F", "Some One", "-N",
                "success,failure", "-V", "env-1", "-R", "hdrs", "--", RCPT,
                input=b"Subject: x\n\nline\n.\nafter the dot\n")
        path = self.submitted(before)
        self.assertIsNotNone(path)
        st = os.lstat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o544)
        self.assertEqual(st.st_uid, self.user.pw_uid)
        sender, rcpts, content, attrs = envelope(path)
        self.assertEqual(sender, SENDER)
        self.assertEqual(rcpts, [RCPT])
        self.assertEqual(content,
                         b"Subject: x\r\n\r\nline\r\n.\r\nafter the dot\r\n")
        self.assertEqual(attrs, {"fullname": "Some One", "envid": "env-1",
                                 "ret": "HDRS"})
        notify = [p.split(b"\0")[2] for t, p in records(path) if t == "R"]
        self.assertEqual(notify, [b"3"])   # success|failure
        # Neither another user nor the owner can open it again.
        probe = ["python3", "-c", "open(%r, 'rb')" % path]
        for pw in (self.other, self.user):
            res = self.as_user(pw, probe)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("PermissionError", res.stderr)
        os.unlink(path)

    def test_sendmail_killed_mid_message_queues_nothing(self):
        """kill -9 gives sendmail no chance to stop terndrop: terndrop
        sees its input end without the end mark and keeps nothing."""
        before = self.maildrop()
        cmd = ["setpriv", "--reuid=%d" % self.user.pw_uid,
               "--regid=%d" % self.user.pw_gid, "--init-groups",
               "--reset-env", self.sendmail, "-C", self.tern.dir, "-i",
               RCPT]
        env = {k: v for k, v in os.environ.items()
               if k.endswith("SAN_OPTIONS")}
        env.update(PATH="/usr/bin:/bin")
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        try:
            # More than one frame, so terndrop has written part of it.
            p.stdin.write(b"Subject: cut\n\n" + b"x" * 70 + b"\n" * 2000)
            p.stdin.flush()
            drop = wait_until(
                lambda: [q for q in harness.all_pids()
                         if harness.proc_ppid(q) == p.pid
                         and "terndrop" in " ".join(
                             harness.proc_cmdline(q) or [])],
                10, "sendmail's terndrop")
            wait_until(lambda: self.maildrop() - before, 10,
                       "terndrop's partial file")
            p.kill()
            p.wait(timeout=10)
            wait_until(lambda: not harness.pid_alive(drop[0]), 10,
                       "terndrop to end")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            p.stdin.close()
        self.assertEqual(self.maildrop() - before, set())

    def test_lone_dot_ends_without_i_and_default_sender(self):
        before = self.maildrop()
        self.sm(RCPT, input=b"Subject: y\r\n\r\nbody\r\n.\r\nnot sent\r\n")
        path = self.submitted(before)
        sender, _, content, _ = envelope(path)
        self.assertEqual(sender, self.user.pw_name)
        self.assertEqual(content, b"Subject: y\r\n\r\nbody\r\n")
        os.unlink(path)

    def test_users_own_instance_without_privilege(self):
        # An instance the user made and owns: terndrop does not trust its
        # directory, drops setgid, and writes as the user.
        inst = os.path.join(self.user.pw_dir, "inst")
        res = self.as_user(self.user, [self.tern.sbin("tern"), "-c", inst,
                                       "init", "--port-base",
                                       str(harness.pick_port_base())])
        self.assertEqual(res.returncode, 0, res.output)
        res = self.as_user(self.user, [self.sendmail, "-C", inst, RCPT],
                           input=b"Subject: own\n\nhi\n")
        self.assertEqual(res.returncode, 0, res.output)
        drop = os.path.join(inst, "queue", "maildrop")
        if not os.path.isdir(drop):
            drop = os.path.join(self.as_user(
                self.user, [self.tern.sbin("ternconf"), "-c", inst, "-x",
                            "queue_directory"]).stdout.split("=")[1].strip(),
                "maildrop")
        files = os.listdir(drop)
        self.assertEqual(len(files), 1)
        st = os.lstat(os.path.join(drop, files[0]))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)),
                         (self.user.pw_uid, 0o544))

    def test_resent_headers_win(self):
        msg = (b"To: old@example.test\nResent-To: new@example.test\n"
               b"Resent-Bcc: hidden@example.test\n\nbody\n")
        before = self.maildrop()
        self.sm("-t", "--", "extra@example.test", input=msg)
        path = self.submitted(before)
        _, rcpts, content, _ = envelope(path)
        self.assertEqual(sorted(rcpts), ["extra@example.test",
                                         "hidden@example.test",
                                         "new@example.test"])
        self.assertNotIn(b"hidden", content)
        os.unlink(path)

    def test_long_lines_folded(self):
        words = " ".join(["word%d" % i for i in range(300)])
        msg = ("Subject: %s\n\n%s\n" % (words, "x" * 2500)).encode()
        before = self.maildrop()
        self.sm("-i", RCPT, input=msg)
        path = self.submitted(before)
        _, _, content, _ = envelope(path)
        lines = content.split(b"\r\n")
        self.assertTrue(all(len(x) <= 998 for x in lines))
        self.assertNotIn(b"\n", content.replace(b"\r\n", b""))
        # The header broke at white space: unfolding gives it back.
        hdr = content.split(b"\r\n\r\n")[0].replace(b"\r\n", b"")
        self.assertEqual(hdr, ("Subject: " + words).encode())
        os.unlink(path)



class SendmailDeliveryTest(SendmailBase):
    """With tern running: pickup takes the maildrop files and the mail
    arrives."""

    def test_dot_kept_with_i_delivered(self):
        rcpt = "dot@example.test"
        self.tern.add_user(rcpt, "pw")
        self.sm("-f", SENDER, "-i", rcpt,
                input=b"Subject: dot\n\nbefore\n.\nafter\n")
        files = self.tern.wait_for_maildir(self.tern.virtual_maildir(rcpt), 1)
        with open(files[0], "rb") as f:
            data = f.read()
        self.assertIn(b"\n\nbefore\n.\nafter\n", data.replace(b"\r\n", b"\n"))
        self.assertIn(b"Return-Path: <%s>" % SENDER.encode(), data)

    def test_t_takes_to_cc_bcc_and_removes_bcc(self):
        msg = ("From: me@example.org\nTo: Rcpt <%s>\nCc: \"C, C\" <%s>"
               " (copy)\nBcc:\n  %s\nSubject: t\n\nbody\n" % (RCPT, CC, BCC))
        for a in (RCPT, CC, BCC):
            self.tern.add_user(a, "pw")
        self.sm("-t", "-i", input=msg.encode())
        for a in (RCPT, CC, BCC):
            files = self.tern.wait_for_maildir(
                self.tern.virtual_maildir(a), 1)
            with open(files[0], "rb") as f:
                data = f.read()
            self.assertIn(b"Subject: t", data)
            self.assertIn(b"Cc: \"C, C\" <%s> (copy)" % CC.encode(), data)
            self.assertNotIn(b"Bcc", data)
            self.assertNotIn(BCC.encode(), data)

    # ----- common callers

    def test_php_and_mutt_invocations(self):
        # (arguments, does a lone "." end the message?)
        calls = ((["-t", "-i"], False), (["-oem", "-oi", "--", None], False),
                 (["-odq", "-oi", "-f", SENDER, None], False),
                 (["-odi", "-Am", "-U", "-G", "-h", "9", None], True))
        for i, (args, dot_ends) in enumerate(calls):
            rcpt = "caller%d@example.test" % i
            self.tern.add_user(rcpt, "pw")
            argv = [rcpt if a is None else a for a in args]
            self.sm(*argv, input=("To: %s\nSubject: caller %d\n\n.\nbody\n"
                                  % (rcpt, i)).encode())
            files = self.tern.wait_for_maildir(
                self.tern.virtual_maildir(rcpt), 1)
            with open(files[0], "rb") as f:
                data = f.read().replace(b"\r\n", b"\n")
            self.assertIn(b"Subject: caller %d\n" % i, data, argv)
            if dot_ends:
                self.assertNotIn(b"body", data, argv)
            else:
                self.assertIn(b"\n\n.\nbody\n", data, argv)

    def test_bs_session(self):
        rcpt = "bs@example.test"
        self.tern.add_user(rcpt, "pw")
        cmd = ["setpriv", "--reuid=%d" % self.user.pw_uid,
               "--regid=%d" % self.user.pw_gid, "--init-groups",
               "--reset-env", self.sendmail, "-C", self.tern.dir, "-bs"]
        env = {k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")}
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env)
        try:
            def reply():
                lines = []
                while True:
                    line = p.stdout.readline().decode()
                    self.assertTrue(line, "sendmail -bs closed early")
                    lines.append(line)
                    if line[3:4] != "-":
                        return "".join(lines)

            def cmd_(line):
                p.stdin.write(line.encode() + b"\r\n")
                p.stdin.flush()
                return reply()
            self.assertTrue(reply().startswith("220 "))
            self.assertIn("250-SIZE", cmd_("EHLO localhost"))
            self.assertTrue(cmd_("RCPT TO:<%s>" % rcpt).startswith("503 5.5.1"))
            self.assertTrue(cmd_("MAIL FROM:<%s>" % SENDER).startswith("250"))
            self.assertTrue(cmd_("RCPT TO:<bad").startswith("501 5.1.3"))
            self.assertTrue(cmd_("RCPT TO:<%s>" % rcpt).startswith("250"))
            self.assertTrue(cmd_("VRFY x").startswith("252"))
            self.assertTrue(cmd_("DATA").startswith("354"))
            r = cmd_("Subject: bs\r\n\r\n..dot\r\n.")
            self.assertRegex(r, r"^250 2\.0\.0 Ok: queued as [0-9A-Z]{14}")
            self.assertTrue(cmd_("BOGUS").startswith("500 5.5.2"))
            self.assertTrue(cmd_("QUIT").startswith("221"))
            self.assertEqual(p.wait(timeout=30), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            harness.check_sanitizer_output(p.stderr.read().decode(), "-bs")
            p.stdin.close()
            p.stdout.close()
            p.stderr.close()
        files = self.tern.wait_for_maildir(self.tern.virtual_maildir(rcpt),
                                           1)
        with open(files[0], "rb") as f:
            data = f.read().replace(b"\r\n", b"\n")
        self.assertIn(b"Return-Path: <%s>" % SENDER.encode(), data)
        # The SMTP dot-stuffing is undone: one dot left.
        self.assertIn(b"Subject: bs\n", data)
        self.assertTrue(data.endswith(b"\n\n.dot\n"), data)

    # ----- refusals

    def test_refusals(self):
        before = self.maildrop()
        res = self.sm(input=b"x\n", check=False)
        self.assertEqual(res.returncode, EX_USAGE, res.output)
        self.assertIn("no recipients specified", res.stderr)
        name = self.user.pw_name
        try:
            self.tern.conf_set(local_login_sender_maps="inline:{ %s="
                               "%s@example.org }" % (name, name))
            res = self.sm("-f", SENDER, RCPT, input=b"x\n", check=False)
            self.assertEqual(res.returncode, EX_NOPERM, res.output)
            self.assertIn("not authorized to use sender", res.stderr)
            res = self.sm("-f", "%s+ext@example.org" % name, RCPT,
                          input=b"x\n", check=False)
            self.assertEqual(res.returncode, 0, res.output)
        finally:
            self.tern.conf_set(local_login_sender_maps="static:*")
        try:
            self.tern.conf_set(authorized_submit_users="root")
            res = self.sm(RCPT, input=b"x\n", check=False)
            self.assertEqual(res.returncode, EX_NOPERM, res.output)
            self.assertIn("not authorized to submit mail", res.stderr)
        finally:
            self.tern.conf_set(authorized_submit_users="static:anyone")
        try:
            self.tern.conf_set(message_size_limit="2048")
            res = self.sm("-i", RCPT, input=b"x" * 5000 + b"\n", check=False)
            self.assertEqual(res.returncode, EX_DATAERR, res.output)
            self.assertIn("message file too big", res.stderr)
        finally:
            self.tern.conf_set(message_size_limit="10240000")
        # The only file left is the one allowed sender's.
        left = self.maildrop() - before
        self.assertLessEqual(len(left), 1)
        for n in left:
            os.unlink(os.path.join(self.tern.queue_dir, "maildrop", n))

    # ----- other modes and installation

    def test_bv_and_links(self):
        res = self.sm("-bv", "someone@remote.invalid", RCPT)
        self.assertIn("someone@remote.invalid... deliverable: mailer smtp, "
                      "host remote.invalid", res.stdout)
        self.assertIn("%s... deliverable: mailer local" % RCPT, res.stdout)
        mailq = self.tern.sbin("mailq")
        self.assertEqual(os.readlink(mailq), "sendmail")
        drop = os.stat(self.tern.sbin("terndrop"))
        if harness._group_exists("terndrop"):
            self.assertTrue(drop.st_mode & stat.S_ISGID)

    def test_q_flushes_through_ternqueue(self):
        """-q, and -qS which tern cannot select by, flush the whole
        queue as the user (through showq)."""
        for args, warns in ((["-q"], False), (["-qSsomeone"], True)):
            since = self.tern.log_size()
            res = self.sm(*args)
            self.assertEqual("delivering all deferred mail" in res.stderr,
                             warns, res.stderr)
            self.tern.wait_for_log(
                r"showq\[\d+\]: .*flush: requested by uid %d"
                % self.user.pw_uid, since=since)

    def test_git_send_email(self):
        """git send-email with tern's sendmail as its --smtp-server, the
        way git documents it for hosts with a local MTA; TERN_CONFIG
        names the instance."""
        git = shutil.which("git")
        if not git or "--smtp-server" not in run(
                [git, "send-email", "-h"], check=False).output:
            self.skipTest("git send-email (Debian's git-email) is not "
                          "installed")
        rcpt = "git@example.test"
        self.tern.add_user(rcpt, "pw")
        patch = os.path.join(self.user.pw_dir, "0001-fix.patch")
        with open(patch, "w") as f:
            f.write("From 0123456789abcdef0123456789abcdef01234567 Mon Sep "
                    "17 00:00:00 2001\n"
                    "From: Some One <someone@example.org>\n"
                    "Date: Tue, 1 Dec 2026 10:00:00 +0000\n"
                    "Subject: [PATCH] Fix the frobnicator\n\n"
                    "It was broken.\n---\n a.txt | 2 +-\n"
                    " 1 file changed, 1 insertion(+), 1 deletion(-)\n\n"
                    "diff --git a/a.txt b/a.txt\n--- a/a.txt\n"
                    "+++ b/a.txt\n@@ -1 +1 @@\n-old\n+new\n"
                    "-- \n2.39.5\n")
        os.chown(patch, self.user.pw_uid, self.user.pw_gid)
        # setpriv --reset-env drops the caller's environment: env(1)
        # sets what git and sendmail need after it.
        res = self.as_user(
            self.user,
            ["env", "TERN_CONFIG=" + self.tern.dir, "GIT_CONFIG_NOSYSTEM=1",
             "GIT_COMMITTER_NAME=Some One",
             "GIT_COMMITTER_EMAIL=someone@example.org",
             "GIT_AUTHOR_NAME=Some One",
             "GIT_AUTHOR_EMAIL=someone@example.org",
             git, "send-email", "--confirm=never", "--quiet",
             "--smtp-server=" + self.sendmail, "--to=" + rcpt,
             "--from=Some One <someone@example.org>",
             "--envelope-sender=someone@example.org", patch])
        self.assertEqual(res.returncode, 0, res.output)
        files = self.tern.wait_for_maildir(self.tern.virtual_maildir(rcpt),
                                           1)
        with open(files[0], "rb") as f:
            data = f.read().replace(b"\r\n", b"\n")
        self.assertIn(b"Subject: [PATCH] Fix the frobnicator", data)
        self.assertIn(b"Return-Path: <someone@example.org>", data)
        self.assertIn(b"\n+new\n", data)

    def test_submitted_while_stopped_delivered_after_start(self):
        tern = self.new_instance(start=False)
        pw = tern.create_system_user()
        tern.add_user(RCPT, "pw")
        res = self.as_user(pw, [self.sendmail, "-C", tern.dir, RCPT],
                           input=b"Subject: while stopped\n\nhi\n")
        self.assertEqual(res.returncode, 0, res.output)
        self.assertEqual(len(tern.queue_files("maildrop")), 1)
        tern.start()
        files = tern.wait_for_maildir(tern.virtual_maildir(RCPT), 1)
        with open(files[0], "rb") as f:
            self.assertIn(b"Subject: while stopped", f.read())


if __name__ == "__main__":
    unittest.main()
