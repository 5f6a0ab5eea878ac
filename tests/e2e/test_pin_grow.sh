#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_pin_grow.sh - an upgrade keeps counters pinned by an older agent.
#
# Contract: meshd creates its pins; the drops array is then replaced by
# one of fewer entries (what an agent of a release with fewer drop
# reasons left) holding a known count; a restarted meshd loads (libbpf
# alone refuses the smaller pin), the pinned array has the new size and the
# old count survives. Its own pin dir, state and socket, removed on exit.
# Prints one PASS:/FAIL: line.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
TMP=$(mktemp -d /tmp/sluice-pingrow.XXXXXX)
PIN=/sys/fs/bpf/sluice-pingrow-$$
cleanup() {
	[ -d "$PIN" ] && "$BUILD/meshd" --cleanup --bpffs "$PIN" >/dev/null 2>&1
	rm -rf "$PIN" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: e2e/pin_grow/upgrade (needs root)"
	exit 0
fi
grep -q " /sys/fs/bpf bpf " /proc/mounts || mount -t bpf bpf /sys/fs/bpf

run_meshd() {
	# meshd runs until SIGTERM; 2 s is ample to load and pin
	timeout 2 "$BUILD/meshd" --bpffs "$PIN" --state "$TMP/state.json" \
		--state-missing empty --socket "$TMP/meshd.sock" --metrics off \
		--kubernetes off --socket-lb off --redirect off >"$TMP/meshd.log" 2>&1
	[ $? = 124 ] # still running when the timeout hit: it loaded
}

test_upgrade() {
	local want entries
	run_meshd || { echo "    first start failed: $(tail -n 2 "$TMP/meshd.log")"; return 1; }
	want=$(bpftool -j map show pinned "$PIN/drops" | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["max_entries"])')
	rm "$PIN/drops"
	bpftool map create "$PIN/drops" type percpu_array key 4 value 8 \
		entries $((want - 3)) name drops || return 1
	bpftool map update pinned "$PIN/drops" key 3 0 0 0 value 7 0 0 0 0 0 0 0 || return 1
	run_meshd || { echo "    restart over the smaller pin failed: $(grep error "$TMP/meshd.log")"; return 1; }
	entries=$(bpftool -j map show pinned "$PIN/drops" | python3 -c \
		'import json,sys; print(json.load(sys.stdin)["max_entries"])')
	[ "$entries" = "$want" ] || { echo "    drops has $entries entries, want $want"; return 1; }
	bpftool -j map lookup pinned "$PIN/drops" key 3 0 0 0 | python3 -c '
import json, sys
v = json.load(sys.stdin)
vals = v.get("values") or v.get("formatted", {}).get("values")
tot = sum(int(x["value"][0], 16) if isinstance(x["value"], list) else int(x["value"]) for x in vals)
sys.exit(0 if tot == 7 * len(vals) else 1)' ||
		{ echo "    the old count was not copied"; return 1; }
	ls "$PIN" | grep -q _grow && { echo "    a temporary pin was left"; return 1; }
	return 0
}

if test_upgrade; then echo "PASS: e2e/pin_grow/upgrade"; else echo "FAIL: e2e/pin_grow/upgrade"; exit 1; fi
