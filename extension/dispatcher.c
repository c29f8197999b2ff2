/*-------------------------------------------------------------------------
 * dispatcher.c
 *		The "trace dispatcher" background worker: trace's timed work.
 *
 * Each pass runs a fixed list of steps, each a SQL function called in a
 * transaction of its own: expire overdue leases, release scheduled tasks that
 * fell due (with wake-ups), fire cron schedules, run the tasks of the
 * dispatcher runtime (aggregator, splitter, sql), cut over DAG versions that
 * caught up, relay the outbox, and now and then keep the task-history
 * partitions and drop old dataset versions.  Between passes it sleeps on its latch until the
 * next scheduled task is due, at most trace.dispatcher_interval.
 *
 * Crash-only: all state is in tables.  An ERROR in a step rolls that step's
 * transaction back and is logged; the other steps go on.  A FATAL (or a
 * kill) ends the worker and the postmaster starts it again; the first pass
 * after a start reconciles whatever was in flight, because every step is a
 * query over table state.
 * SIGTERM is the standard die(): the transaction in progress aborts whole,
 * so a half-relayed outbox batch is never committed.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "trace.h"

/* How often the task-history partitions are looked after. */
#define MAINTENANCE_INTERVAL_MS (60 * 1000)

/* One timed step: a SQL function taking a batch size, returning a count. */
typedef struct DispatcherStep
{
	const char *name;
	const char *sql;
} DispatcherStep;

static const DispatcherStep dispatcher_steps[] = {
	{"expire_leases", "SELECT trace.expire_leases($1)"},
	{"release_scheduled", "SELECT trace.release_scheduled($1)"},
	{"fire_cron", "SELECT trace.fire_cron($1)"},
	{"run_dispatcher_tasks", "SELECT trace.run_dispatcher_tasks($1)"},
	{"cutover_ready", "SELECT trace.cutover_ready($1)"},
	{"relay_outbox", "SELECT trace.relay_outbox($1)"},
};

/* Registers the dispatcher; called from _PG_init while preloading. */
void
trace_dispatcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "trace");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "trace_dispatcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "trace dispatcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "trace dispatcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * Runs one SQL statement (with at most one integer argument) in a
 * transaction of its own and returns its single integer result; -1 when the
 * trace extension is not installed in this database, when the result is
 * NULL, or when the statement failed.  A failed step is logged and its
 * transaction rolled back whole; the other steps go on, so one broken step
 * cannot stop lease expiry.  FATAL and worse still end the worker.
 */
static int64
dispatcher_run_sql(const char *sql, int64 arg, int nargs, Oid argtype)
{
	volatile int64 result = -1;
	Datum		value = (argtype == INT4OID) ? Int32GetDatum((int32) arg) : Int64GetDatum(arg);
	MemoryContext loop_context = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		if (OidIsValid(get_extension_oid("trace", true)))
		{
			bool		isnull;
			Datum		d;

			pgstat_report_activity(STATE_RUNNING, sql);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "trace dispatcher: SPI_connect failed");
			if (SPI_execute_with_args(sql, nargs, &argtype, &value, NULL, false, 1) != SPI_OK_SELECT
				|| SPI_processed != 1)
				elog(ERROR, "trace dispatcher: unexpected result from \"%s\"", sql);
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
				result = (SPI_tuptable->tupdesc->attrs[0].atttypid == INT4OID)
					? DatumGetInt32(d) : DatumGetInt64(d);
			SPI_finish();
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loop_context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		result = -1;
	}
	PG_END_TRY();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return result;
}

/*
 * Runs every step once.  Returns true when some step filled its batch, i.e.
 * there may be more to do right away.
 */
static bool
dispatcher_run_steps(void)
{
	bool		more = false;

	for (size_t i = 0; i < lengthof(dispatcher_steps); i++)
	{
		int64		done = dispatcher_run_sql(dispatcher_steps[i].sql,
											  trace_dispatcher_batch, 1, INT4OID);

		if (done > 0)
			elog(DEBUG1, "trace dispatcher: %s handled " INT64_FORMAT,
				 dispatcher_steps[i].name, done);
		if (done >= trace_dispatcher_batch)
			more = true;
		CHECK_FOR_INTERRUPTS();
	}
	return more;
}

/* Keeps the task-history partitions and drops old dataset versions. */
static void
dispatcher_maintain_history(void)
{
	dispatcher_run_sql("SELECT 0::bigint FROM trace.maintain_task_history(make_interval(secs => $1))",
					   trace_task_retention_s, 1, INT8OID);
	dispatcher_run_sql("SELECT trace.drop_old_versions()", 0, 0, INT8OID);
}

/* Shortest sleep between passes: a task that is due but locked (so not
 * released yet) must not make the dispatcher spin. */
#define MIN_SLEEP_MS 10

/* How long to sleep: until the next scheduled task, at most the interval. */
static long
dispatcher_sleep_ms(void)
{
	int64		due = dispatcher_run_sql("SELECT trace.next_due_ms()", 0, 0, INT8OID);

	if (due >= 0 && due < trace_dispatcher_interval_ms)
		return (long) Max(due, Min(MIN_SLEEP_MS, trace_dispatcher_interval_ms));
	return trace_dispatcher_interval_ms;
}

/* Applies a SIGHUP: re-reads the configuration and says what changed. */
static void
dispatcher_reload_config(void)
{
	int			old_interval = trace_dispatcher_interval_ms;

	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	if (old_interval != trace_dispatcher_interval_ms)
		ereport(LOG,
				(errmsg("trace dispatcher: interval is now %d ms",
						trace_dispatcher_interval_ms)));
}

void
trace_dispatcher_main(Datum main_arg)
{
	TimestampTz last_maintenance = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(trace_database, NULL, 0);
	pgstat_report_appname("trace dispatcher");
	trace_dispatcher_publish_latch();
	ereport(LOG,
			(errmsg("trace dispatcher started in database \"%s\", interval %d ms",
					trace_database, trace_dispatcher_interval_ms)));

	for (;;)
	{
		long		sleep_ms = 0;
		TimestampTz now = GetCurrentTimestamp();

		if (TimestampDifferenceExceeds(last_maintenance, now, MAINTENANCE_INTERVAL_MS))
		{
			dispatcher_maintain_history();
			last_maintenance = now;
		}
		if (!dispatcher_run_steps())
			sleep_ms = dispatcher_sleep_ms();

		if (sleep_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 sleep_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
			dispatcher_reload_config();
	}
}
