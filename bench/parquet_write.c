/*
 * parquet_write.c: writes the chain tables' rows from PostgreSQL text COPY
 * files (bench/fixture_rpc.py --copy-dir) into Parquet with Trace's writer
 * (worker/parquet), for bench/parquet_bench.sh.  A prototype of the
 * parquet_compact write path: parse a row, append it to column batches of
 * 4096 rows, hand each batch to tpq_writer_write.
 *
 *   parquet_write TABLE IN.copy OUT.parquet [options]
 *     TABLE        blocks | txs | logs
 *     --dict on|off         dictionary encoding (AUTO) or PLAIN only
 *     --codec zstd|none
 *     --hash bytes|fixed    bytea hashes and addresses as BYTE_ARRAY (Trace's mapping) or
 *                           FIXED_LEN_BYTE_ARRAY(32 / 20)
 *     --u256 fixed|text     wei as FIXED_LEN_BYTE_ARRAY(32) or as decimal text (NUMERIC)
 *
 * Prints one line: table rows bytes seconds (parse + encode + write) and the
 * peak RSS in kB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tpq.h"

#define BATCH 4096
#define MAXC 16

enum { K_I64, K_I32, K_I16, K_TS, K_HASH, K_ADDR, K_U256, K_BYTES };

typedef struct colspec
{
    const char *name;
    int kind;
    int nullable;
} colspec;

static const colspec blocks_cols[] = {
    {"chain_id", K_I64, 0}, {"block_number", K_I64, 0}, {"block_hash", K_HASH, 0}, {"parent_hash", K_HASH, 0},
    {"block_timestamp", K_TS, 0}, {"miner", K_ADDR, 1}, {"gas_used", K_U256, 1}, {"gas_limit", K_U256, 1},
    {"base_fee_per_gas", K_U256, 1}, {"tx_count", K_I32, 0}, {"log_count", K_I32, 0}, {NULL, 0, 0}};
static const colspec txs_cols[] = {
    {"chain_id", K_I64, 0}, {"block_number", K_I64, 0}, {"block_timestamp", K_TS, 0}, {"tx_index", K_I32, 0},
    {"tx_hash", K_HASH, 0}, {"from_address", K_ADDR, 0}, {"to_address", K_ADDR, 1}, {"value", K_U256, 0},
    {"gas", K_U256, 1}, {"gas_price", K_U256, 1}, {"nonce", K_U256, 1}, {"input", K_BYTES, 1},
    {"status", K_I16, 1}, {NULL, 0, 0}};
static const colspec logs_cols[] = {
    {"chain_id", K_I64, 0}, {"block_number", K_I64, 0}, {"block_timestamp", K_TS, 0}, {"tx_index", K_I32, 0},
    {"log_index", K_I32, 0}, {"tx_hash", K_HASH, 0}, {"address", K_ADDR, 0}, {"topic0", K_HASH, 1},
    {"topic1", K_HASH, 1}, {"topic2", K_HASH, 1}, {"topic3", K_HASH, 1}, {"data", K_BYTES, 1}, {NULL, 0, 0}};

typedef struct col
{
    const colspec *spec;
    uint8_t nulls[BATCH];
    int64_t i64[BATCH];
    int32_t i32[BATCH];
    int16_t i16[BATCH];
    tpq_bytes bytes[BATCH];
} col;

static int u256_text = 0;

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

static int
hexval(int c)
{
    return c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned) (y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}

/* "2024-06-01 00:00:00+00" -> microseconds since 1970 (UTC offsets only). */
static int64_t
parse_ts(const char *s)
{
    int y, mo, d, h, mi, se;

    sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se);
    return ((days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400) + h * 3600 + mi * 60 + se) * 1000000LL;
}

/* Decimal text -> 32-byte big-endian. */
static void
decimal_to_u256(const char *s, uint8_t out[32])
{
    memset(out, 0, 32);
    for (; *s >= '0' && *s <= '9'; s++)
    {
        unsigned carry = (unsigned) (*s - '0');

        for (int k = 31; k >= 0; k--)
        {
            unsigned v = out[k] * 10u + carry;

            out[k] = (uint8_t) v;
            carry = v >> 8;
        }
    }
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

static long
peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;

    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

int
main(int argc, char **argv)
{
    const colspec *spec;
    tpq_column_def defs[MAXC];
    tpq_values vals[MAXC];
    static col cols[MAXC];
    tpq_write_options opt;
    tpq_err err;
    tpq_writer *w;
    FILE *in, *out;
    char *line = NULL;
    size_t cap = 0, ncols = 0, n = 0, rows = 0, i;
    int hash_bytes = 1, dict = 1;
    uint8_t *arena;
    size_t arena_cap = 64 << 20, arena_len = 0;
    double t0;
    tpq_sink sink;

    if (argc < 4)
    {
        fprintf(stderr, "usage: parquet_write blocks|txs|logs IN.copy OUT.parquet [--dict on|off] [--codec zstd|none] "
                "[--hash bytes|fixed] [--u256 fixed|text]\n");
        return 2;
    }
    spec = strcmp(argv[1], "blocks") == 0 ? blocks_cols : strcmp(argv[1], "txs") == 0 ? txs_cols : logs_cols;
    tpq_write_options_init(&opt);
    for (i = 4; i + 1 < (size_t) argc; i += 2)
    {
        if (strcmp(argv[i], "--dict") == 0)
            dict = strcmp(argv[i + 1], "off") != 0;
        else if (strcmp(argv[i], "--codec") == 0)
            opt.codec = strcmp(argv[i + 1], "none") == 0 ? TPQ_CODEC_UNCOMPRESSED : TPQ_CODEC_ZSTD;
        else if (strcmp(argv[i], "--hash") == 0)
            hash_bytes = strcmp(argv[i + 1], "bytes") == 0;
        else if (strcmp(argv[i], "--u256") == 0)
            u256_text = strcmp(argv[i + 1], "text") == 0;
    }
    for (ncols = 0; spec[ncols].name; ncols++)
    {
        const colspec *c = &spec[ncols];
        tpq_column_def *d = &defs[ncols];

        memset(d, 0, sizeof(*d));
        d->name = c->name;
        d->nullable = c->nullable;
        d->dict = dict ? TPQ_DICT_AUTO : TPQ_DICT_OFF;
        switch (c->kind)
        {
            case K_I64: d->type = TPQ_INT64; break;
            case K_I32: d->type = TPQ_INT32; break;
            case K_I16: d->type = TPQ_INT16; break;
            case K_TS: d->type = TPQ_TIMESTAMPTZ; break;
            case K_HASH: d->type = hash_bytes ? TPQ_BYTES : TPQ_FIXED; d->fixed_len = 32; break;
            case K_ADDR: d->type = hash_bytes ? TPQ_BYTES : TPQ_FIXED; d->fixed_len = 20; break;
            case K_U256: d->type = u256_text ? TPQ_NUMERIC : TPQ_UINT256; break;
            default: d->type = TPQ_BYTES; break;
        }
        cols[ncols].spec = c;
        vals[ncols].nulls = cols[ncols].nulls;
        vals[ncols].v.i64 = d->type == TPQ_INT64 || d->type == TPQ_TIMESTAMPTZ ? cols[ncols].i64 : NULL;
        if (d->type == TPQ_INT32)
            vals[ncols].v.i32 = cols[ncols].i32;
        else if (d->type == TPQ_INT16)
            vals[ncols].v.i16 = cols[ncols].i16;
        else if (vals[ncols].v.i64 == NULL)
            vals[ncols].v.bytes = cols[ncols].bytes;
    }
    in = fopen(argv[2], "r");
    out = fopen(argv[3], "wb");
    if (in == NULL || out == NULL)
    {
        fprintf(stderr, "cannot open %s or %s\n", argv[2], argv[3]);
        return 1;
    }
    arena = malloc(arena_cap);
    sink.write = file_write;
    sink.ctx = out;
    t0 = now_s();
    w = tpq_writer_open(defs, ncols, &opt, &sink, NULL, &err);
    if (w == NULL)
    {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    while (getline(&line, &cap, in) > 0)
    {
        char *f = line, *next;
        size_t k;

        /* skip partition_key and producer_task_id */
        for (k = 0; k < 2; k++)
            f = strchr(f, '\t') + 1;
        for (k = 0; k < ncols; k++)
        {
            col *c = &cols[k];

            next = strpbrk(f, "\t\n");
            if (next)
                *next = '\0';
            c->nulls[n] = strcmp(f, "\\N") == 0;
            if (!c->nulls[n])
            {
                switch (c->spec->kind)
                {
                    case K_I64: c->i64[n] = strtoll(f, NULL, 10); break;
                    case K_I32: c->i32[n] = (int32_t) strtol(f, NULL, 10); break;
                    case K_I16: c->i16[n] = (int16_t) strtol(f, NULL, 10); break;
                    case K_TS: c->i64[n] = parse_ts(f); break;
                    case K_U256:
                        if (u256_text)
                        {
                            size_t len = strlen(f);

                            memcpy(arena + arena_len, f, len);
                            c->bytes[n].ptr = arena + arena_len;
                            c->bytes[n].len = (uint32_t) len;
                            arena_len += len;
                        }
                        else
                        {
                            decimal_to_u256(f, arena + arena_len);
                            c->bytes[n].ptr = arena + arena_len;
                            c->bytes[n].len = 32;
                            arena_len += 32;
                        }
                        break;
                    default:
                        {
                            /* bytea in text COPY: \\x followed by hex */
                            const char *h = f + 3;
                            size_t len = strlen(h) / 2, j;
                            uint8_t *b = arena + arena_len;

                            for (j = 0; j < len; j++)
                                b[j] = (uint8_t) (hexval(h[2 * j]) << 4 | hexval(h[2 * j + 1]));
                            c->bytes[n].ptr = b;
                            c->bytes[n].len = (uint32_t) len;
                            arena_len += len;
                            break;
                        }
                }
            }
            f = next ? next + 1 : f + strlen(f);
        }
        rows++;
        if (++n == BATCH || arena_len > arena_cap - (1 << 20))
        {
            if (tpq_writer_write(w, vals, n, &err) < 0)
            {
                fprintf(stderr, "write: %s\n", err.msg);
                return 1;
            }
            n = 0;
            arena_len = 0;
        }
    }
    if ((n && tpq_writer_write(w, vals, n, &err) < 0) || tpq_writer_close(w, &err) < 0)
    {
        fprintf(stderr, "write: %s\n", err.msg);
        return 1;
    }
    if (fclose(out) != 0)
        return 1;
    {
        double secs = now_s() - t0;
        FILE *o = fopen(argv[3], "rb");
        long size;

        fseek(o, 0, SEEK_END);
        size = ftell(o);
        fclose(o);
        printf("%s %zu %ld %.3f %ld\n", argv[1], rows, size, secs, peak_rss_kb());
    }
    free(line);
    free(arena);
    fclose(in);
    return 0;
}
