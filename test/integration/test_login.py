# SPDX-License-Identifier: MIT
"""The POP3 pre-login process (login pop3, logging as pop3-login) with
python3 poplib, ssl and raw sockets: the greeting, CAPA before and after
STLS, POP3_SSL on the implicit-TLS port, plaintext logins refused before
TLS from outside login_trusted_networks, the SASL exchanges, the limits
(line length, bad commands, failed logins, connections per address),
STLS with pipelined commands refused, and the hand-over to spawn: the
request frame with the client's descriptor (SCM_RIGHTS) and its
pipelined input, a plaintext client's socket passed on, a TLS client's
plaintext relayed both ways. spawn is played here by a small UNIX-socket
server that answers by user name and, for a good login, serves a
two-command POP3 session on the descriptor it got, so that login's side
is tested whole without the real spawn and pop3d."""

import base64
import contextlib
import os
import poplib
import socket
import ssl
import struct
import threading
import time

import harness
from harness import TernTestCase, wait_until

SHORT = 15
GOOD_USER = "good@example.test"
GOOD_PW = "Good pw 42"
# spawn's answer for the other users (login_proto.h statuses).
USER_STATUS = {"limit@example.test": "limit", "delay@example.test": "delay",
               "temp@example.test": "tempfail"}


def recv_frame(sock, fds, max_frame=16384):
    """One attr frame from sock (descriptors that came with it are
    appended to fds); returns {name: bytes}."""
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        msg, anc, _, _ = sock.recvmsg(
            65536, socket.CMSG_SPACE(4 * struct.calcsize("i")))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(payload) // struct.calcsize("i")
                fds.extend(struct.unpack("%di" % n,
                                         payload[:n * struct.calcsize("i")]))
        if not msg:
            raise ConnectionError("spawn request cut short")
        data += msg
        if len(data) > max_frame:
            raise AssertionError("spawn request over %d bytes" % max_frame)
    (n,) = struct.unpack(">I", data[:4])
    out = {}
    for name, value in harness.attr_parse(data[4:4 + n]):
        out[name] = value
    # attr_parse decodes values as text; the input may be binary-safe
    # but is plain POP3 here.
    return out


class FakeSpawn:
    """spawn's socket in login_directory: records each request and the
    descriptor count that came with it, answers by user, and serves a
    tiny session (greeting, STAT, QUIT) on the descriptor of a good
    login, reading the request's input first."""

    def __init__(self, path):
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.requests = []
        self.stopping = False
        self.threads = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(SHORT)
                fds = []
                try:
                    req = recv_frame(conn, fds)
                except (OSError, ConnectionError, AssertionError):
                    for fd in fds:
                        os.close(fd)
                    continue
                req["nfds"] = len(fds)
                self.requests.append(req)
                status = "fail"
                if req.get("user") == GOOD_USER and \
                        req.get("password") == GOOD_PW:
                    status = "ok"
                elif req.get("user") in USER_STATUS:
                    status = USER_STATUS[req["user"]]
                with contextlib.suppress(OSError):
                    conn.sendall(harness.attr_frame(
                        [("status", status), ("user", req.get("user", ""))]))
                if status == "ok" and len(fds) == 1:
                    t = threading.Thread(target=self._session,
                                         args=(fds[0], req.get("input", "")),
                                         daemon=True)
                    t.start()
                    self.threads.append(t)
                else:
                    for fd in fds:
                        os.close(fd)

    @staticmethod
    def _session(fd, pending):
        """The session: greets, answers STAT and QUIT, -ERR otherwise."""
        with socket.socket(fileno=fd) as s:
            s.setblocking(True)
            s.settimeout(SHORT)
            buf = pending.encode()
            with contextlib.suppress(OSError):
                s.sendall(b"+OK Logged in.\r\n")
                while True:
                    while b"\n" not in buf:
                        chunk = s.recv(4096)
                        if not chunk:
                            return
                        buf += chunk
                    line, buf = buf.split(b"\n", 1)
                    cmd = line.strip().upper()
                    if cmd == b"STAT":
                        s.sendall(b"+OK 0 0\r\n")
                    elif cmd == b"QUIT":
                        s.sendall(b"+OK Logging out.\r\n")
                        return
                    elif cmd.startswith(b"BIG"):
                        # Many replies: the relay must carry them all
                        # through its bounded buffers.
                        s.sendall(b"+OK\r\n" + b"x" * 78 + b"\r\n" * 1
                                  + (b"y" * 78 + b"\r\n") * 5000 + b".\r\n")
                    else:
                        s.sendall(b"-ERR Unknown command.\r\n")

    def close(self):
        self.stopping = True
        self.thread.join(10)
        for t in self.threads:
            t.join(10)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def client_context(t):
    ctx = ssl.create_default_context(cafile=t.conf_get("smtpd_tls_cert_file"))
    ctx.load_verify_locations(cafile=t.conf_get("smtpd_tls_eccert_file"))
    ctx.check_hostname = False
    return ctx


def add_login_services(t, maxproc=1, user="y"):
    """The two login services of services.conf on the instance's POP3
    ports (chroot n until spawn's chroot column is there)."""
    with open(t.services_path(), "a") as f:
        f.write("%d inet n %s n %d login pop3\n"
                % (t.port_base + 110, user, maxproc))
        f.write("%d inet n %s n %d login pop3 "
                "-o login_tls_wrappermode=yes\n"
                % (t.port_base + 995, user, maxproc))


class RawPop:
    """A raw POP3 client: lines out, lines in, each read with a deadline."""

    def __init__(self, port, timeout=SHORT):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed (pending %r)" % self.buf)
            self.buf += chunk
            if len(self.buf) > 65536:
                raise AssertionError("reply line too long")
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.line()

    def closed_by_peer(self, timeout=SHORT):
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LoginTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        add_login_services(tern)
        # The port 995 greeting must not be the only sign of life: a
        # greeting of our own to recognise.
        tern.conf_set(login_greeting="test pop3 ready.",
                      pop3_delete_after="30d", pop3_login_delay="5m")
        cls.login_dir = tern.conf_get("queue_directory") + "/login"
        os.makedirs(cls.login_dir, exist_ok=True)
        os.chmod(cls.login_dir, 0o755)
        cls.spawn = FakeSpawn(cls.login_dir + "/spawn")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.spawn.close()

    def setUp(self):
        super().setUp()
        self.pop3_port = self.tern.port_base + 110
        self.pop3s_port = self.tern.port_base + 995
        wait_until(lambda: self._greets(self.pop3_port), SHORT,
                   "a POP3 greeting on port %d" % self.pop3_port)

    @staticmethod
    def _greets(port):
        try:
            with RawPop(port, timeout=2) as c:
                return c.greeting.startswith("+OK")
        except (OSError, ConnectionError):
            return False

    def pop(self):
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=SHORT)
        self.addCleanup(p.close)
        return p

    def raw(self, port=None):
        c = RawPop(port or self.pop3_port)
        self.addCleanup(c.close)
        return c

    # ----- the dialogue

    def test_greeting_and_capa_before_tls(self):
        p = self.pop()
        self.assertEqual(p.getwelcome(), b"+OK test pop3 ready.")
        capa = p.capa()
        for word in ("CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
                     "PIPELINING", "STLS", "IMPLEMENTATION"):
            self.assertIn(word, capa)
        self.assertEqual(capa["IMPLEMENTATION"], ["tern"])
        self.assertEqual(capa["EXPIRE"], ["30"])
        self.assertEqual(capa["LOGIN-DELAY"], ["300"])
        # 127.0.0.1 is in login_trusted_networks by default.
        self.assertIn("USER", capa)
        self.assertEqual(capa["SASL"], ["PLAIN", "LOGIN"])
        self.assertEqual(p.quit(), b"+OK Logging out.")

    def test_capa_after_stls(self):
        p = self.pop()
        p.stls(context=client_context(self.tern))
        capa = p.capa()
        self.assertNotIn("STLS", capa)
        self.assertIn("USER", capa)
        self.assertIn("SASL", capa)
        with self.assertRaisesRegex(poplib.error_proto, "already active"):
            p._shortcmd("STLS")

    def test_pop3s_greets_inside_tls(self):
        p = poplib.POP3_SSL("127.0.0.1", self.pop3s_port, timeout=SHORT,
                            context=client_context(self.tern))
        self.addCleanup(p.close)
        self.assertEqual(p.getwelcome(), b"+OK test pop3 ready.")
        capa = p.capa()
        self.assertNotIn("STLS", capa)
        self.assertIn("USER", capa)
        p.quit()

    def test_unknown_and_bad_commands_then_disconnect(self):
        c = self.raw()
        self.assertEqual(c.cmd("STAT"), "-ERR Unknown command.")
        self.assertEqual(c.cmd("X"), "-ERR Unknown command.")
        self.assertEqual(c.cmd("APOP a " + "0" * 32), "-ERR Unknown command.")
        self.assertEqual(c.cmd("PASS x"), "-ERR No username given.")
        for _ in range(5):
            c.cmd("FOO")
        self.assertEqual(c.cmd("BAR"), "-ERR Unknown command.")
        self.assertEqual(c.line(), "-ERR Too many bad commands.")
        self.assertTrue(c.closed_by_peer())
        self.tern.wait_for_log(r"pop3-login\[\d+\]: Disconnected: Too many "
                               r"bad commands \(no auth attempts")

    def test_too_long_line(self):
        c = self.raw()
        # Far more than the limit, sent at once: the reply comes and the
        # connection closes without the rest being read.
        with contextlib.suppress(OSError):
            c.send(b"USER " + b"a" * 100000 + b"\r\n")
        self.assertEqual(c.line(), "-ERR Line too long.")
        self.assertTrue(c.closed_by_peer())

    def test_stls_with_pipelined_commands_is_refused(self):
        c = self.raw()
        c.send(b"STLS\r\nUSER evil\r\n")
        self.assertRegex(c.line(), r"^-ERR STLS must be the last")
        self.assertTrue(c.closed_by_peer())
        self.tern.wait_for_log(r"input pipelined after STLS")

    def test_auth_list_and_unknown_mechanism(self):
        c = self.raw()
        self.assertEqual(c.cmd("AUTH"), "+OK")
        self.assertEqual([c.line(), c.line(), c.line()],
                         ["PLAIN", "LOGIN", "."])
        self.assertEqual(c.cmd("AUTH CRAM-MD5"),
                         "-ERR Unsupported authentication mechanism.")
        # AUTH LOGIN: two challenges, "*" cancels.
        self.assertEqual(c.cmd("AUTH LOGIN"),
                         "+ " + base64.b64encode(b"Username:").decode())
        self.assertEqual(c.cmd("*"), "-ERR Authentication aborted.")
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertEqual(c.cmd("!!!"), "-ERR Invalid AUTH data.")
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")

    # ----- logins through (fake) spawn

    def last_request(self, user):
        return wait_until(
            lambda: next((r for r in reversed(self.spawn.requests)
                          if r.get("user") == user), None),
            SHORT, "spawn request for %s" % user)

    def test_wrong_password_three_times_disconnects(self):
        c = self.raw()
        for i in range(3):
            self.assertEqual(c.cmd("USER nobody@example.test"), "+OK")
            self.assertEqual(c.cmd("PASS wrong%d" % i),
                             "-ERR [AUTH] Authentication failed.")
        self.assertTrue(c.closed_by_peer())
        req = self.last_request("nobody@example.test")
        self.assertEqual(req["request"], "login")
        self.assertEqual(req["service"], "pop3")
        self.assertEqual(req["mech"], "plain")
        self.assertEqual(req["tls"], "0")
        self.assertEqual(req["secured"], "1")   # 127.0.0.1 is trusted
        self.assertEqual(req["client_addr"], "127.0.0.1")
        self.assertEqual(req["local_port"], str(self.pop3_port))
        self.assertEqual(req["nfds"], 1)
        self.tern.wait_for_log(
            r"pop3-login\[\d+\]: Disconnected \(auth failed, 3 attempts in "
            r"\d+ secs\): user=<nobody@example.test>, method=PLAIN, "
            r"rip=127.0.0.1, lip=127.0.0.1, secured")

    def test_spawn_statuses(self):
        c = self.raw()
        c.cmd("USER limit@example.test")
        self.assertEqual(c.cmd("PASS x"),
                         "-ERR [SYS/TEMP] Too many connections.")
        c.cmd("USER delay@example.test")
        self.assertRegex(c.cmd("PASS x"), r"^-ERR \[LOGIN-DELAY\] ")
        c.cmd("USER temp@example.test")
        self.assertEqual(c.cmd("PASS x"),
                         "-ERR [SYS/TEMP] Temporary authentication failure.")
        # None of them counts as a failed login.
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")

    def test_plain_login_passes_the_socket(self):
        p = self.pop()
        p.user(GOOD_USER)
        self.assertEqual(p.pass_(GOOD_PW), b"+OK Logged in.")
        self.assertEqual(p.stat(), (0, 0))
        self.assertEqual(p.quit(), b"+OK Logging out.")
        self.tern.wait_for_log(
            r"pop3-login\[\d+\]: Login: user=<good@example.test>, "
            r"method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, secured")

    def test_pipelined_commands_after_pass_reach_the_session(self):
        c = self.raw()
        c.send(("USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n"
                % (GOOD_USER, GOOD_PW)).encode())
        self.assertEqual([c.line() for _ in range(4)],
                         ["+OK", "+OK Logged in.", "+OK 0 0",
                          "+OK Logging out."])
        req = self.last_request(GOOD_USER)
        self.assertEqual(req["input"], "STAT\r\nQUIT\r\n")

    def test_auth_plain_initial_response_over_stls_relays(self):
        p = self.pop()
        p.stls(context=client_context(self.tern))
        token = base64.b64encode(
            b"\0" + GOOD_USER.encode() + b"\0" + GOOD_PW.encode()).decode()
        self.assertEqual(p._shortcmd("AUTH PLAIN " + token),
                         b"+OK Logged in.")
        req = self.last_request(GOOD_USER)
        self.assertEqual(req["tls"], "1")
        self.assertEqual(req["nfds"], 1)
        # Through the relay, both ways, a big reply too.
        self.assertEqual(p.stat(), (0, 0))
        resp, lines, _ = p._longcmd("BIG")
        self.assertEqual(len(lines), 5001)
        self.assertEqual(p.quit(), b"+OK Logging out.")
        self.tern.wait_for_log(
            r"pop3-login\[\d+\]: Login: user=<good@example.test>, "
            r"method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, TLS")

    def test_pop3s_login_with_auth_login_relays(self):
        p = poplib.POP3_SSL("127.0.0.1", self.pop3s_port, timeout=SHORT,
                            context=client_context(self.tern))
        self.addCleanup(p.close)
        self.assertEqual(p._shortcmd("AUTH LOGIN"),
                         b"+ " + base64.b64encode(b"Username:"))
        p._putcmd(base64.b64encode(GOOD_USER.encode()).decode())
        self.assertEqual(p._getresp(), b"+ " + base64.b64encode(b"Password:"))
        p._putcmd(base64.b64encode(GOOD_PW.encode()).decode())
        self.assertEqual(p._getresp(), b"+OK Logged in.")
        self.assertEqual(p.stat(), (0, 0))
        p.quit()

    def test_relay_ends_when_the_client_goes(self):
        p = self.pop()
        p.stls(context=client_context(self.tern))
        p.user(GOOD_USER)
        p.pass_(GOOD_PW)
        p.stat()
        # Gone without QUIT: the session sees EOF and ends, and so does
        # the relay (the per-address count goes back down).
        p.close()
        self.assertTrue(wait_until(lambda: all(
            t.is_alive() is False for t in self.spawn.threads), SHORT,
            "the session to see the end of its input"))


class PlaintextRefusedTest(TernTestCase):
    """disable_plaintext_auth with 127.0.0.1 not trusted: a password
    only inside TLS."""

    @classmethod
    def configure(cls, tern):
        add_login_services(tern)
        tern.conf_set(login_trusted_networks="", login_max_connections_per_ip="3")
        login_dir = tern.conf_get("queue_directory") + "/login"
        os.makedirs(login_dir, exist_ok=True)
        cls.spawn = FakeSpawn(login_dir + "/spawn")

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.spawn.close()

    def setUp(self):
        super().setUp()
        self.pop3_port = self.tern.port_base + 110
        wait_until(lambda: LoginTest._greets(self.pop3_port), SHORT,
                   "a POP3 greeting on port %d" % self.pop3_port)

    def test_refused_before_stls_allowed_after(self):
        refused = ("-ERR [AUTH] Plaintext authentication disallowed on "
                   "non-secure (SSL/TLS) connections.")
        with RawPop(self.pop3_port) as c:
            c.send(b"CAPA\r\n")
            capa = []
            while True:
                line = c.line()
                capa.append(line)
                if line == ".":
                    break
            self.assertIn("STLS", capa)
            self.assertNotIn("USER", capa)
            self.assertFalse(any(x.startswith("SASL") for x in capa))
            self.assertEqual(c.cmd("USER " + GOOD_USER), refused)
            self.assertEqual(c.cmd("PASS " + GOOD_PW), refused)
            self.assertEqual(c.cmd("AUTH PLAIN AGFAYgBj"), refused)
            self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
        self.assertFalse(any(r.get("user") == GOOD_USER
                             for r in self.spawn.requests))
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=SHORT)
        self.addCleanup(p.close)
        p.stls(context=client_context(self.tern))
        self.assertIn("USER", p.capa())
        p.user(GOOD_USER)
        self.assertEqual(p.pass_(GOOD_PW), b"+OK Logged in.")
        self.assertEqual(p.stat(), (0, 0))
        p.quit()

    def test_connections_per_address(self):
        conns = [RawPop(self.pop3_port) for _ in range(3)]
        try:
            with RawPop(self.pop3_port) as c:
                self.assertEqual(c.greeting, "-ERR [SYS/TEMP] Too many "
                                 "connections from your address.")
                self.assertTrue(c.closed_by_peer())
        finally:
            for c in conns:
                c.close()
        # Once they are gone, the address is welcome again.
        wait_until(lambda: LoginTest._greets(self.pop3_port), SHORT,
                   "a greeting after the others closed")


class PrivilegeTest(TernTestCase):
    """As root: login runs as its own user (ternlogin); without spawn a
    login is refused for now, and the dialogue goes on."""

    start_instance = False

    def test_runs_as_login_user(self):
        harness.skip_unless_root("a service user and /proc of its process")
        if not harness._user_exists("ternlogin"):
            harness.run(["useradd", "-r", "-U", "-d", "/nonexistent", "-s",
                         "/usr/sbin/nologin", "ternlogin"])
        t = self.tern
        add_login_services(t, user="ternlogin")
        t.start()
        self.instances.append(t)
        pids = wait_until(lambda: t.pids("login"), SHORT, "login processes")
        for pid in pids:
            wait_until(lambda: harness.process_user(pid) == "ternlogin",
                       SHORT, "login pid %d to drop to ternlogin" % pid)
            self.assertEqual(set(harness.process_uids(pid)),
                             {harness.pwd.getpwnam("ternlogin").pw_uid})
        # Nothing listens on login_directory/spawn here.
        with RawPop(t.port_base + 110) as c:
            self.assertTrue(c.greeting.startswith("+OK"))
            self.assertEqual(c.cmd("USER " + GOOD_USER), "+OK")
            self.assertEqual(c.cmd("PASS " + GOOD_PW),
                             "-ERR [SYS/TEMP] Login service unavailable, "
                             "try again later.")
            self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
