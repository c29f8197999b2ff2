/*
 * evm.c: hex decoding of JSON-RPC values and the binary COPY encoder (see
 * evm.h).  Nothing here allocates except the copy buffer, which grows by
 * doubling and reports an allocation failure through cb->failed.
 */
#include "evm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01. */
#define PG_EPOCH_OFFSET 946684800LL
/* The widest quantity accepted for numeric columns: an EVM word. */
#define MAX_QUANTITY_DIGITS 64

/* Hex digit values plus one; 0 for anything else. */
static const uint8_t hexval1[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
    ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* The value of hex digit c, or -1: one load per digit, and a bad digit
 * anywhere shows as a negative OR of the values. */
static inline int
hexval(unsigned char c)
{
    return (int) hexval1[c] - 1;
}

/* Decodes 2 * n hex digits at p into out.  0, or -1 on a bad digit. */
static int
decode_pairs(const char *p, size_t n, uint8_t *out)
{
    const unsigned char *u = (const unsigned char *) p;
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        int hi = hexval(u[2 * i]), lo = hexval(u[2 * i + 1]);

        bad |= hi | lo;
        out[i] = (uint8_t) ((unsigned) hi << 4 | (unsigned) lo);
    }
    return bad < 0 ? -1 : 0;
}

/* The digits after "0x" of s[0..n): *body and *digits; 0 or -1. */
static int
hex_body(const char *s, size_t n, const char **body, size_t *digits)
{
    if (s == NULL || n < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return -1;
    *body = s + 2;
    *digits = n - 2;
    return 0;
}

/* The digits of a quantity without its leading zeros (one "0" stays). */
static int
quantity_digits(const char *s, size_t n, const char **p, size_t *k)
{
    if (hex_body(s, n, p, k) < 0 || *k == 0)
        return -1;
    while (*k > 1 && **p == '0') {
        (*p)++;
        (*k)--;
    }
    return 0;
}

int
hex_to_u64_n(const char *s, size_t n, uint64_t *out)
{
    const char *p;
    size_t k;
    uint64_t v = 0;

    if (quantity_digits(s, n, &p, &k) < 0 || k > 16)
        return -1;
    for (size_t i = 0; i < k; i++) {
        int d = hexval((unsigned char) p[i]);

        if (d < 0)
            return -1;
        v = (v << 4) | (uint64_t) d;
    }
    *out = v;
    return 0;
}

int
hex_to_u64(const char *s, uint64_t *out)
{
    return s == NULL ? -1 : hex_to_u64_n(s, strlen(s), out);
}

int
hex_to_fixed_n(const char *s, size_t n, uint8_t *out, size_t nbytes)
{
    const char *p;
    size_t k;

    if (hex_body(s, n, &p, &k) < 0 || k != 2 * nbytes)
        return -1;
    return decode_pairs(p, nbytes, out);
}

int
hex_to_fixed(const char *s, uint8_t *out, size_t n)
{
    return s == NULL ? -1 : hex_to_fixed_n(s, strlen(s), out, n);
}

int
hex_data_len(const char *s, size_t *nbytes)
{
    const char *p;
    size_t k;

    if (s == NULL || hex_body(s, strlen(s), &p, &k) < 0 || k % 2)
        return -1;
    for (size_t i = 0; i < k; i++)
        if (hexval((unsigned char) p[i]) < 0)
            return -1;
    *nbytes = k / 2;
    return 0;
}

void
bytes_to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    out[0] = '0';
    out[1] = 'x';
    for (size_t i = 0; i < n; i++) {
        out[2 + 2 * i] = digits[in[i] >> 4];
        out[3 + 2 * i] = digits[in[i] & 15];
    }
    out[2 + 2 * n] = '\0';
}

/* A quantity as base-10000 groups, least significant first: the form
 * numeric's binary format wants (reversed).  Returns the number of groups,
 * or -1 for a bad quantity.  groups must hold 20 entries (64 hex digits are
 * below 10^78, i.e. 20 groups). */
static int
quantity_groups(const char *s, size_t len, uint16_t *groups)
{
    uint8_t nib[MAX_QUANTITY_DIGITS];
    const char *p;
    size_t n, start = 0;
    uint64_t v;
    int ng = 0;

    if (quantity_digits(s, len, &p, &n) < 0 || n > MAX_QUANTITY_DIGITS)
        return -1;
    if (n <= 16) {                      /* most quantities: one machine word */
        if (hex_to_u64_n(s, len, &v) < 0)
            return -1;
        for (; v > 0; v /= 10000)
            groups[ng++] = (uint16_t) (v % 10000);
        return ng;
    }
    for (size_t i = 0; i < n; i++) {
        int d = hexval((unsigned char) p[i]);

        if (d < 0)
            return -1;
        nib[i] = (uint8_t) d;
    }
    /* Long division of the nibble string by 10000, until it is zero. */
    while (start < n) {
        uint32_t rem = 0;

        for (size_t i = start; i < n; i++) {
            uint32_t cur = rem * 16 + nib[i];

            nib[i] = (uint8_t) (cur / 10000);
            rem = cur % 10000;
        }
        groups[ng++] = (uint16_t) rem;
        while (start < n && nib[start] == 0)
            start++;
    }
    return ng;
}

int
hex_to_decimal(const char *s, char *out, size_t outlen)
{
    uint16_t g[24];
    int ng = s == NULL ? -1 : quantity_groups(s, strlen(s), g);
    size_t len = 0;

    if (ng < 0 || outlen < 2)
        return -1;
    if (ng == 0) {
        out[0] = '0';
        out[1] = '\0';
        return 0;
    }
    for (int i = ng - 1; i >= 0; i--) {
        int w = snprintf(out + len, outlen - len, i == ng - 1 ? "%u" : "%04u", g[i]);

        if (w < 0 || (size_t) w >= outlen - len)
            return -1;
        len += (size_t) w;
    }
    return 0;
}

/* ---- the COPY buffer ------------------------------------------------- */

void
cb_init(copybuf *cb)
{
    memset(cb, 0, sizeof *cb);
}

void
cb_free(copybuf *cb)
{
    free(cb->data);
    memset(cb, 0, sizeof *cb);
}

static void
cb_fail(copybuf *cb, const char *msg)
{
    if (!cb->failed) {
        cb->failed = 1;
        snprintf(cb->error, sizeof cb->error, "%s", msg);
    }
}

/* Room for n more bytes; 0 or -1 (failed). */
static int
cb_reserve(copybuf *cb, size_t n)
{
    size_t cap;
    uint8_t *d;

    if (cb->failed)
        return -1;
    if (cb->len + n <= cb->cap)
        return 0;
    cap = cb->cap ? cb->cap : 65536;
    while (cap < cb->len + n)
        cap *= 2;
    d = realloc(cb->data, cap);
    if (d == NULL) {
        cb_fail(cb, "out of memory");
        return -1;
    }
    cb->data = d;
    cb->cap = cap;
    return 0;
}

static void
put16(copybuf *cb, uint16_t v)
{
    if (cb_reserve(cb, 2) < 0)
        return;
    cb->data[cb->len++] = (uint8_t) (v >> 8);
    cb->data[cb->len++] = (uint8_t) v;
}

static void
put32(copybuf *cb, uint32_t v)
{
    if (cb_reserve(cb, 4) < 0)
        return;
    for (int i = 3; i >= 0; i--)
        cb->data[cb->len++] = (uint8_t) (v >> (8 * i));
}

static void
put64(copybuf *cb, uint64_t v)
{
    if (cb_reserve(cb, 8) < 0)
        return;
    for (int i = 7; i >= 0; i--)
        cb->data[cb->len++] = (uint8_t) (v >> (8 * i));
}

void
cb_reset(copybuf *cb)
{
    static const uint8_t sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

    cb->len = 0;
    cb->rows = 0;
    cb->failed = 0;
    cb->error[0] = '\0';
    if (cb_reserve(cb, sizeof sig) < 0)
        return;
    memcpy(cb->data, sig, sizeof sig);
    cb->len = sizeof sig;
    put32(cb, 0);       /* flags */
    put32(cb, 0);       /* header extension length */
}

void
cb_tuple(copybuf *cb, int nfields)
{
    cb->tuple_start = cb->len;
    cb->rows++;
    put16(cb, (uint16_t) nfields);
}

void
cb_null(copybuf *cb)
{
    put32(cb, 0xffffffffu);
}

void
cb_int2(copybuf *cb, int16_t v)
{
    put32(cb, 2);
    put16(cb, (uint16_t) v);
}

void
cb_int4(copybuf *cb, int32_t v)
{
    put32(cb, 4);
    put32(cb, (uint32_t) v);
}

void
cb_int8(copybuf *cb, int64_t v)
{
    put32(cb, 8);
    put64(cb, (uint64_t) v);
}

void
cb_bytes(copybuf *cb, const void *p, size_t n)
{
    if (n > 0x3fffffff) {
        cb_fail(cb, "a value is larger than 1 GB");
        return;
    }
    put32(cb, (uint32_t) n);
    if (n == 0 || cb_reserve(cb, n) < 0)
        return;
    memcpy(cb->data + cb->len, p, n);
    cb->len += n;
}

void
cb_bytea_hex_n(copybuf *cb, const char *hex, size_t len, const char *what)
{
    const char *p;
    size_t k;
    char msg[160];

    if (hex_body(hex, len, &p, &k) < 0 || k % 2 || k / 2 > 0x3fffffff)
        goto bad;
    put32(cb, (uint32_t) (k / 2));
    if (k == 0 || cb_reserve(cb, k / 2) < 0)
        return;
    if (decode_pairs(p, k / 2, cb->data + cb->len) < 0)
        goto bad;
    cb->len += k / 2;
    return;
bad:
    snprintf(msg, sizeof msg, "%s is not hex data", what);
    cb_fail(cb, msg);
}

void
cb_bytea_hex(copybuf *cb, const char *hex, const char *what)
{
    cb_bytea_hex_n(cb, hex, hex ? strlen(hex) : 0, what);
}

void
cb_numeric_hex_n(copybuf *cb, const char *hex, size_t len, const char *what)
{
    uint16_t g[24];
    int ng = quantity_groups(hex, len, g);
    int lo = 0;
    char msg[160];

    if (ng < 0) {
        snprintf(msg, sizeof msg, "%s is not a hex quantity of at most 256 bits", what);
        cb_fail(cb, msg);
        return;
    }
    while (lo < ng && g[lo] == 0)       /* trailing zero groups are implied by the weight */
        lo++;
    put32(cb, (uint32_t) (8 + 2 * (ng - lo)));
    put16(cb, (uint16_t) (ng - lo));                /* ndigits */
    put16(cb, (uint16_t) (ng > 0 ? ng - 1 : 0));    /* weight of the first group */
    put16(cb, 0);                                   /* sign: positive */
    put16(cb, 0);                                   /* dscale */
    for (int i = ng - 1; i >= lo; i--)
        put16(cb, g[i]);
}

void
cb_numeric_hex(copybuf *cb, const char *hex, const char *what)
{
    cb_numeric_hex_n(cb, hex, hex ? strlen(hex) : 0, what);
}

void
cb_timestamptz_unix(copybuf *cb, int64_t secs)
{
    put32(cb, 8);
    put64(cb, (uint64_t) ((secs - PG_EPOCH_OFFSET) * 1000000LL));
}

void
cb_finish(copybuf *cb)
{
    put16(cb, 0xffff);
}
