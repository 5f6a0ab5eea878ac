#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_prom_rules.sh - the Prometheus alerting rules (scripts/prometheus/):
# `promtool check rules` accepts them, and `promtool test rules` runs their
# unit tests (sluice-alerts.test.yaml: every alert fires on the series that
# should fire it, at the time it should, and stays quiet on healthy ones);
# the Grafana dashboard (scripts/grafana/) is valid JSON whose panels all
# query the dashboard's Prometheus datasource.
# That each series they (and the dashboard) name is one meshd really serves is checked against a
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
# the dashboard: JSON Grafana imports, every panel querying Prometheus
# through the dashboard's datasource variable, every query non-empty
check dashboard python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
bad = [p.get("title") for p in d["panels"]
       if not p.get("targets") or p.get("datasource", {}).get("uid") != "${datasource}"
       or any(not t.get("expr", "").strip() for t in p["targets"])]
print("%d panels; bad: %s" % (len(d["panels"]), bad or "none"))
if bad:
    print("error: panels without a query or the datasource variable: %s" % bad)
sys.exit(1 if bad or not d["panels"] else 0)' "$ROOT/scripts/grafana/sluice-dashboard.json"
[ "$failed" -eq 0 ]
