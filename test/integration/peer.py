# SPDX-License-Identifier: MIT
"""SMTP peers for the outbound tests: the servers tern's smtp client
delivers to, on 127.0.0.2, 127.0.0.3, ... (the rest of 127.0.0.0/8).

ScriptedPeer is a small SMTP server in Python whose behaviour a test
sets: the extensions it offers, replies on command, and ways of being
broken. It records what the client did:

    p = ScriptedPeer("127.0.0.2", port, extensions=["PIPELINING", "DSN"])
    p.rule("RCPT", "450 4.2.1 try later", match="slow@")
    p.start()                      # returns once it accepts
    ...
    [tx] = p.wait_messages(1)       # Transaction: helo, mail_from, rcpts...
    p.stop()                        # closes every session, joins threads

SmtpSink runs Postfix's smtp-sink(1) (a foreign implementation) on
ADDR:PORT, dumping each message into a directory.

make_cert() makes a self-signed certificate with openssl.

Every read here has a deadline and a size cap; stop() ends every thread
(sessions blocked on a silent client too) within a bounded time.
"""

import base64
import contextlib
import os
import pwd
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import harness

# Actions a rule may give instead of a reply text.
SILENT = "silent"           # say nothing, keep the connection open
GARBAGE = "garbage"         # a line that is no SMTP reply
OVERLONG = "overlong"       # a reply line far over RFC 5321's 512 octets
ENDLESS = "endless"         # "250-..." continuation lines that never end
DROP = "drop"               # close the connection without a reply

# Stages a rule can apply to: the greeting, a command verb, "DOT" (the
# reply after the end of the message: "." or BDAT LAST) and "BODY" (after
# 354, once part of the message arrived: DROP there drops mid-DATA).
STAGES = ("CONNECT", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT",
          "DATA", "BODY", "DOT", "BDAT", "RSET", "NOOP", "QUIT")

LINE_MAX = 4096                 # a command line, generously over 512
MESSAGE_MAX = 64 * 1024 * 1024  # one message's content
SESSION_TIMEOUT = 30            # any single read or write
OVERLONG_LEN = 100 * 1000
ENDLESS_LIMIT = 60              # seconds an endless reply goes on at most
PIPELINING_WAIT = 0.1           # how long MAIL waits for what follows it
START_TIMEOUT = 10
STOP_TIMEOUT = 15


class Transaction:
    """One mail transaction the peer accepted (250 at the end of data)."""

    def __init__(self, session):
        self.client = session.client
        self.helo = session.helo
        self.esmtp = session.esmtp
        self.tls = session.tls            # None or (version, cipher)
        self.auth = session.auth_user     # None or the authenticated user
        self.mail_from = None
        self.mail_params = {}             # upper-case name -> value or None
        self.rcpts = []                   # accepted: [(address, params)]
        self.rcpt_attempts = []           # every RCPT: [(address, params)]
        self.data = b""                   # as sent, CRLF, dot-unstuffed
        self.bdat = False
        self.pipelined = False            # RCPT came before the MAIL reply

    @property
    def rcpt_addrs(self):
        return [a for a, _ in self.rcpts]

    def __repr__(self):
        return "Transaction(from=%r, to=%r, %d bytes%s)" % (
            self.mail_from, self.rcpt_addrs, len(self.data),
            ", TLS" if self.tls else "")


class _Closed(Exception):
    pass


def _params(words):
    out = {}
    for w in words:
        k, sep, v = w.partition("=")
        out[k.upper()] = v if sep else None
    return out


def _path(arg, prefix):
    """Address and parameters of "FROM:<a> P=V ..." (prefix "FROM:")."""
    if not arg.upper().startswith(prefix):
        raise ValueError(arg)
    rest = arg[len(prefix):].lstrip()
    if not rest.startswith("<") or ">" not in rest:
        raise ValueError(arg)
    addr, _, params = rest[1:].partition(">")
    return addr, _params(params.split())


class _Session:
    def __init__(self, peer, sock, client):
        self.peer = peer
        self.sock = sock
        self.client = client[0]
        self.buf = b""
        self.helo = None
        self.esmtp = False
        self.tls = None
        self.auth_user = None
        self.tx = None
        self.commands = []

    # ----- I/O, all bounded

    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except (OSError, ssl.SSLError):
            raise _Closed()
        if not data:
            raise _Closed()
        return data

    def line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > LINE_MAX:
                self.send("500 5.5.2 line too long")
                raise _Closed()
            self.buf += self._recv()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def send(self, text):
        if isinstance(text, str):
            text = text.encode()
        try:
            self.sock.sendall(text if text.endswith(b"\n") else text + b"\r\n")
        except (OSError, ssl.SSLError):
            raise _Closed()

    def act(self, stage, arg, default):
        """Replies to stage per the peer's rules (else default); returns
        the reply code sent, or raises _Closed."""
        action = self.peer._action(stage, arg)
        if action is None:
            action = default
        if action == SILENT:
            self.peer._stopping.wait(SESSION_TIMEOUT * 4)
            raise _Closed()
        if action == DROP:
            raise _Closed()
        if action == GARBAGE:
            self.send("hello, this is not SMTP")
            return 0
        if action == OVERLONG:
            self.send("250 " + "x" * OVERLONG_LEN)
            return 250
        if action == ENDLESS:
            end = time.monotonic() + ENDLESS_LIMIT
            n = 0
            while not self.peer._stopping.is_set() and \
                    time.monotonic() < end:
                self.send("250-line %d of a reply that never ends" % n)
                n += 1
                if n % 100 == 0:
                    self.peer._stopping.wait(0.01)
            raise _Closed()
        self.send(action)
        try:
            return int(action[:3])
        except ValueError:
            return 0

    # ----- the protocol

    def run(self):
        with self.peer._lock:
            self.peer.connections += 1
        try:
            code = self.act("CONNECT", "", "220 %s ESMTP scripted peer"
                            % self.peer.hostname)
            if code != 220:
                # A refusing greeting: wait for QUIT (bounded), then go.
                with contextlib.suppress(_Closed):
                    self.line()
                    self.send("221 2.0.0 bye")
                return
            while True:
                line = self.line()
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                self.commands.append(verb)
                with self.peer._lock:
                    self.peer.commands.append((verb, arg))
                handler = getattr(self, "cmd_" + verb, None)
                if handler is None:
                    self.act(verb if verb in STAGES else "NOOP", arg,
                             "502 5.5.1 command not implemented")
                    continue
                if handler(arg) == "quit":
                    return
        except _Closed:
            pass

    def extensions(self):
        p = self.peer
        out = list(p.extensions)
        if p.cert and not self.tls:
            out.append("STARTTLS")
        if p.auth and (self.tls or not p.auth_tls_only) and \
                not self.auth_user:
            out.append("AUTH PLAIN LOGIN")
        return out

    def cmd_EHLO(self, arg):
        self.helo, self.esmtp, self.tx = arg.strip(), True, None
        action = self.peer._action("EHLO", arg)
        if action is not None:
            self.act("EHLO", arg, action)
            return
        lines = [self.peer.hostname] + self.extensions()
        self.send("".join("250%s%s\r\n" % ("-" if i < len(lines) - 1
                                             else " ", l)
                          for i, l in enumerate(lines)))

    def cmd_HELO(self, arg):
        self.helo, self.esmtp, self.tx = arg.strip(), False, None
        self.act("HELO", arg, "250 %s" % self.peer.hostname)

    def cmd_STARTTLS(self, arg):
        if not self.peer.cert or self.tls:
            self.act("STARTTLS", arg, "502 5.5.1 no TLS here")
            return
        if self.buf:
            # Commands pipelined after STARTTLS: RFC 3207 5 forbids it.
            self.send("501 5.5.1 commands after STARTTLS")
            raise _Closed()
        if self.act("STARTTLS", arg, "220 2.0.0 go ahead") != 220:
            return
        ctx = self.peer.tls_context()
        try:
            self.sock = ctx.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError) as e:
            with self.peer._lock:
                self.peer.tls_failures.append(str(e))
            raise _Closed()
        self.tls = (self.sock.version(), self.sock.cipher()[0])
        self.helo, self.esmtp, self.tx, self.auth_user = None, False, None, \
            None

    def cmd_AUTH(self, arg):
        p = self.peer
        if not p.auth or self.auth_user or \
                (p.auth_tls_only and not self.tls):
            self.act("AUTH", arg, "503 5.5.1 AUTH not available")
            return
        words = arg.split()
        mech = words[0].upper() if words else ""
        if mech == "PLAIN":
            resp = words[1] if len(words) > 1 else None
            if resp is None:
                self.send("334 ")
                resp = self.line()
            try:
                parts = base64.b64decode(resp, validate=True).split(b"\0")
                _, user, password = (x.decode() for x in parts)
            except (ValueError, UnicodeDecodeError):
                self.send("501 5.5.2 bad PLAIN response")
                return
        elif mech == "LOGIN":
            try:
                if len(words) > 1:
                    user = base64.b64decode(words[1]).decode()
                else:
                    self.send("334 VXNlcm5hbWU6")
                    user = base64.b64decode(self.line()).decode()
                self.send("334 UGFzc3dvcmQ6")
                password = base64.b64decode(self.line()).decode()
            except (ValueError, UnicodeDecodeError):
                self.send("501 5.5.2 bad LOGIN response")
                return
        else:
            self.send("504 5.5.4 unknown mechanism")
            return
        with p._lock:
            p.auth_attempts.append((mech, user, password))
        if (user, password) == p.auth:
            if self.act("AUTH", arg, "235 2.7.0 authenticated") == 235:
                self.auth_user = user
        else:
            self.send("535 5.7.8 authentication failed")

    def cmd_MAIL(self, arg):
        if self.helo is None and self.peer.require_helo:
            self.send("503 5.5.1 EHLO first")
            return
        try:
            addr, params = _path(arg, "FROM:")
        except ValueError:
            self.send("501 5.5.4 syntax: MAIL FROM:<address>")
            return
        tx = Transaction(self)
        tx.mail_from, tx.mail_params = addr, params
        # Whether the client sent more before our reply (RFC 2920): look
        # briefly for what follows MAIL before answering it.
        if b"\n" not in self.buf:
            with contextlib.suppress(_Closed):
                r, _, _ = select.select([self.sock], [], [],
                                        PIPELINING_WAIT)
                if r or (isinstance(self.sock, ssl.SSLSocket)
                         and self.sock.pending()):
                    self.buf += self._recv()
        tx.pipelined = b"\n" in self.buf
        size = params.get("SIZE")
        limit = self.peer.size_limit
        if limit and size and size.isdigit() and int(size) > limit:
            self.act("MAIL", arg, "552 5.3.4 message too big for this peer")
            return
        if self.act("MAIL", arg, "250 2.1.0 sender ok") == 250:
            self.tx = tx

    def cmd_RCPT(self, arg):
        if self.tx is None:
            self.send("503 5.5.1 MAIL first")
            return
        try:
            addr, params = _path(arg, "TO:")
        except ValueError:
            self.send("501 5.5.4 syntax: RCPT TO:<address>")
            return
        self.tx.rcpt_attempts.append((addr, params))
        if self.act("RCPT", addr, "250 2.1.5 recipient ok") == 250:
            self.tx.rcpts.append((addr, params))

    def cmd_DATA(self, arg):
        if self.tx is None or not self.tx.rcpts:
            self.act("DATA", arg, "503 5.5.1 no valid recipients")
            return
        if self.act("DATA", arg, "354 end with <CRLF>.<CRLF>") != 354:
            return
        if self.peer._action("BODY", "") == DROP:
            # Mid-DATA: once the first piece of the message is here.
            if not self.buf:
                self._recv()
            raise _Closed()
        lines = []
        size = 0
        while True:
            line = self._data_line()
            if line == b".\r\n":
                break
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size > MESSAGE_MAX:
                self.send("552 5.3.4 message over the test peer's cap")
                raise _Closed()
            lines.append(line)
        self._finish(b"".join(lines), bdat=False)

    def _data_line(self):
        while b"\n" not in self.buf:
            if len(self.buf) > MESSAGE_MAX:
                raise _Closed()
            self.buf += self._recv()
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def _finish(self, data, bdat):
        tx, self.tx = self.tx, None
        tx.data, tx.bdat = data, bdat
        limit = self.peer.size_limit
        if limit and len(data) > limit:
            self.act("DOT", "", "552 5.3.4 message too big for this peer")
            return
        if self.act("DOT", "", "250 2.0.0 Ok: queued as %s"
                    % self.peer._next_id()) == 250:
            with self.peer._lock:
                self.peer.transactions.append(tx)
                self.peer._changed.notify_all()

    def cmd_BDAT(self, arg):
        words = arg.split()
        if not words or not words[0].isdigit() or len(words) > 2 or \
                (len(words) == 2 and words[1].upper() != "LAST"):
            self.send("501 5.5.4 syntax: BDAT size [LAST]")
            raise _Closed()
        n, last = int(words[0]), len(words) == 2
        if n > MESSAGE_MAX:
            self.send("552 5.3.4 chunk over the test peer's cap")
            raise _Closed()
        while len(self.buf) < n:
            self.buf += self._recv()
        chunk, self.buf = self.buf[:n], self.buf[n:]
        if self.tx is None or not self.tx.rcpts:
            self.send("503 5.5.1 no valid recipients")
            return
        self.tx.bdat = True
        self.tx.data += chunk
        if len(self.tx.data) > MESSAGE_MAX:
            raise _Closed()
        if last:
            self._finish(self.tx.data, bdat=True)
        else:
            self.act("BDAT", arg, "250 2.0.0 %d octets received" % n)

    def cmd_RSET(self, arg):
        self.tx = None
        self.act("RSET", arg, "250 2.0.0 ok")

    def cmd_NOOP(self, arg):
        self.act("NOOP", arg, "250 2.0.0 ok")

    def cmd_QUIT(self, arg):
        with contextlib.suppress(_Closed):
            self.act("QUIT", arg, "221 2.0.0 bye")
        return "quit"


class ScriptedPeer:
    """A scriptable SMTP server on addr:port (see the module text).

    extensions: EHLO keywords offered (STARTTLS is added when cert is
    given, "AUTH PLAIN LOGIN" when auth is). size_limit: refuse MAIL with
    a larger SIZE= and larger messages (552 5.3.4); offer "SIZE n" in
    extensions yourself. auth: (user, password) the peer accepts;
    auth_tls_only: offer AUTH only after STARTTLS.

    Attributes read by tests (under no lock: read after wait_*):
    transactions, connections, commands [(verb, arg)], auth_attempts
    [(mech, user, password)], tls_failures [text]."""

    DEFAULT_EXTENSIONS = ("PIPELINING", "SIZE 10240000", "8BITMIME",
                          "ENHANCEDSTATUSCODES")

    def __init__(self, addr, port, extensions=DEFAULT_EXTENSIONS,
                 hostname=None, cert=None, key=None, auth=None,
                 auth_tls_only=True, size_limit=None, require_helo=True):
        self.addr, self.port = addr, port
        self.extensions = list(extensions)
        self.hostname = hostname or "peer-%s.test" % addr.replace(".", "-")
        self.cert, self.key = cert, key
        self.auth, self.auth_tls_only = auth, auth_tls_only
        self.size_limit = size_limit
        self.require_helo = require_helo
        self.rules = []
        self.transactions = []
        self.connections = 0
        self.commands = []
        self.auth_attempts = []
        self.tls_failures = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._sock = None
        self._thread = None
        self._sessions = {}     # thread -> socket
        self._ids = 0
        self._tls_ctx = None

    def __repr__(self):
        return "ScriptedPeer(%s:%d)" % (self.addr, self.port)

    def tls_context(self):
        """One server context for all sessions, so that a client can
        resume a session (its tickets are sealed with the context's
        key)."""
        with self._lock:
            if self._tls_ctx is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(self.cert, self.key)
                self._tls_ctx = ctx
            return self._tls_ctx

    # ----- behaviour

    def rule(self, stage, action, match=None, times=None):
        """From now on, answer stage (see STAGES) with action: a reply
        line ("450 4.2.1 try later"; several lines joined with CRLF, each
        with its own code and separator) or SILENT, GARBAGE, OVERLONG,
        ENDLESS, DROP. match: only when the command's argument (for RCPT
        the address) contains it, case-insensitively. times: only that
        many times. Later rules win."""
        if stage not in STAGES:
            raise ValueError("unknown stage %r" % stage)
        with self._lock:
            self.rules.append([stage, match, action, times])

    def clear_rules(self):
        with self._lock:
            self.rules = []

    def _action(self, stage, arg):
        with self._lock:
            for r in reversed(self.rules):
                st, match, action, times = r
                if st != stage or (match is not None and
                                   match.lower() not in arg.lower()):
                    continue
                if times is not None:
                    if times <= 0:
                        continue
                    r[3] = times - 1
                return action
        return None

    def _next_id(self):
        with self._lock:
            self._ids += 1
            return "PEER%06d" % self._ids

    # ----- life cycle

    def start(self):
        """Listens and serves in a thread; returns once it accepts."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.addr, self.port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="peer-%s" % self.addr)
        self._thread.start()
        # listen() is done: connections queue in the kernel from now on,
        # so the peer accepts as soon as this returns.
        return self

    def _serve(self):
        while not self._stopping.is_set():
            try:
                conn, client = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.settimeout(SESSION_TIMEOUT)
            t = threading.Thread(target=self._session, args=(conn, client),
                                 daemon=True)
            with self._lock:
                self._sessions[t] = conn
            t.start()

    def _session(self, conn, client):
        s = _Session(self, conn, client)
        try:
            s.run()
        finally:
            with contextlib.suppress(OSError):
                s.sock.close()
            with self._lock:
                self._sessions.pop(threading.current_thread(), None)
                self._changed.notify_all()

    def stop(self):
        """Stops listening, closes every session, joins every thread.
        Safe to call twice."""
        self._stopping.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            self._thread = None
        with self._lock:
            sessions = list(self._sessions.items())
        for _, conn in sessions:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + STOP_TIMEOUT
        for t, _ in sessions:
            t.join(max(0.1, deadline - time.monotonic()))
        left = [t for t, _ in sessions if t.is_alive()]
        self._sock = None
        if left:
            raise AssertionError("%r: %d session thread(s) did not end"
                                 % (self, len(left)))

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ----- waiting

    def wait_messages(self, count, timeout=harness.DELIVERY_TIMEOUT):
        """Waits until count transactions were accepted; returns them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.transactions) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "%r: %d of %d messages within %.0f s; commands: %s"
                        % (self, len(self.transactions), count, timeout,
                           self.commands[-20:]))
                self._changed.wait(min(left, 0.5))
            return list(self.transactions)

    def wait_idle(self, timeout=harness.DELIVERY_TIMEOUT):
        """Waits until no session is open (the client closed them)."""
        harness.wait_until(lambda: not self._sessions, timeout,
                           "%r: every session closed" % self)

    def reset(self):
        """Forgets what was recorded (rules stay)."""
        with self._lock:
            self.transactions = []
            self.connections = 0
            self.commands = []
            self.auth_attempts = []
            self.tls_failures = []


# ------------------------------------------------------------ certificates

def make_cert(directory, name, sans=None):
    """A self-signed certificate and key (RSA 2048) for CN=name with
    subjectAltName DNS:name (+ sans) in directory; returns (cert, key).
    Being self-signed, the certificate is its own CA for smtp_tls_CAfile."""
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    alt = ",".join("DNS:" + n for n in [name] + list(sans or ()))
    harness.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-sha256", "-days", "2", "-subj", "/CN=" + name,
                 "-addext", "subjectAltName=" + alt,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-keyout", key, "-out", cert])
    os.chmod(key, 0o600)
    return cert, key


# --------------------------------------------------------------- smtp-sink

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


def have_smtp_sink():
    return os.access(SMTP_SINK, os.X_OK)


class SmtpSink:
    """Postfix's smtp-sink(1) on addr:port: accepts every message and
    dumps each into its own file under workdir/dump (created; owned by
    the sink's user, postfix, when root; its output goes to
    workdir/smtp-sink.out). Extra smtp-sink options in args,
    e.g. ["-8"] to not offer 8BITMIME or ["-r", "RCPT"] to defer RCPT.

        sink = SmtpSink("127.0.0.4", port, workdir).start()
        sink.wait_messages(1) -> [bytes of each dump file]
    """

    def __init__(self, addr, port, workdir, args=(), user="postfix"):
        if not have_smtp_sink():
            raise AssertionError("smtp-sink not found (apt-get install "
                                 "postfix; test.sh does)")
        self.addr, self.port = addr, port
        self.workdir = workdir
        self.dump_dir = os.path.join(workdir, "dump")
        self.args = list(args)
        self.user = user if harness.is_root() else None
        self.proc = None
        self.output = None

    def start(self):
        os.makedirs(self.dump_dir, exist_ok=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dump_dir, pw.pw_uid, pw.pw_gid)
        argv = [SMTP_SINK, "-h", "sink-%s.test" % self.addr.replace(".", "-"),
                "-t", "30", "-d", os.path.join(self.dump_dir, "msg.")]
        if self.user:
            argv += ["-u", self.user]
        argv += self.args + ["inet:%s:%d" % (self.addr, self.port), "64"]
        self.output = open(os.path.join(self.workdir, "smtp-sink.out"),
                           "w+b")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self.output,
                                     stderr=subprocess.STDOUT)
        harness.record_for_cleanup("pid", "%d %s" % (self.proc.pid,
                                                      SMTP_SINK))

        def up():
            if self.proc.poll() is not None:
                self.output.seek(0)
                raise AssertionError("smtp-sink exited %s: %s" % (
                    self.proc.returncode, self.output.read()[-2000:]))
            try:
                with harness.SmtpConn(self.port, timeout=2,
                                      host=self.addr) as c:
                    ok = c.banner[0] == 220
                    with contextlib.suppress(Exception):
                        c.cmd("QUIT")
                    return ok
            except OSError:
                return False
        harness.wait_until(up, START_TIMEOUT, "smtp-sink on %s:%d"
                           % (self.addr, self.port), interval=0.1)
        return self

    def files(self):
        try:
            names = os.listdir(self.dump_dir)
        except FileNotFoundError:
            return []
        return sorted(os.path.join(self.dump_dir, n) for n in names)

    def messages(self):
        out = []
        for p in self.files():
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def wait_messages(self, count, timeout=harness.DELIVERY_TIMEOUT):
        """Waits until count messages were dumped completely (smtp-sink
        writes a dump while the message arrives and ends it with an empty
        line); returns their contents."""
        def done():
            msgs = self.messages()
            return len(msgs) >= count and all(m.endswith(b"\n\n")
                                              for m in msgs) and msgs
        return harness.wait_until(done, timeout, "%d message(s) in %s"
                                  % (count, self.dump_dir))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        self.proc = None
        if self.output:
            self.output.close()
            self.output = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
