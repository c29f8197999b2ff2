/*
 * tpq_types.c: what each Trace column type is in Parquet (physical type,
 * logical and converted annotations), the reverse mapping for the reader,
 * the sort order statistics use, and the truncation of long bounds.
 *
 * Sort orders (parquet.thrift, ColumnOrder TYPE_ORDER): signed for INT32,
 * INT64 (also TIMESTAMP) and DOUBLE; false < true for BOOLEAN; unsigned
 * lexicographic bytes for BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY, which for a
 * big-endian UINT256 is numeric order.
 */
#include <string.h>

#include "tpq_int.h"

static const char *const type_names[TPQ_TYPE_COUNT] = {
    "bool", "int16", "int32", "int64", "float64", "timestamptz",
    "string", "json", "numeric", "bytes", "fixed", "uint256",
};

const char *
tpq_type_name(tpq_type t)
{
    return (unsigned) t < TPQ_TYPE_COUNT ? type_names[t] : "unknown";
}

int
tpq_physical(tpq_type t)
{
    switch (t)
    {
        case TPQ_BOOL: return PQ_BOOLEAN;
        case TPQ_INT16:
        case TPQ_INT32: return PQ_INT32;
        case TPQ_INT64:
        case TPQ_TIMESTAMPTZ: return PQ_INT64;
        case TPQ_FLOAT64: return PQ_DOUBLE;
        case TPQ_STRING:
        case TPQ_JSON:
        case TPQ_NUMERIC:
        case TPQ_BYTES: return PQ_BYTE_ARRAY;
        case TPQ_FIXED:
        case TPQ_UINT256: return PQ_FIXED_LEN_BYTE_ARRAY;
        default: return -1;
    }
}

size_t
tpq_values_size(tpq_type t)
{
    switch (t)
    {
        case TPQ_BOOL: return 1;
        case TPQ_INT16: return 2;
        case TPQ_INT32: return 4;
        case TPQ_INT64:
        case TPQ_TIMESTAMPTZ:
        case TPQ_FLOAT64: return 8;
        default: return sizeof(tpq_bytes);
    }
}

uint32_t
tpq_plain_width(tpq_type t, int32_t fixed_len)
{
    switch (tpq_physical(t))
    {
        case PQ_BOOLEAN: return 1;
        case PQ_INT32: return 4;
        case PQ_INT64:
        case PQ_DOUBLE: return 8;
        case PQ_FIXED_LEN_BYTE_ARRAY: return t == TPQ_UINT256 ? 32 : (uint32_t) fixed_len;
        default: return 0;
    }
}

void
tpq_schema_for(const tpq_column_def *c, pq_schema_elem *e)
{
    memset(e, 0, sizeof(*e));
    e->name = (char *) c->name;
    e->has_type = true;
    e->type = tpq_physical(c->type);
    e->has_repetition = true;
    e->repetition = c->nullable ? PQ_OPTIONAL : PQ_REQUIRED;
    switch (c->type)
    {
        case TPQ_INT16:
        case TPQ_INT32:
        case TPQ_INT64:
            e->logical = PQ_LT_INTEGER;
            e->int_bits = c->type == TPQ_INT16 ? 16 : c->type == TPQ_INT32 ? 32 : 64;
            e->int_signed = true;
            e->has_converted = true;
            e->converted = c->type == TPQ_INT16 ? PQ_CT_INT_16 : c->type == TPQ_INT32 ? PQ_CT_INT_32 : PQ_CT_INT_64;
            break;
        case TPQ_TIMESTAMPTZ:
            e->logical = PQ_LT_TIMESTAMP;
            e->ts_utc = true;
            e->ts_unit = PQ_UNIT_MICROS;
            e->has_converted = true;
            e->converted = PQ_CT_TIMESTAMP_MICROS;
            break;
        case TPQ_STRING:
        case TPQ_NUMERIC:
            e->logical = PQ_LT_STRING;
            e->has_converted = true;
            e->converted = PQ_CT_UTF8;
            break;
        case TPQ_JSON:
            e->logical = PQ_LT_JSON;
            e->has_converted = true;
            e->converted = PQ_CT_JSON;
            break;
        case TPQ_FIXED:
        case TPQ_UINT256:
            e->has_type_length = true;
            e->type_length = c->type == TPQ_UINT256 ? 32 : c->fixed_len;
            break;
        default:
            break;
    }
}

/* The hint is the entry of "trace.column_types" for this column: it tells
 * apart what Parquet cannot (numeric text from text, uint256 from a 32-byte
 * bytea); it must agree with the physical type. */
int
tpq_type_from_schema(const pq_schema_elem *e, const char *hint, tpq_type *t, tpq_err *err)
{
    int ct = e->has_converted ? e->converted : -1;
    int bits = e->logical == PQ_LT_INTEGER ? e->int_bits
        : ct == PQ_CT_INT_16 ? 16 : ct == PQ_CT_INT_32 ? 32 : ct == PQ_CT_INT_64 ? 64 : 0;

    if (e->logical == PQ_LT_DECIMAL || e->logical == PQ_LT_DATE || e->logical == PQ_LT_OTHER ||
        (e->has_converted && ct != PQ_CT_UTF8 && ct != PQ_CT_TIMESTAMP_MICROS && ct != PQ_CT_INT_16 &&
         ct != PQ_CT_INT_32 && ct != PQ_CT_INT_64 && ct != PQ_CT_JSON))
        goto unsupported;
    if (e->logical == PQ_LT_INTEGER && !e->int_signed)
        goto unsupported;
    switch (e->type)
    {
        case PQ_BOOLEAN:
            *t = TPQ_BOOL;
            break;
        case PQ_INT32:
            if (bits == 16)
                *t = TPQ_INT16;
            else if (bits == 0 || bits == 32)
                *t = TPQ_INT32;
            else
                goto unsupported;
            break;
        case PQ_INT64:
            if (e->logical == PQ_LT_TIMESTAMP || ct == PQ_CT_TIMESTAMP_MICROS)
            {
                if (e->logical == PQ_LT_TIMESTAMP && (e->ts_unit != PQ_UNIT_MICROS || !e->ts_utc))
                    goto unsupported;
                *t = TPQ_TIMESTAMPTZ;
            }
            else if (bits == 0 || bits == 64)
                *t = TPQ_INT64;
            else
                goto unsupported;
            break;
        case PQ_DOUBLE:
            *t = TPQ_FLOAT64;
            break;
        case PQ_BYTE_ARRAY:
            if (e->logical == PQ_LT_JSON || ct == PQ_CT_JSON)
                *t = TPQ_JSON;
            else if (e->logical == PQ_LT_STRING || ct == PQ_CT_UTF8)
                *t = hint && strcmp(hint, "numeric") == 0 ? TPQ_NUMERIC : TPQ_STRING;
            else
                *t = TPQ_BYTES;
            break;
        case PQ_FIXED_LEN_BYTE_ARRAY:
            if (!e->has_type_length || e->type_length < 1 || e->type_length > TPQ_MAX_FIXED_LEN)
            {
                tpq_seterr(err, "column \"%s\": FIXED_LEN_BYTE_ARRAY without a valid type_length", e->name);
                return -1;
            }
            *t = hint && strcmp(hint, "uint256") == 0 && e->type_length == 32 ? TPQ_UINT256 : TPQ_FIXED;
            break;
        default:
            goto unsupported;
    }
    if (hint && strcmp(hint, tpq_type_name(*t)) != 0)
    {
        tpq_seterr(err, "column \"%s\": trace.column_types says %s, the schema says %s",
                   e->name, hint, tpq_type_name(*t));
        return -1;
    }
    return 0;

unsupported:
    tpq_seterr(err, "column \"%s\": physical type %d with this annotation is not a type Trace writes",
               e->name, e->type);
    return -1;
}

static int
cmp_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;

    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

int
tpq_compare(tpq_type t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    switch (t)
    {
        case TPQ_BOOL:
            return (alen ? a[0] : 0) - (blen ? b[0] : 0);
        case TPQ_INT16:
        case TPQ_INT32:
            {
                int32_t x = (int32_t) tpq_rd_le32(a), y = (int32_t) tpq_rd_le32(b);

                return (x > y) - (x < y);
            }
        case TPQ_INT64:
        case TPQ_TIMESTAMPTZ:
            {
                int64_t x = (int64_t) tpq_rd_le64(a), y = (int64_t) tpq_rd_le64(b);

                return (x > y) - (x < y);
            }
        case TPQ_FLOAT64:
            {
                double x, y;
                uint64_t ux = tpq_rd_le64(a), uy = tpq_rd_le64(b);

                memcpy(&x, &ux, 8);
                memcpy(&y, &uy, 8);
                return (x > y) - (x < y);
            }
        default:
            return cmp_bytes(a, alen, b, blen);
    }
}

/* Increments the UTF-8 code point ending the prefix [0, len) (v must have
 * room for one byte more); drops it and tries the one before when it is
 * U+10FFFF.  Returns the new length, or -1 (then bytes are used). */
static long
utf8_increment(uint8_t *v, size_t len)
{
    while (len > 0)
    {
        size_t start = len - 1, n;
        uint32_t cp;

        while (start > 0 && (v[start] & 0xC0) == 0x80)
            start--;
        n = len - start;
        if (n == 1)
            cp = v[start];
        else if (n == 2)
            cp = (uint32_t) (v[start] & 0x1F) << 6 | (v[start + 1] & 0x3F);
        else if (n == 3)
            cp = (uint32_t) (v[start] & 0x0F) << 12 | (uint32_t) (v[start + 1] & 0x3F) << 6 | (v[start + 2] & 0x3F);
        else if (n == 4)
            cp = (uint32_t) (v[start] & 0x07) << 18 | (uint32_t) (v[start + 1] & 0x3F) << 12 |
                (uint32_t) (v[start + 2] & 0x3F) << 6 | (v[start + 3] & 0x3F);
        else
            return -1;          /* not UTF-8: the caller falls back to bytes */
        cp++;
        if (cp == 0xD800)
            cp = 0xE000;
        if (cp > 0x10FFFF)
        {
            len = start;
            continue;
        }
        /* re-encode; the new code point may need one more byte */
        {
            uint8_t enc[4];
            size_t m;

            if (cp < 0x80) { enc[0] = (uint8_t) cp; m = 1; }
            else if (cp < 0x800) { enc[0] = (uint8_t) (0xC0 | cp >> 6); enc[1] = (uint8_t) (0x80 | (cp & 0x3F)); m = 2; }
            else if (cp < 0x10000) { enc[0] = (uint8_t) (0xE0 | cp >> 12); enc[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3F)); enc[2] = (uint8_t) (0x80 | (cp & 0x3F)); m = 3; }
            else { enc[0] = (uint8_t) (0xF0 | cp >> 18); enc[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3F)); enc[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3F)); enc[3] = (uint8_t) (0x80 | (cp & 0x3F)); m = 4; }
            /* m <= n + 1: the bound grows by at most one byte, and the
             * caller's buffer holds more than the cut prefix */
            memcpy(v + start, enc, m);
            return (long) (start + m);
        }
    }
    return -1;
}

long
tpq_truncate_bound(tpq_type t, uint8_t *v, size_t len, size_t max, bool upper)
{
    bool text = t == TPQ_STRING || t == TPQ_JSON || t == TPQ_NUMERIC;
    size_t cut;

    if (len <= max)
        return (long) len;
    cut = max;
    if (text)
        while (cut > 0 && (v[cut] & 0xC0) == 0x80)
            cut--;              /* cut on a character boundary */
    if (!upper)
        return (long) cut;
    if (text && cut > 0)
    {
        long r = utf8_increment(v, cut);

        if (r > 0)
            return r;
    }
    /* bytes: increment the last byte below 0xFF, dropping 0xFF bytes */
    cut = max;
    while (cut > 0 && v[cut - 1] == 0xFF)
        cut--;
    if (cut == 0)
        return -1;
    v[cut - 1]++;
    return (long) cut;
}
