#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo-cluster.sh - Sluice as kube-proxy on a small cluster: nodes, pods and an
# API server made of network namespaces, one meshd per node, a ClusterIP
# reached across nodes. `make demo-cluster` runs it.
#
# Contract: builds the cluster of scripts/lib/cluster.sh (2 nodes by default,
# 3 pods each; --nodes 3 for three), feeds every node's meshd the same
# Service and EndpointSlice through the stand-in API server, shows each
# node's `meshctl service list`, connections from pods on node1 to pods on
# node2 through the tc path (n1p1) and the socket LB (n1p3), who answered,
# the counters and conntrack that tell the two apart, a pod terminating
# (weight 0 on every node) and node1's metrics. Exits non-zero if a check
# failed. With --keep it prints how to look around and waits for Enter (or,
# stdin not a terminal, for SIGINT/SIGTERM) before tearing down. Everything
# it creates (namespaces, meshd, pins, cgroups, servers, temp files) is
# removed at exit, also on failure or Ctrl-C.
# Nothing touches the host's interfaces. Needs root and a built tree.
# Usage: demo-cluster.sh [--keep] [--nodes 2|3]
# endpoints prints words on purpose; `a && b || die` is the house idiom
# shellcheck disable=SC2046,SC2015
set -u
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the tree

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEEP=0
NODES=2
usage() {
	echo "Usage: ${0##*/} [--keep] [--nodes 2|3]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--keep) KEEP=1 ;;
	--nodes)
		[ $# -ge 2 ] && [[ $2 =~ ^[23]$ ]] || usage
		NODES=$2
		shift
		;;
	-h | --help)
		sed -n '4,20p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) usage ;;
	esac
	shift
done

# shellcheck disable=SC2034 # read by cluster.sh
CLUSTER_PREFIX=sluice-cl CLUSTER_NODES=$NODES CLUSTER_PODS=3
# shellcheck source=SCRIPTDIR/lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"
VIP=10.96.0.10
PORT=80
SVC=$VIP:$PORT/tcp

if [ -t 1 ]; then
	B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'
else
	B='' D='' N=''
fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
note() { printf '%s    %s%s\n' "$D" "$*" "$N"; }
die() {
	printf 'demo-cluster: %s\n' "$*" >&2
	exit 1
}
DEMO_RC=0
# mctl NODE ARGS...: show and run meshctl against NODE's meshd.
mctl() {
	printf '%s    [node%s] $ meshctl %s%s\n' "$D" "$1" "${*:2}" "$N"
	cluster__meshctl "$@" | sed 's/^/    /'
	[ "${PIPESTATUS[0]}" -eq 0 ] || DEMO_RC=1
}
# from NODE POD tc|sock ECHO-ARGS...: echo.py tcp from that pod.
from() {
	local run=cluster__pod
	[ "$3" = sock ] && run=cluster__pod_cg
	printf '%s    [pod %s%s] $ echo.py tcp %s%s\n' "$D" "$(cluster__pod_name "$1" "$2")" \
		"$([ "$3" = sock ] && echo ", in node$1's cgroup")" "${*:4}" "$N"
	$run "$1" "$2" timeout 60 python3 "$CLUSTER_ECHO" tcp "${@:4}" | sed 's/^/    /'
	[ "${PIPESTATUS[0]}" -eq 0 ] || DEMO_RC=1
}
# endpoints NODE [CONDITION]: pods 2 and 3 of NODE as endpoints.
endpoints() { echo "$(cluster__ep "$1" 2 "${2:-}") $(cluster__ep "$1" 3 "${2:-}")"; }

topology() {
	local n
	cat <<EOF
    API server (stand-in) on $CLUSTER_API_ADDR, on the node network 10.40.0.0/24
       |
EOF
	for ((n = 1; n <= NODES; n++)); do
		printf '    node%s %s   pods %s, %s, %s  (10.244.%s.0/24)   meshd NODE_NAME=node%s\n' \
			"$n" "$(cluster__node_addr "$n")" "$(cluster__pod_name "$n" 1)" \
			"$(cluster__pod_name "$n" 2)" "$(cluster__pod_name "$n" 3)" "$n" "$n"
	done
	cat <<EOF

    Each node is a network namespace with its own meshd (own pins, state file,
    API socket, cgroup), tc on its uplink eth0 and on every pod veth lxc*, and
    the socket LB on its cgroup. Each pod runs an echo server on :8080 that
    tells the client its name. Nodes route each other's pod CIDRs.
EOF
}

main() {
	local n
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF, cgroups)"
	[ -x "$CLUSTER_MESHD" ] && [ -x "$CLUSTER_MESHCTL" ] || die "build/meshd is missing: run 'make' first"
	cluster__install_traps

	say "Building a $NODES-node cluster out of namespaces"
	topology
	cluster__up || die "could not bring the cluster up"
	note "namespaces: $CLUSTER_ID-net, $CLUSTER_ID-n1.., $CLUSTER_ID-n1p1.., $CLUSTER_NS_CLIENT"

	say "A Service web, ClusterIP $VIP:$PORT, whose pods all run on node2"
	note "applied once to the API server; every node's meshd watches it"
	cluster__apply web $VIP $PORT 8080 $(endpoints 2) || die "apply failed"
	cluster__wait_backends "$SVC" \
		"$(cluster__pod_addr 2 2):8080=1 $(cluster__pod_addr 2 3):8080=1" || die "not synced"
	for ((n = 1; n <= NODES; n++)); do
		mctl "$n" service list
	done

	say "From pod n1p1 on node1 to the ClusterIP: the tc path"
	note "n1p1's process is in no Sluice cgroup: its SYN leaves the pod, tc on"
	note "node1's lxc1 picks a pod (Maglev) and rewrites the destination; node1"
	note "routes it to node2; the reply is rewritten back to the VIP on node1's eth0."
	from 1 1 tc $VIP $PORT -n 4 --show
	from 1 1 tc $VIP $PORT -n 100 --table
	mctl 1 conntrack list "$SVC" -o json | sed -n '1,14p'

	say "Another pod on node1, n1p3, its process in node1's cgroup: the socket LB"
	note "connect() itself goes to a pod's address: no per-packet NAT, no"
	note "conntrack entry; getpeername() still says $VIP:$PORT. (Not n1p1 again:"
	note "a balanced and a later direct connection from one pod can share a wire"
	note "tuple - README, Limits.)"
	from 1 3 sock $VIP $PORT -n 4 --show
	from 1 3 sock $VIP $PORT -n 100 --table
	printf '%s    [node1] $ meshctl status | grep -A1 "Socket LB"%s\n' "$D" "$N"
	cluster__meshctl 1 status | grep -A1 '^Socket LB' | sed 's/^/    /'

	say "The same pods behind a NodePort, from a client outside the cluster"
	note "nodePort 30080 on every node's address; the client asks node1, the pods"
	note "are on node2 (externalTrafficPolicy Cluster): node1 rewrites the"
	note "destination to a pod AND the source to its own address and a port of"
	note "61000-65535 (source NAT), so the pod answers through node1."
	cluster__apply webnp 10.96.0.11 $PORT 8080 $(endpoints 2) --node-port 30080 ||
		die "apply failed"
	cluster__wait_node_backends 1 "$(cluster__node_addr 1):30080/tcp" \
		"$(cluster__pod_addr 2 2):8080=1 $(cluster__pod_addr 2 3):8080=1" || die "not synced"
	printf '%s    [client] $ echo.py tcp %s 30080 -n 100 --table%s\n' "$D" "$(cluster__node_addr 1)" "$N"
	cluster__client timeout 60 python3 "$CLUSTER_ECHO" tcp "$(cluster__node_addr 1)" 30080 -n 100 \
		--table | sed 's/^/    /'
	[ "${PIPESTATUS[0]}" -eq 0 ] || DEMO_RC=1
	printf '%s    [client] $ echo.py peer %s 30080   # what the pod saw%s\n' "$D" \
		"$(cluster__node_addr 1)" "$N"
	cluster__client timeout 10 python3 "$CLUSTER_ECHO" peer "$(cluster__node_addr 1)" 30080 |
		sed 's/^/    /'
	[ "${PIPESTATUS[0]}" -eq 0 ] || DEMO_RC=1

	say "A rollout: n2p3 terminates, a pod on node1 takes its place"
	cluster__apply web $VIP $PORT 8080 "$(cluster__ep 2 2)" "$(cluster__ep 2 3 terminating)" \
		"$(cluster__ep 1 2)" || die "apply failed"
	cluster__wait_backends "$SVC" "$(cluster__pod_addr 1 2):8080=1 $(cluster__pod_addr 2 2):8080=1 $(cluster__pod_addr 2 3):8080=0" ||
		die "not synced"
	note "a terminating endpoint is draining (weight 0) on every node: no new"
	note "connections, existing ones go on"
	for ((n = 1; n <= NODES; n++)); do
		mctl "$n" service get "$SVC"
	done
	from 2 1 tc $VIP $PORT -n 60 --table --avoid n2p3

	say "Per-node metrics: Prometheus scrapes each node at its address"
	printf '%s    $ curl http://%s/metrics | grep ...%s\n' "$D" "$(cluster__metrics 1)" "$N"
	cluster__in "$CLUSTER_NS_NET" curl -sf "http://$(cluster__metrics 1)/metrics" |
		grep -E '^sluice_(kubernetes_synced|service_info)' | sed 's/^/    /'

	if [ "$KEEP" = 1 ]; then
		say "Everything is still up until you press Enter (or Ctrl-C)"
		cat <<EOF
    meshctl on node N:  $CLUSTER_MESHCTL -s $CLUSTER_TMP/nN/meshd.sock service list
    a shell in a pod:   nsenter --net=/run/netns/$CLUSTER_ID-n1p1 bash
    a client:           nsenter --net=/run/netns/$CLUSTER_ID-n1p1 python3 $CLUSTER_ECHO tcp $VIP $PORT -n 10 --table
    meshd logs:         $CLUSTER_TMP/nN/meshd.log
EOF
		if [ -t 0 ]; then
			read -r _ || true
		else
			note "not a terminal: Ctrl-C (SIGINT or SIGTERM) tears it all down"
			while :; do sleep 1; done
		fi
	fi
	if [ "$DEMO_RC" -eq 0 ]; then
		say "Done: every check passed; removing namespaces, meshd, pins and cgroups"
	else
		say "Done, but some check above failed (see 'error:' lines); cleaning up"
	fi
	return "$DEMO_RC"
}

main
