# SPDX-License-Identifier: MIT
"""The root side of the POP3/IMAP login split: services.conf's chroot
column and login/NAME sockets (master makes $login_directory and spawn's
socket with the right owner and mode, and refuses a directory anyone but
root could change), the process limits max_use and max_idle, and spawn
itself, driven as a login process would drive it (lib/mail/login_proto.h):
one request frame with the client's descriptor over $login_directory/spawn.

The session spawn starts is pop3d; so that these tests say what spawn does
whatever pop3d is, the instance's daemon_directory holds the real daemons
(symlinks) and a stand-in pop3d that reports, over the client connection
it was given, who it runs as, its arguments, its environment and its
descriptors, then waits for the client to hang up."""

import grp
import hashlib
import json
import os
import pwd
import shutil
import socket
import stat
import struct
import time
import uuid

import harness
from harness import TernTestCase, skip_unless_root, wait_until

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

FAKE_POP3D = r'''#!/usr/bin/python3
# A stand-in session (test_spawn.py): reports itself to the client on
# fd 0 as one JSON line, then waits for the client to hang up.
import json, os, stat, sys
st = os.fstat(0)
info = {
    "pid": os.getpid(), "argv": sys.argv,
    "uid": os.getresuid(), "gid": os.getresgid(),
    "groups": sorted(os.getgroups()),
    "env": {k: v for k, v in os.environ.items()
            if k.startswith("TERN_SESSION_")},
    "cwd": os.getcwd(),
    "fd0_socket": stat.S_ISSOCK(st.st_mode),
    "fd0_blocking": os.get_blocking(0),
    "fd1": os.readlink("/proc/self/fd/1"),
    "fds": sorted(int(x) for x in os.listdir("/proc/self/fd")),
}
os.write(0, ("+OK " + json.dumps(info) + "\r\n").encode())
while True:
    try:
        if not os.read(0, 4096):
            break
    except OSError:
        break
'''


def new_user(tag="u"):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


class Login:
    """One login attempt as a login process makes it: a socketpair whose
    one end (the "client") goes to spawn with the request."""

    def __init__(self, path, pairs, fds=1, raw=None):
        self.client, self.server = socket.socketpair()
        self.client.settimeout(REPLY_TIMEOUT)
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

    def session(self):
        """What the stand-in session reported on the client connection."""
        line = b""
        while not line.endswith(b"\r\n"):
            chunk = self.client.recv(65536)
            if not chunk:
                raise AssertionError("session closed the connection: %r"
                                     % line)
            line += chunk
        assert line.startswith(b"+OK "), line
        return json.loads(line[4:])

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
    pairs += list(extra.items())
    return pairs


class SpawnCase(TernTestCase):
    """spawn of the class instance, with the stand-in pop3d."""

    @classmethod
    def configure(cls, tern):
        skip_unless_root("spawn runs as root and starts sessions as vmail")
        # The daemons as installed, and the stand-in session.
        ddir = os.path.join(tern.tmp, "libexec")
        os.mkdir(ddir, 0o755)
        for name in os.listdir(harness.DAEMON_DIR):
            if name != "pop3d":
                os.symlink(os.path.join(harness.DAEMON_DIR, name),
                           os.path.join(ddir, name))
        with open(os.path.join(ddir, "pop3d"), "w") as f:
            f.write(FAKE_POP3D)
        os.chmod(os.path.join(ddir, "pop3d"), 0o755)
        tern.daemon_dirs.append(ddir)
        tern.conf_set(daemon_directory=ddir,
                      auth_failure_delay="%ds" % DELAY,
                      auth_failure_delay_max="%ds" % DELAY_MAX,
                      login_max_user_connections=str(MAX_USER),
                      login_max_ip_connections=str(MAX_IP),
                      pop3_login_delay="%ds" % LOGIN_DELAY)

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

    def add_plain_user(self, password):
        """A user whose password is stored as itself ({PLAIN}), as
        Dovecot's passwd-file allows, for APOP."""
        user = new_user("ap")
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
        self.assertIsNone(self.login(big).reply())
        # A header announcing more than the maximum is refused at once.
        raw = struct.pack(">I", LOGIN_REQUEST_MAX * 4) + b"\x01"
        self.assertIsNone(self.login(None, raw=raw).reply())
        self.assertIsNone(self.login(
            [("request", "bogus")] + request(user, pw)[1:]).reply())

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

    def test_good_login_starts_the_session_as_vmail(self):
        user, pw = self.add_user()
        login = self.login(request(user, pw, addr="192.0.2.33",
                                   input="STAT\r\nQUIT\r\n"))
        reply = login.reply()
        self.assertEqual(reply["status"], "ok", reply)
        self.assertEqual(reply["user"], user)
        info = login.session()
        vmail = pwd.getpwnam(VMAIL_USER)
        self.assertEqual(info["uid"], [vmail.pw_uid] * 3)
        self.assertEqual(info["gid"], [vmail.pw_gid] * 3)
        self.assertEqual(info["groups"], [vmail.pw_gid])
        self.assertEqual(info["argv"][1:3], ["-c", self.tern.dir])
        self.assertEqual(os.path.basename(info["argv"][0]), "pop3d")
        env = info["env"]
        self.assertEqual(env["TERN_SESSION_USER"], user)
        self.assertEqual(env["TERN_SESSION_MAILDIR"],
                         self.tern.virtual_maildir(user))
        self.assertEqual(env["TERN_SESSION_CLIENT"], "192.0.2.33")
        self.assertEqual(env["TERN_SESSION_CLIENT_PORT"], "40000")
        self.assertEqual(env["TERN_SESSION_LOCAL"], "127.0.0.1")
        self.assertEqual(env["TERN_SESSION_LOCAL_PORT"], "110")
        self.assertEqual(env["TERN_SESSION_TLS"], "0")
        self.assertTrue(env["TERN_SESSION_ID"])
        import base64
        self.assertEqual(base64.b64decode(env["TERN_SESSION_INPUT"]),
                         b"STAT\r\nQUIT\r\n")
        self.assertEqual(info["cwd"], "/")
        self.assertTrue(info["fd0_socket"])
        self.assertTrue(info["fd0_blocking"])
        self.assertEqual(info["fd1"], "/dev/null")
        # 0, 1, 2 and the directory listing itself: nothing of spawn's.
        self.assertLessEqual(len(info["fds"]), 4, info["fds"])
        # /proc agrees while it runs; its end is logged.
        ids = harness.process_uids(info["pid"])
        self.assertEqual(ids[0], vmail.pw_uid)
        since = self.tern.log_size()
        login.client.close()
        self.tern.wait_for_log(r"session for %s from 192\.0\.2\.33 ended "
                               r"after \d+ s \(exit status 0\)"
                               % user.replace(".", r"\."), since=since)

    def test_apop_and_plaintext_passwords(self):
        user = self.add_plain_user("tanstaaf")
        challenge = "<1896.%s@dbc.mtview.ca.us>" % uuid.uuid4().hex[:6]
        digest = hashlib.md5((challenge + "tanstaaf").encode()).hexdigest()
        login = self.login(request(user, None, mech="apop",
                                   addr="192.0.2.40",
                                   apop_challenge=challenge,
                                   apop_digest=digest))
        self.assertEqual(login.reply()["status"], "ok")
        login.session()
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
        # The plaintext password also works for USER/PASS (imap: the
        # pop3 login delay does not apply).
        login = self.login(request(user, "tanstaaf", service="imap",
                                   addr="192.0.2.43"))
        self.assertEqual(login.reply()["status"], "ok")

    def test_system_user_session(self):
        pw_entry = self.tern.create_system_user()
        domain = "localhost"
        self.assertIn(domain, self.tern.conf_get("mydestination"))
        user = "%s@%s" % (pw_entry.pw_name, domain)
        path = self.tern.conf_get("user_file")
        with open(path) as f:
            text = f.read()
        with open(path + ".new", "w") as f:
            f.write(text + "%s:{PLAIN}sys-pw:::::\n" % user)
        st = os.stat(path)
        os.chown(path + ".new", st.st_uid, st.st_gid)
        os.chmod(path + ".new", stat.S_IMODE(st.st_mode))
        os.rename(path + ".new", path)
        login = self.login(request(user, "sys-pw", service="imap",
                                   addr="192.0.2.50"))
        self.assertEqual(login.reply()["status"], "ok")
        info = login.session()
        self.assertEqual(info["uid"], [pw_entry.pw_uid] * 3)
        self.assertEqual(info["gid"], [pw_entry.pw_gid] * 3)
        self.assertEqual(info["env"]["TERN_SESSION_MAILDIR"],
                         os.path.join(pw_entry.pw_dir, "Maildir"))
        self.assertNotIn(0, info["groups"])

    # ----- limits

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
        # Other services count apart: pop3 still logs in.
        login = self.login(request(user, pw, addr="203.0.113.98"))
        self.assertEqual(login.reply()["status"], "ok")
        # One session ends: the count goes down.
        self.logins[0].client.close()
        self.tern.wait_for_log(r"session for %s from 203\.0\.113\.1 ended"
                               % user.replace(".", r"\."))
        login = self.login(request(user, pw, service="imap",
                                   addr="203.0.113.97"))
        self.assertEqual(login.reply()["status"], "ok")

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

    def test_pop3_login_delay(self):
        user, pw = self.add_user()
        login = self.login(request(user, pw, addr="203.0.115.1"))
        self.assertEqual(login.reply()["status"], "ok")
        login.session()
        login.client.close()
        login = self.login(request(user, pw, addr="203.0.115.2"))
        self.assertEqual(login.reply()["status"], "delay")


class MasterCase(TernTestCase):
    """master and the skeleton: bad login directories, max_use, max_idle."""

    class_instance = False

    def test_bad_login_directory_is_refused(self):
        skip_unless_root("the login directory belongs to root")
        tern = self.new_instance(start=False)
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
        tern = self.new_instance(start=False)
        tern.edit_service(str(tern.smtp_port), 5, "1")
        tern.edit_service(str(tern.smtp_port), 6, "smtpd -o max_use=2")
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
        tern.wait_smtp()        # the first connection
        self.assertEqual(tern.pids("smtpd", service=name25), first)
        tern.wait_smtp()        # the second: the process retires
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
