# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# meshd.sh - run meshd in the node namespace of scripts/lib/topology.sh and
# report scenarios; sourced by tests/e2e/test_meshd*.sh.
#
# Contract: the sourcing test sets TOPO_NS_NODE (topology), MESHD, PATTERN,
# PIN, STATE, SOCK, LOG, START_TIMEOUT, WORK, FAILED=0, SCENARIO_PREFIX
# (e.g. "meshd_sock_") and MESHD_FLAGS (extra meshd flags, an array), and
# defines fail() (records the reason in $WORK/reason) and mctl().
# meshd_start [FLAGS...] appends FLAGS after MESHD_FLAGS; every other
# helper works on MESHD_PID. topo_on_cleanup (called by topology.sh's
# traps) also stops BG_PIDS and removes the child cgroup CG (under CGROOT)
# when the test uses one.

meshd_alive() { [ -n "$MESHD_PID" ] && kill -0 "$MESHD_PID" 2>/dev/null; }

# meshd_start [FLAGS...]: start meshd and wait for "meshd ready" and the API.
meshd_start() {
	local before i
	before=$(grep -c 'meshd ready' "$LOG" 2>/dev/null)
	# nsenter execs meshd, so $! is meshd's own pid
	nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$MESHD" --interfaces "$PATTERN" \
		--bpffs "$PIN" --state "$STATE" --socket "$SOCK" "${MESHD_FLAGS[@]}" "$@" \
		>>"$LOG" 2>&1 &
	MESHD_PID=$!
	for ((i = 0; i < START_TIMEOUT * 50; i++)); do
		if [ "$(grep -c 'meshd ready' "$LOG")" -gt "$before" ]; then
			mctl status >/dev/null 2>&1 && return 0
		fi
		if ! meshd_alive; then
			wait "$MESHD_PID" 2>/dev/null
			fail "meshd exited with status $? during start-up (log: $(tail -n 2 "$LOG" | tr '\n' ' '))"
			MESHD_PID=
			return 1
		fi
		sleep 0.02
	done
	fail "meshd not ready within ${START_TIMEOUT}s"
}

ensure_meshd() { meshd_alive || meshd_start; }

meshd_kill9() {
	[ -n "$MESHD_PID" ] || return 0
	{
		kill -9 "$MESHD_PID"
		wait "$MESHD_PID"
	} 2>/dev/null
	MESHD_PID=
}

# SIGTERM, then meshd's exit status in $RC (124: it did not exit in 5 s).
meshd_sigterm() {
	local i
	RC=0
	[ -n "$MESHD_PID" ] || return 0
	kill -TERM "$MESHD_PID"
	for ((i = 0; i < 250; i++)); do
		meshd_alive || break
		sleep 0.02
	done
	if meshd_alive; then
		meshd_kill9
		RC=124
		return 0
	fi
	wait "$MESHD_PID"
	RC=$?
	MESHD_PID=
}

# SIGTERM; fails unless meshd exits 0 within 5 s.
meshd_term() {
	meshd_sigterm
	[ "$RC" -ne 124 ] || fail "meshd did not exit on SIGTERM" || return 1
	[ "$RC" -eq 0 ] || fail "meshd exited with status $RC on SIGTERM"
}

# meshd_restart FLAGS...: SIGTERM, then start again with these flags.
meshd_restart() {
	meshd_term || return 1
	meshd_start "$@"
}

# scenario NAME: run test_NAME, print its output and one PASS:/FAIL: line.
scenario() {
	local name=$1 t0 rc reason lines
	t0=$EPOCHREALTIME
	: >"$WORK/reason"
	lines=$(wc -l <"$LOG")
	"test_$name" >"$WORK/out" 2>&1
	rc=$?
	sed 's/^/    /' "$WORK/out"
	if [ "$rc" -eq 0 ]; then
		printf 'PASS: e2e/%s%s (%ss)\n' "$SCENARIO_PREFIX" "$name" \
			"$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
	else
		reason=$(head -n 1 "$WORK/reason")
		echo "    meshd log during the scenario (last 15 lines):"
		tail -n +"$((lines + 1))" "$LOG" | tail -n 15 | cut -c 1-200 | sed 's/^/      /'
		printf 'FAIL: e2e/%s%s: %s\n' "$SCENARIO_PREFIX" "$name" "${reason:-exit status $rc}"
		FAILED=$((FAILED + 1))
	fi
}

# meshd_suite_check SCENARIO...: the scenario names exist (ALL lists them),
# we are root, MESHD, MESHCTL and NEEDS_BUILT are built, NEEDS_CMDS are
# installed, CG (when the suite uses one) is a child cgroup we may create,
# bpffs is mounted. Exits with a FAIL: setup line otherwise.
meshd_suite_check() {
	local name tool
	for name; do
		declare -F "test_$name" >/dev/null || {
			echo "usage: $0 [${ALL[*]}]" >&2
			exit 2
		}
	done
	[ "$(id -u)" -eq 0 ] || meshd_setup_fail "needs root"
	for tool in "$MESHD" "$MESHCTL" "${NEEDS_BUILT[@]}"; do
		[ -x "$tool" ] || meshd_setup_fail "$tool not built (run make)"
	done
	for tool in "${NEEDS_CMDS[@]}"; do
		command -v "$tool" >/dev/null || meshd_setup_fail "$tool not installed"
	done
	# Safety: cgroup programs attach to $CG; it must be a child we create.
	if [ -n "${CG+set}" ] && { [ -z "$CGROOT" ] || [ "$CG" = "$CGROOT" ] || [ -e "$CG" ]; }; then
		meshd_setup_fail "no cgroup2 mount, or $CG exists"
	fi
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf ||
		meshd_setup_fail "cannot mount bpffs"
}

meshd_setup_fail() {
	echo "FAIL: e2e/${SCENARIO_PREFIX}setup: $*"
	exit 1
}

# Called by scripts/lib/topology.sh's cleanup, also on failure or signal.
topo_on_cleanup() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	BG_PIDS=()
	meshd_kill9
	# --cleanup detaches every Sluice program of the namespace it runs in
	# and what is pinned in --bpffs (cgroup links): only ever run it
	# inside our node namespace, on our pin dir.
	if [ -e "/var/run/netns/$TOPO_NS_NODE" ] && [ -d "$PIN" ]; then
		nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$MESHD" --cleanup --bpffs "$PIN" \
			>/dev/null 2>&1 || echo "${0##*/}: meshd --cleanup --bpffs $PIN failed" >&2
	fi
	[ -d "$PIN" ] && rm -rf "$PIN"
	if [ -n "${CG:-}" ] && [ -d "$CG" ]; then
		while read -r pid; do
			echo "$pid" >"$CGROOT/cgroup.procs" 2>/dev/null
		done <"$CG/cgroup.procs"
		rmdir "$CG" 2>/dev/null || echo "${0##*/}: cannot remove $CG" >&2
	fi
	[ -n "$WORK" ] && rm -rf "$WORK"
	WORK=
}
