-- Read-only views for people and dashboards, scoped to the caller's org.

CREATE VIEW trace.tasks AS
    SELECT task_id, org_id, job_id, operator, runtime, state, mode, priority,
           attempt, max_attempts, worker_id, not_before, lease_expires_at,
           cancel_requested, payload, NULL::jsonb AS result, last_error AS error,
           event_id, dag_version, created_at, started_at, NULL::timestamptz AS finished_at
    FROM trace.task
    WHERE org_id = trace.caller_org()
    UNION ALL
    SELECT task_id, org_id, job_id, operator, runtime, state, mode, priority,
           attempt, max_attempts, worker_id, NULL, NULL, state = 'canceled', payload,
           result, error, event_id, dag_version, created_at, started_at, finished_at
    FROM trace.task_done
    WHERE org_id = trace.caller_org();
COMMENT ON VIEW trace.tasks IS
    'Every task of your org, active and finished, with its state and last error';

CREATE VIEW trace.task_attempts AS
    SELECT task_id, attempt, worker_id, started_at, ended_at, outcome, error
    FROM trace.task_attempt
    WHERE org_id = trace.caller_org()
    UNION ALL
    SELECT task_id, attempt, worker_id, started_at, finished_at, state, error
    FROM trace.task_done
    WHERE org_id = trace.caller_org() AND attempt > 0;
COMMENT ON VIEW trace.task_attempts IS
    'Every ended attempt: retried failures, expired leases, timeouts, and each task''s final attempt';

CREATE VIEW trace.task_counts AS
    SELECT job_id, state, count(*) AS tasks
    FROM (SELECT job_id, state FROM trace.task WHERE org_id = trace.caller_org()
          UNION ALL
          SELECT job_id, state FROM trace.task_done WHERE org_id = trace.caller_org()) s
    GROUP BY job_id, state;
COMMENT ON VIEW trace.task_counts IS 'Number of tasks per job and state';

CREATE VIEW trace.events AS
    SELECT event_id, producer_task_id, producer_attempt, dataset_id, partition_key,
           payload, created_at
    FROM trace.event
    WHERE org_id = trace.caller_org();
COMMENT ON VIEW trace.events IS 'Events emitted by tasks of your org';
