# F8, F17: the dispatcher survives being killed and stops promptly when told.
#
#   * kill -9 of the dispatcher: the postmaster treats it as a crash,
#     reinitializes, and starts a new dispatcher, which still expires the
#     lease a worker held across the crash.
#   * SIGTERM (pg_terminate_backend) in the middle of an outbox batch: the
#     dispatcher exits within a bound, the batch is not half relayed (no
#     notification sent, no row deleted), the rest of the server carries
#     on, and the dispatcher is started again after bgw_restart_time (5 s)
#     and relays every row exactly once.
#   * SIGHUP: a changed trace.dispatcher_interval is picked up and logged.
use strict;
use warnings FATAL => 'all';

use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TraceNode;

# Small dispatcher batches, so the outbox below takes several of them; and
# a crashed backend restarts the server, as in production (TAP nodes turn
# that off).
my $node = trace_node('dispatcher_crash',
	"trace.dispatcher_batch = 50\nrestart_after_crash = on\n");
my $pid1 = wait_for_dispatcher($node);
ok($pid1, "dispatcher running (pid $pid1)");

my $job = $node->safe_psql('postgres',
	q(SELECT trace.create_job('survivor', 'noop', 'ecs_platform',
	                          backoff => '100 ms', max_backoff => '100 ms')));
my $task = $node->safe_psql('postgres', "SELECT trace.enqueue_task($job)");

# --- kill -9 ---------------------------------------------------------------

# A worker holds a 2 second lease when the dispatcher dies.
$node->safe_psql('postgres',
	q(SELECT count(*) FROM trace.claim_tasks('w1', ARRAY['ecs_platform'], 1, '2 seconds')));
my $offset = log_offset($node);
kill 'KILL', $pid1;
$node->wait_for_log(
	qr/background worker "trace dispatcher" \(PID $pid1\) was terminated by signal 9/,
	$offset);
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
pass('postmaster treated the killed dispatcher as a crash and reinitialized');

my $pid2 = wait_for_dispatcher($node, $pid1);
ok($pid2, "a new dispatcher started after the crash (pid $pid2)");

# The new dispatcher expires the lease held across the crash and requeues
# the task; it ran after the new dispatcher started.
ok($node->poll_query_until('postgres',
		qq(SELECT state = 'queued' AND attempt = 1 FROM trace.tasks WHERE task_id = $task)),
	'lease held across the crash was expired and the task requeued');
is($node->safe_psql('postgres',
		qq(SELECT string_agg(a.outcome, ',') || ':'
		          || bool_and(a.ended_at >= (SELECT backend_start FROM pg_stat_activity
		                                     WHERE pid = $pid2))
		   FROM trace.task_attempt a WHERE a.task_id = $task)),
	'lease_expired:true', 'the restarted dispatcher expired it');

# --- SIGTERM mid-batch -----------------------------------------------------

# Make each outbox delete take 20 ms, so a batch of 50 takes a second and
# the dispatcher can be caught inside one.
$node->safe_psql('postgres', q(
	CREATE FUNCTION public.slow_delete() RETURNS trigger LANGUAGE plpgsql
	AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN OLD; END $$;
	CREATE TRIGGER slow_delete BEFORE DELETE ON trace.outbox
	FOR EACH ROW EXECUTE FUNCTION public.slow_delete();));

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN trace_test');
my $bystander = $node->background_psql('postgres');
my $bystander_pid = $bystander->query_safe('SELECT pg_backend_pid()');

$node->safe_psql('postgres', q(
	INSERT INTO trace.outbox (org_id, kind, channel, payload)
	SELECT 'default', 'notify', 'trace_test', jsonb_build_object('n', n)
	FROM generate_series(1, 100) n));

# Wait until the dispatcher is inside a relay batch, then terminate it.
$node->poll_query_until('postgres',
	qq(SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $pid2))
  or die 'dispatcher never started relaying';
$offset = log_offset($node);
my $t0 = time;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid2)");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid2)")
  or die 'dispatcher did not exit';
my $exit_s = time - $t0;
cmp_ok($exit_s, '<', 3, sprintf('dispatcher exited %.2f s after SIGTERM', $exit_s));
$node->wait_for_log(
	qr/background worker "trace dispatcher" \(PID $pid2\) exited with exit code 1/, $offset);

# The interrupted batch rolled back whole: the rows left are exactly those
# of the batches not committed (a multiple of the batch size, normally all
# 100), and every row gone was relayed.
my $left = $node->safe_psql('postgres', q(SELECT count(*) FROM trace.outbox));
ok($left > 0 && $left % 50 == 0, "no half-relayed batch: $left of 100 rows left");
my $heard = $listener->query_safe('SELECT 1');
is(scalar(() = $heard =~ /Asynchronous notification/g), 100 - $left,
	'a notification was sent for every row deleted, none for the rest');

# Only the dispatcher went away: other sessions are untouched.
is($bystander->query_safe('SELECT pg_backend_pid()'), $bystander_pid,
	'other sessions survived the dispatcher\'s SIGTERM');
ok(!$node->log_contains(qr/reinitializing/, $offset), 'SIGTERM caused no crash restart');

# The postmaster starts it again after bgw_restart_time; it relays all.
my $pid3 = wait_for_dispatcher($node, $pid2);
ok($pid3, "dispatcher restarted after SIGTERM (pid $pid3)");
$node->poll_query_until('postgres', q(SELECT count(*) = 0 FROM trace.outbox))
  or die 'outbox not drained';
$heard .= $listener->query_safe('SELECT 1');
my @payloads = $heard =~ /^Asynchronous notification "trace_test" with payload "(.*)" received/mg;
my %seen;
$seen{$_}++ for @payloads;
is(scalar @payloads, 100, 'all 100 outbox rows were relayed');
is(scalar keys %seen, 100, 'each one exactly once');

$node->safe_psql('postgres',
	'DROP TRIGGER slow_delete ON trace.outbox; DROP FUNCTION public.slow_delete()');
$listener->quit;
$bystander->quit;

# --- SIGHUP ----------------------------------------------------------------

$offset = log_offset($node);
$node->safe_psql('postgres',
	q(ALTER SYSTEM SET trace.dispatcher_interval = '250ms'; SELECT pg_reload_conf();));
$node->wait_for_log(qr/trace dispatcher: interval is now 250 ms/, $offset);
pass('dispatcher reloaded its interval on SIGHUP');
is(dispatcher_pid($node), $pid3, 'reload did not restart the dispatcher');

# The reloaded dispatcher still works: a lease that lapses is expired.
$node->safe_psql('postgres',
	q(SELECT count(*) FROM trace.claim_tasks('w2', ARRAY['ecs_platform'], 1, '500 ms')));
ok($node->poll_query_until('postgres',
		qq(SELECT count(*) = 2 FROM trace.task_attempt WHERE task_id = $task)),
	'reloaded dispatcher expires leases');

$node->stop;
done_testing();
