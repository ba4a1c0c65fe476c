# SPDX-License-Identifier: MIT
"""The integration-test fixture: a whole tern instance in a temporary
directory, with its own configuration, queue, mail store, log and ports on
127.0.0.1, started from the installation in $TERN_PREFIX.

    class MyTest(harness.TernTestCase):
        @classmethod
        def configure(cls, tern):          # optional, before start
            tern.conf_set(message_size_limit="2048")

        def test_x(self):
            self.tern.add_user("a@example.test", "pw")
            qid = harness.smtp_send(self.tern.smtp_port, "s@example.org",
                                    ["a@example.test"], msg)
            self.tern.wait_for_maildir(self.tern.virtual_maildir(
                "a@example.test"), 1)

TernTestCase gives each test class one running instance (self.tern); a
test that needs a fresh one calls self.new_instance(). After every test the
part of each instance's log written during it is scanned for sanitizer and
panic reports, which fail that test; at teardown the instance is stopped
(killed if stop fails), its whole remaining log is scanned, and the
directory is removed (kept when TERN_KEEP=1).

Every wait here is bounded. Network traffic goes to 127.0.0.1 only.
"""

import base64
import contextlib
import fcntl
import imaplib
import os
import pwd
import random
import re
import shutil
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

SRC_DIR = os.path.abspath(os.environ.get("TERN_SRC_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PREFIX = os.path.abspath(os.environ.get("TERN_PREFIX") or os.path.join(
    SRC_DIR, "_build", "inst"))
SBIN_DIR = os.path.join(PREFIX, "sbin")
DAEMON_DIR = os.path.join(PREFIX, "libexec", "tern")

# The ports `tern init --port-base N` uses (N + the standard port), all of
# which must be free: smtp, submission, smtps, pop3, imap, imaps, pop3s.
PORT_OFFSETS = (25, 587, 465, 110, 143, 993, 995)
PORT_SPAN = 1000        # every offset is below it
PORT_MIN = 10000
PORT_BASE_ATTEMPTS = 200
# Modules run side by side (test/run-tests): a port one of them picked is
# claimed with a byte-range lock on this file (byte N = port N) until it
# is released or the process exits, so no other module can pick it
# between the pick and the bind.
PORT_LOCK_FILE = os.path.join(tempfile.gettempdir(), "tern-test-ports.lock")

# Deadlines, in seconds. Sanitized binaries start slowly; these are upper
# bounds, the waits return as soon as the condition holds.
COMMAND_TIMEOUT = 60
START_TIMEOUT = 30
STOP_TIMEOUT = 30
DELIVERY_TIMEOUT = 30
SMTP_TIMEOUT = 20
POLL_INTERVAL = 0.05

# The same sanitizer settings as test/run-tests when a module is run on its
# own (python3 -m unittest). Daemons inherit them through tern start and
# master. LeakSanitizer works in daemons after their setuid() drop (a
# sanitized service that drops to tern and leaks gets its report into the
# maillog), so leaks stay errors everywhere; it would not work in a chroot
# (no /proc), which no test service uses.
SANITIZER_VARS = ["ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"]
for _k, _v in (("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1"),
               ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")):
    os.environ.setdefault(_k, _v)

# What a report in a maillog looks like. Daemons' stderr is the maillog, so
# ASan/UBSan/LSan output lands there; "panic:" is msg_panic's prefix.
SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|runtime error:|LeakSanitizer|\]: panic: ")

# lib/mail/queue.h: 14 characters of this alphabet.
QUEUE_ID_RE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{14}\b")

VIRTUAL_DOMAIN = "example.test"


@contextlib.contextmanager
def leak_checks_off():
    """LeakSanitizer needs /proc and no ptrace: instances started inside
    this block (chrooted daemons, daemons under strace) run without it.
    Every other test still checks leaks."""
    saved = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = (saved or "") + ":detect_leaks=0"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = saved


def is_root():
    return os.geteuid() == 0


def skip_unless_root(what):
    if not is_root():
        raise unittest.SkipTest("needs root (%s); running as uid %d"
                                % (what, os.geteuid()))


class CommandFailed(AssertionError):
    pass


def check_sanitizer_output(text, where):
    """Raises AssertionError if text holds a sanitizer or panic report."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if SANITIZER_RE.search(line):
            excerpt = "\n".join(lines[max(0, i - 5):i + 40])
            raise AssertionError("sanitizer or panic report in %s:\n%s"
                                 % (where, excerpt))


# useradd, userdel and groupadd of test modules running side by side
# (test/run-tests runs two at once) take this lock: the shadow tools give
# up at once when another holds /etc/passwd.lock.
ACCOUNT_LOCK = "/run/tern-test-accounts.lock"
ACCOUNT_TOOLS = ("useradd", "userdel", "groupadd", "groupdel")


def run(argv, timeout=COMMAND_TIMEOUT, check=True, input=None, env=None):
    """Runs a command with a deadline; returns CompletedProcess (text).
    Fails on a non-zero exit when check, and always on a sanitizer report
    in its output (the tools are sanitized too)."""
    if argv and argv[0] in ACCOUNT_TOOLS:
        with open(ACCOUNT_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return _run(argv, timeout, check, input, env)
    return _run(argv, timeout, check, input, env)


def _run(argv, timeout, check, input, env):
    try:
        res = subprocess.run(argv, input=input, capture_output=True,
                             timeout=timeout, env=env,
                             stdin=None if input is not None
                             else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise CommandFailed("%s: no exit within %d s; output: %r %r"
                            % (" ".join(argv), timeout, e.stdout, e.stderr))
    except FileNotFoundError:
        raise CommandFailed("%s: not found (is tern built and installed in "
                            "%s? run ./test.sh or set TERN_PREFIX)"
                            % (argv[0], PREFIX))
    res.stdout = res.stdout.decode("utf-8", "replace")
    res.stderr = res.stderr.decode("utf-8", "replace")
    res.output = res.stdout + res.stderr
    check_sanitizer_output(res.output, "output of " + " ".join(argv))
    if check and res.returncode != 0:
        raise CommandFailed("%s: exit %d\nstdout: %s\nstderr: %s"
                            % (" ".join(argv), res.returncode,
                               res.stdout.strip(), res.stderr.strip()))
    return res


def wait_until(cond, timeout, what, interval=POLL_INTERVAL):
    """Polls cond() until it returns a true value (returned) or raises
    AssertionError naming what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


# ----------------------------------------------------------- system users

def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _group_exists(name):
    return run(["getent", "group", name], check=False).returncode == 0


def record_for_cleanup(kind, value):
    """Tells test/run-tests about an instance dir or a system user, so that
    it can clean up if this process is killed (module timeout)."""
    path = os.environ.get("TERN_INSTANCE_RECORD")
    if path:
        with open(path, "a") as f:
            f.write("%s %s\n" % (kind, value))


def ensure_system_users():
    """As root: creates tern's users and groups as run.sh does, if missing."""
    skip_unless_root("creating the tern, terndrop, vmail, ternauth and "
                     "ternlogin accounts")
    if not _user_exists("tern"):
        run(["useradd", "-r", "-U", "-d", "/var/spool/tern", "-s",
             "/usr/sbin/nologin", "tern"])
    if not _group_exists("terndrop"):
        run(["groupadd", "-r", "terndrop"])
    if not _user_exists("vmail"):
        run(["useradd", "-r", "-U", "-d", "/var/vmail", "-s",
             "/usr/sbin/nologin", "vmail"])
    if not _user_exists("ternauth"):
        run(["useradd", "-r", "-U", "-d", "/nonexistent", "-s",
             "/usr/sbin/nologin", "ternauth"])
    # The POP3/IMAP pre-login processes' own user (run.sh makes it too).
    if not _user_exists("ternlogin"):
        run(["useradd", "-r", "-U", "-d", "/nonexistent", "-s",
             "/usr/sbin/nologin", "ternlogin"])


# ------------------------------------------------------------------ ports

def port_free(port, address="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As a server would bind: TIME_WAIT leftovers do not block it.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _port_ceiling():
    """Ports for listeners stay below the kernel's ephemeral range: a
    client connection made anywhere meanwhile could otherwise be given
    the port as its local one, and the listener's bind would fail."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, PORT_MIN + 2 * PORT_SPAN)


_port_lock = {"fd": None, "held": set()}
_port_mutex = threading.Lock()


def claim_ports(ports):
    """True if every port was claimed for this process (none is claimed
    by another test process); on False nothing stays claimed."""
    with _port_mutex:
        if _port_lock["fd"] is None:
            fd = os.open(PORT_LOCK_FILE, os.O_RDWR | os.O_CREAT
                         | os.O_CLOEXEC, 0o666)
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o666)    # non-root runs share it
            _port_lock["fd"] = fd
        fd, held = _port_lock["fd"], _port_lock["held"]
        got = []
        for port in ports:
            if port in held:
                break
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
            except OSError:
                break
            held.add(port)
            got.append(port)
        else:
            return True
        for port in got:
            held.discard(port)
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, port)
        return False


def release_ports(ports):
    with _port_mutex:
        fd, held = _port_lock["fd"], _port_lock["held"]
        for port in ports:
            if port in held:
                held.discard(port)
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, port)


def _pick_ports(offsets, addresses, what):
    rng = random.Random()
    top = _port_ceiling() - PORT_SPAN
    for _ in range(PORT_BASE_ATTEMPTS):
        base = rng.randint(PORT_MIN, top)
        ports = [base + off for off in offsets]
        if not claim_ports(ports):
            continue
        if all(port_free(p, a) for a in addresses for p in ports):
            return base
        release_ports(ports)
    raise AssertionError("no free %s in %d..%d after %d attempts"
                         % (what, PORT_MIN, top, PORT_BASE_ATTEMPTS))


def pick_port_base(address="127.0.0.1"):
    """A port base whose service ports are free, claimed for this
    process until release_ports(base_ports(base))."""
    return _pick_ports(PORT_OFFSETS, [address], "port base")


def base_ports(base):
    return [base + off for off in PORT_OFFSETS]


# -------------------------------------------------------------- processes

def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if not raw:
        return None	# zombie or kernel thread
    return [a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0")]


def proc_environ(pid):
    """The environment pid was started with ({} if it is gone)."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        name, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep:
            env[name] = value
    return env


def socket_inodes(pid):
    """{inode: fd} of the sockets pid holds (/proc/PID/fd)."""
    d = "/proc/%d/fd" % pid
    out = {}
    for name in os.listdir(d):
        with contextlib.suppress(FileNotFoundError):
            link = os.readlink(os.path.join(d, name))
            if link.startswith("socket:["):
                out[int(link[len("socket:["):-1])] = int(name)
    return out


def client_context(t):
    """A TLS client context that trusts exactly the instance's self-signed
    certificates (RSA and ECDSA: the server picks by what the client
    offers; the login processes use smtpd's unless login_tls_cert_file
    says otherwise)."""
    ctx = ssl.create_default_context(cafile=t.conf_get("smtpd_tls_cert_file"))
    ctx.load_verify_locations(cafile=t.conf_get("smtpd_tls_eccert_file"))
    ctx.check_hostname = False
    return ctx


def ca_bundle(t):
    """Both certificates of the instance in one file, for clients that
    take one (curl --cacert)."""
    path = os.path.join(t.tmp, "ca-bundle.pem")
    with open(path, "wb") as out:
        for name in ("smtpd_tls_cert_file", "smtpd_tls_eccert_file"):
            with open(t.conf_get(name), "rb") as f:
                out.write(f.read())
    return path


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def proc_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def proc_wchan(pid):
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def pid_alive(pid):
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def process_uids(pid):
    """(real, effective, saved, fs) uids of pid from /proc."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return tuple(int(x) for x in line.split()[1:5])
    raise AssertionError("no Uid line for pid %d" % pid)


def uid_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process_user(pid):
    """Name of the effective user pid runs as."""
    return uid_name(process_uids(pid)[1])


# ------------------------------------------------------------------- SMTP

class SocketConn:
    """What the protocol clients below share: self.sock, closing, a
    context manager, and waiting for the peer to close."""

    sock = None

    def closed_by_peer(self, timeout=SMTP_TIMEOUT):
        """True once the peer has closed (EOF or reset) within timeout;
        whatever it sends meanwhile is read and dropped."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SmtpConn(SocketConn):
    """A raw SMTP client for protocol tests: bytes out, replies in, with a
    deadline on every read and a cap on reply size."""

    MAX_REPLY = 64 * 1024

    def __init__(self, port, timeout=SMTP_TIMEOUT, host="127.0.0.1",
                 source=None):
        """source: a client address to bind (tests pose as other hosts
        with the rest of 127.0.0.0/8)."""
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""
        self.banner = self.reply()

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def _line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > self.MAX_REPLY:
                raise AssertionError("reply line too long: %r"
                                     % self.buf[:200])
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed the connection "
                                      "(pending %r)" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """(code, text) of one reply; text joins multi-line replies."""
        texts = []
        total = 0
        while True:
            line = self._line()
            total += len(line)
            if total > self.MAX_REPLY or len(line) < 3 \
                    or not line[:3].isdigit():
                raise AssertionError("malformed SMTP reply line %r" % line)
            texts.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), "\n".join(texts)
            if line[3] != "-":
                raise AssertionError("malformed SMTP reply line %r" % line)



def queue_id_of(reply_text):
    m = QUEUE_ID_RE.search(reply_text)
    if not m:
        raise AssertionError("no queue ID in reply %r" % reply_text)
    return m.group(0)


def to_crlf(msg):
    """LF message text -> CRLF wire form (without the final dot)."""
    return msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def smtp_send(port, sender, rcpts, msg_lf, timeout=SMTP_TIMEOUT,
              host="127.0.0.1", source=None):
    """Sends msg_lf (bytes with LF line endings, ending in LF) with
    python3's smtplib to host:port (from source, an address of this
    host, when given); returns the queue ID from the 250 reply to DATA."""
    with smtplib.SMTP(host, port, timeout=timeout,
                      source_address=(source, 0) if source else None) as s:
        s.ehlo("client.example.org")
        opts = ["BODY=8BITMIME"] if s.has_extn("8bitmime") else []
        code, text = s.mail(sender, opts)
        if code != 250:
            raise AssertionError("MAIL FROM: %d %r" % (code, text))
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                raise AssertionError("RCPT TO:<%s>: %d %r" % (r, code, text))
        code, text = s.data(to_crlf(msg_lf))
        if code != 250:
            raise AssertionError("DATA: %d %r" % (code, text))
        return queue_id_of(text.decode("utf-8", "replace"))


def make_message(sender, rcpt, subject="tern test", body=b"hello\n"):
    """A small RFC 5322 message (LF endings) with a unique Message-ID;
    returns (message_id, bytes)."""
    mid = "<%s@client.example.org>" % uuid.uuid4().hex
    head = ("From: <%s>\nTo: <%s>\nSubject: %s\nMessage-ID: %s\n"
            "Date: Mon, 01 Jan 2024 00:00:00 +0000\n\n"
            % (sender, rcpt, subject, mid)).encode()
    return mid, head + body


# ------------------------------------------------------------ queue files

def queue_id():
    """A fresh, well-formed queue ID (lib/mail/queue.h)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    n = uuid.uuid4().int
    return "".join(alphabet[(n >> (5 * i)) & 31] for i in range(14))


def queue_record(rtype, payload):
    return rtype + struct.pack(">I", len(payload)) + payload


def queue_file(sender, rcpts, content):
    """A queue file as lib/mail/qfile.h describes it; rcpts are
    (address, status byte) pairs, content has CRLF endings."""
    now = time.time()
    out = queue_record(b"V", b"TERNQ1")
    out += queue_record(b"T", ("%d.%06d" % (int(now), int(now % 1 * 1e6)))
                        .encode())
    out += queue_record(b"S", sender.encode())
    for addr, status in rcpts:
        out += queue_record(status, addr.encode() + b"\0\0" + b"0")
    out += queue_record(b"M", content)
    out += queue_record(b"E", b"")
    return out


def queue_file_records(data):
    """[(type letter, payload bytes)] of a queue file."""
    out = []
    i = 0
    while i + 5 <= len(data):
        rtype = chr(data[i])
        (n,) = struct.unpack(">I", data[i + 1:i + 5])
        out.append((rtype, data[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def queue_file_recipients(data):
    """{address: status letter (R pending, D done, F failed)}."""
    return {payload.split(b"\0")[0].decode(): rtype
            for rtype, payload in queue_file_records(data)
            if rtype in "RDF"}


def place_queue_file(tern, state, data):
    """Writes data as state/ID, owned like the queue (qmgr must open it
    read-write); returns ID."""
    qid = queue_id()
    d = os.path.join(tern.queue_dir, state)
    st = os.stat(d)
    tmp = os.path.join(tern.queue_dir, "tmp", qid)
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    if is_root():
        os.chown(tmp, st.st_uid, st.st_gid)
    os.rename(tmp, os.path.join(d, qid))
    return qid


# ------------------------------------------------------------------- IPC

def attr_frame(pairs):
    """One frame of lib/mail/attr.h from (name, value) pairs."""
    body = b""
    for name, value in pairs:
        if isinstance(name, str):
            name = name.encode()
        if isinstance(value, int):
            value = str(value)
        if isinstance(value, str):
            value = value.encode()
        body += bytes([len(name)]) + name + struct.pack(">I", len(value)) \
            + value
    return struct.pack(">I", len(body)) + body


def attr_parse(payload):
    out = []
    i = 0
    while i < len(payload):
        n = payload[i]
        name = payload[i + 1:i + 1 + n].decode()
        i += 1 + n
        (vlen,) = struct.unpack(">I", payload[i:i + 4])
        out.append((name, payload[i + 4:i + 4 + vlen].decode(
            "utf-8", "replace")))
        i += 4 + vlen
    return out


class AttrConn(SocketConn):
    """One connection to a tern service's UNIX socket: any number of
    request frames, replies read one at a time as they arrive (a service
    such as auth answers out of order; match them by their "id"). Every
    read has a deadline and a size cap."""

    MAX_FRAME = 4 * 1024 * 1024     # lib/mail/attr.h ATTR_FRAME_MAX

    def __init__(self, path, timeout=SMTP_TIMEOUT):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except BaseException:
            self.sock.close()
            raise
        self.buf = b""

    def send(self, pairs):
        self.sock.sendall(attr_frame(pairs))

    def reply(self):
        """The next reply frame's (name, value) pairs; raises
        socket.timeout if none comes, ConnectionError at EOF."""
        while len(self.buf) < 4 or \
                len(self.buf) < 4 + struct.unpack(">I", self.buf[:4])[0]:
            if len(self.buf) >= 4 and \
                    struct.unpack(">I", self.buf[:4])[0] > self.MAX_FRAME:
                raise AssertionError("%s: reply frame over the maximum"
                                     % self.path)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("%s closed without a reply"
                                      % self.path)
            self.buf += chunk
        (n,) = struct.unpack(">I", self.buf[:4])
        frame, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return attr_parse(frame)



def attr_request(path, pairs, timeout=SMTP_TIMEOUT):
    """Sends one frame to the UNIX socket at path and returns the reply
    frame's (name, value) pairs; raises socket.timeout if none comes. An
    "id" is added when pairs have none: without one a request is a notice
    (lib/mail/attr_client.h) that event-driven services do not answer."""
    if not any(name == "id" for name, _ in pairs):
        pairs = [("id", "1")] + list(pairs)
    with AttrConn(path, timeout) as c:
        c.send(pairs)
        return c.reply()


# ---------------------------------------------------------------- maildir

def foreign_env(**extra):
    """The environment for programs that are not ours (Dovecot, mbsync,
    fetchmail): without our sanitizer settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("SAN_OPTIONS")}
    env.update(extra)
    return env


def dovecot_config(directory, maildir, pw, extra=""):
    """A Dovecot configuration of its own in directory (made), for
    doveadm and Dovecot's imap on maildir as pw (a pwd entry), never the
    system Dovecot's. (conf path, environment to run them with)."""
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    if is_root():
        # Dovecot, run as pw, makes its base_dir and log there.
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    conf = os.path.join(directory, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("ssl = no\n"
                "log_path = %s/dovecot.log\n"
                "base_dir = %s/run\n"
                "mail_location = maildir:%s\n"
                "mail_uid = %s\n"
                "mail_gid = %d\n"
                "first_valid_uid = 1\n"
                "first_valid_gid = 1\n%s"
                % (directory, directory, maildir, pw.pw_name, pw.pw_gid,
                   extra))
    return conf, foreign_env(USER=pw.pw_name, HOME=directory)


class PairIMAP(imaplib.IMAP4):
    """imaplib on one end of a socketpair instead of a TCP connection."""

    def __init__(self, sock, timeout=SMTP_TIMEOUT):
        self._pair = sock
        super().__init__("imapd", 0, timeout=timeout)

    def open(self, host="", port=0, timeout=None):
        self.host = host
        self.port = port
        self.sock = self._pair
        self.sock.settimeout(timeout)
        self.file = self.sock.makefile("rb")


class SessionProcess:
    """Mixed into a TernTestCase that runs a session program (pop3d,
    imapd) by hand, as spawn would after a login: on a socketpair, as the
    mailbox owner, with spawn's environment. The class names
    session_program (a path), session_user and session_local_port."""

    session_program = None
    session_user = None
    session_local_port = "0"

    def session_owner(self):
        """The uid sessions run as: vmail_user's as root, else ours."""
        if is_root():
            return pwd.getpwnam(self.tern.conf_get("vmail_user"))
        return pwd.getpwuid(os.geteuid())

    def make_conf(self, **params):
        """A configuration directory for the session program: the
        instance's log and the given parameters."""
        d = os.path.join(self.tern.tmp, "sessconf-" + uuid.uuid4().hex[:8])
        os.mkdir(d)
        os.chmod(d, 0o755)
        lines = ["maillog_file = %s" % self.tern.log_path]
        lines += ["%s = %s" % kv for kv in params.items()]
        with open(os.path.join(d, "tern.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(os.path.join(d, "tern.conf"), 0o644)
        return d

    def owner_argv(self):
        if not is_root():
            return []
        return ["setpriv", "--reuid=%d" % self.owner.pw_uid,
                "--regid=%d" % self.owner.pw_gid, "--clear-groups", "--"]

    def env(self, maildir, user=None, tag=None, input=None):
        env = {k: os.environ[k] for k in SANITIZER_VARS + ["PATH"]
               if k in os.environ}
        env.update(TERN_SESSION_USER=user or self.session_user,
                   TERN_SESSION_MAILDIR=maildir,
                   TERN_SESSION_CLIENT="127.0.0.1",
                   TERN_SESSION_CLIENT_PORT="40000",
                   TERN_SESSION_LOCAL="127.0.0.1",
                   TERN_SESSION_LOCAL_PORT=self.session_local_port,
                   TERN_SESSION_TLS="0",
                   TERN_SESSION_ID=uuid.uuid4().hex[:8])
        if tag is not None:
            env["TERN_SESSION_TAG"] = tag
        if input is not None:
            env["TERN_SESSION_INPUT"] = base64.b64encode(input).decode()
        return env

    def start_session(self, maildir, conf=None, tag=None, input=None,
                      argv_prefix=None):
        """(process, our end of its socketpair); both go at cleanup."""
        ours, theirs = socket.socketpair()
        with open(self.tern.log_path, "ab") as log:
            proc = subprocess.Popen(
                (self.owner_argv() if argv_prefix is None else argv_prefix)
                + [self.session_program, "-c", conf or self.conf],
                stdin=theirs, stdout=subprocess.DEVNULL, stderr=log,
                env=self.env(maildir, tag=tag, input=input), cwd="/")
        theirs.close()
        self.addCleanup(self._reap, proc, ours)
        return proc, ours

    @staticmethod
    def _reap(proc, sock):
        sock.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def maildir_files(maildir, sub="new"):
    d = os.path.join(maildir, sub)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(d, n) for n in names if not n.startswith("."))


def maildir_count(maildir):
    return len(maildir_files(maildir, "new")) + len(maildir_files(maildir, "cur"))


def read_maildir(maildir):
    """Contents (bytes) of every message in new/ and cur/, oldest first."""
    files = maildir_files(maildir, "new") + maildir_files(maildir, "cur")
    files.sort(key=lambda p: (os.stat(p).st_mtime, p))
    out = []
    for p in files:
        with open(p, "rb") as f:
            out.append(f.read())
    return out


def split_delivered(data):
    """Splits a delivered message into (return_path_line, received_header,
    rest): the first line, the Received: header with its continuation
    lines (after any Delivered-To: lines), and everything after it (all
    bytes, LF endings)."""
    first, sep, rest = data.partition(b"\n")
    if not sep:
        raise AssertionError("delivered message has no line end: %r"
                             % data[:200])
    lines = rest.split(b"\n")
    # Local delivery to a system user adds Delivered-To after Return-Path.
    while lines and lines[0].startswith(b"Delivered-To: "):
        lines.pop(0)
    received = [lines[0]]
    i = 1
    while i < len(lines) and lines[i][:1] in (b"\t", b" "):
        received.append(lines[i])
        i += 1
    return first, b"\n".join(received) + b"\n", b"\n".join(lines[i:])


# --------------------------------------------------------------- instance

class TernInstance:
    """One tern instance under a temporary directory:

        TMP/inst/   config dir (tern.conf, services.conf, queue/, mail/,
                    users, log/maillog), created by tern init
        TMP/home/   homes of system users made by create_system_user()

    address: where its inet services listen (inet_interfaces; another
    127.0.0.x for tests with two instances or peers on one port).
    """

    def __init__(self, port_base=None, virtual_domain=VIRTUAL_DOMAIN,
                 address="127.0.0.1", mail_access=False):
        if is_root():
            ensure_system_users()
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="tern-test-"))
        record_for_cleanup("dir", self.tmp)
        # Unprivileged daemons (tern, vmail, system users) must get in.
        os.chmod(self.tmp, 0o755)
        self.dir = os.path.join(self.tmp, "inst")
        self.address = address
        # A base the caller passed is the caller's to release.
        self.own_port_base = port_base is None
        self.port_base = port_base or pick_port_base(address)
        self.smtp_port = self.port_base + 25
        self.submission_port = self.port_base + 587
        self.pop3_port = self.port_base + 110
        self.pop3s_port = self.port_base + 995
        self.imap_port = self.port_base + 143
        self.imaps_port = self.port_base + 993
        # Programs may also run from here (a test's own daemon_directory).
        self.daemon_dirs = [DAEMON_DIR]
        self.users_made = []
        self.log_checked = 0
        self.closed = False
        try:
            run([self.sbin("tern"), "-c", self.dir, "init", "--port-base",
                 str(self.port_base)])
            settings = dict(
                # Daemons get only $import_environment: let the sanitizer
                # settings of this run through as well.
                import_environment=" ".join(
                    ["TZ", "LANG=C"] + SANITIZER_VARS),
                # No greeting pause on port 25: tests that want one set it.
                smtpd_greet_pause="0",
                # Clients on 127.0.0.1 are strangers, as on the internet:
                # tests of trusted networks set mynetworks themselves.
                mynetworks="",
                # Mail to remote domains (notices to senders at
                # example.org, say) must not ask the world's DNS: a
                # loopback port where nothing listens makes it wait in
                # the queue. Tests of outbound mail and DNSBLs name their
                # own server.
                dns_servers="127.0.0.1:9")
            # Twenty outbound agents cost each instance two seconds of
            # start and stop on a small machine; four serve every test
            # (tests of concurrency raise it).
            self.edit_service("smtp", 5, "4")
            self.mail_access = mail_access
            if mail_access:
                # LeakSanitizer needs /proc, which the login processes'
                # chroot hides: test instances run them unchrooted, one
                # per port; the tests of the chroot itself put it back
                # inside leak_checks_off().
                for port in (self.pop3_port, self.pop3s_port,
                             self.imap_port, self.imaps_port):
                    self.edit_service(str(port), 4, "n")
                    self.edit_service(str(port), 5, "1")
            else:
                # Most tests never log in over POP3 or IMAP: an instance
                # without the login processes and spawn starts and stops
                # faster (each is a sanitized process to start, reap and
                # leak-check).
                self.disable_services(
                    lambda f: f[0].startswith("login/") or f[6] == "login")
            if address != "127.0.0.1":
                settings["inet_interfaces"] = address
            (domains, self.queue_dir, self.vmail_base,
             self.log_path) = self.conf_get_many(
                "virtual_mailbox_domains", "queue_directory",
                "virtual_mailbox_base", "maillog_file")
            if virtual_domain and not domains:
                settings["virtual_mailbox_domains"] = virtual_domain
            self.conf_set(**settings)
            if not self.log_path:
                raise AssertionError("tern init left maillog_file empty in "
                                     "%s/tern.conf" % self.dir)
        except BaseException:
            self._remove_tmp()
            raise

    def __repr__(self):
        return "TernInstance(%s, port base %d)" % (self.dir, self.port_base)

    # ----- programs and configuration

    @staticmethod
    def sbin(name):
        return os.path.join(SBIN_DIR, name)

    def tern(self, *args, check=True, timeout=COMMAND_TIMEOUT):
        return run([self.sbin("tern"), "-c", self.dir] + list(args),
                   check=check, timeout=timeout)

    def ternconf(self, *args, check=True):
        return run([self.sbin("ternconf"), "-c", self.dir] + list(args),
                   check=check)

    def ternuser(self, *args, check=True, input=None):
        return run([self.sbin("ternuser"), "-c", self.dir] + list(args),
                   check=check, input=input)

    def conf_get(self, name):
        """The effective (expanded) value of a parameter."""
        return self.conf_get_many(name)[0]

    def conf_get_many(self, *names):
        """The effective values of the parameters, in one ternconf run."""
        out = self.ternconf("-x", *names).stdout
        values = {}
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip()
        for name in names:
            if name not in values:
                raise AssertionError("ternconf printed no '%s = value' "
                                     "line: %r" % (name, out))
        return [values[name] for name in names]

    def conf_set(self, **params):
        if params:
            self.ternconf("-e", *("%s=%s" % (name, value)
                                  for name, value in params.items()))

    def services_path(self):
        return os.path.join(self.dir, "services.conf")

    # ----- life cycle

    def start(self, timeout=START_TIMEOUT):
        """tern start, then waits until master runs and port 25 answers."""
        self.tern("start")
        wait_until(self.master_pid, timeout, "master of %s to run" % self.dir)
        self.wait_smtp(timeout)

    def wait_smtp(self, timeout=START_TIMEOUT, port=None):
        """Waits until a new SMTP session gets a 220 banner; returns it."""
        port = port or self.smtp_port

        def banner():
            try:
                with SmtpConn(port, timeout=5, host=self.address) as c:
                    code, text = c.banner
                    with contextlib.suppress(OSError, ConnectionError,
                                             AssertionError):
                        c.cmd("QUIT")
                    return text if code == 220 else None
            except (OSError, ConnectionError):
                return None
        return wait_until(banner, timeout, "a 220 banner on port %d" % port,
                          interval=0.1)

    def stop(self, timeout=STOP_TIMEOUT):
        """tern stop, then waits until no process of the instance is left."""
        self.tern("stop", timeout=timeout)
        wait_until(lambda: not self.pids(), timeout,
                   "every process of %s to exit after tern stop; left: %s"
                   % (self.dir, self.describe_pids()))

    def reload(self):
        return self.tern("reload")

    def status(self):
        return self.tern("status", check=False)

    def check(self):
        return self.tern("check", check=False)

    # ----- processes

    def pids(self, program=None, service=None, daemons_only=False):
        """Pids of this instance's master and daemons (argv has -c DIR),
        optionally only those of program (e.g. "smtpd") and service
        (the -n name). Sessions that spawn started (pop3d, imapd: argv
        without -n) count too, unless daemons_only: then only master and
        what master started."""
        found = []
        for pid in all_pids():
            argv = proc_cmdline(pid)
            if not argv or not pid_alive(pid):
                continue
            prog = os.path.basename(argv[0])
            if not (any(argv[0].startswith(d + "/")
                        for d in self.daemon_dirs)
                    or prog in ("master", "smtpd", "qmgr", "local",
                                "spawn", "pop3d", "imapd")):
                continue
            if daemons_only and prog != "master" and "-n" not in argv:
                continue
            if not any(argv[i] == "-c" and argv[i + 1] == self.dir
                       for i in range(len(argv) - 1)):
                continue
            if program is not None and prog != program:
                continue
            if service is not None and not any(
                    argv[i] == "-n" and argv[i + 1] == service
                    for i in range(len(argv) - 1)):
                continue
            found.append(pid)
        return sorted(found)

    pids_of = pids

    def expected_daemons(self):
        """Processes services.conf asks for: the sum of its maxproc column
        ("-": $default_process_limit)."""
        want = 0
        default = None
        with open(self.services_path()) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 7 and not line[0].isspace() and \
                        not fields[0].startswith("#"):
                    if fields[5] == "-":
                        if default is None:
                            default = int(self.conf_get(
                                "default_process_limit"))
                        want += default
                    else:
                        want += int(fields[5])
        return want

    def wait_ready(self, timeout=START_TIMEOUT):
        """Waits until every daemon services.conf asks for runs and waits
        in its event loop (configuration loaded, privileges dropped,
        chroot done); returns their pids (master excluded)."""
        want = self.expected_daemons()

        def ready():
            master = self.master_pid()
            daemons = [p for p in self.pids(daemons_only=True)
                       if p != master]
            return (master is not None and len(daemons) == want and
                    all(proc_wchan(p) == "do_epoll_wait" for p in daemons)
                    and daemons)
        return wait_until(ready, timeout, "%d daemons of %s to be ready"
                          % (want, self.dir))

    def master_pid(self):
        """The running master: not a child that master forked and that has
        not yet exec'd its daemon (it still shows master's argv)."""
        top = self.masters()
        return top[0] if len(top) == 1 else None

    def masters(self):
        """Every master process of this instance, leaving out the children
        a master forked that still show its argv before their exec."""
        masters = self.pids("master")
        return [p for p in masters if proc_ppid(p) not in masters]

    def describe_pids(self):
        return ", ".join("%d %s" % (p, " ".join(proc_cmdline(p) or []))
                         for p in self.pids()) or "none"

    process_user = staticmethod(process_user)

    def kill_all(self):
        """SIGKILLs whatever is left of the instance: the master's process
        group and every process naming this config dir."""
        master = self.master_pid()
        if master is not None:
            with contextlib.suppress(OSError):
                if os.getpgid(master) == master:
                    os.killpg(master, signal.SIGKILL)
        for pid in self.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not self.pids(), 10, "killed processes to go")

    # ----- services.conf

    def service_name_for_port(self, port):
        """The services.conf name of the inet service on port."""
        with open(self.services_path()) as f:
            for line in f:
                fields = line.split()
                if fields and not line[0].isspace() and \
                        not fields[0].startswith("#") and \
                        (fields[0] == str(port) or
                         fields[0].endswith(":%d" % port)):
                    return fields[0]
        raise AssertionError("no services.conf entry for port %d in %s"
                             % (port, self.services_path()))

    def edit_service(self, name, column, value):
        """Sets column (0 = name .. 5 = maxproc) of service name."""
        path = self.services_path()
        with open(path) as f:
            lines = f.read().split("\n")
        for i, line in enumerate(lines):
            fields = line.split()
            if fields and fields[0] == name and not line[0].isspace():
                fields[column] = value
                lines[i] = " ".join(fields)
                break
        else:
            raise AssertionError("no service %s in %s" % (name, path))
        with open(path + ".new", "w") as f:
            f.write("\n".join(lines))
        os.rename(path + ".new", path)

    def disable_services(self, which):
        """Comments out each service (with its continuation lines) whose
        fields which(fields) accepts."""
        path = self.services_path()
        with open(path) as f:
            lines = f.read().split("\n")
        dropping = False
        for i, line in enumerate(lines):
            fields = line.split()
            if line[:1].isspace() and fields:
                if dropping:
                    lines[i] = "#" + line
                continue
            dropping = (len(fields) >= 7 and not fields[0].startswith("#")
                        and which(fields))
            if dropping:
                lines[i] = "#" + line
        with open(path + ".new", "w") as f:
            f.write("\n".join(lines))
        os.rename(path + ".new", path)

    # ----- users and mail

    def add_user(self, addr, password):
        """Creates a virtual user with ternuser (the password on stdin, as
        an admin would give it, out of ps(1))."""
        return self.ternuser("add", addr, "-",
                             input=(password + "\n").encode())

    def virtual_maildir(self, addr):
        local, domain = addr.lower().rsplit("@", 1)
        return os.path.join(self.vmail_base, domain, local, "Maildir")

    def create_system_user(self, name=None):
        """Root only: a login-less system user with its home under the
        instance's temp dir (removed at teardown). Returns its pwd entry."""
        skip_unless_root("creating system users")
        name = name or "tt%s" % uuid.uuid4().hex[:10]
        home = os.path.join(self.tmp, "home", name)
        os.makedirs(os.path.dirname(home), mode=0o755, exist_ok=True)
        record_for_cleanup("user", name)
        run(["useradd", "-m", "-U", "-d", home, "-s", "/usr/sbin/nologin",
             name])
        self.users_made.append(name)
        return pwd.getpwnam(name)

    @staticmethod
    def system_maildir(pw):
        return os.path.join(pw.pw_dir, "Maildir")

    def wait_for_maildir(self, maildir, count, timeout=DELIVERY_TIMEOUT):
        """Waits until maildir/new holds at least count messages; returns
        their paths. Fails with the log's tail on timeout."""
        try:
            return wait_until(
                lambda: (len(maildir_files(maildir)) >= count
                         and maildir_files(maildir)),
                timeout, "%d message(s) in %s/new" % (count, maildir))
        except AssertionError as e:
            raise AssertionError("%s (has %d)\n--- log tail ---\n%s"
                                 % (e, len(maildir_files(maildir)),
                                    self.log_tail()))

    read_maildir = staticmethod(read_maildir)

    # ----- queue

    def queue_files(self, state):
        try:
            return sorted(os.listdir(os.path.join(self.queue_dir, state)))
        except FileNotFoundError:
            return []

    def wait_queue_empty(self, states=("incoming", "active"),
                         timeout=DELIVERY_TIMEOUT):
        wait_until(lambda: not any(self.queue_files(s) for s in states),
                   timeout, "queue states %s to empty" % ", ".join(states))

    # ----- log

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for_log(self, regex, timeout=DELIVERY_TIMEOUT, since=0):
        """Waits until the log (from byte offset since) matches regex;
        returns the match."""
        pat = re.compile(regex, re.M)

        def found():
            with contextlib.suppress(FileNotFoundError):
                with open(self.log_path, "rb") as f:
                    f.seek(since)
                    return pat.search(f.read().decode("utf-8", "replace"))
            return None
        try:
            return wait_until(found, timeout, "log line matching %r" % regex)
        except AssertionError as e:
            raise AssertionError("%s\n--- log tail ---\n%s"
                                 % (e, self.log_tail()))

    def check_log(self):
        """Fails on a sanitizer or panic report written since last check."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_checked)
                data = f.read()
        except FileNotFoundError:
            return
        self.log_checked += len(data)
        check_sanitizer_output(data.decode("utf-8", "replace"), self.log_path)

    # ----- teardown

    def close(self):
        """Stops the instance (SIGKILL if stop fails), scans the log,
        removes system users and the temp dir. Raises AssertionError for
        a failed stop or a sanitizer report, after cleaning up."""
        if self.closed:
            return
        self.closed = True
        problems = []
        if self.pids():
            try:
                self.stop()
            except AssertionError as e:
                problems.append("stopping %s failed: %s" % (self.dir, e))
                self.kill_all()
        try:
            self.check_log()
        except AssertionError as e:
            problems.append(str(e))
        for name in self.users_made:
            run(["userdel", name], check=False)
        self.users_made = []
        if os.environ.get("TERN_KEEP") == "1":
            print("TERN_KEEP=1: keeping %s" % self.tmp, file=sys.stderr)
        else:
            self._remove_tmp()
        if self.own_port_base:
            release_ports(base_ports(self.port_base))
        if problems:
            raise AssertionError("\n".join(problems))

    def _remove_tmp(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class TernTestCase(unittest.TestCase):
    """Gives each test class a running instance as self.tern (set
    start_instance = False for one that is only initialised, or
    class_instance = False for none); self.new_instance() makes a private
    one for a single test."""

    class_instance = True
    start_instance = True
    instance_options = {}   # TernInstance arguments of the class instance
    tern = None

    @classmethod
    def configure(cls, tern):
        """Hook: change the class instance's config before it starts."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tern = None
        if not cls.class_instance:
            return
        inst = TernInstance(**cls.instance_options)
        try:
            cls.configure(inst)
            if cls.start_instance:
                inst.start()
        except BaseException:
            with contextlib.suppress(AssertionError):
                inst.close()
            raise
        cls.tern = inst

    @classmethod
    def tearDownClass(cls):
        inst, cls.tern = cls.tern, None
        try:
            if inst is not None:
                inst.close()
        finally:
            super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.instances = [self.tern] if self.tern is not None else []

    def tearDown(self):
        # A report written while this test ran fails this test.
        for inst in self.instances:
            if not inst.closed:
                inst.check_log()
        super().tearDown()

    def new_instance(self, start=True, configure=None, **options):
        """A private instance for this test, closed (and checked) after
        it; options go to TernInstance (address=...)."""
        inst = TernInstance(**options)
        self.addCleanup(inst.close)
        if configure is not None:
            configure(inst)
        if start:
            inst.start()
        self.instances.append(inst)
        return inst

    # ----- assertions shared by the test modules

    def assertDelivered(self, data, sender, original, queue_id=None):
        """data (a stored message) is exactly Return-Path + Received +
        original; returns the Received header."""
        rp, received, rest = split_delivered(data)
        self.assertEqual(rp, ("Return-Path: <%s>" % sender).encode())
        self.assertTrue(received.startswith(b"Received: from "), received)
        self.assertIn(b"by ", received)
        if queue_id is not None:
            self.assertRegex(received, (r"with ESMTP id %s\b"
                                        % queue_id).encode())
        for cont in received.split(b"\n")[1:-1]:
            self.assertTrue(cont.startswith(b"\t"),
                            "Received continuation line not tab-indented: %r"
                            % cont)
        self.assertEqual(rest, original)
        return received


def common_port_base(*addresses):
    """A port base whose service ports are free on every address: sites
    that reach each other through MX records share one SMTP port."""
    return _pick_ports(PORT_OFFSETS, addresses, "port base")


class TwoSiteTestCase(TernTestCase):
    """An ISP and an office that reach each other through MX records:
    the class instance at isp_address and cls.office at office_address,
    on one port base. Subclasses set isp_options (more TernInstance
    arguments) and configure_office (the office's configuration; it is
    not started here)."""

    isp_address = "127.0.0.2"
    office_address = "127.0.0.3"
    isp_options = {}
    office = None

    @classmethod
    def configure_office(cls, office, base):
        """Hook: the office's configuration (base: the shared port base)."""

    @classmethod
    def setUpClass(cls):
        base = cls.port_base = common_port_base(cls.office_address,
                                                 cls.isp_address)
        cls.instance_options = dict(cls.isp_options,
                                    address=cls.isp_address, port_base=base)
        super().setUpClass()
        try:
            cls.office = TernInstance(address=cls.office_address,
                                      port_base=base)
            cls.configure_office(cls.office, base)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        office, cls.office = cls.office, None
        try:
            if office is not None:
                office.close()
        finally:
            super().tearDownClass()
            release_ports(base_ports(cls.port_base))

    def setUp(self):
        super().setUp()
        self.instances.append(self.office)


def find_free_port(address="127.0.0.1"):
    """One free port (for peers the tests start), claimed for the rest of
    this process."""
    return _pick_ports((0,), [address], "port")



# -------------------------------------------------------------------- DNS

DNS_TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16,
             "AAAA": 28}
DNS_NOERROR, DNS_SERVFAIL, DNS_NXDOMAIN = 0, 2, 3
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def _dns_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _dns_read_name(msg, i, hops=0):
    """(name, offset after it) of the name at msg[i], compression too."""
    labels = []
    end = None
    while True:
        if i >= len(msg) or hops > 32:
            raise ValueError("bad name in DNS answer")
        n = msg[i]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = i + 2
            i = ((n & 0x3F) << 8) | msg[i + 1]
            hops += 1
            continue
        if n == 0:
            return ".".join(labels), (end if end is not None else i + 1)
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n


def dns_query(port, name, qtype, host="127.0.0.1", timeout=2):
    """Asks host:port (UDP) one question; returns (rcode, [(type name,
    value)]) with MX as (pref, host), A/AAAA as text, CNAME as the
    target; None when nothing answered within timeout."""
    qid = random.randrange(65536)
    question = _dns_name(name) + struct.pack(">HH", DNS_TYPES[qtype], 1)
    msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, (host, port))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, _ = s.recvfrom(65535)
            except socket.timeout:
                return None
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                break
    flags, qd, an = struct.unpack(">HHH", data[2:8])
    i = 12
    for _ in range(qd):
        _, i = _dns_read_name(data, i)
        i += 4
    answers = []
    names = {v: k for k, v in DNS_TYPES.items()}
    for _ in range(an):
        _, i = _dns_read_name(data, i)
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[i:i + 10])
        rd = i + 10
        i = rd + rdlen
        tname = names.get(rtype, str(rtype))
        if tname == "A":
            value = socket.inet_ntop(socket.AF_INET, data[rd:rd + 4])
        elif tname == "AAAA":
            value = socket.inet_ntop(socket.AF_INET6, data[rd:rd + 16])
        elif tname == "MX":
            value = (struct.unpack(">H", data[rd:rd + 2])[0],
                     _dns_read_name(data, rd + 2)[0])
        elif tname == "CNAME":
            value = _dns_read_name(data, rd)[0]
        else:
            value = data[rd:i]
        answers.append((tname, value))
    return flags & 0xF, answers


class _ServfailServer:
    """A UDP DNS server that answers every question SERVFAIL: where
    DnsServer forwards the zones that must fail (dnsmasq itself cannot
    be told to fail a zone, and a silent forwarder would make a timeout,
    another case)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True,
                                       name="servfail")
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(data) < 12:
                continue
            # The question echoed; QR, RD, RA and rcode 2.
            flags = 0x8000 | (struct.unpack(">H", data[2:4])[0] & 0x0100) \
                | 0x0080 | DNS_SERVFAIL
            reply = data[:2] + struct.pack(">HHHHH", flags, 1, 0, 0, 0)
            with contextlib.suppress(ValueError, OSError):
                _, end = _dns_read_name(data, 12)
                self.sock.sendto(reply + data[12:end + 4], addr)

    def stop(self):
        self.stopping = True
        self.thread.join(10)
        self.sock.close()


class DnsServer:
    """dnsmasq on 127.0.0.1:PORT serving fixed records for test domains,
    for `dns_servers = dns.server` (the resolver tern's smtp client and
    smtpd's DNSBL checks ask):

        dns = DnsServer(tmpdir)
        dns.mx("a.test", "mx1.a.test", 10)
        dns.host("mx1.a.test", "127.0.0.2")       # A (and AAAA: "::1")
        dns.null_mx("nomail.test")
        dns.cname("alias.a.test", "mx1.a.test")
        dns.servfail("broken.test")
        dns.start()
        inst.conf_set(dns_servers=dns.server)
        ...
        dns.stop()

    Every name under local_zones (default "test", "example", "invalid")
    that has no record answers NXDOMAIN; nothing is forwarded to the
    internet. Records change by calling the setters and restart() (same
    port). TTLs are ttl seconds (default 0: answers are not cached, so
    a restart's new data is seen at once)."""

    def __init__(self, tmpdir, local_zones=("test", "example", "invalid"),
                 ttl=0):
        self.tmpdir = tmpdir
        self.local_zones = list(local_zones)
        self.ttl = ttl
        self.port = None
        self.proc = None
        self.servfail_zones = []
        self._servfail = None
        self.records = []       # dnsmasq options, in order
        self.log_path = os.path.join(tmpdir, "dnsmasq.log")

    @property
    def server(self):
        """The dns_servers value: "127.0.0.1:PORT"."""
        return "127.0.0.1:%d" % self.port

    # ----- records

    def mx(self, domain, host, pref=10):
        self.records.append("--mx-host=%s,%s,%d" % (domain, host, pref))

    def host(self, name, *addrs):
        """A and AAAA records of name (one --host-record: dnsmasq gives
        the name both families' records, and NODATA for a family it has
        none of)."""
        self.records.append("--host-record=%s,%s" % (name, ",".join(addrs)))

    a = host

    def cname(self, alias, target):
        """alias -> target; dnsmasq needs target to have local records."""
        self.records.append("--cname=%s,%s" % (alias, target))

    def null_mx(self, domain):
        """RFC 7505: MX 0 "." (dnsmasq's --mx-host cannot name the root:
        a raw record of type 15, preference 0 and the empty name)."""
        self.records.append("--dns-rr=%s,15,000000" % domain)

    def txt(self, name, text):
        self.records.append("--txt-record=%s,%s" % (name, text))

    def servfail(self, zone):
        """Every question under zone answers SERVFAIL."""
        self.servfail_zones.append(zone)

    # ----- life cycle

    def _argv(self):
        argv = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--no-poll",
                "--listen-address=127.0.0.1", "--bind-interfaces",
                "--port=%d" % self.port, "--local-ttl=%d" % self.ttl,
                "--log-facility=" + self.log_path, "--pid-file="]
        if is_root():
            # Stay root: a setuid() would drop the parent-death signal.
            argv += ["--user=root", "--group=root"]
        for z in self.servfail_zones:
            argv.append("--server=/%s/127.0.0.1#%d"
                        % (z, self._servfail.port))
        argv += ["--local=/%s/" % z for z in self.local_zones]
        return argv + self.records

    def start(self, timeout=START_TIMEOUT):
        """Starts dnsmasq (on a new free port the first time, the same
        port on a restart) and waits until it answers."""
        if not os.access(DNSMASQ, os.X_OK):
            raise AssertionError("dnsmasq not found (apt-get install "
                                 "dnsmasq-base; test.sh does)")
        if self.servfail_zones and self._servfail is None:
            self._servfail = _ServfailServer()
        attempts = 1 if self.port else 5
        for _ in range(attempts):
            if not self.port or attempts > 1:
                self.port = _free_udp_tcp_port()
            self.proc = subprocess.Popen(
                self._argv(), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent)
            record_for_cleanup("pid", "%d %s" % (self.proc.pid, DNSMASQ))

            def answers():
                if self.proc.poll() is not None:
                    return "exited"
                return dns_query(self.port, "dnsmasq-probe.%s"
                                 % self.local_zones[0], "A",
                                 timeout=0.5) is not None
            state = wait_until(answers, timeout, "dnsmasq on 127.0.0.1:%d"
                               % self.port)
            if state is True:
                return self
            err = self.proc.stderr.read().decode("utf-8", "replace")
            self.proc = None
            if "Address already in use" not in err:
                raise AssertionError("dnsmasq exited: %s" % err.strip())
        raise AssertionError("dnsmasq: no free port after %d attempts"
                             % attempts)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(STOP_TIMEOUT)
            self.proc.stderr.close()
            self.proc = None

    def restart(self):
        """Restarts with the records as they are now, on the same port."""
        self.stop()
        return self.start()

    def close(self):
        self.stop()
        if self._servfail is not None:
            self._servfail.stop()
            self._servfail = None

    def query(self, name, qtype):
        return dns_query(self.port, name, qtype)


def _die_with_parent():
    """preexec_fn: SIGKILL when the test process dies (prctl
    PR_SET_PDEATHSIG), so no helper outlives a killed module."""
    import ctypes
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _free_udp_tcp_port():
    """A port free for both UDP and TCP on 127.0.0.1 a moment ago."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise AssertionError("no port free for both UDP and TCP")
