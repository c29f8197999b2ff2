/*
 * follower.h: the block_follower operator's state machine, shared by
 * follower.c (the states and the driver) and follower_reorg.c (the reorg:
 * walk back to the common ancestor, rewind, store the new branch).
 *
 * The states, one short function each, one switch (follower_step):
 *
 *   OPEN -> TABLES -> LOAD -> VERIFY -> POLL
 *   POLL -> ADVANCE   the node's block at the cursor is ours: new blocks
 *        -> FINALIZE  nothing new, but blocks became final
 *        -> BEHIND    the node's head is below the cursor
 *        -> REORG     the node's block at the cursor is not ours
 *        -> POLL      (idle: nothing to do until poll_interval passes)
 *   ADVANCE, FINALIZE, REORG -> POLL;  BEHIND -> POLL | HALT
 *   any state -> LOAD on a failure worth a retry (a write may or may not
 *   have committed: the durable state is read again), -> HALT when the
 *   chain or the stored rows cannot be trusted (fails the task for good).
 */
#ifndef TRACE_FOLLOWER_H
#define TRACE_FOLLOWER_H

#include "chain.h"

#include <stdint.h>

#define F_HALT 10       /* a state's result: halt, err holds why */

typedef enum follower_state {
    FS_OPEN = 0,        /* the RPC source (chain_src_open) */
    FS_TABLES,          /* the job's three chain tables */
    FS_LOAD,            /* the durable state, checked against the stored rows */
    FS_VERIFY,          /* on start: the recent stored blocks against the node */
    FS_POLL,            /* the head and the node's hash of the cursor block */
    FS_ADVANCE,         /* store the next batch */
    FS_FINALIZE,        /* emit blocks that became final */
    FS_BEHIND,          /* the head went below the cursor */
    FS_REORG            /* walk back, rewind, store the new branch */
} follower_state;

typedef struct follower {
    follower_state state;
    int            idle;            /* sleep poll_interval before the next step */
    int            mid_pass;        /* POLL chose a state to run: the pass goes on */
    int            verified;        /* FS_VERIFY passed once */
    chain_src      src;
    chain_tables   tables;
    chain_batch    batch;
    chain_prefetch prefetch;        /* the next batches, while one is written */
    json_t        *config;          /* the job's (borrowed) */
    const char    *dag, *job;
    int64_t        start, confirmations, max_depth, batch_size, poll_ms;
    int64_t        cursor, emitted, head, reorgs;
    uint8_t        cursor_hash[32];
    int            backwards_polls;
    int64_t        blocks_written, last_progress_ms, blocks_at_progress;
} follower;

/* Fills err and returns F_HALT. */
int follower_halt(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The writing transaction of every state that stores: opened (fenced) into
 * t, finished by follower_tx_finish: the batch, the events of blocks that
 * became final, the state saved with cursor/hash, COMMIT; then f's cursor
 * moves.  On any failure it rolls back (the caller re-reads the state). */
int follower_tx_begin(follower *f, chain_tables *t, char *err, size_t errlen);
int follower_tx_finish(follower *f, int64_t cursor, const uint8_t *hash, int64_t emitted,
                       char *err, size_t errlen);

/* FS_REORG (follower_reorg.c). */
int follower_reorg(follower *f, char *err, size_t errlen);

#endif
