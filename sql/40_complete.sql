-- Completing and failing: results, batches with stale members, retries with
-- backoff, and poison tasks that end failed at max_attempts.
\set VERBOSITY terse

SELECT trace.create_job('finish_job', 'noop', max_attempts => 3, backoff => '10 seconds',
                        max_backoff => '25 seconds') AS job \gset
DELETE FROM trace.task;

-- Complete one task with a result; it leaves the active table.
SELECT trace.enqueue_task(:job, '{"n": 1}') AS t \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.complete_task(:c_task_id, :c_attempt, :'c_lease_token', '{"rows": 42}');
SELECT count(*) AS active FROM trace.task WHERE task_id = :t;
SELECT state, attempt, worker_id, result, finished_at >= started_at AS ordered
FROM trace.tasks WHERE task_id = :t;

-- Completing twice: the second call is a lost lease and changes nothing.
SELECT test.try(format('SELECT trace.complete_task(%s, %s, %L, ''{"rows": 0}'')', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT result FROM trace.tasks WHERE task_id = :t;

-- A batch: three current leases and one stale member; the stale one is
-- reported and skipped, the others complete, in input order.
SELECT count(*) FROM trace.enqueue_tasks(:job, ARRAY['{"n":2}', '{"n":3}', '{"n":4}']::jsonb[]);
SELECT array_agg(task_id ORDER BY task_id) AS ids, array_agg(attempt ORDER BY task_id) AS atts,
       array_agg(lease_token ORDER BY task_id) AS toks
FROM trace.claim_tasks('w1', ARRAY['ecs_platform'], 10) \gset b_
SELECT status, count(*) FROM trace.complete_tasks(
    :'b_ids'::bigint[] || ARRAY[:c_task_id]::bigint[],
    :'b_atts'::int[] || ARRAY[:c_attempt],
    :'b_toks'::uuid[] || ARRAY[:'c_lease_token']::uuid[])
GROUP BY status ORDER BY status;
SELECT count(*) AS succeeded FROM trace.tasks WHERE task_id = ANY (:'b_ids'::bigint[]) AND state = 'succeeded';

-- Bad batches.
SELECT test.try($$SELECT * FROM trace.complete_tasks(NULL, '{}', '{}')$$);
SELECT test.try($$SELECT * FROM trace.complete_tasks('{1,2}', '{1}', '{}')$$);
SELECT test.try($$SELECT * FROM trace.complete_tasks('{1}', '{1}', ARRAY[gen_random_uuid()], '{}')$$);
SELECT test.try($$SELECT * FROM trace.complete_tasks(array_fill(1::bigint, ARRAY[10001]), array_fill(1, ARRAY[10001]), array_fill(gen_random_uuid(), ARRAY[10001]))$$);
SELECT * FROM trace.complete_tasks('{}', '{}', '{}');

-- A retryable failure is rescheduled with backoff (10 s, +-20% jitter), the
-- attempt is recorded with its error.
SELECT trace.enqueue_task(:job, '{"n": "poison"}') AS p \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.fail_task(:c_task_id, :c_attempt, :'c_lease_token', 'rpc timeout');
SELECT state, last_error, not_before BETWEEN now() + interval '7.9 seconds' AND now() + interval '12.1 seconds' AS backoff_10s
FROM trace.task WHERE task_id = :p;
SELECT attempt, outcome, error FROM trace.task_attempts WHERE task_id = :p ORDER BY attempt;
-- Not claimable while it waits.
SELECT count(*) AS claimable FROM trace.claim_tasks('w1', ARRAY['ecs_platform']);

-- Second attempt: the backoff doubles (20 s, +-20%).
UPDATE trace.task SET not_before = now() WHERE task_id = :p;
SELECT trace.release_scheduled();
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.fail_task(:c_task_id, :c_attempt, :'c_lease_token', 'rpc timeout again');
SELECT not_before BETWEEN now() + interval '15.9 seconds' AND now() + interval '24.1 seconds' AS backoff_20s
FROM trace.task WHERE task_id = :p;

-- Third and last attempt: failed for good, the last error kept, a notice in
-- the outbox, never claimable again.
UPDATE trace.task SET not_before = now() WHERE task_id = :p;
SELECT trace.release_scheduled();
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.fail_task(:c_task_id, :c_attempt, :'c_lease_token', 'still broken');
SELECT state, attempt, error FROM trace.tasks WHERE task_id = :p;
SELECT attempt, outcome, error FROM trace.task_attempts WHERE task_id = :p ORDER BY attempt;
SELECT channel, payload->>'error' AS error, payload->>'attempt' AS attempt FROM trace.outbox;
SELECT count(*) AS claimable FROM trace.claim_tasks('w1', ARRAY['ecs_platform']);

-- A non-retryable failure ends the task at once.
SELECT trace.enqueue_task(:job, '{"n": "bad input"}') AS q \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.fail_task(:c_task_id, :c_attempt, :'c_lease_token', 'unknown operator', retryable => false);
SELECT state, attempt, error FROM trace.tasks WHERE task_id = :q;

-- Bad failures.
SELECT trace.enqueue_task(:job) AS r \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT test.try(format('SELECT trace.fail_task(%s, %s, %L, NULL)', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT test.try(format('SELECT trace.fail_task(%s, %s, %L, ''x'', NULL)', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT test.try(format('SELECT trace.fail_task(%s, %s, gen_random_uuid(), ''x'')', :c_task_id, :c_attempt));

-- An oversized result is refused and the task stays running.
SET trace.max_payload_bytes = '4kB';
SELECT test.try(format($$SELECT trace.complete_task(%s, %s, %L, jsonb_build_object('blob', repeat('x', 5000)))$$, :c_task_id, :c_attempt, :'c_lease_token'));
RESET trace.max_payload_bytes;
SELECT state FROM trace.task WHERE task_id = :r;
