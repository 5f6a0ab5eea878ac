#!/bin/busybox sh
# SPDX-License-Identifier: MIT
#
# init.sh - /init of the test initramfs (runs under busybox, as PID 1).
#
# Contract: loads the modules in /lib/mods in name order, mounts the 9p
# share "host" (the host's root, read-only) under a tmpfs-backed overlay so
# the guest can write anywhere without touching the host, mounts the 9p
# share "out" (read-write) at the path given by sluice.out= on the kernel
# command line, and switches root to run sluice.run= (the guest half of the
# harness, a script on the host's filesystem). Any failure here is printed
# as "FAIL: boot (...)" and powers the guest off, so the host reports it
# instead of waiting for its timeout.
/bin/busybox --install -s /bin
export PATH=/bin

die() {
	echo "FAIL: boot ($*)"
	sync
	poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

out=
run=
for arg in $(cat /proc/cmdline); do
	case $arg in
	sluice.out=*) out=${arg#sluice.out=} ;;
	sluice.run=*) run=${arg#sluice.run=} ;;
	esac
done
[ -n "$out" ] && [ -n "$run" ] || die "sluice.out= or sluice.run= missing on the command line"

for m in /lib/mods/*.ko; do
	[ -e "$m" ] || continue
	insmod "$m" || die "insmod $m failed"
done

# 9p: a large msize and a page cache for the read-only lower layer make
# reading binaries and objects several times faster under TCG.
opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro,cache=loose" host /lower || die "cannot mount the host root over 9p"
mount -t tmpfs -o size=75% tmpfs /upper || die "cannot mount tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work \
	/newroot || die "cannot mount the overlay"
mkdir -p "/newroot$out"
mount -t 9p -o "$opts" out "/newroot$out" || die "cannot mount the output share at $out"
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /bin/bash "$run"
die "switch_root failed"
