#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_metrics.sh - telemetry and metrics as meshd serves them: connection telemetry,
# GET /metrics, `meshctl connections` and `meshctl top`.
#
# Contract: builds the topology of scripts/lib/topology.sh (client -> node
# -> be1..be3 echo servers) and creates a child cgroup of the cgroup2 mount
# (never the root itself). build/meshd runs in the node namespace on 'to-*'
# with its own pin dir, state file and socket, --cgroup on that child and
# --metrics 127.0.0.1:$MPORT (scraped from inside the node namespace), and
# serves one service, VIP:8000/tcp over the three backends. Clients run in
# the child cgroup. Scenarios, one "PASS: e2e/meshd_metrics_<name>" or
# "FAIL: e2e/meshd_metrics_<name>: <reason>" line each:
#   counts          N connections through the VIP: /metrics has
#                   sluice_connections_opened_total and _closed_total N for
#                   the service (outbound), the RTT histogram count N, the
#                   per-backend opens add up to N, datapath series present
#   promtool        a real scrape passes `promtool check metrics`; every
#                   series the alert rules (scripts/prometheus/) and the
#                   dashboard (scripts/grafana/) name is in it
#   http            gzip when asked (and it decodes), none otherwise, 404
#                   for another path, 405 for POST; /healthz 200 "ok";
#                   /readyz 200 with the datapath and interfaces checks ok
#   status          status shows the metrics URL and telemetry attached to
#                   the cgroup with the records read and none lost
#   connections     `connections SVC -o json` holds exactly N records for
#                   the service, all closed, each with a backend; the table
#                   has N rows
#   follow          `connections --follow -o json` streams a record of a new
#                   connection as one JSON line; a follower that goes away
#                   is dropped by meshd
#   slow_follower   a follower that stops reading is dropped once 1 MiB
#                   waits for it (logged, its stream ends); meshd answers
#                   status meanwhile
#   top             `top --count 2 --interval 1` prints two tables with the
#                   service, its opened/s; -o json one document per refresh
#   prometheus      a real Prometheus server (Debian's package, in the node
#                   namespace, config written here) scrapes meshd every
#                   second; after K more connections PromQL gives K more
#                   opened and closed, RTT histogram count and backend opens
#   restart         SIGTERM leaves the telemetry program attached (pinned);
#                   connections made while meshd is down are counted after
#                   the restart (their records waited in the ring); still
#                   one telemetry program on the cgroup
#   telemetry_off   --telemetry off detaches it; /metrics still serves the
#                   datapath; connections says telemetry is off
#   backends_off    --metrics-backends off: the service's series and its
#                   healthy-backend count stay, no sluice_backend_* sample,
#                   sluice_metrics_backend_series 0; the default (auto)
#                   has them and 1
#   uninstall       `meshctl uninstall` leaves no program on the cgroup and
#                   no pin dir
#   cleanup         after kill -9, `meshd --cleanup --bpffs` does the same
# meshd, the cgroup (its processes moved out first), pins, namespaces and
# temp files are removed on exit, failure or interruption. Needs root,
# bpftool, curl, prometheus and promtool (Debian's prometheus package) and
# `make`. About 20 s.
# Usage: test_meshd_metrics.sh [SCENARIO...]   (default: all, in order)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-mdm}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

MESHD=${SLUICE_BUILD:-$ROOT/build}/meshd
MESHCTL=${SLUICE_BUILD:-$ROOT/build}/meshctl
PIN=/sys/fs/bpf/sluice-m$$
PATTERN='to-*'
MPORT=19465 # inside the node namespace: nothing else listens there
PPORT=19090 # Prometheus, also in the node namespace
START_TIMEOUT=20
N=12 # connections of the counts scenario

CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-mdm$$}
SVC=$TOPO_VIP4:8000/tcp
SEL="service=\"$SVC\",direction=\"outbound\""

WORK=
SOCK=
STATE=
LOG=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=()
NEEDS_CMDS=(bpftool nsenter curl promtool gzip)
SCENARIO_PREFIX=meshd_metrics_
# socket LB off: the flow counts here are those of the per-packet path
MESHD_FLAGS=(--cgroup "$CG" --metrics "127.0.0.1:$MPORT" --telemetry-interval 1 --socket-lb off)

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

in_node() { nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$@"; }
mctl() { "$MESHCTL" -s "$SOCK" "$@"; }

# clients CMD...: in the client namespace and in our cgroup (its sockets
# are the ones telemetry sees)
clients() {
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" "$@")
}

# connect K: K TCP connections through the VIP, each echoing 1000 bytes
connect() {
	clients timeout 60 python3 "$TOPO_ECHO" tcp "$TOPO_VIP4" 8000 -n "$1" >"$WORK/client.out" 2>&1 ||
		fail "clients failed: $(tail -n 2 "$WORK/client.out")"
}

scrape() { in_node curl -sS --max-time 5 "$@" "http://127.0.0.1:$MPORT/metrics"; }

# metric SERIES: its value in a fresh scrape, "none" if absent
metric() {
	scrape | awk -v s="$1" 'index($0, s " ") == 1 { print $2; f = 1 } END { if (!f) print "none" }'
}

# expect_metric SERIES VALUE: polls for up to 10 s
expect_metric() {
	local got i
	for ((i = 0; i < 50; i++)); do
		got=$(metric "$1")
		[ "$got" = "$2" ] && { log "$1 $got"; return 0; }
		sleep 0.2
	done
	fail "$1 = $got, expected $2"
}

# Telemetry programs attached to our cgroup.
cg_progs() { bpftool cgroup show "$CG" 2>/dev/null | grep -c 'telemetry_so'; }

# ------------------------------------------------------------- scenarios

test_counts() {
	local ok=0 be sum=0 v
	ensure_meshd || return 1
	connect "$N" || return 1
	log "$(cat "$WORK/client.out")"
	expect_metric "sluice_connections_opened_total{$SEL}" "$N" || ok=1
	expect_metric "sluice_connections_closed_total{$SEL}" "$N" || ok=1
	expect_metric "sluice_connection_rtt_seconds_count{$SEL}" "$N" || ok=1
	expect_metric "sluice_connections_active{$SEL}" 0 || ok=1
	for be in "${TOPO_BACKENDS[@]}"; do
		v=$(metric "sluice_backend_connections_opened_total{service=\"$SVC\",backend=\"$(topo__be_addr4 "$be"):$TOPO_BE_PORT\",direction=\"outbound\"}")
		[ "$v" = none ] && v=0
		sum=$((sum + v))
	done
	log "per-backend opens add up to $sum"
	[ "$sum" -eq "$N" ] || fail "per-backend opens add up to $sum, not $N" || ok=1
	v=$(metric "sluice_service_flows_total{service=\"$SVC\"}")
	log "sluice_service_flows_total{service=\"$SVC\"} $v"
	[ "$v" -ge "$N" ] 2>/dev/null || fail "datapath flows of the service: $v, want >= $N" || ok=1
	v=$(metric "sluice_telemetry_records_lost_total")
	[ "$v" = 0 ] || fail "records lost: $v" || ok=1
	return $ok
}

test_promtool() {
	local out
	ensure_meshd || return 1
	scrape >"$WORK/scrape.txt" || fail "scrape failed" || return 1
	log "$(wc -l <"$WORK/scrape.txt") lines, $(grep -c '^sluice_' "$WORK/scrape.txt") sluice_ samples"
	out=$(promtool check metrics <"$WORK/scrape.txt" 2>&1)
	local rc=$?
	[ -n "$out" ] && log "$out"
	[ "$rc" -eq 0 ] || fail "promtool check metrics: $(echo "$out" | head -n 1)" || return 1
	# every series the alerting rules and the dashboard name is one meshd
	# serves (the Kubernetes ones need --kubernetes on: test_meshd_k8s.sh
	# checks them)
	python3 - "$WORK/scrape.txt" "$ROOT"/scripts/prometheus/sluice-alerts.yaml \
		"$ROOT"/scripts/grafana/sluice-dashboard.json <<'PY' ||
import re, sys
served = {l.split("{")[0].split(" ")[0] for l in open(sys.argv[1]) if l.startswith("sluice_")}
bad = 0
for path in sys.argv[2:]:
    used = set(re.findall(r"\bsluice_[a-z_]+", open(path).read()))
    missing = sorted(n for n in used - served if not n.startswith("sluice_kubernetes_"))
    print("%s uses %d series; not served: %s" % (path.split("/")[-1], len(used), missing or "none"))
    bad += len(missing)
sys.exit(1 if bad else 0)
PY
		fail "the alert rules or the dashboard name series meshd does not serve"
}

test_http() {
	local ok=0 url="http://127.0.0.1:$MPORT" code
	ensure_meshd || return 1
	in_node curl -sS --max-time 5 -H 'Accept-Encoding: gzip' -D "$WORK/gz.headers" \
		-o "$WORK/gz.body" "$url/metrics" || fail "gzip scrape failed" || return 1
	grep -qi '^content-encoding: gzip' "$WORK/gz.headers" ||
		fail "no Content-Encoding: gzip for Accept-Encoding: gzip" || ok=1
	gzip -dc <"$WORK/gz.body" | grep -q '^sluice_build_info{' ||
		fail "the gzip body does not decode to the metrics" || ok=1
	log "gzip: $(wc -c <"$WORK/gz.body") bytes, $(gzip -dc <"$WORK/gz.body" | wc -c) decoded"
	in_node curl -sS --max-time 5 -D "$WORK/plain.headers" -o /dev/null "$url/metrics"
	grep -qi '^content-encoding' "$WORK/plain.headers" && { fail "gzip without asking"; ok=1; }
	grep -qi '^content-type: text/plain; version=0.0.4' "$WORK/plain.headers" ||
		fail "Content-Type is not the Prometheus text format" || ok=1
	code=$(in_node curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$url/nope")
	[ "$code" = 404 ] || fail "GET /nope: $code, not 404" || ok=1
	code=$(in_node curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST "$url/metrics")
	[ "$code" = 405 ] || fail "POST /metrics: $code, not 405" || ok=1
	# the probes of the DaemonSet
	code=$(in_node curl -s --max-time 5 -o "$WORK/healthz" -w '%{http_code}' "$url/healthz")
	[ "$code" = 200 ] && [ "$(cat "$WORK/healthz")" = ok ] ||
		fail "GET /healthz: $code $(head -c 100 "$WORK/healthz"), not 200 ok" || ok=1
	code=$(in_node curl -s --max-time 5 -o "$WORK/readyz" -w '%{http_code}' "$url/readyz")
	log "GET /readyz: $code $(tr '\n' '|' <"$WORK/readyz")"
	[ "$code" = 200 ] && grep -qx '\[+\]datapath ok' "$WORK/readyz" &&
		grep -qx '\[+\]interfaces ok' "$WORK/readyz" && ! grep -q kubernetes "$WORK/readyz" ||
		fail "GET /readyz is not 200 with datapath and interfaces ok" || ok=1
	return $ok
}

test_status() {
	local ok=0
	ensure_meshd || return 1
	mctl status >"$WORK/status.txt" || fail "status failed" || return 1
	grep -E '^(Metrics|Telemetry|   )' "$WORK/status.txt"
	grep -q "^Metrics: *http://127.0.0.1:$MPORT/metrics" "$WORK/status.txt" ||
		fail "status does not show the metrics URL" || ok=1
	grep -q "^Telemetry: *attached to cgroup $CG " "$WORK/status.txt" ||
		fail "status does not show telemetry attached to $CG" || ok=1
	mctl -o json status | python3 -c '
import json, sys
t = json.load(sys.stdin)["telemetry"]
ok = t["attached"] and t["cgroup"] == sys.argv[1] and t["records_read"] > 0 and t["records_lost"] == 0
print("status -o json telemetry: attached %s, cgroup %s, read %s, lost %s" %
      (t["attached"], t["cgroup"], t["records_read"], t["records_lost"]))
sys.exit(0 if ok else 1)' "$CG" || fail "status -o json telemetry is not as expected" || ok=1
	return $ok
}

test_connections() {
	local ok=0 rows
	ensure_meshd || return 1
	mctl -o json connections "$SVC" >"$WORK/conns.json" || fail "connections -o json failed" || return 1
	python3 - "$WORK/conns.json" "$SVC" "$N" <<'EOF' || fail "connections -o json is not N closed records of the service" || ok=1
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
svc, n = sys.argv[2], int(sys.argv[3])
mine = [r for r in recs if r["service"] == svc]
print("%d records, %d of %s: states %s, backends %s" % (
    len(recs), len(mine), svc, sorted({r["state"] for r in mine}),
    sorted({r["backend"] for r in mine})))
ok = len(mine) == n and all(r["state"] == "closed" and r["backend"] and
                             r["direction"] == "outbound" and r["bytes_sent"] >= 1000
                             for r in mine)
sys.exit(0 if ok else 1)
EOF
	mctl connections "$SVC" >"$WORK/conns.txt" || fail "connections failed" || return 1
	head -n 3 "$WORK/conns.txt"
	rows=$(($(wc -l <"$WORK/conns.txt") - 1))
	[ "$rows" -eq "$N" ] || fail "the connections table has $rows rows, not $N" || ok=1
	head -n 1 "$WORK/conns.txt" | grep -q 'TIME *SERVICE *BACKEND' ||
		fail "the connections table has no header row" || ok=1
	return $ok
}

# followers: how many streams meshd serves
followers() {
	mctl -o json status | python3 -c 'import json, sys; print(json.load(sys.stdin)["telemetry"]["followers"])'
}

test_follow() {
	local ok=0 pid tpid i n
	ensure_meshd || return 1
	# meshctl itself in the background (not the mctl function), so $! is
	# meshctl's pid and killing it closes its end of the stream
	"$MESHCTL" -s "$SOCK" -o json connections --follow "$SVC" >"$WORK/follow.out" \
		2>"$WORK/follow.err" &
	pid=$!
	BG_PIDS+=("$pid")
	# and one in table mode, of every service
	"$MESHCTL" -s "$SOCK" connections --follow >"$WORK/follow.txt" 2>&1 &
	tpid=$!
	BG_PIDS+=("$tpid")
	for ((i = 0; i < 600; i++)); do
		[ "$(followers)" = 2 ] && break
		sleep 0.05
	done
	[ "$(followers)" = 2 ] || fail "meshd does not report the streams" || return 1
	connect 1 || return 1
	for ((i = 0; i < 100; i++)); do
		grep -q '"event":"close"' "$WORK/follow.out" && grep -q ' close ' "$WORK/follow.txt" &&
			break
		sleep 0.05
	done
	cat "$WORK/follow.txt"
	head -n 1 "$WORK/follow.txt" | grep -q '^TIME .* EVENT ' || fail "the table stream has no header" || ok=1
	grep -q "^[0-9:.]* *$SVC .* out *open " "$WORK/follow.txt" &&
		grep -q "^[0-9:.]* *$SVC .* out *close " "$WORK/follow.txt" ||
		fail "the table stream lacks the open and close rows" || ok=1
	kill "$tpid" 2>/dev/null
	wait "$tpid" 2>/dev/null
	head -c 600 "$WORK/follow.out"
	python3 - "$WORK/follow.out" "$SVC" <<'EOF' || fail "the stream is not one record per line with the new connection's open and close" || ok=1
import json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l]
recs = [json.loads(l) for l in lines]
events = [r["event"] for r in recs if r["service"] == sys.argv[2]]
print("%d lines, events %s" % (len(lines), events))
sys.exit(0 if "open" in events and "close" in events else 1)
EOF
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		n=$(followers)
		[ "$n" = 0 ] && break
		sleep 0.05
	done
	log "streams after the follower quit: $n"
	[ "$n" = 0 ] || fail "meshd still holds the stream of a follower that quit" || ok=1
	return $ok
}

# A follower that never reads: meshd buffers 1 MiB for it, then ends its
# stream; meshd keeps answering meanwhile.
test_slow_follower() {
	local ok=0 pid i n t0 ms
	ensure_meshd || return 1
	python3 - "$SOCK" "$WORK/slow.ready" "$WORK/slow.go" >"$WORK/slow.out" 2>&1 <<'EOF' &
import json, os, socket, sys, time
sock, ready, go = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
s.sendall(b'{"op": "connections.follow"}\n')
first = b""
while not first.endswith(b"\n"):
    first += s.recv(1)
print("answer:", first.decode().strip())
open(ready, "w").close()
while not os.path.exists(go):  # not reading: meshd's buffer for us fills
    time.sleep(0.05)
got = 0
s.settimeout(10)
while True:
    b = s.recv(65536)
    if not b:
        break
    got += len(b)
print("stream ended by meshd after %d bytes" % got)
EOF
	pid=$!
	BG_PIDS+=("$pid")
	for ((i = 0; i < 600; i++)); do
		[ -e "$WORK/slow.ready" ] && break
		sleep 0.05
	done
	[ "$(followers)" = 1 ] || fail "the slow follower is not registered" || return 1
	# ~2 records of ~450 bytes per connection: 1 MiB + the socket buffer
	connect 1600 || return 1
	t0=$EPOCHREALTIME
	mctl status >/dev/null || fail "status failed while a follower lagged" || ok=1
	ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	log "status answered in ${ms} ms with the follower stuck"
	for ((i = 0; i < 100; i++)); do
		n=$(followers)
		[ "$n" = 0 ] && break
		sleep 0.05
	done
	[ "$n" = 0 ] || fail "meshd kept a follower that fell behind ($n streams)" || ok=1
	grep -q 'fell more than 1 MiB behind' "$LOG" || fail "meshd did not log why it dropped the follower" || ok=1
	touch "$WORK/slow.go"
	wait "$pid"
	cat "$WORK/slow.out"
	grep -q 'stream ended by meshd' "$WORK/slow.out" || fail "the slow follower's stream did not end" || ok=1
	return $ok
}

test_top() {
	local ok=0 tables loader
	ensure_meshd || return 1
	# something to show: connections while top samples
	(for i in 1 2 3; do connect 4; done) &
	loader=$!
	BG_PIDS+=("$loader")
	mctl top --count 2 --interval 1 >"$WORK/top.txt" 2>&1 || fail "top failed: $(cat "$WORK/top.txt")" || ok=1
	wait "$loader"
	cat "$WORK/top.txt"
	tables=$(grep -c '^SERVICE ' "$WORK/top.txt")
	[ "$tables" -eq 2 ] || fail "top --count 2 printed $tables tables" || ok=1
	[ "$(grep -c "^$SVC " "$WORK/top.txt")" -eq 2 ] ||
		fail "the service is not in both tables" || ok=1
	grep -q $'\e' "$WORK/top.txt" && { fail "ANSI escapes although stdout is no terminal"; ok=1; }
	mctl -o json top --count 1 --interval 1 | python3 -c '
import json, sys
docs = [json.loads(l) for l in sys.stdin.read().splitlines()]
svc = [s for s in docs[0]["services"] if s["service"] == sys.argv[1]]
print("top -o json: %d document(s), service: %s" % (len(docs), svc[0] if svc else None))
sys.exit(0 if len(docs) == 1 and svc and "outbound" in svc[0]["connections"] else 1)' "$SVC" ||
		fail "top -o json is not one document with the service" || ok=1
	return $ok
}

# promql QUERY: the first result's value from Prometheus' HTTP API, "none"
promql() {
	in_node curl -sS --max-time 5 -G "http://127.0.0.1:$PPORT/api/v1/query" \
		--data-urlencode "query=$1" 2>/dev/null | python3 -c '
import json, sys
try:
    res = json.load(sys.stdin)["data"]["result"]
    print(res[0]["value"][1] if res else "none")
except Exception as e:
    print("error: %s" % e)'
}

# expect_promql QUERY VALUE: polls for up to 20 s
expect_promql() {
	local got i
	for ((i = 0; i < 80; i++)); do
		got=$(promql "$1")
		[ "$got" = "$2" ] && { log "PromQL $1 = $got"; return 0; }
		sleep 0.25
	done
	fail "PromQL $1 = $got, expected $2"
}

# A real Prometheus (Debian's package) in the node namespace scrapes
# meshd every second; after K more connections its counters for the
# service say exactly K more.
test_prometheus() {
	local ok=0 k=7 base pid i
	ensure_meshd || return 1
	command -v prometheus >/dev/null || fail "prometheus is not installed" || return 1
	cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: meshd
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOF
	# nsenter execs prometheus: $! is its pid
	nsenter --net="/var/run/netns/$TOPO_NS_NODE" prometheus \
		--config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
		--web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		in_node curl -sf --max-time 1 "http://127.0.0.1:$PPORT/-/ready" >/dev/null && break
		sleep 0.2
	done
	expect_promql 'up{job="meshd"}' 1 || {
		tail -n 5 "$WORK/prometheus.log"
		return 1
	}
	base=$(metric "sluice_connections_opened_total{$SEL}")
	[ "$base" = none ] && base=0
	expect_promql "sluice_connections_opened_total{$SEL}" "$base" || ok=1
	connect "$k" || return 1
	expect_promql "sluice_connections_opened_total{$SEL}" $((base + k)) || ok=1
	expect_promql "sluice_connections_closed_total{$SEL}" $((base + k)) || ok=1
	expect_promql "sluice_connection_rtt_seconds_count{$SEL}" $((base + k)) || ok=1
	expect_promql "sum(sluice_backend_connections_opened_total{$SEL})" $((base + k)) || ok=1
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return $ok
}

# meshd killed with -9, then `meshd --cleanup --bpffs`: nothing of ours is
# left on the cgroup, no pin dir.
test_cleanup() {
	local ok=0
	ensure_meshd || return 1
	[ "$(cg_progs)" = 1 ] || fail "telemetry not attached before the cleanup" || ok=1
	meshd_kill9
	in_node "$MESHD" --cleanup --bpffs "$PIN" || fail "meshd --cleanup failed" || ok=1
	[ "$(cg_progs)" = 0 ] || fail "telemetry still attached after meshd --cleanup" || ok=1
	[ ! -e "$PIN" ] || fail "pin dir $PIN left: $(ls "$PIN" | tr '\n' ' ')" || ok=1
	return $ok
}

test_restart() {
	local ok=0 m=5
	ensure_meshd || return 1
	meshd_term || return 1
	[ "$(cg_progs)" = 1 ] || fail "telemetry detached when meshd exited" || ok=1
	log "meshd stopped; telemetry still attached: $(cg_progs) program(s)"
	connect "$m" || return 1
	meshd_start || return 1
	# the counters start over with the new meshd: exactly the M made
	# while it was down, read from the ring
	expect_metric "sluice_connections_opened_total{$SEL}" "$m" || ok=1
	expect_metric "sluice_connections_closed_total{$SEL}" "$m" || ok=1
	[ "$(cg_progs)" = 1 ] || fail "$(cg_progs) telemetry programs on the cgroup after the restart, not 1" || ok=1
	return $ok
}

test_telemetry_off() {
	local ok=0
	ensure_meshd || return 1
	meshd_term || return 1
	meshd_start --telemetry off || return 1
	[ "$(cg_progs)" = 0 ] || fail "--telemetry off left the telemetry program attached" || ok=1
	metric "sluice_service_packets_total{service=\"$SVC\"}" | grep -qv none ||
		fail "no datapath metrics with telemetry off" || ok=1
	mctl connections >"$WORK/off.out" 2>&1 && { fail "connections succeeded with telemetry off"; ok=1; }
	log "connections: $(cat "$WORK/off.out")"
	grep -q "telemetry is off" "$WORK/off.out" || fail "connections does not say telemetry is off" || ok=1
	mctl status | grep -q '^Telemetry: *off' || fail "status does not say telemetry is off" || ok=1
	meshd_term || return 1
	meshd_start || return 1
	[ "$(cg_progs)" = 1 ] || fail "telemetry not attached again" || ok=1
	return $ok
}

# --metrics-backends off (#16): the services' series stay, no backend's.
test_backends_off() {
	local ok=0
	ensure_meshd || return 1
	meshd_term || return 1
	meshd_start --metrics-backends off || return 1
	scrape >"$WORK/nobe.txt" || { fail "scrape failed"; return 1; }
	grep -q "^sluice_service_packets_total{service=\"$SVC\"}" "$WORK/nobe.txt" ||
		fail "no service series with --metrics-backends off" || ok=1
	grep -q "^sluice_service_healthy_backends{service=\"$SVC\"} ${#TOPO_BACKENDS[@]}\$" "$WORK/nobe.txt" ||
		fail "healthy backends of the service not counted with --metrics-backends off" || ok=1
	if grep -q '^sluice_backend_' "$WORK/nobe.txt"; then
		fail "backend series with --metrics-backends off: $(grep -m1 '^sluice_backend_' "$WORK/nobe.txt")"
		ok=1
	fi
	grep -qx 'sluice_metrics_backend_series 0' "$WORK/nobe.txt" ||
		fail "sluice_metrics_backend_series is not 0" || ok=1
	log "--metrics-backends off: $(wc -c <"$WORK/nobe.txt") bytes, $(grep -c '^sluice_' "$WORK/nobe.txt") samples"
	meshd_term || return 1
	meshd_start || return 1
	scrape >"$WORK/be.txt" || { fail "scrape failed"; return 1; }
	grep -q '^sluice_backend_packets_total{' "$WORK/be.txt" ||
		fail "no backend series by default (auto, ${#TOPO_BACKENDS[@]} backends)" || ok=1
	grep -qx 'sluice_metrics_backend_series 1' "$WORK/be.txt" ||
		fail "sluice_metrics_backend_series is not 1 by default" || ok=1
	log "default (auto): $(wc -c <"$WORK/be.txt") bytes, $(grep -c '^sluice_' "$WORK/be.txt") samples"
	return $ok
}

test_uninstall() {
	local ok=0 i
	ensure_meshd || return 1
	mctl uninstall || fail "uninstall failed" || ok=1
	for ((i = 0; i < 250; i++)); do
		meshd_alive || break
		sleep 0.02
	done
	meshd_alive && { fail "meshd still running after uninstall"; ok=1; }
	wait "$MESHD_PID" 2>/dev/null
	MESHD_PID=
	[ "$(cg_progs)" = 0 ] || fail "telemetry still attached after uninstall" || ok=1
	[ ! -e "$PIN" ] || fail "pin dir $PIN left: $(ls "$PIN" | tr '\n' ' ')" || ok=1
	bpftool cgroup show "$CG" | sed 's/^/  /'
	return $ok
}

# --------------------------------------------------------------- runner

ALL=(counts promtool http status connections follow slow_follower top prometheus restart
	telemetry_off backends_off uninstall cleanup)

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-meshd-metrics.XXXXXX") || exit 1
	SOCK=$WORK/run/meshd.sock
	STATE=$WORK/state/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	mkdir "$CG" || {
		echo "FAIL: e2e/meshd_metrics_setup: cannot create $CG"
		exit 1
	}
	echo "# topology $TOPO_ID, pins $PIN, cgroup $CG, metrics 127.0.0.1:$MPORT in the node netns"
	if ! topo__up; then
		echo "FAIL: e2e/meshd_metrics_setup: topology did not come up"
		exit 1
	fi
	if ! meshd_start; then
		echo "FAIL: e2e/meshd_metrics_setup: $(cat "$WORK/reason")"
		tail -n 20 "$LOG"
		exit 1
	fi
	if ! mctl service add "$SVC" $(for be in "${TOPO_BACKENDS[@]}"; do
		echo "$(topo__be_addr4 "$be"):$TOPO_BE_PORT"
	done) --name web >/dev/null; then
		echo "FAIL: e2e/meshd_metrics_setup: service add failed"
		exit 1
	fi
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e meshd metrics: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
