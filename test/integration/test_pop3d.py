# SPDX-License-Identifier: MIT
"""pop3d, the POP3 session, started directly as spawn will start it:
the client on fd 0 (one end of a socketpair; the other end is python3's
poplib), the TERN_SESSION_* environment, and as root the mailbox owner's
uid (vmail, through setpriv) so that it is shown to work unprivileged.
Maildirs are filled by real delivery (SMTP to the instance) and by hand
(LF and CRLF files, lines starting with '.', no W= in the name, no final
line end). Shown: every command, sizes that are exactly what RETR sends,
TOP n 0, DELE applied only by QUIT, RSET, UIDL stable across sessions and
the new/ -> cur/ move, \\Seen at QUIT, [IN-USE] for a second session,
consistent views without the lock, STAT on unreadable files (no file
read), the line and bad-command limits, pipelined input from login, and
pop3_delete_after at session start and with -E."""

import os
import re
import poplib
import subprocess
import time
import uuid

import harness
from harness import TernTestCase, make_message, smtp_send

USER = "alice@example.test"
SENDER = "sender@example.org"
# Every wait on pop3d is bounded by this (a sanitized build starts slowly).
TIMEOUT = 20
DAY = 86400
POP3D = os.path.join(harness.DAEMON_DIR, "pop3d")
# RFC 1939 3 and lib/mail/pop3_cmd.h: the longest command line.
LINE_MAX = 4096


class PairPOP3(poplib.POP3):
    """poplib on one end of a socketpair instead of a TCP connection."""

    def __init__(self, sock):
        self._pair = sock
        super().__init__("pop3d", 0, timeout=TIMEOUT)

    def _create_socket(self, timeout):
        self._pair.settimeout(timeout)
        return self._pair


class Session:
    """One pop3d process; .pop is the poplib client, .sock the raw end."""

    def __init__(self, proc, sock):
        self.proc = proc
        self.sock = sock
        self.pop = None

    def login(self):
        """Reads the greeting with poplib; returns it."""
        self.pop = PairPOP3(self.sock)
        return self.pop.welcome

    def raw(self, data):
        self.sock.sendall(data)

    def read_until(self, end, limit=1 << 20):
        buf = b""
        while not buf.endswith(end):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > limit:
                raise AssertionError("response too long: %r" % buf[:200])
        return buf

    def drop(self):
        """The client goes away without QUIT."""
        if self.pop is not None:
            self.pop.file.close()
        self.sock.close()
        return self.wait()

    def wait(self):
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("pop3d did not exit within %d s" % TIMEOUT)

    def quit(self):
        resp = self.pop.quit()
        rc = self.wait()
        if rc != 0:
            raise AssertionError("pop3d exited %d" % rc)
        return resp


def crlf(data):
    """A stored message as POP3 sends it, before dot-stuffing."""
    out = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if out and not out.endswith(b"\n"):
        out += b"\r\n"
    return out


def base_of(name):
    return name.split(":", 1)[0]


class Pop3dTest(harness.SessionProcess, TernTestCase):

    session_program = POP3D
    session_user = USER
    session_local_port = "110"

    @classmethod
    def configure(cls, tern):
        tern.add_user(USER, "pw-" + uuid.uuid4().hex)

    def setUp(self):
        super().setUp()
        self.owner = self.session_owner()
        self.conf = self.make_conf()

    # ----- helpers

    def start(self, maildir, conf=None, input=None, argv_prefix=None):
        return Session(*self.start_session(maildir, conf=conf, input=input,
                                           argv_prefix=argv_prefix))

    def session(self, maildir, conf=None):
        s = self.start(maildir, conf)
        self.assertEqual(s.login(), b"+OK Logged in.")
        return s

    def new_maildir(self, files=(), sub="new"):
        """A maildir owned by the session's user with files {name: bytes}
        in sub/."""
        md = os.path.join(self.tern.tmp, "md-" + uuid.uuid4().hex[:8],
                          "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, d))
        for name, data in files:
            with open(os.path.join(md, sub, name), "wb") as f:
                f.write(data)
        self.chown_tree(os.path.dirname(md))
        return md

    def chown_tree(self, top):
        if not harness.is_root():
            return
        for root, dirs, files in os.walk(top):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.lchown(n, self.owner.pw_uid, self.owner.pw_gid)

    def deliver(self, count, body=b"hello\n", empty=False):
        """count messages through SMTP to USER (into an emptied maildir
        when empty); returns the maildir."""
        md = self.tern.virtual_maildir(USER)
        if empty and os.path.isdir(md):
            self.empty_maildir(md)
        before = harness.maildir_count(md) if os.path.isdir(md) else 0
        for i in range(count):
            _, msg = make_message(SENDER, USER, subject="m%d" % i,
                                  body=body)
            smtp_send(self.tern.smtp_port, SENDER, [USER], msg)
        harness.wait_until(lambda: harness.maildir_count(md)
                           >= before + count, harness.DELIVERY_TIMEOUT,
                           "%d deliveries to %s" % (count, md))
        return md

    def empty_maildir(self, md):
        for sub in ("new", "cur"):
            for n in os.listdir(os.path.join(md, sub)):
                os.unlink(os.path.join(md, sub, n))

    def check_sizes(self, pop, stored):
        """LIST, STAT and RETR agree, and RETR gives stored (in order)
        with CRLF line ends."""
        count, total = pop.stat()
        self.assertEqual(count, len(stored))
        resp, listing, _ = pop.list()
        sizes = [int(x.split()[1]) for x in listing]
        self.assertEqual([int(x.split()[0]) for x in listing],
                         list(range(1, count + 1)))
        self.assertEqual(sum(sizes), total)
        for i, data in enumerate(stored):
            resp, lines, octets = pop.retr(i + 1)
            self.assertEqual(resp, b"+OK %d octets" % sizes[i])
            self.assertEqual(octets, sizes[i])
            self.assertEqual(b"".join(l + b"\r\n" for l in lines),
                             crlf(data))
            self.assertEqual(pop.list(i + 1),
                             b"+OK %d %d" % (i + 1, sizes[i]))

    # ----- tests

    def test_delivered_mail(self):
        """Mail from SMTP: W= in every name, exact sizes, the move to
        cur/, UIDLs that survive it, \\Seen at QUIT."""
        md = self.deliver(3, body=b"line 1\n.starts with a dot\n..two\n",
                          empty=True)
        names = sorted(os.listdir(os.path.join(md, "new")))
        self.assertEqual(len(names), 3)
        stored = []
        for n in names:
            self.assertRegex(n, r",S=\d+,W=\d+$")
            with open(os.path.join(md, "new", n), "rb") as f:
                stored.append(f.read())
            w = int(n.rsplit(",W=", 1)[1])
            self.assertEqual(w, len(crlf(stored[-1])))
        s = self.session(md)
        self.assertEqual(os.listdir(os.path.join(md, "new")), [])
        self.assertEqual(sorted(os.listdir(os.path.join(md, "cur"))),
                         sorted(n + ":2," for n in names))
        self.check_sizes(s.pop, stored)
        resp, uidls, _ = s.pop.uidl()
        # The default is Dovecot's %08Xu%08Xv (X: lower-case hex, as
        # Dovecot's), from the dovecot-uidlist
        # pop3d keeps as Dovecot does (test_uidlist checks it against
        # Dovecot): UIDs in delivery order.
        with open(os.path.join(md, "dovecot-uidlist")) as f:
            lines = f.read().splitlines()
        validity = int(re.search(r" V(\d+)", lines[0]).group(1))
        uid_of = {l.split(" :", 1)[1]: int(l.split(" ", 1)[0])
                  for l in lines[1:]}
        self.assertEqual(sorted(uid_of), names)
        self.assertEqual(uidls, [b"%d %08x%08x" % (i + 1, uid_of[n], validity)
                                 for i, n in enumerate(names)])
        self.assertEqual(s.pop.uidl(2), b"+OK 2 %08x%08x"
                         % (uid_of[names[1]], validity))
        self.assertEqual(s.quit(), b"+OK Logging out.")
        # RETR marked every message \Seen; nothing left new/.
        self.assertEqual(sorted(os.listdir(os.path.join(md, "cur"))),
                         sorted(n + ":2,S" for n in names))
        s = self.session(md)
        self.assertEqual(s.pop.uidl()[1], uidls)
        s.quit()
        self.empty_maildir(md)

    def test_hand_made_files(self):
        """LF and CRLF files, dots, no final line end, no W=: sizes
        counted once and cached; TOP; raw bytes on the wire."""
        files = [
            ("1000000001.M1P1.h", b"Subject: lf\n\nbody\n.dot\n"),
            ("1000000002.M2P1.h", b"Subject: crlf\r\n\r\nbody\r\n.\r\n"),
            ("1000000003.M3P1.h", b"Subject: open\n\nno line end"),
            ("1000000003.M10P1.h", b"Subject: later usec\n\nx\n"),
            ("1000000000.M9P1.h", b"Subject: first\nX: 1\n\n1\n2\n3\n"),
        ]
        md = self.new_maildir(files)
        order = [files[4], files[0], files[1], files[2], files[3]]
        s = self.session(md)
        self.check_sizes(s.pop, [d for _, d in order])
        resp, lines, _ = s.pop.top(1, 0)
        self.assertEqual(lines, [b"Subject: first", b"X: 1", b""])
        resp, lines, _ = s.pop.top(1, 2)
        self.assertEqual(lines, [b"Subject: first", b"X: 1", b"", b"1",
                                 b"2"])
        # The raw form: CRLF, stuffed dots, the terminator.
        s.raw(b"RETR 2\r\n")
        self.assertEqual(s.read_until(b"\r\n.\r\n"),
                         b"+OK %d octets\r\nSubject: lf\r\n\r\n"
                         b"body\r\n..dot\r\n.\r\n" % len(crlf(files[0][1])))
        s.raw(b"RETR 4\r\n")
        self.assertEqual(s.read_until(b"\r\n.\r\n"),
                         b"+OK %d octets\r\nSubject: open\r\n\r\n"
                         b"no line end\r\n.\r\n" % len(crlf(files[2][1])))
        s.quit()
        with open(os.path.join(md, "tern-pop3-sizes"), "rb") as f:
            cache = f.read().decode()
        for name, data in files:
            self.assertIn("%d %s\n" % (len(crlf(data)), name), cache)

        # Unreadable files: STAT, LIST and UIDL need none of them.
        cur = os.path.join(md, "cur")
        for n in os.listdir(cur):
            os.chmod(os.path.join(cur, n), 0)
        s = self.session(md)
        self.assertEqual(s.pop.stat(),
                         (5, sum(len(crlf(d)) for _, d in files)))
        self.assertEqual(len(s.pop.list()[1]), 5)
        self.assertEqual(len(s.pop.uidl()[1]), 5)
        with self.assertRaises(poplib.error_proto) as e:
            s.pop.retr(1)
        self.assertTrue(e.exception.args[0].startswith(b"-ERR [SYS/TEMP]"),
                        e.exception)
        self.assertEqual(s.pop.noop(), b"+OK")
        s.quit()
        for n in os.listdir(cur):
            os.chmod(os.path.join(cur, n), 0o600)

    def test_dele_quit_and_drop(self):
        """DELE takes effect at QUIT only; a dropped connection or RSET
        deletes nothing; maildirsize is kept."""
        md = self.new_maildir([("%d.M1P1.h,S=10" % (1000000000 + i),
                                b"S: %d\n\nabc\n" % i) for i in range(3)])
        with open(os.path.join(md, "maildirsize"), "w") as f:
            f.write("0S\n30 3\n")
        self.chown_tree(md)
        s = self.session(md)
        self.assertEqual(s.pop.dele(1), b"+OK Marked to be deleted.")
        self.assertEqual(s.pop.stat()[0], 2)
        self.assertEqual(len(s.pop.list()[1]), 2)
        with self.assertRaises(poplib.error_proto) as e:
            s.pop.retr(1)
        self.assertEqual(e.exception.args[0], b"-ERR Message is deleted.")
        s.drop()
        self.assertEqual(harness.maildir_count(md), 3)

        s = self.session(md)
        s.pop.dele(2)
        self.assertEqual(s.pop.rset(), b"+OK")
        self.assertEqual(s.pop.stat()[0], 3)
        self.assertEqual(s.quit(), b"+OK Logging out.")
        self.assertEqual(harness.maildir_count(md), 3)

        s = self.session(md)
        s.pop.dele(1)
        s.pop.dele(3)
        self.assertEqual(s.quit(), b"+OK Logging out, messages deleted.")
        self.assertEqual([base_of(n) for n in
                          os.listdir(os.path.join(md, "cur"))],
                         ["1000000001.M1P1.h,S=10"])
        with open(os.path.join(md, "maildirsize")) as f:
            self.assertEqual(f.read(), "0S\n30 3\n-20 -2\n")

    def test_in_use_and_shared_views(self):
        """The lock: [IN-USE] for a second session until the first ends.
        Without it: each session its own view, a message another one
        expunged answered as such."""
        md = self.new_maildir([("1000000001.M1P1.h", b"a\n"),
                               ("1000000002.M1P1.h", b"b\n")])
        first = self.session(md)
        second = self.start(md)
        with self.assertRaises(poplib.error_proto) as e:
            second.login()
        self.assertEqual(e.exception.args[0], b"-ERR [IN-USE] Mailbox is "
                         b"locked by another POP3 session.")
        self.assertEqual(second.wait(), 0)
        first.quit()
        self.session(md).quit()

        shared = self.make_conf(pop3_lock_session="no")
        a = self.session(md, shared)
        b = self.session(md, shared)
        a.pop.dele(1)
        a.quit()
        self.assertEqual(b.pop.stat()[0], 2)
        with self.assertRaises(poplib.error_proto) as e:
            b.pop.retr(1)
        self.assertEqual(e.exception.args[0], b"-ERR Message 1 expunged.")
        self.assertEqual(b.pop.retr(2)[1], [b"b"])
        b.quit()
        self.assertEqual(os.listdir(os.path.join(md, "cur")),
                         ["1000000002.M1P1.h:2,S"])

    def test_delivery_during_session(self):
        """A message that arrives during a session is not in it and is
        in the next one."""
        md = self.deliver(1, empty=True)
        s = self.session(md)
        self.assertEqual(s.pop.stat()[0], 1)
        self.deliver(1)
        self.assertEqual(s.pop.stat()[0], 1)
        self.assertEqual(len(s.pop.uidl()[1]), 1)
        s.quit()
        s = self.session(md)
        self.assertEqual(s.pop.stat()[0], 2)
        s.pop.dele(1)
        s.pop.dele(2)
        s.quit()
        self.assertEqual(harness.maildir_count(md), 0)

    def test_commands_and_limits(self):
        """CAPA, refused login commands, bad numbers, pipelining, input
        from login, the line limit and the bad-command limit."""
        md = self.new_maildir([("1000000001.M1P1.h", b"S: 1\n\nx\n")])
        # UIDLs that are the file's name, to recognise (Dovecot's %f)
        s = self.session(md, self.make_conf(pop3_uidl_format="%f"))
        caps = s.pop.capa()
        for c in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
                  "PIPELINING", "USER"):
            self.assertIn(c, caps)
        self.assertEqual(caps["IMPLEMENTATION"], ["tern"])
        self.assertEqual(caps["EXPIRE"], ["NEVER"])
        self.assertNotIn("STLS", caps)
        for cmd in (b"USER x", b"PASS y", b"STLS", b"AUTH PLAIN"):
            with self.assertRaises(poplib.error_proto):
                s.pop._shortcmd(cmd.decode())
        for cmd, err in ((b"RETR 2", b"-ERR There's no message 2."),
                         (b"RETR 0", b"-ERR There's no message 0."),
                         (b"RETR x", b"-ERR Invalid message number: x"),
                         (b"TOP 1 -1", b"-ERR Invalid line count: -1")):
            s.raw(cmd + b"\r\n")
            self.assertEqual(s.read_until(b"\r\n"), err + b"\r\n")
        # Pipelined: every answer, in order.
        s.raw(b"NOOP\r\nSTAT\r\nLIST 1\r\nUIDL 1\r\n")
        self.assertEqual(s.read_until(b"M1P1.h\r\n"),
                         b"+OK\r\n+OK 1 11\r\n+OK 1 11\r\n"
                         b"+OK 1 1000000001.M1P1.h\r\n")
        s.raw(b"X" * (LINE_MAX + 10) + b"\r\n")
        self.assertEqual(s.read_until(b"\r\n"), b"-ERR Line too long.\r\n")
        self.assertEqual(s.read_until(b"\r\n"), b"")
        self.assertEqual(s.wait(), 0)

        s = self.session(md)
        s.raw(b"XYZW\r\n" * 10)
        out = s.read_until(b"Too many bad commands.\r\n")
        self.assertEqual(out.count(b"-ERR Unknown command: XYZW\r\n"), 10)
        self.assertEqual(s.read_until(b"\r\n"), b"")
        self.assertEqual(s.wait(), 0)

        # Commands the client sent with its login run first.
        s = self.start(md, input=b"STAT\r\nQUIT\r\n")
        self.assertEqual(s.read_until(b"Logging out.\r\n"),
                         b"+OK Logged in.\r\n+OK 1 11\r\n"
                         b"+OK Logging out.\r\n")
        self.assertEqual(s.wait(), 0)

    def test_refuses_root(self):
        harness.skip_unless_root("running pop3d as root")
        md = self.new_maildir()
        s = self.start(md, argv_prefix=[])
        self.assertNotEqual(s.wait(), 0)
        self.assertEqual(s.read_until(b"\n"), b"")
        self.assertIn("refusing to run as root", self.tern.log())

    def test_delete_after(self):
        """pop3_delete_after: retrieved and old enough goes at the next
        session start; not retrieved, or recent, stays; pop3d -E does the
        same below a base directory."""
        now = int(time.time())
        files = [("%d.M1P1.h" % (now - 3 * DAY), b"old retrieved\n"),
                 ("%d.M2P1.h" % (now - 3 * DAY), b"old unread\n"),
                 ("%d.M3P1.h" % now, b"new retrieved\n"),
                 ("notime-retrieved", b"by mtime\n")]
        md = self.new_maildir(files)
        old = os.path.join(md, "new", "notime-retrieved")
        os.utime(old, (now - 3 * DAY, now - 3 * DAY))
        conf = self.make_conf(pop3_delete_after="2d")
        s = self.session(md, conf)
        self.assertEqual(s.pop.capa()["EXPIRE"], ["2"])
        # Order: notime (time 0), then by time.
        self.assertEqual(s.pop.retr(1)[1], [b"by mtime"])
        self.assertEqual(s.pop.retr(2)[1], [b"old retrieved"])
        self.assertEqual(s.pop.retr(4)[1], [b"new retrieved"])
        s.quit()
        with open(os.path.join(md, "tern-pop3-retrieved")) as f:
            listed = sorted(l.split(" ", 1)[1] for l in f.read().split("\n")
                            if l)
        self.assertEqual(listed, sorted([files[0][0], files[2][0],
                                         files[3][0]]))
        s = self.session(md, conf)
        self.assertEqual(s.pop.stat()[0], 2)
        s.quit()
        self.assertEqual(sorted(base_of(n) for n in
                                os.listdir(os.path.join(md, "cur"))),
                         sorted([files[1][0], files[2][0]]))

        # -E: a tree of virtual maildirs, one of them in a session.
        base = os.path.join(self.tern.tmp, "vbase-" + uuid.uuid4().hex[:6])
        mds = []
        for user in ("bob", "carol"):
            d = os.path.join(base, "example.test", user, "Maildir")
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(d, sub))
            name = "%d.M1P1.h" % (now - 3 * DAY)
            with open(os.path.join(d, "cur", name + ":2,S"), "wb") as f:
                f.write(b"x\n")
            with open(os.path.join(d, "tern-pop3-retrieved"), "w") as f:
                f.write("%d %s\n" % (now - 3 * DAY, name))
            mds.append(d)
        self.chown_tree(base)
        busy = self.session(mds[1], self.make_conf())
        res = harness.run(self.owner_argv() + [POP3D, "-c", conf, "-E",
                                                base],
                          env=self.env(md))
        self.assertEqual(res.returncode, 0, res.output)
        self.assertEqual(harness.maildir_count(mds[0]), 0)
        self.assertFalse(os.path.exists(
            os.path.join(mds[0], "tern-pop3-retrieved")))
        self.assertEqual(harness.maildir_count(mds[1]), 1)
        busy.quit()
