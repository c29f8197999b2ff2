/*
 * tpq_thrift.c: the Thrift compact protocol, both directions, for the few
 * structures Parquet's metadata uses.
 *
 * Encoding: field headers carry the id as a delta from the previous field of
 * the same struct when 1..15, else the type byte and a zigzag i16; integers
 * are zigzag varints; binaries a varint length and the bytes; lists a
 * size/type byte (size < 15) or 0xF? and a varint size.  Booleans of fields
 * live in the type nibble.
 *
 * The decoder treats its input as hostile: every read is bounds-checked,
 * varints are at most 10 bytes and must fit, nesting is limited to
 * TPQ_THRIFT_DEPTH, a list may not claim more elements than bytes remain,
 * and every error names the structure and the file offset.
 */
#include <stdio.h>
#include <string.h>

#include "tpq_int.h"

/* ------------------------------------------------------------- encoder */

static uint64_t
zigzag64(int64_t v)
{
    return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

void
tw_init(tpq_tw *w, tpq_buf *buf)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
}

static void
tw_put_u8(tpq_tw *w, uint8_t v)
{
    if (tpq_buf_put_u8(w->buf, v) < 0)
        w->failed = true;
}

static void
tw_put_varint(tpq_tw *w, uint64_t v)
{
    if (tpq_buf_put_varint(w->buf, v) < 0)
        w->failed = true;
}

void
tw_struct_begin(tpq_tw *w)
{
    if (w->depth + 1 >= TPQ_THRIFT_DEPTH)
    {
        w->failed = true;
        return;
    }
    w->last[++w->depth] = 0;
}

void
tw_struct_end(tpq_tw *w)
{
    tw_put_u8(w, TT_STOP);
    if (w->depth > 0)
        w->depth--;
}

void
tw_field(tpq_tw *w, int16_t id, int type)
{
    int16_t delta = (int16_t) (id - w->last[w->depth]);

    if (delta > 0 && delta <= 15)
        tw_put_u8(w, (uint8_t) (delta << 4 | type));
    else
    {
        tw_put_u8(w, (uint8_t) type);
        tw_put_varint(w, zigzag64(id));
    }
    w->last[w->depth] = id;
}

void
tw_i32(tpq_tw *w, int16_t id, int32_t v)
{
    tw_field(w, id, TT_I32);
    tw_put_varint(w, zigzag64(v));
}

void
tw_i64(tpq_tw *w, int16_t id, int64_t v)
{
    tw_field(w, id, TT_I64);
    tw_put_varint(w, zigzag64(v));
}

void
tw_bool(tpq_tw *w, int16_t id, bool v)
{
    tw_field(w, id, v ? TT_TRUE : TT_FALSE);
}

void
tw_byte(tpq_tw *w, int16_t id, int8_t v)
{
    tw_field(w, id, TT_BYTE);
    tw_put_u8(w, (uint8_t) v);
}

void
tw_elem_binary(tpq_tw *w, const void *p, size_t n)
{
    tw_put_varint(w, n);
    if (tpq_buf_put(w->buf, p, n) < 0)
        w->failed = true;
}

void
tw_binary(tpq_tw *w, int16_t id, const void *p, size_t n)
{
    tw_field(w, id, TT_BINARY);
    tw_elem_binary(w, p, n);
}

void
tw_string(tpq_tw *w, int16_t id, const char *s)
{
    tw_binary(w, id, s, strlen(s));
}

void
tw_list_header(tpq_tw *w, int elem_type, size_t n)
{
    if (n < 15)
        tw_put_u8(w, (uint8_t) (n << 4 | (size_t) elem_type));
    else
    {
        tw_put_u8(w, (uint8_t) (0xF0 | elem_type));
        tw_put_varint(w, n);
    }
}

void
tw_list_begin(tpq_tw *w, int16_t id, int elem_type, size_t n)
{
    tw_field(w, id, TT_LIST);
    tw_list_header(w, elem_type, n);
}

void
tw_elem_i32(tpq_tw *w, int32_t v)
{
    tw_put_varint(w, zigzag64(v));
}

void
tw_struct_field_begin(tpq_tw *w, int16_t id)
{
    tw_field(w, id, TT_STRUCT);
    tw_struct_begin(w);
}

/* ------------------------------------------------------------- decoder */

void
tr_init(tpq_tr *r, const uint8_t *p, size_t n, uint64_t base, tpq_err *err)
{
    r->start = r->p = p;
    r->end = p + n;
    r->base = base;
    r->depth = 0;
    r->err = err;
    r->what = "thrift";
}

uint64_t
tr_offset(const tpq_tr *r)
{
    return r->base + (uint64_t) (r->p - r->start);
}

int
tr_fail(tpq_tr *r, const char *fmt, ...)
{
    char detail[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    tpq_seterr(r->err, "corrupt Thrift metadata in %s at offset %llu: %s",
               r->what, (unsigned long long) tr_offset(r), detail);
    return -1;
}

int
tr_varint(tpq_tr *r, uint64_t *v)
{
    uint64_t x = 0;
    int shift = 0;

    for (;;)
    {
        uint8_t c;

        if (r->p >= r->end)
            return tr_fail(r, "varint runs past the end");
        c = *r->p++;
        if (shift == 63 && c > 1)
            return tr_fail(r, "varint overflows 64 bits");
        x |= (uint64_t) (c & 0x7F) << shift;
        if (!(c & 0x80))
            break;
        shift += 7;
        if (shift > 63)
            return tr_fail(r, "varint longer than 10 bytes");
    }
    *v = x;
    return 0;
}

static int
tr_zigzag(tpq_tr *r, int64_t *v)
{
    uint64_t u;

    if (tr_varint(r, &u) < 0)
        return -1;
    *v = (int64_t) (u >> 1) ^ -(int64_t) (u & 1);
    return 0;
}

int
tr_i32(tpq_tr *r, int type, int32_t *v)
{
    int64_t x;

    if (type == TT_BYTE)
    {
        if (r->p >= r->end)
            return tr_fail(r, "byte runs past the end");
        *v = (int8_t) *r->p++;
        return 0;
    }
    if (type != TT_I32 && type != TT_I16)
        return tr_fail(r, "expected an integer, found type %d", type);
    if (tr_zigzag(r, &x) < 0)
        return -1;
    if (x < INT32_MIN || x > INT32_MAX)
        return tr_fail(r, "i32 out of range (%lld)", (long long) x);
    *v = (int32_t) x;
    return 0;
}

int
tr_i64(tpq_tr *r, int type, int64_t *v)
{
    int32_t x;

    if (type == TT_I64)
        return tr_zigzag(r, v);
    if (tr_i32(r, type, &x) < 0)
        return -1;
    *v = x;
    return 0;
}

int
tr_bool(tpq_tr *r, int type, bool *v)
{
    if (type == TT_TRUE || type == TT_FALSE)
    {
        *v = type == TT_TRUE;
        return 0;
    }
    return tr_fail(r, "expected a bool, found type %d", type);
}

int
tr_binary(tpq_tr *r, int type, const uint8_t **p, uint32_t *n)
{
    uint64_t len;

    if (type != TT_BINARY)
        return tr_fail(r, "expected a binary, found type %d", type);
    if (tr_varint(r, &len) < 0)
        return -1;
    if (len > (uint64_t) (r->end - r->p))
        return tr_fail(r, "binary of %llu bytes runs past the end (%llu left)",
                       (unsigned long long) len, (unsigned long long) (r->end - r->p));
    *p = r->p;
    *n = (uint32_t) len;
    r->p += len;
    return 0;
}

int
tr_field(tpq_tr *r, int16_t *last, int16_t *id, int *type)
{
    uint8_t c;

    if (r->p >= r->end)
        return tr_fail(r, "struct runs past the end (no STOP)");
    c = *r->p++;
    *type = c & 0x0F;
    if (*type == TT_STOP)
    {
        if (c != 0)
            return tr_fail(r, "bad STOP byte 0x%02x", c);
        return 0;
    }
    if (*type > TT_STRUCT)
        return tr_fail(r, "unknown field type %d", *type);
    if (c >> 4)
        *id = (int16_t) (*last + (c >> 4));
    else
    {
        int64_t x;

        if (tr_zigzag(r, &x) < 0)
            return -1;
        if (x < INT16_MIN || x > INT16_MAX)
            return tr_fail(r, "field id out of range (%lld)", (long long) x);
        *id = (int16_t) x;
    }
    *last = *id;
    return 0;
}

/* List header; each element needs at least one byte (bools and nested
 * headers too), so a count past the remaining bytes is refused at once. */
int
tr_list(tpq_tr *r, int type, int *elem_type, uint32_t *n)
{
    uint8_t c;
    uint64_t size;

    if (type != TT_LIST && type != TT_SET)
        return tr_fail(r, "expected a list, found type %d", type);
    if (r->p >= r->end)
        return tr_fail(r, "list header runs past the end");
    c = *r->p++;
    *elem_type = c & 0x0F;
    size = c >> 4;
    if (size == 15 && tr_varint(r, &size) < 0)
        return -1;
    if (*elem_type == TT_STOP || *elem_type > TT_STRUCT)
        return tr_fail(r, "unknown list element type %d", *elem_type);
    if (size > (uint64_t) (r->end - r->p))
        return tr_fail(r, "list of %llu elements cannot fit in the %llu bytes left",
                       (unsigned long long) size, (unsigned long long) (r->end - r->p));
    *n = (uint32_t) size;
    return 0;
}

int
tr_struct_enter(tpq_tr *r, int type)
{
    if (type != TT_STRUCT)
        return tr_fail(r, "expected a struct, found type %d", type);
    if (++r->depth > TPQ_THRIFT_DEPTH)
        return tr_fail(r, "nesting deeper than %d", TPQ_THRIFT_DEPTH);
    return 0;
}

void
tr_struct_leave(tpq_tr *r)
{
    r->depth--;
}

static int
tr_skip_elem(tpq_tr *r, int type)
{
    if (type == TT_TRUE || type == TT_FALSE)
    {
        /* a bool element of a list is one byte */
        if (r->p >= r->end)
            return tr_fail(r, "bool runs past the end");
        r->p++;
        return 0;
    }
    return tr_skip(r, type);
}

int
tr_skip(tpq_tr *r, int type)
{
    uint64_t u;
    const uint8_t *p;
    uint32_t n, i;
    int et;

    switch (type)
    {
        case TT_TRUE:
        case TT_FALSE:
            return 0;
        case TT_BYTE:
            if (r->p >= r->end)
                return tr_fail(r, "byte runs past the end");
            r->p++;
            return 0;
        case TT_I16:
        case TT_I32:
        case TT_I64:
            return tr_varint(r, &u);
        case TT_DOUBLE:
            if (r->end - r->p < 8)
                return tr_fail(r, "double runs past the end");
            r->p += 8;
            return 0;
        case TT_BINARY:
            return tr_binary(r, type, &p, &n);
        case TT_LIST:
        case TT_SET:
            if (tr_list(r, type, &et, &n) < 0)
                return -1;
            if (++r->depth > TPQ_THRIFT_DEPTH)
                return tr_fail(r, "nesting deeper than %d", TPQ_THRIFT_DEPTH);
            for (i = 0; i < n; i++)
                if (tr_skip_elem(r, et) < 0)
                    return -1;
            r->depth--;
            return 0;
        case TT_MAP:
            {
                uint8_t kv;

                if (tr_varint(r, &u) < 0)
                    return -1;
                if (u == 0)
                    return 0;
                if (r->p >= r->end)
                    return tr_fail(r, "map header runs past the end");
                kv = *r->p++;
                if (u > (uint64_t) (r->end - r->p))
                    return tr_fail(r, "map of %llu entries cannot fit", (unsigned long long) u);
                if (++r->depth > TPQ_THRIFT_DEPTH)
                    return tr_fail(r, "nesting deeper than %d", TPQ_THRIFT_DEPTH);
                for (i = 0; i < u; i++)
                    if (tr_skip_elem(r, kv >> 4) < 0 || tr_skip_elem(r, kv & 0x0F) < 0)
                        return -1;
                r->depth--;
                return 0;
            }
        case TT_STRUCT:
            {
                int16_t last = 0, id;
                int ft;

                if (tr_struct_enter(r, type) < 0)
                    return -1;
                for (;;)
                {
                    if (tr_field(r, &last, &id, &ft) < 0)
                        return -1;
                    if (ft == TT_STOP)
                        break;
                    if (tr_skip(r, ft) < 0)
                        return -1;
                }
                tr_struct_leave(r);
                return 0;
            }
        default:
            return tr_fail(r, "unknown type %d", type);
    }
}
