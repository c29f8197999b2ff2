#!/usr/bin/env bash
# trace-worker behind pgbouncer in transaction mode: the task connections
# share 3 server connections (so nothing may depend on session state);
# LISTEN goes straight to PostgreSQL (listen_conninfo).  Skipped, with a
# SKIP line, when pgbouncer is not installed.
. "$(dirname "$0")/lib.sh"
PGBOUNCER=${PGBOUNCER:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}
if [ ! -x "$PGBOUNCER" ]; then
  echo "SKIP: pgbouncer not installed (apt-get install pgbouncer)"
  exit 0
fi
start_cluster
BPORT=$(free_port)
mkdir -p "$SCRATCH/bouncer"
cat >"$SCRATCH/bouncer/pgbouncer.ini" <<INI
[databases]
$TEST_DB = host=127.0.0.1 port=$PGPORT_T dbname=$TEST_DB
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BPORT
unix_socket_dir =
auth_type = trust
auth_file = $SCRATCH/bouncer/users.txt
pool_mode = transaction
default_pool_size = 3
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options
logfile = $SCRATCH/logs/pgbouncer.log
pidfile = $SCRATCH/bouncer/pgbouncer.pid
INI
printf '"tw" ""\n"postgres" ""\n' >"$SCRATCH/bouncer/users.txt"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$SCRATCH/bouncer"
# In the foreground, as our child (not -d): it is reaped when it stops.
"${AS_PG[@]}" "$PGBOUNCER" "$SCRATCH/bouncer/pgbouncer.ini" >/dev/null 2>&1 &
BOUNCER_JOB=$!
stop_bouncer() {
  [ -f "$SCRATCH/bouncer/pgbouncer.pid" ] && kill "$(cat "$SCRATCH/bouncer/pgbouncer.pid")" 2>/dev/null
  wait "$BOUNCER_JOB" 2>/dev/null
}
trap 'rc=$?; stop_bouncer; (exit $rc); cleanup' EXIT
deadline=$(( $(date +%s) + 10 ))
until "$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$BPORT" -U postgres -d "$TEST_DB" -c 'SELECT 1' >/dev/null 2>&1; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    not_ok "pgbouncer starts" "$(tail -5 "$SCRATCH/logs/pgbouncer.log" 2>/dev/null)"; finish; exit 1
  fi
  sleep 0.1
done

direct=$CONNINFO
CONNINFO="host=127.0.0.1 port=$BPORT dbname=$TEST_DB user=tw password=$SECRET_MARKER connect_timeout=5"
for w in b1 b2; do
  start_worker "$w" --concurrency 6 --poll-interval 30s --runtimes ecs_platform --listen-conninfo "$direct"
done
wait_sql 10 "SELECT count(*) >= 2 FROM pg_stat_activity WHERE usename = 'tw' AND query LIKE 'LISTEN%'" \
  && ok "LISTEN goes direct while tasks go through pgbouncer" || not_ok "LISTEN direct"
job=$(make_job bounced noop ecs_platform '{}')
sql "SELECT count(*) FROM trace.enqueue_tasks($job, ARRAY(
       SELECT jsonb_build_object('sleep_ms', i % 3, 'emit', jsonb_build_array(
                jsonb_build_object('dataset', 'bounced.out', 'key', 'k' || i)))
       FROM generate_series(1, 600) i))" >/dev/null
if wait_sql 60 "SELECT count(*) = 600 FROM trace.tasks WHERE job_id = $job AND state = 'succeeded'"; then
  ok "600 tasks with events succeed through pgbouncer (transaction mode, 3 server connections)"
else
  not_ok "600 tasks succeed through pgbouncer" \
    "$(sql "SELECT state, count(*) FROM trace.tasks WHERE job_id = $job GROUP BY 1")" \
    "$(grep -E 'warn|error' "$SCRATCH"/logs/b1.log | tail -3)"
fi
check_eq "one event per task" "600" "$(sql "SELECT count(*) FROM trace.events WHERE dataset_id = 'bounced.out'")"
check_eq "at most 3 server connections of tw besides LISTEN" "t" \
  "$(sql "SELECT count(*) <= 3 FROM pg_stat_activity WHERE usename = 'tw' AND query NOT LIKE 'LISTEN%'")"
check_eq "no error in the worker logs" "0" "$(cat "$SCRATCH"/logs/b[12].log | grep -c ' error ')"
for w in b1 b2; do stop_worker "$w"; done
finish
