-- Deploy: the diff between a new DAG version and the active one, and
-- applying it.
--
-- A job's properties are materialization-affecting (job_spec: a change
-- rebuilds the job and everything downstream into new dataset versions) or
-- execution-only (job_execution: applied in place at once).  plan_deploy
-- says per job what the deploy does and why; deploy_dag stores the new
-- immutable version and applies the plan.  A deploy never touches what
-- readers see: the cutover (84_cutover.sql) swaps the pointer set in when
-- every rebuilt version has caught up.

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
