#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""meshd_watch.py - polls a running meshd (through meshctl) for
tests/e2e/test_meshd_k8s.sh, with the expression helpers of k8sctl.py.

Contract: exits 0 when EXPR holds (wait: becomes true before the timeout;
hold: stays true for the whole period), else 1 with one line on stderr
saying what was expected and what was seen. Every poll runs meshctl afresh.

  wait [--timeout S] COMMON EXPR
  hold [--for S] COMMON EXPR
  COMMON: --meshctl BIN --socket SOCK [--state FILE] [--pins DIR] [--netns NAME]
EXPR is Python with:
  lst      `meshctl service list -o json` ({"services": [...]})
  status   `meshctl status -o json`
  st       the state file
  maps     a digest of `bpftool map dump` of the pinned services, backends
           and maglev maps (None without --pins)
  kube(d), canon(d), expected   as in k8sctl.py
  svc(name, vip, d=lst)         {"addr:port": weight}, None if absent
  state(name, vip, be, d=lst)   that backend's "state" (active/draining)
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from k8sctl import HERE, be_key, canon, kube, load  # noqa: E402


def meshctl(args, *cmd):
    r = subprocess.run([args.meshctl, "-s", args.socket, "-o", "json"] + list(cmd),
                       capture_output=True, text=True, timeout=10)
    if r.returncode:
        raise RuntimeError("meshctl %s: %s" % (" ".join(cmd), (r.stdout + r.stderr).strip()))
    return json.loads(r.stdout)


def maps_digest(args):
    if not args.pins:
        return None
    h = hashlib.sha256()
    for name in ("services", "backends", "maglev"):
        cmd = ["bpftool", "map", "dump", "pinned", os.path.join(args.pins, name)]
        if args.netns:
            cmd = ["nsenter", "--net=/var/run/netns/" + args.netns] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if r.returncode:
            raise RuntimeError("bpftool %s: %s" % (name, r.stderr.strip()))
        h.update(r.stdout.encode())
    return h.hexdigest()


def make_env(args):
    lst = meshctl(args, "service", "list")
    env = {
        "lst": lst,
        "status": meshctl(args, "status"),
        "st": load(args.state) if args.state else None,
        "maps": maps_digest(args),
        "expected": load(os.path.join(HERE, "fixtures", "expected.json")),
        "kube": kube,
        "canon": canon,
        "json": json,
    }

    def find(name, vip, d):
        for s in (d or {}).get("services", []):
            if s.get("name") == name and s["vip"] == vip:
                return s
        return None

    def svc(name, vip, d=None):
        s = find(name, vip, lst if d is None else d)
        if s is None:
            return None
        return {be_key(b): b.get("weight", 1) for b in s.get("backends") or []}

    def state(name, vip, be, d=None):
        s = find(name, vip, lst if d is None else d)
        for b in (s or {}).get("backends") or []:
            if be_key(b) == be:
                return b.get("state")
        return None

    env["svc"] = svc
    env["state"] = state
    return env


def evaluate(args):
    env = {}
    try:
        env = make_env(args)
        # parenthesized: the tests spread expressions over lines
        return bool(eval("(%s)" % args.expr, env)), env
    except Exception as e:  # meshd restarting, a file not written yet
        return False, dict(env, error=repr(e))


def show(env):
    out = {k: env.get(k) for k in ("error", "maps") if env.get(k) is not None}
    if env.get("lst") is not None:
        out["list"] = canon(env["lst"])
    if env.get("status") is not None:
        out["kubernetes"] = env["status"].get("kubernetes")
    return json.dumps(out, sort_keys=True)[:3000]


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("wait", "hold"):
        c = sub.add_parser(name)
        c.add_argument("--timeout", type=float, default=20)
        c.add_argument("--for", dest="hold", type=float, default=1.5)
        c.add_argument("--meshctl", required=True)
        c.add_argument("--socket", required=True)
        c.add_argument("--state")
        c.add_argument("--pins")
        c.add_argument("--netns")
        c.add_argument("expr")
    args = ap.parse_args()
    if args.cmd == "wait":
        end = time.monotonic() + args.timeout
        while True:
            ok, env = evaluate(args)
            if ok:
                return 0
            if time.monotonic() > end:
                print("timed out after %gs waiting for: %s\n  seen: %s" %
                      (args.timeout, args.expr, show(env)), file=sys.stderr)
                return 1
            time.sleep(0.1)
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        ok, env = evaluate(args)
        if not ok:
            print("stopped holding: %s\n  seen: %s" % (args.expr, show(env)), file=sys.stderr)
            return 1
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
