-- The dispatcher's steps, run by hand: lease expiry, timeouts, release of
-- scheduled tasks, the outbox relay, and task-history partitions.
\set VERBOSITY terse

SELECT trace.create_job('disp_job', 'noop', max_attempts => 2, timeout => '1 minute') AS job \gset
DELETE FROM trace.task;
DELETE FROM trace.outbox;

-- Expiry: a lapsed lease is retried; with attempts spent it fails for good.
SELECT count(*) FROM trace.enqueue_tasks(:job, ARRAY['{"n":1}', '{"n":2}']::jsonb[]);
SELECT count(*) FROM trace.claim_tasks('w1', ARRAY['ecs_platform'], 2);
UPDATE trace.task SET lease_expires_at = now() - interval '1 second';
SELECT trace.expire_leases();
SELECT state, attempt, last_error LIKE 'lease of attempt 1 held by w1 expired' AS why FROM trace.task ORDER BY task_id;
UPDATE trace.task SET not_before = now();
SELECT trace.release_scheduled();
SELECT count(*) FROM trace.claim_tasks('w2', ARRAY['ecs_platform'], 2);
UPDATE trace.task SET lease_expires_at = now() - interval '1 second';
SELECT trace.expire_leases();
SELECT state, attempt, error FROM trace.tasks WHERE job_id = :job ORDER BY task_id;
SELECT outcome, count(*) FROM trace.task_attempts ta JOIN trace.tasks t USING (task_id)
WHERE t.job_id = :job GROUP BY outcome ORDER BY outcome;

-- Timeout: an attempt running past the job's timeout ends even while it
-- heartbeats.
SELECT trace.enqueue_task(:job) AS t \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT deadline_at BETWEEN now() + interval '59 seconds' AND now() + interval '61 seconds' AS deadline_set
FROM trace.task WHERE task_id = :t;
UPDATE trace.task SET deadline_at = now() - interval '1 second' WHERE task_id = :t;
SELECT trace.expire_leases();
SELECT state, last_error FROM trace.task WHERE task_id = :t;

-- Release: only due tasks, and a bounded batch.
DELETE FROM trace.task;
SELECT count(*) FROM trace.enqueue_tasks(:job, array_fill('{}'::jsonb, ARRAY[5]), not_before => now() + interval '1 hour');
SELECT trace.release_scheduled();
SELECT trace.next_due_ms() BETWEEN 3500000 AND 3600000 AS due_in_an_hour;
UPDATE trace.task SET not_before = now() - interval '1 second';
SELECT trace.next_due_ms();
SELECT trace.release_scheduled(3);
SELECT state, count(*) FROM trace.task GROUP BY state ORDER BY state;
SELECT trace.release_scheduled();
DELETE FROM trace.task;
-- Nothing scheduled: NULL, so the dispatcher sleeps its full interval.
SELECT trace.next_due_ms() IS NULL AS sleeps_when_idle;

-- Outbox: the failure notices above are relayed once, oldest first, as
-- NOTIFY trace_task_failed, and removed in the same transaction.
SELECT count(*) AS pending FROM trace.outbox;
SELECT trace.relay_outbox(1);
SELECT trace.relay_outbox();
SELECT trace.relay_outbox();
SELECT count(*) AS pending FROM trace.outbox;

-- Task history: partitions for today and the next two days; retention drops
-- partitions wholly older than it (here an old one made by hand).
DELETE FROM trace.task_done_default;
SELECT trace.maintain_task_history('7 days');
SELECT count(*) AS day_partitions FROM pg_inherits
WHERE inhparent = 'trace.task_done'::regclass AND inhrelid::regclass::text ~ '^trace\.task_done_\d{8}$';
CREATE TABLE trace.task_done_20000101 (LIKE trace.task_done INCLUDING ALL);
ALTER TABLE trace.task_done ATTACH PARTITION trace.task_done_20000101
    FOR VALUES FROM ('2000-01-01 00:00+00') TO ('2000-01-02 00:00+00');
SELECT trace.maintain_task_history('7 days');
SELECT to_regclass('trace.task_done_20000101') IS NULL AS dropped;
-- Completions land in today's partition.
SELECT trace.enqueue_task(:job) AS t \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.complete_task(:c_task_id, :c_attempt, :'c_lease_token');
SELECT tableoid::regclass::text = 'trace.task_done_' || to_char(now(), 'YYYYMMDD') AS in_today
FROM trace.task_done WHERE task_id = :t;

-- Bad arguments.
SELECT test.try('SELECT trace.maintain_task_history(''1 minute'')');
SELECT test.try('SELECT trace.maintain_task_history(NULL)');
SELECT test.try('SELECT trace.expire_leases(NULL)');
