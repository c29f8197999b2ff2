/*
 * util.c: time, error buffers, duration and size parsing, signal names and
 * tree removal.  Nothing here allocates on behalf of its caller except where
 * a comment says so.
 */
#define _GNU_SOURCE
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sleep_ms_interruptible(int64_t ms, int (*stop)(void *), void *arg)
{
    int64_t end = now_ms() + ms;

    for (;;) {
        int64_t left = end - now_ms();
        struct timespec ts;

        if (left <= 0 || (stop && stop(arg)))
            return;
        if (left > 20)
            left = 20;
        ts.tv_sec = 0;
        ts.tv_nsec = left * 1000000L;
        nanosleep(&ts, NULL);
    }
}

void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void
copy_str(char *dst, size_t n, const char *src)
{
    size_t len;

    if (n == 0)
        return;
    len = strnlen(src, n - 1);
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Splits "  12.5 ms " into the number and the unit (trimmed). */
static int
split_number(const char *s, double *num, char *unit, size_t unitlen)
{
    char *end;
    size_t n = 0;

    while (isspace((unsigned char) *s))
        s++;
    if (*s == '\0' || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    *num = strtod(s, &end);
    if (end == s || errno != 0)
        return -1;
    while (isspace((unsigned char) *end))
        end++;
    while (*end && !isspace((unsigned char) *end)) {
        if (n + 1 >= unitlen)
            return -1;
        unit[n++] = *end++;
    }
    unit[n] = '\0';
    while (isspace((unsigned char) *end))
        end++;
    return *end == '\0' ? 0 : -1;
}

int
parse_duration_ms(const char *s, int64_t default_unit_ms, int64_t *out,
                  char *err, size_t errlen)
{
    static const struct { const char *unit; double ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"sec", 1000}, {"m", 60000}, {"min", 60000},
        {"h", 3600000}, {"d", 86400000},
    };
    double num, mult = -1;
    char unit[16];

    if (s == NULL || split_number(s, &num, unit, sizeof unit) < 0) {
        set_err(err, errlen, "invalid duration \"%s\" (use e.g. 250ms, 5s, 2m, 1h)",
                s ? s : "");
        return -1;
    }
    if (unit[0] == '\0') {
        if (default_unit_ms <= 0) {
            set_err(err, errlen, "duration \"%s\" needs a unit (ms, s, m, h)", s);
            return -1;
        }
        mult = (double) default_unit_ms;
    }
    for (size_t i = 0; mult < 0 && i < ARRAY_LEN(units); i++)
        if (strcmp(unit, units[i].unit) == 0)
            mult = units[i].ms;
    if (mult < 0) {
        set_err(err, errlen, "unknown unit \"%s\" in duration \"%s\" (use ms, s, m, h)",
                unit, s);
        return -1;
    }
    if (num * mult > 9.0e15) {
        set_err(err, errlen, "duration \"%s\" is too large", s);
        return -1;
    }
    *out = (int64_t) (num * mult + 0.5);
    return 0;
}

int
parse_size_bytes(const char *s, int64_t default_unit, int64_t *out,
                 char *err, size_t errlen)
{
    static const struct { const char *unit; double mult; } units[] = {
        {"B", 1}, {"kB", 1024.0}, {"KB", 1024.0}, {"K", 1024.0}, {"KiB", 1024.0},
        {"MB", 1048576.0}, {"M", 1048576.0}, {"MiB", 1048576.0},
        {"GB", 1073741824.0}, {"G", 1073741824.0}, {"GiB", 1073741824.0},
    };
    double num, mult = -1;
    char unit[16];

    if (s == NULL || split_number(s, &num, unit, sizeof unit) < 0) {
        set_err(err, errlen, "invalid size \"%s\" (use e.g. 512kB, 256MB, 1GB)",
                s ? s : "");
        return -1;
    }
    if (unit[0] == '\0')
        mult = (double) (default_unit > 0 ? default_unit : 1);
    for (size_t i = 0; mult < 0 && i < ARRAY_LEN(units); i++)
        if (strcmp(unit, units[i].unit) == 0)
            mult = units[i].mult;
    if (mult < 0) {
        set_err(err, errlen, "unknown unit \"%s\" in size \"%s\" (use B, kB, MB, GB)",
                unit, s);
        return -1;
    }
    if (num * mult > 9.0e15) {
        set_err(err, errlen, "size \"%s\" is too large", s);
        return -1;
    }
    *out = (int64_t) (num * mult + 0.5);
    return 0;
}

int
buf_reserve(char **buf, size_t *cap, size_t need, size_t first)
{
    size_t c = *cap ? *cap : first;
    char *nb;

    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    if ((nb = realloc(*buf, c)) == NULL)
        return -1;
    *buf = nb;
    *cap = c;
    return 0;
}

void
timespec_after_ms(int clock, int64_t ms, struct timespec *ts)
{
    clock_gettime((clockid_t) clock, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

double
rand_unit(void)
{
    static __thread unsigned short seed[3];
    static __thread int seeded;

    if (!seeded) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        seed[0] = (unsigned short) ts.tv_nsec;
        seed[1] = (unsigned short) (ts.tv_nsec >> 16) ^ (unsigned short) getpid();
        seed[2] = (unsigned short) ((uintptr_t) &seeded >> 4);
        seeded = 1;
    }
    return erand48(seed);
}

const char *
signal_name(int sig)
{
    static __thread char buf[32];
    const char *abbrev = sigabbrev_np(sig);

    if (abbrev == NULL) {
        snprintf(buf, sizeof buf, "signal %d", sig);
        return buf;
    }
    snprintf(buf, sizeof buf, "SIG%s", abbrev);
    return buf;
}

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) ftw;
    if (flag == FTW_DP)
        return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Pre-order pass: makes every directory searchable and writable by its
 * owner first, so a UDF that left a mode-000 directory cannot keep its
 * scratch dir from being removed. */
static int
open_up_dir(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) ftw;
    if ((flag == FTW_D || flag == FTW_DNR) && S_ISDIR(sb->st_mode))
        (void) chmod(path, 0700);
    return 0;
}

int
remove_tree(const char *path)
{
    /* FTW_PHYS: never follow a symlink the UDF may have planted; FTW_MOUNT:
     * never cross into another file system. */
    (void) nftw(path, open_up_dir, 16, FTW_PHYS | FTW_MOUNT);
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}
