-- Versions: building them, cutting over, rolling back, and retention.
--
-- Every dataset version has its own relation, trace_data.d<N>_v<M>.  Readers
-- use the stable view trace_data."<dataset_id>", which selects from the
-- current version's relation.  A statement resolves the view once, when it
-- is planned, so it reads exactly one version of each dataset however the
-- pointers move while it runs.
--
-- trace.apply_version is the only thing that moves pointers: it makes one
-- DAG version's pointer set and job set current, in the caller's
-- transaction.  Cutover and rollback are both that call, serialized per DAG
-- by the deploy advisory lock, and they wait at most
-- trace.cutover_lock_timeout for readers' locks: a cutover that cannot get
-- them gives up and is retried on the dispatcher's next pass, so it never
-- makes new readers queue behind it for longer than that.

-- The relation of one dataset version.
CREATE FUNCTION trace.version_relation(dataset_num bigint, version int) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT format('trace_data.%I', format('d%s_v%s', dataset_num, version)) $$;

-- Runs one statement as trace_transform, the role user SQL runs as: it may
-- read dataset versions and write sql jobs' outputs, nothing else.  USING
-- makes PostgreSQL refuse a string holding more than one statement.
CREATE FUNCTION trace.transform_exec(stmt text, partition_key text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE stmt USING partition_key;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
ALTER FUNCTION trace.transform_exec(text, text) OWNER TO trace_transform;
COMMENT ON FUNCTION trace.transform_exec(text, text) IS
    'Runs one statement of user SQL with the privileges of trace_transform';

-- The columns of a version relation that readers see (not the bookkeeping
-- columns partition_key and producer_task_id), as a select list.
CREATE FUNCTION trace.reader_columns(relation text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
    FROM pg_attribute a
    WHERE a.attrelid = relation::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attname NOT IN ('partition_key', 'producer_task_id')
$$;

-- A sql job's query with each {{dataset}} bound to the job's input
-- version: the placeholder becomes the name of a CTE (the dataset id,
-- quoted, so it can take an alias) over one partition of the input when
-- partitioned (the partition key is $1), over the whole version otherwise.
-- Only relation names are spliced in; the user's text stays one subquery.
CREATE FUNCTION trace.render_query(job_id bigint, query text, partitioned boolean) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    b record;
    ctes text[] := '{}';
    body text := query;
BEGIN
    FOR b IN
        SELECT d.dataset_id, dv.relation
        FROM trace.job_input ji
        JOIN trace.dataset d ON d.dataset_uuid = ji.dataset_uuid
        JOIN trace.dataset_version dv ON dv.dataset_uuid = ji.dataset_uuid AND dv.version = ji.version
        WHERE ji.job_id = render_query.job_id
        ORDER BY d.dataset_id
    LOOP
        ctes := ctes || format('%I AS (SELECT %s FROM %s%s)', b.dataset_id,
                               trace.reader_columns(b.relation), b.relation,
                               CASE WHEN partitioned THEN ' WHERE partition_key = $1' ELSE '' END);
        body := regexp_replace(body,
            '\{\{\s*' || regexp_replace(b.dataset_id, '([^a-zA-Z0-9_ ])', '\\\1', 'g') || '\s*\}\}',
            replace(quote_ident(b.dataset_id), '\', '\\'), 'g');
    END LOOP;
    RETURN format(E'WITH %s\nSELECT * FROM (\n%s\n) user_query', array_to_string(ctes, ', '), body);
END
$$;

-- The columns of the chain tables written by block_follower and
-- range_ingest, whose outputs are, in order: blocks, transactions, logs.
-- Hashes and addresses are bytea, amounts numeric; partition_key is the
-- block number.  NULL for other operators and positions.
CREATE FUNCTION trace.chain_table_columns(operator text, output_index int) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN operator NOT IN ('block_follower', 'range_ingest') THEN NULL
    WHEN output_index = 0 THEN
        'chain_id bigint NOT NULL, block_number bigint NOT NULL, block_hash bytea NOT NULL, '
        'parent_hash bytea NOT NULL, block_timestamp timestamptz NOT NULL, miner bytea, '
        'gas_used numeric, gas_limit numeric, base_fee_per_gas numeric, tx_count int NOT NULL, '
        'log_count int NOT NULL, PRIMARY KEY (chain_id, block_number)'
    WHEN output_index = 1 THEN
        'chain_id bigint NOT NULL, block_number bigint NOT NULL, block_timestamp timestamptz NOT NULL, '
        'tx_index int NOT NULL, tx_hash bytea NOT NULL, from_address bytea NOT NULL, to_address bytea, '
        'value numeric NOT NULL, gas numeric, gas_price numeric, nonce numeric, input bytea, '
        'status smallint, PRIMARY KEY (chain_id, block_number, tx_index)'
    WHEN output_index = 2 THEN
        'chain_id bigint NOT NULL, block_number bigint NOT NULL, block_timestamp timestamptz NOT NULL, '
        'tx_index int NOT NULL, log_index int NOT NULL, tx_hash bytea NOT NULL, address bytea NOT NULL, '
        'topic0 bytea, topic1 bytea, topic2 bytea, topic3 bytea, data bytea, '
        'PRIMARY KEY (chain_id, block_number, log_index)'
    END
$$;
COMMENT ON FUNCTION trace.chain_table_columns(text, int) IS
    'Column definitions of the chain tables (outputs 0, 1, 2 of block_follower and range_ingest: blocks, transactions, logs)';

-- Creates the relation of a new dataset version for its producing job:
-- the chain tables for block_follower and range_ingest; a table
-- (partition_key, producer_task_id, row jsonb) for other operators that
-- write rows; for sql jobs a table shaped by the query, or a view when the
-- job is virtual.  Returns the kind, 'table' or 'view'.
CREATE FUNCTION trace.create_version_relation(j trace.job, relation text, output_index int) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    query text;
BEGIN
    IF j.operator = 'sql' THEN
        query := trace.render_query(j.job_id, j.config->>'query', j.materialize);
        IF NOT j.materialize THEN
            PERFORM trace.transform_exec(format(E'CREATE VIEW %s AS SELECT * FROM (\n%s\n) q', relation, query), NULL);
            EXECUTE format('GRANT SELECT ON %s TO trace_transform, trace_query', relation);
            RETURN 'view';
        END IF;
        PERFORM trace.transform_exec(format(
            E'CREATE TABLE %s AS SELECT NULL::text AS partition_key, NULL::bigint AS producer_task_id, q.* FROM (\n%s\n) q WITH NO DATA',
            relation, replace(query, '$1', 'NULL::text')), NULL);
        EXECUTE format('ALTER TABLE %s ALTER partition_key SET NOT NULL, ALTER producer_task_id SET NOT NULL', relation);
    ELSIF trace.chain_table_columns(j.operator, output_index) IS NOT NULL THEN
        EXECUTE format('CREATE TABLE %s (partition_key text NOT NULL, producer_task_id bigint NOT NULL, %s)',
                       relation, trace.chain_table_columns(j.operator, output_index));
        -- workers COPY into chain tables, fenced by trace.chain_tables
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON %s TO trace_worker', relation);
    ELSE
        EXECUTE format('CREATE TABLE %s (partition_key text NOT NULL, producer_task_id bigint NOT NULL, "row" jsonb NOT NULL)',
                       relation);
    END IF;
    EXECUTE format('CREATE INDEX ON %s (partition_key)', relation);
    EXECUTE format('GRANT SELECT ON %s TO trace_transform, trace_query', relation);
    RETURN 'table';
END
$$;

-- Points the stable view of a dataset at a relation (in the caller's
-- transaction).  The view keeps its name and privileges; when the new
-- version's columns differ it is dropped and made again.
CREATE FUNCTION trace.point_view(dataset_id text, relation text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    definition text := format('SELECT %s FROM %s', trace.reader_columns(relation), relation);
    existed boolean := to_regclass(format('trace_data.%I', dataset_id)) IS NOT NULL;
BEGIN
    BEGIN
        EXECUTE format('CREATE OR REPLACE VIEW trace_data.%I AS %s', dataset_id, definition);
    EXCEPTION WHEN invalid_table_definition OR wrong_object_type OR datatype_mismatch THEN
        EXECUTE format('DROP VIEW trace_data.%I', dataset_id);
        EXECUTE format('CREATE VIEW trace_data.%I AS %s', dataset_id, definition);
        existed := false;
    END;
    -- CREATE OR REPLACE keeps a view's privileges: grant only a new one
    IF NOT existed THEN
        EXECUTE format('GRANT SELECT ON trace_data.%I TO trace_query, trace_transform', dataset_id);
    END IF;
END
$$;

-- Cancels every unfinished task of the given jobs: waiting ones at once,
-- running ones cooperatively.  Returns how many were touched.
CREATE FUNCTION trace.cancel_job_tasks(job_ids bigint[], reason text) RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    waiting bigint[];
    running int;
BEGIN
    SELECT array_agg(task_id) INTO waiting FROM trace.task
    WHERE job_id = ANY (job_ids) AND state <> 'running';
    IF waiting IS NOT NULL THEN
        PERFORM trace.move_to_done(waiting, NULL, NULL,
                                   array_fill('canceled'::text, ARRAY[cardinality(waiting)]),
                                   NULL, array_fill(reason, ARRAY[cardinality(waiting)]));
    END IF;
    UPDATE trace.task SET cancel_requested = true
    WHERE job_id = ANY (job_ids) AND state = 'running' AND NOT cancel_requested;
    GET DIAGNOSTICS running = ROW_COUNT;
    RETURN coalesce(cardinality(waiting), 0) + running;
END
$$;

-- Starts the durable run of a source job when it has none: one long-lived
-- task whose id is the producer id of everything the source emits; a
-- restart of the source is a retry of this task.
CREATE FUNCTION trace.start_source(j trace.job, mode text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM trace.task t WHERE t.job_id = j.job_id) THEN
        PERFORM trace.insert_tasks(j, ARRAY[jsonb_build_object('source_run', true)],
                                   NULL, NULL, 1000, mode);
    END IF;
END
$$;

-- Makes a DAG version's pointer set and job set current, in one
-- transaction: each dataset of the DAG points at the version the set names
-- (or at none), the set's jobs run and every other job of the DAG is
-- retired with its tasks canceled.  Cutover and rollback both call this.
CREATE FUNCTION trace.apply_version(org text, dag text, version int) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    ids text[];
    rels text[];
    retired bigint[];
    j trace.job;
BEGIN
    -- the pointers, set-based: the versions leaving retire, the ones coming
    -- become current, the datasets point at them
    WITH change AS (
        SELECT d.dataset_uuid, d.dataset_id, d.current_version, vd.version AS target, dv.relation
        FROM trace.dataset d
        LEFT JOIN trace.version_dataset vd
               ON vd.dataset_uuid = d.dataset_uuid AND vd.org_id = org AND vd.dag = dag
              AND vd.dag_version = version
        LEFT JOIN trace.dataset_version dv
               ON dv.dataset_uuid = d.dataset_uuid AND dv.version = vd.version
        WHERE d.org_id = org AND d.dag = dag
          AND vd.version IS DISTINCT FROM d.current_version),
    leaving AS (
        UPDATE trace.dataset_version v SET state = 'retired', current_until = now()
        FROM change c WHERE v.dataset_uuid = c.dataset_uuid AND v.version = c.current_version),
    coming AS (
        UPDATE trace.dataset_version v
        SET state = 'current', current_since = now(), current_until = NULL
        FROM change c WHERE v.dataset_uuid = c.dataset_uuid AND v.version = c.target),
    pointed AS (
        UPDATE trace.dataset d SET current_version = c.target
        FROM change c WHERE d.dataset_uuid = c.dataset_uuid)
    SELECT array_agg(c.dataset_id ORDER BY c.dataset_id),
           array_agg(c.relation ORDER BY c.dataset_id)
    INTO ids, rels
    FROM change c;
    -- the stable names follow (a dataset the version lacks loses its view)
    FOR i IN 1 .. coalesce(cardinality(ids), 0) LOOP
        IF rels[i] IS NULL THEN
            EXECUTE format('DROP VIEW IF EXISTS trace_data.%I', ids[i]);
        ELSE
            PERFORM trace.point_view(ids[i], rels[i]);
        END IF;
    END LOOP;

    -- the set's jobs run live from now on
    WITH activated AS (
        UPDATE trace.job SET state = 'active'
        WHERE job_id IN (SELECT vj.job_id FROM trace.version_job vj
                         WHERE vj.org_id = org AND vj.dag = dag AND vj.dag_version = version)
          AND state <> 'active'
        RETURNING job_id)
    UPDATE trace.task SET mode = 'live' WHERE task.job_id IN (SELECT job_id FROM activated);
    WITH gone AS (
        UPDATE trace.job SET state = 'retired'
        WHERE job.org_id = org AND job.dag = dag AND job.state <> 'retired'
          AND job_id NOT IN (SELECT vj.job_id FROM trace.version_job vj
                             WHERE vj.org_id = org AND vj.dag = dag AND vj.dag_version = version)
        RETURNING job_id)
    SELECT array_agg(job_id) INTO retired FROM gone;
    IF retired IS NOT NULL THEN
        PERFORM trace.cancel_job_tasks(retired, format('retired by version %s of DAG %s', version, dag));
        DELETE FROM trace.cron_state WHERE job_id = ANY (retired);
    END IF;

    -- the version's execution-only settings (a rollback restores them too)
    PERFORM trace.apply_execution(array_agg(x.job_id), array_agg(m.job))
    FROM trace.job x
    JOIN trace.dag_version v ON v.org_id = org AND v.dag = dag AND v.version = version
    CROSS JOIN LATERAL jsonb_array_elements(v.model->'jobs') m(job)
    WHERE x.org_id = org AND x.dag = dag AND x.state = 'active' AND m.job->>'name' = x.name;

    -- active sources run; active schedules are armed
    FOR j IN SELECT * FROM trace.job
             WHERE job.org_id = org AND job.dag = dag AND job.state = 'active'
               AND job.activation = 'source' LOOP
        PERFORM trace.start_source(j, 'live');
    END LOOP;
    INSERT INTO trace.cron_state (job_id, next_slot)
    SELECT job.job_id, trace.cron_next(job.trigger->>'cron', job.trigger->>'timezone', now())
    FROM trace.job
    WHERE job.org_id = org AND job.dag = dag AND job.state = 'active' AND job.trigger IS NOT NULL
    ON CONFLICT (job_id) DO NOTHING;

    -- a first activation remembers the version it replaced: a rollback's target
    UPDATE trace.dag_version v
    SET replaced_version = (SELECT d.active_version FROM trace.dag d WHERE d.org_id = org AND d.dag = dag)
    WHERE v.org_id = org AND v.dag = dag AND v.version = version AND v.activated_at IS NULL;
    UPDATE trace.dag_version v SET state = 'superseded'
    WHERE v.org_id = org AND v.dag = dag AND v.state = 'active' AND v.version <> version;
    UPDATE trace.dag_version v SET state = 'active', activated_at = coalesce(v.activated_at, now())
    WHERE v.org_id = org AND v.dag = dag AND v.version = version;
    UPDATE trace.dag d SET active_version = version WHERE d.org_id = org AND d.dag = dag;
END
$$;
COMMENT ON FUNCTION trace.apply_version(text, text, int) IS
    'Makes a DAG version''s pointer set and job set current in the caller''s transaction (cutover and rollback)';

-- Why a building version cannot cut over yet, or NULL when it has caught
-- up: every new job has run every task it was given (history replayed and
-- events since), none failed for good, and every new source has reached
-- the cursor of the source it replaces.
CREATE FUNCTION trace.version_blocker(org text, dag text, version int) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    why text;
BEGIN
    SELECT format('task %s of job %s failed: %s', d.task_id, j.name, d.error) INTO why
    FROM trace.job j JOIN trace.task_done d ON d.job_id = j.job_id
    WHERE j.org_id = org AND j.dag = dag AND j.dag_version = version AND j.state = 'building'
      AND d.state = 'failed'
    LIMIT 1;
    IF why IS NOT NULL THEN
        RETURN why;
    END IF;
    SELECT format('job %s has %s task(s) to run', j.name, count(*)) INTO why
    FROM trace.job j JOIN trace.task t ON t.job_id = j.job_id
    WHERE j.org_id = org AND j.dag = dag AND j.dag_version = version AND j.state = 'building'
      AND j.activation <> 'source'
    GROUP BY j.name
    LIMIT 1;
    IF why IS NOT NULL THEN
        RETURN why;
    END IF;
    SELECT format('source %s is at cursor %s, behind %s', j.name, coalesce(mine.c::text, 'none'), live.c)
    INTO why
    FROM trace.job j
    JOIN trace.job a ON a.org_id = j.org_id AND a.dag = j.dag AND a.name = j.name AND a.state = 'active'
    CROSS JOIN LATERAL (SELECT trace.source_cursor(j.job_id) AS c) mine
    CROSS JOIN LATERAL (SELECT trace.source_cursor(a.job_id) AS c) live
    WHERE j.org_id = org AND j.dag = dag AND j.dag_version = version AND j.state = 'building'
      AND j.activation = 'source' AND live.c IS NOT NULL AND (mine.c IS NULL OR mine.c < live.c)
    LIMIT 1;
    RETURN why;
END
$$;
COMMENT ON FUNCTION trace.version_blocker(text, text, int) IS
    'Why a building DAG version has not caught up yet; NULL when it may cut over';

-- How far a source has emitted: the highest block number among its event
-- keys ("<n>" or "<n>:<hash>"; retractions left out), NULL before any.
CREATE FUNCTION trace.source_cursor(job_id bigint) RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT max(split_part(e.partition_key, ':', 1)::numeric)
    FROM trace.task_ids_of(source_cursor.job_id) s
    JOIN trace.event e ON e.producer_task_id = s.task_id
    WHERE e.partition_key ~ '^[0-9]+(:[0-9a-fA-Fx]+)?$'
$$;

-- Every task id of a job, active or finished.
CREATE FUNCTION trace.task_ids_of(job_id bigint) RETURNS TABLE (task_id bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.task_id FROM trace.task t WHERE t.job_id = task_ids_of.job_id
    UNION ALL
    SELECT d.task_id FROM trace.task_done d WHERE d.job_id = task_ids_of.job_id
$$;

-- Abandons a building version: its new jobs retire (tasks canceled), its
-- new dataset versions are discarded and never become current.
CREATE FUNCTION trace.discard_version(org text, dag text, version int) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    building bigint[];
BEGIN
    WITH gone AS (
        UPDATE trace.job SET state = 'retired'
        WHERE job.org_id = org AND job.dag = dag AND job.dag_version = version
          AND job.state = 'building'
        RETURNING job_id)
    SELECT array_agg(job_id) INTO building FROM gone;
    IF building IS NOT NULL THEN
        PERFORM trace.cancel_job_tasks(building, format('version %s of DAG %s was discarded', version, dag));
    END IF;
    UPDATE trace.dataset_version dv SET state = 'discarded'
    WHERE dv.org_id = org AND dv.dag_version = version AND dv.state = 'building'
      AND dv.dataset_uuid IN (SELECT d.dataset_uuid FROM trace.dataset d
                              WHERE d.org_id = org AND d.dag = dag);
    UPDATE trace.dag_version v SET state = 'rolled_back'
    WHERE v.org_id = org AND v.dag = dag AND v.version = version;
END
$$;

-- Takes the per-DAG lock that serializes deploy, cutover and rollback.
-- (The caller bounds its own wait for readers' locks: a GUC set here would
-- be undone when this function returns.)
CREATE FUNCTION trace.lock_dag(org text, dag text, wait boolean) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key bigint := hashtextextended('trace.deploy:' || org || ':' || dag, 0);
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(key);
        RETURN true;
    END IF;
    RETURN pg_try_advisory_xact_lock(key);
END
$$;

-- The dispatcher's cutover step: every building version that has caught
-- up is made current.  A cutover that cannot get its locks in time is left
-- for the next pass.  Returns how many versions were cut over.
CREATE FUNCTION trace.cutover_ready(max_versions int DEFAULT 100) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v record;
    n int := 0;
BEGIN
    FOR v IN SELECT org_id, dag, version FROM trace.dag_version
             WHERE state = 'building' ORDER BY created_at LIMIT max_versions LOOP
        CONTINUE WHEN trace.version_blocker(v.org_id, v.dag, v.version) IS NOT NULL;
        BEGIN
            CONTINUE WHEN NOT trace.lock_dag(v.org_id, v.dag, false);
            -- wait for readers' locks at most this long (until this function returns)
            PERFORM set_config('lock_timeout', current_setting('trace.cutover_lock_timeout'), true);
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM trace.dag_version dv
                                      WHERE dv.org_id = v.org_id AND dv.dag = v.dag
                                        AND dv.version = v.version AND dv.state = 'building');
            PERFORM trace.apply_version(v.org_id, v.dag, v.version);
            RAISE LOG 'trace: cut over DAG % to version %', v.dag, v.version;
            n := n + 1;
        EXCEPTION WHEN lock_not_available THEN
            RAISE LOG 'trace: cutover of DAG % version % waits for readers; will retry', v.dag, v.version;
        END;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.cutover_ready(int) IS
    'Cuts over every building DAG version that has caught up; returns how many';

-- Rolls a DAG back in one transaction.  During a rebuild: the building
-- version is discarded and the active one stays.  Otherwise: the version the
-- active one replaced (or to_version) becomes active again with its pointer set and
-- jobs; the rolled-back version's jobs stop, queued tasks are canceled and
-- running ones see 'canceled' at their next heartbeat.
CREATE FUNCTION trace.rollback_dag(dag text, to_version int DEFAULT NULL)
RETURNS TABLE (dag_name text, active_version int, rolled_back_version int)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    org text := trace.caller_org();
    active int;
    building int;
    target int;
BEGIN
    PERFORM trace.require_arg(dag IS NULL, 'dag');
    PERFORM trace.lock_dag(org, dag, true);
    -- wait for readers' locks at most this long (until this function returns)
    PERFORM set_config('lock_timeout', current_setting('trace.cutover_lock_timeout'), true);
    SELECT d.active_version INTO active FROM trace.dag d WHERE d.org_id = org AND d.dag = dag FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'DAG "%" does not exist', dag USING ERRCODE = 'TR012';
    END IF;
    SELECT v.version INTO building FROM trace.dag_version v
    WHERE v.org_id = org AND v.dag = dag AND v.state = 'building';
    IF building IS NOT NULL AND to_version IS NULL THEN
        PERFORM trace.discard_version(org, dag, building);
        RETURN QUERY SELECT dag, active, building;
        RETURN;
    END IF;
    IF to_version IS NULL THEN
        SELECT v.replaced_version INTO target FROM trace.dag_version v
        WHERE v.org_id = org AND v.dag = dag AND v.version = active;
        IF target IS NULL THEN
            RAISE EXCEPTION 'DAG "%" has no earlier version to roll back to', dag
                USING ERRCODE = 'TR013', HINT = 'Version ' || active || ' is its first active version.';
        END IF;
    ELSE
        target := to_version;
        IF NOT EXISTS (SELECT 1 FROM trace.dag_version v
                       WHERE v.org_id = org AND v.dag = dag AND v.version = target
                         AND v.state = 'superseded' AND v.version < active) THEN
            RAISE EXCEPTION 'cannot roll DAG "%" back to version %', dag, to_version
                USING ERRCODE = 'TR013',
                      HINT = format('Roll back to an earlier version that was active and was not rolled back (the active one is %s).', active);
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM trace.version_dataset vd
               JOIN trace.dataset_version dv USING (dataset_uuid, version)
               WHERE vd.org_id = org AND vd.dag = dag AND vd.dag_version = target
                 AND dv.state = 'dropped') THEN
        RAISE EXCEPTION 'cannot roll DAG "%" back to version %: its data was dropped by retention', dag, target
            USING ERRCODE = 'TR013';
    END IF;
    IF building IS NOT NULL THEN
        PERFORM trace.discard_version(org, dag, building);
    END IF;
    PERFORM trace.apply_version(org, dag, target);
    UPDATE trace.dag_version v SET state = 'rolled_back'
    WHERE v.org_id = org AND v.dag = dag AND v.version > target AND v.state = 'superseded';
    RETURN QUERY SELECT dag, target, active;
END
$$;
COMMENT ON FUNCTION trace.rollback_dag(text, int) IS
    'Rolls a DAG back in one transaction (discards a running rebuild, or restores the previous version); returns the now active and the rolled-back version';

-- Retention of dataset versions: drops the relations of discarded versions,
-- and of retired ones past trace.version_retention that are not among the
-- trace.versions_kept newest retired versions of their dataset.  Never the
-- current one.  Returns how many relations were dropped.
CREATE FUNCTION trace.drop_old_versions() RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '500ms'
AS $$
DECLARE
    v record;
    n int := 0;
BEGIN
    FOR v IN
        SELECT dv.dataset_uuid, dv.version, dv.relation, dv.kind
        FROM trace.dataset_version dv
        WHERE dv.state = 'discarded'
           OR (dv.state = 'retired'
               AND dv.current_until < now() - current_setting('trace.version_retention')::interval
               AND dv.version NOT IN (SELECT r.version FROM trace.dataset_version r
                                      WHERE r.dataset_uuid = dv.dataset_uuid AND r.state = 'retired'
                                      ORDER BY r.version DESC
                                      LIMIT current_setting('trace.versions_kept')::int))
        ORDER BY dv.kind = 'table', dv.version DESC
    LOOP
        BEGIN
            EXECUTE format('DROP %s IF EXISTS %s', CASE v.kind WHEN 'view' THEN 'VIEW' ELSE 'TABLE' END,
                           v.relation);
            UPDATE trace.dataset_version SET state = 'dropped'
            WHERE dataset_uuid = v.dataset_uuid AND version = v.version;
            DELETE FROM trace.dataset_partition
            WHERE dataset_uuid = v.dataset_uuid AND version = v.version;
            n := n + 1;
        EXCEPTION WHEN lock_not_available OR dependent_objects_still_exist THEN
            RAISE LOG 'trace: could not drop %, will retry', v.relation;
        END;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.drop_old_versions() IS
    'Drops the relations of discarded dataset versions and of retired ones past retention';

-- The versions of a dataset, newest first, with what each holds.
CREATE FUNCTION trace.dataset_versions(dataset_id text)
RETURNS TABLE (version int, state text, dag_version int, job text, relation text,
               partitions bigint, row_count numeric, created_at timestamptz,
               current_since timestamptz, current_until timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT dv.version, dv.state, dv.dag_version, j.name, dv.relation,
           (SELECT count(*) FROM trace.dataset_partition p
            WHERE p.dataset_uuid = dv.dataset_uuid AND p.version = dv.version),
           (SELECT coalesce(sum(p.row_count), 0) FROM trace.dataset_partition p
            WHERE p.dataset_uuid = dv.dataset_uuid AND p.version = dv.version),
           dv.created_at, dv.current_since, dv.current_until
    FROM trace.dataset d
    JOIN trace.dataset_version dv ON dv.dataset_uuid = d.dataset_uuid
    JOIN trace.job j ON j.job_id = dv.job_id
    WHERE d.dataset_id = dataset_versions.dataset_id AND d.org_id = trace.caller_org()
    ORDER BY dv.version DESC
$$;
COMMENT ON FUNCTION trace.dataset_versions(text) IS
    'The history of a dataset: every version, its state, producer, relation and contents';

-- The pointer set: every dataset and its current version.
CREATE FUNCTION trace.current_versions()
RETURNS TABLE (dataset_id text, dag text, version int, relation text, current_since timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.dataset_id, d.dag, d.current_version, dv.relation, dv.current_since
    FROM trace.dataset d
    JOIN trace.dataset_version dv ON dv.dataset_uuid = d.dataset_uuid AND dv.version = d.current_version
    WHERE d.org_id = trace.caller_org()
    ORDER BY d.dataset_id
$$;
COMMENT ON FUNCTION trace.current_versions() IS 'Every dataset of your org and its current version';
