/*
 * routes.c: what the gateway answers on its HTTP listeners (lib/http_server
 * does the sockets, threads and bodies):
 *
 *   POST /rpc/<provider>   a JSON-RPC 2.0 request or batch, forwarded
 *                          (request.c); 404 for an unknown provider, 405
 *                          for another method, 413 past max_request_size
 *   GET  /metrics          Prometheus text (metrics.c)
 *   GET  /healthz          "ok"
 *
 * Errors are JSON-RPC error bodies (id null) with the HTTP status, except
 * on the two GET routes, which answer text.
 */
#define _GNU_SOURCE
#include "upstream.h"

#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
text_reply(http_reply *r, int status, const char *text)
{
    r->status = status;
    r->content_type = "text/plain";
    r->body = strdup(text);
    r->len = r->body ? strlen(r->body) : 0;
    r->allow = "GET, HEAD";
}

static void json_reply(http_reply *r, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A JSON-RPC error body (id null) with an HTTP status. */
static void
json_reply(http_reply *r, int status, int code, const char *fmt, ...)
{
    char msg[512];
    gw_reply g;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gw_reply_error(&g, status, code, "%s", msg);
    r->status = g.status;
    r->content_type = "application/json";
    r->body = g.body;
    r->len = g.len;
    r->allow = "POST";
}

/* GET /healthz and GET /metrics. */
static int
route_get(gw_runtime *rt, const char *method, const char *url, http_reply *reply)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        text_reply(reply, 405, "method not allowed\n");
        return HTTP_ROUTE_REPLY;
    }
    if (strcmp(url, "/healthz") == 0) {
        text_reply(reply, 200, "ok\n");
        return HTTP_ROUTE_REPLY;
    }
    reply->status = 200;
    reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply->body = gw_metrics_render(rt, &reply->len);
    return HTTP_ROUTE_REPLY;
}

/* POST /rpc/<provider>: which provider, and whether the body may come. */
static int
route_rpc(gw_runtime *rt, const char *method, const char *name, int64_t content_length,
          void **ctx, size_t *max_body, http_reply *reply)
{
    int p = gw_config_find_provider(rt->cfg, name, strlen(name));

    if (p < 0) {
        char shown[GW_NAME_MAX + 1];
        size_t n = strnlen(name, GW_NAME_MAX);

        /* The name as asked, printable characters only. */
        for (size_t i = 0; i < n; i++)
            shown[i] = (name[i] > 0x20 && name[i] < 0x7f && name[i] != '"' && name[i] != '\\')
                       ? name[i] : '?';
        shown[n] = '\0';
        json_reply(reply, 404, RPC_INVALID_REQUEST, "gateway: unknown provider \"%s\"", shown);
        return HTTP_ROUTE_REPLY;
    }
    if (strcmp(method, "POST") != 0) {
        json_reply(reply, 405, RPC_INVALID_REQUEST, "gateway: use POST for JSON-RPC");
        return HTTP_ROUTE_REPLY;
    }
    if (content_length > rt->cfg->max_request_bytes) {
        log_msg(LOG_WARN, "provider=%s: request of %lld bytes refused (max_request_size %lld)",
                rt->cfg->providers[p]->name, (long long) content_length,
                (long long) rt->cfg->max_request_bytes);
        json_reply(reply, 413, RPC_INVALID_REQUEST, "gateway: request body larger than %lld bytes",
                   (long long) rt->cfg->max_request_bytes);
        return HTTP_ROUTE_REPLY;
    }
    *ctx = (void *) (intptr_t) p;
    *max_body = (size_t) rt->cfg->max_request_bytes;
    return HTTP_ROUTE_BODY;
}

static int
route(void *arg, const char *method, const char *url, int64_t content_length, void **ctx,
      size_t *max_body, http_reply *reply)
{
    gw_runtime *rt = arg;

    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/metrics") == 0)
        return route_get(rt, method, url, reply);
    if (strncmp(url, "/rpc/", 5) == 0)
        return route_rpc(rt, method, url + 5, content_length, ctx, max_body, reply);
    json_reply(reply, 404, RPC_INVALID_REQUEST,
               "gateway: not found (POST /rpc/<provider>, GET /metrics, GET /healthz)");
    return HTTP_ROUTE_REPLY;
}

/* The body is in: forward it. */
static void
body(void *arg, void *ctx, const char *text, size_t len, http_reply *reply)
{
    gw_runtime *rt = arg;
    gw_reply g;

    gw_forward(rt, &rt->providers[(intptr_t) ctx], text, len, &g);
    if (g.body == NULL)
        gw_reply_error(&g, 500, RPC_INTERNAL_ERROR, "gateway: out of memory");
    reply->status = g.status;
    reply->content_type = "application/json";
    reply->body = g.body;
    reply->len = g.len;
}

static void
too_large(void *arg, void *ctx, size_t max_body, http_reply *reply)
{
    gw_runtime *rt = arg;

    log_msg(LOG_WARN, "provider=%s: request body over %zu bytes refused",
            rt->cfg->providers[(intptr_t) ctx]->name, max_body);
    json_reply(reply, 413, RPC_INVALID_REQUEST, "gateway: request body larger than %zu bytes",
               max_body);
}

void
gw_routes(gw_runtime *rt, http_handlers *h)
{
    memset(h, 0, sizeof(*h));
    h->arg = rt;
    h->route = route;
    h->body = body;
    h->too_large = too_large;
}
