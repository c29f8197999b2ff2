/*
 * fuzz_reader.c: libFuzzer target for the Parquet reader (worker/parquet):
 * opens the input as a file, reads every column chunk of every row group,
 * and touches the statistics and key-values, under ASan/UBSan.  Any input
 * must give a clean error or a clean read: never a crash, a leak, a read
 * out of bounds or an allocation past the caps set here.
 *
 * Seeds: the conformance files (test/parquet/run.sh writes them).
 */
#include <stdint.h>
#include <string.h>

#include "tpq.h"

typedef struct src
{
    const uint8_t *p;
    size_t n;
} src;

static int
fuzz_read(void *ctx, uint64_t off, void *buf, size_t len, tpq_err *err)
{
    src *s = ctx;

    if (off > s->n || len > s->n - off)
    {
        memcpy(err->msg, "past the end", 13);
        return -1;
    }
    memcpy(buf, s->p + off, len);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    src s = {data, size};
    tpq_source source = {fuzz_read, size, &s};
    tpq_read_options o = {1 << 20, 4 << 20, 4 << 20, 200000};
    tpq_err err;
    tpq_reader *r = tpq_reader_open(&source, &o, NULL, &err);
    volatile size_t sink = 0;

    if (r == NULL)
        return 0;
    for (size_t k = 0; k < tpq_reader_num_kv(r); k++)
    {
        const char *key, *value;

        tpq_reader_kv(r, k, &key, &value);
        sink += strlen(key) + (value ? strlen(value) : 0);
    }
    for (size_t g = 0; g < tpq_reader_num_row_groups(r); g++)
        for (size_t i = 0; i < tpq_reader_num_columns(r); i++)
        {
            const tpq_chunk_info *ci = tpq_reader_chunk(r, g, i);
            tpq_column_data d;

            if (ci->stats.has_min)
                sink += ci->stats.min_len ? ci->stats.min[ci->stats.min_len - 1] : 0;
            if (ci->stats.has_max)
                sink += ci->stats.max_len ? ci->stats.max[ci->stats.max_len - 1] : 0;
            if (tpq_reader_read_column(r, g, i, &d, &err) < 0)
                continue;
            for (size_t k = 0; k < d.nrows; k++)
                if (!d.nulls[k] && (d.type == TPQ_STRING || d.type == TPQ_BYTES || d.type == TPQ_JSON ||
                                    d.type == TPQ_NUMERIC || d.type == TPQ_FIXED || d.type == TPQ_UINT256))
                    sink += d.v.bytes[k].len ? d.v.bytes[k].ptr[d.v.bytes[k].len - 1] : 0;
            tpq_column_data_free(&d);
        }
    tpq_reader_close(r);
    (void) sink;
    return 0;
}
