/*
 * http.c: the one HTTP client of the worker programs (see http.h).
 *
 * Memory: a response body grows in a buffer the caller frees with
 * http_response_free; on any failure nothing is left allocated.  The write
 * callback refuses bytes past max_response_bytes, which makes libcurl abort
 * the transfer with CURLE_WRITE_ERROR; that is reported as "too large".
 */
#include "http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

struct http_client {
    CURL        *curl;
    http_options opt;
    int          last_timeout;
    int          last_failure;      /* enum http_failure */
    int        (*abort_cb)(void *); /* polled during a transfer: non-zero stops it */
    void        *abort_arg;
};

/* The body being received, and what stops it. */
typedef struct body_buffer {
    char   *data;
    size_t  len;
    size_t  cap;
    size_t  max;
    int     too_big;
    int64_t retry_after_ms;
} body_buffer;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

/* libcurl's global state, once per process, before any thread uses it. */
static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Appends received bytes; refuses (aborting the transfer) past the cap. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_buffer *b = userdata;
    size_t n = size * nmemb;

    if (b->len + n > b->max) {
        b->too_big = 1;
        return 0;
    }
    if (buf_reserve(&b->data, &b->cap, b->len + n + 1, 16384) < 0)
        return 0;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Notes a Retry-After header given in seconds (the HTTP-date form is rare
 * on RPC and webhook peers and is ignored). */
static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
    body_buffer *b = userdata;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";

    if (n > sizeof(name) && strncasecmp(line, name, sizeof(name) - 1) == 0) {
        char *end;
        long secs = strtol(line + sizeof(name) - 1, &end, 10);

        if (end != line + sizeof(name) - 1 && secs >= 0 && secs < 86400)
            b->retry_after_ms = (int64_t) secs * 1000;
    }
    return n;
}

http_client *http_client_new(const http_options *opt, char *err, size_t errlen)
{
    http_client *c = calloc(1, sizeof(*c));

    pthread_once(&global_once, global_init);
    if (c == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (opt != NULL)
        c->opt = *opt;
    if (c->opt.connect_timeout_ms <= 0)
        c->opt.connect_timeout_ms = 5000;
    if (c->opt.total_timeout_ms <= 0)
        c->opt.total_timeout_ms = 30000;
    if (c->opt.low_speed_bytes <= 0)
        c->opt.low_speed_bytes = 1024;
    if (c->opt.low_speed_ms <= 0)
        c->opt.low_speed_ms = 10000;
    if (c->opt.max_response_bytes <= 0)
        c->opt.max_response_bytes = 16 * 1024 * 1024;
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        set_err(err, errlen, "could not create a libcurl handle");
        free(c);
        return NULL;
    }
    return c;
}

void http_client_free(http_client *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->curl);
    free(c);
}

void http_client_set_total_timeout(http_client *c, int64_t ms)
{
    if (ms > 0)
        c->opt.total_timeout_ms = ms;
}

void http_client_set_abort(http_client *c, int (*abort_cb)(void *), void *arg)
{
    c->abort_cb = abort_cb;
    c->abort_arg = arg;
}

/* libcurl's progress callback (at least once a second, and as bytes move):
 * a non-zero return ends the transfer with CURLE_ABORTED_BY_CALLBACK. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    http_client *c = userdata;

    (void) dltotal, (void) dlnow, (void) ultotal, (void) ulnow;
    return c->abort_cb(c->abort_arg) ? 1 : 0;
}

/* Sets the options every request of c has; the handle keeps connections. */
static void set_request_options(http_client *c, body_buffer *b)
{
    CURL *h = c->curl;

    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) c->opt.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) c->opt.total_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long) c->opt.low_speed_bytes);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                     (long) ((c->opt.low_speed_ms + 999) / 1000));
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->opt.max_response_bytes);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");   /* gzip bodies count after decoding */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, b);
    if (c->opt.unix_socket != NULL)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->opt.unix_socket);
    if (c->abort_cb != NULL) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    }
}

int http_post_json(http_client *c, const char *url, const char *label,
                   const char *body, size_t len, const char *const *headers,
                   http_response *out, char *err, size_t errlen)
{
    body_buffer b = {.max = (size_t) c->opt.max_response_bytes, .retry_after_ms = -1};
    struct curl_slist *list = NULL, *grown;
    int64_t started = now_ms();
    CURLcode rc;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    c->last_timeout = 0;
    c->last_failure = HTTP_FAIL_OTHER;
    list = curl_slist_append(NULL, "Content-Type: application/json");
    for (int i = 0; list != NULL && headers != NULL && headers[i] != NULL; i++) {
        grown = curl_slist_append(list, headers[i]);
        if (grown == NULL) {
            curl_slist_free_all(list);
            list = NULL;
        } else
            list = grown;
    }
    if (list == NULL) {
        set_err(err, errlen, "out of memory");
        goto cleanup;
    }
    curl_easy_reset(c->curl);
    set_request_options(c, &b);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);

    rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) {
        c->last_timeout = (rc == CURLE_OPERATION_TIMEDOUT);
        if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED)
            c->last_failure = HTTP_FAIL_TOO_LARGE;
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            c->last_failure = HTTP_FAIL_TIMEOUT;
        else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                 rc == CURLE_COULDNT_RESOLVE_PROXY)
            c->last_failure = HTTP_FAIL_CONNECT;
        else if (rc == CURLE_PARTIAL_FILE)
            c->last_failure = HTTP_FAIL_TRUNCATED;
        if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED)
            set_err(err, errlen, "%s: response larger than %lld bytes", label,
                    (long long) c->opt.max_response_bytes);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            set_err(err, errlen, "%s: timed out after %lld ms", label,
                    (long long) (now_ms() - started));
        else if (rc == CURLE_ABORTED_BY_CALLBACK)
            set_err(err, errlen, "%s: stopped while waiting for the answer", label);
        else
            set_err(err, errlen, "%s: %s", label, curl_easy_strerror(rc));
        goto cleanup;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = b.data ? b.data : strdup("");
    if (out->body == NULL) {
        set_err(err, errlen, "out of memory");
        goto cleanup;
    }
    b.data = NULL;
    out->len = b.len;
    out->retry_after_ms = b.retry_after_ms;
    out->elapsed_ms = now_ms() - started;
    c->last_failure = HTTP_FAIL_NONE;
    ret = 0;

cleanup:
    free(b.data);
    curl_slist_free_all(list);
    return ret;
}

void http_response_free(http_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

int http_last_was_timeout(const http_client *c)
{
    return c->last_timeout;
}

int http_last_failure(const http_client *c)
{
    return c->last_failure;
}
