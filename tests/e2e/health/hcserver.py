#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""hcserver.py - a health endpoint for tests/e2e/test_health_check.sh.

  hcserver.py --port P --sick FILE --ready FILE

HTTP/1.1 on 0.0.0.0:P: GET /healthz answers 200, or 500 while FILE exists
(the test creates and removes it); any other path 404. FILE `ready` is
created once the socket is bound. python3 stdlib only.
"""
import argparse
import http.server
import os
import socketserver


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != "/healthz":
            code = 404
        else:
            code = 500 if os.path.exists(self.server.sick) else 200
        body = b"sick\n" if code == 500 else b"ok\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sick", required=True)
    p.add_argument("--ready", required=True)
    a = p.parse_args()
    srv = Server(("0.0.0.0", a.port), Handler)
    srv.sick = a.sick
    open(a.ready, "w").close()
    srv.serve_forever()


if __name__ == "__main__":
    main()
