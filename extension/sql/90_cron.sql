-- Cron: jobs with a trigger run on a five-field schedule in an IANA time
-- zone (see cron.c for the DST rules).  The last slot fired is saved with
-- the task it made, in one transaction, so a slot never fires twice and a
-- restart never loses one; missed slots follow the job's catchup policy.

CREATE FUNCTION trace.cron_next(expr text, timezone text, after timestamptz)
RETURNS timestamptz
LANGUAGE C STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_cron_next';
COMMENT ON FUNCTION trace.cron_next(text, text, timestamptz) IS
    'The first fire time of a cron expression in a time zone strictly after a given instant';

-- The slots a schedule fires for at `now`, given the slot that is due:
-- catchup 'all' fires every slot up to now (at most 1000), 'last' only the
-- latest, 'none' only a slot that is on time (less than a minute late).
CREATE FUNCTION trace.cron_due_slots(trigger jsonb, due timestamptz, now timestamptz)
RETURNS TABLE (slot timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s timestamptz := due;
    slots timestamptz[] := '{}';
BEGIN
    WHILE s <= now AND cardinality(slots) < 1000 LOOP
        slots := slots || s;
        s := trace.cron_next(trigger->>'cron', trigger->>'timezone', s);
    END LOOP;
    CASE coalesce(trigger->>'catchup', 'last')
        WHEN 'all' THEN RETURN QUERY SELECT unnest(slots);
        WHEN 'last' THEN RETURN QUERY SELECT slots[cardinality(slots)] WHERE cardinality(slots) > 0;
        ELSE RETURN QUERY SELECT x FROM unnest(slots) x WHERE x > now - interval '1 minute';
    END CASE;
END
$$;
COMMENT ON FUNCTION trace.cron_due_slots(jsonb, timestamptz, timestamptz) IS
    'The slots a schedule fires at a given time under its catchup policy (testable with fixed clocks)';

-- The dispatcher's cron step: fires every due schedule once per slot under
-- its catchup policy, saving the slot with the task.  Returns tasks made.
CREATE FUNCTION trace.fire_cron(max_jobs int DEFAULT 1000) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    j trace.job;
    slots timestamptz[];
    n int := 0;
BEGIN
    PERFORM trace.require_arg(max_jobs IS NULL, 'max_jobs');
    FOR c IN SELECT * FROM trace.cron_state WHERE next_slot <= now()
             ORDER BY next_slot LIMIT max_jobs FOR UPDATE SKIP LOCKED LOOP
        SELECT * INTO j FROM trace.job WHERE job_id = c.job_id;
        IF j.state <> 'active' OR j.trigger IS NULL THEN
            DELETE FROM trace.cron_state WHERE job_id = c.job_id;
            CONTINUE;
        END IF;
        slots := ARRAY(SELECT s FROM trace.cron_due_slots(j.trigger, c.next_slot, now()) s);
        IF cardinality(slots) > 0 THEN
            PERFORM trace.insert_tasks(j, ARRAY(SELECT jsonb_build_object('slot', s) FROM unnest(slots) s),
                                       NULL, NULL, NULL, 'live');
            n := n + cardinality(slots);
        END IF;
        UPDATE trace.cron_state
        SET last_slot = coalesce(slots[cardinality(slots)], last_slot),
            next_slot = trace.cron_next(j.trigger->>'cron', j.trigger->>'timezone', now())
        WHERE job_id = c.job_id;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.fire_cron(int) IS
    'Fires due cron schedules (once per slot, by catchup policy); returns how many tasks were made';
