#!/usr/bin/env bash
# Trace DAG benchmark: the "Benchmark (in make bench)" parts of issues 3
# (DAGs) and 4 (versions).  Run it after the extension is built and
# installed (`make bench` does both).  It starts a private PostgreSQL
# cluster, runs every measurement, prints one table per topic and stops the
# cluster.
#
# What is measured (each figure over several repetitions: median and max):
#   1. A 500-job DAG (1 source, 10 aggregators, 240 noop and 249 sql jobs in
#      10 branches of 48-job chains, each sql job reading the two datasets
#      before it, 9 jobs joining branches, one of them reading all 10):
#      trace.validate_dag, the first trace.deploy_dag, a redeploy of the same
#      YAML (no-op) and an execution-only redeploy (the defaults' priority
#      changes: 500 jobs 'updated', no rebuild); then where the server's
#      time goes in a deploy (pg_stat_user_functions).
#   2. Routing: trace.emit_events (batches of 100) and trace.emit_event
#      (batches of 1) from 1 and 4 clients, each its own connection holding
#      the lease of a source task, into datasets read by 1 or 10 consumer
#      jobs: events/s, and tasks created/s (checked in the database: exactly
#      fan-out tasks per event).  pgbench -M prepared, one pgbench process
#      per client (each client has its own lease).  One more point makes the
#      consumer a dispatcher-runtime job, whose wake-up is a latch, not a
#      NOTIFY; wait events are sampled during the 4-client points.
#   3. Aggregator: unit events {block: n} into batches of 10000: the events
#      are emitted first (untimed, reported apart), then the dispatcher's step
#      trace.run_dispatcher_tasks(1000) (trace.dispatcher_batch) runs in a
#      transaction of its own, over and over, until every aggregator task is
#      done; the manifests are counted (exactly one per 10000 units).  Once
#      more with the live dispatcher: the job is paused while the events are
#      emitted, then resumed, and the clock runs until the last manifest.
#   4. Cutover and rollback: a DAG of a source and 100 noop jobs, one dataset
#      each, once with 10,000 rows in each dataset and once with 10,000,000
#      rows in one of them.  Each round deploys a config change of the 100
#      jobs (100 datasets rebuilt into new versions; the source's 10 events
#      are replayed by the dispatcher step), fills the new versions, then
#      times trace.cutover_ready(1) (one transaction moving 100 pointers; 1:
#      the oldest building version, this round's: in the first round the
#      other DAG's version 2 is built too) and trace.rollback_dag().  The
#      rows are written by INSERT ... SELECT generate_series straight into
#      the version relations, for versions 1 and 2 (both data sizes, two
#      sessions side by side, then a CHECKPOINT); later rounds give the new
#      versions the rows of the rolled-back version by swapping the
#      relations' names (that version is never read again), so every
#      cutover moves onto relations as full as the first round's without
#      10M rows generated each round.  Odd rounds time the small DAG first,
#      even rounds the big one.
#      Autovacuum is switched off on the filled relations (reloptions), so
#      that it does not vacuum 2 x 10M fresh rows behind later measurements.
#      One more round runs after section 3, with more task history.
# The dispatcher runs in database "postgres", where the extension is not
# installed (parked), for everything except the last point of section 3:
# nothing but the bench moves tasks, versions or pointers.
#
# Settings as bench/run.sh (a 2-core / 24 GiB machine, synchronous_commit
# on).  As root the cluster runs as the `postgres` user in a scratch
# directory under /tmp, reachable only through its Unix socket there.
#
# Environment:
#   DAG_BENCH_REPS=3           repetitions of each point (sections 1-3)
#   DAG_BENCH_SECONDS=2        length of each routing point
#   DAG_BENCH_AGG_EVENTS=10000 unit events per aggregator repetition
#                              (a multiple of 10000; 200000 = 20 manifests)
#   DAG_BENCH_ROUNDS=7         cutover/rollback rounds per data size
#   DAG_BENCH_BIG_ROWS=10000000  rows of the big dataset in section 4
#   BENCH_KEEP=1               keep the scratch directory (data, logs)
# Raw output goes to bench/out/dag-last-run.log, the table also to
# bench/out/dag-last-run.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bindir=$(/usr/lib/postgresql/15/bin/pg_config --bindir)
reps=${DAG_BENCH_REPS:-3}
secs=${DAG_BENCH_SECONDS:-2}
agg_events=${DAG_BENCH_AGG_EVENTS:-10000}
rounds=${DAG_BENCH_ROUNDS:-7}
small_rows=10000
big_rows=${DAG_BENCH_BIG_ROWS:-10000000}
agg_size=10000
replay_events=10
if [ $((agg_events % agg_size)) -ne 0 ] || [ "$agg_events" -le 0 ]; then
  echo "dag_bench: DAG_BENCH_AGG_EVENTS must be a positive multiple of $agg_size" >&2
  exit 2
fi

mkdir -p "$here/out"
rawlog=$here/out/dag-last-run.log
table=$here/out/dag-last-run.txt
: >"$rawlog"

. "$here/lib.sh"
bench_workdir dag-bench
bg_pids=()

cleanup() {
  local rc=$?
  local p
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bench_cluster_down fast
  if [ "$rc" -ne 0 ] || [ -n "${BENCH_KEEP:-}" ]; then
    echo "dag_bench: scratch directory kept in $work (server log: $work/log)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
die() { say "dag_bench: $*"; exit 1; }

# --- cluster (as bench/run.sh) -----------------------------------------------

bench_cluster 55532 "track_functions = all"

sql() { "${psql_q[@]}" -d bench -At "$@"; }

# timed: runs the psql script on stdin with \timing on.  A line "\echo @@key"
# names the time of the statement after it.  Prints "T key ms" for each named
# time and "R line" for every result line.
timed() {
  { echo '\timing on'; cat; } | sql 2> >(tee -a "$rawlog" >&2) | tee -a "$rawlog" | awk '
    /^@@/ { key = substr($0, 3); next }
    /^Time: / { if (key != "") print "T", key, $2; key = ""; next }
    { print "R", $0 }'
}

declare -A S   # samples: S[key] = " v1 v2 ..."
add() { S[$1]="${S[$1]:-} $2"; }
# stat KEY: "median max" of the samples (as %.Nf, N = $2, default 1)
stat() {
  printf '%s\n' ${S[$1]:-} | sort -g | awk -v d="${2:-1}" 'NF { a[++n] = $1 }
    END { if (n == 0) { print "- -"; exit }
          m = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2;
          printf "%.*f %.*f\n", d, m, d, a[n] }'
}
med() { stat "$1" "${2:-1}" | cut -d' ' -f1; }
mx() { stat "$1" "${2:-1}" | cut -d' ' -f2; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

cpu_busy() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    u = y[1] - x[1]; i = y[2] - x[2]; printf "%.0f", (u + i > 0) ? 100 * u / (u + i) : 0 }'
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- DAG files -------------------------------------------------------------

ydir=$work/yaml
mkdir -p "$ydir"

# big_dag NAME PREFIX PRIORITY: the 500-job DAG (see the header).  Jobs are
# listed producers first, as people write them.
big_dag() {
  awk -v dag="$1" -v p="$2" -v prio="$3" 'BEGIN {
    q = "\"";
    printf "dag: %s\ndescription: 500-job benchmark DAG\ndefaults:\n  priority: %d\njobs:\n", dag, prio;
    printf "  src: {operator: noop, activation: source, outputs: [%s.src]}\n", p;
    for (b = 0; b < 10; b++) {
      printf "  b%d_agg: {operator: aggregator, inputs: [%s.src], config: {cursor: block, size: %d}, outputs: [%s.b%d_agg]}\n", b, p, 100 * (b + 1), p, b;
      prev2 = ""; prev = p ".b" b "_agg";
      for (j = 1; j <= 48; j++) {
        out = p ".b" b "_j" j;
        if (j % 2 == 1) {
          printf "  b%d_j%d:\n    operator: sql\n", b, j;
          if (prev2 != "") {
            printf "    inputs: [%s, %s]\n", prev, prev2;
            printf "    config: {query: %sSELECT x.\\%srow\\%s FROM {{%s}} x UNION ALL SELECT y.\\%srow\\%s FROM {{%s}} y%s}\n", q, q, q, prev, q, q, prev2, q;
          } else {
            printf "    inputs: [%s]\n", prev;
            printf "    config: {query: %sSELECT x.\\%srow\\%s FROM {{%s}} x%s}\n", q, q, q, prev, q;
          }
          printf "    outputs: [%s]\n", out;
        } else {
          printf "  b%d_j%d: {operator: noop, runtime: dispatcher, inputs: [%s], config: {step: %d}, outputs: [%s]}\n", b, j, prev, j, out;
        }
        prev2 = prev; prev = out;
      }
    }
    for (k = 0; k < 8; k++)
      printf "  x%d:\n    operator: sql\n    inputs: [%s.b%d_j48, %s.b%d_j48]\n    config: {query: %sSELECT a.\\%srow\\%s FROM {{%s.b%d_j48}} a UNION ALL SELECT b.\\%srow\\%s FROM {{%s.b%d_j48}} b%s}\n    outputs: [%s.x%d]\n", k, p, k, p, k + 1, q, q, q, p, k, q, q, p, k + 1, q, p, k;
    printf "  x8:\n    operator: sql\n    inputs: [";
    for (b = 0; b < 10; b++) printf "%s%s.b%d_j48", (b ? ", " : ""), p, b;
    printf "]\n    config:\n      query: >\n";
    for (b = 0; b < 10; b++) printf "        %sSELECT t%d.%srow%s FROM {{%s.b%d_j48}} t%d\n", (b ? "UNION ALL " : ""), b, q, q, p, b, b;
    printf "    outputs: [%s.x8]\n", p;
  }'
}

# route_dag NAME FANOUT RUNTIME: 4 sources, FANOUT consumers reading all 4.
route_dag() {
  local s c
  echo "dag: $1"
  echo "jobs:"
  for s in 1 2 3 4; do
    echo "  src$s: {operator: noop, activation: source, priority: 100, outputs: [$1.s$s]}"
  done
  for c in $(seq 1 "$2"); do
    echo "  c$c: {operator: noop, runtime: $3, inputs: [$1.s1, $1.s2, $1.s3, $1.s4], outputs: [$1.c$c]}"
  done
}

# cut_dag NAME PREFIX ROUND: a source and 100 noop jobs reading it, one
# output each; ROUND is in every job's config, so a new ROUND rebuilds all 100.
cut_dag() {
  local i
  echo "dag: $1"
  echo "jobs:"
  echo "  src: {operator: noop, activation: source, priority: 100, outputs: [$2.src]}"
  for i in $(seq -w 1 100); do
    echo "  j$i: {operator: noop, runtime: dispatcher, inputs: [$2.src], config: {round: $3}, outputs: [$2.d$i]}"
  done
}

for r in $(seq 1 "$reps"); do
  big_dag "big_r$r" "g$r" 0 >"$ydir/big_r$r.yaml"
  big_dag "big_r$r" "g$r" 1 >"$ydir/big_r${r}_exec.yaml"
done
[ "$(grep -c '^  [a-z0-9_]*:' "$ydir/big_r1.yaml")" -eq 501 ] || die "the generated DAG does not have 500 jobs"
route_dag rt1 1 lambda >"$ydir/rt1.yaml"
route_dag rt10 10 lambda >"$ydir/rt10.yaml"
route_dag rtd 1 dispatcher >"$ydir/rtd.yaml"
for r in $(seq 1 $((rounds + 2))); do
  cut_dag cut_s cs "$r" >"$ydir/cut_s_$r.yaml"
  cut_dag cut_b cb "$r" >"$ydir/cut_b_$r.yaml"
done
cat >"$ydir/agg.yaml" <<EOF
dag: agg
jobs:
  units: {operator: noop, activation: source, priority: 100, outputs: [agg.units]}
  batches:
    operator: aggregator
    inputs: [agg.units]
    config: {cursor: block, size: $agg_size}
    outputs: [agg.batches]
EOF
chmod -R a+rX "$ydir"

cat >"$work/emit_batch.sql" <<'EOF'
SELECT cardinality(trace.emit_events(:task::bigint, :att::int, :tok::uuid, :ds::text, array_agg(k::text ORDER BY k), array_agg(jsonb_build_object('block', k) ORDER BY k))) FROM (SELECT nextval('public.bench_key') AS k FROM generate_series(1, :n::int)) s;
EOF
cat >"$work/emit_one.sql" <<'EOF'
SELECT trace.emit_event(:task::bigint, :att::int, :tok::uuid, :ds::text, k::text, jsonb_build_object('block', k)) FROM nextval('public.bench_key') k;
EOF

# --- start -----------------------------------------------------------------

busy_before=$(cpu_busy)
load_before=$(loadavg)
if [ "$busy_before" -gt 20 ]; then
  say "dag_bench: warning: the machine is already ${busy_before}% busy; the figures will be noisy"
fi
started=$(date +%s)
start_cluster
"${psql_q[@]}" -d postgres -c "CREATE DATABASE bench"
sql -c "CREATE EXTENSION trace" >/dev/null
sql -f "$here/dag_bench.sql" >/dev/null
pgversion=$(sql -c "SHOW server_version")
say "dag_bench: cluster on port $port in $work; $reps repetitions, ${secs}s per routing point"

# fstats PER [TOP [NAMES]]: the server-time lines (see bench_fstats).
fstats() {
  sleep 0.5   # backends flush their function statistics as they exit
  sql -c "SELECT * FROM public.bench_fstats($1, ${2:-8}, ${3:-NULL})"
}
reset_stats() { sleep 0.3; sql -c "SELECT pg_stat_reset()" >/dev/null; }

# --- 1. deploy -------------------------------------------------------------

say "dag_bench: 1. deploy of a 500-job DAG"
sec1_start=$(date +%s)
for r in $(seq 1 "$reps"); do
  out=$(timed <<EOF
\echo @@validate
SELECT count(*) FROM trace.validate_dag(pg_read_file('$ydir/big_r$r.yaml'));
EOF
)
  [ "$(awk '$1 == "R" { print $2 }' <<<"$out")" = 0 ] || die "the 500-job DAG does not validate: $out"
  add validate "$(awk '$1 == "T" { print $3 }' <<<"$out")"
done
reset_stats
for r in $(seq 1 "$reps"); do
  out=$(timed <<EOF
\echo @@deploy
SELECT dag_version || ' ' || (SELECT count(*) FROM jsonb_array_elements(plan->'jobs') j WHERE j->>'action' = 'added')
FROM trace.deploy_dag(pg_read_file('$ydir/big_r$r.yaml'));
EOF
)
  [ "$(awk '$1 == "R" { print $2, $3 }' <<<"$out")" = "1 500" ] || die "first deploy: unexpected result: $out"
  add deploy "$(awk '$1 == "T" { print $3 }' <<<"$out")"
done
fs_deploy=$(fstats "$reps" 10)
for r in $(seq 1 "$reps"); do
  out=$(timed <<EOF
\echo @@noop
SELECT dag_version || ' ' || (plan->>'noop') FROM trace.deploy_dag(pg_read_file('$ydir/big_r$r.yaml'));
EOF
)
  [ "$(awk '$1 == "R" { print $2, $3 }' <<<"$out")" = "1 true" ] || die "no-op redeploy: unexpected result: $out"
  add noop "$(awk '$1 == "T" { print $3 }' <<<"$out")"
done
reset_stats
for r in $(seq 1 "$reps"); do
  out=$(timed <<EOF
\echo @@exec
SELECT dag_version || ' ' || (plan->>'rebuild') || ' ' || (SELECT count(*) FROM jsonb_array_elements(plan->'jobs') j WHERE j->>'action' = 'updated')
FROM trace.deploy_dag(pg_read_file('$ydir/big_r${r}_exec.yaml'));
EOF
)
  [ "$(awk '$1 == "R" { print $2, $3, $4 }' <<<"$out")" = "2 false 500" ] || die "execution-only redeploy: unexpected result: $out"
  add exec "$(awk '$1 == "T" { print $3 }' <<<"$out")"
done
fs_exec=$(fstats "$reps" 8)
sec1_secs=$(( $(date +%s) - sec1_start ))

# --- 2. routing ------------------------------------------------------------

say "dag_bench: 2. routing"
sec2_start=$(date +%s)
for d in rt1 rt10 rtd; do
  sql -c "SELECT 1 FROM trace.deploy_dag(pg_read_file('$ydir/$d.yaml'))" >/dev/null
done
sql -c "SELECT public.bench_claim_sources()" >/dev/null
[ "$(sql -c "SELECT count(*) FROM public.bench_lease WHERE dag IN ('rt1', 'rt10', 'rtd') AND job LIKE 'src_'")" = 12 ] ||
  die "could not lease the 12 routing sources"

reset_route() {
  sql >/dev/null <<EOF
DELETE FROM trace.task t USING trace.job j
WHERE j.job_id = t.job_id AND j.dag = '$1' AND j.activation = 'reactive';
DELETE FROM trace.event WHERE dataset_id LIKE '$1.%';
EOF
  sql -c "VACUUM ANALYZE trace.task" -c "VACUUM ANALYZE trace.event" >/dev/null
}

# route_point KEY DAG CLIENTS BATCH [SAMPLE]: BATCH 1 uses emit_event.
route_point() {
  local key=$1 dag=$2 c=$3 n=$4 sample=${5:-}
  local i=0 t a tok job pids=() script spid="" ev tasks tps sum out f
  reset_route "$dag"
  script=$work/emit_batch.sql
  if [ "$n" -eq 1 ]; then script=$work/emit_one.sql; fi
  while IFS='|' read -r t a tok job; do
    i=$((i + 1))
    [ "$i" -gt "$c" ] && break
    "$bindir/pgbench" -n -M prepared -h "$work" -p "$port" -U postgres -c 1 -T "$secs" \
      -D task="$t" -D att="$a" -D tok="$tok" -D ds="$dag.s${job#src}" -D n="$n" \
      -f "$script" bench >"$work/pgbench.$i" 2>&1 &
    pids+=($!)
  done < <(sql -c "SELECT task_id, attempt, lease_token, job FROM public.bench_lease
                   WHERE dag = '$dag' AND job LIKE 'src_' ORDER BY job")
  if [ -n "$sample" ]; then
    sleep 0.3
    "${psql_q[@]}" -d bench -At >"$work/waits.$key" <<<"SELECT CASE WHEN state <> 'active' THEN 'client' ELSE coalesce(wait_event_type || ':' || wait_event, 'CPU') END FROM pg_stat_activity WHERE application_name = 'pgbench' \\watch 0.05" 2>/dev/null &
    spid=$!
    bg_pids+=("$spid")
  fi
  for p in "${pids[@]}"; do wait "$p" || true; done
  if [ -n "$spid" ]; then
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    bg_pids=()
  fi
  sum=0
  for f in "$work"/pgbench.*; do
    out=$(cat "$f")
    printf '%s (%s):\n%s\n' "$key" "$f" "$out" >>"$rawlog"
    if grep -q "aborted\|error" <<<"$out" || ! grep -q "number of failed transactions: 0 " <<<"$out"; then
      die "routing point $key: pgbench failed (see $rawlog)"
    fi
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
    sum=$(awk -v s="$sum" -v t="$tps" -v n="$n" 'BEGIN { printf "%.1f", s + t * n }')
  done
  rm -f "$work"/pgbench.*
  read -r ev tasks < <(sql -F ' ' -c "
    SELECT (SELECT count(*) FROM trace.event WHERE dataset_id LIKE '$dag.s_'),
           (SELECT count(*) FROM trace.task t JOIN trace.job j USING (job_id)
            WHERE j.dag = '$dag' AND j.activation = 'reactive')")
  add "route.$key.ev" "$sum"
  add "route.$key.tasks" "$(awk -v s="$sum" -v e="$ev" -v t="$tasks" 'BEGIN { printf "%.1f", (e > 0) ? s * t / e : 0 }')"
  add "route.$key.ratio" "$(ratio "$tasks" "$ev")"
  echo "$key: events/s=$sum events=$ev tasks=$tasks" >>"$rawlog"
}

# (d) right after its NOTIFY twin, so that the two see the same machine load
points=("1 100 1 rt1" "1 100 4 rt1" "1 1 1 rt1" "1 1 4 rt1" "d 1 4 rtd"
        "10 100 1 rt10" "10 100 4 rt10" "10 1 1 rt10" "10 1 4 rt10")
for r in $(seq 1 "$reps"); do
  for pt in "${points[@]}"; do
    read -r f b c d <<<"$pt"
    key="$f.$b.$c"
    if [ "$r" = 1 ] && [ "$key" = "10.100.1" ]; then reset_stats; fi
    sample=""
    if [ "$c" = 4 ] && [ "$b" = 1 ]; then sample=1; fi
    route_point "$key" "$d" "$c" "$b" "$sample"
    if [ "$r" = 1 ] && [ "$key" = "10.100.1" ]; then
      fs_route_events=$(sql -c "SELECT count(*) FROM trace.event WHERE dataset_id LIKE 'rt10.s_'")
      fs_route=$(fstats "$fs_route_events" 7)
    fi
  done
done
# wait-event shares, summed over the repetitions' samples
waits() {
  cat "$work"/waits."$1" 2>/dev/null | awk 'NF { n[$1]++; t++ }
    END { for (k in n) printf "%s %.0f%%\n", k, 100 * n[k] / t }' | sort -k2 -rn | head -4 | paste -sd' ' | sed 's/ \([0-9]*%\)/ \1,/g; s/,$//'
}
waits_notify=$(waits 1.1.4)
waits_latch=$(waits d.1.4)
waits_notify10=$(waits 10.1.4)
for d in rt1 rt10 rtd; do reset_route "$d"; done
sec2_secs=$(( $(date +%s) - sec2_start ))

# --- 4. cutover and rollback (before 3: the dispatcher must stay parked) ----

say "dag_bench: 4. cutover and rollback"
sec4_start=$(date +%s)
for d in cut_s cut_b; do
  sql -c "SELECT 1 FROM trace.deploy_dag(pg_read_file('$ydir/${d}_1.yaml'))" >/dev/null
done
sql -c "SELECT public.bench_claim_sources()" >/dev/null
# each source emits $replay_events events: 100 tasks each, replayed by every rebuild
for d in cut_s cut_b; do
  sql >/dev/null <<EOF
SELECT trace.emit_events(l.task_id, l.attempt, l.lease_token, d.dataset_id,
                         ARRAY(SELECT g::text FROM generate_series(1, $replay_events) g),
                         ARRAY(SELECT jsonb_build_object('block', g) FROM generate_series(1, $replay_events) g))
FROM public.bench_lease l JOIN trace.dataset d ON d.dag = l.dag AND d.job_name = l.job
WHERE l.dag = '$d' AND l.job = 'src';
EOF
done
sql -c "CALL public.bench_drain(1000)" >/dev/null

# deploy_round DAG VERSION: deploys version VERSION (its jobs' config says
# round VERSION), checks the plan, runs the replayed tasks.
deploy_round() {
  local d=$1 v=$2 out
  out=$(sql -F ' ' -c "SELECT dag_version, plan->>'rebuild', (SELECT count(*) FROM jsonb_array_elements(plan->'jobs') j WHERE j->>'action' = 'rebuild')
                       FROM trace.deploy_dag(pg_read_file('$ydir/${d}_$v.yaml'))")
  [ "$out" = "$v true 100" ] || die "$d: deploy of version $v: unexpected plan: $out"
  out=$(sql -c "CALL public.bench_drain(1000)")
  [ "$out" = $((100 * replay_events)) ] || die "$d: version $v replayed $out tasks, expected $((100 * replay_events))"
}
for d in cut_s cut_b; do deploy_round "$d" 2; done
# versions 1 and 2 get their rows: one session each, side by side
fill_pids=()
for v in 1 2; do
  sql >"$work/fill.$v" 2>&1 <<EOF &
SELECT public.bench_fill('cut_s', $v, $small_rows, NULL, 0);
SELECT public.bench_fill('cut_b', $v, $small_rows, 'cb.d001', $big_rows);
ANALYZE trace_data.$(sql -c "SELECT split_part(relation, '.', 2) FROM public.bench_version_relations('cut_b', $v) WHERE dataset_id = 'cb.d001'");
EOF
  fill_pids+=($!)
done
fill_t0=$(date +%s)
for p in "${fill_pids[@]}"; do wait "$p" || die "filling the dataset versions failed: $(cat "$work"/fill.*)"; done
# settle: the first round must not commit behind the writeback of 2 x 11M rows
sql -c "CHECKPOINT" >/dev/null
fill_secs=$(( $(date +%s) - fill_t0 ))
cat "$work"/fill.* >>"$rawlog"
expect_s=$((100 * small_rows))
expect_b=$((99 * small_rows + big_rows))
[ "$(sed -n 1p "$work/fill.1")" = "$expect_s" ] && [ "$(sed -n 2p "$work/fill.1")" = "$expect_b" ] ||
  die "filling version 1 wrote $(paste -sd' ' "$work/fill.1") rows"

# cut_round DAG VERSION KEY: VERSION is built and filled; times its cutover
# and the rollback to version 1 (samples cut.KEY and rb.KEY).
big_tuples=""
cut_round() {
  local d=$1 v=$2 key=$3 blocker out
  blocker=$(sql -c "SELECT coalesce(trace.version_blocker('default', '$d', $v), 'caught up')")
  [ "$blocker" = "caught up" ] || die "$d version $v is not caught up: $blocker"
  out=$(timed <<EOF
\echo @@cutover
SELECT trace.cutover_ready(1);
SELECT active_version FROM trace.dag WHERE dag = '$d';
EOF
)
  [ "$(awk '$1 == "R" { print $2 }' <<<"$out" | paste -sd' ')" = "1 $v" ] || die "$d: cutover to $v: $out"
  add "cut.$key" "$(awk '$1 == "T" { print $3 }' <<<"$out")"
  if [ "$d" = cut_b ]; then
    big_tuples+=" $(sql -c "SELECT c.reltuples::bigint FROM trace.datasets s JOIN pg_class c ON c.oid = s.relation::regclass WHERE s.dataset_id = 'cb.d001'")"
  fi
  out=$(timed <<EOF
\echo @@rollback
SELECT active_version || ' ' || rolled_back_version FROM trace.rollback_dag('$d');
EOF
)
  [ "$(awk '$1 == "R" { print $2, $3 }' <<<"$out")" = "1 $v" ] || die "$d: rollback from $v: $out"
  add "rb.$key" "$(awk '$1 == "T" { print $3 }' <<<"$out")"
}

reset_stats
hist_before=$(sql -c "SELECT count(*) FROM trace.task_done")
for r in $(seq 1 "$rounds"); do
  v=$((r + 1))
  # small first in odd rounds (the first must: cutover_ready(1) takes the
  # oldest building version, cut_s's), big first in even ones
  order="cut_s cut_b"
  if [ $((r % 2)) -eq 0 ]; then order="cut_b cut_s"; fi
  for d in $order; do
    if [ "$r" -gt 1 ]; then
      deploy_round "$d" "$v"
      [ "$(sql -c "SELECT public.bench_swap('$d', $r, $v)")" = 100 ] || die "$d: swap of versions $r and $v"
    fi
    cut_round "$d" "$v" "$d"
  done
done
hist_after=$(sql -c "SELECT count(*) FROM trace.task_done")
fs_cut=$(fstats NULL 8 "ARRAY['cutover_ready', 'rollback_dag', 'apply_version', 'version_blocker', 'point_view', 'discard_version', 'cancel_job_tasks', 'apply_execution', 'lock_dag', 'reader_columns', 'start_source']")
for tp in $big_tuples; do
  [ "$tp" -ge $((big_rows * 9 / 10)) ] || die "the big dataset's current relation holds $tp rows after a cutover, expected $big_rows"
done
sec4_secs=$(( $(date +%s) - sec4_start ))

# --- 3. aggregator ---------------------------------------------------------

say "dag_bench: 3. aggregator"
sec3_start=$(date +%s)
sql -c "SELECT 1 FROM trace.deploy_dag(pg_read_file('$ydir/agg.yaml'))" >/dev/null
sql -c "SELECT public.bench_claim_sources()" >/dev/null
agg_job=$(sql -c "SELECT job_id FROM trace.job WHERE dag = 'agg' AND name = 'batches' AND state = 'active'")
agg_next=0       # the next unit to emit
agg_closed=0     # manifests so far

# agg_emit: emits the next $agg_events units, 10000 per call, one
# transaction each; records the emit rate.
agg_emit() {
  local out ms
  out=$( { for ((b = agg_next; b < agg_next + agg_events; b += 10000)); do
             echo "\\echo @@emit"
             echo "SELECT count(*) FROM (SELECT unnest(trace.emit_events(l.task_id, l.attempt, l.lease_token, 'agg.units',
                     ARRAY(SELECT g::text FROM generate_series($b, $b + 9999) g),
                     ARRAY(SELECT jsonb_build_object('block', g) FROM generate_series($b, $b + 9999) g)))
                   FROM public.bench_lease l WHERE l.dag = 'agg' AND l.job = 'units') s;"
           done; } | timed)
  ms=$(awk '$1 == "T" { s += $3 } END { print s }' <<<"$out")
  add agg.emit "$(awk -v e="$agg_events" -v ms="$ms" 'BEGIN { printf "%.0f", e / ms * 1000 }')"
  agg_next=$((agg_next + agg_events))
  sql -c "VACUUM ANALYZE trace.task" >/dev/null
}
# agg_check KEY MS: checks every task ran and exactly one manifest per
# $agg_size units exists; records events/s.
agg_check() {
  local key=$1 ms=$2 got left failed
  agg_closed=$((agg_closed + agg_events / agg_size))
  read -r got left failed < <(sql -F ' ' -c "
    SELECT (SELECT count(*) FROM trace_data.\"agg.batches\"),
           (SELECT count(*) FROM trace.task WHERE job_id = $agg_job),
           (SELECT count(*) FROM trace.task_done WHERE job_id = $agg_job AND state <> 'succeeded')")
  local events
  events=$(sql -c "SELECT count(*) FROM trace.event WHERE dataset_id = 'agg.batches'")
  [ "$got" = "$agg_closed" ] && [ "$events" = "$agg_closed" ] && [ "$left" = 0 ] && [ "$failed" = 0 ] ||
    die "aggregator $key: $got manifest rows and $events manifest events (expected $agg_closed), $left tasks left, $failed not succeeded"
  add "agg.$key" "$(awk -v e="$agg_events" -v ms="$ms" 'BEGIN { printf "%.0f", e / ms * 1000 }')"
  echo "aggregator $key: $agg_events events in $ms ms; manifests $got" >>"$rawlog"
}
agg_drain() {
  local key=$1 batch=$2 out ms
  out=$(timed <<EOF
\echo @@drain
CALL public.bench_drain($batch);
EOF
)
  [ "$(awk '$1 == "R" { print $2 }' <<<"$out")" = "$agg_events" ] || die "aggregator: drain ran $out tasks, expected $agg_events"
  ms=$(awk '$1 == "T" { print $3 }' <<<"$out")
  agg_check "$key" "$ms"
}
for r in $(seq 1 "$reps"); do
  agg_emit
  if [ "$r" = 1 ]; then reset_stats; fi
  agg_drain loop1000 1000
  if [ "$r" = 1 ]; then fs_agg=$(fstats "$agg_events" 8); fi
done
agg_emit
agg_drain loop100 100

# cutover once more (10k rows each), now that section 3 left its finished
# tasks in trace.task_done
v=$((rounds + 2))
deploy_round cut_s "$v"
[ "$(sql -c "SELECT public.bench_swap('cut_s', $((v - 1)), $v)")" = 100 ] || die "cut_s: swap of versions $((v - 1)) and $v"
hist_late=$(sql -c "SELECT count(*) FROM trace.task_done")
cut_round cut_s "$v" late

say "dag_bench: 3. aggregator, live dispatcher"
stop_cluster
start_cluster -o "-c trace.database=bench"
sleep 2
[ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'trace dispatcher' AND datname = 'bench'")" = 1 ] ||
  die "the dispatcher did not start in the bench database"
sql -c "SELECT trace.pause_job('agg', 'batches')" >/dev/null
agg_emit
ms=$(sql -c "CALL public.bench_resume_wait('agg', 'batches', $((agg_closed + agg_events / agg_size)), 600)")
[ "$ms" != "-1" ] || die "aggregator, live dispatcher: not done within 600 s"
agg_check live "$ms"
stop_cluster
sec3_secs=$(( $(date +%s) - sec3_start ))
elapsed=$(( $(date +%s) - started ))
load_after=$(loadavg)
echo "section seconds: deploy $sec1_secs, routing $sec2_secs, cutover $sec4_secs (fill ${fill_secs}s), aggregator $sec3_secs" >>"$rawlog"

# --- report ----------------------------------------------------------------

row2() { printf '   %-44s %9s %9s\n' "$1" "$(med "$2")" "$(mx "$2")"; }
{
echo
echo "Trace DAG benchmark: PostgreSQL $pgversion, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), private cluster, dispatcher parked unless noted"
echo "shared_buffers=1GB max_wal_size=8GB checkpoint_timeout=30min jit=off synchronous_commit=on; each call its own transaction"
echo "CPU in use before start: ${busy_before}%; load average before/after: $load_before / $load_after; took ${elapsed}s"
echo "(deploy ${sec1_secs}s, routing ${sec2_secs}s, cutover ${sec4_secs}s of which ${fill_secs}s filling rows, aggregator ${sec3_secs}s)"
[ "$busy_before" -le 20 ] || echo "WARNING: other processes were using the CPU before the run: figures are noisy"
echo
echo "1. A 500-job DAG (1 source, 10 aggregators, 240 noop, 249 sql; fan-out up to 10, fan-in up to 10),"
echo "   76 KB of YAML; $reps repetitions, each on a fresh DAG (ms, client-side, commit included)"
printf '   %-44s %9s %9s\n' "" median max
row2 "trace.validate_dag" validate
row2 "trace.deploy_dag, first deploy (500 added)" deploy
row2 "redeploy of the same YAML (no-op)" noop
row2 "execution-only redeploy (500 updated)" exec
echo "   Server time per first deploy (pg_stat_user_functions: calls over all $reps, ms per deploy;"
echo "   total includes the functions it calls, self does not):"
printf '   %-24s %9s %11s %11s\n' function calls "total ms" "self ms"
echo "$fs_deploy"
echo "   Server time per execution-only redeploy (calls over all $reps, ms per deploy):"
printf '   %-24s %9s %11s %11s\n' function calls "total ms" "self ms"
echo "$fs_exec"
echo
echo "2. Routing: clients each holding a source lease emit into datasets read by 1 or 10 consumer jobs"
echo "   (tasks made in the emitting transaction); ${secs}s per point, $reps repetitions; pgbench -M prepared"
printf '   %7s %6s %7s | %10s %9s | %10s %9s | %11s\n' fan-out batch clients "events/s" max "tasks/s" max "tasks/event"
for pt in "${points[@]}"; do
  read -r f b c d <<<"$pt"
  key="$f.$b.$c"
  label=$f
  [ "$f" = d ] && label="1 (d)"
  printf '   %7s %6s %7s | %10s %9s | %10s %9s | %11s\n' "$label" "$b" "$c" \
    "$(med "route.$key.ev" 0)" "$(mx "route.$key.ev" 0)" "$(med "route.$key.tasks" 0)" "$(mx "route.$key.tasks" 0)" \
    "$(printf '%s\n' ${S[route.$key.ratio]} | sort -u | paste -sd/)"
done
echo "   batch 100: trace.emit_events with 100 events per call; batch 1: trace.emit_event.  Consumers run on"
echo "   runtime lambda (wake-up: NOTIFY trace_wakeup in the emitting transaction); (d): a dispatcher-runtime"
echo "   consumer, woken through the dispatcher's latch instead of NOTIFY."
echo "   What the 4 clients' backends were doing, batch 1 (pg_stat_activity every 50 ms):"
echo "     fan-out 1:  $waits_notify"
echo "     fan-out 10: $waits_notify10"
echo "     (d):        $waits_latch"
echo "   (Lock:object = the lock PostgreSQL takes from a NOTIFY-ing transaction's pre-commit to its end,"
echo "   which serializes such commits, WAL flush included.)"
echo "   Server time per event, fan-out 10, batch 100, 1 client (calls over $fs_route_events events, ms per event):"
printf '   %-24s %9s %11s %11s\n' function calls "total ms" "self ms"
echo "$fs_route"
echo
echo "3. Aggregator: unit events {block: n} into batches of $agg_size; $agg_events events per repetition"
echo "   ($((agg_events / agg_size)) manifest(s) each), emitted first, then timed until every aggregator task is done"
printf '   %-58s %9s %9s\n' "" "events/s" max
printf '   %-58s %9s %9s\n' "run_dispatcher_tasks(1000) in a loop, $reps repetitions" "$(med agg.loop1000 0)" "$(mx agg.loop1000 0)"
printf '   %-58s %9s %9s\n' "run_dispatcher_tasks(100) in a loop, 1 run (comparison)" "$(med agg.loop100 0)" "$(mx agg.loop100 0)"
printf '   %-58s %9s %9s\n' "live dispatcher (trace.dispatcher_batch 1000), 1 run" "$(med agg.live 0)" "$(mx agg.live 0)"
printf '   %-58s %9s %9s\n' "(setup) emit_events, 10000 per call, fan-out 1" "$(med agg.emit 0)" "$(mx agg.emit 0)"
echo "   Manifests: $agg_closed in trace_data.\"agg.batches\" and $agg_closed manifest events, for $agg_next units: exactly one"
echo "   per batch of $agg_size; no task failed."
echo "   Server time per event, first repetition of the 1000-task loop (calls over $agg_events events, ms per event):"
printf '   %-24s %9s %11s %11s\n' function calls "total ms" "self ms"
echo "$fs_agg"
echo
echo "4. Cutover and rollback: a DAG of a source and 100 noop jobs, one dataset each; each round deploys a"
echo "   config change of the 100 jobs (100 datasets rebuilt, $replay_events events replayed each), then times"
echo "   trace.cutover_ready(1) (one transaction moving 100 pointers) and trace.rollback_dag(); $rounds rounds (ms)"
printf '   %-22s | %19s | %19s | %11s\n' "" "100 x $small_rows rows" "one with $big_rows" "ratio"
printf '   %-22s | %9s %9s | %9s %9s | %11s\n' "" median max median max "big/small"
for k in cut rb; do
  label="trace.cutover_ready(1)"
  [ "$k" = rb ] && label="trace.rollback_dag()"
  printf '   %-22s | %9s %9s | %9s %9s | %11s\n' "$label" "$(med "$k.cut_s")" "$(mx "$k.cut_s")" \
    "$(med "$k.cut_b")" "$(mx "$k.cut_b")" "$(ratio "$(med "$k.cut_b")" "$(med "$k.cut_s")")"
done
rb_max=$(awk -v a="$(mx rb.cut_s)" -v b="$(mx rb.cut_b)" 'BEGIN { print (a > b) ? a : b }')
echo "   Goal: the same milliseconds whatever the data size; rollback under 50 ms: $(awk -v m="$rb_max" 'BEGIN { print (m < 50) ? "met (max " m " ms)" : "NOT met (max " m " ms)" }')."
echo "   The big dataset's current relation after each cutover: $(printf '%s\n' $big_tuples | sort -u | paste -sd' ') rows (pg_class.reltuples)."
echo "   trace.task_done held $hist_before to $hist_after finished tasks during these rounds.  One more round"
echo "   (100 x $small_rows rows) after section 3, with $hist_late finished tasks: cutover_ready(1) $(med cut.late) ms,"
echo "   rollback_dag() $(med rb.late) ms."
echo "   Server time per call of each function, all rounds (ms per call; the rounds' deploys call some of them too):"
printf '   %-24s %9s %11s %11s\n' function calls "total ms" "self ms"
echo "$fs_cut"
} | tee "$table"
