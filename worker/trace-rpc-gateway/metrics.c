/*
 * metrics.c: the gateway's GET /metrics (Prometheus text, lib/metrics.h
 * has the conventions): one function per group of families.
 *
 * Counters are read atomically one by one; gauges that live under a
 * provider's mutex (rate, URL health) are read under it.  Label values are
 * provider names, method names from the allow-list (anything else counts
 * as "other", so clients cannot blow up the cardinality) and URL hosts:
 * never a path, a query or a credential.
 */
#define _GNU_SOURCE
#include "upstream.h"

#include "metrics.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

const double gw_latency_bounds[GW_LAT_NBUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
};

/* Client requests by provider, method and outcome. */
static void
render_requests(metrics_buf *b, gw_runtime *rt)
{
    metrics_family(b, "trace_gateway_requests_total", "counter",
                   "Client JSON-RPC requests (batch elements count one each) by provider, method and outcome.");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];

        for (int row = 0; row <= p->cfg->nmethods; row++)
            for (int o = 0; o < GW_OUT_NOUTCOMES; o++) {
                uint64_t v = gw_get(&p->m.requests[row * GW_OUT_NOUTCOMES + o]);

                if (v > 0)
                    metrics_put(b, "trace_gateway_requests_total{provider=\"%s\",method=\"%s\",outcome=\"%s\"} %llu\n",
                                p->cfg->name, row < p->cfg->nmethods ? p->cfg->methods[row] : "other",
                                gw_outcome_name(o), (unsigned long long) v);
            }
    }
}

/* Upstream calls and errors per URL. */
static void
render_upstream(metrics_buf *b, gw_runtime *rt)
{
    metrics_family(b, "trace_gateway_upstream_requests_total", "counter",
                   "HTTP calls to upstream URLs (a batch is one call).");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];

        for (int u = 0; u < p->nurls; u++)
            metrics_put(b, "trace_gateway_upstream_requests_total{provider=\"%s\",url=\"%d\",host=\"%s\"} %llu\n",
                        p->cfg->name, u + 1, p->urls[u].host,
                        (unsigned long long) gw_get(&p->m.url_calls[u]));
    }
    metrics_family(b, "trace_gateway_upstream_errors_total", "counter",
                   "Failed upstream calls by class (rpc_limit: JSON-RPC rate-limit errors; wrong_chain: eth_chainId mismatch).");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];

        for (int u = 0; u < p->nurls; u++)
            for (int c = 0; c < GW_FAIL_NCLASSES; c++) {
                if (c == GW_FAIL_RPC_ERROR)
                    continue;       /* passed through: counted as an outcome */
                metrics_put(b, "trace_gateway_upstream_errors_total{provider=\"%s\",url=\"%d\",host=\"%s\",class=\"%s\"} %llu\n",
                            p->cfg->name, u + 1, p->urls[u].host, gw_fail_class_name(c),
                            (unsigned long long) gw_get(&p->m.url_errors[u * GW_FAIL_NCLASSES + c]));
            }
    }
}

/* The latency histogram of upstream calls that got a response. */
static void
render_latency(metrics_buf *b, gw_runtime *rt)
{
    metrics_family(b, "trace_gateway_upstream_latency_seconds", "histogram",
                   "Latency of upstream calls that got a response.");
    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];
        uint64_t cum = 0;

        for (int k = 0; k < GW_LAT_NBUCKETS; k++) {
            cum += gw_get(&p->m.latency[k]);
            metrics_put(b, "trace_gateway_upstream_latency_seconds_bucket{provider=\"%s\",le=\"%g\"} %llu\n",
                        p->cfg->name, gw_latency_bounds[k], (unsigned long long) cum);
        }
        cum += gw_get(&p->m.latency[GW_LAT_NBUCKETS]);
        metrics_put(b, "trace_gateway_upstream_latency_seconds_bucket{provider=\"%s\",le=\"+Inf\"} %llu\n",
                    p->cfg->name, (unsigned long long) cum);
        metrics_put(b, "trace_gateway_upstream_latency_seconds_sum{provider=\"%s\"} %.6f\n",
                    p->cfg->name, (double) gw_get(&p->m.latency_sum_us) / 1e6);
        metrics_put(b, "trace_gateway_upstream_latency_seconds_count{provider=\"%s\"} %llu\n",
                    p->cfg->name, (unsigned long long) gw_get(&p->m.latency_count));
    }
}

/* The per-provider counters: one family each, from a table. */
static void
render_counters(metrics_buf *b, gw_runtime *rt)
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
        metrics_family(b, counters[c].name, "counter", counters[c].help);
        for (int i = 0; i < rt->nproviders; i++) {
            gw_provider_rt *p = &rt->providers[i];
            const uint64_t *v = (const uint64_t *) ((const char *) &p->m + counters[c].off);

            metrics_put(b, "%s{provider=\"%s\"} %llu\n", counters[c].name, p->cfg->name,
                        (unsigned long long) gw_get(v));
        }
    }
}

/* The rate control: current rate, cap, cuts, slots held. */
static void
render_rate(metrics_buf *b, gw_runtime *rt)
{
    double rate[GW_MAX_PROVIDERS];
    uint64_t cuts[GW_MAX_PROVIDERS];
    int inflight[GW_MAX_PROVIDERS];

    for (int i = 0; i < rt->nproviders; i++) {
        gw_provider_rt *p = &rt->providers[i];

        pthread_mutex_lock(&p->mu);
        gw_bucket_refill(&p->bucket, now_ms());
        rate[i] = p->bucket.rate;
        cuts[i] = p->bucket.cuts;
        inflight[i] = p->inflight;
        pthread_mutex_unlock(&p->mu);
    }
    metrics_family(b, "trace_gateway_rate_limit", "gauge",
                   "Current allowed upstream requests/s (AIMD), at most the cap.");
    for (int i = 0; i < rt->nproviders; i++)
        metrics_put(b, "trace_gateway_rate_limit{provider=\"%s\"} %.3f\n",
                    rt->providers[i].cfg->name, rate[i]);
    metrics_family(b, "trace_gateway_rate_limit_cap", "gauge", "Hard cap of upstream requests/s.");
    for (int i = 0; i < rt->nproviders; i++)
        metrics_put(b, "trace_gateway_rate_limit_cap{provider=\"%s\"} %.3f\n",
                    rt->providers[i].cfg->name, rt->providers[i].cfg->rate_limit);
    metrics_family(b, "trace_gateway_rate_cuts_total", "counter",
                   "Multiplicative decreases of the rate (429, 503, JSON-RPC rate-limit errors).");
    for (int i = 0; i < rt->nproviders; i++)
        metrics_put(b, "trace_gateway_rate_cuts_total{provider=\"%s\"} %llu\n",
                    rt->providers[i].cfg->name, (unsigned long long) cuts[i]);
    metrics_family(b, "trace_gateway_inflight", "gauge", "Upstream calls in flight (slots held).");
    for (int i = 0; i < rt->nproviders; i++)
        metrics_put(b, "trace_gateway_inflight{provider=\"%s\"} %d\n", rt->providers[i].cfg->name,
                    inflight[i]);
}

/* URL state: health score, up, chain verified; one pass per family under
 * each provider's lock. */
static void
render_urls(metrics_buf *b, gw_runtime *rt)
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
        metrics_family(b, names[fam], "gauge", helps[fam]);
        for (int i = 0; i < rt->nproviders; i++) {
            gw_provider_rt *p = &rt->providers[i];
            int64_t now = now_ms();

            pthread_mutex_lock(&p->mu);
            for (int u = 0; u < p->nurls; u++) {
                const gw_url *url = &p->urls[u];

                metrics_put(b, "%s{provider=\"%s\",url=\"%d\",host=\"%s\"} ", names[fam],
                            p->cfg->name, u + 1, url->host);
                if (fam == 0)
                    metrics_put(b, "%.4f\n", gw_health_score(&url->health, now));
                else if (fam == 1)
                    metrics_put(b, "%d\n", !gw_health_is_down(&url->health, now) &&
                                               url->chain_state >= 0);
                else
                    metrics_put(b, "%d\n", url->chain_state);
            }
            pthread_mutex_unlock(&p->mu);
        }
    }
}

char *
gw_metrics_render(gw_runtime *rt, size_t *len)
{
    metrics_buf b = {0};

    render_requests(&b, rt);
    render_upstream(&b, rt);
    render_latency(&b, rt);
    render_counters(&b, rt);
    render_rate(&b, rt);
    render_urls(&b, rt);
    metrics_http_server(&b, "trace_gateway", &rt->http);
    return metrics_finish(&b, len);
}
