# SPDX-License-Identifier: MIT
"""Mail is never lost: every daemon survives kill -9 of any other, and an
accepted message arrives (at least once) whatever is killed while it is in
the queue. Also the optional chroot of services.conf, used for real."""

import os
import signal
import threading
import time
import uuid

import harness
from harness import TernTestCase, make_message, smtp_send, wait_until

SENDER = "load@example.org"
RCPT = "carol@example.test"
SESSIONS = 3
PER_SESSION = 40
KILL_ROUNDS = 3
SETTLE_TIMEOUT = 90


def markers_in(maildir):
    """Count of each X-Marker value found in the maildir's new/."""
    seen = {}
    for data in harness.read_maildir(maildir):
        for line in data.split(b"\n"):
            if line.startswith(b"X-Marker: "):
                key = line[len(b"X-Marker: "):].decode()
                seen[key] = seen.get(key, 0) + 1
                break
    return seen


class KillUnderLoadTest(TernTestCase):
    class_instance = False

    def send_batch(self, port, markers, errors):
        try:
            for _ in range(PER_SESSION):
                marker = uuid.uuid4().hex
                msg = b"X-Marker: %s\n" % marker.encode() + make_message(
                    SENDER, RCPT, subject="load " + marker)[1]
                smtp_send(port, SENDER, [RCPT], msg)
                # Only a 250 makes the message ours to keep.
                markers.append(marker)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    def test_kill_9_qmgr_and_local_under_load_loses_nothing(self):
        t = self.new_instance(configure=lambda i: i.add_user(RCPT, "pw-c"))
        maildir = t.virtual_maildir(RCPT)
        markers, errors = [], []
        senders = [threading.Thread(target=self.send_batch,
                                    args=(t.smtp_port, markers, errors))
                   for _ in range(SESSIONS)]
        for s in senders:
            s.start()
        killed = 0
        for _ in range(KILL_ROUNDS):
            time.sleep(0.3)
            for prog in ("qmgr", "local"):
                for pid in t.pids(prog):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        for s in senders:
            s.join(120)
            self.assertFalse(s.is_alive(), "a sender thread hung")
        self.assertEqual(errors, [])
        self.assertGreater(killed, 0)
        want = set(markers)
        self.assertEqual(len(want), SESSIONS * PER_SESSION)
        wait_until(lambda: want <= set(markers_in(maildir)), SETTLE_TIMEOUT,
                   "every accepted message in %s" % maildir)
        # Duplicates are allowed (at-least-once), losses and strays are not.
        self.assertEqual(set(markers_in(maildir)), want)
        t.wait_queue_empty(("incoming", "active", "deferred"),
                           timeout=SETTLE_TIMEOUT)
        # master saw the kills and brought both back (after its backoff).
        for prog in ("qmgr", "local"):
            t.wait_for_log(r"process \S*/%s pid \d+ killed by signal 9"
                           % prog)
            wait_until(lambda: t.pids(prog), 30, "master to restart " + prog)

    def test_kill_9_master_stops_daemons_and_restart_delivers(self):
        t = self.new_instance(configure=lambda i: i.add_user(RCPT, "pw-c"))
        maildir = t.virtual_maildir(RCPT)
        daemons = [p for p in t.pids() if p != t.master_pid()]
        self.assertTrue(daemons)
        os.kill(t.master_pid(), signal.SIGKILL)
        # The lifeline pipe closes: no daemon keeps serving without master.
        wait_until(lambda: not t.pids(), 30,
                   "daemons to exit after master was killed")
        self.assertEqual(t.status().returncode, 1)
        t.start()
        smtp_send(t.smtp_port, SENDER, [RCPT],
                  make_message(SENDER, RCPT, subject="after master kill")[1])
        t.wait_for_maildir(maildir, 1)


class GracefulStopTest(TernTestCase):
    class_instance = False
    ROUNDS = 6
    PER_ROUND = 6

    def test_stop_right_after_250_delivers_exactly_once(self):
        """A graceful stop lets deliveries in flight be answered and
        marked: at-least-once may repeat a delivery after a crash, never
        after tern stop."""
        t = self.new_instance(configure=lambda i: i.add_user(RCPT, "pw-c"))
        maildir = t.virtual_maildir(RCPT)
        want = []
        for _ in range(self.ROUNDS):
            markers, errors = [], []

            def send_one():
                try:
                    marker = uuid.uuid4().hex
                    msg = b"X-Marker: %s\n" % marker.encode() + make_message(
                        SENDER, RCPT, subject="stop " + marker)[1]
                    smtp_send(t.smtp_port, SENDER, [RCPT], msg)
                    markers.append(marker)
                except Exception as e:
                    errors.append(e)
            senders = [threading.Thread(target=send_one)
                       for _ in range(self.PER_ROUND)]
            for th in senders:
                th.start()
            for th in senders:
                th.join(60)
            self.assertEqual(errors, [])
            want += markers
            # Stop while those messages are being delivered.
            t.stop()
            t.start()
        wait_until(lambda: set(want) <= set(markers_in(maildir)),
                   SETTLE_TIMEOUT, "every message in %s" % maildir)
        t.wait_queue_empty(("incoming", "active", "deferred"))
        seen = markers_in(maildir)
        self.assertEqual({m: n for m, n in seen.items() if n != 1}, {},
                         "delivered more than once after a graceful stop")
        self.assertEqual(set(seen), set(want))


class ChrootTest(TernTestCase):
    class_instance = False

    def test_qmgr_in_chroot_delivers(self):
        harness.skip_unless_root("chroot(2)")

        def configure(i):
            i.add_user(RCPT, "pw-c")
            i.edit_service("qmgr", 4, "y")
        with harness.leak_checks_off():
            t = self.new_instance(configure=configure)
        t.wait_ready()
        [qmgr] = t.pids("qmgr")
        self.assertEqual(os.readlink("/proc/%d/root" % qmgr),
                         os.path.realpath(t.queue_dir))
        self.assertEqual(t.process_user(qmgr), "tern")
        smtp_send(t.smtp_port, SENDER, [RCPT],
                  make_message(SENDER, RCPT, subject="chrooted qmgr")[1])
        t.wait_for_maildir(t.virtual_maildir(RCPT), 1)
        t.wait_queue_empty()


if __name__ == "__main__":
    import unittest
    unittest.main()
