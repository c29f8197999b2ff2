-- Versions: plans for each kind of change, rebuild into new versions while
-- readers keep the old ones, cutover, rollback after cutover and during a
-- rebuild, the execution_strategy opt-out, history and retention.
\set VERBOSITY terse

-- v1: a source, a materialized sql job, a virtual one downstream.
SELECT dag_version FROM trace.deploy_dag($yaml$
dag: ver
jobs:
  src: {operator: noop, activation: source, priority: 100, outputs: [ver.raw]}
  pick:
    operator: sql
    inputs: [ver.raw]
    config:
      query: >
        SELECT (r."row"->>'n')::int AS n FROM {{ver.raw}} r
        WHERE (r."row"->>'n')::int % 2 = 0
    outputs: [ver.picked]
  shout:
    operator: sql
    materialize: false
    inputs: [ver.picked]
    config: {query: "SELECT n * 100 AS n100 FROM {{ver.picked}}"}
    outputs: [ver.shouted]
  other: {operator: noop, inputs: [ver.raw], outputs: [ver.other]}
$yaml$);
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform'], 1, '1 hour') \gset s_
SELECT count(*) FROM (
    SELECT trace.write_rows(:s_task_id, :s_attempt, :'s_lease_token', 'ver.raw', n::text, jsonb_build_array(jsonb_build_object('n', n))),
           trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'ver.raw', n::text, jsonb_build_object('n', n))
    FROM generate_series(1, 6) n) s;
SELECT trace.run_dispatcher_tasks(1000) > 0 AS ran;
SELECT trace.run_dispatcher_tasks(1000) > 0 AS ran;
SELECT array_agg(n ORDER BY n) AS v1_picked FROM trace_data."ver.picked";

-- Plans for each kind of change (validated, then deployed one by one).
CREATE TEMP TABLE v1_yaml AS SELECT yaml FROM trace.dag_version WHERE dag = 'ver' AND version = 1;
CREATE FUNCTION pg_temp.plan_of(yaml text, options jsonb DEFAULT '{}')
RETURNS TABLE (job text, action text, reasons jsonb, datasets jsonb) LANGUAGE sql AS $$
    SELECT p->>'job', p->>'action', p->'reasons', p->'datasets'
    FROM trace.deploy_dag(yaml, options), jsonb_array_elements(plan->'jobs') p ORDER BY 1
$$;

-- A config change rebuilds the job and everything downstream, into new
-- dataset versions; the rest is untouched.
SELECT * FROM pg_temp.plan_of(replace((SELECT yaml FROM v1_yaml), '% 2 = 0', '% 3 = 0'));
SELECT dag, active_version, building_version, building_status FROM trace.dags WHERE dag = 'ver';
-- While it builds, readers see v1.
SELECT array_agg(n ORDER BY n) AS still_v1 FROM trace_data."ver.picked";
SELECT name, state, dag_version FROM trace.jobs WHERE dag = 'ver' ORDER BY name, job_id;
-- The new version replays history in rebuild mode; live events flow to
-- both the current and the building jobs.
SELECT t.mode, count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE j.dag = 'ver' AND j.state = 'building' GROUP BY 1;
SELECT trace.write_rows(:s_task_id, :s_attempt, :'s_lease_token', 'ver.raw', '9', '[{"n": 9}]') AS live_rows;
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'ver.raw', '9', '{"n": 9}') IS NOT NULL AS live_event;
SELECT j.state, t.mode, count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE j.name = 'pick' AND t.event_id = (SELECT max(event_id) FROM trace.event) GROUP BY 1, 2 ORDER BY 1;
-- Not caught up while tasks remain; the cutover step leaves it.
SELECT trace.cutover_ready() AS cut_over;
SELECT building_status FROM trace.dags WHERE dag = 'ver';
SELECT trace.run_dispatcher_tasks(1000) > 0 AS ran;
SELECT trace.run_dispatcher_tasks(1000) > 0 AS ran;
SELECT building_status FROM trace.dags WHERE dag = 'ver';
-- Caught up: one transaction moves the whole pointer set.
SELECT trace.cutover_ready() AS cut_over;
SELECT dag, active_version, building_version FROM trace.dags WHERE dag = 'ver';
SELECT array_agg(n ORDER BY n) AS v2_picked FROM trace_data."ver.picked";
SELECT array_agg(n100 ORDER BY n100) AS v2_shouted FROM trace_data."ver.shouted";
SELECT dataset_id, version FROM trace.current_versions() WHERE dag = 'ver' ORDER BY 1;
SELECT version, state, job FROM trace.dataset_versions('ver.picked');
SELECT name, state FROM trace.jobs WHERE dag = 'ver' ORDER BY name, job_id;
-- Tasks keep the mode they ran in: the replayed ones ran for the rebuild.
SELECT t.mode, count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE j.dag = 'ver' AND j.state = 'active' AND j.name = 'pick' GROUP BY 1;

-- Rollback after cutover: v1's pointer set and jobs, in one call.
SELECT * FROM trace.rollback_dag('ver');
SELECT array_agg(n ORDER BY n) AS back_to_v1 FROM trace_data."ver.picked";
SELECT array_agg(n100 ORDER BY n100) AS back_to_v1 FROM trace_data."ver.shouted";
SELECT dataset_id, version FROM trace.current_versions() WHERE dag = 'ver' ORDER BY 1;
SELECT version, state FROM trace.dag_versions WHERE dag = 'ver' ORDER BY version;
SELECT name, state FROM trace.jobs WHERE dag = 'ver' ORDER BY name, job_id;
-- A live event now reaches only v1's jobs.
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'ver.raw', '10', '{"n": 10}') IS NOT NULL AS live_event;
SELECT j.state, count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE t.event_id = (SELECT max(event_id) FROM trace.event) GROUP BY 1;

-- Rollback during a rebuild: the building version is discarded, its tasks
-- canceled, the active version untouched.
SELECT job, action FROM pg_temp.plan_of(replace((SELECT yaml FROM v1_yaml), '% 2 = 0', '% 5 = 0'));
SELECT count(*) > 0 AS has_rebuild_tasks FROM trace.task t JOIN trace.job j USING (job_id) WHERE j.state = 'building';
SELECT * FROM trace.rollback_dag('ver');
SELECT count(*) AS building_jobs FROM trace.jobs WHERE dag = 'ver' AND state = 'building';
SELECT count(*) AS unfinished_tasks_of_discarded FROM trace.task t JOIN trace.job j USING (job_id)
WHERE j.dag = 'ver' AND j.dag_version = 3;
SELECT version, state FROM trace.dataset_versions('ver.picked') ORDER BY version;
SELECT active_version, building_version FROM trace.dags WHERE dag = 'ver';

-- Other materialization-affecting changes and what they rebuild.
SELECT job, action, reasons FROM pg_temp.plan_of(replace((SELECT yaml FROM v1_yaml),
    'other: {operator: noop, inputs: [ver.raw]', 'other: {operator: noop, version: 2, inputs: [ver.raw]'))
WHERE action <> 'unchanged';
SELECT * FROM trace.rollback_dag('ver');
SELECT job, action, reasons FROM pg_temp.plan_of(replace((SELECT yaml FROM v1_yaml),
    'outputs: [ver.other]', 'outputs: [ver.other, ver.other2]'))
WHERE action <> 'unchanged';
SELECT * FROM trace.rollback_dag('ver');
SELECT job, action, reasons FROM pg_temp.plan_of(replace((SELECT yaml FROM v1_yaml),
    'other: {operator: noop, inputs: [ver.raw]', 'other: {operator: noop, inputs: [ver.raw, ver.picked]'))
WHERE action <> 'unchanged';
SELECT * FROM trace.rollback_dag('ver');

-- execution_strategy: a rebuild by default, not with the opt-out.
SELECT job, action, reasons FROM pg_temp.plan_of(replace((SELECT yaml FROM v1_yaml),
    'outputs: [ver.other]', 'outputs: [ver.other], execution_strategy: bulk'),
    '{"rebuild_execution_strategy": false}') WHERE job = 'other';
SELECT active_version, building_version FROM trace.dags WHERE dag = 'ver';
SELECT name, execution_strategy FROM trace.job WHERE dag = 'ver' AND name = 'other' AND state = 'active';
SELECT job, action, reasons FROM pg_temp.plan_of(replace((SELECT yaml FROM v1_yaml),
    'outputs: [ver.other]', 'outputs: [ver.other], execution_strategy: per_event')) WHERE job = 'other';

SELECT * FROM trace.rollback_dag('ver');

-- Bad rollbacks.
SELECT test.try($$SELECT * FROM trace.rollback_dag('nope')$$);
SELECT test.try($$SELECT * FROM trace.rollback_dag('ver', 99)$$);
SELECT test.try($$SELECT * FROM trace.rollback_dag(NULL)$$);
SELECT test.try($$SELECT * FROM trace.rollback_dag('timed')$$);

-- Retention: discarded versions are dropped; the current one never.
SELECT trace.drop_old_versions() > 0 AS dropped_some;
SELECT count(*) AS discarded_left FROM trace.dataset_version WHERE state = 'discarded';
SELECT count(*) AS current_intact FROM trace.dataset_version dv
WHERE dv.state = 'current' AND to_regclass(dv.relation) IS NOT NULL;
SELECT count(*) AS current_missing FROM trace.dataset_version dv
WHERE dv.state = 'current' AND to_regclass(dv.relation) IS NULL;
