#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""echo.py - echo servers and checking clients for the e2e tests and the demo.

Contract (python3 stdlib only, bounded timeouts everywhere):

Protocol. TCP: the client's first line is "whoami\\n"; the server answers
"<name>\\n" and then echoes every byte until EOF. UDP: a datagram
"whoami <token>" is answered "<name> <token>"; any other datagram is echoed.

  echo.py serve --name NAME --port P [--ready FILE] [--addr A]
      TCP and UDP servers on 0.0.0.0:P and [::]:P (threads); --addr: on
      IPv4 address A:P only (several servers in one namespace). FILE is
      created once every socket is bound.
  echo.py tcp VIP PORT [-n N] [--bytes B] [--min-share F --expect A,B,C]
                       [--avoid A,B] [--refused] [--show] [--table]
      N connections; each checks getpeername() == VIP:PORT, learns the
      backend and checks that B random bytes come back intact. --show
      prints each connection (sequentially), --table the share per backend.
      --refused: every connect must fail with ECONNREFUSED within 1 s.
  echo.py bulk VIP PORT [--mib M]
      one connection carrying M MiB both ways, compared by SHA-256.
  echo.py udp VIP PORT [-n N] [...same checks as tcp] [--refused] [--no-check]
      N sockets (so N flows); recvfrom() must report VIP:PORT.
      --no-check: IPv4 datagrams carry UDP checksum 0.
      --refused: a connected socket must get ECONNREFUSED (ICMP error).
  echo.py peer VIP PORT
      one connection asking "peer\\n": prints NAME ADDR:PORT, the backend
      and the client address it saw (source NAT shows here).
  echo.py hold VIP PORT -n K --ready FILE --go FILE [--removed NAME]
      open K connections, write their backends to FILE (ready), wait for
      the go FILE, then check every connection still echoes. Connections
      to --removed NAME are reported but may fail.

Clients print one summary line and exit 0 when every check passed, 1 when
one failed, 2 on usage errors.
"""
import argparse
import concurrent.futures
import errno
import hashlib
import ipaddress
import os
import socket
import sys
import threading
import time

TIMEOUT = 5.0  # any single socket operation
WHOAMI = b"whoami"
PEER = b"peer"


def log(msg):
    print(msg, flush=True)


def hostport(addr, port):
    """ADDR:PORT, with an IPv6 address in brackets ([fd00::10]:80)."""
    return "[%s]:%d" % (addr, port) if ":" in addr else "%s:%d" % (addr, port)


def family_of(addr):
    return socket.AF_INET6 if ipaddress.ip_address(addr).version == 6 else socket.AF_INET


def same_addr(sockaddr, host, port):
    return (ipaddress.ip_address(sockaddr[0]) == ipaddress.ip_address(host)
            and sockaddr[1] == port)


# ---------------------------------------------------------------- servers

def recv_line(conn, limit=256):
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        chunk = conn.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


def serve_tcp_conn(conn, name):
    with conn:
        conn.settimeout(120)
        try:
            first = recv_line(conn)
            if first.rstrip(b"\n") == WHOAMI:
                conn.sendall(name.encode() + b"\n")
            elif first.rstrip(b"\n") == PEER:
                who = conn.getpeername()
                conn.sendall(("%s %s\n" % (name, hostport(who[0], who[1]))).encode())
            elif first:
                conn.sendall(first)
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
        except OSError:
            pass


def serve_tcp(sock, name):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn, name), daemon=True).start()


def serve_udp(sock, name):
    while True:
        data, peer = sock.recvfrom(65535)
        if data.startswith(WHOAMI + b" "):
            data = name.encode() + data[len(WHOAMI):]
        try:
            sock.sendto(data, peer)
        except OSError:
            pass


def bind(fam, kind, port, addr=None):
    s = socket.socket(fam, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::", port))
    else:
        s.bind((addr or "0.0.0.0", port))
    if kind == socket.SOCK_STREAM:
        s.listen(512)
    return s


def cmd_serve(args):
    threads = []
    for fam in (socket.AF_INET,) if args.addr else (socket.AF_INET, socket.AF_INET6):
        threads.append(threading.Thread(target=serve_tcp,
                                        args=(bind(fam, socket.SOCK_STREAM, args.port, args.addr),
                                              args.name),
                                        daemon=True))
        threads.append(threading.Thread(target=serve_udp,
                                        args=(bind(fam, socket.SOCK_DGRAM, args.port, args.addr),
                                              args.name),
                                        daemon=True))
    for t in threads:
        t.start()
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("%d\n" % os.getpid())
    log("%s: serving tcp+udp on port %d" % (args.name, args.port))
    # The starting script kills us; should it die without doing so
    # (SIGKILL), we are reparented and exit instead of lingering.
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    log("%s: parent %d gone, exiting" % (args.name, parent))
    return 0


# ---------------------------------------------------------------- clients

class Check(Exception):
    pass


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise Check("EOF after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def tcp_open(vip, port):
    """Connect, check the peer is the VIP, return (sock, backend name)."""
    s = socket.socket(family_of(vip), socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    try:
        s.connect((vip, port))
        peer = s.getpeername()
        if not same_addr(peer, vip, port):
            raise Check("peer is %s, not the VIP" % hostport(peer[0], peer[1]))
        s.sendall(WHOAMI + b"\n")
        name = recv_line(s).rstrip(b"\n").decode(errors="replace")
        if not name:
            raise Check("no answer to whoami")
        return s, name
    except BaseException:
        s.close()
        raise


def tcp_echo(s, nbytes):
    data = os.urandom(nbytes)
    s.sendall(data)
    got = recv_exact(s, nbytes)
    if got != data:
        raise Check("echoed bytes differ")


def tcp_one(vip, port, nbytes, show=False):
    s, name = tcp_open(vip, port)
    with s:
        tcp_echo(s, nbytes)
        if show:
            me, peer = s.getsockname(), s.getpeername()
            log("  %-21s -> %-19s answered by %s" %
                (hostport(me[0], me[1]), hostport(peer[0], peer[1]), name))
    return name


SO_NO_CHECK = 11  # asm-generic/socket.h; not exported by the socket module


def udp_one(vip, port, nbytes, no_check=False, retries=2):
    """One flow (fresh socket = fresh source port): whoami then echo."""
    with socket.socket(family_of(vip), socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        if no_check:
            # IPv4 UDP with checksum 0 ("none"): NAT must leave it 0.
            s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)

        def ask(payload):
            # UDP may lose a datagram (first packet while a neighbour is
            # resolved); retry a bounded number of times.
            for _ in range(retries + 1):
                s.sendto(payload, (vip, port))
                try:
                    data, peer = s.recvfrom(65535)
                except socket.timeout:
                    continue
                if not same_addr(peer, vip, port):
                    raise Check("reply from %s, not the VIP" % hostport(peer[0], peer[1]))
                return data
            raise Check("no reply after %d tries" % (retries + 1))

        token = os.urandom(8).hex().encode()
        reply = ask(WHOAMI + b" " + token)
        name, _, got = reply.partition(b" ")
        if got != token:
            raise Check("whoami reply %r does not carry the token" % reply)
        data = os.urandom(nbytes)
        if ask(data) != data:
            raise Check("echoed datagram differs")
        return name.decode(errors="replace")


def describe(exc):
    if isinstance(exc, OSError) and exc.errno:
        return "%s (%s)" % (errno.errorcode.get(exc.errno, exc.errno), exc.strerror)
    return str(exc) or exc.__class__.__name__


def run_many(fn, n, workers):
    counts, errors = {}, []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futs = [pool.submit(fn) for _ in range(n)]
        for f in concurrent.futures.as_completed(futs):
            try:
                name = f.result()
                counts[name] = counts.get(name, 0) + 1
            except (Check, OSError) as e:
                errors.append(describe(e))
    return counts, errors


def table(counts):
    total = max(sum(counts.values()), 1)
    log("  %-8s %6s %7s" % ("BACKEND", "CONNS", "SHARE"))
    for name in sorted(counts):
        share = counts[name] / total
        log("  %-8s %6d %6.1f%%  %s" % (name, counts[name], 100 * share,
                                         "#" * round(40 * share)))


def judge(kind, args, counts, errors, elapsed):
    ok = sum(counts.values())
    if getattr(args, "table", False):
        table(counts)
    spread = " ".join("%s=%d" % (k, counts[k]) for k in sorted(counts))
    log("%s %s: %d ok, %d failed in %.2fs; backends: %s" %
        (kind, hostport(args.vip, args.port), ok, len(errors), elapsed, spread or "-"))
    bad = bool(errors)
    for e in sorted(set(errors)):
        log("  error: %s (x%d)" % (e, errors.count(e)))
    if args.expect:
        for name in args.expect.split(","):
            share = counts.get(name, 0) / max(ok, 1)
            if share < args.min_share:
                log("  error: backend %s got %.1f%% of flows, expected >= %.1f%%" %
                    (name, 100 * share, 100 * args.min_share))
                bad = True
        unknown = set(counts) - set(args.expect.split(","))
        if unknown:
            log("  error: unexpected backends answered: %s" % ",".join(sorted(unknown)))
            bad = True
    for name in (args.avoid or "").split(","):
        if counts.get(name):
            log("  error: backend %s should get no new flows but got %d" %
                (name, counts[name]))
            bad = True
    return 1 if bad else 0


REFUSE_LIMIT = 1.0  # a refusal must come at once, not as a timeout


def refused(kind, args):
    """Every attempt must fail with ECONNREFUSED within REFUSE_LIMIT."""
    worst, errors = 0.0, []
    for _ in range(args.n):
        t0 = time.monotonic()
        try:
            with socket.socket(family_of(args.vip),
                               socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM) as s:
                s.settimeout(3 * REFUSE_LIMIT)
                s.connect((args.vip, args.port))
                if kind == "udp":
                    # the ICMP error surfaces on the connected socket
                    s.send(b"anyone there?")
                    s.recv(100)
                errors.append("not refused: %s" % ("connected" if kind == "tcp" else "got a reply"))
        except ConnectionRefusedError:
            took = time.monotonic() - t0
            if took >= REFUSE_LIMIT:
                errors.append("refused only after %.1fs" % took)
        except OSError as e:
            errors.append(describe(e))
        worst = max(worst, time.monotonic() - t0)
    log("%s %s refused: %d attempts, %d wrong, slowest %.3fs" %
        (kind, hostport(args.vip, args.port), args.n, len(errors), worst))
    for e in sorted(set(errors)):
        log("  error: %s (x%d)" % (e, errors.count(e)))
    return 1 if errors else 0


def cmd_tcp(args):
    if args.refused:
        return refused("tcp", args)
    t0 = time.monotonic()
    counts, errors = run_many(lambda: tcp_one(args.vip, args.port, args.bytes, args.show),
                              args.n, 1 if args.show else args.workers)
    return judge("tcp", args, counts, errors, time.monotonic() - t0)


def cmd_udp(args):
    if args.refused:
        return refused("udp", args)
    t0 = time.monotonic()
    if args.no_check and family_of(args.vip) != socket.AF_INET:
        log("udp: --no-check is for IPv4 only (IPv6 UDP requires a checksum)")
        return 2
    counts, errors = run_many(lambda: udp_one(args.vip, args.port, args.bytes, args.no_check),
                              args.n, args.workers)
    return judge("udp", args, counts, errors, time.monotonic() - t0)


def cmd_peer(args):
    with socket.create_connection((args.vip, args.port), timeout=5) as s:
        s.sendall(PEER + b"\n")
        line = recv_line(s).decode().strip()
    if not line:
        log("peer %s: no answer" % hostport(args.vip, args.port))
        return 1
    log(line)
    return 0


def cmd_bulk(args):
    total = args.mib << 20
    t0 = time.monotonic()
    try:
        s, name = tcp_open(args.vip, args.port)
    except (Check, OSError) as e:
        log("bulk %s: connect failed: %s" % (hostport(args.vip, args.port), describe(e)))
        return 1
    sent = hashlib.sha256()
    send_err = []

    def sender():
        # Send from a thread while the main thread reads the echo, or
        # both sides' buffers fill up and the transfer deadlocks.
        try:
            left = total
            while left:
                chunk = os.urandom(min(left, 1 << 16))
                sent.update(chunk)
                s.sendall(chunk)
                left -= len(chunk)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            send_err.append(describe(e))

    with s:
        s.settimeout(20)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        got, n = hashlib.sha256(), 0
        err = None
        try:
            while True:
                data = s.recv(1 << 16)
                if not data:
                    break
                got.update(data)
                n += len(data)
        except OSError as e:
            err = describe(e)
        t.join(20)
    elapsed = time.monotonic() - t0
    ok = not err and not send_err and n == total and got.digest() == sent.digest()
    log("bulk %s via %s: sent %d, echoed %d bytes, sha256 %s, %.2fs%s" %
        (hostport(args.vip, args.port), name, total, n,
         "match" if got.digest() == sent.digest() else "MISMATCH", elapsed,
         "" if ok else "; error: %s" % (err or ",".join(send_err) or "short/corrupt echo")))
    return 0 if ok else 1


def wait_file(path, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def cmd_hold(args):
    conns = []
    try:
        for _ in range(args.n):
            conns.append(tcp_open(args.vip, args.port))
    except (Check, OSError) as e:
        log("hold %s: opening connection %d failed: %s" %
            (hostport(args.vip, args.port), len(conns) + 1, describe(e)))
        for s, _ in conns:
            s.close()
        return 1
    counts = {}
    for _, name in conns:
        counts[name] = counts.get(name, 0) + 1
    with open(args.ready + ".tmp", "w") as f:
        f.write(" ".join("%s=%d" % (k, counts[k]) for k in sorted(counts)) + "\n")
    os.rename(args.ready + ".tmp", args.ready)
    if not wait_file(args.go, args.wait):
        log("hold: no go signal (%s) within %ds" % (args.go, args.wait))
        return 1
    alive, broken, removed_alive, removed_broken = 0, [], 0, 0
    for s, name in conns:
        try:
            tcp_echo(s, 1024)
            if name == args.removed:
                removed_alive += 1
            else:
                alive += 1
        except (Check, OSError) as e:
            if name == args.removed:
                removed_broken += 1
            else:
                broken.append("%s: %s" % (name, describe(e)))
        s.close()
    removed = ("; to removed %s: %d alive, %d broken" %
               (args.removed, removed_alive, removed_broken) if args.removed else "")
    log("hold %s: %d connections (%s); after the change %d alive, %d broken%s" %
        (hostport(args.vip, args.port), len(conns),
         " ".join("%s=%d" % (k, counts[k]) for k in sorted(counts)),
         alive, len(broken), removed))
    for b in broken:
        log("  error: %s" % b)
    if not alive and not broken:
        log("  error: no connection to a kept backend, nothing was tested")
        return 1
    return 1 if broken else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve")
    s.add_argument("--name", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--ready")
    s.add_argument("--addr", help="serve on this IPv4 address only")
    s.set_defaults(fn=cmd_serve)

    for kind, fn in (("tcp", cmd_tcp), ("udp", cmd_udp)):
        c = sub.add_parser(kind)
        c.add_argument("vip")
        c.add_argument("port", type=int)
        c.add_argument("-n", type=int, default=1)
        c.add_argument("--bytes", type=int, default=1000)
        c.add_argument("--workers", type=int, default=16)
        c.add_argument("--expect", help="comma-separated backends that must answer")
        c.add_argument("--min-share", type=float, default=0.0)
        c.add_argument("--avoid", help="comma-separated backends that must not answer")
        c.add_argument("--refused", action="store_true")
        c.add_argument("--table", action="store_true", help="print a share table")
        if kind == "tcp":
            c.add_argument("--show", action="store_true",
                           help="print each connection, one after the other")
        else:
            c.add_argument("--no-check", action="store_true",
                           help="IPv4: send with UDP checksum 0 (SO_NO_CHECK)")
        c.set_defaults(fn=fn)

    b = sub.add_parser("bulk")
    b.add_argument("vip")
    b.add_argument("port", type=int)
    b.add_argument("--mib", type=int, default=10)
    b.set_defaults(fn=cmd_bulk)

    w = sub.add_parser("peer")
    w.add_argument("vip")
    w.add_argument("port", type=int)
    w.set_defaults(fn=cmd_peer)

    h = sub.add_parser("hold")
    h.add_argument("vip")
    h.add_argument("port", type=int)
    h.add_argument("-n", type=int, default=30)
    h.add_argument("--ready", required=True)
    h.add_argument("--go", required=True)
    h.add_argument("--wait", type=int, default=60)
    h.add_argument("--removed")
    h.set_defaults(fn=cmd_hold)

    args = p.parse_args()
    try:
        return args.fn(args)
    except (ValueError, OSError) as e:
        log("error: %s" % describe(e))
        return 2


if __name__ == "__main__":
    sys.exit(main())
