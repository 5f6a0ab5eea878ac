#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_snat.sh - end-to-end source NAT and drop-when-empty through real
# sockets.
#
# Contract: for each hook (XDP native with FIB redirect, then tc) it builds
# the topology of scripts/lib/topology.sh with one backend (client -> node
# running the LB -> be1), where be1 has a route to the node's client-side
# address only, not to the client's network, as a backend on another node
# would. The services are NodePort-like: their VIP is that node address.
# A peer server in be1 answers every TCP connection and UDP datagram with
# the address:port it sees. Checked over IPv4 and IPv6: without the SNAT
# flag a TCP connection through the service fails (the backend cannot
# answer the client); with it TCP and UDP work, the client sees the VIP as
# its peer, and the backend sees the node address with a port from
# 61000-65535. A service without backends refuses TCP (RST) without the
# drop-empty flag, and with it the SYN goes unanswered and the
# no_local_backend drop counter grows. be1 connecting to a service whose
# backend is be1 itself (no flag: hairpin) sees the VIP at both ends. Last, meshd started on the node's
# interfaces sets their accept_local and exports the snat_rev map's
# entries and capacity. Prints one PASS/FAIL line per
# scenario, exits non-zero if any failed; namespaces, servers and pins go
# on every exit path. Needs root, lbtool and meshd in SLUICE_BUILD (build/).
# Usage: test_snat.sh [xdp|tc ...]   (default: both)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2034 # read by topology.sh
TOPO_PREFIX=snat
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck disable=SC2034 # read by topology.sh
TOPO_BACKENDS=(be1)
TOPO_NODE_IFS=(to-client to-be1)

BUILD=${SLUICE_BUILD:-$ROOT/build}
LBTOOL=$BUILD/tests/tools/lbtool
TOPO_LBTOOL=$LBTOOL
PIN=/sys/fs/bpf/sluice-e2e-$TOPO_ID
NODE4=10.10.0.1 # the node's client-side addresses: the services' VIPs
NODE6=fd00:10::1
SVC_PORT=80
EMPTY_PORT=81
HAIRPIN_PORT=82
PEER_PORT=9090
FAILED=0

topo_on_cleanup() {
	[ -d "$PIN-meshd" ] && rm -rf "$PIN-meshd"
	[ -d "$PIN" ] || return 0
	"$LBTOOL" --pin "$PIN" unpin 2>/dev/null || rm -rf "$PIN"
}

lb() { topo__node "$LBTOOL" --pin "$PIN" "$@"; }

scenario() {
	local name=$1 rc
	shift
	"$@" 2>&1 | sed 's/^/    /'
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 0 ]; then
		printf 'PASS: e2e/%s\n' "$name"
	else
		printf 'FAIL: e2e/%s\n' "$name"
		FAILED=$((FAILED + 1))
	fi
}

hostport() { case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac; }
node_of() { if [ "$1" = v4 ]; then echo $NODE4; else echo $NODE6; fi; }

# The peer server (be1) and the probing client, both python3 stdlib.
write_peer_py() {
	cat >"$TOPO_TMP/peer.py" <<'EOF'
import socket, sys, threading

def serve(port):
    def tcp(fam):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
        s.listen(64)
        while True:
            c, a = s.accept()
            c.sendall(("%s %d\n" % (a[0], a[1])).encode())
            c.close()
    def udp(fam):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", port))
        while True:
            _, a = s.recvfrom(2048)
            s.sendto(("%s %d\n" % (a[0], a[1])).encode(), a)
    ts = [threading.Thread(target=f, args=(fam,), daemon=True)
          for f in (tcp, udp) for fam in (socket.AF_INET, socket.AF_INET6)]
    for t in ts:
        t.start()
    open(sys.argv[3], "w").close()
    for t in ts:
        t.join()

def probe(proto, addr, port, timeout):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    if proto == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((addr, port))
        peer = s.getpeername()
        line = s.makefile().readline().strip()
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(b"who", (addr, port))
        data, peer = s.recvfrom(2048)
        line = data.decode().strip()
    if peer[0] != addr or peer[1] != port:
        print("peer is %s:%d, expected the VIP %s:%d" % (peer[0], peer[1], addr, port))
        sys.exit(1)
    print(line)

if sys.argv[1] == "serve":
    serve(int(sys.argv[2]))
else:
    try:
        probe(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    except (OSError, socket.timeout) as e:
        print("error: %s" % e)
        sys.exit(3)
EOF
}

start_peer() {
	local i
	nsenter --net="/var/run/netns/$(topo__ns be1)" python3 "$TOPO_TMP/peer.py" serve \
		$PEER_PORT "$TOPO_TMP/peer.ready" >"$TOPO_TMP/peer.log" 2>&1 &
	TOPO_PIDS+=($!)
	for ((i = 0; i < 100; i++)); do
		[ -e "$TOPO_TMP/peer.ready" ] && return 0
		sleep 0.05
	done
	echo "peer server did not start: $(cat "$TOPO_TMP/peer.log")"
	return 1
}

# be1 reaches the node's client-side address, nothing of the client.
backend_routes() {
	local ns
	ns=$(topo__ns be1)
	ip -n "$ns" route del 10.10.0.0/16 &&
		ip -n "$ns" -6 route del fd00:10::/32 &&
		ip -n "$ns" route add $NODE4/32 via 10.10.1.1 &&
		ip -n "$ns" -6 route add $NODE6/128 via fd00:10:1::1
}

probe() { topo__client python3 "$TOPO_TMP/peer.py" "$@"; }

setup_lb() {
	local mode=$1 fam ifname proto
	lb load >/dev/null || return 1
	for ifname in "${TOPO_NODE_IFS[@]}"; do
		# what meshd sets on its interfaces: the SNATed packets carry the
		# node's own address as source through the kernel's forwarding
		topo__sysctl "$TOPO_NS_NODE" "net.ipv4.conf.$ifname.accept_local=1" || return 1
		if [ "$mode" = xdp ]; then
			lb attach xdp "$ifname" --fib || return 1
		else
			lb attach tc "$ifname" || return 1
		fi
	done
	for fam in v4 v6; do
		for proto in tcp udp; do
			lb svc set "$(hostport "$(node_of $fam)" $SVC_PORT)/$proto" \
				"$(hostport "$(if [ $fam = v4 ]; then topo__be_addr4 be1; else
					topo__be_addr6 be1; fi)" $PEER_PORT)" >/dev/null || return 1
		done
		lb svc set "$(hostport "$(node_of $fam)" $EMPTY_PORT)/tcp" >/dev/null || return 1
		# no flags: only be1 itself uses it (hairpin)
		lb svc set "$(hostport "$(node_of $fam)" $HAIRPIN_PORT)/tcp" \
			"$(hostport "$(if [ $fam = v4 ]; then topo__be_addr4 be1; else
				topo__be_addr6 be1; fi)" $PEER_PORT)" >/dev/null || return 1
	done
}

teardown_lb() {
	local ifname
	for ifname in "${TOPO_NODE_IFS[@]}"; do
		lb detach "$1" "$ifname" >/dev/null 2>&1
	done
	lb unpin >/dev/null 2>&1
}

set_flags() {
	local fam=$1 port=$2 proto=$3
	shift 3
	lb svc flags "$(hostport "$(node_of "$fam")" "$port")/$proto" "$@" >/dev/null
}

check_no_snat_fails() {
	local fam=$1 out
	out=$(probe tcp "$(node_of "$fam")" $SVC_PORT 1)
	if [ $? -ne 3 ]; then
		echo "without SNAT the backend answered: $out"
		return 1
	fi
	echo "without SNAT: $out (as expected)"
}

check_snat() {
	local fam=$1 proto=$2 out addr port
	set_flags "$fam" $SVC_PORT "$proto" snat || return 1
	out=$(probe "$proto" "$(node_of "$fam")" $SVC_PORT 3) || {
		echo "$proto with SNAT failed: $out"
		return 1
	}
	read -r addr port <<<"$out"
	if [ "$addr" != "$(node_of "$fam")" ] || [ "$port" -lt 61000 ] || [ "$port" -gt 65535 ]; then
		echo "backend saw $addr:$port, expected $(node_of "$fam"):61000-65535"
		return 1
	fi
	echo "backend saw $addr:$port"
}

# be1 connects to a service whose only backend is be1 itself: it must
# see the VIP as its peer at both ends (the hook turns the packets around
# on be1's own veth).
check_hairpin() {
	local fam=$1 out addr port
	out=$(topo__in "$(topo__ns be1)" python3 "$TOPO_TMP/peer.py" tcp "$(node_of "$fam")" \
		$HAIRPIN_PORT 3) || {
		echo "hairpin connection failed: $out"
		return 1
	}
	read -r addr port <<<"$out"
	if [ "$addr" != "$(node_of "$fam")" ] || [ "$port" -lt 61000 ]; then
		echo "be1 saw itself connect from $addr:$port, expected $(node_of "$fam"):61000-65535"
		return 1
	fi
	echo "be1 saw $addr:$port"
}

drops_no_local() { lb stats | awk '$1 == "no_local_backend" { print $2 }'; }

# drop_empty_one FAM: refused without the flag, unanswered with it.
drop_empty_one() {
	local fam=$1 out rc
	topo__client timeout 5 python3 "$TOPO_ECHO" tcp "$(node_of "$fam")" $EMPTY_PORT \
		--refused -n 1 || {
		echo "$fam without drop-empty: not refused"
		return 1
	}
	set_flags "$fam" $EMPTY_PORT tcp drop-empty || return 1
	out=$(probe tcp "$(node_of "$fam")" $EMPTY_PORT 1.2)
	rc=$?
	case $out in *timed\ out*) ;; *)
		echo "$fam with drop-empty: expected a timeout, got (rc $rc): $out"
		return 1
		;;
	esac
}

# Both families; the counter (one `lbtool stats` each side: an object
# load apiece) must grow by the SYNs sent, at least one per family.
check_drop_empty() {
	local before after
	before=$(drops_no_local)
	drop_empty_one v4 || return 1
	drop_empty_one v6 || return 1
	after=$(drops_no_local)
	if [ "$after" -lt $((before + 2)) ]; then
		echo "no_local_backend drops did not grow by 2 or more ($before -> $after)"
		return 1
	fi
	echo "SYNs unanswered; no_local_backend drops $before -> $after"
}

run_mode() {
	local mode=$1 fam proto
	setup_lb "$mode" || {
		echo "FAIL: e2e/snat_${mode}_setup"
		FAILED=$((FAILED + 1))
		teardown_lb "$mode"
		return
	}
	for fam in v4 v6; do
		scenario "snat_${mode}_${fam}_without_flag_fails" check_no_snat_fails $fam
		for proto in tcp udp; do
			scenario "snat_${mode}_${fam}_${proto}" check_snat $fam $proto
		done
		scenario "snat_${mode}_${fam}_hairpin" check_hairpin $fam
	done
	scenario "snat_${mode}_drop_empty" check_drop_empty
	teardown_lb "$mode"
}

# meshd sets accept_local on the interfaces it attaches to.
check_meshd_accept_local() {
	local ifname pid i out want rc=0 dir=$TOPO_TMP/meshd
	mkdir -p "$dir"
	for ifname in "${TOPO_NODE_IFS[@]}"; do
		topo__sysctl "$TOPO_NS_NODE" "net.ipv4.conf.$ifname.accept_local=0" || return 1
	done
	nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$BUILD/meshd" --interfaces 'to-*' \
		--xdp-mode off --bpffs "$PIN-meshd" --state "$dir/state.json" \
		--socket "$dir/sock" >"$dir/log" 2>&1 &
	pid=$!
	TOPO_PIDS+=("$pid")
	for ((i = 0; i < 250; i++)); do
		grep -q 'meshd ready' "$dir/log" && break
		sleep 0.02
	done
	for ifname in "${TOPO_NODE_IFS[@]}"; do
		if [ "$(topo__node sysctl -n "net.ipv4.conf.$ifname.accept_local")" != 1 ]; then
			echo "$ifname: accept_local not set"
			rc=1
		fi
	done
	grep accept_local "$dir/log"
	# and exports the SNAT ports in use (none here) against the capacity
	out=$(topo__node curl -s --max-time 5 http://127.0.0.1:9465/metrics)
	for want in 'sluice_map_entries{map="snat_rev"} 0' \
		'sluice_map_capacity{map="snat_rev"} 65536'; do
		if ! grep -qF "$want" <<<"$out"; then
			echo "/metrics lacks: $want"
			rc=1
		fi
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -rf "$PIN-meshd"
	return $rc
}

main() {
	local modes=("$@") mode
	[ ${#modes[@]} -eq 0 ] && modes=(xdp tc)
	if [ ! -x "$LBTOOL" ]; then
		echo "FAIL: e2e/snat: $LBTOOL missing (make)"
		exit 1
	fi
	topo__install_traps
	topo__up || {
		echo "FAIL: e2e/snat_topology"
		exit 1
	}
	write_peer_py
	if ! start_peer || ! backend_routes; then
		echo "FAIL: e2e/snat_topology"
		exit 1
	fi
	for mode in "${modes[@]}"; do
		run_mode "$mode"
	done
	scenario snat_meshd_accept_local check_meshd_accept_local
	[ "$FAILED" -eq 0 ]
}

main "$@"
