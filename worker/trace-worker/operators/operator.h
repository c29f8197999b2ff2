/*
 * operator.h: the interface between trace-worker and its operators.
 *
 * An operator is a name and a run function in one static table
 * (operator.c).  The worker calls run() in a task slot's thread with the
 * task (the jsonb from trace.task_fetch: task_id, attempt, mode, payload,
 * job {name, operator, config, ...}) and a context.  Through the context an
 * operator writes rows, emits events, logs, and asks whether it must stop
 * (the task was canceled, its lease was lost, or the worker is shutting
 * down).  The context does the fencing: an operator never sees a lease.
 *
 * run() fills an op_result and returns.  It must return soon after
 * should_stop() turns true (with OP_STOPPED).  It must not keep threads or
 * child processes past its return.
 */
#ifndef TRACE_OPERATOR_H
#define TRACE_OPERATOR_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Settings an operator may use: a snapshot taken when the task starts. */
typedef struct op_settings {
    char    udf_dir[1024];
    char    scratch_dir[1024];
    char    bwrap_path[256];
    char    python_path[256];
    char    node_path[256];
    int     drop_privileges;    /* the worker runs as root */
    uid_t   sandbox_uid;
    gid_t   sandbox_gid;
    int64_t udf_timeout_ms;
    int64_t udf_memory_bytes;
    int64_t udf_max_output_bytes;
    int64_t udf_max_line_bytes;
    int64_t udf_max_file_bytes;
    int64_t udf_max_rows;
    int64_t udf_max_events;
    int64_t udf_max_procs;
    int64_t udf_max_open_files;
    char    rpc_gateway[1024];  /* chain operators: <rpc_gateway>/rpc/<provider> */
} op_settings;

typedef struct op_ctx op_ctx;
struct op_ctx {
    void *impl;                         /* the worker's; opaque here */
    const op_settings *settings;
    int64_t task_id;
    int attempt;

    /* trace.emit_event for this task.  payload is borrowed.  0, or with err
     * filled -1 (worth a retry: lease lost, task canceled, a transient
     * database error) or -2 (permanent: bad input, missing function, no
     * privilege). */
    int (*emit_event)(op_ctx *ctx, const char *dataset, const char *partition_key,
                      json_t *payload, char *err, size_t errlen);
    /* trace.write_rows: replaces the rows of one partition of a dataset
     * (in the version this task writes) with rows, a JSON array of
     * objects.  *written gets the count.  0, -1 or -2 as emit_event. */
    int (*write_rows)(op_ctx *ctx, const char *dataset, const char *partition_key,
                      json_t *rows, int64_t *written, char *err, size_t errlen);
    /* A log line about this task. */
    void (*log)(op_ctx *ctx, int level, const char *msg);
    /* A UDF's own log line (stamped origin=udf). */
    void (*log_udf)(op_ctx *ctx, int level, const char *msg);
    /* Nonzero when the operator must stop now. */
    int (*should_stop)(op_ctx *ctx);
    /* Records the pid of a child process group the worker must kill on an
     * immediate exit (0 = none). */
    void (*set_child)(op_ctx *ctx, pid_t pgid);

    /* Statements on the task slot's own connection, for operators that
     * write tables themselves in transactions of their own (the chain
     * operators).  db_exec_fenced binds $1, $2, $3 to the task's
     * (task_id, attempt, lease_token) and vals[] to $4 on: the operator
     * still never sees the lease.  Outside a transaction a statement whose
     * connection broke is repeated after reconnecting (use that for reads
     * and idempotent calls only); inside one (db_begin .. db_commit or
     * db_rollback) it is not: the transaction is gone and the call fails.
     * A lost lease or a cancel sets should_stop().  Returns the result (the
     * caller PQclear()s it), or NULL with err filled and *rc = -1 (worth a
     * retry) or -2 (permanent: bad SQL, no privilege, bad data). */
    PGresult *(*db_exec)(op_ctx *ctx, const char *sql, int n, const char *const *vals,
                         int *rc, char *err, size_t errlen);
    PGresult *(*db_exec_fenced)(op_ctx *ctx, const char *sql, int n, const char *const *vals,
                                int *rc, char *err, size_t errlen);
    /* BEGIN (connecting first if needed).  0, -1 or -2 as db_exec. */
    int (*db_begin)(op_ctx *ctx, char *err, size_t errlen);
    /* Runs sql (a COPY ... FROM STDIN) and sends it data, len bytes, in the
     * current transaction.  0, -1 or -2. */
    int (*db_copy)(op_ctx *ctx, const char *sql, const char *data, size_t len,
                   char *err, size_t errlen);
    /* COMMIT.  0 when committed; -1 when it did not commit, or when the
     * connection broke so that the outcome is unknown: the operator must
     * then re-read whatever durable state the transaction would have
     * changed. */
    int (*db_commit)(op_ctx *ctx, char *err, size_t errlen);
    /* ROLLBACK of the current transaction, if any (never fails). */
    void (*db_rollback)(op_ctx *ctx);
};

typedef enum { OP_SUCCEEDED = 0, OP_FAILED, OP_STOPPED } op_outcome;

typedef struct op_result {
    op_outcome outcome;
    int        retryable;       /* OP_FAILED: may it be retried? */
    char       error[4096];     /* OP_FAILED / OP_STOPPED: why */
    json_t    *result;          /* OP_SUCCEEDED: optional, owned by the result */
} op_result;

typedef int (*op_run_fn)(op_ctx *ctx, json_t *task, op_result *res);

typedef struct op_def {
    const char *name;
    op_run_fn   run;
    const char *summary;
} op_def;

/* The operator registered under name, or NULL. */
const op_def *operator_find(const char *name);
/* "noop, udf": the names, for error messages. */
void operator_names(char *buf, size_t n);

/* Fills res as a failure. */
void op_fail(op_result *res, int retryable, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The built-ins. */
int op_noop_run(op_ctx *ctx, json_t *task, op_result *res);
int op_udf_run(op_ctx *ctx, json_t *task, op_result *res);
/* op_chain_follower.c, op_chain_range.c */
int op_block_follower_run(op_ctx *ctx, json_t *task, op_result *res);
int op_range_ingest_run(op_ctx *ctx, json_t *task, op_result *res);

#endif
