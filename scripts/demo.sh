#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh - Sluice in two minutes: an XDP load balancer between network
# namespaces, an even split and then a canary split. `make demo` runs it.
#
# Contract: builds the topology of scripts/lib/topology.sh (client -> node
# running Sluice -> be1..be3 echo servers), loads the datapath, attaches XDP
# (native, FIB redirect) to the node's veths, programs 10.96.0.10:80/tcp and
# [fd00:96::10]:80/tcp, shows who answers each connection, the counters and
# the service, then moves to weights 8:1:1. Needs root and a built tree.
# Everything it creates (namespaces, servers, pins) is removed at exit, also
# on failure or Ctrl-C. Nothing touches the host's own interfaces.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by topology.sh
TOPO_PREFIX=sluice-demo
# shellcheck source=SCRIPTDIR/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"

LBTOOL=$TOPO_LBTOOL
PIN=/sys/fs/bpf/$TOPO_ID
VIP4=$TOPO_VIP4
VIP6=$TOPO_VIP6
PORT=80

if [ -t 1 ]; then
	B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'
else
	B='' D='' N=''
fi

say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
note() { printf '%s    %s%s\n' "$D" "$*" "$N"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}
# Shows the command, then runs it (in the node namespace for lbtool).
lb() {
	printf '%s    $ lbtool %s%s\n' "$D" "$*" "$N"
	topo__node "$LBTOOL" --pin "$PIN" "$@" | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}
DEMO_RC=0
# A failed check is shown and makes the demo exit non-zero, but the story
# goes on so the counters can tell what happened.
client() {
	topo__client timeout 60 python3 "$TOPO_ECHO" "$@" | sed 's/^/    /'
	[ "${PIPESTATUS[0]}" -eq 0 ] || DEMO_RC=1
}

topo_on_cleanup() {
	[ -d "$PIN" ] || return 0
	"$LBTOOL" --pin "$PIN" unpin 2>/dev/null || rm -rf "$PIN"
}

be_set() {
	local vip=$1 w1=$2 w2=$3 w3=$4 svc
	case $vip in
	*:*)
		svc="[$vip]:$PORT/tcp"
		lb svc set "$svc" "[$(topo__be_addr6 be1)]:$TOPO_BE_PORT@$w1" \
			"[$(topo__be_addr6 be2)]:$TOPO_BE_PORT@$w2" \
			"[$(topo__be_addr6 be3)]:$TOPO_BE_PORT@$w3"
		;;
	*)
		svc="$vip:$PORT/tcp"
		lb svc set "$svc" "$(topo__be_addr4 be1):$TOPO_BE_PORT@$w1" \
			"$(topo__be_addr4 be2):$TOPO_BE_PORT@$w2" \
			"$(topo__be_addr4 be3):$TOPO_BE_PORT@$w3"
		;;
	esac
}

main() {
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF)"
	[ -x "$LBTOOL" ] || die "$LBTOOL is missing: run 'make' first"
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf ||
		die "cannot mount bpffs on /sys/fs/bpf"
	topo__install_traps

	say "Building a small network out of namespaces"
	cat <<EOF
    client ($TOPO_CLIENT4, $TOPO_CLIENT6)
       |
     node   <- Sluice runs here: XDP on every veth of this namespace
     / | \\
   be1 be2 be3   ($(topo__be_addr4 be1) .. $(topo__be_addr4 be3)), each an echo server on :$TOPO_BE_PORT
                 that tells the client its name

    The client only knows the service address $VIP4:$PORT (and [$VIP6]:$PORT).
    No backend owns that address: Sluice picks one per connection (Maglev),
    rewrites the destination (DNAT), and rewrites replies back so the client
    only ever talks to the VIP. No proxy, no iptables.
EOF
	topo__up || die "could not build the topology"
	note "namespaces: $TOPO_NS_CLIENT, $TOPO_NS_NODE, $(topo__ns be1) .. $(topo__ns be3)"

	say "Loading Sluice and attaching XDP to the node's interfaces"
	lb load || die "load failed"
	for ifname in "${TOPO_NODE_IFS[@]}"; do
		lb attach xdp "$ifname" --fib || die "attach to $ifname failed"
	done
	note "maps pinned under $PIN; XDP does the FIB lookup and redirects"
	note "packets straight to the backend's veth."

	say "Service $VIP4:$PORT/tcp with three backends, weights 1:1:1"
	be_set "$VIP4" 1 1 1 || die "svc set failed"
	be_set "$VIP6" 1 1 1 || die "svc set failed"

	say "30 connections from the client to $VIP4:$PORT"
	note "each connection asks 'whoami'; the client's peer is always the VIP"
	client tcp "$VIP4" $PORT -n 30 --show --table
	note "Maglev hashes each connection's 5-tuple onto a 16381-slot table in"
	note "which every backend owns a third of the slots; 30 samples are noisy."
	say "300 more connections: each backend gets about a third"
	client tcp "$VIP4" $PORT -n 300 --table

	say "The same over IPv6, to [$VIP6]:$PORT"
	client tcp "$VIP6" $PORT -n 10 --show --table

	say "What the datapath counted"
	lb stats
	lb svc get "$VIP4:$PORT/tcp"

	say "Canary: weights 8:1:1 (be1 gets 80% of new connections)"
	be_set "$VIP4" 8 1 1 || die "svc set failed"
	note "the new Maglev table is built in userspace and swapped in with one"
	note "map update: every packet sees the old set or the new one, never a mix."
	client tcp "$VIP4" $PORT -n 30 --show --table
	say "300 more connections: about 80/10/10"
	client tcp "$VIP4" $PORT -n 300 --table
	note "connections opened before the change keep their backend: conntrack"
	note "entries, not the Maglev table, decide for established flows."

	say "Per-backend counters after the canary"
	lb svc get "$VIP4:$PORT/tcp"

	say "A service without backends is refused at once, not left to time out"
	lb svc set "$VIP4:81/tcp"
	client tcp "$VIP4" 81 --refused -n 1
	note "Sluice answered the SYN with a RST from XDP (and UDP gets ICMP port unreachable)."

	if [ "$DEMO_RC" -eq 0 ]; then
		say "Done: cleaning up namespaces, servers and pins"
	else
		say "Done, but some check above failed (see 'error:' lines); cleaning up"
	fi
	return "$DEMO_RC"
}

main "$@"
