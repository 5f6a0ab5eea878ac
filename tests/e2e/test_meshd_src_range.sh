#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_src_range.sh - source ranges (#13) end to end: meshd with XDP
# (native) on the node's veths, two client namespaces with different
# source addresses, real TCP connections to the VIP.
#
# Contract: builds the topology of scripts/lib/topology.sh plus a second
# client namespace (client2, 10.10.200.2, behind the node's to-client2);
# build/meshd runs in the node namespace on 'to-*' with its own pin dir,
# state file and socket, metrics, telemetry and socket LB off (no cgroup is
# touched). One service, VIP:8000/tcp over be1. Scenarios, one
# "PASS: e2e/meshd_src_range_<name>" or "FAIL: e2e/meshd_src_range_<name>: <reason>" each:
#   inside_outside  added with --source-ranges 10.10.0.2/32: the client
#                   connects; client2's connect times out and its SYNs are
#                   counted as drop reason source_range (status -o json and
#                   the plain table); get shows the range, -o json lists it,
#                   the state file holds it, status counts the trie entry,
#                   meshd's log names the ranges
#   set             service set --source-ranges 10.10.200.0/24: client2
#                   connects, the client now times out; --source-ranges "":
#                   both connect, get says "any client"
#   established     a connection open from the client survives a set that
#                   leaves the client outside (only new flows are checked)
#   restart         SIGTERM and start: the maps read back (ranges included)
#                   equal the state file, so nothing is rewritten; the
#                   ranges are still enforced
#   rejected        bad ranges are refused by meshctl and by the API (meshd),
#                   naming the range; the service is unchanged
# meshd, pins, namespaces and temp files are removed on exit, failure or
# interruption. Needs root, nsenter, python3. About 20 s.
# Usage: test_meshd_src_range.sh [SCENARIO...]   (default: all, in order)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-msr}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

BUILD=${SLUICE_BUILD:-$ROOT/build}
MESHD=$BUILD/meshd
MESHCTL=$BUILD/meshctl
TOPO_LBTOOL=$BUILD/tests/tools/lbtool
PIN=/sys/fs/bpf/sluice-sr$$
PATTERN='to-*'
START_TIMEOUT=20
SVC=$TOPO_VIP4:8000/tcp
BE1=$(topo__be_addr4 be1):$TOPO_BE_PORT
NS_CLIENT2=$TOPO_ID-client2
CLIENT2=10.10.200.2

WORK=
SOCK=
STATE=
LOG=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=("$TOPO_LBTOOL")
NEEDS_CMDS=(nsenter python3 ethtool)
SCENARIO_PREFIX=meshd_src_range_
MESHD_FLAGS=(--metrics off --telemetry off --socket-lb off)

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

mctl() { "$MESHCTL" -s "$SOCK" "$@"; }

# The lib's cleanup, then client2 (its veth goes with the namespace).
eval "$(declare -f topo_on_cleanup | sed '1s/topo_on_cleanup/meshd_on_cleanup/')"
topo_on_cleanup() {
	meshd_on_cleanup
	ip netns del "$NS_CLIENT2" 2>/dev/null
	return 0
}

client2_up() {
	topo__ns_add "$NS_CLIENT2" || return 1
	ip -n "$TOPO_NS_NODE" link add to-client2 type veth peer name eth0 netns "$NS_CLIENT2" ||
		return 1
	ip -n "$TOPO_NS_NODE" addr add 10.10.200.1/24 dev to-client2
	ip -n "$TOPO_NS_NODE" link set to-client2 up
	topo__sysctl "$TOPO_NS_NODE" net.ipv4.conf.to-client2.rp_filter=0 || return 1
	ip -n "$NS_CLIENT2" addr add "$CLIENT2/24" dev eth0
	ip -n "$NS_CLIENT2" link set eth0 up
	topo__nic_setup "$NS_CLIENT2" eth0 || return 1
	topo__in "$NS_CLIENT2" "$TOPO_LBTOOL" xdp-pass eth0 || return 1
	# the backends route 10.10.0.0/16 back through the node already
	ip -n "$NS_CLIENT2" route add 10.96.0.0/16 via 10.10.200.1
}

# connects NS: one echo round trip through the VIP answered by be1.
connects() {
	nsenter --net="/var/run/netns/$1" python3 "$TOPO_ECHO" tcp "$TOPO_VIP4" 8000 -n 1 \
		--expect be1 >/dev/null 2>&1
}

# times_out NS: connect() to the VIP gets no answer within 1.5 s (not a
# refusal: dropped).
times_out() {
	nsenter --net="/var/run/netns/$1" python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(1.5)
try:
    s.connect((sys.argv[1], 8000))
except socket.timeout:
    sys.exit(0)
except OSError as e:
    print("connect: %s" % e)
    sys.exit(1)
print("connected")
sys.exit(1)' "$TOPO_VIP4"
}

drops() {
	mctl -o json status | python3 -c 'import json, sys; print(json.load(sys.stdin)["drops"]["source_range"])'
}

jget() {
	mctl -o json service get "$SVC" | python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

expect() {
	[ "$2" = "$3" ] && { log "$1: $2"; return 0; }
	fail "$1: got '$2', expected '$3'"
}

test_inside_outside() {
	local ok=0 before after
	mctl service del "$SVC" >/dev/null 2>&1
	mctl service add "$SVC" "$BE1" --source-ranges "$TOPO_CLIENT4/32" >/dev/null ||
		fail "service add --source-ranges failed" || return 1
	connects "$TOPO_NS_CLIENT" && log "client $TOPO_CLIENT4 (inside) connects" ||
		fail "client inside the range cannot connect" || ok=1
	before=$(drops)
	times_out "$NS_CLIENT2" && log "client2 $CLIENT2 (outside) times out" ||
		fail "client2 outside the range was not dropped" || ok=1
	after=$(drops)
	[ "$after" -gt "$before" ] && log "source_range drops $before -> $after" ||
		fail "source_range drops did not grow ($before -> $after)" || ok=1
	mctl status | grep -Eq '^source_range +[1-9]' && log "status lists source_range" ||
		fail "meshctl status does not list source_range drops" || ok=1
	mctl service get "$SVC" | grep -q "^Ranges:    $TOPO_CLIENT4/32\$" ||
		fail "service get does not show the range" || ok=1
	expect "get -o json sourceRanges" "$(jget 'd["sourceRanges"]')" "['$TOPO_CLIENT4/32']" || ok=1
	expect "state file" "$(python3 -c "import json; print(json.load(open('$STATE'))['services'][0].get('sourceRanges'))")" \
		"['$TOPO_CLIENT4/32']" || ok=1
	expect "status: src_ranges entries" "$(mctl -o json status | python3 -c 'import json, sys
print([m["entries"] for m in json.load(sys.stdin)["maps"] if m["name"] == "src_ranges"])')" "[1]" || ok=1
	grep -q "service $SVC added: backends .*; source ranges: 1" "$LOG" && log "meshd logged the ranges" ||
		fail "meshd did not log the source ranges" || ok=1
	return $ok
}

test_set() {
	local ok=0
	mctl service set "$SVC" --source-ranges 10.10.200.0/24 >/dev/null ||
		fail "service set --source-ranges failed" || return 1
	connects "$NS_CLIENT2" && log "client2 (now inside) connects" ||
		fail "client2 cannot connect after set" || ok=1
	times_out "$TOPO_NS_CLIENT" && log "client (now outside) times out" ||
		fail "client still connects after set" || ok=1
	mctl service set "$SVC" --source-ranges "" >/dev/null ||
		fail "service set --source-ranges \"\" failed" || return 1
	connects "$NS_CLIENT2" && connects "$TOPO_NS_CLIENT" && log "no ranges: both connect" ||
		fail "without ranges a client cannot connect" || ok=1
	mctl service get "$SVC" | grep -q '^Ranges:    any client$' ||
		fail "service get does not say 'any client'" || ok=1
	expect "get -o json sourceRanges" "$(jget 'd.get("sourceRanges")')" "None" || ok=1
	return $ok
}

test_established() {
	local ok=0 ready=$WORK/hold.ready go=$WORK/hold.go pid
	rm -f "$ready" "$go"
	mctl service set "$SVC" --source-ranges "$TOPO_CLIENT4/32" >/dev/null || return 1
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" python3 "$TOPO_ECHO" hold "$TOPO_VIP4" 8000 \
		-n 3 --ready "$ready" --go "$go" --wait 20 >"$WORK/hold.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		[ -e "$ready" ] && break
		sleep 0.05
	done
	[ -e "$ready" ] || fail "the held connections did not open" || return 1
	mctl service set "$SVC" --source-ranges 10.10.200.0/24 >/dev/null || return 1
	times_out "$TOPO_NS_CLIENT" && log "a new connection from the client is dropped" ||
		fail "new connection not dropped" || ok=1
	touch "$go"
	wait "$pid" && log "3 connections opened before the change still echo" ||
		fail "held connections broke: $(tail -n 1 "$WORK/hold.out")" || ok=1
	return $ok
}

test_restart() {
	local ok=0
	local lines
	mctl service set "$SVC" --source-ranges 10.10.200.0/24 >/dev/null || return 1
	lines=$(wc -l <"$LOG")
	meshd_restart || return 1
	# the maps read back (ranges included) equal the state file: nothing to write
	if tail -n +"$((lines + 1))" "$LOG" | grep -q "reconciled 1 services .*: 0 added, 0 changed"; then
		log "$(grep reconciled "$LOG" | tail -n 1 | cut -d' ' -f3-)"
	else
		fail "the reconcile saw a change: $(grep reconciled "$LOG" | tail -n 1)"
		ok=1
	fi
	expect "after restart" "$(jget 'd["sourceRanges"]')" "['10.10.200.0/24']" || ok=1
	connects "$NS_CLIENT2" && log "client2 connects" || fail "client2 cannot connect" || ok=1
	times_out "$TOPO_NS_CLIENT" && log "client still dropped" ||
		fail "client not dropped after restart" || ok=1
	return $ok
}

test_rejected() {
	local ok=0 out
	out=$(mctl service set "$SVC" --source-ranges 10.10.0.2/8 2>&1) &&
		fail "host bits accepted" || ok=$ok
	grep -q 'host bits set (the range is 10.0.0.0/8)' <<<"$out" && log "meshctl: $out" ||
		fail "meshctl error: $out" || ok=1
	out=$(mctl service set "$SVC" --source-ranges fd00::/64 2>&1) && fail "v6 range accepted"
	grep -q "not of the VIP's family" <<<"$out" && log "meshctl: $out" || fail "meshctl: $out" || ok=1
	# past meshctl: meshd checks the desired-state rules itself
	out=$(python3 - "$SOCK" <<'PY' 2>&1
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = {"op": "service.set", "service": "10.96.0.10:8000/tcp",
       "sourceRanges": ["10.0.0.0/8", "10.0.0.0/33"]}
s.sendall((json.dumps(req) + "\n").encode())
print(s.makefile().readline().strip())
PY
)
	grep -q 'sourceRanges\[1\]: \\"10.0.0.0/33\\": prefix out of range 0-32' <<<"$out" &&
		log "meshd: $out" || fail "meshd answer: $out" || ok=1
	expect "unchanged" "$(jget 'd["sourceRanges"]')" "['10.10.200.0/24']" || ok=1
	return $ok
}

ALL=(inside_outside set established restart rejected)

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-meshd-src-range.XXXXXX") || exit 1
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	echo "# topology $TOPO_ID (+ $NS_CLIENT2), pins $PIN"
	if ! topo__up || ! client2_up; then
		echo "FAIL: e2e/meshd_src_range_setup: topology did not come up"
		exit 1
	fi
	if ! meshd_start; then
		echo "FAIL: e2e/meshd_src_range_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e meshd src_range: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
