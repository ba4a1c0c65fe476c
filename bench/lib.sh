# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2154,SC2034
# Shared by the benchmarks (sourced, not run): messages, the postfix
# package, tern's accounts and install, free ports, the temp dir and its
# cleanup, private tern and Dovecot instances, and CPU accounting. The
# caller sets $prog (its name in messages).

say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }

# The source tree this file is in (for a release build of it).
bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# check_count NAME VALUE: VALUE is a positive integer.
check_count() {
	case $2 in '' | *[!0-9]*) die "$1 must be a number, not '$2'" ;; esac
	[ "$2" -gt 0 ] || die "$1 must be positive"
}

# in_list WORD LIST: WORD is one of the blank-separated LIST (e.g.
# $BENCH_SYSTEMS).
in_list() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

# The postfix package: smtp-source and smtp-sink, and Postfix itself.
# Installed with "No configuration" (no system mail set-up); a default
# instance the package started is stopped: it is not ours, and it would
# hold port 25.
ensure_postfix() {
	if ! command -v smtp-source >/dev/null || ! command -v smtp-sink >/dev/null ||
		! command -v postfix >/dev/null; then
		say "installing postfix (smtp-source, smtp-sink, the peer)"
		export DEBIAN_FRONTEND=noninteractive
		echo "postfix postfix/main_mailer_type select No configuration" |
			debconf-set-selections
		apt-get install -y -q --no-install-recommends postfix </dev/null ||
			{ apt-get update -q </dev/null &&
				apt-get install -y -q --no-install-recommends postfix </dev/null; } ||
			die "apt-get install postfix failed"
	fi
	if [ -f /etc/postfix/main.cf ] && postfix status >/dev/null 2>&1; then
		say "stopping the default postfix instance the package started"
		postfix stop || true
	fi
	getent passwd postfix >/dev/null || die "user postfix missing (broken postfix install?)"
}

# tern's accounts, as run.sh creates them.
ensure_tern_accounts() {
	getent passwd tern >/dev/null || useradd -r -U -d /var/spool/tern -s /usr/sbin/nologin tern
	getent group terndrop >/dev/null || groupadd -r terndrop
	getent passwd vmail >/dev/null || useradd -r -U -d /var/vmail -s /usr/sbin/nologin vmail
	getent passwd ternauth >/dev/null || useradd -r -U -d /nonexistent -s /usr/sbin/nologin ternauth
	getent passwd ternlogin >/dev/null || useradd -r -U -d /nonexistent -s /usr/sbin/nologin ternlogin
}

# port_in_use PORT [ADDR]: something accepts there.
port_in_use() { timeout 2 bash -c "exec 3<>/dev/tcp/${2:-127.0.0.1}/$1" 2>/dev/null; }

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT
# (default 10 s); fails after that.
wait_port() {
	local end=$((SECONDS + ${2:-10}))
	until port_in_use "$1"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# find_port_base [ADDR:]OFFSET...: sets $base to a port base N (20000 to
# 49999) with every N+OFFSET free (on 127.0.0.1, or on ADDR).
find_port_base() {
	local n off addr ok
	base=""
	for _ in $(seq 1 50); do
		n=$((20000 + RANDOM % 30000))
		ok=1
		for off in "$@"; do
			addr=127.0.0.1
			case $off in *:*) addr=${off%:*} off=${off##*:} ;; esac
			if port_in_use $((n + off)) "$addr"; then
				ok=""
				break
			fi
		done
		[ -z "$ok" ] || { base=$n; return 0; }
	done
	die "no free ports found"
}

# bench_tmp NAME: makes the run's temp dir $tmp (/tmp/NAME.XXXXXX, mode
# 755: the servers' unprivileged users traverse it), sets $tern_dir (the
# tern instance's config dir, made by tern_init) and arranges
# bench_cleanup at exit.
bench_tmp() {
	tmp=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$tmp"
	tern_dir="$tmp/tern"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

# bench_cleanup: stops what the run started (first the caller's
# bench_stop if it defines one, for its own processes; then the tern
# instance, the Postfix instances in $postfix_dirs and the Dovecot one)
# and removes $tmp unless BENCH_KEEP=1.
bench_cleanup() {
	local d
	set +e
	if declare -F bench_stop >/dev/null; then
		bench_stop
	fi
	if [ -n "${tern:-}" ] && [ -f "$tern_dir/tern.conf" ]; then
		timeout 30 "$tern" -c "$tern_dir" stop >/dev/null 2>&1
	fi
	for d in ${postfix_dirs:-}; do
		if [ -f "$d/conf/main.cf" ]; then
			timeout 30 postfix -c "$d/conf" stop >/dev/null 2>&1
		fi
	done
	dovecot_stop
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "BENCH_KEEP=1: kept $tmp"
	else
		rm -rf "$tmp"
	fi
}

# --- tern ---------------------------------------------------------------------

# tern_use PROGRAM...: sets $prefix ($TERN_PREFIX, default /usr/local,
# where ./run.sh installs), $tern, $ternconf and $ternuser. If $prefix
# lacks one of the PROGRAMs (in libexec/tern), builds a release tern of
# this tree into _build/bench-release/inst (a few minutes the first time) and
# uses that; BENCH_BUILD=0 fails instead. Warns when the first PROGRAM is
# a sanitizer build.
tern_use() {
	local p missing=""
	prefix=${TERN_PREFIX:-/usr/local}
	[ -x "$prefix/sbin/tern" ] || missing=" sbin/tern"
	for p in "$@"; do
		[ -x "$prefix/libexec/tern/$p" ] || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		[ "${BENCH_BUILD:-1}" != 0 ] ||
			die "$prefix lacks$missing: install tern with ./run.sh or set TERN_PREFIX"
		say "$prefix lacks$missing: building a release tern of this tree into _build/bench-release/inst"
		(
			# scripts/lib.sh's configure_into wants $top.
			top=$bench_top
			# shellcheck source=scripts/lib.sh
			cd "$top" && . scripts/lib.sh && ensure_autotools &&
				configure_into "$top/_build/bench-release" --prefix="$top/_build/bench-release/inst" &&
				make -C "$top/_build/bench-release" -j2 -s >/dev/null &&
				make -C "$top/_build/bench-release" install >/dev/null
		) || die "building tern failed"
		prefix="$bench_top/_build/bench-release/inst"
		for p in "$@"; do
			[ -x "$prefix/libexec/tern/$p" ] || die "this tree's tern has no $p"
		done
	fi
	tern="$prefix/sbin/tern"
	ternconf="$prefix/sbin/ternconf"
	ternuser="$prefix/sbin/ternuser"
	[ -x "$tern" ] || die "$tern not found: install tern with ./run.sh or set TERN_PREFIX"
	if ldd "$prefix/libexec/tern/${1:-smtpd}" 2>/dev/null | grep -q libasan; then
		say "WARNING: $prefix is a sanitizer build (test.sh's): numbers are not representative; use ./run.sh's build"
	fi
}

# conf_value NAME: the tern instance's value of parameter NAME.
conf_value() { "$ternconf" -c "$tern_dir" -x "$1" | sed -n "s/^$1 = //p"; }
# has_param NAME: this tern knows parameter NAME.
has_param() { "$ternconf" -c "$tern_dir" -d "$1" >/dev/null 2>&1; }

# tern_init: a tern instance in $tern_dir with its ports at $base.
tern_init() { "$tern" -c "$tern_dir" init --port-base "$base" >/dev/null; }

# tern_start [PORT]: starts the instance, sets $tern_master (its master's
# pid) and waits until PORT (if given) accepts connections.
tern_start() {
	"$tern" -c "$tern_dir" start >/dev/null || die "tern failed to start"
	tern_master=$(master_of "$(conf_value queue_directory)/pid/master.pid")
	[ -z "${1:-}" ] || wait_port "$1" || die "tern does not listen on $1"
}

# tern_add_users PASSWORD ADDRESS...: virtual users with one password.
# ternuser adds the first; the others get copies of its line in the user
# file and the mailbox list (a hash carries its own salt, so the copy is
# as valid, and 500 users do not cost 500 hashings here).
tern_add_users() {
	local pw=$1 first=$2
	shift 2
	echo "$pw" | "$ternuser" -c "$tern_dir" add "$first" - >/dev/null ||
		die "ternuser add $first failed"
	[ $# -gt 0 ] || return 0
	python3 - "$first" "$(conf_value user_file)" "$(conf_value virtual_mailbox_list)" "$@" <<'PY' ||
import sys
first, files, others = sys.argv[1], sys.argv[2:4], sys.argv[4:]
for path in files:
    with open(path) as f:
        model = [l for l in f.read().split("\n") if l.split(":")[0] == first]
    if not model:
        sys.exit("%s: no line for %s" % (path, first))
    # Appended in place: the file keeps its owner and mode.
    with open(path, "a") as f:
        for u in others:
            f.write(u + model[0][len(first):] + "\n")
PY
		die "adding users failed"
}

# tern_plain_passwords PASSWORD: {PLAIN}PASSWORD in place of every hash in
# the user file (in place: the file keeps its owner and mode), to see the
# servers' own cost of a login without the hash's (most of it with
# yescrypt).
tern_plain_passwords() {
	python3 - "$(conf_value user_file)" "$1" <<'PY'
import sys
path, pw = sys.argv[1], sys.argv[2]
with open(path, "r+") as f:
    lines = f.read().split("\n")
    out = []
    for l in lines:
        parts = l.split(":")
        if l and not l.startswith("#") and len(parts) > 1:
            parts[1] = "{PLAIN}" + pw
        out.append(":".join(parts))
    f.seek(0)
    f.write("\n".join(out))
    f.truncate()
PY
}

# install_maildirs ROOT DOMAIN USER...: ROOT/DOMAIN/USER/Maildir for each
# USER, a copy of $tmp/mail/big for "big" and of $tmp/mail/small for the
# others (the benchmark generated both), owned by vmail.
install_maildirs() {
	local root=$1 domain=$2 u src
	shift 2
	for u in "$@"; do
		src="$tmp/mail/small"
		[ "$u" = big ] && src="$tmp/mail/big"
		mkdir -p "$root/$domain/$u/Maildir"
		cp -a "$src/." "$root/$domain/$u/Maildir/"
	done
	chown -R vmail:vmail "$root/$domain"
}

# --- Dovecot ------------------------------------------------------------------

# ensure_dovecot PROTOCOL: Dovecot and its PROTOCOL (pop3, imap) are
# installed (not started: the benchmarks run a private instance).
ensure_dovecot() {
	command -v dovecot >/dev/null ||
		die "dovecot is missing (apt-get install dovecot-core dovecot-$1d)"
	[ -x "/usr/lib/dovecot/$1" ] || die "Dovecot's $1 is missing (apt-get install dovecot-$1d)"
	dovecot --version | grep -q '^2\.3\.' ||
		say "WARNING: Dovecot $(dovecot --version) is not 2.3: its configuration may differ"
}

# dovecot_instance DIR PROTOCOL PORT: writes DIR/dovecot.conf, a private
# instance (its own base_dir, state and log; nothing in /etc/dovecot or
# /run/dovecot is used) serving PROTOCOL in plaintext on 127.0.0.1:PORT;
# its users those of tern's user file (the same lines: user and hash,
# which Dovecot checks with crypt(3) as tern does), their mail in
# DIR/mail/DOMAIN/USER/Maildir as vmail; its defaults otherwise, but for
# mail_max_userip_connections (1,000: every client is 127.0.0.1). The
# caller may append to the file before dovecot_start.
dovecot_instance() {
	local d=$1 proto=$2 port=$3
	mkdir -p "$d/run" "$d/state" "$d/mail"
	grep -v '^#' "$(conf_value user_file)" | cut -d: -f1,2 >"$d/passwd"
	chmod 640 "$d/passwd"
	chgrp dovecot "$d/passwd" 2>/dev/null || true
	cat >"$d/dovecot.conf" <<EOF
# A private instance: nothing here touches /etc/dovecot or /run/dovecot.
base_dir = $d/run
state_dir = $d/state
instance_name = tern-$prog-$port
log_path = $d/dovecot.log
protocols = $proto
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
first_valid_uid = $(id -u vmail)
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = static
  args = uid=$(id -u vmail) gid=$(id -g vmail) home=$d/mail/%d/%n
}
service $proto-login {
  inet_listener $proto {
    address = 127.0.0.1
    port = $port
  }
  inet_listener ${proto}s {
    port = 0
  }
}
protocol $proto {
  mail_max_userip_connections = 1000
}
EOF
}

# dovecot_start DIR PORT: starts the instance of DIR/dovecot.conf, sets
# $dv_pid (its master) and waits until PORT accepts connections.
dv_pid=""
dovecot_start() {
	local end=$((SECONDS + 10))
	dovecot -c "$1/dovecot.conf" ||
		die "dovecot failed to start: $(tail -5 "$1/dovecot.log" 2>/dev/null)"
	until [ -s "$1/run/master.pid" ] && port_in_use "$2"; do
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.1
	done
	dv_pid=$(master_of "$1/run/master.pid")
	port_in_use "$2" || die "dovecot does not listen on $2"
}

# dovecot_stop: stops the instance dovecot_start started (bounded wait).
dovecot_stop() {
	if [ -n "$dv_pid" ] && kill -0 "$dv_pid" 2>/dev/null; then
		kill "$dv_pid"
		for _ in $(seq 1 100); do
			kill -0 "$dv_pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	dv_pid=""
}

# CPU ticks used so far by a master and all its descendants: live
# processes' own time plus the time of children they reaped (cutime,
# cstime), which is where every finished daemon's time ends up.
cpu_ticks() {
	python3 - "$1" <<'PY'
import os, sys
master = int(sys.argv[1])
procs = {}
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        with open("/proc/%s/stat" % name) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    # fields[0] is the state; ppid, utime, stime, cutime, cstime follow.
    procs[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
total = 0
for pid, (ppid, ticks) in procs.items():
    p, hops = pid, 0
    while p not in (master, 0, 1) and p in procs and hops < 64:
        p, hops = procs[p][0], hops + 1
    if p == master:
        total += ticks
print(total)
PY
}

# master_of PIDFILE: the running master's pid.
master_of() {
	local pid
	pid=$(tr -d ' \n' <"$1" 2>/dev/null || true)
	if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
		die "no running master per $1"
	fi
	echo "$pid"
}

# postfix_master_cf SMTPD_LINE: Debian's master.cf services without chroot
# (the jail needs files copied in), with SMTPD_LINE as the only smtpd.
postfix_master_cf() {
	printf '%s\n' "$1"
	cat <<'EOF'
pickup     unix  n - n 60   1 pickup
cleanup    unix  n - n -    0 cleanup
qmgr       unix  n - n 300  1 qmgr
rewrite    unix  - - n -    - trivial-rewrite
bounce     unix  - - n -    0 bounce
defer      unix  - - n -    0 bounce
trace      unix  - - n -    0 bounce
verify     unix  - - n -    1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -    - proxymap
proxywrite unix  - - n -    1 proxymap
smtp       unix  - - n -    - smtp
relay      unix  - - n -    - smtp
showq      unix  n - n -    - showq
error      unix  - - n -    - error
retry      unix  - - n -    - error
discard    unix  - - n -    - discard
local      unix  - n n -    - local
virtual    unix  - n n -    - virtual
lmtp       unix  - - n -    - lmtp
anvil      unix  - - n -    1 anvil
scache     unix  - - n -    1 scache
postlog    unix-dgram n - n - 1 postlogd
tlsmgr     unix  - - n 1000? 1 tlsmgr
EOF
}
