# SPDX-License-Identifier: MIT
"""The auth service, through its socket $queue_directory/private/auth of a
real instance: answers, the delays of failed logins and how they grow and
stay apart, replies that overtake each other on one connection, the user
file's life (picked up when ternuser changes it, tempfail while it is
missing or unreadable), and, as root, who may read the password hashes:
auth runs as ternauth and is the only daemon besides root's that can."""

import os
import pwd
import random
import signal
import stat
import time
import uuid

import harness
from harness import AttrConn, TernTestCase, skip_unless_root, wait_until

# auth_failure_delay and auth_failure_delay_max of the test instance.
DELAY = 1.0
DELAY_MAX = 3.0
# A delayed answer comes no sooner than its delay (the timer starts after
# the request was read; times are in whole milliseconds) ...
EARLY = 0.02
# ... and no later than this after it: one SHA512-CRYPT check in a
# sanitized build, and scheduling.
SLACK = 0.75
# A right password is answered at once: under the smallest delay (a
# delayed answer takes at least DELAY), with room for one yescrypt check
# in a sanitized build on a loaded machine (0.55 s seen).
FAST = 0.85
# Deadline for any one reply (the largest delay is DELAY_MAX).
REPLY_TIMEOUT = 20
# The two kinds of failure must take the same time, within this.
SAME_DELAY = 0.4
AUTH_USER = "ternauth"


def new_user(tag):
    return "%s%s@%s" % (tag, uuid.uuid4().hex[:8], harness.VIRTUAL_DOMAIN)


def new_ip():
    """A client address no other test uses (failures count per address)."""
    return "10.%d.%d.%d" % tuple(random.randint(1, 254) for _ in range(3))


def proc_ids(pid):
    """{"Uid": (r, e, s, fs), "Gid": (r, e, s, fs), "Groups": (...)}."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = tuple(int(x) for x in rest.split())
    return out


class AuthCase(TernTestCase):
    """Requests to the class instance's auth service."""

    @classmethod
    def configure(cls, tern):
        tern.conf_set(auth_failure_delay="%ds" % DELAY,
                      auth_failure_delay_max="%ds" % DELAY_MAX)

    def setUp(self):
        super().setUp()
        # auth has loaded the user file and waits in its loop.
        self.tern.wait_ready()

    def path(self, t=None):
        return os.path.join((t or self.tern).queue_dir, "private", "auth")

    def request(self, user, password, addr, service="smtp", rid="1"):
        # A request without an id is a notice, which gets no answer.
        return [("id", rid), ("request", "auth"), ("service", service),
                ("user", user), ("password", password), ("client_addr", addr)]

    def auth(self, user, password, addr, service="smtp", t=None):
        """One request on a connection of its own: (reply dict, seconds)."""
        start = time.monotonic()
        with AttrConn(self.path(t), REPLY_TIMEOUT) as c:
            c.send(self.request(user, password, addr, service))
            reply = dict(c.reply())
        return reply, time.monotonic() - start

    def assertFailedAfter(self, result, delay):
        reply, took = result
        self.assertEqual(reply.get("status"), "fail", reply)
        self.assertNotIn("user", reply)
        self.assertGreaterEqual(took, delay - EARLY, reply)
        self.assertLess(took, delay + SLACK, reply)

    def assertOk(self, result, user):
        reply, took = result
        self.assertEqual(reply.get("status"), "ok", reply)
        self.assertEqual(reply.get("user"), user)
        self.assertLess(took, FAST, "a right password waited %.2f s" % took)


class AuthAnswerTest(AuthCase):

    def test_right_password_gives_ok_with_the_stored_name(self):
        t = self.tern
        user = new_user("Ok")
        password = "pw-%s" % uuid.uuid4().hex
        t.add_user(user, password)
        since = t.log_size()
        for service, spelled in (("smtp", user), ("pop3", user.upper()),
                                 ("imap", user.swapcase())):
            self.assertOk(self.auth(spelled, password, "192.0.2.10",
                                    service), user.lower())
        t.wait_for_log(r"auth\[\d+\]: ok: user=<%s>, rip=192\.0\.2\.10, "
                       r"service=imap" % user.lower(), since=since)
        self.assertNotIn(password, t.log())

    def test_wrong_password_and_unknown_user_get_the_same_delayed_fail(self):
        t = self.tern
        user = new_user("wrong")
        password = "pw-%s" % uuid.uuid4().hex
        t.add_user(user, password)
        since = t.log_size()
        wrong = self.auth(user, password + "x", new_ip())
        unknown = self.auth(new_user("nobody"), password, new_ip())
        self.assertFailedAfter(wrong, DELAY)
        self.assertFailedAfter(unknown, DELAY)
        # The same answer, in the same time: nothing tells them apart.
        self.assertEqual(wrong[0], unknown[0])
        self.assertLess(abs(wrong[1] - unknown[1]), SAME_DELAY)
        t.wait_for_log(r"failed: user=<%s>, .*service=smtp, failures=1, "
                       r"delay=1\.000s \(password mismatch\)"
                       % user.replace(".", r"\."), since=since)
        t.wait_for_log(r"failed: .*\(unknown user\)", since=since)
        self.assertNotIn(password, t.log())

    def test_failures_from_one_address_grow_the_delay_up_to_the_cap(self):
        ip = new_ip()
        # A new (unknown) user each time: only the address's count grows.
        for delay in (DELAY, 2 * DELAY, DELAY_MAX, DELAY_MAX):
            self.assertFailedAfter(self.auth(new_user("grow"), "x", ip),
                                   delay)
        # Another address is not slowed down.
        self.assertFailedAfter(self.auth(new_user("other"), "x", new_ip()),
                               DELAY)

    def test_failures_for_one_user_grow_across_addresses_until_success(self):
        t = self.tern
        user = new_user("target")
        t.add_user(user, "right")
        self.assertFailedAfter(self.auth(user, "guess1", new_ip()), DELAY)
        self.assertFailedAfter(self.auth(user, "guess2", new_ip()),
                               2 * DELAY)
        # The owner logs in at once, and that forgets the user's count.
        self.assertOk(self.auth(user, "right", new_ip()), user)
        self.assertFailedAfter(self.auth(user, "typo", new_ip()), DELAY)

    def test_ipv6_clients_are_counted_per_64(self):
        self.assertFailedAfter(
            self.auth(new_user("v6"), "x", "2001:db8:aa:1::1"), DELAY)
        self.assertFailedAfter(
            self.auth(new_user("v6"), "x", "2001:db8:aa:1:ffff::2"),
            2 * DELAY)
        self.assertFailedAfter(
            self.auth(new_user("v6"), "x", "2001:db8:aa:2::1"), DELAY)
        # An IPv4-mapped address counts as the IPv4 address.
        ip = new_ip()
        self.assertFailedAfter(self.auth(new_user("v4"), "x", ip), DELAY)
        self.assertFailedAfter(
            self.auth(new_user("v4"), "x", "::ffff:" + ip), 2 * DELAY)

    def test_good_login_overtakes_a_delayed_failure_on_one_connection(self):
        t = self.tern
        user = new_user("quick")
        t.add_user(user, "right")
        with AttrConn(self.path(), REPLY_TIMEOUT) as c:
            start = time.monotonic()
            c.send(self.request(new_user("slow"), "x", new_ip(), rid="1"))
            c.send(self.request(user, "right", new_ip(), rid="2"))
            first = dict(c.reply())
            first_at = time.monotonic() - start
            second = dict(c.reply())
            second_at = time.monotonic() - start
        self.assertEqual((first.get("id"), first.get("status")), ("2", "ok"))
        self.assertEqual(first.get("user"), user)
        self.assertLess(first_at, FAST)
        self.assertEqual((second.get("id"), second.get("status")),
                         ("1", "fail"))
        self.assertGreaterEqual(second_at, DELAY - EARLY)
        self.assertLess(second_at, DELAY + SLACK)

    def test_malformed_credentials_fail_like_wrong_ones(self):
        t = self.tern
        user = new_user("nul")
        t.add_user(user, "pass")
        # "pass\0junk" must not be cut to "pass" anywhere.
        for name, password in ((user, "pass\0junk"), (user, ""),
                               ("", "pass"), (user + "\0x", "pass"),
                               ("a" * 255, "pass"), (user, "p" * 1025)):
            self.assertFailedAfter(self.auth(name, password, new_ip()),
                                   DELAY)

    def test_protocol_errors_close_the_connection(self):
        good = self.request(new_user("p"), "x", new_ip())
        for bad in ([p for p in good if p[0] != "request"],
                    [p if p[0] != "request" else ("request", "lookup")
                     for p in good],
                    [p if p[0] != "service" else ("service", "ftp")
                     for p in good],
                    [p for p in good if p[0] != "password"],
                    [p for p in good if p[0] != "client_addr"],
                    [p if p[0] != "client_addr" else ("client_addr", "x" * 65)
                     for p in good]):
            with AttrConn(self.path(), REPLY_TIMEOUT) as c:
                c.send(bad)
                self.assertTrue(c.closed_by_peer(), bad)
        # An oversized frame too.
        with AttrConn(self.path(), REPLY_TIMEOUT) as c:
            c.send(self.request(new_user("big"), "x" * 8192, new_ip()))
            self.assertTrue(c.closed_by_peer())
        # And the service goes on.
        self.assertFailedAfter(self.auth(new_user("after"), "x", new_ip()),
                               DELAY)


class AuthUserFileTest(AuthCase):

    def test_ternuser_changes_are_picked_up_without_a_restart(self):
        t = self.tern
        pids = t.pids("auth")
        self.assertEqual(len(pids), 1, t.describe_pids())
        user = new_user("late")
        t.add_user(user, "first")
        self.assertOk(self.auth(user, "first", new_ip()), user)
        t.ternuser("del", user)
        self.assertFailedAfter(self.auth(user, "first", new_ip()), DELAY)
        t.add_user(user, "second")
        self.assertOk(self.auth(user, "second", new_ip()), user)
        self.assertEqual(t.pids("auth"), pids)

    def test_missing_or_unreadable_user_file_gives_tempfail(self):
        t = self.tern
        user = new_user("gone")
        t.add_user(user, "pw")
        path = t.conf_get("user_file")
        mode = stat.S_IMODE(os.stat(path).st_mode)
        os.rename(path, path + ".away")
        try:
            reply, took = self.auth(user, "pw", new_ip())
        finally:
            os.rename(path + ".away", path)
        self.assertEqual(reply.get("status"), "tempfail", reply)
        self.assertLess(took, FAST)
        self.assertOk(self.auth(user, "pw", new_ip()), user)
        # Neither auth's user nor, as its owner, an ordinary user can
        # read a file of mode 0.
        os.chmod(path, 0)
        try:
            reply, took = self.auth(user, "pw", new_ip())
        finally:
            os.chmod(path, mode)
        self.assertEqual(reply.get("status"), "tempfail", reply)
        self.assertOk(self.auth(user, "pw", new_ip()), user)
        t.wait_for_log(r"tempfail: user=<%s>.*\(user file unavailable\)"
                       % user.replace(".", r"\."))


class AuthIdentityTest(AuthCase):
    """Who runs auth, and who can read the password hashes (root only)."""

    def setUp(self):
        skip_unless_root("auth's own user and the user file's group")
        super().setUp()

    def test_auth_runs_as_ternauth_with_only_its_group(self):
        pw = pwd.getpwnam(AUTH_USER)
        pids = self.tern.pids("auth")
        self.assertEqual(len(pids), 1, self.tern.describe_pids())
        ids = proc_ids(pids[0])
        self.assertEqual(ids["Uid"], (pw.pw_uid,) * 4)
        self.assertEqual(ids["Gid"], (pw.pw_gid,) * 4)
        self.assertEqual(ids["Groups"], (pw.pw_gid,))

    def test_only_auth_among_the_daemons_can_read_the_user_file(self):
        t = self.tern
        t.add_user(new_user("hash"), "pw")
        st = os.stat(t.conf_get("user_file"))
        auth_gid = pwd.getpwnam(AUTH_USER).pw_gid
        self.assertEqual((st.st_uid, st.st_gid), (0, auth_gid))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        readers = set()
        for pid in t.pids():
            try:
                ids = proc_ids(pid)
            except OSError:
                continue    # gone meanwhile
            euid, egid = ids["Uid"][1], ids["Gid"][1]
            groups = set(ids["Groups"]) | {egid}
            prog = os.path.basename(harness.proc_cmdline(pid)[0])
            if euid == 0:
                readers.add(prog)
                continue
            if euid == st.st_uid or (st.st_gid in groups
                                     and st.st_mode & stat.S_IRGRP) \
                    or st.st_mode & stat.S_IROTH:
                readers.add(prog)
        self.assertIn("auth", readers)
        # Root's daemons could: master, local and spawn (which never
        # opens it: it asks auth).
        self.assertLessEqual(readers, {"auth", "master", "local", "spawn"},
                             t.describe_pids())


class AuthCheckTest(TernTestCase):
    """tern check and the auth user, on instances that need not run."""

    class_instance = False

    def setUp(self):
        skip_unless_root("ownership of the user file")
        super().setUp()

    def test_tern_check_repairs_the_user_file(self):
        t = self.new_instance(start=False)
        t.add_user(new_user("fix"), "pw")
        path = t.conf_get("user_file")
        os.chmod(path, 0o644)
        os.chown(path, 0, 0)
        res = t.check()
        self.assertEqual(res.returncode, 0, res.output)
        self.assertIn("fixed the mode and owner of %s" % path, res.output)
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        self.assertEqual((st.st_uid, st.st_gid),
                         (0, pwd.getpwnam(AUTH_USER).pw_gid))
        self.assertEqual(t.check().output, "")

    def test_tern_check_does_not_follow_a_symlinked_user_file(self):
        t = self.new_instance(start=False)
        t.add_user(new_user("sym"), "pw")
        path = t.conf_get("user_file")
        target = os.path.join(t.tmp, "elsewhere")
        os.rename(path, target)
        os.chmod(target, 0o644)
        os.chown(target, 0, 0)
        os.symlink(target, path)
        res = t.check()
        self.assertEqual(res.returncode, 1, res.output)
        self.assertIn("symbolic link", res.output)
        st = os.stat(target)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o644)
        self.assertEqual((st.st_uid, st.st_gid), (0, 0))

    def test_tern_check_reports_missing_users(self):
        t = self.new_instance(start=False)
        missing = "nx%s" % uuid.uuid4().hex[:10]
        t.edit_service("auth", 3, missing)
        res = t.check()
        self.assertEqual(res.returncode, 1, res.output)
        self.assertIn("service auth: user '%s' does not exist" % missing,
                      res.output)
        t.edit_service("auth", 3, "$auth_user")
        t.conf_set(auth_user=missing)
        res = t.check()
        self.assertEqual(res.returncode, 1, res.output)
        self.assertIn("auth_user '%s' does not exist" % missing, res.output)
        # Reported once, not again for the services.conf line.
        self.assertEqual(res.output.count("'%s'" % missing), 1, res.output)

    def test_auth_user_must_not_be_mail_owner(self):
        t = self.new_instance(start=False)
        t.conf_set(auth_user="tern")
        res = t.check()
        self.assertEqual(res.returncode, 1, res.output)
        self.assertIn("must have a user and group of its own", res.output)

    def test_master_starts_auth_as_the_user_services_conf_names(self):
        t = self.new_instance(start=False)
        t.edit_service("auth", 3, "vmail")
        t.start()
        wait_until(lambda: t.pids("auth"), harness.START_TIMEOUT,
                   "auth to run")
        t.wait_ready()
        vmail = pwd.getpwnam("vmail")
        ids = proc_ids(t.pids("auth")[0])
        self.assertEqual(ids["Uid"], (vmail.pw_uid,) * 4)
        self.assertEqual(ids["Groups"], (vmail.pw_gid,))
        # A user with uid 0 is refused, the daemon would keep root: by
        # tern reload (its check) and, told by SIGHUP, by the daemon.
        since = t.log_size()
        t.edit_service("auth", 3, "root")
        res = t.tern("reload", check=False)
        self.assertEqual(res.returncode, 1, res.output)
        self.assertIn("user 'root' has uid 0", res.output)
        os.kill(t.master_pid(), signal.SIGHUP)
        t.wait_for_log(r"auth\[\d+\]: fatal: user 'root' has uid 0",
                       since=since)
