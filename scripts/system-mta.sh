#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Makes tern the system's mailer, or stops it being that:
#
#   scripts/system-mta.sh install PREFIX     (run.sh does this)
#   scripts/system-mta.sh uninstall PREFIX   (run.sh --uninstall does this)
#
# Debian has no alternatives for sendmail: each MTA package (postfix,
# exim4-daemon-*, ...) owns /usr/sbin/sendmail and the names below itself,
# and they conflict through the virtual package mail-transport-agent. So
# the installed MTA's files are moved aside with local diversions
# (dpkg-divert --local --rename: package upgrades then write to the
# diverted name, not over tern's link) and symbolic links to tern's
# programs are put in their place. uninstall removes only links that
# point into PREFIX and removes exactly the diversions install added (those
# whose target ends in $suffix), which renames the MTA's files back. Both
# are idempotent.
set -eu

prog=system-mta.sh
say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $prog install|uninstall PREFIX"
action=$1
prefix=$2
suffix=.before-tern

# The names Debian's MTA packages install, and the tern program each
# becomes. /usr/sbin/mailq and /usr/sbin/newaliases are no Debian names
# (BSD and some scripts use them): added when free, as plain links.
names="/usr/sbin/sendmail:sendmail
/usr/lib/sendmail:sendmail
/usr/bin/mailq:mailq
/usr/bin/newaliases:newaliases"
extra_names="/usr/sbin/mailq:mailq
/usr/sbin/newaliases:newaliases"

command -v dpkg-divert >/dev/null || die "dpkg-divert not found: not a Debian system"

# "LOCAL" for a local diversion of path, the package name for another
# one, empty for none.
diverted_by() {
	dpkg-divert --listpackage "$1" 2>/dev/null || true
}

# The link tern puts at path: to $prefix/sbin/$prog.
ours() {
	[ -L "$1" ] && case "$(readlink "$1")" in "$prefix"/*) true ;; *) false ;; esac
}

install_one() {
	local path=$1 target=$prefix/sbin/$2 by
	[ -e "$target" ] || die "$target is missing: build and install tern first"
	by=$(diverted_by "$path")
	case "$by" in
	"")
		if [ -e "$path" ] || [ -L "$path" ]; then
			say "diverting $path to $path$suffix"
			dpkg-divert --local --rename --divert "$path$suffix" \
				--add "$path" >/dev/null
		else
			# Nothing to keep, but a diversion still keeps a later
			# MTA package from writing over the link.
			dpkg-divert --local --divert "$path$suffix" \
				--add "$path" >/dev/null
		fi
		;;
	LOCAL)
		[ "$(dpkg-divert --truename "$path")" = "$path$suffix" ] ||
			die "$path is diverted locally to $(dpkg-divert --truename "$path"), not by tern: leaving it"
		;;
	*)
		die "$path is diverted by the package $by: leaving it"
		;;
	esac
	if [ -L "$path" ] || [ ! -e "$path" ]; then
		ln -sfn "$target" "$path"
	else
		die "$path is still a file after the diversion: leaving it"
	fi
}

install_extra() {
	local path=$1 target=$prefix/sbin/$2
	[ -e "$target" ] || return 0
	if [ ! -e "$path" ] && [ ! -L "$path" ]; then
		ln -s "$target" "$path"
	elif ! ours "$path"; then
		say "$path belongs to another program: leaving it"
	fi
}

uninstall_one() {
	local path=$1
	if [ "$(diverted_by "$path")" != LOCAL ] ||
		[ "$(dpkg-divert --truename "$path")" != "$path$suffix" ]; then
		# Not ours; a link of ours left behind goes all the same.
		if ours "$path"; then rm -f "$path"; fi
		return 0
	fi
	if ours "$path"; then
		rm -f "$path"
	elif [ -e "$path" ] || [ -L "$path" ]; then
		die "$path is no longer tern's link: fix it by hand, then run again"
	fi
	say "restoring $path"
	dpkg-divert --local --rename --divert "$path$suffix" \
		--remove "$path" >/dev/null
}

case "$action" in
install)
	for entry in $names; do
		install_one "${entry%%:*}" "${entry#*:}"
	done
	for entry in $extra_names; do
		install_extra "${entry%%:*}" "${entry#*:}"
	done
	say "/usr/sbin/sendmail, mailq and newaliases are tern's (undo: ./run.sh --uninstall)"
	;;
uninstall)
	for entry in $extra_names; do
		path=${entry%%:*}
		if ours "$path"; then rm -f "$path"; fi
	done
	for entry in $names; do
		uninstall_one "${entry%%:*}"
	done
	;;
*)
	die "usage: $prog install|uninstall PREFIX"
	;;
esac
