#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# probe_cpu.sh - what active health checks cost meshd: N backends probed
# over TCP every second, meshd's CPU time (user + system, from
# /proc/PID/stat) over a window, as a share of one core.
#
# Contract: everything lives in one network namespace the script creates
# (named after $$): 10.200.0.0/16 is local there, one acceptor listens on
# 0.0.0.0:8080 and accepts and closes every connection (its CPU is not
# counted), meshd runs there with its own pin dir, state file and socket,
# attached to no interface (the datapath is loaded, nothing is steered),
# with N/100 services x 100 backends 10.200.x.y:8080 and healthCheck
# {type: tcp, intervalMs: 1000, timeoutMs: 500}. The probes' results come
# from meshd's /metrics (sluice_probe_results_total) so a figure with
# failed probes says so. All of it is removed on exit, failure or signal.
# Usage: probe_cpu.sh [N [SECONDS [CPU]]]   (default 10000 30, last CPU)
# Prints one line: "probe_cpu backends=N seconds=S cpu_share=X user=U
# system=K probes=P ok=O failed=F" (shares of one core; on loopback the
# kernel's TCP work of both ends of each probe's handshake runs inside
# meshd's connect() and close(), so `system` is an upper bound of what a
# probe over a NIC costs meshd); exit 1 when meshd did not come up.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-10000}
SECS=${2:-30}
CPU=${3:-$(($(nproc) - 1))}
BUILD=${SLUICE_BUILD:-$ROOT/build}
NS=sluice-pc$$
PIN=/sys/fs/bpf/sluice-pc$$
PORT=19$((RANDOM % 900 + 100))
TMP=$(mktemp -d /tmp/sluice-probe-cpu.XXXXXX)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
MESHD_PID=
ACC_PID=

pc__in() { nsenter --net="/var/run/netns/$NS" "$@"; }

pc__down() {
	[ -n "$MESHD_PID" ] && kill "$MESHD_PID" 2>/dev/null && wait "$MESHD_PID" 2>/dev/null
	[ -n "$ACC_PID" ] && kill "$ACC_PID" 2>/dev/null && wait "$ACC_PID" 2>/dev/null
	if [ -d "$PIN" ] && [ -e "/var/run/netns/$NS" ]; then
		pc__in "$BUILD/meshd" --cleanup --bpffs "$PIN" >/dev/null 2>&1
	fi
	[ -d "$PIN" ] && rm -rf "$PIN"
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap pc__down EXIT
trap 'pc__down; trap - EXIT; exit 130' INT
trap 'pc__down; trap - EXIT; exit 143' TERM

pc__state() {
	"$PY" - "$N" >"$TMP/state.json" <<'EOF'
import json, sys
n = int(sys.argv[1])
svcs = []
for s in range((n + 99) // 100):
    bes = [{"address": "10.200.%d.%d" % ((s * 100 + b) // 250, (s * 100 + b) % 250 + 1),
            "port": 8080} for b in range(min(100, n - s * 100))]
    svcs.append({"vip": "10.96.%d.%d" % (s // 250, s % 250 + 1), "port": 80,
                 "protocol": "tcp", "backends": bes,
                 "healthCheck": {"type": "tcp", "intervalMs": 1000, "timeoutMs": 500}})
json.dump({"services": svcs}, sys.stdout)
EOF
}

# ticks of user + system time of pid
pc__ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

# sluice_probe_results_total{result="R"} from /metrics
pc__results() {
	pc__in curl -s "http://127.0.0.1:$PORT/metrics" |
		awk -F'[ {}"]+' '/^sluice_probe_results_total/ { r[$3] = $4 }
			END { ok = r["success"] + 0; all = 0; for (k in r) all += r[k];
			      print all, ok, all - ok }'
}

ip netns add "$NS" || exit 1
ip -n "$NS" link set lo up
ip -n "$NS" route add local 10.200.0.0/16 dev lo
pc__state
# the acceptor: accept and close, as fast as it can, on the other CPUs
nsenter --net="/var/run/netns/$NS" "$PY" -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(4096)
while True:
    c, _ = s.accept()
    c.close()' >/dev/null 2>&1 </dev/null &
ACC_PID=$!
mkdir -p "$TMP/run"
# nsenter and taskset exec: $! is meshd's own pid
nsenter --net="/var/run/netns/$NS" taskset -c "$CPU" "$BUILD/meshd" --bpffs "$PIN" --state "$TMP/state.json" \
	--socket "$TMP/run/meshd.sock" --telemetry off --socket-lb off --redirect off \
	--metrics "127.0.0.1:$PORT" --log-level warn >"$TMP/meshd.log" 2>&1 </dev/null &
MESHD_PID=$!
for ((i = 0; i < 600; i++)); do
	"$BUILD/meshctl" -s "$TMP/run/meshd.sock" status >/dev/null 2>&1 && break
	kill -0 "$MESHD_PID" 2>/dev/null || break
	sleep 0.1
done
if ! "$BUILD/meshctl" -s "$TMP/run/meshd.sock" status >/dev/null 2>&1; then
	echo "probe_cpu: meshd did not start: $(tail -n 3 "$TMP/meshd.log")" >&2
	exit 1
fi
# every backend probed twice before the window: the first probes are
# spread over one interval
sleep 3
read -r p0 ok0 f0 <<<"$(pc__results)"
read -r u0 s0 <<<"$(pc__ticks "$MESHD_PID")"
sleep "$SECS"
read -r u1 s1 <<<"$(pc__ticks "$MESHD_PID")"
read -r p1 ok1 f1 <<<"$(pc__results)"
hz=$(getconf CLK_TCK)
awk -v n="$N" -v s="$SECS" -v u=$((u1 - u0)) -v k=$((s1 - s0)) -v hz="$hz" -v p=$((p1 - p0)) \
	-v ok=$((ok1 - ok0)) -v f=$((f1 - f0)) 'BEGIN {
	printf "probe_cpu backends=%d seconds=%d cpu_share=%.4f user=%.4f system=%.4f " \
	       "probes=%d ok=%d failed=%d\n",
	       n, s, (u + k) / hz / s, u / hz / s, k / hz / s, p, ok, f }'
