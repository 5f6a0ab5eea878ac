#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py - turn the raw samples of scripts/bench.sh into the report.

Contract: reads RAW/meta.json, RAW/b1.json (pktbench), RAW/samples.jsonl
(one record per B2-B7 sample), RAW/b5meta.json (B5/B6 placement,
when they ran), RAW/b7meta.json (B7's rate and window, b7_report.py) and writes OUT/results.md, OUT/results.json
and OUT/*.png (gnuplot; skipped with a note when gnuplot is missing).
--check PREFIX only tells whether those rows are flagged (bench.sh reruns
such a set once while its time budget allows). Every row compares Sluice
with a baseline measured in the same run: medians
over the samples, spread = (max - min) / median of each side. A row whose
either side spreads wider than --noisy (default 30%) is moved to the
"flagged" list: it is printed, but not as a result. A sample that did not
measure what it names (frames arriving with an unexpected destination,
i.e. not DNATed, or more than 1% of the generated frames lost) invalidates
its row the same way; so does a B5/B6 sample that failed or whose pinned
counters show it did not take its variant's path (not redirected, not
balanced by the socket LB, telemetry records lost or missing).
"""
import argparse
import math
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from b7_report import b7_detail, b7_notes, b7_rows

LOWER, HIGHER = "lower", "higher"

SYS_NAMES = {
    "sluice": "Sluice XDP",
    "ipt": "kube-proxy iptables",
    "nft": "kube-proxy nftables",
}
B2_NAMES = {
    "xdp": "Sluice XDP LB (redirect per capable egress)",
    "xdppick": "Sluice XDP LB, the same flows picked up mid-stream (unconfirmed)",
    "xdpfib": "Sluice XDP LB forced to redirect (--fib-forward on)",
    "tc": "Sluice tc LB (FIB lookup + redirect)",
    "tcoff": "Sluice tc LB, the kernel forwards (--fib-forward off)",
    "redirect": "XDP redirect-only (ceiling)",
    "fwd": "kernel forwarding, no LB",
    "ipt": "kube-proxy iptables DNAT",
    "nft": "kube-proxy nftables DNAT",
}

B5C_NAMES = {
    "direct": "straight to the backends, no LB (floor)",
    "ipt": "kube-proxy iptables DNAT",
}


def quantile(s, q):
    """Linear interpolation between order statistics of sorted s."""
    if len(s) == 1:
        return s[0]
    x = q * (len(s) - 1)
    i = int(x)
    j = min(i + 1, len(s) - 1)
    return s[i] + (s[j] - s[i]) * (x - i)


def stats(vals):
    """Median and spreads. spread (what flags a set) is the interquartile
    range over the median: one sample hit by a neighbour's burst on this
    shared machine does not flag a set, a set that is broadly unstable
    does. range = (max - min) / median is reported next to it."""
    if not vals:
        return None
    s = sorted(vals)
    med = statistics.median(s)
    return {
        "n": len(s),
        "median": med,
        "min": s[0],
        "max": s[-1],
        "spread": (quantile(s, 0.75) - quantile(s, 0.25)) / med if med else 0.0,
        "range": (s[-1] - s[0]) / med if med else 0.0,
        "samples": vals,
    }


def pct(vals, p):
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(vals)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


class Report:
    def __init__(self, noisy):
        self.noisy = noisy
        self.rows = []

    def add(self, fig, unit, better, sluice, base, base_name, note="", valid=True,
            spread_applies=True):
        """One comparison row; sluice/base are stats() dicts."""
        if not sluice or not base:
            return
        if spread_applies and (sluice["n"] == 1 or base["n"] == 1):
            note = ", ".join(x for x in (note, "n=1: an indication") if x)
        s, b = sluice["median"], base["median"]
        if better == HIGHER:
            ratio = s / b if b else float("inf")
        else:
            ratio = b / s if s else float("inf")
        row = {
            "figure": fig,
            "unit": unit,
            "better": better,
            "baseline_name": base_name,
            "sluice": sluice,
            "baseline": base,
            "ratio": ratio,
            "note": note,
            "spread_applies": spread_applies,
        }
        reasons = []
        if not valid:
            reasons.append("a sample did not measure the path it names")
        if spread_applies:
            for side, st in (("Sluice", sluice), ("baseline", base)):
                if st["n"] > 1 and st["spread"] > self.noisy:
                    reasons.append("%s spread %.0f%% > %.0f%%" % (side, 100 * st["spread"],
                                                                  100 * self.noisy))
        row["flag"] = "; ".join(reasons)
        self.rows.append(row)


def fmt(v, unit):
    if unit in ("Mpps",):
        return "%.3f" % v
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def spread_text(row):
    def one(st):
        if st["n"] == 1:
            return "n=1"
        return "%.0f%% (%.0f%%)" % (100 * st["spread"], 100 * st["range"])

    if not row["spread_applies"]:
        return "%s-%s / %s-%s" % (fmt(row["sluice"]["min"], row["unit"]),
                                  fmt(row["sluice"]["max"], row["unit"]),
                                  fmt(row["baseline"]["min"], row["unit"]),
                                  fmt(row["baseline"]["max"], row["unit"]))
    return "%s / %s" % (one(row["sluice"]), one(row["baseline"]))


def md_row(row):
    return "| %s | %s %s | %s: %s | %.2fx | %s |" % (
        row["figure"] + (" (%s)" % row["note"] if row["note"] else ""),
        fmt(row["sluice"]["median"], row["unit"]), row["unit"],
        row["baseline_name"], fmt(row["baseline"]["median"], row["unit"]),
        row["ratio"], spread_text(row))


def load(raw):
    meta = json.load(open(os.path.join(raw, "meta.json")))
    b1 = None
    p = os.path.join(raw, "b1.json")
    if os.path.exists(p):
        b1 = json.load(open(p))
    samples = []
    p = os.path.join(raw, "samples.jsonl")
    if os.path.exists(p):
        with open(p) as f:
            samples = [json.loads(line) for line in f if line.strip()]
    return meta, b1, samples


def lb_stats(raw):
    """lbtool stats dumps of the Sluice XDP nodes, by topology name."""
    out = {}
    for f in os.listdir(raw):
        if not (f.startswith("lbstats-") and f.endswith(".txt")):
            continue
        c, section = {}, ""
        for line in open(os.path.join(raw, f)):
            w = line.split()
            if len(w) == 1 and w[0].endswith(":"):
                section = w[0][:-1]
            elif len(w) == 2 and w[1].isdigit():
                c["%s.%s" % (section, w[0])] = int(w[1])
        out[f[len("lbstats-"):-len(".txt")]] = c
    return out


def lb_valid(stats_by_topo, topo):
    """The XDP LB forwarded by FIB redirect and dropped nothing: else its
    figure is not the path it names (missing stats do not invalidate)."""
    c = stats_by_topo.get(topo)
    if not c:
        return True
    drops = sum(v for k, v in c.items() if k.startswith("drops."))
    redirect = c.get("counters.fib_redirect", 0)
    return drops == 0 and c.get("counters.fib_pass", 0) <= 0.01 * redirect and redirect > 0


def lb_confirmed(stats_by_topo, topo, flows):
    """Every established sample of the Sluice node opened its flows with a
    handshake that confirmed them (xdpgen --handshake): else the samples
    measured picked-up, unconfirmed flows (missing stats do not
    invalidate)."""
    c = stats_by_topo.get(topo)
    return not c or not flows or c.get("counters.ct_confirmed", 0) >= flows


def gen_valid(s):
    """A generator sample measured what it names: every counted frame had a
    backend destination (DNAT happened) and at most 1% were lost."""
    x = s["sample"]
    return x["other"] == 0 and x["received"] >= 0.99 * x["sent"]


def b1_rows(rep, b1):
    if not b1:
        return
    figs = {f["id"]: f for f in b1["figures"]}

    def st(fid):
        f = figs.get(fid)
        return stats(f["samples_ns"]) if f else None

    rep.add("B1 established flow (DNAT), ns/packet", "ns", LOWER, st("lb_est_repeat"),
            st("lookup_repeat"), "floor: 1 hash lookup")
    rep.add("B1 new flow (Maglev + 2 CT inserts), ns/packet", "ns", LOWER, st("lb_new_perrun"),
            st("ct_insert_perrun"), "floor: the 2 CT inserts")
    rep.add("B1 pass-through (not a service), ns/packet", "ns", LOWER, st("lb_other_repeat"),
            st("empty_repeat"), "floor: empty program")
    # session affinity (#14): target ratio >= 0.95 against the same new flow without it
    rep.add("B1 new flow with session affinity, known client, ns/packet", "ns", LOWER,
            st("lb_new_aff_perrun"), st("lb_new_perrun"), "no affinity")
    rep.add("B1 new flow with session affinity, new client, ns/packet", "ns", LOWER,
            st("lb_new_aff_client_perrun"), st("lb_new_perrun"), "no affinity")


def b2_rows(rep, samples, lbs, flows):
    by = {}
    for s in samples:
        if s["fig"] == "b2":
            by.setdefault(s["variant"], []).append(s)
    detail = []
    for v, ss in by.items():
        st = stats([x["sample"]["pps"] / 1e6 for x in ss])
        st["valid"] = all(gen_valid(x) for x in ss) and (
            not v.startswith("xdp") or lb_valid(lbs, "b2xdp"))
        if v == "xdp":
            st["valid"] = st["valid"] and lb_confirmed(lbs, "b2xdp", flows * len(ss))
        st["ns_per_pkt"] = 1e3 / st["median"] if st["median"] else 0
        detail.append((v, st))
    d = dict(detail)
    pairs = [("xdp", "ipt"), ("xdp", "nft"), ("xdp", "fwd"), ("xdp", "redirect"),
             ("xdppick", "redirect"), ("xdp", "xdppick"),
             ("xdpfib", "redirect"), ("tc", "ipt"), ("tc", "nft"), ("tc", "fwd"),
             ("tcoff", "fwd"), ("tc", "tcoff")]
    for s, b in pairs:
        if s in d and b in d:
            name = {"xdp": "Sluice XDP", "xdpfib": "Sluice XDP --fib-forward on",
                    "xdppick": "Sluice XDP, picked-up flows",
                    "tc": "Sluice tc", "tcoff": "Sluice tc --fib-forward off"}[s]
            rep.add("B2 %s forwarding rate, 1 service, established" % name, "Mpps", HIGHER,
                    d[s], d[b], B2_NAMES[b], valid=d[s]["valid"] and d[b]["valid"])
    return detail


def b2mq_rows(rep, samples, lbs, flows):
    """Per-CPU scaling on a multi-queue path: the rate with generators on
    2 CPUs (the sum of their rates) against 1 CPU, per variant."""
    by = {}
    for s in samples:
        if s["fig"] == "b2mq":
            by.setdefault((s["variant"], s["cpus"]), []).append(s)
    detail = []
    # every generator run of every xdp sample (1 and 2 CPUs) opened flows
    runs = sum(len(x["sample"].get("parts", [])) or 1
               for (v, n), ss in by.items() if v == "xdp" for x in ss)
    for (v, n), ss in sorted(by.items()):
        st = stats([x["sample"]["pps"] / 1e6 for x in ss])
        st["valid"] = all(gen_valid(x) for x in ss) and (v != "xdp" or lb_valid(lbs, "b2qxdp"))
        if v == "xdp":
            st["valid"] = st["valid"] and lb_confirmed(lbs, "b2qxdp", flows * runs)
        detail.append((v, n, st))
    d = {(v, n): st for v, n, st in detail}
    for v in ("xdp", "redirect"):
        if (v, 1) in d and (v, 2) in d:
            rep.add("B2 %s, 2 RX queues: rate on 2 CPUs" % B2_NAMES[v], "Mpps", HIGHER,
                    d[(v, 2)], d[(v, 1)], "the same on 1 CPU",
                    valid=d[(v, 2)]["valid"] and d[(v, 1)]["valid"])
    return detail


def b3_rows(rep, samples, lbs):
    by = {}
    for s in samples:
        if s["fig"] == "b3":
            by.setdefault((s["scale"], s["sys"], s["kind"]), []).append(s)
    scales = sorted({k[0] for k in by})
    curves = {}
    for n in scales:
        for kind in ("est", "new"):
            st = {}
            for sys_ in ("sluice", "ipt", "nft"):
                ss = by.get((n, sys_, kind), [])
                if not ss:
                    continue
                if kind == "est":
                    vals = [x["sample"]["pps"] / 1e6 for x in ss]
                else:
                    # one SYN per connection: CPU time per first packet
                    vals = [1e6 / x["sample"]["pps"] for x in ss if x["sample"]["pps"] > 0]
                st[sys_] = stats(vals)
                st[sys_]["valid"] = all(gen_valid(x) for x in ss) and (
                    sys_ != "sluice" or lb_valid(lbs, "s%d" % n))
                curves.setdefault((kind, sys_), []).append((n, st[sys_]))
            for b in ("ipt", "nft"):
                if "sluice" not in st or b not in st:
                    continue
                valid = st["sluice"]["valid"] and st[b]["valid"]
                if kind == "est":
                    rep.add("B3 %d services: established-flow rate" % n, "Mpps", HIGHER,
                            st["sluice"], st[b], SYS_NAMES[b], valid=valid)
                else:
                    rep.add("B3 %d services: new connection, us per first packet" % n, "us",
                            LOWER, st["sluice"], st[b], SYS_NAMES[b], valid=valid)
    return curves


def b4_rows(rep, samples):
    prog, chg = {}, {}
    for s in samples:
        if s["fig"] == "b4":
            prog.setdefault((s["scale"], s["sys"]), []).append(s["sample"])
        elif s["fig"] == "b4change":
            chg.setdefault((s["scale"], s["sys"]), []).append(s["sample"])
    scales = sorted({k[0] for k in prog})
    curves = {}
    base_names = {"ipt": "iptables-restore", "nft": "nft -f"}
    for n in scales:
        t, rss = {}, {}
        for sys_ in ("sluice", "ipt", "nft"):
            ss = prog.get((n, sys_), [])
            if not ss:
                continue
            if sys_ == "sluice":
                # the object load (agent start) is counted: a node that
                # starts empty pays it once, as the restore pays its start
                t[sys_] = stats([(x["open_ms"] + x["program_ms"]) / 1e3 for x in ss])
            else:
                t[sys_] = stats([x["wall_ms"] / 1e3 for x in ss])
                if any(x["rc"] != 0 for x in ss):
                    t[sys_]["valid"] = False
            rss[sys_] = stats([x["maxrss_kb"] / 1024 for x in ss])
            curves.setdefault(("program", sys_), []).append((n, t[sys_]))
        for b in ("ipt", "nft"):
            if "sluice" in t and b in t:
                rep.add("B4 program %d services x 10 from empty, s" % n, "s", LOWER, t["sluice"],
                        t[b], base_names[b], valid=t[b].get("valid", True))
        for b in ("ipt", "nft"):
            if "sluice" in rss and b in rss:
                rep.add("B4 peak RSS programming %d services, MB" % n, "MB", LOWER,
                        rss["sluice"], rss[b], base_names[b])
        c = {}
        for sys_ in ("sluice", "ipt", "nft"):
            ss = chg.get((n, sys_), [])
            if not ss:
                continue
            if sys_ == "sluice":
                vals = [x["change_us"] / 1e3 for x in ss]
            else:
                vals = [x["wall_ms"] for x in ss]
            c[sys_] = vals
        for b in ("ipt", "nft"):
            if "sluice" not in c or b not in c:
                continue
            for p in (50, 99):
                s_st = stats(c["sluice"])
                b_st = stats(c[b])
                s_st["median"], b_st["median"] = pct(c["sluice"], p), pct(c[b], p)
                rep.add("B4 one backend change at %d services, p%d ms" % (n, p), "ms", LOWER,
                        s_st, b_st, base_names[b] + " (partial sync)",
                        note="n=%d" % len(c["sluice"]), spread_applies=False)
    return curves


def pp_valid_redir(s):
    """A B5a/B5b sample took its path; returns (valid, redirected share of
    the window's bytes: the sender's count vs what the receiver read in
    the same window, so not exactly 1). Plain: nothing redirected. Ping-
    pong and the large-bound bulk experiment (redirq): >= 95% redirected,
    no fallback to TCP. Bulk as deployed (redir in B5b): the redirect's
    sk_msg program saw the connection's messages; how many it redirected
    before the connection fell back to TCP is the finding, not a
    condition."""
    x = s["sample"]
    if "error" in x:
        return False, 0.0
    red = x.get("redir")
    if red is None:
        return False, 0.0
    share = min(1.0, red["redirected_bytes"] / x["bytes"]) if x.get("bytes") else 0.0
    if s["variant"] == "plain":
        return red["redirected_msgs"] == 0, share
    if s["variant"] == "redir" and s["fig"] == "b5b":
        return red["redirected_msgs"] + red["passed_msgs"] > 0, share
    return share >= 0.95 and red["slow_peer"] == 0, share


def pp_valid_crr(s, nbe):
    """A B5c sample took its path: the connections reached all nbe
    backends (the server accepted on each address), and for the socket LB
    every connect() in the window was balanced by it."""
    x = s["sample"]
    if "error" in x or x.get("backends") != nbe:
        return False
    if s["variant"] == "sluice":
        return x.get("sock", {}).get("connect", 0) >= x["conns"]
    return True


def pp_valid_telem(s):
    """A B6 sample took its path: "on" lost no record and, for crr, wrote
    four per connection (open + close of both ends; the last connection's
    server end may close after the window); "off" tracked no socket."""
    x = s["sample"]
    if "error" in x or "telem" not in x:
        return False
    t = x["telem"]
    if s["variant"] == "off":
        return t["sockets_tracked"] == 0
    if t["records_lost"]:
        return False
    return s["kind"] != "crr" or t["records_written"] >= 4 * x["conns"] - 4


def b5_rows(rep, samples, b5meta):
    cpu = b5meta.get("cpu", "?")
    other = b5meta.get("other_cpu", "?")
    place_text = {
        "same": "same CPU (client and server on CPU %s)" % cpu,
        "cross": "cross CPU (client on CPU %s, server on CPU %s)" % (other, cpu),
    }
    by = {}
    for s in samples:
        if s["fig"] in ("b5a", "b5b", "b5c"):
            by.setdefault((s["fig"], s["place"], s["variant"]), []).append(s)
    for fig, place in (("b5a", "same"), ("b5a", "cross"), ("b5b", "same"), ("b5b", "cross")):
        st, shares = {}, {}
        for v in ("redir", "redirq", "plain"):
            ss = by.get((fig, place, v), [])
            good = [x for x in ss if "error" not in x["sample"]]
            if not good:
                continue
            ok = [pp_valid_redir(x) for x in ss]
            shares[v] = [sh for _, sh in ok]
            if fig == "b5a":
                st[v] = stats([x["sample"]["median_us"] for x in good])
            else:
                st[v] = stats([x["sample"]["gbps"] for x in good])
            st[v]["valid"] = len(good) == len(ss) and all(o for o, _ in ok)
        if "plain" not in st:
            continue
        for v in ("redir", "redirq"):
            if v not in st:
                continue
            sh = shares[v]
            note = ""
            if min(sh) < 0.995:
                note = "redirected share of the bytes %.0f-%.0f%%" % (100 * min(sh), 100 * max(sh))
            valid = st[v]["valid"] and st["plain"]["valid"]
            if fig == "b5a":
                rep.add("B5a ping-pong 64 B, redirected, %s, round trip, us" % place_text[place],
                        "us", LOWER, st[v], st["plain"], "loopback TCP", note=note, valid=valid)
            elif v == "redir":
                rep.add("B5b bulk, 128 KiB writes, redirection on as deployed (4 MiB queue "
                        "bound), %s, Gbit/s" % place_text[place], "Gbit/s", HIGHER, st[v],
                        st["plain"], "loopback TCP", note=note, valid=valid)
            else:
                rep.add("B5b bulk, 128 KiB writes, EXPERIMENT: redirect with a %d MiB queue "
                        "bound, %s, Gbit/s" % (b5meta.get("queue_big", 0) >> 20,
                                               place_text[place]),
                        "Gbit/s", HIGHER, st[v], st["plain"], "loopback TCP", note=note,
                        valid=valid)
    st = {}
    for v in ("sluice", "direct", "ipt"):
        ss = by.get(("b5c", "same", v), [])
        good = [x for x in ss if "error" not in x["sample"]]
        if not good:
            continue
        st[v] = stats([x["sample"]["rate"] / 1e3 for x in good])
        st[v]["valid"] = len(good) == len(ss) and all(
            pp_valid_crr(x, b5meta.get("backends", 10)) for x in ss)
    for b in ("ipt", "direct"):
        if "sluice" in st and b in st:
            rep.add("B5c connect + 64 B request/response + close to a VIP, socket LB, "
                    "%s, kconn/s" % place_text["same"], "kconn/s", HIGHER, st["sluice"],
                    st[b], B5C_NAMES[b], valid=st["sluice"]["valid"] and st[b]["valid"])


def b6_rows(rep, samples, b5meta):
    by = {}
    for s in samples:
        if s["fig"] == "b6":
            by.setdefault((s["kind"], s["variant"]), []).append(s)
    names = {
        "rr": ("B6 request/response rate, 64 B ping-pong on one connection, telemetry on "
               "vs off, CPU %s, k round trips/s", "ktrips/s"),
        "crr": ("B6 connect + request/response + close rate, telemetry on vs off, CPU %s, "
                "kconn/s", "kconn/s"),
    }
    for kind in ("rr", "crr"):
        st = {}
        for v in ("on", "off"):
            ss = by.get((kind, v), [])
            good = [x for x in ss if "error" not in x["sample"]]
            if not good:
                continue
            st[v] = stats([x["sample"]["rate"] / 1e3 for x in good])
            st[v]["valid"] = len(good) == len(ss) and all(pp_valid_telem(x) for x in ss)
        if "on" in st and "off" in st:
            fig, unit = names[kind]
            rep.add(fig % b5meta.get("cpu", "?"), unit, HIGHER, st["on"], st["off"],
                    "telemetry off", valid=st["on"]["valid"] and st["off"]["valid"])


def gp_str(text):
    """A gnuplot double-quoted string."""
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def plot(out, curves3, curves4, notes):
    gp = shutil.which("gnuplot")
    if not gp:
        notes.append("gnuplot missing: no plots (SLUICE_DEPS=bench scripts/install-deps.sh)")
        return []
    made = []
    specs = [
        ("b3_established.png", "B3: established-flow rate vs services", "Mpps",
         [(("est", s), SYS_NAMES[s]) for s in ("sluice", "ipt", "nft")], curves3, False),
        ("b3_first_packet.png", "B3: CPU time per new connection (first packet)", "us (log)",
         [(("new", s), SYS_NAMES[s]) for s in ("sluice", "ipt", "nft")], curves3, True),
        ("b4_program.png", "B4: program N services x 10 backends from empty", "seconds (log)",
         [(("program", s), n) for s, n in (("sluice", "Sluice (sluice__service_set_many)"),
                                           ("ipt", "iptables-restore"), ("nft", "nft -f"))],
         curves4, True),
    ]
    for fname, title, ylabel, series, curves, logy in specs:
        plots = []
        for key, label in series:
            pts = curves.get(key)
            if not pts:
                continue
            dat = os.path.join(out, "plot-%s-%s.dat" % (fname[:-4], key[1]))
            with open(dat, "w") as f:
                for n, st in sorted(pts):
                    f.write("%d %g %g %g\n" % (n, st["median"], st["min"], st["max"]))
            plots.append("'%s' using 1:2:3:4 with yerrorlines title %s" % (dat, gp_str(label)))
        if not plots:
            continue
        script = "\n".join([
            "set terminal pngcairo noenhanced size 800,560",
            "set output '%s'" % os.path.join(out, fname),
            "set title %s" % gp_str(title),
            "set xlabel 'services (x 10 backends)'",
            "set ylabel %s" % gp_str(ylabel),
            "set logscale x",
            "set offsets graph 0.05, graph 0.05, 0, 0",
            "set logscale y" if logy else "set yrange [0:*]",
            "set key below",
            "set grid",
            "plot " + ", ".join(plots),
        ])
        r = subprocess.run([gp], input=script, text=True, capture_output=True)
        if r.returncode:
            notes.append("gnuplot failed for %s: %s" % (fname, r.stderr.strip()))
        else:
            made.append(fname)
    return made


def nft_scale_notes(samples):
    """Where nft -f did not run (its load time grows too fast for the
    suite), an estimate from this run's own nft and Sluice scales."""
    nft, scales = {}, set()
    for s in samples:
        if s["fig"] == "b4":
            scales.add(s["scale"])
            if s["sys"] == "nft" and s["sample"].get("rc", 1) == 0:
                nft.setdefault(s["scale"], []).append(s["sample"]["wall_ms"] / 1e3)
    missing = sorted(scales - set(nft))
    if not missing:
        return []
    have = sorted(nft)
    text = ("- nftables at %s services: not measured. Loading kube-proxy's nftables ruleset "
            "(nft -f) grows much faster than linearly: the kernel checks every jump for loops "
            "by walking every verdict map of the table (nf_tables_check_loops), and each "
            "service adds an anonymous one" % ", ".join(str(n) for n in missing))
    if len(have) >= 2:
        (n1, n2) = have[-2], have[-1]
        t1, t2 = statistics.median(nft[n1]), statistics.median(nft[n2])
        if t1 > 0 and t2 > t1:
            k = math.log(t2 / t1) / math.log(n2 / n1)
            est = ", ".join("~%.0f s at %d" % (t2 * (n / n2) ** k, n) for n in missing)
            text += ("; this run: %.1f s at %d, %.1f s at %d services, i.e. time ~ n^%.1f, "
                     "so an estimated %s, past the suite's 15 minutes" % (t1, n1, t2, n2, k, est))
    return [text + "."]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--noisy", type=float, default=0.20)
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--check", metavar="PREFIX",
                    help="only say whether rows whose figure starts with PREFIX are flagged "
                         "(exit 3) or not (exit 0); writes nothing")
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    meta, b1, samples = load(a.raw)
    rep = Report(a.noisy)
    b1_rows(rep, b1)
    lbs = lb_stats(a.raw)
    b2_detail = b2_rows(rep, samples, lbs, meta.get("b3_flows", 0))
    b2mq_detail = b2mq_rows(rep, samples, lbs, meta.get("b3_flows", 0))
    curves3 = b3_rows(rep, samples, lbs)
    curves4 = b4_rows(rep, samples)
    b5meta = {}
    p = os.path.join(a.raw, "b5meta.json")
    if os.path.exists(p):
        b5meta = json.load(open(p))
    b5_rows(rep, samples, b5meta)
    b6_rows(rep, samples, b5meta)
    b7meta = {}
    p = os.path.join(a.raw, "b7meta.json")
    if os.path.exists(p):
        b7meta = json.load(open(p))
    b7_rows(rep, samples, stats, LOWER)
    if a.check:
        bad = [r for r in rep.rows if r["figure"].startswith(a.check) and r["flag"]]
        for r in bad:
            print("%s vs %s: %s" % (r["figure"], r["baseline_name"], r["flag"]))
        return 3 if bad else 0
    notes = []
    plots = plot(a.out, curves3, curves4, notes)
    load_end = ""
    p = os.path.join(a.raw, "loadavg_end")
    if os.path.exists(p):
        load_end = open(p).read().strip()

    results = [r for r in rep.rows if not r["flag"]]
    flagged = [r for r in rep.rows if r["flag"]]
    hdr = ("| figure | Sluice | baseline | ratio | spread: IQR (range), Sluice / baseline |\n"
           "|---|---:|---:|---:|---:|")
    md = []
    md.append("# Sluice benchmark%s" % (" (QUICK subset)" if meta.get("quick") else ""))
    md.append("")
    md.append("Machine: %s. Date: %s. Suite time: %d s." % (
        meta["machine"], time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), a.elapsed))
    md.append("Placement: every measured process pinned to CPU %d (taskset / sched_setaffinity); "
              "B2/B3 generator, node and backend softirqs all run on that CPU. "
              "Load average at start %s, at end %s (other work shares this machine)." % (
                  meta["cpu"], meta.get("loadavg_start", "?"), load_end or "?"))
    if b5meta:
        md[-1] += (" B5/B6: both ends of every connection in one pingpong process, its client "
                   "and server threads pinned (sched_setaffinity) to CPU %s, except the B5 "
                   "\"cross CPU\" rows: client on CPU %s, server on CPU %s; B6's telemetry "
                   "reader (telemtool) on CPU %s too." % (b5meta["cpu"], b5meta["other_cpu"],
                                                         b5meta["cpu"], b5meta["cpu"]))
    md.append("%d interleaved rounds per figure (order rotated every round; a set flagged as "
              "noisy is rerun once with %d more rounds while time allows, see n in JSON); "
              "medians. %s; %s." % (meta["rounds"], meta["rounds"], meta.get("iptables", ""),
                                    meta.get("nft", "")))
    md.append("")
    md.append(hdr)
    md.extend(md_row(r) for r in results)
    md.append("")
    md.append("ratio: how many times better Sluice is (rates: Sluice / baseline; times, costs "
              "and memory: baseline / Sluice); below 1 the baseline is better. B1's baselines "
              "are floors (what any program pays), not competitors. spread: interquartile range / "
              "median of each side's samples, (max - min) / median in parentheses; a set whose "
              "IQR spread exceeds %.0f%% is flagged below instead of reported; n=1: a single "
              "run (see notes). For the backend-change rows the spread column gives min-max "
              "of each side in ms." % (100 * a.noisy))
    if flagged:
        md.append("")
        md.append("## Flagged: too noisy or invalid, not results")
        md.append("")
        md.append("| figure | Sluice | baseline | ratio | spread | reason |")
        md.append("|---|---:|---:|---:|---:|---|")
        md.extend(md_row(r) + " %s |" % r["flag"] for r in flagged)
    if b2_detail:
        md.append("")
        md.append("## B2 detail: every variant of the veth path")
        md.append("")
        md.append("| variant | Mpps (median) | ns per packet, whole path | spread: IQR (range) | n |")
        md.append("|---|---:|---:|---:|---:|")
        for v in ("redirect", "xdp", "xdppick", "xdpfib", "fwd", "tc", "tcoff", "nft", "ipt"):
            st = dict(b2_detail).get(v)
            if st:
                md.append("| %s | %.3f | %.0f | %.0f%% (%.0f%%) | %d |" % (
                    B2_NAMES[v], st["median"], st["ns_per_pkt"], 100 * st["spread"],
                    100 * st["range"], st["n"]))
        md.append("")
        md.append("One TCP service, 10 backends, %d established flows, GRO on and xdp_count on "
                  "the backend veth in every variant; ns per packet covers generator + node + "
                  "counter on one CPU, so differences between rows are what the node costs. "
                  "Every flow opens with a three-way handshake through the path (the backend's "
                  "xdp_count answers each SYN), so Sluice holds it confirmed, as a live "
                  "connection; the picked-up row sends the same flows' ACKs only." %
                  meta.get("b3_flows", 0))
    if b2mq_detail:
        md.append("")
        md.append("## B2 per-CPU scaling: 2 RX queues per veth")
        md.append("")
        md.append("| variant | CPUs | Mpps (median, sum of the generators) | spread: IQR (range) "
                  "| n |")
        md.append("|---|---:|---:|---:|---:|")
        for v, n, st in b2mq_detail:
            md.append("| %s | %d | %.3f | %.0f%% (%.0f%%) | %d |" % (
                B2_NAMES[v], n, st["median"], 100 * st["spread"], 100 * st["range"], st["n"]))
        md.append("")
        md.append("Every veth of the path has 2 TX and 2 RX queues; a generator on CPU c reaches "
                  "queue c %% 2 and the node's and backend's NAPI run on c, so each generator's "
                  "flows (client addresses of their own) are handled on its CPU end to end. "
                  "2 CPUs: generators on CPU %d and %d at once, each counting what arrived on "
                  "its CPU; the rate is the sum of their rates. Other work on those CPUs "
                  "lowers the 2-CPU figure (load average above)." % (
                      meta["cpu"], meta["cpu"] - 1))
    md.extend(b7_detail(samples, b7meta))
    md.append("")
    md.append("## Method and limits")
    md.append("")
    md.extend([
        "- B2/B3 traffic: xdpgen (BPF_PROG_TEST_RUN, live frames, headers rewritten from a "
        "template every run) XDP_TXes 54-byte TCP frames into the node's veth; xdp_count on the "
        "backend's veth counts frames whose destination is a backend (so not DNATed = not "
        "counted) and drops them. Rate = counted / the kernel's time for the run.",
        "- B3 new connections: every packet is a SYN of a new 5-tuple spread over all N "
        "services; conntrack (netfilter's, and Sluice's map) is flushed before every sample. "
        "us per first packet = 1e6 / rate: one CPU's time for the whole path per connection.",
        "- B3 established: %d flows spread over the services, opened before the clock starts: "
        "Sluice's each with a three-way handshake through the path (the backend's xdp_count "
        "answers the SYN), so they are confirmed; iptables' and nftables' picked up by their "
        "first ACK (netfilter's loose pick-up confirms on the first packet)." %
        meta.get("b3_flows", 0),
        "- Validity: a row is invalid (flagged) when a frame reached the backend without DNAT, "
        "more than 1% of the generated frames were lost, or the Sluice XDP node's counters show "
        "a drop or packets handed to the kernel instead of FIB-redirected, or fewer flows "
        "confirmed than its established samples opened (lbtool stats, raw/).",
        "- B4 Sluice: one sluice__service_set_many() call for all services in one process "
        "(svcload; what meshd does for an apply), object load included: the maps are read "
        "once, each Maglev table is built (~0.25 ms of CPU for 10 backends) and written with "
        "one memcpy into a new mmapable inner map, and the tables are swapped in groups of 256 "
        "(the kernel waits for one RCU grace period per map-in-map update batch). "
        "Baselines: iptables-restore "
        "/ nft -f of the equivalent kube-proxy ruleset (kprules), process start included. "
        "Backend change: Sluice = one service_set on the running maps; iptables = kube-proxy's "
        "partial sync (iptables-restore --noflush rewriting KUBE-SERVICES whole, the service "
        "chain, new/old endpoint chains); nftables = one nft -f transaction on the service's "
        "chains.",
        "- n=1 rows: one from-empty run of that system at that scale (the backend-change "
        "rows still have one sample per change): nft -f at 10k takes minutes (below), and "
        "30k gets one run of each system to fit the suite's 15 minutes.",
        "- Peak RSS is the programming process's only. Kernel memory is not in it on either "
        "side: Sluice's Maglev tables take 8 KiB per service of up to 10 backends (1021 "
        "slots; sized by need, #16), 234 MiB at 30k services.",
        "- One backend change in Sluice is one sluice__service_set() call in a new process: "
        "it reads the whole backends map once (~85 ms at 300k backends) to find the "
        "service's backends and the free ids, which is what grows with the scale.",
    ] + nft_scale_notes(samples))
    if b5meta:
        md.extend([
            "- B5/B6 (pingpong, one sample = one process: a server thread and the client, %d ms "
            "warm-up then %d ms measured): in a network namespace of their own, both ends in a "
            "child cgroup of the cgroup2 mount (the root is never attached to): plain (no "
            "program), lb (socket LB), redir (sockops + sk_msg redirect, default 4 MiB queue "
            "bound) or telem (telemetry). The counters pinned next to the programs are read "
            "around every window: a redirected sample that was not (>= 95%% of its bytes), a "
            "socket-LB sample whose connects it did not balance, a telemetry sample that lost "
            "records, is invalid." % (b5meta.get("warmup_ms", 0), b5meta.get("ms", 0)),
            "- B5a: round trip of 64 B each way on one TCP_NODELAY connection over 127.0.0.1, "
            "median of the sample's round trips (sockperf and FIELD-NOTES quote half of it); "
            "the median over samples. B5b: the client writes 128 KiB chunks, the rate is what "
            "the server read in the window. Redirected data has no TCP flow control, so a "
            "redirected connection whose reader lags more than the queue bound behind goes "
            "back to TCP for good (redir.bpf.c): as deployed (4 MiB) a bulk writer outruns its "
            "reader within the warm-up and the row measures that fallback (the note gives the "
            "share of bytes redirected); the EXPERIMENT rows raise the bound to %d MiB to time "
            "the redirect path itself, valid only where >= 95%% of the window's bytes were "
            "redirected." % (b5meta.get("queue_big", 0) >> 20),
            "- B5c: one connection at a time from 10.64.0.1: connect, 64 B request, 64 B "
            "response, close (client first), to service 10.96.0.1:80 of %d local backends "
            "(10.128.0.1-%d:8080, all served by the one listener on 0.0.0.0:8080). Socket LB: "
            "Sluice's connect4 hook on the client's cgroup picks the backend, no route to the "
            "VIP and no netfilter in that namespace. iptables: kprules' kube-proxy ruleset for "
            "the same service in a second namespace (conntrack flushed before each sample). "
            "Floor: straight to the backend addresses in turn, no LB." % (
                b5meta.get("backends", 0), b5meta.get("backends", 0)),
            "- B6: both ends in the same namespace and cgroup, connecting straight to a backend "
            "address of the service (tracked both ways: the client's outbound, the server's "
            "inbound end); on = telemetry attached to that cgroup with its ring buffer read by "
            "telemtool, off = a sibling cgroup without it. ratio = on / off: 0.95x means "
            "telemetry costs 5% of the rate.",
        ])
    md.extend(b7_notes(b7meta))
    md.extend("- " + n for n in notes)
    if plots:
        md.append("")
        md.append("Plots: " + ", ".join(plots) + " (in %s)." % a.out)
    if b1:
        md.append("")
        md.append("## B1 detail (pktbench)")
        md.append("")
        p = os.path.join(a.raw, "b1.md")
        if os.path.exists(p):
            md.append(open(p).read().rstrip())
    text = "\n".join(md) + "\n"

    def clean(r):
        r = dict(r)
        for k in ("sluice", "baseline"):
            r[k] = dict(r[k])
        return r

    out = {
        "meta": meta,
        "loadavg_end": load_end,
        "noisy_threshold": a.noisy,
        "results": [clean(r) for r in results],
        "flagged": [clean(r) for r in flagged],
        "b2_detail": [{"variant": v, **st} for v, st in b2_detail],
        "b2mq_detail": [{"variant": v, "cpus": n, **st} for v, n, st in b2mq_detail],
        "plots": plots,
        "notes": notes,
        "b1": b1,
        "lb_stats": lbs,
        "b5meta": b5meta,
        "b7meta": b7meta,
        "samples": samples,
    }
    tmp = os.path.join(a.out, "results.md.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(a.out, "results.md"))
    tmp = os.path.join(a.out, "results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(tmp, os.path.join(a.out, "results.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
