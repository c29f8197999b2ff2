/*
 * log.h: one line per message on stderr, as text or as JSON lines.
 *
 * Thread-safe: a line is formatted in full, then written with one write(2)
 * under a mutex, so lines from different threads never interleave.  Callers
 * never pass a conninfo or a secret (pgconn.c logs only host, port, dbname
 * and user); a program that holds credentials also sets a mask hook
 * (log_set_mask) that every line goes through, so even a peer's error text
 * that echoes one cannot leak it.
 */
#ifndef TRACE_LOG_H
#define TRACE_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT = 0, LOG_JSON };

/* Sets the level, the format and the worker id stamped on each line; may be
 * called again (SIGHUP reload). */
void log_configure(int level, int format, const char *worker_id);

/* Parses "debug"/"info"/"warn"/"error" (or "warning"); -1 when unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

int log_enabled(int level);

/* A hook every message goes through before it is written: it may change
 * the text in place (size bytes of room), e.g. to mask credentials.  Set it
 * once at start, before threads log (NULL: none). */
typedef void (*log_mask_fn)(char *msg, size_t size, void *arg);
void log_set_mask(log_mask_fn mask, void *arg);

/* A message, optionally about a task (task_id 0 = none). */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_task(int level, int64_t task_id, int attempt, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A line a UDF logged; origin is stamped as "udf" so it stands apart. */
void log_udf(int level, int64_t task_id, int attempt, const char *msg);

#endif
