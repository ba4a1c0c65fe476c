#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The queue manager's memory with a long queue: MESSAGES messages (default
# 100000) for a destination that is down (a retry: transport, so every
# attempt defers), injected with smtp-source, then all made due at once
# with `tern flush`, so qmgr runs through the whole queue. Prints qmgr's
# peak RSS (VmHWM) after the injection and after the flush.
#
#   bench/qmgr-memory.sh [MESSAGES]
#
# Environment: TERN_PREFIX (default /usr/local, where ./run.sh installs),
# BENCH_SESSIONS (default 20), BENCH_KEEP=1 keeps the temp dir. Root.
set -eu

messages=${1:-100000}
sessions=${BENCH_SESSIONS:-20}
prefix=${TERN_PREFIX:-/usr/local}
tern="$prefix/sbin/tern"
ternconf="$prefix/sbin/ternconf"

say() { printf '==> %s\n' "$*"; }
die() { printf 'qmgr-memory: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$tern" ] || die "$tern not found: ./run.sh installs tern"
command -v smtp-source >/dev/null ||
	die "smtp-source missing: run bench/smtp-bench.sh once (it installs postfix)"

tmp=$(mktemp -d /tmp/tern-qmem.XXXXXX)
chmod 755 "$tmp"
dir="$tmp/tern"
cleanup() {
	set +e
	[ -f "$dir/tern.conf" ] && timeout 60 "$tern" -c "$dir" stop >/dev/null 2>&1
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

base=$((20000 + RANDOM % 30000))
"$tern" -c "$dir" init --port-base "$base" >/dev/null
for kv in smtpd_greet_pause=0 relay_domains=down.test \
	"transport_maps=inline:{ { down.test = retry:4.4.1 destination is down } }" \
	minimal_backoff_time=1h maximal_backoff_time=2h queue_run_delay=1h \
	delay_warning_time=0; do
	"$ternconf" -c "$dir" -e "$kv"
done
"$tern" -c "$dir" start >/dev/null
queue=$("$ternconf" -c "$dir" -x queue_directory | sed -n 's/^queue_directory = //p')

qmgr_pid() { pgrep -f "qmgr -c $dir" | head -1; }
hwm() { sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$(qmgr_pid)/status"; }
count() { find "$queue/$1" -type f | wc -l; }

say "injecting $messages messages for down.test"
start=$(date +%s)
timeout $((600 + messages / 50)) smtp-source -s "$sessions" -m "$messages" \
	-f bench@example.org -t x@down.test "127.0.0.1:$((base + 25))"
say "injected in $(($(date +%s) - start)) s"
for _ in $(seq 1 600); do
	[ "$(count incoming)" -eq 0 ] && [ "$(count active)" -eq 0 ] && break
	sleep 1
done
say "deferred: $(count deferred); qmgr peak RSS so far: $(hwm)"
say "tern flush: every message due at once"
log=$("$ternconf" -c "$dir" -x maillog_file | sed -n 's/^maillog_file = //p')
"$tern" -c "$dir" flush
for _ in $(seq 1 600); do
	grep -q 'flush: [0-9]* deferred message(s) due now' "$log" && break
	sleep 0.1
done
for _ in $(seq 1 1200); do
	[ "$(count incoming)" -eq 0 ] && [ "$(count active)" -eq 0 ] && break
	sleep 1
done
say "after the flush: deferred $(count deferred), qmgr peak RSS: $(hwm)"
