# DAGs across dispatcher crashes (issues 3 and 4):
#
#   * the aggregator emits each batch exactly once although the dispatcher
#     is killed (kill -9) while it works through the batches;
#   * cron slots fire once each, and a dispatcher killed after firing them
#     does not fire them again;
#   * a dispatcher killed in the middle of a rebuild resumes it and cuts
#     over exactly once, with the rebuilt data.
#
# The dispatcher's steps run each in a transaction of their own, and a
# dispatcher-runtime task commits its effects with its completion, so a
# kill loses at most the transaction in flight, which is redone.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TraceNode;

# Small batches so the work spans many dispatcher passes; a killed backend
# restarts the server as in production.
my $node = trace_node('dag_crash',
	"trace.dispatcher_batch = 7\nrestart_after_crash = on\n");
my $pid = wait_for_dispatcher($node);

# Kills the dispatcher with SIGKILL and waits for its successor.
sub kill_dispatcher
{
	my ($why) = @_;
	my $victim = dispatcher_pid($node);
	my $offset = log_offset($node);
	kill 'KILL', $victim;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	my $next = wait_for_dispatcher($node, $victim);
	pass("dispatcher killed $why; pid $next took over");
	return $next;
}

# --- aggregator: each batch exactly once across a kill ----------------------

$node->safe_psql('postgres', q{
SELECT dag_version FROM trace.deploy_dag($y$
dag: agg
jobs:
  src:
    operator: noop
    activation: source
    outputs: [agg.blocks]
  ranges:
    operator: aggregator
    inputs: [agg.blocks]
    config: {cursor: block_number, size: 10}
    outputs: [agg.ranges]
$y$)});

# A "worker" holds the source's lease and emits blocks 0..299 in one go.
$node->safe_psql('postgres', q{
CREATE TABLE src_lease AS
    SELECT task_id, attempt, lease_token FROM trace.claim_tasks('w', ARRAY['ecs_platform'], 1, '1 hour');
SELECT count(trace.emit_event(task_id, attempt, lease_token, 'agg.blocks', n::text,
                              jsonb_build_object('block_number', n)))
FROM src_lease, generate_series(0, 299) n});

# Kill the dispatcher once some batches are out but not all.
$node->poll_query_until('postgres',
	q{SELECT count(*) >= 3 FROM trace.event WHERE dataset_id = 'agg.ranges'})
  or die 'no batch emitted';
my $before = $node->safe_psql('postgres',
	q{SELECT count(*) FROM trace.event WHERE dataset_id = 'agg.ranges'});
kill_dispatcher("after $before of 30 batches");

ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM trace.task t JOIN trace.job j USING (job_id) WHERE j.name = 'ranges'}),
	'the new dispatcher finished every aggregator task');
is($node->safe_psql('postgres', q{
	SELECT count(*) || ' manifests, ' || count(DISTINCT partition_key) || ' distinct, '
	       || min(partition_key) || ' .. ' || max(partition_key)
	FROM trace.event WHERE dataset_id = 'agg.ranges'}),
	'30 manifests, 30 distinct, 0-10 .. 90-100',
	'each of the 30 batches was emitted exactly once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE closed_at IS NOT NULL) || '/' || count(*)
	FROM trace.aggregator_batch}), '30/30', 'every batch closed once');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM trace.tasks t JOIN trace.jobs j USING (job_id)
	WHERE j.name = 'ranges' AND t.state <> 'succeeded'}), '0', 'no aggregator task failed');

# --- cron: each slot once, across a kill ------------------------------------

$node->safe_psql('postgres', q{
SELECT dag_version FROM trace.deploy_dag($y$
dag: timed
jobs:
  check:
    operator: noop
    inputs: [agg.blocks]
    trigger: {cron: "* * * * *", timezone: UTC, catchup: all}
$y$)});
# Three minutes of downtime: the due slot is three slots back.
$node->safe_psql('postgres', q{
	UPDATE trace.cron_state SET next_slot = date_trunc('minute', now()) - interval '3 minutes'});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) >= 4 FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.name = 'check'}),
	'the missed slots were fired (catchup: all)');
my $fired = $node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(DISTINCT payload->>'slot')
	FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.name = 'check'});
kill_dispatcher('after firing the slots');
# Let the new dispatcher run a few passes, then count again.
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity
	  WHERE backend_type = 'trace dispatcher' AND state = 'idle'});
my $again = $node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(DISTINCT payload->>'slot')
	FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.name = 'check'
	  AND (payload->>'slot')::timestamptz < date_trunc('minute', now())});
like($fired, qr{^(\d+)/\1$}, "each slot fired once ($fired tasks/slots)");
is($again, $node->safe_psql('postgres', q{
	SELECT count(*) || '/' || count(DISTINCT payload->>'slot')
	FROM trace.tasks t JOIN trace.jobs j USING (job_id) WHERE j.name = 'check'
	  AND (payload->>'slot')::timestamptz < date_trunc('minute', now())}),
	'no slot fired again after the restart');
is($node->safe_psql('postgres', q{SELECT next_slot > now() FROM trace.cron_state}), 't',
	'the schedule is armed for the next slot');

# --- a rebuild survives a kill and cuts over once ---------------------------

$node->safe_psql('postgres', q{
SELECT dag_version FROM trace.deploy_dag($y$
dag: reb
jobs:
  src:
    operator: noop
    activation: source
    priority: 100
    outputs: [reb.raw]
  pick:
    operator: sql
    inputs: [reb.raw]
    config:
      query: SELECT (r."row"->>'n')::int AS n FROM {{reb.raw}} r
    outputs: [reb.picked]
$y$)});
$node->safe_psql('postgres', q{
CREATE TABLE reb_lease AS
    SELECT c.task_id, c.attempt, c.lease_token
    FROM trace.claim_tasks('w', ARRAY['ecs_platform'], 1, '1 hour') c;
SELECT count(*) FROM reb_lease, generate_series(1, 200) n,
    LATERAL (SELECT trace.write_rows(task_id, attempt, lease_token, 'reb.raw', n::text,
                                     jsonb_build_array(jsonb_build_object('n', n))),
                    trace.emit_event(task_id, attempt, lease_token, 'reb.raw', n::text, '{}')) w});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 200 FROM trace_data."reb.picked"}),
	'version 1 materialized');

my $offset = log_offset($node);
$node->safe_psql('postgres', q{
SELECT dag_version FROM trace.deploy_dag($y$
dag: reb
jobs:
  src:
    operator: noop
    activation: source
    priority: 100
    outputs: [reb.raw]
  pick:
    operator: sql
    inputs: [reb.raw]
    config:
      query: SELECT (r."row"->>'n')::int * 10 AS n FROM {{reb.raw}} r, LATERAL (SELECT pg_sleep(0.02)) slow
    outputs: [reb.picked]
$y$)});
# Each rebuild task takes ~20 ms (the pg_sleep above), so the rebuild lasts
# seconds and the kill lands in its middle.
$node->poll_query_until('postgres', q{
	SELECT count(*) BETWEEN 20 AND 180 FROM trace.tasks t JOIN trace.jobs j USING (job_id)
	WHERE j.dag = 'reb' AND j.dag_version = 2 AND t.state = 'succeeded'})
  or die 'rebuild did not progress';
kill_dispatcher('in the middle of the rebuild');

ok($node->poll_query_until('postgres', q{SELECT active_version = 2 FROM trace.dags WHERE dag = 'reb'}),
	'the rebuild resumed and cut over');
$node->wait_for_log(qr/cut over DAG reb to version 2/, $offset);
my $log = slurp_file($node->logfile, $offset);
my $cutovers = () = $log =~ /cut over DAG reb to version 2/g;
is($cutovers, 1, 'cut over exactly once');
is($node->safe_psql('postgres', q{SELECT count(*) || ' rows, max ' || max(n) FROM trace_data."reb.picked"}),
	'200 rows, max 2000', 'readers see the rebuilt version, complete');
is($node->safe_psql('postgres', q{
	SELECT string_agg(version || ':' || state, ' ' ORDER BY version) FROM trace.dataset_versions('reb.picked')}),
	'1:retired 2:current', 'version 1 retired, version 2 current');

$node->stop;
done_testing();
