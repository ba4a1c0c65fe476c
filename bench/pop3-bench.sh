#!/bin/bash
# SPDX-License-Identifier: MIT
#
# POP3 benchmark: tern (login + spawn + pop3d) against Dovecot 2.3's
# pop3-login + pop3, on this machine, in one run, on copies of the same
# maildirs, with the same client. Three figures per server and their
# ratio (see bench/README.md):
#   (a) one client: LIST, RETR of every message (pipelined), QUIT (timed
#       after its login);
#   (b) 20 concurrent clients doing USER/PASS/STAT/QUIT rounds for 30 s;
#   (c) PSS per idle logged-in connection.
#
#   sudo ./run.sh                 # builds and installs tern (-O2) into /usr/local
#   sudo bench/pop3-bench.sh      # 2000 messages of 4 KiB; or: bench/pop3-bench.sh 500
#
# Without a tern that has pop3d in $TERN_PREFIX (default /usr/local), it
# builds a release tern of this tree into _build/bench-release/inst first (a few
# minutes). Needs root (both servers run sessions as the vmail user) and
# Dovecot 2.3 (apt-get install dovecot-core dovecot-pop3d); the system's
# Dovecot service is neither used nor started: a private instance runs
# from a config file in the temp dir.
#
# Environment: BENCH_MESSAGES (or the first argument, 2000), BENCH_SIZE
# (bytes per message, 4096), BENCH_CLIENTS (20), BENCH_SECONDS (of login
# rounds per server, 30), BENCH_IDLE (idle connections, 50), BENCH_HASH
# (crypt: the yescrypt hashes ternuser writes, in both servers' user
# files; plain: {PLAIN} passwords, to see the servers' own cost of a
# login), BENCH_SYSTEMS ("tern dovecot"), TERN_PREFIX, BENCH_BUILD=0
# (never build, fail instead), BENCH_KEEP=1 keeps the temp dir.
set -eu

# shellcheck disable=SC2034
prog=pop3-bench
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

messages=${1:-${BENCH_MESSAGES:-2000}}
size=${BENCH_SIZE:-4096}
clients=${BENCH_CLIENTS:-20}
seconds=${BENCH_SECONDS:-30}
hash=${BENCH_HASH:-crypt}
idle=${BENCH_IDLE:-50}
systems=${BENCH_SYSTEMS:-tern dovecot}
domain=example.test
password=Bench-pop3-pw-1

check_count MESSAGES "$messages"
check_count BENCH_SIZE "$size"
check_count BENCH_CLIENTS "$clients"
check_count BENCH_SECONDS "$seconds"
case $hash in crypt | plain) ;; *) die "BENCH_HASH must be crypt or plain, not '$hash'" ;; esac
check_count BENCH_IDLE "$idle"
[ "$(id -u)" -eq 0 ] || die "run as root: both servers run sessions as the vmail user"
for cmd in timeout python3; do
	command -v "$cmd" >/dev/null || die "$cmd is missing (apt-get install coreutils python3)"
done
ensure_dovecot pop3

# --- tern: ./run.sh's install, or a release build of this tree -------------
with() { in_list "$1" "$systems"; }
if with tern; then
	tern_use pop3d login spawn
else
	# Still needed for its user file (Dovecot gets the same lines).
	BENCH_BUILD=0 tern_use
fi
ensure_tern_accounts

# --- temp dir, cleanup, ports -----------------------------------------------
bench_tmp tern-pop3bench
dv="$tmp/dovecot"
find_port_base 25 110 143 465 587 993 995 1110
tern_port=$((base + 110))
dv_port=$((base + 1110))

# --- the mail: generated once, copied for each server -----------------------
# Maildir files as a delivery agent writes them (LF line ends; the name
# carries the size and the wire size, Dovecot's ,S= and ,W=, which both
# servers use), in new/. "big" gets $messages messages, every other user
# 10 (their sessions open a mailbox, as a real user's would).
say "generating $messages messages of $size bytes"
python3 - "$tmp/mail" "$messages" "$size" <<'PY'
import os, sys, time
out, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time()) - 3600
line = b"0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;\n"
def fill(maildir, count):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    for i in range(count):
        head = (b"Return-Path: <sender@example.org>\n"
                b"From: <sender@example.org>\nTo: <bench@example.test>\n"
                b"Subject: bench message %d\n"
                b"Message-ID: <bench.%d@example.org>\n"
                b"Date: Mon, 01 Jan 2024 00:00:00 +0000\n\n" % (i, i))
        # A line starting with '.' in each message (byte-stuffed on RETR);
        # whole lines up to about size bytes.
        body = b".stuffed\n" + line * max(1, (size - len(head) - 9) // len(line))
        data = head + body
        wsize = len(data) + data.count(b"\n")
        name = "%d.M%dP%d.bench,S=%d,W=%d" % (now + i // 1000, i % 1000 * 1000,
                                            os.getpid(), len(data), wsize)
        with open(os.path.join(maildir, "new", name), "wb") as f:
            f.write(data)
fill(os.path.join(out, "big"), n)
fill(os.path.join(out, "small"), 10)
PY
users="big"
for i in $(seq 1 $((clients > idle ? clients : idle))); do
	users="$users u$i"
done

# --- tern: a private instance, virtual users ----------------------------------
say "tern instance in $tern_dir"
tern_init
! with tern || grep -q "^${tern_port}[[:space:]]" "$tern_dir/services.conf" ||
	die "this tern's services.conf has no POP3 service on $tern_port"
"$ternconf" -c "$tern_dir" -e "virtual_mailbox_domains=$domain" \
	myhostname=bench.example.org
# Dovecot's defaults allow this load (per-user limits of 10 are not
# reached by distinct users); tern's per-address limits would count all
# of the load's connections from 127.0.0.1 against one address.
for p in login_max_ip_connections login_max_connections_per_ip; do
	! has_param "$p" || "$ternconf" -c "$tern_dir" -e "$p=1000"
done
# shellcheck disable=SC2046,SC2086
tern_add_users "$password" $(for u in $users; do echo "$u@$domain"; done)
[ "$hash" = crypt ] || tern_plain_passwords "$password"
hash_kind=$(grep -v '^#' "$(conf_value user_file)" | head -1 | cut -d: -f2 | cut -c1-12)
if with tern; then
	# shellcheck disable=SC2086
	install_maildirs "$(conf_value virtual_mailbox_base)" "$domain" $users
	tern_start "$tern_port"
fi

# --- Dovecot: a private instance, the same users and password hashes -----------
if with dovecot; then
	say "dovecot instance in $dv"
	dovecot_instance "$dv" pop3 "$dv_port"
	# shellcheck disable=SC2086
	install_maildirs "$dv/mail" "$domain" $users
	dovecot_start "$dv" "$dv_port"
fi

# --- the client ------------------------------------------------------------------
# One program for both servers: raw sockets, every read bounded.
cat >"$tmp/client.py" <<'PY'
import os, socket, sys, threading, time
from procstat import cpu_ticks, pss_kb, settled
TIMEOUT = 60

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.greeting = self.line()
    def fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed (pending %r)" % self.buf[:100])
        self.buf += chunk
    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + 2:]
                return out
            if len(self.buf) > 65536:
                raise ValueError("line too long")
            self.fill()
    def ok(self):
        r = self.line()
        if not r.startswith(b"+OK"):
            raise ValueError("server said %r" % r)
        return r
    def multi(self):
        start = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            i = self.buf.find(b"\r\n.\r\n", start)
            if i >= 0:
                out, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return out
            start = max(0, len(self.buf) - 4)
            self.fill()
    def send(self, data):
        self.s.sendall(data)
    def login(self, user, pw):
        self.send(b"USER %s\r\n" % user.encode())
        self.ok()
        self.send(b"PASS %s\r\n" % pw.encode())
        self.ok()
    def close(self):
        self.s.close()

def retr_all(port, user, pw, master, window=64):
    # The login is (b)'s business: timed from after it, to QUIT's answer
    # (which stores the Seen flags).
    c = Conn(port)
    c.login(user, pw)
    settled(master)
    ticks0 = cpu_ticks(master)
    t0 = time.monotonic()
    c.send(b"LIST\r\n")
    c.ok()
    sizes = [int(l.split()[1]) for l in c.multi().split(b"\r\n")[:-1]]
    got = sent = 0
    total = 0
    n = len(sizes)
    while got < n:
        while sent < n and sent - got < window:
            sent += 1
            c.send(b"RETR %d\r\n" % sent)
        c.ok()
        body = c.multi()
        # Sizes count the message before byte-stuffing.
        total += len(body) - body.count(b"\r\n..") - body.startswith(b"..")
        got += 1
    c.send(b"QUIT\r\n")
    c.ok()
    secs = time.monotonic() - t0
    c.close()
    # The session's exit, with its time, reaped into its parent's.
    settled(master)
    ticks = cpu_ticks(master) - ticks0
    if total != sum(sizes):
        sys.exit("RETR gave %d bytes, LIST said %d" % (total, sum(sizes)))
    print("%d %d %.4f %d" % (n, total, secs, ticks))

def warm(port, user, pw):
    c = Conn(port)
    c.login(user, pw)
    for cmd in (b"STAT", b"LIST", b"UIDL"):
        c.send(cmd + b"\r\n")
        c.ok()
        if cmd != b"STAT":
            c.multi()
    c.send(b"QUIT\r\n")
    c.ok()
    c.close()

def rounds(port, pw, clients, seconds):
    counts = [0] * clients
    errors = []
    deadline = time.monotonic() + seconds
    def worker(i):
        try:
            while time.monotonic() < deadline:
                c = Conn(port)
                c.login("u%d@example.test" % (i + 1), pw)
                c.send(b"STAT\r\n")
                c.ok()
                c.send(b"QUIT\r\n")
                c.ok()
                c.close()
                counts[i] += 1
        except Exception as e:
            errors.append("client %d: %s" % (i, e))
    th = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in th:
        t.start()
    for t in th:
        t.join()
    secs = time.monotonic() - t0
    if errors:
        sys.exit("; ".join(errors[:3]))
    print("%d %.4f" % (sum(counts), secs))

def idle(port, pw, master, n):
    settled(master)
    base = pss_kb(master)
    conns = []
    for i in range(n):
        c = Conn(port)
        c.login("u%d@example.test" % (i + 1), pw)
        c.send(b"STAT\r\n")
        c.ok()
        conns.append(c)
    settled(master)
    loaded = pss_kb(master)
    for c in conns:
        c.send(b"QUIT\r\n")
        c.ok()
        c.close()
    print("%d %d" % (base, loaded))

cmd = sys.argv[1]
if cmd == "warm":
    warm(int(sys.argv[2]), sys.argv[3], sys.argv[4])
elif cmd == "retr":
    retr_all(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
elif cmd == "rounds":
    rounds(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
elif cmd == "idle":
    idle(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
PY

# --- the runs ----------------------------------------------------------------------
hz=$(getconf CLK_TCK)
results="$tmp/results"
: >"$results"
client() { PYTHONPATH="$bench_top/bench" timeout 300 python3 "$tmp/client.py" "$@"; }

# run NAME PORT MASTER: warm-up, then (a), (b), (c); one line of results.
run() {
	local name=$1 port=$2 master=$3 c0 c1 a b c u
	say "$name: warm-up (every mailbox opened once: new/ to cur/, indexes, caches)"
	for u in $users; do
		client warm "$port" "$u@$domain" "$password" ||
			die "$name: warm-up session of $u failed"
	done
	say "$name: (a) LIST and RETR of $messages messages"
	a=$(client retr "$port" "big@$domain" "$password" "$master") || die "$name: (a) failed"
	say "$name: (b) $clients concurrent clients logging in for $seconds s"
	c0=$(cpu_ticks "$master")
	b=$(client rounds "$port" "$password" "$clients" "$seconds") || die "$name: (b) failed"
	c1=$(cpu_ticks "$master")
	b="$b $((c1 - c0))"
	say "$name: (c) $idle idle sessions"
	c=$(client idle "$port" "$password" "$master" "$idle") || die "$name: (c) failed"
	echo "$name $a $b $c" >>"$results"
}
! with tern || run tern "$tern_port" "$tern_master"
! with dovecot || run dovecot "$dv_port" "$dv_pid"
grep -q "Fatal\|Panic" "$dv/dovecot.log" 2>/dev/null &&
	say "WARNING: dovecot logged errors: $(grep -m3 'Fatal\|Panic' "$dv/dovecot.log")"

# --- report ---------------------------------------------------------------------
python3 - "$results" "$hz" "$messages" "$size" "$clients" "$seconds" "$idle" "$hash_kind" <<'PY'
import sys
path, hz = sys.argv[1], int(sys.argv[2])
messages, size, clients, seconds, idle = map(int, sys.argv[3:8])
rows = {}
for line in open(path):
    f = line.split()
    n, nbytes, secs, ticks, ln, lsecs, lticks, base, loaded = map(float, f[1:])
    if int(n) != messages:
        sys.exit("%s: STAT/LIST gave %d messages, not %d" % (f[0], n, messages))
    rows[f[0]] = {
        "a_secs": secs, "a_mbs": nbytes / secs / 1e6, "a_cpu": ticks / hz,
        "b_rate": ln / lsecs, "b_cpu": 1000.0 * lticks / hz / ln,
        "c_pss": (loaded - base) / idle, "bytes": nbytes}
names = [n for n in ("tern", "dovecot") if n in rows]
both = len(names) == 2
if both and rows["tern"]["bytes"] != rows["dovecot"]["bytes"]:
    print("WARNING: RETR bytes differ: tern %d, dovecot %d"
          % (rows["tern"]["bytes"], rows["dovecot"]["bytes"]))
# (label, key, higher is better)
figures = [
    ("(a) LIST+RETR %d x %d B: seconds" % (messages, size), "a_secs", False),
    ("    MB/s", "a_mbs", True),
    ("    server CPU s", "a_cpu", False),
    ("(b) %d clients, %d s: logins/s" % (clients, seconds), "b_rate", True),
    ("    server CPU ms per login", "b_cpu", False),
    ("(c) PSS KiB per idle session (%d)" % idle, "c_pss", False),
]
print()
print("%-44s" % "POP3" + "".join("%10s" % n for n in names)
      + ("%13s" % "tern better" if both else ""))
for label, key, higher in figures:
    line = "%-44s" % label + "".join("%10.2f" % rows[n][key] for n in names)
    if both:
        a, b = rows["tern"][key], rows["dovecot"][key]
        if not higher:
            a, b = b, a
        line += "%12.2fx" % (a / b) if b else "%13s" % "-"
    print(line)
print("password hashes: %s... in both (the same user file lines)" % sys.argv[8])
PY
