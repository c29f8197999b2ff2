/*
 * settings.c: the settings engine (see settings.h): values by row type,
 * printing, reload comparison, and the three sources (file, environment,
 * flags).
 *
 * Invariant: a value is stored only after it parsed and passed its range
 * check, so a bad line leaves the previous value in place; strings are
 * owned by the struct and freed by settings_free.
 */
#define _GNU_SOURCE
#include "settings.h"

#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const setting_choice settings_log_levels[] = {
    {"debug", LOG_DEBUG, 0}, {"info", LOG_INFO, 0}, {"warn", LOG_WARN, 0},
    {"error", LOG_ERROR, 0}, {"warning", LOG_WARN, 1}, {NULL, 0, 0},
};

const setting_choice settings_log_formats[] = {
    {"text", LOG_TEXT, 0}, {"json", LOG_JSON, 0}, {NULL, 0, 0},
};

/* ---- rows --------------------------------------------------------------- */

/* "log-level", "LOG_LEVEL" and "log_level" all name log_level. */
static int
name_matches(const char *canonical, const char *name, size_t len)
{
    if (strlen(canonical) != len)
        return 0;
    for (size_t j = 0; j < len; j++) {
        char c = (char) tolower((unsigned char) name[j]);

        if (c == '-')
            c = '_';
        if (c != canonical[j])
            return 0;
    }
    return 1;
}

const setting *
settings_find(const settings_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (name_matches(t->rows[i].name, name, len))
            return &t->rows[i];
    return NULL;
}

/* How many bytes row s occupies in its struct (0: a custom value). */
static size_t
field_size(const setting *s)
{
    switch (s->type) {
    case SET_STRING:
        return sizeof(char *);
    case SET_INT64:
    case SET_DURATION:
    case SET_SIZE:
        return sizeof(int64_t);
    case SET_DOUBLE:
        return sizeof(double);
    case SET_CUSTOM:
        return 0;
    default:
        return sizeof(int);
    }
}

static int
is_integral(setting_type t)
{
    return t != SET_DOUBLE;
}

/* The accepted names of an enum row, for an error message. */
static void
choice_list(const setting *s, char *buf, size_t n)
{
    buf[0] = '\0';
    for (const setting_choice *c = s->choices; c->name; c++)
        if (!c->hidden) {
            if (buf[0])
                strncat(buf, ", ", n - strlen(buf) - 1);
            strncat(buf, c->name, n - strlen(buf) - 1);
        }
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

/* The text of a numeric row as a number (ms for durations, bytes for
 * sizes), before its range check. */
static int
parse_number(const setting *s, const char *value, const char *where, double *v, char *err,
             size_t errlen)
{
    char msg[256], *end;
    int64_t x;

    switch (s->type) {
    case SET_DURATION:
        if (parse_duration_ms(value, 0, &x, msg, sizeof msg) < 0)
            goto unit_error;
        *v = (double) x;
        return 0;
    case SET_SIZE:
        if (parse_size_bytes(value, 1, &x, msg, sizeof msg) < 0)
            goto unit_error;
        *v = (double) x;
        return 0;
    default:
        break;
    }
    errno = 0;
    if (s->type == SET_DOUBLE)
        *v = strtod(value, &end);
    else
        *v = (double) strtoll(value, &end, s->type == SET_MODE ? 8 : 10);
    while (end && isspace((unsigned char) *end))
        end++;
    if (errno || end == value || *end != '\0' || !isfinite(*v)) {
        set_err(err, errlen, "%s: invalid %s \"%s\" for \"%s\"", where,
                s->type == SET_DOUBLE ? "number" : s->type == SET_MODE ? "octal mode" : "integer",
                value, s->name);
        return -1;
    }
    return 0;
unit_error:
    set_err(err, errlen, "%s: %s: %s", where, s->name, msg);
    return -1;
}

/* A bound as the message shows it. */
static void
bound_text(const setting *s, double b, char *buf, size_t n)
{
    if (is_integral(s->type))
        snprintf(buf, n, "%lld", (long long) b);
    else
        snprintf(buf, n, "%g", b);
}

static int
set_numeric(const setting *s, void *base, const char *value, const char *where, char *err,
            size_t errlen)
{
    char *field = (char *) base + s->offset;
    char lo[40], hi[40];
    double v;

    if (parse_number(s, value, where, &v, err, errlen) < 0)
        return -1;
    if (v < s->min || v > s->max) {
        bound_text(s, s->min, lo, sizeof lo);
        bound_text(s, s->max, hi, sizeof hi);
        set_err(err, errlen, "%s: \"%s\" = %s is out of range (%s to %s%s)", where, s->name,
                value, lo, hi,
                s->type == SET_DURATION ? " ms" : s->type == SET_SIZE ? " bytes" : "");
        return -1;
    }
    if (field_size(s) == sizeof(int))
        *(int *) field = (int) v;
    else if (s->type == SET_DOUBLE)
        *(double *) field = v;
    else
        *(int64_t *) field = (int64_t) v;
    return 0;
}

int
settings_set(const setting *s, void *base, const char *value, const char *where, char *err,
             size_t errlen)
{
    char *field = (char *) base + s->offset;
    char list[200];
    int x;

    switch (s->type) {
    case SET_STRING: {
        char *copy = strdup(value);

        if (copy == NULL) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        free(*(char **) field);
        *(char **) field = copy;
        return 0;
    }
    case SET_BOOL:
        if (parse_bool(value, &x) < 0) {
            set_err(err, errlen, "%s: invalid value \"%s\" for \"%s\" (on or off)", where, value,
                    s->name);
            return -1;
        }
        *(int *) field = x;
        return 0;
    case SET_ENUM:
        for (const setting_choice *c = s->choices; c->name; c++)
            if (strcasecmp(value, c->name) == 0) {
                *(int *) field = c->value;
                return 0;
            }
        choice_list(s, list, sizeof list);
        set_err(err, errlen, "%s: invalid value \"%s\" for \"%s\" (%s)", where, value, s->name,
                list);
        return -1;
    case SET_CUSTOM:
        return s->ops->parse(base, s, value, where, err, errlen);
    default:
        return set_numeric(s, base, value, where, err, errlen);
    }
}

int
settings_defaults(const settings_table *t, void *base, unsigned skip_flags, char *err,
                  size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        const setting *s = &t->rows[i];

        if ((s->flags & skip_flags) || (s->type == SET_CUSTOM && s->dflt[0] == '\0'))
            continue;
        if (settings_set(s, base, s->dflt, "default", err, errlen) < 0)
            return -1;
    }
    return 0;
}

void
settings_free(const settings_table *t, void *base, unsigned skip_flags)
{
    for (size_t i = 0; i < t->n; i++) {
        const setting *s = &t->rows[i];
        char **field = (char **) ((char *) base + s->offset);

        if (s->flags & skip_flags)
            continue;
        if (s->type == SET_STRING) {
            free(*field);
            *field = NULL;
        } else if (s->type == SET_CUSTOM && s->ops->free)
            s->ops->free(base, s);
    }
}

int
settings_copy(const setting *s, void *dst, const void *src)
{
    char *d = (char *) dst + s->offset;
    const char *f = (const char *) src + s->offset;

    if (s->type == SET_CUSTOM)
        return s->ops->copy ? s->ops->copy(dst, src, s) : 0;
    if (s->type == SET_STRING) {
        const char *v = *(char *const *) f;
        char *copy = v ? strdup(v) : NULL;

        if (v && copy == NULL)
            return -1;
        free(*(char **) d);
        *(char **) d = copy;
        return 0;
    }
    memcpy(d, f, field_size(s));
    return 0;
}

int
settings_equal(const setting *s, const void *a, const void *b)
{
    const char *fa = (const char *) a + s->offset, *fb = (const char *) b + s->offset;

    if (s->type == SET_STRING) {
        const char *sa = *(char *const *) fa, *sb = *(char *const *) fb;

        return strcmp(sa ? sa : "", sb ? sb : "") == 0;
    }
    if (s->type == SET_CUSTOM) {
        char va[2048], vb[2048];

        s->ops->format(a, s, va, sizeof va);
        s->ops->format(b, s, vb, sizeof vb);
        return strcmp(va, vb) == 0;
    }
    return memcmp(fa, fb, field_size(s)) == 0;
}

void
settings_format(const setting *s, const void *base, char *buf, size_t n)
{
    const char *f = (const char *) base + s->offset;

    switch (s->type) {
    case SET_STRING: {
        const char *v = *(char *const *) f;

        if ((s->flags & SET_SECRET) && v && *v)
            copy_str(buf, n, "'********'");
        else
            snprintf(buf, n, "'%s'", v ? v : "");
        return;
    }
    case SET_BOOL:
        copy_str(buf, n, *(const int *) f ? "on" : "off");
        return;
    case SET_INT:
        snprintf(buf, n, "%d", *(const int *) f);
        return;
    case SET_MODE:
        snprintf(buf, n, "%04o", (unsigned) *(const int *) f);
        return;
    case SET_INT64:
        snprintf(buf, n, "%lld", (long long) *(const int64_t *) f);
        return;
    case SET_DOUBLE:
        snprintf(buf, n, "%g", *(const double *) f);
        return;
    case SET_DURATION:
        snprintf(buf, n, "%lldms", (long long) *(const int64_t *) f);
        return;
    case SET_SIZE:
        snprintf(buf, n, "%lldB", (long long) *(const int64_t *) f);
        return;
    case SET_ENUM:
        buf[0] = '\0';
        for (const setting_choice *c = s->choices; c->name; c++)
            if (!c->hidden && c->value == *(const int *) f) {
                copy_str(buf, n, c->name);
                break;
            }
        return;
    case SET_CUSTOM:
        s->ops->format(base, s, buf, n);
        return;
    }
}

void
settings_dump(const settings_table *t, const void *base, unsigned skip_flags, const char *prefix,
              FILE *out)
{
    char v[2048];

    for (size_t i = 0; i < t->n; i++) {
        const setting *s = &t->rows[i];

        if (s->flags & skip_flags)
            continue;
        settings_format(s, base, v, sizeof v);
        if (s->type == SET_CUSTOM && v[0] == '\0')
            continue;           /* printed by the program (e.g. URLs by host) */
        fprintf(out, "%s%s = %s\n", prefix, s->name, v);
    }
}

/* "--log-level" or "--[provider.<p>.]rate-limit". */
static void
flag_name(const setting *s, unsigned scoped_flag, const char *scoped_prefix, char *buf, size_t n)
{
    size_t len;

    snprintf(buf, n, "--%s", (s->flags & scoped_flag) && scoped_prefix ? scoped_prefix : "");
    len = strlen(buf);
    for (const char *c = s->name; *c && len + 1 < n; c++)
        buf[len++] = *c == '_' ? '-' : *c;
    buf[len] = '\0';
}

void
settings_usage(const settings_table *t, unsigned scoped_flag, const char *scoped_prefix, FILE *out)
{
    for (size_t i = 0; i < t->n; i++) {
        const setting *s = &t->rows[i];
        char flag[96];

        flag_name(s, scoped_flag, scoped_prefix, flag, sizeof flag);
        fprintf(out, "  %-24s %s [default: %s]%s\n", flag, s->help, *s->dflt ? s->dflt : "none",
                (s->flags & SET_RELOADABLE) ? " (reloadable)" : "");
    }
}

/* The range column of the Markdown table. */
static void
range_text(const setting *s, char *buf, size_t n)
{
    char lo[40], hi[40];

    buf[0] = '\0';
    switch (s->type) {
    case SET_STRING:
    case SET_CUSTOM:
        return;
    case SET_BOOL:
        copy_str(buf, n, "on, off");
        return;
    case SET_ENUM:
        choice_list(s, buf, n);
        return;
    case SET_MODE:
        snprintf(buf, n, "%04o to %04o", (unsigned) s->min, (unsigned) s->max);
        return;
    default:
        bound_text(s, s->min, lo, sizeof lo);
        bound_text(s, s->max, hi, sizeof hi);
        snprintf(buf, n, "%s to %s%s", lo, hi,
                 s->type == SET_DURATION ? " ms" : s->type == SET_SIZE ? " bytes" : "");
    }
}

void
settings_markdown(const settings_table *t, unsigned scoped_flag, const char *scoped_prefix,
                  FILE *out)
{
    fprintf(out, "| setting | default | range | on SIGHUP | description |\n"
                 "|---|---|---|---|---|\n");
    for (size_t i = 0; i < t->n; i++) {
        const setting *s = &t->rows[i];
        char range[200];

        range_text(s, range, sizeof range);
        fprintf(out, "| `%s%s` | %s%s%s | %s | %s | %s%s |\n",
                (s->flags & scoped_flag) && scoped_prefix ? scoped_prefix : "", s->name,
                *s->dflt ? "`" : "", *s->dflt ? s->dflt : "", *s->dflt ? "`" : "", range,
                (s->flags & SET_RELOADABLE) ? "reloaded" : "restart", s->help,
                (s->flags & SET_SECRET) ? " (secret: never printed)" : "");
    }
}

void
settings_restart_changes(const settings_table *t, unsigned skip_flags, const void *cur,
                         const void *fresh, const char *prefix, char *buf, size_t n)
{
    for (size_t i = 0; i < t->n; i++) {
        const setting *s = &t->rows[i];

        if ((s->flags & (SET_RELOADABLE | skip_flags)) || settings_equal(s, cur, fresh))
            continue;
        if (buf[0])
            strncat(buf, ", ", n - strlen(buf) - 1);
        strncat(buf, prefix, n - strlen(buf) - 1);
        strncat(buf, s->name, n - strlen(buf) - 1);
    }
}

void
settings_keep_restart_only(const settings_table *t, unsigned skip_flags, void *fresh, void *cur)
{
    for (size_t i = 0; i < t->n; i++) {
        const setting *s = &t->rows[i];
        size_t size = field_size(s);
        char tmp[sizeof(int64_t)], *a, *b;

        if ((s->flags & (SET_RELOADABLE | skip_flags)) || size == 0)
            continue;
        a = (char *) fresh + s->offset;
        b = (char *) cur + s->offset;
        memcpy(tmp, a, size);
        memcpy(a, b, size);
        memcpy(b, tmp, size);
    }
}

int
settings_table_setter(const settings_table *t, void *base, const char *name, size_t len,
                      const char *value, const char *where, char *err, size_t errlen)
{
    const setting *s = settings_find(t, name, len);

    if (s == NULL) {
        set_err(err, errlen, "%s: unknown setting \"%.*s\"", where, (int) len, name);
        return SETTINGS_UNKNOWN;
    }
    return settings_set(s, base, value, where, err, errlen);
}

/* ---- the file ----------------------------------------------------------- */

/* One value at p (quoted or bare) into out; the position after it, or NULL
 * on a syntax error. */
static const char *
parse_value(const char *p, char *out, size_t outlen)
{
    size_t n = 0;

    if (*p == '\'' || *p == '"') {
        char q = *p++;

        for (;;) {
            if (*p == '\0' || *p == '\n')
                return NULL;           /* unterminated */
            if (*p == q) {
                if (p[1] != q) {
                    p++;
                    break;
                }
                p++;                   /* doubled quote */
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

char *
settings_read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL) {
        set_err(err, errlen, "cannot open config file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t got;

        if (len + 4096 + 1 > cap) {
            char *nb;

            cap = cap ? cap * 2 : 8192;
            if (cap > 16 * 1024 * 1024) {
                set_err(err, errlen, "config file \"%s\" is too large", path);
                goto fail;
            }
            if ((nb = realloc(buf, cap)) == NULL) {
                set_err(err, errlen, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got < 4096) {
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

/* One "name = value" line at *pp (not blank); moves *pp past it. */
static int
parse_line(const char **pp, const char *where, int allow_dots, char *value, size_t value_max,
           settings_setter set, void *ctx, char *err, size_t errlen)
{
    const char *p = *pp, *key, *next;
    size_t keylen;
    int rc;

    key = p;
    while (isalnum((unsigned char) *p) || *p == '_' || *p == '-' || (allow_dots && *p == '.'))
        p++;
    keylen = (size_t) (p - key);
    while (*p == ' ' || *p == '\t')
        p++;
    if (keylen == 0 || *p != '=') {
        set_err(err, errlen, "%s: expected \"name = value\"", where);
        return -1;
    }
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    next = parse_value(p, value, value_max);
    if (next == NULL) {
        set_err(err, errlen, "%s: unterminated or too long value for \"%.*s\"", where,
                (int) keylen, key);
        return -1;
    }
    p = skip_to_line_end(next);
    if (*p != '\n' && *p != '\0') {
        set_err(err, errlen, "%s: unexpected text after the value of \"%.*s\"", where,
                (int) keylen, key);
        return -1;
    }
    *pp = *p == '\n' ? p + 1 : p;
    rc = set(ctx, key, keylen, value, where, err, errlen);
    return rc < 0 ? -1 : 0;
}

int
settings_parse_text(const char *text, const char *file, int allow_dots, size_t value_max,
                    settings_setter set, void *ctx, char *err, size_t errlen)
{
    const char *p = text;
    int line = 0, rc = 0;
    char *value = malloc(value_max);

    if (value == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    while (*p && rc == 0) {
        char where[512];

        line++;
        p = skip_to_line_end(p);
        if (*p == '\n' || *p == '\0') {
            if (*p == '\n')
                p++;
            continue;
        }
        snprintf(where, sizeof where, "%s:%d", file, line);
        rc = parse_line(&p, where, allow_dots, value, value_max, set, ctx, err, errlen);
    }
    free(value);
    return rc;
}

/* ---- the environment and flags ------------------------------------------ */

const char *
settings_env_getn(char *const *envp, const char *name, size_t n)
{
    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

int
settings_is_bool_flag(const char *name)
{
    return strcmp(name, "help") == 0 || strcmp(name, "version") == 0 ||
           strcmp(name, "check-config") == 0;
}

/* "--name=value" / "--name value" / "-c file" at argv[i]: the argv slots
 * used (1 or 2), 0 when argv[i] is not an option, -1 with err filled. */
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
    if (settings_is_bool_flag(name)) {
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

/* Every <PREFIX><NAME> variable of the table's rows, through set. */
static int
load_env(const settings_source *src, char *const *envp, char *err, size_t errlen)
{
    const settings_table *t = src->table;

    for (size_t k = 0; k < t->n; k++) {
        char var[128];
        const char *v;
        size_t n;

        if (t->rows[k].flags & SET_NO_ENV)
            continue;
        copy_str(var, sizeof var, t->env_prefix);
        n = strlen(var);
        for (const char *c = t->rows[k].name; *c && n + 1 < sizeof var; c++)
            var[n++] = (char) toupper((unsigned char) *c);
        var[n] = '\0';
        v = settings_env_getn(envp, var, n);
        /* An empty variable counts as unset (VAR= clears, as in most tools). */
        if (v && *v && src->set(src->ctx, t->rows[k].name, strlen(t->rows[k].name), v, var, err,
                                errlen) < 0)
            return -1;
    }
    return 0;
}

/* The flags argv[1..end), through set (the config file's name aside). */
static int
load_flags(const settings_source *src, int argc, char **argv, int end, char *err, size_t errlen)
{
    for (int i = 1; i < end;) {
        char name[256], where[300];
        const char *value;
        int used = split_flag(argc, argv, i, name, sizeof name, &value, err, errlen), rc;

        if (strcmp(name, "config") != 0 && !settings_is_bool_flag(name)) {
            snprintf(where, sizeof where, "option --%s", name);
            rc = src->set(src->ctx, name, strlen(name), value, where, err, errlen);
            if (rc == SETTINGS_UNKNOWN)
                set_err(err, errlen, "unknown option --%s (see --help)", name);
            if (rc < 0)
                return -1;
        }
        i += used;
    }
    return 0;
}

int
settings_load(const settings_source *src, int argc, char **argv, char *const *envp,
              int *optind_out, char **config_file, char *err, size_t errlen)
{
    const char *file = NULL;
    char *text = NULL;
    int i, rc = -1;

    *config_file = NULL;
    /* Pass 1: where the options end, and which config file. */
    for (i = 1; i < argc;) {
        char name[256];
        const char *value;
        int used = split_flag(argc, argv, i, name, sizeof name, &value, err, errlen);

        if (used < 0)
            return -1;
        if (used == 0)
            break;
        if (strcmp(name, "config") == 0)
            file = value;
        i += used;
    }
    if (optind_out)
        *optind_out = i;
    if (file == NULL)
        file = settings_env_getn(envp, src->table->config_env, strlen(src->table->config_env));
    if (file && *file) {
        text = settings_read_file(file, err, errlen);
        if (text == NULL || settings_parse_text(text, file, src->allow_dots, src->value_max,
                                                src->set, src->ctx, err, errlen) < 0)
            goto done;
        if ((*config_file = strdup(file)) == NULL) {
            set_err(err, errlen, "out of memory");
            goto done;
        }
    }
    if (load_env(src, envp, err, errlen) < 0 || load_flags(src, argc, argv, i, err, errlen) < 0)
        goto done;
    rc = 0;
done:
    if (rc < 0) {
        free(*config_file);
        *config_file = NULL;
    }
    free(text);
    return rc;
}
