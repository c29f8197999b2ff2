/*
 * gateway_secrets.c: the gateway's credentials.
 *
 * Credentials are referenced by name: ${VAR} in a provider URL or header is
 * replaced by the environment variable VAR at start.  Every substituted
 * value, a URL's userinfo and query, and any long path segment (an API key
 * looks like one) are recorded as secrets of the config.  Every log line
 * goes through gw_redact() (the log's mask hook, gw_log_mask), which masks
 * each secret wherever it appears, so even an upstream's error text that echoes a URL cannot leak
 * one; on top of that the gateway's own messages name URLs by host:port
 * only, and errors about a URL name its provider and position, never it.
 */
#define _GNU_SOURCE
#include "gateway.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "settings.h"
#include "util.h"

/* ---- masking ------------------------------------------------------------ */

void
gw_redact(const gw_config *cfg, char *buf, size_t size)
{
    (void) size;
    if (cfg == NULL)
        return;
    for (int i = 0; i < cfg->nsecrets; i++) {
        const char *s = cfg->secrets[i];
        size_t n = strlen(s);
        char *p;

        if (n < 4)
            continue;
        while ((p = strstr(buf, s)) != NULL) {
            memcpy(p, "****", 4);
            memmove(p + 4, p + n, strlen(p + n) + 1);
        }
    }
}

void
gw_log_mask(char *msg, size_t size, void *cfg)
{
    gw_redact(cfg, msg, size);
}

/* ---- ${VAR} and URLs ------------------------------------------------- */

int
gw_add_secret(gw_config *cfg, const char *s, size_t n, char *err, size_t errlen)
{
    if (n < 4)
        return 0;
    for (int i = 0; i < cfg->nsecrets; i++)
        if (strlen(cfg->secrets[i]) == n && strncmp(cfg->secrets[i], s, n) == 0)
            return 0;
    if (cfg->nsecrets >= GW_MAX_SECRETS) {
        set_err(err, errlen, "too many credentials");
        return -1;
    }
    if ((cfg->secrets[cfg->nsecrets] = strndup(s, n)) == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    cfg->nsecrets++;
    return 0;
}

/* Replaces ${VAR}s in tmpl from envp (malloc'd into *out); each value
 * becomes a secret.  what names the template in errors. */
int
gw_resolve(gw_config *cfg, const char *tmpl, char *const *envp, const char *what, char **out,
        char *err, size_t errlen)
{
    size_t cap = strlen(tmpl) + 1, len = 0;
    char *buf = malloc(cap);
    const char *p = tmpl;

    if (buf == NULL)
        goto oom;
    while (*p) {
        const char *piece = p, *val;
        size_t n = 1, vlen;

        if (p[0] == '$' && p[1] == '{') {
            const char *name = p + 2, *end = name;

            while (isalnum((unsigned char) *end) || *end == '_')
                end++;
            if (*end != '}' || end == name || isdigit((unsigned char) *name)) {
                set_err(err, errlen, "%s: malformed ${...} (expected ${NAME})", what);
                goto fail;
            }
            val = settings_env_getn(envp, name, (size_t) (end - name));
            if (val == NULL || *val == '\0') {
                set_err(err, errlen, "%s: environment variable %.*s is not set", what,
                        (int) (end - name), name);
                goto fail;
            }
            vlen = strlen(val);
            if (gw_add_secret(cfg, val, vlen, err, errlen) < 0)
                goto fail;
            piece = val;
            n = vlen;
            p = end + 1;
        } else
            p++;
        if (len + n + 1 > cap) {
            char *nb;

            cap = (len + n + 1) * 2;
            if ((nb = realloc(buf, cap)) == NULL)
                goto oom;
            buf = nb;
        }
        memcpy(buf + len, piece, n);
        len += n;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
oom:
    set_err(err, errlen, "out of memory");
fail:
    free(buf);
    return -1;
}

/* Checks a resolved URL (http/https, a host) and fills u->host; the
 * credential-bearing parts become secrets.  Errors never quote the URL. */
int
gw_check_url(gw_config *cfg, gw_url *u, const char *what, char *err, size_t errlen)
{
    CURLU *h = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *part = NULL;
    int rc = -1;

    if (h == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (curl_url_set(h, CURLUPART_URL, u->url, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        set_err(err, errlen, "%s: not a valid URL", what);
        goto cleanup;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        set_err(err, errlen, "%s: only http and https URLs are allowed", what);
        goto cleanup;
    }
    if (strchr(u->url, '#') != NULL) {
        set_err(err, errlen, "%s: a URL must not have a fragment", what);
        goto cleanup;
    }
    if (curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        set_err(err, errlen, "%s: not a valid URL", what);
        goto cleanup;
    }
    snprintf(u->host, sizeof u->host, "%s:%s", host, port);
    /* Credentials may sit in the userinfo, the path or the query. */
    if (curl_url_get(h, CURLUPART_USER, &part, 0) == CURLUE_OK) {
        if (gw_add_secret(cfg, part, strlen(part), err, errlen) < 0)
            goto cleanup;
        curl_free(part);
        part = NULL;
    }
    if (curl_url_get(h, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
        if (gw_add_secret(cfg, part, strlen(part), err, errlen) < 0)
            goto cleanup;
        curl_free(part);
        part = NULL;
    }
    if (curl_url_get(h, CURLUPART_QUERY, &part, 0) == CURLUE_OK) {
        if (strlen(part) >= 8 && gw_add_secret(cfg, part, strlen(part), err, errlen) < 0)
            goto cleanup;
        curl_free(part);
        part = NULL;
    }
    if (curl_url_get(h, CURLUPART_PATH, &part, 0) == CURLUE_OK) {
        /* Each long path segment (an API key looks like one). */
        for (char *seg = part, *end; *seg; seg = end) {
            while (*seg == '/')
                seg++;
            end = seg;
            while (*end && *end != '/')
                end++;
            if (end - seg >= 16 && gw_add_secret(cfg, seg, (size_t) (end - seg), err, errlen) < 0)
                goto cleanup;
        }
    }
    rc = 0;
cleanup:
    curl_free(part);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(h);
    return rc;
}
