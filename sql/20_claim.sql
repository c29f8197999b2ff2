-- Claiming: order, runtimes, limits, leases, and bad inputs.
\set VERBOSITY terse

SELECT trace.create_job('claim_a', 'noop') AS job_a \gset
SELECT trace.create_job('claim_b', 'udf', runtime => 'lambda') AS job_b \gset
-- Start from an empty queue.
DELETE FROM trace.task;

-- Priority first (higher runs first), then age.
SELECT trace.enqueue_task(:job_a, '{"n": "low-old"}', priority => 0) AS low_old \gset
SELECT trace.enqueue_task(:job_a, '{"n": "high"}', priority => 10) AS high \gset
SELECT trace.enqueue_task(:job_a, '{"n": "low-new"}', priority => 0) AS low_new \gset
SELECT trace.enqueue_task(:job_b, '{"n": "lambda"}', priority => 20) AS lam \gset
SELECT trace.enqueue_task(:job_a, '{"n": "later"}', not_before => now() + interval '1 day') AS later \gset

-- One claim of one task takes the best of the runtime asked for.
SELECT payload->>'n' AS claimed, attempt, runtime, lease_expires_at > now() AS leased
FROM trace.claim_tasks('w1', ARRAY['ecs_platform']);

-- The claimed row records the holder; its token is fresh.
SELECT state, worker_id, attempt, lease_token IS NOT NULL AS has_token,
       started_at IS NOT NULL AS started
FROM trace.task WHERE task_id = :high;

-- Several runtimes: the best across them, in claim order.
SELECT payload->>'n' AS claimed FROM trace.claim_tasks('w2', ARRAY['ecs_platform', 'lambda'], 2);
-- What is left; the scheduled task is not claimable.
SELECT payload->>'n' AS claimed FROM trace.claim_tasks('w2', ARRAY['ecs_platform', 'lambda'], 10);
SELECT count(*) AS left_queued FROM trace.task WHERE state = 'queued';

-- An explicit lease length overrides the job's for this attempt.
SELECT trace.enqueue_task(:job_a) AS t \gset
SELECT lease_expires_at BETWEEN now() + interval '9 minutes' AND now() + interval '11 minutes' AS ten_minutes
FROM trace.claim_tasks('w3', ARRAY['ecs_platform'], 1, '10 minutes');

-- Nothing to claim: an empty result, not an error.
SELECT count(*) FROM trace.claim_tasks('w4', ARRAY['ecs_platform']);
SELECT count(*) FROM trace.claim_tasks('w4', ARRAY['no_such_runtime']);
SELECT count(*) FROM trace.claim_tasks('w4', ARRAY[]::text[]);

-- Bad claims.
SELECT test.try($$SELECT trace.claim_tasks(NULL, ARRAY['ecs_platform'])$$);
SELECT test.try($$SELECT trace.claim_tasks('w', NULL)$$);
SELECT test.try($$SELECT trace.claim_tasks('w', ARRAY['ecs_platform'], NULL)$$);
SELECT test.try($$SELECT trace.claim_tasks('w', ARRAY['ecs_platform'], -1)$$);
SELECT test.try($$SELECT trace.claim_tasks('w', ARRAY['ecs_platform'], 0)$$);
SELECT test.try($$SELECT trace.claim_tasks('w', ARRAY['ecs_platform'], 1000000)$$);
SELECT test.try($$SELECT trace.claim_tasks('w', ARRAY['ecs_platform'], 1, '-1 second')$$);
SELECT test.try($$SELECT trace.claim_tasks('w', ARRAY['ecs_platform'], 1, '2 days')$$);

-- The claim query locks through the claim index alone (no join, no sort of
-- the whole queue).
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT t.task_id FROM trace.task t
WHERE t.org_id = 'default' AND t.runtime = 'ecs_platform' AND t.state = 'queued'
ORDER BY t.priority DESC, t.task_id LIMIT 10 FOR UPDATE SKIP LOCKED;
RESET enable_seqscan;
