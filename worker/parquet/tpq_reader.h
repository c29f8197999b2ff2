/*
 * tpq_reader.h: the reader's state, shared by tpq_read.c (opening and
 * validating a file) and tpq_decode.c (decoding column chunks).
 */
#ifndef TRACE_TPQ_READER_H
#define TRACE_TPQ_READER_H

#include "tpq_int.h"

struct tpq_reader
{
    tpq_alloc alloc;
    tpq_source src;
    tpq_read_options opt;
    tpq_arena arena;
    uint8_t *footer;
    uint64_t footer_off, data_end;
    pq_file_meta meta;
    tpq_column_info *cols;
    pq_schema_elem **elems;
    size_t ncols;
    tpq_chunk_info *chunks;     /* row group major */
    tpq_codec_ctx *codec;
};

/* Reads len bytes at off of the source, bounds-checked against its size. */
int reader_read_at(tpq_reader *r, uint64_t off, void *buf, size_t len, tpq_err *err);

#endif
