# SPDX-License-Identifier: MIT
"""ternsuper (postsuper) and terncat (postcat) against a running
instance: hold, release and delivery; delete ALL deferred; IDs on
standard input; requeue after a transport_maps change; the queue check
(-s) with garbage, wrong modes, stale tmp/ files and orphaned status
logs; deleting a message qmgr is delivering, without a crash and
without a delivery; terncat's sections by ID and by path; both refused
to an ordinary user.

Mail is deferred by routing it (transport_maps) to a port where nothing
listens (smtp:[127.0.0.1]:9), or by a scripted peer that answers 450
once; delivered mail goes to scripted peers on 127.0.0.9x."""

import os
import re
import time
import uuid

import harness
import peer
from harness import TernTestCase, make_message, run, smtp_send, wait_until

SENDER = "sender@example.org"
PEER_ADDR = "127.0.0.91"     # answers; a rule defers once
STALL_ADDR = "127.0.0.92"    # says nothing to MAIL: a delivery in flight
NEW_ADDR = "127.0.0.93"      # where requeued mail goes after the change
PORT = None


def unique(tag, domain):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], domain)


def transport_maps(requeue_to="smtp:[127.0.0.1]:9"):
    return ("inline:{ dead.test=smtp:[127.0.0.1]:9, "
            "peer.test=smtp:[%s]:%d, stall.test=smtp:[%s]:%d, "
            "move.test=%s }" % (PEER_ADDR, PORT, STALL_ADDR, PORT,
                                requeue_to))


class SuperTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        global PORT
        PORT = harness.find_free_port()
        tern.conf_set(mynetworks="127.0.0.1/32", myhostname="tern-super.test",
                      transport_maps=transport_maps(),
                      smtp_mail_timeout="3", smtp_connect_timeout="3",
                      smtp_connection_reuse_time="0")

    # ----- helpers

    def ternsuper(self, *args, input=None, check=True):
        return run([harness.SBIN_DIR + "/ternsuper", "-c", self.tern.dir]
                   + list(args), input=input, check=check)

    def terncat(self, *args, check=True):
        return run([harness.SBIN_DIR + "/terncat", "-c", self.tern.dir]
                   + list(args), check=check)

    def peer(self, addr):
        p = peer.ScriptedPeer(addr, PORT)
        p.start()
        self.addCleanup(p.stop)
        return p

    def send(self, rcpt, subject="super", body=b"hello\n"):
        _, msg = make_message(SENDER, rcpt, subject=subject, body=body)
        return smtp_send(self.tern.smtp_port, SENDER, [rcpt], msg)

    def deferred(self, domain="dead.test", subject="super"):
        """A message for domain, once it is in deferred/."""
        since = self.tern.log_size()
        qid = self.send(unique("u", domain), subject=subject)
        self.tern.wait_for_log(r"%s: deferred" % qid, since=since)
        wait_until(lambda: qid in self.tern.queue_files("deferred"), 10,
                   "%s in deferred/" % qid)
        return qid

    def where(self, qid):
        return [q for q in ("incoming", "active", "deferred", "hold",
                            "corrupt", "maildrop")
                if qid in self.tern.queue_files(q)]

    def flush_and_wait(self):
        since = self.tern.log_size()
        self.tern.tern("flush")
        self.tern.wait_for_log(r"flush: \d+ deferred message\(s\) due now",
                               since=since, timeout=15)

    # ----- tests

    def test_hold_release_delivered(self):
        p = self.peer(PEER_ADDR)
        p.rule("RCPT", "450 4.2.1 try later", times=1)
        qid = self.deferred("peer.test")
        res = self.ternsuper("-h", qid)
        self.assertIn("ternsuper: %s: placed on hold" % qid, res.stderr)
        self.assertIn("ternsuper: Placed on hold: 1 message\n", res.stderr)
        self.assertEqual(self.where(qid), ["hold"])
        self.tern.wait_for_log(r"ternsuper\[\d+\]: Placed on hold: 1 message")
        # A flush makes deferred mail due; the held message stays put.
        self.flush_and_wait()
        self.assertEqual(self.where(qid), ["hold"])
        self.assertEqual(p.transactions, [])
        res = self.ternsuper("-H", qid)
        self.assertIn("ternsuper: Released from hold: 1 message\n",
                      res.stderr)
        [tx] = p.wait_messages(1)
        self.assertIn(b"Subject: super", tx.data)
        self.tern.wait_for_log(r"%s: removed" % qid)
        self.assertEqual(self.where(qid), [])

    def test_delete_all_deferred(self):
        qids = [self.deferred() for _ in range(3)]
        status = os.path.join(self.tern.queue_dir, "status")
        self.assertTrue(all(os.path.exists(os.path.join(status, q))
                            for q in qids))
        res = self.ternsuper("-d", "ALL", "deferred")
        m = re.search(r"^ternsuper: Deleted: (\d+) messages$", res.stderr,
                      re.M)
        self.assertTrue(m, res.stderr)
        self.assertGreaterEqual(int(m.group(1)), 3)
        for q in qids:
            self.assertEqual(self.where(q), [])
            self.assertFalse(os.path.exists(os.path.join(status, q)))
            self.assertIn("ternsuper: %s: removed" % q, res.stderr)

    def test_delete_ids_from_stdin(self):
        a, b = self.deferred(), self.deferred()
        res = self.ternsuper("-d", "-",
                             input=("%s\n%s\nNOT-AN-ID\n" % (a, b)).encode())
        self.assertIn("ternsuper: Deleted: 2 messages\n", res.stderr)
        self.assertIn("invalid mail queue id: NOT-AN-ID", res.stderr)
        self.assertEqual(self.where(a) + self.where(b), [])
        # Gone is gone: a second time counts nothing.
        res = self.ternsuper("-d", a)
        self.assertIn("ternsuper: Deleted: 0 messages\n", res.stderr)

    def test_requeue_after_transport_change(self):
        if not os.path.exists(os.path.join(harness.DAEMON_DIR, "pickup")):
            self.skipTest("no pickup daemon in this build yet")
        t = self.tern
        p = self.peer(NEW_ADDR)
        rcpt = unique("r", "move.test")
        since = t.log_size()
        qid = self.send(rcpt, subject="requeue me")
        t.wait_for_log(r"%s: deferred" % qid, since=since)
        old_qmgr = t.pids("qmgr")
        t.conf_set(transport_maps=transport_maps(
            "smtp:[%s]:%d" % (NEW_ADDR, PORT)))
        try:
            t.reload()
            wait_until(lambda: t.pids("qmgr") and
                       t.pids("qmgr") != old_qmgr, 30, "a new qmgr")
            res = self.ternsuper("-r", "ALL")
            self.assertIn("ternsuper: %s: requeued" % qid, res.stderr)
            self.assertRegex(res.stderr, r"ternsuper: Requeued: \d+ messages?")
            # pickup queues it again (under the same ID) through cleanup.
            t.wait_for_log(r"pickup\[\d+\]: %s: requeued" % qid)
            [tx] = p.wait_messages(1)
            self.assertEqual(tx.rcpt_addrs, [rcpt])
            self.assertIn(b"Subject: requeue me", tx.data)
            t.wait_for_log(r"qmgr\[\d+\]: %s: removed" % qid)
            self.assertEqual(self.where(qid), [])
        finally:
            t.conf_set(transport_maps=transport_maps())
            t.reload()

    def test_check_repairs_the_queue(self):
        t = self.tern
        qdir = t.queue_dir
        owner = os.stat(os.path.join(qdir, "deferred"))
        # Garbage under a queue ID, and a name that is no queue ID.
        garbage = harness.queue_id()
        path = os.path.join(qdir, "deferred", garbage)
        with open(path, "wb") as f:
            f.write(b"this is not a queue file\n")
        os.chown(path, owner.st_uid, owner.st_gid)
        junk = os.path.join(qdir, "deferred", "junk.txt")
        with open(junk, "wb") as f:
            f.write(b"junk")
        # A good message in hold/ with a wrong owner and mode.
        good = harness.place_queue_file(t, "hold", harness.queue_file(
            SENDER, [("x@dead.test", b"R")], b"Subject: x\r\n\r\nx\r\n"))
        gpath = os.path.join(qdir, "hold", good)
        os.chown(gpath, 0, 0)
        os.chmod(gpath, 0o644)
        # What a killed writer left in tmp/, and a fresh one left alone.
        stale, fresh = harness.queue_id(), harness.queue_id()
        for name in (stale, fresh):
            with open(os.path.join(qdir, "tmp", name), "wb") as f:
                f.write(b"V")
            os.chown(os.path.join(qdir, "tmp", name), owner.st_uid,
                     owner.st_gid)
        old = time.time() - 3600
        os.utime(os.path.join(qdir, "tmp", stale), (old, old))
        # A status log whose message is long gone.
        orphan = harness.queue_id()
        opath = os.path.join(qdir, "status", orphan)
        with open(opath, "wb") as f:
            f.write(b"")
        os.chown(opath, owner.st_uid, owner.st_gid)
        os.utime(opath, (old, old))

        res = self.ternsuper("-s")
        self.assertIn("deferred/%s: " % garbage, res.stderr)
        self.assertIn("moved to corrupt/%s" % garbage, res.stderr)
        self.assertIn(garbage, t.queue_files("corrupt"))
        self.assertNotIn(garbage, t.queue_files("deferred"))
        self.assertNotIn("junk.txt", t.queue_files("deferred"))
        self.assertIn("deferred/junk.txt: name is not a queue ID; moved to "
                      "corrupt/", res.stderr)
        st = os.stat(gpath)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777),
                         (owner.st_uid, owner.st_gid, 0o600))
        self.assertNotIn(stale, t.queue_files("tmp"))
        self.assertIn(fresh, t.queue_files("tmp"))
        self.assertFalse(os.path.exists(opath))
        t.wait_for_log(r"ternsuper\[\d+\]: warning: deferred/%s: " % garbage)
        # Repaired: a second check finds nothing to say.
        res = self.ternsuper("-s")
        self.assertEqual(res.stderr, "")
        os.unlink(os.path.join(qdir, "tmp", fresh))
        self.ternsuper("-d", good)

    def test_delete_active_message(self):
        """qmgr has the message out to a peer that says nothing: the
        delete waits for that delivery to end, qmgr keeps running, and
        the message is never delivered."""
        t = self.tern
        p = self.peer(STALL_ADDR)
        p.rule("MAIL", peer.SILENT)
        qid = self.send(unique("s", "stall.test"), subject="deleted")
        wait_until(lambda: "MAIL" in [v for v, _ in p.commands], 15,
                   "the agent in session with the peer")
        self.assertEqual(self.where(qid), ["active"])
        qmgr = t.pids("qmgr")
        since = t.log_size()
        res = self.ternsuper("-d", qid)
        self.assertIn("ternsuper: Deleted: 1 message\n", res.stderr)
        # The request in flight is qmgr's to wait for.
        self.assertIn("ternsuper: %s: removed (when its deliveries in "
                      "progress end)" % qid, res.stderr)
        t.wait_for_log(r"qmgr\[\d+\]: %s: delete requested" % qid,
                       since=since)
        t.wait_for_log(r"qmgr\[\d+\]: %s: removed" % qid, since=since)
        self.assertEqual(self.where(qid), [])
        self.assertEqual(t.pids("qmgr"), qmgr)
        # The peer answers now; the next message goes through, the
        # deleted one never does.
        p.clear_rules()
        self.flush_and_wait()
        marker = self.send(unique("m", "stall.test"), subject="marker")
        [tx] = p.wait_messages(1)
        self.assertIn(b"Subject: marker", tx.data)
        t.wait_for_log(r"%s: removed" % marker)
        self.assertEqual(len(p.transactions), 1)
        self.assertNotIn(b"Subject: deleted", tx.data)

    def test_terncat_sections(self):
        t = self.tern
        qid = self.deferred(subject="cat me")
        res = self.terncat("-e", qid)
        path = os.path.join(t.queue_dir, "deferred", qid)
        self.assertTrue(res.stdout.startswith(
            "*** ENVELOPE RECORDS %s ***\n" % path), res.stdout)
        self.assertIn("\nsender: %s\n" % SENDER, res.stdout)
        self.assertRegex(res.stdout, r"\nrecipient: u[0-9a-f]{8}@dead\.test "
                         r"\(status: pending; notify: default\)\n")
        self.assertRegex(res.stdout, r"\nmessage_arrival_time: \w{3} \w{3} ")
        self.assertIn("\nnamed_attribute: ", res.stdout)
        self.assertIn("*** MESSAGE FILE END %s ***\n" % path, res.stdout)
        self.assertNotIn("Subject: cat me", res.stdout)
        head = self.terncat("-h", qid).stdout
        self.assertIn("\nSubject: cat me\n", head)
        self.assertNotIn("hello", head)
        self.assertNotIn("\r", head)
        body = self.terncat("-b", qid).stdout
        self.assertEqual(body, "\nhello\n")
        whole = self.terncat(qid).stdout
        self.assertIn("*** MESSAGE CONTENTS %s ***\n" % path, whole)
        self.assertIn("Subject: cat me\n", whole)
        self.assertIn(head + body, whole)
        # By path, the same as by ID.
        self.assertEqual(self.terncat(path).stdout, whole)
        self.ternsuper("-d", qid)

    def test_terncat_malformed_file(self):
        t = self.tern
        data = harness.queue_file(SENDER, [("y@dead.test", b"R")],
                                  b"Subject: y\r\n\r\ny\r\n")
        # The recipient record's length runs past the limit.
        cut = data.index(b"R\0\0")
        bad = data[:cut] + b"R\xff\xff\xff\xff" + b"garbage"
        qid = harness.queue_id()
        path = os.path.join(t.queue_dir, "corrupt", qid)
        with open(path, "wb") as f:
            f.write(bad)
        res = self.terncat(path, check=False)
        self.assertEqual(res.returncode, 65, res.output)
        self.assertIn("sender: %s\n" % SENDER, res.stdout)
        self.assertIn("*** BROKEN QUEUE FILE %s: " % path, res.stdout)
        self.assertIn("record length", res.stderr)
        self.assertEqual(self.terncat(harness.queue_id(),
                                      check=False).returncode, 66)
        os.unlink(path)

    def test_ordinary_user_refused(self):
        harness.skip_unless_root("creating an ordinary user to run as")
        pw = self.tern.create_system_user()
        cmd = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
               "--init-groups", "--reset-env"]
        env = {k: v for k, v in os.environ.items()
               if k.endswith("SAN_OPTIONS")}
        env.update(HOME=pw.pw_dir, USER=pw.pw_name, PATH="/usr/bin:/bin")
        res = run(cmd + [harness.SBIN_DIR + "/ternsuper", "-c", self.tern.dir,
                         "-d", "ALL"], check=False, env=env)
        self.assertEqual(res.returncode, 77, res.output)
        self.assertIn("reserved for the superuser", res.stderr)
        res = run(cmd + [harness.SBIN_DIR + "/terncat", "-c", self.tern.dir,
                         harness.queue_id()], check=False, env=env)
        self.assertEqual(res.returncode, 77, res.output)


class SuperUsageTest(TernTestCase):
    start_instance = False

    def test_usage(self):
        t = self.tern
        for args in ([], ["-d"], ["-x"], ["-d", "ALL", "nosuchqueue"]):
            res = run([harness.SBIN_DIR + "/ternsuper", "-c", t.dir] + args,
                      check=False)
            self.assertEqual(res.returncode, 64, (args, res.output))
        res = run([harness.SBIN_DIR + "/terncat", "-c", t.dir], check=False)
        self.assertEqual(res.returncode, 64, res.output)
