#!/usr/bin/env bash
# block_follower across downtime and a node going backwards (TESTING.md F18):
#   - a reorg while the follower is stopped: found by the startup check
#     and followed on restart;
#   - the node's head goes backwards on our own chain (a syncing node):
#     the source halts, alert-ably, rewriting nothing; once the node is
#     past it again, trace.restart_source resumes the same run, which
#     re-verifies and follows the (now real) reorg.
. "$(dirname "$0")/../worker/lib.sh"
. "$(dirname "$0")/lib.sh"
start_cluster
chain_start
CONFIRMATIONS=3
chain traffic 40 3
chain_dag dt
chain_worker w1 --drain-timeout 1s
wait_synced 60 || not_ok "initial sync" "$(tail -5 "$SCRATCH/logs/w1.log")"
compare_index "before the downtime" dt

# --- a reorg while the follower is stopped ---------------------------------
read -r head_before _ < <(chain head)
stop_worker w1
wait_sql 10 "SELECT state <> 'running' FROM trace.tasks WHERE task_id = $SRC_TASK" \
  || not_ok "the stopped worker gave the source back"
SEED=5 chain reorg 7 6
chain traffic 5 3
chain_worker w2 --drain-timeout 1s
if wait_synced 60; then ok "restarted after a reorg during downtime: synced"; else
  not_ok "restarted after a reorg during downtime: synced" "$(tail -5 "$SCRATCH/logs/w2.log")"; fi
check_eq "the reorg found on restart is recorded (depth 7, fork block)" "7|$((head_before - 6))" \
  "$(sql "SELECT depth || '|' || fork_block FROM trace.reorg WHERE task_id = $SRC_TASK ORDER BY reorg_id DESC LIMIT 1")"
check_match "the startup check saw it" "startup check: the node.s block [0-9]+ differs" \
  "$(cat "$SCRATCH/logs/w2.log")"
compare_index "after a reorg during downtime" dt
check_events "after a reorg during downtime" dt

# --- the head goes backwards on our chain -----------------------------------
listen_start trace_task_failed 60
snap=$(chain snapshot)
chain traffic 6 2
wait_synced 30 || not_ok "synced before the head goes backwards"
chain index 0 "$(source_state cursor)" >"$SCRATCH/before-backwards.txt"
cursor_before=$(source_state cursor)
chain revert "$snap" >/dev/null               # the node is now 6 blocks behind us, same chain
if wait_sql 20 "SELECT state = 'failed' FROM trace.tasks WHERE task_id = $SRC_TASK"; then
  ok "a head going backwards halts the source"
else
  not_ok "a head going backwards halts the source" "$(tail -5 "$SCRATCH/logs/w2.log")"
fi
check_match "the halt says why and how to restart" \
  "block_follower halted: the node's head went backwards: it is at block [0-9]+ on our chain, below our stored block $cursor_before.*nothing was rewritten.*trace.restart_source\('dt', 'follow'\)" \
  "$(sql "SELECT error FROM trace.tasks WHERE task_id = $SRC_TASK")"
if wait_notify trace_task_failed 10 "head went backwards.*\"task_id\": $SRC_TASK[,}]"; then
  ok "the halt is alert-able: NOTIFY trace_task_failed with the reason"
else
  not_ok "the halt is alert-able: NOTIFY trace_task_failed with the reason" "$(grep -v '^$' "$SCRATCH/notify.trace_task_failed.log")"
fi
db_index dt 0 "$cursor_before" >"$SCRATCH/after-backwards.txt"
check "nothing was rewritten: the tables still hold the chain as it was" \
  cmp -s "$SCRATCH/before-backwards.txt" "$SCRATCH/after-backwards.txt"
check_eq "the saved cursor did not move" "$cursor_before" "$(source_state cursor)"

# The node moves past us on a new branch; the operator restarts the source.
SEED=9 chain traffic 10 2
check_eq "trace.restart_source restarts the same run" "$SRC_TASK" \
  "$(sql "SELECT trace.restart_source('dt', 'follow')")"
if wait_synced 60; then ok "the restarted source follows the new branch"; else
  not_ok "the restarted source follows the new branch" "$(tail -5 "$SCRATCH/logs/w2.log")"; fi
check_eq "the reorg it followed on restart: depth 6" "6" \
  "$(sql "SELECT depth FROM trace.reorg WHERE task_id = $SRC_TASK ORDER BY reorg_id DESC LIMIT 1")"
chain mine 4
wait_synced 30 || not_ok "synced at the end"
check_all "after downtime and a restart" dt
stop_worker w2
finish
