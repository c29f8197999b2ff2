#!/usr/bin/env bash
# Runs the chain suites: the unit tests of the chain operators
# (worker/tests/test_chain.c),
# then every end-to-end scenario in this directory, each against its own
# private cluster, anvil node and RPC path (trace-rpc-gateway when it is
# built).  Prints each script's "ok"/"not ok" lines and closes with
# "N passed, N failed"; exits non-zero when anything failed.
#
#   test/chain/run.sh [script ...]     e.g. test/chain/run.sh reorgs range
#
# Run as root (CI) or as a user who can start PostgreSQL clusters; installs
# anvil from the npm registry into .cache/npm on first use.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/test/lib/anvil.sh"
passed=0
failed=0
failed_names=()

make -s -C "$root/worker" trace-worker >/dev/null || {
  echo "worker build failed"; echo "0 passed, 1 failed"; exit 1; }
# The gateway is another target of the same Makefile; use it when it builds.
make -s -C "$root/worker" trace-rpc-gateway >/dev/null 2>&1 || true
anvil_install || { echo "anvil install failed"; echo "0 passed, 1 failed"; exit 1; }

count() {   # NAME LOG RC
  local ok bad
  ok=$(grep -Ec '^ok ' "$2")
  bad=$(grep -Ec '^not ok ' "$2")
  [ "$3" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
  passed=$((passed + ok)); failed=$((failed + bad))
  [ "$3" -ne 0 ] && failed_names+=("$1")
}

out=$(mktemp -d /tmp/trace-chain-suite.XXXXXX)
echo "=== chain unit tests"
if make -s -C "$root/worker" tests/test_chain >"$out/unit.build" 2>&1; then
  "$root/worker/tests/test_chain" | tee "$out/unit.log" | grep -Ev '^ok '
  count unit "$out/unit.log" "${PIPESTATUS[0]}"
else
  echo "not ok - the unit tests build"; tail -5 "$out/unit.build" | sed 's/^/#   /'
  failed=$((failed + 1)); failed_names+=(unit)
fi

# A short libFuzzer run (ASan, UBSan) of the JSON-RPC response matcher,
# jdoc against jansson and the hex decoders; CHAIN_FUZZ_SECONDS=0 skips it.
fuzz_secs=${CHAIN_FUZZ_SECONDS:-15}
if [ $# -eq 0 ] && [ "$fuzz_secs" -gt 0 ] && command -v clang >/dev/null; then
  echo "=== chain fuzz (${fuzz_secs}s)"
  mkdir -p "$out/corpus"
  printf '[{"jsonrpc":"2.0","id":1,"result":"0x1"}]' >"$out/corpus/1"
  printf '[{"jsonrpc":"2.0","id":2,"result":null},{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}]' >"$out/corpus/2"
  printf '0x56bc75e2d63100000' >"$out/corpus/3"
  # for jdoc against jansson: escapes and duplicate keys, numbers jansson
  # cannot hold, nesting just past JDOC_MAX_DEPTH
  printf '%s' '{"a\u00e9":{"k":"x\ny\ud83d\ude00\"","k":[true,false,null]},"b":[{},[],""]}' >"$out/corpus/4"
  printf '%s' '[9223372036854775807,-9223372036854775808,9223372036854775808,1e400,-0,1.5e-3]' >"$out/corpus/5"
  printf '%.0s[' {1..257} >"$out/corpus/6"; printf '%.0s]' {1..257} >>"$out/corpus/6"
  if make -s -C "$root/worker" tests/fuzz_chain >"$out/fuzz.build" 2>&1 &&
     cp "$root/worker/tests/fuzz_chain" "$out/fuzz_rpc" &&
     (cd "$out" && ./fuzz_rpc -max_total_time="$fuzz_secs" -max_len=4096 -timeout=5 \
        -artifact_prefix="$out/" corpus >"$out/fuzz.log" 2>&1); then
    echo "ok - fuzz: JSON-RPC responses and hex decoding, ${fuzz_secs}s, no crash ($(grep -Eo 'Done [0-9]+ runs' "$out/fuzz.log"))"
    passed=$((passed + 1))
  else
    echo "not ok - fuzz: JSON-RPC responses and hex decoding"
    tail -30 "$out/fuzz.build" "$out/fuzz.log" 2>/dev/null | sed 's/^/#   /'
    cp "$out"/crash-* "$out"/leak-* "$out"/timeout-* /tmp/ 2>/dev/null && echo "#   reproducer copied to /tmp"
    failed=$((failed + 1)); failed_names+=(fuzz)
  fi
fi

scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(reorgs downtime too_deep kill9 range rpc_faults)
for s in "${scripts[@]}"; do
  echo "=== chain $s"
  start=$(date +%s)
  bash "$here/${s%.sh}.sh" 2>&1 | tee "$out/$s.log"
  rc=${PIPESTATUS[0]}
  echo "# $s took $(( $(date +%s) - start )) s"
  count "$s" "$out/$s.log" "$rc"
done
rm -rf "$out"
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
