#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""load.py - steady TCP traffic to a service until told to stop, every
connection logged, for e2e scenarios that change things under traffic
(tests/e2e/test_cluster.sh).

Contract (python3 stdlib only; the protocol and checks of echo.py tcp):

  load.py VIP PORT --stop FILE --log FILE [--ready FILE] [--pause S]
                   [--max-seconds S] [--bytes B]
      One connection after the other (pause S between them, default 0.01):
      connect, getpeername() must be VIP:PORT, whoami, B bytes echoed
      intact, close. Each connection appends one line to the log:
          START_EPOCH OK BACKEND
          START_EPOCH FAIL REASON (in PHASE, from local port N)
      START_EPOCH is time.time() when the connect began, so a caller can
      ask which backends answered connections started after a moment.
      The ready FILE is created after the first connection (ok or not).
      Stops when the stop FILE exists (finishing the connection under
      way) or after --max-seconds (default 120: never left running),
      prints "load VIP:PORT: N ok, M failed; backends: a=.. b=.." and
      exits 0 when no connection failed and at least one was made, else 1.
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo  # noqa: E402


def one(vip, port, nbytes):
    """One connection; on failure the exception carries the phase and our port."""
    s = socket.socket(echo.family_of(vip), socket.SOCK_STREAM)
    s.settimeout(echo.TIMEOUT)
    phase, lport = "connect", 0
    try:
        with s:
            s.connect((vip, port))
            lport = s.getsockname()[1]
            phase = "getpeername"
            peer = s.getpeername()
            if not echo.same_addr(peer, vip, port):
                raise echo.Check("peer is %s:%d, not the VIP" % (peer[0], peer[1]))
            phase = "whoami"
            s.sendall(echo.WHOAMI + b"\n")
            name = echo.recv_line(s).rstrip(b"\n").decode(errors="replace")
            if not name:
                raise echo.Check("no answer to whoami")
            phase = "echo from " + name
            echo.tcp_echo(s, nbytes)
            return name
    except (echo.Check, OSError) as e:
        raise echo.Check("%s (in %s, from local port %d)" % (echo.describe(e), phase, lport))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("vip")
    ap.add_argument("port", type=int)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready")
    ap.add_argument("--pause", type=float, default=0.01)
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--bytes", type=int, default=64)
    a = ap.parse_args()
    counts, errors = {}, []
    end = time.monotonic() + a.max_seconds
    with open(a.log, "a", buffering=1) as out:
        while not os.path.exists(a.stop) and time.monotonic() < end:
            t0 = time.time()
            try:
                name = one(a.vip, a.port, a.bytes)
                counts[name] = counts.get(name, 0) + 1
                out.write("%.6f OK %s\n" % (t0, name))
            except (echo.Check, OSError) as e:
                errors.append(echo.describe(e))
                out.write("%.6f FAIL %s\n" % (t0, echo.describe(e).replace("\n", " ")))
            if a.ready and not os.path.exists(a.ready):
                open(a.ready, "w").close()
            time.sleep(a.pause)
    ok = sum(counts.values())
    print("load %s:%d: %d ok, %d failed; backends: %s" %
          (a.vip, a.port, ok, len(errors),
           " ".join("%s=%d" % (k, counts[k]) for k in sorted(counts)) or "-"), flush=True)
    for e in sorted(set(errors)):
        print("  error: %s (x%d)" % (e, errors.count(e)), flush=True)
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
