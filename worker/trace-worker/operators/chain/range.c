/*
 * range.c: the range_ingest operator: backfills one block range
 * into the job's three chain tables.
 *
 * The range comes from the task's payload {from, to}, half-open [from, to)
 * as the aggregator and splitter write their manifests, or, for a task run
 * by hand without one, from config from_block .. to_block (both included).
 * When both are there the config bounds clamp the payload's range.  The
 * range is written in pieces of range_size blocks (default 100, at most
 * 1000: the bound on memory), each in one fenced transaction that first deletes exactly
 * that piece's rows and then COPYs them, so a retried task, or a range run
 * twice, leaves the same rows: no duplicate, no gap.  A range reaching past
 * the node's head fails (retryably): it is never cut short, and the last
 * piece of a range is as long as it needs to be, never dropped.
 *
 * Each piece is validated like the follower's batches (parent-linked, the
 * next piece's first block on the previous piece's last).  When the range
 * is done, one event goes to the blocks dataset: key "<from>-<to>",
 * payload {from, to, chain_id, blocks, transactions, logs}, emitted in the
 * transaction of the last piece.
 */
#define _GNU_SOURCE
#include "chain.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIECE_TRIES 3
#define PIECE_MAX 1000                  /* blocks in memory and in one transaction, at most */

/* The range [*from, *to) of this task.  0 or -1 with err filled. */
static int
task_range(json_t *task, json_t *config, int64_t *from, int64_t *to, char *err, size_t errlen)
{
    json_t *payload = json_object_get(task, "payload");
    json_t *pf = json_object_get(payload, "from"), *pt = json_object_get(payload, "to");
    int64_t cfrom = -1, cto = -1;

    if (chain_config_int(config, "from_block", 0, INT64_C(1) << 53, &cfrom, err, errlen) < 0 ||
        chain_config_int(config, "to_block", 0, INT64_C(1) << 53, &cto, err, errlen) < 0)
        return -1;
    if (pf != NULL || pt != NULL) {
        if (!json_is_integer(pf) || !json_is_integer(pt) || json_integer_value(pf) < 0 ||
            json_integer_value(pt) < json_integer_value(pf) ||
            json_integer_value(pt) > (INT64_C(1) << 53)) {
            set_err(err, errlen, "the payload's range must be integers 0 <= from <= to (to "
                    "excluded)");
            return -1;
        }
        *from = json_integer_value(pf);
        *to = json_integer_value(pt);
        if (cfrom >= 0 && *from < cfrom)
            *from = cfrom;
        if (cto >= 0 && *to > cto + 1)
            *to = cto + 1;
        if (*to < *from)
            *to = *from;
        return 0;
    }
    if (cfrom < 0 || cto < 0 || cto < cfrom) {
        set_err(err, errlen, "no range: the payload has no {from, to} and the config no "
                "from_block <= to_block");
        return -1;
    }
    *from = cfrom;
    *to = cto + 1;
    return 0;
}

/* Writes one piece [a, b] (already fetched into batch) in one transaction;
 * with event set, also the range's event. */
static int
write_piece(chain_src *src, chain_batch *batch, int64_t a, int64_t b, const char *event_key,
            const char *event_payload, char *err, size_t errlen)
{
    op_ctx *ctx = src->ctx;
    chain_tables t;
    int rc;

    rc = chain_tx_begin(src, &t, err, errlen);             /* fenced by trace.chain_tables */
    if (rc != CHAIN_OK)
        return rc;
    rc = chain_delete(src, &t, a, b, err, errlen);
    if (rc == CHAIN_OK)
        rc = chain_copy(src, &t, batch, err, errlen);
    if (rc == CHAIN_OK && event_key != NULL) {
        const char *vals[3] = {t.blocks_dataset, event_key, event_payload};
        PGresult *r = chain_exec_fenced(src, "SELECT trace.emit_events($1::bigint, $2::int, $3::uuid, "
                                 "$4, ARRAY[$5], ARRAY[$6::jsonb])", 3, vals, &rc, err, errlen);

        PQclear(r);
    }
    if (rc == CHAIN_OK && ctx->db_commit(ctx, err, errlen) < 0)
        rc = ctx->should_stop(ctx) ? CHAIN_STOP : CHAIN_RPC;
    if (rc != CHAIN_OK)
        ctx->db_rollback(ctx);
    return rc;
}

/* One task's range and where it is. */
typedef struct ranger {
    chain_src      src;
    chain_batch    batch;
    chain_prefetch prefetch;
    int64_t        from, to, size;          /* [from, to), pieces of size blocks */
    int64_t        blocks, txs, logs;       /* stored so far */
    uint8_t        last_hash[32];           /* the last stored block's */
    int            have_last;
    char           key[64];                 /* the range's event key */
    char          *payload;                 /* the range's event payload (the last piece) */
} ranger;

/* The range's event payload, once the last piece is fetched. */
static int
make_payload(ranger *g, char *err, size_t errlen)
{
    json_t *p = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "from", (json_int_t) g->from, "to",
                          (json_int_t) g->to, "chain_id", (json_int_t) g->src.chain_id,
                          "blocks", (json_int_t) (g->blocks + (int64_t) g->batch.nhdr),
                          "transactions", (json_int_t) (g->txs + g->batch.ntx),
                          "logs", (json_int_t) (g->logs + g->batch.nlog));

    free(g->payload);
    g->payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (g->payload != NULL)
        return CHAIN_OK;
    set_err(err, errlen, "out of memory");
    return CHAIN_RPC;
}

/* Fetches (or takes from the prefetch) blocks [a, b], starts the next
 * pieces, and writes this one (with the range's event when last). */
static int
fetch_and_write(ranger *g, int64_t a, int64_t b, int last, char *err, size_t errlen)
{
    const uint8_t *parent = g->have_last ? g->last_hash : NULL;
    int rc;

    if (!chain_prefetch_take(&g->prefetch, a, b, parent, &g->batch, &rc, err, errlen))
        rc = chain_fetch(&g->src, a, b, parent, &g->batch, err, errlen);
    if (rc == CHAIN_OK)     /* the next pieces, while this one is written */
        chain_prefetch_ahead(&g->prefetch, &g->src, b + 1, g->to - 1, g->size, g->size);
    if (rc == CHAIN_OK && last)
        rc = make_payload(g, err, errlen);
    if (rc == CHAIN_OK)
        rc = write_piece(&g->src, &g->batch, a, b, last ? g->key : NULL, g->payload, err, errlen);
    return rc;
}

/* Piece [*a, *b], tried up to PIECE_TRIES times.  A different parent means
 * the node reorganized under us: start over from the first piece (moving
 * *a, *b) so the range stays one chain. */
static int
ingest_piece(ranger *g, int64_t *a, int64_t *b, char *err, size_t errlen)
{
    op_ctx *ctx = g->src.ctx;
    int rc;

    for (int tries = 1;; tries++) {
        if (ctx->should_stop(ctx))
            return CHAIN_STOP;
        rc = fetch_and_write(g, *a, *b, *b >= g->to - 1, err, errlen);
        if (rc == CHAIN_OK || rc == CHAIN_FATAL || rc == CHAIN_STOP || tries >= PIECE_TRIES)
            return rc;
        chain_log(&g->src, LOG_WARN, "blocks %" PRId64 "..%" PRId64 " (try %d of %d): %s", *a, *b,
                  tries, PIECE_TRIES, err);
        chain_prefetch_cancel(&g->prefetch);
        if (rc == CHAIN_PARENT) {
            g->have_last = 0;
            *a = g->from;
            *b = g->to - *a > g->size ? *a + g->size - 1 : g->to - 1;
            g->blocks = g->txs = g->logs = 0;
        }
        sleep_ms_interruptible(1000, chain_stop_cb, ctx);
    }
}

/* Every piece, in order. */
static int
ingest(ranger *g, char *err, size_t errlen)
{
    for (int64_t a = g->from; a < g->to || (a == g->from && g->from == g->to);) {
        int64_t b = g->to - a > g->size ? a + g->size - 1 : g->to - 1;
        int rc = ingest_piece(g, &a, &b, err, errlen);

        if (rc != CHAIN_OK)
            return rc;
        g->blocks += (int64_t) g->batch.nhdr;
        g->txs += g->batch.ntx;
        g->logs += g->batch.nlog;
        if (g->batch.nhdr) {
            memcpy(g->last_hash, g->batch.hdr[g->batch.nhdr - 1].hash, 32);
            g->have_last = 1;
        }
        chain_log(&g->src, LOG_DEBUG, "stored blocks %" PRId64 "..%" PRId64, a, b);
        if (g->from == g->to)
            break;
        a = b + 1;
    }
    return CHAIN_OK;
}

/* Opens the source and checks the range is on the node: 0, or -1 with
 * res filled. */
static int
open_range(ranger *g, op_ctx *ctx, json_t *task, json_t *config, op_result *res)
{
    char err[2048];
    int64_t head = 0;
    int rc;

    if (task_range(task, config, &g->from, &g->to, err, sizeof err) < 0 ||
        chain_config_int(config, "range_size", 1, 1000000, &g->size, err, sizeof err) < 0) {
        op_fail(res, 0, "range_ingest: %s", err);
        return -1;
    }
    if (g->size > PIECE_MAX)
        g->size = PIECE_MAX;
    rc = chain_src_open(&g->src, ctx, config, err, sizeof err);
    if (rc == CHAIN_OK)
        rc = chain_head(&g->src, &head, err, sizeof err);
    if (rc != CHAIN_OK) {
        if (rc == CHAIN_STOP) {
            res->outcome = OP_STOPPED;
            copy_str(res->error, sizeof res->error, "range_ingest: stopped");
        } else
            op_fail(res, rc != CHAIN_FATAL, "range_ingest: %s", err);
        return -1;
    }
    if (g->to - 1 > head) {
        op_fail(res, 1, "range_ingest: blocks %" PRId64 "..%" PRId64 " are not all on the node "
                "yet (its head is %" PRId64 "); the range is retried, never cut short", g->from,
                g->to - 1, head);
        return -1;
    }
    return 0;
}

int
op_range_ingest_run(op_ctx *ctx, json_t *task, op_result *res)
{
    json_t *config = json_object_get(json_object_get(task, "job"), "config");
    ranger g;
    char err[2048];
    int rc;

    memset(&g, 0, sizeof g);
    g.size = 100;
    chain_batch_init(&g.batch);
    chain_prefetch_init(&g.prefetch);
    if (open_range(&g, ctx, task, config, res) < 0)
        goto cleanup;
    snprintf(g.key, sizeof g.key, "%" PRId64 "-%" PRId64, g.from, g.to);
    chain_log(&g.src, LOG_INFO, "ingesting blocks [%" PRId64 ", %" PRId64 ") of chain %" PRId64
              " in pieces of %" PRId64, g.from, g.to, g.src.chain_id, g.size);
    rc = ingest(&g, err, sizeof err);
    if (rc == CHAIN_STOP) {
        res->outcome = OP_STOPPED;
        copy_str(res->error, sizeof res->error, "range_ingest: stopped");
    } else if (rc != CHAIN_OK) {
        op_fail(res, rc != CHAIN_FATAL, "range_ingest: %s", err);
    } else {
        chain_log(&g.src, LOG_INFO, "ingested blocks [%" PRId64 ", %" PRId64 "): %" PRId64
                  " blocks, %" PRId64 " transactions, %" PRId64 " logs", g.from, g.to, g.blocks,
                  g.txs, g.logs);
        res->outcome = OP_SUCCEEDED;
        res->result = json_pack("{s:I, s:I, s:I, s:I, s:I}", "from", (json_int_t) g.from, "to",
                                (json_int_t) g.to, "blocks", (json_int_t) g.blocks,
                                "transactions", (json_int_t) g.txs, "logs", (json_int_t) g.logs);
    }
cleanup:
    free(g.payload);
    chain_prefetch_free(&g.prefetch);
    chain_batch_free(&g.batch);
    chain_src_close(&g.src);
    return 0;
}
