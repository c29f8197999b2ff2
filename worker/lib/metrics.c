/*
 * metrics.c: the Prometheus text builder (see metrics.h).
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t
load(const uint64_t *counter)
{
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

/* Grows b to hold n more bytes and a NUL.  0 or -1 (out of memory). */
static int
reserve(metrics_buf *b, size_t n)
{
    size_t cap = b->cap ? b->cap * 2 : 16384;
    char *nd;

    if (b->len + n < b->cap)
        return 0;
    while (cap < b->len + n + 1)
        cap *= 2;
    if ((nd = realloc(b->data, cap)) == NULL) {
        b->oom = 1;
        return -1;
    }
    b->data = nd;
    b->cap = cap;
    return 0;
}

void
metrics_put(metrics_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    /* Most lines fit in what is left: format once. */
    va_start(ap, fmt);
    n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (b->data == NULL || b->len + (size_t) n >= b->cap) {
        if (reserve(b, (size_t) n) < 0)
            return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t) n;
}

void
metrics_family(metrics_buf *b, const char *name, const char *type, const char *help)
{
    metrics_put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
metrics_http_server(metrics_buf *b, const char *prefix, const http_server_counters *c)
{
    char name[160];

    snprintf(name, sizeof name, "%s_http_responses_total", prefix);
    metrics_family(b, name, "counter", "Responses to clients by HTTP status.");
    for (int s = 0; s < HTTP_NSTATUS; s++)
        metrics_put(b, "%s{code=\"%d\"} %llu\n", name, http_statuses[s],
                    (unsigned long long) load(&c->responses[s]));
    metrics_put(b, "%s{code=\"other\"} %llu\n", name,
                (unsigned long long) load(&c->responses[HTTP_NSTATUS]));
    snprintf(name, sizeof name, "%s_client_received_bytes_total", prefix);
    metrics_family(b, name, "counter", "Request bytes received from clients.");
    metrics_put(b, "%s %llu\n", name, (unsigned long long) load(&c->received_bytes));
    snprintf(name, sizeof name, "%s_client_sent_bytes_total", prefix);
    metrics_family(b, name, "counter", "Response bytes sent to clients.");
    metrics_put(b, "%s %llu\n", name, (unsigned long long) load(&c->sent_bytes));
    snprintf(name, sizeof name, "%s_active_requests", prefix);
    metrics_family(b, name, "gauge", "Client requests being answered.");
    metrics_put(b, "%s %llu\n", name, (unsigned long long) load(&c->active));
}

char *
metrics_finish(metrics_buf *b, size_t *len)
{
    if (b->oom) {
        free(b->data);
        b->data = NULL;
        return NULL;
    }
    if (b->data == NULL && reserve(b, 0) < 0)
        return NULL;
    b->data[b->len] = '\0';
    *len = b->len;
    return b->data;
}
