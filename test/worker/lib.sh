# Shared helpers for trace-worker end-to-end tests (sourced by the *.sh
# scripts beside it).
#
# Each script gets its own private PostgreSQL 15 cluster in a scratch
# directory, on a free loopback port, with shared_preload_libraries =
# 'trace', trace.database = the test database and a 100 ms dispatcher
# interval; it is stopped (and worker processes killed) on exit by a trap.
# As root the cluster runs as the `postgres` user (initdb refuses root);
# trace-worker itself runs as the invoking user (root drops UDFs to nobody).
#
# Tests print "ok - name" / "not ok - name"; the script exits non-zero when
# any failed.  Waiting is always polling with a deadline, never a bare sleep.
set -uo pipefail

TW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WORKER=${TRACE_WORKER:-$TW_ROOT/worker/bin/trace-worker}
TEST_DB=postgres              # the database the dispatcher runs in
SECRET_MARKER="tw-secret-$$-$RANDOM"   # a password that must never leak
TESTS_RUN=0
TESTS_FAILED=0
declare -A WPID=()            # worker name -> pid

if [ "$(id -u)" -eq 0 ]; then
  AS_PG=(runuser -u postgres --)
else
  AS_PG=()
fi

say() { printf '# %s\n' "$*"; }

ok() { TESTS_RUN=$((TESTS_RUN + 1)); echo "ok - $1"; }
not_ok() {
  TESTS_RUN=$((TESTS_RUN + 1)); TESTS_FAILED=$((TESTS_FAILED + 1))
  echo "not ok - $1"
  shift
  for line in "$@"; do printf '#   %s\n' "$line"; done
}
# check NAME COMMAND...: ok when the command succeeds.
check() {
  local name=$1; shift
  if "$@"; then ok "$name"; else not_ok "$name" "failed: $*"; fi
}
# check_eq NAME EXPECTED ACTUAL
check_eq() {
  if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "got:      $3"; fi
}
# check_match NAME REGEX ACTUAL
check_match() {
  if [[ "$3" =~ $2 ]]; then ok "$1"; else not_ok "$1" "expected to match: $2" "got: ${3:0:600}"; fi
}

. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"

# Starts the private cluster and creates the extension and the roles:
# tw (LOGIN, trace_worker) for workers.
start_cluster() {
  SCRATCH=$(mktemp -d /tmp/trace-wtest.XXXXXX)
  chmod 755 "$SCRATCH"
  mkdir -p "$SCRATCH/sock" "$SCRATCH/logs"
  [ "$(id -u)" -eq 0 ] && chown postgres "$SCRATCH/sock" "$SCRATCH/logs"
  PGPORT_T=$(free_port) || { echo "no free port" >&2; exit 1; }
  PGDATA_T=$SCRATCH/data
  mkdir -p "$PGDATA_T"; [ "$(id -u)" -eq 0 ] && chown postgres "$PGDATA_T"
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PGDATA_T" -A trust -U postgres --no-sync -E UTF8 \
    >"$SCRATCH/logs/initdb.log" 2>&1 || { cat "$SCRATCH/logs/initdb.log"; exit 1; }
  cat >>"$PGDATA_T/postgresql.conf" <<CONF
port = $PGPORT_T
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SCRATCH/sock'
shared_preload_libraries = 'trace'
trace.database = '$TEST_DB'
trace.dispatcher_interval = '100ms'
max_connections = 120
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
CONF
  pg_start
  sql "CREATE EXTENSION trace" >/dev/null
  sql "CREATE ROLE tw LOGIN IN ROLE trace_worker" >/dev/null
  CONNINFO="host=127.0.0.1 port=$PGPORT_T dbname=$TEST_DB user=tw password=$SECRET_MARKER connect_timeout=5"
  UDF_DIR=$SCRATCH/udfs
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

pg_start() {
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA_T" -l "$SCRATCH/logs/postgres.log" -w -t 60 start \
    >/dev/null || { tail -20 "$SCRATCH/logs/postgres.log"; exit 1; }
}

pg_restart() {
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA_T" -l "$SCRATCH/logs/postgres.log" -w -t 60 \
    -m fast restart >/dev/null
}

cleanup() {
  local rc=$?
  for name in "${!WPID[@]}"; do
    kill -CONT "${WPID[$name]}" 2>/dev/null
    kill -KILL "${WPID[$name]}" 2>/dev/null
  done
  wait 2>/dev/null
  if [ -n "${PGDATA_T:-}" ]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA_T" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ "$TESTS_FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
    echo "# kept $SCRATCH for inspection (worker logs in $SCRATCH/logs)"
  else
    [ -n "${KEEP_SCRATCH:-}" ] && echo "# kept $SCRATCH" || rm -rf "$SCRATCH"
  fi
}

# sql "STATEMENT" -> unaligned, tuples only, as the superuser.
sql() {
  "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT_T" -U postgres \
    -d "$TEST_DB" -c "$1"
}

# wait_sql SECONDS "QUERY returning t": polls every 100 ms.
wait_sql() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )) out
  while :; do
    out=$(sql "$2" 2>/dev/null)
    [ "$out" == "t" ] && return 0
    [ "$(date +%s%N)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# wait_log NAME SECONDS REGEX: polls the worker's log.
wait_log() {
  local f="$SCRATCH/logs/$1.log" deadline=$(( $(date +%s%N) + $2 * 1000000000 ))
  while :; do
    grep -Eq -- "$3" "$f" 2>/dev/null && return 0
    [ "$(date +%s%N)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# wait_exit PID SECONDS: polls until the process is gone.
wait_exit() {
  local deadline=$(( $(date +%s%N) + $2 * 1000000000 ))
  while kill -0 "$1" 2>/dev/null; do
    [ "$(date +%s%N)" -ge "$deadline" ] && return 1
    sleep 0.05
  done
  return 0
}

# start_worker NAME [flags...]: a trace-worker in the background, logging
# to $SCRATCH/logs/NAME.log, with worker id NAME.
start_worker() {
  local name=$1; shift
  TRACE_CONNINFO="$CONNINFO" "$WORKER" --worker-id "$name" --udf-dir "$UDF_DIR" \
    --scratch-dir "$SCRATCH" "$@" >>"$SCRATCH/logs/$name.log" 2>&1 &
  WPID[$name]=$!
}

# stop_worker NAME: SIGTERM, then wait (SIGKILL after 20 s).
stop_worker() {
  local pid=${WPID[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  wait_exit "$pid" 20 || kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "WPID[$1]"
}

# make_job NAME OPERATOR RUNTIME CONFIG [extra named args] -> job_id
make_job() {
  local extra=${5:+, $5}
  sql "SELECT trace.create_job('$1', '$2', '$3', '$4'::jsonb$extra)"
}

# Processes of the sandbox user still alive (should be none between tests).
sandbox_leftovers() { ps -eo user=,stat=,pid=,comm= | awk '$1=="nobody"' | wc -l; }
# Zombies whose parent is a trace-worker (should be none).
worker_zombies() {
  local n=0 pid
  for pid in "${WPID[@]}"; do
    n=$((n + $(ps -eo ppid=,stat= | awk -v p="$pid" '$1==p && $2 ~ /^Z/' | wc -l)))
  done
  echo "$n"
}

# Copies the UDF tree (dags/udfs + test/worker/udfs) where the sandbox user
# can read it; builds the Rust example when cargo is there.
prepare_udfs() {
  mkdir -p "$UDF_DIR"
  cp -r "$TW_ROOT/dags/udfs/." "$UDF_DIR/"
  mkdir -p "$UDF_DIR/tests"
  cp -r "$TW_ROOT/test/worker/udfs/." "$UDF_DIR/tests/"
  chmod -R a+rX "$UDF_DIR"
}

finish() {
  echo "# $TESTS_RUN tests, $TESTS_FAILED failed"
  [ "$TESTS_FAILED" -eq 0 ]
}
