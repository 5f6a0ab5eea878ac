#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_demo_cluster.sh - `make demo-cluster` (scripts/demo-cluster.sh) tells
# its story and leaves nothing behind.
#
# Contract: runs `bash scripts/demo-cluster.sh` non-interactively (stdin
# /dev/null) with CLUSTER_ID set to a name of our own, so every namespace,
# pin dir, cgroup, temp dir and process of it can be looked for. Scenarios,
# one "PASS: e2e/demo_cluster_<name>" or "FAIL: e2e/demo_cluster_<name>:
# <reason>" each:
#   runs          exit 0, "every check passed", no "error:" line; its time
#                 is printed, not judged (timings are make bench's); a hang
#                 is killed after 300 s
#   per_node      node1 and node2 each list the Service (source kubernetes)
#   across_nodes  from pod n1p1 on node1, 100 connections over the tc path
#                 and 100 over the socket LB reach both node2 pods; the
#                 socket LB counted 104 connects; conntrack shows the tc flows
#   nodeport      the client outside reaches node1's NodePort 30080 and both
#                 node2 pods answer (100 connections); the pod saw node1's
#                 address and a source-NAT port (61000-65535)
#   draining      both nodes show the terminating pod at weight 0, draining;
#                 60 new connections avoid it
#   metrics       node1's scrape shows sluice_kubernetes_synced 1 and the
#                 Service's sluice_service_info
#   nothing_left  no namespace, pin dir, cgroup, temp dir or process named
#                 after the run's CLUSTER_ID is left
#   keep_term     --keep: while it waits, both meshds run, the namespaces, pin
#                 dirs and cgroups exist (the probe can see), the root
#                 namespace's XDP/tc attachments and the cgroup2 root's
#                 programs are as before; SIGTERM ends it (143), nothing left
#   usage         an unknown flag exits 2 with the usage, creating nothing; a
#                 CLUSTER_ID such as ../x is refused (exit 1), creating nothing
# Needs root and a built tree. About 40 s.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=$ROOT/scripts/demo-cluster.sh
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
TMP=$(mktemp -d /tmp/sluice-tdemocl.XXXXXX)
ID=sldc$$
FAILED=0
BG_PID=

cleanup() {
	if [ -n "$BG_PID" ]; then
		kill -TERM "$BG_PID" 2>/dev/null
		wait "$BG_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "    error: $*"
	[ -s "$TMP/reason" ] || printf '%s\n' "$*" >"$TMP/reason"
	return 1
}

scenario() {
	: >"$TMP/reason"
	if "test_$1"; then
		echo "PASS: e2e/demo_cluster_$1"
	else
		echo "FAIL: e2e/demo_cluster_$1: $(head -n 1 "$TMP/reason")"
		FAILED=$((FAILED + 1))
	fi
}

# has REGEX WHAT: the demo's output has a line matching the ERE.
has() {
	grep -qE -- "$1" "$TMP/out" || fail "no line matching /$1/ ($2)"
}

# leftovers CLUSTER_ID: what of that run exists, one line each.
leftovers() {
	local id=$1
	ip netns list | awk -v p="$id-" 'index($1, p) == 1 { print "netns " $1 }'
	compgen -G "/sys/fs/bpf/$id-*" | sed 's/^/pin dir /'
	compgen -G "$CGROOT/$id-*" | sed 's/^/cgroup /'
	compgen -G "/tmp/sluice-$id.*" | sed 's/^/temp /'
	pgrep -af -- "$id" | sed 's/^/process /'
	return 0
}

# Programs the root namespace and the cgroup2 root carry (must not change).
host_attachments() {
	bpftool net show 2>&1
	bpftool cgroup show "$CGROOT" 2>&1
}

# ------------------------------------------------------------- scenarios

run_demo() {
	local t0=$SECONDS
	CLUSTER_ID=$ID timeout 300 bash "$DEMO" </dev/null >"$TMP/out" 2>&1
	RC=$?
	ELAPSED=$((SECONDS - t0))
	echo "    demo: exit $RC in ${ELAPSED}s; its output in full on failure"
}

test_runs() {
	local ok=0
	[ "$RC" -ne 124 ] || fail "killed after 300 s (a hang)" || ok=1
	[ "$RC" -eq 0 ] || fail "demo exited $RC" || ok=1
	has '^==> Done: every check passed' "final line" || ok=1
	if grep -q 'error:' "$TMP/out"; then
		grep 'error:' "$TMP/out" | head -n 5
		fail "the demo printed error lines" || ok=1
	fi
	[ "$ok" -eq 0 ] || sed 's/^/    | /' "$TMP/out"
	return $ok
}

test_per_node() {
	local n
	for n in 1 2; do
		grep -A2 -F "[node$n] \$ meshctl service list" "$TMP/out" |
			grep -qE '^    10\.96\.0\.10:80/tcp +default/web:p .* kubernetes ' ||
			fail "node$n's service list does not show default/web:p from kubernetes" || return 1
	done
}

test_across_nodes() {
	[ "$(grep -cE '^    tcp 10\.96\.0\.10:80: 100 ok, 0 failed .*backends: n2p2=[0-9]+ n2p3=[0-9]+$' \
		"$TMP/out")" -eq 2 ] ||
		fail "not two 100-connection runs (tc, socket LB) reaching n2p2 and n2p3 only" || return 1
	has '^ +connects 104, ' "node1's socket LB counted 4 + 100 connects" &&
		has '"client": "10\.244\.1\.11:[0-9]+"' "node1's conntrack has n1p1's tc flows" &&
		has 'answered by n2p[23]$' "--show lines"
}

test_nodeport() {
	has '^    tcp 10\.40\.0\.11:30080: 100 ok, 0 failed .*backends: n2p2=[0-9]+ n2p3=[0-9]+$' \
		"100 NodePort connections via node1 to both node2 pods" &&
		has '^    n2p[23] 10\.40\.0\.11:6[1-5][0-9]{3}$' "the pod saw node1's address, a SNAT port"
}

test_draining() {
	[ "$(grep -cE '^    10\.244\.2\.13:8080 +[0-9]+ +0 +0\.0% +draining ' "$TMP/out")" -eq 2 ] ||
		fail "not both nodes show 10.244.2.13:8080 at weight 0, draining" || return 1
	has '^    tcp 10\.96\.0\.10:80: 60 ok, 0 failed .*backends: n1p2=[0-9]+ n2p2=[0-9]+$' \
		"60 new connections on n1p2 and n2p2 only"
}

test_metrics() {
	has '^    sluice_kubernetes_synced 1$' "synced gauge" &&
		has '^    sluice_service_info\{service="10\.96\.0\.10:80/tcp",name="default/web:p",' \
			"service info"
}

test_nothing_left() {
	leftovers "$ID" >"$TMP/left"
	[ -s "$TMP/left" ] || return 0
	sed 's/^/    /' "$TMP/left"
	fail "left behind: $(head -n 1 "$TMP/left")"
}

test_keep_term() {
	local id=${ID}k i ok=0 rc
	host_attachments >"$TMP/host.before"
	CLUSTER_ID=$id bash "$DEMO" --keep </dev/null >"$TMP/keep.out" 2>&1 &
	BG_PID=$!
	for ((i = 0; i < 600; i++)); do
		grep -qs 'Everything is still up' "$TMP/keep.out" && break
		kill -0 "$BG_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q 'Everything is still up' "$TMP/keep.out" || {
		sed 's/^/    | /' "$TMP/keep.out"
		fail "the demo did not reach its --keep wait"
		return 1
	}
	leftovers "$id" >"$TMP/up"
	for i in "netns $id-n1" "netns $id-n2p3" "pin dir .*$id-n2" "cgroup .*$id-n1" \
		"process .*meshd .*$id-n2"; do
		grep -q "^$i" "$TMP/up" || fail "while up, the probe does not see: $i" || ok=1
	done
	host_attachments >"$TMP/host.during"
	cmp -s "$TMP/host.before" "$TMP/host.during" || {
		diff "$TMP/host.before" "$TMP/host.during" | head -n 10 | sed 's/^/    /'
		fail "the root namespace or cgroup2 root gained or lost programs" || ok=1
	}
	kill -TERM "$BG_PID"
	wait "$BG_PID"
	rc=$?
	BG_PID=
	[ "$rc" -eq 143 ] || fail "exit $rc on SIGTERM, want 143" || ok=1
	leftovers "$id" >"$TMP/left"
	if [ -s "$TMP/left" ]; then
		sed 's/^/    /' "$TMP/left"
		fail "left behind after SIGTERM: $(head -n 1 "$TMP/left")" || ok=1
	fi
	return $ok
}

test_usage() {
	local id=${ID}u rc
	CLUSTER_ID=$id bash "$DEMO" --bogus </dev/null >"$TMP/usage.out" 2>&1
	rc=$?
	[ "$rc" -eq 2 ] || fail "--bogus: exit $rc, want 2" || return 1
	grep -q '^Usage: .*--keep' "$TMP/usage.out" || fail "--bogus: no usage" || return 1
	leftovers "$id" >"$TMP/left"
	[ ! -s "$TMP/left" ] || fail "--bogus left: $(head -n 1 "$TMP/left")" || return 1
	CLUSTER_ID=../x bash "$DEMO" </dev/null >"$TMP/usage.out" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] && grep -q "CLUSTER_ID '../x'" "$TMP/usage.out" ||
		fail "CLUSTER_ID=../x: exit $rc, $(grep -m1 . "$TMP/usage.out")" || return 1
	if [ -e "$CGROOT/../x-n1" ] || [ -e /sys/fs/bpf/../x-n1 ] || [ -e /run/netns/../x-net ]; then
		fail "CLUSTER_ID=../x created a path"
	fi
}

main() {
	local tool s
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL: e2e/demo_cluster_setup: needs root"
		exit 1
	fi
	for tool in bpftool curl nsenter pgrep; do
		command -v "$tool" >/dev/null || {
			echo "FAIL: e2e/demo_cluster_setup: $tool not installed"
			exit 1
		}
	done
	[ -n "$CGROOT" ] || {
		echo "FAIL: e2e/demo_cluster_setup: no cgroup2 mount"
		exit 1
	}
	run_demo
	for s in runs per_node across_nodes nodeport draining metrics nothing_left keep_term usage; do
		scenario "$s"
	done
	[ "$FAILED" -eq 0 ]
}

main "$@"
