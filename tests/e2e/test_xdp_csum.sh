#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_xdp_csum.sh - XDP load balancing when the senders use TX checksum
# offload (#17): the client's and the backends' veths keep tx-checksumming
# on (TOPO_TX_CSUM=on), so the node's XDP sees CHECKSUM_PARTIAL packets
# (bpf/lib/csum_xdp.h). Three ways out of the node, each with real TCP and
# UDP through the VIP, IPv4 and IPv6, every byte echoed and the VIP as the
# peer: (1) XDP + kernel forwarding, (2) XDP + FIB redirect (the frame
# leaves its skb: the checksum is completed in XDP), (3) kernel forwarding
# out of node interfaces with TX offload off (the kernel completes the
# checksum from the seed XDP left). csum_partial must count. On main,
# (2) and (3) lose every packet.
# Prints PASS/FAIL per scenario; cleans up namespaces and pins on exit.
# Needs root and build/tests/tools/lbtool.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_TX_CSUM=on
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"

LBTOOL=$TOPO_LBTOOL
PIN=/sys/fs/bpf/sluice-e2e-csum-$TOPO_ID
CLIENT_TIMEOUT=$((60 * ${SLUICE_TEST_TIME_SCALE:-1}))
FAILED=0

topo_on_cleanup() {
	[ -d "$PIN" ] || return 0
	"$LBTOOL" --pin "$PIN" unpin 2>/dev/null || rm -rf "$PIN"
}

lb() { topo__node "$LBTOOL" --pin "$PIN" "$@"; }
client() { topo__client timeout "$CLIENT_TIMEOUT" python3 "$TOPO_ECHO" "$@"; }

backends() {
	local fam=$1 be
	for be in "${TOPO_BACKENDS[@]}"; do
		if [ "$fam" = v4 ]; then
			echo "$(topo__be_addr4 "$be"):$TOPO_BE_PORT"
		else
			echo "[$(topo__be_addr6 "$be")]:$TOPO_BE_PORT"
		fi
	done
}

setup() {
	local fib=$1 i proto
	lb load >/dev/null || return 1
	for i in "${TOPO_NODE_IFS[@]}"; do
		lb attach xdp "$i" $fib || return 1
	done
	for proto in tcp udp; do
		# shellcheck disable=SC2046
		lb svc set "$TOPO_VIP4:80/$proto" $(backends v4) >/dev/null || return 1
		# shellcheck disable=SC2046
		lb svc set "[$TOPO_VIP6]:80/$proto" $(backends v6) >/dev/null || return 1
	done
}

teardown() {
	local i
	for i in "${TOPO_NODE_IFS[@]}"; do
		lb detach xdp "$i" >/dev/null 2>&1
	done
	"$LBTOOL" --pin "$PIN" unpin >/dev/null 2>&1
}

node_tx() {
	local i
	for i in "${TOPO_NODE_IFS[@]}"; do
		ip netns exec "$TOPO_NS_NODE" ethtool -K "$i" tx "$1" >/dev/null || return 1
	done
}

counter() {
	lb stats 2>/dev/null | awk -v n="$1" '$1 == n { print $2; exit }'
}

# run NAME FIBARG NODE_TX
run() {
	local name=$1 fib=$2 tx=$3 vip rc=0 n
	node_tx "$tx" || return 1
	setup "$fib" || { teardown; return 1; }
	for vip in "$TOPO_VIP4" "$TOPO_VIP6"; do
		client tcp "$vip" 80 -n 30 --bytes 3000 --expect be1,be2,be3 || rc=1
		client udp "$vip" 80 -n 30 --bytes 1000 --expect be1,be2,be3 || rc=1
	done
	client bulk "$TOPO_VIP4" 80 --mib 2 || rc=1
	n=$(counter csum_partial)
	echo "csum_partial=${n:-missing} fib_redirect=$(counter fib_redirect)"
	[ "${n:-0}" -gt 0 ] || { echo "no packet counted as csum_partial"; rc=1; }
	if [ -n "$fib" ] && [ "$(counter fib_redirect)" -eq 0 ]; then
		echo "XDP never redirected"
		rc=1
	fi
	teardown
	return $rc
}

scenario() {
	local name=$1
	shift
	if "$@" 2>&1 | sed 's/^/    /'; [ "${PIPESTATUS[0]}" -eq 0 ]; then
		echo "PASS: e2e/$name"
	else
		echo "FAIL: e2e/$name"
		FAILED=$((FAILED + 1))
	fi
}

[ "$(id -u)" = 0 ] || { echo "SKIP: e2e/xdp_csum (needs root)"; exit 0; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
topo__install_traps
topo__up || { echo "FAIL: e2e/xdp_csum_topology"; exit 1; }
topo__client_xdp_pass || { echo "FAIL: e2e/xdp_csum_topology"; exit 1; }

scenario xdp_csum_offload_kernel_fwd run kernel "" on
scenario xdp_csum_offload_fib_redirect run fib --fib on
scenario xdp_csum_offload_egress_no_offload run noegress "" off
[ "$FAILED" -eq 0 ]
