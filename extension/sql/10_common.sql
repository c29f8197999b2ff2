-- Helpers shared by the task, event and dispatcher functions.  None of them
-- is granted to a component role: they run inside the SECURITY DEFINER API.

-- The org the calling login role acts for (see trace.org_role).  The views
-- call it with the reader's privileges, hence SECURITY DEFINER.
CREATE FUNCTION trace.caller_org() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN coalesce((SELECT o.org_id FROM trace.org_role o WHERE o.role_name = session_user),
                    'default');
END
$$;
COMMENT ON FUNCTION trace.caller_org() IS
    'The org of the calling login role (session_user), ''default'' unless mapped in trace.org_role';

-- Raises TR003 when a JSON argument is larger than trace.max_payload_bytes.
CREATE FUNCTION trace.check_payload(payload jsonb, argument text) RETURNS void
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_check_payload';
COMMENT ON FUNCTION trace.check_payload(jsonb, text) IS
    'Raises SQLSTATE TR003 when a JSON argument exceeds trace.max_payload_bytes';

-- Raises TR003 when the rows of one write_rows call exceed trace.max_write_bytes.
CREATE FUNCTION trace.check_write_size(rows jsonb) RETURNS void
LANGUAGE C STABLE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_check_write_size';
COMMENT ON FUNCTION trace.check_write_size(jsonb) IS
    'Raises SQLSTATE TR003 when the rows of one write are larger than trace.max_write_bytes';

-- Raises a NULL-argument error naming the argument (SQLSTATE 22004).
CREATE FUNCTION trace.require_arg(is_null boolean, argument text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF is_null THEN
        RAISE EXCEPTION 'argument "%" must not be NULL', argument
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
END
$$;
COMMENT ON FUNCTION trace.require_arg(boolean, text) IS
    'Raises SQLSTATE 22004 naming the argument when it is NULL';

-- Sends the wake-up hint for a runtime.  NOTIFY is delivered at commit and
-- identical payloads in one transaction are folded, so a bulk operation
-- costs one notification per runtime, not one per task.  Tasks of the
-- dispatcher runtime run in the dispatcher itself, which is woken through
-- its latch after commit instead.
CREATE FUNCTION trace.wake_workers(runtime text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF runtime = 'dispatcher' THEN
        PERFORM trace.wake_dispatcher();
    ELSE
        PERFORM pg_notify('trace_wakeup', runtime);
    END IF;
END
$$;
COMMENT ON FUNCTION trace.wake_workers(text) IS
    'NOTIFY trace_wakeup with the runtime as payload (the dispatcher: its latch); a hint only, the task table is the truth';

-- Sets the dispatcher's latch when the calling transaction commits.
CREATE FUNCTION trace.wake_dispatcher() RETURNS void
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_wake_dispatcher';
COMMENT ON FUNCTION trace.wake_dispatcher() IS
    'Wakes the dispatcher when the calling transaction commits (nothing happens on rollback)';

-- Records a notice to be sent as NOTIFY on channel after the calling
-- transaction commits (the dispatcher relays the outbox): the one way
-- trace announces things that happened, never inside a transaction that
-- might still roll back, and never on the hot path's notify lock.
CREATE FUNCTION trace.notify_later(org text, channel text, payload jsonb) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO trace.outbox (org_id, kind, channel, payload) VALUES (org, 'notify', channel, payload)
$$;
COMMENT ON FUNCTION trace.notify_later(text, text, jsonb) IS
    'Queues a NOTIFY for after commit, through the outbox';

-- The delay before retry number `attempt`+1: exponential from the job's
-- backoff, capped at its max_backoff, with +-20% jitter so a burst of
-- failures does not come back as a burst.
CREATE FUNCTION trace.retry_delay(backoff interval, max_backoff interval, attempt int)
RETURNS interval
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT least(max_backoff,
                 backoff * power(2, least(greatest(attempt - 1, 0), 30)))
           * (0.8 + 0.4 * random())
$$;
COMMENT ON FUNCTION trace.retry_delay(interval, interval, int) IS
    'Exponential backoff for the given attempt, capped, with +-20% jitter';
