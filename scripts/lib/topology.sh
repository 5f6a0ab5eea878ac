# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2034 # the TOPO_* names are read by the callers
#
# topology.sh - the namespace topology shared by tests/e2e and scripts/demo.sh.
#
# Contract: source it, call topo__install_traps, then topo__up. It builds
#
#   client ns --veth-- node ns (the LB) --veth-- be1 / be2 / be3 ns
#
# with IPv4 and IPv6 on every link, forwarding on the node, and a TCP and a
# UDP echo server (tests/e2e/echo.py) in each backend ns. The client's veth
# runs a bare XDP_PASS program (build/tests/tools/lbtool xdp-pass), so
# frames XDP_TXed back to it arrive, as they would over a real wire. Every
# name carries $TOPO_ID (default: prefix + $$): parallel runs never collide.
# topo__down is idempotent and runs on EXIT/INT/TERM: it calls the caller's
# topo_on_cleanup hook (if defined; e.g. to unpin BPF maps), kills the
# servers and deletes the namespaces, which also removes the veths and any
# XDP/tc program attached to them. Nothing here touches the host's own
# interfaces; all addresses are private ranges living inside the namespaces.

TOPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOPO_ID=${TOPO_ID:-${TOPO_PREFIX:-sl}$$}
TOPO_NS_CLIENT=$TOPO_ID-client
TOPO_NS_NODE=$TOPO_ID-node
TOPO_BACKENDS=(be1 be2 be3)

# Client side: 10.10.0.0/24 and fd00:10::/64; backend i: 10.10.i.0/24 and
# fd00:10:i::/64. The node is .1 / ::1 on every link, the other end .2 / ::2.
TOPO_CLIENT4=10.10.0.2
TOPO_CLIENT6=fd00:10::2
TOPO_VIP4=10.96.0.10
TOPO_VIP6=fd00:96::10
# Backend echo servers listen on this port (TCP and UDP, both families);
# services use a different port so the DNAT of the port is exercised too.
TOPO_BE_PORT=8080
# Node-side interface names: the LB programs attach to all of them (client
# side does DNAT, backend sides carry the reverse NAT of replies).
TOPO_NODE_IFS=(to-client to-be1 to-be2 to-be3)

TOPO_ECHO=$TOPO_ROOT/tests/e2e/echo.py
TOPO_LBTOOL=$TOPO_ROOT/build/tests/tools/lbtool
TOPO_TMP=
TOPO_PIDS=()
TOPO_DOWN_DONE=0

topo__log() { printf '[topo] %s\n' "$*" >&2; }

topo__ns() { printf '%s-%s' "$TOPO_ID" "$1"; }
topo__be_addr4() { printf '10.10.%s.2' "${1#be}"; }
topo__be_addr6() { printf 'fd00:10:%s::2' "${1#be}"; }

# Run a command in a namespace but keep the root mount namespace, so
# /sys/fs/bpf (pins) stays visible; `ip netns exec` would remount /sys.
topo__in() {
	local ns=$1
	shift
	nsenter --net="/var/run/netns/$ns" "$@"
}
topo__client() { topo__in "$TOPO_NS_CLIENT" "$@"; }
topo__node() { topo__in "$TOPO_NS_NODE" "$@"; }

topo__sysctl() {
	local ns=$1
	shift
	topo__in "$ns" sysctl -qw "$@" >/dev/null
}

# Receivers of XDP-redirected frames need GRO (or an XDP program) on the
# veth, or the kernel drops them; TX checksum offload off makes packets on
# the wire carry full checksums, as on a real NIC, so the datapath's
# incremental checksum updates are really tested. TOPO_TX_CSUM=on keeps
# the offload (veth's default: the node's XDP then sees CHECKSUM_PARTIAL
# packets whose L4 checksum field holds only the pseudo-header sum).
topo__nic_setup() {
	local ns=$1 dev=$2 tx=${TOPO_TX_CSUM:-off}
	ip netns exec "$ns" ethtool -K "$dev" gro on tx "$tx" >/dev/null 2>&1 || {
		topo__log "ethtool -K $dev gro on tx $tx failed in $ns"
		return 1
	}
}

# The client's veth plays the wire towards the node. Frames an XDP program
# on the node XDP_TXes back (refusals) only wake a veth that runs an XDP
# program itself; GRO is enough for XDP_REDIRECT but not for XDP_TX
# (veth_xdp_flush()). A bare XDP_PASS program stands in for the wire; a
# physical uplink needs nothing of the kind.
topo__client_xdp_pass() {
	if [ ! -x "$TOPO_LBTOOL" ]; then
		topo__log "$TOPO_LBTOOL is not built (run make): needed for the client's XDP_PASS"
		return 1
	fi
	topo__client "$TOPO_LBTOOL" xdp-pass eth0
}

topo__ns_add() {
	local ns=$1
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up
	# No DAD anywhere: tentative addresses would make the first seconds
	# of IPv6 traffic flaky.
	topo__sysctl "$ns" net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

topo__start_server() {
	local be=$1 ns ready
	ns=$(topo__ns "$be")
	ready=$TOPO_TMP/$be.ready
	# nsenter itself (not a function) in the background, so $! is the
	# server's pid once nsenter execs it and topo__down can kill it.
	nsenter --net="/var/run/netns/$ns" python3 "$TOPO_ECHO" serve --name "$be" \
		--port "$TOPO_BE_PORT" --ready "$ready" \
		>"$TOPO_TMP/$be.log" 2>&1 &
	TOPO_PIDS+=($!)
}

# 30 s each: a hang guard; python starts in well under a second when the
# machine is quiet, seconds when other suites share it.
topo__wait_servers() {
	local be i
	for be in "${TOPO_BACKENDS[@]}"; do
		for ((i = 0; i < 600; i++)); do
			[ -e "$TOPO_TMP/$be.ready" ] && break
			sleep 0.05
		done
		if [ ! -e "$TOPO_TMP/$be.ready" ]; then
			topo__log "echo server $be did not start:"
			cat "$TOPO_TMP/$be.log" >&2
			return 1
		fi
	done
}

topo__up() {
	local be ns i
	TOPO_TMP=$(mktemp -d "/tmp/sluice-$TOPO_ID.XXXXXX") || return 1
	TOPO_DOWN_DONE=0

	topo__ns_add "$TOPO_NS_NODE" || return 1
	topo__sysctl "$TOPO_NS_NODE" net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 || return 1

	topo__ns_add "$TOPO_NS_CLIENT" || return 1
	ip -n "$TOPO_NS_NODE" link add to-client type veth \
		peer name eth0 netns "$TOPO_NS_CLIENT" || return 1
	ip -n "$TOPO_NS_NODE" addr add 10.10.0.1/24 dev to-client
	ip -n "$TOPO_NS_NODE" addr add fd00:10::1/64 dev to-client nodad
	ip -n "$TOPO_NS_NODE" link set to-client up
	ip -n "$TOPO_NS_CLIENT" addr add "$TOPO_CLIENT4/24" dev eth0
	ip -n "$TOPO_NS_CLIENT" addr add "$TOPO_CLIENT6/64" dev eth0 nodad
	ip -n "$TOPO_NS_CLIENT" link set eth0 up
	topo__nic_setup "$TOPO_NS_CLIENT" eth0 || return 1
	topo__client_xdp_pass || return 1
	# The VIPs and the backend networks are behind the node.
	ip -n "$TOPO_NS_CLIENT" route add 10.96.0.0/16 via 10.10.0.1 || return 1
	ip -n "$TOPO_NS_CLIENT" route add 10.10.0.0/16 via 10.10.0.1 || return 1
	ip -n "$TOPO_NS_CLIENT" -6 route add fd00:96::/64 via fd00:10::1 || return 1
	ip -n "$TOPO_NS_CLIENT" -6 route add fd00:10::/32 via fd00:10::1 || return 1

	for be in "${TOPO_BACKENDS[@]}"; do
		i=${be#be}
		ns=$(topo__ns "$be")
		topo__ns_add "$ns" || return 1
		ip -n "$TOPO_NS_NODE" link add "to-$be" type veth \
			peer name eth0 netns "$ns" || return 1
		ip -n "$TOPO_NS_NODE" addr add "10.10.$i.1/24" dev "to-$be"
		ip -n "$TOPO_NS_NODE" addr add "fd00:10:$i::1/64" dev "to-$be" nodad
		ip -n "$TOPO_NS_NODE" link set "to-$be" up
		ip -n "$ns" addr add "$(topo__be_addr4 "$be")/24" dev eth0
		ip -n "$ns" addr add "$(topo__be_addr6 "$be")/64" dev eth0 nodad
		ip -n "$ns" link set eth0 up
		topo__nic_setup "$ns" eth0 || return 1
		# Replies to the client go back through the node (reverse NAT).
		ip -n "$ns" route add 10.10.0.0/16 via "10.10.$i.1" || return 1
		ip -n "$ns" -6 route add fd00:10::/32 via "fd00:10:$i::1" || return 1
	done
	# Interfaces created after the sysctl inherit default.rp_filter=0,
	# but be explicit: the effective value is max(all, interface).
	for i in "${TOPO_NODE_IFS[@]}"; do
		topo__sysctl "$TOPO_NS_NODE" "net.ipv4.conf.$i.rp_filter=0" || return 1
	done

	for be in "${TOPO_BACKENDS[@]}"; do
		topo__start_server "$be"
	done
	topo__wait_servers
}

# Idempotent; safe to call from traps while topo__up is half done.
topo__down() {
	local pid ns be
	[ "$TOPO_DOWN_DONE" = 1 ] && return 0
	TOPO_DOWN_DONE=1
	if declare -F topo_on_cleanup >/dev/null; then
		topo_on_cleanup || true
	fi
	for pid in "${TOPO_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${TOPO_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	TOPO_PIDS=()
	for ns in "$TOPO_NS_CLIENT" "$TOPO_NS_NODE"; do
		ip netns del "$ns" 2>/dev/null
	done
	for be in "${TOPO_BACKENDS[@]}"; do
		ip netns del "$(topo__ns "$be")" 2>/dev/null
	done
	[ -n "$TOPO_TMP" ] && rm -rf "$TOPO_TMP"
	TOPO_TMP=
	return 0
}

topo__install_traps() {
	trap 'topo__down' EXIT
	trap 'topo__down; trap - EXIT; exit 130' INT
	trap 'topo__down; trap - EXIT; exit 143' TERM
}

# Smoke check without BPF: every backend answers TCP and UDP, both
# families, when addressed directly over plain forwarding.
topo__check_direct() {
	local be addr rc=0
	for be in "${TOPO_BACKENDS[@]}"; do
		for addr in "$(topo__be_addr4 "$be")" "$(topo__be_addr6 "$be")"; do
			topo__client python3 "$TOPO_ECHO" tcp "$addr" "$TOPO_BE_PORT" \
				-n 1 --expect "$be" >/dev/null || {
				topo__log "tcp client -> $be at $addr failed"
				rc=1
			}
			topo__client python3 "$TOPO_ECHO" udp "$addr" "$TOPO_BE_PORT" \
				-n 1 --expect "$be" >/dev/null || {
				topo__log "udp client -> $be at $addr failed"
				rc=1
			}
		done
	done
	return $rc
}
