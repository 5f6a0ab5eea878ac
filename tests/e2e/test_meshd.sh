#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd.sh - acceptance tests of the agent: meshd + meshctl driving the
# datapath in network namespaces.
#
# Contract: builds the topology of scripts/lib/topology.sh (client -> node
# -> be1..be3 echo servers), runs build/meshd in the node namespace on
# 'to-*' with its own pin dir, state file and socket (all named after $$),
# and drives it with build/meshctl. Scenarios, one "PASS: e2e/meshd_<name>"
# or "FAIL: e2e/meshd_<name>: <reason>" line each:
#   api_auth            a non-root client is refused ("permission denied"),
#                       also after chmod 0666 on the socket; nothing changes
#   hotplug             a matching veth created later gets xdp_lb in < 2 s;
#                       deleted and recreated (twice), it gets it again
#   foreign_xdp         a matching veth that carries someone else's XDP
#                       program keeps it, status names it, GET /readyz
#                       answers 503 naming it; 200 once it is gone
#   apply               apply -f scripts/examples/services.yaml, then
#                       service list -o json holds exactly that; --dry-run of
#                       a changed file prints the diff and changes nothing;
#                       applying the same file twice rewrites no map entry
#   rejections          every invalid update (apply files, CLI, raw API) is
#                       refused naming the problem; map dumps (services,
#                       backends, maglev) and the state file byte-identical
#   api_unknown_arg     a raw API request with an unknown argument (a typo)
#                       is refused, not silently ignored
#   map_full            with every backend id in use (327679, the limit), an
#                       apply whose second change needs new ids fails with a
#                       clear error; the first change is rolled back: map
#                       contents and state file as before
#   drain               after backend drain, 100 new connections avoid the
#                       backend; connections opened to it before keep echoing
#   undrain             weight 7, drain, restart meshd: undrain gives back 7
#                       (kept in the state file); a second undrain is refused
#   restart_state       SIGTERM exits 0 leaving the datapath attached and
#                       working; after a restart service list -o json and the
#                       state file are identical and traffic flows
#   restart_under_load  50 streaming connections + a loop of new ones while
#                       meshd is killed -9 and restarted 5 times: no error,
#                       conntrack kept, xdp_lb attached at every 50 ms poll,
#                       and the same XDP program throughout (reused, #16)
#   restart_reuse       10 held connections + new ones while meshd restarts:
#                       the same build reuses its pinned programs (status
#                       -o json programs.reused, the Programs: line, the log
#                       line, the prog id unchanged); --fib-forward off
#                       (another config) and --reload-programs load and
#                       swap (reason given, prog id changed); traffic
#                       checks after each; no held connection breaks
#   grow                connections held open while 9 weight-0 backends join
#                       (3 -> 12: the service outgrows its 1021-slot Maglev
#                       table and gets a 2039-slot one, explain says so) and
#                       leave again (back to 1021): they keep echoing; new
#                       connections meanwhile reach be1..be3 only
# Exits non-zero if any failed. meshd, namespaces, pins and temp files are
# removed on exit, failure or interruption. Needs root, bpftool, python3
# with PyYAML (the system /usr/bin/python3 for the uid-65534 client), and
# `make` (build/meshd, build/meshctl). About 45 s idle, 2 min loaded.
# Usage: test_meshd.sh [SCENARIO...]   (default: all but restart_under_load,
# in the order above: it judges progress over 0.4 s windows and the
# poller's rate, so test_meshd_restart_load.sh runs it with the machine to
# itself, and this suite may share it)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-mde}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

MESHD=${SLUICE_BUILD:-$ROOT/build}/meshd
MESHCTL=${SLUICE_BUILD:-$ROOT/build}/meshctl
MAPSNAP=${SLUICE_BUILD:-$ROOT/build}/tests/tools/mapsnap
HELPERS=$ROOT/tests/e2e/meshd
CHECK=$HELPERS/check.py
EXAMPLE=$ROOT/scripts/examples/services.yaml
PIN=/sys/fs/bpf/sluice-t$$
PATTERN='to-*'
# Ready within this many seconds of a (re)start, or the start failed.
START_TIMEOUT=30
CLIENT_TIMEOUT=60
# Large applies (map_full: 327679 backends) take ~10 s; nothing else comes close.
CTL_TIMEOUT_MS=120000
NOBODY=65534
# The uid-65534 client needs a python3 outside /root (pyenv shims are not
# reachable for it); `check.py api` uses the stdlib only.
NOBODY_PY=/usr/bin/python3

WORK=
SOCK=
STATE=
LOG=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=()
NEEDS_CMDS=(bpftool setpriv nsenter curl)
SCENARIO_PREFIX=meshd_
# telemetry, socket LB and redirect off: meshd's default cgroup is the
# cgroup2 root, the whole machine's; they are tested on a child cgroup in
# test_meshd_metrics.sh and test_meshd_sock.sh
MESHD_FLAGS=(--telemetry off --socket-lb off --redirect off)

# VIP ports of traffic.yaml: 8000 tcp/udp balanced with weights, 8001 no
# backends (refused), 8002 equal weights for the drain test.
SVC_WEB=$TOPO_VIP4:8000/tcp
SVC_DRAIN=$TOPO_VIP4:8002/tcp

log() { printf '%s\n' "$*"; }

# fail TEXT: report a problem; the first one becomes the FAIL line's reason.
fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

in_node() { nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$@"; }
client() { topo__client timeout "$CLIENT_TIMEOUT" python3 "$TOPO_ECHO" "$@"; }
mctl() { "$MESHCTL" -s "$SOCK" --timeout "$CTL_TIMEOUT_MS" "$@"; }
api() { python3 "$CHECK" api "$SOCK" "$@"; }

# run CMD...: stdout+stderr in $OUT, exit status in $RC.
run() {
	OUT=$("$@" 2>&1)
	RC=$?
}

# ------------------------------------------------------------------ meshd

# --------------------------------------------------------------- helpers

# Services, backends and Maglev tables (inner map ids: a table swapped
# for an identical one shows) plus the state file.
snapshot() {
	local m
	{
		for m in services backends maglev; do
			echo "## map $m"
			bpftool map dump pinned "$PIN/$m" 2>&1
		done
		echo "## state file"
		cat "$STATE" 2>&1
	} >"$1"
}

# same_snapshot BEFORE AFTER WHAT
same_snapshot() {
	if ! cmp -s "$1" "$2"; then
		diff "$1" "$2" | head -n 12 | sed 's/^/      /'
		fail "$3: maps or state file changed"
		return 1
	fi
}

# readyz CODE LINE-REGEX: meshd's GET /readyz (default --metrics :9465, in
# the node namespace) answers CODE with a body line matching LINE-REGEX.
readyz() {
	local code
	code=$(in_node curl -s --max-time 5 -o "$WORK/readyz" -w '%{http_code}' \
		http://127.0.0.1:9465/readyz)
	log "GET /readyz: $code $(tr '\n' '|' <"$WORK/readyz")"
	[ "$code" = "$1" ] && grep -q "$2" "$WORK/readyz" ||
		fail "GET /readyz: $code, want $1 with a line matching /$2/"
}

# XDP program id on a node interface, empty if none.
xdp_prog_id() {
	ip -n "$TOPO_NS_NODE" -d link show dev "$1" 2>/dev/null |
		sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p' | head -n 1
}

# wait_xdp DEV SECONDS: poll every 50 ms; prints the wait in ms.
wait_xdp() {
	local t0=$EPOCHREALTIME i
	for ((i = 0; i <= $2 * 20; i++)); do
		if [ -n "$(xdp_prog_id "$1")" ]; then
			awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d\n", (b - a) * 1000 }'
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# status -o json attachments: "ifname:prog_id" lines.
attachments() {
	mctl -o json status | python3 -c '
import json, sys
for a in json.load(sys.stdin)["attachments"]:
    print("%s:%s:%s" % (a["ifname"], a["hook"], a["prog_id"]))'
}

write_traffic_yaml() {
	local be v4 v6
	{
		echo "services:"
		echo "  - {name: web, vip: $TOPO_VIP4, port: 8000, protocol: tcp, backends: ["
		for be in "${TOPO_BACKENDS[@]}"; do
			v4=$(topo__be_addr4 "$be")
			echo "      {address: $v4, port: $TOPO_BE_PORT, weight: $([ "$be" = be1 ] && echo 2 || echo 1)},"
		done
		echo "    ]}"
		echo "  - {name: web6, vip: '$TOPO_VIP6', port: 8000, protocol: tcp, backends: ["
		for be in "${TOPO_BACKENDS[@]}"; do
			v6=$(topo__be_addr6 "$be")
			echo "      {address: '$v6', port: $TOPO_BE_PORT},"
		done
		echo "    ]}"
		echo "  - name: echo-udp"
		echo "    vip: $TOPO_VIP4"
		echo "    port: 8000"
		echo "    protocol: udp"
		echo "    backends:"
		for be in "${TOPO_BACKENDS[@]}"; do
			echo "      - address: $(topo__be_addr4 "$be")"
			echo "        port: $TOPO_BE_PORT"
		done
		echo "  - {name: closed, vip: $TOPO_VIP4, port: 8001, protocol: tcp}"
		echo "  - name: drain-me"
		echo "    vip: $TOPO_VIP4"
		echo "    port: 8002"
		echo "    protocol: tcp"
		echo "    backends:"
		for be in "${TOPO_BACKENDS[@]}"; do
			echo "      - {address: $(topo__be_addr4 "$be"), port: $TOPO_BE_PORT, weight: 1}"
		done
	} >"$WORK/traffic.yaml"
}

apply_traffic() {
	run mctl apply -f "$WORK/traffic.yaml"
	[ "$RC" -eq 0 ] || fail "apply -f traffic.yaml: $OUT"
}

# ------------------------------------------------------------- scenarios

# As an unprivileged uid with no groups.
nobody() { setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups "$@"; }

test_api_auth() {
	local mode ok=0
	ensure_meshd || return 1
	apply_traffic || return 1
	mode=$(stat -c %a "$SOCK")
	[ "$mode" = 600 ] || fail "socket mode is $mode, not 600" || ok=1
	snapshot "$WORK/auth.before"

	# meshctl with the socket's file mode doing the refusing ...
	run nobody "$MESHCTL" -s "$SOCK" status
	log "uid $NOBODY, socket 0600: exit $RC: $OUT"
	[ "$RC" -ne 0 ] && [[ $OUT == *"permission denied"* ]] ||
		fail "non-root status with socket 0600 not refused with 'permission denied': $OUT" || ok=1
	# ... and with the mode loosened: meshd's SO_PEERCRED check must.
	chmod 0666 "$SOCK"
	run nobody "$MESHCTL" -s "$SOCK" status
	log "uid $NOBODY, socket 0666: exit $RC: $OUT"
	[ "$RC" -ne 0 ] && [[ $OUT == *"permission denied"* ]] && [[ $OUT == *"$NOBODY"* ]] ||
		fail "non-root status with socket 0666 not refused by meshd (want 'permission denied' naming uid $NOBODY): $OUT" || ok=1
	run nobody "$MESHCTL" -s "$SOCK" -o json service add "$TOPO_VIP4:9999/tcp"
	log "uid $NOBODY, socket 0666, -o json service add: exit $RC: $OUT"
	[ "$RC" -ne 0 ] && [[ $OUT == *'"error"'*"permission denied"* ]] ||
		fail "non-root service add with socket 0666 not refused: $OUT" || ok=1
	run nobody "$NOBODY_PY" "$CHECK" api "$SOCK" service.del --args "{\"service\": \"$SVC_WEB\"}"
	log "uid $NOBODY, socket 0666, raw service.del: exit $RC: $OUT"
	[ "$RC" -eq 1 ] && [[ $OUT == *"permission denied"* ]] ||
		fail "non-root raw service.del not refused: $OUT" || ok=1
	# a refused peer trickling a request that never ends must not hold
	# the single-threaded agent: root still gets answers meanwhile
	nobody "$NOBODY_PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
end = time.time() + 4
while time.time() < end:
    try:
        s.send(b"x")
    except OSError:
        break
    time.sleep(0.3)
' "$SOCK" &
	local trickle=$! t0 ms
	sleep 0.3
	t0=$EPOCHREALTIME
	run mctl status
	ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	wait "$trickle" 2>/dev/null
	log "root status while a refused peer trickles bytes: exit $RC in ${ms} ms"
	[ "$RC" -eq 0 ] && [ "$ms" -lt 2500 ] ||
		fail "root status took ${ms} ms (exit $RC) while a refused peer trickled bytes" || ok=1
	chmod 0600 "$SOCK"
	snapshot "$WORK/auth.after"
	same_snapshot "$WORK/auth.before" "$WORK/auth.after" "after the refused requests" || ok=1
	run mctl status
	[ "$RC" -eq 0 ] || fail "root is refused after the non-root attempts: $OUT" || ok=1
	meshd_alive || fail "meshd died" || ok=1
	return $ok
}

test_hotplug() {
	local dev=to-hp$$ peer=hpp$$ ms id ref i ok=0
	ensure_meshd || return 1
	dev=${dev:0:15}
	peer=${peer:0:15}
	ref=$(xdp_prog_id to-client)
	[ -n "$ref" ] || fail "to-client carries no XDP program" || return 1
	for i in 1 2 3; do
		# round 2 waits for meshd to forget the link before recreating
		# it; round 3 deletes and recreates at once (same name, new
		# ifindex, events back to back)
		ip -n "$TOPO_NS_NODE" link add "$dev" type veth peer name "$peer" ||
			fail "cannot create $dev" || return 1
		if ms=$(wait_xdp "$dev" 2); then
			id=$(xdp_prog_id "$dev")
			log "round $i: $dev got prog id $id after ${ms} ms"
			[ "$id" = "$ref" ] ||
				fail "round $i: $dev got prog id $id, the others carry $ref" || ok=1
		else
			fail "round $i: $dev has no XDP program 2 s after it was created" || ok=1
		fi
		[ -z "$(xdp_prog_id "$peer")" ] ||
			fail "$peer (not matching '$PATTERN') got an XDP program" || ok=1
		attachments | grep -q "^$dev:xdp:" ||
			fail "round $i: status does not list $dev" || ok=1
		ip -n "$TOPO_NS_NODE" link del "$dev"
		[ "$i" -eq 3 ] && break
		if [ "$i" -eq 1 ]; then
			for ((ms = 0; ms < 40; ms++)); do
				attachments | grep -q "^$dev:" || break
				sleep 0.05
			done
			if attachments | grep -q "^$dev:"; then
				fail "status still lists $dev 2 s after it was deleted" || ok=1
			else
				log "deleted: status forgot $dev"
			fi
		fi
	done
	meshd_alive || fail "meshd died" || ok=1
	return $ok
}

test_apply() {
	local ok=0
	ensure_meshd || return 1
	run mctl apply -f "$EXAMPLE"
	log "apply -f $(basename "$EXAMPLE"): exit $RC"
	printf '%s\n' "$OUT" | tail -n 3 | sed 's/^/      /'
	[ "$RC" -eq 0 ] || fail "apply -f $EXAMPLE failed: $OUT" || return 1
	mctl -o json service list >"$WORK/list.json" || fail "service list -o json failed" || return 1
	python3 "$CHECK" same-state "$EXAMPLE" "$WORK/list.json" ||
		fail "service list -o json differs from $EXAMPLE" || ok=1
	python3 "$CHECK" same-state "$EXAMPLE" "$STATE" >/dev/null ||
		fail "state file differs from $EXAMPLE" || ok=1

	# Re-applying the same file must rewrite nothing (no Maglev swap).
	snapshot "$WORK/apply.before"
	run mctl apply -f "$EXAMPLE"
	[ "$RC" -eq 0 ] || fail "second apply -f $EXAMPLE failed: $OUT" || ok=1
	snapshot "$WORK/apply.again"
	same_snapshot "$WORK/apply.before" "$WORK/apply.again" "re-apply of an unchanged file" || ok=1

	# A changed file: one update (weights), one delete (dns), one add.
	python3 - "$EXAMPLE" "$WORK/changed.yaml" <<-'EOF' || return 1
		import sys, yaml
		d = yaml.safe_load(open(sys.argv[1]))
		web = next(s for s in d["services"] if s["name"] == "web")
		web["backends"][0]["weight"], web["backends"][1]["weight"] = 80, 20
		d["services"] = [s for s in d["services"] if s["name"] != "dns"]
		d["services"].append({"name": "metrics", "vip": "10.96.0.99", "port": 9090,
		                      "protocol": "tcp",
		                      "backends": [{"address": "10.0.4.10", "port": 9090}]})
		yaml.safe_dump(d, open(sys.argv[2], "w"))
	EOF
	mctl -o json service list >"$WORK/list.before"
	run mctl apply -f "$WORK/changed.yaml" --dry-run
	log "apply --dry-run of a changed file: exit $RC"
	printf '%s\n' "$OUT" | sed 's/^/      /'
	[ "$RC" -eq 0 ] || fail "apply --dry-run failed: $OUT" || ok=1
	local ref
	for ref in 10.96.0.10:80/tcp 10.96.0.53:53/udp 10.96.0.99:9090/tcp; do
		[[ $OUT == *"$ref"* ]] || fail "--dry-run output does not name $ref" || ok=1
	done
	[[ $OUT == *"10.0.4.10:9090"* ]] || fail "--dry-run output does not show the new backend" || ok=1
	[[ $OUT == *"80"* ]] || fail "--dry-run output does not show the new weight" || ok=1
	mctl -o json service list >"$WORK/list.after"
	cmp -s "$WORK/list.before" "$WORK/list.after" ||
		fail "--dry-run changed service list -o json" || ok=1
	snapshot "$WORK/apply.dry"
	same_snapshot "$WORK/apply.before" "$WORK/apply.dry" "--dry-run" || ok=1

	run mctl apply -f "$WORK/changed.yaml"
	[ "$RC" -eq 0 ] || fail "apply -f of the changed file failed: $OUT" || ok=1
	mctl -o json service list >"$WORK/list.json"
	python3 "$CHECK" same-state "$WORK/changed.yaml" "$WORK/list.json" ||
		fail "after applying the changed file, service list differs from it" || ok=1

	# Back to the example through a request meshd reads lazily (>= 64 KiB:
	# one service's tree at a time, #16).
	python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], "w"))' \
		"$EXAMPLE" "$WORK/example.json" || return 1
	run api apply --desired "$WORK/example.json" --pad 70000
	[ "$RC" -eq 0 ] || fail "apply read lazily failed: $OUT" || ok=1
	mctl -o json service list >"$WORK/list.json"
	python3 "$CHECK" same-state "$EXAMPLE" "$WORK/list.json" ||
		fail "after an apply read lazily, service list differs from $EXAMPLE" || ok=1
	python3 "$CHECK" same-state "$EXAMPLE" "$STATE" >/dev/null ||
		fail "after an apply read lazily, the state file differs from $EXAMPLE" || ok=1
	return $ok
}

# reject NAME NEEDLE CMD...: CMD must fail, its output must match NEEDLE
# (an extended regex, case-insensitive), and the snapshot must not move.
reject() {
	local name=$1 needle=$2
	shift 2
	run "$@"
	snapshot "$WORK/reject.after"
	if [ "$RC" -eq 0 ]; then
		fail "$name: accepted (exit 0): $(head -c 200 <<<"$OUT")"
	elif ! grep -qiE -- "$needle" <<<"$OUT"; then
		fail "$name: error does not name '$needle': $OUT"
	else
		log "ok $name: $(head -n 1 <<<"$OUT" | cut -c 1-150)"
		same_snapshot "$WORK/reject.before" "$WORK/reject.after" "$name"
	fi
}

test_rejections() {
	local name needle i ok=0 bes=() json
	ensure_meshd || return 1
	apply_traffic || return 1
	snapshot "$WORK/reject.before"
	python3 "$CHECK" bad-cases "$WORK/bad" >"$WORK/bad.cases" || return 1
	# Apply files: through meshctl (validated locally first), then sent
	# raw, so meshd's own validation answers too.
	while IFS=$'\t' read -r name needle; do
		reject "apply $name" "$needle" mctl apply -f "$WORK/bad/$name.json" || ok=1
		reject "raw apply $name" "$needle" api apply --desired "$WORK/bad/$name.json" || ok=1
		# >= 64 KiB: meshd reads the desired state one service at a time
		reject "raw apply $name (read lazily)" "$needle" \
			api apply --desired "$WORK/bad/$name.json" --pad 70000 || ok=1
	done <"$WORK/bad.cases"
	# invalid JSON (a port "08080") in a lazily read request: the whole
	# request's error, before the service's own (its unknown field)
	reject "raw apply with a leading zero (read lazily)" "bad request: request:1:.*leading zero" \
		api apply --desired "$WORK/bad/unknown_field.json" --pad 70000 --zero-pad-last || ok=1

	reject "service add of an existing service" "already exists" \
		mctl service add "$SVC_WEB" || ok=1
	reject "service add port 0" 'port "0"' mctl service add "$TOPO_VIP4:0/tcp" || ok=1
	reject "service add port 70000" 70000 mctl service add "$TOPO_VIP4:70000/tcp" || ok=1
	reject "service add malformed VIP" 10.96.0.300 mctl service add 10.96.0.300:80/tcp || ok=1
	reject "service add mixed families" IPv6 \
		mctl service add "$TOPO_VIP4:9000/tcp" "10.10.1.2:8080" "[fd00:10:1::2]:8080" || ok=1
	reject "service add all weights 0" "every weight is 0" \
		mctl service add "$TOPO_VIP4:9000/tcp" 10.10.1.2:8080@0 10.10.2.2:8080@0 || ok=1
	for ((i = 0; i < 1025; i++)); do
		bes+=("10.20.$((i / 250)).$((i % 250 + 1)):8080")
	done
	reject "service add 1025 backends" '1025|1024|too many' mctl service add "$TOPO_VIP4:9000/tcp" "${bes[@]}" || ok=1
	reject "backend add port 70000" 70000 mctl backend add "$SVC_WEB" 10.10.1.9:70000 || ok=1
	reject "backend add malformed address" 10.10.1.999 \
		mctl backend add "$SVC_WEB" 10.10.1.999:8080 || ok=1
	reject "backend add other family" IPv6 mctl backend add "$SVC_WEB" "[fd00:10:1::2]:8080" || ok=1
	reject "backend weight 70000" 70000 mctl backend weight "$SVC_WEB" 10.10.1.2:8080 70000 || ok=1

	# The same through the raw API: meshd validates, not only meshctl.
	reject "raw service.add existing" "already exists" \
		api service.add --args "{\"service\": \"$SVC_WEB\"}" || ok=1
	reject "raw service.add port 0" "0" api service.add --args "{\"service\": \"$TOPO_VIP4:0/tcp\"}" || ok=1
	reject "raw service.add port 70000" 70000 \
		api service.add --args "{\"service\": \"$TOPO_VIP4:70000/tcp\"}" || ok=1
	reject "raw service.add malformed VIP" 10.96.0.300 \
		api service.add --args '{"service": "10.96.0.300:80/tcp"}' || ok=1
	reject "raw service.add backend port 70000" 70000 api service.add --args \
		"{\"service\": \"$TOPO_VIP4:9000/tcp\", \"backends\": [{\"address\": \"10.10.1.2\", \"port\": 70000}]}" || ok=1
	reject "raw service.add mixed families" IPv6 api service.add --args \
		"{\"service\": \"$TOPO_VIP4:9000/tcp\", \"backends\": [{\"address\": \"fd00:10:1::2\", \"port\": 8080}]}" || ok=1
	reject "raw service.add all weights 0" "every weight is 0" api service.add --args \
		"{\"service\": \"$TOPO_VIP4:9000/tcp\", \"backends\": [{\"address\": \"10.10.1.2\", \"port\": 8080, \"weight\": 0}]}" || ok=1
	json=$(python3 -c 'import json; print(json.dumps([{"address": "10.20.%d.%d" % (i // 250, i % 250 + 1), "port": 8080} for i in range(1025)]))')
	reject "raw service.add 1025 backends" 1025 api service.add --args \
		"{\"service\": \"$TOPO_VIP4:9000/tcp\", \"backends\": $json}" || ok=1
	reject "raw backend.weight 70000" 70000 api backend.weight --args \
		"{\"service\": \"$SVC_WEB\", \"backend\": \"10.10.1.2:8080\", \"weight\": 70000}" || ok=1
	meshd_alive || fail "meshd died" || ok=1
	return $ok
}

# Unknown arguments of an API request: a typo ("backend" for "backends")
# must not silently create a service without its backends.
test_api_unknown_arg() {
	local ok=0
	ensure_meshd || return 1
	apply_traffic || return 1
	snapshot "$WORK/reject.before"
	reject "raw service.add with unknown argument 'colour'" colour api service.add --args \
		"{\"service\": \"$TOPO_VIP4:9001/tcp\", \"colour\": \"red\"}" || ok=1
	reject "raw service.add with 'backend' (typo of 'backends')" backend api service.add --args \
		"{\"service\": \"$TOPO_VIP4:9002/tcp\", \"backend\": [{\"address\": \"10.10.1.2\", \"port\": 8080}]}" || ok=1
	apply_traffic >/dev/null
	return $ok
}

test_map_full() {
	local ok=0 first last nsvc nbe
	ensure_meshd || return 1
	read -r first last nsvc nbe < <(python3 "$CHECK" fill "$WORK/full.json" "$WORK/full-changed.json") &&
		[ -n "$nbe" ] || fail "check.py fill failed" || return 1
	run mctl apply -f "$WORK/full.json"
	log "apply of $nsvc services with $nbe backends in all: exit $RC: $(tail -n 1 <<<"$OUT")"
	[ "$RC" -eq 0 ] || fail "apply of $nbe backends (the limit) failed: $(tail -n 1 <<<"$OUT")" || return 1
	# The first service's weight change succeeds before the last one
	# runs out of ids, so the rollback rewrites it: compare content.
	"$MAPSNAP" "$PIN" "$WORK/full.before" "$first" "$last" &&
		cp "$STATE" "$WORK/full.state" || fail "map snapshot failed" || return 1
	run mctl apply -f "$WORK/full-changed.json"
	log "apply needing more backend ids than are free: exit $RC: $OUT"
	if [ "$RC" -eq 0 ]; then
		fail "an apply that needs more backend ids than the map holds was accepted" || ok=1
	elif ! grep -qiE 'backends map.*(full|no free|limit)' <<<"$OUT"; then
		fail "map-full error does not say the backends map is full: $OUT" || ok=1
	fi
	"$MAPSNAP" "$PIN" "$WORK/full.after" "$first" "$last"
	if cmp -s "$WORK/full.before" "$WORK/full.after"; then
		log "services, backends and both Maglev tables hold what they held before"
	else
		diff "$WORK/full.before" "$WORK/full.after" | head -n 8 | cut -c 1-160 | sed 's/^/      /'
		fail "failed apply on a full map left the maps changed" || ok=1
	fi
	cmp -s "$WORK/full.state" "$STATE" || fail "failed apply on a full map changed the state file" || ok=1
	apply_traffic || ok=1
	return $ok
}

test_drain() {
	local ready=$WORK/hold.ready go=$WORK/hold.go hold_pid i rc ok=0 state
	ensure_meshd || return 1
	apply_traffic || return 1
	rm -f "$ready" "$go"
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" timeout "$CLIENT_TIMEOUT" \
		python3 "$TOPO_ECHO" hold "$TOPO_VIP4" 8002 -n 30 --ready "$ready" --go "$go" \
		--wait 45 >"$WORK/hold.out" 2>&1 &
	hold_pid=$!
	BG_PIDS+=("$hold_pid")
	for ((i = 0; i < 200; i++)); do
		[ -e "$ready" ] && break
		kill -0 "$hold_pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -e "$ready" ] || { cat "$WORK/hold.out"; fail "held connections did not open"; return 1; }
	log "held connections before the drain: $(cat "$ready")"
	grep -q 'be3=' "$ready" || { touch "$go"; fail "no held connection reached be3: nothing to test"; return 1; }

	run mctl backend drain "$SVC_DRAIN" "$(topo__be_addr4 be3):$TOPO_BE_PORT"
	log "backend drain: exit $RC: $OUT"
	[ "$RC" -eq 0 ] || fail "backend drain failed: $OUT" || ok=1
	state=$(mctl -o json service get "$SVC_DRAIN" | python3 -c '
import json, sys
for b in json.load(sys.stdin)["backends"]:
    if b["address"] == sys.argv[1]:
        print(b["weight"], b["state"])' "$(topo__be_addr4 be3)")
	log "be3 in service get: weight/state $state"
	[ "$state" = "0 draining" ] || fail "be3 shows as '$state', not '0 draining'" || ok=1

	client tcp "$TOPO_VIP4" 8002 -n 100 --expect be1,be2 --min-share 0.2 --avoid be3 ||
		fail "new connections after the drain reached be3 (or failed)" || ok=1
	touch "$go"
	wait "$hold_pid"
	rc=$?
	cat "$WORK/hold.out"
	[ "$rc" -eq 0 ] || fail "connections opened before the drain broke" || ok=1
	return $ok
}

# The Maglev table size explain reports for a new flow to SVC_DRAIN.
table_size() {
	mctl explain 10.10.0.2:33000 "$SVC_DRAIN" | sed -n 's/.* slot [0-9]* of \([0-9]*\):.*/\1/p'
}

# Held connections across a table resize (#16): 3 -> 12 -> 3 backends.
test_grow() {
	local ready=$WORK/grow.ready go=$WORK/grow.go hold_pid i rc ok=0 size
	ensure_meshd || return 1
	apply_traffic || return 1
	rm -f "$ready" "$go"
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" timeout "$CLIENT_TIMEOUT" \
		python3 "$TOPO_ECHO" hold "$TOPO_VIP4" 8002 -n 30 --ready "$ready" --go "$go" \
		--wait 45 >"$WORK/grow.out" 2>&1 &
	hold_pid=$!
	BG_PIDS+=("$hold_pid")
	for ((i = 0; i < 200; i++)); do
		[ -e "$ready" ] && break
		kill -0 "$hold_pid" 2>/dev/null || break
		sleep 0.05
	done
	[ -e "$ready" ] || { cat "$WORK/grow.out"; fail "held connections did not open"; return 1; }
	log "held connections before the growth: $(cat "$ready")"
	size=$(table_size)
	log "table size with 3 backends: $size"
	[ "$size" = 1021 ] || fail "3 backends: table of '$size' slots, not 1021" || ok=1
	for i in $(seq 1 9); do
		mctl backend add "$SVC_DRAIN" "10.10.9.$i:$TOPO_BE_PORT" --weight 0 >/dev/null ||
			fail "backend add 10.10.9.$i" || ok=1
	done
	size=$(table_size)
	log "table size with 12 backends: $size"
	[ "$size" = 2039 ] || fail "12 backends: table of '$size' slots, not 2039" || ok=1
	client tcp "$TOPO_VIP4" 8002 -n 60 --expect be1,be2,be3 ||
		fail "new connections after the growth failed or went elsewhere" || ok=1
	for i in $(seq 1 9); do
		mctl backend del "$SVC_DRAIN" "10.10.9.$i:$TOPO_BE_PORT" >/dev/null ||
			fail "backend del 10.10.9.$i" || ok=1
	done
	size=$(table_size)
	log "table size with 3 backends again: $size"
	[ "$size" = 1021 ] || fail "3 backends again: table of '$size' slots, not 1021" || ok=1
	touch "$go"
	wait "$hold_pid"
	rc=$?
	cat "$WORK/grow.out"
	[ "$rc" -eq 0 ] || fail "connections held across the resizes broke" || ok=1
	return $ok
}

# The weight and state of be3 in SVC_DRAIN, as "WEIGHT STATE".
be3_state() {
	mctl -o json service get "$SVC_DRAIN" | python3 -c '
import json, sys
for b in json.load(sys.stdin)["backends"]:
    if b["address"] == sys.argv[1]:
        print(b["weight"], b["state"])' "$(topo__be_addr4 be3)"
}

test_undrain() {
	local be state
	ensure_meshd || return 1
	apply_traffic || return 1
	be="$(topo__be_addr4 be3):$TOPO_BE_PORT"
	run mctl backend weight "$SVC_DRAIN" "$be" 7
	[ "$RC" -eq 0 ] || fail "backend weight 7: $OUT" || return 1
	run mctl backend drain "$SVC_DRAIN" "$be"
	[ "$RC" -eq 0 ] || fail "backend drain: $OUT" || return 1
	# durable before the answer: in the state file or its journal (#16)
	cat "$STATE" "$STATE.journal" 2>/dev/null | grep -q '"drainedWeight": *7' ||
		fail "state file and journal lack drainedWeight 7" || return 1
	meshd_restart || return 1
	state=$(be3_state)
	[ "$state" = "0 draining" ] || fail "after the restart be3 is '$state'" || return 1
	run mctl backend undrain "$SVC_DRAIN" "$be"
	log "backend undrain: exit $RC: $OUT"
	[ "$RC" -eq 0 ] || fail "backend undrain: $OUT" || return 1
	[[ $OUT == *"with weight 7"* ]] || fail "undrain did not say weight 7: $OUT" || return 1
	state=$(be3_state)
	[ "$state" = "7 active" ] || fail "after undrain be3 is '$state', not '7 active'" || return 1
	run mctl backend undrain "$SVC_DRAIN" "$be"
	[ "$RC" -eq 1 ] && [[ $OUT == *"is not draining (weight 7)"* ]] ||
		fail "a second undrain: exit $RC: $OUT" || return 1
	client tcp "$TOPO_VIP4" 8002 -n 60 --expect be1,be2,be3 ||
		fail "new connections after undrain do not reach be3" || return 1
}

test_restart_state() {
	local ok=0 ifname
	ensure_meshd || return 1
	apply_traffic || return 1
	# the same traffic checks before, so a failure after is the restart's
	traffic_checks "before the restart" || ok=1
	mctl -o json service list >"$WORK/rs.before" || fail "service list failed" || return 1
	cp "$STATE" "$WORK/rs.state.before"
	meshd_sigterm
	log "SIGTERM: meshd exited with status $RC"
	[ "$RC" -eq 0 ] || fail "meshd exited with status $RC on SIGTERM" || ok=1
	for ifname in "${TOPO_NODE_IFS[@]}"; do
		[ -n "$(xdp_prog_id "$ifname")" ] ||
			fail "$ifname lost its XDP program when meshd exited" || ok=1
	done
	[ -e "$PIN/services" ] || fail "pins gone after SIGTERM" || ok=1
	meshd_start || return 1
	mctl -o json service list >"$WORK/rs.after"
	if cmp -s "$WORK/rs.before" "$WORK/rs.after"; then
		log "service list -o json identical after the restart ($(wc -c <"$WORK/rs.after") bytes)"
	else
		diff "$WORK/rs.before" "$WORK/rs.after" | head -n 12 | sed 's/^/      /'
		fail "service list -o json differs after the restart" || ok=1
	fi
	cmp -s "$WORK/rs.state.before" "$STATE" || fail "state file differs after the restart" || ok=1
	traffic_checks "after the restart" || ok=1
	return $ok
}

traffic_checks() {
	local ok=0
	# 200 flows: weights 2:1:1 give be2 and be3 a quarter each; below 10%
	# (for either) happens once in ~2x10^7 checks; with 60 flows once in
	# ~500, and a CI run failed on it (be3=5 of 60)
	client tcp "$TOPO_VIP4" 8000 -n 200 --expect be1,be2,be3 --min-share 0.1 ||
		fail "TCP through the VIP $1" || ok=1
	client tcp "$TOPO_VIP6" 8000 -n 30 --expect be1,be2,be3 ||
		fail "TCP over IPv6 through the VIP $1" || ok=1
	client udp "$TOPO_VIP4" 8000 -n 30 --expect be1,be2,be3 ||
		fail "UDP through the VIP $1" || ok=1
	client tcp "$TOPO_VIP4" 8001 --refused -n 3 ||
		fail "the service without backends does not refuse $1" || ok=1
	return $ok
}

# Background: every ~50 ms check that each node interface carries an XDP
# program; misses go to $1.missing; at the end $1.result gets "POLLS
# MAX_GAP_MS SECONDS PROG_IDS...". Shell builtins only besides ip and
# sleep: the machine is busy with the load, a slow poller would see little.
poll_attach() {
	local out=$1 stop=$2 text dev re nl=$'\n' n=0 ids=" " t0 prev now gap max=0
	: >"$out.missing"
	t0=${EPOCHREALTIME/./}
	prev=$t0
	while [ ! -e "$stop" ]; do
		text=$(ip -n "$TOPO_NS_NODE" -o -d link show 2>&1)
		for dev in "${TOPO_NODE_IFS[@]}"; do
			re="(^|$nl)[0-9]+: ${dev}[@:][^$nl]*prog/xdp id ([0-9]+)"
			if [[ $text =~ $re ]]; then
				[[ $ids == *" ${BASH_REMATCH[2]} "* ]] || ids+="${BASH_REMATCH[2]} "
			else
				echo "$EPOCHREALTIME $dev: no XDP program" >>"$out.missing"
			fi
		done
		n=$((n + 1))
		now=${EPOCHREALTIME/./}
		gap=$(((now - prev) / 1000))
		[ "$gap" -gt "$max" ] && max=$gap
		prev=$now
		sleep 0.05
	done
	echo "$n $max $(((prev - t0) / 1000000))$ids" >"$out.result"
}

# ct_check LABEL: conntrack count into $CT; fails if a long-lived flow is gone.
ct_check() {
	CT=$(mctl -o json conntrack list | python3 "$CHECK" ct "$WORK/load.status.ports" 2>"$WORK/ct.err")
	local rc=$?
	[ "$rc" -eq 0 ] || fail "$1: $(cat "$WORK/ct.err")"
}

status_field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" "$WORK/load.status"; }

test_restart_under_load() {
	local stop=$WORK/load.stop pstop=$WORK/poll.stop load_pid poll_pid i r1 r2 c1 c2
	local before after id_before id_after ok=0 rc polls maxgap secs ids replaced=0
	ensure_meshd || return 1
	apply_traffic || return 1
	rm -f "$stop" "$pstop" "$WORK/load.status" "$WORK/load.status.ports" "$WORK/poll.ids"
	poll_attach "$WORK/poll" "$pstop" &
	poll_pid=$!
	BG_PIDS+=("$poll_pid")
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" timeout 120 python3 "$HELPERS/load.py" \
		"$TOPO_VIP4" 8000 --conns 50 --churn 2 --status "$WORK/load.status" --stop "$stop" \
		>"$WORK/load.out" 2>&1 &
	load_pid=$!
	BG_PIDS+=("$load_pid")
	for ((i = 0; i < 300; i++)); do
		[ -e "$WORK/load.status" ] && break
		kill -0 "$load_pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -e "$WORK/load.status" ]; then
		touch "$pstop"
		cat "$WORK/load.out"
		fail "load did not start"
		return 1
	fi
	sleep 0.5
	ct_check "before the restarts" || ok=1
	log "load running: $(cat "$WORK/load.status"); conntrack entries: $CT"

	for i in 1 2 3 4 5; do
		before=$CT
		id_before=$(xdp_prog_id to-client)
		meshd_kill9
		# the datapath keeps working while no agent runs at all
		r1=$(status_field rounds)
		c1=$(status_field churn_ok)
		sleep 0.4
		r2=$(status_field rounds)
		c2=$(status_field churn_ok)
		[ "$r2" -gt "$r1" ] && [ "$c2" -gt "$c1" ] ||
			fail "restart $i: traffic stalled while meshd was down (rounds $r1 -> $r2, new conns $c1 -> $c2)" ||
			ok=1
		meshd_start || {
			ok=1
			break
		}
		ct_check "restart $i" || ok=1
		after=$CT
		id_after=$(xdp_prog_id to-client)
		[ "$id_after" != "$id_before" ] && replaced=$((replaced + 1))
		log "restart $i: while down $((r2 - r1)) echo rounds, $((c2 - c1)) new conns;" \
			"conntrack $before -> $after; xdp prog id $id_before -> $id_after"
		[ "$after" -ge "$before" ] ||
			fail "restart $i: conntrack entries dropped from $before to $after" || ok=1
		sleep 0.5
	done
	touch "$stop"
	wait "$load_pid"
	rc=$?
	cat "$WORK/load.out"
	[ "$rc" -eq 0 ] || fail "$(grep -m1 'error:' "$WORK/load.out" || echo "load exited with status $rc")" || ok=1
	touch "$pstop"
	wait "$poll_pid"
	read -r polls maxgap secs ids <"$WORK/poll.result"
	log "attachment polls: $polls in ${secs}s (longest gap ${maxgap} ms), misses:" \
		"$(wc -l <"$WORK/poll.missing"), prog ids seen: $ids"
	if [ -s "$WORK/poll.missing" ]; then
		head -n 5 "$WORK/poll.missing" | sed 's/^/      /'
		fail "an interface was without its XDP program during the restarts" || ok=1
	fi
	# aimed at 50 ms apart; on a loaded 2-CPU machine `ip` and `sleep`
	# fork slowly (3.4 polls a second seen with other builds running), so
	# insist on 2 a second: a restart spans 1.5 s or more, still several
	# polls each
	[ "$polls" -ge $((secs * 2)) ] ||
		fail "only $polls attachment polls in ${secs}s: the poller did not keep up" || ok=1
	# The same build and flags: every restart keeps the very programs the
	# first start pinned (#16), no swap at all; a restart that loads swaps
	# in place without a gap (restart_reuse, and the polls above).
	[ "$replaced" -eq 0 ] || fail "the XDP program was replaced in $replaced of 5 restarts of the same build" || ok=1
	return $ok
}

# programs_field FIELD: status -o json's programs.FIELD (reused / reason).
programs_field() {
	mctl -o json status | python3 -c '
import json, sys
v = json.load(sys.stdin).get("programs", {}).get(sys.argv[1])
print(str(v).lower() if isinstance(v, bool) else v)' "$1"
}

# reuse_step LABEL WANT(true|false) REASON-WORDS FLAGS...: restart with
# FLAGS; status must say reused=WANT with a reason containing the words,
# the text status the same; the XDP program id on to-client must stay
# (reused) or change (loaded); traffic checks pass. Sets RS_ID.
reuse_step() {
	local label=$1 want=$2 words=$3 before reused reason lines
	shift 3
	before=$(xdp_prog_id to-client)
	lines=$(wc -l <"$LOG")
	meshd_restart "$@" || return 1
	reused=$(programs_field reused)
	reason=$(programs_field reason)
	RS_ID=$(xdp_prog_id to-client)
	log "$label: reused=$reused ($reason); xdp prog id $before -> $RS_ID"
	[ "$reused" = "$want" ] && [[ $reason == *"$words"* ]] ||
		fail "$label: status says reused=$reused ($reason), want $want ($words)" || return 1
	mctl status | grep -q "^Programs: *$([ "$want" = true ] && echo reused || echo loaded) (" ||
		fail "$label: meshctl status has no matching Programs: line" || return 1
	if [ "$want" = true ]; then
		[ "$RS_ID" = "$before" ] || fail "$label: the XDP program changed though reused" || return 1
	else
		[ -n "$RS_ID" ] && [ "$RS_ID" != "$before" ] ||
			fail "$label: the XDP program was not replaced by the load" || return 1
	fi
	grep -q "programs $([ "$want" = true ] && echo "reused, no load" || echo loaded): .*$words" \
		<(tail -n +"$((lines + 1))" "$LOG") || fail "$label: meshd's log has no line saying so" || return 1
	traffic_checks "$label"
}

# #16: the same build reuses its pinned programs; a changed option that
# changes the programs' config, or --reload-programs, loads and swaps; held
# connections survive all of it.
test_restart_reuse() {
	local stop=$WORK/rr.stop load_pid i rc ok=0 first
	ensure_meshd || return 1
	apply_traffic || return 1
	rm -f "$stop" "$WORK/rr.status" "$WORK/rr.status.ports"
	nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" timeout 180 python3 "$HELPERS/load.py" \
		"$TOPO_VIP4" 8000 --conns 10 --churn 1 --status "$WORK/rr.status" --stop "$stop" \
		>"$WORK/rr.out" 2>&1 &
	load_pid=$!
	BG_PIDS+=("$load_pid")
	for ((i = 0; i < 300; i++)); do
		[ -e "$WORK/rr.status" ] && break
		sleep 0.05
	done
	[ -e "$WORK/rr.status" ] || fail "load did not start" || ok=1
	# the start before may have been of other flags: one restart settles it
	meshd_restart || ok=1
	first=$(xdp_prog_id to-client)
	reuse_step "same build" true "record matches" || ok=1
	reuse_step "same build again" true "record matches" || ok=1
	[ "$RS_ID" = "$first" ] || fail "the first start's program is not the one kept" || ok=1
	reuse_step "--fib-forward off" false "config differs" --fib-forward off || ok=1
	reuse_step "--fib-forward off again" true "record matches" --fib-forward off || ok=1
	reuse_step "back to the default" false "config differs" || ok=1
	reuse_step "--reload-programs" false "reload was asked" --reload-programs || ok=1
	reuse_step "after the forced reload" true "record matches" || ok=1
	touch "$stop"
	wait "$load_pid"
	rc=$?
	cat "$WORK/rr.out"
	[ "$rc" -eq 0 ] || fail "held connections: $(grep -m1 'error:' "$WORK/rr.out" || echo "load exited with status $rc")" || ok=1
	return $ok
}

# --------------------------------------------------------------- runner

# scenario NAME: run test_NAME, print its output indented, then PASS/FAIL.
# foreign_reported DEV: status -o json lists DEV among the attach errors,
# naming the foreign program (xdp_pass); prints the entry.
foreign_reported() {
	mctl -o json status | python3 -c '
import json, sys
errs = json.load(sys.stdin)["attach_errors"]
dev = sys.argv[1]
hit = [e for e in errs if e["ifname"] == dev]
print("attach_errors: %s" % hit)
sys.exit(0 if hit and "xdp_pass" in hit[0]["error"] else 1)' "$1"
}

# An interface that matches the pattern but already carries someone else's
# XDP program keeps it: meshd reports the interface instead of replacing it.
test_foreign_xdp() {
	local tmp=fx$$ dev=to-fx$$ peer=fxp$$ before after ok=0 i
	ensure_meshd || return 1
	tmp=${tmp:0:15}
	dev=${dev:0:15}
	peer=${peer:0:15}
	ip -n "$TOPO_NS_NODE" link add "$tmp" type veth peer name "$peer" ||
		fail "cannot create $tmp" || return 1
	in_node "$TOPO_LBTOOL" xdp-pass "$tmp" || fail "cannot attach the foreign program" || return 1
	before=$(xdp_prog_id "$tmp")
	# the rename makes it match the pattern: meshd sees it for the first time
	ip -n "$TOPO_NS_NODE" link set dev "$tmp" name "$dev" || fail "cannot rename $tmp" || return 1
	# meshd has seen it once status reports it (10 s: a hang guard)
	for ((i = 0; i < 50; i++)); do
		foreign_reported "$dev" >"$WORK/fx.out" && break
		sleep 0.2
	done
	after=$(xdp_prog_id "$dev")
	log "foreign prog id before $before, after $after"
	[ -n "$before" ] && [ "$before" = "$after" ] ||
		fail "the foreign XDP program on $dev was replaced ($before -> ${after:-none})" || ok=1
	cat "$WORK/fx.out"
	foreign_reported "$dev" >/dev/null ||
		fail "status does not report the refused $dev naming the foreign program" || ok=1
	# not ready while an uplink misses the datapath; ready once it is gone
	readyz 503 "^\[-\]interfaces: 1 interface(s) not attached, first $dev: .*xdp_pass" || ok=1
	ip -n "$TOPO_NS_NODE" link del "$dev"
	# ready again once meshd has seen the link go (10 s: a hang guard)
	for ((i = 0; i < 50; i++)); do
		[ "$(in_node curl -s --max-time 5 -o /dev/null -w '%{http_code}' \
			http://127.0.0.1:9465/readyz)" = 200 ] && break
		sleep 0.2
	done
	readyz 200 '^\[+\]interfaces ok$' || ok=1
	meshd_alive || fail "meshd died" || ok=1
	return $ok
}

ALL=(api_auth hotplug foreign_xdp apply rejections api_unknown_arg map_full drain undrain
	restart_state restart_under_load restart_reuse grow)
SHARED=(api_auth hotplug foreign_xdp apply rejections api_unknown_arg map_full drain undrain
	restart_state restart_reuse grow)

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${SHARED[@]}")
	meshd_suite_check "${todo[@]}"
	python3 -c 'import yaml' 2>/dev/null || meshd_setup_fail "python3 yaml (PyYAML) missing"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-meshd-e2e.XXXXXX") || exit 1
	# The API auth test runs meshctl as nobody: the socket directory
	# must be reachable, so the socket's own mode and meshd decide.
	chmod 0755 "$WORK"
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	echo "# topology $TOPO_ID, pins $PIN, meshd on '$PATTERN'"
	if ! topo__up; then
		echo "FAIL: e2e/meshd_setup: topology did not come up"
		exit 1
	fi
	write_traffic_yaml
	if ! meshd_start; then
		echo "FAIL: e2e/meshd_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e meshd: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
