#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshctl_doctor.sh - `meshctl doctor` on a real meshd.
#
# Contract: meshd runs in a namespace of its own (nsenter --net) with XDP on
# two veths there, the socket LB on a child cgroup made here, /metrics on
# the namespace's loopback, its own pin dir, state and socket; one service.
#   healthy   doctor exits 0, -o json parses with "ok": true, every check
#             ok or warn, our program named on both veths, socket hooks ok
#   foreign   a tiny XDP program built here replaces ours on the second veth
#             (ip -force link set ... xdp obj): exit 1, the interface's check
#             fails naming the program; removed again, doctor is back to 0
#   if_down   the first veth set down: a warning naming it, exit 0
#   drift     one backend entry deleted straight from the pinned map with
#             bpftool: exit 1, the drift check fails naming the service
#   generic   meshd restarted with --xdp-mode generic: a warning (slow), exit
#             0; the restart reconciled the maps, so no drift any more
#   skew      a stand-in agent of another release, its clock 10 s ahead: both
#             warn, exit 0; one without the doctor op: fail naming that
#   down      meshd stopped: the local checks still run, exit 1 with
#             "meshd unreachable"
# Everything it made (namespace, cgroup, pins, files) goes on every exit.
# Prints one PASS:/FAIL: line per scenario.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
MESHD=$BUILD/meshd
MESHCTL=$BUILD/meshctl
NS=sl-doc-$$
IF0=dca$$
IF1=dcb$$
PIN=/sys/fs/bpf/sluice-doctor-$$
TMP=$(mktemp -d /tmp/sluice-doctor.XXXXXX)
SOCK=$TMP/meshd.sock
MPORT=$((20000 + $$ % 20000))
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=${CGROOT:+$CGROOT/sluice-doctor-$$}
SVC=10.96.0.10:80/tcp
MESHD_PID=
FAKE_PID=
FAILED=0

# iproute2 creates its pin dirs (tc/globals, ip, xdp) on bpffs when it
# loads the foreign object: remove the ones this run created, if empty.
IPROUTE_DIRS=()
for d in /sys/fs/bpf/tc/globals /sys/fs/bpf/tc /sys/fs/bpf/ip /sys/fs/bpf/xdp; do
	[ -e "$d" ] || IPROUTE_DIRS+=("$d")
done
cleanup() {
	local d
	[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null
	if [ -n "$MESHD_PID" ]; then
		kill -9 "$MESHD_PID" 2>/dev/null
		wait "$MESHD_PID" 2>/dev/null
	fi
	if [ -e "/run/netns/$NS" ]; then
		nsenter --net="/run/netns/$NS" "$MESHD" --cleanup --bpffs "$PIN" >/dev/null 2>&1
		ip netns del "$NS" 2>/dev/null
	fi
	[ -d "$PIN" ] && rm -rf "$PIN"
	[ -n "$CG" ] && [ -d "$CG" ] && rmdir "$CG" 2>/dev/null
	rm -rf "$TMP"
	for d in "${IPROUTE_DIRS[@]}"; do
		[ -L "$d" ] && rm -f "$d"
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_fail() {
	echo "FAIL: e2e/meshctl_doctor/setup: $*"
	exit 1
}

mctl() { "$MESHCTL" -s "$SOCK" "$@"; }
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }

[ "$(id -u)" = 0 ] || {
	echo "SKIP: e2e/meshctl_doctor (needs root)"
	exit 0
}
for t in "$MESHD" "$MESHCTL"; do [ -x "$t" ] || setup_fail "$t not built (run make)"; done
for t in bpftool clang python3 curl; do command -v $t >/dev/null || setup_fail "$t not installed"; done
if [ -z "$CGROOT" ] || [ -e "$CG" ]; then setup_fail "no cgroup2 mount, or $CG exists"; fi
grep -q " /sys/fs/bpf bpf " /proc/mounts || mount -t bpf bpf /sys/fs/bpf || setup_fail "bpffs"

# The foreign program: any XDP program that is not Sluice's.
cat >"$TMP/foreign.c" <<'EOF'
__attribute__((section("xdp"), used)) int foreign_pass(void *ctx)
{
	return 2; /* XDP_PASS */
}
char _license[] __attribute__((section("license"), used)) = "GPL";
EOF
clang -O2 -g -target bpf -c "$TMP/foreign.c" -o "$TMP/foreign.o" || setup_fail "clang foreign.o"

ip netns add "$NS" || setup_fail "ip netns add"
ip -n "$NS" link set lo up
for i in "$IF0" "$IF1"; do
	ip -n "$NS" link add "$i" type veth peer name "${i}p" || setup_fail "veth $i"
	ip -n "$NS" link set "$i" up
	ip -n "$NS" link set "${i}p" up
done
mkdir "$CG" || setup_fail "mkdir $CG"

# meshd_start [FLAGS...]: meshd in the namespace, until its API answers.
meshd_start() {
	local i before
	before=$(grep -c 'meshd ready' "$TMP/meshd.log" 2>/dev/null)
	# nsenter execs meshd (no shell function: $! must be meshd's own pid)
	nsenter --net="/run/netns/$NS" "$MESHD" --interfaces "$IF0,$IF1" --bpffs "$PIN" \
		--state "$TMP/state.json" --state-missing empty --socket "$SOCK" \
		--metrics "127.0.0.1:$MPORT" --cgroup "$CG" --socket-lb on --redirect off \
		--telemetry off --kubernetes off "$@" >>"$TMP/meshd.log" 2>&1 &
	MESHD_PID=$!
	# 30 s: a hang guard (the verifier alone takes seconds on a busy machine)
	for ((i = 0; i < 1500; i++)); do
		[ "$(grep -c 'meshd ready' "$TMP/meshd.log")" -gt "${before:-0}" ] &&
			mctl status >/dev/null 2>&1 && return 0
		kill -0 "$MESHD_PID" 2>/dev/null || break
		sleep 0.02
	done
	echo "    meshd did not start: $(tail -n 2 "$TMP/meshd.log")"
	return 1
}

meshd_stop() {
	local i
	kill -TERM "$MESHD_PID"
	for ((i = 0; i < 250; i++)); do
		kill -0 "$MESHD_PID" 2>/dev/null || break
		sleep 0.02
	done
	wait "$MESHD_PID" 2>/dev/null
	MESHD_PID=
}

meshd_start || setup_fail "meshd"
mctl service add "$SVC" 10.0.1.2:8080 10.0.1.3:8080@3 >/dev/null || setup_fail "service add"
# one scrape, so doctor has conntrack's fill
in_ns curl -fsS "http://127.0.0.1:$MPORT/metrics" >/dev/null || setup_fail "scrape"

# check NAME STATUS [TEXT]: the JSON of the last doctor run ($TMP/out.json)
# has a check NAME with STATUS whose detail contains TEXT.
check() {
	python3 - "$TMP/out.json" "$@" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
name, status = sys.argv[2], sys.argv[3]
text = sys.argv[4] if len(sys.argv) > 4 else ""
hits = [c for c in doc["checks"] if c["name"] == name]
ok = any(c["status"] == status and text in c["detail"] for c in hits)
if not ok:
    print(f"    no check {name!r} {status} with {text!r}: {hits}")
sys.exit(0 if ok else 1)
EOF
}

# doctor_json: run doctor -o json into $TMP/out.json; its exit status in RC
doctor_json() {
	mctl doctor -o json >"$TMP/out.json"
	RC=$?
}

test_healthy() {
	local ok=0
	mctl doctor >"$TMP/out.txt"
	RC=$?
	cat "$TMP/out.txt"
	[ "$RC" = 0 ] || { echo "    exit $RC, want 0"; ok=1; }
	grep -q '^CHECK  *STATUS  *DETAIL' "$TMP/out.txt" || { echo "    no table header"; ok=1; }
	grep -q ' checks: .* ok, .* warn, 0 fail$' "$TMP/out.txt" || { echo "    no summary"; ok=1; }
	doctor_json
	[ "$RC" = 0 ] || { echo "    -o json: exit $RC"; ok=1; }
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["ok"] is True
and all(c["status"] in ("ok", "warn") and set(c) >= {"name","status","detail","hint"}
        for c in d["checks"]) else 1)' "$TMP/out.json" || { echo "    json not ok"; ok=1; }
	check "iface $IF0" ok "xdp_lb" || ok=1
	check "iface $IF1" ok "native XDP" || ok=1
	check "socket hooks" ok "$CG" || ok=1
	check drift ok "1 service" || ok=1
	check "map conntrack" ok "scrape" || ok=1
	check "map services" ok "of" || ok=1
	check versions ok || ok=1
	check clock ok || ok=1
	check bpffs ok || ok=1
	check "kernel features" ok "probed features present" || ok=1
	# meshd's own probes, in status: every feature on this kernel, none missing
	mctl -o json status | jq -e '(.kernel.features | length) >= 18 and
		(.kernel.features | all(.)) and (.kernel.missing == [])' >/dev/null ||
		{ echo "    status: kernel features $(mctl -o json status | jq -c .kernel)"; ok=1; }
	mctl status | grep -q '^Kernel: .*every probed feature present' ||
		{ echo "    status: no Kernel line"; ok=1; }
	return $ok
}

test_foreign() {
	local ok=0 i
	in_ns ip -force link set dev "$IF1" xdpdrv obj "$TMP/foreign.o" sec xdp ||
		{ echo "    cannot plant the foreign program"; return 1; }
	doctor_json
	[ "$RC" = 1 ] || { echo "    exit $RC, want 1"; ok=1; }
	check "iface $IF1" fail 'FOREIGN XDP program "foreign_pass"' || ok=1
	check "iface $IF0" ok "xdp_lb" || ok=1
	python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["ok"] is False else 1)' \
		"$TMP/out.json" || { echo "    json ok is not false"; ok=1; }
	mctl doctor | grep -q "iface $IF1 .*fail.*foreign_pass" || { echo "    table"; ok=1; }
	# gone again: meshd attaches ours on the link event
	in_ns ip link set dev "$IF1" xdpdrv off
	for ((i = 0; i < 100; i++)); do
		mctl doctor >/dev/null && break
		sleep 0.05
	done
	mctl doctor >/dev/null || { echo "    not back to 0 after removing it"; ok=1; }
	return $ok
}

test_if_down() {
	local ok=0
	in_ns ip link set dev "$IF0" down
	doctor_json
	in_ns ip link set dev "$IF0" up
	[ "$RC" = 0 ] || { echo "    exit $RC, want 0 (a warning)"; ok=1; }
	check "iface $IF0" warn "interface is down" || ok=1
	return $ok
}

test_drift() {
	local ok=0 key
	key=$(bpftool -j map dump pinned "$PIN/backends" | python3 -c '
import json, sys
e = json.load(sys.stdin)[0]
print(" ".join(str(int(b, 16)) for b in e["key"]))') || { echo "    no backend to delete"; return 1; }
	# shellcheck disable=SC2086 # key is four byte words
	bpftool map delete pinned "$PIN/backends" key $key || return 1
	doctor_json
	[ "$RC" = 1 ] || { echo "    exit $RC, want 1"; ok=1; }
	check drift fail "$SVC: backend 10.0.1." || ok=1
	mctl doctor | grep -q "What to do:" || { echo "    no hint"; ok=1; }
	return $ok
}

test_generic() {
	local ok=0
	meshd_stop
	meshd_start --xdp-mode generic || return 1
	doctor_json
	[ "$RC" = 0 ] || { echo "    exit $RC, want 0 (warnings)"; ok=1; }
	check "iface $IF0" warn "generic XDP mode" || ok=1
	# the restart reconciled the maps with the state: the drift is gone
	check drift ok || ok=1
	return $ok
}

# fake_agent MODE: a stand-in meshd on $TMP/fake.sock. skew: a doctor op
# of release 9.9.9 whose clock is 10 s ahead; old: no doctor op at all.
fake_agent() {
	rm -f "$TMP/fake.sock"
	python3 - "$TMP/fake.sock" "$1" >/dev/null 2>&1 <<'PY' &
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
while True:
    c, _ = s.accept()
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = c.recv(4096)
        if not chunk:
            break
        buf += chunk
    op = json.loads(buf or b"{}").get("op")
    if op == "doctor" and sys.argv[2] == "old":
        ans = {"ok": False, "error": 'unknown op "doctor"'}
    else:
        ans = {"ok": True, "data": {"version": "9.9.9", "layout_version": 1,
                                    "time": time.time() + 10, "checks": []}}
    c.sendall(json.dumps(ans).encode() + b"\n")
    c.close()
PY
	FAKE_PID=$!
	for ((i = 0; i < 1500; i++)); do
		[ -S "$TMP/fake.sock" ] && return 0
		sleep 0.02
	done
	echo "    fake agent did not start"
	return 1
}

fake_stop() {
	kill "$FAKE_PID" 2>/dev/null
	wait "$FAKE_PID" 2>/dev/null
	FAKE_PID=
}

test_skew() {
	local ok=0
	fake_agent skew || return 1
	"$MESHCTL" -s "$TMP/fake.sock" doctor -o json >"$TMP/out.json"
	RC=$?
	fake_stop
	[ "$RC" = 0 ] || { echo "    skew: exit $RC, want 0 (warnings)"; ok=1; }
	check versions warn "meshd 9.9.9" || ok=1
	check clock warn "+10." || ok=1
	fake_agent old || return 1
	"$MESHCTL" -s "$TMP/fake.sock" doctor -o json >"$TMP/out.json"
	RC=$?
	fake_stop
	[ "$RC" = 1 ] || { echo "    old agent: exit $RC, want 1"; ok=1; }
	check agent fail "meshd 9.9.9 answers but has no doctor op" || ok=1
	return $ok
}

test_down() {
	local ok=0
	meshd_stop
	mctl doctor >"$TMP/out.txt"
	RC=$?
	cat "$TMP/out.txt"
	[ "$RC" = 1 ] || { echo "    exit $RC, want 1"; ok=1; }
	grep -q "meshd unreachable" "$TMP/out.txt" || { echo "    no \"meshd unreachable\""; ok=1; }
	grep -q "^BTF " "$TMP/out.txt" || { echo "    local checks did not run"; ok=1; }
	doctor_json
	[ "$RC" = 1 ] || { echo "    -o json: exit $RC, want 1"; ok=1; }
	check agent fail "meshd unreachable" || ok=1
	check "kernel features" ok "probed features present" || ok=1
	return $ok
}

for name in ${ONLY:-healthy foreign if_down drift generic skew down}; do
	# not in a subshell: scenarios restart meshd (MESHD_PID)
	if "test_$name" >"$TMP/scenario.out" 2>&1; then
		echo "PASS: e2e/meshctl_doctor/$name"
	else
		cat "$TMP/scenario.out"
		echo "FAIL: e2e/meshctl_doctor/$name"
		FAILED=$((FAILED + 1))
	fi
done
[ "$FAILED" = 0 ]
