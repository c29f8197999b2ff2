#!/usr/bin/env bash
# kill -9 of the worker running block_follower while it catches up (four
# times), inside its write transaction (after the COPY, before the COMMIT)
# and while it follows a reorg (TESTING.md F3 for a source): each time
# another attempt of the same run resumes from what committed.  At the end: no gap, no duplicate (the tables equal a
# fresh index), each final block emitted once, integrity clean.
. "$(dirname "$0")/../worker/lib.sh"
. "$(dirname "$0")/lib.sh"
start_cluster
chain_start faults                      # a slow RPC path, so kills land mid-batch
CONFIRMATIONS=3
BATCH=5
LEASE=2s
chain traffic 200 3
read -r chain_head _ < <(chain head)
chain_dag kn
rpc_delay 40

n=0
chain_worker "k$n"
last=-1
for round in 1 2 3 4; do
  target=$((last + 8 + RANDOM % 6))
  [ "$target" -lt "$chain_head" ] || target=$((chain_head - 1))
  if ! wait_sql 60 "SELECT coalesce((state->>'cursor')::bigint, -1) >= $target FROM trace.source_state WHERE task_id = $SRC_TASK"; then
    not_ok "round $round: the follower advanced to $target" "$(tail -5 "$SCRATCH/logs/k$n.log")"
    break
  fi
  sleep "0.$((RANDOM % 10))"
  kill -KILL "${WPID[k$n]}"; wait "${WPID[k$n]}" 2>/dev/null; unset "WPID[k$n]"
  last=$(source_state cursor)
  say "round $round: killed k$n at cursor $last"
  n=$((n + 1))
  chain_worker "k$n"
done
if wait_sql 20 "SELECT count(*) = 4 FROM trace.task_attempts WHERE task_id = $SRC_TASK AND outcome = 'lease_expired'"; then
  ok "four kill -9s: each a lease_expired attempt of the same run"
else
  not_ok "four kill -9s: each a lease_expired attempt of the same run" \
    "$(sql "SELECT attempt, outcome FROM trace.task_attempts WHERE task_id = $SRC_TASK")"
fi

# kill -9 inside the writing transaction: after its COPY, before its COMMIT.
# A session holding a lock on trace.source_state parks the transaction at
# trace.save_source_state; the worker is killed while it waits there.
rpc_delay 0
chain traffic 8 3
psql_hold() {
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT_T" -U postgres -d "$TEST_DB" \
    -c "BEGIN" -c "LOCK TABLE trace.source_state IN SHARE ROW EXCLUSIVE MODE" \
    -c "SELECT pg_sleep(4)" -c "ROLLBACK" >/dev/null 2>&1
}
psql_hold &
hold=$!
if wait_sql 10 "SELECT count(*) > 0 FROM pg_stat_activity WHERE usename = 'tw' AND wait_event_type = 'Lock'
                AND query LIKE '%save_source_state%'"; then
  copied=$(sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                WHERE a.usename = 'tw' AND a.query LIKE '%save_source_state%' AND l.mode = 'RowExclusiveLock'
                  AND l.relation::regclass::text LIKE 'trace_data.%'")
  kill -KILL "${WPID[k$n]}"; wait "${WPID[k$n]}" 2>/dev/null; unset "WPID[k$n]"
  check_match "killed inside the write: it had COPYed into the chain tables" "^[1-9]" "$copied"
else
  not_ok "the write transaction parked at save_source_state"
fi
wait "$hold"
n=$((n + 1))
chain_worker "k$n"
if wait_synced 90; then ok "after the kills the run caught up with the head"; else
  not_ok "after the kills the run caught up with the head" "$(tail -5 "$SCRATCH/logs/k$n.log")"; fi
compare_index "after five kill -9s" kn
check_events "after five kill -9s" kn

# kill -9 while it follows a reorg.
before=$(reorg_count)
rpc_delay 150
SEED=4 chain reorg 6 4
sleep 0.6
kill -KILL "${WPID[k$n]}"; wait "${WPID[k$n]}" 2>/dev/null; unset "WPID[k$n]"
rpc_delay 0
n=$((n + 1))
chain_worker "k$n"
if wait_synced 60 && wait_sql 5 "SELECT count(*) > $before FROM trace.reorg WHERE task_id = $SRC_TASK"; then
  ok "killed while following a reorg: the next attempt followed it"
else
  not_ok "killed while following a reorg: the next attempt followed it" "$(tail -5 "$SCRATCH/logs/k$n.log")"
fi
check_eq "the reorg is recorded once" "1" \
  "$(sql "SELECT count(*) FROM trace.reorg WHERE task_id = $SRC_TASK")"
chain mine 4
wait_synced 30 || not_ok "synced at the end"
check_all "after kill -9 during a reorg" kn
check_eq "one producer for every attempt: events of several attempts, all keyed to the run" "t" \
  "$(sql "SELECT count(DISTINCT producer_attempt) > 1 FROM trace.events WHERE producer_task_id = $SRC_TASK")"
stop_worker "k$n"
finish
