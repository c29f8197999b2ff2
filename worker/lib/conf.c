/*
 * conf.c: what the config loaders of trace-worker and trace-rpc-gateway
 * share: reading a config file, its postgresql.conf-style values, and
 * command-line flags.  Each program keeps its own table of settings.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Parses one value at p (quoted or bare) into out; returns the position
 * after it, or NULL on a syntax error. */
const char *
conf_parse_value(const char *p, char *out, size_t outlen)
{
    size_t n = 0;

    if (*p == '\'' || *p == '"') {
        char q = *p++;

        for (;;) {
            if (*p == '\0' || *p == '\n')
                return NULL;           /* unterminated */
            if (*p == q) {
                if (p[1] == q) {
                    p++;               /* doubled quote */
                } else {
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

/* Reads a whole (small) file into a NUL-terminated buffer the caller frees. */
char *
conf_read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL) {
        set_err(err, errlen, "cannot open config file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *nb;

            cap = cap ? cap * 2 : 8192;
            if (cap > 16 * 1024 * 1024) {
                set_err(err, errlen, "config file \"%s\" is too large", path);
                goto fail;
            }
            nb = realloc(buf, cap);
            if (nb == NULL) {
                set_err(err, errlen, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);

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

const char *
conf_env_get(char *const *envp, const char *name)
{
    return conf_env_getn(envp, name, strlen(name));
}

/* As conf_env_get, for a name that is not NUL-terminated (${VAR} in text). */
const char *
conf_env_getn(char *const *envp, const char *name, size_t n)
{
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* Flags without a value; main() acts on them. */
int
conf_is_bool_flag(const char *name)
{
    return strcmp(name, "help") == 0 || strcmp(name, "version") == 0 ||
           strcmp(name, "check-config") == 0;
}

/* Finds "--name=value" / "--name value" / "-c value"; returns the number of
 * argv slots used (1 or 2), 0 when argv[i] is not an option, -1 on error. */
int
conf_split_flag(int argc, char **argv, int i, char *name, size_t namelen, const char **value,
           char *err, size_t errlen)
{
    const char *a = argv[i];
    const char *eq;

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
    if (eq) {
        if ((size_t) (eq - a) + 1 > namelen) {
            set_err(err, errlen, "unknown option --%s", a);
            return -1;
        }
        memcpy(name, a, (size_t) (eq - a));
        name[eq - a] = '\0';
        *value = eq + 1;
        return 1;
    }
    copy_str(name, namelen, a);
    if (conf_is_bool_flag(name)) {
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

/* "log-level", "LOG_LEVEL" and "log_level" all name log_level. */
int
conf_name_matches(const char *canonical, const char *name, size_t len)
{
    size_t j;

    if (strlen(canonical) != len)
        return 0;
    for (j = 0; j < len; j++) {
        char c = (char) tolower((unsigned char) name[j]);

        if (c == '-')
            c = '_';
        if (c != canonical[j])
            return 0;
    }
    return 1;
}

/* PREFIX + the setting in upper case: the environment variable that sets it. */
void
conf_env_name(char *var, size_t varlen, const char *prefix, const char *setting)
{
    size_t n;

    copy_str(var, varlen, prefix);
    n = strlen(var);
    for (size_t j = 0; setting[j] && n + 1 < varlen; j++)
        var[n++] = (char) toupper((unsigned char) setting[j]);
    var[n] = '\0';
}

/* Skips blanks, then a comment; a line must end there. */
static const char *
skip_to_line_end(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    if (*p == '#')
        while (*p && *p != '\n')
            p++;
    return p;
}

/* Parses "name = value  # comment" lines and hands each setting to set(),
 * with "file:line" for its messages.  Names are letters, digits, _ and -,
 * and dots when allow_dots (provider.<name>.<setting>). */
int
conf_parse_text(const char *text, const char *file, int allow_dots, size_t value_max,
                conf_setter set, void *ctx, char *err, size_t errlen)
{
    const char *p = text;
    int line = 0, rc = -1;
    char *value = malloc(value_max);

    if (value == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    while (*p) {
        const char *key, *next;
        size_t keylen;
        char where[512];

        line++;
        p = skip_to_line_end(p);
        if (*p == '\n' || *p == '\0') {
            if (*p == '\n')
                p++;
            continue;
        }
        snprintf(where, sizeof where, "%s:%d", file, line);
        key = p;
        while (isalnum((unsigned char) *p) || *p == '_' || *p == '-' || (allow_dots && *p == '.'))
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
        next = conf_parse_value(p, value, value_max);
        if (next == NULL) {
            set_err(err, errlen, "%s: unterminated or too long value for \"%.*s\"", where,
                    (int) keylen, key);
            goto cleanup;
        }
        p = skip_to_line_end(next);
        if (*p != '\n' && *p != '\0') {
            set_err(err, errlen, "%s: unexpected text after the value of \"%.*s\"", where,
                    (int) keylen, key);
            goto cleanup;
        }
        if (*p == '\n')
            p++;
        if (set(ctx, key, keylen, value, where, err, errlen) < 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    free(value);
    return rc;
}
