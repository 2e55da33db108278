/*
 * test_rate.c: a tenant's token bucket (engine/slora_rate.c) on a clock
 * the test moves: a fresh bucket lets one second's requests through at
 * once (one, under a rate of one a second) and refuses the next with the
 * time until one is earned; time refills it at the rate and never past
 * its capacity; a rate changed between takes applies from then; a clock
 * read earlier than the last take earns nothing; and the wait of a tiny
 * rate is bounded.
 */

#include <stdint.h>
#include <string.h>

#include "tap.h"
#include "slora_rate.h"


#define MS  1000000LL


static int takes(slora_rate_t *b, double rate, int64_t now, int n,
    int32_t *retry_ms);
static void test_burst(void);
static void test_refill(void);
static void test_rate_change(void);
static void test_clock(void);


int
main(void)
{
    test_burst();
    test_refill();
    test_rate_change();
    test_clock();

    return done_testing();
}


/* How many of n takes at now go through; retry_ms: the last one's. */
static int
takes(slora_rate_t *b, double rate, int64_t now, int n, int32_t *retry_ms)
{
    int  i, went;

    went = 0;

    for (i = 0; i < n; i++) {
        went += slora_rate_take(b, rate, now, retry_ms);
    }

    return went;
}


static void
test_burst(void)
{
    int32_t       retry;
    slora_rate_t  b;

    memset(&b, 0, sizeof(b));
    is_int(takes(&b, 5, 1000 * MS, 8, &retry), 5,
           "rate 5: five of eight at once go through");
    is_int(retry, 200, "the sixth is told 200 ms");

    memset(&b, 0, sizeof(b));
    is_int(takes(&b, 1, 1000 * MS, 3, &retry), 1,
           "rate 1: one of three at once");
    is_int(retry, 1000, "the next is told a second");

    memset(&b, 0, sizeof(b));
    is_int(takes(&b, 0.5, 1000 * MS, 2, &retry), 1,
           "rate 0.5: one (a bucket holds one at least)");
    is_int(retry, 2000, "the next is told two seconds");

    memset(&b, 0, sizeof(b));
    is_int(takes(&b, 2.5, 1000 * MS, 4, &retry), 2,
           "rate 2.5: two whole requests of its 2.5");
    is_int(retry, 200, "the third waits for the half it lacks: 200 ms");
}


static void
test_refill(void)
{
    int32_t       retry;
    slora_rate_t  b;

    memset(&b, 0, sizeof(b));
    takes(&b, 4, 1000 * MS, 4, &retry);
    is_int(slora_rate_take(&b, 4, 1000 * MS, &retry), 0, "rate 4: spent");
    is_int(retry, 250, "told 250 ms");
    is_int(slora_rate_take(&b, 4, 1249 * MS, &retry), 0,
           "249 ms later: still not");
    ok(retry >= 1 && retry <= 2, "told the 1 ms left (%d)", retry);
    is_int(slora_rate_take(&b, 4, 1250 * MS, &retry), 1,
           "250 ms later: one goes");
    is_int(retry, 0, "and is told nothing");
    is_int(slora_rate_take(&b, 4, 1250 * MS, &retry), 0,
           "and only one");

    is_int(takes(&b, 4, 61250 * MS, 10, &retry), 4,
           "a minute idle fills it to its capacity, not past: 4 of 10");
}


static void
test_rate_change(void)
{
    int32_t       retry;
    slora_rate_t  b;

    memset(&b, 0, sizeof(b));
    takes(&b, 10, 1000 * MS, 10, &retry);
    is_int(takes(&b, 10, 1000 * MS, 1, &retry), 0, "rate 10: spent");

    /* lowered to 1: the half second earns half a request */
    is_int(slora_rate_take(&b, 1, 1500 * MS, &retry), 0,
           "lowered to 1 a second: half a second later, none");
    is_int(retry, 500, "told the other half second");

    /* raised to 100 at once: the bucket holds up to 100 from then */
    is_int(takes(&b, 100, 2500 * MS, 200, &retry), 100,
           "raised to 100: a second later 100 of 200");

    memset(&b, 0, sizeof(b));
    takes(&b, 100, 1000 * MS, 50, &retry);
    is_int(takes(&b, 2, 1000 * MS, 5, &retry), 2,
           "50 of 100 left, lowered to 2: held to the new capacity");
}


static void
test_clock(void)
{
    int32_t       retry;
    slora_rate_t  b;

    memset(&b, 0, sizeof(b));
    takes(&b, 2, 5000 * MS, 2, &retry);
    is_int(slora_rate_take(&b, 2, 4000 * MS, &retry), 0,
           "a reading a second earlier earns nothing");
    is_int(slora_rate_take(&b, 2, 5499 * MS, &retry), 0,
           "nor does it move the bucket's time back: 499 ms after, none");
    is_int(slora_rate_take(&b, 2, 5500 * MS, &retry), 1,
           "500 ms after the last take: one");

    memset(&b, 0, sizeof(b));
    is_int(takes(&b, 1e-9, 1000 * MS, 2, &retry), 1,
           "a rate of one in 30 years: one at first");
    is_int(retry, 86400000, "the next is told a day, at most");
}
