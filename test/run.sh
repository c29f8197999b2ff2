#!/usr/bin/env bash
# Runs every Trace test suite against private clusters and prints one closing
# line: "N passed, N failed".  Run it through `make test`, which installs the
# packages and the extension first.
#
# PostgreSQL refuses to run as root, so as root the suites run as the
# `postgres` user in a scratch directory that user owns (the checkout may sit
# where that user cannot write, or even read).
#
#   test/run.sh [suite ...]     suites: deps regress isolation tap worker gateway chain cron fuzz parquet lint (default: all)
#   TRACE_FUZZ_SECONDS          how long the fuzz suite runs (default 30)
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bindir=$(/usr/lib/postgresql/15/bin/pg_config --bindir)
pgxs=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/pgxs
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(deps regress isolation tap worker gateway chain cron fuzz parquet lint)

# The unprivileged user, and a scratch copy of the tests it can write in.
if [ "$(id -u)" -eq 0 ]; then
  runas=(runuser -u postgres --)
else
  runas=()
fi
work=$(mktemp -d /tmp/trace-test.XXXXXX)
mkdir -p "$work/out" "$work/tmp"
cp -r "$here/sql" "$here/expected" "$here/test" "$here/dags" "$work/"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$work"
cd "$work" || exit 1

passed=0
failed=0
failed_names=()

# Runs one suite command as the test user, echoing its output, then adds its
# per-test counts (read from the harness's own output) to the totals.  A
# suite that fails without reporting a failed test still counts one failure.
run_suite() {
  local name=$1; shift
  local log="$work/out/$name.log" ok bad
  echo "=== $name"
  "${runas[@]}" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  case $name in
    tap)
      ok=$(grep -Eo '^Files=[0-9]+, Tests=[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo 0)
      bad=$(grep -Eo 'Failed [0-9]+/[0-9]+ subtests' "$log" | awk -F'[ /]' '{s+=$2} END {print s+0}')
      ok=$((ok - bad)) ;;
    *)
      ok=$(grep -Ec '\.\.\. ok' "$log")
      bad=$(grep -Ec '\.\.\. FAILED' "$log") ;;
  esac
  [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
  passed=$((passed + ok))
  failed=$((failed + bad))
  [ "$rc" -ne 0 ] && failed_names+=("$name")
  return 0
}

# script_suite NAME CMD...: a suite that runs from the checkout (its
# scripts start their own clusters and drop privileges themselves) and
# prints "ok" / "not ok" lines; counted like run_suite's.
script_suite() {
  local name=$1 rc ok bad; shift
  echo "=== $name"
  "$@" 2>&1 | tee "$work/out/$name.log"
  rc=${PIPESTATUS[0]}
  ok=$(grep -Ec '^ok ' "$work/out/$name.log")
  bad=$(grep -Ec '^not ok ' "$work/out/$name.log")
  [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
  passed=$((passed + ok)); failed=$((failed + bad))
  [ "$rc" -ne 0 ] && failed_names+=("$name")
  return 0
}

regress_tests() { (cd sql && ls *.sql | sed 's/\.sql$//' | sort); }
isolation_tests() { (cd test/isolation/specs && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort); }

for suite in "${suites[@]}"; do
  case $suite in
    regress)
      run_suite regress "$pgxs/src/test/regress/pg_regress" \
        --bindir="$bindir" --inputdir=. --outputdir=out/regress \
        --temp-instance=tmp/regress --temp-config=test/regress.conf \
        --dbname=trace_regression $(regress_tests)
      [ -f out/regress/regression.diffs ] && head -c 20000 out/regress/regression.diffs
      ;;
    isolation)
      tests=$(isolation_tests)
      [ -n "$tests" ] || continue
      run_suite isolation "$pgxs/src/test/isolation/pg_isolation_regress" \
        --bindir="$bindir" --inputdir=test/isolation --outputdir=out/isolation \
        --temp-instance=tmp/isolation --temp-config=test/regress.conf \
        --dbname=trace_isolation $tests
      [ -f out/isolation/regression.diffs ] && head -c 20000 out/isolation/regression.diffs
      ;;
    tap)
      ls test/t/*.pl >/dev/null 2>&1 || continue
      run_suite tap env PATH="$bindir:$PATH" PG_REGRESS="$pgxs/src/test/regress/pg_regress" \
        TESTDIR="$work" TESTDATADIR="$work/out/tap" \
        prove -I "$pgxs/src/test/perl" -I test/t test/t/*.pl
      ;;
    deps)
      # The install contract: every command a script calls is installed by
      # .ci/install-deps.sh or provided (runs from the checkout).
      script_suite deps bash "$here/test/deps/run.sh"
      ;;
    worker)
      # trace-worker's and lib/'s unit tests, then the end-to-end scripts.
      script_suite worker bash "$here/test/worker/run.sh"
      ;;
    gateway)
      # trace-rpc-gateway: unit tests, a short fuzz run, then the real gateway
      # in front of anvil and a fault-injecting proxy (loopback; builds
      # worker/bin/trace-rpc-gateway, installs anvil into .cache/npm).
      script_suite gateway env FUZZ_SECONDS="${TRACE_GATEWAY_FUZZ_SECONDS:-10}" bash "$here/test/gateway/run.sh"
      ;;
    chain)
      # block_follower and range_ingest against real anvil nodes through the
      # real gateway: reorgs, downtime, kills, RPC faults.
      script_suite chain bash "$here/test/chain/run.sh"
      ;;
    cron)
      # trace.cron_next against croner, cron-parser (npm, into .cache/npm)
      # and a model of the documented DST rules, on a private cluster.
      script_suite cron bash "$here/test/cron/run.sh"
      ;;
    lint)
      # Code and docs agree where one is made from the other (SQLSTATEs,
      # settings tables); worker/'s layout rules.
      script_suite lint bash "$here/test/lint/run.sh"
      ;;
    fuzz)
      # libFuzzer + ASan/UBSan on the real DAG loader, for a bounded time.
      echo "=== fuzz"
      bash "$here/test/fuzz/run.sh" "${TRACE_FUZZ_SECONDS:-30}" 2>&1 | tail -n 40 | tee "$work/out/fuzz.log"
      rc=${PIPESTATUS[0]}
      if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names+=(fuzz); fi
      ;;
    parquet)
      # worker/parquet: unit tests, conformance through DuckDB, hyparquet and
      # parquet-wasm (npm, into .cache/npm), hostile files, a short fuzz run.
      script_suite parquet env FUZZ_SECONDS="${TRACE_PARQUET_FUZZ_SECONDS:-20}" bash "$here/test/parquet/run.sh"
      ;;
    *)
      echo "unknown suite $suite" >&2; failed=$((failed + 1)); failed_names+=("$suite")
      ;;
  esac
done

if [ $failed -eq 0 ] && [ ${#failed_names[@]} -eq 0 ]; then
  rm -rf "$work"
else
  echo "test output kept in $work (failed: ${failed_names[*]})"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && [ ${#failed_names[@]} -eq 0 ]
