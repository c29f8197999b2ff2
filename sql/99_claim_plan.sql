-- The claim's cached plan walks the claim index even when it was first made
-- while the queue was empty (a generic plan made from empty statistics
-- would otherwise be a sequential scan and a sort, kept by the backend).
SELECT trace.create_job('plan_job', 'noop') AS job \gset
DELETE FROM trace.task;
ANALYZE trace.task;
BEGIN;
-- The first claim of this session plans on an empty, analyzed queue.
SELECT count(*) AS claimed FROM trace.claim_tasks('w', ARRAY['ecs_platform']);
SELECT count(*) AS enqueued FROM trace.enqueue_tasks(:job, array_fill('{}'::jsonb, ARRAY[2000]));
SELECT seq_scan AS before FROM pg_stat_xact_user_tables WHERE relid = 'trace.task'::regclass \gset
SELECT count(*) AS claimed FROM trace.claim_tasks('w', ARRAY['ecs_platform'], 5);
SELECT count(*) AS claimed FROM trace.claim_tasks('w', ARRAY['ecs_platform'], 1);
SELECT seq_scan - :before AS seq_scans_during_claims
FROM pg_stat_xact_user_tables WHERE relid = 'trace.task'::regclass;
ROLLBACK;
