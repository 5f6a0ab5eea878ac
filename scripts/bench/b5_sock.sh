# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# b5_sock.sh - B5: socket-level load balancing and same-node redirection,
# sourced by scripts/bench.sh after net.sh (bn__ns, bn__in, bn__ns_add,
# $BN_ROOT, $BN_PIN) and its own helpers (bench__log, bench__rec,
# bench__rotate, bench__rerun, $RAW, $TMP, $ROUNDS, $CPU, $QUICK).
#
# Contract: b5__up builds what B5 and B6 (b6_telem.sh) measure in:
#   - network namespace M ($BN_ID-b5-m): loopback only, the client address
#     10.64.0.1 and the 10 backend addresses of service 0 of plan.h
#     (10.128.0.1-10) on lo; no netfilter rule, so no conntrack;
#   - network namespace I ($BN_ID-b5-i): the same, plus kube-proxy's
#     iptables ruleset for that service (kprules) and a route to the VIP;
#   - a cgroup $BN_ID-b5 under the cgroup2 mount of /proc/mounts with the
#     children plain (nothing attached), lb (Sluice socket LB), redir
#     (sockops + sk_msg redirect as meshd deploys it: 4 MiB queue bound),
#     redirq (the same with a 256 MiB bound, B5b's experiment) and telem
#     (B6's telemetry); never the root cgroup;
#   - Sluice maps pinned under $BN_PIN/b5 (lbtool load) with service
#     10.96.0.1:80/tcp -> the 10 backends (the same as kprules'), socket LB
#     and redirect attached through socktool (pinned links); a second pin
#     dir $BN_PIN/b5q holds redirq's programs and maps (the queue bound is
#     a load-time constant of the redirect object).
# Every sample is one pingpong run (one JSON line, raw/samples.jsonl) in a
# child cgroup, both ends pinned by CPU; the counters pinned under
# $BN_PIN/b5 travel with each sample, so report.py can check that the
# sample took the path its variant names. b5__down removes everything
# (processes in the cgroups first, then cgroups, pins, namespaces); it is
# idempotent and safe on a partial b5__up, and bench.sh's traps call it.

# shellcheck disable=SC2153 # BN_ID, BN_PIN: net.sh
B5_ID=$BN_ID-b5
B5_PIN=$BN_PIN/b5
B5Q_PIN=$BN_PIN/b5q
# The redirect's queue bound (bytes a reader may leave unread before its
# writer goes back to TCP for good) of B5b's experiment.
B5Q_QUEUE=$((256 << 20))
B5_CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
B5_CG=${B5_CGROOT:+$B5_CGROOT/$B5_ID}
B5_PP=$BN_ROOT/build/scripts/bench/pingpong
B5_SOCKTOOL=$BN_ROOT/build/tests/tools/socktool
B5_UP=0
B5_CG_MADE=0 # the cgroup is ours to remove (never one that existed before)
B5_VIP=10.96.0.1
B5_CLIENT=10.64.0.1
B5_NBE=10
# Backends of plan.h's service 0 (kprules programs the same ones).
B5_BACKENDS=()
for ((b5_i = 1; b5_i <= B5_NBE; b5_i++)); do
	B5_BACKENDS+=("10.128.0.$b5_i:8080")
done
unset b5_i
B5_TARGETS=$(
	IFS=,
	echo "${B5_BACKENDS[*]}"
)
# The other CPU of the cross-CPU placement: the client runs there, the
# server on $CPU (where every other figure runs).
B5_OTHER=$((CPU > 0 ? CPU - 1 : 1))

# Sample window and warm-up, ms: 95 samples per run (B5a 20, B5b 30,
# B5c 15, B6 20) plus ~30 ms of process start each: ~30 s with QUICK=1,
# ~110 s in full.
if [ "$QUICK" = 1 ]; then
	B5_MS=250
	B5_WARM=30
else
	B5_MS=1000
	B5_WARM=100
fi

b5__ns() { bn__ns b5 "$1"; }

# Both namespaces: same addresses, same sysctls. Connections are opened
# and closed by the ten thousand: TIME_WAIT ports are reused after 1 s
# (the default 2 does it for 127/8 only) and the whole port range is
# used, so no variant runs out of ports or pays for searching them.
b5__ns_up() {
	local ns=$1 i
	bn__ns_add "$ns" || return 1
	ip -n "$ns" addr add "$B5_CLIENT/32" dev lo || return 1
	for ((i = 1; i <= B5_NBE; i++)); do
		ip -n "$ns" addr add "10.128.0.$i/32" dev lo || return 1
	done
	bn__in "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="1024 65535" >/dev/null
}

b5__up() {
	local c m i
	[ -n "$B5_CGROOT" ] || {
		bench__log "B5: no cgroup2 mount in /proc/mounts"
		return 1
	}
	m=$(b5__ns m)
	i=$(b5__ns i)
	B5_UP=1
	mkdir "$B5_CG" || return 1
	B5_CG_MADE=1
	for c in plain lb redir redirq telem; do
		mkdir "$B5_CG/$c" || return 1
	done
	b5__ns_up "$m" && b5__ns_up "$i" || return 1
	# kube-proxy's DNAT happens in OUTPUT after a route lookup of the
	# VIP: route it out of lo from the client address (Sluice's socket
	# LB needs no route, it rewrites connect()).
	ip -n "$i" route add 10.96.0.0/16 dev lo src "$B5_CLIENT" || return 1
	"$BN_KPRULES" iptables --services 1 --backends "$B5_NBE" |
		bn__in "$i" iptables-restore || return 1
	mkdir -p "$BN_PIN" || return 1
	"$BN_LBTOOL" --pin "$B5_PIN" load >/dev/null || return 1
	"$BN_LBTOOL" --pin "$B5_PIN" svc set "$B5_VIP:80/tcp" "${B5_BACKENDS[@]}" >/dev/null ||
		return 1
	"$B5_SOCKTOOL" --pin "$B5_PIN" attach lb "$B5_CG/lb" || return 1
	"$B5_SOCKTOOL" --pin "$B5_PIN" attach redir "$B5_CG/redir" || return 1
	"$BN_LBTOOL" --pin "$B5Q_PIN" load >/dev/null || return 1
	"$B5_SOCKTOOL" --pin "$B5Q_PIN" --queue-max "$B5Q_QUEUE" attach redir "$B5_CG/redirq"
}

b5__down() {
	local c pid
	[ "$B5_UP" = 1 ] || return 0
	B5_UP=0
	b6__down
	if [ "$B5_CG_MADE" = 1 ] && [ -d "$B5_CG" ]; then
		# only our pingpong runs live in these cgroups: stop them, move
		# what is left to the root (a cgroup with processes cannot go)
		for c in "$B5_CG"/*/; do
			while read -r pid; do
				kill "$pid" 2>/dev/null
			done <"$c/cgroup.procs" 2>/dev/null
		done
		for c in "$B5_CG"/*/ "$B5_CG"; do
			while read -r pid; do
				echo "$pid" >"$B5_CGROOT/cgroup.procs" 2>/dev/null
			done <"$c/cgroup.procs" 2>/dev/null
		done
		for c in "$B5_CG"/*/; do
			[ -d "$c" ] && rmdir "$c" 2>/dev/null
		done
		rmdir "$B5_CG" 2>/dev/null || bench__log "B5: cannot remove $B5_CG"
	fi
	for c in "$B5_PIN" "$B5Q_PIN"; do
		[ -d "$c" ] || continue
		"$B5_SOCKTOOL" --pin "$c" unpin 2>/dev/null
		"$BN_LBTOOL" --pin "$c" unpin >/dev/null 2>&1 || rm -rf "$c"
	done
	ip netns del "$(b5__ns m)" 2>/dev/null
	ip netns del "$(b5__ns i)" 2>/dev/null
	return 0
}

# b5__pp NS CGROUP MODE ARGS...: one pingpong sample in namespace NS
# (m or i) and child cgroup CGROUP, reading the counters of the programs
# attached there; prints its JSON line, or an error record (the report
# flags the row) when the run failed.
b5__pp() {
	local ns=$1 cg=$2 s pin=$B5_PIN
	shift 2
	[ "$cg" = redirq ] && pin=$B5Q_PIN
	if ! s=$(bn__in "$(b5__ns "$ns")" "$B5_PP" "$@" --cgroup "$B5_CG/$cg" --pin "$pin" \
		--warmup-ms "$B5_WARM" --duration-ms "$B5_MS" 2>"$TMP/pp.err"); then
		bench__log "pingpong $*: $(head -n1 "$TMP/pp.err")"
		[ -n "$s" ] || s='{"error": "pingpong failed"}'
	fi
	printf '%s\n' "$s"
}

# Placement "same": client and server on $CPU; "cross": client on the
# other CPU, server on $CPU.
b5__cpus() {
	case $1 in
	same) echo "--cpu-client $CPU --cpu-server $CPU" ;;
	cross) echo "--cpu-client $B5_OTHER --cpu-server $CPU" ;;
	esac
}

b5__places() {
	if [ "$(nproc)" -gt 1 ]; then echo same cross; else echo same; fi
}

# B5a/B5b: redirected vs plain loopback TCP on 127.0.0.1, every
# (variant, placement) pair once per round, order rotated; B5b adds the
# redirect with the large queue bound (redirq).
# b5__loop_rounds FIG MODE FIRST
b5__loop_rounds() {
	local fig=$1 mode=$2 r vp v p s cg combos=() pl
	for pl in $(b5__places); do
		combos+=("redir:$pl" "plain:$pl")
		[ "$mode" = stream ] && combos+=("redirq:$pl")
	done
	for ((r = $3; r < $3 + ROUNDS; r++)); do
		for vp in $(bench__rotate "$r" "${combos[@]}"); do
			v=${vp%:*} p=${vp#*:}
			cg=$v
			# shellcheck disable=SC2046 # word splitting of the CPU flags
			s=$(b5__pp m "$cg" "$mode" $(b5__cpus "$p"))
			bench__rec "\"fig\": \"$fig\", \"variant\": \"$v\", \"place\": \"$p\", \"round\": $r" "$s"
		done
	done
}

# B5c: connect + 64 B request/response + close, sequential, from
# 10.64.0.1, client and server on $CPU:
#   sluice  to the VIP, socket LB in the client's cgroup (namespace M)
#   direct  straight to the 10 backend addresses in turn (namespace M,
#           no programs): what any LB can at best approach
#   ipt     to the VIP through kube-proxy's iptables DNAT (namespace I)
b5__crr_rounds() {
	local r v s
	for ((r = $1; r < $1 + ROUNDS; r++)); do
		for v in $(bench__rotate "$r" sluice direct ipt); do
			case $v in
			sluice)
				s=$(b5__pp m lb crr --listen 0.0.0.0:8080 --bind "$B5_CLIENT" \
					--connect "$B5_VIP:80" --cpu-client "$CPU" --cpu-server "$CPU")
				;;
			direct)
				s=$(b5__pp m plain crr --listen 0.0.0.0:8080 --bind "$B5_CLIENT" \
					--connect "$B5_TARGETS" --cpu-client "$CPU" --cpu-server "$CPU")
				;;
			ipt)
				# every sample starts from an empty conntrack table
				bn__in "$(b5__ns i)" conntrack -F >/dev/null 2>&1 || true
				s=$(b5__pp i plain crr --listen 0.0.0.0:8080 --bind "$B5_CLIENT" \
					--connect "$B5_VIP:80" --cpu-client "$CPU" --cpu-server "$CPU")
				;;
			esac
			bench__rec "\"fig\": \"b5c\", \"variant\": \"$v\", \"place\": \"same\", \"round\": $r" "$s"
		done
	done
}

bench__b5() {
	bench__log "B5: socket LB + redirect: setup (cgroup $B5_CG, pins $B5_PIN)"
	printf '{"cpu": %d, "other_cpu": %d, "ms": %d, "warmup_ms": %d, "backends": %d, "queue_big": %d}\n' \
		"$CPU" "$B5_OTHER" "$B5_MS" "$B5_WARM" "$B5_NBE" "$B5Q_QUEUE" >"$RAW/b5meta.json"
	b5__up || {
		bench__log "B5: setup failed"
		return 1
	}
	bench__log "B5a: ping-pong 64 B, redirect vs loopback, $(b5__places), $ROUNDS rounds x ${B5_MS} ms"
	b5__loop_rounds b5a rr 0
	if bench__rerun "B5a"; then
		b5__loop_rounds b5a rr "$ROUNDS"
	fi
	bench__log "B5b: bulk stream, redirect vs loopback, $(b5__places), $ROUNDS rounds x ${B5_MS} ms"
	b5__loop_rounds b5b stream 0
	if bench__rerun "B5b"; then
		b5__loop_rounds b5b stream "$ROUNDS"
	fi
	bench__log "B5c: connect+request+close, socket LB vs direct vs iptables, $ROUNDS rounds x ${B5_MS} ms"
	b5__crr_rounds 0
	if bench__rerun "B5c"; then
		b5__crr_rounds "$ROUNDS"
	fi
	"$B5_SOCKTOOL" --pin "$B5_PIN" info >"$RAW/b5-sockinfo.txt" 2>&1 || true
}
