-- Installing trace: the extension, its security posture, and a test helper.
CREATE EXTENSION trace;

-- The extension is not relocatable and lives in schema trace.
SELECT extname, extrelocatable, extnamespace::regnamespace
FROM pg_extension WHERE extname = 'trace';

-- Every function of the extension pins search_path: zero offenders.
SELECT p.oid::regprocedure AS offender
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'trace'
WHERE NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');

-- No function is executable by PUBLIC.
SELECT p.oid::regprocedure AS public_executable
FROM pg_proc p
WHERE p.pronamespace = 'trace'::regnamespace
  AND has_function_privilege('public', p.oid, 'EXECUTE');

-- No component role can write a state table directly.
SELECT r.rolname, c.relname
FROM pg_class c CROSS JOIN pg_roles r
WHERE c.relnamespace = 'trace'::regnamespace AND c.relkind IN ('r', 'p')
  AND r.rolname LIKE 'trace\_%'
  AND has_table_privilege(r.oid, c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE');

-- The component roles exist and cannot log in.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'trace\_%' ORDER BY rolname;

-- What each role may execute.
SELECT r.rolname, string_agg(p.proname, ', ' ORDER BY p.proname) AS functions
FROM pg_proc p CROSS JOIN pg_roles r
WHERE p.pronamespace = 'trace'::regnamespace AND r.rolname LIKE 'trace\_%'
  AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
GROUP BY r.rolname ORDER BY r.rolname;

-- A helper for the other suites: runs a statement and returns its SQLSTATE
-- and message instead of failing.
CREATE SCHEMA test;
CREATE FUNCTION test.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN sqlstate || ': ' || sqlerrm;
END
$$;
GRANT USAGE ON SCHEMA test TO PUBLIC;
GRANT EXECUTE ON FUNCTION test.try(text) TO PUBLIC;
