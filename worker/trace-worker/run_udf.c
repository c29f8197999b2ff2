/*
 * run_udf.c: `trace-worker run-udf`: one UDF run in the sandbox, without a
 * database, for trying UDFs by hand.  Rows and events are printed as JSON
 * lines on stdout ({"type":"rows",...}, {"type":"event",...}), then the
 * outcome ({"type":"outcome","outcome":"succeeded"|"failed"|"stopped"}).
 * Exit code 0 when the UDF succeeded, 1 when it failed, 2 for bad usage.
 */
#define _GNU_SOURCE
#include "worker.h"

#include "log.h"
#include "sandbox.h"
#include "util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One output line {"type", "dataset", "partition_key", member: value}. */
static int
print_line(const char *type, const char *dataset, const char *key, const char *member,
           json_t *value, char *err, size_t errlen)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:O}", "type", type, "dataset", dataset,
                          "partition_key", key, member, value);

    if (o == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    json_dumpf(o, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(o);
    return 0;
}

static int
cli_emit(op_ctx *c, const char *dataset, const char *key, json_t *payload, char *err,
         size_t errlen)
{
    (void) c;
    return print_line("event", dataset, key, "payload", payload, err, errlen);
}

static int
cli_write_rows(op_ctx *c, const char *dataset, const char *key, json_t *rows, int64_t *written,
               char *err, size_t errlen)
{
    (void) c;
    *written = (int64_t) json_array_size(rows);
    return print_line("rows", dataset, key, "rows", rows, err, errlen);
}

static void
cli_log(op_ctx *c, int level, const char *msg)
{
    (void) c;
    log_msg(level, "%s", msg);
}

static void
cli_log_udf(op_ctx *c, int level, const char *msg)
{
    log_udf(level, 1, 1, msg);
    (void) c;
}

static volatile sig_atomic_t cli_stop;

static void
cli_on_signal(int sig)
{
    (void) sig;
    cli_stop = 1;
}

static int
cli_should_stop(op_ctx *c)
{
    (void) c;
    return cli_stop;
}

static void
cli_set_child(op_ctx *c, pid_t pgid)
{
    (void) c;
    (void) pgid;
}

int
run_udf_main(worker_config *cfg, const char *language, const char *entrypoint,
             const char *payload_text, const char *config_text)
{
    op_settings st;
    op_ctx ctx;
    op_result res;
    json_t *payload, *config, *task, *out;
    json_error_t jerr;
    char err[1024];
    int rc;

    log_configure(cfg->log_level, cfg->log_format, "run-udf");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, cli_on_signal);
    signal(SIGTERM, cli_on_signal);
    if (config_op_settings(cfg, &st, err, sizeof err) < 0 || sandbox_init(err, sizeof err) < 0) {
        fprintf(stderr, "trace-worker run-udf: %s\n", err);
        return 2;
    }
    payload = json_loads(payload_text ? payload_text : "{}", 0, &jerr);
    config = json_loads(config_text ? config_text : "{}", 0, &jerr);
    if (payload == NULL || config == NULL || !json_is_object(config)) {
        fprintf(stderr, "trace-worker run-udf: --payload and --udf-config must be JSON "
                "(--udf-config an object)\n");
        return 2;
    }
    if (language)
        json_object_set_new(config, "language", json_string(language));
    if (entrypoint)
        json_object_set_new(config, "entrypoint", json_string(entrypoint));
    task = json_pack("{s:i,s:i,s:s,s:o,s:{s:s,s:s,s:o}}", "task_id", 0, "attempt", 1, "mode",
                     "manual", "payload", payload, "job", "name", "run_udf", "operator", "udf",
                     "config", config);
    memset(&ctx, 0, sizeof ctx);
    memset(&res, 0, sizeof res);
    ctx.settings = &st;
    ctx.attempt = 1;
    ctx.emit_event = cli_emit;
    ctx.write_rows = cli_write_rows;
    ctx.log = cli_log;
    ctx.log_udf = cli_log_udf;
    ctx.should_stop = cli_should_stop;
    ctx.set_child = cli_set_child;
    op_udf_run(&ctx, task, &res);
    out = json_pack("{s:s,s:s}", "type", "outcome", "outcome",
                    res.outcome == OP_SUCCEEDED ? "succeeded"
                    : res.outcome == OP_FAILED  ? "failed" : "stopped");
    if (res.outcome == OP_SUCCEEDED)
        json_object_set(out, "result", res.result ? res.result : json_null());
    else {
        json_object_set_new(out, "error", json_string(res.error));
        json_object_set_new(out, "retryable", json_boolean(res.retryable));
    }
    json_dumpf(out, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    fflush(stdout);
    rc = res.outcome == OP_SUCCEEDED ? 0 : 1;
    json_decref(out);
    json_decref(res.result);
    json_decref(task);
    return rc;
}
