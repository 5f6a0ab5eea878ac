#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_policy.sh - access policy (#15) end to end: meshd with XDP
# (native) on the node's veths, two client namespaces with different
# source addresses, real TCP connections to the VIP. POLICY_XDP_MODE=off
# runs it through the tc program instead (test_meshd_policy_tc.sh), and
# POLICY_SCENARIO_PREFIX renames its scenarios.
#
# Contract: the topology of test_meshd_src_range.sh (client 10.10.0.2,
# client2 10.10.200.2); build/meshd runs in the node namespace on 'to-*'
# with its own pin dir, state file and socket, metrics, telemetry and
# socket LB off. One service, VIP:8000/tcp over be1. Scenarios, one
# "PASS: e2e/meshd_policy_<name>" or "FAIL: e2e/meshd_policy_<name>: <reason>" each:
#   deny_drop     policy set --deny-from client2/32: the client connects,
#                 client2 times out; drop reason policy_deny and the
#                 service's deny_list counter grow; get/list/state file show
#                 it; `meshctl explain` names denyFrom and the entry
#                 client2/32 for client2, allow (no entry) for the client
#   allow_refuse  --allow-from client/32 --deny-action refuse: the client
#                 connects, client2's connect() is refused at once (RST);
#                 not_allowed counted; explain names allowFrom, and the
#                 entry client/32 that lets the client in
#   node          the service's rules removed, `policy node client2/32`:
#                 client2 times out (policy_node_deny), the client connects;
#                 `policy node ""` lets client2 in again
#   cut           3 connections open from the client are cut when a change
#                 denies the client: their conntrack entries go (counted in
#                 policy list's cut.flows) and the next data gets a RST
#   udp           a UDP service VIP:8053/udp over be1 denying client2/32:
#                 with --deny-action refuse client2's datagram gets an ICMP
#                 port unreachable (ECONNREFUSED), with drop no answer; the
#                 client's datagrams are echoed by be1; denials counted;
#                 explain says the same for both clients
#   rejected      overlapping rules refused by meshd naming the rule; the
#                 service is unchanged
#   expanded      rules of 5 prefix lengths: the deny /22 holding client2
#                 is expanded into 4 /24s in policy_hash (8 entries in
#                 all); the client connects, client2 times out, and
#                 explain names the rules' own prefixes (10.10.200.0/22,
#                 10.10.0.0/16)
#   upgrade       meshd restarted on its pins while 3 connections are held
#                 open and client2/32 is denied: the held connections still
#                 echo after it, client2 still times out, the client
#                 connects, and the service's entry is in policy_hash
#                 (explain names it). With SLUICE_OLD_BUILD=DIR the meshd
#                 before the restart is DIR/meshd (a build from before
#                 policy_hash: its pins have none, the service is on the
#                 trie until the new meshd's first apply)
# meshd, pins, namespaces and temp files are removed on exit, failure or
# interruption. Needs root, nsenter, python3. About 20 s.
# Usage: test_meshd_policy.sh [SCENARIO...]   (default: all, in order)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-mpo}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

BUILD=${SLUICE_BUILD:-$ROOT/build}
MESHD=$BUILD/meshd
MESHCTL=$BUILD/meshctl
TOPO_LBTOOL=$BUILD/tests/tools/lbtool
PIN=/sys/fs/bpf/sluice-po$$
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
SCENARIO_PREFIX=${POLICY_SCENARIO_PREFIX:-meshd_policy_}
MESHD_FLAGS=(--metrics off --telemetry off --socket-lb off --xdp-mode "${POLICY_XDP_MODE:-native}")

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
	mctl -o json status | python3 -c "import json, sys; print(json.load(sys.stdin)['drops']['$1'])"
}

denied() {
	mctl -o json policy get "${2:-$SVC}" | python3 -c "import json, sys; print(json.load(sys.stdin)['denied']['$1'])"
}

# refused NS: connect() to the VIP is refused (RST) within 1.5 s.
refused() {
	nsenter --net="/var/run/netns/$1" python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(1.5)
try:
    s.connect((sys.argv[1], 8000))
except ConnectionRefusedError:
    sys.exit(0)
except OSError as e:
    print("connect: %s" % e)
    sys.exit(1)
print("connected")
sys.exit(1)' "$TOPO_VIP4"
}

expect() {
	[ "$2" = "$3" ] && { log "$1: $2"; return 0; }
	fail "$1: got '$2', expected '$3'"
}

# `meshctl explain`'s policy step for CLIENT:PORT: "verdict source drop
# rule" (rule: the entry an exact-match lookup found, policy_hash or
# policy_nhost; none when no entry matched)
explain_policy() {
	mctl -o json explain "$1" "${2:-$SVC}" | python3 -c "import json, sys
p = json.load(sys.stdin)['policy']
print(p['verdict'], p['source'], p.get('drop') or 'none', p.get('rule') or 'none')"
}

test_deny_drop() {
	local ok=0 before after cb ca
	mctl service del "$SVC" >/dev/null 2>&1
	mctl service add "$SVC" "$BE1" >/dev/null || fail "service add failed" || return 1
	mctl policy set "$SVC" --deny-from "$CLIENT2/32" >/dev/null ||
		fail "policy set --deny-from failed" || return 1
	connects "$TOPO_NS_CLIENT" && log "client $TOPO_CLIENT4 connects" ||
		fail "client cannot connect" || ok=1
	before=$(drops policy_deny)
	cb=$(denied deny_list)
	times_out "$NS_CLIENT2" && log "client2 $CLIENT2 (denied) times out" ||
		fail "client2 was not dropped" || ok=1
	after=$(drops policy_deny)
	ca=$(denied deny_list)
	[ "$after" -gt "$before" ] && log "policy_deny drops $before -> $after" ||
		fail "policy_deny drops did not grow ($before -> $after)" || ok=1
	[ "$ca" -gt "$cb" ] && log "service deny_list denials $cb -> $ca" ||
		fail "deny_list counter did not grow ($cb -> $ca)" || ok=1
	mctl policy get "$SVC" | grep -q "^Deny:      $CLIENT2/32\$" ||
		fail "policy get does not show the rule" || ok=1
	mctl policy list | grep -q "^$SVC " || fail "policy list does not list the service" || ok=1
	expect "explain of client2" "$(explain_policy "$CLIENT2:40000")" "deny denyFrom policy_deny $CLIENT2/32" || ok=1
	expect "explain of the client" "$(explain_policy "$TOPO_CLIENT4:40000")" "allow allowFrom/denyFrom none none" || ok=1
	expect "state file denyFrom" "$(python3 -c "import json; print(json.load(open('$STATE'))['services'][0].get('denyFrom'))")" \
		"['$CLIENT2/32']" || ok=1
	return $ok
}

test_allow_refuse() {
	local ok=0 cb ca
	mctl policy set "$SVC" --deny-from "" --allow-from "$TOPO_CLIENT4/32" --deny-action refuse \
		>/dev/null || fail "policy set --allow-from failed" || return 1
	connects "$TOPO_NS_CLIENT" && log "client (allowed) connects" ||
		fail "allowed client cannot connect" || ok=1
	cb=$(denied not_allowed)
	refused "$NS_CLIENT2" && log "client2 (not allowed) is refused at once" ||
		fail "client2 not refused" || ok=1
	ca=$(denied not_allowed)
	[ "$ca" -gt "$cb" ] && log "not_allowed denials $cb -> $ca" ||
		fail "not_allowed counter did not grow ($cb -> $ca)" || ok=1
	expect "explain of client2" "$(explain_policy "$CLIENT2:40000")" "deny allowFrom policy_not_allowed none" || ok=1
	expect "explain of the client" "$(explain_policy "$TOPO_CLIENT4:40000")" \
		"allow allowFrom/denyFrom none $TOPO_CLIENT4/32" || ok=1
	return $ok
}

test_node() {
	local ok=0 before after
	mctl policy set "$SVC" --allow-from "" --deny-action drop >/dev/null || return 1
	connects "$NS_CLIENT2" && log "no rules: client2 connects" ||
		fail "client2 cannot connect without rules" || ok=1
	mctl policy node "$CLIENT2/32" >/dev/null || fail "policy node failed" || return 1
	before=$(drops policy_node_deny)
	times_out "$NS_CLIENT2" && log "node deny: client2 times out" ||
		fail "client2 not dropped by the node list" || ok=1
	after=$(drops policy_node_deny)
	[ "$after" -gt "$before" ] && log "policy_node_deny drops $before -> $after" ||
		fail "policy_node_deny did not grow" || ok=1
	connects "$TOPO_NS_CLIENT" && log "client still connects" || fail "client blocked" || ok=1
	expect "state file nodeDenyFrom" "$(python3 -c "import json; print(json.load(open('$STATE')).get('nodeDenyFrom'))")" \
		"['$CLIENT2/32']" || ok=1
	mctl policy node "" >/dev/null || return 1
	connects "$NS_CLIENT2" && log "node list emptied: client2 connects" ||
		fail "client2 still blocked" || ok=1
	return $ok
}

cut_flows() {
	mctl -o json policy list | python3 -c "import json, sys; print(json.load(sys.stdin)['cut']['flows'])"
}

# the cut runs in meshd's background worker: until it is idle (30 s at most)
cut_idle() {
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(mctl -o json policy list | python3 -c "import json, sys; print(json.load(sys.stdin)['cut']['state'])")" = idle ] && return 0
		sleep 0.1
	done
	return 1
}

client_flows() {
	mctl -o json conntrack list | python3 -c "import json, sys
d = json.load(sys.stdin)
print(sum(1 for e in d.get('entries', d if isinstance(d, list) else []) if '$TOPO_CLIENT4' in json.dumps(e)))"
}

test_cut() {
	local ok=0 ready=$WORK/hold.ready go=$WORK/hold.go pid before after
	rm -f "$ready" "$go"
	mctl service add "$SVC" "$BE1" >/dev/null 2>&1 # when run alone
	mctl policy set "$SVC" --deny-from "" --deny-action refuse >/dev/null || return 1
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" python3 "$TOPO_ECHO" hold "$TOPO_VIP4" 8000 \
		-n 3 --ready "$ready" --go "$go" --wait 20 >"$WORK/hold.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for ((i = 0; i < 600; i++)); do
		[ -e "$ready" ] && break
		sleep 0.05
	done
	[ -e "$ready" ] || fail "the held connections did not open" || return 1
	[ "$(client_flows)" -gt 0 ] && log "client flows in conntrack: $(client_flows)" ||
		fail "no conntrack entry of the client before the change" || ok=1
	before=$(cut_flows)
	mctl policy set "$SVC" --deny-from "$TOPO_CLIENT4/32" >/dev/null || return 1
	cut_idle || fail "the cut did not end within 30 s" || ok=1
	after=$(cut_flows)
	[ "$after" -ge "$((before + 3))" ] && log "cut flows $before -> $after" ||
		fail "cut flows $before -> $after, expected +3" || ok=1
	expect "client flows in conntrack after the change" "$(client_flows)" "0" || ok=1
	touch "$go"
	if wait "$pid"; then
		fail "held connections still echo after the cut"
		ok=1
	else
		log "held connections cut: $(tail -n 1 "$WORK/hold.out")"
	fi
	refused "$TOPO_NS_CLIENT" && log "a new connection from the client is refused" ||
		fail "new connection not refused" || ok=1
	return $ok
}

# udp_times_out NS: a datagram to the UDP VIP gets no answer and no error
# within 1.5 s (dropped).
udp_times_out() {
	nsenter --net="/var/run/netns/$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
s.connect((sys.argv[1], 8053))
s.send(b"ping\n")
try:
    print("answered: %r" % s.recv(100))
except socket.timeout:
    sys.exit(0)
except OSError as e:
    print("recv: %s" % e)
sys.exit(1)' "$TOPO_VIP4"
}

test_udp() {
	local ok=0 usvc=$TOPO_VIP4:8053/udp cb ca
	mctl service del "$usvc" >/dev/null 2>&1
	mctl service add "$usvc" "$BE1" >/dev/null || fail "udp service add failed" || return 1
	mctl policy set "$usvc" --deny-from "$CLIENT2/32" --deny-action refuse >/dev/null ||
		fail "udp policy set failed" || return 1
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" python3 "$TOPO_ECHO" udp "$TOPO_VIP4" 8053 \
		-n 3 --expect be1 >/dev/null 2>&1 && log "the client's datagrams are echoed by be1" ||
		fail "the client's datagrams were not echoed" || ok=1
	cb=$(denied deny_list "$usvc")
	nsenter --net="/var/run/netns/$NS_CLIENT2" python3 "$TOPO_ECHO" udp "$TOPO_VIP4" 8053 \
		-n 1 --refused >"$WORK/udp.out" 2>&1 && log "client2's datagram refused (ICMP port unreachable)" ||
		fail "client2 not refused: $(tail -n 1 "$WORK/udp.out")" || ok=1
	mctl policy set "$usvc" --deny-from "$CLIENT2/32" --deny-action drop >/dev/null ||
		fail "udp policy set drop failed" || ok=1
	udp_times_out "$NS_CLIENT2" && log "with drop, client2's datagram gets no answer" ||
		fail "client2's datagram not dropped" || ok=1
	ca=$(denied deny_list "$usvc")
	[ "$ca" -ge $((cb + 2)) ] && log "udp service deny_list denials $cb -> $ca" ||
		fail "udp deny_list counter did not grow by 2 ($cb -> $ca)" || ok=1
	expect "explain of client2 (udp)" "$(explain_policy "$CLIENT2:40000" "$usvc")" \
		"deny denyFrom policy_deny $CLIENT2/32" || ok=1
	expect "explain of the client (udp)" "$(explain_policy "$TOPO_CLIENT4:40000" "$usvc")" \
		"allow allowFrom/denyFrom none none" || ok=1
	mctl service del "$usvc" >/dev/null || fail "udp service del failed" || ok=1
	return $ok
}

test_rejected() {
	local ok=0 out
	if out=$(mctl policy set "$SVC" --deny-from 10.0.0.0/8,10.1.0.0/16 2>&1); then
		fail "overlap accepted"
		ok=1
	fi
	grep -q 'denyFrom\[1\]: "10.1.0.0/16" overlaps denyFrom\[0\] "10.0.0.0/8"' <<<"$out" &&
		log "meshd: $out" || fail "error: $out" || ok=1
	if out=$(mctl policy set "$SVC" --allow-from 10.10.0.2/8 2>&1); then
		fail "host bits accepted"
		ok=1
	fi
	grep -q 'host bits set' <<<"$out" && log "meshctl: $out" || fail "meshctl: $out" || ok=1
	expect "unchanged" "$(mctl -o json policy get "$SVC" | python3 -c 'import json, sys; print(json.load(sys.stdin)["denyFrom"])')" \
		"['$TOPO_CLIENT4/32']" || ok=1
	return $ok
}

policy_hash_entries() {
	mctl -o json policy list | python3 -c "import json, sys
print(sum(m['entries'] for m in json.load(sys.stdin)['maps'] if m['name'] == 'policy_hash'))"
}

test_expanded() {
	local ok=0
	mctl policy set "$SVC" --allow-from 10.10.0.0/16,11.0.0.0/8,172.16.1.0/24 \
		--deny-from 10.10.200.0/22,10.10.0.99/32 --deny-action drop >/dev/null ||
		fail "policy set of 5 lengths failed" || return 1
	expect "policy_hash entries (the /22 as 4 /24s)" "$(policy_hash_entries)" 8 || ok=1
	connects "$TOPO_NS_CLIENT" && log "client (in allow /16) connects" ||
		fail "allowed client cannot connect" || ok=1
	times_out "$NS_CLIENT2" && log "client2 (in the deny /22, expanded) times out" ||
		fail "client2 was not dropped" || ok=1
	expect "explain of client2" "$(explain_policy "$CLIENT2:40000")" \
		"deny denyFrom policy_deny 10.10.200.0/22" || ok=1
	expect "explain of the client" "$(explain_policy "$TOPO_CLIENT4:40000")" \
		"allow allowFrom/denyFrom none 10.10.0.0/16" || ok=1
	mctl policy set "$SVC" --allow-from "" --deny-from "" >/dev/null ||
		fail "policy reset failed" || ok=1
	expect "policy_hash entries after" "$(policy_hash_entries)" 0 || ok=1
	return $ok
}

test_upgrade() {
	local ok=0 ready=$WORK/up.ready go=$WORK/up.go pid new=$MESHD
	rm -f "$ready" "$go"
	if [ -n "${SLUICE_OLD_BUILD:-}" ]; then
		meshd_term || return 1
		# pins as the older agent made them: it has no policy_hash
		rm -f "$PIN/policy_hash"
		MESHD=$SLUICE_OLD_BUILD/meshd
		meshd_start || { MESHD=$new; return 1; }
		log "before: $MESHD"
	fi
	mctl service del "$SVC" >/dev/null 2>&1
	mctl service add "$SVC" "$BE1" >/dev/null || fail "service add failed" || ok=1
	mctl policy set "$SVC" --deny-from "$CLIENT2/32" --deny-action drop >/dev/null ||
		fail "policy set failed" || ok=1
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" python3 "$TOPO_ECHO" hold "$TOPO_VIP4" 8000 \
		-n 3 --ready "$ready" --go "$go" --wait 30 >"$WORK/up.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		[ -e "$ready" ] && break
		sleep 0.05
	done
	[ -e "$ready" ] || { MESHD=$new; fail "the held connections did not open"; return 1; }
	times_out "$NS_CLIENT2" && log "before: client2 times out" || fail "client2 not denied before" || ok=1
	log "before: $(ls "$PIN/policy_hash" >/dev/null 2>&1 && echo "a" || echo "no") policy_hash pin"
	MESHD=$new
	meshd_restart || return 1
	log "after: $MESHD; policy_hash entries: $(policy_hash_entries)"
	[ "$(policy_hash_entries)" -ge 1 ] || fail "no entry in policy_hash after the restart" || ok=1
	touch "$go"
	if wait "$pid"; then
		log "held connections echo after the restart: $(tail -n 1 "$WORK/up.out")"
	else
		fail "held connections broke: $(tail -n 1 "$WORK/up.out")"
		ok=1
	fi
	times_out "$NS_CLIENT2" && log "after: client2 times out" || fail "client2 not denied after" || ok=1
	connects "$TOPO_NS_CLIENT" && log "after: the client connects" || fail "client cannot connect after" || ok=1
	expect "explain of client2" "$(explain_policy "$CLIENT2:40000")" "deny denyFrom policy_deny $CLIENT2/32" || ok=1
	return $ok
}

ALL=(deny_drop allow_refuse node cut udp rejected expanded upgrade)

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-meshd-policy.XXXXXX") || exit 1
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	echo "# topology $TOPO_ID (+ $NS_CLIENT2), pins $PIN, xdp-mode ${POLICY_XDP_MODE:-native}"
	if ! topo__up || ! client2_up; then
		echo "FAIL: e2e/${SCENARIO_PREFIX}setup: topology did not come up"
		exit 1
	fi
	if ! meshd_start; then
		echo "FAIL: e2e/${SCENARIO_PREFIX}setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	# the path under test: every attachment on the hook the mode gives
	local want=xdp hooks
	[ "${POLICY_XDP_MODE:-native}" = off ] && want=tc
	hooks=$(mctl -o json status | python3 -c "import json, sys
print(' '.join(sorted({a['hook'] for a in json.load(sys.stdin)['attachments']})))")
	if [ "$hooks" != "$want" ]; then
		echo "FAIL: e2e/${SCENARIO_PREFIX}setup: attached at '$hooks', expected $want"
		exit 1
	fi
	log "attached at $hooks"
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e meshd policy: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
