/*
 * unit.c: unit tests of the chain operators' pure parts: hex decoding,
 * the binary COPY encoder (numeric, timestamptz, header), and the
 * JSON-RPC response matcher of rpc_client.c (bad peers: wrong ids,
 * duplicates, truncated bodies, non-JSON).  Built and run by
 * test/chain/run.sh against the worker's objects.
 */
#include "evm.h"
#include "rpc_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(name, cond) do {                                  \
        if (cond) { passed++; printf("ok - %s\n", name); }      \
        else { failed++; printf("not ok - %s\n", name); }       \
    } while (0)

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

    CHECK("hex_to_u64 0x1b4", hex_to_u64("0x1b4", &v) == 0 && v == 436);
    CHECK("hex_to_u64 0x0", hex_to_u64("0x0", &v) == 0 && v == 0);
    CHECK("hex_to_u64 leading zeros tolerated", hex_to_u64("0x00ff", &v) == 0 && v == 255);
    CHECK("hex_to_u64 max", hex_to_u64("0xffffffffffffffff", &v) == 0 && v == UINT64_MAX);
    CHECK("hex_to_u64 refuses 17 digits", hex_to_u64("0x1ffffffffffffffff", &v) < 0);
    CHECK("hex_to_u64 refuses a missing 0x", hex_to_u64("1b4", &v) < 0);
    CHECK("hex_to_u64 refuses an empty number", hex_to_u64("0x", &v) < 0);
    CHECK("hex_to_u64 refuses non-hex", hex_to_u64("0x1g", &v) < 0);
    CHECK("hex_to_u64 refuses NULL", hex_to_u64(NULL, &v) < 0);
    CHECK("hex_to_fixed 4 bytes", hex_to_fixed("0xdeadBEEF", b, 4) == 0 && b[0] == 0xde && b[3] == 0xef);
    CHECK("hex_to_fixed refuses the wrong length", hex_to_fixed("0xdeadbe", b, 4) < 0);
    CHECK("hex_data_len refuses an odd length", hex_data_len("0xabc", &len) < 0);
    CHECK("hex_data_len of 0x is 0", hex_data_len("0x", &len) == 0 && len == 0);
    bytes_to_hex((const uint8_t *) "\x01\xab", 2, hex);
    CHECK("bytes_to_hex", strcmp(hex, "0x01ab") == 0);
    CHECK("hex_to_decimal 100 ETH + 1 wei (past 2^64)",
          hex_to_decimal("0x56bc75e2d63100001", dec, sizeof dec) == 0 &&
          strcmp(dec, "100000000000000000001") == 0);
    CHECK("hex_to_decimal 2^256-1",
          hex_to_decimal("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", dec,
                         sizeof dec) == 0 &&
          strcmp(dec, "115792089237316195423570985008687907853269984665640564039457584007913129639935") == 0);
    CHECK("hex_to_decimal refuses more than 256 bits",
          hex_to_decimal("0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", dec,
                         sizeof dec) < 0);
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
    CHECK("COPY header: signature, flags, extension", cb.len == 19 && memcmp(cb.data, sig, 11) == 0 &&
          rd32(cb.data + 11) == 0 && rd32(cb.data + 15) == 0);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        size_t at = cb.len;

        cb_numeric_hex(&cb, nums[i].hex, "n");
        numeric_to_decimal(cb.data + at, dec, sizeof dec);
        snprintf(name, sizeof name, "numeric %s = %s", nums[i].hex, nums[i].dec);
        CHECK(name, !cb.failed && strcmp(dec, nums[i].dec) == 0 &&
              rd32(cb.data + at) == 8 + 2 * (uint32_t) (int16_t) rd16(cb.data + at + 4));
    }
    {
        size_t at = cb.len;

        cb_numeric_hex(&cb, "0x2710", "n");      /* 10000: one group, weight 1 */
        CHECK("numeric 10000: ndigits 1, weight 1, positive, dscale 0, digit 1",
              rd16(cb.data + at + 4) == 1 && rd16(cb.data + at + 6) == 1 &&
              rd16(cb.data + at + 8) == 0 && rd16(cb.data + at + 10) == 0 &&
              rd16(cb.data + at + 12) == 1);
    }
    {
        size_t at = cb.len;

        cb_timestamptz_unix(&cb, 946684800 + 1);
        CHECK("timestamptz: microseconds since 2000-01-01",
              rd32(cb.data + at) == 8 && rd32(cb.data + at + 4) == 0 &&
              rd32(cb.data + at + 8) == 1000000);
    }
    cb_numeric_hex(&cb, "0xzz", "value");
    CHECK("a bad quantity fails the buffer, naming the field",
          cb.failed && strstr(cb.error, "value") != NULL);
    cb_reset(&cb);
    cb_bytea_hex(&cb, "0x123", "input");
    CHECK("bad hex data fails the buffer", cb.failed && strstr(cb.error, "input") != NULL);
    cb_reset(&cb);
    cb_tuple(&cb, 1);
    cb_null(&cb);
    cb_finish(&cb);
    CHECK("a tuple with a NULL, then the trailer",
          !cb.failed && cb.len == 19 + 2 + 4 + 2 && rd16(cb.data + 19) == 1 &&
          rd32(cb.data + 21) == 0xffffffffu && rd16(cb.data + 25) == 0xffff);
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

    CHECK("a batch answered out of order is matched by id",
          parse("[{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"0x2\"},{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}]",
                c, 2, err, sizeof err) == 0 &&
          json_is_null(c[0].result) && strcmp(json_string_value(c[1].result), "0x2") == 0);
    rpc_client_calls_clear(c, 2);
    CHECK("a per-call error is kept with its code and message",
          parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,\"message\":\"nope\"}}]",
                c, 1, err, sizeof err) == 0 && c[0].has_error && c[0].code == -32601 &&
          strcmp(c[0].message, "nope") == 0);
    rpc_client_calls_clear(c, 1);
    CHECK("not JSON is refused",
          parse("<html>", c, 1, err, sizeof err) < 0 && strstr(err, "not JSON") != NULL);
    CHECK("a truncated body is refused",
          parse("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x", c, 1, err, sizeof err) < 0);
    CHECK("a single object for a batch is refused",
          parse("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"bad\"}}",
                c, 1, err, sizeof err) < 0 && strstr(err, "not an array") != NULL);
    CHECK("too few replies are refused",
          parse("[{\"id\":1,\"result\":1}]", c, 2, err, sizeof err) < 0);
    CHECK("an id no call has is refused",
          parse("[{\"id\":1,\"result\":1},{\"id\":3,\"result\":1}]", c, 2, err, sizeof err) < 0 &&
          strstr(err, "no call") != NULL);
    CHECK("a repeated id is refused",
          parse("[{\"id\":1,\"result\":1},{\"id\":1,\"result\":2}]", c, 2, err, sizeof err) < 0 &&
          c[0].result == NULL);
    CHECK("a string id is refused (we send integers)",
          parse("[{\"id\":\"1\",\"result\":1}]", c, 1, err, sizeof err) < 0);
    CHECK("a reply with neither result nor error is refused",
          parse("[{\"id\":1}]", c, 1, err, sizeof err) < 0);
    CHECK("duplicate keys are refused (a smuggled second result)",
          parse("[{\"id\":1,\"result\":1,\"result\":2}]", c, 1, err, sizeof err) < 0);
    cl = rpc_client_new("http://127.0.0.1:1", "a/b", err, sizeof err);
    CHECK("a provider name with a slash is refused", cl == NULL);
    cl = rpc_client_new("http://127.0.0.1:1", "", err, sizeof err);
    CHECK("an empty provider name is refused", cl == NULL);
    cl = rpc_client_new("file:///etc/passwd", "local", err, sizeof err);
    CHECK("a gateway that is not http(s) is refused", cl == NULL);
    cl = rpc_client_new("unix:relative.sock", "local", err, sizeof err);
    CHECK("a unix: gateway needs an absolute path", cl == NULL);
    cl = rpc_client_new("unix:/run/trace/gw.sock", "local", err, sizeof err);
    CHECK("a unix:/path gateway makes a client", cl != NULL);
    rpc_client_free(cl);
    cl = rpc_client_new("http://127.0.0.1:1/", "local", err, sizeof err);
    CHECK("a good gateway and name make a client", cl != NULL);
    if (cl) {
        rpc_call one[1];

        memset(one, 0, sizeof one);
        one[0].method = "eth_chainId";
        one[0].params = json_array();
        CHECK("a gateway that refuses connections: a retryable failure",
              rpc_client_batch(cl, one, 1, NULL, NULL, err, sizeof err) == -1 &&
              strstr(err, "rpc gateway (provider local)") != NULL &&
              strstr(err, "127.0.0.1") == NULL);
        rpc_client_free(cl);
    }
}

int
main(void)
{
    test_hex();
    test_copy();
    test_rpc();
    printf("# %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
