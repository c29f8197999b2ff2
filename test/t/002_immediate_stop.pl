# F9: `pg_ctl stop -m immediate` under load loses nothing acknowledged.
#
# Three client processes loop: enqueue a task, claim one, emit an event for
# it, complete it.  Each is a separate psql call, and a client appends a
# line to its acknowledgement file only after the call returned the
# expected answer (so only what the server confirmed is recorded):
#   E <task_id>             enqueue_task returned the task
#   V <event_id> <task_id>  emit_event returned the event
#   C <task_id>             complete_task returned 'succeeded'
# Once enough work is acknowledged the server is stopped in immediate mode
# (no shutdown checkpoint: restart replays WAL) and started again; every
# acknowledged enqueue, emit and completion must still be there.
use strict;
use warnings FATAL => 'all';

use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TraceNode;

my $node = trace_node('immediate_stop');
my $job = $node->safe_psql('postgres',
	q(SELECT trace.create_job('loaded', 'noop', 'ecs_platform')));

my $dir = PostgreSQL::Test::Utils::tempdir;
my $conn = $node->connstr('postgres');

# One client: a bash loop of psql calls that stops at the first failure
# (the server going away).
my $client = <<'EOS';
set -u
c=$1 job=$2 acks=$3
psql() { command psql -d "$CONN" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
for ((i = 1; ; i++)); do
  id=$(psql "SELECT trace.enqueue_task($job, jsonb_build_object('client', $c, 'i', $i))") || exit 0
  echo "E $id" >> "$acks"
  lease=$(psql "SELECT task_id || ' ' || attempt || ' ' || lease_token
                FROM trace.claim_tasks('client$c', ARRAY['ecs_platform'], 1, '5 minutes')") || exit 0
  [ -n "$lease" ] || continue
  read -r tid att tok <<< "$lease"
  ev=$(psql "SELECT trace.emit_event($tid, $att, '$tok', 'blocks', 'c$c-$i', '{}')") || exit 0
  echo "V $ev $tid" >> "$acks"
  st=$(psql "SELECT trace.complete_task($tid, $att, '$tok')") || exit 0
  [ "$st" = succeeded ] && echo "C $tid" >> "$acks"
done
EOS

my @clients;
for my $c (1 .. 3)
{
	my $acks = "$dir/acks_$c";
	open my $fh, '>', $acks or die "cannot create $acks: $!";
	close $fh;
	local $ENV{CONN} = $conn;
	push @clients,
	  IPC::Run::start([ 'bash', '-c', $client, 'client', $c, $job, $acks ],
		'>', \my $out, '2>', \my $err);
}

# Reads every client's acknowledgements: (enqueued ids, events as
# event_id => task_id, completed ids).
sub read_acks
{
	my (@enqueued, %events, @completed);
	for my $c (1 .. 3)
	{
		for my $line (split /\n/, slurp_file("$dir/acks_$c"))
		{
			my @f = split / /, $line;
			next unless @f >= 2 && $f[1] =~ /^\d+$/;    # a torn last line
			push @enqueued, $f[1] if $f[0] eq 'E';
			$events{ $f[1] } = $f[2] if $f[0] eq 'V' && defined $f[2];
			push @completed, $f[1] if $f[0] eq 'C';
		}
	}
	return (\@enqueued, \%events, \@completed);
}

# Wait (bounded) until every client has been through the loop several
# times, then pull the plug.
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
while (1)
{
	my (undef, undef, $completed) = read_acks();
	last if @$completed >= 100;
	die 'clients made no progress' if time > $deadline;
	usleep(50_000);
}
my $offset = log_offset($node);
$node->stop('immediate');

# The clients notice the server is gone and exit; only then are their
# acknowledgement files final.
$_->finish for @clients;
my ($enqueued, $events, $completed) = read_acks();
note sprintf('acknowledged: %d enqueues, %d emits, %d completions',
	scalar @$enqueued, scalar keys %$events, scalar @$completed);

$node->start;
$node->wait_for_log(qr/database system was (not properly shut down|interrupted)/, $offset);
pass('server restarted with crash recovery after the immediate stop');

# Every acknowledged enqueue exists, in any state.
my $ids = join(',', @$enqueued);
is($node->safe_psql('postgres',
		qq(SELECT count(*) FROM unnest(ARRAY[$ids]::bigint[]) a(id)
		   WHERE NOT EXISTS (SELECT 1 FROM trace.tasks t WHERE t.task_id = a.id))),
	'0', 'every acknowledged enqueue survived (' . scalar(@$enqueued) . ')');

# Every acknowledged completion is succeeded.
$ids = join(',', @$completed);
is($node->safe_psql('postgres',
		qq(SELECT count(*) FROM unnest(ARRAY[$ids]::bigint[]) a(id)
		   WHERE NOT EXISTS (SELECT 1 FROM trace.tasks t
		                     WHERE t.task_id = a.id AND t.state = 'succeeded'))),
	'0', 'every acknowledged completion is succeeded (' . scalar(@$completed) . ')');

# Every acknowledged event exists, with the producer it was emitted for.
my $pairs = join(',', map { "($_, $events->{$_})" } sort keys %$events);
is($node->safe_psql('postgres',
		qq(SELECT count(*) FROM (VALUES $pairs) a(event_id, task_id)
		   WHERE NOT EXISTS (SELECT 1 FROM trace.event e
		                     WHERE e.event_id = a.event_id
		                       AND e.producer_task_id = a.task_id))),
	'0', 'every acknowledged emit survived (' . scalar(keys %$events) . ')');

# And the queue still works after recovery: every task left queued is
# claimable, exactly once.
my $queued = $node->safe_psql('postgres',
	q(SELECT count(*) FROM trace.task WHERE state = 'queued'));
is($node->safe_psql('postgres',
		q(SELECT count(DISTINCT task_id)
		  FROM trace.claim_tasks('after', ARRAY['ecs_platform'], 10000))),
	$queued, "the $queued tasks left queued are claimable after recovery");

$node->stop;
done_testing();
