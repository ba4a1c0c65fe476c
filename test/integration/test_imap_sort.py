# SPDX-License-Identifier: MIT
"""SORT, ESORT and THREAD (RFC 5256, RFC 5957, RFC 5267) of imapd equal to
a real Dovecot 2.3's on the same maildir: a client that caches a sorted or
threaded view must not see it change when an admin moves a mailbox
between the two servers. The corpus has the awkward cases of RFC 5256:
subjects with "Re:", "Fwd:", "[list]" blobs, "(fwd)" trailers, "[fwd: ]"
wrappers and encoded words; missing, duplicate and invalid Message-IDs;
References chains with gaps (dummy parents), loops and self-references,
In-Reply-To alone, conflicting parents; missing, unparsable, pre-1970 and
obsolete-zone dates; equal dates, sizes and arrival times; groups, empty
and commented addresses. Every sort key alone and reversed, every ordered
pair of keys with REVERSE on either, ESORT, UID SORT, both THREAD
algorithms, with and without search keys, are asked of both servers and
the answers compared as text.

imapd runs as spawn starts it (the client on fd 0, PREAUTH); Dovecot's
imap binary with a configuration of this test, PREAUTH on a pipe (never
the system's service); both as the unprivileged owner of the maildir,
tern first, so Dovecot reads the UIDs tern gave in dovecot-uidlist.
"""

import imaplib
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid

import harness
from harness import TernTestCase

MAILDIR_OWNER = "nobody"
IMAPD = os.path.join(harness.DAEMON_DIR, "imapd")
DOVECOT_IMAP = "/usr/lib/dovecot/imap"
TIMEOUT = 30
KEYS = ("ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO",
        "DISPLAYFROM", "DISPLAYTO")
BASE_TIME = 1700000000


def corpus():
    """[(headers, body, mtime)]: the messages in UID order."""
    subjects = [
        "hello world", "Re: hello world", "RE: Re: re: Hello World",
        "Fwd: hello world", "[list] Re: hello world",
        "Re: [list] hello world (fwd)", "[fwd: Re: hello world]",
        "Re[2]: hello world", "Fw: HELLO   world", "hello\tworld (FWD)",
        "=?utf-8?q?Re=3A_hello_world?=", "[list]", "Re: [list]", "",
        None, "  Re:  [x] [y] Fwd: zebra  ", "zebra", "apple pie",
        "=?utf-8?b?5pel5pys?=", "Re: apple pie", "[a][b]", "Fwd:",
        "[fwd: ]", "(fwd)", "aardvark (fwd) (fwd)", "Re : zebra",
        "Re [3]: zebra", "[unterminated zebra", "Reply: zebra",
        "re:apple pie", "Apple Pie",
    ]
    froms = [
        "Alice Adams <alice@example.org>", "bob@example.org",
        "\"Zed, Z.\" <zed@example.net>", "carol@example.org (Carol C)",
        "=?utf-8?q?Dave_D?= <dave@example.org>", None, "",
        "undisclosed-recipients:;", "team: erin@example.org;",
        "<>", "frank", "ALICE@example.org", "Mallory <mallory@x>",
        "\"\" <quiet@example.org>", "Bob Brown <bob@example.com>",
    ]
    tos = [
        "zoe@example.org", "Yann <yann@example.org>", None,
        "xavier@example.org, alice@example.org", "group: ;",
        "=?utf-8?q?Wendy?= <w@example.org>", "vera@example.org (V)",
        "", "ursula@example.org",
    ]
    ccs = [None, "carl@example.org", "Cc Person <cc@example.org>", "",
           "abe@example.org, zed@example.org", "list: a@b, c@d;"]
    dates = [
        "Mon, 06 Jan 2025 10:00:00 +0100", "Mon, 06 Jan 2025 09:00:00 +0000",
        "Mon, 06 Jan 2025 10:00:00 +0100", None, "garbage date",
        "Tue, 7 Jan 25 08:00 EST", "07 Jan 2025 08:00:00 PDT",
        "Wed, 08 Jan 2025 12:00:00 -0000", "Thu, 01 Jan 1960 00:00:00 +0000",
        "Fri, 10 Jan 2025 25:00:00 +0000", "Sat, 11 Jan 2025 11:11:11 Z",
        "Sun, 12 Jan 2025 12:12:12 +0130 (comment)",
        "Mon, 06 Jan 2025 10:00:00 +0100",
        "Mon, 13 Jan 2025 13:13\n\t:13 +0000", "13 Jan 2025 13.13.13 +0000",
    ]
    # (message-id, references, in-reply-to) per message
    threads = [
        ("<a1@t>", None, None),
        ("<a2@t>", "<a1@t>", None),
        ("<a3@t>", "<a1@t> <a2@t>", None),
        ("<a4@t>", None, "<a3@t>"),
        ("<a5@t>", "<a1@t> <gone@t> <a2@t>", None),
        ("<a1@t>", None, None),                   # duplicate id
        (None, "<a2@t>", None),                   # no id
        ("<noat>", "<a4@t>", None),               # invalid id
        ("<b1@t>", "<b2@t>", None),               # loop with the next
        ("<b2@t>", "<b1@t>", None),
        ("<b3@t>", "<b3@t>", None),               # itself
        ("<c2@t>", "<c0@t> <c1@t>", None),        # parents not here
        ("<c3@t>", "<c0@t> <c1@t>", None),
        ("<c4@t>", "<c9@t>", None),
        ("<d1@t>", "<x@t> <d0@t>", None),         # conflicting parents
        ("<d2@t>", "<y@t> <d0@t> <d1@t>", None),
        ("<d0@t>", None, None),                   # parent after children
        ("<e1@t>", None, "garbage <e0@t> <ex@t>"),
        ("<e2@t>", "<not valid>", "<e1@t>"),
        ("< f1 @ t >", None, None),
        ("<f2@t>", "(c) < (c) f1 (c) @ (c) t (c) >", None),
        ("<\"q 1\"@t>", None, None),
        ("<q2@t>", "<\"q 1\"@t>", None),
        ("<g1@t>", "<a3@t> <a5@t>", None),
        ("<g2@t>", "<a5@t>", "<a1@t>"),
        ("<h1@t>", "<h0@t>", None),
        ("<h2@t>", "<h0@t>", None),
        ("<h3@t>", "<h0@t>", None),
    ]
    msgs = []
    n = 52
    for i in range(n):
        hdr = []
        subject = subjects[i % len(subjects)]
        if subject is not None:
            hdr.append("Subject: " + subject)
        for name, values in (("From", froms), ("To", tos), ("Cc", ccs)):
            v = values[(i * 7 + len(name)) % len(values)]
            if v is not None:
                hdr.append("%s: %s" % (name, v))
        date = dates[(i * 7) % len(dates)]
        if date is not None:
            hdr.append("Date: " + date)
        if i < len(threads):
            mid, refs, irt = threads[i]
        else:
            mid, refs, irt = "<m%d@t>" % i, (
                "<m%d@t>" % (i - 3) if i % 4 == 0 else None), None
        if mid is not None:
            hdr.append("Message-ID: " + mid)
        if refs is not None:
            hdr.append("References: " + refs)
        if irt is not None:
            hdr.append("In-Reply-To: " + irt)
        hdr.append("X-Corpus: %d" % i)
        # sizes repeat; arrival times repeat in pairs
        body = "line\n" * (1 + (i * 11) % 9)
        mtime = BASE_TIME + (i // 2) * 60 - (i % 5) * 3600
        msgs.append(("\n".join(hdr) + "\n", body, mtime))
    return msgs


def norm(lines):
    """Untagged answers without the differences IMAP allows (a trailing
    space after "THREAD")."""
    out = []
    for line in lines:
        line = re.sub(rb'\(TAG "[^"]*"\)', b"(TAG)", line)
        out.append(re.sub(rb"\s+", b" ", line).strip())
    return out


class ImapSortTest(TernTestCase):
    class_instance = False

    @classmethod
    def setUpClass(cls):
        if not os.access(DOVECOT_IMAP, os.X_OK):
            raise harness.unittest.SkipTest("Dovecot's imap is not "
                                            "installed")
        harness.skip_unless_root("Dovecot and imapd run as %s on one "
                                 "maildir" % MAILDIR_OWNER)
        super().setUpClass()
        cls.tmp = os.path.realpath(tempfile.mkdtemp(prefix="tern-test-"))
        os.chmod(cls.tmp, 0o755)
        cls.pw = pwd.getpwnam(MAILDIR_OWNER)
        cls.maildir = os.path.join(cls.tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(cls.maildir, sub))
        for i, (hdr, body, mtime) in enumerate(corpus()):
            path = os.path.join(cls.maildir, "cur",
                                "%d.M%dP1.sorttest:2," % (BASE_TIME + i, i))
            with open(path, "w") as f:
                f.write(hdr + "\n" + body)
            os.utime(path, (mtime, mtime))
        cls.conf = os.path.join(cls.tmp, "conf")
        os.mkdir(cls.conf)
        with open(os.path.join(cls.conf, "tern.conf"), "w") as f:
            f.write("maillog_file = %s/imapd.log\n" % cls.tmp)
        harness.dovecot_config(cls.tmp, cls.maildir, cls.pw)
        for root, dirs, files in os.walk(cls.tmp):
            for n in dirs + files:
                os.chown(os.path.join(root, n), cls.pw.pw_uid,
                         cls.pw.pw_gid)
        os.chown(cls.tmp, cls.pw.pw_uid, cls.pw.pw_gid)
        cls.tern_imap = cls.start_tern()
        cls.dovecot_imap = cls.start_dovecot()

    @classmethod
    def tearDownClass(cls):
        for imap in (getattr(cls, "tern_imap", None),
                     getattr(cls, "dovecot_imap", None)):
            if imap is not None:
                try:
                    imap.logout()
                except (imaplib.IMAP4.error, OSError):
                    pass
        proc = getattr(cls, "tern_proc", None)
        if proc is not None:
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        report = ""
        log = os.path.join(getattr(cls, "tmp", ""), "imapd.log")
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                report = f.read()
        if hasattr(cls, "tmp"):
            shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()
        harness.check_sanitizer_output(report, "imapd")

    @classmethod
    def owner_argv(cls):
        return ["setpriv", "--reuid=%d" % cls.pw.pw_uid,
                "--regid=%d" % cls.pw.pw_gid, "--clear-groups", "--"]

    @classmethod
    def start_tern(cls):
        env = {k: os.environ[k] for k in harness.SANITIZER_VARS + ["PATH"]
               if k in os.environ}
        env.update(TERN_SESSION_USER="sorter@example.test",
                   TERN_SESSION_MAILDIR=cls.maildir,
                   TERN_SESSION_CLIENT="127.0.0.1",
                   TERN_SESSION_CLIENT_PORT="40000",
                   TERN_SESSION_LOCAL="127.0.0.1",
                   TERN_SESSION_LOCAL_PORT="143", TERN_SESSION_TLS="0",
                   TERN_SESSION_ID=uuid.uuid4().hex[:8])
        ours, theirs = socket.socketpair()
        with open(os.path.join(cls.tmp, "imapd.log"), "ab") as log:
            cls.tern_proc = subprocess.Popen(
                cls.owner_argv() + [IMAPD, "-c", cls.conf],
                stdin=theirs, stdout=subprocess.DEVNULL, stderr=log,
                env=env, cwd="/")
        theirs.close()
        imap = harness.PairIMAP(ours, TIMEOUT)
        typ, data = imap.select("INBOX")
        assert typ == "OK", data
        return imap

    @classmethod
    def start_dovecot(cls):
        argv = cls.owner_argv() + [
            "env", "-i", "USER=" + cls.pw.pw_name, "HOME=" + cls.tmp,
            DOVECOT_IMAP, "-c", os.path.join(cls.tmp, "dovecot.conf")]
        imap = imaplib.IMAP4_stream(" ".join(shlex.quote(a) for a in argv))
        typ, data = imap.select("INBOX")
        assert typ == "OK", data
        return imap

    # ----- helpers

    @staticmethod
    def ask(imap, command, *args, uid=False):
        """The untagged answers and the tagged status of one command."""
        try:
            if uid:
                typ, data = imap._simple_command("UID", command, *args)
            else:
                typ, data = imap._simple_command(command, *args)
        except imaplib.IMAP4.error as e:
            typ = "BAD" if "BAD" in str(e) else "ERROR %s" % e
        untagged = []
        for name in ("SORT", "THREAD", "ESEARCH"):
            if name in imap.untagged_responses:
                for item in imap.untagged_responses.pop(name):
                    untagged.append(name.encode() + b" " + (
                        item if isinstance(item, bytes) else b""))
        return typ, norm(untagged)

    def compare(self, command, *args, uid=False):
        ours = self.ask(self.tern_imap, command, *args, uid=uid)
        theirs = self.ask(self.dovecot_imap, command, *args, uid=uid)
        text = "%s%s %s" % ("UID " if uid else "", command, " ".join(args))
        if ours != theirs:
            return "%s:\n  tern    %r\n  dovecot %r" % (text, ours, theirs)
        self.assertEqual(ours[0], "OK", text)
        return None

    def run_all(self, commands):
        failures = [f for f in (self.compare(*c[:-1], uid=c[-1])
                                for c in commands) if f is not None]
        if failures:
            self.fail("%d of %d differ:\n%s" % (
                len(failures), len(commands), "\n".join(failures[:30])))

    # ----- tests

    def test_same_messages(self):
        fetch = "1:* (UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (X-CORPUS)])"
        typ1, ours = self.tern_imap.fetch(*fetch.split(" ", 1))
        typ2, theirs = self.dovecot_imap.fetch(*fetch.split(" ", 1))
        self.assertEqual((typ1, typ2), ("OK", "OK"))
        self.assertEqual(len([x for x in ours if isinstance(x, tuple)]), 52)
        self.assertEqual(ours, theirs)

    def test_sort_each_key_and_pair(self):
        commands = []
        for k in KEYS:
            commands.append(("SORT", "(%s)" % k, "UTF-8", "ALL", False))
            commands.append(("SORT", "(REVERSE %s)" % k, "UTF-8", "ALL",
                             False))
        for k1 in KEYS:
            for k2 in KEYS:
                if k1 == k2:
                    continue
                for r1 in ("", "REVERSE "):
                    for r2 in ("", "REVERSE "):
                        commands.append(("SORT", "(%s%s %s%s)" % (
                            r1, k1, r2, k2), "UTF-8", "ALL", False))
        self.run_all(commands)

    def test_sort_uid_search_esort(self):
        self.run_all([
            ("SORT", "(SUBJECT REVERSE DATE)", "UTF-8", "ALL", True),
            ("SORT", "(FROM)", "US-ASCII", "SUBJECT", "hello", False),
            ("SORT", "(DATE)", "UTF-8", "NOT", "FROM", "alice", False),
            ("SORT", "(ARRIVAL)", "UTF-8", "OR", "SMALLER", "200",
             "TO", "example", True),
            ("SORT", "(SIZE DATE)", "UTF-8", "UID", "5:30", False),
            ("SORT", "(subject)", "utf-8", "SUBJECT", "nothing-matches",
             False),
            ("SORT", "RETURN", "(MIN MAX ALL COUNT)", "(FROM SUBJECT)",
             "UTF-8", "ALL", False),
            ("SORT", "RETURN", "(ALL)", "(REVERSE ARRIVAL)", "UTF-8", "ALL",
             True),
            ("SORT", "RETURN", "(COUNT)", "(DATE)", "UTF-8", "SINCE",
             "1-Jan-2000", False),
            ("SORT", "RETURN", "()", "(SIZE)", "UTF-8", "ALL", False),
            ("SORT", "(DISPLAYFROM DISPLAYTO)", "UTF-8", "ALL", True),
        ])

    def test_thread(self):
        commands = []
        for alg in ("REFERENCES", "ORDEREDSUBJECT"):
            for uid in (False, True):
                commands.append(("THREAD", alg, "UTF-8", "ALL", uid))
            commands += [
                ("THREAD", alg, "US-ASCII", "NOT", "SUBJECT", "zebra",
                 False),
                ("THREAD", alg, "UTF-8", "UID", "1:20", True),
                ("THREAD", alg, "UTF-8", "OR", "HEADER", "References", '""',
                 "SUBJECT", "apple", False),
                ("THREAD", alg, "UTF-8", "SUBJECT", "nothing-matches",
                 False),
            ]
        self.run_all(commands)

    def test_errors(self):
        for imap in (self.tern_imap,):
            for args in (("()", "UTF-8", "ALL"), ("(FOO)", "UTF-8", "ALL"),
                         ("(DATE REVERSE)", "UTF-8", "ALL"),
                         ("(DATE)", "UTF-8", "FOO")):
                typ, _ = self.ask(imap, "SORT", *args)
                self.assertEqual(typ, "BAD", args)
            typ, _ = self.ask(imap, "THREAD", "FOO", "UTF-8", "ALL")
            self.assertEqual(typ, "BAD")
            typ, data = imap.sort("(DATE)", "KOI8-R", "ALL")
            self.assertEqual(typ, "NO")
            self.assertIn(b"[BADCHARSET", data[0])
        typ, data = self.tern_imap.capability()
        caps = data[0].split()
        for cap in (b"SORT", b"THREAD=REFERENCES", b"THREAD=ORDEREDSUBJECT",
                    b"ESORT", b"SORT=DISPLAY"):
            self.assertIn(cap, caps)
