/*
 * tpq_chunk.c: the column chunk encoder.
 *
 * Values go into the current data page, as dictionary indexes while the
 * chunk's dictionary is on, as PLAIN bytes otherwise.  The dictionary (a
 * hash table over its PLAIN bytes, which are the dictionary page itself) is
 * dropped, as parquet-mr and arrow do, when (AUTO) the first page shows it
 * does not pay (dictionary + indexes >= PLAIN size: that page is re-encoded
 * PLAIN) or when it outgrows options.dict_bytes (the pages already written
 * keep it, later pages are PLAIN).  A page ends at page_bytes or page_rows;
 * it is encoded (v1: definition levels as 4-byte-length-prefixed RLE
 * hybrid, then the values), compressed, and kept with its header in memory
 * until the row group is written, so a chunk costs at most its encoded size.
 *
 * Statistics (min, max, null_count) follow each type's sort order; with a
 * dictionary only new entries can move them.  Byte-array bounds longer than
 * stats_max_bytes are truncated into still-valid bounds (is_*_exact false).
 */
#include <math.h>
#include <string.h>

#include "tpq_chunk.h"

void
chunk_init(tpq_chunk *c, const tpq_column_def *def, const tpq_write_options *opt,
           tpq_codec_ctx *codec, const tpq_alloc *alloc, tpq_buf *scratch,
           tpq_buf *cbuf, tpq_buf *hdr)
{
    memset(c, 0, sizeof(*c));
    c->def = *def;
    c->phys = tpq_physical(def->type);
    c->width = tpq_plain_width(def->type, def->fixed_len);
    c->opt = opt;
    c->codec = codec;
    c->alloc = alloc;
    c->scratch = scratch;
    c->cbuf = cbuf;
    c->hdr = hdr;
    tpq_buf_init(&c->levels, alloc);
    tpq_buf_init(&c->plain, alloc);
    tpq_buf_init(&c->idx, alloc);
    tpq_buf_init(&c->dict, alloc);
    tpq_buf_init(&c->refs, alloc);
    tpq_buf_init(&c->pages, alloc);
    tpq_buf_init(&c->bmin, alloc);
    tpq_buf_init(&c->bmax, alloc);
    c->dict_on = def->dict != TPQ_DICT_OFF && c->phys != PQ_BOOLEAN;
}

static void
dict_drop(tpq_chunk *c)
{
    tpq_free(c->alloc, c->slots);
    c->slots = NULL;
    c->nslots = c->ndict = 0;
    tpq_buf_free(&c->dict);
    tpq_buf_free(&c->refs);
}

void
chunk_free(tpq_chunk *c)
{
    dict_drop(c);
    tpq_buf_free(&c->levels);
    tpq_buf_free(&c->plain);
    tpq_buf_free(&c->idx);
    tpq_buf_free(&c->pages);
    tpq_buf_free(&c->bmin);
    tpq_buf_free(&c->bmax);
}

/* ------------------------------------------------------------ hashing */

static inline uint64_t
mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* 8 bytes at a time: dictionary keys are mostly 20- and 32-byte values. */
static uint32_t
hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;

    while (n >= 8)
    {
        uint64_t k;

        memcpy(&k, p, 8);
        h = (h ^ mix64(k)) * 0x9E3779B97F4A7C15ULL;
        p += 8;
        n -= 8;
    }
    if (n)
    {
        uint64_t k = 0;

        memcpy(&k, p, n);
        h = (h ^ mix64(k ^ 0xA5)) * 0x9E3779B97F4A7C15ULL;
    }
    return (uint32_t) (mix64(h) >> 32);
}

static int
dict_grow(tpq_chunk *c)
{
    size_t n = c->nslots ? c->nslots * 2 : 1024, i;
    uint32_t *s = tpq_malloc(c->alloc, n * sizeof(uint32_t));
    const dict_ref *refs = (const dict_ref *) c->refs.data;

    if (s == NULL)
        return -1;
    memset(s, 0, n * sizeof(uint32_t));
    for (i = 0; i < c->ndict; i++)
    {
        size_t j = refs[i].hash & (n - 1);

        while (s[j])
            j = (j + 1) & (n - 1);
        s[j] = (uint32_t) i + 1;
    }
    tpq_free(c->alloc, c->slots);
    c->slots = s;
    c->nslots = n;
    return 0;
}

/* The dictionary index of the value whose PLAIN bytes are [p, p+n) (key is
 * the part compared: without the length prefix); *added when new. */
static int
dict_index(tpq_chunk *c, const uint8_t *plain, size_t n, uint32_t *index, bool *added)
{
    uint32_t h = hash_bytes(plain, n);
    size_t j;
    dict_ref ref;

    if (c->ndict * 2 >= c->nslots && dict_grow(c) < 0)
        return -1;
    j = h & (c->nslots - 1);
    while (c->slots[j])
    {
        const dict_ref *r = (const dict_ref *) c->refs.data + (c->slots[j] - 1);

        if (r->hash == h && r->len == n && memcmp(c->dict.data + r->off, plain, n) == 0)
        {
            *index = c->slots[j] - 1;
            *added = false;
            return 0;
        }
        j = (j + 1) & (c->nslots - 1);
    }
    ref.off = (uint32_t) c->dict.len;
    ref.len = (uint32_t) n;
    ref.hash = h;
    if (tpq_buf_put(&c->dict, plain, n) < 0 || tpq_buf_put(&c->refs, &ref, sizeof(ref)) < 0)
        return -1;
    c->slots[j] = (uint32_t) c->ndict + 1;
    *index = (uint32_t) c->ndict++;
    *added = true;
    return 0;
}

/* ---------------------------------------------------------- statistics */

static int
stats_bytes(tpq_chunk *c, const uint8_t *p, size_t n)
{
    if (!c->has_minmax)
    {
        c->has_minmax = true;
        tpq_buf_reset(&c->bmin);
        tpq_buf_reset(&c->bmax);
        return tpq_buf_put(&c->bmin, p, n) | tpq_buf_put(&c->bmax, p, n);
    }
    if (tpq_compare(c->def.type, p, n, c->bmin.data, c->bmin.len) < 0)
    {
        tpq_buf_reset(&c->bmin);
        if (tpq_buf_put(&c->bmin, p, n) < 0)
            return -1;
    }
    else if (tpq_compare(c->def.type, p, n, c->bmax.data, c->bmax.len) > 0)
    {
        tpq_buf_reset(&c->bmax);
        if (tpq_buf_put(&c->bmax, p, n) < 0)
            return -1;
    }
    return 0;
}

static inline void
stats_int(tpq_chunk *c, int64_t v)
{
    if (!c->has_minmax)
    {
        c->has_minmax = true;
        c->imin = c->imax = v;
    }
    else if (v < c->imin)
        c->imin = v;
    else if (v > c->imax)
        c->imax = v;
}

/* NaN takes no part in min/max (parquet.thrift's rule for floats). */
static inline void
stats_double(tpq_chunk *c, double v)
{
    if (isnan(v))
        return;
    if (!c->has_fminmax)
    {
        c->has_fminmax = true;
        c->fmin = c->fmax = v;
    }
    else if (v < c->fmin)
        c->fmin = v;
    else if (v > c->fmax)
        c->fmax = v;
}

/* Updates statistics with one value given by its PLAIN bytes (value part). */
static int
stats_value(tpq_chunk *c, const uint8_t *p, size_t n)
{
    switch (c->def.type)
    {
        case TPQ_BOOL: stats_int(c, p[0]); return 0;
        case TPQ_INT16:
        case TPQ_INT32: stats_int(c, (int32_t) tpq_rd_le32(p)); return 0;
        case TPQ_INT64:
        case TPQ_TIMESTAMPTZ: stats_int(c, (int64_t) tpq_rd_le64(p)); return 0;
        case TPQ_FLOAT64:
            {
                uint64_t u = tpq_rd_le64(p);
                double d;

                memcpy(&d, &u, 8);
                stats_double(c, d);
                return 0;
            }
        default:
            return stats_bytes(c, p, n);
    }
}

/* ------------------------------------------------------------ appending */

/* One non-null value: its PLAIN encoding is [lenprefix][p, p+n).  Returns
 * 1 when the dictionary just outgrew its budget, 0, or -1. */
static int
add_value(tpq_chunk *c, const uint8_t *p, size_t n, tpq_err *err)
{
    size_t plain_len = n + (c->width ? 0 : 4);

    c->page_plain_bytes += plain_len;
    if (c->dict_on)
    {
        uint32_t index;
        bool added;
        int rc;

        if (c->width)
            rc = dict_index(c, p, n, &index, &added);
        else
        {
            /* byte arrays: the dictionary holds length-prefixed PLAIN */
            uint8_t tmp[64];
            const uint8_t *key = p;

            if (n + 4 <= sizeof(tmp))
            {
                tpq_wr_le32(tmp, (uint32_t) n);
                memcpy(tmp + 4, p, n);
                key = tmp;
                rc = dict_index(c, key, n + 4, &index, &added);
            }
            else
            {
                /* long values: build the key in scratch */
                tpq_buf_reset(c->scratch);
                if (tpq_buf_put_le32(c->scratch, (uint32_t) n) < 0 || tpq_buf_put(c->scratch, p, n) < 0)
                    goto oom;
                rc = dict_index(c, c->scratch->data, n + 4, &index, &added);
            }
        }
        if (rc < 0)
            goto oom;
        if (tpq_buf_put(&c->idx, &index, sizeof(index)) < 0)
            goto oom;
        if (added && stats_value(c, p, n) < 0)
            goto oom;
        /* over budget: this page keeps the dictionary, later ones are PLAIN */
        return c->dict.len > c->opt->dict_bytes ? 1 : 0;
    }
    if (!c->width && tpq_buf_put_le32(&c->plain, (uint32_t) n) < 0)
        goto oom;
    if (tpq_buf_put(&c->plain, p, n) < 0)
        goto oom;
    c->plain_used = true;
    if (stats_value(c, p, n) < 0)
        goto oom;
    return 0;

oom:
    tpq_seterr(err, "column \"%s\": out of memory buffering values", c->def.name);
    return -1;
}

static size_t
page_estimate(const tpq_chunk *c)
{
    size_t n = c->levels.len / 32 + 4;      /* 1 bit per level, roughly */

    if (c->dict_on)
        return n + (c->idx.len / 4 * (size_t) bit_width((uint32_t) c->ndict) + 7) / 8 + 1;
    return n + (c->phys == PQ_BOOLEAN ? c->plain.len / 8 : c->plain.len);
}

int
chunk_append(tpq_chunk *c, const tpq_values *v, size_t n, uint64_t first_row, tpq_err *err)
{
    size_t i;

    for (i = 0; i < n; i++)
    {
        bool null = v->nulls && v->nulls[i];
        uint8_t tmp[8];
        const uint8_t *p = tmp;
        size_t len = c->width;
        int rc = 0;

        if (null && !c->def.nullable)
        {
            tpq_seterr(err, "column \"%s\" is not nullable, row %llu is NULL",
                       c->def.name, (unsigned long long) (first_row + i));
            return -1;
        }
        if (c->def.nullable)
        {
            uint32_t lv = null ? 0 : 1;

            if (tpq_buf_put(&c->levels, &lv, sizeof(lv)) < 0)
            {
                tpq_seterr(err, "column \"%s\": out of memory buffering levels", c->def.name);
                return -1;
            }
        }
        if (null)
            c->null_count++;
        else
        {
            switch (c->def.type)
            {
                case TPQ_BOOL: tmp[0] = v->v.b[i] ? 1 : 0; break;
                case TPQ_INT16: tpq_wr_le32(tmp, (uint32_t) (int32_t) v->v.i16[i]); break;
                case TPQ_INT32: tpq_wr_le32(tmp, (uint32_t) v->v.i32[i]); break;
                case TPQ_INT64:
                case TPQ_TIMESTAMPTZ:
                    tpq_wr_le32(tmp, (uint32_t) (uint64_t) v->v.i64[i]);
                    tpq_wr_le32(tmp + 4, (uint32_t) ((uint64_t) v->v.i64[i] >> 32));
                    break;
                case TPQ_FLOAT64:
                    {
                        uint64_t u;

                        memcpy(&u, &v->v.f64[i], 8);
                        tpq_wr_le32(tmp, (uint32_t) u);
                        tpq_wr_le32(tmp + 4, (uint32_t) (u >> 32));
                        break;
                    }
                default:
                    p = v->v.bytes[i].ptr;
                    len = v->v.bytes[i].len;
                    if (len > TPQ_MAX_VALUE_LEN)
                    {
                        tpq_seterr(err, "column \"%s\", row %llu: value of %zu bytes exceeds the %u-byte cap",
                                   c->def.name, (unsigned long long) (first_row + i), len, TPQ_MAX_VALUE_LEN);
                        return -1;
                    }
                    if (c->width && len != c->width)
                    {
                        tpq_seterr(err, "column \"%s\", row %llu: value of %zu bytes, the column holds exactly %u",
                                   c->def.name, (unsigned long long) (first_row + i), len, c->width);
                        return -1;
                    }
                    if (p == NULL && len > 0)
                    {
                        tpq_seterr(err, "column \"%s\", row %llu: NULL pointer for a %zu-byte value",
                                   c->def.name, (unsigned long long) (first_row + i), len);
                        return -1;
                    }
                    break;
            }
            rc = add_value(c, p, len, err);
            if (rc < 0)
                return -1;
        }
        c->page_rows++;
        c->rows++;
        if (rc == 1 || c->page_rows >= c->opt->page_rows || page_estimate(c) >= c->opt->page_bytes)
        {
            if (chunk_flush_page(c, err) < 0)
                return -1;
            if (rc == 1)
                c->dict_on = false;
        }
    }
    return 0;
}

size_t
chunk_buffered(const tpq_chunk *c)
{
    return c->pages.len + c->dict.len + page_estimate(c);
}

/* ---------------------------------------------------------------- pages */

/* The first page decides (AUTO): keep the dictionary only if it and the
 * indexes take less than the page's values as PLAIN; else re-encode the
 * page PLAIN from the dictionary and drop it for this chunk. */
static int
dict_check(tpq_chunk *c, tpq_err *err)
{
    size_t nidx = c->idx.len / 4, i;
    uint64_t dict_cost;
    const uint32_t *idx = (const uint32_t *) c->idx.data;
    const dict_ref *refs = (const dict_ref *) c->refs.data;

    c->dict_checked = true;
    if (c->def.dict == TPQ_DICT_ALWAYS)
        return 0;
    dict_cost = c->dict.len + (nidx * (uint64_t) bit_width((uint32_t) c->ndict) + 7) / 8;
    if (dict_cost < c->page_plain_bytes)
        return 0;
    tpq_buf_reset(&c->plain);
    if (tpq_buf_reserve(&c->plain, c->page_plain_bytes) < 0)
    {
        tpq_seterr(err, "column \"%s\": out of memory re-encoding a page", c->def.name);
        return -1;
    }
    for (i = 0; i < nidx; i++)
        tpq_buf_put(&c->plain, c->dict.data + refs[idx[i]].off, refs[idx[i]].len);
    tpq_buf_reset(&c->idx);
    c->dict_on = false;
    c->plain_used = true;
    dict_drop(c);
    return 0;
}

/* Appends header + body of a page to c->pages (compressing the body). */
static int
emit_page(tpq_chunk *c, pq_page_header *h, const uint8_t *body, size_t len, tpq_buf *dst,
          int64_t *uncompressed, tpq_err *err)
{
    const uint8_t *out = body;
    size_t outlen = len;
    tpq_tw w;

    if (len > INT32_MAX)
    {
        tpq_seterr(err, "column \"%s\": page of %zu bytes exceeds 2 GiB", c->def.name, len);
        return -1;
    }
    if (c->codec)
    {
        if (codec_compress(c->codec, c->cbuf, body, len, err) < 0)
            return -1;
        out = c->cbuf->data;
        outlen = c->cbuf->len;
    }
    h->uncompressed_size = (int32_t) len;
    h->compressed_size = (int32_t) outlen;
    tpq_buf_reset(c->hdr);
    tw_init(&w, c->hdr);
    pq_write_page_header(&w, h);
    if (w.failed || tpq_buf_put(dst, c->hdr->data, c->hdr->len) < 0 || tpq_buf_put(dst, out, outlen) < 0)
    {
        tpq_seterr(err, "column \"%s\": out of memory buffering a page", c->def.name);
        return -1;
    }
    *uncompressed += (int64_t) (c->hdr->len + len);
    return 0;
}

int
chunk_flush_page(tpq_chunk *c, tpq_err *err)
{
    tpq_buf *s = c->scratch;
    pq_page_header h;
    bool dict_page;

    if (c->page_rows == 0)
        return 0;
    /* a page of NULLs says nothing about the dictionary: check a later one */
    if (c->dict_on && !c->dict_checked && c->idx.len > 0 && dict_check(c, err) < 0)
        return -1;
    dict_page = c->dict_on && c->ndict > 0;
    tpq_buf_reset(s);
    if (c->def.nullable)
    {
        size_t at = s->len;

        if (tpq_buf_put_le32(s, 0) < 0 ||
            rle_encode(s, (const uint32_t *) c->levels.data, c->levels.len / 4, 1) < 0)
            goto oom;
        tpq_wr_le32(s->data + at, (uint32_t) (s->len - at - 4));
    }
    if (dict_page)
    {
        int w = bit_width(c->ndict > 1 ? (uint32_t) c->ndict - 1 : 1);

        if (tpq_buf_put_u8(s, (uint8_t) w) < 0 ||
            rle_encode(s, (const uint32_t *) c->idx.data, c->idx.len / 4, w) < 0)
            goto oom;
        c->dict_used = true;
    }
    else if (c->phys == PQ_BOOLEAN)
    {
        size_t i, nbytes = (c->plain.len + 7) / 8;

        if (tpq_buf_reserve(s, nbytes) < 0)
            goto oom;
        memset(s->data + s->len, 0, nbytes);
        for (i = 0; i < c->plain.len; i++)
            s->data[s->len + i / 8] |= (uint8_t) (c->plain.data[i] << (i % 8));
        s->len += nbytes;
    }
    else if (tpq_buf_put(s, c->plain.data, c->plain.len) < 0)
        goto oom;
    if (!dict_page)
        c->plain_used = true;

    memset(&h, 0, sizeof(h));
    h.type = PQ_PAGE_DATA;
    h.has_data = true;
    h.num_values = (int32_t) c->page_rows;
    h.encoding = dict_page ? PQ_ENC_RLE_DICTIONARY : PQ_ENC_PLAIN;
    h.def_encoding = PQ_ENC_RLE;
    h.rep_encoding = PQ_ENC_RLE;
    if (emit_page(c, &h, s->data, s->len, &c->pages, &c->pages_uncompressed, err) < 0)
        return -1;
    tpq_buf_reset(&c->levels);
    tpq_buf_reset(&c->plain);
    tpq_buf_reset(&c->idx);
    c->page_rows = 0;
    c->page_plain_bytes = 0;
    return 0;

oom:
    tpq_seterr(err, "column \"%s\": out of memory encoding a page", c->def.name);
    return -1;
}

/* ------------------------------------------------------------- finishing */

static int
put_bound(tpq_buf *b, int64_t v, uint32_t width)
{
    if (width == 1)
        return tpq_buf_put_u8(b, (uint8_t) v);
    if (width == 4)
        return tpq_buf_put_le32(b, (uint32_t) (int32_t) v);
    return tpq_buf_put_le64(b, (uint64_t) v);
}

/* Fills m->stats with bounds encoded into sb (kept by the caller). */
static int
finish_stats(tpq_chunk *c, pq_column_meta *m, tpq_buf *sb)
{
    pq_stats *s = &m->stats;
    size_t max_off;

    memset(s, 0, sizeof(*s));
    m->has_stats = true;
    s->has_null_count = true;
    s->null_count = c->null_count;
    tpq_buf_reset(sb);
    if (c->def.type == TPQ_FLOAT64)
    {
        if (c->has_fminmax)
        {
            double lo = c->fmin == 0 ? -0.0 : c->fmin, hi = c->fmax == 0 ? 0.0 : c->fmax;
            uint64_t ulo, uhi;

            memcpy(&ulo, &lo, 8);
            memcpy(&uhi, &hi, 8);
            if (tpq_buf_put_le64(sb, ulo) < 0 || tpq_buf_put_le64(sb, uhi) < 0)
                return -1;
            s->has_min = s->has_max = true;
            s->min = sb->data;
            s->max = sb->data + 8;
            s->min_len = s->max_len = 8;
        }
        return 0;
    }
    if (!c->has_minmax)
        return 0;
    if (c->phys == PQ_BYTE_ARRAY || c->phys == PQ_FIXED_LEN_BYTE_ARRAY)
    {
        long lo, hi;
        size_t limit = c->opt->stats_max_bytes;

        if (c->phys == PQ_FIXED_LEN_BYTE_ARRAY && limit < c->width)
            limit = c->width;   /* fixed-width bounds are never shortened */
        /* room for one byte of growth of the upper bound */
        if (tpq_buf_put(sb, c->bmin.data, c->bmin.len) < 0 ||
            tpq_buf_put(sb, c->bmax.data, c->bmax.len) < 0 || tpq_buf_put_u8(sb, 0) < 0)
            return -1;
        max_off = c->bmin.len;
        lo = tpq_truncate_bound(c->def.type, sb->data, c->bmin.len, limit, false);
        hi = tpq_truncate_bound(c->def.type, sb->data + max_off, c->bmax.len, limit, true);
        s->has_min = true;
        s->min = sb->data;
        s->min_len = (uint32_t) lo;
        s->has_min_exact = true;
        s->min_exact = (size_t) lo == c->bmin.len;
        if (hi >= 0)
        {
            s->has_max = true;
            s->max = sb->data + max_off;
            s->max_len = (uint32_t) hi;
            s->has_max_exact = true;
            s->max_exact = (size_t) hi == c->bmax.len && memcmp(s->max, c->bmax.data, c->bmax.len) == 0;
        }
        return 0;
    }
    if (put_bound(sb, c->imin, c->width) < 0 || put_bound(sb, c->imax, c->width) < 0)
        return -1;
    s->has_min = s->has_max = true;
    s->min = sb->data;
    s->max = sb->data + c->width;
    s->min_len = s->max_len = c->width;
    return 0;
}

int
chunk_finish(tpq_chunk *c, uint64_t *offset,
             int (*emit)(void *ctx, const void *p, size_t n, tpq_err *err), void *ctx,
             pq_column_meta *m, tpq_buf *stats_buf, tpq_err *err)
{
    int64_t dict_uncompressed = 0;
    tpq_buf dictpage;
    uint64_t start = *offset;

    if (chunk_flush_page(c, err) < 0)
        return -1;
    memset(m, 0, sizeof(*m));
    m->type = c->phys;
    m->codec = c->codec ? TPQ_CODEC_ZSTD : TPQ_CODEC_UNCOMPRESSED;
    m->num_values = c->rows;
    m->path = (char *) c->def.name;
    m->path_len = 1;
    tpq_buf_init(&dictpage, c->alloc);
    if (c->dict_used)
    {
        pq_page_header h;

        memset(&h, 0, sizeof(h));
        h.type = PQ_PAGE_DICTIONARY;
        h.has_dict = true;
        h.dict_num_values = (int32_t) c->ndict;
        h.dict_encoding = PQ_ENC_PLAIN;
        if (emit_page(c, &h, c->dict.data, c->dict.len, &dictpage, &dict_uncompressed, err) < 0)
        {
            tpq_buf_free(&dictpage);
            return -1;
        }
        m->has_dictionary_page_offset = true;
        m->dictionary_page_offset = (int64_t) start;
        if (emit(ctx, dictpage.data, dictpage.len, err) < 0)
        {
            tpq_buf_free(&dictpage);
            return -1;
        }
        *offset += dictpage.len;
    }
    m->data_page_offset = (int64_t) *offset;
    if (emit(ctx, c->pages.data, c->pages.len, err) < 0)
    {
        tpq_buf_free(&dictpage);
        return -1;
    }
    *offset += c->pages.len;
    m->total_compressed = (int64_t) (dictpage.len + c->pages.len);
    m->total_uncompressed = dict_uncompressed + c->pages_uncompressed;
    tpq_buf_free(&dictpage);
    if (c->dict_used || c->plain_used)
        m->encodings[m->nencodings++] = PQ_ENC_PLAIN;
    if (c->def.nullable)
        m->encodings[m->nencodings++] = PQ_ENC_RLE;
    if (c->dict_used)
        m->encodings[m->nencodings++] = PQ_ENC_RLE_DICTIONARY;
    if (finish_stats(c, m, stats_buf) < 0)
    {
        tpq_seterr(err, "column \"%s\": out of memory for statistics", c->def.name);
        return -1;
    }

    /* reset for the next row group: a fresh dictionary, fresh statistics */
    dict_drop(c);
    tpq_buf_reset(&c->pages);
    c->pages_uncompressed = 0;
    c->rows = c->null_count = 0;
    c->plain_used = c->dict_used = c->dict_checked = false;
    c->dict_on = c->def.dict != TPQ_DICT_OFF && c->phys != PQ_BOOLEAN;
    c->has_minmax = c->has_fminmax = false;
    return 0;
}
