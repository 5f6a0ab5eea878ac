#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_cluster.sh - several nodes, one cluster: the namespace cluster of
# scripts/lib/cluster.sh (2 nodes, 4 pods each, one meshd per node fed by the
# stand-in API server) carrying real connections between pods of different
# nodes.
#
# Contract: one "PASS: e2e/cluster_<name> (Ns)" or "FAIL: e2e/cluster_<name>:
# <reason>" line per scenario, in this order; pods nNp1 (tc path) and nNp4
# (socket LB) are each node's clients and never backends (but in hairpin),
# nNp2 and nNp3 the backends:
#   topology         without any Service: each node's pod 1 reaches pod 2 of
#                    every node directly, the client every node's metrics port
#   synced           a Service over the 4 backend pods of both nodes: every
#                    node shows it with the same backends, weights and
#                    source kubernetes, and the same service list
#   clusterip_sock   a ClusterIP whose endpoints are all on the other node,
#                    from a pod process in the node's cgroup (socket LB), both
#                    directions: 20 connections spread over both remote pods,
#                    getpeername() the VIP; the node's socket LB counted 20
#                    connects and its datapath no new flow
#   clusterip_tc     the same from a pod process outside the cgroup: the tc
#                    program on the pod's host-side veth balances it (20 new
#                    flows on that node, conntrack entries to the VIP), the
#                    remote node's datapath balances nothing
#   clusterip_udp    the same two with UDP flows (fresh socket each): socket
#                    LB sendmsg() counted, or tc new flows and conntrack
#   local_policy     internalTrafficPolicy Local over pods of both nodes: each
#                    node programs only its own pods (NODE_NAME vs nodeName);
#                    each node's pod reaches only those, on both paths
#   nodeport_cluster NodePort (TCP and UDP) on node1 with endpoints on node2
#                    only, from the client on the node network: works through
#                    source NAT; the pod saw node1's address and a port of
#                    61000-65535 (echo.py peer)
#   lb_cluster       a LoadBalancer IP and an externalIP (Cluster) routed by
#                    the client to node1, endpoints on node2 only: works
#                    through source NAT to node1's address (meshd's
#                    --snat-address auto), the pod saw node1's address and
#                    a port of 61000-65535, the client the VIP's
#   nodeport_local   externalTrafficPolicy Local, endpoint on node1 only: via
#                    node1 the pod sees the client's own address; node2 drops
#                    (no answer, no_local_backend counted); healthCheckNodePort
#                    200 on node1, 503 on node2, kube-proxy's JSON body
#   hairpin          a pod reaching a Service whose only endpoint is itself,
#                    on the tc path and through the socket LB
#   restart          node1's meshd is killed (SIGKILL) and restarted under
#                    steady traffic from both nodes' pods (socket LB and tc)
#                    to a Service over both nodes' pods, one pod joining
#                    while it is down (node1 programs it once back): zero
#                    failed connections on node2 and on node1, node2's traffic
#                    reached node1's pods meanwhile, and 16 connections node1's
#                    pods opened before (8 socket LB, 8 tc) still echo
#   rolling_update   endpoints move from node1's pods to node2's under steady
#                    traffic from both nodes (socket LB on node1, tc on node2):
#                    surge (4 ready), old ones terminating (weight 0 on every
#                    node), then removed and their servers stopped; zero failed
#                    connections, and no connection started after every node
#                    showed the old pods draining was answered by one of them
# A scenario is one function test_NAME that returns non-zero with the reason
# on stderr (first line kept); add its name to SCENARIOS. External traffic
# (NodePort) scenarios: the client namespace ($CLUSTER_NS_CLIENT, cluster__client)
# is on the node network and reaches every node at cluster__node_addr N;
# cluster__apply ... --node-port N (or --spec JSON) makes the Service; tc is
# on every node's eth0 (CLUSTER_XDP_MODE=native for XDP). Everything (namespaces,
# meshd, pins, cgroups, servers, temp files) is removed on exit, failure or
# interruption. Needs root, python3 and `make` (build/meshd, build/meshctl).
# About 50 s (more on a loaded machine).
# Usage: test_cluster.sh [SCENARIO...]
# eps prints endpoint words on purpose; `a && b || fail` is the house idiom
# shellcheck disable=SC2046,SC2015
set -u
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the tree

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck disable=SC2034 # read by cluster.sh
CLUSTER_PREFIX=scl CLUSTER_NODES=2 CLUSTER_PODS=4
# shellcheck source=SCRIPTDIR/../../scripts/lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"
ECHO=$CLUSTER_ECHO
LOAD=$ROOT/tests/e2e/load.py
PORT=80
FAILED=0
WORK=
declare -A LOAD_PID=() LOAD_FILE=() HOLD_PID=()
CURRENT=

# Clients: pod 1 of a node uses the tc path, pod 4 the socket LB (its
# processes in the node's cgroup). Never the same pod for both: issue #13's
# conntrack bug (the REPLY entry of a closed tc flow rewrites the answer to
# a later direct connection from the same address and port, as a socket-LB
# connection is) makes them interfere now and then. client MODE: the pod.
client() { if [ "$1" = sock ]; then echo 4; else echo 1; fi; }

# Backend pods (p2, p3 of each node) as cluster_k8s.py endpoints.
eps() { # NODE... [@CONDITION]: endpoints of pods 2 and 3 of these nodes
	local n cond=
	[[ ${*: -1} == @* ]] && cond=${*: -1} && cond=${cond#@} && set -- "${@:1:$#-1}"
	for n; do
		echo "$(cluster__ep "$n" 2 "$cond") $(cluster__ep "$n" 3 "$cond")"
	done
}
# Backends as cluster__backends prints them: pods 2, 3 of NODE..., weight W.
want() { # W NODE...
	local w=$1 n out=()
	for n in "${@:2}"; do
		out+=("$(cluster__pod_addr "$n" 2):8080=$w" "$(cluster__pod_addr "$n" 3):8080=$w")
	done
	printf '%s\n' "${out[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
pods() { # NODE...: pod names of pods 2, 3 of these nodes, comma-separated
	local n out=()
	for n; do out+=("$(cluster__pod_name "$n" 2)" "$(cluster__pod_name "$n" 3)"); done
	(IFS=,; echo "${out[*]}")
}

# load_start ID NODE sock|tc VIP: load.py from that node's client until load_stop.
load_start() {
	local id=$1 i
	LOAD_FILE[$id]=$WORK/load-$id
	cluster__pod_bg "$2" "$(client "$3")" "$3" timeout 120 python3 "$LOAD" "$4" "$PORT" \
		--stop "$WORK/stop" --log "${LOAD_FILE[$id]}.log" --ready "${LOAD_FILE[$id]}.ready" \
		>"${LOAD_FILE[$id]}.out" 2>&1
	LOAD_PID[$id]=$CLUSTER_LAST_PID
	for ((i = 0; i < 200; i++)); do
		[ -e "${LOAD_FILE[$id]}.ready" ] && return 0
		sleep 0.05
	done
	echo "load $id made no connection in 10 s: $(cat "${LOAD_FILE[$id]}.out")" >&2
	return 1
}

# load_stop: stop every load; each one's summary printed; fails if any failed.
load_stop() {
	local id rc=0
	touch "$WORK/stop"
	for id in "${!LOAD_PID[@]}"; do
		wait "${LOAD_PID[$id]}" || {
			echo "load $id: $(head -n 3 "${LOAD_FILE[$id]}.out" | tr '\n' ' ')" >&2
			grep -m 3 ' FAIL ' "${LOAD_FILE[$id]}.log" | sed "s/^/  $id failed at /" >&2
			rc=1
		}
		echo "  $id: $(head -n 1 "${LOAD_FILE[$id]}.out")"
	done
	LOAD_PID=()
	rm -f "$WORK/stop"
	return $rc
}

# load_answered ID SINCE NAMES: backends among NAMES (comma-separated) that
# answered connections of load ID started at or after epoch SINCE.
load_answered() {
	awk -v since="$2" -v names=",$3," '$2 == "OK" && $1 >= since && index(names, "," $3 ",") { print $3 }' \
		"${LOAD_FILE[$1]}.log" | sort | uniq -c | tr '\n' ' '
}

# hold_start ID NODE sock|tc VIP N: N connections from that node's client kept open.
hold_start() {
	local id=$1 i
	cluster__pod_bg "$2" "$(client "$3")" "$3" timeout 120 python3 "$ECHO" hold "$4" "$PORT" -n "$5" \
		--ready "$WORK/hold-$id.ready" --go "$WORK/go-$id" >"$WORK/hold-$id.out" 2>&1
	HOLD_PID[$id]=$CLUSTER_LAST_PID
	for ((i = 0; i < 200; i++)); do
		[ -e "$WORK/hold-$id.ready" ] && return 0
		kill -0 "$CLUSTER_LAST_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "hold $id: not ready: $(cat "$WORK/hold-$id.out")" >&2
	return 1
}

# hold_check ID: after the go signal, every held connection still echoes.
hold_check() {
	touch "$WORK/go-$1"
	wait "${HOLD_PID[$1]}" || {
		echo "held connections $1 broke: $(tr '\n' ' ' <"$WORK/hold-$1.out")" >&2
		return 1
	}
	echo "  hold $1: $(head -n 1 "$WORK/hold-$1.out")"
}

# service_lists_equal: every node's `service list -o json`, without stats
# and ids, is the same.
service_lists_equal() {
	local n first='' cur
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		cur=$(cluster__meshctl "$n" -o json service list | python3 -c '
import json, sys
d = json.load(sys.stdin)["services"]
print(json.dumps(sorted([{k: v for k, v in s.items() if k in ("name", "vip", "port", "protocol", "source")}
                         | {"backends": sorted((b["address"], b["port"], b["weight"], b["state"])
                                               for b in s["backends"])} for s in d],
                        key=lambda s: (s["vip"], s["port"])), sort_keys=True))') || return 1
		if [ -z "$first" ]; then
			first=$cur
		elif [ "$cur" != "$first" ]; then
			echo "node$n's services differ from node1's: $cur vs $first" >&2
			return 1
		fi
	done
}

# Plain routing first, so a topology fault never reads as a datapath one.
test_topology() {
	local n k out
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		for ((k = 1; k <= CLUSTER_NODES; k++)); do
			out=$(cluster__pod "$n" 1 timeout 10 python3 "$ECHO" tcp "$(cluster__pod_addr "$k" 2)" 8080 \
				-n 1 --expect "$(cluster__pod_name "$k" 2)") ||
				{ echo "pod n${n}p1 -> pod n${k}p2 directly: $out" >&2 && return 1; }
		done
		cluster__client curl -sf --max-time 5 -o /dev/null "http://$(cluster__metrics "$n")/metrics" ||
			{ echo "client -> node$n's metrics at $(cluster__metrics "$n") failed" >&2 && return 1; }
	done
	echo "  every node's pod reaches pods on every node; the client reaches every node"
}

test_synced() {
	local n src
	cluster__apply web 10.96.0.10 $PORT 8080 $(eps 1 2) &&
		cluster__wait_backends 10.96.0.10:$PORT/tcp "$(want 1 1 2)" || return 1
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		src=$(cluster__meshctl "$n" -o json service get 10.96.0.10:$PORT/tcp |
			python3 -c 'import json,sys;d=json.load(sys.stdin);print(d["source"], d["name"])')
		[ "$src" = "kubernetes default/web:p" ] ||
			{ echo "node$n: source/name \"$src\", want kubernetes default/web:p" >&2 && return 1; }
	done
	service_lists_equal
}

# counters: "connects datagrams new-flows" of node1 then node2 (socket-LB
# connect()s and sendmsg()s, datapath new flows), one python for both nodes.
counters() {
	python3 -c '
import json, subprocess, sys
for sock in sys.argv[2:]:
    s = json.loads(subprocess.run([sys.argv[1], "-s", sock, "--timeout", "5000", "-o", "json", "status"],
                                  check=True, capture_output=True).stdout)
    c = s["socket_lb"]["counters"]
    print(c["connect"], c["sendmsg"], s["counters"]["lb_new"], end=" ")' \
		"$CLUSTER_MESHCTL" "$(cluster__sock 1)" "$(cluster__sock 2)"
}

# remote_conns MODE PROTO: from each node's client pod of MODE, 20 flows (tcp or udp) to a
# ClusterIP whose endpoints are all on the other node; checks the counters
# of MODE (sock: the socket LB balanced them, tc: the tc program did).
remote_conns() {
	local mode=$1 proto=$2 n other vip svc ct b0 b1 c0 o0 c1 o1 d_sock d_new d_onew out
	local run=cluster__pod want_sock=0 want_new=20
	[ "$mode" = sock ] && run=cluster__pod_cg want_new=0
	for ((n = 1; n <= 2; n++)); do
		other=$((3 - n))
		vip=10.96.0.$([ "$proto" = tcp ] && echo 2 || echo 5)$n
		svc=$vip:$PORT/$proto
		cluster__apply "remote$proto$n" "$vip" $PORT 8080 $(eps "$other") --proto "${proto^^}" &&
			cluster__wait_backends "$svc" "$(want 1 "$other")" || return 1
		read -r -a b0 <<<"$(counters)" || return 1
		out=$($run "$n" "$(client "$mode")" timeout 30 python3 "$ECHO" "$proto" "$vip" $PORT -n 20 \
			--expect "$(pods "$other")" --min-share 0.1) ||
			{ echo "node$n -> $svc ($mode): $(tr '\n' ' ' <<<"$out")" >&2 && return 1; }
		echo "  node$n pod $(cluster__pod_name "$n" "$(client "$mode")") ($mode): $out"
		read -r -a b1 <<<"$(counters)" || return 1
		# node n's three counters, then the other node's
		c0=("${b0[@]:3*(n-1):3}") c1=("${b1[@]:3*(n-1):3}")
		o0=("${b0[@]:3*(other-1):3}") o1=("${b1[@]:3*(other-1):3}")
		# tcp: connect()s; udp: sendmsg()s, 2 per flow (whoami, echo) and retries
		if [ "$proto" = tcp ]; then
			d_sock=$((c1[0] - c0[0]))
			[ "$mode" = sock ] && want_sock=20
		else
			d_sock=$((c1[1] - c0[1]))
			[ "$mode" = sock ] && want_sock=40
		fi
		d_new=$((c1[2] - c0[2]))
		d_onew=$((o1[2] - o0[2]))
		echo "  node$n: socket LB +$d_sock, datapath new flows +$d_new; node$other: +$d_onew"
		if [ "$mode" = sock ]; then
			[ "$d_sock" -ge "$want_sock" ] && [ "$d_new" -eq 0 ] ||
				{ echo "node$n: socket LB +$d_sock (want $want_sock), new flows +$d_new (want 0)" >&2 && return 1; }
		else
			[ "$d_sock" -eq 0 ] && [ "$d_new" -eq "$want_new" ] ||
				{ echo "node$n: socket LB +$d_sock (want 0), tc new flows +$d_new (want $want_new)" >&2 && return 1; }
			ct=$(cluster__meshctl "$n" -o json conntrack list "$svc" | python3 -c '
import json, sys
print(sum(e["client"].startswith(sys.argv[1] + ":") and e["state"] == "confirmed"
          for e in json.load(sys.stdin)["entries"]))' "$(cluster__pod_addr "$n" 1)")
			echo "  node$n: $ct confirmed conntrack entries from $(cluster__pod_name "$n" 1) to $svc"
			[ "$ct" -ge 20 ] || { echo "node$n: $ct conntrack entries for $svc, want 20" >&2 && return 1; }
		fi
		[ "$d_onew" -eq 0 ] || { echo "node$other balanced $d_onew flows too" >&2 && return 1; }
	done
}

test_clusterip_sock() { remote_conns sock tcp; }
test_clusterip_tc() { remote_conns tc tcp; }
test_clusterip_udp() { remote_conns sock udp && remote_conns tc udp; }

# internalTrafficPolicy Local: each node keeps only its own endpoints
# (NODE_NAME against the endpoints' nodeName), so each node's pods reach
# only their node's pods, on both paths.
test_local_policy() {
	local vip=10.96.0.60 n out
	cluster__apply local $vip $PORT 8080 $(eps 1 2) --spec '{"internalTrafficPolicy": "Local"}' || return 1
	for ((n = 1; n <= 2; n++)); do
		cluster__wait_node_backends "$n" "$vip:$PORT/tcp" "$(want 1 "$n")" || return 1
	done
	for ((n = 1; n <= 2; n++)); do
		out=$(cluster__pod "$n" 1 timeout 30 python3 "$ECHO" tcp $vip $PORT -n 20 \
			--expect "$(pods "$n")" --min-share 0.1) &&
			echo "  node$n (tc): $out" &&
			out=$(cluster__pod_cg "$n" 4 timeout 30 python3 "$ECHO" tcp $vip $PORT -n 20 \
				--expect "$(pods "$n")" --min-share 0.1) &&
			echo "  node$n (sock): $out" ||
			{ echo "node$n -> $vip: $(tr '\n' ' ' <<<"$out")" >&2 && return 1; }
	done
}

test_restart() {
	local vip=10.96.0.30 id n mode rc=0 three
	# n2p3 joins while node1's meshd is down: the restarted one catches up
	three="$(want 1 1) $(cluster__pod_addr 2 2):8080=1"
	cluster__apply restart $vip $PORT 8080 $(eps 1) "$(cluster__ep 2 2)" &&
		cluster__wait_backends "$vip:$PORT/tcp" "$(tr ' ' '\n' <<<"$three" | sort | tr '\n' ' ' | sed 's/ $//')" ||
		return 1
	hold_start n1sock 1 sock $vip 8 && hold_start n1tc 1 tc $vip 8 || return 1
	for id in n1sock:1:sock n1tc:1:tc n2sock:2:sock n2tc:2:tc; do
		IFS=: read -r id n mode <<<"$id"
		load_start "$id" "$n" "$mode" $vip || return 1
	done
	sleep 1
	cluster__meshd_kill 1 KILL
	echo "  $EPOCHREALTIME node1 meshd killed; traffic goes on; n2p3 joins the Service meanwhile"
	cluster__apply restart $vip $PORT 8080 $(eps 1 2) &&
		cluster__wait_node_backends 2 "$vip:$PORT/tcp" "$(want 1 1 2)" || rc=1
	sleep 0.5
	echo "  $EPOCHREALTIME node1 meshd starts"
	cluster__meshd_start 1 && cluster__wait_synced 20 &&
		cluster__wait_backends "$vip:$PORT/tcp" "$(want 1 1 2)" &&
		echo "  $EPOCHREALTIME node1 meshd back, synced, n2p3 programmed on both nodes" || rc=1
	sleep 1
	load_stop || rc=1
	hold_check n1sock || rc=1
	hold_check n1tc || rc=1
	[ -n "$(load_answered n2tc 0 "$(pods 1)")" ] && [ -n "$(load_answered n2sock 0 "$(pods 1)")" ] ||
		{ echo "node2's traffic never reached node1's pods" >&2 && rc=1; }
	return $rc
}

test_rolling_update() {
	local vip=10.96.0.40 rc=0 drained old
	old=$(pods 1)
	cluster__apply roll $vip $PORT 8080 $(eps 1) &&
		cluster__wait_backends "$vip:$PORT/tcp" "$(want 1 1)" || return 1
	load_start n1sock 1 sock $vip && load_start n2tc 2 tc $vip || return 1
	sleep 0.5
	# surge: the new pods on node2 become ready
	cluster__apply roll $vip $PORT 8080 $(eps 1 2) &&
		cluster__wait_backends "$vip:$PORT/tcp" "$(want 1 1 2)" && sleep 0.5 &&
		echo "  surge: 4 ready endpoints on every node" &&
		# the old pods terminate: no new connections, existing ones go on
		cluster__apply roll $vip $PORT 8080 $(eps 1 @terminating) $(eps 2) &&
		cluster__wait_backends "$vip:$PORT/tcp" "$(want 0 1) $(want 1 2)" &&
		drained=$EPOCHREALTIME && sleep 0.5 &&
		echo "  node1's pods terminating (weight 0) on every node" &&
		cluster__apply roll $vip $PORT 8080 $(eps 2) &&
		cluster__wait_backends "$vip:$PORT/tcp" "$(want 1 2)" &&
		echo "  node1's pods removed on every node; their servers stop" || rc=1
	cluster__pod_stop 1 2
	cluster__pod_stop 1 3
	sleep 0.5
	load_stop || rc=1
	cluster__pod_serve 1 2 && cluster__pod_serve 1 3 || rc=1
	[ "$rc" -eq 0 ] || return 1
	for id in n1sock n2tc; do
		[ -z "$(load_answered "$id" "$drained" "$old")" ] ||
			{ echo "load $id: connections started after the drain answered by: $(load_answered "$id" "$drained" "$old")" >&2 && rc=1; }
		[ -n "$(load_answered "$id" 0 "$old")" ] && [ -n "$(load_answered "$id" 0 "$(pods 2)")" ] ||
			{ echo "load $id did not see both old and new pods" >&2 && rc=1; }
	done
	return $rc
}

# node_drops N REASON: node N's datapath drop counter of REASON.
node_drops() {
	cluster__meshctl "$1" -o json status | python3 -c '
import json, sys
print(json.load(sys.stdin)["drops"].get(sys.argv[1], 0))' "$2"
}

# peer_of FROM... : "NAME ADDR:PORT" as a backend saw the connection (echo.py peer).
peer_of() { "$@" timeout 10 python3 "$ECHO" peer "${PEER_ARGS[@]}"; }

# NodePort, externalTrafficPolicy Cluster: the client (on the node network)
# reaches node1's address:30080 whose endpoints are all on node2. node2's
# pods route the client's network straight out of node2, so without source
# NAT their answers would never reach the client; with it the pods see
# node1's address and a port of 61000-65535, and answer through node1.
test_nodeport_cluster() {
	local a1 out peer proto
	a1=$(cluster__node_addr 1)
	for proto in tcp udp; do
		cluster__apply "np$proto" 10.96.0.7${#proto} $PORT 8080 $(eps 2) --node-port 3008${#proto} \
			--proto "${proto^^}" || return 1
	done
	cluster__wait_node_backends 1 "$a1:30083/tcp" "$(want 1 2)" &&
		cluster__wait_node_backends 1 "$a1:30083/udp" "$(want 1 2)" || return 1
	for proto in tcp udp; do
		out=$(cluster__client timeout 30 python3 "$ECHO" $proto "$a1" 30083 -n 20 \
			--expect "$(pods 2)" --min-share 0.1) ||
			{ echo "client -> $a1:30083/$proto: $(tr '\n' ' ' <<<"$out")" >&2 && return 1; }
		echo "  client -> node1:30083/$proto (endpoints on node2): $out"
	done
	PEER_ARGS=("$a1" 30083)
	peer=$(peer_of cluster__client) || { echo "peer: $peer" >&2 && return 1; }
	echo "  the node2 pod saw: $peer"
	[[ $peer =~ ^n2p[23]\ $a1:(6[1-5][0-9]{3})$ ]] && [ "${BASH_REMATCH[1]}" -ge 61000 ] ||
		{ echo "backend saw \"$peer\", want node1's address $a1 and a port 61000-65535" >&2 && return 1; }
}

# A LoadBalancer IP and an externalIP with externalTrafficPolicy Cluster:
# neither is a node address, so source NAT to the VIP would make node2's
# pods answer the VIP straight from node2 (lost); SNATed to node1's own
# address their answers come back through node1 and are reverse-NATed.
# The client routes both addresses to node1, as a cloud LB or BGP would.
test_lb_cluster() {
	local a1 lb=10.40.1.80 ext=10.40.1.81 vip out peer rc=0
	a1=$(cluster__node_addr 1)
	cluster__apply lbcl 10.96.0.77 $PORT 8080 $(eps 2) \
		--spec "{\"type\": \"LoadBalancer\", \"externalIPs\": [\"$ext\"]}" \
		--status "{\"loadBalancer\": {\"ingress\": [{\"ip\": \"$lb\"}]}}" &&
		cluster__wait_node_backends 1 "$lb:$PORT/tcp" "$(want 1 2)" &&
		cluster__wait_node_backends 1 "$ext:$PORT/tcp" "$(want 1 2)" || return 1
	for vip in $lb $ext; do
		ip -n "$CLUSTER_NS_CLIENT" route replace "$vip/32" via "$a1" || return 1
	done
	for vip in $lb $ext; do
		out=$(cluster__client timeout 30 python3 "$ECHO" tcp "$vip" $PORT -n 20 \
			--expect "$(pods 2)" --min-share 0.1) ||
			{ echo "client -> $vip:$PORT via node1: $(tr '\n' ' ' <<<"$out")" >&2 && rc=1 && break; }
		echo "  client -> $vip:$PORT via node1 (endpoints on node2): $out"
		PEER_ARGS=("$vip" $PORT)
		peer=$(peer_of cluster__client) || { echo "peer: $peer" >&2 && rc=1 && break; }
		echo "  the node2 pod saw: $peer"
		[[ $peer =~ ^n2p[23]\ $a1:(6[1-5][0-9]{3})$ ]] && [ "${BASH_REMATCH[1]}" -ge 61000 ] ||
			{ echo "backend saw \"$peer\", want node1's address $a1 and a port 61000-65535" >&2 && rc=1 && break; }
	done
	for vip in $lb $ext; do ip -n "$CLUSTER_NS_CLIENT" route del "$vip/32" 2>/dev/null; done
	return $rc
}

# NodePort with externalTrafficPolicy Local (a LoadBalancer Service with a
# healthCheckNodePort): the endpoint is on node1 only. Through node1 the
# pod sees the client's own address; node2 has no local endpoint: it drops
# (no RST: the connect times out, counted no_local_backend) and its
# healthCheckNodePort answers 503 while node1's answers 200, with
# kube-proxy's JSON body.
test_nodeport_local() {
	local a1 a2 out peer caddr d0 d1 code body
	a1=$(cluster__node_addr 1) a2=$(cluster__node_addr 2)
	caddr=$(ip -n "$CLUSTER_NS_CLIENT" -4 -o addr show | awk '$2 != "lo" { sub("/.*", "", $4); print $4; exit }')
	cluster__apply nplocal 10.96.0.75 $PORT 8080 "$(cluster__ep 1 2)" --node-port 30085 \
		--spec '{"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32085}' ||
		return 1
	cluster__wait_node_backends 1 "$a1:30085/tcp" "$(cluster__pod_addr 1 2):8080=1" &&
		cluster__wait_node_backends 2 "$a2:30085/tcp" "" || return 1
	PEER_ARGS=("$a1" 30085)
	peer=$(peer_of cluster__client) || { echo "peer via node1: $peer" >&2 && return 1; }
	echo "  via node1 the pod saw: $peer"
	[[ $peer == "n1p2 $caddr:"* ]] ||
		{ echo "via node1 the pod saw \"$peer\", want the client's own address $caddr" >&2 && return 1; }
	d0=$(node_drops 2 no_local_backend)
	out=$(cluster__client timeout 10 python3 "$ECHO" peer "$a2" 30085 2>&1) &&
		{ echo "node2 without a local endpoint answered: $out" >&2 && return 1; }
	d1=$(node_drops 2 no_local_backend)
	echo "  via node2: no answer ($(tr '\n' ' ' <<<"$out" | cut -c 1-80)); node2 no_local_backend +$((d1 - d0))"
	[ $((d1 - d0)) -ge 1 ] || { echo "node2 counted no no_local_backend drop" >&2 && return 1; }
	for n in 1 2; do
		body=$(cluster__client curl -s --max-time 5 -o - -w ' %{http_code}' "http://$(cluster__node_addr $n):32085/") ||
			{ echo "healthCheckNodePort of node$n: no answer" >&2 && return 1; }
		code=${body##* }
		echo "  node$n healthCheckNodePort: $code ${body% *}"
		[ "$code" = $([ $n = 1 ] && echo 200 || echo 503) ] &&
			[[ $body == *"\"localEndpoints\": $((2 - n))"* ]] ||
			{ echo "node$n healthCheckNodePort answered \"$body\"" >&2 && return 1; }
	done
}

# Hairpin: a pod connecting to a Service whose only endpoint is itself, on
# the tc path of its veth and through the socket LB.
test_hairpin() {
	local vip=10.96.0.80 out
	cluster__apply hairpin $vip $PORT 8080 "$(cluster__ep 1 2)" &&
		cluster__wait_backends $vip:$PORT/tcp "$(cluster__pod_addr 1 2):8080=1" || return 1
	out=$(cluster__pod 1 2 timeout 30 python3 "$ECHO" tcp $vip $PORT -n 10 --expect n1p2) ||
		{ echo "n1p2 -> $vip (tc): $(tr '\n' ' ' <<<"$out")" >&2 && return 1; }
	echo "  n1p2 -> its own Service (tc): $out"
	out=$(cluster__pod_cg 1 2 timeout 30 python3 "$ECHO" tcp $vip $PORT -n 10 --expect n1p2) ||
		{ echo "n1p2 -> $vip (socket LB): $(tr '\n' ' ' <<<"$out")" >&2 && return 1; }
	echo "  n1p2 -> its own Service (socket LB): $out"
}

# scenario NAME: run test_NAME, print its output and one PASS:/FAIL: line.
scenario() {
	local name=$1 t0=$EPOCHREALTIME rc
	CURRENT=$name
	test_"$name" >"$WORK/out" 2>"$WORK/err"
	rc=$?
	CURRENT=
	sed 's/^/    /' "$WORK/out"
	if [ "$rc" -eq 0 ]; then
		printf 'PASS: e2e/cluster_%s (%ss)\n' "$name" \
			"$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
		return 0
	fi
	sed 's/^/    /' "$WORK/err"
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		echo "    node$n meshd log (last 5 lines):"
		tail -n 5 "$(cluster__meshd_log "$n")" | cut -c 1-200 | sed 's/^/      /'
	done
	printf 'FAIL: e2e/cluster_%s: %s\n' "$name" "$(head -n 1 "$WORK/err" | cut -c 1-300)"
	FAILED=$((FAILED + 1))
}

# A scenario that ends the script (a bug in it, a signal) still gets its line.
# (fd 3: the suite's stdout; a trap may run while a scenario's is redirected)
exec 3>&1
cluster_on_cleanup() {
	[ -n "$CURRENT" ] || return 0
	sed 's/^/    /' "$WORK/out" "$WORK/err" >&3 2>/dev/null
	echo "FAIL: e2e/cluster_$CURRENT: the suite exited during the scenario" >&3
}

SCENARIOS=(topology synced clusterip_sock clusterip_tc clusterip_udp local_policy nodeport_cluster
	lb_cluster nodeport_local hairpin restart rolling_update)
ALL=("${SCENARIOS[@]}")
[ $# -gt 0 ] && ALL=("$@")
for sc in "${ALL[@]}"; do
	declare -F "test_$sc" >/dev/null || {
		echo "usage: $0 [SCENARIO...], scenarios: ${SCENARIOS[*]}" >&2
		exit 2
	}
done
setup_fail() {
	echo "FAIL: e2e/cluster_setup: $*"
	exit 1
}
[ "$(id -u)" -eq 0 ] || setup_fail "needs root"
[ -x "$CLUSTER_MESHD" ] && [ -x "$CLUSTER_MESHCTL" ] || setup_fail "build/meshd, build/meshctl missing: run make"
cluster__install_traps
t0=$SECONDS
# (not in $(...): cluster__up must run in this shell, whose traps tear down)
up_err=$(mktemp /tmp/sluice-cluster-up.XXXXXX)
if ! cluster__up 2>"$up_err"; then
	msg=$(tail -n 3 "$up_err" | tr '\n' ' ')
	rm -f "$up_err"
	setup_fail "$msg"
fi
rm -f "$up_err"
WORK=$CLUSTER_TMP/work
mkdir -p "$WORK"
echo "    cluster up in $((SECONDS - t0))s: $CLUSTER_NODES nodes x $CLUSTER_PODS pods ($CLUSTER_ID)"
for sc in "${ALL[@]}"; do
	scenario "$sc"
done
[ "$FAILED" -eq 0 ]
