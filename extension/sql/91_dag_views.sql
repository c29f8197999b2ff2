-- Views of DAGs, jobs and datasets, scoped to the caller's org.

CREATE VIEW trace.dags AS
    SELECT d.dag, d.active_version,
           (SELECT max(v.version) FROM trace.dag_version v
            WHERE v.org_id = d.org_id AND v.dag = d.dag) AS latest_version,
           b.version AS building_version,
           CASE WHEN b.version IS NOT NULL
                THEN coalesce(trace.version_blocker(d.org_id, d.dag, b.version), 'caught up, cutting over')
           END AS building_status,
           d.created_at
    FROM trace.dag d
    LEFT JOIN trace.dag_version b ON b.org_id = d.org_id AND b.dag = d.dag AND b.state = 'building'
    WHERE d.org_id = trace.caller_org();
COMMENT ON VIEW trace.dags IS
    'DAGs: active and latest version, and what a rebuild in progress waits for';

CREATE VIEW trace.dag_versions AS
    SELECT v.dag, v.version, v.state, v.plan, v.deployed_by, v.created_at, v.activated_at
    FROM trace.dag_version v
    WHERE v.org_id = trace.caller_org();
COMMENT ON VIEW trace.dag_versions IS 'Every version of every DAG, with its state and deploy plan';

CREATE VIEW trace.jobs AS
    SELECT j.job_id, j.dag, j.name, j.dag_version, j.state, j.operator, j.runtime, j.activation,
           j.paused, j.trigger, j.config, j.priority, j.max_attempts, j.lease, j.timeout,
           j.concurrency, j.created_at
    FROM trace.job j
    WHERE j.org_id = trace.caller_org();
COMMENT ON VIEW trace.jobs IS 'Jobs: active, building (for a rebuild) and retired rows';

CREATE VIEW trace.integrity_reports AS
    SELECT r.report_id, j.dag, j.name AS job, r.task_id, r.checked_at, r.from_block, r.to_block,
           r.blocks, r.ok, r.violations
    FROM trace.integrity_report r JOIN trace.job j ON j.job_id = r.job_id
    WHERE r.org_id = trace.caller_org();
COMMENT ON VIEW trace.integrity_reports IS 'Every integrity_check run: range, blocks, violations';

CREATE VIEW trace.datasets AS
    SELECT d.dataset_id, d.dag, d.job_name AS job, d.storage, d.current_version,
           dv.relation, dv.kind, dv.current_since,
           format('trace_data.%I', d.dataset_id) AS stable_name
    FROM trace.dataset d
    LEFT JOIN trace.dataset_version dv
           ON dv.dataset_uuid = d.dataset_uuid AND dv.version = d.current_version
    WHERE d.org_id = trace.caller_org();
COMMENT ON VIEW trace.datasets IS
    'Datasets: producer, current version and the stable name to query (trace_data."<dataset_id>")';
