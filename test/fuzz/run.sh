#!/usr/bin/env bash
# Fuzzes the DAG YAML loader (extension/yaml_tree.c, dag_report.c,
# dag_model.c, dag_graph.c, cron.c, compiled unchanged) with libFuzzer, ASan
# and UBSan for a bounded time, on a scratch copy of the seed corpus.  Prints
# a last line "1 passed, 0 failed", or "0 passed, 1 failed" (exit 1) with the
# path of the input that crashed, leaked or timed out.
#
#   bash test/fuzz/run.sh [seconds]          (default 30)
#
# Replay a reproducer:  FUZZ_DAG_VERBOSE=1 <scratch>/fuzz_dag <crash-file>
# Needs clang (with libFuzzer), libyaml-dev and PostgreSQL's server headers.
# Runs as root or as any user: it writes only under a new /tmp directory.
set -uo pipefail

secs=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../extension" && pwd)
pg_config=${PG_CONFIG:-$(command -v /usr/lib/postgresql/15/bin/pg_config || command -v pg_config)}
work=$(mktemp -d /tmp/trace-fuzz.XXXXXX)

fail() {
  echo "$1"
  echo "0 passed, 1 failed"
  exit 1
}

echo "=== fuzz: building in $work"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Wall -Wno-ignored-attributes -Wno-unused-parameter \
  -I"$("$pg_config" --includedir-server)" -I"$src" \
  -o "$work/fuzz_dag" "$here/fuzz_dag.c" "$here/pg_shim.c" \
  "$src/yaml_tree.c" "$src/dag_report.c" "$src/dag_model.c" "$src/dag_graph.c" "$src/cron.c" \
  -lyaml || fail "fuzz: build failed"
cp -r "$here/corpus" "$work/corpus"

echo "=== fuzz: ${secs}s"
(cd "$work" && ./fuzz_dag -max_total_time="$secs" -max_len=65536 -timeout=5 -rss_limit_mb=2048 \
  -dict="$here/dag.dict" -artifact_prefix="$work/" -print_final_stats=1 corpus) >"$work/fuzz.log" 2>&1
rc=$?
grep -E '^#[0-9]+.*(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/fuzz.log"

if [ "$rc" -ne 0 ]; then
  sed -n '/^==[0-9]*==\|runtime error\|^pg_shim\|^cron_next/,/^Base64:/p' "$work/fuzz.log" | head -60
  repro=$(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | head -1)
  fail "fuzz: FAILED (exit $rc); log: $work/fuzz.log; reproducer: ${repro:-none}"
fi
rm -rf "$work"
echo "1 passed, 0 failed"
