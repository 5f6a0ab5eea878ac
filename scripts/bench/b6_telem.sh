# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# b6_telem.sh - B6: what per-connection telemetry costs, sourced by
# scripts/bench.sh after b5_sock.sh, whose namespace M, cgroups and pinned
# maps it measures in (B5 sets them up; bench__b6 runs after bench__b5).
#
# Contract: bench__b6 starts telemtool (tests/tools: the agent's side of
# telemetry, as meshd runs it: loads the sockops program, attaches it to
# the child cgroup telem ONLY, reads the ring buffer from epoll, syncs the
# endpoints every second, serves /metrics on loopback inside namespace M),
# pinned to $CPU like both ends of every sample, so the reader's cost is
# part of the "on" figure. --telem-pin pins its maps under $B5_PIN, so
# pingpong reads telem_counters around each window (records written and
# lost). Variants, interleaved, both ends on $CPU, connections from
# 10.64.0.1 straight to the service's backend addresses (tracked both
# ways: client outbound, server inbound):
#   on   client + server in cgroup telem
#   off  client + server in cgroup plain (nothing attached)
# Kinds: rr (64 B ping-pong on one connection: the RTT callback on every
# ACK) and crr (connect + request + close: open and close records, socket
# storage). b6__down stops telemtool and removes its pins; b5__down calls
# it, so bench.sh's traps cover it.

B6_TELEMTOOL=$BN_ROOT/build/tests/tools/telemtool
B6_PID=

b6__up() {
	local i
	rm -f "$TMP/b6.port"
	# nsenter and taskset exec: $! is telemtool's own pid
	nsenter --net="/var/run/netns/$(b5__ns m)" taskset -c "$CPU" "$B6_TELEMTOOL" \
		--pin "$B5_PIN" --cgroup "$B5_CG/telem" --telem-pin --port-file "$TMP/b6.port" \
		>"$TMP/b6.out" 2>"$TMP/b6.err" </dev/null &
	B6_PID=$!
	# loading verifies the whole datapath object: slow on a busy box
	for ((i = 0; i < 600; i++)); do
		[ -s "$TMP/b6.port" ] && return 0
		kill -0 "$B6_PID" 2>/dev/null || break
		sleep 0.1
	done
	bench__log "B6: telemtool did not start: $(head -n2 "$TMP/b6.err")"
	return 1
}

b6__down() {
	if [ -n "$B6_PID" ]; then
		kill "$B6_PID" 2>/dev/null
		wait "$B6_PID" 2>/dev/null
		B6_PID=
	fi
	if [ -e "$B5_PIN/link_telemetry_sockops" ] || [ -e "$B5_PIN/telem_counters" ]; then
		"$B6_TELEMTOOL" --pin "$B5_PIN" unpin 2>/dev/null
	fi
	return 0
}

# What the agent saw: one /metrics scrape, kept in raw/ as evidence.
b6__scrape() {
	bn__in "$(b5__ns m)" python3 -c '
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
' "http://127.0.0.1:$(cat "$TMP/b6.port")/metrics" >"$RAW/b6-metrics.txt" 2>/dev/null || true
}

# b6__rounds FIRST: rounds FIRST .. FIRST + ROUNDS - 1.
b6__rounds() {
	local r vk v k cg s target
	for ((r = $1; r < $1 + ROUNDS; r++)); do
		for vk in $(bench__rotate "$r" on:rr off:rr on:crr off:crr); do
			v=${vk%:*} k=${vk#*:}
			cg=plain
			[ "$v" = on ] && cg=telem
			target=$B5_TARGETS
			[ "$k" = rr ] && target=${B5_BACKENDS[0]}
			s=$(b5__pp m "$cg" "$k" --listen 0.0.0.0:8080 --bind "$B5_CLIENT" \
				--connect "$target" --cpu-client "$CPU" --cpu-server "$CPU")
			bench__rec "\"fig\": \"b6\", \"variant\": \"$v\", \"kind\": \"$k\", \"round\": $r" "$s"
		done
	done
}

bench__b6() {
	if [ "$B5_UP" != 1 ]; then
		bench__log "B6: needs B5's namespaces and pins; skipped"
		return 1
	fi
	bench__log "B6: telemetry on vs off, rr + crr, $ROUNDS rounds x ${B5_MS} ms"
	b6__up || return 1
	b6__rounds 0
	if bench__rerun "B6"; then
		b6__rounds "$ROUNDS"
	fi
	b6__scrape
	b6__down
}
