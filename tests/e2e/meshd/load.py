#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""load.py - steady TCP load through a VIP while meshd is restarted.

Contract (python3 stdlib + tests/e2e/echo.py's client helpers):

  load.py VIP PORT --conns K --churn W --status FILE --stop FILE [--gap G]
          [--max-secs S]

Opens K long-lived connections (each learns its backend with "whoami"),
writes "ready" plus their local ports to FILE.ports, then every connection
streams in its own thread: random chunk out, the same bytes back, compared,
again, with G seconds in between. W further threads loop opening a new connection,
echoing one chunk, closing it. Every ~0.1 s FILE gets one line
"rounds=N churn_ok=N errors=N" (replaced atomically) so the caller can see
traffic moving while the agent is down. Any reset, timeout (5 s per socket
operation), short or corrupted echo, or failed new connection is an error.
When the stop FILE appears (or after S seconds) each long-lived connection
does one final echo; the summary line goes to stdout and the exit status is
0 only if there was no error at all and every connection made progress.
"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import echo  # noqa: E402  (tests/e2e/echo.py: tcp_open, tcp_echo, describe)

CHUNK = 2048


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.rounds = 0
        self.churn_ok = 0
        self.errors = []

    def add(self, what, n=1):
        with self.lock:
            setattr(self, what, getattr(self, what) + n)

    def error(self, text):
        with self.lock:
            self.errors.append(text)


def stream(sock, name, idx, stats, stop, per_conn, gap):
    while not stop.wait(gap):
        try:
            echo.tcp_echo(sock, CHUNK)
        except (echo.Check, OSError) as e:
            stats.error("long-lived conn %d (%s): %s" % (idx, name, echo.describe(e)))
            return
        per_conn[idx] += 1
        stats.add("rounds")


def churn(vip, port, stats, stop):
    while not stop.is_set():
        try:
            s, _ = echo.tcp_open(vip, port)
            with s:
                echo.tcp_echo(s, 512)
            stats.add("churn_ok")
        except (echo.Check, OSError) as e:
            stats.error("new connection: %s" % echo.describe(e))
            time.sleep(0.05)  # a broken path must not spin


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("vip")
    p.add_argument("port", type=int)
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--churn", type=int, default=2)
    p.add_argument("--gap", type=float, default=0.005,
                   help="pause between two echo rounds of a connection (CPU for the rest)")
    p.add_argument("--status", required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--max-secs", type=float, default=120)
    a = p.parse_args()

    conns = []
    try:
        for _ in range(a.conns):
            conns.append(echo.tcp_open(a.vip, a.port))
    except (echo.Check, OSError) as e:
        print("load: opening long-lived connection %d failed: %s" %
              (len(conns) + 1, echo.describe(e)), flush=True)
        return 1
    spread = {}
    for _, name in conns:
        spread[name] = spread.get(name, 0) + 1
    write_atomic(a.status + ".ports", "".join("%d\n" % s.getsockname()[1] for s, _ in conns))

    stats, stop = Stats(), threading.Event()
    per_conn = [0] * len(conns)
    threads = [threading.Thread(target=stream, args=(s, n, i, stats, stop, per_conn, a.gap), daemon=True)
           for i, (s, n) in enumerate(conns)]
    threads += [threading.Thread(target=churn, args=(a.vip, a.port, stats, stop), daemon=True)
            for _ in range(a.churn)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while not os.path.exists(a.stop) and time.monotonic() - t0 < a.max_secs:
        with stats.lock:
            line = "rounds=%d churn_ok=%d errors=%d\n" % (stats.rounds, stats.churn_ok,
                                      len(stats.errors))
        write_atomic(a.status, line)
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(10)
    # One last round trip on every connection: alive at the end, not just
    # alive at the moment its thread happened to stop.
    for i, (s, name) in enumerate(conns):
        try:
            echo.tcp_echo(s, CHUNK)
        except (echo.Check, OSError) as e:
            stats.error("long-lived conn %d (%s) at the end: %s" % (i, name, echo.describe(e)))
        s.close()
    idle = [i for i, n in enumerate(per_conn) if n == 0]
    for i in idle:
        stats.error("long-lived conn %d never completed a round" % i)
    print("load %s:%d: %d long-lived conns (%s), %d echo rounds (min %d per conn), "
          "%d new conns ok, %d errors in %.1fs" %
          (a.vip, a.port, len(conns), " ".join("%s=%d" % kv for kv in sorted(spread.items())),
           stats.rounds, min(per_conn) if per_conn else 0, stats.churn_ok, len(stats.errors),
           time.monotonic() - t0), flush=True)
    for e in sorted(set(stats.errors)):
        print("  error: %s (x%d)" % (e, stats.errors.count(e)), flush=True)
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
