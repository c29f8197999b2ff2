#!/usr/bin/env bash
# The Trace demo: a local chain followed into Postgres, live.
#
#   dags/demo/demo.sh start     start everything, deploy dags/eth_local.yaml,
#                               show progress, print a summary (make demo)
#   dags/demo/demo.sh stop      stop everything it started, by pid (make demo-stop)
#   dags/demo/demo.sh status    the progress table once
#
# What runs, all on loopback, all state under <repo>/.demo/:
#   PostgreSQL 15 with trace preloaded   .demo/pgdata, socket in .demo/run
#   anvil (a real Ethereum dev node)     mining a block a second
#   a traffic generator                  transfers and a contract that logs
#   trace-rpc-gateway                    the only way workers reach the node
#   trace-worker                         runs the follower (and UDFs)
# PostgreSQL refuses to run as root: as root the cluster runs as the
# `postgres` user, which is given traverse permission on the checkout's
# parent directories (an ACL entry for that user only) when it lacks it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEMO=$ROOT/.demo
RUN=$DEMO/run
PGDATA=$DEMO/pgdata
PGPORT=${TRACE_DEMO_PGPORT:-54329}
ANVIL_PORT=${TRACE_DEMO_ANVIL_PORT:-8546}
GATEWAY_PORT=${TRACE_DEMO_GATEWAY_PORT:-8545}
DB=trace_demo
BINDIR=$(/usr/lib/postgresql/15/bin/pg_config --bindir)
DEMO_SECONDS=${TRACE_DEMO_SECONDS:-75}

if [ "$(id -u)" -eq 0 ]; then
  PGUSER_OS=postgres
  as_pg() { runuser -u postgres -- "$@"; }
else
  PGUSER_OS=$(id -un)
  as_pg() { "$@"; }
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
psql_demo() { "$BINDIR/psql" -X -q -At -h "$RUN" -p "$PGPORT" -U postgres -d "$DB" "$@"; }

# Remembers a process we started so `stop` can end exactly it.
remember() { echo "$2" > "$RUN/$1.pid"; }

# Lets the unprivileged cluster user reach $DEMO: traverse permission on
# each parent it cannot enter, for that user only.
grant_traverse() {
  local dir=$ROOT
  [ "$PGUSER_OS" = "$(id -un)" ] && return 0
  while [ "$dir" != / ]; do
    if ! runuser -u "$PGUSER_OS" -- test -x "$dir"; then
      command -v setfacl >/dev/null || { echo "demo: $dir is closed to $PGUSER_OS and setfacl is missing" >&2; exit 1; }
      setfacl -m "u:$PGUSER_OS:x" "$dir"
    fi
    dir=$(dirname "$dir")
  done
}

start_cluster() {
  mkdir -p "$RUN"
  grant_traverse
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in $PGDATA"
    mkdir -p "$PGDATA"
    chown "$PGUSER_OS" "$PGDATA" "$RUN"
    as_pg "$BINDIR/initdb" -D "$PGDATA" -U postgres -A trust >/dev/null
    cat >> "$PGDATA/postgresql.conf" <<EOF
# trace demo
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$RUN'
shared_preload_libraries = 'trace'
trace.database = '$DB'
trace.dispatcher_interval = '200ms'
EOF
  fi
  chown "$PGUSER_OS" "$RUN"
  say "starting PostgreSQL (port $PGPORT, socket $RUN)"
  as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -l "$RUN/postgres.log" -w start >/dev/null
  # a fresh database each run: the chain is new each run too
  "$BINDIR/psql" -X -q -h "$RUN" -p "$PGPORT" -U postgres -d postgres \
    -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
  psql_demo -c "CREATE EXTENSION trace" >/dev/null
  # A login role for the workers, holding only trace_worker.
  psql_demo -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_worker') THEN
                  CREATE ROLE demo_worker LOGIN IN ROLE trace_worker; END IF; END \$\$" >/dev/null
}

stop_cluster() {
  [ -f "$PGDATA/postmaster.pid" ] || return 0
  as_pg "$BINDIR/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
}

# Stops every process we started, by the pids we recorded.
stop_processes() {
  local f pid
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

start_chain() {
  # shellcheck source=../../test/lib/anvil.sh
  source "$ROOT/test/lib/anvil.sh"
  say "installing and starting anvil (a local Ethereum node) on port $ANVIL_PORT"
  anvil_install
  ANVIL_LOG_DIR=$DEMO anvil_start "$ANVIL_PORT"
  remember anvil "$ANVIL_PID"
  # setup deploys a contract that logs and one that reverts; traffic calls them
  read -r LOGGER REVERTER < <(python3 "$ROOT/test/chain/chain.py" --rpc "http://127.0.0.1:$ANVIL_PORT" setup)
  export LOGGER REVERTER
  say "generating traffic: a block a second, transfers and calls of a contract that logs"
  (
    while true; do
      python3 "$ROOT/test/chain/chain.py" --rpc "http://127.0.0.1:$ANVIL_PORT" \
        traffic 1 $((RANDOM % 6 + 2)) >/dev/null 2>&1 || true
      sleep 1
    done
  ) >/dev/null 2>&1 &
  remember traffic $!
}

start_services() {
  say "starting trace-rpc-gateway on 127.0.0.1:$GATEWAY_PORT"
  printf '%s\n' "listen = '127.0.0.1:$GATEWAY_PORT'" \
    "provider.local.chain_id = 31337" \
    "provider.local.url = 'http://127.0.0.1:$ANVIL_PORT'" \
    "provider.local.rate_limit = 500" > "$DEMO/gateway.conf"
  "$ROOT/worker/bin/trace-rpc-gateway" -c "$DEMO/gateway.conf" >"$DEMO/gateway.log" 2>&1 &
  remember gateway $!
  say "starting trace-worker (runtimes ecs_platform, lambda)"
  TRACE_CONNINFO="host=$RUN port=$PGPORT dbname=$DB user=demo_worker" \
  TRACE_RPC_GATEWAY="http://127.0.0.1:$GATEWAY_PORT" \
  TRACE_UDF_DIR="$ROOT/dags/udfs" \
    "$ROOT/worker/bin/trace-worker" --concurrency 4 --poll-interval 1s >"$DEMO/worker.log" 2>&1 &
  remember worker $!
}

# One progress line: the node's head, the follower's cursor, rows, tasks.
progress() {
  local head
  head=$(python3 "$ROOT/test/chain/chain.py" --rpc "http://127.0.0.1:$ANVIL_PORT" head 2>/dev/null | cut -d' ' -f1)
  psql_demo -v head="${head:-0}" <<'SQL'
SELECT format('head %s | followed %s | behind %s | rows: %s blocks, %s txs, %s logs | ranges %s | tasks: %s',
              :'head', coalesce(b.top::text, '-'),
              coalesce((:'head'::bigint - b.top)::text, '-'),
              b.n, (SELECT count(*) FROM trace_data."eth.transactions"),
              (SELECT count(*) FROM trace_data."eth.logs"),
              (SELECT count(*) FROM trace_data."eth.block_ranges"),
              (SELECT string_agg(state || ' ' || n, ', ' ORDER BY state)
               FROM (SELECT state, count(*) AS n FROM trace.tasks GROUP BY state) s))
FROM (SELECT max(block_number) AS top, count(*) AS n FROM trace_data."eth.blocks") b;
SQL
}

summary() {
  echo
  say "summary"
  psql_demo <<'SQL' | sed 's/^/  /'
SELECT format('DAG %s, version %s active', dag, active_version) FROM trace.dags;
SELECT format('%-22s v%s  read it as %s', dataset_id, current_version, stable_name)
FROM trace.datasets ORDER BY 1;
SELECT format('tasks: %s', string_agg(state || ' ' || n, ', ' ORDER BY state))
FROM (SELECT state, count(*) AS n FROM trace.tasks GROUP BY state) s;
SELECT format('integrity: %s run(s); the last over blocks %s..%s: %s',
              (SELECT count(*) FROM trace.integrity_reports), from_block, to_block,
              CASE WHEN ok THEN 'clean' ELSE violations::text END)
FROM trace.integrity_reports ORDER BY report_id DESC LIMIT 1;
SELECT format('reorgs followed: %s', count(*)) FROM trace.reorg;
SQL
  echo
  echo "  Everything keeps running.  Explore the data:"
  echo "    $BINDIR/psql -h $RUN -p $PGPORT -U postgres $DB"
  echo "    SELECT * FROM trace_data.\"eth.big_transfers\";   -- the virtual SQL view"
  echo "    SELECT * FROM trace.task_counts;  SELECT * FROM trace.integrity_reports;"
  echo "  Logs: $DEMO/*.log and $RUN/postgres.log.   Stop everything: make demo-stop"
}

cmd=${1:-start}
case $cmd in
  start)
    if [ -f "$RUN/worker.pid" ] && kill -0 "$(cat "$RUN/worker.pid")" 2>/dev/null; then
      echo "the demo is already running (make demo-stop first)" >&2
      exit 1
    fi
    start_cluster
    start_chain
    start_services
    say "deploying dags/eth_local.yaml"
    psql_demo -c "SELECT format('  %s version %s: %s', dag, dag_version,
                                (SELECT string_agg((j->>'job') || ' ' || (j->>'action'), ', ')
                                 FROM jsonb_array_elements(plan->'jobs') j))
                  FROM trace.deploy_dag(pg_read_file('$ROOT/dags/eth_local.yaml'))"
    say "following the chain for ${DEMO_SECONDS}s (progress every 5 s)"
    for _ in $(seq 1 $((DEMO_SECONDS / 5))); do
      sleep 5
      echo "  $(progress)"
    done
    summary
    ;;
  status)
    progress
    ;;
  stop)
    say "stopping the demo"
    stop_processes
    stop_cluster
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
