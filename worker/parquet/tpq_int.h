/*
 * tpq_int.h: what the modules of the Parquet format code share and callers
 * do not see: the allocator helpers and growable buffer, the Thrift compact
 * protocol, the Parquet metadata structures, the RLE/bit-packed hybrid, the
 * page codecs.  Parquet's enum numbers are from parquet-format's
 * parquet.thrift.
 */
#ifndef TRACE_TPQ_INT_H
#define TRACE_TPQ_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include "tpq.h"

#if defined(__GNUC__)
#define TPQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TPQ_PRINTF(a, b)
#endif

/* Parquet's physical types, repetition, encodings, page types. */
enum { PQ_BOOLEAN = 0, PQ_INT32 = 1, PQ_INT64 = 2, PQ_INT96 = 3, PQ_FLOAT = 4,
       PQ_DOUBLE = 5, PQ_BYTE_ARRAY = 6, PQ_FIXED_LEN_BYTE_ARRAY = 7 };
enum { PQ_REQUIRED = 0, PQ_OPTIONAL = 1, PQ_REPEATED = 2 };
enum { PQ_ENC_PLAIN = 0, PQ_ENC_PLAIN_DICTIONARY = 2, PQ_ENC_RLE = 3,
       PQ_ENC_BIT_PACKED = 4, PQ_ENC_RLE_DICTIONARY = 8 };
enum { PQ_PAGE_DATA = 0, PQ_PAGE_INDEX = 1, PQ_PAGE_DICTIONARY = 2, PQ_PAGE_DATA_V2 = 3 };
/* ConvertedType (legacy annotations, written beside the logical types). */
enum { PQ_CT_UTF8 = 0, PQ_CT_TIMESTAMP_MICROS = 10, PQ_CT_INT_16 = 16, PQ_CT_INT_32 = 17,
       PQ_CT_INT_64 = 18, PQ_CT_JSON = 19 };
/* LogicalType union members (field ids). */
enum { PQ_LT_NONE = 0, PQ_LT_STRING = 1, PQ_LT_DECIMAL = 5, PQ_LT_DATE = 6,
       PQ_LT_TIMESTAMP = 8, PQ_LT_INTEGER = 10, PQ_LT_JSON = 12, PQ_LT_OTHER = 99 };
enum { PQ_UNIT_MILLIS = 1, PQ_UNIT_MICROS = 2, PQ_UNIT_NANOS = 3 };

/* ------------------------------------------------------------ errors */

void tpq_seterr(tpq_err *err, const char *fmt, ...) TPQ_PRINTF(2, 3);

/* ------------------------------------------------------------ memory */

void *tpq_malloc(const tpq_alloc *a, size_t n);
void tpq_free(const tpq_alloc *a, void *p);
/* A copy of a (or of the default allocator) to keep in an object. */
tpq_alloc tpq_alloc_or_default(const tpq_alloc *a);

/* Growable byte buffer; data owned by the buffer, freed by tpq_buf_free. */
typedef struct tpq_buf
{
    uint8_t *data;
    size_t len, cap;
    const tpq_alloc *alloc;
} tpq_buf;

void tpq_buf_init(tpq_buf *b, const tpq_alloc *a);
void tpq_buf_free(tpq_buf *b);
int tpq_buf_reserve(tpq_buf *b, size_t extra);       /* 0 or -1 (no memory) */
int tpq_buf_put(tpq_buf *b, const void *p, size_t n);
int tpq_buf_put_u8(tpq_buf *b, uint8_t v);
int tpq_buf_put_le32(tpq_buf *b, uint32_t v);
int tpq_buf_put_le64(tpq_buf *b, uint64_t v);
int tpq_buf_put_varint(tpq_buf *b, uint64_t v);
static inline void tpq_buf_reset(tpq_buf *b) { b->len = 0; }

static inline uint32_t tpq_rd_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static inline uint64_t tpq_rd_le64(const uint8_t *p)
{
    return (uint64_t) tpq_rd_le32(p) | (uint64_t) tpq_rd_le32(p + 4) << 32;
}
static inline void tpq_wr_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v; p[1] = (uint8_t) (v >> 8); p[2] = (uint8_t) (v >> 16); p[3] = (uint8_t) (v >> 24);
}

/* ------------------------------------------------- Thrift compact protocol */

enum { TT_STOP = 0, TT_TRUE = 1, TT_FALSE = 2, TT_BYTE = 3, TT_I16 = 4, TT_I32 = 5,
       TT_I64 = 6, TT_DOUBLE = 7, TT_BINARY = 8, TT_LIST = 9, TT_SET = 10, TT_MAP = 11,
       TT_STRUCT = 12 };

#define TPQ_THRIFT_DEPTH 32

/* Encoder: appends to buf; field ids are delta-coded per struct level.
 * Errors (no memory, nesting too deep) are sticky in failed. */
typedef struct tpq_tw
{
    tpq_buf *buf;
    int16_t last[TPQ_THRIFT_DEPTH];
    int depth;
    bool failed;
} tpq_tw;

void tw_init(tpq_tw *w, tpq_buf *buf);
void tw_struct_begin(tpq_tw *w);
void tw_struct_end(tpq_tw *w);              /* writes STOP */
void tw_field(tpq_tw *w, int16_t id, int type);
void tw_i32(tpq_tw *w, int16_t id, int32_t v);
void tw_i64(tpq_tw *w, int16_t id, int64_t v);
void tw_bool(tpq_tw *w, int16_t id, bool v);
void tw_byte(tpq_tw *w, int16_t id, int8_t v);
void tw_binary(tpq_tw *w, int16_t id, const void *p, size_t n);
void tw_string(tpq_tw *w, int16_t id, const char *s);
void tw_list_begin(tpq_tw *w, int16_t id, int elem_type, size_t n);  /* field + list header */
void tw_list_header(tpq_tw *w, int elem_type, size_t n);
/* List elements (no field header). */
void tw_elem_i32(tpq_tw *w, int32_t v);
void tw_elem_binary(tpq_tw *w, const void *p, size_t n);
void tw_struct_field_begin(tpq_tw *w, int16_t id);  /* field header + struct begin */

/* Decoder over [p, end): bounds-checked, depth-limited; base is the offset
 * of p in the file, for error messages. */
typedef struct tpq_tr
{
    const uint8_t *start, *p, *end;
    uint64_t base;
    int depth;
    tpq_err *err;
    const char *what;           /* structure being read, for errors */
} tpq_tr;

void tr_init(tpq_tr *r, const uint8_t *p, size_t n, uint64_t base, tpq_err *err);
uint64_t tr_offset(const tpq_tr *r);
int tr_fail(tpq_tr *r, const char *fmt, ...) TPQ_PRINTF(2, 3);    /* returns -1 */
int tr_varint(tpq_tr *r, uint64_t *v);
int tr_i32(tpq_tr *r, int type, int32_t *v);     /* value of a field of type */
int tr_i64(tpq_tr *r, int type, int64_t *v);
int tr_bool(tpq_tr *r, int type, bool *v);
int tr_binary(tpq_tr *r, int type, const uint8_t **p, uint32_t *n);
/* Field header: *type = TT_STOP at the end of a struct.  *id is absolute. */
int tr_field(tpq_tr *r, int16_t *last, int16_t *id, int *type);
int tr_list(tpq_tr *r, int type, int *elem_type, uint32_t *n);
/* Skips one value of type (any nesting, up to TPQ_THRIFT_DEPTH). */
int tr_skip(tpq_tr *r, int type);
int tr_struct_enter(tpq_tr *r, int type);   /* checks type, depth */
void tr_struct_leave(tpq_tr *r);

/* ---------------------------------------------------- Parquet metadata */

typedef struct pq_stats
{
    bool has_min, has_max, has_null_count, has_min_exact, has_max_exact;
    bool min_exact, max_exact;
    const uint8_t *min, *max;   /* min_value / max_value (fields 6 / 5) */
    uint32_t min_len, max_len;
    int64_t null_count;
} pq_stats;

typedef struct pq_schema_elem
{
    char *name;
    bool has_type, has_type_length, has_repetition, has_num_children, has_converted;
    int32_t type, type_length, repetition, num_children, converted;
    int logical;                /* PQ_LT_* */
    int int_bits;               /* INTEGER */
    bool int_signed;
    bool ts_utc;                /* TIMESTAMP */
    int ts_unit;
} pq_schema_elem;

typedef struct pq_column_meta
{
    int32_t type;
    int32_t codec;
    int64_t num_values, total_uncompressed, total_compressed;
    int64_t data_page_offset, dictionary_page_offset;
    bool has_dictionary_page_offset;
    uint32_t nencodings;
    int32_t encodings[8];
    char *path;                 /* path_in_schema joined (flat: one element) */
    uint32_t path_len;          /* number of path elements */
    bool has_stats;
    pq_stats stats;
} pq_column_meta;

typedef struct pq_row_group
{
    int64_t num_rows, total_byte_size;
    uint32_t ncolumns;
    pq_column_meta *columns;
} pq_row_group;

typedef struct pq_kv
{
    char *key, *value;
} pq_kv;

typedef struct pq_file_meta
{
    int32_t version;
    int64_t num_rows;
    uint32_t nschema, nrow_groups, nkv, ncolumn_orders;
    pq_schema_elem *schema;
    pq_row_group *row_groups;
    pq_kv *kv;
    char *created_by;
    bool column_orders_type_defined;    /* every entry is TYPE_ORDER */
} pq_file_meta;

typedef struct pq_page_header
{
    int32_t type, uncompressed_size, compressed_size;
    bool has_data, has_dict;
    int32_t num_values, encoding, def_encoding, rep_encoding;   /* data page v1 */
    int32_t dict_num_values, dict_encoding;
} pq_page_header;

/* Arena for decoded metadata: blocks from the allocator, freed together. */
typedef struct tpq_arena
{
    const tpq_alloc *alloc;
    void *blocks;               /* singly linked list */
    uint8_t *cur;
    size_t left;
    size_t total, cap;          /* bytes handed out, and the cap */
} tpq_arena;

void arena_init(tpq_arena *a, const tpq_alloc *alloc, size_t cap);
void *arena_alloc(tpq_arena *a, size_t n);      /* zeroed; NULL past cap */
void arena_free(tpq_arena *a);

/* Encoders: append to buf via the Thrift writer. */
void pq_write_stats(tpq_tw *w, int16_t id, const pq_stats *s);
void pq_write_schema_elem(tpq_tw *w, const pq_schema_elem *e);
void pq_write_column_chunk(tpq_tw *w, const pq_column_meta *m, int64_t file_offset);
void pq_write_page_header(tpq_tw *w, const pq_page_header *h);
void pq_write_kv(tpq_tw *w, const char *key, const char *value);

/* Decoders: return 0, or -1 with r->err naming the field and offset. */
int pq_read_file_meta(tpq_tr *r, tpq_arena *a, pq_file_meta *m);
int pq_read_page_header(tpq_tr *r, pq_page_header *h);

/* --------------------------------------------- RLE / bit-packed hybrid */

/* Appends the hybrid encoding of n values of bit width w (0..32). */
int rle_encode(tpq_buf *out, const uint32_t *vals, size_t n, int w);
/* Upper bound of rle_encode's output for n values of width w. */
size_t rle_bound(size_t n, int w);
/* Decodes exactly n values from [p, p+len); values must be < 2^w.
 * Returns 0, or -1 with err (offset relative to base). */
int rle_decode(const uint8_t *p, size_t len, int w, uint32_t *out, size_t n,
               uint64_t base, tpq_err *err);
int bit_width(uint32_t max_value);

/* ------------------------------------------------------------- codecs */

typedef struct tpq_codec_ctx tpq_codec_ctx;
tpq_codec_ctx *codec_create(const tpq_alloc *a, int level, tpq_err *err);
void codec_destroy(tpq_codec_ctx *c);
/* Compresses src into out (replacing its contents). */
int codec_compress(tpq_codec_ctx *c, tpq_buf *out, const uint8_t *src, size_t n, tpq_err *err);
/* Decompresses exactly dst_len bytes; anything else is an error. */
int codec_decompress(tpq_codec_ctx *c, uint8_t *dst, size_t dst_len,
                     const uint8_t *src, size_t n, uint64_t offset, tpq_err *err);

/* ------------------------------------------------------------- types */

/* Physical type, logical annotation, width of each tpq_type. */
int tpq_physical(tpq_type t);
/* Bytes of one PLAIN value (BOOLEAN: 1, as statistics store it), 0 for BYTE_ARRAY. */
uint32_t tpq_plain_width(tpq_type t, int32_t fixed_len);
/* Fills e's type fields for a column of type t. */
void tpq_schema_for(const tpq_column_def *c, pq_schema_elem *e);
/* The tpq_type a schema element maps to (with the trace.column_types hint,
 * may be NULL), or -1 with err. */
int tpq_type_from_schema(const pq_schema_elem *e, const char *hint, tpq_type *t, tpq_err *err);
/* Shortens a byte-array bound to at most max bytes: a lower bound stays a
 * lower bound (prefix), an upper bound becomes the prefix with its last
 * byte (STRING: code point) incremented.  Returns the new length, or -1
 * when no upper bound that short exists (all 0xFF). */
long tpq_truncate_bound(tpq_type t, uint8_t *v, size_t len, size_t max, bool upper);

#endif
