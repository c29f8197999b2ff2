#!/usr/bin/env python3
"""A fixture Ethereum JSON-RPC server for bench/chain_bench.sh.

Generates N mainnet-sized blocks in memory at start (deterministic, seeded):
~150 transactions (EIP-1559 and legacy, ~35 % plain transfers, calldata of
realistic lengths, values past 2^64 now and then, the odd contract creation)
and ~400 logs per block (1-4 topics, 0-320 bytes of data), with receipts
(logsBloom, cumulative gas, effectiveGasPrice), withdrawals and every
header field a post-Dencun node returns.  Block hashes chain by parentHash.
Each block is serialized once, as JSON bytes, three ways: the block with
full transactions, the block with transaction hashes only, and its
receipts, so a request costs a dictionary lookup and a join.

Methods: eth_chainId, eth_blockNumber (the last generated block),
eth_getBlockByNumber (number, "latest", "finalized", "safe", "earliest";
full or hashes), eth_getBlockByHash, eth_getBlockReceipts,
net_version, web3_clientVersion; JSON-RPC batches.  A block outside the
range answers null; other methods -32601.

  fixture_rpc.py --port P [--blocks N] [--start S] [--chain-id C]
                 [--copy-dir DIR] [--ready-file F]

--copy-dir writes blocks.copy, txs.copy, logs.copy: the same rows in
PostgreSQL's text COPY format, in the columns of the chain tables
(partition_key, producer_task_id = 1, then trace.chain_table_columns).
--ready-file is written (with the byte sizes) once the server listens.
"""
import argparse
import datetime
import json
import os
import random
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TS0 = 1717200000  # 2024-06-01 00:00:00 UTC


def gen_chain(n_blocks, start, chain_id, seed=20240601, copy_dir=None):
    rng = random.Random(seed)
    h32 = lambda: "0x%064x" % rng.getrandbits(256)
    addrs = ["0x%040x" % rng.getrandbits(160) for _ in range(4000)]
    # a few hot contracts (tokens, routers) carry most logs
    hot = addrs[:60]
    topics0 = ["0x%064x" % rng.getrandbits(256) for _ in range(200)]
    nonces = {}
    full, hashes_only, receipts, by_hash = {}, {}, {}, {}
    parent = h32()
    cf = None
    if copy_dir:
        cf = [open(os.path.join(copy_dir, f), "w") for f in ("blocks.copy", "txs.copy", "logs.copy")]
    counts = [0, 0, 0]
    bloom = lambda: "0x" + rng.randbytes(256).hex()
    input_lens = [0] * 35 + [36] * 4 + [68] * 18 + [100] * 6 + [132] * 5 + [164] * 5 + \
        [196] * 4 + [260] * 4 + [324] * 4 + [452] * 4 + [580] * 3 + [836] * 3 + \
        [1092] * 2 + [1604] * 2 + [2500] * 1 + [4000] * 1 + [6000] * 1
    data_lens = [0] * 20 + [32] * 40 + [64] * 20 + [96] * 8 + [128] * 5 + [192] * 4 + [320] * 3
    ntopics = [1] * 10 + [2] * 5 + [3] * 65 + [4] * 20

    def bx(h):
        return "\\\\x" + h[2:]

    for k in range(n_blocks):
        num = start + k
        nhex = hex(num)
        bhash = "0x%064x" % (rng.getrandbits(256))
        ts = TS0 + 12 * k
        base_fee = rng.randint(3_000_000_000, 30_000_000_000)
        ntx = rng.randint(130, 170)
        nlog_target = rng.randint(360, 440)
        # which transactions call contracts (non-empty input); logs go to those
        ins = [rng.choice(input_lens) for _ in range(ntx)]
        callers = [i for i in range(ntx) if ins[i] > 0]
        per_tx = [0] * ntx
        for _ in range(nlog_target):
            per_tx[rng.choice(callers)] += 1
        txs, rcpts, tx_hashes = [], [], []
        cum = 0
        log_index = 0
        ts_text = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")
        for i in range(ntx):
            th = h32()
            sender = rng.choice(addrs)
            nonce = nonces.get(sender, rng.randint(0, 5000))
            nonces[sender] = nonce + 1
            create = ins[i] > 1000 and rng.random() < 0.05
            to = None if create else (rng.choice(hot) if ins[i] > 0 and rng.random() < 0.7 else rng.choice(addrs))
            r = rng.random()
            value = 0 if (ins[i] > 0 and r < 0.85) or r < 0.05 else (
                rng.getrandbits(72) if r > 0.97 else rng.randint(10 ** 14, 10 ** 19))
            gas = 21000 if ins[i] == 0 else rng.randint(50_000, 400_000)
            used = 21000 if ins[i] == 0 else rng.randint(30_000, gas)
            cum += used
            tip = rng.randint(10 ** 6, 3 * 10 ** 9)
            eff = base_fee + tip
            legacy = rng.random() < 0.2
            inp = "0x" + rng.randbytes(ins[i]).hex()
            tx = {"blockHash": bhash, "blockNumber": nhex, "from": sender, "gas": hex(gas),
                  "gasPrice": hex(eff), "hash": th, "input": inp, "nonce": hex(nonce), "to": to,
                  "transactionIndex": hex(i), "value": hex(value)}
            if legacy:
                tx.update({"type": "0x0", "chainId": hex(chain_id), "v": hex(37 + rng.randint(0, 1)),
                           "r": h32(), "s": h32()})
            else:
                tx.update({"type": "0x2", "maxFeePerGas": hex(eff + rng.randint(0, 10 ** 10)),
                           "maxPriorityFeePerGas": hex(tip), "accessList": [], "chainId": hex(chain_id),
                           "v": "0x1", "yParity": "0x1", "r": h32(), "s": h32()})
            txs.append(tx)
            tx_hashes.append(th)
            logs = []
            for _ in range(per_tx[i]):
                nt = rng.choice(ntopics)
                topics = [rng.choice(topics0)] + [
                    "0x000000000000000000000000%040x" % rng.getrandbits(160) for _ in range(nt - 1)]
                data = "0x" + rng.randbytes(rng.choice(data_lens)).hex()
                lg = {"address": rng.choice(hot) if rng.random() < 0.8 else rng.choice(addrs),
                      "topics": topics, "data": data, "blockNumber": nhex, "transactionHash": th,
                      "transactionIndex": hex(i), "blockHash": bhash, "logIndex": hex(log_index),
                      "removed": False}
                logs.append(lg)
                if cf:
                    tp = [bx(t) for t in topics] + ["\\N"] * (4 - len(topics))
                    cf[2].write("%d\t1\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" % (
                        num, chain_id, num, ts_text, i, log_index, bx(th), bx(lg["address"]),
                        tp[0], tp[1], tp[2], tp[3], bx(data)))
                log_index += 1
            status = 0 if rng.random() < 0.02 else 1
            rcpts.append({"blockHash": bhash, "blockNumber": nhex,
                          "contractAddress": "0x%040x" % rng.getrandbits(160) if create else None,
                          "cumulativeGasUsed": hex(cum), "effectiveGasPrice": hex(eff), "from": sender,
                          "gasUsed": hex(used), "logs": logs, "logsBloom": bloom(), "status": hex(status),
                          "to": to, "transactionHash": th, "transactionIndex": hex(i),
                          "type": tx["type"]})
            if cf:
                cf[1].write("%d\t1\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%d\n" % (
                    num, chain_id, num, ts_text, i, bx(th), bx(sender), bx(to) if to else "\\N",
                    value, gas, eff, nonce, bx(inp), status))
        gas_limit = 30_000_000
        header = {"baseFeePerGas": hex(base_fee), "blobGasUsed": "0x0", "difficulty": "0x0",
                  "excessBlobGas": "0x0", "extraData": "0x" + rng.randbytes(12).hex(),
                  "gasLimit": hex(gas_limit), "gasUsed": hex(min(cum, gas_limit)), "hash": bhash,
                  "logsBloom": bloom(), "miner": rng.choice(addrs[:20]), "mixHash": h32(),
                  "nonce": "0x0000000000000000", "number": nhex, "parentBeaconBlockRoot": h32(),
                  "parentHash": parent, "receiptsRoot": h32(),
                  "sha3Uncles": "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
                  "size": hex(60000 + 400 * ntx), "stateRoot": h32(), "timestamp": hex(ts),
                  "totalDifficulty": "0xc70d815d562d3cfa955", "transactionsRoot": h32(), "uncles": [],
                  "withdrawals": [{"index": hex(16 * num + w), "validatorIndex": hex(rng.randint(0, 10 ** 6)),
                                   "address": rng.choice(addrs), "amount": hex(rng.randint(10 ** 6, 2 * 10 ** 7))}
                                  for w in range(16)],
                  "withdrawalsRoot": h32()}
        if cf:
            cf[0].write("%d\t1\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n" % (
                num, chain_id, num, bx(bhash), bx(parent), ts_text, bx(header["miner"]),
                min(cum, gas_limit), gas_limit, base_fee, ntx, log_index))
        counts[0] += 1
        counts[1] += ntx
        counts[2] += log_index
        enc = json.JSONEncoder(separators=(",", ":")).encode
        full[num] = enc(dict(header, transactions=txs)).encode()
        hashes_only[num] = enc(dict(header, transactions=tx_hashes)).encode()
        receipts[num] = enc(rcpts).encode()
        by_hash[bhash] = num
        parent = bhash
    if cf:
        for f in cf:
            f.close()
    return full, hashes_only, receipts, by_hash, counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--blocks", type=int, default=500)
    ap.add_argument("--start", type=int, default=20_000_000)
    ap.add_argument("--chain-id", type=int, default=1)
    ap.add_argument("--copy-dir")
    ap.add_argument("--ready-file")
    a = ap.parse_args()
    full, hashes_only, receipts, by_hash, counts = gen_chain(a.blocks, a.start, a.chain_id,
                                                             copy_dir=a.copy_dir)
    head = a.start + a.blocks - 1
    chain_hex = json.dumps(hex(a.chain_id)).encode()

    def block_num(p):
        if p in ("latest", "finalized", "safe", "pending"):
            return head
        if p == "earliest":
            return a.start
        return int(p, 16)

    def answer(req):
        if not isinstance(req, dict) or "method" not in req:
            return b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request"}}'
        rid = json.dumps(req.get("id")).encode()
        m, p = req["method"], req.get("params") or []
        res = None
        try:
            if m == "eth_chainId":
                res = chain_hex
            elif m == "net_version":
                res = json.dumps(str(a.chain_id)).encode()
            elif m == "web3_clientVersion":
                res = b'"trace-bench-fixture/1.0"'
            elif m == "eth_blockNumber":
                res = json.dumps(hex(head)).encode()
            elif m == "eth_getBlockByNumber":
                n = block_num(p[0])
                res = (full if len(p) > 1 and p[1] else hashes_only).get(n, b"null")
            elif m == "eth_getBlockByHash":
                n = by_hash.get(p[0])
                res = b"null" if n is None else (full if len(p) > 1 and p[1] else hashes_only)[n]
            elif m == "eth_getBlockReceipts":
                res = receipts.get(block_num(p[0]), b"null")
        except (ValueError, IndexError, TypeError, AttributeError):
            return b'{"jsonrpc":"2.0","id":' + rid + b',"error":{"code":-32602,"message":"invalid params"}}'
        if res is None:
            return (b'{"jsonrpc":"2.0","id":' + rid + b',"error":{"code":-32601,"message":"the method '
                    + json.dumps(m)[1:-1].encode() + b' does not exist/is not available"}}')
        return (b'{"jsonrpc":"2.0","id":' + rid + b',"result":', res, b"}")

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.reply(200, b"ok")

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            try:
                req = json.loads(body)
            except ValueError:
                return self.reply(200, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}')
            parts = []
            for i, r in enumerate(req if isinstance(req, list) else [req]):
                if isinstance(req, list):
                    parts.append(b"[" if i == 0 else b",")
                a_ = answer(r)
                parts.extend(a_ if isinstance(a_, tuple) else (a_,))
            if isinstance(req, list):
                parts.append(b"[]" if not req else b"]")
            self.send_parts(parts)

        def reply(self, code, body):
            self.send_parts([body], code)

        def send_parts(self, parts, code=200):
            # The blocks are kept as ready bytes: send them where they lie
            # (one sendmsg over all the pieces) rather than joining copies,
            # so the fixture costs as little CPU as it can: the benchmark
            # measures Trace, and shares the machine's cores with it.
            self.wfile.flush()
            head = (b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                    % (code, sum(len(x) for x in parts)))
            views = [memoryview(head)] + [memoryview(x) for x in parts]
            while views:
                sent = self.connection.sendmsg(views[:512])
                while views and sent >= len(views[0]):
                    sent -= len(views[0])
                    views.pop(0)
                if sent:
                    views[0] = views[0][sent:]

    class S(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

    srv = S(("127.0.0.1", a.port), H)
    if a.ready_file:
        sizes = [sum(len(v) for v in d.values()) for d in (full, receipts)]
        with open(a.ready_file + ".tmp", "w") as f:
            f.write("blocks=%d txs=%d logs=%d block_bytes=%d receipt_bytes=%d start=%d head=%d\n" % (
                counts[0], counts[1], counts[2], sizes[0], sizes[1], a.start, head))
        os.rename(a.ready_file + ".tmp", a.ready_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
