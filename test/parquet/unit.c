/*
 * unit.c: unit tests of the Parquet format module: Thrift compact known
 * answers and round trips, skipping of unknown fields, hostile Thrift, the
 * RLE/bit-packed hybrid (Encodings.md's example, round trips, errors),
 * bound truncation, writer argument checks, a known-answer first page, the
 * allocator contract (no leak; every allocation failure handled) and the
 * writer's memory bound.
 *
 * Prints "ok N - ..." / "not ok N - ..."; exits 1 when anything failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpq_int.h"
#include "tables.h"

static int ntest, nfail;

static void
check(int cond, const char *name, const char *detail)
{
    ntest++;
    if (cond)
        printf("ok %d - %s\n", ntest, name);
    else
    {
        nfail++;
        printf("not ok %d - %s\n", ntest, name);
        if (detail && *detail)
            printf("#   %s\n", detail);
    }
}

static int
bytes_eq(const tpq_buf *b, const uint8_t *want, size_t n)
{
    return b->len == n && memcmp(b->data, want, n) == 0;
}

static void
hexdump(const uint8_t *p, size_t n, char *out, size_t outlen)
{
    size_t i, k = 0;

    for (i = 0; i < n && k + 4 < outlen; i++)
        k += (size_t) snprintf(out + k, outlen - k, "%02x ", p[i]);
    out[k] = '\0';
}

/* ------------------------------------------------------------- Thrift */

static void
test_thrift_known_answers(void)
{
    tpq_buf b;
    tpq_tw w;
    char hx[256];
    static const uint8_t want_ints[] = {0x15, 0x00, 0x15, 0x01, 0x15, 0x02, 0x16, 0xFE, 0xFF, 0xFF, 0xFF, 0x1F,
                                        0x05, 0x28, 0x80, 0x01, 0x11, 0x12, 0x00};
    /* PageHeader{DATA_PAGE, 20, 20, DataPageHeader{2, PLAIN, RLE, RLE}} */
    static const uint8_t want_page[] = {0x15, 0x00, 0x15, 0x28, 0x15, 0x28, 0x2C, 0x15, 0x04, 0x15, 0x00,
                                        0x15, 0x06, 0x15, 0x06, 0x00, 0x00};
    pq_page_header h;

    tpq_buf_init(&b, NULL);
    tw_init(&w, &b);
    tw_struct_begin(&w);
    tw_i32(&w, 1, 0);               /* zigzag 0 -> 00 */
    tw_i32(&w, 2, -1);              /* -> 01 */
    tw_i32(&w, 3, 1);               /* -> 02 */
    tw_i64(&w, 4, 4294967295LL);    /* -> fe ff ff ff 1f */
    tw_i32(&w, 20, 64);             /* delta 16: long form 05 28, zigzag 128 -> 80 01 */
    tw_bool(&w, 21, true);          /* 0x11 */
    tw_bool(&w, 22, false);         /* 0x12 */
    tw_struct_end(&w);
    hexdump(b.data, b.len, hx, sizeof(hx));
    check(!w.failed && bytes_eq(&b, want_ints, sizeof(want_ints)), "thrift: zigzag varints, long field ids, bools", hx);

    tpq_buf_reset(&b);
    tw_init(&w, &b);
    memset(&h, 0, sizeof(h));
    h.type = PQ_PAGE_DATA;
    h.uncompressed_size = h.compressed_size = 20;
    h.has_data = true;
    h.num_values = 2;
    h.encoding = PQ_ENC_PLAIN;
    h.def_encoding = h.rep_encoding = PQ_ENC_RLE;
    pq_write_page_header(&w, &h);
    hexdump(b.data, b.len, hx, sizeof(hx));
    check(bytes_eq(&b, want_page, sizeof(want_page)), "thrift: PageHeader known-answer bytes", hx);

    {
        pq_page_header g;
        tpq_tr r;
        tpq_err err;

        tr_init(&r, b.data, b.len, 100, &err);
        check(pq_read_page_header(&r, &g) == 0 && g.type == 0 && g.uncompressed_size == 20 &&
              g.compressed_size == 20 && g.has_data && g.num_values == 2 && g.def_encoding == 3 &&
              r.p == r.end, "thrift: PageHeader round trip", err.msg);
    }
    tpq_buf_free(&b);
}

/* A PageHeader with unknown fields of every type in between (a newer
 * writer's additions) still decodes. */
static void
test_thrift_skip_unknown(void)
{
    tpq_buf b;
    tpq_tw w;
    pq_page_header h;
    tpq_tr r;
    tpq_err err;
    static const uint8_t dbl[8] = {0};

    tpq_buf_init(&b, NULL);
    tw_init(&w, &b);
    tw_struct_begin(&w);
    tw_i32(&w, 1, PQ_PAGE_DICTIONARY);
    tw_i32(&w, 2, 7);
    tw_i32(&w, 3, 5);
    tw_field(&w, 4, TT_DOUBLE);             /* crc as a double: skipped */
    tpq_buf_put(&b, dbl, 8);
    tw_list_begin(&w, 6, TT_STRUCT, 2);     /* unknown list of structs */
    for (int i = 0; i < 2; i++)
    {
        tw_struct_begin(&w);
        tw_binary(&w, 1, "xyz", 3);
        tw_list_begin(&w, 2, TT_TRUE, 3);   /* list of bools: one byte each */
        tpq_buf_put(&b, "\x01\x02\x01", 3);
        tw_struct_end(&w);
    }
    tw_struct_field_begin(&w, 7);
    tw_i32(&w, 1, 9);
    tw_i32(&w, 2, PQ_ENC_PLAIN);
    tw_bool(&w, 3, true);
    tw_struct_end(&w);
    tw_field(&w, 40, TT_MAP);               /* unknown map<i32, binary> */
    tpq_buf_put_varint(&b, 1);
    tpq_buf_put_u8(&b, TT_I32 << 4 | TT_BINARY);
    tpq_buf_put_varint(&b, 6);
    tpq_buf_put_varint(&b, 2);
    tpq_buf_put(&b, "ab", 2);
    tw_struct_end(&w);
    tr_init(&r, b.data, b.len, 0, &err);
    check(pq_read_page_header(&r, &h) == 0 && h.type == PQ_PAGE_DICTIONARY && h.has_dict &&
          h.dict_num_values == 9 && r.p == r.end, "thrift: unknown fields of every type are skipped", err.msg);
    tpq_buf_free(&b);
}

static int
decode_fails(const uint8_t *p, size_t n, const char *needle, char *msg, size_t msglen)
{
    pq_page_header h;
    tpq_tr r;
    tpq_err err = {{0}};

    tr_init(&r, p, n, 1000, &err);
    if (pq_read_page_header(&r, &h) == 0)
    {
        snprintf(msg, msglen, "decoded");
        return 0;
    }
    snprintf(msg, msglen, "%s", err.msg);
    return strstr(err.msg, needle) != NULL && strstr(err.msg, "offset 10") != NULL;
}

static void
test_thrift_hostile(void)
{
    char msg[512];
    uint8_t deep[200];
    size_t i;

    {
        static const uint8_t p[] = {0x15, 0x80, 0x80};
        check(decode_fails(p, sizeof(p), "varint runs past the end", msg, sizeof(msg)), "thrift: truncated varint", msg);
    }
    {
        /* field 9 (unknown, skipped) holds an 11-byte varint */
        static const uint8_t p[] = {0x96, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
        check(decode_fails(p, sizeof(p), "varint", msg, sizeof(msg)), "thrift: varint longer than 10 bytes", msg);
    }
    {
        static const uint8_t p[] = {0x99, 0xF5, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00};
        check(decode_fails(p, sizeof(p), "cannot fit", msg, sizeof(msg)), "thrift: list claiming 2^32 elements", msg);
    }
    {
        static const uint8_t p[] = {0x98, 0x20, 'a'};
        check(decode_fails(p, sizeof(p), "binary of 32 bytes runs past the end", msg, sizeof(msg)),
              "thrift: binary length past the end", msg);
    }
    {
        static const uint8_t p[] = {0x15, 0x00, 0x15, 0x02};
        check(decode_fails(p, sizeof(p), "no STOP", msg, sizeof(msg)), "thrift: struct without STOP", msg);
    }
    {
        static const uint8_t p[] = {0x25, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00};
        check(decode_fails(p, sizeof(p), "i32 out of range", msg, sizeof(msg)), "thrift: i32 field out of range", msg);
    }
    {
        static const uint8_t p[] = {0x15, 0x00, 0x15, 0x02, 0x00};      /* no compressed_page_size */
        check(decode_fails(p, sizeof(p), "lacks type or sizes", msg, sizeof(msg)),
              "thrift: required fields checked", msg);
    }
    /* field 9 opens 100 nested unknown structs */
    deep[0] = 0x9C;
    for (i = 1; i < 100; i++)
        deep[i] = 0x1C;
    memset(deep + 100, 0, 100);
    check(decode_fails(deep, sizeof(deep), "nesting deeper than 32", msg, sizeof(msg)), "thrift: nesting depth capped", msg);
    {
        static const uint8_t p[] = {0x0D, 0x00};
        check(decode_fails(p, sizeof(p), "unknown field type 13", msg, sizeof(msg)), "thrift: unknown field type", msg);
    }
}

/* ---------------------------------------------------------------- RLE */

static void
test_rle(void)
{
    tpq_buf b;
    uint32_t v[4096], back[4096];
    char hx[128], msg[512];
    tpq_err err;
    static const uint8_t want_bp[] = {0x03, 0x88, 0xC6, 0xFA};
    static const uint8_t want_rle[] = {0xC8, 0x01, 0x05};
    int ok_all = 1, w;
    uint64_t s = 7;

    tpq_buf_init(&b, NULL);
    for (int i = 0; i < 8; i++)
        v[i] = (uint32_t) i;
    rle_encode(&b, v, 8, 3);
    hexdump(b.data, b.len, hx, sizeof(hx));
    check(bytes_eq(&b, want_bp, sizeof(want_bp)), "rle: Encodings.md bit-packing example (0..7, width 3)", hx);
    tpq_buf_reset(&b);
    for (int i = 0; i < 100; i++)
        v[i] = 5;
    rle_encode(&b, v, 100, 3);
    hexdump(b.data, b.len, hx, sizeof(hx));
    check(bytes_eq(&b, want_rle, sizeof(want_rle)), "rle: a run of 100 fives is one repeated run", hx);

    for (w = 0; w <= 32 && ok_all; w++)
        for (int pattern = 0; pattern < 4 && ok_all; pattern++)
        {
            size_t n = 1 + (size_t) (s % 4000);
            uint64_t mask = w == 32 ? 0xFFFFFFFFull : ((1ull << w) - 1);

            for (size_t i = 0; i < n; i++)
            {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                v[i] = (uint32_t) ((pattern == 0 ? s >> 33 : pattern == 1 ? (i / 13) * 7919 : pattern == 2 ? (s >> 60) % 2 : i % 3) & mask);
            }
            tpq_buf_reset(&b);
            if (rle_encode(&b, v, n, w) < 0 || b.len > rle_bound(n, w) + 16 * n / 8 ||
                rle_decode(b.data, b.len, w, back, n, 0, &err) < 0 || memcmp(v, back, n * 4) != 0)
            {
                snprintf(msg, sizeof(msg), "width %d pattern %d n %zu: %s", w, pattern, n, err.msg);
                ok_all = 0;
            }
        }
    check(ok_all, "rle: round trips at every bit width 0..32, runs and noise", ok_all ? "" : msg);

    {
        static const uint8_t trunc[] = {0x05, 0xFF};   /* 2 groups of width 8: 16 bytes needed */
        int rc = rle_decode(trunc, sizeof(trunc), 8, back, 16, 40, &err);
        check(rc < 0 && strstr(err.msg, "needs 16 bytes") && strstr(err.msg, "offset 41"),
              "rle: truncated bit-packed run names the offset", err.msg);
    }
    {
        static const uint8_t wide[] = {0x04, 0x09};     /* run of 2, value 9 in width 3 */
        int rc = rle_decode(wide, sizeof(wide), 3, back, 2, 0, &err);
        check(rc < 0 && strstr(err.msg, "wider than 3 bits"), "rle: repeated value wider than the bit width", err.msg);
    }
    {
        static const uint8_t zero[] = {0x00, 0x00, 0x00};
        int rc = rle_decode(zero, sizeof(zero), 1, back, 5, 0, &err);
        check(rc < 0 && strstr(err.msg, "zero values"), "rle: a run of zero values is refused", err.msg);
    }
    tpq_buf_free(&b);
}

/* ---------------------------------------------------------- truncation */

static void
test_truncate(void)
{
    uint8_t a[16];
    long n;

    memcpy(a, "abcdef", 6);
    n = tpq_truncate_bound(TPQ_STRING, a, 6, 3, true);
    check(n == 3 && memcmp(a, "abd", 3) == 0, "bounds: upper bound 'abcdef' cut at 3 is 'abd'", "");
    memcpy(a, "abcdef", 6);
    n = tpq_truncate_bound(TPQ_STRING, a, 6, 3, false);
    check(n == 3 && memcmp(a, "abc", 3) == 0, "bounds: lower bound is the prefix", "");
    memcpy(a, "a\xc3\xa9\xc3\xa9", 5);                  /* aéé, cut at 2 falls inside é */
    n = tpq_truncate_bound(TPQ_STRING, a, 5, 2, false);
    check(n == 1 && a[0] == 'a', "bounds: text is cut on a character boundary", "");
    memcpy(a, "a\xc3\xa9\xc3\xa9", 5);
    n = tpq_truncate_bound(TPQ_STRING, a, 5, 3, true);
    check(n == 3 && memcmp(a, "a\xc3\xaa", 3) == 0, "bounds: upper bound increments the code point (é -> ê)", "");
    memcpy(a, "ab\xff\xff\xff", 5);
    n = tpq_truncate_bound(TPQ_BYTES, a, 5, 4, true);
    check(n == 2 && memcmp(a, "ac", 2) == 0, "bounds: bytes drop trailing 0xFF and carry", "");
    memset(a, 0xFF, 8);
    n = tpq_truncate_bound(TPQ_BYTES, a, 8, 4, true);
    check(n == -1, "bounds: no upper bound exists for 0xFF...", "");
    memcpy(a, "abc", 3);
    n = tpq_truncate_bound(TPQ_BYTES, a, 3, 4, true);
    check(n == 3, "bounds: short values stay whole", "");
}

/* ------------------------------------------------------ writer checks */

static int
null_write(void *ctx, const void *p, size_t n, tpq_err *err)
{
    (void) p; (void) err;
    *(size_t *) ctx += n;
    return 0;
}

static void
test_writer_errors(void)
{
    size_t total = 0;
    tpq_sink sink = {null_write, &total};
    tpq_err err;
    tpq_writer *w;
    tpq_column_def dup[2] = {{"a", TPQ_INT64, 0, 0, 0}, {"a", TPQ_INT32, 0, 0, 0}};
    tpq_column_def fx = {"h", TPQ_FIXED, 0, 0, 0};
    tpq_column_def req[2] = {{"id", TPQ_INT64, 0, 0, 0}, {"hash", TPQ_FIXED, 0, 32, 0}};
    tpq_write_options o;
    int64_t ids[3] = {1, 2, 3};
    uint8_t nulls[3] = {0, 1, 0}, h32[32] = {0};
    tpq_bytes hs[3] = {{h32, 32}, {h32, 32}, {h32, 31}};
    tpq_values vals[2];

    check(tpq_writer_open(dup, 2, NULL, &sink, NULL, &err) == NULL && strstr(err.msg, "\"a\" appears twice"),
          "writer: duplicate column names refused", err.msg);
    check(tpq_writer_open(&fx, 1, NULL, &sink, NULL, &err) == NULL && strstr(err.msg, "fixed_len 0 out of range"),
          "writer: FIXED without a width refused", err.msg);
    tpq_write_options_init(&o);
    o.codec = (tpq_codec) 1;
    check(tpq_writer_open(req, 2, &o, &sink, NULL, &err) == NULL && strstr(err.msg, "unsupported codec 1"),
          "writer: SNAPPY refused", err.msg);

    w = tpq_writer_open(req, 2, NULL, &sink, NULL, &err);
    vals[0].nulls = NULL;
    vals[0].v.i64 = ids;
    vals[1].nulls = nulls;
    vals[1].v.bytes = hs;
    check(w && tpq_writer_write(w, vals, 3, &err) < 0 && strstr(err.msg, "\"hash\" is not nullable, row 1"),
          "writer: NULL in a REQUIRED column names column and row", err.msg);
    check(w && tpq_writer_write(w, vals, 1, &err) < 0 && strstr(err.msg, "failed earlier"),
          "writer: refuses everything after a failure", err.msg);
    tpq_writer_free(w);
    w = tpq_writer_open(req, 2, NULL, &sink, NULL, &err);
    vals[1].nulls = NULL;
    check(w && tpq_writer_write(w, vals, 3, &err) < 0 && strstr(err.msg, "row 2: value of 31 bytes, the column holds exactly 32"),
          "writer: FIXED value of the wrong width names column and row", err.msg);
    tpq_writer_free(w);
}

/* The first page of a one-column file, byte for byte. */
static void
test_known_file(void)
{
    tpq_column_def c = {"a", TPQ_INT64, 0, 0, TPQ_DICT_OFF};
    tpq_write_options o;
    int64_t v = 1;
    uint8_t *out;
    size_t len;
    tbl t;
    tpq_err err;
    char hx[256];
    static const uint8_t want[] = {'P', 'A', 'R', '1',
        0x15, 0x00, 0x15, 0x10, 0x15, 0x10, 0x2C, 0x15, 0x02, 0x15, 0x00, 0x15, 0x06, 0x15, 0x06, 0x00, 0x00,
        0x01, 0, 0, 0, 0, 0, 0, 0};

    tpq_write_options_init(&o);
    o.codec = TPQ_CODEC_UNCOMPRESSED;
    memset(&t, 0, sizeof(t));
    {
        tbl_col *col = &t.cols[0];

        t.name = "known";
        t.ncols = 1;
        t.nrows = 1;
        t.opt = o;
        col->def = c;
        col->nulls = calloc(1, 1);
        col->v.i64 = calloc(1, 8);
        col->v.i64[0] = v;
    }
    if (tbl_write_mem(&t, &out, &len, &err) < 0)
    {
        check(0, "known answer: a one-value INT64 file", err.msg);
        return;
    }
    hexdump(out, len < sizeof(want) ? len : sizeof(want), hx, sizeof(hx));
    check(len > sizeof(want) && memcmp(out, want, sizeof(want)) == 0 && memcmp(out + len - 4, "PAR1", 4) == 0,
          "known answer: magic, PageHeader and PLAIN value of a one-value INT64 file", hx);
    free(out);
    free(t.cols[0].nulls);
    free(t.cols[0].v.i64);
}

/* A chunk whose first page holds only NULLs keeps its dictionary for the
 * repeated values after it (the first page decides nothing). */
static void
test_null_first_page(void)
{
    tbl t;
    tbl_col *c;
    uint8_t *file;
    size_t len, i;
    tpq_err err;
    int dict = -1;

    memset(&t, 0, sizeof(t));
    tpq_write_options_init(&t.opt);
    t.name = "nulls_first";
    t.nrows = 30000;
    t.opt.page_rows = 1000;
    c = &t.cols[t.ncols++];
    c->def = (tpq_column_def) {"addr", TPQ_BYTES, 1, 0, TPQ_DICT_AUTO};
    c->nulls = calloc(t.nrows, 1);
    c->v.bytes = calloc(t.nrows, sizeof(tpq_bytes));
    for (i = 0; i < t.nrows; i++)
    {
        c->nulls[i] = i < 2500;
        c->v.bytes[i].ptr = (const uint8_t *) "0123456789abcdefghij" + i % 7;
        c->v.bytes[i].len = 13;
    }
    if (tbl_write_mem(&t, &file, &len, &err) == 0)
    {
        mem_src m = {file, len};
        tpq_source src = mem_source(&m);
        tpq_reader *r = tpq_reader_open(&src, NULL, NULL, &err);

        if (r)
        {
            dict = tpq_reader_chunk(r, 0, 0)->dictionary;
            tpq_reader_close(r);
        }
        free(file);
    }
    check(dict == 1, "writer: NULL-only first pages do not turn the dictionary off", err.msg);
    free(c->nulls);
    free(c->v.bytes);
}

/* ------------------------------------------------- allocator contract */

typedef struct counting
{
    size_t live, peak, bytes, calls, fail_at;
    size_t sizes_cap;
} counting;

typedef struct hdr { size_t n; size_t pad; } hdr;

static void *
c_alloc(void *ctx, size_t n)
{
    counting *c = ctx;
    hdr *h;

    c->calls++;
    if (c->fail_at && c->calls == c->fail_at)
        return NULL;
    h = malloc(sizeof(hdr) + n);
    if (h == NULL)
        return NULL;
    h->n = n;
    c->live++;
    c->bytes += n;
    if (c->bytes > c->peak)
        c->peak = c->bytes;
    return h + 1;
}

static void
c_free(void *ctx, void *p)
{
    counting *c = ctx;
    hdr *h;

    if (p == NULL)
        return;
    h = (hdr *) p - 1;
    c->live--;
    c->bytes -= h->n;
    free(h);
}

static int
drop_write(void *ctx, const void *p, size_t n, tpq_err *err)
{
    (void) ctx; (void) p; (void) n; (void) err;
    return 0;
}

/* Writes a table through the counting allocator; returns writer rc. */
static int
write_counted(const tbl *t, counting *c, tpq_err *err, uint8_t **file, size_t *len)
{
    tpq_alloc a = {c_alloc, c_free, c};
    tpq_column_def defs[TBL_MAX_COLS];
    tpq_values vals[TBL_MAX_COLS];
    tpq_writer *w;
    tpq_sink s = {drop_write, NULL};
    size_t i;

    (void) file; (void) len;
    for (i = 0; i < t->ncols; i++)
    {
        defs[i] = t->cols[i].def;
        vals[i].nulls = t->cols[i].nulls;
        vals[i].v.b = t->cols[i].v.b;
    }
    w = tpq_writer_open(defs, t->ncols, &t->opt, &s, &a, err);
    if (w == NULL)
        return -1;
    for (i = 0; i < t->nrows; i += 500)
    {
        size_t n = t->nrows - i < 500 ? t->nrows - i : 500, k;
        tpq_values slice[TBL_MAX_COLS];

        for (k = 0; k < t->ncols; k++)
        {
            slice[k].nulls = vals[k].nulls + i;
            slice[k].v.b = vals[k].v.b + i * tpq_values_size(t->cols[k].def.type);
        }
        if (tpq_writer_write(w, slice, n, err) < 0)
        {
            tpq_writer_free(w);
            return -1;
        }
    }
    return tpq_writer_close(w, err);
}

static int
read_counted(const uint8_t *file, size_t len, counting *c, tpq_err *err)
{
    tpq_alloc a = {c_alloc, c_free, c};

    return tbl_read_all(file, len, NULL, &a, err);
}

static void
test_allocator(void)
{
    tbl t;
    tpq_err err;
    counting c;
    uint8_t *file;
    size_t len, n, failures_ok = 1, total_calls;
    char msg[512] = "";

    tbl_build(&t, "types_dict_zstd");
    t.nrows = 1200;     /* a prefix of the kind: enough for pages and groups */
    memset(&c, 0, sizeof(c));
    check(write_counted(&t, &c, &err, NULL, NULL) == 0 && c.live == 0, "allocator: the writer frees everything", err.msg);
    total_calls = c.calls;
    for (n = 1; n <= total_calls; n += (total_calls > 400 ? total_calls / 400 : 1))
    {
        memset(&c, 0, sizeof(c));
        c.fail_at = n;
        if (write_counted(&t, &c, &err, NULL, NULL) == 0 || c.live != 0)
        {
            snprintf(msg, sizeof(msg), "allocation %zu of %zu: rc ok or %zu blocks leaked (%s)", n, total_calls, c.live, err.msg);
            failures_ok = 0;
            break;
        }
    }
    check(failures_ok, "allocator: every failing allocation in the writer is an error, without a leak", msg);

    if (tbl_write_mem(&t, &file, &len, &err) == 0)
    {
        memset(&c, 0, sizeof(c));
        check(read_counted(file, len, &c, &err) == 0 && c.live == 0, "allocator: the reader frees everything", err.msg);
        total_calls = c.calls;
        failures_ok = 1;
        for (n = 1; n <= total_calls; n++)
        {
            memset(&c, 0, sizeof(c));
            c.fail_at = n;
            if (read_counted(file, len, &c, &err) == 0 || c.live != 0)
            {
                snprintf(msg, sizeof(msg), "allocation %zu of %zu: rc ok or %zu blocks leaked", n, total_calls, c.live);
                failures_ok = 0;
                break;
            }
        }
        check(failures_ok, "allocator: every failing allocation in the reader is an error, without a leak", msg);
        free(file);
    }
    tbl_free(&t);
}

/* Peak writer memory depends on the row group budget, not on the rows. */
static void
test_memory_bound(void)
{
    tbl t;
    tpq_err err;
    counting small, big;
    char msg[256];

    tbl_build(&t, "chain_logs");
    t.opt.row_group_bytes = 256 << 10;
    memset(&small, 0, sizeof(small));
    memset(&big, 0, sizeof(big));
    t.nrows = 3000;
    write_counted(&t, &small, &err, NULL, NULL);
    t.nrows = 12000;
    write_counted(&t, &big, &err, NULL, NULL);
    snprintf(msg, sizeof(msg), "peak %zu bytes for 3,000 rows, %zu for 12,000 (row groups of 256 kB)", small.peak, big.peak);
    /* the zstd context (~1.5 MB) plus buffers of about two row groups */
    check(big.peak < 8 * (256 << 10) + (2 << 20) && big.peak * 2 < small.peak * 3,
          "writer: memory bounded by the row group budget, not the rows", msg);
    printf("# %s\n", msg);
    tbl_free(&t);
}

int
main(void)
{
    test_thrift_known_answers();
    test_thrift_skip_unknown();
    test_thrift_hostile();
    test_rle();
    test_truncate();
    test_writer_errors();
    test_known_file();
    test_null_first_page();
    test_allocator();
    test_memory_bound();
    printf("%d passed, %d failed\n", ntest - nfail, nfail);
    return nfail ? 1 : 0;
}
