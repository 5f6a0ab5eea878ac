# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# outlier.sh - helpers of tests/e2e/test_outlier.sh: the kernel's health
# state read from the pinned maps, the steady-rate client (connrate), the
# servers of the topology and the services file.
#
# Contract: the sourcing test sets PIN, WORK, CG, CONNRATE, RATE,
# THRESHOLD, BASE_MS, MAX_MS, the SRV array (backend -> server pid) and
# defines fail(), log(), figure() and mctl(); topology.sh is sourced.
# Map values are read with bpftool's BTF-formatted JSON; the map layouts
# are include/sluice_abi.h's (struct sluice_backend_health,
# struct sluice_svc_health, enum sluice_health_counter).

# enum sluice_health_counter (read by the test)
# shellcheck disable=SC2034
HC_MAX_EJECTED=4
# shellcheck disable=SC2034
HC_PANIC=6
# enum sluice_health_reason
declare -A REASON_ID=([rst]=1 [syn_timeout]=2 [sock_refused]=3 [sock_timeout]=4 [sock_error]=5)

le32() { printf '%d %d %d %d' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }

# map_val MAP KEY: the formatted value of one array element, compact JSON
map_val() {
	# shellcheck disable=SC2046 # the key is four byte arguments
	bpftool -j map lookup pinned "$PIN/$1" key $(le32 "$2") | jq -c '.formatted.value // .formatted.values'
}
bh() { map_val backend_health "$1"; }
bh_ejected() { [ "$(bh "$1" | jq '.flags % 2')" = 1 ]; }
bh_clear() { [ "$(bh "$1" | jq '.flags % 2')" = 0 ]; }
sh_ejected() { map_val svc_health "$1" | jq -r .ejected; }
# hcnt INDEX: a health counter summed over the CPUs
hcnt() { map_val health_counters "$1" | jq '[.[].value] | add'; }

ejected_count() {
	local id n=0
	for id; do
		bh_ejected "$id" && n=$((n + 1))
	done
	echo "$n"
}
ejected_count_is() {
	local want=$1
	shift
	[ "$(ejected_count "$@")" = "$want" ]
}

# Kernel time (bpf_ktime_get_ns) of the last ejection of a backend: its
# end minus its length, min(base x ejections, max).
eject_ns() {
	jq -r --argjson b "$BASE_MS" --argjson m "$MAX_MS" \
		'.ejected_until_ns - ([$b * .ejections, $m] | min) * 1000000' <<<"$1"
}

svc_ref() { echo "$TOPO_VIP4:$1/tcp"; }
svc_json() { mctl -o json service get "$(svc_ref "$1")"; }
svc_id() {
	local id
	id=$(svc_json "$1" | jq -r '.id // empty')
	[ -n "$id" ] || fail "no id of service $(svc_ref "$1")"
	echo "$id"
}
# be_id PORT BE: the backend id of server BE in the service on PORT
be_id() {
	local id
	id=$(svc_json "$1" | jq -r --arg a "$(topo__be_addr4 "$2")" \
		'.backends[] | select(.address == $a) | .id')
	[ -n "$id" ] || fail "no backend id of $2 in $(svc_ref "$1")"
	echo "$id"
}

# Whether service get -o json shows backend BE ejected (a state string
# starting with "ejected", or "ejected": true).
json_shows_ejected() {
	local j
	j=$(svc_json "$1" | jq -c --arg a "$(topo__be_addr4 "$2")" '.backends[] | select(.address == $a)')
	log "service get -o json, $2: $j"
	[ "$(jq '[.. | (strings | select(startswith("ejected"))), (objects | select(.ejected == true))] | length' <<<"$j")" -gt 0 ] ||
		fail "meshctl service get -o json does not show $2 ejected: $j"
}

# wait_for DESC SECONDS CMD...: poll CMD every 20 ms, bounded in time.
wait_for() {
	local desc=$1 t=$2 end
	shift 2
	end=$(awk -v n="$EPOCHREALTIME" -v t="$t" 'BEGIN { printf "%.3f", n + t }')
	while :; do
		"$@" && return 0
		awk -v n="$EPOCHREALTIME" -v e="$end" 'BEGIN { exit !(n < e) }' || break
		sleep 0.02
	done
	fail "$desc: not within ${t}s"
}

log_has() { grep -iE "$1" "$LOG" | grep -F "$2" | grep -qF "$3"; }
# wait_log REGEX ADDR SERVICE: meshd logged a line matching REGEX that
# names backend ADDR and service SERVICE (its name).
wait_log() {
	wait_for "meshd log line /$1/ naming $2 of $3" 3 log_has "$1" "$2" "$3" || return 1
	log "meshd: $(grep -iE "$1" "$LOG" | grep -F "$2" | grep -F "$3" | tail -n 1 | cut -c 1-220)"
}

# load_start NAME PATH PORT [RATE] [TIMEOUT_MS]: connrate in the
# background until load_stop NAME (client namespace; for PATH sock also
# in the cgroup, so the socket LB balances it).
LOAD_PID=
load_start() {
	local name=$1 path=$2 port=$3 rate=${4:-$RATE} to=${5:-2500}
	rm -f "$WORK/$name.stop"
	(
		if [ "$path" = sock ]; then
			echo "$BASHPID" >"$CG/cgroup.procs" || exit 1
		fi
		exec nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" "$CONNRATE" load \
			--target "$TOPO_VIP4:$port" --rate "$rate" --timeout-ms "$to" \
			--duration-ms 30000 --stop-file "$WORK/$name.stop" --log "$WORK/$name.log"
	) >"$WORK/$name.json" 2>"$WORK/$name.err" &
	LOAD_PID=$!
	BG_PIDS+=("$LOAD_PID")
}
load_stop() {
	touch "$WORK/$1.stop"
	wait "$LOAD_PID"
	[ -s "$WORK/$1.json" ] || fail "connrate $1 gave no summary: $(head -n 2 "$WORK/$1.err")"
}
load_line() {
	jq -r '"\(.attempts) attempts, \(.connect_failed) connects failed (refused \(.refused), timeout \(.timeout), error \(.error)), \(.failed - .connect_failed) cut after connect (reset \(.reset), eof \(.eof), hung \(.hung)); backends \(.backends | to_entries | map("\(.key)=\(.value)") | join(" "))"' \
		"$WORK/$1.json"
}

server_kill() {
	kill -9 "${SRV[$1]}" 2>/dev/null
	wait "${SRV[$1]}" 2>/dev/null
	SRV[$1]=
}
# server_start BE...: start the servers (all at once), wait until each
# is ready.
server_start() {
	local be i
	for be; do
		[ -z "${SRV[$be]}" ] || continue
		rm -f "$TOPO_TMP/$be.ready"
		topo__start_server "$be"
		SRV["$be"]=${TOPO_PIDS[-1]}
	done
	for be; do
		for ((i = 0; i < 500; i++)); do
			[ -e "$TOPO_TMP/$be.ready" ] && break
			sleep 0.02
		done
		[ -e "$TOPO_TMP/$be.ready" ] ||
			fail "server $be did not start: $(tail -n 2 "$TOPO_TMP/$be.log")" || return 1
	done
}

# blackhole BE on|off: BE's namespace drops the SYNs to its server
# (iptables inside that namespace only).
blackhole() {
	local op=-I
	[ "$2" = off ] && op=-D
	nsenter --net="/var/run/netns/$(topo__ns "$1")" iptables "$op" INPUT -p tcp \
		--dport "$TOPO_BE_PORT" --tcp-flags SYN,ACK SYN -j DROP ||
		fail "iptables $op INPUT in $1's namespace failed"
}

# judge_ejection NAME PATH PORT BE ID REASON HEALTH: what load NAME saw
# around BE's ejection; HEALTH is BE's backend_health as first seen
# ejected (later, a late failure on probation may have ejected it again);
# reports the figures.
judge_ejection() {
	local name=$1 path=$2 port=$3 be=$4 id=$5 reason=$6 v=$7 ok=0 ej first third
	local after late served
	log "backend_health[$id] ($be): $v"
	ej=$(eject_ns "$v")
	[ "$(jq .reason <<<"$v")" = "${REASON_ID[$reason]}" ] ||
		fail "last failure reason $(jq .reason <<<"$v"), want ${REASON_ID[$reason]} ($reason)" || ok=1
	first=$(jq -r .first_fail_ns "$WORK/$name.json")
	third=$(jq -r .third_fail_ns "$WORK/$name.json")
	# failed attempts started after the ejection, before its end: the pick
	# must have skipped BE
	after=$(awk -v e="$ej" -v b="$BASE_MS" '$1 > e && $1 < e + b * 1e6 && $3 != "ok"' \
		"$WORK/$name.log" | wc -l)
	late=$(awk -v e="$ej" '$1 > e && $3 != "ok"' "$WORK/$name.log" | head -n 3 | tr '\n' ';')
	served=$(awk -v e="$ej" '$1 > e && $3 == "ok" { print $4 }' "$WORK/$name.log" | sort | uniq -c |
		awk '{ printf "%s=%s ", $2, $1 }')
	log "$name: $(load_line "$name")"
	log "after the ejection: served by ${served:-nobody}; failed $after${late:+ (first: $late)}"
	[ "$after" = 0 ] || fail "$after attempts started after the ejection failed" || ok=1
	case $served in *"$be="*) fail "$be served connections after its ejection" || ok=1 ;; esac
	[ -n "$served" ] || fail "no connection served after the ejection" || ok=1
	fig_eject "$path $name" "$name" "$ej" "$first" "$third"
	# a few more than the threshold may be in flight when the kernel
	# ejects; without ejection a third of all attempts fail
	if [ "$name" = kill ]; then
		[ "$(jq -r .connect_failed "$WORK/$name.json")" -le $((2 * THRESHOLD)) ] ||
			fail "$(jq -r .connect_failed "$WORK/$name.json") connects failed, bound $((2 * THRESHOLD))" ||
			ok=1
	fi
	wait_log " ejected: " "$(topo__be_addr4 "$be")" "o-$path-$name " || ok=1
	return $ok
}

fig_eject() {
	local what=$1 name=$2 ej=$3 first=$4 third=$5 j=$WORK/$2.json failed target
	failed=$(jq -r .connect_failed "$j")
	target=met
	[ "$failed" -le "$THRESHOLD" ] || target=missed
	figure "$what: $failed failed connection attempts of $(jq -r .attempts "$j") at $RATE/s ($(jq -r '"refused \(.refused), timeout \(.timeout), error \(.error)"' "$j")), target <= $THRESHOLD: $target; $(jq -r '.failed - .connect_failed' "$j") connected ones cut; first failure -> ejection $(awk -v a="$first" -v b="$ej" 'BEGIN { printf "%.1f", (b - a) / 1e6 }') ms, third failure -> ejection $(awk -v a="$third" -v b="$ej" 'BEGIN { if (a > 0) printf "%.1f", (b - a) / 1e6; else printf "n/a" }') ms (kernel time; failure = its connect() start)"
}

# batch_share PATH PORT N: N more connections, all served, each backend
# >= 15 % of them (Maglev gives each a third).
batch_share() {
	local path=$1 port=$2 n=$3 be c ok=0
	load_start batch "$path" "$port" 300
	sleep "$(awk -v n="$n" 'BEGIN { printf "%.2f", n / 300 }')"
	load_stop batch || return 1
	log "batch: $(load_line batch)"
	[ "$(jq -r .failed "$WORK/batch.json")" = 0 ] || fail "batch: attempts failed" || ok=1
	for be in be1 be2 be3; do
		c=$(jq -r --arg b "$be" '.backends[$b] // 0' "$WORK/batch.json")
		[ "$((c * 100))" -ge "$((15 * $(jq -r .ok "$WORK/batch.json")))" ] ||
			fail "batch: $be got $c of $(jq -r .ok "$WORK/batch.json"), want >= 15 %" || ok=1
	done
	return $ok
}

# The services: one per (path, case), three backends each.
write_services() {
	local path c port od first=1 be base=$BASE_MS max=$MAX_MS pct
	echo '{"services": ['
	for path in xdp sock; do
		for c in kill blackhole alldead panic restart; do
			port=$(svc_port "$path" "$c")
			pct=50 base=$BASE_MS max=$MAX_MS
			[ "$c" = panic ] && pct=100
			[ "$c" = restart ] && base=20000 max=20000
			od="{\"enabled\": true, \"consecutiveFailures\": $THRESHOLD, \"baseEjectionMs\": $base, \"maxEjectionMs\": $max, \"maxEjectedPercent\": $pct, \"panicThresholdPercent\": 50}"
			[ "${OUTLIER_OFF:-0}" = 1 ] && od='{"enabled": false}'
			[ "$first" = 1 ] || echo ','
			first=0
			printf '{"name": "o-%s-%s", "vip": "%s", "port": %d, "protocol": "tcp", "outlierDetection": %s, "backends": [' \
				"$path" "$c" "$TOPO_VIP4" "$port" "$od"
			for be in be1 be2 be3; do
				printf '{"address": "%s", "port": %d}%s' "$(topo__be_addr4 "$be")" "$TOPO_BE_PORT" \
					"$([ "$be" = be3 ] || echo ,)"
			done
			echo ']}'
		done
	done
	echo ']}'
}
