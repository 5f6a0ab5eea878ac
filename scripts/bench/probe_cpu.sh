#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# probe_cpu.sh - what active health checks cost meshd: N backends probed
# over TCP every second, meshd's CPU time (user + system, from
# /proc/PID/stat) over a window, as a share of one core.
#
# Contract: everything lives in two network namespaces the script creates
# (named after $$): meshd's and the targets', joined by a veth pair, so a
# probe crosses a link as it would a NIC. 10.200.0.0/16 is local in the
# targets' namespace, where one acceptor listens on 0.0.0.0:8080 and
# accepts and closes every connection. The targets' receive processing is
# steered to another CPU than meshd's (RPS on both veth ends, acceptor
# pinned there): this kernel has no IRQ time accounting, so softirq work
# done while meshd runs would be charged to meshd, and on loopback the
# whole TCP work of both ends of each handshake ran inside meshd's
# connect() and close() (the earlier layout: 0.22 of a core of "meshd
# system time" that was mostly the targets'). meshd runs with its own pin
# dir, state file and socket, attached to no interface (the datapath is
# loaded, nothing is steered), with N/100 services x 100 backends
# 10.200.x.y:8080 and healthCheck {type: tcp, intervalMs: 1000,
# timeoutMs: 500}. The probes' results come from meshd's /metrics
# (sluice_probe_results_total) so a figure with failed probes says so.
# The other CPU's softirq share (from /proc/stat, tick-sampled) is printed
# too: the receive work of both ends, which a NIC's interrupt CPU pays.
# All of it is removed on exit, failure or signal.
# Usage: probe_cpu.sh [N [SECONDS [CPU]]]   (default 10000 30, last CPU)
# Prints one line: "probe_cpu backends=N seconds=S cpu_share=X user=U
# system=K probes=P ok=O failed=F other_cpu=C other_softirq=Q" (shares
# of one core; cpu_share = meshd's user + system); exit 1 when meshd did
# not come up.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-10000}
SECS=${2:-30}
CPU=${3:-$(($(nproc) - 1))}
BUILD=${SLUICE_BUILD:-$ROOT/build}
NS=sluice-pc$$
TNS=sluice-pt$$
OTHER=$(((CPU + 1) % $(nproc)))
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
	ip netns del "$TNS" 2>/dev/null
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

# hex CPU mask of one CPU (for rps_cpus)
pc__mask() { printf '%x' $((1 << $1)); }
# softirq ticks of one CPU (/proc/stat, 8th field of its cpuN line)
pc__softirq() { awk -v c="cpu$1" '$1 == c { print $8 }' /proc/stat; }

ip netns add "$NS" || exit 1
ip netns add "$TNS" || exit 1
ip -n "$NS" link set lo up
ip -n "$TNS" link set lo up
ip -n "$NS" link add pc0 type veth peer name pc1 netns "$TNS" || exit 1
ip -n "$NS" addr add 10.201.0.1/30 dev pc0
ip -n "$TNS" addr add 10.201.0.2/30 dev pc1
ip -n "$NS" link set pc0 up
ip -n "$TNS" link set pc1 up
ip -n "$NS" route add 10.200.0.0/16 via 10.201.0.2
ip -n "$TNS" route add local 10.200.0.0/16 dev lo
ip -n "$TNS" route add default via 10.201.0.1
# both directions' receive processing on the other CPU (sysfs of each
# namespace: `ip netns exec` mounts it; nothing else runs that way)
for pair in "$NS pc0" "$TNS pc1"; do
	set -- $pair
	ip netns exec "$1" sh -c "echo $(pc__mask "$OTHER") > /sys/class/net/$2/queues/rx-0/rps_cpus" ||
		echo "probe_cpu: could not steer $2's receive work to CPU $OTHER" >&2
done
pc__state
# the acceptor: accept and close, as fast as it can, on the other CPU
nsenter --net="/var/run/netns/$TNS" taskset -c "$OTHER" "$PY" -c '
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
q0=$(pc__softirq "$OTHER")
sleep "$SECS"
read -r u1 s1 <<<"$(pc__ticks "$MESHD_PID")"
q1=$(pc__softirq "$OTHER")
read -r p1 ok1 f1 <<<"$(pc__results)"
hz=$(getconf CLK_TCK)
awk -v n="$N" -v s="$SECS" -v u=$((u1 - u0)) -v k=$((s1 - s0)) -v hz="$hz" -v p=$((p1 - p0)) \
	-v ok=$((ok1 - ok0)) -v f=$((f1 - f0)) -v o="$OTHER" -v q=$((q1 - q0)) 'BEGIN {
	printf "probe_cpu backends=%d seconds=%d cpu_share=%.4f user=%.4f system=%.4f " \
	       "probes=%d ok=%d failed=%d other_cpu=%d other_softirq=%.4f\n",
	       n, s, (u + k) / hz / s, u / hz / s, k / hz / s, p, ok, f, o, q / hz / s }'
