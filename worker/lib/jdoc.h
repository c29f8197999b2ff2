/*
 * jdoc.h: a JSON document read in place, as a flat array of tokens.
 *
 * The chain operators read responses of many megabytes (a mainnet block
 * with its receipts is ~600 kB of JSON) and keep only a few fields of
 * each object.  A jansson tree allocates every value and hashes every key;
 * here one pass over the bytes (the grammar of json_scan.c, so the worker
 * accepts exactly what the gateway forwards) records where each value
 * starts and ends, and fields are read straight from the buffer.
 *
 * Layout: every value is one token, in document order.  An array's
 * elements follow it; an object's members follow it as key, value pairs
 * (the key is a string token).  tok[i].next is the index just past value
 * i and everything inside it, so siblings are reached without looking
 * inside them.
 *
 * The document does not copy the text: the buffer must outlive it.
 * Strings are read as they are written when they hold no escapes (hex,
 * the common case: jdoc_str); jdoc_str_copy decodes any string.
 */
#ifndef TRACE_JDOC_H
#define TRACE_JDOC_H

#include <stddef.h>
#include <stdint.h>

#define JDOC_MAX_DEPTH 256          /* nesting refused beyond this */
#define JDOC_MAX_BYTES 0xfffffff0u  /* offsets are 32 bits */

typedef enum jtype {
    JT_NONE = 0,                    /* no such value (a missing key, index -1) */
    JT_NULL, JT_FALSE, JT_TRUE, JT_NUMBER, JT_STRING, JT_ARRAY, JT_OBJECT
} jtype;

typedef struct jtok {
    uint32_t start;     /* first byte (strings: just after the opening quote) */
    uint32_t len;       /* bytes (strings: between the quotes; containers: brackets included) */
    uint32_t next;      /* index just past this value and its children */
    uint32_t count;     /* elements of an array, members of an object */
    uint8_t  type;      /* jtype */
    uint8_t  escaped;   /* a string holding backslash escapes */
    uint8_t  opaque;    /* a container a shallow parse did not look into */
} jtok;

typedef struct jdoc {
    const char *text;
    size_t      len;
    jtok       *tok;
    uint32_t    ntok, cap;
} jdoc;

/* Parses text[0..len) as one JSON value with only whitespace around it.
 * 0, or -1 with err naming what is wrong and at which byte.  On success
 * the value is token 0; on failure d holds nothing (jdoc_free is still
 * allowed).  d's token array is reused across calls. */
int jdoc_parse(jdoc *d, const char *text, size_t len, char *err, size_t errlen);

/* The same, tokenizing only the values up to nesting depth max_depth (the
 * root is depth 0): a deeper container is checked in full but kept as one
 * opaque token without children (count 0; jdoc_raw has its text).  For
 * readers that look only at the top of large documents (the gateway
 * matching response ids). */
int jdoc_parse_shallow(jdoc *d, const char *text, size_t len, int max_depth, char *err,
                       size_t errlen);

/* Releases the tokens (not the text). */
void jdoc_free(jdoc *d);

/* The type of value i (JT_NONE for i < 0). */
static inline jtype
jdoc_type(const jdoc *d, int i)
{
    return i < 0 ? JT_NONE : (jtype) d->tok[i].type;
}

/* Elements of an array, members of an object, else 0. */
static inline uint32_t
jdoc_count(const jdoc *d, int i)
{
    return i < 0 ? 0 : d->tok[i].count;
}

/* The first element of array i, or the first key of object i; -1 when empty. */
static inline int
jdoc_first(const jdoc *d, int i)
{
    return i >= 0 && d->tok[i].count > 0 ? i + 1 : -1;
}

/* The sibling after element (or key's value) i.  Use only while inside
 * the container's count. */
static inline int
jdoc_next(const jdoc *d, int i)
{
    return (int) d->tok[i].next;
}

/* The value of key in object obj, or -1 (also when obj is not an object). */
int jdoc_get(const jdoc *d, int obj, const char *key);

/* In one pass over object obj: out[k] = the value of keys[k], or -1.
 * 0, or -1 when obj is not an object or one of keys appears twice. */
int jdoc_fields(const jdoc *d, int obj, const char *const *keys, int nkeys, int *out);

/* The bytes of string i when it holds no escapes (not NUL-terminated),
 * with *len; NULL for anything else (a non-string, or an escaped string:
 * use jdoc_str_copy). */
const char *jdoc_str(const jdoc *d, int i, size_t *len);

/* String i decoded into out (NUL-terminated, cut to outlen - 1 bytes).
 * Its full decoded length, or -1 when i is not a string. */
long jdoc_str_copy(const jdoc *d, int i, char *out, size_t outlen);

/* The text of value i as written (strings with their quotes), *len bytes. */
const char *jdoc_raw(const jdoc *d, int i, size_t *len);

/* Number i as an int64 when it is an integer that fits.  0 or -1. */
int jdoc_int(const jdoc *d, int i, int64_t *v);

#endif
