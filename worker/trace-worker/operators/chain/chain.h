/*
 * chain.h: what block_follower and range_ingest share: reading blocks
 * and receipts through the RPC gateway, validating them, encoding them as
 * rows of the three chain tables (binary COPY), and the fenced writing
 * transaction.
 *
 * A batch is all or nothing: blocks are fetched in JSON-RPC requests of a
 * few blocks each, every block is validated (its number, its parent hash
 * against the block before it, its transactions against its receipts and
 * their logs) and encoded at once, and the JSON is freed; only a batch
 * that passed completely is ever sent to PostgreSQL.  Memory is bounded by
 * the batch, never by how far behind the chain the operator is.
 *
 * Rows: partition_key = the block number as text, producer_task_id = the
 * task id (see trace.chain_table_columns for the columns).
 */
#ifndef TRACE_OP_CHAIN_H
#define TRACE_OP_CHAIN_H

#include "evm.h"
#include "operator.h"
#include "rpc_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* Results of chain_fetch (and friends).  Negative: the call failed. */
enum {
    CHAIN_OK = 0,
    CHAIN_INVALID = 1,      /* the node's data failed validation: not stored */
    CHAIN_MISSING = 2,      /* a block is not (or no longer) on the node */
    CHAIN_PARENT = 3,       /* the first block does not extend the expected parent: a reorg */
    CHAIN_RPC = -1,         /* RPC or database failure worth retrying */
    CHAIN_FATAL = -2,       /* cannot succeed (config, privileges, gateway refusal) */
    CHAIN_STOP = -3         /* should_stop() */
};

/* What an operator keeps of each block it fetched or stored. */
typedef struct chain_block {
    int64_t number;
    uint8_t hash[32];
    uint8_t parent[32];
    int32_t tx_count;
    int32_t log_count;
} chain_block;

/* The encoded rows of a batch of consecutive blocks. */
typedef struct chain_batch {
    copybuf      blocks, txs, logs;
    chain_block *hdr;
    size_t       nhdr, caphdr;
    int64_t      ntx, nlog;
} chain_batch;

/* The three tables a task writes, from trace.chain_tables. */
typedef struct chain_tables {
    char blocks[200], txs[200], logs[200];
    char blocks_dataset[64];        /* what events are emitted to (output 0) */
} chain_tables;

/* One task's view of the chain. */
typedef struct chain_src {
    op_ctx     *ctx;
    rpc_client *rpc;
    char        provider[128];
    int64_t     chain_id;
    int         receipts_by_tx;     /* no eth_getBlockReceipts: one call per tx */
    int         rpc_blocks;         /* blocks per JSON-RPC request */
    rpc_doc     reply;              /* the last reply read in place (its tokens are reused) */
    atomic_int *cancel;             /* when set and non-zero: stop (a discarded prefetch) */
} chain_src;

/* Batches fetched in the background (prefetch.c). */
#define CHAIN_PREFETCH_DEPTH 2

typedef struct chain_prefetch_slot {
    chain_src   src;            /* a copy of the operator's, with its own RPC client */
    chain_batch batch;
    pthread_t   thread;
    int         running, opened;
    atomic_int  cancel;         /* set to stop it early: what it fetches is discarded */
    int64_t     from, to;
    int         rc;             /* chain_fetch's result */
    char        err[2048];
} chain_prefetch_slot;

typedef struct chain_prefetch {
    chain_prefetch_slot slot[CHAIN_PREFETCH_DEPTH];
    int                 first, n;       /* the oldest slot in flight, how many are */
} chain_prefetch;

/* Sets up src for the job's config: the rpc provider ("rpc", required) and
 * chain_id (optional; checked against eth_chainId).  Returns CHAIN_OK or a
 * negative result with err filled. */
int chain_src_open(chain_src *src, op_ctx *ctx, json_t *config, char *err, size_t errlen);
void chain_src_close(chain_src *src);

void chain_prefetch_init(chain_prefetch *p);

/* Keeps CHAIN_PREFETCH_DEPTH batches in flight, from `next` (or after the
 * last one in flight) up to block `last`, for a source set up by
 * chain_src_open.  The first new batch has `size` blocks and each one after
 * three times the one before, up to batch_size: after a small first batch
 * the pipeline fills without a long wait.  When a thread cannot start,
 * fewer are in flight and the caller simply fetches more itself. */
void chain_prefetch_ahead(chain_prefetch *p, const chain_src *src, int64_t next, int64_t last,
                          int64_t size, int64_t batch_size);

/* Waits for the oldest batch in flight.  When it starts at `from`, its
 * first block's parent is `parent` (when not NULL) and it ends no further
 * than max_to, swaps it into *b and returns 1 with *rc (and err) as
 * chain_fetch would have; else discards everything in flight and returns
 * 0 (the caller fetches itself). */
int chain_prefetch_take(chain_prefetch *p, int64_t from, int64_t max_to, const uint8_t *parent,
                        chain_batch *b, int *rc, char *err, size_t errlen);

/* Waits for everything in flight and discards it. */
void chain_prefetch_cancel(chain_prefetch *p);
void chain_prefetch_free(chain_prefetch *p);

/* Fetches, validates and encodes blocks [from, to] into b (which it resets
 * first).  parent, when not NULL, is the hash block `from` must have as
 * its parent (CHAIN_PARENT if not).  CHAIN_OK or another result. */
int chain_fetch(chain_src *src, int64_t from, int64_t to, const uint8_t *parent,
                chain_batch *b, char *err, size_t errlen);

/* The node's head block number. */
int chain_head(chain_src *src, int64_t *head, char *err, size_t errlen);

/* The node's hashes of blocks [from, to] (headers only).  present[i] is 0
 * when the node has no block from+i.  At most 256 blocks per call. */
int chain_node_hashes(chain_src *src, int64_t from, int64_t to, uint8_t (*hash)[32],
                      int *present, char *err, size_t errlen);

void chain_batch_init(chain_batch *b);
void chain_batch_free(chain_batch *b);

/* Reads the three tables of this task (trace.chain_tables: fenced).  In a
 * transaction this is the fence of that transaction.  CHAIN_OK, or
 * CHAIN_FATAL when the job does not have three chain-table outputs. */
int chain_tables_get(chain_src *src, chain_tables *t, char *err, size_t errlen);

/* Opens a writing transaction: BEGIN, a bound on lock waits (so that a
 * write stuck behind a lock fails and is retried rather than holding the
 * task row, and with it the worker's heartbeats, indefinitely), and
 * trace.chain_tables, the fence of the transaction, into t.  On failure
 * the transaction is rolled back. */
int chain_tx_begin(chain_src *src, chain_tables *t, char *err, size_t errlen);

/* Stored blocks [from, to] of src->chain_id: number, hash and parent hash
 * into out (ordered; *n gets how many; at most to - from + 1). */
int chain_stored(chain_src *src, const chain_tables *t, int64_t from, int64_t to,
                 chain_block *out, size_t *n, char *err, size_t errlen);

/* In the current transaction: deletes the rows of blocks [from, to] of
 * src->chain_id from the three tables. */
int chain_delete(chain_src *src, const chain_tables *t, int64_t from, int64_t to,
                 char *err, size_t errlen);

/* In the current transaction: COPYs the batch into the three tables. */
int chain_copy(chain_src *src, const chain_tables *t, chain_batch *b, char *err, size_t errlen);

/* In the current transaction: one event per stored block of [from, to],
 * read back from the blocks table; fails unless every block of the range
 * is there.  Final blocks: key "<n>:<hash>", payload {block_number,
 * block_hash, chain_id, tx_count, log_count}.  Retractions (final blocks a
 * reorg orphaned): key "<n>:<hash>:retracted", payload {block_number,
 * block_hash, chain_id, retracted: true}. */
int chain_emit_final(chain_src *src, const chain_tables *t, int64_t from, int64_t to,
                     char *err, size_t errlen);
int chain_emit_retractions(chain_src *src, const chain_tables *t, int64_t from, int64_t to,
                           char *err, size_t errlen);

/* Runs a statement (operator.h db_exec; fenced: db_exec_fenced, the task's
 * fence as $1..$3) and maps its failure to CHAIN_RPC / CHAIN_FATAL /
 * CHAIN_STOP.  Returns the result or NULL. */
PGresult *chain_exec(chain_src *src, const char *sql, int n, const char *const *vals, int *rc,
                     char *err, size_t errlen);
PGresult *chain_exec_fenced(chain_src *src, const char *sql, int n, const char *const *vals,
                            int *rc, char *err, size_t errlen);

/* Logs a formatted line about the task. */
void chain_log(chain_src *src, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads an optional integer config key in [min, max] into *out (left alone
 * when absent).  0 or -1 with err filled. */
int chain_config_int(json_t *config, const char *key, int64_t min, int64_t max,
                     int64_t *out, char *err, size_t errlen);

/* stop() for rpc_client_batch and sleeps: the context's should_stop. */
int chain_stop_cb(void *arg);

/* stop() for a source's own RPC calls (arg: the chain_src): the task's
 * should_stop, or the source's cancel flag. */
int chain_src_stopping(void *arg);

#endif
