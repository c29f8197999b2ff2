/*
 * http.h: the one HTTP client of the worker programs (libcurl).
 *
 * A client is one libcurl easy handle, reused call after call so that
 * connections are kept alive (a fresh connection per request is ~10x
 * slower); it belongs to one thread.  Every call is bounded: a connect
 * timeout, a total timeout, a low-speed cutoff (a peer trickling a body
 * slowly), and a byte cap on the response enforced while it streams in
 * (libcurl's CURLOPT_MAXFILESIZE cannot stop bodies of unknown length).
 * Redirects are never followed and only http and https are spoken.
 * Errors never include the URL's userinfo or query: callers pass a label.
 */
#ifndef TRACE_HTTP_CLIENT_H
#define TRACE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_options {
    int64_t connect_timeout_ms;     /* default 5000 */
    int64_t total_timeout_ms;       /* default 30000 */
    int64_t low_speed_bytes;        /* default 1024 bytes/s ... */
    int64_t low_speed_ms;           /* ... sustained this long; default 10000 */
    int64_t max_response_bytes;     /* default 16 MB */
    const char *unix_socket;        /* connect through this socket, or NULL */
} http_options;

typedef struct http_response {
    long    status;                 /* HTTP status, e.g. 200 */
    char   *body;                   /* NUL-terminated, owned; free with http_response_free */
    size_t  len;
    int64_t retry_after_ms;         /* from a Retry-After header, or -1 */
    int64_t elapsed_ms;
} http_response;

typedef struct http_client http_client;

/* A client with the given options (NULL fields and zeros take the
 * defaults).  NULL with err filled on failure. */
http_client *http_client_new(const http_options *opt, char *err, size_t errlen);
void http_client_free(http_client *c);

/* Changes the total timeout of c's next calls (ms > 0), e.g. to fit what is
 * left of a caller's own deadline; the connections are kept. */
void http_client_set_total_timeout(http_client *c, int64_t ms);

/* A function polled while c's requests are in flight (about once a second
 * when no bytes move, more often when they do): when it returns non-zero
 * the request ends at once as a transport failure ("stopped").  NULL
 * removes it.  For callers that must give up on a slow peer when told to
 * stop (a draining worker, a discarded prefetch). */
void http_client_set_abort(http_client *c, int (*abort_cb)(void *), void *arg);

/* POSTs body with Content-Type: application/json and the extra headers
 * (NULL-terminated "Name: value" strings, may be NULL).  Returns 0 when a
 * response arrived, whatever its status; -1 on a transport failure
 * (refused, timeout, too slow, too big, TLS), with err saying which and
 * *out empty.  label names the peer in err (never the URL). */
int http_post_json(http_client *c, const char *url, const char *label,
                   const char *body, size_t len, const char *const *headers,
                   http_response *out, char *err, size_t errlen);

void http_response_free(http_response *r);

/* Whether the last transport failure of c was a timeout (connect, total or
 * low speed): worth a retry elsewhere. */
int http_last_was_timeout(const http_client *c);

/* What the last call of c failed on, for callers that count failures by
 * class (the RPC gateway's metrics); HTTP_FAIL_NONE after a response. */
enum http_failure {
    HTTP_FAIL_NONE = 0,
    HTTP_FAIL_TIMEOUT,      /* connect, total or low-speed timeout */
    HTTP_FAIL_CONNECT,      /* refused, unreachable, name not resolved */
    HTTP_FAIL_TOO_LARGE,    /* the body passed max_response_bytes */
    HTTP_FAIL_TRUNCATED,    /* the peer closed before Content-Length bytes */
    HTTP_FAIL_OTHER         /* TLS, protocol, out of memory, ... */
};
int http_last_failure(const http_client *c);

#endif
