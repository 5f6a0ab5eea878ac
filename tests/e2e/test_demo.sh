#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_demo.sh - `make demo` (scripts/demo.sh) tells its story and leaves
# nothing behind.
#
# Contract: runs `bash scripts/demo.sh` non-interactively (stdin
# /dev/null) with TOPO_ID set to a name of our own, so every namespace,
# pin dir, cgroup, temp dir and process of it can be looked for. Scenarios,
# one "PASS: e2e/demo_<name>" or "FAIL: e2e/demo_<name>: <reason>" each:
#   runs            exit 0, "every check passed", no "error:" line; its time
#                   is printed, not judged (tests check correctness, timings
#                   are make bench's); a hang is killed after DEMO_MAX_SECONDS
#                   (300; the make test-kernels guests, which emulate, 1800)
#   service_added   both services added with 3 backends (IPv4, IPv6)
#   split           300 connections through the VIP reach all 3 backends;
#                   the IPv6 run too, its VIP printed [fd00:96::10]:80
#   canary          the weight change is accepted, then all 3 still answer
#   drain           after the drain 100 new connections reach be1/be2 only;
#                   the 30 held connections (some on be3) all still echo
#   metrics         the scrape shows the service's per-backend flow series
#                   for all 3 backends and its telemetry connection count
#   nothing_left    no namespace, pin dir, cgroup, temp dir or process
#                   named after the demo's TOPO_ID is left
#   keep_term       --keep: while it waits, meshd runs in the node namespace
#                   (the leftover probe sees it all, so the probe can see),
#                   the root namespace's XDP/tc attachments and the cgroup2
#                   root's programs are as before; SIGTERM ends it (143) and
#                   nothing is left
#   usage           an unknown flag exits 2 with the usage, creating nothing;
#                   a TOPO_ID such as ../x is refused (exit 1), creating nothing
# Needs root and a built tree. About 15 s.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=$ROOT/scripts/demo.sh
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
TMP=$(mktemp -d /tmp/sluice-tdemo.XXXXXX)
ID=sldt$$
FAILED=0
BG_PID=

cleanup() {
	if [ -n "$BG_PID" ]; then
		kill -TERM "$BG_PID" 2>/dev/null
		wait "$BG_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "    error: $*"
	[ -s "$TMP/reason" ] || printf '%s\n' "$*" >"$TMP/reason"
	return 1
}

scenario() {
	: >"$TMP/reason"
	if "test_$1"; then
		echo "PASS: e2e/demo_$1"
	else
		echo "FAIL: e2e/demo_$1: $(head -n 1 "$TMP/reason")"
		FAILED=$((FAILED + 1))
	fi
}

# has REGEX WHAT: the demo's output has a line matching the ERE.
has() {
	grep -qE -- "$1" "$TMP/out" || fail "no line matching /$1/ ($2)"
}

# leftovers TOPO_ID: what of that demo run exists, one line each.
leftovers() {
	local id=$1
	ip netns list | awk -v p="$id-" 'index($1, p) == 1 { print "netns " $1 }'
	[ -e "/sys/fs/bpf/$id" ] && echo "pin dir /sys/fs/bpf/$id"
	[ -e "$CGROOT/$id" ] && echo "cgroup $CGROOT/$id"
	compgen -G "/tmp/$id.*" | sed 's/^/temp /'
	compgen -G "/tmp/sluice-$id.*" | sed 's/^/temp /'
	pgrep -af -- "$id" | sed 's/^/process /'
	return 0
}

# Programs the root namespace and the cgroup2 root carry (must not change).
host_attachments() {
	bpftool net show 2>&1
	bpftool cgroup show "$CGROOT" 2>&1
}

# ------------------------------------------------------------- scenarios

# The one full run the output scenarios read.
run_demo() {
	local t0=$SECONDS
	# a hang guard, not a timing check: ~5 s on a quiet machine, > 120 s
	# on 6.1 under make test-kernels' emulation
	TOPO_ID=$ID timeout "${DEMO_MAX_SECONDS:-300}" bash "$DEMO" </dev/null >"$TMP/out" 2>&1
	RC=$?
	ELAPSED=$((SECONDS - t0))
	echo "    demo: exit $RC in ${ELAPSED}s; its output in full on failure"
}

test_runs() {
	local ok=0
	[ "$RC" -ne 124 ] || fail "killed after ${DEMO_MAX_SECONDS:-300} s (a hang)" || ok=1
	[ "$RC" -eq 0 ] || fail "demo exited $RC" || ok=1
	has '^==> Done: every check passed' "final line" || ok=1
	if grep -q 'error:' "$TMP/out"; then
		grep 'error:' "$TMP/out" | head -n 5
		fail "the demo printed error lines" || ok=1
	fi
	[ "$ok" -eq 0 ] || sed 's/^/    | /' "$TMP/out"
	return $ok
}

test_service_added() {
	has '^    \$ meshctl service add 10\.96\.0\.10:80/tcp ' "command shown" &&
		has '^    added service 10\.96\.0\.10:80/tcp with 3 backends$' "IPv4 service" &&
		has '^    added service \[fd00:96::10\]:80/tcp with 3 backends$' "IPv6 service"
}

# The Nth "tcp VIP: K ok" summary line of the output.
summary() {
	grep -E "^    tcp $1: $2 ok, 0 failed" "$TMP/out" | sed -n "${3:-1}p"
}

test_split() {
	local l
	l=$(summary '10\.96\.0\.10:80' 300 1)
	echo "    $l"
	[[ $l =~ backends:\ be1=[0-9]+\ be2=[0-9]+\ be3=[0-9]+$ ]] ||
		fail "300 connections not split over be1, be2, be3: '$l'" || return 1
	l=$(summary '\[fd00:96::10\]:80' 60 1)
	echo "    $l"
	[[ $l =~ backends:\ be1=[0-9]+\ be2=[0-9]+\ be3=[0-9]+$ ]] ||
		fail "IPv6 connections not split over 3 backends, or the VIP not in brackets" ||
		return 1
	has '\[fd00:10::2\]:[0-9]+ +-> \[fd00:96::10\]:80 +answered by be[123]$' "IPv6 --show line"
}

test_canary() {
	local l
	has '^    \$ meshctl backend weight 10\.96\.0\.10:80/tcp 10\.10\.3\.2:8080 2$' "command" &&
		has 'now has weight 2$' "meshctl's answer" || return 1
	l=$(summary '10\.96\.0\.10:80' 300 2)
	echo "    $l"
	[[ $l =~ backends:\ be1=[0-9]+\ be2=[0-9]+\ be3=[0-9]+$ ]] ||
		fail "no 300-connection run after the canary with all 3 backends: '$l'"
}

test_drain() {
	local l
	has '^    \$ meshctl backend drain 10\.96\.0\.10:80/tcp 10\.10\.3\.2:8080$' "command" ||
		return 1
	l=$(summary '10\.96\.0\.10:80' 100 1)
	echo "    $l"
	[[ $l =~ backends:\ be1=[0-9]+\ be2=[0-9]+$ ]] ||
		fail "new connections after the drain not on be1/be2 only: '$l'" || return 1
	l=$(grep -E '^    hold 10\.96\.0\.10:80: ' "$TMP/out")
	echo "    $l"
	[[ $l =~ be3=[1-9][0-9]*\).*after\ the\ change\ 30\ alive,\ 0\ broken$ ]] ||
		fail "held connections (some to be3) did not all survive: '$l'" || return 1
	has '^    10\.10\.3\.2:8080 +3 +0 +0\.0% +draining ' "service get shows be3 draining"
}

test_metrics() {
	local be ok=0 sel='service="10.96.0.10:80/tcp"'
	has '^    \$ curl -s http://127\.0\.0\.1:9465/metrics' "scrape shown" || ok=1
	for be in 10.10.1.2 10.10.2.2 10.10.3.2; do
		grep -qF "    sluice_backend_flows_total{$sel,backend=\"$be:8080\"} " "$TMP/out" ||
			fail "no sluice_backend_flows_total series of backend $be:8080" || ok=1
	done
	grep -E "^    sluice_connections_opened_total\{$sel,direction=\"outbound\"\} [1-9]" \
		"$TMP/out" >/dev/null || fail "no telemetry connection count" || ok=1
	return $ok
}

test_nothing_left() {
	leftovers "$ID" >"$TMP/left"
	[ -s "$TMP/left" ] || return 0
	sed 's/^/    /' "$TMP/left"
	fail "left behind: $(head -n 1 "$TMP/left")"
}

test_keep_term() {
	local id=${ID}k i ok=0 rc
	host_attachments >"$TMP/host.before"
	TOPO_ID=$id bash "$DEMO" --keep </dev/null >"$TMP/keep.out" 2>&1 &
	BG_PID=$!
	for ((i = 0; i < 600; i++)); do
		grep -qs 'Everything is still up' "$TMP/keep.out" && break
		kill -0 "$BG_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q 'Everything is still up' "$TMP/keep.out" || {
		sed 's/^/    | /' "$TMP/keep.out"
		fail "the demo did not reach its --keep wait"
		return 1
	}
	leftovers "$id" >"$TMP/up"
	for i in "netns $id-node" "pin dir" "cgroup" "process .*meshd"; do
		grep -q "^$i" "$TMP/up" || fail "while up, the probe does not see: $i" || ok=1
	done
	host_attachments >"$TMP/host.during"
	cmp -s "$TMP/host.before" "$TMP/host.during" || {
		diff "$TMP/host.before" "$TMP/host.during" | head -n 10 | sed 's/^/    /'
		fail "the root namespace or cgroup2 root gained or lost programs" || ok=1
	}
	kill -TERM "$BG_PID"
	wait "$BG_PID"
	rc=$?
	BG_PID=
	[ "$rc" -eq 143 ] || fail "exit $rc on SIGTERM, want 143" || ok=1
	leftovers "$id" >"$TMP/left"
	if [ -s "$TMP/left" ]; then
		sed 's/^/    /' "$TMP/left"
		fail "left behind after SIGTERM: $(head -n 1 "$TMP/left")" || ok=1
	fi
	return $ok
}

test_usage() {
	local id=${ID}u rc
	TOPO_ID=$id bash "$DEMO" --bogus </dev/null >"$TMP/usage.out" 2>&1
	rc=$?
	[ "$rc" -eq 2 ] || fail "--bogus: exit $rc, want 2" || return 1
	grep -q '^Usage: .*--keep' "$TMP/usage.out" || fail "--bogus: no usage" || return 1
	leftovers "$id" >"$TMP/left"
	[ ! -s "$TMP/left" ] || fail "--bogus left: $(head -n 1 "$TMP/left")" || return 1
	# A TOPO_ID that could escape its directories is refused up front.
	TOPO_ID=../x bash "$DEMO" </dev/null >"$TMP/usage.out" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] && grep -q "TOPO_ID '../x'" "$TMP/usage.out" ||
		fail "TOPO_ID=../x: exit $rc, $(head -n 1 "$TMP/usage.out")" || return 1
	if [ -e "$CGROOT/../x" ] || [ -e /sys/fs/bpf/../x ]; then
		fail "TOPO_ID=../x created a path"
	fi
}

main() {
	local tool s
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL: e2e/demo_setup: needs root"
		exit 1
	fi
	for tool in bpftool curl nsenter pgrep; do
		command -v "$tool" >/dev/null || {
			echo "FAIL: e2e/demo_setup: $tool not installed"
			exit 1
		}
	done
	[ -n "$CGROOT" ] || {
		echo "FAIL: e2e/demo_setup: no cgroup2 mount"
		exit 1
	}
	run_demo
	for s in runs service_added split canary drain metrics nothing_left keep_term usage; do
		scenario "$s"
	done
	[ "$FAILED" -eq 0 ]
}

main "$@"
