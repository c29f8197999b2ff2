-- Operators of the dispatcher runtime: aggregator, splitter, sql (and noop).
--
-- They run inside the dispatcher, through the same claim path, leases and
-- retries as any task.  Each task runs in a subtransaction together with its
-- completion: its effects (state, rows, events) and its completion commit
-- together or not at all, and a failing task fails alone.

-- Runs up to max_tasks dispatcher-runtime tasks of every org; returns how
-- many ran.
CREATE FUNCTION trace.run_dispatcher_tasks(max_tasks int DEFAULT 100) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    org text;
    c record;
    n int := 0;
    msg text;
    code text;
BEGIN
    PERFORM trace.require_arg(max_tasks IS NULL, 'max_tasks');
    FOR org IN SELECT DISTINCT t.org_id FROM trace.task t
               WHERE t.state = 'queued' AND t.runtime = 'dispatcher' LOOP
        FOR c IN SELECT * FROM trace.claim(org, 'trace dispatcher', ARRAY['dispatcher'],
                                           max_tasks - n, '5 minutes') LOOP
            BEGIN
                msg := trace.run_operator(c.task_id, c.attempt, c.lease_token);
                IF msg IS NULL THEN
                    PERFORM trace.complete_task(c.task_id, c.attempt, c.lease_token, NULL);
                ELSE
                    -- a verdict, not an accident: keep the effects, fail for good
                    PERFORM trace.fail_task(c.task_id, c.attempt, c.lease_token, msg, retryable => false);
                END IF;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
                -- input the operator cannot use will not get better on retry
                PERFORM trace.fail_task(c.task_id, c.attempt, c.lease_token,
                                        format('%s (SQLSTATE %s)', msg, code),
                                        retryable => code NOT LIKE 'TR02_' AND code NOT LIKE '22___');
            END;
            n := n + 1;
        END LOOP;
        EXIT WHEN n >= max_tasks;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION trace.run_dispatcher_tasks(int) IS
    'Claims and runs tasks of the dispatcher runtime (aggregator, splitter, sql); returns how many ran';

-- Runs one dispatcher-runtime task's operator.  Returns NULL when the task
-- succeeded, or the reason it fails although its effects stand (an
-- integrity check that found violations keeps its report).
CREATE FUNCTION trace.run_operator(task_id bigint, attempt int, lease_token uuid) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    t trace.task := trace.lease_holder(task_id, attempt, lease_token);
    j trace.job;
BEGIN
    SELECT * INTO j FROM trace.job WHERE job.job_id = t.job_id;
    CASE j.operator
        WHEN 'aggregator' THEN PERFORM trace.op_aggregator(t, j);
        WHEN 'splitter' THEN PERFORM trace.op_splitter(t, j);
        WHEN 'sql' THEN PERFORM trace.op_sql(t, j);
        WHEN 'integrity_check' THEN RETURN trace.op_integrity_check(t, j);
        WHEN 'noop' THEN NULL;
        ELSE
            RAISE EXCEPTION 'operator % does not run on the dispatcher runtime', j.operator
                USING ERRCODE = 'TR020';
    END CASE;
    RETURN NULL;
END
$$;

-- The single output dataset id of a job (aggregator, splitter, sql).
CREATE FUNCTION trace.only_output(job_id bigint) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.dataset_id FROM trace.job_output jo JOIN trace.dataset d USING (dataset_uuid)
    WHERE jo.job_id = only_output.job_id
$$;

-- Aggregator: counts distinct units (the config cursor of each event) per
-- batch [origin + k*size, origin + (k+1)*size) and, when a batch is full,
-- emits its manifest once: partition "<from>-<to>", payload {cursor, from,
-- to, units}.  Counting distinct units makes it independent of arrival
-- order; a unit seen again (a re-delivery, or a block re-emitted after a
-- reorg) and a retraction change nothing, and a batch is never emitted
-- twice.  The manifest names boundaries only, so it stays true when the
-- blocks inside are replaced by a reorg.
CREATE FUNCTION trace.op_aggregator(t trace.task, j trace.job) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cursor_name text := j.config->>'cursor';
    size numeric := (j.config->>'size')::numeric;
    origin numeric := coalesce((j.config->>'origin')::numeric, 0);
    raw text := t.payload->>cursor_name;
    unit numeric;
    first_unit numeric;
    batch trace.aggregator_batch;
    manifest jsonb;
    key text;
    output text := trace.only_output(j.job_id);
BEGIN
    IF t.payload->>'retracted' = 'true' THEN
        RETURN;
    END IF;
    IF raw IS NULL OR raw !~ '^-?[0-9]+$' THEN
        RAISE EXCEPTION 'event % has no integer "%" to aggregate on', t.event_id, cursor_name
            USING ERRCODE = 'TR022', HINT = 'The aggregator''s config.cursor names a field of its input events.';
    END IF;
    unit := raw::numeric;
    first_unit := origin + floor((unit - origin) / size) * size;
    SELECT * INTO batch FROM trace.aggregator_batch b
    WHERE b.job_id = j.job_id AND b.batch_start = first_unit;
    IF batch.closed_at IS NOT NULL THEN
        RETURN;
    END IF;
    INSERT INTO trace.aggregator_unit VALUES (j.job_id, first_unit, unit) ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO trace.aggregator_batch AS b (job_id, batch_start, batch_end, units)
    VALUES (j.job_id, first_unit, first_unit + size, 1)
    ON CONFLICT (job_id, batch_start) DO UPDATE SET units = b.units + 1
    RETURNING * INTO batch;
    IF batch.units < size THEN
        RETURN;
    END IF;
    manifest := jsonb_build_object('cursor', cursor_name, 'from', batch.batch_start,
                                   'to', batch.batch_end, 'units', batch.units);
    key := format('%s-%s', batch.batch_start, batch.batch_end);
    PERFORM trace.write_rows(t.task_id, t.attempt, t.lease_token, output, key, jsonb_build_array(manifest));
    UPDATE trace.aggregator_batch b
    SET event_id = trace.emit_event(t.task_id, t.attempt, t.lease_token, output, key, manifest),
        closed_at = now()
    WHERE b.job_id = j.job_id AND b.batch_start = batch.batch_start;
    DELETE FROM trace.aggregator_unit u WHERE u.job_id = j.job_id AND u.batch_start = batch.batch_start;
END
$$;

-- Splitter: the inverse of the aggregator.  A manifest {from, to} becomes
-- one event per unit (or per sub-range of config.size units), each with
-- payload {<cursor>: start, from, to}, and one row per event.
CREATE FUNCTION trace.op_splitter(t trace.task, j trace.job) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cursor_name text := j.config->>'cursor';
    size numeric := coalesce((j.config->>'size')::numeric, 1);
    low text := t.payload->>'from';
    high text := t.payload->>'to';
    output text := trace.only_output(j.job_id);
    start numeric;
    piece jsonb;
    key text;
BEGIN
    IF low !~ '^-?[0-9]+$' OR high !~ '^-?[0-9]+$' OR low::numeric > high::numeric THEN
        RAISE EXCEPTION 'event % is not a manifest with integer "from" <= "to"', t.event_id
            USING ERRCODE = 'TR022';
    END IF;
    IF (high::numeric - low::numeric) / size > 100000 THEN
        RAISE EXCEPTION 'manifest [%, %) splits into more than 100000 pieces of %', low, high, size
            USING ERRCODE = 'TR022', HINT = 'Raise the splitter''s config.size.';
    END IF;
    start := low::numeric;
    WHILE start < high::numeric LOOP
        piece := jsonb_build_object(cursor_name, start, 'from', start,
                                    'to', least(start + size, high::numeric));
        key := CASE WHEN size = 1 THEN start::text
                    ELSE format('%s-%s', start, least(start + size, high::numeric)) END;
        PERFORM trace.write_rows(t.task_id, t.attempt, t.lease_token, output, key, jsonb_build_array(piece));
        PERFORM trace.emit_event(t.task_id, t.attempt, t.lease_token, output, key, piece);
        start := start + size;
    END LOOP;
END
$$;

-- sql: a materialized job recomputes the partition its input event names
-- (each {{input}} reads that partition of the input) and replaces that
-- partition of its output; a virtual job is a view and only passes the
-- event on.  Either way downstream jobs get an event for the partition.
CREATE FUNCTION trace.op_sql(t trace.task, j trace.job) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key text := (SELECT e.partition_key FROM trace.event e WHERE e.event_id = t.event_id);
    output text := trace.only_output(j.job_id);
    binding record := trace.output_binding(j.job_id, output);
    n bigint := 0;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'a sql job runs for an input event; task % has none', t.task_id
            USING ERRCODE = 'TR022', HINT = 'Trigger sql jobs through their inputs, not by hand.';
    END IF;
    IF binding.kind = 'table' THEN
        EXECUTE format('DELETE FROM %s WHERE partition_key = $1', binding.relation) USING key;
        n := trace.transform_exec(format(E'INSERT INTO %s SELECT $1, %s, q.* FROM (\n%s\n) q',
                                         binding.relation, t.task_id,
                                         trace.render_query(j.job_id, j.config->>'query', true)), key);
        INSERT INTO trace.dataset_partition AS p (dataset_uuid, version, partition_key, row_count,
                                                  producer_task_id)
        VALUES (binding.dataset_uuid, binding.version, key, n, t.task_id)
        ON CONFLICT ON CONSTRAINT dataset_partition_pkey
        DO UPDATE SET row_count = excluded.row_count, producer_task_id = excluded.producer_task_id,
                      written_at = now();
    END IF;
    PERFORM trace.emit_event(t.task_id, t.attempt, t.lease_token, output, key,
                             jsonb_build_object('partition_key', key, 'rows', n));
END
$$;

-- The current relation of the chain table among a job's inputs that has
-- the given column (block_hash: blocks, tx_hash without log_index:
-- transactions, log_index: logs); NULL when there is none.
CREATE FUNCTION trace.chain_input(job_id bigint, has_column text, lacks_column text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT dv.relation
    FROM trace.job_input ji
    JOIN trace.dataset_version dv ON dv.dataset_uuid = ji.dataset_uuid AND dv.version = ji.version
    WHERE ji.job_id = chain_input.job_id
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = dv.relation::regclass
                  AND a.attname = has_column AND NOT a.attisdropped)
      AND (lacks_column IS NULL OR NOT EXISTS (
              SELECT 1 FROM pg_attribute a WHERE a.attrelid = dv.relation::regclass
              AND a.attname = lacks_column AND NOT a.attisdropped))
    ORDER BY dv.relation LIMIT 1
$$;

-- Blocks from `low` on whose count column (tx_count, log_count) differs
-- from the rows of `rows_table` in them, as integrity violations.
CREATE FUNCTION trace.count_mismatches(check_name text, blocks text, count_column text,
                                       rows_table text, low bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v jsonb;
BEGIN
    EXECUTE format($q$
        SELECT coalesce(jsonb_agg(jsonb_build_object('check', %L, 'block', b.block_number,
                                                     'expected', b.%I, 'found', coalesce(c.n, 0))), '[]')
        FROM %s b LEFT JOIN (SELECT chain_id, block_number, count(*) AS n FROM %s
                             WHERE block_number >= $1 GROUP BY 1, 2) c
               ON c.chain_id = b.chain_id AND c.block_number = b.block_number
        WHERE b.block_number >= $1 AND b.%I <> coalesce(c.n, 0)$q$,
        check_name, count_column, blocks, rows_table, count_column) INTO v USING low;
    RETURN v;
END
$$;

-- integrity_check: checks the chain tables among its inputs over the last
-- config.window blocks (all by default): gaps in block numbers, the hash
-- chain (each parent_hash is the previous block's hash), transaction and
-- log counts against each block's tx_count and log_count, and duplicate
-- transaction hashes.  Writes one trace.integrity_report row per run and
-- returns NULL when clean, else the violations in one line (the task then
-- fails for good, with an outbox notice: alert-able).
CREATE FUNCTION trace.op_integrity_check(t trace.task, j trace.job) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    checks jsonb := coalesce(j.config->'checks', '["gaps", "hash_chain", "tx_counts", "log_counts", "duplicates"]');
    blocks text := trace.chain_input(j.job_id, 'block_hash');
    txs text := trace.chain_input(j.job_id, 'tx_hash', 'log_index');
    logs text := trace.chain_input(j.job_id, 'log_index');
    low bigint;
    high bigint;
    n bigint;
    found jsonb := '[]';
    v jsonb;
BEGIN
    IF blocks IS NULL THEN
        RAISE EXCEPTION 'integrity_check needs a blocks table (from block_follower or range_ingest) among its inputs'
            USING ERRCODE = 'TR022';
    END IF;
    EXECUTE format('SELECT max(block_number), count(*) FROM %s', blocks) INTO high, n;
    low := CASE WHEN j.config ? 'window' THEN high - (j.config->>'window')::bigint + 1 END;
    EXECUTE format('SELECT min(block_number), count(*) FROM %s WHERE block_number >= coalesce($1, block_number)', blocks)
        INTO low, n USING low;

    IF checks ? 'gaps' THEN
        EXECUTE format($q$
            SELECT jsonb_agg(jsonb_build_object('check', 'gaps', 'after_block', prev, 'next_block', block_number))
            FROM (SELECT block_number, lag(block_number) OVER (PARTITION BY chain_id ORDER BY block_number) AS prev
                  FROM %s WHERE block_number >= $1) b
            WHERE block_number <> prev + 1$q$, blocks) INTO v USING low;
        found := found || coalesce(v, '[]');
    END IF;
    IF checks ? 'hash_chain' THEN
        EXECUTE format($q$
            SELECT jsonb_agg(jsonb_build_object('check', 'hash_chain', 'block', b.block_number))
            FROM %1$s b JOIN %1$s p ON p.chain_id = b.chain_id AND p.block_number = b.block_number - 1
            WHERE b.block_number > $1 AND b.parent_hash <> p.block_hash$q$, blocks) INTO v USING low;
        found := found || coalesce(v, '[]');
    END IF;
    IF checks ? 'tx_counts' AND txs IS NOT NULL THEN
        found := found || trace.count_mismatches('tx_counts', blocks, 'tx_count', txs, low);
    END IF;
    IF checks ? 'log_counts' AND logs IS NOT NULL THEN
        found := found || trace.count_mismatches('log_counts', blocks, 'log_count', logs, low);
    END IF;
    IF checks ? 'duplicates' AND txs IS NOT NULL THEN
        EXECUTE format($q$
            SELECT jsonb_agg(jsonb_build_object('check', 'duplicates', 'tx_hash', '0x' || encode(tx_hash, 'hex'),
                                                'copies', n))
            FROM (SELECT tx_hash, count(*) AS n FROM %s WHERE block_number >= $1
                  GROUP BY chain_id, tx_hash HAVING count(*) > 1) d$q$, txs) INTO v USING low;
        found := found || coalesce(v, '[]');
    END IF;

    INSERT INTO trace.integrity_report (org_id, job_id, task_id, from_block, to_block, blocks, ok, violations)
    VALUES (t.org_id, j.job_id, t.task_id, low, high, n, jsonb_array_length(found) = 0, found);
    IF jsonb_array_length(found) = 0 THEN
        RETURN NULL;
    END IF;
    RETURN format('integrity check found %s violation(s) in blocks %s..%s: %s',
                  jsonb_array_length(found), low, high, left(found::text, 500));
END
$$;
COMMENT ON FUNCTION trace.op_integrity_check(trace.task, trace.job) IS
    'Checks chain tables for gaps, broken hash chains, wrong counts and duplicates; reports every run';
