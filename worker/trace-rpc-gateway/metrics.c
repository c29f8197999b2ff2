/*
 * gateway_metrics.c: GET /metrics, in the Prometheus text format 0.0.4.
 *
 * Counters are read atomically one by one (a scrape is not a snapshot:
 * each number is exact, their sum may be off by requests in flight);
 * gauges that live under a provider's mutex (rate, URL health) are read
 * under it.  Label values are provider names, method names from the
 * allow-list (anything else counts as "other", so clients cannot blow up
 * the cardinality) and URL hosts: never a path, a query or a credential.
 */
#define _GNU_SOURCE
#include "upstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const double gw_latency_bounds[GW_LAT_NBUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
};

typedef struct sbuf {
    char   *data;
    size_t  len, cap;
    int     oom;
} sbuf;

static void __attribute__((format(printf, 2, 3)))
put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->data != NULL && b->len + (size_t) n < b->cap) {
            b->len += (size_t) n;
            return;
        }
        {
            size_t cap = b->cap ? b->cap * 2 : 16384;
            char *nd;

            while (cap < b->len + (size_t) n + 1)
                cap *= 2;
            nd = realloc(b->data, cap);
            if (nd == NULL) {
                b->oom = 1;
                return;
            }
            b->data = nd;
            b->cap = cap;
        }
    }
}

static void
header(sbuf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *
gw_metrics_render(gw_runtime *rt, size_t *len)
{
    sbuf b = {0};

    header(&b, "trace_gateway_requests_total", "counter",
           "Client JSON-RPC requests (batch elements count one each) by provider, method and outcome.");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];

        for (int row = 0; row <= p->cfg->nmethods; row++)
            for (int o = 0; o < GW_OUT_NOUTCOMES; o++) {
                uint64_t v = gw_get(&p->m.requests[row * GW_OUT_NOUTCOMES + o]);

                if (v > 0)
                    put(&b, "trace_gateway_requests_total{provider=\"%s\",method=\"%s\",outcome=\"%s\"} %llu\n",
                        p->cfg->name, row < p->cfg->nmethods ? p->cfg->methods[row] : "other",
                        gw_outcome_name(o), (unsigned long long) v);
            }
    }

    header(&b, "trace_gateway_upstream_requests_total", "counter",
           "HTTP calls to upstream URLs (a batch is one call).");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];

        for (int u = 0; u < p->nurls; u++)
            put(&b, "trace_gateway_upstream_requests_total{provider=\"%s\",url=\"%d\",host=\"%s\"} %llu\n",
                p->cfg->name, u + 1, p->urls[u].host,
                (unsigned long long) gw_get(&p->m.url_calls[u]));
    }

    header(&b, "trace_gateway_upstream_errors_total", "counter",
           "Failed upstream calls by class (rpc_limit: JSON-RPC rate-limit errors; wrong_chain: eth_chainId mismatch).");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];

        for (int u = 0; u < p->nurls; u++)
            for (int c = 0; c < GW_FAIL_NCLASSES; c++) {
                if (c == GW_FAIL_RPC_ERROR)
                    continue;       /* passed through: counted as an outcome */
                put(&b, "trace_gateway_upstream_errors_total{provider=\"%s\",url=\"%d\",host=\"%s\",class=\"%s\"} %llu\n",
                    p->cfg->name, u + 1, p->urls[u].host, gw_fail_class_name(c),
                    (unsigned long long) gw_get(&p->m.url_errors[u * GW_FAIL_NCLASSES + c]));
            }
    }

    header(&b, "trace_gateway_upstream_latency_seconds", "histogram",
           "Latency of upstream calls that got a response.");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];
        uint64_t cum = 0;

        for (int k = 0; k <= GW_LAT_NBUCKETS; k++) {
            cum += gw_get(&p->m.latency[k]);
            if (k < GW_LAT_NBUCKETS)
                put(&b, "trace_gateway_upstream_latency_seconds_bucket{provider=\"%s\",le=\"%g\"} %llu\n",
                    p->cfg->name, gw_latency_bounds[k], (unsigned long long) cum);
            else
                put(&b, "trace_gateway_upstream_latency_seconds_bucket{provider=\"%s\",le=\"+Inf\"} %llu\n",
                    p->cfg->name, (unsigned long long) cum);
        }
        put(&b, "trace_gateway_upstream_latency_seconds_sum{provider=\"%s\"} %.6f\n", p->cfg->name,
            (double) gw_get(&p->m.latency_sum_us) / 1e6);
        put(&b, "trace_gateway_upstream_latency_seconds_count{provider=\"%s\"} %llu\n", p->cfg->name,
            (unsigned long long) gw_get(&p->m.latency_count));
    }

    {
        static const struct {
            const char *name, *help;
            size_t off;
        } counters[] = {
            {"trace_gateway_upstream_sent_bytes_total", "Request bytes sent upstream.",
             offsetof(gw_provider_metrics, sent_bytes)},
            {"trace_gateway_upstream_received_bytes_total", "Response bytes received from upstream.",
             offsetof(gw_provider_metrics, received_bytes)},
            {"trace_gateway_retries_total", "Upstream attempts after the first one of a request.",
             offsetof(gw_provider_metrics, retries)},
            {"trace_gateway_failovers_total", "Retries sent to another URL than the failed one.",
             offsetof(gw_provider_metrics, failovers)},
            {"trace_gateway_getlogs_splits_total", "eth_getLogs sub-requests made by range splitting.",
             offsetof(gw_provider_metrics, range_splits)},
            {"trace_gateway_queue_rejects_total",
             "Requests refused (503) because no rate token or concurrency slot came within queue_timeout.",
             offsetof(gw_provider_metrics, queue_rejects)},
        };

        for (size_t c = 0; c < ARRAY_LEN(counters); c++) {
            header(&b, counters[c].name, "counter", counters[c].help);
            for (int i = 0; i < rt->nproviders; i++) {
                gw_provider_rt *p = &rt->providers[i];
                const uint64_t *v = (const uint64_t *) ((const char *) &p->m + counters[c].off);

                put(&b, "%s{provider=\"%s\"} %llu\n", counters[c].name, p->cfg->name,
                    (unsigned long long) gw_get(v));
            }
        }
    }

    header(&b, "trace_gateway_rate_limit", "gauge",
           "Current allowed upstream requests/s (AIMD), at most the cap.");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];
        double rate;

        pthread_mutex_lock(&p->mu);
        gw_bucket_refill(&p->bucket, now_ms());
        rate = p->bucket.rate;
        pthread_mutex_unlock(&p->mu);
        put(&b, "trace_gateway_rate_limit{provider=\"%s\"} %.3f\n", p->cfg->name, rate);
    }
    header(&b, "trace_gateway_rate_limit_cap", "gauge", "Hard cap of upstream requests/s.");
    for (int i = 0; i < rt->nproviders; i++)
        put(&b, "trace_gateway_rate_limit_cap{provider=\"%s\"} %.3f\n",
            rt->providers[i].cfg->name, rt->providers[i].cfg->rate_limit);
    {
        uint64_t cuts[GW_MAX_PROVIDERS];
        int inflight[GW_MAX_PROVIDERS];

        for (int i = 0; i < rt->nproviders; i++) {
            pthread_mutex_lock(&rt->providers[i].mu);
            cuts[i] = rt->providers[i].bucket.cuts;
            inflight[i] = rt->providers[i].inflight;
            pthread_mutex_unlock(&rt->providers[i].mu);
        }
        header(&b, "trace_gateway_rate_cuts_total", "counter",
               "Multiplicative decreases of the rate (429, 503, JSON-RPC rate-limit errors).");
        for (int i = 0; i < rt->nproviders; i++)
            put(&b, "trace_gateway_rate_cuts_total{provider=\"%s\"} %llu\n",
                rt->providers[i].cfg->name, (unsigned long long) cuts[i]);
        header(&b, "trace_gateway_inflight", "gauge", "Upstream calls in flight (slots held).");
        for (int i = 0; i < rt->nproviders; i++)
            put(&b, "trace_gateway_inflight{provider=\"%s\"} %d\n", rt->providers[i].cfg->name,
                inflight[i]);
    }

    /* URL state: one pass under each provider's lock, three families. */
    {
        static const char *const names[3] = {
            "trace_gateway_url_health", "trace_gateway_url_up", "trace_gateway_url_chain_verified",
        };
        static const char *const helps[3] = {
            "Health score of each upstream URL (1 = healthy; healing toward 1 while unused).",
            "1 when the URL is in use, 0 while down (cooldown, Retry-After) or disabled.",
            "1 when eth_chainId matched, 0 not yet checked, -1 another chain (disabled).",
        };

        for (int fam = 0; fam < 3; fam++) {
            header(&b, names[fam], "gauge", helps[fam]);
            for (int i = 0; i < rt->nproviders; i++) {
                gw_provider_rt *p = &rt->providers[i];
                int64_t now = now_ms();

                pthread_mutex_lock(&p->mu);
                for (int u = 0; u < p->nurls; u++) {
                    const gw_url *url = &p->urls[u];

                    put(&b, "%s{provider=\"%s\",url=\"%d\",host=\"%s\"} ", names[fam],
                        p->cfg->name, u + 1, url->host);
                    if (fam == 0)
                        put(&b, "%.4f\n", gw_health_score(&url->health, now));
                    else if (fam == 1)
                        put(&b, "%d\n", !gw_health_is_down(&url->health, now) &&
                                            url->chain_state >= 0);
                    else
                        put(&b, "%d\n", url->chain_state);
                }
                pthread_mutex_unlock(&p->mu);
            }
        }
    }

    header(&b, "trace_gateway_http_responses_total", "counter",
           "Responses of the gateway to its clients by HTTP status.");
    for (int s = 0; s <= GW_NSTATUS; s++) {
        uint64_t v = gw_get(&rt->responses[s]);

        if (s < GW_NSTATUS)
            put(&b, "trace_gateway_http_responses_total{code=\"%d\"} %llu\n", gw_statuses[s],
                (unsigned long long) v);
        else
            put(&b, "trace_gateway_http_responses_total{code=\"other\"} %llu\n",
                (unsigned long long) v);
    }
    header(&b, "trace_gateway_client_received_bytes_total", "counter", "Request bytes received from clients.");
    put(&b, "trace_gateway_client_received_bytes_total %llu\n",
        (unsigned long long) gw_get(&rt->client_received_bytes));
    header(&b, "trace_gateway_client_sent_bytes_total", "counter", "Response bytes sent to clients.");
    put(&b, "trace_gateway_client_sent_bytes_total %llu\n",
        (unsigned long long) gw_get(&rt->client_sent_bytes));
    header(&b, "trace_gateway_active_requests", "gauge", "Client requests being answered.");
    put(&b, "trace_gateway_active_requests %llu\n",
        (unsigned long long) gw_get(&rt->active_requests));

    if (b.oom) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
