#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshctl_cli.sh - meshctl's command line where no agent is needed.
#
# Contract: runs build/meshctl with -s / SLUICE_SOCKET pointing at a socket
# path that does not exist (so a meshd running on this machine is never
# contacted) and checks: help at every level has a usage line, one line per
# command and an example, and `help WORDS` / `-h` agree with `--help`;
# unambiguous prefixes resolve, ambiguous and unknown commands fail with
# "Error: ..." naming the candidates; uninstall is never abbreviated;
# arguments and apply files are validated before the agent is contacted;
# with the agent down, commands fail with "Error: cannot connect ..." on
# stderr, or exactly {"error": "cannot connect ..."} on stdout with -o json
# wherever -o sits; `version` still prints meshctl's version but exits 1;
# against a fake agent (a Unix socket answering "status") of another
# release, `version` exits 0 with a warning on stderr; against a fake agent
# with 1000 services, `apply` of a 1499-service JSON file sends the file's
# services on one line and prints the diff from answers read one element
# at a time (a listed service past the bound: the diff without detail). Prints one
# "PASS: e2e/meshctl_cli/<name>" or "FAIL: ..." per scenario, exits non-zero
# if any failed. Needs no root; leaves nothing behind.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MESHCTL=${SLUICE_BUILD:-$ROOT/build}/meshctl
TMP=$(mktemp -d /tmp/sluice-meshctl-cli.XXXXXX)
FAKE_PID=
trap '[ -z "$FAKE_PID" ] || kill "$FAKE_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
NOSOCK=$TMP/no-meshd.sock
export SLUICE_SOCKET=$NOSOCK
FAILED=0

# Every command path, for the help checks.
PATHS=("" service "service add" "service set" "service del" "service list" "service get"
	backend "backend add" "backend del" "backend weight" "backend drain" "backend undrain"
	apply conntrack "conntrack list" "conntrack flush" status version uninstall)
# Read commands: their help documents -o.
READS=("service list" "service get" "conntrack list" status version apply)

# run ARGS...: meshctl's stdout in $OUT, stderr in $ERR, exit status in $RC.
run() {
	OUT=$("$MESHCTL" "$@" 2>"$TMP/stderr")
	RC=$?
	ERR=$(cat "$TMP/stderr")
}

fail() {
	echo "    $*"
	return 1
}

# expect_error WORDS...: the last run failed with exit 1, nothing on stdout
# and an "Error: " line on stderr holding every word.
expect_error() {
	local w
	[ "$RC" -eq 1 ] || fail "exit status $RC, expected 1 (stderr: $ERR)" || return 1
	[ -z "$OUT" ] || fail "unexpected stdout: $OUT" || return 1
	[[ $ERR == Error:\ * ]] || fail "stderr does not start with 'Error: ': $ERR" || return 1
	[ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || fail "more than one error line: $ERR" || return 1
	for w in "$@"; do
		[[ $ERR == *"$w"* ]] || fail "error lacks '$w': $ERR" || return 1
	done
}

# expect_json_error PREFIX: the last run printed exactly {"error": "PREFIX..."}
# on stdout, nothing on stderr, and exited 1.
expect_json_error() {
	[ "$RC" -eq 1 ] || fail "exit status $RC, expected 1" || return 1
	[ -z "$ERR" ] || fail "unexpected stderr: $ERR" || return 1
	python3 -c '
import json, sys
doc = json.loads(sys.stdin.read())
assert isinstance(doc, dict) and list(doc) == ["error"], "not {\"error\": ...}: %r" % doc
assert doc["error"].startswith(sys.argv[1]), "error %r does not start with %r" % (doc["error"], sys.argv[1])
' "$1" <<<"$OUT" 2>&1 | sed 's/^/    /' | grep . && return 1
	return 0
}

scenario() {
	local name=$1
	shift
	if "$@"; then
		echo "PASS: e2e/meshctl_cli/$name"
	else
		echo "FAIL: e2e/meshctl_cli/$name"
		FAILED=$((FAILED + 1))
	fi
}

test_help_every_level() {
	local p words ok=0 nlines
	for p in "${PATHS[@]}"; do
		read -ra words <<<"$p"
		run "${words[@]}" --help
		[ "$RC" -eq 0 ] || { fail "meshctl $p --help: exit $RC ($ERR)"; ok=1; continue; }
		[[ $OUT == "Usage: meshctl${p:+ $p}"* ]] ||
			{ fail "meshctl $p --help: no usage line: ${OUT%%$'\n'*}"; ok=1; }
		grep -q '^Examples\?:$' <<<"$OUT" ||
			{ fail "meshctl $p --help: no example section"; ok=1; }
		grep -q "^  meshctl ${words[0]:-}" <<<"$OUT" ||
			{ fail "meshctl $p --help: no example command"; ok=1; }
		grep -q -- '^  -h, --help ' <<<"$OUT" ||
			{ fail "meshctl $p --help: -h/--help not documented"; ok=1; }
		nlines=$(awk 'length > 100' <<<"$OUT" | wc -l)
		[ "$nlines" -eq 0 ] || { fail "meshctl $p --help: $nlines lines over 100 columns"; ok=1; }
	done
	return $ok
}

test_help_lists_commands() {
	local ok=0 c
	run --help
	for c in "service add|set|del|list|get" "backend add|del|weight|drain" "apply -f FILE" \
		"conntrack list|flush" status version uninstall; do
		grep -q "^  $c" <<<"$OUT" || { fail "meshctl --help lacks a line for '$c'"; ok=1; }
	done
	for c in "-o, --output" "-s, --socket" "--timeout"; do
		grep -q -- "^  $c" <<<"$OUT" || { fail "meshctl --help lacks option '$c'"; ok=1; }
	done
	run backend --help
	for c in "add SVC BE" "del SVC BE" "weight SVC BE N" "drain SVC BE"; do
		grep -q "^  $c" <<<"$OUT" || { fail "meshctl backend --help lacks '$c'"; ok=1; }
	done
	return $ok
}

test_help_read_commands_document_json() {
	local p words ok=0
	for p in "${READS[@]}"; do
		read -ra words <<<"$p"
		run "${words[@]}" --help
		grep -q -- '-o, --output table|json' <<<"$OUT" ||
			{ fail "meshctl $p --help does not document -o"; ok=1; }
	done
	return $ok
}

test_help_forms_agree() {
	local a b c
	run service add --help
	a=$OUT
	run help service add
	b=$OUT
	run serv a -h
	c=$OUT
	[ "$a" = "$b" ] || fail "'help service add' differs from 'service add --help'" || return 1
	[ "$a" = "$c" ] || fail "'serv a -h' differs from 'service add --help'" || return 1
	# --help anywhere after the command, even after arguments
	run backend add 10.96.0.10:80/tcp --help
	if [ "$RC" -ne 0 ] || [[ $OUT != "Usage: meshctl backend add "* ]]; then
		fail "--help after arguments did not print help (rc $RC)"
	fi
}

test_prefix_matching() {
	run serv li --help
	[[ $OUT == "Usage: meshctl service list"* ]] || fail "serv li -> ${OUT%%$'\n'*}" || return 1
	run b dr --help
	[[ $OUT == "Usage: meshctl backend drain"* ]] || fail "b dr -> ${OUT%%$'\n'*}" || return 1
	run con f --help
	[[ $OUT == "Usage: meshctl conntrack flush"* ]] || fail "con f -> ${OUT%%$'\n'*}" || return 1
	# an abbreviated command still reaches the agent, fully resolved
	run serv li
	expect_error "cannot connect" || return 1
}

test_ambiguous_prefix() {
	run s list
	expect_error "ambiguous command 's'" service status || return 1
	run -o json s
	expect_json_error "ambiguous command 's'"
}

test_unknown_command() {
	run frobnicate
	expect_error "unknown command 'frobnicate'" "meshctl --help" || return 1
	run service frob
	expect_error "unknown command 'frob'" "add|set|del|list|get" || return 1
	run backend add 10.96.0.10:80/tcp 10.0.1.2:8080 --frob
	expect_error "unknown option '--frob'" "meshctl backend add --help" || return 1
	run --frob status
	expect_error "unknown option '--frob'" || return 1
	run -o json service frob
	expect_json_error "unknown command 'frob'"
}

test_uninstall_not_abbreviated() {
	run uninst
	expect_error "spelled out" uninstall || return 1
	# the refusal happens before any contact: same error with a socket
	run -s "$NOSOCK" u
	expect_error "spelled out"
}

test_usage_errors() {
	run service add
	expect_error "missing SVC" "meshctl service add --help" || return 1
	run backend weight 10.96.0.10:80/tcp 10.0.1.2:8080
	expect_error "missing N" || return 1
	run backend weight 10.96.0.10:80/tcp 10.0.1.2:8080 70000
	expect_error "70000" "0-65535" || return 1
	run apply
	expect_error "missing -f FILE" || return 1
	run service list extra
	expect_error "unexpected argument 'extra'" || return 1
	run -o yaml status
	expect_error "invalid output format 'yaml'" || return 1
	run --timeout 0 status
	expect_error "--timeout" || return 1
	run service add --name
	expect_error "--name needs a value"
}

test_arguments_checked_locally() {
	# each error names the bad text, not the missing agent
	run service add 10.96.0.10:80
	expect_error "10.96.0.10:80" "VIP:PORT/PROTO" || return 1
	run service add 10.96.0.10:80/sctp
	expect_error "sctp" || return 1
	run service add 10.96.0.10:80/tcp 10.0.1.2
	expect_error "10.0.1.2" "port" || return 1
	run service add 10.96.0.10:80/tcp '[fd00::1]:80'
	expect_error "cannot mix families" || return 1
	run service add 10.96.0.10:80/tcp 10.0.1.2:8080@x
	expect_error "weight 'x'" || return 1
	run -o json backend drain 300.1.1.1:80/tcp 10.0.1.2:8080
	expect_json_error "invalid service" || return 1
	# outlier detection flags (#14)
	run service add 10.96.0.10:80/tcp --outlier-failures 0
	expect_error "--outlier-failures '0'" "1-255" || return 1
	run service set 10.96.0.10:80/tcp --outlier-base-ejection 30
	expect_error "--outlier-base-ejection '30'" "500ms, 30s or 5m" || return 1
	run service set 10.96.0.10:80/tcp --outlier-max-ejection 2h
	expect_error "--outlier-max-ejection '2h'" || return 1
	run service set 10.96.0.10:80/tcp --outlier-max-ejected-percent 101
	expect_error "--outlier-max-ejected-percent '101'" "1-100" || return 1
	run service set 10.96.0.10:80/tcp
	expect_error "nothing to set" || return 1
	run service set 10.96.0.10:80/tcp --outlier-defaults --outlier-failures 4
	expect_error "--outlier-defaults" "alone" || return 1
	run service set 10.96.0.10:80/tcp --no-outlier-detection --outlier-detection
	expect_error "contradict"
}

test_apply_validates_before_contact() {
	cat >"$TMP/bad.yaml" <<'EOF'
services:
  - name: web
    vip: 10.96.0.10
    port: 70000
    protocol: tcp
    backends:
      - { address: 10.0.1.2, port: 8080 }
EOF
	cat >"$TMP/good.yaml" <<'EOF'
services:
  - name: web
    vip: 10.96.0.10
    port: 80
    protocol: tcp
    backends:
      - { address: 10.0.1.2, port: 8080, weight: 90 }
      - { address: 10.0.1.3, port: 8080, weight: 10 }
EOF
	run apply -f "$TMP/bad.yaml" --dry-run
	expect_error "bad.yaml" "services[0].port" "70000" || return 1
	run -o json apply -f "$TMP/bad.yaml"
	expect_json_error "$TMP/bad.yaml: services[0].port" || return 1
	run apply -f "$TMP/missing.yaml"
	expect_error "missing.yaml" || return 1
	# stdin, and an unknown field
	OUT=$(echo '{"services": [{"vip": "10.96.0.10", "port": 80, "protocol": "tcp", "colour": 1}]}' |
		"$MESHCTL" apply -f - 2>"$TMP/stderr")
	RC=$?
	ERR=$(cat "$TMP/stderr")
	expect_error "stdin" "colour" || return 1
	# a valid file gets as far as the agent
	run apply -f "$TMP/good.yaml" --dry-run
	expect_error "cannot connect" "$NOSOCK"
}

test_agent_down_errors() {
	local args
	for args in "status" "service list" "service get 10.96.0.10:80/tcp" "conntrack list" \
		"conntrack flush" "backend drain 10.96.0.10:80/tcp 10.0.1.2:8080" "uninstall"; do
		read -ra words <<<"$args"
		run "${words[@]}"
		expect_error "cannot connect" "$NOSOCK" || { fail "(meshctl $args)"; return 1; }
	done
}

test_agent_down_json_shape() {
	local args
	for args in "-o json status" "status -o json" "service list --output=json" \
		"-j conntrack list" "--output json service get 10.96.0.10:80/tcp" \
		"apply -f $TMP/good.yaml --dry-run -o json"; do
		read -ra words <<<"$args"
		run "${words[@]}"
		expect_json_error "cannot connect" || { fail "(meshctl $args)"; return 1; }
	done
}

test_socket_selection() {
	local other=$TMP/other.sock
	run -s "$other" status
	expect_error "$other" || return 1
	run status --socket="$other"
	expect_error "$other" || return 1
	OUT=$(SLUICE_SOCKET="$other" "$MESHCTL" status 2>"$TMP/stderr")
	RC=$?
	ERR=$(cat "$TMP/stderr")
	expect_error "$other" || return 1
	OUT=$(env -u SLUICE_SOCKET "$MESHCTL" --help)
	grep -q '/run/sluice/meshd.sock' <<<"$OUT" || fail "default socket not documented"
}

test_version_without_agent() {
	run -V
	[ "$RC" -eq 0 ] && [[ $OUT == "meshctl "[0-9]* ]] || fail "-V: rc $RC, '$OUT'" || return 1
	run version
	[ "$RC" -eq 1 ] || fail "version without meshd: exit $RC, expected 1" || return 1
	grep -q '^meshctl  [0-9]' <<<"$OUT" || fail "version: no meshctl line: $OUT" || return 1
	grep -q '^meshd .*cannot connect' <<<"$OUT" || fail "version: meshd line: $OUT" || return 1
	run version -o json
	[ "$RC" -eq 1 ] || fail "version -o json without meshd: exit $RC, expected 1" || return 1
	python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["meshctl"]["version"] and d["meshctl"]["layout_version"] >= 1, d
assert d["meshd"] is None and d["meshd_error"].startswith("cannot connect"), d
' <<<"$OUT" 2>&1 | sed 's/^/    /' | grep . && return 1
	return 0
}

# fake_agent VERSION: a Unix socket at $TMP/fake.sock answering every
# request as meshd's "status" would, with this version; FAKE_PID.
fake_agent() {
	rm -f "$TMP/fake.sock"
	python3 - "$TMP/fake.sock" "$1" >/dev/null 2>&1 <<'PY' &
import json, socket, sys
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
    ans = {"ok": True, "data": {"version": sys.argv[2], "layout_version": 3}}
    c.sendall(json.dumps(ans).encode() + b"\n")
    c.close()
PY
	FAKE_PID=$!
	for ((i = 0; i < 1500; i++)); do
		[ -S "$TMP/fake.sock" ] && return 0
		sleep 0.02
	done
	fail "fake agent did not start"
}

fake_stop() {
	[ -z "$FAKE_PID" ] || kill "$FAKE_PID" 2>/dev/null
	wait "$FAKE_PID" 2>/dev/null
	FAKE_PID=
}

test_version_skew() {
	local mine
	mine=$("$MESHCTL" -V | awk '{ print $2 }')
	fake_agent "$mine" || return 1
	run -s "$TMP/fake.sock" version
	fake_stop
	[ "$RC" -eq 0 ] || fail "same release: exit $RC ($ERR)" || return 1
	[ -z "$ERR" ] || fail "same release: unexpected stderr: $ERR" || return 1
	grep -q "^meshd    $mine " <<<"$OUT" || fail "same release: meshd line: $OUT" || return 1
	fake_agent 9.9.9 || return 1
	run -s "$TMP/fake.sock" version
	[ "$RC" -eq 0 ] || { fake_stop; fail "skew: exit $RC ($ERR)"; } || return 1
	[[ $ERR == "Warning: meshctl $mine talks to meshd 9.9.9"* ]] ||
		{ fake_stop; fail "skew: no warning on stderr: '$ERR'"; } || return 1
	run -s "$TMP/fake.sock" version -o json
	fake_stop
	[ "$RC" -eq 0 ] || fail "skew -o json: exit $RC" || return 1
	python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["meshd"]["version"] == "9.9.9", d
assert "9.9.9" in d["warning"], d
' <<<"$OUT" 2>&1 | sed 's/^/    /' | grep . && return 1
	return 0
}

if [ ! -x "$MESHCTL" ]; then
	echo "FAIL: e2e/meshctl_cli ($MESHCTL not built)"
	exit 1
fi

# apply_agent MODE: a fake agent at $TMP/apply.sock for `apply`: its
# service.list has 1000 services with statistics (s0..s999, ~400 KB), its
# apply answer diffs the request against them, padded past 64 KiB (so
# meshctl reads both answers one element at a time), and the request is
# saved in $TMP/apply.req. MODE huge: one listed service is 9 MB (past
# meshctl's bound for one: the list is then unknown, the apply goes on).
apply_agent() {
	rm -f "$TMP/apply.sock" "$TMP/apply.req"
	python3 - "$TMP/apply.sock" "$1" "$TMP/apply.req" >"$TMP/apply.agent.log" 2>&1 <<'PY' &
import json, socket, sys
path, mode, reqfile = sys.argv[1:4]
def svc(i, w=1):
    return {"name": "s%d" % i, "vip": "10.97.%d.%d" % (i // 256, i % 256), "port": 80,
            "protocol": "tcp", "source": "manual",
            "backends": [{"address": "10.1.%d.%d" % (i // 200, i % 200 + j), "port": 8080,
                          "weight": w, "id": i * 3 + j, "state": "active",
                          "stats": {"packets": 7, "bytes": 700, "flows": 1}} for j in range(3)],
            "id": i + 1, "maglev_slots": 251, "stats": {"packets": 21, "bytes": 2100}}
have = {("10.97.%d.%d" % (i // 256, i % 256)): svc(i) for i in range(1000)}
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(4)
while True:
    c, _ = s.accept()
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = c.recv(65536)
        if not chunk:
            break
        buf += chunk
    req = json.loads(buf)
    if req["op"] == "service.list":
        svcs = list(have.values())
        if mode == "huge":
            svcs[5] = dict(svcs[5], name="x" * (9 << 20))
        ans = {"ok": True, "data": {"services": svcs}}
    else:
        open(reqfile, "wb").write(buf)
        want = {x["vip"]: x for x in req["desired"]["services"]}
        ch = []
        for vip, x in want.items():
            if vip not in have:
                ch.append({"action": "add", "service": vip + ":80/tcp"})
            elif [(b["address"], b["weight"]) for b in x["backends"]] != \
                 [(b["address"], b["weight"]) for b in have[vip]["backends"]]:
                ch.append({"action": "update", "service": vip + ":80/tcp"})
        ch += [{"action": "delete", "service": v + ":80/tcp"} for v in have if v not in want]
        ans = {"ok": True, "data": {"changes": ch, "applied": True, "pad": "p" * 70000}}
    try:
        c.sendall(json.dumps(ans).encode() + b"\n")
    except OSError:
        pass  # meshctl stopped reading (the huge list)
    c.close()
PY
	FAKE_PID=$!
	for ((i = 0; i < 1500; i++)); do
		[ -S "$TMP/apply.sock" ] && return 0
		sleep 0.02
	done
	fail "fake agent did not start"
}

# The file: s1..s1499 (s0 deleted, s1 reweighted, s1000.. added).
test_apply_large_answers() {
	python3 - "$TMP/large.json" <<'PY' || return 1
import json, sys
svcs = [{"name": "s%d" % i, "vip": "10.97.%d.%d" % (i // 256, i % 256), "port": 80,
         "protocol": "tcp",
         "backends": [{"address": "10.1.%d.%d" % (i // 200, i % 200 + j), "port": 8080,
                       "weight": 5 if i == 1 and j == 2 else 1} for j in range(3)]}
        for i in range(1, 1500)]
json.dump({"services": svcs}, open(sys.argv[1], "w"), indent=1)
PY
	apply_agent normal || return 1
	run -s "$TMP/apply.sock" apply -f "$TMP/large.json"
	fake_stop
	[ "$RC" -eq 0 ] || fail "apply: exit $RC ($ERR)" || return 1
	python3 - "$TMP/apply.req" "$TMP/large.json" <<'PY' 2>&1 | sed 's/^/    /' | grep . && return 1
import json, sys
raw = open(sys.argv[1], "rb").read()
assert raw.count(b"\n") == 1 and raw.endswith(b"\n"), "the request is one line"
req = json.loads(raw)
assert list(req) == ["op", "desired", "dry_run"], list(req)
assert req["op"] == "apply" and req["dry_run"] is False, req["op"]
got = [(s["name"], s["vip"], s["port"], s["protocol"],
        [(b["address"], b["port"], b["weight"]) for b in s["backends"]])
       for s in req["desired"]["services"]]
want = [(s["name"], s["vip"], s["port"], s["protocol"],
         [(b["address"], b["port"], b["weight"]) for b in s["backends"]])
        for s in json.load(open(sys.argv[2]))["services"]]
assert got == want, "the request's services are the file's"
PY
	grep -qx '~ 10.97.0.1:80/tcp (s1)' <<<"$OUT" || fail "no update line: $(head -3 <<<"$OUT")" || return 1
	grep -qx '    ~ backend 10.1.0.3:8080 weight 1 -> 5' <<<"$OUT" ||
		fail "no backend detail under the update: $(grep -A2 '^~' <<<"$OUT")" || return 1
	[ "$(grep -c '^    [~+-] backend' <<<"$OUT")" -eq 1501 ] ||
		fail "backend lines: $(grep -c '^    [~+-] backend' <<<"$OUT"), expected 1 + 500 x 3" ||
		return 1
	grep -qxe '- 10.97.0.0:80/tcp (s0)' <<<"$OUT" || fail "no delete line" || return 1
	grep -qx '+ 10.97.3.232:80/tcp (s1000)' <<<"$OUT" || fail "no add line" || return 1
	[ "$(tail -n 1 <<<"$OUT")" = "applied: 500 added, 1 updated, 1 deleted" ] ||
		fail "last line: $(tail -n 1 <<<"$OUT")" || return 1
	# a listed service past the bound: no detail for updates, the apply goes on
	apply_agent huge || return 1
	run -s "$TMP/apply.sock" apply -f "$TMP/large.json"
	fake_stop
	[ "$RC" -eq 0 ] || fail "huge list: exit $RC ($ERR)" || return 1
	grep -qx '~ 10.97.0.1:80/tcp (s1)' <<<"$OUT" || fail "huge list: no update line" || return 1
	! grep -q '^    ~ backend' <<<"$OUT" || fail "huge list: detail from an unread list" ||
		return 1
	[ "$(tail -n 1 <<<"$OUT")" = "applied: 500 added, 1 updated, 1 deleted" ] ||
		fail "huge list: last line: $(tail -n 1 <<<"$OUT")"
}

scenario help_every_level test_help_every_level
scenario help_lists_commands test_help_lists_commands
scenario help_read_commands_document_json test_help_read_commands_document_json
scenario help_forms_agree test_help_forms_agree
scenario prefix_matching test_prefix_matching
scenario ambiguous_prefix test_ambiguous_prefix
scenario unknown_command test_unknown_command
scenario uninstall_not_abbreviated test_uninstall_not_abbreviated
scenario usage_errors test_usage_errors
scenario arguments_checked_locally test_arguments_checked_locally
scenario apply_validates_before_contact test_apply_validates_before_contact
scenario agent_down_errors test_agent_down_errors
scenario agent_down_json_shape test_agent_down_json_shape
scenario socket_selection test_socket_selection
scenario version_without_agent test_version_without_agent
scenario version_skew test_version_skew
scenario apply_large_answers test_apply_large_answers

[ "$FAILED" -eq 0 ]
