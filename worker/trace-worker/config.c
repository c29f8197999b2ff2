/*
 * config.c: trace-worker's settings: one row each in the settings engine's
 * table (lib/settings.h has the engine, the sources and the file syntax).
 * Environment variables are TRACE_<NAME>, e.g. TRACE_CONNINFO; the file is
 * -c / --config, else TRACE_CONFIG.  The conninfo is secret: --check-config
 * prints it as '********'.
 */
#define _GNU_SOURCE
#include "config.h"

#include "operator.h"

#include "log.h"
#include "settings.h"
#include "util.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OFF(f) offsetof(worker_config, f)
#define SEC 1000.0
#define MB  (1024.0 * 1024)

static const setting rows[] = {
    {"conninfo", SET_STRING, OFF(conninfo), 0, 0, "", SET_SECRET,
     "libpq connection string or URI (secret: never logged)"},
    {"listen_conninfo", SET_STRING, OFF(listen_conninfo), 0, 0, "", SET_SECRET,
     "connection for LISTEN trace_wakeup, e.g. direct to PostgreSQL when conninfo goes through pgbouncer in transaction mode (default: conninfo)"},
    {"pg_options", SET_STRING, OFF(pg_options), 0, 0, "-c search_path=pg_catalog", 0,
     "libpq options sent at connect"},
    {"connect_timeout", SET_DURATION, OFF(connect_timeout_ms), 1 * SEC, 600 * SEC, "10s", SET_RELOADABLE,
     "how long one connection attempt may take"},
    {"reconnect_max", SET_DURATION, OFF(reconnect_max_ms), 100, 600 * SEC, "10s", SET_RELOADABLE,
     "cap of the exponential reconnect backoff (with jitter)"},
    {"worker_id", SET_STRING, OFF(worker_id), 0, 0, "", 0,
     "worker id recorded on each claim (default host:pid)"},
    {"runtimes", SET_STRING, OFF(runtimes), 0, 0, "ecs_platform,lambda", SET_RELOADABLE,
     "comma-separated runtimes whose tasks this worker claims"},
    {"concurrency", SET_INT, OFF(concurrency), 1, 256, "4", 0,
     "tasks run at once (one thread and one connection each)"},
    {"lease", SET_DURATION, OFF(lease_ms), 0, 86400 * SEC, "0s", SET_RELOADABLE,
     "lease asked for on claim; 0 = the job's lease"},
    {"poll_interval", SET_DURATION, OFF(poll_interval_ms), 10, 3600 * SEC, "5s", SET_RELOADABLE,
     "slow poll that backs up LISTEN wake-ups"},
    {"drain_timeout", SET_DURATION, OFF(drain_timeout_ms), 0, 86400 * SEC, "30s", SET_RELOADABLE,
     "on SIGTERM, how long in-flight tasks may finish before they are given back"},
    {"log_level", SET_ENUM, OFF(log_level), 0, 0, "info", SET_RELOADABLE,
     "debug, info, warn or error", settings_log_levels},
    {"log_format", SET_ENUM, OFF(log_format), 0, 0, "text", SET_RELOADABLE,
     "text or json (one object per line)", settings_log_formats},
    {"udf_dir", SET_STRING, OFF(udf_dir), 0, 0, "/usr/local/share/trace/udfs", SET_RELOADABLE,
     "directory holding UDF code; job entrypoints are relative to it"},
    {"scratch_dir", SET_STRING, OFF(scratch_dir), 0, 0, "/tmp", SET_RELOADABLE,
     "where per-attempt scratch directories are made (and removed)"},
    {"sandbox_user", SET_STRING, OFF(sandbox_user), 0, 0, "nobody", SET_RELOADABLE,
     "user UDFs run as when the worker runs as root"},
    {"bwrap_path", SET_STRING, OFF(bwrap_path), 0, 0, "/usr/bin/bwrap", SET_RELOADABLE,
     "bubblewrap binary"},
    {"python_path", SET_STRING, OFF(python_path), 0, 0, "/usr/bin/python3", SET_RELOADABLE,
     "interpreter for language: python"},
    {"node_path", SET_STRING, OFF(node_path), 0, 0, "/usr/bin/node", SET_RELOADABLE,
     "interpreter for language: typescript"},
    {"udf_timeout", SET_DURATION, OFF(udf_timeout_ms), 100, 86400 * SEC, "60s", SET_RELOADABLE,
     "wall-clock limit of a UDF run when the job sets no timeout"},
    {"udf_memory", SET_SIZE, OFF(udf_memory_bytes), 16 * MB, 1024LL * 1024 * MB, "512MB", SET_RELOADABLE,
     "memory limit (RLIMIT_DATA) of a UDF run when the job sets none"},
    {"udf_max_output", SET_SIZE, OFF(udf_max_output_bytes), 1024, 4096 * MB, "16MB", SET_RELOADABLE,
     "most bytes a UDF may write to stdout in one run"},
    {"udf_max_line", SET_SIZE, OFF(udf_max_line_bytes), 256, 256 * MB, "1MB", SET_RELOADABLE,
     "longest protocol line a UDF may write"},
    {"udf_max_file", SET_SIZE, OFF(udf_max_file_bytes), 0, 1024LL * 1024 * MB, "256MB", SET_RELOADABLE,
     "largest file a UDF may write (RLIMIT_FSIZE)"},
    {"udf_max_rows", SET_INT, OFF(udf_max_rows), 0, 100000000, "100000", SET_RELOADABLE,
     "most rows one UDF run may return"},
    {"udf_max_events", SET_INT, OFF(udf_max_events), 0, 1000000, "10000", SET_RELOADABLE,
     "most events one UDF run may emit"},
    {"udf_max_procs", SET_INT, OFF(udf_max_procs), 8, 100000, "256", SET_RELOADABLE,
     "process and thread limit (RLIMIT_NPROC) of the sandbox user"},
    {"udf_max_open_files", SET_INT, OFF(udf_max_open_files), 16, 1048576, "256", SET_RELOADABLE,
     "open file limit (RLIMIT_NOFILE) of a UDF"},
    {"rpc_gateway", SET_STRING, OFF(rpc_gateway), 0, 0, "http://127.0.0.1:8545", SET_RELOADABLE,
     "base URL of trace-rpc-gateway (or unix:/path of its socket); chain operators POST JSON-RPC to <rpc_gateway>/rpc/<job config rpc>"},
};

const settings_table worker_settings = {
    .program = "trace-worker",
    .rows = rows,
    .n = ARRAY_LEN(rows),
    .env_prefix = "TRACE_",
    .config_env = "TRACE_CONFIG",
};

int
config_set(worker_config *cfg, const char *name, const char *value, const char *source,
           char *err, size_t errlen)
{
    return settings_table_setter(&worker_settings, cfg, name, strlen(name), value, source, err,
                                 errlen) < 0 ? -1 : 0;
}

int
config_defaults(worker_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    if (settings_defaults(&worker_settings, cfg, 0, err, errlen) < 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

void
config_free(worker_config *cfg)
{
    settings_free(&worker_settings, cfg, 0);
    free(cfg->config_file);
    cfg->config_file = NULL;
}

/* The sources' setter: a row of the table. */
static int
set_by_name(void *ctx, const char *name, size_t len, const char *value, const char *where,
            char *err, size_t errlen)
{
    return settings_table_setter(&worker_settings, ctx, name, len, value, where, err, errlen);
}

int
config_parse_text(worker_config *cfg, const char *text, const char *name, char *err,
                  size_t errlen)
{
    return settings_parse_text(text, name, 0, 65536, set_by_name, cfg, err, errlen);
}

int
config_load(worker_config *cfg, int argc, char **argv, char *const *envp, int *optind_out,
            char *err, size_t errlen)
{
    settings_source src = {
        .table = &worker_settings, .set = set_by_name, .ctx = cfg, .value_max = 65536,
    };

    if (config_defaults(cfg, err, errlen) < 0)
        return -1;
    if (settings_load(&src, argc, argv, envp, optind_out, &cfg->config_file, err, errlen) < 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

void
config_restart_only_changes(const worker_config *a, const worker_config *b, char *buf, size_t n)
{
    buf[0] = '\0';
    settings_restart_changes(&worker_settings, 0, a, b, "", buf, n);
}

void
config_dump(const worker_config *cfg, FILE *out)
{
    settings_dump(&worker_settings, cfg, 0, "", out);
}

int
config_op_settings(const worker_config *cfg, op_settings *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    copy_str(st->udf_dir, sizeof st->udf_dir, cfg->udf_dir);
    copy_str(st->scratch_dir, sizeof st->scratch_dir, cfg->scratch_dir);
    copy_str(st->bwrap_path, sizeof st->bwrap_path, cfg->bwrap_path);
    copy_str(st->python_path, sizeof st->python_path, cfg->python_path);
    copy_str(st->node_path, sizeof st->node_path, cfg->node_path);
    st->udf_timeout_ms = cfg->udf_timeout_ms;
    st->udf_memory_bytes = cfg->udf_memory_bytes;
    st->udf_max_output_bytes = cfg->udf_max_output_bytes;
    st->udf_max_line_bytes = cfg->udf_max_line_bytes;
    st->udf_max_file_bytes = cfg->udf_max_file_bytes;
    st->udf_max_rows = cfg->udf_max_rows;
    st->udf_max_events = cfg->udf_max_events;
    st->udf_max_procs = cfg->udf_max_procs;
    st->udf_max_open_files = cfg->udf_max_open_files;
    copy_str(st->rpc_gateway, sizeof st->rpc_gateway, cfg->rpc_gateway);
    if (geteuid() == 0) {
        struct passwd pw, *found = NULL;
        char buf[4096];

        if (getpwnam_r(cfg->sandbox_user, &pw, buf, sizeof buf, &found) != 0 || !found) {
            set_err(err, errlen, "sandbox_user \"%s\" does not exist", cfg->sandbox_user);
            return -1;
        }
        if (pw.pw_uid == 0) {
            set_err(err, errlen, "sandbox_user must not be root");
            return -1;
        }
        st->drop_privileges = 1;
        st->sandbox_uid = pw.pw_uid;
        st->sandbox_gid = pw.pw_gid;
    }
    return 0;
}

int
config_runtimes_literal(const char *csv, char *out, size_t n, char *err, size_t errlen)
{
    size_t len = 0;
    int count = 0;

    out[len++] = '{';
    for (const char *p = csv; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (count++)
            out[len++] = ',';
        out[len++] = '"';
        while (*p && *p != ',' && *p != ' ') {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
                set_err(err, errlen, "runtimes: \"%s\" is not a list of runtime names", csv);
                return -1;
            }
            if (len + 4 >= n) {
                set_err(err, errlen, "runtimes: too long");
                return -1;
            }
            out[len++] = *p++;
        }
        out[len++] = '"';
    }
    if (count == 0) {
        set_err(err, errlen, "runtimes: no runtime given");
        return -1;
    }
    out[len++] = '}';
    out[len] = '\0';
    return 0;
}
