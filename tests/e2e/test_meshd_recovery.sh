#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_recovery.sh - meshd's state file and maps after the things that
# go wrong on a node: a state file that is gone, a disk that is full, a
# meshd killed in the middle of an update.
#
# Contract: builds the topology of scripts/lib/topology.sh, runs build/meshd
# in the node namespace on 'to-*' with its own pin dir, state file, socket
# (named after $$) and a child cgroup it creates for telemetry (whose sync
# runs after every change, as on a real node). Scenarios, one
# "PASS: e2e/meshd_recovery_<name>" or "FAIL: ...: <reason>" line each:
#   missing_refused  the state file moved away: meshd refuses to start (exit
#                    non-zero naming the file, the number of services in the
#                    maps and --state-missing); map dumps byte-identical and
#                    traffic through the VIP keeps flowing
#   missing_adopt    --state-missing adopt: meshd starts, writes the file,
#                    service list shows the same services, backends, weights
#   missing_empty    --state-missing empty: the services are deleted, and a
#                    warning says how many
#   full_disk        the state file on a full tmpfs: a change is refused
#                    with "cannot write <file>.tmp...: No space left on
#                    device (nothing was changed)"; maps and file unchanged
#   kill9_sweep      meshd killed (SIGKILL injected by strace at chosen
#                    bpf() calls spread over an 800-service apply), then
#                    restarted: the maps hold exactly the state file's
#                    services and backends (status and an independent
#                    bpftool audit), no backend, table or VIP marker that no
#                    service explains
#   memory           applying, listing and deleting 800 services leaves
#                    meshd's RSS less than 6 MB above where it was
# Exits non-zero if any failed. meshd, namespaces, pins, the cgroup, the
# tmpfs and temp files are removed on exit, failure or interruption. Needs
# root, bpftool, strace, python3 and `make`. About 40 s.
# Usage: test_meshd_recovery.sh [SCENARIO...]   (default: all, in the order above)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-mrc}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

MESHD=$ROOT/build/meshd
MESHCTL=$ROOT/build/meshctl
RECOVERY=$ROOT/tests/e2e/meshd/recovery.py
PIN=/sys/fs/bpf/sluice-r$$
PATTERN='to-*'
START_TIMEOUT=20
CLIENT_TIMEOUT=30
CTL_TIMEOUT_MS=120000
# services of the kill test, and where in its apply meshd dies (fractions
# of the apply's bpf() calls, counted once beforehand)
KILL_SERVICES=800
KILL_AT=(0.1 0.5 0.7)
# RSS meshd may keep after applying, listing and deleting those services
MEMORY_SLACK_KB=6144

CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-mrc$$}
WORK=
SOCK=
STATE=
LOG=
FULL=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=()
NEEDS_CMDS=(bpftool strace nsenter python3)
SCENARIO_PREFIX=meshd_recovery_
MESHD_FLAGS=(--cgroup "$CG" --telemetry on --socket-lb off --redirect off --metrics off)

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

in_node() { nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$@"; }
client() { topo__client timeout "$CLIENT_TIMEOUT" python3 "$TOPO_ECHO" "$@"; }
mctl() { "$MESHCTL" -s "$SOCK" --timeout "$CTL_TIMEOUT_MS" "$@"; }

run() {
	OUT=$("$@" 2>&1)
	RC=$?
}

# The tmpfs of full_disk is unmounted before the lib removes $WORK.
eval "$(declare -f topo_on_cleanup | sed '1s/topo_on_cleanup/meshd_lib_cleanup/')"
topo_on_cleanup() {
	[ -n "$FULL" ] && mountpoint -q "$FULL" && umount "$FULL"
	meshd_lib_cleanup
}

# snapshot OUT [STATEFILE]: the services, backends and maglev dumps
# (inner map ids: a replaced table shows) and the state file.
snapshot() {
	local m
	{
		for m in services backends maglev; do
			echo "## map $m"
			bpftool map dump pinned "$PIN/$m" 2>&1
		done
		echo "## state file"
		cat "${2:-$STATE}" 2>&1
	} >"$1"
}

same_snapshot() {
	if ! cmp -s "$1" "$2"; then
		diff "$1" "$2" | head -n 12 | sed 's/^/      /'
		fail "$3: maps or state file changed"
		return 1
	fi
}

write_traffic_yaml() {
	local be
	{
		echo "services:"
		for proto in tcp udp; do
			echo "  - {name: web-$proto, vip: $TOPO_VIP4, port: 8000, protocol: $proto, backends: ["
			for be in "${TOPO_BACKENDS[@]}"; do
				echo "      {address: $(topo__be_addr4 "$be"), port: $TOPO_BE_PORT, weight: ${be#be}},"
			done
			echo "    ]}"
		done
	} >"$WORK/traffic.yaml"
}

apply_traffic() {
	run mctl apply -f "$WORK/traffic.yaml"
	[ "$RC" -eq 0 ] || fail "apply -f traffic.yaml: $OUT"
}

traffic_ok() {
	client tcp "$TOPO_VIP4" 8000 -n 30 --expect be1,be2,be3 || fail "TCP through the VIP $1"
}

# meshd_start_fails FLAGS...: meshd must exit non-zero; its output in $OUT.
meshd_start_fails() {
	run timeout 60 nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$MESHD" --interfaces "$PATTERN" \
		--bpffs "$PIN" --state "$STATE" --socket "$SOCK" "${MESHD_FLAGS[@]}" "$@"
	printf '%s\n' "$OUT" >>"$LOG"
	[ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] || fail "meshd started (exit $RC) where it must refuse"
}

# ------------------------------------------------------------- scenarios

test_missing_refused() {
	local ok=0
	ensure_meshd && apply_traffic || return 1
	traffic_ok "before" || return 1
	meshd_term || return 1
	snapshot "$WORK/refused.before"
	mv "$STATE" "$STATE.moved"
	meshd_start_fails
	log "meshd without its state file: exit $RC: $(printf '%s\n' "$OUT" | grep -m1 'does not exist')"
	[[ $OUT == *"state file $STATE does not exist, but the pinned maps hold 2 service(s)"* ]] &&
		[[ $OUT == *"--state-missing=adopt"* ]] ||
		fail "the refusal does not name the file, the 2 services and --state-missing: $OUT" || ok=1
	mv "$STATE.moved" "$STATE"
	snapshot "$WORK/refused.after"
	same_snapshot "$WORK/refused.before" "$WORK/refused.after" "refused start" || ok=1
	traffic_ok "after the refused start" || ok=1
	meshd_start || return 1
	return $ok
}

test_missing_adopt() {
	local ok=0
	ensure_meshd && apply_traffic || return 1
	mctl -o json service list >"$WORK/adopt.before" || fail "service list" || return 1
	meshd_term || return 1
	mv "$STATE" "$WORK/adopt.moved"
	meshd_start --state-missing adopt || return 1
	grep -q 'warn.*adopted the 2 service(s) the pinned maps hold' "$LOG" ||
		fail "no warning that 2 services were adopted" || ok=1
	[ -s "$STATE" ] || fail "the adopted state was not written to $STATE" || ok=1
	mctl -o json service list >"$WORK/adopt.after"
	python3 "$RECOVERY" same-services "$WORK/adopt.before" "$WORK/adopt.after" ||
		fail "service list differs after adopt" || ok=1
	# the file has the API's shape: what a restart will load
	python3 "$RECOVERY" same-services "$WORK/adopt.before" "$STATE" ||
		fail "the written state file differs from the maps' services" || ok=1
	traffic_ok "after adopt" || ok=1
	apply_traffic || ok=1 # the names back
	return $ok
}

test_missing_empty() {
	local ok=0 n
	ensure_meshd && apply_traffic || return 1
	meshd_term || return 1
	mv "$STATE" "$WORK/empty.moved"
	meshd_start --state-missing empty || return 1
	grep 'deleted all' "$LOG" | tail -n 1
	grep -q 'warn.*did not exist (--state-missing=empty): deleted all 2 service(s)' "$LOG" ||
		fail "no warning naming the 2 deleted services" || ok=1
	n=$(mctl -o json service list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["services"]))')
	[ "$n" = 0 ] || fail "$n services left with --state-missing empty" || ok=1
	apply_traffic || ok=1
	return $ok
}

test_full_disk() {
	local ok=0 fstate
	ensure_meshd && apply_traffic || return 1
	meshd_term || return 1
	FULL=$WORK/full
	mkdir -p "$FULL" && mount -t tmpfs -o size=64k,mode=0700 sluice-test "$FULL" ||
		fail "cannot mount a tmpfs on $FULL" || return 1
	fstate=$FULL/state.json
	cp "$STATE" "$fstate"
	meshd_start --state "$fstate" || ok=1
	if [ "$ok" -eq 0 ]; then
		dd if=/dev/zero of="$FULL/fill" bs=1k 2>/dev/null
		python3 "$RECOVERY" contents "$PIN" "$WORK/full.maps.before"
		cp "$fstate" "$WORK/full.state.before"
		run mctl service add "$TOPO_VIP4:9000/tcp" "$(topo__be_addr4 be1):$TOPO_BE_PORT"
		log "service add with the disk full: exit $RC: $OUT"
		[ "$RC" -ne 0 ] && [[ $OUT == *"cannot write $fstate.tmp."*": No space left on device (nothing was changed)"* ]] ||
			fail "the refusal does not say which file and why: $OUT" || ok=1
		run mctl -o json backend add "$TOPO_VIP4:8000/tcp" "$(topo__be_addr4 be1):9999"
		[[ $OUT == *'"error"'*"No space left on device"* ]] ||
			fail "-o json error lacks the cause: $OUT" || ok=1
		# what the maps serve, not inner map ids: the put-back may swap in
		# an equal table and leave the shared empty one in a slot
		python3 "$RECOVERY" contents "$PIN" "$WORK/full.maps.after"
		same_snapshot "$WORK/full.maps.before" "$WORK/full.maps.after" \
			"refused change on a full disk" || ok=1
		cmp -s "$WORK/full.state.before" "$fstate" ||
			fail "the state file changed on a full disk" || ok=1
		meshd_term || ok=1
	fi
	umount "$FULL" || ok=1
	meshd_start || return 1
	return $ok
}

# bpf() calls of meshd while meshctl runs CMD...: "attached" first.
count_bpf() {
	local trace=$WORK/strace.out pid i
	: >"$WORK/strace.err"
	strace -p "$MESHD_PID" -e trace=bpf -o "$trace" 2>"$WORK/strace.err" &
	pid=$!
	for ((i = 0; i < 250; i++)); do
		grep -q attached "$WORK/strace.err" && break
		sleep 0.02
	done
	"$@" >/dev/null
	kill -INT "$pid"
	wait "$pid" 2>/dev/null
	grep -c '^bpf(' "$trace"
}

# kill_at N CMD...: SIGKILL meshd at its Nth bpf() call while CMD runs.
kill_at() {
	local i
	: >"$WORK/strace.err"
	strace -p "$MESHD_PID" -e trace=bpf -e inject=bpf:signal=KILL:when="$1" -o /dev/null \
		2>"$WORK/strace.err" &
	local pid=$!
	shift
	for ((i = 0; i < 250; i++)); do
		grep -q attached "$WORK/strace.err" && break
		sleep 0.02
	done
	"$@" >/dev/null 2>&1
	wait "$pid" 2>/dev/null
	for ((i = 0; i < 250; i++)); do
		meshd_alive || break
		sleep 0.02
	done
	meshd_alive && fail "meshd still alive after its bpf() call $1" && return 1
	wait "$MESHD_PID" 2>/dev/null
	MESHD_PID=
}

# The maps against the state file: bpftool's view and status's count.
audit() {
	local want have
	python3 "$RECOVERY" audit "$PIN" "$STATE" || fail "$1: $(python3 "$RECOVERY" audit "$PIN" "$STATE" | tail -n 1)" || return 1
	want=$(python3 -c 'import json,sys; print(sum(len(s.get("backends") or []) for s in json.load(open(sys.argv[1]))["services"]))' "$STATE")
	have=$(mctl -o json status | python3 -c 'import json,sys; print([m["entries"] for m in json.load(sys.stdin)["maps"] if m["name"] == "backends"][0])')
	[ "$have" = "$want" ] || fail "$1: status shows $have backends, the state file has $want"
}

test_kill9_sweep() {
	local ok=0 total n f swept=0 before
	ensure_meshd && apply_traffic || return 1
	python3 "$RECOVERY" gen "$KILL_SERVICES" "$WORK/big.json" || return 1
	total=$(count_bpf mctl apply -f "$WORK/big.json")
	log "a $KILL_SERVICES-service apply makes $total bpf() calls"
	[ "$total" -gt 1000 ] || fail "only $total bpf() calls counted" || return 1
	apply_traffic || return 1
	for f in "${KILL_AT[@]}"; do
		n=$(awk -v t="$total" -v f="$f" 'BEGIN { printf "%d", t * f }')
		kill_at "$n" mctl apply -f "$WORK/big.json" || return 1
		before=$(grep -c 'removed map entries no service explains' "$LOG")
		meshd_start || return 1
		if [ "$(grep -c 'removed map entries no service explains' "$LOG")" -gt "$before" ]; then
			swept=$((swept + 1))
			log "killed at bpf() call $n: $(grep 'removed map entries' "$LOG" | tail -n 1 | sed 's/.*: //')"
		else
			log "killed at bpf() call $n: nothing to sweep"
		fi
		audit "killed at bpf() call $n of $total" || ok=1
		apply_traffic || return 1
	done
	log "$swept of ${#KILL_AT[@]} kill points left entries to sweep"
	traffic_ok "after the kills" || ok=1
	return $ok
}

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$MESHD_PID/status"; }

# The heap a large apply and listing used is given back once they are
# deleted: 800 services left ~13 MB behind before, ~0.2 MB now; the bound
# is far from both, and nothing here depends on timing.
test_memory() {
	local ok=0 rss0 rss1 peak
	ensure_meshd && apply_traffic || return 1
	[ -s "$WORK/big.json" ] || python3 "$RECOVERY" gen "$KILL_SERVICES" "$WORK/big.json" ||
		return 1
	rss0=$(rss_kb)
	run mctl apply -f "$WORK/big.json"
	[ "$RC" -eq 0 ] || fail "apply of $KILL_SERVICES services: $OUT" || return 1
	mctl -o json service list >/dev/null || fail "service list" || ok=1
	peak=$(rss_kb)
	apply_traffic || return 1
	rss1=$(rss_kb)
	log "RSS: ${rss0} kB, ${peak} kB after applying and listing $KILL_SERVICES services, ${rss1} kB after deleting them"
	[ $((rss1 - rss0)) -lt $MEMORY_SLACK_KB ] ||
		fail "meshd kept $((rss1 - rss0)) kB after the services were deleted (bound $MEMORY_SLACK_KB)" ||
		ok=1
	return $ok
}

# --------------------------------------------------------------- runner

ALL=(missing_refused missing_adopt missing_empty full_disk kill9_sweep memory)

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-meshd-recovery.XXXXXX") || exit 1
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	mkdir "$CG" || {
		echo "FAIL: e2e/meshd_recovery_setup: cannot create $CG"
		exit 1
	}
	echo "# topology $TOPO_ID, pins $PIN, cgroup $CG"
	if ! topo__up; then
		echo "FAIL: e2e/meshd_recovery_setup: topology did not come up"
		exit 1
	fi
	write_traffic_yaml
	if ! meshd_start; then
		echo "FAIL: e2e/meshd_recovery_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e meshd recovery: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
