/*
 * util.h: small helpers shared by every trace-worker module.
 *
 * Time: monotonic milliseconds for every timer and deadline, so a worker
 * whose wall clock is skewed or stepped behaves the same (TESTING.md F12);
 * only the database clock decides whether a lease expired.
 */
#ifndef TRACE_UTIL_H
#define TRACE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Milliseconds on the monotonic clock. */
int64_t now_ms(void);

/* Sleeps up to ms milliseconds; returns early when *stop becomes nonzero
 * (checked every 20 ms).  stop may be NULL. */
void sleep_ms_interruptible(int64_t ms, int (*stop)(void *), void *arg);

/* snprintf into an error buffer; always NUL-terminates, never overflows. */
void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies src into dst of size n, truncating; always NUL-terminates. */
void copy_str(char *dst, size_t n, const char *src);

/* Parses a duration such as "250ms", "5s", "2m", "1h" into milliseconds.
 * A bare number is refused unless default_unit_ms > 0, in which case it is
 * multiplied by it.  Returns 0, or -1 with err filled. */
int parse_duration_ms(const char *s, int64_t default_unit_ms, int64_t *out,
                      char *err, size_t errlen);

/* Parses a size such as "512", "64kB", "256MB", "1GB" into bytes (powers of
 * 1024).  A bare number is multiplied by default_unit.  Returns 0 or -1. */
int parse_size_bytes(const char *s, int64_t default_unit, int64_t *out,
                     char *err, size_t errlen);

/* A random double in [0, 1) from a per-thread generator seeded once. */
double rand_unit(void);

/* The name of a signal, e.g. "SIGSEGV" (static storage; "signal N" style
 * names come from a per-thread buffer). */
const char *signal_name(int sig);

/* Grows *buf (capacity *cap, from first bytes, doubling) to hold at least
 * need bytes; the contents are kept.  0, or -1 (out of memory; *buf left
 * as it was). */
int buf_reserve(char **buf, size_t *cap, size_t need, size_t first);

/* The absolute time ms milliseconds from now on clock (for
 * pthread_cond_timedwait, pthread_timedjoin_np). */
struct timespec;
void timespec_after_ms(int clock, int64_t ms, struct timespec *ts);

/* Removes a directory tree without following symlinks.  Returns 0 or -1. */
int remove_tree(const char *path);

#endif
