-- Helpers of bench/dag_bench.sh, created in the bench database (schema
-- public, as superuser).  None of them is part of what is timed except
-- where the script says so (bench_drain and bench_resume_wait run the
-- dispatcher's own steps and stand for the dispatcher).

-- The source leases the bench holds (claimed once, for an hour).
CREATE TABLE public.bench_lease (
    task_id     bigint PRIMARY KEY,
    attempt     int NOT NULL,
    lease_token uuid NOT NULL,
    dag         text,
    job         text
);

-- Unique partition keys for the routing clients.
CREATE SEQUENCE public.bench_key;

-- Claims every queued ecs_platform task (the sources of the DAGs just
-- deployed) for an hour and remembers the leases.  Returns how many.
CREATE FUNCTION public.bench_claim_sources() RETURNS bigint
LANGUAGE sql AS $$
    WITH c AS (
        INSERT INTO public.bench_lease
        SELECT c.task_id, c.attempt, c.lease_token, j.dag, j.name
        FROM trace.claim_tasks('bench-sources', ARRAY['ecs_platform'], 1000, '1 hour') c
        JOIN trace.job j ON j.job_id = c.job_id
        RETURNING 1)
    SELECT count(*) FROM c
$$;

-- What the dispatcher does, pass after pass: trace.run_dispatcher_tasks(batch)
-- in a transaction of its own until nothing is left.  Returns the tasks run.
CREATE PROCEDURE public.bench_drain(batch int, INOUT ran bigint DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    ran := 0;
    LOOP
        n := trace.run_dispatcher_tasks(batch);
        COMMIT;
        ran := ran + n;
        EXIT WHEN n = 0;
    END LOOP;
END
$$;

-- Resumes a paused DAG job and waits, polling every 20 ms in fresh
-- snapshots, until the live dispatcher has closed `target` batches of the
-- job's aggregator and run all its tasks.  Returns the milliseconds from
-- the commit of the resume to the poll that saw it done (-1 on timeout).
CREATE PROCEDURE public.bench_resume_wait(dag text, job text, target bigint,
                                          timeout_s int, INOUT ms numeric DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    ids bigint[];
BEGIN
    SELECT array_agg(j.job_id) INTO ids FROM trace.job j
    WHERE j.dag = bench_resume_wait.dag AND j.name = bench_resume_wait.job AND j.state = 'active';
    PERFORM trace.resume_job(dag, job);
    COMMIT;
    t0 := clock_timestamp();
    LOOP
        IF (SELECT count(*) FROM trace.aggregator_batch b
            WHERE b.job_id = ANY (ids) AND b.closed_at IS NOT NULL) >= target
           AND NOT EXISTS (SELECT 1 FROM trace.task t WHERE t.job_id = ANY (ids)) THEN
            ms := round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1);
            RETURN;
        END IF;
        IF clock_timestamp() - t0 > make_interval(secs => timeout_s) THEN
            ms := -1;
            RETURN;
        END IF;
        PERFORM pg_sleep(0.02);
        COMMIT;
    END LOOP;
END
$$;

-- The relations of one DAG version's rebuilt datasets: (dataset_id, relation).
CREATE FUNCTION public.bench_version_relations(dag text, dag_version int)
RETURNS TABLE (dataset_id text, relation text)
LANGUAGE sql STABLE AS $$
    SELECT d.dataset_id, dv.relation
    FROM trace.dataset d
    JOIN trace.dataset_version dv ON dv.dataset_uuid = d.dataset_uuid
    WHERE d.dag = bench_version_relations.dag AND dv.dag_version = bench_version_relations.dag_version
      AND dv.job_id IN (SELECT j.job_id FROM trace.job j WHERE j.dag = bench_version_relations.dag
                          AND j.dag_version = bench_version_relations.dag_version
                          AND j.activation = 'reactive')
    ORDER BY d.dataset_id
$$;

-- Fills every rebuilt dataset of a DAG version straight into its relation,
-- as write_rows would have: `small` rows each, `big` rows for big_dataset
-- (10,000 rows per partition, a small JSON object per row), and keeps
-- autovacuum off them (reloptions only) so that it does not vacuum 10M fresh
-- rows in the background of later measurements.  Returns the rows written.
CREATE FUNCTION public.bench_fill(dag text, dag_version int, small bigint,
                                  big_dataset text, big bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n bigint;
    total bigint := 0;
BEGIN
    FOR r IN SELECT * FROM public.bench_version_relations(dag, dag_version) LOOP
        n := CASE WHEN r.dataset_id = big_dataset THEN big ELSE small END;
        EXECUTE format('INSERT INTO %s (partition_key, producer_task_id, "row") '
                       'SELECT (g / 10000)::text, 0, jsonb_build_object(''block'', g, ''v'', %s) '
                       'FROM generate_series(0, $1 - 1) g', r.relation, dag_version)
            USING n;
        -- no autovacuum of these fresh rows in the middle of later measurements
        EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', r.relation);
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;

-- Gives a new DAG version's (empty) relations the rows of an earlier
-- version's relations, dataset by dataset, by swapping the two relations'
-- names.  Used only with a version that was rolled back and is never read
-- again, so a later round's cutover moves onto relations just as full as
-- the first round's without generating the rows again.  Returns how many.
CREATE FUNCTION public.bench_swap(dag text, from_version int, to_version int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN
        SELECT a.relation AS filled, b.relation AS empty
        FROM public.bench_version_relations(dag, from_version) a
        JOIN public.bench_version_relations(dag, to_version) b USING (dataset_id)
    LOOP
        EXECUTE format('ALTER TABLE %s RENAME TO bench_swap_tmp', r.filled);
        EXECUTE format('ALTER TABLE %s RENAME TO %I', r.empty, split_part(r.filled, '.', 2));
        EXECUTE format('ALTER TABLE trace_data.bench_swap_tmp RENAME TO %I', split_part(r.empty, '.', 2));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- Server time of the trace functions since the last reset
-- (pg_stat_user_functions), biggest self time first, one formatted line
-- each: name, calls, total and self milliseconds divided by `per` (the
-- number of deploys, or of events), or by each function's own call count
-- when `per` is NULL.  `names` restricts the list.
CREATE FUNCTION public.bench_fstats(per numeric, top int DEFAULT 8, names text[] DEFAULT NULL)
RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT format('   %-24s %9s %11s %11s', funcname, calls,
                  round((total_time / coalesce(per, calls))::numeric, 3),
                  round((self_time / coalesce(per, calls))::numeric, 3))
    FROM pg_stat_user_functions
    WHERE schemaname = 'trace' AND calls > 0 AND (names IS NULL OR funcname = ANY (names))
    ORDER BY self_time DESC
    LIMIT top
$$;
