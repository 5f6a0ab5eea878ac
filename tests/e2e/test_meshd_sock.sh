#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_sock.sh - socket LB and redirection as meshd serves them: --socket-lb and
# --redirect, their status, metrics and uninstall.
#
# Serial: a policy cut must end within 2 s; a status answer races a ~1 s cut
#
# Contract: builds the topology of scripts/lib/topology.sh (client -> node
# -> be1..be3 echo servers) and creates a child cgroup of the cgroup2 mount
# (never the root itself). build/meshd runs in the node namespace on 'to-*'
# with its own pin dir, state file and socket, --cgroup on that child and
# --metrics 127.0.0.1:$MPORT, and serves VIP:8000/tcp and VIP:8000/udp over
# the three backends. Client processes run in the child cgroup (in the
# client namespace; redirect pairs on loopback in the node namespace).
# Scenarios, one "PASS: e2e/meshd_sock_<name>" or
# "FAIL: e2e/meshd_sock_<name>: <reason>" line each:
#   lb_tcp        socket LB attached to the cgroup (status, bpftool); TCP
#                 clients reach the backends, getpeername() is the VIP, no
#                 conntrack entry appears and lb_new does not move; the
#                 socket-LB connect counter (status and /metrics) grows
#   lb_udp        UDP through the VIP: replies come from the VIP
#                 (recvfrom), no conntrack entry, sendmsg counter grows
#   policy_cut    3 TCP connections of a client in the cgroup and in the
#                 client namespace (not meshd's) through the socket LB (peer
#                 the VIP, no conntrack entry); a change denying the client's
#                 /32 cuts them within 2 s (each sees ECONNABORTED, a reset or
#                 EOF), policy list's cut.sockets grows by 3 and cut.netns by
#                 >= 1 with no netns_failed; a bound socket from the client is
#                 then refused with EPERM; the rule is removed after
#   policy_cut_bg the cut runs off meshd's loop: 200 idle network namespaces
#                 of processes in the cgroup (PCUT_NETNS) make a cut long
#                 (~1 s); a change denying nobody is answered at once, and
#                 another client's `status` is answered while that cut still
#                 runs (latencies printed; checked: policy list says
#                 "running" after the status answer); a second change during
#                 the cut, denying the client's /32, ends with its 3
#                 connections cut, the cut idle, the stale run counted as
#                 restarted (policy list and /metrics); SIGTERM during a cut
#                 exits 0 within 5 s (meshd restarted); the rule is removed
#   policy_cut_start a start whose state file denies a connected client cuts
#                 its connections in the client namespace (the start's cut
#                 waits for the socket LB's scope): meshd stopped, the
#                 client's /32 written into the state file's denyFrom,
#                 meshd started; the 3 connections see the cut, cut.netns
#                 >= 1; the rule is removed after
#   lb_off        restart with --socket-lb off: the cgroup has no socket-LB
#                 program and no link pin is left; the same clients are
#                 served by the per-packet path (conntrack entries appear)
#   redirect      restart with --socket-lb on --redirect on: status says the
#                 self-test passed; a held loopback pair in the cgroup counts
#                 as a redirected connection in status; a bulk transfer
#                 (CRC checked by sockpair) is redirected and the redirected
#                 byte counter grows; the redirect map drains after close
#   uninstall     `meshctl uninstall` leaves no program on the cgroup, no
#                 sock_*/redir_*/link_* pin and no pin dir
# meshd, the cgroup (its processes moved out first), pins, namespaces and
# temp files are removed on exit, failure or interruption. Needs root,
# bpftool, jq, curl, python3 and `make`. About 40 s.
# Usage: test_meshd_sock.sh [SCENARIO...]   (default: all, in order)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-mds}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

MESHD=${SLUICE_BUILD:-$ROOT/build}/meshd
MESHCTL=${SLUICE_BUILD:-$ROOT/build}/meshctl
SOCKPAIR=${SLUICE_BUILD:-$ROOT/build}/tests/tools/sockpair
PIN=/sys/fs/bpf/sluice-s$$
PATTERN='to-*'
MPORT=19466 # inside the node namespace
START_TIMEOUT=30
N=8

CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-mds$$}
SVC=$TOPO_VIP4:8000/tcp
USVC=$TOPO_VIP4:8000/udp
SVC6=[$TOPO_VIP6]:8000/tcp

WORK=
SOCK=
STATE=
LOG=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=("$SOCKPAIR")
NEEDS_CMDS=(bpftool nsenter curl jq python3)
SCENARIO_PREFIX=meshd_sock_
MESHD_FLAGS=(--cgroup "$CG" --metrics "127.0.0.1:$MPORT")

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

in_node() { nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$@"; }
mctl() { "$MESHCTL" -s "$SOCK" "$@"; }

# in_cg_client CMD...: in the client namespace and in our cgroup
in_cg_client() {
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" "$@")
}

# in_cg_node CMD...: in the node namespace (loopback pairs) and our cgroup
in_cg_node() {
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$@")
}

status_json() { mctl -o json status; }
# st PATH: one value of the status answer (jq path)
st() { status_json | jq -r "$1"; }
ct_total() { mctl -o json conntrack list | jq -r '.total'; }
lb_new() { st '.counters.lb_new'; }

scrape() { in_node curl -sS --max-time 5 "http://127.0.0.1:$MPORT/metrics"; }
metric() {
	scrape | awk -v s="$1" 'index($0, s " ") == 1 { print $2; f = 1 } END { if (!f) print "none" }'
}

# Socket-LB programs (connect4 & co.) on our cgroup
cg_lb_progs() { bpftool cgroup show "$CG" 2>/dev/null | grep -cE 'connect4|connect6|sendmsg4|recvmsg4'; }
cg_redir_progs() { bpftool cgroup show "$CG" 2>/dev/null | grep -c 'redir_sockops'; }

# ------------------------------------------------------------- scenarios

test_lb_tcp() {
	local ok=0 ct0 ct1 new0 new1 c0 c1 m
	[ "$(st '.socket_lb.running')" = true ] ||
		fail "status: socket_lb not running: $(st '.socket_lb.error')" || return 1
	[ "$(st '.socket_lb.attached')" = true ] || fail "status: socket_lb not attached" || ok=1
	log "cgroup programs: $(bpftool cgroup show "$CG" 2>/dev/null | awk 'NR > 1 { print $2 }' | tr '\n' ' ')"
	[ "$(cg_lb_progs)" -ge 3 ] || fail "bpftool: no socket-LB programs on $CG" || ok=1
	ct0=$(ct_total)
	new0=$(lb_new)
	c0=$(st '.socket_lb.counters.connect')
	in_cg_client timeout 60 python3 "$TOPO_ECHO" tcp "$TOPO_VIP4" 8000 -n "$N" \
		>"$WORK/client.out" 2>&1 || fail "TCP clients failed: $(tail -n 2 "$WORK/client.out")" ||
		return 1
	log "$(cat "$WORK/client.out")"
	in_cg_client timeout 60 python3 "$TOPO_ECHO" tcp "$TOPO_VIP6" 8000 -n "$N" \
		>"$WORK/client.out" 2>&1 || fail "IPv6 TCP clients failed: $(tail -n 2 "$WORK/client.out")" ||
		return 1
	log "$(cat "$WORK/client.out")"
	ct1=$(ct_total)
	new1=$(lb_new)
	c1=$(st '.socket_lb.counters.connect')
	log "conntrack entries $ct0 -> $ct1, lb_new $new0 -> $new1, socket-LB connects $c0 -> $c1"
	[ "$ct1" = "$ct0" ] || fail "conntrack entries appeared: $ct0 -> $ct1" || ok=1
	[ "$new1" = "$new0" ] || fail "lb_new moved: $new0 -> $new1" || ok=1
	[ "$((c1 - c0))" -ge $((2 * N)) ] ||
		fail "socket-LB connect counter grew by $((c1 - c0)), want >= $((2 * N))" || ok=1
	m=$(metric 'sluice_socket_lb_operations_total{reason="connect"}')
	log "/metrics: sluice_socket_lb_operations_total{reason=\"connect\"} $m"
	[ "$m" != none ] && [ "$m" -ge "$c1" ] 2>/dev/null ||
		fail "/metrics connect counter is $m, want >= $c1" || ok=1
	mctl status >"$WORK/status.txt" || fail "meshctl status failed" || ok=1
	grep -E '^Socket LB:' -A1 "$WORK/status.txt"
	grep -q "^Socket LB:   attached to cgroup $CG" "$WORK/status.txt" ||
		fail "meshctl status does not show the socket LB attached" || ok=1
	return $ok
}

test_lb_udp() {
	local ok=0 ct0 ct1 s0 s1
	ct0=$(ct_total)
	s0=$(st '.socket_lb.counters.sendmsg')
	in_cg_client timeout 60 python3 "$TOPO_ECHO" udp "$TOPO_VIP4" 8000 -n "$N" \
		>"$WORK/client.out" 2>&1 || fail "UDP clients failed: $(tail -n 2 "$WORK/client.out")" ||
		return 1
	log "$(cat "$WORK/client.out")"
	ct1=$(ct_total)
	s1=$(st '.socket_lb.counters.sendmsg')
	log "conntrack entries $ct0 -> $ct1, socket-LB sendmsg $s0 -> $s1, recvmsg_revnat $(st '.socket_lb.counters.recvmsg_revnat')"
	[ "$ct1" = "$ct0" ] || fail "conntrack entries appeared: $ct0 -> $ct1" || ok=1
	[ "$((s1 - s0))" -ge "$N" ] || fail "sendmsg counter grew by $((s1 - s0)), want >= $N" || ok=1
	return $ok
}

# 3 connections through the VIP (peer checked), one whoami each, then
# blocked in recv() until each one breaks; prints one line per connection
# and "cut K of 3 in S s" (S from the go file's appearance).
CUT_PY='
import errno, os, select, socket, sys, time
vip, port, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conns = []
for i in range(3):
    s = socket.create_connection((vip, port), timeout=5)
    assert s.getpeername()[:2] == (vip, port), "peer %s is not the VIP" % (s.getpeername(),)
    s.sendall(b"whoami\n"); assert s.recv(64).strip(), "no answer"
    conns.append(s)
open(ready, "w").close()
t = time.time() + 20
while not os.path.exists(go) and time.time() < t: time.sleep(0.01)
t0, cut, live = time.time(), 0, list(conns)
while live and time.time() < t0 + 10:
    r, _, _ = select.select(live, [], [], 0.5)
    for s in r:
        try:
            d = s.recv(64); why = "EOF" if not d else "data %r" % d
        except OSError as e:
            why = errno.errorcode.get(e.errno, str(e.errno))
        print("connection %d: %s after %.3f s" % (conns.index(s), why, time.time() - t0))
        cut += why in ("EOF", "ECONNABORTED", "ECONNRESET"); live.remove(s)
print("cut %d of 3 in %.3f s" % (cut, time.time() - t0))
sys.exit(0 if cut == 3 else 1)
'

# one value of policy list's "cut" object
cut_total() { mctl -o json policy list | jq -r ".cut.$1"; }

test_policy_cut() {
	local ok=0 pid i s0 s1 n0 n1 f0 f1 ct0 ct1 err
	[ "$(st '.socket_lb.running')" = true ] || fail "socket LB not running" || return 1
	rm -f "$WORK/cut.ready" "$WORK/cut.go"
	ct0=$(ct_total)
	in_cg_client timeout 40 python3 -c "$CUT_PY" "$TOPO_VIP4" 8000 "$WORK/cut.ready" \
		"$WORK/cut.go" >"$WORK/cut.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for ((i = 0; i < 250; i++)); do
		[ -e "$WORK/cut.ready" ] && break
		sleep 0.02
	done
	[ -e "$WORK/cut.ready" ] || fail "connections not open: $(tail -n 2 "$WORK/cut.out")" ||
		return 1
	ct1=$(ct_total)
	[ "$ct1" = "$ct0" ] && log "3 connections through the socket LB (conntrack $ct0 -> $ct1)" ||
		fail "conntrack entries appeared ($ct0 -> $ct1): not the socket LB" || ok=1
	s0=$(cut_total sockets)
	n0=$(cut_total netns)
	f0=$(cut_total netns_failed)
	touch "$WORK/cut.go"
	mctl policy set "$SVC" --deny-from "$TOPO_CLIENT4/32" >/dev/null ||
		fail "policy set --deny-from failed" || ok=1
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "connections still open 2 s after the change" || ok=1
		wait "$pid"
	else
		wait "$pid" || fail "not every connection was cut: $(tail -n 1 "$WORK/cut.out")" || ok=1
	fi
	BG_PIDS=()
	log "$(cat "$WORK/cut.out")"
	# the worker adds to the totals when its run ends
	cut_wait_idle || fail "the cut did not end within 60 s" || ok=1
	s1=$(cut_total sockets)
	n1=$(cut_total netns)
	f1=$(cut_total netns_failed)
	log "cut sockets $s0 -> $s1, netns entered $n0 -> $n1 (last cut: $(cut_total last_netns) in $(cut_total last_netns_us) us), netns failed $f0 -> $f1"
	[ "$((s1 - s0))" -ge 3 ] || fail "cut.sockets grew by $((s1 - s0)), want >= 3" || ok=1
	[ "$((n1 - n0))" -ge 1 ] || fail "cut.netns grew by $((n1 - n0)), want >= 1" || ok=1
	[ "$f1" = "$f0" ] || fail "cut.netns_failed grew: $(cut_total last_error)" || ok=1
	mctl policy list | grep '^Cut:'
	err=$(in_cg_client python3 -c '
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], 8000)); print("connected")
except OSError as e:
    print(e.strerror)' "$TOPO_CLIENT4" "$TOPO_VIP4" 2>&1)
	[ "$err" = "Operation not permitted" ] && log "a bound connect() from the client: $err" ||
		fail "a bound connect() from the denied client: $err" || ok=1
	mctl policy set "$SVC" --deny-from "" >/dev/null || fail "removing the rule failed" || ok=1
	return $ok
}

# ns_count: distinct network namespaces of the processes in our cgroup
ns_count() {
	local p
	while read -r p; do readlink "/proc/$p/ns/net"; done <"$CG/cgroup.procs" 2>/dev/null |
		sort -u | wc -l
}

# cut_num FIELD: a number of policy list's "cut" object, 0 when a meshd
# without the worker does not have it
cut_num() {
	local v
	v=$(cut_total "$1")
	[[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}

# cut_wait_idle: until the cut worker is idle (60 s at most); a meshd
# without one (state null) cut before it answered
cut_wait_idle() {
	local i s
	for ((i = 0; i < 600; i++)); do
		s=$(cut_total state)
		[ "$s" = idle ] || [ "$s" = null ] && return 0
		sleep 0.1
	done
	return 1
}

# PCUT_NETNS sleepers in the cgroup, each in a network namespace of its own,
# for the time of test_policy_cut_bg_run (killed on every way out)
test_policy_cut_bg() {
	local i rc n=${PCUT_NETNS:-200}
	local -a sleepers=()
	for ((i = 0; i < n; i++)); do
		(echo "$BASHPID" >"$CG/cgroup.procs" && exec unshare -n sleep 300) &
		sleepers+=("$!")
	done
	BG_PIDS+=("${sleepers[@]}") # an interruption kills them too
	test_policy_cut_bg_run "$n"
	rc=$?
	kill "${BG_PIDS[@]}" 2>/dev/null # the sleepers, and the client if it is left
	wait "${BG_PIDS[@]}" 2>/dev/null
	BG_PIDS=()
	return $rc
}

test_policy_cut_bg_run() {
	local ok=0 i n=$1 pid t0 t1 t2 state s0 s1 r0 r1 x0 x1 m
	[ "$(st '.socket_lb.running')" = true ] || fail "socket LB not running" || return 1
	for ((i = 0; i < 300; i++)); do
		[ "$(ns_count)" -ge "$n" ] && break
		sleep 0.1
	done
	log "$(ns_count) network namespaces in the cgroup"
	[ "$(ns_count)" -ge "$n" ] || fail "the $n namespaces did not come up" || return 1
	rm -f "$WORK/cut.ready" "$WORK/cut.go"
	in_cg_client timeout 60 python3 -c "$CUT_PY" "$TOPO_VIP4" 8000 "$WORK/cut.ready" \
		"$WORK/cut.go" >"$WORK/cut.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for ((i = 0; i < 250; i++)); do
		[ -e "$WORK/cut.ready" ] && break
		sleep 0.02
	done
	[ -e "$WORK/cut.ready" ] || fail "connections not open: $(tail -n 2 "$WORK/cut.out")" ||
		return 1
	cut_wait_idle || fail "a cut still running before the test" || return 1
	s0=$(cut_num sockets)
	r0=$(cut_num runs)
	x0=$(cut_num restarts)
	t0=$EPOCHREALTIME
	mctl status >/dev/null || fail "meshctl status failed" || ok=1
	log "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "status without a cut: %.1f ms", (b - a) * 1000 }')"
	t0=$EPOCHREALTIME
	mctl policy set "$SVC" --deny-from 10.255.255.0/24 >/dev/null ||
		fail "policy set (deny nobody) failed" || ok=1
	t1=$EPOCHREALTIME
	mctl status >/dev/null || fail "meshctl status failed" || ok=1
	t2=$EPOCHREALTIME
	state=$(cut_total state)
	log "$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "change answered in %.1f ms, then status in %.1f ms", (b - a) * 1000, (c - b) * 1000 }'); after the status answer the cut is $state ($(cut_total run_netns) namespaces so far)"
	[ "$state" = running ] ||
		fail "the cut was $state when status answered: status waited for it" || ok=1
	touch "$WORK/cut.go"
	mctl policy set "$SVC" --deny-from "$TOPO_CLIENT4/32" >/dev/null ||
		fail "policy set --deny-from failed" || ok=1
	log "second change answered; the cut is $(cut_total state)"
	cut_wait_idle || fail "the cut did not end within 60 s" || ok=1
	for ((i = 0; i < 250; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "connections still open 5 s after the cut ended" || ok=1
	fi
	wait "$pid" || fail "not every connection was cut: $(tail -n 1 "$WORK/cut.out")" || ok=1
	log "$(tail -n 1 "$WORK/cut.out")"
	s1=$(cut_num sockets)
	r1=$(cut_num runs)
	x1=$(cut_num restarts)
	log "cut sockets $s0 -> $s1, runs $r0 -> $r1, restarted $x0 -> $x1, last run $(cut_total last_run_us) us over $(cut_total last_netns) namespaces"
	[ "$((s1 - s0))" -ge 3 ] || fail "cut.sockets grew by $((s1 - s0)), want >= 3" || ok=1
	[ "$((x1 - x0))" -ge 1 ] || fail "no run restarted by the second change" || ok=1
	[ "$((r1 - r0))" -ge 1 ] || fail "no run completed" || ok=1
	m=$(metric 'sluice_policy_cut_runs_total{result="restarted"}')
	[ "$m" = "$x1" ] || fail "/metrics restarted runs $m, policy list $x1" || ok=1
	mctl policy list | grep -A3 '^Cut:'
	# SIGTERM while a cut runs: meshd stops it and exits (meshd_term: 0 within 5 s)
	mctl policy set "$SVC" --deny-from 10.255.254.0/24 >/dev/null ||
		fail "policy set (deny nobody) failed" || ok=1
	state=$(cut_total state)
	t0=$EPOCHREALTIME
	meshd_term || ok=1
	log "SIGTERM while the cut was $state: meshd exited in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms"
	meshd_start || return 1
	mctl policy set "$SVC" --deny-from "" >/dev/null || fail "removing the rule failed" || ok=1
	return $ok
}

test_policy_cut_start() {
	local ok=0 pid i s n
	[ "$(st '.socket_lb.running')" = true ] || fail "socket LB not running" || return 1
	rm -f "$WORK/cut.ready" "$WORK/cut.go"
	in_cg_client timeout 60 python3 -c "$CUT_PY" "$TOPO_VIP4" 8000 "$WORK/cut.ready" \
		"$WORK/cut.go" >"$WORK/cut.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for ((i = 0; i < 250; i++)); do
		[ -e "$WORK/cut.ready" ] && break
		sleep 0.02
	done
	[ -e "$WORK/cut.ready" ] || fail "connections not open: $(tail -n 2 "$WORK/cut.out")" ||
		return 1
	meshd_term || return 1 # folds the journal into the state file
	jq --arg vip "$TOPO_VIP4" --arg c "$TOPO_CLIENT4/32" \
		'.services |= map(if .vip == $vip and .port == 8000 and .protocol == "tcp"
			then .denyFrom = [$c] else . end)' "$STATE" >"$STATE.new" &&
		mv "$STATE.new" "$STATE" || fail "cannot edit $STATE" || return 1
	grep -q "$TOPO_CLIENT4/32" "$STATE" || fail "the deny is not in $STATE" || return 1
	touch "$WORK/cut.go"
	meshd_start || return 1
	cut_wait_idle || fail "the start's cut did not end within 60 s" || ok=1
	for ((i = 0; i < 250; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	wait "$pid" || fail "not every connection was cut: $(tail -n 1 "$WORK/cut.out")" || ok=1
	BG_PIDS=()
	log "$(cat "$WORK/cut.out")"
	s=$(cut_num sockets)
	n=$(cut_num netns)
	log "since the start: cut sockets $s, netns entered $n, runs $(cut_num runs)"
	[ "$s" -ge 3 ] || fail "cut.sockets $s since the start, want >= 3" || ok=1
	[ "$n" -ge 1 ] || fail "cut.netns $n since the start, want >= 1" || ok=1
	mctl policy set "$SVC" --deny-from "" >/dev/null || fail "removing the rule failed" || ok=1
	return $ok
}

test_lb_off() {
	local ok=0 ct0 ct1 new0 new1 links
	meshd_restart --socket-lb off || return 1
	grep -q 'socket LB off: detached' "$LOG" || fail "no 'socket LB off: detached' in the log" || ok=1
	[ "$(st '.socket_lb.enabled')" = false ] || fail "status: socket_lb still enabled" || ok=1
	[ "$(st '.socket_lb.attached')" = false ] || fail "status: socket_lb still attached" || ok=1
	[ "$(cg_lb_progs)" -eq 0 ] || fail "bpftool: socket-LB programs still on $CG" || ok=1
	links=$(find "$PIN" -maxdepth 1 -name 'link_*' -printf '%f ' | tr ' ' '\n' | grep -vc telemetry)
	[ "$links" -eq 0 ] || fail "$links socket-LB link pins left in $PIN" || ok=1
	ct0=$(ct_total)
	new0=$(lb_new)
	in_cg_client timeout 60 python3 "$TOPO_ECHO" tcp "$TOPO_VIP4" 8000 -n "$N" \
		>"$WORK/client.out" 2>&1 || fail "TCP clients failed: $(tail -n 2 "$WORK/client.out")" ||
		return 1
	log "$(cat "$WORK/client.out")"
	ct1=$(ct_total)
	new1=$(lb_new)
	log "packet path: conntrack entries $ct0 -> $ct1, lb_new $new0 -> $new1"
	[ "$ct1" -gt "$ct0" ] || fail "no conntrack entry appeared ($ct0 -> $ct1)" || ok=1
	[ "$((new1 - new0))" -ge "$N" ] || fail "lb_new grew by $((new1 - new0)), want >= $N" || ok=1
	mctl status | grep -E '^Socket LB:'
	return $ok
}

# A loopback TCP pair in our cgroup, held until $WORK/go exists.
HOLD_PY='
import os, socket, sys, time
ready, go = sys.argv[1], sys.argv[2]
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
c = socket.create_connection(ls.getsockname(), timeout=5)
s, _ = ls.accept(); s.settimeout(5)
for a, b in ((c, s), (s, c)):
    a.sendall(b"x" * 65536); n = 0
    while n < 65536: n += len(b.recv(65536))
open(ready, "w").close()
t = time.time() + 20
while not os.path.exists(go) and time.time() < t: time.sleep(0.05)
c.sendall(b"bye"); assert s.recv(3) == b"bye"
c.close(); s.close()
'

test_redirect() {
	local ok=0 b0 b1 i conns hold
	meshd_restart --redirect on || return 1
	[ "$(st '.redirect.running')" = true ] ||
		fail "redirect not running: $(st '.redirect.error')" || return 1
	[ "$(st '.redirect.selftest')" = passed ] || fail "status: self-test $(st '.redirect.selftest')" ||
		ok=1
	[ "$(st '.socket_lb.running')" = true ] || fail "socket LB not back on after restart" || ok=1
	[ "$(cg_redir_progs)" -ge 1 ] || fail "bpftool: no sockops program on $CG" || ok=1
	mctl status >"$WORK/status.txt"
	grep -E '^Redirect:' -A1 "$WORK/status.txt"
	grep -q '^Redirect:    attached to .*self-test passed' "$WORK/status.txt" ||
		fail "meshctl status does not show the redirect with its self-test passed" || ok=1

	# a held pair: status counts it as a redirected connection
	rm -f "$WORK/ready" "$WORK/go"
	in_cg_node timeout 30 python3 -c "$HOLD_PY" "$WORK/ready" "$WORK/go" >"$WORK/hold.out" 2>&1 &
	hold=$!
	BG_PIDS+=("$hold")
	for ((i = 0; i < 250; i++)); do
		[ -e "$WORK/ready" ] && break
		sleep 0.02
	done
	[ -e "$WORK/ready" ] || fail "held pair not ready: $(cat "$WORK/hold.out")" || ok=1
	conns=$(st '.redirect.connections')
	mctl status | grep -E '^             [0-9]+ connections? redirected'
	log "held pair: status redirect.connections $conns"
	[ "$conns" -ge 1 ] 2>/dev/null || fail "status shows $conns redirected connections, want >= 1" ||
		ok=1
	touch "$WORK/go"
	wait "$hold" || fail "held pair failed: $(cat "$WORK/hold.out")" || ok=1
	BG_PIDS=()

	b0=$(st '.redirect.counters.redirected_bytes')
	# 3 MiB: less than meshd's redirect queue bound (4 MiB), so a slow
	# receiver cannot send the pair back to TCP and every byte must be
	# redirected
	in_cg_node timeout 60 "$SOCKPAIR" --pin "$PIN" bulk --bytes $((3 << 20)) \
		--min-redirected $((3 << 20)) >"$WORK/pair.out" 2>&1 ||
		fail "sockpair bulk: $(tail -n 2 "$WORK/pair.out")" || ok=1
	log "$(cat "$WORK/pair.out")"
	b1=$(st '.redirect.counters.redirected_bytes')
	log "redirected bytes $b0 -> $b1, messages $(st '.redirect.counters.redirected_msgs'), sockets in the map $(st '.redirect.sockets')"
	[ "$((b1 - b0))" -ge $((3 << 20)) ] ||
		fail "redirected bytes grew by $((b1 - b0)), want >= $((3 << 20))" || ok=1
	for ((i = 0; i < 150; i++)); do
		[ "$(st '.redirect.sockets')" = 0 ] && break
		sleep 0.02
	done
	[ "$(st '.redirect.sockets')" = 0 ] || fail "redirect map not empty after close" || ok=1
	[ "$(metric sluice_redirected_bytes_total)" -ge "$b1" ] 2>/dev/null ||
		fail "/metrics sluice_redirected_bytes_total is $(metric sluice_redirected_bytes_total)" ||
		ok=1
	return $ok
}

# pinned links of the socket programs: "name id" lines
sock_links() {
	local f
	for f in "$PIN"/link_*; do
		[ -e "$f" ] || continue
		case ${f##*/} in link_telemetry*) continue ;; esac
		printf '%s %s\n' "${f##*/}" "$(bpftool -j link show pinned "$f" | jq -r '.id')"
	done
}

test_restart() {
	local ok=0 before after
	meshd_alive || meshd_start --redirect on || return 1
	before=$(sock_links)
	log "links before: $(echo "$before" | tr '\n' ' ')"
	[ "$(echo "$before" | grep -c .)" -ge 9 ] || fail "fewer than 9 socket link pins" || ok=1
	meshd_restart --redirect on || return 1
	after=$(sock_links)
	[ "$before" = "$after" ] ||
		fail "the links changed over a restart (no in-place swap): $(echo "$after" | tr '\n' ' ')" ||
		ok=1
	[ "$(st '.redirect.selftest')" = passed ] || fail "self-test after restart: $(st '.redirect.selftest')" ||
		ok=1
	[ "$(cg_lb_progs)" -ge 3 ] || fail "socket-LB programs gone after restart" || ok=1
	grep -q 'same-node redirection on cgroup' "$LOG" || fail "no redirect line in the log" || ok=1
	in_cg_client timeout 60 python3 "$TOPO_ECHO" tcp "$TOPO_VIP4" 8000 -n "$N" \
		>"$WORK/client.out" 2>&1 || fail "TCP clients failed: $(tail -n 2 "$WORK/client.out")" ||
		ok=1
	log "$(cat "$WORK/client.out")"
	return $ok
}

test_cleanup() {
	local ok=0 left
	meshd_alive || meshd_start --redirect on || return 1
	[ "$(cg_lb_progs)" -ge 3 ] || fail "socket LB not attached before the kill" || return 1
	meshd_kill9
	[ "$(cg_lb_progs)" -ge 3 ] || fail "socket LB did not outlive kill -9" || ok=1
	in_node "$MESHD" --cleanup --bpffs "$PIN" || fail "meshd --cleanup failed" || ok=1
	left=$(bpftool cgroup show "$CG" 2>/dev/null | awk 'NR > 1' | wc -l)
	[ "$left" -eq 0 ] || fail "$left programs left on $CG after --cleanup" || ok=1
	[ ! -d "$PIN" ] || fail "pin dir left: $(ls "$PIN" | tr '\n' ' ')" || ok=1
	return $ok
}

test_uninstall() {
	local ok=0 i left
	meshd_alive || meshd_start --redirect on || return 1
	mctl uninstall || fail "meshctl uninstall failed" || ok=1
	for ((i = 0; i < 250; i++)); do
		meshd_alive || break
		sleep 0.02
	done
	meshd_alive && fail "meshd still running after uninstall" && ok=1
	wait "$MESHD_PID" 2>/dev/null
	MESHD_PID=
	left=$(bpftool cgroup show "$CG" 2>/dev/null | awk 'NR > 1' | wc -l)
	[ "$left" -eq 0 ] || fail "$left programs left on $CG: $(bpftool cgroup show "$CG")" || ok=1
	if [ -d "$PIN" ]; then
		fail "pin dir left: $(ls "$PIN" | tr '\n' ' ')" || ok=1
	fi
	return $ok
}

ALL=(lb_tcp lb_udp policy_cut policy_cut_bg policy_cut_start lb_off redirect restart uninstall cleanup)

main() {
	local t0 name be
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-meshd-sock.XXXXXX") || exit 1
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	mkdir "$CG" || {
		echo "FAIL: e2e/meshd_sock_setup: cannot create $CG"
		exit 1
	}
	echo "# topology $TOPO_ID, pins $PIN, cgroup $CG"
	if ! topo__up; then
		echo "FAIL: e2e/meshd_sock_setup: topology did not come up"
		exit 1
	fi
	if ! meshd_start --socket-lb on; then
		echo "FAIL: e2e/meshd_sock_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	for svc in "$SVC" "$USVC" "$SVC6"; do
		# shellcheck disable=SC2046
		if ! mctl service add "$svc" $(for be in "${TOPO_BACKENDS[@]}"; do
			if [ "$svc" = "$SVC6" ]; then
				echo "[$(topo__be_addr6 "$be")]:$TOPO_BE_PORT"
			else
				echo "$(topo__be_addr4 "$be"):$TOPO_BE_PORT"
			fi
		done) >/dev/null; then
			echo "FAIL: e2e/meshd_sock_setup: service add $svc failed"
			exit 1
		fi
	done
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e meshd sock: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
