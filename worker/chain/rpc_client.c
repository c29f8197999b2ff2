/*
 * rpc_client.c: JSON-RPC over the gateway (see rpc_client.h).
 *
 * Invariants: ids of a request are 1..n in call order; a response is
 * accepted only by the one response matcher (jsonrpc_response.c, the one
 * the gateway uses too): a JSON array holding exactly one JSON-RPC 2.0
 * response per id, so a reply meant for another request or truncated
 * half-way never reaches the operators.  Bodies are capped by
 * http_client.c while they stream in; retries wait lib/backoff.c's delays.
 */
#define _GNU_SOURCE
#include "rpc_client.h"

#include "backoff.h"
#include "http_client.h"
#include "jsonrpc.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RPC_TRIES 4                 /* attempts of one request */
#define RETRY_AFTER_MAX_MS 10000    /* the longest Retry-After honoured */

/* Between attempts: 250 ms doubling to 5 s, +-20 % jitter. */
static const backoff_policy retry_backoff = {250, 5000, 0.2};
#define RPC_MAX_RESPONSE (128LL * 1024 * 1024)

struct rpc_client {
    http_client *http;
    char         socket_path[200];  /* "unix:/path" gateways */
    char         url[1200];
    char         label[160];        /* "rpc gateway (provider x)": never the URL */
    rpc_stats    stats;
};

static int
provider_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;

    if (n == 0 || n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(('a' <= p[i] && p[i] <= 'z') || ('A' <= p[i] && p[i] <= 'Z') ||
              ('0' <= p[i] && p[i] <= '9') || p[i] == '_' || p[i] == '-' || p[i] == '.'))
            return 0;
    return 1;
}

rpc_client *
rpc_client_new(const char *gateway, const char *provider, char *err, size_t errlen)
{
    http_options opt = {
        .connect_timeout_ms = 5000,
        .total_timeout_ms = 90000,      /* the gateway gives up on a request after 60 s */
        .low_speed_bytes = 1024,
        .low_speed_ms = 20000,
        .max_response_bytes = RPC_MAX_RESPONSE,
    };
    rpc_client *c;
    size_t glen;

    if (!provider_ok(provider)) {
        set_err(err, errlen, "the rpc provider name must be 1-100 characters of letters, "
                "digits, _ - .");
        return NULL;
    }
    glen = gateway ? strlen(gateway) : 0;
    while (glen > 0 && gateway[glen - 1] == '/')
        glen--;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (glen > 5 && strncmp(gateway, "unix:", 5) == 0 && gateway[5] == '/' &&
        glen - 5 < sizeof c->socket_path) {
        /* the gateway listening on a Unix socket: the host part is moot */
        memcpy(c->socket_path, gateway + 5, glen - 5);
        opt.unix_socket = c->socket_path;
        snprintf(c->url, sizeof c->url, "http://localhost/rpc/%s", provider);
    } else if (glen > 0 && glen <= 1000 &&
               (strncmp(gateway, "http://", 7) == 0 || strncmp(gateway, "https://", 8) == 0)) {
        snprintf(c->url, sizeof c->url, "%.*s/rpc/%s", (int) glen, gateway, provider);
    } else {
        set_err(err, errlen, "rpc_gateway must be an http:// or https:// URL, or unix:/path");
        free(c);
        return NULL;
    }
    snprintf(c->label, sizeof c->label, "rpc gateway (provider %s)", provider);
    c->http = http_client_new(&opt, err, errlen);
    if (c->http == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void
rpc_client_free(rpc_client *c)
{
    if (c == NULL)
        return;
    http_client_free(c->http);
    free(c);
}

const rpc_stats *
rpc_client_stats(const rpc_client *c)
{
    return &c->stats;
}

void
rpc_client_calls_clear(rpc_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_decref(calls[i].result);
        json_decref(calls[i].params);
        calls[i].result = calls[i].params = NULL;
        calls[i].has_error = 0;
        calls[i].code = 0;
        calls[i].message[0] = '\0';
    }
}

/* The request body: [{"jsonrpc":"2.0","id":i+1,"method":..,"params":..}, ...]. */
static char *
build_request(rpc_call *calls, size_t n, size_t *len)
{
    json_t *arr = json_array();
    char *body;

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *params = calls[i].params ? json_incref(calls[i].params) : json_array();
        json_t *o = json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id",
                              (json_int_t) (i + 1), "method", calls[i].method, "params", params);

        if (o == NULL || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    body = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (body)
        *len = strlen(body);
    return body;
}

/* The answers a of a matched reply into calls[0..n): each call gets
 * result_tok or its error. */
static void
take_answers(rpc_call *calls, size_t n, const rpc_answer *a)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *e = a[i].error;

        calls[i].result_tok = a[i].result;
        calls[i].has_error = e != NULL;
        calls[i].code = e ? json_integer_value(json_object_get(e, "code")) : 0;
        copy_str(calls[i].message, sizeof calls[i].message,
                 e ? json_string_value(json_object_get(e, "message")) : "");
    }
}

/* With as_json: each result becomes a jansson value owned by its call.
 * 0, or -1 with err (no result kept). */
static int
results_as_json(const jdoc *d, rpc_call *calls, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        json_error_t jerr;
        const char *raw;
        size_t rawlen;

        if (calls[i].result_tok < 0)
            continue;
        raw = jdoc_raw(d, calls[i].result_tok, &rawlen);
        calls[i].result = json_loadb(raw, rawlen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (calls[i].result == NULL) {
            set_err(err, errlen, "the result of call %zu cannot be read (%s)", i + 1, jerr.text);
            for (size_t j = 0; j < n; j++) {
                json_decref(calls[j].result);
                calls[j].result = NULL;
                calls[j].has_error = 0;
            }
            return -1;
        }
    }
    return 0;
}

/* Parses body into d with the one response matcher (jsonrpc_response.c):
 * a batch answering ids 1..n, each call getting its result or error; with
 * as_json, results also as jansson values.  0 or -1 with err filled
 * (nothing set). */
static int
parse_reply(const char *body, size_t len, rpc_call *calls, size_t n, jdoc *d, int as_json,
            char *err, size_t errlen)
{
    json_t **ids = calloc(n ? n : 1, sizeof *ids);
    rpc_answer *a = calloc(n ? n : 1, sizeof *a);
    int in_order, rc = -1;

    for (size_t i = 0; i < n; i++) {
        json_decref(calls[i].result);
        calls[i].result = NULL;
        calls[i].result_tok = -1;
        calls[i].has_error = 0;
    }
    if (ids == NULL || a == NULL) {
        set_err(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if ((ids[i] = json_integer((json_int_t) (i + 1))) == NULL) {
            set_err(err, errlen, "out of memory");
            goto done;
        }
    if (rpc_match(d, body, len, ids, (int) n, 1, a, &in_order, err, errlen) != RPC_MATCH_OK)
        goto done;
    take_answers(calls, n, a);
    rc = as_json ? results_as_json(d, calls, n, err, errlen) : 0;
done:
    if (a)
        rpc_answers_clear(a, (int) n);
    for (size_t i = 0; ids && i < n; i++)
        json_decref(ids[i]);
    free(ids);
    free(a);
    return rc;
}

int
rpc_client_parse_response(const char *body, size_t len, rpc_call *calls, size_t n, char *err,
                          size_t errlen)
{
    jdoc d;
    int rc;

    memset(&d, 0, sizeof d);
    rc = parse_reply(body, len, calls, n, &d, 1, err, errlen);
    jdoc_free(&d);
    return rc;
}

/* The first line of a JSON-RPC error in a gateway's error body, if any. */
static void
error_body_summary(const http_response *r, char *out, size_t n)
{
    json_t *doc = json_loadb(r->body, r->len < 65536 ? r->len : 0, 0, NULL);
    json_t *e = json_object_get(doc, "error");
    const char *m = json_string_value(json_object_get(e, "message"));

    if (m)
        snprintf(out, n, ": %s", m);
    else
        out[0] = '\0';
    json_decref(doc);
}

/* Sends calls, retrying; on success the reply is parsed into doc (its text
 * kept in *body) and matched (with jansson results when as_json).  The
 * return values of rpc_client_batch. */
static int
send_batch(rpc_client *c, rpc_call *calls, size_t n, int as_json, rpc_doc *out,
           int (*stop)(void *), void *arg, char *err, size_t errlen)
{
    size_t len = 0;
    char *body = build_request(calls, n, &len);
    int rc = -1;

    for (size_t i = 0; i < n; i++) {
        json_decref(calls[i].params);
        calls[i].params = NULL;
    }
    if (body == NULL) {
        set_err(err, errlen, "out of memory (building a JSON-RPC request)");
        return -1;
    }
    for (int attempt = 1; attempt <= RPC_TRIES; attempt++) {
        http_response r;
        char why[600] = "";
        int64_t wait;

        if (stop && stop(arg)) {
            rc = -3;
            set_err(err, errlen, "stopped");
            break;
        }
        c->stats.requests++;
        c->stats.calls += (int64_t) n;
        if (attempt > 1)
            c->stats.retries++;
        wait = -1;
        http_client_set_abort(c->http, stop, arg);      /* a stop ends a request in flight */
        if (http_post_json(c->http, c->url, c->label, body, len, NULL, &r, why,
                           sizeof why) == 0) {
            c->stats.bytes_in += (int64_t) r.len;
            if (r.status == 200) {
                char bad[400];

                if (parse_reply(r.body, r.len, calls, n, &out->doc, as_json, bad,
                                sizeof bad) == 0) {
                    out->body = r.body;     /* the tokens point into it */
                    out->len = r.len;
                    rc = 0;
                    break;
                }
                snprintf(why, sizeof why, "%s: a bad response (%s)", c->label, bad);
            } else {
                char detail[300];

                error_body_summary(&r, detail, sizeof detail);
                snprintf(why, sizeof why, "%s answered HTTP %ld%s", c->label, r.status, detail);
                if (r.status >= 400 && r.status < 500 && r.status != 408 && r.status != 429) {
                    set_err(err, errlen, "%s", why);
                    http_response_free(&r);
                    rc = -2;
                    break;
                }
                if (r.retry_after_ms >= 0)
                    wait = r.retry_after_ms;
            }
            http_response_free(&r);
        }
        set_err(err, errlen, "%s", why);
        if (stop && stop(arg)) {
            rc = -3;
            break;
        }
        if (attempt == RPC_TRIES)
            break;
        log_msg(LOG_DEBUG, "%s (attempt %d of %d, retrying)", why, attempt, RPC_TRIES);
        if (wait >= 0) {        /* Retry-After, capped, with the same jitter */
            backoff_policy ra = {wait < RETRY_AFTER_MAX_MS ? wait : RETRY_AFTER_MAX_MS,
                                 RETRY_AFTER_MAX_MS, retry_backoff.jitter};

            wait = backoff_ms(&ra, 1, rand_unit());
        } else
            wait = backoff_ms(&retry_backoff, attempt, rand_unit());
        sleep_ms_interruptible(wait, stop, arg);
    }
    free(body);
    return rc;
}

int
rpc_client_batch(rpc_client *c, rpc_call *calls, size_t n, int (*stop)(void *), void *arg,
                 char *err, size_t errlen)
{
    rpc_doc reply;
    int rc;

    memset(&reply, 0, sizeof reply);
    rc = send_batch(c, calls, n, 1, &reply, stop, arg, err, errlen);
    rpc_doc_free(&reply);
    for (size_t i = 0; i < n; i++)
        calls[i].result_tok = -1;
    return rc;
}

int
rpc_client_batch_doc(rpc_client *c, rpc_call *calls, size_t n, rpc_doc *reply,
                     int (*stop)(void *), void *arg, char *err, size_t errlen)
{
    rpc_doc_release_text(reply);
    return send_batch(c, calls, n, 0, reply, stop, arg, err, errlen);
}

void
rpc_doc_release_text(rpc_doc *reply)
{
    free(reply->body);
    reply->body = NULL;
    reply->len = 0;
    reply->doc.ntok = 0;
}

void
rpc_doc_free(rpc_doc *reply)
{
    free(reply->body);
    reply->body = NULL;
    reply->len = 0;
    jdoc_free(&reply->doc);
}
