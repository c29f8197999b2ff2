#!/usr/bin/env bash
# block_follower through reorgs (TESTING.md F18), one follower on one chain:
# depth 1, depth 5 (deeper than the confirmations: final blocks are
# retracted), depth 64 (= max_reorg_depth), and two reorgs back to back.
# After each: the tables equal a fresh index of the canonical chain, and
# the reorg is recorded with its depth and fork block.  At the end: rows,
# events and integrity_check.
. "$(dirname "$0")/../worker/lib.sh"
. "$(dirname "$0")/lib.sh"
start_cluster
chain_start
CONFIRMATIONS=3
chain traffic 90 4                       # blocks 2..91 (block 1 deployed the contracts)
chain_dag rg
chain_worker w1 --log-level debug
if wait_synced 60; then ok "initial sync to the head"; else
  not_ok "initial sync to the head" "$(grep -v DEBUG "$SCRATCH/logs/w1.log" | tail -5)"; fi
compare_index "before any reorg" rg

# reorg DEPTH TXS LABEL: replace the last DEPTH blocks, wait, compare.
reorg_case() {
  local depth=$1 txs=$2 label=$3 before head
  before=$(reorg_count)
  read -r head _ < <(chain head)
  # anvil_reorg is not atomic as seen from outside: a poll in the middle of
  # one would follow it in two steps (fewer new hashes than the depth).  The
  # follower is paused while the node reorganizes (well within its lease).
  kill -STOP "${WPID[w1]}"
  SEED=$RANDOM chain reorg "$depth" "$txs"
  kill -CONT "${WPID[w1]}"
  if wait_synced 30 && wait_sql 5 "SELECT count(*) > $before FROM trace.reorg WHERE task_id = $SRC_TASK"; then
    ok "$label: followed"
  else
    not_ok "$label: followed" "$(grep -v DEBUG "$SCRATCH/logs/w1.log" | tail -5)"
  fi
  check_eq "$label: recorded with its depth, fork block and hashes" \
    "$depth|$((head - depth + 1))|$depth|$depth" \
    "$(sql "SELECT depth || '|' || fork_block || '|' || cardinality(old_hashes) || '|' || cardinality(new_hashes)
            FROM trace.reorg WHERE task_id = $SRC_TASK ORDER BY reorg_id DESC LIMIT 1")"
  compare_index "$label" rg
}

reorg_case 1 2 "reorg depth 1"
retracted_before=$(sql "SELECT count(*) FROM trace.events WHERE producer_task_id = $SRC_TASK AND partition_key LIKE '%:retracted'")
check_eq "reorg depth 1 (< confirmations): nothing final was retracted" "0" "$retracted_before"

reorg_case 5 6 "reorg depth 5"
check_eq "reorg depth 5 (> confirmations 3): the two orphaned final blocks were retracted" "2" \
  "$(sql "SELECT count(*) FROM trace.events WHERE producer_task_id = $SRC_TASK AND partition_key LIKE '%:retracted'")"
check_eq "reorg depth 5: each retraction names an orphaned hash" "0" \
  "$(sql "SELECT count(*) FROM trace.events e WHERE e.producer_task_id = $SRC_TASK AND e.partition_key LIKE '%:retracted'
          AND NOT EXISTS (SELECT 1 FROM trace.reorg r WHERE r.task_id = $SRC_TASK
                          AND split_part(e.partition_key, ':', 2) = ANY (r.old_hashes))")"
check_match "reorg depth 5: logged loudly" "reorg followed: blocks [0-9]+\.\.[0-9]+ orphaned \(depth 5" \
  "$(grep 'reorg followed' "$SCRATCH/logs/w1.log" | tail -1)"

chain traffic 5 3                         # new blocks on top, then the deepest allowed reorg
wait_synced 30 || not_ok "synced before the depth-64 reorg"
reorg_case 64 20 "reorg depth 64 (max_reorg_depth)"

# Two reorgs back to back, with blocks in between, without waiting.
before=$(reorg_count)
SEED=11 chain reorg 3 2
chain traffic 2 2
SEED=12 chain reorg 4 3
if wait_synced 30 && wait_sql 5 "SELECT count(*) > $before FROM trace.reorg WHERE task_id = $SRC_TASK"; then
  ok "two reorgs back to back: followed"
else
  not_ok "two reorgs back to back: followed" "$(grep -v DEBUG "$SCRATCH/logs/w1.log" | tail -5)"
fi
compare_index "two reorgs back to back" rg

# More blocks so that everything is final, then the full check.
chain traffic 3 2
chain mine 4
wait_synced 30 || not_ok "synced at the end"
check_all "after all reorgs" rg
check_eq "the source is still running on its first attempt" "running|1" \
  "$(sql "SELECT state || '|' || attempt FROM trace.tasks WHERE task_id = $SRC_TASK")"
check_eq "the aggregator took every event without failing" "0" \
  "$(sql "SELECT count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
          WHERE j.dag = 'rg' AND j.name = 'ranges' AND t.state = 'failed'")"
stop_worker w1
finish
