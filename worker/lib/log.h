/*
 * log.h: one line per message on stderr, as text or as JSON lines.
 *
 * Thread-safe: a line is formatted in full, then written with one write(2)
 * under a mutex, so lines from different threads never interleave.  Callers
 * never pass a conninfo or a secret; pgconn.c logs only host/port/dbname/user.
 */
#ifndef TRACE_LOG_H
#define TRACE_LOG_H

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

/* A message, optionally about a task (task_id 0 = none). */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_task(int level, int64_t task_id, int attempt, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A line a UDF logged; origin is stamped as "udf" so it stands apart. */
void log_udf(int level, int64_t task_id, int attempt, const char *msg);

#endif
