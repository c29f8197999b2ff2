/*
 * fuzz_rpc.c: libFuzzer target for what block_follower and range_ingest
 * take from the RPC path: the JSON-RPC response matcher
 * (rpc_client_parse_response, for batches of 1-4 calls) and the hex
 * decoders and numeric encoder (evm.c) fed the same bytes, and the flat
 * JSON reader (jdoc.c) against jansson: both must accept the same
 * documents and read the same values from them.  Run for a bounded time
 * by test/chain/run.sh with ASan and UBSan.
 */
#include "evm.h"
#include "jdoc.h"
#include "rpc_client.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_value(const jdoc *d, int i, json_t *j);

/* Array i of d holds the same elements, in order, as j. */
static void
same_array(const jdoc *d, int i, json_t *j)
{
    int e = jdoc_first(d, i);

    if (!json_is_array(j) || jdoc_count(d, i) != json_array_size(j))
        abort();
    for (size_t k = 0; k < json_array_size(j); k++, e = jdoc_next(d, e))
        same_value(d, e, json_array_get(j, k));
    if (jdoc_count(d, i) > 0 && e != jdoc_next(d, i))
        abort();        /* the last element must end where the array does */
}

/* Object i of d holds the same members as j.  jansson keeps the last of
 * duplicate keys, jdoc_get the first: values are compared only when no
 * key repeats (the member counts agree). */
static void
same_object(const jdoc *d, int i, json_t *j)
{
    const char *key;
    json_t *v;

    if (!json_is_object(j) || jdoc_count(d, i) < json_object_size(j))
        abort();
    json_object_foreach(j, key, v) {
        int m = jdoc_get(d, i, key);

        if (m < 0)
            abort();
        if (jdoc_count(d, i) == json_object_size(j))
            same_value(d, m, v);
    }
}

/* String i of d decodes to j's bytes. */
static void
same_string(const jdoc *d, int i, json_t *j)
{
    size_t n = json_string_length(j), len;
    char *buf = malloc(n + 1);
    const char *s = jdoc_str(d, i, &len);

    if (buf == NULL)
        return;
    if (jdoc_str_copy(d, i, buf, n + 1) != (long) n || memcmp(buf, json_string_value(j), n) != 0 ||
        (s != NULL && (len != n || memcmp(s, buf, n) != 0)))
        abort();
    free(buf);
}

/* Value i of d and jansson's j are the same value. */
static void
same_value(const jdoc *d, int i, json_t *j)
{
    int64_t v;

    switch (jdoc_type(d, i)) {
    case JT_NULL: if (!json_is_null(j)) abort(); break;
    case JT_TRUE: if (!json_is_true(j)) abort(); break;
    case JT_FALSE: if (!json_is_false(j)) abort(); break;
    case JT_STRING: if (!json_is_string(j)) abort(); same_string(d, i, j); break;
    case JT_ARRAY: same_array(d, i, j); break;
    case JT_OBJECT: same_object(d, i, j); break;
    case JT_NUMBER:
        if (json_is_integer(j) ? jdoc_int(d, i, &v) < 0 || v != json_integer_value(j)
                               : !json_is_real(j) || jdoc_int(d, i, &v) == 0)
            abort();
        break;
    default:
        abort();
    }
}

/* jdoc and jansson agree on the document data[0..size): both accept it
 * and read the same tree, or both refuse it.  Allowed differences: jdoc
 * keeps numbers jansson cannot hold, jansson nests deeper, and jansson
 * 2.14 takes a NUL byte just after a number for the end ("[1\0]", "3\0"):
 * JSON never holds a NUL, so jdoc must refuse those. */
static void
jdoc_vs_jansson(const uint8_t *data, size_t size)
{
    jdoc d = {0};
    char err[200];
    json_error_t je;
    int ok = jdoc_parse(&d, (const char *) data, size, err, sizeof err) == 0;
    json_t *j = json_loadb((const char *) data, size, JSON_DECODE_ANY, &je);

    int nul = memchr(data, '\0', size) != NULL;

    if (ok && nul)
        abort();        /* a NUL byte is never JSON */
    if (ok && j != NULL)
        same_value(&d, 0, j);
    else if (ok && strstr(je.text, "too big") == NULL && strstr(je.text, "overflow") == NULL)
        abort();        /* jansson refused valid JSON jdoc read */
    else if (!ok && j != NULL && !nul && strstr(err, "nested too deeply") == NULL)
        abort();        /* jdoc refused what jansson read */
    if (!ok) {
        const char *at = strstr(err, " at byte ");
        size_t pos;

        if (d.ntok != 0 || at == NULL || sscanf(at, " at byte %zu", &pos) != 1 || pos > size)
            abort();    /* a failure names a byte of the input, keeps no tokens */
    }
    json_decref(j);
    jdoc_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rpc_call calls[4];
    char err[512], dec[100], *s;
    size_t n = size ? (size_t) (data[0] % 4) + 1 : 1, len;
    uint64_t v;
    uint8_t fixed[32];
    copybuf cb;

    memset(calls, 0, sizeof calls);
    if (rpc_client_parse_response((const char *) data, size, calls, n, err, sizeof err) == 0)
        for (size_t i = 0; i < n; i++)
            if (calls[i].result == NULL && !calls[i].has_error)
                abort();        /* every call must be answered */
    rpc_client_calls_clear(calls, n);
    jdoc_vs_jansson(data, size);

    s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    (void) hex_to_u64(s, &v);
    (void) hex_to_fixed(s, fixed, 32);
    (void) hex_data_len(s, &len);
    (void) hex_to_decimal(s, dec, sizeof dec);
    cb_init(&cb);
    cb_reset(&cb);
    cb_numeric_hex(&cb, s, "fuzz");
    cb_bytea_hex(&cb, s, "fuzz");
    cb_free(&cb);
    free(s);
    return 0;
}
