#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""k8sctl.py - drives the stand-in API server and checks k8stool's output
for tests/e2e/test_k8s.sh.

Contract: every subcommand exits 0 on success and 1 with one line on stderr
saying what was expected and what was seen. Files are re-read on each poll
(k8stool replaces them atomically).

  ctl PORTS JSON                      POST a control op (see apiserver.py)
  apply PORTS FILE|JSON               op apply with the objects in FILE / JSON
  get PORTS EXPR                      print EXPR over the server state (api)
  wait [--timeout S] [FILES] EXPR     poll until EXPR is true
  hold [--for S] [FILES] EXPR         EXPR must stay true for S seconds
FILES: --ports F --state F --maps F --stats F. EXPR is Python with:
  st, maps, stats, api   the state file, maps dump, stats and server state
  expected               tests/e2e/k8s/fixtures/expected.json
  kube(d)                the kubernetes services of d
  canon(d)               {"vip:port/proto": {"addr:port": weight}} of d
  svc(name, vip, d=st)   {"addr:port": weight} of that service, None if absent
  lists(kind=None)       list requests seen by the server (api required)
"""
import argparse
import json
import os
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def ports(path):
    with open(path) as f:
        return json.load(f)


def post(portfile, req):
    url = "http://127.0.0.1:%d/ctl" % ports(portfile)["ctl"]
    r = urllib.request.Request(url, data=json.dumps(req).encode(), method="POST",
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r, timeout=10) as resp:
        return json.load(resp)


def api_state(portfile):
    url = "http://127.0.0.1:%d/state" % ports(portfile)["ctl"]
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ref(s):
    vip = s["vip"]
    if ":" in vip:
        vip = "[%s]" % vip
    return "%s:%d/%s" % (vip, s["port"], s["protocol"])


def be_key(b):
    a = b["address"]
    return ("[%s]:%d" if ":" in a else "%s:%d") % (a, b["port"])


def kube(d):
    return {"services": [s for s in (d or {}).get("services", [])
                         if s.get("source") == "kubernetes"]}


def canon(d):
    return {ref(s): {be_key(b): b.get("weight", 1) for b in s.get("backends") or []}
            for s in (d or {}).get("services", [])}


def make_env(args):
    st = load(args.state) if args.state else None
    env = {
        "st": st,
        "maps": load(args.maps) if args.maps else None,
        "stats": load(args.stats) if args.stats else None,
        "api": api_state(args.ports) if args.ports else None,
        "expected": load(os.path.join(HERE, "fixtures", "expected.json")),
        "kube": kube,
        "canon": canon,
        "json": json,
    }

    def svc(name, vip, d=None):
        d = st if d is None else d
        for s in (d or {}).get("services", []):
            if s.get("name") == name and s["vip"] == vip:
                return {be_key(b): b.get("weight", 1) for b in s.get("backends") or []}
        return None

    def lists(kind=None):
        return [r for r in env["api"]["requests"]
                if r["verb"] == "list" and (kind is None or r["kind"] == kind)]

    env["svc"] = svc
    env["lists"] = lists
    return env


def evaluate(args):
    env = make_env(args)
    try:
        return bool(eval(args.expr, env)), env
    except Exception as e:  # a file not written yet reads as "not yet"
        return False, dict(env, error=repr(e))


def show(env):
    out = {k: env.get(k) for k in ("stats", "error") if env.get(k) is not None}
    if env.get("st") is not None:
        out["state"] = canon(env["st"])
    if env.get("maps") is not None:
        out["maps"] = canon(env["maps"])
    return json.dumps(out, sort_keys=True)[:3000]


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("ctl")
    c.add_argument("portfile")
    c.add_argument("json")
    c = sub.add_parser("apply")
    c.add_argument("portfile")
    c.add_argument("objects")
    c = sub.add_parser("get")
    c.add_argument("portfile")
    c.add_argument("expr")
    for name in ("wait", "hold"):
        c = sub.add_parser(name)
        c.add_argument("--timeout", type=float, default=10)
        c.add_argument("--for", dest="hold", type=float, default=1.5)
        c.add_argument("--ports")
        c.add_argument("--state")
        c.add_argument("--maps")
        c.add_argument("--stats")
        c.add_argument("expr")
    args = ap.parse_args()

    if args.cmd == "ctl":
        r = post(args.portfile, json.loads(args.json))
        if not r.get("ok"):
            print("ctl failed: %s" % r, file=sys.stderr)
            return 1
        return 0
    if args.cmd == "apply":
        text = args.objects
        if os.path.exists(text):
            with open(text) as f:
                text = f.read()
        objs = json.loads(text)
        if isinstance(objs, dict):
            objs = objs.get("items", [objs])
        return 0 if post(args.portfile, {"op": "apply", "objects": objs}).get("ok") else 1
    if args.cmd == "get":
        env = {"api": api_state(args.portfile)}
        print(json.dumps(eval(args.expr, env)))
        return 0
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
            time.sleep(0.05)
    if args.cmd == "hold":
        end = time.monotonic() + args.hold
        while time.monotonic() < end:
            ok, env = evaluate(args)
            if not ok:
                print("stopped holding: %s\n  seen: %s" % (args.expr, show(env)),
                      file=sys.stderr)
                return 1
            time.sleep(0.05)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
