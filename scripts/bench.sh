#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Packet benchmark (`make bench`): ns/packet of xdp_lb through
# BPF_PROG_TEST_RUN next to an empty XDP program, measured by
# build/scripts/bench/pktbench. Prints the machine and the table, and writes
# build/bench/results.md and build/bench/results.json. QUICK=1 runs the short
# variant (about 15 s instead of about a minute). Extra arguments go to
# pktbench (e.g. --cpu 0, --rounds 9). Nothing is attached or pinned: the
# programs only run inside test_run, so the host's network is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/bench
BIN=build/scripts/bench/pktbench

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (loads BPF programs); run: sudo make bench" >&2
	exit 1
fi
if [ ! -x "$BIN" ]; then
	echo "bench: $BIN is missing; run make first" >&2
	exit 1
fi

args=()
[ "${QUICK:-0}" = 1 ] && args+=(--quick)

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
machine="$(nproc) CPUs, kernel $(uname -r), ${cpu_model:-unknown CPU}"

mkdir -p "$OUT"
tmp=$(mktemp "$OUT/results.md.XXXXXX")
trap 'rm -f "$tmp"' EXIT

echo "bench: machine: $machine"
start=$SECONDS
"$BIN" "${args[@]}" "$@" --json-out "$OUT/results.json" >"$tmp"
{
	echo "# Sluice packet benchmark"
	echo
	echo "Machine: $machine. Date: $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo
	cat "$tmp"
} >"$OUT/results.md"
echo
cat "$tmp"
echo
echo "bench: done in $((SECONDS - start)) s; wrote $OUT/results.md and $OUT/results.json"
