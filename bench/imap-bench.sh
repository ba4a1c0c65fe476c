#!/bin/bash
# SPDX-License-Identifier: MIT
#
# IMAP benchmark: tern (login + spawn + imapd) against Dovecot 2.3's
# imap-login + imap, on this machine, in one run, one server after the
# other, on copies of the same maildirs, with the same client
# (bench/imap_client.py). Per server, and the ratio (see bench/README.md):
#   (a) SELECT of a 20,000-message INBOX, cold (no index yet) and warm;
#   (b) UID FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE), cold and warm;
#   (c) SEARCH SUBJECT and SEARCH BODY;
#   (d) FETCH BODY.PEEK[] of 2,000 messages;
#   (e) 50 and 500 concurrent sessions doing login/SELECT/FETCH
#       headers/LOGOUT rounds for 30 s: rounds/s, server CPU per round;
#   (f) PSS per idle, logged-in, selected connection.
#
#   sudo ./run.sh                 # builds and installs tern (-O2) into /usr/local
#   sudo bench/imap-bench.sh      # 20,000 messages; or: bench/imap-bench.sh 2000
#
# Without a tern that has imapd in $TERN_PREFIX (default /usr/local), it
# builds a release tern of this tree into _build/bench-release/inst first (a few
# minutes). Needs root (both servers run sessions as the vmail user) and
# Dovecot 2.3 (apt-get install dovecot-core dovecot-imapd); the system's
# Dovecot service is neither used nor started: a private instance runs
# from a config file in the temp dir.
#
# Environment: BENCH_MESSAGES (or the first argument, 20000), BENCH_FETCH
# (messages of (d), 2000), BENCH_SESSIONS (the concurrencies of (e),
# "50 500"), BENCH_SECONDS (of each (e) run, 30), BENCH_IDLE (idle
# connections of (f), 100), BENCH_SMALL (messages in every other user's
# INBOX, 20), BENCH_HASH (crypt: the yescrypt hashes ternuser writes, in
# both servers' user files; plain: {PLAIN} passwords, to see the servers'
# own cost of a login), BENCH_DOVECOT_LOGIN (performance: Dovecot's
# high-performance login mode, service_count = 0 and one login process
# per core; security: its default, a login process per connection),
# BENCH_SYSTEMS ("tern dovecot"), TERN_PREFIX,
# BENCH_BUILD=0 (never build, fail instead), BENCH_KEEP=1 keeps the temp
# dir.
set -eu

# shellcheck disable=SC2034
prog=imap-bench
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

messages=${1:-${BENCH_MESSAGES:-20000}}
fetch=${BENCH_FETCH:-2000}
sessions=${BENCH_SESSIONS:-50 500}
seconds=${BENCH_SECONDS:-30}
idle=${BENCH_IDLE:-100}
small=${BENCH_SMALL:-20}
hash=${BENCH_HASH:-crypt}
systems=${BENCH_SYSTEMS:-tern dovecot}
dv_login=${BENCH_DOVECOT_LOGIN:-performance}
domain=example.test
password=Bench-imap-pw-1
client_py="$bench_top/bench/imap_client.py"

check_count MESSAGES "$messages"
check_count BENCH_FETCH "$fetch"
nusers=$idle
for n in $sessions; do
	check_count BENCH_SESSIONS "$n"
	[ "$n" -le "$nusers" ] || nusers=$n
done
check_count BENCH_SECONDS "$seconds"
check_count BENCH_IDLE "$idle"
check_count BENCH_SMALL "$small"
case $hash in crypt | plain) ;; *) die "BENCH_HASH must be crypt or plain, not '$hash'" ;; esac
case $dv_login in performance | security) ;; *)
	die "BENCH_DOVECOT_LOGIN must be performance or security, not '$dv_login'" ;;
esac
[ "$(id -u)" -eq 0 ] || die "run as root: both servers run sessions as the vmail user"
for cmd in timeout python3; do
	command -v "$cmd" >/dev/null || die "$cmd is missing (apt-get install coreutils python3)"
done
[ -f "$client_py" ] || die "$client_py is missing"
ensure_dovecot imap
# Every client session is a socket in one process; the server has one or
# more descriptors per session too.
[ "$(ulimit -n)" -ge $((nusers + 100)) ] || ulimit -n $((nusers + 1024)) ||
	die "ulimit -n $(ulimit -n) is too low for $nusers sessions"

with() { in_list "$1" "$systems"; }
if with tern; then
	tern_use imapd login spawn
else
	# Still needed for its user file (Dovecot gets the same lines).
	BENCH_BUILD=0 tern_use
fi
ensure_tern_accounts

# --- temp dir, cleanup, ports -----------------------------------------------
bench_tmp tern-imapbench
dv="$tmp/dovecot"
find_port_base 25 110 143 465 587 993 995 1143
tern_port=$((base + 143))
dv_port=$((base + 1143))

# --- the mail: generated once, copied for each server -------------------------
# Realistic variety (plain text, quoted-printable, multipart/alternative,
# attachments, encoded subjects, replies; 300 senders), deterministic,
# written as a delivery agent writes them (LF line ends, ",S=,W=" names,
# new/). "big" gets $messages; every other user $small.
say "generating $messages messages (and $small for each of $nusers other users)"
python3 "$client_py" generate "$tmp/mail" "$messages" "$small" ||
	die "generating the mail failed"
users="big"
for i in $(seq 1 "$nusers"); do
	users="$users u$i"
done

# --- tern: a private instance, virtual users ----------------------------------
say "tern instance in $tern_dir"
tern_init
if with tern && ! grep -q "^${tern_port}[[:space:]]" "$tern_dir/services.conf"; then
	# A tern whose init does not write the IMAP service yet.
	say "adding the IMAP service on $tern_port to services.conf"
	# shellcheck disable=SC2016
	printf '%s inet n $login_user $login_directory 2 login imap\n' "$tern_port" \
		>>"$tern_dir/services.conf"
fi
"$ternconf" -c "$tern_dir" -e "virtual_mailbox_domains=$domain" \
	myhostname=bench.example.org
# Dovecot's defaults allow this load (its per-user limit of 10 is not
# reached by distinct users; its per-address limit is raised in
# dovecot_instance); tern's per-address limits would count all of the
# load's connections from 127.0.0.1 against one address.
for p in login_max_ip_connections login_max_connections_per_ip; do
	! has_param "$p" || "$ternconf" -c "$tern_dir" -e "$p=$((2 * nusers + 100))"
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
	dovecot_instance "$dv" imap "$dv_port"
	if [ "$dv_login" = performance ]; then
		# Dovecot's advice for busy sites, and tern's own shape: a few
		# long-lived login processes (one per core) serving many clients
		# each. The default (a process per connection, at most 100)
		# leaves hundreds of simultaneous connections in the listen
		# queue for tens of seconds.
		cat >>"$dv/dovecot.conf" <<EOF
service imap-login {
  service_count = 0
  process_min_avail = $(nproc)
}
EOF
	fi
	# shellcheck disable=SC2086
	install_maildirs "$dv/mail" "$domain" $users
	dovecot_start "$dv" "$dv_port"
fi

# --- the runs ------------------------------------------------------------------
# One server at a time; bounded: the client's every read has a timeout,
# and the whole run of one server this one.
limit=$((600 + messages / 20 + nusers + 3 * seconds * $(echo "$sessions" | wc -w)))
run() { # NAME PORT MASTER LOG MAIL_ROOT
	timeout "$limit" python3 "$client_py" run "$1" "$2" "$3" "$tmp/mail/expected.json" \
		"$tmp/$1.json" "$password" "$domain" "$nusers" "$fetch" "$seconds" \
		"$(echo "$sessions" | tr -s ' ' ',')" "$idle" "$5/$domain/big/Maildir" ||
		die "$1: the run failed (server log: $4)"
}
! with tern || run tern "$tern_port" "$tern_master" "$tern_dir/log" "$(conf_value virtual_mailbox_base)"
! with dovecot || run dovecot "$dv_port" "$dv_pid" "$dv/dovecot.log" "$dv/mail"
if grep -q "Fatal\|Panic" "$dv/dovecot.log" 2>/dev/null; then
	say "WARNING: dovecot logged errors: $(grep -m3 'Fatal\|Panic' "$dv/dovecot.log")"
fi

# --- report -----------------------------------------------------------------------
reports=""
for s in tern dovecot; do
	! with "$s" || reports="$reports $tmp/$s.json"
done
# shellcheck disable=SC2086
python3 "$client_py" report $reports
echo "password hashes: $hash_kind... in both (the same user file lines)"
