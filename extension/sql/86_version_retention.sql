-- Retention of dataset versions, and reading the version history.
--
-- Discarded versions and retired ones past trace.version_retention (keeping
-- trace.versions_kept per dataset) are dropped in the background; the
-- current version never is.

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
