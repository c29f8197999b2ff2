/*
 * chain.c: what the chain operators share (see chain.h): logging,
 * config, and the database side: the statements on the three chain tables
 * and the binary COPY of a batch.  The RPC side (fetching, validating and
 * encoding blocks) is fetch.c.
 *
 * Table and column names reach SQL only from trace.chain_tables, and only
 * after a check that they are plain qualified names.
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

#define EMIT_CHUNK 1000

static const char blocks_cols[] =
    "partition_key, producer_task_id, chain_id, block_number, block_hash, parent_hash, "
    "block_timestamp, miner, gas_used, gas_limit, base_fee_per_gas, tx_count, log_count";
static const char txs_cols[] =
    "partition_key, producer_task_id, chain_id, block_number, block_timestamp, tx_index, "
    "tx_hash, from_address, to_address, value, gas, gas_price, nonce, input, status";
static const char logs_cols[] =
    "partition_key, producer_task_id, chain_id, block_number, block_timestamp, tx_index, "
    "log_index, tx_hash, address, topic0, topic1, topic2, topic3, data";

void
chain_log(chain_src *src, int level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    src->ctx->log(src->ctx, level, buf);
}

int
chain_stop_cb(void *arg)
{
    op_ctx *ctx = arg;

    return ctx->should_stop(ctx);
}

int
chain_src_stopping(void *arg)
{
    chain_src *src = arg;

    return (src->cancel != NULL && atomic_load(src->cancel)) || src->ctx->should_stop(src->ctx);
}

int
chain_config_int(json_t *config, const char *key, int64_t min, int64_t max, int64_t *out,
                 char *err, size_t errlen)
{
    json_t *v = json_object_get(config, key);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        set_err(err, errlen, "config \"%s\" must be an integer from %" PRId64 " to %" PRId64,
                key, min, max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* ---- the database side ------------------------------------------------- */

/* A db_exec or db_exec_fenced result as a CHAIN_* result. */
static PGresult *
chain_result(chain_src *src, PGresult *res, int r, int *rc)
{
    op_ctx *ctx = src->ctx;

    if (res != NULL) {
        *rc = CHAIN_OK;
        return res;
    }
    *rc = ctx->should_stop(ctx) ? CHAIN_STOP : r == -2 ? CHAIN_FATAL : CHAIN_RPC;
    return NULL;
}

PGresult *
chain_exec(chain_src *src, const char *sql, int n, const char *const *vals, int *rc, char *err,
           size_t errlen)
{
    int r;
    PGresult *res = src->ctx->db_exec(src->ctx, sql, n, vals, &r, err, errlen);

    return chain_result(src, res, r, rc);
}

PGresult *
chain_exec_fenced(chain_src *src, const char *sql, int n, const char *const *vals, int *rc,
                  char *err, size_t errlen)
{
    int r;
    PGresult *res = src->ctx->db_exec_fenced(src->ctx, sql, n, vals, &r, err, errlen);

    return chain_result(src, res, r, rc);
}

/* "trace_data.d12_v3": a schema-qualified name of plain characters. */
static int
relation_ok(const char *r)
{
    const char *dot = strchr(r, '.');
    size_t n = strlen(r);

    if (n == 0 || n >= 200 || dot == NULL || dot == r || dot[1] == '\0' || strchr(dot + 1, '.'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(('a' <= r[i] && r[i] <= 'z') || ('0' <= r[i] && r[i] <= '9') || r[i] == '_' ||
              r[i] == '.'))
            return 0;
    return 1;
}

int
chain_tables_get(chain_src *src, chain_tables *t, char *err, size_t errlen)
{
    PGresult *r;
    int rc, found = 0;

    memset(t, 0, sizeof *t);
    r = chain_exec_fenced(src, "SELECT dataset_id, output_index, relation FROM "
                   "trace.chain_tables($1::bigint, $2::int, $3::uuid)", 0, NULL, &rc, err, errlen);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *ds = PQgetvalue(r, i, 0), *rel = PQgetvalue(r, i, 2);
        int idx = atoi(PQgetvalue(r, i, 1));
        char *dst = idx == 0 ? t->blocks : idx == 1 ? t->txs : idx == 2 ? t->logs : NULL;

        if (dst == NULL)
            continue;
        if (!relation_ok(rel)) {
            set_err(err, errlen, "trace.chain_tables returned an unexpected relation name \"%s\"",
                    rel);
            PQclear(r);
            return CHAIN_FATAL;
        }
        copy_str(dst, 200, rel);
        if (idx == 0)
            copy_str(t->blocks_dataset, sizeof t->blocks_dataset, ds);
        found++;
    }
    PQclear(r);
    if (found != 3) {
        set_err(err, errlen, "the job must have three outputs (blocks, transactions, logs, in that "
                "order), each a chain table; it has %d", found);
        return CHAIN_FATAL;
    }
    return CHAIN_OK;
}

int
chain_tx_begin(chain_src *src, chain_tables *t, char *err, size_t errlen)
{
    op_ctx *ctx = src->ctx;
    PGresult *r;
    int rc;

    if (ctx->db_begin(ctx, err, errlen) < 0)
        return ctx->should_stop(ctx) ? CHAIN_STOP : CHAIN_RPC;
    r = chain_exec(src, "SET LOCAL lock_timeout = '5s'", 0, NULL, &rc, err, errlen);
    PQclear(r);
    if (rc == CHAIN_OK)
        rc = chain_tables_get(src, t, err, errlen);
    if (rc != CHAIN_OK)
        ctx->db_rollback(ctx);
    return rc;
}

int
chain_stored(chain_src *src, const chain_tables *t, int64_t from, int64_t to, chain_block *out,
             size_t *n, char *err, size_t errlen)
{
    char sql[600], cid[24], a[24], b[24];
    const char *vals[3] = {cid, a, b};
    PGresult *r;
    int rc;

    *n = 0;
    snprintf(cid, sizeof cid, "%" PRId64, src->chain_id);
    snprintf(a, sizeof a, "%" PRId64, from);
    snprintf(b, sizeof b, "%" PRId64, to);
    snprintf(sql, sizeof sql,
             "SELECT block_number, '0x' || encode(block_hash, 'hex'), "
             "'0x' || encode(parent_hash, 'hex'), tx_count, log_count FROM %s "
             "WHERE chain_id = $1::bigint AND block_number BETWEEN $2::bigint AND $3::bigint "
             "ORDER BY block_number", t->blocks);
    r = chain_exec(src, sql, 3, vals, &rc, err, errlen);
    if (r == NULL)
        return rc;
    for (int i = 0; i < PQntuples(r) && (int64_t) *n <= to - from; i++) {
        chain_block *h = &out[*n];

        h->number = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (hex_to_fixed(PQgetvalue(r, i, 1), h->hash, 32) < 0 ||
            hex_to_fixed(PQgetvalue(r, i, 2), h->parent, 32) < 0) {
            set_err(err, errlen, "stored block %" PRId64 " has a hash that is not 32 bytes",
                    h->number);
            PQclear(r);
            return CHAIN_FATAL;
        }
        h->tx_count = atoi(PQgetvalue(r, i, 3));
        h->log_count = atoi(PQgetvalue(r, i, 4));
        (*n)++;
    }
    PQclear(r);
    return CHAIN_OK;
}

int
chain_delete(chain_src *src, const chain_tables *t, int64_t from, int64_t to, char *err,
             size_t errlen)
{
    const char *rels[3] = {t->blocks, t->txs, t->logs};
    char cid[24], a[24], b[24];
    const char *vals[3] = {cid, a, b};

    snprintf(cid, sizeof cid, "%" PRId64, src->chain_id);
    snprintf(a, sizeof a, "%" PRId64, from);
    snprintf(b, sizeof b, "%" PRId64, to);
    for (int i = 0; i < 3; i++) {
        char sql[400];
        PGresult *r;
        int rc;

        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE chain_id = $1::bigint "
                 "AND block_number BETWEEN $2::bigint AND $3::bigint", rels[i]);
        r = chain_exec(src, sql, 3, vals, &rc, err, errlen);
        if (r == NULL)
            return rc;
        PQclear(r);
    }
    return CHAIN_OK;
}

int
chain_copy(chain_src *src, const chain_tables *t, chain_batch *b, char *err, size_t errlen)
{
    struct {
        const char *rel, *cols;
        copybuf *cb;
    } parts[3] = {{t->blocks, blocks_cols, &b->blocks}, {t->txs, txs_cols, &b->txs},
                  {t->logs, logs_cols, &b->logs}};

    for (int i = 0; i < 3; i++) {
        char sql[800];
        int rc;

        if (parts[i].cb->rows == 0)
            continue;
        snprintf(sql, sizeof sql, "COPY %s (%s) FROM STDIN (FORMAT binary)", parts[i].rel,
                 parts[i].cols);
        rc = src->ctx->db_copy(src->ctx, sql, (const char *) parts[i].cb->data, parts[i].cb->len,
                               err, errlen);
        if (rc < 0)
            return src->ctx->should_stop(src->ctx) ? CHAIN_STOP
                   : rc == -2 ? CHAIN_FATAL : CHAIN_RPC;
    }
    return CHAIN_OK;
}

/* One event per stored block of [from, to], in chunks: key "<n>:<hash>"
 * + key_suffix, payload {block_number, block_hash, chain_id, payload_more}
 * (SQL over the blocks table x). */
static int
emit_blocks(chain_src *src, const chain_tables *t, int64_t from, int64_t to,
            const char *key_suffix, const char *payload_more, char *err, size_t errlen)
{
    char sql[1600], cid[24], a[24], b[24];
    const char *vals[4] = {t->blocks_dataset, cid, a, b};

    snprintf(cid, sizeof cid, "%" PRId64, src->chain_id);
    snprintf(sql, sizeof sql,
             "SELECT cardinality(trace.emit_events($1::bigint, $2::int, $3::uuid, $4, "
             "array_agg(x.block_number::text || ':0x' || encode(x.block_hash, 'hex')%s "
             "ORDER BY x.block_number), "
             "array_agg(jsonb_build_object('block_number', x.block_number, 'block_hash', "
             "'0x' || encode(x.block_hash, 'hex'), 'chain_id', x.chain_id, %s) "
             "ORDER BY x.block_number))) "
             "FROM %s x WHERE x.chain_id = $5::bigint "
             "AND x.block_number BETWEEN $6::bigint AND $7::bigint HAVING count(*) > 0",
             key_suffix, payload_more, t->blocks);
    for (int64_t lo = from; lo <= to; lo += EMIT_CHUNK) {
        int64_t hi = to - lo + 1 > EMIT_CHUNK ? lo + EMIT_CHUNK - 1 : to;
        PGresult *r;
        int rc;

        snprintf(a, sizeof a, "%" PRId64, lo);
        snprintf(b, sizeof b, "%" PRId64, hi);
        r = chain_exec_fenced(src, sql, 4, vals, &rc, err, errlen);
        if (r == NULL)
            return rc;
        if (PQntuples(r) != 1 || strtoll(PQgetvalue(r, 0, 0), NULL, 10) != hi - lo + 1) {
            set_err(err, errlen, "blocks %" PRId64 "..%" PRId64 " are not all stored: cannot emit "
                    "their events", lo, hi);
            PQclear(r);
            return CHAIN_FATAL;
        }
        PQclear(r);
    }
    return CHAIN_OK;
}

int
chain_emit_final(chain_src *src, const chain_tables *t, int64_t from, int64_t to, char *err,
                 size_t errlen)
{
    return emit_blocks(src, t, from, to, "", "'tx_count', x.tx_count, 'log_count', x.log_count",
                       err, errlen);
}

int
chain_emit_retractions(chain_src *src, const chain_tables *t, int64_t from, int64_t to,
                       char *err, size_t errlen)
{
    return emit_blocks(src, t, from, to, " || ':retracted'", "'retracted', true", err, errlen);
}
