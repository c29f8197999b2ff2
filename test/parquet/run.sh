#!/usr/bin/env bash
# Tests of Trace's Parquet format module (worker/parquet), built here on its
# own (it has no PostgreSQL dependency):
#   1. unit tests (Thrift known answers and round trips, RLE hybrid, bounds,
#      writer checks, allocator failures and leaks, memory bound), built with
#      cc -Wall -Wextra -Werror and again with clang ASan/UBSan;
#   2. conformance: pqconf writes every file kind the writer produces with its
#      source rows; Trace's own reader (ASan/UBSan) reads each back, checks
#      values, statistics, key-values and byte-identical rewrites; then DuckDB,
#      hyparquet and parquet-wasm (npm, installed into <repo>/.cache/npm on
#      first use) read each file and compare row by row, with statistics
#      through DuckDB's parquet_metadata();
#   3. hostile files (ASan/UBSan): each fault gives its named error;
#   4. a libFuzzer + ASan/UBSan run of the reader (FUZZ_SECONDS, default 20;
#      0 skips), seeded with the conformance files.
#
#   bash test/parquet/run.sh        prints ok / not ok lines and "N passed, N failed"
#
# Writes only under a new /tmp directory (kept when something failed).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src=$root/worker/parquet
npm_dir=${PARQUET_NPM_DIR:-$root/.cache/npm}
scratch=$(mktemp -d /tmp/trace-parquet-test.XXXXXX)
secs=${FUZZ_SECONDS:-20}
passed=0
failed=0
# The readers, pinned: what the conformance results were measured with.
readers=(@duckdb/node-api@1.5.6-r.1 hyparquet@1.33.0 hyparquet-compressors@1.1.2 parquet-wasm@0.8.0 apache-arrow@21.2.0)

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
  failed=$((failed + 1)); echo "not ok - $1"; shift
  local l; for l in "$@"; do printf '#   %s\n' "$l"; done
}
say() { printf '# %s\n' "$*"; }
finish() {
  if [ "$failed" -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$scratch"; else echo "# output kept in $scratch"; fi
  echo "$passed passed, $failed failed"
}
trap finish EXIT

# count LOG: adds a test program's ok / not ok lines to the totals.
count() {
  passed=$((passed + $(grep -c '^ok ' "$1")))
  failed=$((failed + $(grep -c '^not ok ' "$1")))
}

# run NAME BINARY [ARGS]: runs a test program, echoes and counts its lines; a
# crash or non-zero exit without a failing line is one failure.
run() {
  local name=$1; shift
  "$@" >"$scratch/$name.log" 2>&1
  local rc=$?
  grep -E '^(ok|not ok|#)' "$scratch/$name.log" | grep -v '^#   ->'
  count "$scratch/$name.log"
  if [ "$rc" -ne 0 ] && ! grep -q '^not ok ' "$scratch/$name.log"; then
    not_ok "$name exits 0" "$(tail -n 20 "$scratch/$name.log")"
  fi
}

mods=("$src"/tpq_*.c)
cflags=(-std=c11 -g -Wall -Wextra -Werror -Wshadow -I"$src")
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)

say "building with cc and clang (ASan/UBSan)"
build_ok=1
for f in "${mods[@]}"; do
  cc "${cflags[@]}" -O2 -c "$f" -o "$scratch/$(basename "$f" .c).o" 2>>"$scratch/build.log" || build_ok=0
done
cc "${cflags[@]}" -O1 -o "$scratch/unit" "$here/unit.c" "$here/tables.c" "${mods[@]}" -lzstd -lm 2>>"$scratch/build.log" || build_ok=0
cc "${cflags[@]}" -O2 -o "$scratch/pqconf" "$here/pqconf.c" "$here/tables.c" "${mods[@]}" -lzstd -lm 2>>"$scratch/build.log" || build_ok=0
for p in unit pqconf hostile; do
  clang "${cflags[@]}" -O1 "${san[@]}" -o "$scratch/$p-san" "$here/$p.c" "$here/tables.c" "${mods[@]}" -lzstd -lm \
    2>>"$scratch/build.log" || build_ok=0
done
if [ "$build_ok" -eq 1 ]; then
  ok "worker/parquet builds with cc and clang -Wall -Wextra -Werror, and with ASan/UBSan"
else
  not_ok "worker/parquet builds" "$(head -20 "$scratch/build.log")"
  exit 1
fi
# the module must not depend on PostgreSQL, libpq or stdio output
if grep -nE '#include *[<"](postgres|libpq|pg_|utils/)|\b(printf|fprintf|puts|exit|abort)\(' "${mods[@]}" "$src"/*.h |
     grep -vE '^[^:]+:[0-9]+: *(/?\*|//)' >"$scratch/deps.log"; then
  not_ok "worker/parquet has no PostgreSQL, libpq, printing or exit" "$(head -5 "$scratch/deps.log")"
else
  ok "worker/parquet has no PostgreSQL, libpq, printing or exit"
fi

say "unit tests (cc, then ASan/UBSan)"
run unit "$scratch/unit"
run unit-san "$scratch/unit-san"

say "conformance files, read back by Trace's reader (ASan/UBSan)"
mkdir -p "$scratch/files"
run pqconf-write "$scratch/pqconf" write "$scratch/files"
run pqconf-verify "$scratch/pqconf-san" verify "$scratch/files"

say "the same files through DuckDB, hyparquet and parquet-wasm"
readers_installed() {
  local p
  for p in @duckdb/node-api hyparquet hyparquet-compressors parquet-wasm apache-arrow; do
    [ -f "$npm_dir/node_modules/$p/package.json" ] || return 1
  done
}
if ! readers_installed; then
  if command -v npm >/dev/null 2>&1; then
    say "installing ${readers[*]} into $npm_dir"
    mkdir -p "$npm_dir"
    npm install --prefix "$npm_dir" --no-audit --no-fund --loglevel=error "${readers[@]}" >"$scratch/npm.log" 2>&1 ||
      say "npm install failed: $(tail -3 "$scratch/npm.log")"
  fi
fi
if readers_installed && command -v node >/dev/null 2>&1; then
  mkdir -p "$scratch/node"
  ln -s "$npm_dir/node_modules" "$scratch/node/node_modules"
  cp "$here/readers.mjs" "$scratch/node/"
  run readers node "$scratch/node/readers.mjs" "$scratch/files"
else
  not_ok "npm readers installed (node, npm, ${readers[*]})" "see $scratch/npm.log"
fi

say "hostile files (ASan/UBSan)"
run hostile "$scratch/hostile-san"

if [ "$secs" -gt 0 ]; then
  say "fuzzing the reader for ${secs}s (libFuzzer, ASan/UBSan)"
  mkdir -p "$scratch/fuzz/corpus"
  for k in extremes nulls one_row all_null dict_fallback long_values empty types_dict_uncompressed chain_blocks; do
    cp "$scratch/files/$k.parquet" "$scratch/fuzz/corpus/" 2>/dev/null
  done
  if clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Wall -Wextra -Werror \
       -I"$src" -o "$scratch/fuzz/fuzz_reader" "$here/fuzz_reader.c" "${mods[@]}" -lzstd 2>"$scratch/fuzz/build.log"; then
    (cd "$scratch/fuzz" && ./fuzz_reader -max_total_time="$secs" -max_len=65536 -timeout=5 -rss_limit_mb=2048 \
       -artifact_prefix="$scratch/fuzz/" corpus) >"$scratch/fuzz/fuzz.log" 2>&1
    if [ $? -eq 0 ]; then
      ok "fuzz: Parquet reader, ${secs}s under ASan/UBSan ($(grep -Eo 'Done [0-9]+ runs' "$scratch/fuzz/fuzz.log"))"
    else
      not_ok "fuzz: Parquet reader" "$(grep -E 'ERROR|runtime error|SUMMARY' "$scratch/fuzz/fuzz.log" | head -5)" \
        "reproducer: $(ls "$scratch"/fuzz/crash-* "$scratch"/fuzz/leak-* "$scratch"/fuzz/timeout-* "$scratch"/fuzz/oom-* 2>/dev/null | head -1)"
    fi
  else
    not_ok "fuzz target builds" "$(head -5 "$scratch/fuzz/build.log")"
  fi
fi
[ "$failed" -eq 0 ]
