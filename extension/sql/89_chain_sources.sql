-- Chain sources: what block_follower and range_ingest need beyond events.
--
-- Chain tables are the one place workers write directly: by binary COPY,
-- for speed, into the version relations of their job's outputs.  The
-- writes are fenced all the same: the worker calls trace.chain_tables in
-- the transaction that writes, which share-locks the task row under the
-- lease check, so a re-claim waits for that transaction or makes it fail
-- before anything is written; and the source's cursor is saved in the same
-- transaction (trace.save_source_state), so a kill at any point leaves
-- neither a gap nor a duplicate.

CREATE TABLE trace.source_state (
    task_id     bigint PRIMARY KEY,
    org_id      text NOT NULL,
    state       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE trace.source_state IS
    'Durable state of each source run (its cursor), saved with the data it covers';

CREATE TABLE trace.reorg (
    reorg_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      text NOT NULL,
    job_id      bigint NOT NULL,
    task_id     bigint NOT NULL,
    chain_id    bigint NOT NULL,
    fork_block  bigint NOT NULL,
    depth       int NOT NULL,
    old_hashes  text[] NOT NULL,
    new_hashes  text[] NOT NULL,
    detected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reorg_job_idx ON trace.reorg (job_id, reorg_id);
COMMENT ON TABLE trace.reorg IS
    'Chain reorganizations a source followed: depth, fork block, orphaned and new hashes';

-- The relations a chain task writes (its outputs, in DAG order: blocks,
-- transactions, logs), for the holder of the lease.  Call it in the
-- transaction that writes: it share-locks the task row (see trace.lease_holder).
CREATE FUNCTION trace.chain_tables(task_id bigint, attempt int, lease_token uuid)
RETURNS TABLE (dataset_id text, output_index int, relation text)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    t trace.task := trace.lease_holder(chain_tables.task_id, chain_tables.attempt,
                                       chain_tables.lease_token);
BEGIN
    RETURN QUERY
    SELECT d.dataset_id, jo.output_index, dv.relation
    FROM trace.job_output jo
    JOIN trace.dataset d ON d.dataset_uuid = jo.dataset_uuid
    JOIN trace.dataset_version dv ON dv.dataset_uuid = jo.dataset_uuid AND dv.version = jo.version
    WHERE jo.job_id = t.job_id
    ORDER BY jo.output_index;
END
$$;
COMMENT ON FUNCTION trace.chain_tables(bigint, int, uuid) IS
    'The chain tables a leased task writes (blocks, transactions, logs); fences the calling transaction';

-- The saved state of a source run ('{}' before the first save).
CREATE FUNCTION trace.source_state(task_id bigint, attempt int, lease_token uuid)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    PERFORM trace.lease_holder(task_id, attempt, lease_token);
    RETURN coalesce((SELECT s.state FROM trace.source_state s WHERE s.task_id = source_state.task_id),
                    '{}'::jsonb);
END
$$;
COMMENT ON FUNCTION trace.source_state(bigint, int, uuid) IS
    'The durable state (cursor) of a source run, for the holder of its lease';

-- Saves the state of a source run, fenced, in the caller's transaction:
-- save it in the transaction that writes the data it describes.
CREATE FUNCTION trace.save_source_state(task_id bigint, attempt int, lease_token uuid, state jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    t trace.task;
BEGIN
    PERFORM trace.require_arg(state IS NULL, 'state');
    PERFORM trace.check_payload(state, 'state');
    t := trace.lease_holder(task_id, attempt, lease_token);
    INSERT INTO trace.source_state AS s (task_id, org_id, state)
    VALUES (task_id, t.org_id, state)
    ON CONFLICT ON CONSTRAINT source_state_pkey
    DO UPDATE SET state = excluded.state, updated_at = now();
END
$$;
COMMENT ON FUNCTION trace.save_source_state(bigint, int, uuid, jsonb) IS
    'Saves a source run''s state (cursor) with the data it covers, fenced';

-- Records a reorganization a source followed, and notifies about it
-- through the outbox (channel trace_reorg).  Returns the reorg id.
CREATE FUNCTION trace.record_reorg(task_id bigint, attempt int, lease_token uuid, chain_id bigint,
                                   fork_block bigint, depth int, old_hashes text[], new_hashes text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    t trace.task;
    id bigint;
BEGIN
    IF chain_id IS NULL OR fork_block IS NULL OR depth IS NULL OR old_hashes IS NULL OR new_hashes IS NULL THEN
        RAISE EXCEPTION 'chain_id, fork_block, depth, old_hashes and new_hashes must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    t := trace.lease_holder(task_id, attempt, lease_token);
    INSERT INTO trace.reorg (org_id, job_id, task_id, chain_id, fork_block, depth, old_hashes, new_hashes)
    VALUES (t.org_id, t.job_id, task_id, chain_id, fork_block, depth, old_hashes, new_hashes)
    RETURNING reorg_id INTO id;
    PERFORM trace.notify_later(t.org_id, 'trace_reorg',
        jsonb_build_object('reorg_id', id, 'job_id', t.job_id, 'chain_id', chain_id,
                           'fork_block', fork_block, 'depth', depth));
    RETURN id;
END
$$;
COMMENT ON FUNCTION trace.record_reorg(bigint, int, uuid, bigint, bigint, int, text[], text[]) IS
    'Records a chain reorganization followed by a source (and notifies trace_reorg); returns its id';

-- Restarts a source that halted (failed for good, e.g. on a reorg deeper
-- than it may follow): its run continues as a retry of the same task, so
-- what it emits keeps its idempotency keys.  Returns the task id.
CREATE FUNCTION trace.restart_source(dag text, job text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j trace.job;
    d trace.task_done;
BEGIN
    SELECT * INTO j FROM trace.job
    WHERE job_id = ANY (trace.dag_job_ids(restart_source.dag, restart_source.job))
      AND state = 'active' AND activation = 'source';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job "%" of DAG "%" is not an active source', job, dag USING ERRCODE = 'TR005';
    END IF;
    IF EXISTS (SELECT 1 FROM trace.task t WHERE t.job_id = j.job_id) THEN
        RAISE EXCEPTION 'source "%" of DAG "%" is running', job, dag
            USING ERRCODE = 'TR014', HINT = 'Only a halted source can be restarted.';
    END IF;
    DELETE FROM trace.task_done x
    WHERE x.task_id = (SELECT max(y.task_id) FROM trace.task_done y WHERE y.job_id = j.job_id)
    RETURNING * INTO d;
    IF NOT FOUND THEN
        PERFORM trace.start_source(j, 'live');
        RETURN (SELECT t.task_id FROM trace.task t WHERE t.job_id = j.job_id);
    END IF;
    INSERT INTO trace.task (task_id, org_id, job_id, operator, runtime, state, mode, priority,
                            not_before, attempt, max_attempts, lease, timeout, payload, event_id,
                            dag_version, last_error, created_at)
    VALUES (d.task_id, d.org_id, d.job_id, d.operator, d.runtime, 'queued', 'live', j.priority,
            now(), d.attempt, d.attempt + j.max_attempts, j.lease, j.timeout, d.payload, d.event_id,
            d.dag_version, d.error, d.created_at);
    PERFORM trace.wake_workers(j.runtime);
    RETURN d.task_id;
END
$$;
COMMENT ON FUNCTION trace.restart_source(text, text) IS
    'Restarts a halted source as a retry of the same run (same producer id); returns its task id';
