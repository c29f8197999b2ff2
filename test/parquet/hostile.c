/*
 * hostile.c: the reader against hostile files.  Valid files of the writer
 * are broken on purpose, one fault at a time: truncated, wrong magic,
 * footer lengths that do not fit, corrupted Thrift, chunk ranges past the
 * data area, wrong page sizes, wrong value counts, dictionary indexes out
 * of range, unsupported codecs, encodings and page types, nested and
 * repeated schemas, out-of-range INT(16) values.  Each must give an error
 * naming the problem (checked by substring), never a crash; then every
 * truncation and a sweep of single-byte corruptions run through the reader
 * (built with ASan/UBSan by run.sh) to show none crashes.
 *
 * Footer faults are made by decoding the footer, changing the structure and
 * encoding it again with the module's own encoders.
 */
#include <stdlib.h>
#include <string.h>

#include "tpq_int.h"
#include "tables.h"

static int ntest, nfail;

static void
check(int cond, const char *name, const char *detail)
{
    ntest++;
    printf("%s %d - %s\n", cond ? "ok" : "not ok", ntest, name);
    if (!cond)
    {
        nfail++;
        if (detail)
            printf("#   %s\n", detail);
    }
}

/* Opens and reads every chunk, with small caps; 0 or -1 with err. */
static int
read_all(const uint8_t *p, size_t n, tpq_err *err)
{
    tpq_read_options o = {1 << 20, 8 << 20, 8 << 20, 1 << 20};

    return tbl_read_all(p, n, &o, NULL, err);
}

static void
expect_error(const uint8_t *p, size_t n, const char *needle, const char *name)
{
    tpq_err err = {{0}};
    char detail[600];
    int rc = read_all(p, n, &err);

    snprintf(detail, sizeof(detail), "%s", rc == 0 ? "read without an error" : err.msg);
    check(rc < 0 && strstr(err.msg, needle) != NULL, name, detail);
    if (rc < 0)
        printf("#   -> %s\n", err.msg);
}

/* A valid file of a table kind, with some options changed. */
static uint8_t *
make(const char *kind, tpq_codec codec, tpq_dict_mode dict, size_t *len)
{
    tbl t;
    tpq_err err;
    uint8_t *out = NULL;

    tbl_build(&t, kind);
    t.opt.codec = codec;
    if (dict != (tpq_dict_mode) -1)
        for (size_t i = 0; i < t.ncols; i++)
            t.cols[i].def.dict = dict;
    if (tbl_write_mem(&t, &out, len, &err) < 0)
    {
        fprintf(stderr, "write %s: %s\n", kind, err.msg);
        exit(2);
    }
    tbl_free(&t);
    return out;
}

/* ------------------------------------------------- footer re-encoding */

typedef struct footer
{
    tpq_arena arena;
    pq_file_meta m;
    uint64_t off;
    uint32_t len;
} footer;

static void
footer_decode(const uint8_t *p, size_t n, footer *f)
{
    tpq_tr r;
    tpq_err err;

    f->len = tpq_rd_le32(p + n - 8);
    f->off = n - 8 - f->len;
    arena_init(&f->arena, NULL, 64 << 20);
    tr_init(&r, p + f->off, f->len, f->off, &err);
    if (pq_read_file_meta(&r, &f->arena, &f->m) < 0)
    {
        fprintf(stderr, "footer: %s\n", err.msg);
        exit(2);
    }
}

/* The file with its footer replaced by the encoding of f->m. */
static uint8_t *
footer_encode(const uint8_t *p, footer *f, size_t *outlen)
{
    tpq_buf b;
    tpq_tw w;
    uint32_t i, j;
    uint8_t *out;

    tpq_buf_init(&b, NULL);
    tw_init(&w, &b);
    tw_struct_begin(&w);
    tw_i32(&w, 1, f->m.version);
    tw_list_begin(&w, 2, TT_STRUCT, f->m.nschema);
    for (i = 0; i < f->m.nschema; i++)
        pq_write_schema_elem(&w, &f->m.schema[i]);
    tw_i64(&w, 3, f->m.num_rows);
    tw_list_begin(&w, 4, TT_STRUCT, f->m.nrow_groups);
    for (i = 0; i < f->m.nrow_groups; i++)
    {
        pq_row_group *g = &f->m.row_groups[i];

        tw_struct_begin(&w);
        tw_list_begin(&w, 1, TT_STRUCT, g->ncolumns);
        for (j = 0; j < g->ncolumns; j++)
            pq_write_column_chunk(&w, &g->columns[j], g->columns[j].data_page_offset);
        tw_i64(&w, 2, g->total_byte_size);
        tw_i64(&w, 3, g->num_rows);
        tw_struct_end(&w);
    }
    tw_list_begin(&w, 5, TT_STRUCT, f->m.nkv);
    for (i = 0; i < f->m.nkv; i++)
        pq_write_kv(&w, f->m.kv[i].key, f->m.kv[i].value);
    tw_list_begin(&w, 7, TT_STRUCT, f->m.ncolumn_orders);
    for (i = 0; i < f->m.ncolumn_orders; i++)
    {
        tw_struct_begin(&w);
        tw_struct_field_begin(&w, 1);
        tw_struct_end(&w);
        tw_struct_end(&w);
    }
    tw_struct_end(&w);
    *outlen = f->off + b.len + 8;
    out = malloc(*outlen);
    memcpy(out, p, f->off);
    memcpy(out + f->off, b.data, b.len);
    tpq_wr_le32(out + f->off + b.len, (uint32_t) b.len);
    memcpy(out + f->off + b.len + 4, "PAR1", 4);
    tpq_buf_free(&b);
    return out;
}

typedef void (*footer_fn)(pq_file_meta *m);

static void
footer_case(const uint8_t *p, size_t n, footer_fn fn, const char *needle, const char *name)
{
    footer f;
    size_t len;
    uint8_t *q;

    footer_decode(p, n, &f);
    fn(&f.m);
    q = footer_encode(p, &f, &len);
    expect_error(q, len, needle, name);
    free(q);
    arena_free(&f.arena);
}

static void f_chunk_past_end(pq_file_meta *m) { m->row_groups[0].columns[1].total_compressed += 1 << 20; }
static void f_offset_into_footer(pq_file_meta *m) { m->row_groups[0].columns[0].data_page_offset = 2; }
static void f_values(pq_file_meta *m) { m->row_groups[0].columns[2].num_values += 1; }
static void f_rows(pq_file_meta *m) { m->num_rows += 5; }
static void f_type(pq_file_meta *m) { m->row_groups[0].columns[0].type = PQ_INT64; }
static void f_codec(pq_file_meta *m) { m->row_groups[0].columns[3].codec = 1; }
static void f_nested(pq_file_meta *m) { m->schema[2].has_num_children = true; m->schema[2].num_children = 1; }
static void f_repeated(pq_file_meta *m) { m->schema[1].repetition = PQ_REPEATED; }
static void f_path(pq_file_meta *m) { m->row_groups[0].columns[1].path = "nope"; }
static void f_no_columns(pq_file_meta *m) { m->nschema = 1; }
static void f_group_cols(pq_file_meta *m) { m->row_groups[0].ncolumns -= 1; }
static void f_types_kv(pq_file_meta *m)
{
    for (uint32_t i = 0; i < m->nkv; i++)
        if (strcmp(m->kv[i].key, "trace.column_types") == 0)
            m->kv[i].value = "bool bool";
}
static void f_rows_cap(pq_file_meta *m) { m->row_groups[0].num_rows = (int64_t) 1 << 40; m->num_rows = m->row_groups[0].num_rows; }
static void f_unsigned(pq_file_meta *m) { m->schema[3].int_signed = false; }
static void f_stats_width(pq_file_meta *m) { m->row_groups[0].columns[6].stats.min_len = 3; }

/* ------------------------------------------------- page header patching */

/* Offset of the first page of chunk (g, i), from the footer. */
static uint64_t
page_at(const uint8_t *p, size_t n, size_t g, size_t i, bool dict)
{
    footer f;
    uint64_t off;

    footer_decode(p, n, &f);
    off = (uint64_t) (dict ? f.m.row_groups[g].columns[i].dictionary_page_offset
                      : f.m.row_groups[g].columns[i].data_page_offset);
    arena_free(&f.arena);
    return off;
}

typedef void (*page_fn)(pq_page_header *h);

/* Re-encodes the page header at off after fn; the new header must have the
 * same length (the mutations keep varint lengths).  Returns the body offset. */
static size_t
patch_page(uint8_t *p, size_t n, uint64_t off, page_fn fn)
{
    pq_page_header h;
    tpq_tr r;
    tpq_err err;
    tpq_buf b;
    tpq_tw w;
    size_t hlen;

    tr_init(&r, p + off, n - off, off, &err);
    if (pq_read_page_header(&r, &h) < 0)
    {
        fprintf(stderr, "page header: %s\n", err.msg);
        exit(2);
    }
    hlen = (size_t) (r.p - r.start);
    if (fn)
    {
        fn(&h);
        tpq_buf_init(&b, NULL);
        tw_init(&w, &b);
        pq_write_page_header(&w, &h);
        if (b.len != hlen)
        {
            fprintf(stderr, "patched header changes length %zu -> %zu\n", hlen, b.len);
            exit(2);
        }
        memcpy(p + off, b.data, b.len);
        tpq_buf_free(&b);
    }
    return off + hlen;
}

static void p_compressed_plus(pq_page_header *h) { h->compressed_size += 1; }
static void p_uncompressed_plus(pq_page_header *h) { h->uncompressed_size += 1; }
static void p_values(pq_page_header *h) { h->num_values = 8000; }
static void p_dict_small(pq_page_header *h) { h->dict_num_values = 1; }
static void p_encoding(pq_page_header *h) { h->encoding = 5; }
static void p_v2(pq_page_header *h) { h->type = PQ_PAGE_DATA_V2; }
static void p_index(pq_page_header *h) { h->type = PQ_PAGE_INDEX; }

typedef struct page_case
{
    const char *kind;
    tpq_codec codec;
    tpq_dict_mode dict;
    size_t col;
    bool dict_page;
    page_fn fn;
    long body_at;               /* >= 0: also overwrite body bytes there */
    const char *body;
    size_t body_len;
    const char *needle, *name;
} page_case;

int
main(void)
{
    size_t n, dn, zn, i;
    uint8_t *plain = make("types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, &n);
    uint8_t *dict = make("types_dict_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_ALWAYS, &dn);
    uint8_t *zstd = make("types_dict_zstd", TPQ_CODEC_ZSTD, (tpq_dict_mode) -1, &zn);
    uint8_t *q = malloc(n + 16);
    tpq_err err;

    /* the baselines read cleanly */
    check(read_all(plain, n, &err) == 0 && read_all(dict, dn, &err) == 0 && read_all(zstd, zn, &err) == 0,
          "baseline files read cleanly", err.msg);
    {
        footer f;
        size_t len;
        uint8_t *x;

        footer_decode(plain, n, &f);
        x = footer_encode(plain, &f, &len);
        check(read_all(x, len, &err) == 0, "re-encoded footer reads (the mutations below start from it)", err.msg);
        free(x);
        arena_free(&f.arena);
    }

    /* the ends of the file */
    expect_error(plain, 0, "too short for Parquet", "empty file");
    expect_error(plain, 11, "too short for Parquet", "11-byte file");
    expect_error(plain, n - 1, "wrong magic at offset", "truncated by one byte");
    expect_error(plain, n / 2, "wrong magic at offset", "truncated in the middle");
    memcpy(q, plain, n);
    memcpy(q, "PAR2", 4);
    expect_error(q, n, "wrong magic at offset 0", "wrong magic at the start");
    memcpy(q, plain, n);
    memcpy(q + n - 4, "PARE", 4);
    expect_error(q, n, "encrypted", "encrypted footer magic");
    memcpy(q, plain, n);
    tpq_wr_le32(q + n - 8, (uint32_t) n);
    expect_error(q, n, "does not fit", "footer length past the start of the file");
    memcpy(q, plain, n);
    tpq_wr_le32(q + n - 8, 0xFFFFFFF0u);
    expect_error(q, n, "does not fit", "footer length of 4 GiB");
    memcpy(q, plain, n);
    tpq_wr_le32(q + n - 8, tpq_rd_le32(plain + n - 8) - 7);
    expect_error(q, n, "corrupt Thrift metadata", "footer length 7 bytes short");
    memcpy(q, plain, n);
    q[n - 8 - tpq_rd_le32(plain + n - 8)] = 0x0D;
    expect_error(q, n, "corrupt Thrift metadata in FileMetaData at offset", "corrupted Thrift: unknown field type");
    memcpy(q, plain, n);
    memset(q + n - 8 - tpq_rd_le32(plain + n - 8) + 20, 0xFF, 40);
    expect_error(q, n, "corrupt Thrift metadata", "corrupted Thrift: 40 bytes of 0xFF in the schema");

    /* the footer's structures */
    footer_case(plain, n, f_chunk_past_end, "outside the data area", "chunk length past the data area");
    footer_case(plain, n, f_offset_into_footer, "outside the data area", "chunk offset inside the magic");
    footer_case(plain, n, f_values, "values for 1500 rows", "chunk value count differs from the row group's rows");
    footer_case(plain, n, f_rows, "row groups hold 1500 rows, the footer says 1505", "footer row count differs");
    footer_case(plain, n, f_type, "chunk type 2 differs", "chunk type differs from the schema");
    footer_case(plain, n, f_codec, "codec 1 is not supported", "SNAPPY chunk refused");
    footer_case(plain, n, f_nested, "nested column", "nested schema refused");
    footer_case(plain, n, f_repeated, "REQUIRED or OPTIONAL", "repeated column refused");
    footer_case(plain, n, f_path, "path \"nope\"", "chunk path differs from the column");
    footer_case(plain, n, f_no_columns, "", "schema without columns refused");
    footer_case(plain, n, f_group_cols, "column chunks, the schema", "row group with a missing chunk");
    footer_case(plain, n, f_types_kv, "names fewer types", "trace.column_types with too few types");
    footer_case(plain, n, f_rows_cap, "the cap is", "row group of 2^40 rows refused before allocating");
    footer_case(plain, n, f_unsigned, "not a type Trace writes", "unsigned INT(16) refused");
    footer_case(plain, n, f_stats_width, "wrong width", "statistics bound of the wrong width");

    /* pages */
    {
        static const page_case cases[] = {
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 6, false, p_compressed_plus, -1, NULL, 0,
             "claims 12001 bytes, 12000 left in the chunk", "page claiming more bytes than its chunk holds"},
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 6, false, p_uncompressed_plus, -1, NULL, 0,
             "uncompressed page at offset 24445 with sizes 12001 and 12000", "uncompressed page whose two sizes differ"},
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 6, false, p_values, -1, NULL, 0,
             "data page of 8000 values where 1500 rows remain", "page with more values than the row group"},
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 6, false, p_encoding, -1, NULL, 0,
             "value encoding 5 not supported", "DELTA_BINARY_PACKED page refused"},
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 6, false, p_v2, -1, NULL, 0,
             "data page v2 not supported", "data page v2 refused"},
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 6, false, p_index, -1, NULL, 0,
             "unexpected page type", "index page refused"},
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 7, false, NULL, 0, "\xff\xff\x00\x00", 4,
             "definition levels run past the page", "definition levels longer than the page"},
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 16, false, NULL, 0, "\x00\x00\x01\x00", 4,
             "PLAIN value runs past the page", "PLAIN byte-array length past the page"},
            {"types_plain_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_OFF, 2, false, NULL, 0, "\x70\x11\x01\x00", 4,
             "value out of range for INT(16)", "INT(16) column holding 70000"},
            {"types_dict_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_ALWAYS, 6, true, p_dict_small, -1, NULL, 0,
             "out of range (1 entries)", "dictionary index out of range"},
            {"types_dict_uncompressed", TPQ_CODEC_UNCOMPRESSED, TPQ_DICT_ALWAYS, 6, false, NULL, 0, "\x21", 1,
             "bit width above 32", "dictionary index bit width 33"},
            {"types_dict_zstd", TPQ_CODEC_ZSTD, (tpq_dict_mode) -1, 6, true, p_uncompressed_plus, -1, NULL, 0,
             "its header says", "zstd page whose declared size is one byte off"},
            {"types_dict_zstd", TPQ_CODEC_ZSTD, (tpq_dict_mode) -1, 12, false, NULL, 0, "\x00\x00\x00\x00", 4,
             "not a zstd frame", "page body that is not a zstd frame"},
            {"types_dict_zstd", TPQ_CODEC_ZSTD, (tpq_dict_mode) -1, 12, false, NULL, 7, "\x55\x55\x55\x55\x55\x55", 6,
             "does not decompress", "corrupted zstd frame"},
        };

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        {
            const page_case *c = &cases[i];
            size_t len;
            uint8_t *f = make(c->kind, c->codec, c->dict, &len);
            uint64_t off = page_at(f, len, 0, c->col, c->dict_page);
            size_t body = patch_page(f, len, off, c->fn);

            if (c->body_at >= 0)
                memcpy(f + body + c->body_at, c->body, c->body_len);
            expect_error(f, len, c->needle, c->name);
            free(f);
        }
    }

    /* every truncation, and single-byte corruptions everywhere (a small
     * file whole, a larger one at a stride) */
    {
        static const struct { const char *kind; size_t stride; } sweep[] = {{"extremes", 1}, {"nulls", 41}};
        static const uint8_t vals[] = {0x00, 0xFF, 0x7F, 0x80, 0x15, 0x1C};

        for (size_t s = 0; s < 2; s++)
        {
            size_t sn, errors = 0, reads = 0;
            uint8_t *small = make(sweep[s].kind, TPQ_CODEC_ZSTD, (tpq_dict_mode) -1, &sn);
            uint8_t *x = malloc(sn);
            int all_err = 1;
            char name[128];

            for (i = 0; i < sn; i += sweep[s].stride)
                if (read_all(small, i, &err) == 0)
                    all_err = 0;
            snprintf(name, sizeof(name), "%s: every truncation is an error", sweep[s].kind);
            check(all_err, name, NULL);
            for (i = 0; i < sn; i += sweep[s].stride)
                for (size_t k = 0; k < sizeof(vals); k++)
                {
                    if (small[i] == vals[k])
                        continue;
                    memcpy(x, small, sn);
                    x[i] = vals[k];
                    reads++;
                    if (read_all(x, sn, &err) < 0)
                        errors++;
                }
            printf("# %s: %zu single-byte corruptions of a %zu-byte file: %zu errors, %zu read (changed data bytes)\n",
                   sweep[s].kind, reads, sn, errors, reads - errors);
            snprintf(name, sizeof(name), "%s: %zu single-byte corruptions, no crash", sweep[s].kind, reads);
            check(errors > 0, name, NULL);
            free(x);
            free(small);
        }
    }

    free(q);
    free(plain);
    free(dict);
    free(zstd);
    printf("%d passed, %d failed\n", ntest - nfail, nfail);
    return nfail ? 1 : 0;
}
