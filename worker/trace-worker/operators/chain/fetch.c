/*
 * fetch.c: the RPC side of the chain operators (see chain.h):
 * the source's provider and chain id, the head, block hashes, and blocks
 * with their receipts, validated and encoded as binary COPY rows.
 *
 * Blocks and receipts are the bulk of the work (~600 kB of JSON per
 * mainnet block), so they are read in place from the reply (jdoc.h): each
 * object's fields are found in one pass over its members, hex is decoded
 * straight into the COPY buffer, and nothing is allocated per value.
 *
 * Validation, per block, before anything is encoded for good: the number
 * asked for; hashes of the right size; the parent hash against the block
 * before (or the expected parent); every transaction is an object of this
 * block at its index; one receipt per transaction, for that transaction in
 * this block; log indexes contiguous from 0 across the block, each log of
 * its transaction and block, never `removed`; at most four topics; no key
 * that is read given twice.  A failure names the block and what was wrong.
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

#define TX_RECEIPTS_PER_REQUEST 500

/* A value in one of the reply documents. */
typedef struct jref {
    const jdoc *d;
    int         i;
} jref;

/* The fields read from each object, in one pass (jdoc_fields). */
enum { B_NUMBER, B_HASH, B_PARENT, B_TIMESTAMP, B_TXS, B_MINER, B_GAS_USED, B_GAS_LIMIT,
       B_BASE_FEE, B_NFIELDS };
static const char *const block_keys[B_NFIELDS] = {
    "number", "hash", "parentHash", "timestamp", "transactions", "miner", "gasUsed",
    "gasLimit", "baseFeePerGas"};

enum { T_HASH, T_BLOCK_HASH, T_BLOCK_NUMBER, T_INDEX, T_FROM, T_TO, T_VALUE, T_GAS,
       T_GAS_PRICE, T_NONCE, T_INPUT, T_NFIELDS };
static const char *const tx_keys[T_NFIELDS] = {
    "hash", "blockHash", "blockNumber", "transactionIndex", "from", "to", "value", "gas",
    "gasPrice", "nonce", "input"};

enum { R_TX_HASH, R_BLOCK_HASH, R_INDEX, R_LOGS, R_STATUS, R_EFFECTIVE_GAS_PRICE, R_NFIELDS };
static const char *const receipt_keys[R_NFIELDS] = {
    "transactionHash", "blockHash", "transactionIndex", "logs", "status", "effectiveGasPrice"};

enum { L_LOG_INDEX, L_TX_INDEX, L_TX_HASH, L_BLOCK_HASH, L_BLOCK_NUMBER, L_REMOVED, L_TOPICS,
       L_DATA, L_ADDRESS, L_NFIELDS };
static const char *const log_keys[L_NFIELDS] = {
    "logIndex", "transactionIndex", "transactionHash", "blockHash", "blockNumber", "removed",
    "topics", "data", "address"};

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

/* ---- reading fields in place -------------------------------------------- */

/* Absent or JSON null: what "optional" means for a field. */
static int
absent(const jdoc *d, int i)
{
    return i < 0 || jdoc_type(d, i) == JT_NULL;
}

static int
get_u64(const jdoc *d, int i, uint64_t *v)
{
    size_t len;
    const char *s = jdoc_str(d, i, &len);

    return s == NULL ? -1 : hex_to_u64_n(s, len, v);
}

static int
get_fixed(const jdoc *d, int i, uint8_t *out, size_t n)
{
    size_t len;
    const char *s = jdoc_str(d, i, &len);

    return s == NULL ? -1 : hex_to_fixed_n(s, len, out, n);
}

/* An optional quantity that, when present, must equal want. */
static int
opt_u64_is(const jdoc *d, int i, uint64_t want)
{
    uint64_t got;

    return absent(d, i) || (get_u64(d, i, &got) == 0 && got == want);
}

/* An optional 32-byte value that, when present, must equal want. */
static int
opt_hash_is(const jdoc *d, int i, const uint8_t *want)
{
    uint8_t got[32];

    return absent(d, i) || (get_fixed(d, i, got, 32) == 0 && memcmp(got, want, 32) == 0);
}

/* A field's text for an error message ("(none)" when absent). */
static const char *
shown(const jdoc *d, int i, char *buf, size_t n)
{
    if (i < 0)
        return "(none)";
    if (jdoc_type(d, i) == JT_STRING)
        jdoc_str_copy(d, i, buf, n);
    else {
        size_t len;
        const char *raw = jdoc_raw(d, i, &len);

        snprintf(buf, n, "%.*s", (int) (len < 40 ? len : 40), raw);
    }
    return buf;
}

/* A fixed-size byte string (hash, address) as bytea; NULL when absent and
 * nullable.  0 or -1. */
static int
put_fixed(copybuf *cb, const jdoc *d, int i, size_t n, int nullable)
{
    uint8_t buf[32];

    if (absent(d, i)) {
        if (!nullable)
            return -1;
        cb_null(cb);
        return 0;
    }
    if (n > sizeof buf || get_fixed(d, i, buf, n) < 0)
        return -1;
    cb_bytes(cb, buf, n);
    return 0;
}

/* A quantity as numeric, or NULL when absent and nullable.  0 or -1. */
static int
put_numeric(copybuf *cb, const jdoc *d, int i, int nullable, const char *what)
{
    size_t len;
    const char *s;

    if (absent(d, i)) {
        if (!nullable)
            return -1;
        cb_null(cb);
        return 0;
    }
    s = jdoc_str(d, i, &len);
    if (s == NULL)
        return -1;
    cb_numeric_hex_n(cb, s, len, what);
    return cb->failed ? -1 : 0;
}

/* Hex data as bytea, or NULL when absent.  0 or -1. */
static int
put_data(copybuf *cb, const jdoc *d, int i, const char *what)
{
    size_t len;
    const char *s;

    if (absent(d, i)) {
        cb_null(cb);
        return 0;
    }
    s = jdoc_str(d, i, &len);
    if (s == NULL)
        return -1;
    cb_bytea_hex_n(cb, s, len, what);
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

/* ---- encoding ---------------------------------------------------------- */

/* What every row of a block repeats. */
typedef struct block_ctx {
    chain_src *src;
    chain_batch *b;
    int64_t    n, task_id;
    uint64_t   ts;
    uint8_t    hash[32];
    char       pk[24];
    size_t     pklen;
} block_ctx;

/* The columns every row starts with (partition_key .. block_number). */
static void
row_start(const block_ctx *bc, copybuf *cb, int nfields)
{
    cb_tuple(cb, nfields);
    cb_bytes(cb, bc->pk, bc->pklen);
    cb_int8(cb, bc->task_id);
    cb_int8(cb, bc->src->chain_id);
    cb_int8(cb, bc->n);
}

/* Encodes one log (the log_index-th of the block, of transaction tx_index). */
static int
encode_log(const block_ctx *bc, const jdoc *d, int lg, int32_t tx_index, const uint8_t *txhash,
           int32_t log_index, char *err, size_t errlen)
{
    copybuf *cb = &bc->b->logs;
    int64_t n = bc->n;
    int f[L_NFIELDS], topic;
    uint32_t nt;
    char shown_buf[80];

    if (jdoc_fields(d, lg, log_keys, L_NFIELDS, f) < 0)
        return invalid(err, errlen, "block %" PRId64 ": a log of transaction %d is not an object "
                       "(or repeats a key)", n, tx_index);
    if (f[L_LOG_INDEX] < 0 || !opt_u64_is(d, f[L_LOG_INDEX], (uint64_t) log_index))
        return invalid(err, errlen, "block %" PRId64 ": transaction %d has a log with logIndex %s "
                       "where %d was expected (log indexes must run from 0 across the block)",
                       n, tx_index, shown(d, f[L_LOG_INDEX], shown_buf, sizeof shown_buf),
                       log_index);
    if (!opt_u64_is(d, f[L_TX_INDEX], (uint64_t) tx_index) ||
        !opt_hash_is(d, f[L_TX_HASH], txhash) || !opt_hash_is(d, f[L_BLOCK_HASH], bc->hash) ||
        !opt_u64_is(d, f[L_BLOCK_NUMBER], (uint64_t) n))
        return invalid(err, errlen, "block %" PRId64 ": log %d does not belong to transaction %d "
                       "of this block (its transaction or block fields differ)",
                       n, log_index, tx_index);
    if (jdoc_type(d, f[L_REMOVED]) == JT_TRUE)
        return invalid(err, errlen, "block %" PRId64 ": log %d is marked removed", n, log_index);
    nt = jdoc_count(d, f[L_TOPICS]);
    if (jdoc_type(d, f[L_TOPICS]) != JT_ARRAY || nt > 4)
        return invalid(err, errlen, "block %" PRId64 ": log %d has %s", n, log_index,
                       jdoc_type(d, f[L_TOPICS]) == JT_ARRAY ? "more than 4 topics"
                                                             : "no topics array");
    if (jdoc_type(d, f[L_DATA]) != JT_STRING)
        return invalid(err, errlen, "block %" PRId64 ": log %d has no hex data", n, log_index);

    row_start(bc, cb, 14);
    cb_timestamptz_unix(cb, (int64_t) bc->ts);
    cb_int4(cb, tx_index);
    cb_int4(cb, log_index);
    cb_bytes(cb, txhash, 32);
    if (put_fixed(cb, d, f[L_ADDRESS], 20, 0) < 0)
        return invalid(err, errlen, "block %" PRId64 ": log %d has no 20-byte address", n,
                       log_index);
    topic = jdoc_first(d, f[L_TOPICS]);
    for (uint32_t k = 0; k < 4; k++) {
        if (k >= nt) {
            cb_null(cb);
            continue;
        }
        if (jdoc_type(d, topic) != JT_STRING || put_fixed(cb, d, topic, 32, 0) < 0)
            return invalid(err, errlen, "block %" PRId64 ": log %d topic %u is not 32 bytes",
                           n, log_index, k);
        topic = jdoc_next(d, topic);
    }
    if (put_data(cb, d, f[L_DATA], "log data") < 0)
        return invalid(err, errlen, "block %" PRId64 ": log %d has no hex data", n, log_index);
    bc->b->nlog++;
    return CHAIN_OK;
}

/* Validates transaction i (tx) against its receipt r and encodes it and
 * its logs; *log_index is the block's next log index. */
static int
encode_tx(const block_ctx *bc, const jdoc *td, int tx, jref r, size_t i, int32_t *log_index,
          char *err, size_t errlen)
{
    copybuf *cb = &bc->b->txs;
    int64_t n = bc->n;
    int t[T_NFIELDS], rf[R_NFIELDS], lg;
    uint8_t txhash[32];
    uint64_t status;
    int rc;

    if (jdoc_fields(td, tx, tx_keys, T_NFIELDS, t) < 0)
        return invalid(err, errlen, "block %" PRId64 ": transaction %zu is not an object (the "
                       "node did not return full transactions) or repeats a key", n, i);
    if (get_fixed(td, t[T_HASH], txhash, 32) < 0)
        return invalid(err, errlen, "block %" PRId64 ": transaction %zu has no 32-byte hash",
                       n, i);
    if (!opt_hash_is(td, t[T_BLOCK_HASH], bc->hash) ||
        !opt_u64_is(td, t[T_BLOCK_NUMBER], (uint64_t) n) || !opt_u64_is(td, t[T_INDEX], i))
        return invalid(err, errlen, "block %" PRId64 ": transaction %zu does not say it is "
                       "transaction %zu of this block", n, i, i);
    if (jdoc_fields(r.d, r.i, receipt_keys, R_NFIELDS, rf) < 0 || rf[R_TX_HASH] < 0 ||
        !opt_hash_is(r.d, rf[R_TX_HASH], txhash) || !opt_hash_is(r.d, rf[R_BLOCK_HASH], bc->hash) ||
        !opt_u64_is(r.d, rf[R_INDEX], i))
        return invalid(err, errlen, "block %" PRId64 ": receipt %zu is not the receipt of "
                       "transaction %zu of this block", n, i, i);
    if (jdoc_type(r.d, rf[R_LOGS]) != JT_ARRAY)
        return invalid(err, errlen, "block %" PRId64 ": receipt %zu has no logs array", n, i);

    row_start(bc, cb, 15);
    cb_timestamptz_unix(cb, (int64_t) bc->ts);
    cb_int4(cb, (int32_t) i);
    cb_bytes(cb, txhash, 32);
    if (put_fixed(cb, td, t[T_FROM], 20, 0) < 0 || put_fixed(cb, td, t[T_TO], 20, 1) < 0)
        return invalid(err, errlen, "block %" PRId64 ": transaction %zu has a bad from or to "
                       "address", n, i);
    if (put_numeric(cb, td, t[T_VALUE], 0, "value") < 0 ||
        put_numeric(cb, td, t[T_GAS], 1, "gas") < 0)
        return invalid(err, errlen, "block %" PRId64 ": transaction %zu has a bad value or gas",
                       n, i);
    if (!absent(td, t[T_GAS_PRICE]))
        rc = put_numeric(cb, td, t[T_GAS_PRICE], 1, "gasPrice");
    else
        rc = put_numeric(cb, r.d, rf[R_EFFECTIVE_GAS_PRICE], 1, "effectiveGasPrice");
    if (rc < 0 || put_numeric(cb, td, t[T_NONCE], 1, "nonce") < 0)
        return invalid(err, errlen, "block %" PRId64 ": transaction %zu has a bad gas price "
                       "or nonce", n, i);
    if (put_data(cb, td, t[T_INPUT], "input") < 0)
        return invalid(err, errlen, "block %" PRId64 ": transaction %zu has bad input data", n, i);
    if (absent(r.d, rf[R_STATUS]))
        cb_null(cb);
    else if (get_u64(r.d, rf[R_STATUS], &status) < 0 || status > 1) {
        char buf[80];

        return invalid(err, errlen, "block %" PRId64 ": receipt %zu has status %s", n, i,
                       shown(r.d, rf[R_STATUS], buf, sizeof buf));
    } else
        cb_int2(cb, (int16_t) status);
    bc->b->ntx++;

    lg = jdoc_first(r.d, rf[R_LOGS]);
    for (uint32_t j = 0; j < jdoc_count(r.d, rf[R_LOGS]); j++, lg = jdoc_next(r.d, lg)) {
        rc = encode_log(bc, r.d, lg, (int32_t) i, txhash, *log_index, err, errlen);
        if (rc != CHAIN_OK)
            return rc;
        (*log_index)++;
    }
    return CHAIN_OK;
}

/* Validates block n (blk: with full transactions) against its receipts
 * (rcpts[0..nrcpt)) and the expected parent, and encodes its rows.
 * first: it is the first block of the fetch (a parent mismatch there is a
 * reorg, not bad data). */
static int
encode_block(chain_src *src, chain_batch *b, int64_t n, const jdoc *d, int blk,
             const jref *rcpts, size_t nrcpt, const uint8_t *parent, int first, char *err,
             size_t errlen)
{
    int f[B_NFIELDS], tx;
    block_ctx bc;
    chain_block h;
    uint64_t num;
    size_t ntx;
    int32_t log_index = 0;
    char buf[80];
    int rc;

    memset(&h, 0, sizeof h);
    memset(&bc, 0, sizeof bc);
    bc.src = src;
    bc.b = b;
    bc.n = n;
    bc.task_id = src->ctx->task_id;
    if (jdoc_fields(d, blk, block_keys, B_NFIELDS, f) < 0)
        return invalid(err, errlen, "block %" PRId64 ": not a JSON object (or a key given twice)",
                       n);
    if (get_u64(d, f[B_NUMBER], &num) < 0 || num != (uint64_t) n)
        return invalid(err, errlen, "asked for block %" PRId64 ", the node answered block %s", n,
                       shown(d, f[B_NUMBER], buf, sizeof buf));
    if (get_fixed(d, f[B_HASH], h.hash, 32) < 0 || get_fixed(d, f[B_PARENT], h.parent, 32) < 0)
        return invalid(err, errlen, "block %" PRId64 ": hash or parentHash is not 32 bytes", n);
    if (get_u64(d, f[B_TIMESTAMP], &bc.ts) < 0 || bc.ts > (uint64_t) INT64_MAX / 2000000)
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
    if (jdoc_type(d, f[B_TXS]) != JT_ARRAY)
        return invalid(err, errlen, "block %" PRId64 ": no transactions list", n);
    ntx = jdoc_count(d, f[B_TXS]);
    if (nrcpt != ntx)
        return invalid(err, errlen, "block %" PRId64 " lists %zu transactions but %zu receipts "
                       "came back", n, ntx, nrcpt);
    memcpy(bc.hash, h.hash, 32);
    bc.pklen = (size_t) snprintf(bc.pk, sizeof bc.pk, "%" PRId64, n);

    tx = jdoc_first(d, f[B_TXS]);
    for (size_t i = 0; i < ntx; i++, tx = jdoc_next(d, tx)) {
        rc = encode_tx(&bc, d, tx, rcpts[i], i, &log_index, err, errlen);
        if (rc != CHAIN_OK)
            return rc;
    }

    row_start(&bc, &b->blocks, 13);
    cb_bytes(&b->blocks, h.hash, 32);
    cb_bytes(&b->blocks, h.parent, 32);
    cb_timestamptz_unix(&b->blocks, (int64_t) bc.ts);
    if (put_fixed(&b->blocks, d, f[B_MINER], 20, 1) < 0 ||
        put_numeric(&b->blocks, d, f[B_GAS_USED], 1, "gasUsed") < 0 ||
        put_numeric(&b->blocks, d, f[B_GAS_LIMIT], 1, "gasLimit") < 0 ||
        put_numeric(&b->blocks, d, f[B_BASE_FEE], 1, "baseFeePerGas") < 0)
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

/* ---- fetching ---------------------------------------------------------- */

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

/* Receipts fetched one transaction at a time: the replies they live in. */
typedef struct tx_receipts {
    rpc_doc *docs;
    size_t   ndocs;
    jref    *refs;
} tx_receipts;

static void
tx_receipts_free(tx_receipts *t)
{
    for (size_t i = 0; i < t->ndocs; i++)
        rpc_doc_free(&t->docs[i]);
    free(t->docs);
    free(t->refs);
    memset(t, 0, sizeof *t);
}

/* The receipts of a block's transactions, one eth_getTransactionReceipt
 * each (for nodes without eth_getBlockReceipts), into out. */
static int
fetch_tx_receipts(chain_src *src, int64_t n, const jdoc *d, int blk, tx_receipts *out,
                  char *err, size_t errlen)
{
    int txs = jdoc_get(d, blk, "transactions");
    size_t ntx = jdoc_count(d, txs), ndocs = (ntx + TX_RECEIPTS_PER_REQUEST - 1) /
                                             TX_RECEIPTS_PER_REQUEST;
    rpc_call *calls = calloc(TX_RECEIPTS_PER_REQUEST, sizeof *calls);
    int tx = jdoc_first(d, txs), rc = CHAIN_OK;

    memset(out, 0, sizeof *out);
    out->docs = calloc(ndocs ? ndocs : 1, sizeof *out->docs);
    out->refs = calloc(ntx ? ntx : 1, sizeof *out->refs);
    if (calls == NULL || out->docs == NULL || out->refs == NULL) {
        free(calls);
        tx_receipts_free(out);
        return invalid(err, errlen, "out of memory");
    }
    for (size_t a = 0; a < ntx && rc == CHAIN_OK; a += TX_RECEIPTS_PER_REQUEST) {
        size_t k = ntx - a < TX_RECEIPTS_PER_REQUEST ? ntx - a : TX_RECEIPTS_PER_REQUEST;
        rpc_doc *reply = &out->docs[out->ndocs++];

        for (size_t i = 0; i < k; i++, tx = jdoc_next(d, tx)) {
            size_t len = 0;
            const char *h = jdoc_str(d, jdoc_get(d, tx, "hash"), &len);

            calls[i].method = "eth_getTransactionReceipt";
            calls[i].params = json_pack("[s%]", h ? h : "", h ? len : 0);
        }
        rc = rpc_client_batch_doc(src->rpc, calls, k, reply, chain_src_stopping, src, err,
                                  errlen);
        for (size_t i = 0; i < k && rc == CHAIN_OK; i++) {
            if (calls[i].has_error)
                rc = call_failed(&calls[i], "eth_getTransactionReceipt of block", n, err, errlen);
            else if (jdoc_type(&reply->doc, calls[i].result_tok) == JT_NULL) {
                set_err(err, errlen, "block %" PRId64 ": the receipt of transaction %zu is not on "
                        "the node", n, a + i);
                rc = CHAIN_MISSING;
            } else
                out->refs[a + i] = (jref) {&reply->doc, calls[i].result_tok};
        }
        rpc_client_calls_clear(calls, k);
    }
    free(calls);
    if (rc != CHAIN_OK)
        tx_receipts_free(out);
    return rc;
}

/* The receipts of block n for encode_block: from eth_getBlockReceipts
 * (the array arr of d), else fetched one transaction at a time into own. */
static int
block_receipts(chain_src *src, int64_t n, const jdoc *d, int blk, const jdoc *rd, int arr,
               tx_receipts *own, jref **refs, size_t *nref, char *err, size_t errlen)
{
    int r;
    int rc;

    if (arr < 0) {
        rc = fetch_tx_receipts(src, n, d, blk, own, err, errlen);
        if (rc != CHAIN_OK)
            return rc;
        *refs = own->refs;
        *nref = jdoc_count(d, jdoc_get(d, blk, "transactions"));
        return CHAIN_OK;
    }
    if (jdoc_type(rd, arr) != JT_ARRAY)
        return invalid(err, errlen, "block %" PRId64 ": eth_getBlockReceipts did not answer a "
                       "list", n);
    *nref = jdoc_count(rd, arr);
    own->refs = calloc(*nref ? *nref : 1, sizeof *own->refs);
    if (own->refs == NULL)
        return invalid(err, errlen, "out of memory");
    r = jdoc_first(rd, arr);
    for (size_t i = 0; i < *nref; i++, r = jdoc_next(rd, r))
        own->refs[i] = (jref) {rd, r};
    *refs = own->refs;
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
    const jdoc *d = &src->reply.doc;
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
    rc = rpc_client_batch_doc(src->rpc, calls, per * k, &src->reply, chain_src_stopping, src,
                              err, errlen);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < k && rc == CHAIN_OK; i++) {
        int64_t n = a + (int64_t) i;
        rpc_call *bcall = &calls[per * i];
        int receipts = -1;
        tx_receipts own;
        jref *refs = NULL;
        size_t nref = 0;

        memset(&own, 0, sizeof own);
        if (bcall->has_error) {
            rc = call_failed(bcall, "eth_getBlockByNumber", n, err, errlen);
            break;
        }
        if (jdoc_type(d, bcall->result_tok) == JT_NULL) {
            set_err(err, errlen, "block %" PRId64 " is not on the node", n);
            rc = CHAIN_MISSING;
            break;
        }
        if (per == 2) {
            rpc_call *rcall = &calls[2 * i + 1];

            if (rcall->has_error && method_missing(rcall)) {
                chain_log(src, LOG_INFO, "eth_getBlockReceipts is not available (%s): fetching "
                          "receipts one transaction at a time", rcall->message);
                src->receipts_by_tx = 1;
            } else if (rcall->has_error) {
                rc = call_failed(rcall, "eth_getBlockReceipts", n, err, errlen);
                break;
            } else if (jdoc_type(d, rcall->result_tok) == JT_NULL) {
                set_err(err, errlen, "the receipts of block %" PRId64 " are not on the node", n);
                rc = CHAIN_MISSING;
                break;
            } else
                receipts = rcall->result_tok;
        }
        rc = block_receipts(src, n, d, bcall->result_tok, d, receipts, &own, &refs, &nref, err,
                            errlen);
        if (rc == CHAIN_OK)
            rc = encode_block(src, b, n, d, bcall->result_tok, refs, nref, *prev,
                              n == first_block, err, errlen);
        tx_receipts_free(&own);
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

        if (chain_src_stopping(src))
            return CHAIN_STOP;
        rc = fetch_chunk(src, a, k, from, b, &prev, prev_buf, err, errlen);
        a += (int64_t) k;
    }
    rpc_doc_release_text(&src->reply);
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
    rc = rpc_client_batch(src->rpc, &c, 1, chain_src_stopping, src, err, errlen);
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
    rc = rpc_client_batch_doc(src->rpc, calls, k, &src->reply, chain_src_stopping, src, err,
                              errlen);
    for (size_t i = 0; i < k && rc == 0; i++) {
        const jdoc *d = &src->reply.doc;
        int blk = calls[i].result_tok;

        present[i] = 0;
        if (calls[i].has_error)
            rc = call_failed(&calls[i], "eth_getBlockByNumber", from + (int64_t) i, err, errlen);
        else if (jdoc_type(d, blk) != JT_NULL) {
            uint64_t num;

            if (get_u64(d, jdoc_get(d, blk, "number"), &num) < 0 ||
                num != (uint64_t) (from + (int64_t) i) ||
                get_fixed(d, jdoc_get(d, blk, "hash"), hash[i], 32) < 0) {
                set_err(err, errlen, "eth_getBlockByNumber(%" PRId64 ") answered a malformed "
                        "block", from + (int64_t) i);
                rc = CHAIN_RPC;
            } else
                present[i] = 1;
        }
    }
    rpc_client_calls_clear(calls, k);
    rpc_doc_release_text(&src->reply);
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
    rpc_doc_free(&src->reply);
}
