# SPDX-License-Identifier: MIT
"""smtpd's encrypted front door with real clients (python3 smtplib and
ssl, swaks, curl): STARTTLS on 25 and 587 and implicit TLS on 465 with
the certificate tern init made, the session starting over after the
handshake, plaintext pipelined behind STARTTLS thrown away, TLS recorded
in Received:, sessions resumed by another smtpd process; AUTH through the
auth service: only inside TLS, required on 587, the same delay for a
wrong password and an unknown user, an authenticated sender that must be
the login, Message-ID/Date added on submission; and smtpd running
chrooted."""

import email
import os
import re
import smtplib
import socket
import subprocess
import time

import harness
from harness import (SmtpConn, TernTestCase, ca_bundle, client_context,
                     make_message, smtp_send, wait_until)

USER = "alice@example.test"
PASSWORD = "Alice-pw-42"
OTHER = "bob@example.test"
SENDER = "sender@example.org"
SHORT = 15
FAIL_DELAY = 1


def tls_ports(t):
    return (t.port_base + 465, t.port_base + 587)


class TlsTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        tern.add_user(USER, PASSWORD)
        tern.add_user(OTHER, "Bob-pw-42")
        tern.conf_set(auth_failure_delay="%ds" % FAIL_DELAY)

    def smtp(self, port):
        s = smtplib.SMTP("127.0.0.1", port, timeout=SHORT)
        self.addCleanup(s.close)
        return s

    def test_starttls_then_ehlo_again(self):
        t = self.tern
        s = self.smtp(t.smtp_port)
        code, text = s.ehlo("client.example.org")
        self.assertEqual(code, 250)
        self.assertIn("starttls", s.esmtp_features)
        self.assertNotIn("auth", s.esmtp_features)  # not before TLS
        self.assertEqual(s.starttls(context=client_context(t))[0], 220)
        # The session starts over: MAIL needs a new EHLO.
        code, _ = s.docmd("MAIL FROM:<%s>" % SENDER)
        self.assertEqual(code, 503)
        s.ehlo("client.example.org")
        self.assertNotIn("starttls", s.esmtp_features)
        self.assertIn("auth", s.esmtp_features)
        self.assertEqual(s.esmtp_features["auth"].split(), ["PLAIN",
                                                            "LOGIN"])
        s.sendmail(SENDER, [USER], b"Subject: over tls\r\n\r\nsecret\r\n")
        files = t.wait_for_maildir(t.virtual_maildir(USER), 1)
        with open(files[-1], "rb") as f:
            data = f.read()
        self.assertRegex(data, rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+ "
                               rb"\(\d+/\d+ bits\)\)\n\tby .* with ESMTPS id")
        t.wait_for_log(r"TLS connection established from 127\.0\.0\.1")

    def test_plaintext_pipelined_after_starttls_is_discarded(self):
        """CVE-2011-0411: commands sent in plaintext behind STARTTLS must
        never run as if they came inside TLS."""
        t = self.tern
        raw = socket.create_connection(("127.0.0.1", t.smtp_port),
                                       timeout=SHORT)
        self.addCleanup(raw.close)
        f = raw.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220 "))
        raw.sendall(b"EHLO client.example.org\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        self.assertTrue(f.readline().startswith(b"220 2.0.0"))
        tls = client_context(t).wrap_socket(raw)
        tf = tls.makefile("rb")
        tls.sendall(b"EHLO client.example.org\r\n")
        while not tf.readline().startswith(b"250 "):
            pass
        # Had the MAIL run, this would be 250; no transaction exists.
        tls.sendall(b"RCPT TO:<%s>\r\n" % USER.encode())
        self.assertTrue(tf.readline().startswith(b"503 5.5.1"))
        tls.sendall(b"QUIT\r\n")
        self.assertTrue(tf.readline().startswith(b"221"))
        t.wait_for_log(r"discarding \d+ bytes of plaintext sent after "
                       r"STARTTLS")

    def test_submission_requires_tls_then_auth(self):
        t = self.tern
        s = self.smtp(t.port_base + 587)
        s.ehlo("client.example.org")
        for cmd in ("AUTH PLAIN", "MAIL FROM:<%s>" % USER):
            code, text = s.docmd(cmd)
            self.assertEqual((code, text[:5]), (530, b"5.7.0"), cmd)
        s.starttls(context=client_context(t))
        s.ehlo("client.example.org")
        code, text = s.docmd("MAIL FROM:<%s>" % USER)
        self.assertEqual((code, text[:5]), (530, b"5.7.0"))
        self.assertEqual(s.login(USER, PASSWORD)[0], 235)
        msg = b"From: <%s>\r\nTo: <x@elsewhere.example>\r\nSubject: sub\r\n" \
              b"\r\nhello\r\n" % USER.encode()
        # An authenticated client may relay; the message waits for the
        # outbound transport, and a local copy arrives now.
        s.sendmail(USER, ["x@elsewhere.example", OTHER], msg)
        files = t.wait_for_maildir(t.virtual_maildir(OTHER), 1)
        with open(files[-1], "rb") as f:
            stored = f.read()
        self.assertIn(b"(Authenticated sender: %s)" % USER.encode(), stored)
        self.assertIn(b"with ESMTPSA id", stored)
        # Submission hygiene: Message-ID and Date were missing.
        parsed = email.message_from_bytes(stored)
        self.assertRegex(parsed["Message-ID"], r"^<\d{14}\.\w+@.+>$")
        self.assertIsNotNone(parsed["Date"])

    def test_wrong_password_and_unknown_user_same_delay(self):
        t = self.tern
        timings = []
        wrong = "Wr0ng-pw-never-logged"
        for i, (user, pw) in enumerate(((USER, wrong),
                                         ("nobody@example.test", wrong))):
            # One client address each: failures grow per address.
            s = smtplib.SMTP("127.0.0.1", t.port_base + 587, timeout=SHORT,
                             source_address=("127.0.0.%d" % (10 + i), 0))
            self.addCleanup(s.close)
            s.ehlo("client.example.org")
            s.starttls(context=client_context(t))
            s.ehlo("client.example.org")
            t0 = time.monotonic()
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                s.login(user, pw)
            timings.append(time.monotonic() - t0)
            self.assertEqual(e.exception.smtp_code, 535)
            self.assertTrue(e.exception.smtp_error.startswith(b"5.7.8"))
        for d in timings:
            self.assertGreaterEqual(d, FAIL_DELAY - 0.1, timings)
        self.assertLess(abs(timings[0] - timings[1]), 0.5, timings)
        self.assertNotIn(wrong, t.log())

    def test_sender_must_be_the_login(self):
        t = self.tern
        s = self.smtp(t.port_base + 587)
        s.ehlo("client.example.org")
        s.starttls(context=client_context(t))
        s.ehlo("client.example.org")
        s.login(USER, PASSWORD)
        code, text = s.docmd("MAIL FROM:<%s>" % OTHER)
        self.assertEqual((code, text[:5]), (553, b"5.7.1"))
        # Another case of the login's own address is the login.
        code, _ = s.docmd("MAIL FROM:<%s>" % USER.upper())
        self.assertEqual(code, 250)

    def test_auth_login_with_swaks(self):
        t = self.tern
        out = subprocess.run(
            ["swaks", "--server", "127.0.0.1:%d" % (t.port_base + 587),
             "--tls", "--auth", "LOGIN", "--auth-user", USER,
             "--auth-password", PASSWORD, "--from", USER, "--to", OTHER,
             "--header", "Subject: swaks auth login"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("235 2.7.0 Authentication successful", out.stdout)

    def test_implicit_tls_with_curl(self):
        t = self.tern
        body = os.path.join(t.tmp, "curl-mail.txt")
        with open(body, "wb") as f:
            f.write(b"From: <%s>\r\nSubject: curl smtps\r\n\r\nvia 465\r\n"
                    % USER.encode())
        out = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "30",
             "--cacert", ca_bundle(t),
             "--resolve", "%s:%d:127.0.0.1" % (t.conf_get("myhostname"),
                                               t.port_base + 465),
             "--url", "smtps://%s:%d" % (t.conf_get("myhostname"),
                                         t.port_base + 465),
             "--user", "%s:%s" % (USER, PASSWORD),
             "--mail-from", USER, "--mail-rcpt", OTHER,
             "--upload-file", body],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        t.wait_for_log(r"sasl_method=PLAIN, sasl_username=%s" %
                       re.escape(USER))

    def test_starttls_with_curl(self):
        t = self.tern
        body = os.path.join(t.tmp, "curl-starttls.txt")
        with open(body, "wb") as f:
            f.write(b"From: <%s>\r\nSubject: curl starttls\r\n\r\nvia 587\r\n"
                    % USER.encode())
        host = t.conf_get("myhostname")
        out = subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "30",
             "--ssl-reqd", "--cacert", ca_bundle(t),
             "--resolve", "%s:%d:127.0.0.1" % (host, t.port_base + 587),
             "--url", "smtp://%s:%d" % (host, t.port_base + 587),
             "--user", "%s:%s" % (USER, PASSWORD),
             "--mail-from", USER, "--mail-rcpt", OTHER,
             "--upload-file", body],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # Other tests deliver to OTHER too: wait for this message itself.
        maildir = t.virtual_maildir(OTHER)

        def arrived():
            return any(b"curl starttls" in open(f, "rb").read()
                       for f in harness.maildir_files(maildir))
        wait_until(arrived, harness.DELIVERY_TIMEOUT,
                   "the curl message in %s" % maildir)

    def test_sessions_resume_across_smtpd_processes(self):
        t = self.tern
        port = t.port_base + 465
        self.assertEqual(len(t.pids("smtpd", t.service_name_for_port(port))),
                         2)
        ctx = client_context(t)
        session, resumed = None, 0
        for _ in range(8):
            raw = socket.create_connection(("127.0.0.1", port), timeout=SHORT)
            tls = ctx.wrap_socket(raw, session=session)
            banner = tls.recv(512)
            self.assertTrue(banner.startswith(b"220 "), banner)
            resumed += tls.session_reused
            tls.sendall(b"QUIT\r\n")
            tls.recv(512)
            session = tls.session
            tls.close()
        # Every connection after the first resumes, whichever of the two
        # processes takes it.
        self.assertEqual(resumed, 7)


class ChrootTest(TernTestCase):
    class_instance = False

    def test_smtpd_chrooted_with_tls_auth_and_lookups(self):
        harness.skip_unless_root("chroot(2)")

        def configure(i):
            i.add_user(USER, PASSWORD)
            for port in (25, 587):
                i.edit_service(i.service_name_for_port(i.port_base + port),
                               4, "y")
        with harness.leak_checks_off():
            t = self.new_instance(configure=configure)
        t.wait_ready()
        for pid in t.pids("smtpd", t.service_name_for_port(t.smtp_port)):
            self.assertEqual(os.readlink("/proc/%d/root" % pid),
                             os.path.realpath(t.queue_dir))
        # Lookups happen in proxymap, outside the chroot: a system user
        # is found (getpwnam inside the chroot would not find it).
        pw = t.create_system_user()
        with SmtpConn(t.smtp_port) as c:
            c.cmd("EHLO x")
            c.cmd("MAIL FROM:<>")
            self.assertEqual(c.cmd("RCPT TO:<nobody@example.test>")[0], 550)
            self.assertEqual(c.cmd("RCPT TO:<%s@localhost>" % pw.pw_name)[0],
                             250)
            self.assertEqual(c.cmd("RCPT TO:<nosuchuser@localhost>")[0], 550)
        s = smtplib.SMTP("127.0.0.1", t.port_base + 587, timeout=SHORT)
        self.addCleanup(s.close)
        s.ehlo("x")
        s.starttls(context=client_context(t))
        s.ehlo("x")
        s.login(USER, PASSWORD)
        s.sendmail(USER, [USER], b"Subject: chrooted\r\n\r\nok\r\n")
        t.wait_for_maildir(t.virtual_maildir(USER), 1)
