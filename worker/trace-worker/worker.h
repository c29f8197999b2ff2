/*
 * worker.h: the shared state of one trace-worker process, and the
 * functions its files offer each other:
 *
 *   loop.c      the main thread's loop: signals, connections, work, wait
 *   claim.c     the claim path (trace.claim_tasks) and the heartbeats
 *   slots.c     the task slots: one thread and one connection each
 *   task.c      one task's lifecycle in a slot: fetch, run, complete/fail
 *   task_ctx.c  what an operator reaches through its op_ctx (fenced calls)
 *   run_udf.c   `trace-worker run-udf`: one UDF run without a database
 *
 * Threads: the main thread runs the loop (signals, LISTEN, claiming,
 * heartbeats, reconnects) on two connections of its own; each task slot is
 * a thread with its own connection that runs one task at a time.
 * Ownership:
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
#include "daemon.h"
#include "listen.h"
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

#define TRACE_WORKER_VERSION "0.1"

/* ---- loop.c ------------------------------------------------------------ */

/* Runs the worker until it drained or was told to exit now; frees cfg.
 * argc/argv are read again on SIGHUP.  Returns the exit code. */
int worker_run(worker_config *cfg, int argc, char **argv);

/* ---- claim.c ----------------------------------------------------------- */

/* What the main thread's loop keeps. */
typedef struct loop_state {
    worker       *w;
    pgconn        ctl;              /* claims and heartbeats */
    listener      lis;              /* LISTEN trace_wakeup */
    daemon_state  ds;               /* draining, its deadline */
    char          runtimes[512];    /* text[] literal */
    char          lease_param[64];  /* "N milliseconds", "" = the job's lease */
    int           maybe_more;       /* claim again as soon as there is room */
    int64_t       next_poll_ms;
    int64_t       hard_deadline_ms; /* after drain_timeout: the slots' last chance */
} loop_state;

/* The lease claims ask for: cfg->lease_ms, or the job's when 0. */
void apply_lease_param(loop_state *ls, const worker_config *cfg);
/* Claims up to the free capacity and hands the tasks to idle slots. */
void claim(loop_state *ls);
/* Heartbeats every running task whose time has come. */
void heartbeats(loop_state *ls);
/* The next instant any heartbeat is due (INT64_MAX when none). */
int64_t next_heartbeat(worker *w);

/* ---- run_udf.c --------------------------------------------------------- */

/* `trace-worker run-udf`: one UDF in the sandbox, its output as JSON lines
 * on stdout.  The exit code. */
int run_udf_main(worker_config *cfg, const char *language, const char *entrypoint,
                 const char *payload_text, const char *config_text);

/* ---- slots.c ----------------------------------------------------------- */

/* Starts the slot threads.  0 or -1 with err filled. */
int slots_start(worker *w, char *err, size_t errlen);
/* Asks idle slot threads to exit and joins those that do within wait_ms.
 * Returns the number still running. */
int slots_stop(worker *w, int64_t wait_ms);
/* Hands a claimed task to an idle slot (main thread). 0, or -1 if none idle. */
int slot_assign(worker *w, const claimed_task *t);
int slots_idle(worker *w);
/* Kills the UDF sandboxes of every slot (exit now). */
void slots_kill_children(worker *w);

/* ---- task.c, task_ctx.c ------------------------------------------------ */

/* One task, start to end, in slot s's thread. */
void run_task(slot *s, claimed_task *t);

/* True for SQLSTATEs that mean "the lease is not yours" (TR001, TR004). */
int sqlstate_is_lost(const char *state);
/* True for SQLSTATEs a retry cannot fix (bad data, missing function,
 * privileges, too large). */
int sqlstate_is_permanent(const char *state);

#endif
