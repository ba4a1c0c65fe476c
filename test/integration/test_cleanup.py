# SPDX-License-Identifier: MIT
"""What cleanup does to a message on its way into the queue, as a client
and a mailbox owner see it: a header section over header_size_limit is
refused with 552 5.3.4 and the session goes on; more Received: headers
than hopcount_limit are refused as a loop (554 5.4.6); a bare CR or LF in
the content is stored as CRLF, refused or kept, as
smtpd_forbid_bare_newline says, in DATA and in BDAT; 8-bit bytes arrive
byte for byte.

Delivery writes maildir files with LF line ends (a CRLF pair becomes LF,
a lone CR stays), so a normalized bare LF and a kept one look alike in
the mailbox; a bare CR shows the difference."""

import uuid

from harness import SmtpConn, TernTestCase, make_message, smtp_send

SENDER = "sender@example.org"
RCPT = "carol@example.test"
PASSWORD = "carol-Secret-42"
HEADER_LIMIT = 8192


class CleanupCase(TernTestCase):
    """A virtual user to deliver to, and raw SMTP sessions."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(RCPT, PASSWORD)

    def setUp(self):
        super().setUp()
        self.maildir = self.tern.virtual_maildir(RCPT)

    def session(self):
        c = SmtpConn(self.tern.smtp_port)
        self.addCleanup(c.close)
        self.assertEqual(c.banner[0], 220, c.banner)
        code, text = c.cmd("EHLO client.example.org")
        self.assertEqual(code, 250, text)
        return c

    def transaction(self, c, content):
        """MAIL, RCPT, DATA and content (CRLF.CRLF is added); returns the
        reply to the content."""
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT)[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(content + b".\r\n")
        return c.reply()

    def bdat(self, c, content):
        """One BDAT LAST transaction; returns the reply to the chunk."""
        c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nBDAT %d LAST\r\n"
               % (SENDER.encode(), RCPT.encode(), len(content)) + content)
        got = [c.reply() for _ in range(3)]
        self.assertEqual([g[0] for g in got[:2]], [250, 250], got)
        return got[2]

    @staticmethod
    def marked(subject, body):
        """(marker, CRLF message with the marker in its Subject:)."""
        marker = "%s-%s" % (subject, uuid.uuid4().hex)
        return marker, (b"Subject: %s\r\n\r\n" % marker.encode()) + body

    def delivered(self, marker, count):
        """Waits for count messages in the maildir; returns the one with
        marker, or None."""
        self.tern.wait_for_maildir(self.maildir, count)
        found = [m for m in self.tern.read_maildir(self.maildir)
                 if marker.encode() in m]
        self.assertLessEqual(len(found), 1)
        return found[0] if found else None

    def count(self):
        return len(self.tern.read_maildir(self.maildir))

    def expect_nothing_more(self, c, before):
        """A message sent after a refused one is the only one delivered:
        the refused one never reaches the mailbox, and nothing is left in
        the queue."""
        marker, good = self.marked("after", b"fine\r\n")
        code, text = self.transaction(c, good)
        self.assertEqual(code, 250, text)
        self.assertIsNotNone(self.delivered(marker, before + 1))
        self.tern.wait_queue_empty()
        self.assertEqual(self.count(), before + 1)
        self.assertEqual(self.tern.queue_files("tmp"), [])


class HeaderLimitTest(CleanupCase):
    @classmethod
    def configure(cls, tern):
        super().configure(tern)
        tern.conf_set(header_size_limit=str(HEADER_LIMIT))

    def test_header_section_over_limit_552_and_session_goes_on(self):
        before = self.count()
        c = self.session()
        filler = b"X-Filler: " + b"f" * 60 + b"\r\n"
        head = filler * (HEADER_LIMIT // len(filler) + 1)
        self.assertGreater(len(head), HEADER_LIMIT)
        # The body after it is read and thrown away, however it looks.
        code, text = self.transaction(
            c, head + b"\r\nRSET\r\nQUIT\r\n" + b"body\r\n" * 100)
        self.assertEqual((code, text),
                         (552, "5.3.4 Error: message header size exceeds "
                               "limit"))
        self.assertEqual(c.cmd("NOOP")[0], 250)
        self.expect_nothing_more(c, before)

    def test_one_long_folded_header_counts_whole(self):
        before = self.count()
        c = self.session()
        line = b" " + b"w" * 70 + b"\r\n"
        head = b"Subject: folded\r\n" + line * (HEADER_LIMIT // len(line))
        self.assertGreater(len(head), HEADER_LIMIT)
        code, text = self.transaction(c, head + b"\r\nbody\r\n")
        self.assertEqual(code, 552, text)
        self.assertTrue(text.startswith("5.3.4"), text)
        self.expect_nothing_more(c, before)

    def test_header_section_within_limit_delivered_intact(self):
        before = self.count()
        c = self.session()
        marker = "within-%s" % uuid.uuid4().hex
        line = b" " + b"w" * 70 + b"\r\n"
        head = (b"Subject: %s\r\n" % marker.encode()) + line * 100
        self.assertLess(len(head), HEADER_LIMIT)
        code, text = self.transaction(c, head + b"\r\nbody\r\n")
        self.assertEqual(code, 250, text)
        got = self.delivered(marker, before + 1)
        self.assertIn(head.replace(b"\r\n", b"\n") + b"\nbody\n", got)


class HopCountTest(CleanupCase):
    """hopcount_limit = 50 (the default)."""

    def received(self, n):
        return b"".join(
            b"Received: from hop%d.example.org by hop%d.example.org;\r\n"
            b"\tMon, 01 Jan 2024 00:00:00 +0000\r\n" % (i, i + 1)
            for i in range(n))

    def test_51_received_554_and_50_delivered(self):
        before = self.count()
        c = self.session()
        code, text = self.transaction(
            c, self.received(51) + b"Subject: loop\r\n\r\nbody\r\n")
        self.assertEqual((code, text), (554, "5.4.6 Error: too many hops"))
        # The same session: 50 pass, with all 50 and tern's own.
        marker, msg = self.marked("fifty", b"body\r\n")
        code, text = self.transaction(c, self.received(50) + msg)
        self.assertEqual(code, 250, text)
        got = self.delivered(marker, before + 1)
        self.assertEqual(got.count(b"\nReceived: "), 51)
        self.tern.wait_queue_empty()
        self.assertEqual(self.count(), before + 1)


class BareNormalizeTest(CleanupCase):
    """smtpd_forbid_bare_newline = normalize (the default)."""

    def test_bare_lf_and_cr_stored_as_crlf(self):
        before = self.count()
        c = self.session()
        since = self.tern.log_size()
        marker, msg = self.marked(
            "normalize", b"one\ntwo\rthree\n.\r\nfour\r\n")
        code, text = self.transaction(c, msg)
        self.assertEqual(code, 250, text)
        got = self.delivered(marker, before + 1)
        # Every line end became CRLF, which delivery stores as LF; the
        # bare LF before the dot did not end the message.
        self.assertTrue(got.endswith(b"\n\none\ntwo\nthree\n.\nfour\n"),
                        got[-80:])
        self.tern.wait_for_log(
            r"bare <LF> received from \S+\[127\.0\.0\.1\], normalized",
            since=since)

    def test_bdat_follows_the_same_policy(self):
        before = self.count()
        c = self.session()
        marker, msg = self.marked("bdat", b"one\ntwo\rthree\r\n")
        code, text = self.bdat(c, msg)
        self.assertEqual(code, 250, text)
        got = self.delivered(marker, before + 1)
        self.assertTrue(got.endswith(b"\n\none\ntwo\nthree\n"), got[-80:])

    def test_8bit_body_and_header_delivered_intact(self):
        before = self.count()
        high = bytes(range(0x80, 0x100))
        mid, msg = make_message(SENDER, RCPT, body=high + b"\n" +
                                high[::-1] + b"\n")
        msg = msg.replace(b"Subject: tern test",
                          b"Subject: 8bit " + high, 1)
        smtp_send(self.tern.smtp_port, SENDER, [RCPT], msg)
        got = self.delivered(mid, before + 1)
        self.assertIn(b"\nSubject: 8bit " + high + b"\n", got)
        self.assertTrue(got.endswith(b"\n\n" + high + b"\n" + high[::-1] +
                                     b"\n"), got[-300:])


class BareRejectTest(CleanupCase):
    @classmethod
    def configure(cls, tern):
        super().configure(tern)
        tern.conf_set(smtpd_forbid_bare_newline="reject")

    def test_bare_lf_550_and_session_goes_on(self):
        before = self.count()
        c = self.session()
        since = self.tern.log_size()
        code, text = self.transaction(
            c, b"Subject: bare\r\n\r\none\ntwo\r\n")
        self.assertEqual((code, text),
                         (550, "5.5.2 Error: bare <CR> or <LF> received"))
        self.tern.wait_for_log(
            r"bare <LF> received from \S+\[127\.0\.0\.1\], rejected",
            since=since)
        self.expect_nothing_more(c, before)

    def test_bare_cr_in_bdat_550(self):
        before = self.count()
        c = self.session()
        code, text = self.bdat(c, b"Subject: bare\r\n\r\none\rtwo\r\n")
        self.assertEqual((code, text),
                         (550, "5.5.2 Error: bare <CR> or <LF> received"))
        self.expect_nothing_more(c, before)


class BareKeepTest(CleanupCase):
    @classmethod
    def configure(cls, tern):
        super().configure(tern)
        tern.conf_set(smtpd_forbid_bare_newline="no")

    def test_bare_cr_and_lf_stored_as_received(self):
        before = self.count()
        c = self.session()
        since = self.tern.log_size()
        marker, msg = self.marked("keep", b"one\ntwo\rthree\r\n")
        code, text = self.transaction(c, msg)
        self.assertEqual(code, 250, text)
        got = self.delivered(marker, before + 1)
        # The lone CR is still there (a CRLF would have become LF).
        self.assertTrue(got.endswith(b"\n\none\ntwo\rthree\n"), got[-80:])
        self.tern.wait_for_log(
            r"bare <LF> received from \S+\[127\.0\.0\.1\], kept",
            since=since)
