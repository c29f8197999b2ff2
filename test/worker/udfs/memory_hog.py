# The memory limit: allocate far past it.
import trace_udf


def handle(task, out):
    hog = []
    while True:
        hog.append(bytearray(16 * 1024 * 1024))


trace_udf.run(handle)
