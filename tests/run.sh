#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - run every test suite and print one verdict. `make test` builds
# first, then calls this.
#
# Contract: runs each build/tests/unit/test_* binary and (as root)
# build/tests/datapath/datapath_test and each tests/e2e/test_*.sh, showing
# their output. Counts "PASS:", "FAIL:" and "SKIP:" lines across all of them;
# a suite that is missing, crashes, times out or exits non-zero without
# printing a FAIL line counts as one failure named after the suite. Without
# root only the unit tests that need no privileges run: the others, the
# datapath suite and the e2e suites are listed as skipped, never as passed.
# Ends with exactly "N passed, M failed, K skipped" and exits non-zero when
# M > 0 or nothing ran.
#
# SLUICE_BUILD: where the binaries are (default build/; `make` sets it, e.g.
# build/san with SAN=1) - the e2e suites get it too. SLUICE_SUITES=unit runs
# the unit suites only. SLUICE_SAN=1 (sanitized binaries) runs the unit and
# the meshd e2e suites and lists the BPF-bound rest as skipped.
# SLUICE_TEST_JOBS (default 2, the cores CI has): how many suites run at
# once - the datapath suite (first, the longest), the e2e suites and the
# unit binaries share one pool; each suite's output is shown whole, in the
# order the suites end, with its own time. An e2e suite whose header has a
# line "# Serial: <reason>" (it measures rates, deadlines or memory, or
# needs the machine alone) runs after the pool has drained, with nothing
# beside it. 1 runs one suite at a time, as before. Suites that share the
# machine must not share anything else: every namespace, link, cgroup, pin
# dir and temp file carries the suite's pid (scripts/lib/topology.sh).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
export SLUICE_BUILD=$BUILD
SUITES=${SLUICE_SUITES:-all}
SAN=${SLUICE_SAN:-0}
# Sanitizer reports end the suite with a FAIL-worthy status and say where.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Generous bounds: a hung suite must fail, not stall CI.
BIN_TIMEOUT=${SLUICE_TEST_TIMEOUT:-300}
# The datapath suite is one binary of ~190 cases, 83-87 s on an idle machine
# since it verifies each config's programs once (dp_cache.c; 472 s when
# every case loaded afresh): a bound for a hang, not for a slow machine.
DP_TIMEOUT=${SLUICE_DATAPATH_TIMEOUT:-1800}
E2E_TIMEOUT=${SLUICE_E2E_TIMEOUT:-600}
# sanitized meshd runs 2-3x slower (test_meshd.sh's 300k-backend case most)
[ "${SLUICE_SAN:-0}" = 1 ] && E2E_TIMEOUT=${SLUICE_E2E_TIMEOUT:-1800}

JOBS=${SLUICE_TEST_JOBS:-2}
case $JOBS in
'' | *[!0-9]* | 0)
	echo "tests/run.sh: SLUICE_TEST_JOBS=$JOBS: expected a number of suites >= 1" >&2
	exit 2
	;;
esac

passed=0
failed=0
skipped=0
failures=()
TMPD=$(mktemp -d /tmp/sluice-test.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT

fail_suite() {
	echo "FAIL: $1 ($2)"
	failed=$((failed + 1))
	failures+=("$1 ($2)")
}

# account NAME TIMEOUT LOGFILE RC SECONDS: count an ended suite's lines and
# judge its exit status.
account() {
	local name=$1 limit=$2 log=$3 rc=$4 secs=$5 p f s
	p=$(grep -c '^PASS:' "$log")
	f=$(grep -c '^FAIL:' "$log")
	s=$(grep -c '^SKIP:' "$log")
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	while IFS= read -r line; do
		failures+=("${line#FAIL: }")
	done < <(grep '^FAIL:' "$log")
	echo "--- $name: $p passed, $f failed, $s skipped, exit $rc, ${secs}s"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		fail_suite "$name" "timed out after ${limit}s"
	elif [ "$rc" -gt 128 ]; then
		fail_suite "$name" "killed by signal $((rc - 128))"
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		fail_suite "$name" "exit status $rc without a FAIL line"
	elif [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
		fail_suite "$name" "ran no test"
	fi
}

# The pool: pool_start NAME TIMEOUT CMD... starts a suite in the
# background once fewer than $JOBS run (its output to $TMPD/ID.out, then
# "rc seconds" to $TMPD/ID.rc); pool_reap waits for one to end and shows
# every ended suite whole. Background commands of a script ignore SIGINT,
# so an interrupted run stops the running suites itself (pool_stop).
pool_pids=()
pool_names=()
pool_limits=()
pool_n=0

pool_start() {
	local name=$1 limit=$2 id=$pool_n
	shift 2
	while [ ${#pool_pids[@]} -ge "$JOBS" ]; do
		pool_reap
	done
	pool_n=$((pool_n + 1))
	(
		t0=$EPOCHSECONDS
		timeout --kill-after=30 "$limit" "$@" >"$TMPD/$id.out" 2>&1 &
		echo $! >"$TMPD/$id.pid"
		wait $!
		echo "$? $((EPOCHSECONDS - t0))" >"$TMPD/$id.rc.new"
		mv "$TMPD/$id.rc.new" "$TMPD/$id.rc" # whole when seen
	) 2>>"$TMPD/$id.out" &
	pool_pids[id]=$!
	pool_names[id]=$name
	pool_limits[id]=$limit
}

pool_reap() {
	local id rc secs
	wait -n "${pool_pids[@]}" 2>/dev/null
	for id in "${!pool_pids[@]}"; do
		if [ ! -e "$TMPD/$id.rc" ] && kill -0 "${pool_pids[id]}" 2>/dev/null; then
			continue
		fi
		wait "${pool_pids[id]}" 2>/dev/null
		# no status file: the wrapper itself was killed
		read -r rc secs 2>/dev/null <"$TMPD/$id.rc" || { rc=255 secs='?'; }
		echo "=== ${pool_names[id]}"
		cat "$TMPD/$id.out"
		account "${pool_names[id]}" "${pool_limits[id]}" "$TMPD/$id.out" "$rc" "$secs"
		unset 'pool_pids[id]'
	done
}

pool_wait() {
	while [ ${#pool_pids[@]} -gt 0 ]; do
		pool_reap
	done
}

pool_stop() {
	local id
	for id in "${!pool_pids[@]}"; do
		[ -e "$TMPD/$id.pid" ] && kill -TERM "$(cat "$TMPD/$id.pid")" 2>/dev/null
	done
	wait
	exit 130
}

skip_suite() {
	echo "SKIP: $1 ($2)"
	skipped=$((skipped + 1))
}

root=1
if [ "$(id -u)" -ne 0 ]; then
	root=0
	echo "tests/run.sh: not root: unit tests only; tests that load BPF are skipped" >&2
# Packet tests and e2e pin maps: bpffs must be there.
elif ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf || echo "tests/run.sh: cannot mount bpffs on /sys/fs/bpf" >&2
fi

shopt -s nullglob
t0=$SECONDS

if [ "$SUITES" = unit ]; then
	dp_srcs=()
	e2e_scripts=()
else
	dp_srcs=("$ROOT"/tests/datapath/*.c)
	e2e_scripts=("$ROOT"/tests/e2e/test_*.sh)
fi
trap pool_stop INT TERM
# The datapath suite first: it is the longest of the pooled suites.
if [ ${#dp_srcs[@]} -gt 0 ] && [ "$SAN" = 1 ]; then
	skip_suite datapath "not run with SAN=1: BPF programs, no userspace to check"
elif [ ${#dp_srcs[@]} -gt 0 ] && [ $root -eq 0 ]; then
	skip_suite datapath "needs root: BPF_PROG_TEST_RUN"
elif [ ${#dp_srcs[@]} -gt 0 ]; then
	if [ -x "$BUILD/tests/datapath/datapath_test" ]; then
		pool_start datapath "$DP_TIMEOUT" "$BUILD/tests/datapath/datapath_test"
	else
		fail_suite datapath "$BUILD/tests/datapath/datapath_test not built"
	fi
fi

# e2e_admit SCRIPT: 0 when the suite is to run here; lists it as skipped
# otherwise (SAN=1 runs the meshd suites only; without root only those
# whose header says "# Runs without root").
e2e_admit() {
	local name
	name=$(basename "$1" .sh)
	if [ "$SAN" = 1 ] && [[ $name != test_meshd* ]] && [[ $name != test_meshctl* ]]; then
		skip_suite "e2e/$name" "not run with SAN=1: meshd suites only"
	elif [ $root -eq 0 ] && ! grep -q '^# Runs without root' "$1"; then
		skip_suite "e2e/$name" "needs root: network namespaces"
	else
		return 0
	fi
	return 1
}

# The e2e suites that may share the machine next, while the datapath suite
# runs; the unit binaries (short) fill the gaps last.
serial=()
for script in "${e2e_scripts[@]}"; do
	e2e_admit "$script" || continue
	if grep -q '^# Serial:' "$script"; then
		serial+=("$script")
	else
		pool_start "e2e/$(basename "$script" .sh)" "$E2E_TIMEOUT" "$script"
	fi
done

for src in "$ROOT"/tests/unit/test_*.c; do
	name=$(basename "$src" .c)
	bin=$BUILD/tests/unit/$name
	if [ -x "$bin" ]; then
		pool_start "unit/$name" "$BIN_TIMEOUT" "$bin"
	else
		fail_suite "unit/$name" "$bin not built"
	fi
done
pool_wait

# The serial suites, each alone on the machine (as far as this run goes).
for script in "${serial[@]}"; do
	pool_start "e2e/$(basename "$script" .sh)" "$E2E_TIMEOUT" "$script"
	pool_wait
done
trap - INT TERM

echo
echo "=== summary ($((SECONDS - t0))s)"
for f in "${failures[@]}"; do
	echo "  failed: $f"
done
[ $((passed + failed)) -gt 0 ] || echo "  no test ran (nothing built? run make)"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ $((passed + failed)) -gt 0 ]
