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


/* conf_parse_text's setter: one line of a gateway config file. */
static int
gw_config_set_line(void *ctx, const char *name, size_t len, const char *value, const char *where,
                   char *err, size_t errlen)
{
    return gw_config_setn((gw_config *) ctx, name, len, value, where, err, errlen);
}

int
gw_config_parse_text(gw_config *cfg, const char *text, const char *name, char *err,
                     size_t errlen)
{
    return conf_parse_text(text, name, 1, 16384, gw_config_set_line, cfg, err, errlen);
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
        file = conf_env_get(envp, "TRACE_GATEWAY_CONFIG");
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

        conf_env_name(var, sizeof var, "TRACE_GATEWAY_", setting);
        v = conf_env_get(envp, var);
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
