/*
 * listener.c: LISTEN trace_wakeup with reconnect (see listener.h).
 */
#define _GNU_SOURCE
#include "listen.h"

#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int
listener_init(listener *l, const char *conninfo, const char *options,
              int64_t connect_timeout_ms, int64_t backoff_max_ms)
{
    l->listening = 0;
    return pgc_init(&l->pc, "listen", conninfo, options, connect_timeout_ms, backoff_max_ms);
}

int
listener_ensure(listener *l)
{
    char err[512];
    pgc_error e;
    PGresult *r;

    if (l->listening && pgc_connected(&l->pc))
        return 0;
    l->listening = 0;
    if (pgc_try_connect(&l->pc, err, sizeof err) < 0) {
        if (err[0])
            log_msg(l->pc.failures == 1 ? LOG_WARN : LOG_DEBUG,
                    "listen connection failed (attempt %d; polling meanwhile): %s",
                    l->pc.failures, err);
        return -1;
    }
    r = pgc_exec(&l->pc, "LISTEN trace_wakeup", 0, NULL, &e);
    if (r == NULL) {
        log_msg(LOG_WARN, "LISTEN trace_wakeup failed: %s", e.msg);
        pgc_close(&l->pc);
        l->pc.failures++;
        l->pc.next_try_ms = now_ms() + 1000;
        return -1;
    }
    PQclear(r);
    l->listening = 1;
    log_msg(LOG_DEBUG, "listening on trace_wakeup");
    return 1;
}

int
listener_fd(const listener *l)
{
    return l->listening && l->pc.conn ? PQsocket(l->pc.conn) : -1;
}

/* Is payload one of the comma-separated names? */
static int
names_runtime(const char *runtimes, const char *payload)
{
    size_t n = strlen(payload);

    for (const char *p = runtimes; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t) (comma - p) : strlen(p);

        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == n && strncmp(p, payload, n) == 0)
            return 1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

int
listener_consume(listener *l, const char *runtimes, int *wake)
{
    PGnotify *n;

    if (!l->listening || l->pc.conn == NULL)
        return -1;
    if (!PQconsumeInput(l->pc.conn) || PQstatus(l->pc.conn) != CONNECTION_OK) {
        char msg[512];

        first_line(msg, sizeof msg, PQerrorMessage(l->pc.conn));
        log_msg(LOG_WARN, "listen connection lost: %s; reconnecting (polling meanwhile)", msg);
        pgc_close(&l->pc);
        l->listening = 0;
        l->pc.next_try_ms = 0;
        return -1;
    }
    while ((n = PQnotifies(l->pc.conn)) != NULL) {
        if (names_runtime(runtimes, n->extra))
            *wake = 1;
        PQfreemem(n);
    }
    return 0;
}

void
listener_destroy(listener *l)
{
    pgc_destroy(&l->pc);
    l->listening = 0;
}
