/*
 * op_chain_follower.c: the block_follower operator (activation: source).
 *
 * One long-lived task follows a chain's head through the RPC gateway and
 * writes its blocks, transactions and logs into the job's three chain
 * tables.  Its durable state (trace.source_state) is
 *   {"cursor": last stored block, "cursor_hash": its hash,
 *    "emitted": last block emitted as final, "head": the node's head when
 *    saved, "chain_id", "start_block", "reorgs"}
 * and is saved in the same transaction as the rows it covers, so a kill
 * at any point leaves neither a gap nor a duplicate: a restart resumes
 * from what committed.
 *
 * Each pass: ask the head and the node's hash of the stored cursor block
 * (one JSON-RPC batch).
 *   - Same hash: fetch up to batch_size blocks after the cursor; the first
 *     must have the cursor's hash as parent and the rest must chain; write
 *     them in one fenced transaction with the events of blocks that became
 *     final (confirmations deep) and the new cursor.
 *   - Different hash: a reorg.  Walk back, comparing stored hashes with
 *     the node's, to the common ancestor.  In one transaction: record it
 *     (trace.record_reorg), emit retractions for orphaned blocks that had
 *     been emitted as final, delete the orphaned rows, store the first
 *     blocks of the new branch, and move the cursor.
 *   - Deeper than max_reorg_depth: halt.  A head below the cursor on the
 *     same chain (a syncing or lagging node) for BACKWARDS_POLLS polls in a
 *     row: halt.  Halting fails the task for good (trace_task_failed
 *     notice: alert-able) and rewrites nothing; trace.restart_source runs
 *     it again, and it re-checks everything first.
 * On start it re-verifies the last max_reorg_depth stored blocks against
 * the node (and that they form one linked chain ending at the cursor).
 *
 * Events go to the blocks dataset: "<n>:<hash>" with {block_number,
 * block_hash, chain_id, tx_count, log_count} for final blocks;
 * "<n>:<hash>:retracted" with {block_number, block_hash, chain_id,
 * retracted: true} for final blocks a reorg orphaned.
 */
#define _GNU_SOURCE
#include "chain.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKWARDS_POLLS 5               /* polls in a row with the head below us: halt */
#define INVALID_LIMIT 5                 /* rejected batches in a row: fail (retryable) */
#define FAIL_AFTER_MS (5 * 60 * 1000)   /* RPC/database failing this long: fail (retryable) */
#define WALK_STEP 64                    /* headers per request when walking back */
#define PROGRESS_MS 30000
#define F_HALT 10                       /* halt: err holds why */

typedef struct follower {
    chain_src    src;
    chain_tables tables;
    chain_batch  batch;
    chain_prefetch prefetch;            /* the next batch, while this one is written */
    const char  *dag, *job;
    int64_t      start, confirmations, max_depth, batch_size, poll_ms;
    int64_t      cursor, emitted, head, reorgs;
    uint8_t      cursor_hash[32];
    int          backwards_polls;
    int64_t      blocks_written, last_progress_ms, blocks_at_progress;
} follower;

static int
halt(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
halt(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return F_HALT;
}

static int
parse_config(follower *f, json_t *config, char *err, size_t errlen)
{
    json_t *poll = json_object_get(config, "poll_interval");

    f->start = 0;
    f->confirmations = 12;
    f->max_depth = 64;
    f->batch_size = 100;
    f->poll_ms = 1000;
    if (chain_config_int(config, "start_block", 0, INT64_C(1) << 53, &f->start, err, errlen) < 0 ||
        chain_config_int(config, "confirmations", 0, 10000, &f->confirmations, err, errlen) < 0 ||
        chain_config_int(config, "max_reorg_depth", 1, 10000, &f->max_depth, err, errlen) < 0 ||
        chain_config_int(config, "batch_size", 1, 10000, &f->batch_size, err, errlen) < 0)
        return -1;
    /* deploy_dag stores durations as milliseconds; a hand-made job may say "500ms" */
    if (json_is_string(poll)) {
        char msg[200];

        if (parse_duration_ms(json_string_value(poll), 1, &f->poll_ms, msg, sizeof msg) < 0) {
            set_err(err, errlen, "config \"poll_interval\": %s", msg);
            return -1;
        }
    } else if (chain_config_int(config, "poll_interval", 10, 3600000, &f->poll_ms, err,
                                errlen) < 0)
        return -1;
    if (f->poll_ms < 10)
        f->poll_ms = 10;
    return 0;
}

/* How an operator gets out of a halt, for the error message. */
static void
restart_hint(const follower *f, char *buf, size_t n)
{
    if (f->dag && f->job)
        snprintf(buf, n, "; nothing was rewritten. Check the provider, then run "
                 "SELECT trace.restart_source('%s', '%s') (it re-verifies before it writes)",
                 f->dag, f->job);
    else
        snprintf(buf, n, "; nothing was rewritten");
}

/* Loads the durable state and checks it against the stored rows. */
static int
load_state(follower *f, char *err, size_t errlen)
{
    chain_src *src = &f->src;
    json_t *st = NULL;
    json_error_t jerr;
    PGresult *r;
    char sql[400], cid[24];
    const char *vals[1] = {cid};
    int rc;

    r = chain_exec(src, 1, "SELECT trace.source_state($1::bigint, $2::int, $3::uuid)::text", 0,
                   NULL, &rc, err, errlen);
    if (r == NULL)
        return rc;
    st = json_loads(PQgetvalue(r, 0, 0), 0, &jerr);
    PQclear(r);
    if (!json_is_object(st)) {
        json_decref(st);
        set_err(err, errlen, "the saved source state is not a JSON object");
        return CHAIN_FATAL;
    }
    f->cursor = f->start - 1;
    f->emitted = f->start - 1;
    f->reorgs = 0;
    if (json_object_size(st) > 0) {
        json_t *c = json_object_get(st, "cursor"), *e = json_object_get(st, "emitted");
        json_t *id = json_object_get(st, "chain_id");

        if (!json_is_integer(c) || !json_is_integer(e) || !json_is_integer(id)) {
            json_decref(st);
            set_err(err, errlen, "the saved source state lacks cursor, emitted or chain_id");
            return CHAIN_FATAL;
        }
        if (json_integer_value(id) != src->chain_id) {
            rc = halt(err, errlen, "the provider \"%s\" now serves chain %" PRId64 ", but this "
                      "source stored chain %" JSON_INTEGER_FORMAT, src->provider, src->chain_id,
                      json_integer_value(id));
            json_decref(st);
            return rc;
        }
        f->cursor = json_integer_value(c);
        f->emitted = json_integer_value(e);
        f->reorgs = json_integer_value(json_object_get(st, "reorgs"));
    }
    json_decref(st);

    snprintf(cid, sizeof cid, "%" PRId64, src->chain_id);
    snprintf(sql, sizeof sql, "SELECT block_number, '0x' || encode(block_hash, 'hex') FROM %s "
             "WHERE chain_id = $1::bigint ORDER BY block_number DESC LIMIT 1", f->tables.blocks);
    r = chain_exec(src, 0, sql, 1, vals, &rc, err, errlen);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        if (f->cursor >= f->start)
            return halt(err, errlen, "the saved cursor is block %" PRId64 " but no block is "
                        "stored: the tables and the source state disagree", f->cursor);
        memset(f->cursor_hash, 0, 32);
        return CHAIN_OK;
    }
    if (strtoll(PQgetvalue(r, 0, 0), NULL, 10) != f->cursor ||
        hex_to_fixed(PQgetvalue(r, 0, 1), f->cursor_hash, 32) < 0) {
        rc = halt(err, errlen, "the saved cursor is block %" PRId64 " but the highest stored "
                  "block is %s: the tables and the source state disagree", f->cursor,
                  PQgetvalue(r, 0, 0));
        PQclear(r);
        return rc;
    }
    PQclear(r);
    return CHAIN_OK;
}

/* On start: the last max_reorg_depth stored blocks must be one linked
 * chain ending at the cursor, and where the node agrees on the cursor it
 * must agree on all of them.  (Where it disagrees on the cursor, the main
 * loop handles a reorg.) */
static int
verify_recent(follower *f, char *err, size_t errlen)
{
    int64_t lo = f->cursor - f->max_depth + 1 > f->start ? f->cursor - f->max_depth + 1 : f->start;
    size_t want = (size_t) (f->cursor - lo + 1), n = 0;
    chain_block *stored = NULL;
    uint8_t (*node)[32] = NULL;
    int *present = NULL;
    int rc = CHAIN_OK, top_same;

    if (f->cursor < f->start)
        return CHAIN_OK;
    stored = calloc(want, sizeof *stored);
    node = calloc(want, sizeof *node);
    present = calloc(want, sizeof *present);
    if (stored == NULL || node == NULL || present == NULL) {
        set_err(err, errlen, "out of memory");
        rc = CHAIN_RPC;
        goto cleanup;
    }
    rc = chain_stored(&f->src, &f->tables, lo, f->cursor, stored, &n, err, errlen);
    if (rc != CHAIN_OK)
        goto cleanup;
    if (n != want) {
        rc = halt(err, errlen, "blocks %" PRId64 "..%" PRId64 " should all be stored but %zu of "
                  "%zu are: the stored chain has gaps", lo, f->cursor, n, want);
        goto cleanup;
    }
    for (size_t i = 1; i < n; i++)
        if (memcmp(stored[i].parent, stored[i - 1].hash, 32) != 0) {
            rc = halt(err, errlen, "stored block %" PRId64 "'s parent hash is not stored block %"
                      PRId64 "'s hash: the stored chain is broken", stored[i].number,
                      stored[i - 1].number);
            goto cleanup;
        }
    for (size_t a = 0; a < n; a += 256) {
        size_t k = n - a < 256 ? n - a : 256;

        rc = chain_node_hashes(&f->src, lo + (int64_t) a, lo + (int64_t) (a + k) - 1, node + a,
                               present + a, err, errlen);
        if (rc != CHAIN_OK)
            goto cleanup;
    }
    top_same = present[n - 1] && memcmp(node[n - 1], stored[n - 1].hash, 32) == 0;
    if (!top_same) {
        chain_log(&f->src, LOG_WARN, "startup check: the node's block %" PRId64 " differs from "
                  "the stored one (or is missing): checking for a reorg", f->cursor);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++)
        if (!present[i] || memcmp(node[i], stored[i].hash, 32) != 0) {
            rc = halt(err, errlen, "the node agrees with the stored block %" PRId64 " but not "
                      "with stored block %" PRId64 ": the node's answers are inconsistent",
                      f->cursor, stored[i].number);
            goto cleanup;
        }
    chain_log(&f->src, LOG_INFO, "startup check: stored blocks %" PRId64 "..%" PRId64
              " match the node", lo, f->cursor);
cleanup:
    free(stored);
    free(node);
    free(present);
    return rc;
}

/* The state document saved with each write. */
static char *
state_json(const follower *f, int64_t cursor, const uint8_t *hash, int64_t emitted)
{
    char hex[67];
    json_t *st;
    char *s;

    bytes_to_hex(hash, 32, hex);
    st = json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I}", "cursor", (json_int_t) cursor,
                   "cursor_hash", hex, "emitted", (json_int_t) emitted, "head",
                   (json_int_t) f->head, "chain_id", (json_int_t) f->src.chain_id, "start_block",
                   (json_int_t) f->start, "reorgs", (json_int_t) f->reorgs);
    if (st == NULL)
        return NULL;
    s = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    return s;
}

/* Writes in one fenced transaction: (with a rewind) the reorg record, the
 * retractions and the deletion of blocks above ancestor; the batch; the
 * events of blocks that became final; the state.  On any failure it rolls
 * back and the caller re-reads the state. */
static int
commit(follower *f, int rewind, int64_t ancestor, const uint8_t *ancestor_hash,
       const char *new_hashes, char *err, size_t errlen)
{
    chain_src *src = &f->src;
    op_ctx *ctx = src->ctx;
    chain_batch *b = &f->batch;
    chain_tables t;
    int64_t base = rewind ? ancestor : f->cursor;
    int64_t cursor = b->nhdr ? b->hdr[b->nhdr - 1].number : base;
    int64_t emitted = rewind && f->emitted > ancestor ? ancestor : f->emitted;
    int64_t final_upto = f->head - f->confirmations < cursor ? f->head - f->confirmations : cursor;
    uint8_t hash[32];
    char *state = NULL;
    int rc;

    memset(hash, 0, sizeof hash);
    if (b->nhdr)
        memcpy(hash, b->hdr[b->nhdr - 1].hash, 32);
    else if (rewind && ancestor >= f->start)
        memcpy(hash, ancestor_hash, 32);
    else if (!rewind)
        memcpy(hash, f->cursor_hash, 32);

    rc = chain_tx_begin(src, &t, err, errlen);         /* fenced by trace.chain_tables */
    if (rc != CHAIN_OK)
        return rc;
    if (strcmp(t.blocks, f->tables.blocks) != 0) {
        set_err(err, errlen, "the job's tables changed under a running task");
        rc = CHAIN_FATAL;
    }
    if (rc == CHAIN_OK && rewind) {
        char sql[800], cid[24], fork[24], depth[24], anc[24];
        const char *vals[5] = {cid, fork, depth, anc, new_hashes};
        PGresult *r;

        snprintf(cid, sizeof cid, "%" PRId64, src->chain_id);
        snprintf(fork, sizeof fork, "%" PRId64, ancestor + 1);
        snprintf(depth, sizeof depth, "%" PRId64, f->cursor - ancestor);
        snprintf(anc, sizeof anc, "%" PRId64, ancestor);
        snprintf(sql, sizeof sql,
                 "SELECT trace.record_reorg($1::bigint, $2::int, $3::uuid, $4::bigint, $5::bigint, "
                 "$6::int, (SELECT coalesce(array_agg('0x' || encode(x.block_hash, 'hex') "
                 "ORDER BY x.block_number), '{}') FROM %s x WHERE x.chain_id = $4::bigint "
                 "AND x.block_number > $7::bigint), $8::text[])", f->tables.blocks);
        r = chain_exec(src, 1, sql, 5, vals, &rc, err, errlen);
        PQclear(r);
        if (rc == CHAIN_OK && f->emitted > ancestor)
            rc = chain_emit_blocks(src, &f->tables, ancestor + 1, f->emitted, 1, err, errlen);
        if (rc == CHAIN_OK)
            rc = chain_delete(src, &f->tables, ancestor + 1, INT64_MAX, err, errlen);
    }
    if (rc == CHAIN_OK && b->nhdr)
        rc = chain_copy(src, &f->tables, b, err, errlen);
    if (rc == CHAIN_OK && final_upto > emitted) {
        rc = chain_emit_blocks(src, &f->tables, emitted + 1, final_upto, 0, err, errlen);
        emitted = final_upto;
    }
    if (rc == CHAIN_OK) {
        const char *vals[1];
        PGresult *r;

        state = state_json(f, cursor, hash, emitted);
        vals[0] = state;
        if (state == NULL) {
            set_err(err, errlen, "out of memory");
            rc = CHAIN_RPC;
        } else {
            r = chain_exec(src, 1, "SELECT trace.save_source_state($1::bigint, $2::int, $3::uuid, "
                           "$4::jsonb)", 1, vals, &rc, err, errlen);
            PQclear(r);
        }
    }
    if (rc == CHAIN_OK && ctx->db_commit(ctx, err, errlen) < 0)
        rc = ctx->should_stop(ctx) ? CHAIN_STOP : CHAIN_RPC;
    if (rc != CHAIN_OK) {
        ctx->db_rollback(ctx);
        free(state);
        return rc;
    }
    free(state);
    if (rewind) {
        chain_log(src, LOG_WARN, "reorg followed: blocks %" PRId64 "..%" PRId64 " orphaned "
                  "(depth %" PRId64 ", fork at block %" PRId64 "); %s", ancestor + 1, f->cursor,
                  f->cursor - ancestor, ancestor + 1, new_hashes);
    }
    f->cursor = cursor;
    memcpy(f->cursor_hash, hash, 32);
    f->emitted = emitted;
    f->blocks_written += (int64_t) b->nhdr;
    if (b->nhdr)
        chain_log(src, LOG_DEBUG, "stored blocks %" PRId64 "..%" PRId64 " (%" PRId64 " txs, %"
                  PRId64 " logs); head %" PRId64 ", final up to %" PRId64, b->hdr[0].number,
                  cursor, b->ntx, b->nlog, f->head, emitted);
    return CHAIN_OK;
}

/* Walks back from top comparing stored hashes with the node's, to the
 * common ancestor: the highest block both have.  *ancestor is start - 1
 * when every stored block is orphaned.  new_hashes gets "{0x..,..}", the
 * node's hashes of ancestor+1..top.  F_HALT when the ancestor is deeper
 * than max_reorg_depth below the cursor. */
static int
find_ancestor(follower *f, int64_t top, int64_t *ancestor, uint8_t *ancestor_hash,
              char **new_hashes, char *err, size_t errlen)
{
    int64_t limit = f->cursor - f->max_depth;           /* lowest allowed ancestor */
    int64_t lowest = limit > f->start ? limit : f->start;
    size_t span = (size_t) (top >= lowest ? top - lowest + 1 : 0);
    uint8_t (*node)[32] = calloc(span + 1, 32);
    int present[WALK_STEP];
    chain_block stored[WALK_STEP];
    int64_t n = top, found = INT64_MIN;
    char *out = NULL;
    int rc = CHAIN_OK;

    *new_hashes = NULL;
    if (node == NULL) {
        set_err(err, errlen, "out of memory");
        return CHAIN_RPC;
    }
    while (n >= lowest && found == INT64_MIN) {
        int64_t lo = n - WALK_STEP + 1 > lowest ? n - WALK_STEP + 1 : lowest;
        size_t ns = 0;

        rc = chain_node_hashes(&f->src, lo, n, node + (lo - lowest), present, err, errlen);
        if (rc == CHAIN_OK)
            rc = chain_stored(&f->src, &f->tables, lo, n, stored, &ns, err, errlen);
        if (rc != CHAIN_OK)
            goto cleanup;
        if (ns != (size_t) (n - lo + 1)) {
            rc = halt(err, errlen, "blocks %" PRId64 "..%" PRId64 " should all be stored but are "
                      "not: the stored chain has gaps", lo, n);
            goto cleanup;
        }
        for (int64_t m = n; m >= lo; m--) {
            if (!present[m - lo])
                memset(node[m - lowest], 0, 32);
            if (present[m - lo] && memcmp(node[m - lowest], stored[m - lo].hash, 32) == 0) {
                found = m;
                memcpy(ancestor_hash, stored[m - lo].hash, 32);
                break;
            }
        }
        n = lo - 1;
    }
    if (found == INT64_MIN) {
        if (f->start - 1 >= limit) {
            found = f->start - 1;           /* every stored block is orphaned */
            memset(ancestor_hash, 0, 32);
        } else {
            static const uint8_t zero[32];
            char stored_hex[67], node_hex[67];

            bytes_to_hex(f->cursor_hash, 32, stored_hex);
            bytes_to_hex(span && top == f->cursor ? node[top - lowest] : zero, 32, node_hex);
            rc = halt(err, errlen, "reorg deeper than max_reorg_depth %" PRId64 ": none of the "
                      "stored blocks %" PRId64 "..%" PRId64 " is on the node's chain any more "
                      "(stored block %" PRId64 " is %s, the node's is %s; node head %" PRId64 ")",
                      f->max_depth, lowest, f->cursor, f->cursor, stored_hex,
                      top == f->cursor ? node_hex : "(none)", f->head);
            goto cleanup;
        }
    }
    /* "{0x..,0x..}": the node's blocks that replace the orphaned ones. */
    {
        size_t cnt = (size_t) (top > found ? top - found : 0), len = 0;

        out = malloc(cnt * 67 + 3);
        if (out == NULL) {
            set_err(err, errlen, "out of memory");
            rc = CHAIN_RPC;
            goto cleanup;
        }
        out[len++] = '{';
        for (int64_t m = found + 1; m <= top; m++) {
            if (m > found + 1)
                out[len++] = ',';
            bytes_to_hex(node[m - lowest], 32, out + len);
            len += 66;
        }
        out[len++] = '}';
        out[len] = '\0';
    }
    *ancestor = found;
    *new_hashes = out;
    out = NULL;
cleanup:
    free(node);
    free(out);
    return rc;
}

/* A reorg: the node's block at the cursor is not ours. */
static int
follow_reorg(follower *f, char *err, size_t errlen)
{
    int64_t top = f->head < f->cursor ? f->head : f->cursor;
    int64_t ancestor = 0, to;
    uint8_t ancestor_hash[32];
    char *new_hashes = NULL;
    int rc;

    chain_prefetch_cancel(&f->prefetch);
    rc = find_ancestor(f, top, &ancestor, ancestor_hash, &new_hashes, err, errlen);
    if (rc != CHAIN_OK)
        return rc;
    chain_log(&f->src, LOG_WARN, "reorg detected: the node's chain leaves ours after block %"
              PRId64 " (stored up to %" PRId64 ", node head %" PRId64 ")", ancestor, f->cursor,
              f->head);
    to = f->head < ancestor + f->batch_size ? f->head : ancestor + f->batch_size;
    rc = chain_fetch(&f->src, ancestor + 1, to, ancestor >= f->start ? ancestor_hash : NULL,
                     &f->batch, err, errlen);
    if (rc == CHAIN_PARENT) {           /* it moved again while we looked: start over */
        chain_log(&f->src, LOG_INFO, "the node's chain changed again while following a reorg: %s",
                  err);
        rc = CHAIN_OK;
    } else if (rc == CHAIN_OK) {
        f->reorgs++;
        rc = commit(f, 1, ancestor, ancestor_hash, new_hashes, err, errlen);
        if (rc != CHAIN_OK)
            f->reorgs--;
    }
    free(new_hashes);
    return rc;
}

/* One pass; *idle says whether to sleep poll_interval before the next. */
static int
step(follower *f, int *idle, char *err, size_t errlen)
{
    rpc_call calls[2];
    int have_cursor = f->cursor >= f->start, same = 0, rc;
    uint64_t head = 0;
    uint8_t h[32];
    int64_t target, fetched, t_start, t_fetched;

    *idle = 1;
    memset(calls, 0, sizeof calls);
    calls[0].method = "eth_blockNumber";
    calls[0].params = json_array();
    if (have_cursor) {
        char hex[24];

        snprintf(hex, sizeof hex, "0x%" PRIx64, (uint64_t) f->cursor);
        calls[1].method = "eth_getBlockByNumber";
        calls[1].params = json_pack("[s,b]", hex, 0);
    }
    rc = rpc_client_batch(f->src.rpc, calls, have_cursor ? 2 : 1, chain_stop_cb, f->src.ctx, err,
                          errlen);
    if (rc == 0) {
        if (calls[0].has_error || (have_cursor && calls[1].has_error)) {
            rpc_call *c = calls[0].has_error ? &calls[0] : &calls[1];

            set_err(err, errlen, "%s failed: JSON-RPC error %" PRId64 ": %s", c->method, c->code,
                    c->message);
            rc = CHAIN_RPC;
        } else if (hex_to_u64(json_string_value(calls[0].result), &head) < 0 || head > INT64_MAX) {
            set_err(err, errlen, "eth_blockNumber answered no block number");
            rc = CHAIN_RPC;
        } else if (have_cursor && !json_is_null(calls[1].result)) {
            same = hex_to_fixed(json_string_value(json_object_get(calls[1].result, "hash")), h,
                                32) == 0 && memcmp(h, f->cursor_hash, 32) == 0;
        }
    }
    rpc_client_calls_clear(calls, 2);
    if (rc != 0)
        return rc;
    f->head = (int64_t) head;

    if (have_cursor && !same) {
        if (f->head < f->cursor) {
            /* Behind us.  On our chain (its head block is ours): a syncing or
             * lagging node, never a reason to delete anything. */
            int behind = f->head < f->start;

            if (!behind) {
                uint8_t nh[32];
                int present;
                chain_block sb;
                size_t ns;

                rc = chain_node_hashes(&f->src, f->head, f->head, &nh, &present, err, errlen);
                if (rc == CHAIN_OK)
                    rc = chain_stored(&f->src, &f->tables, f->head, f->head, &sb, &ns, err, errlen);
                if (rc != CHAIN_OK)
                    return rc;
                behind = present && ns == 1 && memcmp(nh, sb.hash, 32) == 0;
            }
            if (behind) {
                if (++f->backwards_polls >= BACKWARDS_POLLS)
                    return halt(err, errlen, "the node's head went backwards: it is at block %"
                                PRId64 " on our chain, below our stored block %" PRId64 " (a "
                                "syncing or lagging node?), for %d polls in a row",
                                f->head, f->cursor, f->backwards_polls);
                chain_log(&f->src, LOG_WARN, "the node's head %" PRId64 " is below our stored "
                          "block %" PRId64 " on the same chain (poll %d of %d before halting)",
                          f->head, f->cursor, f->backwards_polls, BACKWARDS_POLLS);
                return CHAIN_OK;
            }
        }
        f->backwards_polls = 0;
        *idle = 0;
        return follow_reorg(f, err, errlen);
    }
    f->backwards_polls = 0;
    if (f->head <= f->cursor || f->head < f->start) {
        /* nothing new; blocks may still have become final */
        int64_t final_upto = f->head - f->confirmations < f->cursor ? f->head - f->confirmations
                                                                    : f->cursor;

        if (final_upto > f->emitted) {
            chain_batch_free(&f->batch);
            chain_batch_init(&f->batch);
            return commit(f, 0, 0, NULL, NULL, err, errlen);
        }
        return CHAIN_OK;
    }
    target = f->cursor + f->batch_size < f->head ? f->cursor + f->batch_size : f->head;
    /* the first batch after a start is one request's worth: rows show up
     * at once, and the database has work while the next batches come in */
    if (f->blocks_written == 0 && target > f->cursor + f->src.rpc_blocks)
        target = f->cursor + f->src.rpc_blocks;
    t_start = now_ms();
    if (!chain_prefetch_take(&f->prefetch, f->cursor + 1, target,
                             have_cursor ? f->cursor_hash : NULL, &f->batch, &rc, err, errlen))
        rc = chain_fetch(&f->src, f->cursor + 1, target, have_cursor ? f->cursor_hash : NULL,
                         &f->batch, err, errlen);
    if (rc == CHAIN_PARENT) {
        chain_log(&f->src, LOG_INFO, "the chain changed under the cursor (%s): checking for a "
                  "reorg", err);
        *idle = 0;
        return CHAIN_OK;
    }
    if (rc != CHAIN_OK)
        return rc;
    /* behind: fetch the next batches while this one is written */
    fetched = f->batch.hdr[f->batch.nhdr - 1].number;
    chain_prefetch_ahead(&f->prefetch, &f->src, fetched + 1, f->head,
                         3 * (int64_t) f->batch.nhdr, f->batch_size);
    t_fetched = now_ms();
    rc = commit(f, 0, 0, NULL, NULL, err, errlen);
    chain_log(&f->src, LOG_DEBUG, "blocks %" PRId64 "..%" PRId64 ": waited %" PRId64 " ms for "
              "them, wrote them in %" PRId64 " ms", f->batch.hdr[0].number, fetched,
              t_fetched - t_start, now_ms() - t_fetched);
    *idle = rc == CHAIN_OK && fetched >= f->head;
    return rc;
}

static void
progress(follower *f, int force)
{
    int64_t now = now_ms();

    if (!force && now - f->last_progress_ms < PROGRESS_MS)
        return;
    chain_log(&f->src, LOG_INFO, "at block %" PRId64 " (head %" PRId64 ", %" PRId64 " behind; "
              "final and emitted up to %" PRId64 "); %" PRId64 " blocks stored since the last "
              "report, %" PRId64 " reorgs followed", f->cursor, f->head,
              f->head > f->cursor ? f->head - f->cursor : 0, f->emitted,
              f->blocks_written - f->blocks_at_progress, f->reorgs);
    f->last_progress_ms = now;
    f->blocks_at_progress = f->blocks_written;
}

int
op_block_follower_run(op_ctx *ctx, json_t *task, op_result *res)
{
    json_t *job = json_object_get(task, "job");
    json_t *config = json_object_get(job, "config");
    follower f;
    char err[2048], hint[400];
    int64_t failing_since = 0, last_warn = 0;
    int invalid_streak = 0, rc, verified = 0;
    enum { OPEN, TABLES, LOAD, RUN } phase = OPEN;

    memset(&f, 0, sizeof f);
    chain_batch_init(&f.batch);
    chain_prefetch_init(&f.prefetch);
    f.src.ctx = ctx;
    f.dag = json_string_value(json_object_get(job, "dag"));
    f.job = json_string_value(json_object_get(job, "name"));
    if (parse_config(&f, config, err, sizeof err) < 0) {
        op_fail(res, 0, "block_follower: %s", err);
        goto cleanup;
    }
    for (;;) {
        int idle = 0;

        if (ctx->should_stop(ctx)) {
            res->outcome = OP_STOPPED;
            copy_str(res->error, sizeof res->error, "block_follower: stopped");
            goto cleanup;
        }
        switch (phase) {
        case OPEN:
            rc = chain_src_open(&f.src, ctx, config, err, sizeof err);
            if (rc == CHAIN_OK)
                phase = TABLES;
            break;
        case TABLES:
            rc = chain_tables_get(&f.src, &f.tables, err, sizeof err);
            if (rc == CHAIN_OK)
                phase = LOAD;
            break;
        case LOAD:
            rc = load_state(&f, err, sizeof err);
            if (rc == CHAIN_OK && !verified)
                rc = verify_recent(&f, err, sizeof err);
            if (rc == CHAIN_OK) {
                phase = RUN;
                if (!verified)
                    chain_log(&f.src, LOG_INFO, "following chain %" PRId64 " through provider "
                              "\"%s\" from block %" PRId64 ": stored up to %" PRId64 ", emitted "
                              "up to %" PRId64 " (confirmations %" PRId64 ", max_reorg_depth %"
                              PRId64 ", batch_size %" PRId64 ")", f.src.chain_id, f.src.provider,
                              f.start, f.cursor, f.emitted, f.confirmations, f.max_depth,
                              f.batch_size);
                verified = 1;
                f.last_progress_ms = now_ms();
            }
            break;
        default:
            rc = step(&f, &idle, err, sizeof err);
            break;
        }
        switch (rc) {
        case CHAIN_OK:
            if (failing_since)
                chain_log(&f.src, LOG_INFO, "recovered");
            failing_since = 0;
            invalid_streak = 0;
            if (phase == RUN)
                progress(&f, 0);
            if (idle)
                sleep_ms_interruptible(f.poll_ms, chain_stop_cb, ctx);
            continue;
        case CHAIN_STOP:
            continue;
        case CHAIN_FATAL:
            op_fail(res, 0, "block_follower: %s", err);
            goto cleanup;
        case F_HALT:
            restart_hint(&f, hint, sizeof hint);
            op_fail(res, 0, "block_follower halted: %s%s", err, hint);
            chain_log(&f.src, LOG_ERROR, "%s", res->error);
            goto cleanup;
        case CHAIN_INVALID:
            chain_log(&f.src, LOG_WARN, "rejected what the node returned, nothing stored (%d of "
                      "%d): %s", invalid_streak + 1, INVALID_LIMIT, err);
            if (++invalid_streak >= INVALID_LIMIT) {
                op_fail(res, 1, "block_follower: the node's data failed validation %d times in a "
                        "row, nothing was stored: %s", invalid_streak, err);
                goto cleanup;
            }
            sleep_ms_interruptible(f.poll_ms, chain_stop_cb, ctx);
            continue;
        case CHAIN_MISSING:
            chain_log(&f.src, LOG_DEBUG, "%s: trying again", err);
            sleep_ms_interruptible(f.poll_ms, chain_stop_cb, ctx);
            continue;
        default: {          /* CHAIN_RPC: RPC or database trouble */
            int64_t now = now_ms(), wait;

            if (failing_since == 0)
                failing_since = now;
            if (now - last_warn > 30000 || now == failing_since) {
                chain_log(&f.src, LOG_WARN, "%s (retrying; failing for %" PRId64 " s)", err,
                          (now - failing_since) / 1000);
                last_warn = now;
            }
            if (now - failing_since > FAIL_AFTER_MS) {
                op_fail(res, 1, "block_follower: failing for more than %d s: %s",
                        FAIL_AFTER_MS / 1000, err);
                goto cleanup;
            }
            /* a write may or may not have committed: re-read the durable state */
            chain_prefetch_cancel(&f.prefetch);
            if (phase == RUN)
                phase = LOAD;
            wait = f.poll_ms < 1000 ? 1000 : f.poll_ms;
            sleep_ms_interruptible(wait, chain_stop_cb, ctx);
            continue;
        }
        }
    }
cleanup:
    if (phase == RUN)
        progress(&f, 1);
    chain_prefetch_free(&f.prefetch);
    chain_batch_free(&f.batch);
    chain_src_close(&f.src);
    return 0;
}
