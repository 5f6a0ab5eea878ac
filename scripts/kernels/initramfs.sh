#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# initramfs.sh - build the tiny initramfs that boots an unpacked Debian
# kernel onto this machine's own root filesystem.
#
# Contract: initramfs.sh KDIR RELEASE OUT writes OUT (a gzip'd newc cpio)
# holding the static busybox, scripts/kernels/init.sh as /init and, in
# /lib/mods in load order, the modules (decompressed) that the kernel in
# KDIR needs to mount the host's root: virtio PCI, 9p over virtio and
# overlayfs. Whatever of those is built into that kernel is skipped. Every
# other module is loaded later from KDIR itself, seen through 9p.
set -euo pipefail

kdir=${1:?usage: initramfs.sh KDIR RELEASE OUT}
release=${2:?usage: initramfs.sh KDIR RELEASE OUT}
out=${3:?usage: initramfs.sh KDIR RELEASE OUT}
here=$(cd "$(dirname "$0")" && pwd)
busybox=$(command -v busybox || true)
if [ -z "$busybox" ] || ! { ldd "$busybox" 2>&1 || true; } | grep -q "not a dynamic"; then
	echo "initramfs.sh: needs a static busybox (Debian package busybox-static)" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,lower,upper,newroot,lib/mods}
cp "$busybox" "$work/bin/busybox"
cp "$here/init.sh" "$work/init"
chmod 755 "$work/init"

n=10
for mod in virtio_pci 9pnet_virtio 9p overlay; do
	# --show-depends lists "builtin NAME" or "insmod PATH" in load order.
	while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		base=$(basename "$path")
		base=${base%.xz}
		base=${base%.zst}
		ls "$work"/lib/mods/*-"$base" >/dev/null 2>&1 && continue
		case $path in
		*.xz) xz -dc "$path" ;;
		*.zst) zstd -qdc "$path" ;;
		*) cat "$path" ;;
		esac >"$work/lib/mods/$n-$base"
		n=$((n + 1))
	done < <(modprobe -d "$kdir" -S "$release" --show-depends "$mod")
done

# busybox has cpio (newc): no cpio package needed
(cd "$work" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
