#!/usr/bin/env bash
# trace-worker end to end, control: cancellation of a running task, drain
# on SIGTERM within a bound, SIGINT twice, SIGHUP reload of the config
# file, JSON log lines.
. "$(dirname "$0")/lib.sh"
start_cluster
fast="backoff => '100 ms', max_backoff => '200 ms'"

# --- cancellation of a running task ---------------------------------------
job=$(make_job cancel noop ecs_platform '{}' "lease => '1500 ms', $fast")
start_worker c1 --poll-interval 200ms
tid=$(sql "SELECT trace.enqueue_task($job, '{\"sleep_ms\": 30000}')")
wait_sql 10 "SELECT state = 'running' FROM trace.tasks WHERE task_id = $tid" || not_ok "cancel: task running"
check_eq "cancel_task on a running task answers canceling" "canceling" "$(sql "SELECT trace.cancel_task($tid)")"
t0=$(date +%s%N)
if wait_sql 5 "SELECT state = 'canceled' FROM trace.tasks WHERE task_id = $tid"; then
  ok "the worker stops the operator and gives the task up ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
else
  not_ok "the worker stops the operator and gives the task up" "$(tail -5 "$SCRATCH/logs/c1.log")"
fi
check_eq "canceled at attempt 1 with error 'canceled'" "1|canceled" \
  "$(sql "SELECT attempt || '|' || error FROM trace.tasks WHERE task_id = $tid")"
check_match "the worker logged the cancel" "cancel requested.*gave the task up: canceled" \
  "$(grep "task $tid/1" "$SCRATCH/logs/c1.log" | tr '\n' ' ')"
# The worker is free again: a new task runs.
tid2=$(sql "SELECT trace.enqueue_task($job)")
wait_sql 5 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid2" \
  && ok "the slot is free again after a cancel" || not_ok "the slot is free again after a cancel"
stop_worker c1

# --- drain on SIGTERM -------------------------------------------------------
job=$(make_job drain noop ecs_platform '{}' "lease => '5 s', $fast")
start_worker d1 --concurrency 2 --poll-interval 200ms --drain-timeout 2s
short=$(sql "SELECT trace.enqueue_task($job, '{\"sleep_ms\": 800}')")
long=$(sql "SELECT trace.enqueue_task($job, '{\"sleep_ms\": 60000}')")
wait_sql 10 "SELECT count(*) = 2 FROM trace.tasks WHERE task_id IN ($short, $long) AND state = 'running'" \
  || not_ok "drain: both tasks running"
pid=${WPID[d1]}
t0=$(date +%s%N)
kill -TERM "$pid"
late=$(sql "SELECT trace.enqueue_task($job)")
if wait_exit "$pid" 10; then
  wait "$pid"; rc=$?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  check "SIGTERM: exits within drain_timeout + 2 s (took ${ms} ms)" test "$ms" -lt 4000
  check_eq "SIGTERM: exit code 0" "0" "$rc"
else
  not_ok "SIGTERM: the worker exits"
fi
unset "WPID[d1]"
check_eq "drain: the short task finished" "succeeded" \
  "$(sql "SELECT state FROM trace.tasks WHERE task_id = $short")"
check_match "drain: the long task was given back for a retry" \
  "^(scheduled|queued)\|1\|trace-worker shutting down" \
  "$(sql "SELECT t.state || '|' || a.attempt || '|' || a.error FROM trace.tasks t
          JOIN trace.task_attempts a USING (task_id) WHERE task_id = $long")"
check_eq "drain: nothing new was claimed after SIGTERM" "queued" \
  "$(sql "SELECT state FROM trace.tasks WHERE task_id = $late")"
sql "SELECT trace.cancel_task($long), trace.cancel_task($late)" >/dev/null

# --- SIGINT twice: exit now -------------------------------------------------
job=$(make_job sigint noop ecs_platform '{}' "lease => '1 s', $fast")
start_worker i1 --poll-interval 200ms
tid=$(sql "SELECT trace.enqueue_task($job, '{\"sleep_ms\": 60000}')")
wait_sql 10 "SELECT state = 'running' FROM trace.tasks WHERE task_id = $tid" || not_ok "sigint: task running"
pid=${WPID[i1]}
kill -INT "$pid"
wait_log i1 5 "SIGINT: draining" || not_ok "the first SIGINT drains"
t0=$(date +%s%N)
kill -INT "$pid"
if wait_exit "$pid" 3; then
  wait "$pid"; rc=$?
  ok "a second SIGINT exits now ($(( ($(date +%s%N) - t0) / 1000000 )) ms, code $rc)"
else
  not_ok "a second SIGINT exits now"
fi
unset "WPID[i1]"
wait_sql 10 "SELECT state <> 'running' OR attempt > 1 FROM trace.tasks WHERE task_id = $tid" \
  && ok "its lease then expires and the task is retried" || not_ok "its lease then expires"
sql "SELECT trace.cancel_task($tid)" >/dev/null

# --- config file, SIGHUP reload, JSON logs ----------------------------------
conf=$SCRATCH/worker.conf
cat >"$conf" <<CONF
# a test config
conninfo = '$CONNINFO'
log_level = info
log_format = json
poll_interval = 200ms
concurrency = 2
CONF
TRACE_CONNINFO= "$WORKER" --config "$conf" --worker-id h1 --udf-dir "$SCRATCH" \
  >>"$SCRATCH/logs/h1.log" 2>&1 &
WPID[h1]=$!
wait_log h1 10 '"msg":"trace-worker .* started' && ok "started from a config file" \
  || not_ok "started from a config file" "$(head -3 "$SCRATCH/logs/h1.log")"
check_eq "log_format = json: every line is a JSON object" "0" \
  "$(python3 -c 'import json,sys
bad=0
for l in open(sys.argv[1]):
    try: json.loads(l)["msg"]
    except Exception: bad+=1
print(bad)' "$SCRATCH/logs/h1.log")"
job=$(make_job hup noop ecs_platform '{}')
tid=$(sql "SELECT trace.enqueue_task($job)")
wait_sql 5 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid" \
  && ok "a worker configured by file runs tasks" || not_ok "a worker configured by file runs tasks"
sed -i 's/^log_level = info/log_level = debug/; s/^concurrency = 2/concurrency = 3/' "$conf"
kill -HUP "${WPID[h1]}"
wait_log h1 5 'reloaded' && ok "SIGHUP reloads the file" || not_ok "SIGHUP reloads the file"
check_match "a restart-only change is refused with a warning" "concurrency cannot change without a restart" \
  "$(cat "$SCRATCH/logs/h1.log")"
tid=$(sql "SELECT trace.enqueue_task($job)")
wait_sql 5 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid"
check_match "the new log level applies (debug lines appear)" '"level":"debug"' "$(cat "$SCRATCH/logs/h1.log")"
echo 'log_level = loud' >>"$conf"
kill -HUP "${WPID[h1]}"
wait_log h1 5 'reload failed' && ok "a bad file on reload keeps the running settings" \
  || not_ok "a bad file on reload keeps the running settings"
tid=$(sql "SELECT trace.enqueue_task($job)")
wait_sql 5 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid" \
  && ok "still working after a failed reload" || not_ok "still working after a failed reload"
stop_worker h1
check_eq "no log line carries the conninfo password" "0" \
  "$(cat "$SCRATCH"/logs/*.log | grep -c -- "$SECRET_MARKER")"
check_match "--check-config masks the conninfo" "^conninfo = '\*\*\*\*\*\*\*\*'" \
  "$(TRACE_CONNINFO="$CONNINFO" "$WORKER" --check-config | grep '^conninfo')"
finish
