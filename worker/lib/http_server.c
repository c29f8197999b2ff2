/*
 * http_server.c: listeners and libmicrohttpd daemons (see http_server.h).
 *
 * Memory: a request's body grows in a buffer owned by its req_ctx, freed
 * when libmicrohttpd reports the request completed; replies are handed to
 * libmicrohttpd, which frees them.  Nothing here blocks but the program's
 * handlers.
 */
#define _GNU_SOURCE
#include "http_server.h"

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* MHD_Result arrived in 0.9.71; older headers return int. */
#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

const int http_statuses[HTTP_NSTATUS] = {200, 400, 404, 405, 413, 500, 502, 503, 504, 429};

typedef struct listener {
    char    spec[300];
    int     is_unix;
    char    path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    char    host[256];
    char    port[16];
    int     fd;
    int     created;            /* we made the unix socket file: remove it at stop */
    struct MHD_Daemon *daemon;
    char    bound[300];         /* what we actually listen on, for the log */
} listener;

struct http_server {
    http_handlers         h;
    http_server_counters *c;
    http_server_counters  own;  /* when the program gave none */
    listener              ls[HTTP_MAX_LISTENERS];
    int                   n;
};

/* One request's state between libmicrohttpd's calls. */
typedef struct req_ctx {
    void   *ctx;                /* the route's */
    size_t  max;
    char   *body;
    size_t  len, cap;
    int     too_large;
    size_t  discarded;
} req_ctx;

static void
add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* ---- listeners ---------------------------------------------------------- */

/* "host:port" or "[v6]:port" into l->host and l->port. */
static int
split_host_port(listener *l, char *err, size_t errlen)
{
    const char *h = l->spec, *colon;
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
    return 0;
}

/* One listen address (len bytes at start) into l. */
static int
parse_one(listener *l, const char *start, size_t len, char *err, size_t errlen)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    if (len >= sizeof l->spec) {
        set_err(err, errlen, "listen: address too long");
        return -1;
    }
    memcpy(l->spec, start, len);
    l->spec[len] = '\0';
    if (strncmp(l->spec, "unix:", 5) != 0)
        return split_host_port(l, err, errlen);
    l->is_unix = 1;
    if (l->spec[5] != '/' || strlen(l->spec + 5) >= sizeof l->path) {
        set_err(err, errlen, "listen: \"%s\": expected unix:/absolute/path (at most %zu bytes)",
                l->spec, sizeof l->path - 1);
        return -1;
    }
    copy_str(l->path, sizeof l->path, l->spec + 5);
    return 0;
}

/* Splits "a, b" into listeners; checks their syntax.  0 or -1. */
static int
parse_listeners(const char *specs, listener *ls, int *n, char *err, size_t errlen)
{
    const char *s = specs;

    *n = 0;
    while (*s) {
        const char *start, *end;

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
        if (*n >= HTTP_MAX_LISTENERS) {
            set_err(err, errlen, "listen: more than %d addresses", HTTP_MAX_LISTENERS);
            return -1;
        }
        if (parse_one(&ls[(*n)++], start, (size_t) (end - start), err, errlen) < 0)
            return -1;
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
resolve(const listener *l, struct addrinfo **res, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    int rc = getaddrinfo(l->host[0] ? l->host : NULL, l->port, &hints, res);

    if (rc != 0) {
        set_err(err, errlen, "listen: %s: %s", l->spec, gai_strerror(rc));
        return -1;
    }
    return 0;
}

int
http_server_check(const char *listen_spec, int allow_remote, char *err, size_t errlen)
{
    listener ls[HTTP_MAX_LISTENERS];
    int n;

    if (parse_listeners(listen_spec, ls, &n, err, errlen) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        struct addrinfo *res, *ai;

        if (ls[i].is_unix || allow_remote)
            continue;
        if (resolve(&ls[i], &res, err, errlen) < 0)
            return -1;
        for (ai = res; ai != NULL && is_loopback(ai->ai_addr); ai = ai->ai_next)
            ;
        freeaddrinfo(res);
        if (ai != NULL) {
            set_err(err, errlen, "listen: %s is not a loopback address (set allow_remote = on to listen there; the program has no authentication)",
                    ls[i].spec);
            return -1;
        }
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
        /* A live socket is another process's: leave it alone. */
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

/* What fd is bound to, as "host:port" or "[v6]:port". */
static void
describe_bound(int fd, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;

    if (getsockname(fd, (struct sockaddr *) &ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, host, sizeof host);
        snprintf(out, n, "%s:%u", host, ntohs(((struct sockaddr_in *) &ss)->sin_port));
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, host, sizeof host);
        snprintf(out, n, "[%s]:%u", host, ntohs(((struct sockaddr_in6 *) &ss)->sin6_port));
    }
}

static int
open_tcp(listener *l, int allow_remote, char *err, size_t errlen)
{
    struct addrinfo *res = NULL, *ai;
    int fd = -1, one = 1;

    if (resolve(l, &res, err, errlen) < 0)
        return -1;
    set_err(err, errlen, "listen: %s: no usable address", l->spec);
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        if (!allow_remote && !is_loopback(ai->ai_addr)) {
            set_err(err, errlen, "listen: %s is not a loopback address (set allow_remote = on to listen there; the program has no authentication)",
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
        describe_bound(fd, l->bound, sizeof l->bound);
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    l->fd = fd;
    return 0;
}

/* ---- requests ----------------------------------------------------------- */

static void
count_status(http_server *s, int status)
{
    int i;

    for (i = 0; i < HTTP_NSTATUS; i++)
        if (http_statuses[i] == status)
            break;
    add(&s->c->responses[i], 1);
}

/* Queues reply (its body taken) on c. */
static mhd_result
send_reply(http_server *s, struct MHD_Connection *c, http_reply *reply)
{
    struct MHD_Response *r;
    mhd_result ret;

    if (reply->body == NULL)
        return MHD_NO;
    r = MHD_create_response_from_buffer(reply->len, reply->body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(reply->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", reply->content_type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (reply->status == 405 && reply->allow)
        MHD_add_response_header(r, "Allow", reply->allow);
    ret = MHD_queue_response(c, (unsigned int) reply->status, r);
    MHD_destroy_response(r);
    count_status(s, reply->status);
    add(&s->c->sent_bytes, reply->len);
    return ret;
}

/* The first call of a request (headers only): the route decides. */
static mhd_result
start_request(http_server *s, struct MHD_Connection *c, const char *url, const char *method,
              void **con_cls)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    http_reply reply = {0};
    req_ctx *rc = calloc(1, sizeof(*rc));

    if (rc == NULL)
        return MHD_NO;
    if (s->h.route(s->h.arg, method, url, cl ? (int64_t) strtoull(cl, NULL, 10) : -1, &rc->ctx,
                   &rc->max, &reply) == HTTP_ROUTE_REPLY) {
        free(rc);
        return send_reply(s, c, &reply);
    }
    add(&s->c->active, 1);
    *con_cls = rc;
    return MHD_YES;
}

/* Appends n bytes of body; past the cap they are counted and dropped.
 * MHD_NO closes the connection (out of memory, or a body without end). */
static mhd_result
take_body(http_server *s, req_ctx *rc, const char *url, const char *data, size_t n)
{
    add(&s->c->received_bytes, n);
    if (!rc->too_large && rc->len + n > rc->max) {
        rc->too_large = 1;
        free(rc->body);
        rc->body = NULL;
    }
    if (rc->too_large) {
        /* Read on to answer 413, but not forever. */
        rc->discarded += n;
        if (rc->discarded > 8 * rc->max) {
            log_msg(LOG_WARN, "%s: endless request body: connection closed", url);
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (buf_reserve(&rc->body, &rc->cap, rc->len + n + 1, 4096) < 0)
        return MHD_NO;
    memcpy(rc->body + rc->len, data, n);
    rc->len += n;
    rc->body[rc->len] = '\0';
    return MHD_YES;
}

static mhd_result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    http_server *s = cls;
    req_ctx *rc = *con_cls;
    http_reply reply = {0};

    (void) version;
    if (rc == NULL)
        return start_request(s, c, url, method, con_cls);
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        return take_body(s, rc, url, upload_data, n);
    }
    if (rc->too_large)
        s->h.too_large(s->h.arg, rc->ctx, rc->max, &reply);
    else
        s->h.body(s->h.arg, rc->ctx, rc->body ? rc->body : "", rc->len, &reply);
    return send_reply(s, c, &reply);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    req_ctx *rc = *con_cls;

    (void) c;
    (void) toe;
    if (rc == NULL)
        return;
    if (s->h.done)
        s->h.done(s->h.arg, rc->ctx);
    __atomic_fetch_sub(&s->c->active, 1, __ATOMIC_RELAXED);
    free(rc->body);
    free(rc);
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
    log_msg(LOG_DEBUG, "http server: %s", msg);
}

/* ---- the server --------------------------------------------------------- */

/* Binds listener l and starts its daemon. */
static int
start_one(http_server *s, listener *l, const http_server_options *opt, char *err, size_t errlen)
{
    if ((l->is_unix ? open_unix(l, opt->unix_socket_mode, err, errlen)
                    : open_tcp(l, opt->allow_remote, err, errlen)) < 0)
        return -1;
    l->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
            MHD_USE_ITC | MHD_USE_ERROR_LOG,
        0, NULL, NULL, handle, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket) l->fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) opt->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) (opt->idle_timeout_ms / 1000),
        MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_END);
    if (l->daemon == NULL) {
        set_err(err, errlen, "listen: %s: the HTTP server did not start", l->spec);
        return -1;
    }
    return 0;
}

http_server *
http_server_start(const http_server_options *opt, const http_handlers *h, char *err,
                  size_t errlen)
{
    http_server *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    s->h = *h;
    s->c = opt->counters ? opt->counters : &s->own;
    if (parse_listeners(opt->listen, s->ls, &s->n, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < s->n; i++)
        if (start_one(s, &s->ls[i], opt, err, errlen) < 0) {
            http_server_stop(s);
            return NULL;
        }
    return s;
}

const char *
http_server_address(const http_server *s, int i)
{
    return i >= 0 && i < s->n ? s->ls[i].bound : NULL;
}

void
http_server_quiesce(http_server *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->ls[i].daemon != NULL && s->ls[i].fd >= 0) {
            MHD_socket fd = MHD_quiesce_daemon(s->ls[i].daemon);

            if (fd != MHD_INVALID_SOCKET)
                close(fd);
            s->ls[i].fd = -1;
        }
}

uint64_t
http_server_active(const http_server *s)
{
    return __atomic_load_n(&s->c->active, __ATOMIC_RELAXED);
}

void
http_server_stop(http_server *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->n; i++) {
        listener *l = &s->ls[i];

        if (l->daemon != NULL)
            MHD_stop_daemon(l->daemon);
        else if (l->fd >= 0)
            close(l->fd);
        if (l->is_unix && l->created)
            unlink(l->path);
    }
    free(s);
}
