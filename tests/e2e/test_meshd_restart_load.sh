#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_restart_load.sh - test_meshd.sh's restart_under_load scenario
# on its own: 50 streaming connections and a loop of new ones while meshd
# is killed -9 and restarted 5 times (what it checks: test_meshd.sh).
#
# Serial: traffic must move in each 0.4 s meshd is down; the poller must do 2 polls/s
#
# Contract: the same topology, pins and clean-up as test_meshd.sh, which it
# runs with that one scenario; one "PASS: e2e/meshd_restart_under_load" or
# "FAIL: ..." line. Needs what test_meshd.sh needs. About 20 s.
set -u
exec "$(dirname "$0")/test_meshd.sh" restart_under_load
