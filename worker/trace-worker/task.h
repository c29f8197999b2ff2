/*
 * task.h: what task.c and task_ctx.c share inside trace-worker: the fenced
 * call (every statement about a task carries its lease) and the state of
 * one task's operator context.
 */
#ifndef TRACE_WORKER_TASK_H
#define TRACE_WORKER_TASK_H

#include "worker.h"

/* What became of a fenced call. */
enum fc {
    FC_OK,          /* answered; *out holds the result */
    FC_LOST,        /* TR001/TR004: the lease is not ours (verdict set) */
    FC_CANCELED,    /* TR002: the task was canceled (verdict set) */
    FC_ERROR,       /* another SQL error: e says which */
    FC_UNKNOWN,     /* a non-idempotent call's connection broke: outcome unknown */
    FC_ABORTED      /* the worker exits now */
};

/* One task's operator context (op_ctx.impl). */
typedef struct slot_ctx {
    slot         *s;
    claimed_task *t;
    char          id[24], attempt[16];
    int           in_tx;        /* an operator's transaction is open (db_begin) */
} slot_ctx;

/* Runs one fenced statement on the slot's connection (task.c has the
 * rules).  *out gets the result on FC_OK (caller PQclear()s); e is filled
 * otherwise. */
enum fc fenced_call(slot *s, const claimed_task *t, const char *what, const char *sql, int n,
                    const char *const *vals, int idempotent, PGresult **out, pgc_error *e);

/* A fenced call's failure as an operator sees it: 0, -1 (worth a retry) or
 * -2 (permanent), with err filled. */
int map_fc(enum fc rc, const pgc_error *e, char *err, size_t errlen);

/* The text of column 0 of row 0 ("" if none). */
const char *value0(PGresult *r);

/* Fills ctx for the task of sc with the slot's implementations. */
void task_ctx_init(op_ctx *ctx, slot_ctx *sc, const op_settings *settings);

/* Rolls back an operator's open transaction, if any (never fails). */
void task_ctx_rollback(op_ctx *ctx);

#endif
