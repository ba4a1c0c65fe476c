#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Outbound benchmark: tern's smtp client against Postfix's, in one run,
# both relaying the same load to the same sink (Postfix's smtp-sink on
# 127.0.0.2) with the same destination concurrency: first in plaintext,
# then with STARTTLS to the sink. See bench/README.md.
#
#   bench/outbound-bench.sh [MESSAGES]    (default 10000; or BENCH_MESSAGES)
#
# Environment: TERN_PREFIX (default /usr/local; without a tern there, a
# release build of this tree into _build/bench-release/inst, unless BENCH_BUILD=0),
# BENCH_SESSIONS (parallel
# injecting SMTP sessions, default 20), BENCH_CONCURRENCY (destination
# concurrency of both clients, default 20), BENCH_SIZE (message bytes,
# default 1024), BENCH_SYSTEMS ("tern postfix"; "postfix" alone runs
# without tern), BENCH_MODES ("plain starttls"), BENCH_KEEP=1 keeps the
# temp dir. Needs root.
set -eu

prog=outbound-bench
# shellcheck source=bench/lib.sh disable=SC2034
. "$(dirname "$0")/lib.sh"

messages=${1:-${BENCH_MESSAGES:-10000}}
sessions=${BENCH_SESSIONS:-20}
concurrency=${BENCH_CONCURRENCY:-20}
size=${BENCH_SIZE:-1024}
systems=${BENCH_SYSTEMS:-tern postfix}
modes=${BENCH_MODES:-plain starttls}
# A remote recipient: both relay it to the sink (relayhost).
rcpt=bench@sink.example
sender=bench@example.org
sink_addr=127.0.0.2
# Messages relayed before timing starts: processes running, connections
# and TLS sessions to the sink established, as in steady state.
warmup=$((2 * concurrency))
deadline=$((120 + messages / 10))

check_count MESSAGES "$messages"
[ "$(id -u)" -eq 0 ] || die "run as root: both mail systems drop privileges"
for cmd in timeout python3; do
	command -v "$cmd" >/dev/null || die "$cmd is missing (apt-get install coreutils python3)"
done
tern=""
! in_list tern "$systems" || tern_use smtpd smtp

ensure_postfix
ensure_tern_accounts

# --- temp dir and cleanup (bench_cleanup stops the sink, tern, both Postfixes)
bench_tmp tern-obench
pf="$tmp/postfix"        # the Postfix that relays (measured)
front="$tmp/tlsfront"    # the sink's STARTTLS front (not measured)
postfix_dirs="$pf $front"
sink_pid=""
bench_stop() { [ -z "$sink_pid" ] || kill "$sink_pid" 2>/dev/null; }

# A port base N: tern's N+25, N+587, N+465; Postfix's N+2525 on
# 127.0.0.1; the sink's N+2626 (plain smtp-sink), N+2627 (STARTTLS front)
# and N+2628 (the smtp-sink behind it) on $sink_addr.
find_port_base 25 587 465 2525 "$sink_addr:2626" "$sink_addr:2627" "$sink_addr:2628"
tern_port=$((base + 25))
pf_port=$((base + 2525))
sink_port=$((base + 2626))
tls_port=$((base + 2627))
behind_port=$((base + 2628))

# --- the sink's certificate: self-signed, made here ----------------------
cert="$tmp/sink.crt"
key="$tmp/sink.key"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
	-subj /CN=sink.example -keyout "$key" -out "$cert" >/dev/null 2>&1 ||
	die "openssl req failed (apt-get install openssl)"

# --- tern: relays everything from 127.0.0.1 to the sink --------------------
# The settings of each mode (pf_mode below: the same for Postfix).
tern_mode() { # plain|starttls
	if [ "$1" = plain ]; then
		"$ternconf" -c "$tern_dir" -e "relayhost=[$sink_addr]:$sink_port" \
			smtp_tls_security_level=none
	else
		"$ternconf" -c "$tern_dir" -e "relayhost=[$sink_addr]:$tls_port" \
			smtp_tls_security_level=may
	fi
}
case " $systems " in
*" tern "*)
	say "tern instance in $tern_dir, SMTP on 127.0.0.1:$tern_port"
	tern_init
	"$ternconf" -c "$tern_dir" -e smtpd_greet_pause=0 mynetworks=127.0.0.0/8 \
		"default_destination_concurrency_limit=$concurrency" \
		myhostname=bench.example.org
	tern_mode plain
	"$tern" -c "$tern_dir" start >/dev/null
	tern_pidfile="$(conf_value queue_directory)/pid/master.pid"
	;;
esac

# --- Postfix instances ----------------------------------------------------
# postfix_instance DIR: queue, data, log below DIR; Debian's services
# without chroot (the jail needs files copied in); main.cf from stdin is
# appended to the common part. $2: the smtpd line of master.cf.
postfix_instance() {
	local d=$1 smtpd_line=$2
	mkdir -p "$d/conf" "$d/queue" "$d/data"
	chown postfix "$d/data"
	{
		cat <<EOF
# A private instance: nothing here touches /etc/postfix or /var/spool/postfix.
compatibility_level = 3.6
queue_directory = $d/queue
data_directory = $d/data
mail_owner = postfix
setgid_group = postdrop
mydestination =
inet_protocols = ipv4
maillog_file = $d/maillog
maillog_file_prefixes = $d
alias_maps =
alias_database =
biff = no
mynetworks = 127.0.0.0/8
EOF
		cat
	} >"$d/conf/main.cf"
	postfix_master_cf "$smtpd_line" >"$d/conf/master.cf"
	postfix -c "$d/conf" start >"$d/start.out" 2>&1 ||
		die "postfix -c $d/conf start failed: $(tail -5 "$d/start.out" "$d/maillog" 2>/dev/null)"
}

pf_mode() { # plain|starttls
	if [ "$1" = plain ]; then
		postconf -c "$pf/conf" -e "relayhost = [$sink_addr]:$sink_port" \
			"smtp_tls_security_level = none"
	else
		postconf -c "$pf/conf" -e "relayhost = [$sink_addr]:$tls_port" \
			"smtp_tls_security_level = may"
	fi
}

case " $systems " in
*" postfix "*)
	say "postfix instance in $pf, SMTP on 127.0.0.1:$pf_port"
	# Postfix's client with its recommended TLS session cache and the
	# same destination concurrency as tern's.
	postfix_instance "$pf" "127.0.0.1:$pf_port inet n - n - - smtpd" <<EOF
myhostname = bench.example.org
inet_interfaces = 127.0.0.1
default_destination_concurrency_limit = $concurrency
smtp_destination_concurrency_limit = $concurrency
smtp_tls_session_cache_database = btree:\$data_directory/smtp_scache
relayhost = [$sink_addr]:$sink_port
smtp_tls_security_level = none
EOF
	pf_pidfile="$pf/queue/pid/master.pid"
	;;
esac

# The STARTTLS sink: smtp-sink does no TLS, so Postfix's smtpd takes
# STARTTLS (the certificate tern init made) and hands each transaction
# straight to an smtp-sink behind it (smtpd_proxy_filter: no queue, no
# cleanup), which counts. The same for both systems; not measured.
case " $modes " in
*" starttls "*)
	say "STARTTLS sink: postfix smtpd on $sink_addr:$tls_port in front of smtp-sink on $sink_addr:$behind_port"
	postfix_instance "$front" "$sink_addr:$tls_port inet n - n - - smtpd" <<EOF
myhostname = sink.example
# The smtpd line binds $sink_addr itself: Postfix takes only
# addresses configured on an interface here, and lo has 127.0.0.1.
inet_interfaces = 127.0.0.1
smtpd_tls_security_level = may
# Logged, so that the run can check TLS was used (the front is not measured).
smtpd_tls_loglevel = 1
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_proxy_filter = $sink_addr:$behind_port
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
EOF
	;;
esac

# --- the sink and measuring -----------------------------------------------
# start_sink PORT: a fresh smtp-sink counting messages into $tmp/sink.out.
start_sink() {
	: >"$tmp/sink.out"
	smtp-sink -c -u postfix -h sink.example "inet:$sink_addr:$1" 256 \
		>"$tmp/sink.out" 2>&1 &
	sink_pid=$!
	local end=$((SECONDS + 10))
	until port_in_use "$1" "$sink_addr"; do
		[ "$SECONDS" -lt "$end" ] || die "smtp-sink did not start on $sink_addr:$1"
		sleep 0.05
	done
	# The probe was a session: the counter starts from what it shows.
}
stop_sink() {
	[ -z "$sink_pid" ] || { kill "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null || true; }
	sink_pid=""
}
# Messages smtp-sink received so far: its -c line "sess=N quit=N mesg=N".
count() {
	local n
	n=$(tail -c 100 "$tmp/sink.out" | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -n 1)
	echo "${n:-0}"
}
wait_count() { # target seconds
	local end=$((SECONDS + $2))
	while [ "$(count)" -lt "$1" ]; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}
send() { # port count
	timeout "$deadline" smtp-source -s "$sessions" -m "$2" -l "$size" \
		-f "$sender" -t "$rcpt" "127.0.0.1:$1" >/dev/null
}

hz=$(getconf CLK_TCK)

# run NAME PORT PIDFILE: prints "seconds cpu_seconds".
run() {
	local name=$1 port=$2 pidfile=$3 master before t0 t1 c0 c1
	send "$port" "$warmup" || die "$name: smtp-source failed during warm-up"
	wait_count "$warmup" 60 ||
		die "$name: warm-up: $(count) of $warmup messages reached the sink within 60 s"
	before=$(count)
	master=$(master_of "$pidfile")
	c0=$(cpu_ticks "$master")
	t0=$(date +%s.%N)
	send "$port" "$messages" || die "$name: smtp-source failed or timed out"
	wait_count $((before + messages)) "$deadline" ||
		die "$name: only $(($(count) - before)) of $messages messages reached the sink within $deadline s"
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "$master")
	python3 -c "import sys; print('%.3f %.2f' % (float(sys.argv[2]) - float(sys.argv[1]), (int(sys.argv[4]) - int(sys.argv[3])) / int(sys.argv[5])))" \
		"$t0" "$t1" "$c0" "$c1" "$hz"
}

results=""
for mode in $modes; do
	if [ "$mode" = plain ]; then sport=$sink_port; else sport=$behind_port; fi
	say "$mode: $messages messages of $size bytes, injected over $sessions sessions, relayed at concurrency $concurrency (after $warmup warm-up messages)"
	for sys in $systems; do
		start_sink "$sport"
		tls_seen=$(grep -c "TLS connection established from" "$front/maillog" 2>/dev/null || true)
		if [ "$sys" = tern ]; then
			tern_mode "$mode"
			"$tern" -c "$tern_dir" reload >/dev/null
			out=$(run tern "$tern_port" "$tern_pidfile") || exit 1
		else
			pf_mode "$mode"
			postfix -c "$pf/conf" reload >/dev/null 2>&1
			out=$(run postfix "$pf_port" "$pf_pidfile") || exit 1
		fi
		stop_sink
		if [ "$mode" = starttls ] && [ "$(grep -c "TLS connection established from" "$front/maillog" || true)" -le "${tls_seen:-0}" ]; then
			die "$sys: no TLS session reached the STARTTLS sink (see $front/maillog)"
		fi
		results="$results $mode $sys $out"
	done
done

# shellcheck disable=SC2086
python3 - "$messages" $results <<'PY'
import sys
m = int(sys.argv[1])
rows = sys.argv[2:]
res = {}
modes = []
for i in range(0, len(rows), 4):
    res[(rows[i], rows[i + 1])] = (float(rows[i + 2]), float(rows[i + 3]))
    if rows[i] not in modes:
        modes.append(rows[i])
for mode in modes:
    print()
    print("%-18s %8s %10s %10s %14s" % ("relay, " + mode, "seconds", "msg/s",
                                        "CPU s", "CPU s/1000 msg"))
    for name in ("tern", "postfix"):
        if (mode, name) not in res:
            continue
        s, c = res[(mode, name)]
        print("%-18s %8.2f %10.0f %10.2f %14.2f" % (name, s, m / s, c,
                                                    c * 1000 / m))
    if (mode, "tern") in res and (mode, "postfix") in res:
        ts, tc = res[(mode, "tern")]
        ps, pc = res[(mode, "postfix")]
        print("tern/postfix throughput: %.2fx" % (ps / ts))
        if tc > 0:
            print("postfix/tern CPU per message: %.2fx" % (pc / tc))
PY
