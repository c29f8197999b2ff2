/*
 * slots.c: the task slots: one thread and one libpq connection each, each
 * running one task at a time (task.c).  The main thread hands a claimed
 * task to an idle slot (slot_assign); the slot wakes the main thread
 * through the worker's eventfd when it is idle again, so a free slot is
 * refilled at once.
 */
#define _GNU_SOURCE
#include "worker.h"

#include "log.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
        timespec_after_ms(CLOCK_REALTIME, left_ms, &ts);
        if (pthread_timedjoin_np(s->thread, NULL, &ts) == 0) {
            s->started = 0;
            pgc_destroy(&s->conn);
        } else {
            left++;     /* still in a task: the caller exits around it */
        }
    }
    return left;
}

void
slots_kill_children(worker *w)
{
    for (int i = 0; i < w->nslots; i++) {
        int pg = atomic_load(&w->slots[i].child_pgid);

        if (pg > 0)
            killpg(pg, SIGKILL);
    }
}
