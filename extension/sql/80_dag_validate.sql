-- DAG validation: what a deploy checks before anything is written.
--
-- trace.parse_dag (C) loads and checks the YAML (positions, types, names,
-- cycles, per-operator arity); the functions here add the checks only the
-- database can make (inputs no DAG produces, outputs another DAG or org
-- owns) and report every problem in file order.

CREATE FUNCTION trace.parse_dag(yaml text) RETURNS jsonb
LANGUAGE C IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'trace_parse_dag';
COMMENT ON FUNCTION trace.parse_dag(text) IS
    'Loads a DAG YAML: {"model": ..., "problems": [...]}; the model only when there is no error';

-- Problems only the database can see: inputs that no DAG produces, outputs
-- another DAG owns, dataset ids taken by another org.
CREATE FUNCTION trace.validate_model(model jsonb, org text)
RETURNS TABLE (severity text, path text, line int, col int, message text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH jobs AS (
        SELECT j FROM jsonb_array_elements(model->'jobs') j
    ), produced AS (
        SELECT o->>'dataset' AS dataset FROM jobs, jsonb_array_elements(j->'outputs') o
    )
    SELECT 'error', format('jobs.%s.inputs[%s]', j->>'name', i.ord - 1),
           (i.v->>'line')::int, (i.v->>'col')::int,
           format('input "%s" is produced by no job of this DAG and by no deployed DAG',
                  i.v->>'dataset')
    FROM jobs, jsonb_array_elements(j->'inputs') WITH ORDINALITY i(v, ord)
    WHERE NOT EXISTS (SELECT 1 FROM produced p WHERE p.dataset = i.v->>'dataset')
      AND NOT EXISTS (SELECT 1 FROM trace.dataset d
                      WHERE d.dataset_id = i.v->>'dataset' AND d.org_id = org
                        AND d.current_version IS NOT NULL)
    UNION ALL
    SELECT 'error', format('jobs.%s.outputs[%s]', j->>'name', o.ord - 1),
           (o.v->>'line')::int, (o.v->>'col')::int,
           CASE WHEN d.org_id <> org
                THEN format('dataset id "%s" is taken', d.dataset_id)
                ELSE format('dataset "%s" is produced by DAG "%s"; a dataset has one producing DAG',
                            d.dataset_id, d.dag) END
    FROM jobs, jsonb_array_elements(j->'outputs') WITH ORDINALITY o(v, ord)
    JOIN trace.dataset d ON d.dataset_id = o.v->>'dataset'
    WHERE d.org_id <> org OR d.dag <> model->>'dag'
    UNION ALL
    -- integrity_check reads chain tables: a blocks table must be an input
    SELECT 'error', format('jobs.%s.inputs', j->>'name'), (j->>'line')::int, (j->>'col')::int,
           format('job "%s" (integrity_check) needs a blocks table among its inputs: output 0 of a block_follower or range_ingest job',
                  j->>'name')
    FROM jobs
    WHERE j->>'operator' = 'integrity_check'
      AND NOT EXISTS (
          SELECT 1 FROM jsonb_array_elements(j->'inputs') i
          WHERE EXISTS (SELECT 1 FROM jobs p
                        WHERE p.j->>'operator' IN ('block_follower', 'range_ingest')
                          AND p.j->'outputs'->0->>'dataset' = i->>'dataset')
             OR EXISTS (SELECT 1 FROM trace.dataset d
                        JOIN trace.dataset_version dv
                          ON dv.dataset_uuid = d.dataset_uuid AND dv.version = d.current_version
                        JOIN pg_attribute a ON a.attrelid = to_regclass(dv.relation)
                                           AND a.attname = 'block_hash'
                        WHERE d.dataset_id = i->>'dataset' AND d.org_id = org))
$$;
COMMENT ON FUNCTION trace.validate_model(jsonb, text) IS
    'The DAG checks that need the database: inputs produced nowhere, outputs owned by another DAG';

-- Lists every problem of a DAG file, in file order.
CREATE FUNCTION trace.validate_dag(yaml text)
RETURNS TABLE (severity text, path text, line int, col int, message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parsed jsonb;
BEGIN
    PERFORM trace.require_arg(yaml IS NULL, 'yaml');
    parsed := trace.parse_dag(yaml);
    RETURN QUERY
    SELECT * FROM (
        SELECT p->>'severity', p->>'path', (p->>'line')::int, (p->>'col')::int, p->>'message'
        FROM jsonb_array_elements(parsed->'problems') p
        UNION ALL
        SELECT * FROM trace.validate_model(parsed->'model', trace.caller_org())
        WHERE parsed->'model' <> 'null'::jsonb
    ) all_problems(severity, path, line, col, message)
    ORDER BY 3, 4, 2;
END
$$;
COMMENT ON FUNCTION trace.validate_dag(text) IS
    'Every problem of a DAG file: severity, path (jobs.x.config.y), line, column and message';
