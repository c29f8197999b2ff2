/*
 * op_chain_range.c: the range_ingest operator: backfills one block range
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
        PGresult *r = chain_exec(src, 1, "SELECT trace.emit_events($1::bigint, $2::int, $3::uuid, "
                                 "$4, ARRAY[$5], ARRAY[$6::jsonb])", 3, vals, &rc, err, errlen);

        PQclear(r);
    }
    if (rc == CHAIN_OK && ctx->db_commit(ctx, err, errlen) < 0)
        rc = ctx->should_stop(ctx) ? CHAIN_STOP : CHAIN_RPC;
    if (rc != CHAIN_OK)
        ctx->db_rollback(ctx);
    return rc;
}

int
op_range_ingest_run(op_ctx *ctx, json_t *task, op_result *res)
{
    json_t *config = json_object_get(json_object_get(task, "job"), "config");
    chain_src src;
    chain_batch batch;
    chain_prefetch prefetch;
    int64_t from, to, size = 100, head = 0, blocks = 0, txs = 0, logs = 0;
    uint8_t last_hash[32];
    int have_last = 0, rc;
    char err[2048], key[64];
    char *payload = NULL;

    memset(&src, 0, sizeof src);
    chain_batch_init(&batch);
    chain_prefetch_init(&prefetch);
    if (task_range(task, config, &from, &to, err, sizeof err) < 0 ||
        chain_config_int(config, "range_size", 1, 1000000, &size, err, sizeof err) < 0) {
        op_fail(res, 0, "range_ingest: %s", err);
        goto cleanup;
    }
    if (size > PIECE_MAX)
        size = PIECE_MAX;
    rc = chain_src_open(&src, ctx, config, err, sizeof err);
    if (rc == CHAIN_OK)
        rc = chain_head(&src, &head, err, sizeof err);
    if (rc != CHAIN_OK)
        goto failed;
    if (to - 1 > head) {
        op_fail(res, 1, "range_ingest: blocks %" PRId64 "..%" PRId64 " are not all on the node "
                "yet (its head is %" PRId64 "); the range is retried, never cut short", from,
                to - 1, head);
        goto cleanup;
    }
    snprintf(key, sizeof key, "%" PRId64 "-%" PRId64, from, to);
    chain_log(&src, LOG_INFO, "ingesting blocks [%" PRId64 ", %" PRId64 ") of chain %" PRId64
              " in pieces of %" PRId64, from, to, src.chain_id, size);

    for (int64_t a = from; a < to || (a == from && from == to);) {
        int64_t b = to - a > size ? a + size - 1 : to - 1;
        int last = b >= to - 1;

        for (int tries = 1;; tries++) {
            if (ctx->should_stop(ctx)) {
                rc = CHAIN_STOP;
                break;
            }
            if (!chain_prefetch_take(&prefetch, a, b, have_last ? last_hash : NULL, &batch, &rc,
                                     err, sizeof err))
                rc = chain_fetch(&src, a, b, have_last ? last_hash : NULL, &batch, err,
                                 sizeof err);
            if (rc == CHAIN_OK)     /* the next pieces, while this one is written */
                chain_prefetch_ahead(&prefetch, &src, b + 1, to - 1, size, size);
            if (rc == CHAIN_OK && last) {
                json_t *p = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "from", (json_int_t) from,
                                      "to", (json_int_t) to, "chain_id", (json_int_t) src.chain_id,
                                      "blocks", (json_int_t) (blocks + (int64_t) batch.nhdr),
                                      "transactions", (json_int_t) (txs + batch.ntx),
                                      "logs", (json_int_t) (logs + batch.nlog));

                free(payload);
                payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
                json_decref(p);
                if (payload == NULL) {
                    set_err(err, sizeof err, "out of memory");
                    rc = CHAIN_RPC;
                }
            }
            if (rc == CHAIN_OK)
                rc = write_piece(&src, &batch, a, b, last ? key : NULL, payload, err, sizeof err);
            if (rc == CHAIN_OK || rc == CHAIN_FATAL || rc == CHAIN_STOP || tries >= PIECE_TRIES)
                break;
            chain_log(&src, LOG_WARN, "blocks %" PRId64 "..%" PRId64 " (try %d of %d): %s", a, b,
                      tries, PIECE_TRIES, err);
            chain_prefetch_cancel(&prefetch);
            /* a different parent now means the node reorganized under us:
             * start over from the first piece so the range stays one chain */
            if (rc == CHAIN_PARENT) {
                have_last = 0;
                a = from;
                b = to - a > size ? a + size - 1 : to - 1;
                last = b >= to - 1;
                blocks = txs = logs = 0;
            }
            sleep_ms_interruptible(1000, chain_stop_cb, ctx);
        }
        if (rc != CHAIN_OK)
            goto failed;
        blocks += (int64_t) batch.nhdr;
        txs += batch.ntx;
        logs += batch.nlog;
        if (batch.nhdr) {
            memcpy(last_hash, batch.hdr[batch.nhdr - 1].hash, 32);
            have_last = 1;
        }
        chain_log(&src, LOG_DEBUG, "stored blocks %" PRId64 "..%" PRId64, a, b);
        if (from == to)
            break;
        a = b + 1;
    }
    chain_log(&src, LOG_INFO, "ingested blocks [%" PRId64 ", %" PRId64 "): %" PRId64 " blocks, %"
              PRId64 " transactions, %" PRId64 " logs", from, to, blocks, txs, logs);
    res->outcome = OP_SUCCEEDED;
    res->result = json_pack("{s:I, s:I, s:I, s:I, s:I}", "from", (json_int_t) from, "to",
                            (json_int_t) to, "blocks", (json_int_t) blocks, "transactions",
                            (json_int_t) txs, "logs", (json_int_t) logs);
    goto cleanup;

failed:
    if (rc == CHAIN_STOP) {
        res->outcome = OP_STOPPED;
        copy_str(res->error, sizeof res->error, "range_ingest: stopped");
    } else {
        op_fail(res, rc != CHAIN_FATAL, "range_ingest: %s", err);
    }
cleanup:
    free(payload);
    chain_prefetch_free(&prefetch);
    chain_batch_free(&batch);
    chain_src_close(&src);
    return 0;
}
