/*
 * gateway_main.c: trace-rpc-gateway's HTTP server (libmicrohttpd), its
 * listeners, signals and shutdown.
 *
 *   POST /rpc/<provider>   a JSON-RPC 2.0 request or batch, forwarded
 *   GET  /metrics          Prometheus text
 *   GET  /healthz          "ok"
 *
 * Threading: libmicrohttpd in thread-per-connection mode.  Forwarding
 * blocks for as long as an upstream takes (seconds, with retries, backoff
 * and Retry-After waits); with an internal poll thread pool one slow
 * upstream call would stall every connection sharing that poll thread, or
 * need suspend/resume plus a second pool of our own.  A thread per client
 * connection keeps each request a straight blocking function, its cost is
 * bounded by max_connections, and clients (trace-worker's http.c) keep
 * their connections alive, so threads are rarely created.  Upstream
 * connections do not depend on client threads: they live in each
 * provider's slots (gateway_upstream.h).
 *
 * Listeners: loopback only unless allow_remote = on (the gateway has no
 * authentication and spends the providers' quotas), or a unix socket made
 * with unix_socket_mode.  We bind the sockets ourselves and hand them to
 * libmicrohttpd, one daemon per listener.
 *
 * Shutdown (SIGTERM, SIGINT): stop accepting, let requests in flight finish
 * for up to drain_timeout, then make the rest fail fast (no more retries or
 * waits), stop the daemons, remove unix sockets.  Settings need a restart:
 * SIGHUP is logged and ignored.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"
#include "upstream.h"
#include "log.h"
#include "util.h"

#define GATEWAY_VERSION "0.1"

/* MHD_Result arrived in 0.9.71; older headers return int. */
#if MHD_VERSION < 0x00097002
typedef int gw_mhd_result;
#else
typedef enum MHD_Result gw_mhd_result;
#endif

static volatile sig_atomic_t got_stop;
static volatile sig_atomic_t got_hup;

static void
on_stop(int sig)
{
    (void) sig;
    got_stop = 1;
}

static void
on_hup(int sig)
{
    (void) sig;
    got_hup = 1;
}

/* ---- listeners -------------------------------------------------------- */

typedef struct listener {
    char    spec[300];
    int     is_unix;
    char    path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    char    host[256];
    char    port[16];
    int     fd;
    int     created;        /* we made the unix socket file: remove it at exit */
    struct MHD_Daemon *daemon;
    char    bound[300];     /* what we actually listen on, for the log */
} listener;

/* Splits "a, b" into listeners; checks their syntax.  0 or -1. */
static int
parse_listeners(const char *specs, listener *ls, int *n, char *err, size_t errlen)
{
    const char *s = specs;

    *n = 0;
    while (*s) {
        const char *start, *end;
        listener *l;
        size_t len;

        while (*s == ',' || *s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        start = s;
        while (*s && *s != ',')
            s++;
        end = s;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        len = (size_t) (end - start);
        if (*n >= GW_MAX_LISTENERS) {
            set_err(err, errlen, "listen: more than %d addresses", GW_MAX_LISTENERS);
            return -1;
        }
        l = &ls[(*n)++];
        memset(l, 0, sizeof(*l));
        l->fd = -1;
        if (len >= sizeof l->spec) {
            set_err(err, errlen, "listen: address too long");
            return -1;
        }
        memcpy(l->spec, start, len);
        l->spec[len] = '\0';
        if (strncmp(l->spec, "unix:", 5) == 0) {
            l->is_unix = 1;
            if (l->spec[5] != '/' || strlen(l->spec + 5) >= sizeof l->path) {
                set_err(err, errlen, "listen: \"%s\": expected unix:/absolute/path (at most %zu bytes)",
                        l->spec, sizeof l->path - 1);
                return -1;
            }
            copy_str(l->path, sizeof l->path, l->spec + 5);
            continue;
        }
        {
            const char *colon, *h = l->spec;
            size_t hl;

            if (h[0] == '[') {
                const char *rb = strchr(h, ']');

                if (rb == NULL || rb[1] != ':') {
                    set_err(err, errlen, "listen: \"%s\": expected [ipv6]:port", l->spec);
                    return -1;
                }
                hl = (size_t) (rb - h - 1);
                memcpy(l->host, h + 1, hl);
                colon = rb + 1;
            } else {
                colon = strrchr(h, ':');
                if (colon == NULL || colon == h) {
                    set_err(err, errlen, "listen: \"%s\": expected host:port or unix:/path", l->spec);
                    return -1;
                }
                hl = (size_t) (colon - h);
                if (hl >= sizeof l->host) {
                    set_err(err, errlen, "listen: host too long");
                    return -1;
                }
                memcpy(l->host, h, hl);
            }
            l->host[hl] = '\0';
            if (strlen(colon + 1) == 0 || strlen(colon + 1) > 5 ||
                strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) > 65535) {
                set_err(err, errlen, "listen: \"%s\": invalid port", l->spec);
                return -1;
            }
            copy_str(l->port, sizeof l->port, colon + 1);
        }
    }
    if (*n == 0) {
        set_err(err, errlen, "listen: no address");
        return -1;
    }
    return 0;
}

static int
is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *) sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;

        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        if (IN6_IS_ADDR_V4MAPPED(a))
            return a->s6_addr[12] == 127;
    }
    return 0;
}

static int
open_unix(listener *l, int mode, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd;

    copy_str(sa.sun_path, sizeof sa.sun_path, l->path);
    if (lstat(l->path, &st) == 0) {
        int probe;

        if (!S_ISSOCK(st.st_mode)) {
            set_err(err, errlen, "listen: %s exists and is not a socket", l->path);
            return -1;
        }
        /* A live socket is another gateway's: leave it alone. */
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sizeof sa) == 0) {
            close(probe);
            set_err(err, errlen, "listen: %s is in use by another process", l->path);
            return -1;
        }
        if (probe >= 0)
            close(probe);
        unlink(l->path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
        chmod(l->path, (mode_t) mode) < 0 || listen(fd, 128) < 0) {
        set_err(err, errlen, "listen: %s: %s", l->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    l->fd = fd;
    l->created = 1;
    snprintf(l->bound, sizeof l->bound, "unix:%s", l->path);
    return 0;
}

static int
open_tcp(listener *l, int allow_remote, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL, *ai;
    int rc, fd = -1, one = 1;

    rc = getaddrinfo(l->host[0] ? l->host : NULL, l->port, &hints, &res);
    if (rc != 0) {
        set_err(err, errlen, "listen: %s: %s", l->spec, gai_strerror(rc));
        return -1;
    }
    set_err(err, errlen, "listen: %s: no usable address", l->spec);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        char host[INET6_ADDRSTRLEN] = "?";
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;

        if (!allow_remote && !is_loopback(ai->ai_addr)) {
            set_err(err, errlen, "listen: %s is not a loopback address (set allow_remote = on to listen there; the gateway has no authentication)",
                    l->spec);
            continue;
        }
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
            set_err(err, errlen, "listen: %s: %s", l->spec, strerror(errno));
            close(fd);
            fd = -1;
            continue;
        }
        if (getsockname(fd, (struct sockaddr *) &ss, &sl) == 0) {
            if (ss.ss_family == AF_INET) {
                inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, host, sizeof host);
                snprintf(l->bound, sizeof l->bound, "%s:%u", host,
                         ntohs(((struct sockaddr_in *) &ss)->sin_port));
            } else {
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, host, sizeof host);
                snprintf(l->bound, sizeof l->bound, "[%s]:%u", host,
                         ntohs(((struct sockaddr_in6 *) &ss)->sin6_port));
            }
        }
        break;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    l->fd = fd;
    return 0;
}

/* ---- requests --------------------------------------------------------- */

typedef struct req_ctx {
    int     provider;
    char   *body;
    size_t  len, cap;
    int     too_large;
    size_t  discarded;
    int     counted;        /* in rt->active_requests */
} req_ctx;

/* Queues status + body (malloc'd, taken) on c.  A 405 names what is
 * allowed: POST on /rpc/, GET elsewhere. */
static gw_mhd_result
send_reply(gw_runtime *rt, struct MHD_Connection *c, int status, const char *ctype, char *body,
           size_t len)
{
    struct MHD_Response *r;
    gw_mhd_result ret;

    if (body == NULL)
        return MHD_NO;
    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == 405)
        MHD_add_response_header(r, "Allow", strcmp(ctype, "application/json") == 0 ? "POST"
                                                                                   : "GET, HEAD");
    ret = MHD_queue_response(c, (unsigned int) status, r);
    MHD_destroy_response(r);
    gw_count_status(rt, status);
    gw_add(&rt->client_sent_bytes, len);
    return ret;
}

static gw_mhd_result
send_error(gw_runtime *rt, struct MHD_Connection *c, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static gw_mhd_result
send_error(gw_runtime *rt, struct MHD_Connection *c, int status, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    gw_reply r;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gw_reply_error(&r, status, code, "%s", msg);
    return send_reply(rt, c, r.status, "application/json", r.body, r.len);
}

static gw_mhd_result
send_text(gw_runtime *rt, struct MHD_Connection *c, int status, const char *ctype, const char *text)
{
    char *copy = strdup(text);

    return send_reply(rt, c, status, ctype, copy, copy ? strlen(copy) : 0);
}

/* The first call for a request (headers only): routes it. */
static gw_mhd_result
start_request(gw_runtime *rt, struct MHD_Connection *c, const char *url, const char *method,
              void **con_cls)
{
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    const char *cl;
    req_ctx *ctx;
    int p;

    if (strcmp(url, "/healthz") == 0)
        return is_get ? send_text(rt, c, 200, "text/plain", "ok\n")
                      : send_text(rt, c, 405, "text/plain", "method not allowed\n");
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *text;

        if (!is_get)
            return send_text(rt, c, 405, "text/plain", "method not allowed\n");
        text = gw_metrics_render(rt, &len);
        return send_reply(rt, c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    }
    if (strncmp(url, "/rpc/", 5) != 0)
        return send_error(rt, c, 404, RPC_INVALID_REQUEST,
                          "gateway: not found (POST /rpc/<provider>, GET /metrics, GET /healthz)");
    p = gw_config_find_provider(rt->cfg, url + 5, strlen(url + 5));
    if (p < 0) {
        char name[GW_NAME_MAX + 1];
        size_t n = strnlen(url + 5, GW_NAME_MAX);

        /* The name as asked, printable characters only. */
        for (size_t i = 0; i < n; i++)
            name[i] = (url[5 + i] > 0x20 && url[5 + i] < 0x7f && url[5 + i] != '"' &&
                       url[5 + i] != '\\') ? url[5 + i] : '?';
        name[n] = '\0';
        return send_error(rt, c, 404, RPC_INVALID_REQUEST, "gateway: unknown provider \"%s\"", name);
    }
    if (strcmp(method, "POST") != 0)
        return send_error(rt, c, 405, RPC_INVALID_REQUEST, "gateway: use POST for JSON-RPC");
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoull(cl, NULL, 10) > (unsigned long long) rt->cfg->max_request_bytes) {
        gw_log(LOG_WARN, "provider=%s: request of %s bytes refused (max_request_size %lld)",
               rt->cfg->providers[p]->name, cl, (long long) rt->cfg->max_request_bytes);
        return send_error(rt, c, 413, RPC_INVALID_REQUEST,
                          "gateway: request body larger than %lld bytes",
                          (long long) rt->cfg->max_request_bytes);
    }
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return MHD_NO;
    ctx->provider = p;
    ctx->counted = 1;
    gw_add(&rt->active_requests, 1);
    *con_cls = ctx;
    return MHD_YES;
}

static gw_mhd_result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    gw_runtime *rt = cls;
    req_ctx *ctx = *con_cls;
    size_t max = (size_t) rt->cfg->max_request_bytes;
    gw_reply reply;

    (void) version;
    if (ctx == NULL)
        return start_request(rt, c, url, method, con_cls);

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        gw_add(&rt->client_received_bytes, n);
        *upload_data_size = 0;
        if (!ctx->too_large && ctx->len + n > max) {
            ctx->too_large = 1;
            free(ctx->body);
            ctx->body = NULL;
        }
        if (ctx->too_large) {
            /* Read on to answer 413, but not forever. */
            ctx->discarded += n;
            if (ctx->discarded > 8 * max) {
                gw_log(LOG_WARN, "provider=%s: endless request body: connection closed",
                       rt->cfg->providers[ctx->provider]->name);
                return MHD_NO;
            }
            return MHD_YES;
        }
        if (ctx->len + n + 1 > ctx->cap) {
            size_t cap = ctx->cap ? ctx->cap : 4096;
            char *nb;

            while (cap < ctx->len + n + 1)
                cap *= 2;
            if ((nb = realloc(ctx->body, cap)) == NULL)
                return MHD_NO;
            ctx->body = nb;
            ctx->cap = cap;
        }
        memcpy(ctx->body + ctx->len, upload_data, n);
        ctx->len += n;
        ctx->body[ctx->len] = '\0';
        return MHD_YES;
    }

    /* The whole body is in. */
    if (ctx->too_large) {
        gw_log(LOG_WARN, "provider=%s: request body over %zu bytes refused",
               rt->cfg->providers[ctx->provider]->name, max);
        return send_error(rt, c, 413, RPC_INVALID_REQUEST,
                          "gateway: request body larger than %zu bytes", max);
    }
    gw_forward(rt, &rt->providers[ctx->provider], ctx->body ? ctx->body : "", ctx->len, &reply);
    if (reply.body == NULL)
        gw_reply_error(&reply, 500, RPC_INTERNAL_ERROR, "gateway: out of memory");
    return send_reply(rt, c, reply.status, "application/json", reply.body, reply.len);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    gw_runtime *rt = cls;
    req_ctx *ctx = *con_cls;

    (void) c;
    (void) toe;
    if (ctx == NULL)
        return;
    if (ctx->counted)
        __atomic_fetch_sub(&rt->active_requests, 1, __ATOMIC_RELAXED);
    free(ctx->body);
    free(ctx);
    *con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[1024];
    size_t n;

    (void) cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    gw_log(LOG_DEBUG, "http server: %s", msg);
}

/* ---- main ------------------------------------------------------------- */

static int
has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return 1;
    return 0;
}

int
main(int argc, char **argv, char **envp)
{
    gw_config cfg;
    gw_runtime rt;
    listener ls[GW_MAX_LISTENERS];
    int nls = 0, rc = 2;
    char err[1024];
    struct sigaction sa;

    if (has_flag(argc, argv, "--help") || has_flag(argc, argv, "-h")) {
        gw_config_usage(stdout);
        return 0;
    }
    if (has_flag(argc, argv, "--version")) {
        printf("trace-rpc-gateway %s (libmicrohttpd %s, %s)\n", GATEWAY_VERSION,
               MHD_get_version(), curl_version());
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (gw_config_load(&cfg, argc, argv, envp, err, sizeof err) < 0) {
        fprintf(stderr, "trace-rpc-gateway: %s\n", err);
        curl_global_cleanup();
        return 1;
    }
    gw_log_set_config(&cfg);
    log_configure(cfg.log_level, cfg.log_format, "trace-rpc-gateway");
    if (parse_listeners(cfg.listen, ls, &nls, err, sizeof err) < 0) {
        fprintf(stderr, "trace-rpc-gateway: %s\n", err);
        gw_config_free(&cfg);
        curl_global_cleanup();
        return 1;
    }
    if (has_flag(argc, argv, "--check-config")) {
        gw_config_dump(&cfg, stdout);
        gw_config_free(&cfg);
        curl_global_cleanup();
        return 0;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    json_object_seed(0);

    if (gw_runtime_init(&rt, &cfg, err, sizeof err) < 0) {
        gw_log(LOG_ERROR, "%s", err);
        gw_config_free(&cfg);
        return 2;
    }
    for (int i = 0; i < nls; i++) {
        if ((ls[i].is_unix ? open_unix(&ls[i], cfg.unix_socket_mode, err, sizeof err)
                           : open_tcp(&ls[i], cfg.allow_remote, err, sizeof err)) < 0) {
            gw_log(LOG_ERROR, "%s", err);
            goto shutdown;
        }
        ls[i].daemon = MHD_start_daemon(
            MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                MHD_USE_ITC | MHD_USE_ERROR_LOG,
            0, NULL, NULL, handle, &rt,
            MHD_OPTION_LISTEN_SOCKET, (MHD_socket) ls[i].fd,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned int) cfg.max_connections,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) (cfg.idle_timeout_ms / 1000),
            MHD_OPTION_NOTIFY_COMPLETED, completed, &rt,
            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
            MHD_OPTION_END);
        if (ls[i].daemon == NULL) {
            gw_log(LOG_ERROR, "listen: %s: the HTTP server did not start", ls[i].spec);
            goto shutdown;
        }
        gw_log(LOG_INFO, "listening on %s", ls[i].bound);
    }
    for (int i = 0; i < cfg.nproviders; i++) {
        const gw_provider_config *p = cfg.providers[i];
        char hosts[1024] = "";

        for (int u = 0; u < p->nurls; u++)
            snprintf(hosts + strlen(hosts), sizeof hosts - strlen(hosts), "%s%s", u ? ", " : "",
                     cfg.urls[i][u].host);
        gw_log(LOG_INFO, "provider %s: chain %lld, %.6g req/s, %d at once, urls: %s", p->name,
               (long long) p->chain_id, p->rate_limit, p->max_concurrency, hosts);
    }
    gw_log(LOG_INFO, "trace-rpc-gateway %s ready", GATEWAY_VERSION);

    while (!got_stop) {
        struct timespec ts = {0, 100 * 1000000L};

        nanosleep(&ts, NULL);
        if (got_hup) {
            got_hup = 0;
            gw_log(LOG_WARN, "SIGHUP: settings are read at start only; restart to change them");
        }
    }
    rc = 0;

shutdown:
    gw_log(LOG_INFO, "shutting down");
    for (int i = 0; i < nls; i++)
        if (ls[i].daemon != NULL) {
            MHD_socket fd = MHD_quiesce_daemon(ls[i].daemon);

            if (fd != MHD_INVALID_SOCKET)
                close(fd);
            ls[i].fd = -1;
        }
    {
        int64_t until = now_ms() + cfg.drain_timeout_ms;

        while (gw_get(&rt.active_requests) > 0 && now_ms() < until) {
            struct timespec ts = {0, 20 * 1000000L};

            nanosleep(&ts, NULL);
        }
        if (gw_get(&rt.active_requests) > 0)
            gw_log(LOG_WARN, "%llu requests still in flight after drain_timeout: failing them",
                   (unsigned long long) gw_get(&rt.active_requests));
    }
    gw_runtime_stop(&rt);
    for (int i = 0; i < nls; i++) {
        if (ls[i].daemon != NULL)
            MHD_stop_daemon(ls[i].daemon);
        else if (ls[i].fd >= 0)
            close(ls[i].fd);
        if (ls[i].is_unix && ls[i].created)
            unlink(ls[i].path);
    }
    gw_runtime_free(&rt);
    gw_log(LOG_INFO, "stopped");
    gw_log_set_config(NULL);
    gw_config_free(&cfg);
    curl_global_cleanup();
    return rc;
}
