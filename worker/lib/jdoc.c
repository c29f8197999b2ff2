/*
 * jdoc.c: the flat JSON token reader (see jdoc.h).
 *
 * The parser is a loop with an explicit stack of open containers, so depth
 * costs no C stack; strings, numbers and the containers a shallow parse
 * does not tokenize are checked by json_scan.c, so every reader accepts
 * the same documents.  Tokens
 * grow by doubling; nothing else is allocated.
 */
#include "jdoc.h"

#include "json_scan.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
fail(char *err, size_t errlen, size_t pos, const char *what)
{
    snprintf(err, errlen, "%s at byte %zu", what, pos);
    return -1;
}

/* A new token of type t starting at start; its index, or -1 (no memory). */
static int
push_token(jdoc *d, jtype t, size_t start)
{
    jtok *k;

    if (d->ntok == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 1024;
        jtok *p;

        if (cap < d->cap || cap > UINT32_MAX / 2)
            return -1;
        p = realloc(d->tok, (size_t) cap * sizeof *p);
        if (p == NULL)
            return -1;
        d->tok = p;
        d->cap = cap;
    }
    k = &d->tok[d->ntok];
    k->start = (uint32_t) start;
    k->len = 0;
    k->next = d->ntok + 1;
    k->count = 0;
    k->type = (uint8_t) t;
    k->escaped = 0;
    k->opaque = 0;
    return (int) d->ntok++;
}

/* The string at *pos (its opening quote) as a token. */
static int
parse_string(jdoc *d, size_t *pos, const char **why)
{
    size_t p = *pos;
    int escaped, i;

    if (json_scan_string_span(d->text, d->len, &p, &escaped, why) < 0) {
        *pos = p;
        return -1;
    }
    i = push_token(d, JT_STRING, *pos + 1);
    if (i < 0) {
        *why = "out of memory";
        return -1;
    }
    d->tok[i].len = (uint32_t) (p - *pos - 2);
    d->tok[i].escaped = (uint8_t) escaped;
    *pos = p;
    return 0;
}

/* A scalar other than a string at *pos. */
static int
parse_scalar(jdoc *d, size_t *pos, const char **why)
{
    static const struct { const char *word; jtype type; } lits[] = {
        {"true", JT_TRUE}, {"false", JT_FALSE}, {"null", JT_NULL}};
    const char *s = d->text;
    size_t p = *pos;
    jtype t = JT_NUMBER;
    int i;

    if (s[p] == '-' || (s[p] >= '0' && s[p] <= '9')) {
        if (json_scan_number(s, d->len, &p, why) < 0) {
            *pos = p;
            return -1;
        }
    } else {
        size_t k;

        for (k = 0; k < 3; k++) {
            size_t w = strlen(lits[k].word);

            if (d->len - p >= w && memcmp(s + p, lits[k].word, w) == 0) {
                t = lits[k].type;
                p += w;
                break;
            }
        }
        if (k == 3) {
            *why = "unexpected character";
            return -1;
        }
    }
    i = push_token(d, t, *pos);
    if (i < 0) {
        *why = "out of memory";
        return -1;
    }
    d->tok[i].len = (uint32_t) (p - *pos);
    *pos = p;
    return 0;
}

/* A container at *pos below the tokenized depth: checked by the scanner,
 * one token with no children. */
static int
parse_opaque(jdoc *d, size_t *pos, const char **why)
{
    size_t p = *pos;
    int i;

    if (json_scan_value(d->text, d->len, &p, why) < 0) {
        *pos = p;
        return -1;
    }
    i = push_token(d, d->text[*pos] == '{' ? JT_OBJECT : JT_ARRAY, *pos);
    if (i < 0) {
        *why = "out of memory";
        return -1;
    }
    d->tok[i].len = (uint32_t) (p - *pos);
    d->tok[i].opaque = 1;
    *pos = p;
    return 0;
}

/* Reads an object key and its ':' at *pos. */
static int
parse_key(jdoc *d, size_t *pos, const char **why)
{
    size_t p = json_scan_ws(d->text, d->len, *pos);

    if (p >= d->len || d->text[p] != '"') {
        *why = "an object key was expected";
        *pos = p;
        return -1;
    }
    if (parse_string(d, &p, why) < 0) {
        *pos = p;
        return -1;
    }
    p = json_scan_ws(d->text, d->len, p);
    if (p >= d->len || d->text[p] != ':') {
        *why = "':' was expected";
        *pos = p;
        return -1;
    }
    *pos = p + 1;
    return 0;
}

/* jdoc_parse's loop; on failure the caller drops the tokens. */
static int
parse_doc(jdoc *d, const char *text, size_t len, int max_depth, char *err, size_t errlen)
{
    uint32_t stack[JDOC_MAX_DEPTH];
    int depth = 0;
    size_t p = 0;
    const char *why = NULL;

    d->text = text;
    d->len = len;
    d->ntok = 0;
    if (len > JDOC_MAX_BYTES)
        return fail(err, errlen, 0, "document too large");
    for (;;) {
        /* a value starts here */
        p = json_scan_ws(text, len, p);
        if (p >= len)
            goto bad_end;
        if ((text[p] == '{' || text[p] == '[') && depth < max_depth) {
            int i = push_token(d, text[p] == '{' ? JT_OBJECT : JT_ARRAY, p);

            if (i < 0)
                return fail(err, errlen, p, "out of memory");
            if (depth == JDOC_MAX_DEPTH)
                return fail(err, errlen, p, "nested too deeply");
            stack[depth++] = (uint32_t) i;
            p = json_scan_ws(text, len, p + 1);
            if (p < len && text[p] == (d->tok[i].type == JT_OBJECT ? '}' : ']'))
                goto close;
            if (d->tok[i].type == JT_OBJECT && parse_key(d, &p, &why) < 0)
                goto bad;
            continue;
        }
        if (text[p] == '{' || text[p] == '[') {
            if (parse_opaque(d, &p, &why) < 0)
                goto bad;
        } else if (text[p] == '"' ? parse_string(d, &p, &why) < 0 : parse_scalar(d, &p, &why) < 0)
            goto bad;
        /* a value ended: what follows depends on the container around it */
        for (;;) {
            jtok *c;

            if (depth == 0) {
                p = json_scan_ws(text, len, p);
                if (p != len)
                    return fail(err, errlen, p, "text after the JSON value");
                d->tok[0].next = d->ntok;
                return 0;
            }
            c = &d->tok[stack[depth - 1]];
            c->count++;
            p = json_scan_ws(text, len, p);
            if (p < len && text[p] == ',') {
                p++;
                if (c->type == JT_OBJECT && parse_key(d, &p, &why) < 0)
                    goto bad;
                break;
            }
            if (p < len && text[p] == (c->type == JT_OBJECT ? '}' : ']'))
                goto close;
            if (p >= len)
                goto bad_end;
            return fail(err, errlen, p, c->type == JT_OBJECT ? "',' or '}' was expected"
                                                             : "',' or ']' was expected");
close:
            /* text[p] closes the innermost container */
            c = &d->tok[stack[--depth]];
            c->len = (uint32_t) (p + 1 - c->start);
            c->next = d->ntok;
            p++;
            if (depth > 0)
                continue;       /* the container is a value of its parent */
            p = json_scan_ws(text, len, p);
            if (p != len)
                return fail(err, errlen, p, "text after the JSON value");
            return 0;
        }
    }
bad_end:
    return fail(err, errlen, p, "unexpected end of input");
bad:
    return fail(err, errlen, p, why ? why : "invalid JSON");
}

int
jdoc_parse_shallow(jdoc *d, const char *text, size_t len, int max_depth, char *err,
                   size_t errlen)
{
    int rc = parse_doc(d, text, len, max_depth, err, errlen);

    if (rc < 0)
        d->ntok = 0;    /* every failure, as jdoc.h promises: d holds nothing */
    return rc;
}

int
jdoc_parse(jdoc *d, const char *text, size_t len, char *err, size_t errlen)
{
    return jdoc_parse_shallow(d, text, len, INT_MAX, err, errlen);
}

void
jdoc_free(jdoc *d)
{
    free(d->tok);
    memset(d, 0, sizeof *d);
}

/* Whether key token k spells key. */
static int
key_is(const jdoc *d, int k, const char *key, size_t keylen)
{
    const jtok *t = &d->tok[k];

    if (!t->escaped)
        return t->len == keylen && memcmp(d->text + t->start, key, keylen) == 0;
    if (t->len < keylen)
        return 0;       /* escapes only shrink: it cannot decode to key */
    {
        /* keys that do not fit the stack buffer are decoded on the heap:
         * jdoc_str_copy cuts to the buffer but returns the full length */
        char sbuf[256], *buf = keylen < sizeof sbuf ? sbuf : malloc(keylen + 1);
        long n = buf ? jdoc_str_copy(d, k, buf, keylen + 1) : -1;
        int same = n >= 0 && (size_t) n == keylen && memcmp(buf, key, keylen) == 0;

        if (buf != sbuf)
            free(buf);
        return same;
    }
}

int
jdoc_get(const jdoc *d, int obj, const char *key)
{
    size_t keylen = strlen(key);
    int k = jdoc_first(d, obj);

    if (jdoc_type(d, obj) != JT_OBJECT)
        return -1;
    for (uint32_t m = 0; m < d->tok[obj].count; m++, k = jdoc_next(d, k + 1))
        if (key_is(d, k, key, keylen))
            return k + 1;
    return -1;
}

int
jdoc_fields(const jdoc *d, int obj, const char *const *keys, int nkeys, int *out)
{
    size_t lens[64];
    int k = jdoc_first(d, obj);

    if (jdoc_type(d, obj) != JT_OBJECT || nkeys > 64)
        return -1;
    for (int j = 0; j < nkeys; j++) {
        out[j] = -1;
        lens[j] = strlen(keys[j]);
    }
    for (uint32_t m = 0; m < d->tok[obj].count; m++, k = jdoc_next(d, k + 1))
        for (int j = 0; j < nkeys; j++)
            if (key_is(d, k, keys[j], lens[j])) {
                if (out[j] >= 0)
                    return -1;      /* a key we read, given twice */
                out[j] = k + 1;
                break;
            }
    return 0;
}

const char *
jdoc_str(const jdoc *d, int i, size_t *len)
{
    if (jdoc_type(d, i) != JT_STRING || d->tok[i].escaped)
        return NULL;
    *len = d->tok[i].len;
    return d->text + d->tok[i].start;
}

const char *
jdoc_raw(const jdoc *d, int i, size_t *len)
{
    const jtok *t = &d->tok[i];

    if (t->type == JT_STRING) {
        *len = t->len + 2;
        return d->text + t->start - 1;
    }
    *len = t->len;
    return d->text + t->start;
}

long
jdoc_str_copy(const jdoc *d, int i, char *out, size_t outlen)
{
    size_t pos, n = 0;
    const char *why;

    if (jdoc_type(d, i) != JT_STRING || outlen == 0)
        return -1;
    pos = d->tok[i].start - 1;          /* the opening quote */
    if (json_scan_string(d->text, d->len, &pos, out, outlen - 1, &n, &why) < 0)
        return -1;                      /* cannot happen: it was checked */
    if (n == (size_t) -1) {             /* did not fit: take what fits */
        size_t full = 0;
        char *tmp = malloc(d->tok[i].len + 1);

        pos = d->tok[i].start - 1;
        if (tmp == NULL || json_scan_string(d->text, d->len, &pos, tmp, d->tok[i].len, &full,
                                           &why) < 0) {
            free(tmp);
            out[0] = '\0';
            return -1;
        }
        memcpy(out, tmp, outlen - 1);
        out[outlen - 1] = '\0';
        free(tmp);
        return (long) full;
    }
    out[n] = '\0';
    return (long) n;
}

int
jdoc_int(const jdoc *d, int i, int64_t *v)
{
    const char *s;
    size_t n, k = 0;
    int neg = 0;
    uint64_t acc = 0, limit;

    if (jdoc_type(d, i) != JT_NUMBER)
        return -1;
    s = d->text + d->tok[i].start;
    n = d->tok[i].len;
    if (s[0] == '-') {
        neg = 1;
        k = 1;
    }
    limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    for (; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return -1;                  /* a fraction or an exponent */
        if (acc > (limit - (uint64_t) (s[k] - '0')) / 10)
            return -1;
        acc = acc * 10 + (uint64_t) (s[k] - '0');
    }
    *v = neg ? (int64_t) (0 - acc) : (int64_t) acc;
    return 0;
}
