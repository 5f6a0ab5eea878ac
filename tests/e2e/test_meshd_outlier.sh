#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_outlier.sh - passive outlier detection (#14) as meshd and
# meshctl show it: the settings reach the kernel, an ejection the kernel
# made is listed, its event is logged and counted, and it all survives a
# restart. The kernel's part is played by build/tests/tools/healthtool on
# the pinned maps (backend_health, svc_health, and the health_events ring
# through a tiny XDP program under BPF_PROG_TEST_RUN); real ejections by
# real traffic are tests/e2e of the datapath's owners.
#
# Contract: builds the topology of scripts/lib/topology.sh; build/meshd runs
# in the node namespace on 'to-*' with its own pin dir, state file and
# socket, --metrics 127.0.0.1:$MPORT (scraped from the node namespace),
# telemetry and socket LB off (no cgroup is touched). One service, VIP:8000
# over be1 and be2, added with outlier flags. Scenarios, one
# "PASS: e2e/meshd_outlier_<name>" or "FAIL: e2e/meshd_outlier_<name>: <reason>" each:
#   settings    --outlier-failures 5 --outlier-base-ejection 2s reach
#               svc_health (threshold 5, base 2000 ms, 2 backends) and the
#               state file; get -o json shows them and health 2/2
#   ejected     an ejection written into backend_health/svc_health: get
#               shows "ejected until", 3 failures, rst; -o json state
#               ejected; list HEALTHY 1/2; sluice_backend_ejected 1;
#               once its time is over: probation
#   event       an EJECTED record pushed into the ring: meshd logs "backend
#               ADDR of web (SVC) ejected: 3 consecutive failures (rst),
#               until ..."; sluice_backend_ejections_total{reason="rst"} 1;
#               status counts it; a RESTORED record is logged too
#   restart     SIGTERM and start: the ejection is still listed (pinned
#               state), svc_health unchanged, the reconcile changes nothing
#   service_off service set --no-outlier-detection: threshold 0, the
#               ejection cleared, list "(off)"; --outlier-detection: back
#   node_off    meshd --no-outlier-detection: threshold 0 for the service,
#               get says node-wide; started again without it: threshold 5
# meshd, pins, namespaces and temp files are removed on exit, failure or
# interruption. Needs root, bpftool, curl and `make`. About 15 s.
# Usage: test_meshd_outlier.sh [SCENARIO...]   (default: all, in order)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-mdo}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

BUILD=${SLUICE_BUILD:-$ROOT/build}
MESHD=$BUILD/meshd
MESHCTL=$BUILD/meshctl
HEALTHTOOL=$BUILD/tests/tools/healthtool
PIN=/sys/fs/bpf/sluice-o$$
PATTERN='to-*'
MPORT=19466
START_TIMEOUT=20
SVC=$TOPO_VIP4:8000/tcp
BE1=$(topo__be_addr4 be1):$TOPO_BE_PORT
BE2=$(topo__be_addr4 be2):$TOPO_BE_PORT

WORK=
SOCK=
STATE=
LOG=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=("$HEALTHTOOL")
NEEDS_CMDS=(bpftool nsenter curl python3)
SCENARIO_PREFIX=meshd_outlier_
MESHD_FLAGS=(--metrics "127.0.0.1:$MPORT" --telemetry off --socket-lb off)

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

mctl() { "$MESHCTL" -s "$SOCK" "$@"; }
ht() { "$HEALTHTOOL" "$PIN" "$@"; }
scrape() { nsenter --net="/var/run/netns/$TOPO_NS_NODE" curl -sS --max-time 5 "http://127.0.0.1:$MPORT/metrics"; }

# jget EXPR: EXPR (python, on d = service get -o json) printed
jget() {
	mctl -o json service get "$SVC" | python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

svc_id() { jget 'd["id"]'; }
be_id() { jget "[b['id'] for b in d['backends'] if '%s:%s' % (b['address'], b['port']) == '$1'][0]"; }

# expect WHAT GOT WANT
expect() {
	[ "$2" = "$3" ] && { log "$1: $2"; return 0; }
	fail "$1: got '$2', expected '$3'"
}

# expect_metric SERIES VALUE: polls for up to 5 s
expect_metric() {
	local got i
	for ((i = 0; i < 25; i++)); do
		got=$(scrape | awk -v s="$1" 'index($0, s " ") == 1 { print $2; f = 1 } END { if (!f) print "none" }')
		[ "$got" = "$2" ] && { log "$1 $got"; return 0; }
		sleep 0.2
	done
	fail "$1 = $got, expected $2"
}

# expect_log TEXT: meshd logs a line holding TEXT within 5 s
expect_log() {
	local i
	for ((i = 0; i < 50; i++)); do
		grep -qF -- "$1" "$LOG" && { log "logged: $(grep -F -- "$1" "$LOG" | tail -n 1 | cut -c 1-160)"; return 0; }
		sleep 0.1
	done
	fail "meshd did not log \"$1\" within 5 s"
}

ensure_clean() {
	ensure_meshd || return 1
	# every scenario starts from the service as added, no ejection (off
	# clears them)
	if ! mctl service set "$SVC" --no-outlier-detection >/dev/null ||
		! mctl service set "$SVC" --outlier-defaults >/dev/null ||
		! mctl service set "$SVC" --outlier-failures 5 --outlier-base-ejection 2s >/dev/null; then
		fail "service set failed"
	fi
}

# ------------------------------------------------------------- scenarios

test_settings() {
	local ok=0 id
	ensure_clean || return 1
	id=$(svc_id)
	expect "svc_health[$id]" "$(ht show-svc "$id")" \
		"threshold=5 ejected=0 backends=2 max_ejected_pct=50 panic_pct=50 base_ms=2000 max_ms=300000" || ok=1
	expect "state file" "$(python3 -c "import json; print(json.load(open('$STATE'))['services'][0].get('outlierDetection'))")" \
		"{'consecutiveFailures': 5, 'baseEjectionMs': 2000}" || ok=1
	expect "get -o json outlierDetection" "$(jget 'd["outlierDetection"]')" \
		"{'consecutiveFailures': 5, 'baseEjectionMs': 2000}" || ok=1
	expect "get -o json health" "$(jget '(d["health"]["healthy"], d["health"]["total"])')" "(2, 2)" || ok=1
	mctl service get "$SVC" | grep -q '^Outlier:   5 failures in a row eject a backend for 2s' ||
		fail "service get does not describe the settings" || ok=1
	return $ok
}

test_ejected() {
	local ok=0 id be row
	ensure_clean || return 1
	id=$(svc_id)
	be=$(be_id "$BE1")
	ht eject "$be" 60 --svc "$id" || fail "healthtool eject failed" || return 1
	row=$(mctl service get "$SVC" | grep "^$BE1 ")
	log "$row"
	[[ $row == *"ejected until "*" 3 "*"rst "* ]] || fail "service get row: $row" || ok=1
	expect "-o json health" "$(jget "[(b['health']['state'], b['health']['consecutive_failures'], b['health']['last_failure_reason']) for b in d['backends'] if b['id'] == $be][0]")" \
		"('ejected', 3, 'rst')" || ok=1
	[[ $(mctl service list | grep "^$SVC ") == *" 1/2 "* ]] || fail "list HEALTHY not 1/2: $(mctl service list)" || ok=1
	expect "list -o json healthy" "$(mctl -o json service list | python3 -c 'import json, sys; print(json.load(sys.stdin)["services"][0]["health"]["healthy"])')" 1 || ok=1
	expect_metric "sluice_backend_ejected{service=\"$SVC\",backend=\"$BE1\"}" 1 || ok=1
	expect_metric "sluice_service_healthy_backends{service=\"$SVC\"}" 1 || ok=1
	ht eject "$be" 0 || return 1
	expect "after the ejection time" "$(jget "[b['health']['state'] for b in d['backends'] if b['id'] == $be][0]")" probation || ok=1
	return $ok
}

test_event() {
	local ok=0 id be
	ensure_clean || return 1
	id=$(svc_id)
	be=$(be_id "$BE2")
	ht event ejected "$id" "$be" 30 || fail "healthtool event failed" || return 1
	expect_log "backend $BE2 of web ($SVC) ejected: 3 consecutive failures (rst), until " || ok=1
	expect_metric "sluice_backend_ejections_total{service=\"$SVC\",backend=\"$BE2\",reason=\"rst\"}" 1 || ok=1
	expect "status ejected count" "$(mctl -o json status | python3 -c 'import json, sys; print(json.load(sys.stdin)["outlier_detection"]["ejected"])')" 1 || ok=1
	mctl status | grep -q '^Outliers:    detection on; since meshd started: 1 ejected,' ||
		fail "status: $(mctl status | grep Outliers)" || ok=1
	ht event restored "$id" "$be" || return 1
	expect_log "backend $BE2 of web ($SVC) restored: answered on probation" || ok=1
	return $ok
}

test_restart() {
	local ok=0 id be before
	ensure_clean || return 1
	id=$(svc_id)
	be=$(be_id "$BE1")
	ht eject "$be" 60 --svc "$id" || return 1
	before=$(ht show-svc "$id")
	meshd_restart || return 1
	expect "svc_health after the restart" "$(ht show-svc "$id")" "$before" || ok=1
	expect "state after the restart" "$(jget "[b['health']['state'] for b in d['backends'] if b['id'] == $be][0]")" ejected || ok=1
	grep 'reconciled' "$LOG" | tail -n 1 | grep -q ' 0 added, 0 changed, 0 deleted' ||
		fail "the reconcile changed something: $(grep reconciled "$LOG" | tail -n 1)" || ok=1
	return $ok
}

test_service_off() {
	local ok=0 id be
	ensure_clean || return 1
	id=$(svc_id)
	be=$(be_id "$BE1")
	ht eject "$be" 60 --svc "$id" || return 1
	mctl service set "$SVC" --no-outlier-detection >/dev/null || fail "service set --no-outlier-detection failed" || return 1
	[[ $(ht show-svc "$id") == "threshold=0 ejected=0 "* ]] || fail "svc_health: $(ht show-svc "$id")" || ok=1
	[[ $(ht show-be "$be") == "flags=0 fails=0 ejections=0 "* ]] || fail "backend_health: $(ht show-be "$be")" || ok=1
	[[ $(mctl service list | grep "^$SVC ") == *" 2/2 (off) "* ]] || fail "list: $(mctl service list)" || ok=1
	mctl service set "$SVC" --outlier-detection >/dev/null || return 1
	[[ $(ht show-svc "$id") == "threshold=5 "* ]] || fail "on again: $(ht show-svc "$id")" || ok=1
	return $ok
}

test_node_off() {
	local ok=0 id
	ensure_clean || return 1
	id=$(svc_id)
	meshd_restart --no-outlier-detection || return 1
	[[ $(ht show-svc "$id") == "threshold=0 "* ]] || fail "node off: $(ht show-svc "$id")" || ok=1
	mctl service get "$SVC" | grep -q '^Outlier:   off (node-wide' || fail "get does not say node-wide off" || ok=1
	meshd_restart || return 1
	[[ $(ht show-svc "$id") == "threshold=5 "* ]] || fail "node on again: $(ht show-svc "$id")" || ok=1
	return $ok
}

ALL=(settings ejected event restart service_off node_off)

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-meshd-outlier.XXXXXX") || exit 1
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	echo "# topology $TOPO_ID, pins $PIN, metrics 127.0.0.1:$MPORT in the node netns"
	if ! topo__up; then
		echo "FAIL: e2e/meshd_outlier_setup: topology did not come up"
		exit 1
	fi
	if ! meshd_start; then
		echo "FAIL: e2e/meshd_outlier_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	if ! mctl service add "$SVC" "$BE1" "$BE2" --name web --outlier-failures 5 \
		--outlier-base-ejection 2s >/dev/null; then
		echo "FAIL: e2e/meshd_outlier_setup: service add failed"
		exit 1
	fi
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e meshd outlier: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
