#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_journal.sh - the state file's journal (#16) against kill -9:
# meshd in a namespace of its own (a veth pair, XDP generic; telemetry,
# socket LB, redirect and metrics off; own pins, state, socket) gets 50
# services x 4, then `meshctl backend weight` changes; it is killed -9
# right after the last answer (before the 1 s idle fold), so the changes
# live only in STATE.journal. Scenarios:
#   kill9   restart: every acknowledged weight is in meshd's view
#           (`service list -o json`), the maps (backend weight in the
#           service's answer) and, after the start's fold, the state file
#           alone; the journal is gone.
#   torn    as kill9, plus a half-written line appended to the journal
#           (a record whose fdatasync never returned): dropped with a
#           warning, every acknowledged change kept.
#   stale   as kill9, plus a full save (`apply` of the same services with
#           one more) made while the journal exists: the apply removes it;
#           its changes are in the file.
#   batch   group commit: 8 clients at once, 5 rounds of backend.weight,
#           then one backend.batch of 40 changes with one refused in the
#           middle (a backend not in its service); killed -9 right after
#           the batch's answer: every acknowledged change (and none of the
#           refused one) survives; `status` shows fewer fsyncs than changes;
#           `meshctl backend batch -f` of 3 lines, one refused: exit 1, the
#           refused line named, the other two kept too.
# One "PASS: e2e/meshd_journal_<name>" or "FAIL: ..." line each; exits
# non-zero if any failed. Root; `make` first. About 20 s.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
ID=smj$$
NS=$ID-ns
PIN=/sys/fs/bpf/$ID
WORK=$(mktemp -d /tmp/$ID.XXXXXX)
SOCK=$WORK/meshd.sock
STATE=$WORK/state.json
LOG=$WORK/meshd.log
MESHD_PID=
FAILED=0
N=50

# shellcheck disable=SC2317 # called by the traps
cleanup() {
	if [ -n "$MESHD_PID" ]; then
		kill -9 "$MESHD_PID" 2>/dev/null
		wait "$MESHD_PID" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mctl() { "$BUILD/meshctl" -s "$SOCK" --timeout 30000 "$@"; }

meshd_start() {
	local before
	before=$(grep -c 'meshd ready' "$LOG" 2>/dev/null)
	nsenter --net="/var/run/netns/$NS" "$BUILD/meshd" --interfaces mc0 --bpffs "$PIN" \
		--state "$STATE" --socket "$SOCK" --telemetry off --socket-lb off --redirect off \
		--metrics off >>"$LOG" 2>&1 &
	MESHD_PID=$!
	for _ in $(seq 500); do
		[ "$(grep -c 'meshd ready' "$LOG")" -gt "$before" ] && return 0
		kill -0 "$MESHD_PID" 2>/dev/null || { MESHD_PID=; return 1; }
		sleep 0.02
	done
	return 1
}

meshd_kill9() {
	kill -9 "$MESHD_PID" 2>/dev/null
	wait "$MESHD_PID" 2>/dev/null
	MESHD_PID=
}

gen() { # gen N EXTRA: N services x 4 (+ EXTRA more), weights 1
	python3 - "$1" "$2" <<'EOF'
import json, sys
n = int(sys.argv[1]) + int(sys.argv[2])
print(json.dumps({"services": [{"vip": "10.96.1.%d" % (i + 1), "port": 80, "protocol": "tcp",
    "backends": [{"address": "10.201.%d.%d" % (i, j + 1), "port": 8080, "weight": 1}
                 for j in range(4)]} for i in range(n)]}))
EOF
}

# check WHAT FILE: the weights in $WORK/want ("svc be weight" lines) are
# in service list -o json and in FILE (a state file) when given.
check() {
	mctl -o json service list >"$WORK/list.json" || { echo "service list failed"; return 1; }
	python3 - "$WORK/want" "$WORK/list.json" "${2:-}" <<'EOF'
import json, sys
want = {}
for l in open(sys.argv[1]):
    if l.strip():
        svc, be, w = l.split()
        want[(svc, be)] = w  # the last one counts
want = [(k[0], k[1], w) for k, w in want.items()]
def weights(svcs):
    return {("%s:%d/tcp" % (s["vip"], s["port"]), "%s:%d" % (b["address"], b["port"])): b["weight"]
            for s in svcs for b in s.get("backends", [])}
srcs = [("service list", json.load(open(sys.argv[2]))["services"])]
if sys.argv[3]:
    srcs.append(("state file", json.load(open(sys.argv[3]))["services"]))
for name, svcs in srcs:
    w = weights(svcs)
    bad = [x for x in want if w.get((x[0], x[1])) != int(x[2])]
    if bad:
        sys.exit("%s: %d of %d weights lost, e.g. %s" % (name, len(bad), len(want), bad[0]))
EOF
}

# 8 concurrent clients x 5 rounds of backend.weight, then one
# backend.batch of 40 (change 20 refused); acknowledged ones into want.
batch_changes() {
	python3 - "$SOCK" "$N" "$WORK/want" <<'EOF'
import json, socket, sys, threading
sock, n, want = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def call(req):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock)
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
    return json.loads(buf)
acked = []
lock = threading.Lock()
def client(c):
    for r in range(5):
        svc, be, w = "10.96.1.%d:80/tcp" % (c + 1), "10.201.%d.%d:8080" % (c, r % 4 + 1), 10 + r
        rep = call({"op": "backend.weight", "service": svc, "backend": be, "weight": w})
        if not rep.get("ok"):
            sys.exit("backend.weight %s %s: %s" % (svc, be, rep.get("error")))
        with lock:
            acked.append((svc, be, w))
s0 = call({"op": "status"})["data"]["commit"]
th = [threading.Thread(target=client, args=(c,)) for c in range(8)]
for t in th:
    t.start()
for t in th:
    t.join()
if len(acked) != 40:
    sys.exit("only %d of 40 concurrent changes acknowledged" % len(acked))
changes = []
for i in range(40):
    svc = "10.96.1.%d:80/tcp" % (i % n + 1)
    be = "10.201.%d.%d:8080" % (i % n, i % 4 + 1) if i != 20 else "10.201.99.99:8080"
    changes.append({"op": "weight", "service": svc, "backend": be, "weight": 100 + i})
s1 = call({"op": "status"})["data"]["commit"]
rep = call({"op": "backend.batch", "changes": changes})
if not rep.get("ok") or rep["data"]["applied"] != 39 or rep["data"]["refused"] != 1:
    sys.exit("backend.batch: %s" % json.dumps(rep)[:300])
if rep["data"]["results"][20].get("ok") or "not in service" not in rep["data"]["results"][20]["error"]:
    sys.exit("change 20 not refused: %s" % rep["data"]["results"][20])
s2 = call({"op": "status"})["data"]["commit"]
if s2["fsyncs"] + s2["full_saves"] - s1["fsyncs"] - s1["full_saves"] != 1:
    sys.exit("backend.batch of 39 took %d syncs" % (s2["fsyncs"] - s1["fsyncs"]))
d = s1["fsyncs"] + s1["full_saves"] - s0["fsyncs"] - s0["full_saves"]
if d >= 40:
    sys.exit("40 concurrent changes took %d syncs: no group commit" % d)
with open(want, "a") as f:
    for svc, be, w in acked:
        f.write("%s %s %d\n" % (svc, be, w))
    for c in changes:
        if c["backend"] != "10.201.99.99:8080":
            f.write("%s %s %d\n" % (c["service"], c["backend"], c["weight"]))
print("OK: 40 concurrent changes in %d syncs, 39 batched in 1" % d)
EOF
}

run_case() {
	local name=$1 i svc be w err="" seq=0
	rm -rf "$PIN" "$STATE" "$STATE.journal" "$WORK/want"
	: >"$LOG"
	meshd_start || { echo "FAIL: e2e/meshd_journal_$name (meshd did not start)"; FAILED=1; return; }
	gen "$N" 0 >"$WORK/svcs.json"
	mctl apply -f "$WORK/svcs.json" >/dev/null || err="apply failed"
	if [ "$name" = batch ] && [ -z "$err" ]; then
		err=$(batch_changes 2>&1) || err="${err:-batch changes failed}"
		case $err in OK:*) echo "  $err"; err="" ;; esac
		# the same through meshctl: one refused line, the others applied
		printf '%s\n' "# a rolling step" "weight 10.96.1.3:80/tcp 10.201.2.1:8080 77" \
			"del 10.96.1.3:80/tcp 10.201.77.1:8080" "drain 10.96.1.4:80/tcp 10.201.3.2:8080" \
			>"$WORK/batch.txt"
		if mctl backend batch -f "$WORK/batch.txt" >"$WORK/batch.out" 2>&1; then
			err="${err:-meshctl backend batch: exit 0 with a refused line}"
		elif ! grep -q "applied 2 of 3 changes" "$WORK/batch.out" ||
			! grep -q "line 3: backend 10.201.77.1:8080 is not in service" "$WORK/batch.out"; then
			err="${err:-meshctl backend batch said: $(tr '\n' ' ' <"$WORK/batch.out")}"
		fi
		printf '%s\n' "10.96.1.3:80/tcp 10.201.2.1:8080 77" "10.96.1.4:80/tcp 10.201.3.2:8080 0" \
			>>"$WORK/want"
		seq=40 # done: no sequential changes
	fi
	for ((i = seq; i < 40 && !${#err}; i++)); do
		svc="10.96.1.$((i % N + 1)):80/tcp" be="10.201.$((i % N)).$((i % 4 + 1)):8080"
		w=$((i + 2))
		mctl backend weight "$svc" "$be" "$w" >/dev/null || err="backend weight $svc $be $w failed"
		echo "$svc $be $w" >>"$WORK/want"
	done
	meshd_kill9
	[ -n "$err" ] || [ -s "$STATE.journal" ] || err="no journal after the changes (folded already?)"
	case $name in
	torn) [ -n "$err" ] || printf '{"vip": "10.96.1.1", "port": 80, "protocol": "tc' >>"$STATE.journal" ;;
	esac
	if [ -z "$err" ]; then
		meshd_start || err="meshd did not restart: $(tail -n 2 "$LOG" | tr '\n' ' ')"
	fi
	if [ -z "$err" ] && [ "$name" = stale ]; then
		mctl backend weight 10.96.1.1:80/tcp 10.201.0.1:8080 99 >/dev/null &&
			echo "10.96.1.1:80/tcp 10.201.0.1:8080 99" >>"$WORK/want" || err="weight 99 failed"
		[ -s "$STATE.journal" ] || err="${err:-no journal after weight 99}"
		gen "$N" 1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
for l in open(sys.argv[1]):
    svc, be, w = l.split()
    for s in d["services"]:
        if "%s:80/tcp" % s["vip"] == svc:
            for b in s["backends"]:
                if "%s:8080" % b["address"] == be:
                    b["weight"] = int(w)
print(json.dumps(d))' "$WORK/want" >"$WORK/svcs2.json"
		mctl apply -f "$WORK/svcs2.json" >/dev/null || err="${err:-apply of one more failed}"
		[ -e "$STATE.journal" ] && err="${err:-the apply left the journal}"
		meshd_kill9
		meshd_start || err="${err:-meshd did not restart after the apply}"
	fi
	[ -n "$err" ] || err=$(check "$name" 2>&1) || true
	if [ -z "$err" ]; then
		grep -q "change(s) replayed" "$LOG" || err="no replay logged"
		[ -e "$STATE.journal" ] && err="${err:-journal still there after the start}"
	fi
	[ -n "$err" ] || err=$(check "$name" "$STATE" 2>&1) || true
	if [ "$name" = torn ] && [ -z "$err" ]; then
		grep -q "cut short by a crash: dropped" "$LOG" || err="the torn line was not reported"
	fi
	meshd_kill9
	if [ -n "$err" ]; then
		echo "FAIL: e2e/meshd_journal_$name ($err)"
		FAILED=1
	else
		echo "PASS: e2e/meshd_journal_$name"
	fi
}

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 1; }
ip netns add "$NS" && ip -n "$NS" link add mc0 type veth peer name mc1 &&
	ip -n "$NS" link set mc0 up && ip -n "$NS" link set mc1 up || exit 1
for c in "${@:-kill9 torn stale batch}"; do
	# shellcheck disable=SC2086 # the default list splits on purpose
	for n in $c; do run_case "$n"; done
done
exit $FAILED
