#!/usr/bin/env bash
# Trace task-queue benchmark.  Run it through `make bench`, which builds and
# installs the extension first.  It starts a private PostgreSQL cluster, runs
# every measurement, prints one table per topic and stops the cluster.
#
# What is measured (each point on a freshly refilled queue):
#   1. claim -> complete and claim -> emit -> complete, one task per call,
#      through the load generator bench/loadgen.c (libpq, one thread and one
#      connection per client, prepared statements), with claim latency p50/p99,
#      and side by side the roofline: the plain-SQL SKIP LOCKED queue below,
#      driven by pgbench -M prepared on the same cluster and client counts.
#   2. the same batched: claim 100 -> complete_tasks 100, against a batched
#      roofline (UPDATE ... LIMIT 100 ... RETURNING, then UPDATE ... = ANY).
#   3. claim -> complete with 1M finished and 1M queued tasks already there,
#      and once more right after 200k claims with no vacuum in between (the
#      dead entries at the head of the claim index), then after a VACUUM.
#   4. enqueue: trace.enqueue_task per transaction (each NOTIFYs) with a
#      worker LISTENing, enqueue_tasks of 1000 payloads per call, and plain
#      INSERT per transaction with and without pg_notify for comparison; then
#      the wake-up latency seen by a LISTEN trace_wakeup client at idle.
#   5. claim -> complete and the roofline with synchronous_commit = off.
#   6. claim -> complete with the dispatcher running in the bench database.
#   7. where the server's time goes: per-function time (track_functions).
# The dispatcher runs in database "postgres", where the extension is not
# installed, for sections 1-5: there it only idles (see section 6).
#
# Settings for a 2-core / 24 GiB machine; synchronous_commit = on (the
# default) except in section 5.  As root the cluster runs as the `postgres`
# user in a scratch directory under /tmp, reachable only through its Unix
# socket there.
#
# Environment:
#   BENCH_SECONDS=10        length of each timed point (enqueue points: half)
#   BENCH_CLIENTS="1 4 8 16"
#   BENCH_BATCH_TASKS=200000  tasks per batched point (these run to a count)
#   BENCH_BACKLOG=1000000   queued and finished tasks in section 3
#   BENCH_KEEP=1            keep the scratch directory (data, logs)
# Raw loadgen/pgbench output goes to bench/out/last-run.log, the table also to
# bench/out/last-run.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bindir=$(/usr/lib/postgresql/15/bin/pg_config --bindir)
secs=${BENCH_SECONDS:-10}
read -r -a clients <<<"${BENCH_CLIENTS:-1 4 8 16}"
batch_tasks=${BENCH_BATCH_TASKS:-200000}
enq_secs=$(awk -v s="$secs" 'BEGIN { printf "%g", (s / 2 < 1) ? 1 : s / 2 }')
single_fill=$((secs * 15000))   # above the fastest one-task rate seen (~10k/s)
backlog=${BENCH_BACKLOG:-1000000}   # tasks queued and finished in section 3

make -s -C "$here" >/dev/null
loadgen=$here/out/loadgen
mkdir -p "$here/out"
rawlog=$here/out/last-run.log
table=$here/out/last-run.txt
: >"$rawlog"

. "$here/lib.sh"
bench_workdir bench

cleanup() {
  local rc=$?
  bench_cluster_down fast
  if [ "$rc" -ne 0 ] || [ -n "${BENCH_KEEP:-}" ]; then
    echo "bench: scratch directory kept in $work (server log: $work/log)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# --- cluster ---------------------------------------------------------------

bench_cluster 55432 "track_functions = all"
conn="host=$work port=$port dbname=bench user=postgres"

start_cluster
"${psql_q[@]}" -d postgres -c "CREATE DATABASE bench"

sql() { "${psql_q[@]}" -d bench -At "$@"; }

sql -c "CREATE EXTENSION trace" >/dev/null
job=$(sql -c "SELECT trace.create_job('bench', 'noop')")
sql >/dev/null <<'EOF'
-- The roofline: the plainest SKIP LOCKED queue, with the same kind of
-- partial index trace uses for its claim path.
CREATE TABLE public.jobs (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state   text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX jobs_queued_idx ON public.jobs (id) WHERE state = 'queued';
-- The enqueue comparison: one row per transaction, with and without NOTIFY.
CREATE TABLE public.plain_tasks (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload jsonb NOT NULL
);
EOF

cat >"$work/roofline.sql" <<'EOF'
UPDATE jobs SET state = 'running' WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id \gset
UPDATE jobs SET state = 'done' WHERE id = :id;
EOF
cat >"$work/roofline_batch.sql" <<'EOF'
WITH c AS (UPDATE jobs SET state = 'running' WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id) SELECT array_agg(id) AS ids FROM c \gset
UPDATE jobs SET state = 'done' WHERE id = ANY (:ids);
EOF
cat >"$work/insert.sql" <<'EOF'
INSERT INTO plain_tasks (payload) VALUES ('{"n": 1}');
EOF
cat >"$work/insert_notify.sql" <<'EOF'
BEGIN;
INSERT INTO plain_tasks (payload) VALUES ('{"n": 1}');
SELECT pg_notify('trace_wakeup', 'ecs_platform');
COMMIT;
EOF
chmod 644 "$work"/*.sql

# --- fills -----------------------------------------------------------------

# Settles the database between points: vacuum what the last point left,
# flush it, so no point pays for its predecessor.
settle() {
  sql -c "VACUUM ANALYZE $1" -c "CHECKPOINT" >/dev/null
}

# An empty trace queue with N queued tasks (straight INSERT, as superuser).
fill_trace() {
  sql >/dev/null <<EOF
TRUNCATE trace.task, trace.task_done, trace.task_attempt, trace.event, trace.outbox;
INSERT INTO trace.task (task_id, org_id, job_id, operator, runtime, state,
                        max_attempts, lease, payload)
SELECT nextval('trace.task_id_seq'), 'default', $job, 'noop', 'ecs_platform', 'queued',
       5, '30 seconds', jsonb_build_object('n', g)
FROM generate_series(1, $1) g;
EOF
  settle trace.task
}

# The roofline table with N queued jobs.
fill_roofline() {
  sql >/dev/null <<EOF
TRUNCATE public.jobs RESTART IDENTITY;
INSERT INTO public.jobs (state, payload)
SELECT 'queued', jsonb_build_object('n', g) FROM generate_series(1, $1) g;
EOF
  settle public.jobs
}

# $backlog finished tasks in trace.task_done; top_up_backlog refills the
# queue to $backlog queued before each point.
fill_backlog() {
  sql >/dev/null <<EOF
INSERT INTO trace.task_done (task_id, org_id, job_id, operator, runtime, state, mode,
                             priority, attempt, max_attempts, worker_id, payload, result,
                             created_at, started_at, finished_at)
SELECT nextval('trace.task_id_seq'), 'default', $job, 'noop', 'ecs_platform', 'succeeded',
       'live', 0, 1, 5, 'bench-0', jsonb_build_object('n', g), '{"ok": true}',
       now() - interval '1 hour', now() - interval '1 hour', now() - interval '1 hour'
FROM generate_series(1, $backlog) g;
EOF
  sql -c "VACUUM ANALYZE trace.task_done" >/dev/null
}
top_up_backlog() {
  sql >/dev/null <<EOF
INSERT INTO trace.task (task_id, org_id, job_id, operator, runtime, state,
                        max_attempts, lease, payload)
SELECT nextval('trace.task_id_seq'), 'default', $job, 'noop', 'ecs_platform', 'queued',
       5, '30 seconds', jsonb_build_object('n', g)
FROM generate_series(1, $backlog - (SELECT count(*) FROM trace.task WHERE state = 'queued')) g;
EOF
  settle trace.task
}

# --- runners ---------------------------------------------------------------

declare -A R   # results: R[key.field]

# get FIELD LINE: the value of FIELD=... in a loadgen line.
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# loadgen KEY ARGS...: runs the load generator, stores its fields under KEY.
loadgen() {
  local key=$1; shift
  local line
  line=$("$loadgen" -d "$conn" -j "$job" "$@" 2>>"$rawlog" | tail -n 1)
  echo "$key: $line" >>"$rawlog"
  for f in tasks_per_s claim_p50_ms claim_p99_ms call_p50_ms call_p99_ms empty_claims \
           errors notifications calls wakeup_p50_ms wakeup_p99_ms enqueue_p50_ms \
           enqueue_p99_ms after_ack_p50_ms after_ack_p99_ms samples missed; do
    R[$key.$f]=$(get "$f" "$line")
  done
  if [ "${R[$key.empty_claims]:-0}" != "0" ]; then R[$key.flag]="*"; fi
  if [ "${R[$key.errors]:-0}" != "0" ]; then R[$key.flag]="!"; fi
}

# pgbench KEY TASKS_PER_TXN SCRIPT CLIENTS [ARGS...]: runs the script, stores
# tasks/s and the first statement's average latency.
pgbench_run() {
  local key=$1 per=$2 script=$3 c=$4; shift 4
  local out tps lat
  out=$("$bindir/pgbench" -n -M prepared -r -h "$work" -p "$port" -U postgres \
          -c "$c" -j "$c" "$@" -f "$script" bench 2>&1 || true)
  printf '%s:\n%s\n' "$key" "$out" >>"$rawlog"
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
  lat=$(awk '/statement latencies/ { getline; print $1; exit }' <<<"$out")
  R[$key.tasks_per_s]=$(awk -v t="${tps:-0}" -v p="$per" 'BEGIN { printf "%.1f", t * p }')
  R[$key.claim_avg_ms]=$lat
  if grep -q "aborted\|error" <<<"$out"; then R[$key.flag]="!"; fi
}

ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
pct() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%+.0f%%", 100 * (a - b) / b; else print "-" }'; }
say() { printf '%s\n' "$*" >&2; }

# --- measurements ----------------------------------------------------------

# Share of CPU time in use over one second, from /proc/stat: the machine
# may be shared, and anything else running skews every figure.
cpu_busy() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    u = y[1] - x[1]; i = y[2] - x[2]; printf "%.0f", (u + i > 0) ? 100 * u / (u + i) : 0 }'
}

busy_before=$(cpu_busy)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$busy_before" -gt 20 ]; then
  say "bench: warning: the machine is already ${busy_before}% busy; the figures will be noisy"
fi
started=$(date +%s)
say "bench: cluster on port $port in $work; ${secs}s per point, clients ${clients[*]}"

for c in "${clients[@]}"; do
  say "bench: one task per call, $c clients"
  fill_trace "$single_fill"
  loadgen "cc.$c" -m claim-complete -c "$c" -T "$secs"
  fill_trace "$single_fill"
  [ "$c" = "${clients[0]}" ] && sql -c "SELECT pg_stat_reset()" >/dev/null
  loadgen "cec.$c" -m claim-emit-complete -c "$c" -T "$secs"
  if [ "$c" = "${clients[0]}" ]; then
    sleep 1   # the clients' statistics are flushed as their backends exit
    fstats=$(sql -F ' ' <<'EOF2'
SELECT format('%-16s %8s %9s %9s', funcname, calls,
              round((total_time / calls)::numeric, 3), round((self_time / calls)::numeric, 3))
FROM pg_stat_user_functions WHERE schemaname = 'trace' AND calls > 0
ORDER BY self_time DESC;
EOF2
)
  fi
  fill_roofline "$single_fill"
  pgbench_run "roof.$c" 1 "$work/roofline.sql" "$c" -T "$secs"
done

for c in "${clients[@]}"; do
  say "bench: batches of 100, $c clients"
  fill_trace $((batch_tasks + 1000))
  loadgen "batch.$c" -m batch -b 100 -c "$c" -n "$batch_tasks"
  fill_roofline $((batch_tasks + 1000 * c))
  pgbench_run "roofb.$c" 100 "$work/roofline_batch.sql" "$c" -t $((batch_tasks / 100 / c))
done

say "bench: $backlog finished + $backlog queued"
fill_trace 0
fill_backlog
for c in "${clients[@]}"; do
  say "bench: backlog, $c clients"
  top_up_backlog
  loadgen "big.$c" -m claim-complete -c "$c" -T "$secs"
done
say "bench: backlog, batches of 100"
top_up_backlog
# Autovacuum off for trace.task until the end of this section, so the next
# point sees exactly what the batched point left: $batch_tasks claimed and
# finished tasks whose dead entries sit at the head of the claim index.
sql -c "ALTER TABLE trace.task SET (autovacuum_enabled = off)" >/dev/null
loadgen "bigb" -m batch -b 100 -c "${clients[-1]}" -n "$batch_tasks"
say "bench: backlog, before and after VACUUM"
loadgen "bigdead" -m claim-complete -c "${clients[0]}" -T "$secs"
sql -c "VACUUM trace.task" >/dev/null
loadgen "bigvac" -m claim-complete -c "${clients[0]}" -T "$secs"
sql -c "ALTER TABLE trace.task RESET (autovacuum_enabled)" >/dev/null
big_done=$(sql -c "SELECT count(*) FROM trace.task_done")
big_queued=$(sql -c "SELECT count(*) FROM trace.task WHERE state = 'queued'")

for c in "${clients[@]}"; do
  say "bench: enqueue, $c clients"
  fill_trace 0
  loadgen "enq.$c" -m enqueue -L -c "$c" -T "$enq_secs"
  fill_trace 0
  loadgen "enqb.$c" -m enqueue -b 1000 -L -c "$c" -T "$enq_secs"
  sql -c "TRUNCATE public.plain_tasks" >/dev/null
  pgbench_run "ins.$c" 1 "$work/insert.sql" "$c" -T "$enq_secs"
  sql -c "TRUNCATE public.plain_tasks" >/dev/null
  pgbench_run "insn.$c" 1 "$work/insert_notify.sql" "$c" -T "$enq_secs"
done
say "bench: wake-up latency at idle"
fill_trace 0
loadgen "wake" -m wakeup-latency -s 200 -g 20

say "bench: synchronous_commit = off"
sql -c "ALTER DATABASE bench SET synchronous_commit = off" >/dev/null
for c in "${clients[@]}"; do
  fill_trace "$((single_fill * 2))"
  loadgen "off.$c" -m claim-complete -c "$c" -T "$enq_secs"
  fill_roofline "$((single_fill * 3))"
  pgbench_run "offroof.$c" 1 "$work/roofline.sql" "$c" -T "$enq_secs"
done
sql -c "ALTER DATABASE bench RESET synchronous_commit" >/dev/null

# The dispatcher's CPU time (utime + stime, in clock ticks) from /proc.
dispatcher_ticks() {
  local pid
  pid=$(sql -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'trace dispatcher'")
  if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
    echo "$pid $(awk '{ print $14 + $15 }' "/proc/$pid/stat")"
  fi
}
say "bench: dispatcher live in the bench database"
stop_cluster
start_cluster -o "-c trace.database=bench"
sleep 2
live_clients=("${clients[0]}" "${clients[-1]}")
for c in "${live_clients[@]}"; do
  fill_trace "$single_fill"
  before=$(dispatcher_ticks)
  t0=$(date +%s.%N)
  loadgen "live.$c" -m claim-complete -c "$c" -T "$secs"
  t1=$(date +%s.%N)
  after=$(dispatcher_ticks)
  R[live.$c.cpu]=$(awk -v b="$before" -v a="$after" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" '
    BEGIN { split(b, x, " "); split(a, y, " ");
            if (x[1] == "" || x[1] != y[1]) { print "restarted"; exit }
            printf "%.0f%%", 100 * (y[2] - x[2]) / hz / (t1 - t0) }')
done
next_due=$(sql -c "SELECT coalesce(trace.next_due_ms()::text, 'NULL')")
pgversion=$(sql -c "SHOW server_version")
stop_cluster
elapsed=$(( $(date +%s) - started ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------

{
echo
echo "Trace benchmark: PostgreSQL $pgversion, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), private cluster"
echo "shared_buffers=1GB max_wal_size=8GB checkpoint_timeout=30min jit=off; synchronous_commit=on unless noted"
echo "${secs}s per timed point; batched points run to $batch_tasks tasks; one libpq connection per client;"
echo "each call is its own transaction.  Roofline: pgbench -M prepared on the same cluster."
echo "CPU in use before start: ${busy_before}%; load average before/after: $load_before / $load_after; took ${elapsed}s"
[ "$busy_before" -le 20 ] || echo "WARNING: other processes were using the CPU before the run: figures are noisy"
echo
echo "1. One task per call (tasks/s; claim latency in ms)"
printf '%7s | %9s %7s %7s | %9s %7s %7s | %9s %8s | %8s\n' \
  clients "claim>cmpl" p50 p99 "c>emit>c" p50 p99 roofline "claim avg" "trace/roof"
for c in "${clients[@]}"; do
  printf '%7s | %9s%1s %6s %7s | %9s%1s %6s %7s | %9s%1s %8s | %8s\n' "$c" \
    "${R[cc.$c.tasks_per_s]}" "${R[cc.$c.flag]:-}" "${R[cc.$c.claim_p50_ms]}" "${R[cc.$c.claim_p99_ms]}" \
    "${R[cec.$c.tasks_per_s]}" "${R[cec.$c.flag]:-}" "${R[cec.$c.claim_p50_ms]}" "${R[cec.$c.claim_p99_ms]}" \
    "${R[roof.$c.tasks_per_s]}" "${R[roof.$c.flag]:-}" "${R[roof.$c.claim_avg_ms]}" \
    "$(ratio "${R[cc.$c.tasks_per_s]}" "${R[roof.$c.tasks_per_s]}")"
done
echo "   roofline = UPDATE jobs SET state='running' WHERE id = (SELECT id ... FOR UPDATE SKIP LOCKED"
echo "   LIMIT 1) RETURNING id, then UPDATE jobs SET state='done'; trace/roof compares claim>cmpl."
echo
echo "2. Batches: claim_tasks(max_tasks 100) -> complete_tasks(100) (tasks/s; claim latency in ms)"
printf '%7s | %9s %7s %7s | %13s %8s | %8s\n' clients trace p50 p99 "roofline x100" "claim avg" "trace/roof"
for c in "${clients[@]}"; do
  printf '%7s | %9s%1s %6s %7s | %13s%1s %7s | %8s\n' "$c" \
    "${R[batch.$c.tasks_per_s]}" "${R[batch.$c.flag]:-}" "${R[batch.$c.claim_p50_ms]}" "${R[batch.$c.claim_p99_ms]}" \
    "${R[roofb.$c.tasks_per_s]}" "${R[roofb.$c.flag]:-}" "${R[roofb.$c.claim_avg_ms]}" \
    "$(ratio "${R[batch.$c.tasks_per_s]}" "${R[roofb.$c.tasks_per_s]}")"
done
echo
echo "3. claim -> complete with a backlog: $backlog queued in trace.task, $backlog finished in trace.task_done"
echo "   (at the end: $big_queued queued, $big_done finished)"
printf '%7s | %11s | %11s %7s %7s | %7s\n' clients "empty queue" backlog p50 p99 change
for c in "${clients[@]}"; do
  printf '%7s | %11s | %10s%1s %7s %7s | %7s\n' "$c" "${R[cc.$c.tasks_per_s]}" \
    "${R[big.$c.tasks_per_s]}" "${R[big.$c.flag]:-}" "${R[big.$c.claim_p50_ms]}" "${R[big.$c.claim_p99_ms]}" \
    "$(pct "${R[big.$c.tasks_per_s]}" "${R[cc.$c.tasks_per_s]}")"
done
last=${clients[-1]}
printf '%7s | %11s | %10s%1s %7s %7s | %7s   (batches of 100)\n' "$last" "${R[batch.$last.tasks_per_s]}" \
  "${R[bigb.tasks_per_s]}" "${R[bigb.flag]:-}" "${R[bigb.claim_p50_ms]}" "${R[bigb.claim_p99_ms]}" \
  "$(pct "${R[bigb.tasks_per_s]}" "${R[batch.$last.tasks_per_s]}")"
first=${clients[0]}
echo "   The same queue right after that batched point, which claimed and finished $batch_tasks tasks"
echo "   (autovacuum held off), then after a VACUUM of trace.task:"
printf '%7s | %11s | %10s%1s %7s %7s | %7s   %s\n' "$first" "${R[cc.$first.tasks_per_s]}" \
  "${R[bigdead.tasks_per_s]}" "${R[bigdead.flag]:-}" "${R[bigdead.claim_p50_ms]}" "${R[bigdead.claim_p99_ms]}" \
  "$(pct "${R[bigdead.tasks_per_s]}" "${R[cc.$first.tasks_per_s]}")" "(no vacuum since $batch_tasks claims)"
printf '%7s | %11s | %10s%1s %7s %7s | %7s   %s\n' "$first" "${R[cc.$first.tasks_per_s]}" \
  "${R[bigvac.tasks_per_s]}" "${R[bigvac.flag]:-}" "${R[bigvac.claim_p50_ms]}" "${R[bigvac.claim_p99_ms]}" \
  "$(pct "${R[bigvac.tasks_per_s]}" "${R[cc.$first.tasks_per_s]}")" "(after VACUUM)"
echo
echo "4. Enqueue (tasks/s; ${enq_secs}s per point; a LISTEN trace_wakeup client attached)"
printf '%7s | %12s %7s %7s %11s | %14s | %12s %14s\n' clients "enqueue_task" p50 p99 "wake-ups" \
  "enqueue_tasks" "plain INSERT" "INSERT+notify"
for c in "${clients[@]}"; do
  printf '%7s | %11s%1s %7s %7s %11s | %13s%1s | %11s%1s %13s%1s\n' "$c" \
    "${R[enq.$c.tasks_per_s]}" "${R[enq.$c.flag]:-}" "${R[enq.$c.call_p50_ms]}" "${R[enq.$c.call_p99_ms]}" \
    "${R[enq.$c.notifications]}/${R[enq.$c.calls]}" \
    "${R[enqb.$c.tasks_per_s]}" "${R[enqb.$c.flag]:-}" \
    "${R[ins.$c.tasks_per_s]}" "${R[ins.$c.flag]:-}" "${R[insn.$c.tasks_per_s]}" "${R[insn.$c.flag]:-}"
done
echo "   enqueue_task: one task and one NOTIFY per transaction; enqueue_tasks: 1000 payloads per call;"
echo "   plain INSERT (+ pg_notify): one row per transaction into a bare table, by pgbench."
echo "   Wake-up latency at idle (enqueue_task sent -> notification received by the listener,"
echo "   ${R[wake.samples]} samples, ${R[wake.missed]} missed): p50 ${R[wake.wakeup_p50_ms]} ms, p99 ${R[wake.wakeup_p99_ms]} ms;"
echo "   the enqueue call itself: p50 ${R[wake.enqueue_p50_ms]} ms, p99 ${R[wake.enqueue_p99_ms]} ms;"
echo "   commit acknowledged to the enqueuer -> notification received: p50 ${R[wake.after_ack_p50_ms]} ms, p99 ${R[wake.after_ack_p99_ms]} ms."
echo
echo "5. synchronous_commit = off (claim -> complete, ${enq_secs}s per point)"
printf '%7s | %9s %7s %7s | %9s | %8s | %10s\n' clients "claim>cmpl" p50 p99 roofline "trace/roof" "vs sync on"
for c in "${clients[@]}"; do
  printf '%7s | %9s%1s %6s %7s | %9s%1s | %8s | %10s\n' "$c" \
    "${R[off.$c.tasks_per_s]}" "${R[off.$c.flag]:-}" "${R[off.$c.claim_p50_ms]}" "${R[off.$c.claim_p99_ms]}" \
    "${R[offroof.$c.tasks_per_s]}" "${R[offroof.$c.flag]:-}" \
    "$(ratio "${R[off.$c.tasks_per_s]}" "${R[offroof.$c.tasks_per_s]}")" \
    "$(pct "${R[off.$c.tasks_per_s]}" "${R[cc.$c.tasks_per_s]}")"
done
echo
echo "6. Dispatcher running in the bench database (sections 1-5 park it where the extension is absent)"
printf '%7s | %12s | %12s %7s | %15s\n' clients "parked" "live" change "dispatcher CPU"
for c in "${live_clients[@]}"; do
  printf '%7s | %12s | %11s%1s %7s | %15s\n' "$c" "${R[cc.$c.tasks_per_s]}" \
    "${R[live.$c.tasks_per_s]}" "${R[live.$c.flag]:-}" \
    "$(pct "${R[live.$c.tasks_per_s]}" "${R[cc.$c.tasks_per_s]}")" "${R[live.$c.cpu]}"
done
echo "   trace.next_due_ms() with nothing scheduled: $next_due (NULL lets the dispatcher sleep)"
echo
echo "7. Server time per call during claim -> emit -> complete, ${clients[0]} client(s) (pg_stat_user_functions;"
echo "   total includes the functions it calls, self does not; commits are outside both)"
printf '%-16s %8s %9s %9s\n' function calls "total ms" "self ms"
echo "$fstats"
echo
echo "* the queue ran dry before the end (figure still valid, run shorter)   ! errors: see bench/out/last-run.log"
} | tee "$table"
