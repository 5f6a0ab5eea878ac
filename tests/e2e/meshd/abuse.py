#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""abuse.py - misbehaving clients of meshd's API socket and /metrics server,
for tests/e2e/test_meshd_abuse.sh.

Every mode that holds connections prints "ready" once they are all open and
then keeps them until killed (or for --seconds); connections the server
closes are opened again, so the pressure stays on. Modes:
  stall SOCK N          N clients that send half a request and wait
  idle-unix SOCK N      N clients that connect and send nothing
  slow-read SOCK        one client asking service.list, then reading 64 KiB
                        every 4 s
  big SOCK BYTES        one request of BYTES bytes (a valid JSON object);
                        prints meshd's answer
  trickle HOST PORT N   N HTTP clients sending their headers a byte a second
  idle-tcp HOST PORT N  N TCP connections that send nothing
"""
import json
import socket
import sys
import time


def unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)  # a full backlog blocks connect()
    s.connect(path)
    return s


def tcp(host, port):
    s = socket.create_connection((host, int(port)), timeout=2)
    s.setblocking(False)
    return s


def closed(s):
    try:
        s.setblocking(False)
        return s.recv(65536, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def hold(open_one, n, step=None):
    """Keep n connections from open_one(); step(i, sock) runs every second.
    A server that takes no more (a full backlog) gets what it takes: "ready"
    says how many are open."""
    conns = []
    for _ in range(n):
        try:
            conns.append(open_one())
        except OSError:
            break
    print("ready %d/%d" % (len(conns), n), flush=True)
    reopened = 0
    while True:
        time.sleep(1)
        while len(conns) < n:
            try:
                conns.append(open_one())
            except OSError:
                break
        for i, s in enumerate(conns):
            if closed(s):
                s.close()
                try:
                    conns[i] = open_one()
                    reopened += 1
                except OSError:
                    pass
            elif step:
                try:
                    step(i, s)
                except OSError:
                    pass


def stall(path, n):
    def one():
        s = unix(path)
        s.sendall(b'{"op":"sta')
        return s
    hold(one, int(n))


def idle_unix(path, n):
    hold(lambda: unix(path), int(n))


def slow_read(path):
    s = unix(path)
    s.sendall(b'{"op":"service.list"}\n')
    print("ready", flush=True)
    total = 0
    while True:
        got = s.recv(65536)
        if not got:
            print("closed after %d bytes" % total, flush=True)
            return
        total += len(got)
        time.sleep(4)


def big(path, size):
    size = int(size)
    head = b'{"op":"status","pad":"'
    tail = b'"}\n'
    s = unix(path)
    s.settimeout(30)
    pad = size - len(head) - len(tail)
    try:
        s.sendall(head)
        chunk = b"a" * (1 << 20)
        while pad > 0:
            s.sendall(chunk[:min(pad, len(chunk))])
            pad -= min(pad, len(chunk))
        s.sendall(tail)
    except OSError as e:
        print("send: %s" % e, flush=True)
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        answer += got
    print(json.dumps(json.loads(answer)) if answer else "no answer", flush=True)


def trickle(host, port, n):
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096
    sent = {}

    def one():
        return tcp(host, port)

    def step(i, s):
        pos = sent.get(id(s), 0)
        s.send(request[pos:pos + 1])
        sent[id(s)] = pos + 1
    hold(one, int(n), step)


def idle_tcp(host, port, n):
    hold(lambda: tcp(host, port), int(n))


MODES = {"stall": stall, "idle-unix": idle_unix, "slow-read": slow_read, "big": big,
         "trickle": trickle, "idle-tcp": idle_tcp}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        sys.exit(__doc__)
    MODES[sys.argv[1]](*sys.argv[2:])
