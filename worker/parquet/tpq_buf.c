/*
 * tpq_buf.c: errors, the caller's allocator, the growable byte buffer and
 * the metadata arena of the Parquet module.
 *
 * Every allocation goes through a tpq_alloc, so the same code runs on
 * malloc in trace-worker and on palloc in a backend.  Buffers never grow
 * past SIZE_MAX / 2 (an overflowing size is refused, not wrapped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpq_int.h"

void
tpq_seterr(tpq_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

static void *
default_alloc(void *ctx, size_t n)
{
    (void) ctx;
    return malloc(n ? n : 1);
}

static void
default_free(void *ctx, void *p)
{
    (void) ctx;
    free(p);
}

static const tpq_alloc default_allocator = {default_alloc, default_free, NULL};

tpq_alloc
tpq_alloc_or_default(const tpq_alloc *a)
{
    return a ? *a : default_allocator;
}

void *
tpq_malloc(const tpq_alloc *a, size_t n)
{
    if (a == NULL)
        a = &default_allocator;
    return a->alloc(a->ctx, n);
}

void
tpq_free(const tpq_alloc *a, void *p)
{
    if (p == NULL)
        return;
    if (a == NULL)
        a = &default_allocator;
    a->free(a->ctx, p);
}

void
tpq_buf_init(tpq_buf *b, const tpq_alloc *a)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->alloc = a;
}

void
tpq_buf_free(tpq_buf *b)
{
    tpq_free(b->alloc, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Grows capacity geometrically (the allocator has no realloc: copy). */
int
tpq_buf_reserve(tpq_buf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *d;

    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    d = tpq_malloc(b->alloc, cap);
    if (d == NULL)
        return -1;
    if (b->len)
        memcpy(d, b->data, b->len);
    tpq_free(b->alloc, b->data);
    b->data = d;
    b->cap = cap;
    return 0;
}

int
tpq_buf_put(tpq_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (tpq_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int
tpq_buf_put_u8(tpq_buf *b, uint8_t v)
{
    if (b->len == b->cap && tpq_buf_reserve(b, 1) < 0)
        return -1;
    b->data[b->len++] = v;
    return 0;
}

int
tpq_buf_put_le32(tpq_buf *b, uint32_t v)
{
    if (tpq_buf_reserve(b, 4) < 0)
        return -1;
    tpq_wr_le32(b->data + b->len, v);
    b->len += 4;
    return 0;
}

int
tpq_buf_put_le64(tpq_buf *b, uint64_t v)
{
    if (tpq_buf_reserve(b, 8) < 0)
        return -1;
    tpq_wr_le32(b->data + b->len, (uint32_t) v);
    tpq_wr_le32(b->data + b->len + 4, (uint32_t) (v >> 32));
    b->len += 8;
    return 0;
}

/* ULEB128, as Thrift compact and the RLE hybrid's run headers use. */
int
tpq_buf_put_varint(tpq_buf *b, uint64_t v)
{
    if (tpq_buf_reserve(b, 10) < 0)
        return -1;
    while (v >= 0x80)
    {
        b->data[b->len++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (uint8_t) v;
    return 0;
}

/* ------------------------------------------------------------- arena */

#define ARENA_BLOCK 16384

typedef struct arena_block
{
    struct arena_block *next;
} arena_block;

void
arena_init(tpq_arena *a, const tpq_alloc *alloc, size_t cap)
{
    memset(a, 0, sizeof(*a));
    a->alloc = alloc;
    a->cap = cap;
}

/* Bump allocation in 16 kB blocks (large requests get their own block);
 * refuses past the cap so a hostile footer cannot exhaust memory. */
void *
arena_alloc(tpq_arena *a, size_t n)
{
    size_t hdr = (sizeof(arena_block) + 15) & ~(size_t) 15;
    void *p;

    n = (n + 15) & ~(size_t) 15;
    if (n == 0)
        n = 16;
    if (n > a->cap || a->total > a->cap - n)
        return NULL;
    if (n > a->left)
    {
        size_t bsz = n > ARENA_BLOCK - hdr ? n + hdr : ARENA_BLOCK;
        arena_block *b = tpq_malloc(a->alloc, bsz);

        if (b == NULL)
            return NULL;
        b->next = a->blocks;
        a->blocks = b;
        a->cur = (uint8_t *) b + hdr;
        a->left = bsz - hdr;
    }
    p = a->cur;
    a->cur += n;
    a->left -= n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

void
arena_free(tpq_arena *a)
{
    arena_block *b = a->blocks;

    while (b)
    {
        arena_block *next = b->next;

        tpq_free(a->alloc, b);
        b = next;
    }
    a->blocks = NULL;
    a->left = 0;
}
