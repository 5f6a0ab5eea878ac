#!/bin/bash
# SPDX-License-Identifier: MIT
# test_meshctl_leak.sh - meshctl frees what it built when an argument is
# bad: `service add` with a bad backend after options that allocate JSON
# (affinity, outlier, health) must leak nothing (valgrind, definite leaks
# are errors). Needs no meshd: the bad backend is refused before any call.
set -u
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "SKIP: valgrind not installed"; exit 0; }
out=$(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 \
	./build/meshctl service add 10.96.0.10:80/tcp badbackend --affinity client-ip:30m \
	--outlier-failures 5 --health tcp 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'invalid address "badbackend"' <<<"$out"; then
	echo "PASS: meshctl_leak/service_add_bad_backend"
	exit 0
fi
echo "FAIL: meshctl_leak/service_add_bad_backend (rc $rc)"
grep -E 'definitely|Error' <<<"$out"
exit 1
