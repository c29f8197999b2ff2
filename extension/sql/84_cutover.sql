-- Cutover: making a building DAG version current.
--
-- A building version has caught up when every new job has run every task it
-- was given, none failed for good, and every new source reached the cursor
-- of the source it replaces (version_blocker says what it still waits for).
-- The dispatcher's cutover step (cutover_ready) then applies the version in
-- one transaction: the whole pointer set of the DAG and its active version
-- move together (apply_version).  Deploy, cutover and rollback of one DAG
-- serialize on a per-DAG lock (lock_dag).
--
-- trace.apply_version is the only thing that moves pointers, in the caller's
-- transaction; cutover and rollback are both that call.  They wait at most
-- trace.cutover_lock_timeout for readers' locks: a cutover that cannot get
-- them gives up and is retried on the dispatcher's next pass, so it never
-- makes new readers queue behind it for longer than that.

-- Cancels every unfinished task of the given jobs: waiting ones at once,
-- running ones cooperatively.  Returns how many were touched.
CREATE FUNCTION trace.cancel_job_tasks(job_ids bigint[], reason text) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    waiting bigint[];
    running int;
BEGIN
    SELECT array_agg(task_id) INTO waiting FROM trace.task
    WHERE job_id = ANY (job_ids) AND state <> 'running';
    IF waiting IS NOT NULL THEN
        PERFORM trace.move_to_done(waiting, NULL, NULL,
                                   array_fill('canceled'::text, ARRAY[cardinality(waiting)]),
                                   NULL, array_fill(reason, ARRAY[cardinality(waiting)]));
    END IF;
    UPDATE trace.task SET cancel_requested = true
    WHERE job_id = ANY (job_ids) AND state = 'running' AND NOT cancel_requested;
    GET DIAGNOSTICS running = ROW_COUNT;
    RETURN coalesce(cardinality(waiting), 0) + running;
END
$$;

-- Starts the durable run of a source job when it has none: one long-lived
-- task whose id is the producer id of everything the source emits; a
-- restart of the source is a retry of this task.
CREATE FUNCTION trace.start_source(j trace.job, mode text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM trace.task t WHERE t.job_id = j.job_id) THEN
        PERFORM trace.insert_tasks(j, ARRAY[jsonb_build_object('source_run', true)],
                                   NULL, NULL, 1000, mode);
    END IF;
END
$$;

-- Makes a DAG version's pointer set and job set current, in one
-- transaction: each dataset of the DAG points at the version the set names
-- (or at none), the set's jobs run and every other job of the DAG is
-- retired with its tasks canceled.  Cutover and rollback both call this.
CREATE FUNCTION trace.apply_version(org text, dag text, version int) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    ids text[];
    rels text[];
    retired bigint[];
    j trace.job;
BEGIN
    -- the pointers, set-based: the versions leaving retire, the ones coming
    -- become current, the datasets point at them
    WITH change AS (
        SELECT d.dataset_uuid, d.dataset_id, d.current_version, vd.version AS target, dv.relation
        FROM trace.dataset d
        LEFT JOIN trace.version_dataset vd
               ON vd.dataset_uuid = d.dataset_uuid AND vd.org_id = org AND vd.dag = dag
              AND vd.dag_version = version
        LEFT JOIN trace.dataset_version dv
               ON dv.dataset_uuid = d.dataset_uuid AND dv.version = vd.version
        WHERE d.org_id = org AND d.dag = dag
          AND vd.version IS DISTINCT FROM d.current_version),
    leaving AS (
        UPDATE trace.dataset_version v SET state = 'retired', current_until = now()
        FROM change c WHERE v.dataset_uuid = c.dataset_uuid AND v.version = c.current_version),
    coming AS (
        UPDATE trace.dataset_version v
        SET state = 'current', current_since = now(), current_until = NULL
        FROM change c WHERE v.dataset_uuid = c.dataset_uuid AND v.version = c.target),
    pointed AS (
        UPDATE trace.dataset d SET current_version = c.target
        FROM change c WHERE d.dataset_uuid = c.dataset_uuid)
    SELECT array_agg(c.dataset_id ORDER BY c.dataset_id),
           array_agg(c.relation ORDER BY c.dataset_id)
    INTO ids, rels
    FROM change c;
    -- the stable names follow (a dataset the version lacks loses its view)
    FOR i IN 1 .. coalesce(cardinality(ids), 0) LOOP
        IF rels[i] IS NULL THEN
            EXECUTE format('DROP VIEW IF EXISTS trace_data.%I', ids[i]);
        ELSE
            PERFORM trace.point_view(ids[i], rels[i]);
        END IF;
    END LOOP;

    -- the set's jobs run live from now on
    WITH activated AS (
        UPDATE trace.job SET state = 'active'
        WHERE job_id IN (SELECT vj.job_id FROM trace.version_job vj
                         WHERE vj.org_id = org AND vj.dag = dag AND vj.dag_version = version)
          AND state <> 'active'
        RETURNING job_id)
    UPDATE trace.task SET mode = 'live' WHERE task.job_id IN (SELECT job_id FROM activated);
    WITH gone AS (
        UPDATE trace.job SET state = 'retired'
        WHERE job.org_id = org AND job.dag = dag AND job.state <> 'retired'
          AND job_id NOT IN (SELECT vj.job_id FROM trace.version_job vj
                             WHERE vj.org_id = org AND vj.dag = dag AND vj.dag_version = version)
        RETURNING job_id)
    SELECT array_agg(job_id) INTO retired FROM gone;
    IF retired IS NOT NULL THEN
        PERFORM trace.cancel_job_tasks(retired, format('retired by version %s of DAG %s', version, dag));
        DELETE FROM trace.cron_state WHERE job_id = ANY (retired);
    END IF;

    -- the version's execution-only settings (a rollback restores them too)
    PERFORM trace.apply_execution(array_agg(x.job_id), array_agg(m.job))
    FROM trace.job x
    JOIN trace.dag_version v ON v.org_id = org AND v.dag = dag AND v.version = version
    CROSS JOIN LATERAL jsonb_array_elements(v.model->'jobs') m(job)
    WHERE x.org_id = org AND x.dag = dag AND x.state = 'active' AND m.job->>'name' = x.name;

    -- active sources run; active schedules are armed
    FOR j IN SELECT * FROM trace.job
             WHERE job.org_id = org AND job.dag = dag AND job.state = 'active'
               AND job.activation = 'source' LOOP
        PERFORM trace.start_source(j, 'live');
    END LOOP;
    INSERT INTO trace.cron_state (job_id, next_slot)
    SELECT job.job_id, trace.cron_next(job.trigger->>'cron', job.trigger->>'timezone', now())
    FROM trace.job
    WHERE job.org_id = org AND job.dag = dag AND job.state = 'active' AND job.trigger IS NOT NULL
    ON CONFLICT (job_id) DO NOTHING;

    -- a first activation remembers the version it replaced: a rollback's target
    UPDATE trace.dag_version v
    SET replaced_version = (SELECT d.active_version FROM trace.dag d WHERE d.org_id = org AND d.dag = dag)
    WHERE v.org_id = org AND v.dag = dag AND v.version = version AND v.activated_at IS NULL;
    UPDATE trace.dag_version v SET state = 'superseded'
    WHERE v.org_id = org AND v.dag = dag AND v.state = 'active' AND v.version <> version;
    UPDATE trace.dag_version v SET state = 'active', activated_at = coalesce(v.activated_at, now())
    WHERE v.org_id = org AND v.dag = dag AND v.version = version;
    UPDATE trace.dag d SET active_version = version WHERE d.org_id = org AND d.dag = dag;
END
$$;
COMMENT ON FUNCTION trace.apply_version(text, text, int) IS
    'Makes a DAG version''s pointer set and job set current in the caller''s transaction (cutover and rollback)';

-- Why a building version cannot cut over yet, or NULL when it has caught
-- up: every new job has run every task it was given (history replayed and
-- events since), none failed for good, and every new source has reached
-- the cursor of the source it replaces.
CREATE FUNCTION trace.version_blocker(org text, dag text, version int) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    why text;
BEGIN
    SELECT format('task %s of job %s failed: %s', d.task_id, j.name, d.error) INTO why
    FROM trace.job j JOIN trace.task_done d ON d.job_id = j.job_id
    WHERE j.org_id = org AND j.dag = dag AND j.dag_version = version AND j.state = 'building'
      AND d.state = 'failed'
    LIMIT 1;
    IF why IS NOT NULL THEN
        RETURN why;
    END IF;
    SELECT format('job %s has %s task(s) to run', j.name, count(*)) INTO why
    FROM trace.job j JOIN trace.task t ON t.job_id = j.job_id
    WHERE j.org_id = org AND j.dag = dag AND j.dag_version = version AND j.state = 'building'
      AND j.activation <> 'source'
    GROUP BY j.name
    LIMIT 1;
    IF why IS NOT NULL THEN
        RETURN why;
    END IF;
    SELECT format('source %s is at cursor %s, behind %s', j.name, coalesce(mine.c::text, 'none'), live.c)
    INTO why
    FROM trace.job j
    JOIN trace.job a ON a.org_id = j.org_id AND a.dag = j.dag AND a.name = j.name AND a.state = 'active'
    CROSS JOIN LATERAL (SELECT trace.source_cursor(j.job_id) AS c) mine
    CROSS JOIN LATERAL (SELECT trace.source_cursor(a.job_id) AS c) live
    WHERE j.org_id = org AND j.dag = dag AND j.dag_version = version AND j.state = 'building'
      AND j.activation = 'source' AND live.c IS NOT NULL AND (mine.c IS NULL OR mine.c < live.c)
    LIMIT 1;
    RETURN why;
END
$$;
COMMENT ON FUNCTION trace.version_blocker(text, text, int) IS
    'Why a building DAG version has not caught up yet; NULL when it may cut over';

-- How far a source has emitted: the highest block number among its event
-- keys ("<n>" or "<n>:<hash>"; retractions left out), NULL before any.
CREATE FUNCTION trace.source_cursor(job_id bigint) RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT max(split_part(e.partition_key, ':', 1)::numeric)
    FROM trace.task_ids_of(source_cursor.job_id) s
    JOIN trace.event e ON e.producer_task_id = s.task_id
    WHERE e.partition_key ~ '^[0-9]+(:[0-9a-fA-Fx]+)?$'
$$;

-- Every task id of a job, active or finished.
CREATE FUNCTION trace.task_ids_of(job_id bigint) RETURNS TABLE (task_id bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.task_id FROM trace.task t WHERE t.job_id = task_ids_of.job_id
    UNION ALL
    SELECT d.task_id FROM trace.task_done d WHERE d.job_id = task_ids_of.job_id
$$;

-- Abandons a building version: its new jobs retire (tasks canceled), its
-- new dataset versions are discarded and never become current.
CREATE FUNCTION trace.discard_version(org text, dag text, version int) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    building bigint[];
BEGIN
    WITH gone AS (
        UPDATE trace.job SET state = 'retired'
        WHERE job.org_id = org AND job.dag = dag AND job.dag_version = version
          AND job.state = 'building'
        RETURNING job_id)
    SELECT array_agg(job_id) INTO building FROM gone;
    IF building IS NOT NULL THEN
        PERFORM trace.cancel_job_tasks(building, format('version %s of DAG %s was discarded', version, dag));
    END IF;
    UPDATE trace.dataset_version dv SET state = 'discarded'
    WHERE dv.org_id = org AND dv.dag_version = version AND dv.state = 'building'
      AND dv.dataset_uuid IN (SELECT d.dataset_uuid FROM trace.dataset d
                              WHERE d.org_id = org AND d.dag = dag);
    UPDATE trace.dag_version v SET state = 'rolled_back'
    WHERE v.org_id = org AND v.dag = dag AND v.version = version;
END
$$;

-- Takes the per-DAG lock that serializes deploy, cutover and rollback.
-- (The caller bounds its own wait for readers' locks: a GUC set here would
-- be undone when this function returns.)
CREATE FUNCTION trace.lock_dag(org text, dag text, wait boolean) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key bigint := hashtextextended('trace.deploy:' || org || ':' || dag, 0);
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(key);
        RETURN true;
    END IF;
    RETURN pg_try_advisory_xact_lock(key);
END
$$;

-- The dispatcher's cutover step: every building version that has caught
-- up is made current.  A cutover that cannot get its locks in time is left
-- for the next pass.  Returns how many versions were cut over.
CREATE FUNCTION trace.cutover_ready(max_versions int DEFAULT 100) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
    n int := 0;
BEGIN
    FOR v IN SELECT org_id, dag, version FROM trace.dag_version
             WHERE state = 'building' ORDER BY created_at LIMIT max_versions LOOP
        CONTINUE WHEN trace.version_blocker(v.org_id, v.dag, v.version) IS NOT NULL;
        BEGIN
            CONTINUE WHEN NOT trace.lock_dag(v.org_id, v.dag, false);
            -- wait for readers' locks at most this long (until this function returns)
            PERFORM set_config('lock_timeout', current_setting('trace.cutover_lock_timeout'), true);
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM trace.dag_version dv
                                      WHERE dv.org_id = v.org_id AND dv.dag = v.dag
                                        AND dv.version = v.version AND dv.state = 'building');
            PERFORM trace.apply_version(v.org_id, v.dag, v.version);
            RAISE LOG 'trace: cut over DAG % to version %', v.dag, v.version;
            n := n + 1;
        EXCEPTION WHEN lock_not_available THEN
            RAISE LOG 'trace: cutover of DAG % version % waits for readers; will retry', v.dag, v.version;
        END;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.cutover_ready(int) IS
    'Cuts over every building DAG version that has caught up; returns how many';
