/*
 * task.c: task slots: one thread and one connection each, running one task
 * at a time through its lifecycle:
 *
 *   fetch (trace.task_fetch) -> run the operator -> complete or fail
 *
 * while main's heartbeats keep the lease (worker.h).  Fencing rules kept
 * here:
 *   - every call carries (task_id, attempt, lease_token);
 *   - TR001/TR004 (the lease is not ours) ends the task at once: log and
 *     abandon; the call is never retried;
 *   - a call whose connection broke has an unknown outcome.  Idempotent
 *     calls (fetch, heartbeat, emit_event, write_rows) are repeated after
 *     reconnecting.  complete_task/fail_task are not: a heartbeat decides
 *     first.  'ok'/'canceled' means the lease is still ours and the call
 *     did not take effect, so it is made again; TR001 means the task ended
 *     or moved on, and the worker abandons it.  So the worker never
 *     completes with a token it cannot confirm.
 */
#define _GNU_SOURCE
#include "worker.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum fc { FC_OK, FC_LOST, FC_CANCELED, FC_ERROR, FC_UNKNOWN, FC_ABORTED };

int
sqlstate_is_lost(const char *state)
{
    return strcmp(state, "TR001") == 0 || strcmp(state, "TR004") == 0;
}

int
sqlstate_is_permanent(const char *state)
{
    /* Data exceptions, undefined objects, privileges, and the extension's
     * own TRxxx errors (too large, no such job, not an output...) other
     * than the lease and cancel ones, which are handled before this. */
    return strncmp(state, "22", 2) == 0 || strncmp(state, "42", 2) == 0 ||
           (strncmp(state, "TR", 2) == 0 && !sqlstate_is_lost(state) &&
            strcmp(state, "TR002") != 0);
}

/* Stop waiting for a connection: exit now, or the lease is gone. */
static int
slot_abort(void *arg)
{
    slot *s = arg;

    return atomic_load(&s->w->stop_now) || atomic_load(&s->verdict) == V_LOST;
}

/* Runs one fenced statement on the slot's connection (see the header).
 * *out gets the result on FC_OK (caller PQclear()s); e is filled otherwise. */
static enum fc
fenced_call(slot *s, const claimed_task *t, const char *what, const char *sql, int n,
            const char *const *vals, int idempotent, PGresult **out, pgc_error *e)
{
    *out = NULL;
    for (;;) {
        if (atomic_load(&s->w->stop_now))
            return FC_ABORTED;
        if (!pgc_connected(&s->conn) && pgc_connect_wait(&s->conn, slot_abort, s) < 0) {
            memset(e, 0, sizeof *e);
            copy_str(e->msg, sizeof e->msg, "gave up connecting");
            return atomic_load(&s->verdict) == V_LOST ? FC_LOST : FC_ABORTED;
        }
        *out = pgc_exec(&s->conn, sql, n, vals, e);
        if (*out)
            return FC_OK;
        if (e->status == PGC_SQL_ERROR) {
            if (sqlstate_is_lost(e->sqlstate)) {
                atomic_store(&s->verdict, V_LOST);
                log_task(LOG_WARN, t->l.task_id, t->l.attempt,
                         "lease lost (%s on %s: %s): abandoning the task", e->sqlstate, what,
                         e->msg);
                return FC_LOST;
            }
            if (strcmp(e->sqlstate, "TR002") == 0) {
                int none = V_NONE;

                atomic_compare_exchange_strong(&s->verdict, &none, V_CANCELED);
                return FC_CANCELED;
            }
            return FC_ERROR;
        }
        log_task(LOG_WARN, t->l.task_id, t->l.attempt,
                 "%s connection lost during %s (%s)%s", s->name, what, e->msg,
                 idempotent ? ": reconnecting and repeating it (idempotent)"
                            : ": outcome unknown, a heartbeat will decide");
        if (!idempotent)
            return FC_UNKNOWN;
    }
}

/* The text of column 0 of row 0 ("" if none). */
static const char *
value0(PGresult *r)
{
    return (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) ? PQgetvalue(r, 0, 0) : "";
}

typedef struct slot_ctx {
    slot         *s;
    claimed_task *t;
    char          id[24], attempt[16];
    int           in_tx;        /* an operator's transaction is open (db_begin) */
} slot_ctx;

static int
map_fc(enum fc rc, const pgc_error *e, char *err, size_t errlen)
{
    switch (rc) {
    case FC_OK:
        return 0;
    case FC_LOST:
        set_err(err, errlen, "the lease was lost");
        return -1;
    case FC_CANCELED:
        set_err(err, errlen, "the task was canceled");
        return -1;
    case FC_ERROR:
        set_err(err, errlen, "%s [SQLSTATE %s]", e->msg, e->sqlstate);
        return sqlstate_is_permanent(e->sqlstate) ? -2 : -1;
    default:
        set_err(err, errlen, "the worker is stopping");
        return -1;
    }
}

static int
ctx_emit_event(op_ctx *c, const char *dataset, const char *partition_key, json_t *payload,
               char *err, size_t errlen)
{
    slot_ctx *sc = c->impl;
    char *p = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *vals[6] = {sc->id, sc->attempt, sc->t->l.token, dataset, partition_key, p};
    PGresult *r;
    pgc_error e;
    enum fc rc;
    int out;

    if (p == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    rc = fenced_call(sc->s, sc->t, "emit_event",
                     "SELECT trace.emit_event($1::bigint, $2::int, $3::uuid, $4, $5, $6::jsonb)",
                     6, vals, 1, &r, &e);
    free(p);
    out = map_fc(rc, &e, err, errlen);
    if (rc == FC_OK) {
        log_task(LOG_DEBUG, sc->t->l.task_id, sc->t->l.attempt,
                 "emitted event %s for dataset \"%s\" partition \"%s\"", value0(r), dataset,
                 partition_key);
        PQclear(r);
    }
    return out;
}

static int
ctx_write_rows(op_ctx *c, const char *dataset, const char *partition_key, json_t *rows,
               int64_t *written, char *err, size_t errlen)
{
    slot_ctx *sc = c->impl;
    char *p = json_dumps(rows, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *vals[6] = {sc->id, sc->attempt, sc->t->l.token, dataset, partition_key, p};
    PGresult *r;
    pgc_error e;
    enum fc rc;
    int out;

    if (p == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    rc = fenced_call(sc->s, sc->t, "write_rows",
                     "SELECT trace.write_rows($1::bigint, $2::int, $3::uuid, $4, $5, $6::jsonb)",
                     6, vals, 1, &r, &e);
    free(p);
    if (rc == FC_ERROR && strcmp(e.sqlstate, "42883") == 0) {
        set_err(err, errlen, "trace.write_rows is missing from this database (%s)", e.msg);
        return -2;
    }
    out = map_fc(rc, &e, err, errlen);
    if (rc == FC_OK) {
        *written = strtoll(value0(r), NULL, 10);
        log_task(LOG_DEBUG, sc->t->l.task_id, sc->t->l.attempt,
                 "wrote %" PRId64 " rows to dataset \"%s\" partition \"%s\"", *written, dataset,
                 partition_key);
        PQclear(r);
    }
    return out;
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
ctx_db_exec(op_ctx *c, int fence, const char *sql, int n, const char *const *vals, int *rc,
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
    r = ctx_db_exec(c, 0, "BEGIN", 0, NULL, &rc, err, errlen);
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
    r = ctx_db_exec(c, 0, "COMMIT", 0, NULL, &rc, err, errlen);
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

static void
ctx_db_rollback(op_ctx *c)
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

/* After an unknown outcome of complete/fail: does the lease still hold?
 * 1 = yes (repeat the call), 0 = no (abandon). */
static int
lease_still_ours(slot *s, const claimed_task *t, const char *id, const char *att)
{
    const char *vals[3] = {id, att, t->l.token};
    PGresult *r;
    pgc_error e;
    enum fc rc = fenced_call(s, t, "heartbeat (deciding an unknown outcome)",
                             "SELECT trace.heartbeat($1::bigint, $2::int, $3::uuid)", 3, vals, 1,
                             &r, &e);

    if (rc == FC_OK) {
        log_task(LOG_INFO, t->l.task_id, t->l.attempt,
                 "heartbeat answered '%s': the lease is still ours, repeating the call",
                 value0(r));
        PQclear(r);
        return 1;
    }
    if (rc == FC_LOST)
        log_task(LOG_WARN, t->l.task_id, t->l.attempt,
                 "the lease is no longer ours after an unknown outcome: the task either "
                 "ended with our call or was taken over; abandoning it");
    else if (rc == FC_ERROR)
        log_task(LOG_WARN, t->l.task_id, t->l.attempt,
                 "cannot confirm the lease (%s); abandoning the task to its lease expiry", e.msg);
    return 0;
}

typedef enum { END_COMPLETE, END_FAIL } end_kind;

/* complete_task or fail_task, with the unknown-outcome rule.  Returns 0 when
 * the database answered (state in *state_out), -1 when the task was
 * abandoned. */
static int
end_task(slot *s, const claimed_task *t, end_kind kind, const char *result_json,
         const char *error, int retryable, char *state_out, size_t state_len, pgc_error *e_out)
{
    char id[24], att[16];
    PGresult *r;
    enum fc rc;

    snprintf(id, sizeof id, "%" PRId64, t->l.task_id);
    snprintf(att, sizeof att, "%d", t->l.attempt);
    for (int tries = 0; tries < 5; tries++) {
        if (kind == END_COMPLETE) {
            const char *vals[4] = {id, att, t->l.token, result_json};

            rc = fenced_call(s, t, "complete_task",
                             "SELECT trace.complete_task($1::bigint, $2::int, $3::uuid, $4::jsonb)",
                             4, vals, 0, &r, e_out);
        } else {
            const char *vals[5] = {id, att, t->l.token, error, retryable ? "true" : "false"};

            rc = fenced_call(s, t, "fail_task",
                             "SELECT trace.fail_task($1::bigint, $2::int, $3::uuid, $4, $5::boolean)",
                             5, vals, 0, &r, e_out);
        }
        switch (rc) {
        case FC_OK:
            copy_str(state_out, state_len, value0(r));
            PQclear(r);
            return 0;
        case FC_UNKNOWN:
            if (!lease_still_ours(s, t, id, att))
                return -1;
            continue;
        case FC_ERROR:
        case FC_CANCELED:
            copy_str(state_out, state_len, "");
            return 1;           /* the database refused: caller decides */
        default:
            return -1;
        }
    }
    log_task(LOG_WARN, t->l.task_id, t->l.attempt,
             "could not end the task after repeated connection losses; abandoning it");
    return -1;
}

static void
abandon(slot *s, const claimed_task *t, const char *why)
{
    atomic_fetch_add(&s->w->n_abandoned, 1);
    log_task(LOG_WARN, t->l.task_id, t->l.attempt, "abandoned: %s", why);
}

/* Fails the task (after an operator failure, a cancel, a stop) and logs. */
static void
fail_and_log(slot *s, const claimed_task *t, const char *error, int retryable)
{
    char state[32];
    pgc_error e;
    int rc = end_task(s, t, END_FAIL, NULL, error, retryable, state, sizeof state, &e);

    if (rc < 0) {
        abandon(s, t, "could not report the failure; the lease will expire");
        return;
    }
    if (rc > 0) {
        log_task(LOG_ERROR, t->l.task_id, t->l.attempt, "fail_task refused: %s [%s]", e.msg,
                 e.sqlstate);
        abandon(s, t, "the failure could not be recorded; the lease will expire");
        return;
    }
    if (strcmp(state, "canceled") == 0) {
        atomic_fetch_add(&s->w->n_canceled, 1);
        log_task(LOG_INFO, t->l.task_id, t->l.attempt, "gave the task up: canceled");
    } else {
        atomic_fetch_add(&s->w->n_failed, 1);
        log_task(strcmp(state, "failed") == 0 ? LOG_WARN : LOG_INFO, t->l.task_id, t->l.attempt,
                 "attempt failed (%s), task is now %s: %s",
                 retryable ? "retryable" : "not retryable", state, error);
    }
}

static void
set_state(slot *s, int state)
{
    pthread_mutex_lock(&s->mu);
    s->state = state;
    pthread_mutex_unlock(&s->mu);
}

/* One task, start to end. */
static void
run_task(slot *s, claimed_task *t)
{
    worker *w = s->w;
    slot_ctx sc = {.s = s, .t = t};
    op_ctx ctx;
    op_settings settings;
    op_result res;
    json_t *task = NULL;
    const op_def *op;
    const char *vals[3];
    PGresult *r;
    pgc_error e;
    enum fc rc;
    json_error_t jerr;

    memset(&res, 0, sizeof res);
    snprintf(sc.id, sizeof sc.id, "%" PRId64, t->l.task_id);
    snprintf(sc.attempt, sizeof sc.attempt, "%d", t->l.attempt);
    pthread_mutex_lock(&w->settings_mu);
    settings = w->settings;
    pthread_mutex_unlock(&w->settings_mu);

    vals[0] = sc.id;
    vals[1] = sc.attempt;
    vals[2] = t->l.token;
    rc = fenced_call(s, t, "task_fetch",
                     "SELECT trace.task_fetch($1::bigint, $2::int, $3::uuid)::text", 3, vals, 1,
                     &r, &e);
    if (rc == FC_LOST || rc == FC_ABORTED) {
        abandon(s, t, rc == FC_LOST ? "lease lost before the task started" : "worker stopping");
        goto cleanup;
    }
    if (rc != FC_OK) {
        log_task(LOG_ERROR, t->l.task_id, t->l.attempt, "task_fetch failed: %s [%s]", e.msg,
                 e.sqlstate);
        fail_and_log(s, t, "trace-worker could not fetch the task", 1);
        goto cleanup;
    }
    task = json_loads(value0(r), 0, &jerr);
    PQclear(r);
    if (task == NULL) {
        fail_and_log(s, t, "trace-worker could not parse the task document", 1);
        goto cleanup;
    }
    if (json_is_true(json_object_get(task, "canceled"))) {
        int none = V_NONE;

        atomic_compare_exchange_strong(&s->verdict, &none, V_CANCELED);
    }

    op = operator_find(t->operator_name);
    if (op == NULL) {
        char names[256];

        operator_names(names, sizeof names);
        op_fail(&res, 0, "unknown operator \"%s\": this trace-worker has no such operator "
                "(built in: %s)", t->operator_name, names);
    } else if (atomic_load(&s->verdict) == V_NONE) {
        log_task(LOG_DEBUG, t->l.task_id, t->l.attempt, "running operator %s", op->name);
        memset(&ctx, 0, sizeof ctx);
        ctx.impl = &sc;
        ctx.settings = &settings;
        ctx.task_id = t->l.task_id;
        ctx.attempt = t->l.attempt;
        ctx.emit_event = ctx_emit_event;
        ctx.write_rows = ctx_write_rows;
        ctx.log = ctx_log;
        ctx.log_udf = ctx_log_udf;
        ctx.should_stop = ctx_should_stop;
        ctx.set_child = ctx_set_child;
        ctx.db_exec = ctx_db_exec;
        ctx.db_begin = ctx_db_begin;
        ctx.db_copy = ctx_db_copy;
        ctx.db_commit = ctx_db_commit;
        ctx.db_rollback = ctx_db_rollback;
        op->run(&ctx, task, &res);
        ctx_db_rollback(&ctx);      /* never leave an operator's transaction open */
    } else {
        res.outcome = OP_STOPPED;
    }

    set_state(s, SLOT_FINISHING);   /* main stops heartbeating it */
    switch (atomic_load(&s->verdict)) {
    case V_LOST:
        abandon(s, t, "lease lost; another attempt owns the task");
        goto cleanup;
    case V_CANCELED:
        fail_and_log(s, t, "canceled", 0);
        goto cleanup;
    default:
        break;
    }
    if (atomic_load(&w->stop_now)) {
        abandon(s, t, "worker exiting now; the lease will expire");
        goto cleanup;
    }
    if (res.outcome == OP_STOPPED) {
        fail_and_log(s, t, "trace-worker shutting down: the attempt was stopped and given back "
                     "(drain_timeout passed)", 1);
    } else if (res.outcome == OP_FAILED) {
        fail_and_log(s, t, res.error, res.retryable);
    } else {
        char *result = res.result ? json_dumps(res.result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char state[32];
        int erc = end_task(s, t, END_COMPLETE, result, NULL, 0, state, sizeof state, &e);

        free(result);
        if (erc < 0) {
            abandon(s, t, "completion not confirmed");
        } else if (erc > 0) {
            char msg[1400];

            if (strcmp(e.sqlstate, "TR002") == 0 || atomic_load(&s->verdict) == V_CANCELED) {
                fail_and_log(s, t, "canceled", 0);
            } else {
                snprintf(msg, sizeof msg, "trace.complete_task refused the completion: %s [%s]",
                         e.msg, e.sqlstate);
                fail_and_log(s, t, msg, !sqlstate_is_permanent(e.sqlstate));
            }
        } else if (strcmp(state, "canceled") == 0) {
            atomic_fetch_add(&w->n_canceled, 1);
            log_task(LOG_INFO, t->l.task_id, t->l.attempt, "completed: canceled meanwhile");
        } else {
            atomic_fetch_add(&w->n_succeeded, 1);
            log_task(LOG_INFO, t->l.task_id, t->l.attempt, "completed: %s", state);
        }
    }
cleanup:
    json_decref(res.result);
    json_decref(task);
}

static void
wake_main(worker *w)
{
    uint64_t one = 1;

    (void) !write(w->wake_fd, &one, sizeof one);
}

static void *
slot_main(void *arg)
{
    slot *s = arg;
    worker *w = s->w;

    for (;;) {
        claimed_task t;

        pthread_mutex_lock(&s->mu);
        while (s->state == SLOT_IDLE && !atomic_load(&w->shutdown))
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->state != SLOT_ASSIGNED) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        t = s->task;
        s->state = SLOT_RUNNING;
        pthread_mutex_unlock(&s->mu);

        run_task(s, &t);

        pthread_mutex_lock(&s->mu);
        s->state = SLOT_IDLE;
        memset(&s->task, 0, sizeof s->task);
        pthread_mutex_unlock(&s->mu);
        wake_main(w);
    }
    pgc_close(&s->conn);
    return NULL;
}

int
slots_start(worker *w, char *err, size_t errlen)
{
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        int rc;

        s->w = w;
        s->index = i;
        snprintf(s->name, sizeof s->name, "slot %d", i);
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        if (pgc_init(&s->conn, s->name, w->cfg->conninfo, w->cfg->pg_options,
                     w->cfg->connect_timeout_ms, w->cfg->reconnect_max_ms) < 0) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        rc = pthread_create(&s->thread, NULL, slot_main, s);
        if (rc != 0) {
            set_err(err, errlen, "cannot start thread %d: %s", i, strerror(rc));
            return -1;
        }
        s->started = 1;
    }
    return 0;
}

int
slots_idle(worker *w)
{
    int n = 0;

    for (int i = 0; i < w->nslots; i++) {
        pthread_mutex_lock(&w->slots[i].mu);
        n += w->slots[i].state == SLOT_IDLE;
        pthread_mutex_unlock(&w->slots[i].mu);
    }
    return n;
}

int
slot_assign(worker *w, const claimed_task *t)
{
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];

        pthread_mutex_lock(&s->mu);
        if (s->state == SLOT_IDLE) {
            s->task = *t;
            s->state = SLOT_ASSIGNED;
            s->next_hb_ms = t->claimed_at_ms + t->l.lease_ms / 3;
            atomic_store(&s->verdict, V_NONE);
            pthread_cond_signal(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return -1;
}

int
slots_stop(worker *w, int64_t wait_ms)
{
    int64_t deadline = now_ms() + wait_ms;
    int left = 0;

    atomic_store(&w->shutdown, 1);
    for (int i = 0; i < w->nslots; i++) {
        pthread_mutex_lock(&w->slots[i].mu);
        pthread_cond_broadcast(&w->slots[i].cv);
        pthread_mutex_unlock(&w->slots[i].mu);
    }
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        struct timespec ts;
        int64_t left_ms = deadline - now_ms();

        if (!s->started)
            continue;
        if (left_ms < 0)
            left_ms = 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left_ms / 1000;
        ts.tv_nsec += (left_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_timedjoin_np(s->thread, NULL, &ts) == 0) {
            s->started = 0;
            pgc_destroy(&s->conn);
        } else {
            left++;     /* still in a task: the caller exits around it */
        }
    }
    return left;
}
