-- Dataset versions: their relations and the stable views over them.
--
-- Every dataset version has its own relation, trace_data.d<N>_v<M>.  Readers
-- use the stable view trace_data."<dataset_id>", which selects from the
-- current version's relation; a statement resolves the view once, when it
-- starts, so it reads exactly one version of each dataset whatever commits
-- meanwhile.  User SQL (sql jobs) is rendered here with its inputs bound to
-- version relations and run as trace_transform.

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
