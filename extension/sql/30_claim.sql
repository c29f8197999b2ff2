-- Leases: claim, fetch, heartbeat, and the fencing error.
--
-- Fencing: every task-scoped call names (task_id, attempt, lease_token).  The
-- statement that acts also checks them, together with state = 'running' and
-- an unexpired lease, so a caller whose lease was lost changes nothing.  Only
-- the database clock (now()) decides whether a lease has expired.

-- Explains why a fenced call matched nothing and raises the matching error:
-- 22004 for a NULL argument, TR004 for an unknown task, TR001 for a lease
-- that is no longer held.  Called only on the failure path.
CREATE FUNCTION trace.raise_lease_error(task_id bigint, attempt int, lease_token uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    t trace.task;
    done_state text;
BEGIN
    PERFORM trace.require_arg(task_id IS NULL, 'task_id');
    PERFORM trace.require_arg(attempt IS NULL, 'attempt');
    PERFORM trace.require_arg(lease_token IS NULL, 'lease_token');
    SELECT * INTO t FROM trace.task WHERE task.task_id = raise_lease_error.task_id;
    IF NOT FOUND THEN
        SELECT d.state INTO done_state FROM trace.task_done d
        WHERE d.task_id = raise_lease_error.task_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'task % does not exist', task_id USING ERRCODE = 'TR004';
        END IF;
        RAISE EXCEPTION 'lease lost: task % is already %', task_id, done_state
            USING ERRCODE = 'TR001',
                  HINT = 'Give the task up; it is no longer yours.';
    END IF;
    IF t.state <> 'running' OR t.attempt <> attempt OR t.lease_token <> lease_token THEN
        RAISE EXCEPTION 'lease lost: task % attempt % is not the current lease', task_id, attempt
            USING ERRCODE = 'TR001',
                  DETAIL = format('The task is %s at attempt %s.', t.state, t.attempt),
                  HINT = 'Give the task up; another attempt owns it.';
    END IF;
    RAISE EXCEPTION 'lease lost: the lease of task % attempt % has expired', task_id, attempt
        USING ERRCODE = 'TR001',
              HINT = 'Heartbeat well inside the lease; the dispatcher will retry the task.';
END
$$;
COMMENT ON FUNCTION trace.raise_lease_error(bigint, int, uuid) IS
    'Raises the error explaining why a fenced call did not match (TR001 stale lease, TR004 unknown task, 22004 NULL)';

-- Leases up to max_tasks queued tasks of an org for the given runtimes,
-- highest priority first, then oldest, and returns them in that order.  FOR
-- UPDATE SKIP LOCKED lets any number of claimers run at once without ever
-- handing one task to two of them.  With several runtimes each is probed
-- through the claim index (O(log n) each) and the best max_tasks are kept;
-- the others are unlocked at commit.  The one claim path (lease.c): workers
-- reach it through trace.claim_tasks, the dispatcher's own executor
-- directly.
CREATE FUNCTION trace.claim(org text, worker_id text, runtimes text[], max_tasks int, lease interval)
RETURNS TABLE (task_id bigint, attempt int, lease_token uuid, lease_expires_at timestamptz,
               job_id bigint, operator text, runtime text, mode text, payload jsonb)
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_claim';
COMMENT ON FUNCTION trace.claim(text, text, text[], int, interval) IS
    'The one claim path: leases queued tasks of an org (FOR UPDATE SKIP LOCKED), best first';

-- Leases up to max_tasks queued tasks of the given runtimes for the
-- caller's org; see trace.claim.
CREATE FUNCTION trace.claim_tasks(
    worker_id text,
    runtimes  text[],
    max_tasks int DEFAULT 1,
    lease     interval DEFAULT NULL)
RETURNS TABLE (task_id bigint, attempt int, lease_token uuid, lease_expires_at timestamptz,
               job_id bigint, operator text, runtime text, mode text, payload jsonb)
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_claim_tasks';
COMMENT ON FUNCTION trace.claim_tasks(text, text[], int, interval) IS
    'Leases up to max_tasks queued tasks of the given runtimes (priority, then age); returns the leases';

-- The full task for the worker that holds its lease: its job's config, the
-- dataset ids it reads (inputs) and writes (outputs, in the DAG's order;
-- the versions are resolved when it writes), the event that made it, and
-- whether it was canceled.
CREATE FUNCTION trace.task_fetch(task_id bigint, attempt int, lease_token uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    doc jsonb;
BEGIN
    SELECT jsonb_build_object(
               'task_id', t.task_id, 'attempt', t.attempt,
               'lease_expires_at', t.lease_expires_at, 'deadline_at', t.deadline_at,
               'canceled', t.cancel_requested, 'mode', t.mode,
               'priority', t.priority, 'max_attempts', t.max_attempts,
               'payload', t.payload, 'event_id', t.event_id,
               'dag_version', t.dag_version,
               'event', (SELECT jsonb_build_object('event_id', e.event_id, 'dataset_id', e.dataset_id,
                                                   'dataset_version', e.dataset_version,
                                                   'partition_key', e.partition_key,
                                                   'producer_task_id', e.producer_task_id)
                         FROM trace.event e WHERE e.event_id = t.event_id),
               'job', jsonb_build_object('job_id', j.job_id, 'dag', j.dag, 'name', j.name,
                                         'operator', j.operator, 'runtime', j.runtime,
                                         'config', j.config),
               'inputs', (SELECT coalesce(jsonb_agg(d.dataset_id ORDER BY d.dataset_id), '[]')
                          FROM trace.job_input ji JOIN trace.dataset d USING (dataset_uuid)
                          WHERE ji.job_id = j.job_id),
               'outputs', (SELECT coalesce(jsonb_agg(d.dataset_id ORDER BY jo.output_index), '[]')
                           FROM trace.job_output jo JOIN trace.dataset d USING (dataset_uuid)
                           WHERE jo.job_id = j.job_id))
    INTO doc
    FROM trace.task t JOIN trace.job j ON j.job_id = t.job_id
    WHERE t.task_id = task_fetch.task_id AND t.attempt = task_fetch.attempt
      AND t.lease_token = task_fetch.lease_token AND t.state = 'running'
      AND t.lease_expires_at > now();
    IF doc IS NULL THEN
        PERFORM trace.raise_lease_error(task_id, attempt, lease_token);
    END IF;
    RETURN doc;
END
$$;
COMMENT ON FUNCTION trace.task_fetch(bigint, int, uuid) IS
    'The task, its job and its cancel flag, for the holder of the current lease';

-- Extends the lease by the task's lease length and answers 'ok', or answers
-- 'canceled' (without extending) when a cancel was requested.
CREATE FUNCTION trace.heartbeat(task_id bigint, attempt int, lease_token uuid)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    canceled boolean;
BEGIN
    UPDATE trace.task t
    SET lease_expires_at = CASE WHEN t.cancel_requested THEN t.lease_expires_at
                                ELSE now() + t.lease END
    WHERE t.task_id = heartbeat.task_id AND t.attempt = heartbeat.attempt
      AND t.lease_token = heartbeat.lease_token AND t.state = 'running'
      AND t.lease_expires_at > now()
    RETURNING t.cancel_requested INTO canceled;
    IF NOT FOUND THEN
        PERFORM trace.raise_lease_error(task_id, attempt, lease_token);
    END IF;
    RETURN CASE WHEN canceled THEN 'canceled' ELSE 'ok' END;
END
$$;
COMMENT ON FUNCTION trace.heartbeat(bigint, int, uuid) IS
    'Extends the lease (''ok'') or reports a requested cancel (''canceled''); TR001 when the lease is lost';
