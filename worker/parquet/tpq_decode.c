/*
 * tpq_decode.c: decoding one column chunk of a file tpq_read.c opened: its
 * pages (dictionary, data v1), their zstd frames, definition levels and
 * values, into a tpq_column_data.
 *
 * The chunk's bytes come from the source whole (capped by max_chunk_bytes);
 * each page is checked against the chunk, the caps, the zstd frame's size,
 * the rows left; levels and values against the page; dictionary indexes
 * against the dictionary.  Byte-array values point into page buffers the
 * column data keeps; scalar pages are freed once copied out.
 */
#include <stdio.h>
#include <string.h>

#include "tpq_reader.h"

static uint32_t
plain_width(const tpq_column_info *c)
{
    return tpq_plain_width(c->type, c->fixed_len);
}

void
tpq_column_data_free(tpq_column_data *d)
{
    size_t i;

    if (d == NULL)
        return;
    for (i = 0; i < d->nbufs; i++)
        tpq_free(&d->alloc, d->bufs[i]);
    tpq_free(&d->alloc, d->bufs);
    tpq_free(&d->alloc, d->nulls);
    tpq_free(&d->alloc, d->v.b);
    memset(d, 0, sizeof(*d));
}

/* Keeps buf alive as long as d (values may point into it). */
static int
keep_buf(tpq_column_data *d, void *buf)
{
    if (d->nbufs == d->capbufs)
    {
        size_t cap = d->capbufs ? d->capbufs * 2 : 8;
        void **b = tpq_malloc(&d->alloc, cap * sizeof(void *));

        if (b == NULL)
            return -1;
        if (d->nbufs)
            memcpy(b, d->bufs, d->nbufs * sizeof(void *));
        tpq_free(&d->alloc, d->bufs);
        d->bufs = b;
        d->capbufs = cap;
    }
    d->bufs[d->nbufs++] = buf;
    return 0;
}

/* State of one chunk being decoded. */
typedef struct chunk_dec
{
    tpq_reader *r;
    const tpq_column_info *c;
    tpq_column_data *d;
    tpq_err *err;
    uint32_t width;
    size_t row;                 /* rows decoded so far */
    /* the dictionary: values in PLAIN form */
    bool has_dict;
    size_t ndict;
    const uint8_t *dict_fixed;  /* fixed-width entries */
    tpq_bytes *dict_bytes;      /* byte-array entries */
    uint32_t *tmp;              /* levels / indexes of a page */
    size_t tmp_cap;
} chunk_dec;

static int
dec_fail(chunk_dec *x, uint64_t off, const char *what)
{
    tpq_seterr(x->err, "column \"%s\": %s at offset %llu", x->c->name, what, (unsigned long long) off);
    return -1;
}

static int
need_tmp(chunk_dec *x, size_t n)
{
    if (n <= x->tmp_cap)
        return 0;
    tpq_free(&x->r->alloc, x->tmp);
    x->tmp = tpq_malloc(&x->r->alloc, n * sizeof(uint32_t));
    x->tmp_cap = x->tmp ? n : 0;
    if (x->tmp == NULL)
    {
        tpq_seterr(x->err, "column \"%s\": out of memory for %zu levels", x->c->name, n);
        return -1;
    }
    return 0;
}

/* Stores one PLAIN value at row i. */
static int
put_value(chunk_dec *x, size_t i, const uint8_t *p, uint32_t len, uint64_t off)
{
    tpq_column_data *d = x->d;

    switch (x->c->type)
    {
        case TPQ_BOOL: d->v.b[i] = p[0]; break;
        case TPQ_INT16:
            {
                int32_t v = (int32_t) tpq_rd_le32(p);

                if (v < INT16_MIN || v > INT16_MAX)
                    return dec_fail(x, off, "value out of range for INT(16)");
                d->v.i32[i] = v;
                break;
            }
        case TPQ_INT32: d->v.i32[i] = (int32_t) tpq_rd_le32(p); break;
        case TPQ_INT64:
        case TPQ_TIMESTAMPTZ: d->v.i64[i] = (int64_t) tpq_rd_le64(p); break;
        case TPQ_FLOAT64:
            {
                uint64_t u = tpq_rd_le64(p);

                memcpy(&d->v.f64[i], &u, 8);
                break;
            }
        default:
            d->v.bytes[i].ptr = p;
            d->v.bytes[i].len = len;
            break;
    }
    return 0;
}

static int
decode_dictionary(chunk_dec *x, const pq_page_header *h, const uint8_t *p, size_t n, uint64_t off)
{
    size_t i, pos = 0, count;

    if (!h->has_dict)
        return dec_fail(x, off, "dictionary page without a DictionaryPageHeader");
    if (x->has_dict || x->row > 0)
        return dec_fail(x, off, "dictionary page after the chunk's first page");
    if (h->dict_encoding != PQ_ENC_PLAIN && h->dict_encoding != PQ_ENC_PLAIN_DICTIONARY)
        return dec_fail(x, off, "dictionary page not PLAIN-encoded");
    if (x->c->type == TPQ_BOOL)
        return dec_fail(x, off, "dictionary page for a BOOLEAN column");
    if (h->dict_num_values < 0)
        return dec_fail(x, off, "negative dictionary size");
    count = (size_t) h->dict_num_values;
    if (x->width)
    {
        if (count > n / x->width)
            return dec_fail(x, off, "dictionary page shorter than its entries");
        x->dict_fixed = p;
    }
    else
    {
        if (count > n / 4)
            return dec_fail(x, off, "dictionary page shorter than its entries");
        x->dict_bytes = tpq_malloc(&x->r->alloc, count * sizeof(tpq_bytes) + 1);
        if (x->dict_bytes == NULL)
        {
            tpq_seterr(x->err, "column \"%s\": out of memory for a dictionary of %zu entries", x->c->name, count);
            return -1;
        }
        for (i = 0; i < count; i++)
        {
            uint32_t len;

            if (n - pos < 4)
                return dec_fail(x, off + pos, "dictionary entry length runs past the page");
            len = tpq_rd_le32(p + pos);
            pos += 4;
            if (len > n - pos)
                return dec_fail(x, off + pos, "dictionary entry runs past the page");
            x->dict_bytes[i].ptr = p + pos;
            x->dict_bytes[i].len = len;
            pos += len;
        }
    }
    x->ndict = count;
    x->has_dict = true;
    return 0;
}

static int
decode_data_page(chunk_dec *x, const pq_page_header *h, const uint8_t *p, size_t n, uint64_t off)
{
    tpq_column_data *d = x->d;
    size_t nv, nonnull, i, pos = 0, k;
    const uint32_t *levels = NULL;

    if (!h->has_data)
        return dec_fail(x, off, "data page without a DataPageHeader");
    if (h->num_values <= 0 || (size_t) h->num_values > d->nrows - x->row)
    {
        char msg[96];

        snprintf(msg, sizeof(msg), "data page of %d values where %zu rows remain",
                 h->num_values, d->nrows - x->row);
        return dec_fail(x, off, msg);
    }
    nv = (size_t) h->num_values;
    nonnull = nv;
    /* tmp holds the levels in [0, nv) and dictionary indexes in [nv, 2 nv) */
    if (need_tmp(x, 2 * nv) < 0)
        return -1;
    if (x->c->nullable)
    {
        uint32_t len;

        if (h->def_encoding != PQ_ENC_RLE)
            return dec_fail(x, off, "definition levels not RLE-encoded");
        if (n < 4)
            return dec_fail(x, off, "definition levels length runs past the page");
        len = tpq_rd_le32(p);
        if (len > n - 4)
            return dec_fail(x, off, "definition levels run past the page");
        if (rle_decode(p + 4, len, 1, x->tmp, nv, off + 4, x->err) < 0)
            return -1;
        levels = x->tmp;
        nonnull = 0;
        for (i = 0; i < nv; i++)
            nonnull += levels[i];
        pos = 4 + len;
    }
    if (h->encoding == PQ_ENC_PLAIN)
    {
        if (x->c->type == TPQ_BOOL)
        {
            if ((nonnull + 7) / 8 > n - pos)
                return dec_fail(x, off + pos, "PLAIN booleans run past the page");
            for (i = 0, k = 0; i < nv; i++)
                if (!levels || levels[i])
                {
                    d->v.b[x->row + i] = (p[pos + k / 8] >> (k % 8)) & 1;
                    k++;
                }
        }
        else
        {
            for (i = 0; i < nv; i++)
            {
                uint32_t len = x->width;

                if (levels && !levels[i])
                    continue;
                if (!x->width)
                {
                    if (n - pos < 4)
                        return dec_fail(x, off + pos, "PLAIN value length runs past the page");
                    len = tpq_rd_le32(p + pos);
                    pos += 4;
                }
                if (len > n - pos)
                    return dec_fail(x, off + pos, "PLAIN value runs past the page");
                if (put_value(x, x->row + i, p + pos, len, off + pos) < 0)
                    return -1;
                pos += len;
            }
        }
    }
    else if (h->encoding == PQ_ENC_RLE_DICTIONARY || h->encoding == PQ_ENC_PLAIN_DICTIONARY)
    {
        uint32_t *idx;
        int w;

        if (!x->has_dict)
            return dec_fail(x, off, "dictionary-encoded page without a dictionary page");
        if (pos >= n && nonnull > 0)
            return dec_fail(x, off + pos, "dictionary index bit width runs past the page");
        w = nonnull > 0 ? p[pos++] : 0;
        if (w > 32)
            return dec_fail(x, off + pos - 1, "dictionary index bit width above 32");
        idx = x->tmp + nv;
        if (nonnull > 0 && rle_decode(p + pos, n - pos, w, idx, nonnull, off + pos, x->err) < 0)
            return -1;
        for (i = 0, k = 0; i < nv; i++)
        {
            uint32_t j;

            if (levels && !levels[i])
                continue;
            j = idx[k++];
            if (j >= x->ndict)
            {
                char msg[96];

                snprintf(msg, sizeof(msg), "dictionary index %u out of range (%zu entries) in the page",
                         j, x->ndict);
                return dec_fail(x, off, msg);
            }
            if (x->width ? put_value(x, x->row + i, x->dict_fixed + (size_t) j * x->width, x->width, off)
                : put_value(x, x->row + i, x->dict_bytes[j].ptr, x->dict_bytes[j].len, off))
                return -1;
        }
    }
    else
    {
        char msg[64];

        snprintf(msg, sizeof(msg), "value encoding %d not supported", h->encoding);
        return dec_fail(x, off, msg);
    }
    if (levels)
        for (i = 0; i < nv; i++)
            d->nulls[x->row + i] = levels[i] ? 0 : 1;
    x->row += nv;
    return 0;
}

/* Bytes per decoded value: the writer's input sizes, INT16 widened to i32. */
static size_t
value_size(tpq_type t)
{
    return t == TPQ_INT16 ? 4 : tpq_values_size(t);
}

int
tpq_reader_read_column(tpq_reader *r, size_t rg, size_t col, tpq_column_data *d, tpq_err *err)
{
    const pq_column_meta *m;
    chunk_dec x;
    uint8_t *chunk = NULL;
    uint64_t start;
    size_t len, pos = 0, nrows;
    bool kept_chunk = false;
    int rc = -1;

    memset(d, 0, sizeof(*d));
    d->alloc = r->alloc;
    if (rg >= r->meta.nrow_groups || col >= r->ncols)
    {
        tpq_seterr(err, "no row group %zu / column %zu", rg, col);
        return -1;
    }
    m = &r->meta.row_groups[rg].columns[col];
    memset(&x, 0, sizeof(x));
    x.r = r;
    x.c = &r->cols[col];
    x.d = d;
    x.err = err;
    x.width = plain_width(x.c);
    nrows = (size_t) r->meta.row_groups[rg].num_rows;
    d->type = x.c->type;
    d->nrows = nrows;
    start = (uint64_t) (m->has_dictionary_page_offset ? m->dictionary_page_offset : m->data_page_offset);
    len = (size_t) m->total_compressed;
    if (len > r->opt.max_chunk_bytes)
    {
        tpq_seterr(err, "column \"%s\": chunk of %zu bytes exceeds the cap of %zu", x.c->name, len, r->opt.max_chunk_bytes);
        return -1;
    }
    d->nulls = tpq_malloc(&r->alloc, nrows + 1);
    d->v.b = tpq_malloc(&r->alloc, nrows * value_size(x.c->type) + 1);
    chunk = tpq_malloc(&r->alloc, len + 1);
    if (d->nulls == NULL || d->v.b == NULL || chunk == NULL)
    {
        tpq_seterr(err, "column \"%s\": out of memory for %zu rows", x.c->name, nrows);
        goto done;
    }
    memset(d->nulls, 0, nrows);
    memset(d->v.b, 0, nrows * value_size(x.c->type));
    if (reader_read_at(r, start, chunk, len, err) < 0)
        goto done;

    while (x.row < nrows || (pos < len && nrows == 0))
    {
        pq_page_header h;
        tpq_tr t;
        uint64_t off;
        const uint8_t *body;
        uint8_t *plain = NULL;
        size_t usize;
        int prc;

        if (pos >= len)
        {
            tpq_seterr(err, "column \"%s\": chunk ends after %zu of %zu values", x.c->name, x.row, nrows);
            goto done;
        }
        tr_init(&t, chunk + pos, len - pos, start + pos, err);
        if (pq_read_page_header(&t, &h) < 0)
            goto done;
        pos += (size_t) (t.p - t.start);
        off = start + pos;
        if ((size_t) h.compressed_size > len - pos)
        {
            tpq_seterr(err, "column \"%s\": page at offset %llu claims %d bytes, %zu left in the chunk",
                       x.c->name, (unsigned long long) off, h.compressed_size, len - pos);
            goto done;
        }
        usize = (size_t) h.uncompressed_size;
        if (usize > r->opt.max_page_bytes)
        {
            tpq_seterr(err, "column \"%s\": page at offset %llu of %zu bytes exceeds the cap of %zu",
                       x.c->name, (unsigned long long) off, usize, r->opt.max_page_bytes);
            goto done;
        }
        body = chunk + pos;
        if (m->codec == TPQ_CODEC_ZSTD)
        {
            if (r->codec == NULL && (r->codec = codec_create(&r->alloc, 0, err)) == NULL)
                goto done;
            plain = tpq_malloc(&r->alloc, usize + 1);
            if (plain == NULL)
            {
                tpq_seterr(err, "column \"%s\": out of memory for a page of %zu bytes", x.c->name, usize);
                goto done;
            }
            if (codec_decompress(r->codec, plain, usize, body, (size_t) h.compressed_size, off, err) < 0 ||
                keep_buf(d, plain) < 0)
            {
                tpq_free(&r->alloc, plain);
                goto done;
            }
            body = plain;
        }
        else if (usize != (size_t) h.compressed_size)
        {
            tpq_seterr(err, "column \"%s\": uncompressed page at offset %llu with sizes %zu and %d",
                       x.c->name, (unsigned long long) off, usize, h.compressed_size);
            goto done;
        }
        else if (!kept_chunk)
        {
            if (keep_buf(d, chunk) < 0)
            {
                tpq_seterr(err, "out of memory");
                goto done;
            }
            kept_chunk = true;
        }
        if (h.type == PQ_PAGE_DICTIONARY)
            prc = decode_dictionary(&x, &h, body, usize, off);
        else if (h.type == PQ_PAGE_DATA)
            prc = decode_data_page(&x, &h, body, usize, off);
        else if (h.type == PQ_PAGE_DATA_V2)
            prc = dec_fail(&x, off, "data page v2 not supported");
        else
            prc = dec_fail(&x, off, "unexpected page type");
        if (prc < 0)
            goto done;
        /* values of scalar types were copied out: drop their data page */
        if (plain && h.type == PQ_PAGE_DATA && value_size(x.c->type) != sizeof(tpq_bytes))
            tpq_free(&r->alloc, d->bufs[--d->nbufs]);
        pos += (size_t) h.compressed_size;
    }
    if (pos != len)
    {
        tpq_seterr(err, "column \"%s\": %zu bytes after the chunk's last page at offset %llu",
                   x.c->name, len - pos, (unsigned long long) (start + pos));
        goto done;
    }
    rc = 0;

done:
    tpq_free(&r->alloc, x.tmp);
    tpq_free(&r->alloc, x.dict_bytes);
    if (!kept_chunk)
        tpq_free(&r->alloc, chunk);
    if (rc < 0)
        tpq_column_data_free(d);
    return rc;
}
