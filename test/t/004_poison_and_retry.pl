# F7, F11: retries are released by the running dispatcher with backoff, and
# a task that always fails ends `failed` at max_attempts and stays there.
#
# Nothing here calls a dispatcher step by hand: the background worker does
# every expiry, release and outbox relay.  A LISTEN session checks the
# wake-ups (trace_wakeup, payload the runtime) and the failure notice
# (trace_task_failed, relayed from the outbox).
use strict;
use warnings FATAL => 'all';

use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TraceNode;

my $node = trace_node('poison');
wait_for_dispatcher($node);

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN trace_wakeup; LISTEN trace_task_failed;');
my $heard = '';

# Waits (bounded) until the listener has received a notification matching
# $re since the last call that matched; returns the matching line.
sub wait_for_notify
{
	my ($re) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (1)
	{
		$heard .= $listener->query_safe('SELECT 1');
		if ($heard =~ /^(Asynchronous notification $re[^\n]*)$/m)
		{
			my $line = $1;
			$heard = substr($heard, $+[0]);
			return $line;
		}
		die "no notification matching $re" if time > $deadline;
		usleep(100_000);
	}
}

my $job = $node->safe_psql('postgres',
	q(SELECT trace.create_job('poison', 'noop', 'ecs_platform', max_attempts => 3,
	                          backoff => '100 ms', max_backoff => '200 ms')));

# An enqueue wakes the workers of its runtime.
my $task = $node->safe_psql('postgres', "SELECT trace.enqueue_task($job)");
ok(wait_for_notify(qr/"trace_wakeup" with payload "ecs_platform"/),
	'enqueue sent trace_wakeup with the runtime');

# The worker fails every attempt.  After a retryable failure the task waits
# out its backoff (exponential: ~100 ms, then ~200 ms, +-20%) as
# 'scheduled'; the dispatcher then queues it again and wakes the workers.
my @delay = ([ 80, 120 ], [ 160, 240 ]);
for my $attempt (1 .. 3)
{
	$node->poll_query_until('postgres',
		qq(SELECT state = 'queued' AND attempt = $attempt - 1
		   FROM trace.tasks WHERE task_id = $task))
	  or die "attempt $attempt never became claimable";
	my ($t, $a, $tok) = split /\|/, $node->safe_psql('postgres',
		q(SELECT task_id, attempt, lease_token
		  FROM trace.claim_tasks('poisoned', ARRAY['ecs_platform'], 1, '1 minute')));
	is("$t:$a", "$task:$attempt", "claimed attempt $attempt");

	my $outcome = $node->safe_psql('postgres', qq(
		BEGIN;
		SELECT trace.fail_task($t, $a, '$tok', 'boom $attempt');
		SELECT coalesce(round(extract(epoch FROM not_before - now()) * 1000)::text, 'none')
		FROM trace.tasks WHERE task_id = $t;
		COMMIT;));
	my ($state, $delay_ms) = split /\n/, $outcome;
	if ($attempt < 3)
	{
		is($state, 'scheduled', "attempt $attempt failed: retry scheduled");
		my ($lo, $hi) = @{ $delay[ $attempt - 1 ] };
		ok($delay_ms >= $lo && $delay_ms <= $hi,
			"retry $attempt waits $delay_ms ms (between $lo and $hi)");
		ok(wait_for_notify(qr/"trace_wakeup" with payload "ecs_platform"/),
			"dispatcher released retry $attempt and woke the workers");
	}
	else
	{
		is($state, 'failed', 'attempt 3 = max_attempts: the task failed for good');
	}
}

# The failure notice goes through the outbox, relayed by the dispatcher.
my $notice = wait_for_notify(qr/"trace_task_failed"/);
like($notice, qr/"task_id": $task\b/, 'trace_task_failed names the task');
like($notice, qr/"attempt": 3\b/, 'trace_task_failed names the last attempt');

is($node->safe_psql('postgres',
		qq(SELECT state || ':' || attempt || ':' || error FROM trace.tasks WHERE task_id = $task)),
	'failed:3:boom 3', 'task ended failed at attempt 3 with the last error');
is($node->safe_psql('postgres',
		qq(SELECT string_agg(attempt || ':' || outcome || ':' || error, ',' ORDER BY attempt)
		   FROM trace.task_attempts WHERE task_id = $task)),
	'1:failed:boom 1,2:failed:boom 2,3:failed:boom 3',
	'one task_attempts row per attempt');

# Never resurrected: once the dispatcher has relayed the outbox (so it ran
# after the failure) the task is still failed and nothing is claimable.
$node->poll_query_until('postgres', 'SELECT count(*) = 0 FROM trace.outbox')
  or die 'outbox not relayed';
is($node->safe_psql('postgres',
		q(SELECT count(*) FROM trace.claim_tasks('poisoned', ARRAY['ecs_platform'], 10))),
	'0', 'the failed task is not claimable');
is($node->safe_psql('postgres', "SELECT count(*) FROM trace.task WHERE task_id = $task"),
	'0', 'the failed task is no longer active');

# A task whose workers keep vanishing (claim, never heartbeat) fails the
# same way, through lease expiry alone.
my $job2 = $node->safe_psql('postgres',
	q(SELECT trace.create_job('abandoned', 'noop', 'ecs_platform', max_attempts => 2,
	                          backoff => '100 ms', max_backoff => '100 ms')));
my $task2 = $node->safe_psql('postgres', "SELECT trace.enqueue_task($job2)");
for my $attempt (1 .. 2)
{
	$node->poll_query_until('postgres',
		qq(SELECT state = 'queued' AND attempt = $attempt - 1
		   FROM trace.tasks WHERE task_id = $task2))
	  or die "abandoned attempt $attempt never became claimable";
	is($node->safe_psql('postgres',
			q(SELECT attempt FROM trace.claim_tasks('vanishing', ARRAY['ecs_platform'], 1,
			                                        '300 ms'))),
		$attempt, "abandoned task claimed as attempt $attempt");
}
ok($node->poll_query_until('postgres',
		qq(SELECT state = 'failed' FROM trace.tasks WHERE task_id = $task2)),
	'abandoned task failed after its last lease expired');
is($node->safe_psql('postgres',
		qq(SELECT string_agg(attempt || ':' || outcome, ',' ORDER BY attempt)
		   FROM trace.task_attempts WHERE task_id = $task2)),
	'1:lease_expired,2:failed', 'its attempts: one expired lease, then failed');
like(wait_for_notify(qr/"trace_task_failed"/), qr/"outcome": "lease_expired"/,
	'trace_task_failed says the last lease expired');

$listener->quit;
$node->stop;
done_testing();
