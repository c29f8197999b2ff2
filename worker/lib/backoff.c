/*
 * backoff.c: bounded exponential backoff with jitter (see backoff.h).
 */
#include "backoff.h"

int64_t
backoff_ms(const backoff_policy *p, int attempt, double r)
{
    double d = (double) p->base_ms, max = (double) p->max_ms, jitter = p->jitter;

    if (attempt < 1)
        attempt = 1;
    for (int i = 1; i < attempt && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    if (jitter < 0)
        jitter = 0;
    if (jitter > 1)
        jitter = 1;
    d *= 1.0 + jitter * (2.0 * r - 1.0);
    if (d < 0)
        d = 0;
    if (d > max)
        d = max;
    return (int64_t) d;
}
