/*
 * listener.h: the LISTEN trace_wakeup connection.
 *
 * The only connection with session state (the LISTEN itself), so it may go
 * straight to PostgreSQL (listen_conninfo) when the others go through
 * pgbouncer in transaction mode.  A wake-up is a hint: after any
 * (re)connect the caller claims at once, because notifications sent while
 * it was not listening are gone; the slow poll covers the rest.
 */
#ifndef TRACE_LISTEN_H
#define TRACE_LISTEN_H

#include "pgconn.h"

typedef struct listener {
    pgconn pc;
    int    listening;
} listener;

int listener_init(listener *l, const char *conninfo, const char *options,
                  int64_t connect_timeout_ms, int64_t backoff_max_ms);

/* Connects and LISTENs when down and its backoff has passed.  Returns 1
 * when it just (re)started listening, 0 when it was listening already,
 * -1 when it is down. */
int listener_ensure(listener *l);

/* The socket to poll, or -1 when down. */
int listener_fd(const listener *l);

/* Consumes input and notifications.  *wake is set when a notification
 * names one of runtimes (comma-separated).  -1 when the connection broke. */
int listener_consume(listener *l, const char *runtimes, int *wake);

void listener_destroy(listener *l);

#endif
