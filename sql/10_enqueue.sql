-- Jobs and enqueueing: the normal path and every bad input.
\set VERBOSITY terse

-- A job with defaults, one with its own policy.
SELECT trace.create_job('ingest', 'noop') AS job \gset
SELECT trace.create_job('udf_job', 'udf', runtime => 'lambda', max_attempts => 3,
                        backoff => '1 second', max_backoff => '10 seconds',
                        lease => '1 minute', priority => 5) AS udf_job \gset
SELECT name, operator, runtime, max_attempts, backoff, max_backoff, lease, priority
FROM trace.job ORDER BY job_id;

-- Bad jobs: each names the argument or the problem.
SELECT test.try($$SELECT trace.create_job(NULL, 'noop')$$);
SELECT test.try($$SELECT trace.create_job('ingest', 'noop')$$);
SELECT test.try($$SELECT trace.create_job('Bad-Name', 'noop')$$);
SELECT test.try($$SELECT trace.create_job('x"; DROP TABLE trace.task; --', 'noop')$$);
SELECT test.try($$SELECT trace.create_job('j1', 'noop', runtime => 'ecs_udf')$$);
SELECT test.try($$SELECT trace.create_job('j1', 'noop', runtime => 'k8s')$$);
SELECT test.try($$SELECT trace.create_job('j1', 'noop', max_attempts => 0)$$);
SELECT test.try($$SELECT trace.create_job('j1', 'noop', lease => '0 seconds')$$);
SELECT test.try($$SELECT trace.create_job('j1', 'noop', backoff => '1 hour', max_backoff => '1 minute')$$);
SELECT test.try($$SELECT trace.create_job('j1', 'noop', timeout => '-1 second')$$);

-- A due task is queued at once.
SELECT trace.enqueue_task(:job, '{"block": 1}') AS t1 \gset
SELECT state, attempt, max_attempts, priority, runtime, mode, payload
FROM trace.task WHERE task_id = :t1;

-- A task due later is scheduled, not claimable yet.
SELECT trace.enqueue_task(:job, '{}', not_before => now() + interval '1 hour') AS t2 \gset
SELECT state, not_before > now() AS in_future FROM trace.task WHERE task_id = :t2;

-- Overrides: priority and max_attempts per task; the job's defaults otherwise.
SELECT trace.enqueue_task(:udf_job, '{}', priority => 9, max_attempts => 1) AS t3 \gset
SELECT priority, max_attempts, lease FROM trace.task WHERE task_id = :t3;

-- A bulk enqueue: one task per payload, ids in order.
SELECT count(*) AS tasks FROM trace.enqueue_tasks(:job, ARRAY['{"i":1}', '{"i":2}', '{"i":3}']::jsonb[]);
SELECT count(*) AS queued FROM trace.task WHERE job_id = :job AND state = 'queued';

-- Bad enqueues.
SELECT test.try($$SELECT trace.enqueue_task(NULL)$$);
SELECT test.try($$SELECT trace.enqueue_task(999999)$$);
SELECT test.try(format('SELECT trace.enqueue_task(%s, NULL)', :job));
SELECT test.try(format('SELECT trace.enqueue_task(%s, max_attempts => 0)', :job));
SELECT test.try(format('SELECT trace.enqueue_tasks(%s, NULL)', :job));
SELECT test.try(format('SELECT trace.enqueue_tasks(%s, ARRAY[''{}'', NULL]::jsonb[])', :job));

-- An oversized payload is refused (the cap is trace.max_payload_bytes) and
-- nothing is stored.
SELECT count(*) AS before FROM trace.task \gset
SET trace.max_payload_bytes = '4kB';
SELECT test.try(format($$SELECT trace.enqueue_task(%s, jsonb_build_object('blob', repeat('x', 5000)))$$, :job));
RESET trace.max_payload_bytes;
SELECT count(*) = :before AS nothing_stored FROM trace.task;
