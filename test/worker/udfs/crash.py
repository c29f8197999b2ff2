# F6: the UDF dies of a signal.
import os
import signal
import sys

sys.stdin.readline()
sys.stderr.write("about to crash\n")
sys.stderr.flush()
os.kill(os.getpid(), signal.SIGSEGV)
