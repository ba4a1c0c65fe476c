# SPDX-License-Identifier: MIT
"""Zero loss, zero duplicates under SIGKILL: messages are injected over
SMTP while the queue manager and the local delivery agents are killed at
random moments; afterwards every accepted message is in its maildir
exactly once. TERN_CRASH_MESSAGES scales the run (default 10,000)."""

import collections
import os
import random
import signal
import smtplib
import threading
import time
import uuid

import harness
from harness import TernTestCase, to_crlf, wait_until

MESSAGES = int(os.environ.get("TERN_CRASH_MESSAGES", "10000"))
SESSIONS = 8
USERS = 6
# A message carries one to three recipients.
MAX_RCPTS = 3
KILL_MIN, KILL_MAX = 0.2, 1.5
DRAIN_TIMEOUT = 600
DRAIN_KILLS = 40


def message_id_of(data):
    for line in data.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
        if not line.strip():
            break
    return None


class CrashTest(TernTestCase):

    @classmethod
    def configure(cls, tern):
        tern.conf_set(minimal_backoff_time="1", maximal_backoff_time="2",
                      queue_run_delay="1", transport_retry_time="1")

    def test_kill_qmgr_and_local_at_random(self):
        t = self.tern
        users = ["crash%d%s@%s" % (i, uuid.uuid4().hex[:6],
                                   harness.VIRTUAL_DOMAIN)
                 for i in range(USERS)]
        for u in users:
            t.add_user(u, "pw")
        rng = random.Random(int(os.environ.get("TERN_CRASH_SEED", "7")))
        plan = []
        for i in range(MESSAGES):
            rcpts = rng.sample(users, rng.randint(1, MAX_RCPTS))
            plan.append(("<crash%d.%s@test>" % (i, uuid.uuid4().hex), rcpts))
        accepted = collections.Counter()
        lock = threading.Lock()
        errors = []

        def sender(part):
            s = None
            try:
                s = smtplib.SMTP("127.0.0.1", t.smtp_port,
                                 timeout=harness.SMTP_TIMEOUT)
                s.ehlo("crash.example.org")
                for mid, rcpts in part:
                    msg = ("From: <s@example.org>\nTo: <%s>\nSubject: c\n"
                           "Message-ID: %s\n\nbody\n" % (rcpts[0], mid))
                    s.sendmail("s@example.org", rcpts,
                               to_crlf(msg.encode()) + b"\r\n")
                    with lock:
                        for r in rcpts:
                            accepted[(mid, r)] += 1
                s.quit()
            except Exception as e:  # reported below, never swallowed
                errors.append(repr(e))

        threads = [threading.Thread(target=sender,
                                    args=(plan[i::SESSIONS],))
                   for i in range(SESSIONS)]
        for th in threads:
            th.start()
        kills = collections.Counter()
        expected = sum(len(r) for _, r in plan)

        def stored():
            return sum(harness.maildir_count(t.virtual_maildir(u))
                       for u in users)
        # Kills go on while mail is sent and while it drains, a bounded
        # number of times.
        drain_kills = 0
        while any(th.is_alive() for th in threads) or (
                drain_kills < DRAIN_KILLS and stored() < expected):
            if not any(th.is_alive() for th in threads):
                drain_kills += 1
            time.sleep(rng.uniform(KILL_MIN, KILL_MAX))
            victims = rng.choice((["qmgr"], ["local"], ["qmgr", "local"]))
            for prog in victims:
                pids = t.pids(prog)
                if pids:
                    try:
                        os.kill(rng.choice(pids), signal.SIGKILL)
                        kills[prog] += 1
                    except ProcessLookupError:
                        pass
        for th in threads:
            th.join(harness.SMTP_TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(sum(accepted.values()),
                         sum(len(r) for _, r in plan))

        def delivered():
            got = collections.Counter()
            for u in users:
                for p in (harness.maildir_files(t.virtual_maildir(u)) +
                          harness.maildir_files(t.virtual_maildir(u), "cur")):
                    with open(p, "rb") as f:
                        got[(message_id_of(f.read()), u)] += 1
            return got

        wait_until(lambda: len(delivered()) >= len(accepted), DRAIN_TIMEOUT,
                   "every accepted message delivered")
        t.wait_queue_empty(("incoming", "active", "deferred"),
                           timeout=DRAIN_TIMEOUT)
        got = delivered()
        missing = [k for k in accepted if got[k] == 0]
        dups = {k: n for k, n in got.items() if n > 1}
        print("crash test: %d messages, %d deliveries, kills %s, "
              "missing %d, duplicates %d"
              % (MESSAGES, sum(accepted.values()), dict(kills),
                 len(missing), sum(n - 1 for n in dups.values())))
        self.assertEqual(missing, [])
        self.assertEqual(dups, {})
        self.assertGreater(kills["qmgr"] + kills["local"], 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
