#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_install_deps.sh - scripts/install-deps.sh on a machine where another
# apt holds the package lists' lock (unattended upgrades at boot, #18).
#
# Contract: with /var/lib/apt/lists/lock held for 6 s by another process
# (an fcntl lock, as apt takes it), apt__update of scripts/lib/apt.sh
# waits and succeeds after the lock is released, and says it waits; with
# APT_LOCK_WAIT=1 it gives up with apt's error. Runs `apt-get update` (the
# Debian archive must be reachable). Needs root; prints PASS:/FAIL: lines.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d /tmp/sluice-apt.XXXXXX)
HOLDER=
trap '[ -z "$HOLDER" ] || kill "$HOLDER" 2>/dev/null; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
FAILED=0

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: e2e/install_deps (needs root: apt-get update)"
	exit 0
fi

# hold_lock SECONDS: the lists lock, held in the background; HOLDER.
hold_lock() {
	python3 -c '
import fcntl, sys, time
f = open("/var/lib/apt/lists/lock", "a")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[1]))
' "$1" "$TMP/held" &
	HOLDER=$!
	while [ ! -e "$TMP/held" ]; do sleep 0.05; done
	rm -f "$TMP/held"
}

check() {
	if "$2"; then echo "PASS: e2e/install_deps/$1"; else
		echo "FAIL: e2e/install_deps/$1"
		FAILED=$((FAILED + 1))
	fi
}

test_waits() {
	local t0=$SECONDS rc
	hold_lock 6
	(. "$ROOT/scripts/lib/apt.sh" && apt__update) >"$TMP/out" 2>&1
	rc=$?
	wait "$HOLDER"
	HOLDER=
	[ $rc -eq 0 ] || { echo "    apt__update failed: $(tail -n 3 "$TMP/out")"; return 1; }
	[ $((SECONDS - t0)) -ge 5 ] || { echo "    returned before the lock was released"; return 1; }
	grep -q 'waiting' "$TMP/out" || { echo "    did not say it waits: $(cat "$TMP/out")"; return 1; }
}

test_gives_up() {
	local rc
	hold_lock 8
	(APT_LOCK_WAIT=1 && . "$ROOT/scripts/lib/apt.sh" && apt__update) >"$TMP/out" 2>&1
	rc=$?
	kill "$HOLDER" 2>/dev/null
	wait "$HOLDER" 2>/dev/null
	HOLDER=
	[ $rc -ne 0 ] || { echo "    succeeded while the lock was held"; return 1; }
	grep -q 'Could not get lock' "$TMP/out" || { echo "    error not shown: $(cat "$TMP/out")"; return 1; }
}

check waits_for_lists_lock test_waits
check gives_up_after_apt_lock_wait test_gives_up
[ "$FAILED" -eq 0 ]
