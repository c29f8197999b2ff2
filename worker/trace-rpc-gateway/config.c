/*
 * gateway_config.c: trace-rpc-gateway's settings: one table listing each
 * with its type, range, default and scope, their values and checks, and
 * printing them (see trace-rpc-gateway.conf for the documented sample).
 * Where values come from (file syntax, environment, flags) is
 * gateway_config_file.c; ${VAR} credentials are gateway_secrets.c.
 *
 * Provider settings are written provider.<name>.<setting>; a provider
 * setting written without the prefix is the default for every provider
 * that does not set it, wherever the line is.  `url` and `header` may
 * repeat (each adds one, in order; the first URL is preferred); any other
 * repeated setting takes the last value.
 *
 * Nothing here ever prints a resolved URL: errors name the provider and the
 * URL's position, --check-config shows the host.
 */
#define _GNU_SOURCE
#include "gateway.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "conf.h"
#include "util.h"

enum cfg_type {
    T_STR, T_BOOL, T_INT, T_INT64, T_DOUBLE, T_DURATION, T_SIZE, T_LEVEL, T_FORMAT,
    T_MODE, T_METHODS, T_URL, T_HEADER
};

enum cfg_scope {
    S_GLOBAL,           /* top level only */
    S_PROVIDER,         /* per provider; top level = default for all */
    S_PROVIDER_ONLY     /* per provider only */
};

typedef struct cfg_entry {
    const char *name;
    enum cfg_type type;
    enum cfg_scope scope;
    size_t offset;
    double min, max;
    const char *dflt;
    const char *help;
} cfg_entry;

#define G(f) offsetof(gw_config, f)
#define P(f) offsetof(gw_provider_config, f)
#define SEC 1000.0
#define MB  (1024.0 * 1024)

static const cfg_entry entries[] = {
    /* The server. */
    {"listen", T_STR, S_GLOBAL, G(listen), 0, 0, "127.0.0.1:8545",
     "where to listen: host:port or unix:/path, comma-separated (at most 4)"},
    {"allow_remote", T_BOOL, S_GLOBAL, G(allow_remote), 0, 1, "off",
     "allow listening on a non-loopback address (the gateway has no authentication)"},
    {"unix_socket_mode", T_MODE, S_GLOBAL, G(unix_socket_mode), 0, 0777, "0660",
     "permissions of a unix: listening socket"},
    {"max_request_size", T_SIZE, S_GLOBAL, G(max_request_bytes), 1024, 256 * MB, "1MB",
     "largest request body a client may send (413 beyond)"},
    {"max_batch", T_INT, S_GLOBAL, G(max_batch), 1, 100000, "1000",
     "most requests in one JSON-RPC batch"},
    {"max_connections", T_INT, S_GLOBAL, G(max_connections), 1, 65536, "256",
     "most client connections at once (one thread each)"},
    {"idle_timeout", T_DURATION, S_GLOBAL, G(idle_timeout_ms), 1 * SEC, 3600 * SEC, "60s",
     "an idle client connection is closed after this long"},
    {"drain_timeout", T_DURATION, S_GLOBAL, G(drain_timeout_ms), 0, 3600 * SEC, "10s",
     "on SIGTERM, how long requests in flight may finish"},
    {"log_level", T_LEVEL, S_GLOBAL, G(log_level), 0, 0, "info", "debug, info, warn or error"},
    {"log_format", T_FORMAT, S_GLOBAL, G(log_format), 0, 0, "text",
     "text or json (one object per line)"},

    /* Per provider. */
    {"chain_id", T_INT64, S_PROVIDER_ONLY, P(chain_id), 1, 9007199254740991.0, "",
     "the chain this provider serves (required; checked against eth_chainId)"},
    {"url", T_URL, S_PROVIDER_ONLY, 0, 0, 0, "",
     "an upstream URL (repeat for failover, preferred first); ${VAR} = environment"},
    {"header", T_HEADER, S_PROVIDER_ONLY, 0, 0, 0, "",
     "an extra request header \"Name: value\" (repeatable); ${VAR} = environment"},
    {"rate_limit", T_DOUBLE, S_PROVIDER, P(rate_limit), 0.1, 1e6, "50",
     "hard cap of JSON-RPC calls per second sent upstream (a batch of n counts n)"},
    {"rate_min", T_DOUBLE, S_PROVIDER, P(rate_min), 0.01, 1e6, "1",
     "the floor AIMD never cuts the rate below"},
    {"rate_increase", T_DOUBLE, S_PROVIDER, P(rate_increase), 0, 1e6, "2",
     "additive increase: requests/s regained per second without a limit signal"},
    {"rate_decrease", T_DOUBLE, S_PROVIDER, P(rate_decrease), 0.05, 0.95, "0.5",
     "multiplicative decrease on 429, 503 or JSON-RPC -32005"},
    {"max_concurrency", T_INT, S_PROVIDER, P(max_concurrency), 1, 1024, "8",
     "upstream requests in flight at once (each slot keeps its connections)"},
    {"connect_timeout", T_DURATION, S_PROVIDER, P(connect_timeout_ms), 10, 600 * SEC, "5s",
     "TCP + TLS connect timeout of one attempt"},
    {"timeout", T_DURATION, S_PROVIDER, P(timeout_ms), 10, 3600 * SEC, "30s",
     "total time one upstream attempt may take"},
    {"low_speed_limit", T_SIZE, S_PROVIDER, P(low_speed_bytes), 1, 1024 * MB, "1kB",
     "an attempt slower than this many bytes/s ..."},
    {"low_speed_time", T_DURATION, S_PROVIDER, P(low_speed_time_ms), 1 * SEC, 3600 * SEC, "10s",
     "... for this long is abandoned (whole seconds)"},
    {"request_timeout", T_DURATION, S_PROVIDER, P(request_timeout_ms), 10, 3600 * SEC, "60s",
     "budget of one client request, retries, waits and range splits included"},
    {"queue_timeout", T_DURATION, S_PROVIDER, P(queue_timeout_ms), 0, 3600 * SEC, "10s",
     "longest wait for a rate token or a concurrency slot (503 beyond)"},
    {"retries", T_INT, S_PROVIDER, P(retries), 0, 100, "3",
     "retries after a failed attempt (on the next healthy URL when there is one)"},
    {"backoff_base", T_DURATION, S_PROVIDER, P(backoff_base_ms), 1, 3600 * SEC, "100ms",
     "first retry delay (doubling per retry)"},
    {"backoff_max", T_DURATION, S_PROVIDER, P(backoff_max_ms), 1, 3600 * SEC, "5s",
     "largest retry delay"},
    {"jitter", T_DOUBLE, S_PROVIDER, P(jitter), 0, 1, "0.2",
     "retry delays are scaled by a random factor in [1 - jitter, 1 + jitter]"},
    {"retry_after_max", T_DURATION, S_PROVIDER, P(retry_after_max_ms), 0, 3600 * SEC, "30s",
     "longest Retry-After honoured (a URL is not used before it passes)"},
    {"max_response_size", T_SIZE, S_PROVIDER, P(max_response_bytes), 1024, 4096 * MB, "32MB",
     "largest upstream response, enforced while it streams"},
    {"failure_threshold", T_INT, S_PROVIDER, P(failure_threshold), 1, 1000, "3",
     "consecutive failures that take a URL down"},
    {"cooldown", T_DURATION, S_PROVIDER, P(cooldown_ms), 10, 3600 * SEC, "2s",
     "how long a URL stays down first (doubling while it keeps failing)"},
    {"cooldown_max", T_DURATION, S_PROVIDER, P(cooldown_max_ms), 10, 86400 * SEC, "60s",
     "longest a URL stays down before it is tried again"},
    {"verify_chain_id", T_BOOL, S_PROVIDER, P(verify_chain_id), 0, 1, "on",
     "ask each URL eth_chainId before using it; a mismatch disables the URL"},
    {"getlogs_max_splits", T_INT, S_PROVIDER, P(getlogs_max_splits), 0, 4096, "32",
     "most sub-requests one eth_getLogs may be split into on \"range too large\""},
    {"methods", T_METHODS, S_PROVIDER, 0, 0, 0, "default",
     "allowed methods, comma-separated; \"default\" = the follower's read methods; x_* = prefix"},
};

#define NENTRIES ARRAY_LEN(entries)

const char *const gw_default_methods[] = {
    "eth_blockNumber", "eth_chainId", "eth_getBlockByNumber", "eth_getBlockByHash",
    "eth_getBlockReceipts", "eth_getTransactionReceipt", "eth_getLogs", "eth_call",
    "net_version", "web3_clientVersion", NULL,
};

/* ---- setting values --------------------------------------------------- */

/* The table entry a config name stands for, or NULL. */
static const cfg_entry *
find_entry(const char *name, size_t len)
{
    for (size_t i = 0; i < NENTRIES; i++)
        if (conf_name_matches(entries[i].name, name, len))
            return &entries[i];
    return NULL;
}

static int
parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};

    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static void
free_methods(gw_provider_config *p)
{
    for (int i = 0; i < p->nmethods; i++)
        free(p->methods[i]);
    p->nmethods = 0;
}

/* "default, eth_getBalance, debug_*" into p's allow-list. */
static int
set_methods(gw_provider_config *p, const char *value, const char *where, char *err, size_t errlen)
{
    gw_provider_config tmp = {0};
    const char *s = value;

    while (*s) {
        const char *start;
        size_t n;

        while (*s == ',' || isspace((unsigned char) *s))
            s++;
        if (*s == '\0')
            break;
        start = s;
        while (*s && *s != ',' && !isspace((unsigned char) *s))
            s++;
        n = (size_t) (s - start);
        if (n == 7 && strncmp(start, "default", 7) == 0) {
            for (int i = 0; gw_default_methods[i]; i++) {
                if (tmp.nmethods >= GW_MAX_METHODS)
                    goto too_many;
                tmp.methods[tmp.nmethods] = strdup(gw_default_methods[i]);
                if (tmp.methods[tmp.nmethods++] == NULL)
                    goto oom;
            }
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (!(isalnum((unsigned char) start[i]) || start[i] == '_' ||
                  (start[i] == '*' && i == n - 1)) || n > 128) {
                set_err(err, errlen, "%s: methods: \"%.*s\" is not a method name (letters, digits, _; a final * for a prefix)",
                        where, (int) (n > 128 ? 128 : n), start);
                free_methods(&tmp);
                return -1;
            }
        if (tmp.nmethods >= GW_MAX_METHODS)
            goto too_many;
        tmp.methods[tmp.nmethods] = strndup(start, n);
        if (tmp.methods[tmp.nmethods++] == NULL)
            goto oom;
    }
    free_methods(p);
    memcpy(p->methods, tmp.methods, sizeof tmp.methods);
    p->nmethods = tmp.nmethods;
    return 0;
too_many:
    set_err(err, errlen, "%s: methods: more than %d entries", where, GW_MAX_METHODS);
    free_methods(&tmp);
    return -1;
oom:
    set_err(err, errlen, "out of memory");
    free_methods(&tmp);
    return -1;
}

/* Sets one entry on base (a gw_config for S_GLOBAL, else a provider). */
static int
set_value(void *base, const cfg_entry *e, const char *value, const char *where,
          char *err, size_t errlen)
{
    char *b = base;
    char msg[256];
    double v = 0;

    switch (e->type) {
    case T_STR: {
        char **slot = (char **) (b + e->offset);
        char *copy = strdup(value);

        if (copy == NULL)
            goto oom;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case T_BOOL: {
        int x;

        if (parse_bool(value, &x) < 0) {
            set_err(err, errlen, "%s: invalid value \"%s\" for \"%s\" (on or off)", where, value,
                    e->name);
            return -1;
        }
        *(int *) (b + e->offset) = x;
        return 0;
    }
    case T_LEVEL: {
        int x = log_level_parse(value);

        if (x < 0) {
            set_err(err, errlen, "%s: invalid value \"%s\" for \"%s\" (debug, info, warn, error)",
                    where, value, e->name);
            return -1;
        }
        *(int *) (b + e->offset) = x;
        return 0;
    }
    case T_FORMAT:
        if (strcasecmp(value, "text") == 0)
            *(int *) (b + e->offset) = LOG_TEXT;
        else if (strcasecmp(value, "json") == 0)
            *(int *) (b + e->offset) = LOG_JSON;
        else {
            set_err(err, errlen, "%s: invalid value \"%s\" for \"%s\" (text, json)", where, value,
                    e->name);
            return -1;
        }
        return 0;
    case T_METHODS:
        return set_methods((gw_provider_config *) base, value, where, err, errlen);
    case T_URL:
    case T_HEADER: {
        gw_provider_config *p = base;
        int *n = e->type == T_URL ? &p->nurls : &p->nheaders;
        int max = e->type == T_URL ? GW_MAX_URLS : GW_MAX_HEADERS;
        char **slots = e->type == T_URL ? p->url_templates : p->header_templates;

        if (*n >= max) {
            set_err(err, errlen, "%s: more than %d %ss for provider \"%s\"", where, max, e->name,
                    p->name);
            return -1;
        }
        if ((slots[*n] = strdup(value)) == NULL)
            goto oom;
        (*n)++;
        return 0;
    }
    case T_INT:
    case T_INT64:
    case T_DOUBLE:
    case T_MODE: {
        char *end;

        errno = 0;
        if (e->type == T_DOUBLE)
            v = strtod(value, &end);
        else
            v = (double) strtoll(value, &end, e->type == T_MODE ? 8 : 10);
        while (end && isspace((unsigned char) *end))
            end++;
        if (errno || end == value || *end != '\0' || !isfinite(v)) {
            set_err(err, errlen, "%s: invalid %s \"%s\" for \"%s\"", where,
                    e->type == T_DOUBLE ? "number" : e->type == T_MODE ? "octal mode" : "integer",
                    value, e->name);
            return -1;
        }
        break;
    }
    case T_DURATION: {
        int64_t ms;

        if (parse_duration_ms(value, 0, &ms, msg, sizeof msg) < 0) {
            set_err(err, errlen, "%s: %s: %s", where, e->name, msg);
            return -1;
        }
        v = (double) ms;
        break;
    }
    case T_SIZE: {
        int64_t bytes;

        if (parse_size_bytes(value, 1, &bytes, msg, sizeof msg) < 0) {
            set_err(err, errlen, "%s: %s: %s", where, e->name, msg);
            return -1;
        }
        v = (double) bytes;
        break;
    }
    }
    if (v < e->min || v > e->max) {
        set_err(err, errlen, "%s: \"%s\" = %s is out of range (%g to %g%s)", where, e->name, value,
                e->min, e->max,
                e->type == T_DURATION ? " ms" : e->type == T_SIZE ? " bytes" : "");
        return -1;
    }
    switch (e->type) {
    case T_INT:
    case T_MODE:
        *(int *) (b + e->offset) = (int) v;
        break;
    case T_DOUBLE:
        *(double *) (b + e->offset) = v;
        break;
    default:
        *(int64_t *) (b + e->offset) = (int64_t) v;
        break;
    }
    return 0;
oom:
    set_err(err, errlen, "out of memory");
    return -1;
}

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
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(p->name, name, len);
    p->name[len] = '\0';
    cfg->providers[cfg->nproviders++] = p;
    return p;
}

/* Sets "name" or "provider.<p>.name" from text. */
int
gw_config_setn(gw_config *cfg, const char *name, size_t len, const char *value, const char *where,
            char *err, size_t errlen)
{
    const cfg_entry *e;

    if (len > 9 && strncasecmp(name, "provider.", 9) == 0) {
        const char *pname = name + 9;
        const char *dot = memchr(pname, '.', len - 9);
        gw_provider_config *p;

        if (dot == NULL) {
            set_err(err, errlen, "%s: expected provider.<name>.<setting>, got \"%.*s\"", where,
                    (int) len, name);
            return -1;
        }
        e = find_entry(dot + 1, len - (size_t) (dot + 1 - name));
        if (e == NULL || e->scope == S_GLOBAL) {
            set_err(err, errlen, "%s: unknown provider setting \"%.*s\"", where,
                    (int) (len - (size_t) (dot + 1 - name)), dot + 1);
            return -1;
        }
        p = get_provider(cfg, pname, (size_t) (dot - pname), where, err, errlen);
        if (p == NULL || set_value(p, e, value, where, err, errlen) < 0)
            return -1;
        p->set_mask |= 1ull << (e - entries);
        return 0;
    }
    e = find_entry(name, len);
    if (e == NULL) {
        set_err(err, errlen, "%s: unknown setting \"%.*s\"", where, (int) len, name);
        return -1;
    }
    if (e->scope == S_PROVIDER_ONLY) {
        set_err(err, errlen, "%s: \"%s\" is set per provider: provider.<name>.%s", where,
                e->name, e->name);
        return -1;
    }
    return set_value(e->scope == S_GLOBAL ? (void *) cfg : (void *) &cfg->defaults, e, value,
                     where, err, errlen);
}

int
gw_config_set(gw_config *cfg, const char *name, const char *value, const char *source,
              char *err, size_t errlen)
{
    return gw_config_setn(cfg, name, strlen(name), value, source, err, errlen);
}

int
gw_config_defaults(gw_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NENTRIES; i++) {
        const cfg_entry *e = &entries[i];

        if (e->scope == S_PROVIDER_ONLY)
            continue;
        if (set_value(e->scope == S_GLOBAL ? (void *) cfg : (void *) &cfg->defaults, e, e->dflt,
                      "default", err, errlen) < 0) {
            gw_config_free(cfg);
            return -1;
        }
    }
    return 0;
}

static void
free_provider(gw_provider_config *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->nurls; i++)
        free(p->url_templates[i]);
    for (int i = 0; i < p->nheaders; i++) {
        free(p->header_templates[i]);
        free(p->headers[i]);
    }
    free_methods(p);
}

void
gw_config_free(gw_config *cfg)
{
    free(cfg->listen);
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

/* ---- resolution and checks (credentials: gateway_secrets.c) ------- */

static int
copy_methods(gw_provider_config *dst, const gw_provider_config *src)
{
    for (int i = 0; i < src->nmethods; i++) {
        if ((dst->methods[i] = strdup(src->methods[i])) == NULL)
            return -1;
        dst->nmethods = i + 1;
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
    for (int i = 0; i < cfg->nproviders; i++) {
        gw_provider_config *p = cfg->providers[i];
        char what[160];

        /* Unset provider settings take the top-level value. */
        for (size_t k = 0; k < NENTRIES; k++) {
            const cfg_entry *e = &entries[k];

            if (e->scope != S_PROVIDER || (p->set_mask & (1ull << k)))
                continue;
            if (e->type == T_METHODS) {
                if (copy_methods(p, &cfg->defaults) < 0) {
                    set_err(err, errlen, "out of memory");
                    return -1;
                }
            } else if (e->type == T_INT || e->type == T_BOOL)
                *(int *) ((char *) p + e->offset) =
                    *(const int *) ((const char *) &cfg->defaults + e->offset);
            else if (e->type == T_DOUBLE)
                *(double *) ((char *) p + e->offset) =
                    *(const double *) ((const char *) &cfg->defaults + e->offset);
            else
                *(int64_t *) ((char *) p + e->offset) =
                    *(const int64_t *) ((const char *) &cfg->defaults + e->offset);
        }
        if (p->nurls == 0) {
            set_err(err, errlen, "provider \"%s\": no url (provider.%s.url = ...)", p->name, p->name);
            return -1;
        }
        if (!(p->set_mask & (1ull << (find_entry("chain_id", 8) - entries)))) {
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
        cfg->urls[i] = calloc((size_t) p->nurls, sizeof(gw_url));
        if (cfg->urls[i] == NULL) {
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
    }
    return 0;
}

/* ---- names, for the environment ------------------------------------ */

const char *
gw_config_top_level_name(int i)
{
    int k = 0;

    for (size_t j = 0; j < NENTRIES; j++)
        if (entries[j].scope != S_PROVIDER_ONLY && k++ == i)
            return entries[j].name;
    return NULL;
}

/* ---- method allow-list ------------------------------------------------ */

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

/* ---- printing --------------------------------------------------------- */

static void
format_value(const void *base, const cfg_entry *e, char *buf, size_t n)
{
    const char *b = base;

    switch (e->type) {
    case T_STR: {
        const char *s = *(char *const *) (b + e->offset);

        snprintf(buf, n, "'%s'", s ? s : "");
        break;
    }
    case T_BOOL:
        snprintf(buf, n, "%s", *(const int *) (b + e->offset) ? "on" : "off");
        break;
    case T_INT:
        snprintf(buf, n, "%d", *(const int *) (b + e->offset));
        break;
    case T_MODE:
        snprintf(buf, n, "%04o", (unsigned) *(const int *) (b + e->offset));
        break;
    case T_INT64:
        snprintf(buf, n, "%lld", (long long) *(const int64_t *) (b + e->offset));
        break;
    case T_DOUBLE:
        snprintf(buf, n, "%g", *(const double *) (b + e->offset));
        break;
    case T_DURATION:
        snprintf(buf, n, "%lldms", (long long) *(const int64_t *) (b + e->offset));
        break;
    case T_SIZE:
        snprintf(buf, n, "%lldB", (long long) *(const int64_t *) (b + e->offset));
        break;
    case T_LEVEL:
        snprintf(buf, n, "%s", log_level_name(*(const int *) (b + e->offset)));
        break;
    case T_FORMAT:
        snprintf(buf, n, "%s", *(const int *) (b + e->offset) == LOG_JSON ? "json" : "text");
        break;
    case T_METHODS: {
        const gw_provider_config *p = base;
        size_t len = 0;

        buf[0] = '\0';
        for (int i = 0; i < p->nmethods && len + 1 < n; i++)
            len += (size_t) snprintf(buf + len, n - len, "%s%s", i ? ", " : "'", p->methods[i]);
        if (len + 2 < n)
            strcat(buf, "'");
        break;
    }
    case T_URL:
    case T_HEADER:
        buf[0] = '\0';
        break;
    }
}

void
gw_config_dump(const gw_config *cfg, FILE *out)
{
    char v[2048];

    for (size_t i = 0; i < NENTRIES; i++)
        if (entries[i].scope == S_GLOBAL) {
            format_value(cfg, &entries[i], v, sizeof v);
            fprintf(out, "%s = %s\n", entries[i].name, v);
        }
    for (int k = 0; k < cfg->nproviders; k++) {
        const gw_provider_config *p = cfg->providers[k];

        fprintf(out, "\n");
        for (size_t i = 0; i < NENTRIES; i++) {
            const cfg_entry *e = &entries[i];

            if (e->scope == S_GLOBAL)
                continue;
            if (e->type == T_URL) {
                /* The host only: the rest may hold credentials. */
                for (int u = 0; u < p->nurls; u++)
                    fprintf(out, "provider.%s.url = '%s://%s/...'   # url %d, path and credentials not shown\n",
                            p->name, strncmp(cfg->urls[k][u].url, "https", 5) == 0 ? "https" : "http",
                            cfg->urls[k][u].host, u + 1);
                continue;
            }
            if (e->type == T_HEADER) {
                for (int h = 0; h < p->nheaders; h++) {
                    const char *colon = strchr(p->headers[h], ':');

                    fprintf(out, "provider.%s.header = '%.*s: ****'\n", p->name,
                            (int) (colon - p->headers[h]), p->headers[h]);
                }
                continue;
            }
            format_value(p, e, v, sizeof v);
            fprintf(out, "provider.%s.%s = %s\n", p->name, e->name, v);
        }
    }
}

void
gw_config_usage(FILE *out)
{
    fprintf(out,
            "usage: trace-rpc-gateway [options]\n"
            "\n"
            "  -c, --config FILE   config file (also TRACE_GATEWAY_CONFIG)\n"
            "  --check-config      print the effective settings (credentials hidden) and exit\n"
            "  --help, --version\n"
            "\n"
            "Settings (file: name = value; flag --name=value; top-level ones also from\n"
            "TRACE_GATEWAY_NAME).  Provider settings: provider.<name>.<setting>; given at\n"
            "top level they are the default for every provider.\n\n");
    for (size_t i = 0; i < NENTRIES; i++) {
        const cfg_entry *e = &entries[i];

        fprintf(out, "  %s%-20s %s%s%s%s\n",
                e->scope == S_GLOBAL ? "" : "[provider.<p>.]", e->name, e->help,
                *e->dflt ? " [default: " : "", e->dflt, *e->dflt ? "]" : "");
    }
}
