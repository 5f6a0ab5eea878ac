#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""check.py - the JSON side of tests/e2e/test_meshd.sh (python3 + PyYAML).

Contract, one subcommand each; exit 0 = as expected, 1 = not, 2 = usage:

  check.py api SOCK OP [--args JSON] [--desired FILE] [--dry-run] [--pad N] [--zero-pad-last]
      one raw API request (api.h protocol), bypassing meshctl's own checks,
      so meshd's validation is what answers. Prints the response; exit 0 if
      "ok" is true, 1 if false, 2 if the socket did not answer.
  check.py same-state FILE LIST
      FILE (the YAML/JSON desired state, parsed here independently of
      Sluice's parser) and LIST (`meshctl service list -o json`) hold the
      same services: vip, port, protocol, name, source and the backend set
      with weights (defaults: source manual, weight 1). Prints differences.
  check.py bad-cases DIR
      writes one invalid desired-state file per rejection case into DIR
      and prints "CASE<TAB>REGEX" lines: the (escaped) text the error must
      hold.
  check.py fill FULL CHANGED
      FULL: services whose backends use every backend id (the
      SLUICE_MAX_BACKENDS - 1 of include/sluice_abi.h, 1024 per service);
      CHANGED: FULL with a weight changed in the first service and every
      backend of the last one replaced, which needs that many more ids
      before the old ones are freed: the backends map is full half-way
      through the apply. Prints "FIRST LAST NSERVICES NBACKENDS".
  check.py ct PORTS        (stdin: `meshctl conntrack list -o json`)
      prints the number of entries; exit 1 if a client port listed in
      PORTS (one a line) has no entry.
"""
import argparse
import ipaddress
import json
import os
import re
import socket
import sys


def cmd_api(a):
    req = {"op": a.op}
    if a.args:
        req.update(json.loads(a.args))
    if a.desired:
        with open(a.desired) as f:
            req["desired"] = json.load(f)
    if a.dry_run:
        req["dry_run"] = True
    text = json.dumps(req)
    if a.zero_pad_last:
        # invalid JSON in the last service: its port written "080"
        i = text.rindex('"port": ') + len('"port": ')
        text = text[:i] + "0" + text[i:]
    # white space after the object: a request meshd reads lazily (>= 64 KiB)
    text += " " * a.pad
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(a.sock)
            s.sendall(text.encode() + b"\n")
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        resp = json.loads(buf)
    except (OSError, ValueError) as e:
        print("api %s: %s" % (a.op, e))
        return 2
    print(json.dumps(resp))
    return 0 if resp.get("ok") is True else 1


def svc_key(vip, port, proto):
    return (str(ipaddress.ip_address(vip)), int(port), proto.lower())


def normalize(services, defaults):
    """{key: (name, source, {(addr, port): weight})}"""
    out = {}
    for s in services or []:
        key = svc_key(s["vip"], s["port"], s["protocol"])
        bes = {}
        for b in s.get("backends") or []:
            bes[(str(ipaddress.ip_address(b["address"])), int(b["port"]))] = \
                int(b.get("weight", 1) if defaults else b["weight"])
        name = s.get("name") or ""
        source = s.get("source") or ("manual" if defaults else "")
        out[key] = (name, source, bes)
    return out


def cmd_same_state(a):
    import yaml  # only here: `api` runs as nobody under the system python3

    with open(a.file) as f:
        want = normalize((yaml.safe_load(f) or {}).get("services"), True)
    with open(a.list) as f:
        have = normalize(json.load(f)["services"], False)
    bad = 0
    for key in sorted(set(want) | set(have)):
        ref = "%s:%d/%s" % key
        if key not in have:
            print("  missing service %s" % ref)
        elif key not in want:
            print("  unexpected service %s" % ref)
        elif want[key] != have[key]:
            print("  service %s differs: want %s, have %s" % (ref, want[key], have[key]))
        else:
            continue
        bad = 1
    print("same-state: %d services expected, %d listed, %s" %
          (len(want), len(have), "identical" if not bad else "DIFFERENT"))
    return bad


def svc(vip, port, backends, proto="tcp", **extra):
    d = {"vip": vip, "port": port, "protocol": proto, "backends": backends}
    d.update(extra)
    return d


def be(addr, port=8080, weight=1):
    return {"address": addr, "port": port, "weight": weight}


def cmd_bad_cases(a):
    ok = [be("10.10.1.2"), be("10.10.2.2")]
    cases = {
        "duplicate_service": ([svc("10.96.0.50", 80, ok), svc("10.96.0.50", 80, ok)],
                              "duplicate"),
        "port_0": ([svc("10.96.0.50", 0, ok)], "services[0].port"),
        "port_70000": ([svc("10.96.0.50", 70000, ok)], "70000"),
        "backend_port_70000": ([svc("10.96.0.50", 80, [be("10.10.1.2", 70000)])], "70000"),
        "malformed_vip": ([svc("10.96.0.300", 80, ok)], "10.96.0.300"),
        "malformed_backend": ([svc("10.96.0.50", 80, [be("10.10.1.2.7")])], "10.10.1.2.7"),
        "mixed_families": ([svc("10.96.0.50", 80, [be("10.10.1.2"), be("fd00:10:1::2")])],
                           "backends[1].address"),
        "all_weights_0": ([svc("10.96.0.50", 80, [be("10.10.1.2", weight=0),
                                                  be("10.10.2.2", weight=0)])], "weight"),
        "too_many_backends": ([svc("10.96.0.50", 80,
                                   [be("10.20.%d.%d" % (i // 250, i % 250 + 1))
                                    for i in range(1025)])], "1025"),
        "unknown_field": ([svc("10.96.0.50", 80, ok, colour="red")], "colour"),
        "bad_protocol": ([svc("10.96.0.50", 80, ok, proto="sctp")], "sctp"),
    }
    os.makedirs(a.dir, exist_ok=True)
    for name, (services, needle) in cases.items():
        with open(os.path.join(a.dir, name + ".json"), "w") as f:
            json.dump({"services": services}, f, indent=1)
        print("%s\t%s" % (name, re.escape(needle)))
    return 0


def max_backends():
    """SLUICE_MAX_BACKENDS from the ABI header: ids 1 .. MAX - 1 exist."""
    abi = os.path.join(os.path.dirname(__file__), "..", "..", "..", "include", "sluice_abi.h")
    with open(abi) as f:
        m = re.search(r"^#define SLUICE_MAX_BACKENDS (\d+)", f.read(), re.M)
    return int(m.group(1))


def cmd_fill(a):
    # Services of 1024 backends (the per-service limit) and a last, smaller
    # one: every backend id in use. Prints the first and last service.
    ids = max_backends() - 1
    nsvc = (ids + 1023) // 1024
    base = int(ipaddress.IPv4Address("10.100.0.1"))
    services = []
    for i in range(nsvc):
        n = min(1024, ids - 1024 * i)
        services.append(svc("10.97.%d.%d" % (i // 200, i % 200 + 1), 80,
                            [be(str(ipaddress.IPv4Address(base + 1024 * i + j))) for j in range(n)]))
    with open(a.full, "w") as f:
        json.dump({"services": services}, f)
    services[0]["backends"][0]["weight"] = 7
    n = len(services[-1]["backends"])
    services[-1]["backends"] = [be("10.200.%d.%d" % (j // 250, j % 250 + 1)) for j in range(n)]
    with open(a.changed, "w") as f:
        json.dump({"services": services}, f)
    print("%s:80/tcp %s:80/tcp %d %d" % (services[0]["vip"], services[-1]["vip"], nsvc, ids))
    return 0


def cmd_ct(a):
    entries = json.load(sys.stdin)["entries"]
    with open(a.ports) as f:
        ports = {int(line) for line in f if line.strip()}
    seen = set()
    for e in entries:
        if e.get("proto") == "tcp":
            seen.add(int(e["client"].rsplit(":", 1)[1]))
    missing = sorted(ports - seen)
    print(len(entries))
    if missing:
        print("  %d long-lived flows have no conntrack entry, client ports %s" %
              (len(missing), " ".join(map(str, missing[:10]))), file=sys.stderr)
    return 1 if missing else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("api")
    s.add_argument("sock")
    s.add_argument("op")
    s.add_argument("--args")
    s.add_argument("--desired")
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--pad", type=int, default=0)
    s.add_argument("--zero-pad-last", action="store_true")
    s.set_defaults(fn=cmd_api)
    s = sub.add_parser("same-state")
    s.add_argument("file")
    s.add_argument("list")
    s.set_defaults(fn=cmd_same_state)
    s = sub.add_parser("bad-cases")
    s.add_argument("dir")
    s.set_defaults(fn=cmd_bad_cases)
    s = sub.add_parser("fill")
    s.add_argument("full")
    s.add_argument("changed")
    s.set_defaults(fn=cmd_fill)
    s = sub.add_parser("ct")
    s.add_argument("ports")
    s.set_defaults(fn=cmd_ct)
    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
