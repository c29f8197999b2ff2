/*
 * udf.c: the `udf` operator: user code in Python, TypeScript or Rust,
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

/* Why the worker killed the sandbox, when it did: decides the outcome. */
typedef enum udf_kill {
    UDF_NOT_KILLED = 0,     /* the UDF ended: its exit and result line decide */
    UDF_KILLED_STOP,        /* should_stop: canceled, lease lost, drain_timeout passed */
    UDF_KILLED_TIMEOUT,     /* ran past its wall-clock timeout: worth a retry */
    UDF_KILLED_STREAM       /* its output failed the stream: stream.problem_kind decides */
} udf_kill;

/* The program to run inside the sandbox, by language. */
typedef struct udf_cmd {
    const char *argv[8];
    const char *env[8];
    char        entry[1024];
    char        heap[64];
} udf_cmd;

/* One run: the child, what it wrote, and why it was killed. */
typedef struct udf_run {
    sandbox_child child;
    udf_stream    stream;
    tail_buf      tail;         /* the end of its stderr */
    char         *line;         /* the task line for its stdin */
    size_t        line_len, line_off;
    int64_t       started, deadline;
    udf_kill      killed;
    char          kill_reason[1200];
    int           have_stream, have_child, have_scratch;
    char          scratch[4096];
} udf_run;

static void
udf_command(const op_settings *st, const udf_config *uc, udf_cmd *cmd)
{
    int argc = 0, envc = 0;

    snprintf(cmd->entry, sizeof cmd->entry, "/udf/%s", uc->entrypoint);
    if (strcmp(uc->language, "python") == 0) {
        cmd->argv[argc++] = st->python_path;
        cmd->argv[argc++] = "-B";           /* no .pyc into a read-only tree */
        cmd->argv[argc++] = "-u";
        cmd->argv[argc++] = cmd->entry;
        cmd->env[envc++] = "PYTHONPATH=/udf/sdk/python";
        cmd->env[envc++] = "PYTHONNOUSERSITE=1";
        cmd->env[envc++] = "PYTHONDONTWRITEBYTECODE=1";
    } else if (strcmp(uc->language, "typescript") == 0) {
        /* V8's heap below the memory limit, so it fails with its own
         * out-of-memory message rather than a bare allocation failure. */
        snprintf(cmd->heap, sizeof cmd->heap, "--max-old-space-size=%lld",
                 (long long) (uc->memory_bytes / 1048576 * 3 / 4));
        cmd->argv[argc++] = st->node_path;
        cmd->argv[argc++] = cmd->heap;
        if (ends_with(cmd->entry, ".ts") || ends_with(cmd->entry, ".mts"))
            cmd->argv[argc++] = "--experimental-strip-types";   /* node >= 22.6 */
        cmd->argv[argc++] = cmd->entry;
    } else {
        cmd->argv[argc++] = cmd->entry;
    }
    cmd->argv[argc] = NULL;
    cmd->env[envc] = NULL;
}

/* The task line, the stream, the scratch dir and the sandboxed child.
 * 0, or -1 with res filled (retryable: nothing of this is the UDF's
 * fault). */
static int
udf_start(op_ctx *ctx, json_t *task, const udf_config *uc, const udf_cmd *cmd, udf_run *run,
          op_result *res)
{
    const op_settings *st = ctx->settings;
    udf_limits limits = {st->udf_max_line_bytes, st->udf_max_output_bytes, st->udf_max_rows,
                         st->udf_max_events};
    sandbox_spec spec = {0};
    char err[1024], msg[1400];

    run->line = task_line(task, &run->line_len);
    if (run->line == NULL || udf_stream_init(&run->stream, &limits) < 0) {
        op_fail(res, 1, "udf: out of memory");
        return -1;
    }
    run->have_stream = 1;
    run->stream.on_log = on_udf_log;
    run->stream.log_arg = ctx;
    if (sandbox_make_scratch(st->scratch_dir, st->drop_privileges, st->sandbox_uid,
                             st->sandbox_gid, run->scratch, sizeof run->scratch, err,
                             sizeof err) < 0) {
        op_fail(res, 1, "udf: %s", err);
        return -1;
    }
    run->have_scratch = 1;
    spec.bwrap_path = st->bwrap_path;
    spec.udf_dir = st->udf_dir;
    spec.scratch = run->scratch;
    spec.argv = cmd->argv;
    spec.env = cmd->env;
    spec.drop_privileges = st->drop_privileges;
    spec.uid = st->sandbox_uid;
    spec.gid = st->sandbox_gid;
    spec.memory_bytes = uc->memory_bytes;
    spec.cpu_seconds = (uc->timeout_ms + 999) / 1000 + 1;
    spec.max_file_bytes = st->udf_max_file_bytes;
    spec.max_procs = st->udf_max_procs;
    spec.max_open_files = st->udf_max_open_files;
    if (sandbox_spawn(&spec, &run->child, err, sizeof err) < 0) {
        op_fail(res, 1, "udf: the sandbox could not be set up: %s", err);
        return -1;
    }
    run->have_child = 1;
    ctx->set_child(ctx, run->child.pid);
    run->started = now_ms();
    run->deadline = run->started + uc->timeout_ms;
    snprintf(msg, sizeof msg, "udf: started %s %s (timeout %lldms, memory %lldMB)", uc->language,
             uc->entrypoint, (long long) uc->timeout_ms, (long long) (uc->memory_bytes >> 20));
    ctx->log(ctx, LOG_DEBUG, msg);
    return 0;
}

static void
kill_run(udf_run *run, udf_kill why)
{
    run->killed = why;
    sandbox_kill(&run->child);
}

/* Kills the child when the task must stop or its time is up. */
static void
check_kill(op_ctx *ctx, udf_run *run, int64_t timeout_ms)
{
    if (run->killed)
        return;
    if (ctx->should_stop(ctx)) {
        copy_str(run->kill_reason, sizeof run->kill_reason,
                 "stopped (task canceled, lease lost or worker shutting down)");
        kill_run(run, UDF_KILLED_STOP);
    } else if (now_ms() >= run->deadline) {
        snprintf(run->kill_reason, sizeof run->kill_reason,
                 "timeout: the UDF ran longer than %lldms (wall clock) and was killed",
                 (long long) timeout_ms);
        kill_run(run, UDF_KILLED_TIMEOUT);
    }
}

/* Feeds stdin the task line; closes it once all is written (EOF: the task
 * is all there is). */
static void
feed_stdin(udf_run *run)
{
    ssize_t w = write(run->child.stdin_fd, run->line + run->line_off,
                      run->line_len - run->line_off);

    if (w > 0)
        run->line_off += (size_t) w;
    if ((w < 0 && errno != EAGAIN) || run->line_off >= run->line_len) {
        close(run->child.stdin_fd);
        run->child.stdin_fd = -1;
    }
}

/* Reads stdout into the stream: the first violation kills the child. */
static void
read_stdout(udf_run *run)
{
    char buf[65536];
    ssize_t r = read(run->child.stdout_fd, buf, sizeof buf);

    if (r > 0) {
        if (!run->killed && udf_stream_feed(&run->stream, buf, (size_t) r) < 0) {
            copy_str(run->kill_reason, sizeof run->kill_reason, run->stream.problem);
            kill_run(run, UDF_KILLED_STREAM);
        }
    } else if (r == 0 || errno != EAGAIN) {
        close(run->child.stdout_fd);
        run->child.stdout_fd = -1;
    }
}

/* Keeps the tail of stderr. */
static void
read_stderr(udf_run *run)
{
    char buf[16384];
    ssize_t r = read(run->child.stderr_fd, buf, sizeof buf);

    if (r > 0)
        tail_add(&run->tail, buf, (size_t) r);
    else if (r == 0 || errno != EAGAIN) {
        close(run->child.stderr_fd);
        run->child.stderr_fd = -1;
    }
}

static int
add_fd(struct pollfd *pfd, int *nfd, int fd, short events)
{
    if (fd < 0)
        return -1;
    pfd[*nfd].fd = fd;
    pfd[*nfd].events = events;
    pfd[*nfd].revents = 0;
    return (*nfd)++;
}

/* Until the child closed its outputs (or 5 s past a kill): feed stdin,
 * read stdout, stderr and bwrap's status, watch the clock. */
static void
udf_pump(op_ctx *ctx, udf_run *run, int64_t timeout_ms)
{
    sandbox_child *c = &run->child;
    const short in = POLLIN | POLLHUP | POLLERR;

    while (c->stdout_fd >= 0 || c->stderr_fd >= 0 || c->status_fd >= 0) {
        struct pollfd pfd[4];
        int nfd = 0, ix_in, ix_out, ix_err, ix_st;
        int64_t left;

        check_kill(ctx, run, timeout_ms);
        if (run->killed && now_ms() >= run->deadline + 5000)
            break;      /* sandbox_reap finishes the job */
        ix_in = add_fd(pfd, &nfd, run->line_off < run->line_len ? c->stdin_fd : -1, POLLOUT);
        ix_out = add_fd(pfd, &nfd, c->stdout_fd, POLLIN);
        ix_err = add_fd(pfd, &nfd, c->stderr_fd, POLLIN);
        ix_st = add_fd(pfd, &nfd, c->status_fd, POLLIN);
        left = run->deadline - now_ms();
        left = left > 50 || run->killed ? 50 : left < 0 ? 0 : left;
        if (poll(pfd, (nfds_t) nfd, (int) left) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (ix_in >= 0 && (pfd[ix_in].revents & (POLLOUT | POLLERR | POLLHUP)))
            feed_stdin(run);
        if (ix_out >= 0 && (pfd[ix_out].revents & in))
            read_stdout(run);
        if (ix_err >= 0 && (pfd[ix_err].revents & in))
            read_stderr(run);
        if (ix_st >= 0 && (pfd[ix_st].revents & in))
            sandbox_read_status(c);
    }
}

/* The outcome of a run that ended: stopped, failed (retryable or not, with
 * the UDF's own words first) or 0 when it succeeded and its rows and
 * events are to be delivered. */
static int
udf_verdict(op_ctx *ctx, udf_run *run, int wait_status, op_result *res)
{
    char stderr_text[STDERR_TAIL + 64], why[512];
    const char *sep;

    tail_text(&run->tail, stderr_text, sizeof stderr_text);
    sep = stderr_text[0] ? "; stderr: " : "";
    if (run->killed == UDF_KILLED_STOP && ctx->should_stop(ctx)) {
        res->outcome = OP_STOPPED;
        snprintf(res->error, sizeof res->error, "udf: %s", run->kill_reason);
        return -1;
    }
    if (run->killed) {
        /* Protocol violations are the UDF's bug: retrying the same code on
         * the same input repeats them.  Timeouts and floods may be load. */
        int retry = !(run->killed == UDF_KILLED_STREAM &&
                      run->stream.problem_kind == UDF_PROBLEM_PROTOCOL);

        op_fail(res, retry, "udf: %s%s%s", run->kill_reason, sep, stderr_text);
        return -1;
    }
    if (run->child.exit_code != 0) {
        describe_exit(&run->child, wait_status, why, sizeof why);
        /* A UDF that reported its own failure and then exited non-zero: its
         * words first. */
        if (run->stream.have_result && !run->stream.ok)
            op_fail(res, run->stream.retryable, "udf: %s (%s)", run->stream.error, why);
        else
            op_fail(res, 1, "udf: %s%s%s", why, sep, stderr_text);
        return -1;
    }
    if (udf_stream_finish(&run->stream) < 0) {
        op_fail(res, 0, "udf: %s%s%s", run->stream.problem, sep, stderr_text);
        return -1;
    }
    if (!run->stream.ok) {
        op_fail(res, run->stream.retryable, "udf: %s", run->stream.error);
        return -1;
    }
    return 0;
}

/* Always: the child reaped, the scratch dir removed, the memory freed. */
static void
udf_cleanup(op_ctx *ctx, udf_run *run)
{
    if (run->have_child) {
        sandbox_kill(&run->child);
        sandbox_reap(&run->child, 3000);
        ctx->set_child(ctx, 0);
    }
    if (run->have_scratch && remove_tree(run->scratch) < 0) {
        char msg[4200];

        snprintf(msg, sizeof msg, "udf: could not remove scratch dir %s: %s", run->scratch,
                 strerror(errno));
        ctx->log(ctx, LOG_WARN, msg);
    }
    if (run->have_stream)
        udf_stream_free(&run->stream);
    free(run->line);
}

int
op_udf_run(op_ctx *ctx, json_t *task, op_result *res)
{
    json_t *job = json_object_get(task, "job");
    udf_config uc;
    udf_cmd cmd;
    udf_run run;
    char err[1024], msg[256];
    int wait_status;

    memset(&run, 0, sizeof run);
    run.child.pid = -1;
    run.child.stdin_fd = run.child.stdout_fd = run.child.stderr_fd = run.child.status_fd = -1;
    if (parse_config(json_object_get(job, "config"), ctx->settings, &uc, err, sizeof err) < 0 ||
        resolve_entrypoint(ctx->settings, &uc, err, sizeof err) < 0) {
        op_fail(res, 0, "%s", err);
        goto cleanup;
    }
    udf_command(ctx->settings, &uc, &cmd);
    if (udf_start(ctx, task, &uc, &cmd, &run, res) < 0)
        goto cleanup;
    udf_pump(ctx, &run, uc.timeout_ms);
    wait_status = sandbox_reap(&run.child, run.killed ? 3000 : 10000);
    run.have_child = 0;
    ctx->set_child(ctx, 0);
    if (udf_verdict(ctx, &run, wait_status, res) < 0)
        goto cleanup;
    snprintf(msg, sizeof msg, "udf: finished in %lldms: %lld rows in %zu partitions, %lld events",
             (long long) (now_ms() - run.started), (long long) run.stream.nrows,
             json_array_size(run.stream.partitions), (long long) run.stream.nevents);
    ctx->log(ctx, LOG_INFO, msg);
    deliver(ctx, &run.stream, res);
cleanup:
    udf_cleanup(ctx, &run);
    return 0;
}
