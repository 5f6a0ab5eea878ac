#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# b8_policy.sh - the access policy's new-flow cost (#15) next to an nft set
# baseline doing the same filtering: 1k allow prefixes on one service and
# 100k node-wide deny prefixes, the prefixes scripts/bench/policybench.c
# uses (service allow 10.(i/256).(i%256).0/24, i < 1000; node deny /32s
# 100.64.0.0 + 7i, i < 100000).
#
# Contract: three measurements in one run, printed as one markdown table.
#   nft     one veth path of scripts/bench/net.sh (generator -> node ->
#           backend, namespaces named after $$), kernel forwarding on the
#           node, and a table (inet, forward hook) holding the sets.
#           Variants: off (no base chain: no hook; the sets stay loaded),
#           map and concat. Both layouts first drop `ip saddr @node_deny`
#           (an interval set of the 100k /32s), then:
#             map     kube-proxy's layout: a verdict map keyed by daddr .
#                     proto . dport jumps to the service's chain, which
#                     drops `ip saddr != @svc_80_allow` (an interval set of
#                     the 1k /24s);
#             concat  one lookup keyed by service and source prefix, like
#                     Sluice's trie: `daddr . proto . dport . saddr !=
#                     @svc_allow drop` for a service in @svc_policed, a
#                     concatenated interval set (pipapo).
#           No conntrack in any variant (no ct expression), so this is the
#           hook and the lookups alone: a firewall that looks up only `ct
#           state new` packets would add conntrack's own cost on top, not
#           counted here.
#   xdp     a second veth path of the same shape with xdp_lb on the node
#           (svcload's service 0, 10.96.0.1:80, 10 backends, FIB
#           redirect): variants xoff and xon, the latter with the same
#           rules written by `policybench --pin` (removed after the sample).
#           Its conntrack map is flushed before every sample.
#   sluice  build/scripts/bench/policybench (xdp_lb via BPF_PROG_TEST_RUN,
#           the program's time only, pinned to CPU 0).
# Veth samples: xdpgen's TCP SYNs of new 5-tuples (clients 10.0.5.x, all
# allowed and in no deny prefix) at one CPU, rounds rotating the five
# variants; ns/flow = 1e9 / pps, pps being what the backend counted per ns
# of generator + path CPU time. The nft and xdp paths do different work
# (plain forwarding vs load balancing), so only their added ns compare.
# Before the rounds map, concat and xon must each drop a client outside
# the allowed prefixes and a client in a node deny prefix (received 0) and
# pass an allowed one, or the script fails.
# Added ns/flow = median(with) - median(without); ratio = without / with
# (the #15 target for Sluice is >= 0.95). Then nft's added ns per Sluice's
# added ns, against policybench and against the veth path (the latter only
# where Sluice's added ns stand out of that path's max - min spread).
# Usage: b8_policy.sh [ROUNDS [MS [CPU]]] (default 5 500 last CPU). Needs
# root and a built tree (make). Everything it creates is removed on exit,
# failure or signal. Exit 1 on a failed sample or check.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-5}
MS=${2:-500}
CPU=${3:-$(($(nproc) - 1))}
BIN=$ROOT/build/scripts/bench
# Read by net.sh (its namespaces' and pins' names).
# shellcheck disable=SC2034
BN_ID=sb8$$
# shellcheck disable=SC2034
BN_PIN=/sys/fs/bpf/sluice-b8-$$
# shellcheck source=scripts/bench/net.sh
source "$ROOT/scripts/bench/net.sh"
TMP=$(mktemp -d /tmp/sluice-b8.XXXXXX)
b8__cleanup() {
	bn__down
	rm -rf "$TMP"
}
trap b8__cleanup EXIT
trap 'b8__cleanup; trap - EXIT; exit 130' INT
trap 'b8__cleanup; trap - EXIT; exit 143' TERM

b8__log() { printf '[b8] %s\n' "$*" >&2; }
# Clients start at 10.0.5.0 and move one address per 64000 flows
# (xdpgen): sequences stay below 200 x 64000 so every client is in the
# allowed 10.0.5.0/24.
SEQ_WRAP=12800000
SEQ=0
VIP=10.128.0.1

# The table without its base chain: the sets only.
b8__sets() {
	printf 'table inet sluice_b8 {\n'
	printf '\tset node_deny {\n\t\ttype ipv4_addr; flags interval;\n\t\telements = {\n'
	awk 'BEGIN { for (i = 0; i < 100000; i++) { a = 1681915904 + 7 * i;
		printf "\t\t\t%d.%d.%d.%d,\n", int(a / 16777216), int(a / 65536) % 256,
			int(a / 256) % 256, a % 256 } }'
	printf '\t\t}\n\t}\n'
	printf '\tset svc_policed {\n\t\ttype ipv4_addr . inet_proto . inet_service;\n'
	printf '\t\telements = { %s . tcp . 80 }\n\t}\n' "$VIP"
	printf '\tset svc_allow {\n\t\ttype ipv4_addr . inet_proto . inet_service . ipv4_addr;\n'
	printf '\t\tflags interval;\n\t\telements = {\n'
	awk -v vip="$VIP" 'BEGIN { for (i = 0; i < 1000; i++)
		printf "\t\t\t%s . tcp . 80 . 10.%d.%d.0/24,\n", vip, int(i / 256), i % 256 }'
	printf '\t\t}\n\t}\n'
	printf '\tset svc_80_allow {\n\t\ttype ipv4_addr; flags interval;\n\t\telements = {\n'
	awk 'BEGIN { for (i = 0; i < 1000; i++)
		printf "\t\t\t10.%d.%d.0/24,\n", int(i / 256), i % 256 }'
	printf '\t\t}\n\t}\n'
	printf '\tchain svc_80 {\n\t\tip saddr != @svc_80_allow drop\n\t}\n'
	printf '\tmap svc_policy {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict;\n'
	printf '\t\telements = { %s . tcp . 80 : jump svc_80 }\n\t}\n}\n' "$VIP"
}

# b8__chain_on LAYOUT: the base chain with the rules of LAYOUT (concat or
# map, see the contract).
b8__chain_on() {
	local svc_rule="ip daddr . meta l4proto . th dport vmap @svc_policy"
	[ "$1" = concat ] && svc_rule="ip daddr . meta l4proto . th dport @svc_policed \
ip daddr . meta l4proto . th dport . ip saddr != @svc_allow drop"
	bn__in "$NODE" nft -f - <<EOF
add chain inet sluice_b8 forward_filter { type filter hook forward priority 0; policy accept; }
add rule inet sluice_b8 forward_filter ip saddr @node_deny drop
add rule inet sluice_b8 forward_filter $svc_rule
EOF
}
b8__chain_off() { bn__in "$NODE" nft delete chain inet sluice_b8 forward_filter; }

# b8__sample TOPO SADDR MS: one xdpgen sample of new SYNs through TOPO's
# node to its service (nft: VIP; Sluice: svcload's service 0, 10.96.0.1);
# prints its JSON line.
b8__sample() {
	local s daddr=$VIP
	[ "$1" = x ] && daddr=10.96.0.1 && bn__ct_flush x xdp
	s=$(bn__gen "$1" --saddr "$2" --daddr "$daddr" --nvips 1 --flows 0 --syn --warmup \
		--seq-start "$SEQ" --duration-ms "$3" --cpu "$CPU") || return 1
	SEQ=$(((SEQ + $(b8__field "$s" sent)) % SEQ_WRAP))
	printf '%s\n' "$s"
}
b8__field() { sed -n "s/.*\"$2\": \\([0-9.]*\\).*/\\1/p" <<<"$1"; }

# b8__on VARIANT / b8__off VARIANT: put the filtering of VARIANT in place
# or take it away (off and xoff: nothing).
b8__on() {
	case $1 in
	map | concat) b8__chain_on "$1" ;;
	xon) "$BIN/policybench" --pin "$BN_PIN/x_maps" on ;;
	esac
}
b8__off() {
	case $1 in
	map | concat) b8__chain_off ;;
	xon) "$BIN/policybench" --pin "$BN_PIN/x_maps" off ;;
	esac
}
b8__topo() { case $1 in x*) echo x ;; *) echo p ;; esac }

# Median and min-max of the numbers on stdin (one a line).
b8__stats() { sort -g | awk '{ v[NR] = $1 } END { printf "%.1f %.1f %.1f\n",
	(NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'; }

bn__topo_up p
bn__topo_up x
bn__variant x xdp 1 10
NODE=$(bn__ns p n)
b8__log "loading 1k + 100k prefixes into nft sets"
b8__sets >"$TMP/sets.nft"
t0=$(date +%s%N)
bn__in "$NODE" nft -f "$TMP/sets.nft"
b8__log "nft -f of the sets: $((($(date +%s%N) - t0) / 1000000)) ms"

# Every filter must filter: a client outside the allow list and one in
# the node deny list get nothing through, an allowed client everything.
for l in map concat xon; do
	b8__on "$l"
	for c in 10.64.0.1:0 100.64.0.7:0 10.0.5.0:all; do
		s=$(b8__sample "$(b8__topo "$l")" "${c%:*}" 50)
		rx=$(b8__field "$s" received)
		want=$([ "${c#*:}" = all ] && b8__field "$s" sent || echo 0)
		if [ "$rx" != "$want" ]; then
			b8__log "check failed ($l): client ${c%:*}: $rx of $(b8__field "$s" sent) SYNs through, want $want"
			exit 1
		fi
	done
	b8__off "$l"
done
b8__log "checks passed (denied clients dropped, allowed client forwarded)"

VARIANTS=(off map concat xoff xon)
b8__log "$ROUNDS rounds x ${#VARIANTS[@]} x $MS ms, CPU $CPU"
for v in "${VARIANTS[@]}"; do : >"$TMP/$v"; done
for ((r = 0; r < ROUNDS; r++)); do
	for ((i = 0; i < ${#VARIANTS[@]}; i++)); do # rotated: round r starts at r
		v=${VARIANTS[$(((i + r) % ${#VARIANTS[@]}))]}
		b8__on "$v"
		s=$(b8__sample "$(b8__topo "$v")" 10.0.5.0 "$MS")
		b8__off "$v"
		if [ "$(b8__field "$s" received)" != "$(b8__field "$s" sent)" ]; then
			b8__log "round $r $v: SYNs lost: $s"
			exit 1
		fi
		awk -v p="$(b8__field "$s" pps)" 'BEGIN { printf "%.1f\n", 1e9 / p }' >>"$TMP/$v"
	done
done
for v in "${VARIANTS[@]}"; do
	b8__stats <"$TMP/$v" >"$TMP/$v.stats"
done

b8__log "policybench $ROUNDS 20000"
"$BIN/policybench" "$ROUNDS" 20000 >"$TMP/pb"
# "| label | median | min-max |" -> "median min max"
b8__pb() { awk -F'|' -v l="$1" 'index($2, l) == 2 { gsub(/ /, "", $3); gsub(/ /, "", $4);
	sub(/-/, " ", $4); print $3, $4 }' "$TMP/pb"; }
b8__pb "no policy" >"$TMP/s_off.stats"
b8__pb "1k service" >"$TMP/s_on.stats"

# b8__row LABEL OFF ON: one table row from two stats files.
b8__row() {
	read -r o olo ohi <"$2"
	read -r n nlo nhi <"$3"
	awk -v l="$1" -v o="$o" -v olo="$olo" -v ohi="$ohi" -v n="$n" -v nlo="$nlo" -v nhi="$nhi" \
		'BEGIN { printf "| %s | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) | %.1f | %.3f |\n",
		l, o, olo, ohi, n, nlo, nhi, n - o, o / n }'
}
path="$ROUNDS x $MS ms, whole path, CPU $CPU"
echo "| new flow (SYN), 1k service + 100k node prefixes | ns/flow without (min-max) | with | added ns/flow | ratio without/with |"
echo "|---|---|---|---|---|"
b8__row "Sluice xdp_lb, policybench ($ROUNDS x 20000, program time, CPU 0)" \
	"$TMP/s_off.stats" "$TMP/s_on.stats"
b8__row "Sluice xdp_lb on the veth path ($path)" "$TMP/xoff.stats" "$TMP/xon.stats"
b8__row "nft, per-service verdict map + interval sets ($path)" "$TMP/off.stats" "$TMP/map.stats"
b8__row "nft, one concatenated interval set (pipapo) ($path)" "$TMP/off.stats" "$TMP/concat.stats"
# Added cost of each nft layout per ns Sluice's policy added (medians):
# against policybench's figure, and against the veth path's when it
# stands out of that path's own spread (max - min of its samples without
# the policy), else it is said to be within noise.
read -r so _ <"$TMP/s_off.stats"
read -r sn _ <"$TMP/s_on.stats"
read -r xo xlo xhi <"$TMP/xoff.stats"
read -r xn _ <"$TMP/xon.stats"
read -r fo _ <"$TMP/off.stats"
read -r fm _ <"$TMP/map.stats"
read -r fc _ <"$TMP/concat.stats"
awk -v so="$so" -v sn="$sn" -v xo="$xo" -v xn="$xn" -v xs="$(awk -v a="$xhi" -v b="$xlo" 'BEGIN { print a - b }')" \
	-v fo="$fo" -v fm="$fm" -v fc="$fc" 'BEGIN {
	printf "\n"
	if (sn - so > 0)
		printf "added ns, nft / Sluice (policybench): map %.1fx, concat %.1fx\n",
			(fm - fo) / (sn - so), (fc - fo) / (sn - so)
	else
		printf "policybench: Sluice added <= 0 ns in this run (noise)\n"
	if (xn - xo > xs)
		printf "added ns, nft / Sluice (veth path): map %.1fx, concat %.1fx\n",
			(fm - fo) / (xn - xo), (fc - fo) / (xn - xo)
	else
		printf "veth path: Sluice added %.1f ns, within that path'"'"'s spread (%.1f ns): no ratio\n",
			xn - xo, xs }'
