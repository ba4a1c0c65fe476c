# SPDX-License-Identifier: MIT
"""POP3 end to end, as a user's mail client sees it: the login process on
110 and 995, spawn, and the pop3d session, against a started instance
with the default services.conf, mail delivered over SMTP to virtual users.
Clients: python3 poplib (plain, STLS, POP3_SSL), raw sockets where the
wire matters (byte-stuffing, pipelining, a dropped connection), curl
pop3:// and pop3s://, and fetchmail collecting a 500-message mailbox into
an MDA. Covers every RFC 1939/2449/5034 command, the same failure delay
for a known and an unknown user, the UPDATE state, UIDL across a restart,
mail arriving during a session, [IN-USE], plaintext refused outside
login_trusted_networks, and (as root) who the processes run as."""

import base64
import os
import poplib
import pwd
import re
import smtplib
import socket
import stat
import subprocess
import time
import unittest

import harness
from harness import (TernTestCase, ca_bundle, client_context, make_message,
                     smtp_send, wait_until)

SENDER = "sender@example.org"
PASSWORD = "Pop3-pw-42 with spaces"
FAIL_DELAY = 1
SHORT = 20
# A session exits when its client is gone; spawn reaps it: bounded waits.
SESSION_GONE = 15

# Users, one (or a few) per test: a session's lock and changes stay in
# its own mailbox. Every one of them has PASSWORD.
USERS = ("plain", "stls", "ssl", "curl", "fetch", "dele", "drop", "uidl",
         "during", "inuse", "procs", "sasl", "dots", "limits")


def addr(name):
    return "%s@%s" % (name, harness.VIRTUAL_DOMAIN)


def pop3_port(t):
    return t.pop3_port


def pop3s_port(t):
    return t.pop3s_port


def wire(data):
    """A stored message (LF or CRLF) as POP3 sends it, before stuffing."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def stored_messages(maildir):
    """{base name before ':2,': bytes} of every message in new/ and cur/."""
    out = {}
    for sub in ("new", "cur"):
        for path in harness.maildir_files(maildir, sub):
            with open(path, "rb") as f:
                out[os.path.basename(path).split(":2,")[0]] = f.read()
    return out


class Pop3Raw(harness.SocketConn):
    """A POP3 client on a bare socket (or TLS socket): single-line and
    multi-line responses as bytes, every read with a deadline and a cap,
    nothing unstuffed behind the test's back."""

    MAX_RESPONSE = 16 * 1024 * 1024

    def __init__(self, port, timeout=SHORT, source=None, sock=None):
        self.sock = sock or socket.create_connection(
            ("127.0.0.1", port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.greeting = self.line()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        if len(self.buf) > self.MAX_RESPONSE:
            raise AssertionError("response over %d bytes" % self.MAX_RESPONSE)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection (pending %r)"
                                  % self.buf[:200])
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def multi(self):
        """The body of a multi-line response, still byte-stuffed, with
        its CRLFs, without the terminating '.' line."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            end = self.buf.find(b"\r\n.\r\n")
            if end >= 0:
                body, self.buf = self.buf[:end + 2], self.buf[end + 5:]
                return body
            self._fill()

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.line()

    def login(self, user, password=PASSWORD):
        r = self.cmd("USER %s" % user)
        if not r.startswith(b"+OK"):
            return r
        return self.cmd("PASS %s" % password)


def unstuff(body):
    """Lines of a multi-line response body as the RFC reads them."""
    lines = body.split(b"\r\n")[:-1]
    return [ln[1:] if ln.startswith(b"..") else ln for ln in lines]


class Pop3Helpers:
    """What both test classes use: a login that waits for the user's
    previous session to end."""

    def login_when_free(self, user, t=None, tls=False):
        """Logs in once the previous session of user has ended (a
        dropped client's session may still be exiting: [IN-USE] ends
        that attempt's connection, so each try is a new one)."""
        t = t or self.tern

        def attempt():
            if tls:
                p = poplib.POP3_SSL("127.0.0.1", pop3s_port(t),
                                    timeout=SHORT, context=client_context(t))
            else:
                p = poplib.POP3("127.0.0.1", pop3_port(t), timeout=SHORT)
            try:
                p.user(addr(user) if "@" not in user else user)
                self.assertEqual(p.pass_(PASSWORD), b"+OK Logged in.")
                return p
            except poplib.error_proto as e:
                p.close()
                if b"[IN-USE]" not in e.args[0]:
                    raise
                return None
        p = wait_until(attempt, SESSION_GONE, "the session of %s to end"
                       % user, interval=0.2)
        self.addCleanup(p.close)
        return p


class Pop3Test(Pop3Helpers, TernTestCase):
    """One instance for the class; each test its own user."""

    instance_options = {"mail_access": True}

    @classmethod
    def configure(cls, tern):
        tern.conf_set(auth_failure_delay="%ds" % FAIL_DELAY)
        for name in USERS:
            tern.add_user(addr(name), PASSWORD)
        # A third login service that offers APOP (off by default).
        cls.apop_port = harness.find_free_port()
        with open(tern.services_path(), "a") as f:
            f.write("%d inet n $login_user n 1 login pop3 "
                    "-o pop3_enable_apop=yes\n" % cls.apop_port)

    # ----- helpers

    def deliver(self, user, count=1, subject="pop3 test", body=b"hello\n"):
        """count messages to user in one SMTP session; waits until they
        are all in new/ (or cur/, if a session moved them); returns the
        Message-IDs."""
        t = self.tern
        maildir = t.virtual_maildir(user)
        before = harness.maildir_count(maildir)
        mids = []
        with smtplib.SMTP("127.0.0.1", t.smtp_port, timeout=SHORT) as s:
            s.ehlo("client.example.org")
            for i in range(count):
                mid, msg = make_message(SENDER, user, "%s %d" % (subject, i),
                                        body)
                s.sendmail(SENDER, [user], harness.to_crlf(msg))
                mids.append(mid)
        wait_until(lambda: harness.maildir_count(maildir) >= before + count,
                   harness.DELIVERY_TIMEOUT + count / 10,
                   "%d messages in %s" % (before + count, maildir))
        return mids

    def pop(self, user, port=None):
        """A logged-in poplib session, closed after the test."""
        p = poplib.POP3("127.0.0.1", port or pop3_port(self.tern),
                        timeout=SHORT)
        self.addCleanup(p.close)
        p.user(addr(user))
        self.assertEqual(p.pass_(PASSWORD), b"+OK Logged in.")
        return p

    def sessions(self, t=None):
        """Pids of this instance's pop3d sessions (spawn execs them with
        argv[0] "pop3d", so harness.pids does not see them)."""
        t = t or self.tern
        found = []
        for pid in harness.all_pids():
            argv = harness.proc_cmdline(pid)
            if not argv or os.path.basename(argv[0]) != "pop3d" or \
                    not harness.pid_alive(pid):
                continue
            if any(argv[i] == "-c" and argv[i + 1] == t.dir
                   for i in range(len(argv) - 1)):
                found.append(pid)
        return found

    # ----- tests

    def test_poplib_plain_every_command(self):
        t = self.tern
        user = addr("plain")
        mids = self.deliver(user, 3, body=b"line one\nline two\n\nlast\n")
        p = poplib.POP3("127.0.0.1", pop3_port(t), timeout=SHORT)
        self.addCleanup(p.close)
        self.assertTrue(p.getwelcome().startswith(b"+OK"), p.getwelcome())
        capa = p.capa()
        for c in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE",
                  "PIPELINING", "STLS", "SASL"):
            self.assertIn(c, capa, capa)
        self.assertIn("PLAIN", capa["SASL"])
        # APOP is off by default.
        with self.assertRaises(poplib.error_proto):
            p.apop(user, PASSWORD)
        # Commands of the transaction state need a login first.
        with self.assertRaises(poplib.error_proto):
            p.stat()
        p.user(user)
        self.assertEqual(p.pass_(PASSWORD), b"+OK Logged in.")
        capa = p.capa()
        for c in ("TOP", "UIDL", "RESP-CODES", "PIPELINING"):
            self.assertIn(c, capa, capa)
        self.assertNotIn("STLS", capa)
        self.assertEqual(capa.get("EXPIRE"), ["NEVER"])
        count, total = p.stat()
        self.assertEqual(count, 3)
        resp, listing, _ = p.list()
        self.assertTrue(resp.startswith(b"+OK"))
        sizes = [int(ln.split()[1]) for ln in listing]
        self.assertEqual([int(ln.split()[0]) for ln in listing], [1, 2, 3])
        self.assertEqual(sum(sizes), total)
        self.assertEqual(p.list(2), b"+OK 2 %d" % sizes[1])
        _, uidls, _ = p.uidl()
        uids = [ln.split()[1] for ln in uidls]
        self.assertEqual(len(set(uids)), 3)
        self.assertEqual(p.uidl(3), b"+OK 3 " + uids[2])
        # Every UIDL is the printable form RFC 1939 7 asks for.
        for u in uids:
            self.assertRegex(u, rb"^[\x21-\x7e]{1,70}$")
        stored = stored_messages(t.virtual_maildir(user))
        self.assertEqual(len(stored), 3)
        texts = {}
        for n in (1, 2, 3):
            resp, lines, octets = p.retr(n)
            self.assertTrue(resp.startswith(b"+OK"))
            texts[n] = b"\r\n".join(lines) + b"\r\n"
            # LIST's size is the exact wire size of what RETR sends.
            self.assertEqual(len(texts[n]), sizes[n - 1], n)
        # Each stored message once (numbered by arrival, which local's
        # parallel deliveries may order either way).
        self.assertEqual(sorted(texts.values()),
                         sorted(wire(m) for m in stored.values()))
        self.assertEqual(sorted(m for m in mids
                                for x in texts.values() if m.encode() in x),
                         sorted(mids))
        # TOP n 0: the header and the blank line, no body.
        resp, lines, _ = p.top(1, 0)
        head = texts[1].split(b"\r\n\r\n")[0]
        self.assertEqual(lines, head.split(b"\r\n") + [b""])
        resp, lines, _ = p.top(1, 2)
        self.assertEqual(lines[-3:], [b"", b"line one", b"line two"])
        self.assertTrue(p.noop().startswith(b"+OK"))
        self.assertTrue(p.dele(1).startswith(b"+OK"))
        with self.assertRaises(poplib.error_proto) as e:
            p.retr(1)
        self.assertIn(b"deleted", e.exception.args[0])
        with self.assertRaises(poplib.error_proto):
            p.dele(1)
        self.assertEqual(p.stat(), (2, total - sizes[0]))
        self.assertTrue(p.rset().startswith(b"+OK"))
        self.assertEqual(p.stat(), (3, total))
        for bad in (0, 4, 99999999999):
            with self.assertRaises(poplib.error_proto, msg=bad):
                p.retr(bad)
        with self.assertRaises(poplib.error_proto):
            p._shortcmd("XYZZY")
        # USER/PASS after login are refused, the session goes on.
        with self.assertRaises(poplib.error_proto):
            p.user(user)
        self.assertEqual(p.stat(), (3, total))
        p.dele(3)
        self.assertTrue(p.quit().startswith(b"+OK"))
        wait_until(lambda: len(stored_messages(t.virtual_maildir(user))) == 2,
                   SESSION_GONE, "DELE 3 applied at QUIT")
        self.assertEqual(self.login_when_free("plain").stat()[0], 2)

    def test_byte_stuffing_of_dot_lines(self):
        t = self.tern
        user = addr("dots")
        body = b"before\n.hidden\n..double\n.\nafter\n"
        self.deliver(user, 1, body=body)
        c = Pop3Raw(pop3_port(t))
        self.addCleanup(c.close)
        self.assertTrue(c.login(user).startswith(b"+OK"))
        size = int(c.cmd("LIST 1").split()[2])
        self.assertTrue(c.cmd("RETR 1").startswith(b"+OK"))
        raw = c.multi()
        self.assertIn(b"\r\nbefore\r\n..hidden\r\n...double\r\n..\r\n"
                      b"after\r\n", raw)
        lines = unstuff(raw)
        # The size counts the message before stuffing.
        self.assertEqual(len(b"\r\n".join(lines) + b"\r\n"), size)
        self.assertEqual(lines[-5:], [b"before", b".hidden", b"..double",
                                      b".", b"after"])
        # poplib unstuffs alike.
        c.cmd("QUIT")
        p = self.login_when_free("dots")
        self.assertEqual(p.retr(1)[1][-5:], lines[-5:])

    def test_auth_plain_with_initial_response_and_pipelining(self):
        t = self.tern
        user = addr("sasl")
        self.deliver(user, 2)
        c = Pop3Raw(pop3_port(t))
        self.addCleanup(c.close)
        ir = base64.b64encode(b"\0" + user.encode() + b"\0" +
                              PASSWORD.encode()).decode()
        # RFC 2449 PIPELINING: the commands behind the login reach the
        # session (login hands them over).
        c.send("AUTH PLAIN %s\r\nSTAT\r\nLIST\r\nQUIT\r\n" % ir)
        self.assertEqual(c.line(), b"+OK Logged in.")
        self.assertRegex(c.line(), rb"^\+OK 2 \d+$")
        self.assertTrue(c.line().startswith(b"+OK"))
        self.assertEqual(len(unstuff(c.multi())), 2)
        self.assertTrue(c.line().startswith(b"+OK"))
        self.assertTrue(c.closed_by_peer())
        # AUTH PLAIN with a challenge, and one that fails.
        c = Pop3Raw(pop3_port(t), source="127.0.0.30")
        self.addCleanup(c.close)
        self.assertIn(c.cmd("AUTH PLAIN"), (b"+ ", b"+"))
        self.assertEqual(c.cmd(ir), b"+OK Logged in.")
        self.assertRegex(c.cmd("STAT"), rb"^\+OK 2 \d+$")
        c.cmd("QUIT")

    def test_stls(self):
        t = self.tern
        self.deliver(addr("stls"), 1)
        p = poplib.POP3("127.0.0.1", pop3_port(t), timeout=SHORT)
        self.addCleanup(p.close)
        self.assertIn("STLS", p.capa())
        self.assertTrue(p.stls(context=client_context(t)).startswith(b"+OK"))
        self.assertNotIn("STLS", p.capa())
        p.user(addr("stls"))
        self.assertEqual(p.pass_(PASSWORD), b"+OK Logged in.")
        self.assertEqual(p.stat()[0], 1)
        lines = p.retr(1)[1]
        self.assertIn(b"Subject: pop3 test 0", lines)
        self.assertTrue(p.quit().startswith(b"+OK"))

    def test_pop3_ssl(self):
        t = self.tern
        self.deliver(addr("ssl"), 2)
        p = poplib.POP3_SSL("127.0.0.1", pop3s_port(t), timeout=SHORT,
                            context=client_context(t))
        self.addCleanup(p.close)
        self.assertTrue(p.getwelcome().startswith(b"+OK"))
        self.assertNotIn("STLS", p.capa())
        p.user(addr("ssl"))
        self.assertEqual(p.pass_(PASSWORD), b"+OK Logged in.")
        count, total = p.stat()
        self.assertEqual(count, 2)
        got = sum(len(b"\r\n".join(p.retr(n)[1]) + b"\r\n")
                  for n in (1, 2))
        self.assertEqual(got, total)
        self.assertTrue(p.quit().startswith(b"+OK"))

    def curl(self, *args):
        out = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "30",
             "--user", "%s:%s" % (addr("curl"), PASSWORD)] + list(args),
            capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out.stdout

    def test_curl_pop3_and_pop3s(self):
        t = self.tern
        mids = self.deliver(addr("curl"), 2)
        url = "pop3://127.0.0.1:%d/" % pop3_port(t)
        surl = "pop3s://127.0.0.1:%d/" % pop3s_port(t)
        listing = self.curl(url)
        self.assertRegex(listing, rb"^1 \d+\r\n2 \d+\r\n$")
        sizes = [int(ln.split()[1]) for ln in listing.splitlines()]
        msg = self.curl(url + "1")
        self.assertEqual(len(msg), sizes[0])
        self.assertIn(msg, [wire(m) for m in stored_messages(
            t.virtual_maildir(addr("curl"))).values()])
        self.assertTrue(any(m.encode() in msg for m in mids))
        # STLS on 110, certificate checked against the instance's.
        host = t.conf_get("myhostname")
        self.assertEqual(self.curl(
            "--ssl-reqd", "--cacert", ca_bundle(t),
            "--resolve", "%s:%d:127.0.0.1" % (host, pop3_port(t)),
            "pop3://%s:%d/2" % (host, pop3_port(t))), self.curl(url + "2"))
        # Implicit TLS on 995 (the name is not checked: a self-signed
        # certificate for the instance's hostname).
        self.assertEqual(self.curl("--insecure", surl + "1"), msg)
        self.assertEqual(self.curl("--insecure", surl), listing)
        uidl = self.curl("-X", "UIDL", url)
        self.assertRegex(uidl, rb"^1 \S+\r\n2 \S+\r\n$")
        top = self.curl("-X", "TOP 2 0", surl, "--insecure")
        self.assertTrue(any(m.encode() in top for m in mids))
        self.assertNotIn(b"\r\nhello\r\n", top)
        self.assertTrue(top.endswith(b"\r\n\r\n"), top[-20:])
        self.curl("-X", "DELE 1", "--head", url)
        wait_until(lambda: harness.maildir_count(
            t.virtual_maildir(addr("curl"))) == 1, SESSION_GONE,
            "curl's DELE 1 applied")
        self.assertRegex(self.curl(url), rb"^1 \d+\r\n$")

    def test_fetchmail_500_messages_into_an_mda(self):
        t = self.tern
        user = addr("fetch")
        n = 500
        body = b"".join(b"line %d of a fetchmail test\n" % i
                        for i in range(20)) + b".dot line\n"
        self.deliver(user, n, subject="fetchmail", body=body)
        maildir = t.virtual_maildir(user)
        stored = stored_messages(maildir)
        self.assertEqual(len(stored), n)
        work = os.path.join(t.tmp, "fetchmail")
        out_dir = os.path.join(work, "out")
        os.makedirs(out_dir)
        mda = os.path.join(work, "mda.sh")
        with open(mda, "w") as f:
            f.write("#!/bin/sh\nf=$(mktemp %s/msg.XXXXXXXX) && "
                    "exec cat >\"$f\"\n" % out_dir)
        os.chmod(mda, 0o755)
        rc = os.path.join(work, "fetchmailrc")
        with open(rc, "w") as f:
            # invisible: no Received: of fetchmail's own; no rewrite:
            # addresses as they are; the certificate checked against
            # the instance's, for its name.
            f.write('set no syslog\n'
                    'set invisible\n'
                    'poll 127.0.0.1 protocol pop3 port %d\n'
                    '  user "%s" password "%s"\n'
                    '  ssl sslcertck sslcertfile "%s" sslcommonname "%s"\n'
                    '  fetchall nokeep no rewrite\n'
                    '  mda "%s"\n'
                    % (pop3s_port(t), user, PASSWORD, ca_bundle(t),
                       t.conf_get("myhostname"), mda))
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=work, FETCHMAILHOME=work)
        res = subprocess.run(
            ["fetchmail", "-f", rc, "--nodetach", "-v", "--timeout", "30"],
            capture_output=True, env=env, timeout=120)
        log = (res.stdout + res.stderr).decode("utf-8", "replace")
        # 0: mail was retrieved.
        self.assertEqual(res.returncode, 0, log[-3000:])
        got = []
        for name in os.listdir(out_dir):
            with open(os.path.join(out_dir, name), "rb") as f:
                got.append(f.read())
        self.assertEqual(len(got), n, log[-3000:])
        # What the MDA got is what was stored, message for message (the
        # MDA receives LF line ends, as stored).
        self.assertEqual(sorted(got), sorted(m.replace(b"\r\n", b"\n")
                                             for m in stored.values()))
        self.assertEqual(sum(map(len, got)),
                         sum(len(m) for m in stored.values()))
        self.assertRegex(log, r"%d messages? for %s" % (n, re.escape(user)))
        # --nokeep: deleted on the server at QUIT.
        wait_until(lambda: harness.maildir_count(maildir) == 0,
                   SESSION_GONE, "fetchmail's deletions")

    def test_wrong_password_same_delay_known_and_unknown_user(self):
        t = self.tern
        timings = []
        for i, user in enumerate((addr("limits"), "nobody@example.test")):
            # One client address each: the failure delay grows per
            # address and per user.
            c = Pop3Raw(pop3_port(t), source="127.0.0.%d" % (40 + i))
            self.addCleanup(c.close)
            self.assertTrue(c.cmd("USER %s" % user).startswith(b"+OK"))
            t0 = time.monotonic()
            r = c.cmd("PASS Wr0ng-pw-never")
            timings.append(time.monotonic() - t0)
            self.assertTrue(r.startswith(b"-ERR [AUTH]"), r)
            # The dialogue goes on after a failure.
            self.assertTrue(c.cmd("NOOP").startswith((b"+OK", b"-ERR")))
        for d in timings:
            self.assertGreaterEqual(d, FAIL_DELAY - 0.1, timings)
        self.assertLess(abs(timings[0] - timings[1]), 0.5, timings)
        self.assertNotIn("Wr0ng-pw-never", t.log())

    def test_dele_quit_removes_dropped_connection_removes_nothing(self):
        t = self.tern
        user = addr("dele")
        self.deliver(user, 3)
        maildir = t.virtual_maildir(user)
        c = Pop3Raw(pop3_port(t))
        self.assertTrue(c.login(user).startswith(b"+OK"))
        self.assertTrue(c.cmd("DELE 1").startswith(b"+OK"))
        self.assertTrue(c.cmd("DELE 2").startswith(b"+OK"))
        # No QUIT: the connection drops, the UPDATE state never comes.
        c.close()
        p = self.login_when_free("dele")
        self.assertEqual(p.stat()[0], 3)
        self.assertEqual(harness.maildir_count(maildir), 3)
        uid1 = p.uidl(1).split()[2]
        p.dele(1)
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.assertEqual(harness.maildir_count(maildir), 2)
        p = self.login_when_free("dele")
        self.assertEqual(p.stat()[0], 2)
        self.assertNotIn(uid1, [ln.split()[1] for ln in p.uidl()[1]])
        p.quit()

    def test_message_delivered_during_a_session(self):
        t = self.tern
        user = addr("during")
        self.deliver(user, 2, subject="before")
        p = self.pop("during")
        count, total = p.stat()
        self.assertEqual(count, 2)
        listing = p.list()[1]
        self.deliver(user, 1, subject="while")
        # Not in this session's view; this session unaffected.
        self.assertEqual(p.stat(), (count, total))
        self.assertEqual(p.list()[1], listing)
        subjects = sorted(ln for n in (1, 2) for ln in p.retr(n)[1]
                          if ln.startswith(b"Subject: "))
        self.assertEqual(subjects, [b"Subject: before 0",
                                    b"Subject: before 1"])
        with self.assertRaises(poplib.error_proto):
            p.retr(3)
        p.quit()
        p = self.login_when_free("during")
        self.assertEqual(p.stat()[0], 3)
        self.assertIn(b"Subject: while 0", p.retr(3)[1])
        p.quit()

    def test_second_session_in_use(self):
        user = addr("inuse")
        self.deliver(user, 1)
        first = self.pop("inuse")
        self.assertEqual(first.stat()[0], 1)
        second = poplib.POP3("127.0.0.1", pop3_port(self.tern),
                             timeout=SHORT)
        self.addCleanup(second.close)
        second.user(user)
        with self.assertRaises(poplib.error_proto) as e:
            second.pass_(PASSWORD)
        self.assertTrue(e.exception.args[0].startswith(b"-ERR [IN-USE]"),
                        e.exception.args[0])
        # The first session is unaffected.
        self.assertEqual(first.stat()[0], 1)
        self.assertTrue(first.quit().startswith(b"+OK"))
        self.assertEqual(self.login_when_free("inuse").stat()[0], 1)

    def test_session_as_mailbox_owner_login_as_ternlogin(self):
        harness.skip_unless_root("the processes' users")
        t = self.tern
        user = addr("procs")
        self.deliver(user, 1)
        vmail = pwd.getpwnam(t.conf_get("vmail_user")).pw_uid
        ternlogin = pwd.getpwnam(t.conf_get("login_user")).pw_uid
        # A TLS session keeps its login process (the relay) busy as well.
        p = poplib.POP3_SSL("127.0.0.1", pop3s_port(t), timeout=SHORT,
                            context=client_context(t))
        self.addCleanup(p.close)
        p.user(user)
        p.pass_(PASSWORD)
        self.assertEqual(p.stat()[0], 1)

        def mine():
            for pid in self.sessions():
                try:
                    with open("/proc/%d/environ" % pid, "rb") as f:
                        env = f.read().split(b"\0")
                except OSError:
                    continue    # it exited meanwhile
                if b"TERN_SESSION_USER=" + user.encode() in env:
                    return pid
            return None
        session = wait_until(mine, SHORT, "the pop3d session of %s" % user)
        self.assertEqual(harness.process_uids(session), (vmail,) * 4)
        self.assertEqual(os.stat(t.virtual_maildir(user)).st_uid, vmail)
        logins = t.pids("login")
        # One per port: 110, 995, the class's APOP service, and IMAP's
        # 143 and 993.
        self.assertEqual(len(logins), 5, t.describe_pids())
        for pid in logins:
            self.assertEqual(harness.process_uids(pid), (ternlogin,) * 4)
        p.quit()
        wait_until(lambda: mine() is None, SESSION_GONE,
                   "the session to exit after QUIT")

    def test_uidl_identical_after_restart(self):
        t = self.tern
        user = addr("uidl")
        self.deliver(user, 3)
        p = self.pop("uidl")
        before = p.uidl()[1]
        p.retr(2)
        p.quit()
        # The new/ -> cur/ move and the \Seen flag of the message RETR
        # read (Dovecot's names: ":2," then the flags) changed file names.
        cur = harness.maildir_files(t.virtual_maildir(user), "cur")
        self.assertEqual(sorted(os.path.basename(f).split(":2,")[1]
                                for f in cur), ["", "", "S"])
        p = self.login_when_free("uidl")
        self.assertEqual(p.uidl()[1], before)
        p.quit()
        with harness.leak_checks_off():
            t.stop()
            t.start()
        p = wait_until(lambda: self._try_login("uidl"), harness.START_TIMEOUT,
                       "POP3 after the restart", interval=0.2)
        self.addCleanup(p.close)
        self.assertEqual(p.uidl()[1], before)
        p.quit()

    def test_apop_for_a_plaintext_password(self):
        """APOP (RFC 1939 7) where the login service offers it: the digest
        of the greeting's timestamp and a password the user file holds in
        clear (ternuser passwd -s PLAIN writes {PLAIN}, as Dovecot's
        passwd-file) logs in; a wrong digest, or a user whose password is
        hashed, gets -ERR [AUTH]."""
        t = self.tern
        user = addr("apop")
        t.add_user(user, "hashed-first")
        r = t.ternuser("passwd", "-s", "PLAIN", user, "-",
                       input=(PASSWORD + "\n").encode())
        self.assertIn("stored in clear", r.stderr)
        with open(t.conf_get("user_file")) as f:
            entry = [ln for ln in f if ln.startswith(user + ":")]
        self.assertEqual(entry, ["%s:{PLAIN}%s::::::\n" % (user, PASSWORD)])
        bad = t.ternuser("passwd", "-s", "MD5", user, "-", check=False,
                         input=b"x\n")
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("expected CRYPT", bad.stderr)
        self.deliver(user)
        p = poplib.POP3("127.0.0.1", self.apop_port, timeout=SHORT)
        self.addCleanup(p.close)
        self.assertRegex(p.getwelcome(), rb"^\+OK .* <[^<>@]+@[^<>]+>$")
        with self.assertRaisesRegex(poplib.error_proto, r"\[AUTH\]"):
            p.apop(user, "not the password")
        self.assertEqual(p.apop(user, PASSWORD), b"+OK Logged in.")
        self.assertEqual(p.stat()[0], 1)
        p.quit()
        q = poplib.POP3("127.0.0.1", self.apop_port, timeout=SHORT)
        self.addCleanup(q.close)
        with self.assertRaisesRegex(poplib.error_proto, r"\[AUTH\]"):
            q.apop(addr("plain"), PASSWORD)

    def _try_login(self, user):
        try:
            p = poplib.POP3("127.0.0.1", pop3_port(self.tern), timeout=SHORT)
        except OSError:
            return None
        try:
            p.user(addr(user))
            p.pass_(PASSWORD)
            return p
        except (poplib.error_proto, OSError):
            p.close()
            return None


def stored_by_mid(stored, mid):
    for data in stored.values():
        if mid.encode() in data:
            return data
    raise AssertionError("no stored message with %s" % mid)


class StrangerTest(Pop3Helpers, TernTestCase):
    """The default services.conf lines as they are (login chrooted to
    $login_directory, two processes per port; harness's instances run
    them unchrooted for LeakSanitizer), and login_trusted_networks empty:
    127.0.0.1 is a stranger, so a plaintext login needs STLS first."""

    instance_options = {"mail_access": True}

    @classmethod
    def setUpClass(cls):
        # LeakSanitizer needs /proc, which the chroot hides.
        with harness.leak_checks_off():
            super().setUpClass()

    @classmethod
    def configure(cls, tern):
        for port in (pop3_port(tern), pop3s_port(tern)):
            tern.edit_service(str(port), 4, "$login_directory")
            tern.edit_service(str(port), 5, "2")
        tern.conf_set(login_trusted_networks="")
        tern.add_user(addr("far"), PASSWORD)

    def test_plaintext_login_refused_before_stls(self):
        t = self.tern
        user = addr("far")
        smtp_send(t.smtp_port, SENDER, [user],
                  make_message(SENDER, user)[1])
        t.wait_for_maildir(t.virtual_maildir(user), 1)
        c = Pop3Raw(pop3_port(t))
        self.addCleanup(c.close)
        self.assertTrue(c.greeting.startswith(b"+OK"))
        self.assertTrue(c.cmd("CAPA").startswith(b"+OK"))
        capa = unstuff(c.multi())
        self.assertIn(b"STLS", capa)
        self.assertNotIn(b"USER", capa)
        self.assertFalse([ln for ln in capa if ln.startswith(b"SASL")], capa)
        for cmd in ("USER %s" % user, "PASS %s" % PASSWORD,
                    "AUTH PLAIN " + base64.b64encode(
                        b"\0" + user.encode() + b"\0" +
                        PASSWORD.encode()).decode()):
            r = c.cmd(cmd)
            self.assertTrue(r.startswith(b"-ERR"), (cmd, r))
        self.assertIn(b"[AUTH]", r)
        self.assertTrue(c.cmd("STLS").startswith(b"+OK"))
        tls = client_context(t).wrap_socket(c.sock)
        c.sock = tls
        self.assertEqual(c.login(user), b"+OK Logged in.")
        self.assertRegex(c.cmd("STAT"), rb"^\+OK 1 \d+$")
        self.assertTrue(c.cmd("QUIT").startswith(b"+OK"))
        # poplib over POP3_SSL needs nothing more.
        p = self.login_when_free(user, t=t, tls=True)
        self.assertEqual(p.stat()[0], 1)
        p.quit()

    def test_login_processes_chrooted_as_ternlogin(self):
        harness.skip_unless_root("the processes' users and chroot")
        t = self.tern
        login_dir = os.path.realpath(t.conf_get("login_directory"))
        ternlogin = pwd.getpwnam(t.conf_get("login_user")).pw_uid
        t.wait_ready()     # chroot and drop done
        # Two per POP3 port (IMAP's run unchrooted, as the harness has
        # them).
        logins = (t.pids("login", service=str(pop3_port(t))) +
                  t.pids("login", service=str(pop3s_port(t))))
        self.assertEqual(len(logins), 4, t.describe_pids())
        for pid in logins:
            self.assertEqual(harness.process_uids(pid), (ternlogin,) * 4)
            self.assertEqual(os.readlink("/proc/%d/root" % pid), login_dir)
        # Root's directory, nobody else may write in it, and nothing but
        # spawn's socket inside.
        st = os.lstat(login_dir)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(st.st_uid, 0)
        self.assertFalse(st.st_mode & 0o022)
        for name in os.listdir(login_dir):
            self.assertTrue(stat.S_ISSOCK(os.lstat(
                os.path.join(login_dir, name)).st_mode), name)
        # Logins work from inside the chroot (spawn's socket is /spawn).
        p = self.login_when_free(addr("far"), t=t, tls=True)
        p.quit()

if __name__ == "__main__":
    unittest.main()
