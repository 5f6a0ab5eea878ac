#!/bin/bash
# SPDX-License-Identifier: MIT
#
# guest.sh - the guest half of `make test-kernels`: PID 1 after init.sh has
# switched root onto the host's filesystem (read-only, under an overlay).
#
# Contract: reads $out/guest.env (written by run.sh: SLUICE_ROOT,
# SLUICE_BUILD, KERNEL_SUITES, KERNEL_KDIR, timeouts), mounts what the
# tests expect (tmpfs on /run, bpffs, cgroup2, debugfs), makes the
# unpacked kernel's modules visible as /lib/modules/<release> and loads the
# ones the tests use, runs suites.sh with its logs in $out, then powers
# off. Whatever happens, $out/guest.done is written last, so run.sh can
# tell a finished guest from one that died or was timed out.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
out=$(sed -n 's/.*sluice\.out=\([^ ]*\).*/\1/p' /proc/cmdline)

finish() {
	echo "$1" >"$out/guest.done"
	sync
	busybox poweroff -f 2>/dev/null || echo o >/proc/sysrq-trigger
	sleep 60
}

[ -r "$out/guest.env" ] || finish "no $out/guest.env"
# shellcheck source=/dev/null
source "$out/guest.env"

# /tmp stays the overlay's (writable, in guest memory): a tmpfs there would
# hide a kernel cache or result directory kept under the host's /tmp.
mount -t tmpfs tmpfs /run
mkdir -p /dev/shm /dev/pts && mount -t tmpfs tmpfs /dev/shm && mount -t devpts devpts /dev/pts
mount -t bpf bpf /sys/fs/bpf
# The host has a hybrid layout with cgroup2 at /sys/fs/cgroup/unified; the
# tests find cgroup2 through /proc/mounts, so one plain mount is enough.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
hostname "sluice-$(uname -r)"
ip link set lo up

release=$(uname -r)
mkdir -p "/lib/modules/$release"
mount --bind "$KERNEL_KDIR/lib/modules/$release" "/lib/modules/$release"
# What the datapath and e2e suites attach to or create: veth pairs, the
# clsact/ingress qdisc with cls_bpf, dummy links, tun devices (the datapath
# suite's malformed-frame cases); anything built in is fine.
for m in veth sch_ingress cls_bpf act_bpf dummy tun; do
	modprobe -q "$m" || echo "guest: modprobe $m failed" >&2
done

# Bounds on bulk work (not on timeouts under test) stretch this much in
# the tests (tests/lib/test.h): TCG at nice 19 on a busy host is slow.
export SLUICE_TEST_TIME_SCALE=${SLUICE_TEST_TIME_SCALE:-10}
echo "guest: $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ { print $2 / 1024 " MB" }' /proc/meminfo)"
"$SLUICE_ROOT/scripts/kernels/suites.sh" "$out" "$KERNEL_SUITES"
finish "rc=$?"
