/*
 * backoff.h: the one exponential backoff of every Trace program (the
 * reconnects of pgconn.c, the retries of the JSON-RPC client and of the
 * gateway's upstream calls).
 *
 * The delay before retry `attempt` (1 = the first retry) is
 * min(max, base * 2^(attempt - 1)), scaled by a factor drawn uniformly from
 * [1 - jitter, 1 + jitter] (so a fleet of clients does not retry in
 * lockstep), and never above max.  Pure: the random number r in [0, 1) is
 * passed in (rand_unit() in production, fixed values in the tests).
 */
#ifndef TRACE_BACKOFF_H
#define TRACE_BACKOFF_H

#include <stdint.h>

typedef struct backoff_policy {
    int64_t base_ms;        /* the first delay */
    int64_t max_ms;         /* the cap, jitter included */
    double  jitter;         /* fraction, 0..1 */
} backoff_policy;

/* The delay in ms before retry `attempt` under p, with r in [0, 1). */
int64_t backoff_ms(const backoff_policy *p, int attempt, double r);

#endif
