"""Decode ERC-20 Transfer logs into rows (a Trace UDF in Python).

Job (runtime lambda):
    operator: udf
    runtime: lambda
    config:
      language: python
      entrypoint: erc20_transfers/decode.py
      timeout: 30s
      memory: 256MB
    outputs: [erc20.transfers]      # the rows go to the job's output

Task payload: one partition of raw logs, e.g. a block range
    {"partition": "19000000-19000099",
     "logs": [{"address": "0x...", "topics": ["0xddf2...", "0x..from", "0x..to"],
               "data": "0x..value", "blockNumber": "0x121eac0",
               "transactionHash": "0x...", "logIndex": "0x3"}, ...]}

Output: one row per Transfer in dataset/partition, and one event saying the
partition is ready.  ERC-721 Transfers share the topic but carry the token id
as a fourth topic; they are skipped (counted in the result).

The UDF runs with no network and no database: everything it needs is in the
task.  stdlib only.
"""

import trace_udf

# keccak256("Transfer(address,address,uint256)")
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
DEFAULT_DATASET = "erc20.transfers"


def as_int(v):
    """A JSON-RPC quantity ("0x1a") or a plain integer."""
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        return int(v, 16) if v.startswith("0x") else int(v)
    raise ValueError("not a quantity: %r" % (v,))


def topic_address(topic):
    """The address in a 32-byte topic (its last 20 bytes)."""
    h = topic[2:] if topic.startswith("0x") else topic
    if len(h) != 64:
        raise ValueError("a topic is 32 bytes, got %r" % (topic,))
    return "0x" + h[-40:].lower()


def decode(log):
    """A row for an ERC-20 Transfer log, or None for any other log."""
    topics = log.get("topics") or []
    if not topics or topics[0].lower() != TRANSFER_TOPIC:
        return None
    if len(topics) != 3:
        return None  # ERC-721: the token id is indexed too
    data = log.get("data") or "0x"
    value = int(data, 16) if data not in ("0x", "") else 0
    return {
        "block_number": as_int(log["blockNumber"]),
        "log_index": as_int(log["logIndex"]),
        "tx_hash": log["transactionHash"].lower(),
        "token": log["address"].lower(),
        "from": topic_address(topics[1]),
        "to": topic_address(topics[2]),
        # uint256 does not fit a JSON number safely: a decimal string.
        "value": str(value),
    }


def handle(task, out):
    payload = task.payload or {}
    partition = payload.get("partition")
    logs = payload.get("logs")
    if not isinstance(partition, str) or not isinstance(logs, list):
        raise trace_udf.Fatal('payload needs "partition" (string) and "logs" (list)')
    dataset = (task.outputs or [DEFAULT_DATASET])[0]
    decoded = skipped = 0
    for log in logs:
        row = decode(log)
        if row is None:
            skipped += 1
            continue
        out.row(dataset, partition, row)
        decoded += 1
    out.event(dataset, partition, {"rows": decoded})
    out.log("info", "partition %s: %d transfers, %d other logs" % (partition, decoded, skipped))
    return {"transfers": decoded, "skipped": skipped}


if __name__ == "__main__":
    trace_udf.run(handle)
