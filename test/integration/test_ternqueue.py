# SPDX-License-Identifier: MIT
"""ternqueue -p / -j / -f / -i through the showq daemon, run as an
ordinary user (ternqueue is setgid terndrop, the queue is the tern
user's alone): a deferred message with its reason in mailq's format and
in JSON; -i delivers one deferred message now; a user that
authorized_mailq_users does not name sees only their own mail, and one
that authorized_flush_users does not name cannot flush; with tern
stopped root still lists the queue and a user is told the mail system
is down.

Mail is deferred by routing held.test to a loopback port where nothing
listens (transport_maps smtp:[127.0.0.1]:PORT), with the retry an hour
away; smtp-sink on that port is the site coming back for -i."""

import json
import os
import re
import time
import uuid

import harness
import peer
from harness import TernTestCase, make_message, run, smtp_send, wait_until

HELD = "held.test"
SENDER = "sender@example.org"
OFFLINE = dict(minimal_backoff_time="1h", maximal_backoff_time="2h",
               queue_run_delay="1h")
HEADER = ("-Queue ID-  --Size-- ----Arrival Time---- "
          "-Sender/Recipient-------")
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_NOPERM = 77


def ternqueue(tern, *args, check=True, user=None):
    """ternqueue -c DIR args, as root or as user (a pwd entry)."""
    argv = [tern.sbin("ternqueue"), "-c", tern.dir] + list(args)
    env = None
    if user is not None:
        argv = ["setpriv", "--reuid=%d" % user.pw_uid,
                "--regid=%d" % user.pw_gid, "--init-groups",
                "--reset-env"] + argv
        env = {k: v for k, v in os.environ.items()
               if k.endswith("SAN_OPTIONS")}
        # A setgid process is not dumpable, and LeakSanitizer's tracer
        # cannot attach to it without root's CAP_SYS_PTRACE: the runs
        # as root check ternqueue's leaks.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "")
                               + ":detect_leaks=0")
        env.update(HOME=user.pw_dir, USER=user.pw_name, PATH="/usr/bin:/bin")
    return run(argv, check=check, env=env)


def mailq_blocks(out):
    """{queue id with its * or !: [lines]} of ternqueue -p's output."""
    blocks, cur = {}, None
    for line in out.splitlines():
        if line == HEADER or line.startswith("-- ") or not line:
            cur = None
            continue
        if not line.startswith(" "):
            cur = line.split()[0]
            blocks[cur] = [line]
        elif cur is not None:
            blocks[cur].append(line)
    return blocks


def queue_file_with(sender, rcpt, attrs):
    """A complete queue file with ATTR records (harness.queue_file has
    none): what pickup writes for mail a local user submitted."""
    rec = harness.queue_record
    now = time.time()
    out = rec(b"V", b"TERNQ1")
    out += rec(b"T", ("%d.%06d" % (int(now), int(now % 1 * 1e6))).encode())
    out += rec(b"S", sender if isinstance(sender, bytes)
               else sender.encode())
    for name, value in attrs:
        out += rec(b"A", ("%s=%s" % (name, value)).encode())
    out += rec(b"R", rcpt.encode() + b"\0\0" + b"0")
    out += rec(b"M", b"Subject: planted\r\n\r\nbody\r\n")
    out += rec(b"E", b"")
    return out


class TernqueueCase(TernTestCase):
    PORT = None

    @classmethod
    def configure(cls, tern):
        cls.PORT = harness.find_free_port()
        tern.conf_set(mynetworks="127.0.0.1/32",
                      transport_maps="inline:{ %s=smtp:[127.0.0.1]:%d }"
                      % (HELD, cls.PORT), **OFFLINE)

    def user(self):
        harness.skip_unless_root("running ternqueue as an ordinary user")
        pw = self.tern.create_system_user()
        if run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d"
                % pw.pw_gid, "--init-groups", "test", "-x",
                self.tern.sbin("ternqueue")], check=False).returncode:
            self.skipTest("ternqueue is not reachable by an ordinary user")
        if not os.stat(self.tern.sbin("ternqueue")).st_mode & 0o2000:
            self.skipTest("ternqueue is not installed setgid (make "
                          "install as root with the terndrop group)")
        return pw

    def defer(self, tag="rcpt"):
        """A message to held.test, deferred: (rcpt, qid)."""
        t = self.tern
        rcpt = "%s%s@%s" % (tag, uuid.uuid4().hex[:8], HELD)
        _, msg = make_message(SENDER, rcpt, subject="held")
        qid = smtp_send(t.smtp_port, SENDER, [rcpt], msg)
        t.wait_for_log(r"%s: deferred" % qid)
        return rcpt, qid


class TernqueueListTest(TernqueueCase):
    """Listing, flushing and -i with the default authorization (every
    user may)."""

    def test_p_shows_a_deferred_message_with_its_reason(self):
        user = self.user()
        rcpt, qid = self.defer()
        res = ternqueue(self.tern, "-p", user=user)
        self.assertEqual(res.stdout.splitlines()[0], HEADER, res.stdout)
        blocks = mailq_blocks(res.stdout)
        self.assertIn(qid, blocks, res.stdout)
        first, reason, who = blocks[qid]
        # "ID  size  arrival  sender": postqueue's columns.
        m = re.match(r"^(\S+)\s+(\d+) (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d)"
                     r"  (\S+)$", first)
        self.assertTrue(m, first)
        self.assertEqual(m.group(4), SENDER)
        self.assertRegex(reason, r"^ *\(.*127\.0\.0\.1.*%d.*\)$" % self.PORT)
        self.assertEqual(who.strip(), rcpt)
        self.assertRegex(res.stdout.splitlines()[-1],
                         r"^-- \d+ Kbytes in \d+ Requests?\.$")

    def test_j_is_json_with_postqueue_fields(self):
        user = self.user()
        rcpt, qid = self.defer()
        res = ternqueue(self.tern, "-j", user=user)
        objs = [json.loads(line) for line in res.stdout.splitlines()]
        [obj] = [o for o in objs if o["queue_id"] == qid]
        self.assertEqual(obj["queue_name"], "deferred")
        self.assertEqual(obj["sender"], SENDER)
        self.assertIs(obj["forced_expire"], False)
        self.assertIsInstance(obj["arrival_time"], int)
        self.assertLessEqual(abs(obj["arrival_time"] - time.time()), 120)
        self.assertGreater(obj["message_size"], 0)
        [r] = obj["recipients"]
        self.assertEqual(r["address"], rcpt)
        self.assertIn(str(self.PORT), r["delay_reason"])

    def test_j_escapes_any_bytes(self):
        """A sender with a control character, a quote and a byte that is
        not UTF-8 still makes valid JSON (root: planting a file)."""
        harness.skip_unless_root("placing a queue file")
        t = self.tern
        data = queue_file_with(b"we\"ird\x01\xff\xc3\xa9@example.org",
                               "hold@" + HELD, [])
        qid = harness.place_queue_file(t, "hold", data)
        res = ternqueue(t, "-j")
        [obj] = [json.loads(line) for line in res.stdout.splitlines()
                 if qid in line]
        self.assertEqual(obj["queue_name"], "hold")
        self.assertEqual(obj["sender"],
                         "we\"ird\x01\ufffd\u00e9@example.org")
        res = ternqueue(t, "-p")
        self.assertIn(qid + "!", mailq_blocks(res.stdout))
        self.assertIn("we\"ird??\u00e9@example.org", res.stdout)

    def test_i_delivers_one_message_now(self):
        if not peer.have_smtp_sink():
            self.skipTest("smtp-sink (package postfix) is not installed")
        user = self.user()
        t = self.tern
        rcpt, qid = self.defer("now")
        other, other_qid = self.defer("later")
        sink = peer.SmtpSink("127.0.0.1", self.PORT,
                             os.path.join(t.tmp, "sink-%s"
                                          % uuid.uuid4().hex[:6]))
        sink.start()
        self.addCleanup(sink.stop)
        ternqueue(t, "-i", qid, user=user)
        [dump] = sink.wait_messages(1)
        self.assertIn(b"X-Rcpt-Args: <%s>" % rcpt.encode(), dump)
        t.wait_for_log(r"%s: removed" % qid)
        # Only that one: the other still waits for its retry.
        self.assertIn(other_qid, t.queue_files("deferred"))
        self.assertEqual(len(sink.files()), 1)
        # Not in the queue (any more): EX_NOINPUT.
        res = ternqueue(t, "-i", qid, user=user, check=False)
        self.assertEqual(res.returncode, EX_NOINPUT, res.stderr)

    def test_flush_by_an_ordinary_user(self):
        user = self.user()
        t = self.tern
        since = t.log_size()
        ternqueue(t, "-f", user=user)
        t.wait_for_log(r"showq\[\d+\]: .*flush: requested by uid %d"
                       % user.pw_uid, since=since)
        t.wait_for_log(r"flush: \d+ deferred message\(s\) due now",
                       since=since)


class TernqueueUnauthorizedTest(TernqueueCase):
    """authorized_mailq_users and authorized_flush_users name nobody: a
    user sees the mail they submitted and nothing else, and cannot
    flush; root still sees everything."""

    @classmethod
    def configure(cls, tern):
        super().configure(tern)
        tern.conf_set(authorized_mailq_users="", authorized_flush_users="")

    def test_user_sees_only_own_mail(self):
        user = self.user()
        t = self.tern
        _, smtp_qid = self.defer()
        own = harness.place_queue_file(t, "hold", queue_file_with(
            user.pw_name + "@example.test", "own@" + HELD,
            [("protocol", "local"), ("uid", str(user.pw_uid))]))
        foreign = harness.place_queue_file(t, "hold", queue_file_with(
            "root@example.test", "foreign@" + HELD,
            [("protocol", "local"), ("uid", "0")]))
        res = ternqueue(t, "-j", user=user)
        ids = [json.loads(line)["queue_id"] for line in
               res.stdout.splitlines()]
        self.assertEqual(ids, [own])
        res = ternqueue(t, "-p", user=user)
        self.assertEqual(list(mailq_blocks(res.stdout)), [own + "!"])
        res = ternqueue(t, "-j")
        ids = {json.loads(line)["queue_id"] for line in
               res.stdout.splitlines()}
        self.assertTrue({own, foreign, smtp_qid} <= ids, ids)

    def test_user_may_not_flush(self):
        user = self.user()
        t = self.tern
        _, qid = self.defer()
        for args in (["-f"], ["-s", HELD], ["-i", qid]):
            res = ternqueue(t, *args, user=user, check=False)
            self.assertEqual(res.returncode, EX_NOPERM, (args, res.stderr))
            self.assertIn("not allowed to flush the mail queue", res.stderr)
        # root always may.
        ternqueue(t, "-f")


class TernqueueDownTest(TernqueueCase):
    """With tern stopped root lists the queue itself; a user is told the
    mail system is down."""

    def test_stopped(self):
        user = self.user()
        t = self.tern
        _, qid = self.defer()
        t.stop()
        res = ternqueue(t, "-p")
        self.assertIn("Mail system is down -- accessing queue directly",
                      res.stderr)
        self.assertIn(qid, mailq_blocks(res.stdout))
        res = ternqueue(t, "-j")
        self.assertIn(qid, [json.loads(line)["queue_id"]
                            for line in res.stdout.splitlines()])
        for args in (["-p"], ["-j"], ["-f"]):
            res = ternqueue(t, *args, user=user, check=False)
            self.assertEqual(res.returncode, EX_UNAVAILABLE,
                             (args, res.stderr))
            self.assertIn("mail system is down", res.stderr)
        res = ternqueue(t, "-f", check=False)
        self.assertEqual(res.returncode, EX_UNAVAILABLE, res.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
