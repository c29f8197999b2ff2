/*
 * gateway_config_file.c: where trace-rpc-gateway's settings come from.
 *
 * Sources, weakest first: built-in defaults, the config file (--config /
 * -c, else TRACE_GATEWAY_CONFIG), TRACE_GATEWAY_<NAME> environment
 * variables (top-level settings; an empty one counts as unset), and
 * --name=value / --name value flags (any setting, provider.<p>.<name>
 * included).
 *
 * File syntax, as postgresql.conf and trace-worker.conf:
 *     name = value   # comment
 * Values may be quoted with '...' or "..." (then # and spaces are literal;
 * a doubled quote inside stands for itself).  Names accept - or _, and
 * dots for provider.<name>.<setting>.
 */
#define _GNU_SOURCE
#include "gateway.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* One value at p (quoted or bare) into out; the position after it, or NULL. */
static const char *
parse_value(const char *p, char *out, size_t outlen)
{
    size_t n = 0;

    if (*p == '\'' || *p == '"') {
        char q = *p++;

        for (;;) {
            if (*p == '\0' || *p == '\n')
                return NULL;
            if (*p == q) {
                if (p[1] == q)
                    p++;
                else {
                    p++;
                    break;
                }
            }
            if (n + 1 >= outlen)
                return NULL;
            out[n++] = *p++;
        }
    } else {
        while (*p && *p != '\n' && *p != '#') {
            if (n + 1 >= outlen)
                return NULL;
            out[n++] = *p++;
        }
        while (n > 0 && isspace((unsigned char) out[n - 1]))
            n--;
    }
    out[n] = '\0';
    return p;
}

int
gw_config_parse_text(gw_config *cfg, const char *text, const char *name, char *err,
                     size_t errlen)
{
    const char *p = text;
    int line = 0, rc = -1;
    const size_t vmax = 16384;
    char *value = malloc(vmax);

    if (value == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    while (*p) {
        const char *key, *next;
        size_t keylen;
        char where[512];

        line++;
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0') {
            while (*p && *p != '\n')
                p++;
            if (*p == '\n')
                p++;
            continue;
        }
        snprintf(where, sizeof where, "%s:%d", name, line);
        key = p;
        while (isalnum((unsigned char) *p) || *p == '_' || *p == '-' || *p == '.')
            p++;
        keylen = (size_t) (p - key);
        while (*p == ' ' || *p == '\t')
            p++;
        if (keylen == 0 || *p != '=') {
            set_err(err, errlen, "%s: expected \"name = value\"", where);
            goto cleanup;
        }
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        next = parse_value(p, value, vmax);
        if (next == NULL) {
            set_err(err, errlen, "%s: unterminated or too long value for \"%.*s\"", where,
                    (int) keylen, key);
            goto cleanup;
        }
        p = next;
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (*p == '#')
            while (*p && *p != '\n')
                p++;
        if (*p != '\n' && *p != '\0') {
            set_err(err, errlen, "%s: unexpected text after the value of \"%.*s\"", where,
                    (int) keylen, key);
            goto cleanup;
        }
        if (*p == '\n')
            p++;
        if (gw_config_setn(cfg, key, keylen, value, where, err, errlen) < 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    free(value);
    return rc;
}

static char *
read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL) {
        set_err(err, errlen, "cannot open config file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t n;

        if (len + 4096 + 1 > cap) {
            char *nb;

            cap = cap ? cap * 2 : 8192;
            if (cap > 4 * 1024 * 1024) {
                set_err(err, errlen, "config file \"%s\" is too large", path);
                goto fail;
            }
            if ((nb = realloc(buf, cap)) == NULL) {
                set_err(err, errlen, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096) {
            if (ferror(f)) {
                set_err(err, errlen, "cannot read config file \"%s\"", path);
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (strlen(buf) != len) {
        set_err(err, errlen, "config file \"%s\" contains a NUL byte", path);
        free(buf);
        return NULL;
    }
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

static int
is_bool_flag(const char *name)
{
    return strcmp(name, "help") == 0 || strcmp(name, "version") == 0 ||
           strcmp(name, "check-config") == 0;
}

/* "--name=value" / "--name value" / "-c file": argv slots used, 0 = not an
 * option, -1 = error. */
static int
split_flag(int argc, char **argv, int i, char *name, size_t namelen, const char **value,
           char *err, size_t errlen)
{
    const char *a = argv[i], *eq;

    if (strcmp(a, "-c") == 0) {
        if (i + 1 >= argc) {
            set_err(err, errlen, "option -c needs a file name");
            return -1;
        }
        copy_str(name, namelen, "config");
        *value = argv[i + 1];
        return 2;
    }
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
        return 0;
    a += 2;
    eq = strchr(a, '=');
    if (eq != NULL) {
        if ((size_t) (eq - a) + 1 > namelen) {
            set_err(err, errlen, "unknown option --%.40s", a);
            return -1;
        }
        memcpy(name, a, (size_t) (eq - a));
        name[eq - a] = '\0';
        *value = eq + 1;
        return 1;
    }
    copy_str(name, namelen, a);
    if (is_bool_flag(name)) {
        *value = "true";
        return 1;
    }
    if (i + 1 >= argc) {
        set_err(err, errlen, "option --%s needs a value", a);
        return -1;
    }
    *value = argv[i + 1];
    return 2;
}

int
gw_config_load(gw_config *cfg, int argc, char **argv, char *const *envp, char *err,
               size_t errlen)
{
    const char *file = NULL;
    char name[256];
    char *text = NULL;
    int i;

    if (gw_config_defaults(cfg, err, errlen) < 0)
        return -1;
    for (i = 1; i < argc;) {
        const char *value;
        int used = split_flag(argc, argv, i, name, sizeof name, &value, err, errlen);

        if (used < 0)
            goto fail;
        if (used == 0) {
            set_err(err, errlen, "unexpected argument \"%s\" (see --help)", argv[i]);
            goto fail;
        }
        if (strcmp(name, "config") == 0)
            file = value;
        i += used;
    }
    if (file == NULL)
        file = gw_env_get(envp, "TRACE_GATEWAY_CONFIG", 20);
    if (file != NULL && *file) {
        text = read_file(file, err, errlen);
        if (text == NULL || gw_config_parse_text(cfg, text, file, err, errlen) < 0)
            goto fail;
        if ((cfg->config_file = strdup(file)) == NULL) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
    }
    /* TRACE_GATEWAY_<NAME> for the top-level settings. */
    for (int k = 0; gw_config_top_level_name(k) != NULL; k++) {
        const char *setting = gw_config_top_level_name(k);
        char var[128];
        const char *v;
        size_t j;

        copy_str(var, sizeof var, "TRACE_GATEWAY_");
        for (j = 0; setting[j] && j + 15 < sizeof var; j++)
            var[14 + j] = (char) toupper((unsigned char) setting[j]);
        var[14 + j] = '\0';
        v = gw_env_get(envp, var, strlen(var));
        if (v != NULL && *v && gw_config_set(cfg, setting, v, var, err, errlen) < 0)
            goto fail;
    }
    for (i = 1; i < argc;) {
        const char *value;
        char source[300];
        int used = split_flag(argc, argv, i, name, sizeof name, &value, err, errlen);

        if (strcmp(name, "config") != 0 && !is_bool_flag(name)) {
            snprintf(source, sizeof source, "option --%s", name);
            if (gw_config_set(cfg, name, value, source, err, errlen) < 0)
                goto fail;
        }
        i += used;
    }
    if (gw_config_finish(cfg, envp, err, errlen) < 0)
        goto fail;
    free(text);
    return 0;
fail:
    free(text);
    gw_config_free(cfg);
    return -1;
}
