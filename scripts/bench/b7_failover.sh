# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# b7_failover.sh - B7: what a dead backend costs while clients keep opening
# connections, Sluice's passive outlier detection vs kube-proxy's iptables
# DNAT with the same dead endpoint. Sourced by scripts/bench.sh after
# net.sh (bn__ns, bn__in, bn__ns_add, $BN_ROOT, $BN_PIN, $BN_LBTOOL) and
# its own helpers (bench__log, bench__rec, bench__rotate, $RAW, $TMP,
# $ROUNDS, $CPU, $QUICK).
#
# Contract: b7__up builds
#
#   C ($BN_ID-b7-c) --veth-- N ($BN_ID-b7-n) --veth-- B ($BN_ID-b7-b)
#   client 10.70.0.2          node: Sluice XDP on      10.128.7.{1-3,11-13,
#   (connrate load)           n0 and n1, iptables      21-23}: connrate servers,
#                             kube-proxy DNAT          port 8090, one per address
#
# plus a child cgroup $BN_ID-b7 of the cgroup2 mount (never the root) with
# Sluice's socket LB attached (socktool), maps pinned under $BN_PIN/b7_maps
# (lbtool). Variants, interleaved, rounds rotated:
#   xdp   client in C -> VIP 10.96.7.R:80, Sluice XDP on the node
#   sock  client in C and the cgroup -> VIP 10.96.8.R:80, socket LB
#   ipt   client in C -> VIP 10.97.0.1:80, kube-proxy-style iptables
#         chains on the node (statistic random over the three endpoints)
# Every Sluice sample uses a service of its own (round R), so its backends
# have fresh ids and no health history; outlier detection has its defaults
# (3 consecutive failures, 30 s). One sample: connrate opens B7_RATE
# connections/s (connect, one line each way, close; 1 s timeout), the
# server of the variant's second backend is killed after B7_PRE ms, the
# load goes on for
# B7_POST ms more; then the server is started again. Each variant has
# three backend addresses of its own (xdp .1-3, sock .11-13, ipt .21-23):
# the node's netfilter conntrack (live there for the iptables variant)
# remembers every flow's post-DNAT 4-tuple, and a client port reused by
# another variant towards the same backend would clash with it (SYN
# dropped, a 1 s timeout that has nothing to do with the dead backend). The sample records
# the client's failed connections and, for Sluice, the kernel's ejection
# time of that backend (backend_health: ejected_until_ns - 30 s; the same
# CLOCK_MONOTONIC as connrate's records). iptables, conntrack and the
# cgroup live only in what b7__up created; b7__down removes all of it
# (idempotent, safe on a partial b7__up; bench.sh's traps call it).

# shellcheck disable=SC2153 # BN_ID, BN_PIN: net.sh
B7_ID=$BN_ID-b7
B7_PIN=$BN_PIN/b7_maps
B7_CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
B7_CG=${B7_CGROOT:+$B7_CGROOT/$B7_ID}
B7_CONNRATE=$BN_ROOT/build/tests/tools/connrate
B7_SOCKTOOL=$BN_ROOT/build/tests/tools/socktool
B7_UP=0
B7_CG_MADE=0
B7_RATE=500
B7_PORT=8090
B7_PRE=300
if [ "$QUICK" = 1 ]; then B7_POST=600; else B7_POST=1000; fi
B7_BASE_MS=30000 # SLUICE_OUTLIER_BASE_MS_DEFAULT: the services keep the defaults
declare -A B7_SRV=()
# the last octets of the backend addresses: xdp, sock, ipt
B7_ALL="1 2 3 11 12 13 21 22 23"

b7__ns() { bn__ns b7 "$1"; }

b7__link() {
	local a=$1 adev=$2 b=$3 bdev=$4
	ip -n "$a" link add "$adev" type veth peer name "$bdev" netns "$b" || return 1
	ip -n "$a" link set "$adev" up && ip -n "$b" link set "$bdev" up
}

b7__topo() {
	local c n b i
	c=$(b7__ns c) n=$(b7__ns n) b=$(b7__ns b)
	bn__ns_add "$c" && bn__ns_add "$n" && bn__ns_add "$b" || return 1
	b7__link "$n" n0 "$c" c0 && b7__link "$n" n1 "$b" b0 || return 1
	ip -n "$c" addr add 10.70.0.2/24 dev c0
	ip -n "$n" addr add 10.70.0.1/24 dev n0
	ip -n "$n" addr add 10.71.0.1/24 dev n1
	ip -n "$b" addr add 10.71.0.2/24 dev b0
	for i in $B7_ALL; do
		ip -n "$b" addr add "10.128.7.$i/32" dev b0 || return 1
	done
	ip -n "$c" route add 10.96.0.0/15 via 10.70.0.1 || return 1
	ip -n "$c" route add 10.128.7.0/24 via 10.70.0.1 || return 1
	ip -n "$n" route add 10.128.7.0/24 via 10.71.0.2 || return 1
	ip -n "$b" route add default via 10.71.0.1 || return 1
	bn__in "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 >/dev/null || return 1
	# full checksums on the wire, GRO for XDP (as scripts/lib/topology.sh)
	bn__in "$c" ethtool -K c0 gro on tx off >/dev/null 2>&1 &&
		bn__in "$b" ethtool -K b0 gro on tx off >/dev/null 2>&1 || return 1
	# connections by the thousand: reuse TIME_WAIT ports, use every port
	bn__in "$c" sysctl -qw net.ipv4.tcp_tw_reuse=1 \
		net.ipv4.ip_local_port_range="1024 65535" >/dev/null
}

# kube-proxy's chains for one service with three endpoints (as kprules
# writes them, with this topology's addresses).
b7__ipt_rules() {
	cat <<EOF
*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-B7 - [0:0]
:KUBE-SEP-B7-1 - [0:0]
:KUBE-SEP-B7-2 - [0:0]
:KUBE-SEP-B7-3 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.97.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-B7
-A KUBE-SVC-B7 -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-B7-1
-A KUBE-SVC-B7 -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-B7-2
-A KUBE-SVC-B7 -j KUBE-SEP-B7-3
-A KUBE-SEP-B7-1 -p tcp -m tcp -j DNAT --to-destination 10.128.7.21:$B7_PORT
-A KUBE-SEP-B7-2 -p tcp -m tcp -j DNAT --to-destination 10.128.7.22:$B7_PORT
-A KUBE-SEP-B7-3 -p tcp -m tcp -j DNAT --to-destination 10.128.7.23:$B7_PORT
COMMIT
EOF
}

b7__server_start() {
	local i=$1 k
	[ -z "${B7_SRV[$i]:-}" ] || return 0
	rm -f "$TMP/b7srv$i.ready"
	# nsenter and taskset exec: $! is the server's own pid
	nsenter --net="/var/run/netns/$(b7__ns b)" taskset -c "$CPU" "$B7_CONNRATE" serve \
		--bind "10.128.7.$i" --port "$B7_PORT" --name "be$((i % 10))" --ready "$TMP/b7srv$i.ready" \
		>/dev/null 2>"$TMP/b7srv$i.err" &
	B7_SRV[$i]=$!
	for ((k = 0; k < 250; k++)); do
		[ -e "$TMP/b7srv$i.ready" ] && return 0
		sleep 0.02
	done
	bench__log "B7: server $i did not start: $(head -n1 "$TMP/b7srv$i.err")"
	return 1
}

b7__server_kill() {
	[ -n "${B7_SRV[$1]:-}" ] || return 0
	kill -9 "${B7_SRV[$1]}" 2>/dev/null
	wait "${B7_SRV[$1]}" 2>/dev/null
	B7_SRV[$1]=
}

b7__up() {
	local n i
	[ -n "$B7_CG" ] || {
		bench__log "B7: no cgroup2 mount in /proc/mounts"
		return 1
	}
	B7_UP=1
	n=$(b7__ns n)
	mkdir "$B7_CG" || return 1
	B7_CG_MADE=1
	b7__topo || return 1
	b7__ipt_rules | bn__in "$n" iptables-restore || return 1
	mkdir -p "$BN_PIN" || return 1
	"$BN_LBTOOL" --pin "$B7_PIN" load >/dev/null || return 1
	bn__in "$n" "$BN_LBTOOL" --pin "$B7_PIN" attach xdp n0 >/dev/null || return 1
	bn__in "$n" "$BN_LBTOOL" --pin "$B7_PIN" attach xdp n1 >/dev/null || return 1
	"$B7_SOCKTOOL" --pin "$B7_PIN" attach lb "$B7_CG" || return 1
	for i in $B7_ALL; do
		b7__server_start "$i" || return 1
	done
}

b7__down() {
	local i pid
	[ "$B7_UP" = 1 ] || return 0
	B7_UP=0
	for i in $B7_ALL; do
		b7__server_kill "$i"
	done
	if [ "$B7_CG_MADE" = 1 ] && [ -d "$B7_CG" ]; then
		while read -r pid; do
			kill "$pid" 2>/dev/null
			echo "$pid" >"$B7_CGROOT/cgroup.procs" 2>/dev/null
		done <"$B7_CG/cgroup.procs" 2>/dev/null
		rmdir "$B7_CG" 2>/dev/null || bench__log "B7: cannot remove $B7_CG"
	fi
	if [ -d "$B7_PIN" ]; then
		"$B7_SOCKTOOL" --pin "$B7_PIN" unpin 2>/dev/null
		"$BN_LBTOOL" --pin "$B7_PIN" unpin >/dev/null 2>&1 || rm -rf "$B7_PIN"
	fi
	for i in c n b; do
		ip netns del "$(b7__ns "$i")" 2>/dev/null
	done
	return 0
}

b7__le32() { printf '%d %d %d %d' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }

# b7__health VIP ADDR: backend_health of backend ADDR in service VIP:80
# as JSON ({} when it cannot be read).
b7__health() {
	local id
	id=$("$BN_LBTOOL" --pin "$B7_PIN" svc get "$1:80/tcp" |
		awk -v a="$2:$B7_PORT" '$2 == a { print $1 }')
	[ -n "$id" ] || {
		echo '{}'
		return
	}
	# shellcheck disable=SC2046 # the key is four byte arguments
	bpftool -j map lookup pinned "$B7_PIN/backend_health" key $(b7__le32 "$id") 2>/dev/null |
		jq -c '.formatted.value // {}' 2>/dev/null || echo '{}'
}

# b7__sample VARIANT ROUND: one failover sample; prints its JSON record.
# Runs in the suite's shell (it restarts the killed server).
b7__sample() {
	local v=$1 r=$2 vip base health=null load
	case $v in
	xdp) vip=10.96.7.$((r + 1)) base=0 ;;
	sock) vip=10.96.8.$((r + 1)) base=10 ;;
	ipt) vip=10.97.0.1 base=20 ;;
	esac
	if [ "$v" != ipt ]; then
		"$BN_LBTOOL" --pin "$B7_PIN" svc set "$vip:80/tcp" "10.128.7.$((base + 1)):$B7_PORT" \
			"10.128.7.$((base + 2)):$B7_PORT" "10.128.7.$((base + 3)):$B7_PORT" >/dev/null || {
			echo '{"error": "lbtool svc set failed"}'
			return
		}
	else
		bn__in "$(b7__ns n)" conntrack -F >/dev/null 2>&1 || true
	fi
	rm -f "$TMP/b7.stop"
	(
		if [ "$v" = sock ]; then
			echo "$BASHPID" >"$B7_CG/cgroup.procs" || exit 1
		fi
		exec nsenter --net="/var/run/netns/$(b7__ns c)" taskset -c "$CPU" "$B7_CONNRATE" load \
			--target "$vip:80" --rate "$B7_RATE" --timeout-ms 1000 --stop-file "$TMP/b7.stop" \
			--log "$RAW/b7-$v-$r.log"
	) >"$TMP/b7.json" 2>"$TMP/b7.err" &
	load=$!
	sleep "$(awk -v ms="$B7_PRE" 'BEGIN { print ms / 1000 }')"
	b7__server_kill $((base + 2))
	sleep "$(awk -v ms="$B7_POST" 'BEGIN { print ms / 1000 }')"
	touch "$TMP/b7.stop"
	wait "$load"
	[ "$v" = ipt ] || health=$(b7__health "$vip" "10.128.7.$((base + 2))")
	b7__server_start $((base + 2)) >&2 || true
	if [ ! -s "$TMP/b7.json" ]; then
		printf '{"error": "connrate: %s"}\n' "$(head -n1 "$TMP/b7.err" | tr -dc '[:alnum:] .,:()_/-')"
		return
	fi
	jq -c --argjson h "$health" --argjson base "$B7_BASE_MS" --argjson pre "$B7_PRE" \
		--argjson post "$B7_POST" '. + {health: $h, pre_ms: $pre, post_ms: $post,
		eject_ns: (if $h != null and ($h.ejections // 0) > 0
			then $h.ejected_until_ns - ([$base * $h.ejections, 300000] | min) * 1000000
			else 0 end)}' "$TMP/b7.json"
}

# b7__rounds FIRST: rounds FIRST .. FIRST + ROUNDS - 1.
b7__rounds() {
	local r v s
	for ((r = $1; r < $1 + ROUNDS; r++)); do
		for v in $(bench__rotate "$r" xdp sock ipt); do
			# not in $(...): the sample restarts a server, which must
			# outlive it (servers die with their parent)
			b7__sample "$v" "$r" >"$TMP/b7.rec"
			s=$(cat "$TMP/b7.rec")
			bench__rec "\"fig\": \"b7\", \"variant\": \"$v\", \"round\": $r" "$s"
		done
	done
}

bench__b7() {
	bench__log "B7: failover, a backend killed under $B7_RATE conn/s: Sluice XDP, socket LB, iptables; $ROUNDS rounds"
	printf '{"rate": %d, "pre_ms": %d, "post_ms": %d, "threshold": 3, "base_ms": %d}\n' \
		"$B7_RATE" "$B7_PRE" "$B7_POST" "$B7_BASE_MS" >"$RAW/b7meta.json"
	b7__up || {
		bench__log "B7: setup failed"
		b7__down
		return 1
	}
	b7__rounds 0
	"$BN_LBTOOL" --pin "$B7_PIN" stats >"$RAW/lbstats-b7.txt" 2>&1 || true
	b7__down
}
