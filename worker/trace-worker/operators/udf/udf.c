/*
 * op_udf.c: the `udf` operator: user code in Python, TypeScript or Rust,
 * run in the sandbox (sandbox.c) and spoken to in trace-udf/1 (protocol.c).
 *
 * Job config: {language: python|typescript|rust, entrypoint: path relative
 * to udf_dir, timeout: 30000 | "30s" (a number is milliseconds; default
 * udf_timeout), memory: 268435456 | "256MB" (a number is bytes; default
 * udf_memory)}: the numbers are what trace.deploy_dag stores.
 *
 * Nothing is written while the UDF runs.  Its rows and events are validated
 * and kept; only when it ends with exit 0 and {"ok":true} does the worker
 * write each partition's rows (one trace.write_rows call per partition,
 * which replaces that partition), then emit the events, then the task
 * completes.  Any other ending fails the attempt with the reason: the
 * UDF's own error, a protocol violation (naming the line), a limit hit,
 * the timeout, a signal (named), an exit code, or a sandbox that could not
 * be set up.  The child is always reaped and its scratch dir removed.
 */
#define _GNU_SOURCE
#include "operator.h"

#include "log.h"
#include "protocol.h"
#include "sandbox.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define STDERR_TAIL 1500

typedef struct udf_config {
    char    language[16];
    char    entrypoint[512];
    int64_t timeout_ms;
    int64_t memory_bytes;
} udf_config;

/* Entry points are plain relative paths inside udf_dir. */
static int
check_entrypoint(const char *e, char *err, size_t errlen)
{
    if (e[0] == '\0' || e[0] == '/') {
        set_err(err, errlen, "udf: \"entrypoint\" must be a path relative to the UDF directory");
        return -1;
    }
    for (const char *p = e; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') ||
              ('0' <= *p && *p <= '9') || *p == '_' || *p == '-' || *p == '.' || *p == '/')) {
            set_err(err, errlen, "udf: \"entrypoint\" may use only letters, digits, _ - . /");
            return -1;
        }
    if (strstr(e, "..") || strstr(e, "//")) {
        set_err(err, errlen, "udf: \"entrypoint\" must not contain \"..\" or \"//\"");
        return -1;
    }
    return 0;
}

static int
parse_config(json_t *config, const op_settings *st, udf_config *uc, char *err, size_t errlen)
{
    json_t *v;
    const char *s;
    char msg[256];

    memset(uc, 0, sizeof *uc);
    if (!json_is_object(config)) {
        set_err(err, errlen, "udf: the job's config must be an object");
        return -1;
    }
    s = json_string_value(json_object_get(config, "language"));
    if (s == NULL || (strcmp(s, "python") && strcmp(s, "typescript") && strcmp(s, "rust"))) {
        set_err(err, errlen, "udf: config \"language\" must be python, typescript or rust");
        return -1;
    }
    copy_str(uc->language, sizeof uc->language, s);
    s = json_string_value(json_object_get(config, "entrypoint"));
    if (s == NULL) {
        set_err(err, errlen, "udf: config \"entrypoint\" (a path in the UDF directory) is missing");
        return -1;
    }
    if (strlen(s) >= sizeof uc->entrypoint) {
        set_err(err, errlen, "udf: config \"entrypoint\" is too long");
        return -1;
    }
    if (check_entrypoint(s, err, errlen) < 0)
        return -1;
    copy_str(uc->entrypoint, sizeof uc->entrypoint, s);

    uc->timeout_ms = st->udf_timeout_ms;
    /* Numbers are milliseconds and bytes, as trace.deploy_dag stores "30s"
     * and "256MB"; strings with a unit are accepted too. */
    v = json_object_get(config, "timeout");
    if (json_is_number(v)) {
        uc->timeout_ms = (int64_t) json_number_value(v);
    } else if (json_is_string(v)) {
        if (parse_duration_ms(json_string_value(v), 1, &uc->timeout_ms, msg, sizeof msg) < 0) {
            set_err(err, errlen, "udf: config \"timeout\": %s", msg);
            return -1;
        }
    } else if (v && !json_is_null(v)) {
        set_err(err, errlen, "udf: config \"timeout\" must be milliseconds or a duration like \"30s\"");
        return -1;
    }
    if (uc->timeout_ms < 100 || uc->timeout_ms > 86400000) {
        set_err(err, errlen, "udf: config \"timeout\" must be between 100ms and 24h");
        return -1;
    }
    uc->memory_bytes = st->udf_memory_bytes;
    v = json_object_get(config, "memory");
    if (json_is_number(v)) {
        uc->memory_bytes = (int64_t) json_number_value(v);
    } else if (json_is_string(v)) {
        if (parse_size_bytes(json_string_value(v), 1, &uc->memory_bytes, msg,
                             sizeof msg) < 0) {
            set_err(err, errlen, "udf: config \"memory\": %s", msg);
            return -1;
        }
    } else if (v && !json_is_null(v)) {
        set_err(err, errlen, "udf: config \"memory\" must be bytes or a size like \"256MB\"");
        return -1;
    }
    if (uc->memory_bytes < (16LL << 20) || uc->memory_bytes > (1LL << 40)) {
        set_err(err, errlen, "udf: config \"memory\" must be between 16MB and 1TB");
        return -1;
    }
    return 0;
}

/* The entry point must exist inside udf_dir (after resolving symlinks). */
static int
resolve_entrypoint(const op_settings *st, const udf_config *uc, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX * 2], real[PATH_MAX];
    struct stat sb;
    size_t dl;

    if (realpath(st->udf_dir, dir) == NULL) {
        set_err(err, errlen, "udf: the UDF directory \"%s\" is not usable: %s", st->udf_dir,
                strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s", dir, uc->entrypoint);
    if (realpath(path, real) == NULL || stat(real, &sb) < 0) {
        set_err(err, errlen, "udf: entrypoint \"%s\" not found in the UDF directory",
                uc->entrypoint);
        return -1;
    }
    dl = strlen(dir);
    if (strncmp(real, dir, dl) != 0 || real[dl] != '/') {
        set_err(err, errlen, "udf: entrypoint \"%s\" leads outside the UDF directory",
                uc->entrypoint);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        set_err(err, errlen, "udf: entrypoint \"%s\" is not a regular file", uc->entrypoint);
        return -1;
    }
    if (strcmp(uc->language, "rust") == 0 && !(sb.st_mode & S_IXOTH)) {
        set_err(err, errlen, "udf: rust entrypoint \"%s\" must be a built executable "
                "(world-executable, e.g. target/release/NAME)", uc->entrypoint);
        return -1;
    }
    return 0;
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Keeps the last STDERR_TAIL bytes of the UDF's stderr. */
typedef struct tail_buf {
    char   data[STDERR_TAIL];
    size_t len;
    int64_t total;
} tail_buf;

static void
tail_add(tail_buf *t, const char *p, size_t n)
{
    t->total += (int64_t) n;
    if (n >= sizeof t->data) {
        memcpy(t->data, p + n - sizeof t->data, sizeof t->data);
        t->len = sizeof t->data;
        return;
    }
    if (t->len + n > sizeof t->data) {
        size_t drop = t->len + n - sizeof t->data;

        memmove(t->data, t->data + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->data + t->len, p, n);
    t->len += n;
}

/* The tail as one printable line ("" when empty). */
static void
tail_text(const tail_buf *t, char *out, size_t n)
{
    size_t j = 0, i = 0;

    /* Trim trailing newlines; newlines inside become " | ". */
    size_t len = t->len;

    while (len > 0 && (t->data[len - 1] == '\n' || t->data[len - 1] == '\r'))
        len--;
    if (t->total > (int64_t) t->len && j + 4 < n) {
        memcpy(out, "... ", 4);
        j = 4;
    }
    for (i = 0; i < len && j + 4 < n; i++) {
        unsigned char c = (unsigned char) t->data[i];

        if (c == '\n') {
            memcpy(out + j, " | ", 3);
            j += 3;
        } else if (c < 0x20 || c == 0x7f) {
            out[j++] = ' ';
        } else {
            out[j++] = (char) c;
        }
    }
    out[j] = '\0';
}

static void
on_udf_log(void *arg, int level, const char *message)
{
    op_ctx *ctx = arg;

    ctx->log_udf(ctx, level, message);
}

/* {"type":"task","protocol":"trace-udf/1","task":{...}}\n; caller frees.
 * The task carries what task_fetch gave: task_id, attempt, mode, payload,
 * the job's config, name and dag, the input event, and inputs/outputs
 * (the dataset ids) when the fetch document has them.  Never the lease. */
static char *
task_line(json_t *task, size_t *len)
{
    json_t *job = json_object_get(task, "job");
    json_t *inputs = json_object_get(task, "inputs");
    json_t *payload = json_object_get(task, "payload");
    json_t *outputs = json_object_get(task, "outputs");
    json_t *line;
    char *s;

    if (inputs == NULL && json_is_object(payload))
        inputs = json_object_get(payload, "inputs");
    if (outputs == NULL)
        outputs = json_object_get(job, "outputs");
    line = json_pack("{s:s,s:s,s:{s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:{s:O,s:O},s:O,s:O}}",
                     "type", "task", "protocol", UDF_PROTOCOL, "task",
                     "task_id", json_object_get(task, "task_id") ?: json_null(),
                     "attempt", json_object_get(task, "attempt") ?: json_null(),
                     "mode", json_object_get(task, "mode") ?: json_null(),
                     "payload", payload ?: json_null(),
                     "config", json_object_get(job, "config") ?: json_null(),
                     "event_id", json_object_get(task, "event_id") ?: json_null(),
                     "event", json_object_get(task, "event") ?: json_null(),
                     "job", "name", json_object_get(job, "name") ?: json_null(),
                     "dag", json_object_get(job, "dag") ?: json_null(),
                     "inputs", inputs ?: json_null(),
                     "outputs", outputs ?: json_null());
    if (line == NULL)
        return NULL;
    s = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (s == NULL)
        return NULL;
    *len = strlen(s);
    s[*len] = '\n';     /* json_dumps' NUL becomes the newline... */
    {
        char *t = realloc(s, *len + 2);

        if (t == NULL) {
            free(s);
            return NULL;
        }
        s = t;
    }
    (*len)++;
    s[*len] = '\0';
    return s;
}

/* Why the sandboxed program ended, as a sentence. */
static void
describe_exit(const sandbox_child *c, int wait_status, char *out, size_t n)
{
    int code = c->exit_code;

    if (code < 0) {
        /* bwrap gave no exit code: it did not get as far as running it. */
        if (WIFSIGNALED(wait_status))
            snprintf(out, n, "the sandbox was killed by %s before the UDF ran",
                     signal_name(WTERMSIG(wait_status)));
        else
            snprintf(out, n, "the sandbox could not be set up (bubblewrap exit code %d)",
                     WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
        return;
    }
    if (code > 128 && code < 128 + 65) {
        int sig = code - 128;
        const char *why = "";

        if (sig == SIGXCPU)
            why = " (CPU time limit)";
        else if (sig == SIGXFSZ)
            why = " (file size limit, udf_max_file)";
        else if (sig == SIGKILL)
            why = " (killed; memory or process limits may have been hit)";
        else if (sig == SIGSYS)
            why = " (a forbidden system call)";
        snprintf(out, n, "the UDF was killed by %s%s", signal_name(sig), why);
        return;
    }
    snprintf(out, n, "the UDF exited with code %d", code);
}

/* Writes rows, then events; fills res.  The stream succeeded (ok:true). */
static void
deliver(op_ctx *ctx, udf_stream *s, op_result *res)
{
    json_t *rows_by = json_object();
    json_t *part, *ev;
    size_t i;
    int64_t total = 0;
    char err[1024];

    if (rows_by == NULL) {
        op_fail(res, 1, "udf: out of memory");
        return;
    }
    json_array_foreach(s->partitions, i, part) {
        const char *ds = json_string_value(json_object_get(part, "dataset"));
        const char *key = json_string_value(json_object_get(part, "partition_key"));
        json_t *rows = json_object_get(part, "rows");
        json_t *per;
        int64_t written = 0;

        if (ctx->should_stop(ctx)) {
            res->outcome = OP_STOPPED;
            copy_str(res->error, sizeof res->error, "udf: stopped while writing rows");
            goto done;
        }
        int rc = ctx->write_rows(ctx, ds, key, rows, &written, err, sizeof err);

        if (rc < 0) {
            op_fail(res, rc == -1, "udf: writing %zu rows to dataset \"%s\" partition \"%s\" "
                    "failed: %s", json_array_size(rows), ds, key, err);
            goto done;
        }
        total += written;
        per = json_object_get(rows_by, ds);
        if (per == NULL) {
            per = json_object();
            json_object_set_new(rows_by, ds, per);
        }
        if (per)
            json_object_set_new(per, key, json_integer(written));
    }
    json_array_foreach(s->events, i, ev) {
        const char *ds = json_string_value(json_object_get(ev, "dataset"));
        const char *key = json_string_value(json_object_get(ev, "partition_key"));

        if (ctx->should_stop(ctx)) {
            res->outcome = OP_STOPPED;
            copy_str(res->error, sizeof res->error, "udf: stopped while emitting events");
            goto done;
        }
        int rc = ctx->emit_event(ctx, ds, key, json_object_get(ev, "payload"), err, sizeof err);

        if (rc < 0) {
            op_fail(res, rc == -1, "udf: emitting the event for dataset \"%s\" partition \"%s\" "
                    "failed: %s", ds, key, err);
            goto done;
        }
    }
    res->outcome = OP_SUCCEEDED;
    res->result = json_pack("{s:O,s:I,s:O,s:I}", "udf", s->result ? s->result : json_null(),
                            "rows_written", (json_int_t) total, "rows", rows_by,
                            "events", (json_int_t) json_array_size(s->events));
done:
    json_decref(rows_by);
}

int
op_udf_run(op_ctx *ctx, json_t *task, op_result *res)
{
    const op_settings *st = ctx->settings;
    json_t *job = json_object_get(task, "job");
    udf_config uc;
    udf_stream stream;
    udf_limits limits;
    sandbox_spec spec;
    sandbox_child child;
    tail_buf tail;
    char err[1024], scratch[4096], entry[1024], heap[64];
    const char *argv[8];
    const char *env[8];
    char *line = NULL;
    size_t line_len = 0, line_off = 0;
    int have_scratch = 0, have_child = 0, have_stream = 0;
    int killed = 0, wait_status = 0;
    char kill_reason[1200] = "";
    int64_t started, deadline;
    int argc = 0, envc = 0;

    memset(&child, 0, sizeof child);
    memset(&tail, 0, sizeof tail);
    child.pid = -1;
    child.stdin_fd = child.stdout_fd = child.stderr_fd = child.status_fd = -1;

    if (parse_config(json_object_get(job, "config"), st, &uc, err, sizeof err) < 0 ||
        resolve_entrypoint(st, &uc, err, sizeof err) < 0) {
        op_fail(res, 0, "%s", err);
        goto cleanup;
    }
    snprintf(entry, sizeof entry, "/udf/%s", uc.entrypoint);
    if (strcmp(uc.language, "python") == 0) {
        argv[argc++] = st->python_path;
        argv[argc++] = "-B";        /* no .pyc into a read-only tree */
        argv[argc++] = "-u";
        argv[argc++] = entry;
        env[envc++] = "PYTHONPATH=/udf/sdk/python";
        env[envc++] = "PYTHONNOUSERSITE=1";
        env[envc++] = "PYTHONDONTWRITEBYTECODE=1";
    } else if (strcmp(uc.language, "typescript") == 0) {
        /* V8's heap below the memory limit, so it fails with its own
         * out-of-memory message rather than a bare allocation failure. */
        snprintf(heap, sizeof heap, "--max-old-space-size=%lld",
                 (long long) (uc.memory_bytes / 1048576 * 3 / 4));
        argv[argc++] = st->node_path;
        argv[argc++] = heap;
        if (ends_with(entry, ".ts") || ends_with(entry, ".mts"))
            argv[argc++] = "--experimental-strip-types";   /* node >= 22.6 */
        argv[argc++] = entry;
    } else {
        argv[argc++] = entry;
    }
    argv[argc] = NULL;
    env[envc] = NULL;

    line = task_line(task, &line_len);
    if (line == NULL) {
        op_fail(res, 1, "udf: out of memory");
        goto cleanup;
    }
    limits.max_line_bytes = st->udf_max_line_bytes;
    limits.max_output_bytes = st->udf_max_output_bytes;
    limits.max_rows = st->udf_max_rows;
    limits.max_events = st->udf_max_events;
    if (udf_stream_init(&stream, &limits) < 0) {
        op_fail(res, 1, "udf: out of memory");
        goto cleanup;
    }
    have_stream = 1;
    stream.on_log = on_udf_log;
    stream.log_arg = ctx;

    if (sandbox_make_scratch(st->scratch_dir, st->drop_privileges, st->sandbox_uid,
                             st->sandbox_gid, scratch, sizeof scratch, err, sizeof err) < 0) {
        op_fail(res, 1, "udf: %s", err);
        goto cleanup;
    }
    have_scratch = 1;

    memset(&spec, 0, sizeof spec);
    spec.bwrap_path = st->bwrap_path;
    spec.udf_dir = st->udf_dir;
    spec.scratch = scratch;
    spec.argv = argv;
    spec.env = env;
    spec.drop_privileges = st->drop_privileges;
    spec.uid = st->sandbox_uid;
    spec.gid = st->sandbox_gid;
    spec.memory_bytes = uc.memory_bytes;
    spec.cpu_seconds = (uc.timeout_ms + 999) / 1000 + 1;
    spec.max_file_bytes = st->udf_max_file_bytes;
    spec.max_procs = st->udf_max_procs;
    spec.max_open_files = st->udf_max_open_files;
    if (sandbox_spawn(&spec, &child, err, sizeof err) < 0) {
        op_fail(res, 1, "udf: the sandbox could not be set up: %s", err);
        goto cleanup;
    }
    have_child = 1;
    ctx->set_child(ctx, child.pid);
    started = now_ms();
    deadline = started + uc.timeout_ms;
    {
        char msg[1400];

        snprintf(msg, sizeof msg, "udf: started %s %s (timeout %lldms, memory %lldMB)",
                 uc.language, uc.entrypoint, (long long) uc.timeout_ms,
                 (long long) (uc.memory_bytes >> 20));
        ctx->log(ctx, LOG_DEBUG, msg);
    }

    /* The loop: feed stdin, read stdout/stderr/status, watch the clock. */
    while (child.stdout_fd >= 0 || child.stderr_fd >= 0 || child.status_fd >= 0) {
        struct pollfd pfd[4];
        int nfd = 0, ix_in = -1, ix_out = -1, ix_err = -1, ix_st = -1;
        int64_t left;

        if (!killed && ctx->should_stop(ctx)) {
            killed = 1;
            copy_str(kill_reason, sizeof kill_reason, "stopped (task canceled, lease lost or "
                     "worker shutting down)");
            sandbox_kill(&child);
        }
        if (!killed && now_ms() >= deadline) {
            killed = 1;
            snprintf(kill_reason, sizeof kill_reason,
                     "timeout: the UDF ran longer than %lldms (wall clock) and was killed",
                     (long long) uc.timeout_ms);
            sandbox_kill(&child);
        }
        if (killed && now_ms() >= deadline + 5000)
            break;      /* sandbox_reap below finishes the job */
        if (child.stdin_fd >= 0 && line_off < line_len) {
            pfd[nfd].fd = child.stdin_fd;
            pfd[nfd].events = POLLOUT;
            ix_in = nfd++;
        }
        if (child.stdout_fd >= 0) {
            pfd[nfd].fd = child.stdout_fd;
            pfd[nfd].events = POLLIN;
            ix_out = nfd++;
        }
        if (child.stderr_fd >= 0) {
            pfd[nfd].fd = child.stderr_fd;
            pfd[nfd].events = POLLIN;
            ix_err = nfd++;
        }
        if (child.status_fd >= 0) {
            pfd[nfd].fd = child.status_fd;
            pfd[nfd].events = POLLIN;
            ix_st = nfd++;
        }
        left = deadline - now_ms();
        if (left > 50 || killed)
            left = 50;
        if (left < 0)
            left = 0;
        if (poll(pfd, (nfds_t) nfd, (int) left) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (ix_in >= 0 && (pfd[ix_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(child.stdin_fd, line + line_off, line_len - line_off);

            if (w > 0)
                line_off += (size_t) w;
            if ((w < 0 && errno != EAGAIN) || line_off >= line_len) {
                close(child.stdin_fd);      /* EOF: the task is all there is */
                child.stdin_fd = -1;
            }
        }
        if (ix_out >= 0 && (pfd[ix_out].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[65536];
            ssize_t r = read(child.stdout_fd, buf, sizeof buf);

            if (r > 0) {
                if (!killed && udf_stream_feed(&stream, buf, (size_t) r) < 0) {
                    killed = 1;
                    copy_str(kill_reason, sizeof kill_reason, stream.problem);
                    sandbox_kill(&child);
                }
            } else if (r == 0 || errno != EAGAIN) {
                close(child.stdout_fd);
                child.stdout_fd = -1;
            }
        }
        if (ix_err >= 0 && (pfd[ix_err].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[16384];
            ssize_t r = read(child.stderr_fd, buf, sizeof buf);

            if (r > 0)
                tail_add(&tail, buf, (size_t) r);
            else if (r == 0 || errno != EAGAIN) {
                close(child.stderr_fd);
                child.stderr_fd = -1;
            }
        }
        if (ix_st >= 0 && (pfd[ix_st].revents & (POLLIN | POLLHUP | POLLERR)))
            sandbox_read_status(&child);
    }
    wait_status = sandbox_reap(&child, killed ? 3000 : 10000);
    have_child = 0;
    ctx->set_child(ctx, 0);

    {
        char stderr_text[STDERR_TAIL + 64], why[512];

        tail_text(&tail, stderr_text, sizeof stderr_text);
        if (killed) {
            if (ctx->should_stop(ctx) && strncmp(kill_reason, "stopped", 7) == 0) {
                res->outcome = OP_STOPPED;
                snprintf(res->error, sizeof res->error, "udf: %s", kill_reason);
            } else {
                /* Protocol violations are the UDF's bug: retrying the same
                 * code on the same input repeats them.  Timeouts and
                 * floods may be load: retry. */
                int retry = strncmp(kill_reason, "protocol error", 14) != 0;

                op_fail(res, retry, "udf: %s%s%s", kill_reason, stderr_text[0] ? "; stderr: " : "",
                        stderr_text);
            }
            goto cleanup;
        }
        if (child.exit_code != 0) {
            describe_exit(&child, wait_status, why, sizeof why);
            /* A UDF that reported its own failure and then exited non-zero:
             * its words first. */
            if (stream.have_result && !stream.ok)
                op_fail(res, stream.retryable, "udf: %s (%s)", stream.error, why);
            else
                op_fail(res, 1, "udf: %s%s%s", why, stderr_text[0] ? "; stderr: " : "",
                        stderr_text);
            goto cleanup;
        }
        if (udf_stream_finish(&stream) < 0) {
            op_fail(res, 0, "udf: %s%s%s", stream.problem, stderr_text[0] ? "; stderr: " : "",
                    stderr_text);
            goto cleanup;
        }
        if (!stream.ok) {
            op_fail(res, stream.retryable, "udf: %s", stream.error);
            goto cleanup;
        }
    }
    {
        char msg[256];

        snprintf(msg, sizeof msg, "udf: finished in %lldms: %lld rows in %zu partitions, %lld events",
                 (long long) (now_ms() - started), (long long) stream.nrows,
                 json_array_size(stream.partitions), (long long) stream.nevents);
        ctx->log(ctx, LOG_INFO, msg);
    }
    deliver(ctx, &stream, res);

cleanup:
    if (have_child) {
        sandbox_kill(&child);
        sandbox_reap(&child, 3000);
        ctx->set_child(ctx, 0);
    }
    if (have_scratch && remove_tree(scratch) < 0) {
        char msg[4200];

        snprintf(msg, sizeof msg, "udf: could not remove scratch dir %s: %s", scratch,
                 strerror(errno));
        ctx->log(ctx, LOG_WARN, msg);
    }
    if (have_stream)
        udf_stream_free(&stream);
    free(line);
    return 0;
}
