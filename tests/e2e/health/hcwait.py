#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""hcwait.py - read or wait for backends' probe state through meshctl.

  hcwait.py MESHCTL SOCK SVC get ADDR FIELD
      print FIELD of backend ADDR: a field of its "probe" object ("state",
      "lastResult", "lastHttpStatus", "probes"), or "state." for the
      backend's own state (active, unhealthy, draining); "-" when absent
  hcwait.py MESHCTL SOCK SVC wait SECONDS ADDR=FIELD=VALUE...
      poll every 50 ms until every condition holds; exit 1 naming the
      first that does not when SECONDS pass
"""
import json
import subprocess
import sys
import time


def field(svc, addr, name):
    for b in svc.get("backends", []):
        if b.get("address") == addr:
            if name == "state.":
                return str(b.get("state", "-"))
            return str(b.get("probe", {}).get(name, "-"))
    return "?"


def get(meshctl, sock, ref):
    r = subprocess.run([meshctl, "-s", sock, "--timeout", "5000", "-o", "json", "service",
                        "get", ref], capture_output=True, text=True, timeout=10)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}


def main():
    meshctl, sock, ref, cmd = sys.argv[1:5]
    if cmd == "get":
        print(field(get(meshctl, sock, ref), sys.argv[5], sys.argv[6]))
        return 0
    deadline = time.monotonic() + float(sys.argv[5])
    conds = [c.split("=", 2) for c in sys.argv[6:]]
    while True:
        svc = get(meshctl, sock, ref)
        bad = [(a, f, v, field(svc, a, f)) for a, f, v in conds if field(svc, a, f) != v]
        if not bad:
            return 0
        if time.monotonic() > deadline:
            a, f, v, got = bad[0]
            print("%s: probe %s is '%s', not '%s' within %ss" % (a, f, got, v, sys.argv[5]))
            return 1
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
