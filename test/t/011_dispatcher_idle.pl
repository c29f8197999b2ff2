# An idle dispatcher sleeps: with nothing scheduled it runs about one pass
# per trace.dispatcher_interval, not a busy loop.  Counted through
# pg_stat_user_functions (calls of trace.expire_leases, once per pass)
# while three intervals pass; a busy dispatcher makes thousands of passes.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TraceNode;

my $node = trace_node('dispatcher_idle',
	"trace.dispatcher_interval = '1s'\ntrack_functions = 'pl'\n");
wait_for_dispatcher($node);

my $calls = q{SELECT coalesce((SELECT calls FROM pg_stat_user_functions
                               WHERE schemaname = 'trace' AND funcname = 'expire_leases'), 0)};
# Let the first passes (startup, maintenance) happen and be counted.
$node->poll_query_until('postgres', "SELECT ($calls) >= 1") or die 'dispatcher never ran';
my $start = $node->safe_psql('postgres', "SELECT clock_timestamp()");
my $before = $node->safe_psql('postgres', $calls);
$node->poll_query_until('postgres',
	"SELECT clock_timestamp() > '$start'::timestamptz + interval '3 seconds'")
  or die 'clock did not advance';
# Statistics reach the view within a pass or so; wait for the next flush.
$node->poll_query_until('postgres', "SELECT ($calls) > $before") or die 'no pass counted';
my $passes = $node->safe_psql('postgres', $calls) - $before;

cmp_ok($passes, '>=', 1, "the dispatcher kept running ($passes passes in ~3 intervals)");
cmp_ok($passes, '<=', 12, "it slept between passes ($passes passes in ~3 intervals of 1 s)");
is($node->safe_psql('postgres', 'SELECT trace.next_due_ms() IS NULL'), 't',
	'nothing scheduled: next_due_ms is NULL');

$node->stop;
done_testing();
