#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_health_check.sh - active health checks end to end: meshd probing
# real servers in the backend namespaces of scripts/lib/topology.sh and
# taking failing backends out of the Maglev table.
#
# Serial: 200 ms probes, 100 ms timeout: a busy machine fails healthy backends
#
# Contract: one service 10.96.0.10:80/tcp -> be1..be3:8080 (echo servers),
# probed every 200 ms (timeout 100 ms, thresholds 2/3). Scenarios, one
# "PASS: e2e/health_<name>" or "FAIL: e2e/health_<name>: <reason>" each:
#   tcp_kill     tcp check: be3's server killed -> be3 unhealthy; 60 new
#                connections through the VIP all reach be1/be2; service get
#                and the state file keep be3's weight 1; server restarted ->
#                healthy, connections reach be3 again
#   http_status  http:/healthz on port 8081 (hcserver.py): be2 answers 500
#                -> unhealthy (last status 500), new connections avoid be2,
#                connections opened to be2 before keep echoing; 200 -> back
#   blackhole    be1's namespace drops SYNs to 8081: probes time out, be1
#                unhealthy; `meshctl status` answers all along (no probe
#                blocks meshd's loop); drop removed -> healthy
#   drained      a drained backend (weight 0) is not probed and never
#                revived: it stays draining and gets no new connection
#   restart      meshd restarted while be2 is unhealthy: be2 is still out of
#                the table right after the start (the verdict is in the pinned
#                maps), new connections avoid it; healthy again once it passes
#   panic        every backend answers 500: all stay in the table (new
#                connections succeed), the panic is logged and counted in
#                sluice_probe_panics_total
# Exits non-zero if any failed; namespaces, meshd, pins and temp files are
# removed on exit, failure or interruption. Needs root, nft, python3 and
# `make`. About 30 s.
# Usage: test_health_check.sh [SCENARIO...]   (default: all, in this order)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-hck}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

MESHD=${SLUICE_BUILD:-$ROOT/build}/meshd
MESHCTL=${SLUICE_BUILD:-$ROOT/build}/meshctl
HCSERVER=$ROOT/tests/e2e/health/hcserver.py
HCWAIT=$ROOT/tests/e2e/health/hcwait.py
PIN=/sys/fs/bpf/sluice-hc$$
PATTERN='to-*'
START_TIMEOUT=30
# Any verdict needs at most 3 probes 200 ms apart; 10 s is generous.
WAIT_S=10
HC_PORT=8081
METRICS_PORT=19$((RANDOM % 90 + 10))$((RANDOM % 9))
SVC=$TOPO_VIP4:80/tcp
# The helpers poll often: the system python starts in ~0.1 s, a pyenv shim
# can take over a second on a loaded machine.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

WORK=
SOCK=
STATE=
LOG=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=()
NEEDS_CMDS=(nsenter nft curl)
SCENARIO_PREFIX=health_
MESHD_FLAGS=(--telemetry off --socket-lb off --redirect off --metrics "127.0.0.1:$METRICS_PORT")

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

# Every scenario ends with this: a check that failed (and went on) fails it.
no_failure() { [ ! -s "$WORK/reason" ]; }

mctl() { "$MESHCTL" -s "$SOCK" --timeout 5000 "$@"; }
client() { topo__client timeout 60 "$PY" "$TOPO_ECHO" "$@"; }
be_ns() { topo__ns "$1"; }

# probe_field BE FIELD: FIELD of BE's probe state (hcwait.py get).
probe_field() { "$PY" "$HCWAIT" "$MESHCTL" "$SOCK" "$SVC" get "$1" "$2"; }

# wait_probe ADDR=FIELD=VALUE...: bounded wait until all hold.
wait_probe() {
	local out
	out=$("$PY" "$HCWAIT" "$MESHCTL" "$SOCK" "$SVC" wait "$WAIT_S" "$@") || fail "$out"
}

wait_all_healthy() {
	wait_probe "$(topo__be_addr4 be1)=state=healthy" "$(topo__be_addr4 be2)=state=healthy" \
		"$(topo__be_addr4 be3)=state=healthy"
}

hc_sick() { touch "$WORK/$1.sick"; }
hc_well() { rm -f "$WORK/$1.sick"; }

start_hcservers() {
	local be i
	for be in be1 be2 be3; do
		nsenter --net="/var/run/netns/$(be_ns "$be")" "$PY" "$HCSERVER" --port "$HC_PORT" \
			--sick "$WORK/$be.sick" --ready "$WORK/$be.hcready" >>"$WORK/hc.log" 2>&1 &
		BG_PIDS+=($!)
	done
	for be in be1 be2 be3; do
		for ((i = 0; i < 100; i++)); do
			[ -e "$WORK/$be.hcready" ] && break
			sleep 0.05
		done
		[ -e "$WORK/$be.hcready" ] || fail "health server of $be did not start" || return 1
	done
}

set_check() { mctl service set "$SVC" "$@" >/dev/null || fail "service set $* failed"; }

# ------------------------------------------------------------- scenarios

test_tcp_kill() {
	local be3 pid i
	be3=$(topo__be_addr4 be3)
	set_check --health tcp --health-interval 200ms --health-timeout 100ms \
		--health-thresholds 2/3 || return 1
	wait_all_healthy || return 1
	pid=${TOPO_PIDS[2]}
	kill "$pid" && wait "$pid" 2>/dev/null
	wait_probe "$be3=state=unhealthy" || return 1
	[ "$(probe_field "$be3" lastResult)" = refused ] || fail "be3's last probe not 'refused'"
	[ "$(probe_field "$be3" state.)" = unhealthy ] || fail "service get: be3 not unhealthy"
	# every new connection through the VIP reaches a live server
	client tcp "$TOPO_VIP4" 80 -n 60 --avoid be3 --expect be1,be2 ||
		fail "connections through the VIP reached be3 or failed" || return 1
	# the operator's state is untouched: weight 1 in the file and in get
	"$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
bes = d["services"][0]["backends"]
assert all(b["weight"] == 1 and "unhealthy" not in b for b in bes), bes' "$STATE" ||
		fail "state file changed by the probe verdict" || return 1
	mctl -o json service get "$SVC" | grep -q '"weight": 0' &&
		fail "service get shows a weight 0" && return 1
	rm -f "$TOPO_TMP/be3.ready"
	topo__start_server be3
	for ((i = 0; i < 100; i++)); do
		[ -e "$TOPO_TMP/be3.ready" ] && break
		sleep 0.05
	done
	wait_probe "$be3=state=healthy" || return 1
	client tcp "$TOPO_VIP4" 80 -n 60 --expect be1,be2,be3 ||
		fail "be3 gets no connections after it recovered"
	no_failure
}

test_http_status() {
	local be2 i k
	be2=$(topo__be_addr4 be2)
	set_check --health http:/healthz --health-port "$HC_PORT" --health-interval 200ms \
		--health-timeout 100ms --health-thresholds 2/3 || return 1
	wait_all_healthy || return 1
	rm -f "$WORK/ready" "$WORK/go"
	client hold "$TOPO_VIP4" 80 -n 30 --ready "$WORK/ready" --go "$WORK/go" >"$WORK/hold.out" 2>&1 &
	BG_PIDS+=($!)
	i=$!
	for ((k = 0; k < 200; k++)); do
		[ -e "$WORK/ready" ] && break
		sleep 0.05
	done
	grep -q be2 "$WORK/ready" 2>/dev/null || fail "no held connection to be2: $(cat "$WORK/ready" 2>&1)" || return 1
	hc_sick be2
	wait_probe "$be2=state=unhealthy" || return 1
	[ "$(probe_field "$be2" lastHttpStatus)" = 500 ] || fail "be2's last status not 500"
	client tcp "$TOPO_VIP4" 80 -n 60 --avoid be2 --expect be1,be3 ||
		fail "new connections reached be2 while it answered 500"
	touch "$WORK/go"
	wait "$i" || fail "connections opened to be2 before did not survive: $(cat "$WORK/hold.out")"
	cat "$WORK/hold.out"
	hc_well be2
	wait_probe "$be2=state=healthy"
	no_failure
}

test_blackhole() {
	local be1 ns i answered=0
	be1=$(topo__be_addr4 be1)
	ns=$(be_ns be1)
	set_check --health http:/healthz --health-port "$HC_PORT" --health-interval 200ms \
		--health-timeout 150ms --health-thresholds 2/3 || return 1
	wait_all_healthy || return 1
	ip netns exec "$ns" nft -f - <<-EOF || fail "nft in be1 failed" || return 1
		table inet hcdrop {
			chain in { type filter hook input priority 0; tcp dport $HC_PORT drop; }
		}
	EOF
	# meshd keeps answering while its probes to be1 hang
	for ((i = 0; i < WAIT_S * 10; i++)); do
		mctl status >/dev/null || fail "meshctl status failed while probes time out" || break
		answered=$((answered + 1))
		((i % 5)) || [ "$(probe_field "$be1" state)" != unhealthy ] || break
	done
	[ "$(probe_field "$be1" state)" = unhealthy ] || fail "be1 not unhealthy within ${WAIT_S}s"
	[ "$(probe_field "$be1" lastResult)" = timeout ] || fail "be1's last probe is not 'timeout'"
	ip netns exec "$ns" nft delete table inet hcdrop
	log "meshctl status answered $answered times while be1 was blackholed"
	wait_probe "$be1=state=healthy"
	no_failure
}

test_drained() {
	local be2 n0 n1
	be2=$(topo__be_addr4 be2)
	set_check --health http:/healthz --health-port "$HC_PORT" --health-interval 200ms \
		--health-timeout 100ms || return 1
	wait_all_healthy || return 1
	hc_sick be2
	wait_probe "$be2=state=unhealthy" || return 1
	mctl backend drain "$SVC" "$be2:8080" >/dev/null || fail "drain failed" || return 1
	hc_well be2
	[ "$(probe_field "$be2" state)" = - ] || fail "a drained backend is still probed"
	# several probe rounds of the others: be2 stays draining
	n0=$(probe_field "$(topo__be_addr4 be1)" probes)
	for ((i = 0; i < WAIT_S * 20; i++)); do
		n1=$(probe_field "$(topo__be_addr4 be1)" probes)
		[ "$n1" -ge $((n0 + 4)) ] 2>/dev/null && break
		sleep 0.05
	done
	[ "$n1" -ge $((n0 + 4)) ] 2>/dev/null || fail "be1 not probed meanwhile ($n0 -> $n1)"
	[ "$(probe_field "$be2" state.)" = draining ] || fail "drained be2 revived: $(probe_field "$be2" state.)"
	client tcp "$TOPO_VIP4" 80 -n 40 --avoid be2 || fail "new connections reached drained be2"
	mctl backend weight "$SVC" "$be2:8080" 1 >/dev/null
	no_failure
}

test_restart() {
	local be2
	be2=$(topo__be_addr4 be2)
	set_check --health http:/healthz --health-port "$HC_PORT" --health-interval 200ms \
		--health-timeout 100ms || return 1
	wait_all_healthy || return 1
	hc_sick be2
	wait_probe "$be2=state=unhealthy" || return 1
	# probes 10 s apart from now on (an edit keeps the verdict): a restart
	# that forgot it would need 3 new failures, 20 s, to take be2 out again
	set_check --health http:/healthz --health-port "$HC_PORT" --health-interval 10s \
		--health-timeout 100ms || return 1
	meshd_restart || return 1
	[ "$(probe_field "$be2" state.)" = unhealthy ] ||
		fail "after the restart be2 is '$(probe_field "$be2" state.)', not unhealthy"
	client tcp "$TOPO_VIP4" 80 -n 40 --avoid be2 ||
		fail "new connections reached be2 after the restart"
	hc_well be2
	set_check --health http:/healthz --health-port "$HC_PORT" --health-interval 200ms \
		--health-timeout 100ms || return 1
	wait_probe "$be2=state=healthy"
	no_failure
}

test_panic() {
	local be m
	set_check --health http:/healthz --health-port "$HC_PORT" --health-interval 200ms \
		--health-timeout 100ms || return 1
	wait_all_healthy || return 1
	for be in be1 be2 be3; do hc_sick "$be"; done
	wait_probe "$(topo__be_addr4 be1)=state=unhealthy (panic: kept)" \
		"$(topo__be_addr4 be2)=state=unhealthy (panic: kept)" \
		"$(topo__be_addr4 be3)=state=unhealthy (panic: kept)" || return 1
	client tcp "$TOPO_VIP4" 80 -n 60 --expect be1,be2,be3 ||
		fail "connections refused while every backend failed (no panic)"
	grep -q 'every backend fails its health check.*panic' "$LOG" || fail "panic not logged"
	m=$(nsenter --net="/var/run/netns/$TOPO_NS_NODE" curl -s "http://127.0.0.1:$METRICS_PORT/metrics")
	grep -Eq '^sluice_probe_panics_total [1-9]' <<<"$m" || fail "panic not counted"
	grep -Eq '^sluice_probe_results_total\{result="http_status"\} [1-9]' <<<"$m" ||
		fail "http_status results not counted"
	grep -q '^sluice_probe_duration_seconds_bucket{le="+Inf"}' <<<"$m" || fail "no histogram"
	for be in be1 be2 be3; do hc_well "$be"; done
	wait_all_healthy
	no_failure
}

ALL=(tcp_kill http_status blackhole drained restart panic)

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-health-e2e.XXXXXX") || exit 1
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	if ! topo__up; then
		echo "FAIL: e2e/health_setup: topology did not come up"
		exit 1
	fi
	if ! start_hcservers || ! meshd_start; then
		echo "FAIL: e2e/health_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	if ! mctl service add "$SVC" "$(topo__be_addr4 be1):8080" "$(topo__be_addr4 be2):8080" \
		"$(topo__be_addr4 be3):8080" >/dev/null; then
		echo "FAIL: e2e/health_setup: service add failed"
		exit 1
	fi
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e health: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
