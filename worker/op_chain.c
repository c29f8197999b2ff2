/*
 * op_chain.c: what the chain operators share (see op_chain.h): blocks and
 * receipts through the RPC gateway, their validation, their encoding as
 * binary COPY rows, and the statements on the three chain tables.
 *
 * Validation, per block, before anything is encoded for good: the number
 * asked for; hashes of the right size; the parent hash against the block
 * before (or the expected parent); every transaction is an object of this
 * block at its index; one receipt per transaction, for that transaction in
 * this block; log indexes contiguous from 0 across the block, each log of
 * its transaction and block, never `removed`; at most four topics.  A
 * failure names the block and what was wrong.
 *
 * Table and column names reach SQL only from trace.chain_tables, and only
 * after a check that they are plain qualified names.
 */
#define _GNU_SOURCE
#include "op_chain.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TX_RECEIPTS_PER_REQUEST 500
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

/* ---- small JSON helpers ------------------------------------------------ */

static const char *
jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int
get_u64(json_t *o, const char *key, uint64_t *v)
{
    return hex_to_u64(jstr(o, key), v);
}

static int
get_fixed(json_t *o, const char *key, uint8_t *out, size_t n)
{
    return hex_to_fixed(jstr(o, key), out, n);
}

/* An optional field that, when present, must equal want (a quantity). */
static int
opt_u64_is(json_t *o, const char *key, uint64_t want)
{
    json_t *v = json_object_get(o, key);
    uint64_t got;

    if (v == NULL || json_is_null(v))
        return 1;
    return hex_to_u64(json_string_value(v), &got) == 0 && got == want;
}

/* An optional field that, when present, must equal want (32 bytes). */
static int
opt_hash_is(json_t *o, const char *key, const uint8_t *want)
{
    json_t *v = json_object_get(o, key);
    uint8_t got[32];

    if (v == NULL || json_is_null(v))
        return 1;
    return hex_to_fixed(json_string_value(v), got, 32) == 0 && memcmp(got, want, 32) == 0;
}

static int
invalid(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
invalid(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return CHAIN_INVALID;
}

/* A fixed-size byte string field (hash, address) as bytea; NULL when the
 * field is absent or null and nullable.  0 or -1. */
static int
put_fixed(copybuf *cb, json_t *o, const char *key, size_t n, int nullable)
{
    json_t *v = json_object_get(o, key);
    uint8_t buf[32];

    if (v == NULL || json_is_null(v)) {
        if (!nullable)
            return -1;
        cb_null(cb);
        return 0;
    }
    if (n > sizeof buf || hex_to_fixed(json_string_value(v), buf, n) < 0)
        return -1;
    cb_bytes(cb, buf, n);
    return 0;
}

/* A quantity field as numeric, or NULL when absent and nullable. */
static int
put_numeric(copybuf *cb, json_t *o, const char *key, int nullable)
{
    const char *s = jstr(o, key);

    if (s == NULL) {
        if (!nullable || (json_object_get(o, key) && !json_is_null(json_object_get(o, key))))
            return -1;
        cb_null(cb);
        return 0;
    }
    cb_numeric_hex(cb, s, key);
    return cb->failed ? -1 : 0;
}

/* ---- the batch --------------------------------------------------------- */

void
chain_batch_init(chain_batch *b)
{
    memset(b, 0, sizeof *b);
    cb_init(&b->blocks);
    cb_init(&b->txs);
    cb_init(&b->logs);
}

void
chain_batch_free(chain_batch *b)
{
    cb_free(&b->blocks);
    cb_free(&b->txs);
    cb_free(&b->logs);
    free(b->hdr);
    memset(b, 0, sizeof *b);
}

static void
batch_reset(chain_batch *b)
{
    cb_reset(&b->blocks);
    cb_reset(&b->txs);
    cb_reset(&b->logs);
    b->nhdr = 0;
    b->ntx = b->nlog = 0;
}

static int
batch_add_header(chain_batch *b, const chain_block *h)
{
    if (b->nhdr == b->caphdr) {
        size_t cap = b->caphdr ? b->caphdr * 2 : 64;
        chain_block *p = realloc(b->hdr, cap * sizeof *p);

        if (p == NULL)
            return -1;
        b->hdr = p;
        b->caphdr = cap;
    }
    b->hdr[b->nhdr++] = *h;
    return 0;
}

/* Encodes one log (the i-th of transaction tx_index) of block n. */
static int
encode_log(chain_src *src, chain_batch *b, json_t *lg, const char *pk, int64_t n,
           uint64_t ts, const uint8_t *bhash, int32_t tx_index, const uint8_t *txhash,
           int32_t log_index, int64_t task_id, char *err, size_t errlen)
{
    json_t *topics = json_object_get(lg, "topics");
    const char *data = jstr(lg, "data");
    size_t nt, dlen;
    uint8_t topic[32];

    if (!json_is_object(lg))
        return invalid(err, errlen, "block %" PRId64 ": a log of transaction %d is not an object",
                       n, tx_index);
    if (json_object_get(lg, "logIndex") == NULL ||
        !opt_u64_is(lg, "logIndex", (uint64_t) log_index))
        return invalid(err, errlen, "block %" PRId64 ": transaction %d has a log with logIndex %s "
                       "where %d was expected (log indexes must run from 0 across the block)",
                       n, tx_index, jstr(lg, "logIndex") ? jstr(lg, "logIndex") : "(none)",
                       log_index);
    if (!opt_u64_is(lg, "transactionIndex", (uint64_t) tx_index) ||
        !opt_hash_is(lg, "transactionHash", txhash) || !opt_hash_is(lg, "blockHash", bhash) ||
        !opt_u64_is(lg, "blockNumber", (uint64_t) n))
        return invalid(err, errlen, "block %" PRId64 ": log %d does not belong to transaction %d "
                       "of this block (its transaction or block fields differ)",
                       n, log_index, tx_index);
    if (json_is_true(json_object_get(lg, "removed")))
        return invalid(err, errlen, "block %" PRId64 ": log %d is marked removed", n, log_index);
    nt = json_array_size(topics);
    if (!json_is_array(topics) || nt > 4)
        return invalid(err, errlen, "block %" PRId64 ": log %d has %s", n, log_index,
                       json_is_array(topics) ? "more than 4 topics" : "no topics array");
    if (data == NULL || hex_data_len(data, &dlen) < 0)
        return invalid(err, errlen, "block %" PRId64 ": log %d has no hex data", n, log_index);

    cb_tuple(&b->logs, 14);
    cb_bytes(&b->logs, pk, strlen(pk));
    cb_int8(&b->logs, task_id);
    cb_int8(&b->logs, src->chain_id);
    cb_int8(&b->logs, n);
    cb_timestamptz_unix(&b->logs, (int64_t) ts);
    cb_int4(&b->logs, tx_index);
    cb_int4(&b->logs, log_index);
    cb_bytes(&b->logs, txhash, 32);
    if (put_fixed(&b->logs, lg, "address", 20, 0) < 0)
        return invalid(err, errlen, "block %" PRId64 ": log %d has no 20-byte address", n,
                       log_index);
    for (size_t k = 0; k < 4; k++) {
        if (k >= nt) {
            cb_null(&b->logs);
            continue;
        }
        if (hex_to_fixed(json_string_value(json_array_get(topics, k)), topic, 32) < 0)
            return invalid(err, errlen, "block %" PRId64 ": log %d topic %zu is not 32 bytes",
                           n, log_index, k);
        cb_bytes(&b->logs, topic, 32);
    }
    cb_bytea_hex(&b->logs, data, "log data");
    b->nlog++;
    return CHAIN_OK;
}

/* Validates block n (JSON with full transactions) against its receipts and
 * the expected parent, and encodes its rows.  first: it is the first block
 * of the fetch (a parent mismatch there is a reorg, not bad data). */
static int
encode_block(chain_src *src, chain_batch *b, int64_t n, json_t *blk, json_t *rcpts,
             const uint8_t *parent, int first, char *err, size_t errlen)
{
    int64_t task_id = src->ctx->task_id;
    json_t *txs = json_object_get(blk, "transactions");
    chain_block h;
    uint64_t num, ts;
    char pk[24];
    size_t ntx, i;
    json_t *tx;
    int32_t log_index = 0;
    int rc;

    memset(&h, 0, sizeof h);
    if (!json_is_object(blk))
        return invalid(err, errlen, "block %" PRId64 ": not a JSON object", n);
    if (get_u64(blk, "number", &num) < 0 || num != (uint64_t) n)
        return invalid(err, errlen, "asked for block %" PRId64 ", the node answered block %s", n,
                       jstr(blk, "number") ? jstr(blk, "number") : "(no number)");
    if (get_fixed(blk, "hash", h.hash, 32) < 0 || get_fixed(blk, "parentHash", h.parent, 32) < 0)
        return invalid(err, errlen, "block %" PRId64 ": hash or parentHash is not 32 bytes", n);
    if (get_u64(blk, "timestamp", &ts) < 0 || ts > (uint64_t) INT64_MAX / 2000000)
        return invalid(err, errlen, "block %" PRId64 ": bad timestamp", n);
    if (parent != NULL && memcmp(parent, h.parent, 32) != 0) {
        char want[67], got[67];

        bytes_to_hex(parent, 32, want);
        bytes_to_hex(h.parent, 32, got);
        if (first) {
            set_err(err, errlen, "block %" PRId64 " has parent %s, not %s", n, got, want);
            return CHAIN_PARENT;
        }
        return invalid(err, errlen, "block %" PRId64 "'s parent hash %s is not block %" PRId64
                       "'s hash %s: the node's chain changed while it was read", n, got, n - 1,
                       want);
    }
    if (!json_is_array(txs))
        return invalid(err, errlen, "block %" PRId64 ": no transactions list", n);
    ntx = json_array_size(txs);
    if (!json_is_array(rcpts) || json_array_size(rcpts) != ntx)
        return invalid(err, errlen, "block %" PRId64 " lists %zu transactions but %zu receipts "
                       "came back", n, ntx, json_is_array(rcpts) ? json_array_size(rcpts) : 0);
    snprintf(pk, sizeof pk, "%" PRId64, n);

    json_array_foreach(txs, i, tx) {
        json_t *r = json_array_get(rcpts, i);
        json_t *logs = json_object_get(r, "logs");
        uint8_t txhash[32];
        uint64_t status;
        size_t j;
        json_t *lg;

        if (!json_is_object(tx))
            return invalid(err, errlen, "block %" PRId64 ": transaction %zu is not an object "
                           "(the node did not return full transactions)", n, i);
        if (get_fixed(tx, "hash", txhash, 32) < 0)
            return invalid(err, errlen, "block %" PRId64 ": transaction %zu has no 32-byte hash",
                           n, i);
        if (!opt_hash_is(tx, "blockHash", h.hash) || !opt_u64_is(tx, "blockNumber", num) ||
            !opt_u64_is(tx, "transactionIndex", i))
            return invalid(err, errlen, "block %" PRId64 ": transaction %zu does not say it is "
                           "transaction %zu of this block", n, i, i);
        if (!json_is_object(r) || !opt_hash_is(r, "transactionHash", txhash) ||
            json_object_get(r, "transactionHash") == NULL || !opt_hash_is(r, "blockHash", h.hash) ||
            !opt_u64_is(r, "transactionIndex", i))
            return invalid(err, errlen, "block %" PRId64 ": receipt %zu is not the receipt of "
                           "transaction %zu of this block", n, i, i);
        if (!json_is_array(logs))
            return invalid(err, errlen, "block %" PRId64 ": receipt %zu has no logs array", n, i);

        cb_tuple(&b->txs, 15);
        cb_bytes(&b->txs, pk, strlen(pk));
        cb_int8(&b->txs, task_id);
        cb_int8(&b->txs, src->chain_id);
        cb_int8(&b->txs, n);
        cb_timestamptz_unix(&b->txs, (int64_t) ts);
        cb_int4(&b->txs, (int32_t) i);
        cb_bytes(&b->txs, txhash, 32);
        if (put_fixed(&b->txs, tx, "from", 20, 0) < 0 || put_fixed(&b->txs, tx, "to", 20, 1) < 0)
            return invalid(err, errlen, "block %" PRId64 ": transaction %zu has a bad from or to "
                           "address", n, i);
        if (put_numeric(&b->txs, tx, "value", 0) < 0 || put_numeric(&b->txs, tx, "gas", 1) < 0)
            return invalid(err, errlen, "block %" PRId64 ": transaction %zu has a bad value or gas",
                           n, i);
        if (jstr(tx, "gasPrice") != NULL)
            rc = put_numeric(&b->txs, tx, "gasPrice", 1);
        else
            rc = put_numeric(&b->txs, r, "effectiveGasPrice", 1);
        if (rc < 0 || put_numeric(&b->txs, tx, "nonce", 1) < 0)
            return invalid(err, errlen, "block %" PRId64 ": transaction %zu has a bad gas price "
                           "or nonce", n, i);
        if (jstr(tx, "input") == NULL)
            cb_null(&b->txs);
        else
            cb_bytea_hex(&b->txs, jstr(tx, "input"), "input");
        if (jstr(r, "status") == NULL)
            cb_null(&b->txs);
        else if (get_u64(r, "status", &status) < 0 || status > 1)
            return invalid(err, errlen, "block %" PRId64 ": receipt %zu has status %s", n, i,
                           jstr(r, "status"));
        else
            cb_int2(&b->txs, (int16_t) status);
        b->ntx++;

        json_array_foreach(logs, j, lg) {
            rc = encode_log(src, b, lg, pk, n, ts, h.hash, (int32_t) i, txhash, log_index,
                            task_id, err, errlen);
            if (rc != CHAIN_OK)
                return rc;
            log_index++;
        }
    }

    cb_tuple(&b->blocks, 13);
    cb_bytes(&b->blocks, pk, strlen(pk));
    cb_int8(&b->blocks, task_id);
    cb_int8(&b->blocks, src->chain_id);
    cb_int8(&b->blocks, n);
    cb_bytes(&b->blocks, h.hash, 32);
    cb_bytes(&b->blocks, h.parent, 32);
    cb_timestamptz_unix(&b->blocks, (int64_t) ts);
    if (put_fixed(&b->blocks, blk, "miner", 20, 1) < 0 ||
        put_numeric(&b->blocks, blk, "gasUsed", 1) < 0 ||
        put_numeric(&b->blocks, blk, "gasLimit", 1) < 0 ||
        put_numeric(&b->blocks, blk, "baseFeePerGas", 1) < 0)
        return invalid(err, errlen, "block %" PRId64 ": bad miner, gasUsed, gasLimit or "
                       "baseFeePerGas", n);
    cb_int4(&b->blocks, (int32_t) ntx);
    cb_int4(&b->blocks, log_index);

    if (b->blocks.failed || b->txs.failed || b->logs.failed)
        return invalid(err, errlen, "block %" PRId64 ": %s", n,
                       b->blocks.failed ? b->blocks.error
                       : b->txs.failed ? b->txs.error : b->logs.error);
    h.number = n;
    h.tx_count = (int32_t) ntx;
    h.log_count = log_index;
    if (batch_add_header(b, &h) < 0)
        return invalid(err, errlen, "out of memory");
    return CHAIN_OK;
}

static json_t *
params_number(int64_t n, int full)
{
    char hex[24];

    snprintf(hex, sizeof hex, "0x%" PRIx64, (uint64_t) n);
    return full < 0 ? json_pack("[s]", hex) : json_pack("[s,b]", hex, full);
}

/* A failed call of a batch, as an error message. */
static int
call_failed(const rpc_call *c, const char *what, int64_t n, char *err, size_t errlen)
{
    set_err(err, errlen, "%s(%" PRId64 ") failed: JSON-RPC error %" PRId64 ": %s", what, n,
            c->code, c->message);
    return CHAIN_RPC;
}

/* Does a JSON-RPC error say the method does not exist here? */
static int
method_missing(const rpc_call *c)
{
    return c->code == -32601 || strstr(c->message, "not supported") != NULL ||
           strstr(c->message, "not found") != NULL || strstr(c->message, "not allowed") != NULL ||
           strstr(c->message, "does not exist") != NULL;
}

/* The receipts of a block's transactions, one eth_getTransactionReceipt
 * each (for nodes without eth_getBlockReceipts).  *out gets a new array. */
static int
fetch_tx_receipts(chain_src *src, int64_t n, json_t *blk, json_t **out, char *err, size_t errlen)
{
    json_t *txs = json_object_get(blk, "transactions");
    size_t ntx = json_array_size(txs);
    json_t *arr = json_array();
    rpc_call *calls = NULL;
    int rc = CHAIN_OK;

    *out = NULL;
    if (arr == NULL)
        return invalid(err, errlen, "out of memory");
    calls = calloc(TX_RECEIPTS_PER_REQUEST, sizeof *calls);
    if (calls == NULL) {
        json_decref(arr);
        return invalid(err, errlen, "out of memory");
    }
    for (size_t a = 0; a < ntx && rc == CHAIN_OK; a += TX_RECEIPTS_PER_REQUEST) {
        size_t k = ntx - a < TX_RECEIPTS_PER_REQUEST ? ntx - a : TX_RECEIPTS_PER_REQUEST;

        for (size_t i = 0; i < k; i++) {
            const char *h = jstr(json_array_get(txs, a + i), "hash");

            calls[i].method = "eth_getTransactionReceipt";
            calls[i].params = json_pack("[s]", h ? h : "");
        }
        rc = rpc_client_batch(src->rpc, calls, k, chain_stop_cb, src->ctx, err, errlen);
        for (size_t i = 0; i < k && rc == CHAIN_OK; i++) {
            if (calls[i].has_error)
                rc = call_failed(&calls[i], "eth_getTransactionReceipt of block", n, err, errlen);
            else if (json_is_null(calls[i].result)) {
                set_err(err, errlen, "block %" PRId64 ": the receipt of transaction %zu is not on "
                        "the node", n, a + i);
                rc = CHAIN_MISSING;
            } else
                json_array_append(arr, calls[i].result);
        }
        rpc_client_calls_clear(calls, k);
    }
    free(calls);
    if (rc != CHAIN_OK) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return CHAIN_OK;
}

/* Fetches and encodes blocks [a, a + k).  *prev is the expected parent of
 * block a (NULL: unknown), updated to the last block's hash. */
static int
fetch_chunk(chain_src *src, int64_t a, size_t k, int64_t first_block, chain_batch *b,
            const uint8_t **prev, uint8_t *prev_buf, char *err, size_t errlen)
{
    size_t per = src->receipts_by_tx ? 1 : 2;
    rpc_call calls[2 * 64];
    int rc;

    memset(calls, 0, sizeof calls);
    for (size_t i = 0; i < k; i++) {
        calls[per * i].method = "eth_getBlockByNumber";
        calls[per * i].params = params_number(a + (int64_t) i, 1);
        if (per == 2) {
            calls[2 * i + 1].method = "eth_getBlockReceipts";
            calls[2 * i + 1].params = params_number(a + (int64_t) i, -1);
        }
    }
    rc = rpc_client_batch(src->rpc, calls, per * k, chain_stop_cb, src->ctx, err, errlen);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < k && rc == CHAIN_OK; i++) {
        int64_t n = a + (int64_t) i;
        rpc_call *bc = &calls[per * i];
        json_t *receipts = NULL, *own = NULL;

        if (bc->has_error) {
            rc = call_failed(bc, "eth_getBlockByNumber", n, err, errlen);
            break;
        }
        if (json_is_null(bc->result)) {
            set_err(err, errlen, "block %" PRId64 " is not on the node", n);
            rc = CHAIN_MISSING;
            break;
        }
        if (per == 2) {
            rpc_call *rc_ = &calls[2 * i + 1];

            if (rc_->has_error && method_missing(rc_)) {
                chain_log(src, LOG_INFO, "eth_getBlockReceipts is not available (%s): fetching "
                          "receipts one transaction at a time", rc_->message);
                src->receipts_by_tx = 1;
            } else if (rc_->has_error) {
                rc = call_failed(rc_, "eth_getBlockReceipts", n, err, errlen);
                break;
            } else if (json_is_null(rc_->result)) {
                set_err(err, errlen, "the receipts of block %" PRId64 " are not on the node", n);
                rc = CHAIN_MISSING;
                break;
            } else
                receipts = rc_->result;
        }
        if (receipts == NULL) {
            rc = fetch_tx_receipts(src, n, bc->result, &own, err, errlen);
            if (rc != CHAIN_OK)
                break;
            receipts = own;
        }
        rc = encode_block(src, b, n, bc->result, receipts, *prev, n == first_block, err, errlen);
        json_decref(own);
        if (rc == CHAIN_OK) {
            memcpy(prev_buf, b->hdr[b->nhdr - 1].hash, 32);
            *prev = prev_buf;
        }
    }
    rpc_client_calls_clear(calls, per * k);
    return rc;
}

int
chain_fetch(chain_src *src, int64_t from, int64_t to, const uint8_t *parent, chain_batch *b,
            char *err, size_t errlen)
{
    uint8_t prev_buf[32];
    const uint8_t *prev = parent;
    int rc = CHAIN_OK;

    batch_reset(b);
    for (int64_t a = from; a <= to && rc == CHAIN_OK;) {
        int64_t left = to - a + 1;
        size_t k = (size_t) (left < src->rpc_blocks ? left : src->rpc_blocks);

        if (src->ctx->should_stop(src->ctx))
            return CHAIN_STOP;
        rc = fetch_chunk(src, a, k, from, b, &prev, prev_buf, err, errlen);
        a += (int64_t) k;
    }
    if (rc != CHAIN_OK)
        return rc;
    cb_finish(&b->blocks);
    cb_finish(&b->txs);
    cb_finish(&b->logs);
    if (b->blocks.failed || b->txs.failed || b->logs.failed)
        return invalid(err, errlen, "encoding failed: out of memory");
    return CHAIN_OK;
}

int
chain_head(chain_src *src, int64_t *head, char *err, size_t errlen)
{
    rpc_call c;
    uint64_t v;
    int rc;

    memset(&c, 0, sizeof c);
    c.method = "eth_blockNumber";
    c.params = json_array();
    rc = rpc_client_batch(src->rpc, &c, 1, chain_stop_cb, src->ctx, err, errlen);
    if (rc == 0) {
        if (c.has_error)
            rc = call_failed(&c, "eth_blockNumber", 0, err, errlen);
        else if (hex_to_u64(json_string_value(c.result), &v) < 0 || v > INT64_MAX) {
            set_err(err, errlen, "eth_blockNumber answered no block number");
            rc = CHAIN_RPC;
        } else
            *head = (int64_t) v;
    }
    rpc_client_calls_clear(&c, 1);
    return rc;
}

int
chain_node_hashes(chain_src *src, int64_t from, int64_t to, uint8_t (*hash)[32], int *present,
                  char *err, size_t errlen)
{
    size_t k = (size_t) (to - from + 1);
    rpc_call *calls;
    int rc;

    if (to < from || k > 256) {
        set_err(err, errlen, "chain_node_hashes: bad range");
        return CHAIN_FATAL;
    }
    calls = calloc(k, sizeof *calls);
    if (calls == NULL) {
        set_err(err, errlen, "out of memory");
        return CHAIN_RPC;
    }
    for (size_t i = 0; i < k; i++) {
        calls[i].method = "eth_getBlockByNumber";
        calls[i].params = params_number(from + (int64_t) i, 0);
    }
    rc = rpc_client_batch(src->rpc, calls, k, chain_stop_cb, src->ctx, err, errlen);
    for (size_t i = 0; i < k && rc == 0; i++) {
        present[i] = 0;
        if (calls[i].has_error)
            rc = call_failed(&calls[i], "eth_getBlockByNumber", from + (int64_t) i, err, errlen);
        else if (!json_is_null(calls[i].result)) {
            uint64_t num;

            if (get_u64(calls[i].result, "number", &num) < 0 ||
                num != (uint64_t) (from + (int64_t) i) ||
                get_fixed(calls[i].result, "hash", hash[i], 32) < 0) {
                set_err(err, errlen, "eth_getBlockByNumber(%" PRId64 ") answered a malformed "
                        "block", from + (int64_t) i);
                rc = CHAIN_RPC;
            } else
                present[i] = 1;
        }
    }
    rpc_client_calls_clear(calls, k);
    free(calls);
    return rc;
}

int
chain_src_open(chain_src *src, op_ctx *ctx, json_t *config, char *err, size_t errlen)
{
    const char *provider = json_string_value(json_object_get(config, "rpc"));
    int64_t want = 0;
    rpc_call c;
    uint64_t id;
    int rc;

    memset(src, 0, sizeof *src);
    src->ctx = ctx;
    src->rpc_blocks = 10;
    if (!json_is_object(config)) {
        set_err(err, errlen, "the job's config must be an object");
        return CHAIN_FATAL;
    }
    if (provider == NULL) {
        set_err(err, errlen, "config \"rpc\" is required: the name of a provider of the RPC "
                "gateway");
        return CHAIN_FATAL;
    }
    copy_str(src->provider, sizeof src->provider, provider);
    if (chain_config_int(config, "chain_id", 1, INT64_C(1) << 53, &want, err, errlen) < 0)
        return CHAIN_FATAL;
    src->rpc = rpc_client_new(ctx->settings->rpc_gateway, provider, err, errlen);
    if (src->rpc == NULL)
        return CHAIN_FATAL;

    memset(&c, 0, sizeof c);
    c.method = "eth_chainId";
    c.params = json_array();
    rc = rpc_client_batch(src->rpc, &c, 1, chain_stop_cb, ctx, err, errlen);
    if (rc == 0 && c.has_error)
        rc = call_failed(&c, "eth_chainId", 0, err, errlen);
    else if (rc == 0 && (hex_to_u64(json_string_value(c.result), &id) < 0 || id == 0 ||
                         id > (UINT64_C(1) << 53))) {
        set_err(err, errlen, "eth_chainId answered no chain id");
        rc = CHAIN_RPC;
    }
    rpc_client_calls_clear(&c, 1);
    if (rc == 0 && want != 0 && (uint64_t) want != id) {
        set_err(err, errlen, "config chain_id is %" PRId64 " but provider \"%s\" serves chain %"
                PRIu64, want, provider, id);
        rc = CHAIN_FATAL;
    }
    if (rc != 0) {
        chain_src_close(src);
        return rc;
    }
    src->chain_id = (int64_t) id;
    return CHAIN_OK;
}

void
chain_src_close(chain_src *src)
{
    rpc_client_free(src->rpc);
    src->rpc = NULL;
}

/* ---- the database side ------------------------------------------------- */

PGresult *
chain_exec(chain_src *src, int fence, const char *sql, int n, const char *const *vals, int *rc,
           char *err, size_t errlen)
{
    op_ctx *ctx = src->ctx;
    int r;
    PGresult *res = ctx->db_exec(ctx, fence, sql, n, vals, &r, err, errlen);

    if (res != NULL) {
        *rc = CHAIN_OK;
        return res;
    }
    *rc = ctx->should_stop(ctx) ? CHAIN_STOP : r == -2 ? CHAIN_FATAL : CHAIN_RPC;
    return NULL;
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
    r = chain_exec(src, 1, "SELECT dataset_id, output_index, relation FROM "
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
    r = chain_exec(src, 0, "SET LOCAL lock_timeout = '5s'", 0, NULL, &rc, err, errlen);
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
    r = chain_exec(src, 0, sql, 3, vals, &rc, err, errlen);
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
        r = chain_exec(src, 0, sql, 3, vals, &rc, err, errlen);
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

int
chain_emit_blocks(chain_src *src, const chain_tables *t, int64_t from, int64_t to, int retract,
                  char *err, size_t errlen)
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
             retract ? " || ':retracted'" : "",
             retract ? "'retracted', true" : "'tx_count', x.tx_count, 'log_count', x.log_count",
             t->blocks);
    for (int64_t lo = from; lo <= to; lo += EMIT_CHUNK) {
        int64_t hi = to - lo + 1 > EMIT_CHUNK ? lo + EMIT_CHUNK - 1 : to;
        PGresult *r;
        int rc;

        snprintf(a, sizeof a, "%" PRId64, lo);
        snprintf(b, sizeof b, "%" PRId64, hi);
        r = chain_exec(src, 1, sql, 4, vals, &rc, err, errlen);
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
