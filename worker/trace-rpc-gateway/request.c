/*
 * request.c: what one client body becomes.
 *
 * The body is parsed and validated (rpc.c); invalid requests are answered
 * -32600 and methods outside the provider's allow-list -32601, locally; the
 * rest go upstream together (gw_upstream_call: a batch stays a batch).  An
 * eth_getLogs answered "range too large" is split in halves (up to
 * getlogs_max_splits sub-requests), the halves forwarded like any request,
 * and their results concatenated in block order under the client's id.
 * The answer is the upstream's body as it came when one body answered
 * everything in order, else rebuilt in request order.  When the budget
 * (retries, request_timeout) runs out the client gets 502, 503 (no
 * capacity / rate limited) or 504 (timeouts) with a JSON-RPC error, never
 * a partial answer.
 */
#define _GNU_SOURCE
#include "upstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* The bytes inside a JSON array's brackets, trimmed; -1 when t is not an
 * array. */
static int
array_inner(const char *t, size_t n, const char **in, size_t *inlen)
{
    size_t a = json_scan_ws(t, n, 0), b = n;

    while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\n' || t[b - 1] == '\r' || t[b - 1] == '\t'))
        b--;
    if (b - a < 2 || t[a] != '[' || t[b - 1] != ']')
        return -1;
    a = json_scan_ws(t, b - 1, a + 1);
    *in = t + a;
    *inlen = b - 1 - a;
    return 0;
}

/*
 * The answer to an eth_getLogs whose range [from, to] was too large: the
 * two halves forwarded (and split again while they are too large and the
 * split budget lasts), their results concatenated in block order, under
 * the client's id.  A half answered with another error, or one that cannot
 * be split further, gives its error as the answer.  0 with *out filled, or
 * -1 when forwarding failed (f->cause says why).
 */
static int
getlogs_split(gw_fwd *f, json_t *client_id, const json_t *params, uint64_t from, uint64_t to,
              rpc_reply *out)
{
    uint64_t mid = from + (to - from) / 2;
    uint64_t half[2][2] = {{from, mid}, {mid + 1, to}};
    rpc_reply part[2] = {{0}, {0}};
    const char *in[2];
    size_t inlen[2], mlen;
    char *merged = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    for (int h = 0; h < 2; h++) {
        const char *method = "eth_getLogs";
        json_t *sub_params = rpc_getlogs_with_range(params, half[h][0], half[h][1]);
        json_t *sub_id = json_integer(++f->next_sub_id);
        json_t *req = sub_params && sub_id ? rpc_make_request(sub_id, method, sub_params) : NULL;
        rpc_reply ans = {0};
        int got = -1;

        f->splits_left--;
        gw_add(&f->p->m.range_splits, 1);
        if (req != NULL)
            got = gw_upstream_call(f, &req, &sub_id, &method, 1, 0, &ans, NULL, NULL);
        else
            copy_str(f->cause, sizeof f->cause, "out of memory");
        if (got == 0) {
            int kind = rpc_classify_answer(method, sub_params, &ans);

            if (kind == RPC_ANSWER_RANGE && half[h][0] < half[h][1] && f->splits_left >= 2)
                got = getlogs_split(f, client_id, sub_params, half[h][0], half[h][1], &part[h]);
            else if (kind == RPC_ANSWER_RESULT) {
                part[h] = ans;
                memset(&ans, 0, sizeof ans);
            } else {
                /* An error: it becomes the answer, under the client's id. */
                char *etext = json_dumps(ans.error, JSON_COMPACT);

                got = etext ? rpc_build_reply(&part[h], client_id, "error", etext, strlen(etext)) : -1;
                free(etext);
            }
        }
        rpc_reply_free(&ans);
        json_decref(req);
        json_decref(sub_id);
        json_decref(sub_params);
        if (got < 0)
            goto done;
        if (part[h].error != NULL) {
            *out = part[h];
            memset(&part[h], 0, sizeof part[h]);
            rc = 0;
            goto done;
        }
        if (array_inner(part[h].text + part[h].result_off, part[h].result_len, &in[h], &inlen[h]) < 0) {
            f->last_class = GW_FAIL_INVALID_JSON;
            copy_str(f->cause, sizeof f->cause, "an eth_getLogs result is not an array");
            goto done;
        }
    }
    /* "[" first "," second "]", leaving out an empty half. */
    merged = malloc(inlen[0] + inlen[1] + 4);
    if (merged == NULL)
        goto done;
    mlen = 0;
    merged[mlen++] = '[';
    memcpy(merged + mlen, in[0], inlen[0]);
    mlen += inlen[0];
    if (inlen[0] > 0 && inlen[1] > 0)
        merged[mlen++] = ',';
    memcpy(merged + mlen, in[1], inlen[1]);
    mlen += inlen[1];
    merged[mlen++] = ']';
    rc = rpc_build_reply(out, client_id, "result", merged, mlen);
done:
    free(merged);
    rpc_reply_free(&part[0]);
    rpc_reply_free(&part[1]);
    return rc;
}

void
gw_reply_error(gw_reply *out, int status, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    out->status = status;
    out->body = rpc_error_body(NULL, code, msg, &out->len);
}

/* The status and outcome of a request whose budget ran out. */
static int
failure_status(const gw_fwd *f, int *outcome)
{
    if (f->no_capacity || gw_class_is_limit(f->last_class)) {
        *outcome = GW_OUT_RATE_LIMITED;
        return 503;
    }
    if (f->last_class == GW_FAIL_TIMEOUT) {
        *outcome = GW_OUT_TIMEOUT;
        return 504;
    }
    *outcome = GW_OUT_FAILED;
    return 502;
}

static void
count_request(gw_provider_rt *p, int method_idx, int outcome)
{
    int row = method_idx >= 0 ? method_idx : p->cfg->nmethods;

    gw_add(&p->m.requests[row * GW_OUT_NOUTCOMES + outcome], 1);
}

/* One client body on its way: its requests, those that go upstream, and
 * their answers. */
typedef struct fwd_body {
    rpc_request  req;
    json_t     **reqs, **ids;       /* of the m requests that go upstream */
    const char **methods;
    int         *which;             /* their index in req.items */
    rpc_reply   *answers;
    int          m;
    char        *verbatim;          /* one upstream body answering all, in order */
    size_t       vlen;
} fwd_body;

/* Answers invalid requests and methods outside the allow-list locally;
 * lists the rest for upstream.  0 or -1 (out of memory). */
static int
local_answers(gw_provider_rt *p, fwd_body *b)
{
    int n = b->req.n;

    b->reqs = calloc((size_t) n, sizeof(json_t *));
    b->ids = calloc((size_t) n, sizeof(json_t *));
    b->answers = calloc((size_t) n, sizeof(rpc_reply));
    b->methods = calloc((size_t) n, sizeof(char *));
    b->which = calloc((size_t) n, sizeof(int));
    if (b->reqs == NULL || b->ids == NULL || b->answers == NULL || b->methods == NULL ||
        b->which == NULL)
        return -1;
    for (int i = 0; i < n; i++) {
        rpc_item *it = &b->req.items[i];
        char msg[RPC_MAX_METHOD_LEN + 64];

        it->method_idx = -1;
        if (it->done) {
            it->outcome = GW_OUT_INVALID;
            continue;
        }
        it->method_idx = gw_method_allowed(p->cfg, it->method);
        if (it->method_idx < 0) {
            snprintf(msg, sizeof msg, "method %s is not allowed by the gateway", it->method);
            if (rpc_error_reply(&it->resp, it->id, RPC_METHOD_NOT_FOUND, msg) < 0)
                return -1;
            it->outcome = GW_OUT_NOT_ALLOWED;
            it->done = 1;
            continue;
        }
        if ((b->reqs[b->m] = rpc_make_request(it->id, it->method, it->params)) == NULL)
            return -1;
        b->ids[b->m] = it->id;
        b->methods[b->m] = it->method;
        b->which[b->m++] = i;
    }
    return 0;
}

/* eth_getLogs answered "range too large": split, while the budget lasts.
 * 0, or -1 when forwarding failed. */
static int
split_ranges(gw_fwd *f, fwd_body *b)
{
    for (int k = 0; k < b->m; k++) {
        rpc_item *it = &b->req.items[b->which[k]];
        uint64_t from, to;
        rpc_reply merged;

        if (rpc_classify_answer(it->method, it->params, &b->answers[k]) != RPC_ANSWER_RANGE ||
            rpc_getlogs_range(it->params, &from, &to) < 0 || from >= to || f->splits_left < 2)
            continue;
        free(b->verbatim);
        b->verbatim = NULL;
        if (getlogs_split(f, it->id, it->params, from, to, &merged) < 0)
            return -1;
        rpc_reply_free(&b->answers[k]);
        b->answers[k] = merged;
    }
    return 0;
}

/* The budget ran out: 502, 503 or 504 with a JSON-RPC error naming why,
 * every request counted with that outcome. */
static void
reply_failure(gw_runtime *rt, gw_provider_rt *p, const gw_fwd *f, fwd_body *b, gw_reply *out)
{
    int outcome, status = failure_status(f, &outcome);
    char cause[sizeof f->cause], msg[sizeof cause + GW_NAME_MAX + 16];

    copy_str(cause, sizeof cause, f->cause[0] ? f->cause : "upstream failed");
    gw_redact(rt->cfg, cause, sizeof cause);
    for (int k = 0; k < b->m; k++)
        count_request(p, b->req.items[b->which[k]].method_idx, outcome);
    for (int i = 0; i < b->req.n; i++)
        if (b->req.items[i].done)
            count_request(p, b->req.items[i].method_idx, b->req.items[i].outcome);
    log_msg(LOG_WARN, "provider=%s: %s request failed after %d upstream attempts (HTTP %d): %s",
            p->cfg->name, b->req.is_batch ? "batch" : b->req.items[0].method, f->attempts, status,
            cause);
    snprintf(msg, sizeof msg, "gateway: %s: %s", p->cfg->name, cause);
    out->status = status;
    out->body = rpc_error_body(b->req.is_batch ? NULL : b->req.items[0].id, RPC_INTERNAL_ERROR,
                               msg, &out->len);
}

/* Every request answered: 200 with the upstream body as it came when one
 * answered everything in order, else rebuilt in request order. */
static void
reply_success(gw_provider_rt *p, fwd_body *b, gw_reply *out)
{
    for (int k = 0; k < b->m; k++) {
        rpc_item *it = &b->req.items[b->which[k]];

        it->resp = b->answers[k];
        memset(&b->answers[k], 0, sizeof b->answers[k]);
        it->outcome = it->resp.error != NULL ? GW_OUT_RPC_ERROR : GW_OUT_OK;
        it->done = 1;
    }
    for (int i = 0; i < b->req.n; i++)
        count_request(p, b->req.items[i].method_idx, b->req.items[i].outcome);
    out->status = 200;
    if (b->verbatim != NULL) {
        out->body = b->verbatim;
        out->len = b->vlen;
        b->verbatim = NULL;
    } else
        out->body = rpc_dump_response(&b->req, &out->len);
}

static void
fwd_body_free(fwd_body *b)
{
    for (int k = 0; k < b->m; k++) {
        json_decref(b->reqs[k]);
        rpc_reply_free(&b->answers[k]);
    }
    free(b->verbatim);
    free(b->reqs);
    free(b->ids);
    free(b->answers);
    free(b->methods);
    free(b->which);
    rpc_request_free(&b->req);
}

void
gw_forward(gw_runtime *rt, gw_provider_rt *p, const char *body, size_t len, gw_reply *out)
{
    const gw_provider_config *pc = p->cfg;
    gw_fwd f = {.rt = rt, .p = p, .last_class = -1};
    fwd_body b;
    char err[512];
    int code, rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&b, 0, sizeof b);
    if (rpc_parse_request(body, len, rt->cfg->max_batch, &b.req, &code, err, sizeof err) < 0) {
        count_request(p, -1, GW_OUT_INVALID);
        gw_reply_error(out, 400, code, "gateway: %s: %s", pc->name, err);
        return;
    }
    f.deadline = now_ms() + pc->request_timeout_ms;
    f.splits_left = pc->getlogs_max_splits;
    if (local_answers(p, &b) < 0) {
        gw_reply_error(out, 500, RPC_INTERNAL_ERROR, "gateway: %s: out of memory", pc->name);
        fwd_body_free(&b);
        return;
    }
    if (b.m > 0)
        rc = gw_upstream_call(&f, b.reqs, b.ids, b.methods, b.m, b.req.is_batch, b.answers,
                              b.m == b.req.n ? &b.verbatim : NULL, &b.vlen);
    if (rc == 0)
        rc = split_ranges(&f, &b);
    if (rc < 0)
        reply_failure(rt, p, &f, &b, out);
    else
        reply_success(p, &b, out);
    fwd_body_free(&b);
}
