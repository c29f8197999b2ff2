-- Jobs and task creation.  Every task, whatever makes it (a manual trigger,
-- an event routed to a consumer, a cron fire, a rebuild), goes through
-- trace.insert_tasks, so state, wake-ups and defaults are decided in one place.

-- Makes a stand-alone job (DAG deploys register their jobs themselves).
CREATE FUNCTION trace.create_job(
    name         text,
    operator     text,
    runtime      text DEFAULT 'ecs_platform',
    config       jsonb DEFAULT '{}',
    max_attempts int DEFAULT 5,
    backoff      interval DEFAULT '2 seconds',
    max_backoff  interval DEFAULT '5 minutes',
    lease        interval DEFAULT '30 seconds',
    timeout      interval DEFAULT NULL,
    priority     int DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    new_id bigint;
BEGIN
    PERFORM trace.require_arg(name IS NULL, 'name');
    PERFORM trace.require_arg(operator IS NULL, 'operator');
    PERFORM trace.require_arg(runtime IS NULL, 'runtime');
    IF name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid job name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A job name is 1 to 63 characters of a-z, 0-9 and _, not starting with a digit.';
    END IF;
    IF runtime = 'ecs_udf' THEN
        RAISE EXCEPTION 'runtime "ecs_udf" is not supported yet'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Run untrusted code with runtime "lambda".';
    ELSIF runtime NOT IN ('dispatcher', 'ecs_platform', 'lambda') THEN
        RAISE EXCEPTION 'unknown runtime "%"', runtime
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Runtimes are dispatcher, ecs_platform and lambda.';
    END IF;
    IF max_attempts IS NULL OR max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'argument "max_attempts" must be between 1 and 1000, not %',
            coalesce(max_attempts::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lease IS NULL OR lease <= '0' OR lease > '1 day' THEN
        RAISE EXCEPTION 'argument "lease" must be more than 0 and at most 1 day'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF backoff IS NULL OR max_backoff IS NULL OR backoff < '0' OR max_backoff < backoff THEN
        RAISE EXCEPTION 'arguments "backoff" and "max_backoff" must satisfy 0 <= backoff <= max_backoff'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF timeout IS NOT NULL AND timeout <= '0' THEN
        RAISE EXCEPTION 'argument "timeout" must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM trace.check_payload(config, 'config');

    INSERT INTO trace.job (org_id, name, operator, runtime, config, max_attempts,
                           backoff, max_backoff, lease, timeout, priority)
    VALUES (trace.caller_org(), name, operator, runtime, coalesce(config, '{}'),
            max_attempts, backoff, max_backoff, lease, timeout, coalesce(priority, 0))
    RETURNING job_id INTO new_id;
    RETURN new_id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'job "%" already exists', name
        USING ERRCODE = 'duplicate_object';
END
$$;
COMMENT ON FUNCTION trace.create_job(text, text, text, jsonb, int, interval, interval, interval, interval, int) IS
    'Creates a stand-alone job (outside any DAG) and returns its job_id';

-- Inserts one task per payload for a job: queued (with a wake-up) when due,
-- scheduled when not_before is in the future or the job has a concurrency
-- limit (the dispatcher admits those), paused when the job is paused.
-- The caller has validated its arguments; event_ids, when given, pairs each
-- payload with the event that caused it.
CREATE FUNCTION trace.insert_tasks(
    job          trace.job,
    payloads     jsonb[],
    priority     int,
    not_before   timestamptz,
    max_attempts int,
    mode         text,
    event_ids    bigint[] DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    due   timestamptz := coalesce(not_before, now());
    state text := CASE WHEN job.paused THEN 'paused'
                       WHEN due > now() OR job.concurrency IS NOT NULL THEN 'scheduled'
                       ELSE 'queued' END;
BEGIN
    RETURN QUERY
    INSERT INTO trace.task (org_id, job_id, operator, runtime, state, mode, priority,
                            not_before, max_attempts, lease, timeout, payload, event_id)
    SELECT job.org_id, job.job_id, job.operator, job.runtime, state, mode,
           coalesce(priority, job.priority), due,
           coalesce(max_attempts, job.max_attempts), job.lease, job.timeout,
           p.payload, p.event_id
    FROM unnest(payloads, event_ids) AS p(payload, event_id)
    RETURNING task_id;
    IF state = 'queued' THEN
        PERFORM trace.wake_workers(job.runtime);
    ELSIF state = 'scheduled' THEN
        PERFORM trace.wake_dispatcher();
    END IF;
END
$$;
COMMENT ON FUNCTION trace.insert_tasks(trace.job, jsonb[], int, timestamptz, int, text, bigint[]) IS
    'The one path that creates tasks: decides their state and sends the wake-up';

-- Manual trigger of many tasks of one job, in one transaction, one wake-up.
CREATE FUNCTION trace.enqueue_tasks(
    job_id       bigint,
    payloads     jsonb[],
    priority     int DEFAULT NULL,
    not_before   timestamptz DEFAULT NULL,
    max_attempts int DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    j trace.job;
    p jsonb;
BEGIN
    PERFORM trace.require_arg(job_id IS NULL, 'job_id');
    PERFORM trace.require_arg(payloads IS NULL, 'payloads');
    IF cardinality(payloads) > 100000 THEN
        RAISE EXCEPTION 'at most 100000 tasks per call, got %', cardinality(payloads)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF max_attempts IS NOT NULL AND max_attempts NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'argument "max_attempts" must be between 1 and 1000, not %', max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOREACH p IN ARRAY payloads LOOP
        PERFORM trace.require_arg(p IS NULL, 'payload');
        PERFORM trace.check_payload(p, 'payload');
    END LOOP;
    SELECT * INTO j FROM trace.job
    WHERE job.job_id = enqueue_tasks.job_id AND job.org_id = trace.caller_org();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % does not exist', job_id
            USING ERRCODE = 'TR005', HINT = 'See trace.jobs for the jobs of your org.';
    END IF;
    RETURN QUERY
    SELECT * FROM trace.insert_tasks(j, payloads, priority, not_before, max_attempts, 'live');
END
$$;
COMMENT ON FUNCTION trace.enqueue_tasks(bigint, jsonb[], int, timestamptz, int) IS
    'Enqueues one task per payload for a job in one transaction with one wake-up; returns the task ids';

-- Manual trigger of one task.
CREATE FUNCTION trace.enqueue_task(
    job_id       bigint,
    payload      jsonb DEFAULT '{}',
    priority     int DEFAULT NULL,
    not_before   timestamptz DEFAULT NULL,
    max_attempts int DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT trace.enqueue_tasks(job_id, ARRAY[payload], priority, not_before, max_attempts)
$$;
COMMENT ON FUNCTION trace.enqueue_task(bigint, jsonb, int, timestamptz, int) IS
    'Enqueues one task for a job and returns its task_id';
