# SPDX-License-Identifier: MIT
"""The ESMTP command set with real clients and raw sockets: replies and
RFC 3463 codes for sequencing, syntax and limits; PIPELINING (three
transactions in one write); DSN parameters checked and stored in the
queue file; SMTPUTF8 addresses with and without the parameter; CHUNKING
with binary content and BDAT beside DATA in one session; long command
lines up to smtpd_command_line_limit; postmaster."""

import os
import re
import signal
import smtplib
import socket
import subprocess

import harness
from harness import (SmtpConn, TernTestCase, make_message, smtp_send,
                     wait_until)

SENDER = "sender@example.org"
RCPT = "esmtp@example.test"
UTF8_RCPT = "j\u00f6s\u00e9@example.test"
SHORT = 10


def replies(sock, count, timeout=SHORT):
    """count complete replies read from sock: [(code, text)]."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < count:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("closed after %d replies: %r" % (len(out),
                                                                 buf))
        buf += chunk
        while b"\r\n" in buf and len(out) < count:
            line, buf = buf.split(b"\r\n", 1)
            if line[3:4] == b" ":
                out.append((int(line[:3]), line[4:].decode("utf-8",
                                                           "replace")))
    return out


class EsmtpTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        tern.add_user(RCPT, "pw")
        tern.add_user(UTF8_RCPT, "pw")
        tern.conf_set(message_size_limit="100000",
                      smtpd_command_line_limit="65536")

    def session(self):
        c = SmtpConn(self.tern.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.banner[0], 220)
        return c

    def expect(self, c, line, code, enhanced):
        got = c.cmd(line)
        self.assertEqual(got[0], code, "%r -> %r" % (line, got))
        self.assertTrue(got[1].startswith(enhanced), "%r -> %r" % (line, got))
        return got

    def held_qmgr(self):
        """SIGSTOPs qmgr so that committed files stay in incoming/."""
        [qmgr] = self.tern.pids("qmgr")
        os.kill(qmgr, signal.SIGSTOP)
        self.addCleanup(os.kill, qmgr, signal.SIGCONT)
        return qmgr

    def queue_file(self, qid):
        with open(os.path.join(self.tern.queue_dir, "incoming", qid),
                  "rb") as f:
            return harness.queue_file_records(f.read())

    def test_ehlo_lists_what_is_implemented(self):
        c = self.session()
        code, text = c.cmd("EHLO client.example.org")
        self.assertEqual(code, 250)
        for ext in ("PIPELINING", "SIZE 100000", "8BITMIME", "DSN",
                    "SMTPUTF8", "CHUNKING", "BINARYMIME",
                    "ENHANCEDSTATUSCODES"):
            self.assertIn(ext, text.split("\n"))

    def test_error_replies(self):
        c = self.session()
        for line, code, enh in (
                ("MAIL FROM:<>", 503, "5.5.1"),
                ("FOO bar", 500, "5.5.2"),
                ("EXPN list", 502, "5.5.1"),
                ("EHLO", 501, "5.5.4"),
                ("EHLO client.example.org", 250, ""),
                ("RCPT TO:<%s>" % RCPT, 503, "5.5.1"),
                ("DATA", 503, "5.5.1"),
                ("MAIL FROM:<%s> SIZE=200000" % SENDER, 552, "5.3.4"),
                ("MAIL FROM:<%s> SIZE=12x" % SENDER, 501, "5.5.4"),
                ("MAIL FROM:<%s> FOO=1" % SENDER, 555, "5.5.4"),
                ("MAIL FROM:<%s> RET=MOST" % SENDER, 501, "5.5.4"),
                ("MAIL FROM:<%s> ENVID=a+zz" % SENDER, 501, "5.5.4"),
                ("MAIL FROM:<bad address>", 501, "5.1.7"),
                ("MAIL FROM:<%s>" % SENDER, 250, "2.1.0"),
                ("MAIL FROM:<%s>" % SENDER, 503, "5.5.1"),
                ("RCPT TO:<%s> NOTIFY=NEVER,DELAY" % RCPT, 501, "5.5.4"),
                ("RCPT TO:<%s> ORCPT=bad" % RCPT, 501, "5.5.4"),
                ("RCPT TO:<nobody@example.test>", 550, "5.1.1"),
                ("RCPT TO:<x@elsewhere.example>", 554, "5.7.1"),
                ("RCPT TO:<Postmaster@example.test>", 250, "2.1.5"),
                ("RCPT TO:<postmaster>", 250, "2.1.5"),
                ("DATA extra", 501, "5.5.4"),
                ("RSET", 250, "2.0.0"),
                ("VRFY %s" % RCPT, 252, "2.5.2"),
                ("NOOP", 250, "2.0.0"),
                ("HELP", 214, "2.0.0"),
                ("QUIT", 221, "2.0.0")):
            self.expect(c, line, code, enh)

    def test_params_refused_after_helo(self):
        c = self.session()
        self.expect(c, "HELO client.example.org", 250, "")
        self.expect(c, "MAIL FROM:<%s> SIZE=10" % SENDER, 555, "5.5.4")
        self.expect(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        self.expect(c, "RCPT TO:<%s> NOTIFY=NEVER" % RCPT, 555, "5.5.4")

    def test_three_pipelined_transactions_in_one_write(self):
        c = self.session()
        self.expect(c, "EHLO client.example.org", 250, "")
        batch = b""
        for i in range(3):
            body = harness.to_crlf(make_message(SENDER, RCPT,
                                                subject="pipe %d" % i)[1])
            batch += (b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                      % (SENDER.encode(), RCPT.encode()))
            batch += body + b".\r\n"
        batch += b"QUIT\r\n"
        c.send(batch)
        got = replies(c.sock, 13)
        self.assertEqual([g[0] for g in got],
                         [250, 250, 354, 250] * 3 + [221])
        self.tern.wait_for_maildir(self.tern.virtual_maildir(RCPT), 3)

    def test_long_command_lines_up_to_the_limit(self):
        """Lines over 16,382 bytes were always refused although the limit
        allows 65,536."""
        c = self.session()
        self.expect(c, "NOOP " + "x" * 40000, 250, "2.0.0")
        self.expect(c, "NOOP " + "x" * 65531, 250, "2.0.0")
        self.expect(c, "NOOP " + "x" * 65532, 500, "5.5.2")
        self.expect(c, "NOOP", 250, "2.0.0")

    def test_dsn_parameters_stored_in_the_queue_file(self):
        self.held_qmgr()
        with smtplib.SMTP("127.0.0.1", self.tern.smtp_port,
                          timeout=SHORT) as s:
            s.ehlo("client.example.org")
            self.assertTrue(s.has_extn("dsn"))
            self.assertEqual(s.mail(SENDER, ["RET=HDRS",
                                             "ENVID=QQ+2B314159"])[0], 250)
            self.assertEqual(s.rcpt(RCPT, ["NOTIFY=SUCCESS,DELAY",
                                           "ORCPT=rfc822;Esmtp+40Example.TEST"]
                                    )[0], 250)
            self.assertEqual(s.rcpt("postmaster@example.test",
                                    ["NOTIFY=NEVER"])[0], 250)
            code, text = s.data(b"Subject: dsn\r\n\r\nbody\r\n")
            self.assertEqual(code, 250)
        qid = harness.queue_id_of(text.decode())
        recs = self.queue_file(qid)
        attrs = dict(p.decode().split("=", 1) for t, p in recs if t == "A")
        self.assertEqual(attrs["envid"], "QQ+314159")
        self.assertEqual(attrs["ret"], "HDRS")
        rcpts = [p.split(b"\0") for t, p in recs if t == "R"]
        # qfile.h: address NUL orcpt NUL notify mask (1 success, 4 delay,
        # 8 never)
        self.assertEqual(rcpts, [
            [RCPT.encode(), b"rfc822;Esmtp@Example.TEST", b"5"],
            [b"postmaster@example.test", b"", b"8"]])

    def test_smtputf8_addresses(self):
        c = self.session()
        self.expect(c, "EHLO client.example.org", 250, "")
        c.send(("MAIL FROM:<s\u00e9nder@example.org>\r\n").encode())
        code, text = c.reply()
        self.assertEqual((code, text[:5]), (553, "5.6.7"))
        c.send(("MAIL FROM:<s\u00e9nder@example.org> SMTPUTF8\r\n").encode())
        self.assertEqual(c.reply()[0], 250)
        c.send(("RCPT TO:<%s>\r\n" % UTF8_RCPT).encode())
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send("Subject: \u00fcnicode\r\n\r\nh\u00e9\r\n.\r\n".encode())
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        files = self.tern.wait_for_maildir(
            self.tern.virtual_maildir(UTF8_RCPT), 1)
        with open(files[0], "rb") as f:
            data = f.read()
        self.assertIn("Return-Path: <s\u00e9nder@example.org>".encode(), data)
        self.assertIn(b"with UTF8SMTP id", data)
        # Without the parameter a UTF-8 recipient is refused as well.
        self.expect(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        c.send(("RCPT TO:<%s>\r\n" % UTF8_RCPT).encode())
        code, text = c.reply()
        self.assertEqual((code, text[:5]), (553, "5.6.7"))

    def test_bdat_binary_and_bdat_beside_data(self):
        binary = bytes(range(256)) * 4 + b"\r\n.\r\n\x00\n"
        head = b"Subject: binary\r\nContent-Type: application/octet-stream\r\n\r\n"
        chunk1, chunk2 = head + binary[:500], binary[500:]
        c = self.session()
        self.expect(c, "EHLO client.example.org", 250, "")
        c.send(b"MAIL FROM:<%s> BODY=BINARYMIME\r\nRCPT TO:<%s>\r\n"
               % (SENDER.encode(), RCPT.encode()) +
               b"BDAT %d\r\n" % len(chunk1) + chunk1 +
               b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)
        got = replies(c.sock, 4)
        self.assertEqual([g[0] for g in got], [250, 250, 250, 250], got)
        qid1 = harness.queue_id_of(got[3][1])
        # A DATA transaction after it, and an empty BDAT LAST after that.
        self.expect(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        self.expect(c, "RCPT TO:<%s>" % RCPT, 250, "2.1.5")
        self.expect(c, "DATA", 354, "")
        c.send(b"Subject: plain\r\n\r\ntext\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        two = b"Subject: two\r\n\r\nabc\r\n"
        c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nBDAT %d\r\n%s"
               b"BDAT 0 LAST\r\n"
               % (SENDER.encode(), RCPT.encode(), len(two), two))
        got = replies(c.sock, 4)
        self.assertEqual([g[0] for g in got], [250, 250, 250, 250], got)
        files = self.tern.wait_for_maildir(self.tern.virtual_maildir(RCPT),
                                           3)
        stored = [open(f, "rb").read() for f in files]
        first = [m for m in stored if qid1.encode() in m][0]
        # Maildir stores LF line ends: CRLF pairs become LF, the rest is
        # kept byte for byte.
        self.assertTrue(first.endswith(
            (head + binary).replace(b"\r\n", b"\n")), first[-64:])

    def test_bdat_refused_still_reads_its_chunk(self):
        c = self.session()
        self.expect(c, "EHLO client.example.org", 250, "")
        # No MAIL: 503, and the chunk, which looks like commands, is
        # skipped rather than run.
        c.send(b"BDAT 12\r\nQUIT\r\nQUIT\r\nNOOP\r\n")
        self.assertEqual(replies(c.sock, 2), [
            (503, "5.5.1 Error: need MAIL command"), (250, "2.0.0 Ok")])
        self.expect(c, "MAIL FROM:<%s> BODY=8BITMIME" % SENDER, 250, "")
        self.expect(c, "RCPT TO:<%s>" % RCPT, 250, "")
        # DATA after BDAT in one transaction is refused.
        c.send(b"BDAT 4\r\nab\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.expect(c, "DATA", 503, "5.5.1")
        # A chunk size no message can have ends the session.
        c.send(b"BDAT 999999999999 LAST\r\n")
        self.assertEqual(c.reply(), (552, "5.3.4 Message size exceeds fixed limit"))
        self.assertTrue(c.closed_by_peer(SHORT))

    def test_slow_lookup_holds_up_only_its_own_session(self):
        """RCPT lookups run in proxymap: with proxymap stopped (a name
        service that hangs), the waiting session is held, the others of
        the same smtpd process go on."""
        t = self.tern
        pids = t.pids("smtpd", t.service_name_for_port(t.smtp_port))
        [proxymap] = t.pids("proxymap")
        waiting = self.session()
        self.expect(waiting, "EHLO a", 250, "")
        self.expect(waiting, "MAIL FROM:<%s>" % SENDER, 250, "")
        os.kill(proxymap, signal.SIGSTOP)
        try:
            waiting.send(b"RCPT TO:<%s>\r\n" % RCPT.encode())
            waiting.sock.settimeout(1)
            with self.assertRaises(socket.timeout):
                waiting.sock.recv(100)
            # Every other session of every smtpd process still works.
            for _ in range(2 * len(pids)):
                other = self.session()
                self.expect(other, "EHLO b", 250, "")
                self.expect(other, "MAIL FROM:<%s>" % SENDER, 250, "")
                self.expect(other, "RCPT TO:<postmaster@example.test>", 250,
                            "2.1.5")
                self.expect(other, "QUIT", 221, "")
        finally:
            os.kill(proxymap, signal.SIGCONT)
        waiting.sock.settimeout(SHORT)
        self.assertEqual(waiting.reply()[0], 250)

    def test_disconnect_line_counts_commands(self):
        since = self.tern.log_size()
        c = self.session()
        self.expect(c, "EHLO client.example.org", 250, "")
        self.expect(c, "MAIL FROM:<%s>" % SENDER, 250, "")
        self.expect(c, "RCPT TO:<%s>" % RCPT, 250, "")  # a lookup
        self.expect(c, "RCPT TO:<nobody@example.test>", 550, "")
        self.expect(c, "RCPT TO:<postmaster>", 250, "")
        self.expect(c, "DATA", 354, "")
        c.send(b"Subject: counted\r\n\r\nx\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.expect(c, "QUIT", 221, "")
        self.tern.wait_for_log(r"disconnect from 127\.0\.0\.1\[127\.0\.0\.1\] "
                               r"ehlo=1 mail=1 rcpt=2/3 data=1 quit=1$",
                               since=since)

    def test_hard_error_limit(self):
        c = self.session()
        for _ in range(19):
            self.assertEqual(c.cmd("BOGUS")[0], 500)
        # The 20th error is answered, then the session ends.
        self.assertEqual(c.cmd("BOGUS")[0], 500)
        self.assertEqual(c.reply()[0], 421)
        self.assertTrue(c.closed_by_peer(SHORT))

    def test_swaks_pipelining(self):
        out = subprocess.run(
            ["swaks", "--server", "127.0.0.1:%d" % self.tern.smtp_port,
             "--from", SENDER, "--to", RCPT, "--pipeline",
             "--header", "Subject: swaks pipelined"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"<-\s+250 2\.0\.0 Ok: queued as ")
