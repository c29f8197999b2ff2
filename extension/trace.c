/*-------------------------------------------------------------------------
 * trace.c
 *		Module entry point: the GUCs and the dispatcher registration.
 *
 * Trace must be in shared_preload_libraries for its dispatcher background
 * worker to run; the SQL functions work without it, but nothing then expires
 * leases or releases retries, so a backend that loads the module late warns.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "trace.h"

PG_MODULE_MAGIC;

char	   *trace_database = NULL;
int			trace_dispatcher_interval_ms = 1000;
int			trace_dispatcher_batch = 1000;
int			trace_task_retention_s = 7 * 24 * 3600;
int			trace_max_payload_bytes = 1024 * 1024;
int			trace_max_write_bytes = 64 * 1024 * 1024;
int			trace_cutover_lock_timeout_ms = 100;
int			trace_version_retention_s = 7 * 24 * 3600;
int			trace_versions_kept = 2;

void		_PG_init(void);

/* Defines the GUCs; those the dispatcher reads at start need a restart. */
static void
trace_define_gucs(void)
{
	DefineCustomStringVariable("trace.database",
							   "Database in which the trace dispatcher runs.",
							   "The trace extension must be created in this database.",
							   &trace_database,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("trace.dispatcher_interval",
							"Longest time the dispatcher sleeps between passes.",
							"It wakes earlier when a scheduled task falls due.",
							&trace_dispatcher_interval_ms,
							1000, 10, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("trace.dispatcher_batch",
							"Most rows one dispatcher step handles in one transaction.",
							NULL,
							&trace_dispatcher_batch,
							1000, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("trace.task_retention",
							"How long finished tasks are kept before their partition is dropped.",
							NULL,
							&trace_task_retention_s,
							7 * 24 * 3600, 3600, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("trace.max_payload_bytes",
							"Largest JSON payload, result or config a trace function accepts.",
							NULL,
							&trace_max_payload_bytes,
							1024 * 1024, 1024, 256 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("trace.max_write_bytes",
							"Largest set of rows one trace.write_rows call accepts.",
							"The rows replace one whole partition of a dataset.",
							&trace_max_write_bytes,
							64 * 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("trace.cutover_lock_timeout",
							"Longest wait of a cutover or rollback for readers' locks.",
							"A cutover that cannot get its locks in time is retried later.",
							&trace_cutover_lock_timeout_ms,
							100, 1, 60 * 1000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("trace.version_retention",
							"How long retired dataset versions are kept for rollback.",
							NULL,
							&trace_version_retention_s,
							7 * 24 * 3600, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("trace.versions_kept",
							"How many retired versions of each dataset are kept whatever their age.",
							NULL,
							&trace_versions_kept,
							2, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	MarkGUCPrefixReserved("trace");
}

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	trace_define_gucs();

	if (!process_shared_preload_libraries_in_progress)
	{
		ereport(WARNING,
				(errmsg("trace is not in shared_preload_libraries"),
				 errdetail("The trace dispatcher does not run, so leases never expire and retries are never released."),
				 errhint("Add trace to shared_preload_libraries and restart the server.")));
		return;
	}
	trace_shmem_install();
	trace_dispatcher_register();
}
