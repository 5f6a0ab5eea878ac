#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""recovery.py - the JSON side of tests/e2e/test_meshd_recovery.sh.

Contract, one subcommand each; exit 0 = as expected, 1 = not, 2 = usage:

  recovery.py gen N OUT
      writes a desired state of N services (each its own VIP, 5 backends,
      weights 1-5) to OUT as JSON.
  recovery.py audit PIN STATE
      reads the pinned services, backends and maglev maps with bpftool
      (independently of Sluice's code) and checks them against the state
      file STATE: the services are exactly the file's; the backends map
      holds exactly the file's backend count, every backend carries the
      id of a service; every VIP marker has a service on its address and
      protocol; no Maglev table of a service id without a service names a
      backend (tables shared by several slots are the empty table deletes
      leave, and at most 20 others are read). Prints one summary line and
      every problem.
  recovery.py contents PIN OUT
      what the pinned maps serve, for comparing before and after a refused
      change: services and backends entries sorted, and the content of
      each service's Maglev table (a rolled-back change may put an equal
      table under a new inner map id, and leave a deleted service's slot
      the shared empty table), plus the slots of ids without a service
      whose table names a backend.
  recovery.py same-services A B
      two `meshctl service list -o json` outputs hold the same services,
      backends and weights (names and sources are not compared: adopt
      cannot know them).
"""
import ipaddress
import json
import struct
import subprocess
import sys

MARKER = 1  # SLUICE_SVC_F_VIP_MARKER
PROTO = {"tcp": 6, "udp": 17}


def gen(n, out):
    services = []
    for i in range(n):
        vip = "10.98.%d.%d" % (i // 250, i % 250 + 1)
        bes = [{"address": "10.120.%d.%d" % (i % 200, 10 * (i // 200 % 25) + j + 1),
                "port": 8080, "weight": j + 1} for j in range(5)]
        services.append({"name": "svc%d" % i, "vip": vip, "port": 80, "protocol": "tcp",
                         "backends": bes})
    with open(out, "w") as f:
        json.dump({"services": services}, f)
    return 0


def bpftool(*args):
    out = subprocess.run(["bpftool", "-j"] + list(args), check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out or "[]")


def raw(hexbytes):
    return bytes(int(x, 16) for x in hexbytes)


def key_of(vip, port, proto):
    ip = ipaddress.ip_address(vip)
    return (ip.packed.ljust(16, b"\0") + struct.pack("!H", port) +
            bytes([PROTO[proto], 4 if ip.version == 4 else 6]))


def audit(pin, state):
    with open(state) as f:
        want = json.load(f)["services"]
    want_keys = {key_of(s["vip"], int(s["port"]), s["protocol"]) for s in want}
    want_bes = sum(len(s.get("backends") or []) for s in want)
    problems = []
    live_ids, live_vips, markers = set(), set(), []
    have_keys = set()
    for e in bpftool("map", "dump", "pinned", pin + "/services"):
        k, v = raw(e["key"]), raw(e["value"])
        svc_id, _, flags = struct.unpack("<IHH", v[:8])
        if flags & MARKER:
            markers.append(k)
            continue
        have_keys.add(k)
        live_ids.add(svc_id)
        live_vips.add(k[:16] + k[18:20])
    if have_keys != want_keys:
        problems.append("services map: %d services not in the state file, %d missing"
                        % (len(have_keys - want_keys), len(want_keys - have_keys)))
    bes = bpftool("map", "dump", "pinned", pin + "/backends")
    dead_bes = [e for e in bes if struct.unpack("<I", raw(e["value"])[20:24])[0] not in live_ids]
    if len(bes) != want_bes:
        problems.append("backends map: %d entries, the state file has %d backends"
                        % (len(bes), want_bes))
    if dead_bes:
        problems.append("backends map: %d entries of service ids no service has" % len(dead_bes))
    dead_markers = [k for k in markers if k[:16] + k[18:20] not in live_vips]
    if dead_markers:
        problems.append("services map: %d VIP markers without a service" % len(dead_markers))
    slots = {}
    for e in bpftool("map", "dump", "pinned", pin + "/maglev"):
        slots[struct.unpack("<I", raw(e["key"]))[0]] = struct.unpack("<I", raw(e["value"]))[0]
    refs = {}
    for inner in slots.values():
        refs[inner] = refs.get(inner, 0) + 1
    dead = [(i, t) for i, t in sorted(slots.items()) if i not in live_ids and refs[t] == 1]
    used = 0
    for svc_id, inner in dead[:20]:
        if any(any(raw(e["value"])) for e in bpftool("map", "dump", "id", str(inner))):
            used += 1
    if used:
        problems.append("maglev: %d of %d tables of service ids without a service name backends"
                        % (used, min(len(dead), 20)))
    print("audit: %d services, %d backends (state file: %d, %d), %d markers; %s"
          % (len(have_keys), len(bes), len(want_keys), want_bes, len(markers),
             "no unexplained entry" if not problems else "; ".join(problems)))
    return 1 if problems else 0


def table(inner):
    return "".join(raw(e["value"]).hex() for e in bpftool("map", "dump", "id", str(inner)))


def contents(pin, out):
    snap = {}
    svcs = bpftool("map", "dump", "pinned", pin + "/services")
    snap["services"] = sorted("%s => %s" % (raw(e["key"]).hex(), raw(e["value"]).hex())
                              for e in svcs)
    snap["backends"] = sorted("%s => %s" % (raw(e["key"]).hex(), raw(e["value"]).hex())
                              for e in bpftool("map", "dump", "pinned", pin + "/backends"))
    slots = {struct.unpack("<I", raw(e["key"]))[0]: struct.unpack("<I", raw(e["value"]))[0]
             for e in bpftool("map", "dump", "pinned", pin + "/maglev")}
    live = {}
    for e in svcs:
        svc_id, _, flags = struct.unpack("<IHH", raw(e["value"])[:8])
        if not flags & MARKER:
            live[svc_id] = raw(e["key"]).hex()
    snap["tables"] = {live[i]: table(t) if i in slots else None for i in live for t in
                      [slots.get(i)]}
    snap["dead slots naming backends"] = sorted(
        i for i, t in slots.items() if i not in live and any(int(c, 16) for c in table(t)))
    with open(out, "w") as f:
        json.dump(snap, f, indent=0, sort_keys=True)
    return 0


def services(path):
    with open(path) as f:
        out = {}
        for s in json.load(f)["services"]:
            bes = sorted((b["address"], int(b["port"]), int(b["weight"]))
                         for b in s.get("backends") or [])
            out[(s["vip"], int(s["port"]), s["protocol"])] = bes
        return out


def same_services(a, b):
    x, y = services(a), services(b)
    if x == y:
        print("same-services: %d services, backends and weights identical" % len(x))
        return 0
    for key in sorted(set(x) | set(y)):
        if x.get(key) != y.get(key):
            print("  %s:%d/%s: %s vs %s" % (key + (x.get(key), y.get(key))))
    return 1


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "gen":
        return gen(int(a[1]), a[2])
    if len(a) == 3 and a[0] == "audit":
        return audit(a[1], a[2])
    if len(a) == 3 and a[0] == "contents":
        return contents(a[1], a[2])
    if len(a) == 3 and a[0] == "same-services":
        return same_services(a[1], a[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
