/*
 * tpq_write.c: the streaming Parquet file writer.
 *
 * Layout: "PAR1", then per row group each column chunk in schema order
 * (dictionary page, data pages), then the Thrift FileMetaData, its 4-byte
 * little-endian length and "PAR1".  A row group is written once its column
 * chunks hold row_group_bytes (checked after each batch), so memory is one
 * row group's encoded pages plus the caller's batch.  Each RowGroup's
 * metadata is encoded as soon as the group is written and kept as bytes (a
 * few hundred per column), so the footer costs no per-row memory.
 *
 * The file is deterministic: no clock, no random, no address reaches it.
 * Key-value metadata gets "trace.column_types" (each column's tpq type
 * name, space-separated), which tells the reader what Parquet's types
 * cannot: numeric text and uint256.
 */
#include <string.h>

#include "tpq_chunk.h"

#define TPQ_CREATED_BY "trace version 0.1"

struct tpq_writer
{
    tpq_alloc alloc;
    tpq_write_options opt;
    tpq_sink sink;
    tpq_codec_ctx *codec;
    tpq_column_def *defs;
    tpq_chunk *chunks;
    size_t ncols;
    char *strings;              /* names and key-value copies */
    tpq_kv *kv;
    size_t nkv;
    uint64_t offset, rows, rg_rows;
    size_t nrow_groups;
    tpq_buf rg_meta;            /* encoded RowGroup structs */
    tpq_buf scratch, cbuf, hdr, stats;
    bool failed;
};

void
tpq_write_options_init(tpq_write_options *o)
{
    memset(o, 0, sizeof(*o));
    o->codec = TPQ_CODEC_ZSTD;
    o->zstd_level = 3;
    o->page_bytes = 1u << 20;
    o->page_rows = 20000;
    o->row_group_bytes = 64u << 20;
    o->dict_bytes = 1u << 20;
    o->stats_max_bytes = 64;
}

/* Copies src to dst; returns the end of the copy (at its NUL). */
static char *
put_str(char *dst, const char *src)
{
    size_t n = strlen(src);

    memcpy(dst, src, n + 1);
    return dst + n;
}

static int
sink_write(void *ctx, const void *p, size_t n, tpq_err *err)
{
    tpq_writer *w = ctx;

    if (n == 0)
        return 0;
    if (w->sink.write(w->sink.ctx, p, n, err) < 0)
        return -1;
    w->offset += n;
    return 0;
}

/* The chunk encoder advances the offset itself. */
static int
chunk_emit(void *ctx, const void *p, size_t n, tpq_err *err)
{
    tpq_writer *w = ctx;

    return n ? w->sink.write(w->sink.ctx, p, n, err) : 0;
}

/* Checks the schema and options; copies names and key-values into one block. */
static int
check_and_copy(tpq_writer *w, const tpq_column_def *cols, size_t ncols,
               const tpq_write_options *opt, tpq_err *err)
{
    size_t i, j, total = 0;
    char *s;

    if (ncols == 0 || ncols > TPQ_MAX_COLUMNS)
    {
        tpq_seterr(err, "a schema needs 1 to %d columns, got %zu", TPQ_MAX_COLUMNS, ncols);
        return -1;
    }
    if (opt->codec != TPQ_CODEC_ZSTD && opt->codec != TPQ_CODEC_UNCOMPRESSED)
    {
        tpq_seterr(err, "unsupported codec %d (ZSTD or UNCOMPRESSED)", (int) opt->codec);
        return -1;
    }
    if (opt->page_bytes < 64 || opt->page_bytes > (256u << 20) || opt->page_rows < 1 ||
        opt->page_rows > (1u << 24) || opt->row_group_bytes < 64 || opt->dict_bytes > (1u << 30) ||
        opt->stats_max_bytes < 8 || opt->stats_max_bytes > 65536 || opt->zstd_level < -7 || opt->zstd_level > 22)
    {
        tpq_seterr(err, "write option out of range (page_bytes 64..256 MiB, page_rows 1..16 Mi, "
                   "row_group_bytes >= 64, dict_bytes <= 1 GiB, stats_max_bytes 8..65536, zstd_level -7..22)");
        return -1;
    }
    for (i = 0; i < ncols; i++)
    {
        const tpq_column_def *c = &cols[i];

        if (c->name == NULL || c->name[0] == '\0')
        {
            tpq_seterr(err, "column %zu has no name", i);
            return -1;
        }
        if ((unsigned) c->type >= TPQ_TYPE_COUNT)
        {
            tpq_seterr(err, "column \"%s\": unknown type %d", c->name, (int) c->type);
            return -1;
        }
        if (c->type == TPQ_FIXED && (c->fixed_len < 1 || c->fixed_len > TPQ_MAX_FIXED_LEN))
        {
            tpq_seterr(err, "column \"%s\": fixed_len %d out of range 1..%d", c->name, c->fixed_len, TPQ_MAX_FIXED_LEN);
            return -1;
        }
        if ((unsigned) c->dict > TPQ_DICT_ALWAYS)
        {
            tpq_seterr(err, "column \"%s\": unknown dictionary mode %d", c->name, (int) c->dict);
            return -1;
        }
        for (j = 0; j < i; j++)
            if (strcmp(cols[j].name, c->name) == 0)
            {
                tpq_seterr(err, "column \"%s\" appears twice", c->name);
                return -1;
            }
        total += strlen(c->name) + 1;
    }
    for (i = 0; i < opt->nkv; i++)
    {
        if (opt->kv[i].key == NULL || strncmp(opt->kv[i].key, "trace.column_types", 19) == 0)
        {
            tpq_seterr(err, "key-value %zu: missing or reserved key", i);
            return -1;
        }
        total += strlen(opt->kv[i].key) + 1 + (opt->kv[i].value ? strlen(opt->kv[i].value) + 1 : 0);
    }
    w->strings = tpq_malloc(&w->alloc, total + 1);
    w->defs = tpq_malloc(&w->alloc, ncols * sizeof(tpq_column_def));
    w->kv = tpq_malloc(&w->alloc, (opt->nkv + 1) * sizeof(tpq_kv));
    if (w->strings == NULL || w->defs == NULL || w->kv == NULL)
    {
        tpq_seterr(err, "out of memory opening the writer");
        return -1;
    }
    s = w->strings;
    for (i = 0; i < ncols; i++)
    {
        w->defs[i] = cols[i];
        w->defs[i].name = s;
        s = put_str(s, cols[i].name) + 1;
    }
    for (i = 0; i < opt->nkv; i++)
    {
        w->kv[i].key = s;
        s = put_str(s, opt->kv[i].key) + 1;
        w->kv[i].value = NULL;
        if (opt->kv[i].value)
        {
            w->kv[i].value = s;
            s = put_str(s, opt->kv[i].value) + 1;
        }
    }
    w->nkv = opt->nkv;
    w->opt = *opt;
    w->opt.kv = w->kv;
    return 0;
}

tpq_writer *
tpq_writer_open(const tpq_column_def *cols, size_t ncols, const tpq_write_options *opt,
                const tpq_sink *sink, const tpq_alloc *alloc, tpq_err *err)
{
    tpq_write_options defaults;
    tpq_alloc a = tpq_alloc_or_default(alloc);
    tpq_writer *w;
    size_t i;

    if (opt == NULL)
    {
        tpq_write_options_init(&defaults);
        opt = &defaults;
    }
    if (sink == NULL || sink->write == NULL)
    {
        tpq_seterr(err, "no output sink");
        return NULL;
    }
    w = tpq_malloc(&a, sizeof(*w));
    if (w == NULL)
    {
        tpq_seterr(err, "out of memory opening the writer");
        return NULL;
    }
    memset(w, 0, sizeof(*w));
    w->alloc = a;
    w->sink = *sink;
    tpq_buf_init(&w->rg_meta, &w->alloc);
    tpq_buf_init(&w->scratch, &w->alloc);
    tpq_buf_init(&w->cbuf, &w->alloc);
    tpq_buf_init(&w->hdr, &w->alloc);
    tpq_buf_init(&w->stats, &w->alloc);
    if (check_and_copy(w, cols, ncols, opt, err) < 0)
        goto fail;
    if (w->opt.codec == TPQ_CODEC_ZSTD &&
        (w->codec = codec_create(&w->alloc, w->opt.zstd_level, err)) == NULL)
        goto fail;
    w->chunks = tpq_malloc(&w->alloc, ncols * sizeof(tpq_chunk));
    if (w->chunks == NULL)
    {
        tpq_seterr(err, "out of memory opening the writer");
        goto fail;
    }
    for (i = 0; i < ncols; i++)
        chunk_init(&w->chunks[i], &w->defs[i], &w->opt, w->codec, &w->alloc,
                   &w->scratch, &w->cbuf, &w->hdr);
    w->ncols = ncols;
    if (sink_write(w, "PAR1", 4, err) < 0)
        goto fail;
    return w;

fail:
    tpq_writer_free(w);
    return NULL;
}

void
tpq_writer_free(tpq_writer *w)
{
    size_t i;

    if (w == NULL)
        return;
    for (i = 0; i < w->ncols; i++)
        chunk_free(&w->chunks[i]);
    codec_destroy(w->codec);
    tpq_buf_free(&w->rg_meta);
    tpq_buf_free(&w->scratch);
    tpq_buf_free(&w->cbuf);
    tpq_buf_free(&w->hdr);
    tpq_buf_free(&w->stats);
    tpq_free(&w->alloc, w->chunks);
    tpq_free(&w->alloc, w->defs);
    tpq_free(&w->alloc, w->kv);
    tpq_free(&w->alloc, w->strings);
    {
        tpq_alloc a = w->alloc;

        tpq_free(&a, w);
    }
}

/* Writes every column chunk of the buffered rows and records the RowGroup. */
static int
flush_row_group(tpq_writer *w, tpq_err *err)
{
    tpq_buf cc;
    tpq_tw t;
    int64_t total_uncompressed = 0, total_compressed = 0;
    uint64_t start = w->offset;
    size_t i;

    if (w->nrow_groups >= INT16_MAX)
    {
        tpq_seterr(err, "more than %d row groups: raise row_group_bytes", INT16_MAX);
        return -1;
    }
    tpq_buf_init(&cc, &w->alloc);
    tw_init(&t, &cc);
    for (i = 0; i < w->ncols; i++)
    {
        pq_column_meta m;
        uint64_t at = w->offset;

        if (chunk_finish(&w->chunks[i], &w->offset, chunk_emit, w, &m, &w->stats, err) < 0)
            goto fail;
        total_uncompressed += m.total_uncompressed;
        total_compressed += m.total_compressed;
        pq_write_column_chunk(&t, &m, (int64_t) at);
    }
    /* RowGroup: the ColumnChunks above, then sizes and counts */
    {
        tpq_tw g;

        tw_init(&g, &w->rg_meta);
        tw_struct_begin(&g);
        tw_list_begin(&g, 1, TT_STRUCT, w->ncols);
        if (tpq_buf_put(&w->rg_meta, cc.data, cc.len) < 0)
            g.failed = true;
        tw_i64(&g, 2, total_uncompressed);
        tw_i64(&g, 3, (int64_t) w->rg_rows);
        tw_i64(&g, 5, (int64_t) start);
        tw_i64(&g, 6, total_compressed);
        tw_field(&g, 7, TT_I16);        /* ordinal: an i16, zigzag of n >= 0 is 2n */
        if (tpq_buf_put_varint(&w->rg_meta, (uint64_t) w->nrow_groups << 1) < 0)
            g.failed = true;
        tw_struct_end(&g);
        if (g.failed || t.failed)
        {
            tpq_seterr(err, "out of memory recording a row group");
            goto fail;
        }
    }
    w->nrow_groups++;
    w->rg_rows = 0;
    tpq_buf_free(&cc);
    return 0;

fail:
    tpq_buf_free(&cc);
    return -1;
}

/* Rows go in slices of WRITE_SLICE, the row group budget checked after
 * each, so memory does not grow with the caller's batch size. */
#define WRITE_SLICE 1024

int
tpq_writer_write(tpq_writer *w, const tpq_values *cols, size_t nrows, tpq_err *err)
{
    size_t at, i;

    if (w->failed)
    {
        tpq_seterr(err, "the writer failed earlier");
        return -1;
    }
    if (nrows == 0)
        return 0;
    if (cols == NULL)
    {
        tpq_seterr(err, "no column values");
        return -1;
    }
    if (w->rows + nrows > INT64_MAX / 2)
    {
        tpq_seterr(err, "too many rows");
        w->failed = true;
        return -1;
    }
    for (at = 0; at < nrows; at += WRITE_SLICE)
    {
        size_t n = nrows - at < WRITE_SLICE ? nrows - at : WRITE_SLICE, buffered = 0;

        for (i = 0; i < w->ncols; i++)
        {
            tpq_values v;

            v.nulls = cols[i].nulls ? cols[i].nulls + at : NULL;
            v.v.b = cols[i].v.b ? (const uint8_t *) cols[i].v.b + at * tpq_values_size(w->defs[i].type) : NULL;
            if (chunk_append(&w->chunks[i], &v, n, w->rows, err) < 0)
            {
                w->failed = true;
                return -1;
            }
            buffered += chunk_buffered(&w->chunks[i]);
        }
        w->rows += n;
        w->rg_rows += n;
        if (buffered >= w->opt.row_group_bytes && flush_row_group(w, err) < 0)
        {
            w->failed = true;
            return -1;
        }
    }
    return 0;
}

/* FileMetaData: schema (a root and one element per column), row groups,
 * key-values, created_by, column orders (TYPE_ORDER for every column). */
static int
write_footer(tpq_writer *w, tpq_err *err)
{
    tpq_buf f;
    tpq_tw t;
    pq_schema_elem root, e;
    size_t i, typeslen = 0;
    char *types;
    int rc = -1;

    tpq_buf_init(&f, &w->alloc);
    for (i = 0; i < w->ncols; i++)
        typeslen += strlen(tpq_type_name(w->defs[i].type)) + 1;
    types = tpq_malloc(&w->alloc, typeslen + 1);
    if (types == NULL)
        goto oom;
    types[0] = '\0';
    {
        char *s = types;

        for (i = 0; i < w->ncols; i++)
        {
            if (i)
                *s++ = ' ';
            s = put_str(s, tpq_type_name(w->defs[i].type));
        }
    }
    tw_init(&t, &f);
    tw_struct_begin(&t);
    tw_i32(&t, 1, 2);
    tw_list_begin(&t, 2, TT_STRUCT, w->ncols + 1);
    memset(&root, 0, sizeof(root));
    root.name = "schema";
    root.has_num_children = true;
    root.num_children = (int32_t) w->ncols;
    pq_write_schema_elem(&t, &root);
    for (i = 0; i < w->ncols; i++)
    {
        tpq_schema_for(&w->defs[i], &e);
        pq_write_schema_elem(&t, &e);
    }
    tw_i64(&t, 3, (int64_t) w->rows);
    tw_list_begin(&t, 4, TT_STRUCT, w->nrow_groups);
    if (tpq_buf_put(&f, w->rg_meta.data, w->rg_meta.len) < 0)
        goto oom;
    tw_list_begin(&t, 5, TT_STRUCT, w->nkv + 1);
    for (i = 0; i < w->nkv; i++)
        pq_write_kv(&t, w->kv[i].key, w->kv[i].value);
    pq_write_kv(&t, "trace.column_types", types);
    tw_string(&t, 6, TPQ_CREATED_BY);
    tw_list_begin(&t, 7, TT_STRUCT, w->ncols);
    for (i = 0; i < w->ncols; i++)
    {
        tw_struct_begin(&t);
        tw_struct_field_begin(&t, 1);
        tw_struct_end(&t);
        tw_struct_end(&t);
    }
    tw_struct_end(&t);
    if (t.failed || f.len > UINT32_MAX || tpq_buf_put_le32(&f, (uint32_t) f.len) < 0 ||
        tpq_buf_put(&f, "PAR1", 4) < 0)
        goto oom;
    rc = sink_write(w, f.data, f.len, err);
    goto done;

oom:
    tpq_seterr(err, "out of memory writing the footer");
done:
    tpq_free(&w->alloc, types);
    tpq_buf_free(&f);
    return rc;
}

int
tpq_writer_close(tpq_writer *w, tpq_err *err)
{
    int rc = -1;

    if (w == NULL)
    {
        tpq_seterr(err, "no writer");
        return -1;
    }
    if (w->failed)
        tpq_seterr(err, "the writer failed earlier");
    else if (w->rg_rows > 0 && flush_row_group(w, err) < 0)
        ;
    else
        rc = write_footer(w, err);
    tpq_writer_free(w);
    return rc;
}

uint64_t
tpq_writer_bytes(const tpq_writer *w)
{
    return w->offset;
}

uint64_t
tpq_writer_rows(const tpq_writer *w)
{
    return w->rows;
}
