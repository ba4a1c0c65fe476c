#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs libFuzzer targets one after another, each for a given time (the
# long runs; test/run-tests runs them for seconds). Each target reads its
# seeds from the source tree (corpus/TARGET, never written) and grows a
# corpus of its own in BUILD_DIR/grown/TARGET, kept between runs; a crash,
# leak or timeout leaves its input in BUILD_DIR/artifacts/. Prints one
# summary line per target; exits 1 if any failed.
#
#   run-fuzzers.sh [-s SECONDS] [-d BUILD_DIR] [-S SRC_DIR] [-o "ONLY ..."]
#                  TARGET...
#
# (What "make -C _build/fuzz fuzz FUZZ_SECONDS=600" runs.)
set -eu

seconds=60
build=$(pwd)
src=$(cd "$(dirname "$0")" && pwd)
only=""
while getopts s:d:S:o: opt; do
	case $opt in
	s) seconds=$OPTARG ;;
	d) build=$OPTARG ;;
	S) src=$OPTARG ;;
	o) only=$OPTARG ;;
	*) sed -n '3,15p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
targets=${only:-$*}
[ -n "$targets" ] || { echo "run-fuzzers.sh: no targets" >&2; exit 2; }

failed=""
summary=""
for t in $targets; do
	bin=$build/$t
	if [ ! -x "$bin" ]; then
		echo "run-fuzzers.sh: $bin is not built" >&2
		failed="$failed $t"
		continue
	fi
	grown=$build/grown/$t
	artifacts=$build/artifacts
	mkdir -p "$grown" "$artifacts"
	# The options, as the positional parameters (targets are in $targets).
	set -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$artifacts/$t-"
	[ ! -f "$src/dict/$t.dict" ] || set -- "$@" -dict="$src/dict/$t.dict"
	echo "==> $t for ${seconds}s: corpus $grown, seeds $src/corpus/$t"
	if "$bin" "$@" "$grown" "$src/corpus/$t" >"$build/$t.log" 2>&1; then
		result="ok"
	else
		result="FAILED (log $build/$t.log, input in $artifacts/)"
		failed="$failed $t"
		tail -n 40 "$build/$t.log"
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
		"$build/$t.log" | tail -n 1)
	summary="$summary$t: $result, ${execs:-?} runs, $(ls "$grown" |
		wc -l) inputs in its corpus
"
done
printf '%s' "$summary"
[ -z "$failed" ] || { echo "failed:$failed" >&2; exit 1; }
