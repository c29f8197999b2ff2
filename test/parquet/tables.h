/*
 * tables.h: the file kinds the Parquet writer produces, as deterministic
 * in-memory tables (schema, options, rows), shared by the conformance
 * generator (pqconf.c), the hostile-file tests and the fuzz seeds.
 */
#ifndef TRACE_TEST_PQ_TABLES_H
#define TRACE_TEST_PQ_TABLES_H

#include <stdio.h>
#include "tpq.h"

#define TBL_MAX_COLS 32

typedef struct tbl_col
{
    tpq_column_def def;
    uint8_t *nulls;             /* always allocated: 1 = NULL */
    union
    {
        uint8_t *b;
        int16_t *i16;
        int32_t *i32;
        int64_t *i64;
        double *f64;
        tpq_bytes *bytes;
    } v;
} tbl_col;

typedef struct tbl
{
    const char *name;
    const char *about;
    tbl_col cols[TBL_MAX_COLS];
    size_t ncols, nrows;
    tpq_write_options opt;
    tpq_kv kv[6];
    void **blobs;               /* storage of byte values */
    size_t nblobs, capblobs;
} tbl;

/* Names of every file kind, NULL-terminated. */
extern const char *const tbl_kinds[];

/* Builds the table of a kind; 0, or -1 for an unknown name. */
int tbl_build(tbl *t, const char *kind);
void tbl_free(tbl *t);

/* Writes t through a tpq writer in batches of varying size to the sink. */
int tbl_write(const tbl *t, const tpq_sink *sink, tpq_err *err);
/* Writes it to a file / into memory (malloc'ed *out). */
int tbl_write_file(const tbl *t, const char *path, tpq_err *err);
int tbl_write_mem(const tbl *t, uint8_t **out, size_t *len, tpq_err *err);

/* One JSON object per row: the source rows for the npm readers. */
int tbl_write_jsonl(const tbl *t, FILE *f);
/* The schema as JSON (name, type, nullable, fixed_len per column). */
void tbl_write_schema_json(const tbl *t, FILE *f);

/* Reads the file back with the tpq reader and compares every value and
 * each row group's statistics with t; 0, or -1 with msg. */
int tbl_verify(const tbl *t, const uint8_t *file, size_t len, char *msg, size_t msglen);

/* A source over memory, for the reader. */
typedef struct mem_src
{
    const uint8_t *p;
    size_t n;
} mem_src;
tpq_source mem_source(mem_src *m);

/* Opens a file in memory and decodes every chunk; 0, or -1 with err. */
int tbl_read_all(const uint8_t *p, size_t n, const tpq_read_options *o, const tpq_alloc *a, tpq_err *err);

#endif
