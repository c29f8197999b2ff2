/*
 * tpq_read.c: the Parquet reader core, opening a file: footer, schema,
 * row groups, column chunks, and the accessors over them (tpq_decode.c
 * decodes the chunks' pages and values).
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

#include "tpq_reader.h"

/* Every read of the file goes through here: bounds first. */
int
reader_read_at(tpq_reader *r, uint64_t off, void *buf, size_t len, tpq_err *err)
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
    if (reader_read_at(r, 0, head, 4, err) < 0 || reader_read_at(r, src->size - 8, tail, 8, err) < 0)
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
    if (reader_read_at(r, r->footer_off, r->footer, flen, err) < 0)
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

