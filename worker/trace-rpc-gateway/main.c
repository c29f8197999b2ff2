/*
 * main.c: trace-rpc-gateway, the only path from Trace's workers to chain RPC
 * providers (gateway.h lists the files; lib/daemon.h has the exit codes and
 * the signals, the same in every Trace program).
 *
 * Threading: libmicrohttpd in thread-per-connection mode (lib/http_server.h
 * says why).  The main thread only waits: in daemon_wait(), with no file
 * descriptor, until a signal comes.
 *
 * SIGHUP reloads: the settings are read again and checked in full; those
 * marked reloadable (log_level, log_format, drain_timeout) are applied,
 * and every other change is named in the log as needing a restart.
 * SIGTERM (or a first SIGINT) drains: stop accepting, let requests in
 * flight finish for up to drain_timeout, then make the rest fail fast (no
 * more retries or waits), stop the listeners, remove unix sockets, exit 0.
 * A second SIGINT skips the wait (exit 1).
 *
 * This is the only file of the gateway that decides the exit code.
 */
#define _GNU_SOURCE
#include "gateway.h"
#include "upstream.h"

#include "daemon.h"
#include "http_server.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GATEWAY_VERSION "0.1"
#define DRAIN_POLL_MS 20            /* how often a drain looks at requests in flight */

static void
version_extra(FILE *out)
{
    fprintf(out, " (libmicrohttpd %s, %s)", MHD_get_version(), curl_version());
}

static const daemon_info info = {
    .program = "trace-rpc-gateway",
    .version = GATEWAY_VERSION,
    .usage = "usage: trace-rpc-gateway [options]\n"
             "\n"
             "  -c, --config FILE   config file (also TRACE_GATEWAY_CONFIG)\n"
             "  --check-config      print the effective settings (credentials hidden) and exit\n"
             "  --help, --version   (--help=markdown: the settings as a Markdown table)\n"
             "\n"
             "Settings (file: name = value; flag --name=value; top-level ones also from\n"
             "TRACE_GATEWAY_NAME).  Provider settings: provider.<name>.<setting>; given at\n"
             "top level they are the default for every provider.\n\n",
    .settings = &gw_settings,
    .scoped_flag = GW_PROVIDER | GW_PROVIDER_ONLY,
    .scoped_prefix = "[provider.<p>.]",
    .version_extra = version_extra,
};

/* SIGHUP: re-read everything; apply what may change, name the rest. */
static void
reload(gw_config *cfg, int argc, char **argv, char **envp)
{
    gw_config fresh;
    char err[1024], changed[1024] = "";

    if (gw_config_load(&fresh, argc, argv, envp, NULL, err, sizeof err) < 0) {
        daemon_log_reload_failed(err);
        return;
    }
    gw_config_restart_changes(cfg, &fresh, changed, sizeof changed);
    daemon_log_restart_needed(changed);
    gw_config_apply_reloadable(cfg, &fresh);
    gw_config_free(&fresh);
    log_configure(cfg->log_level, cfg->log_format, NULL);
    log_msg(LOG_INFO, "reloaded %s (log_level %s, drain_timeout %lldms)",
            cfg->config_file ? cfg->config_file : "settings", log_level_name(cfg->log_level),
            (long long) cfg->drain_timeout_ms);
}

/* The start: listeners up, providers named.  NULL (logged) on failure. */
static http_server *
serve(gw_runtime *rt, gw_config *cfg)
{
    http_server_options opt = {
        .listen = cfg->listen, .allow_remote = cfg->allow_remote,
        .unix_socket_mode = cfg->unix_socket_mode, .max_connections = cfg->max_connections,
        .idle_timeout_ms = cfg->idle_timeout_ms, .counters = &rt->http,
    };
    http_handlers h;
    http_server *srv;
    char err[1024];

    gw_routes(rt, &h);
    if ((srv = http_server_start(&opt, &h, err, sizeof err)) == NULL) {
        log_msg(LOG_ERROR, "%s", err);
        return NULL;
    }
    for (int i = 0; http_server_address(srv, i); i++)
        log_msg(LOG_INFO, "listening on %s", http_server_address(srv, i));
    for (int i = 0; i < cfg->nproviders; i++) {
        const gw_provider_config *p = cfg->providers[i];
        char hosts[1024] = "";

        for (int u = 0; u < p->nurls; u++)
            snprintf(hosts + strlen(hosts), sizeof hosts - strlen(hosts), "%s%s", u ? ", " : "",
                     cfg->urls[i][u].host);
        log_msg(LOG_INFO, "provider %s: chain %lld, %.6g req/s, %d at once, urls: %s", p->name,
                (long long) p->chain_id, p->rate_limit, p->max_concurrency, hosts);
    }
    log_msg(LOG_INFO, "trace-rpc-gateway %s ready", GATEWAY_VERSION);
    return srv;
}

/* Waits for signals: reloads on SIGHUP; on SIGTERM stops accepting and
 * waits for requests in flight, at most drain_timeout.  Returns the exit
 * code: 0 when drained (or the deadline passed), 1 on a second SIGINT. */
static int
run(http_server *srv, gw_config *cfg, int argc, char **argv, char **envp)
{
    daemon_state ds = {0};

    for (;;) {
        switch (daemon_next_event(&ds, cfg->drain_timeout_ms)) {
        case DAEMON_EV_RELOAD:
            reload(cfg, argc, argv, envp);
            continue;
        case DAEMON_EV_DRAIN:
            http_server_quiesce(srv);
            log_msg(LOG_INFO, "%s: draining (accepting nothing more; requests in flight have %lldms)",
                    ds.drain_signal, (long long) cfg->drain_timeout_ms);
            continue;
        case DAEMON_EV_EXIT_NOW:
            log_msg(LOG_WARN, "second SIGINT: exiting now");
            return TRACE_EXIT_RUNTIME;
        case DAEMON_EV_NONE:
            break;
        }
        if (ds.draining && (http_server_active(srv) == 0 || daemon_drain_expired(&ds, now_ms())))
            return TRACE_EXIT_OK;
        daemon_wait(NULL, 0, ds.draining ? DRAIN_POLL_MS : -1);
    }
}

/* The end: fail what is left fast, stop the listeners. */
static void
shut_down(http_server *srv, gw_runtime *rt)
{
    if (http_server_active(srv) > 0)
        log_msg(LOG_WARN, "%llu requests still in flight: failing them",
                (unsigned long long) http_server_active(srv));
    gw_runtime_stop(rt);
    http_server_stop(srv);
    log_msg(LOG_INFO, "stopped");
}

int
main(int argc, char **argv, char **envp)
{
    daemon_mode mode = daemon_options(&info, argc, argv);
    gw_config cfg;
    gw_runtime rt;
    http_server *srv;
    char err[1024];
    int rest = 0, rc;

    if (mode == DAEMON_DONE)
        return TRACE_EXIT_OK;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (gw_config_load(&cfg, argc, argv, envp, &rest, err, sizeof err) < 0) {
        fprintf(stderr, "trace-rpc-gateway: %s\n", err);
        curl_global_cleanup();
        return TRACE_EXIT_CONFIG;
    }
    if (rest < argc) {
        fprintf(stderr, "trace-rpc-gateway: unexpected argument \"%s\" (see --help)\n", argv[rest]);
        gw_config_free(&cfg);
        curl_global_cleanup();
        return TRACE_EXIT_CONFIG;
    }
    if (mode == DAEMON_CHECK_CONFIG) {
        gw_config_dump(&cfg, stdout);
        gw_config_free(&cfg);
        curl_global_cleanup();
        return TRACE_EXIT_OK;
    }
    log_set_mask(gw_log_mask, &cfg);
    log_configure(cfg.log_level, cfg.log_format, "trace-rpc-gateway");
    daemon_signals_init();
    json_object_seed(0);
    rc = TRACE_EXIT_RUNTIME;
    if (gw_runtime_init(&rt, &cfg, err, sizeof err) < 0)
        log_msg(LOG_ERROR, "%s", err);
    else {
        if ((srv = serve(&rt, &cfg)) != NULL) {
            rc = run(srv, &cfg, argc, argv, envp);
            shut_down(srv, &rt);
        }
        gw_runtime_free(&rt);
    }
    log_set_mask(NULL, NULL);
    gw_config_free(&cfg);
    curl_global_cleanup();
    return rc;
}
