# SPDX-License-Identifier: MIT
"""ENVELOPE, BODY and BODYSTRUCTURE of tern's MIME parser (lib/mail/mime.c,
through the mime_tool helper of the build) byte for byte equal to a real
Dovecot 2.3's for the same messages in a maildir: clients cache these
strings, so an admin who moves mailboxes between the two servers must not
make them differ. The corpus has what python3's email package writes
(attachments with RFC 2231 file names, encoded-word subjects, alternatives,
forwarded messages, digests) and hand-written awkward mail (missing or
prefix-sharing boundaries, no Content-Type, groups and empty address
lists, bad quoting, 8-bit headers, NULs, bare CR, LF and CRLF files).
The attachment message is also checked against what the email package
itself says about the message's parts.

Dovecot runs as doveadm with a configuration of this test (never the
system's service), as the unprivileged owner of the maildir.
"""

import email
import email.policy
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import harness
from harness import TernTestCase

TOOL_TIMEOUT = 60
FIELDS = ("imap.envelope", "imap.body", "imap.bodystructure")
MAILDIR_OWNER = "nobody"


def tool_path():
    build = os.environ.get("TERN_BUILD_DIR") or os.path.join(
        harness.SRC_DIR, "_build")
    return os.path.join(build, "lib", "mail", "mime_tool")


def crlf(data):
    return re.sub(rb"\r?\n", b"\r\n", data)


def generated_messages():
    """What python3's email package writes."""
    out = []
    m = EmailMessage()
    m["From"] = "Ann Example <ann@example.org>"
    m["To"] = "bob@example.net, \"Carol, C.\" <carol@example.net>"
    m["Subject"] = "Plain text"
    m["Date"] = "Mon, 06 Jan 2025 10:00:00 +0100"
    m["Message-ID"] = "<plain.1@example.org>"
    m.set_content("Hello\nworld\n")
    out.append(("py-plain", m.as_bytes()))

    m = EmailMessage()
    m["From"] = "J\u00fcrgen M\u00fcller <jm@example.de>"
    m["To"] = "ann@example.org"
    m["Cc"] = "Zo\u00eb <zoe@example.org>"
    m["Subject"] = "R\u00e9sum\u00e9 attached \u2013 please review"
    m["Message-ID"] = "<att.1@example.de>"
    m["In-Reply-To"] = "<plain.1@example.org>"
    m.set_content("See the attachment.\n")
    m.add_attachment(b"%PDF-1.4\n" + bytes(range(256)) * 8,
                     maintype="application", subtype="pdf",
                     filename="R\u00e9sum\u00e9 2025.pdf")
    m.add_attachment("a,b\n1,2\n", subtype="csv", filename="data.csv")
    out.append(("py-attachment", m.as_bytes()))

    m = EmailMessage()
    m["From"] = "ann@example.org"
    m["To"] = "bob@example.net"
    m["Subject"] = "Alternative"
    m.set_content("plain version\n")
    m.add_alternative("<p>html <b>version</b></p>\n", subtype="html")
    out.append(("py-alternative", m.as_bytes()))

    inner = EmailMessage()
    inner["From"] = "Inner <inner@example.com>"
    inner["To"] = "x@example.com"
    inner["Subject"] = "=?iso-8859-1?q?inner_subj=E9ct?="
    inner["Date"] = "Tue, 07 Jan 2025 11:00:00 +0000"
    inner.set_content("inner body\n")
    m = EmailMessage()
    m["From"] = "fwd@example.org"
    m["To"] = "bob@example.net"
    m["Subject"] = "Fwd: inner"
    m.set_content("forwarding\n")
    m.add_attachment(inner)
    out.append(("py-forward", m.as_bytes()))

    m = MIMEMultipart("digest")
    m["From"] = "list@example.org"
    m["Subject"] = "Digest"
    for i in range(3):
        part = MIMEText("digest entry %d\n" % i)
        part["Subject"] = "entry %d" % i
        wrap = email.message.Message()
        wrap.set_payload([part])
        wrap.set_type("message/rfc822")
        del wrap["MIME-Version"]
        m.attach(part)
    out.append(("py-digest", m.as_bytes()))

    m = MIMEMultipart("mixed")
    m["From"] = "a@example.org"
    m["To"] = "b@example.org"
    m["Subject"] = "Legacy API"
    m.attach(MIMEText("text \u00e9\n", "plain", "utf-8"))
    m.attach(MIMEText("<i>x</i>\n", "html", "iso-8859-1"))
    att = MIMEApplication(b"\x00\x01binary", "octet-stream")
    att.add_header("Content-Disposition", "attachment",
                   filename=("utf-8", "de", "\u00fcber lang " * 12 + ".bin"))
    m.attach(att)
    out.append(("py-legacy", m.as_bytes()))

    m = EmailMessage()
    m["From"] = "x@example.org"
    m["Subject"] = "Quoted-printable \u00e9\u00e8 and a long subject " \
        "that the email package folds over several lines for sure"
    m.set_content("caf\u00e9 " * 40 + "\n", cte="quoted-printable")
    out.append(("py-qp-long-subject", m.as_bytes()))
    return out


HAND = [
    ("no-content-type", b"From: a@b.c\nSubject: nothing\n\nbody\n"),
    ("no-headers", b"\nbody only\n"),
    ("empty", b""),
    ("header-only-no-newline", b"Subject: x\nFrom: y@z"),
    ("missing-boundary",
     b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zz\n\n"
     b"--zz\nContent-Type: text/plain\n\nno close delimiter\n"),
    ("no-boundary-param",
     b"MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n--x\n\nbody\n"),
    ("boundary-prefixes",
     b"Content-Type: multipart/mixed; boundary=a\n\n--a\n"
     b"Content-Type: multipart/alternative; boundary=ab\n\n--ab\n\nx\n"
     b"--a\n\ny\n--a--\n"),
    ("header-cut-by-boundary",
     b"Content-Type: multipart/mixed; boundary=q\n\n--q\n"
     b"Content-Type: text/plain\n--q\nX: y\n\nz\n--q--\n"),
    ("bad-charset-and-type",
     b"MIME-Version: 1.0\nContent-Type: text/plain; charset=\"x-unknown\";"
     b" format=flowed; delsp\nContent-Transfer-Encoding: 8bit\n\nx\n"),
    ("type-without-subtype",
     b"MIME-Version: 1.0\nContent-Type: text\n\nx\n"),
    ("upper-case-type",
     b"MIME-Version: 1.0\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
     b"Content-ID: <id@x>\nContent-Description: a\n  folded desc\n"
     b"Content-Language: en, de-DE\nContent-Location: http://x/y\n"
     b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\nbody\n"),
    ("long-folded-headers",
     b"From: \"A very long display name that goes on\"\n"
     b"\t<a@example.org>\nSubject: first line\n\tsecond\n  third   "
     b"  spaced\nDate: Mon, 6 Jan 2025\n 10:00:00 +0100\n\n\n"),
    ("groups-and-empty-lists",
     b"From: a@b\nTo: undisclosed-recipients:;\nCc: Team: x@y, \"Q\" <q@r>;,"
     b" z@w\nBcc: ,,\nReply-To:\nSender: <>\n\nx\n"),
    ("defaults-sender-reply-to",
     b"From: One <one@x>, two@y\nTo: t@u\n\n"),
    ("sender-given",
     b"From: one@x\nSender: sec@x\nReply-To: r@x (Reply Name)\n\n"),
    ("quoted-local-parts",
     b"From: \"john..doe\"@example.org, \"a b\\\"c\"@x, (comment) bare\n"
     b"To: <@route1,@route2:u@d>, user@[192.0.2.1], a.@b, @x, <a@>\n\n"),
    ("eight-bit-headers",
     b"From: J\xc3\xbcrgen <j@x>\nSubject: caf\xc3\xa9 \"q\" \\\n"
     b"Message-ID: <a\xc3\xa9@x>\n\nx\n"),
    ("encoded-words",
     b"Subject: =?utf-8?B?w6k=?= =?bogus?q?x?= =?utf-8?q?broken\n"
     b"From: =?utf-8?q?J=C3=BCrgen?= <j@x>\n\n"),
    ("two-subjects-two-froms",
     b"Subject: first\nSubject: second\nFrom: a@x\nFrom: b@y\n"
     b"Date: one\nDate: two\n\n"),
    ("in-reply-to-message-id",
     b"In-Reply-To: <a@x> <b@y>\nMessage-ID:   <m@z>  \nReferences: <a@x>"
     b"\n\n"),
    ("nuls", b"Subject: a\x00b\nContent-Type: text/plain; name=\"x\x00y\""
     b"\nMIME-Version: 1.0\n\nbody\x00\n"),
    ("bare-cr", b"Subject: a\rb\nFrom: x@y\r\n\r\nline\rline\n"),
    ("nested-rfc822",
     b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n"
     b"--o\nContent-Type: message/rfc822\n\nFrom: x@y\nSubject: in\n"
     b"MIME-Version: 1.0\nContent-Type: multipart/alternative; "
     b"boundary=i\n\n--i\n\na\n--i\nContent-Type: text/html\n\n<b>\n"
     b"--i--\n--o--\n"),
    ("rfc822-without-header",
     b"MIME-Version: 1.0\nContent-Type: message/rfc822\n\n"),
    ("digest-default",
     b"MIME-Version: 1.0\nContent-Type: multipart/digest; boundary=d\n\n"
     b"--d\n\nSubject: one\n\n1\n--d\nContent-Type: text/plain\n\n2\n"
     b"--d\n\n--d--\n"),
    ("rfc2231-continuations",
     b"MIME-Version: 1.0\nContent-Type: application/x-stuff;\n"
     b" title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*0*=us-ascii'en'This%20is"
     b"%20even%20more%20; title*2=\"isn't it!\"\n"
     b"Content-Disposition: attachment; filename*0=\"a\"; "
     b"filename*2=\"c\"\n\nx\n"),
    ("epilogue-and-preamble",
     b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b b\""
     b"\n\npreamble\n--b b\n\none\n--b b--\nepilogue\nmore\n"),
    ("empty-parts",
     b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=e\n\n"
     b"--e\n--e\n\n--e--"),
    ("disposition-twice",
     b"MIME-Version: 1.0\nContent-Disposition: inline\n"
     b"Content-Disposition: attachment; filename=x\nContent-Type: "
     b"image/png; name=\"a\\\"b\\\\c\\\"d\\\"e\\\"f\"\n"
     b"Content-Transfer-Encoding: base64\n\niVBORw0K\n"),
    ("content-type-without-mime-version-in-rfc822",
     b"Content-Type: message/rfc822\n\nContent-Type: text/html\n\n<p>\n"),
    ("deep-nesting",
     b"".join(b"Content-Type: multipart/mixed; boundary=n%d\n\n--n%d\n"
              % (i, i) for i in range(105)) + b"\nleaf\n"),
    ("broken-params",
     b"MIME-Version: 1.0\nContent-Type: text/plain; ; a=b; c; d=\"e;"
     b" f=g; name*1=x; name*=y; t*0*=a; t*2=c\nContent-Disposition: "
     b"inline; filename*0*=utf-8''%C3; filename*1*=%A9.txt\n\nx\n"),
    ("odd-addresses",
     b"From: a@b (c) , d, Name <a@b> trailing, \"unclosed <x@y>\n"
     b"To: (unclosed comment <x@y>, <@r:u@d, <@r u@d>, g:;;, \"\" <q@w>\n"
     b"Cc: \x00nul@x, a@\x00b\nSubject:   \t  \nX-No-Colon line\n"
     b"In-Reply-To:\n" + b"N" * 1100 + b": v\n\n"),
    ("boundary-whitespace-and-reuse",
     b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=s\n\n"
     b"--s  \nContent-Type: multipart/mixed; boundary=s\n\n--s\n\nin\n"
     b"--s--\n--s\r\n\r\nmixed\r\nends\n--s--x\n"),
    ("boundary-first-line",
     b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=f\n\n"
     b"--f\n\n--f\nContent-Type: message/rfc822\n--f--\n"),
    ("long-boundary",
     b"Content-Type: multipart/mixed; boundary=\"" + b"B" * 90 +
     b"\"\n\n--" + b"B" * 90 + b"\n\nx\n--" + b"B" * 90 + b"--\n"),
]


def corpus():
    msgs = generated_messages() + HAND
    out = []
    for name, data in msgs:
        out.append((name + "-lf", data.replace(b"\r\n", b"\n")))
    # CRLF copies of a few, as IMAP APPEND stores them.
    for name, data in msgs[:4] + HAND[4:12]:
        out.append((name + "-crlf", crlf(data)))
    return out


class Dovecot:
    """doveadm on one maildir, with a configuration of its own."""

    def __init__(self, tmp, maildir, pw):
        self.dir = os.path.join(tmp, "dovecot")
        self.conf, self.env = harness.dovecot_config(self.dir, maildir, pw)

    def fetch(self, field):
        """{guid: value bytes} for every message."""
        argv = ["doveadm", "-c", self.conf, "fetch", "guid " + field, "ALL"]
        try:
            res = subprocess.run(argv, capture_output=True,
                                 timeout=TOOL_TIMEOUT, env=self.env,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError("doveadm: no exit within %d s"
                                 % TOOL_TIMEOUT)
        if res.returncode != 0:
            raise AssertionError("%s: exit %d\n%r" % (
                " ".join(argv), res.returncode, res.stderr))
        values = {}
        for block in res.stdout.split(b"\f\n"):
            m = re.fullmatch(rb"guid: (\S+)\n" + re.escape(field.encode())
                             + rb": (.*)\n", block, re.S)
            if m:
                values[m.group(1).decode()] = m.group(2)
        return values


def run_tool(paths):
    """The tool's three values for each file, in order."""
    argv = [tool_path()] + list(paths)
    try:
        res = subprocess.run(argv, capture_output=True, timeout=TOOL_TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("mime_tool: no exit within %d s" % TOOL_TIMEOUT)
    harness.check_sanitizer_output(
        res.stderr.decode("utf-8", "replace"), " ".join(argv))
    if res.returncode != 0:
        raise AssertionError("mime_tool: exit %d %r" % (
            res.returncode, res.stderr))
    values = []
    rest = res.stdout
    for _ in paths:
        three = []
        for _ in range(3):
            value, rest = take_value(rest)
            three.append(value)
        values.append(three)
    if rest != b"":
        raise AssertionError("trailing tool output %r" % rest)
    return values


def take_value(data):
    """One IMAP value up to its newline, skipping literals' contents."""
    i = 0
    while i < len(data):
        if data[i:i + 1] == b"{":
            m = re.match(rb"\{(\d+)\}\r\n", data[i:])
            if m:
                i += m.end() + int(m.group(1))
                continue
        if data[i:i + 1] == b"\n":
            return data[:i], data[i + 1:]
        i += 1
    raise AssertionError("unterminated tool output %r" % data)


class MimeTest(TernTestCase):
    class_instance = False

    @classmethod
    def setUpClass(cls):
        if shutil.which("doveadm") is None:
            raise harness.unittest.SkipTest("Dovecot (doveadm) is not "
                                            "installed")
        if not os.access(tool_path(), os.X_OK):
            raise harness.unittest.SkipTest(
                "no %s: build it with make -C _build check" % tool_path())
        harness.skip_unless_root("Dovecot refuses root; the test runs it "
                                 "as %s" % MAILDIR_OWNER)
        super().setUpClass()
        cls.tmp = os.path.realpath(tempfile.mkdtemp(prefix="tern-test-"))
        os.chmod(cls.tmp, 0o755)
        pw = pwd.getpwnam(MAILDIR_OWNER)
        cls.maildir = os.path.join(cls.tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(cls.maildir, sub))
        cls.files = {}
        for i, (name, data) in enumerate(corpus()):
            base = "1700000000.M%dP%d.%s" % (i, os.getpid(), name)
            path = os.path.join(cls.maildir, "new", base)
            with open(path, "wb") as f:
                f.write(data)
            cls.files[base] = (name, path, data)
        for root, dirs, files in os.walk(cls.tmp):
            for n in dirs + files:
                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
        os.chown(cls.tmp, pw.pw_uid, pw.pw_gid)
        cls.dovecot = Dovecot(cls.tmp, cls.maildir, pw)
        # Dovecot reads the messages as the owner; the directory too.
        for root, dirs, files in os.walk(cls.dovecot.dir):
            os.chown(root, pw.pw_uid, pw.pw_gid)
        cls.expected = {f: cls.dovecot.fetch(f) for f in FIELDS}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def test_same_as_dovecot(self):
        self.assertGreaterEqual(len(self.files), 40)
        failures = []
        bases = sorted(self.files)
        outputs = run_tool([self.files[b][1] for b in bases])
        for base, values in zip(bases, outputs):
            name = self.files[base][0]
            ours = dict(zip(("imap.envelope", "imap.body",
                             "imap.bodystructure"), values))
            for field in FIELDS:
                theirs = self.expected[field].get(base)
                if theirs is None:
                    failures.append("%s: Dovecot gave no %s" % (name, field))
                elif ours[field] != theirs:
                    failures.append("%s %s:\n  tern    %r\n  dovecot %r" % (
                        name, field, ours[field], theirs))
        if failures:
            self.fail("%d differences:\n%s" % (len(failures),
                                               "\n".join(failures)))

    def test_attachment_matches_email_package(self):
        base = [b for b, (n, _, _) in self.files.items()
                if n == "py-attachment-lf"][0]
        _, path, data = self.files[base]
        bs = run_tool([path])[0][2].decode("utf-8", "replace")
        msg = email.message_from_bytes(data, policy=email.policy.default)
        parts = list(msg.iter_parts())
        self.assertEqual(len(parts), 3)
        for part in parts:
            # "type" "subtype" (params) ... for each leaf, in order.
            m = re.search(r'\("%s" "%s" (NIL|\([^)]*\)) NIL NIL "([^"]+)" '
                          r'(\d+)'
                          % (re.escape(part.get_content_maintype()),
                             re.escape(part.get_content_subtype())), bs,
                          re.I)
            self.assertIsNotNone(m, "%s in %s" % (part.get_content_type(),
                                                  bs))
            params = re.findall(r'"([^"]*)" "([^"]*)"', m.group(1))
            for k, v in part.get_params()[1:]:
                if isinstance(v, tuple):
                    continue
                self.assertIn((k, v), [(a.lower(), b) for a, b in params])
            self.assertEqual(m.group(2).lower(),
                             part["Content-Transfer-Encoding"].lower())
            raw = part.as_bytes(policy=email.policy.default.clone(
                linesep="\r\n"))
            body = raw.split(b"\r\n\r\n", 1)[1]
            # The line end before the next boundary is the boundary's:
            # the email package writes one more after each part.
            self.assertEqual(int(m.group(3)), len(body))
            # ... then MD5, disposition and its parameters: the file name,
            # RFC 2231-encoded or not, is the one the email package reads.
            rest = bs[m.end():]
            if part.get_content_maintype() == "text":
                rest = re.sub(r"^ \d+", "", rest)  # the line count
            if part.get_content_disposition() is None:
                self.assertTrue(rest.startswith(" NIL NIL "), rest)
                continue
            d = re.match(r' NIL \("([^"]+)" \("(filename\*?)" "([^"]*)"\)\)',
                         rest)
            self.assertIsNotNone(d, rest)
            self.assertEqual(d.group(1), part.get_content_disposition())
            fn = d.group(3)
            if d.group(2) == "filename*":
                charset, _, text = fn.split("'", 2)
                fn = urllib.parse.unquote(text, encoding=charset)
            self.assertEqual(fn, part.get_filename())
        self.assertIn('"mixed" ("boundary" "%s")'
                      % msg.get_boundary(), bs)
