#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Local submission benchmark: N sequential sendmail invocations (one
# message each, as cron jobs and scripts submit mail) against tern's
# sendmail and against Postfix's, in one run, each instance private and
# delivering to a virtual maildir. Prints per-invocation latency (mean,
# p50, p99), the time from the first submission until every message is
# in the maildir, CPU per message (the mail system's daemons and the
# sendmail processes), and tern/Postfix ratios. See bench/README.md.
#
#   bench/sendmail-bench.sh [MESSAGES]    (default 1000; or BENCH_MESSAGES)
#
# Environment: TERN_PREFIX (default /usr/local; without a tern there, a
# release build of this tree into _build/bench-release/inst, unless
# BENCH_BUILD=0), BENCH_SIZE (message
# bytes, default 1024), BENCH_SYSTEMS ("tern postfix"), BENCH_KEEP=1
# keeps the temp dir. Needs root (both systems drop privileges; both
# sendmails are run by root, so both take a -C/-c directory).
set -eu

prog=sendmail-bench
# shellcheck source=bench/lib.sh disable=SC2034
. "$(dirname "$0")/lib.sh"

messages=${1:-${BENCH_MESSAGES:-1000}}
size=${BENCH_SIZE:-1024}
systems=${BENCH_SYSTEMS:-tern postfix}
domain=bench.example
rcpt=rcpt@$domain
sender=bench@example.org
deadline=$((120 + messages / 5))

check_count MESSAGES "$messages"
[ "$(id -u)" -eq 0 ] || die "run as root: both mail systems drop privileges"
for cmd in timeout python3; do
	command -v "$cmd" >/dev/null || die "$cmd is missing (apt-get install coreutils python3)"
done
if in_list tern "$systems"; then
	tern_use smtpd
else
	# Never run, but its sendmail must not be taken for Postfix's.
	tern=""
	prefix=${TERN_PREFIX:-/usr/local}
fi
tern_sendmail="$prefix/sbin/sendmail"
! in_list tern "$systems" || [ -x "$tern_sendmail" ] ||
	die "$tern_sendmail not found: this tern has no sendmail yet"

ensure_postfix
ensure_tern_accounts
# Postfix's own sendmail, also when run.sh diverted it aside for tern's.
pf_sendmail=$(dpkg-divert --truename /usr/sbin/sendmail 2>/dev/null || echo /usr/sbin/sendmail)
if [ ! -x "$pf_sendmail" ] ||
	[ "$(readlink -f "$pf_sendmail")" = "$(readlink -f "$tern_sendmail")" ]; then
	die "Postfix's sendmail not found (looked at $pf_sendmail)"
fi

# --- temp dir and cleanup (bench_cleanup stops both) ------------------------
bench_tmp tern-sbench
pf="$tmp/postfix"
postfix_dirs=$pf
find_port_base 25 587 465 2525

# The message: headers and a body of about $size bytes.
msg="$tmp/message"
python3 - "$msg" "$size" "$sender" "$rcpt" <<'PY'
import sys
path, size, sender, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
head = ("From: %s\nTo: %s\nSubject: sendmail bench\n"
        "Message-ID: <bench@example.org>\n\n" % (sender, rcpt))
line = "x" * 71 + "\n"
body = (line * (max(0, size - len(head)) // len(line) + 1))
with open(path, "w") as f:
    f.write(head + body)
PY

# --- tern: a private instance, the recipient a virtual user ---------------
case " $systems " in
*" tern "*)
	say "tern instance in $tern_dir"
	tern_init
	"$ternconf" -c "$tern_dir" -e smtpd_greet_pause=0 \
		"virtual_mailbox_domains=$domain" myhostname=bench.example.org
	echo bench-password | "$ternuser" -c "$tern_dir" add "$rcpt" - >/dev/null
	grep -q '^pickup[[:space:]]' "$tern_dir/services.conf" ||
		say "WARNING: services.conf has no pickup service: maildrop files will wait"
	"$tern" -c "$tern_dir" start >/dev/null
	tern_pidfile="$(conf_value queue_directory)/pid/master.pid"
	tern_maildir="$(conf_value virtual_mailbox_base)/$domain/${rcpt%@*}/Maildir"
	;;
esac

# --- Postfix: a private instance, the recipient a virtual(8) mailbox ------
case " $systems " in
*" postfix "*)
	say "postfix instance in $pf"
	mkdir -p "$pf/conf" "$pf/queue" "$pf/data" "$pf/vmail"
	chown postfix "$pf/data"
	chown vmail:vmail "$pf/vmail"
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
virtual_mailbox_domains = $domain
virtual_mailbox_base = $pf/vmail
virtual_mailbox_maps = inline:{ $rcpt=$domain/${rcpt%@*}/Maildir/ }
virtual_uid_maps = static:$(id -u vmail)
virtual_gid_maps = static:$(id -g vmail)
EOF
	postfix_master_cf "127.0.0.1:$((base + 2525)) inet n - n - - smtpd" \
		>"$pf/conf/master.cf"
	postfix -c "$pf/conf" start >"$pf/start.out" 2>&1 ||
		die "postfix -c $pf/conf start failed: $(tail -5 "$pf/start.out" "$pf/maillog" 2>/dev/null)"
	pf_pidfile="$pf/queue/pid/master.pid"
	pf_maildir="$pf/vmail/$domain/${rcpt%@*}/Maildir"
	;;
esac

# --- the run ----------------------------------------------------------------
hz=$(getconf CLK_TCK)
results="$tmp/results"
: >"$results"

# submit NAME MASTER_PIDFILE MAILDIR SENDMAIL ARGS...: the N sequential
# invocations, then the wait for the maildir; appends one line of
# numbers to $results.
submit() {
	local name=$1 pidfile=$2 maildir=$3 master c0 c1 out
	shift 3
	master=$(master_of "$pidfile")
	say "$name: $messages sequential sendmail submissions"
	c0=$(cpu_ticks "$master")
	out=$(python3 - "$messages" "$msg" "$maildir" "$deadline" "$@" <<'PY'
import os, resource, subprocess, sys, time
n, msg, maildir, deadline = (int(sys.argv[1]), sys.argv[2], sys.argv[3],
                             float(sys.argv[4]))
argv = sys.argv[5:]
new = os.path.join(maildir, "new")

def delivered():
    try:
        return len(os.listdir(new))
    except FileNotFoundError:
        return 0

before = delivered()
ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
lat = []
start = time.monotonic()
with open(msg, "rb") as f:
    data = f.read()
for i in range(n):
    t0 = time.monotonic()
    r = subprocess.run(argv, input=data, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    lat.append(time.monotonic() - t0)
    if r.returncode != 0:
        sys.exit("submission %d: exit %d: %s" % (i, r.returncode,
                                                  r.stderr.decode()[-300:]))
submitted = time.monotonic() - start
ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
while delivered() - before < n:
    if time.monotonic() - start > deadline:
        sys.exit("only %d of %d messages in %s after %d s"
                 % (delivered() - before, n, new, deadline))
    time.sleep(0.02)
done = time.monotonic() - start
lat.sort()
client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
print("%.3f %.3f %.3f %.3f %.3f %.3f" % (
    1000 * sum(lat) / n, 1000 * lat[n // 2], 1000 * lat[min(n - 1,
    (99 * n) // 100)], submitted, done, 1000 * client_cpu / n))
PY
	) || die "$name: the run failed"
	c1=$(cpu_ticks "$master")
	echo "$name $out $(python3 -c "print('%.3f' % (1000.0 * ($c1 - $c0) / $hz / $messages))")" >>"$results"
}

case " $systems " in
*" tern "*) submit tern "$tern_pidfile" "$tern_maildir" \
	"$tern_sendmail" -C "$tern_dir" -f "$sender" -i "$rcpt" ;;
esac
case " $systems " in
*" postfix "*) submit postfix "$pf_pidfile" "$pf_maildir" \
	"$pf_sendmail" -C "$pf/conf" -f "$sender" -i "$rcpt" ;;
esac

# --- report -------------------------------------------------------------------
python3 - "$results" "$messages" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows[f[0]] = [float(x) for x in f[1:]]
n = int(sys.argv[2])
cols = ("latency mean ms", "p50 ms", "p99 ms", "all submitted s",
        "all in maildir s", "sendmail CPU ms/msg", "daemon CPU ms/msg")
print()
print("%d sequential sendmail invocations, one message each" % n)
print("%-22s" % "" + "".join("%12s" % name for name in rows))
for i, c in enumerate(cols):
    print("%-22s" % c + "".join("%12.3f" % rows[name][i] for name in rows))
if "tern" in rows and "postfix" in rows:
    t, p = rows["tern"], rows["postfix"]
    print("tern/postfix")
    for i, c in enumerate(cols):
        ratio = t[i] / p[i] if p[i] else float("nan")
        print("  %-20s %8.2f" % (c, ratio))
PY
