/*-------------------------------------------------------------------------
 * trace.h
 *		Declarations shared by the files of the trace extension.
 *-------------------------------------------------------------------------
 */
#ifndef TRACE_H
#define TRACE_H

#include "postgres.h"

/* GUCs (trace.c) */
extern char *trace_database;
extern int	trace_dispatcher_interval_ms;
extern int	trace_dispatcher_batch;
extern int	trace_task_retention_s;
extern int	trace_max_payload_bytes;
extern int	trace_max_write_bytes;
extern int	trace_cutover_lock_timeout_ms;
extern int	trace_version_retention_s;
extern int	trace_versions_kept;

/* wakeup.c */
extern void trace_shmem_install(void);
extern void trace_dispatcher_publish_latch(void);

/* payload.c */
extern void trace_check_size(Datum value, const char *argument, int limit, const char *setting);

/* dispatcher.c */
extern void trace_dispatcher_register(void);
extern PGDLLEXPORT void trace_dispatcher_main(Datum main_arg);

#endif							/* TRACE_H */
