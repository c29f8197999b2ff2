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
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
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
    if (rpc_parse_quantity(json_string_value(result), &chain) < 0) {
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

/*
 * Forwards reqs[0..n-1] (request objects; ids[k] and methods[k] theirs)
 * until each has an answer that is not a rate-limit error: answers[k] gets
 * it (owned by the caller).  as_batch: send an array (else n == 1).  When verbatim is
 * not NULL and one upstream body answered everything in order, that body is
 * handed over in *verbatim.  0 = all answered; -1 = the budget ran out
 * (f->cause says why; answers filled so far stay for the caller to free).
 */
int
gw_upstream_call(gw_fwd *f, json_t **reqs, json_t **ids, const char **methods, int n,
                 int as_batch, rpc_reply *answers, char **verbatim, size_t *vlen)
{
    gw_provider_rt *p = f->p;
    const gw_provider_config *pc = p->cfg;
    int *pending = malloc((size_t) n * sizeof(int));
    json_t **preq = malloc((size_t) n * sizeof(json_t *));
    json_t **pids = malloc((size_t) n * sizeof(json_t *));
    const char **pmeth = malloc((size_t) n * sizeof(char *));
    rpc_reply *got = calloc((size_t) n, sizeof(rpc_reply));
    int npending = n, tries = 0, last_url = -1, rc = -1;
    uint32_t tried = 0;
    char what[200];

    if (pending == NULL || preq == NULL || pids == NULL || pmeth == NULL || got == NULL) {
        copy_str(f->cause, sizeof f->cause, "out of memory");
        goto done;
    }
    for (int k = 0; k < n; k++)
        pending[k] = k;

    while (npending > 0) {
        int64_t now = now_ms(), wait = 0, until;
        int u, in_order = 1, cls = -1, nlimited = 0, sent, need_verify;
        const gw_health *hs[GW_MAX_URLS];
        int disabled[GW_MAX_URLS];
        http_client *c;
        http_response r = {0};
        char *body = NULL;
        size_t blen = 0;
        char err[512], cause[600];
        int64_t started;

        if (gw_stopping(f->rt)) {
            copy_str(f->cause, sizeof f->cause, "the gateway is shutting down");
            goto done;
        }
        if (tries > pc->retries) {
            goto done;
        }
        if (now >= f->deadline) {
            f->last_class = GW_FAIL_TIMEOUT;
            snprintf(f->cause, sizeof f->cause, "request_timeout (%lld ms) reached",
                     (long long) pc->request_timeout_ms);
            goto done;
        }

        /* Which URL. */
        pthread_mutex_lock(&p->mu);
        for (int k = 0; k < p->nurls; k++) {
            hs[k] = &p->urls[k].health;
            disabled[k] = p->urls[k].chain_state < 0;
        }
        u = gw_pick_url(hs, disabled, p->nurls, tried, now, &wait);
        need_verify = u >= 0 && pc->verify_chain_id && p->urls[u].chain_state == 0;
        pthread_mutex_unlock(&p->mu);
        if (u < 0) {
            if (wait < 0) {
                copy_str(f->cause, sizeof f->cause, "no usable URL (every URL serves another chain)");
                goto done;
            }
            /* Wait for one to come back only as long as for capacity. */
            if (wait > pc->queue_timeout_ms || wait_for(f, wait) < 0) {
                if (f->attempts == 0)
                    f->no_capacity = 1;     /* 503: nothing tried, nothing up */
                else if (f->last_class < 0)
                    f->last_class = GW_FAIL_CONNECT;
                snprintf(f->cause + strlen(f->cause), sizeof f->cause - strlen(f->cause),
                         "%severy URL is down for another %lld ms", f->cause[0] ? "; " : "",
                         (long long) wait);
                goto done;
            }
            continue;
        }
        /* A retry on a URL already tried waits; failing over does not. */
        if (tries > 0) {
            gw_add(&p->m.retries, 1);
            if (u != last_url)
                gw_add(&p->m.failovers, 1);
            if (u < 32 && (tried & (1u << u))) {
                backoff_policy bp = {pc->backoff_base_ms, pc->backoff_max_ms, pc->jitter};
                int64_t b = backoff_ms(&bp, tries, rand_unit());

                if (wait_for(f, b) < 0) {
                    if (!gw_stopping(f->rt) && f->last_class < 0)
                        f->last_class = GW_FAIL_TIMEOUT;
                    goto done;
                }
            }
        }

        /* A token, then a slot, each within queue_timeout. */
        until = now_ms() + pc->queue_timeout_ms;
        if (until > f->deadline)
            until = f->deadline;
        {
            double rate;

            pthread_mutex_lock(&p->mu);
            wait = gw_bucket_reserve(&p->bucket, now_ms(), npending, until - now_ms());
            rate = p->bucket.rate;
            pthread_mutex_unlock(&p->mu);
            if (wait < 0) {
                f->no_capacity = 1;
                gw_add(&p->m.queue_rejects, 1);
                snprintf(f->cause, sizeof f->cause,
                         "rate limit: no capacity within %lld ms (%.2f req/s)",
                         (long long) (until - now_ms()), rate);
                goto done;
            }
        }
        if (wait > 0 && wait_for(f, wait) < 0)
            goto done;
        c = slot_take(f, until, err, sizeof err);
        if (c == NULL) {
            f->no_capacity = 1;
            gw_add(&p->m.queue_rejects, 1);
            copy_str(f->cause, sizeof f->cause, err);
            goto done;
        }
        {
            /* An attempt never runs past the request's budget. */
            int64_t left = f->deadline - now_ms();

            http_client_set_total_timeout(c, left < 1 ? 1 : left < pc->timeout_ms ? left
                                                                                 : pc->timeout_ms);
        }

        tried |= (u < 32) ? 1u << u : 0;
        last_url = u;
        tries++;
        if (need_verify && verify_chain(f, c, u) < 0) {
            slot_give(p, c);
            continue;
        }

        /* The call. */
        for (int k = 0; k < npending; k++) {
            preq[k] = reqs[pending[k]];
            pids[k] = ids[pending[k]];
            pmeth[k] = methods[pending[k]];
        }
        describe_methods(pmeth, npending, as_batch, what, sizeof what);
        body = rpc_dump_requests(preq, npending, as_batch, &blen);
        if (body == NULL) {
            slot_give(p, c);
            copy_str(f->cause, sizeof f->cause, "out of memory");
            goto done;
        }
        f->attempts++;
        gw_add(&p->m.url_calls[u], 1);
        gw_add(&p->m.sent_bytes, blen);
        started = now_ms();
        if (http_post_json(c, p->urls[u].url, "upstream", body, blen, p->headers, &r, err,
                           sizeof err) < 0) {
            cls = class_of_transport(http_last_failure(c));
            copy_str(cause, sizeof cause, err);
        }
        slot_give(p, c);
        free(body);
        if (cls < 0) {
            gw_add(&p->m.received_bytes, r.len);
            record_latency(p, now_ms() - started);
            if (r.status >= 300 && r.status < 400) {
                cls = GW_FAIL_REDIRECT;
                snprintf(cause, sizeof cause, "HTTP %ld redirect (not followed)", r.status);
            } else if (r.status == 429 || r.status == 502 || r.status == 503 || r.status == 504) {
                cls = r.status == 429 ? GW_FAIL_HTTP_429 : GW_FAIL_HTTP_5XX;
                if (r.retry_after_ms >= 0)
                    snprintf(cause, sizeof cause, "HTTP %ld (Retry-After %lld s)", r.status,
                             (long long) (r.retry_after_ms / 1000));
                else
                    snprintf(cause, sizeof cause, "HTTP %ld", r.status);
            } else if (r.status != 200 && r.status != 400 && r.status != 500) {
                cls = r.status >= 500 ? GW_FAIL_HTTP_5XX : GW_FAIL_HTTP_4XX;
                snprintf(cause, sizeof cause, "HTTP %ld", r.status);
            } else {
                /* 200, or a 400/500 that carries JSON-RPC answers. */
                int m = rpc_match_response(r.body, r.len, pids, npending, as_batch, got,
                                           &in_order, err, sizeof err);

                if (m != RPC_MATCH_OK) {
                    if (r.status != 200) {
                        cls = r.status >= 500 ? GW_FAIL_HTTP_5XX : GW_FAIL_HTTP_4XX;
                        snprintf(cause, sizeof cause, "HTTP %ld", r.status);
                    } else {
                        cls = m == RPC_MATCH_LIMITED ? GW_FAIL_RPC_LIMIT
                              : m == RPC_MATCH_BAD_IDS ? GW_FAIL_ID_MISMATCH
                                                       : GW_FAIL_INVALID_JSON;
                        copy_str(cause, sizeof cause, err);
                    }
                }
            }
        }
        if (cls >= 0) {
            attempt_failed(f, u, cls, gw_class_is_limit(cls) || r.status == 503,
                           cls == GW_FAIL_HTTP_429 || cls == GW_FAIL_HTTP_5XX ? r.retry_after_ms
                                                                          : -1,
                           what, cause);
            http_response_free(&r);
            continue;
        }

        /* Answers: keep all but rate-limit errors, which go round again. */
        pthread_mutex_lock(&p->mu);
        gw_health_success(&p->urls[u].health, now_ms());
        pthread_mutex_unlock(&p->mu);
        sent = npending;
        {
            int still = 0;

            for (int k = 0; k < npending; k++) {
                int kind = rpc_classify_answer(pmeth[k], json_object_get(preq[k], "params"),
                                               &got[k]);

                if (kind == RPC_ANSWER_LIMIT) {
                    rpc_reply_free(&got[k]);
                    pending[still++] = pending[k];
                    nlimited++;
                } else
                    answers[pending[k]] = got[k];
                memset(&got[k], 0, sizeof got[k]);
            }
            /* One body answered everything, in order: it can go as it is. */
            if (nlimited == 0 && npending == n && in_order && verbatim != NULL &&
                r.status == 200) {
                *verbatim = r.body;
                *vlen = r.len;
                r.body = NULL;
            }
            npending = still;
        }
        http_response_free(&r);
        if (nlimited > 0) {
            snprintf(cause, sizeof cause, "%d of %d answers are rate-limit errors", nlimited, sent);
            attempt_failed(f, u, GW_FAIL_RPC_LIMIT, 1, -1, what, cause);
            if (verbatim != NULL && *verbatim != NULL) {
                free(*verbatim);
                *verbatim = NULL;
            }
        }
    }
    rc = 0;
done:
    if (rc < 0 && verbatim != NULL && *verbatim != NULL) {
        free(*verbatim);
        *verbatim = NULL;
    }
    free(pending);
    free(preq);
    free(pids);
    free(pmeth);
    free(got);
    return rc;
}
