#!/bin/bash
# SPDX-License-Identifier: MIT
#
# End-to-end SMTP benchmark: tern against Postfix on the same machine, in
# the same run, with the same load and the same kind of delivery (one
# virtual user, maildir, fsync'd), first in plaintext (smtp-source), then
# with every session using STARTTLS (smtp-load, both servers given the
# same certificates). See bench/README.md.
#
#   bench/smtp-bench.sh [MESSAGES]      (default 2000; or BENCH_MESSAGES)
#
# Environment: TERN_PREFIX (default /usr/local, where ./run.sh installs;
# without a tern there, a release build of this tree is made into
# _build/bench-release/inst, unless BENCH_BUILD=0), BENCH_SESSIONS (parallel SMTP sessions, default 20), BENCH_SIZE (message
# bytes, default 1024), BENCH_KEEP=1 keeps the temp dir, SMTP_LOAD (the
# smtp-load program; default: the one ./run.sh built). Needs root.
set -eu

messages=${1:-${BENCH_MESSAGES:-2000}}
sessions=${BENCH_SESSIONS:-20}
size=${BENCH_SIZE:-1024}
rcpt=bench@example.test
sender=bench@example.org
# Messages sent (and delivered) before timing starts, so that both
# systems have their processes running and their maildir created.
warmup=$((2 * sessions))
# Upper bound for one timed run: generous, but every wait ends.
deadline=$((120 + messages / 10))

prog=smtp-bench
# shellcheck source=bench/lib.sh disable=SC2034
. "$(dirname "$0")/lib.sh"

check_count MESSAGES "$messages"
[ "$(id -u)" -eq 0 ] || die "run as root: both mail systems drop privileges and deliver as a mail user"

smtp_load=${SMTP_LOAD:-$bench_top/_build/run/bench/smtp-load}
[ -x "$smtp_load" ] || die "$smtp_load not found: build with ./run.sh or set SMTP_LOAD"
tern_use smtpd
for cmd in timeout python3; do
	command -v "$cmd" >/dev/null || die "$cmd is missing (apt-get install coreutils python3)"
done

# --- Postfix: the peer, and smtp-source, the load generator ---------------
ensure_postfix

# --- accounts (as run.sh creates them) ------------------------------------
ensure_tern_accounts
vmail_uid=$(id -u vmail)
vmail_gid=$(id -g vmail)

# --- temp dir and cleanup (bench_cleanup stops both) ------------------------
bench_tmp tern-bench
pf="$tmp/postfix"
postfix_dirs=$pf

# A port base N with N+25 and N+587 (tern) and N+2525 (Postfix) free.
find_port_base 25 587 2525
tern_port=$((base + 25))
pf_port=$((base + 2525))

# --- the same restriction list for both ------------------------------------
# A realistic internet-facing list: a cidr: table of refused client
# networks (none matches the load's 127.0.0.1), a hash: table of refused
# senders (the load's sender is not in it; its domain is looked up too),
# and relay control. Each system builds its hash: file with its own tool.
tables="$tmp/tables"
mkdir -p "$tables"
for i in $(seq 0 255); do
	echo "10.$i.0.0/16 REJECT"
	echo "192.0.2.$i REJECT listed"
done >"$tables/clients.cidr"
for i in $(seq 1 2000); do
	echo "spammer$i@bad$((i % 50)).example REJECT"
done >"$tables/senders"
echo "bad-domain.example REJECT" >>"$tables/senders"
restrictions() { # $1: the hash: table's path
	echo "smtpd_client_restrictions = check_client_access cidr:$tables/clients.cidr"
	echo "smtpd_sender_restrictions = check_sender_access hash:$1"
	echo "smtpd_relay_restrictions = reject_unauth_destination"
	echo "mynetworks = 127.0.0.0/8"
}

# --- tern instance ----------------------------------------------------------
say "tern instance in $tern_dir, SMTP on 127.0.0.1:$tern_port"
tern_init
# Postfix has no greeting pause: neither does tern here.
"$ternconf" -c "$tern_dir" -e smtpd_greet_pause=0
cp "$tables/senders" "$tern_dir/senders"
"$prefix/sbin/ternmap" -c "$tern_dir" "hash:$tern_dir/senders"
restrictions "$tern_dir/senders" | while IFS= read -r line; do
	"$ternconf" -c "$tern_dir" -e "${line%% = *}=${line#* = }"
done
echo "bench-password" | "$ternuser" -c "$tern_dir" add "$rcpt" - >/dev/null
"$tern" -c "$tern_dir" start >/dev/null
tern_maildir="$(conf_value virtual_mailbox_base)/example.test/bench/Maildir"
tern_pidfile="$(conf_value queue_directory)/pid/master.pid"
tern_cert=$(conf_value smtpd_tls_cert_file)
tern_key=$(conf_value smtpd_tls_key_file)
tern_eccert=$(conf_value smtpd_tls_eccert_file)
tern_eckey=$(conf_value smtpd_tls_eckey_file)

# --- Postfix instance ---------------------------------------------------------
say "postfix instance in $pf, SMTP on 127.0.0.1:$pf_port"
mkdir -p "$pf/conf" "$pf/queue" "$pf/data" "$pf/vmail"
chown postfix "$pf/data"
chown "$vmail_uid:$vmail_gid" "$pf/vmail"
cat >"$pf/conf/main.cf" <<EOF
# A private instance: nothing here touches /etc/postfix or /var/spool/postfix.
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.example.org
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
alias_maps =
alias_database =
biff = no
virtual_mailbox_domains = example.test
virtual_mailbox_base = $pf/vmail
virtual_mailbox_maps = hash:$pf/conf/vmailbox
virtual_uid_maps = static:$vmail_uid
virtual_gid_maps = static:$vmail_gid
# The certificates tern init made, so both servers do the same work.
smtpd_tls_security_level = may
smtpd_tls_cert_file = $tern_cert
smtpd_tls_key_file = $tern_key
smtpd_tls_eccert_file = $tern_eccert
smtpd_tls_eckey_file = $tern_eckey
$(restrictions "$pf/conf/senders")
EOF
cp "$tables/senders" "$pf/conf/senders"
postmap -c "$pf/conf" "$pf/conf/senders"
# Debian's master.cf services, without chroot (the jail needs files
# copied in) and with smtpd only on our port.
postfix_master_cf "127.0.0.1:$pf_port inet n - n - - smtpd" >"$pf/conf/master.cf"
echo "$rcpt example.test/bench/Maildir/" >"$pf/conf/vmailbox"
postmap -c "$pf/conf" "$pf/conf/vmailbox"
postfix -c "$pf/conf" start >/dev/null 2>&1 ||
	die "postfix -c $pf/conf start failed: $(tail -5 "$pf/maillog" 2>/dev/null)"
pf_maildir="$pf/vmail/example.test/bench/Maildir"
pf_pidfile="$pf/queue/pid/master.pid"

# --- measuring ------------------------------------------------------------
count() { find "$1/new" -type f 2>/dev/null | wc -l; }

wait_count() { # maildir target seconds
	local end=$((SECONDS + $3))
	while [ "$(count "$1")" -lt "$2" ]; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# The load of the current mode: smtp-source, or smtp-load with STARTTLS.
mode=plain
send() { # port count
	if [ "$mode" = starttls ]; then
		timeout "$deadline" "$smtp_load" -t -s "$sessions" -m "$2" \
			-l "$size" -f "$sender" -r "$rcpt" "127.0.0.1:$1" >/dev/null
	else
		timeout "$deadline" smtp-source -s "$sessions" -m "$2" \
			-l "$size" -f "$sender" -t "$rcpt" "127.0.0.1:$1" >/dev/null
	fi
}

hz=$(getconf CLK_TCK)

# run NAME PORT MAILDIR PIDFILE: prints "seconds cpu_seconds".
run() {
	local name=$1 port=$2 maildir=$3 pidfile=$4 master before t0 t1 c0 c1
	send "$port" "$warmup" || die "$name: smtp-source failed during warm-up"
	wait_count "$maildir" "$warmup" 60 ||
		die "$name: warm-up messages not delivered within 60 s"
	before=$(count "$maildir")
	master=$(master_of "$pidfile")
	c0=$(cpu_ticks "$master")
	t0=$(date +%s.%N)
	send "$port" "$messages" || die "$name: smtp-source failed or timed out"
	wait_count "$maildir" $((before + messages)) "$deadline" ||
		die "$name: only $(($(count "$maildir") - before)) of $messages messages delivered within $deadline s"
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "$master")
	[ "$(count "$maildir")" -eq $((before + messages)) ] ||
		die "$name: $(($(count "$maildir") - before)) messages delivered, expected $messages"
	python3 -c "import sys; print('%.3f %.2f' % (float(sys.argv[2]) - float(sys.argv[1]), (int(sys.argv[4]) - int(sys.argv[3])) / int(sys.argv[5])))" \
		"$t0" "$t1" "$c0" "$c1" "$hz"
}

results=""
for mode in plain starttls; do
	say "$mode: $messages messages of $size bytes over $sessions sessions to each (after $warmup warm-up messages)"
	out=$(run tern "$tern_port" "$tern_maildir" "$tern_pidfile") || exit 1
	results="$results $mode tern $out"
	out=$(run postfix "$pf_port" "$pf_maildir" "$pf_pidfile") || exit 1
	results="$results $mode postfix $out"
done

# shellcheck disable=SC2086
python3 - "$messages" $results <<'PY'
import sys
m = int(sys.argv[1])
rows = sys.argv[2:]
res = {}
for i in range(0, len(rows), 4):
    res[(rows[i], rows[i + 1])] = (float(rows[i + 2]), float(rows[i + 3]))
for mode in ("plain", "starttls"):
    print()
    print("%-18s %8s %10s %10s %14s" % (mode, "seconds", "msg/s", "CPU s",
                                        "CPU s/1000 msg"))
    for name in ("tern", "postfix"):
        s, c = res[(mode, name)]
        print("%-18s %8.2f %10.0f %10.2f %14.2f" % (name, s, m / s, c,
                                                    c * 1000 / m))
    ts, tc = res[(mode, "tern")]
    ps, pc = res[(mode, "postfix")]
    print("tern/postfix throughput: %.2fx" % (ps / ts))
    if tc > 0:
        print("postfix/tern CPU per message: %.2fx" % (pc / tc))
PY
