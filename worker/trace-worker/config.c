/*
 * config.c: the settings table, the config file parser and the three
 * sources (file, environment, flags).
 *
 * File syntax, as postgresql.conf:   name = value   # comment
 * Values may be quoted with '...' or "..." (then # and spaces are literal;
 * a doubled quote inside stands for itself).  Names accept - or _.
 * Environment: TRACE_<NAME> in upper case, e.g. TRACE_CONNINFO; an empty
 * variable counts as unset.
 * Flags: --name=value or --name value.
 */
#define _GNU_SOURCE
#include "config.h"
#include "conf.h"

#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum cfg_type { T_STR, T_INT, T_DURATION, T_SIZE, T_LEVEL, T_FORMAT };

#define F_SECRET   1   /* never printed */
#define F_RESTART  2   /* a reload cannot change it */

typedef struct cfg_entry {
    const char *name;
    enum cfg_type type;
    size_t offset;
    int64_t min, max;
    const char *dflt;
    int flags;
    const char *help;
} cfg_entry;

#define OFF(f) offsetof(worker_config, f)
#define SEC 1000
#define MB  (1024LL * 1024)

static const cfg_entry entries[] = {
    {"conninfo", T_STR, OFF(conninfo), 0, 0, "", F_SECRET | F_RESTART,
     "libpq connection string or URI (secret: never logged)"},
    {"listen_conninfo", T_STR, OFF(listen_conninfo), 0, 0, "", F_SECRET | F_RESTART,
     "connection for LISTEN trace_wakeup, e.g. direct to PostgreSQL when conninfo goes through pgbouncer in transaction mode (default: conninfo)"},
    {"pg_options", T_STR, OFF(pg_options), 0, 0, "-c search_path=pg_catalog", F_RESTART,
     "libpq options sent at connect"},
    {"connect_timeout", T_DURATION, OFF(connect_timeout_ms), 1 * SEC, 600 * SEC, "10s", 0,
     "how long one connection attempt may take"},
    {"reconnect_max", T_DURATION, OFF(reconnect_max_ms), 100, 600 * SEC, "10s", 0,
     "cap of the exponential reconnect backoff (with jitter)"},
    {"worker_id", T_STR, OFF(worker_id), 0, 0, "", F_RESTART,
     "worker id recorded on each claim (default host:pid)"},
    {"runtimes", T_STR, OFF(runtimes), 0, 0, "ecs_platform,lambda", 0,
     "comma-separated runtimes whose tasks this worker claims"},
    {"concurrency", T_INT, OFF(concurrency), 1, 256, "4", F_RESTART,
     "tasks run at once (one thread and one connection each)"},
    {"lease", T_DURATION, OFF(lease_ms), 0, 86400 * SEC, "0s", 0,
     "lease asked for on claim; 0 = the job's lease"},
    {"poll_interval", T_DURATION, OFF(poll_interval_ms), 10, 3600 * SEC, "5s", 0,
     "slow poll that backs up LISTEN wake-ups"},
    {"drain_timeout", T_DURATION, OFF(drain_timeout_ms), 0, 86400 * SEC, "30s", 0,
     "on SIGTERM, how long in-flight tasks may finish before they are given back"},
    {"log_level", T_LEVEL, OFF(log_level), 0, 0, "info", 0, "debug, info, warn or error"},
    {"log_format", T_FORMAT, OFF(log_format), 0, 0, "text", 0, "text or json (one object per line)"},
    {"udf_dir", T_STR, OFF(udf_dir), 0, 0, "/usr/local/share/trace/udfs", 0,
     "directory holding UDF code; job entrypoints are relative to it"},
    {"scratch_dir", T_STR, OFF(scratch_dir), 0, 0, "/tmp", 0,
     "where per-attempt scratch directories are made (and removed)"},
    {"sandbox_user", T_STR, OFF(sandbox_user), 0, 0, "nobody", 0,
     "user UDFs run as when the worker runs as root"},
    {"bwrap_path", T_STR, OFF(bwrap_path), 0, 0, "/usr/bin/bwrap", 0, "bubblewrap binary"},
    {"python_path", T_STR, OFF(python_path), 0, 0, "/usr/bin/python3", 0,
     "interpreter for language: python"},
    {"node_path", T_STR, OFF(node_path), 0, 0, "/usr/bin/node", 0,
     "interpreter for language: typescript"},
    {"udf_timeout", T_DURATION, OFF(udf_timeout_ms), 100, 86400 * SEC, "60s", 0,
     "wall-clock limit of a UDF run when the job sets no timeout"},
    {"udf_memory", T_SIZE, OFF(udf_memory_bytes), 16 * MB, 1024LL * 1024 * MB, "512MB", 0,
     "memory limit (RLIMIT_DATA) of a UDF run when the job sets none"},
    {"udf_max_output", T_SIZE, OFF(udf_max_output_bytes), 1024, 4096 * MB, "16MB", 0,
     "most bytes a UDF may write to stdout in one run"},
    {"udf_max_line", T_SIZE, OFF(udf_max_line_bytes), 256, 256 * MB, "1MB", 0,
     "longest protocol line a UDF may write"},
    {"udf_max_file", T_SIZE, OFF(udf_max_file_bytes), 0, 1024LL * 1024 * MB, "256MB", 0,
     "largest file a UDF may write (RLIMIT_FSIZE)"},
    {"udf_max_rows", T_INT, OFF(udf_max_rows), 0, 100000000, "100000", 0,
     "most rows one UDF run may return"},
    {"udf_max_events", T_INT, OFF(udf_max_events), 0, 1000000, "10000", 0,
     "most events one UDF run may emit"},
    {"udf_max_procs", T_INT, OFF(udf_max_procs), 8, 100000, "256", 0,
     "process and thread limit (RLIMIT_NPROC) of the sandbox user"},
    {"udf_max_open_files", T_INT, OFF(udf_max_open_files), 16, 1048576, "256", 0,
     "open file limit (RLIMIT_NOFILE) of a UDF"},
    {"rpc_gateway", T_STR, OFF(rpc_gateway), 0, 0, "http://127.0.0.1:8545", 0,
     "base URL of trace-rpc-gateway (or unix:/path of its socket); chain operators POST JSON-RPC to <rpc_gateway>/rpc/<job config rpc>"},
};

#define NENTRIES ARRAY_LEN(entries)

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
set_entry(worker_config *cfg, const cfg_entry *e, const char *value, const char *source,
          char *err, size_t errlen)
{
    char *base = (char *) cfg;
    char msg[256];
    int64_t v = 0;

    switch (e->type) {
    case T_STR: {
        char **slot = (char **) (base + e->offset);
        char *copy = strdup(value);

        if (copy == NULL) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        free(*slot);
        *slot = copy;
        return 0;
    }
    case T_LEVEL:
        v = log_level_parse(value);
        if (v < 0) {
            set_err(err, errlen, "%s: invalid value \"%s\" for \"%s\" (debug, info, warn, error)",
                    source, value, e->name);
            return -1;
        }
        *(int *) (base + e->offset) = (int) v;
        return 0;
    case T_FORMAT:
        if (strcasecmp(value, "text") == 0)
            v = LOG_TEXT;
        else if (strcasecmp(value, "json") == 0)
            v = LOG_JSON;
        else {
            set_err(err, errlen, "%s: invalid value \"%s\" for \"%s\" (text, json)",
                    source, value, e->name);
            return -1;
        }
        *(int *) (base + e->offset) = (int) v;
        return 0;
    case T_INT: {
        char *end;

        errno = 0;
        long long n = strtoll(value, &end, 10);

        while (end && isspace((unsigned char) *end))
            end++;
        if (errno || end == value || *end != '\0') {
            set_err(err, errlen, "%s: invalid integer \"%s\" for \"%s\"", source, value, e->name);
            return -1;
        }
        v = n;
        break;
    }
    case T_DURATION:
        if (parse_duration_ms(value, 0, &v, msg, sizeof msg) < 0) {
            set_err(err, errlen, "%s: %s: %s", source, e->name, msg);
            return -1;
        }
        break;
    case T_SIZE:
        if (parse_size_bytes(value, 1, &v, msg, sizeof msg) < 0) {
            set_err(err, errlen, "%s: %s: %s", source, e->name, msg);
            return -1;
        }
        break;
    }
    if (v < e->min || v > e->max) {
        set_err(err, errlen, "%s: \"%s\" = %s is out of range (%lld to %lld%s)", source, e->name,
                value, (long long) e->min, (long long) e->max,
                e->type == T_DURATION ? " ms" : e->type == T_SIZE ? " bytes" : "");
        return -1;
    }
    if (e->type == T_INT)
        *(int *) (base + e->offset) = (int) v;
    else
        *(int64_t *) (base + e->offset) = v;
    return 0;
}

int
config_set(worker_config *cfg, const char *name, const char *value, const char *source,
           char *err, size_t errlen)
{
    const cfg_entry *e = find_entry(name, strlen(name));

    if (e == NULL) {
        set_err(err, errlen, "%s: unknown setting \"%s\"", source, name);
        return -1;
    }
    return set_entry(cfg, e, value, source, err, errlen);
}

int
config_defaults(worker_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NENTRIES; i++)
        if (set_entry(cfg, &entries[i], entries[i].dflt, "default", err, errlen) < 0) {
            config_free(cfg);
            return -1;
        }
    return 0;
}

void
config_free(worker_config *cfg)
{
    char *base = (char *) cfg;

    for (size_t i = 0; i < NENTRIES; i++)
        if (entries[i].type == T_STR) {
            char **slot = (char **) (base + entries[i].offset);

            free(*slot);
            *slot = NULL;
        }
    free(cfg->config_file);
    cfg->config_file = NULL;
}


/* conf_parse_text's setter: one line of a trace-worker config file. */
static int
config_set_line(void *ctx, const char *name, size_t len, const char *value, const char *where,
                char *err, size_t errlen)
{
    const cfg_entry *e = find_entry(name, len);

    if (e == NULL) {
        set_err(err, errlen, "%s: unknown setting \"%.*s\"", where, (int) len, name);
        return -1;
    }
    return set_entry((worker_config *) ctx, e, value, where, err, errlen);
}

int
config_parse_text(worker_config *cfg, const char *text, const char *name,
                  char *err, size_t errlen)
{
    return conf_parse_text(text, name, 0, 65536, config_set_line, cfg, err, errlen);
}

int
config_load(worker_config *cfg, int argc, char **argv, char *const *envp, int *optind_out,
            char *err, size_t errlen)
{
    const char *file = NULL;
    char name[128];
    char *text = NULL;
    int i, end;

    if (config_defaults(cfg, err, errlen) < 0)
        return -1;

    /* Pass 1: where the options end, and which config file. */
    for (i = 1; i < argc;) {
        const char *value;
        int used = conf_split_flag(argc, argv, i, name, sizeof name, &value, err, errlen);

        if (used < 0)
            goto fail;
        if (used == 0)
            break;
        if (strcmp(name, "config") == 0)
            file = value;
        i += used;
    }
    end = i;
    if (file == NULL)
        file = conf_env_get(envp, "TRACE_CONFIG");   /* "" = none */
    if (file && *file) {
        text = conf_read_file(file, err, errlen);
        if (text == NULL || config_parse_text(cfg, text, file, err, errlen) < 0)
            goto fail;
        cfg->config_file = strdup(file);
        if (cfg->config_file == NULL) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
    }

    /* The environment: TRACE_<NAME>. */
    for (size_t k = 0; k < NENTRIES; k++) {
        char var[128];
        const char *v;

        conf_env_name(var, sizeof var, "TRACE_", entries[k].name);
        v = conf_env_get(envp, var);
        /* An empty variable counts as unset (VAR= clears, as in most tools). */
        if (v && *v && set_entry(cfg, &entries[k], v, var, err, errlen) < 0)
            goto fail;
    }

    /* Pass 2: flags win. */
    for (i = 1; i < end;) {
        const char *value;
        char source[160];
        int used = conf_split_flag(argc, argv, i, name, sizeof name, &value, err, errlen);

        if (strcmp(name, "config") != 0 && !conf_is_bool_flag(name)) {
            snprintf(source, sizeof source, "option --%s", name);
            if (config_set(cfg, name, value, source, err, errlen) < 0) {
                if (strstr(err, "unknown setting"))
                    set_err(err, errlen, "unknown option --%s (see --help)", name);
                goto fail;
            }
        }
        i += used;
    }
    if (optind_out)
        *optind_out = end;
    free(text);
    return 0;
fail:
    free(text);
    config_free(cfg);
    return -1;
}

static void
format_value(const worker_config *cfg, const cfg_entry *e, char *buf, size_t n)
{
    const char *base = (const char *) cfg;

    switch (e->type) {
    case T_STR: {
        const char *s = *(char *const *) (base + e->offset);

        if ((e->flags & F_SECRET) && s && *s)
            copy_str(buf, n, "'********'");
        else
            snprintf(buf, n, "'%s'", s ? s : "");
        break;
    }
    case T_INT:
        snprintf(buf, n, "%d", *(const int *) (base + e->offset));
        break;
    case T_DURATION:
        snprintf(buf, n, "%lldms", (long long) *(const int64_t *) (base + e->offset));
        break;
    case T_SIZE:
        snprintf(buf, n, "%lldB", (long long) *(const int64_t *) (base + e->offset));
        break;
    case T_LEVEL:
        snprintf(buf, n, "%s", log_level_name(*(const int *) (base + e->offset)));
        break;
    case T_FORMAT:
        snprintf(buf, n, "%s", *(const int *) (base + e->offset) == LOG_JSON ? "json" : "text");
        break;
    }
}

void
config_restart_only_changes(const worker_config *a, const worker_config *b, char *buf, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < NENTRIES; i++) {
        char va[512], vb[512];
        const cfg_entry *e = &entries[i];
        const char *sa, *sb;

        if (!(e->flags & F_RESTART))
            continue;
        if (e->type == T_STR) {
            sa = *(char *const *) ((const char *) a + e->offset);
            sb = *(char *const *) ((const char *) b + e->offset);
            if (strcmp(sa ? sa : "", sb ? sb : "") == 0)
                continue;
        } else {
            format_value(a, e, va, sizeof va);
            format_value(b, e, vb, sizeof vb);
            if (strcmp(va, vb) == 0)
                continue;
        }
        if (buf[0])
            strncat(buf, ", ", n - strlen(buf) - 1);
        strncat(buf, e->name, n - strlen(buf) - 1);
    }
}

void
config_dump(const worker_config *cfg, FILE *out)
{
    for (size_t i = 0; i < NENTRIES; i++) {
        char v[1024];

        format_value(cfg, &entries[i], v, sizeof v);
        fprintf(out, "%s = %s\n", entries[i].name, v);
    }
}

void
config_usage(FILE *out)
{
    fprintf(out,
            "usage: trace-worker [options]\n"
            "       trace-worker run-udf [options] --language L --entrypoint PATH [--payload JSON] [--udf-config JSON]\n"
            "\n"
            "  -c, --config FILE   config file (also TRACE_CONFIG)\n"
            "  --check-config      print the effective settings (secrets masked) and exit\n"
            "  --help, --version\n"
            "\n"
            "Settings (flag --name, environment TRACE_NAME, file: name = value):\n");
    for (size_t i = 0; i < NENTRIES; i++) {
        char flag[64];

        snprintf(flag, sizeof flag, "--%s", entries[i].name);
        for (char *c = flag + 2; *c; c++)
            if (*c == '_')
                *c = '-';
        fprintf(out, "  %-22s %s [default: %s]%s\n", flag, entries[i].help,
                *entries[i].dflt ? entries[i].dflt : "none",
                (entries[i].flags & F_RESTART) ? " (restart to change)" : "");
    }
}
