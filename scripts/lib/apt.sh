# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# apt.sh - apt-get that waits for another apt or dpkg (unattended upgrades
# on a machine that just booted) instead of failing; sourced by
# scripts/install-deps.sh and tests/e2e/test_install_deps.sh.
#
# Contract: APT_LOCK_WAIT seconds (default 600) at most. dpkg's lock is
# waited for by apt itself (DPkg::Lock::Timeout); `apt-get update` takes
# the lists lock, which that option does not cover on Debian 12's apt 2.6
# (it fails at once: "Could not get lock /var/lib/apt/lists/lock"), so
# apt__update retries while that is the error. Other errors are printed
# and returned at once.
APT_LOCK_WAIT=${APT_LOCK_WAIT:-600}
APT=(apt-get -q -o DPkg::Lock::Timeout="$APT_LOCK_WAIT")

apt__update() {
	local t0=$SECONDS out said=0
	while ! out=$("${APT[@]}" update 2>&1); do
		if [[ $out == *"Could not get lock"* ]] && ((SECONDS - t0 < APT_LOCK_WAIT)); then
			[ $said -eq 1 ] || echo "apt: another apt holds the package lists' lock: waiting (up to ${APT_LOCK_WAIT}s)" >&2
			said=1
			sleep 2
			continue
		fi
		printf '%s\n' "$out" >&2
		return 1
	done
}
