#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# suites.sh - run the kernel-matrix suites on the running kernel (the host's
# or a guest's), as root.
#
# Contract: suites.sh OUT SUITES runs each suite named in SUITES (comma
# separated; see below) and writes OUT/<suite>.log with its output, in which
# every result is an ordinary "PASS:", "FAIL:" or "SKIP:" line (a binary
# that times out, crashes or exits non-zero without a FAIL line gets a FAIL
# line naming it, as in tests/run.sh), then OUT/<suite>.done. Output is also
# shown as it comes. Suites:
#   objects   every build/*.bpf.o through `bpftool prog loadall` (the
#             verifier of the running kernel): one line per program, and a
#             FAIL with the loader's last words for an object refused whole;
#             and stack/<object>: its programs' deepest call chain as 6.1
#             counts it (tests/tools/stackdepth), a FAIL past 512 on any
#             kernel (the figures follow the line)
#   unit      every build/tests/unit/test_* binary (KERNEL_UNIT: a glob
#             to run fewer, e.g. 'test_sock*')
#   datapath  build/tests/datapath/datapath_test (BPF_PROG_TEST_RUN cases;
#             KERNEL_DATAPATH: its name filter, e.g. snat)
#   e2e-lb    tests/e2e/test_lb.sh (namespaces, veths, real sockets)
#   sock      tests/e2e/test_sock.sh (socket LB through cgroup hooks)
#   meshd     tests/e2e/test_demo.sh: meshd with its default options and
#             meshctl, services, real traffic, a drain, a metrics scrape
#             with telemetry (its 60 s bound widened: the guest emulates)
#   telemetry tests/e2e/test_telemetry.sh (sockops, ring buffer, restarts)
#   kfeatures build/tests/unit/test_kfeatures (the feature probes against
#             the running kernel; also part of unit)
#   all       every suite above
# Suites run KERNEL_JOBS at a time (default: the CPUs, at most 2), the
# longest first.
# SLUICE_BUILD (default build/), KERNEL_BIN_TIMEOUT (per binary, 1200 s;
# KERNEL_DATAPATH_TIMEOUT for the datapath suite, 3600 s) and
# KERNEL_E2E_TIMEOUT (per script, 1800 s) apply; a slow emulated kernel is
# why the bounds are generous.
set -u

out=${1:?usage: suites.sh OUT SUITES}
suites=${2:?usage: suites.sh OUT SUITES}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
export SLUICE_BUILD=$BUILD
BIN_TIMEOUT=${KERNEL_BIN_TIMEOUT:-1200}
# the whole datapath suite is one binary: 161 cases took > 600 s on 6.12
# under TCG at load ~10 (68 done)
DP_TIMEOUT=${KERNEL_DATAPATH_TIMEOUT:-3600}
E2E_TIMEOUT=${KERNEL_E2E_TIMEOUT:-1800}
mkdir -p "$out"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# bounded NAME LIMIT CMD...: run CMD, and turn a timeout, a crash or a
# silent non-zero exit into a FAIL line naming NAME.
bounded() {
	local name=$1 limit=$2 rc tmp t0=$SECONDS
	shift 2
	tmp=$(mktemp)
	timeout --kill-after=30 "$limit" "$@" 2>&1 | tee "$tmp"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "FAIL: $name (timed out after ${limit}s)"
	elif [ "$rc" -gt 128 ]; then
		echo "FAIL: $name (killed by signal $((rc - 128)))"
	elif [ "$rc" -ne 0 ] && ! grep -q '^FAIL:' "$tmp"; then
		echo "FAIL: $name (exit status $rc without a FAIL line)"
	elif ! grep -qE '^(PASS|FAIL|SKIP):' "$tmp"; then
		echo "FAIL: $name (ran no test)"
	fi
	echo "--- $name: exit $rc, $((SECONDS - t0))s"
	rm -f "$tmp"
}

# load_object OBJ: every program of OBJ through the running kernel's
# verifier. libbpf loads an object whole, so one refused program (or a
# missing kfunc) refuses them all: that is what users would hit too.
load_object() {
	local obj=$1 name pin log rc p insns
	name=$(basename "$obj" .bpf.o)
	pin=/sys/fs/bpf/sluice-kernels-$$-$name
	log=$(mktemp)
	timeout 600 bpftool prog loadall "$obj" "$pin" >"$log" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL: objects/$name (bpftool prog loadall exit $rc)"
		# the verifier's verdict is at the end of its log
		grep -v '^$' "$log" | tail -n 25 | sed 's/^/    /'
	fi
	for p in "$pin"/*; do
		[ -e "$p" ] || continue
		# this bpftool does not show verified_insns: give the size
		insns=$(bpftool prog show pinned "$p" 2>/dev/null |
			sed -n 's/.*xlated \([0-9]*\)B.*/\1/p')
		echo "PASS: objects/$name/$(basename "$p") ($((${insns:-0} / 8)) instructions loaded)"
	done
	[ "$rc" -eq 0 ] && [ -z "$(ls -A "$pin" 2>/dev/null)" ] &&
		echo "FAIL: objects/$name (loaded, but no program pinned)"
	rm -rf "$pin" "$log"
}

# stack_object OBJ: the frames of OBJ's programs as this kernel's verifier
# reports them, and their deepest call chain as 6.1 counts it (each frame
# rounded up to 32, at most 512; tests/tools/stackdepth): a FAIL on any
# kernel when a chain would be refused on 6.1.
stack_object() {
	local obj=$1 name tool=$BUILD/tests/tools/stackdepth out
	name=$(basename "$obj" .bpf.o)
	[ -x "$tool" ] || { echo "FAIL: stack/$name ($tool not built)"; return; }
	if out=$(timeout 600 "$tool" "$obj" 2>&1); then
		echo "PASS: stack/$name"
	else
		echo "FAIL: stack/$name (a call chain over 512 bytes as 6.1 counts, or not loaded)"
	fi
	sed 's/^/    /' <<<"$out"
}

suite_objects() {
	local obj n=0
	for obj in "$BUILD"/*.bpf.o; do
		[ -e "$obj" ] || continue
		load_object "$obj"
		stack_object "$obj"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || echo "FAIL: objects (no $BUILD/*.bpf.o: run make)"
}

suite_unit() {
	local bin n=0
	for bin in "$BUILD"/tests/unit/${KERNEL_UNIT:-test_*}; do
		[ -x "$bin" ] || continue
		bounded "unit/$(basename "$bin")" "$BIN_TIMEOUT" "$bin"
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || echo "FAIL: unit (no $BUILD/tests/unit/test_*: run make)"
}

suite_datapath() {
	local bin=$BUILD/tests/datapath/datapath_test
	if [ -x "$bin" ]; then
		# shellcheck disable=SC2086 # an optional name filter
		bounded datapath "$DP_TIMEOUT" "$bin" ${KERNEL_DATAPATH:-}
	else
		echo "FAIL: datapath ($bin not built)"
	fi
}

suite_script() {
	bounded "$1" "$E2E_TIMEOUT" bash "$ROOT/tests/e2e/$2"
}

# run_suite NAME: one suite, its output in $out/NAME.log (and shown), its
# seconds in $out/NAME.done.
run_suite() {
	local s=$1 t0=$SECONDS
	echo "=== suite $s on $(uname -r)"
	case $s in
	objects) suite_objects ;;
	unit) suite_unit ;;
	datapath) suite_datapath ;;
	e2e-lb) suite_script e2e/test_lb test_lb.sh ;;
	sock) suite_script e2e/test_sock test_sock.sh ;;
	meshd) DEMO_MAX_SECONDS=1800 suite_script e2e/test_demo test_demo.sh ;;
	telemetry) suite_script e2e/test_telemetry test_telemetry.sh ;;
	kfeatures) KERNEL_UNIT=test_kfeatures suite_unit ;;
	*) echo "FAIL: $s (unknown suite; known: $ALL)" ;;
	esac 2>&1 | tee "$out/$s.log"
	echo "$((SECONDS - t0))" >"$out/$s.done"
}

ALL="objects kfeatures unit datapath e2e-lb sock meshd telemetry"
[ "$suites" = all ] && suites=${ALL// /,}
IFS=, read -r -a list <<<"$suites"
# The pool: KERNEL_JOBS suites at a time (default: this kernel's CPUs, at
# most 2), the longest first (under TCG: unit and datapath ~15-20 min each
# on 6.1, the e2e suites 5-11, objects 1-2), so the lanes end together.
# Every suite here is one that tests/run.sh also runs beside others (none
# carries "# Serial:"). A suite's lines may interleave with the other
# lane's on the console; its log file is its own.
JOBS=${KERNEL_JOBS:-$(nproc)}
[ "$JOBS" -gt 2 ] && JOBS=2
order="unit datapath telemetry e2e-lb sock meshd objects kfeatures"
sorted=()
for s in $order; do
	for x in "${list[@]}"; do [ "$x" = "$s" ] && sorted+=("$s"); done
done
for x in "${list[@]}"; do
	case " $order " in *" $x "*) ;; *) sorted+=("$x") ;; esac
done
for s in "${sorted[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
	run_suite "$s" &
done
wait
