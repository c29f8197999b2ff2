/*
 * gateway_upstream.h: the gateway's runtime state per provider and the
 * upstream calls with their retries (gateway_upstream.c), what a client
 * body becomes (gateway_request.c), and the metrics over that state
 * (gateway_metrics.c).
 *
 * Threads: every client connection has its own thread (gateway_main.c), and
 * that thread runs gw_forward() from start to end, blocking.  What threads
 * share lives in gw_provider_rt under its mutex (the token bucket, URL
 * health, the pool of HTTP clients) or in counters updated atomically.
 *
 * Connection reuse: a provider has max_concurrency slots, each an
 * http_client (one libcurl handle with its own connection cache) created on
 * first use and kept for the life of the process.  A request holds one slot
 * for the duration of one upstream attempt, so the number of slots is the
 * provider's concurrency limit and idle connections to its hosts stay warm
 * whatever the client threads do.
 */
#ifndef TRACE_GATEWAY_UPSTREAM_H
#define TRACE_GATEWAY_UPSTREAM_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "gateway.h"
#include "http_client.h"
#include "http_server.h"
#include "jsonrpc.h"

#define GW_LAT_NBUCKETS 14
extern const double gw_latency_bounds[GW_LAT_NBUCKETS];   /* seconds; +Inf implied */

/* Counters of one provider; updated with __atomic builtins, no lock. */
typedef struct gw_provider_metrics {
    uint64_t *requests;         /* [(nmethods + 1) * GW_OUT_NOUTCOMES]; last row = other */
    uint64_t *url_calls;        /* [nurls] upstream HTTP calls */
    uint64_t *url_errors;       /* [nurls * GW_FAIL_NCLASSES] */
    uint64_t latency[GW_LAT_NBUCKETS + 1];  /* per bucket (not cumulative); last = +Inf */
    uint64_t latency_count;
    uint64_t latency_sum_us;
    uint64_t sent_bytes;        /* request bodies sent upstream */
    uint64_t received_bytes;    /* response bodies received from upstream */
    uint64_t retries;
    uint64_t failovers;         /* a retry on another URL than the last attempt's */
    uint64_t range_splits;      /* eth_getLogs sub-requests sent */
    uint64_t queue_rejects;     /* no token or slot within queue_timeout */
} gw_provider_metrics;

typedef struct gw_provider_rt {
    const gw_provider_config *cfg;
    gw_url         *urls;
    int             nurls;
    const char    **headers;    /* cfg->headers + "Expect:", NULL-terminated */

    pthread_mutex_t mu;         /* guards everything below but metrics */
    pthread_cond_t  slot_cv;    /* a slot came free (CLOCK_MONOTONIC) */
    gw_bucket       bucket;
    http_client   **free_clients;   /* idle slots with a client */
    int             nfree;
    int             nslots_made;    /* clients created so far (<= max_concurrency) */
    int             inflight;       /* slots held */

    gw_provider_metrics m;
} gw_provider_rt;

typedef struct gw_runtime {
    gw_config      *cfg;
    int             nproviders;
    gw_provider_rt *providers;
    int             stopping;   /* set on SIGTERM: stop waiting, fail fast (atomic) */

    http_server_counters http;  /* the client side: statuses, bytes, in flight */
} gw_runtime;

/* One client request's progress through gw_upstream_call (and the range
 * splits of gateway_request.c): its budget and why it last failed. */
typedef struct gw_fwd {
    gw_runtime     *rt;
    gw_provider_rt *p;
    int64_t         deadline;
    int             splits_left;
    int             next_sub_id;
    int             last_class;     /* of the last failed attempt; -1 = none */
    int             no_capacity;    /* our own limits refused a wait */
    int             attempts;       /* upstream calls made */
    char            cause[600];     /* why the last attempt failed */
} gw_fwd;

/*
 * Forwards reqs[0..n-1] (request objects; ids[k] and methods[k] theirs)
 * until each has an answer that is not a rate-limit error: answers[k] gets
 * it (owned by the caller).  as_batch: send an array (else n == 1).  When verbatim is
 * not NULL and one upstream body answered everything in order, that body is
 * handed over in *verbatim.  0 = all answered; -1 = the budget ran out
 * (f->cause says why; answers filled so far stay for the caller to free).
 */
int gw_upstream_call(gw_fwd *f, json_t **reqs, json_t **ids, const char **methods, int n,
                     int as_batch, rpc_reply *answers, char **verbatim, size_t *vlen);

/* Whether a failure class is a rate-limit signal (429, JSON-RPC limit). */
int gw_class_is_limit(int cls);

/* Builds the runtime for cfg (which it borrows).  0 or -1 with err. */
int gw_runtime_init(gw_runtime *rt, gw_config *cfg, char *err, size_t errlen);
void gw_runtime_free(gw_runtime *rt);

/* Wakes every waiter (shutdown). */
void gw_runtime_stop(gw_runtime *rt);

/* The answer to a client. */
typedef struct gw_reply {
    int     status;             /* HTTP status */
    char   *body;               /* malloc'd JSON */
    size_t  len;
} gw_reply;

/* Answers the client body for provider p: always fills out (status and a
 * JSON body; NULL body only when out of memory). */
void gw_forward(gw_runtime *rt, gw_provider_rt *p, const char *body, size_t len,
                gw_reply *out);

/* A reply with a JSON-RPC error (id null) and the given status. */
void gw_reply_error(gw_reply *out, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* routes.c: the HTTP server's handlers (routes, bodies, 413s) for rt. */
void gw_routes(gw_runtime *rt, http_handlers *h);

/* The Prometheus text of every metric (malloc'd, *len set; NULL on OOM). */
char *gw_metrics_render(gw_runtime *rt, size_t *len);

static inline void
gw_add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

static inline uint64_t
gw_get(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static inline int
gw_stopping(const gw_runtime *rt)
{
    return __atomic_load_n(&rt->stopping, __ATOMIC_ACQUIRE);
}

#endif
