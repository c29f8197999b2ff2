/*
 * gateway_request.c: what one client body becomes.
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

void
gw_forward(gw_runtime *rt, gw_provider_rt *p, const char *body, size_t len, gw_reply *out)
{
    const gw_provider_config *pc = p->cfg;
    rpc_request req;
    gw_fwd f = {.rt = rt, .p = p, .last_class = -1};
    json_t **reqs = NULL, **ids = NULL;
    rpc_reply *answers = NULL;
    const char **methods = NULL;
    int *which = NULL;
    char *verbatim = NULL;
    size_t vlen = 0;
    char err[512];
    int code, m = 0, rc = 0;

    memset(out, 0, sizeof(*out));
    if (rpc_parse_request(body, len, rt->cfg->max_batch, &req, &code, err, sizeof err) < 0) {
        count_request(p, -1, GW_OUT_INVALID);
        gw_reply_error(out, 400, code, "gateway: %s: %s", pc->name, err);
        return;
    }
    f.deadline = now_ms() + pc->request_timeout_ms;
    f.splits_left = pc->getlogs_max_splits;

    reqs = calloc((size_t) req.n, sizeof(json_t *));
    ids = calloc((size_t) req.n, sizeof(json_t *));
    answers = calloc((size_t) req.n, sizeof(rpc_reply));
    methods = calloc((size_t) req.n, sizeof(char *));
    which = calloc((size_t) req.n, sizeof(int));
    if (reqs == NULL || ids == NULL || answers == NULL || methods == NULL || which == NULL)
        goto oom;

    /* Local answers first: invalid requests and methods not allowed. */
    for (int i = 0; i < req.n; i++) {
        rpc_item *it = &req.items[i];
        char msg[RPC_MAX_METHOD_LEN + 64];

        it->method_idx = -1;
        if (it->done) {
            it->outcome = GW_OUT_INVALID;
            continue;
        }
        it->method_idx = gw_method_allowed(pc, it->method);
        if (it->method_idx < 0) {
            snprintf(msg, sizeof msg, "method %s is not allowed by the gateway", it->method);
            if (rpc_error_reply(&it->resp, it->id, RPC_METHOD_NOT_FOUND, msg) < 0)
                goto oom;
            it->outcome = GW_OUT_NOT_ALLOWED;
            it->done = 1;
            continue;
        }
        reqs[m] = rpc_make_request(it->id, it->method, it->params);
        if (reqs[m] == NULL)
            goto oom;
        ids[m] = it->id;
        methods[m] = it->method;
        which[m++] = i;
    }

    if (m > 0)
        rc = gw_upstream_call(&f, reqs, ids, methods, m, req.is_batch, answers,
                         m == req.n ? &verbatim : NULL, &vlen);
    /* Too-large eth_getLogs ranges: split. */
    for (int k = 0; rc == 0 && k < m; k++) {
        rpc_item *it = &req.items[which[k]];
        uint64_t from, to;

        if (rpc_classify_answer(it->method, it->params, &answers[k]) == RPC_ANSWER_RANGE &&
            rpc_getlogs_range(it->params, &from, &to) == 0 && from < to &&
            f.splits_left >= 2) {
            rpc_reply merged;

            free(verbatim);
            verbatim = NULL;
            if (getlogs_split(&f, it->id, it->params, from, to, &merged) < 0)
                rc = -1;
            else {
                rpc_reply_free(&answers[k]);
                answers[k] = merged;
            }
        }
    }
    if (rc < 0) {
        int outcome, status = failure_status(&f, &outcome);
        char cause[sizeof f.cause];

        copy_str(cause, sizeof cause, f.cause[0] ? f.cause : "upstream failed");
        gw_redact(rt->cfg, cause, sizeof cause);
        for (int k = 0; k < m; k++)
            count_request(p, req.items[which[k]].method_idx, outcome);
        for (int i = 0; i < req.n; i++)
            if (req.items[i].done)
                count_request(p, req.items[i].method_idx, req.items[i].outcome);
        log_msg(LOG_WARN, "provider=%s: %s request failed after %d upstream attempts (HTTP %d): %s",
               pc->name, req.is_batch ? "batch" : req.items[0].method, f.attempts, status, cause);
        {
            char msg[sizeof cause + GW_NAME_MAX + 16];

            snprintf(msg, sizeof msg, "gateway: %s: %s", pc->name, cause);
            out->status = status;
            out->body = rpc_error_body(req.is_batch ? NULL : req.items[0].id, RPC_INTERNAL_ERROR,
                                       msg, &out->len);
        }
        goto cleanup;
    }
    for (int k = 0; k < m; k++) {
        rpc_item *it = &req.items[which[k]];

        it->resp = answers[k];
        memset(&answers[k], 0, sizeof answers[k]);
        it->outcome = it->resp.error != NULL ? GW_OUT_RPC_ERROR : GW_OUT_OK;
        it->done = 1;
    }
    for (int i = 0; i < req.n; i++)
        count_request(p, req.items[i].method_idx, req.items[i].outcome);
    out->status = 200;
    if (verbatim != NULL) {
        out->body = verbatim;
        out->len = vlen;
        verbatim = NULL;
    } else
        out->body = rpc_dump_response(&req, &out->len);
    goto cleanup;

oom:
    gw_reply_error(out, 500, RPC_INTERNAL_ERROR, "gateway: %s: out of memory", pc->name);
cleanup:
    for (int k = 0; k < m; k++) {
        json_decref(reqs[k]);
        rpc_reply_free(&answers[k]);
    }
    free(verbatim);
    free(reqs);
    free(ids);
    free(answers);
    free(methods);
    free(which);
    rpc_request_free(&req);
}
