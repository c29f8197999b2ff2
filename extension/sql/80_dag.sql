-- DAGs: validation, the deploy plan, and deploy.
--
-- trace.parse_dag (C) loads and checks the YAML; the functions here add the
-- checks only the database can make, compute what a deploy changes, and
-- apply it.  A deploy never touches what readers see: new jobs and rebuilt
-- jobs write new dataset versions, and the dispatcher's cutover step swaps
-- the whole pointer set in when every one of them has caught up.

CREATE FUNCTION trace.parse_dag(yaml text) RETURNS jsonb
LANGUAGE C IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_parse_dag';
COMMENT ON FUNCTION trace.parse_dag(text) IS
    'Loads a DAG YAML: {"model": ..., "problems": [...]}; the model only when there is no error';

-- Problems only the database can see: inputs that no DAG produces, outputs
-- another DAG owns, dataset ids taken by another org.
CREATE FUNCTION trace.validate_model(model jsonb, org text)
RETURNS TABLE (severity text, path text, line int, col int, message text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH jobs AS (
        SELECT j FROM jsonb_array_elements(model->'jobs') j
    ), produced AS (
        SELECT o->>'dataset' AS dataset FROM jobs, jsonb_array_elements(j->'outputs') o
    )
    SELECT 'error', format('jobs.%s.inputs[%s]', j->>'name', i.ord - 1),
           (i.v->>'line')::int, (i.v->>'col')::int,
           format('input "%s" is produced by no job of this DAG and by no deployed DAG',
                  i.v->>'dataset')
    FROM jobs, jsonb_array_elements(j->'inputs') WITH ORDINALITY i(v, ord)
    WHERE NOT EXISTS (SELECT 1 FROM produced p WHERE p.dataset = i.v->>'dataset')
      AND NOT EXISTS (SELECT 1 FROM trace.dataset d
                      WHERE d.dataset_id = i.v->>'dataset' AND d.org_id = org
                        AND d.current_version IS NOT NULL)
    UNION ALL
    SELECT 'error', format('jobs.%s.outputs[%s]', j->>'name', o.ord - 1),
           (o.v->>'line')::int, (o.v->>'col')::int,
           CASE WHEN d.org_id <> org
                THEN format('dataset id "%s" is taken', d.dataset_id)
                ELSE format('dataset "%s" is produced by DAG "%s"; a dataset has one producing DAG',
                            d.dataset_id, d.dag) END
    FROM jobs, jsonb_array_elements(j->'outputs') WITH ORDINALITY o(v, ord)
    JOIN trace.dataset d ON d.dataset_id = o.v->>'dataset'
    WHERE d.org_id <> org OR d.dag <> model->>'dag'
    UNION ALL
    -- integrity_check reads chain tables: a blocks table must be an input
    SELECT 'error', format('jobs.%s.inputs', j->>'name'), (j->>'line')::int, (j->>'col')::int,
           format('job "%s" (integrity_check) needs a blocks table among its inputs: output 0 of a block_follower or range_ingest job',
                  j->>'name')
    FROM jobs
    WHERE j->>'operator' = 'integrity_check'
      AND NOT EXISTS (
          SELECT 1 FROM jsonb_array_elements(j->'inputs') i
          WHERE EXISTS (SELECT 1 FROM jobs p
                        WHERE p.j->>'operator' IN ('block_follower', 'range_ingest')
                          AND p.j->'outputs'->0->>'dataset' = i->>'dataset')
             OR EXISTS (SELECT 1 FROM trace.dataset d
                        JOIN trace.dataset_version dv
                          ON dv.dataset_uuid = d.dataset_uuid AND dv.version = d.current_version
                        JOIN pg_attribute a ON a.attrelid = to_regclass(dv.relation)
                                           AND a.attname = 'block_hash'
                        WHERE d.dataset_id = i->>'dataset' AND d.org_id = org))
$$;
COMMENT ON FUNCTION trace.validate_model(jsonb, text) IS
    'The DAG checks that need the database: inputs produced nowhere, outputs owned by another DAG';

-- Lists every problem of a DAG file, in file order.
CREATE FUNCTION trace.validate_dag(yaml text)
RETURNS TABLE (severity text, path text, line int, col int, message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parsed jsonb;
BEGIN
    PERFORM trace.require_arg(yaml IS NULL, 'yaml');
    parsed := trace.parse_dag(yaml);
    RETURN QUERY
    SELECT * FROM (
        SELECT p->>'severity', p->>'path', (p->>'line')::int, (p->>'col')::int, p->>'message'
        FROM jsonb_array_elements(parsed->'problems') p
        UNION ALL
        SELECT * FROM trace.validate_model(parsed->'model', trace.caller_org())
        WHERE parsed->'model' <> 'null'::jsonb
    ) all_problems(severity, path, line, col, message)
    ORDER BY 3, 4, 2;
END
$$;
COMMENT ON FUNCTION trace.validate_dag(text) IS
    'Every problem of a DAG file: severity, path (jobs.x.config.y), line, column and message';

-- What a job materializes: the properties whose change rebuilds it.
CREATE FUNCTION trace.job_spec(job jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'operator', job->'operator', 'operator_version', job->'operator_version',
        'runtime', job->'runtime', 'activation', job->'activation',
        'config', job->'config', 'materialize', job->'materialize',
        'execution_strategy', job->'execution_strategy',
        'inputs', (SELECT coalesce(jsonb_agg(i->'dataset' ORDER BY i->>'dataset'), '[]')
                   FROM jsonb_array_elements(job->'inputs') i),
        'outputs', (SELECT coalesce(jsonb_agg(jsonb_build_object('dataset', o->'dataset',
                                                                 'storage', o->'storage')
                                              ORDER BY o->>'dataset'), '[]')
                    FROM jsonb_array_elements(job->'outputs') o))
$$;
COMMENT ON FUNCTION trace.job_spec(jsonb) IS
    'The materialization-affecting properties of a job model (a change rebuilds the job)';

-- The execution-only properties of a job model, as stored on trace.job.
CREATE FUNCTION trace.job_execution(job jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'retries.max_attempts', job->'max_attempts', 'retries.backoff', job->'backoff_ms',
        'retries.max_backoff', job->'max_backoff_ms', 'lease', job->'lease_ms',
        'timeout', job->'timeout_ms', 'concurrency', job->'concurrency',
        'priority', job->'priority', 'trigger', job->'trigger')
$$;

-- The same, read back from a stored job row.
CREATE FUNCTION trace.job_row_execution(j trace.job) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
        'retries.max_attempts', j.max_attempts,
        'retries.backoff', (extract(epoch FROM j.backoff) * 1000)::bigint,
        'retries.max_backoff', (extract(epoch FROM j.max_backoff) * 1000)::bigint,
        'lease', (extract(epoch FROM j.lease) * 1000)::bigint,
        'timeout', (extract(epoch FROM j.timeout) * 1000)::bigint,
        'concurrency', j.concurrency, 'priority', j.priority, 'trigger', j.trigger)
$$;

-- The deploy plan: for every job of the new and the active version, what
-- the deploy does to it and why.  action is one of added, rebuild (the job
-- and everything downstream get new dataset versions), updated
-- (execution-only properties change in place), removed, unchanged.
CREATE FUNCTION trace.plan_deploy(org text, dag text, model jsonb, options jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rebuild_strategy boolean := coalesce((options->>'rebuild_execution_strategy')::boolean, true);
    steps jsonb := '{}';
    j jsonb;
    old trace.job;
    changed text[];
    k text;
    grew boolean := true;
BEGIN
    -- each new job against the active row of the same name
    FOR j IN SELECT * FROM jsonb_array_elements(model->'jobs') LOOP
        SELECT * INTO old FROM trace.job
        WHERE job.org_id = org AND job.dag = plan_deploy.dag AND job.name = j->>'name'
          AND job.state = 'active';
        IF NOT FOUND THEN
            steps := steps || jsonb_build_object(j->>'name',
                jsonb_build_object('action', 'added', 'reasons', jsonb_build_array('new job')));
            CONTINUE;
        END IF;
        changed := ARRAY(SELECT e.key FROM jsonb_each(trace.job_spec(j)) e
                         WHERE e.value IS DISTINCT FROM old.spec->e.key ORDER BY e.key);
        IF NOT rebuild_strategy THEN
            changed := array_remove(changed, 'execution_strategy'::text);
        END IF;
        IF cardinality(changed) > 0 THEN
            steps := steps || jsonb_build_object(j->>'name', jsonb_build_object(
                'action', 'rebuild',
                'reasons', (SELECT jsonb_agg(c || ' changed') FROM unnest(changed) c)));
            CONTINUE;
        END IF;
        changed := ARRAY(SELECT e.key FROM jsonb_each(trace.job_execution(j)) e
                         WHERE e.value IS DISTINCT FROM trace.job_row_execution(old)->e.key
                         ORDER BY e.key);
        IF trace.job_spec(j)->'execution_strategy' IS DISTINCT FROM old.spec->'execution_strategy' THEN
            changed := changed || 'execution_strategy'::text;
        END IF;
        steps := steps || jsonb_build_object(j->>'name', CASE
            WHEN cardinality(changed) > 0 THEN jsonb_build_object('action', 'updated',
                'reasons', (SELECT jsonb_agg(c || ' changed') FROM unnest(changed) c))
            ELSE jsonb_build_object('action', 'unchanged', 'reasons', '[]'::jsonb) END);
    END LOOP;

    -- everything downstream of a rebuilt or added job is rebuilt too
    WHILE grew LOOP
        grew := false;
        FOR j IN SELECT * FROM jsonb_array_elements(model->'jobs') LOOP
            CONTINUE WHEN steps->(j->>'name')->>'action' IN ('added', 'rebuild');
            SELECT p->>'name' INTO k
            FROM jsonb_array_elements(j->'inputs') i,
                 jsonb_array_elements(model->'jobs') p,
                 jsonb_array_elements(p->'outputs') o
            WHERE o->>'dataset' = i->>'dataset'
              AND steps->(p->>'name')->>'action' IN ('added', 'rebuild')
            LIMIT 1;
            IF k IS NOT NULL THEN
                steps := jsonb_set(steps, ARRAY[j->>'name'], jsonb_build_object(
                    'action', 'rebuild',
                    'reasons', jsonb_build_array(format('downstream of %s', k))));
                grew := true;
            END IF;
        END LOOP;
    END LOOP;

    -- jobs of the active version that the new one drops
    FOR old IN SELECT * FROM trace.job
               WHERE job.org_id = org AND job.dag = plan_deploy.dag AND job.state = 'active'
                 AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(model->'jobs') n
                                 WHERE n->>'name' = job.name) LOOP
        steps := steps || jsonb_build_object(old.name, jsonb_build_object(
            'action', 'removed', 'reasons', jsonb_build_array('not in the new version')));
    END LOOP;

    RETURN jsonb_build_object(
        'rebuild', EXISTS (SELECT 1 FROM jsonb_each(steps) s
                           WHERE s.value->>'action' IN ('added', 'rebuild')),
        'jobs', (SELECT coalesce(jsonb_agg(jsonb_build_object('job', s.key) || s.value
                                           ORDER BY s.key), '[]')
                 FROM jsonb_each(steps) s));
END
$$;
COMMENT ON FUNCTION trace.plan_deploy(text, text, jsonb, jsonb) IS
    'What a deploy does to each job (added, rebuild, updated, removed, unchanged) and why';

-- Writes job models' execution-only properties onto their job rows
-- (job_ids[i] gets jobs[i]), and onto their tasks that have not started:
-- one statement each for any number of jobs, and rows already so are left
-- alone (a rollback re-applies every job's settings, most unchanged).
CREATE FUNCTION trace.apply_execution(job_ids bigint[], jobs jsonb[]) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH m AS (
        SELECT u.job_id,
               (u.job->>'max_attempts')::int AS max_attempts,
               make_interval(secs => (u.job->>'backoff_ms')::numeric / 1000) AS backoff,
               make_interval(secs => (u.job->>'max_backoff_ms')::numeric / 1000) AS max_backoff,
               make_interval(secs => (u.job->>'lease_ms')::numeric / 1000) AS lease,
               make_interval(secs => (u.job->>'timeout_ms')::numeric / 1000) AS timeout,
               (u.job->>'concurrency')::int AS concurrency,
               (u.job->>'priority')::int AS priority,
               CASE WHEN u.job->'trigger' = 'null'::jsonb THEN NULL ELSE u.job->'trigger' END AS trigger,
               u.job->>'execution_strategy' AS execution_strategy,
               u.job->'execution_strategy' AS strategy_json
        FROM unnest(job_ids, jobs) AS u(job_id, job))
    UPDATE trace.job j
    SET max_attempts = m.max_attempts, backoff = m.backoff, max_backoff = m.max_backoff,
        lease = m.lease, timeout = m.timeout, concurrency = m.concurrency,
        priority = m.priority, trigger = m.trigger, execution_strategy = m.execution_strategy,
        spec = jsonb_set(j.spec, '{execution_strategy}', m.strategy_json)
    FROM m
    WHERE j.job_id = m.job_id
      AND (j.max_attempts, j.backoff, j.max_backoff, j.lease, j.timeout, j.concurrency,
           j.priority, j.trigger, j.execution_strategy, j.spec->'execution_strategy')
          IS DISTINCT FROM
          (m.max_attempts, m.backoff, m.max_backoff, m.lease, m.timeout, m.concurrency,
           m.priority, m.trigger, m.execution_strategy, m.strategy_json);
    -- (a source's run keeps its own, larger attempt budget: see start_source)
    UPDATE trace.task t
    SET priority = j.priority,
        max_attempts = CASE WHEN j.activation = 'source' THEN t.max_attempts
                            ELSE greatest(j.max_attempts, t.attempt) END,
        lease = j.lease, timeout = j.timeout
    FROM trace.job j
    WHERE j.job_id = ANY (job_ids) AND t.job_id = j.job_id
      AND t.state IN ('scheduled', 'queued', 'paused')
      AND (t.priority, t.max_attempts, t.lease, t.timeout) IS DISTINCT FROM
          (j.priority, CASE WHEN j.activation = 'source' THEN t.max_attempts
                            ELSE greatest(j.max_attempts, t.attempt) END, j.lease, j.timeout);
$$;

-- Deploys a DAG: stores a new immutable version and applies its plan.
-- Without anything to build it is active at once; otherwise its new and
-- rebuilt jobs start filling new dataset versions and the dispatcher cuts
-- over when they have caught up.  Deploying the YAML of the latest version
-- again changes nothing and returns that version.
CREATE FUNCTION trace.deploy_dag(yaml text, options jsonb DEFAULT '{}')
RETURNS TABLE (dag text, dag_version int, plan jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    org text := trace.caller_org();
    parsed jsonb;
    model jsonb;
    problem record;
    n_problems int;
    dag_name text;
    latest trace.dag_version;
    active_version int;
    new_version int;
    the_plan jsonb;
    opt text;
BEGIN
    PERFORM trace.require_arg(yaml IS NULL, 'yaml');
    PERFORM trace.require_arg(options IS NULL, 'options');
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'argument "options" must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR opt IN SELECT jsonb_object_keys(options) LOOP
        IF opt <> 'rebuild_execution_strategy' THEN
            RAISE EXCEPTION 'unknown deploy option "%"', opt
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The deploy options are: rebuild_execution_strategy.';
        END IF;
    END LOOP;
    IF options ? 'rebuild_execution_strategy'
       AND jsonb_typeof(options->'rebuild_execution_strategy') <> 'boolean' THEN
        RAISE EXCEPTION 'deploy option "rebuild_execution_strategy" must be true or false'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    parsed := trace.parse_dag(yaml);
    model := parsed->'model';
    SELECT count(*) INTO n_problems FROM trace.validate_dag(yaml) v WHERE v.severity = 'error';
    IF n_problems > 0 THEN
        SELECT * INTO problem FROM trace.validate_dag(yaml) v WHERE v.severity = 'error' LIMIT 1;
        RAISE EXCEPTION 'invalid DAG at line %, column %: %', problem.line, problem.col, problem.message
            USING ERRCODE = 'TR010',
                  DETAIL = format('At %s.%s', coalesce(nullif(problem.path, ''), 'the document'),
                                  CASE WHEN n_problems > 1
                                       THEN format(' %s more problem(s).', n_problems - 1) ELSE '' END),
                  HINT = 'trace.validate_dag(yaml) lists every problem.';
    END IF;
    dag_name := model->>'dag';

    -- one deploy of a DAG at a time
    PERFORM pg_advisory_xact_lock(hashtextextended('trace.deploy:' || org || ':' || dag_name, 0));
    INSERT INTO trace.dag (org_id, dag) VALUES (org, dag_name) ON CONFLICT DO NOTHING;
    SELECT d.active_version INTO active_version FROM trace.dag d
    WHERE d.org_id = org AND d.dag = dag_name FOR UPDATE;

    SELECT * INTO latest FROM trace.dag_version v
    WHERE v.org_id = org AND v.dag = dag_name AND v.state IN ('active', 'building')
    ORDER BY v.version DESC LIMIT 1;
    IF FOUND AND latest.yaml = yaml AND latest.options = options THEN
        RETURN QUERY SELECT dag_name, latest.version, jsonb_build_object('noop', true);
        RETURN;
    END IF;
    -- a deploy while a rebuild runs supersedes that rebuild
    IF FOUND AND latest.state = 'building' THEN
        PERFORM trace.discard_version(org, dag_name, latest.version);
    END IF;

    SELECT coalesce(max(v.version), 0) + 1 INTO new_version FROM trace.dag_version v
    WHERE v.org_id = org AND v.dag = dag_name;
    the_plan := trace.plan_deploy(org, dag_name, model, options);
    INSERT INTO trace.dag_version (org_id, dag, version, state, yaml, model, plan, options)
    VALUES (org, dag_name, new_version, 'building', yaml, model, the_plan, options);
    the_plan := trace.build_version(org, dag_name, new_version, model, the_plan);
    UPDATE trace.dag_version v SET plan = the_plan
    WHERE v.org_id = org AND v.dag = dag_name AND v.version = new_version;

    -- nothing to build (or nothing live yet): active at once
    IF NOT (the_plan->>'rebuild')::boolean OR active_version IS NULL THEN
        PERFORM trace.apply_version(org, dag_name, new_version);
    END IF;
    RETURN QUERY SELECT dag_name, new_version, the_plan;
END
$$;
COMMENT ON FUNCTION trace.deploy_dag(text, jsonb) IS
    'Deploys a DAG YAML as a new version; returns the DAG, the version and the plan (TR010 on an invalid DAG)';

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
