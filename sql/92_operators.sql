-- Dispatcher-runtime operators, run by hand with trace.run_dispatcher_tasks:
-- aggregator (exactly-once batch manifests), splitter (its inverse), sql
-- (materialized per partition, or virtual).
\set VERBOSITY terse

SELECT dag_version FROM trace.deploy_dag($yaml$
dag: ops
jobs:
  src:
    operator: noop
    activation: source
    priority: 100
    outputs: [ops.blocks]
  ranges:
    operator: aggregator
    inputs: [ops.blocks]
    config: {cursor: block_number, size: 4, origin: 100}
    outputs: [ops.ranges]
  units:
    operator: splitter
    inputs: [ops.ranges]
    config: {cursor: block_number, size: 2}
    outputs: [ops.units]
  evens:
    operator: sql
    inputs: [ops.blocks]
    config:
      query: >
        SELECT (b."row"->>'n')::int AS n, b."row"->>'hash' AS hash
        FROM {{ops.blocks}} b WHERE (b."row"->>'n')::int % 2 = 0
    outputs: [ops.evens]
  evens_view:
    operator: sql
    materialize: false
    inputs: [ops.evens]
    config: {query: "SELECT n, upper(hash) AS hash FROM {{ ops.evens }}"}
    outputs: [ops.evens_upper]
$yaml$);

SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform'], 1, '1 hour') \gset s_
-- Blocks 100..109, out of order within a batch, one duplicate.
SELECT count(*) FROM (
    SELECT trace.write_rows(:s_task_id, :s_attempt, :'s_lease_token', 'ops.blocks', n::text,
                            jsonb_build_array(jsonb_build_object('n', n, 'hash', 'h' || n))),
           trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'ops.blocks', n::text,
                            jsonb_build_object('block_number', n))
    FROM unnest(ARRAY[101, 100, 103, 102, 104, 105, 106, 107, 108, 109]) n) s;

-- Run the dispatcher's executor until the queue is empty.
SELECT trace.run_dispatcher_tasks(1000) > 0 AS ran;
SELECT trace.run_dispatcher_tasks(1000) > 0 AS ran;
SELECT trace.run_dispatcher_tasks(1000) AS ran;
SELECT j.name, t.state, count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE j.dag = 'ops' AND j.name <> 'src' GROUP BY 1, 2 ORDER BY 1, 2;

-- Two full batches [100,104) and [104,108), each emitted once; 108..109 open.
SELECT partition_key, payload FROM trace.events WHERE dataset_id = 'ops.ranges' ORDER BY event_id;
SELECT "row" FROM trace_data."ops.ranges" ORDER BY "row"->>'from';
SELECT batch_start, batch_end, units, closed_at IS NOT NULL AS closed FROM trace.aggregator_batch ORDER BY 1;
-- The splitter turned each manifest back into pieces of 2.
SELECT partition_key, payload FROM trace.events WHERE dataset_id = 'ops.units' ORDER BY event_id;
-- sql: one partition per input event, and the virtual view over it.
SELECT n, hash FROM trace_data."ops.evens" ORDER BY n;
SELECT n, hash FROM trace_data."ops.evens_upper" ORDER BY n;
SELECT count(*) AS partitions, sum(row_count) AS rows FROM trace.dataset_partition p
JOIN trace.dataset d USING (dataset_uuid) WHERE d.dataset_id = 'ops.evens';

-- Re-delivering a unit is a no-op, also after its batch was emitted (a
-- block re-emitted after a reorg), and so is a retraction; an event without
-- the cursor fails for good with the reason.
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'ops.blocks', '108b',
                        '{"block_number": 108}') IS NOT NULL AS duplicate_unit;
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'ops.blocks', '101b',
                        '{"block_number": 101}') IS NOT NULL AS late_unit;
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'ops.blocks', '102:retracted',
                        '{"block_number": 102, "retracted": true}') IS NOT NULL AS retraction;
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'ops.blocks', 'nocursor',
                        '{"hash": "x"}') IS NOT NULL AS no_cursor;
SELECT trace.run_dispatcher_tasks(1000) > 0 AS ran;
SELECT t.payload, t.state, t.error FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE j.name = 'ranges' AND t.state <> 'succeeded' ORDER BY t.task_id;
SELECT count(*) AS manifests FROM trace.events WHERE dataset_id = 'ops.ranges';
