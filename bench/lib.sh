# bench/lib.sh: the private PostgreSQL cluster every benchmark runs on,
# sourced by bench/run.sh, peers.sh, dag_bench.sh and chain_bench.sh (each
# keeps its own trap, which calls bench_cluster_down).  Needs $bindir.
#
#   bench_workdir NAME            the scratch directory $work
#                                 (/tmp/trace-NAME.XXXXXX, readable by the
#                                 postgres user, its own when we are root)
#                                 and $runas, the prefix that runs a server
#                                 program as that user when we are root
#   bench_cluster FIRST_PORT [EXTRA_CONF]
#                                 a free $port from FIRST_PORT, $pgdata
#                                 initialized with the settings below plus
#                                 the lines of EXTRA_CONF, and $psql_q
#   start_cluster [pg_ctl start options]   the server log is $work/log
#   stop_cluster
#   bench_cluster_down MODE       stops it if it is up (fast | immediate)

bench_workdir() {
  if [ "$(id -u)" -eq 0 ]; then runas=(runuser -u postgres --); else runas=(); fi
  work=$(mktemp -d "/tmp/trace-$1.XXXXXX")
  chmod 755 "$work"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$work"; fi
  cluster_up=0
}

bench_cluster() {
  port=$1
  # a port nothing listens on (the socket is private anyway; this keeps the
  # shared-memory key and log lines unambiguous)
  while [ -e "/tmp/.s.PGSQL.$port" ] || [ -e "$work/.s.PGSQL.$port" ] ||
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; do
    port=$((port + 1))
  done
  pgdata=$work/data
  psql_q=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres)
  "${runas[@]}" "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust -N >/dev/null
  cat >>"$pgdata/postgresql.conf" <<EOF
# trace benchmark ($(basename "$0")): a 2-core / 24 GiB machine
listen_addresses = ''
unix_socket_directories = '$work'
port = $port
shared_preload_libraries = 'trace'
trace.database = 'postgres'
max_connections = 100
shared_buffers = 1GB
effective_cache_size = 16GB
work_mem = 16MB
maintenance_work_mem = 512MB
wal_buffers = 16MB
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min
checkpoint_completion_target = 0.9
synchronous_commit = on
random_page_cost = 1.1
jit = off
log_min_messages = warning
${2:-}
EOF
}

start_cluster() {
  "${runas[@]}" "$bindir/pg_ctl" -D "$pgdata" -l "$work/log" -w -t 60 "$@" start >/dev/null
  cluster_up=1
}

stop_cluster() {
  "${runas[@]}" "$bindir/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
  cluster_up=0
}

bench_cluster_down() {
  if [ "${cluster_up:-0}" -eq 1 ]; then
    "${runas[@]}" "$bindir/pg_ctl" -D "$pgdata" -m "$1" -w stop >/dev/null 2>&1 || true
    cluster_up=0
  fi
}
