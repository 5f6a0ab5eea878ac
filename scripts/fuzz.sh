#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fuzz.sh - run every libFuzzer target for a while (`make fuzz`).
#
# Usage: scripts/fuzz.sh FUZZDIR SECONDS TARGET...
#
# Contract: runs FUZZDIR/tests/fuzz/fuzz_TARGET (FUZZDIR: build/fuzz) for
# SECONDS each, one after the other, starting from tests/fuzz/corpus/TARGET/
# (the seeds, never written to) and FUZZDIR/corpus/TARGET/ (what earlier
# runs found; kept between runs). Logs go to FUZZDIR/logs/. An
# input that crashes, leaks, trips a sanitizer or takes over 10 s is copied
# into tests/fuzz/corpus/TARGET/ - commit it with the fix, test_fuzz_replay
# then replays it in every `make test`. Prints one line per target with
# executions and coverage; exits non-zero if any target found something.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$1
SECONDS_EACH=$2
shift 2
found=0
summary=()

for t in "$@"; do
	bin=$WORK/tests/fuzz/fuzz_$t
	seeds=$ROOT/tests/fuzz/corpus/$t
	corpus=$WORK/corpus/$t
	art=$WORK/artifacts/$t
	log=$WORK/logs/$t.log
	mkdir -p "$corpus" "$art" "$(dirname "$log")"
	echo "=== fuzz_$t for ${SECONDS_EACH}s (log: $log)"
	# -timeout: a slow input is a finding too (quadratic parsing was one)
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" "$corpus" "$seeds" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
	files=$(find "$corpus" -type f | wc -l)
	line="fuzz_$t: ${execs:-?} execs, ${cov:-cov: ?}, corpus $files files, exit $rc"
	new=()
	for a in "$art"/*; do
		[ -f "$a" ] || continue
		cp "$a" "$seeds/" && new+=("tests/fuzz/corpus/$t/$(basename "$a")")
		rm -f "$a"
	done
	if [ $rc -ne 0 ] || [ ${#new[@]} -gt 0 ]; then
		found=1
		line="$line; FOUND: ${new[*]:-see the log}"
		tail -40 "$log"
	fi
	echo "$line"
	summary+=("$line")
done

echo
echo "=== fuzz summary"
printf '  %s\n' "${summary[@]}"
[ $found -eq 0 ] || echo "fuzz.sh: fix what was found; the inputs are in tests/fuzz/corpus/ for replay" >&2
exit $found
