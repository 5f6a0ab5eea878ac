#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_ct_flood.sh - conntrack under random-source floods: idle connections
# where the server speaks first survive a SYN flood and an ACK flood, and
# the unconfirmed table drains after them.
#
# Serial: hping3 floods take both CPUs; the flood's state must drain within 45 s
#
# Contract: builds the topology of scripts/lib/topology.sh (client -> node
# -> be1..be3) and runs build/meshd in the node namespace on 'to-*' (XDP)
# with its own pin dir, state file and socket and --metrics inside the node
# namespace. Each backend runs tests/e2e/push.py servers on 8091 and 8092
# (services VIP:8091/tcp and VIP:8092/tcp over the three backends): they
# hold every connection silent until told to push one line. hping3 floods
# only the VIP, from inside the client namespace; its random sources have
# no route back from the backends, so nothing leaves the namespaces.
# Scenarios, one "PASS: e2e/ct_flood_<name>" or "FAIL: ..." line each:
#   syn_flood   N idle connections to VIP:8091, confirmed (STATE column of
#               `meshctl conntrack list`); a random-source SYN flood for
#               FLOOD_S seconds; then every server pushes: all N lines
#               reach the client; conntrack holds only real flows
#   ack_flood   the same with VIP:8092 and a random-source ACK flood (it
#               is picked up in ct_new only: the backends answer RSTs,
#               which confirm nothing)
#   drain       meshd's sweep empties ct_new within 45 s of the floods
#               (sluice_map_entries{map="ct_new"} 0)
#   flush       `meshctl conntrack flush` empties both maps
# Everything (meshd, servers, floods, pins, namespaces, temp files) is
# removed on exit, failure or interruption. Needs root, bpftool, curl,
# hping3 (scripts/install-deps.sh) and `make`. About a minute on a loaded 2-core machine (half of it setting up).
# Usage: test_ct_flood.sh [SCENARIO...]   (default: all, in order)
# MESHD / MESHCTL may name other builds (to compare with an older one);
# FLOOD_S (default 3) and FLOOD_PROCS (parallel hping3s, default 1) size
# the floods.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-ctf}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

MESHD=${MESHD:-$ROOT/build/meshd}
MESHCTL=${MESHCTL:-$ROOT/build/meshctl}
PUSH=$ROOT/tests/e2e/push.py
PIN=/sys/fs/bpf/sluice-ctf$$
PATTERN='to-*'
MPORT=19466 # inside the node namespace: nothing else listens there
START_TIMEOUT=20
N=10        # idle server-push connections per flood
FLOOD_S=${FLOOD_S:-3}
FLOOD_PROCS=${FLOOD_PROCS:-1} # parallel hping3 processes

WORK=
SOCK=
STATE=
LOG=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=()
NEEDS_CMDS=(bpftool nsenter curl hping3 timeout)
SCENARIO_PREFIX=ct_flood_
MESHD_FLAGS=(--metrics "127.0.0.1:$MPORT" --telemetry off --socket-lb off --redirect off)

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

in_node() { nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$@"; }
in_client() { nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" "$@"; }
mctl() { "$MESHCTL" -s "$SOCK" "$@"; }

# scrape: a fresh /metrics into $WORK/scrape; metric SERIES: its value in
# the last scrape, "none" if absent
scrape() { in_node curl -sS --max-time 5 "http://127.0.0.1:$MPORT/metrics" >"$WORK/scrape"; }
metric() {
	awk -v s="$1" 'index($0, s " ") == 1 { print $2; f = 1 } END { if (!f) print "none" }' \
		"$WORK/scrape"
}

entries() { metric "sluice_map_entries{map=\"$1\"}"; }
# a counter an older meshd does not have reads as 0
counter() {
	local v
	v=$(metric "sluice_datapath_packets_total{reason=\"$1\"}")
	[ "$v" = none ] && v=0
	echo "$v"
}

# start_push PORT: a push server on PORT in every backend, told by $WORK/go.PORT
start_push() {
	local be ns
	for be in "${TOPO_BACKENDS[@]}"; do
		ns=$(topo__ns "$be")
		nsenter --net="/var/run/netns/$ns" python3 "$PUSH" serve --port "$1" \
			--trigger "$WORK/go.$1" --ready "$WORK/ready.$1.$be" >>"$WORK/push.log" 2>&1 &
		BG_PIDS+=($!)
	done
	for be in "${TOPO_BACKENDS[@]}"; do
		for ((i = 0; i < 100; i++)); do
			[ -e "$WORK/ready.$1.$be" ] && break
			sleep 0.05
		done
		[ -e "$WORK/ready.$1.$be" ] || fail "push server $be:$1 did not start" || return 1
	done
}

# flood_push PORT HPING_FLAG WHAT: N idle connections to VIP:PORT, a flood,
# then the servers push; every line must arrive.
flood_push() {
	local port=$1 flag=$2 what=$3 svc=$TOPO_VIP4:$1/tcp ok=0 confirmed cpid
	local new0 est0 nostate0 ct ctn i hpids
	in_client python3 "$PUSH" client "$TOPO_VIP4" "$port" -n "$N" --wait 60 \
		--ready "$WORK/connected.$port" >"$WORK/client.$port" 2>&1 &
	cpid=$!
	BG_PIDS+=("$cpid")
	for ((i = 0; i < 250; i++)); do
		[ -e "$WORK/connected.$port" ] && break
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.02
	done
	[ -e "$WORK/connected.$port" ] ||
		fail "the client did not connect: $(tail -n 1 "$WORK/client.$port")" || return 1
	confirmed=$(mctl conntrack list "$svc" -o json |
		python3 -c 'import json,sys; print(sum(e.get("state") == "confirmed" for e in json.load(sys.stdin)["entries"]))')
	log "$N idle connections to $svc, $confirmed confirmed before the flood"
	[ "$confirmed" = "$N" ] || fail "$confirmed of $N connections confirmed" || ok=1
	mctl conntrack list "$svc" | head -n 3
	scrape
	new0=$(counter lb_new) est0=$(counter lb_established) pickup0=$(counter lb_pickup) conf0=$(counter ct_confirmed)
	hpids=()
	for ((i = 0; i < FLOOD_PROCS; i++)); do
		in_client timeout -s INT "$FLOOD_S" hping3 --rand-source "$flag" -p "$port" \
			--flood -q "$TOPO_VIP4" >"$WORK/hping.$port.$i" 2>&1 &
		hpids+=($!)
		BG_PIDS+=($!)
	done
	wait "${hpids[@]}"
	log "hping3 $flag x$FLOOD_PROCS for ${FLOOD_S}s: $(cat "$WORK"/hping."$port".* | grep 'packets transmitted' | tr '\n' ' ')"
	scrape
	log "datapath during the flood: lb_new +$(($(counter lb_new) - new0)), lb_established +$(($(counter lb_established) - est0)), lb_pickup +$(($(counter lb_pickup) - pickup0)), ct_confirmed +$(($(counter ct_confirmed) - conf0))"
	ct=$(entries conntrack) ctn=$(entries ct_new)
	log "after the flood: conntrack $ct entries, ct_new $ctn"
	touch "$WORK/go.$port"
	wait "$cpid"
	log "$(cat "$WORK/client.$port")"
	grep -q "^received $N of $N" "$WORK/client.$port" ||
		fail "$what: $(head -n 1 "$WORK/client.$port" | tr -d '\n') server pushes arrived" || ok=1
	# the flows of both tests plus a few: never the flood
	[ "$ct" -le $((8 * N)) ] 2>/dev/null ||
		fail "$what: conntrack holds $ct entries after the flood" || ok=1
	return $ok
}

# ------------------------------------------------------------- scenarios

test_syn_flood() {
	ensure_meshd || return 1
	flood_push 8091 -S "SYN flood"
}

test_ack_flood() {
	ensure_meshd || return 1
	flood_push 8092 -A "ACK flood"
}

test_drain() {
	local t0=$SECONDS n
	ensure_meshd || return 1
	while scrape && n=$(entries ct_new) && [ "$n" != 0 ] && [ $((SECONDS - t0)) -lt 45 ]; do
		sleep 0.5
	done
	log "ct_new: $n entries after $((SECONDS - t0)) s"
	grep 'conntrack sweep' "$LOG" | sed 's/^/  meshd: /'
	[ "$n" = 0 ] || fail "ct_new still holds $n entries 45 s after the floods"
}

test_flush() {
	local out c n
	ensure_meshd || return 1
	in_client timeout -s INT 1 hping3 --rand-source -S -p 8091 -i u1000 -q "$TOPO_VIP4" \
		>/dev/null 2>&1
	scrape
	log "before: conntrack $(entries conntrack), ct_new $(entries ct_new)"
	out=$(mctl conntrack flush) || fail "flush failed: $out" || return 1
	log "$out"
	scrape
	c=$(entries conntrack) n=$(entries ct_new)
	log "after: conntrack $c, ct_new $n"
	[ "$c" = 0 ] && [ "$n" = 0 ] || fail "flush left conntrack $c, ct_new $n"
}

# --------------------------------------------------------------- runner

ALL=(syn_flood ack_flood drain flush)

main() {
	local t0 name be port
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-ct-flood.XXXXXX") || exit 1
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	echo "# topology $TOPO_ID, pins $PIN, metrics 127.0.0.1:$MPORT in the node netns"
	if ! topo__up; then
		echo "FAIL: e2e/ct_flood_setup: topology did not come up"
		exit 1
	fi
	# The backends answer the flood's SYNs, and each SYN|ACK retransmit
	# (5 by default, the last ~31 s after the SYN) keeps its unconfirmed
	# REPLY entry alive: one retry keeps the drain within its bound.
	for be in "${TOPO_BACKENDS[@]}"; do
		topo__sysctl "$(topo__ns "$be")" net.ipv4.tcp_synack_retries=1 || exit 1
	done
	if ! meshd_start || ! start_push 8091 || ! start_push 8092; then
		echo "FAIL: e2e/ct_flood_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	for port in 8091 8092; do
		mctl service add "$TOPO_VIP4:$port/tcp" $(for be in "${TOPO_BACKENDS[@]}"; do
			echo "$(topo__be_addr4 "$be"):$port"
		done) >/dev/null || {
			echo "FAIL: e2e/ct_flood_setup: service add $TOPO_VIP4:$port/tcp failed"
			exit 1
		}
	done
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e ct flood: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
