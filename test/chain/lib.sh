# Shared helpers for the chain end-to-end tests (sourced by the scenario
# scripts beside it, after test/worker/lib.sh's start_cluster).
#
# chain_start [faults]: an anvil node with manual mining and the two test
# contracts (test/chain/chain.py), and the RPC path the workers use: the
# real trace-rpc-gateway when worker/bin/trace-rpc-gateway is built (set
# CHAIN_GATEWAY=proxy to leave it out).  With "faults", or without a
# gateway, test/chain/rpc_proxy.py stands in front of it (or in its place):
# a forwarder that injects faults and delays on request.  Workers get
# --rpc-gateway $GATEWAY, provider "local"; FAULTS is the stand-in's control
# URL (empty when there is none).
#
# The end of every scenario: compare_index (the chain tables equal a fresh
# index of the canonical chain, fetched straight from anvil, every column),
# check_events (the final-block events tell the same story), and
# check_integrity (the DAG's integrity_check job, triggered, reports clean).
CHAIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$CHAIN_DIR/../lib/anvil.sh"
CHAIN_PY=(python3 "$CHAIN_DIR/chain.py")
declare -A EXTRA_PID=()

chain_cleanup() {
  local rc=$? p
  for p in "${EXTRA_PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
  anvil_stop
  (exit $rc)
  cleanup
}

# chain CMD ARGS...: chain.py against the node (not through the gateway).
chain() { LOGGER=${LOGGER:-} REVERTER=${REVERTER:-} "${CHAIN_PY[@]}" --rpc "$NODE" "$@"; }

chain_start() {
  local want_faults=${1:-}
  trap chain_cleanup EXIT
  ANVIL_LOG_DIR=$SCRATCH/logs
  ANVIL_PORT=$(free_port) || { echo "no free port" >&2; exit 1; }
  anvil_start "$ANVIL_PORT" || exit 1
  NODE=http://127.0.0.1:$ANVIL_PORT/
  read -r LOGGER REVERTER < <(chain setup) || { echo "chain setup failed" >&2; exit 1; }
  export LOGGER REVERTER
  local upstream=$NODE
  GATEWAY= FAULTS= RPC_VIA=
  if [ -x "$TW_ROOT/worker/bin/trace-rpc-gateway" ] && [ "${CHAIN_GATEWAY:-gateway}" != proxy ]; then
    start_gateway
    GATEWAY=$GW_URL
    upstream=$GW_URL/rpc/local
    RPC_VIA="trace-rpc-gateway"
  fi
  if [ -z "$GATEWAY" ] || [ "$want_faults" == faults ]; then
    # the stand-in: in front of the gateway (to inject faults between it and
    # the workers), or in its place when it is not built
    local port
    port=$(free_port)
    python3 "$CHAIN_DIR/rpc_proxy.py" "$port" "local=$upstream" >"$SCRATCH/logs/proxy.log" 2>&1 &
    EXTRA_PID[proxy]=$!
    disown "${EXTRA_PID[proxy]}"
    GATEWAY=http://127.0.0.1:$port
    FAULTS=$GATEWAY
    RPC_VIA="rpc_proxy.py (fault injection)${RPC_VIA:+ -> $RPC_VIA}"
  fi
  local deadline=$(( $(date +%s) + 15 ))
  until curl -s -m 2 -X POST -H 'Content-Type: application/json' \
      --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
      "$GATEWAY/rpc/local" 2>/dev/null | grep -q 0x7a69; do
    [ "$(date +%s)" -ge "$deadline" ] && { echo "the RPC path ($RPC_VIA) did not come up" >&2; exit 1; }
    sleep 0.1
  done
  say "anvil on $ANVIL_PORT; workers reach it through $RPC_VIA"
}

# The real gateway in front of anvil, provider "local" (on GW_PORT, and on
# the Unix socket $SCRATCH/gateway.sock).
start_gateway() {
  GW_PORT=${GW_PORT:-$(free_port)}
  cat >"$SCRATCH/gateway.conf" <<CONF
listen = '127.0.0.1:$GW_PORT, unix:$SCRATCH/gateway.sock'
provider.local.chain_id = 31337
provider.local.url = '$NODE'
provider.local.rate_limit = 1000
CONF
  "$TW_ROOT/worker/bin/trace-rpc-gateway" --config "$SCRATCH/gateway.conf" \
    >>"$SCRATCH/logs/gateway.log" 2>&1 &
  EXTRA_PID[gateway]=$!
  disown "${EXTRA_PID[gateway]}"
  GW_URL=http://127.0.0.1:$GW_PORT
}

# stop_gateway: kill -9 of the gateway (an outage); start_gateway brings it back.
stop_gateway() {
  kill -KILL "${EXTRA_PID[gateway]}" 2>/dev/null
  unset "EXTRA_PID[gateway]"
}

# fault MODE COUNT: the next COUNT requests through the stand-in fail so.
fault() { curl -s -m 5 -X POST --data "{\"mode\": \"$1\", \"count\": $2}" "$FAULTS/_fault" >/dev/null; }
rpc_delay() { curl -s -m 5 -X POST --data "{\"ms\": $1}" "$FAULTS/_delay" >/dev/null; }

# chain_dag DAG CONFIG_EXTRA: the follower DAG of the tests, deployed.
#   follow (block_follower) -> ranges (aggregator) ; integrity (integrity_check, by hand)
chain_dag() {
  local dag=$1 extra=${2:-}
  sql "SELECT dag_version FROM trace.deploy_dag(\$y\$
dag: $dag
defaults: {retries: {max_attempts: 100, backoff: 500ms, max_backoff: 2s}, lease: ${LEASE:-4s}}
jobs:
  follow:
    operator: block_follower
    activation: source
    config: {rpc: local, chain_id: 31337, start_block: 0, confirmations: ${CONFIRMATIONS:-3},
             max_reorg_depth: ${MAX_DEPTH:-64}, batch_size: ${BATCH:-20}, poll_interval: 200ms $extra}
    outputs: [$dag.blocks, $dag.txs, $dag.logs]
  ranges:
    operator: aggregator
    inputs: [$dag.blocks]
    config: {cursor: block_number, size: ${AGG_SIZE:-100000}}
    outputs: [$dag.ranges]
  integrity:
    operator: integrity_check
    inputs: [$dag.blocks, $dag.txs, $dag.logs]
    trigger: {cron: '0 0 1 1 *'}
\$y\$)" >/dev/null || { echo "deploy of $dag failed" >&2; exit 1; }
  SRC_TASK=$(sql "SELECT t.task_id FROM trace.tasks t JOIN trace.jobs j USING (job_id)
                  WHERE j.dag = '$dag' AND j.name = 'follow' ORDER BY t.task_id DESC LIMIT 1")
}

# chain_worker NAME [flags]: a trace-worker on the RPC path.
chain_worker() {
  local name=$1; shift
  start_worker "$name" --rpc-gateway "$GATEWAY" --poll-interval 200ms --concurrency 2 "$@"
}

# source_state KEY: a field of the follower's saved state.
source_state() { sql "SELECT state->>'$1' FROM trace.source_state WHERE task_id = $SRC_TASK"; }

# wait_synced SECONDS: until the follower stored the node's head block (by hash).
wait_synced() {
  local head hash
  read -r head hash < <(chain head)
  wait_sql "$1" "SELECT coalesce((state->>'cursor')::bigint = $head AND state->>'cursor_hash' = '$hash', false)
                 FROM trace.source_state WHERE task_id = $SRC_TASK"
}

# db_index DAG FROM TO: the chain tables in chain.py's index format.
db_index() {
  local d=$1
  sql "SELECT line FROM (
    SELECT 1 AS k, block_number AS n, 0 AS i,
           format('B|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', block_number, '0x' || encode(block_hash, 'hex'),
                  '0x' || encode(parent_hash, 'hex'), extract(epoch FROM block_timestamp)::bigint,
                  '0x' || encode(miner, 'hex'), gas_used, gas_limit, base_fee_per_gas, tx_count, log_count) AS line
    FROM trace_data.\"$d.blocks\"
    UNION ALL
    SELECT 2, block_number, tx_index,
           format('T|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', block_number, tx_index, '0x' || encode(tx_hash, 'hex'),
                  '0x' || encode(from_address, 'hex'), '0x' || encode(to_address, 'hex'), value, gas, gas_price,
                  nonce, '0x' || encode(input, 'hex'), status)
    FROM trace_data.\"$d.txs\"
    UNION ALL
    SELECT 3, block_number, log_index,
           format('L|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', block_number, log_index, tx_index, '0x' || encode(tx_hash, 'hex'),
                  '0x' || encode(address, 'hex'), '0x' || encode(topic0, 'hex'), '0x' || encode(topic1, 'hex'),
                  '0x' || encode(topic2, 'hex'), '0x' || encode(topic3, 'hex'), '0x' || encode(data, 'hex'))
    FROM trace_data.\"$d.logs\") x
  WHERE n BETWEEN $2 AND $3 ORDER BY k, n, i"
}

# compare_index LABEL DAG [FROM TO]: the chain tables equal a fresh index of
# the canonical chain (default: blocks 0 .. the node's head).
compare_index() {
  local label=$1 dag=$2 lo=${3:-0} hi=${4:-} head hash
  if [ -z "$hi" ]; then read -r head hash < <(chain head); hi=$head; fi
  chain index "$lo" "$hi" >"$SCRATCH/node.$label.txt"
  db_index "$dag" "$lo" "$hi" >"$SCRATCH/db.$label.txt"
  local nb nt nl
  nb=$(grep -c '^B' "$SCRATCH/node.$label.txt"); nt=$(grep -c '^T' "$SCRATCH/node.$label.txt")
  nl=$(grep -c '^L' "$SCRATCH/node.$label.txt")
  if cmp -s "$SCRATCH/node.$label.txt" "$SCRATCH/db.$label.txt"; then
    ok "$label: tables equal a fresh index of the canonical chain ($nb blocks, $nt txs, $nl logs)"
  else
    not_ok "$label: tables equal a fresh index of the canonical chain" \
      "$(diff "$SCRATCH/node.$label.txt" "$SCRATCH/db.$label.txt" | head -8)"
  fi
}

# check_rows LABEL DAG: every row is keyed by its block and produced by the source task.
check_rows() {
  local b t l
  b=$(relation "$2.blocks"); t=$(relation "$2.txs"); l=$(relation "$2.logs")
  check_eq "$1: every row has partition_key = its block number and the source's task id" "0" \
    "$(sql "SELECT count(*) FROM (
        SELECT partition_key, block_number, producer_task_id FROM $b
        UNION ALL SELECT partition_key, block_number, producer_task_id FROM $t
        UNION ALL SELECT partition_key, block_number, producer_task_id FROM $l) r
      WHERE partition_key <> block_number::text OR producer_task_id <> ${3:-$SRC_TASK}")"
}

# relation DATASET: the relation of its current version.
relation() { sql "SELECT relation FROM trace.datasets WHERE dataset_id = '$1'"; }

# check_events LABEL DAG: the final-block events still standing (emitted and
# not retracted) are exactly the stored blocks up to "emitted", one each.
check_events() {
  local label=$1 dag=$2 emitted
  emitted=$(source_state emitted)
  local live want
  live=$(sql "WITH e AS (SELECT partition_key AS k FROM trace.events
                         WHERE producer_task_id = $SRC_TASK AND dataset_id = '$dag.blocks'),
                   live AS (SELECT k FROM e WHERE k NOT LIKE '%:retracted'
                            AND k || ':retracted' NOT IN (SELECT k FROM e))
              SELECT coalesce(string_agg(k, ',' ORDER BY split_part(k, ':', 1)::bigint), '') FROM live")
  want=$(sql "SELECT coalesce(string_agg(block_number || ':0x' || encode(block_hash, 'hex'), ','
                                        ORDER BY block_number), '')
              FROM trace_data.\"$dag.blocks\" WHERE block_number <= $emitted")
  if [ "$live" == "$want" ] && [ -n "$want" ]; then
    ok "$label: final-block events minus retractions = stored blocks 0..$emitted"
  else
    not_ok "$label: final-block events minus retractions = stored blocks 0..$emitted" \
      "events: ${live:0:300}" "stored: ${want:0:300}"
  fi
  check_eq "$label: emitted = min(cursor, head - confirmations)" \
    "$(sql "SELECT least((state->>'cursor')::bigint, (state->>'head')::bigint - ${CONFIRMATIONS:-3})
            FROM trace.source_state WHERE task_id = $SRC_TASK")" "$emitted"
}

# check_integrity LABEL DAG [JOB]: runs the DAG's integrity_check job (default
# "integrity"); it must report clean.
check_integrity() {
  local label=$1 dag=$2 tid
  tid=$(sql "SELECT trace.trigger_job('$dag', '${3:-integrity}')")
  if wait_sql 30 "SELECT state IN ('succeeded', 'failed') FROM trace.tasks WHERE task_id = $tid"; then
    check_eq "$label: integrity_check clean" "succeeded|true|0" \
      "$(sql "SELECT t.state || '|' || r.ok || '|' || jsonb_array_length(r.violations)
              FROM trace.tasks t JOIN trace.integrity_reports r USING (task_id) WHERE t.task_id = $tid")"
  else
    not_ok "$label: integrity_check clean" "the integrity task did not finish"
  fi
}

# check_all LABEL DAG: the end of every scenario.
check_all() {
  compare_index "$1" "$2"
  check_rows "$1" "$2"
  check_events "$1" "$2"
  check_integrity "$1" "$2"
}

# listen_start CHANNEL SECONDS: a background session LISTENing on CHANNEL,
# printing what it gets to $SCRATCH/notify.CHANNEL.log (the outbox relay
# deletes its rows, so NOTIFY is where an alert is seen).
listen_start() {
  local f=$SCRATCH/listen.$1.sql
  { echo "LISTEN $1;"; for _ in $(seq 1 $(( $2 * 5 ))); do echo "SELECT pg_sleep(0.2);"; done; } >"$f"
  "$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$PGPORT_T" -U postgres -d "$TEST_DB" -f "$f" \
    >"$SCRATCH/notify.$1.log" 2>&1 &
  EXTRA_PID[listen_$1]=$!
  disown "${EXTRA_PID[listen_$1]}"
  sleep 0.3
}

# wait_notify CHANNEL SECONDS REGEX: until a notification matching REGEX arrived.
wait_notify() {
  local deadline=$(( $(date +%s) + $2 ))
  until grep -Eq -- "$3" "$SCRATCH/notify.$1.log" 2>/dev/null; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# reorg_count: reorgs recorded for the source.
reorg_count() { sql "SELECT count(*) FROM trace.reorg WHERE task_id = $SRC_TASK"; }
