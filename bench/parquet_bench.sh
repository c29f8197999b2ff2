#!/usr/bin/env bash
# A first Parquet write benchmark (prototype of bench/cold_bench.sh, issue
# 14): the chain benchmark's mainnet-sized blocks (bench/fixture_rpc.py's
# generator: ~150 transactions and ~400 logs per block) as PostgreSQL text
# COPY files, written to Parquet (zstd) by
#   a. Trace's writer (worker/parquet) through bench/parquet_write.c, which
#      parses the COPY text and appends batches of 4096 rows;
#   b. DuckDB (npm @duckdb/node-api, one thread, then its default two):
#      COPY (SELECT <casts> FROM read_csv(<same file>)) TO ... (FORMAT parquet,
#      COMPRESSION zstd).
# Both parse the same text, so the figures include parsing.  Best of two
# runs each.  Prints rows/s, MB/s of COPY text, file size and peak RSS, then
# the size effect of each encoding choice (dictionary, zstd, hashes as
# BYTE_ARRAY or FIXED_LEN_BYTE_ARRAY, wei as FIXED_LEN_BYTE_ARRAY(32) or
# text), checks through DuckDB that both files hold the same rows, and ends
#   parquet: rate <r>x duckdb, size <s>x duckdb      (logs + transactions, one DuckDB thread)
#
# Environment: BENCH_PARQUET_BLOCKS (default 1000), BENCH_KEEP=1 keeps the
# scratch directory.  Needs python3, node and npm (DuckDB is installed into
# <repo>/.cache/npm when missing).  Machines are shared: read the ratios,
# not the absolute figures, and run it on a quiet machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
blocks=${BENCH_PARQUET_BLOCKS:-1000}
npm_dir=$root/.cache/npm
work=$(mktemp -d /tmp/trace-parquet-bench.XXXXXX)
cleanup() { [ -n "${BENCH_KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT
say() { printf '%s\n' "$*" >&2; }

cc -O2 -g -std=gnu11 -Wall -Wextra -Werror -I"$root/worker/parquet" -o "$work/parquet_write" \
  "$here/parquet_write.c" "$root"/worker/parquet/tpq_*.c -lzstd
if [ ! -f "$npm_dir/node_modules/@duckdb/node-api/package.json" ]; then
  say "installing @duckdb/node-api into $npm_dir"
  mkdir -p "$npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error @duckdb/node-api@1.5.6-r.1 >&2
fi
mkdir -p "$work/node"
ln -s "$npm_dir/node_modules" "$work/node/node_modules"

say "generating $blocks blocks"
python3 - "$here" "$blocks" "$work" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from fixture_rpc import gen_chain
gen_chain(int(sys.argv[2]), 20000000, 1, copy_dir=sys.argv[3])
EOF

# DuckDB: the same COPY text, cast to the chain tables' types (bytea -> BLOB,
# numeric -> DECIMAL(38,0), the closest exact type DuckDB has, through
# HUGEINT since DuckDB's direct text -> DECIMAL cast is about 60x slower).
cat >"$work/node/duck.mjs" <<'EOF'
import { DuckDBInstance } from '@duckdb/node-api';
import fs from 'node:fs';
const [mode, table, a, b, threads] = process.argv.slice(2);
const cols = {
  logs: ['chain_id BIGINT', 'block_number BIGINT', 'block_timestamp TIMESTAMPTZ', 'tx_index INTEGER', 'log_index INTEGER',
         'tx_hash BLOB', 'address BLOB', 'topic0 BLOB', 'topic1 BLOB', 'topic2 BLOB', 'topic3 BLOB', 'data BLOB'],
  txs: ['chain_id BIGINT', 'block_number BIGINT', 'block_timestamp TIMESTAMPTZ', 'tx_index INTEGER', 'tx_hash BLOB',
        'from_address BLOB', 'to_address BLOB', 'value DECIMAL(38,0)', 'gas DECIMAL(38,0)', 'gas_price DECIMAL(38,0)',
        'nonce DECIMAL(38,0)', 'input BLOB', 'status SMALLINT'],
}[table];
const inst = await DuckDBInstance.create(':memory:', { threads: threads || '1' });
const c = await inst.connect();
const name = (d) => d.split(' ')[0], type = (d) => d.slice(name(d).length + 1);
if (mode === 'write') {
  const names = ['partition_key', 'producer_task_id', ...cols.map(name)];
  const spec = '{' + names.map((n) => `'${n}': 'VARCHAR'`).join(', ') + '}';
  // numeric text goes through HUGEINT: DuckDB's VARCHAR -> DECIMAL(38,0) cast is ~60x slower
  const sel = cols.map((d) => type(d) === 'BLOB' ? `from_hex(substr(${name(d)}, 4)) AS ${name(d)}`
    : type(d).startsWith('DECIMAL') ? `${name(d)}::HUGEINT::${type(d)} AS ${name(d)}` : `${name(d)}::${type(d)} AS ${name(d)}`).join(', ');
  const t0 = performance.now();
  await c.run(`COPY (SELECT ${sel} FROM read_csv('${a}', delim='\t', header=false, quote='', escape='', nullstr='\\N', columns=${spec}))
               TO '${b}' (FORMAT parquet, COMPRESSION zstd)`);
  const secs = (performance.now() - t0) / 1000;
  const rows = (await c.runAndReadAll(`SELECT count(*) FROM '${b}'`)).getRows()[0][0];
  console.log(`${table} ${rows} ${fs.statSync(b).size} ${secs.toFixed(3)} ${process.resourceUsage().maxRSS}`);
} else {
  // same rows in Trace's file (a) and DuckDB's (b): wei read back with the documented expression
  await c.run(`CREATE MACRO trace_u256(b) AS CASE WHEN substr(hex(b), 1, 32) = '00000000000000000000000000000000'
               THEN from_hex(substr(hex(b), 33, 32))::BIT::UHUGEINT END`);
  const sel = cols.map((d) => type(d).startsWith('DECIMAL') ? `trace_u256(${name(d)})::DECIMAL(38,0) AS ${name(d)}` : name(d)).join(', ');
  const plain = cols.map(name).join(', ');
  const r = (await c.runAndReadAll(`SELECT (SELECT count(*) FROM (SELECT ${sel} FROM '${a}' EXCEPT ALL SELECT ${plain} FROM '${b}')),
                                           (SELECT count(*) FROM (SELECT ${plain} FROM '${b}' EXCEPT ALL SELECT ${sel} FROM '${a}')),
                                           (SELECT count(*) FROM '${a}')`)).getRows()[0];
  console.log(`${r[0]} ${r[1]} ${r[2]}`);
}
EOF

# best_of2 CMD...: runs CMD twice, prints the output line with the lower time (4th field)
best_of2() {
  local a b
  a=$("$@"); b=$("$@")
  if awk -v x="$(echo "$a" | cut -d' ' -f4)" -v y="$(echo "$b" | cut -d' ' -f4)" 'BEGIN { exit !(x <= y) }'; then
    echo "$a"; else echo "$b"; fi
}

printf '\n%-6s %-16s %9s %10s %9s %10s %8s\n' table writer rows rows/s "MB/s" "size MB" "RSS MB"
tot_t=0; tot_d=0; size_t=0; size_d=0
for t in logs txs; do
  in=$work/$t.copy
  mb=$(stat -c %s "$in")
  ours=$(best_of2 "$work/parquet_write" "$t" "$in" "$work/$t.trace.parquet")
  d1=$(best_of2 node "$work/node/duck.mjs" write "$t" "$in" "$work/$t.duck.parquet" 1)
  d2=$(best_of2 node "$work/node/duck.mjs" write "$t" "$in" "$work/$t.duck2.parquet" 2)
  for line in "trace:$ours" "duckdb-1-thread:$d1" "duckdb-2-threads:$d2"; do
    w=${line%%:*}; set -- ${line#*:}
    awk -v t="$1" -v w="$w" -v rows="$2" -v size="$3" -v s="$4" -v rss="$5" -v mb="$mb" \
      'BEGIN { printf "%-6s %-16s %9d %10.0f %9.1f %10.2f %8.0f\n", t, w, rows, rows / s, mb / s / 1e6, size / 1e6, rss / 1024 }'
  done
  tot_t=$(awk -v a="$tot_t" -v b="$(echo "$ours" | cut -d' ' -f4)" 'BEGIN { print a + b }')
  tot_d=$(awk -v a="$tot_d" -v b="$(echo "$d1" | cut -d' ' -f4)" 'BEGIN { print a + b }')
  size_t=$((size_t + $(echo "$ours" | cut -d' ' -f3)))
  size_d=$((size_d + $(echo "$d1" | cut -d' ' -f3)))
  same=$(node "$work/node/duck.mjs" same "$t" "$work/$t.trace.parquet" "$work/$t.duck.parquet")
  set -- $same
  if [ "$1" = 0 ] && [ "$2" = 0 ]; then
    echo "$t: Trace's file and DuckDB's hold the same $3 rows (EXCEPT ALL both ways, wei through trace_u256())"
  else
    echo "$t: FILES DIFFER: $1 rows only in Trace's, $2 only in DuckDB's" >&2; exit 1
  fi
done

printf '\nsize of 1000 blocks (MB) per encoding choice (Trace writer):\n'
printf '%-6s %12s %12s %12s %12s %14s %13s\n' table "dict+zstd" "plain+zstd" "dict+none" "plain+none" "hash FIXED" "wei as text"
for t in logs txs; do
  row=()
  for opts in "--dict on" "--dict off" "--dict on --codec none" "--dict off --codec none" "--hash fixed" "--u256 text"; do
    # shellcheck disable=SC2086
    row+=("$(awk -v s="$("$work/parquet_write" "$t" "$work/$t.copy" "$work/x.parquet" $opts | cut -d' ' -f3)" 'BEGIN { printf "%.2f", s / 1e6 }')")
  done
  printf '%-6s %12s %12s %12s %12s %14s %13s\n' "$t" "${row[@]}"
done
echo
awk -v tt="$tot_t" -v td="$tot_d" -v st="$size_t" -v sd="$size_d" \
  'BEGIN { printf "parquet: rate %.2fx duckdb, size %.3fx duckdb\n", td / tt, st / sd }'
