/*
 * claim.c: the claim path and the heartbeats, on the main thread's control
 * connection.
 *
 * claim(): one trace.claim_tasks call asks for as many tasks of this
 * worker's runtimes as it has idle slots (the lease comes from the
 * database's clock: lease_expires_at - now()), and each claimed task goes
 * to an idle slot.  A full batch means more may be waiting: the loop claims
 * again at once.
 *
 * heartbeats(): every running task is heartbeated at a third of its lease
 * (trace.heartbeat).  'canceled' sets the slot's verdict so its operator
 * stops; TR001/TR004 (the lease is lost) does too; a broken connection
 * leaves the verdicts alone and the loop reconnects.
 */
#define _GNU_SOURCE
#include "worker.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
apply_lease_param(loop_state *ls, const worker_config *cfg)
{
    if (cfg->lease_ms > 0)
        snprintf(ls->lease_param, sizeof ls->lease_param, "%lld milliseconds",
                 (long long) cfg->lease_ms);
    else
        ls->lease_param[0] = '\0';
}

/* Claims up to the free capacity and hands the tasks to idle slots. */
void
claim(loop_state *ls)
{
    worker *w = ls->w;
    int free_slots = slots_idle(w);
    char max[16];
    const char *vals[4];
    PGresult *r;
    pgc_error e;
    int64_t sent;
    int n;

    if (free_slots <= 0 || !pgc_connected(&ls->ctl))
        return;
    snprintf(max, sizeof max, "%d", free_slots);
    vals[0] = w->worker_id;
    vals[1] = ls->runtimes;
    vals[2] = max;
    vals[3] = ls->lease_param[0] ? ls->lease_param : NULL;
    sent = now_ms();
    r = pgc_exec(&ls->ctl,
                 "SELECT c.task_id, c.attempt, c.lease_token, "
                 "(extract(epoch FROM c.lease_expires_at - now()) * 1000)::bigint, c.operator "
                 "FROM trace.claim_tasks($1, $2::text[], $3::int, $4::interval) c",
                 4, vals, &e);
    if (r == NULL) {
        if (e.status == PGC_CONN_LOST)
            log_msg(LOG_WARN, "control connection lost during claim_tasks (%s): any task it "
                    "leased will be retried when its lease expires", e.msg);
        else
            log_msg(LOG_ERROR, "claim_tasks failed: %s [%s]", e.msg, e.sqlstate);
        return;
    }
    n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        claimed_task t;

        memset(&t, 0, sizeof t);
        t.l.task_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        t.l.attempt = atoi(PQgetvalue(r, i, 1));
        copy_str(t.l.token, sizeof t.l.token, PQgetvalue(r, i, 2));
        t.l.lease_ms = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        if (t.l.lease_ms < 300)
            t.l.lease_ms = 300;
        copy_str(t.operator_name, sizeof t.operator_name, PQgetvalue(r, i, 4));
        t.claimed_at_ms = sent;
        log_task(LOG_DEBUG, t.l.task_id, t.l.attempt, "claimed (operator %s, lease %" PRId64 "ms)",
                 t.operator_name, t.l.lease_ms);
        if (slot_assign(w, &t) < 0)     /* cannot happen: we asked for free slots */
            log_task(LOG_ERROR, t.l.task_id, t.l.attempt, "no idle slot; the lease will expire");
    }
    PQclear(r);
    /* A full batch means more may be waiting. */
    ls->maybe_more = n == free_slots;
}

/* Heartbeats every running task whose time has come. */
void
heartbeats(loop_state *ls)
{
    worker *w = ls->w;

    for (int i = 0; i < w->nslots && pgc_connected(&ls->ctl); i++) {
        slot *s = &w->slots[i];
        lease l;
        char id[24], att[16];
        const char *vals[3];
        PGresult *r;
        pgc_error e;
        int64_t sent = now_ms();

        pthread_mutex_lock(&s->mu);
        if ((s->state != SLOT_RUNNING && s->state != SLOT_ASSIGNED) || sent < s->next_hb_ms ||
            atomic_load(&s->verdict) == V_LOST) {
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        l = s->task.l;
        pthread_mutex_unlock(&s->mu);

        snprintf(id, sizeof id, "%" PRId64, l.task_id);
        snprintf(att, sizeof att, "%d", l.attempt);
        vals[0] = id;
        vals[1] = att;
        vals[2] = l.token;
        r = pgc_exec(&ls->ctl, "SELECT trace.heartbeat($1::bigint, $2::int, $3::uuid)", 3, vals,
                     &e);
        if (r) {
            const char *answer = PQntuples(r) ? PQgetvalue(r, 0, 0) : "";

            if (strcmp(answer, "canceled") == 0) {
                int none = V_NONE;

                if (atomic_compare_exchange_strong(&s->verdict, &none, V_CANCELED))
                    log_task(LOG_INFO, l.task_id, l.attempt,
                             "heartbeat: cancel requested, stopping the operator");
            }
            s->next_hb_ms = sent + l.lease_ms / 3;
            log_task(LOG_DEBUG, l.task_id, l.attempt, "heartbeat: %s", answer);
            PQclear(r);
            continue;
        }
        if (e.status == PGC_SQL_ERROR) {
            pthread_mutex_lock(&s->mu);
            int same = s->task.l.task_id == l.task_id && s->task.l.attempt == l.attempt &&
                       (s->state == SLOT_RUNNING || s->state == SLOT_ASSIGNED);
            pthread_mutex_unlock(&s->mu);

            if (!same)
                continue;       /* it ended meanwhile */
            if (sqlstate_is_lost(e.sqlstate)) {
                atomic_store(&s->verdict, V_LOST);
                log_task(LOG_WARN, l.task_id, l.attempt,
                         "heartbeat: lease lost (%s: %s); stopping the operator", e.sqlstate,
                         e.msg);
            } else {
                log_task(LOG_WARN, l.task_id, l.attempt, "heartbeat failed: %s [%s]", e.msg,
                         e.sqlstate);
                s->next_hb_ms = now_ms() + (l.lease_ms / 10 < 1000 ? l.lease_ms / 10 : 1000);
            }
        } else {
            log_msg(LOG_WARN, "control connection lost during heartbeat (%s); reconnecting",
                    e.msg);
        }
    }
}

/* The next instant any heartbeat is due. */
int64_t
next_heartbeat(worker *w)
{
    int64_t next = INT64_MAX;

    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];

        pthread_mutex_lock(&s->mu);
        if ((s->state == SLOT_RUNNING || s->state == SLOT_ASSIGNED) && s->next_hb_ms < next &&
            atomic_load(&s->verdict) != V_LOST)
            next = s->next_hb_ms;
        pthread_mutex_unlock(&s->mu);
    }
    return next;
}
