/*
 * conf.h: the config-file and flag parsing shared by trace-worker and
 * trace-rpc-gateway (see conf.c).  Functions return results in caller
 * buffers and fill err on failure; nothing exits.
 */
#ifndef TRACE_CONF_H
#define TRACE_CONF_H

#include <stddef.h>

/* One value at p (quoted or bare) into out; the position after it, or
 * NULL on a syntax error. */
const char *conf_parse_value(const char *p, char *out, size_t outlen);

/* A whole (small) config file, NUL-terminated, for the caller to free;
 * NULL with err filled. */
char *conf_read_file(const char *path, char *err, size_t errlen);

/* The value of NAME in an environment array, or NULL. */
const char *conf_env_get(char *const *envp, const char *name);

/* The same, for a name of n bytes that need not be NUL-terminated. */
const char *conf_env_getn(char *const *envp, const char *name, size_t n);

/* Whether name[0..len) names the setting canonical ("log-level" and
 * "LOG_LEVEL" name log_level). */
int conf_name_matches(const char *canonical, const char *name, size_t len);

/* The environment variable for a setting: prefix + NAME in upper case. */
void conf_env_name(char *var, size_t varlen, const char *prefix, const char *setting);

/* Sets one setting from the config file; where is "file:line". */
typedef int (*conf_setter)(void *ctx, const char *name, size_t len, const char *value,
                           const char *where, char *err, size_t errlen);

/* Every "name = value  # comment" line of text, in order, through set();
 * -1 with err filled ("file:line: ...") on the first bad line. */
int conf_parse_text(const char *text, const char *file, int allow_dots, size_t value_max,
                    conf_setter set, void *ctx, char *err, size_t errlen);

/* Whether a flag takes no value (--help, --version, --check-config). */
int conf_is_bool_flag(const char *name);

/* "--name=value" / "--name value" / "-c file" at argv[i]: argv slots used
 * (1 or 2), 0 when argv[i] is not an option, -1 with err filled. */
int conf_split_flag(int argc, char **argv, int i, char *name, size_t namelen,
                    const char **value, char *err, size_t errlen);

#endif
