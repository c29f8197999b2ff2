/*
 * tap.h: the one TAP helper of the unit tests.
 *
 * CHECK(cond, name) prints "ok N - name" or "not ok N - name (file:line:
 * cond)"; tap_done() prints "N passed, N failed" and gives main's exit
 * code.  The suites (test/worker, test/gateway, test/chain) count the
 * "ok" and "not ok" lines.  Header-only: each test program includes it
 * once, in its only file.
 */
#ifndef TRACE_TAP_H
#define TRACE_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_passed, tap_failed;

#define CHECK(cond, name)                                                       \
    do {                                                                        \
        if (cond) {                                                             \
            tap_passed++;                                                       \
            printf("ok %d - %s\n", tap_passed + tap_failed, name);              \
        } else {                                                                \
            tap_failed++;                                                       \
            printf("not ok %d - %s (%s:%d: %s)\n", tap_passed + tap_failed,     \
                   name, __FILE__, __LINE__, #cond);                            \
        }                                                                       \
    } while (0)

/* Whether needle occurs in hay (NULL hay: no). */
static inline int
contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

/* The closing line; main returns this. */
static inline int
tap_done(void)
{
    printf("%d passed, %d failed\n", tap_passed, tap_failed);
    return tap_failed ? 1 : 0;
}

#endif
