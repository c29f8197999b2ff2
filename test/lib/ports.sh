# test/lib/ports.sh: free_port, for tests and benchmarks that start local
# servers.  Source it, then: port=$(free_port)

# A port nothing listens on, below Linux's ephemeral range (32768 up), so
# that no outgoing connection can hold it by the time a server binds it.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}
