#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_telemetry.sh - connection telemetry and the Prometheus exporter, end
# to end, with a real Prometheus server.
#
# Contract: builds client ns --veth-- server ns, pins fresh datapath maps
# (lbtool load) with tc attached on both veth ends, and programs three
# services: VIP 10.96.77.10:80 -> 10.77.0.2:8080 (an echo server),
# .11:80 -> :8081 (nothing listens: refused), .12:80 -> 10.77.9.9:8080
# (unroutable from the server ns: SYN timeout). A child cgroup of the
# cgroup2 mount (never the root) holds the clients and the echo server;
# telemtool attaches telemetry there and serves /metrics on 127.0.0.1 in
# the root namespace; Prometheus (Debian's package) is started with a
# config written here and scrapes it every second. Scenarios, one
# "PASS: e2e/telemetry_<name>" or "FAIL: ..." line each:
#   prometheus_counts  N connections through the VIP: PromQL over the HTTP
#                      API gives N opened, N closed, RTT histogram count N
#                      (outbound and inbound), N*B payload bytes each way,
#                      N for the backend the datapath chose (conntrack)
#   promtool           a real scrape passes `promtool check metrics`
#   http               gzip when asked (and valid), 404 elsewhere, 405
#                      with Allow for POST, HEAD like GET
#   failed             refused and timed-out attempts counted per backend
#   long_lived         a connection open for 6 s reports bytes before close
#                      (1 s UPDATE interval)
#   ipv6               IPv6 connections straight to a backend address
#   shared_backend     two VIPs (.20, .21) over one backend address:port
#                      (:8082): connections are credited to the VIP the
#                      client used, exact counts per service and
#                      direction, first through tc (conntrack), then
#                      through the socket LB (attached to our cgroup for
#                      this scenario only)
#   service_deleted    a deleted service's series disappear
#   pinned_restart     --telem-pin: the link outlives telemtool, the next
#                      one adopts it, unpin detaches it
#   root_refused       telemtool refuses the cgroup2 root
#   loss_accounting    4 KiB ring, reader paused: written + lost = produced
#                      (4 records per connection) and read = written
# Every process, the cgroup, pins, namespaces and temp files are removed
# on exit, failure or interruption. Needs root and the build (make).
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=$ROOT/build/tests/tools
LBTOOL=$TOOLS/lbtool
TELEMTOOL=$TOOLS/telemtool
PEER=$TOOLS/telempeer
SOCKTOOL=$TOOLS/socktool

ID=sltm$$
NS_C=$ID-c
NS_S=$ID-s
PIN=/sys/fs/bpf/sluice-$ID
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-$ID}
TMP=
PIDS=()
FAILED=0

SVC6="[fd00:96::10]:80/tcp"
BE6="[fd77::2]:8080"
VIP=10.96.77.10
SVC="$VIP:80/tcp"
BE=10.77.0.2:8080
SVC_REFUSED="10.96.77.11:80/tcp"
BE_REFUSED=10.77.0.2:8081
SVC_TIMEOUT="10.96.77.12:80/tcp"
BE_TIMEOUT=10.77.9.9:8080
# two services over one backend address:port (two Kubernetes Services
# selecting the same pods)
SVC_SHARED_A="10.96.77.20:80/tcp"
SVC_SHARED_B="10.96.77.21:80/tcp"
BE_SHARED=10.77.0.2:8082
N=20      # connections counted through Prometheus
BYTES=1500
NLOSS=100 # connections of the loss test

log() { printf '    %s\n' "$*"; }

cleanup() {
	local pid i
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	PIDS=()
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		# anything left in our cgroup goes back to the root first
		while read -r pid; do
			echo "$pid" >"$CGROOT/cgroup.procs" 2>/dev/null
		done <"$CG/cgroup.procs"
		rmdir "$CG" 2>/dev/null || echo "warning: cannot remove $CG" >&2
	fi
	if [ -d "$PIN" ]; then
		"$TELEMTOOL" --pin "$PIN" unpin 2>/dev/null
		"$SOCKTOOL" --pin "$PIN" unpin 2>/dev/null
		"$LBTOOL" --pin "$PIN" unpin >/dev/null 2>&1 || rm -rf "$PIN"
	fi
	ip netns del "$NS_C" 2>/dev/null
	ip netns del "$NS_S" 2>/dev/null
	[ -n "$TMP" ] && rm -rf "$TMP"
	TMP=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() {
	local ns=$1
	shift
	nsenter --net="/var/run/netns/$ns" "$@"
}

# in_cg NS CMD...: CMD in our cgroup and network namespace (foreground)
in_cg() {
	local ns=$1
	shift
	(echo "$BASHPID" >"$CG/cgroup.procs" && exec nsenter --net="/var/run/netns/$ns" "$@")
}

# bg_cg NS CMD...: the same in the background; the pid goes to PIDS
bg_cg() {
	local ns=$1
	shift
	(echo "$BASHPID" >"$CG/cgroup.procs" && exec nsenter --net="/var/run/netns/$ns" "$@") &
	PIDS+=($!)
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_file FILE [SECONDS]: default 5 s
wait_file() {
	local i
	for ((i = 0; i < ${2:-5} * 20; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# http METHOD URL [ACCEPT-ENCODING]: prints "status", then headers, then
# the (decompressed) body after a "--" line
http() {
	python3 - "$@" <<'EOF'
import gzip, sys, urllib.error, urllib.request
method, url = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url, method=method)
if len(sys.argv) > 3:
    req.add_header("Accept-Encoding", sys.argv[3])
try:
    r = urllib.request.urlopen(req, timeout=5)
    status, headers, body = r.status, r.headers, r.read()
except urllib.error.HTTPError as e:
    status, headers, body = e.code, e.headers, e.read()
print(status)
for k, v in headers.items():
    print(f"{k.lower()}: {v}")
print("--")
if headers.get("Content-Encoding") == "gzip":
    body = gzip.decompress(body)
sys.stdout.write(body.decode())
EOF
}

scrape() { http GET "http://127.0.0.1:$(cat "$TMP/port")/metrics" | sed '1,/^--$/d'; }

# metric NAME{LABELS} from a fresh scrape (exact series match), or "none"
metric() {
	scrape | awk -v s="$1" 'index($0, s " ") == 1 { print $2; found = 1 } END { if (!found) print "none" }'
}

promql() {
	python3 - "$PROM_PORT" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
port, q = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{port}/api/v1/query?query=" + urllib.parse.quote(q)
try:
    res = json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]
    print(res[0]["value"][1] if res else "none")
except Exception as e:
    print(f"error: {e}")
EOF
}

# expect_promql QUERY VALUE: polls Prometheus for up to 30 s
expect_promql() {
	local got i
	for ((i = 0; i < 60; i++)); do
		got=$(promql "$1")
		[ "$got" = "$2" ] && { log "$1 = $got"; return 0; }
		sleep 0.5
	done
	log "$1 = $got, expected $2"
	return 1
}

# expect_metric SERIES VALUE: polls /metrics for up to 10 s
expect_metric() {
	local got i
	for ((i = 0; i < 50; i++)); do
		got=$(metric "$1")
		[ "$got" = "$2" ] && { log "$1 $got"; return 0; }
		sleep 0.2
	done
	log "$1 = $got, expected $2"
	return 1
}

scenario() {
	local name=$1 rc
	shift
	"$@"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		echo "PASS: e2e/telemetry_$name"
	else
		echo "FAIL: e2e/telemetry_$name"
		FAILED=$((FAILED + 1))
	fi
}

setup_net() {
	ip netns add "$NS_C" && ip netns add "$NS_S" || return 1
	ip link add c0 netns "$NS_C" type veth peer name s0 netns "$NS_S" || return 1
	ip -n "$NS_C" addr add 10.77.0.1/24 dev c0
	ip -n "$NS_S" addr add 10.77.0.2/24 dev s0
	ip -n "$NS_C" addr add fd77::1/64 dev c0 nodad
	ip -n "$NS_S" addr add fd77::2/64 dev s0 nodad
	for ns in "$NS_C" "$NS_S"; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link set "$([ "$ns" = "$NS_C" ] && echo c0 || echo s0)" up
	done
	# full checksums on the wire, as from a real NIC, for the NAT's updates
	ip netns exec "$NS_C" ethtool -K c0 tx off >/dev/null 2>&1
	ip netns exec "$NS_S" ethtool -K s0 tx off >/dev/null 2>&1
	ip -n "$NS_C" route add 10.96.77.0/24 via 10.77.0.2 || return 1
}

setup_lb() {
	"$LBTOOL" --pin "$PIN" load >/dev/null || return 1
	in_ns "$NS_S" "$LBTOOL" --pin "$PIN" attach tc s0 >/dev/null || return 1
	in_ns "$NS_C" "$LBTOOL" --pin "$PIN" attach tc c0 >/dev/null || return 1
	"$LBTOOL" --pin "$PIN" svc set "$SVC" "$BE" >/dev/null &&
		"$LBTOOL" --pin "$PIN" svc set "$SVC_REFUSED" "$BE_REFUSED" >/dev/null &&
		"$LBTOOL" --pin "$PIN" svc set "$SVC_TIMEOUT" "$BE_TIMEOUT" >/dev/null &&
		"$LBTOOL" --pin "$PIN" svc set "$SVC6" "$BE6" >/dev/null &&
		"$LBTOOL" --pin "$PIN" svc set "$SVC_SHARED_A" "$BE_SHARED" >/dev/null &&
		"$LBTOOL" --pin "$PIN" svc set "$SVC_SHARED_B" "$BE_SHARED" >/dev/null
}

# start_telemtool ARGS...: telemtool on 127.0.0.1:<free port>; TELEM_PID
start_telemtool() {
	rm -f "$TMP/port"
	"$TELEMTOOL" --pin "$PIN" --cgroup "$CG" --port-file "$TMP/port" "$@" \
		>"$TMP/telemtool.out" 2>"$TMP/telemtool.err" &
	TELEM_PID=$!
	PIDS+=("$TELEM_PID")
	# loading verifies the whole datapath object too: slow on a busy box
	wait_file "$TMP/port" 60 || { cat "$TMP/telemtool.err"; return 1; }
}

stop_telemtool() {
	kill "$TELEM_PID" 2>/dev/null
	wait "$TELEM_PID" 2>/dev/null
}

start_prometheus() {
	local i
	PROM_PORT=$(free_port)
	cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: sluice
    static_configs:
      - targets: ['127.0.0.1:$(cat "$TMP/port")']
EOF
	prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
		--web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn \
		>"$TMP/prometheus.log" 2>&1 &
	PROM_PID=$!
	PIDS+=("$PROM_PID")
	for ((i = 0; i < 100; i++)); do
		http GET "http://127.0.0.1:$PROM_PORT/-/ready" 2>/dev/null | head -1 | grep -q 200 &&
			return 0
		sleep 0.2
	done
	echo "prometheus did not get ready:"
	tail -5 "$TMP/prometheus.log"
	return 1
}

setup() {
	if [ -z "$CGROOT" ]; then
		echo "no cgroup2 mount in /proc/mounts"
		return 1
	fi
	for t in "$LBTOOL" "$TELEMTOOL" "$PEER" "$SOCKTOOL"; do
		[ -x "$t" ] || { echo "$t is not built (make)"; return 1; }
	done
	if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
		echo "prometheus/promtool missing (scripts/install-deps.sh)"
		return 1
	fi
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || return 1
	TMP=$(mktemp -d /tmp/sluice-telemetry.XXXXXX) || return 1
	mkdir "$CG" || return 1
	setup_net || { echo "network setup failed"; return 1; }
	setup_lb || { echo "datapath setup failed"; return 1; }
	bg_cg "$NS_S" "$PEER" serve "$BE" --ready "$TMP/server.ready"
	bg_cg "$NS_S" "$PEER" serve "$BE6" --ready "$TMP/server6.ready"
	bg_cg "$NS_S" "$PEER" serve "$BE_SHARED" --ready "$TMP/server_shared.ready"
	if ! wait_file "$TMP/server.ready" || ! wait_file "$TMP/server6.ready" ||
		! wait_file "$TMP/server_shared.ready"; then
		echo "echo servers did not start"
		return 1
	fi
	start_telemtool --interval 1 || return 1
	start_prometheus
}

check_prometheus_counts() {
	local sel="service=\"$SVC\"" rc=0
	in_cg "$NS_C" "$PEER" connect "$VIP:80" -n $N --bytes $BYTES | sed 's/^/    /' || return 1
	expect_promql "sluice_connections_opened_total{$sel,direction=\"outbound\"}" $N || rc=1
	expect_promql "sluice_connections_closed_total{$sel,direction=\"outbound\"}" $N || rc=1
	expect_promql "sluice_connection_rtt_seconds_count{$sel,direction=\"outbound\"}" $N || rc=1
	expect_promql "sluice_connections_opened_total{$sel,direction=\"inbound\"}" $N || rc=1
	expect_promql "sluice_connections_closed_total{$sel,direction=\"inbound\"}" $N || rc=1
	expect_promql "sluice_connection_rtt_seconds_count{$sel,direction=\"inbound\"}" $N || rc=1
	expect_promql "sluice_connection_sent_bytes_total{$sel,direction=\"outbound\"}" $((N * BYTES)) || rc=1
	expect_promql "sluice_connection_received_bytes_total{$sel,direction=\"outbound\"}" $((N * BYTES)) || rc=1
	expect_promql "sluice_backend_connections_opened_total{$sel,backend=\"$BE\",direction=\"outbound\"}" $N || rc=1
	expect_promql "sluice_connection_duration_seconds_count{$sel,direction=\"outbound\"}" $N || rc=1
	expect_promql "sluice_connections_active{$sel,direction=\"outbound\"}" 0 || rc=1
	expect_promql "sluice_telemetry_records_lost_total" 0 || rc=1
	return $rc
}

check_promtool() {
	scrape >"$TMP/scrape.txt" || return 1
	log "$(wc -l <"$TMP/scrape.txt") lines scraped"
	promtool check metrics <"$TMP/scrape.txt" 2>&1 | sed 's/^/    /'
	[ "${PIPESTATUS[0]}" -eq 0 ]
}

check_http() {
	local url out rc=0
	url="http://127.0.0.1:$(cat "$TMP/port")"
	out=$(http GET "$url/metrics" gzip)
	echo "$out" | grep -qx 'content-encoding: gzip' || { log "no gzip for Accept-Encoding: gzip"; rc=1; }
	echo "$out" | grep -q '^content-type: text/plain; version=0.0.4' || { log "content type"; rc=1; }
	echo "$out" | grep -q '^sluice_build_info{' || { log "gzip body does not decode to metrics"; rc=1; }
	out=$(http GET "$url/metrics" identity)
	echo "$out" | grep -q '^content-encoding' && { log "gzip without asking"; rc=1; }
	out=$(http GET "$url/metrics" "gzip;q=0")
	echo "$out" | grep -q '^content-encoding' && { log "gzip although q=0"; rc=1; }
	[ "$(http GET "$url/nope" | head -1)" = 404 ] || { log "other path: not 404"; rc=1; }
	out=$(http POST "$url/metrics")
	[ "$(echo "$out" | head -1)" = 405 ] || { log "POST: not 405"; rc=1; }
	echo "$out" | grep -qx 'allow: GET, HEAD' || { log "405 without Allow"; rc=1; }
	[ "$(http HEAD "$url/metrics" | head -1)" = 200 ] || { log "HEAD: not 200"; rc=1; }
	[ $rc -eq 0 ] && log "gzip, identity, 404, 405 + Allow, HEAD as expected"
	return $rc
}

check_failed() {
	local rc=0 timeouts
	in_cg "$NS_C" "$PEER" connect 10.96.77.11:80 -n 3 --expect refused | sed 's/^/    /' || rc=1
	# TCP_SYNCNT 1: SYN + one retry, ETIMEDOUT after ~3 s
	in_cg "$NS_C" "$PEER" connect 10.96.77.12:80 -n 1 --expect timeout --syncnt 1 | sed 's/^/    /' || rc=1
	expect_metric "sluice_backend_connections_failed_total{service=\"$SVC_REFUSED\",backend=\"$BE_REFUSED\",direction=\"outbound\",reason=\"refused\"}" 3 || rc=1
	expect_metric "sluice_backend_connections_failed_total{service=\"$SVC_TIMEOUT\",backend=\"$BE_TIMEOUT\",direction=\"outbound\",reason=\"timeout\"}" 1 || rc=1
	expect_metric "sluice_connections_failed_total{service=\"$SVC_TIMEOUT\",direction=\"outbound\",reason=\"timeout\"}" 1 || rc=1
	# every firing of the SYN's retransmission timer counts (>= 1)
	timeouts=$(metric "sluice_connection_timeouts_total{service=\"$SVC_TIMEOUT\",direction=\"outbound\"}")
	log "retransmission timeouts of the timed-out attempt: $timeouts"
	[ "$timeouts" -ge 1 ] 2>/dev/null || rc=1
	expect_metric "sluice_connections_opened_total{service=\"$SVC_REFUSED\",direction=\"outbound\"}" 0 || rc=1
	return $rc
}

# One connection streams for 6 s; while it is still open its bytes so far
# are already counted (UPDATE records, 1 s interval): polled from 2.5 s on
# (a busy machine may start the client late), until 5 s. Under emulation
# (SLUICE_TEST_TIME_SCALE, make test-kernels) the hold and the polling
# stretch with it: one scrape there can take seconds.
check_long_lived() {
	local sel="service=\"$SVC\",direction=\"outbound\"" before sent closed rc=0 pid i
	local scale=${SLUICE_TEST_TIME_SCALE:-1}
	before=$(metric "sluice_connection_sent_bytes_total{$sel}")
	in_cg "$NS_C" "$PEER" connect "$VIP:80" -n 1 --bytes 100000 --hold-ms $((6000 * scale)) >/dev/null &
	pid=$!
	sleep 2.5
	for ((i = 0; i < 6 * scale; i++)); do
		scrape >"$TMP/mid.txt"
		sent=$(awk -v s="sluice_connection_sent_bytes_total{$sel}" 'index($0, s " ") == 1 { print $2 }' "$TMP/mid.txt")
		closed=$(awk -v s="sluice_connections_closed_total{$sel}" 'index($0, s " ") == 1 { print $2 }' "$TMP/mid.txt")
		[ "$sent" -gt "$before" ] 2>/dev/null && break
		sleep 0.5
	done
	log "after ~$((2500 + i * 500)) ms: sent bytes $before -> $sent, closed $closed"
	[ "$closed" = $N ] || { log "closed changed before the close"; rc=1; }
	[ "$sent" -gt "$before" ] 2>/dev/null || { log "no bytes reported while open"; rc=1; }
	wait $pid || rc=1
	expect_metric "sluice_connection_sent_bytes_total{$sel}" $((before + 100000)) || rc=1
	return $rc
}

# IPv6, straight to the backend address (what the socket LB would have
# connected to): classified by the endpoint index, both ends counted.
check_ipv6() {
	local sel="service=\"$SVC6\"" rc=0
	in_cg "$NS_C" "$PEER" connect "$BE6" -n 5 --bytes 700 | sed 's/^/    /' || return 1
	expect_metric "sluice_connections_opened_total{$sel,direction=\"outbound\"}" 5 || rc=1
	expect_metric "sluice_connections_closed_total{$sel,direction=\"inbound\"}" 5 || rc=1
	expect_metric "sluice_backend_connection_received_bytes_total{$sel,backend=\"$BE6\",direction=\"inbound\"}" 3500 || rc=1
	return $rc
}

# expect_svc SVC OUT IN: connections of SVC opened outbound (at the
# service and at its backend) and closed inbound
expect_svc() {
	local rc=0 sel="service=\"$1\""
	expect_metric "sluice_connections_opened_total{$sel,direction=\"outbound\"}" "$2" || rc=1
	expect_metric "sluice_backend_connections_opened_total{$sel,backend=\"$BE_SHARED\",direction=\"outbound\"}" "$2" || rc=1
	expect_metric "sluice_connections_closed_total{$sel,direction=\"inbound\"}" "$3" || rc=1
	return $rc
}

# Two VIPs, one backend address:port. Through tc the client's socket sees
# the VIP and the server's conntrack knows it; through the socket LB both
# ends see only the backend address, and the VIP comes from what connect()
# asked for. Counts differ per VIP so a swap or a lump shows.
check_shared_backend() {
	local rc=0 a=${SVC_SHARED_A%/tcp} b=${SVC_SHARED_B%/tcp}
	in_cg "$NS_C" "$PEER" connect "$a" -n 3 --bytes 100 | sed 's/^/    /' || return 1
	in_cg "$NS_C" "$PEER" connect "$b" -n 5 --bytes 100 | sed 's/^/    /' || return 1
	log "tc: 3 through $a, 5 through $b"
	expect_svc "$SVC_SHARED_A" 3 3 || rc=1
	expect_svc "$SVC_SHARED_B" 5 5 || rc=1
	"$SOCKTOOL" --pin "$PIN" attach lb "$CG" >/dev/null || return 1
	in_cg "$NS_C" "$PEER" connect "$a" -n 4 --bytes 100 | sed 's/^/    /' || rc=1
	in_cg "$NS_C" "$PEER" connect "$b" -n 1 --bytes 100 | sed 's/^/    /' || rc=1
	"$SOCKTOOL" --pin "$PIN" detach lb >/dev/null || rc=1
	log "socket LB: 4 through $a, 1 through $b"
	expect_svc "$SVC_SHARED_A" 7 7 || rc=1
	expect_svc "$SVC_SHARED_B" 6 6 || rc=1
	return $rc
}

# A pinned attachment outlives telemtool; the next one adopts it (program
# replaced in place) and counts from there; unpin detaches it.
check_pinned_restart() {
	local sel="service=\"$SVC\",direction=\"outbound\"" rc=0 nprog
	stop_telemtool
	start_telemtool --telem-pin || return 1
	stop_telemtool
	[ -e "$PIN/link_telemetry_sockops" ] || { log "link not pinned"; return 1; }
	log "telemtool stopped, link still pinned"
	start_telemtool --telem-pin || return 1
	in_cg "$NS_C" "$PEER" connect "$VIP:80" -n 4 | sed 's/^/    /' || rc=1
	expect_metric "sluice_connections_opened_total{$sel}" 4 || rc=1
	# adopted, not attached a second time: one telemetry program on the cgroup
	nprog=$(bpftool cgroup show "$CG" 2>/dev/null | grep -c 'telemetry_so')
	[ "$nprog" = 1 ] || { log "$nprog telemetry programs on the cgroup, expected 1"; rc=1; }
	stop_telemtool
	"$TELEMTOOL" --pin "$PIN" unpin || rc=1
	[ ! -e "$PIN/link_telemetry_sockops" ] || { log "link pin left"; rc=1; }
	nprog=$(bpftool cgroup show "$CG" 2>/dev/null | grep -c 'telemetry_so')
	[ "$nprog" = 0 ] || { log "still attached after unpin"; rc=1; }
	log "one program attached across the restart; detached by unpin"
	start_telemtool --interval 1 || rc=1
	return $rc
}

check_service_deleted() {
	local i
	"$LBTOOL" --pin "$PIN" svc del "$SVC_REFUSED" >/dev/null || return 1
	for ((i = 0; i < 30; i++)); do
		scrape | grep -q "10.96.77.11" || { log "no series of $SVC_REFUSED left"; return 0; }
		sleep 0.2
	done
	log "series of $SVC_REFUSED still there:"
	scrape | grep "10.96.77.11" | head -3 | sed 's/^/    /'
	return 1
}

check_root_refused() {
	if "$TELEMTOOL" --pin "$PIN" --cgroup "$CGROOT" --port-file "$TMP/rootport" 2>"$TMP/root.err"; then
		log "telemtool attached to the cgroup2 root"
		return 1
	fi
	log "$(cat "$TMP/root.err")"
}

check_loss_accounting() {
	local written lost read produced=$((4 * NLOSS)) rc=0 i
	stop_telemtool
	start_telemtool --ring-bytes 4096 --paused || return 1
	in_cg "$NS_C" "$PEER" connect "$VIP:80" -n $NLOSS --bytes 100 | sed 's/^/    /' || return 1
	sleep 0.5 # the server's last closes
	kill -USR1 "$TELEM_PID"
	# the reader drains what the ring holds: poll until it adds up, 10 s
	# at most (a hang guard; a busy machine needs more than the 0.5 s
	# this waited once)
	for ((i = 0; i < 50; i++)); do
		sleep 0.2
		written=$(metric sluice_telemetry_records_written_total)
		lost=$(metric sluice_telemetry_records_lost_total)
		read=$(metric sluice_telemetry_records_read_total)
		[[ "$written$lost$read" =~ ^[0-9]+$ ]] || continue
		[ "$((written + lost))" -eq $produced ] && [ "$read" -eq "$written" ] && break
	done
	[[ "$written" =~ ^[0-9]+$ && "$lost" =~ ^[0-9]+$ && "$read" =~ ^[0-9]+$ ]] ||
		{ log "telemetry counters missing: written $written, lost $lost, read $read"; return 1; }
	log "produced $produced (open + close, both ends, $NLOSS connections): written $written, lost $lost, read $read"
	[ "$((written + lost))" -eq $produced ] || { log "written + lost != produced"; rc=1; }
	[ "$read" -eq "$written" ] || { log "read != written"; rc=1; }
	[ "$lost" -gt 0 ] || { log "nothing lost: the ring was not small enough"; rc=1; }
	return $rc
}

if [ "$(id -u)" -ne 0 ]; then
	echo "FAIL: e2e/telemetry_setup (needs root)"
	exit 1
fi
t0=$SECONDS
# setup sets globals: not in a pipeline (a subshell); its output is kept
# in a file until it is known whether it matters
SETUP_LOG=$(mktemp /tmp/sluice-telemetry-setup.XXXXXX)
if ! setup >"$SETUP_LOG" 2>&1; then
	sed 's/^/    /' "$SETUP_LOG"
	rm -f "$SETUP_LOG"
	echo "FAIL: e2e/telemetry_setup"
	exit 1
fi
rm -f "$SETUP_LOG"
scenario prometheus_counts check_prometheus_counts
scenario promtool check_promtool
scenario http check_http
scenario failed check_failed
scenario long_lived check_long_lived
scenario ipv6 check_ipv6
scenario shared_backend check_shared_backend
scenario service_deleted check_service_deleted
scenario pinned_restart check_pinned_restart
scenario root_refused check_root_refused
scenario loss_accounting check_loss_accounting
echo "# telemetry: $((SECONDS - t0))s"
[ "$FAILED" -eq 0 ]
