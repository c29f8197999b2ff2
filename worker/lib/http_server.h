/*
 * http_server.h: the HTTP listener of Trace's programs (libmicrohttpd): the
 * gateway's today, trace-delivery's and trace-api's tomorrow.
 *
 * Listeners: "host:port" or "unix:/path", comma-separated (at most
 * HTTP_MAX_LISTENERS).  TCP only on loopback addresses unless the program
 * allows remote clients; a unix socket is made with the given mode, an
 * existing one that is alive (another process's) is left alone, and it is
 * removed on stop.  The program binds nothing itself: one libmicrohttpd
 * daemon per listener, on a socket bound here.
 *
 * Threading: thread per connection.  A request that blocks (the gateway
 * waits on upstreams for seconds) then blocks only its own client; threads
 * are bounded by max_connections and clients keep connections alive.
 *
 * A request: when its headers are in, the program's route() answers at
 * once (a GET, an error) or asks for the body, with a cap; the body is
 * collected here (a body over the cap is read on and discarded up to 8x
 * the cap, then answered by too_large(), or the connection closed), then
 * body() answers.  done() is called once per request that route() let
 * through, answered or not.
 *
 * Drain: http_server_quiesce() stops accepting while requests in flight go
 * on; http_server_active() counts them; http_server_stop() ends it all.
 *
 * Counters (http_server_counters, the program's, updated atomically):
 * responses by status, bytes in and out, requests in flight: what every
 * program's /metrics shows the same way (metrics.h).
 */
#ifndef TRACE_HTTP_SERVER_H
#define TRACE_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_LISTENERS 4

/* The statuses counted one by one; any other counts as "other". */
#define HTTP_NSTATUS 10
extern const int http_statuses[HTTP_NSTATUS];

typedef struct http_reply {
    int         status;
    const char *content_type;
    char       *body;           /* malloc'd; taken by the server */
    size_t      len;
    const char *allow;          /* a 405's Allow header, or NULL */
} http_reply;

/* What route() decides. */
enum { HTTP_ROUTE_REPLY = 0, HTTP_ROUTE_BODY = 1 };

typedef struct http_handlers {
    void *arg;
    /* Headers are in.  content_length is -1 when absent.  Fill reply and
     * return HTTP_ROUTE_REPLY, or set *ctx (may stay NULL) and *max_body
     * and return HTTP_ROUTE_BODY. */
    int  (*route)(void *arg, const char *method, const char *url, int64_t content_length,
                  void **ctx, size_t *max_body, http_reply *reply);
    /* The whole body (NUL-terminated) is in: fill reply. */
    void (*body)(void *arg, void *ctx, const char *body, size_t len, http_reply *reply);
    /* The body passed max_body: fill reply (a 413). */
    void (*too_large)(void *arg, void *ctx, size_t max_body, http_reply *reply);
    /* The request that route() let through is over. */
    void (*done)(void *arg, void *ctx);
} http_handlers;

/* Updated with __atomic builtins; read them with __atomic_load_n. */
typedef struct http_server_counters {
    uint64_t responses[HTTP_NSTATUS + 1];   /* by http_statuses; the last is "other" */
    uint64_t received_bytes, sent_bytes;
    uint64_t active;                        /* requests being answered */
} http_server_counters;

typedef struct http_server_options {
    const char *listen;             /* "127.0.0.1:8545, unix:/run/x.sock" */
    int         allow_remote;       /* non-loopback TCP addresses allowed */
    int         unix_socket_mode;   /* e.g. 0660 */
    int         max_connections;
    int64_t     idle_timeout_ms;
    http_server_counters *counters;     /* the program's; must outlive the server */
} http_server_options;

typedef struct http_server http_server;

/* Checks the listen addresses without binding: syntax, and that TCP ones
 * are loopback unless allow_remote (the config's check, so --check-config
 * catches it).  0, or -1 with err filled. */
int http_server_check(const char *listen, int allow_remote, char *err, size_t errlen);

/* Binds every listener and starts serving.  NULL with err filled when one
 * cannot be bound or started (nothing is left open). */
http_server *http_server_start(const http_server_options *opt, const http_handlers *h,
                               char *err, size_t errlen);

/* The addresses actually bound ("127.0.0.1:8545", "unix:/path"), one per
 * call, i from 0; NULL past the last. */
const char *http_server_address(const http_server *s, int i);

/* Stops accepting connections; requests in flight go on. */
void http_server_quiesce(http_server *s);

/* Requests being answered. */
uint64_t http_server_active(const http_server *s);

/* Stops every daemon (waiting for their threads), removes unix sockets we
 * made, frees s. */
void http_server_stop(http_server *s);

#endif
