/*
 * jsonrpc.c: JSON-RPC 2.0 requests as the gateway takes them from clients
 * and sends them upstream, error bodies, and what an answer means (see
 * jsonrpc.h for exactly what is accepted; responses: jsonrpc_response.c).
 *
 * Invariants: nothing from an upstream reaches a client unless it is valid
 * JSON (json_scan.c), a JSON-RPC 2.0 response whose members are not
 * repeated, and answers the forwarded ids exactly (each once, nothing
 * else).  Client requests are small and parsed with jansson (duplicate keys
 * refused); upstream responses are large and only scanned: their ids and
 * error objects are parsed, results stay bytes.  Error texts never quote a
 * body: an upstream's body may echo a credential-bearing URL.
 * Memory: functions returning json_t* or char* hand over a new reference or
 * a malloc'd string; on failure nothing is left allocated.
 */
#define _GNU_SOURCE
#include "jsonrpc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "evm.h"
#include "util.h"

#define JSON_LOAD_FLAGS (JSON_REJECT_DUPLICATES)

/* Releases what a reply holds (its text and error); the struct is the caller's. */
void
rpc_reply_free(rpc_reply *r)
{
    if (r == NULL)
        return;
    free(r->text);
    json_decref(r->error);
    memset(r, 0, sizeof(*r));
}

/* jansson's message without its " near '...'" part, which quotes input. */
static void
json_error_text(const json_error_t *je, char *buf, size_t n)
{
    const char *near = strstr(je->text, " near ");
    int len = near ? (int) (near - je->text) : (int) strlen(je->text);

    snprintf(buf, n, "%.*s at byte %d", len, je->text, je->position);
}

static int
valid_method(const char *m)
{
    size_t n = strlen(m);

    if (n == 0 || n > RPC_MAX_METHOD_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) m[i]) && m[i] != '_')
            return 0;
    return 1;
}

static int
valid_id(const json_t *id)
{
    if (json_is_integer(id))
        return 1;
    return json_is_string(id) && json_string_length(id) <= RPC_MAX_ID_LEN;
}

/* Fills item from one request object; -1 with why when it is invalid. */
static int
parse_item(json_t *o, rpc_item *item, const char **why)
{
    json_t *v, *id, *method, *params;

    if (!json_is_object(o)) {
        *why = "a request must be an object";
        return -1;
    }
    id = json_object_get(o, "id");
    v = json_object_get(o, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
        *why = "\"jsonrpc\" must be \"2.0\"";
        return -1;
    }
    method = json_object_get(o, "method");
    if (!json_is_string(method) || !valid_method(json_string_value(method))) {
        *why = "\"method\" must be a method name";
        return -1;
    }
    params = json_object_get(o, "params");
    if (params != NULL && !json_is_array(params) && !json_is_object(params)) {
        *why = "\"params\" must be an array or an object";
        return -1;
    }
    if (id == NULL) {
        *why = "notifications (requests without an id) are not supported by the gateway";
        return -1;
    }
    if (!valid_id(id)) {
        *why = "\"id\" must be a string or an integer";
        return -1;
    }
    item->id = id;
    item->method = json_string_value(method);
    item->params = params;
    return 0;
}

/* The id of an invalid request when it is a usable one, for its answer. */
static json_t *
usable_id(json_t *o)
{
    json_t *id = json_is_object(o) ? json_object_get(o, "id") : NULL;

    return id != NULL && valid_id(id) ? id : NULL;
}

int
rpc_parse_request(const char *body, size_t len, int max_batch, rpc_request *req,
                  int *code, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root;
    const char *why = NULL;
    char jt[200];

    memset(req, 0, sizeof(*req));
    *code = 0;
    root = json_loadb(body, len, JSON_LOAD_FLAGS, &je);
    if (root == NULL) {
        json_error_text(&je, jt, sizeof jt);
        set_err(err, errlen, "request is not valid JSON: %s", jt);
        *code = RPC_PARSE_ERROR;
        return -1;
    }
    req->root = root;
    if (json_is_object(root)) {
        req->n = 1;
        req->items = calloc(1, sizeof(rpc_item));
        if (req->items == NULL)
            goto oom;
        if (parse_item(root, &req->items[0], &why) < 0) {
            set_err(err, errlen, "invalid request: %s", why);
            goto invalid;
        }
        return 0;
    }
    if (!json_is_array(root)) {
        set_err(err, errlen, "invalid request: the body must be an object or an array");
        goto invalid;
    }
    req->is_batch = 1;
    req->n = (int) json_array_size(root);
    if (req->n == 0) {
        set_err(err, errlen, "invalid request: empty batch");
        goto invalid;
    }
    if (json_array_size(root) > (size_t) max_batch) {
        set_err(err, errlen, "invalid request: batch of %zu requests (at most %d)",
                json_array_size(root), max_batch);
        goto invalid;
    }
    req->items = calloc((size_t) req->n, sizeof(rpc_item));
    if (req->items == NULL)
        goto oom;
    for (int i = 0; i < req->n; i++) {
        json_t *o = json_array_get(root, (size_t) i);
        rpc_item *it = &req->items[i];

        if (parse_item(o, it, &why) < 0) {
            it->id = NULL;
            it->method = NULL;
            it->params = NULL;
            if (rpc_error_reply(&it->resp, usable_id(o), RPC_INVALID_REQUEST, why) < 0)
                goto oom;
            it->done = 1;
            continue;
        }
        /* Ids must tell the answers apart. */
        for (int k = 0; k < i; k++)
            if (req->items[k].id != NULL && json_equal(req->items[k].id, it->id)) {
                set_err(err, errlen, "invalid request: id repeated in the batch (requests %d and %d)",
                        k, i);
                goto invalid;
            }
    }
    return 0;

oom:
    set_err(err, errlen, "out of memory");
invalid:
    *code = RPC_INVALID_REQUEST;
    rpc_request_free(req);
    return -1;
}

void
rpc_request_free(rpc_request *req)
{
    if (req == NULL)
        return;
    for (int i = 0; req->items != NULL && i < req->n; i++)
        rpc_reply_free(&req->items[i].resp);
    free(req->items);
    json_decref(req->root);
    memset(req, 0, sizeof(*req));
}

json_t *
rpc_make_request(json_t *id, const char *method, json_t *params)
{
    json_t *o = json_object();

    if (o == NULL)
        return NULL;
    if (json_object_set_new(o, "jsonrpc", json_string("2.0")) < 0 ||
        json_object_set(o, "id", id) < 0 ||
        json_object_set_new(o, "method", json_string(method)) < 0 ||
        (params != NULL && json_object_set(o, "params", params) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *
rpc_dump_requests(json_t *const *reqs, int n, int as_batch, size_t *len)
{
    json_t *arr;
    char *s;

    if (!as_batch) {
        s = json_dumps(reqs[0], JSON_COMPACT);
    } else {
        arr = json_array();
        if (arr == NULL)
            return NULL;
        for (int i = 0; i < n; i++)
            if (json_array_append(arr, reqs[i]) < 0) {
                json_decref(arr);
                return NULL;
            }
        s = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
    }
    if (s != NULL)
        *len = strlen(s);
    return s;
}

/* Case-insensitive substring search. */
static int
contains_ci(const char *hay, const char *needle)
{
    return hay != NULL && strcasestr(hay, needle) != NULL;
}

int
rpc_error_is_limit(const json_t *error)
{
    static const char *const hints[] = {
        "rate limit", "rate-limit", "too many requests", "request limit", "compute units",
    };
    json_int_t code = json_integer_value(json_object_get(error, "code"));
    const char *msg = json_string_value(json_object_get(error, "message"));

    if (rpc_error_is_range_hint(error))
        return 0;
    if (code == -32005 || code == 429 || code == -32090)
        return 1;
    for (size_t i = 0; i < ARRAY_LEN(hints); i++)
        if (contains_ci(msg, hints[i]))
            return 1;
    return 0;
}

int
rpc_error_is_range_hint(const json_t *error)
{
    static const char *const hints[] = {
        "query returned more than", "range too large", "block range", "range is too",
        "too many blocks", "response size exceed", "limited to a", "range exceeds",
        "max range", "maximum range", "too wide",
    };
    const char *msg = json_string_value(json_object_get(error, "message"));

    for (size_t i = 0; i < ARRAY_LEN(hints); i++)
        if (contains_ci(msg, hints[i]))
            return 1;
    return 0;
}

int
rpc_classify_answer(const char *method, const json_t *params, const rpc_reply *answer)
{
    const json_t *error = answer->error;
    uint64_t from, to;

    if (error == NULL)
        return RPC_ANSWER_RESULT;
    if (method != NULL && strcmp(method, "eth_getLogs") == 0 &&
        rpc_error_is_range_hint(error) && rpc_getlogs_range(params, &from, &to) == 0)
        return RPC_ANSWER_RANGE;
    if (rpc_error_is_limit(error))
        return RPC_ANSWER_LIMIT;
    return RPC_ANSWER_ERROR;
}

int
rpc_getlogs_range(const json_t *params, uint64_t *from, uint64_t *to)
{
    const json_t *filter;

    if (!json_is_array(params) || json_array_size(params) < 1)
        return -1;
    filter = json_array_get(params, 0);
    if (!json_is_object(filter) || json_object_get(filter, "blockHash") != NULL)
        return -1;
    if (hex_to_u64(json_string_value(json_object_get(filter, "fromBlock")), from) < 0 ||
        hex_to_u64(json_string_value(json_object_get(filter, "toBlock")), to) < 0)
        return -1;
    return *from <= *to ? 0 : -1;
}

json_t *
rpc_getlogs_with_range(const json_t *params, uint64_t from, uint64_t to)
{
    json_t *copy = json_deep_copy(params);
    json_t *filter;
    char buf[24];

    if (copy == NULL)
        return NULL;
    filter = json_array_get(copy, 0);
    snprintf(buf, sizeof buf, "0x%llx", (unsigned long long) from);
    if (json_object_set_new(filter, "fromBlock", json_string(buf)) < 0)
        goto fail;
    snprintf(buf, sizeof buf, "0x%llx", (unsigned long long) to);
    if (json_object_set_new(filter, "toBlock", json_string(buf)) < 0)
        goto fail;
    return copy;
fail:
    json_decref(copy);
    return NULL;
}

static json_t *
error_object(int code, const char *message)
{
    json_t *e = json_object();

    if (e == NULL || json_object_set_new(e, "code", json_integer(code)) < 0 ||
        json_object_set_new(e, "message", json_string(message)) < 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

int
rpc_build_reply(rpc_reply *r, json_t *id, const char *member, const char *value, size_t value_len)
{
    char *idtext = json_dumps(id != NULL ? id : json_null(), JSON_ENCODE_ANY | JSON_COMPACT);
    size_t idlen, mlen = strlen(member), n;
    char *t;

    memset(r, 0, sizeof(*r));
    if (idtext == NULL)
        return -1;
    idlen = strlen(idtext);
    /* {"jsonrpc":"2.0","id":<id>,"<member>":<value>} */
    n = 22 + idlen + 2 + mlen + 2 + value_len + 1;
    t = malloc(n + 1);
    if (t == NULL) {
        free(idtext);
        return -1;
    }
    r->len = (size_t) snprintf(t, n + 1, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"%s\":", idtext, member);
    memcpy(t + r->len, value, value_len);
    if (strcmp(member, "result") == 0) {
        r->result_off = r->len;
        r->result_len = value_len;
    }
    r->len += value_len;
    t[r->len++] = '}';
    t[r->len] = '\0';
    r->text = t;
    free(idtext);
    if (strcmp(member, "error") == 0) {
        r->error = json_loadb(value, value_len, JSON_DECODE_ANY, NULL);
        if (r->error == NULL) {
            rpc_reply_free(r);
            return -1;
        }
    }
    return 0;
}

int
rpc_error_reply(rpc_reply *r, json_t *id, int code, const char *message)
{
    json_t *e = error_object(code, message);
    char *etext = e ? json_dumps(e, JSON_COMPACT) : NULL;
    int rc = etext ? rpc_build_reply(r, id, "error", etext, strlen(etext)) : -1;

    free(etext);
    json_decref(e);
    return rc;
}

char *
rpc_error_body(json_t *id, int code, const char *message, size_t *len)
{
    rpc_reply r;

    if (rpc_error_reply(&r, id, code, message) < 0)
        return NULL;
    *len = r.len;
    json_decref(r.error);
    return r.text;
}

json_t *
rpc_reply_result(const rpc_reply *r)
{
    if (r->result_len == 0)
        return NULL;
    return json_loadb(r->text + r->result_off, r->result_len, JSON_DECODE_ANY, NULL);
}

char *
rpc_dump_response(const rpc_request *req, size_t *len)
{
    size_t total = 2, k = 0;
    char *s;

    for (int i = 0; i < req->n; i++) {
        if (req->items[i].resp.text == NULL)
            return NULL;
        total += req->items[i].resp.len + 1;
    }
    s = malloc(total + 1);
    if (s == NULL)
        return NULL;
    if (req->is_batch)
        s[k++] = '[';
    for (int i = 0; i < req->n; i++) {
        if (i > 0)
            s[k++] = ',';
        memcpy(s + k, req->items[i].resp.text, req->items[i].resp.len);
        k += req->items[i].resp.len;
    }
    if (req->is_batch)
        s[k++] = ']';
    s[k] = '\0';
    *len = k;
    return s;
}
