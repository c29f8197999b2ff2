-- Roles: each component role can call only its functions; a plain role
-- nothing; tenancy follows the login role, never a setting.
\set VERBOSITY terse

CREATE ROLE regress_plain LOGIN;
CREATE ROLE regress_worker LOGIN IN ROLE trace_worker;
CREATE ROLE regress_admin LOGIN IN ROLE trace_admin;
CREATE ROLE regress_other_org LOGIN IN ROLE trace_admin;
INSERT INTO trace.org_role VALUES ('regress_other_org', 'acme');

SELECT trace.create_job('role_job', 'noop') AS job \gset
DELETE FROM trace.task;

-- A plain role: permission denied everywhere.
SET SESSION AUTHORIZATION regress_plain;
SELECT test.try(format('SELECT trace.enqueue_task(%s)', :job));
SELECT test.try($$SELECT * FROM trace.claim_tasks('w', ARRAY['ecs_platform'])$$);
SELECT test.try('SELECT * FROM trace.tasks');
SELECT test.try('SELECT * FROM trace.task');
SELECT test.try('DELETE FROM trace.task');
RESET SESSION AUTHORIZATION;

-- The admin enqueues and reads; it cannot claim or write tables.
SET SESSION AUTHORIZATION regress_admin;
SELECT trace.enqueue_task(:job) IS NOT NULL AS enqueued;
SELECT count(*) AS visible FROM trace.tasks;
SELECT test.try($$SELECT * FROM trace.claim_tasks('w', ARRAY['ecs_platform'])$$);
SELECT test.try('UPDATE trace.task SET priority = 100');
SELECT test.try('SELECT trace.expire_leases()');
RESET SESSION AUTHORIZATION;

-- The worker claims and completes; it cannot enqueue, cancel or read tables.
SET SESSION AUTHORIZATION regress_worker;
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w', ARRAY['ecs_platform']) \gset c_
SELECT trace.heartbeat(:c_task_id, :c_attempt, :'c_lease_token');
SELECT trace.complete_task(:c_task_id, :c_attempt, :'c_lease_token');
SELECT test.try(format('SELECT trace.enqueue_task(%s)', :job));
SELECT test.try(format('SELECT trace.cancel_task(%s)', :c_task_id));
SELECT test.try('SELECT * FROM trace.task');
SELECT test.try('SELECT * FROM trace.tasks');
RESET SESSION AUTHORIZATION;

-- Another org sees none of the default org's jobs or tasks, and a custom
-- setting does not change which org a role acts for.
SET SESSION AUTHORIZATION regress_other_org;
SELECT count(*) AS visible_tasks FROM trace.tasks;
SELECT test.try(format('SELECT trace.enqueue_task(%s)', :job));
SELECT test.try($$SET trace.org_id = 'default'$$);
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_other_org;
SELECT test.try(format('SELECT trace.enqueue_task(%s)', :job));
SELECT trace.create_job('acme_job', 'noop') IS NOT NULL AS own_job;
RESET SESSION AUTHORIZATION;
SELECT org_id FROM trace.job WHERE name = 'acme_job';

DROP OWNED BY regress_plain, regress_worker, regress_admin, regress_other_org;
DROP ROLE regress_plain, regress_worker, regress_admin, regress_other_org;
