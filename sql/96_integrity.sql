-- integrity_check over chain tables: a clean chain passes; gaps, a broken
-- hash chain, wrong counts and duplicates are each reported, the report is
-- kept and the task fails for good (alert-able through the outbox).
\set VERBOSITY terse

SELECT dag_version FROM trace.deploy_dag($yaml$
dag: integ
jobs:
  ingest:
    operator: range_ingest
    config: {rpc: local, chain_id: 1, from_block: 0, to_block: 5}
    outputs: [integ.blocks, integ.txs, integ.logs]
  check:
    operator: integrity_check
    inputs: [integ.blocks, integ.txs, integ.logs]
$yaml$);
SELECT relation AS blocks FROM trace.datasets WHERE dataset_id = 'integ.blocks' \gset
SELECT relation AS txs FROM trace.datasets WHERE dataset_id = 'integ.txs' \gset
SELECT relation AS logs FROM trace.datasets WHERE dataset_id = 'integ.logs' \gset

-- A clean chain of blocks 0..4 (as a follower would write it): block n has
-- n transactions with one log each.
INSERT INTO :blocks (partition_key, producer_task_id, chain_id, block_number, block_hash, parent_hash,
                     block_timestamp, tx_count, log_count)
SELECT n::text, 0, 1, n, sha256(n::text::bytea), sha256((n - 1)::text::bytea),
       '2026-01-01'::timestamptz + n * interval '12 s', n, n
FROM generate_series(0, 4) n;
INSERT INTO :txs (partition_key, producer_task_id, chain_id, block_number, block_timestamp, tx_index,
                  tx_hash, from_address, value)
SELECT b::text, 0, 1, b, '2026-01-01', i, sha256((b || '/' || i)::bytea), '\x01', 0
FROM generate_series(0, 4) b, generate_series(0, b - 1) i;
INSERT INTO :logs (partition_key, producer_task_id, chain_id, block_number, block_timestamp, tx_index,
                   log_index, tx_hash, address)
SELECT b::text, 0, 1, b, '2026-01-01', i, i, sha256((b || '/' || i)::bytea), '\x02'
FROM generate_series(0, 4) b, generate_series(0, b - 1) i;

SELECT trace.trigger_job('integ', 'check') IS NOT NULL AS triggered;
SELECT trace.run_dispatcher_tasks(10);
SELECT job, from_block, to_block, blocks, ok, violations FROM trace.integrity_reports WHERE dag = 'integ' ORDER BY report_id;
SELECT t.state FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.dag = 'integ' AND j.name = 'check';

-- Corruption: block 2 missing, block 4's parent hash wrong, block 3 lost a
-- transaction and a log, and a transaction hash appears twice.
DELETE FROM :blocks WHERE block_number = 2;
UPDATE :blocks SET parent_hash = '\xdead' WHERE block_number = 4;
DELETE FROM :txs WHERE block_number = 3 AND tx_index = 0;
DELETE FROM :logs WHERE block_number = 3 AND log_index = 0;
UPDATE :txs SET tx_hash = sha256('4/0'::bytea) WHERE block_number = 4 AND tx_index = 1;
DELETE FROM trace.outbox;
SELECT trace.trigger_job('integ', 'check') IS NOT NULL AS triggered;
SELECT trace.run_dispatcher_tasks(10);
SELECT ok, blocks, jsonb_array_length(violations) AS violations
FROM trace.integrity_reports ORDER BY report_id DESC LIMIT 1;
SELECT v FROM trace.integrity_reports r, jsonb_array_elements(r.violations) v
WHERE r.report_id = (SELECT max(report_id) FROM trace.integrity_report) ORDER BY v::text;
SELECT t.state, left(t.error, 60) AS error FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE j.dag = 'integ' AND j.name = 'check' ORDER BY t.task_id;
SELECT channel, payload->>'attempt' AS attempt FROM trace.outbox;

-- A window checks only the latest blocks.
SELECT dag_version FROM trace.deploy_dag($yaml$
dag: integ
jobs:
  ingest:
    operator: range_ingest
    config: {rpc: local, chain_id: 1, from_block: 0, to_block: 5}
    outputs: [integ.blocks, integ.txs, integ.logs]
  check:
    operator: integrity_check
    inputs: [integ.blocks, integ.txs, integ.logs]
    config: {window: 1, checks: [gaps, tx_counts]}
$yaml$);
SELECT trace.run_dispatcher_tasks(10);
SELECT trace.cutover_ready();
SELECT trace.trigger_job('integ', 'check') IS NOT NULL AS triggered;
SELECT trace.run_dispatcher_tasks(10);
SELECT from_block, to_block, blocks, ok, violations FROM trace.integrity_reports ORDER BY report_id DESC LIMIT 1;

-- Without a blocks table among its inputs the check cannot run.
SELECT * FROM trace.validate_dag($yaml$
dag: integ2
jobs:
  s: {operator: noop, activation: source, outputs: [integ2.raw]}
  check: {operator: integrity_check, inputs: [integ2.raw]}
$yaml$);
