-- Operating a DAG's jobs: pause, resume, trigger by hand.

-- The running rows of a DAG job (the active one, and a building one during
-- a rebuild); TR005 when there is none.
CREATE FUNCTION trace.dag_job_ids(dag text, job text) RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids bigint[];
BEGIN
    PERFORM trace.require_arg(dag IS NULL, 'dag');
    PERFORM trace.require_arg(job IS NULL, 'job');
    SELECT array_agg(j.job_id ORDER BY j.job_id) INTO ids FROM trace.job j
    WHERE j.org_id = trace.caller_org() AND j.dag = dag_job_ids.dag AND j.name = dag_job_ids.job
      AND j.state <> 'retired';
    IF ids IS NULL THEN
        RAISE EXCEPTION 'DAG "%" has no job "%"', dag, job
            USING ERRCODE = 'TR005', HINT = 'See trace.jobs for the jobs of each DAG.';
    END IF;
    RETURN ids;
END
$$;

-- Pauses a job: its tasks that have not started wait, new ones accumulate
-- as paused; running ones finish.
CREATE FUNCTION trace.pause_job(dag text, job text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids bigint[] := trace.dag_job_ids(dag, job);
    n int;
BEGIN
    UPDATE trace.job SET paused = true WHERE job_id = ANY (ids);
    UPDATE trace.task SET state = 'paused'
    WHERE job_id = ANY (ids) AND state IN ('queued', 'scheduled');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.pause_job(text, text) IS
    'Pauses a DAG job: its waiting tasks hold and new ones accumulate; returns how many tasks were held';

-- Resumes a paused job: its held tasks become claimable (or scheduled when
-- their time has not come), with a wake-up.
CREATE FUNCTION trace.resume_job(dag text, job text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ids bigint[] := trace.dag_job_ids(dag, job);
    rt text;
    n int;
BEGIN
    UPDATE trace.job SET paused = false WHERE job_id = ANY (ids);
    UPDATE trace.task SET state = CASE WHEN not_before > now() THEN 'scheduled' ELSE 'queued' END
    WHERE job_id = ANY (ids) AND state = 'paused';
    GET DIAGNOSTICS n = ROW_COUNT;
    FOR rt IN SELECT DISTINCT runtime FROM trace.job WHERE job_id = ANY (ids) LOOP
        PERFORM trace.wake_workers(rt);
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.resume_job(text, text) IS
    'Resumes a paused DAG job; returns how many held tasks were released';

-- Runs a DAG job once by hand with the given payload; returns the task id.
CREATE FUNCTION trace.trigger_job(dag text, job text, payload jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j trace.job;
BEGIN
    PERFORM trace.require_arg(payload IS NULL, 'payload');
    PERFORM trace.check_payload(payload, 'payload');
    SELECT * INTO j FROM trace.job
    WHERE job_id = ANY (trace.dag_job_ids(trigger_job.dag, trigger_job.job)) AND state = 'active';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job "%" of DAG "%" is not active yet', job, dag
            USING ERRCODE = 'TR005', HINT = 'A job being built runs when its version is cut over.';
    END IF;
    RETURN (SELECT t FROM trace.insert_tasks(j, ARRAY[payload], NULL, NULL, NULL, 'live') t);
END
$$;
COMMENT ON FUNCTION trace.trigger_job(text, text, jsonb) IS
    'Runs an active DAG job once with a payload; returns the task id';
