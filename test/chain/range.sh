#!/usr/bin/env bash
# range_ingest: a block range backfilled in pieces, each its own fenced
# transaction that replaces exactly its rows.
#   - a range whose worker is killed (-9) half-way is retried and ends with
#     exactly the range's rows: nothing missing, nothing twice;
#   - running an overlapping range again replaces the overlap, nothing else;
#   - the tail piece of a range is as long as it needs to be (clamped to
#     the range, never dropped); config to_block clamps a manifest's range;
#   - a range reaching past the node's head fails (retryably) rather than
#     being cut short, and succeeds once the blocks exist.
. "$(dirname "$0")/../worker/lib.sh"
. "$(dirname "$0")/lib.sh"
start_cluster
chain_start faults
chain traffic 60 3                       # head 61
sql "SELECT dag_version FROM trace.deploy_dag(\$y\$
dag: ri
defaults: {retries: {max_attempts: 5, backoff: 500ms, max_backoff: 1s}, lease: 2s}
jobs:
  backfill:
    operator: range_ingest
    config: {rpc: local, chain_id: 31337, from_block: 0, to_block: 57, range_size: 5}
    outputs: [ri.blocks, ri.txs, ri.logs]
  open:
    operator: range_ingest
    config: {rpc: local, range_size: 7}
    outputs: [ro.blocks, ro.txs, ro.logs]
  integrity:
    operator: integrity_check
    inputs: [ri.blocks, ri.txs, ri.logs]
    trigger: {cron: '0 0 1 1 *'}
  integrity_open:
    operator: integrity_check
    inputs: [ro.blocks, ro.txs, ro.logs]
    trigger: {cron: '0 0 1 1 *'}
\$y\$)" >/dev/null || { echo "deploy failed"; exit 1; }
B=$(relation ri.blocks)

# --- a retried range --------------------------------------------------------
rpc_delay 250                            # slow enough to kill it half-way
chain_worker w1
tid=$(sql "SELECT trace.trigger_job('ri', 'backfill')")
if wait_sql 30 "SELECT count(*) >= 10 FROM $B"; then
  kill -KILL "${WPID[w1]}"; wait "${WPID[w1]}" 2>/dev/null; unset "WPID[w1]"
  partial=$(sql "SELECT count(*) FROM $B")
  check_match "killed half-way: some pieces committed, not all" "^(1[0-9]|[2-5][0-9])$" "$partial"
else
  not_ok "the range started" "$(tail -5 "$SCRATCH/logs/w1.log")"
fi
rpc_delay 0
chain_worker w2
if wait_sql 40 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid"; then
  ok "the retried range completed"
else
  not_ok "the retried range completed" "$(sql "SELECT state, attempt, error FROM trace.tasks WHERE task_id = $tid")"
fi
check_eq "on its second attempt, the first lost to the kill" "2|lease_expired" \
  "$(sql "SELECT t.attempt || '|' || a.outcome FROM trace.tasks t JOIN trace.task_attempts a USING (task_id)
          WHERE t.task_id = $tid AND a.attempt = 1")"
compare_index "retried range 0..57" ri 0 57
check_eq "config to_block 57: nothing past it, the tail piece 55..57 kept" "0|57|58" \
  "$(sql "SELECT count(*) FILTER (WHERE block_number > 57) || '|' || max(block_number) || '|' || count(*) FROM $B")"
check_rows "retried range" ri "$tid"
check_eq "one event for the range: key 0-58, with its counts" \
  "0-58|58|$(grep -c '^T' "$SCRATCH/node.retried range 0..57.txt")|$(grep -c '^L' "$SCRATCH/node.retried range 0..57.txt")" \
  "$(sql "SELECT partition_key || '|' || (payload->>'blocks') || '|' || (payload->>'transactions') || '|' || (payload->>'logs')
          FROM trace.events WHERE producer_task_id = $tid AND dataset_id = 'ri.blocks'")"

# --- the same blocks again: exactly replaced ---------------------------------
counts() { sql "SELECT (SELECT count(*) FROM $B) || '|' || (SELECT count(*) FROM $(relation ri.txs)) || '|' || (SELECT count(*) FROM $(relation ri.logs))"; }
before=$(counts)
tid2=$(sql "SELECT trace.trigger_job('ri', 'backfill', '{\"from\": 50, \"to\": 70}')")
wait_sql 30 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid2" \
  || not_ok "the overlapping range completed" "$(sql "SELECT state, error FROM trace.tasks WHERE task_id = $tid2")"
check_eq "an overlapping range run again: same row counts in all three tables" "$before" "$(counts)"
check_eq "... its rows replaced (blocks 50..57, clamped by to_block), the rest untouched" "8|50" \
  "$(sql "SELECT count(*) FILTER (WHERE producer_task_id = $tid2) || '|' || count(*) FILTER (WHERE producer_task_id = $tid) FROM $B")"
check_eq "... its event names the clamped range" "50-58" \
  "$(sql "SELECT partition_key FROM trace.events WHERE producer_task_id = $tid2")"
compare_index "after the overlapping range" ri 0 57
check_integrity "range_ingest tables" ri

# --- a range past the head: retried, never cut short -------------------------
read -r head _ < <(chain head)
to=$((head + 6))
tid3=$(sql "SELECT trace.trigger_job('ri', 'open', '{\"from\": 40, \"to\": $to}')")
if wait_sql 20 "SELECT state = 'scheduled' AND error LIKE '%not all on the node yet%' FROM trace.tasks WHERE task_id = $tid3"; then
  ok "a range past the head fails retryably"
else
  not_ok "a range past the head fails retryably" "$(sql "SELECT state, error FROM trace.tasks WHERE task_id = $tid3")"
fi
chain traffic 6 2
if wait_sql 30 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid3"; then
  ok "... and succeeds once the blocks exist"
else
  not_ok "... and succeeds once the blocks exist" "$(sql "SELECT state, error FROM trace.tasks WHERE task_id = $tid3")"
fi
compare_index "range 40..$((to - 1)) in pieces of 7 (tail of $(( (to - 40) % 7 )))" ro 40 $((to - 1))
check_eq "its event: key 40-$to" "40-$to|$((to - 40))" \
  "$(sql "SELECT partition_key || '|' || (payload->>'blocks') FROM trace.events WHERE producer_task_id = $tid3")"
check_integrity "the open range" ri integrity_open

# --- bad input ---------------------------------------------------------------
tid4=$(sql "SELECT trace.trigger_job('ri', 'open', '{\"from\": 9, \"to\": 3}')")
wait_sql 20 "SELECT state = 'failed' FROM trace.tasks WHERE task_id = $tid4"
check_match "a reversed range fails for good, with the reason" \
  "failed\|range_ingest: the payload's range must be integers 0 <= from <= to" \
  "$(sql "SELECT state || '|' || error FROM trace.tasks WHERE task_id = $tid4")"
tid5=$(sql "SELECT trace.trigger_job('ri', 'open')")
wait_sql 20 "SELECT state = 'failed' FROM trace.tasks WHERE task_id = $tid5"
check_match "no range at all fails for good, with the reason" "failed\|range_ingest: no range" \
  "$(sql "SELECT state || '|' || error FROM trace.tasks WHERE task_id = $tid5")"
stop_worker w2

# --- through the gateway's Unix socket ------------------------------------------
if [ -S "$SCRATCH/gateway.sock" ]; then
  chain_worker w3 --rpc-gateway "unix:$SCRATCH/gateway.sock"
  tid6=$(sql "SELECT trace.trigger_job('ri', 'open', '{\"from\": 0, \"to\": 10}')")
  if wait_sql 20 "SELECT state = 'succeeded' FROM trace.tasks WHERE task_id = $tid6"; then
    ok "rpc_gateway = unix:/path: a range through the gateway's Unix socket"
  else
    not_ok "rpc_gateway = unix:/path: a range through the gateway's Unix socket" \
      "$(sql "SELECT state, error FROM trace.tasks WHERE task_id = $tid6")"
  fi
  compare_index "through the Unix socket" ro 0 9
  stop_worker w3
fi
finish
