/*
 * tables.c: the file kinds the Parquet writer produces, as deterministic
 * tables: every type, nullable and not, nulls and an all-null column, the
 * empty file, one row, dictionary / PLAIN / dictionary fallback, one and
 * many row groups and pages, zstd and uncompressed, extreme values (int64
 * min/max, empty strings and bytes, 2^256-1, NaN and infinities, bounds
 * longer than the statistics cap), and the chain tables' shapes.
 *
 * Values come from a seeded splitmix64, so a kind always has the same rows;
 * tbl_verify reads a file back with the reader and compares everything.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tables.h"

const char *const tbl_kinds[] = {
    "types_plain_zstd", "types_dict_zstd", "types_dict_uncompressed", "types_plain_uncompressed",
    "nulls", "all_null", "empty", "empty_nullable", "one_row", "extremes", "dict_fallback",
    "many_groups_pages", "long_values", "chain_blocks", "chain_transactions", "chain_logs",
    NULL
};

static uint64_t rng_state;

static uint64_t
rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t rndn(uint64_t n) { return n ? rnd() % n : 0; }

static void *
xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);

    if (p == NULL)
        abort();
    return p;
}

static uint8_t *
blob(tbl *t, size_t n)
{
    if (t->nblobs == t->capblobs)
    {
        t->capblobs = t->capblobs ? t->capblobs * 2 : 1024;
        t->blobs = realloc(t->blobs, t->capblobs * sizeof(void *));
        if (t->blobs == NULL)
            abort();
    }
    return t->blobs[t->nblobs++] = xmalloc(n);
}

static tbl_col *
add_col(tbl *t, const char *name, tpq_type type, int nullable, int32_t fixed_len)
{
    tbl_col *c = &t->cols[t->ncols++];
    size_t sz = tpq_values_size(type);

    c->def.name = name;
    c->def.type = type;
    c->def.nullable = nullable;
    c->def.fixed_len = fixed_len;
    c->nulls = xmalloc(t->nrows + 1);
    c->v.b = xmalloc(t->nrows * sz + 1);
    return c;
}

static void
set_bytes(tbl *t, tbl_col *c, size_t i, const void *p, size_t n)
{
    uint8_t *b = blob(t, n);

    memcpy(b, p, n);
    c->v.bytes[i].ptr = b;
    c->v.bytes[i].len = (uint32_t) n;
}

static void
rand_bytes(tbl *t, tbl_col *c, size_t i, size_t n)
{
    uint8_t *b = blob(t, n);
    size_t k;

    for (k = 0; k < n; k++)
        b[k] = (uint8_t) rnd();
    c->v.bytes[i].ptr = b;
    c->v.bytes[i].len = (uint32_t) n;
}

/* Pools of repeated values, for the dictionary kinds. */
static const char *const words[] = {
    "", "a", "transfer", "Transfer(address,address,uint256)", "ünïcödé", "日本語テキスト",
    "emoji 🚀🌕", "tab\tand \"quotes\" and \\ backslash", "0x", "swap", "approve", "mint", "burn",
};
static const char *const jsons[] = {
    "{}", "[]", "null", "{\"a\": 1}", "{\"k\": \"v\", \"n\": [1, 2, 3], \"o\": {\"x\": true}}",
    "\"string\"", "123.5", "{\"unicode\": \"é🚀\"}",
};
static const char *const numerics[] = {
    "0", "1", "-1", "3.14159", "123456789012345678901234567890.000000001", "NaN", "1e-5",
    "-99999999999999999999999999999999999999", "0.000", "Infinity", "-Infinity",
};

/* Fills row i of column c: mode 0 random, 1 from a small pool. */
static void
gen_value(tbl *t, tbl_col *c, size_t i, int pool)
{
    uint64_t r = pool ? rndn(37) : rnd();

    switch (c->def.type)
    {
        case TPQ_BOOL: c->v.b[i] = (uint8_t) (r & 1); break;
        case TPQ_INT16: c->v.i16[i] = (int16_t) (pool ? (int64_t) r * 811 - 15000 : (int64_t) (r & 0xFFFF) - 32768); break;
        case TPQ_INT32: c->v.i32[i] = (int32_t) (pool ? (int64_t) r * 1000003 - 18000000 : (int64_t) (uint32_t) r - 2147483648LL); break;
        case TPQ_INT64: c->v.i64[i] = pool ? (int64_t) r * 1000000007LL - 3 : (int64_t) r; break;
        case TPQ_TIMESTAMPTZ:
            c->v.i64[i] = pool ? 1717200000000000LL + (int64_t) r * 12000000
                : (int64_t) rndn(253402300799999999ULL + 62135596800000000ULL) - 62135596800000000LL;
            break;
        case TPQ_FLOAT64: c->v.f64[i] = pool ? (double) r * 0.25 - 3 : ((double) (int64_t) r) / 3.0e9; break;
        case TPQ_STRING:
            if (pool)
            {
                const char *w = words[r % (sizeof(words) / sizeof(words[0]))];

                set_bytes(t, c, i, w, strlen(w));
            }
            else
            {
                char buf[48];
                int n = snprintf(buf, sizeof(buf), "s%llu-é", (unsigned long long) (r % 100000000000ULL));

                set_bytes(t, c, i, buf, (size_t) n);
            }
            break;
        case TPQ_JSON:
            {
                char buf[64];
                const char *j = jsons[r % (sizeof(jsons) / sizeof(jsons[0]))];
                int n;

                if (pool)
                    set_bytes(t, c, i, j, strlen(j));
                else
                {
                    n = snprintf(buf, sizeof(buf), "{\"id\": %llu, \"v\": [%d, \"x\"]}",
                                 (unsigned long long) (r % 1000000007ULL), (int) (r % 97));
                    set_bytes(t, c, i, buf, (size_t) n);
                }
                break;
            }
        case TPQ_NUMERIC:
            {
                const char *s = numerics[r % (sizeof(numerics) / sizeof(numerics[0]))];
                char buf[64];
                int n;

                if (pool)
                    set_bytes(t, c, i, s, strlen(s));
                else
                {
                    n = snprintf(buf, sizeof(buf), "%lld.%04llu", (long long) (int64_t) (r >> 12),
                                 (unsigned long long) (r % 10000));
                    set_bytes(t, c, i, buf, (size_t) n);
                }
                break;
            }
        case TPQ_BYTES:
            if (pool)
            {
                uint8_t b[8] = {(uint8_t) r, 0xFF, 0, (uint8_t) (r * 7), 0x80, 1, 2, 3};

                set_bytes(t, c, i, b, r % 9);
            }
            else
                rand_bytes(t, c, i, rndn(70));
            break;
        case TPQ_FIXED:
        case TPQ_UINT256:
            {
                size_t w = c->def.type == TPQ_UINT256 ? 32 : (size_t) c->def.fixed_len;

                if (pool)
                {
                    uint8_t *b = blob(t, w);
                    size_t k;

                    for (k = 0; k < w; k++)
                        b[k] = (uint8_t) (r * 131 + k * 17);
                    c->v.bytes[i].ptr = b;
                    c->v.bytes[i].len = (uint32_t) w;
                }
                else if (c->def.type == TPQ_UINT256)
                {
                    /* wei-like: mostly below 2^72, sometimes any 256-bit value */
                    uint8_t *b = blob(t, 32);
                    size_t k, top = rndn(10) == 0 ? 0 : 23;

                    for (k = top; k < 32; k++)
                        b[k] = (uint8_t) rnd();
                    c->v.bytes[i].ptr = b;
                    c->v.bytes[i].len = 32;
                }
                else
                    rand_bytes(t, c, i, w);
                break;
            }
        default:
            break;
    }
}

static void
fill(tbl *t, tbl_col *c, int pool, unsigned null_pct)
{
    size_t i;

    for (i = 0; i < t->nrows; i++)
    {
        if (c->def.nullable && rndn(100) < null_pct)
        {
            c->nulls[i] = 1;
            continue;
        }
        gen_value(t, c, i, pool);
    }
}

/* Every type, nullable and not. */
static void
all_types(tbl *t, int pool, unsigned null_pct, tpq_dict_mode dict)
{
    static const struct { const char *name; tpq_type type; int nullable; int32_t len; } spec[] = {
        {"b_r", TPQ_BOOL, 0, 0}, {"b_n", TPQ_BOOL, 1, 0},
        {"i16_r", TPQ_INT16, 0, 0}, {"i16_n", TPQ_INT16, 1, 0},
        {"i32_r", TPQ_INT32, 0, 0}, {"i32_n", TPQ_INT32, 1, 0},
        {"i64_r", TPQ_INT64, 0, 0}, {"i64_n", TPQ_INT64, 1, 0},
        {"f64_r", TPQ_FLOAT64, 0, 0}, {"f64_n", TPQ_FLOAT64, 1, 0},
        {"ts_r", TPQ_TIMESTAMPTZ, 0, 0}, {"ts_n", TPQ_TIMESTAMPTZ, 1, 0},
        {"s_r", TPQ_STRING, 0, 0}, {"s_n", TPQ_STRING, 1, 0},
        {"j_n", TPQ_JSON, 1, 0}, {"num_n", TPQ_NUMERIC, 1, 0},
        {"by_r", TPQ_BYTES, 0, 0}, {"by_n", TPQ_BYTES, 1, 0},
        {"fx20_n", TPQ_FIXED, 1, 20}, {"fx32_r", TPQ_FIXED, 0, 32},
        {"u256_r", TPQ_UINT256, 0, 0}, {"u256_n", TPQ_UINT256, 1, 0},
    };
    size_t k;

    for (k = 0; k < sizeof(spec) / sizeof(spec[0]); k++)
    {
        tbl_col *c = add_col(t, spec[k].name, spec[k].type, spec[k].nullable, spec[k].len);

        c->def.dict = dict;
        fill(t, c, pool, null_pct);
    }
}

static void
chain_kv(tbl *t, const char *dataset)
{
    t->kv[0] = (tpq_kv) {"trace.dataset_id", dataset};
    t->kv[1] = (tpq_kv) {"trace.dataset_version", "3"};
    t->kv[2] = (tpq_kv) {"trace.range", "20000000-20000099"};
    t->kv[3] = (tpq_kv) {"trace.schema_version", "1"};
    t->kv[4] = (tpq_kv) {"trace.writer_version", "0.1"};
    t->kv[5] = (tpq_kv) {"trace.no_value", NULL};
    t->opt.kv = t->kv;
    t->opt.nkv = 6;
}

/* Shapes of trace.chain_table_columns: bytea as BYTES (the blocks table
 * with FIXED(32) / FIXED(20) instead), wei UINT256; addresses and topics
 * repeat. */
static void
chain(tbl *t, int which)
{
    uint8_t addrs[64][20], topics0[16][32];
    size_t i, k;
    tbl_col *c[16];

    for (i = 0; i < 64; i++)
        for (k = 0; k < 20; k++)
            addrs[i][k] = (uint8_t) rnd();
    for (i = 0; i < 16; i++)
        for (k = 0; k < 32; k++)
            topics0[i][k] = (uint8_t) rnd();
    c[0] = add_col(t, "chain_id", TPQ_INT64, 0, 0);
    c[1] = add_col(t, "block_number", TPQ_INT64, 0, 0);
    c[2] = add_col(t, "block_timestamp", TPQ_TIMESTAMPTZ, 0, 0);
    if (which == 0)
    {
        c[3] = add_col(t, "block_hash", TPQ_FIXED, 0, 32);
        c[4] = add_col(t, "parent_hash", TPQ_FIXED, 0, 32);
        c[5] = add_col(t, "miner", TPQ_FIXED, 1, 20);
        c[6] = add_col(t, "gas_used", TPQ_UINT256, 1, 0);
        c[7] = add_col(t, "base_fee_per_gas", TPQ_UINT256, 1, 0);
        c[8] = add_col(t, "tx_count", TPQ_INT32, 0, 0);
        for (i = 0; i < t->nrows; i++)
        {
            c[0]->v.i64[i] = 1;
            c[1]->v.i64[i] = 20000000 + (int64_t) i;
            c[2]->v.i64[i] = 1717200000000000LL + (int64_t) i * 12000000;
            rand_bytes(t, c[3], i, 32);
            rand_bytes(t, c[4], i, 32);
            set_bytes(t, c[5], i, addrs[rndn(8)], 20);
            gen_value(t, c[6], i, 0);
            if (i % 10 == 3)
                c[7]->nulls[i] = 1;
            else
                gen_value(t, c[7], i, 0);
            c[8]->v.i32[i] = (int32_t) rndn(300);
        }
    }
    else
    {
        size_t per_block = which == 1 ? 150 : 400;

        c[3] = add_col(t, "tx_index", TPQ_INT32, 0, 0);
        c[4] = add_col(t, "tx_hash", TPQ_BYTES, 0, 0);
        c[5] = add_col(t, which == 1 ? "from_address" : "address", TPQ_BYTES, 0, 0);
        if (which == 1)
        {
            c[6] = add_col(t, "to_address", TPQ_BYTES, 1, 0);
            c[7] = add_col(t, "value", TPQ_UINT256, 0, 0);
            c[8] = add_col(t, "input", TPQ_BYTES, 1, 0);
            c[9] = add_col(t, "status", TPQ_INT16, 1, 0);
        }
        else
        {
            c[6] = add_col(t, "log_index", TPQ_INT32, 0, 0);
            for (k = 0; k < 4; k++)
            {
                static const char *const tn[] = {"topic0", "topic1", "topic2", "topic3"};

                c[7 + k] = add_col(t, tn[k], TPQ_BYTES, 1, 0);
            }
            c[11] = add_col(t, "data", TPQ_BYTES, 1, 0);
        }
        for (i = 0; i < t->nrows; i++)
        {
            c[0]->v.i64[i] = 1;
            c[1]->v.i64[i] = 20000000 + (int64_t) (i / per_block);
            c[2]->v.i64[i] = 1717200000000000LL + (int64_t) (i / per_block) * 12000000;
            c[3]->v.i32[i] = (int32_t) (i % per_block);
            rand_bytes(t, c[4], i, 32);
            set_bytes(t, c[5], i, addrs[rndn(64)], 20);
            if (which == 1)
            {
                if (rndn(50) == 0)
                    c[6]->nulls[i] = 1;
                else
                    set_bytes(t, c[6], i, addrs[rndn(64)], 20);
                gen_value(t, c[7], i, 0);
                if (rndn(3) == 0)
                    set_bytes(t, c[8], i, "", 0);
                else
                    rand_bytes(t, c[8], i, 4 + 32 * rndn(8));
                c[9]->v.i16[i] = (int16_t) (rndn(50) != 0);
            }
            else
            {
                size_t nt = 1 + rndn(4);
                uint8_t topic[32] = {0};

                c[6]->v.i32[i] = (int32_t) (i % per_block);
                set_bytes(t, c[7], i, topics0[rndn(16)], 32);
                for (k = 1; k < 4; k++)
                {
                    if (k >= nt)
                    {
                        c[7 + k]->nulls[i] = 1;
                        continue;
                    }
                    memcpy(topic + 12, addrs[rndn(64)], 20);
                    set_bytes(t, c[7 + k], i, topic, 32);
                }
                rand_bytes(t, c[11], i, 32 * rndn(4));
            }
        }
    }
}

static void
extremes(tbl *t)
{
    tbl_col *i16 = add_col(t, "i16", TPQ_INT16, 0, 0), *i32 = add_col(t, "i32", TPQ_INT32, 0, 0);
    tbl_col *i64 = add_col(t, "i64", TPQ_INT64, 0, 0), *i64n = add_col(t, "i64_n", TPQ_INT64, 1, 0);
    tbl_col *f = add_col(t, "f64", TPQ_FLOAT64, 0, 0), *ts = add_col(t, "ts", TPQ_TIMESTAMPTZ, 0, 0);
    tbl_col *s = add_col(t, "s", TPQ_STRING, 0, 0), *by = add_col(t, "by", TPQ_BYTES, 0, 0);
    tbl_col *u = add_col(t, "u256", TPQ_UINT256, 0, 0), *b = add_col(t, "b", TPQ_BOOL, 0, 0);
    static const int64_t i64v[] = {INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1};
    static const int64_t tsv[] = {0, -1, 1, -62135596800000000LL, 253402300799999999LL, 1717200000123456LL, 951782400000000LL};
    double fv[] = {-0.0, 0.0, INFINITY, -INFINITY, NAN, 1.7976931348623157e308, 4.9e-324};
    uint8_t umax[32], uone[32] = {0}, uhalf[32] = {0}, ubig[32], u256[32] = {0};
    size_t i;

    memset(umax, 0xFF, 32);
    uone[31] = 1;
    u256[30] = 1;               /* 256 */
    uhalf[15] = 1;              /* 2^128: just past UHUGEINT */
    memset(ubig, 0, 32);
    memset(ubig + 16, 0xFF, 16);  /* 2^128 - 1 */
    for (i = 0; i < t->nrows; i++)
    {
        size_t k = i % 7;

        i16->v.i16[i] = k == 0 ? INT16_MIN : k == 1 ? INT16_MAX : (int16_t) (k - 3);
        i32->v.i32[i] = k == 0 ? INT32_MIN : k == 1 ? INT32_MAX : (int32_t) (k - 3);
        i64->v.i64[i] = i64v[k];
        if (k == 2)
            i64n->nulls[i] = 1;
        else
            i64n->v.i64[i] = i64v[k];
        f->v.f64[i] = fv[k];
        ts->v.i64[i] = tsv[k];
        set_bytes(t, s, i, k == 0 ? "" : k == 1 ? "\xf4\x8f\xbf\xbf" : k == 2 ? "~" : "zz", k == 0 ? 0 : k == 1 ? 4 : k == 2 ? 1 : 2);
        set_bytes(t, by, i, k == 0 ? "" : "\xff\xff", k == 0 ? 0 : k == 1 ? 2 : 1);
        set_bytes(t, u, i, k == 0 ? umax : k == 1 ? uone : k == 2 ? uhalf : k == 3 ? ubig : u256, 32);
        b->v.b[i] = k == 4;
    }
}

/* Byte arrays past stats_max_bytes, so bounds are truncated: multi-byte
 * characters across the cut, and 0xFF runs that carry. */
static void
long_values(tbl *t)
{
    tbl_col *s = add_col(t, "s", TPQ_STRING, 0, 0), *by = add_col(t, "by", TPQ_BYTES, 1, 0);
    tbl_col *s2 = add_col(t, "s_max", TPQ_STRING, 0, 0);
    size_t i;

    for (i = 0; i < t->nrows; i++)
    {
        char buf[300];
        uint8_t b[200];
        size_t n, k;

        n = (size_t) snprintf(buf, sizeof(buf), "%c", 'a' + (int) (i % 26));
        for (k = 0; k < 30 + i % 40; k++)
            n += (size_t) snprintf(buf + n, sizeof(buf) - n, "é");
        set_bytes(t, s, i, buf, n);
        /* the maximum string of 4-byte characters, U+10FFFF near the cut */
        n = 0;
        for (k = 0; k < 20; k++)
        {
            memcpy(buf + n, i % 5 == 0 ? "\xf4\x8f\xbf\xbf" : "\xf0\x9f\x9a\x80", 4);
            n += 4;
        }
        set_bytes(t, s2, i, buf, n);
        if (i % 4 == 1)
        {
            by->nulls[i] = 1;
            continue;
        }
        n = 65 + i % 100;
        for (k = 0; k < n; k++)
            b[k] = i % 3 == 0 ? 0xFF : (uint8_t) (i * 31 + k);
        set_bytes(t, by, i, b, n);
    }
    t->opt.stats_max_bytes = 16;
}

int
tbl_build(tbl *t, const char *kind)
{
    memset(t, 0, sizeof(*t));
    tpq_write_options_init(&t->opt);
    t->name = kind;
    rng_state = 0;
    for (const char *p = kind; *p; p++)
        rng_state = rng_state * 131 + (uint8_t) *p;
    chain_kv(t, kind);
    if (strcmp(kind, "types_plain_zstd") == 0)
    {
        t->about = "every type, random values, PLAIN, zstd, 3 pages per chunk";
        t->nrows = 3000;
        t->opt.page_rows = 1000;
        all_types(t, 0, 20, TPQ_DICT_OFF);
    }
    else if (strcmp(kind, "types_dict_zstd") == 0)
    {
        t->about = "every type from small pools: dictionary pages, several pages and row groups, zstd";
        t->nrows = 5000;
        t->opt.page_rows = 700;
        t->opt.row_group_bytes = 16384;
        all_types(t, 1, 20, TPQ_DICT_AUTO);
    }
    else if (strcmp(kind, "types_dict_uncompressed") == 0)
    {
        t->about = "every type, dictionary forced, uncompressed pages";
        t->nrows = 2000;
        t->opt.codec = TPQ_CODEC_UNCOMPRESSED;
        all_types(t, 1, 10, TPQ_DICT_ALWAYS);
    }
    else if (strcmp(kind, "types_plain_uncompressed") == 0)
    {
        t->about = "every type, random values, PLAIN, uncompressed";
        t->nrows = 1500;
        t->opt.codec = TPQ_CODEC_UNCOMPRESSED;
        all_types(t, 0, 5, TPQ_DICT_AUTO);
    }
    else if (strcmp(kind, "nulls") == 0)
    {
        t->about = "every type, 70% NULL";
        t->nrows = 2500;
        t->opt.page_rows = 600;
        all_types(t, 1, 70, TPQ_DICT_AUTO);
    }
    else if (strcmp(kind, "all_null") == 0)
    {
        tbl_col *a, *b, *c;

        t->about = "columns whose every value is NULL beside a required one";
        t->nrows = 1000;
        a = add_col(t, "id", TPQ_INT64, 0, 0);
        b = add_col(t, "nothing", TPQ_STRING, 1, 0);
        c = add_col(t, "no_wei", TPQ_UINT256, 1, 0);
        for (size_t i = 0; i < t->nrows; i++)
        {
            a->v.i64[i] = (int64_t) i;
            b->nulls[i] = c->nulls[i] = 1;
        }
    }
    else if (strcmp(kind, "empty") == 0 || strcmp(kind, "empty_nullable") == 0)
    {
        t->about = "zero rows (no row group)";
        t->nrows = 0;
        all_types(t, 0, kind[5] ? 50 : 0, TPQ_DICT_AUTO);
    }
    else if (strcmp(kind, "one_row") == 0)
    {
        t->about = "a single row of every type";
        t->nrows = 1;
        all_types(t, 0, 0, TPQ_DICT_AUTO);
    }
    else if (strcmp(kind, "extremes") == 0)
    {
        t->about = "int16/32/64 min and max, -0.0, infinities, NaN, DBL_MAX, denormals, empty strings "
                   "and bytes, U+10FFFF, 2^256-1, 2^128, timestamps 0001 to 9999";
        t->nrows = 70;
        extremes(t);
    }
    else if (strcmp(kind, "dict_fallback") == 0)
    {
        tbl_col *a, *b;

        t->about = "dictionary outgrows a 4 kB budget mid-chunk: dictionary pages then PLAIN pages";
        t->nrows = 4000;
        t->opt.dict_bytes = 4096;
        t->opt.page_rows = 500;
        a = add_col(t, "grows", TPQ_INT64, 1, 0);
        b = add_col(t, "grows_s", TPQ_STRING, 0, 0);
        a->def.dict = b->def.dict = TPQ_DICT_ALWAYS;
        for (size_t i = 0; i < t->nrows; i++)
        {
            char buf[32];

            if (i % 9 == 4)
                a->nulls[i] = 1;
            else
                a->v.i64[i] = (int64_t) (i < 600 ? i % 20 : i) * 7919;
            set_bytes(t, b, i, buf, (size_t) snprintf(buf, sizeof(buf), "v%zu", i < 500 ? i % 10 : i));
        }
    }
    else if (strcmp(kind, "many_groups_pages") == 0)
    {
        t->about = "tiny pages (50 rows) and row groups (2 kB): many of each";
        t->nrows = 6000;
        t->opt.page_rows = 50;
        t->opt.row_group_bytes = 2048;
        all_types(t, 1, 15, TPQ_DICT_AUTO);
    }
    else if (strcmp(kind, "long_values") == 0)
    {
        t->about = "byte arrays past the 16-byte statistics cap: truncated bounds";
        t->nrows = 300;
        long_values(t);
    }
    else if (strcmp(kind, "chain_blocks") == 0)
    {
        t->about = "the blocks table's shape";
        t->nrows = 400;
        chain(t, 0);
    }
    else if (strcmp(kind, "chain_transactions") == 0)
    {
        t->about = "the transactions table's shape (150 per block)";
        t->nrows = 6000;
        t->opt.row_group_bytes = 256 << 10;
        chain(t, 1);
    }
    else if (strcmp(kind, "chain_logs") == 0)
    {
        t->about = "the logs table's shape (400 per block)";
        t->nrows = 12000;
        t->opt.row_group_bytes = 256 << 10;
        chain(t, 2);
    }
    else
        return -1;
    return 0;
}

void
tbl_free(tbl *t)
{
    size_t i;

    for (i = 0; i < t->ncols; i++)
    {
        free(t->cols[i].nulls);
        free(t->cols[i].v.b);
    }
    for (i = 0; i < t->nblobs; i++)
        free(t->blobs[i]);
    free(t->blobs);
    memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------- writing */

int
tbl_write(const tbl *t, const tpq_sink *sink, tpq_err *err)
{
    tpq_column_def defs[TBL_MAX_COLS];
    tpq_values vals[TBL_MAX_COLS];
    static const size_t batches[] = {1, 7, 1000, 333, 4096};
    tpq_writer *w;
    size_t i, at = 0, b = 0;

    for (i = 0; i < t->ncols; i++)
        defs[i] = t->cols[i].def;
    w = tpq_writer_open(defs, t->ncols, &t->opt, sink, NULL, err);
    if (w == NULL)
        return -1;
    while (at < t->nrows)
    {
        size_t n = batches[b++ % 5];

        if (n > t->nrows - at)
            n = t->nrows - at;
        for (i = 0; i < t->ncols; i++)
        {
            vals[i].nulls = t->cols[i].nulls + at;
            vals[i].v.b = t->cols[i].v.b + at * tpq_values_size(t->cols[i].def.type);
        }
        if (tpq_writer_write(w, vals, n, err) < 0)
        {
            tpq_writer_free(w);
            return -1;
        }
        at += n;
    }
    return tpq_writer_close(w, err);
}

static int
file_write(void *ctx, const void *p, size_t n, tpq_err *err)
{
    if (fwrite(p, 1, n, ctx) != n)
    {
        snprintf(err->msg, sizeof(err->msg), "short write");
        return -1;
    }
    return 0;
}

int
tbl_write_file(const tbl *t, const char *path, tpq_err *err)
{
    FILE *f = fopen(path, "wb");
    tpq_sink s = {file_write, NULL};
    int rc;

    if (f == NULL)
    {
        snprintf(err->msg, sizeof(err->msg), "cannot create %s", path);
        return -1;
    }
    s.ctx = f;
    rc = tbl_write(t, &s, err);
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

typedef struct membuf
{
    uint8_t *p;
    size_t n, cap;
} membuf;

static int
mem_write(void *ctx, const void *p, size_t n, tpq_err *err)
{
    membuf *m = ctx;

    (void) err;
    if (m->n + n > m->cap)
    {
        m->cap = (m->n + n) * 2;
        m->p = realloc(m->p, m->cap);
        if (m->p == NULL)
            abort();
    }
    memcpy(m->p + m->n, p, n);
    m->n += n;
    return 0;
}

int
tbl_write_mem(const tbl *t, uint8_t **out, size_t *len, tpq_err *err)
{
    membuf m = {NULL, 0, 0};
    tpq_sink s = {mem_write, &m};

    if (tbl_write(t, &s, err) < 0)
    {
        free(m.p);
        return -1;
    }
    *out = m.p;
    *len = m.n;
    return 0;
}

/* --------------------------------------------------------------- JSON */

static void
json_str(FILE *f, const uint8_t *p, size_t n)
{
    size_t i;

    fputc('"', f);
    for (i = 0; i < n; i++)
    {
        uint8_t c = p[i];

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void
json_hex(FILE *f, const uint8_t *p, size_t n)
{
    size_t i;

    fputc('"', f);
    for (i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
    fputc('"', f);
}

int
tbl_write_jsonl(const tbl *t, FILE *f)
{
    size_t r, i;

    for (r = 0; r < t->nrows; r++)
    {
        fputc('{', f);
        for (i = 0; i < t->ncols; i++)
        {
            const tbl_col *c = &t->cols[i];

            fprintf(f, "%s\"%s\":", i ? "," : "", c->def.name);
            if (c->nulls[r])
            {
                fputs("null", f);
                continue;
            }
            switch (c->def.type)
            {
                case TPQ_BOOL: fputs(c->v.b[r] ? "true" : "false", f); break;
                case TPQ_INT16: fprintf(f, "%d", c->v.i16[r]); break;
                case TPQ_INT32: fprintf(f, "%d", c->v.i32[r]); break;
                case TPQ_INT64:
                case TPQ_TIMESTAMPTZ: fprintf(f, "\"%lld\"", (long long) c->v.i64[r]); break;
                case TPQ_FLOAT64:
                    {
                        double d = c->v.f64[r];

                        if (isnan(d))
                            fputs("\"NaN\"", f);
                        else if (isinf(d))
                            fputs(d > 0 ? "\"Infinity\"" : "\"-Infinity\"", f);
                        else
                            fprintf(f, "%.17g", d);
                        break;
                    }
                case TPQ_STRING:
                case TPQ_JSON:
                case TPQ_NUMERIC:
                    json_str(f, c->v.bytes[r].ptr, c->v.bytes[r].len);
                    break;
                default:
                    json_hex(f, c->v.bytes[r].ptr, c->v.bytes[r].len);
                    break;
            }
        }
        fputs("}\n", f);
    }
    return ferror(f) ? -1 : 0;
}

void
tbl_write_schema_json(const tbl *t, FILE *f)
{
    size_t i;

    fprintf(f, "{\"name\":\"%s\",\"rows\":%zu,\"codec\":\"%s\",\"kv\":{", t->name, t->nrows,
            t->opt.codec == TPQ_CODEC_ZSTD ? "ZSTD" : "UNCOMPRESSED");
    for (i = 0; i < t->opt.nkv; i++)
        if (t->kv[i].value)
            fprintf(f, "%s\"%s\":\"%s\"", i ? "," : "", t->kv[i].key, t->kv[i].value);
    fputs("},\"columns\":[", f);
    for (i = 0; i < t->ncols; i++)
        fprintf(f, "%s{\"name\":\"%s\",\"type\":\"%s\",\"nullable\":%s,\"fixed_len\":%d}", i ? "," : "",
                t->cols[i].def.name, tpq_type_name(t->cols[i].def.type),
                t->cols[i].def.nullable ? "true" : "false",
                t->cols[i].def.type == TPQ_UINT256 ? 32 : t->cols[i].def.fixed_len);
    fputs("]}", f);
}

/* ------------------------------------------------------------- verify */

static int
mem_read(void *ctx, uint64_t off, void *buf, size_t len, tpq_err *err)
{
    mem_src *m = ctx;

    if (off > m->n || len > m->n - off)
    {
        snprintf(err->msg, sizeof(err->msg), "read past the end");
        return -1;
    }
    memcpy(buf, m->p + off, len);
    return 0;
}

tpq_source
mem_source(mem_src *m)
{
    tpq_source s = {mem_read, m->n, m};

    return s;
}

int
tbl_read_all(const uint8_t *p, size_t n, const tpq_read_options *o, const tpq_alloc *a, tpq_err *err)
{
    mem_src m = {p, n};
    tpq_source src = mem_source(&m);
    tpq_reader *r = tpq_reader_open(&src, o, a, err);
    size_t g, i;

    if (r == NULL)
        return -1;
    for (g = 0; g < tpq_reader_num_row_groups(r); g++)
        for (i = 0; i < tpq_reader_num_columns(r); i++)
        {
            tpq_column_data d;

            if (tpq_reader_read_column(r, g, i, &d, err) < 0)
            {
                tpq_reader_close(r);
                return -1;
            }
            tpq_column_data_free(&d);
        }
    tpq_reader_close(r);
    return 0;
}

/* The PLAIN bytes of value r of c (for statistics). */
static size_t
plain_of(const tbl_col *c, size_t r, uint8_t tmp[8], const uint8_t **p)
{
    int64_t v;

    *p = tmp;
    switch (c->def.type)
    {
        case TPQ_BOOL: tmp[0] = c->v.b[r]; return 1;
        case TPQ_INT16: v = c->v.i16[r]; goto i32;
        case TPQ_INT32: v = c->v.i32[r];
i32:
            for (int k = 0; k < 4; k++)
                tmp[k] = (uint8_t) ((uint64_t) v >> (8 * k));
            return 4;
        case TPQ_INT64:
        case TPQ_TIMESTAMPTZ:
        case TPQ_FLOAT64:
            {
                uint64_t u;

                memcpy(&u, &c->v.i64[r], 8);
                for (int k = 0; k < 8; k++)
                    tmp[k] = (uint8_t) (u >> (8 * k));
                return 8;
            }
        default:
            *p = c->v.bytes[r].ptr;
            return c->v.bytes[r].len;
    }
}

static int
same_value(const tbl_col *c, size_t r, const tpq_column_data *d, size_t i)
{
    switch (c->def.type)
    {
        case TPQ_BOOL: return !!c->v.b[r] == !!d->v.b[i];
        case TPQ_INT16: return c->v.i16[r] == d->v.i32[i];
        case TPQ_INT32: return c->v.i32[r] == d->v.i32[i];
        case TPQ_INT64:
        case TPQ_TIMESTAMPTZ: return c->v.i64[r] == d->v.i64[i];
        case TPQ_FLOAT64: return memcmp(&c->v.f64[r], &d->v.f64[i], 8) == 0;
        default:
            return c->v.bytes[r].len == d->v.bytes[i].len &&
                (c->v.bytes[r].len == 0 || memcmp(c->v.bytes[r].ptr, d->v.bytes[i].ptr, c->v.bytes[r].len) == 0);
    }
}

/* Checks a chunk's statistics against rows [from, from+n) of c. */
static int
check_stats(const tbl_col *c, size_t from, size_t n, const tpq_chunk_info *ci, size_t cap,
            char *msg, size_t msglen, size_t g)
{
    const uint8_t *lo = NULL, *hi = NULL, *p;
    size_t lolen = 0, hilen = 0, len, r, nulls = 0;
    uint8_t tlo[8], thi[8], tmp[8];
    tpq_type t = c->def.type;

    for (r = from; r < from + n; r++)
    {
        if (c->nulls[r])
        {
            nulls++;
            continue;
        }
        if (t == TPQ_FLOAT64 && isnan(c->v.f64[r]))
            continue;
        len = plain_of(c, r, tmp, &p);
        if (lo == NULL || tpq_compare(t, p, len, lo, lolen) < 0)
        {
            if (p == tmp) { memcpy(tlo, tmp, 8); p = tlo; }
            lo = p; lolen = len;
        }
        len = plain_of(c, r, tmp, &p);
        if (hi == NULL || tpq_compare(t, p, len, hi, hilen) > 0)
        {
            if (p == tmp) { memcpy(thi, tmp, 8); p = thi; }
            hi = p; hilen = len;
        }
    }
    if (!ci->stats.has_null_count || ci->stats.null_count != (int64_t) nulls)
    {
        snprintf(msg, msglen, "column %s row group %zu: null_count %lld, expected %zu", c->def.name, g,
                 (long long) ci->stats.null_count, nulls);
        return -1;
    }
    /* an upper bound is left out only when none fits the cap (0xFF...) */
    if (hi && !ci->stats.has_max && hilen > cap)
    {
        size_t k = 0;

        while (k < cap && hi[k] == 0xFF)
            k++;
        if (k == cap)
            hi = NULL;
    }
    if ((lo != NULL) != ci->stats.has_min || (hi != NULL) != ci->stats.has_max)
    {
        snprintf(msg, msglen, "column %s row group %zu: min/max presence differs", c->def.name, g);
        return -1;
    }
    if (lo == NULL)
        return 0;
    if (t == TPQ_FLOAT64)
    {
        /* zero bounds are written -0.0 / +0.0 */
        if (tpq_compare(t, ci->stats.min, 8, lo, 8) != 0 || tpq_compare(t, ci->stats.max, 8, hi, 8) != 0)
            goto bad;
        return 0;
    }
    if (ci->stats.min_exact ? (ci->stats.min_len != lolen || memcmp(ci->stats.min, lo, lolen) != 0)
        : tpq_compare(t, ci->stats.min, ci->stats.min_len, lo, lolen) >= 0)
        goto bad;
    if (hi == NULL)
        return 0;
    if (ci->stats.max_exact ? (ci->stats.max_len != hilen || memcmp(ci->stats.max, hi, hilen) != 0)
        : tpq_compare(t, ci->stats.max, ci->stats.max_len, hi, hilen) <= 0)
        goto bad;
    return 0;
bad:
    snprintf(msg, msglen, "column %s row group %zu: min/max differ from the rows'", c->def.name, g);
    return -1;
}

int
tbl_verify(const tbl *t, const uint8_t *file, size_t len, char *msg, size_t msglen)
{
    mem_src m = {file, len};
    tpq_source src = mem_source(&m);
    tpq_err err;
    tpq_reader *r = tpq_reader_open(&src, NULL, NULL, &err);
    size_t g, i, row = 0;
    int rc = -1;

    if (r == NULL)
    {
        snprintf(msg, msglen, "open: %s", err.msg);
        return -1;
    }
    if (tpq_reader_num_rows(r) != (int64_t) t->nrows || tpq_reader_num_columns(r) != t->ncols)
    {
        snprintf(msg, msglen, "%lld rows / %zu columns, expected %zu / %zu",
                 (long long) tpq_reader_num_rows(r), tpq_reader_num_columns(r), t->nrows, t->ncols);
        goto done;
    }
    for (i = 0; i < t->opt.nkv; i++)
    {
        const char *v = tpq_reader_kv_get(r, t->kv[i].key);

        if ((v == NULL) != (t->kv[i].value == NULL) || (v && strcmp(v, t->kv[i].value) != 0))
        {
            snprintf(msg, msglen, "key-value %s differs", t->kv[i].key);
            goto done;
        }
    }
    for (i = 0; i < t->ncols; i++)
    {
        const tpq_column_info *ci = tpq_reader_column(r, i);

        if (strcmp(ci->name, t->cols[i].def.name) != 0 || ci->type != t->cols[i].def.type ||
            ci->nullable != !!t->cols[i].def.nullable)
        {
            snprintf(msg, msglen, "column %zu is %s %s, expected %s %s", i, ci->name, tpq_type_name(ci->type),
                     t->cols[i].def.name, tpq_type_name(t->cols[i].def.type));
            goto done;
        }
    }
    for (g = 0; g < tpq_reader_num_row_groups(r); g++)
    {
        size_t n = (size_t) tpq_reader_row_group_rows(r, g);

        for (i = 0; i < t->ncols; i++)
        {
            tpq_column_data d;
            const tbl_col *c = &t->cols[i];
            size_t k;

            if (tpq_reader_read_column(r, g, i, &d, &err) < 0)
            {
                snprintf(msg, msglen, "row group %zu column %s: %s", g, c->def.name, err.msg);
                goto done;
            }
            for (k = 0; k < n; k++)
            {
                if (!!d.nulls[k] != !!c->nulls[row + k] || (!c->nulls[row + k] && !same_value(c, row + k, &d, k)))
                {
                    snprintf(msg, msglen, "row %zu column %s differs", row + k, c->def.name);
                    tpq_column_data_free(&d);
                    goto done;
                }
            }
            tpq_column_data_free(&d);
            if (check_stats(c, row, n, tpq_reader_chunk(r, g, i), t->opt.stats_max_bytes, msg, msglen, g) < 0)
                goto done;
        }
        row += n;
    }
    if (row != t->nrows)
    {
        snprintf(msg, msglen, "read %zu rows of %zu", row, t->nrows);
        goto done;
    }
    rc = 0;
done:
    tpq_reader_close(r);
    return rc;
}
