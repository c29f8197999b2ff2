-- Deploy: building a new DAG version's jobs.
--
-- New and rebuilt jobs get new job rows (state 'building') and new dataset
-- versions with their relations, producers before consumers; each new job
-- is given the history of its inputs as rebuild tasks.

-- Creates the job row of a new or rebuilt job for a DAG version (state
-- 'building'), binds its inputs (to the version being built when this DAG
-- version rebuilds the producer, else to the current one), and creates a
-- new version, with its relation, for each output.
CREATE FUNCTION trace.build_job(org text, dag text, version int, job jsonb) RETURNS trace.job
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    j trace.job;
    i jsonb;
    o jsonb;
    output_index int := 0;
    d trace.dataset;
    new_version int;
    relation text;
    kind text;
BEGIN
    INSERT INTO trace.job (org_id, dag, dag_version, name, state, operator, operator_version,
                           activation, runtime, config, trigger, materialize, execution_strategy,
                           spec, max_attempts)
    VALUES (org, dag, version, job->>'name', 'building', job->>'operator',
            (job->>'operator_version')::int, job->>'activation', job->>'runtime', job->'config',
            NULL, (job->>'materialize')::boolean, job->>'execution_strategy',
            trace.job_spec(job), (job->>'max_attempts')::int)
    RETURNING * INTO j;
    PERFORM trace.apply_execution(ARRAY[j.job_id], ARRAY[job]);
    SELECT * INTO j FROM trace.job WHERE job_id = j.job_id;

    FOR i IN SELECT * FROM jsonb_array_elements(job->'inputs') LOOP
        INSERT INTO trace.job_input (job_id, dataset_uuid, version)
        SELECT j.job_id, d2.dataset_uuid,
               coalesce((SELECT vd.version FROM trace.version_dataset vd
                         WHERE vd.org_id = org AND vd.dag = dag AND vd.dag_version = version
                           AND vd.dataset_uuid = d2.dataset_uuid),
                        d2.current_version)
        FROM trace.dataset d2 WHERE d2.dataset_id = i->>'dataset';
    END LOOP;

    FOR o IN SELECT * FROM jsonb_array_elements(job->'outputs') LOOP
        INSERT INTO trace.dataset AS ds (org_id, dataset_id, dag, job_name, storage)
        VALUES (org, o->>'dataset', dag, job->>'name', o->>'storage')
        ON CONFLICT (dataset_id) DO UPDATE SET job_name = excluded.job_name, storage = excluded.storage
        RETURNING * INTO d;
        SELECT coalesce(max(dv.version), 0) + 1 INTO new_version
        FROM trace.dataset_version dv WHERE dv.dataset_uuid = d.dataset_uuid;
        relation := trace.version_relation(d.dataset_num, new_version);
        BEGIN
            kind := trace.create_version_relation(j, relation, output_index);
        EXCEPTION WHEN syntax_error_or_access_rule_violation OR data_exception
                    OR undefined_function OR undefined_column OR undefined_table THEN
            RAISE EXCEPTION 'invalid DAG at line %, column %: the query of job "%" does not run: %',
                coalesce(job->>'query_line', job->>'line'), coalesce(job->>'query_col', job->>'col'),
                job->>'name', sqlerrm
                USING ERRCODE = 'TR010', DETAIL = format('At jobs.%s.config.query.', job->>'name'),
                      HINT = 'The query runs as role trace_transform, which can read datasets only through {{placeholders}}.';
        END;
        INSERT INTO trace.dataset_version (dataset_uuid, version, org_id, dag_version, job_id,
                                           state, kind, relation)
        VALUES (d.dataset_uuid, new_version, org, version, j.job_id, 'building', kind, relation);
        INSERT INTO trace.job_output (job_id, dataset_uuid, version, output_index)
        VALUES (j.job_id, d.dataset_uuid, new_version, output_index);
        output_index := output_index + 1;
    END LOOP;
    RETURN j;
END
$$;

-- Gives a new job the history of its inputs: one task per event already in
-- each bound input version, oldest first, all in one statement.
CREATE FUNCTION trace.backfill_job(j trace.job) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    payloads jsonb[];
    event_ids bigint[];
BEGIN
    SELECT array_agg(e.payload ORDER BY e.event_id), array_agg(e.event_id ORDER BY e.event_id)
    INTO payloads, event_ids
    FROM trace.job_input ji
    JOIN trace.dataset d ON d.dataset_uuid = ji.dataset_uuid
    JOIN trace.event e ON e.org_id = d.org_id AND e.dataset_id = d.dataset_id
                      AND e.dataset_version = ji.version
    WHERE ji.job_id = j.job_id;
    IF payloads IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM trace.insert_tasks(j, payloads, NULL, NULL, NULL, 'rebuild', event_ids);
    RETURN cardinality(payloads);
END
$$;

-- The jobs of a validated model, producers before consumers: by the
-- length of the longest chain of producers above each job, then by name
-- (a stable order).  One recursive query: a job's levels are found at
-- most once each (UNION), so it costs jobs x depth rows, never a path
-- count.  The model has no cycle (validate_dag refused it); a level
-- reaching the number of jobs would be one, and is an error.
CREATE FUNCTION trace.model_job_order(model jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    total int := jsonb_array_length(model->'jobs');
    ordered text[];
    deepest int;
BEGIN
    WITH RECURSIVE job AS (
        SELECT x->>'name' AS name, x FROM jsonb_array_elements(model->'jobs') x),
    edge AS (               -- producer -> consumer
        SELECT DISTINCT p.name AS producer, c.name AS consumer
        FROM job p CROSS JOIN LATERAL jsonb_array_elements(p.x->'outputs') po
        JOIN (job c CROSS JOIN LATERAL jsonb_array_elements(c.x->'inputs') ci)
          ON ci->>'dataset' = po->>'dataset'),
    level (name, n) AS (
        SELECT name, 0 FROM job
        UNION
        SELECT e.consumer, l.n + 1 FROM level l JOIN edge e ON e.producer = l.name
        WHERE l.n < total)
    SELECT array_agg(z.name ORDER BY z.n, z.name), max(z.n) INTO ordered, deepest
    FROM (SELECT l.name, max(l.n) AS n FROM level l GROUP BY l.name) z;
    IF deepest >= total THEN
        RAISE EXCEPTION 'trace: the jobs of this DAG depend on each other in a cycle'
            USING ERRCODE = 'TR010', HINT = 'validate_dag reports where the cycle is';
    END IF;
    RETURN coalesce(ordered, '{}');
END
$$;
COMMENT ON FUNCTION trace.model_job_order(jsonb) IS
    'The jobs of a validated DAG model, producers before consumers';

-- Applies a deploy plan for a new DAG version: new and rebuilt jobs get new
-- rows and dataset versions (producers before consumers), the others keep
-- their rows with execution-only changes applied; records the version's job
-- set and pointer set; starts the new sources and replays history to the
-- new jobs.  Returns the plan with each job's datasets (old -> new version).
CREATE FUNCTION trace.build_version(org text, dag text, version int, model jsonb, plan jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    steps jsonb := (SELECT jsonb_object_agg(s->>'job', s) FROM jsonb_array_elements(plan->'jobs') s);
    job jsonb;
    j trace.job;
BEGIN
    FOR job IN SELECT x FROM jsonb_array_elements(model->'jobs') x
               JOIN unnest(trace.model_job_order(model)) WITH ORDINALITY o(name, pos)
                 ON o.name = x->>'name'
               ORDER BY o.pos LOOP
        IF steps->(job->>'name')->>'action' IN ('added', 'rebuild') THEN
            j := trace.build_job(org, dag, version, job);
        ELSE
            SELECT * INTO j FROM trace.job x
            WHERE x.org_id = org AND x.dag = dag AND x.name = job->>'name' AND x.state = 'active';
            PERFORM trace.apply_execution(ARRAY[j.job_id], ARRAY[job]);
        END IF;
        INSERT INTO trace.version_job VALUES (org, dag, version, j.job_id);
        INSERT INTO trace.version_dataset
        SELECT org, dag, version, jo.dataset_uuid, jo.version
        FROM trace.job_output jo WHERE jo.job_id = j.job_id;
        steps := jsonb_set(steps, ARRAY[job->>'name', 'datasets'], (
            SELECT coalesce(jsonb_agg(jsonb_build_object('dataset', d.dataset_id,
                                                         'from', d.current_version,
                                                         'to', jo.version)
                                      ORDER BY d.dataset_id), '[]')
            FROM trace.job_output jo JOIN trace.dataset d USING (dataset_uuid)
            WHERE jo.job_id = j.job_id));
    END LOOP;

    -- datasets of dropped jobs stay readable until retention
    INSERT INTO trace.version_dataset
    SELECT org, dag, version, d.dataset_uuid, d.current_version
    FROM trace.dataset d
    WHERE d.org_id = org AND d.dag = dag AND d.current_version IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM trace.version_dataset vd
                      WHERE vd.org_id = org AND vd.dag = dag AND vd.dag_version = version
                        AND vd.dataset_uuid = d.dataset_uuid);

    -- new sources start; new reactive jobs get their inputs' history
    FOR j IN SELECT * FROM trace.job x
             WHERE x.org_id = org AND x.dag = dag AND x.dag_version = version
               AND x.state = 'building' LOOP
        IF j.activation = 'source' THEN
            PERFORM trace.start_source(j, 'rebuild');
        ELSIF j.trigger IS NULL THEN
            PERFORM trace.backfill_job(j);
        END IF;
    END LOOP;

    RETURN jsonb_build_object(
        'rebuild', plan->'rebuild',
        'jobs', (SELECT jsonb_agg(s.value ORDER BY s.key) FROM jsonb_each(steps) s));
END
$$;
COMMENT ON FUNCTION trace.build_version(text, text, int, jsonb, jsonb) IS
    'Applies a deploy plan: new job rows and dataset versions, version sets, sources and backfill';
