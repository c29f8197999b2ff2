/*
 * pgconn.c: libpq connections with reconnect and error triage (pgconn.h).
 *
 * Connect parameters, weakest first: TCP keepalives and a user timeout (so a
 * dead peer is noticed in seconds rather than hours), then the user's
 * conninfo (expanded, so it may override those), then the options that pin
 * search_path and a fallback application_name.  Nothing here logs the
 * conninfo itself: pgc_describe() keeps host, port, dbname and user only.
 */
#define _GNU_SOURCE
#include "pgconn.h"

#include "backoff.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *application_name = "trace";

void
pgc_set_application_name(const char *name)
{
    application_name = name;
}

int
pgc_init(pgconn *c, const char *name, const char *conninfo, const char *options,
         int64_t connect_timeout_ms, int64_t backoff_max_ms)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->conninfo = strdup(conninfo ? conninfo : "");
    c->options = strdup(options ? options : "");
    c->connect_timeout_ms = connect_timeout_ms;
    c->backoff_max_ms = backoff_max_ms;
    if (c->conninfo == NULL || c->options == NULL) {
        pgc_destroy(c);
        return -1;
    }
    return 0;
}

int
pgc_connected(const pgconn *c)
{
    return c->conn != NULL;
}

void
pgc_close(pgconn *c)
{
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
}

void
pgc_destroy(pgconn *c)
{
    pgc_close(c);
    free(c->conninfo);
    free(c->options);
    c->conninfo = c->options = NULL;
}

/* Schedules the next attempt: 100 ms doubling per failure up to
 * backoff_max, with +-25 % jitter so a fleet of workers does not reconnect
 * in lockstep. */
static void
schedule_retry(pgconn *c)
{
    backoff_policy p = {100, c->backoff_max_ms, 0.25};

    c->next_try_ms = now_ms() + backoff_ms(&p, c->failures, rand_unit());
}

/* libpq messages end with a newline; keep the first line, trimmed. */
void
first_line(char *dst, size_t n, const char *src)
{
    size_t i = 0;

    if (src == NULL)
        src = "";
    while (src[i] && src[i] != '\n' && i + 1 < n) {
        dst[i] = src[i];
        i++;
    }
    dst[i] = '\0';
}

/* Server notices (and the FATAL a terminated backend sends) go to our log,
 * not raw to stderr as libpq's default does. */
static void
notice_to_log(void *arg, const char *message)
{
    pgconn *c = arg;
    char line[512];

    first_line(line, sizeof line, message);
    log_msg(LOG_DEBUG, "%s connection: server said: %s", c->name, line);
}

int
pgc_try_connect(pgconn *c, char *err, size_t errlen)
{
    char timeout[32];
    const char *keys[12], *vals[12];
    int k = 0;

    if (err && errlen)
        err[0] = '\0';
    if (c->conn)
        return 0;
    if (now_ms() < c->next_try_ms)
        return -1;
    snprintf(timeout, sizeof timeout, "%lld",
             (long long) ((c->connect_timeout_ms + 999) / 1000 < 2 ? 2
                          : (c->connect_timeout_ms + 999) / 1000));
    keys[k] = "connect_timeout";     vals[k++] = timeout;
    keys[k] = "keepalives";          vals[k++] = "1";
    keys[k] = "keepalives_idle";     vals[k++] = "10";
    keys[k] = "keepalives_interval"; vals[k++] = "3";
    keys[k] = "keepalives_count";    vals[k++] = "3";
    keys[k] = "tcp_user_timeout";    vals[k++] = "20000";
    keys[k] = "dbname";              vals[k++] = c->conninfo;
    if (c->options[0]) {
        keys[k] = "options";         vals[k++] = c->options;
    }
    keys[k] = "fallback_application_name"; vals[k++] = application_name;
    keys[k] = NULL;                  vals[k] = NULL;

    c->conn = PQconnectdbParams(keys, vals, 1);
    if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
        char line[512];

        first_line(line, sizeof line, c->conn ? PQerrorMessage(c->conn) : "out of memory");
        set_err(err, errlen, "%s", line);
        pgc_close(c);
        c->failures++;
        schedule_retry(c);
        return -1;
    }
    PQsetNoticeProcessor(c->conn, notice_to_log, c);
    if (c->failures > 0 || c->ever_connected) {
        char where[512];

        pgc_describe(c->conninfo, where, sizeof where);
        if (c->failures > 0)
            log_msg(LOG_INFO, "%s connection re-established (%s) after %d failed attempt(s)",
                    c->name, where, c->failures);
        else
            log_msg(LOG_INFO, "%s connection re-established (%s)", c->name, where);
    }
    c->failures = 0;
    c->ever_connected = 1;
    return 0;
}

int
pgc_connect_wait(pgconn *c, int (*stop)(void *), void *arg)
{
    char err[512];

    while (!c->conn) {
        if (stop && stop(arg))
            return -1;
        if (pgc_try_connect(c, err, sizeof err) == 0)
            return 0;
        if (err[0]) {
            char where[512];

            pgc_describe(c->conninfo, where, sizeof where);
            log_msg(c->failures == 1 ? LOG_WARN : LOG_DEBUG,
                    "%s connection to %s failed (attempt %d, retrying with backoff): %s",
                    c->name, where, c->failures, err);
        }
        sleep_ms_interruptible(c->next_try_ms - now_ms(), stop, arg);
    }
    return 0;
}

/* Fills e from a failed result (res may be NULL) and sorts it: a broken
 * connection (even one the server closed after a FATAL such as 57P01
 * admin_shutdown) leaves the outcome unknown and is closed.  Frees res. */
static void
triage(pgconn *c, PGresult *res, pgc_error *e)
{
    const char *state;

    first_line(e->msg, sizeof e->msg,
               res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                                                   : PQerrorMessage(c->conn));
    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state)
        copy_str(e->sqlstate, sizeof e->sqlstate, state);
    PQclear(res);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        e->status = PGC_CONN_LOST;
        pgc_close(c);
        c->failures = 0;
        c->next_try_ms = 0;
        return;
    }
    e->status = PGC_SQL_ERROR;
}

PGresult *
pgc_exec(pgconn *c, const char *sql, int nparams, const char *const *values, pgc_error *e)
{
    PGresult *res;
    ExecStatusType st;

    memset(e, 0, sizeof *e);
    if (c->conn == NULL) {
        e->status = PGC_CONN_LOST;
        copy_str(e->msg, sizeof e->msg, "not connected");
        return NULL;
    }
    res = PQexecParams(c->conn, sql, nparams, NULL, values, NULL, NULL, 0);
    st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (res && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK))
        return res;
    triage(c, res, e);
    return NULL;
}

int
pgc_copy_in(pgconn *c, const char *sql, const char *data, size_t len, pgc_error *e)
{
    const size_t chunk = 1024 * 1024;
    PGresult *res, *last = NULL;
    size_t off = 0;
    int rc = 0;

    memset(e, 0, sizeof *e);
    if (c->conn == NULL) {
        e->status = PGC_CONN_LOST;
        copy_str(e->msg, sizeof e->msg, "not connected");
        return -1;
    }
    res = PQexecParams(c->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        triage(c, res, e);
        return -1;
    }
    PQclear(res);
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk;

        if (PQputCopyData(c->conn, data + off, (int) n) != 1) {
            rc = -1;
            break;
        }
        off += n;
    }
    /* End the COPY either way; on a send failure say why, so the server
     * rolls it back rather than waiting. */
    if (PQputCopyEnd(c->conn, rc == 0 ? NULL : "trace-worker: sending COPY data failed") != 1)
        rc = -1;
    /* Collect every result: the COPY's own, then NULL. */
    while ((res = PQgetResult(c->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && last == NULL) {
            last = res;
            continue;
        }
        PQclear(res);
        if (PQstatus(c->conn) != CONNECTION_OK)
            break;
    }
    if (last != NULL || rc < 0 || PQstatus(c->conn) != CONNECTION_OK) {
        triage(c, last, e);
        return -1;
    }
    return 0;
}

void
pgc_describe(const char *conninfo, char *buf, size_t n)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
    static const char *const keep[] = {"host", "hostaddr", "port", "dbname", "user"};
    size_t len = 0;

    buf[0] = '\0';
    if (opts == NULL) {
        copy_str(buf, n, "(unparsable conninfo)");
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(keep); i++)
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (strcmp(o->keyword, keep[i]) == 0 && o->val && o->val[0] && len + 1 < n) {
                int w = snprintf(buf + len, n - len, "%s%s=%s", len ? " " : "", o->keyword,
                                 o->val);
                if (w > 0)
                    len += (size_t) w < n - len ? (size_t) w : n - len - 1;
            }
    if (buf[0] == '\0')
        copy_str(buf, n, "(libpq defaults)");
    PQconninfoFree(opts);
}
