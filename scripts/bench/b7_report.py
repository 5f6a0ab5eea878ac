# SPDX-License-Identifier: MIT
"""b7_report.py - B7 (failover) rows and detail of scripts/bench/report.py.

Contract: b7_rows(rep, samples, stats, lower) adds one comparison row per
Sluice variant (failed connections after the backend died, Sluice vs
kube-proxy iptables, lower is better) to the Report; b7_detail(samples,
meta) returns the markdown lines of the B7 detail table (per variant:
failed connections, time from the first and from the third failed
connection to the kernel's ejection, targets met) and b7_notes(meta) the
method notes. meta is RAW/b7meta.json. A sample with an "error" text is
left out of its row, which is then marked invalid.
"""
import statistics

NAMES = {
    "xdp": "Sluice XDP (packet path)",
    "sock": "Sluice socket LB",
    "ipt": "kube-proxy iptables DNAT",
}
# Issue #14's targets.
MAX_FAILED = 3
MAX_EJECT_AFTER_THIRD_MS = 100.0


def _by_variant(samples):
    by = {}
    for s in samples:
        if s.get("fig") == "b7":
            by.setdefault(s["variant"], []).append(s["sample"])
    return by


def _good(ss):
    """Samples that ran ("error" as text marks one that did not; connrate's
    own "error" is a count of connections)."""
    return [s for s in ss if not isinstance(s.get("error"), str)]


def _ms(a, b):
    """b - a in ms, or None when either is missing."""
    if not a or not b:
        return None
    return (b - a) / 1e6


def _delays(ss):
    first = [_ms(s["first_fail_ns"], s["eject_ns"]) for s in ss]
    third = [_ms(s["third_fail_ns"], s["eject_ns"]) for s in ss]
    return [x for x in first if x is not None], [x for x in third if x is not None]


def b7_rows(rep, samples, stats, lower):
    by = _by_variant(samples)
    base = _good(by.get("ipt", []))
    if not base:
        return
    bst = stats([s["connect_failed"] for s in base])
    for v in ("xdp", "sock"):
        ss = by.get(v, [])
        good = _good(ss)
        if not good:
            continue
        ejected = sum(1 for s in good if s.get("eject_ns"))
        note = "ejected in %d/%d samples" % (ejected, len(good))
        rep.add("B7 failed connection attempts after a backend dies, %s (%d conn/s, %d ms after "
                "the kill)" % (NAMES[v], good[0]["rate"], good[0]["post_ms"]), "conns", lower,
                stats([s["connect_failed"] for s in good]), bst, NAMES["ipt"], note=note,
                valid=len(good) == len(ss), spread_applies=False)


def _fmt(vals, unit=""):
    if not vals:
        return "-"
    return "%.1f%s (%.1f-%.1f)" % (statistics.median(vals), unit, min(vals), max(vals))


def b7_detail(samples, meta):
    by = _by_variant(samples)
    if not by:
        return []
    md = ["", "## B7 detail: failover, one of three backends killed under load", "",
          "| variant | failed connection attempts, median (min-max) | refused / timed out "
          "(all samples) | connected ones cut by the kill (all samples) | first failure -> "
          "ejection, ms | third failure -> ejection, ms | "
          "samples with <= %d failed | samples ejected <= %.0f ms after the third failure | n |"
          % (MAX_FAILED, MAX_EJECT_AFTER_THIRD_MS),
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in ("xdp", "sock", "ipt"):
        good = _good(by.get(v, []))
        if not good:
            continue
        failed = [s["connect_failed"] for s in good]
        first, third = _delays(good)
        kinds = "%d / %d | %d" % (sum(s["refused"] for s in good),
                                  sum(s["timeout"] for s in good),
                                  sum(s["failed"] - s["connect_failed"] for s in good))
        in_time = sum(1 for x in third if x <= MAX_EJECT_AFTER_THIRD_MS)
        md.append("| %s | %s | %s | %s | %s | %d/%d | %s | %d |" % (
            NAMES[v], _fmt(failed), kinds,
            _fmt(first) if v != "ipt" else "never (no ejection)",
            _fmt(third) if v != "ipt" else "-",
            sum(1 for f in failed if f <= MAX_FAILED), len(good),
            "%d/%d" % (in_time, len(good)) if v != "ipt" else "-", len(good)))
    md.append("")
    md.append("A failure's time is when its connect() started; the kill also cuts the "
              "connections open to that server at that instant, which no LB can save: they are "
              "counted apart. "
              "Targets (issue #14): at most %d failed connections per node, ejection within "
              "%.0f ms of the third failure. iptables' failures grow with the window: about "
              "a third of every connection (the dead endpoint's share) until kube-proxy "
              "removes the endpoint, which takes a readiness probe failing (Kubernetes "
              "defaults: 3 x 10 s) plus the EndpointSlice round trip; the window here is %d ms."
              % (MAX_FAILED, MAX_EJECT_AFTER_THIRD_MS, meta.get("post_ms", 0)))
    return md


def b7_notes(meta):
    if not meta:
        return []
    return [
        "- B7 (connrate, tests/tools): client, node and backends in three namespaces of "
        "their own (scripts/bench/b7_failover.sh); the client opens %d connections/s "
        "(connect, one line each way, close, 1 s timeout), the server of one of the three "
        "backends is killed %d ms in, the load goes on for %d ms. Sluice: outlier detection "
        "with its defaults (3 consecutive failures, %d s ejection), a fresh service per sample, "
        "XDP on the node (packet path: the backend's RST to an unconfirmed flow counts) or "
        "the socket LB on the client's cgroup (sockops: connect() refused counts). The "
        "ejection time is the kernel's (backend_health.ejected_until_ns minus the ejection "
        "length, CLOCK_MONOTONIC like the client's records); a failure's time is when its "
        "connect() started. iptables: kube-proxy's statistic-random chains on the same node to "
        "three servers of the same kind in the same backend namespace; every variant has "
        "backend addresses of its own, or a client port reused across variants would clash "
        "with the node's netfilter conntrack (live for the iptables variant) and time out; "
        "conntrack flushed before each iptables sample." % (
            meta.get("rate", 0), meta.get("pre_ms", 0), meta.get("post_ms", 0),
            meta.get("base_ms", 0) // 1000),
    ]
