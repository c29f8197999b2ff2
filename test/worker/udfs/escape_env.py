# Escape test: look for the worker's secrets: in our own environment, in
# every /proc/*/environ we can see, in /proc/<worker pid>/environ, and in the
# worker's config file.  Finding the marker is an escape (ok:true); not
# finding it fails the task with what was tried.
import os
import trace_udf


def handle(task, out):
    marker = task.payload["marker"]
    tried = []
    if any(marker in v for v in os.environ.values()):
        return {"escaped": "own environment"}
    tried.append("env=%s" % ",".join(sorted(os.environ)))
    for pid in [p for p in os.listdir("/proc") if p.isdigit()] + [str(task.payload["worker_pid"])]:
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                if marker.encode() in f.read():
                    return {"escaped": "/proc/%s/environ" % pid}
            tried.append("/proc/%s/environ: no marker" % pid)
        except OSError as e:
            tried.append("/proc/%s/environ: %s" % (pid, e.strerror))
    try:
        with open(task.payload["config_file"], "rb") as f:
            if marker.encode() in f.read():
                return {"escaped": "config file"}
    except OSError as e:
        tried.append("config file: %s" % e.strerror)
    raise RuntimeError("no secret visible (%s)" % "; ".join(tried))


trace_udf.run(handle)
