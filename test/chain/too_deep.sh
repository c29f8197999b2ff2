#!/usr/bin/env bash
# A reorg deeper than max_reorg_depth (TESTING.md F18): the source halts
# loudly (failed for good, NOTIFY trace_task_failed with the reason) and
# rewrites nothing: no row deleted, no reorg recorded, no retraction, the
# cursor where it was.  trace.restart_source runs the same run again; it
# re-verifies against the node first and, the node still being on the
# other branch, halts again rather than rewrite.
. "$(dirname "$0")/../worker/lib.sh"
. "$(dirname "$0")/lib.sh"
start_cluster
chain_start
CONFIRMATIONS=2
MAX_DEPTH=8
chain traffic 30 3
chain_dag td
chain_worker w1
wait_synced 60 || not_ok "initial sync" "$(tail -5 "$SCRATCH/logs/w1.log")"
compare_index "before the deep reorg" td
cursor=$(source_state cursor)
emitted=$(source_state emitted)
db_index td 0 "$cursor" >"$SCRATCH/before.txt"
events_before=$(sql "SELECT count(*) FROM trace.events WHERE producer_task_id = $SRC_TASK")

listen_start trace_task_failed 60
SEED=3 chain reorg 12 4                   # 12 > max_reorg_depth 8
if wait_sql 20 "SELECT state = 'failed' FROM trace.tasks WHERE task_id = $SRC_TASK"; then
  ok "a reorg deeper than max_reorg_depth halts the source"
else
  not_ok "a reorg deeper than max_reorg_depth halts the source" "$(tail -5 "$SCRATCH/logs/w1.log")"
fi
check_match "the error names the depth limit, the blocks and the way out" \
  "block_follower halted: reorg deeper than max_reorg_depth 8: none of the stored blocks $((cursor - 8))\.\.$cursor is on the node's chain any more.*nothing was rewritten.*trace.restart_source\('td', 'follow'\)" \
  "$(sql "SELECT error FROM trace.tasks WHERE task_id = $SRC_TASK")"
check_eq "failed for good on its first attempt (not retried)" "failed|1" \
  "$(sql "SELECT state || '|' || attempt FROM trace.tasks WHERE task_id = $SRC_TASK")"
if wait_notify trace_task_failed 10 "reorg deeper than max_reorg_depth.*\"task_id\": $SRC_TASK[,}]"; then
  ok "alert-able: NOTIFY trace_task_failed with the reason"
else
  not_ok "alert-able: NOTIFY trace_task_failed with the reason" "$(grep -v '^$' "$SCRATCH/notify.trace_task_failed.log")"
fi
check_match "logged as an error by the worker" "error.*block_follower halted: reorg deeper" "$(cat "$SCRATCH/logs/w1.log")"

# Nothing rewritten.
db_index td 0 "$cursor" >"$SCRATCH/after.txt"
check "nothing rewritten: the tables hold exactly the old branch" cmp -s "$SCRATCH/before.txt" "$SCRATCH/after.txt"
check_eq "nothing rewritten: no rows above the old cursor either" "$cursor" \
  "$(sql "SELECT max(block_number) FROM trace_data.\"td.blocks\"")"
check_eq "nothing rewritten: cursor and emitted where they were" "$cursor|$emitted" \
  "$(source_state cursor)|$(source_state emitted)"
check_eq "nothing rewritten: no reorg recorded, no event (no retraction)" "0|$events_before" \
  "$(reorg_count)|$(sql "SELECT count(*) FROM trace.events WHERE producer_task_id = $SRC_TASK")"

# The restart: same run, re-verified, still refused.
check_eq "trace.restart_source restarts the same run" "$SRC_TASK" \
  "$(sql "SELECT trace.restart_source('td', 'follow')")"
if wait_sql 20 "SELECT state = 'failed' AND attempt = 2 FROM trace.tasks WHERE task_id = $SRC_TASK"; then
  ok "restarted, it re-verifies and halts again: the node is still on the other branch"
else
  not_ok "restarted, it re-verifies and halts again: the node is still on the other branch" \
    "$(sql "SELECT state, attempt, error FROM trace.tasks WHERE task_id = $SRC_TASK")"
fi
db_index td 0 "$cursor" >"$SCRATCH/after2.txt"
check "still nothing rewritten after the restart" cmp -s "$SCRATCH/before.txt" "$SCRATCH/after2.txt"
check_eq "after the second halt, restart_source is available again (same run)" "$SRC_TASK" \
  "$(sql "SELECT trace.restart_source('td', 'follow')")"
stop_worker w1
finish
