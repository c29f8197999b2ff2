-- Ending attempts and tasks: complete, fail, cancel, and the two internal
-- paths every ending goes through (trace.move_to_done for a task that ends,
-- trace.end_attempt for an attempt that ends in failure).  The hot ones
-- (move_to_done, complete_task, complete_tasks) are C, in lease.c: one
-- saved statement per call.

-- Moves tasks from trace.task to trace.task_done in one statement and returns
-- (task_id, state) for each one moved.  A row with attempt and lease_token is
-- fenced: it moves only while that lease is current and unexpired.  A row
-- without them is moved unconditionally; the caller already holds the task's
-- row lock.  The final state is the row's state, or 'canceled' when a cancel
-- was requested, or 'succeeded'.
CREATE FUNCTION trace.move_to_done(
    task_ids     bigint[],
    attempts     int[],
    lease_tokens uuid[],
    states       text[],
    results      jsonb[],
    errors       text[])
RETURNS TABLE (task_id bigint, state text)
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_move_to_done';
COMMENT ON FUNCTION trace.move_to_done(bigint[], int[], uuid[], text[], jsonb[], text[]) IS
    'The one path that ends tasks: moves them to trace.task_done, fenced when a lease is given';

-- Ends a failed attempt of a locked running task: cancel wins; otherwise a
-- retryable failure with attempts left is rescheduled with backoff; otherwise
-- the task fails for good and a trace_task_failed notice goes to the outbox.
-- Returns the task's new state.
CREATE FUNCTION trace.end_attempt(t trace.task, outcome text, error text, retryable boolean)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j trace.job;
BEGIN
    IF t.cancel_requested THEN
        PERFORM trace.move_to_done(ARRAY[t.task_id], NULL, NULL, ARRAY['canceled'],
                                   NULL, ARRAY[error]);
        RETURN 'canceled';
    END IF;
    IF retryable AND t.attempt < t.max_attempts THEN
        SELECT * INTO j FROM trace.job WHERE job_id = t.job_id;
        INSERT INTO trace.task_attempt (task_id, attempt, org_id, worker_id, started_at,
                                        outcome, error)
        VALUES (t.task_id, t.attempt, t.org_id, t.worker_id, t.started_at, outcome, error);
        UPDATE trace.task
        SET state = 'scheduled',
            not_before = now() + trace.retry_delay(coalesce(j.backoff, '2 seconds'),
                                                   coalesce(j.max_backoff, '5 minutes'),
                                                   t.attempt),
            lease_token = NULL, lease_expires_at = NULL, deadline_at = NULL,
            worker_id = NULL, last_error = error
        WHERE task_id = t.task_id;
        RETURN 'scheduled';
    END IF;
    PERFORM trace.move_to_done(ARRAY[t.task_id], NULL, NULL, ARRAY['failed'], NULL,
                               ARRAY[error]);
    PERFORM trace.notify_later(t.org_id, 'trace_task_failed',
        jsonb_build_object('task_id', t.task_id, 'job_id', t.job_id, 'attempt', t.attempt,
                           'outcome', outcome, 'error', left(error, 1000)));
    RETURN 'failed';
END
$$;
COMMENT ON FUNCTION trace.end_attempt(trace.task, text, text, boolean) IS
    'Ends a failed attempt: cancel, retry with backoff, or fail for good (with an outbox notice)';

-- Completes a batch of tasks in one transaction.  Each task is fenced on its
-- own: a stale one is reported as 'stale' and skipped, the others complete.
-- status is 'succeeded', 'canceled' (a cancel was requested meanwhile) or
-- 'stale' (not the current lease, or an unknown task).
CREATE FUNCTION trace.complete_tasks(
    task_ids     bigint[],
    attempts     int[],
    lease_tokens uuid[],
    results      jsonb[] DEFAULT NULL)
RETURNS TABLE (task_id bigint, status text)
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_complete_tasks';
COMMENT ON FUNCTION trace.complete_tasks(bigint[], int[], uuid[], jsonb[]) IS
    'Completes a batch of leased tasks, fencing each; returns (task_id, status) with status succeeded, canceled or stale';

-- Completes one task; raises TR001 when its lease is no longer held.
-- Returns 'succeeded', or 'canceled' when a cancel was requested meanwhile.
CREATE FUNCTION trace.complete_task(
    task_id     bigint,
    attempt     int,
    lease_token uuid,
    result      jsonb DEFAULT NULL)
RETURNS text
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_complete_task';
COMMENT ON FUNCTION trace.complete_task(bigint, int, uuid, jsonb) IS
    'Completes one leased task (succeeded, or canceled if a cancel was requested); TR001 when the lease is lost';

-- Reports a failed attempt.  Returns the task's new state: 'scheduled' (it
-- will be retried after a backoff), 'failed' (for good) or 'canceled'.
CREATE FUNCTION trace.fail_task(
    task_id     bigint,
    attempt     int,
    lease_token uuid,
    error       text,
    retryable   boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    t trace.task;
BEGIN
    PERFORM trace.require_arg(error IS NULL, 'error');
    PERFORM trace.require_arg(retryable IS NULL, 'retryable');
    SELECT * INTO t FROM trace.task
    WHERE task.task_id = fail_task.task_id AND task.attempt = fail_task.attempt
      AND task.lease_token = fail_task.lease_token AND task.state = 'running'
      AND task.lease_expires_at > now()
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM trace.raise_lease_error(task_id, attempt, lease_token);
    END IF;
    RETURN trace.end_attempt(t, 'failed', left(error, 10000), retryable);
END
$$;
COMMENT ON FUNCTION trace.fail_task(bigint, int, uuid, text, boolean) IS
    'Reports a failed attempt; returns scheduled (retry after backoff), failed (for good) or canceled';

-- Cancels a task: a task that is not running ends 'canceled' at once; a
-- running one is flagged, its worker sees 'canceled' at its next heartbeat or
-- fetch, and it ends 'canceled' when the worker gives it up or its lease
-- expires.  Returns the resulting state ('canceled', 'canceling', or the
-- final state of a task that had already ended).
CREATE FUNCTION trace.cancel_task(task_id bigint)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    t trace.task;
    done_state text;
BEGIN
    PERFORM trace.require_arg(task_id IS NULL, 'task_id');
    SELECT * INTO t FROM trace.task
    WHERE task.task_id = cancel_task.task_id AND task.org_id = trace.caller_org()
    FOR UPDATE;
    IF NOT FOUND THEN
        SELECT d.state INTO done_state FROM trace.task_done d
        WHERE d.task_id = cancel_task.task_id AND d.org_id = trace.caller_org();
        IF NOT FOUND THEN
            RAISE EXCEPTION 'task % does not exist', task_id USING ERRCODE = 'TR004';
        END IF;
        RETURN done_state;
    END IF;
    IF t.state = 'running' THEN
        UPDATE trace.task SET cancel_requested = true WHERE task.task_id = t.task_id;
        RETURN 'canceling';
    END IF;
    PERFORM trace.move_to_done(ARRAY[t.task_id], NULL, NULL, ARRAY['canceled'], NULL,
                               ARRAY[format('canceled by %s', session_user)]);
    RETURN 'canceled';
END
$$;
COMMENT ON FUNCTION trace.cancel_task(bigint) IS
    'Cancels a task: at once when not running, cooperatively (at its next heartbeat) when running';
