/*
 * tpq_chunk.h: the column chunk encoder, one per column of a writer: it
 * turns appended values into encoded (and compressed) data pages held in
 * memory until the row group is written, with the chunk's dictionary and
 * statistics.  tpq_write.c owns the file around it.
 */
#ifndef TRACE_TPQ_CHUNK_H
#define TRACE_TPQ_CHUNK_H

#include "tpq_int.h"

typedef struct dict_ref
{
    uint32_t off;               /* PLAIN bytes of the entry in dict (with its length prefix) */
    uint32_t len;
    uint32_t hash;
} dict_ref;

typedef struct tpq_chunk
{
    tpq_column_def def;
    int phys;
    uint32_t width;             /* PLAIN bytes per value for fixed-width types, 0 for BYTE_ARRAY */
    const tpq_write_options *opt;
    tpq_codec_ctx *codec;       /* shared with the writer; NULL when uncompressed */
    const tpq_alloc *alloc;

    /* the current page */
    tpq_buf levels;             /* uint32 definition levels (nullable columns) */
    tpq_buf plain;              /* PLAIN values (BOOLEAN: one byte each, packed at flush) */
    tpq_buf idx;                /* uint32 dictionary indexes */
    size_t page_rows;
    uint64_t page_plain_bytes;  /* what the page's values take as PLAIN */

    /* the dictionary of the chunk */
    bool dict_on, dict_checked, dict_used;
    tpq_buf dict;               /* PLAIN encoding of the entries: the dictionary page */
    tpq_buf refs;               /* dict_ref per entry */
    uint32_t *slots;            /* open addressing: entry + 1, 0 = empty */
    size_t nslots, ndict;

    /* the chunk's encoded data pages (headers and bodies) */
    tpq_buf pages;
    int64_t pages_uncompressed; /* headers + uncompressed bodies */
    int64_t rows, null_count;
    bool plain_used;

    /* statistics */
    bool has_minmax;
    int64_t imin, imax;
    double fmin, fmax;
    bool has_fminmax;
    tpq_buf bmin, bmax;

    /* scratch shared by page assembly */
    tpq_buf *scratch, *cbuf, *hdr;
} tpq_chunk;

void chunk_init(tpq_chunk *c, const tpq_column_def *def, const tpq_write_options *opt,
                tpq_codec_ctx *codec, const tpq_alloc *alloc, tpq_buf *scratch,
                tpq_buf *cbuf, tpq_buf *hdr);
void chunk_free(tpq_chunk *c);
/* Appends rows [0, n) of one batch column; first_row numbers rows in errors. */
int chunk_append(tpq_chunk *c, const tpq_values *v, size_t n, uint64_t first_row, tpq_err *err);
/* Bytes the chunk holds now (pages, dictionary, current page). */
size_t chunk_buffered(const tpq_chunk *c);
/* Ends the current page. */
int chunk_flush_page(tpq_chunk *c, tpq_err *err);
/* Writes the chunk (dictionary page, data pages) through emit at offset
 * *offset (advanced), fills m, and resets the chunk for the next row group. */
int chunk_finish(tpq_chunk *c, uint64_t *offset,
                 int (*emit)(void *ctx, const void *p, size_t n, tpq_err *err), void *ctx,
                 pq_column_meta *m, tpq_buf *stats_buf, tpq_err *err);

#endif
