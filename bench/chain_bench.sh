#!/usr/bin/env bash
# Trace chain-ingest benchmark: the "Benchmark (in make bench)" part of
# issue 6.  Run it after the extension is built and installed (`make bench`
# does both).  One run, one private cluster, one table:
#
#   a. Trace: block_follower (confirmations 0, batch_size 100) through
#      trace-rpc-gateway, one trace-worker, from the worker's start until the
#      follower's blocks table holds all N blocks (polled every 50 ms):
#      blocks/s, txs/s, logs/s from RPC to committed rows, and the worker's
#      peak RSS (VmHWM).  Rows are checked against the fixture's counts.
#      Two runs (two DAGs, each with its own tables and a fresh worker);
#      the better one is compared.
#   b. ceiling 1 (RPC): bench/chain_fetch.c, a bare libcurl client with one
#      reused handle, fetching the same blocks (full transactions) and
#      receipts from the same fixture server, in the follower's request shape
#      (batches of 10 blocks x 2 calls); best of 2 passes.  The same client
#      through the gateway is printed for information.
#   c. ceiling 2 (Postgres): COPY (text format) of the same rows, from files
#      the fixture wrote, into tables with the chain tables' columns, primary
#      keys and partition_key index (trace.chain_table_columns, plus the
#      index trace.create_version_relation adds), in one transaction, on the
#      same cluster; best of 2 (emptied and checkpointed before each), so
#      the ratio is best against best.  For information, the same rows in
#      binary COPY format (exported from those tables), the format Trace
#      writes: what the server takes without parsing text, i.e. the most
#      Trace's write path could reach.
#
# The fixture (bench/fixture_rpc.py) generates N mainnet-sized blocks in
# memory (~150 txs, ~400 logs each; ~190 kB of block JSON and ~410 kB of
# receipts per block) and serves them from a threaded server on loopback.
#
# Settings: the cluster as bench/run.sh's (fsync and synchronous_commit on,
# jit off); as root it runs as the `postgres` user, reachable through its
# Unix socket in a scratch directory under /tmp.
#
# Environment:
#   BENCH_CHAIN_BLOCKS=1000  blocks generated and ingested
#   BENCH_CHAIN_TIMEOUT=240  longest wait for the follower, seconds
#   BENCH_KEEP=1             keep the scratch directory (logs, COPY files)
# The table also goes to bench/out/chain-last-run.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bindir=$(/usr/lib/postgresql/15/bin/pg_config --bindir)
nblocks=${BENCH_CHAIN_BLOCKS:-1000}
timeout_s=${BENCH_CHAIN_TIMEOUT:-240}
start_block=20000000
last_block=$((start_block + nblocks - 1))
batch=100

say() { printf '%s\n' "$*" >&2; }
die() { say "chain_bench: $*"; exit 1; }

mkdir -p "$here/out"
table=$here/out/chain-last-run.txt
make -s -C "$root/worker" trace-worker trace-rpc-gateway >/dev/null || die "worker build failed"
cc -O2 -Wall -o "$here/out/chain_fetch" "$here/chain_fetch.c" -lcurl || die "chain_fetch build failed"

. "$here/lib.sh"
bench_workdir chain-bench
mkdir -p "$work/copy" "$work/udfs" "$work/scratch" "$work/logs"

. "$root/test/lib/ports.sh"
fx_port=$(free_port) || die "no free port"
gw_port=$(free_port) || die "no free port"
[ "$gw_port" != "$fx_port" ] || gw_port=$(free_port)

sql() { "${psql_q[@]}" -d postgres -At "$@"; }

declare -A PID=()
cleanup() {
  local rc=$? p
  for p in "${PID[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bench_cluster_down immediate
  if [ "$rc" -ne 0 ] || [ -n "${BENCH_KEEP:-}" ]; then
    echo "chain_bench: scratch directory kept in $work (logs in $work/logs)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
faster() { [ -z "$2" ] || awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }   # A s beats B s (or no B yet)
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hwm() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "-"; }
cpu_busy() {   # percent of CPU busy over one second
  local a b
  read -r _ a1 a2 a3 a4 a5 a6 a7 _ </proc/stat; a=$((a1 + a2 + a3 + a6 + a7)); local ai=$((a4 + a5))
  sleep 1
  read -r _ b1 b2 b3 b4 b5 b6 b7 _ </proc/stat; b=$((b1 + b2 + b3 + b6 + b7)); local bi=$((b4 + b5))
  echo $(( 100 * (b - a) / ((b - a) + (bi - ai) + 1) ))
}

say "chain_bench: machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), CPU busy before start: $(cpu_busy)%"

# --- the fixture (generates while the cluster starts) ------------------------
gen_t0=$(now)
python3 "$here/fixture_rpc.py" --port "$fx_port" --blocks "$nblocks" --start "$start_block" \
  --chain-id 1 --copy-dir "$work/copy" --ready-file "$work/fixture.ready" \
  >"$work/logs/fixture.log" 2>&1 &
PID[fixture]=$!

# --- cluster -------------------------------------------------------------------
bench_cluster 55432 "trace.dispatcher_interval = '100ms'"
start_cluster
sql -c "CREATE EXTENSION trace" >/dev/null
sql -c "CREATE ROLE tw LOGIN IN ROLE trace_worker" >/dev/null
pgver=$(sql -c "SHOW server_version" | cut -d' ' -f1)

deadline=$(( $(date +%s) + 300 ))
until [ -f "$work/fixture.ready" ]; do
  kill -0 "${PID[fixture]}" 2>/dev/null || { cat "$work/logs/fixture.log" >&2; die "the fixture died"; }
  [ "$(date +%s)" -lt "$deadline" ] || die "the fixture did not come up"
  sleep 0.2
done
gen_s=$(elapsed "$gen_t0" "$(now)")
# blocks=N txs=N logs=N block_bytes=N receipt_bytes=N start=N head=N
eval "fx_$(sed 's/ / fx_/g' "$work/fixture.ready")"
fx_url=http://127.0.0.1:$fx_port/
say "chain_bench: fixture: $fx_blocks blocks, $fx_txs txs, $fx_logs logs; $((fx_block_bytes / 1024 / nblocks)) kB of block JSON and $((fx_receipt_bytes / 1024 / nblocks)) kB of receipts per block; generated in ${gen_s}s"

# --- the gateway ---------------------------------------------------------------
cat >"$work/gateway.conf" <<CONF
listen = '127.0.0.1:$gw_port'
log_level = warn
provider.fixture.chain_id = 1
provider.fixture.url = '$fx_url'
provider.fixture.rate_limit = 100000
provider.fixture.max_response_size = 128MB
CONF
"$root/worker/bin/trace-rpc-gateway" --config "$work/gateway.conf" >"$work/logs/gateway.log" 2>&1 &
PID[gateway]=$!
gw_url=http://127.0.0.1:$gw_port
deadline=$(( $(date +%s) + 15 ))
until curl -s -m 2 -H 'Content-Type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
    "$gw_url/rpc/fixture" 2>/dev/null | grep -q '"0x1"'; do
  [ "$(date +%s)" -lt "$deadline" ] || { cat "$work/logs/gateway.log" >&2; die "the gateway did not come up"; }
  sleep 0.1
done

# --- b. ceiling 1: a bare libcurl client ---------------------------------------
fetch_best() {   # URL -> the best seconds of 2 passes
  local best="" out s
  for _ in 1 2; do
    out=$("$here/out/chain_fetch" "$1" "$start_block" "$last_block" 10) || die "chain_fetch $1 failed"
    s=$(sed -E 's/.*seconds=([0-9.]+).*/\1/' <<<"$out")
    # every block and receipt list came back whole (the replies hold them all)
    [ "$(sed -E 's/.*bytes=([0-9]+).*/\1/' <<<"$out")" -ge $((fx_block_bytes + fx_receipt_bytes)) ] ||
      die "chain_fetch $1 got fewer bytes than the fixture's blocks and receipts: $out"
    if faster "$s" "$best"; then best=$s; fi
  done
  echo "$best"
}
say "chain_bench: ceiling 1: libcurl fetching $nblocks blocks + receipts from the fixture"
rpc_s=$(fetch_best "$fx_url")
gwfetch_s=$(fetch_best "$gw_url/rpc/fixture")
rpc_bps=$(rate "$nblocks" "$rpc_s")
gwfetch_bps=$(rate "$nblocks" "$gwfetch_s")

# --- a. Trace: block_follower through the gateway ------------------------------
# One run: a fresh DAG (its own tables) and a fresh worker, timed from the
# worker's start until its blocks table holds every block.  Sets the run's
# figures in T_* (seconds, blocks, txs, logs, first rows, RSS, CPU).
count_blocks() { sql -c "SELECT count(*) FROM trace_data.\"$1.blocks\"" 2>/dev/null || echo 0; }
trace_run() {
  local dag=$1 t0 t n t_first="" n_first=0 done_ok=0 gw_cpu0 deadline
  sql -c "CHECKPOINT" >/dev/null
  sql >/dev/null <<EOF
SELECT dag_version FROM trace.deploy_dag(\$y\$
dag: $dag
defaults: {retries: {max_attempts: 100, backoff: 500ms, max_backoff: 2s}, lease: 30s}
jobs:
  follow:
    operator: block_follower
    activation: source
    config: {rpc: fixture, chain_id: 1, start_block: $start_block, confirmations: 0,
             max_reorg_depth: 64, batch_size: $batch, poll_interval: 200ms}
    outputs: [$dag.blocks, $dag.txs, $dag.logs]
\$y\$)
EOF
  gw_cpu0=$(cpu_s "${PID[gateway]}")
  t0=$(now)
  TRACE_CONNINFO="host=$work port=$port dbname=postgres user=tw connect_timeout=5" \
    "$root/worker/bin/trace-worker" --worker-id "chain-bench-$dag" --udf-dir "$work/udfs" \
    --scratch-dir "$work/scratch" --rpc-gateway "$gw_url" --poll-interval 200ms --concurrency 2 \
    >"$work/logs/worker-$dag.log" 2>&1 &
  PID[worker]=$!
  T_rss=-
  deadline=$(( $(date +%s) + timeout_s ))
  while :; do
    n=$(count_blocks "$dag")
    t=$(now)
    if [ -z "$t_first" ] && [ "${n:-0}" -gt 0 ]; then t_first=$t; n_first=$n; fi
    [ "$n" -ge "$nblocks" ] && { done_ok=1; break; }
    kill -0 "${PID[worker]}" 2>/dev/null || { tail -20 "$work/logs/worker-$dag.log" >&2; die "the worker died"; }
    [ "$(date +%s)" -lt "$deadline" ] || break
    T_rss=$(hwm "${PID[worker]}")
    sleep 0.05
  done
  T_rss=$(hwm "${PID[worker]}")
  T_cpu=$(cpu_s "${PID[worker]}")
  T_gwcpu=$(awk -v a="$gw_cpu0" -v b="$(cpu_s "${PID[gateway]}")" 'BEGIN { printf "%.1f", b - a }')
  # the source never ends by itself: cancel it, so the worker stops at once
  # and the next run's worker does not pick it up
  sql -c "SELECT trace.cancel_task(t.task_id) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
          WHERE j.dag = '$dag' AND t.state = 'running'" >/dev/null
  kill -TERM "${PID[worker]}" 2>/dev/null || true
  wait "${PID[worker]}" 2>/dev/null || true
  unset 'PID[worker]'
  T_s=$(elapsed "$t0" "$t")
  T_n=$n
  read -r T_txs T_logs < <(sql -F ' ' -c "SELECT (SELECT count(*) FROM trace_data.\"$dag.txs\"),
                                                  (SELECT count(*) FROM trace_data.\"$dag.logs\")")
  if [ "$done_ok" -ne 1 ]; then
    say "chain_bench: the follower stored only $n of $nblocks blocks in ${timeout_s}s (worker log: $work/logs/worker-$dag.log)"
    BENCH_KEEP=1
  fi
  T_complete=0
  if [ "$done_ok" -eq 1 ] && [ "$T_txs" == "$fx_txs" ] && [ "$T_logs" == "$fx_logs" ]; then T_complete=1; fi
  if [ "$done_ok" -eq 1 ] && [ "$T_complete" -ne 1 ]; then
    say "chain_bench: row counts differ from the fixture's: txs $T_txs/$fx_txs, logs $T_logs/$fx_logs"
  fi
  if [ -n "$t_first" ] && [ "$n" -gt "$n_first" ]; then
    T_steady_bps=$(rate $((n - n_first)) "$(elapsed "$t_first" "$t")")
    T_first_s=$(elapsed "$t0" "$t_first")
  else
    T_steady_bps=- T_first_s=-
  fi
  say "chain_bench:   $dag: $(rate "$n" "$T_s") blocks/s ($n blocks in ${T_s}s, first rows at ${T_first_s}s)"
}

say "chain_bench: Trace: block_follower, batch_size $batch, through trace-rpc-gateway (best of 2 runs)"
trace_s="" all_complete=1 trace_runs=""
for run in 1 2; do
  trace_run "bchain$run"
  [ "$T_complete" -eq 1 ] || all_complete=0
  trace_runs="$trace_runs $(rate "$T_n" "$T_s")"
  if faster "$T_s" "$trace_s"; then
    trace_s=$T_s n=$T_n db_txs=$T_txs db_logs=$T_logs first_s=$T_first_s steady_bps=$T_steady_bps
    wrss=$T_rss wcpu=$T_cpu gwcpu=$T_gwcpu
  fi
done
done_ok=$all_complete
trace_bps=$(rate "$n" "$trace_s")
trace_txs=$(rate "$db_txs" "$trace_s")
trace_logs=$(rate "$db_logs" "$trace_s")
gwrss=$(hwm "${PID[gateway]}")
# what else ran: the gateway's calls
gw_calls=$(curl -s "$gw_url/metrics" | awk '/^trace_gateway_upstream_requests_total/ { s += $NF } END { print s + 0 }')

# --- c. ceiling 2: COPY from a file into the same tables -------------------------
say "chain_bench: ceiling 2: COPY (text) of the same rows into tables with the same columns and indexes (best of 2)"
cols() { sql -c "SELECT trace.chain_table_columns('block_follower', $1)"; }
sql >/dev/null <<EOF
CREATE SCHEMA ceiling;
CREATE TABLE ceiling.blocks (partition_key text NOT NULL, producer_task_id bigint NOT NULL, $(cols 0));
CREATE TABLE ceiling.txs (partition_key text NOT NULL, producer_task_id bigint NOT NULL, $(cols 1));
CREATE TABLE ceiling.logs (partition_key text NOT NULL, producer_task_id bigint NOT NULL, $(cols 2));
CREATE INDEX ON ceiling.blocks (partition_key);
CREATE INDEX ON ceiling.txs (partition_key);
CREATE INDEX ON ceiling.logs (partition_key);
EOF
# the same indexes as the follower's tables (checked, so the ceiling stays fair)
idx_trace=$(sql -c "SELECT string_agg(regexp_replace(indexdef, '^.* USING ', ''), '; ' ORDER BY regexp_replace(indexdef, '^.* USING ', ''))
                    FROM pg_indexes i JOIN trace.datasets d ON d.relation::text IN (i.schemaname || '.' || i.tablename, i.schemaname || '.\"' || i.tablename || '\"', i.tablename)
                    WHERE d.dataset_id LIKE 'bchain1.%'" 2>/dev/null || echo "?")
idx_ceil=$(sql -c "SELECT string_agg(regexp_replace(indexdef, '^.* USING ', ''), '; ' ORDER BY regexp_replace(indexdef, '^.* USING ', ''))
                   FROM pg_indexes WHERE schemaname = 'ceiling'")
# copy_best DIR EXT [OPTIONS]: best of 2 loads of DIR/{blocks,txs,logs}.EXT
# into the ceiling tables (emptied and checkpointed before each), in one
# transaction: best_s, and each run's blocks/s in runs.
copy_best() {
  local run t c0 s_run
  best_s="" runs=""
  for run in 1 2; do
    sql -c "TRUNCATE ceiling.blocks, ceiling.txs, ceiling.logs" >/dev/null
    sql -c "CHECKPOINT" >/dev/null
    c0=$(now)
    { echo "BEGIN;"
      for t in blocks txs logs; do echo "COPY ceiling.$t FROM '$1/$t.$2'${3:+ ($3)};"; done
      echo "COMMIT;"; } | sql >/dev/null
    s_run=$(elapsed "$c0" "$(now)")
    runs="$runs $(rate "$nblocks" "$s_run")"
    if faster "$s_run" "$best_s"; then best_s=$s_run; fi
  done
}
copy_best "$work/copy" copy
copy_s=$best_s copy_runs=$runs
read -r cb ct cl < <(sql -F ' ' -c "SELECT (SELECT count(*) FROM ceiling.blocks), (SELECT count(*) FROM ceiling.txs),
                                           (SELECT count(*) FROM ceiling.logs)")
# (info) the same rows in binary COPY format, the format Trace writes: the
# server's own cost without text parsing, so what Trace could reach at most
mkdir -p "$work/bin" && chmod 777 "$work/bin"     # the server writes them
for t in blocks txs logs; do
  sql -c "COPY ceiling.$t TO '$work/bin/$t.bin' (FORMAT binary)" >/dev/null
done
copy_best "$work/bin" bin "FORMAT binary"
bin_s=$best_s
bin_bps=$(rate "$nblocks" "$bin_s")
copy_rows=$((cb + ct + cl))
copy_bps=$(rate "$cb" "$copy_s")
copy_mb=$(du -cm "$work/copy"/*.copy | tail -1 | cut -f1)

# --- the table --------------------------------------------------------------------
lower_bps=$(awk -v a="$rpc_bps" -v b="$copy_bps" 'BEGIN { print (a < b) ? a : b }')
lower_name=$(awk -v a="$rpc_bps" -v b="$copy_bps" 'BEGIN { print (a < b) ? "RPC (libcurl)" : "Postgres COPY" }')
{
  echo
  echo "Chain ingest: $nblocks generated mainnet-sized blocks ($fx_txs txs, $fx_logs logs; $(( (fx_block_bytes + fx_receipt_bytes) / 1024 / nblocks )) kB JSON per block)"
  echo "PostgreSQL $pgver, synchronous_commit=on, $(nproc) cores, load before start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' "path" "blocks/s" "txs/s" "logs/s" "seconds"
  printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..64})" "-----------" "-----------" "-----------" "----------"
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' \
    "Trace: RPC -> gateway -> block_follower -> committed rows" "$trace_bps" "$trace_txs" "$trace_logs" "$trace_s"
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' \
    "  (the two runs, blocks/s:$trace_runs)" "" "" "" ""
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' \
    "  best run, after its first commit (first rows at ${first_s}s)" "$steady_bps" "" "" ""
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' \
    "ceiling 1: bare libcurl from the fixture (best of 2)" "$rpc_bps" "$(rate "$fx_txs" "$rpc_s")" "$(rate "$fx_logs" "$rpc_s")" "$rpc_s"
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' \
    "  (info) the same libcurl client through trace-rpc-gateway" "$gwfetch_bps" "$(rate "$fx_txs" "$gwfetch_s")" "$(rate "$fx_logs" "$gwfetch_s")" "$gwfetch_s"
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' \
    "ceiling 2: text COPY from files, same columns + indexes" "$copy_bps" "$(rate "$ct" "$copy_s")" "$(rate "$cl" "$copy_s")" "$copy_s"
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' \
    "  (the two runs, blocks/s:$copy_runs)" "" "" "" ""
  printf '| %-62s | %9s | %9s | %9s | %8s |\n' \
    "  (info) binary COPY of the same rows, Trace's format (best of 2)" "$bin_bps" "$(rate "$ct" "$bin_s")" "$(rate "$cl" "$bin_s")" "$bin_s"
  echo
  echo "ceiling 2 as rows: $(rate "$copy_rows" "$copy_s") rows/s ($copy_rows rows, $copy_mb MB of text COPY, one transaction)"
  echo "Trace / lower ceiling ($lower_name, $lower_bps blocks/s): $(ratio "$trace_bps" "$lower_bps")   (goal >= 0.80)"
  echo "Trace / RPC ceiling: $(ratio "$trace_bps" "$rpc_bps"); Trace / COPY ceiling: $(ratio "$trace_bps" "$copy_bps"); Trace / binary COPY (info): $(ratio "$trace_bps" "$bin_bps")"
  echo "peak RSS (VmHWM): trace-worker $wrss MB, trace-rpc-gateway $gwrss MB   (batch_size $batch)"
  echo "rows stored by Trace (best run): $n blocks, $db_txs txs, $db_logs logs (fixture: $fx_blocks, $fx_txs, $fx_logs)$([ "$done_ok" -eq 1 ] && echo ": complete in both runs" || echo ": INCOMPLETE")"
  echo "CPU seconds during Trace's run: trace-worker $wcpu s, trace-rpc-gateway $gwcpu s (of ${trace_s}s wall, $(nproc) cores)"
  echo "gateway upstream HTTP calls during the run: $gw_calls (including the client passes)"
  echo "indexes, Trace's tables: $idx_trace"
  echo "indexes, ceiling tables: $idx_ceil"
} | tee "$table"
[ "$done_ok" -eq 1 ]
