/*
 * test_gateway.c: unit tests of trace-rpc-gateway's pure parts: the JSON
 * scanner, the JSON-RPC validator and the response matcher as the gateway
 * uses it (chain/jsonrpc*.c), the settings and credential handling
 * (config.c, secrets.c), and the token bucket, AIMD and URL health
 * arithmetic (rate.c).  No network.
 * Prints "ok N - name" / "not ok N - name" and "N passed, N failed";
 * exits non-zero on any failure.
 */
#define _GNU_SOURCE
#include "gateway.h"
#include "rate.h"
#include "evm.h"
#include "log.h"
#include "jsonrpc.h"
#include "json_scan.h"
#include "util.h"

#include <math.h>
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON-RPC requests ------------------------------------------------- */

static int
parse_code(const char *body, int max_batch, char *err, size_t errlen)
{
    rpc_request req;
    int code = 0;

    if (rpc_parse_request(body, strlen(body), max_batch, &req, &code, err, errlen) == 0) {
        rpc_request_free(&req);
        return 0;
    }
    return code;
}

static void
test_requests(void)
{
    rpc_request req;
    char err[256];
    int code;
    const char *b;

    b = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"eth_blockNumber\"}";
    CHECK(rpc_parse_request(b, strlen(b), 10, &req, &code, err, sizeof err) == 0 && !req.is_batch &&
              req.n == 1 && json_integer_value(req.items[0].id) == 7 &&
              strcmp(req.items[0].method, "eth_blockNumber") == 0 && req.items[0].params == NULL,
          "a single request parses");
    rpc_request_free(&req);

    b = "[{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"eth_chainId\",\"params\":[]},"
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"eth_getBlockByNumber\",\"params\":[\"0x1\",true]}]";
    CHECK(rpc_parse_request(b, strlen(b), 10, &req, &code, err, sizeof err) == 0 && req.is_batch &&
              req.n == 2 && json_is_string(req.items[0].id) && json_is_array(req.items[1].params),
          "a batch parses");
    rpc_request_free(&req);

    CHECK(parse_code("{\"jsonrpc\":\"2.0\",\"id\":1,", 10, err, sizeof err) == RPC_PARSE_ERROR,
          "truncated JSON is a parse error");
    CHECK(parse_code("not json", 10, err, sizeof err) == RPC_PARSE_ERROR && contains(err, "not valid JSON"),
          "garbage is a parse error");
    CHECK(parse_code("[]", 10, err, sizeof err) == RPC_INVALID_REQUEST && contains(err, "empty batch"),
          "an empty batch is refused");
    CHECK(parse_code("42", 10, err, sizeof err) == RPC_PARSE_ERROR, "a scalar body is refused");
    CHECK(parse_code("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"x\"}", 10, err, sizeof err) ==
              RPC_INVALID_REQUEST,
          "jsonrpc must be 2.0");
    CHECK(parse_code("{\"jsonrpc\":\"2.0\",\"method\":\"eth_chainId\"}", 10, err, sizeof err) ==
              RPC_INVALID_REQUEST && contains(err, "notifications"),
          "notifications are refused");
    CHECK(parse_code("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"eth_chainId\"}", 10, err, sizeof err) ==
              RPC_INVALID_REQUEST,
          "a null id is refused");
    CHECK(parse_code("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"eth_chainId\"}", 10, err, sizeof err) ==
              RPC_INVALID_REQUEST,
          "a fractional id is refused");
    CHECK(parse_code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth chainId\"}", 10, err, sizeof err) ==
              RPC_INVALID_REQUEST,
          "a method name with a space is refused");
    CHECK(parse_code("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\",\"params\":\"x\"}", 10,
                     err, sizeof err) == RPC_INVALID_REQUEST,
          "params must be an array or object");
    CHECK(parse_code("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"eth_chainId\"}", 10, err,
                     sizeof err) == RPC_PARSE_ERROR,
          "duplicate keys are refused");
    CHECK(parse_code("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"},{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"b\"}]",
                     10, err, sizeof err) == RPC_INVALID_REQUEST && contains(err, "repeated"),
          "a batch repeating an id is refused");
    CHECK(parse_code("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"b\"},"
                     "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"c\"}]", 2, err, sizeof err) ==
              RPC_INVALID_REQUEST && contains(err, "at most 2"),
          "max_batch is enforced");

    /* One bad element of a batch is answered alone. */
    b = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}, 5, {\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"\"}]";
    CHECK(rpc_parse_request(b, strlen(b), 10, &req, &code, err, sizeof err) == 0 && req.n == 3 &&
              !req.items[0].done && req.items[1].done && req.items[2].done &&
              contains(req.items[1].resp.text, "\"id\":null") &&
              contains(req.items[2].resp.text, "\"id\":\"x\"") &&
              json_integer_value(json_object_get(req.items[2].resp.error, "code")) == RPC_INVALID_REQUEST,
          "invalid batch elements get their own -32600 answer");
    rpc_request_free(&req);
}

/* ---- the JSON scanner ---------------------------------------------------- */

static int
doc_ok(const char *s)
{
    size_t ep;
    const char *why;

    return json_scan_document(s, strlen(s), &ep, &why) == 0;
}

static void
test_scanner(void)
{
    static const char *const good[] = {
        "{}", "[]", " [1, -2.5e+3, 0, -0, 0.25, 1E5] ", "\"\\u00e9\\ud83d\\ude00\\n\"", "null",
        "{\"a\":{\"b\":[true,false,null]}}", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "123456789012345678901234567890",
    };
    static const char *const bad[] = {
        "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "[01]", "[1.]", "[.5]", "[1e]", "[-]", "tru",
        "[\"\\x\"]", "[\"\\u12\"]", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\u0000\"",
        "\"\x01\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "{} x",
        "[1] [2]", "'a'", "{\"a\":1 \"b\":2}", "\"abc",
    };
    char deep[2 * JSON_SCAN_MAX_DEPTH + 8];
    char out[16];
    size_t pos = 0, outn;
    const char *why;
    int all = 1;

    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        if (!doc_ok(good[i])) {
            printf("# refused: %s\n", good[i]);
            all = 0;
        }
    CHECK(all, "the scanner accepts valid JSON");
    all = 1;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (doc_ok(bad[i])) {
            printf("# accepted: %s\n", bad[i]);
            all = 0;
        }
    CHECK(all, "the scanner refuses invalid JSON, bad UTF-8, bad escapes, lone surrogates, NUL");
    memset(deep, '[', JSON_SCAN_MAX_DEPTH + 1);
    memset(deep + JSON_SCAN_MAX_DEPTH + 1, ']', JSON_SCAN_MAX_DEPTH + 1);
    deep[2 * JSON_SCAN_MAX_DEPTH + 2] = '\0';
    CHECK(!doc_ok(deep), "nesting deeper than the limit is refused");
    memset(deep, '[', JSON_SCAN_MAX_DEPTH);
    memset(deep + JSON_SCAN_MAX_DEPTH, ']', JSON_SCAN_MAX_DEPTH);
    deep[2 * JSON_SCAN_MAX_DEPTH] = '\0';
    CHECK(doc_ok(deep), "nesting up to the limit is accepted");
    CHECK(json_scan_string("\"\\u0069d\"", 9, &pos, out, sizeof out, &outn, &why) == 0 && outn == 2 &&
              memcmp(out, "id", 2) == 0 && pos == 9,
          "strings are decoded (keys compare by value)");
}

/* ---- JSON-RPC responses ------------------------------------------------ */

static int
match(const char *body, json_t **ids, int n, int as_batch, rpc_reply *answers, int *in_order)
{
    char err[256];
    int r = rpc_match_response(body, strlen(body), ids, n, as_batch, answers, in_order, err, sizeof err);

    return r;
}

static void
free_answers(rpc_reply *a, int n)
{
    for (int i = 0; i < n; i++)
        rpc_reply_free(&a[i]);
}

/* The result of a reply as text. */
static int
result_is(const rpc_reply *r, const char *want)
{
    return r->text != NULL && r->result_len == strlen(want) &&
           memcmp(r->text + r->result_off, want, r->result_len) == 0;
}

static void
test_responses(void)
{
    json_t *ids[3] = {json_integer(1), json_string("b"), json_integer(3)};
    rpc_reply ans[3] = {{0}};
    int in_order;

    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x10\"}", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_OK && result_is(&ans[0], "\"0x10\"") && ans[0].error == NULL &&
              strcmp(ans[0].text, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x10\"}") == 0,
          "a matching single response");
    free_answers(ans, 3);
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"0x10\"}", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_BAD_IDS && ans[0].text == NULL,
          "a wrong id is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":\"0x10\"}", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_BAD_IDS,
          "\"1\" does not answer 1");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_BAD_JSON,
          "a truncated response is refused");
    CHECK(match("<html>502 Bad Gateway</html>", ids, 1, 0, ans, &in_order) == RPC_MATCH_BAD_JSON,
          "HTML is refused");
    CHECK(match("{\"id\":1,\"result\":\"0x1\"}", ids, 1, 0, ans, &in_order) == RPC_MATCH_BAD_JSON,
          "a response without jsonrpc is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1}", ids, 1, 0, ans, &in_order) == RPC_MATCH_BAD_JSON,
          "a response without result or error is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{\"code\":1,\"message\":\"x\"}}",
                ids, 1, 0, ans, &in_order) == RPC_MATCH_BAD_JSON,
          "a response with both result and error is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"x\",\"message\":\"m\"}}", ids, 1, 0,
                ans, &in_order) == RPC_MATCH_BAD_JSON,
          "an error without an integer code is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"result\":1}", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_BAD_JSON,
          "a smuggled second id is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"\\u0069d\":2,\"result\":1}", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_BAD_JSON,
          "... also when spelled with an escape");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"a\":1,\"a\":2}}", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_OK,
          "repeated keys inside a result are left alone");
    free_answers(ans, 3);
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xff\"}", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_BAD_JSON,
          "invalid UTF-8 deep in a result is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[1,2,]}", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_BAD_JSON,
          "a trailing comma deep in a result is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1} trailing", ids, 1, 0, ans, &in_order) ==
              RPC_MATCH_BAD_JSON,
          "trailing garbage is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"header not found\"}}",
                ids, 1, 0, ans, &in_order) == RPC_MATCH_OK,
          "a JSON-RPC error answer is a valid answer");
    free_answers(ans, 3);
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32005,\"message\":\"limit\"}}", ids,
                1, 0, ans, &in_order) == RPC_MATCH_LIMITED,
          "a null-id rate-limit error is a rate limit");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"bad\"}}", ids,
                1, 0, ans, &in_order) == RPC_MATCH_BAD_IDS,
          "a null-id error is an id mismatch");

    /* Batches. */
    CHECK(match("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"result\":2},"
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":3}]", ids, 3, 1, ans, &in_order) == RPC_MATCH_OK &&
              in_order && result_is(&ans[1], "2"),
          "a batch in order");
    free_answers(ans, 3);
    CHECK(match("[{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":3},{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},"
                "{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"result\":2}]", ids, 3, 1, ans, &in_order) == RPC_MATCH_OK &&
              !in_order && result_is(&ans[0], "1") && result_is(&ans[1], "2") && result_is(&ans[2], "3"),
          "a reordered batch is put back in request order");
    free_answers(ans, 3);
    CHECK(match("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"result\":2}]",
                ids, 3, 1, ans, &in_order) == RPC_MATCH_BAD_IDS && ans[0].text == NULL,
          "a batch missing an answer is refused");
    CHECK(match("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":2},"
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":3}]", ids, 3, 1, ans, &in_order) == RPC_MATCH_BAD_IDS,
          "a batch answering an id twice is refused");
    CHECK(match("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":2},"
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":3}]", ids, 3, 1, ans, &in_order) == RPC_MATCH_BAD_IDS,
          "a batch answering an unknown id is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}", ids, 3, 1, ans, &in_order) == RPC_MATCH_BAD_IDS,
          "a batch answered by one object is refused");
    CHECK(match("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":429,\"message\":\"Too many requests\"}}",
                ids, 3, 1, ans, &in_order) == RPC_MATCH_LIMITED,
          "a batch answered by one rate-limit error is a rate limit");
    CHECK(match("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},5,{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":3}]",
                ids, 3, 1, ans, &in_order) == RPC_MATCH_BAD_JSON,
          "a batch with a non-object is refused");
    for (int i = 0; i < 3; i++)
        json_decref(ids[i]);
}

/* ---- answers, eth_getLogs ranges --------------------------------------- */

static json_t *
J(const char *s)
{
    return json_loads(s, 0, NULL);
}

/* A reply from response text (as the upstream matcher would make it). */
static rpc_reply
R(const char *text)
{
    rpc_reply r = {0};
    json_t *id = json_integer(1);
    int in_order;
    char err[128];

    rpc_match_response(text, strlen(text), &id, 1, 0, &r, &in_order, err, sizeof err);
    json_decref(id);
    return r;
}

static void
test_answers(void)
{
    json_t *params = J("[{\"fromBlock\":\"0x10\",\"toBlock\":\"0x1f\",\"address\":\"0xaa\"}]");
    json_t *tagged = J("[{\"fromBlock\":\"0x10\",\"toBlock\":\"latest\"}]");
    rpc_reply range = R("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32005,\"message\":\"query returned more than 10000 results\"}}");
    rpc_reply limit = R("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32005,\"message\":\"daily request count exceeded, request rate limited\"}}");
    rpc_reply limit429 = R("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":429,\"message\":\"Your app has exceeded its compute units per second capacity\"}}");
    rpc_reply plain = R("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"execution reverted\"}}");
    rpc_reply ok = R("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[]}");
    json_t *sub;
    uint64_t from, to;

    CHECK(rpc_classify_answer("eth_getLogs", params, &range) == RPC_ANSWER_RANGE,
          "eth_getLogs \"query returned more than\" is a range hint");
    CHECK(rpc_classify_answer("eth_getLogs", tagged, &range) == RPC_ANSWER_ERROR,
          "a range hint on a tagged range cannot be split: passed through");
    CHECK(rpc_classify_answer("eth_call", params, &range) == RPC_ANSWER_ERROR,
          "a range hint on another method passes through");
    CHECK(rpc_classify_answer("eth_blockNumber", NULL, &limit) == RPC_ANSWER_LIMIT,
          "-32005 rate limited is a limit");
    CHECK(rpc_classify_answer("eth_blockNumber", NULL, &limit429) == RPC_ANSWER_LIMIT,
          "a 429 error object is a limit");
    CHECK(rpc_classify_answer("eth_call", NULL, &plain) == RPC_ANSWER_ERROR,
          "execution reverted passes through");
    CHECK(rpc_classify_answer("eth_getLogs", params, &ok) == RPC_ANSWER_RESULT, "a result is a result");
    CHECK(rpc_getlogs_range(params, &from, &to) == 0 && from == 16 && to == 31, "the range is read");
    CHECK(rpc_getlogs_range(tagged, &from, &to) < 0, "a tag is not a numeric range");
    sub = rpc_getlogs_with_range(params, 16, 23);
    CHECK(sub != NULL && rpc_getlogs_range(sub, &from, &to) == 0 && from == 16 && to == 23 &&
              strcmp(json_string_value(json_object_get(json_array_get(sub, 0), "address")), "0xaa") == 0 &&
              rpc_getlogs_range(params, &from, &to) == 0 && to == 31,
          "a sub-range keeps the filter and leaves the original alone");
    json_decref(sub);
    CHECK(hex_to_u64("0x0", &from) == 0 && from == 0 && hex_to_u64("0x", &from) < 0 &&
              hex_to_u64("12", &from) < 0 && hex_to_u64("0x12345678901234567", &from) < 0 &&
              hex_to_u64("0xfg", &from) < 0,
          "quantities are strict hex");
    {
        size_t len;
        json_t *id = json_string("q");
        char *s = rpc_error_body(id, -32603, "gateway: p: x", &len);

        CHECK(s != NULL && strcmp(s, "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"error\":{\"code\":-32603,\"message\":\"gateway: p: x\"}}") == 0,
              "the error body has the documented shape");
        free(s);
        s = rpc_error_body(NULL, -32603, "m", &len);
        CHECK(s != NULL && contains(s, "\"id\":null"), "an error body without an id has id null");
        free(s);
        json_decref(id);
    }
    json_decref(params);
    json_decref(tagged);
    rpc_reply_free(&range);
    rpc_reply_free(&limit);
    rpc_reply_free(&limit429);
    rpc_reply_free(&plain);
    rpc_reply_free(&ok);
}

/* ---- config ------------------------------------------------------------ */

static char *const test_env[] = {
    "RPC_KEY=k3y-abcdefghijklmnopqrstuvwx", "HDR_KEY=hdr-secret-value", "EMPTY=", NULL,
};

static int
load(gw_config *cfg, const char *text, char *err, size_t errlen)
{
    if (gw_config_defaults(cfg, err, errlen) < 0)
        return -1;
    if (gw_config_parse_text(cfg, text, "test.conf", err, errlen) < 0 ||
        gw_config_finish(cfg, test_env, err, errlen) < 0) {
        gw_config_free(cfg);
        return -1;
    }
    return 0;
}

static void
test_config(void)
{
    gw_config cfg;
    char err[512];
    const char *t;

    t = "listen = '127.0.0.1:9000'\n"
        "rate_limit = 7          # default for all\n"
        "retries = 5\n"
        "provider.main.chain_id = 1\n"
        "provider.main.url = 'https://rpc.example.com/v3/${RPC_KEY}'\n"
        "provider.main.url = \"http://backup.example.org:8080/\"\n"
        "provider.main.header = 'x-api-key: ${HDR_KEY}'\n"
        "provider.main.rate_limit = 25.5\n"
        "provider.main.methods = 'default, eth_getBalance, debug_trace*'\n"
        "provider.dev.chain_id = 31337\n"
        "provider.dev.url = http://127.0.0.1:8546\n";
    CHECK(load(&cfg, t, err, sizeof err) == 0, "a full config loads");
    if (cfg.nproviders == 2) {
        gw_provider_config *m = cfg.providers[0], *d = cfg.providers[1];

        CHECK(strcmp(cfg.listen, "127.0.0.1:9000") == 0, "listen is read");
        CHECK(m->chain_id == 1 && m->nurls == 2 && fabs(m->rate_limit - 25.5) < 1e-9 && m->retries == 5,
              "provider settings override, others take the top-level default");
        CHECK(d->rate_limit == 7 && d->retries == 5 && d->timeout_ms == 30000,
              "a provider without settings takes the defaults");
        CHECK(strcmp(cfg.urls[0][0].url, "https://rpc.example.com/v3/k3y-abcdefghijklmnopqrstuvwx") == 0,
              "${VAR} is resolved in a URL");
        CHECK(strcmp(cfg.urls[0][0].host, "rpc.example.com:443") == 0 &&
                  strcmp(cfg.urls[0][1].host, "backup.example.org:8080") == 0 &&
                  strcmp(cfg.urls[1][0].host, "127.0.0.1:8546") == 0,
              "hosts (with default ports) name the URLs");
        CHECK(strcmp(m->headers[0], "x-api-key: hdr-secret-value") == 0, "${VAR} is resolved in a header");
        CHECK(gw_method_allowed(m, "eth_getBalance") >= 0 && gw_method_allowed(m, "eth_getLogs") >= 0 &&
                  gw_method_allowed(m, "debug_traceBlockByNumber") >= 0 &&
                  gw_method_allowed(m, "debug_getRawBlock") < 0,
              "the allow-list: default, extras and prefixes");
        CHECK(gw_method_allowed(d, "eth_getBlockReceipts") >= 0 && gw_method_allowed(d, "anvil_mine") < 0 &&
                  gw_method_allowed(d, "evm_mine") < 0 && gw_method_allowed(d, "eth_sendRawTransaction") < 0 &&
                  gw_method_allowed(d, "eth_getBalance") < 0,
              "the default allow-list is the follower's read methods, never anvil_*/evm_*");
        {
            char line[512];

            snprintf(line, sizeof line, "GET https://rpc.example.com/v3/k3y-abcdefghijklmnopqrstuvwx x-api-key: hdr-secret-value");
            gw_redact(&cfg, line, sizeof line);
            CHECK(!contains(line, "k3y-") && !contains(line, "hdr-secret") && contains(line, "rpc.example.com"),
                  "credentials are masked in log text");
        }
        {
            char *buf = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&buf, &len);

            gw_config_dump(&cfg, f);
            fclose(f);
            CHECK(buf != NULL && !contains(buf, "k3y-") && !contains(buf, "hdr-secret") &&
                      contains(buf, "rpc.example.com:443") && contains(buf, "x-api-key: ****"),
                  "--check-config shows hosts, never credentials");
            free(buf);
        }
        gw_config_free(&cfg);
    } else
        CHECK(0, "two providers");
}

/* What a config may not say. */
static void
test_config_refusals(void)
{
    gw_config cfg;
    char err[512];

    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/${NOPE}'\n", err, sizeof err) < 0 &&
              contains(err, "NOPE is not set") && contains(err, "provider \"a\" url 1"),
          "an unset variable names itself and the URL's position");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/${EMPTY}'\n", err, sizeof err) < 0,
          "an empty variable counts as unset");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'ftp://h/${RPC_KEY}'\n", err, sizeof err) < 0 &&
              contains(err, "only http and https") && !contains(err, "k3y"),
          "a non-http URL is refused without quoting it");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'file:///etc/passwd'\n", err, sizeof err) < 0,
          "file: URLs are refused");
    CHECK(load(&cfg, "provider.a.url = 'http://h/'\n", err, sizeof err) < 0 && contains(err, "chain_id"),
          "chain_id is required");
    CHECK(load(&cfg, "provider.a.chain_id = 1\n", err, sizeof err) < 0 && contains(err, "no url"),
          "a provider needs a URL");
    CHECK(load(&cfg, "listen = '127.0.0.1:1'\n", err, sizeof err) < 0 && contains(err, "no provider"),
          "a gateway needs a provider");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/'\nprovider.a.rate_limit = 0\n",
               err, sizeof err) < 0 && contains(err, "out of range"),
          "rate_limit has a range");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/'\nprovider.a.timeout = 5\n",
               err, sizeof err) < 0 && contains(err, "needs a unit"),
          "durations need a unit");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/'\nprovider.a.bogus = 5\n",
               err, sizeof err) < 0 && contains(err, "unknown provider setting"),
          "unknown provider settings are refused");
    CHECK(load(&cfg, "bogus = 5\n", err, sizeof err) < 0 && contains(err, "test.conf:1") &&
              contains(err, "unknown setting"),
          "unknown settings are refused with file:line");
    CHECK(load(&cfg, "provider.a b.chain_id = 1\n", err, sizeof err) < 0, "a provider name with a space is refused");
    CHECK(load(&cfg, "provider.a/b.chain_id = 1\n", err, sizeof err) < 0, "a provider name with a slash is refused");
    CHECK(load(&cfg, "url = 'http://h/'\n", err, sizeof err) < 0 && contains(err, "per provider"),
          "url is per provider only");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/'\nprovider.a.methods = 'eth_x, bad-name'\n",
               err, sizeof err) < 0,
          "a bad method name is refused");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/'\nprovider.a.header = 'no colon'\n",
               err, sizeof err) < 0 && contains(err, "Name: value"),
          "a header needs a name and a value");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/'\nprovider.a.rate_min = 9\nprovider.a.rate_limit = 2\n",
               err, sizeof err) < 0 && contains(err, "rate_min"),
          "rate_min above rate_limit is refused");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://h/${RPC_KEY'\n", err, sizeof err) < 0 &&
              contains(err, "malformed"),
          "an unterminated ${ is refused");
    CHECK(load(&cfg, "provider.a.chain_id = 1\nprovider.a.url = 'http://user:pa55word-long@h/'\n", err, sizeof err) == 0 &&
              cfg.nsecrets >= 1, "userinfo is recorded as a secret");
    if (cfg.nproviders)
        gw_config_free(&cfg);

    {
        char *argv[] = {"trace-rpc-gateway", "--listen=unix:/tmp/x.sock", "--provider.z.chain_id", "5",
                        "--provider.z.url=http://127.0.0.1:1/", NULL};
        char *envp[] = {"TRACE_GATEWAY_MAX_BATCH=17", "TRACE_GATEWAY_LISTEN=127.0.0.1:1", NULL};

        CHECK(gw_config_load(&cfg, 5, argv, envp, NULL, err, sizeof err) == 0 && cfg.max_batch == 17 &&
                  strcmp(cfg.listen, "unix:/tmp/x.sock") == 0 && cfg.providers[0]->chain_id == 5,
              "flags win over the environment; provider settings as flags");
        if (cfg.nproviders)
            gw_config_free(&cfg);
    }
}

/* ---- rate control ------------------------------------------------------ */

static void
test_rate(void)
{
    gw_bucket b;
    int64_t t = 1000000, w;
    int got = 0;

    gw_bucket_init(&b, 10, 1, 2, 0.5, t);
    /* Over 10 s at most 10/s (+ the burst of 1). */
    for (int64_t now = t; now < t + 10000; now += 5)
        if (gw_bucket_reserve(&b, now, 1, 0) == 0)
            got++;
    CHECK(got >= 99 && got <= 101, "the hard cap holds: about 10/s over 10 s");

    gw_bucket_init(&b, 10, 1, 2, 0.5, t);
    w = gw_bucket_reserve(&b, t, 1, 10000);
    CHECK(w == 0, "the first token is free");
    CHECK(gw_bucket_reserve(&b, t, 1, 10000) == 100 && gw_bucket_reserve(&b, t, 1, 10000) == 200,
          "waiters reserve successive slots, 100 ms apart at 10/s");
    CHECK(gw_bucket_reserve(&b, t, 1, 250) == -1, "a wait beyond max_wait reserves nothing");
    CHECK(gw_bucket_reserve(&b, t, 1, 300) == 300, "... and the next waiter still gets the next slot");

    gw_bucket_init(&b, 100, 5, 10, 0.5, t);
    gw_bucket_init(&b, 10, 1, 2, 0.5, t);
    CHECK(gw_bucket_reserve(&b, t, 1, 0) == 0 && gw_bucket_reserve(&b, t, 5, 10000) == 500 &&
              gw_bucket_reserve(&b, t, 1, 10000) == 600,
          "a batch of 5 costs 5 tokens; the next caller waits behind it");
    CHECK(gw_bucket_reserve(&b, t, 50, 4000) == -1, "a batch that cannot get its tokens in time reserves none");

    gw_bucket_init(&b, 100, 5, 10, 0.5, t);
    CHECK(gw_bucket_limited(&b, t) == 1 && fabs(b.rate - 50) < 1e-9, "a limit signal halves the rate");
    CHECK(gw_bucket_limited(&b, t + 500) == 0 && fabs(b.rate - 50) < 1e-9,
          "a second signal within a second does not cut again");
    CHECK(gw_bucket_limited(&b, t + 1000) == 1 && fabs(b.rate - 25) < 1e-9, "after a second it does");
    gw_bucket_refill(&b, t + 1500);
    CHECK(fabs(b.rate - 25) < 1e-9, "no increase within a second of a cut");
    gw_bucket_refill(&b, t + 4000);
    CHECK(fabs(b.rate - 45) < 1e-6, "additive increase: +10/s per second after the hold");
    gw_bucket_refill(&b, t + 60000);
    CHECK(fabs(b.rate - 100) < 1e-9, "the rate grows back to the cap, not past it");
    for (int i = 0; i < 20; i++)
        gw_bucket_limited(&b, t + 61000 + i * 1000);
    CHECK(fabs(b.rate - 5) < 1e-9, "the rate never falls below rate_min");

}

static void
test_health(void)
{
    gw_health h[3];
    const gw_health *hp[3] = {&h[0], &h[1], &h[2]};
    int disabled[3] = {0, 0, 0};
    int64_t t = 5000000, wait;

    for (int i = 0; i < 3; i++)
        gw_health_init(&h[i], t);
    CHECK(gw_pick_url(hp, disabled, 3, 0, t, &wait) == 0, "healthy URLs: the first is preferred");
    gw_health_failure(&h[0], t, 3, 2000, 60000, -1);
    CHECK(gw_pick_url(hp, disabled, 3, 0, t, &wait) == 1, "after a failure the next healthy URL wins");
    CHECK(gw_pick_url(hp, disabled, 3, 1u << 1, t, &wait) == 2, "a URL this request tried is avoided");
    CHECK(gw_pick_url(hp, disabled, 3, 7, t, &wait) == 1, "when all were tried the healthiest is reused");
    CHECK(gw_health_score(&h[0], t + 300000) > 0.99, "an unused URL's score heals over time");
    CHECK(gw_pick_url(hp, disabled, 3, 0, t + 300000, &wait) == 0, "a healed preferred URL takes over again");
    gw_health_failure(&h[0], t, 3, 2000, 60000, -1);
    CHECK(!gw_health_is_down(&h[0], t), "two failures: still up (threshold 3)");
    CHECK(gw_health_failure(&h[0], t, 3, 2000, 60000, -1) == 1 && gw_health_is_down(&h[0], t + 1999) &&
              !gw_health_is_down(&h[0], t + 2000),
          "the third failure takes it down for the cooldown");
    gw_health_failure(&h[0], t + 2000, 3, 2000, 60000, -1);
    CHECK(h[0].down_until_ms == t + 2000 + 4000, "failing again doubles the cooldown");
    gw_health_success(&h[0], t + 7000);
    CHECK(!gw_health_is_down(&h[0], t + 7000) && h[0].consecutive == 0, "a success brings it back");
    gw_health_failure(&h[1], t, 3, 2000, 60000, 7000);
    CHECK(gw_health_is_down(&h[1], t + 6999) && !gw_health_is_down(&h[1], t + 7000),
          "Retry-After keeps a URL down that long, even below the threshold");
    disabled[2] = 1;
    gw_health_failure(&h[0], t + 6000, 1, 2000, 60000, -1);     /* down until t + 8000 */
    CHECK(gw_pick_url(hp, disabled, 3, 0, t + 6000, &wait) == -1 && wait == 1000,
          "all down or disabled: no URL, and the wait until the first is back");
    disabled[0] = disabled[1] = 1;
    CHECK(gw_pick_url(hp, disabled, 3, 0, t + 6000, &wait) == -1 && wait == -1,
          "all disabled (wrong chain): no URL, ever");
}

int
main(void)
{
    log_configure(LOG_ERROR, LOG_TEXT, "test");
    json_object_seed(1);
    test_scanner();
    test_requests();
    test_responses();
    test_answers();
    test_config();
    test_config_refusals();
    test_rate();
    test_health();
    return tap_done();
}
