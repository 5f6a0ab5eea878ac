#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fetch.sh - get one Debian kernel image package into the kernel cache,
# unpacked, without installing it on this machine.
#
# Contract: fetch.sh SERIES CACHE prints the directory (CACHE/<package>)
# that holds the package unpacked with `dpkg -x` (boot/vmlinuz-*, and
# lib/modules/<release>/ with a modules.dep made by `depmod -b`) and its
# kernel release on one line: "<dir> <release>". SERIES is a Debian kernel
# series such as 6.1 or 6.12: the newest generic amd64 image of that series
# in the configured apt sources is chosen (the -cloud flavour has no 9p, so
# it cannot mount the host's root). A package already unpacked in CACHE is
# reused; nothing is downloaded then. Exits non-zero with a message naming
# SERIES when the sources carry no such image.
set -euo pipefail

series=${1:?usage: fetch.sh SERIES CACHE}
cache=${2:?usage: fetch.sh SERIES CACHE}
[[ $series =~ ^[0-9]+\.[0-9]+$ ]] ||
	{ echo "fetch.sh: kernel series '$series' is not of the form 6.1" >&2; exit 2; }
mkdir -p "$cache"

# Debian names the generic images linux-image-6.1.0-57-amd64 (bookworm's own
# series) and linux-image-6.12.118+deb12-amd64(-unsigned) (newer series
# backported to bookworm); both carry the same kernel and modules. Skip
# -cloud, -rt and -dbg flavours.
re="^linux-image-${series//./\\.}[.][0-9]+(-[0-9]+|[+]deb[0-9]+)-amd64(-unsigned)?\$"
pkg=$(apt-cache search --names-only "^linux-image-${series//./\\.}\\." | awk '{ print $1 }' |
	grep -E "$re" | sort -V | tail -1 || true)
if [ -z "$pkg" ]; then
	echo "fetch.sh: no generic amd64 linux-image of series $series in the apt sources" \
		"(apt-get update? see /etc/apt/sources.list*)" >&2
	exit 1
fi

dir=$cache/$pkg
if [ ! -f "$dir/.unpacked" ]; then
	rm -rf "$dir" "$cache/dl-$pkg"
	mkdir -p "$cache/dl-$pkg"
	# apt-get download writes into the current directory, which its _apt
	# sandbox user cannot write into under root's cache: it would fall back
	# to root with a warning, so ask for root at once.
	(cd "$cache/dl-$pkg" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2)
	dpkg -x "$cache/dl-$pkg"/*.deb "$dir"
	rm -rf "$cache/dl-$pkg"
	touch "$dir/.unpacked"
fi

release=$(ls "$dir/lib/modules" | head -1)
[ -n "$release" ] && [ -f "$dir/boot/vmlinuz-$release" ] ||
	{ echo "fetch.sh: $pkg has no vmlinuz/modules for one release" >&2; exit 1; }
# The package's postinst would run depmod; do it inside the cache instead.
[ -f "$dir/lib/modules/$release/modules.dep" ] || depmod -b "$dir" "$release"
echo "$dir $release"
