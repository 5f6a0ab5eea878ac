#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""push.py - server-push TCP connections for the conntrack flood test.

  push.py serve --port P --trigger FILE [--ready FILE]
      accepts connections and keeps them silent until FILE exists, then
      sends one line "push\\n" on every connection it holds (and on every
      later one at once).
  push.py client ADDR PORT -n N --ready FILE --wait SECONDS
      opens N connections, touches --ready, then waits up to SECONDS for
      the line on each. Prints "received K of N" and one line per failure
      (reset, closed, timeout); exit status 0 only when K == N.

The client speaks never: a connection whose conntrack entries were lost
only notices when the server speaks first, as the push arrives from the
backend's own address and the client's kernel answers it with a RST.
"""
import argparse
import os
import select
import socket
import sys
import threading
import time


def serve(args):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", args.port))
    lsock.listen(128)
    held = []
    lock = threading.Lock()

    def pusher():
        while not os.path.exists(args.trigger):
            time.sleep(0.05)
        while True:
            with lock:
                conns = list(held)
                held.clear()
            for c in conns:
                try:
                    c.sendall(b"push\n")
                except OSError:
                    pass
            time.sleep(0.05)

    threading.Thread(target=pusher, daemon=True).start()
    if args.ready:
        open(args.ready, "w").close()
    keep = []
    while True:
        c, _ = lsock.accept()
        keep.append(c)  # held open until the client closes or we exit
        with lock:
            held.append(c)


def client(args):
    socks = []
    for _ in range(args.n):
        s = socket.create_connection((args.addr, args.port), timeout=5)
        s.setblocking(False)
        socks.append(s)
    open(args.ready, "w").close()
    print("connected %d" % len(socks), flush=True)
    pending = {s.fileno(): s for s in socks}
    got, fails = 0, []
    deadline = time.monotonic() + args.wait
    while pending and time.monotonic() < deadline:
        r, _, _ = select.select(list(pending.values()), [], [], 0.2)
        for s in r:
            try:
                data = s.recv(64)
            except ConnectionResetError:
                fails.append("reset")
            except OSError as e:
                fails.append("error %s" % e)
            else:
                if data.startswith(b"push"):
                    got += 1
                else:
                    fails.append("closed" if not data else "unexpected %r" % data)
            del pending[s.fileno()]
    fails += ["timeout"] * len(pending)
    print("received %d of %d" % (got, args.n), flush=True)
    for f in sorted(set(fails)):
        print("  %d x %s" % (fails.count(f), f), flush=True)
    return 0 if got == args.n else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--trigger", required=True)
    s.add_argument("--ready")
    c = sub.add_parser("client")
    c.add_argument("addr")
    c.add_argument("port", type=int)
    c.add_argument("-n", type=int, default=10)
    c.add_argument("--ready", required=True)
    c.add_argument("--wait", type=float, default=60)
    args = p.parse_args()
    return serve(args) if args.cmd == "serve" else client(args)


if __name__ == "__main__":
    sys.exit(main())
