# Escape test: a fork bomb.  RLIMIT_NPROC stops it growing, the wall-clock
# timeout kills what is left, and the pid namespace takes every process
# with it.
import os
import sys

sys.stdin.readline()
while True:
    try:
        os.fork()
    except OSError:
        pass
