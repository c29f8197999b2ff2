#!/usr/bin/env bash
# trace-worker end to end: many tasks through three workers (no loss, no
# duplicate completion), wake-ups by NOTIFY, the poll fallback when LISTEN
# is down (F11), unknown operators, poison tasks (F7), and no secret in any
# log.
. "$(dirname "$0")/lib.sh"
start_cluster
N=2000

# Three idle workers with a slow poll: only LISTEN can wake them quickly.
for w in w1 w2 w3; do
  start_worker "$w" --concurrency 4 --poll-interval 60s --runtimes ecs_platform
done
wait_log w1 10 "started" && wait_log w2 10 "started" && wait_log w3 10 "started" \
  || { not_ok "workers start" "$(cat "$SCRATCH"/logs/w1.log)"; finish; exit 1; }
# Give them a moment to LISTEN (poll the pg_stat_activity rather than sleep).
wait_sql 10 "SELECT count(*) >= 3 FROM pg_stat_activity WHERE usename = 'tw' AND query LIKE 'LISTEN%'" \
  && ok "three workers listening" || not_ok "three workers listening"

# --- wake-up: one task completes long before the 60 s poll -------------
job=$(make_job wake noop ecs_platform '{}')
t0=$(date +%s%N)
tid=$(sql "SELECT trace.enqueue_task($job)")
if wait_sql 5 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid"; then
  ok "NOTIFY wakes an idle worker ($(( ($(date +%s%N) - t0) / 1000000 )) ms to done)"
else
  not_ok "NOTIFY wakes an idle worker"
fi

# --- many tasks: half of them emit an event ------------------------------
job=$(make_job many noop ecs_platform '{}')
t0=$(date +%s%N)
sql "SELECT count(*) FROM trace.enqueue_tasks($job, ARRAY(
       SELECT CASE WHEN i % 2 = 0
                   THEN jsonb_build_object('emit', jsonb_build_array(
                          jsonb_build_object('dataset', 'many.out', 'key', 'k' || i,
                                             'payload', jsonb_build_object('i', i))))
                   ELSE jsonb_build_object('i', i) END
       FROM generate_series(1, $N) i))" >/dev/null
if wait_sql 120 "SELECT count(*) = $N FROM trace.tasks WHERE job_id = $job AND state = 'succeeded'"; then
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  ok "$N tasks succeeded through 3 workers in ${ms} ms ($(( N * 1000 / (ms + 1) )) tasks/s)"
else
  not_ok "$N tasks succeeded through 3 workers" \
    "$(sql "SELECT state, count(*) FROM trace.tasks WHERE job_id = $job GROUP BY 1")"
fi
check_eq "no task lost or left behind" "$N|0|0" \
  "$(sql "SELECT count(*), count(*) FILTER (WHERE state <> 'succeeded'),
                 (SELECT count(*) FROM trace.task WHERE job_id = $job)
          FROM trace.tasks WHERE job_id = $job")"
check_eq "every task completed at its first attempt (no retry, no expiry)" "0|0" \
  "$(sql "SELECT count(*) FILTER (WHERE attempt <> 1),
                 (SELECT count(*) FROM trace.task_attempts a JOIN trace.tasks t USING (task_id)
                  WHERE t.job_id = $job AND a.outcome <> 'succeeded')
          FROM trace.tasks WHERE job_id = $job")"
check_eq "events: one per emitting task, none duplicated" "$((N / 2))|$((N / 2))" \
  "$(sql "SELECT count(*), count(DISTINCT (producer_task_id, partition_key))
          FROM trace.events WHERE dataset_id = 'many.out'")"
# Completion reported once: the workers' own logs count each task once.
completions=$(cat "$SCRATCH"/logs/w[123].log | grep -Eo 'task [0-9]+/1: completed: succeeded' \
  | sort | uniq -c | awk '$1 > 1' | wc -l)
total=$(cat "$SCRATCH"/logs/w[123].log | grep -c 'completed: succeeded')
check_eq "no task completed twice (worker logs)" "0" "$completions"
check_eq "workers report $((N + 1)) completions in all" "$((N + 1))" "$total"
spread=$(for w in w1 w2 w3; do grep -c 'completed: succeeded' "$SCRATCH/logs/$w.log"; done | tr '\n' ' ')
check_match "the load spread over all three workers ($spread)" '^[1-9][0-9]* [1-9][0-9]* [1-9][0-9]* $' "$spread"
check_eq "worker_id recorded per task" "3" \
  "$(sql "SELECT count(DISTINCT worker_id) FROM trace.tasks WHERE job_id = $job")"

# --- unknown operator: fails at once, not retried ------------------------
job=$(make_job mystery no_such_op ecs_platform '{}')
tid=$(sql "SELECT trace.enqueue_task($job)")
wait_sql 10 "SELECT state = 'failed' FROM trace.tasks WHERE task_id = $tid"
check_match "unknown operator fails non-retryably, naming it" \
  '^failed\|1\|unknown operator "no_such_op".*built in: noop, udf' \
  "$(sql "SELECT state || '|' || attempt || '|' || error FROM trace.tasks WHERE task_id = $tid")"

# --- F7 poison: fails at every attempt, ends failed at max_attempts -------
job=$(make_job poison noop ecs_platform '{}' "max_attempts => 3, backoff => '100 ms', max_backoff => '200 ms'")
tid=$(sql "SELECT trace.enqueue_task($job, '{\"fail\": \"poisoned payload\"}')")
wait_sql 30 "SELECT state = 'failed' FROM trace.tasks WHERE task_id = $tid"
check_eq "F7 poison task ends failed at max_attempts" "failed|3|poisoned payload" \
  "$(sql "SELECT state || '|' || attempt || '|' || error FROM trace.tasks WHERE task_id = $tid")"
check_eq "F7 all three attempts recorded as failed" "3" \
  "$(sql "SELECT count(*) FROM trace.task_attempts WHERE task_id = $tid AND outcome = 'failed'")"

for w in w1 w2 w3; do stop_worker "$w"; done

# --- F11: LISTEN connection down -> the poll still finds work ------------
bad_listen="host=127.0.0.1 port=1 dbname=$TEST_DB user=tw connect_timeout=2"
start_worker pollonly --poll-interval 300ms --listen-conninfo "$bad_listen" --runtimes ecs_platform
job=$(make_job polled noop ecs_platform '{}')
tid=$(sql "SELECT trace.enqueue_task($job)")
if wait_sql 10 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid"; then
  ok "F11 without LISTEN the poll finds the task"
else
  not_ok "F11 without LISTEN the poll finds the task" "$(tail -5 "$SCRATCH/logs/pollonly.log")"
fi
stop_worker pollonly

# --- secrets: the password in the conninfo appears in no log --------------
check_eq "no log line carries the conninfo password" "0" \
  "$(cat "$SCRATCH"/logs/*.log | grep -c -- "$SECRET_MARKER")"
check_eq "workers exited on SIGTERM after draining" "0" \
  "$(grep -L 'drained: no task in flight' "$SCRATCH"/logs/w[123].log | wc -l)"
finish
