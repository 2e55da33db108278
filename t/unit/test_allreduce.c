/*
 * test_allreduce.c: the CPU twin of the tensor-parallel all-reduce, the
 * order every backend must reproduce: f32 sums in rank order (values
 * picked so that another order gives other bits), bf16 rounded once
 * after the last addition (values where rounding at each step, ties
 * away from zero or truncation give other bits), every rank's buffer
 * equal, n = 0 touching nothing, and random cases against the sum
 * written out here.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "tap.h"

#include "slora_allreduce.h"
#include "slora_convert.h"


#define MAX_R  8


static uint32_t f32_bits(float f);
static void test_order(void);
static void test_bf16_once(void);
static void test_empty(void);
static void test_random(int n_ranks, int64_t n);


int
main(void)
{
    tap_seed(0xa11ed0ceull);

    test_order();
    test_bf16_once();
    test_empty();
    test_random(2, 1000);
    test_random(3, 257);
    test_random(8, 4096);

    return done_testing();
}


static void
test_order(void)
{
    float   b0[2], b1[2], b2[2], *bufs[3], *one[1], fwd, rev, solo[1];

    /* 1e8 + 1 rounds back to 1e8 (f32 spacing 8 there) */
    b0[0] = 1e8f;  b1[0] = 1.0f;  b2[0] = -1e8f;
    b0[1] = 1.0f;  b1[1] = 1e8f;  b2[1] = -1e8f;
    bufs[0] = b0;
    bufs[1] = b1;
    bufs[2] = b2;

    slora_allreduce_f32(bufs, 3, 2);

    fwd = (1e8f + 1.0f) + -1e8f;
    rev = (1e8f + -1e8f) + 1.0f;
    ok(fwd != rev, "the order case is sensitive: %g vs %g", fwd, rev);
    ok(b0[0] == 0.0f && b1[0] == 0.0f && b2[0] == 0.0f,
       "f32 ((1e8 + 1) - 1e8) in rank order is 0: %g %g %g", b0[0], b1[0],
       b2[0]);
    ok(b0[1] == 0.0f && b1[1] == 0.0f && b2[1] == 0.0f,
       "f32 ((1 + 1e8) - 1e8) in rank order is 0, not 1: %g", b0[1]);

    /* a lone -0 stays -0: the sum starts from rank 0, not from +0 */
    solo[0] = -0.0f;
    one[0] = solo;
    slora_allreduce_f32(one, 1, 1);
    ok(f32_bits(solo[0]) == 0x80000000u, "one rank: -0 stays -0 (%08x)",
       f32_bits(solo[0]));
}


static void
test_bf16_once(void)
{
    uint16_t  a[3], b[3], c[3], *bufs[3], step;

    /* lane 0: 1 + 2^-8 + 2^-8; stepwise rounding drops each 2^-8 (a tie
     * to the even 1.0), rounding once keeps 1 + 2^-7 exactly */
    a[0] = 0x3f80;                   /* 1.0 */
    b[0] = 0x3b80;                   /* 2^-8 */
    c[0] = 0x3b80;

    /* lane 1: 1 + 2^-8 alone is a tie: to even, 1.0 (away from zero
     * would give 1 + 2^-7) */
    a[1] = 0x3f80;
    b[1] = 0x3b80;
    c[1] = 0x0000;

    /* lane 2: (1 + 2^-7) + 2^-8 is a tie between mantissas 1 and 2:
     * to even, up to 1 + 2^-6 (truncation would keep 1 + 2^-7) */
    a[2] = 0x3f81;
    b[2] = 0x3b80;
    c[2] = 0x8000;                   /* -0 */

    bufs[0] = a;
    bufs[1] = b;
    bufs[2] = c;

    step = slora_f32_to_bf16(
        slora_bf16_to_f32(slora_f32_to_bf16(1.0f + ldexpf(1.0f, -8)))
        + ldexpf(1.0f, -8));
    ok(slora_bf16_to_f32(0x3b80) == ldexpf(1.0f, -8), "0x3b80 is 2^-8");
    is_int(step, 0x3f80, "rounding after each addition would give 1.0");

    slora_allreduce_bf16(bufs, 3, 3);

    is_int(a[0], 0x3f81, "bf16 1 + 2^-8 + 2^-8 rounded once: 1 + 2^-7");
    is_int(a[1], 0x3f80, "bf16 1 + 2^-8: tie to even 1.0");
    is_int(a[2], 0x3f82, "bf16 (1 + 2^-7) + 2^-8: tie to even 1 + 2^-6");
    ok(memcmp(a, b, sizeof(a)) == 0 && memcmp(a, c, sizeof(a)) == 0,
       "bf16: every rank holds the same bits");
}


static void
test_empty(void)
{
    float     f0[1], f1[1], *fb[2];
    uint16_t  h0[1], h1[1], *hb[2];

    f0[0] = 1.5f;
    f1[0] = 2.5f;
    h0[0] = 0x3fc0;
    h1[0] = 0x4020;
    fb[0] = f0;
    fb[1] = f1;
    hb[0] = h0;
    hb[1] = h1;

    slora_allreduce_f32(fb, 2, 0);
    slora_allreduce_bf16(hb, 2, 0);

    ok(f0[0] == 1.5f && f1[0] == 2.5f && h0[0] == 0x3fc0 && h1[0] == 0x4020,
       "n = 0 touches nothing");

    slora_allreduce_f32(fb, 2, 1);
    ok(f0[0] == 4.0f && f1[0] == 4.0f, "n = 1 sums the first element");
}


/* Random values, the sum written out here: f32 left to right; bf16
 * left to right in f32, then one rounding. */
static void
test_random(int n_ranks, int64_t n)
{
    float     *f[MAX_R], *fref;
    uint16_t  *h[MAX_R], *href;
    float      acc;
    int64_t    i;
    int        r, f_ok, h_ok, same;

    memset(f, 0, sizeof(f));
    memset(h, 0, sizeof(h));
    fref = malloc(n * sizeof(float));
    href = malloc(n * sizeof(uint16_t));

    if (fref == NULL || href == NULL) {
        BAIL_OUT("out of memory");
    }

    for (r = 0; r < n_ranks; r++) {
        f[r] = malloc(n * sizeof(float));
        h[r] = malloc(n * sizeof(uint16_t));

        if (f[r] == NULL || h[r] == NULL) {
            BAIL_OUT("out of memory");
        }

        for (i = 0; i < n; i++) {
            f[r][i] = tap_frand() * 100.0f;
            h[r][i] = slora_f32_to_bf16(tap_frand() * 4.0f);
        }
    }

    for (i = 0; i < n; i++) {
        acc = f[0][i];

        for (r = 1; r < n_ranks; r++) {
            acc += f[r][i];
        }

        fref[i] = acc;
        acc = slora_bf16_to_f32(h[0][i]);

        for (r = 1; r < n_ranks; r++) {
            acc += slora_bf16_to_f32(h[r][i]);
        }

        href[i] = slora_f32_to_bf16(acc);
    }

    slora_allreduce_f32(f, n_ranks, n);
    slora_allreduce_bf16(h, n_ranks, n);

    f_ok = 1;
    h_ok = 1;
    same = 1;

    for (r = 0; r < n_ranks; r++) {
        f_ok &= memcmp(f[r], fref, n * sizeof(float)) == 0;
        h_ok &= memcmp(h[r], href, n * sizeof(uint16_t)) == 0;
        same &= memcmp(f[r], f[0], n * sizeof(float)) == 0
                && memcmp(h[r], h[0], n * sizeof(uint16_t)) == 0;
    }

    ok(f_ok, "f32 %d ranks n %lld: bit for bit the rank-order sum", n_ranks,
       (long long) n);
    ok(h_ok, "bf16 %d ranks n %lld: bit for bit the sum rounded once",
       n_ranks, (long long) n);
    ok(same, "%d ranks: every rank holds the same bits", n_ranks);

    for (r = 0; r < n_ranks; r++) {
        free(f[r]);
        free(h[r]);
    }

    free(fref);
    free(href);
}



static uint32_t
f32_bits(float f)
{
    uint32_t  u;

    memcpy(&u, &f, sizeof(u));

    return u;
}
