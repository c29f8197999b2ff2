/*
 * metrics.h: Prometheus text (format 0.0.4) for every program's
 * GET /metrics.
 *
 * Conventions, the same in every program: names are
 * trace_<program>_<what>[_<unit>][_total], counters end in _total, units
 * are seconds and bytes; each family is written once, its # HELP and
 * # TYPE first, its samples after; label values are names the program
 * chose (providers, methods from an allow-list, hosts), never a path, a
 * query or a credential.  Counters are read atomically one by one: a
 * scrape is not a snapshot, each number is exact.
 */
#ifndef TRACE_METRICS_H
#define TRACE_METRICS_H

#include "http_server.h"

#include <stddef.h>
#include <stdint.h>

/* The text being built.  On out of memory every later call does nothing
 * and metrics_finish returns NULL. */
typedef struct metrics_buf {
    char   *data;
    size_t  len, cap;
    int     oom;
} metrics_buf;

/* Appends formatted text. */
void metrics_put(metrics_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void metrics_family(metrics_buf *b, const char *name, const char *type, const char *help);

/* The HTTP server's families: <prefix>_http_responses_total{code},
 * <prefix>_client_received_bytes_total, <prefix>_client_sent_bytes_total,
 * <prefix>_active_requests. */
void metrics_http_server(metrics_buf *b, const char *prefix, const http_server_counters *c);

/* The text (malloc'd, for the caller to free) and its length; NULL when
 * memory ran out. */
char *metrics_finish(metrics_buf *b, size_t *len);

#endif
