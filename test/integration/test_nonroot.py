# SPDX-License-Identifier: MIT
"""tern for a quick trial as an ordinary user: init, start, mail in and
out, stop, with no privilege changes anywhere. CI runs as root, so this
test creates an ordinary user and runs every command as that user."""

import os
import pwd
import smtplib
import subprocess
import unittest

import harness
from harness import make_message, run, wait_until

RCPT = "dora@example.test"
SENDER = "trial@example.org"


class OrdinaryUserTest(harness.TernTestCase):
    class_instance = False

    def as_user(self, pw, *argv, check=True, input=None):
        cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
               "--init-groups", "--reset-env"]
        env = {k: v for k, v in os.environ.items()
               if k.endswith("SAN_OPTIONS")}
        env.update(HOME=pw.pw_dir, USER=pw.pw_name,
                   PATH="/usr/bin:/bin")
        return run(cmd + list(argv), check=check, input=input, env=env)

    def test_whole_instance_as_ordinary_user(self):
        harness.skip_unless_root("creating an ordinary user to run as")
        # A throw-away TernInstance only provides a temp dir and a user.
        scratch = self.new_instance(start=False)
        pw = scratch.create_system_user()
        tern = os.path.join(harness.SBIN_DIR, "tern")
        ternuser = os.path.join(harness.SBIN_DIR, "ternuser")
        if self.as_user(pw, "test", "-x", tern, check=False).returncode:
            self.skipTest("%s is not reachable by an ordinary user" % tern)
        inst = os.path.join(pw.pw_dir, "inst")
        base = harness.pick_port_base()
        self.as_user(pw, tern, "-c", inst, "init", "--port-base", str(base))
        self.as_user(pw, ternuser, "-c", inst, "add", RCPT, "-",
                     input=b"pw-dora\n")
        self.as_user(pw, tern, "-c", inst, "start")
        log = os.path.join(inst, "log", "maillog")
        try:
            def banner():
                try:
                    with smtplib.SMTP("127.0.0.1", base + 25, timeout=5):
                        return True
                except OSError:
                    return False
            wait_until(banner, 30, "smtpd of the user's instance")
            _, msg = make_message(SENDER, RCPT, subject="as a user")
            with smtplib.SMTP("127.0.0.1", base + 25, timeout=20) as s:
                s.sendmail(SENDER, [RCPT], msg.replace(b"\n", b"\r\n"))
            new = os.path.join(inst, "mail", "example.test", "dora",
                               "Maildir", "new")
            files = wait_until(lambda: os.path.isdir(new) and os.listdir(new),
                               30, "delivery into %s" % new)
            self.assertEqual(os.stat(os.path.join(new, files[0])).st_uid,
                             pw.pw_uid)
            # Every process of the instance runs as that user: nothing
            # changed identity, nothing needed root.
            procs = [p for p in harness.all_pids()
                     if any(inst in a for a in harness.proc_cmdline(p) or [])]
            self.assertGreaterEqual(len(procs), 4)
            for p in procs:
                self.assertEqual(set(harness.process_uids(p)), {pw.pw_uid},
                                 harness.proc_cmdline(p))
        finally:
            self.as_user(pw, tern, "-c", inst, "stop", check=False)
            with open(log, errors="replace") as f:
                harness.check_sanitizer_output(f.read(), log)
        wait_until(lambda: not [p for p in harness.all_pids() if any(
            inst in a for a in harness.proc_cmdline(p) or [])], 30,
            "the user's instance to stop")


if __name__ == "__main__":
    unittest.main()
