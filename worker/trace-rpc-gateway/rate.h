/*
 * rate.h: the arithmetic of the gateway's rate control, with the
 * time passed in (milliseconds on the monotonic clock) so that the unit
 * tests can drive it.  No locking here: callers hold their provider's mutex.
 *
 * Token bucket + AIMD.  A provider may be sent `rate` JSON-RPC calls/s
 * (a batch of n costs n tokens: provider quotas count calls), never more
 * than the hard cap.  A limit signal (HTTP 429/503, JSON-RPC -32005) cuts
 * `rate` by the decrease factor (at most once per second, so one burst of
 * 429s answered to requests already in flight counts once); afterwards the
 * rate grows back linearly by `increase` requests/s per second up to the
 * cap.  Tokens are reserved: a caller that must wait takes its token now
 * (the balance goes negative) and sleeps until its turn, so waiters are
 * served in order and never stampede.  The bucket holds at most
 * max(1, rate/10) tokens, so no one-second window sees more than
 * 1.1 x rate requests.
 *
 * URL health.  A score in [0, 1] (an EWMA of outcomes, healing back toward
 * 1 with a 30 s half-life while unused) orders a provider's URLs; after
 * failure_threshold consecutive failures a URL is down for a cooldown that
 * doubles on each further failure up to cooldown_max.  Retry-After keeps a
 * URL down at least that long.  A down URL comes back on its own when the
 * cooldown ends: the next request probes it.
 */
#ifndef TRACE_GATEWAY_RATE_H
#define TRACE_GATEWAY_RATE_H

#include <stdint.h>

typedef struct gw_bucket {
    double  cap;                /* hard cap, requests/s */
    double  min;                /* floor of rate */
    double  increase;           /* requests/s per second */
    double  decrease;           /* factor in (0, 1) */
    double  rate;               /* current allowed rate */
    double  tokens;             /* may go negative: reserved future slots */
    int64_t refill_ms;          /* when tokens were last brought up to date */
    int64_t grow_ms;            /* when rate last grew */
    int64_t cut_ms;             /* when rate was last cut (0 = never) */
    uint64_t cuts;              /* how many times it was cut */
} gw_bucket;

void gw_bucket_init(gw_bucket *b, double cap, double min, double increase,
                    double decrease, int64_t now);

/* Brings tokens and rate up to date (called by the others). */
void gw_bucket_refill(gw_bucket *b, int64_t now);

/* Reserves n tokens (one per JSON-RPC call; a batch of n costs n) if the
 * caller's turn comes within max_wait_ms, and returns how long the caller
 * must wait for them (0 = go now); returns -1, reserving nothing, when the
 * wait would be longer. */
int64_t gw_bucket_reserve(gw_bucket *b, int64_t now, int n, int64_t max_wait_ms);

/* A limit signal: multiplicative decrease (once per second at most).
 * Returns 1 when the rate was cut. */
int gw_bucket_limited(gw_bucket *b, int64_t now);

typedef struct gw_health {
    double  score;              /* 1 = healthy */
    int64_t score_ms;           /* when score was last updated */
    int     consecutive;        /* failures since the last success */
    int64_t down_until_ms;      /* 0 = up */
    uint64_t successes, failures;
} gw_health;

void gw_health_init(gw_health *h, int64_t now);

/* The score now, healed toward 1 since its last update. */
double gw_health_score(const gw_health *h, int64_t now);

int gw_health_is_down(const gw_health *h, int64_t now);

void gw_health_success(gw_health *h, int64_t now);

/* A failure; retry_after_ms >= 0 keeps the URL down at least that long
 * (capped by the caller).  Returns 1 when this failure took the URL down. */
int gw_health_failure(gw_health *h, int64_t now, int threshold, int64_t cooldown_ms,
                      int64_t cooldown_max_ms, int64_t retry_after_ms);

/* Picks the URL to try next among n: not down, not excluded (bit i of
 * tried_mask set = already tried by this request, used only when no other
 * is up), highest score (scores within 0.05 count as equal and the earlier
 * URL, the preferred one, wins); disabled[i] nonzero = never.  Returns the
 * index, or -1 when all are down or disabled, with *wait_ms the time until
 * the first down one comes back (-1 when none will). */
int gw_pick_url(const gw_health *const *h, const int *disabled, int n, uint32_t tried_mask,
                int64_t now, int64_t *wait_ms);

#endif
