#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_install.sh - `make install` / `make uninstall`, the man pages, the
# systemd unit, readiness and bash completion (#18).
#
# Contract: installs into a temporary DESTDIR (PREFIX=/usr and the default
# /usr/local) and checks every file is where a Debian package would put it;
# the installed meshd and meshctl run (--help, --version); `man -l` renders
# both pages and every long option of --help is in its page (generated from
# it, so they cannot drift); `systemd-analyze verify` has nothing to say
# about the unit (its man: links resolved in DESTDIR) and flags a broken
# copy; the completion script passes `bash -n` and
# completes commands, subcommands and flags; uninstall leaves nothing but a
# config file the operator changed. As root also: meshd started with
# $NOTIFY_SOCKET sends READY=1 once its API serves, and the completion
# offers the service of that live meshd (its own network namespace, pin
# dir, state and socket, all removed on exit). Prints one PASS:/FAIL: line
# per scenario.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SLUICE_BUILD:-$ROOT/build}
TMP=$(mktemp -d /tmp/sluice-install.XXXXXX)
NS=sluice-inst-$$
PIN=/sys/fs/bpf/sluice-inst-$$
MESHD_PID=
FAILED=0
cleanup() {
	if [ -n "$MESHD_PID" ]; then
		kill "$MESHD_PID" 2>/dev/null
		wait "$MESHD_PID" 2>/dev/null
	fi
	[ -d "$PIN" ] && "$BUILD/meshd" --cleanup --bpffs "$PIN" >/dev/null 2>&1
	ip netns del "$NS" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "    $*"
	return 1
}

scenario() {
	if "test_$1"; then
		echo "PASS: e2e/install/$1"
	else
		echo "FAIL: e2e/install/$1"
		FAILED=$((FAILED + 1))
	fi
}

# make_install DESTDIR [VAR=VALUE...]
make_install() {
	local d=$1
	shift
	make -s -C "$ROOT" O="$BUILD" install DESTDIR="$d" "$@" >"$TMP/make.out" 2>&1 ||
		fail "make install $*: $(tail -n 3 "$TMP/make.out")"
}

test_layout() {
	local d=$TMP/usr f
	make_install "$d" PREFIX=/usr || return 1
	for f in usr/sbin/meshd usr/bin/meshctl usr/share/man/man8/meshd.8 \
		usr/share/man/man8/meshctl.8 usr/share/bash-completion/completions/meshctl \
		usr/lib/systemd/system/meshd.service etc/sluice/meshd.yaml \
		usr/share/doc/sluice/examples/services.yaml; do
		[ -f "$d/$f" ] || fail "missing $f" || return 1
	done
	[ -x "$d/usr/sbin/meshd" ] && [ -x "$d/usr/bin/meshctl" ] || fail "binaries not executable" || return 1
	grep -q '^ExecStart=/usr/sbin/meshd --config /etc/sluice/meshd.yaml$' \
		"$d/usr/lib/systemd/system/meshd.service" || fail "ExecStart not filled in" || return 1
	"$d/usr/sbin/meshd" --help | grep -q -- '--interfaces' || fail "installed meshd --help" || return 1
	"$d/usr/bin/meshctl" --help | grep -q 'backend' || fail "installed meshctl --help" || return 1
	"$d/usr/sbin/meshd" --version | grep -q '^meshd [0-9]' || fail "installed meshd --version" || return 1
	# the default PREFIX
	make_install "$TMP/local" || return 1
	[ -x "$TMP/local/usr/local/sbin/meshd" ] && [ -f "$TMP/local/usr/local/etc/sluice/meshd.yaml" ] ||
		fail "PREFIX=/usr/local layout" || return 1
}

test_man_pages() {
	local d=$TMP/usr p opt out
	for p in meshd meshctl; do
		out=$(MANWIDTH=100 man -l "$d/usr/share/man/man8/$p.8" 2>"$TMP/man.err") ||
			fail "man -l $p.8 failed: $(cat "$TMP/man.err")" || return 1
		[ ! -s "$TMP/man.err" ] || fail "man -l $p.8 warns: $(cat "$TMP/man.err")" || return 1
		grep -q "^NAME" <<<"$out" || fail "$p.8 has no NAME" || return 1
		for opt in $("$BUILD/$p" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
			grep -q -- "$opt" <<<"$out" || fail "$p.8 lacks $opt of --help" || return 1
		done
	done
	out=$(MANWIDTH=100 man -l "$d/usr/share/man/man8/meshctl.8")
	grep -q 'meshctl backend undrain' <<<"$out" || fail "meshctl.8 lacks the subcommands" || return 1
}

# verify UNIT: systemd-analyze's output (empty when it has nothing to say).
verify() {
	MANPATH=$TMP/usr/usr/share/man systemd-analyze verify "$1" 2>&1
}

# The unit as installed, its ExecStart pointed into DESTDIR (verify checks
# the program exists) and its man: links looked up in DESTDIR's pages.
test_systemd_unit() {
	local d=$TMP/usr out
	command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (apt-get install systemd)" || return 1
	mkdir -p "$TMP/units"
	sed "s|/usr/sbin/meshd|$d/usr/sbin/meshd|" "$d/usr/lib/systemd/system/meshd.service" \
		>"$TMP/units/meshd.service"
	out=$(verify "$TMP/units/meshd.service") || fail "verify failed: $out" || return 1
	[ -z "$out" ] || fail "verify warns: $out" || return 1
	grep -q '^Type=notify$' "$TMP/units/meshd.service" || fail "not Type=notify" || return 1
	grep -q '^Restart=on-failure$' "$TMP/units/meshd.service" || fail "no Restart=on-failure" || return 1
	# the check can fail: verify speaks up about a broken copy
	sed 's/^Type=notify$/Type=bogus/' "$TMP/units/meshd.service" >"$TMP/units/broken.service"
	out=$(verify "$TMP/units/broken.service")
	[[ $out == *bogus* ]] || fail "verify said nothing about Type=bogus" || return 1
}

# complete WORDS...: COMPREPLY of the installed completion, on stdout.
complete_words() {
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_meshctl; printf "%s\n" "${COMPREPLY[@]}"' _ \
		"$TMP/usr/usr/share/bash-completion/completions/meshctl" "$@"
}

test_completion() {
	local comp=$TMP/usr/usr/share/bash-completion/completions/meshctl m=$TMP/usr/usr/bin/meshctl
	bash -n "$comp" || fail "bash -n failed" || return 1
	[ "$(complete_words "$m" ba)" = backend ] || fail "ba -> $(complete_words "$m" ba)" || return 1
	complete_words "$m" backend "" | grep -qx undrain || fail "backend subcommands" || return 1
	complete_words "$m" apply -- | grep -qx -- --dry-run || fail "apply flags" || return 1
	complete_words "$m" -o "" | grep -qx json || fail "-o values" || return 1
}

test_uninstall() {
	local d=$TMP/usr left
	echo "# changed by the operator" >>"$d/etc/sluice/meshd.yaml"
	make -s -C "$ROOT" O="$BUILD" uninstall DESTDIR="$d" PREFIX=/usr >"$TMP/make.out" 2>&1 ||
		fail "make uninstall: $(cat "$TMP/make.out")" || return 1
	left=$(cd "$d" && find . -type f | sort)
	[ "$left" = ./etc/sluice/meshd.yaml ] || fail "left after uninstall: $left" || return 1
	make -s -C "$ROOT" O="$BUILD" uninstall DESTDIR="$TMP/local" >/dev/null 2>&1
	left=$(cd "$TMP/local" && find . -type f)
	[ -z "$left" ] || fail "left after uninstall (unchanged config): $left" || return 1
}

# meshd in its own namespace (the installed example config, its paths
# overridden by flags), no interfaces, no cgroup hooks, with a
# notify socket; the completion then asks it for services.
test_live_notify_and_completion() {
	local i out
	ip netns add "$NS" || fail "ip netns add" || return 1
	python3 - "$TMP/notify.sock" "$TMP/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
data = s.recv(4096)
open(sys.argv[2], "wb").write(data)
PY
	local npid=$!
	for ((i = 0; i < 1500; i++)); do [ -S "$TMP/notify.sock" ] && break; sleep 0.02; done
	NOTIFY_SOCKET=$TMP/notify.sock ip netns exec "$NS" "$BUILD/meshd" \
		--config "$TMP/usr/etc/sluice/meshd.yaml" --bpffs "$PIN" \
		--state "$TMP/state.json" --socket "$TMP/meshd.sock" --telemetry off --socket-lb off \
		--metrics off --kubernetes off >"$TMP/meshd.log" 2>&1 &
	MESHD_PID=$!
	wait "$npid"
	[ -f "$TMP/notify.out" ] || fail "no notification (log: $(tail -n 3 "$TMP/meshd.log"))" || return 1
	grep -q '^READY=1$' "$TMP/notify.out" || fail "notified: $(cat "$TMP/notify.out")" || return 1
	# READY=1 comes once the API serves: no wait here
	"$BUILD/meshctl" -s "$TMP/meshd.sock" status >/dev/null || fail "API not serving at READY=1" || return 1
	"$BUILD/meshctl" -s "$TMP/meshd.sock" service add 10.96.77.1:80/tcp 10.0.77.2:8080 >/dev/null ||
		fail "service add" || return 1
	out=$(complete_words "$TMP/usr/usr/bin/meshctl" -s "$TMP/meshd.sock" backend drain "")
	[ "$out" = 10.96.77.1:80/tcp ] || fail "backend drain <TAB> offered '$out'" || return 1
	out=$(SLUICE_SOCKET=$TMP/meshd.sock complete_words "$TMP/usr/usr/bin/meshctl" service get 10.96)
	[ "$out" = 10.96.77.1:80/tcp ] || fail "service get 10.96<TAB> offered '$out'" || return 1
}

scenario layout
scenario man_pages
scenario systemd_unit
scenario completion
if [ "$(id -u)" -eq 0 ]; then
	scenario live_notify_and_completion
else
	echo "SKIP: e2e/install/live_notify_and_completion (needs root)"
fi
scenario uninstall
[ "$FAILED" -eq 0 ]
