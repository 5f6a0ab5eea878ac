#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_k8s.sh - the Kubernetes sync wired into the agent: meshd --kubernetes on
# against the stand-in API server (tests/e2e/k8s/apiserver.py), driven and
# checked with meshctl.
#
# Contract: a network namespace of our own holds the API server (127.0.0.1,
# bearer token, the recorded-format fixtures) and meshd (its own pin dir,
# state file, socket; --kubeconfig with an http:// server; socket LB,
# redirection and telemetry off, no interface attached). The state file
# starts with one manual service. Scenarios, one "PASS: e2e/meshd_k8s_<name>"
# or "FAIL: e2e/meshd_k8s_<name>: <reason>" line each, in this order:
#   initial_sync          service list -o json: the kubernetes services of
#                         fixtures/expected.json with source kubernetes and
#                         their backends, the manual one kept; status synced
#   terminating           a ready endpoint turns terminating: its backend
#                         shows weight 0, state draining
#   edits_refused         service del / add over it, backend add/del/weight/
#                         drain on a kubernetes service: refused ("managed by
#                         Kubernetes"), nothing changed; the manual service
#                         still takes edits
#   apply_keeps           apply -f with only manual services (dry run and
#                         real): the kubernetes services are kept and the
#                         output says so
#   status_metrics        meshctl status shows "Kubernetes:  synced" and the
#                         counters; /metrics has the sluice_kubernetes_* series
#                         and sluice_service_info naming kubernetes and manual
#                         services;
#                         GET /readyz answers 200 with "[+]kubernetes ok"
#   affinity              the web Service gets sessionAffinity ClientIP with
#                         timeoutSeconds 600: both its VIPs show it in service
#                         list -o json and the state file; None removes it
#   health_affinity       a Service "hc" (10.96.0.95:80 -> 10.77.0.1-3:8080,
#                         all ready, on the namespace's loopback; servers on
#                         .1 and .2, none on .3) with the sluice.io/health-
#                         check annotations (tcp, 200ms, thresholds 1/2):
#                         service get -o json shows the check, .3 unhealthy
#                         by probe and .1/.2 healthy; 40 socket-LB
#                         connections reach .1 and .2, never .3. With
#                         sessionAffinity ClientIP (timeoutSeconds 300):
#                         shown, and 30 connections (one client: the
#                         socket LB keys it by netns) all reach one backend;
#                         that backend's server killed -> unhealthy by probe,
#                         the affinity breaks and the next 20 reach the other
#   source_ranges         the lb Service gets loadBalancerSourceRanges (one
#                         with host bits, one with spaces, one IPv6): its
#                         load-balancer address 198.51.100.7 shows the IPv4
#                         ones masked, in list -o json and the state file;
#                         its external and cluster IPs none; [] removes them
#   restart_unreachable   meshd restarts while the API port is closed (a
#                         Service deleted meanwhile): nothing removed, state
#                         file and maps unchanged for 2 s, status not synced,
#                         /readyz 503 naming the wait, /healthz 200;
#                         API back -> synced, the deletion applied, /readyz 200
#   burst                 12 Services burst-N (3 endpoints each) added; then
#                         one apply of their 12 EndpointSlices, each with one
#                         endpoint replaced (a rolling update step: 12 watch
#                         events at once): status shows ONE per-service pass
#                         (kubernetes.service_passes +1, 12 services changed
#                         by it), ONE fdatasync (commit.fsyncs + full_saves
#                         +1), no whole commit; after a restart (the initial
#                         list commits the whole state) service list is the
#                         same as the pass left it
# meshd runs with the socket LB on a child cgroup of the cgroup2 mount that
# the test creates (only the health_affinity clients run in it).
# Exits non-zero if any failed. meshd, the API server, the servers, the
# namespace, the cgroup, pins and temp files are removed on exit, failure or
# interruption. Needs root, python3, bpftool, curl and `make` (build/meshd,
# build/meshctl). About 30 s.
# Usage: test_meshd_k8s.sh [SCENARIO...]
set -u
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the tree

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
K8S=$ROOT/tests/e2e/k8s
FIX=$K8S/fixtures
MESHD=${SLUICE_BUILD:-$ROOT/build}/meshd
MESHCTL=${SLUICE_BUILD:-$ROOT/build}/meshctl
NS=sk8s$$
PIN=/sys/fs/bpf/sluice-k8s$$
TMP=$(mktemp -d /tmp/sluice-meshd-k8s.XXXXXX)
PORTS=$TMP/ports
STATE=$TMP/state.json
SOCK=$TMP/meshd.sock
LOG=$TMP/meshd.log
TOKEN=tok-$$-$RANDOM
METRICS=127.0.0.1:19465
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-k8s$$}
ECHO=$ROOT/tests/e2e/echo.py
API_PID=
MESHD_PID=
SRV_PIDS=()
failed=0

in_ns() { nsenter --net="/var/run/netns/$NS" "$@"; }
CTL() { in_ns python3 "$K8S/k8sctl.py" "$@"; }
mctl() { "$MESHCTL" -s "$SOCK" --timeout 5000 "$@"; }
W() { python3 "$K8S/meshd_watch.py" "$1" --meshctl "$MESHCTL" --socket "$SOCK" \
	--state "$STATE" --pins "$PIN" --netns "$NS" "${@:2}"; }
WAIT() { W wait --timeout 20 "$@"; }
HOLD() { W hold "$@"; }

meshd_stop() {
	[ -n "$MESHD_PID" ] || return 0
	kill -TERM "$MESHD_PID" 2>/dev/null
	wait "$MESHD_PID" 2>/dev/null
	MESHD_PID=
}

cleanup() {
	meshd_stop
	local pid
	for pid in "$API_PID" "${SRV_PIDS[@]}"; do
		[ -n "$pid" ] || continue
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ -d "$PIN" ] && [ -e "/var/run/netns/$NS" ]; then
		in_ns "$MESHD" --cleanup --bpffs "$PIN" >/dev/null 2>&1
	fi
	[ -d "$PIN" ] && rm -rf "$PIN"
	ip netns del "$NS" 2>/dev/null
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		while read -r pid; do
			echo "$pid" >"$CGROOT/cgroup.procs" 2>/dev/null
		done <"$CG/cgroup.procs"
		rmdir "$CG" 2>/dev/null || echo "${0##*/}: cannot remove $CG" >&2
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS: e2e/meshd_k8s_$1"; }
fail() {
	echo "FAIL: e2e/meshd_k8s_$1: $2"
	failed=$((failed + 1))
}

setup() {
	[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; return 1; }
	[ -x "$MESHD" ] && [ -x "$MESHCTL" ] || { echo "build/meshd, build/meshctl missing: run make" >&2; return 1; }
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || return 1
	# Safety: the socket LB attaches to $CG only; a child we create
	[ -n "$CGROOT" ] && [ ! -e "$CG" ] || { echo "no cgroup2 mount, or $CG exists" >&2; return 1; }
	mkdir "$CG" || return 1
	ip netns add "$NS" && ip -n "$NS" link set lo up || return 1
	# nsenter directly, not through in_ns: a function would run in a
	# subshell and $! would not be the server, which cleanup must kill
	nsenter --net="/var/run/netns/$NS" python3 "$K8S/apiserver.py" --port-file "$PORTS" \
		--token "$TOKEN" --fixtures "$FIX/services.json" "$FIX/endpointslices.json" \
		>"$TMP/api.log" 2>&1 &
	API_PID=$!
	for _ in $(seq 100); do
		[ -s "$PORTS" ] && break
		sleep 0.05
	done
	[ -s "$PORTS" ] || { echo "apiserver did not start: $(cat "$TMP/api.log")" >&2; return 1; }
	CTL ctl "$PORTS" '{"op": "set", "bookmark_interval": 0.5}' || return 1
	cat >"$TMP/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: stand-in
  cluster:
    server: http://127.0.0.1:$(python3 -c "import json;print(json.load(open('$PORTS'))['api'])")
contexts:
- name: test
  context: {cluster: stand-in, user: sluice}
users:
- name: sluice
  user:
    token: $TOKEN
EOF
	# one manual service that the sync must never touch
	cat >"$STATE" <<'EOF'
{"services": [{"name": "manual-web", "vip": "10.200.0.1", "port": 80, "protocol": "tcp",
  "backends": [{"address": "10.200.1.1", "port": 80, "weight": 1}]}]}
EOF
	cat >"$TMP/manual.yaml" <<'EOF'
services:
  - name: manual-web
    vip: 10.200.0.1
    port: 80
    protocol: tcp
    backends:
      - {address: 10.200.1.1, port: 80, weight: 1}
      - {address: 10.200.1.2, port: 80, weight: 1}
EOF
}

# Start meshd and wait for "meshd ready" and a working API.
meshd_start() {
	local before
	before=$(grep -c 'meshd ready' "$LOG" 2>/dev/null)
	NODE_NAME=n1 nsenter --net="/var/run/netns/$NS" "$MESHD" --bpffs "$PIN" \
		--state "$STATE" --socket "$SOCK" --metrics "$METRICS" --telemetry off \
		--socket-lb on --cgroup "$CG" --redirect off --kubernetes on --kubeconfig "$TMP/kubeconfig" \
		>>"$LOG" 2>&1 &
	MESHD_PID=$!
	for _ in $(seq 200); do
		if [ "$(grep -c 'meshd ready' "$LOG")" -gt "${before:-0}" ] &&
			mctl status >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$MESHD_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "meshd did not start: $(tail -n 5 "$LOG")" >&2
	return 1
}

MANUAL_OK='svc("manual-web", "10.200.0.1") == {"10.200.1.1:80": 1}'
KUBE_OK='canon(kube(lst)) == canon(expected) and all(s["source"] == "kubernetes" for s in kube(lst)["services"])'
WEB=10.96.0.10:80/tcp

web_slice() { # ENDPOINTS-JSON: the first web slice of the fixtures with these endpoints
	cat <<EOF
{"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
 "metadata": {"name": "web-abc12", "namespace": "default",
  "labels": {"kubernetes.io/service-name": "web"}},
 "addressType": "IPv4",
 "ports": [{"name": "http", "protocol": "TCP", "port": 8080},
           {"name": "https", "protocol": "TCP", "port": 8443}],
 "endpoints": $1}
EOF
}
ep() { # ADDR POD READY SERVING TERMINATING
	printf '{"addresses": ["%s"], "targetRef": {"kind": "Pod", "name": "%s"}, ' "$1" "$2"
	printf '"conditions": {"ready": %s, "serving": %s, "terminating": %s}}' "$3" "$4" "$5"
}

scenario_initial_sync() {
	meshd_start &&
		WAIT "status['kubernetes']['synced'] and $KUBE_OK and $MANUAL_OK" &&
		WAIT "canon(lst) == canon(st) and lst['services'][0]['source'] == 'manual'"
}

scenario_terminating() {
	# 10.1.0.1 (web-v1-aaa) turns terminating; the others as in the fixtures
	CTL apply "$PORTS" "$(web_slice "[$(ep 10.1.0.1 web-v1-aaa false true true),
		$(ep 10.1.0.2 web-v1-bbb true true false), $(ep 10.1.0.3 web-v1-ccc false true true)]")" &&
		WAIT "svc('default/web:http', '10.96.0.10').get('10.1.0.1:8080') == 0 and
		      state('default/web:http', '10.96.0.10', '10.1.0.1:8080') == 'draining' and
		      state('default/web:http', '10.96.0.10', '10.1.0.2:8080') == 'active' and
		      canon(lst) == canon(st)"
}

scenario_edits_refused() {
	local before out rc cmd
	before=$(mctl -o json service list) || return 1
	for cmd in "service del $WEB" "service add $WEB 10.9.9.9:80" \
		"backend add $WEB 10.9.9.9:80" "backend del $WEB 10.1.0.2:8080" \
		"backend weight $WEB 10.1.0.2:8080 5" "backend drain $WEB 10.1.0.2:8080"; do
		# shellcheck disable=SC2086
		out=$(mctl $cmd 2>&1)
		rc=$?
		if [ "$rc" -ne 1 ] || ! grep -q 'is managed by Kubernetes (source kubernetes); change the Service/EndpointSlice instead' <<<"$out"; then
			echo "meshctl $cmd: exit $rc, output: $out" >&2
			return 1
		fi
	done
	[ "$(mctl -o json service list | python3 -c 'import json,sys;d=json.load(sys.stdin);[b.pop("stats",0) for s in d["services"] for b in s["backends"]];[s.pop("stats",0) for s in d["services"]];print(json.dumps(d,sort_keys=True))')" = \
		"$(python3 -c 'import json,sys;d=json.loads(sys.argv[1]);[b.pop("stats",0) for s in d["services"] for b in s["backends"]];[s.pop("stats",0) for s in d["services"]];print(json.dumps(d,sort_keys=True))' "$before")" ] ||
		{ echo "service list changed after refused edits" >&2; return 1; }
	mctl backend add 10.200.0.1:80/tcp 10.200.1.3:80 >/dev/null &&
		mctl backend del 10.200.0.1:80/tcp 10.200.1.3:80 >/dev/null ||
		{ echo "edits of the manual service failed" >&2; return 1; }
	WAIT "$MANUAL_OK and canon(lst) == canon(st)"
}

scenario_apply_keeps() {
	local out nkube
	nkube=$(mctl -o json service list | python3 -c 'import json,sys;print(sum(s["source"]=="kubernetes" for s in json.load(sys.stdin)["services"]))')
	out=$(mctl apply -f "$TMP/manual.yaml" --dry-run 2>&1) || { echo "dry run: $out" >&2; return 1; }
	grep -q "kept $nkube kubernetes services" <<<"$out" && ! grep -q '^- ' <<<"$out" &&
		grep -q '^~ 10.200.0.1:80/tcp' <<<"$out" ||
		{ echo "dry run output: $out" >&2; return 1; }
	out=$(mctl apply -f "$TMP/manual.yaml" 2>&1) || { echo "apply: $out" >&2; return 1; }
	grep -q "kept $nkube kubernetes services" <<<"$out" || { echo "apply output: $out" >&2; return 1; }
	WAIT "svc('manual-web', '10.200.0.1') == {'10.200.1.1:80': 1, '10.200.1.2:80': 1} and
	      len(kube(lst)['services']) == $nkube and canon(lst) == canon(st)"
}

scenario_status_metrics() {
	local out met s
	out=$(mctl status) || { echo "status: $out" >&2; return 1; }
	grep -q '^Kubernetes:  synced, last sync [0-9].* ago' <<<"$out" &&
		grep -q 'watch restarts [0-9]*, relists [0-9]*, sync errors [0-9]*' <<<"$out" ||
		{ echo "status output: $(grep -A2 Kubernetes <<<"$out")" >&2; return 1; }
	met=$(in_ns curl -sf "http://$METRICS/metrics") || { echo "GET /metrics failed" >&2; return 1; }
	for s in 'sluice_kubernetes_synced 1' 'sluice_kubernetes_watch_restarts_total [0-9]' \
		'sluice_kubernetes_relists_total [0-9]' 'sluice_kubernetes_sync_errors_total [0-9]' \
		'sluice_kubernetes_last_sync_timestamp_seconds [1-9]' '# TYPE sluice_kubernetes_relists_total counter' \
		'sluice_kubernetes_translate_cpu_seconds_total [0-9.]*[1-9]' '# TYPE sluice_kubernetes_translate_cpu_seconds_total counter' \
		'sluice_service_info{service="10.96.0.10:80/tcp",name="default/web:http",namespace="default",source="kubernetes"} 1' \
		'sluice_service_info{service="\[fd00:96::10\]:443/tcp",name="default/web:https",namespace="default",source="kubernetes"} 1' \
		'sluice_service_info{service="10.200.0.1:80/tcp",name="manual-web",namespace="",source="manual"} 1'; do
		grep -q "^$s" <<<"$met" || { echo "/metrics has no \"$s\"" >&2; return 1; }
	done
	if command -v promtool >/dev/null; then
		promtool check metrics <<<"$met" >"$TMP/promtool.out" 2>&1 ||
			{ echo "promtool: $(head -c 300 "$TMP/promtool.out")" >&2; return 1; }
	fi
	readyz 200 '^\[+\]kubernetes ok$'
}

# readyz CODE LINE-REGEX: GET /readyz answers CODE with a body line matching
readyz() {
	local code
	code=$(in_ns curl -s --max-time 5 -o "$TMP/readyz" -w '%{http_code}' "http://$METRICS/readyz")
	[ "$code" = "$1" ] && grep -q "$2" "$TMP/readyz" ||
		{ echo "GET /readyz: $code, body: $(tr '\n' '|' <"$TMP/readyz"), want $1 and /$2/" >&2; return 1; }
}

web_service() { # AFFINITY-PYTHON: the fixtures' web Service, spec updated with it
	python3 -c "import json, sys
d = json.load(open('$FIX/services.json'))
s = [o for o in d['items'] if o['metadata']['name'] == 'web'][0]
s.setdefault('kind', 'Service')
s['spec'].update($1)
print(json.dumps(s))"
}

scenario_affinity() {
	local aff="{'type': 'ClientIP', 'timeoutSeconds': 600}" x
	x="lambda d, vip: [v.get('sessionAffinity') for v in d['services'] if v['name'] == 'default/web:http' and v['vip'] == vip]"
	CTL apply "$PORTS" "$(web_service "{'sessionAffinity': 'ClientIP',
		'sessionAffinityConfig': {'clientIP': {'timeoutSeconds': 600}}}")" &&
		WAIT "($x)(lst, '10.96.0.10') == [$aff] and ($x)(lst, 'fd00:96::10') == [$aff] and
		      ($x)(st, '10.96.0.10') == [$aff] and canon(lst) == canon(st)" &&
		CTL apply "$PORTS" "$(web_service "{'sessionAffinity': 'None'}")" &&
		WAIT "($x)(lst, '10.96.0.10') == [None] and ($x)(st, '10.96.0.10') == [None]"
}

# hc_objects AFFINITY-PYTHON: the Service "hc" (spec updated with it) and its
# EndpointSlice, as a JSON list for k8sctl apply
hc_objects() {
	python3 -c "import json
svc = {'kind': 'Service', 'apiVersion': 'v1',
       'metadata': {'name': 'hc', 'namespace': 'default', 'annotations': {
           'sluice.io/health-check': 'tcp', 'sluice.io/health-check-interval': '200ms',
           'sluice.io/health-check-timeout': '100ms', 'sluice.io/health-check-thresholds': '1/2'}},
       'spec': {'type': 'ClusterIP', 'clusterIP': '10.96.0.95', 'clusterIPs': ['10.96.0.95'],
                'ipFamilies': ['IPv4'], 'selector': {'app': 'hc'}, 'sessionAffinity': 'None',
                'ports': [{'name': 'http', 'protocol': 'TCP', 'port': 80, 'targetPort': 8080}]}}
svc['spec'].update($1)
eps = [{'addresses': ['10.77.0.%d' % i], 'targetRef': {'kind': 'Pod', 'name': 'hc-%d' % i},
        'conditions': {'ready': True, 'serving': True, 'terminating': False}} for i in (1, 2, 3)]
sl = {'kind': 'EndpointSlice', 'apiVersion': 'discovery.k8s.io/v1',
      'metadata': {'name': 'hc-x1', 'namespace': 'default',
                   'labels': {'kubernetes.io/service-name': 'hc'}},
      'addressType': 'IPv4', 'ports': [{'name': 'http', 'protocol': 'TCP', 'port': 8080}],
      'endpoints': eps}
print(json.dumps([svc, sl]))"
}

# hc_get PYTHON-EXPR: true when EXPR holds over g, `service get -o json` of hc
# (b(ADDR): that backend), within 10 s
hc_get() {
	local i
	for i in $(seq 100); do
		mctl -o json service get 10.96.0.95:80/tcp >"$TMP/hc.json" 2>&1 &&
			python3 -c "import json, sys
g = json.load(open('$TMP/hc.json'))
b = lambda a: [x for x in g['backends'] if x['address'] == a][0]
sys.exit(0 if ($1) else 1)" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "service get: not ($1) within 10 s: $(head -c 1500 "$TMP/hc.json")" >&2
	return 1
}

# hc_conns N ARGS...: N socket-LB connections to the VIP from our cgroup
hc_conns() {
	(echo "$BASHPID" >"$CG/cgroup.procs" &&
		exec nsenter --net="/var/run/netns/$NS" timeout 30 python3 "$ECHO" tcp 10.96.0.95 80 \
			-n "$@") >"$TMP/conns.out" 2>&1 ||
		{ echo "clients: $(tr '\n' ' ' <"$TMP/conns.out")" >&2; return 1; }
}

scenario_health_affinity() {
	local i first other aff="{'type': 'ClientIP', 'timeoutSeconds': 300}"
	for i in 1 2 3; do
		in_ns ip addr add "10.77.0.$i/32" dev lo || return 1
	done
	for i in 1 2; do
		nsenter --net="/var/run/netns/$NS" python3 "$ECHO" serve --name "hc-$i" \
			--addr "10.77.0.$i" --port 8080 --ready "$TMP/ready$i" >/dev/null 2>&1 &
		SRV_PIDS[i]=$!
	done
	for _ in $(seq 100); do
		[ -e "$TMP/ready1" ] && [ -e "$TMP/ready2" ] && break
		sleep 0.05
	done
	CTL apply "$PORTS" "$(hc_objects "{}")" || return 1
	# the check as synced, and its verdicts: .3 has no server
	hc_get "g['healthCheck']['type'] == 'tcp' and g['healthCheck']['intervalMs'] == 200 and
		g['healthCheck']['timeoutMs'] == 100 and g.get('sessionAffinity') is None and
		b('10.77.0.3')['state'] == 'unhealthy' and
		b('10.77.0.1')['probe']['state'] == 'healthy' and b('10.77.0.2')['probe']['state'] == 'healthy' and
		b('10.77.0.1')['state'] == b('10.77.0.2')['state'] == 'active'" || return 1
	# no affinity: spread over the healthy two, nothing to the unhealthy one
	hc_conns 40 --expect hc-1,hc-2 --avoid hc-3 || return 1
	CTL apply "$PORTS" "$(hc_objects "{'sessionAffinity': 'ClientIP',
		'sessionAffinityConfig': {'clientIP': {'timeoutSeconds': 300}}}")" &&
		hc_get "g.get('sessionAffinity') == $aff and g['healthCheck']['type'] == 'tcp'" || return 1
	hc_conns 1 --show || return 1
	first=$(sed -n 's/.*answered by \(hc-[12]\)$/\1/p' "$TMP/conns.out")
	[ -n "$first" ] || { echo "no backend in: $(cat "$TMP/conns.out")" >&2; return 1; }
	hc_conns 30 --expect "$first" --min-share 1 || return 1
	# its server dies: unhealthy by probe breaks the client's affinity
	i=${first#hc-}
	other=hc-$((3 - i))
	kill "${SRV_PIDS[i]}" && wait "${SRV_PIDS[i]}" 2>/dev/null
	SRV_PIDS[i]=
	hc_get "b('10.77.0.$i')['state'] == 'unhealthy'" &&
		hc_conns 20 --expect "$other" --min-share 1
}

lb_service() { # SPEC-PYTHON: the fixtures' lb Service, spec updated with it
	python3 -c "import json, sys
d = json.load(open('$FIX/services.json'))
s = [o for o in d['items'] if o['metadata']['name'] == 'lb'][0]
s.setdefault('kind', 'Service')
s['spec'].update($1)
print(json.dumps(s))"
}

# loadBalancerSourceRanges (#13): on the load-balancer ingress address only,
# masked, its family only; removing them removes them
scenario_source_ranges() {
	local x
	x="lambda d, vip: [v.get('sourceRanges') for v in d['services'] if v['name'] == 'default/lb' and v['vip'] == vip]"
	CTL apply "$PORTS" "$(lb_service "{'loadBalancerSourceRanges':
		['203.0.113.9/24', ' 198.18.0.0/15', '2001:db8::/32']}")" &&
		WAIT "($x)(lst, '198.51.100.7') == [['203.0.113.0/24', '198.18.0.0/15']] and
		      ($x)(st, '198.51.100.7') == [['203.0.113.0/24', '198.18.0.0/15']] and
		      ($x)(lst, '192.0.2.10') == [None] and ($x)(lst, '10.96.0.70') == [None] and
		      canon(lst) == canon(st)" &&
		CTL apply "$PORTS" "$(lb_service "{'loadBalancerSourceRanges': []}")" &&
		WAIT "($x)(lst, '198.51.100.7') == [None] and ($x)(st, '198.51.100.7') == [None]"
}

scenario_restart_unreachable() {
	local want manual maps
	# the manual service as it is now (earlier scenarios edited it)
	manual=$(mctl -o json service get 10.200.0.1:80/tcp | python3 -c \
		'import json,sys;print(sorted((b["address"],b["port"],b["weight"]) for b in json.load(sys.stdin)["backends"]))') ||
		return 1
	# the maps as the running meshd left them: a restart must not move them
	maps=$(python3 -c "import sys;sys.path.insert(0,'$K8S');import meshd_watch as w
class A: pins='$PIN'; netns='$NS'
print(w.maps_digest(A))") || return 1
	meshd_stop
	cp "$STATE" "$TMP/state.before"
	want=$(python3 -c "import json,sys;sys.path.insert(0,'$K8S');from k8sctl import canon;print(json.dumps(canon(json.load(open('$STATE')))))")
	CTL ctl "$PORTS" '{"op": "down"}' &&
		CTL ctl "$PORTS" '{"op": "delete", "kind": "services", "namespace": "default", "name": "lb"}' ||
		return 1
	meshd_start || return 1
	HOLD --for 2 "not status['kubernetes']['synced'] and canon(lst) == $want and
		      maps == '$maps' and canon(st) == $want" || return 1
	cmp -s "$STATE" "$TMP/state.before" || { echo "state file rewritten while the API was down" >&2; return 1; }
	grep -q '"synced": false' <(mctl -o json status) || return 1
	# not ready for traffic while the cluster's services are unknown
	readyz 503 '^\[-\]kubernetes: waiting for the first full list' || return 1
	in_ns curl -sf --max-time 5 "http://$METRICS/healthz" >/dev/null ||
		{ echo "GET /healthz failed while the API server is down" >&2; return 1; }
	CTL ctl "$PORTS" '{"op": "up"}' &&
		WAIT "status['kubernetes']['synced'] and svc('default/lb', '10.96.0.70') is None and
		      svc('default/lb', '192.0.2.10') is None and
		      sorted((b['address'], b['port'], b['weight']) for b in
		             [s for s in lst['services'] if s['name'] == 'manual-web'][0]['backends']) == $manual and
		      canon(lst) == canon(st)" &&
		grep -q '^Kubernetes:  synced' <(mctl status) &&
		readyz 200 '^\[+\]kubernetes ok$'
}

BURST_N=12
burst_objects() { # STEP: slices of burst-0..N-1 (STEP 0: and their Services)
	python3 - "$1" "$BURST_N" <<'EOF'
import json, sys
step, n = int(sys.argv[1]), int(sys.argv[2])
objs = []
for i in range(n):
    if step == 0:
        objs.append({"kind": "Service", "apiVersion": "v1",
                     "metadata": {"name": "burst-%d" % i, "namespace": "default"},
                     "spec": {"type": "ClusterIP", "clusterIP": "10.96.50.%d" % (i + 1),
                              "clusterIPs": ["10.96.50.%d" % (i + 1)], "ipFamilies": ["IPv4"],
                              "ports": [{"name": "http", "protocol": "TCP", "port": 80,
                                         "targetPort": 8080}]}})
    eps = [{"addresses": ["10.50.%d.%d" % (i, j + 1 + (step if j == 2 else 0))],
            "conditions": {"ready": True}} for j in range(3)]
    objs.append({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                 "metadata": {"name": "burst-%d-x" % i, "namespace": "default",
                              "labels": {"kubernetes.io/service-name": "burst-%d" % i}},
                 "addressType": "IPv4", "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
                 "endpoints": eps})
print(json.dumps(objs))
EOF
}
burst_ok() { # STEP: every burst service holds its 3 endpoints of STEP
	echo "all(svc('default/burst-%d:http' % i, '10.96.50.%d' % (i + 1)) ==
	      {'10.50.%d.1:8080' % i: 1, '10.50.%d.2:8080' % i: 1, '10.50.%d.%d:8080' % (i, 3 + $1): 1}
	      for i in range($BURST_N))"
}
commit_counts() { # "passes changes whole syncs" from status
	mctl -o json status | python3 -c 'import json, sys
d = json.load(sys.stdin); k, c = d["kubernetes"], d["commit"]
print(k["service_passes"], k["service_pass_changes"], k["whole_commits"], c["fsyncs"] + c["full_saves"])'
}

scenario_burst() {
	local a b want
	CTL apply "$PORTS" "$(burst_objects 0)" && WAIT "$(burst_ok 0)" || return 1
	sleep 0.5 # nothing else in flight (the debounce is 100 ms)
	read -r -a a < <(commit_counts) && [ ${#a[@]} -eq 4 ] || { echo "no commit counters" >&2; return 1; }
	CTL apply "$PORTS" "$(burst_objects 1)" && WAIT "$(burst_ok 1) and canon(lst) == canon(st)" ||
		return 1
	sleep 0.5
	read -r -a b < <(commit_counts) || return 1
	echo "burst of $BURST_N slices: passes +$((b[0] - a[0])), services changed +$((b[1] - a[1])), whole commits +$((b[2] - a[2])), syncs +$((b[3] - a[3]))" >&2
	[ $((b[0] - a[0])) -eq 1 ] && [ $((b[1] - a[1])) -eq "$BURST_N" ] && [ $((b[2] - a[2])) -eq 0 ] &&
		[ $((b[3] - a[3])) -eq 1 ] || { echo "not one pass with one sync" >&2; return 1; }
	# the whole-state result (a restart's initial list) equals the pass's
	want=$(mctl -o json service list | python3 -c "import json,sys;sys.path.insert(0,'$K8S');from k8sctl import canon;print(json.dumps(canon(json.load(sys.stdin))))") ||
		return 1
	meshd_stop
	meshd_start || return 1
	WAIT "status['kubernetes']['synced'] and status['kubernetes']['whole_commits'] == 1 and
	      canon(lst) == $want and canon(st) == $want"
}

ALL=(initial_sync terminating edits_refused apply_keeps status_metrics affinity
	health_affinity source_ranges restart_unreachable burst)
[ $# -gt 0 ] && ALL=("$@")
setup || { echo "FAIL: e2e/meshd_k8s_setup: see above"; exit 1; }
for sc in "${ALL[@]}"; do
	if "scenario_$sc" 2>"$TMP/err"; then
		pass "$sc"
	else
		fail "$sc" "$(tr '\n' ' ' <"$TMP/err" | cut -c1-600)"
		cat "$TMP/err" >&2
	fi
done
if [ "$failed" -gt 0 ]; then
	echo "--- meshd log (last 30 lines)" >&2
	tail -n 30 "$LOG" >&2
fi
[ "$failed" -eq 0 ]
