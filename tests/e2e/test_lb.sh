#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_lb.sh - end-to-end load balancing through real sockets.
#
# Contract: for each hook (XDP native with FIB redirect, then tc) it builds
# the topology of scripts/lib/topology.sh (client -> node running the LB ->
# be1..be3 echo servers), pins fresh maps, attaches the programs to every
# node-side veth and checks, over IPv4 and IPv6: 300 TCP connections
# spread over all backends (each >= 15%) with every byte echoed and the VIP
# as the peer; one 10 MiB transfer intact; 300 UDP flows likewise, and IPv4
# UDP with checksum 0 still accepted by the backends; removing a backend
# keeps established connections to the others and new flows avoid it;
# draining backends (weight 0) keeps every established connection on its
# backend while new flows avoid them; a service without backends refuses
# TCP (RST) and UDP (ICMP) in < 1 s.
# Prints one "PASS: e2e/<name>" or "FAIL: e2e/<name>" per scenario and exits
# non-zero if any failed. Namespaces, servers and pins are removed on exit,
# failure or interruption. Needs root and build/tests/tools/lbtool.
# Usage: test_lb.sh [xdp|tc ...]   (default: both)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"

LBTOOL=$TOPO_LBTOOL
PIN=/sys/fs/bpf/sluice-e2e-$TOPO_ID
SVC_PORT=80     # services balance this port to $TOPO_BE_PORT
REFUSE_PORT=81  # services without backends
NTCP=300
NUDP=300
MIN_SHARE=0.15
FAILED=0

# Every client run is bounded, so a broken datapath fails instead of hanging.
# stretched under make test-kernels (SLUICE_TEST_TIME_SCALE, tests/lib/test.h)
CLIENT_TIMEOUT=$((60 * ${SLUICE_TEST_TIME_SCALE:-1}))

topo_on_cleanup() {
	[ -d "$PIN" ] || return 0
	"$LBTOOL" --pin "$PIN" unpin 2>/dev/null || rm -rf "$PIN"
}

lb() { topo__node "$LBTOOL" --pin "$PIN" "$@"; }
client() { topo__client timeout "$CLIENT_TIMEOUT" python3 "$TOPO_ECHO" "$@"; }

# scenario NAME CMD...: runs CMD with its output indented, prints PASS/FAIL.
scenario() {
	local name=$1 t0 rc
	shift
	t0=$EPOCHREALTIME
	"$@" 2>&1 | sed 's/^/    /'
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 0 ]; then
		printf 'PASS: e2e/%s (%ss)\n' "$name" \
			"$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
	else
		printf 'FAIL: e2e/%s\n' "$name"
		FAILED=$((FAILED + 1))
	fi
}

vip_of() { if [ "$1" = v4 ]; then echo "$TOPO_VIP4"; else echo "$TOPO_VIP6"; fi; }
# "10.96.0.10:80" / "[fd00:96::10]:80"
hostport() { case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac; }
be_addr() {
	if [ "$1" = v4 ]; then topo__be_addr4 "$2"; else topo__be_addr6 "$2"; fi
}
backends_of() {
	local fam=$1 be
	shift
	for be in "$@"; do
		hostport "$(be_addr "$fam" "$be")" "$TOPO_BE_PORT"
	done
}

setup_lb() {
	local mode=$1 fam vip ifname
	lb load >/dev/null || return 1
	for ifname in "${TOPO_NODE_IFS[@]}"; do
		if [ "$mode" = xdp ]; then
			lb attach xdp "$ifname" --fib || return 1
		else
			lb attach tc "$ifname" || return 1
		fi
	done
	for fam in v4 v6; do
		vip=$(vip_of $fam)
		for proto in tcp udp; do
			# shellcheck disable=SC2046
			lb svc set "$(hostport "$vip" $SVC_PORT)/$proto" \
				$(backends_of $fam "${TOPO_BACKENDS[@]}") >/dev/null || return 1
			lb svc set "$(hostport "$vip" $REFUSE_PORT)/$proto" >/dev/null || return 1
		done
	done
}

check_tcp_spread() {
	client tcp "$1" $SVC_PORT -n $NTCP --bytes 2000 \
		--expect be1,be2,be3 --min-share $MIN_SHARE
}

check_udp_spread() {
	client udp "$1" $SVC_PORT -n $NUDP --bytes 1000 \
		--expect be1,be2,be3 --min-share $MIN_SHARE
}

# IPv4 UDP may carry checksum 0 ("none"); the NAT must keep it 0, or the
# backend drops the datagram as corrupt.
check_udp_zero_csum() {
	client udp "$TOPO_VIP4" $SVC_PORT -n 50 --no-check --expect be1,be2,be3
}

check_bulk() { client bulk "$1" $SVC_PORT --mib 10; }

check_refused() {
	client tcp "$1" $REFUSE_PORT --refused -n 5 &&
		client udp "$1" $REFUSE_PORT --refused -n 5
}

# hold_start FAM TAG [hold options]: opens 30 connections to the TCP
# service in the background; sets HOLD_PID, HOLD_GO. Fails if they do not
# open.
hold_start() {
	local fam=$1 tag=$2 ready i
	shift 2
	ready=$TOPO_TMP/hold-$tag.ready
	HOLD_GO=$TOPO_TMP/hold-$tag.go
	# nsenter directly, not through a function, so $! is the client's pid
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" timeout "$CLIENT_TIMEOUT" \
		python3 "$TOPO_ECHO" hold "$(vip_of "$fam")" $SVC_PORT -n 30 \
		--ready "$ready" --go "$HOLD_GO" --wait 45 "$@" &
	HOLD_PID=$!
	TOPO_PIDS+=("$HOLD_PID")
	for ((i = 0; i < 200; i++)); do
		[ -e "$ready" ] && break
		kill -0 "$HOLD_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -e "$ready" ]; then
		echo "held connections did not open"
		wait "$HOLD_PID"
		return 1
	fi
	echo "held connections: $(cat "$ready")"
}

# hold_check: lets the held connections verify themselves.
hold_check() {
	touch "$HOLD_GO"
	wait "$HOLD_PID"
}

# svc_tcp FAM BACKEND[@W]...: sets the TCP service's backend set.
svc_tcp() {
	local fam=$1 be out=()
	shift
	for be in "$@"; do
		out+=("$(hostport "$(be_addr "$fam" "${be%@*}")" "$TOPO_BE_PORT")${be#"${be%@*}"}")
	done
	lb svc set "$(hostport "$(vip_of "$fam")" $SVC_PORT)/tcp" "${out[@]}"
}

# Drop be3 from the service while connections are open: new flows avoid
# it, held connections to be1/be2 keep echoing (the held ones to be3 are
# only reported). Puts be3 back for whatever runs next.
check_remove_backend() {
	local fam=$1 rc=0
	hold_start "$fam" "remove-$fam" --removed be3 || return 1
	svc_tcp "$fam" be1 be2 || rc=1
	client tcp "$(vip_of "$fam")" $SVC_PORT -n 100 --expect be1,be2 \
		--min-share 0.25 --avoid be3 || rc=1
	hold_check || rc=1
	svc_tcp "$fam" be1 be2 be3 >/dev/null || rc=1
	return $rc
}

# Drain be2 and be3 (weight 0) while connections are open: every Maglev
# slot now names be1, so the held connections to be2/be3 survive only if
# conntrack, not the table, decides for established flows. New flows all
# go to be1.
check_drain() {
	local fam=$1 rc=0
	hold_start "$fam" "drain-$fam" || return 1
	svc_tcp "$fam" be1@1 be2@0 be3@0 || rc=1
	client tcp "$(vip_of "$fam")" $SVC_PORT -n 50 --expect be1 --avoid be2,be3 || rc=1
	hold_check || rc=1
	svc_tcp "$fam" be1 be2 be3 >/dev/null || rc=1
	return $rc
}

# The datapath, not the kernel, did the work: flows were balanced and
# replies reverse-NATed (and redirected, for XDP), with no drops.
check_counters() {
	local mode=$1 out
	out=$(lb stats) || return 1
	# every TCP and UDP flow of both families went through the LB
	echo "$out" | awk -v mode="$mode" -v min_new=$((2 * (NTCP + NUDP))) '
		/^counters:/ { sect = "c"; next }
		/^drops:/ { sect = "d"; next }
		sect == "c" && NF == 2 { c[$1] = $2 }
		sect == "d" && NF == 2 && $2 > 0 { print "unexpected drops: " $1 " " $2; bad = 1 }
		END {
			printf "lb_new %d, lb_established %d, revnat %d, refused %d, fib_redirect %d, fib_pass %d\n",
				c["lb_new"], c["lb_established"], c["revnat"], c["refused"],
				c["fib_redirect"], c["fib_pass"]
			if (c["lb_new"] < min_new) { print "too few new flows balanced"; bad = 1 }
			if (c["revnat"] == 0 || c["refused"] == 0) { print "no reverse NAT or refusal counted"; bad = 1 }
			if (mode == "xdp" && c["fib_redirect"] == 0) { print "XDP never redirected"; bad = 1 }
			exit bad
		}'
}

run_mode() {
	local mode=$1 fam vip
	echo "# $mode: building topology and attaching $mode to ${TOPO_NODE_IFS[*]}"
	if ! topo__up || ! topo__check_direct || ! setup_lb "$mode"; then
		echo "FAIL: e2e/${mode}_setup"
		FAILED=$((FAILED + 1))
		topo__down
		return
	fi
	for fam in v4 v6; do
		vip=$(vip_of $fam)
		scenario "${mode}_${fam}_tcp_300_spread" check_tcp_spread "$vip"
		scenario "${mode}_${fam}_tcp_10mib" check_bulk "$vip"
		scenario "${mode}_${fam}_udp_300_spread" check_udp_spread "$vip"
		[ $fam = v4 ] && scenario "${mode}_v4_udp_zero_checksum" check_udp_zero_csum
		scenario "${mode}_${fam}_no_backends_refused" check_refused "$vip"
		scenario "${mode}_${fam}_remove_backend" check_remove_backend "$fam"
		scenario "${mode}_${fam}_drain_keeps_flows" check_drain "$fam"
	done
	scenario "${mode}_counters" check_counters "$mode"
	topo__down
}

main() {
	local modes=("$@") t0
	[ ${#modes[@]} -gt 0 ] || modes=(xdp tc)
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL: e2e/setup (needs root)"
		exit 1
	fi
	if [ ! -x "$LBTOOL" ]; then
		echo "FAIL: e2e/setup ($LBTOOL not built: run make)"
		exit 1
	fi
	if ! mountpoint -q /sys/fs/bpf; then
		mount -t bpf bpf /sys/fs/bpf || {
			echo "FAIL: e2e/setup (cannot mount bpffs)"
			exit 1
		}
	fi
	topo__install_traps
	t0=$SECONDS
	for mode in "${modes[@]}"; do
		case $mode in
		xdp | tc) run_mode "$mode" ;;
		*)
			echo "usage: $0 [xdp|tc ...]" >&2
			exit 2
			;;
		esac
	done
	echo "# e2e: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
