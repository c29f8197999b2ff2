/*
 * operator.c: the table of built-in operators, and `noop`.
 *
 * noop completes at once.  Its payload can ask for test behaviour:
 *   {"sleep_ms": N}   sleep N ms cooperatively (stops on cancel/drain)
 *   {"fail": "msg"}   fail the attempt (retryable) with msg
 *   {"fail_permanent": "msg"}  fail without retry
 *   {"emit": [{"dataset": D, "key": K, "payload": {...}}, ...]}  emit events
 *                     (before the sleep, so a test can see them mid-task)
 *   {"emit_after": [...]}  emit events after the sleep
 *   {"result": {...}} complete with this result
 */
#define _GNU_SOURCE
#include "operator.h"

#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const op_def operators[] = {
    {"noop", op_noop_run, "does nothing; payload options for tests (sleep_ms, fail, emit)"},
    {"udf", op_udf_run, "runs user code (python, typescript, rust) in the sandbox"},
    {"block_follower", op_block_follower_run,
     "follows a chain's head through the RPC gateway into blocks/transactions/logs, reorg-safe"},
    {"range_ingest", op_range_ingest_run,
     "backfills a block range into blocks/transactions/logs, idempotently"},
};

const op_def *
operator_find(const char *name)
{
    for (size_t i = 0; name && i < ARRAY_LEN(operators); i++)
        if (strcmp(operators[i].name, name) == 0)
            return &operators[i];
    return NULL;
}

void
operator_names(char *buf, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(operators); i++) {
        if (i)
            strncat(buf, ", ", n - strlen(buf) - 1);
        strncat(buf, operators[i].name, n - strlen(buf) - 1);
    }
}

void
op_fail(op_result *res, int retryable, const char *fmt, ...)
{
    va_list ap;

    res->outcome = OP_FAILED;
    res->retryable = retryable;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
}

static int
stop_cb(void *arg)
{
    op_ctx *ctx = arg;

    return ctx->should_stop(ctx);
}

/* Emits each {"dataset","key","payload"} of an array. */
static int
noop_emit(op_ctx *ctx, json_t *list, op_result *res)
{
    size_t i;
    json_t *e;

    if (list == NULL)
        return 0;
    if (!json_is_array(list)) {
        op_fail(res, 0, "noop: \"emit\" must be an array");
        return -1;
    }
    json_array_foreach(list, i, e) {
        const char *ds = json_string_value(json_object_get(e, "dataset"));
        const char *key = json_string_value(json_object_get(e, "key"));
        json_t *payload = json_object_get(e, "payload");
        json_t *empty = NULL;
        char err[1024];
        int rc;

        if (ds == NULL || key == NULL) {
            op_fail(res, 0, "noop: emit[%zu] needs string \"dataset\" and \"key\"", i);
            return -1;
        }
        if (payload == NULL)
            payload = empty = json_object();
        rc = ctx->emit_event(ctx, ds, key, payload, err, sizeof err);
        json_decref(empty);
        if (rc < 0) {
            op_fail(res, rc == -1, "noop: emit failed: %s", err);
            return -1;
        }
    }
    return 0;
}

int
op_noop_run(op_ctx *ctx, json_t *task, op_result *res)
{
    json_t *payload = json_object_get(task, "payload");
    json_t *v;

    if (noop_emit(ctx, json_object_get(payload, "emit"), res) < 0)
        return 0;
    v = json_object_get(payload, "sleep_ms");
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        sleep_ms_interruptible(json_integer_value(v), stop_cb, ctx);
        if (ctx->should_stop(ctx)) {
            res->outcome = OP_STOPPED;
            copy_str(res->error, sizeof res->error, "noop: stopped while sleeping");
            return 0;
        }
    }
    if (noop_emit(ctx, json_object_get(payload, "emit_after"), res) < 0)
        return 0;
    v = json_object_get(payload, "fail");
    if (json_is_string(v)) {
        op_fail(res, 1, "%s", json_string_value(v));
        return 0;
    }
    v = json_object_get(payload, "fail_permanent");
    if (json_is_string(v)) {
        op_fail(res, 0, "%s", json_string_value(v));
        return 0;
    }
    res->outcome = OP_SUCCEEDED;
    v = json_object_get(payload, "result");
    res->result = v ? json_incref(v) : NULL;
    return 0;
}
