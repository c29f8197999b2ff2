-- DAGs, datasets and their versions.
--
-- Invariants kept here:
--   * A DAG version is immutable: its YAML and model never change after
--     deploy.  trace.dag.active_version names the one serving live data.
--   * Each DAG version has a pointer set (trace.version_dataset: dataset ->
--     dataset version) and a job set (trace.version_job).  Making a version
--     active applies both in one transaction: that is cutover, and rollback.
--   * A dataset has one producing DAG; its versions each have their own
--     relation in schema trace_data, and the stable name readers use,
--     trace_data."<dataset_id>", is a view over the current version's
--     relation, replaced only by cutover and rollback.
--   * State (schema trace) refers to data (schema trace_data) by name only.

CREATE SCHEMA trace_data;
COMMENT ON SCHEMA trace_data IS
    'Dataset versions (d<N>_v<M>) and the stable views readers use ("<dataset_id>")';

-- The role user SQL (sql jobs) runs as: it can read datasets and write the
-- outputs of sql jobs, nothing else.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'trace_transform') THEN
        CREATE ROLE trace_transform NOLOGIN;
    END IF;
END
$roles$;
GRANT USAGE ON SCHEMA trace_data TO trace_transform, trace_query;
-- trace_transform creates the relations of sql jobs (through trace.transform_exec only).
GRANT CREATE ON SCHEMA trace_data TO trace_transform;

CREATE TABLE trace.dag (
    org_id          text NOT NULL,
    dag             text NOT NULL,
    active_version  int,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, dag)
);
COMMENT ON TABLE trace.dag IS 'DAGs and the version serving live data';

CREATE TABLE trace.dag_version (
    org_id          text NOT NULL,
    dag             text NOT NULL,
    version         int NOT NULL,
    state           text NOT NULL
                    CHECK (state IN ('building', 'active', 'superseded', 'rolled_back')),
    yaml            text NOT NULL,
    model           jsonb NOT NULL,
    plan            jsonb NOT NULL,
    options         jsonb NOT NULL DEFAULT '{}',
    deployed_by     name NOT NULL DEFAULT session_user,
    created_at      timestamptz NOT NULL DEFAULT now(),
    activated_at    timestamptz,
    replaced_version int,
    PRIMARY KEY (org_id, dag, version)
);
COMMENT ON TABLE trace.dag_version IS
    'Every deployed version of every DAG, with its YAML, model and plan';

CREATE TABLE trace.dataset (
    dataset_uuid    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_num     bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    org_id          text NOT NULL,
    dataset_id      text NOT NULL UNIQUE,
    dag             text NOT NULL,
    job_name        text NOT NULL,
    storage         text NOT NULL DEFAULT 'postgres'
                    CHECK (storage IN ('postgres', 'parquet')),
    current_version int,
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trace.dataset IS
    'Datasets: a globally unique id, its producing DAG and job, and its current version';

CREATE TABLE trace.dataset_version (
    dataset_uuid    uuid NOT NULL REFERENCES trace.dataset,
    version         int NOT NULL,
    org_id          text NOT NULL,
    dag_version     int NOT NULL,
    job_id          bigint NOT NULL REFERENCES trace.job,
    state           text NOT NULL
                    CHECK (state IN ('building', 'current', 'retired', 'discarded', 'dropped')),
    kind            text NOT NULL CHECK (kind IN ('table', 'view')),
    relation        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    current_since   timestamptz,
    current_until   timestamptz,
    PRIMARY KEY (dataset_uuid, version)
);
COMMENT ON TABLE trace.dataset_version IS
    'Dataset versions, each with its own relation in trace_data';

-- What a version holds: one row per partition written, with its producer.
CREATE TABLE trace.dataset_partition (
    dataset_uuid     uuid NOT NULL,
    version          int NOT NULL,
    partition_key    text NOT NULL,
    row_count        bigint NOT NULL,
    producer_task_id bigint NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_uuid, version, partition_key)
);
COMMENT ON TABLE trace.dataset_partition IS
    'The partitions each dataset version holds, their row counts and producing tasks';

-- Which dataset version each job reads and writes.
CREATE TABLE trace.job_input (
    job_id          bigint NOT NULL REFERENCES trace.job,
    dataset_uuid    uuid NOT NULL REFERENCES trace.dataset,
    version         int NOT NULL,
    PRIMARY KEY (job_id, dataset_uuid)
);
CREATE INDEX job_input_dataset_idx ON trace.job_input (dataset_uuid, version);
CREATE TABLE trace.job_output (
    job_id          bigint NOT NULL REFERENCES trace.job,
    dataset_uuid    uuid NOT NULL REFERENCES trace.dataset,
    version         int NOT NULL,
    output_index    int NOT NULL,
    PRIMARY KEY (job_id, dataset_uuid)
);
COMMENT ON TABLE trace.job_input IS 'The dataset version each job reads';
COMMENT ON TABLE trace.job_output IS 'The dataset version each job writes, and the output''s index in the DAG''s list';

-- The pointer set and the job set of each DAG version.
CREATE TABLE trace.version_dataset (
    org_id          text NOT NULL,
    dag             text NOT NULL,
    dag_version     int NOT NULL,
    dataset_uuid    uuid NOT NULL,
    version         int NOT NULL,
    PRIMARY KEY (org_id, dag, dag_version, dataset_uuid)
);
CREATE TABLE trace.version_job (
    org_id          text NOT NULL,
    dag             text NOT NULL,
    dag_version     int NOT NULL,
    job_id          bigint NOT NULL,
    PRIMARY KEY (org_id, dag, dag_version, job_id)
);
COMMENT ON TABLE trace.version_dataset IS 'Per DAG version: the dataset version each dataset points to';
COMMENT ON TABLE trace.version_job IS 'Per DAG version: the job rows that run';

-- Cron schedules: the last slot fired, saved with the task it made.
CREATE TABLE trace.cron_state (
    job_id          bigint PRIMARY KEY REFERENCES trace.job,
    last_slot       timestamptz,
    next_slot       timestamptz NOT NULL
);
CREATE INDEX cron_state_next_idx ON trace.cron_state (next_slot);
COMMENT ON TABLE trace.cron_state IS 'Per cron-triggered job: the last slot fired and the next one';

-- Integrity reports: one row per integrity_check run.
CREATE TABLE trace.integrity_report (
    report_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          text NOT NULL,
    job_id          bigint NOT NULL,
    task_id         bigint NOT NULL,
    checked_at      timestamptz NOT NULL DEFAULT now(),
    from_block      bigint,
    to_block        bigint,
    blocks          bigint NOT NULL,
    ok              boolean NOT NULL,
    violations      jsonb NOT NULL
);
CREATE INDEX integrity_report_job_idx ON trace.integrity_report (job_id, report_id);
COMMENT ON TABLE trace.integrity_report IS
    'integrity_check runs: the block range checked and every violation found';

-- Aggregator state: units seen of batches not yet closed, and closed batches.
CREATE TABLE trace.aggregator_unit (
    job_id          bigint NOT NULL,
    batch_start     numeric NOT NULL,
    cursor          numeric NOT NULL,
    PRIMARY KEY (job_id, batch_start, cursor)
);
CREATE TABLE trace.aggregator_batch (
    job_id          bigint NOT NULL,
    batch_start     numeric NOT NULL,
    batch_end       numeric NOT NULL,
    units           bigint NOT NULL,
    event_id        bigint,
    closed_at       timestamptz,
    PRIMARY KEY (job_id, batch_start)
);
COMMENT ON TABLE trace.aggregator_unit IS 'Aggregator: cursors seen in batches still open';
COMMENT ON TABLE trace.aggregator_batch IS
    'Aggregator: each batch, its unit count, and once closed the manifest event emitted for it';
