/*
 * tpq_meta.c: Parquet's metadata structures (FileMetaData, SchemaElement,
 * RowGroup, ColumnChunk, ColumnMetaData, Statistics, KeyValue, PageHeader,
 * DataPageHeader, DictionaryPageHeader) to and from Thrift compact.
 *
 * Field ids are parquet-format's parquet.thrift.  The decoder keeps what the
 * reader uses, skips every other field (so files with newer optional fields
 * still parse), and checks required fields are present.  Strings are copied
 * NUL-terminated into the arena; statistics bounds point into the footer
 * buffer, which the reader keeps.
 */
#include <string.h>

#include "tpq_int.h"

/* ------------------------------------------------------------- encoders */

void
pq_write_stats(tpq_tw *w, int16_t id, const pq_stats *s)
{
    tw_struct_field_begin(w, id);
    if (s->has_null_count)
        tw_i64(w, 3, s->null_count);
    if (s->has_max)
        tw_binary(w, 5, s->max, s->max_len);
    if (s->has_min)
        tw_binary(w, 6, s->min, s->min_len);
    if (s->has_max_exact)
        tw_bool(w, 7, s->max_exact);
    if (s->has_min_exact)
        tw_bool(w, 8, s->min_exact);
    tw_struct_end(w);
}

/* SchemaElement; the logical type is written with its legacy ConvertedType
 * twin so that older readers annotate the column too. */
void
pq_write_schema_elem(tpq_tw *w, const pq_schema_elem *e)
{
    tw_struct_begin(w);
    if (e->has_type)
        tw_i32(w, 1, e->type);
    if (e->has_type_length)
        tw_i32(w, 2, e->type_length);
    if (e->has_repetition)
        tw_i32(w, 3, e->repetition);
    tw_string(w, 4, e->name);
    if (e->has_num_children)
        tw_i32(w, 5, e->num_children);
    if (e->has_converted)
        tw_i32(w, 6, e->converted);
    if (e->logical != PQ_LT_NONE)
    {
        tw_struct_field_begin(w, 10);           /* LogicalType union */
        tw_struct_field_begin(w, (int16_t) e->logical);
        if (e->logical == PQ_LT_INTEGER)
        {
            tw_byte(w, 1, (int8_t) e->int_bits);
            tw_bool(w, 2, e->int_signed);
        }
        else if (e->logical == PQ_LT_TIMESTAMP)
        {
            tw_bool(w, 1, e->ts_utc);
            tw_struct_field_begin(w, 2);        /* TimeUnit union */
            tw_struct_field_begin(w, (int16_t) e->ts_unit);
            tw_struct_end(w);
            tw_struct_end(w);
        }
        tw_struct_end(w);
        tw_struct_end(w);
    }
    tw_struct_end(w);
}

/* ColumnChunk with its ColumnMetaData (the chunk's file_offset is where its
 * first page starts). */
void
pq_write_column_chunk(tpq_tw *w, const pq_column_meta *m, int64_t file_offset)
{
    uint32_t i;

    tw_struct_begin(w);
    tw_i64(w, 2, file_offset);
    tw_struct_field_begin(w, 3);
    tw_i32(w, 1, m->type);
    tw_list_begin(w, 2, TT_I32, m->nencodings);
    for (i = 0; i < m->nencodings; i++)
        tw_elem_i32(w, m->encodings[i]);
    tw_list_begin(w, 3, TT_BINARY, 1);
    tw_elem_binary(w, m->path, strlen(m->path));
    tw_i32(w, 4, m->codec);
    tw_i64(w, 5, m->num_values);
    tw_i64(w, 6, m->total_uncompressed);
    tw_i64(w, 7, m->total_compressed);
    tw_i64(w, 9, m->data_page_offset);
    if (m->has_dictionary_page_offset)
        tw_i64(w, 11, m->dictionary_page_offset);
    if (m->has_stats)
        pq_write_stats(w, 12, &m->stats);
    tw_struct_end(w);
    tw_struct_end(w);
}

void
pq_write_page_header(tpq_tw *w, const pq_page_header *h)
{
    tw_struct_begin(w);
    tw_i32(w, 1, h->type);
    tw_i32(w, 2, h->uncompressed_size);
    tw_i32(w, 3, h->compressed_size);
    if (h->has_data)
    {
        tw_struct_field_begin(w, 5);
        tw_i32(w, 1, h->num_values);
        tw_i32(w, 2, h->encoding);
        tw_i32(w, 3, h->def_encoding);
        tw_i32(w, 4, h->rep_encoding);
        tw_struct_end(w);
    }
    if (h->has_dict)
    {
        tw_struct_field_begin(w, 7);
        tw_i32(w, 1, h->dict_num_values);
        tw_i32(w, 2, h->dict_encoding);
        tw_struct_end(w);
    }
    tw_struct_end(w);
}

void
pq_write_kv(tpq_tw *w, const char *key, const char *value)
{
    tw_struct_begin(w);
    tw_string(w, 1, key);
    if (value)
        tw_string(w, 2, value);
    tw_struct_end(w);
}

/* ------------------------------------------------------------- decoders */

/* Iterates the fields of a struct: FOR_FIELDS(r, id, type) { switch (id) ... } */
#define FOR_FIELDS(r, id, type) \
    for (int16_t last_##id = 0, id = 0; \
         tr_field((r), &last_##id, &id, &type) == 0 ? (type != TT_STOP ? 1 : (tr_struct_leave(r), 0)) : (fail_ = 1, 0);)

static char *
arena_strdup(tpq_tr *r, tpq_arena *a, const uint8_t *p, uint32_t n)
{
    char *s = arena_alloc(a, (size_t) n + 1);

    if (s == NULL)
    {
        tr_fail(r, "metadata needs more memory than the cap allows");
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int
read_string(tpq_tr *r, tpq_arena *a, int type, char **out)
{
    const uint8_t *p;
    uint32_t n;

    if (tr_binary(r, type, &p, &n) < 0)
        return -1;
    if (memchr(p, '\0', n) != NULL)
        return tr_fail(r, "string holds a NUL byte");
    *out = arena_strdup(r, a, p, n);
    return *out ? 0 : -1;
}

static int
read_stats(tpq_tr *r, int type, pq_stats *s)
{
    int fail_ = 0, ft;
    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        int rc;

        switch (id)
        {
            case 3: rc = tr_i64(r, ft, &s->null_count); s->has_null_count = true; break;
            case 5: rc = tr_binary(r, ft, &s->max, &s->max_len); s->has_max = true; break;
            case 6: rc = tr_binary(r, ft, &s->min, &s->min_len); s->has_min = true; break;
            case 7: rc = tr_bool(r, ft, &s->max_exact); s->has_max_exact = true; break;
            case 8: rc = tr_bool(r, ft, &s->min_exact); s->has_min_exact = true; break;
            default: rc = tr_skip(r, ft); break;       /* legacy min/max (1, 2): unreliable order */
        }
        if (rc < 0)
            return -1;
    }
    if (fail_)
        return -1;
    if (s->has_null_count && s->null_count < 0)
        return tr_fail(r, "negative null_count");
    return 0;
}

/* LogicalType union: which member, and the parameters Trace uses. */
static int
read_logical(tpq_tr *r, int type, pq_schema_elem *e)
{
    int fail_ = 0, ft, ft2, ft3, members = 0;

    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        members++;
        if (id == PQ_LT_INTEGER)
        {
            bool have_bits = false, have_signed = false;

            e->logical = PQ_LT_INTEGER;
            if (tr_struct_enter(r, ft) < 0)
                return -1;
            FOR_FIELDS(r, id2, ft2)
            {
                int32_t v;

                if (id2 == 1)
                {
                    if (tr_i32(r, ft2, &v) < 0)
                        return -1;
                    e->int_bits = v;
                    have_bits = true;
                }
                else if (id2 == 2)
                {
                    if (tr_bool(r, ft2, &e->int_signed) < 0)
                        return -1;
                    have_signed = true;
                }
                else if (tr_skip(r, ft2) < 0)
                    return -1;
            }
            if (fail_)
                return -1;
            if (!have_bits || !have_signed)
                return tr_fail(r, "IntType without bitWidth or isSigned");
        }
        else if (id == PQ_LT_TIMESTAMP)
        {
            bool have_utc = false;

            e->logical = PQ_LT_TIMESTAMP;
            if (tr_struct_enter(r, ft) < 0)
                return -1;
            FOR_FIELDS(r, id2, ft2)
            {
                if (id2 == 1)
                {
                    if (tr_bool(r, ft2, &e->ts_utc) < 0)
                        return -1;
                    have_utc = true;
                }
                else if (id2 == 2)
                {
                    if (tr_struct_enter(r, ft2) < 0)
                        return -1;
                    FOR_FIELDS(r, id3, ft3)
                    {
                        e->ts_unit = id3;
                        if (tr_skip(r, ft3) < 0)
                            return -1;
                    }
                    if (fail_)
                        return -1;
                }
                else if (tr_skip(r, ft2) < 0)
                    return -1;
            }
            if (fail_)
                return -1;
            if (!have_utc || e->ts_unit == 0)
                return tr_fail(r, "TimestampType without isAdjustedToUTC or unit");
        }
        else
        {
            e->logical = (id == PQ_LT_STRING || id == PQ_LT_JSON || id == PQ_LT_DECIMAL ||
                          id == PQ_LT_DATE) ? id : PQ_LT_OTHER;
            if (tr_skip(r, ft) < 0)
                return -1;
        }
    }
    if (fail_)
        return -1;
    if (members > 1)
        return tr_fail(r, "LogicalType union with %d members", members);
    return 0;
}

static int
read_schema_elem(tpq_tr *r, tpq_arena *a, int type, pq_schema_elem *e)
{
    int fail_ = 0, ft;

    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        int rc;

        switch (id)
        {
            case 1: rc = tr_i32(r, ft, &e->type); e->has_type = true; break;
            case 2: rc = tr_i32(r, ft, &e->type_length); e->has_type_length = true; break;
            case 3: rc = tr_i32(r, ft, &e->repetition); e->has_repetition = true; break;
            case 4: rc = read_string(r, a, ft, &e->name); break;
            case 5: rc = tr_i32(r, ft, &e->num_children); e->has_num_children = true; break;
            case 6: rc = tr_i32(r, ft, &e->converted); e->has_converted = true; break;
            case 10: rc = read_logical(r, ft, e); break;
            default: rc = tr_skip(r, ft); break;
        }
        if (rc < 0)
            return -1;
    }
    if (fail_)
        return -1;
    if (e->name == NULL)
        return tr_fail(r, "SchemaElement without a name");
    return 0;
}

static int
read_column_meta(tpq_tr *r, tpq_arena *a, int type, pq_column_meta *m)
{
    int fail_ = 0, ft, et;
    unsigned seen = 0;
    uint32_t n, i;

    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        int rc = 0;

        if (id >= 1 && id <= 12)
            seen |= 1u << id;
        switch (id)
        {
            case 1: rc = tr_i32(r, ft, &m->type); break;
            case 2:
                if (tr_list(r, ft, &et, &n) < 0)
                    return -1;
                for (i = 0; i < n && rc == 0; i++)
                {
                    int32_t enc;

                    rc = tr_i32(r, et, &enc);
                    if (rc == 0 && m->nencodings < 8)
                        m->encodings[m->nencodings++] = enc;
                }
                break;
            case 3:
                if (tr_list(r, ft, &et, &n) < 0)
                    return -1;
                m->path_len = n;
                for (i = 0; i < n && rc == 0; i++)
                {
                    char *s;

                    rc = read_string(r, a, et, &s);
                    if (rc == 0 && i == 0)
                        m->path = s;
                }
                break;
            case 4: rc = tr_i32(r, ft, &m->codec); break;
            case 5: rc = tr_i64(r, ft, &m->num_values); break;
            case 6: rc = tr_i64(r, ft, &m->total_uncompressed); break;
            case 7: rc = tr_i64(r, ft, &m->total_compressed); break;
            case 9: rc = tr_i64(r, ft, &m->data_page_offset); break;
            case 11:
                rc = tr_i64(r, ft, &m->dictionary_page_offset);
                m->has_dictionary_page_offset = true;
                break;
            case 12: rc = read_stats(r, ft, &m->stats); m->has_stats = true; break;
            default: rc = tr_skip(r, ft); break;
        }
        if (rc < 0)
            return -1;
    }
    if (fail_)
        return -1;
    {
        static const int required[] = {1, 2, 3, 4, 5, 6, 7, 9};

        for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
            if (!(seen & (1u << required[i])))
                return tr_fail(r, "ColumnMetaData without required field %d", required[i]);
    }
    if (m->path_len == 0)
        return tr_fail(r, "ColumnMetaData with an empty path_in_schema");
    return 0;
}

static int
read_column_chunk(tpq_tr *r, tpq_arena *a, int type, pq_column_meta *m)
{
    int fail_ = 0, ft;
    bool have_meta = false;

    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        int rc;

        if (id == 1)
            return tr_fail(r, "ColumnChunk refers to another file (file_path): not supported");
        if (id == 3)
        {
            rc = read_column_meta(r, a, ft, m);
            have_meta = true;
        }
        else
            rc = tr_skip(r, ft);
        if (rc < 0)
            return -1;
    }
    if (fail_)
        return -1;
    if (!have_meta)
        return tr_fail(r, "ColumnChunk without meta_data");
    return 0;
}

static int
read_row_group(tpq_tr *r, tpq_arena *a, int type, pq_row_group *g)
{
    int fail_ = 0, ft, et;
    bool have_cols = false, have_rows = false;
    uint32_t n, i;

    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        int rc = 0;

        switch (id)
        {
            case 1:
                if (tr_list(r, ft, &et, &n) < 0)
                    return -1;
                g->columns = arena_alloc(a, (size_t) n * sizeof(pq_column_meta) + 1);
                if (g->columns == NULL)
                    return tr_fail(r, "metadata needs more memory than the cap allows");
                g->ncolumns = n;
                for (i = 0; i < n && rc == 0; i++)
                    rc = read_column_chunk(r, a, et, &g->columns[i]);
                have_cols = true;
                break;
            case 2: rc = tr_i64(r, ft, &g->total_byte_size); break;
            case 3: rc = tr_i64(r, ft, &g->num_rows); have_rows = true; break;
            default: rc = tr_skip(r, ft); break;
        }
        if (rc < 0)
            return -1;
    }
    if (fail_)
        return -1;
    if (!have_cols || !have_rows)
        return tr_fail(r, "RowGroup without columns or num_rows");
    return 0;
}

static int
read_kv(tpq_tr *r, tpq_arena *a, int type, pq_kv *kv)
{
    int fail_ = 0, ft;

    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        int rc;

        if (id == 1)
            rc = read_string(r, a, ft, &kv->key);
        else if (id == 2)
            rc = read_string(r, a, ft, &kv->value);
        else
            rc = tr_skip(r, ft);
        if (rc < 0)
            return -1;
    }
    if (fail_)
        return -1;
    if (kv->key == NULL)
        return tr_fail(r, "KeyValue without a key");
    return 0;
}

/* ColumnOrder union: true when the member is TYPE_ORDER (field 1). */
static int
read_column_order(tpq_tr *r, int type, bool *type_defined)
{
    int fail_ = 0, ft;

    *type_defined = false;
    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        if (id == 1)
            *type_defined = true;
        if (tr_skip(r, ft) < 0)
            return -1;
    }
    return fail_ ? -1 : 0;
}

int
pq_read_file_meta(tpq_tr *r, tpq_arena *a, pq_file_meta *m)
{
    int fail_ = 0, ft, et;
    bool have_version = false, have_schema = false, have_rows = false, have_groups = false;
    uint32_t n, i;

    memset(m, 0, sizeof(*m));
    r->what = "FileMetaData";
    if (tr_struct_enter(r, TT_STRUCT) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        int rc = 0;

        switch (id)
        {
            case 1: rc = tr_i32(r, ft, &m->version); have_version = true; break;
            case 2:
                r->what = "SchemaElement";
                if (tr_list(r, ft, &et, &n) < 0)
                    return -1;
                m->schema = arena_alloc(a, (size_t) n * sizeof(pq_schema_elem) + 1);
                if (m->schema == NULL)
                    return tr_fail(r, "metadata needs more memory than the cap allows");
                m->nschema = n;
                for (i = 0; i < n && rc == 0; i++)
                    rc = read_schema_elem(r, a, et, &m->schema[i]);
                have_schema = true;
                break;
            case 3: rc = tr_i64(r, ft, &m->num_rows); have_rows = true; break;
            case 4:
                r->what = "RowGroup";
                if (tr_list(r, ft, &et, &n) < 0)
                    return -1;
                m->row_groups = arena_alloc(a, (size_t) n * sizeof(pq_row_group) + 1);
                if (m->row_groups == NULL)
                    return tr_fail(r, "metadata needs more memory than the cap allows");
                m->nrow_groups = n;
                for (i = 0; i < n && rc == 0; i++)
                    rc = read_row_group(r, a, et, &m->row_groups[i]);
                have_groups = true;
                break;
            case 5:
                r->what = "KeyValue";
                if (tr_list(r, ft, &et, &n) < 0)
                    return -1;
                m->kv = arena_alloc(a, (size_t) n * sizeof(pq_kv) + 1);
                if (m->kv == NULL)
                    return tr_fail(r, "metadata needs more memory than the cap allows");
                m->nkv = n;
                for (i = 0; i < n && rc == 0; i++)
                    rc = read_kv(r, a, et, &m->kv[i]);
                break;
            case 6: r->what = "FileMetaData"; rc = read_string(r, a, ft, &m->created_by); break;
            case 7:
                r->what = "ColumnOrder";
                if (tr_list(r, ft, &et, &n) < 0)
                    return -1;
                m->ncolumn_orders = n;
                m->column_orders_type_defined = true;
                for (i = 0; i < n && rc == 0; i++)
                {
                    bool td;

                    rc = read_column_order(r, et, &td);
                    if (!td)
                        m->column_orders_type_defined = false;
                }
                break;
            case 8:
            case 9:
                return tr_fail(r, "encrypted files are not supported");
            default: rc = tr_skip(r, ft); break;
        }
        if (rc < 0)
            return -1;
        r->what = "FileMetaData";
    }
    if (fail_)
        return -1;
    if (!have_version || !have_schema || !have_rows || !have_groups)
        return tr_fail(r, "FileMetaData lacks a required field (version, schema, num_rows, row_groups)");
    return 0;
}

/* A struct whose fields of interest are all required i32s: field ids[k]
 * goes to *dst[k]; other fields are skipped; a missing one is an error. */
static int
read_i32_struct(tpq_tr *r, int type, const char *name, const int16_t *ids, int32_t *const *dst, int n)
{
    int fail_ = 0, ft, k;
    unsigned seen = 0;

    if (tr_struct_enter(r, type) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        for (k = 0; k < n && ids[k] != id; k++)
            ;
        if (k < n)
        {
            if (tr_i32(r, ft, dst[k]) < 0)
                return -1;
            seen |= 1u << k;
        }
        else if (tr_skip(r, ft) < 0)
            return -1;
    }
    if (fail_)
        return -1;
    if (seen != (1u << n) - 1)
        return tr_fail(r, "%s lacks a required field", name);
    return 0;
}

int
pq_read_page_header(tpq_tr *r, pq_page_header *h)
{
    static const int16_t data_ids[] = {1, 2, 3, 4}, dict_ids[] = {1, 2};
    int32_t *const page_dst[] = {&h->type, &h->uncompressed_size, &h->compressed_size};
    int32_t *const data_dst[] = {&h->num_values, &h->encoding, &h->def_encoding, &h->rep_encoding};
    int32_t *const dict_dst[] = {&h->dict_num_values, &h->dict_encoding};
    int fail_ = 0, ft;
    unsigned seen = 0;

    memset(h, 0, sizeof(*h));
    r->what = "PageHeader";
    if (tr_struct_enter(r, TT_STRUCT) < 0)
        return -1;
    FOR_FIELDS(r, id, ft)
    {
        int rc;

        if (id >= 1 && id <= 3)
        {
            rc = tr_i32(r, ft, page_dst[id - 1]);
            seen |= 1u << (id - 1);
        }
        else if (id == 5)
        {
            h->has_data = true;
            rc = read_i32_struct(r, ft, "DataPageHeader", data_ids, data_dst, 4);
        }
        else if (id == 7)
        {
            h->has_dict = true;
            rc = read_i32_struct(r, ft, "DictionaryPageHeader", dict_ids, dict_dst, 2);
        }
        else
            rc = tr_skip(r, ft);
        if (rc < 0)
            return -1;
    }
    if (fail_)
        return -1;
    if (seen != 7)
        return tr_fail(r, "PageHeader lacks type or sizes");
    if (h->uncompressed_size < 0 || h->compressed_size < 0)
        return tr_fail(r, "negative page size");
    return 0;
}
