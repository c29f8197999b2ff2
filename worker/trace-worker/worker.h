/*
 * worker.h: the shared state of one trace-worker process.
 *
 * Threads: main() runs the event loop (signals, LISTEN, claiming,
 * heartbeats, reconnects) on two connections of its own; each task slot is
 * a thread with its own connection that runs one task at a time
 * (task.c).  Ownership:
 *   - slot->state and slot->task are guarded by slot->mu; main moves a slot
 *     IDLE -> ASSIGNED, the slot thread ASSIGNED -> RUNNING -> FINISHING ->
 *     IDLE;
 *   - slot->verdict is set by main's heartbeat (canceled / lost) and by the
 *     slot itself (a fenced call answered TR001/TR002); atomic;
 *   - the worker-wide flags (draining, drain_expired, stop_now, shutdown)
 *     are set by main only; atomic;
 *   - settings (op_settings) are replaced by main on SIGHUP under
 *     settings_mu; a slot copies them when its task starts.
 */
#ifndef TRACE_WORKER_H
#define TRACE_WORKER_H

#include "config.h"
#include "operator.h"
#include "pgconn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

enum slot_state { SLOT_IDLE = 0, SLOT_ASSIGNED, SLOT_RUNNING, SLOT_FINISHING };
enum verdict { V_NONE = 0, V_CANCELED = 1, V_LOST = 2 };

typedef struct lease {
    int64_t task_id;
    int     attempt;
    char    token[40];
    int64_t lease_ms;       /* the lease length, from the database's clock */
} lease;

typedef struct claimed_task {
    lease   l;
    char    operator_name[128];
    int64_t claimed_at_ms;  /* monotonic, when the claim was sent */
} claimed_task;

typedef struct worker worker;

typedef struct slot {
    worker         *w;
    int             index;
    char            name[32];
    pthread_t       thread;
    int             started;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             state;          /* enum slot_state; mu */
    claimed_task    task;           /* mu */
    int64_t         next_hb_ms;     /* main thread only */
    atomic_int      verdict;        /* enum verdict */
    atomic_int      child_pgid;     /* a UDF sandbox to kill on exit-now */
    pgconn          conn;           /* the slot thread only */
} slot;

struct worker {
    worker_config  *cfg;            /* main thread only */
    char            worker_id[256];
    slot           *slots;
    int             nslots;
    int             wake_fd;        /* eventfd: a slot became idle */
    pthread_mutex_t settings_mu;
    op_settings     settings;       /* settings_mu */
    atomic_int      draining;       /* SIGTERM: claim nothing more */
    atomic_int      drain_expired;  /* drain_timeout passed: stop operators */
    atomic_int      stop_now;       /* exit now: abandon everything */
    atomic_int      shutdown;       /* slot threads should exit when idle */
    atomic_long     n_succeeded, n_failed, n_canceled, n_abandoned;
};

/* Starts the slot threads.  0 or -1 with err filled. */
int slots_start(worker *w, char *err, size_t errlen);
/* Asks idle slot threads to exit and joins those that do within wait_ms.
 * Returns the number still running. */
int slots_stop(worker *w, int64_t wait_ms);
/* Hands a claimed task to an idle slot (main thread). 0, or -1 if none idle. */
int slot_assign(worker *w, const claimed_task *t);
int slots_idle(worker *w);

/* True for SQLSTATEs that mean "the lease is not yours" (TR001, TR004). */
int sqlstate_is_lost(const char *state);
/* True for SQLSTATEs a retry cannot fix (bad data, missing function,
 * privileges, too large). */
int sqlstate_is_permanent(const char *state);

#endif
