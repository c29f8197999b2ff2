/*
 * rpc_match.c: matching an upstream body to the requests it answers.
 *
 * The body is checked in full by the scanner (rpc_scan.c) without building
 * a tree; the members of each response object are located as byte spans,
 * and only what must be understood is parsed: each id (to compare with the
 * ids sent) and each error object (to tell a rate limit or a range hint
 * from an answer).  A response that repeats one of its members (also when
 * spelled with escapes) is refused: clients' parsers differ on which one
 * they keep.  When the body is not valid JSON that is what is reported,
 * even if a wrong id came first, so that garbage is always called garbage.
 * Error texts give byte offsets, never the body's bytes.
 */
#define _GNU_SOURCE
#include "jsonrpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define JSON_LOAD_FLAGS (JSON_REJECT_DUPLICATES)

/* Where the members of one response object are, as offsets into the body. */
typedef struct resp_spans {
    size_t start, end;
    size_t jsonrpc_off, jsonrpc_len;
    size_t id_off, id_len;
    size_t result_off, result_len;
    size_t error_off, error_len;
} resp_spans;

/* Scans the response object at *pos (checking all of it) and notes its
 * members; -1 with *why when it is not valid JSON or repeats a member
 * (*syntax = 1 for the former). */
static int
scan_response(const char *s, size_t n, size_t *pos, resp_spans *r, int *syntax, const char **why)
{
    size_t p = json_scan_ws(s, n, *pos);

    memset(r, 0, sizeof(*r));
    *syntax = 1;
    if (p >= n || s[p] != '{') {
        *why = "a response is not an object";
        *syntax = p >= n;
        *pos = p;
        return -1;
    }
    r->start = p;
    p = json_scan_ws(s, n, p + 1);
    if (p < n && s[p] == '}')
        p++;
    else
        for (;;) {
            char key[8];
            size_t klen, vstart, *off = NULL, *len = NULL;

            p = json_scan_ws(s, n, p);
            if (p >= n || s[p] != '"') {
                *why = "an object key was expected";
                goto fail;
            }
            if (json_scan_string(s, n, &p, key, sizeof key, &klen, why) < 0)
                goto fail;
            if (klen == 7 && memcmp(key, "jsonrpc", 7) == 0) {
                off = &r->jsonrpc_off;
                len = &r->jsonrpc_len;
            } else if (klen == 2 && memcmp(key, "id", 2) == 0) {
                off = &r->id_off;
                len = &r->id_len;
            } else if (klen == 6 && memcmp(key, "result", 6) == 0) {
                off = &r->result_off;
                len = &r->result_len;
            } else if (klen == 5 && memcmp(key, "error", 5) == 0) {
                off = &r->error_off;
                len = &r->error_len;
            }
            p = json_scan_ws(s, n, p);
            if (p >= n || s[p] != ':') {
                *why = "':' was expected";
                goto fail;
            }
            vstart = p = json_scan_ws(s, n, p + 1);
            if (json_scan_value(s, n, &p, why) < 0)
                goto fail;
            if (off != NULL) {
                if (*len != 0) {
                    /* Clients' parsers differ on which of two they keep. */
                    *why = "a response repeats a member";
                    *syntax = 0;
                    *pos = p;
                    return -1;
                }
                *off = vstart;
                *len = p - vstart;
            }
            p = json_scan_ws(s, n, p);
            if (p < n && s[p] == ',') {
                p++;
                continue;
            }
            if (p < n && s[p] == '}') {
                p++;
                break;
            }
            *why = "',' or '}' was expected";
            goto fail;
        }
    r->end = p;
    *pos = p;
    return 0;
fail:
    *pos = p;
    return -1;
}

/* Checks the members of a scanned response; its id parsed into *id (new
 * ref) and its error object into *error (new ref, or NULL for a result).
 * -1 with *why when it is not a JSON-RPC 2.0 response. */
static int
check_response(const char *s, const resp_spans *r, json_t **id, json_t **error, const char **why)
{
    *id = NULL;
    *error = NULL;
    if (r->jsonrpc_len != 5 || memcmp(s + r->jsonrpc_off, "\"2.0\"", 5) != 0) {
        *why = "\"jsonrpc\" is not \"2.0\"";
        return -1;
    }
    if (r->id_len == 0) {
        *why = "a response has no \"id\"";
        return -1;
    }
    if ((r->result_len == 0) == (r->error_len == 0)) {
        *why = "a response must have exactly one of \"result\" and \"error\"";
        return -1;
    }
    *id = json_loadb(s + r->id_off, r->id_len, JSON_DECODE_ANY, NULL);
    if (*id == NULL) {
        *why = "a response id is out of range";
        return -1;
    }
    if (r->error_len > 0) {
        *error = json_loadb(s + r->error_off, r->error_len, JSON_LOAD_FLAGS, NULL);
        if (!json_is_object(*error) || !json_is_integer(json_object_get(*error, "code")) ||
            !json_is_string(json_object_get(*error, "message"))) {
            json_decref(*error);
            json_decref(*id);
            *error = *id = NULL;
            *why = "\"error\" is not an object with an integer code and a string message";
            return -1;
        }
    }
    return 0;
}

/* Copies a checked response into a reply (taking error). */
static int
make_reply(rpc_reply *out, const char *s, const resp_spans *r, json_t *error)
{
    out->text = malloc(r->end - r->start + 1);
    if (out->text == NULL) {
        json_decref(error);
        return -1;
    }
    memcpy(out->text, s + r->start, r->end - r->start);
    out->text[r->end - r->start] = '\0';
    out->len = r->end - r->start;
    out->result_off = r->result_len ? r->result_off - r->start : 0;
    out->result_len = r->result_len;
    out->error = error;
    return 0;
}

int
rpc_match_response(const char *body, size_t len, json_t *const *ids, int n, int as_batch,
                   rpc_reply *answers, int *in_order, char *err, size_t errlen)
{
    const char *why = NULL;
    size_t p = json_scan_ws(body, len, 0);
    resp_spans *spans = NULL;
    json_t **errors = NULL;
    int *slot = NULL;
    int rc = RPC_MATCH_BAD_JSON, syntax, count = 0, idfail = 0;
    char idwhy[160] = "";

    *in_order = 1;
    if (p >= len) {
        set_err(err, errlen, "the response is empty");
        return RPC_MATCH_BAD_JSON;
    }
    if (body[p] == '{') {
        resp_spans r;
        json_t *id = NULL, *error = NULL;

        if (scan_response(body, len, &p, &r, &syntax, &why) < 0) {
            set_err(err, errlen, "%s: %s at byte %zu",
                    syntax ? "response is not valid JSON" : "invalid JSON-RPC response", why, p);
            return RPC_MATCH_BAD_JSON;
        }
        if (json_scan_ws(body, len, p) != len) {
            set_err(err, errlen, "response is not valid JSON: text after the JSON value at byte %zu",
                    json_scan_ws(body, len, p));
            return RPC_MATCH_BAD_JSON;
        }
        if (check_response(body, &r, &id, &error, &why) < 0) {
            set_err(err, errlen, "invalid JSON-RPC response: %s", why);
            return RPC_MATCH_BAD_JSON;
        }
        /* One object for a batch, or a null id: the whole call was refused. */
        if (as_batch || json_is_null(id)) {
            if (error != NULL && rpc_error_is_limit(error)) {
                set_err(err, errlen, "rate limited (JSON-RPC error %lld)",
                        (long long) json_integer_value(json_object_get(error, "code")));
                rc = RPC_MATCH_LIMITED;
                goto single_done;
            }
            if (as_batch || n != 1 || !json_is_null(ids[0])) {
                set_err(err, errlen, as_batch ? "a batch was answered with a single object"
                                              : "the response id is null");
                rc = RPC_MATCH_BAD_IDS;
                goto single_done;
            }
        }
        if (!json_equal(id, ids[0])) {
            set_err(err, errlen, "the response id does not match the request id");
            rc = RPC_MATCH_BAD_IDS;
            goto single_done;
        }
        rc = make_reply(&answers[0], body, &r, error) < 0 ? RPC_MATCH_BAD_JSON : RPC_MATCH_OK;
        error = NULL;
        if (rc != RPC_MATCH_OK)
            set_err(err, errlen, "out of memory");
single_done:
        json_decref(id);
        json_decref(error);
        return rc;
    }
    if (body[p] != '[') {
        set_err(err, errlen, "response is not valid JSON-RPC: '[' or '{' expected at byte %zu", p);
        return RPC_MATCH_BAD_JSON;
    }
    if (!as_batch) {
        /* Scan it all first: bad JSON is reported as such. */
        size_t ep;

        if (json_scan_document(body, len, &ep, &why) < 0)
            set_err(err, errlen, "response is not valid JSON: %s at byte %zu", why, ep);
        else
            set_err(err, errlen, "invalid JSON-RPC response: a single request was answered with an array");
        return RPC_MATCH_BAD_JSON;
    }
    spans = calloc((size_t) n, sizeof(resp_spans));
    errors = calloc((size_t) n, sizeof(json_t *));
    slot = malloc((size_t) n * sizeof(int));
    if (spans == NULL || errors == NULL || slot == NULL) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++)
        slot[k] = -1;
    p = json_scan_ws(body, len, p + 1);
    if (p < len && body[p] == ']')
        p++;
    else
        for (;;) {
            resp_spans r;
            json_t *id = NULL, *error = NULL;
            int i = count++, k;

            if (scan_response(body, len, &p, &r, &syntax, &why) < 0) {
                set_err(err, errlen, "%s: response %d of the batch: %s at byte %zu",
                        syntax ? "response is not valid JSON" : "invalid JSON-RPC response", i, why, p);
                goto done;
            }
            /* A wrong id is reported after the whole body proved valid
             * JSON, so that garbage is always called garbage. */
            if (!idfail) {
                if (check_response(body, &r, &id, &error, &why) < 0) {
                    set_err(err, errlen, "invalid JSON-RPC response %d of the batch: %s", i, why);
                    goto done;
                }
                if (i >= n) {
                    snprintf(idwhy, sizeof idwhy, "a batch of %d was answered with more responses", n);
                    idfail = 1;
                } else {
                    k = json_equal(id, ids[i]) ? i : -1;
                    if (k < 0) {
                        *in_order = 0;
                        for (k = 0; k < n && !json_equal(id, ids[k]); k++)
                            ;
                    }
                    if (k == n) {
                        snprintf(idwhy, sizeof idwhy,
                                 "response %d of the batch answers an id that was not asked", i);
                        idfail = 1;
                    } else if (slot[k] >= 0) {
                        snprintf(idwhy, sizeof idwhy, "the batch answers request %d twice", k);
                        idfail = 1;
                    } else {
                        slot[k] = i;
                        spans[k] = r;
                        errors[k] = error;
                        error = NULL;
                    }
                }
                json_decref(id);
                json_decref(error);
            }
            p = json_scan_ws(body, len, p);
            if (p < len && body[p] == ',') {
                p++;
                continue;
            }
            if (p < len && body[p] == ']') {
                p++;
                break;
            }
            set_err(err, errlen, "response is not valid JSON: ',' or ']' was expected at byte %zu", p);
            goto done;
        }
    if (json_scan_ws(body, len, p) != len) {
        set_err(err, errlen, "response is not valid JSON: text after the JSON value at byte %zu",
                json_scan_ws(body, len, p));
        goto done;
    }
    if (idfail) {
        set_err(err, errlen, "%s", idwhy);
        rc = RPC_MATCH_BAD_IDS;
        goto done;
    }
    if (count != n) {
        set_err(err, errlen, "a batch of %d was answered with %d responses", n, count);
        rc = RPC_MATCH_BAD_IDS;
        goto done;
    }
    /* n answers, none twice: every id answered. */
    for (int k = 0; k < n; k++) {
        if (make_reply(&answers[k], body, &spans[k], errors[k]) < 0) {
            errors[k] = NULL;
            for (int j = 0; j < k; j++)
                rpc_reply_free(&answers[j]);
            set_err(err, errlen, "out of memory");
            goto done;
        }
        errors[k] = NULL;
    }
    rc = RPC_MATCH_OK;
done:
    for (int k = 0; errors != NULL && k < n; k++)
        json_decref(errors[k]);
    free(errors);
    free(spans);
    free(slot);
    return rc;
}
