-- Leases: fetch, heartbeat, and fencing of a lost lease.
\set VERBOSITY terse

SELECT trace.create_job('lease_job', 'noop', config => '{"rpc": "mainnet"}') AS job \gset
DELETE FROM trace.task;
SELECT trace.enqueue_task(:job, '{"block": 7}') AS t \gset
SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w1', ARRAY['ecs_platform']) \gset c_

-- Fetch returns the task, its job and config, and the cancel flag.
SELECT doc->'payload' AS payload, doc->'job'->>'name' AS job, doc->'job'->'config' AS config,
       doc->'attempt' AS attempt, doc->'canceled' AS canceled
FROM trace.task_fetch(:c_task_id, :c_attempt, :'c_lease_token') AS doc;

-- A heartbeat answers ok and extends the lease.
UPDATE trace.task SET lease_expires_at = now() + interval '1 second' WHERE task_id = :c_task_id;
SELECT trace.heartbeat(:c_task_id, :c_attempt, :'c_lease_token');
SELECT lease_expires_at > now() + interval '20 seconds' AS extended FROM trace.task WHERE task_id = :c_task_id;

-- Fencing: the wrong token, the wrong attempt, an unknown task, NULLs.
SELECT test.try(format('SELECT trace.heartbeat(%s, %s, gen_random_uuid())', :c_task_id, :c_attempt));
SELECT test.try(format('SELECT trace.heartbeat(%s, %s, %L)', :c_task_id, :c_attempt + 1, :'c_lease_token'));
SELECT test.try(format('SELECT trace.task_fetch(%s, %s, gen_random_uuid())', :c_task_id, :c_attempt));
SELECT test.try(format('SELECT trace.heartbeat(%s, 1, gen_random_uuid())', 999999));
SELECT test.try(format('SELECT trace.heartbeat(NULL, 1, %L)', :'c_lease_token'));
SELECT test.try(format('SELECT trace.heartbeat(%s, NULL, %L)', :c_task_id, :'c_lease_token'));
SELECT test.try(format('SELECT trace.heartbeat(%s, 1, NULL)', :c_task_id));

-- An expired lease is lost even before the dispatcher notices: the database
-- clock decides, never the worker's.
UPDATE trace.task SET lease_expires_at = now() - interval '1 second' WHERE task_id = :c_task_id;
SELECT test.try(format('SELECT trace.heartbeat(%s, %s, %L)', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT test.try(format('SELECT trace.complete_task(%s, %s, %L)', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT state, attempt FROM trace.task WHERE task_id = :c_task_id;

-- The dispatcher's step retries it: a new attempt gets a new token, and the
-- old holder's calls change nothing.
SELECT trace.expire_leases();
UPDATE trace.task SET not_before = now() WHERE task_id = :c_task_id;
SELECT trace.release_scheduled();
SELECT task_id, attempt AS attempt2, lease_token AS token2
FROM trace.claim_tasks('w2', ARRAY['ecs_platform']) \gset
SELECT :attempt2 > :c_attempt AS higher_attempt, :'token2' <> :'c_lease_token' AS new_token;
SELECT test.try(format('SELECT trace.heartbeat(%s, %s, %L)', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT test.try(format('SELECT trace.emit_event(%s, %s, %L, ''d'', ''k'', ''{}'')', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT test.try(format('SELECT trace.fail_task(%s, %s, %L, ''zombie'')', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT test.try(format('SELECT trace.complete_task(%s, %s, %L)', :c_task_id, :c_attempt, :'c_lease_token'));
SELECT state, attempt = :attempt2 AS still_attempt2, worker_id FROM trace.task WHERE task_id = :c_task_id;
SELECT attempt, outcome, error FROM trace.task_attempts WHERE task_id = :c_task_id;
SELECT trace.complete_task(:c_task_id, :attempt2, :'token2');
