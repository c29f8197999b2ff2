-- Cancellation: at once for waiting tasks, cooperatively for running ones.
\set VERBOSITY terse

SELECT trace.create_job('cancel_job', 'noop') AS job \gset
DELETE FROM trace.task;

-- A queued task and a scheduled one cancel at once.
SELECT trace.enqueue_task(:job) AS q \gset
SELECT trace.enqueue_task(:job, not_before => now() + interval '1 hour') AS s \gset
SELECT trace.cancel_task(:q), trace.cancel_task(:s);
SELECT task_id = :q AS is_q, state, error FROM trace.tasks WHERE task_id IN (:q, :s) ORDER BY task_id;
-- Cancelling again reports the final state.
SELECT trace.cancel_task(:q);

-- A running task is flagged: its heartbeat answers canceled without
-- extending the lease, fetch shows it, emits are refused.
SELECT trace.enqueue_task(:job) AS r \gset
SELECT task_id, attempt, lease_token, lease_expires_at AS lease_before
FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.cancel_task(:r);
SELECT trace.heartbeat(:c_task_id, :c_attempt, :'c_lease_token');
SELECT lease_expires_at = :'c_lease_before' AS lease_not_extended FROM trace.task WHERE task_id = :r;
SELECT trace.task_fetch(:c_task_id, :c_attempt, :'c_lease_token')->'canceled' AS canceled;
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, ''d'', ''1'', ''{}'')', :c_task_id, :c_attempt, :'c_lease_token'));
-- The worker gives it up: it ends canceled, not retried.
SELECT trace.fail_task(:c_task_id, :c_attempt, :'c_lease_token', 'gave up after cancel');
SELECT state, error FROM trace.tasks WHERE task_id = :r;

-- A canceled running task whose worker never answers ends canceled when its
-- lease expires (it is not retried).
SELECT trace.enqueue_task(:job) AS z \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.cancel_task(:z);
UPDATE trace.task SET lease_expires_at = now() - interval '1 second' WHERE task_id = :z;
SELECT trace.expire_leases();
SELECT state FROM trace.tasks WHERE task_id = :z;

-- A task that completes after a cancel was requested ends canceled.
SELECT trace.enqueue_task(:job) AS w \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_
SELECT trace.cancel_task(:w);
SELECT trace.complete_task(:c_task_id, :c_attempt, :'c_lease_token');

-- Bad cancels.
SELECT test.try('SELECT trace.cancel_task(NULL)');
SELECT test.try('SELECT trace.cancel_task(999999)');
