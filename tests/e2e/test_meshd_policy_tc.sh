#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_meshd_policy_tc.sh - the access policy end to end through the tc
# program (meshd --xdp-mode off): test_meshd_policy.sh's scenarios that
# depend on the packet path (deny_drop, allow_refuse, node, cut, udp), as
# "PASS: e2e/meshd_policy_tc_<name>" lines, on a topology of its own.
# Usage: test_meshd_policy_tc.sh [SCENARIO...]   (default: those four)
set -u
[ $# -gt 0 ] || set -- deny_drop allow_refuse node cut udp
TOPO_PREFIX=mpt POLICY_XDP_MODE=off POLICY_SCENARIO_PREFIX=meshd_policy_tc_ \
	exec bash "$(dirname "$0")/test_meshd_policy.sh" "$@"
