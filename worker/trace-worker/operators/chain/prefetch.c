/*
 * prefetch.c: fetching the next batches of blocks while the
 * current one is written (see chain.h).
 *
 * Fetching and encoding a batch is the worker's CPU and the gateway's;
 * writing it is PostgreSQL's.  Done one after the other, each waits for
 * the other; with batches fetched ahead they overlap.  Up to
 * CHAIN_PREFETCH_DEPTH batches are in flight, each on its own thread with
 * its own connection to the gateway (an HTTP handle belongs to one
 * thread), so the worker holds at most that many batches plus the one
 * being written: memory stays bounded however far behind the chain it is.
 *
 * A thread touches nothing of the operator's but the read-only task
 * context (should_stop and logging are thread-safe).  Batches are fetched
 * without an expected parent, since the batch before may still be in
 * flight; chain_prefetch_take checks the link instead.  A prefetched batch
 * is used only when it starts where the operator's next batch starts,
 * links to the block the operator holds, and ends within the range the
 * operator would fetch; otherwise everything prefetched is discarded and
 * the operator fetches itself (and sees the reorg, if that was one).  So
 * prefetching changes when blocks are read, never which blocks are
 * written.
 */
#define _GNU_SOURCE
#include "chain.h"

#include "log.h"
#include "util.h"

#include <inttypes.h>
#include <string.h>

void
chain_prefetch_init(chain_prefetch *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < CHAIN_PREFETCH_DEPTH; i++)
        chain_batch_init(&p->slot[i].batch);
}

/* A slot's thread: one chain_fetch. */
static void *
slot_main(void *arg)
{
    chain_prefetch_slot *s = arg;

    s->rc = chain_fetch(&s->src, s->from, s->to, NULL, &s->batch, s->err, sizeof s->err);
    return NULL;
}

/* The slot's own source: src's settings with its own RPC client. */
static int
slot_open(chain_prefetch_slot *s, const chain_src *src)
{
    char err[256];

    if (s->opened)
        return 0;
    s->src = *src;
    memset(&s->src.reply, 0, sizeof s->src.reply);
    s->src.rpc = rpc_client_new(src->ctx->settings->rpc_gateway, src->provider, err, sizeof err);
    if (s->src.rpc == NULL) {
        chain_log(&s->src, LOG_WARN, "cannot fetch ahead (%s): fetching one batch at a time", err);
        return -1;
    }
    s->opened = 1;
    return 0;
}

/* Starts slot s on [from, to].  0 or -1. */
static int
slot_start(chain_prefetch_slot *s, const chain_src *src, int64_t from, int64_t to)
{
    if (slot_open(s, src) < 0)
        return -1;
    s->src.receipts_by_tx = src->receipts_by_tx;
    atomic_store(&s->cancel, 0);
    s->src.cancel = &s->cancel;
    s->from = from;
    s->to = to;
    s->err[0] = '\0';
    if (pthread_create(&s->thread, NULL, slot_main, s) != 0)
        return -1;
    s->running = 1;
    return 0;
}

static void
slot_join(chain_prefetch_slot *s)
{
    if (s->running) {
        pthread_join(s->thread, NULL);
        s->running = 0;
    }
}

void
chain_prefetch_ahead(chain_prefetch *p, const chain_src *src, int64_t next, int64_t last,
                     int64_t size, int64_t batch_size)
{
    if (p->n > 0) {         /* continue after what is already in flight */
        chain_prefetch_slot *l = &p->slot[(p->first + p->n - 1) % CHAIN_PREFETCH_DEPTH];

        next = l->to + 1;
        size = (l->to - l->from + 1) * 3;
    }
    while (p->n < CHAIN_PREFETCH_DEPTH && next <= last) {
        chain_prefetch_slot *s = &p->slot[(p->first + p->n) % CHAIN_PREFETCH_DEPTH];
        int64_t k = size < 1 ? 1 : size > batch_size ? batch_size : size;
        int64_t to = last - next + 1 > k ? next + k - 1 : last;

        if (slot_start(s, src, next, to) < 0)
            return;
        p->n++;
        next = to + 1;
        size = k * 3;
    }
}

int
chain_prefetch_take(chain_prefetch *p, int64_t from, int64_t max_to, const uint8_t *parent,
                    chain_batch *b, int *rc, char *err, size_t errlen)
{
    chain_prefetch_slot *s = &p->slot[p->first];
    chain_batch tmp;
    int usable;

    if (p->n == 0)
        return 0;
    slot_join(s);
    p->first = (p->first + 1) % CHAIN_PREFETCH_DEPTH;
    p->n--;
    usable = s->from == from && s->to <= max_to && s->rc != CHAIN_STOP &&
             (s->rc != CHAIN_OK || parent == NULL ||
              memcmp(s->batch.hdr[0].parent, parent, 32) == 0);
    if (!usable || s->rc != CHAIN_OK) {
        chain_prefetch_cancel(p);       /* what follows it is stale too */
        if (!usable) {
            chain_log(&s->src, LOG_DEBUG, "discarded blocks %" PRId64 "..%" PRId64 " fetched "
                      "ahead: %s", s->from, s->to, s->rc == CHAIN_STOP ? "stopped"
                      : s->from != from ? "the next batch starts elsewhere"
                      : s->to > max_to ? "past the head" : "they do not link to the stored chain");
            return 0;
        }
    }
    tmp = *b;               /* swap: the caller's old buffers serve a later fetch */
    *b = s->batch;
    s->batch = tmp;
    *rc = s->rc;
    if (s->rc != CHAIN_OK)
        copy_str(err, errlen, s->err);
    return 1;
}

void
chain_prefetch_cancel(chain_prefetch *p)
{
    for (int i = 0; i < CHAIN_PREFETCH_DEPTH; i++)
        atomic_store(&p->slot[i].cancel, 1);    /* requests in flight end now */
    for (int i = 0; i < CHAIN_PREFETCH_DEPTH; i++)
        slot_join(&p->slot[i]);
    p->first = 0;
    p->n = 0;
}

void
chain_prefetch_free(chain_prefetch *p)
{
    chain_prefetch_cancel(p);
    for (int i = 0; i < CHAIN_PREFETCH_DEPTH; i++) {
        chain_batch_free(&p->slot[i].batch);
        if (p->slot[i].opened)
            chain_src_close(&p->slot[i].src);
    }
    memset(p, 0, sizeof *p);
}
