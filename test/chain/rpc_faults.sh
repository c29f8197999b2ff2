#!/usr/bin/env bash
# block_follower against a misbehaving RPC path (TESTING.md, RPC bad input),
# with rpc_proxy.py between the worker and trace-rpc-gateway:
#   - HTTP 503 and 429 bursts, bodies that are not JSON, truncated bodies,
#     replies with the wrong ids, dropped connections: retried, never
#     stored, never fatal;
#   - a gateway outage (kill -9, then back): the follower waits and resumes;
#   - data that fails validation (a receipt missing, a parent hash that
#     does not chain): rejected, nothing stored, no reorg recorded; when it
#     persists the attempt fails with the reason and the next one resumes;
#   - a reorg while batches are fetched ahead of a write held up by a lock:
#     what was fetched from the old branch is unwound, nothing of it stays;
#   - a cancel while a request is held at the proxy ends it at once.
# At the end the tables equal a fresh index of the canonical chain.
. "$(dirname "$0")/../worker/lib.sh"
. "$(dirname "$0")/lib.sh"
start_cluster
chain_start faults
CONFIRMATIONS=2
chain traffic 10 3
chain_dag rf
chain_worker w1 --log-level debug
wait_synced 60 || not_ok "initial sync" "$(tail -5 "$SCRATCH/logs/w1.log")"

# fault_case MODE COUNT LABEL: inject, make blocks, the follower must catch up.
fault_case() {
  local before
  before=$(curl -s "$FAULTS/_stats")
  fault "$1" "$2"
  chain traffic 3 3
  if wait_synced 60; then ok "$3: caught up"; else
    not_ok "$3: caught up" "$(grep -v debug "$SCRATCH/logs/w1.log" | tail -4)"; fi
  check_match "$3: the faults were served" '"faults": [1-9]' "$(curl -s "$FAULTS/_stats")"
  fault ok 0
}
fault_case 503 6 "HTTP 503 burst"
fault_case 429 3 "HTTP 429 with Retry-After"
fault_case garbage 3 "bodies that are not JSON"
fault_case truncate 3 "truncated bodies"
fault_case wrong_ids 3 "replies with the wrong ids"
fault_case drop 3 "dropped connections"
log=$(cat "$SCRATCH/logs/w1.log")
check_match "the worker said what was wrong: HTTP 503" "answered HTTP 503: upstream unavailable" "$log"
check_match "the worker said what was wrong: HTTP 429" "answered HTTP 429" "$log"
check_match "the worker said what was wrong: not JSON" "a bad response \(the response is not valid JSON" "$log"
check_match "the worker said what was wrong: wrong ids" "answers an id that was not asked" "$log"
compare_index "after transient faults" rf
check_eq "transient faults never failed the source" "running|1" \
  "$(sql "SELECT state || '|' || attempt FROM trace.tasks WHERE task_id = $SRC_TASK")"

# --- a gateway outage ---------------------------------------------------------
if [ -n "${EXTRA_PID[gateway]:-}" ]; then
  stop_gateway
  chain traffic 3 2
  if wait_log w1 20 "rpc gateway \(provider local\) answered HTTP 502.*retrying"; then
    ok "gateway down: the follower notices and keeps retrying"
  else
    not_ok "gateway down: the follower notices and keeps retrying" "$(tail -3 "$SCRATCH/logs/w1.log")"
  fi
  start_gateway
  if wait_synced 60; then ok "gateway back: the follower resumes"; else
    not_ok "gateway back: the follower resumes" "$(tail -3 "$SCRATCH/logs/w1.log")"; fi
  check_eq "an outage never failed the source" "running|1" \
    "$(sql "SELECT state || '|' || attempt FROM trace.tasks WHERE task_id = $SRC_TASK")"
fi

# --- data that fails validation -------------------------------------------------
fault bad_parent 2
chain traffic 4 3
if wait_synced 60; then ok "a parent hash that does not chain: rejected, then caught up"; else
  not_ok "a parent hash that does not chain: rejected, then caught up" "$(tail -3 "$SCRATCH/logs/w1.log")"; fi
check_eq "... and no reorg was recorded for it" "0" "$(reorg_count)"
fault drop_receipt 2
chain traffic 3 3
if wait_synced 60; then ok "a missing receipt: rejected, then caught up"; else
  not_ok "a missing receipt: rejected, then caught up" "$(tail -3 "$SCRATCH/logs/w1.log")"; fi
check_match "... logged as rejected, nothing stored" \
  "rejected what the node returned, nothing stored \(1 of 5\): block [0-9]+ lists [0-9]+ transactions but [0-9]+ receipts came back" \
  "$(cat "$SCRATCH/logs/w1.log")"
compare_index "after rejected data" rf

fault drop_receipt 7
chain traffic 3 3
if wait_sql 30 "SELECT count(*) = 1 FROM trace.task_attempts WHERE task_id = $SRC_TASK AND outcome = 'failed'"; then
  ok "persistently bad data fails the attempt (retryable)"
else
  not_ok "persistently bad data fails the attempt (retryable)" "$(tail -3 "$SCRATCH/logs/w1.log")"
fi
check_match "... with the reason" \
  "the node's data failed validation 5 times in a row, nothing was stored: block [0-9]+ lists" \
  "$(sql "SELECT error FROM trace.task_attempts WHERE task_id = $SRC_TASK AND outcome = 'failed'")"
if wait_synced 60; then ok "... and the next attempt resumes once the data is good"; else
  not_ok "... and the next attempt resumes once the data is good" "$(tail -3 "$SCRATCH/logs/w1.log")"; fi
# --- a provider without eth_getBlockReceipts -------------------------------------
fault no_block_receipts 100000
chain traffic 4 4
if wait_synced 60; then ok "without eth_getBlockReceipts: receipts one transaction at a time"; else
  not_ok "without eth_getBlockReceipts: receipts one transaction at a time" "$(tail -3 "$SCRATCH/logs/w1.log")"; fi
check_match "... and it said so" "eth_getBlockReceipts is not available .*: fetching receipts one transaction at a time" \
  "$(cat "$SCRATCH/logs/w1.log")"
compare_index "receipts per transaction" rf
fault ok 0

# --- a reorg under batches fetched ahead -------------------------------------------
# The follower 60 blocks behind; its first write held up by a lock on its
# blocks table, so the next batches are fetched ahead (from the old
# branch) while it waits; then the node replaces the last 30 blocks and the
# lock goes.  The batches fetched ahead must not leave anything of the old
# branch behind: stored, then unwound as one reorg, or discarded.
stop_worker w1
chain traffic 60 1
last_reorg=$(sql "SELECT coalesce(max(reorg_id), 0) FROM trace.reorg")
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PGPORT_T" -U postgres -d "$TEST_DB" \
  -c "BEGIN; LOCK TABLE trace_data.\"rf.blocks\" IN EXCLUSIVE MODE; SELECT pg_sleep(60)" \
  >/dev/null 2>&1 &
locker=$!
wait_sql 10 "SELECT count(*) > 0 FROM pg_locks WHERE relation = 'trace_data.\"rf.blocks\"'::regclass AND mode = 'ExclusiveLock' AND granted"
chain_worker w1 --log-level debug
if wait_sql 30 "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'COPY trace_data%'"; then
  ok "reorg under batches fetched ahead: the first write waits for the lock"
else
  not_ok "reorg under batches fetched ahead: the first write waits for the lock" "$(tail -3 "$SCRATCH/logs/w1.log")"
fi
sleep 1                                   # the batches after it are fetched meanwhile
read -r head_before _ < <(chain head)
SEED=21 chain reorg 30 4
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$locker" 2>/dev/null
if wait_synced 60; then ok "reorg under batches fetched ahead: caught up"; else
  not_ok "reorg under batches fetched ahead: caught up" "$(grep -v DEBUG "$SCRATCH/logs/w1.log" | tail -4)"; fi
check_eq "... what was stored of the old branch was unwound as one reorg, forking where the node's did" \
  "1|$((head_before - 29))|t" \
  "$(sql "SELECT count(*) || '|' || max(fork_block) || '|' || bool_and(depth BETWEEN 1 AND 30)::text::char
          FROM trace.reorg WHERE task_id = $SRC_TASK AND reorg_id > $last_reorg")"
compare_index "reorg under batches fetched ahead" rf
check_eq "... and nothing from the old branch is left: the stored hashes chain" "0" \
  "$(sql "SELECT count(*) FROM trace_data.\"rf.blocks\" b JOIN trace_data.\"rf.blocks\" p
          ON p.chain_id = b.chain_id AND p.block_number = b.block_number - 1 WHERE p.block_hash <> b.parent_hash")"

chain mine 3
wait_synced 30 || not_ok "synced at the end"
check_all "after bad RPC answers" rf

# --- a cancel while a request is in flight -----------------------------------------
# The proxy now holds every request for 60 s.  A stop must not wait for the
# request in flight (libcurl's progress callback asks should_stop): the
# cancel reaches the worker with its next heartbeat and the request ends.
rpc_delay 60000
chain mine 1
sleep 2                                   # the follower's next poll is held at the proxy
sql "SELECT trace.cancel_task($SRC_TASK)" >/dev/null
if wait_sql 15 "SELECT state = 'canceled' FROM trace.tasks WHERE task_id = $SRC_TASK"; then
  ok "a cancel while a request is held 60 s at the proxy: the task ends canceled"
else
  not_ok "a cancel while a request is held 60 s at the proxy: the task ends canceled" \
    "$(sql "SELECT state FROM trace.tasks WHERE task_id = $SRC_TASK"); $(tail -3 "$SCRATCH/logs/w1.log")"
fi
# the operator itself returned: a drain has nothing left to wait for
kill -TERM "${WPID[w1]}"
if wait_exit "${WPID[w1]}" 10; then ok "... and the operator returned: the worker, told to stop, exits at once"
else not_ok "... and the operator returned: the worker, told to stop, exits at once" "$(tail -3 "$SCRATCH/logs/w1.log")"; fi
rpc_delay 0
stop_worker w1
finish
