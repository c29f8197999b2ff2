/*
 * follower_reorg.c: the block_follower's reorg (state FS_REORG, see
 * follower.h): the node's block at the cursor is not ours.
 *
 * Walk back from the cursor (or the node's head, when lower), comparing
 * stored hashes with the node's, WALK_STEP headers per request, to the
 * common ancestor: the highest block both have.  Deeper than
 * max_reorg_depth below the cursor: halt (nothing is rewritten).  Else, in
 * one fenced transaction (commit_rewind): record the reorg
 * (trace.record_reorg, with the orphaned and the new hashes), emit
 * retractions for orphaned blocks that had been emitted as final, delete
 * the orphaned rows, store the first blocks of the new branch, and move
 * the cursor.  A chain that moves again while this runs is simply polled
 * again.
 */
#define _GNU_SOURCE
#include "follower.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WALK_STEP 64                    /* headers per request when walking back */

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
            rc = follower_halt(err, errlen, "blocks %" PRId64 "..%" PRId64 " should all be stored but are "
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
            rc = follower_halt(err, errlen, "reorg deeper than max_reorg_depth %" PRId64 ": none of the "
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

/* In the open transaction: the reorg's record, the retractions of
 * orphaned blocks that were final, and the deletion of every row above
 * the ancestor. */
static int
rewind_rows(follower *f, int64_t ancestor, const char *new_hashes, char *err, size_t errlen)
{
    chain_src *src = &f->src;
    char sql[800], cid[24], fork[24], depth[24], anc[24];
    const char *vals[5] = {cid, fork, depth, anc, new_hashes};
    PGresult *r;
    int rc;

    snprintf(cid, sizeof cid, "%" PRId64, src->chain_id);
    snprintf(fork, sizeof fork, "%" PRId64, ancestor + 1);
    snprintf(depth, sizeof depth, "%" PRId64, f->cursor - ancestor);
    snprintf(anc, sizeof anc, "%" PRId64, ancestor);
    snprintf(sql, sizeof sql,
             "SELECT trace.record_reorg($1::bigint, $2::int, $3::uuid, $4::bigint, $5::bigint, "
             "$6::int, (SELECT coalesce(array_agg('0x' || encode(x.block_hash, 'hex') "
             "ORDER BY x.block_number), '{}') FROM %s x WHERE x.chain_id = $4::bigint "
             "AND x.block_number > $7::bigint), $8::text[])", f->tables.blocks);
    r = chain_exec_fenced(src, sql, 5, vals, &rc, err, errlen);
    PQclear(r);
    if (rc == CHAIN_OK && f->emitted > ancestor)
        rc = chain_emit_retractions(src, &f->tables, ancestor + 1, f->emitted, err, errlen);
    if (rc == CHAIN_OK)
        rc = chain_delete(src, &f->tables, ancestor + 1, INT64_MAX, err, errlen);
    return rc;
}

/* Rewinds to the ancestor and stores the new branch's first blocks (the
 * batch), in one transaction. */
static int
commit_rewind(follower *f, int64_t ancestor, const uint8_t *ancestor_hash,
              const char *new_hashes, char *err, size_t errlen)
{
    const chain_batch *b = &f->batch;
    int64_t cursor = b->nhdr ? b->hdr[b->nhdr - 1].number : ancestor, old = f->cursor;
    int64_t emitted = f->emitted > ancestor ? ancestor : f->emitted;
    uint8_t hash[32] = {0};
    chain_tables t;
    int rc;

    if (b->nhdr)
        memcpy(hash, b->hdr[b->nhdr - 1].hash, 32);
    else if (ancestor >= f->start)
        memcpy(hash, ancestor_hash, 32);
    if ((rc = follower_tx_begin(f, &t, err, errlen)) != CHAIN_OK)
        return rc;
    if ((rc = rewind_rows(f, ancestor, new_hashes, err, errlen)) != CHAIN_OK) {
        f->src.ctx->db_rollback(f->src.ctx);
        return rc;
    }
    if ((rc = follower_tx_finish(f, cursor, hash, emitted, err, errlen)) != CHAIN_OK)
        return rc;
    chain_log(&f->src, LOG_WARN, "reorg followed: blocks %" PRId64 "..%" PRId64 " orphaned "
              "(depth %" PRId64 ", fork at block %" PRId64 "); %s", ancestor + 1, old,
              old - ancestor, ancestor + 1, new_hashes);
    return CHAIN_OK;
}

int
follower_reorg(follower *f, char *err, size_t errlen)
{
    int64_t top = f->head < f->cursor ? f->head : f->cursor;
    int64_t ancestor = 0, to;
    uint8_t ancestor_hash[32];
    char *new_hashes = NULL;
    int rc;

    f->state = FS_POLL;
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
        rc = commit_rewind(f, ancestor, ancestor_hash, new_hashes, err, errlen);
        if (rc != CHAIN_OK)
            f->reorgs--;
    }
    free(new_hashes);
    return rc;
}
