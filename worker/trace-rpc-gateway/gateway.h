/*
 * gateway.h: trace-rpc-gateway, the only path from Trace's workers to chain
 * RPC providers (DESIGN.md section 8).
 *
 * Modules:
 *   gateway_main.c        the HTTP server (libmicrohttpd), listeners, signals
 *   gateway_request.c     a client body: allow-list, local answers, eth_getLogs
 *                         range splitting, the reply
 *   gateway_upstream.c    provider runtime; upstream calls with retries,
 *                         failover, rate and concurrency limits, chain id check
 *   gateway_rate.c        token bucket + AIMD, backoff, URL health (pure math)
 *   gateway_metrics.c     Prometheus text
 *   gateway_config.c      the settings table, values, checks, printing
 *   gateway_config_file.c sources: file, TRACE_GATEWAY_* environment, flags
 *   gateway_secrets.c     ${VAR} credentials in URLs and headers, redaction
 *   rpc.c                 JSON-RPC 2.0: client requests, replies, eth_getLogs ranges
 *   rpc_match.c           JSON-RPC 2.0: matching upstream responses to requests
 *   rpc_scan.c            the validating JSON scanner for large responses
 *
 * Secrets: a provider's resolved URLs and header values hold credentials.
 * They live only in gw_url.url and gw_provider_config.headers, are passed
 * only to libcurl, and every log line goes through the log's mask hook
 * (gw_log_mask), which masks every known secret string; logs and metrics
 * name a URL by its host only.
 */
#ifndef TRACE_GATEWAY_H
#define TRACE_GATEWAY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rate.h"
#include "settings.h"

#define GW_MAX_PROVIDERS   64
#define GW_MAX_URLS        16
#define GW_MAX_HEADERS     8
#define GW_MAX_METHODS     64
#define GW_MAX_LISTENERS   4
#define GW_MAX_SECRETS     256
#define GW_NAME_MAX        64

/* Why an upstream attempt failed: the "class" label of the error metrics. */
enum gw_fail_class {
    GW_FAIL_TIMEOUT = 0,    /* connect, total or low-speed timeout */
    GW_FAIL_CONNECT,        /* refused, unreachable, unresolvable */
    GW_FAIL_TOO_LARGE,      /* response passed max_response_size */
    GW_FAIL_TRUNCATED,      /* closed before Content-Length bytes arrived */
    GW_FAIL_TRANSPORT,      /* any other transport failure (TLS, protocol) */
    GW_FAIL_REDIRECT,       /* a 3xx: never followed */
    GW_FAIL_HTTP_429,
    GW_FAIL_HTTP_5XX,
    GW_FAIL_HTTP_4XX,       /* other statuses that are not a JSON-RPC answer */
    GW_FAIL_INVALID_JSON,   /* not JSON, or not a JSON-RPC 2.0 response */
    GW_FAIL_ID_MISMATCH,    /* ids missing, extra, duplicated or wrong */
    GW_FAIL_RPC_LIMIT,      /* JSON-RPC rate-limit error (-32005, 429, ...) */
    GW_FAIL_WRONG_CHAIN,    /* eth_chainId differs from the configured one */
    GW_FAIL_RPC_ERROR,      /* an upstream JSON-RPC error, passed through */
    GW_FAIL_NCLASSES
};

const char *gw_fail_class_name(int cls);

/* What became of one client JSON-RPC request: the "outcome" label. */
enum gw_outcome {
    GW_OUT_OK = 0,          /* a result */
    GW_OUT_RPC_ERROR,       /* an upstream JSON-RPC error, passed through */
    GW_OUT_NOT_ALLOWED,     /* method outside the allow-list (-32601) */
    GW_OUT_INVALID,         /* not a valid JSON-RPC request (-32600) */
    GW_OUT_FAILED,          /* upstream exhausted: 502 */
    GW_OUT_RATE_LIMITED,    /* no capacity: 503 */
    GW_OUT_TIMEOUT,         /* upstream timed out: 504 */
    GW_OUT_NOUTCOMES
};

const char *gw_outcome_name(int out);

/* One upstream URL of a provider: the credentials-bearing URL (secret) and
 * its health, guarded by the provider's mutex. */
typedef struct gw_url {
    char       *url;            /* resolved; secret: only ever given to libcurl */
    char        host[300];      /* "host:port", what logs and metrics show */
    gw_health   health;
    int         chain_state;    /* 0 unverified, 1 verified, -1 wrong chain */
} gw_url;

/* A provider's settings.  Every field but name/chain_id/urls/headers can be
 * given at top level as the default for all providers. */
typedef struct gw_provider_config {
    char    name[GW_NAME_MAX + 1];
    int64_t chain_id;
    int     nurls;
    char   *url_templates[GW_MAX_URLS];   /* as written, with ${VAR} */
    int     nheaders;
    char   *header_templates[GW_MAX_HEADERS];
    char   *headers[GW_MAX_HEADERS + 1];  /* resolved, NULL-terminated; secret */

    double  rate_limit;         /* hard cap, requests/s */
    double  rate_min;           /* AIMD floor */
    double  rate_increase;      /* requests/s regained per second */
    double  rate_decrease;      /* factor applied on a limit signal */
    int     max_concurrency;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;         /* one upstream attempt */
    int64_t low_speed_bytes;
    int64_t low_speed_time_ms;
    int64_t request_timeout_ms; /* a client request, retries included */
    int64_t queue_timeout_ms;   /* longest wait for a token or a slot */
    int     retries;
    int64_t backoff_base_ms;
    int64_t backoff_max_ms;
    double  jitter;             /* fraction, 0..1 */
    int64_t retry_after_max_ms;
    int64_t max_response_bytes;
    int     failure_threshold;
    int64_t cooldown_ms;
    int64_t cooldown_max_ms;
    int     verify_chain_id;
    int     getlogs_max_splits;
    int     nmethods;
    char   *methods[GW_MAX_METHODS];      /* allow-list; "x_*" is a prefix */

    uint64_t set_mask;          /* which settings were given for this provider */
} gw_provider_config;

typedef struct gw_config {
    char   *listen;             /* comma-separated host:port or unix:/path */
    int     allow_remote;
    int     unix_socket_mode;
    int64_t max_request_bytes;
    int     max_batch;
    int     max_connections;
    int64_t idle_timeout_ms;
    int64_t drain_timeout_ms;
    int     log_level;
    int     log_format;

    gw_provider_config defaults;
    int     nproviders;
    gw_provider_config *providers[GW_MAX_PROVIDERS];

    /* Resolved upstream URLs, per provider (parallel to providers[]). */
    gw_url *urls[GW_MAX_PROVIDERS];

    /* Strings that must never reach a log line. */
    int     nsecrets;
    char   *secrets[GW_MAX_SECRETS];

    char   *config_file;
} gw_config;

/* ---- config.c ------------------------------------------------------------ */

/* The scopes of the settings table's rows (settings engine flags). */
#define GW_GLOBAL        (SET_PROGRAM_FLAG << 0)   /* top level only (gw_config) */
#define GW_PROVIDER      (SET_PROGRAM_FLAG << 1)   /* per provider; top level = default for all */
#define GW_PROVIDER_ONLY (SET_PROGRAM_FLAG << 2)   /* per provider only */

/* The table: --help, --check-config, reload. */
extern const settings_table gw_settings;

/* Defaults, then the file (--config / -c, else TRACE_GATEWAY_CONFIG), then
 * TRACE_GATEWAY_<NAME> variables (top-level settings), then --name=value
 * flags (any setting, also provider.<p>.<name>); parsing stops at the
 * first argument that is not an option (*optind_out).  ${VAR} in URLs
 * and headers is resolved from envp.  0, or -1 with err filled (never
 * quoting a URL or a secret); on error cfg is freed. */
int gw_config_load(gw_config *cfg, int argc, char **argv, char *const *envp, int *optind_out,
                   char *err, size_t errlen);

/* The steps of gw_config_load, for the unit tests. */
int gw_config_defaults(gw_config *cfg, char *err, size_t errlen);
int gw_config_parse_text(gw_config *cfg, const char *text, const char *name,
                         char *err, size_t errlen);
int gw_config_set(gw_config *cfg, const char *name, const char *value,
                  const char *source, char *err, size_t errlen);
/* The same with a name of len bytes (not NUL-terminated); SETTINGS_UNKNOWN
 * for a name that is no setting. */
int gw_config_setn(gw_config *cfg, const char *name, size_t len, const char *value,
                   const char *source, char *err, size_t errlen);
/* Fills unset provider settings from the top-level defaults, resolves
 * ${VAR}s, parses URLs and checks every provider. */
int gw_config_finish(gw_config *cfg, char *const *envp, char *err, size_t errlen);

void gw_config_dump(const gw_config *cfg, FILE *out);

/* A reload: the settings that differ between cur and fresh and need a
 * restart (provider.<p>.<name>, a provider added or gone), comma-separated
 * into buf; then the reloadable ones copied from fresh into cur. */
void gw_config_restart_changes(const gw_config *cur, const gw_config *fresh, char *buf, size_t n);
void gw_config_apply_reloadable(gw_config *cur, const gw_config *fresh);
void gw_config_free(gw_config *cfg);

/* The provider called name, or -1. */
int gw_config_find_provider(const gw_config *cfg, const char *name, size_t len);

/* Index of method in p's allow-list, or -1 when it is not allowed. */
int gw_method_allowed(const gw_provider_config *p, const char *method);

/* The default allow-list, NULL-terminated. */
extern const char *const gw_default_methods[];

/* ---- secrets.c ------------------------------------------------ */

/* Records s (n bytes; ignored below 4) as a secret of cfg.  0 or -1. */
int gw_add_secret(gw_config *cfg, const char *s, size_t n, char *err, size_t errlen);

/* tmpl with each ${VAR} replaced from envp (malloc'd into *out); each value
 * becomes a secret.  what names the template in errors.  0 or -1. */
int gw_resolve(gw_config *cfg, const char *tmpl, char *const *envp, const char *what,
               char **out, char *err, size_t errlen);

/* Checks a resolved URL (http or https, a host, no fragment), fills
 * u->host with host:port and records its credential-bearing parts as
 * secrets.  Errors never quote the URL.  0 or -1. */
int gw_check_url(gw_config *cfg, gw_url *u, const char *what, char *err, size_t errlen);

/* Replaces every secret of cfg found in buf with "****" (in place). */
void gw_redact(const gw_config *cfg, char *buf, size_t size);

/* The log's mask hook (log_set_mask): gw_redact with cfg (a gw_config). */
void gw_log_mask(char *msg, size_t size, void *cfg);

#endif
