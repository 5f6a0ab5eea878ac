#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# meshctl_scale.sh - the operator side at N services x 10 backends (#16):
# `meshctl apply -f` of a JSON file (peak RSS of meshctl, wall time), from
# empty and again with 1% of the services changed (which also lists
# meshd's services for the diff), then `meshctl status` (wall time per
# call and meshd's CPU time per call, median of S calls).
# meshd runs in a network namespace of its own (a veth pair inside it,
# telemetry, socket LB, redirect and metrics off) with its own pin dir,
# state file and socket, all removed on exit, failure or signal included.
#
# Usage: meshctl_scale.sh [-n SERVICES] [-r ROUNDS] [-s STATUS_CALLS] [BUILD_DIR...]
#        defaults: -n 10000 -r 1 -s 5, BUILD_DIR build   (root; `make`)
# With several build dirs (each holding meshd and meshctl, e.g. a copy of
# main's and this tree's), each round runs them in turn from empty: a
# same-run baseline. Figures are noisy on a shared machine: the load
# average is printed with each line.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=10000
R=1
S=5
while getopts "n:r:s:" o; do
	case $o in
	n) N=$OPTARG ;;
	r) R=$OPTARG ;;
	s) S=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
BUILDS=("$@")
[ ${#BUILDS[@]} -gt 0 ] || BUILDS=("$ROOT/build")
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt install time)"; exit 1; }

ID=mctlscale$$
NS=$ID
PIN=/sys/fs/bpf/$ID
WORK=$(mktemp -d "/tmp/$ID.XXXXXX") || exit 1
SOCK=$WORK/s
STATE=$WORK/state.json
LOG=$WORK/log
P=

stop() {
	[ -n "$P" ] && kill -TERM "$P" 2>/dev/null && wait "$P" 2>/dev/null
	P=
}
cleanup() {
	stop
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() {
	: >"$LOG"
	nsenter --net="/var/run/netns/$NS" "$1/meshd" --interfaces mc0 --bpffs "$PIN" --state "$STATE" \
		--socket "$SOCK" --telemetry off --socket-lb off --redirect off --metrics off \
		>>"$LOG" 2>&1 &
	P=$!
	for _ in $(seq 60000); do
		grep -q 'meshd ready' "$LOG" && return 0
		kill -0 "$P" 2>/dev/null || { echo "meshd died:"; tail -5 "$LOG"; return 1; }
		sleep 0.01
	done
	return 1
}

load() { cut -d' ' -f1 /proc/loadavg; }
# meshd's CPU time (user + system) in clock ticks
cpu() { awk '{ print $14 + $15 }' "/proc/$P/stat"; }

# apply B FILE: "maxrss MB, wall s"
apply() {
	local t0=$EPOCHREALTIME
	/usr/bin/time -f '%M' -o "$WORK/time" "$1/meshctl" -s "$SOCK" --timeout 900000 \
		apply -f "$2" >"$WORK/out" 2>&1 || { echo "apply failed: $(tail -3 "$WORK/out")"; exit 1; }
	printf 'meshctl peak RSS %.1f MB, %.2f s' "$(echo "$(tail -1 "$WORK/time") / 1024" | bc -l)" \
		"$(echo "$EPOCHREALTIME - $t0" | bc)"
}

# status B: median wall ms and meshd CPU ms per call over S calls
status() {
	local walls=() cpus=() t0 c0 tck
	tck=$(getconf CLK_TCK)
	for ((i = 0; i < S; i++)); do
		c0=$(cpu)
		t0=$EPOCHREALTIME
		"$1/meshctl" -s "$SOCK" --timeout 900000 status >/dev/null || { echo "status failed"; exit 1; }
		walls+=("$(echo "($EPOCHREALTIME - $t0) * 1000" | bc)")
		cpus+=("$(echo "($(cpu) - $c0) * 1000 / $tck" | bc)")
	done
	printf 'status median %.0f ms wall, meshd CPU median %s ms/call (%s calls; CPU per call: %s)' \
		"$(printf '%s\n' "${walls[@]}" | sort -n | sed -n "$(((S + 1) / 2))p")" \
		"$(printf '%s\n' "${cpus[@]}" | sort -n | sed -n "$(((S + 1) / 2))p")" "$S" "${cpus[*]}"
}

ip netns add "$NS" || exit 1
ip -n "$NS" link add mc0 type veth peer name mc1
ip -n "$NS" link set mc0 up
ip -n "$NS" link set mc1 up
python3 - "$N" "$WORK/svcs.json" "$WORK/changed.json" <<-'EOF'
	import json, sys
	n = int(sys.argv[1])
	svcs = [{"vip": "10.%d.%d.%d" % (96 + i // 65536, (i // 256) % 256, i % 256),
	         "port": 80, "protocol": "tcp",
	         "backends": [{"address": "10.200.%d.%d" % ((i * 10 + j) // 250 % 250,
	                                                   (i * 10 + j) % 250 + 1),
	                       "port": 8080, "weight": 1} for j in range(10)]}
	        for i in range(n)]
	json.dump({"services": svcs}, open(sys.argv[2], "w"))
	for s in svcs[::100]:
	    s["backends"][0]["weight"] = 5
	json.dump({"services": svcs}, open(sys.argv[3], "w"))
EOF

echo "# $N services x 10 ($(stat -c %s "$WORK/svcs.json") bytes of JSON), $R round(s), load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= R; r++)); do
	for b in "${BUILDS[@]}"; do
		rm -rf "$PIN" "$STATE"
		start "$b" || exit 1
		echo "$b round $r: apply from empty: $(apply "$b" "$WORK/svcs.json"), load $(load)"
		echo "$b round $r: apply 1% changed: $(apply "$b" "$WORK/changed.json"), load $(load)"
		grep -q "^~ " "$WORK/out" || { echo "no update in the diff"; exit 1; }
		echo "$b round $r: $(status "$b"), load $(load)"
		stop
	done
done
