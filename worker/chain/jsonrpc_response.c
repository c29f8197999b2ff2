/*
 * jsonrpc_response.c: the one JSON-RPC response matcher of every Trace
 * program: the gateway checks what upstreams answer with it, the worker's
 * JSON-RPC client (rpc_client.c) checks what the gateway answers.
 *
 * The body is parsed once into a flat token document (lib/jdoc.h): in full
 * for the worker, which reads the results in place, or only its top levels
 * for the gateway, which passes results on as bytes (deeper values are
 * still checked in full by the scanner).  Only what must be understood is
 * parsed into jansson values: each id (to compare with the ids sent) and
 * each error object (to tell a rate limit or a range hint from an answer).
 *
 * Accepted, as the answer to ids[0..n-1]: for a single request one response
 * object, for a batch an array answering every id exactly once and nothing
 * else; each response with "jsonrpc": "2.0", the id, and exactly one of
 * "result" or an "error" object with an integer code and a string message.
 * A response that repeats one of these members (also when spelled with
 * escapes) is refused: clients' parsers differ on which one they keep.
 * Invalid JSON is reported as such whatever else is wrong, so that garbage
 * is always called garbage.  Error texts give byte offsets or positions,
 * never the body's bytes (an upstream's body may echo a credential).
 */
#define _GNU_SOURCE
#include "jsonrpc.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tokens the gateway needs: the batch, its responses, their members. */
#define SHALLOW_DEPTH_BATCH  2
#define SHALLOW_DEPTH_SINGLE 1

/* The members of response object tok: jsonrpc, id, result, error; -1 for
 * each one absent.  -1 with *why when a member repeats. */
static int
response_members(const jdoc *d, int tok, int m[4], const char **why)
{
    static const char *const keys[4] = {"jsonrpc", "id", "result", "error"};

    if (jdoc_fields(d, tok, keys, 4, m) < 0) {
        *why = "a response repeats a member";
        return -1;
    }
    return 0;
}

/* Checks response object tok: out->tok, ->result and ->error (parsed, new
 * ref) filled and its id parsed into *id (new ref).  -1 with *why when it
 * is not a JSON-RPC 2.0 response. */
static int
check_response(const jdoc *d, int tok, rpc_answer *out, json_t **id, const char **why)
{
    int m[4];
    size_t len;
    const char *raw;

    *id = NULL;
    out->tok = tok;
    out->result = -1;
    out->error = NULL;
    if (jdoc_type(d, tok) != JT_OBJECT) {
        *why = "a response is not an object";
        return -1;
    }
    if (response_members(d, tok, m, why) < 0)
        return -1;
    if (m[0] < 0 || (raw = jdoc_raw(d, m[0], &len), len != 5 || memcmp(raw, "\"2.0\"", 5) != 0)) {
        *why = "\"jsonrpc\" is not \"2.0\"";
        return -1;
    }
    if (m[1] < 0) {
        *why = "a response has no \"id\"";
        return -1;
    }
    if ((m[2] < 0) == (m[3] < 0)) {
        *why = "a response must have exactly one of \"result\" and \"error\"";
        return -1;
    }
    raw = jdoc_raw(d, m[1], &len);
    if ((*id = json_loadb(raw, len, JSON_DECODE_ANY, NULL)) == NULL) {
        *why = "a response id is out of range";
        return -1;
    }
    out->result = m[2];
    if (m[3] >= 0) {
        raw = jdoc_raw(d, m[3], &len);
        out->error = json_loadb(raw, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(out->error) || !json_is_integer(json_object_get(out->error, "code")) ||
            !json_is_string(json_object_get(out->error, "message"))) {
            json_decref(out->error);
            json_decref(*id);
            out->error = *id = NULL;
            *why = "\"error\" is not an object with an integer code and a string message";
            return -1;
        }
    }
    return 0;
}

void
rpc_answers_clear(rpc_answer *a, int n)
{
    for (int k = 0; k < n; k++) {
        json_decref(a[k].error);
        a[k].error = NULL;
    }
}

/* A single response object answering ids[0] (or, for a batch, a rate
 * limit refusing it all). */
static int
match_single(const jdoc *d, json_t *const *ids, int n, int as_batch, rpc_answer *out,
             char *err, size_t errlen)
{
    const char *why = NULL;
    json_t *id;
    rpc_answer a;
    int rc = RPC_MATCH_BAD_IDS;

    if (check_response(d, 0, &a, &id, &why) < 0) {
        set_err(err, errlen, "invalid JSON-RPC response: %s", why);
        return RPC_MATCH_BAD_JSON;
    }
    /* One object for a batch, or a null id: the whole call was refused. */
    if (as_batch || json_is_null(id)) {
        if (a.error != NULL && rpc_error_is_limit(a.error)) {
            set_err(err, errlen, "rate limited (JSON-RPC error %lld)",
                    (long long) json_integer_value(json_object_get(a.error, "code")));
            rc = RPC_MATCH_LIMITED;
        } else if (as_batch)
            set_err(err, errlen, "a batch was answered with a single object%s%s",
                    a.error ? ": " : "",
                    a.error ? json_string_value(json_object_get(a.error, "message")) : "");
        else if (n != 1 || !json_is_null(ids[0]))
            set_err(err, errlen, "the response id is null");
        else
            rc = RPC_MATCH_OK;
    } else if (!json_equal(id, ids[0]))
        set_err(err, errlen, "the response id does not match the request id");
    else
        rc = RPC_MATCH_OK;
    json_decref(id);
    if (rc == RPC_MATCH_OK)
        out[0] = a;
    else
        json_decref(a.error);
    return rc;
}

/* Response i of a batch (token tok): which request it answers, into
 * out[k].  -1 with err (BAD_JSON in *rc) when it is no response, or with
 * idwhy (BAD_IDS) when its id is not one asked or answers one twice. */
static int
match_element(const jdoc *d, int tok, int i, json_t *const *ids, int n, rpc_answer *out,
              int *in_order, char *idwhy, size_t idlen, int *rc, char *err, size_t errlen)
{
    const char *why = NULL;
    rpc_answer a;
    json_t *id;
    int k;

    if (check_response(d, tok, &a, &id, &why) < 0) {
        set_err(err, errlen, "invalid JSON-RPC response %d of the batch: %s", i, why);
        *rc = RPC_MATCH_BAD_JSON;
        return -1;
    }
    k = i < n && json_equal(id, ids[i]) ? i : -1;
    if (k < 0) {
        *in_order = 0;
        for (k = 0; k < n && !json_equal(id, ids[k]); k++)
            ;
    }
    json_decref(id);
    if (k == n)
        snprintf(idwhy, idlen, "response %d of the batch answers an id that was not asked", i);
    else if (out[k].tok >= 0)
        snprintf(idwhy, idlen, "the batch answers request %d twice", k);
    else {
        out[k] = a;
        return 0;
    }
    json_decref(a.error);
    *rc = RPC_MATCH_BAD_IDS;
    return -1;
}

/* An array answering the batch ids[0..n-1]. */
static int
match_batch(const jdoc *d, json_t *const *ids, int n, rpc_answer *out, int *in_order,
            char *err, size_t errlen)
{
    int count = (int) jdoc_count(d, 0), tok = jdoc_first(d, 0), rc = RPC_MATCH_OK;
    char idwhy[160] = "";

    for (int k = 0; k < n; k++)
        out[k].tok = -1;
    /* Every element is checked; a wrong id is reported after the others
     * proved to be responses. */
    for (int i = 0; i < count; i++, tok = jdoc_next(d, tok)) {
        if (i >= n) {
            snprintf(idwhy, sizeof idwhy, "a batch of %d was answered with more responses", n);
            rc = RPC_MATCH_BAD_IDS;
        }
        if (rc == RPC_MATCH_OK &&
            match_element(d, tok, i, ids, n, out, in_order, idwhy, sizeof idwhy, &rc, err,
                          errlen) < 0 && rc == RPC_MATCH_BAD_JSON)
            break;
    }
    if (rc == RPC_MATCH_OK && count != n) {
        snprintf(idwhy, sizeof idwhy, "a batch of %d was answered with %d responses", n, count);
        rc = RPC_MATCH_BAD_IDS;
    }
    if (rc == RPC_MATCH_BAD_IDS)
        set_err(err, errlen, "%s", idwhy);
    if (rc != RPC_MATCH_OK)
        rpc_answers_clear(out, n);
    return rc;
}

/* Parses body into d, tokenizing values up to depth, and matches it. */
static int
match(jdoc *d, int depth, const char *body, size_t len, json_t *const *ids, int n, int as_batch,
      rpc_answer *out, int *in_order, char *err, size_t errlen)
{
    char why[200];

    *in_order = 1;
    for (int k = 0; k < n; k++) {
        out[k].tok = out[k].result = -1;
        out[k].error = NULL;
    }
    if (json_scan_ws(body, len, 0) >= len) {
        set_err(err, errlen, "the response is empty");
        return RPC_MATCH_BAD_JSON;
    }
    if (jdoc_parse_shallow(d, body, len, depth, why, sizeof why) < 0) {
        set_err(err, errlen, "the response is not valid JSON: %s", why);
        return RPC_MATCH_BAD_JSON;
    }
    switch (jdoc_type(d, 0)) {
    case JT_OBJECT:
        return match_single(d, ids, n, as_batch, out, err, errlen);
    case JT_ARRAY:
        if (as_batch)
            return match_batch(d, ids, n, out, in_order, err, errlen);
        set_err(err, errlen, "invalid JSON-RPC response: a single request was answered with an array");
        return RPC_MATCH_BAD_JSON;
    default:
        set_err(err, errlen, "invalid JSON-RPC response: neither an object nor an array");
        return RPC_MATCH_BAD_JSON;
    }
}

int
rpc_match(jdoc *d, const char *body, size_t len, json_t *const *ids, int n, int as_batch,
          rpc_answer *out, int *in_order, char *err, size_t errlen)
{
    return match(d, INT32_MAX, body, len, ids, n, as_batch, out, in_order, err, errlen);
}

int
rpc_match_shallow(jdoc *d, const char *body, size_t len, json_t *const *ids, int n,
                  int as_batch, rpc_answer *out, int *in_order, char *err, size_t errlen)
{
    return match(d, as_batch ? SHALLOW_DEPTH_BATCH : SHALLOW_DEPTH_SINGLE, body, len, ids, n,
                 as_batch, out, in_order, err, errlen);
}

/* ---- the gateway's replies ---------------------------------------------- */

/* Copies the response of answer a (its bytes) into a reply, taking its
 * error object. */
static int
make_reply(rpc_reply *out, const jdoc *d, rpc_answer *a)
{
    size_t len, rlen = 0;
    const char *raw = jdoc_raw(d, a->tok, &len);
    const char *res = a->result >= 0 ? jdoc_raw(d, a->result, &rlen) : NULL;

    if ((out->text = malloc(len + 1)) == NULL)
        return -1;
    memcpy(out->text, raw, len);
    out->text[len] = '\0';
    out->len = len;
    out->result_off = res ? (size_t) (res - raw) : 0;
    out->result_len = rlen;
    out->error = a->error;
    a->error = NULL;
    return 0;
}

int
rpc_match_response(const char *body, size_t len, json_t *const *ids, int n, int as_batch,
                   rpc_reply *answers, int *in_order, char *err, size_t errlen)
{
    rpc_answer *a = calloc((size_t) (n > 0 ? n : 1), sizeof(*a));
    jdoc d = {0};
    int rc;

    if (a == NULL) {
        set_err(err, errlen, "out of memory");
        return RPC_MATCH_BAD_JSON;
    }
    rc = rpc_match_shallow(&d, body, len, ids, n, as_batch, a, in_order, err, errlen);
    for (int k = 0; rc == RPC_MATCH_OK && k < n; k++)
        if (make_reply(&answers[k], &d, &a[k]) < 0) {
            for (int j = 0; j < k; j++)
                rpc_reply_free(&answers[j]);
            set_err(err, errlen, "out of memory");
            rc = RPC_MATCH_BAD_JSON;
        }
    rpc_answers_clear(a, n);
    free(a);
    jdoc_free(&d);
    return rc;
}
