/*
 * tpq_read.c: the Parquet reader core: footer, schema, row groups, column
 * chunks, pages, values.
 *
 * The file is untrusted.  tpq_reader_open checks the magic at both ends,
 * the footer length, every schema element, and every column chunk's type,
 * path, codec, value count and byte range (inside the data area, not
 * overlapping the footer) before anything else is read.
 * tpq_reader_read_column then reads one chunk and checks each page: its
 * header, its sizes against the chunk and the caps, its zstd frame against
 * the declared size, levels and values against the page, dictionary indexes
 * against the dictionary, and the value count against the row group.  Each
 * error names the column, and the file offset where known.
 *
 * Memory: the footer and decoded metadata (an arena, capped at 32 times the
 * footer) live until tpq_reader_close; a decoded chunk belongs to its
 * tpq_column_data.  Nothing is allocated from a count the file claims
 * without a cap or a bound from bytes actually present.
 */
#include <stdio.h>
#include <string.h>

#include "tpq_int.h"

struct tpq_reader
{
    tpq_alloc alloc;
    tpq_source src;
    tpq_read_options opt;
    tpq_arena arena;
    uint8_t *footer;
    uint64_t footer_off, data_end;
    pq_file_meta meta;
    tpq_column_info *cols;
    pq_schema_elem **elems;
    size_t ncols;
    tpq_chunk_info *chunks;     /* row group major */
    tpq_codec_ctx *codec;
};

static int
src_read(tpq_reader *r, uint64_t off, void *buf, size_t len, tpq_err *err)
{
    if (off > r->src.size || len > r->src.size - off)
    {
        tpq_seterr(err, "read of %zu bytes at offset %llu runs past the end of the %llu-byte file",
                   len, (unsigned long long) off, (unsigned long long) r->src.size);
        return -1;
    }
    return r->src.read(r->src.ctx, off, buf, len, err);
}

void
tpq_reader_close(tpq_reader *r)
{
    tpq_alloc a;

    if (r == NULL)
        return;
    a = r->alloc;
    codec_destroy(r->codec);
    arena_free(&r->arena);
    tpq_free(&a, r->footer);
    tpq_free(&a, r);
}

/* Splits "trace.column_types" into ncols names in the arena (NULL if the
 * entry is absent); a count that differs is an error. */
static int
column_hints(tpq_reader *r, char ***hints, tpq_err *err)
{
    const char *v = tpq_reader_kv_get(r, "trace.column_types");
    char *copy, *p, **h;
    size_t i = 0, n;

    *hints = NULL;
    if (v == NULL)
        return 0;
    n = strlen(v);
    copy = arena_alloc(&r->arena, n + 1);
    h = arena_alloc(&r->arena, r->ncols * sizeof(char *));
    if (copy == NULL || h == NULL)
    {
        tpq_seterr(err, "out of memory reading the footer");
        return -1;
    }
    memcpy(copy, v, n + 1);
    for (p = copy; *p && i < r->ncols; i++)
    {
        h[i] = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = '\0';
    }
    if (i != r->ncols || *p)
    {
        tpq_seterr(err, "trace.column_types names %s types than the schema's %zu columns",
                   *p ? "more" : "fewer", r->ncols);
        return -1;
    }
    *hints = h;
    return 0;
}

static int
check_schema(tpq_reader *r, tpq_err *err)
{
    pq_file_meta *m = &r->meta;
    pq_schema_elem *root;
    char **hints;
    size_t i, j;

    if (m->nschema < 2)
    {
        tpq_seterr(err, "the schema has no columns");
        return -1;
    }
    root = &m->schema[0];
    if (root->has_type || !root->has_num_children || root->num_children != (int32_t) (m->nschema - 1))
    {
        tpq_seterr(err, "the schema is not flat: the root must have the %u other elements as children "
                   "(nested columns are not supported)", m->nschema - 1);
        return -1;
    }
    r->ncols = m->nschema - 1;
    if (r->ncols > TPQ_MAX_COLUMNS)
    {
        tpq_seterr(err, "%zu columns exceed the cap of %d", r->ncols, TPQ_MAX_COLUMNS);
        return -1;
    }
    r->cols = arena_alloc(&r->arena, r->ncols * sizeof(tpq_column_info));
    r->elems = arena_alloc(&r->arena, r->ncols * sizeof(pq_schema_elem *));
    if (r->cols == NULL || r->elems == NULL)
    {
        tpq_seterr(err, "out of memory reading the schema");
        return -1;
    }
    if (column_hints(r, &hints, err) < 0)
        return -1;
    for (i = 0; i < r->ncols; i++)
    {
        pq_schema_elem *e = &m->schema[i + 1];
        tpq_column_info *c = &r->cols[i];
        tpq_type t;

        if (!e->has_type || (e->has_num_children && e->num_children != 0))
        {
            tpq_seterr(err, "column \"%s\": a group (nested column) is not supported", e->name);
            return -1;
        }
        if (!e->has_repetition || (e->repetition != PQ_REQUIRED && e->repetition != PQ_OPTIONAL))
        {
            tpq_seterr(err, "column \"%s\": repetition must be REQUIRED or OPTIONAL", e->name);
            return -1;
        }
        if (tpq_type_from_schema(e, hints ? hints[i] : NULL, &t, err) < 0)
            return -1;
        for (j = 0; j < i; j++)
            if (strcmp(r->cols[j].name, e->name) == 0)
            {
                tpq_seterr(err, "column \"%s\" appears twice in the schema", e->name);
                return -1;
            }
        c->name = e->name;
        c->type = t;
        c->nullable = e->repetition == PQ_OPTIONAL;
        c->fixed_len = e->has_type_length ? e->type_length : 0;
        r->elems[i] = e;
    }
    return 0;
}

/* Width of a PLAIN value of the column's type, 0 for byte arrays. */
static uint32_t
plain_width(const tpq_column_info *c)
{
    return tpq_plain_width(c->type, c->fixed_len);
}

static int
check_chunk(tpq_reader *r, size_t g, size_t i, const pq_row_group *rg, tpq_err *err)
{
    const pq_column_meta *m = &rg->columns[i];
    const tpq_column_info *c = &r->cols[i];
    tpq_chunk_info *ci = &r->chunks[g * r->ncols + i];
    int64_t start = m->has_dictionary_page_offset ? m->dictionary_page_offset : m->data_page_offset;
    uint32_t w = plain_width(c);

    if (m->type != r->elems[i]->type)
    {
        tpq_seterr(err, "row group %zu, column \"%s\": chunk type %d differs from the schema's %d",
                   g, c->name, m->type, r->elems[i]->type);
        return -1;
    }
    if (m->path_len != 1 || strcmp(m->path, c->name) != 0)
    {
        tpq_seterr(err, "row group %zu, column %zu: chunk path \"%s\" is not the column \"%s\"",
                   g, i, m->path, c->name);
        return -1;
    }
    if (m->codec != TPQ_CODEC_UNCOMPRESSED && m->codec != TPQ_CODEC_ZSTD)
    {
        tpq_seterr(err, "row group %zu, column \"%s\": compression codec %d is not supported (UNCOMPRESSED, ZSTD)",
                   g, c->name, m->codec);
        return -1;
    }
    if (m->num_values != rg->num_rows)
    {
        tpq_seterr(err, "row group %zu, column \"%s\": %lld values for %lld rows",
                   g, c->name, (long long) m->num_values, (long long) rg->num_rows);
        return -1;
    }
    if (start < 4 || m->total_compressed < 0 || (uint64_t) start > r->data_end ||
        (uint64_t) m->total_compressed > r->data_end - (uint64_t) start ||
        m->data_page_offset < start || m->data_page_offset > start + m->total_compressed ||
        (m->has_dictionary_page_offset && m->dictionary_page_offset >= m->data_page_offset))
    {
        tpq_seterr(err, "row group %zu, column \"%s\": chunk at offset %lld of %lld bytes lies outside "
                   "the data area [4, %llu)", g, c->name, (long long) start,
                   (long long) m->total_compressed, (unsigned long long) r->data_end);
        return -1;
    }
    ci->codec = (tpq_codec) m->codec;
    ci->num_values = m->num_values;
    ci->compressed_size = m->total_compressed;
    ci->uncompressed_size = m->total_uncompressed;
    ci->dictionary = m->has_dictionary_page_offset;
    if (m->has_stats)
    {
        const pq_stats *s = &m->stats;
        bool bounds = r->meta.column_orders_type_defined;

        if (bounds && ((s->has_min && w && s->min_len != w) || (s->has_max && w && s->max_len != w)))
        {
            tpq_seterr(err, "row group %zu, column \"%s\": statistics bound of the wrong width", g, c->name);
            return -1;
        }
        ci->stats.has_null_count = s->has_null_count;
        ci->stats.null_count = s->null_count;
        if (s->has_null_count && (s->null_count > rg->num_rows || (!c->nullable && s->null_count > 0)))
        {
            tpq_seterr(err, "row group %zu, column \"%s\": null_count %lld impossible for %lld rows",
                       g, c->name, (long long) s->null_count, (long long) rg->num_rows);
            return -1;
        }
        ci->stats.has_min = bounds && s->has_min;
        ci->stats.has_max = bounds && s->has_max;
        ci->stats.min = s->min;
        ci->stats.min_len = s->min_len;
        ci->stats.max = s->max;
        ci->stats.max_len = s->max_len;
        ci->stats.min_exact = s->has_min_exact ? s->min_exact : 1;
        ci->stats.max_exact = s->has_max_exact ? s->max_exact : 1;
    }
    return 0;
}

static int
check_row_groups(tpq_reader *r, tpq_err *err)
{
    pq_file_meta *m = &r->meta;
    int64_t total = 0;
    size_t g, i;

    if (m->num_rows < 0)
    {
        tpq_seterr(err, "negative num_rows");
        return -1;
    }
    if (m->ncolumn_orders != 0 && m->ncolumn_orders != r->ncols)
    {
        tpq_seterr(err, "%u column orders for %zu columns", m->ncolumn_orders, r->ncols);
        return -1;
    }
    r->chunks = arena_alloc(&r->arena, (size_t) m->nrow_groups * r->ncols * sizeof(tpq_chunk_info) + 1);
    if (r->chunks == NULL)
    {
        tpq_seterr(err, "out of memory reading the row groups");
        return -1;
    }
    for (g = 0; g < m->nrow_groups; g++)
    {
        const pq_row_group *rg = &m->row_groups[g];

        if (rg->ncolumns != r->ncols)
        {
            tpq_seterr(err, "row group %zu has %u column chunks, the schema %zu columns", g, rg->ncolumns, r->ncols);
            return -1;
        }
        if (rg->num_rows < 0 || rg->num_rows > r->opt.max_rows)
        {
            tpq_seterr(err, "row group %zu: %lld rows (the cap is %lld)", g,
                       (long long) rg->num_rows, (long long) r->opt.max_rows);
            return -1;
        }
        total += rg->num_rows;
        for (i = 0; i < r->ncols; i++)
            if (check_chunk(r, g, i, rg, err) < 0)
                return -1;
    }
    if (total != m->num_rows)
    {
        tpq_seterr(err, "row groups hold %lld rows, the footer says %lld", (long long) total, (long long) m->num_rows);
        return -1;
    }
    return 0;
}

tpq_reader *
tpq_reader_open(const tpq_source *src, const tpq_read_options *opt,
                const tpq_alloc *alloc, tpq_err *err)
{
    tpq_alloc a = tpq_alloc_or_default(alloc);
    tpq_reader *r;
    uint8_t head[4], tail[8];
    uint32_t flen;
    tpq_tr t;

    if (src == NULL || src->read == NULL)
    {
        tpq_seterr(err, "no input source");
        return NULL;
    }
    r = tpq_malloc(&a, sizeof(*r));
    if (r == NULL)
    {
        tpq_seterr(err, "out of memory opening the reader");
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    r->alloc = a;
    r->src = *src;
    if (opt)
        r->opt = *opt;
    if (r->opt.max_footer_bytes == 0)
        r->opt.max_footer_bytes = 64u << 20;
    if (r->opt.max_chunk_bytes == 0)
        r->opt.max_chunk_bytes = (size_t) 1 << 30;
    if (r->opt.max_page_bytes == 0)
        r->opt.max_page_bytes = 256u << 20;
    if (r->opt.max_rows <= 0)
        r->opt.max_rows = 32 << 20;
    arena_init(&r->arena, &r->alloc, 0);

    if (src->size < 12)
    {
        tpq_seterr(err, "file of %llu bytes is too short for Parquet (at least 12)", (unsigned long long) src->size);
        goto fail;
    }
    if (src_read(r, 0, head, 4, err) < 0 || src_read(r, src->size - 8, tail, 8, err) < 0)
        goto fail;
    if (memcmp(head, "PAR1", 4) != 0)
    {
        tpq_seterr(err, "wrong magic at offset 0 (not a Parquet file)");
        goto fail;
    }
    if (memcmp(tail + 4, "PARE", 4) == 0)
    {
        tpq_seterr(err, "encrypted Parquet footer (PARE) is not supported");
        goto fail;
    }
    if (memcmp(tail + 4, "PAR1", 4) != 0)
    {
        tpq_seterr(err, "wrong magic at offset %llu (truncated or not a Parquet file)",
                   (unsigned long long) (src->size - 4));
        goto fail;
    }
    flen = tpq_rd_le32(tail);
    if ((uint64_t) flen > src->size - 12 || flen == 0)
    {
        tpq_seterr(err, "footer length %u at offset %llu does not fit in the %llu-byte file",
                   flen, (unsigned long long) (src->size - 8), (unsigned long long) src->size);
        goto fail;
    }
    if (flen > r->opt.max_footer_bytes)
    {
        tpq_seterr(err, "footer of %u bytes exceeds the cap of %zu", flen, r->opt.max_footer_bytes);
        goto fail;
    }
    r->footer_off = src->size - 8 - flen;
    r->data_end = r->footer_off;
    r->footer = tpq_malloc(&r->alloc, flen);
    if (r->footer == NULL)
    {
        tpq_seterr(err, "out of memory for a footer of %u bytes", flen);
        goto fail;
    }
    if (src_read(r, r->footer_off, r->footer, flen, err) < 0)
        goto fail;
    r->arena.cap = (size_t) flen * 32 + (1u << 20);
    tr_init(&t, r->footer, flen, r->footer_off, err);
    if (pq_read_file_meta(&t, &r->arena, &r->meta) < 0)
        goto fail;
    if (check_schema(r, err) < 0 || check_row_groups(r, err) < 0)
        goto fail;
    return r;

fail:
    tpq_reader_close(r);
    return NULL;
}

int64_t tpq_reader_num_rows(const tpq_reader *r) { return r->meta.num_rows; }
size_t tpq_reader_num_columns(const tpq_reader *r) { return r->ncols; }
size_t tpq_reader_num_row_groups(const tpq_reader *r) { return r->meta.nrow_groups; }
size_t tpq_reader_num_kv(const tpq_reader *r) { return r->meta.nkv; }
const char *tpq_reader_created_by(const tpq_reader *r) { return r->meta.created_by; }

const tpq_column_info *
tpq_reader_column(const tpq_reader *r, size_t col)
{
    return col < r->ncols ? &r->cols[col] : NULL;
}

int
tpq_reader_find_column(const tpq_reader *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->ncols; i++)
        if (strcmp(r->cols[i].name, name) == 0)
            return (int) i;
    return -1;
}

int64_t
tpq_reader_row_group_rows(const tpq_reader *r, size_t rg)
{
    return rg < r->meta.nrow_groups ? r->meta.row_groups[rg].num_rows : -1;
}

const tpq_chunk_info *
tpq_reader_chunk(const tpq_reader *r, size_t rg, size_t col)
{
    if (rg >= r->meta.nrow_groups || col >= r->ncols)
        return NULL;
    return &r->chunks[rg * r->ncols + col];
}

void
tpq_reader_kv(const tpq_reader *r, size_t i, const char **key, const char **value)
{
    *key = i < r->meta.nkv ? r->meta.kv[i].key : NULL;
    *value = i < r->meta.nkv ? r->meta.kv[i].value : NULL;
}

const char *
tpq_reader_kv_get(const tpq_reader *r, const char *key)
{
    size_t i;

    for (i = 0; i < r->meta.nkv; i++)
        if (strcmp(r->meta.kv[i].key, key) == 0)
            return r->meta.kv[i].value;
    return NULL;
}

/* ------------------------------------------------------------ decoding */

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
    if (src_read(r, start, chunk, len, err) < 0)
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
