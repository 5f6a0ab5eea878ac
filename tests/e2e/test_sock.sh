#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_sock.sh - end-to-end socket-level load balancing and same-node
# redirection (bpf/sock.bpf.c, bpf/redir.bpf.c through user/lib/sock/sock.h).
#
# Contract: creates one network namespace (backends be1..be3 as TCP+UDP
# echo servers on local addresses of its loopback, no route to the VIPs,
# no XDP/tc anywhere, so only the socket LB can reach a VIP), a child
# cgroup under the cgroup2 mount found in /proc/mounts, and a pin dir;
# attaches the cgroup programs to that child cgroup ONLY, and runs the
# clients inside it (socktool/sockpair --cgroup). Socket LB: TCP connect
# to VIP:port reaches every backend with getpeername() == VIP (IPv4, IPv6,
# IPv4-mapped), UDP replies come from the VIP (recvfrom, connected
# getpeername), no backends -> ECONNREFUSED in < 1 s, no conntrack entry,
# per-service flows counted, processes outside the cgroup untouched,
# re-attach under load swaps programs in place, detach is clean.
# Redirection: self-test, 1 GiB with CRC32, slow receiver (bounded queue,
# no stall, no loss), half-close and close from either side, 1000
# concurrent pairs, map back to zero, counters, nothing outside the
# cgroup, clean detach. One "PASS: e2e/<name>" / "FAIL: e2e/<name>" per
# scenario; "INFO:" lines report facts that are not pass/fail. The cgroup
# (processes moved out first), servers, pins and namespace are removed on
# exit, failure or interruption. Needs root and `make` (build/tests/tools).
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/build/tests/tools
LBTOOL=$BIN/lbtool
SOCKTOOL=$BIN/socktool
SOCKPAIR=$BIN/sockpair

ID=sk$$
NS=sluice-$ID
PIN=/sys/fs/bpf/sluice-e2e-$ID
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-e2e-$ID}
VIP4=10.96.0.1
VIP6=fd96::1
BE_PORT=8080
BACKENDS=(be1 be2 be3)
SERVER_PIDS=()
TMP=
FAILED=0
# stretched under make test-kernels (SLUICE_TEST_TIME_SCALE, tests/lib/test.h)
CLIENT_TIMEOUT=$((60 * ${SLUICE_TEST_TIME_SCALE:-1}))

be_addr4() { echo "10.77.0.${1#be}"; }
be_addr6() { echo "fd77::${1#be}"; }
in_ns() { nsenter --net="/var/run/netns/$NS" "$@"; }
lb() { "$LBTOOL" --pin "$PIN" "$@"; }
st() { "$SOCKTOOL" --pin "$PIN" "$@"; }
# clients inside the managed cgroup, in the namespace, bounded
cg_sock() { in_ns timeout "$CLIENT_TIMEOUT" "$SOCKTOOL" --cgroup "$CG" "$@"; }
cg_pair() { in_ns timeout "$CLIENT_TIMEOUT" "$SOCKPAIR" --pin "$PIN" --cgroup "$CG" "$@"; }
# one value of `socktool info`
info() { st info | awk -v k="$1" '$1 == k { print $2 }'; }
# number of pinned links whose name starts with link_$1
pinned_links() {
	local f n=0
	for f in "$PIN"/link_"$1"*; do
		[ -e "$f" ] && n=$((n + 1))
	done
	echo "$n"
}

cleanup() {
	local pid
	for pid in "${SERVER_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		# a cgroup with processes cannot go: move them to the root first
		while read -r pid; do
			echo "$pid" >"$CGROOT/cgroup.procs" 2>/dev/null
		done <"$CG/cgroup.procs" 2>/dev/null
		for d in "$CG"/*/; do
			[ -d "$d" ] && rmdir "$d" 2>/dev/null
		done
	fi
	if [ -d "$PIN" ]; then
		"$SOCKTOOL" --pin "$PIN" unpin 2>/dev/null
		"$LBTOOL" --pin "$PIN" unpin 2>/dev/null || rm -rf "$PIN"
	fi
	# a process still exiting keeps the cgroup busy for a moment: retry
	# (one run left it behind)
	for _ in {1..50}; do
		if [ -z "$CG" ] || [ ! -d "$CG" ]; then break; fi
		while read -r pid; do
			echo "$pid" >"$CGROOT/cgroup.procs" 2>/dev/null
		done <"$CG/cgroup.procs" 2>/dev/null
		rmdir "$CG" 2>/dev/null || sleep 0.02
	done
	# anything of ours still running in the namespace would keep it alive
	for pid in $(ip netns pids "$NS" 2>/dev/null); do
		kill "$pid" 2>/dev/null
	done
	ip netns del "$NS" 2>/dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
	return 0
}

# scenario NAME CMD...: runs CMD with its output indented, prints PASS/FAIL.
scenario() {
	local name=$1 t0 rc
	shift
	t0=$EPOCHREALTIME
	"$@" 2>&1 | sed 's/^/    /'
	rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 0 ]; then
		printf 'PASS: e2e/%s (%ss)\n' "$name" \
			"$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
	else
		printf 'FAIL: e2e/%s\n' "$name"
		FAILED=$((FAILED + 1))
	fi
}

setup() {
	local be i
	TMP=$(mktemp -d /tmp/sluice-sock-e2e.XXXXXX) || return 1
	ip netns add "$NS" || return 1
	in_ns ip link set lo up || return 1
	for be in "${BACKENDS[@]}"; do
		in_ns ip addr add "$(be_addr4 "$be")/32" dev lo || return 1
		in_ns ip addr add "$(be_addr6 "$be")/128" dev lo nodad || return 1
	done
	mkdir "$CG" || return 1
	lb load >/dev/null || return 1
	# The per-packet path watches every packet of the namespace too: it
	# must see socket-LB traffic as plain backend traffic (no conntrack).
	in_ns "$LBTOOL" --pin "$PIN" attach tc lo >/dev/null || return 1
	local be4=() be6=()
	for be in "${BACKENDS[@]}"; do
		be4+=("$(be_addr4 "$be"):$BE_PORT")
		be6+=("[$(be_addr6 "$be")]:$BE_PORT")
	done
	lb svc set "$VIP4:80/tcp" "${be4[@]}" >/dev/null &&
		lb svc set "$VIP4:53/udp" "${be4[@]}" >/dev/null &&
		lb svc set "[$VIP6]:80/tcp" "${be6[@]}" >/dev/null &&
		lb svc set "[$VIP6]:53/udp" "${be6[@]}" >/dev/null &&
		lb svc set "$VIP4:81/tcp" >/dev/null && lb svc set "$VIP4:54/udp" >/dev/null &&
		lb svc set "[$VIP6]:81/tcp" >/dev/null || return 1
	for be in "${BACKENDS[@]}"; do
		for addr in "$(be_addr4 "$be")" "$(be_addr6 "$be")"; do
			# nsenter directly, not through a function: it execs the
			# server, so $! is the server's pid
			nsenter --net="/var/run/netns/$NS" "$SOCKTOOL" serve "$be" "$addr" $BE_PORT \
				--ready "$TMP/$be.$addr.ready" >/dev/null 2>&1 </dev/null &
			SERVER_PIDS+=($!)
		done
	done
	local ready
	for ((i = 0; i < 100; i++)); do
		ready=("$TMP"/*.ready)
		[ -e "${ready[0]}" ] && [ "${#ready[@]}" -eq 6 ] && break
		sleep 0.05
	done
	[ "$i" -lt 100 ]
}

# ---------------------------------------------------------------- socket LB

check_lb_attach() {
	st attach lb "$CG" || return 1
	local n
	n=$(bpftool cgroup show "$CG" | grep -c ' sock_')
	echo "$n socket-LB programs on $CG; pinned links: $(pinned_links sock_)"
	[ "$n" -eq 9 ] || return 1 # 8 sock_addr hooks and the health sockops
	# attached to our child cgroup only, never above it
	if bpftool cgroup show "$CGROOT" | grep -q ' sock_'; then
		echo "socket-LB programs found on the cgroup2 root"
		return 1
	fi
	[ "$(info lb_attached)" = 1 ]
}

check_tcp() {
	local vip=$1
	cg_sock tcp -n 200 --bytes 1000 --expect be1,be2,be3 "$vip" 80
}

check_udp() {
	local vip=$1
	cg_sock udp -n 100 --expect be1,be2,be3 "$vip" 53 &&
		cg_sock udp -n 20 --connected "$vip" 53
}

check_mapped() {
	cg_sock tcp -n 30 "::ffff:$VIP4" 80 && cg_sock udp -n 30 "::ffff:$VIP4" 53 &&
		cg_sock udp -n 10 --connected "::ffff:$VIP4" 53
}

check_refused() {
	cg_sock tcp -n 5 --refused "$VIP4" 81 && cg_sock tcp -n 5 --refused "$VIP6" 81 &&
		cg_sock udp -n 5 --refused "$VIP4" 54 &&
		[ "$(info refused)" -ge 15 ]
}

# The balancing happened in connect(): the tc datapath on the namespace's
# loopback saw every packet as plain traffic to a backend (pass), created
# no conntrack entry and balanced nothing itself, and the service's flows
# were counted all the same.
check_no_conntrack() {
	local ct flows stats
	stats=$(lb stats) || return 1
	ct=$(echo "$stats" | awk '/^conntrack entries:/ { print $3 }')
	flows=$(lb svc get "$VIP4:80/tcp" | awk '$1 == "packets" { print $6 }')
	echo "$stats" | awk '$1 == "pass" || $1 == "lb_new" || $1 == "revnat" { printf "datapath %s %s; ", $1, $2 } END { print "" }'
	echo "conntrack entries: $ct; $VIP4:80/tcp flows: $flows; socket LB: connect $(info connect), sendmsg $(info sendmsg), recvmsg_revnat $(info recvmsg_revnat), getpeername_revnat $(info getpeername_revnat)"
	[ "$ct" = 0 ] && [ "${flows:-0}" -ge 200 ] &&
		echo "$stats" | awk '$1 == "pass" { p = $2 } $1 == "lb_new" { n = $2 } END { exit !(p > 0 && n == 0) }'
}

# A process outside the cgroup is not balanced: the VIP has no route.
check_outside_cgroup() {
	in_ns timeout "$CLIENT_TIMEOUT" "$SOCKTOOL" tcp -n 1 --fail "$VIP4" 80
}

# "link-id prog-id" of our cgroup's connect4 link.
connect4_link() {
	local cgid
	cgid=$(stat -c %i "$CG")
	bpftool link show | awk -v cg="$cgid" '
		/^[0-9]+: cgroup/ { id = $1; prog = $4 }
		$1 == "cgroup_id" && $2 == cg && $4 == "cgroup_inet4_connect" { print id, prog }'
}

# A second agent attaching again (pinned links) swaps the programs in
# place while clients keep connecting: same link, new program, and no
# connect() may fail or go unbalanced.
check_reattach_under_load() {
	local before after pid rc=0 i
	before=$(connect4_link)
	cg_sock tcp -n 1500 --bytes 100 "$VIP4" 80 >"$TMP/load" 2>&1 &
	pid=$!
	for ((i = 0; i < 5; i++)); do
		st attach lb "$CG" || rc=1
	done
	wait "$pid" || rc=1
	cat "$TMP/load"
	after=$(connect4_link)
	echo "5 re-attaches during the load; connect4 link/program before: ${before:-none}, after: ${after:-none}; $(bpftool cgroup show "$CG" | grep -c ' sock_') programs attached"
	[ "$rc" -eq 0 ] && [ -n "$before" ] && [ "${before%% *}" = "${after%% *}" ] &&
		[ "${before#* }" != "${after#* }" ] &&
		[ "$(bpftool cgroup show "$CG" | grep -c ' sock_')" -eq 9 ]
}

check_lb_detach() {
	st detach lb || return 1
	local n
	n=$(bpftool cgroup show "$CG" | grep -c ' sock_')
	echo "after detach: $n socket-LB programs on the cgroup, $(pinned_links sock_) pinned links"
	[ "$n" -eq 0 ] && [ "$(pinned_links sock_)" -eq 0 ] &&
		[ "$(info lb_attached)" = 0 ] &&
		cg_sock tcp -n 1 --fail "$VIP4" 80
}

# ----------------------------------------------------------------- redirect

check_redir_selftest() {
	in_ns "$SOCKTOOL" --pin "$PIN" selftest "$CG" &&
		[ "$(bpftool cgroup show "$CG" | grep -c redir_sockops)" -eq 1 ]
}

# With the default 4 MiB receive-queue bound a reader slower than its
# writer sends the connection back to TCP (counted as slow_peer) partway;
# with a 512 MiB bound all of the GiB goes through the redirect.
check_bulk() {
	cg_pair bulk --bytes $((1 << 30)) || return 1
	st --queue-max $((512 << 20)) attach redir "$CG" || return 1
	cg_pair bulk --bytes $((1 << 30)) --min-redirected $((1 << 30))
	local rc=$?
	st attach redir "$CG" || return 1
	return $rc
}
check_slow() { cg_pair slow --bytes $((32 << 20)) --rate 16e6 --max-queue $((16 << 20)); }
check_halfclose() {
	cg_pair --nonblock halfclose && cg_pair --nonblock halfclose --delay-ms 100 &&
		cg_pair --nonblock -6 halfclose
}
check_pairs() { cg_pair pairs -n 1000 && cg_pair -6 pairs -n 200; }

check_redir_counters() {
	local msgs bytes socks
	msgs=$(info redirected_msgs)
	bytes=$(info redirected_bytes)
	socks=$(info redir_sockets)
	echo "redirected_msgs $msgs, redirected_bytes $bytes, passed_msgs $(info passed_msgs), slow_peer $(info slow_peer), sockets_added $(info sockets_added), redir_sockets $socks"
	[ "$msgs" -gt 0 ] && [ "$bytes" -gt $((8 << 20)) ] && [ "$socks" -eq 0 ]
}

# Pairs outside the cgroup never enter the map nor get redirected.
check_redir_outside() {
	local before after
	before=$(info sockets_added)
	in_ns timeout "$CLIENT_TIMEOUT" "$SOCKPAIR" pairs -n 50 || return 1
	after=$(info sockets_added)
	echo "sockets added by pairs outside the cgroup: $((after - before))"
	[ "$after" -eq "$before" ]
}

check_redir_detach() {
	local before after
	st detach redir || return 1
	before=$(info sockets_added)
	in_ns timeout "$CLIENT_TIMEOUT" "$SOCKPAIR" --cgroup "$CG" bulk --bytes $((64 << 20)) || return 1
	after=$(info sockets_added)
	echo "after detach: $(bpftool cgroup show "$CG" | grep -c redir_sockops) sockops programs, $(pinned_links redir_) pinned links, $((after - before)) sockets added"
	[ "$(bpftool cgroup show "$CG" | grep -c redir_sockops)" -eq 0 ] &&
		[ "$(pinned_links redir_)" -eq 0 ] && [ "$after" -eq "$before" ]
}

# Not pass/fail: a reader blocked in recv() on a redirected socket gets
# EAGAIN when a wake-up carries no data (kernel tcp_bpf_recvmsg), e.g. the
# ACK of its own FIN after shutdown(SHUT_WR). See redir.bpf.c.
info_blocking_halfclose() {
	local out
	if out=$(cg_pair halfclose --delay-ms 100 2>&1); then
		echo "INFO: e2e/redir_halfclose_blocking_reader: passed on this kernel"
	else
		echo "INFO: e2e/redir_halfclose_blocking_reader: known kernel limitation reproduced: $(echo "$out" | head -1)"
	fi
}

main() {
	local t0=$SECONDS
	if [ "$(id -u)" -ne 0 ]; then
		echo "FAIL: e2e/sock_setup (needs root)"
		exit 1
	fi
	for t in "$LBTOOL" "$SOCKTOOL" "$SOCKPAIR"; do
		if [ ! -x "$t" ]; then
			echo "FAIL: e2e/sock_setup ($t not built: run make)"
			exit 1
		fi
	done
	if [ -z "$CGROOT" ]; then
		echo "FAIL: e2e/sock_setup (no cgroup2 mount in /proc/mounts)"
		exit 1
	fi
	if ! mountpoint -q /sys/fs/bpf; then
		mount -t bpf bpf /sys/fs/bpf || {
			echo "FAIL: e2e/sock_setup (cannot mount bpffs)"
			exit 1
		}
	fi
	trap cleanup EXIT
	trap 'cleanup; trap - EXIT; exit 130' INT
	trap 'cleanup; trap - EXIT; exit 143' TERM
	echo "# namespace $NS, cgroup $CG, pins $PIN"
	if ! setup; then
		echo "FAIL: e2e/sock_setup"
		exit 1
	fi

	scenario sock_lb_attach_child_cgroup_only check_lb_attach
	scenario sock_lb_v4_tcp_200 check_tcp "$VIP4"
	scenario sock_lb_v6_tcp_200 check_tcp "$VIP6"
	scenario sock_lb_v4_udp check_udp "$VIP4"
	scenario sock_lb_v6_udp check_udp "$VIP6"
	scenario sock_lb_v4mapped check_mapped
	scenario sock_lb_no_backends_refused check_refused
	scenario sock_lb_no_conntrack check_no_conntrack
	scenario sock_lb_outside_cgroup_untouched check_outside_cgroup
	scenario sock_lb_reattach_under_load check_reattach_under_load
	scenario sock_lb_detach check_lb_detach

	scenario redir_selftest check_redir_selftest
	scenario redir_bulk_1gib_crc check_bulk
	# A reader's backlog is bounded through the kfunc bpf_cast_to_kern_ctx
	# (6.2+); without it (Debian 12's 6.1) the backlog has no bound, as
	# README "Kernel matrix" says, and there is no fallback to check.
	if "$BIN/../unit/test_kfeatures" 2>/dev/null | grep -q '^# kfeatures missing:.*kfunc_cast_to_kern_ctx'; then
		echo "SKIP: e2e/redir_slow_receiver (no kfunc bpf_cast_to_kern_ctx on $(uname -r): a redirected reader's backlog has no bound here)"
	else
		scenario redir_slow_receiver check_slow
	fi
	scenario redir_halfclose_and_close check_halfclose
	scenario redir_1000_pairs check_pairs
	scenario redir_counters check_redir_counters
	scenario redir_outside_cgroup_untouched check_redir_outside
	info_blocking_halfclose
	scenario redir_detach check_redir_detach

	echo "# e2e sock: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
