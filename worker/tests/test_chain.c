/*
 * test_chain.c: unit tests of chain/ and the chain operators' pure parts:
 * hex decoding, the binary COPY encoder (numeric, timestamptz, header),
 * the JSON-RPC client's side of the one response matcher (bad peers: wrong
 * ids, duplicates, truncated bodies, non-JSON), and the flat JSON reader
 * lib/jdoc.c (navigation, decoding, errors and where they are).  Built and
 * run by test/chain/run.sh (make -C worker tests/test_chain).
 */
#include "evm.h"
#include "jdoc.h"
#include "rpc_client.h"

#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* The decimal value of one binary numeric field at p (length-prefixed). */
static void
numeric_to_decimal(const uint8_t *p, char *out, size_t n)
{
    uint32_t len = rd32(p);
    int nd = (int16_t) rd16(p + 4), weight = (int16_t) rd16(p + 6);
    size_t o = 0;

    (void) len;
    if (nd == 0) {
        snprintf(out, n, "0");
        return;
    }
    for (int i = 0; i < nd; i++)
        o += (size_t) snprintf(out + o, n - o, i == 0 ? "%u" : "%04u", rd16(p + 12 + 2 * i));
    for (int i = nd; i <= weight; i++)
        o += (size_t) snprintf(out + o, n - o, "0000");
}

static void
test_hex(void)
{
    uint64_t v = 0;
    uint8_t b[4];
    size_t len = 0;
    char dec[100], hex[20];

    CHECK(hex_to_u64("0x1b4", &v) == 0 && v == 436,
          "hex_to_u64 0x1b4");
    CHECK(hex_to_u64("0x0", &v) == 0 && v == 0,
          "hex_to_u64 0x0");
    CHECK(hex_to_u64("0x00ff", &v) == 0 && v == 255,
          "hex_to_u64 leading zeros tolerated");
    CHECK(hex_to_u64("0xffffffffffffffff", &v) == 0 && v == UINT64_MAX,
          "hex_to_u64 max");
    CHECK(hex_to_u64("0x1ffffffffffffffff", &v) < 0,
          "hex_to_u64 refuses 17 digits");
    CHECK(hex_to_u64("1b4", &v) < 0,
          "hex_to_u64 refuses a missing 0x");
    CHECK(hex_to_u64("0x", &v) < 0,
          "hex_to_u64 refuses an empty number");
    CHECK(hex_to_u64("0x1g", &v) < 0,
          "hex_to_u64 refuses non-hex");
    CHECK(hex_to_u64(NULL, &v) < 0,
          "hex_to_u64 refuses NULL");
    CHECK(hex_to_fixed("0xdeadBEEF", b, 4) == 0 && b[0] == 0xde && b[3] == 0xef,
          "hex_to_fixed 4 bytes");
    CHECK(hex_to_fixed("0xdeadbe", b, 4) < 0,
          "hex_to_fixed refuses the wrong length");
    CHECK(hex_data_len("0xabc", &len) < 0,
          "hex_data_len refuses an odd length");
    CHECK(hex_data_len("0x", &len) == 0 && len == 0,
          "hex_data_len of 0x is 0");
    bytes_to_hex((const uint8_t *) "\x01\xab", 2, hex);
    CHECK(strcmp(hex, "0x01ab") == 0,
          "bytes_to_hex");
    CHECK(hex_to_decimal("0x56bc75e2d63100001", dec, sizeof dec) == 0 &&
          strcmp(dec, "100000000000000000001") == 0,
          "hex_to_decimal 100 ETH + 1 wei (past 2^64)");
    CHECK(hex_to_decimal("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", dec,
                         sizeof dec) == 0 &&
          strcmp(dec, "115792089237316195423570985008687907853269984665640564039457584007913129639935") == 0,
          "hex_to_decimal 2^256-1");
    CHECK(hex_to_decimal("0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", dec,
                         sizeof dec) < 0,
          "hex_to_decimal refuses more than 256 bits");
}

static void
test_copy(void)
{
    static const uint8_t sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    static const struct { const char *hex, *dec; } nums[] = {
        {"0x0", "0"}, {"0x1", "1"}, {"0x2710", "10000"}, {"0x3039", "12345"},
        {"0x56bc75e2d63100000", "100000000000000000000"},
        {"0xde0b6b3a7640000", "1000000000000000000"},
        {"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
         "115792089237316195423570985008687907853269984665640564039457584007913129639935"},
    };
    copybuf cb;
    char dec[100], name[160];

    cb_init(&cb);
    cb_reset(&cb);
    CHECK(cb.len == 19 && memcmp(cb.data, sig, 11) == 0 &&
          rd32(cb.data + 11) == 0 && rd32(cb.data + 15) == 0,
          "COPY header: signature, flags, extension");
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        size_t at = cb.len;

        cb_numeric_hex(&cb, nums[i].hex, "n");
        numeric_to_decimal(cb.data + at, dec, sizeof dec);
        snprintf(name, sizeof name, "numeric %s = %s", nums[i].hex, nums[i].dec);
        CHECK(!cb.failed && strcmp(dec, nums[i].dec) == 0 &&
              rd32(cb.data + at) == 8 + 2 * (uint32_t) (int16_t) rd16(cb.data + at + 4), name);
    }
    {
        size_t at = cb.len;

        cb_numeric_hex(&cb, "0x2710", "n");      /* 10000: one group, weight 1 */
        CHECK(rd16(cb.data + at + 4) == 1 && rd16(cb.data + at + 6) == 1 &&
              rd16(cb.data + at + 8) == 0 && rd16(cb.data + at + 10) == 0 &&
              rd16(cb.data + at + 12) == 1,
          "numeric 10000: ndigits 1, weight 1, positive, dscale 0, digit 1");
    }
    {
        size_t at = cb.len;

        cb_timestamptz_unix(&cb, 946684800 + 1);
        CHECK(rd32(cb.data + at) == 8 && rd32(cb.data + at + 4) == 0 &&
              rd32(cb.data + at + 8) == 1000000,
          "timestamptz: microseconds since 2000-01-01");
    }
    cb_numeric_hex(&cb, "0xzz", "value");
    CHECK(cb.failed && strstr(cb.error, "value") != NULL,
          "a bad quantity fails the buffer, naming the field");
    cb_reset(&cb);
    cb_bytea_hex(&cb, "0x123", "input");
    CHECK(cb.failed && strstr(cb.error, "input") != NULL,
          "bad hex data fails the buffer");
    cb_reset(&cb);
    cb_tuple(&cb, 1);
    cb_null(&cb);
    cb_finish(&cb);
    CHECK(!cb.failed && cb.len == 19 + 2 + 4 + 2 && rd16(cb.data + 19) == 1 &&
          rd32(cb.data + 21) == 0xffffffffu && rd16(cb.data + 25) == 0xffff,
          "a tuple with a NULL, then the trailer");
    cb_free(&cb);
}

/* Parses body as the answer to n calls; 0/-1, and *err. */
static int
parse(const char *body, rpc_call *calls, size_t n, char *err, size_t errlen)
{
    memset(calls, 0, n * sizeof *calls);
    return rpc_client_parse_response(body, strlen(body), calls, n, err, errlen);
}

static void
test_rpc(void)
{
    rpc_call c[3];
    char err[400];
    rpc_client *cl;

    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"0x2\"},{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}]",
                c, 2, err, sizeof err) == 0 &&
          json_is_null(c[0].result) && strcmp(json_string_value(c[1].result), "0x2") == 0,
          "a batch answered out of order is matched by id");
    rpc_client_calls_clear(c, 2);
    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,\"message\":\"nope\"}}]",
                c, 1, err, sizeof err) == 0 && c[0].has_error && c[0].code == -32601 &&
          strcmp(c[0].message, "nope") == 0,
          "a per-call error is kept with its code and message");
    rpc_client_calls_clear(c, 1);
    CHECK(parse("<html>", c, 1, err, sizeof err) < 0 && contains(err, "not valid JSON"),
          "not JSON is refused");
    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x", c, 1, err, sizeof err) < 0 &&
          contains(err, "not valid JSON"),
          "a truncated body is refused");
    CHECK(parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"bad\"}}",
                c, 1, err, sizeof err) < 0 && contains(err, "single object: bad"),
          "a single object for a batch is refused, naming its error");
    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}]", c, 2, err, sizeof err) < 0 &&
          contains(err, "answered with 1 responses"),
          "too few replies are refused");
    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":1}]",
                c, 2, err, sizeof err) < 0 && contains(err, "not asked"),
          "an id no call has is refused");
    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":2}]",
                c, 2, err, sizeof err) < 0 && contains(err, "twice") && c[0].result == NULL,
          "a repeated id is refused");
    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":1}]", c, 1, err, sizeof err) < 0 &&
          contains(err, "not asked"),
          "a string id is refused (we send integers)");
    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":1}]", c, 1, err, sizeof err) < 0 &&
          contains(err, "exactly one of"),
          "a reply with neither result nor error is refused");
    CHECK(parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"result\":2}]", c, 1, err, sizeof err) < 0 &&
          contains(err, "repeats a member"),
          "duplicate keys are refused (a smuggled second result)");
    CHECK(parse("[{\"id\":1,\"result\":1}]", c, 1, err, sizeof err) < 0 && contains(err, "2.0"),
          "a reply without \"jsonrpc\": \"2.0\" is refused (the gateway's rule: one matcher)");
    cl = rpc_client_new("http://127.0.0.1:1", "a/b", err, sizeof err);
    CHECK(cl == NULL,
          "a provider name with a slash is refused");
    cl = rpc_client_new("http://127.0.0.1:1", "", err, sizeof err);
    CHECK(cl == NULL,
          "an empty provider name is refused");
    cl = rpc_client_new("file:///etc/passwd", "local", err, sizeof err);
    CHECK(cl == NULL,
          "a gateway that is not http(s) is refused");
    cl = rpc_client_new("unix:relative.sock", "local", err, sizeof err);
    CHECK(cl == NULL,
          "a unix: gateway needs an absolute path");
    cl = rpc_client_new("unix:/run/trace/gw.sock", "local", err, sizeof err);
    CHECK(cl != NULL,
          "a unix:/path gateway makes a client");
    rpc_client_free(cl);
    cl = rpc_client_new("http://127.0.0.1:1/", "local", err, sizeof err);
    CHECK(cl != NULL,
          "a good gateway and name make a client");
    if (cl) {
        rpc_call one[1];

        memset(one, 0, sizeof one);
        one[0].method = "eth_chainId";
        one[0].params = json_array();
        CHECK(rpc_client_batch(cl, one, 1, NULL, NULL, err, sizeof err) == -1 &&
              strstr(err, "rpc gateway (provider local)") != NULL &&
              strstr(err, "127.0.0.1") == NULL,
          "a gateway that refuses connections: a retryable failure");
        rpc_client_free(cl);
    }
}

/* Parses text (NUL-terminated) into d; whether it was accepted. */
static int
jparse(jdoc *d, const char *text)
{
    char err[200];

    return jdoc_parse(d, text, strlen(text), err, sizeof err) == 0;
}

/* Whether text[0..len) is refused with an error naming what and ending
 * "at byte at", leaving no tokens behind. */
static int
jfails_at(const char *text, size_t len, size_t at, const char *what)
{
    jdoc d = {0};
    char err[200], tail[40];
    int rc = jdoc_parse(&d, text, len, err, sizeof err);
    size_t el, tl;

    snprintf(tail, sizeof tail, " at byte %zu", at);
    el = strlen(err);
    tl = strlen(tail);
    rc = rc < 0 && d.ntok == 0 && strstr(err, what) != NULL && el >= tl &&
         strcmp(err + el - tl, tail) == 0;
    if (!rc)
        printf("# jdoc error for \"%.*s\": %s\n", (int) (len < 40 ? len : 40), text, err);
    jdoc_free(&d);
    return rc;
}

/* Whether string i of d decodes to exactly want (wantlen bytes). */
static int
jstr_is(const jdoc *d, int i, const char *want, size_t wantlen)
{
    char buf[512];
    long n = jdoc_str_copy(d, i, buf, sizeof buf);

    return n == (long) wantlen && memcmp(buf, want, wantlen) == 0 && buf[wantlen] == '\0';
}

/* Scalars as the whole document: one token each. */
static void
test_jdoc_scalars(void)
{
    jdoc d = {0};
    size_t len = 0;
    const char *s;

    CHECK(jparse(&d, "-12.5e+3") && d.ntok == 1 && jdoc_type(&d, 0) == JT_NUMBER &&
          (s = jdoc_raw(&d, 0, &len)) != NULL && len == 8 && memcmp(s, "-12.5e+3", 8) == 0,
          "jdoc: a number at the root");
    CHECK(jparse(&d, "\"hi\"") && d.ntok == 1 && jdoc_type(&d, 0) == JT_STRING &&
          (s = jdoc_str(&d, 0, &len)) != NULL && len == 2 && memcmp(s, "hi", 2) == 0,
          "jdoc: a string at the root");
    CHECK(jparse(&d, "true") && jdoc_type(&d, 0) == JT_TRUE &&
          jparse(&d, "false") && jdoc_type(&d, 0) == JT_FALSE &&
          jparse(&d, "null") && jdoc_type(&d, 0) == JT_NULL && d.ntok == 1,
          "jdoc: true, false, null at the root");
    CHECK(jparse(&d, " \t\r\n[1] \n") && jdoc_type(&d, 0) == JT_ARRAY &&
          (s = jdoc_raw(&d, 0, &len)) != NULL && len == 3 && s == d.text + 4,
          "jdoc: whitespace around the root is skipped");
    CHECK(jparse(&d, "{ }") && jdoc_type(&d, 0) == JT_OBJECT && jdoc_count(&d, 0) == 0 &&
          jdoc_first(&d, 0) == -1 && jparse(&d, "[]") && jdoc_type(&d, 0) == JT_ARRAY &&
          jdoc_count(&d, 0) == 0 && jdoc_first(&d, 0) == -1,
          "jdoc: empty {} and [] have no first child");
    CHECK(jparse(&d, "[[],{}]") && d.ntok == 3 && jdoc_count(&d, 0) == 2 &&
          jdoc_next(&d, 1) == 2 && jdoc_next(&d, 2) == 3 && jdoc_count(&d, 2) == 0,
          "jdoc: empty containers inside an array");
    jdoc_free(&d);
}

/* Counts, next and first through nested containers. */
static void
test_jdoc_nesting(void)
{
    static const char doc[] = "{\"a\":[1,[2,3],{}],\"b\":{\"c\":null},\"d\":\"x\"}";
    static const char *const want[] = {"d", "a", "zz"};
    jdoc d = {0};
    int out[3];

    CHECK(jparse(&d, doc) && d.ntok == 14,
          "jdoc: nested document parses into 14 tokens");
    if (d.ntok != 14)
        return;
    CHECK(jdoc_count(&d, 0) == 3 && jdoc_first(&d, 0) == 1 && jdoc_type(&d, 1) == JT_STRING &&
          jdoc_type(&d, 2) == JT_ARRAY && jdoc_next(&d, 2) == 8 && jdoc_next(&d, 9) == 12 &&
          jdoc_next(&d, 0) == 14,
          "jdoc: object members counted, keys then values");
    CHECK(jdoc_count(&d, 2) == 3 && jdoc_first(&d, 2) == 3 && jdoc_next(&d, 3) == 4 &&
          jdoc_count(&d, 4) == 2 && jdoc_next(&d, 4) == 7 && jdoc_type(&d, 7) == JT_OBJECT &&
          jdoc_next(&d, 7) == 8,
          "jdoc: array elements walked by next");
    CHECK(jdoc_get(&d, 0, "b") == 9 && jdoc_type(&d, jdoc_get(&d, 9, "c")) == JT_NULL &&
          jdoc_get(&d, 0, "d") == 13,
          "jdoc_get finds nested keys");
    CHECK(jdoc_get(&d, 0, "z") == -1 && jdoc_get(&d, 0, "") == -1 && jdoc_get(&d, 2, "a") == -1 &&
          jdoc_get(&d, -1, "a") == -1 && jdoc_type(&d, -1) == JT_NONE,
          "jdoc_get: a missing key, a non-object, no object: -1");
    CHECK(jdoc_fields(&d, 0, want, 3, out) == 0 && out[0] == 13 && out[1] == 2 && out[2] == -1,
          "jdoc_fields: present keys found, a missing one -1");
    CHECK(jdoc_fields(&d, 2, want, 3, out) == -1,
          "jdoc_fields: not an object is -1");
    jdoc_free(&d);
}

/* Duplicate keys: first wins for jdoc_get; jdoc_fields refuses a wanted one. */
static void
test_jdoc_duplicates(void)
{
    static const char *const a[] = {"a"}, *const b[] = {"b"};
    jdoc d = {0};
    int out[1];
    int64_t v = 0;

    CHECK(jparse(&d, "{\"a\":1,\"b\":2,\"a\":3}"),
          "jdoc: duplicate keys parse");
    CHECK(jdoc_int(&d, jdoc_get(&d, 0, "a"), &v) == 0 && v == 1,
          "jdoc_get returns the first of duplicate keys");
    CHECK(jdoc_fields(&d, 0, a, 1, out) == -1,
          "jdoc_fields refuses a wanted key given twice");
    CHECK(jdoc_fields(&d, 0, b, 1, out) == 0 && jdoc_int(&d, out[0], &v) == 0 && v == 2,
          "jdoc_fields ignores an unwanted duplicate");
    jdoc_free(&d);
}

/* Escaped strings: jdoc_str refuses them, jdoc_str_copy decodes them. */
static void
test_jdoc_escapes(void)
{
    jdoc d = {0};
    char small[4];
    size_t len;
    char longkey[400];

    CHECK(jparse(&d, "[\"caf\\u00e9\\n\",\"\\ud83d\\ude00\",\"\\\"\\\\\\/\\b\\f\\r\\t\",\"abcdef\",1]"),
          "jdoc: an escaped string parses");
    CHECK(jdoc_str(&d, 1, &len) == NULL &&
          jdoc_str(&d, 5, &len) == NULL && jdoc_str(&d, 4, &len) != NULL && len == 6,
          "jdoc_str refuses an escaped string, a number");
    CHECK(jstr_is(&d, 1, "caf\xc3\xa9\n", 6),
          "jdoc_str_copy decodes \\u00e9 and \\n");
    CHECK(jstr_is(&d, 2, "\xf0\x9f\x98\x80", 4),
          "jdoc_str_copy decodes a surrogate pair");
    CHECK(jstr_is(&d, 3, "\"\\/\b\f\r\t", 7),
          "jdoc_str_copy decodes the short escapes");
    CHECK(jdoc_str_copy(&d, 1, small, sizeof small) == 6 && strcmp(small, "caf") == 0,
          "jdoc_str_copy cut short: full length, NUL-terminated (escaped)");
    CHECK(jdoc_str_copy(&d, 4, small, sizeof small) == 6 && strcmp(small, "abc") == 0,
          "jdoc_str_copy cut short: full length, NUL-terminated (plain)");
    CHECK(jdoc_str_copy(&d, 5, small, sizeof small) == -1,
          "jdoc_str_copy of a number is -1");
    CHECK(jparse(&d, "{\"k\\u0065y\":7}") && jdoc_get(&d, 0, "key") == 2,
          "jdoc_get matches an escaped key");
    /* a key longer than key_is's stack buffer, written with an escape */
    memset(longkey, 'a', 300);
    longkey[300] = '\0';
    {
        char doc[400];

        snprintf(doc, sizeof doc, "{\"%.299s\\u0061\":1}", longkey);
        CHECK(jparse(&d, doc) && jdoc_get(&d, 0, longkey) == 2 &&
              jdoc_get(&d, 0, longkey + 1) == -1,
          "jdoc_get matches an escaped key longer than 255 bytes");
    }
    jdoc_free(&d);
}

/* jdoc_int: int64 exactly, nothing else. */
static void
test_jdoc_int(void)
{
    jdoc d = {0};
    int64_t v = 0;

    CHECK(jparse(&d, "9223372036854775807") &&
          jdoc_int(&d, 0, &v) == 0 && v == INT64_MAX,
          "jdoc_int: INT64_MAX");
    CHECK(jparse(&d, "-9223372036854775808") &&
          jdoc_int(&d, 0, &v) == 0 && v == INT64_MIN,
          "jdoc_int: INT64_MIN");
    CHECK(jparse(&d, "9223372036854775808") &&
          jdoc_int(&d, 0, &v) == -1,
          "jdoc_int: INT64_MAX + 1 refused");
    CHECK(jparse(&d, "-9223372036854775809") &&
          jdoc_int(&d, 0, &v) == -1,
          "jdoc_int: INT64_MIN - 1 refused");
    CHECK(jparse(&d, "18446744073709551616") &&
          jdoc_int(&d, 0, &v) == -1,
          "jdoc_int: 20 digits refused");
    CHECK(jparse(&d, "1.5") && jdoc_int(&d, 0, &v) == -1 &&
          jparse(&d, "1e3") && jdoc_int(&d, 0, &v) == -1,
          "jdoc_int: 1.5 and 1e3 refused");
    CHECK(jparse(&d, "[-0,0]") && jdoc_int(&d, 1, &v) == 0 && v == 0 &&
          jdoc_int(&d, 2, &v) == 0 && v == 0,
          "jdoc_int: -0 and 0");
    CHECK(jparse(&d, "\"1\"") && jdoc_int(&d, 0, &v) == -1,
          "jdoc_int: a string \"1\" refused");
    jdoc_free(&d);
}

/* jdoc_raw: values as written. */
static void
test_jdoc_raw(void)
{
    jdoc d = {0};
    size_t len = 0;
    const char *s;

    CHECK(jparse(&d, "[ \"a\\\"b\" , {\"x\" : [1]} ]"),
          "jdoc: a document for jdoc_raw");
    CHECK((s = jdoc_raw(&d, 1, &len)) != NULL && len == 6 && memcmp(s, "\"a\\\"b\"", 6) == 0,
          "jdoc_raw of a string includes its quotes");
    CHECK((s = jdoc_raw(&d, 2, &len)) != NULL && len == 11 && memcmp(s, "{\"x\" : [1]}", 11) == 0,
          "jdoc_raw of an object spans its braces");
    CHECK((s = jdoc_raw(&d, 0, &len)) == d.text && len == 24,
          "jdoc_raw of the root array");
    jdoc_free(&d);
}

/* Nesting depth: JDOC_MAX_DEPTH arrays accepted, one more refused. */
static void
test_jdoc_depth(void)
{
    char buf[2 * JDOC_MAX_DEPTH + 2];
    jdoc d = {0};
    char err[200];
    int n = JDOC_MAX_DEPTH;

    memset(buf, '[', (size_t) n);
    memset(buf + n, ']', (size_t) n);
    CHECK(jdoc_parse(&d, buf, 2 * (size_t) n, err, sizeof err) == 0 && d.ntok == (uint32_t) n &&
          jdoc_count(&d, n - 2) == 1 && jdoc_count(&d, n - 1) == 0,
          "jdoc: JDOC_MAX_DEPTH nested arrays accepted");
    jdoc_free(&d);
    memset(buf, '[', (size_t) n + 1);
    memset(buf + n + 1, ']', (size_t) n + 1);
    CHECK(jfails_at(buf, 2 * (size_t) n + 2, (size_t) n, "nested too deeply"),
          "jdoc: JDOC_MAX_DEPTH + 1 nested arrays refused");
}

/* Malformed documents: refused, at the right byte. */
static void
test_jdoc_errors(void)
{
    CHECK(jfails_at("1 x", 3, 2, "text after"),
          "jdoc: trailing text refused");
    CHECK(jfails_at("[1,2] x", 7, 6, "text after"),
          "jdoc: trailing text after a container refused");
    CHECK(jfails_at("[\"abc", 5, 5, "unterminated"),
          "jdoc: an unterminated string refused");
    CHECK(jfails_at("[\"a\\x\"]", 7, 3, "invalid escape"),
          "jdoc: a bad escape refused");
    CHECK(jfails_at("\"ab\x01\"", 5, 3, "control character"),
          "jdoc: a control character refused");
    CHECK(jfails_at("[-012]", 6, 3, "leading zero"),
          "jdoc: a leading zero refused");
    CHECK(jfails_at("", 0, 0, "end of input"),
          "jdoc: empty input refused");
    CHECK(jfails_at("  \n", 3, 3, "end of input"),
          "jdoc: only whitespace refused");
    CHECK(jfails_at("-", 1, 1, "invalid number"),
          "jdoc: a lone '-' refused");
    CHECK(jfails_at("tru", 3, 0, "unexpected character"),
          "jdoc: \"tru\" refused");
    CHECK(jfails_at("[1,", 3, 3, "end of input"),
          "jdoc: a truncated array refused");
    CHECK(jfails_at("[1,]", 4, 3, "unexpected character"),
          "jdoc: a trailing comma refused");
    CHECK(jfails_at("{\"a\" 1}", 7, 5, "':'"),
          "jdoc: a missing ':' refused");
    CHECK(jfails_at("{\"a\":1,2:3}", 11, 7, "key"),
          "jdoc: a non-string key refused");
    CHECK(jfails_at("\"\\u0000\"", 8, 1, "\\u0000"),
          "jdoc: \\u0000 refused");
    CHECK(jfails_at("\"\\ud800x\"", 9, 1, "surrogate"),
          "jdoc: a lone surrogate refused");
    CHECK(jfails_at("[1]\0", 4, 3, "text after"),
          "jdoc: a NUL byte outside strings refused");
}

/* One string: a run of o 'a's, then mid, then 20 'b's, inside an array
 * (so the run crosses 16-byte blocks at every alignment).  Its text. */
static size_t
long_string(char *buf, int o, const char *mid, size_t midlen)
{
    size_t k = 0;

    buf[k++] = '[';
    buf[k++] = '"';
    memset(buf + k, 'a', (size_t) o);
    k += (size_t) o;
    memcpy(buf + k, mid, midlen);
    k += midlen;
    memset(buf + k, 'b', 20);
    k += 20;
    buf[k++] = '"';
    buf[k++] = ']';
    return k;
}

/* Whether the string built by long_string(o, mid) parses and decodes to
 * the same run with dec (declen bytes) in the middle. */
static int
long_string_ok(jdoc *d, int o, const char *mid, size_t midlen, const char *dec, size_t declen)
{
    char buf[128], want[128], err[200];
    size_t n = long_string(buf, o, mid, midlen);

    memset(want, 'a', (size_t) o);
    memcpy(want + o, dec, declen);
    memset(want + o + declen, 'b', 20);
    return jdoc_parse(d, buf, n, err, sizeof err) == 0 && d->ntok == 2 &&
           d->tok[1].escaped == (midlen != declen) &&
           jstr_is(d, 1, want, (size_t) o + declen + 20);
}

/* Long strings (the SSE2 path of rpc_scan.c) with a special byte at
 * every offset 0..40. */
static void
test_jdoc_long_strings(void)
{
    jdoc d = {0};
    int bad_esc = 0, bad_ctl = 0, bad_utf = 0, bad_inv = 0, bad_quote = 0, bad_del = 0;
    char buf[128];

    for (int o = 0; o <= 40; o++) {
        size_t n;

        bad_esc += !long_string_ok(&d, o, "\\\"", 2, "\"", 1);
        bad_utf += !long_string_ok(&d, o, "\xc3\xa9\xf0\x9f\x98\x80", 6, "\xc3\xa9\xf0\x9f\x98\x80", 6);
        bad_del += !long_string_ok(&d, o, "\x7f", 1, "\x7f", 1);
        n = long_string(buf, o, "\x1f", 1);
        bad_ctl += !jfails_at(buf, n, 2 + (size_t) o, "control character");
        n = long_string(buf, o, "\xc3(", 2);
        bad_inv += !jfails_at(buf, n, 2 + (size_t) o, "UTF-8");
        n = long_string(buf, o, "\"", 1);
        bad_quote += !jfails_at(buf, n, 3 + (size_t) o, "',' or ']'");
    }
    CHECK(bad_esc == 0,
          "jdoc: long strings with an escaped quote at offsets 0..40");
    CHECK(bad_utf == 0,
          "jdoc: long strings with UTF-8 (2 and 4 bytes) at offsets 0..40");
    CHECK(bad_del == 0,
          "jdoc: long strings with DEL (0x7f) at offsets 0..40");
    CHECK(bad_ctl == 0,
          "jdoc: long strings with a control character refused at offsets 0..40");
    CHECK(bad_inv == 0,
          "jdoc: long strings with broken UTF-8 refused at offsets 0..40");
    CHECK(bad_quote == 0,
          "jdoc: long strings ended by a quote at offsets 0..40");
    jdoc_free(&d);
}

/* One jdoc across parses: the token array is kept and reused. */
static void
test_jdoc_reuse(void)
{
    jdoc d = {0};
    char *big = malloc(2 * 3000 + 2), err[200];
    jtok *tok;
    uint32_t cap;
    int64_t v = 0;

    if (big == NULL)
        return;
    big[0] = '[';
    for (int i = 0; i < 3000; i++) {
        big[1 + 2 * i] = (char) ('0' + i % 10);
        big[2 + 2 * i] = i == 2999 ? ']' : ',';
    }
    CHECK(jdoc_parse(&d, big, 2 * 3000 + 1, err, sizeof err) == 0 && d.ntok == 3001 &&
          d.cap >= 3001 && jdoc_count(&d, 0) == 3000 && jdoc_int(&d, 3000, &v) == 0 && v == 9,
          "jdoc: 3001 tokens grow the array");
    tok = d.tok;
    cap = d.cap;
    CHECK(jparse(&d, "{\"k\":[true]}") && d.ntok == 4 && d.tok == tok && d.cap == cap &&
          jdoc_type(&d, jdoc_first(&d, jdoc_get(&d, 0, "k"))) == JT_TRUE,
          "jdoc: a second, smaller parse reuses the tokens");
    CHECK(jdoc_parse(&d, "[1,2] x", 7, err, sizeof err) < 0 && d.ntok == 0 && d.tok == tok,
          "jdoc: a failed parse leaves no tokens");
    CHECK(jparse(&d, "[7]") && d.ntok == 2 &&
          jdoc_int(&d, 1, &v) == 0 && v == 7,
          "jdoc: then parses again");
    jdoc_free(&d);
    CHECK(d.tok == NULL && d.cap == 0 && d.ntok == 0,
          "jdoc_free releases the tokens");
    free(big);
}

/* A shallow parse tokenizes the top and checks the rest. */
static void
test_jdoc_shallow(void)
{
    static const char doc[] = "[{\"a\":[1,{\"b\":2}],\"c\":3},{}]";
    jdoc d = {0};
    char err[200];
    size_t len;
    const char *raw;
    int a;

    CHECK(jdoc_parse_shallow(&d, doc, strlen(doc), 2, err, sizeof err) == 0 && d.ntok == 7,
          "jdoc shallow: depth 2 makes 7 tokens (deeper containers are one each)");
    a = jdoc_get(&d, 1, "a");
    raw = a >= 0 ? jdoc_raw(&d, a, &len) : NULL;
    CHECK(jdoc_type(&d, a) == JT_ARRAY && jdoc_count(&d, a) == 0 && jdoc_first(&d, a) == -1 &&
          raw != NULL && len == 11 && memcmp(raw, "[1,{\"b\":2}]", 11) == 0,
          "jdoc shallow: an opaque container has its text, no children");
    CHECK(jdoc_parse_shallow(&d, "[{\"a\":[1,{\"b\":2,}]}]", 20, 2, err, sizeof err) < 0 &&
          contains(err, "at byte"),
          "jdoc shallow: invalid JSON deep inside is still refused");
    CHECK(jdoc_parse_shallow(&d, "[{\"a\":\"\xff\"}]", 12, 1, err, sizeof err) < 0,
          "jdoc shallow: invalid UTF-8 inside an opaque value is refused");
    jdoc_free(&d);
}

static void
test_jdoc(void)
{
    test_jdoc_scalars();
    test_jdoc_nesting();
    test_jdoc_duplicates();
    test_jdoc_escapes();
    test_jdoc_int();
    test_jdoc_raw();
    test_jdoc_depth();
    test_jdoc_errors();
    test_jdoc_long_strings();
    test_jdoc_reuse();
    test_jdoc_shallow();
}

int
main(void)
{
    test_hex();
    test_copy();
    test_rpc();
    test_jdoc();
    return tap_done();
}
