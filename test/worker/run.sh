#!/usr/bin/env bash
# Runs the trace-worker suites: the unit tests (worker/tests/test_lib.c,
# test_worker.c), then every end-to-end script in this directory, each
# against its own private cluster.  Prints each script's "ok"/"not ok" lines and closes with
# "N passed, N failed".  Builds the worker first if needed.
#
#   test/worker/run.sh [script ...]    e.g. test/worker/run.sh faults udf
#
# Run as root (CI) or as a user who may run bubblewrap; as root the
# clusters run as `postgres` and UDFs as `nobody`.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
passed=0
failed=0
failed_names=()

make -s -C "$root/worker" trace-worker tests/test_lib tests/test_worker >/dev/null || {
  echo "worker build failed"; echo "0 passed, 1 failed"; exit 1; }

count() {   # NAME LOG RC
  local ok bad
  ok=$(grep -Ec '^ok ' "$2")
  bad=$(grep -Ec '^not ok ' "$2")
  [ "$3" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
  passed=$((passed + ok)); failed=$((failed + bad))
  [ "$3" -ne 0 ] && failed_names+=("$1")
}

out=$(mktemp -d /tmp/trace-worker-suite.XXXXXX)
echo "=== lib unit tests"
"$root/worker/tests/test_lib" | tee "$out/lib.log" | grep -Ev '^ok '
count lib "$out/lib.log" "${PIPESTATUS[0]}"
echo "=== worker unit tests"
"$root/worker/tests/test_worker" | tee "$out/unit.log" | grep -Ev '^ok '
count unit "$out/unit.log" "${PIPESTATUS[0]}"

scripts=("$@")
[ ${#scripts[@]} -gt 0 ] || scripts=(many_tasks faults control udf pgbouncer)
for s in "${scripts[@]}"; do
  echo "=== worker $s"
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
