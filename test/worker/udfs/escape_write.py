# Escape test: write outside the scratch dir.  Every target must fail; a
# write that works is an escape.  Writing /scratch must work.
import os
import trace_udf


def handle(task, out):
    with open("/scratch/inside", "w") as f:
        f.write("fine")
    results = []
    for path in ["/etc/trace-escape", "/usr/trace-escape", "/udf/trace-escape",
                 "/trace-escape", task.payload["host_path"], "/proc/sys/kernel/hostname"]:
        try:
            with open(path, "w") as f:
                f.write("escaped")
            return {"escaped": path}
        except OSError as e:
            results.append("%s: %s" % (path, e.strerror))
    raise RuntimeError("no write outside scratch (%s)" % "; ".join(results))


trace_udf.run(handle)
