/*
 * main.c: trace-worker, the thin worker of Trace.
 *
 * It claims tasks of its runtimes from PostgreSQL (trace.claim_tasks), runs
 * each through its operator, keeps the lease with heartbeats, and completes
 * or fails it.  It holds nothing a crash can lose: a kill -9 at any moment
 * leaves leases that expire, and the dispatcher hands the tasks to another
 * attempt.  worker.h lists the files; lib/daemon.h has the exit codes and
 * the signals, the same in every Trace program.
 *
 * This is the only file of trace-worker that decides the exit code.
 */
#define _GNU_SOURCE
#include "worker.h"

#include "daemon.h"
#include "log.h"
#include "protocol.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static void
version_extra(FILE *out)
{
    fprintf(out, " (protocol %s)", UDF_PROTOCOL);
}

static const daemon_info info = {
    .program = "trace-worker",
    .version = TRACE_WORKER_VERSION,
    .usage = "usage: trace-worker [options]\n"
             "       trace-worker run-udf [options] --language L --entrypoint PATH [--payload JSON] [--udf-config JSON]\n"
             "\n"
             "  -c, --config FILE   config file (also TRACE_CONFIG)\n"
             "  --check-config      print the effective settings (secrets masked) and exit\n"
             "  --help, --version   (--help=markdown: the settings as a Markdown table)\n"
             "\n"
             "Settings (flag --name, environment TRACE_NAME, file: name = value):\n",
    .settings = &worker_settings,
    .version_extra = version_extra,
};

/* run-udf's own options, taken out of argv before the settings see it. */
typedef struct udf_args {
    int         run_udf;
    const char *language, *entrypoint, *payload, *udf_config;
} udf_args;

/* Copies argv without run-udf's word and options into args.  0, or -1
 * with err filled. */
static int
split_args(int argc, char **argv, char **args, int *nargs, udf_args *u, char *err, size_t errlen)
{
    *nargs = 0;
    args[(*nargs)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], **target = NULL;

        if (i == 1 && strcmp(a, "run-udf") == 0) {
            u->run_udf = 1;
            continue;
        }
        if (u->run_udf) {
            target = strcmp(a, "--language") == 0     ? &u->language
                     : strcmp(a, "--entrypoint") == 0 ? &u->entrypoint
                     : strcmp(a, "--payload") == 0    ? &u->payload
                     : strcmp(a, "--udf-config") == 0 ? &u->udf_config : NULL;
        }
        if (target) {
            if (i + 1 >= argc) {
                set_err(err, errlen, "%s needs a value", a);
                return -1;
            }
            *target = argv[++i];
            continue;
        }
        args[(*nargs)++] = argv[i];
    }
    args[*nargs] = NULL;
    return 0;
}

/* --check-config: the settings, and what they mean beyond their rows. */
static int
check_config(worker_config *cfg)
{
    char err[1024], runtimes[512];
    op_settings st;

    if (config_runtimes_literal(cfg->runtimes, runtimes, sizeof runtimes, err, sizeof err) < 0 ||
        config_op_settings(cfg, &st, err, sizeof err) < 0) {
        fprintf(stderr, "trace-worker: %s\n", err);
        return TRACE_EXIT_CONFIG;
    }
    config_dump(cfg, stdout);
    return TRACE_EXIT_OK;
}

int
main(int argc, char **argv)
{
    daemon_mode mode = daemon_options(&info, argc, argv);
    worker_config *cfg = calloc(1, sizeof *cfg);
    char **args = calloc((size_t) argc + 1, sizeof *args);
    udf_args u = {0};
    char err[1024];
    int nargs = 0, rest = 0, rc;

    if (mode == DAEMON_DONE)
        return TRACE_EXIT_OK;
    pgc_set_application_name("trace-worker");
    if (cfg == NULL || args == NULL) {
        fprintf(stderr, "trace-worker: out of memory\n");
        return TRACE_EXIT_RUNTIME;
    }
    if (split_args(argc, argv, args, &nargs, &u, err, sizeof err) < 0 ||
        config_load(cfg, nargs, args, environ, &rest, err, sizeof err) < 0) {
        fprintf(stderr, "trace-worker: %s\n", err);
        return TRACE_EXIT_CONFIG;
    }
    if (rest < nargs) {
        fprintf(stderr, "trace-worker: unexpected argument \"%s\" (see --help)\n", args[rest]);
        return TRACE_EXIT_CONFIG;
    }
    if (mode == DAEMON_CHECK_CONFIG)
        rc = check_config(cfg);
    else if (u.run_udf)
        rc = run_udf_main(cfg, u.language, u.entrypoint, u.payload, u.udf_config);
    else {
        daemon_signals_init();
        rc = worker_run(cfg, nargs, args);      /* frees cfg */
        cfg = NULL;
    }
    if (cfg) {
        config_free(cfg);
        free(cfg);
    }
    free(args);
    return rc;
}
