# F6: the UDF writes a line that is not the protocol (line 2).
import sys

sys.stdin.readline()
print('{"type":"log","level":"info","message":"fine so far"}')
print("this is not JSON")
print('{"type":"result","ok":true}')
