# TraceNode: what every trace TAP test shares.
#
# A private cluster with trace preloaded and its dispatcher running in the
# `postgres` database every 100 ms, the extension created there, and a few
# helpers for the checks the tests repeat.  Tests wait with poll_query_until
# or wait_for_log, never with a bare sleep.
package TraceNode;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(trace_node dispatcher_pid wait_for_dispatcher sqlstate_of log_offset);

# Every wait here is for something that takes a few seconds at most; fail
# in one minute rather than the default three, unless told otherwise.
$PostgreSQL::Test::Utils::timeout_default = 60
  unless $ENV{PG_TEST_TIMEOUT_DEFAULT};

# Starts a node named $name with trace preloaded; extra lines of
# postgresql.conf may be given.  Returns the started node.
sub trace_node
{
	my ($name, $extra_conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', qq(
shared_preload_libraries = 'trace'
trace.database = 'postgres'
trace.dispatcher_interval = '100ms'
) . ($extra_conf // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION trace');
	return $node;
}

# The pid of the running dispatcher, or '' when there is none.
sub dispatcher_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q(SELECT coalesce(min(pid)::text, '') FROM pg_stat_activity
		  WHERE backend_type = 'trace dispatcher'));
}

# Waits until exactly one dispatcher runs and, when $not_pid is given, it is
# not that one; returns its pid.
sub wait_for_dispatcher
{
	my ($node, $not_pid) = @_;
	my $exclude = defined $not_pid ? "AND pid <> $not_pid" : '';
	$node->poll_query_until('postgres',
		qq(SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE backend_type = 'trace dispatcher' $exclude))
	  or die 'dispatcher did not start';
	return dispatcher_pid($node);
}

# Runs $sql and returns 'ok' when it succeeds, else the SQLSTATE it failed
# with.
sub sqlstate_of
{
	my ($node, $sql) = @_;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=sqlstate' ]);
	return 'ok' if $ret == 0;
	return $1 if $stderr =~ /ERROR:\s+([0-9A-Z]{5})/;
	return "psql exit $ret: $stderr";
}

# The current end of the server log, for wait_for_log.
sub log_offset
{
	my ($node) = @_;
	return -s $node->logfile;
}

1;
