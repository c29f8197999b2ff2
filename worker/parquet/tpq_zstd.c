/*
 * tpq_zstd.c: page compression with libzstd, its memory routed through the
 * caller's allocator (so a backend's zstd state lives in a memory context).
 *
 * One compression and one decompression context per writer or reader,
 * reused for every page.  Decompression must produce exactly the size the
 * page header declares: a frame that claims or yields another size is an
 * error, never a short or overlong page.
 */
/* ZSTD_customMem and the *_advanced constructors sit in zstd.h's
 * "experimental" section, unchanged since zstd 1.0 and exported by the
 * shared library. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "tpq_int.h"

struct tpq_codec_ctx
{
    tpq_alloc alloc;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int level;
};

static void *
zalloc(void *opaque, size_t n)
{
    return tpq_malloc(opaque, n);
}

static void
zfree(void *opaque, void *p)
{
    tpq_free(opaque, p);
}

tpq_codec_ctx *
codec_create(const tpq_alloc *a, int level, tpq_err *err)
{
    tpq_codec_ctx *c = tpq_malloc(a, sizeof(*c));

    if (c == NULL)
    {
        tpq_seterr(err, "out of memory creating the zstd context");
        return NULL;
    }
    c->alloc = tpq_alloc_or_default(a);
    c->cctx = NULL;
    c->dctx = NULL;
    c->level = level;
    return c;
}

void
codec_destroy(tpq_codec_ctx *c)
{
    if (c == NULL)
        return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    tpq_free(&c->alloc, c);
}

int
codec_compress(tpq_codec_ctx *c, tpq_buf *out, const uint8_t *src, size_t n, tpq_err *err)
{
    size_t bound = ZSTD_compressBound(n), rc;

    if (c->cctx == NULL)
    {
        ZSTD_customMem mem = {zalloc, zfree, &c->alloc};

        c->cctx = ZSTD_createCCtx_advanced(mem);
        if (c->cctx == NULL)
        {
            tpq_seterr(err, "out of memory creating the zstd compression context");
            return -1;
        }
    }
    tpq_buf_reset(out);
    if (tpq_buf_reserve(out, bound) < 0)
    {
        tpq_seterr(err, "out of memory compressing a page of %zu bytes", n);
        return -1;
    }
    rc = ZSTD_compressCCtx(c->cctx, out->data, bound, src, n, c->level);
    if (ZSTD_isError(rc))
    {
        tpq_seterr(err, "zstd compression failed: %s", ZSTD_getErrorName(rc));
        return -1;
    }
    out->len = rc;
    return 0;
}

int
codec_decompress(tpq_codec_ctx *c, uint8_t *dst, size_t dst_len,
                 const uint8_t *src, size_t n, uint64_t offset, tpq_err *err)
{
    unsigned long long declared;
    size_t rc;

    if (c->dctx == NULL)
    {
        ZSTD_customMem mem = {zalloc, zfree, &c->alloc};

        c->dctx = ZSTD_createDCtx_advanced(mem);
        if (c->dctx == NULL)
        {
            tpq_seterr(err, "out of memory creating the zstd decompression context");
            return -1;
        }
    }
    declared = ZSTD_getFrameContentSize(src, n);
    if (declared == ZSTD_CONTENTSIZE_ERROR)
    {
        tpq_seterr(err, "page at offset %llu is not a zstd frame", (unsigned long long) offset);
        return -1;
    }
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != dst_len)
    {
        tpq_seterr(err, "zstd page at offset %llu holds %llu bytes, its header says %zu",
                   (unsigned long long) offset, declared, dst_len);
        return -1;
    }
    rc = ZSTD_decompressDCtx(c->dctx, dst, dst_len, src, n);
    if (ZSTD_isError(rc))
    {
        tpq_seterr(err, "zstd page at offset %llu does not decompress: %s",
                   (unsigned long long) offset, ZSTD_getErrorName(rc));
        return -1;
    }
    if (rc != dst_len)
    {
        tpq_seterr(err, "zstd page at offset %llu decompresses to %zu bytes, its header says %zu",
                   (unsigned long long) offset, rc, dst_len);
        return -1;
    }
    return 0;
}
