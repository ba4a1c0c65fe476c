# SPDX-License-Identifier: MIT
"""IMAP end to end, as a user's mail clients see it: a started instance
with the default services.conf (login imap on 143 and 993, spawn, the
imapd session as the mailbox owner), mail delivered over SMTP to virtual
users. Clients: python3 imaplib over 143 (plaintext from the trusted
127.0.0.1, and STARTTLS) and over 993 (implicit TLS), and curl imap://
and imaps://. Shown: a user's whole day (LOGIN, LIST, SELECT, FETCH,
STORE, COPY to Sent, MOVE, EXPUNGE, APPEND, LOGOUT) checked against the
maildir on disk; curl listing folders, fetching by UID, EXAMINE, SEARCH
and uploading; IDLE announcing mail delivered over SMTP during the IDLE
within a second or two of its arrival; two sessions of one user seeing
each other's flag changes and expunges, and no EXPUNGE during FETCH,
STORE or SEARCH; a POP3 session deleting mail under an idling IMAP
session; UIDVALIDITY and UIDs stable across tern stop and tern
start; CONDSTORE/QRESYNC resynchronisation after changes."""

import contextlib
import imaplib
import os
import poplib
import re
import smtplib
import ssl
import subprocess
import threading
import time
import uuid

import harness
from harness import (TernTestCase, ca_bundle, client_context, make_message,
                     smtp_send, wait_until)

SENDER = "sender@example.org"
PASSWORD = "Imap-pw 42"
SHORT = 20
# A logged-out session exits; spawn reaps it.
SESSION_GONE = 15
# From a message's arrival in the maildir to the EXISTS of an idling
# session (inotify: well under a second; sanitizers and a busy machine
# get some slack).
IDLE_LATENCY = 2.5
CURL_TIMEOUT = 30
SPECIAL = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
           "Junk": "\\Junk", "Archive": "\\Archive"}


def new_user(tag):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:6], harness.VIRTUAL_DOMAIN)


def ok(pair):
    typ, data = pair
    if typ != "OK":
        raise AssertionError("%s %r" % (typ, data))
    return data


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def fetch_map(data):
    """{sequence number: the FETCH response's text} of imaplib's FETCH
    data (literals joined in)."""
    out = {}
    last = None
    for item in data:
        text = b"".join(item) if isinstance(item, tuple) else item
        m = re.match(rb"(\d+) \(", text)
        if m:
            last = int(m.group(1))
            out[last] = out.get(last, b"") + text
        elif last is not None:
            # The rest of a response after a literal (imaplib splits it).
            out[last] += text
    return out


def flags_of(text):
    m = re.search(rb"FLAGS \(([^)]*)\)", text)
    assert m, text
    return set(m.group(1).decode().split())


def uid_of(text):
    return int(re.search(rb"UID (\d+)", text).group(1))


def maildir_flags(maildir):
    """{base name: the flag letters after ':2,'} of new/ and cur/."""
    out = {}
    for sub in ("new", "cur"):
        for path in harness.maildir_files(maildir, sub):
            base, _, letters = os.path.basename(path).partition(":2,")
            out[base] = letters
    return out


def cert_host(t):
    """The host name the instance's certificate is for."""
    cert = ssl._ssl._test_decode_cert(t.conf_get("smtpd_tls_cert_file"))
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "DNS":
            return value
    return dict(x[0] for x in cert["subject"])["commonName"]


class ImapHelpers:
    """Logins, delivery and sessions, shared with test_imap_clients."""

    def add_user(self, tag="u"):
        user = new_user(tag)
        self.tern.add_user(user, PASSWORD)
        return user

    def deliver(self, user, count=1, subject="imap test", body=b"hello\n"):
        """count messages to user over SMTP (one session); waits until
        they are in the maildir; returns their Message-IDs."""
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

    def connect(self, mode="plain", t=None):
        """An imaplib client of t (default: the class's instance) on 143
        (mode "plain" or "starttls") or on 993 ("ssl"); shut down after
        the test."""
        t = t or self.tern
        if mode == "ssl":
            m = imaplib.IMAP4_SSL("127.0.0.1", t.imaps_port, timeout=SHORT,
                                  ssl_context=client_context(t))
        else:
            m = imaplib.IMAP4("127.0.0.1", t.imap_port, timeout=SHORT)
            if mode == "starttls":
                ok(m.starttls(ssl_context=client_context(t)))

        def close():
            with contextlib.suppress(Exception):
                m.shutdown()
        self.addCleanup(close)
        return m

    def login(self, user, mode="plain", t=None):
        m = self.connect(mode, t)
        typ, data = m.login(user, PASSWORD)
        self.assertEqual(typ, "OK", data)
        return m

    def sessions_of(self, user, t=None):
        t = t or self.tern
        return [p for p in t.pids("imapd")
                if harness.proc_environ(p).get("TERN_SESSION_USER") == user]

    def logout(self, m, user):
        self.assertEqual(m.logout()[0], "BYE")
        wait_until(lambda: not self.sessions_of(user), SESSION_GONE,
                   "the imapd session of %s to exit" % user)

    def curl(self, *args, user=None, input=None, check=True):
        argv = ["curl", "-sS", "--max-time", str(CURL_TIMEOUT)]
        if user is not None:
            argv += ["-u", "%s:%s" % (user, PASSWORD)]
        res = subprocess.run(argv + list(args), capture_output=True,
                             timeout=CURL_TIMEOUT + 10, input=input,
                             stdin=None if input is not None
                             else subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError("curl %s: exit %d: %s"
                                 % (" ".join(args), res.returncode,
                                    res.stderr.decode("utf-8", "replace")))
        return res


class ImapTest(ImapHelpers, TernTestCase):
    """One instance for the class; each test its own users."""

    instance_options = {"mail_access": True}

    def setUp(self):
        super().setUp()
        port = self.tern.imap_port

        def greets():
            with contextlib.suppress(OSError, imaplib.IMAP4.abort):
                m = imaplib.IMAP4("127.0.0.1", port, timeout=5)
                m.shutdown()
                return True
            return False
        wait_until(greets, SHORT, "an IMAP greeting on port %d" % port,
                   interval=0.1)

    # ----- a user's day with imaplib

    def users_day(self, mode):
        t = self.tern
        user = self.add_user(mode[:2])
        maildir = t.virtual_maildir(user)
        self.deliver(user, 3, subject="day")
        m = self.login(user, mode)
        self.assertIsInstance(m.sock, ssl.SSLSocket if mode != "plain"
                              else type(m.sock))
        caps = ok(m.capability())[0].decode().split()
        for cap in ("IMAP4rev1", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE",
                    "QRESYNC", "SPECIAL-USE", "NAMESPACE", "UNSELECT"):
            self.assertIn(cap, caps)

        # LIST: INBOX and the special-use folders the first login made.
        listed = {}
        for line in ok(m.list()):
            mm = re.match(rb'\(([^)]*)\) "\." "?([^"]*)"?$', line)
            self.assertIsNotNone(mm, line)
            listed[mm.group(2).decode()] = set(mm.group(1).decode().split())
        self.assertEqual(set(listed), {"INBOX"} | set(SPECIAL))
        for name, use in SPECIAL.items():
            self.assertIn(use, listed[name])

        # SELECT, FETCH: what the maildir holds, byte for byte (CRLF).
        self.assertEqual(ok(m.select("INBOX")), [b"3"])
        uidvalidity = int(m.untagged_responses["UIDVALIDITY"][0])
        stored = harness.read_maildir(maildir)
        data = fetch_map(ok(m.fetch("1:*", "(UID FLAGS RFC822.SIZE "
                                    "BODY.PEEK[])")))
        self.assertEqual(sorted(data), [1, 2, 3])
        for seq in (1, 2, 3):
            self.assertEqual(uid_of(data[seq]), seq)
            self.assertEqual(flags_of(data[seq]) - {"\\Recent"}, set())
        bodies = [item[1] for item in m.fetch("1:*", "(BODY.PEEK[])")[1]
                  if isinstance(item, tuple)]
        self.assertEqual(sorted(bodies), sorted(crlf(x) for x in stored))
        size = int(re.search(rb"RFC822.SIZE (\d+)", data[1]).group(1))
        self.assertEqual(size, len(bodies[0]))
        env = fetch_map(ok(m.fetch("2", "(ENVELOPE)")))[2]
        self.assertIn(b'"day 1"', env)
        # BODY[TEXT] (not PEEK) sets \Seen.
        text = ok(m.fetch("1", "(BODY[TEXT])"))
        self.assertEqual(text[0][1], b"hello\r\n")
        self.assertIn("\\Seen", flags_of(ok(m.fetch("1", "(FLAGS)"))[0]))

        # STORE, COPY to Sent, MOVE to Archive, EXPUNGE.
        stored = fetch_map(ok(m.store("2", "+FLAGS", "(\\Flagged $Work)")))
        self.assertTrue({"\\Flagged", "$Work"} <= flags_of(stored[2]))
        typ, data = m.copy("1", "Sent")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"\[COPYUID %d 1 1\]"
                         % int(self._status(m, "Sent", "UIDVALIDITY")))
        typ, data = m.uid("MOVE", "3", "Archive")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(m.untagged_responses.pop("EXPUNGE", None), [b"3"])
        ok(m.store("1", "+FLAGS", "(\\Deleted)"))
        self.assertEqual(ok(m.expunge()), [b"1"])
        # What is left: the flagged message, now number 1, UID 2.
        left = fetch_map(ok(m.fetch("1:*", "(UID FLAGS)")))
        self.assertEqual(list(left), [1])
        self.assertEqual(uid_of(left[1]), 2)
        self.assertTrue({"\\Flagged", "$Work"} <= flags_of(left[1]))

        # APPEND a draft with a flag and a date.
        date = imaplib.Time2Internaldate(1700000000)
        draft = crlf(b"From: %s\nSubject: draft\n\nnot yet\n"
                     % user.encode())
        typ, data = m.append("Drafts", "(\\Draft)", date, draft)
        self.assertEqual(typ, "OK", data)
        self.assertRegex(data[0], rb"\[APPENDUID \d+ 1\]")
        self.assertEqual(self._status(m, "Drafts", "MESSAGES"), "1")
        self.assertEqual(self._status(m, "Sent", "MESSAGES"), "1")
        self.assertEqual(self._status(m, "Archive", "MESSAGES"), "1")
        ok(m.select("Drafts", readonly=True))
        d = fetch_map(ok(m.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")))
        self.assertIn(b"\\Draft", d[1])
        self.assertIn(b'INTERNALDATE "%s"' % date.strip('"').encode(), d[1])
        self.assertTrue(d[1].endswith(draft + b")"), d[1])
        ok(m.close())

        # On disk, as a Maildir++ store says it (and Dovecot would read).
        self.assertEqual(len(maildir_flags(maildir)), 1)
        # $Work is the first keyword: letter a, named in dovecot-keywords.
        self.assertEqual(list(maildir_flags(maildir).values()), ["Fa"])
        with open(os.path.join(maildir, "dovecot-keywords"), "rb") as f:
            self.assertEqual(f.read(), b"0 $Work\n")
        self.assertEqual(list(maildir_flags(os.path.join(
            maildir, ".Sent")).values()), ["S"])
        self.assertEqual(list(maildir_flags(os.path.join(
            maildir, ".Drafts")).values()), ["D"])
        self.assertEqual(len(maildir_flags(os.path.join(
            maildir, ".Archive"))), 1)
        self.logout(m, user)
        # A new session: the same UIDVALIDITY and what was left.
        m = self.login(user, mode)
        ok(m.select("INBOX"))
        self.assertEqual(int(m.untagged_responses["UIDVALIDITY"][0]),
                         uidvalidity)
        self.assertEqual(ok(m.uid("SEARCH", "ALL")), [b"2"])
        self.logout(m, user)

    def _status(self, m, box, item):
        data = ok(m.status(box, "(%s)" % item))
        return re.search(rb"%s (\d+)" % item.encode(),
                         data[0]).group(1).decode()

    def test_imaplib_day_plaintext_143(self):
        self.users_day("plain")

    def test_imaplib_day_starttls_143(self):
        self.users_day("starttls")

    def test_imaplib_day_imaps_993(self):
        self.users_day("ssl")

    # ----- curl

    def test_curl_imap_and_imaps(self):
        t = self.tern
        user = self.add_user("curl")
        self.deliver(user, 2, subject="curl")
        self.deliver(user, 1, subject="findme")
        cacert = ca_bundle(t)
        # The certificates name the host (myhostname): curl checks that.
        host = cert_host(t)
        for scheme, port, extra in (
                ("imap", t.imap_port, []),
                ("imaps", t.imaps_port, ["--cacert", cacert]),
                # STARTTLS, required.
                ("imap", t.imap_port, ["--ssl-reqd", "--cacert", cacert])):
            extra = extra + ["--resolve", "%s:%d:127.0.0.1" % (host, port)]
            base = "%s://%s:%d" % (scheme, host, port)
            # The folder list.
            out = self.curl(*extra, base + "/", user=user).stdout
            names = re.findall(rb'^\* LIST \([^)]*\) "\." "?([^"\r]*)"?\r$',
                               out, re.M)
            self.assertEqual(set(names), {b"INBOX", b"Sent", b"Drafts",
                                          b"Trash", b"Junk", b"Archive"},
                             out)
            # One message by UID: the stored bytes.
            out = self.curl(*extra, base + "/INBOX;UID=3", user=user).stdout
            self.assertIn(b"Subject: findme 0\r\n", out)
            self.assertTrue(out.endswith(b"\r\n\r\nhello\r\n"), out[-60:])
        # The rest once, over IMAPS (base and extra of the loop's last
        # round are STARTTLS: set them again).
        extra = ["--cacert", cacert, "--resolve", "%s:%d:127.0.0.1"
                 % (host, t.imaps_port)]
        base = "imaps://%s:%d" % (host, t.imaps_port)
        out = self.curl(*extra, base + "/INBOX;UID=2;SECTION=HEADER",
                        user=user).stdout
        self.assertIn(b"Subject: curl 1\r\n", out)
        self.assertNotIn(b"hello", out)
        # EXAMINE and SEARCH as custom requests.
        out = self.curl(*extra, base + "/", "-X", "EXAMINE INBOX",
                        user=user).stdout
        self.assertRegex(out, rb"\* 3 EXISTS\r\n")
        self.assertRegex(out, rb"\* OK \[UIDVALIDITY \d+\]")
        # Read-only: no flag may be changed.
        self.assertIn(b"* OK [PERMANENTFLAGS ()]", out)
        out = self.curl(*extra, base + "/INBOX", "-X",
                        "SEARCH SUBJECT findme", user=user).stdout
        self.assertEqual(out, b"* SEARCH 3\r\n")
        # curl's own search URL (UID SEARCH).
        out = self.curl(*extra, base + "/INBOX?SUBJECT%20curl",
                        user=user).stdout
        self.assertEqual(out, b"* SEARCH 1 2\r\n")
        # Uploads (APPEND), on each transport.
        draft = os.path.join(t.tmp, "curl-draft.eml")
        with open(draft, "wb") as f:
            f.write(crlf(b"From: %s\nSubject: uploaded\n\nby curl\n"
                         % user.encode()))
        for url, extra in (("imap://127.0.0.1:%d/Drafts" % t.imap_port, []),
                           ("imaps://%s:%d/Drafts" % (host, t.imaps_port),
                            ["--cacert", cacert, "--resolve", "%s:%d:127.0.0.1"
                             % (host, t.imaps_port)])):
            self.curl(*extra, "-T", draft, url, user=user)
        m = self.login(user)
        ok(m.select("Drafts", readonly=True))
        bodies = [item[1] for item in ok(m.fetch("1:*", "(BODY.PEEK[])"))
                  if isinstance(item, tuple)]
        with open(draft, "rb") as f:
            self.assertEqual(bodies, [f.read()] * 2)
        # A large message both ways: up with APPEND, down by UID.
        big = os.path.join(t.tmp, "curl-big.eml")
        lines = b"".join(b"%06d %s\r\n" % (i, uuid.uuid4().hex.encode() * 2)
                         for i in range(15000))
        with open(big, "wb") as f:
            f.write(b"From: %s\r\nSubject: big\r\n\r\n" % user.encode()
                    + lines)
        url = "imaps://%s:%d/Archive" % (host, t.imaps_port)
        tls = ["--cacert", cacert, "--resolve", "%s:%d:127.0.0.1"
               % (host, t.imaps_port)]
        self.curl(*tls, "-T", big, url, user=user)
        out = self.curl(*tls, url + ";UID=1", user=user).stdout
        with open(big, "rb") as f:
            self.assertTrue(out == f.read(), "%d bytes back" % len(out))
        # A wrong password: curl fails with "login denied" (67).
        res = self.curl("imap://127.0.0.1:%d/" % t.imap_port, "-u",
                        "%s:wrong" % user, check=False)
        self.assertEqual(res.returncode, 67, res.stderr)
        self.logout(m, user)

    # ----- IDLE

    def test_idle_sees_smtp_delivery(self):
        t = self.tern
        user = self.add_user("idle")
        maildir = t.virtual_maildir(user)
        self.deliver(user, 1, subject="before")
        m = self.login(user, "ssl")
        self.assertEqual(ok(m.select("INBOX")), [b"1"])
        m.send(b"i1 IDLE\r\n")
        self.assertTrue(m.readline().startswith(b"+ "))
        known = set(maildir_flags(maildir))
        _, msg = make_message(SENDER, user, subject="while idling")
        smtp_send(t.smtp_port, SENDER, [user], msg)
        m.sock.settimeout(harness.DELIVERY_TIMEOUT)
        line = m.readline()
        seen = time.time()
        self.assertEqual(line, b"* 2 EXISTS\r\n")
        # When the message landed in the maildir (its inode changed last
        # when delivery renamed it into new/, or imapd into cur/).
        new = [p for sub in ("new", "cur")
               for p in harness.maildir_files(maildir, sub)
               if os.path.basename(p).split(":2,")[0] not in known]
        self.assertEqual(len(new), 1, new)
        landed = os.stat(new[0]).st_ctime
        self.assertLess(seen - landed, IDLE_LATENCY)
        # A flag change by another session reaches the idler too.
        other = self.login(user)
        ok(other.select("INBOX"))
        ok(other.store("1", "+FLAGS", "(\\Flagged)"))
        # (After "* 2 RECENT", which IMAP4rev1 sessions get.)
        for _ in range(5):
            line = m.readline()
            if b"FETCH" in line:
                break
        self.assertRegex(line, rb"^\* 1 FETCH \(.*FLAGS \([^)]*\\Flagged")
        # And its expunge, at once (IDLE may hear of it).
        ok(other.store("1", "+FLAGS", "(\\Deleted)"))
        ok(other.expunge())
        line = m.readline()
        while line.startswith(b"* 1 FETCH "):
            line = m.readline()
        self.assertEqual(line, b"* 1 EXPUNGE\r\n")
        m.send(b"DONE\r\n")
        m.sock.settimeout(SHORT)
        while True:
            line = m.readline()
            if line.startswith(b"i1 "):
                break
        self.assertTrue(line.startswith(b"i1 OK"), line)
        data = ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        self.assertEqual(data[0][1], b"Subject: while idling\r\n\r\n")
        other.logout()
        self.logout(m, user)

    # ----- two sessions

    def test_two_sessions_see_each_other(self):
        user = self.add_user("two")
        self.deliver(user, 4, subject="both")
        a = self.login(user)
        b = self.login(user, "ssl")
        ok(a.select("INBOX"))
        ok(b.select("INBOX"))
        # A's flag change: B's next command (NOOP) reports it.
        ok(a.store("1", "+FLAGS", "(\\Flagged)"))
        ok(b.noop())
        fetches = b.untagged_responses.pop("FETCH", [])
        self.assertTrue(any(f.startswith(b"1 (") and b"\\Flagged" in f
                            for f in fetches), fetches)
        # A expunges message 2: B hears of it only when it may.
        ok(a.store("2", "+FLAGS", "(\\Deleted)"))
        self.assertEqual(ok(a.expunge()), [b"2"])
        b.untagged_responses.clear()
        data = fetch_map(ok(b.fetch("1:4", "(UID)")))
        self.assertNotIn("EXPUNGE", b.untagged_responses)
        self.assertEqual(sorted(data), [1, 2, 3, 4])
        data = fetch_map(ok(b.store("3", "+FLAGS", "(\\Answered)")))
        self.assertNotIn("EXPUNGE", b.untagged_responses)
        self.assertEqual(uid_of(ok(b.fetch("3", "(UID)"))[0]), 3)
        self.assertEqual(ok(b.search(None, "ANSWERED")), [b"3"])
        self.assertNotIn("EXPUNGE", b.untagged_responses)
        # NOOP: now.
        ok(b.noop())
        self.assertEqual(b.untagged_responses.pop("EXPUNGE", []), [b"2"])
        # B's flag change (on the old number 3, now 2) reaches A.
        ok(a.noop())
        fetches = a.untagged_responses.pop("FETCH", [])
        self.assertTrue(any(f.startswith(b"2 (") and b"\\Answered" in f
                            for f in fetches), fetches)
        # B expunges with UID EXPUNGE; A's UID FETCH may hear it at once.
        ok(b.uid("STORE", "4", "+FLAGS", "(\\Deleted)"))
        ok(b.uid("EXPUNGE", "4"))
        ok(a.noop())
        self.assertEqual(a.untagged_responses.pop("EXPUNGE", []), [b"3"])
        self.assertEqual(ok(a.uid("SEARCH", "ALL")), [b"1 3"])
        self.assertEqual(ok(b.uid("SEARCH", "ALL")), [b"1 3"])
        a.logout()
        self.logout(b, user)

    def test_pop3_session_beside_imap(self):
        t = self.tern
        user = self.add_user("pop")
        self.deliver(user, 3, subject="shared")
        m = self.login(user)
        ok(m.select("INBOX"))
        ok(m.store("3", "+FLAGS", "(\\Flagged)"))
        m.send(b"i1 IDLE\r\n")
        self.assertTrue(m.readline().startswith(b"+ "))
        # POP3 deletes the first message: the idling session hears of it
        # when pop3d's UPDATE state removes the file.
        p = poplib.POP3("127.0.0.1", t.pop3_port, timeout=SHORT)
        self.addCleanup(p.close)
        p.user(user)
        self.assertTrue(p.pass_(PASSWORD).startswith(b"+OK"))
        self.assertEqual(p.stat()[0], 3)
        self.assertIn(b"Subject: shared 0", b"\n".join(p.retr(1)[1]))
        p.dele(1)
        p.quit()
        m.sock.settimeout(SHORT)
        self.assertEqual(m.readline(), b"* 1 EXPUNGE\r\n")
        m.send(b"DONE\r\n")
        while not m.readline().startswith(b"i1 OK"):
            pass
        # What POP3 read (and moved to cur/) keeps its UID and flags.
        data = fetch_map(ok(m.fetch("1:*", "(UID FLAGS)")))
        self.assertEqual([uid_of(x) for x in data.values()], [2, 3])
        self.assertIn("\\Flagged", flags_of(data[2]))
        self.logout(m, user)

    # ----- restart

    def test_uids_stable_across_restart(self):
        t = self.tern
        user = self.add_user("stable")
        self.deliver(user, 4, subject="stable")
        m = self.login(user)
        ok(m.select("INBOX"))
        ok(m.store("2", "+FLAGS", "(\\Deleted)"))
        ok(m.expunge())
        ok(m.uid("MOVE", "3", "Archive"))
        ok(m.store("1", "+FLAGS", "(\\Seen $Kept)"))
        before = {}
        for box in ("INBOX", "Archive"):
            ok(m.select(box, readonly=True))
            before[box] = (m.untagged_responses["UIDVALIDITY"][0],
                           fetch_map(ok(m.fetch("1:*", "(UID FLAGS)"))))
        self.logout(m, user)
        t.stop()
        t.start()
        wait_until(lambda: harness.port_free(t.imap_port) is False,
                   SHORT, "IMAP listening again")
        m = wait_until(lambda: self._try_login(user), SHORT,
                       "a login after the restart")
        for box in ("INBOX", "Archive"):
            ok(m.select(box, readonly=True))
            self.assertEqual(m.untagged_responses["UIDVALIDITY"][0],
                             before[box][0])
            now = fetch_map(ok(m.fetch("1:*", "(UID FLAGS)")))
            self.assertEqual(
                {s: (uid_of(x), flags_of(x) - {"\\Recent"})
                 for s, x in now.items()},
                {s: (uid_of(x), flags_of(x) - {"\\Recent"})
                 for s, x in before[box][1].items()}, box)
        # New mail after the restart: the next UID, never a reused one.
        self.deliver(user, 1, subject="after")
        ok(m.select("INBOX"))
        self.assertEqual(ok(m.uid("SEARCH", "ALL")), [b"1 4 5"])
        self.logout(m, user)

    def _try_login(self, user):
        try:
            return self.login(user)
        except (OSError, imaplib.IMAP4.abort):
            return None

    # ----- CONDSTORE / QRESYNC

    def test_qresync_resync_after_changes(self):
        user = self.add_user("qr")
        self.deliver(user, 5, subject="qr")
        m = self.login(user, "ssl")
        ok(m._simple_command("ENABLE", "QRESYNC"))
        self.assertEqual(m.untagged_responses.pop("ENABLED", None),
                         [b"QRESYNC"])
        ok(m.select("INBOX"))
        uidvalidity = int(m.untagged_responses["UIDVALIDITY"][0])
        modseq = int(m.untagged_responses["HIGHESTMODSEQ"][0])
        self.logout(m, user)
        # While the phone is away: flags change, two messages go, one
        # comes.
        other = self.login(user)
        ok(other.select("INBOX"))
        ok(other.store("2", "+FLAGS", "(\\Seen)"))
        ok(other.store("4,5", "+FLAGS", "(\\Deleted)"))
        ok(other.expunge())
        self.logout(other, user)
        self.deliver(user, 1, subject="new")
        # One round trip resynchronises.
        m = self.login(user, "ssl")
        ok(m._simple_command("ENABLE", "QRESYNC"))
        typ, data = m._simple_command(
            "SELECT", "INBOX", "(QRESYNC (%d %d))" % (uidvalidity, modseq))
        self.assertEqual(typ, "OK", data)
        m.state = "SELECTED"
        self.assertEqual(m.untagged_responses.pop("VANISHED", []),
                         [b"(EARLIER) 4:5"])
        fetches = {uid_of(f): f for f in m.untagged_responses.pop("FETCH",
                                                                   [])}
        self.assertEqual(sorted(fetches), [2, 6])
        self.assertIn("\\Seen", flags_of(fetches[2]))
        new_modseq = int(m.untagged_responses["HIGHESTMODSEQ"][0])
        self.assertGreater(new_modseq, modseq)
        for f in fetches.values():
            ms = int(re.search(rb"MODSEQ \((\d+)\)", f).group(1))
            self.assertTrue(modseq < ms <= new_modseq, f)
        # Nothing changed since: an empty resync (with the UIDs the
        # client has: the store keeps no modseq of expunges, so UIDs it
        # says it knows and that are gone would be named again, which
        # RFC 7162 3.2.5.1 allows).
        ok(m.unselect())
        typ, _ = m._simple_command(
            "SELECT", "INBOX", "(QRESYNC (%d %d 1:3,6))"
            % (uidvalidity, new_modseq))
        self.assertEqual(typ, "OK")
        m.state = "SELECTED"
        self.assertNotIn("VANISHED", m.untagged_responses)
        self.assertNotIn("FETCH", m.untagged_responses)
        # CONDSTORE's CHANGEDSINCE from the first modseq: the same two.
        data = ok(m.uid("FETCH", "1:*", "(FLAGS) (CHANGEDSINCE %d)"
                        % modseq))
        self.assertEqual(sorted(uid_of(x) for x in data), [2, 6])
        self.logout(m, user)
