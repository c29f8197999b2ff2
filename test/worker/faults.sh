#!/usr/bin/env bash
# trace-worker end to end, process and connection faults:
#   F3  kill -9 of a worker mid-task: another attempt completes it, once
#   F4  SIGSTOP past the lease, then SIGCONT: its late writes are rejected
#       and it abandons the task
#   F5  the worker's connections terminated while it holds a lease: it
#       reconnects, a heartbeat confirms the lease, it completes once
#   F10 PostgreSQL restarted while workers run: they reconnect, LISTEN
#       again and carry on
. "$(dirname "$0")/lib.sh"
start_cluster
fast="backoff => '100 ms', max_backoff => '200 ms'"

# --- F3: kill -9 mid-task --------------------------------------------------
job=$(make_job f3 noop ecs_platform '{}' "lease => '1500 ms', $fast")
start_worker f3a --concurrency 2 --poll-interval 200ms
tid=$(sql "SELECT trace.enqueue_task($job, '{\"sleep_ms\": 2500, \"emit\": [{\"dataset\": \"f3.out\", \"key\": \"k1\"}]}')")
wait_sql 10 "SELECT state = 'running' AND worker_id = 'f3a' FROM trace.tasks WHERE task_id = $tid" \
  && wait_sql 5 "SELECT count(*) = 1 FROM trace.events WHERE producer_task_id = $tid" \
  || not_ok "F3 task running on f3a with its event emitted"
kill -KILL "${WPID[f3a]}"; wait "${WPID[f3a]}" 2>/dev/null; unset "WPID[f3a]"
start_worker f3b --concurrency 2 --poll-interval 200ms
if wait_sql 20 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid"; then
  ok "F3 the killed worker's task is completed by another worker"
else
  not_ok "F3 the killed worker's task is completed by another worker" \
    "$(sql "SELECT state, attempt, worker_id, error FROM trace.tasks WHERE task_id = $tid")"
fi
check_eq "F3 completed once, by f3b, at attempt 2" "2|f3b" \
  "$(sql "SELECT attempt || '|' || worker_id FROM trace.tasks WHERE task_id = $tid")"
check_eq "F3 attempt 1 recorded as lease_expired" "lease_expired" \
  "$(sql "SELECT outcome FROM trace.task_attempts WHERE task_id = $tid AND attempt = 1")"
check_eq "F3 the re-emitted event is deduplicated (one row, from attempt 1)" "1|1" \
  "$(sql "SELECT count(*) || '|' || min(producer_attempt) FROM trace.events WHERE producer_task_id = $tid")"
stop_worker f3b

# --- F4: SIGSTOP past the lease, SIGCONT -----------------------------------
job=$(make_job f4 noop ecs_platform '{}' "lease => '1 s', $fast")
start_worker f4a --poll-interval 200ms
tid=$(sql "SELECT trace.enqueue_task($job, '{\"sleep_ms\": 2500, \"emit_after\": [{\"dataset\": \"f4.out\", \"key\": \"late\"}]}')")
wait_sql 10 "SELECT state = 'running' AND worker_id = 'f4a' FROM trace.tasks WHERE task_id = $tid" \
  || not_ok "F4 task running on f4a"
kill -STOP "${WPID[f4a]}"
start_worker f4b --poll-interval 200ms
# The lease expires, f4b takes attempt 2; resume f4a while f4b holds it.
wait_sql 15 "SELECT state = 'running' AND attempt = 2 AND worker_id = 'f4b' FROM trace.tasks WHERE task_id = $tid" \
  || not_ok "F4 attempt 2 running on f4b" "$(sql "SELECT state, attempt, worker_id FROM trace.tasks WHERE task_id = $tid")"
kill -CONT "${WPID[f4a]}"
if wait_log f4a 10 "task $tid/1: abandoned"; then
  ok "F4 the resumed worker abandons the task"
else
  not_ok "F4 the resumed worker abandons the task" "$(tail -5 "$SCRATCH/logs/f4a.log")"
fi
check_match "F4 it noticed through the fence (TR001)" "TR001" "$(grep "task $tid/1" "$SCRATCH/logs/f4a.log")"
wait_sql 15 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid"
check_eq "F4 the task completed once, by attempt 2 on f4b" "succeeded|2|f4b" \
  "$(sql "SELECT state || '|' || attempt || '|' || worker_id FROM trace.tasks WHERE task_id = $tid")"
check_eq "F4 no write of the stale attempt: the event is attempt 2's" "1|2" \
  "$(sql "SELECT count(*) || '|' || max(producer_attempt) FROM trace.events WHERE producer_task_id = $tid")"
check_eq "F4 the stale worker completed nothing" "0" \
  "$(grep -c "task $tid/1: completed" "$SCRATCH/logs/f4a.log")"
stop_worker f4a; stop_worker f4b

# --- F5: connections terminated while holding a lease ---------------------
job=$(make_job f5 noop ecs_platform '{}' "lease => '5 s', $fast")
start_worker f5 --poll-interval 200ms
tid=$(sql "SELECT trace.enqueue_task($job, '{\"sleep_ms\": 1500}')")
wait_sql 10 "SELECT state = 'running' FROM trace.tasks WHERE task_id = $tid" || not_ok "F5 task running"
killed=$(sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'tw'")
say "terminated $killed worker connections"
if wait_sql 15 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid"; then
  ok "F5 the task completes after its connections were terminated"
else
  not_ok "F5 the task completes after its connections were terminated" "$(tail -8 "$SCRATCH/logs/f5.log")"
fi
check_eq "F5 completed at attempt 1 (the lease was confirmed, not lost)" "1|f5" \
  "$(sql "SELECT attempt || '|' || worker_id FROM trace.tasks WHERE task_id = $tid")"
check_match "F5 the unknown outcome was settled by a heartbeat" \
  "a heartbeat will decide.*heartbeat answered 'ok': the lease is still ours" \
  "$(grep "task $tid/1" "$SCRATCH/logs/f5.log" | tr '\n' ' ')"
wait_sql 10 "SELECT count(*) >= 1 FROM pg_stat_activity WHERE usename = 'tw' AND query LIKE 'LISTEN%'" \
  && ok "F5 the listener is back (LISTEN again)" || not_ok "F5 the listener is back"
stop_worker f5

# --- F10: PostgreSQL restart while workers run -----------------------------
job=$(make_job f10 noop ecs_platform '{}' "lease => '3 s', $fast")
for w in r1 r2 r3; do start_worker "$w" --concurrency 3 --poll-interval 30s --reconnect-max 500ms; done
sql "SELECT count(*) FROM trace.enqueue_tasks($job, ARRAY(SELECT '{\"sleep_ms\": 20}'::jsonb FROM generate_series(1, 600)))" >/dev/null
wait_sql 30 "SELECT count(*) >= 100 FROM trace.tasks WHERE job_id = $job AND state = 'succeeded'" \
  || not_ok "F10 work under way before the restart"
pg_restart && say "restarted PostgreSQL"
if wait_sql 60 "SELECT count(*) = 600 FROM trace.tasks WHERE job_id = $job AND state = 'succeeded'"; then
  ok "F10 all 600 tasks succeed across the restart"
else
  not_ok "F10 all 600 tasks succeed across the restart" \
    "$(sql "SELECT state, count(*) FROM trace.tasks WHERE job_id = $job GROUP BY 1")"
fi
check_eq "F10 every worker reconnected" "3" \
  "$(grep -l 'connection re-established' "$SCRATCH"/logs/r[123].log | wc -l)"
# LISTEN again: a new task is picked up long before the 30 s poll.
wait_sql 10 "SELECT count(*) >= 3 FROM pg_stat_activity WHERE usename = 'tw' AND query LIKE 'LISTEN%'"
t0=$(date +%s%N)
tid=$(sql "SELECT trace.enqueue_task($job)")
if wait_sql 5 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid"; then
  ok "F10 workers LISTEN again after the restart ($(( ($(date +%s%N) - t0) / 1000000 )) ms to done)"
else
  not_ok "F10 workers LISTEN again after the restart"
fi
for w in r1 r2 r3; do stop_worker "$w"; done
check_eq "no zombie children left" "0" "$(worker_zombies)"
check_eq "no log line carries the conninfo password" "0" \
  "$(cat "$SCRATCH"/logs/*.log | grep -c -- "$SECRET_MARKER")"
finish
