# SPDX-License-Identifier: MIT
"""What one client may hold in smtpd, from the attack run: a process that
is full leaves new connections to its siblings, one address cannot fill
every slot (smtpd_client_connection_limit, counted by anvil across
processes and given back when an smtpd dies), a client that trickles
bytes is cut off by the command and content deadlines, a silent one by
the first-command timeout, an early talker is refused, the disk-full
reply comes at MAIL FROM, and tmp/ files of killed sessions are
removed."""

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time

import harness
from harness import (SmtpConn, TernTestCase, make_message, skip_unless_root,
                     smtp_send, wait_until)

SENDER = "sender@example.org"
RCPT = "limits@example.test"
SHORT = 10
# The attack run: 1,000 idle connections from one address.
FLOOD = 1000


def banner_within(port, timeout, host="127.0.0.1", source="127.0.0.1"):
    """The first reply line of a new connection, or None if none comes in
    time (the connection waits in the listen queue)."""
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0))
    s.settimeout(timeout)
    try:
        data = b""
        while b"\n" not in data:
            chunk = s.recv(512)
            if not chunk:
                return data.decode() or None
            data += chunk
        return data.split(b"\r\n")[0].decode()
    except socket.timeout:
        return None
    finally:
        s.close()


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


class ProcessFullTest(TernTestCase):
    class_instance = False

    def test_full_process_leaves_new_connections_to_its_sibling(self):
        """Two smtpd processes of 20 sessions each take 30 clients; before,
        one that was full answered 421 while the other had room."""
        t = self.new_instance(configure=lambda i: (
            i.conf_set(smtpd_max_clients="20",
                       smtpd_client_connection_limit="0"),
            i.edit_service(i.service_name_for_port(i.smtp_port), 5, "2")))
        t.wait_ready()
        conns = []
        try:
            for _ in range(30):
                c = SmtpConn(t.smtp_port, timeout=SHORT)
                conns.append(c)
                self.assertEqual(c.banner[0], 220, c.banner)
        finally:
            for c in conns:
                c.close()

    def test_full_service_queues_instead_of_refusing(self):
        t = self.new_instance(configure=lambda i: (
            i.conf_set(smtpd_max_clients="2"),
            i.edit_service(i.service_name_for_port(i.smtp_port), 5, "1")))
        t.wait_ready()
        a = SmtpConn(t.smtp_port)
        b = SmtpConn(t.smtp_port)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        # The third waits in the listen queue: no 421, no greeting yet.
        s = socket.create_connection(("127.0.0.1", t.smtp_port), timeout=1)
        self.addCleanup(s.close)
        s.settimeout(1)
        with self.assertRaises(socket.timeout):
            s.recv(100)
        self.assertEqual(a.cmd("QUIT")[0], 221)
        s.settimeout(SHORT)
        self.assertTrue(s.recv(100).startswith(b"220 "))
        self.assertEqual(b.cmd("NOOP")[0], 250)


class ClientLimitTest(TernTestCase):
    class_instance = False

    def test_flood_from_one_address_does_not_lock_out_another(self):
        """1,000 connections from 127.0.0.1: the first 50 are served, the
        rest get 421 4.7.0 at once, and 127.0.0.2 still gets in."""
        raise_fd_limit(FLOOD + 200)
        t = self.new_instance()
        t.wait_ready()
        held, codes = [], {}
        try:
            for _ in range(FLOOD):
                s = socket.create_connection(("127.0.0.1", t.smtp_port),
                                             timeout=SHORT)
                held.append(s)
            for s in held:
                s.settimeout(SHORT)
                line = s.recv(512)
                code = int(line[:3])
                codes[code] = codes.get(code, 0) + 1
                if code == 421:
                    self.assertIn(b"4.7.0", line)
            self.assertEqual(codes.get(220), 50, codes)
            self.assertEqual(codes.get(421), FLOOD - 50, codes)
            other = banner_within(t.smtp_port, SHORT, source="127.0.0.2")
            self.assertTrue(other is not None and other.startswith("220 "),
                            other)
        finally:
            for s in held:
                s.close()
        self.assertRegex(t.log(), r"too many connections from "
                                  r"127\.0\.0\.1\[127\.0\.0\.1\]: 51 "
                                  r"\(limit 50\)")

    def test_counts_of_a_killed_smtpd_are_given_back(self):
        t = self.new_instance(configure=lambda i: (
            i.conf_set(smtpd_client_connection_limit="3"),
            i.edit_service(i.service_name_for_port(i.smtp_port), 5, "1")))
        t.wait_ready()
        service = t.service_name_for_port(t.smtp_port)
        conns = [SmtpConn(t.smtp_port) for _ in range(3)]
        for c in conns:
            self.assertEqual(c.banner[0], 220)
        with SmtpConn(t.smtp_port) as extra:
            self.assertEqual(extra.banner[0], 421)
        [pid] = t.pids("smtpd", service)
        os.kill(pid, signal.SIGKILL)
        for c in conns:
            c.close()
        wait_until(lambda: t.pids("smtpd", service) not in ([], [pid]),
                   harness.START_TIMEOUT, "smtpd to be restarted")
        t.wait_ready()
        again = [SmtpConn(t.smtp_port) for _ in range(3)]
        try:
            for c in again:
                self.assertEqual(c.banner[0], 220)
        finally:
            for c in again:
                c.close()


class DeadlineTest(TernTestCase):
    """Deadlines that a trickling client cannot push back."""

    @classmethod
    def configure(cls, tern):
        tern.add_user(RCPT, "pw")
        tern.conf_set(smtpd_timeout="60", smtpd_command_time_limit="3",
                      smtpd_data_time_limit="4",
                      smtpd_first_command_timeout="3")

    def drip(self, c, data, seconds):
        """Sends data one byte per 0.5 s for at most seconds; returns the
        server's reply once it closes, or fails."""
        deadline = time.monotonic() + seconds
        for b in data:
            try:
                c.send(bytes([b]))
            except OSError:
                break
            if time.monotonic() > deadline:
                break
            c.sock.settimeout(0.5)
            with contextlib.suppress(socket.timeout):
                got = c.sock.recv(512)
                if got:
                    return got
        c.sock.settimeout(SHORT)
        return c.sock.recv(512)

    def test_one_byte_per_second_command_is_cut_off(self):
        with SmtpConn(self.tern.smtp_port) as c:
            self.assertEqual(c.cmd("EHLO client.example.org")[0], 250)
            t0 = time.monotonic()
            got = self.drip(c, b"NOOP " + b"x" * 100, 20)
            self.assertTrue(got.startswith(b"421 4.4.2 "), got)
            self.assertLess(time.monotonic() - t0, 8)
            self.assertTrue(c.closed_by_peer(SHORT))
        self.tern.wait_for_log(r"timeout \(command\) after EHLO")

    def test_trickled_content_is_cut_off_and_leaves_no_file(self):
        with SmtpConn(self.tern.smtp_port) as c:
            for line in ("EHLO x", "MAIL FROM:<%s>" % SENDER,
                         "RCPT TO:<%s>" % RCPT, "DATA"):
                self.assertLess(c.cmd(line)[0], 400, line)
            got = self.drip(c, b"Subject: drip\r\n\r\n" + b"y" * 200, 20)
            self.assertTrue(got.startswith(b"421 4.4.2 "), got)
        self.tern.wait_for_log(r"timeout \(content\) after DATA")
        wait_until(lambda: not self.tern.queue_files("tmp"), SHORT,
                   "tmp/ to empty")

    def test_silent_client_is_dropped_before_smtpd_timeout(self):
        with SmtpConn(self.tern.smtp_port) as c:
            t0 = time.monotonic()
            c.sock.settimeout(SHORT)
            self.assertTrue(c.sock.recv(512).startswith(b"421 4.4.2 "))
            self.assertLess(time.monotonic() - t0, 8)
        self.tern.wait_for_log(r"timeout \(first command\) after CONNECT")


class EarlyTalkerTest(TernTestCase):
    @classmethod
    def configure(cls, tern):
        tern.conf_set(smtpd_greet_pause="1")

    def test_client_talking_before_the_greeting_is_refused(self):
        s = socket.create_connection(("127.0.0.1", self.tern.smtp_port),
                                     timeout=SHORT)
        with s:
            s.sendall(b"EHLO bot.example\r\nMAIL FROM:<bot@example.org>\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"554 5.5.1 "), data)
        self.assertNotIn(b"220 ", data)
        self.tern.wait_for_log(r"reject: early talker from 127\.0\.0\.1")

    def test_patient_client_is_greeted_after_the_pause(self):
        t0 = time.monotonic()
        with SmtpConn(self.tern.smtp_port) as c:
            self.assertEqual(c.banner[0], 220)
            self.assertGreaterEqual(time.monotonic() - t0, 0.9)
            self.assertEqual(c.cmd("QUIT")[0], 221)


class DiskFullTest(TernTestCase):
    """The queue on a small tmpfs: no space means 452 4.3.1 at MAIL FROM
    (not 451 after the whole body), and a disk that fills up during the
    content gives 452 4.3.1 and leaves no file behind."""

    class_instance = False
    TMPFS_SIZE = 16 * 1024 * 1024

    def make(self):
        skip_unless_root("mounting a tmpfs")
        t = self.new_instance(start=False, configure=lambda i: (
            i.add_user(RCPT, "pw"),
            i.conf_set(message_size_limit=str(2 * 1024 * 1024))))
        qdir = t.queue_dir
        subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%d,mode=0755" % self.TMPFS_SIZE, "tmpfs", qdir],
                       check=True)
        def unmount():
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(qdir, "filler"))
            t.close()
            subprocess.run(["umount", "-l", qdir])
        self.addCleanup(unmount)
        t.tern("check")
        t.start()
        return t

    def fill(self, t, leave):
        """Fills the queue file system until about leave bytes are free."""
        st = os.statvfs(t.queue_dir)
        free = st.f_bavail * st.f_frsize
        path = os.path.join(t.queue_dir, "filler")
        with open(path, "wb") as f:
            f.write(b"\0" * max(0, free - leave))
        return path

    def test_no_space_refused_at_mail_from(self):
        t = self.make()
        self.fill(t, 1024 * 1024)  # below 1.5 x message_size_limit
        with SmtpConn(t.smtp_port) as c:
            self.assertEqual(c.cmd("EHLO x")[0], 250)
            code, text = c.cmd("MAIL FROM:<%s> SIZE=1000" % SENDER)
            self.assertEqual(code, 452, text)
            self.assertTrue(text.startswith("4.3.1"), text)

    def test_disk_filling_during_data_gives_452_and_no_file(self):
        t = self.make()
        filler = self.fill(t, 4 * 1024 * 1024)
        with SmtpConn(t.smtp_port) as c:
            for line in ("EHLO x", "MAIL FROM:<%s>" % SENDER,
                         "RCPT TO:<%s>" % RCPT):
                self.assertEqual(c.cmd(line)[0], 250, line)
            # Now take the rest of the space away.
            with open(filler, "ab") as f:
                with contextlib.suppress(OSError):
                    f.write(b"\0" * (4 * 1024 * 1024))
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(b"Subject: big\r\n\r\n" +
                   (b"z" * 998 + b"\r\n") * 1500 + b".\r\n")
            code, text = c.reply()
            self.assertEqual(code, 452, text)
            self.assertTrue(text.startswith("4.3.1"), text)
        self.assertEqual(t.queue_files("tmp"), [])
        self.assertEqual(t.queue_files("incoming"), [])


class StaleTmpTest(TernTestCase):
    """tmp/ files whose writer died are removed by qmgr, at start and
    every queue_run_delay; a file being written is never touched."""

    class_instance = False

    @staticmethod
    def plant(t, age=3600):
        """An unlocked, old file in tmp/, as a killed writer leaves it."""
        name = harness.queue_id()
        path = os.path.join(t.queue_dir, "tmp", name)
        with open(path, "wb") as f:
            f.write(b"half a message")
        if harness.is_root():
            pw = harness.pwd.getpwnam("tern")
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.utime(path, (time.time() - age, time.time() - age))
        return name, path

    def test_files_of_killed_sessions_are_removed(self):
        t = self.new_instance(configure=lambda i: (
            i.add_user(RCPT, "pw"), i.conf_set(queue_run_delay="1"),
            i.edit_service(i.service_name_for_port(i.smtp_port), 5, "1")))
        t.wait_ready()
        service = t.service_name_for_port(t.smtp_port)
        live = SmtpConn(t.smtp_port)
        self.addCleanup(live.close)
        for line in ("EHLO x", "MAIL FROM:<%s>" % SENDER,
                     "RCPT TO:<%s>" % RCPT, "DATA"):
            self.assertLess(live.cmd(line)[0], 400, line)
        live.send(b"Subject: half\r\n\r\n" + b"x" * 10000)
        [name] = wait_until(lambda: t.queue_files("tmp"), SHORT,
                            "the session's tmp/ file")
        path = os.path.join(t.queue_dir, "tmp", name)
        # Old, but its writer lives: the lock keeps it.
        os.utime(path, (time.time() - 3600, time.time() - 3600))
        since = t.log_size()
        stale, stale_path = self.plant(t)
        t.wait_for_log(r"%s: removed a stale file from tmp/" % stale,
                       since=since)
        self.assertFalse(os.path.exists(stale_path))
        self.assertTrue(os.path.exists(path))
        # Its writer is killed: the next sweep removes it.
        [pid] = t.pids("smtpd", service)
        os.kill(pid, signal.SIGKILL)
        t.wait_for_log(r"%s: removed a stale file from tmp/" % name,
                       since=since)
        self.assertFalse(os.path.exists(path))

    def test_stale_files_are_removed_at_start(self):
        t = self.new_instance(start=False)
        name, path = self.plant(t)
        fresh, fresh_path = self.plant(t, age=0)
        t.start()
        t.wait_for_log(r"%s: removed a stale file from tmp/" % name)
        self.assertFalse(os.path.exists(path))
        # Too young to judge (a writer may be about to lock it).
        self.assertTrue(os.path.exists(fresh_path))
