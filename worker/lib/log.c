/*
 * log.c: text or JSON-lines logging, one format for every Trace program.
 *
 * Text:  2024-05-01T12:00:00.123Z INFO  [host:123] task 42/1: completed
 * JSON:  {"ts":"...","level":"info","worker_id":"host:123","task_id":42,
 *         "attempt":1,"msg":"completed"}
 * JSON is built with jansson, so any message text is escaped correctly.
 */
#define _GNU_SOURCE
#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int log_level = LOG_INFO;
static volatile int log_format = LOG_TEXT;
static char log_worker_id[256] = "trace-worker";

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static log_mask_fn mask_fn;
static void *mask_arg;

void
log_set_mask(log_mask_fn mask, void *arg)
{
    mask_fn = mask;
    mask_arg = arg;
}

void
log_configure(int level, int format, const char *worker_id)
{
    pthread_mutex_lock(&log_mu);
    log_level = level;
    log_format = format;
    if (worker_id)
        snprintf(log_worker_id, sizeof log_worker_id, "%s", worker_id);
    pthread_mutex_unlock(&log_mu);
}

int
log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

const char *
log_level_name(int level)
{
    return level >= 0 && level < 4 ? level_names[level] : "info";
}

int
log_enabled(int level)
{
    return level >= log_level;
}

static void
timestamp(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    size_t len;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    len = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + len, n - len, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void
write_line(const char *line, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, line, len);

        if (w <= 0)
            return;
        line += w;
        len -= (size_t) w;
    }
}

/* Formats and writes one line.  Messages are truncated at 8 kB. */
static void
emit(int level, int64_t task_id, int attempt, int udf, const char *msg)
{
    char ts[40];

    if (!log_enabled(level))
        return;
    timestamp(ts, sizeof ts);
    pthread_mutex_lock(&log_mu);
    if (log_format == LOG_JSON) {
        json_t *o = json_object();
        char *s;

        if (o) {
            json_object_set_new(o, "ts", json_string(ts));
            json_object_set_new(o, "level", json_string(level_names[level]));
            json_object_set_new(o, "worker_id", json_string(log_worker_id));
            if (task_id > 0) {
                json_object_set_new(o, "task_id", json_integer(task_id));
                json_object_set_new(o, "attempt", json_integer(attempt));
            }
            if (udf)
                json_object_set_new(o, "origin", json_string("udf"));
            /* json_string refuses invalid UTF-8: fall back to a marker. */
            json_t *m = json_string(msg);
            json_object_set_new(o, "msg", m ? m : json_string("(message was not valid UTF-8)"));
            s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
            if (s) {
                size_t len = strlen(s);

                s[len] = '\n';
                write_line(s, len + 1);
                free(s);
            }
            json_decref(o);
        }
    } else {
        char line[8448];
        int len;
        char flat[8192];
        size_t k;

        /* One message, one line: newlines (libpq's, say) become spaces. */
        for (k = 0; msg[k] && k + 1 < sizeof flat; k++)
            flat[k] = (msg[k] == '\n' || msg[k] == '\r') ? ' ' : msg[k];
        while (k > 0 && flat[k - 1] == ' ')
            k--;
        flat[k] = '\0';
        msg = flat;

        if (task_id > 0)
            len = snprintf(line, sizeof line, "%s %-5s [%s] task %lld/%d:%s %s\n", ts,
                           level_names[level], log_worker_id, (long long) task_id,
                           attempt, udf ? " udf:" : "", msg);
        else
            len = snprintf(line, sizeof line, "%s %-5s [%s] %s\n", ts, level_names[level],
                           log_worker_id, msg);
        if (len >= (int) sizeof line) {
            len = sizeof line - 1;
            line[len - 1] = '\n';
        }
        if (len > 0)
            write_line(line, (size_t) len);
    }
    pthread_mutex_unlock(&log_mu);
}

/* Formats, masks and writes one message. */
static void __attribute__((format(printf, 4, 0)))
vlog(int level, int64_t task_id, int attempt, const char *fmt, va_list ap)
{
    char msg[8192];

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (mask_fn)
        mask_fn(msg, sizeof msg, mask_arg);
    emit(level, task_id, attempt, 0, msg);
}

void
log_msg(int level, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vlog(level, 0, 0, fmt, ap);
    va_end(ap);
}

void
log_task(int level, int64_t task_id, int attempt, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vlog(level, task_id, attempt, fmt, ap);
    va_end(ap);
}

void
log_udf(int level, int64_t task_id, int attempt, const char *msg)
{
    char clean[2048];
    size_t i;

    /* A UDF's text goes on one line: control characters become spaces, so
     * a UDF cannot forge log lines in text format. */
    for (i = 0; msg[i] && i + 1 < sizeof clean; i++)
        clean[i] = ((unsigned char) msg[i] < 0x20 || msg[i] == 0x7f) ? ' ' : msg[i];
    clean[i] = '\0';
    if (mask_fn)
        mask_fn(clean, sizeof clean, mask_arg);
    emit(level, task_id, attempt, 1, clean);
}
