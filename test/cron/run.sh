#!/usr/bin/env bash
# trace.cron_next against independent oracles (test/cron/oracle.mjs): a
# model of the documented rules on every case, croner and cron-parser (from
# npm, into <repo>/.cache/npm-cron) on the cases away from a change of the
# zone's UTC offset, where their DST rules differ from Trace's by design.
# Thousands of generated cases (expressions x zones with 30-minute and
# 2-hour DST jumps, leap days) and chains of fire times across offset
# changes, on a private cluster.
#
#   bash test/cron/run.sh        TRACE_CRON_CASES (6000), TRACE_CRON_SEED (12)
#
# Prints "ok - ..." / "not ok - ..." lines; exits non-zero when any failed.
. "$(dirname "$0")/../worker/lib.sh"
here=$TW_ROOT/test/cron
cache=$TW_ROOT/.cache/npm-cron
packages=(croner@11.0.1 cron-parser@5.10.7)
cases=${TRACE_CRON_CASES:-6000}
seed=${TRACE_CRON_SEED:-12}

# The pinned oracles, installed once (the versions decide the semantics the
# oracle's comments describe).
if ! [ -f "$cache/node_modules/croner/package.json" ] ||
   ! grep -q '"version": "11.0.1"' "$cache/node_modules/croner/package.json" ||
   ! grep -q '"version": "5.10.7"' "$cache/node_modules/cron-parser/package.json" 2>/dev/null; then
  echo "# installing ${packages[*]} into $cache"
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "${packages[@]}" >&2 ||
    { not_ok "npm install ${packages[*]}"; exit 1; }
fi
oracle() { node "$here/oracle.mjs" "$1" "$cache/node_modules" "${@:2}"; }

start_cluster
work=$SCRATCH/cron
mkdir -p "$work"
chmod 755 "$work"
oracle cases "$seed" "$cases" >"$work/cases.tsv" || { not_ok "generate the cases"; exit 1; }
oracle sequences "$seed" 150 >"$work/seqs.tsv" || { not_ok "generate the sequences"; exit 1; }
say "seed $seed: $(wc -l <"$work/cases.tsv") cases, $(wc -l <"$work/seqs.tsv") sequences"

# Trace's answers, in one statement each: a case per row; a sequence as the
# chain cron_next(cron_next(start)) ... of its length.
sql "CREATE TABLE cron_case (id text, expr text, zone text, after timestamptz)" >/dev/null
sql "CREATE TABLE cron_seq (id text, expr text, zone text, start timestamptz, steps int)" >/dev/null
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT_T" -U postgres -d "$TEST_DB" \
  -c "\\copy cron_case FROM '$work/cases.tsv'" -c "\\copy cron_seq FROM '$work/seqs.tsv'" ||
  { not_ok "load the cases"; exit 1; }
fmt="to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
# shellcheck disable=SC2059
sql "SET timezone = 'UTC';
     SELECT id, coalesce($(printf "$fmt" 'trace.cron_next(expr, zone, after)'), '')
     FROM cron_case" | tr '|' '\t' >"$work/trace.tsv" ||
  { not_ok "trace.cron_next answers every case"; exit 1; }
# shellcheck disable=SC2059
sql "SET timezone = 'UTC';
     WITH RECURSIVE chain(id, expr, zone, steps, n, at) AS (
         SELECT id, expr, zone, steps, 1, trace.cron_next(expr, zone, start) FROM cron_seq
         UNION ALL
         SELECT id, expr, zone, steps, n + 1, trace.cron_next(expr, zone, at)
         FROM chain WHERE n < steps AND at IS NOT NULL)
     SELECT id, string_agg($(printf "$fmt" at), ',' ORDER BY n) FROM chain GROUP BY id" |
  tr '|' '\t' >"$work/trace_seqs.tsv" || { not_ok "trace.cron_next answers every sequence"; exit 1; }

oracle compare "$work/cases.tsv" "$work/trace.tsv" "$work/seqs.tsv" "$work/trace_seqs.tsv"
rc=$?
TESTS_FAILED=$((TESTS_FAILED + (rc != 0)))
exit $rc
