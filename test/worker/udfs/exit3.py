# F6: the UDF exits non-zero without a result.
import sys

sys.stdin.readline()
sys.stderr.write("giving up with code 3\n")
sys.exit(3)
