#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""apiserver.py - a stand-in Kubernetes API server for Sluice's sync tests.

Contract: serves exactly the two collections meshd reads, shaped like the
real API (documented formats of apiserver v1.29+):
  GET /api/v1/services                          kind ServiceList, apiVersion v1
  GET /apis/discovery.k8s.io/v1/endpointslices  kind EndpointSliceList,
                                                apiVersion discovery.k8s.io/v1
  list:  ?limit=N&continue=TOKEN -> {"kind", "apiVersion", "metadata":
         {"resourceVersion", "continue"?, "remainingItemCount"?}, "items"}
         (items without kind/apiVersion, a consistent snapshot across pages)
  watch: ?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=T
         -> 200, Transfer-Encoding: chunked, one JSON event per chunk and line:
         {"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object": ...}
         a resourceVersion older than the compaction point -> an ERROR event
         carrying a Status with code 410 (or HTTP 410, with gone_mode=status)
  errors: Status objects ({"kind": "Status", "status": "Failure", "reason",
         "message", "code"}), 401 when --token is set and not presented.
resourceVersions are one global counter, like etcd's revision.

Control (second port, JSON over HTTP POST /ctl, answers {"ok": true, "rv"}):
  {"op": "apply", "objects": [OBJ...]}      add or modify (ADDED/MODIFIED events)
  {"op": "delete", "kind": K, "namespace": NS, "name": N}
  {"op": "gone", "kind"?: K}                compact history and end live watches
                                            with ERROR 410
  {"op": "drop", "kind"?: K}                cut live watches in the middle of an
                                            event (half a chunk, then RST/FIN)
  {"op": "malformed", "kind"?: K, "where"?: "watch"|"list"}
                                            a broken JSON event into live watches,
                                            or a broken body for the next list
  {"op": "expire_continue"}                 the next continue token gets 410
  {"op": "down"} / {"op": "up"}             close / reopen the API port
  {"op": "set", "page_size"?: N, "bookmark_interval"?: S, "gone_mode"?: M}
  GET /state -> {"rv", "compacted", "down", "requests": [...], "watches": N,
                 "objects": {kind: [ns/name...]}}
K is "services" or "endpointslices" (default: both).

Usage: apiserver.py --port-file FILE [--fixtures FILE...] [--token T]
                    [--tls-cert PEM --tls-key PEM] [--api-port N] [--addr A]
--addr: the API port's IPv4 address (default 127.0.0.1); control stays on 127.0.0.1.
Writes {"api": PORT, "ctl": PORT} to FILE when both ports listen.
"""
import argparse
import base64
import copy
import datetime
import http.server
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

KINDS = {
    "services": {
        "path": "/api/v1/services",
        "kind": "Service",
        "apiVersion": "v1",
        "listKind": "ServiceList",
    },
    "endpointslices": {
        "path": "/apis/discovery.k8s.io/v1/endpointslices",
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "listKind": "EndpointSliceList",
    },
}
BY_PATH = {v["path"]: k for k, v in KINDS.items()}
BY_KIND = {v["kind"]: k for k, v in KINDS.items()}


def status_obj(code, reason, message):
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class Store:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 1000
        self.objects = {k: {} for k in KINDS}
        self.history = []  # (rv, kind, type, obj)
        self.compacted = 0
        self.snapshots = {}
        self.expire_continue = False
        self.malformed_list = set()
        self.page_size = 0
        self.bookmark_interval = 1.0
        self.gone_mode = "event"
        self.down = False
        self.token = None
        self.requests = []
        self.watches = []

    def log(self, entry):
        self.requests.append(entry)
        del self.requests[:-100000]

    def apply(self, obj):
        kind = BY_KIND.get(obj.get("kind", ""))
        if not kind:
            raise ValueError("object kind must be Service or EndpointSlice")
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace", "default"), meta["name"])
        meta["namespace"] = key[0]
        old = self.objects[kind].get(key)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        if old:
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
        else:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault(
                "creationTimestamp",
                datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        obj["apiVersion"] = KINDS[kind]["apiVersion"]
        self.objects[kind][key] = obj
        self.history.append((self.rv, kind, "MODIFIED" if old else "ADDED", copy.deepcopy(obj)))

    def delete(self, kind, ns, name):
        obj = self.objects[kind].pop((ns, name), None)
        if obj is None:
            return False
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, kind, "DELETED", obj))
        return True

    def command(self, kinds, cmd):
        for w in self.watches:
            if w.kind in kinds:
                w.cmd = cmd


STORE = Store()


class Watch:
    def __init__(self, kind):
        self.kind = kind
        self.cmd = None


class ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: tests print their own lines
        pass

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_status(self, code, reason, message):
        self.send_json(code, status_obj(code, reason, message))

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, etype, obj):
        self.chunk(json.dumps({"type": etype, "object": obj}).encode() + b"\n")

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        kind = BY_PATH.get(url.path.rstrip("/"))
        st = STORE
        if st.token is not None and self.headers.get("Authorization") != "Bearer " + st.token:
            self.send_status(401, "Unauthorized", "Unauthorized")
            return
        if kind is None:
            self.send_status(404, "NotFound", "the server could not find the requested resource")
            return
        if q.get("watch") in ("1", "true"):
            self.serve_watch(kind, q)
        else:
            self.serve_list(kind, q)

    def serve_list(self, kind, q):
        st = STORE
        info = KINDS[kind]
        with st.cond:
            st.log({"verb": "list", "kind": kind, "limit": q.get("limit"),
                    "continue": bool(q.get("continue"))})
            if kind in st.malformed_list:
                st.malformed_list.discard(kind)
                body = b'{"kind": "%s", "metadata": {"resourceVersion": ' % info["listKind"].encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            limit = int(q.get("limit") or 0)
            if st.page_size and (not limit or st.page_size < limit):
                limit = st.page_size
            token = q.get("continue")
            if token:
                try:
                    t = json.loads(base64.urlsafe_b64decode(token.encode()))
                    snap, off = t["snap"], int(t["off"])
                except (ValueError, KeyError, TypeError):
                    self.send_status(400, "BadRequest", "invalid continue token")
                    return
                if st.expire_continue or snap not in st.snapshots:
                    st.expire_continue = False
                    self.send_status(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent "
                        "list result. You can start a new list without the continue parameter.")
                    return
                rv, items = st.snapshots[snap]
            else:
                rv = st.rv
                items = []
                for key in sorted(st.objects[kind]):
                    o = copy.deepcopy(st.objects[kind][key])
                    o.pop("kind", None)
                    o.pop("apiVersion", None)
                    items.append(o)
                snap, off = uuid.uuid4().hex, 0
            page = items[off:off + limit] if limit else items[off:]
            rest = len(items) - off - len(page)
            meta = {"resourceVersion": str(rv)}
            if rest > 0:
                st.snapshots[snap] = (rv, items)
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"snap": snap, "off": off + len(page)}).encode()).decode()
                meta["remainingItemCount"] = rest
        self.send_json(200, {"kind": info["listKind"], "apiVersion": info["apiVersion"],
                             "metadata": meta, "items": page})

    def serve_watch(self, kind, q):
        st = STORE
        info = KINDS[kind]
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        timeout = int(q.get("timeoutSeconds") or 1800)
        rvq = q.get("resourceVersion") or "0"
        with st.cond:
            st.log({"verb": "watch", "kind": kind, "resourceVersion": rvq})
            cursor = int(rvq) if rvq != "0" else None
            gone = cursor is not None and cursor < st.compacted
            gone_status = status_obj(
                410, "Expired", "too old resource version: %s (%d)" % (rvq, st.compacted))
            if gone and st.gone_mode == "status":
                self.send_json(410, gone_status)
                return
            w = Watch(kind)
            st.watches.append(w)
            initial = []
            if cursor is None:  # rv "0"/unset: current state first, as ADDED
                initial = [copy.deepcopy(o) for _, o in sorted(st.objects[kind].items())]
                cursor = st.rv
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            if gone:
                self.event("ERROR", gone_status)
                self.finish_chunks()
                return
            for o in initial:
                self.event("ADDED", o)
            self.watch_loop(w, kind, info, cursor, bookmarks, timeout)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with st.cond:
                if w in st.watches:
                    st.watches.remove(w)

    def watch_loop(self, w, kind, info, cursor, bookmarks, timeout):
        st = STORE
        deadline = time.monotonic() + timeout
        next_bm = time.monotonic() + st.bookmark_interval
        while True:
            with st.cond:
                while True:
                    now = time.monotonic()
                    evs = [e for e in st.history if e[1] == kind and e[0] > cursor]
                    if (evs or w.cmd or st.down or now >= deadline or
                            (bookmarks and now >= next_bm)):
                        break
                    st.cond.wait(min(deadline, next_bm if bookmarks else deadline) - now)
                cmd, w.cmd = w.cmd, None
                snap_rv = st.rv
                gone = (cursor < st.compacted)
            if st.down or cmd == "drop":
                self.cut()
                return
            if cmd == "gone" or gone:
                self.event("ERROR", status_obj(410, "Expired",
                                               "too old resource version: %d (%d)" %
                                               (cursor, st.compacted)))
                self.finish_chunks()
                return
            if cmd == "malformed":
                self.chunk(b'{"type": "MODIFIED", "object": {"metadata": {"name": oops}}}\n')
            for rv, _, etype, obj in evs:
                obj = copy.deepcopy(obj)
                obj["kind"] = info["kind"]
                self.event(etype, obj)
                cursor = rv
            now = time.monotonic()
            if bookmarks and now >= next_bm:
                # every event up to snap_rv has been sent (evs were taken with it)
                cursor = max(cursor, snap_rv)
                self.event("BOOKMARK", {"kind": info["kind"], "apiVersion": info["apiVersion"],
                                        "metadata": {"resourceVersion": str(cursor)}})
                next_bm = now + st.bookmark_interval
            if now >= deadline:
                self.finish_chunks()
                return

    def finish_chunks(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self):
        """Half an event, then the connection goes: a mid-stream failure."""
        self.close_connection = True
        try:
            self.wfile.write(b'200\r\n{"type": "MODIFIED", "object": {"meta')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ApiServer(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


class Api:
    def __init__(self, port, tls, addr="127.0.0.1"):
        self.port = port
        self.tls = tls
        self.addr = addr
        self.server = None
        self.thread = None

    def start(self):
        self.server = ApiServer((self.addr, self.port), ApiHandler)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.tls[0], self.tls[1])
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.server = None


API = None


def kinds_of(req):
    k = req.get("kind")
    if k is None:
        return set(KINDS)
    if k not in KINDS:
        raise ValueError("unknown kind %r" % k)
    return {k}


def control(req):
    st = STORE
    op = req.get("op")
    if op == "down":
        with st.cond:
            if st.down:
                return
            st.down = True
            st.cond.notify_all()
        API.stop()
        return
    if op == "up":
        with st.cond:
            if not st.down:
                return
            st.down = False
        API.start()
        return
    with st.cond:
        if op == "apply":
            for o in req["objects"]:
                st.apply(copy.deepcopy(o))
        elif op == "delete":
            if not st.delete(req["kind"], req.get("namespace", "default"), req["name"]):
                raise ValueError("no such object")
        elif op == "gone":
            st.compacted = st.rv
            st.snapshots.clear()
            st.command(kinds_of(req), "gone")
        elif op == "drop":
            st.command(kinds_of(req), "drop")
        elif op == "malformed":
            if req.get("where", "watch") == "list":
                st.malformed_list |= kinds_of(req)
            else:
                st.command(kinds_of(req), "malformed")
        elif op == "expire_continue":
            st.expire_continue = True
        elif op == "set":
            st.page_size = int(req.get("page_size", st.page_size))
            st.bookmark_interval = float(req.get("bookmark_interval", st.bookmark_interval))
            st.gone_mode = req.get("gone_mode", st.gone_mode)
        else:
            raise ValueError("unknown op %r" % op)
        st.cond.notify_all()


class CtlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
            control(req)
        except (ValueError, KeyError, TypeError) as e:
            self.reply(400, {"ok": False, "error": str(e)})
            return
        self.reply(200, {"ok": True, "rv": STORE.rv})

    def do_GET(self):
        st = STORE
        with st.cond:
            state = {
                "rv": st.rv,
                "compacted": st.compacted,
                "down": st.down,
                "watches": len(st.watches),
                "requests": list(st.requests),
                "objects": {k: sorted("%s/%s" % key for key in v) for k, v in st.objects.items()},
            }
        self.reply(200, state)


def load_fixtures(paths):
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        items = data.get("items", []) if isinstance(data, dict) else data
        with STORE.cond:
            for o in items:
                STORE.apply(o)


def main():
    global API
    ap = argparse.ArgumentParser(description="stand-in Kubernetes API server for tests")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--api-port", type=int, default=0)
    ap.add_argument("--addr", default="127.0.0.1",
                    help="IPv4 address the API port listens on (the control port stays on "
                         "127.0.0.1); tests/e2e/test_cluster.sh serves several node namespaces")
    ap.add_argument("--fixtures", nargs="*", default=[])
    ap.add_argument("--token")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    STORE.token = args.token
    load_fixtures(args.fixtures)
    API = Api(args.api_port, (args.tls_cert, args.tls_key) if args.tls_cert else None,
              args.addr)
    API.start()
    ctl = ApiServer(("127.0.0.1", 0), CtlHandler)
    with open(args.port_file + ".tmp", "w") as f:
        json.dump({"api": API.port, "ctl": ctl.server_address[1]}, f)
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        ctl.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
