# SPDX-License-Identifier: MIT
"""pickup(8): files in maildrop/ become queue messages through cleanup,
never by a rename. These tests write maildrop files the way terndrop does
(and the ways an attacker or a crash would), owned by an ordinary user,
and check what is delivered, what is refused into corrupt/, and that a
file queued before a crash is not queued twice. sendmail and terndrop
themselves are tested in test_sendmail.py."""

import os
import re
import struct
import time

import harness
from harness import (TernTestCase, queue_file_records, queue_id,
                     queue_record, skip_unless_root, wait_until)

READY = 0o544      # owner-execute: terndrop finished the file
WRITING = 0o600


def maildrop_file(sender, rcpts, content, attrs=(), rcpt_status=b"R",
                  extra=b"", arrival=None):
    """A maildrop file as terndrop writes it (lib/mail/qfile.h records);
    content has LF or CRLF line ends."""
    now = arrival if arrival is not None else time.time()
    out = queue_record(b"V", b"TERNQ1")
    out += queue_record(b"T", ("%d.%06d" % (int(now), int(now % 1 * 1e6)))
                        .encode())
    out += queue_record(b"S", sender.encode())
    for a in attrs:
        out += queue_record(b"A", a.encode())
    for r in rcpts:
        out += queue_record(rcpt_status, r.encode() + b"\0\0" + b"0")
    out += extra
    out += queue_record(b"M", content)
    out += queue_record(b"E", b"")
    return out


def attrs_of(data):
    return dict(p.decode().split("=", 1)
                for t, p in queue_file_records(data) if t == "A")


class PickupTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        tern.conf_set(header_checks="pcre:%s/header_checks" % tern.dir,
                      minimal_backoff_time="1", maximal_backoff_time="2",
                      queue_run_delay="1")
        with open(os.path.join(tern.dir, "header_checks"), "w") as f:
            f.write("/^Subject: hold me/ HOLD held by test\n"
                    "/^Subject: reject me/ REJECT no thanks\n")

    def setUp(self):
        super().setUp()
        skip_unless_root("maildrop files owned by another user")
        self.t = self.tern
        if not hasattr(type(self), "user"):
            type(self).user = self.t.create_system_user()

    def drop(self, data, mode=READY, uid=None, mid=None):
        """Writes maildrop/ID owned by the test user (or uid); returns ID."""
        mid = mid or queue_id()
        path = os.path.join(self.t.queue_dir, "maildrop", mid)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, WRITING)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chown(path, self.user.pw_uid if uid is None else uid,
                 self.user.pw_gid)
        os.chmod(path, mode)
        return mid

    def rcpt(self, tag):
        addr = "%s%s@%s" % (tag, queue_id().lower()[:8],
                            harness.VIRTUAL_DOMAIN)
        self.t.add_user(addr, "pw")
        return addr

    def delivered(self, addr, count=1):
        files = self.t.wait_for_maildir(self.t.virtual_maildir(addr), count)
        return [open(p, "rb").read() for p in files]

    def test_user_file_is_delivered_with_local_headers(self):
        to = self.rcpt("pk")
        mid = self.drop(maildrop_file(
            "someone", [to], b"Subject: local\n\nbody line\n",
            attrs=("fullname=Some One",)))
        msg = self.delivered(to)[0]
        myhostname = self.t.conf_get("myhostname")
        myorigin = self.t.conf_get("myorigin") or myhostname
        # The submitter is the file's owner, not what the file says.
        self.assertRegex(msg, rb"Received: by %s \(tern, from userid %d\)"
                         % (re.escape(myhostname.encode()), self.user.pw_uid))
        self.assertIn(b"From: Some One <someone@%s>" % myorigin.encode(),
                      msg)
        self.assertRegex(msg, rb"\nMessage-ID: <")
        self.assertRegex(msg, rb"\nDate: ")
        self.assertIn(b"Return-Path: <someone@%s>" % myorigin.encode(), msg)
        self.assertIn(b"\nbody line\n", msg)
        self.t.wait_for_log(r"%s: uid=%d from=<someone@" %
                            (mid, self.user.pw_uid))
        wait_until(lambda: mid not in self.t.queue_files("maildrop"), 10,
                   "the maildrop file to go")

    def test_unfinished_file_waits_until_ready(self):
        to = self.rcpt("wait")
        mid = self.drop(maildrop_file("w", [to], b"Subject: x\n\nx\n"),
                        mode=WRITING)
        other = self.rcpt("after")
        self.drop(maildrop_file("w", [other], b"Subject: y\n\ny\n"))
        # A later ready file goes through; the unfinished one stays.
        self.delivered(other)
        self.assertIn(mid, self.t.queue_files("maildrop"))
        self.assertEqual(harness.maildir_count(self.t.virtual_maildir(to)),
                         0)
        # terndrop's final chmod is the signal (inotify), no rescan wait.
        os.chmod(os.path.join(self.t.queue_dir, "maildrop", mid), READY)
        self.delivered(to)

    def test_planted_envelope_is_not_honoured(self):
        to = self.rcpt("plant")
        done = self.rcpt("done")
        # Attributes a user must not set, a recipient pre-marked as
        # delivered, and a HOLD header so the queue file can be read.
        data = maildrop_file(
            "planter", [to], b"Subject: hold me\n\nx\n",
            attrs=("client_addr=192.0.2.66", "notice=bounce",
                   "sasl_username=admin", "uid=0", "maildrop_id=X",
                   "envid=ok-envid"),
            extra=queue_record(b"D", done.encode() + b"\0\0" + b"0"))
        mid = self.drop(data)
        held = os.path.join(self.t.queue_dir, "hold", mid)
        wait_until(lambda: os.path.exists(held), harness.DELIVERY_TIMEOUT,
                   "the message in hold/")
        with open(held, "rb") as f:
            q = f.read()
        a = attrs_of(q)
        self.assertEqual(a.get("uid"), str(self.user.pw_uid))
        self.assertEqual(a.get("maildrop_id"), mid)
        self.assertEqual(a.get("protocol"), "local")
        self.assertEqual(a.get("envid"), "ok-envid")
        for bad in ("client_addr", "notice", "sasl_username"):
            self.assertNotIn(bad, a)
        recs = [(t, p.split(b"\0")[0].decode())
                for t, p in queue_file_records(q) if t in "RDF"]
        self.assertEqual(recs, [("R", to)])
        st = os.stat(held)
        self.assertEqual(st.st_uid, os.stat(self.t.queue_dir + "/hold")
                         .st_uid, "the queue file is tern's, not the user's")

    def test_malformed_files_go_to_corrupt(self):
        pid = self.t.pids("pickup")
        good = maildrop_file("m", [self.rcpt("c")], b"Subject: c\n\nc\n")
        cases = {
            "truncated": good[:len(good) - 9],
            "garbage": b"\x00\xffnot a queue file at all",
            "bad length": good[:12] + struct.pack(">I", 1 << 30) + good[16:],
            "no recipient address": maildrop_file(
                "m", ["bad address@@x"], b"x\n"),
        }
        mids = {self.drop(data): why for why, data in cases.items()}
        for mid, why in mids.items():
            wait_until(lambda: os.path.exists(
                os.path.join(self.t.queue_dir, "corrupt", mid)),
                harness.DELIVERY_TIMEOUT, "%s (%s) in corrupt/" % (mid, why))
            self.t.wait_for_log(r"%s: malformed maildrop file moved to "
                                r"corrupt/" % mid)
        # pickup lived through all of it and still works.
        self.assertEqual(self.t.pids("pickup"), pid)
        to = self.rcpt("alive")
        self.drop(maildrop_file("m", [to], b"Subject: ok\n\nok\n"))
        self.delivered(to)

    def test_rejected_local_mail_bounces_to_sender(self):
        sender = self.rcpt("snd")
        to = self.rcpt("rj")
        mid = self.drop(maildrop_file(sender, [to],
                                      b"Subject: reject me\n\nx\n"))
        self.t.wait_for_log(r"%s: rejected: .*no thanks" % mid)
        notice = self.delivered(sender)[0]
        self.assertIn(b"no thanks", notice)
        self.assertEqual(harness.maildir_count(self.t.virtual_maildir(to)),
                         0)

    def test_queued_before_a_crash_is_not_queued_twice(self):
        """pickup died after committing incoming/ID (here: hold/ID, which
        qmgr leaves alone) and before unlinking maildrop/ID: the restarted
        pickup removes the maildrop copy and queues nothing."""
        to = self.rcpt("twice")
        data = maildrop_file("c", [to], b"Subject: hold me\n\nonce\n")
        mid = self.drop(data)
        held = os.path.join(self.t.queue_dir, "hold", mid)
        wait_until(lambda: os.path.exists(held), harness.DELIVERY_TIMEOUT,
                   "the message in hold/")
        # The crash: the maildrop file is back, as if never unlinked.
        since = self.t.log_size()
        self.drop(data, mid=mid)
        self.t.wait_for_log(r"%s: already queued; removing the maildrop "
                            r"copy" % mid, since=since)
        self.assertEqual(self.t.queue_files("maildrop"), [])
        self.assertEqual([f for f in self.t.queue_files("hold")
                          if f == mid], [mid])
        self.assertEqual(self.t.queue_files("incoming"), [])

    def test_requeued_queue_file_keeps_its_envelope(self):
        """A file owned by mail_owner with a protocol attribute is a
        requeued queue file (ternsuper -r): arrival time, attributes and
        content are kept; no second Received:."""
        to = self.rcpt("rq")
        st = os.stat(os.path.join(self.t.queue_dir, "incoming"))
        arrival = time.time() - 3600
        content = (b"Received: from a (a [192.0.2.1]) by b; x\r\n"
                   b"Subject: requeued\r\n\r\nold body\r\n")
        data = maildrop_file("orig@example.org", [to], content,
                             attrs=("client_addr=192.0.2.1",
                                    "protocol=ESMTP"),
                             arrival=arrival)
        mid = self.drop(data, uid=st.st_uid)
        msg = self.delivered(to)[0]
        self.assertEqual(msg.count(b"Received:"), 1)
        self.assertIn(b"Return-Path: <orig@example.org>", msg)
        self.assertNotIn(b"\nFrom:", msg)  # nothing added
        self.t.wait_for_log(r"%s: requeued" % mid)

    def test_mail_dropped_while_stopped_is_delivered_at_start(self):
        t = self.new_instance(start=False)
        pw = self.user
        to = "st%s@%s" % (queue_id().lower()[:8], harness.VIRTUAL_DOMAIN)
        t.add_user(to, "pw")
        saved, self.t = self.t, t
        try:
            self.drop(maildrop_file("s", [to], b"Subject: s\n\ns\n"))
        finally:
            self.t = saved
        del pw
        t.start()
        t.wait_for_maildir(t.virtual_maildir(to), 1)

    def test_kill_9_during_pickup_loses_and_repeats_nothing(self):
        to = self.rcpt("k9")
        n = 40
        for i in range(n):
            self.drop(maildrop_file(
                "k", [to], b"Subject: k9 %d\n\nmessage %d\n" % (i, i)))
        for _ in range(4):
            pids = wait_until(lambda: self.t.pids("pickup"), 30,
                              "a pickup process")
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            wait_until(lambda: self.t.pids("pickup") not in ([], pids), 30,
                       "master to start pickup again")
        msgs = self.delivered(to, n)
        self.t.wait_queue_empty(("maildrop", "incoming", "active"))
        msgs = [open(p, "rb").read() for p in harness.maildir_files(
            self.t.virtual_maildir(to))]
        subjects = sorted(re.search(rb"Subject: (k9 \d+)", m).group(1)
                          for m in msgs)
        self.assertEqual(subjects,
                         sorted(b"k9 %d" % i for i in range(n)))
