-- Events: idempotent emission keyed on (producer task, dataset, partition).
\set VERBOSITY terse

SELECT trace.create_job('emit_job', 'noop') AS job \gset
DELETE FROM trace.task;
SELECT trace.enqueue_task(:job) AS t \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_

-- Emit two partitions of one dataset and one of another.
SELECT trace.emit_event(:c_task_id, :c_attempt, :'c_lease_token', 'eth.blocks', '100', '{"block": 100}') AS e1 \gset
SELECT trace.emit_event(:c_task_id, :c_attempt, :'c_lease_token', 'eth.blocks', '101', '{"block": 101}') AS e2 \gset
SELECT trace.emit_event(:c_task_id, :c_attempt, :'c_lease_token', 'eth.logs', '100', '{"block": 100}') AS e3 \gset
SELECT :e1 <> :e2 AND :e2 <> :e3 AS distinct_events;

-- Re-emitting a key returns the original event and changes nothing, even
-- with another payload.
SELECT trace.emit_event(:c_task_id, :c_attempt, :'c_lease_token', 'eth.blocks', '100', '{"block": "changed"}') = :e1 AS same_event;
SELECT dataset_id, partition_key, payload, producer_attempt FROM trace.events
WHERE producer_task_id = :c_task_id ORDER BY event_id;

-- A retry of the task re-emits the same key: still one event, the original.
UPDATE trace.task SET lease_expires_at = now() - interval '1 second' WHERE task_id = :t;
SELECT trace.expire_leases();
UPDATE trace.task SET not_before = now() WHERE task_id = :t;
SELECT trace.release_scheduled();
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w2', ARRAY['ecs_platform']) \gset r_
SELECT trace.emit_event(:r_task_id, :r_attempt, :'r_lease_token', 'eth.blocks', '100', '{"block": 100}') = :e1 AS same_event_after_retry;
SELECT count(*) AS events FROM trace.event WHERE producer_task_id = :t;

-- Bad emits: NULLs, empty and huge names, oversized payloads, stale leases.
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, NULL, ''1'', ''{}'')', :r_task_id, :r_attempt, :'r_lease_token'));
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, ''d'', NULL, ''{}'')', :r_task_id, :r_attempt, :'r_lease_token'));
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, ''d'', ''1'', NULL)', :r_task_id, :r_attempt, :'r_lease_token'));
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, '''', ''1'', ''{}'')', :r_task_id, :r_attempt, :'r_lease_token'));
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, repeat(''d'', 64), ''1'', ''{}'')', :r_task_id, :r_attempt, :'r_lease_token'));
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, ''d'', repeat(''k'', 1001), ''{}'')', :r_task_id, :r_attempt, :'r_lease_token'));
SET trace.max_payload_bytes = '4kB';
SELECT test.try(format($$SELECT trace.emit_event(%s, %s, %L, 'd', '1', jsonb_build_object('blob', repeat('x', 5000)))$$, :r_task_id, :r_attempt, :'r_lease_token'));
RESET trace.max_payload_bytes;
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, ''d'', ''1'', ''{}'')', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT count(*) AS events FROM trace.event WHERE producer_task_id = :t;
