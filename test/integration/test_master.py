# SPDX-License-Identifier: MIT
"""master and the tern command under stress: signals arriving together,
reloads while children are throttled, the lifeline (every daemon exits
when master dies, SINGLE-mode ones blocked in a connection too), what
children inherit, the instance lock, a hung master, tern init on an
existing directory and tern check as an ordinary user."""

import os
import re
import signal
import socket
import stat
import subprocess
import tempfile
import time

import harness
from harness import run, wait_until

# Upper bounds, in seconds; the waits return as soon as the condition holds.
EXIT_TIMEOUT = 10
RESTART_TIMEOUT = 15
# tern stop waits 15 s for SIGTERM before it kills a hung master.
HUNG_STOP_TIMEOUT = 40
FLAP = "flap"
# master.h: MASTER_HEALTHY_RUN_MS.
HEALTHY_RUN = 10
# An address of no interface (RFC 5737 TEST-NET-1).
UNBINDABLE = "192.0.2.1"


def unix_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def spawn_ignoring(argv, signals):
    """Runs argv (bounded) with signals set to SIG_IGN, as nohup or a
    careless supervisor would leave them."""
    def ignore():
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)
    res = subprocess.run(argv, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, preexec_fn=ignore,
                         timeout=harness.COMMAND_TIMEOUT)
    harness.check_sanitizer_output(res.stdout + res.stderr, argv[0])
    return res


def fd_targets(pid):
    """{fd: (link target, open flags)} of pid."""
    out = {}
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, name))
            with open("/proc/%d/fdinfo/%s" % (pid, name)) as f:
                flags = int(re.search(r"flags:\s+(\d+)", f.read()).group(1),
                            8)
        except (OSError, AttributeError):
            continue
        out[int(name)] = (target, flags)
    return out


def wait_gone(t, what, timeout=EXIT_TIMEOUT):
    """Waits until no process of t is left; names the ones left if not."""
    try:
        wait_until(lambda: not t.pids(), timeout, what)
    except AssertionError as e:
        raise AssertionError("%s; left: %s" % (e, t.describe_pids()))


def new_pid_of(t, program, old):
    """A pid of program other than old, from one snapshot (a second call
    could race with the process exiting); None if there is none."""
    pids = [p for p in t.pids(program) if p != old]
    return pids[0] if pids else None


class MasterTest(harness.TernTestCase):
    class_instance = False

    def daemons(self, t):
        master = t.master_pid()
        return [p for p in t.pids() if p != master]

    def all_daemons(self, t):
        """The daemons once every maxproc slot of services.conf runs and
        has read its configuration."""
        return t.wait_ready(EXIT_TIMEOUT)

    # ----- lifeline

    def test_single_daemon_in_a_connection_exits_when_master_dies(self):
        t = self.new_instance()
        local = os.path.join(t.queue_dir, "private", "local")
        # Every local process (SINGLE mode) blocked reading a request.
        held = [unix_connect(local) for _ in range(4)]
        try:
            wait_until(lambda: len(t.pids("local")) == 4, EXIT_TIMEOUT,
                       "four local processes")
            time.sleep(0.3)
            os.kill(t.master_pid(), signal.SIGKILL)
            wait_gone(t, "every daemon to exit after master was killed")
        finally:
            for s in held:
                s.close()
        # The pid file still names the dead master: it must not count.
        self.assertEqual(t.status().returncode, 1)
        t.start()
        self.assertEqual(t.status().returncode, 0)

    # ----- inherited state

    def test_children_get_only_stdio_lifeline_and_listeners(self):
        t = self.new_instance()
        daemons = self.all_daemons(t)
        for pid in daemons:
            fds = fd_targets(pid)
            lifeline, flags = fds.get(3, ("", 0))
            self.assertTrue(lifeline.startswith("pipe:"), (pid, fds))
            self.assertEqual(flags & os.O_ACCMODE, os.O_RDONLY, (pid, fds))
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = dict(e.split(b"=", 1) for e in f.read().split(b"\0")
                           if b"=" in e)
            nlisten = int(env[b"TERN_LISTEN_FDS"])
            self.assertGreaterEqual(nlisten, 1)
            for fd in range(4, 4 + nlisten):
                self.assertTrue(fds.get(fd, ("", 0))[0].startswith("socket:"),
                                (pid, fd, fds))
            for fd, (target, flags) in fds.items():
                self.assertNotIn("master.pid", target, (pid, fd))
                # A write end of the lifeline would keep it open forever.
                if fd != 3 and target == lifeline:
                    self.fail("pid %d: lifeline again on fd %d" % (pid, fd))
                if fd > 2 and target == t.log_path:
                    self.fail("pid %d: log open again on fd %d" % (pid, fd))

    def test_start_with_sigchld_and_sighup_ignored(self):
        t = self.new_instance(start=False)
        res = spawn_ignoring([t.sbin("tern"), "-c", t.dir, "start"],
                             (signal.SIGCHLD, signal.SIGHUP))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("started", res.stdout)
        wait_until(t.master_pid, EXIT_TIMEOUT, "master")
        t.wait_smtp()
        qmgr = wait_until(lambda: t.pids("qmgr"), EXIT_TIMEOUT, "qmgr")[0]
        os.kill(qmgr, signal.SIGKILL)
        # Without SIGCHLD master would never notice and never restart it.
        wait_until(lambda: new_pid_of(t, "qmgr", qmgr),
                   RESTART_TIMEOUT, "master to restart qmgr")
        since = t.log_size()
        t.reload()
        t.wait_for_log(r"master\[\d+\]: reload -- ", EXIT_TIMEOUT, since)
        t.stop()

    # ----- signals together

    def test_sigchld_sighup_sigterm_together(self):
        t = self.new_instance()
        master = t.master_pid()
        t.edit_service("local", 5, "2")
        victim = t.pids("qmgr")[0]
        os.kill(victim, signal.SIGKILL)
        os.kill(master, signal.SIGHUP)
        os.kill(master, signal.SIGTERM)
        os.kill(master, signal.SIGHUP)
        wait_gone(t, "master and daemons to exit", harness.STOP_TIMEOUT)
        self.assertRegex(t.log(), r"terminating on signal 15")
        self.assertEqual(t.status().returncode, 1)

    def test_sighup_with_broken_tern_conf_keeps_running(self):
        t = self.new_instance()
        conf = os.path.join(t.dir, "tern.conf")
        with open(conf) as f:
            good = f.read()
        before = self.all_daemons(t)
        since = t.log_size()
        try:
            with open(conf, "a") as f:
                f.write("this line has no equals sign\n")
            os.kill(t.master_pid(), signal.SIGHUP)
            t.wait_for_log(r"keeping the old configuration", EXIT_TIMEOUT,
                           since)
            t.wait_smtp()
            self.assertEqual(self.daemons(t), before)
            # tern reload refuses to send it at all.
            self.assertNotEqual(t.tern("reload", check=False).returncode, 0)
        finally:
            with open(conf, "w") as f:
                f.write(good)

    # ----- backoff and reload

    def set_flap(self, t, command):
        """Replaces (command) or removes (None) the flap service."""
        with open(t.services_path()) as f:
            lines = [ln for ln in f if not ln.startswith(FLAP + " ")]
        if command is not None:
            lines.append("%s unix y n n 1 %s\n" % (FLAP, command))
        with open(t.services_path(), "w") as f:
            f.writelines(lines)

    def flap_deaths(self, t, since, program, after=None):
        """Deaths of program logged after offset since (and, with after,
        after the first line matching that regex there)."""
        with open(t.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        if after is not None:
            m = re.search(after, text)
            text = text[m.end():] if m else ""
        return len(re.findall(r"%s: process died after" % program, text))

    def test_restart_backoff_and_reload_during_backoff(self):
        t = self.new_instance()
        qmgr = t.pids("qmgr")[0]
        qmgr_started = time.monotonic()
        since = t.log_size()
        began = time.monotonic()
        self.set_flap(t, "/bin/false")
        t.reload()
        # Deaths at about 0, 1 and 3 s: the third waits 4 s.
        t.wait_for_log(r"/bin/false: process died after \d+ ms -- "
                       r"throttling restarts for 4 s", EXIT_TIMEOUT, since)
        self.assertGreaterEqual(time.monotonic() - began, 2.5)
        self.assertEqual(self.flap_deaths(t, since, "/bin/false"), 3)
        # Changed while waiting out that delay: it starts at once.
        since = t.log_size()
        self.set_flap(t, "/bin/true")
        t.reload()
        t.wait_for_log(r"reload: restarting service %s" % FLAP,
                       EXIT_TIMEOUT, since)
        t.wait_for_log(r"/bin/true: process died after \d+ ms -- "
                       r"throttling restarts for 1 s", 2, since)
        # Removed while waiting: no start after the reload, socket gone.
        self.set_flap(t, None)
        since = t.log_size()
        t.reload()
        t.wait_for_log(r"reload: stopping service %s" % FLAP, EXIT_TIMEOUT,
                       since)
        time.sleep(2.5)
        # A death logged before master acted on the reload (a loaded
        # machine may take over a second to) is no start after it.
        self.assertEqual(self.flap_deaths(
            t, since, "/bin/true",
            after=r"reload: stopping service %s" % FLAP), 0)
        self.assertFalse(os.path.exists(
            os.path.join(t.queue_dir, "private", FLAP)))
        t.wait_smtp()
        # A daemon killed after a healthy run (10 s) restarts at once.
        time.sleep(max(0.0, HEALTHY_RUN + 0.5 -
                       (time.monotonic() - qmgr_started)))
        since = t.log_size()
        os.kill(qmgr, signal.SIGKILL)
        wait_until(lambda: new_pid_of(t, "qmgr", qmgr),
                   RESTART_TIMEOUT, "master to restart qmgr")
        t.wait_for_log(r"qmgr pid %d killed by signal 9" % qmgr,
                       EXIT_TIMEOUT, since)
        self.assertNotIn("throttling", t.log()[since:])

    def test_reload_that_cannot_bind_keeps_the_service(self):
        t = self.new_instance()
        name = t.service_name_for_port(t.smtp_port)
        before = self.all_daemons(t)
        smtpd = [p for p in before if p in t.pids("smtpd", name)]
        # TEST-NET-1 is on no interface: bind fails at once, no traffic.
        t.conf_set(inet_interfaces="127.0.0.1, %s" % UNBINDABLE)
        since = t.log_size()
        t.reload()
        t.wait_for_log(r"service %s: bind %s:%d: .*; keeping it as it was"
                       % (re.escape(name), re.escape(UNBINDABLE),
                          t.smtp_port), EXIT_TIMEOUT, since)
        # Still listening, with the same processes.
        t.wait_smtp()
        self.assertEqual(t.pids("smtpd", name), smtpd)
        t.conf_set(inet_interfaces="127.0.0.1")
        t.reload()
        wait_until(lambda: not set(smtpd) & set(t.pids("smtpd", name)),
                   EXIT_TIMEOUT, "smtpd to restart with the fixed config")
        t.wait_smtp()

    # ----- lock

    def test_concurrent_starts_give_one_master(self):
        t = self.new_instance(start=False)
        argv = [t.sbin("tern"), "-c", t.dir, "start"]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL)
                 for _ in range(3)]
        codes = []
        for p in procs:
            try:
                p.communicate(timeout=harness.COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
            codes.append(p.returncode)
        self.assertEqual(sorted(codes), [0, 1, 1])
        master = wait_until(t.master_pid, EXIT_TIMEOUT, "one master")
        self.assertEqual(len(t.masters()), 1, t.describe_pids())
        # The loser of the race past tern's own check: master itself
        # refuses, cleanly (run() fails on a sanitizer report).
        since = t.log_size()
        res = run([os.path.join(harness.DAEMON_DIR, "master"), "-c", t.dir],
                  check=False)
        self.assertEqual(res.returncode, 1, res.output)
        self.assertIn("already running (pid %d)" % master, res.stderr)
        t.wait_for_log(r"already running", EXIT_TIMEOUT, since)
        self.assertEqual(t.master_pid(), master)

    def test_stop_kills_a_hung_master(self):
        t = self.new_instance()
        master = t.master_pid()
        os.kill(master, signal.SIGSTOP)
        try:
            res = t.tern("stop", check=False, timeout=HUNG_STOP_TIMEOUT)
        except BaseException:
            os.kill(master, signal.SIGCONT)
            raise
        if res.returncode != 0:
            os.kill(master, signal.SIGCONT)
        self.assertEqual(res.returncode, 0, res.output)
        self.assertIn("killing it", res.stderr)
        wait_gone(t, "daemons to follow the killed master")
        t.start()

    # ----- tern init and check

    def test_init_leaves_an_existing_directory_alone(self):
        scratch = tempfile.mkdtemp(prefix="tern-test-init-")
        harness.record_for_cleanup("dir", scratch)
        try:
            os.chmod(scratch, 0o1777)
            res = run([harness.TernInstance.sbin("tern"), "-c", scratch,
                       "init", "--port-base", str(harness.pick_port_base())])
            self.assertIn("initialized", res.stdout)
            self.assertEqual(stat.S_IMODE(os.stat(scratch).st_mode), 0o1777)
            # A second init refuses and changes nothing.
            res = run([harness.TernInstance.sbin("tern"), "-c", scratch,
                       "init"], check=False)
            self.assertEqual(res.returncode, 1)
            self.assertIn("already exists", res.stderr)
        finally:
            subprocess.run(["rm", "-rf", scratch], check=False)

    def test_check_as_root_fixes_owner_and_mode(self):
        harness.skip_unless_root("chown")
        t = self.new_instance(start=False)
        incoming = os.path.join(t.queue_dir, "incoming")
        os.chown(incoming, 0, 0)
        os.chmod(incoming, 0o777)
        res = t.tern("check")
        self.assertIn("fixed %s" % incoming, res.stdout)
        st = os.stat(incoming)
        self.assertEqual(harness.uid_name(st.st_uid), "tern")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        self.assertEqual(t.tern("check").stdout, "")

    def test_check_as_ordinary_user_on_a_queue_it_does_not_own(self):
        harness.skip_unless_root("running as nobody")
        t = self.new_instance(start=False)
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                "--clear-groups", t.sbin("tern"), "-c", t.dir]
        if run(argv[:4] + ["test", "-x", t.sbin("tern")],
               check=False).returncode:
            self.skipTest("tern is not reachable by nobody")
        res = run(argv + ["check"], check=False)
        self.assertEqual(res.returncode, 1, res.output)
        self.assertIn("owned by uid 0", res.stderr)
        res = run(argv + ["start"], check=False)
        self.assertEqual(res.returncode, 1, res.output)
        self.assertEqual(t.pids(), [])
