#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_explain.sh - `meshctl explain` (#15) against real connections:
# meshd on the node's veths (XDP native; EXPLAIN_XDP_MODE=off for tc), the
# client namespace, the three echo backends of scripts/lib/topology.sh,
# which say who they are.
#
# Contract: build/meshd runs in the node namespace on 'to-*' with its own
# pin dir, state file and socket (metrics and telemetry off), socket LB on
# a child cgroup it creates (never the root); only the socket scenario's
# client runs in it. One service, VIP:8000/tcp over be1 be2 be3 (weights
# 1 2 1). Scenarios, one "PASS: e2e/meshd_explain_<name>" or "FAIL: ..." each:
#   flows        100 random client ports (seed printed): explain before the
#                connection names a backend ("balanced"); a real connection
#                from that port is answered by that backend, every one; with
#                the 100 connections held open, explain says "established"
#                (a conntrack entry) on the same backend for each
#   refused      --source-ranges 10.10.200.0/24 (the client is outside):
#                explain says drop, source_range, rule none; the real
#                connect() times out; -o json carries the same
#   affinity     --affinity client-ip:30m: after one connection, explain
#                for 20 new ports says the affinity entry decides, and the
#                real connections land on its backend
#   socket       socket LB (meshd --cgroup on a child cgroup we create):
#                100 connect()s of a client in that cgroup, each explained
#                with its SO_COOKIE and SO_NETNS_COOKIE, name the backend
#                that answered; with affinity, the netns's entry decides
#   socket_policy socket LB and an access policy denying the client's address
#                (10.10.0.2/32; the client namespace gets 10.10.0.3 too): a
#                socket bound to .2 gets EPERM at connect() and explain of it
#                (--socket-src as getsockname() said) says deny and names the
#                rule; one bound to .3 is answered by the backend explain
#                names; an unbound one (getsockname 0.0.0.0:0) times out and
#                explain says deferred, and with --route-src .2 that the
#                packet path denies it; the rule and address are removed
#   cli          the trace reads as steps, bad input is named in the error
# meshd, pins, namespaces and temp files are removed on exit, failure or
# interruption. Needs root, nsenter, python3. About 30 s.
# Usage: test_meshd_explain.sh [SCENARIO...]   (default: all, in order)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-mxp}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

BUILD=${SLUICE_BUILD:-$ROOT/build}
MESHD=$BUILD/meshd
MESHCTL=$BUILD/meshctl
TOPO_LBTOOL=$BUILD/tests/tools/lbtool
PIN=/sys/fs/bpf/sluice-xp$$
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-mxp$$}
PATTERN='to-*'
START_TIMEOUT=20
SVC=$TOPO_VIP4:8000/tcp
SEED=${EXPLAIN_SEED:-$$}
NFLOWS=100

WORK=
SOCK=
STATE=
LOG=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=("$TOPO_LBTOOL")
NEEDS_CMDS=(nsenter python3 ethtool)
SCENARIO_PREFIX=meshd_explain_
MESHD_FLAGS=(--metrics off --telemetry off --cgroup "$CG" --xdp-mode "${EXPLAIN_XDP_MODE:-native}")

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

mctl() { "$MESHCTL" -s "$SOCK" "$@"; }

# The client side: connect from CLIENT4:PORT for each PORT on stdin, ask
# whoami, print "PORT NAME"; with --hold, keep them open until GO exists.
cat_client() {
	cat <<'PY'
import socket, sys, os, time
vip, port, hold, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
socks = []
for line in sys.stdin:
    p = int(line)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    s.bind((os.environ["CLIENT"], p))
    try:
        s.connect((vip, port))
        s.sendall(b"whoami\n")
        name = s.makefile().readline().strip()
    except OSError as e:
        name = "error:%s" % e.__class__.__name__
    print(p, name, flush=True)
    if hold:
        socks.append(s)
    else:
        s.close()
open(ready, "w").close()
t = time.time()
while hold and not os.path.exists(go) and time.time() - t < 60:
    time.sleep(0.05)
PY
}

# name_of ADDR:PORT -> be1/be2/be3
name_of() {
	local b
	for b in be1 be2 be3; do
		[ "$1" = "$(topo__be_addr4 $b):$TOPO_BE_PORT" ] && { echo "$b"; return; }
	done
	echo "?$1"
}

# json_fields EXPR FILE...: per FILE (JSON, as d) one line: its name and
# the fields of the tuple EXPR. One python for a whole scenario's answers:
# one per answer made the scenarios minutes on a loaded machine.
json_fields() {
	python3 -c '
import json, os, sys
expr = compile(sys.argv[1], "EXPR", "eval")
for f in sys.argv[2:]:
    d = json.load(open(f))
    print(os.path.basename(f), *eval(expr))' "$@"
}

# explain_json PORT FIELD: one field of explain -o json for CLIENT4:PORT
explain_field() {
	mctl -o json explain "$TOPO_CLIENT4:$1" "$SVC" |
		python3 -c "import json, sys; d = json.load(sys.stdin); print($2)"
}

svc_fresh() {
	mctl service del "$SVC" >/dev/null 2>&1
	mctl service add "$SVC" "$(topo__be_addr4 be1):$TOPO_BE_PORT@1" \
		"$(topo__be_addr4 be2):$TOPO_BE_PORT@2" "$(topo__be_addr4 be3):$TOPO_BE_PORT@1" "$@" \
		>/dev/null || fail "service add $* failed"
}

# run_client HOLD <ports: "PORT NAME" lines into $WORK/got (background when HOLD)
run_client() {
	cat_client >"$WORK/client.py"
	rm -f "$WORK/ready" "$WORK/go"
	CLIENT=$TOPO_CLIENT4 nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" \
		python3 "$WORK/client.py" "$TOPO_VIP4" 8000 "$1" "$WORK/ready" "$WORK/go"
}

wait_ready() {
	for ((i = 0; i < 400; i++)); do
		[ -e "$WORK/ready" ] && return 0
		sleep 0.05
	done
	fail "the client did not finish connecting"
}

test_flows() {
	local ok=0 p want got n=0 bad=0 est=0 pid verdict backend state
	local -A pred=()
	svc_fresh || return 1
	log "seed $SEED (EXPLAIN_SEED=$SEED reruns these ports)"
	python3 -c "import random; random.seed($SEED); print('\n'.join(map(str, random.sample(range(20000, 60000), $NFLOWS))))" \
		>"$WORK/ports"
	rm -rf "$WORK/x" && mkdir "$WORK/x" || return 1
	while read -r p; do
		mctl -o json explain "$TOPO_CLIENT4:$p" "$SVC" >"$WORK/x/$p" || { fail "explain $p failed"; return 1; }
	done <"$WORK/ports"
	json_fields 'd["verdict"], d["backend"]' "$WORK/x"/* >"$WORK/x.txt" ||
		{ fail "explain -o json did not parse"; return 1; }
	while read -r p verdict backend; do
		[ "$verdict" = balanced ] || { fail "port $p: explain verdict $verdict, expected balanced"; ok=1; }
		pred[$p]=$(name_of "$backend")
	done <"$WORK/x.txt"
	run_client 1 <"$WORK/ports" >"$WORK/got" 2>"$WORK/client.err" &
	pid=$!
	BG_PIDS+=("$pid")
	wait_ready || return 1
	rm -rf "$WORK/x" && mkdir "$WORK/x" || return 1
	while read -r p got; do
		n=$((n + 1))
		if [ "$got" != "${pred[$p]}" ]; then
			bad=$((bad + 1))
			[ "$bad" -le 5 ] && log "port $p: explain said ${pred[$p]}, answered by $got"
			continue
		fi
		# held open: conntrack has it, on the same backend
		mctl -o json explain "$TOPO_CLIENT4:$p" "$SVC" >"$WORK/x/$p"
	done <"$WORK/got"
	touch "$WORK/go"
	if [ "$n" -gt "$bad" ]; then
		json_fields 'd["verdict"], d["conntrack"].get("state"), d["backend"]' "$WORK/x"/* \
			>"$WORK/x.txt" || fail "explain -o json of the held connections did not parse" || ok=1
	fi
	while read -r p verdict state backend; do
		if [ "$verdict $state $backend" = "established confirmed $(topo__be_addr4 "${pred[$p]}"):$TOPO_BE_PORT" ]; then
			est=$((est + 1))
		else
			[ "$est" -lt 3 ] && log "port $p held open: explain says $verdict $state $backend"
		fi
	done < <([ "$n" -gt "$bad" ] && cat "$WORK/x.txt")
	wait "$pid"
	log "$n connections: $((n - bad)) answered by the backend explain named, $bad not"
	log "held open: $est of $((n - bad)) explained as established (confirmed conntrack entry) on that backend"
	log "share: $(cut -d' ' -f2 "$WORK/got" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
	[ "$n" -eq "$NFLOWS" ] || fail "$n of $NFLOWS connections reported" || ok=1
	[ "$bad" -eq 0 ] || fail "$bad of $n connections answered by another backend than explain's" || ok=1
	[ "$est" -eq "$((n - bad))" ] || fail "$est of $((n - bad)) held connections explained as established" || ok=1
	return $ok
}

test_refused() {
	local ok=0 out
	svc_fresh --source-ranges 10.10.200.0/24 || return 1
	out=$(explain_field 31000 'd["verdict"], d["drop_reason"], d["policy"]["verdict"], d["policy"]["source"], d["policy"]["rule"]')
	[ "$out" = "drop source_range deny sourceRanges None" ] && log "explain: $out" ||
		fail "explain for an outside client: '$out'" || ok=1
	mctl explain "$TOPO_CLIENT4:31000" "$SVC" | grep -q '^  policy     deny: the client is in none of the service.s 1 source ranges' &&
		log "trace: $(mctl explain "$TOPO_CLIENT4:31000" "$SVC" | grep policy)" ||
		fail "the trace does not name the policy step" || ok=1
	echo 31000 | run_client 0 >"$WORK/got" 2>&1
	grep -q '^31000 error:' "$WORK/got" && log "real connect from :31000: $(cut -d' ' -f2 "$WORK/got")" ||
		fail "the real connection was not refused: $(cat "$WORK/got")" || ok=1
	mctl service set "$SVC" --source-ranges 10.10.0.0/16,10.10.0.0/24 >/dev/null || return 1
	out=$(explain_field 31001 'd["verdict"], d["policy"]["verdict"], d["policy"]["rule"]')
	[ "${out% *}" = "balanced allow" ] && [ "${out##* }" = 10.10.0.0/24 ] && log "inside: $out" ||
		fail "explain for an inside client: '$out'" || ok=1
	return $ok
}

test_affinity() {
	local ok=0 first p want got bad=0
	svc_fresh --affinity client-ip:30m || return 1
	echo 32000 | run_client 0 >"$WORK/got" 2>&1
	first=$(cut -d' ' -f2 "$WORK/got")
	log "first connection (:32000) answered by $first"
	seq 32001 32020 >"$WORK/ports"
	rm -rf "$WORK/x" && mkdir "$WORK/x" || return 1
	while read -r p; do
		mctl -o json explain "$TOPO_CLIENT4:$p" "$SVC" >"$WORK/x/$p"
	done <"$WORK/ports"
	json_fields 'd["affinity"]["used"], d["backend"]' "$WORK/x"/* >"$WORK/x.txt" ||
		fail "explain -o json did not parse" || return 1
	[ "$(wc -l <"$WORK/x.txt")" -eq 20 ] || fail "$(wc -l <"$WORK/x.txt") of 20 ports explained" || return 1
	while read -r p want; do
		[ "$want" = "True $(topo__be_addr4 "$first"):$TOPO_BE_PORT" ] || { bad=$((bad + 1)); log "port $p: explain says $want"; }
	done <"$WORK/x.txt"
	run_client 0 <"$WORK/ports" >"$WORK/got" 2>&1
	got=$(cut -d' ' -f2 "$WORK/got" | sort -u | tr '\n' ' ')
	[ "$bad" -eq 0 ] && log "explain: the affinity entry decides for 20 new ports, backend $first" ||
		fail "$bad of 20 explains did not name the affinity entry's backend" || ok=1
	[ "$got" = "$first " ] && log "20 real connections: all answered by $got" ||
		fail "real connections answered by: $got (expected $first)" || ok=1
	mctl explain "$TOPO_CLIENT4:32021" "$SVC" | grep -q '^  affinity   entry (idle' ||
		fail "the trace has no affinity step" || ok=1
	return $ok
}

# The socket-LB client: N connect()s from our cgroup, "COOKIE NETNS NAME"
# each (SO_COOKIE 57, SO_NETNS_COOKIE 71: Linux 5.14).
sock_client() {
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" python3 -c '
import socket, struct, sys
for _ in range(int(sys.argv[2])):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((sys.argv[1], 8000))
        c = struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 57, 8))[0]
        n = struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 71, 8))[0]
        s.sendall(b"whoami\n")
        print(c, n, s.makefile().readline().strip(), flush=True)
    except OSError as e:
        print(0, 0, "error:%s" % e.__class__.__name__, flush=True)
    s.close()' "$TOPO_VIP4" "$1")
}

# sock_check N WHAT: explain each socket of sock_client N, compare
sock_check() {
	local c n name got bad=0 aff=0 total=0 i=0
	local -A named=()
	sock_client "$1" >"$WORK/sock" 2>&1
	rm -rf "$WORK/x" && mkdir "$WORK/x" || return 1
	while read -r c n name; do
		total=$((total + 1))
		named[$c]=$name
		mctl -o json explain --socket-cookie "$c" --netns-cookie "$n" "$SVC" >"$WORK/x/$c"
	done <"$WORK/sock"
	[ "$total" -eq 0 ] ||
		json_fields 'd["verdict"], d["backend"], d["affinity"]["used"]' "$WORK/x"/* >"$WORK/x.txt" ||
		fail "$2: explain -o json did not parse" || return 1
	while read -r c got; do
		i=$((i + 1))
		if [ "$(name_of "$(cut -d' ' -f2 <<<"$got")")" != "${named[$c]}" ] || [ "${got%% *}" != balanced ]; then
			bad=$((bad + 1))
			[ "$bad" -le 5 ] && log "cookie $c: explain says '$got', answered by ${named[$c]}"
		fi
		[ "${got##* }" = True ] && aff=$((aff + 1))
	done < <([ "$total" -eq 0 ] || cat "$WORK/x.txt")
	[ "$i" -eq "$total" ] || fail "$2: $i of $total sockets explained" || return 1
	log "$2: $total sockets, $((total - bad)) answered by the backend explain named, $aff by the affinity entry; share: $(cut -d' ' -f3 "$WORK/sock" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
	[ "$total" -eq "$1" ] || fail "$2: $total of $1 sockets reported" || return 1
	[ "$bad" -eq 0 ] || fail "$2: $bad of $total sockets answered by another backend than explain's" || return 1
	AFF=$aff
}

test_socket() {
	local ok=0 AFF=0
	svc_fresh || return 1
	sock_check 100 "socket LB" || ok=1
	[ "$AFF" -eq 0 ] || fail "affinity used without affinity" || ok=1
	[ "$(mctl -o json conntrack list | python3 -c 'import json, sys; print(json.load(sys.stdin)["total"])')" -eq 0 ] ||
		log "(conntrack holds packet-path flows of earlier scenarios)"
	mctl service set "$SVC" --affinity client-ip:30m >/dev/null || return 1
	sock_check 20 "socket LB with affinity" || ok=1
	[ "$AFF" -ge 19 ] || fail "the netns's affinity entry decided for $AFF of 20" || ok=1
	mctl explain --socket-cookie 1 "$SVC" | grep -q 'socket LB: no conntrack' ||
		fail "the socket trace does not say so" || ok=1
	return $ok
}

# policy_client SRC: one connect() from our cgroup in the client namespace,
# bound to SRC:0 (unbound when empty): "COOKIE NETNS LOCAL RESULT", LOCAL
# as getsockname() says before connect(), RESULT the backend's name,
# EPERM, timeout or error:NAME.
policy_client() {
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" python3 -c '
import socket, struct, sys
s = socket.socket()
s.settimeout(2)
if sys.argv[2]:
    s.bind((sys.argv[2], 0))
a, p = s.getsockname()
c = struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 57, 8))[0]
n = struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 71, 8))[0]
try:
    s.connect((sys.argv[1], 8000))
    s.sendall(b"whoami\n")
    r = s.makefile().readline().strip()
except PermissionError:
    r = "EPERM"
except (socket.timeout, TimeoutError):
    r = "timeout"
except OSError as e:
    r = "error:" + e.__class__.__name__
print(c, n, "%s:%d" % (a, p), r, flush=True)' "$TOPO_VIP4" "$1")
}

# policy_explain "COOKIE NETNS LOCAL" [ARGS...]: explain -o json of that
# socket as "VERDICT POLICY SOURCE RULE BACKEND PACKET_POLICY"
policy_explain() {
	local c n l
	read -r c n l _ <<<"$1"
	shift
	mctl -o json explain --socket-cookie "$c" --netns-cookie "$n" --socket-src "$l" "$@" \
		"$SVC" | python3 -c '
import json, sys
d = json.load(sys.stdin)
if "policy" not in d: sys.exit("explain: %s" % d)
p, q = d["policy"], d.get("packet_policy") or {}
print(d["verdict"], p["verdict"], p["source"], p["rule"], d["backend"], q.get("verdict"))'
}

test_socket_policy() {
	local ok=0 out got alt=10.10.0.3
	svc_fresh || return 1
	ip -n "$TOPO_NS_CLIENT" addr add "$alt/24" dev eth0 || fail "cannot add $alt" || return 1
	mctl policy set "$SVC" --deny-from "$TOPO_CLIENT4/32" >/dev/null ||
		fail "policy set --deny-from failed" || ok=1
	# bound to the denied address: EPERM, and explain says so
	out=$(policy_client "$TOPO_CLIENT4")
	got=$(policy_explain "$out")
	log "bound $TOPO_CLIENT4: $out -> explain: $got"
	[ "${out##* }" = EPERM ] || fail "bound denied connect(): ${out##* }" || ok=1
	[ "$(cut -d' ' -f1-4 <<<"$got")" = "deny deny denyFrom $TOPO_CLIENT4/32" ] ||
		fail "explain of the denied socket: $got" || ok=1
	# bound to the allowed one: the backend explain names answers
	out=$(policy_client "$alt")
	got=$(policy_explain "$out")
	log "bound $alt: $out -> explain: $got"
	[ "$(cut -d' ' -f1-2 <<<"$got")" = "balanced allow" ] &&
		[ "$(name_of "$(cut -d' ' -f5 <<<"$got")")" = "${out##* }" ] ||
		fail "allowed socket answered by ${out##* }, explain: $got" || ok=1
	# unbound: the socket LB defers, the packet path sees .2 and drops
	out=$(policy_client "")
	got=$(policy_explain "$out" --route-src "$TOPO_CLIENT4")
	log "unbound: $out -> explain: $got"
	[ "${out##* }" = timeout ] || fail "unbound connect(): ${out##* }, want a timeout" || ok=1
	[ "$(cut -d' ' -f1-2 <<<"$got")" = "proceed deferred" ] && [ "${got##* }" = deny ] ||
		fail "explain of the unbound socket: $got" || ok=1
	mctl explain --socket-cookie "${out%% *}" --route-src "$TOPO_CLIENT4" "$SVC"
	mctl policy set "$SVC" --deny-from "" >/dev/null || fail "removing the rule failed" || ok=1
	ip -n "$TOPO_NS_CLIENT" addr del "$alt/24" dev eth0
	return $ok
}

test_cli() {
	local ok=0 out
	svc_fresh || return 1
	out=$(mctl explain "$TOPO_CLIENT4:33000" "$SVC")
	log "$out"
	for step in service conntrack policy maglev backend verdict; do
		grep -q "^  $step " <<<"$out" || fail "no $step step in the trace" || ok=1
	done
	out=$(mctl explain "$TOPO_CLIENT4" "$SVC" 2>&1) && fail "a client without port accepted"
	grep -q "client '$TOPO_CLIENT4': want ADDR:PORT" <<<"$out" && log "$out" || fail "error: $out" || ok=1
	out=$(mctl explain "$TOPO_CLIENT4:1" 10.96.0.10:8000/sctp 2>&1) && fail "sctp accepted"
	grep -q 'sctp' <<<"$out" && log "$out" || fail "error: $out" || ok=1
	out=$(mctl -o json explain "$TOPO_CLIENT4:1" 10.96.0.99:1/tcp)
	grep -q '"verdict": *"pass"' <<<"$out" && log "no service: pass" || fail "no service: $out" || ok=1
	return $ok
}

ALL=(flows refused affinity socket socket_policy cli)

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-meshd-explain.XXXXXX") || exit 1
	mkdir "$CG" || {
		echo "FAIL: e2e/meshd_explain_setup: cannot create $CG"
		exit 1
	}
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	echo "# topology $TOPO_ID, pins $PIN, xdp-mode ${EXPLAIN_XDP_MODE:-native}"
	if ! topo__up; then
		echo "FAIL: e2e/meshd_explain_setup: topology did not come up"
		exit 1
	fi
	if ! meshd_start; then
		echo "FAIL: e2e/meshd_explain_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e meshd explain: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
