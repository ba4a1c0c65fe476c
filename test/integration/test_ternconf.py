# SPDX-License-Identifier: MIT
"""ternconf as postconf: name lookup and the unknown-name warning, -h,
-M (the services table, normalised), -e under a lock (20 concurrent
edits of different names all land), -X and -#. Only a configuration
directory is needed: no daemon runs."""

import os
import re
import subprocess

import harness
from harness import TernTestCase, run

# Twenty time parameters that accept 77 seconds and depend on no other.
EDIT_NAMES = (
    "smtp_connection_reuse_time", "smtp_connect_timeout",
    "smtp_greeting_timeout", "smtp_helo_timeout", "smtp_starttls_timeout",
    "smtp_mail_timeout", "smtp_rcpt_timeout", "smtp_data_init_timeout",
    "smtp_data_xfer_timeout", "smtp_data_done_timeout", "smtp_rset_timeout",
    "smtp_quit_timeout", "ipc_timeout", "smtpd_timeout",
    "smtpd_first_command_timeout", "smtpd_command_time_limit",
    "smtpd_data_time_limit", "auth_failure_window", "dns_lookup_timeout",
    "transport_retry_time")


class TernconfTest(TernTestCase):
    start_instance = False

    def conf_text(self):
        with open(os.path.join(self.tern.dir, "tern.conf")) as f:
            return f.read()

    def test_lookup_unknown_name_and_values_only(self):
        t = self.tern
        r = t.ternconf("queue_run_delay", "no_such_param", "mail_owner",
                       check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr,
                         "ternconf: warning: no_such_param: unknown "
                         "parameter\n")
        self.assertRegex(r.stdout, r"^queue_run_delay = \S+\n"
                                   r"mail_owner = \S+\n$")
        self.assertEqual(t.ternconf("-h", "mail_owner").stdout,
                         r.stdout.splitlines()[1].split(" = ")[1] + "\n")
        t.conf_set(delay_warning_time="3h")
        self.assertEqual(t.ternconf("-h", "-n", "delay_warning_time").stdout,
                         "3h\n")
        self.assertEqual(t.ternconf("-h", "-d", "smtp_rset_timeout").stdout,
                         "20\n")
        self.assertEqual(t.ternconf("-h", "-x", "config_directory").stdout,
                         t.dir + "\n")

    def test_services_table(self):
        t = self.tern
        with open(t.services_path(), "a") as f:
            f.write("# a comment\n"
                    "2525  inet  n  -  n  3  smtpd\n"
                    "      -o smtpd_greet_pause=0\n"
                    "\t-o smtpd_banner=x\n")
        out = t.ternconf("-M").stdout.splitlines()
        names = [line.split()[0] for line in out]
        self.assertIn("qmgr", names)
        self.assertIn("2525", names)
        # postconf -M columns: the type at 11, the command at 49 here.
        line = [x for x in out if x.startswith("2525 ")][0]
        self.assertEqual(line, "%-11s%-6s%-8s%-8s%-8s%-8s%s" % (
            "2525", "inet", "n", "-", "n", "3",
            "smtpd -o smtpd_greet_pause=0 -o smtpd_banner=x"))
        self.assertEqual(t.ternconf("-M", "2525").stdout, line + "\n")
        self.assertEqual(t.ternconf("-M", "2525/inet").stdout, line + "\n")
        self.assertEqual(t.ternconf("-M", "qmgr/unix").stdout.split()[:2],
                         ["qmgr", "unix"])
        r = t.ternconf("-M", "2525/unix", "nosuch", "qmgr", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.split()[0], "qmgr")
        self.assertIn("2525/unix: no such service", r.stderr)
        self.assertIn("nosuch: no such service", r.stderr)

    def test_concurrent_edits_all_land(self):
        t = self.tern
        procs = [subprocess.Popen(
            [t.sbin("ternconf"), "-c", t.dir, "-e", "%s=77" % name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for name in EDIT_NAMES]
        for name, p in zip(EDIT_NAMES, procs):
            _, err = p.communicate(timeout=harness.COMMAND_TIMEOUT)
            self.assertEqual(p.returncode, 0, (name, err))
        set_now = t.ternconf("-n").stdout
        for name in EDIT_NAMES:
            self.assertIn("%s = 77\n" % name, set_now)
        # The lock file stays (removing it would break the lock).
        st = os.stat(os.path.join(t.dir, "ternconf.lock"))
        self.assertEqual(st.st_mode & 0o777, 0o600)

    def test_remove_and_comment_out(self):
        t = self.tern
        t.conf_set(maximal_backoff_time="2h", minimal_backoff_time="5m")
        with open(os.path.join(t.dir, "tern.conf"), "a") as f:
            f.write("mydestination = localhost,\n    # between\n"
                    "  other.example\n")
        t.ternconf("-X", "maximal_backoff_time")
        self.assertNotIn("maximal_backoff_time", self.conf_text())
        self.assertEqual(t.ternconf("-h", "-n", "maximal_backoff_time"
                                    ).stdout, "")
        self.assertEqual(t.ternconf("-h", "maximal_backoff_time").stdout,
                         t.ternconf("-h", "-d", "maximal_backoff_time"
                                    ).stdout)
        t.ternconf("-#", "mydestination", "minimal_backoff_time")
        text = self.conf_text()
        self.assertIn("#mydestination = localhost,\n    # between\n"
                      "#  other.example\n", text)
        self.assertIn("#minimal_backoff_time = 5m\n", text)
        self.assertNotRegex(text, re.compile(r"^minimal_backoff_time", re.M))
        self.assertEqual(t.ternconf("-n", "minimal_backoff_time").stdout, "")
        # Not set: nothing to do, no error; unknown: an error.
        t.ternconf("-X", "maximal_backoff_time")
        r = t.ternconf("-X", "no_such_param", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no_such_param: unknown parameter", r.stderr)
