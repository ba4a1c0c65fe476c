# SPDX-License-Identifier: MIT
"""smtpd under real clients (raw sockets and python3 smtplib): RFC 5321
replies and command order, MAIL parameter edge cases, the DATA state
machine (the end only at CRLF.CRLF, an end split across reads, commands
pipelined behind the final dot, input during the commit), per-session
bounds (a client that does not read, smtpd_max_clients), timeouts in each
state, SIGTERM during sessions, a stopped qmgr, log sanitization, and
every disconnect path leaving no tmp/ file (and, checked at teardown by
the harness, no leak reported by LeakSanitizer)."""

import contextlib
import ctypes
import os
import signal
import smtplib
import socket
import threading
import time
import unittest

from harness import (SmtpConn, TernTestCase, make_message, read_maildir,
                     to_crlf, wait_until)

SENDER = "sender@example.org"
RCPT = "bob@example.test"
PASSWORD = "bob-Secret-17"

# Bounds of the tests themselves, in seconds.
SHORT = 5
# Pipelined NOOPs sent before reading any reply: several times the
# server's high-water mark of unwritten replies (16 KiB of "250 2.0.0 Ok").
FLOOD_NOOPS = 20000
# Messages sent while qmgr is stopped.
STOPPED_QMGR_MESSAGES = 60


def ehlo(c):
    code, _ = c.cmd("EHLO client.example.org")
    assert code == 250, code


def read_until_closed(sock, timeout=SHORT):
    """Everything the server sends until it closes (bounded)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            break
        except socket.timeout:
            raise AssertionError("server did not close; got %r" % data)
        if not chunk:
            break
        data += chunk
    return data


def reply_codes(data):
    """Codes of the final lines of the replies in data."""
    return [int(l[:3]) for l in data.split(b"\r\n")
            if len(l) >= 4 and l[3:4] == b" "]


class ProtocolTest(TernTestCase):
    """Replies and the state machine of one long-lived instance."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(RCPT, PASSWORD)

    def session(self):
        c = SmtpConn(self.tern.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.banner[0], 220)
        return c

    def check(self, c, line, code, enhanced=None):
        reply = c.cmd(line)
        self.assertEqual(reply[0], code, "%r -> %r" % (line, reply))
        if enhanced is not None:
            self.assertTrue(reply[1].startswith(enhanced),
                            "%r -> %r" % (line, reply))
        return reply

    def test_command_order(self):
        c = self.session()
        for line, code, enh in (
                ("MAIL FROM:<%s>" % SENDER, 503, "5.5.1"),  # before EHLO
                ("RCPT TO:<%s>" % RCPT, 503, "5.5.1"),
                ("DATA", 503, "5.5.1"),
                ("RSET", 250, "2.0.0"),
                ("NOOP", 250, "2.0.0"),
                ("EHLO client.example.org", 250, None),
                ("RCPT TO:<%s>" % RCPT, 503, "5.5.1"),       # before MAIL
                ("DATA", 503, "5.5.1"),
                ("MAIL FROM:<%s>" % SENDER, 250, "2.1.0"),
                ("MAIL FROM:<%s>" % SENDER, 503, "5.5.1"),   # nested
                ("DATA", 503, "5.5.1"),                      # no RCPT yet
                ("RCPT TO:<nobody@example.net>", 554, "5.7.1"),
                ("DATA", 554, "5.5.1"),                      # none valid
                ("RCPT TO:<%s>" % RCPT, 250, "2.1.5"),
                # HELO ends the transaction (RFC 5321 4.1.4)
                ("HELO client.example.org", 250, None),
                ("RCPT TO:<%s>" % RCPT, 503, "5.5.1"),
                ("MAIL FROM:<%s>" % SENDER, 250, "2.1.0"),
                ("RCPT TO:<%s>" % RCPT, 250, "2.1.5"),
                # so does RSET
                ("RSET", 250, "2.0.0"),
                ("DATA", 503, "5.5.1"),
                ("MAIL FROM:<>", 250, "2.1.0"),
                # a failed EHLO leaves the transaction alone
                ("EHLO", 501, "5.5.4"),
                ("RCPT TO:<%s>" % RCPT, 250, "2.1.5"),
                ("EHLO client.example.org", 250, None),
                ("RCPT TO:<%s>" % RCPT, 503, "5.5.1"),
        ):
            self.check(c, line, code, enh)
        self.check(c, "QUIT", 221, "2.0.0")
        self.assertTrue(c.closed_by_peer(SHORT))

    def test_arguments_of_noop_rset_quit_data(self):
        c = self.session()
        ehlo(c)
        self.check(c, "NOOP whatever text", 250, "2.0.0")
        self.check(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        self.check(c, "RSET now", 501, "5.5.4")
        # the refused RSET did not reset
        self.check(c, "RCPT TO:<%s>" % RCPT, 250, "2.1.5")
        self.check(c, "DATA now", 501, "5.5.4")
        self.check(c, "QUIT now", 501, "5.5.4")
        self.check(c, "VRFY", 501, "5.5.4")
        self.check(c, "VRFY bob", 252, "2.5.2")
        self.check(c, "HELP", 214, "2.0.0")
        self.check(c, "RSET", 250, "2.0.0")

    def test_verbs_and_keywords_case_insensitive(self):
        c = self.session()
        self.check(c, "eHlO client.example.org", 250)
        self.check(c, "mail from:<%s> size=100 body=8bitmime" % SENDER,
                   250, "2.1.0")
        self.check(c, "rCpT tO:<%s>" % RCPT, 250, "2.1.5")
        self.check(c, "rset", 250, "2.0.0")
        self.check(c, "Mail From: <%s>" % SENDER, 250, "2.1.0")
        self.check(c, "noop", 250, "2.0.0")
        self.check(c, "quit", 221, "2.0.0")

    def test_mail_parameters(self):
        limit = int(self.tern.conf_get("message_size_limit"))
        c = self.session()
        ehlo(c)
        for params, code, enh in (
                ("SIZE=", 501, "5.5.4"),
                ("SIZE=abc", 501, "5.5.4"),
                ("SIZE=-1", 501, "5.5.4"),
                ("SIZE=+1", 501, "5.5.4"),
                ("SIZE=1x", 501, "5.5.4"),
                # more than 20 digits is not an RFC 1870 size-value
                ("SIZE=123456789012345678901", 501, "5.5.4"),
                ("SIZE=%d" % (limit + 1), 552, "5.3.4"),
                ("SIZE=18446744073709551615", 552, "5.3.4"),
                # 20 digits over 2^64: valid syntax, over any limit
                ("SIZE=18446744073709551616", 552, "5.3.4"),
                ("SIZE=99999999999999999999", 552, "5.3.4"),
                ("SIZE", 555, "5.5.4"),
                ("BODY=BINARYMIME", 250, "2.1.0"),
                ("BODY=9BIT", 501, "5.5.4"),
                ("FOO=BAR", 555, "5.5.4"),
                (" ".join(["BODY=7BIT"] * 17), 501, "5.5.4"),
                ("SIZE=%d" % limit, 250, "2.1.0"),
                ("SIZE=0   BODY=7BIT", 250, "2.1.0"),
        ):
            self.check(c, "MAIL FROM:<%s> %s" % (SENDER, params), code, enh)
            if code == 250:
                self.check(c, "RSET", 250)
        # Parameters belong to EHLO sessions only.
        self.check(c, "HELO client.example.org", 250)
        self.check(c, "MAIL FROM:<%s> SIZE=10" % SENDER, 555, "5.5.4")
        self.check(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")

    def test_rfc5321_path_limits(self):
        c = self.session()
        ehlo(c)
        local64 = "l" * 64
        self.check(c, "MAIL FROM:<%s@example.org>" % local64, 250, "2.1.0")
        self.check(c, "RSET", 250)
        self.check(c, "MAIL FROM:<%s@example.org>" % ("l" * 65), 501, "5.1.7")
        self.check(c, "MAIL FROM:<%s>" % SENDER, 250)
        label = "d" * 63
        domain = ".".join([label] * 4)  # 255 octets
        self.assertEqual(len(domain), 255)
        # path over 256 octets (RFC 5321 4.5.3.1.3)
        self.check(c, "RCPT TO:<%s@%s>" % (local64, domain), 501, "5.1.3")
        self.check(c, "RCPT TO:<%s>" % RCPT, 250, "2.1.5")

    def send_raw(self, c, chunks, delay=0.0):
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for chunk in chunks:
            c.send(chunk)
            if delay:
                time.sleep(delay)

    def start_data(self, c):
        ehlo(c)
        self.check(c, "MAIL FROM:<%s>" % SENDER, 250)
        self.check(c, "RCPT TO:<%s>" % RCPT, 250)
        self.check(c, "DATA", 354)

    def delivered(self, marker):
        maildir = self.tern.virtual_maildir(RCPT)

        def find():
            return [m for m in read_maildir(maildir)
                    if marker.encode() in m]
        return wait_until(find, 30, "message %s delivered" % marker)[0]

    def test_end_split_across_reads(self):
        c = self.session()
        self.start_data(c)
        marker = "split-%d" % time.monotonic_ns()
        body = ("Subject: %s\r\n\r\nline\r\n..stuffed\r\n" % marker).encode()
        # the end marker and a stuffed dot arrive one byte per packet
        self.send_raw(c, [body[:-3], body[-3:-2], body[-2:], b".", b".",
                          b"x\r", b"\n", b"\r", b"\n.", b"\r", b"\n"],
                      delay=0.05)
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        data = self.delivered(marker)
        self.assertTrue(data.endswith(b"line\n.stuffed\n.x\n\n"), data)

    def test_only_crlf_dot_crlf_ends_data(self):
        c = self.session()
        self.start_data(c)
        # none of these is an end; the bare line ends are stored as CRLF
        # (smtpd_forbid_bare_newline = normalize; test_cleanup has the
        # other values)
        self.send_raw(c, [b"a\n.\nb\r.\rc\r\n.\n", b"d\r\n. \r\n",
                          b".x\r\n"])
        c.sock.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            c.sock.recv(100)
        c.sock.settimeout(SHORT)
        self.send_raw(c, [b"\r\n.\r\n"])
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertIn("queued as", text)
        # the session goes on
        self.check(c, "NOOP", 250)
        self.assertEqual(self.tern.queue_files("tmp"), [])

    def test_pipelined_commands_behind_final_dot(self):
        c = self.session()
        self.start_data(c)
        # end, next transaction and QUIT in one packet
        c.send(b"Subject: one\r\n\r\nx\r\n.\r\n"
               b"MAIL FROM:<" + SENDER.encode() + b">\r\n"
               b"RCPT TO:<" + RCPT.encode() + b">\r\nDATA\r\n"
               b"Subject: two\r\n\r\ny\r\n.\r\nQUIT\r\n")
        got = [c.reply() for _ in range(6)]
        self.assertEqual([r[0] for r in got],
                         [250, 250, 250, 354, 250, 221], got)
        self.assertIn("queued as", got[0][1])
        self.assertIn("queued as", got[4][1])
        self.assertNotEqual(got[0][1], got[4][1])
        self.assertTrue(c.closed_by_peer(SHORT))

    def test_input_while_commit_runs(self):
        c = self.session()
        self.start_data(c)
        # the commands trail the end by a moment: they arrive while the
        # queue file is being committed and must wait for its 250
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(b"x\r\n.\r\n")
        c.send(b"NOOP\r\n")
        c.send(b"RSET\r\nQUIT\r\n")
        got = [c.reply() for _ in range(4)]
        self.assertEqual([r[0] for r in got], [250, 250, 250, 221], got)
        self.assertIn("queued as", got[0][1])

    def test_client_that_does_not_read(self):
        c = self.session()
        ehlo(c)
        errors = []

        def flood():
            try:
                c.sock.sendall(b"NOOP\r\n" * FLOOD_NOOPS + b"QUIT\r\n")
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=flood)
        t.start()
        # The server stops reading while its replies wait, so the
        # sender blocks; once we read, every reply comes, in order.
        time.sleep(0.5)
        data = read_until_closed(c.sock, timeout=60)
        t.join(SHORT)
        self.assertFalse(t.is_alive())
        self.assertEqual(errors, [])
        codes = reply_codes(c.buf + data)
        self.assertEqual(len(codes), FLOOD_NOOPS + 1)
        self.assertEqual(set(codes[:-1]), {250})
        self.assertEqual(codes[-1], 221)

    def test_log_sanitized(self):
        since = self.tern.log_size()
        c = self.session()
        c.send(b"EHLO evil\x1b[31m\xff\rname\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.check(c, "MAIL FROM:<%s>" % SENDER, 250)
        self.check(c, "RCPT TO:<someone@example.net>", 554, "5.7.1")
        c.cmd("QUIT")
        m = self.tern.wait_for_log(r"reject: RCPT from .*", since=since)
        line = m.group(0)
        self.assertIn("helo=<evil?[31m??name>", line)
        with open(self.tern.log_path, "rb") as f:
            f.seek(since)
            raw = f.read()
        self.assertNotIn(b"\x1b", raw)
        self.assertNotIn(b"\xff", raw)

    def test_disconnect_in_every_state_leaves_nothing(self):
        before = self.tern.pids("smtpd")
        setups = (
            [],
            [b"EHLO x\r\n"],
            [b"EHLO x\r\n", b"MAIL FROM:<a@example.org>\r\n"],
            [b"EHLO x\r\n", b"MAIL FROM:<a@example.org>\r\n",
             b"RCPT TO:<" + RCPT.encode() + b">\r\n"],
            [b"EHLO x\r\n", b"MAIL FROM:<a@example.org>\r\n",
             b"RCPT TO:<" + RCPT.encode() + b">\r\n", b"DATA\r\n",
             b"Subject: partial\r\n\r\nno end"],
            [b"EHLO x\r\n", b"NOOP " + b"x" * 70000],  # inside a long line
        )
        for lines in setups:
            for reset in (False, True):
                c = self.session()
                for line in lines:
                    c.send(line)
                time.sleep(0.1)
                if reset:  # RST instead of FIN
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
        # a whole message sent and the connection dropped before reading
        # the 250: it is delivered (at least once), nothing is left over
        c = self.session()
        c.send(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<"
               + RCPT.encode() + b">\r\nDATA\r\n")
        time.sleep(0.1)
        c.send(b"Subject: dropped\r\n\r\n.\r\n")
        c.close()
        wait_until(lambda: not self.tern.queue_files("tmp"), SHORT,
                   "tmp/ to empty")
        self.assertEqual(self.tern.pids("smtpd"), before)
        self.tern.wait_smtp(SHORT)


class ThreadsHeld:
    """Stops every thread of pid but the main one (the event loop) with
    ptrace(PTRACE_SEIZE + PTRACE_INTERRUPT), so smtpd's commit threads
    hold their work while its loop runs on; detached on exit."""

    PTRACE_DETACH = 17
    PTRACE_SEIZE = 0x4206
    PTRACE_INTERRUPT = 0x4207
    WALL = 0x40000000

    def __init__(self, pid):
        self.pid = pid
        self.tids = []
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.restype = ctypes.c_long
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long,
                                     ctypes.c_void_p, ctypes.c_void_p]

    def state(self, tid):
        with open("/proc/%d/task/%d/stat" % (self.pid, tid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def __enter__(self):
        try:
            for name in os.listdir("/proc/%d/task" % self.pid):
                tid = int(name)
                if tid == self.pid:
                    continue
                for op in (self.PTRACE_SEIZE, self.PTRACE_INTERRUPT):
                    if self.libc.ptrace(op, tid, None, None) != 0:
                        raise unittest.SkipTest(
                            "ptrace: %s" % os.strerror(ctypes.get_errno()))
                    if op == self.PTRACE_SEIZE:
                        self.tids.append(tid)
            for tid in self.tids:
                wait_until(lambda: self.state(tid) == "t", SHORT,
                           "thread %d to stop" % tid)
        except BaseException:
            self.__exit__()
            raise
        if not self.tids:
            raise unittest.SkipTest("no threads besides the main one")
        return self

    def __exit__(self, *exc):
        for tid in self.tids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(tid, os.WNOHANG | self.WALL)
            self.libc.ptrace(self.PTRACE_DETACH, tid, None, None)
        self.tids = []


class TimeoutTest(TernTestCase):
    """smtpd_timeout in each state of a session (one smtpd process)."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(RCPT, PASSWORD)
        tern.conf_set(smtpd_timeout="1")
        tern.edit_service(tern.service_name_for_port(tern.smtp_port), 5,
                          "1")

    def expect_timeout(self, c):
        t0 = time.monotonic()
        data = read_until_closed(c.sock, timeout=SHORT)
        self.assertIn(b"421 4.4.2 ", data)
        self.assertLess(time.monotonic() - t0, SHORT)

    def test_timeout_in_every_state(self):
        for lines in ([], ["EHLO x"], ["EHLO x", "MAIL FROM:<>"],
                      ["EHLO x", "MAIL FROM:<>", "RCPT TO:<%s>" % RCPT],
                      ["EHLO x", "MAIL FROM:<>", "RCPT TO:<%s>" % RCPT,
                       "DATA"]):
            with SmtpConn(self.tern.smtp_port) as c:
                for line in lines:
                    self.assertLess(c.cmd(line)[0], 400, line)
                if lines and lines[-1] == "DATA":
                    c.send(b"Subject: slow\r\n\r\npartial line")
                self.expect_timeout(c)
        # removed just after the socket is closed
        wait_until(lambda: not self.tern.queue_files("tmp"), SHORT,
                   "tmp/ to empty")
        self.assertEqual(self.tern.queue_files("incoming"), [])

    def test_no_timeout_while_the_commit_runs(self):
        pids = self.tern.pids("smtpd", self.tern.service_name_for_port(
            self.tern.smtp_port))
        self.assertEqual(len(pids), 1, pids)
        with SmtpConn(self.tern.smtp_port) as c:
            for line in ("EHLO x", "MAIL FROM:<%s>" % SENDER,
                         "RCPT TO:<%s>" % RCPT, "DATA"):
                self.assertLess(c.cmd(line)[0], 400, line)
            with ThreadsHeld(pids[0]):
                c.send(b"Subject: slow commit\r\n\r\nbody\r\n.\r\n")
                # twice smtpd_timeout with the commit held: no reply yet
                c.sock.settimeout(2)
                with self.assertRaises(socket.timeout):
                    c.sock.recv(100)
            c.sock.settimeout(SHORT)
            code, text = c.reply()
            self.assertEqual(code, 250, text)
            self.assertEqual(c.cmd("QUIT")[0], 221)
        self.tern.wait_for_maildir(self.tern.virtual_maildir(RCPT), 1)

    def test_timeout_of_a_client_that_does_not_read(self):
        with SmtpConn(self.tern.smtp_port) as c:
            # more replies than the server holds before it stops reading
            c.sock.settimeout(SHORT)
            try:
                c.sock.sendall(b"NOOP\r\n" * FLOOD_NOOPS)
            except OSError:
                pass
            time.sleep(2)  # over smtpd_timeout, nothing read
            self.assertTrue(c.closed_by_peer(SHORT))
        self.tern.wait_smtp(SHORT)


class ShutdownTest(TernTestCase):
    """SIGTERM and a stopped qmgr, each on a private instance."""

    class_instance = False

    def test_sigterm_sends_421_and_removes_tmp_files(self):
        t = self.new_instance(configure=lambda i: i.add_user(RCPT,
                                                             PASSWORD))
        clients = []
        for lines in ([], ["EHLO x"], ["EHLO x", "MAIL FROM:<>"],
                      ["EHLO x", "MAIL FROM:<>", "RCPT TO:<%s>" % RCPT,
                       "DATA"]):
            c = SmtpConn(t.smtp_port)
            self.addCleanup(c.close)
            for line in lines:
                self.assertLess(c.cmd(line)[0], 400, line)
            clients.append(c)
        clients[-1].send(b"Subject: cut short\r\n\r\npartial")
        wait_until(lambda: t.queue_files("tmp"), SHORT, "a tmp/ file")
        t.stop()
        for c in clients:
            data = read_until_closed(c.sock)
            self.assertTrue(data.startswith(b"421 4.3.2 "), data)
        self.assertEqual(t.queue_files("tmp"), [])
        self.assertEqual(t.queue_files("incoming"), [])

    def test_sigterm_during_commit_still_sends_250(self):
        t = self.new_instance(configure=lambda i: i.add_user(RCPT,
                                                             PASSWORD))
        c = SmtpConn(t.smtp_port)
        self.addCleanup(c.close)
        for line in ("EHLO x", "MAIL FROM:<%s>" % SENDER,
                     "RCPT TO:<%s>" % RCPT, "DATA"):
            self.assertLess(c.cmd(line)[0], 400, line)
        c.send(b"Subject: sigterm during commit\r\n\r\nbody")
        time.sleep(0.2)
        # The end of the data is read before SIGTERM (both wait while the
        # process is stopped, in that order): the commit is running when
        # the shutdown starts, and its 250 must not be lost, or the client
        # sends the message again.
        pids = t.pids("smtpd")
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        try:
            c.send(b"\r\n.\r\n")
            time.sleep(0.2)
            for p in pids:
                os.kill(p, signal.SIGTERM)
        finally:
            for p in pids:
                os.kill(p, signal.SIGCONT)
        data = read_until_closed(c.sock)
        self.assertRegex(data, rb"^250 2\.0\.0 Ok: queued as \w+\r\n"
                               rb"421 4\.3\.2 ")
        files = t.wait_for_maildir(t.virtual_maildir(RCPT), 1)
        self.assertEqual(len(files), 1)

    def test_stopped_qmgr_blocks_nothing(self):
        t = self.new_instance(configure=lambda i: i.add_user(RCPT,
                                                             PASSWORD))
        qmgrs = t.pids("qmgr")
        self.assertTrue(qmgrs)
        for p in qmgrs:
            os.kill(p, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            with smtplib.SMTP("127.0.0.1", t.smtp_port, timeout=SHORT) as s:
                s.ehlo("client.example.org")
                for i in range(STOPPED_QMGR_MESSAGES):
                    s.sendmail(SENDER, [RCPT], to_crlf(make_message(
                        SENDER, RCPT, subject="stopped qmgr %d" % i)[1]))
            elapsed = time.monotonic() - t0
        finally:
            for p in qmgrs:
                os.kill(p, signal.SIGCONT)
        self.assertLess(elapsed, 30)
        t.wait_for_maildir(t.virtual_maildir(RCPT), STOPPED_QMGR_MESSAGES,
                           timeout=60)
        t.wait_queue_empty()
