"""trace_udf: the Python SDK for Trace UDFs (protocol "trace-udf/1").

Standard library only.  A UDF is a function of the task and an output:

    import trace_udf

    def handle(task, out):
        for log in task.payload["logs"]:
            out.row("erc20.transfers", task.payload["range"], {...})
        out.event("erc20.transfers", task.payload["range"], {"rows": n})
        out.log("info", "decoded %d transfers" % n)
        return {"transfers": n}            # the task's result

    trace_udf.run(handle)

run() reads the task line from stdin, calls handle, and writes the result
line.  An exception fails the attempt (retryable); raise trace_udf.Fatal to
fail it for good.  Rows and events are only written by the worker if the
UDF finishes with a result: a failed attempt writes nothing.

The worker runs this with no network, no database, a read-only file
system except /scratch and /tmp, and limits on CPU, memory and time.
"""

import json
import sys
import traceback

PROTOCOL = "trace-udf/1"

__all__ = ["run", "Task", "Output", "Fatal", "PROTOCOL"]


class Fatal(Exception):
    """Raise to fail the attempt without retry (bad input, not load)."""


class Task:
    """The task as the worker sends it."""

    def __init__(self, doc):
        self.raw = doc
        self.task_id = doc.get("task_id")
        self.attempt = doc.get("attempt")
        self.mode = doc.get("mode")
        self.payload = doc.get("payload")
        self.config = doc.get("config") or {}
        self.inputs = doc.get("inputs")
        self.outputs = doc.get("outputs")   # the job's output dataset ids, when known
        self.event = doc.get("event")       # the input event that made the task, if any
        self.job = doc.get("job") or {}


class Output:
    """Writes protocol lines to stdout."""

    def __init__(self, stream):
        self._stream = stream

    def _write(self, obj):
        # ensure_ascii keeps every line valid UTF-8 whatever the data;
        # allow_nan=False because NaN is not JSON.
        self._stream.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=True,
                                      allow_nan=False))
        self._stream.write("\n")

    def row(self, dataset, partition_key, row):
        """One row (a dict) of dataset's partition partition_key."""
        if not isinstance(row, dict):
            raise TypeError("a row must be a dict")
        self._write({"type": "row", "dataset": dataset,
                     "partition_key": str(partition_key), "row": row})

    def event(self, dataset, partition_key, payload=None):
        """Announces that partition_key of dataset is ready (once per key)."""
        self._write({"type": "event", "dataset": dataset,
                     "partition_key": str(partition_key), "payload": payload or {}})

    def log(self, level, message):
        """A log line in the worker's log (debug, info, warn, error)."""
        self._write({"type": "log", "level": level, "message": str(message)})

    def _result(self, ok, result=None, error=None, retryable=True):
        line = {"type": "result", "ok": ok}
        if ok:
            if result is not None:
                line["result"] = result
        else:
            line["error"] = error
            line["retryable"] = bool(retryable)
        self._write(line)
        self._stream.flush()


def read_task(stream=None):
    """Reads and checks the task line."""
    stream = stream or sys.stdin
    line = stream.readline()
    if not line:
        raise Fatal("no task on stdin")
    doc = json.loads(line)
    if doc.get("type") != "task" or doc.get("protocol") != PROTOCOL:
        raise Fatal("unsupported protocol %r (this SDK speaks %s)" % (doc.get("protocol"), PROTOCOL))
    return Task(doc.get("task") or {})


def run(handle):
    """Runs handle(task, out) and reports its result; exits 0 after the
    result line, whatever happened (the result says what)."""
    out = Output(sys.stdout)
    try:
        task = read_task()
        result = handle(task, out)
        out._result(True, result=result)
    except Fatal as e:
        out._result(False, error=str(e) or "fatal error", retryable=False)
    except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
        tb = traceback.format_exc(limit=5)
        sys.stderr.write(tb)
        out._result(False, error="%s: %s" % (type(e).__name__, e), retryable=True)
    sys.stdout.flush()
    sys.exit(0)
