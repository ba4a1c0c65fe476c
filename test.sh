#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Builds tern with AddressSanitizer and UBSan in _build/, installs it into
# _build/inst and runs every test (test/run-tests): the C unit tests, the
# banned-function check and the integration tests against real instances.
# On Debian/Ubuntu, as root, it first installs whatever build and test
# dependencies are missing. The last line is "N passed, N failed, N skipped";
# the exit code is non-zero if anything failed.
#
#   ./test.sh                      everything
#   ./test.sh -k kill              only integration tests matching "kill"
#   ./test.sh test_foundation      only that integration module
#
# Arguments are passed to test/run-tests; TERN_KEEP=1 keeps test instances.
set -eu

cd "$(dirname "$0")"
top=$(pwd)
build="$top/_build"
prefix="$build/inst"

build_deps="build-essential autoconf automake pkg-config libssl-dev
	libc-ares-dev libdb-dev libpcre2-dev libcrypt-dev"
test_deps="swaks python3 procps"

say() { printf '==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# --- dependencies -----------------------------------------------------------
install_missing() {
	local missing="" p
	if ! command -v dpkg-query >/dev/null 2>&1; then
		say "not a Debian system: not checking packages ($*)"
		return 0
	fi
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing packages:$missing (run as root, or: sudo apt-get install$missing)"
	fi
	say "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q </dev/null ||
		die "apt-get update failed"
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing </dev/null ||
		die "apt-get install$missing failed"
}
# shellcheck disable=SC2086
install_missing $build_deps $test_deps

# --- configure --------------------------------------------------------------
# autotools output is not in git: generate it when missing or older than
# its sources.
autotools_stale() {
	local am
	[ -x configure ] || return 0
	[ configure.ac -nt configure ] && return 0
	for am in $(find . -name Makefile.am -not -path './_build/*'); do
		[ -f "${am%.am}.in" ] || return 0
		[ "$am" -nt "${am%.am}.in" ] && return 0
	done
	return 1
}
if autotools_stale; then
	say "autoreconf -fi"
	autoreconf -fi || die "autoreconf failed"
fi
if [ -f config.status ]; then
	die "the source tree itself is configured; run 'make distclean' here first (builds go to _build/)"
fi

# Re-run configure only when its inputs changed (a moved checkout, new
# configure): the stamp holds the arguments used.
configure_args="--enable-sanitizers --prefix=$prefix CFLAGS=-g -O1"
mkdir -p "$build"
if [ ! -f "$build/config.status" ] || [ configure -nt "$build/config.status" ] ||
	[ "$(cat "$build/.configure-args" 2>/dev/null)" != "$configure_args" ]; then
	say "configure (sanitizers) in _build/"
	(cd "$build" && "$top/configure" --enable-sanitizers --prefix="$prefix" \
		CFLAGS="-g -O1") >"$build/configure.out" 2>&1 || {
		tail -n 30 "$build/configure.out" >&2
		die "configure failed (full output: $build/configure.out)"
	}
	printf '%s\n' "$configure_args" >"$build/.configure-args"
fi

# --- build and install ----------------------------------------------------
say "make -j2"
make -C "$build" -j2 || die "build failed"
# The unit-test programs (check_PROGRAMS), built but not run here:
# test/run-tests runs them with the rest.
say "make check TESTS= (builds the unit tests)"
make -C "$build" -j2 check TESTS= >/dev/null || die "building the unit tests failed"
say "make install into $prefix"
rm -rf "$prefix"
make -C "$build" install >/dev/null || die "make install failed"

# --- tests ------------------------------------------------------------------
say "test/run-tests"
export TERN_PREFIX="$prefix"
exec python3 "$top/test/run-tests" "$build" "$@"
