#!/usr/bin/env bash
# trace-worker end to end, UDFs (operator udf, runtime lambda):
#   - the three example UDFs of dags/udfs (Python, TypeScript, Rust), each
#     run in the sandbox and checked row by row; through the database too
#     once trace.write_rows exists (until then: a SKIP line);
#   - what the sandbox looks like from inside (fds, uid, env, network,
#     pids, rlimits);
#   - escapes: a TCP socket, the worker's environment and config, writes
#     outside scratch, a fork bomb: each fails safely and is reported;
#   - F6: crash, hang, flood, non-zero exit, a bad protocol line: the
#     attempt fails with the reason, no zombie, no leftover process;
#   - F7 with a UDF, cancel of a running UDF, the memory limit.
. "$(dirname "$0")/lib.sh"
start_cluster
prepare_udfs
FIX=$TW_ROOT/test/worker/fixtures

# --- build the Rust example (offline) -----------------------------------------
have_rust=0
if command -v cargo >/dev/null 2>&1 &&
   cargo build --offline --release --quiet --manifest-path "$UDF_DIR/daily_volumes/Cargo.toml" \
     >"$SCRATCH/logs/cargo.log" 2>&1; then
  have_rust=1
  chmod -R a+rX "$UDF_DIR/daily_volumes/target"
  ok "the Rust example builds offline (std only)"
else
  echo "SKIP: cargo cannot build the Rust example here: $(tail -1 "$SCRATCH/logs/cargo.log" 2>/dev/null)"
fi

# rows_of FILE: the rows of a run-udf output, as one canonical JSON array.
rows_of() {
  python3 -c 'import json,sys
rows=[]
for l in open(sys.argv[1]):
    d=json.loads(l)
    if d.get("type")=="rows": rows+=d["rows"]
print(json.dumps(rows,sort_keys=True))' "$1"
}
canon() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])),sort_keys=True))' "$1"; }

# run_example NAME LANGUAGE ENTRYPOINT INPUT EXPECTED
run_example() {
  local out=$SCRATCH/logs/example-$1.out
  "$WORKER" run-udf --udf-dir "$UDF_DIR" --scratch-dir "$SCRATCH" --language "$2" \
    --entrypoint "$3" --payload "$(cat "$4")" >"$out" 2>"$SCRATCH/logs/example-$1.log"
  local rc=$?
  check_eq "example $1 ($2) succeeds in the sandbox" "0" "$rc"
  check_eq "example $1 ($2) returns the expected rows" "$(canon "$5")" "$(rows_of "$out")"
  check_match "example $1 ($2) emits its partition event" '"type":"event"' "$(cat "$out")"
}
run_example erc20_transfers python erc20_transfers/decode.py "$FIX/erc20_logs.json" "$FIX/erc20_expected.json"
run_example tag_addresses typescript tag_addresses/tag.mjs "$FIX/tag_input.json" "$FIX/tag_expected.json"
if [ $have_rust -eq 1 ]; then
  run_example daily_volumes rust daily_volumes/target/release/daily_volumes "$FIX/volumes_input.json" "$FIX/volumes_expected.json"
fi

# --- a worker for the lambda runtime --------------------------------------------
conf=$SCRATCH/u1.conf
printf "conninfo = '%s'\n" "$CONNINFO" >"$conf"
chmod 600 "$conf"
TRACE_TEST_SECRET=$SECRET_MARKER start_worker u1 --config "$conf" --runtimes lambda \
  --concurrency 4 --poll-interval 200ms --udf-max-output 1MB
wait_log u1 10 "started" || { not_ok "udf worker starts" "$(cat "$SCRATCH/logs/u1.log")"; finish; exit 1; }
fast="max_attempts => 1"

# udf_job NAME CONFIG_JSON [extra] -> job id
udf_job() { make_job "$1" udf lambda "$2" "${3:-$fast}"; }
# run_task JOB PAYLOAD SECONDS -> task id, after it ended (or the deadline)
run_task() {
  local tid
  tid=$(sql "SELECT trace.enqueue_task($1, '$2'::jsonb)")
  wait_sql "$3" "SELECT state IN ('succeeded', 'failed', 'canceled') FROM trace.tasks WHERE task_id = $tid" >/dev/null
  echo "$tid"
}
state_error() { sql "SELECT state || '|' || coalesce(error, '') FROM trace.tasks WHERE task_id = $1"; }
result_of() { sql "SELECT result FROM trace.tasks WHERE task_id = $1"; }

# --- examples through the database: a deployed DAG, rows via trace.write_rows ---
if [ "$(sql "SELECT to_regprocedure('trace.write_rows(bigint,int,uuid,text,text,jsonb)') IS NOT NULL")" = "t" ]; then
  sql "SELECT trace.deploy_dag(\$yaml\$$(cat "$FIX/udf_examples.yaml")\$yaml\$)" >/dev/null \
    && ok "the example DAG deploys (operator udf, runtime lambda, outputs)" \
    || not_ok "the example DAG deploys"
  db_example() {   # JOB DATASET INPUT ROWS
    local tid
    tid=$(sql "SELECT trace.trigger_job('udf_examples', '$1', '$(cat "$3")'::jsonb)")
    wait_sql 60 "SELECT state IN ('succeeded', 'failed') FROM trace.tasks WHERE task_id = $tid" >/dev/null
    check_eq "example $1 through the database: succeeded, $4 rows written" "succeeded|$4|" \
      "$(sql "SELECT state || '|' || coalesce(result->>'rows_written', '') || '|' || coalesce(error, '')
              FROM trace.tasks WHERE task_id = $tid")"
    check_eq "example $1: the partition of $2 holds $4 rows and its event was emitted" "$4|1" \
      "$(sql "SELECT (SELECT sum(p.row_count) FROM trace.dataset_partition p JOIN trace.dataset d
                      USING (dataset_uuid) WHERE d.dataset_id = '$2') || '|' ||
                     (SELECT count(*) FROM trace.events WHERE producer_task_id = $tid
                      AND dataset_id = '$2')")"
  }
  db_example decode_transfers erc20.transfers "$FIX/erc20_logs.json" 3
  db_example tag_addresses labels.address_tags "$FIX/tag_input.json" 3
  [ $have_rust -eq 1 ] && db_example daily_volumes erc20.daily_volumes "$FIX/volumes_input.json" 3
else
  echo "SKIP: trace.write_rows missing (the examples' rows through the database)"
fi

# --- success through the database: events, no rows --------------------------------
job=$(udf_job events '{"language": "python", "entrypoint": "tests/events_only.py"}')
tid=$(run_task "$job" '{"keys": ["a", "b"]}' 30)
check_eq "a UDF's events reach trace.emit_event and the task succeeds" "succeeded||2|2" \
  "$(sql "SELECT t.state || '|' || coalesce(t.error, '') || '|' || (t.result->'udf'->>'emitted') || '|' ||
                 (SELECT count(*) FROM trace.events e WHERE e.producer_task_id = t.task_id)
          FROM trace.tasks t WHERE t.task_id = $tid")"
check_match "the UDF's log line reaches the worker log" "task $tid/1: udf: emitted 2 events" \
  "$(cat "$SCRATCH/logs/u1.log")"

# --- the sandbox from inside ------------------------------------------------------
job=$(udf_job inspect '{"language": "python", "entrypoint": "tests/inspect_sandbox.py", "timeout": "10s", "memory": "128MB"}')
tid=$(run_task "$job" '{}' 30)
r=$(result_of "$tid")
get() { python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])["udf"][sys.argv[2]]))' "$r" "$1"; }
check_eq "sandbox: only fds 0, 1, 2 are open" "[0, 1, 2]" "$(get fds)"
check_eq "sandbox: runs as an unprivileged uid (nobody)" "65534" "$(get uid)"
check_eq "sandbox: a clean environment (no PG*, no TRACE_*)" \
  '["HOME", "LANG", "PATH", "PWD", "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE", "PYTHONPATH", "TMPDIR"]' "$(get env)"
check_eq "sandbox: no network interface but loopback" '["lo"]' "$(get ifaces)"
check_eq "sandbox: its own pid namespace (sees only itself and its init)" "[1, 2]" "$(get procs)"
check_eq "sandbox: a root with only system dirs, /udf, /scratch, /tmp" \
  '["bin", "dev", "etc", "lib", "lib32", "lib64", "proc", "sbin", "scratch", "tmp", "udf", "usr"]' \
  "$(get root | sed 's/"lib32", //; s/"lib64", /"lib32", "lib64", /')"
check_eq "sandbox: rlimits (nproc, nofile, data 128MB, core 0, cpu, fsize)" \
  "256|256|134217728|0|11|268435456" \
  "$(get nproc)|$(get nofile)|$(get data)|$(get core)|$(get cpu)|$(get fsize)"

# --- escapes ----------------------------------------------------------------------
job=$(udf_job esc_socket '{"language": "python", "entrypoint": "tests/escape_socket.py", "timeout": "10s"}')
tid=$(run_task "$job" "{\"port\": $PGPORT_T}" 30)
check_match "escape: a TCP socket to PostgreSQL is refused and reported" \
  "^failed\|udf: PermissionError: \[Errno 1\] Operation not permitted" "$(state_error "$tid")"

job=$(udf_job esc_env '{"language": "python", "entrypoint": "tests/escape_env.py", "timeout": "10s"}')
tid=$(run_task "$job" "{\"marker\": \"$SECRET_MARKER\", \"worker_pid\": ${WPID[u1]}, \"config_file\": \"$conf\"}" 30)
check_match "escape: the worker's environment, /proc/<worker>/environ and config are out of reach" \
  "^failed\|udf: RuntimeError: no secret visible \(env=HOME,LANG,PATH.*/proc/${WPID[u1]}/environ: No such file or directory; config file: No such file or directory\)" \
  "$(state_error "$tid")"

job=$(udf_job esc_write '{"language": "python", "entrypoint": "tests/escape_write.py", "timeout": "10s"}')
tid=$(run_task "$job" "{\"host_path\": \"$SCRATCH/escaped\"}" 30)
check_match "escape: writes outside /scratch fail and are reported" \
  "^failed\|udf: RuntimeError: no write outside scratch \(/etc/trace-escape: Read-only file system; /usr/trace-escape: Read-only file system; /udf/trace-escape: Read-only file system; /trace-escape: Read-only file system; $SCRATCH/escaped: No such file or directory; /proc/sys/kernel/hostname: (Read-only file system|Permission denied)\)" \
  "$(state_error "$tid")"
check_eq "escape: nothing appeared on the host" "0" \
  "$(ls "$SCRATCH/escaped" "$UDF_DIR/trace-escape" /etc/trace-escape /trace-escape 2>/dev/null | wc -l)"

job=$(udf_job esc_fork '{"language": "python", "entrypoint": "tests/fork_bomb.py", "timeout": "3s"}')
t0=$(date +%s%N)
tid=$(run_task "$job" '{}' 30)
check_match "escape: a fork bomb is contained and killed at its timeout" \
  "^failed\|udf: timeout: the UDF ran longer than 3000ms" "$(state_error "$tid")"
check "escape: the fork bomb took less than 8 s in all" test $(( ($(date +%s%N) - t0) / 1000000 )) -lt 8000
check_eq "escape: no process of the fork bomb is left" "0" "$(sandbox_leftovers)"

# --- F6 ---------------------------------------------------------------------------
f6() {   # NAME ENTRY TIMEOUT REGEX
  local job tid
  job=$(udf_job "f6_$1" "{\"language\": \"python\", \"entrypoint\": \"tests/$2\", \"timeout\": \"$3\"}")
  tid=$(run_task "$job" '{}' 30)
  check_match "F6 $1: the attempt fails with the reason" "$4" "$(state_error "$tid")"
}
f6 crash crash.py 10s '^failed\|udf: the UDF was killed by SIGSEGV; stderr: about to crash$'
f6 hang hang.py 2s '^failed\|udf: timeout: the UDF ran longer than 2000ms \(wall clock\) and was killed$'
f6 flood flood.py 10s '^failed\|udf: output limit hit: the UDF wrote more than 1048576 bytes \(udf_max_output\)$'
f6 exit exit3.py 10s '^failed\|udf: the UDF exited with code 3; stderr: giving up with code 3$'
f6 bad_line bad_line.py 10s '^failed\|udf: protocol error on line 2: not valid JSON'
check_eq "F6 no zombie under the worker" "0" "$(worker_zombies)"
check_eq "F6 no sandbox process left" "0" "$(sandbox_leftovers)"

# --- F7 with a UDF: a crash every time ends failed at max_attempts --------------------
job=$(udf_job poison_udf '{"language": "python", "entrypoint": "tests/crash.py"}' \
      "max_attempts => 2, backoff => '100 ms', max_backoff => '200 ms'")
tid=$(run_task "$job" '{}' 30)
check_match "F7 a crashing UDF ends failed at max_attempts (2)" '^failed\|2\|udf: the UDF was killed by SIGSEGV' \
  "$(sql "SELECT state || '|' || attempt || '|' || error FROM trace.tasks WHERE task_id = $tid")"

# --- cancel a running UDF ---------------------------------------------------------
job=$(udf_job cancel_udf '{"language": "python", "entrypoint": "tests/hang.py", "timeout": "60s"}' \
      "max_attempts => 1, lease => '1500 ms'")
tid=$(sql "SELECT trace.enqueue_task($job)")
wait_sql 10 "SELECT state = 'running' FROM trace.tasks WHERE task_id = $tid"
wait_sql 10 "SELECT count(*) > 0 FROM (SELECT 1) x WHERE $(sandbox_leftovers) > 0" >/dev/null
sql "SELECT trace.cancel_task($tid)" >/dev/null
wait_sql 10 "SELECT state = 'canceled' FROM trace.tasks WHERE task_id = $tid" \
  && ok "cancel: a running UDF is stopped and the task canceled" \
  || not_ok "cancel: a running UDF is stopped" "$(state_error "$tid")"
check_eq "cancel: its sandbox is gone" "0" "$(sandbox_leftovers)"

# --- the memory limit ------------------------------------------------------------------
job=$(udf_job memory '{"language": "python", "entrypoint": "tests/memory_hog.py", "memory": "64MB", "timeout": "20s"}')
tid=$(run_task "$job" '{}' 40)
check_match "memory: a UDF past its memory limit fails with MemoryError" '^failed\|udf: MemoryError' "$(state_error "$tid")"

# --- config errors ---------------------------------------------------------------------
job=$(udf_job bad_entry '{"language": "python", "entrypoint": "../../etc/passwd"}')
tid=$(run_task "$job" '{}' 20)
check_match "a path escaping the UDF dir is refused" '^failed\|udf: "entrypoint" must not contain ".."' "$(state_error "$tid")"
job=$(udf_job bad_lang '{"language": "cobol", "entrypoint": "x.cob"}')
tid=$(run_task "$job" '{}' 20)
check_match "an unknown language is refused" '^failed\|udf: config "language" must be python, typescript or rust' "$(state_error "$tid")"

stop_worker u1
check_eq "every scratch dir was removed" "0" "$(ls -d "$SCRATCH"/trace-udf-* 2>/dev/null | wc -l)"
check_eq "no log line carries the secret" "0" "$(cat "$SCRATCH"/logs/*.log | grep -c -- "$SECRET_MARKER")"
check_eq "no task output carries the secret" "0" \
  "$(sql "SELECT count(*) FROM trace.tasks WHERE coalesce(error, '') || coalesce(result::text, '') LIKE '%$SECRET_MARKER%'")"
finish
