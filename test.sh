#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Builds tern with AddressSanitizer and UBSan in _build/, installs it into
# _build/inst, builds the libFuzzer targets with clang in _build/fuzz, and
# runs every test (test/run-tests): the C unit tests, the banned-function
# check, each fuzz target for a few seconds and the integration tests
# against real instances.
# On Debian/Ubuntu, as root, it first installs whatever build and test
# dependencies are missing. The last line is "N passed, N failed, N skipped";
# the exit code is non-zero if anything failed.
#
#   ./test.sh                      everything
#   ./test.sh -k kill              only integration tests matching "kill"
#   ./test.sh test_foundation      only that integration module
#
# Arguments are passed to test/run-tests; TERN_KEEP=1 keeps test instances,
# TERN_TEST_JOBS=1 runs the integration modules one at a time (default: CPUs + 1, at least 3).
set -eu

cd "$(dirname "$0")"
top=$(pwd)
build="$top/_build"
prefix="$build/inst"

build_deps="build-essential autoconf automake pkg-config libssl-dev
	libc-ares-dev libdb-dev libpcre2-dev libcrypt-dev"
# clang and its libFuzzer runtime (libclang_rt.fuzzer) for test/fuzz.
fuzz_deps="clang libclang-rt-14-dev"
# dnsmasq-base: the DNS server lib/dns/dns_test asks (skipped without it).
# libmailtools-perl: git send-email's Mail::Address, only recommended by
# git-email (and recommendations are not installed).
test_deps="swaks libnet-ssleay-perl libio-socket-ssl-perl python3 procps
	strace curl dnsmasq-base git git-email libmailtools-perl fetchmail isync
	mutt"
# Dovecot: the POP3/IMAP server whose maildir files tern must read and
# write alike (dovecot-uidlist), and the bench's peer; never the
# system's mail service (stopped below if the package started it).
dovecot_deps="dovecot-core dovecot-pop3d dovecot-imapd"

prog=test.sh
. "$top/scripts/lib.sh"

# postfix: smtp-sink, the foreign SMTP server of test_outbound, as
# "No configuration" (no system mail set-up); a default instance the
# package may have started is stopped, so nothing else holds port 25.
if [ "$(id -u)" -eq 0 ] && command -v debconf-set-selections >/dev/null &&
	! dpkg-query -W -f='${Status}\n' postfix 2>/dev/null |
	grep -q '^install ok installed$'; then
	echo "postfix postfix/main_mailer_type select No configuration" |
		debconf-set-selections
fi
install_missing $build_deps $fuzz_deps $test_deps $dovecot_deps postfix
# doveadm stop reads /etc/dovecot's pid file: only the system instance
# stops, never a private one (the bench's) that another run started.
if command -v doveadm >/dev/null && doveadm stop >/dev/null 2>&1; then
	say "stopped the system dovecot (tests need its ports free)"
fi
if [ -f /etc/postfix/main.cf ] && postfix status >/dev/null 2>&1; then
	say "stopping the system postfix instance (tests need its ports free)"
	postfix stop >/dev/null 2>&1 || true
fi
ensure_autotools
configure_into "$build" --enable-sanitizers --prefix="$prefix" "CFLAGS=-g -O1"

# --- build and install ----------------------------------------------------
say "make -j2"
make -C "$build" -j2 || die "build failed"
# The unit-test programs (check_PROGRAMS), built but not run here:
# test/run-tests runs them with the rest.
say "make check TESTS= (builds the unit tests)"
make -C "$build" -j2 check TESTS= >/dev/null || die "building the unit tests failed"
# terndrop and ternqueue are installed setgid terndrop when root installs
# and the group exists (tools/Makefile.am): make it first, so the tests
# run the programs as users get them. The harness's lock keeps this
# from racing its own useradd/groupadd.
if [ "$(id -u)" -eq 0 ] && ! getent group terndrop >/dev/null; then
	say "groupadd -r terndrop"
	flock /run/tern-test-accounts.lock groupadd -r terndrop ||
		die "groupadd terndrop failed"
fi
say "make install into $prefix"
rm -rf "$prefix"
make -C "$build" install >/dev/null || die "make install failed"

# --- fuzz targets -----------------------------------------------------------
# clang instruments every object they link (coverage, ASan, UBSan), and
# gcc's sanitizer objects do not mix with clang's runtime: a build of
# their own, of just the libraries they need. run-tests makes them
# ($TERN_FUZZ_MAKE) beside the unit and integration tests, which spend
# most of their time waiting, and then runs them.
fuzz_build="$build/fuzz"
configure_into "$fuzz_build" CC=clang --enable-fuzzers "CFLAGS=-g -O1"
export TERN_FUZZ_MAKE=1

# --- tests ------------------------------------------------------------------
say "test/run-tests"
export TERN_PREFIX="$prefix"
exec python3 "$top/test/run-tests" "$build" "$@"
