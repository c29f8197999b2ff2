-- Rollback: one call back to the previous pointer set.
--
-- During a rebuild it discards the building version; otherwise it re-applies
-- the version the active one replaced (apply_version, 84_cutover.sql) and
-- cancels the rolled-back version's tasks.  One transaction either way.

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
