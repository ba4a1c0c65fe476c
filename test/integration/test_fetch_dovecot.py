# SPDX-License-Identifier: MIT
"""The fetch daemon against Dovecot as the ISP's server (issue 12): most
ISPs' mailboxes are served by Dovecot. A private Dovecot instance (its
own base_dir, log and passwd-file, nothing of /etc/dovecot) serves IMAP
and POP3 on loopback with only the LOGIN SASL mechanism (then Dovecot
says LOGINDISABLED and refuses USER/PASS, which it runs through PLAIN),
so that tern's client must log in with AUTHENTICATE LOGIN and POP3's
AUTH LOGIN (RFC 5034, chosen from CAPA's SASL line); an office tern
instance collects a user's mail over each, and what a user sees is checked: the office maildir holds every
message once, byte for byte, and Dovecot's mailbox is emptied (or, with
keep=yes, kept, marked \\Seen and not collected twice)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

import harness
from harness import TernTestCase
# the ISP's messages of test_fetch (only the function: its tests stay
# there)
from test_fetch import message

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PW = "Isp-dovecot-pw-1"
START_TIMEOUT = 20


class DovecotIsp:
    """A private Dovecot serving IMAP and POP3 in plaintext on 127.0.0.1
    with the passwd-file users given, their mail in
    DIR/mail/DOMAIN/USER/Maildir as vmail."""

    def __init__(self, directory, users, mechanisms="login"):
        self.dir = directory
        self.imap_port = harness.find_free_port()
        self.pop3_port = harness.find_free_port()
        vmail = harness.pwd.getpwnam("vmail")
        self.uid, self.gid = vmail.pw_uid, vmail.pw_gid
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
        os.chown(os.path.join(directory, "mail"), self.uid, self.gid)
        passwd = os.path.join(directory, "passwd")
        with open(passwd, "w") as f:
            for user, pw in users.items():
                f.write("%s:{PLAIN}%s\n" % (user, pw))
        os.chmod(passwd, 0o644)
        self.conf = os.path.join(directory, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("""base_dir = %(d)s/run
state_dir = %(d)s/state
instance_name = tern-test-%(port)d
log_path = %(d)s/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = %(mech)s
mail_location = maildir:~/Maildir
first_valid_uid = %(uid)d
passdb {
  driver = passwd-file
  args = %(d)s/passwd
}
userdb {
  driver = static
  args = uid=%(uid)d gid=%(gid)d home=%(d)s/mail/%%d/%%n
}
""" % {"d": directory, "port": self.imap_port,
       "uid": self.uid, "gid": self.gid, "mech": mechanisms})
            for proto, port in (("imap", self.imap_port),
                                ("pop3", self.pop3_port)):
                f.write("service %(p)s-login {\n"
                        "  inet_listener %(p)s {\n"
                        "    address = 127.0.0.1\n"
                        "    port = %(port)d\n"
                        "  }\n"
                        "  inet_listener %(p)ss {\n"
                        "    port = 0\n"
                        "  }\n"
                        "}\n" % {"p": proto, "port": port})
        self.env = harness.foreign_env()

    def start(self):
        # Its master daemonizes: output to a file, not to pipes a run()
        # would wait on until the daemon closed them.
        with open(os.path.join(self.dir, "start.out"), "wb") as out:
            r = subprocess.run([DOVECOT, "-c", self.conf], env=self.env,
                               stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT,
                               timeout=START_TIMEOUT)
        if r.returncode != 0:
            with open(os.path.join(self.dir, "start.out"), "rb") as f:
                raise AssertionError("dovecot failed to start: %r %s"
                                     % (f.read()[-2000:], self.log()))
        harness.wait_until(
            lambda: not harness.port_free(self.imap_port)
            and not harness.port_free(self.pop3_port),
            START_TIMEOUT, "Dovecot listening on %d and %d"
            % (self.imap_port, self.pop3_port))

    def stop(self):
        pid_file = os.path.join(self.dir, "run", "master.pid")
        try:
            with open(pid_file) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        harness.wait_until(lambda: not harness.pid_alive(pid),
                           START_TIMEOUT, "Dovecot's master to exit")

    def maildir(self, user):
        local, domain = user.split("@")
        return os.path.join(self.dir, "mail", domain, local, "Maildir")

    def deliver(self, user, tag, count):
        """count messages in user's new/, as a delivery leaves them."""
        md = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub), exist_ok=True)
        for root, dirs, files in os.walk(os.path.dirname(
                os.path.dirname(md))):
            os.chown(root, self.uid, self.gid)
        for i in range(count):
            path = os.path.join(md, "new", "%d.M%dP%d.isp" %
                                (1700000000 + i, i, os.getpid()))
            with open(path, "wb") as f:
                f.write(message(tag, i))
            os.chown(path, self.uid, self.gid)
        return md

    def left(self, user):
        md = self.maildir(user)
        return sum(len(os.listdir(os.path.join(md, sub)))
                   for sub in ("new", "cur"))

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class FetchFromDovecotTest(TernTestCase):
    """The office is the class instance; Dovecot is the ISP."""

    USERS = {"imapuser@isp.test": PW, "popuser@isp.test": PW,
             "keptuser@isp.test": PW}

    @classmethod
    def configure(cls, tern):
        if not harness.is_root():
            raise unittest.SkipTest("Dovecot runs its mail processes as "
                                    "vmail (run as root)")
        if not os.path.exists(DOVECOT):
            raise unittest.SkipTest("dovecot is not installed")
        cls.tmp = os.path.realpath(tempfile.mkdtemp(prefix="tern-dvisp-"))
        harness.record_for_cleanup("dir", cls.tmp)
        os.chmod(cls.tmp, 0o755)
        cls.isp = DovecotIsp(cls.tmp, cls.USERS)
        cls.isp.start()
        tern.conf_set(fetch_interval="0", fetch_timeout="20")
        accounts = os.path.join(tern.dir, "fetch_accounts")
        with open(accounts, "w") as f:
            f.write("dvimap imap://imapuser@isp.test@127.0.0.1:%d "
                    "password=%s to=alice@example.test tls=none\n"
                    "dvpop pop3://popuser@isp.test@127.0.0.1:%d "
                    "password=%s to=bob@example.test tls=none\n"
                    "dvkept imap://keptuser@isp.test@127.0.0.1:%d/INBOX "
                    "password=%s to=carol@example.test tls=none keep=yes\n"
                    % (cls.isp.imap_port, PW, cls.isp.pop3_port, PW,
                       cls.isp.imap_port, PW))
        os.chmod(accounts, 0o600)

    @classmethod
    def setUpClass(cls):
        cls.isp = None
        try:
            super().setUpClass()
            for user in ("alice", "bob", "carol"):
                cls.tern.add_user(user + "@example.test", "Office-pw-1")
        except BaseException:
            if cls.isp is not None:
                cls.isp.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if cls.isp is not None:
                cls.isp.stop()
                if os.environ.get("TERN_KEEP") != "1":
                    shutil.rmtree(cls.tmp, ignore_errors=True)

    def fetch(self, account):
        r = self.tern.tern("fetch", account, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr +
                         self.isp.log()[-2000:])
        return r.stdout

    def collected(self, addr, count, tag):
        md = self.tern.virtual_maildir(addr)
        self.tern.wait_for_maildir(md, count)
        bodies = sorted(d.split(b"\n\n", 1)[1]
                        for d in harness.read_maildir(md))
        want = sorted(message(tag, i).replace(b"\r\n", b"\n")
                      .split(b"\n\n", 1)[1] for i in range(count))
        self.assertEqual(bodies, want)
        return md

    def test_imap_authenticate_login_collects_and_expunges(self):
        # No AUTH=PLAIN and no LOGIN command: AUTHENTICATE LOGIN it is.
        with socket.create_connection(("127.0.0.1", self.isp.imap_port),
                                      timeout=START_TIMEOUT) as c:
            greeting = b""
            while b"\r\n" not in greeting and len(greeting) < 4096:
                chunk = c.recv(4096)
                if not chunk:
                    break
                greeting += chunk
        self.assertIn(b"AUTH=LOGIN", greeting)
        self.assertIn(b"LOGINDISABLED", greeting)
        self.assertNotIn(b"AUTH=PLAIN", greeting)
        self.isp.deliver("imapuser@isp.test", "dvimap", 6)
        out = self.fetch("dvimap")
        self.assertRegex(out, r"^dvimap: 6 queued, 0 skipped, 6 deleted, "
                         r"0 left, 0 refused, 6 listed\n$")
        self.collected("alice@example.test", 6, "dvimap")
        self.assertEqual(self.isp.left("imapuser@isp.test"), 0)
        self.assertRegex(self.isp.log(), r"imap-login: Info: Login: "
                         r"user=<imapuser@isp\.test>, method=LOGIN")

    def test_pop3_auth_login_collects_and_deletes(self):
        self.isp.deliver("popuser@isp.test", "dvpop", 5)
        out = self.fetch("dvpop")
        self.assertRegex(out, r"^dvpop: 5 queued, 0 skipped, 5 deleted, "
                         r"0 left, 0 refused, 5 listed\n$")
        self.collected("bob@example.test", 5, "dvpop")
        harness.wait_until(lambda: self.isp.left("popuser@isp.test") == 0,
                           10, "Dovecot's copies removed")
        self.assertRegex(self.isp.log(), r"pop3-login: Info: Login: "
                         r"user=<popuser@isp\.test>, method=LOGIN")

    def test_imap_keep_marks_seen_and_collects_once(self):
        self.isp.deliver("keptuser@isp.test", "dvkept", 4)
        out = self.fetch("dvkept")
        self.assertRegex(out, r"^dvkept: 4 queued, 0 skipped, 0 deleted, ")
        self.collected("carol@example.test", 4, "dvkept")
        out = self.fetch("dvkept")
        self.assertRegex(out, r"^dvkept: 0 queued, 4 skipped, 0 deleted, ")
        md = self.isp.maildir("keptuser@isp.test")
        cur = os.listdir(os.path.join(md, "cur"))
        self.assertEqual(len(cur), 4, cur)
        self.assertTrue(all(n.split(":2,")[1].find("S") >= 0 for n in cur),
                        cur)
        self.assertEqual(harness.maildir_count(
            self.tern.virtual_maildir("carol@example.test")), 4)


if __name__ == "__main__":
    unittest.main()
