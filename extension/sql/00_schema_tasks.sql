\echo Use "CREATE EXTENSION trace" to load this file. \quit

-- Trace state schema.
--
-- Invariants kept here:
--   * trace.task holds only active tasks (scheduled, queued, running, paused).
--     A task that ends moves, in the statement that ends it, to trace.task_done,
--     which is range-partitioned by day so retention drops whole partitions.
--     The claim path therefore never walks history, however much accumulates.
--   * Everything the claim query needs to decide eligibility lives in the task
--     row itself (runtime, state, priority, lease length): no join while locking.
--   * task_id comes from one sequence shared by both tables, so it is unique
--     across them; events name their producer by task_id only.
--   * org_id is on every row; v1 runs one org, 'default'.

-- Component roles: group roles without LOGIN; deployments grant them to
-- login roles.  Roles are cluster-wide, so a second database reuses them.
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['trace_admin', 'trace_worker', 'trace_dispatcher',
                             'trace_delivery', 'trace_rpc', 'trace_query']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
END
$roles$;

-- Which org a login role acts for.  Tenancy is keyed on role identity
-- (session_user), never on a setting a client could change.
CREATE TABLE trace.org_role (
    role_name   name PRIMARY KEY,
    org_id      text NOT NULL CHECK (org_id <> '')
);
COMMENT ON TABLE trace.org_role IS
    'Maps a login role to the org it acts for; roles not listed act for org ''default''';

-- A job: what runs (operator, runtime, config) and how (retry policy, lease).
-- The DAG deploy fills this table; trace.create_job makes stand-alone jobs.
-- A job row never changes what it materializes: a deploy that changes a
-- materialization-affecting property makes a new row (state 'building',
-- bound to new dataset versions) beside the old one ('active'); cutover
-- retires the old row, rollback brings it back.  Execution-only properties
-- (retries, lease, timeout, concurrency, priority, trigger) change in place.
CREATE TABLE trace.job (
    job_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          text NOT NULL DEFAULT 'default',
    dag             text,
    dag_version     int,
    name            text NOT NULL,
    state           text NOT NULL DEFAULT 'active'
                    CHECK (state IN ('active', 'building', 'retired')),
    operator        text NOT NULL,
    operator_version int NOT NULL DEFAULT 1,
    activation      text NOT NULL DEFAULT 'reactive'
                    CHECK (activation IN ('reactive', 'source')),
    runtime         text NOT NULL
                    CHECK (runtime IN ('dispatcher', 'ecs_platform', 'lambda')),
    config          jsonb NOT NULL DEFAULT '{}',
    trigger         jsonb,
    materialize     boolean NOT NULL DEFAULT true,
    execution_strategy text NOT NULL DEFAULT 'per_event',
    concurrency     int CHECK (concurrency >= 1),
    spec            jsonb,
    priority        int NOT NULL DEFAULT 0,
    max_attempts    int NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
    backoff         interval NOT NULL DEFAULT '2 seconds'
                    CHECK (backoff >= '0'),
    max_backoff     interval NOT NULL DEFAULT '5 minutes'
                    CHECK (max_backoff >= backoff),
    lease           interval NOT NULL DEFAULT '30 seconds'
                    CHECK (lease > '0' AND lease <= '1 day'),
    timeout         interval CHECK (timeout > '0'),
    paused          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX job_name_key ON trace.job (org_id, dag, name, dag_version) NULLS NOT DISTINCT;
CREATE INDEX job_dag_idx ON trace.job (org_id, dag, state);
COMMENT ON TABLE trace.job IS
    'Jobs: an operator, its runtime and config, and the retry and lease policy of its tasks';

CREATE SEQUENCE trace.task_id_seq AS bigint;
COMMENT ON SEQUENCE trace.task_id_seq IS
    'Task ids, shared by trace.task and trace.task_done so an id is unique across both';

-- Active tasks.  fillfactor leaves room so heartbeats (which change no
-- indexed column) stay HOT updates.  Every claim and completion leaves a
-- dead tuple and a dead entry at the head of the claim index, which each
-- later claim must step over until vacuum removes it: so vacuum this small,
-- hot table after a fixed number of changes, not a fraction of its size,
-- and without cost-based pauses.
CREATE TABLE trace.task (
    task_id          bigint PRIMARY KEY DEFAULT nextval('trace.task_id_seq'),
    org_id           text NOT NULL,
    job_id           bigint NOT NULL,
    operator         text NOT NULL,
    runtime          text NOT NULL,
    state            text NOT NULL
                     CHECK (state IN ('scheduled', 'queued', 'running', 'paused')),
    mode             text NOT NULL DEFAULT 'live'
                     CHECK (mode IN ('live', 'rebuild', 'manual')),
    priority         int NOT NULL DEFAULT 0,
    not_before       timestamptz NOT NULL DEFAULT now(),
    attempt          int NOT NULL DEFAULT 0,
    max_attempts     int NOT NULL CHECK (max_attempts >= 1),
    lease            interval NOT NULL,
    timeout          interval,
    lease_token      uuid,
    lease_expires_at timestamptz,
    deadline_at      timestamptz,
    worker_id        text,
    started_at       timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    payload          jsonb NOT NULL DEFAULT '{}',
    event_id         bigint,
    dag_version      int,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'running') = (lease_token IS NOT NULL))
) WITH (fillfactor = 80,
        autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 20000,
        autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
COMMENT ON TABLE trace.task IS
    'Active tasks: scheduled (waiting for not_before), queued (claimable), running (leased), paused';

-- The claim index: only claimable rows, in claim order.
CREATE INDEX task_claim_idx ON trace.task (org_id, runtime, priority DESC, task_id)
    WHERE state = 'queued';
-- The dispatcher's two scans: leases to expire, scheduled tasks to release.
CREATE INDEX task_running_idx ON trace.task (task_id) WHERE state = 'running';
CREATE INDEX task_scheduled_idx ON trace.task (not_before) WHERE state = 'scheduled';
CREATE INDEX task_job_idx ON trace.task (job_id);

-- Finished tasks.  The row carries its final attempt; earlier attempts are in
-- trace.task_attempt.  Partitions are one day of finished_at each; the
-- dispatcher creates them ahead and drops them past trace.task_retention.
CREATE TABLE trace.task_done (
    task_id          bigint NOT NULL,
    org_id           text NOT NULL,
    job_id           bigint NOT NULL,
    operator         text NOT NULL,
    runtime          text NOT NULL,
    state            text NOT NULL CHECK (state IN ('succeeded', 'failed', 'canceled')),
    mode             text NOT NULL,
    priority         int NOT NULL,
    attempt          int NOT NULL,
    max_attempts     int NOT NULL,
    worker_id        text,
    payload          jsonb NOT NULL,
    result           jsonb,
    error            text,
    event_id         bigint,
    dag_version      int,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz NOT NULL
) PARTITION BY RANGE (finished_at);
CREATE INDEX task_done_task_idx ON trace.task_done (task_id);
-- Failed tasks by job: a rebuild is blocked by one (trace.version_blocker),
-- checked every dispatcher pass; without it the check scans all history.
CREATE INDEX task_done_failed_idx ON trace.task_done (job_id) WHERE state = 'failed';
CREATE TABLE trace.task_done_default PARTITION OF trace.task_done DEFAULT;
COMMENT ON TABLE trace.task_done IS
    'Finished tasks (succeeded, failed, canceled), partitioned by day of finished_at';

-- Attempts that did not end their task: failures that were retried, expired
-- leases, timeouts.  The final attempt of a finished task is its task_done row.
CREATE TABLE trace.task_attempt (
    task_id     bigint NOT NULL,
    attempt     int NOT NULL,
    org_id      text NOT NULL,
    worker_id   text,
    started_at  timestamptz,
    ended_at    timestamptz NOT NULL DEFAULT now(),
    outcome     text NOT NULL
                CHECK (outcome IN ('failed', 'lease_expired', 'timed_out')),
    error       text,
    PRIMARY KEY (task_id, attempt)
);
CREATE INDEX task_attempt_ended_idx ON trace.task_attempt (ended_at);
COMMENT ON TABLE trace.task_attempt IS
    'Attempts that ended without ending their task (retried failures, expired leases, timeouts)';

-- Events: what a task produced.  The unique key makes emission idempotent:
-- a retry of the same task re-emitting the same partition is a no-op.
CREATE TABLE trace.event (
    event_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id            text NOT NULL,
    producer_task_id  bigint NOT NULL,
    producer_attempt  int NOT NULL,
    dataset_id        text NOT NULL,
    dataset_version   int,
    partition_key     text NOT NULL,
    payload           jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (producer_task_id, dataset_id, partition_key)
);
CREATE INDEX event_dataset_idx ON trace.event (org_id, dataset_id, event_id);
COMMENT ON TABLE trace.event IS
    'Events emitted by tasks, unique on (producer_task_id, dataset_id, partition_key)';

-- The outbox: side effects written in the transaction that causes them and
-- carried out after it commits.  kind 'notify' rows are relayed by the
-- dispatcher as NOTIFY on their channel; other kinds belong to the egress
-- services that lease them.
CREATE TABLE trace.outbox (
    outbox_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('notify')),
    channel     text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trace.outbox IS
    'Side effects recorded with the state change that causes them, relayed after commit';
