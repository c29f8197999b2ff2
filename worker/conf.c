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
    size_t n = strlen(name);

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
