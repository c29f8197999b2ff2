#!/usr/bin/env python3
"""chain.py: drives an anvil node for the chain tests (stdlib only).

  chain.py --rpc URL setup                 manual mining; deploy the test contracts
  chain.py --rpc URL traffic BLOCKS [TXS]  BLOCKS blocks of TXS transactions each
  chain.py --rpc URL mine N                N empty blocks
  chain.py --rpc URL reorg DEPTH [TXS]     anvil_reorg: the last DEPTH blocks replaced
                                           by new ones with TXS transactions in all
  chain.py --rpc URL snapshot              evm_snapshot (prints the id)
  chain.py --rpc URL revert ID             evm_revert
  chain.py --rpc URL head                  "<number> <hash>"
  chain.py --rpc URL index FROM TO         a fresh index of blocks FROM..TO, straight
                                           from the node, one line per row

Traffic is ETH transfers between anvil's unlocked dev accounts (some worth more
than 2^64 wei), calls of a hand-written contract that LOGs twice on every call
(LOG2 with the caller and the calldata, then LOG1), and calls of one that
always reverts (status 0).  Sends use eth_sendTransaction with explicit
nonces; mining is manual (evm_setAutomine false, then anvil_mine), so a
block holds exactly the transactions sent before it.

The index format is what test/chain/lib.sh selects from the chain tables:
  B|n|hash|parent|timestamp|miner|gas_used|gas_limit|base_fee|tx_count|log_count
  T|n|index|hash|from|to|value|gas|gas_price|nonce|input|status
  L|n|log_index|tx_index|tx_hash|address|topic0|topic1|topic2|topic3|data
numbers in decimal, byte strings as 0x-hex, absent values empty.
"""
import json
import random
import sys
import urllib.request

# Runtime: CALLDATACOPY(0, 0, size); LOG2(0, size, 0xaa, CALLER); LOG1(0, 0, 0xbb); STOP
LOGGER_RUNTIME = "366000600037" "33" "60aa" "36" "6000" "a2" "60bb" "6000" "6000" "a1" "00"
# Runtime: REVERT(0, 0)
REVERTER_RUNTIME = "60006000fd"


def init_code(runtime):
    """Init code that returns the runtime: CODECOPY(0, 12, n); RETURN(0, n)."""
    n = len(runtime) // 2
    return "0x60%02x600c600039" "60%02x6000f3" % (n, n) + runtime


class Node:
    def __init__(self, url):
        self.url = url
        self.next_id = 1

    def batch(self, calls):
        body = []
        for method, params in calls:
            body.append({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
            self.next_id += 1
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            out = json.load(r)
        by_id = {o["id"]: o for o in out}
        results = []
        for b in body:
            o = by_id[b["id"]]
            if "error" in o:
                raise RuntimeError("%s: %s" % (b["method"], o["error"]))
            results.append(o["result"])
        return results

    def call(self, method, *params):
        return self.batch([(method, list(params))])[0]


def accounts(node):
    return node.call("eth_accounts")


def nonces(node, accts):
    res = node.batch([("eth_getTransactionCount", [a, "pending"]) for a in accts])
    return {a: int(n, 16) for a, n in zip(accts, res)}


def wait_receipt(node, h):
    r = node.call("eth_getTransactionReceipt", h)
    if r is None:
        raise RuntimeError("no receipt for " + h)
    return r


def setup(node):
    node.call("evm_setAutomine", False)
    a = accounts(node)[0]
    n = nonces(node, [a])[a]
    h1 = node.call("eth_sendTransaction", {"from": a, "data": init_code(LOGGER_RUNTIME), "nonce": hex(n)})
    h2 = node.call("eth_sendTransaction", {"from": a, "data": init_code(REVERTER_RUNTIME), "nonce": hex(n + 1)})
    node.call("anvil_mine", "0x1")
    logger = wait_receipt(node, h1)["contractAddress"]
    reverter = wait_receipt(node, h2)["contractAddress"]
    print(logger, reverter)


def tx_for(rnd, accts, logger, reverter, i):
    """A varied transaction request (without nonce)."""
    frm = accts[i % 5]
    kind = i % 6
    if kind in (0, 3):
        value = rnd.choice([1, 10**9, 10**18, 100 * 10**18 + rnd.randint(0, 10**6)])
        return {"from": frm, "to": rnd.choice(accts[5:]), "value": hex(value)}
    if kind == 5 and reverter:
        return {"from": frm, "to": reverter, "gas": hex(100000)}
    data = "0x" + "".join("%02x" % rnd.randint(0, 255) for _ in range(rnd.randint(0, 40)))
    return {"from": frm, "to": logger, "data": data, "gas": hex(200000)}


def traffic(node, blocks, txs, logger, reverter, seed):
    rnd = random.Random(seed)
    accts = accounts(node)
    for _ in range(blocks):
        nonce = nonces(node, accts[:5])
        calls = []
        for i in range(txs):
            t = tx_for(rnd, accts, logger, reverter, i + rnd.randint(0, 5))
            t["nonce"] = hex(nonce[t["from"]])
            nonce[t["from"]] += 1
            calls.append(("eth_sendTransaction", [t]))
        if calls:
            node.batch(calls)
        node.call("anvil_mine", "0x1")


def reorg(node, depth, txs, logger, reverter, seed):
    rnd = random.Random(seed)
    accts = accounts(node)
    pairs = []
    for i in range(txs):
        pairs.append([tx_for(rnd, accts, logger, reverter, i), rnd.randint(0, depth - 1)])
    node.call("anvil_reorg", depth, pairs)


def hx(v):
    return "" if v is None else v.lower()


def num(v):
    return "" if v is None else str(int(v, 16))


def index(node, lo, hi):
    blocks, txs, logs = [], [], []
    for a in range(lo, hi + 1, 20):
        b = min(hi, a + 19)
        calls = []
        for n in range(a, b + 1):
            calls.append(("eth_getBlockByNumber", [hex(n), True]))
            calls.append(("eth_getBlockReceipts", [hex(n)]))
        res = node.batch(calls)
        for k, n in enumerate(range(a, b + 1)):
            blk, rcpts = res[2 * k], res[2 * k + 1]
            nlogs = sum(len(r["logs"]) for r in rcpts)
            blocks.append("B|%d|%s|%s|%d|%s|%s|%s|%s|%d|%d" % (
                n, hx(blk["hash"]), hx(blk["parentHash"]), int(blk["timestamp"], 16),
                hx(blk.get("miner")), num(blk.get("gasUsed")), num(blk.get("gasLimit")),
                num(blk.get("baseFeePerGas")), len(blk["transactions"]), nlogs))
            for i, (t, r) in enumerate(zip(blk["transactions"], rcpts)):
                price = t.get("gasPrice") or r.get("effectiveGasPrice")
                txs.append("T|%d|%d|%s|%s|%s|%s|%s|%s|%s|%s|%s" % (
                    n, i, hx(t["hash"]), hx(t["from"]), hx(t.get("to")), num(t["value"]),
                    num(t.get("gas")), num(price), num(t.get("nonce")), hx(t.get("input")),
                    num(r.get("status"))))
                for lg in r["logs"]:
                    topics = [hx(x) for x in lg["topics"]] + [""] * (4 - len(lg["topics"]))
                    logs.append("L|%d|%d|%d|%s|%s|%s|%s|%s|%s|%s" % (
                        n, int(lg["logIndex"], 16), i, hx(t["hash"]), hx(lg["address"]),
                        topics[0], topics[1], topics[2], topics[3], hx(lg["data"])))
    for line in blocks + txs + logs:
        print(line)


def main(argv):
    if len(argv) < 3 or argv[0] != "--rpc":
        print(__doc__, file=sys.stderr)
        return 2
    node = Node(argv[1])
    cmd, args = argv[2], argv[3:]
    logger = reverter = None
    if cmd in ("traffic", "reorg"):
        # the test contracts: the first two contracts account 0 created
        import os
        logger = os.environ.get("LOGGER")
        reverter = os.environ.get("REVERTER")
    seed = int(__import__("os").environ.get("SEED", "1"))
    if cmd == "setup":
        setup(node)
    elif cmd == "traffic":
        traffic(node, int(args[0]), int(args[1]) if len(args) > 1 else 3, logger, reverter, seed)
    elif cmd == "mine":
        node.call("anvil_mine", hex(int(args[0])))
    elif cmd == "reorg":
        reorg(node, int(args[0]), int(args[1]) if len(args) > 1 else 3, logger, reverter, seed)
    elif cmd == "snapshot":
        print(node.call("evm_snapshot"))
    elif cmd == "revert":
        print(node.call("evm_revert", args[0]))
    elif cmd == "head":
        n = int(node.call("eth_blockNumber"), 16)
        print(n, node.call("eth_getBlockByNumber", hex(n), False)["hash"])
    elif cmd == "index":
        index(node, int(args[0]), int(args[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
