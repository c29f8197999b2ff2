/*
 * json_scan.c: the validating JSON scanner (see json_scan.h for what it
 * accepts).  Recursive descent over a byte buffer; nothing is allocated;
 * recursion is bounded by JSON_SCAN_MAX_DEPTH (a few dozen bytes of stack
 * per level).  tests/fuzz_chain.c checks it against jansson (through jdoc).
 */
#include "json_scan.h"

#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define FAIL(msg)           \
    do {                    \
        *why = (msg);       \
        *pos = p;           \
        return -1;          \
    } while (0)

size_t
json_scan_ws(const char *s, size_t n, size_t pos)
{
    while (pos < n && (s[pos] == ' ' || s[pos] == '\n' || s[pos] == '\r' || s[pos] == '\t'))
        pos++;
    return pos;
}

static int
hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s[p..]: the code unit, or -1. */
static long
hex4(const char *s, size_t n, size_t p)
{
    long v = 0;

    if (p + 4 > n)
        return -1;
    for (int i = 0; i < 4; i++) {
        int d = hexval((unsigned char) s[p + i]);

        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Appends code point cp as UTF-8 to out (when there is room). */
static void
put_utf8(char *out, size_t outlen, size_t *k, long cp)
{
    unsigned char b[4];
    size_t m;

    if (cp < 0x80) {
        b[0] = (unsigned char) cp;
        m = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char) (0xC0 | (cp >> 6));
        b[1] = (unsigned char) (0x80 | (cp & 0x3F));
        m = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char) (0xE0 | (cp >> 12));
        b[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char) (0x80 | (cp & 0x3F));
        m = 3;
    } else {
        b[0] = (unsigned char) (0xF0 | (cp >> 18));
        b[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char) (0x80 | (cp & 0x3F));
        m = 4;
    }
    if (*k != (size_t) -1 && *k + m <= outlen) {
        memcpy(out + *k, b, m);
        *k += m;
    } else
        *k = (size_t) -1;
}

/* The length of the valid UTF-8 sequence at s[p..n), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n, size_t p)
{
    unsigned char c = s[p], lo = 0x80, hi = 0xBF;
    size_t len;

    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;          /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F;          /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;          /* nothing above U+10FFFF */
    } else
        return 0;
    if (p + len > n || s[p + 1] < lo || s[p + 1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[p + i] < 0x80 || s[p + i] > 0xBF)
            return 0;
    return len;
}

/* The first position at or after p that is not a plain byte (printable
 * ASCII but '"' and '\\'), or n.  Most of a chain response is long hex
 * strings: 16 bytes per step where SSE2 is there (every x86-64). */
static size_t
skip_plain(const unsigned char *u, size_t n, size_t p)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);

    while (p + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *) (u + p));
        /* signed: bytes >= 0x80 are negative, so "< 0x20" also catches them */
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                                _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(bad);

        if (mask != 0)
            return p + (size_t) __builtin_ctz((unsigned) mask);
        p += 16;
    }
#endif
    while (p < n && u[p] >= 0x20 && u[p] < 0x80 && u[p] != '"' && u[p] != '\\')
        p++;
    return p;
}

/* The string scanner behind json_scan_string and json_scan_string_span:
 * out as json_scan_string's; *escapes counts backslash escapes. */
static int
scan_string(const char *s, size_t n, size_t *pos, char *out, size_t outlen, size_t *outn,
            size_t *escapes, const char **why)
{
    const unsigned char *u = (const unsigned char *) s;
    size_t p = *pos, k = 0;

    *escapes = 0;
    if (p >= n || s[p] != '"')
        FAIL("a string was expected");
    p++;
    for (;;) {
        size_t start = p;

        p = skip_plain(u, n, p);        /* the common case: plain ASCII */
        if (out != NULL && p > start) {
            if (k != (size_t) -1 && k + (p - start) <= outlen) {
                memcpy(out + k, s + start, p - start);
                k += p - start;
            } else
                k = (size_t) -1;
        }
        if (p >= n)
            FAIL("unterminated string");
        if (u[p] == '"') {
            p++;
            break;
        }
        if (u[p] < 0x20)
            FAIL("control character in a string");
        if (u[p] == '\\') {
            long cp;

            if (p + 1 >= n)
                FAIL("unterminated string");
            switch (s[p + 1]) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                cp = hex4(s, n, p + 2);
                if (cp < 0)
                    FAIL("invalid \\u escape");
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    FAIL("lone low surrogate in a \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    long lo;

                    if (p + 7 >= n || s[p + 6] != '\\' || s[p + 7] != 'u' ||
                        (lo = hex4(s, n, p + 8)) < 0xDC00 || lo > 0xDFFF)
                        FAIL("unpaired surrogate in a \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                if (cp == 0)
                    FAIL("\\u0000 in a string");
                p += 4;
                break;
            default:
                FAIL("invalid escape in a string");
            }
            p += 2;
            (*escapes)++;
            if (out != NULL)
                put_utf8(out, outlen, &k, cp);
            continue;
        }
        {
            size_t len = utf8_len(u, n, p);

            if (len == 0)
                FAIL("invalid UTF-8 in a string");
            if (out != NULL) {
                if (k != (size_t) -1 && k + len <= outlen) {
                    memcpy(out + k, s + p, len);
                    k += len;
                } else
                    k = (size_t) -1;
            }
            p += len;
        }
    }
    if (outn != NULL)
        *outn = k;
    *pos = p;
    return 0;
}

int
json_scan_string(const char *s, size_t n, size_t *pos, char *out, size_t outlen, size_t *outn,
                const char **why)
{
    size_t escapes;

    return scan_string(s, n, pos, out, outlen, outn, &escapes, why);
}

int
json_scan_string_span(const char *s, size_t n, size_t *pos, int *escaped, const char **why)
{
    size_t escapes;
    int rc = scan_string(s, n, pos, NULL, 0, NULL, &escapes, why);

    *escaped = escapes > 0;
    return rc;
}

int
json_scan_number(const char *s, size_t n, size_t *pos, const char **why)
{
    size_t p = *pos;

    if (p < n && s[p] == '-')
        p++;
    if (p >= n || s[p] < '0' || s[p] > '9')
        FAIL("invalid number");
    if (s[p] == '0') {
        p++;
        if (p < n && s[p] >= '0' && s[p] <= '9')
            FAIL("a number with a leading zero");
    } else
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    if (p < n && s[p] == '.') {
        p++;
        if (p >= n || s[p] < '0' || s[p] > '9')
            FAIL("invalid number");
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= n || s[p] < '0' || s[p] > '9')
            FAIL("invalid number");
        while (p < n && s[p] >= '0' && s[p] <= '9')
            p++;
    }
    *pos = p;
    return 0;
}

static int
scan(const char *s, size_t n, size_t *pos, int depth, const char **why)
{
    size_t p = json_scan_ws(s, n, *pos);

    if (p >= n)
        FAIL("unexpected end of input");
    switch (s[p]) {
    case '{':
    case '[': {
        char close = s[p] == '{' ? '}' : ']';
        int is_obj = s[p] == '{';

        if (depth >= JSON_SCAN_MAX_DEPTH)
            FAIL("nested too deeply");
        p = json_scan_ws(s, n, p + 1);
        if (p < n && s[p] == close) {
            *pos = p + 1;
            return 0;
        }
        for (;;) {
            if (is_obj) {
                p = json_scan_ws(s, n, p);
                if (p >= n || s[p] != '"')
                    FAIL("an object key was expected");
                if (json_scan_string(s, n, &p, NULL, 0, NULL, why) < 0) {
                    *pos = p;
                    return -1;
                }
                p = json_scan_ws(s, n, p);
                if (p >= n || s[p] != ':')
                    FAIL("':' was expected");
                p++;
            }
            if (scan(s, n, &p, depth + 1, why) < 0) {
                *pos = p;
                return -1;
            }
            p = json_scan_ws(s, n, p);
            if (p < n && s[p] == ',') {
                p++;
                continue;
            }
            if (p < n && s[p] == close) {
                *pos = p + 1;
                return 0;
            }
            FAIL(is_obj ? "',' or '}' was expected" : "',' or ']' was expected");
        }
    }
    case '"':
        *pos = p;
        return json_scan_string(s, n, pos, NULL, 0, NULL, why);
    case 't':
        if (n - p >= 4 && memcmp(s + p, "true", 4) == 0) {
            *pos = p + 4;
            return 0;
        }
        FAIL("invalid literal");
    case 'f':
        if (n - p >= 5 && memcmp(s + p, "false", 5) == 0) {
            *pos = p + 5;
            return 0;
        }
        FAIL("invalid literal");
    case 'n':
        if (n - p >= 4 && memcmp(s + p, "null", 4) == 0) {
            *pos = p + 4;
            return 0;
        }
        FAIL("invalid literal");
    default:
        if (s[p] == '-' || (s[p] >= '0' && s[p] <= '9')) {
            *pos = p;
            return json_scan_number(s, n, pos, why);
        }
        FAIL("unexpected character");
    }
}

int
json_scan_value(const char *s, size_t n, size_t *pos, const char **why)
{
    return scan(s, n, pos, 0, why);
}

int
json_scan_document(const char *s, size_t n, size_t *errpos, const char **why)
{
    size_t p = 0;

    if (scan(s, n, &p, 0, why) < 0) {
        *errpos = p;
        return -1;
    }
    p = json_scan_ws(s, n, p);
    if (p != n) {
        *why = "text after the JSON value";
        *errpos = p;
        return -1;
    }
    return 0;
}
