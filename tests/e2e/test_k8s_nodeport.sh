#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_k8s_nodeport.sh - NodePort Services, externalTrafficPolicy and
# healthCheckNodePort as meshd's Kubernetes sync programs and serves them.
#
# Contract: builds the topology of scripts/lib/topology.sh (client -> node
# -> be1..be3 echo servers on :8080) and a child cgroup of the cgroup2
# mount. The stand-in API server (tests/e2e/k8s/apiserver.py) and meshd
# (NODE_NAME=n1, --kubernetes on, --nodeport-addresses 10.10.0.0/24,fd00:10::/64,
# socket LB on the child cgroup, XDP/tc on 'to-*') run in the node
# namespace; the node addresses that serve NodePorts are 10.10.0.1 and
# fd00:10::1 (the others, 10.10.1-3.1 and fd00:10:1-3::1, are outside).
# Endpoint 10.10.1.2 (be1) is on n1, 10.10.2.2 (be2) on n2. Scenarios, one
# "PASS: e2e/k8s_nodeport_<name>" or "FAIL: e2e/k8s_nodeport_<name>: <reason>"
# line each, in this order:
#   addresses     status (JSON and table) and /metrics list exactly the node
#                 addresses inside --nodeport-addresses
#   cluster_xdp   Service np (NodePort, Cluster, 80 -> 8080, nodePort 30080
#                 tcp and udp) -> 10.10.0.1:30080/tcp and /udp named
#                 default/np:http@nodeport; the external client reaches be1
#                 and be2 over TCP and UDP through XDP/tc (lb_new grows),
#                 the reply from 10.10.0.1:30080
#   ipv6          Service ds (dual stack, nodePort 30090): [fd00:10::1]:30090
#                 balances to the IPv6 endpoint (be3), 10.10.0.1:30090 to
#                 the IPv4 one (be1), both reached by the client over XDP
#   local_socket  a client in the node namespace (in the cgroup) reaches
#                 10.10.0.1:30080 through the socket LB (its connect counter
#                 grows, no new conntrack entry)
#   local_none    Service lb (LoadBalancer, Local, nodePort 30081,
#                 healthCheckNodePort 32100) with its only endpoint on n2:
#                 the NodePort service has no backend, the client does not
#                 get through (dropped and counted as no_local_backend when
#                 the service is drop-when-empty); GET on the hc port (any
#                 path) answers 503, application/json, nosniff and kube-
#                 proxy's body with localEndpoints 0
#   local_one     an endpoint on n1 appears: 200 with localEndpoints 1, and
#                 the client reaches be1 (and only be1) through the NodePort
#   slowloris     80 connections trickling a request byte by byte and one
#                 sending a 100 KiB header do not keep a second client
#                 from its answer within 2 s; the slow ones are closed by the
#                 request deadline; meshd's API still answers
#   address_change  an address added inside the CIDR (10.10.0.50) gets the
#                 NodePorts, one outside (10.10.7.1) does not; removed, its
#                 NodePorts go
#   cluster_tc    meshd restarted with --xdp-mode off (tc only; accept_local
#                 on the backend links, see README): the same NodePort over
#                 TCP and UDP, lb_new grows
#   removed       Service lb deleted: its NodePort services go and the hc
#                 port is closed
# Exits non-zero if any failed. meshd, the API server, clients, the cgroup,
# pins, namespaces and temp files are removed on exit, failure or
# interruption. Needs root, python3, curl, jq, bpftool and `make`. About 25 s.
# Usage: test_k8s_nodeport.sh [SCENARIO...]   (default: all, in order)
set -u
export PYTHONDONTWRITEBYTECODE=1

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOPO_PREFIX=${TOPO_PREFIX:-knp}
# shellcheck source=SCRIPTDIR/../../scripts/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"
# shellcheck source=tests/e2e/lib/meshd.sh
source "$ROOT/tests/e2e/lib/meshd.sh"

K8S=$ROOT/tests/e2e/k8s
MESHD=${SLUICE_BUILD:-$ROOT/build}/meshd
MESHCTL=${SLUICE_BUILD:-$ROOT/build}/meshctl
PIN=/sys/fs/bpf/sluice-knp$$
PATTERN='to-*'
START_TIMEOUT=30
NODE=10.10.0.1
NODE6=fd00:10::1
HCPORT=32100
MPORT=19467 # /metrics, inside the node namespace
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-knp$$}

WORK=
SOCK=
STATE=
LOG=
PORTS=
MESHD_PID=
BG_PIDS=()
FAILED=0
NEEDS_BUILT=()
NEEDS_CMDS=(bpftool nsenter curl jq python3)
SCENARIO_PREFIX=k8s_nodeport_
MESHD_FLAGS=(--cgroup "$CG" --metrics "127.0.0.1:$MPORT" --telemetry off --socket-lb on --redirect off
	--fib-forward on --kubernetes on --nodeport-addresses "10.10.0.0/24,fd00:10::/64")

log() { printf '%s\n' "$*"; }

fail() {
	log "error: $*"
	[ -s "$WORK/reason" ] || printf '%s\n' "$*" >"$WORK/reason"
	return 1
}

in_node() { nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$@"; }
in_client() { nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" "$@"; }
in_cg_node() {
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$@")
}
mctl() { "$MESHCTL" -s "$SOCK" --timeout 5000 "$@"; }
st() { mctl -o json status | jq -r "$1"; }
# UDP flows of one burst that may share a source port (test_cluster_xdp)
NEW_SLACK=2
CTL() { in_node python3 "$K8S/k8sctl.py" "$@"; }
apply() { CTL apply "$PORTS" "$1" >/dev/null; }

# wait_for JQ-EXPR-over-service-list [SECONDS]: until it prints true
wait_for() {
	local i
	for ((i = 0; i < ${2:-10} * 20; i++)); do
		[ "$(mctl -o json service list 2>/dev/null | jq -r "$1" 2>/dev/null)" = true ] &&
			return 0
		sleep 0.05
	done
	fail "timed out waiting for: $1 (services: $(mctl -o json service list |
		jq -c '[.services[] | .name + " " + .vip + ":" + (.port|tostring)]'))"
}
# the list answer's services, by "vip:port/proto" of this name
svc_q() { printf '[.services[] | select(.vip == "%s" and .port == %s and .protocol == "%s")]' \
	"$1" "$2" "$3"; }

service() { # NAME TYPE ETP PORTS-JSON [EXTRA-SPEC]
	cat <<EOF
{"kind": "Service", "apiVersion": "v1",
 "metadata": {"name": "$1", "namespace": "default"},
 "spec": {"type": "$2", "clusterIP": "10.96.0.$((RANDOM % 200 + 20))",
  "externalTrafficPolicy": "$3", "ports": $4 ${5:+, $5}}}
EOF
}
slice() { # NAME SERVICE ENDPOINTS-JSON
	cat <<EOF
{"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
 "metadata": {"name": "$1", "namespace": "default",
  "labels": {"kubernetes.io/service-name": "$2"}},
 "addressType": "IPv4",
 "ports": [{"name": "http", "protocol": "TCP", "port": 8080},
           {"name": "dns", "protocol": "UDP", "port": 8080}],
 "endpoints": $3}
EOF
}
ep() { printf '{"addresses": ["%s"], "nodeName": "%s", "conditions": {"ready": true}}' "$1" "$2"; }

# hc PATH: curl the health port from the client; headers in $WORK/hc.h, body in $WORK/hc.b
hc() {
	in_client curl -sS --max-time 3 -D "$WORK/hc.h" -o "$WORK/hc.b" -w '%{http_code}' \
		"http://$NODE:$HCPORT$1"
}
hc_body() { # NAME COUNT: kube-proxy's body, byte for byte
	printf '{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "%s"\n\t},\n' "$1"
	printf '\t"localEndpoints": %s,\n\t"serviceProxyHealthy": true\n}' "$2"
}

# ------------------------------------------------------------- scenarios

test_addresses() {
	local got
	got=$(st '.kubernetes.node_addresses | join(",")')
	log "node addresses for NodePorts: $got"
	[ "$got" = "$NODE,$NODE6" ] ||
		fail "node_addresses $got, want $NODE,$NODE6 (inside --nodeport-addresses only)" ||
		return 1
	mctl status | grep -F "NodePorts on: $NODE, $NODE6; healthCheckNodePorts served: 0" ||
		fail "meshctl status does not show the NodePort addresses: $(mctl status)" || return 1
	metric sluice_kubernetes_nodeport_addresses 2
}

# metric NAME VALUE: /metrics has NAME with that value
metric() {
	local got
	got=$(in_node curl -sS --max-time 5 "http://127.0.0.1:$MPORT/metrics" |
		awk -v s="$1" '$1 == s { print $2 }')
	log "/metrics: $1 ${got:-none}"
	[ "$got" = "$2" ] || fail "/metrics: $1 is ${got:-absent}, want $2"
}

# Service np: NodePort 30080 tcp+udp, Cluster, endpoints be1 (n1) and be2 (n2)
apply_np() {
	[ "$(mctl -o json service list | jq -r "$(svc_q "$NODE" 30080 tcp) | length")" = 1 ] &&
		return 0
	apply "$(service np NodePort Cluster '[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
		{"name": "dns", "protocol": "UDP", "port": 80, "targetPort": 8080, "nodePort": 30080}]')" ||
		fail "apply np" || return 1
	apply "$(slice np-1 np "[$(ep 10.10.1.2 n1), $(ep 10.10.2.2 n2)]")" || fail "apply slice"
}

test_cluster_xdp() {
	local ok=0 n0 n1 name
	apply_np || return 1
	wait_for "$(svc_q "$NODE" 30080 tcp) | length == 1 and (.[0].backends | length) == 2" ||
		return 1
	wait_for "$(svc_q "$NODE" 30080 udp) | length == 1" || return 1
	name=$(mctl -o json service list | jq -r "$(svc_q "$NODE" 30080 tcp) | .[0].name")
	log "NodePort service: $name"
	[ "$name" = "default/np:http@nodeport" ] || fail "name $name" || ok=1
	[ "$(mctl -o json service list | jq -r "$(svc_q 10.10.1.1 30080 tcp) | length")" = 0 ] ||
		fail "a NodePort on 10.10.1.1, outside --nodeport-addresses" || ok=1
	# Every flow below must be new: no conntrack entry of an earlier case
	# may match it. UDP sockets take random source ports, so two of the
	# 20 may still share one (~1% per run): allow 2 (NEW_SLACK).
	mctl conntrack flush >/dev/null || fail "conntrack flush" || ok=1
	n0=$(st '.counters.lb_new')
	in_client timeout 30 python3 "$TOPO_ECHO" tcp "$NODE" 30080 -n 20 --expect be1,be2 \
		>"$WORK/c.out" 2>&1 || fail "TCP through the NodePort: $(tail -n 2 "$WORK/c.out")" || ok=1
	log "tcp: $(tail -n 1 "$WORK/c.out")"
	in_client timeout 30 python3 "$TOPO_ECHO" udp "$NODE" 30080 -n 20 --expect be1,be2 \
		>"$WORK/c.out" 2>&1 || fail "UDP through the NodePort: $(tail -n 2 "$WORK/c.out")" || ok=1
	log "udp: $(tail -n 1 "$WORK/c.out")"
	n1=$(st '.counters.lb_new')
	log "lb_new $n0 -> $n1"
	[ "$((n1 - n0))" -ge $((40 - NEW_SLACK)) ] ||
		fail "lb_new grew by $((n1 - n0)), want >= $((40 - NEW_SLACK)) (XDP/tc)" || ok=1
	return $ok
}

# Dual stack: the IPv6 node address serves the Service's IPv6 family.
test_ipv6() {
	local ok=0
	apply "$(service ds NodePort Cluster '[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30090}]' \
		'"clusterIPs": ["10.96.1.90", "fd00:96::90"], "ipFamilies": ["IPv4", "IPv6"]')" ||
		fail "apply ds" || return 1
	apply "$(slice ds-4 ds "[$(ep 10.10.1.2 n1)]")" || fail "apply v4 slice" || return 1
	apply "$(slice ds-6 ds "[$(ep fd00:10:3::2 n1)]" | sed 's/"IPv4"/"IPv6"/')" ||
		fail "apply v6 slice" || return 1
	wait_for "$(svc_q "$NODE6" 30090 tcp) | length == 1 and (.[0].backends | length) == 1" ||
		return 1
	[ "$(mctl -o json service list | jq -r "$(svc_q "$NODE6" 30090 tcp) | .[0].backends[0].address")" = \
		fd00:10:3::2 ] || fail "IPv6 NodePort: not the IPv6 endpoint" || ok=1
	in_client timeout 30 python3 "$TOPO_ECHO" tcp "$NODE6" 30090 -n 10 --expect be3 \
		>"$WORK/c.out" 2>&1 || fail "IPv6 client: $(tail -n 2 "$WORK/c.out")" || ok=1
	log "tcp6: $(tail -n 1 "$WORK/c.out")"
	in_client timeout 30 python3 "$TOPO_ECHO" tcp "$NODE" 30090 -n 10 --expect be1 \
		>"$WORK/c.out" 2>&1 || fail "IPv4 client: $(tail -n 2 "$WORK/c.out")" || ok=1
	log "tcp4: $(tail -n 1 "$WORK/c.out")"
	return $ok
}

test_local_socket() {
	local ok=0 c0 c1 ct0 ct1
	c0=$(st '.socket_lb.counters.connect')
	ct0=$(mctl -o json conntrack list | jq -r '.total')
	in_cg_node timeout 30 python3 "$TOPO_ECHO" tcp "$NODE" 30080 -n 10 --expect be1,be2 \
		>"$WORK/c.out" 2>&1 || fail "local client: $(tail -n 2 "$WORK/c.out")" || ok=1
	log "local tcp: $(tail -n 1 "$WORK/c.out")"
	c1=$(st '.socket_lb.counters.connect')
	ct1=$(mctl -o json conntrack list | jq -r '.total')
	log "socket-LB connects $c0 -> $c1, conntrack $ct0 -> $ct1"
	[ "$((c1 - c0))" -ge 10 ] || fail "socket-LB connect counter grew by $((c1 - c0))" || ok=1
	[ "$ct1" -le "$ct0" ] || fail "conntrack entries appeared: $ct0 -> $ct1" || ok=1
	return $ok
}

test_local_none() {
	local ok=0 code d0 d1 drop_empty
	apply "$(service lb LoadBalancer Local '[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30081}]' \
		"\"healthCheckNodePort\": $HCPORT")" || fail "apply lb" || return 1
	apply "$(slice lb-1 lb "[$(ep 10.10.2.2 n2)]")" || fail "apply slice" || return 1
	wait_for "$(svc_q "$NODE" 30081 tcp) | length == 1 and (.[0].backends | length) == 0" ||
		return 1
	drop_empty=$(mctl -o json service list | jq -r "$(svc_q "$NODE" 30081 tcp) | .[0].dropWhenEmpty")
	d0=$(st '.drops.no_local_backend // 0')
	if in_client timeout 10 python3 "$TOPO_ECHO" tcp "$NODE" 30081 -n 1 >"$WORK/c.out" 2>&1; then
		fail "a client got through a NodePort without local endpoints" || ok=1
	fi
	log "client: $(tail -n 1 "$WORK/c.out")"
	d1=$(st '.drops.no_local_backend // 0')
	if [ "$drop_empty" = true ]; then
		[ "$((d1 - d0))" -ge 1 ] || fail "no_local_backend drops $d0 -> $d1 (client: $(tail -n 1 \
			"$WORK/c.out" | sed 's/^ *//')); the datapath must drop for SLUICE_SVC_F_DROP_EMPTY" || ok=1
	else
		log "note: service not drop-when-empty here (dropWhenEmpty $drop_empty): refused, not dropped"
	fi
	for _ in $(seq 40); do
		code=$(hc /healthz 2>/dev/null) && break
		sleep 0.05
	done
	log "GET /healthz: $code; $(tr -d '\r' <"$WORK/hc.h" | grep -iE '^(content-type|x-content)' | tr '\n' ' ')"
	[ "$code" = 503 ] || fail "health port answered ${code:-nothing}, want 503" || ok=1
	grep -qi '^content-type: application/json' "$WORK/hc.h" || fail "no Content-Type application/json" || ok=1
	grep -qi '^x-content-type-options: nosniff' "$WORK/hc.h" || fail "no X-Content-Type-Options nosniff" || ok=1
	cmp -s "$WORK/hc.b" <(hc_body lb 0) || fail "body: $(cat "$WORK/hc.b")" || ok=1
	code=$(hc /any/path?x=1)
	[ "$code" = 503 ] || fail "another path answered $code" || ok=1
	metric sluice_kubernetes_health_check_node_ports 1 || ok=1
	return $ok
}

test_local_one() {
	local ok=0 code i
	apply "$(slice lb-1 lb "[$(ep 10.10.2.2 n2), $(ep 10.10.1.2 n1)]")" || fail "apply" || return 1
	wait_for "$(svc_q "$NODE" 30081 tcp) | length == 1 and (.[0].backends | length) == 1 and .[0].backends[0].address == \"10.10.1.2\"" ||
		return 1
	for ((i = 0; i < 40; i++)); do
		code=$(hc /)
		[ "$code" = 200 ] && break
		sleep 0.05
	done
	[ "$code" = 200 ] || fail "health port answered $code, want 200" || ok=1
	cmp -s "$WORK/hc.b" <(hc_body lb 1) || fail "body: $(cat "$WORK/hc.b")" || ok=1
	in_client timeout 30 python3 "$TOPO_ECHO" tcp "$NODE" 30081 -n 10 --expect be1 \
		>"$WORK/c.out" 2>&1 || fail "client: $(tail -n 2 "$WORK/c.out")" || ok=1
	log "tcp: $(tail -n 1 "$WORK/c.out")"
	return $ok
}

test_slowloris() {
	local ok=0 t0 t1 code pid
	cat >"$WORK/slow.py" <<'EOF'
import socket, sys, time
host, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for _ in range(n):
    s = socket.create_connection((host, port), timeout=2)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    socks.append(s)
big = socket.create_connection((host, port), timeout=2)
try:
    big.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 102400 + b"\r\n\r\n")
except OSError:
    pass
print("opened", n, flush=True)
closed, end = set(), time.time() + secs
while time.time() < end and len(closed) < n:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            s.sendall(b"X")
            s.setblocking(False)
            try:
                if s.recv(4096) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            s.setblocking(True)
        except OSError:
            closed.add(i)
    time.sleep(0.25)
print("closed", len(closed), "of", n, flush=True)
EOF
	in_client timeout 20 python3 "$WORK/slow.py" "$NODE" "$HCPORT" 80 9 >"$WORK/slow.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	for _ in $(seq 100); do
		grep -q opened "$WORK/slow.out" && break
		sleep 0.05
	done
	t0=$EPOCHREALTIME
	code=$(hc /)
	t1=$EPOCHREALTIME
	log "second client: $code in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') s"
	[ "$code" = 200 ] || fail "second client got ${code:-nothing} while slow clients held the port" || ok=1
	awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 2) }' || fail "second client waited >= 2 s" || ok=1
	mctl status >/dev/null || fail "meshd API does not answer" || ok=1
	wait "$pid"
	log "slow clients: $(tr '\n' ' ' <"$WORK/slow.out")"
	grep -q "closed 80 of 80" "$WORK/slow.out" || fail "slow connections not all closed: $(cat "$WORK/slow.out")" || ok=1
	meshd_alive || fail "meshd died" || ok=1
	return $ok
}

test_address_change() {
	local ok=0
	in_node ip addr add 10.10.0.50/32 dev to-client || fail "addr add" || return 1
	in_node ip addr add 10.10.7.1/32 dev to-be1 || fail "addr add" || return 1
	apply_np || return 1
	wait_for "$(svc_q 10.10.0.50 30080 tcp) | length == 1" || ok=1
	[ "$(mctl -o json service list | jq -r "$(svc_q 10.10.7.1 30080 tcp) | length")" = 0 ] ||
		fail "NodePort on 10.10.7.1, outside --nodeport-addresses" || ok=1
	log "node addresses: $(st '.kubernetes.node_addresses | join(",")')"
	in_client ip route add 10.10.0.50/32 via "$NODE" 2>/dev/null
	in_client timeout 30 python3 "$TOPO_ECHO" tcp 10.10.0.50 30080 -n 4 \
		>"$WORK/c.out" 2>&1 || fail "client via the new address: $(tail -n 2 "$WORK/c.out")" || ok=1
	in_node ip addr del 10.10.0.50/32 dev to-client
	in_node ip addr del 10.10.7.1/32 dev to-be1
	wait_for "$(svc_q 10.10.0.50 30080 tcp) | length == 0" || ok=1
	wait_for "$(svc_q 10.10.0.50 30081 tcp) | length == 0" || ok=1
	return $ok
}

# tc only: the reverse NAT of a reply happens at tc ingress of the backend's
# link, before routing, and the reply then carries the node's own address as
# its source: the kernel forwards it only with accept_local (XDP with
# --fib-forward redirects it past the routing decision, see README).
test_cluster_tc() {
	local ok=0 i n0 n1
	for i in to-be1 to-be2 to-be3; do
		in_node sysctl -qw "net.ipv4.conf.$i.accept_local=1" || fail "sysctl" || return 1
	done
	apply_np || return 1
	meshd_restart --kubeconfig "$WORK/kubeconfig" --xdp-mode off || return 1
	if in_node ip link show to-client | grep -q ' xdp'; then
		fail "XDP still attached to to-client: $(in_node ip link show to-client)" || ok=1
	fi
	wait_for "$(svc_q "$NODE" 30080 tcp) | length == 1 and (.[0].backends | length) == 2" ||
		return 1
	mctl conntrack flush >/dev/null || fail "conntrack flush" || ok=1 # as test_cluster_xdp
	n0=$(st '.counters.lb_new')
	in_client timeout 30 python3 "$TOPO_ECHO" tcp "$NODE" 30080 -n 10 --expect be1,be2 \
		>"$WORK/c.out" 2>&1 || fail "TCP over tc: $(tail -n 2 "$WORK/c.out")" || ok=1
	log "tcp: $(tail -n 1 "$WORK/c.out")"
	in_client timeout 30 python3 "$TOPO_ECHO" udp "$NODE" 30080 -n 10 --expect be1,be2 \
		>"$WORK/c.out" 2>&1 || fail "UDP over tc: $(tail -n 2 "$WORK/c.out")" || ok=1
	log "udp: $(tail -n 1 "$WORK/c.out")"
	n1=$(st '.counters.lb_new')
	log "lb_new $n0 -> $n1"
	[ "$((n1 - n0))" -ge $((20 - NEW_SLACK)) ] ||
		fail "lb_new grew by $((n1 - n0)), want >= $((20 - NEW_SLACK)) (tc)" || ok=1
	return $ok
}

test_removed() {
	local ok=0
	CTL ctl "$PORTS" '{"op": "delete", "kind": "services", "namespace": "default", "name": "lb"}' \
		>/dev/null || fail "delete" || return 1
	wait_for "$(svc_q "$NODE" 30081 tcp) | length == 0" || ok=1
	for _ in $(seq 40); do
		hc / >/dev/null 2>&1 || break
		sleep 0.05
	done
	if hc / >/dev/null 2>&1; then
		fail "the health port still answers after the Service went" || ok=1
	fi
	[ "$(mctl -o json service list | jq -r "$(svc_q "$NODE" 30080 tcp) | length")" = 1 ] ||
		fail "np's NodePort went too" || ok=1
	return $ok
}

ALL=(addresses cluster_xdp ipv6 local_socket local_none local_one slowloris address_change cluster_tc
	removed)

start_api() {
	PORTS=$WORK/ports
	nsenter --net="/var/run/netns/$TOPO_NS_NODE" python3 "$K8S/apiserver.py" \
		--port-file "$PORTS" >"$WORK/api.log" 2>&1 &
	BG_PIDS+=($!)
	for _ in $(seq 100); do
		[ -s "$PORTS" ] && break
		sleep 0.05
	done
	[ -s "$PORTS" ] || return 1
	CTL ctl "$PORTS" '{"op": "set", "bookmark_interval": 0.5}' >/dev/null || return 1
	cat >"$WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: stand-in
  cluster:
    server: http://127.0.0.1:$(jq -r .api "$PORTS")
contexts:
- name: test
  context: {cluster: stand-in, user: sluice}
users:
- name: sluice
  user: {}
EOF
}

main() {
	local t0 name
	local -a todo=("$@")
	[ ${#todo[@]} -gt 0 ] || todo=("${ALL[@]}")
	meshd_suite_check "${todo[@]}"
	t0=$SECONDS
	topo__install_traps
	WORK=$(mktemp -d "/tmp/sluice-k8s-nodeport.XXXXXX") || exit 1
	SOCK=$WORK/meshd.sock
	STATE=$WORK/state.json
	LOG=$WORK/meshd.log
	: >"$LOG"
	mkdir "$CG" || meshd_setup_fail "cannot create $CG"
	echo "# topology $TOPO_ID, pins $PIN, cgroup $CG"
	topo__up || meshd_setup_fail "topology did not come up"
	start_api || meshd_setup_fail "API server did not start: $(cat "$WORK/api.log")"
	export NODE_NAME=n1
	meshd_start --kubeconfig "$WORK/kubeconfig" --state-missing empty ||
		meshd_setup_fail "$(cat "$WORK/reason")"
	for name in "${todo[@]}"; do
		scenario "$name"
	done
	echo "# e2e k8s nodeport: $FAILED failed scenario(s) in $((SECONDS - t0))s"
	[ "$FAILED" -eq 0 ]
}

main "$@"
