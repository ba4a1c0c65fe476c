# SPDX-License-Identifier: MIT
# shellcheck shell=bash disable=SC2154
# Shared by the benchmarks (sourced, not run): messages, the postfix
# package, tern's accounts, free ports and CPU accounting. The caller
# sets $prog (its name in messages).

say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }

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
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || die "no running master per $1"
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
