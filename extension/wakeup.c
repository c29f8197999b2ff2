/*-------------------------------------------------------------------------
 * wakeup.c
 *		Waking the dispatcher when a transaction that gave it work commits.
 *
 * Workers outside Postgres are woken by NOTIFY; the dispatcher is a
 * background worker and sleeps on its latch instead.  Its latch lives in
 * shared memory (a PGPROC latch, the same address in every backend), so
 * trace.wake_dispatcher() only notes that the current transaction wants it
 * woken, and a transaction callback sets the latch after the commit, when
 * the new rows are visible.  A transaction that aborts wakes nobody.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "trace.h"

typedef struct TraceShared
{
	Latch	   *dispatcher_latch;	/* NULL while no dispatcher runs */
} TraceShared;

static TraceShared *trace_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Per backend: whether the current transaction asked for a wake-up. */
static bool wake_pending = false;
static bool callback_registered = false;

static void
trace_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(TraceShared)));
}

static void
trace_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	trace_shared = ShmemInitStruct("trace", sizeof(TraceShared), &found);
	if (!found)
		trace_shared->dispatcher_latch = NULL;
	LWLockRelease(AddinShmemInitLock);
}

/* Installs the shared-memory hooks; called from _PG_init while preloading. */
void
trace_shmem_install(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = trace_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = trace_shmem_startup;
}

/* Forgets the dispatcher's latch when the dispatcher exits. */
static void
trace_dispatcher_forget_latch(int code, Datum arg)
{
	if (trace_shared != NULL)
		trace_shared->dispatcher_latch = NULL;
}

/* Publishes the calling dispatcher's latch so commits can wake it. */
void
trace_dispatcher_publish_latch(void)
{
	if (trace_shared == NULL)
		return;
	trace_shared->dispatcher_latch = MyLatch;
	on_shmem_exit(trace_dispatcher_forget_latch, (Datum) 0);
}

/* After a commit that asked for it, sets the dispatcher's latch. */
static void
trace_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending && trace_shared != NULL)
			{
				Latch	   *latch = trace_shared->dispatcher_latch;

				if (latch != NULL && latch != MyLatch)
					SetLatch(latch);
			}
			wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_pending = false;
			break;
		default:
			break;
	}
}

PG_FUNCTION_INFO_V1(trace_wake_dispatcher);

/* trace.wake_dispatcher(): wake the dispatcher when this transaction commits. */
Datum
trace_wake_dispatcher(PG_FUNCTION_ARGS)
{
	if (!callback_registered)
	{
		RegisterXactCallback(trace_xact_callback, NULL);
		callback_registered = true;
	}
	wake_pending = true;
	PG_RETURN_VOID();
}
