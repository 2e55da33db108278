/*
 * slora_rate.c: a tenant's token bucket (slora_rate.h).
 *
 * The bucket is refilled lazily: each take first adds what the time since
 * the last one earned, up to the capacity (the rate's one second, at least
 * one request), then takes one if one is there. Time that runs backwards
 * (a bucket reckoned by a later clock reading) earns nothing.
 */

#include <math.h>

#include "slora_rate.h"


int
slora_rate_take(slora_rate_t *b, double rate, int64_t now_ns,
    int32_t *retry_ms)
{
    double  cap, wait_ms;

    cap = rate > 1 ? rate : 1;

    if (b->at_ns == 0) {
        b->tokens = cap;

    } else if (now_ns > b->at_ns) {
        b->tokens += (double) (now_ns - b->at_ns) * 1e-9 * rate;
    }

    if (b->tokens > cap) {
        b->tokens = cap;
    }

    if (now_ns > b->at_ns) {
        b->at_ns = now_ns;
    }

    if (b->tokens >= 1) {
        b->tokens -= 1;
        *retry_ms = 0;
        return 1;
    }

    wait_ms = ceil((1 - b->tokens) / rate * 1e3);
    *retry_ms = wait_ms < 1 ? 1 : wait_ms > 86400e3 ? 86400000
                                                     : (int32_t) wait_ms;

    return 0;
}
