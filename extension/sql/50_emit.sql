-- Events and rows: what a task produces.  Both are written only by the
-- current holder of the task's lease (trace.lease_holder), into the dataset
-- version the task's job writes (trace.output_binding).
--
-- trace.emit_event is at-least-once made effectively-once: the key
-- (producer_task_id, dataset_id, partition_key) is unique, so a retry of the
-- task that emits the same partition again gets the original event back and
-- changes nothing.  A new event is routed at once, in the same transaction:
-- one task per consuming job.

-- The task row of a current, unexpired lease, share-locked so that a
-- concurrent re-claim waits for the caller's transaction or makes this call
-- fail with TR001; never interleaves.  TR002 when a cancel was requested.
CREATE FUNCTION trace.lease_holder(task_id bigint, attempt int, lease_token uuid)
RETURNS trace.task
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    t trace.task;
BEGIN
    SELECT * INTO t FROM trace.task x
    WHERE x.task_id = task_id AND x.attempt = attempt AND x.lease_token = lease_token
      AND x.state = 'running' AND x.lease_expires_at > now()
    FOR SHARE;
    IF NOT FOUND THEN
        PERFORM trace.raise_lease_error(task_id, attempt, lease_token);
    END IF;
    IF t.cancel_requested THEN
        RAISE EXCEPTION 'task % was canceled', task_id
            USING ERRCODE = 'TR002',
                  HINT = 'Stop the operator and give the task up with trace.fail_task.';
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION trace.lease_holder(bigint, int, uuid) IS
    'The task of a current lease, share-locked; TR001 for a lost lease, TR002 for a canceled task';

-- The dataset version a job writes for a dataset id: NULL for a stand-alone
-- job (no declared outputs); TR006 for a DAG job that does not produce it.
CREATE FUNCTION trace.output_binding(job_id bigint, dataset_id text,
                                     OUT dataset_uuid uuid, OUT version int,
                                     OUT relation text, OUT kind text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SELECT jo.dataset_uuid, jo.version, dv.relation, dv.kind
    INTO dataset_uuid, version, relation, kind
    FROM trace.job_output jo
    JOIN trace.dataset d ON d.dataset_uuid = jo.dataset_uuid
    JOIN trace.dataset_version dv ON dv.dataset_uuid = jo.dataset_uuid AND dv.version = jo.version
    WHERE jo.job_id = output_binding.job_id AND d.dataset_id = output_binding.dataset_id;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM trace.job_output jo WHERE jo.job_id = output_binding.job_id) THEN
        RAISE EXCEPTION 'job % does not produce dataset "%"', job_id, dataset_id
            USING ERRCODE = 'TR006',
                  HINT = 'A task writes and emits only the datasets listed in its job''s outputs.';
    END IF;
END
$$;

-- Makes one task per job consuming the event's dataset version: live for
-- active jobs, rebuild for jobs of a version being built.  Jobs run by a
-- trigger read their inputs but are not run by events.
CREATE FUNCTION trace.route_event(e trace.event) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j trace.job;
    n int := 0;
BEGIN
    FOR j IN
        SELECT job.* FROM trace.job_input ji
        JOIN trace.dataset d ON d.dataset_uuid = ji.dataset_uuid
        JOIN trace.job ON job.job_id = ji.job_id
        WHERE d.dataset_id = e.dataset_id AND ji.version = e.dataset_version
          AND job.state IN ('active', 'building') AND job.trigger IS NULL
    LOOP
        PERFORM trace.insert_tasks(j, ARRAY[e.payload], NULL, NULL, NULL,
                                   CASE j.state WHEN 'building' THEN 'rebuild' ELSE 'live' END,
                                   ARRAY[e.event_id]);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.route_event(trace.event) IS
    'Routes a new event: one task per consuming job (live, or rebuild for jobs being built)';

-- Emits a batch of events of one dataset for the task holding the given
-- lease, in order, and returns their event_ids: one fence and one output
-- lookup for the batch.  Each new event is routed in the same transaction;
-- a key emitted before returns its original event.
CREATE FUNCTION trace.emit_events(
    task_id        bigint,
    attempt        int,
    lease_token    uuid,
    dataset_id     text,
    partition_keys text[],
    payloads       jsonb[])
RETURNS bigint[]
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    n         int := cardinality(partition_keys);
    producer  trace.task;
    binding   record;
    e         trace.event;
    ids       bigint[] := '{}';
BEGIN
    IF dataset_id IS NULL OR partition_keys IS NULL OR payloads IS NULL THEN
        PERFORM trace.require_arg(dataset_id IS NULL, 'dataset_id');
        PERFORM trace.require_arg(partition_keys IS NULL, 'partition_keys');
        PERFORM trace.require_arg(payloads IS NULL, 'payloads');
    END IF;
    IF dataset_id = '' OR octet_length(dataset_id) > 63 THEN
        RAISE EXCEPTION 'argument "dataset_id" must be 1 to 63 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(payloads) <> n THEN
        RAISE EXCEPTION 'arguments "partition_keys" and "payloads" must have the same length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF n > 10000 THEN
        RAISE EXCEPTION 'at most 10000 events per call, got %', n USING ERRCODE = 'program_limit_exceeded';
    END IF;
    FOR i IN 1..n LOOP
        IF partition_keys[i] IS NULL OR payloads[i] IS NULL THEN
            PERFORM trace.require_arg(partition_keys[i] IS NULL, 'partition_key');
            PERFORM trace.require_arg(payloads[i] IS NULL, 'payload');
        END IF;
        IF length(partition_keys[i]) > 1000 THEN
            RAISE EXCEPTION 'argument "partition_key" must be at most 1000 characters'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM trace.check_payload(payloads[i], 'payload');
    END LOOP;

    producer := trace.lease_holder(task_id, attempt, lease_token);
    binding := trace.output_binding(producer.job_id, dataset_id);
    FOR i IN 1..n LOOP
        INSERT INTO trace.event AS ev (org_id, producer_task_id, producer_attempt, dataset_id,
                                       dataset_version, partition_key, payload)
        VALUES (producer.org_id, task_id, attempt, dataset_id, binding.version,
                partition_keys[i], payloads[i])
        ON CONFLICT ON CONSTRAINT event_producer_task_id_dataset_id_partition_key_key
        DO NOTHING
        RETURNING * INTO e;
        IF e.event_id IS NULL THEN
            SELECT x.event_id INTO e.event_id FROM trace.event x
            WHERE x.producer_task_id = emit_events.task_id AND x.dataset_id = emit_events.dataset_id
              AND x.partition_key = partition_keys[i];
        ELSIF binding.version IS NOT NULL THEN
            PERFORM trace.route_event(e);
        END IF;
        ids := ids || e.event_id;
        e := NULL;
    END LOOP;
    RETURN ids;
END
$$;
COMMENT ON FUNCTION trace.emit_events(bigint, int, uuid, text, text[], jsonb[]) IS
    'Emits a batch of events of one dataset for a leased task (idempotent per key, routed); returns their event_ids';

-- Emits one event for the task holding the given lease and returns its
-- event_id; see trace.emit_events.
CREATE FUNCTION trace.emit_event(
    task_id       bigint,
    attempt       int,
    lease_token   uuid,
    dataset_id    text,
    partition_key text,
    payload       jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF dataset_id IS NULL OR partition_key IS NULL OR payload IS NULL THEN
        PERFORM trace.require_arg(dataset_id IS NULL, 'dataset_id');
        PERFORM trace.require_arg(partition_key IS NULL, 'partition_key');
        PERFORM trace.require_arg(payload IS NULL, 'payload');
    END IF;
    RETURN (trace.emit_events(task_id, attempt, lease_token, dataset_id,
                              ARRAY[partition_key], ARRAY[payload]))[1];
END
$$;
COMMENT ON FUNCTION trace.emit_event(bigint, int, uuid, text, text, jsonb) IS
    'Emits an event for a leased task, idempotent on (producer_task_id, dataset_id, partition_key), and routes it; returns its event_id';

-- Writes the rows of one partition of a dataset for the task holding the
-- lease: replaces exactly that partition in the version the task's job
-- writes, so a retried task leaves the same rows.  rows is a JSON array of
-- objects.  Returns the number of rows written.
CREATE FUNCTION trace.write_rows(
    task_id       bigint,
    attempt       int,
    lease_token   uuid,
    dataset_id    text,
    partition_key text,
    rows          jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    producer trace.task;
    binding  record;
    n        bigint;
BEGIN
    IF dataset_id IS NULL OR partition_key IS NULL OR rows IS NULL THEN
        PERFORM trace.require_arg(dataset_id IS NULL, 'dataset_id');
        PERFORM trace.require_arg(partition_key IS NULL, 'partition_key');
        PERFORM trace.require_arg(rows IS NULL, 'rows');
    END IF;
    IF jsonb_typeof(rows) <> 'array' THEN
        RAISE EXCEPTION 'argument "rows" must be a JSON array of objects, not %', jsonb_typeof(rows)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(rows) r WHERE jsonb_typeof(r) <> 'object') THEN
        RAISE EXCEPTION 'argument "rows" must hold JSON objects only'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM trace.check_write_size(rows);

    producer := trace.lease_holder(task_id, attempt, lease_token);
    binding := trace.output_binding(producer.job_id, dataset_id);
    IF binding.relation IS NULL THEN
        RAISE EXCEPTION 'job % declares no outputs, so its tasks cannot write rows', producer.job_id
            USING ERRCODE = 'TR006';
    END IF;
    IF binding.kind <> 'table' OR NOT EXISTS (
           SELECT 1 FROM pg_attribute a
           WHERE a.attrelid = binding.relation::regclass AND a.attname = 'row') THEN
        RAISE EXCEPTION 'dataset "%" is computed by its sql job; tasks cannot write rows into it', dataset_id
            USING ERRCODE = 'TR006';
    END IF;
    EXECUTE format('DELETE FROM %s WHERE partition_key = $1', binding.relation) USING partition_key;
    EXECUTE format('INSERT INTO %s (partition_key, producer_task_id, "row") '
                   'SELECT $1, $2, r FROM jsonb_array_elements($3) r', binding.relation)
        USING partition_key, task_id, rows;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO trace.dataset_partition AS p (dataset_uuid, version, partition_key, row_count,
                                              producer_task_id)
    VALUES (binding.dataset_uuid, binding.version, partition_key, n, task_id)
    ON CONFLICT ON CONSTRAINT dataset_partition_pkey
    DO UPDATE SET row_count = excluded.row_count, producer_task_id = excluded.producer_task_id,
                  written_at = now();
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.write_rows(bigint, int, uuid, text, text, jsonb) IS
    'Replaces one partition of a dataset with the given rows, for the holder of a task''s lease; returns the row count';
