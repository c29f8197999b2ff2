# F6: the UDF never finishes.
import sys
import time

sys.stdin.readline()
time.sleep(3600)
