#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_prom_rules.sh - the Prometheus alerting rules (scripts/prometheus/):
# `promtool check rules` accepts them, and `promtool test rules` runs their
# unit tests (sluice-alerts.test.yaml: every alert fires on the series that
# should fire it, at the time it should, and stays quiet on healthy ones).
# That each series they name is one meshd really serves is checked against a
# real scrape in test_meshd_metrics.sh (promtool scenario). Needs promtool
# (Debian's prometheus package; scripts/install-deps.sh installs it).
# Runs without root.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$ROOT/scripts/prometheus
failed=0

check() { # NAME CMD...
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "PASS: e2e/prom_rules_$name"
	else
		echo "$out" | tail -n 40 | sed 's/^/    /'
		echo "FAIL: e2e/prom_rules_$name: $(echo "$out" | grep -m1 -E 'FAILED|error|Error' | cut -c1-200)"
		failed=$((failed + 1))
	fi
}

command -v promtool >/dev/null || { echo "FAIL: e2e/prom_rules_setup: promtool is missing"; exit 1; }
check check promtool check rules "$DIR/sluice-alerts.yaml"
check unit_tests promtool test rules "$DIR/sluice-alerts.test.yaml"
[ "$failed" -eq 0 ]
