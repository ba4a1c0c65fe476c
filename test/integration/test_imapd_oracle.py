# SPDX-License-Identifier: MIT
"""imapd answers as a real Dovecot 2.3 does where the RFCs leave room or
where clients have learnt Dovecot's answer: LSUB's attributes and its
\\Noselect parents (RFC 3501 6.3.9), LIST (SUBSCRIBED RECURSIVEMATCH) with
CHILDINFO for a folder whose subscribed descendants the pattern does not
reach (RFC 5258 3.5), STORE .SILENT under CONDSTORE answering with the
new MODSEQ alone (RFC 7162 3.1.3, 3.2), with UNCHANGEDSINCE and UID
STORE too, and STORE of \\Recent refused with BAD (RFC 3501 2.3.2).

Each server gets a maildir of its own built the same way (folders,
subscriptions, two messages), PREAUTH on a pipe, as the maildir's
unprivileged owner (never the system's service); the same commands go to
both and the answers are compared as text, modseqs aside (each server
counts its own).
"""

import os
import pwd
import re
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
FOLDERS = ("Baz", "Baz.Kid", "Foo.Bar", "Qux", "Qux.Sub")
SUBSCRIPTIONS = ("Foo.Bar", "Baz", "Baz.Kid", "GoneX", "Old.Sub",
                 "Qux.Sub")


def build_maildir(path, owner):
    for folder in ("",) + tuple("." + f for f in FOLDERS):
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, folder, sub))
        if folder:
            open(os.path.join(path, folder, "maildirfolder"), "w").close()
    for i in range(2):
        name = "%d.M%dP1.oracle" % (1700000000 + i, i)
        with open(os.path.join(path, "new", name), "w") as f:
            f.write("From: a@example.org\nSubject: %d\n\nbody\n" % i)
    with open(os.path.join(path, "subscriptions"), "w") as f:
        f.write("V\t2\n\n" + "".join(s.replace(".", "\t") + "\n"
                                    for s in SUBSCRIPTIONS))
    for root, dirs, files in os.walk(os.path.dirname(path)):
        for n in dirs + files:
            os.chown(os.path.join(root, n), owner.pw_uid, owner.pw_gid)


class Conversation:
    """One server on a pipe or socket: commands in, responses out."""

    def __init__(self, send, recv):
        self.send, self.recv = send, recv
        self.buf = b""
        self.n = 0
        self.greeting = self.lines_until(b"* ")

    def lines_until(self, prefix):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.recv()
                if not chunk:
                    raise AssertionError("closed after %r" % lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if line.startswith(prefix):
                return lines

    def command(self, line):
        self.n += 1
        tag = b"o%d" % self.n
        self.send(tag + b" " + line + b"\r\n")
        return self.lines_until(tag + b" ")


def normal(lines):
    """Untagged lines as they are, modseqs made N and a folder name never
    quoted (Dovecot quotes only what must be); the tagged line as its
    status and response code (the texts differ)."""
    out = [re.sub(rb' "([^"\\ ()%*]+)"$', rb" \1",
                  re.sub(rb"MODSEQ \(\d+\)", b"MODSEQ (N)", l))
           for l in lines[:-1]]
    m = re.match(rb"^\S+ (OK|NO|BAD)( \[[^]]*\])?", lines[-1])
    return out + [m.group(0).split(b" ", 1)[1] if m else lines[-1]]


def list_summary(lines):
    """LIST lines as (name, \\Subscribed, CHILDINFO): the other
    attributes of a Maildir++ level differ (\\NonExistent in Dovecot,
    \\Noselect \\HasChildren in tern), both within RFC 5258."""
    out = set()
    for l in lines[:-1]:
        m = re.match(rb'^\* LIST \(([^)]*)\) "\." "?([^" ]+)"?( \(.*\))?$',
                     l)
        assert m, l
        out.add((m.group(2), b"\\Subscribed" in m.group(1),
                 m.group(3) or b""))
    return sorted(out), normal(lines)[-1]


class ImapdOracleTest(TernTestCase):
    class_instance = False

    @classmethod
    def setUpClass(cls):
        if not os.access(DOVECOT_IMAP, os.X_OK):
            raise harness.unittest.SkipTest("Dovecot's imap is not "
                                            "installed")
        harness.skip_unless_root("Dovecot and imapd run as %s"
                                 % MAILDIR_OWNER)
        super().setUpClass()
        cls.tmp = os.path.realpath(tempfile.mkdtemp(prefix="tern-test-"))
        os.chmod(cls.tmp, 0o755)
        cls.pw = pwd.getpwnam(MAILDIR_OWNER)

    @classmethod
    def tearDownClass(cls):
        report = ""
        log = os.path.join(cls.tmp, "imapd.log")
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                report = f.read()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()
        harness.check_sanitizer_output(report, "imapd")

    def owner_argv(self):
        return ["setpriv", "--reuid=%d" % self.pw.pw_uid,
                "--regid=%d" % self.pw.pw_gid, "--clear-groups", "--"]

    def new_home(self):
        home = os.path.join(self.tmp, uuid.uuid4().hex[:8])
        os.mkdir(home)
        build_maildir(os.path.join(home, "Maildir"), self.pw)
        os.chown(home, self.pw.pw_uid, self.pw.pw_gid)
        return home

    def start_tern(self):
        home = self.new_home()
        conf = os.path.join(home, "conf")
        os.mkdir(conf)
        with open(os.path.join(conf, "tern.conf"), "w") as f:
            f.write("maillog_file = %s/imapd.log\n" % self.tmp)
        env = {k: os.environ[k] for k in harness.SANITIZER_VARS + ["PATH"]
               if k in os.environ}
        env.update(TERN_SESSION_USER="oracle@example.test",
                   TERN_SESSION_MAILDIR=os.path.join(home, "Maildir"),
                   TERN_SESSION_CLIENT="127.0.0.1",
                   TERN_SESSION_CLIENT_PORT="40000",
                   TERN_SESSION_LOCAL="127.0.0.1",
                   TERN_SESSION_LOCAL_PORT="143", TERN_SESSION_TLS="0",
                   TERN_SESSION_ID=uuid.uuid4().hex[:8])
        ours, theirs = socket.socketpair()
        ours.settimeout(TIMEOUT)
        with open(os.path.join(self.tmp, "imapd.log"), "ab") as log:
            proc = subprocess.Popen(
                self.owner_argv() + [IMAPD, "-c", conf], stdin=theirs,
                stdout=subprocess.DEVNULL, stderr=log, env=env, cwd="/")
        theirs.close()
        self.addCleanup(self.reap, proc, ours)
        return Conversation(ours.sendall, lambda: ours.recv(65536))

    def start_dovecot(self):
        home = self.new_home()
        conf, env = harness.dovecot_config(
            os.path.join(home, "dovecot"), os.path.join(home, "Maildir"),
            self.pw)
        argv = self.owner_argv() + [DOVECOT_IMAP, "-c", conf]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env)
        self.addCleanup(self.reap, proc, None)

        def send(data):
            proc.stdin.write(data)
            proc.stdin.flush()
        return Conversation(send, lambda: proc.stdout.read1(65536))

    @staticmethod
    def reap(proc, sock):
        if sock is not None:
            sock.close()
        else:
            proc.stdin.close()
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def both(self):
        return self.start_tern(), self.start_dovecot()

    def compare(self, servers, line, how=normal):
        tern, dovecot = (how(s.command(line)) for s in servers)
        self.assertEqual(tern, dovecot, "%s:\n  tern    %r\n  dovecot %r"
                         % (line.decode(), tern, dovecot))
        return tern

    def test_lsub_and_recursivematch(self):
        servers = self.both()
        for pattern in (b'"%"', b'"*"', b'"%.%"', b'"Qux*"'):
            out = self.compare(
                servers, b'LIST (SUBSCRIBED RECURSIVEMATCH) "" ' + pattern,
                list_summary)
            self.compare(servers, b'LSUB "" ' + pattern,
                         lambda l: sorted(normal(l)[:-1]) + normal(l)[-1:])
        # What Dovecot answered, spelled out: Qux is listed for Qux.Sub
        # under '%' though it is not subscribed itself.
        out = self.compare(servers,
                           b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"',
                           list_summary)
        self.assertIn((b"Qux", False, b' (CHILDINFO ("SUBSCRIBED"))'),
                      out[0])
        self.assertIn((b"Baz", True, b' (CHILDINFO ("SUBSCRIBED"))'),
                      out[0])

    def test_store_silent_condstore_and_recent(self):
        servers = self.both()
        for s in servers:
            s.command(b"ENABLE CONDSTORE")
            s.command(b"SELECT INBOX")
        for line in (b"STORE 1 +FLAGS.SILENT (\\Seen)",
                     b"UID STORE 1 +FLAGS.SILENT (\\Answered)",
                     b"STORE 1:2 -FLAGS.SILENT (\\Seen)",
                     b"STORE 1 (UNCHANGEDSINCE 1) +FLAGS.SILENT (\\Draft)",
                     b"UID STORE 2 (UNCHANGEDSINCE 18446744073709551615) "
                     b"FLAGS.SILENT (\\Flagged)",
                     b"STORE 1 FLAGS (\\Recent)",
                     b"STORE 2 +FLAGS.SILENT (\\Seen \\Recent)",
                     b"STORE 1 -FLAGS (\\Recent)",
                     b"FETCH 1:* (FLAGS)"):
            self.compare(servers, line)
        for s in servers:
            s.command(b"LOGOUT")
