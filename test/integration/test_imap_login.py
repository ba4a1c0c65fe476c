# SPDX-License-Identifier: MIT
"""The IMAP pre-login process (login imap, logging as imap-login) of a
started instance, in front of the real spawn and auth, with python3
imaplib, ssl and raw sockets: the greeting and CAPABILITY (LOGINDISABLED
and no AUTH= before TLS from outside login_trusted_networks), NOOP,
LOGOUT, ID, STARTTLS (and STARTTLS with pipelined commands refused),
IMAPS on the implicit-TLS port, LOGIN with atoms, quoted strings and
literals (synchronising and LITERAL+), AUTHENTICATE PLAIN and LOGIN with
an initial response (SASL-IR) and with continuations, "*" to cancel, the
same failure delay for a known and an unknown user, an over-long line
and too big literals refused without a crash, too many bad commands, the
pre-login idle timeout, and (as root) login running as ternlogin. With
imapd installed: a good login answered by the session as the mailbox
owner, commands pipelined after LOGIN answered by it, over plaintext and
over TLS."""

import base64
import contextlib
import imaplib
import os
import pwd
import re
import socket
import ssl
import time
import unittest
import uuid

import harness
from harness import (TernTestCase, client_context, proc_environ,
                     skip_unless_root, wait_until)

SHORT = 20
# auth_failure_delay of the instance: short, so failures take a second.
AUTH_DELAY = 1.0
# The pre-login idle timeout of the class's impatient service (the least
# imap_login_timeout allows).
IMPATIENT_TIMEOUT = 10
LOGIN_LITERAL_MAX = 1024        # login_imap.c: a password at most
LOGIN_LINE_MAX = 8192           # login_imap.c
IMAPD = os.path.exists(os.path.join(harness.DAEMON_DIR, "imapd"))
need_imapd = unittest.skipUnless(IMAPD, "imapd is not installed")


def new_user(tag="i"):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


def plain_token(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0"
                            + password.encode()).decode()


class RawImap(harness.SocketConn):
    """An IMAP client on a bare socket: lines as str, every read with a
    deadline and a cap."""

    MAX_LINE = 64 * 1024

    def __init__(self, port, timeout=SHORT, source=None, tls_ctx=None):
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout,
            source_address=(source, 0) if source else None)
        if tls_ctx is not None:
            self.sock = tls_ctx.wrap_socket(self.sock)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > self.MAX_LINE:
                raise AssertionError("line over %d bytes" % self.MAX_LINE)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection "
                                      "(pending %r)" % self.buf[:200])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def tagged(self, tag):
        """(untagged lines, the tagged line) up to tag's completion."""
        untagged = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return untagged, line
            untagged.append(line)

    def cmd(self, tag, text):
        self.send("%s %s\r\n" % (tag, text))
        return self.tagged(tag)

    def starttls(self, ctx):
        _, ok = self.cmd("s", "STARTTLS")
        assert ok.startswith("s OK "), ok
        self.sock = ctx.wrap_socket(self.sock)
        return ok


def greets(port):
    try:
        with RawImap(port, timeout=2) as c:
            return c.greeting.startswith("* OK ")
    except (OSError, ConnectionError):
        return False


def caps_of(line):
    m = re.search(r"\[CAPABILITY ([^\]]*)\]", line) or \
        re.match(r"^\* CAPABILITY (.*)$", line)
    assert m, line
    return m.group(1).split()


class ImapLoginTest(TernTestCase):
    """One instance: the two IMAP login services of etc/services.conf
    (made unchrooted by the harness), one that does not trust 127.0.0.1,
    one with a short idle timeout; spawn and auth behind them."""

    instance_options = {"mail_access": True}

    @classmethod
    def configure(cls, tern):
        tern.conf_set(auth_failure_delay="%ds" % AUTH_DELAY,
                      auth_failure_delay_max="%ds" % AUTH_DELAY)
        cls.strict_port = harness.find_free_port()
        cls.impatient_port = harness.find_free_port()
        with open(tern.services_path(), "a") as f:
            f.write("%d inet n $login_user n 1 login imap "
                    "-o login_trusted_networks=\n" % cls.strict_port)
            f.write("%d inet n $login_user n 1 login imap "
                    "-o imap_login_timeout=%d\n"
                    % (cls.impatient_port, IMPATIENT_TIMEOUT))

    def setUp(self):
        super().setUp()
        t = self.tern
        self.port = t.imap_port
        wait_until(lambda: greets(self.port), SHORT,
                   "an IMAP greeting on port %d" % self.port)

    def add_user(self, tag="i"):
        user, pw = new_user(tag), "pw-" + uuid.uuid4().hex[:8]
        self.tern.add_user(user, pw)
        return user, pw

    def raw(self, port=None, **kw):
        c = RawImap(port or self.port, **kw)
        self.addCleanup(c.close)
        return c

    def imap(self, port=None):
        m = imaplib.IMAP4("127.0.0.1", port or self.port, timeout=SHORT)

        def close():
            with contextlib.suppress(Exception):
                m.shutdown()
        self.addCleanup(close)
        return m

    def login_pid(self, port):
        pids = self.tern.pids("login", service=str(port))
        self.assertEqual(len(pids), 1, pids)
        return pids[0]

    # ----- greeting and the simple commands

    def test_greeting_capability_noop_logout(self):
        c = self.raw()
        self.assertRegex(c.greeting,
                         r"^\* OK \[CAPABILITY IMAP4rev1 [^\]]*\] "
                         r"tern ready\.$")
        caps = caps_of(c.greeting)
        for cap in ("IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+", "ID",
                    "ENABLE", "IDLE", "STARTTLS", "AUTH=PLAIN",
                    "AUTH=LOGIN"):
            self.assertIn(cap, caps)
        # 127.0.0.1 is trusted by default: LOGIN is allowed.
        self.assertNotIn("LOGINDISABLED", caps)
        untagged, ok = c.cmd("a1", "CAPABILITY")
        self.assertEqual(len(untagged), 1, untagged)
        self.assertEqual(caps_of(untagged[0]), caps)
        self.assertRegex(ok, r"^a1 OK ")
        self.assertEqual(c.cmd("a2", "noop"), ([], "a2 OK NOOP completed."))
        untagged, ok = c.cmd("a3", "LOGOUT")
        self.assertEqual(untagged, ["* BYE Logging out"])
        self.assertEqual(ok, "a3 OK Logout completed.")
        self.assertTrue(c.closed_by_peer())
        # imaplib agrees.
        m = self.imap()
        self.assertIn("IMAP4REV1", m.capabilities)
        self.assertIn("AUTH=PLAIN", m.capabilities)
        self.assertEqual(m.noop()[0], "OK")
        self.assertEqual(m.logout()[0], "BYE")

    def test_id(self):
        c = self.raw()
        untagged, ok = c.cmd("a", 'ID ("name" "imaplib" "version" NIL)')
        self.assertEqual(untagged, ['* ID ("name" "tern")'])
        self.assertEqual(ok, "a OK ID completed.")
        self.assertEqual(c.cmd("b", "ID NIL")[1], "b OK ID completed.")
        self.assertRegex(c.cmd("c", 'ID ("name")')[1], r"^c BAD ")
        self.assertRegex(c.cmd("d", "ID")[1], r"^d BAD ")

    def test_unknown_and_malformed_commands(self):
        c = self.raw()
        self.assertEqual(c.cmd("a", "SELECT INBOX")[1],
                         "a BAD Unknown command.")
        c.send("b LOGIN (x\r\n")
        self.assertEqual(c.line(), "b BAD Missing ')'.")
        c.send("\r\n")
        self.assertEqual(c.line(), "* BAD Empty command.")
        c.send("+x NOOP\r\n")
        self.assertEqual(c.line(), "* BAD Invalid tag.")
        self.assertEqual(c.cmd("e", "NOOP")[1], "e OK NOOP completed.")

    def test_too_many_bad_commands_close(self):
        c = self.raw()
        for i in range(9):
            self.assertRegex(c.cmd("t%d" % i, "BOGUS")[1], r"BAD")
        c.send("t9 BOGUS\r\n")
        self.assertEqual(c.line(), "t9 BAD Unknown command.")
        self.assertEqual(c.line(), "* BYE Too many invalid IMAP commands.")
        self.assertTrue(c.closed_by_peer())

    # ----- TLS

    def test_starttls_with_imaplib(self):
        t = self.tern
        m = self.imap()
        self.assertIn("STARTTLS", m.capabilities)
        typ, _ = m.starttls(ssl_context=client_context(t))
        self.assertEqual(typ, "OK")
        self.assertIsInstance(m.sock, ssl.SSLSocket)
        # imaplib asks CAPABILITY again inside TLS.
        self.assertNotIn("STARTTLS", m.capabilities)
        self.assertIn("AUTH=PLAIN", m.capabilities)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login(new_user(), "wrong")
        self.assertIn("[AUTHENTICATIONFAILED]", str(e.exception))
        # STARTTLS again: refused, the connection goes on.
        c = self.raw()
        c.starttls(client_context(t))
        self.assertEqual(c.cmd("b", "STARTTLS")[1],
                         "b BAD TLS is already active.")
        self.assertEqual(c.cmd("c", "NOOP")[1], "c OK NOOP completed.")

    def test_starttls_with_pipelined_commands_is_refused(self):
        c = self.raw()
        c.send("a STARTTLS\r\nb LOGIN evil evil\r\n")
        self.assertRegex(c.line(), r"^a BAD STARTTLS must be the last")
        self.assertTrue(c.closed_by_peer())
        self.tern.wait_for_log(r"imap-login: input pipelined after")

    def test_imaps_implicit_tls(self):
        t = self.tern
        m = imaplib.IMAP4_SSL("127.0.0.1", t.imaps_port, timeout=SHORT,
                              ssl_context=client_context(t))
        self.addCleanup(m.shutdown)
        self.assertTrue(m.welcome.startswith(b"* OK [CAPABILITY "),
                        m.welcome)
        self.assertNotIn("STARTTLS", m.capabilities)
        self.assertIn("AUTH=PLAIN", m.capabilities)
        self.assertEqual(m.noop()[0], "OK")
        with self.assertRaises(imaplib.IMAP4.error) as e:
            m.login(new_user(), "wrong")
        self.assertIn("[AUTHENTICATIONFAILED]", str(e.exception))

    def test_logindisabled_before_tls_outside_trusted_networks(self):
        t = self.tern
        c = self.raw(self.strict_port)
        caps = caps_of(c.greeting)
        self.assertIn("LOGINDISABLED", caps)
        self.assertIn("STARTTLS", caps)
        self.assertFalse([x for x in caps if x.startswith("AUTH=")], caps)
        user, pw = self.add_user()
        refused = ("NO [PRIVACYREQUIRED] Plaintext authentication "
                   "disallowed on non-secure (SSL/TLS) connections.")
        self.assertEqual(c.cmd("a", "LOGIN %s %s" % (user, pw))[1],
                         "a " + refused)
        self.assertEqual(
            c.cmd("b", "AUTHENTICATE PLAIN " + plain_token(user, pw))[1],
            "b " + refused)
        # Inside TLS: offered and taken.
        c.starttls(client_context(t))
        untagged, _ = c.cmd("c", "CAPABILITY")
        caps = caps_of(untagged[0])
        self.assertNotIn("LOGINDISABLED", caps)
        self.assertNotIn("STARTTLS", caps)
        self.assertIn("AUTH=PLAIN", caps)
        self.assertEqual(c.cmd("d", "LOGIN %s wrong-pw" % user)[1],
                         "d NO [AUTHENTICATIONFAILED] Authentication "
                         "failed.")
        # imaplib sees LOGINDISABLED too.
        m = self.imap(self.strict_port)
        self.assertIn("LOGINDISABLED", m.capabilities)

    # ----- failed logins

    def test_wrong_password_same_delay_known_and_unknown_user(self):
        t = self.tern
        user, _ = self.add_user()
        timings = []
        for i, who in enumerate((user, new_user("nobody"))):
            # One client address each: the delay grows per address.
            c = self.raw(source="127.0.0.%d" % (60 + i))
            t0 = time.monotonic()
            _, r = c.cmd("a", 'LOGIN %s "Wr0ng pw never"' % who)
            timings.append(time.monotonic() - t0)
            self.assertEqual(r, "a NO [AUTHENTICATIONFAILED] "
                                "Authentication failed.")
            # The dialogue goes on after a failure.
            self.assertEqual(c.cmd("b", "NOOP")[1], "b OK NOOP completed.")
            self.assertEqual(c.cmd("c", "LOGOUT")[1],
                             "c OK Logout completed.")
        for d in timings:
            self.assertGreaterEqual(d, AUTH_DELAY - 0.1, timings)
        self.assertLess(abs(timings[0] - timings[1]), 0.5, timings)
        t.wait_for_log(r"imap-login\S*: Disconnected \(auth failed, "
                       r"1 attempts in \d+ secs\): user=<%s>"
                       % re.escape(user))
        self.assertNotIn("Wr0ng pw never", t.log())

    def test_three_failures_close(self):
        c = self.raw(source="127.0.0.70")
        for i in range(3):
            _, r = c.cmd("f%d" % i, "LOGIN %s nope" % new_user())
            self.assertRegex(r, r"NO \[AUTHENTICATIONFAILED\]")
        self.assertEqual(c.line(), "* BYE Too many authentication failures.")
        self.assertTrue(c.closed_by_peer())

    def test_login_with_literals(self):
        user = new_user()
        c = self.raw(source="127.0.0.71")
        # Synchronising literals: "+ OK" before each.
        c.send("a LOGIN {%d}\r\n" % len(user))
        self.assertEqual(c.line(), "+ OK")
        c.send("%s {8}\r\n" % user)
        self.assertEqual(c.line(), "+ OK")
        c.send("wrong pw\r\n")
        self.assertEqual(c.tagged("a")[1], "a NO [AUTHENTICATIONFAILED] "
                                           "Authentication failed.")
        # LITERAL+: all at once, no continuation.
        c.send("b LOGIN {%d+}\r\n%s {8+}\r\nwrong pw\r\n" % (len(user), user))
        self.assertEqual(c.tagged("b")[1], "b NO [AUTHENTICATIONFAILED] "
                                           "Authentication failed.")

    def test_authenticate_plain_and_login(self):
        user = new_user()
        c = self.raw(source="127.0.0.72")
        failed = "NO [AUTHENTICATIONFAILED] Authentication failed."
        # SASL-IR (RFC 4959).
        self.assertEqual(c.cmd("a", "AUTHENTICATE PLAIN " +
                               plain_token(user, "wrong"))[1],
                         "a " + failed)
        # With a continuation.
        c.send("b AUTHENTICATE PLAIN\r\n")
        self.assertEqual(c.line(), "+ ")
        c.send(plain_token(user, "wrong") + "\r\n")
        self.assertEqual(c.tagged("b")[1], "b " + failed)
        # LOGIN: two challenges; "*" cancels.
        c.send("c AUTHENTICATE LOGIN\r\n")
        self.assertEqual(c.line(), "+ VXNlcm5hbWU6")
        c.send(base64.b64encode(user.encode()).decode() + "\r\n")
        self.assertEqual(c.line(), "+ UGFzc3dvcmQ6")
        c.send("*\r\n")
        self.assertEqual(c.tagged("c")[1],
                         "c BAD Authentication aborted by client.")
        self.assertEqual(c.cmd("d", "AUTHENTICATE CRAM-MD5")[1],
                         "d NO Unsupported authentication mechanism.")
        c.send("e AUTHENTICATE PLAIN\r\n")
        self.assertEqual(c.line(), "+ ")
        c.send("not base64!\r\n")
        self.assertRegex(c.tagged("e")[1], r"^e BAD ")
        self.assertEqual(c.cmd("f", "NOOP")[1], "f OK NOOP completed.")

    # ----- limits

    def test_overlong_line_and_too_big_literals(self):
        pid = self.login_pid(self.port)
        c = self.raw()
        c.send("a LOGIN " + "x" * (LOGIN_LINE_MAX + 100) + " y\r\n")
        self.assertEqual(c.line(), "a BAD Too long command line.")
        self.assertEqual(c.cmd("b", "NOOP")[1], "b OK NOOP completed.")
        # A synchronising literal over the limit: refused, no "+".
        c.send("c LOGIN {%d}\r\n" % (LOGIN_LITERAL_MAX + 1))
        self.assertEqual(c.line(), "c BAD [TOOBIG] Literal too large.")
        self.assertEqual(c.cmd("d", "NOOP")[1], "d OK NOOP completed.")
        # A non-synchronising one: its bytes are coming, the connection
        # ends.
        c.send("e LOGIN {%d+}\r\n" % (LOGIN_LITERAL_MAX * 100))
        self.assertEqual(c.line(), "e BAD [TOOBIG] Literal too large.")
        self.assertEqual(c.line(), "* BYE [TOOBIG] Literal too large.")
        self.assertTrue(c.closed_by_peer())
        # The same login process, alive and answering.
        self.assertEqual(self.login_pid(self.port), pid)
        self.assertTrue(greets(self.port))

    def test_idle_timeout_before_login(self):
        c = self.raw(self.impatient_port, timeout=IMPATIENT_TIMEOUT + SHORT)
        t0 = time.monotonic()
        self.assertEqual(c.line(), "* BYE Disconnected for inactivity.")
        self.assertGreaterEqual(time.monotonic() - t0, IMPATIENT_TIMEOUT - 1)
        self.assertTrue(c.closed_by_peer())

    def test_login_process_runs_as_ternlogin(self):
        skip_unless_root("the processes' users")
        ternlogin = pwd.getpwnam(self.tern.conf_get("login_user")).pw_uid
        for port in (self.port, self.tern.imaps_port):
            pid = self.login_pid(port)
            self.assertEqual(harness.process_uids(pid), (ternlogin,) * 4)
            self.assertIn("imap", harness.proc_cmdline(pid))

    # ----- logged in: the session (imapd) answers

    def session_pid(self, user):
        return wait_until(
            lambda: next((p for p in self.tern.pids("imapd")
                          if proc_environ(p).get("TERN_SESSION_USER")
                          == user), None),
            SHORT, "the imapd session of %s" % user)

    @need_imapd
    def test_login_answered_by_the_session_as_the_owner(self):
        skip_unless_root("spawn starts sessions as the mailbox owner")
        user, pw = self.add_user()
        m = self.imap()
        typ, data = m.login(user, pw)
        self.assertEqual(typ, "OK")
        self.assertIn(b"Logged in", data[0])
        pid = self.session_pid(user)
        vmail = pwd.getpwnam("vmail").pw_uid
        self.assertEqual(harness.process_uids(pid), (vmail,) * 4)
        # imaplib's tags: its prefix and a number.
        self.assertTrue(proc_environ(pid)["TERN_SESSION_TAG"].startswith(
            m.tagpre.decode()))
        self.assertEqual(m.select("INBOX")[0], "OK")
        self.assertEqual(m.logout()[0], "BYE")

    @need_imapd
    def test_pipelined_after_login_and_sasl_ir(self):
        user, pw = self.add_user()
        c = self.raw()
        # Commands pipelined after LOGIN go to the session with it.
        c.send('a LOGIN %s "%s"\r\nb NOOP\r\n' % (user, pw))
        _, ok = c.tagged("a")
        self.assertRegex(ok, r"^a OK .*Logged in")
        self.assertRegex(c.tagged("b")[1], r"^b OK ")
        self.assertRegex(c.cmd("c", "LOGOUT")[1], r"^c OK ")
        # AUTHENTICATE PLAIN with an initial response, over IMAPS (the
        # login process relays).
        c = self.raw(self.tern.imaps_port, tls_ctx=client_context(self.tern))
        _, ok = c.cmd("d", "AUTHENTICATE PLAIN " + plain_token(user, pw))
        self.assertRegex(ok, r"^d OK .*Logged in")
        self.assertRegex(c.cmd("e", "SELECT INBOX")[1], r"^e OK ")
        self.assertRegex(c.cmd("f", "LOGOUT")[1], r"^f OK ")
