#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_k8s.sh - acceptance tests of the Kubernetes sync: Services and
# EndpointSlices from a (stand-in) Kubernetes API server into the desired
# state and the maps.
#
# Contract: starts tests/e2e/k8s/apiserver.py (127.0.0.1, bearer token
# required) with the recorded-format fixtures, and k8stool (the module
# driven the way meshd drives it: merge -> validate -> apply -> save) with a
# state file that already holds one manual service, applying to real maps
# opened without pins in the root namespace (no interface is touched).
# Scenarios, one "PASS: e2e/k8s_<name>" or "FAIL: e2e/k8s_<name>: <reason>"
# line each, in this order (later ones build on earlier state):
#   initial_sync          the fixtures translate to fixtures/expected.json;
#                         maps == state file; the manual service untouched
#   endpoint_added        a new ready endpoint appears with its weight
#   endpoint_terminating  a ready endpoint turns terminating: weight 0
#                         (draining); a service whose endpoints all terminate
#                         keeps them with weight 1
#   endpoint_removed      an endpoint leaves the slice: gone from state + maps
#   service_deleted       deleting a Service removes its cluster, external and
#                         load-balancer VIPs; the manual service stays
#   relist_410            ERROR 410 on live watches: both kinds relist, state
#                         unchanged; changes made during an outage that
#                         outlived the history arrive through the relist
#   paged_list            lists in pages of 2 (continue tokens) give the same
#                         state; an expired continue token restarts the list
#   disconnect            watches cut mid-event resume from the last
#                         resourceVersion without a list; no change is lost
#   malformed_json        broken JSON in a watch and in a list body: errors
#                         counted, state unchanged, later changes still arrive
#   restart_unreachable   the agent restarts while the API is down: nothing
#                         is removed (state file and maps hold), sync errors
#                         counted; when the API returns, the deletions made
#                         meanwhile are applied
#   tls_kubeconfig        (needs openssl) HTTPS with a kubeconfig (CA data,
#                         token): syncs; with a wrong CA: refused, counted
# Exits non-zero if any failed. Processes and temp files are removed on exit,
# failure or interruption. Needs python3, a built tree (`make`:
# build/tests/tools/k8stool) and root for the maps (without root the maps
# checks are skipped). About 25 s.
# Usage: test_k8s.sh [SCENARIO...]   (K8STOOL=path overrides the tool binary)
set -u
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the tree

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
K8S=$ROOT/tests/e2e/k8s
CTL="python3 $K8S/k8sctl.py"
FIX=$K8S/fixtures
TMP=$(mktemp -d /tmp/sluice-k8s.XXXXXX)
PORTS=$TMP/ports
TOKEN=tok-$$-$RANDOM
API_PID=
TOOL_PID=
TLS_PID=
failed=0

cleanup() {
	for p in $TOOL_PID $API_PID $TLS_PID; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS: e2e/k8s_$1"; }
fail() {
	echo "FAIL: e2e/k8s_$1: $2"
	failed=$((failed + 1))
}

build_tool() {
	TOOL=${K8STOOL:-$ROOT/build/tests/tools/k8stool}
	[ -x "$TOOL" ] || { echo "$TOOL missing: run make" >&2; return 1; }
}

start_api() {
	rm -f "$PORTS"
	python3 "$K8S/apiserver.py" --port-file "$PORTS" --token "$TOKEN" \
		--fixtures "$FIX/services.json" "$FIX/endpointslices.json" \
		>"$TMP/api.log" 2>&1 &
	API_PID=$!
	for _ in $(seq 100); do
		[ -s "$PORTS" ] && break
		sleep 0.05
	done
	[ -s "$PORTS" ] || { echo "apiserver did not start: $(cat "$TMP/api.log")" >&2; return 1; }
	API_URL=http://127.0.0.1:$(python3 -c "import json;print(json.load(open('$PORTS'))['api'])")
	$CTL ctl "$PORTS" '{"op": "set", "bookmark_interval": 0.5}'
}

APPLY=--apply
[ "$(id -u)" -eq 0 ] || APPLY=

start_tool() {
	"$TOOL" --server "$API_URL" --token-file "$TMP/token" --node n1 \
		--state "$TMP/state.json" ${APPLY:+$APPLY --maps "$TMP/maps.json"} \
		--stats "$TMP/stats.json" --backoff-min-ms 100 --backoff-max-ms 800 \
		--debounce-ms 30 >>"$TMP/tool.log" 2>&1 &
	TOOL_PID=$!
}

stop_tool() {
	[ -n "$TOOL_PID" ] || return 0
	kill "$TOOL_PID" 2>/dev/null
	wait "$TOOL_PID" 2>/dev/null
	TOOL_PID=
}

FILES=(--ports "$PORTS" --state "$TMP/state.json" --stats "$TMP/stats.json")
# generous: only a failure waits this long (loaded CI machines are slow)
WAIT() { $CTL wait --timeout 20 "${FILES[@]}" ${APPLY:+--maps "$TMP/maps.json"} "$@"; }
HOLD() { $CTL hold "${FILES[@]}" ${APPLY:+--maps "$TMP/maps.json"} "$@"; }
# maps follow the state file (when we have maps)
MAPS_OK='(maps is None or canon(maps) == canon(st))'
[ -n "$APPLY" ] && MAPS_OK='canon(maps) == canon(st)'
MANUAL_OK='svc("manual-web", "10.200.0.1") == {"10.200.1.1:80": 1}'

# The web service's first slice with the given endpoints (JSON list).
web_slice() {
	cat <<EOF
{"kind": "EndpointSlice", "metadata": {"name": "web-abc12", "namespace": "default",
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
WEB='svc("default/web:http", "10.96.0.10")'
MARK=0
mark_requests() { MARK=$($CTL get "$PORTS" 'len(api["requests"])'); }
since() { echo "api[\"requests\"][$MARK:]"; }

scenario_initial_sync() {
	WAIT "stats['synced'] and canon(kube(st)) == canon(expected) and $MAPS_OK" &&
		WAIT "[s['name'] for s in kube(st)['services']] == [s['name'] for s in expected['services']]" &&
		WAIT "$MANUAL_OK and stats['sync_errors'] == 0 and stats['relists'] == 0" ||
		return 1
}

scenario_endpoint_added() {
	$CTL apply "$PORTS" "$(web_slice "[$(ep 10.1.0.1 web-v1-aaa true true false),
		$(ep 10.1.0.2 web-v1-bbb true true false), $(ep 10.1.0.3 web-v1-ccc false true true),
		$(ep 10.1.0.5 web-v1-eee true true false)]")" &&
		WAIT "$WEB.get('10.1.0.5:8080') == 90 and len($WEB) == 5 and $MAPS_OK"
}

scenario_endpoint_terminating() {
	$CTL apply "$PORTS" "$(web_slice "[$(ep 10.1.0.1 web-v1-aaa false true true),
		$(ep 10.1.0.2 web-v1-bbb true true false), $(ep 10.1.0.3 web-v1-ccc false true true),
		$(ep 10.1.0.5 web-v1-eee true true false)]")" &&
		WAIT "$WEB.get('10.1.0.1:8080') == 0 and $WEB.get('10.1.0.2:8080') == 90 and $MAPS_OK" ||
		return 1
	# every dns endpoint terminating: they still serve, weight 1
	$CTL apply "$PORTS" '{"kind": "EndpointSlice", "metadata": {"name": "kube-dns-xyz",
		"namespace": "kube-system", "labels": {"kubernetes.io/service-name": "kube-dns"}},
		"addressType": "IPv4", "ports": [{"name": "dns", "protocol": "UDP", "port": 53}],
		"endpoints": [{"addresses": ["10.2.0.1"], "conditions": {"ready": false,
		"serving": true, "terminating": true}}, {"addresses": ["10.2.0.2"],
		"conditions": {"ready": false, "serving": false, "terminating": true}}]}' &&
		WAIT "svc('kube-system/kube-dns:dns', '10.96.0.53') == {'10.2.0.1:53': 1} and $MAPS_OK"
}

scenario_endpoint_removed() {
	$CTL apply "$PORTS" "$(web_slice "[$(ep 10.1.0.1 web-v1-aaa false true true),
		$(ep 10.1.0.3 web-v1-ccc false true true), $(ep 10.1.0.5 web-v1-eee true true false)]")" &&
		WAIT "'10.1.0.2:8080' not in $WEB and '10.1.0.2:8443' not in svc('default/web:https', '10.96.0.10') and $MAPS_OK"
}

scenario_service_deleted() {
	$CTL ctl "$PORTS" '{"op": "delete", "kind": "services", "namespace": "default", "name": "lb"}' &&
		WAIT "all(svc('default/lb', v) is None for v in ('10.96.0.70', '192.0.2.10', '198.51.100.7')) and $MAPS_OK and $MANUAL_OK"
}

scenario_relist_410() {
	local before
	before=$(cat "$TMP/state.json")
	WAIT "all(stats['connected'].values())" || return 1
	local r0
	r0=$(python3 -c "import json;print(json.load(open('$TMP/stats.json'))['relists'])")
	$CTL ctl "$PORTS" '{"op": "gone"}' &&
		WAIT "stats['relists'] >= $r0 + 2 and all(stats['connected'].values())" || return 1
	[ "$before" = "$(cat "$TMP/state.json")" ] || { echo "state changed by a relist" >&2; return 1; }
	# an outage that outlives the server's history: resume gets 410, relist
	$CTL ctl "$PORTS" '{"op": "down"}' &&
		$CTL ctl "$PORTS" '{"op": "delete", "kind": "services", "namespace": "default", "name": "empty"}' &&
		$CTL ctl "$PORTS" '{"op": "delete", "kind": "endpointslices", "namespace": "default", "name": "mixed-1"}' &&
		$CTL ctl "$PORTS" '{"op": "gone"}' &&
		HOLD --for 0.5 "svc('default/empty', '10.96.0.90') == {}" &&
		$CTL ctl "$PORTS" '{"op": "up"}' &&
		WAIT "svc('default/empty', '10.96.0.90') is None and svc('default/mixed:tcp', '10.96.0.60') == {} and stats['relists'] >= $r0 + 4 and $MAPS_OK"
}

scenario_paged_list() {
	local before
	before=$(cat "$TMP/state.json")
	mark_requests
	$CTL ctl "$PORTS" '{"op": "set", "page_size": 2}' &&
		$CTL ctl "$PORTS" '{"op": "gone"}' &&
		WAIT "sum(1 for r in $(since) if r['verb'] == 'list' and r['continue']) >= 4 and all(stats['connected'].values())" &&
		WAIT "canon(st) == canon(json.loads('''$before''')) and $MAPS_OK" || return 1
	# a continue token that expires mid-list: the list starts over
	mark_requests
	$CTL ctl "$PORTS" '{"op": "expire_continue"}' &&
		$CTL ctl "$PORTS" '{"op": "gone", "kind": "services"}' &&
		WAIT "[r['continue'] for r in $(since) if r['verb'] == 'list'][:3] == [False, True, False] and all(stats['connected'].values())" &&
		WAIT "canon(st) == canon(json.loads('''$before''')) and $MAPS_OK" &&
		$CTL ctl "$PORTS" '{"op": "set", "page_size": 0}'
}

scenario_disconnect() {
	WAIT "all(stats['connected'].values())" || return 1
	local w0
	w0=$(python3 -c "import json;print(json.load(open('$TMP/stats.json'))['watch_restarts'])")
	mark_requests
	$CTL ctl "$PORTS" '{"op": "drop"}' &&
		$CTL apply "$PORTS" "$(web_slice "[$(ep 10.1.0.3 web-v1-ccc false true true),
			$(ep 10.1.0.5 web-v1-eee true true false), $(ep 10.1.0.6 web-v1-fff true true false)]")" &&
		WAIT "$WEB == {'10.1.0.3:8080': 0, '10.1.0.5:8080': 90, '10.1.0.6:8080': 90, '10.1.0.9:9090': 10} and stats['watch_restarts'] >= $w0 + 2 and $MAPS_OK" &&
		WAIT "all(stats['connected'].values())" &&
		WAIT "not [r for r in $(since) if r['verb'] == 'list'] and len([r for r in $(since) if r['verb'] == 'watch' and r['resourceVersion'] != '0']) >= 2"
}

scenario_malformed_json() {
	local before e0
	WAIT "all(stats['connected'].values())" || return 1
	before=$(cat "$TMP/state.json")
	e0=$(python3 -c "import json;print(json.load(open('$TMP/stats.json'))['sync_errors'])")
	$CTL ctl "$PORTS" '{"op": "malformed", "kind": "endpointslices"}' &&
		WAIT "stats['sync_errors'] >= $e0 + 1" || return 1
	grep -q "malformed JSON in the watch stream" "$TMP/tool.log" ||
		{ echo "no 'malformed JSON' error logged" >&2; return 1; }
	[ "$before" = "$(cat "$TMP/state.json")" ] || { echo "state changed by malformed JSON" >&2; return 1; }
	# a broken list body: counted, the list is retried, nothing changes
	$CTL ctl "$PORTS" '{"op": "malformed", "kind": "services", "where": "list"}' &&
		$CTL ctl "$PORTS" '{"op": "gone", "kind": "services"}' &&
		WAIT "stats['sync_errors'] >= $e0 + 2 and all(stats['connected'].values())" || return 1
	[ "$before" = "$(cat "$TMP/state.json")" ] || { echo "state changed by a broken list" >&2; return 1; }
	$CTL apply "$PORTS" "$(web_slice "[$(ep 10.1.0.5 web-v1-eee true true false)]")" &&
		WAIT "$WEB == {'10.1.0.5:8080': 90, '10.1.0.9:9090': 10} and $MAPS_OK"
}

scenario_restart_unreachable() {
	local before
	stop_tool
	before=$(cat "$TMP/state.json")
	$CTL ctl "$PORTS" '{"op": "down"}' &&
		$CTL ctl "$PORTS" '{"op": "delete", "kind": "services", "namespace": "default", "name": "web"}' ||
		return 1
	rm -f "$TMP/stats.json" "$TMP/maps.json"
	start_tool
	WAIT "stats is not None and stats['sync_errors'] >= 2 and not stats['synced']" &&
		HOLD --for 1.5 "$WEB is not None and $MANUAL_OK and not stats['synced'] and $MAPS_OK and len(canon(st)) == len(canon(json.loads('''$before''')))" ||
		return 1
	[ "$before" = "$(cat "$TMP/state.json")" ] || { echo "state file changed while the API was down" >&2; return 1; }
	$CTL ctl "$PORTS" '{"op": "up"}' &&
		WAIT "stats['synced'] and $WEB is None and svc('default/web:http', 'fd00:96::10') is None and $MANUAL_OK and $MAPS_OK"
}

scenario_tls_kubeconfig() {
	command -v openssl >/dev/null || { echo "openssl missing: skipped" >&2; return 0; }
	local d=$TMP/tls tls_ports=$TMP/tls-ports port
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=test-ca \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=apiserver -keyout "$d/srv.key" \
			-out "$d/srv.csr" 2>/dev/null &&
		printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext" &&
		openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
			-CAcreateserial -days 1 -extfile "$d/ext" -out "$d/srv.crt" 2>/dev/null &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=other-ca \
			-keyout "$d/bad.key" -out "$d/bad.crt" 2>/dev/null || return 1
	python3 "$K8S/apiserver.py" --port-file "$tls_ports" --token "$TOKEN" \
		--tls-cert "$d/srv.crt" --tls-key "$d/srv.key" \
		--fixtures "$FIX/services.json" "$FIX/endpointslices.json" >"$TMP/tls.log" 2>&1 &
	TLS_PID=$!
	for _ in $(seq 100); do
		[ -s "$tls_ports" ] && break
		sleep 0.05
	done
	port=$(python3 -c "import json;print(json.load(open('$tls_ports'))['api'])") || return 1
	for ca in ca bad; do
		cat >"$d/kubeconfig-$ca" <<EOF
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: stand-in
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $(base64 -w0 "$d/$ca.crt")
contexts:
- name: test
  context: {cluster: stand-in, user: sluice}
users:
- name: sluice
  user:
    token: $TOKEN
EOF
	done
	timeout 10 "$TOOL" --kubeconfig "$d/kubeconfig-ca" --node n1 --once >"$d/out.json" 2>"$d/tool.log" ||
		{ echo "sync over TLS failed: $(tail -3 "$d/tool.log")" >&2; return 1; }
	python3 - "$K8S" "$d/out.json" "$FIX/expected.json" <<'PY' || return 1
import json, sys
sys.path.insert(0, sys.argv[1])
from k8sctl import canon
got, want = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
if canon(got) != canon(want):
    sys.exit("TLS sync differs from expected.json")
PY
	timeout 3 "$TOOL" --kubeconfig "$d/kubeconfig-bad" --once --stats "$d/stats.json" \
		--backoff-min-ms 100 >/dev/null 2>"$d/bad.log"
	[ $? -eq 124 ] || { echo "a wrong CA was not refused" >&2; return 1; }
	grep -qi "certificate" "$d/bad.log" || { echo "no certificate error logged" >&2; return 1; }
	python3 -c "import json,sys; s=json.load(open('$d/stats.json')); sys.exit(not (s['sync_errors'] >= 2 and not s['synced']))" ||
		{ echo "wrong CA: errors not counted" >&2; return 1; }
	kill "$TLS_PID" && wait "$TLS_PID" 2>/dev/null
	TLS_PID=
}

ALL=(initial_sync endpoint_added endpoint_terminating endpoint_removed service_deleted
	relist_410 paged_list disconnect malformed_json restart_unreachable tls_kubeconfig)
[ $# -gt 0 ] && ALL=("$@")

if ! build_tool 2>"$TMP/build.log"; then
	echo "FAIL: e2e/k8s_build: k8stool: $(head -5 "$TMP/build.log")"
	exit 1
fi
printf '%s\n' "$TOKEN" >"$TMP/token"
# one manual service the sync must never touch
cat >"$TMP/state.json" <<'EOF'
{"services": [{"name": "manual-web", "vip": "10.200.0.1", "port": 80, "protocol": "tcp",
  "backends": [{"address": "10.200.1.1", "port": 80}]}]}
EOF
if ! start_api; then
	echo "FAIL: e2e/k8s_setup: the stand-in API server did not start"
	exit 1
fi
start_tool
[ -z "$APPLY" ] && echo "note: not root, maps checks skipped" >&2

for s in "${ALL[@]}"; do
	t0=$SECONDS
	# in this shell, not a $(...) subshell: scenarios restart processes
	# whose ids cleanup() must know
	if "scenario_$s" >"$TMP/out" 2>&1; then
		pass "$s ($((SECONDS - t0))s)"
	else
		fail "$s" "$(tail -3 "$TMP/out" | tr '\n' ' ')"
		echo "--- k8stool log (tail)" >&2
		tail -15 "$TMP/tool.log" >&2
	fi
done
[ "$failed" -eq 0 ]
