#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages Sluice needs to build, test, demo and bench.
# Idempotent: only packages that are missing are installed, so a machine that
# already has everything runs no apt-get at all.
set -euo pipefail

PKGS=(
	# build
	make gcc clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config
	libjson-c-dev libyaml-dev libnl-3-dev libnl-route-3-dev libmicrohttpd-dev libcurl4-openssl-dev
	python3-yaml
	# `make analyze`
	cppcheck
	# runtime tools used by tests and the demo
	iproute2 ethtool procps python3 util-linux curl
	# crash-recovery e2e: kills meshd at chosen bpf() calls
	strace
	# conntrack flood e2e: random-source SYN and ACK floods inside the test namespaces
	hping3
	# outlier e2e: a blackholed backend's namespace drops SYNs (iptables in that namespace)
	iptables
	# telemetry e2e: a real Prometheus server and promtool
	prometheus
	# install e2e: `systemd-analyze verify` of the unit, `man -l` of the pages
	systemd man-db
)
# `make fuzz` only (SLUICE_DEPS=fuzz): libFuzzer's runtime for clang.
if [ "${SLUICE_DEPS:-}" = fuzz ]; then
	# the runtime that matches the installed clang (libclang-rt-14-dev)
	v=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
	PKGS+=("libclang-rt${v:+-$v}-dev")
fi
# `make test-kernels` only (SLUICE_DEPS=kernels): qemu boots Debian's kernel
# packages (downloaded, never installed) with a static busybox initramfs;
# kmod's depmod/modprobe resolve their modules.
if [ "${SLUICE_DEPS:-}" = kernels ]; then
	PKGS+=(qemu-system-x86 busybox-static kmod xz-utils)
fi
# Extra packages for `make bench` only (SLUICE_DEPS=bench).
if [ "${SLUICE_DEPS:-}" = bench ]; then
	PKGS+=(iptables nftables iperf3 conntrack gnuplot-nox)
fi

missing=()
for p in "${PKGS[@]}"; do
	[[ $p == \#* ]] && continue
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# On a machine that just booted, unattended upgrades may hold apt's and
# dpkg's locks: wait for them (up to 10 minutes) rather than fail.
# shellcheck source=scripts/lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"
apt__update
"${APT[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
