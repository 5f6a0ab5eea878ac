#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - `make test-kernels`: run chosen test suites on the host kernel and
# on Debian's own kernels booted under qemu, and print one table.
#
# Contract: for each entry of KERNELS ("host", or a Debian kernel series
# such as 6.1) runs the suites of KERNEL_SUITES (comma separated, see
# suites.sh) and prints their PASS/FAIL/SKIP lines as they come, then a
# table with one row per suite and one column per kernel (the host first)
# holding passed/failed/skipped, the failures by name, and last exactly
# "N passed, M failed". Exits non-zero when M > 0 or nothing ran.
# A Debian kernel is fetched with `apt-get download` and unpacked with
# `dpkg -x` into KERNEL_CACHE (fetch.sh; never installed), booted with a
# busybox initramfs (initramfs.sh, init.sh) that mounts this machine's root
# over 9p read-only under a tmpfs overlay, and runs guest.sh -> suites.sh
# there with the tree and build/ of this checkout; the guest writes its
# logs to a second 9p share. A guest that dies or outlives KERNEL_TIMEOUT
# fails every suite it did not finish. qemu runs at nice 19 under TCG (no
# KVM on this machine kind).
#
# Environment (defaults): KERNELS ("host 6.1 6.12"), KERNEL_SUITES
# (objects,unit; "all" for every suite), KERNEL_CACHE (build/kernels), KERNEL_TIMEOUT (seconds per
# guest, 5400), KERNEL_CPUS (2), KERNEL_MEM (MB, 2048), KERNEL_APPEND (extra
# kernel command line), KERNEL_UNIT (unit binaries, a glob), KERNEL_DATAPATH
# (datapath_test's name filter), KERNEL_BIN_TIMEOUT / KERNEL_E2E_TIMEOUT (per test
# binary / script, see suites.sh), SLUICE_BUILD (build/).
# The kernels run at once (guests and the host's suites side by side), and
# in each the suites run two at a time (suites.sh, KERNEL_JOBS).
# KERNEL_REPORT_ONLY=1 runs nothing: it prints the table (and with
# KERNEL_README=1 rewrites README's) from the results the last run of each
# kernel left in KERNEL_CACHE/results/<kernel>, so kernels run one at a
# time still make one table; a kernel without results fails its column.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/scripts/kernels
BUILD=${SLUICE_BUILD:-$ROOT/build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "run.sh: no $BUILD: run make" >&2; exit 1; }
KERNELS=${KERNELS:-host 6.1 6.12}
SUITES=${KERNEL_SUITES:-objects,unit}
[ "$SUITES" = all ] && SUITES=objects,kfeatures,unit,datapath,e2e-lb,sock,meshd,telemetry
CACHE=${KERNEL_CACHE:-$BUILD/kernels}
TIMEOUT=${KERNEL_TIMEOUT:-5400}
CPUS=${KERNEL_CPUS:-2}
MEM=${KERNEL_MEM:-2048}

if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: needs root (BPF, namespaces, qemu's 9p export of /)" >&2
	exit 1
fi
for tool in qemu-system-x86_64 busybox modprobe depmod bpftool; do
	command -v "$tool" >/dev/null ||
		{ echo "run.sh: $tool missing: run scripts/install-deps.sh with SLUICE_DEPS=kernels" >&2; exit 1; }
done
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
IFS=, read -r -a suite_list <<<"$SUITES"

labels=()   # column titles, in KERNELS order
outs=()     # their result directories

# boot_guest SERIES OUT: run the suites in a guest of that kernel series.
boot_guest() {
	local series=$1 out=$2 kdir release initrd rc t0=$SECONDS
	read -r kdir release < <("$HERE/fetch.sh" "$series" "$CACHE") ||
		{ echo "FAIL: boot ($series: cannot fetch the kernel)" | tee "$out/boot.log"; return 1; }
	initrd=$kdir/initramfs.img
	if [ ! -f "$initrd" ] || [ "$HERE/init.sh" -nt "$initrd" ] ||
		[ "$HERE/initramfs.sh" -nt "$initrd" ]; then
		"$HERE/initramfs.sh" "$kdir" "$release" "$initrd" ||
			{ echo "FAIL: boot ($release: initramfs)" | tee "$out/boot.log"; return 1; }
	fi
	echo "$release" >"$out/release"
	cat >"$out/guest.env" <<-EOF
		SLUICE_ROOT=$ROOT
		SLUICE_BUILD=$BUILD
		KERNEL_KDIR=$kdir
		KERNEL_SUITES=$SUITES
		${KERNEL_UNIT:+KERNEL_UNIT='$KERNEL_UNIT'}
		${KERNEL_DATAPATH:+KERNEL_DATAPATH='$KERNEL_DATAPATH'}
		${KERNEL_BIN_TIMEOUT:+KERNEL_BIN_TIMEOUT=$KERNEL_BIN_TIMEOUT}
		${KERNEL_E2E_TIMEOUT:+KERNEL_E2E_TIMEOUT=$KERNEL_E2E_TIMEOUT}
		export SLUICE_BUILD KERNEL_UNIT KERNEL_DATAPATH KERNEL_BIN_TIMEOUT KERNEL_E2E_TIMEOUT
	EOF
	echo "=== booting $release under qemu (TCG, $CPUS cpus, ${MEM} MB), timeout ${TIMEOUT}s"
	# mitigations=off: nothing to protect in a throwaway guest, and TCG
	# pays for every barrier. no_timer_check: on a busy host the emulated
	# 8254 misses the kernel's IO-APIC timer check and 6.1 panics at boot
	# ("IO-APIC + timer doesn't work!", seen here at load average ~8). panic=-1 with -no-reboot ends qemu on a panic.
	nice -n 19 timeout --kill-after=10 "$TIMEOUT" qemu-system-x86_64 \
		-machine pc -accel tcg -cpu max -smp "$CPUS" -m "$MEM" \
		-nodefaults -display none -serial stdio -monitor none -no-reboot \
		-kernel "$kdir/boot/vmlinuz-$release" -initrd "$initrd" \
		-append "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off no_timer_check sluice.out=$out sluice.run=$HERE/guest.sh ${KERNEL_APPEND:-}" \
		-virtfs "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
		</dev/null 2>&1 | tr -d '\r' | tee "$out/console.log" |
		grep --line-buffered -E '^(PASS|FAIL|SKIP|===|---|guest:)'
	rc=${PIPESTATUS[0]}
	echo "--- $release: guest ended ($(cat "$out/guest.done" 2>/dev/null || echo "qemu exit $rc, no guest.done")), $((SECONDS - t0))s"
	[ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] &&
		echo "guest timed out after ${TIMEOUT}s" >"$out/boot.log"
	return 0
}

# Every kernel runs at once: the guests each in their qemu (nice 19), the
# host's suites beside them at normal priority. With more than one kernel
# their console lines are prefixed "[KERNEL] "; the table below is made
# from the result files, not from these lines.
t0=$SECONDS
nk=$(wc -w <<<"$KERNELS")
label() {
	if [ "$nk" -gt 1 ]; then sed -u "s/^/[$1] /"; else cat; fi
}
for k in $KERNELS; do
	out=$CACHE/results/$k
	outs+=("$out")
	if [ "${KERNEL_REPORT_ONLY:-0}" = 1 ]; then
		mkdir -p "$out"
		[ -f "$out/release" ] || echo "no results of a run: run it first" >"$out/boot.log"
		continue
	fi
	rm -rf "$out"
	mkdir -p "$out"
	if [ "$k" = host ]; then
		echo "host $(uname -r)" >"$out/release"
		{
			echo "=== host $(uname -r)"
			"$HERE/suites.sh" "$out" "$SUITES" | grep --line-buffered -E '^(PASS|FAIL|SKIP|===|---)'
		} | label "$k" &
	else
		boot_guest "$k" "$out" | label "$k" &
	fi
done
wait
for i in "${!outs[@]}"; do
	labels+=("$(cat "${outs[$i]}/release" 2>/dev/null || basename "${outs[$i]}")")
done

# A suite a guest never finished counts as one failure, with the reason.
for out in "${outs[@]}"; do
	for s in "${suite_list[@]}"; do
		[ -f "$out/$s.done" ] && continue
		why="guest died before finishing it"
		[ -s "$out/boot.log" ] && why=$(head -1 "$out/boot.log")
		echo "FAIL: $s (not finished: $why; see $out/console.log)" >>"$out/$s.log"
	done
done

# The table: one row per suite, one column per kernel, passed/failed/skipped
# and the suite's seconds (also as TSV for readme.py: suite, kernel, passed,
# failed, skipped, seconds).
tsv=$CACHE/results/matrix.tsv
: >"$tsv"
total_p=0
total_f=0
suite_secs=0
failures=()
printf '\n=== kernel matrix (%ss): passed/failed/skipped seconds\n%-10s' "$((SECONDS - t0))" suite
for l in "${labels[@]}"; do printf ' %-24s' "$l"; done
echo
for s in "${suite_list[@]}"; do
	printf '%-10s' "$s"
	for i in "${!outs[@]}"; do
		log=${outs[$i]}/$s.log
		p=$(grep -c '^PASS:' "$log")
		f=$(grep -c '^FAIL:' "$log")
		k=$(grep -c '^SKIP:' "$log")
		secs=$(cat "${outs[$i]}/$s.done" 2>/dev/null || echo -)
		t=" ${secs}s"
		[ "$secs" = - ] && t=""
		printf ' %-24s' "$p/$f/$k$t"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "${labels[$i]}" "$p" "$f" "$k" "$secs" >>"$tsv"
		[ "$secs" = - ] || suite_secs=$((suite_secs + secs))
		total_p=$((total_p + p))
		total_f=$((total_f + f))
		while IFS= read -r line; do
			failures+=("${labels[$i]}: ${line#FAIL: }")
		done < <(grep '^FAIL:' "$log")
	done
	echo
done
# What each kernel lacks, as test_kfeatures probed it (when it ran).
printf '%-10s' missing
for i in "${!outs[@]}"; do
	if grep -qh '^# kfeatures missing:' "${outs[$i]}"/*.log 2>/dev/null; then
		m=$(grep -h '^# kfeatures missing:' "${outs[$i]}"/*.log | head -n 1 |
			sed 's/^# kfeatures missing: *//')
		m=${m:-nothing}
	else
		m="(not probed)"
	fi
	printf ' %s' "${labels[$i]}: $m;"
	printf '%s\t%s\t%s\n' features "${labels[$i]}" "$m" >>"$tsv"
done
echo
for f in "${failures[@]}"; do
	echo "  failed on $f"
done
echo "$total_p passed, $total_f failed"
# KERNEL_README=1: the README's kernel table is rewritten from this run
if [ "${KERNEL_README:-0}" = 1 ]; then
	took=$((SECONDS - t0))
	# a report of earlier runs: the time those runs' suites took
	[ "${KERNEL_REPORT_ONLY:-0}" = 1 ] && took=$suite_secs
	python3 "$HERE/readme.py" "$tsv" "$ROOT/README.md" "$took" &&
		echo "README.md: kernel matrix table rewritten from this run"
fi
[ "$total_f" -eq 0 ] && [ "$total_p" -gt 0 ]
