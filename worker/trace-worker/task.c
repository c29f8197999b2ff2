/*
 * task.c: one task's lifecycle in its slot's thread:
 *
 *   fetch (trace.task_fetch) -> run the operator -> complete or fail
 *
 * while the main thread's heartbeats keep the lease (claim.c).  Fencing
 * rules kept here:
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
#include "task.h"

#include "log.h"
#include "trace_errcodes.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
sqlstate_is_lost(const char *state)
{
    return strcmp(state, TRACE_SQLSTATE_STALE_LEASE) == 0 ||
           strcmp(state, TRACE_SQLSTATE_NO_SUCH_TASK) == 0;
}

int
sqlstate_is_permanent(const char *state)
{
    /* Data exceptions, undefined objects, privileges, and the extension's
     * own TRxxx errors (too large, no such job, not an output...) other
     * than the lease and cancel ones, which are handled before this. */
    return strncmp(state, "22", 2) == 0 || strncmp(state, "42", 2) == 0 ||
           (strncmp(state, "TR", 2) == 0 && !sqlstate_is_lost(state) &&
            strcmp(state, TRACE_SQLSTATE_TASK_CANCELED) != 0);
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
enum fc
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
            if (strcmp(e->sqlstate, TRACE_SQLSTATE_TASK_CANCELED) == 0) {
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
const char *
value0(PGresult *r)
{
    return (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) ? PQgetvalue(r, 0, 0) : "";
}

int
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

/* complete_task or fail_task (sql, vals), with the unknown-outcome rule.
 * 0 when the database answered (state in *state_out), 1 when it refused
 * (e_out says why: the caller decides), -1 when the task was abandoned. */
static int
end_call(slot *s, const claimed_task *t, const char *what, const char *sql, int n,
         const char *const *vals, char *state_out, size_t state_len, pgc_error *e_out)
{
    char id[24], att[16];
    PGresult *r;

    snprintf(id, sizeof id, "%" PRId64, t->l.task_id);
    snprintf(att, sizeof att, "%d", t->l.attempt);
    for (int tries = 0; tries < 5; tries++) {
        switch (fenced_call(s, t, what, sql, n, vals, 0, &r, e_out)) {
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
            return 1;
        default:
            return -1;
        }
    }
    log_task(LOG_WARN, t->l.task_id, t->l.attempt,
             "could not end the task after repeated connection losses; abandoning it");
    return -1;
}

/* trace.complete_task with result_json (NULL: none); as end_call. */
static int
complete_task(slot *s, const claimed_task *t, const char *result_json, char *state_out,
              size_t state_len, pgc_error *e_out)
{
    char id[24], att[16];
    const char *vals[4] = {id, att, t->l.token, result_json};

    snprintf(id, sizeof id, "%" PRId64, t->l.task_id);
    snprintf(att, sizeof att, "%d", t->l.attempt);
    return end_call(s, t, "complete_task",
                    "SELECT trace.complete_task($1::bigint, $2::int, $3::uuid, $4::jsonb)", 4, vals,
                    state_out, state_len, e_out);
}

/* trace.fail_task with error and retryable; as end_call. */
static int
fail_task(slot *s, const claimed_task *t, const char *error, int retryable, char *state_out,
          size_t state_len, pgc_error *e_out)
{
    char id[24], att[16];
    const char *vals[5] = {id, att, t->l.token, error, retryable ? "true" : "false"};

    snprintf(id, sizeof id, "%" PRId64, t->l.task_id);
    snprintf(att, sizeof att, "%d", t->l.attempt);
    return end_call(s, t, "fail_task",
                    "SELECT trace.fail_task($1::bigint, $2::int, $3::uuid, $4, $5::boolean)", 5, vals,
                    state_out, state_len, e_out);
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
    int rc = fail_task(s, t, error, retryable, state, sizeof state, &e);

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

/* The task document of t (trace.task_fetch), or NULL when the task was
 * abandoned or failed instead (already reported). */
static json_t *
fetch_task(slot *s, claimed_task *t, const slot_ctx *sc)
{
    const char *vals[3] = {sc->id, sc->attempt, t->l.token};
    json_error_t jerr;
    json_t *task;
    PGresult *r;
    pgc_error e;
    enum fc rc;

    rc = fenced_call(s, t, "task_fetch",
                     "SELECT trace.task_fetch($1::bigint, $2::int, $3::uuid)::text", 3, vals, 1,
                     &r, &e);
    if (rc == FC_LOST || rc == FC_ABORTED) {
        abandon(s, t, rc == FC_LOST ? "lease lost before the task started" : "worker stopping");
        return NULL;
    }
    if (rc != FC_OK) {
        log_task(LOG_ERROR, t->l.task_id, t->l.attempt, "task_fetch failed: %s [%s]", e.msg,
                 e.sqlstate);
        fail_and_log(s, t, "trace-worker could not fetch the task", 1);
        return NULL;
    }
    task = json_loads(value0(r), 0, &jerr);
    PQclear(r);
    if (task == NULL) {
        fail_and_log(s, t, "trace-worker could not parse the task document", 1);
        return NULL;
    }
    if (json_is_true(json_object_get(task, "canceled"))) {
        int none = V_NONE;

        atomic_compare_exchange_strong(&s->verdict, &none, V_CANCELED);
    }
    return task;
}

/* Runs the task's operator (unless it is canceled already) into res. */
static void
run_operator(slot *s, claimed_task *t, slot_ctx *sc, json_t *task, op_result *res)
{
    const op_def *op = operator_find(t->operator_name);
    op_settings settings;
    op_ctx ctx;

    if (op == NULL) {
        char names[256];

        operator_names(names, sizeof names);
        op_fail(res, 0, "unknown operator \"%s\": this trace-worker has no such operator "
                "(built in: %s)", t->operator_name, names);
        return;
    }
    if (atomic_load(&s->verdict) != V_NONE) {
        res->outcome = OP_STOPPED;
        return;
    }
    pthread_mutex_lock(&s->w->settings_mu);
    settings = s->w->settings;
    pthread_mutex_unlock(&s->w->settings_mu);
    log_task(LOG_DEBUG, t->l.task_id, t->l.attempt, "running operator %s", op->name);
    task_ctx_init(&ctx, sc, &settings);
    op->run(&ctx, task, res);
    task_ctx_rollback(&ctx);        /* never leave an operator's transaction open */
}

/* An operator succeeded: complete the task, or fail it when the database
 * refuses the completion. */
static void
complete_and_log(slot *s, const claimed_task *t, const op_result *res)
{
    char *result = res->result ? json_dumps(res->result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char state[32], msg[1400];
    pgc_error e;
    int rc = complete_task(s, t, result, state, sizeof state, &e);

    free(result);
    if (rc < 0) {
        abandon(s, t, "completion not confirmed");
    } else if (rc > 0) {
        if (strcmp(e.sqlstate, TRACE_SQLSTATE_TASK_CANCELED) == 0 ||
            atomic_load(&s->verdict) == V_CANCELED) {
            fail_and_log(s, t, "canceled", 0);
        } else {
            snprintf(msg, sizeof msg, "trace.complete_task refused the completion: %s [%s]",
                     e.msg, e.sqlstate);
            fail_and_log(s, t, msg, !sqlstate_is_permanent(e.sqlstate));
        }
    } else if (strcmp(state, "canceled") == 0) {
        atomic_fetch_add(&s->w->n_canceled, 1);
        log_task(LOG_INFO, t->l.task_id, t->l.attempt, "completed: canceled meanwhile");
    } else {
        atomic_fetch_add(&s->w->n_succeeded, 1);
        log_task(LOG_INFO, t->l.task_id, t->l.attempt, "completed: %s", state);
    }
}

/* How the task ends, once its operator returned: abandoned (lease lost,
 * exiting now), failed (canceled, stopped, the operator failed) or
 * completed. */
static void
finish_task(slot *s, const claimed_task *t, const op_result *res)
{
    set_state(s, SLOT_FINISHING);   /* main stops heartbeating it */
    switch (atomic_load(&s->verdict)) {
    case V_LOST:
        abandon(s, t, "lease lost; another attempt owns the task");
        return;
    case V_CANCELED:
        fail_and_log(s, t, "canceled", 0);
        return;
    default:
        break;
    }
    if (atomic_load(&s->w->stop_now))
        abandon(s, t, "worker exiting now; the lease will expire");
    else if (res->outcome == OP_STOPPED)
        fail_and_log(s, t, "trace-worker shutting down: the attempt was stopped and given back "
                     "(drain_timeout passed)", 1);
    else if (res->outcome == OP_FAILED)
        fail_and_log(s, t, res->error, res->retryable);
    else
        complete_and_log(s, t, res);
}

void
run_task(slot *s, claimed_task *t)
{
    slot_ctx sc = {.s = s, .t = t};
    op_result res;
    json_t *task;

    memset(&res, 0, sizeof res);
    snprintf(sc.id, sizeof sc.id, "%" PRId64, t->l.task_id);
    snprintf(sc.attempt, sizeof sc.attempt, "%d", t->l.attempt);
    task = fetch_task(s, t, &sc);
    if (task == NULL)
        return;
    run_operator(s, t, &sc, task, &res);
    finish_task(s, t, &res);
    json_decref(res.result);
    json_decref(task);
}
