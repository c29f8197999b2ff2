# F3: a worker killed with kill -9 while it holds leases loses nothing.
#
# A psql session plays the worker: it claims two tasks with a 2 second
# lease, emits an event for the first (committed), starts emitting one for
# the second inside an open transaction, and is then killed with SIGKILL.
# The running dispatcher must expire both leases and requeue the tasks; a
# second worker claims them as attempt 2 with new tokens; the dead worker's
# tokens are refused; re-emitting the committed event's key returns the
# same event, and the uncommitted one left nothing behind.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TraceNode;

my $node = trace_node('worker_kill');
wait_for_dispatcher($node);

my $job = $node->safe_psql('postgres',
	q(SELECT trace.create_job('kill_me', 'noop', 'ecs_platform',
	                          backoff => '100 ms', max_backoff => '100 ms')));
$node->safe_psql('postgres',
	qq(SELECT trace.enqueue_tasks($job, ARRAY['{"n": 1}', '{"n": 2}']::jsonb[])));

# The worker: claim both tasks, emit for the first and commit, then emit
# for the second in a transaction that never ends.
my $worker = $node->background_psql('postgres');
my $backend = $worker->query_safe('SELECT pg_backend_pid()');
my @leases = map { [ split /\|/ ] } split /\n/, $worker->query_safe(
	q(SELECT task_id, attempt, lease_token
	  FROM trace.claim_tasks('victim', ARRAY['ecs_platform'], 2, '2 seconds')
	  ORDER BY task_id));
is(scalar @leases, 2, 'worker claimed both tasks');
my ($t1, $a1, $tok1) = @{ $leases[0] };
my ($t2, $a2, $tok2) = @{ $leases[1] };
is("$a1,$a2", '1,1', 'both leases are attempt 1');

my $event1 = $worker->query_safe(
	qq(SELECT trace.emit_event($t1, 1, '$tok1', 'blocks', 'p1', '{"by": "victim"}')));
like($event1, qr/^\d+$/, 'committed emit returned an event_id');
$worker->query_safe(
	qq(BEGIN; SELECT trace.emit_event($t2, 1, '$tok2', 'blocks', 'p2', '{"by": "victim"}')));

# kill -9 the worker mid-transaction, holding both leases.
$worker->{run}->signal('KILL');
eval { $worker->{run}->finish };
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $backend)")
  or die 'the dead worker\'s backend did not exit';

# Its open transaction rolled back: the second emit left no row.
is($node->safe_psql('postgres',
		q(SELECT count(*) FROM trace.event WHERE partition_key = 'p2')),
	'0', 'emit in the killed worker\'s open transaction was rolled back');

# The dispatcher (not this test) expires both leases and, after the
# backoff, queues the tasks again.
ok($node->poll_query_until('postgres',
		qq(SELECT count(*) = 2 FROM trace.tasks
		   WHERE task_id IN ($t1, $t2) AND state = 'queued' AND attempt = 1)),
	'dispatcher requeued both tasks after their leases expired');
is($node->safe_psql('postgres',
		qq(SELECT string_agg(attempt || ':' || outcome || ':' || worker_id, ',' ORDER BY task_id)
		   FROM trace.task_attempts WHERE task_id IN ($t1, $t2))),
	'1:lease_expired:victim,1:lease_expired:victim',
	'each task has one ended attempt, lease_expired, by the killed worker');

# A new worker claims them: attempt 2, new tokens.
my @again = map { [ split /\|/ ] } split /\n/, $node->safe_psql('postgres',
	q(SELECT task_id, attempt, lease_token
	  FROM trace.claim_tasks('rescuer', ARRAY['ecs_platform'], 2, '1 minute')
	  ORDER BY task_id));
is(join(',', map { "$_->[0]:$_->[1]" } @again), "$t1:2,$t2:2",
	'both tasks claimable again as attempt 2');
my ($newtok1, $newtok2) = ($again[0][2], $again[1][2]);
isnt($newtok1, $tok1, 'task 1 has a new lease token');
isnt($newtok2, $tok2, 'task 2 has a new lease token');

# The dead worker's leases are fenced off.
is(sqlstate_of($node, qq(SELECT trace.heartbeat($t1, 1, '$tok1'))),
	'TR001', 'old lease: heartbeat fails with TR001');
is(sqlstate_of($node,
		qq(SELECT trace.emit_event($t2, 1, '$tok2', 'blocks', 'p2', '{}'))),
	'TR001', 'old lease: emit fails with TR001');
is(sqlstate_of($node, qq(SELECT trace.complete_task($t1, 1, '$tok1'))),
	'TR001', 'old lease: complete fails with TR001');

# Attempt 2 re-emits both keys: the committed event comes back unchanged,
# the rolled-back one is stored now, by attempt 2.
is($node->safe_psql('postgres',
		qq(SELECT trace.emit_event($t1, 2, '$newtok1', 'blocks', 'p1', '{"by": "rescuer"}'))),
	$event1, 'attempt 2 re-emitting the key gets attempt 1\'s event_id');
$node->safe_psql('postgres',
	qq(SELECT trace.emit_event($t2, 2, '$newtok2', 'blocks', 'p2', '{"by": "rescuer"}')));
is($node->safe_psql('postgres',
		q(SELECT string_agg(partition_key || ':' || producer_attempt || ':' || (payload->>'by'),
		                    ',' ORDER BY partition_key)
		  FROM trace.event)),
	'p1:1:victim,p2:2:rescuer', 'one event row per key');

# Attempt 2 completes both.
is($node->safe_psql('postgres',
		qq(SELECT string_agg(status, ',' ORDER BY task_id)
		   FROM trace.complete_tasks(ARRAY[$t1, $t2], ARRAY[2, 2],
		                             ARRAY['$newtok1', '$newtok2']::uuid[]))),
	'succeeded,succeeded', 'attempt 2 completes both tasks');
is($node->safe_psql('postgres',
		qq(SELECT string_agg(state || ':' || attempt, ',' ORDER BY task_id)
		   FROM trace.tasks WHERE task_id IN ($t1, $t2))),
	'succeeded:2,succeeded:2', 'both tasks end succeeded at attempt 2');

$node->stop;
done_testing();
