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

#include "conf.h"
#include "util.h"


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
        next = conf_parse_value(p, value, vmax);
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
        int used = conf_split_flag(argc, argv, i, name, sizeof name, &value, err, errlen);

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
        text = conf_read_file(file, err, errlen);
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
        int used = conf_split_flag(argc, argv, i, name, sizeof name, &value, err, errlen);

        if (strcmp(name, "config") != 0 && !conf_is_bool_flag(name)) {
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
