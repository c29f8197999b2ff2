/*
 * config.c: trace-rpc-gateway's settings: one table of rows of the settings
 * engine (lib/settings.h: types, ranges, defaults, the sources and the
 * file syntax), the provider.<name>.<setting> scoping on top of it, the
 * checks that span settings, and printing them (see
 * trace-rpc-gateway.conf for the documented sample).  ${VAR} credentials
 * are secrets.c.
 *
 * Scopes: a global row lives in gw_config; a provider row in each
 * gw_provider_config, and written without the prefix it is the default for
 * every provider that does not set it, wherever the line is.  `url` and
 * `header` may repeat (each adds one, in order; the first URL is
 * preferred); any other repeated setting takes the last value.  The
 * environment sets top-level rows: TRACE_GATEWAY_<NAME>.
 *
 * Nothing here ever prints a resolved URL: errors name the provider and the
 * URL's position, --check-config shows the host.
 */
#define _GNU_SOURCE
#include "gateway.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_server.h"
#include "log.h"
#include "settings.h"
#include "util.h"

#define G(f) offsetof(gw_config, f)
#define P(f) offsetof(gw_provider_config, f)
#define SEC 1000.0
#define MB  (1024.0 * 1024)

const char *const gw_default_methods[] = {
    "eth_blockNumber", "eth_chainId", "eth_getBlockByNumber", "eth_getBlockByHash",
    "eth_getBlockReceipts", "eth_getTransactionReceipt", "eth_getLogs", "eth_call",
    "net_version", "web3_clientVersion", NULL,
};

/* ---- the custom rows: methods, url, header ------------------------------ */

static void
free_methods(gw_provider_config *p)
{
    for (int i = 0; i < p->nmethods; i++)
        free(p->methods[i]);
    p->nmethods = 0;
}

/* Appends one allow-list entry (n bytes) to p.  0 or -1 with err. */
static int
add_method(gw_provider_config *p, const char *m, size_t n, const char *where, char *err,
           size_t errlen)
{
    if (p->nmethods >= GW_MAX_METHODS) {
        set_err(err, errlen, "%s: methods: more than %d entries", where, GW_MAX_METHODS);
        return -1;
    }
    if ((p->methods[p->nmethods] = strndup(m, n)) == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    p->nmethods++;
    return 0;
}

/* Whether m (n bytes) is a method name, or a prefix ending in '*'. */
static int
valid_method_entry(const char *m, size_t n)
{
    if (n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char) m[i]) || m[i] == '_' || (m[i] == '*' && i == n - 1)))
            return 0;
    return 1;
}

/* "default, eth_getBalance, debug_*" into p's allow-list (all or nothing). */
static int
methods_parse(void *base, const setting *s, const char *value, const char *where, char *err,
              size_t errlen)
{
    gw_provider_config *p = base, tmp = {0};
    const char *c = value;

    (void) s;
    while (*c) {
        const char *start;
        size_t n;
        int rc = 0;

        while (*c == ',' || isspace((unsigned char) *c))
            c++;
        if (*c == '\0')
            break;
        start = c;
        while (*c && *c != ',' && !isspace((unsigned char) *c))
            c++;
        n = (size_t) (c - start);
        if (n == 7 && strncmp(start, "default", 7) == 0) {
            for (int i = 0; gw_default_methods[i] && rc == 0; i++)
                rc = add_method(&tmp, gw_default_methods[i], strlen(gw_default_methods[i]), where,
                                err, errlen);
        } else if (!valid_method_entry(start, n)) {
            set_err(err, errlen, "%s: methods: \"%.*s\" is not a method name (letters, digits, _; a final * for a prefix)",
                    where, (int) (n > 128 ? 128 : n), start);
            rc = -1;
        } else
            rc = add_method(&tmp, start, n, where, err, errlen);
        if (rc < 0) {
            free_methods(&tmp);
            return -1;
        }
    }
    free_methods(p);
    memcpy(p->methods, tmp.methods, sizeof tmp.methods);
    p->nmethods = tmp.nmethods;
    return 0;
}

static void
methods_format(const void *base, const setting *s, char *buf, size_t n)
{
    const gw_provider_config *p = base;
    size_t len = 0;

    (void) s;
    buf[0] = '\0';
    for (int i = 0; i < p->nmethods && len + 1 < n; i++)
        len += (size_t) snprintf(buf + len, n - len, "%s%s", i ? ", " : "'", p->methods[i]);
    if (len + 2 < n)
        strcat(buf, "'");
}

static int
methods_copy(void *dst, const void *src, const setting *s)
{
    gw_provider_config *d = dst;
    const gw_provider_config *f = src;

    (void) s;
    free_methods(d);
    for (int i = 0; i < f->nmethods; i++) {
        if ((d->methods[i] = strdup(f->methods[i])) == NULL)
            return -1;
        d->nmethods = i + 1;
    }
    return 0;
}

static void
methods_free(void *base, const setting *s)
{
    (void) s;
    free_methods(base);
}

/* url and header: each occurrence adds a template (as written, ${VAR}
 * unresolved); the resolved values are made by gw_config_finish. */
static int
template_parse(void *base, const setting *s, const char *value, const char *where, char *err,
               size_t errlen)
{
    gw_provider_config *p = base;
    int is_url = strcmp(s->name, "url") == 0;
    int *n = is_url ? &p->nurls : &p->nheaders;
    int max = is_url ? GW_MAX_URLS : GW_MAX_HEADERS;
    char **slots = is_url ? p->url_templates : p->header_templates;

    if (*n >= max) {
        set_err(err, errlen, "%s: more than %d %ss for provider \"%s\"", where, max, s->name,
                p->name);
        return -1;
    }
    if ((slots[*n] = strdup(value)) == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    (*n)++;
    return 0;
}

/* Printed by gw_config_dump itself: by host, credentials masked. */
static void
template_format(const void *base, const setting *s, char *buf, size_t n)
{
    (void) base;
    (void) s;
    if (n)
        buf[0] = '\0';
}

static void
template_free(void *base, const setting *s)
{
    gw_provider_config *p = base;

    if (strcmp(s->name, "url") == 0) {
        for (int i = 0; i < p->nurls; i++)
            free(p->url_templates[i]);
        p->nurls = 0;
        return;
    }
    for (int i = 0; i < p->nheaders; i++) {
        free(p->header_templates[i]);
        free(p->headers[i]);
        p->headers[i] = NULL;
    }
    p->nheaders = 0;
}

static const setting_ops methods_ops = {methods_parse, methods_format, methods_copy, methods_free};
static const setting_ops url_ops = {template_parse, template_format, NULL, template_free};
static const setting_ops header_ops = {template_parse, template_format, NULL, template_free};

/* ---- the table ---------------------------------------------------------- */

static const setting rows[] = {
    /* The server. */
    {"listen", SET_STRING, G(listen), 0, 0, "127.0.0.1:8545", GW_GLOBAL,
     "where to listen: host:port or unix:/path, comma-separated (at most 4)"},
    {"allow_remote", SET_BOOL, G(allow_remote), 0, 1, "off", GW_GLOBAL,
     "allow listening on a non-loopback address (the gateway has no authentication)"},
    {"unix_socket_mode", SET_MODE, G(unix_socket_mode), 0, 0777, "0660", GW_GLOBAL,
     "permissions of a unix: listening socket"},
    {"max_request_size", SET_SIZE, G(max_request_bytes), 1024, 256 * MB, "1MB", GW_GLOBAL,
     "largest request body a client may send (413 beyond)"},
    {"max_batch", SET_INT, G(max_batch), 1, 100000, "1000", GW_GLOBAL,
     "most requests in one JSON-RPC batch"},
    {"max_connections", SET_INT, G(max_connections), 1, 65536, "256", GW_GLOBAL,
     "most client connections at once (one thread each)"},
    {"idle_timeout", SET_DURATION, G(idle_timeout_ms), 1 * SEC, 3600 * SEC, "60s", GW_GLOBAL,
     "an idle client connection is closed after this long"},
    {"drain_timeout", SET_DURATION, G(drain_timeout_ms), 0, 3600 * SEC, "10s", GW_GLOBAL | SET_RELOADABLE,
     "on SIGTERM, how long requests in flight may finish"},
    {"log_level", SET_ENUM, G(log_level), 0, 0, "info", GW_GLOBAL | SET_RELOADABLE,
     "debug, info, warn or error", settings_log_levels},
    {"log_format", SET_ENUM, G(log_format), 0, 0, "text", GW_GLOBAL | SET_RELOADABLE,
     "text or json (one object per line)", settings_log_formats},

    /* Per provider. */
    {"chain_id", SET_INT64, P(chain_id), 1, 9007199254740991.0, "", GW_PROVIDER_ONLY | SET_NO_ENV,
     "the chain this provider serves (required; checked against eth_chainId)"},
    {"url", SET_CUSTOM, 0, 0, 0, "", GW_PROVIDER_ONLY | SET_NO_ENV,
     "an upstream URL (repeat for failover, preferred first); ${VAR} = environment", NULL, &url_ops},
    {"header", SET_CUSTOM, 0, 0, 0, "", GW_PROVIDER_ONLY | SET_NO_ENV,
     "an extra request header \"Name: value\" (repeatable); ${VAR} = environment", NULL, &header_ops},
    {"rate_limit", SET_DOUBLE, P(rate_limit), 0.1, 1e6, "50", GW_PROVIDER,
     "hard cap of JSON-RPC calls per second sent upstream (a batch of n counts n)"},
    {"rate_min", SET_DOUBLE, P(rate_min), 0.01, 1e6, "1", GW_PROVIDER,
     "the floor AIMD never cuts the rate below"},
    {"rate_increase", SET_DOUBLE, P(rate_increase), 0, 1e6, "2", GW_PROVIDER,
     "additive increase: requests/s regained per second without a limit signal"},
    {"rate_decrease", SET_DOUBLE, P(rate_decrease), 0.05, 0.95, "0.5", GW_PROVIDER,
     "multiplicative decrease on 429, 503 or JSON-RPC -32005"},
    {"max_concurrency", SET_INT, P(max_concurrency), 1, 1024, "8", GW_PROVIDER,
     "upstream requests in flight at once (each slot keeps its connections)"},
    {"connect_timeout", SET_DURATION, P(connect_timeout_ms), 10, 600 * SEC, "5s", GW_PROVIDER,
     "TCP + TLS connect timeout of one attempt"},
    {"timeout", SET_DURATION, P(timeout_ms), 10, 3600 * SEC, "30s", GW_PROVIDER,
     "total time one upstream attempt may take"},
    {"low_speed_limit", SET_SIZE, P(low_speed_bytes), 1, 1024 * MB, "1kB", GW_PROVIDER,
     "an attempt slower than this many bytes/s ..."},
    {"low_speed_time", SET_DURATION, P(low_speed_time_ms), 1 * SEC, 3600 * SEC, "10s", GW_PROVIDER,
     "... for this long is abandoned (whole seconds)"},
    {"request_timeout", SET_DURATION, P(request_timeout_ms), 10, 3600 * SEC, "60s", GW_PROVIDER,
     "budget of one client request, retries, waits and range splits included"},
    {"queue_timeout", SET_DURATION, P(queue_timeout_ms), 0, 3600 * SEC, "10s", GW_PROVIDER,
     "longest wait for a rate token or a concurrency slot (503 beyond)"},
    {"retries", SET_INT, P(retries), 0, 100, "3", GW_PROVIDER,
     "retries after a failed attempt (on the next healthy URL when there is one)"},
    {"backoff_base", SET_DURATION, P(backoff_base_ms), 1, 3600 * SEC, "100ms", GW_PROVIDER,
     "first retry delay (doubling per retry)"},
    {"backoff_max", SET_DURATION, P(backoff_max_ms), 1, 3600 * SEC, "5s", GW_PROVIDER,
     "largest retry delay"},
    {"jitter", SET_DOUBLE, P(jitter), 0, 1, "0.2", GW_PROVIDER,
     "retry delays are scaled by a random factor in [1 - jitter, 1 + jitter]"},
    {"retry_after_max", SET_DURATION, P(retry_after_max_ms), 0, 3600 * SEC, "30s", GW_PROVIDER,
     "longest Retry-After honoured (a URL is not used before it passes)"},
    {"max_response_size", SET_SIZE, P(max_response_bytes), 1024, 4096 * MB, "32MB", GW_PROVIDER,
     "largest upstream response, enforced while it streams"},
    {"failure_threshold", SET_INT, P(failure_threshold), 1, 1000, "3", GW_PROVIDER,
     "consecutive failures that take a URL down"},
    {"cooldown", SET_DURATION, P(cooldown_ms), 10, 3600 * SEC, "2s", GW_PROVIDER,
     "how long a URL stays down first (doubling while it keeps failing)"},
    {"cooldown_max", SET_DURATION, P(cooldown_max_ms), 10, 86400 * SEC, "60s", GW_PROVIDER,
     "longest a URL stays down before it is tried again"},
    {"verify_chain_id", SET_BOOL, P(verify_chain_id), 0, 1, "on", GW_PROVIDER,
     "ask each URL eth_chainId before using it; a mismatch disables the URL"},
    {"getlogs_max_splits", SET_INT, P(getlogs_max_splits), 0, 4096, "32", GW_PROVIDER,
     "most sub-requests one eth_getLogs may be split into on \"range too large\""},
    {"methods", SET_CUSTOM, 0, 0, 0, "default", GW_PROVIDER,
     "allowed methods, comma-separated; \"default\" = the follower's read methods; x_* = prefix", NULL, &methods_ops},
};

const settings_table gw_settings = {
    .program = "trace-rpc-gateway",
    .rows = rows,
    .n = ARRAY_LEN(rows),
    .env_prefix = "TRACE_GATEWAY_",
    .config_env = "TRACE_GATEWAY_CONFIG",
};

/* ---- setting values ----------------------------------------------------- */

int
gw_config_find_provider(const gw_config *cfg, const char *name, size_t len)
{
    for (int i = 0; i < cfg->nproviders; i++)
        if (strlen(cfg->providers[i]->name) == len &&
            strncmp(cfg->providers[i]->name, name, len) == 0)
            return i;
    return -1;
}

static int
valid_provider_name(const char *s, size_t n)
{
    if (n == 0 || n > GW_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char) s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* The provider called name (len bytes), made when new. */
static gw_provider_config *
get_provider(gw_config *cfg, const char *name, size_t len, const char *where, char *err,
             size_t errlen)
{
    int i = gw_config_find_provider(cfg, name, len);
    gw_provider_config *p;

    if (i >= 0)
        return cfg->providers[i];
    if (!valid_provider_name(name, len)) {
        set_err(err, errlen, "%s: invalid provider name \"%.*s\" (letters, digits, _ and -, at most %d)",
                where, (int) (len > 80 ? 80 : len), name, GW_NAME_MAX);
        return NULL;
    }
    if (cfg->nproviders >= GW_MAX_PROVIDERS) {
        set_err(err, errlen, "%s: more than %d providers", where, GW_MAX_PROVIDERS);
        return NULL;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(p->name, name, len);
    p->name[len] = '\0';
    cfg->providers[cfg->nproviders++] = p;
    return p;
}

/* "provider.<p>.<setting>": the row, set on that provider. */
static int
set_provider_setting(gw_config *cfg, const char *name, size_t len, const char *value,
                     const char *where, char *err, size_t errlen)
{
    const char *pname = name + 9, *dot = memchr(pname, '.', len - 9);
    const setting *s;
    gw_provider_config *p;
    size_t slen;

    if (dot == NULL) {
        set_err(err, errlen, "%s: expected provider.<name>.<setting>, got \"%.*s\"", where,
                (int) len, name);
        return -1;
    }
    slen = len - (size_t) (dot + 1 - name);
    s = settings_find(&gw_settings, dot + 1, slen);
    if (s == NULL || (s->flags & GW_GLOBAL)) {
        set_err(err, errlen, "%s: unknown provider setting \"%.*s\"", where, (int) slen, dot + 1);
        return SETTINGS_UNKNOWN;
    }
    p = get_provider(cfg, pname, (size_t) (dot - pname), where, err, errlen);
    if (p == NULL || settings_set(s, p, value, where, err, errlen) < 0)
        return -1;
    p->set_mask |= 1ull << (s - rows);
    return 0;
}

/* Sets "name" or "provider.<p>.name" from text (the sources' setter). */
int
gw_config_setn(gw_config *cfg, const char *name, size_t len, const char *value, const char *where,
               char *err, size_t errlen)
{
    const setting *s;

    if (len > 9 && strncasecmp(name, "provider.", 9) == 0)
        return set_provider_setting(cfg, name, len, value, where, err, errlen);
    s = settings_find(&gw_settings, name, len);
    if (s == NULL) {
        set_err(err, errlen, "%s: unknown setting \"%.*s\"", where, (int) len, name);
        return SETTINGS_UNKNOWN;
    }
    if (s->flags & GW_PROVIDER_ONLY) {
        set_err(err, errlen, "%s: \"%s\" is set per provider: provider.<name>.%s", where,
                s->name, s->name);
        return -1;
    }
    return settings_set(s, (s->flags & GW_GLOBAL) ? (void *) cfg : (void *) &cfg->defaults, value,
                        where, err, errlen);
}

int
gw_config_set(gw_config *cfg, const char *name, const char *value, const char *source,
              char *err, size_t errlen)
{
    return gw_config_setn(cfg, name, strlen(name), value, source, err, errlen) < 0 ? -1 : 0;
}

int
gw_config_defaults(gw_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    if (settings_defaults(&gw_settings, cfg, GW_PROVIDER | GW_PROVIDER_ONLY, err, errlen) < 0 ||
        settings_defaults(&gw_settings, &cfg->defaults, GW_GLOBAL | GW_PROVIDER_ONLY, err,
                          errlen) < 0) {
        gw_config_free(cfg);
        return -1;
    }
    return 0;
}

static void
free_provider(gw_provider_config *p)
{
    settings_free(&gw_settings, p, GW_GLOBAL);
}

void
gw_config_free(gw_config *cfg)
{
    settings_free(&gw_settings, cfg, GW_PROVIDER | GW_PROVIDER_ONLY);
    free(cfg->config_file);
    free_provider(&cfg->defaults);
    for (int i = 0; i < cfg->nproviders; i++) {
        gw_provider_config *p = cfg->providers[i];

        if (cfg->urls[i] != NULL)
            for (int k = 0; k < p->nurls; k++)
                free(cfg->urls[i][k].url);
        free(cfg->urls[i]);
        free_provider(p);
        free(p);
    }
    for (int i = 0; i < cfg->nsecrets; i++)
        free(cfg->secrets[i]);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- resolution and checks (credentials: secrets.c) --------------------- */

/* Unset provider settings take the top-level value. */
static int
inherit_defaults(gw_provider_config *p, const gw_provider_config *defaults, char *err,
                 size_t errlen)
{
    for (size_t k = 0; k < ARRAY_LEN(rows); k++) {
        if (!(rows[k].flags & GW_PROVIDER) || (p->set_mask & (1ull << k)))
            continue;
        if (settings_copy(&rows[k], p, defaults) < 0) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The checks that span settings of one provider. */
static int
check_provider(const gw_provider_config *p, char *err, size_t errlen)
{
    if (p->nurls == 0) {
        set_err(err, errlen, "provider \"%s\": no url (provider.%s.url = ...)", p->name, p->name);
        return -1;
    }
    if (!(p->set_mask & (1ull << (settings_find(&gw_settings, "chain_id", 8) - rows)))) {
        set_err(err, errlen, "provider \"%s\": chain_id is not set", p->name);
        return -1;
    }
    if (p->rate_min > p->rate_limit) {
        set_err(err, errlen, "provider \"%s\": rate_min (%g) is above rate_limit (%g)",
                p->name, p->rate_min, p->rate_limit);
        return -1;
    }
    if (p->backoff_base_ms > p->backoff_max_ms || p->cooldown_ms > p->cooldown_max_ms) {
        set_err(err, errlen, "provider \"%s\": backoff_base/cooldown above backoff_max/cooldown_max",
                p->name);
        return -1;
    }
    if (p->nmethods == 0) {
        set_err(err, errlen, "provider \"%s\": the method allow-list is empty", p->name);
        return -1;
    }
    return 0;
}

/* Resolves provider i's URLs and headers (${VAR}s from envp); their
 * credentials become secrets. */
static int
resolve_provider(gw_config *cfg, int i, char *const *envp, char *err, size_t errlen)
{
    gw_provider_config *p = cfg->providers[i];
    char what[160];

    if ((cfg->urls[i] = calloc((size_t) p->nurls, sizeof(gw_url))) == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    for (int k = 0; k < p->nurls; k++) {
        snprintf(what, sizeof what, "provider \"%s\" url %d", p->name, k + 1);
        if (gw_resolve(cfg, p->url_templates[k], envp, what, &cfg->urls[i][k].url, err,
                       errlen) < 0 ||
            gw_check_url(cfg, &cfg->urls[i][k], what, err, errlen) < 0)
            return -1;
    }
    for (int k = 0; k < p->nheaders; k++) {
        const char *colon;

        snprintf(what, sizeof what, "provider \"%s\" header %d", p->name, k + 1);
        if (gw_resolve(cfg, p->header_templates[k], envp, what, &p->headers[k], err, errlen) < 0)
            return -1;
        colon = strchr(p->headers[k], ':');
        if (colon == NULL || colon == p->headers[k] || strpbrk(p->headers[k], "\r\n")) {
            set_err(err, errlen, "%s: expected \"Name: value\"", what);
            return -1;
        }
        while (*++colon == ' ')
            ;
        if (gw_add_secret(cfg, colon, strlen(colon), err, errlen) < 0)
            return -1;
    }
    return 0;
}

int
gw_config_finish(gw_config *cfg, char *const *envp, char *err, size_t errlen)
{
    if (cfg->nproviders == 0) {
        set_err(err, errlen, "no provider is configured (provider.<name>.url = ...)");
        return -1;
    }
    if (http_server_check(cfg->listen, cfg->allow_remote, err, errlen) < 0)
        return -1;
    for (int i = 0; i < cfg->nproviders; i++)
        if (inherit_defaults(cfg->providers[i], &cfg->defaults, err, errlen) < 0 ||
            check_provider(cfg->providers[i], err, errlen) < 0 ||
            resolve_provider(cfg, i, envp, err, errlen) < 0)
            return -1;
    return 0;
}

/* ---- sources ------------------------------------------------------------ */

static int
set_line(void *ctx, const char *name, size_t len, const char *value, const char *where,
         char *err, size_t errlen)
{
    return gw_config_setn(ctx, name, len, value, where, err, errlen);
}

int
gw_config_parse_text(gw_config *cfg, const char *text, const char *name, char *err,
                     size_t errlen)
{
    return settings_parse_text(text, name, 1, 16384, set_line, cfg, err, errlen);
}

int
gw_config_load(gw_config *cfg, int argc, char **argv, char *const *envp, int *optind_out,
               char *err, size_t errlen)
{
    settings_source src = {
        .table = &gw_settings, .set = set_line, .ctx = cfg, .allow_dots = 1, .value_max = 16384,
    };

    if (gw_config_defaults(cfg, err, errlen) < 0)
        return -1;
    if (settings_load(&src, argc, argv, envp, optind_out, &cfg->config_file, err, errlen) < 0 ||
        gw_config_finish(cfg, envp, err, errlen) < 0) {
        gw_config_free(cfg);
        return -1;
    }
    return 0;
}

/* ---- method allow-list -------------------------------------------------- */

int
gw_method_allowed(const gw_provider_config *p, const char *method)
{
    for (int i = 0; i < p->nmethods; i++) {
        const char *m = p->methods[i];
        size_t n = strlen(m);

        if (n > 0 && m[n - 1] == '*') {
            if (strncmp(method, m, n - 1) == 0)
                return i;
        } else if (strcmp(method, m) == 0)
            return i;
    }
    return -1;
}

/* ---- printing ----------------------------------------------------------- */

/* Provider k's URLs by host and its headers by name: never a credential. */
static void
dump_templates(const gw_config *cfg, int k, FILE *out)
{
    const gw_provider_config *p = cfg->providers[k];

    for (int u = 0; u < p->nurls; u++)
        fprintf(out, "provider.%s.url = '%s://%s/...'   # url %d, path and credentials not shown\n",
                p->name, strncmp(cfg->urls[k][u].url, "https", 5) == 0 ? "https" : "http",
                cfg->urls[k][u].host, u + 1);
    for (int h = 0; h < p->nheaders; h++) {
        const char *colon = strchr(p->headers[h], ':');

        fprintf(out, "provider.%s.header = '%.*s: ****'\n", p->name,
                (int) (colon - p->headers[h]), p->headers[h]);
    }
}

void
gw_config_dump(const gw_config *cfg, FILE *out)
{
    settings_dump(&gw_settings, cfg, GW_PROVIDER | GW_PROVIDER_ONLY, "", out);
    for (int k = 0; k < cfg->nproviders; k++) {
        char prefix[GW_NAME_MAX + 16];

        snprintf(prefix, sizeof prefix, "provider.%s.", cfg->providers[k]->name);
        fprintf(out, "\n");
        settings_dump(&gw_settings, cfg->providers[k], GW_GLOBAL, prefix, out);
        dump_templates(cfg, k, out);
    }
}

/* ---- reload ------------------------------------------------------------- */

static void
append(char *buf, size_t n, const char *what)
{
    if (buf[0])
        strncat(buf, ", ", n - strlen(buf) - 1);
    strncat(buf, what, n - strlen(buf) - 1);
}

/* Whether two providers' url or header templates differ. */
static int
templates_differ(const gw_provider_config *a, const gw_provider_config *b, int urls)
{
    int na = urls ? a->nurls : a->nheaders, nb = urls ? b->nurls : b->nheaders;

    if (na != nb)
        return 1;
    for (int i = 0; i < na; i++)
        if (strcmp(urls ? a->url_templates[i] : a->header_templates[i],
                   urls ? b->url_templates[i] : b->header_templates[i]) != 0)
            return 1;
    return 0;
}

void
gw_config_restart_changes(const gw_config *cur, const gw_config *fresh, char *buf, size_t n)
{
    char what[GW_NAME_MAX + 32];

    buf[0] = '\0';
    settings_restart_changes(&gw_settings, GW_PROVIDER | GW_PROVIDER_ONLY, cur, fresh, "", buf, n);
    for (int i = 0; i < cur->nproviders; i++) {
        const gw_provider_config *p = cur->providers[i];
        int k = gw_config_find_provider(fresh, p->name, strlen(p->name));

        snprintf(what, sizeof what, "provider.%s.", p->name);
        if (k < 0) {
            what[strlen(what) - 1] = '\0';
            append(buf, n, what);
            continue;
        }
        settings_restart_changes(&gw_settings, GW_GLOBAL, p, fresh->providers[k], what, buf, n);
        if (templates_differ(p, fresh->providers[k], 1) || templates_differ(p, fresh->providers[k], 0)) {
            strncat(what, "url/header", sizeof what - strlen(what) - 1);
            append(buf, n, what);
        }
    }
    for (int k = 0; k < fresh->nproviders; k++)
        if (gw_config_find_provider(cur, fresh->providers[k]->name,
                                    strlen(fresh->providers[k]->name)) < 0) {
            snprintf(what, sizeof what, "provider.%s", fresh->providers[k]->name);
            append(buf, n, what);
        }
}

void
gw_config_apply_reloadable(gw_config *cur, const gw_config *fresh)
{
    for (size_t k = 0; k < ARRAY_LEN(rows); k++)
        if ((rows[k].flags & GW_GLOBAL) && (rows[k].flags & SET_RELOADABLE))
            (void) settings_copy(&rows[k], cur, fresh);
}
