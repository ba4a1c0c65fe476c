# SPDX-License-Identifier: MIT
"""The POP3 pre-login process (login pop3, logging as pop3-login) in front
of the real spawn and pop3d of a started instance, with python3 poplib,
ssl and raw sockets: the greeting, CAPA before and after STLS, POP3_SSL on
the implicit-TLS port, plaintext logins refused before TLS from outside
login_trusted_networks, the SASL exchanges, the limits (line length, bad
commands, failed logins, connections per address), STLS with pipelined
commands refused, every answer spawn gives (fail, limit, delay, tempfail,
ok), and what happens after a login: commands pipelined after PASS
answered by the session, a plaintext client's socket handed over to pop3d
(login keeps no descriptor of it: /proc), a TLS client's session relayed
both ways (a big message through it) until the client goes and pop3d
with it. As root: login runs as ternlogin, and chrooted to
login_directory when services.conf says so."""

import base64
import contextlib
import os
import poplib
import signal
import socket
import uuid

import harness
from harness import (TernTestCase, client_context, proc_environ,
                     skip_unless_root, socket_inodes, wait_until)

SHORT = 20
SENDER = "sender@example.org"
LOGIN_USER = "ternlogin"
# auth_failure_delay / auth_failure_delay_max of the instances: short, so
# that three failed logins take seconds.
AUTH_DELAY = "1s"
AUTH_DELAY_MAX = "1s"
LOGIN_DELAY = 300
# login_max_connections_per_ip of the two services that do not trust
# 127.0.0.1.
STRICT_MAX_CONN = 3


def new_user(tag="u"):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


def plain_token(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0"
                            + password.encode()).decode()


def fd_socket_inode(pid, fd):
    link = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    if not link.startswith("socket:["):
        raise AssertionError("fd %d of pid %d is %s, not a socket"
                             % (fd, pid, link))
    return int(link[len("socket:["):-1])


def tcp_inode(local_port, remote_port):
    """The inode of the server end of a TCP connection on 127.0.0.1, from
    /proc/net/tcp (ports in hex after the address)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            lport = int(fields[1].split(":")[1], 16)
            rport = int(fields[2].split(":")[1], 16)
            if lport == local_port and rport == remote_port:
                return int(fields[9])
    return None


def unix_inodes():
    with open("/proc/net/unix") as f:
        next(f)
        return {int(line.split()[6]) for line in f}


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


def greets(port):
    try:
        with RawPop(port, timeout=2) as c:
            return c.greeting.startswith("+OK")
    except (OSError, ConnectionError):
        return False


class LoginTest(TernTestCase):
    """One instance: the two login services of etc/services.conf (made
    unchrooted by the harness) and two more that do not trust 127.0.0.1
    (two login processes under one limit of connections per address),
    with spawn, anvil, auth and pop3d behind them."""

    instance_options = {"mail_access": True}

    @classmethod
    def configure(cls, tern):
        tern.conf_set(login_greeting="test pop3 ready.",
                      pop3_delete_after="30d",
                      pop3_login_delay="%ds" % LOGIN_DELAY,
                      login_max_user_connections="1",
                      auth_failure_delay=AUTH_DELAY,
                      auth_failure_delay_max=AUTH_DELAY_MAX)
        # Two more login services of the same instance (same spawn,
        # anvil, auth and pop3d) for which 127.0.0.1 is not trusted.
        cls.strict_port = harness.find_free_port()
        cls.strict_port2 = harness.find_free_port()
        with open(tern.services_path(), "a") as f:
            for port in (cls.strict_port, cls.strict_port2):
                f.write("%d inet n $login_user n 1 login pop3 "
                        "-o login_trusted_networks= "
                        "-o login_max_connections_per_ip=%d\n"
                        % (port, STRICT_MAX_CONN))

    def setUp(self):
        super().setUp()
        self.pop3_port = self.tern.pop3_port
        self.pop3s_port = self.tern.pop3s_port
        # (master listens on both ports from the start: a client of
        # port 995 waits in the backlog until its login process runs.)
        wait_until(lambda: greets(self.pop3_port), SHORT,
                   "a POP3 greeting on port %d" % self.pop3_port)

    def add_user(self, tag="u"):
        user, pw = new_user(tag), "pw-" + uuid.uuid4().hex[:8]
        self.tern.add_user(user, pw)
        return user, pw

    def pop(self):
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=SHORT)
        self.addCleanup(p.close)
        return p

    def pop_ssl(self):
        p = poplib.POP3_SSL("127.0.0.1", self.pop3s_port, timeout=SHORT,
                            context=client_context(self.tern))
        self.addCleanup(p.close)
        return p

    def raw(self, port=None):
        c = RawPop(port or self.pop3_port)
        self.addCleanup(c.close)
        return c

    def login_pid(self, port):
        pids = self.tern.pids("login", service=str(port))
        self.assertEqual(len(pids), 1, pids)
        return pids[0]

    def session_pid(self, user):
        """The pid of the pop3d that spawn started for user (/proc)."""
        return wait_until(
            lambda: next((p for p in self.tern.pids("pop3d")
                          if proc_environ(p).get("TERN_SESSION_USER")
                          == user), None),
            SHORT, "the pop3d session of %s" % user)

    def wait_session_gone(self, pid, user):
        wait_until(lambda: not harness.pid_alive(pid), SHORT,
                   "the pop3d of %s (pid %d) to exit" % (user, pid))
        self.tern.wait_for_log(r"spawn\[\d+\]: session for %s from "
                               r"127\.0\.0\.1 ended after \d+ s \(exit "
                               r"status 0\)" % user.replace(".", r"\."))

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
        self.assertEqual(capa["LOGIN-DELAY"], [str(LOGIN_DELAY)])
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
        p = self.pop_ssl()
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
        self.tern.wait_for_log(r"input pipelined after starting TLS")

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

    # ----- logins through spawn

    def test_wrong_password_three_times_disconnects(self):
        user, pw = self.add_user("wp")
        c = self.raw()
        # An unknown user gets the same answer as a wrong password.
        for who, password in (("nobody@example.test", pw),
                              (user, pw + "x"), (user, pw.upper())):
            self.assertEqual(c.cmd("USER " + who), "+OK")
            self.assertEqual(c.cmd("PASS " + password),
                             "-ERR [AUTH] Authentication failed.")
        self.assertTrue(c.closed_by_peer())
        # spawn asked auth each time: the failures are real.
        for who in ("nobody@example.test", user):
            self.tern.wait_for_log(
                r"spawn\[\d+\]: login failed: user=<%s>, method=PLAIN, "
                r"rip=127\.0\.0\.1: authentication failed"
                % who.replace(".", r"\."))
        self.tern.wait_for_log(
            r"pop3-login\[\d+\]: Disconnected \(auth failed, 3 attempts in "
            r"\d+ secs\): user=<%s>, method=PLAIN, rip=127.0.0.1, "
            r"lip=127.0.0.1, secured" % user.replace(".", r"\."))
        self.assertIsNone(next((p for p in self.tern.pids("pop3d")
                                if proc_environ(p).get("TERN_SESSION_USER")
                                == user), None))

    def test_spawn_statuses(self):
        skip_unless_root("sessions run as vmail")
        user, pw = self.add_user("st")
        first = self.pop()
        first.user(user)
        self.assertEqual(first.pass_(pw), b"+OK Logged in.")
        pid = self.session_pid(user)
        c = self.raw()
        # login_max_user_connections=1: the second session is refused.
        c.cmd("USER " + user)
        self.assertEqual(c.cmd("PASS " + pw),
                         "-ERR [SYS/TEMP] Too many connections.")
        self.assertEqual(first.quit(), b"+OK Logging out.")
        self.wait_session_gone(pid, user)
        # pop3_login_delay: the first login was less than 5 minutes ago.
        c.cmd("USER " + user)
        self.assertEqual(c.cmd("PASS " + pw), "-ERR [LOGIN-DELAY] Logged "
                         "in too recently, try again later.")
        # The user file gone: auth cannot answer, spawn says tempfail.
        path = self.tern.conf_get("user_file")
        os.rename(path, path + ".away")
        try:
            c.cmd("USER " + user)
            self.assertEqual(c.cmd("PASS " + pw), "-ERR [SYS/TEMP] "
                             "Temporary authentication failure.")
        finally:
            os.rename(path + ".away", path)
        # None of the three counts as a failed login (three would have
        # ended the connection), and none started a session.
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
        self.assertEqual([p for p in self.tern.pids("pop3d")
                          if proc_environ(p).get("TERN_SESSION_USER")
                          == user], [])
        log = self.tern.log()
        u = user.replace(".", r"\.")
        for text in (r"1 sessions of the user \(login_max_user_connections\)",
                     r"last login \d+ s ago \(pop3_login_delay\)"):
            self.assertRegex(log, r"spawn\[\d+\]: login refused: user=<%s>"
                             r", method=PLAIN, rip=127\.0\.0\.1: %s"
                             % (u, text))
        self.assertRegex(log, r"spawn\[\d+\]: warning: login failed: "
                         r"user=<%s>, rip=127\.0\.0\.1: auth: " % u)

    def test_plain_login_hands_over_the_socket(self):
        skip_unless_root("sessions run as vmail; /proc of other users")
        user, pw = self.add_user("ho")
        p = self.pop()
        cport = p.sock.getsockname()[1]
        login = self.login_pid(self.pop3_port)
        inode = tcp_inode(self.pop3_port, cport)
        self.assertIsNotNone(inode)
        # Before the login, login holds the client's socket ...
        self.assertIn(inode, socket_inodes(login))
        p.user(user)
        self.assertEqual(p.pass_(pw), b"+OK Logged in.")
        # ... after it, the session does, as its fd 0, and login holds
        # nothing of it any more.
        pid = self.session_pid(user)
        self.assertEqual(fd_socket_inode(pid, 0), inode)
        wait_until(lambda: inode not in socket_inodes(login), SHORT,
                   "login to close its copy of the client's socket")
        self.assertEqual(harness.process_user(pid), "vmail")
        env = proc_environ(pid)
        self.assertEqual(env["TERN_SESSION_CLIENT_PORT"], str(cport))
        self.assertEqual(env["TERN_SESSION_TLS"], "0")
        self.assertEqual(p.stat(), (0, 0))
        self.assertEqual(p.quit(), b"+OK Logging out.")
        self.wait_session_gone(pid, user)
        self.tern.wait_for_log(
            r"pop3-login\[\d+\]: Login: user=<%s>, method=PLAIN, "
            r"rip=127.0.0.1, lip=127.0.0.1, secured"
            % user.replace(".", r"\."))

    def test_pipelined_commands_after_pass_answered_by_the_session(self):
        skip_unless_root("sessions run as vmail")
        user, pw = self.add_user("pl")
        _, msg = harness.make_message(SENDER, user)
        harness.smtp_send(self.tern.smtp_port, SENDER, [user], msg)
        self.tern.wait_for_maildir(self.tern.virtual_maildir(user), 1)
        c = self.raw()
        # Everything in one write: what follows PASS reaches pop3d
        # (through spawn's TERN_SESSION_INPUT) and is answered in order.
        c.send(("USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nNOOP\r\nQUIT\r\n"
                % (user, pw)).encode())
        lines = [c.line() for _ in range(7)]
        self.assertEqual(lines[:2], ["+OK", "+OK Logged in."])
        self.assertRegex(lines[2], r"^\+OK 1 \d+$")
        size = lines[2].split()[2]
        self.assertEqual(lines[3:], ["+OK 1 messages:", "1 " + size, ".",
                                     "+OK"])
        self.assertEqual(c.line(), "+OK Logging out.")
        self.assertTrue(c.closed_by_peer())
        self.tern.wait_for_log(r"pop3d\[\d+\]: pop3d\(%s\)<[^>]+>: "
                               r"Disconnected: Logged out"
                               % user.replace(".", r"\."))

    def test_tls_login_relays_a_big_message(self):
        skip_unless_root("sessions run as vmail; /proc of other users")
        user, pw = self.add_user("tl")
        # Lines starting with '.', many of them: dot-stuffing and the
        # relay's bounded buffers both.
        body = b"".join(b"%s line %05d %s\n"
                        % (b"." if i % 7 == 0 else b"x", i, b"y" * 60)
                        for i in range(8000))
        _, msg = harness.make_message(SENDER, user, body=body)
        harness.smtp_send(self.tern.smtp_port, SENDER, [user], msg)
        maildir = self.tern.virtual_maildir(user)
        [path] = self.tern.wait_for_maildir(maildir, 1)
        with open(path, "rb") as f:
            wire = harness.to_crlf(f.read())
        p = self.pop()
        p.stls(context=client_context(self.tern))
        cport = p.sock.getsockname()[1]
        self.assertEqual(p._shortcmd("AUTH PLAIN " + plain_token(user, pw)),
                         b"+OK Logged in.")
        pid = self.session_pid(user)
        self.assertEqual(proc_environ(pid)["TERN_SESSION_TLS"], "1")
        # login keeps the TLS connection; the session has one end of a
        # socketpair.
        login = self.login_pid(self.pop3_port)
        self.assertIn(tcp_inode(self.pop3_port, cport), socket_inodes(login))
        self.assertIn(fd_socket_inode(pid, 0), unix_inodes())
        self.assertEqual(p.stat(), (1, len(wire)))
        resp, lines, octets = p.retr(1)
        self.assertTrue(resp.startswith(b"+OK"), resp)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", wire)
        self.assertEqual(p.quit(), b"+OK Logging out.")
        self.wait_session_gone(pid, user)
        self.tern.wait_for_log(
            r"pop3-login\[\d+\]: Login: user=<%s>, method=PLAIN, "
            r"rip=127.0.0.1, lip=127.0.0.1, TLS" % user.replace(".", r"\."))
        self.tern.wait_for_log(r"spawn\[\d+\]: login: user=<%s>, .*, TLS, "
                               % user.replace(".", r"\."))

    def test_pop3s_login_with_auth_login_relays(self):
        skip_unless_root("sessions run as vmail")
        user, pw = self.add_user("ps")
        p = self.pop_ssl()
        self.assertEqual(p._shortcmd("AUTH LOGIN"),
                         b"+ " + base64.b64encode(b"Username:"))
        p._putcmd(base64.b64encode(user.encode()).decode())
        self.assertEqual(p._getresp(), b"+ " + base64.b64encode(b"Password:"))
        p._putcmd(base64.b64encode(pw.encode()).decode())
        self.assertEqual(p._getresp(), b"+OK Logged in.")
        self.assertEqual(p.stat(), (0, 0))
        resp, listing, _ = p.uidl()
        self.assertEqual((resp, listing), (b"+OK", []))
        pid = self.session_pid(user)
        self.assertEqual(proc_environ(pid)["TERN_SESSION_LOCAL_PORT"],
                         str(self.pop3s_port))
        self.assertEqual(p.quit(), b"+OK Logging out.")
        self.wait_session_gone(pid, user)

    def test_relay_ends_when_the_client_goes(self):
        skip_unless_root("sessions run as vmail; /proc of other users")
        user, pw = self.add_user("rl")
        p = self.pop()
        p.stls(context=client_context(self.tern))
        cport = p.sock.getsockname()[1]
        p.user(user)
        p.pass_(pw)
        self.assertEqual(p.stat(), (0, 0))
        pid = self.session_pid(user)
        login = self.login_pid(self.pop3_port)
        inode = tcp_inode(self.pop3_port, cport)
        self.assertIn(inode, socket_inodes(login))
        # Gone without QUIT: the relay closes the session's end, pop3d
        # sees EOF and ends, and login lets go of the connection.
        p.close()
        self.wait_session_gone(pid, user)
        wait_until(lambda: inode not in socket_inodes(login), SHORT,
                   "login to close the client's connection")

    def test_runs_as_login_user(self):
        skip_unless_root("a service user and /proc of its process")
        uid = harness.pwd.getpwnam(LOGIN_USER).pw_uid
        for port in (self.pop3_port, self.pop3s_port, self.strict_port):
            pid = self.login_pid(port)
            self.assertEqual(set(harness.process_uids(pid)), {uid})

    # ----- the service where 127.0.0.1 is not trusted

    def test_plaintext_refused_before_stls_allowed_after(self):
        user, pw = self.add_user("pt")
        refused = ("-ERR [AUTH] Plaintext authentication disallowed on "
                   "non-secure (SSL/TLS) connections.")
        since = self.tern.log_size()
        with RawPop(self.strict_port) as c:
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
            self.assertEqual(c.cmd("USER " + user), refused)
            self.assertEqual(c.cmd("PASS " + pw), refused)
            self.assertEqual(c.cmd("AUTH PLAIN " + plain_token(user, pw)),
                             refused)
            self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
        # Nothing reached spawn or auth.
        self.assertNotIn("user=<%s>" % user, self.tern.log()[since:])
        if not harness.is_root():
            return
        p = poplib.POP3("127.0.0.1", self.strict_port, timeout=SHORT)
        self.addCleanup(p.close)
        p.stls(context=client_context(self.tern))
        self.assertIn("USER", p.capa())
        p.user(user)
        self.assertEqual(p.pass_(pw), b"+OK Logged in.")
        self.assertEqual(p.stat(), (0, 0))
        p.quit()
        self.tern.wait_for_log(
            r"pop3-login\[\d+\]: Login: user=<%s>, method=PLAIN, "
            r"rip=127.0.0.1, lip=127.0.0.1, TLS" % user.replace(".", r"\."))

    def test_connections_per_address(self):
        conns = [RawPop(self.strict_port)
                 for _ in range(STRICT_MAX_CONN)]
        try:
            with RawPop(self.strict_port) as c:
                self.assertEqual(c.greeting, "-ERR [SYS/TEMP] Too many "
                                 "connections from your address.")
                self.assertTrue(c.closed_by_peer())
        finally:
            for c in conns:
                c.close()
        # Once they are gone, the address is welcome again.
        wait_until(lambda: greets(self.strict_port), SHORT,
                   "a greeting after the others closed")

    def hold_limit(self, ports):
        """STRICT_MAX_CONN greeted connections, spread over ports in
        turn. Connections of other tests that are still being closed
        count too: until all are greeted, they are closed and opened
        again."""
        def attempt():
            conns = []
            for i in range(STRICT_MAX_CONN):
                c = RawPop(ports[i % len(ports)])
                conns.append(c)
                if not c.greeting.startswith("+OK"):
                    for c in conns:
                        c.close()
                    return None
            return conns
        conns = wait_until(attempt, SHORT,
                           "%d greeted connections" % STRICT_MAX_CONN)
        for c in conns:
            self.addCleanup(c.close)
        return conns

    def assert_refused(self, port):
        with RawPop(port) as c:
            self.assertEqual(c.greeting, "-ERR [SYS/TEMP] Too many "
                             "connections from your address.")
            self.assertTrue(c.closed_by_peer())

    def test_connections_per_address_over_processes(self):
        # Two on one login process, one on the other: the address is at
        # its limit on both.
        self.hold_limit([self.strict_port, self.strict_port2,
                         self.strict_port])
        self.assert_refused(self.strict_port2)
        self.assert_refused(self.strict_port)
        self.assertIn("too many connections from 127.0.0.1: %d (limit %d)"
                      % (STRICT_MAX_CONN + 1, STRICT_MAX_CONN),
                      self.tern.log())

    def test_counts_of_a_killed_login_process_are_taken_back(self):
        conns = self.hold_limit([self.strict_port, self.strict_port2,
                                 self.strict_port])
        self.assert_refused(self.strict_port2)
        # kill -9 of the process holding two: anvil forgets them with
        # its connection, and the other process greets again.
        os.kill(self.login_pid(self.strict_port), signal.SIGKILL)
        self.assertTrue(conns[0].closed_by_peer())
        wait_until(lambda: greets(self.strict_port2), SHORT,
                   "a greeting once the killed process's clients are "
                   "uncounted")

    def test_login_survives_a_killed_anvil(self):
        [anvil] = self.tern.pids("anvil", service="login/anvil")
        os.kill(anvil, signal.SIGKILL)
        # Counted per process until anvil is back, then by anvil again.
        self.assertTrue(greets(self.strict_port))
        wait_until(lambda: self.tern.pids("anvil", service="login/anvil"),
                   SHORT, "master to start the login anvil again")
        self.hold_limit([self.strict_port, self.strict_port2])
        self.assert_refused(self.strict_port2)


class ChrootTest(TernTestCase):
    """services.conf's chroot column as etc/services.conf has it: login
    runs as ternlogin inside login_directory, where spawn's socket is
    /spawn, and a login goes through all the same. LeakSanitizer cannot
    work there (no /proc): this instance runs without it."""

    class_instance = False

    def test_chrooted_login(self):
        skip_unless_root("chroot, a service user and /proc")
        with harness.leak_checks_off():
            t = self.new_instance(start=False, mail_access=True)
            for port in (t.pop3_port, t.pop3s_port):
                t.edit_service(str(port), 4, "$login_directory")
            t.start()
        wait_until(lambda: greets(t.pop3_port), SHORT,
                   "a POP3 greeting on port %d" % t.pop3_port)
        login_dir = os.path.realpath(t.conf_get("login_directory"))
        uid = harness.pwd.getpwnam(LOGIN_USER).pw_uid
        for port in (t.pop3_port, t.pop3s_port):
            [pid] = wait_until(lambda: t.pids("login", service=str(port)),
                               SHORT, "the login process of port %d" % port)
            wait_until(lambda: os.readlink("/proc/%d/root" % pid)
                       == login_dir, SHORT,
                       "login pid %d to chroot to %s" % (pid, login_dir))
            self.assertEqual(set(harness.process_uids(pid)), {uid})
        user, pw = new_user("ch"), "pw-" + uuid.uuid4().hex[:8]
        t.add_user(user, pw)
        p = poplib.POP3_SSL("127.0.0.1", t.pop3s_port, timeout=SHORT,
                            context=client_context(t))
        self.addCleanup(p.close)
        p.user(user)
        self.assertEqual(p.pass_(pw), b"+OK Logged in.")
        self.assertEqual(p.stat(), (0, 0))
        self.assertEqual(p.quit(), b"+OK Logging out.")
        # anvil's socket is inside the chroot too.
        self.assertNotIn("counting the connections of this process only",
                         t.log())
