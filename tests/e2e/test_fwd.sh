#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_fwd.sh - XDP forwarding per egress device, end to end (#17).
#
# Contract: builds the topology of scripts/lib/topology.sh (client -> node
# -> be1..be3), turns GRO off on be3's eth0 (the peer of the node's to-be3,
# no XDP there: a veth that drops redirected XDP frames) and starts meshd
# on the node with the default --fib-forward auto, XDP on every to-*
# interface. Then, in the same run: meshd put to-be1 (peer with GRO) and
# to-client into fwd_devs and left to-be3 out; a service to be1 and one to
# be3 each carry 100 TCP connections (2000 bytes echoed each) and a 10 MiB
# transfer verified end to end; the counters show that be1's packets were
# redirected by XDP (fib_redirect grew by at least the packets sent, and
# fwd_not_capable did not move) and be3's went to the kernel
# (fwd_not_capable grew by at least the client's packets to be3). Last,
# tc on the same path (meshd --xdp-mode off): both services through
# tc's redirect, fwd_not_capable still. One PASS/FAIL line per scenario;
# namespaces, meshd and pins go on every exit path.
# Needs root, build/meshd, build/meshctl and build/tests/tools/lbtool.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"

BUILD=${SLUICE_BUILD:-$ROOT/build}
LBTOOL=$TOPO_LBTOOL
PIN=/sys/fs/bpf/sluice-e2e-fwd-$TOPO_ID
SVC_FAST=8101 # -> be1, egress to-be1 can take XDP frames
SVC_SLOW=8103 # -> be3, egress to-be3 cannot
CLIENT_TIMEOUT=$((60 * ${SLUICE_TEST_TIME_SCALE:-1}))
FAILED=0
MESHD_PID=
DIR=

topo_on_cleanup() {
	stop_meshd
	[ -d "$PIN" ] && { "$LBTOOL" --pin "$PIN" unpin 2>/dev/null || rm -rf "$PIN"; }
	return 0
}

client() { topo__client timeout "$CLIENT_TIMEOUT" python3 "$TOPO_ECHO" "$@"; }
mctl() { "$BUILD/meshctl" -s "$DIR/sock" "$@"; }

scenario() {
	local name=$1
	shift
	"$@" 2>&1 | sed 's/^/    /'
	if [ "${PIPESTATUS[0]}" -eq 0 ]; then
		printf 'PASS: e2e/%s\n' "$name"
	else
		printf 'FAIL: e2e/%s\n' "$name"
		FAILED=$((FAILED + 1))
	fi
}

# start_meshd FLAGS...: meshd on the node, ready or fail.
start_meshd() {
	local i
	DIR=$TOPO_TMP/meshd
	mkdir -p "$DIR"
	nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$BUILD/meshd" --interfaces 'to-*' \
		--bpffs "$PIN" --state "$DIR/state.json" --state-missing empty \
		--socket "$DIR/sock" --metrics off --telemetry off --socket-lb off \
		--redirect off --log-level debug "$@" >"$DIR/log" 2>&1 &
	MESHD_PID=$!
	for ((i = 0; i < 500; i++)); do
		grep -q 'meshd ready' "$DIR/log" && return 0
		kill -0 "$MESHD_PID" 2>/dev/null || break
		sleep 0.02
	done
	echo "meshd did not become ready:"
	tail -n 20 "$DIR/log"
	return 1
}

stop_meshd() {
	[ -n "$MESHD_PID" ] || return 0
	kill "$MESHD_PID" 2>/dev/null
	wait "$MESHD_PID" 2>/dev/null
	MESHD_PID=
}

# counter NAME: the datapath's counter from the pinned maps.
counter() {
	topo__node "$LBTOOL" --pin "$PIN" stats | awk -v n="$1" '$1 == n { print $2 }'
}

# Packets the client sent to the node (nsenter keeps the root /sys).
client_tx_packets() {
	ip -n "$TOPO_NS_CLIENT" -j -s link show eth0 |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["packets"])'
}

services() {
	mctl service add "$TOPO_VIP4:$SVC_FAST/tcp" "$(topo__be_addr4 be1):$TOPO_BE_PORT" \
		>/dev/null &&
		mctl service add "$TOPO_VIP4:$SVC_SLOW/tcp" \
			"$(topo__be_addr4 be3):$TOPO_BE_PORT" >/dev/null
}

check_fwd_devs() {
	local dev idx dump rc=0
	dump=$(bpftool -j map dump pinned "$PIN/fwd_devs")
	for dev in to-client to-be1 to-be3; do
		idx=$(ip -n "$TOPO_NS_NODE" -o link show "$dev" | cut -d: -f1)
		if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); k=int(sys.argv[2]); sys.exit(0 if any(int.from_bytes(bytes(int(b,16) for b in e["key"]),"little")==k for e in d) else 1)' "$dump" "$idx"; then
			echo "$dev (ifindex $idx) is in fwd_devs"
			[ "$dev" = to-be3 ] && { echo "error: to-be3's peer runs neither XDP nor GRO"; rc=1; }
		else
			echo "$dev (ifindex $idx) is not in fwd_devs"
			[ "$dev" != to-be3 ] && { echo "error: $dev's peer has GRO on"; rc=1; }
		fi
	done
	grep 'fwd:' "$DIR/log" | sed 's/^/  log: /'
	return $rc
}

# traffic PORT BE: 100 connections x 2000 bytes and 10 MiB, all verified.
traffic() {
	client tcp "$TOPO_VIP4" "$1" -n 100 --bytes 2000 --expect "$2" &&
		client bulk "$TOPO_VIP4" "$1" --mib 10
}

# check_path PORT BE WANT: traffic to PORT, then the counters: WANT=xdp:
# redirected, fwd_not_capable unmoved; WANT=kernel: fwd_not_capable grew
# by at least the client's packets; WANT=tc: redirected by tc.
check_path() {
	local port=$1 be=$2 want=$3 r0 n0 t0 r1 n1 t1 sent v
	r0=$(counter fib_redirect) n0=$(counter fwd_not_capable) t0=$(client_tx_packets)
	traffic "$port" "$be" || return 1
	r1=$(counter fib_redirect) n1=$(counter fwd_not_capable) t1=$(client_tx_packets)
	for v in "$r0" "$n0" "$t0" "$r1" "$n1" "$t1"; do
		[[ $v =~ ^[0-9]+$ ]] || { echo "error: a counter could not be read"; return 1; }
	done
	sent=$((t1 - t0))
	# 100 connections and 10 MiB at MSS 1448 (TSO off): well over 7000
	[ "$sent" -ge 7000 ] || { echo "error: only $sent packets sent"; return 1; }
	echo "client sent $sent packets; fib_redirect +$((r1 - r0)), fwd_not_capable +$((n1 - n0))"
	case $want in
	xdp | tc)
		[ $((n1 - n0)) -eq 0 ] || { echo "error: fwd_not_capable moved"; return 1; }
		[ $((r1 - r0)) -ge "$sent" ] || { echo "error: fewer redirects than packets sent"; return 1; }
		;;
	kernel)
		# less the client's few ARP/ND packets and the packets before the
		# node knew be3's MAC (fib_pass)
		[ $((n1 - n0)) -ge $((sent - 20)) ] ||
			{ echo "error: fwd_not_capable grew less than the packets to $be"; return 1; }
		;;
	esac
}

main() {
	local b dev
	for b in meshd meshctl tests/tools/lbtool; do
		[ -x "$BUILD/$b" ] || { echo "FAIL: e2e/fwd: $BUILD/$b missing (make)"; exit 1; }
	done
	topo__install_traps
	if ! topo__up || ! ip netns exec "$(topo__ns be3)" ethtool -K eth0 gro off >/dev/null; then
		echo "FAIL: e2e/fwd_topology"
		exit 1
	fi
	if ! start_meshd || ! services; then
		echo "FAIL: e2e/fwd_meshd_start"
		exit 1
	fi
	scenario fwd_devs_per_egress check_fwd_devs
	scenario fwd_xdp_capable_redirects check_path $SVC_FAST be1 xdp
	scenario fwd_xdp_not_capable_to_kernel check_path $SVC_SLOW be3 kernel
	stop_meshd
	# meshd leaves its XDP programs attached on exit (restarts keep traffic)
	for dev in "${TOPO_NODE_IFS[@]}"; do
		ip -n "$TOPO_NS_NODE" link set dev "$dev" xdp off
	done
	if ! start_meshd --xdp-mode off; then
		echo "FAIL: e2e/fwd_meshd_tc_start"
		exit 1
	fi
	scenario fwd_tc_redirects_to_capable check_path $SVC_FAST be1 tc
	scenario fwd_tc_redirects_to_not_capable check_path $SVC_SLOW be3 tc
	[ "$FAILED" -eq 0 ]
}

main "$@"
