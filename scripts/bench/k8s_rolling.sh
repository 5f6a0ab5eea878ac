#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# k8s_rolling.sh - a rolling update through the Kubernetes sync (#16): R
# single-endpoint changes of EndpointSlices at N services, from the API
# server's watch events to meshd's maps and durable state.
#
# Starts the stand-in API server (tests/e2e/k8s/apiserver.py) with N
# Services of E ready endpoints each, and build/meshd with --kubernetes on
# in a network namespace of its own (own pins, state file, socket; socket
# LB, telemetry, metrics off); waits until meshd holds all N. Then, twice:
#   stream: the R changes in ONE control request: the API server sends R
#           MODIFIED events back to back (the fastest a controller can
#           produce them) -> time from the request to meshd holding the
#           last change;
#   paced:  the R changes one control request each, in a row (a
#           controller that writes one pod's change at a time; Python's
#           round trip to the stand-in paces it) -> time from the first
#           request to meshd holding the last change, and the producer's
#           own time.
# Each change replaces one endpoint of one random service with a new
# address. "Holding" is read through meshd's API (service.get of the
# last-changed service; the watch is one ordered stream and every synced
# set is the whole view, so the last change held means all are). Then
# every changed service is checked against its expected endpoints (not
# timed), and meshd's counters say how the changes were committed
# (kubernetes passes, whole commits, fdatasyncs) and what the sync thread's
# translation of each set cost in CPU time (its thread clock: a figure a
# loaded machine does not inflate much, unlike the wall times).
# Everything lives in what the script created and is removed on exit,
# failure or signal included.
#
# Usage: k8s_rolling.sh [-n SERVICES] [-e ENDPOINTS] [-r CHANGES]
#        defaults: -n 10000 -e 10 -r 1000   (root; `make`)
# Figures are noisy on a shared 2-core machine: say the load average.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
K8S=$ROOT/tests/e2e/k8s
N=10000
E=10
R=1000
while getopts n:e:r: o; do
	case $o in
	n) N=$OPTARG ;;
	e) E=$OPTARG ;;
	r) R=$OPTARG ;;
	*) exit 2 ;;
	esac
done

ID=skr$$
NS=$ID-ns
PIN=/sys/fs/bpf/$ID
WORK=$(mktemp -d /tmp/$ID.XXXXXX)
SOCK=$WORK/meshd.sock
STATE=$WORK/state.json
LOG=$WORK/meshd.log
PORTS=$WORK/ports.json
MESHD_PID=
API_PID=

cleanup() {
	local pid
	for pid in "$MESHD_PID" "$API_PID"; do
		[ -n "$pid" ] || continue
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
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
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || die "bpffs"

ip netns add "$NS" || die "netns $NS"
ip -n "$NS" link set lo up || die "lo up"
ip -n "$NS" link add kr0 type veth peer name kr1 || die "veth"
{ ip -n "$NS" link set kr0 up && ip -n "$NS" link set kr1 up; } || die "link up"

# N Services svc-I (ClusterIP 10.X.Y.Z:80 -> 8080) and one slice each
python3 - "$N" "$E" "$WORK" <<'EOF' || die "fixtures"
import json, sys
n, e, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def vip(i):
    return "10.%d.%d.%d" % (96 + i // 65536, (i // 256) % 256, i % 256)
svcs, slices = [], []
for i in range(n):
    svcs.append({"kind": "Service", "apiVersion": "v1",
                 "metadata": {"name": "svc-%d" % i, "namespace": "default"},
                 "spec": {"type": "ClusterIP", "clusterIP": vip(i), "clusterIPs": [vip(i)],
                          "ipFamilies": ["IPv4"],
                          "ports": [{"name": "http", "protocol": "TCP", "port": 80,
                                     "targetPort": 8080}]}})
    slices.append({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                   "metadata": {"name": "svc-%d-x" % i, "namespace": "default",
                                "labels": {"kubernetes.io/service-name": "svc-%d" % i}},
                   "addressType": "IPv4",
                   "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
                   "endpoints": [{"addresses": ["10.200.%d.%d" % ((i * e + j) // 250 % 250,
                                                                (i * e + j) % 250 + 1)],
                                  "conditions": {"ready": True}} for j in range(e)]})
json.dump({"kind": "List", "apiVersion": "v1", "items": svcs}, open(work + "/services.json", "w"))
json.dump({"kind": "List", "apiVersion": "v1", "items": slices},
          open(work + "/endpointslices.json", "w"))
EOF

nsenter --net="/var/run/netns/$NS" python3 "$K8S/apiserver.py" --port-file "$PORTS" \
	--fixtures "$WORK/services.json" "$WORK/endpointslices.json" >"$WORK/api.log" 2>&1 &
API_PID=$!
for _ in $(seq 600); do
	[ -s "$PORTS" ] && break
	sleep 0.05
done
[ -s "$PORTS" ] || die "apiserver did not start: $(tail -n 3 "$WORK/api.log")"
cat >"$WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: bench
clusters:
- name: stand-in
  cluster:
    server: http://127.0.0.1:$(python3 -c "import json;print(json.load(open('$PORTS'))['api'])")
contexts:
- name: bench
  context: {cluster: stand-in, user: bench}
users:
- name: bench
  user: {}
EOF

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
NODE_NAME=n1 nsenter --net="/var/run/netns/$NS" "$BUILD/meshd" --interfaces kr0 --bpffs "$PIN" \
	--state "$STATE" --state-missing empty --socket "$SOCK" --telemetry off --socket-lb off \
	--redirect off --metrics off --kubernetes on --kubeconfig "$WORK/kubeconfig" >"$LOG" 2>&1 &
MESHD_PID=$!

nsenter --net="/var/run/netns/$NS" python3 - "$SOCK" "$N" "$E" "$R" "$PORTS" "$t0" <<'EOF' ||
import json, random, socket, sys, time, urllib.request
sock, n, e, r, portfile, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \
    sys.argv[5], float(sys.argv[6])
random.seed(16)
ctl = "http://127.0.0.1:%d/ctl" % json.load(open(portfile))["ctl"]

def vip(i):
    return "10.%d.%d.%d" % (96 + i // 65536, (i // 256) % 256, i % 256)

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

def post(objs):
    q = urllib.request.Request(ctl, data=json.dumps({"op": "apply", "objects": objs}).encode(),
                               method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(q, timeout=60) as a:
        if not json.load(a).get("ok"):
            raise SystemExit("error: the API server refused a change")

def status():
    return call({"op": "status"}).get("data", {})

def wait(what, cond, limit):
    end = time.time() + limit
    while time.time() < end:
        try:
            if cond():
                return time.time()
        except (OSError, ValueError):
            pass
        time.sleep(0.002)
    raise SystemExit("error: %s not reached in %d s" % (what, limit))

def synced():
    k = status().get("kubernetes") or {}
    return k.get("commits", 0) >= 1 and held(0) and held(n - 1)

# endpoints of every service as meshd should hold them
eps = {i: ["10.200.%d.%d" % ((i * e + j) // 250 % 250, (i * e + j) % 250 + 1) for j in range(e)]
       for i in range(n)}
gen = [0]

def held(i):
    rep = call({"op": "service.get", "service": "%s:80/tcp" % vip(i)})
    if not rep.get("ok"):
        return False
    got = sorted("%s" % b["address"] for b in rep["data"]["backends"])
    return got == sorted(eps[i])

def change():
    i, j = random.randrange(n), random.randrange(e)
    gen[0] += 1
    eps[i][j] = "10.%d.%d.%d" % (201 + gen[0] // 62500, (gen[0] // 250) % 250, gen[0] % 250 + 1)
    return i, {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
               "metadata": {"name": "svc-%d-x" % i, "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "svc-%d" % i}},
               "addressType": "IPv4", "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
               "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in eps[i]]}

def counts():
    s = status()
    k, c = s["kubernetes"], s["commit"]
    return {"passes": k["service_passes"], "pass_changes": k["service_pass_changes"],
            "whole": k["whole_commits"], "syncs": c["fsyncs"] + c["full_saves"],
            "sets": k["publishes"], "cpu_us": k.get("translate_cpu_us", 0)}

t = wait("meshd holding the %d services" % n, synced, 600)
print("meshd start + initial list of %d services x %d: %.2f s" % (n, e, t - t0))
changed = set()
for mode in ("stream", "paced"):
    time.sleep(0.5)  # nothing in flight (the sync's debounce is 100 ms)
    a = counts()
    reqs = [change() for _ in range(r)]
    changed.update(i for i, _ in reqs)
    last = reqs[-1][0]
    t = time.time()
    if mode == "stream":
        post([o for _, o in reqs])
        tp = time.time()
    else:
        for _, o in reqs:
            post([o])
        tp = time.time()
    done = wait("the last change held", lambda: held(last), 120)
    time.sleep(0.5)
    b = counts()
    d = {key: b[key] - a[key] for key in a}
    print("%s (%d changes): %.3f s from the first request to meshd holding the last "
          "(producer %.3f s); %d passes over %d service changes, %d whole commits, %d fdatasyncs"
          % (mode, r, done - t, tp - t, d["passes"], d["pass_changes"], d["whole"], d["syncs"]))
    if d["cpu_us"]:
        print("  sync thread: %d sets translated and checked, %.1f ms of its CPU per set"
              % (d["sets"], d["cpu_us"] / 1e3 / max(d["sets"], 1)))
bad = [i for i in sorted(changed) if not held(i)]
print("check: %d of %d changed services hold their expected endpoints" % (len(changed) - len(bad),
                                                                           len(changed)))
if bad:
    raise SystemExit("error: %d services differ, e.g. svc-%d" % (len(bad), bad[0]))
EOF
	die "bench"
echo "meshd max RSS: $(grep VmHWM "/proc/$MESHD_PID/status" | tr -s ' \t' ' ' | cut -d' ' -f2-)"
