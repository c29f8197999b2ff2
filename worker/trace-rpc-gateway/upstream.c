/*
 * gateway_upstream.c: the runtime of each provider and the upstream calls
 * with their retries (gw_upstream_call); what a client body becomes is in
 * gateway_request.c.
 *
 * One call of gw_upstream_call forwards a set of requests (a batch stays a
 * batch) and retries what is not answered:
 *   - an attempt picks the healthiest URL that is up, preferring one this
 *     request has not tried (failover costs no backoff; a retry on a URL
 *     already tried waits the exponential backoff with jitter); when every
 *     URL is down it waits for the first to come back, at most
 *     queue_timeout;
 *   - it takes a token from the provider's bucket and a concurrency slot,
 *     waiting at most queue_timeout for either (503 beyond);
 *   - a URL not yet checked is first asked eth_chainId (verify_chain_id);
 *   - the response must be a valid JSON-RPC answer to exactly the ids sent
 *     (rpc_match_response), else the attempt failed and nothing of it is
 *     used;
 *   - 429, 503 and JSON-RPC rate-limit errors cut the provider's rate
 *     (AIMD) and Retry-After keeps that URL unused for as long;
 *   - answers that are rate-limit errors are retried; other JSON-RPC errors
 *     are answers and pass through.
 * Every failed attempt is logged with provider, host, method, class and
 * cause; never a URL (gw_log masks credentials besides).
 */
#define _GNU_SOURCE
#include "upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "evm.h"
#include "log.h"
#include "util.h"

static const char *const fail_names[GW_FAIL_NCLASSES] = {
    [GW_FAIL_TIMEOUT] = "timeout",
    [GW_FAIL_CONNECT] = "connect",
    [GW_FAIL_TOO_LARGE] = "too_large",
    [GW_FAIL_TRUNCATED] = "truncated",
    [GW_FAIL_TRANSPORT] = "transport",
    [GW_FAIL_REDIRECT] = "redirect",
    [GW_FAIL_HTTP_429] = "http_429",
    [GW_FAIL_HTTP_5XX] = "http_5xx",
    [GW_FAIL_HTTP_4XX] = "http_4xx",
    [GW_FAIL_INVALID_JSON] = "invalid_json",
    [GW_FAIL_ID_MISMATCH] = "id_mismatch",
    [GW_FAIL_RPC_LIMIT] = "rpc_limit",
    [GW_FAIL_WRONG_CHAIN] = "wrong_chain",
    [GW_FAIL_RPC_ERROR] = "rpc_error",
};

static const char *const outcome_names[GW_OUT_NOUTCOMES] = {
    [GW_OUT_OK] = "ok",
    [GW_OUT_RPC_ERROR] = "rpc_error",
    [GW_OUT_NOT_ALLOWED] = "not_allowed",
    [GW_OUT_INVALID] = "invalid",
    [GW_OUT_FAILED] = "failed",
    [GW_OUT_RATE_LIMITED] = "rate_limited",
    [GW_OUT_TIMEOUT] = "timeout",
};

const char *
gw_fail_class_name(int cls)
{
    return cls >= 0 && cls < GW_FAIL_NCLASSES ? fail_names[cls] : "unknown";
}

const char *
gw_outcome_name(int out)
{
    return out >= 0 && out < GW_OUT_NOUTCOMES ? outcome_names[out] : "unknown";
}

/* ---- runtime ---------------------------------------------------------- */

int
gw_runtime_init(gw_runtime *rt, gw_config *cfg, char *err, size_t errlen)
{
    pthread_condattr_t ca;

    memset(rt, 0, sizeof(*rt));
    rt->cfg = cfg;
    rt->nproviders = cfg->nproviders;
    rt->providers = calloc((size_t) cfg->nproviders, sizeof(gw_provider_rt));
    if (rt->providers == NULL)
        goto oom;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (int i = 0; i < cfg->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];
        const gw_provider_config *pc = cfg->providers[i];
        int nh = 0;

        p->cfg = pc;
        p->urls = cfg->urls[i];
        p->nurls = pc->nurls;
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->slot_cv, &ca);
        gw_bucket_init(&p->bucket, pc->rate_limit, pc->rate_min, pc->rate_increase,
                       pc->rate_decrease, now_ms());
        for (int k = 0; k < p->nurls; k++)
            gw_health_init(&p->urls[k].health, now_ms());
        p->headers = calloc((size_t) pc->nheaders + 2, sizeof(char *));
        p->free_clients = calloc((size_t) pc->max_concurrency, sizeof(http_client *));
        p->m.requests = calloc((size_t) (pc->nmethods + 1) * GW_OUT_NOUTCOMES, sizeof(uint64_t));
        p->m.url_calls = calloc((size_t) p->nurls, sizeof(uint64_t));
        p->m.url_errors = calloc((size_t) p->nurls * GW_FAIL_NCLASSES, sizeof(uint64_t));
        if (p->headers == NULL || p->free_clients == NULL || p->m.requests == NULL ||
            p->m.url_calls == NULL || p->m.url_errors == NULL) {
            pthread_condattr_destroy(&ca);
            goto oom;
        }
        for (int k = 0; k < pc->nheaders; k++)
            p->headers[nh++] = pc->headers[k];
        /* Large batches must not wait for a "100 Continue". */
        p->headers[nh++] = "Expect:";
        p->headers[nh] = NULL;
    }
    pthread_condattr_destroy(&ca);
    return 0;
oom:
    set_err(err, errlen, "out of memory");
    gw_runtime_free(rt);
    return -1;
}

void
gw_runtime_free(gw_runtime *rt)
{
    for (int i = 0; rt->providers != NULL && i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];

        if (p->cfg == NULL)
            continue;
        for (int k = 0; k < p->nfree; k++)
            http_client_free(p->free_clients[k]);
        free(p->free_clients);
        free(p->headers);
        free(p->m.requests);
        free(p->m.url_calls);
        free(p->m.url_errors);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->slot_cv);
    }
    free(rt->providers);
    rt->providers = NULL;
}

void
gw_runtime_stop(gw_runtime *rt)
{
    __atomic_store_n(&rt->stopping, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < rt->nproviders; i++) {
        pthread_mutex_lock(&rt->providers[i].mu);
        pthread_cond_broadcast(&rt->providers[i].slot_cv);
        pthread_mutex_unlock(&rt->providers[i].mu);
    }
}

static int
is_stopping(void *arg)
{
    return gw_stopping(arg);
}

/* ---- one client request ----------------------------------------------- */


/* "eth_getLogs" or "batch[3] eth_getBlockByNumber,eth_getBlockReceipts". */
static void
describe_methods(const char *const *methods, int n, int as_batch, char *buf, size_t size)
{
    size_t len = 0;
    int shown = 0;

    buf[0] = '\0';
    if (as_batch)
        len = (size_t) snprintf(buf, size, "batch[%d] ", n);
    for (int i = 0; i < n && shown < 3 && len + 1 < size; i++) {
        int seen = 0;

        for (int k = 0; k < i; k++)
            if (strcmp(methods[k], methods[i]) == 0)
                seen = 1;
        if (seen)
            continue;
        len += (size_t) snprintf(buf + len, size - len, "%s%s", shown ? "," : "", methods[i]);
        shown++;
    }
}

static int
class_of_transport(int failure)
{
    switch (failure) {
    case HTTP_FAIL_TIMEOUT:
        return GW_FAIL_TIMEOUT;
    case HTTP_FAIL_CONNECT:
        return GW_FAIL_CONNECT;
    case HTTP_FAIL_TOO_LARGE:
        return GW_FAIL_TOO_LARGE;
    case HTTP_FAIL_TRUNCATED:
        return GW_FAIL_TRUNCATED;
    default:
        return GW_FAIL_TRANSPORT;
    }
}

int
gw_class_is_limit(int cls)
{
    return cls == GW_FAIL_HTTP_429 || cls == GW_FAIL_RPC_LIMIT;
}

/* Takes a slot (and its client) of p, waiting until `until`.  NULL when
 * none came free in time or the gateway is stopping; *err says why. */
static http_client *
slot_take(gw_fwd *f, int64_t until, char *err, size_t errlen)
{
    gw_provider_rt *p = f->p;
    http_client *c = NULL;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct timespec ts;
        int64_t left;

        if (gw_stopping(f->rt))
            break;
        if (p->nfree > 0) {
            c = p->free_clients[--p->nfree];
            p->inflight++;
            break;
        }
        if (p->nslots_made < p->cfg->max_concurrency) {
            http_options opt = {
                .connect_timeout_ms = p->cfg->connect_timeout_ms,
                .total_timeout_ms = p->cfg->timeout_ms,
                .low_speed_bytes = p->cfg->low_speed_bytes,
                .low_speed_ms = p->cfg->low_speed_time_ms,
                .max_response_bytes = p->cfg->max_response_bytes,
            };

            p->nslots_made++;
            p->inflight++;
            pthread_mutex_unlock(&p->mu);
            c = http_client_new(&opt, err, errlen);
            if (c != NULL)
                return c;
            pthread_mutex_lock(&p->mu);
            p->nslots_made--;
            p->inflight--;
            break;
        }
        left = until - now_ms();
        if (left <= 0) {
            set_err(err, errlen, "all %d concurrency slots busy for %lld ms",
                    p->cfg->max_concurrency, (long long) (p->cfg->queue_timeout_ms));
            break;
        }
        timespec_after_ms(CLOCK_MONOTONIC, left, &ts);
        pthread_cond_timedwait(&p->slot_cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    if (c == NULL && gw_stopping(f->rt))
        set_err(err, errlen, "the gateway is shutting down");
    return c;
}

static void
slot_give(gw_provider_rt *p, http_client *c)
{
    pthread_mutex_lock(&p->mu);
    p->free_clients[p->nfree++] = c;
    p->inflight--;
    pthread_cond_signal(&p->slot_cv);
    pthread_mutex_unlock(&p->mu);
}

static void
record_latency(gw_provider_rt *p, int64_t ms)
{
    double s = (double) ms / 1000.0;
    int b;

    for (b = 0; b < GW_LAT_NBUCKETS; b++)
        if (s <= gw_latency_bounds[b])
            break;
    gw_add(&p->m.latency[b], 1);
    gw_add(&p->m.latency_count, 1);
    gw_add(&p->m.latency_sum_us, (uint64_t) ms * 1000);
}

/* Books a failed attempt on URL u: health, AIMD (when limited: a 429, a
 * 503 or a JSON-RPC rate-limit error), metrics and the log. */
static void
attempt_failed(gw_fwd *f, int u, int cls, int limited, int64_t retry_after_ms, const char *what,
               const char *cause)
{
    gw_provider_rt *p = f->p;
    int64_t now = now_ms(), down_ms = 0;
    int went_down, tripped, cut = 0;
    double rate;

    if (retry_after_ms > p->cfg->retry_after_max_ms)
        retry_after_ms = p->cfg->retry_after_max_ms;
    pthread_mutex_lock(&p->mu);
    went_down = gw_health_failure(&p->urls[u].health, now, p->cfg->failure_threshold,
                                  p->cfg->cooldown_ms, p->cfg->cooldown_max_ms, retry_after_ms);
    tripped = p->urls[u].health.consecutive >= p->cfg->failure_threshold;
    if (went_down)
        down_ms = p->urls[u].health.down_until_ms - now;
    /* A URL taken down by its failures is asked its chain id again when it
     * comes back (it may have been repointed); a Retry-After pause is not
     * a reason to. */
    if (went_down && tripped && p->urls[u].chain_state == 1)
        p->urls[u].chain_state = 0;
    if (limited)
        cut = gw_bucket_limited(&p->bucket, now);
    rate = p->bucket.rate;
    pthread_mutex_unlock(&p->mu);

    gw_add(&p->m.url_errors[u * GW_FAIL_NCLASSES + cls], 1);
    f->last_class = cls;
    snprintf(f->cause, sizeof f->cause, "%s: %s", p->urls[u].host, cause);
    if (went_down)
        log_msg(LOG_WARN, "upstream error: provider=%s host=%s method=%s class=%s attempt=%d: %s (URL not used for %lld ms)",
               p->cfg->name, p->urls[u].host, what, gw_fail_class_name(cls), f->attempts, cause,
               (long long) down_ms);
    else
        log_msg(LOG_WARN, "upstream error: provider=%s host=%s method=%s class=%s attempt=%d: %s",
               p->cfg->name, p->urls[u].host, what, gw_fail_class_name(cls), f->attempts, cause);
    if (cut)
        log_msg(LOG_INFO, "provider=%s rate cut to %.2f req/s after %s", p->cfg->name, rate,
               gw_fail_class_name(cls));
}

/* Sleeps ms (bounded by the deadline and shutdown).  -1 when the deadline
 * or shutdown came first. */
static int
wait_for(gw_fwd *f, int64_t ms)
{
    int64_t left = f->deadline - now_ms();

    if (ms <= 0)
        return 0;
    if (ms >= left) {
        return -1;
    }
    sleep_ms_interruptible(ms, is_stopping, f->rt);
    return gw_stopping(f->rt) ? -1 : 0;
}

/* Checks URL u's chain id through client c.  0 = verified, -1 = the
 * attempt failed (booked). */
static int
verify_chain(gw_fwd *f, http_client *c, int u)
{
    gw_provider_rt *p = f->p;
    static const char body[] = "{\"jsonrpc\":\"2.0\",\"id\":\"trace-gateway-chain-id\",\"method\":\"eth_chainId\"}";
    json_t *id = json_string("trace-gateway-chain-id");
    rpc_reply ans = {0};
    json_t *result = NULL;
    http_response r = {0};
    char err[512], cause[600];
    int in_order, cls = -1;
    int64_t started = now_ms(), retry_after = -1;
    uint64_t chain = 0;
    int rc = -1;

    if (id == NULL)
        return -1;
    f->attempts++;
    gw_add(&p->m.url_calls[u], 1);
    gw_add(&p->m.sent_bytes, sizeof body - 1);
    if (http_post_json(c, p->urls[u].url, "upstream", body, sizeof body - 1, p->headers, &r,
                       err, sizeof err) < 0) {
        cls = class_of_transport(http_last_failure(c));
        snprintf(cause, sizeof cause, "eth_chainId check: %s", err);
        goto done;
    }
    gw_add(&p->m.received_bytes, r.len);
    record_latency(p, now_ms() - started);
    if (r.status != 200) {
        cls = r.status == 429 ? GW_FAIL_HTTP_429 : r.status >= 500 ? GW_FAIL_HTTP_5XX
              : r.status >= 300 && r.status < 400 ? GW_FAIL_REDIRECT : GW_FAIL_HTTP_4XX;
        retry_after = r.retry_after_ms;
        snprintf(cause, sizeof cause, "eth_chainId check: HTTP %ld", r.status);
        goto done;
    }
    switch (rpc_match_response(r.body, r.len, &id, 1, 0, &ans, &in_order, err, sizeof err)) {
    case RPC_MATCH_OK:
        break;
    case RPC_MATCH_LIMITED:
        cls = GW_FAIL_RPC_LIMIT;
        break;
    case RPC_MATCH_BAD_IDS:
        cls = GW_FAIL_ID_MISMATCH;
        break;
    default:
        cls = GW_FAIL_INVALID_JSON;
        break;
    }
    if (cls >= 0) {
        snprintf(cause, sizeof cause, "eth_chainId check: %s", err);
        goto done;
    }
    result = rpc_reply_result(&ans);
    if (hex_to_u64(json_string_value(result), &chain) < 0) {
        cls = ans.error != NULL && rpc_error_is_limit(ans.error) ? GW_FAIL_RPC_LIMIT
                                                                 : GW_FAIL_INVALID_JSON;
        snprintf(cause, sizeof cause, "eth_chainId check: no chain id in the answer");
        goto done;
    }
    pthread_mutex_lock(&p->mu);
    if (chain == (uint64_t) p->cfg->chain_id) {
        p->urls[u].chain_state = 1;
        gw_health_success(&p->urls[u].health, now_ms());
        rc = 0;
    } else
        p->urls[u].chain_state = -1;
    pthread_mutex_unlock(&p->mu);
    if (rc < 0) {
        cls = GW_FAIL_WRONG_CHAIN;
        gw_add(&p->m.url_errors[u * GW_FAIL_NCLASSES + cls], 1);
        f->last_class = cls;
        snprintf(f->cause, sizeof f->cause, "%s: serves chain %llu, not %lld", p->urls[u].host,
                 (unsigned long long) chain, (long long) p->cfg->chain_id);
        log_msg(LOG_ERROR, "provider=%s host=%s serves chain id %llu, configured %lld: URL disabled until restart",
               p->cfg->name, p->urls[u].host, (unsigned long long) chain,
               (long long) p->cfg->chain_id);
        cls = -1;
    } else
        log_msg(LOG_INFO, "provider=%s host=%s chain id %llu verified", p->cfg->name,
               p->urls[u].host, (unsigned long long) chain);
done:
    if (cls >= 0)
        attempt_failed(f, u, cls, gw_class_is_limit(cls) || r.status == 503, retry_after,
                       "eth_chainId", cause);
    http_response_free(&r);
    rpc_reply_free(&ans);
    json_decref(result);
    json_decref(id);
    return rc;
}

/* One gw_upstream_call across its attempts: what is still unanswered and
 * which URLs were tried. */
typedef struct upcall {
    gw_fwd      *f;
    json_t     **reqs, **ids;
    const char **methods;
    int          n, as_batch;
    rpc_reply   *answers;
    int         *pending;           /* indexes of the requests still unanswered */
    int          npending;
    json_t     **preq, **pids;      /* the pending ones, for this attempt */
    const char **pmeth;
    rpc_reply   *got;               /* this attempt's answers */
    int          tries, last_url;
    uint32_t     tried;             /* bit u: URL u was tried by this request */
    char         what[200];         /* the methods, for the log */
} upcall;

/* Whether the request's budget still allows an attempt (f->cause says why
 * not). */
static int
budget_left(upcall *c)
{
    gw_fwd *f = c->f;

    if (gw_stopping(f->rt)) {
        copy_str(f->cause, sizeof f->cause, "the gateway is shutting down");
        return 0;
    }
    if (c->tries > f->p->cfg->retries)
        return 0;
    if (now_ms() >= f->deadline) {
        f->last_class = GW_FAIL_TIMEOUT;
        snprintf(f->cause, sizeof f->cause, "request_timeout (%lld ms) reached",
                 (long long) f->p->cfg->request_timeout_ms);
        return 0;
    }
    return 1;
}

enum { PICK_OK, PICK_AGAIN, PICK_FAIL };

/* Which URL: the healthiest that is up, preferring one not yet tried; when
 * all are down, wait for the first to come back (at most queue_timeout).
 * *need_verify: the URL's chain id is still to be checked. */
static int
pick_url(upcall *c, int *u, int *need_verify)
{
    gw_fwd *f = c->f;
    gw_provider_rt *p = f->p;
    const gw_health *hs[GW_MAX_URLS];
    int disabled[GW_MAX_URLS];
    int64_t wait = 0;

    pthread_mutex_lock(&p->mu);
    for (int k = 0; k < p->nurls; k++) {
        hs[k] = &p->urls[k].health;
        disabled[k] = p->urls[k].chain_state < 0;
    }
    *u = gw_pick_url(hs, disabled, p->nurls, c->tried, now_ms(), &wait);
    *need_verify = *u >= 0 && p->cfg->verify_chain_id && p->urls[*u].chain_state == 0;
    pthread_mutex_unlock(&p->mu);
    if (*u >= 0)
        return PICK_OK;
    if (wait < 0) {
        copy_str(f->cause, sizeof f->cause, "no usable URL (every URL serves another chain)");
        return PICK_FAIL;
    }
    /* Wait for one to come back only as long as for capacity. */
    if (wait <= p->cfg->queue_timeout_ms && wait_for(f, wait) == 0)
        return PICK_AGAIN;
    if (f->attempts == 0)
        f->no_capacity = 1;     /* 503: nothing tried, nothing up */
    else if (f->last_class < 0)
        f->last_class = GW_FAIL_CONNECT;
    snprintf(f->cause + strlen(f->cause), sizeof f->cause - strlen(f->cause),
             "%severy URL is down for another %lld ms", f->cause[0] ? "; " : "", (long long) wait);
    return PICK_FAIL;
}

/* A retry on a URL already tried waits the backoff; failing over to
 * another does not.  0, or -1 when the wait would pass the deadline. */
static int
backoff_before(upcall *c, int u)
{
    gw_fwd *f = c->f;
    const gw_provider_config *pc = f->p->cfg;
    backoff_policy bp = {pc->backoff_base_ms, pc->backoff_max_ms, pc->jitter};

    if (c->tries == 0)
        return 0;
    gw_add(&f->p->m.retries, 1);
    if (u != c->last_url)
        gw_add(&f->p->m.failovers, 1);
    if (u >= 32 || !(c->tried & (1u << u)) ||
        wait_for(f, backoff_ms(&bp, c->tries, rand_unit())) == 0)
        return 0;
    if (!gw_stopping(f->rt) && f->last_class < 0)
        f->last_class = GW_FAIL_TIMEOUT;
    return -1;
}

/* A rate token for every pending call, then a concurrency slot, each
 * within queue_timeout: the slot's client, or NULL (503: f says why). */
static http_client *
reserve(upcall *c)
{
    gw_fwd *f = c->f;
    gw_provider_rt *p = f->p;
    int64_t until = now_ms() + p->cfg->queue_timeout_ms, wait, left;
    http_client *client;
    char err[512];
    double rate;

    if (until > f->deadline)
        until = f->deadline;
    pthread_mutex_lock(&p->mu);
    wait = gw_bucket_reserve(&p->bucket, now_ms(), c->npending, until - now_ms());
    rate = p->bucket.rate;
    pthread_mutex_unlock(&p->mu);
    if (wait < 0) {
        f->no_capacity = 1;
        gw_add(&p->m.queue_rejects, 1);
        snprintf(f->cause, sizeof f->cause, "rate limit: no capacity within %lld ms (%.2f req/s)",
                 (long long) (until - now_ms()), rate);
        return NULL;
    }
    if (wait > 0 && wait_for(f, wait) < 0)
        return NULL;
    if ((client = slot_take(f, until, err, sizeof err)) == NULL) {
        f->no_capacity = 1;
        gw_add(&p->m.queue_rejects, 1);
        copy_str(f->cause, sizeof f->cause, err);
        return NULL;
    }
    /* An attempt never runs past the request's budget. */
    left = f->deadline - now_ms();
    http_client_set_total_timeout(client, left < 1 ? 1 : left < p->cfg->timeout_ms
                                                          ? left : p->cfg->timeout_ms);
    return client;
}

/* What an HTTP answer r to the pending calls means: -1 when it answers
 * them (c->got filled, *in_order set), else the failure class with
 * cause. */
static int
classify(upcall *c, const http_response *r, int *in_order, char *cause, size_t n)
{
    char err[512];
    int m;

    if (r->status >= 300 && r->status < 400) {
        snprintf(cause, n, "HTTP %ld redirect (not followed)", r->status);
        return GW_FAIL_REDIRECT;
    }
    if (r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504) {
        if (r->retry_after_ms >= 0)
            snprintf(cause, n, "HTTP %ld (Retry-After %lld s)", r->status,
                     (long long) (r->retry_after_ms / 1000));
        else
            snprintf(cause, n, "HTTP %ld", r->status);
        return r->status == 429 ? GW_FAIL_HTTP_429 : GW_FAIL_HTTP_5XX;
    }
    if (r->status != 200 && r->status != 400 && r->status != 500) {
        snprintf(cause, n, "HTTP %ld", r->status);
        return r->status >= 500 ? GW_FAIL_HTTP_5XX : GW_FAIL_HTTP_4XX;
    }
    /* 200, or a 400/500 that carries JSON-RPC answers. */
    m = rpc_match_response(r->body, r->len, c->pids, c->npending, c->as_batch, c->got, in_order,
                           err, sizeof err);
    if (m == RPC_MATCH_OK)
        return -1;
    if (r->status != 200) {
        snprintf(cause, n, "HTTP %ld", r->status);
        return r->status >= 500 ? GW_FAIL_HTTP_5XX : GW_FAIL_HTTP_4XX;
    }
    copy_str(cause, n, err);
    return m == RPC_MATCH_LIMITED ? GW_FAIL_RPC_LIMIT
           : m == RPC_MATCH_BAD_IDS ? GW_FAIL_ID_MISMATCH : GW_FAIL_INVALID_JSON;
}

/* Sends the pending calls to URL u through client (which it gives back):
 * -1 with the response in *r when they were answered, else the failure
 * class with cause. */
static int
send_attempt(upcall *c, http_client *client, int u, http_response *r, int *in_order,
             char *cause, size_t n)
{
    gw_fwd *f = c->f;
    gw_provider_rt *p = f->p;
    char *body, err[512];
    size_t blen = 0;
    int64_t started;
    int cls = -1;

    for (int k = 0; k < c->npending; k++) {
        c->preq[k] = c->reqs[c->pending[k]];
        c->pids[k] = c->ids[c->pending[k]];
        c->pmeth[k] = c->methods[c->pending[k]];
    }
    describe_methods(c->pmeth, c->npending, c->as_batch, c->what, sizeof c->what);
    if ((body = rpc_dump_requests(c->preq, c->npending, c->as_batch, &blen)) == NULL) {
        slot_give(p, client);
        copy_str(f->cause, sizeof f->cause, "out of memory");
        return -2;
    }
    f->attempts++;
    gw_add(&p->m.url_calls[u], 1);
    gw_add(&p->m.sent_bytes, blen);
    started = now_ms();
    if (http_post_json(client, p->urls[u].url, "upstream", body, blen, p->headers, r, err,
                       sizeof err) < 0) {
        cls = class_of_transport(http_last_failure(client));
        copy_str(cause, n, err);
    }
    slot_give(p, client);
    free(body);
    if (cls >= 0)
        return cls;
    gw_add(&p->m.received_bytes, r->len);
    record_latency(p, now_ms() - started);
    return classify(c, r, in_order, cause, n);
}

/* Keeps the answers of this attempt but its rate-limit errors, which stay
 * pending; hands over the body as it came when it answered everything in
 * order.  How many were rate limited. */
static int
keep_answers(upcall *c, int u, http_response *r, int in_order, char **verbatim, size_t *vlen)
{
    gw_provider_rt *p = c->f->p;
    int still = 0, nlimited = 0;

    pthread_mutex_lock(&p->mu);
    gw_health_success(&p->urls[u].health, now_ms());
    pthread_mutex_unlock(&p->mu);
    for (int k = 0; k < c->npending; k++) {
        if (rpc_classify_answer(c->pmeth[k], json_object_get(c->preq[k], "params"), &c->got[k]) ==
            RPC_ANSWER_LIMIT) {
            rpc_reply_free(&c->got[k]);
            c->pending[still++] = c->pending[k];
            nlimited++;
        } else
            c->answers[c->pending[k]] = c->got[k];
        memset(&c->got[k], 0, sizeof c->got[k]);
    }
    /* One body answered everything, in order: it can go as it is. */
    if (nlimited == 0 && c->npending == c->n && in_order && verbatim != NULL && r->status == 200) {
        *verbatim = r->body;
        *vlen = r->len;
        r->body = NULL;
    }
    c->npending = still;
    return nlimited;
}

/* One attempt: pick, back off, reserve, send, classify, keep.  1 when the
 * call may go on (all answered shows in npending), 0 when it must stop. */
static int
attempt(upcall *c, char **verbatim, size_t *vlen)
{
    http_response r = {0};
    http_client *client;
    char cause[600];
    int u, need_verify, in_order = 1, cls, sent = c->npending, nlimited;

    switch (pick_url(c, &u, &need_verify)) {
    case PICK_AGAIN:
        return 1;
    case PICK_FAIL:
        return 0;
    }
    if (backoff_before(c, u) < 0 || (client = reserve(c)) == NULL)
        return 0;
    c->tried |= (u < 32) ? 1u << u : 0;
    c->last_url = u;
    c->tries++;
    if (need_verify && verify_chain(c->f, client, u) < 0) {
        slot_give(c->f->p, client);
        return 1;
    }
    cls = send_attempt(c, client, u, &r, &in_order, cause, sizeof cause);
    if (cls == -2)
        return 0;
    if (cls >= 0) {
        attempt_failed(c->f, u, cls, gw_class_is_limit(cls) || r.status == 503,
                       cls == GW_FAIL_HTTP_429 || cls == GW_FAIL_HTTP_5XX ? r.retry_after_ms : -1,
                       c->what, cause);
        http_response_free(&r);
        return 1;
    }
    nlimited = keep_answers(c, u, &r, in_order, verbatim, vlen);
    http_response_free(&r);
    if (nlimited > 0) {
        snprintf(cause, sizeof cause, "%d of %d answers are rate-limit errors", nlimited, sent);
        attempt_failed(c->f, u, GW_FAIL_RPC_LIMIT, 1, -1, c->what, cause);
        if (verbatim != NULL && *verbatim != NULL) {
            free(*verbatim);
            *verbatim = NULL;
        }
    }
    return 1;
}

/*
 * Forwards reqs[0..n-1] (request objects; ids[k] and methods[k] theirs)
 * until each has an answer that is not a rate-limit error: answers[k] gets
 * it (owned by the caller).  as_batch: send an array (else n == 1).  When
 * verbatim is not NULL and one upstream body answered everything in order,
 * that body is handed over in *verbatim.  0 = all answered; -1 = the
 * budget ran out (f->cause says why; answers filled so far stay for the
 * caller to free).
 */
int
gw_upstream_call(gw_fwd *f, json_t **reqs, json_t **ids, const char **methods, int n,
                 int as_batch, rpc_reply *answers, char **verbatim, size_t *vlen)
{
    upcall c = {.f = f, .reqs = reqs, .ids = ids, .methods = methods, .n = n,
                .as_batch = as_batch, .answers = answers, .npending = n, .last_url = -1};
    int rc = -1;

    c.pending = malloc((size_t) n * sizeof(int));
    c.preq = malloc((size_t) n * sizeof(json_t *));
    c.pids = malloc((size_t) n * sizeof(json_t *));
    c.pmeth = malloc((size_t) n * sizeof(char *));
    c.got = calloc((size_t) n, sizeof(rpc_reply));
    if (c.pending == NULL || c.preq == NULL || c.pids == NULL || c.pmeth == NULL || c.got == NULL)
        copy_str(f->cause, sizeof f->cause, "out of memory");
    else {
        for (int k = 0; k < n; k++)
            c.pending[k] = k;
        while (c.npending > 0 && budget_left(&c) && attempt(&c, verbatim, vlen))
            ;
        rc = c.npending == 0 ? 0 : -1;
    }
    if (rc < 0 && verbatim != NULL && *verbatim != NULL) {
        free(*verbatim);
        *verbatim = NULL;
    }
    free(c.pending);
    free(c.preq);
    free(c.pids);
    free(c.pmeth);
    free(c.got);
    return rc;
}
