# SPDX-License-Identifier: MIT
"""imapd's limits, memory and robustness, driven directly as in
test_imapd (the client on one end of a socketpair, the TERN_SESSION_*
environment, as root the mailbox owner's uid). Shown: FETCH of large
messages streamed byte for byte (BODY[], <partial> windows that start
inside a CRLF imapd inserts, sections, BINARY of base64 and
quoted-printable parts, BINARY.SIZE); a client that does not read its
FETCH responses leaves imapd's memory where it was; the literals of one
command are capped together; client-controlled nesting, argument
counts, keywords and patterns get BAD or NO with their response code and
never a crash; on a 20,000-message folder a warm UID FETCH 1:* (FLAGS
RFC822.SIZE ENVELOPE) opens no message file, and the PSS of the idle
selected session is printed."""

import array
import base64
import fcntl
import os
import quopri
import random
import re
import termios
import time

import harness
import test_imapd
from harness import TernTestCase

TIMEOUT = 60
BIG_LIMIT = 16 * 1024 * 1024
KIB = 1024
MIB = 1024 * 1024


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * KIB
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def proc_pss(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * KIB
    raise AssertionError("no Pss in /proc/%d/smaps_rollup" % pid)


def unread(sock):
    n = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, n)
    return n[0]


class RawClient:
    """Commands on the raw socket, with literals ({n} and BINARY's ~{n})
    read whole: each response is a list of pieces, text and literals
    alternating, the text without its CRLF."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.n = 0

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise AssertionError("connection closed after %r"
                                 % self.buf[-200:])
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        pieces = []
        while True:
            line = self.line()
            pieces.append(line)
            m = re.search(rb"~?\{(\d+)\}$", line)
            if m is None:
                return pieces
            pieces.append(self.exact(int(m.group(1))))

    def command(self, text, expect="OK"):
        """(untagged responses, tagged line) of one command."""
        self.n += 1
        tag = b"t%d" % self.n
        self.sock.sendall(tag + b" " + text + b"\r\n")
        untagged = []
        while True:
            resp = self.response()
            if resp[0].startswith(tag + b" "):
                if expect is not None:
                    status = resp[0].split(b" ")[1].decode()
                    if status != expect:
                        raise AssertionError("%s: %r" % (text, resp))
                return untagged, resp[0]
            untagged.append(resp)


class ImapdLimitsTest(harness.SessionProcess, TernTestCase):

    session_program = test_imapd.IMAPD
    session_user = test_imapd.USER
    session_local_port = "143"

    configure = classmethod(test_imapd.ImapdTest.configure.__func__)
    start = test_imapd.ImapdTest.start
    new_maildir = test_imapd.ImapdTest.new_maildir

    def setUp(self):
        super().setUp()
        if harness.is_root():
            import pwd
            self.owner = pwd.getpwnam(self.tern.conf_get("vmail_user"))
        else:
            import pwd
            self.owner = pwd.getpwuid(os.geteuid())
        self.conf = self.make_conf(message_size_limit=str(BIG_LIMIT))

    # ----- helpers

    def chown(self, path):
        if harness.is_root():
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)

    def fill_maildir(self, md, messages):
        """The messages as files of cur/ (seen), as delivery and a
        client's flags leave them: imapd finds them by a scan."""
        for sub in ("", "cur", "new", "tmp"):
            path = os.path.join(md, sub)
            os.makedirs(path, exist_ok=True)
            self.chown(path)
        base = int(time.time()) - 100000
        for i, msg in enumerate(messages):
            name = "%d.M%dP%d.test,S=%d:2,S" % (base + i, i, os.getpid(),
                                                len(msg))
            path = os.path.join(md, "cur", name)
            with open(path, "wb") as f:
                f.write(msg)
            os.utime(path, (base + i, base + i))
            self.chown(path)

    def session(self, md, conf=None):
        saved = self.conf
        if conf is not None:
            self.conf = conf
        try:
            proc, sock = self.start(md)
        finally:
            self.conf = saved
        c = RawClient(sock)
        self.assertTrue(c.line().startswith(b"* PREAUTH"))
        c.proc = proc
        return c

    def logout(self, c):
        c.command(b"LOGOUT")
        self.assertEqual(c.proc.wait(timeout=TIMEOUT), 0)

    def fetch_literal(self, c, item, seq=1):
        """The literal of item in FETCH seq's response, and whether it
        came as literal8 (~{n})."""
        untagged, _ = c.command(b"FETCH %d (%s)" % (seq, item))
        for resp in untagged:
            for i, piece in enumerate(resp[:-1]):
                if i % 2 == 0 and re.search(rb"~?\{\d+\}$", piece):
                    return resp[i + 1], b"~{" in piece
        raise AssertionError("no literal for %r in %r" % (item, untagged))

    def big_message(self):
        """A multipart message of about 3 MB stored with LF line ends,
        a few lines already CRLF, a base64 attachment with NULs and a
        quoted-printable part."""
        rng = random.Random(11)
        blob = bytes(rng.getrandbits(8) for _ in range(1200 * KIB))
        blob += b"\0\0\0end"
        lines = []
        for i in range(20000):
            text = b"line %d %s" % (i, b"x" * (i % 70))
            lines.append(text + (b"\r\n" if i % 97 == 0 else b"\n"))
        text = b"".join(lines)
        qp_plain = b"".join(b"caf\xc3\xa9 %d %s=\n" % (i, b"q" * (i % 90))
                            for i in range(5000))
        qp = quopri.encodestring(qp_plain)
        b64 = base64.encodebytes(blob)
        msg = (b"From: a@example.org\nTo: b@example.org\n"
               b"Subject: big\nMIME-Version: 1.0\n"
               b"Content-Type: multipart/mixed; boundary=\"BB\"\n\n"
               b"--BB\nContent-Type: text/plain\n\n" + text +
               b"--BB\nContent-Type: application/octet-stream\n"
               b"Content-Transfer-Encoding: base64\n\n" + b64 +
               b"--BB\nContent-Type: text/plain; charset=utf-8\n"
               b"Content-Transfer-Encoding: quoted-printable\n\n" + qp +
               b"--BB--\n")
        return msg, text, blob, qp_plain

    # ----- tests

    def test_fetch_streams_large_message(self):
        msg, text, blob, qp_plain = self.big_message()
        md = self.new_maildir()
        self.fill_maildir(md, [msg])
        wire = crlf(msg)
        c = self.session(md)
        c.command(b"SELECT INBOX")
        body, _ = self.fetch_literal(c, b"BODY.PEEK[]")
        self.assertEqual(body, wire)
        # Windows on the converted stream, some starting on the LF of a
        # CRLF that imapd inserts, some past the end.
        first = wire.index(b"\r\n")
        inserted = [first + 1, wire.index(b"\r\n", len(wire) // 3) + 1]
        for off, n in [(0, 1), (0, 100), (1, 7)] + \
                [(o, 3) for o in inserted] + \
                [(len(wire) // 2, 70000), (len(wire) - 5, 100),
                 (len(wire), 10), (len(wire) + 5, 10)]:
            item = b"BODY.PEEK[]<%d.%d>" % (off, n)
            data, _ = self.fetch_literal(c, item)
            self.assertEqual(data, wire[off:off + n], item)
        hdr_end = wire.index(b"\r\n\r\n") + 4
        data, _ = self.fetch_literal(c, b"BODY.PEEK[TEXT]<10.5000>")
        self.assertEqual(data, wire[hdr_end + 10:hdr_end + 5010])
        data, _ = self.fetch_literal(c, b"BODY.PEEK[HEADER]")
        self.assertEqual(data, wire[:hdr_end])
        data, _ = self.fetch_literal(
            c, b"BODY.PEEK[HEADER.FIELDS (Subject To)]")
        self.assertEqual(data, b"To: b@example.org\r\nSubject: big\r\n\r\n")
        data, _ = self.fetch_literal(
            c, b"BODY.PEEK[HEADER.FIELDS.NOT (Subject)]<0.4>")
        self.assertEqual(data, b"From")
        # The line end before a boundary belongs to the boundary.
        part1 = crlf(text)[:-2]
        data, _ = self.fetch_literal(c, b"BODY.PEEK[1]")
        self.assertEqual(data, part1)
        data, _ = self.fetch_literal(c, b"BODY.PEEK[1]<99.12345>")
        self.assertEqual(data, part1[99:99 + 12345])
        data, _ = self.fetch_literal(c, b"BODY.PEEK[2.MIME]")
        self.assertEqual(data, b"Content-Type: application/octet-stream"
                               b"\r\nContent-Transfer-Encoding: base64"
                               b"\r\n\r\n")
        # BINARY: the attachment decoded, in literal8 for its NULs.
        data, lit8 = self.fetch_literal(c, b"BINARY.PEEK[2]")
        self.assertEqual(data, blob)
        self.assertTrue(lit8)
        data, _ = self.fetch_literal(c, b"BINARY.PEEK[2]<100000.70001>")
        self.assertEqual(data, blob[100000:170001])
        part3 = crlf(qp_plain)[:-2]
        untagged, _ = c.command(b"FETCH 1 (BINARY.SIZE[2] BINARY.SIZE[3])")
        self.assertIn(b"BINARY.SIZE[2] %d BINARY.SIZE[3] %d"
                      % (len(blob), len(part3)), untagged[0][0])
        data, lit8 = self.fetch_literal(c, b"BINARY.PEEK[3]")
        self.assertEqual(data, part3)
        self.assertFalse(lit8)
        data, _ = self.fetch_literal(c, b"BINARY.PEEK[3]<77777.3>")
        self.assertEqual(data, part3[77777:77780])
        # Several literals in one response, then \Seen set by BODY[].
        untagged, _ = c.command(
            b"FETCH 1 (BODY[]<0.10> RFC822.SIZE BODY.PEEK[1]<5.5>)")
        self.assertEqual(untagged[0][1], wire[:10])
        self.assertEqual(untagged[0][3], part1[5:10])
        self.assertIn(b"RFC822.SIZE %d" % len(wire), untagged[0][2])
        untagged, _ = c.command(b"FETCH 1 RFC822")
        self.assertEqual(untagged[0][1], wire)
        self.logout(c)

    def test_unread_output_stays_bounded(self):
        msg = b"Subject: big\n\n" + b"".join(
            b"%07d %s\n" % (i, b"y" * 60) for i in range(60000))
        md = self.new_maildir()
        self.fill_maildir(md, [msg, msg, msg])
        c = self.session(md)
        c.command(b"SELECT INBOX")
        c.command(b"NOOP")
        before = proc_status(c.proc.pid, "RssAnon")
        # A client that asks for 12 MB and reads nothing: imapd fills
        # the socket and waits, holding no more than its output buffer
        # (it built each response whole before: twice the message).
        c.sock.sendall(b"f1 FETCH 1:3 BODY.PEEK[]\r\n")
        harness.wait_until(lambda: unread(c.sock) > 100 * KIB, TIMEOUT,
                           "imapd to fill the socket")
        stalled = 0
        last = -1
        while stalled < 5:
            now = unread(c.sock)
            stalled = stalled + 1 if now == last else 0
            last = now
            time.sleep(0.05)
        during = proc_status(c.proc.pid, "RssAnon")
        self.assertLess(during - before, 2 * MIB,
                        "imapd grew from %d to %d bytes" % (before, during))
        total = 0
        while True:
            resp = c.response()
            if resp[0].startswith(b"f1 "):
                self.assertTrue(resp[0].startswith(b"f1 OK"), resp)
                break
            self.assertEqual(resp[1], crlf(msg))
            total += 1
        self.assertEqual(total, 3)
        self.logout(c)

    def test_literals_of_one_command_capped(self):
        conf = self.make_conf(message_size_limit="4096")
        md = self.new_maildir()
        c = self.session(md, conf)
        # Each literal is within message_size_limit; together they may
        # be no more than one message and a command line (64k).
        chunk = b"z" * 4000
        sent = 0
        c.sock.sendall(b"a1 SEARCH")
        while True:
            c.sock.sendall(b" TEXT {4000}\r\n")
            line = c.line()
            if not line.startswith(b"+"):
                break
            c.sock.sendall(chunk)
            sent += 1
        self.assertRegex(line, rb"^a1 NO \[TOOBIG\]")
        self.assertEqual(sent, (4096 + 65536) // 4000)
        c.command(b"NOOP")
        # Non-synchronising ones arrive anyway: the session ends.
        data = b"".join(b" TEXT {4000+}\r\n" + chunk for _ in range(20))
        try:
            c.sock.sendall(b"a2 SEARCH" + data + b"\r\n")
        except OSError:
            pass
        while True:
            line = c.line()
            if line.startswith(b"* BYE"):
                break
        self.assertIn(b"TOOBIG", line)
        c.proc.wait(timeout=TIMEOUT)

    def test_client_controlled_caps(self):
        md = self.new_maildir()
        self.fill_maildir(md, [b"Subject: s%d\n\nbody\n" % i
                               for i in range(3)])
        c = self.session(md)
        c.command(b"SELECT INBOX")
        # SEARCH nesting: NOT chains and parentheses.
        _, line = c.command(b"SEARCH " + b"NOT " * 150 + b"ALL",
                            expect="BAD")
        _, line = c.command(b"SEARCH " + b"(" * 40 + b"ALL" + b")" * 40,
                            expect="BAD")
        self.assertIn(b"nesting", line)
        untagged, _ = c.command(b"SEARCH " + b"NOT " * 51 + b"ALL")
        self.assertEqual(untagged[0][0], b"* SEARCH")
        # Arguments of one command.
        _, line = c.command(b"SEARCH" + b" ALL" * 10001, expect="BAD")
        self.assertIn(b"arguments", line)
        _, line = c.command(b"FETCH 1 (" + b"FLAGS " * 101 + b"UID)",
                            expect="BAD")
        # A long sequence set within the line is fine.
        untagged, _ = c.command(b"FETCH " + b",".join(
            b"%d" % (i % 3 + 1) for i in range(12000)) + b" FLAGS")
        self.assertEqual(len(untagged), 3)
        _, line = c.command(b"FETCH 4 FLAGS", expect="BAD")
        # A line over imap_max_line_length.
        _, line = c.command(b"NOOP " + b"x" * (65 * KIB), expect="BAD")
        # Keywords: 26 per folder (Maildir's a..z), then [LIMIT].
        kws = b" ".join(b"kw%02d" % i for i in range(30))
        _, line = c.command(b"STORE 1 +FLAGS.SILENT (%s)" % kws,
                            expect="NO")
        self.assertIn(b"[LIMIT]", line)
        untagged, _ = c.command(b"FETCH 1 FLAGS")
        self.assertNotIn(b"kw00", untagged[-1][0])
        c.command(b"STORE 1 +FLAGS.SILENT (kw00)")
        # APPEND answers the same, and stores nothing.
        before, _ = c.command(b"STATUS INBOX (MESSAGES)")
        msg = b"Subject: kw\r\n\r\nbody"
        _, line = c.command(b"APPEND INBOX (%s) {%d+}\r\n%s"
                            % (kws, len(msg), msg), expect="NO")
        self.assertIn(b"[LIMIT]", line)
        after, _ = c.command(b"STATUS INBOX (MESSAGES)")
        self.assertEqual(after, before)
        # A LIST pattern longer than any name matches nothing.
        untagged, _ = c.command(b'LIST "" "%s"' % (b"*a" * 2000))
        self.assertEqual(untagged, [])
        untagged, _ = c.command(b'LIST "" "' + b"*" * 2000 + b'x"')
        self.assertEqual(untagged, [])
        # Unknown and malformed commands: BAD, and the session goes on.
        c.command(b"FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.11]<1.0>",
                  expect="BAD")
        c.command(b"FETCH 1 BODY.PEEK[99]<0.10>")
        c.command(b"FETCH 1 BINARY[1]<99999999999999999999.1>",
                  expect="BAD")
        c.command(b"FETCH 1 BODY.PEEK[]<18446744073709551615.5>")
        c.command(b"NOOP")
        self.logout(c)

    def test_large_folder_warm_fetch_is_cache_only(self):
        count = 20000
        md = self.new_maildir()
        self.fill_maildir(md, [
            b"From: sender%d@example.org\nTo: user@example.test\n"
            b"Subject: message %d\nDate: Mon, 6 Jan 2025 10:00:00 +0000\n"
            b"Message-ID: <%d@example.org>\n\nbody %d\n" % (i, i, i, i)
            for i in range(count)])
        cmd = b"UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)"
        c = self.session(md)
        c.command(b"SELECT INBOX")
        untagged, _ = c.command(cmd)
        self.assertEqual(len(untagged), count)
        self.logout(c)
        c = self.session(md)
        c.command(b"SELECT INBOX")
        c.command(b"NOOP")
        pss = proc_pss(c.proc.pid)
        t0 = time.monotonic()
        untagged, _ = c.command(cmd)
        elapsed = time.monotonic() - t0
        self.assertEqual(len(untagged), count)
        self.assertIn(b'"message 19999"', untagged[-1][0])
        log_from = os.path.getsize(self.tern.log_path)
        self.logout(c)
        # The warm FETCH came from the cache: no message file opened.
        line = harness.wait_until(
            lambda: self._logout_line(log_from), TIMEOUT, "logout line")
        self.assertIn("files=0", line)
        print("\nimapd, %d-message folder: PSS idle selected %.0f KiB, "
              "warm UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE) %.3f s"
              % (count, pss / KIB, elapsed))

    def _logout_line(self, offset):
        with open(self.tern.log_path, "rb") as f:
            f.seek(offset)
            for line in f.read().decode(errors="replace").splitlines():
                if "Disconnected: Logged out" in line:
                    return line
        return None
