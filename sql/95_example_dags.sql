-- The example DAGs in dags/ are valid and deploy: each one's problems
-- (none expected) and its jobs after deploy.
\set VERBOSITY terse

\set yaml `cat dags/eth_local.yaml`
SELECT * FROM trace.validate_dag(:'yaml');
SELECT dag, dag_version, jsonb_path_query_array(plan, '$.jobs[*].job') AS jobs FROM trace.deploy_dag(:'yaml');

\set yaml `cat dags/nightly_report.yaml`
SELECT * FROM trace.validate_dag(:'yaml');
SELECT dag, dag_version, jsonb_path_query_array(plan, '$.jobs[*].job') AS jobs FROM trace.deploy_dag(:'yaml');

\set yaml `cat dags/sql_chain.yaml`
SELECT * FROM trace.validate_dag(:'yaml');
SELECT dag, dag_version, jsonb_path_query_array(plan, '$.jobs[*].job') AS jobs FROM trace.deploy_dag(:'yaml');

-- Every DAG file in dags/ is covered above.
\set files `ls dags/*.yaml | wc -l`
SELECT :files AS dag_files;

SELECT dataset_id, dag, job, kind FROM trace.datasets
WHERE dag IN ('eth_local', 'nightly_report', 'sql_chain') ORDER BY dataset_id;
