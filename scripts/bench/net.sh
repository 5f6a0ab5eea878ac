# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# net.sh - the namespaces of the veth benchmarks (B2, B3, B4), sourced by
# scripts/bench.sh.
#
# Contract: bn__topo_up NAME builds one private path
#
#   NAME-g (g0) --veth-- (n0) NAME-n (n1) --veth-- (b0) NAME-b
#   generator             node: the variant          backend: xdp_count
#
# whose names all start with $BN_ID (unique per run), with forwarding on the
# node, static routes and permanent neighbours (no ARP during a sample),
# IPv6 off (no ND/MLD packets to count), GRO on every veth and xdp_count on
# b0 in EVERY variant, so the only difference between variants is what runs
# on the node. bn__topo_up NAME QUEUES gives every veth QUEUES TX and RX
# queues (default 1): a generator on CPU c then reaches the node on queue
# c % QUEUES, and the node's and the backend's NAPI run on c too. bn__variant NAME KIND [N] installs one variant on the node.
# bn__down removes every namespace and pin of this run (idempotent; traps
# call it); deleting a namespace also detaches what was attached in it and
# drops its iptables/nft tables and conntrack entries. Nothing here runs
# outside the namespaces it created: iptables, nft and conntrack only ever
# run through bn__in on a bench node.

BN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BN_ID=${BN_ID:-sb$$}
BN_PIN=${BN_PIN:-/sys/fs/bpf/sluice-bench-$$}
BN_XDPGEN=$BN_ROOT/build/scripts/bench/xdpgen
BN_OBJ=$BN_ROOT/build/xdpgen.bpf.o
BN_LBTOOL=$BN_ROOT/build/tests/tools/lbtool
BN_KPRULES=$BN_ROOT/build/scripts/bench/kprules
BN_SVCLOAD=$BN_ROOT/build/scripts/bench/svcload
BN_DOWN_DONE=0

# Links: generator 192.168.1.2 -- .1 node .1 -- 192.168.2.2 backend.
# Clients (plan.h) 10.64.0.0/12 are routed back to the generator, every
# backend address 10.128.0.0/9 to the backend namespace.
BN_BACKEND_NET=10.128.0.0/9
BN_CLIENT_NET=10.64.0.0/12

bn__log() { printf '[bench] %s\n' "$*" >&2; }

bn__ns() { printf '%s-%s-%s' "$BN_ID" "$1" "$2"; }

# Run in a bench namespace, keeping the root mount namespace (bpffs).
bn__in() {
	local ns=$1
	shift
	nsenter --net="/var/run/netns/$ns" "$@"
}

# MAC of an interface inside a namespace (nsenter keeps the root /sys, so
# sysfs would show the root namespace's interfaces).
bn__ns_mac() { ip -n "$1" -br link show dev "$2" | awk '{print $3}'; }

bn__ns_add() {
	local ns=$1
	ip netns add "$ns" || return 1
	bn__in "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null || return 1
	ip -n "$ns" link set lo up
}

bn__gro() {
	bn__in "$1" ethtool -K "$2" gro on >/dev/null 2>&1 || {
		bn__log "ethtool -K $2 gro on failed in $1"
		return 1
	}
}

bn__topo_up() {
	local name=$1 q=${2:-1} g n b gmac bmac
	g=$(bn__ns "$name" g)
	n=$(bn__ns "$name" n)
	b=$(bn__ns "$name" b)
	bn__ns_add "$g" && bn__ns_add "$n" && bn__ns_add "$b" || return 1
	ip -n "$n" link add n0 numtxqueues "$q" numrxqueues "$q" type veth \
		peer name g0 numtxqueues "$q" numrxqueues "$q" netns "$g" || return 1
	ip -n "$n" link add n1 numtxqueues "$q" numrxqueues "$q" type veth \
		peer name b0 numtxqueues "$q" numrxqueues "$q" netns "$b" || return 1
	ip -n "$g" addr add 192.168.1.2/24 dev g0
	ip -n "$n" addr add 192.168.1.1/24 dev n0
	ip -n "$n" addr add 192.168.2.1/24 dev n1
	ip -n "$b" addr add 192.168.2.2/24 dev b0
	local dev
	for dev in "$g g0" "$n n0" "$n n1" "$b b0"; do
		ip -n "${dev% *}" link set "${dev#* }" up || return 1
		bn__gro "${dev% *}" "${dev#* }" || return 1
	done
	bn__in "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.n0.rp_filter=0 \
		net.ipv4.conf.n1.rp_filter=0 >/dev/null || return 1
	gmac=$(bn__ns_mac "$g" g0)
	bmac=$(bn__ns_mac "$b" b0)
	ip -n "$n" neigh replace 192.168.1.2 lladdr "$gmac" nud permanent dev n0 || return 1
	ip -n "$n" neigh replace 192.168.2.2 lladdr "$bmac" nud permanent dev n1 || return 1
	ip -n "$n" route add "$BN_BACKEND_NET" via 192.168.2.2 dev n1 || return 1
	ip -n "$n" route add "$BN_CLIENT_NET" via 192.168.1.2 dev n0 || return 1
	mkdir -p "$BN_PIN" || return 1
	bn__in "$b" "$BN_XDPGEN" --obj "$BN_OBJ" counter b0 --pin "$BN_PIN/${name}_count" \
		--match "$BN_BACKEND_NET" || return 1
}

# conntrack's TCP tracking must accept a one-way flow of ACKs that it
# picked up mid-stream (the generator sends no handshake for established
# flows): loose pick-up is the default; liberal window tracking keeps
# repeated sequence numbers from being marked INVALID.
bn__ct_sysctls() {
	bn__in "$1" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=1 \
		net.netfilter.nf_conntrack_tcp_be_liberal=1 >/dev/null
}

# bn__variant NAME KIND [NSERVICES [BACKENDS]]: put KIND on NAME's node.
# Sluice runs on both node interfaces, as meshd attaches it: n0 balances
# the generator's packets, n1 reverse-NATs the backend's answers (the
# SYN|ACKs of xdpgen --handshake, which confirm the flows). The other
# variants' flows are picked up mid-stream (netfilter's loose pick-up
# confirms on the first packet; redirect and fwd keep no state).
#   xdp      Sluice xdp_lb, forwarding per capable egress (n0 and n1
#            in fwd_devs, as meshd puts them: their peers run XDP / GRO)
#   xdpfib   the same forced to redirect to any egress (--fib, bpf_redirect:
#            the only XDP forwarding before #17)
#   tc       Sluice tc_lb, redirects after the FIB lookup
#   tcoff    Sluice tc_lb with --fwd-off: the kernel forwards (tc
#            before #17)
#   redirect xdp_redirect_only n0 -> n1 (the ceiling)
#   fwd      nothing: plain kernel forwarding (traffic goes to a backend)
#   ipt      kube-proxy iptables ruleset (iptables-restore)
#   nft      kube-proxy nftables ruleset (nft -f)
# Sluice services are programmed with svcload (one process, one
# service_set call per service) unless $BN_PIN/NAME.maps already holds
# maps programmed by the caller.
bn__variant() {
	local name=$1 kind=$2 nsvc=${3:-1} nbe=${4:-10} n pin
	n=$(bn__ns "$name" n)
	pin=$BN_PIN/${name}_maps
	case $kind in
	xdp | xdpfib | tc | tcoff)
		if [ ! -e "$pin/services" ]; then
			"$BN_SVCLOAD" --services "$nsvc" --backends "$nbe" --pin "$pin" \
				>/dev/null || return 1
		fi
		local dev
		for dev in n0 n1; do
			case $kind in
			xdp)
				bn__in "$n" "$BN_LBTOOL" --pin "$pin" fwd-dev add "$dev" &&
					bn__in "$n" "$BN_LBTOOL" --pin "$pin" attach xdp "$dev" || return 1
				;;
			xdpfib) bn__in "$n" "$BN_LBTOOL" --pin "$pin" attach xdp "$dev" --fib || return 1 ;;
			tc) bn__in "$n" "$BN_LBTOOL" --pin "$pin" attach tc "$dev" || return 1 ;;
			tcoff)
				bn__in "$n" "$BN_LBTOOL" --pin "$pin" attach tc "$dev" --fwd-off || return 1
				;;
			esac
		done
		# The backend's XDP_TXed answers reach n1 only when n1 runs XDP
		# (measured: with GRO alone b0 counts them sent and n1 never
		# receives them): a bare XDP_PASS under tc, on the reply side.
		case $kind in
		tc | tcoff) bn__in "$n" "$BN_LBTOOL" xdp-pass n1 || return 1 ;;
		esac
		;;
	redirect)
		bn__in "$n" "$BN_XDPGEN" --obj "$BN_OBJ" redirect n0 --to n1 || return 1
		;;
	fwd) ;;
	ipt)
		bn__ct_sysctls "$n" || return 1
		"$BN_KPRULES" iptables --services "$nsvc" --backends "$nbe" |
			bn__in "$n" iptables-restore || return 1
		;;
	nft)
		bn__ct_sysctls "$n" || return 1
		"$BN_KPRULES" nft --services "$nsvc" --backends "$nbe" |
			bn__in "$n" nft -f - || return 1
		;;
	*)
		bn__log "unknown variant $kind"
		return 1
		;;
	esac
}

# bn__gen NAME ARGS...: one xdpgen sample from NAME's generator; prints
# its JSON line. The destination MAC is the node's n0.
bn__gen() {
	local name=$1 g n
	shift
	g=$(bn__ns "$name" g)
	n=$(bn__ns "$name" n)
	bn__in "$g" "$BN_XDPGEN" --obj "$BN_OBJ" run --dev g0 \
		--dst-mac "$(bn__ns_mac "$n" n0)" --count "$BN_PIN/${name}_count" "$@"
}

# Forget every connection the node tracks: netfilter's table and
# Sluice's conntrack and ct_new maps (both directions of every flow).
bn__ct_flush() {
	local name=$1 kind=$2 n
	n=$(bn__ns "$name" n)
	case $kind in
	ipt | nft) bn__in "$n" conntrack -F >/dev/null 2>&1 || true ;;
	xdp | xdpfib | tc | tcoff)
		"$BN_XDPGEN" --obj "$BN_OBJ" flush-map "$BN_PIN/${name}_maps/conntrack" &&
			"$BN_XDPGEN" --obj "$BN_OBJ" flush-map "$BN_PIN/${name}_maps/ct_new"
		;;
	esac
}

bn__down() {
	local name ns
	[ "$BN_DOWN_DONE" = 1 ] && return 0
	BN_DOWN_DONE=1
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in
		"$BN_ID"-*) ip netns del "$ns" 2>/dev/null ;;
		esac
	done
	if [ -d "$BN_PIN" ]; then
		for name in "$BN_PIN"/*_maps; do
			[ -d "$name" ] && "$BN_LBTOOL" --pin "$name" unpin >/dev/null 2>&1
		done
		rm -rf "$BN_PIN"
	fi
	return 0
}
