-- Cron: parsing, next fire times across DST with fixed clocks, catchup
-- policies, and firing that survives restarts without repeats.
\set VERBOSITY terse
SET timezone = 'UTC';

-- Every 5 minutes, hourly, daily in a zone, weekdays, names and steps.
SELECT trace.cron_next('*/5 * * * *', 'UTC', '2026-01-01 10:02:30+00');
SELECT trace.cron_next('@hourly', 'Europe/Berlin', '2026-01-01 00:30+00');
SELECT trace.cron_next('0 9 * * mon-fri', 'America/New_York', '2026-01-02 15:00+00');
SELECT trace.cron_next('30 4 1,15 jan,jul *', 'UTC', '2026-01-02 00:00+00');
SELECT trace.cron_next('0 0 29 2 *', 'UTC', '2026-03-01 00:00+00');
-- Day-of-month and day-of-week both restricted: either matches (Vixie cron).
SELECT trace.cron_next('0 0 13 * fri', 'UTC', '2026-01-01 00:00+00');

-- Spring forward (America/New_York, 2021-03-14 02:00 -> 03:00): 02:30 does
-- not exist that day and fires once, at 03:30 EDT (07:30 UTC).
SELECT trace.cron_next('30 2 * * *', 'America/New_York', '2021-03-13 12:00+00') AS before_gap,
       trace.cron_next('30 2 * * *', 'America/New_York', '2021-03-14 06:00+00') AS in_gap,
       trace.cron_next('30 2 * * *', 'America/New_York', '2021-03-14 07:30+00') AS after_gap;
-- Fall back (2021-11-07 02:00 -> 01:00): 01:30 happens twice and fires once,
-- at the second occurrence (01:30 EST = 06:30 UTC).
SELECT trace.cron_next('30 1 * * *', 'America/New_York', '2021-11-07 04:00+00') AS first_check,
       trace.cron_next('30 1 * * *', 'America/New_York', '2021-11-07 06:30+00') AS next_day;
-- Every 30 minutes across the fall-back hour: each local slot once.
WITH RECURSIVE fires(at, n) AS (
    SELECT trace.cron_next('*/30 * * * *', 'Europe/Berlin', '2026-10-25 00:10+00'), 1
    UNION ALL
    SELECT trace.cron_next('*/30 * * * *', 'Europe/Berlin', at), n + 1 FROM fires WHERE n < 5)
SELECT at, at AT TIME ZONE 'Europe/Berlin' AS local FROM fires;

-- A jump that is not one whole hour (Australia/Lord_Howe, 2025-10-05 02:00
-- -> 02:30, 15:30 UTC): 02:35 is real (15:35 UTC) and fires first; the
-- skipped 02:10 fires 10 minutes past the transition, at 02:40 (15:40 UTC).
WITH RECURSIVE fires(at, n) AS (
    SELECT trace.cron_next('10,35 2 * * *', 'Australia/Lord_Howe', '2025-10-04 15:29+00'), 1
    UNION ALL
    SELECT trace.cron_next('10,35 2 * * *', 'Australia/Lord_Howe', at), n + 1 FROM fires WHERE n < 3)
SELECT at, at AT TIME ZONE 'Australia/Lord_Howe' AS local FROM fires;
-- A two-hour jump (Antarctica/Troll, 2026-03-29 01:00 -> 03:00, 01:00 UTC):
-- the real 03:xx minutes fire first (01:00-01:59 UTC), then the skipped
-- 02:xx ones two hours on (02:00-02:59 UTC); all 120 slots, each once.
WITH RECURSIVE fires(at) AS (
    SELECT trace.cron_next('* 2,3 * * *', 'Antarctica/Troll', '2026-03-29 00:30+00')
    UNION ALL
    SELECT trace.cron_next('* 2,3 * * *', 'Antarctica/Troll', at) FROM fires
    WHERE at < '2026-03-29 03:00+00')
SELECT count(*) FILTER (WHERE at < '2026-03-29 03:00+00') AS fires,
       count(DISTINCT at) FILTER (WHERE at < '2026-03-29 03:00+00') AS distinct_fires,
       min(at) AS first, max(at) FILTER (WHERE at < '2026-03-29 03:00+00') AS last,
       count(*) FILTER (WHERE at < '2026-03-29 02:00+00'
                          AND to_char(at AT TIME ZONE 'Antarctica/Troll', 'HH24') = '03') AS real_03
FROM fires;
-- a/n is a-max/n (as in cronie and croner), never just a: minutes 5, 20,
-- 35, 50; in day-of-week the max is 7, so 5/2 is Friday and Sunday.
SELECT trace.cron_next('5/15 * * * *', 'UTC', '2026-01-01 10:06+00') AS minute_5_step_15,
       trace.cron_next('5/15 * * * *', 'UTC', '2026-01-01 10:50+00') AS wraps,
       trace.cron_next('0 0 * * 5/2', 'UTC', '2026-01-02 00:00+00') AS after_friday;

-- Never fires: NULL; bad expressions and zones are errors.
SELECT trace.cron_next('0 0 31 2 *', 'UTC', '2026-01-01 00:00+00');
SELECT test.try($$SELECT trace.cron_next('61 * * * *', 'UTC', now())$$);
SELECT test.try($$SELECT trace.cron_next('* * *', 'UTC', now())$$);
SELECT test.try($$SELECT trace.cron_next('@sometimes', 'UTC', now())$$);
SELECT test.try($$SELECT trace.cron_next('0 0 * * 8', 'UTC', now())$$);
SELECT test.try($$SELECT trace.cron_next('*/0 * * * *', 'UTC', now())$$);
SELECT test.try($$SELECT trace.cron_next('5/ * * * *', 'UTC', now())$$);
SELECT test.try($$SELECT trace.cron_next('60/5 * * * *', 'UTC', now())$$);
SELECT test.try($$SELECT trace.cron_next('* * * * *', 'Mars/Base', now())$$);

-- Catchup after downtime (due 10:00, now 12:40, hourly): all missed slots,
-- only the last, or none that is late.
SELECT array_agg(slot) AS all_slots FROM trace.cron_due_slots(
    '{"cron": "0 * * * *", "timezone": "UTC", "catchup": "all"}', '2026-01-01 10:00+00', '2026-01-01 12:40+00') slot;
SELECT array_agg(slot) AS last_slot FROM trace.cron_due_slots(
    '{"cron": "0 * * * *", "timezone": "UTC", "catchup": "last"}', '2026-01-01 10:00+00', '2026-01-01 12:40+00') slot;
SELECT array_agg(slot) AS no_late_slot FROM trace.cron_due_slots(
    '{"cron": "0 * * * *", "timezone": "UTC", "catchup": "none"}', '2026-01-01 10:00+00', '2026-01-01 12:40+00') slot;
SELECT array_agg(slot) AS on_time FROM trace.cron_due_slots(
    '{"cron": "0 * * * *", "timezone": "UTC", "catchup": "none"}', '2026-01-01 12:00+00', '2026-01-01 12:00:20+00') slot;

-- A deployed schedule is armed; fire_cron fires a due slot once and moves on.
SELECT dag_version FROM trace.deploy_dag($yaml$
dag: timed
jobs:
  src: {operator: range_ingest, config: {rpc: local}, outputs: [timed.blocks]}
  check:
    operator: integrity_check
    inputs: [timed.blocks]
    trigger: {cron: "*/5 * * * *", timezone: Europe/Berlin, catchup: all}
$yaml$);
SELECT next_slot > now() AS armed, last_slot FROM trace.cron_state;
-- Pretend the dispatcher was down: the due slot was two slots ago (one
-- transaction, so now() is fixed).
BEGIN;
UPDATE trace.cron_state
SET next_slot = date_trunc('hour', now())
                + floor(extract(minute FROM now()) / 5) * interval '5 minutes'
                - interval '10 minutes';
SELECT trace.fire_cron() AS fired;
SELECT count(*) AS tasks, count(DISTINCT payload->>'slot') AS distinct_slots
FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.name = 'check';
-- Firing again at the same moment fires nothing: each slot once.
SELECT trace.fire_cron() AS fired_again;
SELECT next_slot > now() AS rearmed, last_slot < now() AS remembered FROM trace.cron_state;
COMMIT;
SELECT * FROM trace.validate_dag(E'dag: t\njobs:\n  a: {operator: noop, trigger: {cron: "0 0 31 2 *"}}');
