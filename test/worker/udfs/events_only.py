# A UDF that succeeds with events and logs but no rows (needs no
# trace.write_rows): the full path through the database.
import trace_udf


def handle(task, out):
    for key in task.payload["keys"]:
        out.event("udf.events", key, {"key": key, "attempt": task.attempt})
    out.log("info", "emitted %d events" % len(task.payload["keys"]))
    return {"emitted": len(task.payload["keys"]), "mode": task.mode}


trace_udf.run(handle)
