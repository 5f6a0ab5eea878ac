#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_k8s_manifests.sh - the Kubernetes deployment files (scripts/k8s/)
# parse as YAML and have what a node-agent DaemonSet needs; the ConfigMap's
# keys are flags of the built meshd. No cluster needed: see
# tests/e2e/k8s/check_manifests.py for the checks. Needs python3-yaml.
# Runs without root.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
exec python3 "$ROOT/tests/e2e/k8s/check_manifests.py" "$ROOT/scripts/k8s" "$ROOT/build/meshd"
