#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# meshd_scale.sh - meshd's memory and restart time at N services x 10
# backends (#16): peak RSS (VmHWM) while `meshctl apply -f` programs them
# from empty, then restarts over the same pins and state file, each with
# its time to "meshd ready", VmHWM, and the time between the start log's
# milestones:
#   state+prepare  start -> "metrics off": the state file read and checked
#   prog load      -> "datapath loaded": programs through the verifier,
#                  maps reused from the pins
#   reconcile      -> "reconciled": the maps read back and compared
#   sweep          -> "swept the maps"
#   outlier        -> "outlier detection on": every service's settings
#   rest           -> "meshd ready"
# With -s K, each restart serves metrics (127.0.0.1 in the namespace) and
# K scrapes of /metrics follow "meshd ready" (after -q SECONDS of quiet,
# default 1), each timed with curl: the first one after a start included.
# meshd runs in a network namespace of its own (a veth pair inside it,
# telemetry, socket LB, redirect and metrics off) with its own pin dir,
# state file and socket, all removed on exit, failure or signal included.
#
# Usage: meshd_scale.sh [-n SERVICES] [-r RESTARTS] [-s SCRAPES [-q SECONDS]] [BUILD_DIR...]
#        defaults: -n 10000 -r 2 -s 0, BUILD_DIR build   (root; `make`; -s: curl)
# With several build dirs (each holding meshd and meshctl, e.g. a copy of
# main's and this tree's), each applies from empty in turn, then the
# restarts alternate between them over the last one's pins: a same-run
# baseline. Figures are noisy on a shared machine: say the load average.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=10000
R=2
SCRAPES=0
QUIET=1
while getopts "n:r:s:q:" o; do
	case $o in
	n) N=$OPTARG ;;
	r) R=$OPTARG ;;
	s) SCRAPES=$OPTARG ;;
	q) QUIET=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
BUILDS=("$@")
[ ${#BUILDS[@]} -gt 0 ] || BUILDS=("$ROOT/build")

ID=mscale$$
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

MADDR=127.0.0.1:9465
start() {
	local metrics=off
	[ "${2:-}" = metrics ] && metrics=$MADDR
	: >"$LOG"
	# nsenter, not `ip netns exec`: that one remounts /sys, so meshd would
	# see an empty bpffs and every restart would start from nothing
	nsenter --net="/var/run/netns/$NS" "$1/meshd" --interfaces mc0 --bpffs "$PIN" --state "$STATE" \
		--socket "$SOCK" --telemetry off --socket-lb off --redirect off --metrics "$metrics" \
		>>"$LOG" 2>&1 &
	P=$!
}

# SCRAPES fetches of /metrics, timed: "scrapes 0.091 0.079 s, 7153035 bytes"
scrapes() {
	local i out times=() bytes=0
	sleep "$QUIET"
	for ((i = 0; i < SCRAPES; i++)); do
		out=$(nsenter --net="/var/run/netns/$NS" curl -sf -o /dev/null \
			-w '%{time_total} %{size_download}' "http://$MADDR/metrics") || {
			echo "  scrape $((i + 1)) failed"
			return 1
		}
		times+=("${out% *}")
		bytes=${out#* }
	done
	echo "  scrapes ${times[*]} s, $bytes bytes"
}

waitready() {
	local t0=$EPOCHREALTIME
	for _ in $(seq 60000); do
		grep -q 'meshd ready' "$LOG" && break
		kill -0 "$P" 2>/dev/null || { echo "meshd died:"; tail -5 "$LOG"; return 1; }
		sleep 0.01
	done
	printf 'ready in %.2f s' "$(echo "$EPOCHREALTIME - $t0" | bc)"
}

hwm() { awk '/VmHWM/ { printf "%.1f MB", $2 / 1024 }' "/proc/$P/status"; }

phases() {
	python3 - "$LOG" <<-'EOF'
		import datetime, sys
		marks = [("starting", "start"), ("metrics off (--metrics", "state+prepare"),
		         ("datapath loaded", "prog load"), ("reconciled", "reconcile"),
		         ("swept the maps", "sweep"), ("outlier detection", "outlier"),
		         ("meshd ready", "rest")]
		ts = {}
		for line in open(sys.argv[1]):
		    for key, name in marks:
		        if key in line and name not in ts:
		            ts[name] = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
		out, prev = [], None
		for _, name in marks:
		    if name in ts:
		        if prev:
		            out.append("%s %.2f" % (name, (ts[name] - prev).total_seconds()))
		        prev = ts[name]
		print("  " + ", ".join(out))
	EOF
}

ip netns add "$NS" || exit 1
ip -n "$NS" link add mc0 type veth peer name mc1
ip -n "$NS" link set mc0 up
ip -n "$NS" link set mc1 up
ip -n "$NS" link set lo up
python3 - "$N" >"$WORK/svcs.json" <<-'EOF'
	import json, sys
	n = int(sys.argv[1])
	svcs = [{"vip": "10.%d.%d.%d" % (96 + i // 65536, (i // 256) % 256, i % 256),
	         "port": 80, "protocol": "tcp",
	         "backends": [{"address": "10.200.%d.%d" % ((i * 10 + j) // 250 % 250,
	                                                   (i * 10 + j) % 250 + 1),
	                       "port": 8080, "weight": 1} for j in range(10)]}
	        for i in range(n)]
	json.dump({"services": svcs}, sys.stdout)
EOF

echo "# $N services x 10, load $(cut -d' ' -f1-3 /proc/loadavg)"
for b in "${BUILDS[@]}"; do
	rm -rf "$PIN" "$STATE"
	start "$b"
	waitready >/dev/null || exit 1
	t0=$EPOCHREALTIME
	"$b/meshctl" -s "$SOCK" --timeout 900000 apply -f "$WORK/svcs.json" >/dev/null ||
		{ echo "apply failed"; exit 1; }
	printf '%s: apply %.2f s, meshd VmHWM %s, state file %s bytes, load %s\n' "$b" \
		"$(echo "$EPOCHREALTIME - $t0" | bc)" "$(hwm)" "$(stat -c %s "$STATE")" \
		"$(cut -d' ' -f1 /proc/loadavg)"
	stop
done
for ((r = 1; r <= R; r++)); do
	for b in "${BUILDS[@]}"; do
		start "$b" "$([ "$SCRAPES" -gt 0 ] && echo metrics)"
		printf '%s: restart %d: %s, VmHWM %s, load %s\n' "$b" "$r" "$(waitready)" "$(hwm)" \
			"$(cut -d' ' -f1 /proc/loadavg)"
		phases
		[ "$SCRAPES" -gt 0 ] && scrapes
		stop
	done
done
