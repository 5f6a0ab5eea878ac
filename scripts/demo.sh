#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh - Sluice as a user runs it, in about 5 seconds: meshd on a node,
# meshctl driving it, real connections through a service. `make demo` runs it.
#
# Contract: builds the topology of scripts/lib/topology.sh (client -> node
# -> be1..be3 echo servers), creates a child cgroup of the cgroup2 mount
# for the client's sockets (telemetry), starts build/meshd in the node
# namespace (nsenter --net, so it sees bpffs and cgroup2) on the node's
# 'to-*' veths only, with its own pin dir, state file, API socket and
# metrics address, all named after $TOPO_ID. Then, every command shown
# before it runs: meshctl status; service add (IPv4 and IPv6, 3 backends);
# traffic and the per-backend split; a canary weight; a drain that held
# connections survive while new ones avoid the backend; service get; a
# metrics scrape; a service without backends refused; meshctl uninstall.
# A failed check prints "error: ..." and makes the exit status 1; the
# story goes on. Everything it creates (namespaces, meshd, servers, pins,
# cgroup, temp files) is removed at exit, also on failure or Ctrl-C.
# Nothing is attached outside its namespaces and its cgroup. Needs root,
# curl, python3 and a built tree (`make`).
# Usage: demo.sh [--keep]   (--keep: leave it all up until Enter or Ctrl-C)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by topology.sh
TOPO_PREFIX=sluice-demo
# shellcheck source=SCRIPTDIR/lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"

BUILD=${SLUICE_BUILD:-$ROOT/build}
MESHD=$BUILD/meshd
MESHCTL=$BUILD/meshctl
PIN=/sys/fs/bpf/$TOPO_ID
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/$TOPO_ID}
METRICS=127.0.0.1:9465 # in the node namespace: nobody else listens there
PORT=80
SVC4=$TOPO_VIP4:$PORT/tcp
SVC6=[$TOPO_VIP6]:$PORT/tcp
BE=$TOPO_BE_PORT
KEEP=0
# What the scrape shows of the service: its flows, the per-backend split and
# weights, and the telemetry of the client's connections (count, RTT).
SERIES='^sluice_(service_flows|backend_flows|backend_weight|connections_opened'
SERIES+='|connection_rtt_seconds_(sum|count))'

WORK=
MESHD_PID=
HOLD_PID=
DEMO_RC=0

if [ -t 1 ]; then
	B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'
else
	B='' D='' N=''
fi

say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
note() { printf '%s    %s%s\n' "$D" "$*" "$N"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}
# check_fail TEXT: a failed check is shown and makes the demo exit 1, but
# the story goes on so the rest can tell what happened.
check_fail() {
	printf '    error: %s\n' "$*"
	DEMO_RC=1
}
indent() { sed 's/^/    /'; }

be4() { printf '%s:%s' "$(topo__be_addr4 "$1")" "$BE"; }
be6() { printf '[%s]:%s' "$(topo__be_addr6 "$1")" "$BE"; }

# meshctl ARGS...: shows the command as a user types it, then runs it.
meshctl() {
	printf '%s    $ meshctl %s%s\n' "$D" "$*" "$N"
	SLUICE_SOCKET=$WORK/meshd.sock "$MESHCTL" "$@" 2>&1 | indent
	return "${PIPESTATUS[0]}"
}

# client ARGS...: echo.py in the client namespace, its sockets in our cgroup
# (so telemetry sees them).
client() {
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" \
			timeout 60 python3 "$TOPO_ECHO" "$@") | indent
	[ "${PIPESTATUS[0]}" -eq 0 ] || DEMO_RC=1
}

# ------------------------------------------------------------- cleanup

# Called by topology.sh's traps before the namespaces go, also on failure
# or Ctrl-C: stops what we started, then removes what meshd left (only in
# our node namespace, only our pin dir), the cgroup and the temp files.
topo_on_cleanup() {
	local pid
	for pid in $HOLD_PID $MESHD_PID; do
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	HOLD_PID=
	MESHD_PID=
	if [ -e "/var/run/netns/$TOPO_NS_NODE" ] && [ -d "$PIN" ]; then
		nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$MESHD" --cleanup \
			--bpffs "$PIN" >/dev/null 2>&1 || echo "demo: meshd --cleanup failed" >&2
	fi
	[ -d "$PIN" ] && rm -rf "$PIN"
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		while read -r pid; do
			echo "$pid" >"$CGROOT/cgroup.procs" 2>/dev/null
		done <"$CG/cgroup.procs"
		rmdir "$CG" 2>/dev/null || echo "demo: cannot remove $CG" >&2
	fi
	[ -n "$WORK" ] && rm -rf "$WORK"
	WORK=
	return 0
}

# ------------------------------------------------------------- steps

meshd_start() {
	local i
	say "Starting meshd, the node agent, in the node namespace"
	note "its own pin dir, state file, API socket and metrics address; it"
	note "attaches only to the node's 'to-*' veths and watches for new ones."
	printf '%s    $ nsenter --net=/run/netns/%s \\\n' "$D" "$TOPO_NS_NODE"
	printf '        meshd --interfaces '\''to-*'\'' --fib-forward on --socket-lb off \\\n'
	printf '        --bpffs %s --state %s \\\n' "$PIN" "$WORK/state.json"
	printf '        --socket %s --metrics %s \\\n' "$WORK/meshd.sock" "$METRICS"
	printf '        --cgroup %s &%s\n' "$CG" "$N"
	nsenter --net="/var/run/netns/$TOPO_NS_NODE" "$MESHD" --interfaces 'to-*' \
		--fib-forward on --bpffs "$PIN" --state "$WORK/state.json" \
		--socket "$WORK/meshd.sock" --metrics "$METRICS" --cgroup "$CG" \
		--socket-lb off >"$WORK/meshd.log" 2>&1 &
	MESHD_PID=$!
	for ((i = 0; i < 500; i++)); do
		if grep -qs 'meshd ready' "$WORK/meshd.log" &&
			"$MESHCTL" -s "$WORK/meshd.sock" status >/dev/null 2>&1; then
			note "meshd is ready (pid $MESHD_PID); meshctl talks to it over"
			note "\$SLUICE_SOCKET=$WORK/meshd.sock"
			return 0
		fi
		kill -0 "$MESHD_PID" 2>/dev/null || break
		sleep 0.02
	done
	tail -n 20 "$WORK/meshd.log" | indent
	die "meshd did not become ready"
}

# After `meshctl uninstall`: meshd exits by itself within 5 s.
meshd_wait_exit() {
	local i
	for ((i = 0; i < 250; i++)); do
		kill -0 "$MESHD_PID" 2>/dev/null || break
		sleep 0.02
	done
	kill -0 "$MESHD_PID" 2>/dev/null && check_fail "meshd still runs after uninstall"
	kill -9 "$MESHD_PID" 2>/dev/null
	wait "$MESHD_PID" 2>/dev/null
	MESHD_PID=
}

# hold_open K: K connections opened now and kept open in the background.
hold_open() {
	local i
	rm -f "$WORK/hold.ready" "$WORK/hold.go"
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$TOPO_NS_CLIENT" timeout 60 \
			python3 "$TOPO_ECHO" hold "$TOPO_VIP4" "$PORT" -n "$1" \
			--ready "$WORK/hold.ready" --go "$WORK/hold.go" --wait 50) \
		>"$WORK/hold.out" 2>&1 &
	HOLD_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ -e "$WORK/hold.ready" ] && break
		kill -0 "$HOLD_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -e "$WORK/hold.ready" ]; then
		note "open now: $(cat "$WORK/hold.ready")"
	else
		indent <"$WORK/hold.out"
		check_fail "the long-lived connections did not open"
	fi
}

# hold_check: the held connections echo once more, then close.
hold_check() {
	[ -n "$HOLD_PID" ] || return 0
	touch "$WORK/hold.go"
	wait "$HOLD_PID" || DEMO_RC=1
	HOLD_PID=
	indent <"$WORK/hold.out"
}

scrape() {
	local sel="service=\"$SVC4\""
	say "Prometheus metrics: meshd serves them on $METRICS (node namespace)"
	printf '%s    $ curl -s http://%s/metrics | grep '\''%s'\''%s\n' "$D" "$METRICS" "$sel" "$N"
	nsenter --net="/var/run/netns/$TOPO_NS_NODE" curl -sS --max-time 5 \
		"http://$METRICS/metrics" >"$WORK/metrics" || check_fail "scrape failed"
	grep -F "$sel" "$WORK/metrics" |
		grep -E "$SERIES" | indent
	grep -qF "$sel" "$WORK/metrics" || check_fail "no series of $SVC4 in the scrape"
	note "$(grep -c '^sluice_' "$WORK/metrics") series in all; labels are bounded:"
	note "service, backend, reason, never the client address."
}

story() {
	meshctl status || check_fail "meshctl status failed"

	say "A service with three backends, over IPv4 and IPv6"
	meshctl service add "$SVC4" "$(be4 be1)@10" "$(be4 be2)@10" "$(be4 be3)@10" \
		--name web || check_fail "service add $SVC4 failed"
	meshctl service add "$SVC6" "$(be6 be1)" "$(be6 be2)" "$(be6 be3)" \
		--name web6 || check_fail "service add $SVC6 failed"
	meshctl service list || check_fail "service list failed"
	note "the desired state is saved to $WORK/state.json on every change"

	say "Connections from the client to $TOPO_VIP4:$PORT"
	note "each asks 'whoami'; the client's peer is always the VIP"
	client tcp "$TOPO_VIP4" "$PORT" -n 6 --show
	say "300 more: Maglev gives each backend about a third"
	client tcp "$TOPO_VIP4" "$PORT" -n 300 --table --expect be1,be2,be3 --min-share 0.2
	say "The same over IPv6, to $SVC6"
	client tcp "$TOPO_VIP6" "$PORT" -n 3 --show
	client tcp "$TOPO_VIP6" "$PORT" -n 60 --table --expect be1,be2,be3 --min-share 0.1

	say "30 long-lived connections, opened now and kept open"
	hold_open 30

	say "Canary: be3 runs a new release and should get ~10% of new connections"
	meshctl backend weight "$SVC4" "$(be4 be3)" 2 || check_fail "backend weight failed"
	note "weights 10:10:2; the new Maglev table replaces the old one in one step"
	client tcp "$TOPO_VIP4" "$PORT" -n 300 --table --expect be1,be2,be3 --min-share 0.02

	say "The canary misbehaves: drain be3 (no new connections, open ones stay)"
	meshctl backend drain "$SVC4" "$(be4 be3)" || check_fail "backend drain failed"
	client tcp "$TOPO_VIP4" "$PORT" -n 100 --table --expect be1,be2 --avoid be3
	note "the connections opened before the canary and the drain still echo:"
	hold_check
	note "conntrack, not the Maglev table, decides for established flows."

	say "The service as meshd sees it"
	meshctl service get "$SVC4" || check_fail "service get failed"
	note "'meshctl backend undrain' would give be3 its weight 2 back."

	scrape

	say "A service without backends is refused at once, not left to time out"
	meshctl service add "$TOPO_VIP4:81/tcp" --name empty ||
		check_fail "service add without backends failed"
	client tcp "$TOPO_VIP4" 81 --refused -n 3
	note "XDP answered each SYN with a RST (UDP would get ICMP port unreachable)."
}

keep() {
	say "Everything is still up: try meshctl yourself"
	note "export SLUICE_SOCKET=$WORK/meshd.sock; $MESHCTL service list"
	note "nsenter --net=/run/netns/$TOPO_NS_CLIENT python3 $TOPO_ECHO tcp $TOPO_VIP4 $PORT -n 10 --table"
	note "nsenter --net=/run/netns/$TOPO_NS_NODE curl -s http://$METRICS/metrics"
	if [ -t 0 ]; then
		note "press Enter to uninstall and tear it all down"
		read -r _
	else
		note "Ctrl-C (SIGINT or SIGTERM) tears it all down"
		while :; do sleep 1; done
	fi
}

usage() {
	cat <<EOF
Usage: $0 [--keep]
Sluice as a user runs it: meshd in a node namespace, meshctl, real traffic
through a service, a canary weight, a drain and a metrics scrape; ~5 s.
  --keep   leave everything up at the end, until Enter or Ctrl-C
Needs root and a built tree (make). Everything is removed at exit.
EOF
}

main() {
	local arg
	for arg; do
		case $arg in
		--keep) KEEP=1 ;;
		-h | --help) usage && return 0 ;;
		*) usage >&2 && return 2 ;;
		esac
	done
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, BPF)"
	[[ $TOPO_ID =~ ^[A-Za-z0-9-]{1,40}$ ]] || die "TOPO_ID '$TOPO_ID': letters, digits, '-'"
	for arg in "$MESHD" "$MESHCTL" "$TOPO_LBTOOL"; do
		[ -x "$arg" ] || die "$arg is missing: run 'make' first"
	done
	command -v curl >/dev/null || die "curl is not installed"
	[ -n "$CG" ] || die "no cgroup2 mount in /proc/mounts"
	[ ! -e "$CG" ] || die "$CG exists already"
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf ||
		die "cannot mount bpffs on /sys/fs/bpf"
	topo__install_traps
	WORK=$(mktemp -d "/tmp/$TOPO_ID.XXXXXX") || die "mktemp failed"
	mkdir "$CG" || die "cannot create cgroup $CG"

	say "Building a small network out of namespaces"
	cat <<EOF
    client ($TOPO_CLIENT4, [$TOPO_CLIENT6])
       |
     node   <- meshd runs here and attaches XDP to every veth of this namespace
     / | \\
   be1 be2 be3   ($(be4 be1) .. $(be4 be3)): echo servers that tell
                 the client their name

    The client only knows the service $SVC4 (and $SVC6).
    No backend owns that address: Sluice picks one per connection (Maglev),
    rewrites the destination (DNAT) and the replies back, so the client only
    ever talks to the VIP. No proxy, no iptables.
EOF
	topo__up || die "could not build the topology"
	note "namespaces: $TOPO_ID-{client,node,be1,be2,be3}"

	meshd_start
	story
	[ "$KEEP" -eq 1 ] && keep

	say "Uninstalling: detach every program, remove the pins, stop meshd"
	meshctl uninstall || check_fail "meshctl uninstall failed"
	meshd_wait_exit

	if [ "$DEMO_RC" -eq 0 ]; then
		say "Done: every check passed; removing namespaces, servers and cgroup"
	else
		say "meshd's log (last 15 lines)"
		tail -n 15 "$WORK/meshd.log" | cut -c 1-200 | indent
		say "Done, but some check above failed (see 'error:' lines); cleaning up"
	fi
	return "$DEMO_RC"
}

main "$@"
