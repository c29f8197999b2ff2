#!/usr/bin/env python3
"""rpc_proxy.py: a stand-in for trace-rpc-gateway in the chain tests, with faults.

  rpc_proxy.py PORT NAME=URL [NAME=URL ...]

Serves POST /rpc/<NAME> on 127.0.0.1:PORT by forwarding the body to URL and
answering with the upstream's status and body, as the gateway does (and
HTTP 404 with a JSON-RPC error for an unknown name, 502 when the upstream
cannot be reached).  Test control, on the same port:

  POST /_fault {"mode": M, "count": N}   the next N requests get fault M:
      "503"       HTTP 503 with a JSON-RPC error body (an upstream outage)
      "429"       HTTP 429 with Retry-After: 1
      "garbage"   HTTP 200 with a body that is not JSON
      "truncate"  HTTP 200 with the first half of the real answer
      "wrong_ids" HTTP 200 with the real answer's ids shifted by one
      "drop"      the connection closed without an answer
      "drop_receipt"  the real answer with the last receipt of a block's
                  receipts removed (counts only answers it changed)
      "bad_parent"    the real answer with the parentHash of the last full
                  block in it changed (counts only answers it changed)
      "no_block_receipts"  eth_getBlockReceipts answered -32601 "method not
                  found" (a provider without it; counts only answers it changed)
  POST /_delay {"ms": N}                 every request waits N ms first
  GET  /_stats                           {"requests": n, "faults": n}

Bounded: it only ever talks to the upstream URLs given (loopback).
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAMS = {}
STATE = {"mode": None, "count": 0, "delay_ms": 0, "requests": 0, "faults": 0}
LOCK = threading.Lock()


def rpc_error_body(code, message):
    return json.dumps({"jsonrpc": "2.0", "id": None,
                       "error": {"code": code, "message": message}}).encode()


TAMPER = ("drop_receipt", "bad_parent", "no_block_receipts")


def tamper(mode, answer, request):
    """The answer with one thing wrong in it, or None when there is nothing to change."""
    try:
        doc = json.loads(answer)
        req = json.loads(request)
    except ValueError:
        return None
    items = doc if isinstance(doc, list) else [doc]
    if mode == "no_block_receipts":
        reqs = req if isinstance(req, list) else [req]
        ids = {r.get("id") for r in reqs if r.get("method") == "eth_getBlockReceipts"}
        hit = False
        for it in items:
            if it.get("id") in ids:
                it.pop("result", None)
                it["error"] = {"code": -32601, "message": "the method eth_getBlockReceipts does not exist/is not available"}
                hit = True
        return json.dumps(doc).encode() if hit else None
    for it in reversed(items):
        res = it.get("result") if isinstance(it, dict) else None
        if mode == "drop_receipt" and isinstance(res, list) and res and isinstance(res[0], dict) \
                and "logs" in res[0]:
            res.pop()
            return json.dumps(doc).encode()
        if mode == "bad_parent" and isinstance(res, dict) and "parentHash" in res \
                and res.get("transactions") and isinstance(res["transactions"][0], dict):
            res["parentHash"] = "0x" + "ab" * 32
            return json.dumps(doc).encode()
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_stats":
            with LOCK:
                body = json.dumps({"requests": STATE["requests"], "faults": STATE["faults"]})
            self.reply(200, body.encode())
        else:
            self.reply(404, b"{}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/_fault":
            cmd = json.loads(body)
            with LOCK:
                STATE["mode"], STATE["count"] = cmd["mode"], int(cmd.get("count", 1))
            return self.reply(200, b"{}")
        if self.path == "/_delay":
            with LOCK:
                STATE["delay_ms"] = int(json.loads(body)["ms"])
            return self.reply(200, b"{}")
        if not self.path.startswith("/rpc/") or self.path[5:] not in UPSTREAMS:
            return self.reply(404, rpc_error_body(-32601, "no such provider"))
        with LOCK:
            STATE["requests"] += 1
            mode = None
            if STATE["count"] > 0:
                mode = STATE["mode"]
                if mode not in TAMPER:
                    STATE["count"] -= 1
                    STATE["faults"] += 1
            delay = STATE["delay_ms"]
        if delay:
            time.sleep(delay / 1000.0)
        if mode == "503":
            return self.reply(503, rpc_error_body(-32603, "upstream unavailable (injected)"))
        if mode == "429":
            return self.reply(429, rpc_error_body(-32005, "rate limited (injected)"),
                              [("Retry-After", "1")])
        if mode == "garbage":
            return self.reply(200, b"<html>this is not JSON</html>")
        if mode == "drop":
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return None
        req = urllib.request.Request(UPSTREAMS[self.path[5:]], data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, answer = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
        except OSError as e:
            return self.reply(502, rpc_error_body(-32603, "upstream unreachable: %s" % e))
        if mode == "truncate":
            return self.reply(200, answer[: len(answer) // 2])
        if mode in TAMPER:
            changed = tamper(mode, answer, body)
            if changed is not None:
                with LOCK:
                    if STATE["count"] > 0:
                        STATE["count"] -= 1
                        STATE["faults"] += 1
                        answer = changed
            return self.reply(status, answer)
        if mode == "wrong_ids":
            doc = json.loads(answer)
            items = doc if isinstance(doc, list) else [doc]
            for it in items:
                if isinstance(it.get("id"), int):
                    it["id"] += 1
            return self.reply(200, json.dumps(doc).encode())
        return self.reply(status, answer)


def main(argv):
    port = int(argv[0])
    for spec in argv[1:]:
        name, url = spec.split("=", 1)
        UPSTREAMS[name] = url
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
