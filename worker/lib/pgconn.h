/*
 * pgconn.h: one libpq connection with reconnect, backoff and error triage.
 *
 * Every statement goes through PQexecParams (the extended protocol with an
 * unnamed statement), never a prepared statement or SET, so the connection
 * carries no session state and works behind pgbouncer in transaction mode.
 * search_path is pinned at connect through the startup "options".
 *
 * A pgconn is used by one thread at a time.  Errors are sorted into two
 * kinds, because they mean different things to a lease holder:
 *   PGC_SQL_ERROR  the server answered with an error: the call changed
 *                  nothing (each call is one autocommit statement);
 *   PGC_CONN_LOST  the connection broke: the call may or may not have
 *                  committed, so its outcome is unknown.
 */
#ifndef TRACE_PGCONN_H
#define TRACE_PGCONN_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PGC_OK = 0, PGC_SQL_ERROR, PGC_CONN_LOST } pgc_status;

typedef struct pgc_error {
    pgc_status status;
    char sqlstate[6];       /* "" when none */
    char msg[1024];
} pgc_error;

typedef struct pgconn {
    PGconn     *conn;       /* NULL while disconnected */
    const char *name;       /* "control", "listen", "slot 3": for logs */
    char       *conninfo;   /* owned copy; secret */
    char       *options;    /* owned copy */
    int64_t     connect_timeout_ms;
    int64_t     backoff_max_ms;
    int         failures;   /* consecutive failed connects */
    int64_t     next_try_ms;/* monotonic: no connect attempt before this */
    int         ever_connected;
} pgconn;

/* The fallback_application_name of every connection (default "trace"):
 * the program's name.  Set once at start; name must stay valid. */
void pgc_set_application_name(const char *name);

/* Initialises c (disconnected).  Copies the strings.  0 or -1. */
int pgc_init(pgconn *c, const char *name, const char *conninfo, const char *options,
             int64_t connect_timeout_ms, int64_t backoff_max_ms);

/* One connection attempt if c is disconnected and its backoff has passed.
 * Returns 0 when connected, -1 otherwise (err filled when an attempt was
 * made and failed; the next attempt is then scheduled with capped
 * exponential backoff and jitter). */
int pgc_try_connect(pgconn *c, char *err, size_t errlen);

/* Connects, retrying with backoff until connected or stop(arg) says to
 * give up.  Logs each failure.  0 when connected, -1 when stopped. */
int pgc_connect_wait(pgconn *c, int (*stop)(void *), void *arg);

/* Runs one statement with text parameters.  Returns the result (the caller
 * PQclear()s it) when it succeeded; NULL otherwise with e filled.  On
 * PGC_CONN_LOST the connection is closed and a reconnect scheduled. */
PGresult *pgc_exec(pgconn *c, const char *sql, int nparams, const char *const *values,
                   pgc_error *e);

/* Runs sql, a COPY ... FROM STDIN, and sends it len bytes of data in
 * chunks.  0 when the server accepted it all; -1 with e filled (as
 * pgc_exec: PGC_SQL_ERROR, or PGC_CONN_LOST with the connection closed). */
int pgc_copy_in(pgconn *c, const char *sql, const char *data, size_t len, pgc_error *e);

/* Closes the connection (if any). */
void pgc_close(pgconn *c);
/* Closes and frees the owned strings. */
void pgc_destroy(pgconn *c);

int pgc_connected(const pgconn *c);

/* The first line of a (libpq) message, without the newline. */
void first_line(char *dst, size_t n, const char *src);

/* "host=... port=... dbname=... user=..." from a conninfo, without the
 * password or any other parameter, for logs. */
void pgc_describe(const char *conninfo, char *buf, size_t n);

#endif
