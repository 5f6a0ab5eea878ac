#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# meshd_change.sh - what one backend change costs through meshd (#16): the
# time from an API request to its answer, state durable on disk.
#
# Starts build/meshd in a network namespace of its own (a veth pair inside
# it, XDP generic on one end; telemetry, socket LB, redirect and metrics
# off), with its own pin dir, state file and socket; applies N services x
# 10 backends (`meshctl apply -f`, timed); then
#   single: K `backend.weight` requests, one at a time, each on a random
#           service, through the API socket (meshctl's protocol, a Python
#           client: no process start in the figure) -> p50/p99/max ms;
#   meshctl: 5 of them through `meshctl backend weight` (process start
#           included) -> each ms;
#   burst:  R requests in a row, the next sent when the previous answered
#           (a rolling update by one sequential client) -> total s;
#   concurrent: the same R changes from C clients at once, each sending
#           its next when its previous answered (several controllers, or
#           one that does not wait: group commit's case) -> p50/p99/max ms
#           per request and total s;
#   batch:  the same R changes as `backend.batch` requests of B changes
#           each (one request per batch: how a rolling update maps onto
#           one client that knows its whole step) -> per-batch ms, total s.
# Then meshd's commit counters (status "commit": commits, fsyncs, and
# the time spent validating, writing the maps, journaling, syncing)
# over the whole run: where one change's time goes.
# The durable state is checked at the end: the state file with its journal
# replayed holds the last weights, and so does the file alone once meshd
# folded the journal in (changes stopped: within its 10 s check tick).
# Everything lives in what the script created and is removed on exit,
# failure or signal included.
#
# Usage: meshd_change.sh [-n SERVICES] [-k SINGLE] [-r ROW] [-c CLIENTS] [-b BATCH]
#        defaults: -n 10000 -k 200 -r 1000 -c 8 -b 100   (root; `make`)
# A meshd without batches (main before group commit) skips what it lacks.
# Figures are noisy on a shared 2-core machine: say the load average.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
N=10000
K=200
R=1000
C=8
B=100
while getopts n:k:r:c:b: o; do
	case $o in
	n) N=$OPTARG ;;
	k) K=$OPTARG ;;
	r) R=$OPTARG ;;
	c) C=$OPTARG ;;
	b) B=$OPTARG ;;
	*) exit 2 ;;
	esac
done

ID=smc$$
NS=$ID-ns
PIN=/sys/fs/bpf/$ID
WORK=$(mktemp -d /tmp/$ID.XXXXXX)
SOCK=$WORK/meshd.sock
STATE=$WORK/state.json
LOG=$WORK/meshd.log
MESHD_PID=

cleanup() {
	if [ -n "$MESHD_PID" ]; then
		kill -TERM "$MESHD_PID" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$MESHD_PID" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$MESHD_PID" 2>/dev/null
		wait "$MESHD_PID" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	rm -rf "$PIN" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "error: $*" >&2
	[ -f "$LOG" ] && tail -n 5 "$LOG" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root"
{ [ -x "$BUILD/meshd" ] && [ -x "$BUILD/meshctl" ]; } || die "run make first"

ip netns add "$NS" || die "netns $NS"
ip -n "$NS" link add mc0 type veth peer name mc1 || die "veth"
{ ip -n "$NS" link set mc0 up && ip -n "$NS" link set mc1 up; } || die "link up"

python3 - "$N" >"$WORK/svcs.json" <<'EOF'
import json, sys
n = int(sys.argv[1])
svcs = []
for i in range(n):
    svcs.append({"vip": "10.%d.%d.%d" % (96 + i // 65536, (i // 256) % 256, i % 256),
                 "port": 80, "protocol": "tcp",
                 "backends": [{"address": "10.200.%d.%d" % ((i * 10 + j) // 250 % 250, (i * 10 + j) % 250 + 1),
                               "port": 8080, "weight": 1} for j in range(10)]})
json.dump({"services": svcs}, sys.stdout)
EOF

nsenter --net="/var/run/netns/$NS" "$BUILD/meshd" --interfaces mc0 --bpffs "$PIN" \
	--state "$STATE" --socket "$SOCK" --telemetry off --socket-lb off --redirect off \
	--metrics off >"$LOG" 2>&1 &
MESHD_PID=$!
for _ in $(seq 500); do
	grep -q 'meshd ready' "$LOG" && break
	kill -0 "$MESHD_PID" 2>/dev/null || die "meshd exited"
	sleep 0.02
done
grep -q 'meshd ready' "$LOG" || die "meshd not ready"

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
"$BUILD/meshctl" -s "$SOCK" --timeout 600000 apply -f "$WORK/svcs.json" >/dev/null ||
	die "apply"
t1=$(date +%s.%N)
echo "apply $N services x 10: $(echo "$t1 - $t0" | bc) s"

python3 - "$SOCK" "$N" "$K" "$R" "$BUILD/meshctl" "$STATE" "$C" "$B" <<'EOF' || die "bench"
import json, os, random, socket, subprocess, sys, threading, time
sock, n, k, r, meshctl, state = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
nclients, bsize = int(sys.argv[7]), int(sys.argv[8])
random.seed(16)
last = {}

def vip(i):
    return "10.%d.%d.%d" % (96 + i // 65536, (i // 256) % 256, i % 256)

def be(i, j):
    return "10.200.%d.%d:8080" % ((i * 10 + j) // 250 % 250, (i * 10 + j) % 250 + 1)

def call(req, must=True):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock)
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            buf += c
    rep = json.loads(buf)
    if must and not rep.get("ok"):
        raise SystemExit("error: %s" % rep.get("error"))
    return rep

def commit_stats():
    st = call({"op": "status"}, False).get("data", {}).get("commit")
    return st

def stats_delta(what, a, b):
    if not a or not b:
        print("%s: meshd has no commit counters" % what)
        return
    d = {key: b[key] - a[key] for key in b if isinstance(b[key], (int, float)) and key in a}
    c = d.get("changes", 0) or 1
    print("%s: %d changes, %d commits (fsyncs %d)  per change: validate %.3f ms, maps %.3f ms, "
          "journal write %.3f ms, fsync %.3f ms" % (what, d.get("changes", 0), d.get("batches", 0),
          d.get("fsyncs", 0), d.get("validate_us", 0) / 1e3 / c, d.get("maps_us", 0) / 1e3 / c,
          d.get("write_us", 0) / 1e3 / c, d.get("fsync_us", 0) / 1e3 / c))

def change():
    i, j, w = random.randrange(n), random.randrange(10), random.randint(1, 100)
    last[(i, j)] = w
    return {"op": "backend.weight", "service": "%s:80/tcp" % vip(i), "backend": be(i, j), "weight": w}

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]

ms = []
s0 = commit_stats()
for _ in range(k):
    req = change()
    t = time.perf_counter()
    call(req)
    ms.append((time.perf_counter() - t) * 1e3)
print("single (API, %d): p50 %.2f ms  p99 %.2f ms  max %.2f ms" % (k, pct(ms, 50), pct(ms, 99), max(ms)))
stats_delta("  single", s0, commit_stats())
cl = []
for _ in range(5):
    req = change()
    t = time.perf_counter()
    subprocess.run([meshctl, "-s", sock, "--timeout", "60000", "backend", "weight", req["service"],
                    req["backend"], str(req["weight"])], check=True, stdout=subprocess.DEVNULL)
    cl.append((time.perf_counter() - t) * 1e3)
print("meshctl backend weight (5): " + " ".join("%.1f" % x for x in cl) + " ms")
reqs = [change() for _ in range(r)]
s0 = commit_stats()
t = time.perf_counter()
for req in reqs:
    call(req)
print("in a row (%d): %.3f s" % (r, time.perf_counter() - t))
stats_delta("  in a row", s0, commit_stats())

# concurrent clients: each takes the next change of one shared list (so
# the last weight of a backend is the one answered last... per backend
# the changes are spread over clients: keep one backend per client)
reqs = [change() for _ in range(r)]
byclient = [[] for _ in range(nclients)]
for q in reqs:
    byclient[hash((q["service"], q["backend"])) % nclients].append(q)
lat = [[] for _ in range(nclients)]
def client(c):
    for q in byclient[c]:
        t1 = time.perf_counter()
        call(q)
        lat[c].append((time.perf_counter() - t1) * 1e3)
s0 = commit_stats()
t = time.perf_counter()
th = [threading.Thread(target=client, args=(c,)) for c in range(nclients)]
for x in th:
    x.start()
for x in th:
    x.join()
tot = time.perf_counter() - t
allms = [x for l in lat for x in l]
if len(allms) != r:
    raise SystemExit("error: a concurrent client failed")
print("concurrent (%d clients, %d): p50 %.2f ms  p99 %.2f ms  max %.2f ms  total %.3f s"
      % (nclients, r, pct(allms, 50), pct(allms, 99), max(allms), tot))
stats_delta("  concurrent", s0, commit_stats())

reqs = [change() for _ in range(r)]
probe = call({"op": "backend.batch", "changes": []}, False)
if "unknown op" in str(probe.get("error", "")):
    print("batch: this meshd has no backend.batch")
    for q in reqs:  # the last weights must hold for the check below
        call(q)
else:
    bl = []
    s0 = commit_stats()
    t = time.perf_counter()
    for off in range(0, r, bsize):
        chunk = [{"op": "weight", "service": q["service"], "backend": q["backend"],
                  "weight": q["weight"]} for q in reqs[off:off + bsize]]
        t1 = time.perf_counter()
        rep = call({"op": "backend.batch", "changes": chunk})
        bl.append((time.perf_counter() - t1) * 1e3)
        bad = [x for x in rep["data"]["results"] if not x.get("ok")]
        if bad:
            raise SystemExit("error: batch change refused: %s" % bad[0])
    print("batch (%d changes, %d per request): per request p50 %.2f ms  max %.2f ms  total %.3f s"
          % (r, bsize, pct(bl, 50), max(bl), time.perf_counter() - t))
    stats_delta("  batch", s0, commit_stats())
def check(what, journal):
    with open(state) as f:
        d = json.load(f)
    byvip = {s["vip"]: s for s in d["services"]}
    nrec = 0
    if journal and os.path.exists(state + ".journal"):
        with open(state + ".journal") as f:
            for line in f.read().split("\n")[1:]:
                if line:
                    s = json.loads(line)
                    byvip[s["vip"]] = s
                    nrec += 1
    bad = sum(1 for (i, j), w in last.items() if byvip[vip(i)]["backends"][j]["weight"] != w)
    print("%s (%d journal records): %d of %d changed backends hold their last weight"
          % (what, nrec, len(last) - bad, len(last)))
    if bad:
        raise SystemExit("error: %s disagrees" % what)

check("state file + journal", True)
t = time.perf_counter()
while os.path.exists(state + ".journal") and time.perf_counter() - t < 15:
    time.sleep(0.1)
print("journal folded in after %.1f s" % (time.perf_counter() - t))
check("state file alone", False)
EOF
echo "meshd max RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/"$MESHD_PID"/status)"
