/*
 * config.h: trace-worker's settings.
 *
 * One table (config.c, rows of the settings engine, lib/settings.h) lists
 * every setting with its type, range, default and whether a SIGHUP reload
 * may change it.  Sources, weakest first: built-in defaults, the config
 * file, TRACE_* environment variables, command-line flags.  A reload
 * re-reads all of them, so a value given by flag or environment keeps
 * winning over the file.
 *
 * Secrets (the conninfo) are never printed: config_dump() masks them.
 */
#ifndef TRACE_CONFIG_H
#define TRACE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "settings.h"

typedef struct worker_config {
    /* Database */
    char   *conninfo;           /* libpq conninfo or URI; secret */
    char   *listen_conninfo;    /* for LISTEN (bypass pgbouncer); "" = conninfo */
    char   *pg_options;         /* libpq "options", e.g. -c search_path=pg_catalog */
    int64_t connect_timeout_ms;
    int64_t reconnect_max_ms;   /* cap of the reconnect backoff */

    /* Work */
    char   *worker_id;          /* "" = host:pid */
    char   *runtimes;           /* comma-separated */
    int     concurrency;
    int64_t lease_ms;           /* 0 = the job's lease */
    int64_t poll_interval_ms;
    int64_t drain_timeout_ms;

    /* Logging */
    int     log_level;          /* enum log_level */
    int     log_format;         /* enum log_format */

    /* UDF sandbox */
    char   *udf_dir;
    char   *scratch_dir;
    char   *sandbox_user;       /* used when started as root */
    char   *bwrap_path;
    char   *python_path;
    char   *node_path;
    int64_t udf_timeout_ms;     /* default when the job gives none */
    int64_t udf_memory_bytes;   /* default when the job gives none */
    int64_t udf_max_output_bytes;
    int64_t udf_max_line_bytes;
    int64_t udf_max_file_bytes;
    int     udf_max_rows;
    int     udf_max_events;
    int     udf_max_procs;
    int     udf_max_open_files;

    /* Chain operators (block_follower, range_ingest) */
    char   *rpc_gateway;        /* base URL of trace-rpc-gateway */

    /* Where the file came from; not a setting. */
    char   *config_file;
} worker_config;

/* Fills cfg from defaults, the config file (flag --config / -c, else
 * TRACE_CONFIG), the environment and argv.  argv[0] is skipped; parsing
 * stops at the first non-option argument, whose index goes to *optind_out
 * (may be NULL).  Returns 0, or -1 with err filled (naming the setting and
 * the source).  On error cfg is left freed. */
int config_load(worker_config *cfg, int argc, char **argv, char *const *envp,
                int *optind_out, char *err, size_t errlen);

/* Parses the contents of a config file into cfg (which must hold values,
 * e.g. from config_defaults).  name is used in messages.  0 or -1. */
int config_parse_text(worker_config *cfg, const char *text, const char *name,
                      char *err, size_t errlen);

/* Sets cfg to the built-in defaults.  0 or -1 (out of memory). */
int config_defaults(worker_config *cfg, char *err, size_t errlen);

/* Sets one setting by name (dashes or underscores) from text. */
int config_set(worker_config *cfg, const char *name, const char *value,
               const char *source, char *err, size_t errlen);

/* Names of settings that differ between a and b and cannot change without
 * a restart, comma-separated into buf ("" when none). */
void config_restart_only_changes(const worker_config *a, const worker_config *b,
                                 char *buf, size_t n);

/* Prints every setting as "name = value" (secrets masked). */
void config_dump(const worker_config *cfg, FILE *out);

void config_free(worker_config *cfg);

/* The table: --help, --check-config, reload. */
extern const settings_table worker_settings;

struct op_settings;

/* What the settings mean beyond their rows: the runtimes as a text[]
 * literal for trace.claim_tasks ({"a","b"}), and the operators' settings
 * (resolving the sandbox user when running as root).  Checked at start,
 * by --check-config and on reload.  0, or -1 with err filled. */
int config_runtimes_literal(const char *csv, char *out, size_t n, char *err, size_t errlen);
int config_op_settings(const worker_config *cfg, struct op_settings *st, char *err, size_t errlen);

#endif
