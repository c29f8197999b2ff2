-- Chain sources: fenced access to the chain tables for COPY, durable
-- source state, reorg records, batched events, restarting a halted source.
\set VERBOSITY terse

SELECT dag_version FROM trace.deploy_dag($yaml$
dag: chainsrc
jobs:
  follow:
    operator: block_follower
    activation: source
    priority: 100
    config: {rpc: local, chain_id: 31337}
    outputs: [cs.blocks, cs.txs, cs.logs]
  ranges:
    operator: aggregator
    inputs: [cs.blocks]
    config: {cursor: block_number, size: 2}
    outputs: [cs.ranges]
$yaml$);
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform'], 1, '1 hour') \gset s_

-- The chain tables, in output order, for the lease holder.
SELECT dataset_id, output_index, relation LIKE 'trace_data.d%' AS versioned
FROM trace.chain_tables(:s_task_id, :s_attempt, :'s_lease_token');
SELECT test.try(format('SELECT * FROM trace.chain_tables(%s, %s, gen_random_uuid())', :s_task_id, :s_attempt));
-- A worker role may write chain tables (by COPY), and nothing else of trace_data.
SELECT relation AS blocks FROM trace.chain_tables(:s_task_id, :s_attempt, :'s_lease_token') WHERE output_index = 0 \gset
SELECT has_table_privilege('trace_worker', :'blocks', 'INSERT') AS worker_inserts_chain,
       has_table_privilege('trace_worker', (SELECT relation FROM trace.datasets WHERE dataset_id = 'cs.ranges'), 'INSERT') AS worker_inserts_ranges;

-- Source state: empty at first, then what was saved, per run.
SELECT trace.source_state(:s_task_id, :s_attempt, :'s_lease_token');
SELECT trace.save_source_state(:s_task_id, :s_attempt, :'s_lease_token', '{"cursor": 12, "hash": "0xab"}');
SELECT trace.source_state(:s_task_id, :s_attempt, :'s_lease_token');
SELECT test.try(format('SELECT trace.save_source_state(%s, %s, %L, NULL)', :s_task_id, :s_attempt, :'s_lease_token'));
SELECT test.try(format('SELECT trace.save_source_state(%s, %s, gen_random_uuid(), ''{}'')', :s_task_id, :s_attempt));

-- A batch of events: one call, in order, idempotent per key, routed.
SELECT cardinality(trace.emit_events(:s_task_id, :s_attempt, :'s_lease_token', 'cs.blocks',
                   ARRAY['1:0xa1', '2:0xa2', '3:0xa3'],
                   ARRAY['{"block_number": 1}', '{"block_number": 2}', '{"block_number": 3}']::jsonb[])) AS emitted;
SELECT trace.emit_events(:s_task_id, :s_attempt, :'s_lease_token', 'cs.blocks', ARRAY['2:0xa2'],
                         ARRAY['{"block_number": 2}']::jsonb[])
     = ARRAY[(SELECT event_id FROM trace.event WHERE partition_key = '2:0xa2')] AS same_event;
SELECT count(*) AS routed FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.dag = 'chainsrc' AND j.name = 'ranges';
SELECT test.try(format('SELECT trace.emit_events(%s, %s, %L, ''cs.blocks'', ARRAY[''a'', ''b''], ARRAY[''{}'']::jsonb[])', :s_task_id, :s_attempt, :'s_lease_token'));
SELECT test.try(format('SELECT trace.emit_events(%s, %s, %L, ''cs.blocks'', ARRAY[NULL]::text[], ARRAY[''{}'']::jsonb[])', :s_task_id, :s_attempt, :'s_lease_token'));
SELECT test.try(format('SELECT trace.emit_events(%s, %s, %L, ''cs.blocks'', NULL, NULL)', :s_task_id, :s_attempt, :'s_lease_token'));

-- A reorg is recorded and announced on the outbox.
DELETE FROM trace.outbox;
SELECT trace.record_reorg(:s_task_id, :s_attempt, :'s_lease_token', 31337, 2, 2,
                          ARRAY['0xa2', '0xa3'], ARRAY['0xb2', '0xb3']) IS NOT NULL AS recorded;
SELECT chain_id, fork_block, depth, old_hashes, new_hashes FROM trace.reorg;
SELECT channel, payload->>'depth' AS depth, payload->>'fork_block' AS fork_block FROM trace.outbox;
SELECT test.try(format('SELECT trace.record_reorg(%s, %s, %L, NULL, 1, 1, ''{}'', ''{}'')', :s_task_id, :s_attempt, :'s_lease_token'));

-- A source that halts (fails for good) restarts as a retry of the same
-- run: same task id, next attempt, its state kept.
SELECT trace.fail_task(:s_task_id, :s_attempt, :'s_lease_token', 'reorg deeper than 64 blocks', retryable => false);
SELECT test.try($$SELECT trace.restart_source('chainsrc', 'ranges')$$);
SELECT trace.restart_source('chainsrc', 'follow') = :s_task_id AS same_run;
SELECT state, attempt FROM trace.tasks WHERE task_id = :s_task_id;
SELECT test.try($$SELECT trace.restart_source('chainsrc', 'follow')$$);
SELECT task_id = :s_task_id AS same_run, attempt FROM trace.claim_tasks('w2', ARRAY['ecs_platform'], 1, '1 hour') \gset r_
SELECT :'r_same_run' AS same_run, :r_attempt > :s_attempt AS next_attempt;
SELECT trace.source_state(:s_task_id, :r_attempt, (SELECT lease_token FROM trace.task WHERE task_id = :s_task_id));
