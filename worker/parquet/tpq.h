/*
 * tpq.h: Trace's Parquet format module (writer and reader core).
 *
 * One module, written once, linked by trace-worker (the writer of cold
 * partitions) and compiled into the PostgreSQL extension (the reader).  So it
 * depends on nothing but libc and libzstd: no PostgreSQL, no libpq, no global
 * mutable state, no exit(), no printing.  Every function returns 0 / -1 (or a
 * pointer / NULL) and fills a caller's tpq_err; memory goes through a
 * tpq_alloc the caller supplies (malloc by default, palloc in a backend).
 *
 * Scope: flat schemas (no nesting, no repetition), REQUIRED or OPTIONAL
 * columns (max definition level 1), data pages v1, PLAIN and RLE_DICTIONARY
 * (dictionary page PLAIN) value encodings, RLE/bit-packed hybrid levels,
 * UNCOMPRESSED and ZSTD pages, chunk statistics (min/max/null_count) in each
 * type's defined sort order.  docs/cold-storage.md maps PostgreSQL types to
 * these column types and explains every choice.
 *
 * Writer: tpq_writer_open(schema, options, sink) -> tpq_writer_write(batch)...
 * -> tpq_writer_close().  Memory is bounded by one row group's encoded pages
 * (options.row_group_bytes) plus one batch, never by the file size.  Output
 * is deterministic: the same rows and options give byte-identical files.
 *
 * Reader: tpq_reader_open(source) parses and validates the footer (any file
 * is untrusted: every length, offset, count and index is bounds-checked and
 * allocations are capped), then tpq_reader_read_column() decodes one column
 * chunk of one row group (projection: only the chunks asked for are read).
 */
#ifndef TRACE_TPQ_H
#define TRACE_TPQ_H

#include <stddef.h>
#include <stdint.h>

#define TPQ_ERR_LEN 384

/* Error buffer filled by every failing call (always NUL-terminated). */
typedef struct tpq_err
{
    char msg[TPQ_ERR_LEN];
} tpq_err;

/*
 * Allocator.  alloc returns NULL on failure (a palloc-backed one must use
 * MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE, or accept that an ERROR unwinds).
 * free(NULL) must be a no-op.  Pass NULL to any function for malloc/free.
 */
typedef struct tpq_alloc
{
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} tpq_alloc;

/* Column types: a physical type plus its logical annotation. */
typedef enum tpq_type
{
    TPQ_BOOL = 0,     /* BOOLEAN */
    TPQ_INT16,        /* INT32 + INT(16, signed); values int16_t */
    TPQ_INT32,        /* INT32 + INT(32, signed) */
    TPQ_INT64,        /* INT64 + INT(64, signed) */
    TPQ_FLOAT64,      /* DOUBLE */
    TPQ_TIMESTAMPTZ,  /* INT64 + TIMESTAMP(isAdjustedToUTC, MICROS): us since 1970 UTC */
    TPQ_STRING,       /* BYTE_ARRAY + STRING (UTF-8, not checked by the writer) */
    TPQ_JSON,         /* BYTE_ARRAY + JSON (jsonb's text form) */
    TPQ_NUMERIC,      /* BYTE_ARRAY + STRING holding numeric's exact text form */
    TPQ_BYTES,        /* BYTE_ARRAY, no annotation (bytea) */
    TPQ_FIXED,        /* FIXED_LEN_BYTE_ARRAY(fixed_len) (bytea of a known width) */
    TPQ_UINT256,      /* FIXED_LEN_BYTE_ARRAY(32), big-endian unsigned (wei) */
    TPQ_TYPE_COUNT
} tpq_type;

/* The type's name as stored in the "trace.column_types" key-value entry. */
const char *tpq_type_name(tpq_type t);

/* Bytes per entry of a tpq_values array of type t (the writer's input):
 * 1 for BOOL, 2 for INT16, 4, 8, or sizeof(tpq_bytes). */
size_t tpq_values_size(tpq_type t);

typedef enum tpq_codec
{
    TPQ_CODEC_UNCOMPRESSED = 0,     /* Parquet's CompressionCodec numbers */
    TPQ_CODEC_ZSTD = 6
} tpq_codec;

typedef enum tpq_dict_mode
{
    TPQ_DICT_AUTO = 0,      /* dictionary while it pays, PLAIN after (default) */
    TPQ_DICT_OFF,           /* PLAIN only */
    TPQ_DICT_ALWAYS         /* dictionary until the byte budget is spent (tests) */
} tpq_dict_mode;

typedef struct tpq_column_def
{
    const char *name;       /* UTF-8, non-empty, unique in the schema */
    tpq_type type;
    int nullable;           /* OPTIONAL when nonzero, REQUIRED otherwise */
    int32_t fixed_len;      /* TPQ_FIXED: bytes per value, 1..TPQ_MAX_FIXED_LEN */
    tpq_dict_mode dict;
} tpq_column_def;

#define TPQ_MAX_COLUMNS     1024
#define TPQ_MAX_FIXED_LEN   4096
#define TPQ_MAX_VALUE_LEN   (256u << 20)    /* one byte-array value */

typedef struct tpq_kv
{
    const char *key;
    const char *value;      /* may be NULL */
} tpq_kv;

typedef struct tpq_write_options
{
    tpq_codec codec;            /* default ZSTD */
    int zstd_level;             /* default 3 */
    size_t page_bytes;          /* target encoded data page size, default 1 MiB */
    size_t page_rows;           /* most rows in a data page, default 20000 */
    size_t row_group_bytes;     /* target encoded row group size, default 64 MiB */
    size_t dict_bytes;          /* dictionary page budget per column chunk, default 1 MiB */
    size_t stats_max_bytes;     /* longest byte-array min/max kept whole, default 64 */
    const tpq_kv *kv;           /* key-value metadata (copied at open) */
    size_t nkv;
} tpq_write_options;

/* Fills *o with the defaults above. */
void tpq_write_options_init(tpq_write_options *o);

/* Where the writer's bytes go, in order.  write returns 0, or -1 with msg. */
typedef struct tpq_sink
{
    int (*write)(void *ctx, const void *data, size_t len, tpq_err *err);
    void *ctx;
} tpq_sink;

typedef struct tpq_bytes
{
    const uint8_t *ptr;
    uint32_t len;
} tpq_bytes;

/*
 * One column of a batch of rows.  nulls: NULL when no row is null, else one
 * byte per row (nonzero = NULL; a REQUIRED column refuses it).  The value
 * array has one entry per row; entries of null rows are ignored.
 *   BOOL: b (0/1)   INT16: i16   INT32: i32   INT64, TIMESTAMPTZ: i64
 *   FLOAT64: f64    STRING, JSON, NUMERIC, BYTES, FIXED, UINT256: bytes
 * FIXED and UINT256 values must have exactly the column's width.
 */
typedef struct tpq_values
{
    const uint8_t *nulls;
    union
    {
        const uint8_t *b;
        const int16_t *i16;
        const int32_t *i32;
        const int64_t *i64;
        const double *f64;
        const tpq_bytes *bytes;
    } v;
} tpq_values;

typedef struct tpq_writer tpq_writer;

/*
 * Starts a file: checks the schema, writes the magic.  schema and options are
 * copied.  Returns NULL with err filled.  The writer owns its buffers; free
 * it with tpq_writer_close (finishes the file) or tpq_writer_free (abandons).
 */
tpq_writer *tpq_writer_open(const tpq_column_def *cols, size_t ncols,
                            const tpq_write_options *opt, const tpq_sink *sink,
                            const tpq_alloc *alloc, tpq_err *err);

/* Appends nrows rows given as one tpq_values per column (in schema order).
 * May flush a row group to the sink.  After a failure the writer refuses
 * everything but tpq_writer_free. */
int tpq_writer_write(tpq_writer *w, const tpq_values *cols, size_t nrows, tpq_err *err);

/* Flushes the last row group, writes the footer, frees the writer (also on
 * failure).  A file with zero rows is valid (no row group). */
int tpq_writer_close(tpq_writer *w, tpq_err *err);

/* Frees the writer without finishing the file. */
void tpq_writer_free(tpq_writer *w);

/* Bytes written to the sink so far, and rows accepted so far. */
uint64_t tpq_writer_bytes(const tpq_writer *w);
uint64_t tpq_writer_rows(const tpq_writer *w);

/* ---------------------------------------------------------------- reader */

/* Random access to the file.  read fills exactly len bytes at offset, or
 * returns -1 with msg. */
typedef struct tpq_source
{
    int (*read)(void *ctx, uint64_t offset, void *buf, size_t len, tpq_err *err);
    uint64_t size;
    void *ctx;
} tpq_source;

/* Caps on what an untrusted file may make the reader allocate (0 = default). */
typedef struct tpq_read_options
{
    size_t max_footer_bytes;    /* default 64 MiB */
    size_t max_chunk_bytes;     /* one column chunk as stored, default 1 GiB */
    size_t max_page_bytes;      /* one page uncompressed, default 256 MiB */
    int64_t max_rows;           /* rows in one row group, default 32 Mi */
} tpq_read_options;

/* Statistics of one column chunk, in the column type's sort order.  min/max
 * point into the reader's metadata (valid until tpq_reader_close). */
typedef struct tpq_stats
{
    int has_null_count;
    int64_t null_count;
    int has_min, has_max;
    int min_exact, max_exact;   /* 0 when the writer truncated the bound */
    const uint8_t *min, *max;   /* PLAIN encoding of the bound (no length prefix) */
    uint32_t min_len, max_len;
} tpq_stats;

typedef struct tpq_column_info
{
    const char *name;
    tpq_type type;
    int nullable;
    int32_t fixed_len;          /* FIXED and UINT256 */
} tpq_column_info;

typedef struct tpq_chunk_info
{
    tpq_codec codec;
    int64_t num_values;
    int64_t compressed_size, uncompressed_size;
    int dictionary;             /* has a dictionary page */
    tpq_stats stats;
} tpq_chunk_info;

/* One decoded column chunk: nrows entries, nulls[i] nonzero for NULL.
 * Byte-array values point into buffers owned by this struct (and
 * INT16 values come widened to i32).  Free with tpq_column_data_free. */
typedef struct tpq_column_data
{
    size_t nrows;
    tpq_type type;
    uint8_t *nulls;
    union
    {
        uint8_t *b;
        int32_t *i32;
        int64_t *i64;
        double *f64;
        tpq_bytes *bytes;
    } v;
    /* private: buffers the values point into */
    void **bufs;
    size_t nbufs, capbufs;
    tpq_alloc alloc;
} tpq_column_data;

typedef struct tpq_reader tpq_reader;

/* Reads and validates the footer.  The source must outlive the reader.
 * Returns NULL with err naming what is wrong and at which offset. */
tpq_reader *tpq_reader_open(const tpq_source *src, const tpq_read_options *opt,
                            const tpq_alloc *alloc, tpq_err *err);
void tpq_reader_close(tpq_reader *r);

int64_t tpq_reader_num_rows(const tpq_reader *r);
size_t tpq_reader_num_columns(const tpq_reader *r);
size_t tpq_reader_num_row_groups(const tpq_reader *r);
const tpq_column_info *tpq_reader_column(const tpq_reader *r, size_t col);
/* Index of the column named name, or -1. */
int tpq_reader_find_column(const tpq_reader *r, const char *name);
int64_t tpq_reader_row_group_rows(const tpq_reader *r, size_t rg);
const tpq_chunk_info *tpq_reader_chunk(const tpq_reader *r, size_t rg, size_t col);
size_t tpq_reader_num_kv(const tpq_reader *r);
/* Key and value (value may be NULL) of entry i, NUL-terminated. */
void tpq_reader_kv(const tpq_reader *r, size_t i, const char **key, const char **value);
/* The value of key, or NULL when absent (or valueless). */
const char *tpq_reader_kv_get(const tpq_reader *r, const char *key);
const char *tpq_reader_created_by(const tpq_reader *r);

/* Decodes column col of row group rg into *out (initialised by the call). */
int tpq_reader_read_column(tpq_reader *r, size_t rg, size_t col,
                           tpq_column_data *out, tpq_err *err);
void tpq_column_data_free(tpq_column_data *d);

/* Compares two PLAIN-encoded values of type t in the type's sort order
 * (signed for integers and floats, unsigned bytes for byte arrays): <0, 0, >0.
 * Used for statistics and pruning. */
int tpq_compare(tpq_type t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif
