#!/usr/bin/env python3
"""A fault-injecting JSON-RPC proxy for the gateway tests (stdlib only, loopback).

    faultproxy.py PORT UPSTREAM_URL

Every POST to any path other than /__* is forwarded to UPSTREAM_URL (the
path is ignored: the gateway's URL may carry a fake API key in it), unless
a queued fault applies.  Control endpoints:

    POST /__fault   {"mode": M, "count": N, "retry_after": S}
                    the next N forwarded requests get fault M (queued in order)
    POST /__config  {"max_logs_range": K, "reverse_batches": bool, "delay": seconds}
                    persistent behaviour (0 / false / 0 to turn off)
    POST /__reset   clear faults, config and counters
    GET  /__stats   {"requests": n, "modes": {...}, "batch_sizes": [...],
                     "redirect_hits": n, "max_inflight": n, "methods": [...],
                     "paths": [the first 20 distinct request paths]}
    GET  /redirected  the target of our redirects; the gateway must never come

Modes: pass, 429, 503, truncate (Content-Length kept, half the body, close),
truncate_close (no Content-Length, half the body, close), nonjson, wrong_id,
drop_one (a batch answered without its last element), slow (body trickled
4 bytes/s), huge (a 2 MB body of unknown length), huge_cl (the same with a
Content-Length), redirect (302), hang (no answer for 20 s), rpc_limit
(JSON-RPC -32005 "rate limit exceeded"), echo404 (404 echoing the path, as
some servers do: the gateway must not log it).
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {}


def reset():
    with LOCK:
        STATE.clear()
        STATE.update(faults=[], max_logs_range=0, reverse_batches=False, delay=0.0,
                     requests=0, modes={}, batch_sizes=[], redirect_hits=0,
                     inflight=0, max_inflight=0, methods=[], paths=[])


reset()
UPSTREAM = None


def too_wide(req):
    """Whether an eth_getLogs request asks more blocks than max_logs_range."""
    k = STATE["max_logs_range"]
    if not k or not isinstance(req, dict) or req.get("method") != "eth_getLogs":
        return False
    try:
        f = req["params"][0]
        return int(f["toBlock"], 16) - int(f["fromBlock"], 16) + 1 > k
    except (KeyError, IndexError, TypeError, ValueError):
        return False


def range_error(req):
    return {"jsonrpc": "2.0", "id": req.get("id"),
            "error": {"code": -32005, "message": "query returned more than 10000 results"}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, status, body, ctype="application/json", headers=None, length=True):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/__stats":
            with LOCK:
                out = {k: STATE[k] for k in ("requests", "modes", "batch_sizes", "redirect_hits",
                                             "max_inflight", "methods", "paths")}
                out["faults_left"] = sum(f["count"] for f in STATE["faults"])
            self.send_body(200, json.dumps(out).encode())
        elif self.path.startswith("/redirected"):
            with LOCK:
                STATE["redirect_hits"] += 1
            self.send_body(200, b'{"jsonrpc":"2.0","id":1,"result":"0xbad"}')
        else:
            self.send_body(404, b"not found", "text/plain")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        body = self.read_body()
        if self.path.startswith("/__"):
            return self.control(body)
        with LOCK:
            STATE["requests"] += 1
            if self.path not in STATE["paths"] and len(STATE["paths"]) < 20:
                STATE["paths"].append(self.path)
            STATE["inflight"] += 1
            STATE["max_inflight"] = max(STATE["max_inflight"], STATE["inflight"])
            fault = None
            if STATE["faults"]:
                fault = STATE["faults"][0]
                fault["count"] -= 1
                if fault["count"] <= 0:
                    STATE["faults"].pop(0)
            mode = fault["mode"] if fault else "pass"
            STATE["modes"][mode] = STATE["modes"].get(mode, 0) + 1
            delay = STATE["delay"]
        try:
            if delay:
                time.sleep(delay)
            self.proxy(body, mode, fault or {})
        finally:
            with LOCK:
                STATE["inflight"] -= 1

    def control(self, body):
        args = json.loads(body or b"{}")
        with LOCK:
            if self.path == "/__fault":
                STATE["faults"].append({"mode": args["mode"], "count": int(args.get("count", 1)),
                                        "retry_after": args.get("retry_after")})
            elif self.path == "/__config":
                for k in ("max_logs_range", "reverse_batches", "delay"):
                    if k in args:
                        STATE[k] = args[k]
        if self.path == "/__reset":
            reset()
        self.send_body(200, b'{"ok":true}')

    def proxy(self, body, mode, fault):
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        with LOCK:
            if isinstance(req, list):
                STATE["batch_sizes"].append(len(req))
                STATE["methods"].extend(r.get("method") for r in req if isinstance(r, dict))
            elif isinstance(req, dict):
                STATE["methods"].append(req.get("method"))
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        if mode == "429":
            return self.send_body(429, b"Too Many Requests", "text/plain", headers)
        if mode == "503":
            return self.send_body(503, b"<html>Service Unavailable</html>", "text/html", headers)
        if mode == "nonjson":
            return self.send_body(200, b"<html><body>Bad gateway</body></html>", "text/html")
        if mode == "echo404":
            return self.send_body(404, ("Cannot POST " + self.path).encode(), "text/plain")
        if mode == "redirect":
            port = self.server.server_address[1]
            return self.send_body(302, b"", "text/plain",
                                  {"Location": "http://127.0.0.1:%d/redirected" % port})
        if mode == "hang":
            time.sleep(20)
            self.close_connection = True
            return
        if mode in ("huge", "huge_cl"):
            junk = b'{"jsonrpc":"2.0","id":1,"result":"0x' + b"ab" * (1024 * 1024) + b'"}'
            return self.send_body(200, junk, length=(mode == "huge_cl"))
        if mode == "rpc_limit":
            def limit(r):
                return {"jsonrpc": "2.0", "id": r.get("id"),
                        "error": {"code": -32005, "message": "rate limit exceeded"}}
            out = [limit(r) for r in req] if isinstance(req, list) else limit(req)
            return self.send_body(200, json.dumps(out).encode())

        # Forward to the upstream, then maybe spoil the answer.
        status, data = self.forward(req, body)
        if mode == "wrong_id" and status == 200:
            doc = json.loads(data)
            target = doc[0] if isinstance(doc, list) else doc
            target["id"] = "not-" + str(target.get("id"))
            data = json.dumps(doc).encode()
        if mode == "drop_one" and status == 200:
            doc = json.loads(data)
            if isinstance(doc, list):
                doc = doc[:-1]
            data = json.dumps(doc).encode()
        if mode == "truncate":
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "truncate_close":
            return self.send_body(status, data[: len(data) // 2], length=False)
        if mode == "slow":
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(0, len(data), 1):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.25)
            except OSError:
                pass
            self.close_connection = True
            return
        self.send_body(status, data)

    def forward(self, req, body):
        """Sends body upstream, applying the persistent behaviours."""
        local = {}
        if isinstance(req, list):
            send = []
            for r in req:
                if too_wide(r):
                    local[id(r)] = range_error(r)
                else:
                    send.append(r)
        elif too_wide(req):
            return 200, json.dumps(range_error(req)).encode()
        else:
            send = None
        if send is not None:
            if not send:
                answers = []
            else:
                _, raw = self.post(json.dumps(send).encode())
                answers = json.loads(raw)
            by_id = {json.dumps(a.get("id")): a for a in answers}
            out = [local.get(id(r)) or by_id[json.dumps(r.get("id"))] for r in req]
            if STATE["reverse_batches"]:
                out.reverse()
            return 200, json.dumps(out).encode()
        return self.post(body)

    def post(self, body):
        u = urllib.parse.urlsplit(UPSTREAM)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            conn.request("POST", u.path or "/", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()


def main():
    global UPSTREAM
    port, UPSTREAM = int(sys.argv[1]), sys.argv[2]
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
