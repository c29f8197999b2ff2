-- The dispatcher's timed work.  The background worker calls each function in
-- a transaction of its own; each does a bounded batch and returns how much it
-- did, so the worker loops at once while there is more.  They are plain SQL
-- functions so an operator (or a test) can run a step by hand.

-- Ends every running attempt whose lease expired or whose timeout passed:
-- retried with backoff while attempts remain, failed for good after, and
-- canceled when a cancel was requested.
CREATE FUNCTION trace.expire_leases(max_tasks int DEFAULT 1000)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t trace.task;
    n int := 0;
BEGIN
    PERFORM trace.require_arg(max_tasks IS NULL, 'max_tasks');
    FOR t IN
        SELECT * FROM trace.task
        WHERE state = 'running' AND (lease_expires_at <= now() OR deadline_at <= now())
        ORDER BY task_id
        LIMIT max_tasks
        FOR UPDATE SKIP LOCKED
    LOOP
        IF t.deadline_at <= now() THEN
            PERFORM trace.end_attempt(t, 'timed_out',
                format('attempt %s timed out after %s', t.attempt, t.timeout), true);
        ELSE
            PERFORM trace.end_attempt(t, 'lease_expired',
                format('lease of attempt %s held by %s expired', t.attempt, t.worker_id), true);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.expire_leases(int) IS
    'Ends attempts whose lease expired or whose timeout passed (retry, fail or cancel); returns how many';

-- Makes scheduled tasks whose not_before has passed claimable, and wakes the
-- workers of their runtimes (one NOTIFY per runtime).  Tasks of a job with a
-- concurrency limit are admitted only while fewer than the limit are queued
-- or running.
CREATE FUNCTION trace.release_scheduled(max_tasks int DEFAULT 10000)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    limited record;
    released int := 0;
    n int;
    runtimes text[] := '{}';
    rts text[];
    rt text;
BEGIN
    PERFORM trace.require_arg(max_tasks IS NULL, 'max_tasks');
    FOR limited IN
        SELECT j.job_id, j.runtime, j.concurrency - (SELECT count(*) FROM trace.task a
                                                     WHERE a.job_id = j.job_id
                                                       AND a.state IN ('queued', 'running')) AS free
        FROM trace.job j WHERE j.concurrency IS NOT NULL AND j.state <> 'retired'
    LOOP
        CONTINUE WHEN limited.free <= 0;
        UPDATE trace.task t SET state = 'queued'
        WHERE t.task_id IN (SELECT s.task_id FROM trace.task s
                            WHERE s.job_id = limited.job_id AND s.state = 'scheduled'
                              AND s.not_before <= now()
                            ORDER BY s.not_before, s.task_id LIMIT limited.free
                            FOR UPDATE SKIP LOCKED);
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n > 0 THEN
            released := released + n;
            runtimes := runtimes || limited.runtime;
        END IF;
    END LOOP;
    WITH due AS (
        SELECT t.task_id FROM trace.task t
        WHERE t.state = 'scheduled' AND t.not_before <= now()
          AND NOT EXISTS (SELECT 1 FROM trace.job j
                          WHERE j.job_id = t.job_id AND j.concurrency IS NOT NULL)
        ORDER BY t.not_before
        LIMIT max_tasks
        FOR UPDATE SKIP LOCKED
    ), moved AS (
        UPDATE trace.task t SET state = 'queued'
        FROM due WHERE t.task_id = due.task_id
        RETURNING t.runtime
    )
    SELECT count(*), array_agg(DISTINCT runtime) INTO n, rts FROM moved;
    released := released + n;
    FOREACH rt IN ARRAY (SELECT coalesce(array_agg(DISTINCT x), '{}') FROM unnest(runtimes || coalesce(rts, '{}')) x) LOOP
        PERFORM trace.wake_workers(rt);
    END LOOP;
    RETURN released;
END
$$;
COMMENT ON FUNCTION trace.release_scheduled(int) IS
    'Queues scheduled tasks that are due (within job concurrency limits) and wakes their workers; returns how many';

-- Relays 'notify' outbox rows as NOTIFY, oldest first.  Deleting the rows and
-- queueing the notifications happen in one transaction: both or neither.
CREATE FUNCTION trace.relay_outbox(max_rows int DEFAULT 1000)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    PERFORM trace.require_arg(max_rows IS NULL, 'max_rows');
    FOR r IN
        WITH batch AS (
            DELETE FROM trace.outbox
            WHERE outbox_id IN (SELECT outbox_id FROM trace.outbox
                                WHERE kind = 'notify'
                                ORDER BY outbox_id LIMIT max_rows
                                FOR UPDATE SKIP LOCKED)
            RETURNING outbox_id, channel, payload)
        SELECT * FROM batch ORDER BY outbox_id
    LOOP
        PERFORM pg_notify(r.channel, r.payload::text);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.relay_outbox(int) IS
    'Relays notify rows of the outbox as NOTIFY after the fact; returns how many';

-- Keeps trace.task_done partitioned by day: makes the partitions of the next
-- days, drops those wholly older than the retention, and trims old attempt
-- rows and anything that landed in the default partition.  DDL waits at most
-- lock_timeout for its locks so it never queues readers or writers behind a
-- long transaction; what it could not do now it does on a later run.
CREATE FUNCTION trace.maintain_task_history(retention interval DEFAULT '7 days')
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '500ms'
AS $$
DECLARE
    day date;
    part record;
    made int := 0;
    dropped int := 0;
    trimmed bigint;
    horizon timestamptz := now() - retention;
BEGIN
    PERFORM trace.require_arg(retention IS NULL, 'retention');
    IF retention < '1 hour' THEN
        RAISE EXCEPTION 'argument "retention" must be at least 1 hour'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Today's partition only when nothing of today is in the default one yet
    -- (a range with rows in the default partition cannot be attached).
    FOR day IN SELECT generate_series(current_date, current_date + 2, '1 day')::date LOOP
        CONTINUE WHEN to_regclass(format('trace.task_done_%s', to_char(day, 'YYYYMMDD'))) IS NOT NULL;
        CONTINUE WHEN EXISTS (SELECT 1 FROM trace.task_done_default
                              WHERE finished_at >= day AND finished_at < day + 1);
        BEGIN
            EXECUTE format('CREATE TABLE trace.%I (LIKE trace.task_done INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           'task_done_' || to_char(day, 'YYYYMMDD'));
            EXECUTE format('ALTER TABLE trace.task_done ATTACH PARTITION trace.%I FOR VALUES FROM (%L) TO (%L)',
                           'task_done_' || to_char(day, 'YYYYMMDD'),
                           day::timestamptz, (day + 1)::timestamptz);
            made := made + 1;
        EXCEPTION WHEN lock_not_available THEN
            RAISE LOG 'trace: could not attach partition for %, will retry', day;
        END;
    END LOOP;
    FOR part IN
        SELECT c.oid::regclass AS rel, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'trace.task_done'::regclass
          AND c.relname ~ '^task_done_[0-9]{8}$'
          AND to_date(substr(c.relname, 11), 'YYYYMMDD') + 1 <= horizon::date
    LOOP
        BEGIN
            EXECUTE format('DROP TABLE %s', part.rel);
            dropped := dropped + 1;
        EXCEPTION WHEN lock_not_available THEN
            RAISE LOG 'trace: could not drop %, will retry', part.rel;
        END;
    END LOOP;
    WITH old AS (DELETE FROM trace.task_attempt WHERE ctid = ANY (ARRAY(
                     SELECT ctid FROM trace.task_attempt WHERE ended_at < horizon LIMIT 10000))
                 RETURNING 1)
    SELECT count(*) INTO trimmed FROM old;
    DELETE FROM trace.task_done_default WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM trace.task_done_default WHERE finished_at < horizon LIMIT 10000));
    RETURN jsonb_build_object('partitions_created', made, 'partitions_dropped', dropped,
                              'attempts_trimmed', trimmed);
END
$$;
COMMENT ON FUNCTION trace.maintain_task_history(interval) IS
    'Creates the next days'' task_done partitions and drops those past the retention';

-- Milliseconds until the earliest scheduled task or cron slot is due (NULL
-- when none), so the dispatcher can sleep exactly that long, not poll.
CREATE FUNCTION trace.next_due_ms()
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    -- (greatest() skips NULLs, so NULL must be kept apart: it means "sleep")
    SELECT CASE WHEN due IS NOT NULL
                THEN greatest(0, ceil(extract(epoch FROM due - now()) * 1000))::bigint END
    FROM (SELECT least((SELECT min(not_before) FROM trace.task WHERE state = 'scheduled'),
                       (SELECT min(next_slot) FROM trace.cron_state)) AS due) d
$$;
COMMENT ON FUNCTION trace.next_due_ms() IS
    'Milliseconds until the next scheduled task or cron slot is due, NULL when none';
