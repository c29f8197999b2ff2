/*
 * task_ctx.c: what an operator reaches through its op_ctx (operator.h):
 * events, rows, its own statements and transactions, logging and the stop
 * flag, all fenced with the task's lease by fenced_call (task.c).  An
 * operator never sees the lease.
 */
#define _GNU_SOURCE
#include "task.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fenced call taking the task's fence, dataset, partition key and a
 * JSON value ($1..$6): trace.emit_event and trace.write_rows.  The result
 * in *r on 0; else -1 or -2 (permanent) with err filled, as map_fc. */
static int
json_call(slot_ctx *sc, const char *what, const char *sql, const char *dataset,
          const char *partition_key, json_t *value, PGresult **r, char *err, size_t errlen)
{
    char *p = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *vals[6] = {sc->id, sc->attempt, sc->t->l.token, dataset, partition_key, p};
    pgc_error e;
    enum fc rc;

    if (p == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    rc = fenced_call(sc->s, sc->t, what, sql, 6, vals, 1, r, &e);
    free(p);
    if (rc == FC_ERROR && strcmp(e.sqlstate, "42883") == 0) {
        set_err(err, errlen, "trace.%s is missing from this database (%s)", what, e.msg);
        return -2;
    }
    return map_fc(rc, &e, err, errlen);
}

static int
ctx_emit_event(op_ctx *c, const char *dataset, const char *partition_key, json_t *payload,
               char *err, size_t errlen)
{
    slot_ctx *sc = c->impl;
    PGresult *r;
    int rc = json_call(sc, "emit_event",
                       "SELECT trace.emit_event($1::bigint, $2::int, $3::uuid, $4, $5, $6::jsonb)",
                       dataset, partition_key, payload, &r, err, errlen);

    if (rc == 0) {
        log_task(LOG_DEBUG, sc->t->l.task_id, sc->t->l.attempt,
                 "emitted event %s for dataset \"%s\" partition \"%s\"", value0(r), dataset,
                 partition_key);
        PQclear(r);
    }
    return rc;
}

static int
ctx_write_rows(op_ctx *c, const char *dataset, const char *partition_key, json_t *rows,
               int64_t *written, char *err, size_t errlen)
{
    slot_ctx *sc = c->impl;
    PGresult *r;
    int rc = json_call(sc, "write_rows",
                       "SELECT trace.write_rows($1::bigint, $2::int, $3::uuid, $4, $5, $6::jsonb)",
                       dataset, partition_key, rows, &r, err, errlen);

    if (rc == 0) {
        *written = strtoll(value0(r), NULL, 10);
        log_task(LOG_DEBUG, sc->t->l.task_id, sc->t->l.attempt,
                 "wrote %" PRId64 " rows to dataset \"%s\" partition \"%s\"", *written, dataset,
                 partition_key);
        PQclear(r);
    }
    return rc;
}

static void
ctx_log(op_ctx *c, int level, const char *msg)
{
    log_task(level, c->task_id, c->attempt, "%s", msg);
}

static void
ctx_log_udf(op_ctx *c, int level, const char *msg)
{
    log_udf(level, c->task_id, c->attempt, msg);
}

static int
ctx_should_stop(op_ctx *c)
{
    slot_ctx *sc = c->impl;
    worker *w = sc->s->w;

    return atomic_load(&sc->s->verdict) != V_NONE || atomic_load(&w->drain_expired) ||
           atomic_load(&w->stop_now);
}

static void
ctx_set_child(op_ctx *c, pid_t pgid)
{
    slot_ctx *sc = c->impl;

    atomic_store(&sc->s->child_pgid, (int) pgid);
}

/* Operators' own statements and transactions (operator.h, db_*).  Inside
 * a transaction nothing is repeated after a broken connection: the server
 * has rolled the transaction back, so the call fails and the operator
 * starts over from its durable state. */
static PGresult *
db_exec(op_ctx *c, int fence, const char *sql, int n, const char *const *vals, int *rc,
        char *err, size_t errlen)
{
    slot_ctx *sc = c->impl;
    const char *all[64];
    int total = fence ? n + 3 : n;
    PGresult *r;
    pgc_error e;
    enum fc f;

    *rc = 0;
    if (n < 0 || total > (int) ARRAY_LEN(all)) {
        set_err(err, errlen, "db_exec: too many parameters");
        *rc = -2;
        return NULL;
    }
    if (sc->in_tx && !pgc_connected(&sc->s->conn)) {
        set_err(err, errlen, "the connection was lost: the transaction was rolled back");
        sc->in_tx = 0;
        *rc = -1;
        return NULL;
    }
    if (fence) {
        all[0] = sc->id;
        all[1] = sc->attempt;
        all[2] = sc->t->l.token;
    }
    for (int i = 0; i < n; i++)
        all[total - n + i] = vals[i];
    f = fenced_call(sc->s, sc->t, "an operator statement", sql, total, all, !sc->in_tx, &r, &e);
    if (f == FC_OK)
        return r;
    if (f == FC_UNKNOWN) {
        set_err(err, errlen, "the connection was lost: the transaction was rolled back (%s)",
                e.msg);
        sc->in_tx = 0;
        *rc = -1;
        return NULL;
    }
    *rc = map_fc(f, &e, err, errlen);
    return NULL;
}

static PGresult *
ctx_db_exec(op_ctx *c, const char *sql, int n, const char *const *vals, int *rc, char *err,
            size_t errlen)
{
    return db_exec(c, 0, sql, n, vals, rc, err, errlen);
}

static PGresult *
ctx_db_exec_fenced(op_ctx *c, const char *sql, int n, const char *const *vals, int *rc,
                   char *err, size_t errlen)
{
    return db_exec(c, 1, sql, n, vals, rc, err, errlen);
}

static int
ctx_db_begin(op_ctx *c, char *err, size_t errlen)
{
    slot_ctx *sc = c->impl;
    PGresult *r;
    int rc;

    if (sc->in_tx) {
        set_err(err, errlen, "db_begin: a transaction is already open");
        return -2;
    }
    r = ctx_db_exec(c, "BEGIN", 0, NULL, &rc, err, errlen);
    if (r == NULL)
        return rc;
    PQclear(r);
    sc->in_tx = 1;
    return 0;
}

static int
ctx_db_copy(op_ctx *c, const char *sql, const char *data, size_t len, char *err, size_t errlen)
{
    slot_ctx *sc = c->impl;
    pgc_error e;

    if (!sc->in_tx || !pgc_connected(&sc->s->conn)) {
        set_err(err, errlen, "db_copy: no open transaction (the connection was lost?)");
        sc->in_tx = 0;
        return -1;
    }
    if (pgc_copy_in(&sc->s->conn, sql, data, len, &e) == 0)
        return 0;
    if (e.status == PGC_CONN_LOST) {
        set_err(err, errlen, "the connection was lost during COPY: the transaction was rolled "
                "back (%s)", e.msg);
        sc->in_tx = 0;
        return -1;
    }
    set_err(err, errlen, "COPY failed: %s [SQLSTATE %s]", e.msg, e.sqlstate);
    return sqlstate_is_permanent(e.sqlstate) ? -2 : -1;
}

static int
ctx_db_commit(op_ctx *c, char *err, size_t errlen)
{
    slot_ctx *sc = c->impl;
    PGresult *r;
    int rc, committed;

    if (!sc->in_tx) {
        set_err(err, errlen, "db_commit: no open transaction");
        return -1;
    }
    r = ctx_db_exec(c, "COMMIT", 0, NULL, &rc, err, errlen);
    sc->in_tx = 0;
    if (r == NULL) {
        if (!pgc_connected(&sc->s->conn))
            set_err(err, errlen, "the connection was lost during COMMIT: its outcome is unknown");
        return -1;
    }
    /* COMMIT of a transaction that had failed answers ROLLBACK. */
    committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
    PQclear(r);
    if (!committed) {
        set_err(err, errlen, "the transaction had failed and was rolled back");
        return -1;
    }
    return 0;
}

void
task_ctx_rollback(op_ctx *c)
{
    slot_ctx *sc = c->impl;
    PGresult *r;
    pgc_error e;

    if (!sc->in_tx)
        return;
    sc->in_tx = 0;
    if (!pgc_connected(&sc->s->conn))
        return;
    r = pgc_exec(&sc->s->conn, "ROLLBACK", 0, NULL, &e);
    PQclear(r);
}

void
task_ctx_init(op_ctx *ctx, slot_ctx *sc, const op_settings *settings)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->impl = sc;
    ctx->settings = settings;
    ctx->task_id = sc->t->l.task_id;
    ctx->attempt = sc->t->l.attempt;
    ctx->emit_event = ctx_emit_event;
    ctx->write_rows = ctx_write_rows;
    ctx->log = ctx_log;
    ctx->log_udf = ctx_log_udf;
    ctx->should_stop = ctx_should_stop;
    ctx->set_child = ctx_set_child;
    ctx->db_exec = ctx_db_exec;
    ctx->db_exec_fenced = ctx_db_exec_fenced;
    ctx->db_begin = ctx_db_begin;
    ctx->db_copy = ctx_db_copy;
    ctx->db_commit = ctx_db_commit;
    ctx->db_rollback = task_ctx_rollback;
}
