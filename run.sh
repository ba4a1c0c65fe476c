#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Builds tern, installs it into /usr/local and starts the system instance
# on 127.0.0.1 with a demo mailbox, then prints how to send it a message.
# For a fresh Debian/Ubuntu machine; run as root. Running it again rebuilds,
# reinstalls and restarts; it never overwrites an existing configuration or
# user. It also makes tern the system's mailer: /usr/sbin/sendmail,
# /usr/lib/sendmail, mailq and newaliases become links to tern's, the
# installed MTA's files kept aside by dpkg-divert (scripts/system-mta.sh).
# --uninstall stops tern and puts those files back.
#
#   ./run.sh
#   ./run.sh --uninstall
set -eu

cd "$(dirname "$0")"
top=$(pwd)
build="$top/_build/run"
prefix=/usr/local
sbin="$prefix/sbin"
confdir="$prefix/etc/tern"
demo_user=demo@example.test
demo_domain=example.test
demo_password_file="$confdir/demo-password"

build_deps="build-essential autoconf automake pkg-config libssl-dev
	libc-ares-dev libdb-dev libpcre2-dev libcrypt-dev"
# useradd/groupadd, and the clients the printed examples use (swaks
# needs the Perl TLS modules for --tls).
run_deps="passwd swaks libnet-ssleay-perl libio-socket-ssl-perl python3"

prog=run.sh
. "$top/scripts/lib.sh"

[ "$(id -u)" -eq 0 ] ||
	die "run as root: it installs into $prefix, creates the tern, terndrop, vmail, ternauth and ternlogin accounts and listens on port 25"

case "${1:-}" in
"") ;;
--uninstall)
	if [ -x "$sbin/tern" ] && "$sbin/tern" status >/dev/null 2>&1; then
		say "stopping tern"
		"$sbin/tern" stop || die "tern stop failed"
	fi
	"$top/scripts/system-mta.sh" uninstall "$prefix"
	say "tern is stopped and the system's mailer is back; tern's files stay in $prefix (make -C $build uninstall removes them)"
	exit 0
	;;
*) die "usage: $prog [--uninstall]" ;;
esac

# --- dependencies, build and install ----------------------------------------
# shellcheck disable=SC2086
install_missing $build_deps $run_deps
ensure_autotools
configure_into "$build" --prefix="$prefix"
say "make -j2"
make -C "$build" -j2 -s || die "build failed"
say "make install (into $prefix)"
make -C "$build" install >/dev/null || die "make install failed"

# --- accounts ---------------------------------------------------------------
if ! getent passwd tern >/dev/null; then
	say "creating user tern"
	useradd -r -U -d /var/spool/tern -s /usr/sbin/nologin tern
fi
if ! getent group terndrop >/dev/null; then
	say "creating group terndrop"
	groupadd -r terndrop
fi
if ! getent passwd vmail >/dev/null; then
	say "creating user vmail"
	useradd -r -U -d /var/vmail -s /usr/sbin/nologin vmail
fi
# The auth service's own user: its group alone reads the password hashes.
if ! getent passwd ternauth >/dev/null; then
	say "creating user ternauth"
	useradd -r -U -d /nonexistent -s /usr/sbin/nologin ternauth
fi
# The POP3/IMAP pre-login processes' own user (chrooted, no mail).
if ! getent passwd ternlogin >/dev/null; then
	say "creating user ternlogin"
	useradd -r -U -d /nonexistent -s /usr/sbin/nologin ternlogin
fi

# --- configuration ------------------------------------------------------------
tern="$sbin/tern"
ternconf="$sbin/ternconf"
ternuser="$sbin/ternuser"
if [ ! -f "$confdir/tern.conf" ]; then
	say "tern init (configuration in $confdir)"
	"$tern" init || die "tern init failed"
else
	say "keeping the configuration in $confdir"
	# Services added since that configuration was made (outbound smtp,
	# pickup and showq for sendmail and mailq, POP3's login, spawn and anvil,
	# IMAP's login, fetch), each with its continuation lines.
	template="$prefix/share/tern/services.conf"
	for svc in smtp pickup showq login/spawn login/anvil 110 995 143 993 fetch; do
		grep -q "^$svc[[:space:]]" "$confdir/services.conf" && continue
		entry=$(awk -v n="$svc" '$1 == n && !/^[ \t]/ { p = 1; print; next }
			p && /^[ \t]/ { print; next } { p = 0 }' "$template")
		[ -n "$entry" ] || continue
		say "adding the $svc service to $confdir/services.conf"
		printf '%s\n' "$entry" >>"$confdir/services.conf"
	done
fi

conf_value() {
	"$ternconf" -x "$1" | sed -n "s/^$1 = //p"
}
domains=$(conf_value virtual_mailbox_domains)
case " $(printf '%s' "$domains" | tr ',' ' ') " in
*" $demo_domain "*) ;;
*)
	say "adding $demo_domain to virtual_mailbox_domains"
	"$ternconf" -e "virtual_mailbox_domains=${domains:+$domains, }$demo_domain"
	;;
esac

if ! "$ternuser" list | grep -qx "$demo_user"; then
	say "creating the virtual user $demo_user"
	umask 077
	head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$demo_password_file"
	umask 022
	"$ternuser" add "$demo_user" - <"$demo_password_file" ||
		die "ternuser add $demo_user failed"
fi

# --- start ------------------------------------------------------------------
if "$tern" status >/dev/null 2>&1; then
	say "tern is running: restarting it"
	"$tern" stop || die "tern stop failed"
fi
"$tern" start || die "tern start failed (see the log below)"

# --- the system's mailer ----------------------------------------------------
if [ -x "$sbin/sendmail" ]; then
	"$top/scripts/system-mta.sh" install "$prefix" ||
		die "making tern the system's sendmail failed"
else
	say "no $sbin/sendmail in this build: the system's sendmail stays"
fi

maildir="$(conf_value virtual_mailbox_base)/$demo_domain/${demo_user%@*}/Maildir"
log=$(conf_value maillog_file)
[ -n "$log" ] || log="syslog (facility mail), e.g. /var/log/mail.log"
port=25
password=$(cat "$demo_password_file" 2>/dev/null || echo "(set by an earlier run; reset with: $ternuser del $demo_user, then run.sh again)")
cert=$(conf_value smtpd_tls_cert_file)
key=$(conf_value smtpd_tls_key_file)

cat <<EOF

tern is running: SMTP on 127.0.0.1:$port (STARTTLS offered), submission on
127.0.0.1:587 (STARTTLS and AUTH required) and 127.0.0.1:465 (implicit TLS);
POP3 on 110 (STLS) and 995 (implicit TLS); IMAP on 143 (STARTTLS) and 993
(implicit TLS).

Send a test message:
  swaks --server 127.0.0.1:$port --from you@example.org --to $demo_user
or
  python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", $port).sendmail("you@example.org", ["$demo_user"], "Subject: hello\\r\\n\\r\\nhello from python\\r\\n")'
Submit as the demo user, over TLS with a password:
  swaks --server 127.0.0.1:587 --tls --auth PLAIN --auth-user $demo_user --auth-password '$password' --from $demo_user --to $demo_user
From a script or cron job, as any user (then "mailq" shows the queue):
  printf 'Subject: hello\n\nhello from sendmail\n' | $sbin/sendmail $demo_user

It lands in:   $maildir/new/
Read it over POP3 (plaintext logins only from 127.0.0.1 or after STLS):
  curl -k --ssl-reqd pop3://127.0.0.1/1 -u '$demo_user:$password'
  curl -k pop3s://127.0.0.1/ -u '$demo_user:$password'      (the list)
or over IMAP (Thunderbird, mutt, mbsync, a phone: imaps on 993):
  curl -k 'imaps://127.0.0.1/INBOX;UID=1' -u '$demo_user:$password'
  curl -k imaps://127.0.0.1/ -u '$demo_user:$password'      (the folders)
The log:       $log
Demo user:     $demo_user, password $password
Status:        $tern status
Stop:          $tern stop
Add users:     $ternuser add NAME@$demo_domain -   (then type the password)
Certificate:   $cert (self-signed; put a real certificate and its key
               $key in their place, then: $tern reload)
EOF
