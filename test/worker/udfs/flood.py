# F6: the UDF floods stdout with valid lines.
import sys

sys.stdin.readline()
line = '{"type":"log","level":"debug","message":"' + "x" * 4000 + '"}\n'
while True:
    sys.stdout.write(line)
