# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# shellcheck disable=SC2034 # the CLUSTER_* names are read by the callers
#
# cluster.sh - a Kubernetes-like cluster of network namespaces, each node with
# its own meshd fed by one stand-in API server; shared by tests/e2e/test_cluster.sh
# and scripts/demo-cluster.sh.
#
# Contract: source it, call cluster__install_traps, then cluster__up. It builds
#
#   $ID-net: bridge br0 10.40.0.1/24 (the node network) + the API server
#      |            |                 |
#   $ID-n1 .11   $ID-n2 .12   ...  $ID-client .100 (external client)
#   node1        node2            (eth0 in each; routes to the other
#    |lxc1 |lxc2  |lxc1 |lxc2       nodes' pod CIDRs via their address)
#   $ID-n1p1 ... $ID-n2p2: pods 10.244.N.(10+P)/32, gateway 10.244.N.1
#
# CLUSTER_NODES (2, at most 9) nodes named node1.., CLUSTER_PODS (2, at most
# 9) pods per node named nNpP, each running tests/e2e/echo.py serve --name nNpP
# on :8080 (TCP+UDP). Node N's meshd runs with NODE_NAME=nodeN inside $ID-nN
# (nsenter --net: it sees the host's bpffs and cgroup2), pins under
# /sys/fs/bpf/$ID-nN, its state file and API socket under $CLUSTER_TMP/nN,
# metrics on 10.40.0.1N:9465, tc (--xdp-mode off unless CLUSTER_XDP_MODE) on
# eth0 and lxc*, socket LB on the child cgroup $CGROOT/$ID-nN, --kubernetes on
# against the API server at 10.40.0.1 (token auth, kubeconfig in
# $CLUSTER_TMP). CLUSTER_MESHD_FLAGS (array, or words in the environment)
# adds flags to every meshd (after these: they win); CLUSTER_INTERFACES
# replaces the interface list.
# Pod processes are in no node cgroup unless started with cluster__pod_cg, so
# they use the tc path; cluster__pod_cg NODE POD puts them in the node's cgroup
# (socket LB).
#
# Helpers (each documented where defined): cluster__node/pod/client/pod_cg/
# pod_bg run commands there; cluster__apply/delete/k8s drive the API server;
# cluster__meshctl/status/backends/wait_backends/wait_node_backends/
# wait_synced read the nodes' meshd; cluster__meshd_start/kill and
# cluster__pod_serve/stop restart agents and pods.
#
# Teardown (cluster__down) is idempotent and runs on EXIT/INT/TERM, also while
# cluster__up is half done: it calls the caller's cluster_on_cleanup hook,
# kills meshd (SIGKILL), the API server, the pods' servers and CLUSTER_BG_PIDS,
# runs `meshd --cleanup` inside each node namespace on its own pin dir, moves
# stray processes out of the node cgroups and removes them, deletes the
# namespaces (and with them every veth and tc program) and the temp dir.
# Nothing is attached outside the namespaces and cgroups made here.

CLUSTER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER_BUILD=${SLUICE_BUILD:-$CLUSTER_ROOT/build}
CLUSTER_ID=${CLUSTER_ID:-${CLUSTER_PREFIX:-slc}$$}
CLUSTER_NODES=${CLUSTER_NODES:-2}
CLUSTER_PODS=${CLUSTER_PODS:-2}
CLUSTER_XDP_MODE=${CLUSTER_XDP_MODE:-off}
CLUSTER_INTERFACES=${CLUSTER_INTERFACES:-eth0,lxc*}
CLUSTER_MESHD=$CLUSTER_BUILD/meshd
CLUSTER_MESHCTL=$CLUSTER_BUILD/meshctl
CLUSTER_ECHO=$CLUSTER_ROOT/tests/e2e/echo.py
CLUSTER_K8S=$CLUSTER_ROOT/tests/e2e/k8s
CLUSTER_OBJS=$CLUSTER_ROOT/scripts/lib/cluster_k8s.py
CLUSTER_NS_NET=$CLUSTER_ID-net
CLUSTER_NS_CLIENT=$CLUSTER_ID-client
CLUSTER_API_ADDR=10.40.0.1
CLUSTER_CLIENT_ADDR=10.40.0.100
CLUSTER_POD_PORT=8080
CLUSTER_CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CLUSTER_TMP=
CLUSTER_API_PID=
CLUSTER_BG_PIDS=()
declare -A CLUSTER_MESHD_PID=() CLUSTER_POD_PID=() CLUSTER_MESHD_READY=()
# What this run created (ns:NAME, cg:N, pin:N): teardown touches nothing else.
declare -A CLUSTER_OWN=()
CLUSTER_DOWN_DONE=0
# An array from a sourcing script, or words from the environment.
[[ $(declare -p CLUSTER_MESHD_FLAGS 2>/dev/null) == "declare -a"* ]] ||
	read -r -a CLUSTER_MESHD_FLAGS <<<"${CLUSTER_MESHD_FLAGS:-}"

cluster__log() { printf '[cluster] %s\n' "$*" >&2; }

# Names and addresses. N: node number (1..), P: pod number (1..).
cluster__node_ns() { printf '%s-n%s' "$CLUSTER_ID" "$1"; }
cluster__node_addr() { printf '10.40.0.1%s' "$1"; }
cluster__node_name() { printf 'node%s' "$1"; }
cluster__pod_name() { printf 'n%sp%s' "$1" "$2"; }
cluster__pod_ns() { printf '%s-n%sp%s' "$CLUSTER_ID" "$1" "$2"; }
cluster__pod_addr() { printf '10.244.%s.1%s' "$1" "$2"; }
cluster__pin() { printf '/sys/fs/bpf/%s-n%s' "$CLUSTER_ID" "$1"; }
cluster__cg() { printf '%s/%s-n%s' "$CLUSTER_CGROOT" "$CLUSTER_ID" "$1"; }
cluster__sock() { printf '%s/n%s/meshd.sock' "$CLUSTER_TMP" "$1"; }
cluster__state() { printf '%s/n%s/state.json' "$CLUSTER_TMP" "$1"; }
cluster__meshd_log() { printf '%s/n%s/meshd.log' "$CLUSTER_TMP" "$1"; }
cluster__metrics() { printf '%s:9465' "$(cluster__node_addr "$1")"; }
# ADDR@NODE@POD endpoint of pod N P for cluster_k8s.py, CONDITION optional.
cluster__ep() {
	printf '%s@%s@%s%s' "$(cluster__pod_addr "$1" "$2")" "$(cluster__node_name "$1")" \
		"$(cluster__pod_name "$1" "$2")" "${3:+@$3}"
}

# Run a command in a namespace, keeping the root mount namespace (bpffs and
# cgroup2 stay visible; `ip netns exec` would remount /sys).
cluster__in() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}
cluster__node() { cluster__in "$(cluster__node_ns "$1")" "${@:2}"; }
cluster__pod() { cluster__in "$(cluster__pod_ns "$1" "$2")" "${@:3}"; }
cluster__client() { cluster__in "$CLUSTER_NS_CLIENT" "$@"; }
# cluster__pod_cg N P CMD...: CMD in pod N P's namespace and node N's cgroup,
# so node N's socket LB balances its connect()s (as for a pod's process).
cluster__pod_cg() {
	local cg
	cg=$(cluster__cg "$1")
	(echo "$BASHPID" >"$cg/cgroup.procs" && exec nsenter --net="/run/netns/$(cluster__pod_ns "$1" "$2")" "${@:3}")
}
# cluster__pod_bg N P sock|tc CMD...: CMD in the background in pod N P's
# namespace (sock: in node N's cgroup too); its pid in CLUSTER_LAST_PID and
# CLUSTER_BG_PIDS (killed by cluster__down).
cluster__pod_bg() {
	local cg=
	[ "$3" = sock ] && cg=$(cluster__cg "$1")
	(
		[ -z "$cg" ] || echo "$BASHPID" >"$cg/cgroup.procs" || exit 1
		exec nsenter --net="/run/netns/$(cluster__pod_ns "$1" "$2")" "${@:4}"
	) &
	CLUSTER_LAST_PID=$!
	CLUSTER_BG_PIDS+=("$CLUSTER_LAST_PID")
}
# cluster__meshctl N ARGS...: meshctl against node N's meshd.
cluster__meshctl() { "$CLUSTER_MESHCTL" -s "$(cluster__sock "$1")" --timeout 5000 "${@:2}"; }

cluster__ns_add() {
	ip netns add "$1" || return 1
	CLUSTER_OWN[ns:$1]=1
	ip -n "$1" link set lo up
	cluster__in "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.disable_ipv6=1 >/dev/null
}

# The node network: a bridge in $ID-net, which also holds the API server.
cluster__net_up() {
	cluster__ns_add "$CLUSTER_NS_NET" || return 1
	ip -n "$CLUSTER_NS_NET" link add br0 type bridge || return 1
	ip -n "$CLUSTER_NS_NET" addr add "$CLUSTER_API_ADDR/24" dev br0
	ip -n "$CLUSTER_NS_NET" link set br0 up
}

# cluster__plug NS IFNAME PORTNAME ADDR: NS's IFNAME on the bridge, as ADDR/24.
cluster__plug() {
	local ns=$1 dev=$2 port=$3 addr=$4
	ip -n "$CLUSTER_NS_NET" link add "$port" type veth peer name "$dev" netns "$ns" || return 1
	ip -n "$CLUSTER_NS_NET" link set "$port" master br0 up || return 1
	ip -n "$ns" addr add "$addr/24" dev "$dev" && ip -n "$ns" link set "$dev" up
}

cluster__node_up() {
	local n=$1 ns p pns paddr k
	ns=$(cluster__node_ns "$n")
	cluster__ns_add "$ns" || return 1
	cluster__in "$ns" sysctl -qw net.ipv4.ip_forward=1 >/dev/null || return 1
	cluster__plug "$ns" eth0 "n$n" "$(cluster__node_addr "$n")" || return 1
	for ((k = 1; k <= CLUSTER_NODES; k++)); do
		[ "$k" = "$n" ] && continue
		ip -n "$ns" route add "10.244.$k.0/24" via "$(cluster__node_addr "$k")" || return 1
	done
	# Pods: routed veths (no bridge on the node), one /32 each; every
	# host-side veth carries the pods' gateway 10.244.N.1.
	for ((p = 1; p <= CLUSTER_PODS; p++)); do
		pns=$(cluster__pod_ns "$n" "$p")
		paddr=$(cluster__pod_addr "$n" "$p")
		cluster__ns_add "$pns" || return 1
		ip -n "$ns" link add "lxc$p" type veth peer name eth0 netns "$pns" || return 1
		ip -n "$ns" addr add "10.244.$n.1/32" dev "lxc$p"
		ip -n "$ns" link set "lxc$p" up
		ip -n "$ns" route add "$paddr/32" dev "lxc$p" || return 1
		ip -n "$pns" addr add "$paddr/32" dev eth0
		ip -n "$pns" link set eth0 up
		ip -n "$pns" route add "10.244.$n.1" dev eth0 scope link || return 1
		ip -n "$pns" route add default via "10.244.$n.1" || return 1
	done
	mkdir -p "$CLUSTER_TMP/n$n"
}

# cluster__pod_spawn N P: (re)start pod N P's echo server; cluster__pod_wait
# N P: wait until it is bound; cluster__pod_serve N P: both.
cluster__pod_spawn() {
	local name
	name=$(cluster__pod_name "$1" "$2")
	rm -f "$CLUSTER_TMP/$name.ready"
	# nsenter itself in the background: $! is the server once it execs.
	nsenter --net="/run/netns/$(cluster__pod_ns "$1" "$2")" python3 "$CLUSTER_ECHO" serve \
		--name "$name" --port "$CLUSTER_POD_PORT" --ready "$CLUSTER_TMP/$name.ready" \
		>>"$CLUSTER_TMP/$name.log" 2>&1 &
	CLUSTER_POD_PID[$name]=$!
}
cluster__pod_wait() {
	local name i
	name=$(cluster__pod_name "$1" "$2")
	for ((i = 0; i < 400; i++)); do
		[ -e "$CLUSTER_TMP/$name.ready" ] && return 0
		sleep 0.05
	done
	cluster__log "echo server $name did not start: $(tail -n 3 "$CLUSTER_TMP/$name.log")"
	return 1
}
cluster__pod_serve() { cluster__pod_spawn "$1" "$2" && cluster__pod_wait "$1" "$2"; }

# cluster__pod_stop N P: kill pod N P's server (the pod goes away).
cluster__pod_stop() {
	local name pid
	name=$(cluster__pod_name "$1" "$2")
	pid=${CLUSTER_POD_PID[$name]:-}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	CLUSTER_POD_PID[$name]=
}

cluster__api_up() {
	local ports=$CLUSTER_TMP/api.ports i
	CLUSTER_TOKEN=tok-$$-$RANDOM$RANDOM
	nsenter --net="/run/netns/$CLUSTER_NS_NET" python3 "$CLUSTER_K8S/apiserver.py" \
		--port-file "$ports" --addr "$CLUSTER_API_ADDR" --token "$CLUSTER_TOKEN" \
		>"$CLUSTER_TMP/api.log" 2>&1 &
	CLUSTER_API_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ -s "$ports" ] && break
		sleep 0.05
	done
	[ -s "$ports" ] || {
		cluster__log "API server did not start: $(tail -n 3 "$CLUSTER_TMP/api.log")"
		return 1
	}
	CLUSTER_API_PORT=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['api'])" "$ports")
	cluster__k8s ctl '{"op": "set", "bookmark_interval": 0.5}' || return 1
	cat >"$CLUSTER_TMP/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: cluster
clusters:
- name: stand-in
  cluster:
    server: http://$CLUSTER_API_ADDR:$CLUSTER_API_PORT
contexts:
- name: cluster
  context: {cluster: stand-in, user: sluice}
users:
- name: sluice
  user:
    token: $CLUSTER_TOKEN
EOF
}

# cluster__k8s ctl|apply ARG: k8sctl.py against the API server's control port.
cluster__k8s() {
	cluster__in "$CLUSTER_NS_NET" python3 "$CLUSTER_K8S/k8sctl.py" "$1" \
		"$CLUSTER_TMP/api.ports" "${@:2}" >/dev/null
}
# cluster__apply NAME VIP PORT TARGETPORT [EP...] [--spec JSON]: Service + slice.
cluster__apply() {
	local objs
	objs=$(python3 "$CLUSTER_OBJS" "$@") || return 1
	cluster__k8s apply "$objs"
}
# cluster__delete NAME: the Service NAME and its slice.
cluster__delete() {
	cluster__k8s ctl "{\"op\": \"delete\", \"kind\": \"services\", \"namespace\": \"default\", \"name\": \"$1\"}" &&
		cluster__k8s ctl "{\"op\": \"delete\", \"kind\": \"endpointslices\", \"namespace\": \"default\", \"name\": \"$1-s1\"}"
}

cluster__meshd_alive() {
	local pid=${CLUSTER_MESHD_PID[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# cluster__meshd_spawn N: start node N's meshd; cluster__meshd_wait N: wait
# for its "meshd ready" and API; cluster__meshd_start N: both.
cluster__meshd_spawn() {
	local n=$1 log
	log=$(cluster__meshd_log "$n")
	: >>"$log"
	CLUSTER_MESHD_READY[$n]=$(grep -c 'meshd ready' "$log")
	NODE_NAME=$(cluster__node_name "$n") nsenter --net="/run/netns/$(cluster__node_ns "$n")" \
		"$CLUSTER_MESHD" --interfaces "$CLUSTER_INTERFACES" --xdp-mode "$CLUSTER_XDP_MODE" \
		--bpffs "$(cluster__pin "$n")" --state "$(cluster__state "$n")" \
		--socket "$(cluster__sock "$n")" --metrics "$(cluster__metrics "$n")" \
		--cgroup "$(cluster__cg "$n")" --socket-lb on --redirect off --telemetry off \
		--kubernetes on --kubeconfig "$CLUSTER_TMP/kubeconfig" "${CLUSTER_MESHD_FLAGS[@]}" \
		>>"$log" 2>&1 &
	CLUSTER_MESHD_PID[$n]=$!
}
cluster__meshd_wait() {
	local n=$1 log end=$((SECONDS + 30))
	log=$(cluster__meshd_log "$n")
	while [ "$SECONDS" -lt "$end" ]; do
		if [ "$(grep -c 'meshd ready' "$log")" -gt "${CLUSTER_MESHD_READY[$n]:-0}" ] &&
			cluster__meshctl "$n" status >/dev/null 2>&1; then
			return 0
		fi
		cluster__meshd_alive "$n" || break
		sleep 0.02
	done
	cluster__log "node$n: meshd not ready in 30 s: $(tail -n 3 "$log")"
	return 1
}
cluster__meshd_start() { cluster__meshd_spawn "$1" && cluster__meshd_wait "$1"; }

# cluster__meshd_kill N [SIGNAL]: stop node N's meshd (default KILL: a crash).
cluster__meshd_kill() {
	local pid=${CLUSTER_MESHD_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill "-${2:-KILL}" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	CLUSTER_MESHD_PID[$1]=
}

# cluster__status N PYTHON-EXPR: EXPR over s, node N's `meshctl -o json status`
# (e.g. "s['counters']['lb_new']").
cluster__status() {
	cluster__meshctl "$1" -o json status | python3 -c \
		'import json,sys;s=json.load(sys.stdin);print(eval(sys.argv[1]))' "$2"
}

# cluster__wait_synced [TIMEOUT]: every node's meshd reports the first full
# list of Services and EndpointSlices done.
cluster__wait_synced() {
	local n end=$((SECONDS + ${1:-20}))
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		until cluster__meshctl "$n" -o json status 2>/dev/null |
			python3 -c 'import json,sys;sys.exit(0 if json.load(sys.stdin)["kubernetes"]["synced"] else 1)' 2>/dev/null; do
			[ "$SECONDS" -lt "$end" ] || {
				cluster__log "node$n: Kubernetes sync not done in ${1:-20}s"
				return 1
			}
			sleep 0.1
		done
	done
}

# cluster__backends N SVC: node N's backends of SVC (VIP:PORT/PROTO) as sorted
# "ADDR:PORT=WEIGHT" words ("-" when the service is absent).
cluster__backends() {
	cluster__meshctl "$1" -o json service list 2>/dev/null | python3 -c '
import json, sys
svc = sys.argv[1]
for s in json.load(sys.stdin)["services"]:
    if "%s:%d/%s" % (s["vip"], s["port"], s["protocol"]) == svc:
        print(" ".join(sorted("%s:%d=%d" % (b["address"], b["port"], b.get("weight", 1))
                              for b in s.get("backends") or [])))
        break
else:
    print("-")' "$2"
}

# cluster__wait_node_backends N SVC WANT [TIMEOUT]: node N shows exactly WANT
# (cluster__backends' format) for SVC.
cluster__wait_node_backends() {
	local got end=$((SECONDS + ${4:-20}))
	while got=$(cluster__backends "$1" "$2") && [ "$got" != "$3" ]; do
		[ "$SECONDS" -lt "$end" ] || {
			cluster__log "node$1: $2 has backends \"$got\", want \"$3\""
			return 1
		}
		sleep 0.1
	done
}

# cluster__wait_backends SVC WANT [TIMEOUT]: every node shows exactly WANT.
cluster__wait_backends() {
	local n
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		cluster__wait_node_backends "$n" "$1" "$2" "${3:-20}" || return 1
	done
}

cluster__up() {
	local n p
	# The ID names namespaces, pin dirs and cgroups: nothing that leaves them.
	[[ $CLUSTER_ID =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$ ]] || {
		cluster__log "CLUSTER_ID '$CLUSTER_ID': letters, digits, _ and - only (at most 40)"
		return 1
	}
	# Addresses are 10.40.0.1N and 10.244.N.1P: one digit each.
	[[ $CLUSTER_NODES =~ ^[1-9]$ && $CLUSTER_PODS =~ ^[1-9]$ ]] || {
		cluster__log "CLUSTER_NODES=$CLUSTER_NODES, CLUSTER_PODS=$CLUSTER_PODS: each must be 1-9"
		return 1
	}
	CLUSTER_TMP=$(mktemp -d "/tmp/sluice-$CLUSTER_ID.XXXXXX") || return 1
	CLUSTER_DOWN_DONE=0
	[ -n "$CLUSTER_CGROOT" ] || {
		cluster__log "no cgroup2 mount in /proc/mounts"
		return 1
	}
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || return 1
	cluster__net_up || return 1
	cluster__ns_add "$CLUSTER_NS_CLIENT" || return 1
	cluster__plug "$CLUSTER_NS_CLIENT" eth0 client "$CLUSTER_CLIENT_ADDR" || return 1
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		# Safety: the socket LB attaches to this cgroup only and
		# --cleanup empties this pin dir: ours, new.
		if [ -e "$(cluster__cg "$n")" ] || [ -e "$(cluster__pin "$n")" ]; then
			cluster__log "$(cluster__cg "$n") or $(cluster__pin "$n") exists"
			return 1
		fi
		mkdir "$(cluster__cg "$n")" || return 1
		CLUSTER_OWN[cg:$n]=1 CLUSTER_OWN[pin:$n]=1
		cluster__node_up "$n" || return 1
	done
	# Servers and agents start in parallel, then we wait for each.
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		for ((p = 1; p <= CLUSTER_PODS; p++)); do
			cluster__pod_spawn "$n" "$p"
		done
	done
	cluster__api_up || return 1
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		cluster__meshd_spawn "$n"
	done
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		for ((p = 1; p <= CLUSTER_PODS; p++)); do
			cluster__pod_wait "$n" "$p" || return 1
		done
		cluster__meshd_wait "$n" || return 1
	done
	cluster__wait_synced 20
}

# Idempotent; safe from traps while cluster__up is half done.
cluster__down() {
	local n pid cg ns
	[ "$CLUSTER_DOWN_DONE" = 1 ] && return 0
	CLUSTER_DOWN_DONE=1
	if declare -F cluster_on_cleanup >/dev/null; then
		cluster_on_cleanup || true
	fi
	for pid in "${CLUSTER_BG_PIDS[@]}" "${CLUSTER_POD_PID[@]}" "$CLUSTER_API_PID"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null
	done
	for pid in "${CLUSTER_BG_PIDS[@]}" "${CLUSTER_POD_PID[@]}" "$CLUSTER_API_PID"; do
		[ -n "$pid" ] && wait "$pid" 2>/dev/null
	done
	CLUSTER_BG_PIDS=()
	CLUSTER_POD_PID=()
	CLUSTER_API_PID=
	for ((n = 1; n <= CLUSTER_NODES; n++)); do
		cluster__meshd_kill "$n"
		# --cleanup detaches every Sluice program of the namespace it
		# runs in and what is pinned in --bpffs: only in our node
		# namespace, on our pin dir.
		if [ -n "${CLUSTER_OWN[pin:$n]:-}" ] && [ -n "${CLUSTER_OWN[ns:$(cluster__node_ns "$n")]:-}" ] &&
			[ -d "$(cluster__pin "$n")" ]; then
			cluster__node "$n" "$CLUSTER_MESHD" --cleanup --bpffs "$(cluster__pin "$n")" \
				>/dev/null 2>&1 || cluster__log "node$n: meshd --cleanup failed"
		fi
		[ -n "${CLUSTER_OWN[pin:$n]:-}" ] && [ -d "$(cluster__pin "$n")" ] && rm -rf "$(cluster__pin "$n")"
		cg=$(cluster__cg "$n")
		if [ -n "${CLUSTER_OWN[cg:$n]:-}" ] && [ -d "$cg" ]; then
			while read -r pid; do
				echo "$pid" >"$CLUSTER_CGROOT/cgroup.procs" 2>/dev/null
			done <"$cg/cgroup.procs"
			rmdir "$cg" 2>/dev/null || cluster__log "cannot remove $cg"
		fi
	done
	for ns in "${!CLUSTER_OWN[@]}"; do
		[[ $ns == ns:* ]] && ip netns del "${ns#ns:}" 2>/dev/null
	done
	CLUSTER_OWN=()
	[ -n "$CLUSTER_TMP" ] && rm -rf "$CLUSTER_TMP"
	CLUSTER_TMP=
	return 0
}

cluster__install_traps() {
	trap 'cluster__down' EXIT
	trap 'cluster__down; trap - EXIT; exit 130' INT
	trap 'cluster__down; trap - EXIT; exit 143' TERM
}
