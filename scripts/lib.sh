# SPDX-License-Identifier: MIT
# Shared by run.sh and test.sh (sourced, not run): messages, Debian package
# installation, autotools generation and an out-of-tree configure that is
# re-run only when its inputs change. The caller sets $prog and $top.

say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }

# install_missing PKG...: apt-get installs the packages that dpkg does not
# list as installed; runs "apt-get update" only when something is missing.
install_missing() {
	local missing="" p
	if ! command -v dpkg-query >/dev/null 2>&1; then
		say "not a Debian system: install the equivalent of: $*"
		return 0
	fi
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	[ "$(id -u)" -eq 0 ] ||
		die "missing packages:$missing (run as root, or: sudo apt-get install$missing)"
	say "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q </dev/null || die "apt-get update failed"
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing </dev/null ||
		die "apt-get install$missing failed"
}

# autotools output is not in git: generate it when missing or older than
# its sources. Builds go out of tree, so the source must stay unconfigured.
ensure_autotools() {
	local am stale=""
	[ -x configure ] && [ ! configure.ac -nt configure ] || stale=1
	for am in $(find . -name Makefile.am -not -path './_build/*'); do
		[ -f "${am%.am}.in" ] && [ ! "$am" -nt "${am%.am}.in" ] || stale=1
	done
	if [ -n "$stale" ]; then
		say "autoreconf -fi"
		autoreconf -fi || die "autoreconf failed"
	fi
	[ ! -f config.status ] ||
		die "the source tree itself is configured; run 'make distclean' here first (builds go to _build/)"
}

# configure_into DIR ARG...: configures an out-of-tree build in DIR unless
# it is already configured with exactly these arguments.
configure_into() {
	local dir=$1 stamp
	shift
	stamp="$*"
	mkdir -p "$dir"
	if [ -f "$dir/config.status" ] && [ ! configure -nt "$dir/config.status" ] &&
		[ "$(cat "$dir/.configure-args" 2>/dev/null)" = "$stamp" ]; then
		return 0
	fi
	say "configure $* (in ${dir#"$top"/})"
	(cd "$dir" && "$top/configure" "$@") >"$dir/configure.out" 2>&1 || {
		tail -n 30 "$dir/configure.out" >&2
		die "configure failed (full output: $dir/configure.out)"
	}
	printf '%s\n' "$stamp" >"$dir/.configure-args"
}
