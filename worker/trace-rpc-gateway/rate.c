/*
 * rate.c: token bucket + AIMD and URL health scores (see rate.h for the
 * model; the retry backoff is lib/backoff.c).
 * Pure functions of their arguments and the time passed in.
 */
#include "rate.h"

#include <math.h>
#include <stddef.h>

#define CUT_HOLD_MS       1000      /* at most one cut per second */
#define HEAL_HALF_LIFE_MS 30000.0   /* score heals halfway to 1 in 30 s */
#define EWMA_ALPHA        0.3
#define SCORE_TIE         0.05

static double
bucket_burst(const gw_bucket *b)
{
    double burst = b->rate / 10.0;

    return burst < 1.0 ? 1.0 : burst;
}

void
gw_bucket_init(gw_bucket *b, double cap, double min, double increase, double decrease,
               int64_t now)
{
    b->cap = cap > 0 ? cap : 1;
    b->min = min > 0 && min <= b->cap ? min : (b->cap < 1 ? b->cap : 1);
    b->increase = increase >= 0 ? increase : 0;
    b->decrease = decrease > 0 && decrease < 1 ? decrease : 0.5;
    b->rate = b->cap;
    b->tokens = bucket_burst(b);
    b->refill_ms = now;
    b->grow_ms = now;
    b->cut_ms = 0;
    b->cuts = 0;
}

void
gw_bucket_refill(gw_bucket *b, int64_t now)
{
    double burst;

    /* Additive increase, but not within a second of a cut. */
    if (b->rate < b->cap) {
        int64_t from = b->grow_ms;

        if (b->cut_ms > 0 && b->cut_ms + CUT_HOLD_MS > from)
            from = b->cut_ms + CUT_HOLD_MS;
        if (now > from) {
            b->rate += b->increase * (double) (now - from) / 1000.0;
            if (b->rate > b->cap)
                b->rate = b->cap;
        }
    }
    if (now > b->grow_ms)
        b->grow_ms = now;

    if (now > b->refill_ms) {
        b->tokens += b->rate * (double) (now - b->refill_ms) / 1000.0;
        b->refill_ms = now;
    }
    burst = bucket_burst(b);
    if (b->tokens > burst)
        b->tokens = burst;
}

int64_t
gw_bucket_reserve(gw_bucket *b, int64_t now, int n, int64_t max_wait_ms)
{
    double wait;

    if (n < 1)
        n = 1;
    gw_bucket_refill(b, now);
    if (b->tokens >= (double) n) {
        b->tokens -= (double) n;
        return 0;
    }
    /* Our tokens are the ones after those already reserved. */
    wait = ceil(((double) n - b->tokens) / b->rate * 1000.0);
    if (wait > (double) max_wait_ms)
        return -1;
    b->tokens -= (double) n;
    return (int64_t) wait;
}

int
gw_bucket_limited(gw_bucket *b, int64_t now)
{
    gw_bucket_refill(b, now);
    if (b->cut_ms > 0 && now - b->cut_ms < CUT_HOLD_MS)
        return 0;
    b->rate *= b->decrease;
    if (b->rate < b->min)
        b->rate = b->min;
    b->cut_ms = now;
    b->grow_ms = now;
    b->cuts++;
    if (b->tokens > bucket_burst(b))
        b->tokens = bucket_burst(b);
    return 1;
}

void
gw_health_init(gw_health *h, int64_t now)
{
    h->score = 1.0;
    h->score_ms = now;
    h->consecutive = 0;
    h->down_until_ms = 0;
    h->successes = 0;
    h->failures = 0;
}

double
gw_health_score(const gw_health *h, int64_t now)
{
    double age = (double) (now - h->score_ms);

    if (age <= 0)
        return h->score;
    return 1.0 - (1.0 - h->score) * exp2(-age / HEAL_HALF_LIFE_MS);
}

int
gw_health_is_down(const gw_health *h, int64_t now)
{
    return h->down_until_ms > now;
}

void
gw_health_success(gw_health *h, int64_t now)
{
    h->score = gw_health_score(h, now) * (1 - EWMA_ALPHA) + EWMA_ALPHA;
    h->score_ms = now;
    h->consecutive = 0;
    h->down_until_ms = 0;
    h->successes++;
}

int
gw_health_failure(gw_health *h, int64_t now, int threshold, int64_t cooldown_ms,
                  int64_t cooldown_max_ms, int64_t retry_after_ms)
{
    int was_down = gw_health_is_down(h, now);
    int64_t until = h->down_until_ms;

    h->score = gw_health_score(h, now) * (1 - EWMA_ALPHA);
    h->score_ms = now;
    h->consecutive++;
    h->failures++;
    if (threshold < 1)
        threshold = 1;
    if (h->consecutive >= threshold) {
        int64_t cool = cooldown_ms;

        for (int i = threshold; i < h->consecutive && cool < cooldown_max_ms; i++)
            cool *= 2;
        if (cool > cooldown_max_ms)
            cool = cooldown_max_ms;
        if (now + cool > until)
            until = now + cool;
    }
    if (retry_after_ms >= 0 && now + retry_after_ms > until)
        until = now + retry_after_ms;
    h->down_until_ms = until;
    return !was_down && gw_health_is_down(h, now);
}

int
gw_pick_url(const gw_health *const *h, const int *disabled, int n, uint32_t tried_mask,
            int64_t now, int64_t *wait_ms)
{
    int best = -1;
    double best_score = -1;
    int64_t wait = -1;

    /* Two passes: first the URLs this request has not tried yet. */
    for (int pass = 0; pass < 2 && best < 0; pass++) {
        for (int i = 0; i < n; i++) {
            double s;

            if (disabled != NULL && disabled[i])
                continue;
            if (gw_health_is_down(h[i], now)) {
                int64_t w = h[i]->down_until_ms - now;

                if (wait < 0 || w < wait)
                    wait = w;
                continue;
            }
            if (pass == 0 && i < 32 && (tried_mask & (1u << i)))
                continue;
            s = gw_health_score(h[i], now);
            if (best < 0 || s > best_score + SCORE_TIE) {
                best = i;
                best_score = s;
            }
        }
    }
    if (wait_ms != NULL)
        *wait_ms = best >= 0 ? 0 : wait;
    return best;
}
