# SPDX-License-Identifier: MIT
"""imapd, the IMAP session, started directly as spawn starts it: the
client on fd 0 (one end of a socketpair; the other end is python3's
imaplib), the TERN_SESSION_* environment, and as root the mailbox
owner's uid (vmail, through setpriv). Without TERN_SESSION_TAG imapd
greets with PREAUTH, which imaplib takes as a logged-in session.
Shown: the commands of RFC 3501/9051 and the extensions imapd offers,
APPEND then FETCH BODY[] byte for byte, ENVELOPE and BODYSTRUCTURE of a
multipart message against python3's email package, flags and expunges
seen by a second session, IDLE announcing mail delivered over SMTP,
CONDSTORE/QRESYNC resynchronisation, SEARCH keys, the literal limit."""

import email
import email.policy
import imaplib
import os
import re
import subprocess
import time
import uuid
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import harness
from harness import TernTestCase, make_message, smtp_send

USER = "imapuser@example.test"
SENDER = "sender@example.org"
TIMEOUT = 20
IMAPD = os.path.join(harness.DAEMON_DIR, "imapd")
SIZE_LIMIT = 4096


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def ok(pair):
    typ, data = pair
    if typ != "OK":
        raise AssertionError("%s %r" % (typ, data))
    return data


class ImapdTest(harness.SessionProcess, TernTestCase):

    session_program = IMAPD
    session_user = USER
    session_local_port = "143"

    @classmethod
    def configure(cls, tern):
        tern.add_user(USER, "pw-" + uuid.uuid4().hex)

    def setUp(self):
        super().setUp()
        self.owner = self.session_owner()
        self.conf = self.make_conf(message_size_limit=str(SIZE_LIMIT))

    # ----- helpers

    def start(self, maildir, tag=None, input=None):
        return self.start_session(maildir, tag=tag, input=input)

    def session(self, maildir):
        proc, sock = self.start(maildir)
        imap = harness.PairIMAP(sock, TIMEOUT)
        self.assertEqual(imap.state, "AUTH")
        imap._proc = proc
        return imap

    def logout(self, imap):
        typ, _ = imap.logout()
        self.assertEqual(typ, "BYE")
        self.assertEqual(imap._proc.wait(timeout=TIMEOUT), 0)

    def new_maildir(self):
        md = os.path.join(self.tern.tmp, "md-" + uuid.uuid4().hex[:8],
                          "Maildir")
        os.makedirs(os.path.dirname(md))
        if harness.is_root():
            os.chown(os.path.dirname(md), self.owner.pw_uid,
                     self.owner.pw_gid)
        return md

    def read_line(self, sock, buf=b""):
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed after %r" % buf)
            buf += chunk
        line, rest = buf.split(b"\r\n", 1)
        return line, rest

    def raw_until(self, sock, tag, buf=b""):
        """Raw responses up to and including the tagged line of tag."""
        lines = []
        while True:
            line, buf = self.read_line(sock, buf)
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines, buf

    def append(self, imap, box, msg, flags="", date=None):
        typ, data = imap.append(box, flags, date, msg)
        self.assertEqual(typ, "OK", data)
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
        self.assertIsNotNone(m, data)
        return int(m.group(1)), int(m.group(2))

    # ----- tests

    def test_greeting_and_simple_commands(self):
        md = self.new_maildir()
        proc, sock = self.start(md, tag="a1",
                                input=b"a2 NOOP\r\na3 CAPABILITY\r\n")
        lines, rest = self.raw_until(sock, b"a3")
        self.assertRegex(lines[0], rb"^a1 OK \[CAPABILITY IMAP4rev1 .*"
                                   rb"\] Logged in$")
        self.assertIn(b"a2 OK NOOP completed.", lines)
        self.assertIn(b"IDLE", lines[-2])
        self.assertTrue(lines[-2].startswith(b"* CAPABILITY IMAP4rev1"))
        sock.sendall(b"a4 ID NIL\r\na5 NAMESPACE\r\n"
                     b"a6 ENABLE CONDSTORE UTF8=ACCEPT\r\na7 bogus\r\n"
                     b"a8 LOGIN x y\r\na9 FETCH 1 FLAGS\r\nb1 LOGOUT\r\n")
        lines, rest = self.raw_until(sock, b"b1", rest)
        self.assertIn(b'* ID ("name" "tern")', lines)
        self.assertIn(b'* NAMESPACE (("" ".")) NIL NIL', lines)
        self.assertIn(b"* ENABLED CONDSTORE UTF8=ACCEPT", lines)
        self.assertTrue(any(l.startswith(b"a7 BAD") for l in lines))
        self.assertTrue(any(l.startswith(b"a8 BAD") for l in lines))
        self.assertTrue(any(l.startswith(b"a9 BAD") for l in lines))
        self.assertIn(b"* BYE Logging out", lines)
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)

    def test_folders(self):
        md = self.new_maildir()
        imap = self.session(md)
        # The special-use folders exist and are subscribed from the start.
        listing = ok(imap.list())
        names = {l.rsplit(b" ", 1)[1].strip(b'"'): l for l in listing}
        for name, use in ((b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"),
                          (b"Trash", b"\\Trash"), (b"Junk", b"\\Junk"),
                          (b"Archive", b"\\Archive")):
            self.assertIn(name, names)
            self.assertIn(use, names[name])
        self.assertIn(b"INBOX", names)
        self.assertEqual(ok(imap.list('""', '""')),
                         [b'(\\Noselect) "." ""'])
        ok(imap.create("Work"))
        ok(imap.create("Work.2026"))
        ok(imap.create("Caf&AOk-"))  # "Café" in modified UTF-7
        typ, data = imap.create("Work")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[ALREADYEXISTS]", data[0])
        self.assertEqual(ok(imap.list('""', "Work.%")),
                         [b'(\\HasNoChildren) "." "Work.2026"'])
        work = ok(imap.list('""', "Work"))
        self.assertEqual(work, [b'(\\HasChildren) "." "Work"'])
        self.assertTrue(any(b"Caf&AOk-" in l for l in ok(imap.list())))
        ok(imap.rename("Work", "Job"))
        self.assertEqual(ok(imap.list('""', "Job*")),
                         [b'(\\HasChildren) "." "Job"',
                          b'(\\HasNoChildren) "." "Job.2026"'])
        ok(imap.subscribe("Job"))
        lsub = ok(imap.lsub('""', "*"))
        self.assertTrue(any(l.endswith(b' "Job"') for l in lsub), lsub)
        ok(imap.unsubscribe("Job"))
        self.assertFalse(any(l.endswith(b' "Job"') for l in ok(imap.lsub())))
        # DELETE keeps inferior names (RFC 9051 6.3.5): Job's mail goes,
        # Job stays as Job.2026's \Noselect parent, as in Dovecot.
        ok(imap.delete("Job"))
        self.assertEqual(ok(imap.list('""', "Job*")),
                         [b'(\\Noselect \\HasChildren) "." "Job"',
                          b'(\\HasNoChildren) "." "Job.2026"'])
        typ, data = imap.delete("Job")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data[0])
        ok(imap.select("Job.2026"))
        ok(imap.unselect())
        ok(imap.delete("Job.2026"))
        self.assertEqual(ok(imap.list('""', "Job*")), [None])
        typ, data = imap.delete("INBOX")
        self.assertEqual(typ, "NO")
        typ, data = imap.select("Nonexistent")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data[0])
        # LIST-EXTENDED and LIST-STATUS.
        typ, data = imap._simple_command(
            "LIST", "(SPECIAL-USE)", '""', "*", "RETURN",
            "(SUBSCRIBED STATUS (MESSAGES UIDNEXT))")
        self.assertEqual(typ, "OK")
        lists = imap.untagged_responses.pop("LIST", [])
        statuses = imap.untagged_responses.pop("STATUS", [])
        self.assertEqual(len(lists), 5, lists)
        self.assertTrue(all(b"\\Subscribed" in l for l in lists), lists)
        self.assertEqual(len(statuses), 5, statuses)
        self.assertIn(b"(MESSAGES 0 UIDNEXT 1)", statuses[0])
        status = ok(imap.status("INBOX", "(MESSAGES UNSEEN UIDVALIDITY "
                                         "HIGHESTMODSEQ SIZE)"))
        self.assertRegex(status[0], rb"\"INBOX\" \(MESSAGES 0 UNSEEN 0 "
                                    rb"UIDVALIDITY \d+ HIGHESTMODSEQ \d+ "
                                    rb"SIZE 0\)")
        typ, data = imap.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        self.logout(imap)

    def multipart(self):
        msg = MIMEMultipart()
        msg["From"] = "Alice Example <alice@example.org>"
        msg["To"] = "Bob <bob@example.test>, carol@example.test"
        msg["Subject"] = "=?utf-8?q?Caf=C3=A9?= report"
        msg["Message-ID"] = "<m1@example.org>"
        msg["Date"] = "Mon, 02 Feb 2026 10:00:00 +0100"
        msg.attach(MIMEText("Hello there,\nthe numbers.\n", "plain"))
        msg.attach(MIMEApplication(bytes(range(256)) * 4, "octet-stream",
                                   Name="data.bin"))
        return msg.as_bytes().replace(b"\r\n", b"\n")

    def test_append_fetch(self):
        md = self.new_maildir()
        imap = self.session(md)
        raw = self.multipart()
        date = imaplib.Time2Internaldate(1767225600)
        uidvalidity, uid = self.append(imap, "INBOX", raw,
                                       flags="(\\Flagged $Work)", date=date)
        self.assertEqual(uid, 1)
        data = ok(imap.select("INBOX"))
        self.assertEqual(data, [b"1"])
        self.assertEqual(imap.untagged_responses.get("UIDVALIDITY"),
                         [str(uidvalidity).encode()])
        body = ok(imap.fetch("1", "(BODY.PEEK[] RFC822.SIZE FLAGS "
                                  "INTERNALDATE UID)"))
        meta, content = body[0]
        meta += body[1]
        self.assertEqual(content, crlf(raw))
        self.assertIn(b"RFC822.SIZE %d" % len(crlf(raw)), meta)
        self.assertIn(b"\\Flagged", meta)
        self.assertIn(b"$Work", meta)
        self.assertNotIn(b"\\Seen", meta)
        self.assertIn(b"UID 1", meta)
        self.assertEqual(imaplib.Internaldate2tuple(meta)[:6],
                         time.localtime(1767225600)[:6])
        # Header fields, text, partial, the MIME header of a part.
        hdr = ok(imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject "
                                 "FROM)])"))[0][1]
        self.assertEqual(hdr, b"From: Alice Example <alice@example.org>\r\n"
                              b"Subject: =?utf-8?q?Caf=C3=A9?= report\r\n"
                              b"\r\n")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        text = ok(imap.fetch("1", "(BODY.PEEK[1])"))[0][1]
        self.assertEqual(text, b"Hello there,\r\nthe numbers.\r\n")
        part = ok(imap.fetch("1", "(BODY.PEEK[TEXT]<10.20>)"))[0]
        self.assertIn(b"BODY[TEXT]<10>", part[0])
        self.assertEqual(part[1], crlf(raw.split(b"\n\n", 1)[1])[10:30])
        binary = ok(imap.fetch("1", "(BINARY.PEEK[2] BINARY.SIZE[2])"))
        self.assertEqual(binary[0][1], bytes(range(256)) * 4)
        # ENVELOPE and BODYSTRUCTURE against what email says.
        env = ok(imap.fetch("1", "(ENVELOPE)"))[0]
        self.assertIn(b'"Mon, 02 Feb 2026 10:00:00 +0100"', env)
        self.assertIn(b'"=?utf-8?q?Caf=C3=A9?= report"', env)
        self.assertIn(b'(("Alice Example" NIL "alice" "example.org"))',
                      env)
        self.assertIn(b'(("Bob" NIL "bob" "example.test")'
                      b'(NIL NIL "carol" "example.test"))', env)
        self.assertIn(b'"<m1@example.org>"', env)
        bs = ok(imap.fetch("1", "(BODYSTRUCTURE)"))[0]
        boundary = parsed.get_boundary().encode()
        self.assertIn(b'"mixed" ("boundary" "%s")' % boundary, bs)
        self.assertIn(b'("text" "plain" ("charset" "us-ascii") NIL NIL '
                      b'"7bit" 28 2', bs)
        self.assertRegex(bs, rb'(?i)\("application" "octet-stream" '
                             rb'\("name" "data.bin"\) NIL NIL "base64"')
        # BODY[] sets \Seen and says so.
        fetched = ok(imap.fetch("1", "(BODY[HEADER])"))
        self.assertIn(b"\\Seen", fetched[0][0] + fetched[1])
        flags = ok(imap.fetch("1", "(FLAGS)"))[0]
        self.assertIn(b"\\Seen", flags)
        # Same answers from the cache in a new session.
        self.logout(imap)
        imap = self.session(md)
        ok(imap.select("INBOX", readonly=True))
        self.assertEqual(ok(imap.fetch("1", "(ENVELOPE)"))[0], env)
        self.assertEqual(ok(imap.fetch("1", "(BODYSTRUCTURE)"))[0], bs)
        self.assertEqual(ok(imap.uid("FETCH", str(uid), "(BODY.PEEK[])"))
                         [0][1], crlf(raw))
        # EXAMINE is read-only.
        typ, data = imap.store("1", "+FLAGS", "(\\Deleted)")
        self.assertEqual(typ, "NO")
        self.logout(imap)

    def test_literal_limits(self):
        md = self.new_maildir()
        proc, sock = self.start(md)
        line, rest = self.read_line(sock)
        self.assertTrue(line.startswith(b"* PREAUTH"))
        # A synchronising literal over message_size_limit is refused
        # before its bytes come.
        sock.sendall(b"a1 APPEND INBOX {%d}\r\n" % (SIZE_LIMIT + 1))
        lines, rest = self.raw_until(sock, b"a1", rest)
        self.assertRegex(lines[-1], rb"^a1 NO \[TOOBIG\]")
        sock.sendall(b"a2 APPEND INBOX {4+}\r\nab\r\n\r\n")
        lines, rest = self.raw_until(sock, b"a2", rest)
        self.assertRegex(lines[-1], rb"^a2 OK \[APPENDUID \d+ 1\]")
        sock.sendall(b"a3 SELECT INBOX\r\na4 FETCH 1 BODY.PEEK[]\r\n")
        lines, rest = self.raw_until(sock, b"a4", rest)
        self.assertIn(b"* 1 FETCH (BODY[] {4}", lines)
        sock.sendall(b"a5 LOGOUT\r\n")
        self.raw_until(sock, b"a5", rest)
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)

    def test_store_copy_move_expunge(self):
        md = self.new_maildir()
        imap = self.session(md)
        for i in range(5):
            self.append(imap, "INBOX", b"Subject: m%d\n\nbody %d\n" % (i, i))
        ok(imap.select("INBOX"))
        data = ok(imap.store("1:2", "+FLAGS", "(\\Deleted \\Answered)"))
        self.assertEqual(len(data), 2)
        self.assertIn(b"\\Deleted", data[0])
        ok(imap.store("2", "-FLAGS.SILENT", "(\\Answered)"))
        self.assertIn(b"FLAGS (\\Deleted)", ok(imap.fetch("2", "FLAGS"))[0])
        data = ok(imap.store("3", "FLAGS", "(\\Seen MyKeyword)"))
        self.assertIn(b"MyKeyword", data[0])
        typ, data = imap.copy("3:4", "Archive")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"\[COPYUID \d+ 3:4 1:2\]")
        typ, data = imap.copy("1", "NoSuchBox")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[TRYCREATE]", data[0])
        typ, data = imap.uid("MOVE", "5", "Trash")
        self.assertEqual(typ, "OK")
        self.assertIn(b"5", imap.untagged_responses.pop("EXPUNGE", []))
        # Two EXPUNGEs (1 then 1, or 2 then 1: both say the same).
        data = ok(imap.expunge())
        self.assertEqual(len(data), 2, data)
        self.assertEqual(data[-1], b"1")
        self.assertEqual(ok(imap.search(None, "ALL")), [b"1 2"])
        # UID EXPUNGE removes only the UIDs given.
        ok(imap.store("1:2", "+FLAGS", "(\\Deleted)"))
        ok(imap.uid("EXPUNGE", "4"))
        self.assertEqual(ok(imap.uid("SEARCH", "ALL")), [b"3"])
        status = ok(imap.status("Archive", "(MESSAGES)"))
        self.assertIn(b"MESSAGES 2", status[0])
        ok(imap.select("Archive"))
        fl = ok(imap.fetch("1", "FLAGS"))[0]
        self.assertIn(b"MyKeyword", fl)
        ok(imap.close())
        self.logout(imap)

    def test_search(self):
        md = self.new_maildir()
        imap = self.session(md)
        msgs = [
            b"From: a@example.org\nSubject: hello world\n"
            b"Date: Mon, 02 Feb 2026 10:00:00 +0000\n\nfirst body\n",
            b"From: b@example.org\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
            b"MIME-Version: 1.0\n"
            b"Date: Tue, 03 Feb 2026 10:00:00 +0000\n"
            b"Content-Transfer-Encoding: quoted-printable\n\n"
            b"caf=C3=A9 au lait\n",
            b"From: c@example.org\nSubject: other\nX-Tag: blue\n\n"
            + b"x" * 2000 + b"\n",
        ]
        for m in msgs:
            self.append(imap, "INBOX", m)
        ok(imap.select("INBOX"))
        ok(imap.store("2", "+FLAGS", "(\\Flagged)"))

        def search(*keys, charset=None):
            return ok(imap.search(charset, *keys))[0]

        self.assertEqual(search("ALL"), b"1 2 3")
        self.assertEqual(search("FROM", "b@example"), b"2")
        self.assertEqual(search("SUBJECT", "HELLO"), b"1")
        self.assertEqual(search("BODY", "first"), b"1")
        self.assertEqual(search("TEXT", "blue"), b"3")
        self.assertEqual(search("HEADER", "X-Tag", "blue"), b"3")
        self.assertEqual(search("FLAGGED"), b"2")
        self.assertEqual(search("UNFLAGGED"), b"1 3")
        self.assertEqual(search("LARGER", "1000"), b"3")
        self.assertEqual(search("NOT", "LARGER", "1000"), b"1 2")
        self.assertEqual(search("OR", "FROM", "a@", "FROM", "c@"), b"1 3")
        self.assertEqual(search("SENTON", "3-Feb-2026"), b"2")
        self.assertEqual(search("SENTBEFORE", "3-Feb-2026"), b"1")
        self.assertEqual(search("2:*"), b"2 3")
        self.assertEqual(search("UID", "1,3"), b"1 3")
        self.assertEqual(search("(SEEN", "FLAGGED)"), b"")
        # UTF-8: decoded header words and quoted-printable bodies.
        imap.literal = "café".encode()
        self.assertEqual(search("BODY", charset="UTF-8"), b"2")
        imap.literal = "Grüße".encode()
        self.assertEqual(search("SUBJECT", charset="UTF-8"), b"2")
        typ, data = imap.search("KOI8-R", "ALL")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[BADCHARSET", data[0])
        with self.assertRaises(imaplib.IMAP4.error):
            imap.search(None, "NOSUCHKEY")
        # ESEARCH and SEARCHRES.
        typ, _ = imap._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT "
                                      "ALL)", "ALL")
        self.assertEqual(typ, "OK")
        es = imap.untagged_responses.pop("ESEARCH")[0]
        self.assertRegex(es, rb"\(TAG \"\w+\"\) MIN 1 MAX 3 COUNT 3 ALL "
                             rb"1:3")
        typ, _ = imap._simple_command("UID", "SEARCH", "RETURN", "(SAVE)",
                                      "FROM", "example.org", "NOT",
                                      "FLAGGED")
        self.assertEqual(typ, "OK")
        self.assertEqual(imap.untagged_responses.pop("ESEARCH", None), None)
        self.assertIn(b"UID 3", ok(imap.fetch("$", "(UID)"))[1])
        self.logout(imap)

    def test_two_sessions(self):
        md = self.new_maildir()
        one = self.session(md)
        for i in range(3):
            self.append(one, "INBOX", b"Subject: %d\n\nx\n" % i)
        two = self.session(md)
        ok(one.select("INBOX"))
        ok(two.select("INBOX"))
        ok(one.store("2", "+FLAGS", "(\\Flagged \\Deleted)"))
        ok(two.noop())
        fetches = two.untagged_responses.pop("FETCH", [])
        self.assertTrue(any(b"\\Flagged" in f for f in fetches), fetches)
        ok(one.expunge())
        # No EXPUNGE while answering FETCH (RFC 3501 7.4.1)...
        ok(two.fetch("1:*", "(FLAGS)"))
        self.assertNotIn("EXPUNGE", two.untagged_responses)
        # ... but at the next NOOP.
        ok(two.noop())
        self.assertEqual(two.untagged_responses.pop("EXPUNGE", []), [b"2"])
        self.append(one, "INBOX", b"Subject: new\n\nx\n")
        ok(two.noop())
        self.assertEqual(two.untagged_responses.pop("EXISTS", [])[-1], b"3")
        self.logout(one)
        self.logout(two)

    def test_selected_folder_deleted_by_another_session(self):
        """As Dovecot: the session whose selected folder another deleted
        says BYE at its next command, instead of answering from a
        folder that is gone (it used to say NOOP OK, then FETCH NO
        [UNAVAILABLE] Internal error)."""
        md = self.new_maildir()
        one = self.session(md)
        ok(one.create("Doomed"))
        for i in range(2):
            self.append(one, "Doomed", b"Subject: %d\n\nx\n" % i)
        ok(one.select("Doomed"))
        idler = self.session(md)
        ok(idler.select("Doomed"))
        idler.send(b"i1 IDLE\r\n")
        self.assertEqual(idler.readline(), b"+ idling\r\n")
        two = self.session(md)
        typ, data = two.delete("Doomed")
        self.assertEqual(typ, "OK", data)
        with self.assertRaisesRegex(imaplib.IMAP4.abort,
                                    "Selected mailbox was deleted, have "
                                    "to disconnect."):
            one.noop()
        self.assertEqual(one._proc.wait(timeout=TIMEOUT), 0)
        # In IDLE, the BYE comes by itself, and the session ends.
        self.assertEqual(idler.readline(), b"* BYE Selected mailbox was "
                         b"deleted, have to disconnect.\r\n")
        self.assertEqual(idler._proc.wait(timeout=TIMEOUT), 0)
        # The other session, and the folder list, go on.
        self.assertEqual(ok(two.list('""', "Doomed")), [None])
        self.logout(two)

    def test_condstore_qresync(self):
        md = self.new_maildir()
        imap = self.session(md)
        for i in range(4):
            self.append(imap, "INBOX", b"Subject: %d\n\nx\n" % i)
        ok(imap._simple_command("ENABLE", "QRESYNC"))
        ok(imap.select("INBOX"))
        uidvalidity = int(imap.untagged_responses["UIDVALIDITY"][0])
        hms = int(imap.untagged_responses.pop("HIGHESTMODSEQ")[0])
        # Another session changes a flag and expunges a message.
        other = self.session(md)
        ok(other.select("INBOX"))
        ok(other.store("2", "+FLAGS", "(\\Seen)"))
        ok(other.store("3", "+FLAGS", "(\\Deleted)"))
        ok(other.expunge())
        self.logout(other)
        ok(imap.unselect())
        typ, data = imap._simple_command(
            "SELECT", "INBOX", "(QRESYNC (%d %d 1:4))" % (uidvalidity, hms))
        self.assertEqual(typ, "OK")
        imap.state = "SELECTED"
        self.assertEqual(imap.untagged_responses.pop("VANISHED", []),
                         [b"(EARLIER) 3"])
        fetches = imap.untagged_responses.pop("FETCH", [])
        self.assertTrue(any(b"UID 2 " in f and b"\\Seen" in f
                            for f in fetches), fetches)
        # CHANGEDSINCE, UNCHANGEDSINCE.
        data = ok(imap.fetch("1:*", "(FLAGS) (CHANGEDSINCE %d)" % hms))
        self.assertEqual(len(data), 1, data)
        typ, data = imap._simple_command("UID", "FETCH", "1:*", "(FLAGS)",
                                         "(CHANGEDSINCE 1 VANISHED)")
        self.assertEqual(typ, "OK")
        self.assertEqual(imap.untagged_responses.pop("VANISHED", []),
                         [b"(EARLIER) 3"])
        typ, data = imap._simple_command("STORE", "1", "(UNCHANGEDSINCE 1)",
                                         "+FLAGS", "(\\Answered)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"[MODIFIED 1]", data[0])
        # Expunges are VANISHED now.
        ok(imap.store("1", "+FLAGS", "(\\Deleted)"))
        ok(imap.expunge())
        self.assertEqual(imap.untagged_responses.pop("VANISHED", []), [b"1"])
        self.logout(imap)

    def test_idle_smtp_delivery(self):
        md = self.tern.virtual_maildir(USER)
        imap = self.session(md)
        ok(imap.select("INBOX"))
        count = int(imap.untagged_responses.pop("EXISTS")[0])
        imap.send(b"i1 IDLE\r\n")
        self.assertEqual(imap.readline(), b"+ idling\r\n")
        _, msg = make_message(SENDER, USER, subject="while idling")
        sent = time.monotonic()
        smtp_send(self.tern.smtp_port, SENDER, [USER], msg)
        line = imap.readline()
        # Delivery includes the queue manager and local: bounded, and
        # the EXISTS follows the delivery closely.
        self.assertEqual(line, b"* %d EXISTS\r\n" % (count + 1))
        self.assertLess(time.monotonic() - sent, harness.DELIVERY_TIMEOUT)
        imap.send(b"DONE\r\n")
        while True:
            line = imap.readline()
            if line.startswith(b"i1 "):
                break
        self.assertTrue(line.startswith(b"i1 OK"), line)
        subj = ok(imap.fetch(str(count + 1),
                             "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        self.assertIn(b"while idling", subj[0][1])
        self.logout(imap)

    def test_uids_stable(self):
        md = self.new_maildir()
        imap = self.session(md)
        uids = [self.append(imap, "INBOX", b"Subject: %d\n\nx\n" % i)
                for i in range(3)]
        self.logout(imap)
        imap = self.session(md)
        ok(imap.select("INBOX"))
        self.assertEqual(imap.untagged_responses["UIDVALIDITY"],
                         [str(uids[0][0]).encode()])
        self.assertEqual(ok(imap.uid("SEARCH", "ALL")),
                         [b" ".join(str(u).encode() for _, u in uids)])
        self.logout(imap)

    # ----- the folder cache: SEARCH on header fields without the files

    def _files_at_logout(self, imap):
        """Logs out; the message files the session opened (its logout
        line's files=N)."""
        log_from = os.path.getsize(self.tern.log_path)
        self.logout(imap)

        def line():
            with open(self.tern.log_path, "rb") as f:
                f.seek(log_from)
                for text in f.read().decode(errors="replace").splitlines():
                    m = re.search(r"Disconnected: Logged out .*files=(\d+)",
                                  text)
                    if m:
                        return m.group(1)
            return None
        return int(harness.wait_until(line, TIMEOUT, "imapd's logout line"))

    def _cache_folder(self, count):
        md = self.new_maildir()
        imap = self.session(md)
        for i in range(count):
            subject = ("=?utf-8?q?Gr=C3=BC=C3=9Fe_{}?=".format(i) if i % 5 == 0
                       else "note {}{}".format(i, " needle" if i % 7 == 3
                                               else ""))
            self.append(imap, "INBOX", (
                "From: Person {0} <p{0}@example.org>\n"
                "To: team{1}@example.net\nCc: cc{0}@example.com\n"
                "Subject: {2}\nX-Tag: t{0}\n"
                "Date: Mon, {3:02d} Feb 2026 10:00:00 +0000\n\n"
                "body {0}\n").format(i, i % 3, subject, 1 + i % 20).encode())
        self.logout(imap)
        return md

    def _header_searches(self, imap):
        def search(*keys, charset=None):
            return ok(imap.search(charset, *keys))[0]
        got = [search("SUBJECT", "needle"), search("FROM", "\"person 12 \""),
               search("TO", "TEAM2@"), search("CC", "cc7@"),
               search("HEADER", "Subject", "\"NOTE 1\""),
               search("OR", "BCC", "x", "SENTON", "3-Feb-2026"),
               search("SENTBEFORE", "3-Feb-2026", "NOT", "FROM", "p1")]
        imap.literal = "grüße 1".encode()
        got.append(search("SUBJECT", charset="UTF-8"))
        return got

    def test_search_headers_from_cache(self):
        """The first SEARCH on FROM/TO/CC/BCC/SUBJECT/SENT* reads each
        message's header once and caches the decoded values; a later
        SEARCH, in another session, reads no message file and answers
        the same."""
        md = self._cache_folder(30)
        want = [b"4 18 25", b"13", b"3 6 9 12 15 18 21 24 27 30", b"8",
                b"2 12 13 14 15 17 18 19 20", b"3 23", b"1 21 22", b"11 16"]
        imap = self.session(md)
        ok(imap.select("INBOX"))
        self.assertEqual(self._header_searches(imap), want)
        self.assertEqual(self._files_at_logout(imap), 30)
        imap = self.session(md)
        ok(imap.select("INBOX"))
        self.assertEqual(self._header_searches(imap), want)
        self.assertEqual(self._files_at_logout(imap), 0)
        # Other fields still come from the files.
        imap = self.session(md)
        ok(imap.select("INBOX"))
        self.assertEqual(ok(imap.search(None, "HEADER", "X-Tag", "t17"))[0],
                         b"18")
        self.assertEqual(self._files_at_logout(imap), 30)

    def test_fetch_envelope_fills_search_cache(self):
        """FETCH ENVELOPE reads the headers only once and leaves what
        SEARCH needs in the cache, as Dovecot's cache does: the SEARCH
        after it reads no message file; a second FETCH none either."""
        md = self._cache_folder(12)
        imap = self.session(md)
        ok(imap.select("INBOX"))
        env = ok(imap.fetch("1:*", "(ENVELOPE)"))
        self.assertEqual(len(env), 12)
        self.assertIn(b'"note 3 needle"', b"".join(
            e if isinstance(e, bytes) else e[0] for e in env))
        self.assertEqual(self._files_at_logout(imap), 12)
        imap = self.session(md)
        ok(imap.select("INBOX"))
        self.assertEqual(ok(imap.search(None, "SUBJECT", "needle"))[0],
                         b"4")
        self.assertEqual(ok(imap.fetch("1:*", "(ENVELOPE)")), env)
        self.assertEqual(self._files_at_logout(imap), 0)

    # ----- message files as other programs write them

    @staticmethod
    def _wire(data):
        """What FETCH sends of a stored message: each LF without a CR
        before it made CRLF, nothing else touched."""
        return re.sub(rb"(?<!\r)\n", b"\r\n", data)

    @staticmethod
    def _big(size):
        """A body of size octets whose CRLF conversion has edges at the
        octets imapd converts in pieces of (32 KiB): a CR LF across
        the first edge, a bare LF right after the second, a lone CR at
        the end of the third."""
        line = b"abcdefghijklmnopqrstuvwxyz0123456789 the quick brown fox\n"
        data = bytearray(b"Subject: big\n\n" +
                         line * (size // len(line) + 1))[:size]
        data[32767:32769] = b"\r\n"
        data[65535:65537] = b"x\n"
        data[98303:98305] = b"\ry"
        data[-1:] = b"z"
        return bytes(data)

    def test_fetch_body_line_ends(self):
        """BODY[], RFC822, BINARY[] and their partials of files with bare
        LF, CRLF, mixed line ends, a lone CR and a last line without a
        line end (as Dovecot or a delivery agent may leave them), small,
        larger than a write, and larger than imapd reads whole: the
        octets and RFC822.SIZE agree, whatever the windows cut."""
        md = self.new_maildir()
        imap = self.session(md)
        msgs = [b"Subject: lf\n\nline one\nline two\n",
                b"Subject: crlf\r\n\r\nline one\r\nline two\r\n",
                b"Subject: mixed\r\nX: y\n\nfirst\r\nsecond\nlone\rcr\n\nlast",
                b"\n\n",
                b"",
                self._big(100 * 1024),
                b"Subject: after\n\nsmall\n",
                self._big(1100 * 1024)]
        for i, data in enumerate(msgs):
            path = os.path.join(md, "new", "1767225600.M%dP1.test" % i)
            with open(path, "wb") as f:
                f.write(data)
            if harness.is_root():
                os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
        self.assertEqual(ok(imap.select("INBOX", readonly=True)),
                         [str(len(msgs)).encode()])
        got = ok(imap.fetch("1:*", "(RFC822.SIZE BODY.PEEK[])"))
        bodies = [g for g in got if isinstance(g, tuple)]
        self.assertEqual(len(bodies), len(msgs))
        for data, (meta, body) in zip(msgs, bodies):
            wire = self._wire(data)
            self.assertEqual(body, wire)
            self.assertIn(b"RFC822.SIZE %d " % len(wire), meta)
        for seq, data in enumerate(msgs, 1):
            wire = self._wire(data)
            for item in ("RFC822", "BINARY.PEEK[]"):
                self.assertEqual(ok(imap.fetch(str(seq), "(%s)" % item))
                                 [0][1], wire, (seq, item))
            size = ok(imap.fetch(str(seq), "(BINARY.SIZE[])"))[0]
            self.assertIn(b"BINARY.SIZE[] %d)" % len(wire), size)
            # Windows around every converted line end of the small ones,
            # and across the edges of the pieces of the large ones.
            if len(wire) < 1000:
                cuts = [m.start() for m in re.finditer(b"\r\n", wire)]
            else:
                cuts = [len(self._wire(data[:e])) for e in
                        (32767, 32768, 32769, 65536, 98304, 98305)]
            for at in cuts + [len(wire) - 1, len(wire), len(wire) + 5]:
                for off, n in ((at, 1), (at + 1, 1), (max(at - 1, 0), 3)):
                    for item in ("BODY.PEEK[]", "BINARY.PEEK[]"):
                        part = ok(imap.fetch(str(seq), "(%s<%d.%d>)"
                                             % (item, off, n)))[0]
                        part = part[1] if isinstance(part, tuple) else b""
                        self.assertEqual(part, wire[off:off + n],
                                         (seq, item, off, n))
        # The header and the text apart: the same line ends.
        mixed = self._wire(msgs[2])
        head, text = mixed.split(b"\r\n\r\n", 1)
        self.assertEqual(ok(imap.fetch("3", "(BODY.PEEK[HEADER])"))[0][1],
                         head + b"\r\n\r\n")
        self.assertEqual(ok(imap.fetch("3", "(BODY.PEEK[TEXT])"))[0][1],
                         text)
        big = self._wire(msgs[7])
        at = len(self._wire(msgs[7][:32767])) - len(b"Subject: big\r\n\r\n")
        self.assertEqual(ok(imap.fetch("8", "(BODY.PEEK[TEXT]<%d.4>)"
                                       % (at - 2)))[0][1],
                         big.split(b"\r\n\r\n", 1)[1][at - 2:at + 2])
        self.logout(imap)

    # ----- IMAP4rev2 (RFC 9051 Appendix E: what differs from 3501)

    def converse(self, sock, rest, tag, line):
        """Sends one command line; its responses up to the tagged one."""
        sock.sendall(tag + b" " + line + b"\r\n")
        return self.raw_until(sock, tag, rest)

    def test_imap4rev2(self):
        md = self.new_maildir()
        proc, sock = self.start(md, tag="a0")
        lines, rest = self.raw_until(sock, b"a0")
        self.assertNotIn(b"UNAUTHENTICATE", lines[-1])
        n = [0]

        def cmd(line, status=b"OK"):
            nonlocal rest
            n[0] += 1
            tag = b"r%d" % n[0]
            out, rest = self.converse(sock, rest, tag, line)
            self.assertTrue(out[-1].startswith(tag + b" " + status),
                            (line, out))
            return out

        def untagged(out):
            return [l for l in out if l.startswith(b"* ")]

        self.assertIn(b"* ENABLED IMAP4rev2", cmd(b"ENABLE IMAP4rev2"))
        # APPEND with a literal8 (BINARY is in rev2), two messages.
        body = b"Subject: rev2\r\n\r\nnul\x00here\r\n"
        sock.sendall(b"p1 APPEND INBOX (\\Flagged) ~{%d+}\r\n" % len(body)
                     + body + b"\r\n")
        out, rest = self.raw_until(sock, b"p1", rest)
        self.assertRegex(out[-1], rb"^p1 OK \[APPENDUID \d+ 1\]")
        cmd(b'APPEND INBOX {21+}\r\nSubject: two\r\n\r\nyes\r\n')
        # A delivery: \Recent to an IMAP4rev1 session.
        third = b"Subject: three\r\n\r\nnew\r\n"
        path = os.path.join(md, "new", "1800000000.M1P1.rev2")
        with open(path, "wb") as f:
            f.write(third)
        os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
        # SELECT: no RECENT; FETCH FLAGS: no \Recent, though one is new.
        out = cmd(b"SELECT INBOX")
        self.assertIn(b"* 3 EXISTS", out)
        self.assertFalse(any(b"RECENT" in l for l in out), out)
        self.assertTrue(any(l.startswith(b"* FLAGS (") and
                            b"\\Recent" not in l for l in out), out)
        out = untagged(cmd(b"FETCH 1:* (FLAGS)"))
        self.assertEqual(out, [b"* 1 FETCH (FLAGS (\\Flagged))",
                               b"* 2 FETCH (FLAGS ())",
                               b"* 3 FETCH (FLAGS ())"])
        out = untagged(cmd(b"STORE 2 +FLAGS (\\Seen)"))
        self.assertEqual(out, [b"* 2 FETCH (FLAGS (\\Seen))"])
        # FETCH BINARY[] of the message with a NUL: a literal8.
        sock.sendall(b"f1 FETCH 1 (BINARY.PEEK[])\r\n")
        data = rest
        while b"\r\nf1 " not in data:
            chunk = sock.recv(65536)
            self.assertTrue(chunk, data)
            data += chunk
        data, rest = data.split(b"\r\nf1 ", 1)
        self.assertIn(b"BINARY[] ~{%d}\r\n" % len(body) + body, data)
        self.assertTrue(rest.startswith(b"OK"), rest)
        rest = rest.split(b"\r\n", 1)[1]
        # SEARCH answers in ESEARCH form (RFC 9051 7.3.4); RETURN () is ALL.
        self.assertEqual(untagged(cmd(b"SEARCH ALL")),
                         [b'* ESEARCH (TAG "r%d") ALL 1:3' % n[0]])
        self.assertEqual(untagged(cmd(b"UID SEARCH RETURN () SEEN")),
                         [b'* ESEARCH (TAG "r%d") UID ALL 2' % n[0]])
        self.assertEqual(untagged(cmd(b"SEARCH RETURN (COUNT) DELETED")),
                         [b'* ESEARCH (TAG "r%d") COUNT 0' % n[0]])
        self.assertEqual(untagged(cmd(b"SEARCH DELETED")),
                         [b'* ESEARCH (TAG "r%d")' % n[0]])
        # STATUS SIZE and DELETED.
        cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        out = untagged(cmd(b"STATUS INBOX (MESSAGES DELETED SIZE)"))
        self.assertEqual(out, [b'* STATUS "INBOX" (MESSAGES 3 DELETED 1 '
                               b'SIZE %d)' % (len(body) + 21 + len(third))])
        # UTF-8 folder names, as they are, both ways (RFC 9051 5.1).
        cmd("CREATE \"Caf\u00e9.N\u00e4he\"".encode())
        out = untagged(cmd(b'LIST "" "Caf*"'))
        self.assertEqual(out, [
            "* LIST (\\Noselect \\HasChildren) \".\" \"Caf\u00e9\""
            .encode(),
            "* LIST (\\HasNoChildren) \".\" \"Caf\u00e9.N\u00e4he\""
            .encode()])
        self.assertTrue(os.path.isdir(os.path.join(md, ".Caf&AOk-.N&AOQ-he")))
        # LIST's \Subscribed and \NonExistent; LSUB is still answered.
        cmd("SUBSCRIBE \"Caf\u00e9.N\u00e4he\"".encode())
        cmd(b"SUBSCRIBE Gone")
        cmd(b"DELETE Gone", status=b"NO")
        out = untagged(cmd(b'LIST "" "Caf*" RETURN (SUBSCRIBED)'))
        self.assertIn("* LIST (\\HasNoChildren \\Subscribed) \".\" "
                      "\"Caf\u00e9.N\u00e4he\"".encode(), out)
        out = untagged(cmd(b'LIST (SUBSCRIBED) "" "*"'))
        self.assertIn(b'* LIST (\\NonExistent \\HasNoChildren '
                      b'\\Subscribed) "." "Gone"', out)
        out = untagged(cmd(b'LSUB "" "Caf%"'))
        self.assertEqual(out, ["* LSUB (\\Noselect) \".\" \"Caf\u00e9\""
                               .encode()])
        self.assertIn(b'* NAMESPACE (("" ".")) NIL NIL',
                      cmd(b"NAMESPACE"))
        # SELECT while selected closes the first folder: OK [CLOSED].
        out = cmd("EXAMINE \"Caf\u00e9.N\u00e4he\"".encode())
        self.assertTrue(out[0].startswith(b"* OK [CLOSED]"), out)
        self.assertFalse(any(b"RECENT" in l for l in out), out)
        cmd(b"LOGOUT")
        self.assertEqual(proc.wait(timeout=TIMEOUT), 0)

    def test_idle_timeout_at_least_30_minutes(self):
        # RFC 9051 5.4 (RFC 3501 5.4): an autologout timer MUST be at
        # least 30 minutes. A shorter one is a configuration error, which
        # imapd -t (what tern check runs) reports.
        for value, fails in (("29m", True), ("60", True), ("30m", False),
                             ("1h", False)):
            conf = self.make_conf(imap_idle_timeout=value)
            r = subprocess.run([IMAPD, "-t", "-c", conf],
                               capture_output=True, text=True,
                               timeout=TIMEOUT)
            if fails:
                self.assertNotEqual(r.returncode, 0, value)
                self.assertIn("imap_idle_timeout", r.stderr)
                self.assertIn("out of range", r.stderr)
            else:
                self.assertEqual(r.returncode, 0, (value, r.stderr))
