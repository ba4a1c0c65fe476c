# SPDX-License-Identifier: MIT
"""The root side of the POP3/IMAP login split: services.conf's chroot
column and login/NAME sockets (master makes $login_directory and spawn's
socket with the right owner and mode, and refuses a directory anyone but
root could change), the process limits max_use and max_idle, and spawn
itself, driven as a login process would drive it (lib/mail/login_proto.h):
one request frame with the client's descriptor over $login_directory/spawn.

The descriptor passed is one end of a socketpair; a good login starts the
installed pop3d on it (imapd for service=imap, with the login command's
tag), which this test then talks to through the other end, while /proc
of that session shows who it runs as, its environment, its descriptors
and its working directory."""

import base64
import grp
import hashlib
import os
import pwd
import socket
import stat
import struct
import time
import unittest
import uuid

import harness
from harness import TernTestCase, proc_environ, skip_unless_root, wait_until

# auth_failure_delay and auth_failure_delay_max of the test instance.
DELAY = 1.0
DELAY_MAX = 2.0
# A failure is answered no sooner than the delay (less a tick) ...
EARLY = 0.05
# The longest wait for any reply (auth's delays included).
REPLY_TIMEOUT = 20
# Limits of the class instance (imap sessions: no login delay there).
MAX_USER = 2
MAX_IP = 3
LOGIN_DELAY = 600
LOGIN_REQUEST_MAX = 16384   # login_proto.h
LOGIN_USER = "ternlogin"
VMAIL_USER = "vmail"
# A POP3 reply line is far shorter than this (RFC 2449: 512); imapd's
# greeting after a login lists its capabilities.
LINE_LIMIT = 4096
# The tag of the IMAP requests: spawn hands it to imapd.
IMAP_TAG = "a1"
# imapd is built beside this test (issue 11): its sessions need it.
IMAPD = os.path.exists(os.path.join(harness.DAEMON_DIR, "imapd"))
need_imapd = unittest.skipUnless(IMAPD, "imapd is not installed")


def new_user(tag="u"):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


def proc_status(pid, key):
    """The fields of one line of /proc/PID/status (Uid:, Gid:, Groups:)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no %s line for pid %d" % (key, pid))


def proc_fds(pid):
    """{fd: what /proc/PID/fd/N links to}."""
    d = "/proc/%d/fd" % pid
    out = {}
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(os.path.join(d, name))
        except FileNotFoundError:
            pass
    return out


def proc_fd_flags(pid, fd):
    with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    raise AssertionError("no flags for fd %d of pid %d" % (fd, pid))


class Login:
    """One login attempt as a login process makes it: a socketpair whose
    one end (the "client") goes to spawn with the request."""

    def __init__(self, path, pairs, fds=1, raw=None):
        self.service = dict(pairs or []).get("service")
        self.client, self.server = socket.socketpair()
        self.client.settimeout(REPLY_TIMEOUT)
        # What /proc of the session shows for its fd 0.
        self.server_inode = os.fstat(self.server.fileno()).st_ino
        self.buf = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(REPLY_TIMEOUT)
        self.sock.connect(path)
        data = raw if raw is not None else harness.attr_frame(pairs)
        extra = [os.dup(self.server.fileno()) for _ in range(fds - 1)]
        # spawn may close a bad request before it is all sent.
        self.refused = False
        try:
            if fds:
                socket.send_fds(self.sock, [data[:1]],
                                [self.server.fileno()] + extra)
                self.sock.sendall(data[1:])
            else:
                self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.refused = True
        finally:
            for fd in extra:
                os.close(fd)
        # spawn has its own copy now (or closed it).
        self.server.close()
        self.start = time.monotonic()

    def reply(self):
        """The reply's attributes as a dict, or None when spawn closed the
        connection without one."""
        if self.refused:
            return None
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                # Closed with our request still unread: no reply either.
                return None
            if not chunk:
                return None
            buf += chunk
            if len(buf) >= 4 and \
                    len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                (n,) = struct.unpack(">I", buf[:4])
                self.elapsed = time.monotonic() - self.start
                return dict(harness.attr_parse(buf[4:4 + n]))

    def line(self):
        """One line from the session on the client end."""
        while b"\n" not in self.buf:
            chunk = self.client.recv(65536)
            if not chunk:
                raise AssertionError("session closed the connection: %r"
                                     % self.buf)
            self.buf += chunk
            if len(self.buf) > LINE_LIMIT:
                raise AssertionError("reply line too long: %r"
                                     % self.buf[:100])
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def cmd(self, text):
        self.client.sendall(text.encode() + b"\r\n")
        return self.line()

    def imap(self, text, tag="s1"):
        """An IMAP command: its tagged response."""
        self.client.sendall(("%s %s\r\n" % (tag, text)).encode())
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return line[len(tag) + 1:]

    def quit(self):
        """QUIT or LOGOUT, by the session's protocol: its answer."""
        if self.service == "imap":
            return self.imap("LOGOUT")
        return self.cmd("QUIT")

    def session(self):
        """The session's greeting, and its answer to STAT: pop3d serves
        the connection spawn got. imapd (service=imap) answers the login
        command's tag instead: its answer to NOOP."""
        greeting = self.line()
        if self.service == "imap":
            assert greeting.startswith(IMAP_TAG + " OK ") and \
                "Logged in" in greeting, greeting
            return self.imap("NOOP")
        assert greeting == "+OK Logged in.", greeting
        stat_reply = self.cmd("STAT")
        assert stat_reply.startswith("+OK "), stat_reply
        return stat_reply

    def close(self):
        self.sock.close()
        self.client.close()


def request(user, password, addr="192.0.2.10", service="pop3",
            mech="plain", **extra):
    pairs = [("request", "login"), ("service", service), ("mech", mech),
             ("user", user)]
    if mech == "plain":
        pairs.append(("password", password))
    pairs += [("client_addr", addr), ("client_port", "40000"),
              ("local_addr", "127.0.0.1"), ("local_port", "110"),
              ("tls", "0"), ("secured", "0")]
    if service == "imap" and "tag" not in extra:
        pairs.append(("tag", IMAP_TAG))
    pairs += list(extra.items())
    return pairs


class SpawnCase(TernTestCase):
    """spawn of the class instance, starting the installed pop3d."""

    instance_options = {"mail_access": True}

    @classmethod
    def configure(cls, tern):
        skip_unless_root("spawn runs as root and starts sessions as vmail")
        tern.conf_set(auth_failure_delay="%ds" % DELAY,
                      auth_failure_delay_max="%ds" % DELAY_MAX,
                      login_max_user_connections=str(MAX_USER),
                      login_max_ip_connections=str(MAX_IP),
                      pop3_login_delay="%ds" % LOGIN_DELAY,
                      # Sessions of one user stay up side by side (a
                      # locked mailbox would end the second at once, and
                      # with it its count in spawn).
                      pop3_lock_session="no")

    def setUp(self):
        super().setUp()
        self.tern.wait_ready()
        self.logins = []

    def tearDown(self):
        for login in self.logins:
            login.close()
        super().tearDown()

    def path(self):
        return os.path.join(self.tern.conf_get("login_directory"), "spawn")

    def login(self, pairs, **kw):
        login = Login(self.path(), pairs, **kw)
        self.logins.append(login)
        return login

    def add_user(self, password="pw-%s" % uuid.uuid4().hex[:6]):
        user = new_user()
        self.tern.add_user(user, password)
        return user, password

    def add_plain_user(self, password, user=None):
        """A user whose password is stored as itself ({PLAIN}), as
        Dovecot's passwd-file allows, for APOP."""
        user = user or new_user("ap")
        path = self.tern.conf_get("user_file")
        with open(path) as f:
            text = f.read()
        tmp = path + ".new"
        with open(tmp, "w") as f:
            f.write(text + "%s:{PLAIN}%s:::::\n" % (user, password))
        st = os.stat(path)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.rename(tmp, path)
        return user

    def session_pid(self, user, addr):
        """The pid of the pop3d or imapd serving user from addr (from
        /proc)."""
        def find():
            for pid in self.tern.pids("pop3d") + self.tern.pids("imapd"):
                try:
                    env = proc_environ(pid)
                except OSError:
                    continue
                if env.get("TERN_SESSION_USER") == user and \
                        env.get("TERN_SESSION_CLIENT") == addr:
                    return pid
            return None
        return wait_until(find, REPLY_TIMEOUT,
                          "the pop3d of %s from %s" % (user, addr))

    # ----- master: the directory and the socket

    def test_login_directory_and_socket(self):
        d = self.tern.conf_get("login_directory")
        st = os.lstat(d)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual((st.st_uid, st.st_gid), (0, 0))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o755)
        st = os.lstat(os.path.join(d, "spawn"))
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(st.st_uid, 0)
        self.assertEqual(st.st_gid, grp.getgrnam(LOGIN_USER).gr_gid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        # spawn itself runs as root, one process.
        pids = self.tern.pids("spawn", daemons_only=True)
        self.assertEqual(len(pids), 1)
        self.assertEqual(harness.process_user(pids[0]), "root")

    # ----- bad requests: closed without a reply

    def test_request_without_descriptor_gets_no_reply(self):
        user, pw = self.add_user()
        self.assertIsNone(self.login(request(user, pw), fds=0).reply())

    def test_request_with_two_descriptors_gets_no_reply(self):
        user, pw = self.add_user()
        self.assertIsNone(self.login(request(user, pw), fds=2).reply())

    def test_oversized_request_gets_no_reply(self):
        user, pw = self.add_user()
        big = request(user, pw, input="x" * LOGIN_REQUEST_MAX)
        login = self.login(big)
        self.assertIsNone(login.reply())
        # spawn closed the descriptor too: no session got it.
        self.assertEqual(login.client.recv(100), b"")
        # A header announcing more than the maximum is refused at once.
        raw = struct.pack(">I", LOGIN_REQUEST_MAX * 4) + b"\x01"
        self.assertIsNone(self.login(None, raw=raw).reply())
        self.assertIsNone(self.login(
            [("request", "bogus")] + request(user, pw)[1:]).reply())

    def test_imap_request_without_a_good_tag_gets_no_reply(self):
        # imapd answers the login command by its tag: without one, or
        # with one that could not go into the environment as it is, the
        # request is no login process's.
        user, pw = self.add_user()
        no_tag = [p for p in request(user, pw, service="imap")
                  if p[0] != "tag"]
        self.assertIsNone(self.login(no_tag).reply())
        for tag in ("", "a b", "a\x01", "t" * 129):
            login = self.login(request(user, pw, service="imap", tag=tag))
            self.assertIsNone(login.reply(), repr(tag))

    # ----- credentials

    def test_wrong_password_and_unknown_user_fail_after_the_delay(self):
        user, pw = self.add_user()
        for who, password in ((user, pw + "x"), (new_user("nx"), pw)):
            login = self.login(request(who, password,
                                       addr="198.51.100.%d" % len(who)))
            reply = login.reply()
            self.assertEqual(reply["status"], "fail", reply)
            self.assertGreaterEqual(login.elapsed, DELAY - EARLY)
            self.assertNotIn("user", reply)
            # No session: the client end sees the descriptor closed.
            self.assertEqual(login.client.recv(100), b"")

    def test_good_login_starts_the_session_as_vmail(self):
        user, pw = self.add_user()
        addr = "192.0.2.33"
        login = self.login(request(user, pw, addr=addr, input="NOOP\r\n"))
        reply = login.reply()
        self.assertEqual(reply["status"], "ok", reply)
        self.assertEqual(reply["user"], user)
        # The greeting, then the pipelined input is answered first.
        self.assertEqual(login.line(), "+OK Logged in.")
        self.assertEqual(login.line(), "+OK")
        self.assertEqual(login.cmd("STAT"), "+OK 0 0")
        # While the session is open, /proc of that pop3d.
        pid = self.session_pid(user, addr)
        vmail = pwd.getpwnam(VMAIL_USER)
        self.assertEqual(proc_status(pid, "Uid"), [vmail.pw_uid] * 4)
        self.assertEqual(proc_status(pid, "Gid"), [vmail.pw_gid] * 4)
        self.assertEqual(proc_status(pid, "Groups"), [vmail.pw_gid])
        self.assertEqual(harness.proc_cmdline(pid),
                         ["pop3d", "-c", self.tern.dir])
        self.assertEqual(os.readlink("/proc/%d/exe" % pid),
                         os.path.join(harness.DAEMON_DIR, "pop3d"))
        env = proc_environ(pid)
        self.assertEqual(env["TERN_SESSION_USER"], user)
        self.assertEqual(env["TERN_SESSION_MAILDIR"],
                         self.tern.virtual_maildir(user))
        self.assertEqual(env["TERN_SESSION_CLIENT"], addr)
        self.assertEqual(env["TERN_SESSION_CLIENT_PORT"], "40000")
        self.assertEqual(env["TERN_SESSION_LOCAL"], "127.0.0.1")
        self.assertEqual(env["TERN_SESSION_LOCAL_PORT"], "110")
        self.assertEqual(env["TERN_SESSION_TLS"], "0")
        self.assertTrue(env["TERN_SESSION_ID"])
        self.assertEqual(base64.b64decode(env["TERN_SESSION_INPUT"]),
                         b"NOOP\r\n")
        self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")
        fds = proc_fds(pid)
        # fd 0 is the very socket passed, blocking; fd 1 /dev/null.
        self.assertEqual(fds[0], "socket:[%d]" % login.server_inode)
        self.assertFalse(proc_fd_flags(pid, 0) & os.O_NONBLOCK)
        self.assertEqual(fds[1], "/dev/null")
        # Nothing of spawn's (its listener, its auth connection, the
        # request connection) reached the session: no other socket.
        self.assertEqual([fd for fd, what in fds.items()
                          if what.startswith("socket:") and fd != 0], [],
                         fds)
        # The maildir the session made belongs to vmail.
        st = os.stat(env["TERN_SESSION_MAILDIR"])
        self.assertEqual((st.st_uid, st.st_gid),
                         (vmail.pw_uid, vmail.pw_gid))
        since = self.tern.log_size()
        login.client.close()
        self.tern.wait_for_log(r"session for %s from 192\.0\.2\.33 ended "
                               r"after \d+ s \(exit status 0\)"
                               % user.replace(".", r"\."), since=since)
        self.assertFalse(harness.pid_alive(pid))

    def test_apop_and_plaintext_passwords(self):
        user = self.add_plain_user("tanstaaf")
        challenge = "<1896.%s@dbc.mtview.ca.us>" % uuid.uuid4().hex[:6]
        digest = hashlib.md5((challenge + "tanstaaf").encode()).hexdigest()
        login = self.login(request(user, None, mech="apop",
                                   addr="192.0.2.40",
                                   apop_challenge=challenge,
                                   apop_digest=digest))
        self.assertEqual(login.reply()["status"], "ok")
        self.assertEqual(login.session(), "+OK 0 0")
        bad = hashlib.md5((challenge + "tanstaaF").encode()).hexdigest()
        login = self.login(request(user, None, mech="apop",
                                   addr="192.0.2.41",
                                   apop_challenge=challenge,
                                   apop_digest=bad))
        self.assertEqual(login.reply()["status"], "fail")
        # A hashed password cannot answer APOP.
        hashed, pw = self.add_user()
        digest = hashlib.md5((challenge + pw).encode()).hexdigest()
        login = self.login(request(hashed, None, mech="apop",
                                   addr="192.0.2.42",
                                   apop_challenge=challenge,
                                   apop_digest=digest))
        self.assertEqual(login.reply()["status"], "fail")
        # The plaintext password also works for USER/PASS (pop3 from
        # another user: the pop3 login delay is per user).
        other = self.add_plain_user("tanstaaf")
        login = self.login(request(other, "tanstaaf", addr="192.0.2.43"))
        self.assertEqual(login.reply()["status"], "ok")
        self.assertEqual(login.session(), "+OK 0 0")

    @need_imapd
    def test_system_user_session(self):
        pw_entry = self.tern.create_system_user()
        domain = "localhost"
        self.assertIn(domain, self.tern.conf_get("mydestination"))
        user = self.add_plain_user("sys-pw",
                                   "%s@%s" % (pw_entry.pw_name, domain))
        addr = "192.0.2.50"
        login = self.login(request(user, "sys-pw", service="imap",
                                   addr=addr))
        self.assertEqual(login.reply()["status"], "ok")
        self.assertTrue(login.session().startswith("OK"))
        pid = self.session_pid(user, addr)
        self.assertEqual(proc_status(pid, "Uid"), [pw_entry.pw_uid] * 4)
        self.assertEqual(proc_status(pid, "Gid"), [pw_entry.pw_gid] * 4)
        self.assertNotIn(0, proc_status(pid, "Groups"))
        maildir = os.path.join(pw_entry.pw_dir, "Maildir")
        self.assertEqual(proc_environ(pid)["TERN_SESSION_MAILDIR"], maildir)
        self.assertEqual(os.stat(maildir).st_uid, pw_entry.pw_uid)
        self.assertEqual(proc_environ(pid)["TERN_SESSION_TAG"], IMAP_TAG)
        self.assertEqual(os.readlink("/proc/%d/exe" % pid),
                         os.path.join(harness.DAEMON_DIR, "imapd"))
        self.assertTrue(login.quit().startswith("OK"))
        wait_until(lambda: not harness.pid_alive(pid), REPLY_TIMEOUT,
                   "the session to end after LOGOUT")

    # ----- limits

    @need_imapd
    def test_per_user_limit(self):
        user, pw = self.add_user()
        for i in range(MAX_USER):
            login = self.login(request(user, pw, service="imap",
                                       addr="203.0.113.%d" % (i + 1)))
            self.assertEqual(login.reply()["status"], "ok")
            login.session()
        login = self.login(request(user, pw, service="imap",
                                   addr="203.0.113.99"))
        self.assertEqual(login.reply()["status"], "limit")
        self.assertEqual(login.client.recv(100), b"")
        # Other services count apart: pop3 still logs in.
        login = self.login(request(user, pw, addr="203.0.113.98"))
        self.assertEqual(login.reply()["status"], "ok")
        login.session()
        # One session ends: the count goes down.
        self.logins[0].client.close()
        self.tern.wait_for_log(r"session for %s from 203\.0\.113\.1 ended"
                               % user.replace(".", r"\."))
        login = self.login(request(user, pw, service="imap",
                                   addr="203.0.113.97"))
        self.assertEqual(login.reply()["status"], "ok")
        login.session()

    @need_imapd
    def test_per_ip_limit(self):
        addr = "203.0.114.7"
        for _ in range(MAX_IP):
            user, pw = self.add_user()
            login = self.login(request(user, pw, service="imap", addr=addr))
            self.assertEqual(login.reply()["status"], "ok")
            login.session()
        user, pw = self.add_user()
        login = self.login(request(user, pw, service="imap", addr=addr))
        self.assertEqual(login.reply()["status"], "limit")
        self.assertEqual(login.client.recv(100), b"")

    def test_pop3_login_delay(self):
        user, pw = self.add_user()
        login = self.login(request(user, pw, addr="203.0.115.1"))
        self.assertEqual(login.reply()["status"], "ok")
        login.session()
        self.assertEqual(login.cmd("QUIT"), "+OK Logging out.")
        self.tern.wait_for_log(r"session for %s from 203\.0\.115\.1 ended"
                               % user.replace(".", r"\."))
        login = self.login(request(user, pw, addr="203.0.115.2"))
        self.assertEqual(login.reply()["status"], "delay")
        self.assertEqual(login.client.recv(100), b"")


class MasterCase(TernTestCase):
    """master and the skeleton: bad login directories, max_use, max_idle."""

    class_instance = False

    def test_bad_login_directory_is_refused(self):
        skip_unless_root("the login directory belongs to root")
        tern = self.new_instance(start=False, mail_access=True)
        d = tern.conf_get("login_directory")
        os.makedirs(os.path.dirname(d), exist_ok=True)
        os.mkdir(d, 0o775)
        os.chmod(d, 0o775)
        r = tern.tern("start", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("login_directory", r.stdout + r.stderr + tern.log())
        self.assertIsNone(tern.master_pid())
        # A symlink to a sound directory is refused as well.
        os.rmdir(d)
        target = os.path.join(tern.tmp, "elsewhere")
        os.mkdir(target, 0o755)
        os.symlink(target, d)
        r = tern.tern("start", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("symlink", r.stdout + r.stderr + tern.log())
        self.assertEqual(os.listdir(target), [])

    def test_max_use_and_max_idle_restart_the_process(self):
        tern = self.new_instance(start=False, mail_access=True)
        tern.edit_service(str(tern.smtp_port), 5, "1")
        # start() itself makes the first connection (its banner check):
        # the test's two are the second and the third.
        tern.edit_service(str(tern.smtp_port), 6, "smtpd -o max_use=3")
        tern.edit_service(str(tern.submission_port), 5, "1")
        tern.edit_service(str(tern.submission_port), 6,
                          "smtpd -o max_idle=1")
        tern.start()
        tern.wait_ready()
        name25 = str(tern.smtp_port)
        name587 = str(tern.submission_port)
        first = tern.pids("smtpd", service=name25)
        self.assertEqual(len(first), 1)
        since = tern.log_size()
        tern.wait_smtp()        # the second connection
        self.assertEqual(tern.pids("smtpd", service=name25), first)
        tern.wait_smtp()        # the third: the process retires
        wait_until(lambda: (tern.pids("smtpd", service=name25) not in
                            ([], first)), 10,
                   "a new smtpd for port %s" % name25)
        tern.wait_smtp()
        # max_idle: a connection, then a second of nothing.
        idle = tern.pids("smtpd", service=name587)
        tern.wait_smtp(port=tern.submission_port)
        wait_until(lambda: (tern.pids("smtpd", service=name587) not in
                            ([], idle)), 10,
                   "a new smtpd for port %s" % name587)
        log = tern.log()[since:]
        self.assertNotIn("throttling", log)
        self.assertNotIn("exit status", log)
        self.assertNotIn("killed by signal", log)
