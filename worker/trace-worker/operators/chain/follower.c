/*
 * follower.c: the block_follower operator (activation: source).
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
 * It is a state machine (follower.h draws it): each state is one short
 * function below, follower_step() is the one switch.  POLL asks the head
 * and the node's hash of the stored cursor block (one JSON-RPC batch).
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
#include "follower.h"

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
#define PROGRESS_MS 30000

int
follower_halt(char *err, size_t errlen, const char *fmt, ...)
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

    r = chain_exec_fenced(src, "SELECT trace.source_state($1::bigint, $2::int, $3::uuid)::text", 0,
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
            rc = follower_halt(err, errlen, "the provider \"%s\" now serves chain %" PRId64 ", but this "
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
    r = chain_exec(src, sql, 1, vals, &rc, err, errlen);
    if (r == NULL)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        if (f->cursor >= f->start)
            return follower_halt(err, errlen, "the saved cursor is block %" PRId64 " but no block is "
                        "stored: the tables and the source state disagree", f->cursor);
        memset(f->cursor_hash, 0, 32);
        return CHAIN_OK;
    }
    if (strtoll(PQgetvalue(r, 0, 0), NULL, 10) != f->cursor ||
        hex_to_fixed(PQgetvalue(r, 0, 1), f->cursor_hash, 32) < 0) {
        rc = follower_halt(err, errlen, "the saved cursor is block %" PRId64 " but the highest stored "
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
        rc = follower_halt(err, errlen, "blocks %" PRId64 "..%" PRId64 " should all be stored but %zu of "
                  "%zu are: the stored chain has gaps", lo, f->cursor, n, want);
        goto cleanup;
    }
    for (size_t i = 1; i < n; i++)
        if (memcmp(stored[i].parent, stored[i - 1].hash, 32) != 0) {
            rc = follower_halt(err, errlen, "stored block %" PRId64 "'s parent hash is not stored block %"
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
            rc = follower_halt(err, errlen, "the node agrees with the stored block %" PRId64 " but not "
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

int
follower_tx_begin(follower *f, chain_tables *t, char *err, size_t errlen)
{
    int rc = chain_tx_begin(&f->src, t, err, errlen);     /* fenced by trace.chain_tables */

    if (rc == CHAIN_OK && strcmp(t->blocks, f->tables.blocks) != 0) {
        set_err(err, errlen, "the job's tables changed under a running task");
        f->src.ctx->db_rollback(f->src.ctx);
        rc = CHAIN_FATAL;
    }
    return rc;
}

/* In the open transaction: the batch, the events of blocks that became
 * final (confirmations deep, up to cursor) and the state.  0 or a CHAIN_*
 * failure; *emitted moves with what was emitted. */
static int
write_rows_and_state(follower *f, int64_t cursor, const uint8_t *hash, int64_t *emitted,
                     char *err, size_t errlen)
{
    chain_src *src = &f->src;
    int64_t final_upto = f->head - f->confirmations < cursor ? f->head - f->confirmations : cursor;
    const char *vals[1];
    char *state;
    PGresult *r;
    int rc = CHAIN_OK;

    if (f->batch.nhdr)
        rc = chain_copy(src, &f->tables, &f->batch, err, errlen);
    if (rc == CHAIN_OK && final_upto > *emitted) {
        rc = chain_emit_final(src, &f->tables, *emitted + 1, final_upto, err, errlen);
        *emitted = final_upto;
    }
    if (rc != CHAIN_OK)
        return rc;
    if ((state = state_json(f, cursor, hash, *emitted)) == NULL) {
        set_err(err, errlen, "out of memory");
        return CHAIN_RPC;
    }
    vals[0] = state;
    r = chain_exec_fenced(src, "SELECT trace.save_source_state($1::bigint, $2::int, $3::uuid, "
                   "$4::jsonb)", 1, vals, &rc, err, errlen);
    PQclear(r);
    free(state);
    return rc;
}

int
follower_tx_finish(follower *f, int64_t cursor, const uint8_t *hash, int64_t emitted, char *err,
                   size_t errlen)
{
    op_ctx *ctx = f->src.ctx;
    chain_batch *b = &f->batch;
    int rc = write_rows_and_state(f, cursor, hash, &emitted, err, errlen);

    if (rc == CHAIN_OK && ctx->db_commit(ctx, err, errlen) < 0)
        rc = ctx->should_stop(ctx) ? CHAIN_STOP : CHAIN_RPC;
    if (rc != CHAIN_OK) {
        ctx->db_rollback(ctx);
        return rc;
    }
    f->cursor = cursor;
    memcpy(f->cursor_hash, hash, 32);
    f->emitted = emitted;
    f->blocks_written += (int64_t) b->nhdr;
    if (b->nhdr)
        chain_log(&f->src, LOG_DEBUG, "stored blocks %" PRId64 "..%" PRId64 " (%" PRId64 " txs, %"
                  PRId64 " logs); head %" PRId64 ", final up to %" PRId64, b->hdr[0].number,
                  cursor, b->ntx, b->nlog, f->head, emitted);
    return CHAIN_OK;
}

/* Stores the batch after the cursor (may be empty: then only the events of
 * blocks that became final) and moves the cursor, in one transaction. */
static int
commit_advance(follower *f, char *err, size_t errlen)
{
    const chain_batch *b = &f->batch;
    int64_t cursor = b->nhdr ? b->hdr[b->nhdr - 1].number : f->cursor;
    uint8_t hash[32];
    chain_tables t;
    int rc;

    memcpy(hash, b->nhdr ? b->hdr[b->nhdr - 1].hash : f->cursor_hash, 32);
    if ((rc = follower_tx_begin(f, &t, err, errlen)) != CHAIN_OK)
        return rc;
    return follower_tx_finish(f, cursor, hash, f->emitted, err, errlen);
}

/* ---- the states -------------------------------------------------------- */

static int
st_open(follower *f, char *err, size_t errlen)
{
    int rc = chain_src_open(&f->src, f->src.ctx, f->config, err, errlen);

    if (rc == CHAIN_OK)
        f->state = FS_TABLES;
    return rc;
}

static int
st_tables(follower *f, char *err, size_t errlen)
{
    int rc = chain_tables_get(&f->src, &f->tables, err, errlen);

    if (rc == CHAIN_OK)
        f->state = FS_LOAD;
    return rc;
}

static int
st_load(follower *f, char *err, size_t errlen)
{
    int rc = load_state(f, err, errlen);

    if (rc == CHAIN_OK) {
        f->state = f->verified ? FS_POLL : FS_VERIFY;
        f->last_progress_ms = now_ms();
    }
    return rc;
}

static int
st_verify(follower *f, char *err, size_t errlen)
{
    int rc = verify_recent(f, err, errlen);

    if (rc != CHAIN_OK)
        return rc;
    chain_log(&f->src, LOG_INFO, "following chain %" PRId64 " through provider \"%s\" from block %"
              PRId64 ": stored up to %" PRId64 ", emitted up to %" PRId64 " (confirmations %"
              PRId64 ", max_reorg_depth %" PRId64 ", batch_size %" PRId64 ")", f->src.chain_id,
              f->src.provider, f->start, f->cursor, f->emitted, f->confirmations, f->max_depth,
              f->batch_size);
    f->verified = 1;
    f->state = FS_POLL;
    return CHAIN_OK;
}

/* The head, and whether the node's block at the cursor is ours (*same). */
static int
poll_node(follower *f, int *same, char *err, size_t errlen)
{
    rpc_call calls[2];
    int have_cursor = f->cursor >= f->start, rc;
    uint64_t head = 0;
    uint8_t h[32];

    *same = 0;
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
            *same = hex_to_fixed(json_string_value(json_object_get(calls[1].result, "hash")), h,
                                 32) == 0 && memcmp(h, f->cursor_hash, 32) == 0;
        }
    }
    rpc_client_calls_clear(calls, 2);
    if (rc == 0)
        f->head = (int64_t) head;
    return rc;
}

/* Where to go from the head and the cursor's hash. */
static int
st_poll(follower *f, char *err, size_t errlen)
{
    int same, rc = poll_node(f, &same, err, errlen);
    int64_t final_upto;

    if (rc != CHAIN_OK)
        return rc;
    f->idle = 1;
    f->mid_pass = 1;
    if (f->cursor >= f->start && !same) {
        f->idle = 0;
        f->state = f->head < f->cursor ? FS_BEHIND : FS_REORG;
        if (f->state == FS_REORG)
            f->backwards_polls = 0;
        return CHAIN_OK;
    }
    f->backwards_polls = 0;
    final_upto = f->head - f->confirmations < f->cursor ? f->head - f->confirmations : f->cursor;
    if (f->head > f->cursor && f->head >= f->start) {
        f->idle = 0;
        f->state = FS_ADVANCE;
    } else if (final_upto > f->emitted) {
        f->idle = 0;
        f->state = FS_FINALIZE;         /* nothing new; blocks may still have become final */
    } else
        f->mid_pass = 0;                /* nothing to do: the pass is complete */
    return CHAIN_OK;
}

/* The head is below the cursor and its block at the cursor is not ours.
 * When the node's head block is ours, it is syncing or lagging: never a
 * reason to delete anything, but a halt after BACKWARDS_POLLS polls in a
 * row.  Otherwise it is a reorg. */
static int
st_behind(follower *f, char *err, size_t errlen)
{
    int behind = f->head < f->start, present = 0, rc;
    uint8_t nh[32];
    chain_block sb;
    size_t ns = 0;

    f->state = FS_POLL;
    if (!behind) {
        rc = chain_node_hashes(&f->src, f->head, f->head, &nh, &present, err, errlen);
        if (rc == CHAIN_OK)
            rc = chain_stored(&f->src, &f->tables, f->head, f->head, &sb, &ns, err, errlen);
        if (rc != CHAIN_OK)
            return rc;
        behind = present && ns == 1 && memcmp(nh, sb.hash, 32) == 0;
    }
    if (!behind) {
        f->backwards_polls = 0;
        f->state = FS_REORG;
        return CHAIN_OK;
    }
    if (++f->backwards_polls >= BACKWARDS_POLLS)
        return follower_halt(err, errlen, "the node's head went backwards: it is at block %"
                             PRId64 " on our chain, below our stored block %" PRId64 " (a "
                             "syncing or lagging node?), for %d polls in a row", f->head,
                             f->cursor, f->backwards_polls);
    chain_log(&f->src, LOG_WARN, "the node's head %" PRId64 " is below our stored block %" PRId64
              " on the same chain (poll %d of %d before halting)", f->head, f->cursor,
              f->backwards_polls, BACKWARDS_POLLS);
    f->idle = 1;
    return CHAIN_OK;
}

/* Nothing new, but blocks became final: their events alone; then wait for
 * the next poll. */
static int
st_finalize(follower *f, char *err, size_t errlen)
{
    f->state = FS_POLL;
    f->idle = 1;
    chain_batch_free(&f->batch);
    chain_batch_init(&f->batch);
    return commit_advance(f, err, errlen);
}

/* Fetches (or takes from the prefetch) the blocks after the cursor, up to
 * batch_size, and stores them; starts fetching the next ones meanwhile. */
static int
st_advance(follower *f, char *err, size_t errlen)
{
    int have_cursor = f->cursor >= f->start, rc;
    int64_t target = f->cursor + f->batch_size < f->head ? f->cursor + f->batch_size : f->head;
    int64_t fetched, t_start = now_ms(), t_fetched;

    f->state = FS_POLL;
    /* the first batch after a start is one request's worth: rows show up
     * at once, and the database has work while the next batches come in */
    if (f->blocks_written == 0 && target > f->cursor + f->src.rpc_blocks)
        target = f->cursor + f->src.rpc_blocks;
    if (!chain_prefetch_take(&f->prefetch, f->cursor + 1, target,
                             have_cursor ? f->cursor_hash : NULL, &f->batch, &rc, err, errlen))
        rc = chain_fetch(&f->src, f->cursor + 1, target, have_cursor ? f->cursor_hash : NULL,
                         &f->batch, err, errlen);
    if (rc == CHAIN_PARENT) {
        chain_log(&f->src, LOG_INFO, "the chain changed under the cursor (%s): checking for a "
                  "reorg", err);
        return CHAIN_OK;
    }
    if (rc != CHAIN_OK)
        return rc;
    fetched = f->batch.hdr[f->batch.nhdr - 1].number;
    chain_prefetch_ahead(&f->prefetch, &f->src, fetched + 1, f->head,
                         3 * (int64_t) f->batch.nhdr, f->batch_size);
    t_fetched = now_ms();
    rc = commit_advance(f, err, errlen);
    chain_log(&f->src, LOG_DEBUG, "blocks %" PRId64 "..%" PRId64 ": waited %" PRId64 " ms for "
              "them, wrote them in %" PRId64 " ms", f->batch.hdr[0].number, fetched,
              t_fetched - t_start, now_ms() - t_fetched);
    f->idle = rc == CHAIN_OK && fetched >= f->head;
    return rc;
}

/* The one switch: runs the current state. */
static int
follower_step(follower *f, char *err, size_t errlen)
{
    switch (f->state) {
    case FS_OPEN:
        return st_open(f, err, errlen);
    case FS_TABLES:
        return st_tables(f, err, errlen);
    case FS_LOAD:
        return st_load(f, err, errlen);
    case FS_VERIFY:
        return st_verify(f, err, errlen);
    case FS_POLL:
        return st_poll(f, err, errlen);
    case FS_BEHIND:
        return st_behind(f, err, errlen);
    case FS_FINALIZE:
        return st_finalize(f, err, errlen);
    case FS_ADVANCE:
        return st_advance(f, err, errlen);
    case FS_REORG:
        return follower_reorg(f, err, errlen);
    }
    return CHAIN_FATAL;
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

/* How long failures have lasted, for the driver. */
typedef struct failing {
    int64_t since, last_warn;
    int     invalid_streak;
} failing;

/* A failure worth a retry (RPC or database): warn now and then, give up
 * after FAIL_AFTER_MS, re-read the durable state (a write may or may not
 * have committed).  0 to go on, -1 when the task fails. */
static int
on_retryable(follower *f, failing *fl, const char *err, op_result *res)
{
    int64_t now = now_ms();

    if (fl->since == 0)
        fl->since = now;
    if (now - fl->last_warn > 30000 || now == fl->since) {
        chain_log(&f->src, LOG_WARN, "%s (retrying; failing for %" PRId64 " s)", err,
                  (now - fl->since) / 1000);
        fl->last_warn = now;
    }
    if (now - fl->since > FAIL_AFTER_MS) {
        op_fail(res, 1, "block_follower: failing for more than %d s: %s", FAIL_AFTER_MS / 1000,
                err);
        return -1;
    }
    chain_prefetch_cancel(&f->prefetch);
    if (f->state >= FS_VERIFY)
        f->state = FS_LOAD;
    sleep_ms_interruptible(f->poll_ms < 1000 ? 1000 : f->poll_ms, chain_stop_cb, f->src.ctx);
    return 0;
}

/* What a step's result means for the task.  0 to go on, -1 when it ends
 * (res filled).  A pass (a poll and what it led to) that succeeded ends a
 * streak of failures; a poll alone does not. */
static int
on_result(follower *f, int rc, failing *fl, const char *err, op_result *res)
{
    char hint[400];

    switch (rc) {
    case CHAIN_OK:
        if (f->mid_pass) {
            if (f->idle)
                sleep_ms_interruptible(f->poll_ms, chain_stop_cb, f->src.ctx);
            return 0;
        }
        if (fl->since)
            chain_log(&f->src, LOG_INFO, "recovered");
        fl->since = 0;
        fl->invalid_streak = 0;
        if (f->state >= FS_POLL)
            progress(f, 0);
        if (f->idle)
            sleep_ms_interruptible(f->poll_ms, chain_stop_cb, f->src.ctx);
        return 0;
    case CHAIN_STOP:
        return 0;
    case CHAIN_FATAL:
        op_fail(res, 0, "block_follower: %s", err);
        return -1;
    case F_HALT:
        restart_hint(f, hint, sizeof hint);
        op_fail(res, 0, "block_follower halted: %s%s", err, hint);
        chain_log(&f->src, LOG_ERROR, "%s", res->error);
        return -1;
    case CHAIN_INVALID:
        chain_log(&f->src, LOG_WARN, "rejected what the node returned, nothing stored (%d of %d): "
                  "%s", fl->invalid_streak + 1, INVALID_LIMIT, err);
        if (++fl->invalid_streak >= INVALID_LIMIT) {
            op_fail(res, 1, "block_follower: the node's data failed validation %d times in a row, "
                    "nothing was stored: %s", fl->invalid_streak, err);
            return -1;
        }
        sleep_ms_interruptible(f->poll_ms, chain_stop_cb, f->src.ctx);
        return 0;
    case CHAIN_MISSING:
        chain_log(&f->src, LOG_DEBUG, "%s: trying again", err);
        sleep_ms_interruptible(f->poll_ms, chain_stop_cb, f->src.ctx);
        return 0;
    default:
        return on_retryable(f, fl, err, res);
    }
}

int
op_block_follower_run(op_ctx *ctx, json_t *task, op_result *res)
{
    json_t *job = json_object_get(task, "job");
    follower f;
    failing fl = {0};
    char err[2048];

    memset(&f, 0, sizeof f);
    chain_batch_init(&f.batch);
    chain_prefetch_init(&f.prefetch);
    f.src.ctx = ctx;
    f.config = json_object_get(job, "config");
    f.dag = json_string_value(json_object_get(job, "dag"));
    f.job = json_string_value(json_object_get(job, "name"));
    if (parse_config(&f, f.config, err, sizeof err) < 0)
        op_fail(res, 0, "block_follower: %s", err);
    else
        for (;;) {
            if (ctx->should_stop(ctx)) {
                res->outcome = OP_STOPPED;
                copy_str(res->error, sizeof res->error, "block_follower: stopped");
                break;
            }
            f.idle = 0;
            f.mid_pass = 0;
            if (on_result(&f, follower_step(&f, err, sizeof err), &fl, err, res) < 0)
                break;
        }
    if (f.state >= FS_POLL)
        progress(&f, 1);
    chain_prefetch_free(&f.prefetch);
    chain_batch_free(&f.batch);
    chain_src_close(&f.src);
    return 0;
}
