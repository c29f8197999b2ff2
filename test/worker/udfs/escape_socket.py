# Escape test: open a TCP connection (to the test's PostgreSQL on loopback)
# and a raw IPv6 socket.  The sandbox must refuse: the exception propagates,
# so the task fails with it.  A connection would report an escape.
import socket
import trace_udf


def handle(task, out):
    s = socket.create_connection(("127.0.0.1", int(task.payload["port"])), timeout=2)
    return {"escaped": "connected to %s" % (s.getpeername(),)}


trace_udf.run(handle)
