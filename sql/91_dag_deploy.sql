-- Deploying DAGs: first deploy, no-op redeploy, execution-only changes,
-- ownership of datasets, views, job controls and routing of events.
\set VERBOSITY terse

-- A first deploy is active at once; jobs, datasets and stable views exist,
-- and the source has its durable run.
SELECT dag, dag_version, plan->'rebuild' AS rebuild,
       jsonb_path_query_array(plan, '$.jobs[*].action') AS actions
FROM trace.deploy_dag($yaml$
dag: chain
jobs:
  follow:
    operator: noop
    activation: source
    priority: 100
    outputs: [chain.blocks]
  tag:
    operator: noop
    inputs: [chain.blocks]
    outputs: [chain.tagged]
    retries: {max_attempts: 3}
  audit:
    operator: noop
    inputs: [chain.blocks]
$yaml$);
SELECT dag, active_version, latest_version, building_version FROM trace.dags;
SELECT name, state, operator, runtime, activation, max_attempts FROM trace.jobs WHERE dag = 'chain' ORDER BY name;
SELECT dataset_id, dag, job, current_version, kind, stable_name FROM trace.datasets ORDER BY dataset_id;
SELECT j.name, t.state, t.mode, t.payload FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.dag = 'chain';

-- The same YAML again is a no-op that returns the current version.
SELECT dag_version, plan FROM trace.deploy_dag($yaml$
dag: chain
jobs:
  follow:
    operator: noop
    activation: source
    priority: 100
    outputs: [chain.blocks]
  tag:
    operator: noop
    inputs: [chain.blocks]
    outputs: [chain.tagged]
    retries: {max_attempts: 3}
  audit:
    operator: noop
    inputs: [chain.blocks]
$yaml$);

-- Routing: an event makes one task per consuming job, in the same
-- transaction; a re-emitted event routes nothing new.
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform'], 1, '1 hour') \gset s_
SELECT trace.write_rows(:s_task_id, :s_attempt, :'s_lease_token', 'chain.blocks', '100',
                        '[{"number": 100, "hash": "0xaa"}, {"number": 100, "extra": true}]');
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'chain.blocks', '100', '{"block_number": 100}') AS e1 \gset
SELECT j.name, t.state, t.mode, t.payload, t.event_id = :e1 AS from_event
FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.dag = 'chain' AND j.name <> 'follow' ORDER BY j.name;
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'chain.blocks', '100', '{"block_number": 100}') = :e1 AS same_event;
SELECT count(*) AS tasks_from_events FROM trace.tasks WHERE event_id IS NOT NULL;
-- The rows are readable through the stable name, and the partition is recorded.
SELECT "row" FROM trace_data."chain.blocks" ORDER BY "row"->>'hash';
SELECT version, state, partitions, row_count FROM trace.dataset_versions('chain.blocks');
-- Writing a partition again replaces it (a retried task leaves the same rows).
SELECT trace.write_rows(:s_task_id, :s_attempt, :'s_lease_token', 'chain.blocks', '100', '[{"number": 100, "hash": "0xbb"}]');
SELECT "row" FROM trace_data."chain.blocks";
-- A task writes and emits only its job's outputs.
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, ''chain.tagged'', ''1'', ''{}'')', :s_task_id, :s_attempt, :'s_lease_token'));
SELECT test.try(format('SELECT trace.write_rows(%s, %s, %L, ''chain.tagged'', ''1'', ''[]'')', :s_task_id, :s_attempt, :'s_lease_token'));
SELECT test.try(format('SELECT trace.write_rows(%s, %s, %L, ''chain.blocks'', ''1'', ''{"a": 1}'')', :s_task_id, :s_attempt, :'s_lease_token'));
SELECT test.try(format('SELECT trace.write_rows(%s, %s, %L, ''chain.blocks'', ''1'', ''[1, 2]'')', :s_task_id, :s_attempt, :'s_lease_token'));
SELECT test.try(format('SELECT trace.write_rows(%s, %s, %L, ''chain.blocks'', ''1'', NULL)', :s_task_id, :s_attempt, :'s_lease_token'));
SELECT test.try(format('SELECT trace.write_rows(%s, %s, gen_random_uuid(), ''chain.blocks'', ''1'', ''[]'')', :s_task_id, :s_attempt));

-- Paused jobs accumulate tasks without running them; resume releases them.
SELECT trace.pause_job('chain', 'tag');
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'chain.blocks', '101', '{"block_number": 101}') IS NOT NULL AS emitted;
SELECT j.name, t.state, count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE j.name IN ('tag', 'audit') GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS claimable_tag_tasks FROM trace.task t JOIN trace.job j USING (job_id)
WHERE j.name = 'tag' AND t.state = 'queued';
SELECT trace.resume_job('chain', 'tag');
SELECT j.name, t.state, count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
WHERE j.name = 'tag' GROUP BY 1, 2 ORDER BY 1, 2;

-- A manual trigger runs a job once.
SELECT trace.trigger_job('chain', 'audit', '{"why": "manual"}') IS NOT NULL AS triggered;
SELECT test.try($$SELECT trace.trigger_job('chain', 'nope')$$);
SELECT test.try($$SELECT trace.pause_job('nope', 'tag')$$);
SELECT test.try($$SELECT trace.trigger_job('chain', 'audit', NULL)$$);

-- Execution-only changes apply at once, with no rebuild, also to tasks
-- that have not started.
SELECT dag_version, plan->'rebuild' AS rebuild, p->>'job' AS job, p->>'action' AS action, p->'reasons' AS reasons
FROM trace.deploy_dag($yaml$
dag: chain
jobs:
  follow:
    operator: noop
    activation: source
    priority: 100
    outputs: [chain.blocks]
  tag:
    operator: noop
    inputs: [chain.blocks]
    outputs: [chain.tagged]
    retries: {max_attempts: 9}
    priority: 7
    lease: 2m
  audit:
    operator: noop
    inputs: [chain.blocks]
$yaml$), jsonb_array_elements(plan->'jobs') p ORDER BY p->>'job';
SELECT name, state, max_attempts, priority, lease FROM trace.jobs WHERE name = 'tag';
SELECT DISTINCT t.priority, t.max_attempts FROM trace.task t JOIN trace.job j USING (job_id)
WHERE j.name = 'tag' AND t.state <> 'running';
SELECT version, state FROM trace.dag_versions WHERE dag = 'chain' ORDER BY version;

-- One producing DAG per dataset: another DAG cannot write chain.blocks, but
-- it may read it.
SELECT * FROM trace.validate_dag($yaml$
dag: other
jobs:
  steal: {operator: noop, activation: source, outputs: [chain.blocks]}
  reader: {operator: noop, inputs: [chain.blocks, nowhere.data], outputs: [other.counts]}
$yaml$);
SELECT dag, dag_version FROM trace.deploy_dag($yaml$
dag: other
jobs:
  reader: {operator: noop, inputs: [chain.blocks], outputs: [other.counts]}
$yaml$);
-- The reader got chain.blocks' history replayed (one task per past event).
SELECT count(*) AS replayed FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.dag = 'other';
-- ...and gets new events too.
SELECT trace.emit_event(:s_task_id, :s_attempt, :'s_lease_token', 'chain.blocks', '102', '{"block_number": 102}') IS NOT NULL AS emitted;
SELECT count(*) AS tasks FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.dag = 'other';

-- A deploy that drops a job: the job retires, its tasks are canceled, its
-- dataset stays readable.
SELECT p->>'job' AS job, p->>'action' AS action FROM trace.deploy_dag($yaml$
dag: chain
jobs:
  follow:
    operator: noop
    activation: source
    priority: 100
    outputs: [chain.blocks]
  audit:
    operator: noop
    inputs: [chain.blocks]
$yaml$), jsonb_array_elements(plan->'jobs') p ORDER BY 1;
SELECT name, state FROM trace.jobs WHERE dag = 'chain' ORDER BY name, job_id;
SELECT count(*) AS unfinished_tag_tasks FROM trace.task t JOIN trace.job j USING (job_id) WHERE j.name = 'tag';
SELECT dataset_id, current_version FROM trace.datasets WHERE dataset_id = 'chain.tagged';
SELECT count(*) >= 0 AS readable FROM trace_data."chain.tagged";

-- The order a deploy builds jobs in: producers before consumers, by the
-- longest chain of producers above each job, then by name; a model with a
-- cycle (validate_dag refuses those first) is an error, never a partial order.
SELECT trace.model_job_order($m${"jobs": [
  {"name": "report", "inputs": [{"dataset": "x.joined"}], "outputs": []},
  {"name": "join", "inputs": [{"dataset": "x.a"}, {"dataset": "x.b"}], "outputs": [{"dataset": "x.joined"}]},
  {"name": "b", "inputs": [{"dataset": "x.a"}], "outputs": [{"dataset": "x.b"}]},
  {"name": "a", "inputs": [], "outputs": [{"dataset": "x.a"}]},
  {"name": "lone", "inputs": [], "outputs": [{"dataset": "x.lone"}]}]}$m$::jsonb) AS build_order;
SELECT trace.model_job_order($m${"jobs": [
  {"name": "p", "inputs": [{"dataset": "x.q"}], "outputs": [{"dataset": "x.p"}]},
  {"name": "q", "inputs": [{"dataset": "x.p"}], "outputs": [{"dataset": "x.q"}]}]}$m$::jsonb);
