/*
 * test_qmatmul.c: the Q8_0 and Q4_1 kernels. Quantization follows ggml's
 * rule (f16 scale of max|x| / 127, quants within +-127, error at most
 * half a step plus the scale's f16 rounding), and the activations'
 * vector quantizers write the portable C bytes on every instruction set
 * the CPU runs, ties, NaN, infinities and zeros included. Every isa
 * gives the portable C dot product to the bit, and so does every output
 * of the matrix product on every isa, whatever the number of tokens (so
 * every tile shape: 8, 4, 2 or 1 tokens, 4, 2 or 1 rows); it matches an
 * f32 product of the dequantized weights and activations to 1e-5 and the
 * unquantized one to 2e-2; a row's output is the same to the bit alone,
 * in the batch, and in another batch of other rows in another order, and
 * in 1 or 3 shares; bias is added; bad shapes are refused. A block
 * past what an f16 scale holds (max|x| over some 8.3e6) saturates its
 * scale to 65504 and keeps its products finite. The Q4_1
 * kernels (packed file blocks times int8 activations) are held to the
 * same: ggml's Q4_1 rounding (its step and minimum saturating likewise),
 * every ISA equal to C to the bit, 1e-5 of the f32 product of the
 * dequantized operands, batch and share invariance.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "tap.h"

#include "slora_tensor.h"
#include "slora_qmatmul.h"


static float *
frand_vec(size_t n, float amp)
{
    float   *v;
    size_t   i;

    v = malloc(n * sizeof(float) + 4);
    if (v == NULL) {
        BAIL_OUT("out of memory");
    }

    for (i = 0; i < n; i++) {
        v[i] = amp * tap_frand();
    }

    return v;
}


static void
test_quantize(void)
{
    slora_block_q8_0_t  *q;
    float               *x, *xd, amax, d;
    int64_t              n, b, i;
    int                  bad_d, bad_q, bad_e;

    n = 32 * 200;
    x = frand_vec(n, 3.0f);
    xd = malloc(n * sizeof(float));
    q = malloc((n / 32) * sizeof(slora_block_q8_0_t));

    for (i = 0; i < 32; i++) {
        x[5 * 32 + i] = 0.0f;                   /* an all-zero block */
        x[6 * 32 + i] = 1e-3f * tap_frand();        /* f16 subnormal scale */
    }

    ok(slora_quantize_q8_0(q, x, n) == 0
       && slora_dequantize_q8_0(xd, q, n) == 0, "quantize and back");

    bad_d = bad_q = bad_e = 0;

    for (b = 0; b < n / 32; b++) {
        amax = 0.0f;
        for (i = 0; i < 32; i++) {
            amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        }

        bad_d += q[b].d != slora_f32_to_f16(amax / 127.0f);
        d = slora_f16_to_f32(q[b].d);

        for (i = 0; i < 32; i++) {
            bad_q += q[b].qs[i] < -127;
            bad_e += fabsf(xd[b * 32 + i] - x[b * 32 + i])
                     > 0.5f * (amax / 127.0f)
                       + 127.0f * fabsf(d - amax / 127.0f) + 1e-7f * amax;
        }
    }

    ok(bad_d == 0, "scale is f16(max|x| / 127) in every block (%d bad)",
       bad_d);
    ok(bad_q == 0, "quants within +-127 (%d bad)", bad_q);
    ok(bad_e == 0, "every value within half a step (%d bad)", bad_e);
    ok(q[5].d == 0 && xd[5 * 32 + 7] == 0.0f, "zero block stays zero");

    ok(slora_quantize_q8_0(q, x, 33) == -1, "a length not a multiple of 32 "
       "is refused");

    free(x); free(xd); free(q);
}


static const char  *isa_names[] = { "auto", "C", "AVX2", "AVX512-VNNI",
                                     "NEON-dotprod" };


/* The activations' quantizer of every isa == slora_quantize_q8_0, byte
 * for byte, on random blocks and on the edges of its rounding. */
static void
test_quantize_isa(void)
{
    slora_block_q8_0_t  *ref, *got;
    float               *x;
    int64_t              n, b, i;
    int                  isa, bad;

    n = 32 * 400;
    x = frand_vec(n, 3.0f);
    ref = malloc((n / 32) * sizeof(slora_block_q8_0_t));
    got = malloc((n / 32) * sizeof(slora_block_q8_0_t));

    for (i = 0; i < 32; i++) {
        x[0 * 32 + i] = 0.0f;                       /* all zero */
        x[1 * 32 + i] = i == 0 ? 127.0f : (float) (i % 9) - 4.5f;
                                                    /* ties, d = 1 */
        x[2 * 32 + i] = i == 3 ? NAN : tap_frand();  /* a NaN */
        x[3 * 32 + i] = i == 5 ? INFINITY : tap_frand();
        x[4 * 32 + i] = i == 5 ? -INFINITY : NAN;
        x[5 * 32 + i] = 1e-6f * tap_frand();        /* subnormal scale */
        x[6 * 32 + i] = 3e38f * tap_frand();        /* huge */
        x[7 * 32 + i] = i == 0 ? -254.0f
                               : (float) (2 * i + 1) * (i % 2 ? -1.0f : 1.0f);
                                                    /* ties, d = 2 */
        x[8 * 32 + i] = i == 0 ? 127.0f : 0.49999997f * (i % 2 ? 1 : -1);
        x[9 * 32 + i] = i == 0 ? -1.0f : -0.0f;
    }

    for (b = 10; b < n / 32; b++) {
        if (b % 3 == 0) {
            /* random multiples of a half against d = 1: many ties */
            for (i = 0; i < 32; i++) {
                x[b * 32 + i] = roundf(254.0f * tap_frand()) / 2.0f;
            }

            x[b * 32] = 127.0f;
        }
    }

    slora_quantize_q8_0(ref, x, n);

    for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_LAST; isa++) {
        if (!slora_qmatmul_isa_supported(isa)) {
            ok(slora_quantize_q8_0_isa(got, x, n, isa) == -1,
               "%s: not on this CPU, quantize refused", isa_names[isa]);
            continue;
        }

        memset(got, 0x5a, (n / 32) * sizeof(slora_block_q8_0_t));
        bad = slora_quantize_q8_0_isa(got, x, n, isa) != 0;

        for (b = 0; b < n / 32; b++) {
            bad += memcmp(&ref[b], &got[b], sizeof(slora_block_q8_0_t)) != 0;
        }

        ok(bad == 0, "%s: activation quantizer == C quantizer byte for byte "
           "(%d of %lld blocks differ)", isa_names[isa], bad,
           (long long) (n / 32));
    }

    free(x); free(ref); free(got);
}


static void
test_isa(void)
{
    slora_block_q8_0_t  *w;
    float               *f, ref, got;
    void                *xq;
    size_t               xs;
    int32_t              nb, k, in, isa, bad, runs, c;

    nb = 64;
    f = frand_vec(3 * 32 * nb, 2.0f);
    w = malloc(3 * nb * sizeof(slora_block_q8_0_t));
    slora_quantize_q8_0(w, f, 3 * 32 * nb);
    free(f);

    /* extremes: -127 in every lane of a block, against +127 below */
    memset(w[3].qs, 0x81, 32);

    xs = slora_qmatmul_act_size(2, 32 * nb);
    xq = malloc(xs);

    for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_LAST; isa++) {
        if (!slora_qmatmul_isa_supported(isa)) {
            ok(isnan(slora_qdot_q8_0(w, 3, 32 * nb, 0, xq, 0, isa)),
               "%s: not on this CPU, refused", isa_names[isa]);
            continue;
        }

        bad = 0;
        runs = 0;

        for (k = 0; k < 200; k++) {
            in = 32 * (1 + k % nb);
            f = frand_vec(2 * in, k % 7 == 0 ? 1e3f : 1.0f);

            /* token 1 of k = 3 (in = 128): +127 throughout block 3 */
            if (k == 3) {
                for (c = 0; c < 32; c++) {
                    f[in + 3 * 32 + c] = 1.0f;
                }
            }

            slora_qmatmul_quantize(xq, xs, f, in, 2, in, 0, 1);
            free(f);

            for (c = 0; c < 3; c++) {
                ref = slora_qdot_q8_0(w + c * nb, 1, in, 0, xq, k % 2,
                                      SLORA_QISA_C);
                got = slora_qdot_q8_0(w + c * nb, 1, in, 0, xq, k % 2, isa);
                bad += memcmp(&ref, &got, sizeof(float)) != 0;
                runs++;
            }
        }

        ok(bad == 0, "%s dot == C dot to the bit (%d of %d differ)",
           isa_names[isa], bad, runs);
    }

    free(w); free(xq);
}


/*
 * Blocks whose max|x| / 127 is past the largest f16, 65504: the scale
 * saturates to it (an infinity keeps an infinite one), every isa writes
 * the C bytes and gives the C dot to the bit, and the dot is finite:
 * within the quantization's error of the exact product where the values
 * lie within 127.5 steps of 65504 (row 0: 8.34e6, whose scale rounded to
 * f16 is infinite), and of the product with the values past that cut to
 * it (row 1: -1e9 and 3e38). Row 2 holds an infinity: its dot is not
 * finite on any isa.
 */
static void
test_saturate(void)
{
    slora_block_q8_0_t  w[2], ref[2], got[2];
    float               x[3][64], wd[64], xc, d, amax, dot, v;
    double              exact, err, lim;
    void               *xq;
    size_t              xs;
    int32_t             t, b, i, isa, bad;

    for (i = 0; i < 64; i++) {
        wd[i] = 2.0f * tap_frand();
        x[0][i] = i < 32 ? 1e6f * tap_frand() : tap_frand();
        x[1][i] = 1e6f * tap_frand();
        x[2][i] = tap_frand();
    }

    x[0][7] = 8.34e6f;
    x[1][3] = -1e9f;
    x[1][20] = 3e38f;
    x[2][9] = INFINITY;

    slora_quantize_q8_0(w, wd, 64);
    slora_dequantize_q8_0(wd, w, 64);

    xs = slora_qmatmul_act_size(3, 64);
    xq = malloc(xs);
    if (xq == NULL) {
        BAIL_OUT("out of memory");
    }

    ok(slora_qmatmul_quantize(xq, xs, &x[0][0], 64, 3, 64, 0, 1) == 0,
       "saturate: quantized");

    for (t = 0; t < 3; t++) {
        slora_quantize_q8_0_isa(ref, x[t], 64, SLORA_QISA_C);
        ok(ref[0].d == (t < 2 ? 0x7bff : 0x7c00),
           "saturate: row %d's scale is %s", t,
           t < 2 ? "65504, the largest f16" : "infinite");

        dot = slora_qdot_q8_0(w, 1, 64, 0, xq, t, SLORA_QISA_C);

        if (t == 2) {
            ok(!isfinite(dot), "saturate: an infinity still shows (%g)",
               dot);

        } else {
            /* the product with the values past 127.5 d cut to it (row
             * 0 has none); a value's error is at most half a step, plus
             * 127 times the scale's f16 rounding where it is not
             * saturated */
            exact = 0;
            lim = 0;

            for (b = 0; b < 2; b++) {
                amax = 0.0f;
                for (i = 32 * b; i < 32 * b + 32; i++) {
                    amax = fmaxf(amax, fabsf(x[t][i]));
                }

                d = slora_f16_to_f32(ref[b].d);
                err = 0.5 * d + 127.0 * fabs(d - fmin(amax / 127.0, d));

                for (i = 32 * b; i < 32 * b + 32; i++) {
                    xc = fminf(fmaxf(x[t][i], -127.5f * d), 127.5f * d);
                    exact += (double) wd[i] * xc;
                    lim += fabs(wd[i]) * (err + 1e-5 * fabs(xc));
                }
            }

            ok(isfinite(dot) && fabs(dot - exact) <= lim,
               "saturate: row %d's dot %.9g is within %.3g of %.9g", t, dot,
               lim, exact);
        }

        for (isa = SLORA_QISA_AVX2; isa <= SLORA_QISA_LAST; isa++) {
            if (!slora_qmatmul_isa_supported(isa)) {
                continue;
            }

            bad = slora_quantize_q8_0_isa(got, x[t], 64, isa) != 0
                  || memcmp(got, ref, sizeof(ref)) != 0;
            v = slora_qdot_q8_0(w, 1, 64, 0, xq, t, isa);
            bad += t == 2 ? isfinite(v) != 0
                          : memcmp(&v, &dot, sizeof(float)) != 0;

            ok(bad == 0, "saturate: row %d on %s: the C bytes and dot", t,
               isa_names[isa]);
        }
    }

    free(xq);
}


/* y = x . w^T in double over floats */
static void
matmul_ref(double *y, const float *x, const float *w, int64_t n,
    int32_t out, int32_t in)
{
    int64_t  t, c, i;
    double   acc;

    for (t = 0; t < n; t++) {
        for (c = 0; c < out; c++) {
            acc = 0;
            for (i = 0; i < in; i++) {
                acc += (double) x[t * in + i] * w[(int64_t) c * in + i];
            }
            y[t * out + c] = acc;
        }
    }
}


static double
err_rel(const float *got, const double *ref, int64_t n)
{
    int64_t  i;
    double   num, den;

    num = den = 0;
    for (i = 0; i < n; i++) {
        num = fmax(num, fabs(got[i] - ref[i]));
        den = fmax(den, fabs(ref[i]));
    }

    return num / (den > 0 ? den : 1);
}


/*
 * Rows of x picked at random (some twice), in a random order, batches of
 * 1 to 13 rows, through the Q8_0 (w8) or the Q4_1 (w41) product: the
 * number of their outputs that differ from y's rows in any bit.
 */
static int
other_batch(const float *y, const float *x, int64_t n, int32_t out,
    int32_t in, const slora_block_q8_0_t *w8, const void *w41)
{
    float    *xb, *yb;
    void     *xq;
    size_t    xs;
    int32_t   pick[13];
    int       k, m, i, bad;

    xb = malloc(13 * in * sizeof(float));
    yb = malloc(13 * out * sizeof(float));
    xs = w8 != NULL ? slora_qmatmul_act_size(13, in)
                    : slora_q4_1_act_size(13, in);
    xq = malloc(xs);
    bad = 0;

    for (k = 0; k < 6; k++) {
        m = 1 + tap_irand(13);

        for (i = 0; i < m; i++) {
            pick[i] = tap_irand((int) n);
            memcpy(xb + i * in, x + pick[i] * in, in * sizeof(float));
        }

        if (w8 != NULL) {
            slora_qmatmul_quantize(xq, xs, xb, in, m, in, 0, 1);
            slora_qmatmul(yb, out, xq, xs, w8, NULL, m, out, in, 0, 1);

        } else {
            slora_q4_1_quantize_act(xq, xs, xb, in, m, in, 0, 1);
            slora_q4_1_matmul(yb, out, xq, xs, w41, NULL, m, out, in, 0, 1);
        }

        for (i = 0; i < m; i++) {
            bad += memcmp(yb + i * out, y + pick[i] * out,
                          out * sizeof(float)) != 0;
        }
    }

    free(xb); free(yb); free(xq);

    return bad;
}


static void
test_matmul_case(int64_t n, int32_t out, int32_t in)
{
    slora_block_q8_0_t  *wq, *x8;
    float               *w, *wd, *x, *xd, *y, *y3, *y1, *bias, v;
    double              *ref, e;
    void                *xq;
    size_t               xs;
    int64_t              t, c;
    int                  ith, bad, isa;

    w = frand_vec((int64_t) out * in, 0.1f);
    wd = malloc((int64_t) out * in * sizeof(float));
    wq = malloc((int64_t) out * (in / 32) * sizeof(slora_block_q8_0_t));
    x = frand_vec(n * in, 1.5f);
    xd = malloc(n * in * sizeof(float));
    x8 = malloc(n * (in / 32) * sizeof(slora_block_q8_0_t));
    y = malloc(n * out * sizeof(float));
    y3 = malloc(n * out * sizeof(float));
    y1 = malloc(out * sizeof(float));
    bias = frand_vec(out, 1.0f);
    ref = malloc(n * out * sizeof(double));
    xs = slora_qmatmul_act_size(n, in);
    xq = malloc(xs);

    slora_quantize_q8_0(wq, w, (int64_t) out * in);
    slora_dequantize_q8_0(wd, wq, (int64_t) out * in);

    ok(slora_qmatmul_quantize(xq, xs, x, in, n, in, 0, 1) == 0
       && slora_qmatmul(y, out, xq, xs, wq, NULL, n, out, in, 0, 1) == 0,
       "qmatmul %lldx%d.%dT runs", (long long) n, in, out);

    /* every output is the portable dot product of its row and column */
    bad = 0;
    for (t = 0; t < n; t++) {
        for (c = 0; c < out; c++) {
            v = slora_qdot_q8_0(wq, out, in, c, xq, t, SLORA_QISA_C);
            bad += memcmp(&v, &y[t * out + c], sizeof(float)) != 0;
        }
    }
    ok(bad == 0, "qmatmul %lldx%d.%dT == C dot products to the bit (%d "
       "differ)", (long long) n, in, out, bad);

    /* every isa, with its own tile shapes, gives the same bits */
    for (isa = SLORA_QISA_C; isa <= SLORA_QISA_LAST; isa++) {
        if (!slora_qmatmul_isa_supported(isa)) {
            ok(slora_qmatmul_isa(y3, out, xq, xs, wq, NULL, n, out, in, 0, 1,
                                 isa)
               == -1, "qmatmul: %s not on this CPU, refused",
               isa_names[isa]);
            continue;
        }

        memset(y3, 0xff, n * out * sizeof(float));
        ok(slora_qmatmul_isa(y3, out, xq, xs, wq, NULL, n, out, in, 0, 1, isa)
           == 0 && memcmp(y3, y, n * out * sizeof(float)) == 0,
           "qmatmul %lldx%d.%dT on %s == the C dot products to the bit",
           (long long) n, in, out, isa_names[isa]);
    }

    /* the activations are Q8_0's quants and scales */
    slora_quantize_q8_0(x8, x, n * in);
    slora_dequantize_q8_0(xd, x8, n * in);
    matmul_ref(ref, xd, wd, n, out, in);
    e = err_rel(y, ref, n * out);
    ok(e < 1e-5, "qmatmul %lldx%d.%dT == f32 product of the dequantized "
       "operands: %.2e", (long long) n, in, out, e);

    matmul_ref(ref, x, wd, n, out, in);
    e = err_rel(y, ref, n * out);
    ok(e < 2e-2, "qmatmul %lldx%d.%dT vs unquantized activations: %.2e",
       (long long) n, in, out, e);

    /* 3 shares, quantization included, last share first */
    memset(xq, 0, xs);
    bad = 0;
    for (ith = 2; ith >= 0; ith--) {
        bad += slora_qmatmul_quantize(xq, xs, x, in, n, in, ith, 3);
    }
    for (ith = 2; ith >= 0; ith--) {
        bad += slora_qmatmul(y3, out, xq, xs, wq, NULL, n, out, in, ith, 3);
    }
    ok(bad == 0 && memcmp(y3, y, n * out * sizeof(float)) == 0,
       "qmatmul %lldx%d.%dT in 3 shares == 1 share", (long long) n, in, out);

    /* each row alone == the same row in the batch */
    bad = 0;
    for (t = 0; t < n; t++) {
        slora_qmatmul_quantize(xq, xs, x + t * in, in, 1, in, 0, 1);
        slora_qmatmul(y1, out, xq, xs, wq, NULL, 1, out, in, 0, 1);
        bad += memcmp(y1, y + t * out, out * sizeof(float)) != 0;
    }
    ok(bad == 0, "qmatmul: each of %lld rows alone == in the batch (%d "
       "differ)", (long long) n, bad);

    bad = other_batch(y, x, n, out, in, wq, NULL);
    ok(bad == 0, "qmatmul: rows in other batches, other orders == in the "
       "batch (%d differ)", bad);

    /* bias */
    slora_qmatmul_quantize(xq, xs, x, in, n, in, 0, 1);
    slora_qmatmul(y3, out, xq, xs, wq, bias, n, out, in, 0, 1);
    bad = 0;
    for (t = 0; t < n; t++) {
        for (c = 0; c < out; c++) {
            bad += y3[t * out + c] != y[t * out + c] + bias[c];
        }
    }
    ok(bad == 0, "qmatmul adds the bias");

    free(w); free(wd); free(wq); free(x); free(xd); free(x8); free(y);
    free(y3); free(y1); free(bias); free(ref); free(xq);
}


static void
test_quantize_q4_1(void)
{
    slora_block_q4_1_t  *q;
    float               *x, *xd, mn, mx, step, d;
    int64_t              n, b, i;
    int                  bad_d, bad_e;

    n = 32 * 200;
    x = frand_vec(n, 3.0f);
    xd = malloc(n * sizeof(float));
    q = malloc((n / 32) * sizeof(slora_block_q4_1_t));

    for (i = 0; i < 32; i++) {
        x[5 * 32 + i] = 0.25f;                  /* a constant block */
    }

    ok(slora_quantize_q4_1(q, x, n) == 0
       && slora_dequantize_q4_1(xd, q, n) == 0, "Q4_1 quantize and back");

    bad_d = bad_e = 0;

    for (b = 0; b < n / 32; b++) {
        mn = mx = x[b * 32];
        for (i = 1; i < 32; i++) {
            mn = fminf(mn, x[b * 32 + i]);
            mx = fmaxf(mx, x[b * 32 + i]);
        }

        step = (mx - mn) / 15.0f;
        bad_d += q[b].d != slora_f32_to_f16(step)
                 || q[b].m != slora_f32_to_f16(mn);
        d = slora_f16_to_f32(q[b].d);

        for (i = 0; i < 32; i++) {
            bad_e += fabsf(xd[b * 32 + i] - x[b * 32 + i])
                     > 0.5f * step + 15.0f * fabsf(d - step)
                       + fabsf(slora_f16_to_f32(q[b].m) - mn) + 1e-6f;
        }
    }

    ok(bad_d == 0, "Q4_1 d = f16((max - min) / 15), m = f16(min) (%d bad)",
       bad_d);
    ok(bad_e == 0, "Q4_1 values within half a step (%d bad)", bad_e);
    ok(xd[5 * 32 + 3] == 0.25f, "Q4_1 constant block comes back exactly");
    ok(slora_quantize_q4_1(q, x, 48) == -1, "Q4_1: a length not a multiple "
       "of 32 is refused");

    free(x); free(xd); free(q);
}


/*
 * Q4_1 blocks past what f16 holds saturate as Q8_0's do: a minimum under
 * -65504 is -65504, a step past 65504 is 65504, every value comes back
 * finite, within half a step of itself cut to [m, m + 15 d]. Block 0
 * spans -1e9..3e38, block 1 1e6..2e6 (its minimum past f16 too), block
 * 2 an ordinary one beside them, as before; block 3 holds an infinity,
 * which still shows.
 */
static void
test_quantize_q4_1_saturate(void)
{
    slora_block_q4_1_t  q[4];
    float               x[128], xd[128], m, d, xc;
    int32_t             b, i, bad;

    for (i = 0; i < 128; i++) {
        x[i] = i < 32 ? 1e6f * tap_frand()
               : i < 64 ? 1e6f + 1e6f * fabsf(tap_frand())
               : tap_frand();
    }

    x[3] = -1e9f;
    x[20] = 3e38f;
    x[100] = INFINITY;

    ok(slora_quantize_q4_1(q, x, 128) == 0
       && slora_dequantize_q4_1(xd, q, 128) == 0,
       "Q4_1 saturate: quantized and back");

    ok(q[0].d == 0x7bff && q[0].m == 0xfbff,
       "Q4_1 saturate: block 0's step 65504, its minimum -65504 (%04x %04x)",
       q[0].d, q[0].m);
    ok(q[1].d == 0x7bff && q[1].m == 0x7bff,
       "Q4_1 saturate: block 1's step and minimum 65504 (%04x %04x)",
       q[1].d, q[1].m);

    bad = 0;

    for (b = 0; b < 3; b++) {
        m = slora_f16_to_f32(q[b].m);
        d = slora_f16_to_f32(q[b].d);

        for (i = 32 * b; i < 32 * b + 32; i++) {
            xc = fminf(fmaxf(x[i], m), m + 15.0f * d);
            bad += !isfinite(xd[i])
                   || fabsf(xd[i] - xc) > 0.5f * d + 1e-3f * fabsf(xc);
        }
    }

    ok(bad == 0, "Q4_1 saturate: every value finite, within half a step of "
       "itself cut to the block's range (%d bad)", bad);
    ok(q[3].d == 0x7c00, "Q4_1 saturate: an infinity keeps an infinite "
       "step (%04x)", q[3].d);
}


/* A packed [out, in] Q4_1 matrix of random weights, and its values. */
static void *
q41_matrix(int32_t out, int32_t in, float amp, float **deq)
{
    slora_block_q4_1_t  *blk;
    float               *w;
    size_t               size;
    void                *pk;

    w = frand_vec((int64_t) out * in, amp);
    blk = malloc((int64_t) out * (in / 32) * sizeof(slora_block_q4_1_t));
    size = slora_q4_1_pack_size(out, in);
    pk = malloc(size);

    if (blk == NULL || pk == NULL) {
        BAIL_OUT("out of memory");
    }

    slora_quantize_q4_1(blk, w, (int64_t) out * in);
    if (slora_q4_1_pack(pk, size, blk, out, in) != 0) {
        BAIL_OUT("q4_1 pack failed");
    }

    if (deq != NULL) {
        slora_dequantize_q4_1(w, blk, (int64_t) out * in);
        *deq = w;

    } else {
        free(w);
    }

    free(blk);
    return pk;
}


static void
test_isa_q4_1(void)
{
    static const int32_t ins[] = { 64, 128, 576, 640, 1536 };
    /* three rows of the widest: on the stack, so that no size computed
     * from a signed width reaches an allocator (GCC 14's
     * -Walloc-size-larger-than sees the width's sign, not the table) */
    slora_block_q4_1_t   blk[3 * 1536 / 32];
    float               *f, ref, got;
    void                *w, *xq;
    size_t               xs, ws;
    int32_t              k, in, isa, bad, runs, c;

    for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_LAST; isa++) {
        if (!slora_qmatmul_isa_supported(isa)) {
            ok(isnan(slora_qdot_q4_1(&bad, 1, 64, 0, &bad, 0, isa)),
               "Q4_1: %s not on this CPU, refused", isa_names[isa]);
            continue;
        }

        bad = 0;
        runs = 0;

        for (k = 0; k < 100; k++) {
            in = ins[k % 5];
            w = q41_matrix(3, in, k % 7 == 0 ? 1e3f : 1.0f, NULL);
            xs = slora_q4_1_act_size(2, in);
            xq = malloc(xs);
            f = frand_vec(2 * in, k % 5 == 0 ? 1e-3f : 1.0f);

            /* extremes: every nibble 15 against +-127 */
            if (k == 3) {
                for (c = 0; c < in; c++) {
                    f[c] = c % 3 == 0 ? -1.0f : 1.0f;
                }
                memset(blk, 0, sizeof(blk));
                for (c = 0; c < 3 * (in / 32); c++) {
                    memset(blk[c].qs, 0xff, 16);
                    blk[c].d = slora_f32_to_f16(0.5f);
                    blk[c].m = slora_f32_to_f16(-3.0f);
                }
                ws = slora_q4_1_pack_size(3, in);
                slora_q4_1_pack(w, ws, blk, 3, in);
            }

            slora_q4_1_quantize_act(xq, xs, f, in, 2, in, 0, 1);

            for (c = 0; c < 3; c++) {
                ref = slora_qdot_q4_1(w, 3, in, c, xq, k % 2, SLORA_QISA_C);
                got = slora_qdot_q4_1(w, 3, in, c, xq, k % 2, isa);
                bad += memcmp(&ref, &got, sizeof(float)) != 0;
                runs++;
            }

            free(w); free(xq); free(f);
        }

        ok(bad == 0, "Q4_1: %s dot == C dot to the bit (%d of %d differ)",
           isa_names[isa], bad, runs);
    }

    ok(isnan(slora_qdot_q4_1(&bad, 1, 32, 0, &bad, 0, SLORA_QISA_C)),
       "Q4_1 dot refuses in = 32");
}


static void
test_matmul_q4_1_case(int64_t n, int32_t out, int32_t in)
{
    slora_block_q8_0_t  *x8;
    float               *wd, *x, *xd, *y, *y3, *y1, *bias, v;
    double              *ref, e;
    void                *w, *xq;
    size_t               xs;
    int64_t              t, c;
    int                  ith, bad, isa;

    w = q41_matrix(out, in, 0.1f, &wd);
    x = frand_vec(n * in, 1.5f);
    xd = malloc(n * in * sizeof(float));
    x8 = malloc(n * (in / 32) * sizeof(slora_block_q8_0_t));
    y = malloc(n * out * sizeof(float));
    y3 = malloc(n * out * sizeof(float));
    y1 = malloc(out * sizeof(float));
    bias = frand_vec(out, 1.0f);
    ref = malloc(n * out * sizeof(double));
    xs = slora_q4_1_act_size(n, in);
    xq = malloc(xs);

    ok(slora_q4_1_quantize_act(xq, xs, x, in, n, in, 0, 1) == 0
       && slora_q4_1_matmul(y, out, xq, xs, w, NULL, n, out, in, 0, 1) == 0,
       "q4_1 matmul %lldx%d.%dT runs", (long long) n, in, out);

    bad = 0;
    for (t = 0; t < n; t++) {
        for (c = 0; c < out; c++) {
            v = slora_qdot_q4_1(w, out, in, c, xq, t, SLORA_QISA_C);
            bad += memcmp(&v, &y[t * out + c], sizeof(float)) != 0;
        }
    }
    ok(bad == 0, "q4_1 matmul %lldx%d.%dT == C dot products to the bit (%d "
       "differ)", (long long) n, in, out, bad);

    for (isa = SLORA_QISA_C; isa <= SLORA_QISA_LAST; isa++) {
        if (!slora_qmatmul_isa_supported(isa)) {
            ok(slora_q4_1_matmul_isa(y3, out, xq, xs, w, NULL, n, out, in, 0,
                                     1, isa)
               == -1, "q4_1 matmul: %s not on this CPU, refused",
               isa_names[isa]);
            continue;
        }

        memset(y3, 0xff, n * out * sizeof(float));
        ok(slora_q4_1_matmul_isa(y3, out, xq, xs, w, NULL, n, out, in, 0, 1,
                                 isa)
           == 0 && memcmp(y3, y, n * out * sizeof(float)) == 0,
           "q4_1 matmul %lldx%d.%dT on %s == the C dot products to the bit",
           (long long) n, in, out, isa_names[isa]);
    }

    /* the activations are Q8_0's quants and scales */
    slora_quantize_q8_0(x8, x, n * in);
    slora_dequantize_q8_0(xd, x8, n * in);
    matmul_ref(ref, xd, wd, n, out, in);
    e = err_rel(y, ref, n * out);
    ok(e < 1e-5, "q4_1 matmul %lldx%d.%dT == f32 product of the dequantized "
       "operands: %.2e", (long long) n, in, out, e);

    matmul_ref(ref, x, wd, n, out, in);
    e = err_rel(y, ref, n * out);
    ok(e < 2e-2, "q4_1 matmul %lldx%d.%dT vs unquantized activations: %.2e",
       (long long) n, in, out, e);

    memset(xq, 0, xs);
    bad = 0;
    for (ith = 2; ith >= 0; ith--) {
        bad += slora_q4_1_quantize_act(xq, xs, x, in, n, in, ith, 3);
    }
    for (ith = 2; ith >= 0; ith--) {
        bad += slora_q4_1_matmul(y3, out, xq, xs, w, NULL, n, out, in, ith,
                                 3);
    }
    ok(bad == 0 && memcmp(y3, y, n * out * sizeof(float)) == 0,
       "q4_1 matmul %lldx%d.%dT in 3 shares == 1 share", (long long) n, in,
       out);

    bad = 0;
    for (t = 0; t < n; t++) {
        slora_q4_1_quantize_act(xq, xs, x + t * in, in, 1, in, 0, 1);
        slora_q4_1_matmul(y1, out, xq, xs, w, NULL, 1, out, in, 0, 1);
        bad += memcmp(y1, y + t * out, out * sizeof(float)) != 0;
    }
    ok(bad == 0, "q4_1 matmul: each of %lld rows alone == in the batch (%d "
       "differ)", (long long) n, bad);

    bad = other_batch(y, x, n, out, in, NULL, w);
    ok(bad == 0, "q4_1 matmul: rows in other batches, other orders == in "
       "the batch (%d differ)", bad);

    slora_q4_1_quantize_act(xq, xs, x, in, n, in, 0, 1);
    slora_q4_1_matmul(y3, out, xq, xs, w, bias, n, out, in, 0, 1);
    bad = 0;
    for (t = 0; t < n; t++) {
        for (c = 0; c < out; c++) {
            bad += y3[t * out + c] != y[t * out + c] + bias[c];
        }
    }
    ok(bad == 0, "q4_1 matmul adds the bias");

    free(w); free(wd); free(x); free(xd); free(x8); free(y); free(y3);
    free(y1); free(bias); free(ref); free(xq);
}


int
main(void)
{
    slora_block_q8_0_t  blk[2];
    float               x[64], y[4];

    tap_seed(0x2545f4914f6cdd1dull);

    test_quantize();
    test_quantize_isa();
    test_isa();
    test_saturate();

    test_matmul_case(16, 200, 576);
    test_matmul_case(1, 1536, 576);
    test_matmul_case(5, 576, 1536);
    test_matmul_case(3, 7, 32);
    test_matmul_case(11, 45, 544);
    test_matmul_case(1, 18, 96);
    test_matmul_case(7, 64, 512);

    test_quantize_q4_1();
    test_quantize_q4_1_saturate();
    test_isa_q4_1();
    test_matmul_q4_1_case(16, 200, 576);
    test_matmul_q4_1_case(1, 1536, 576);
    test_matmul_q4_1_case(5, 576, 1536);
    test_matmul_q4_1_case(3, 7, 64);
    test_matmul_q4_1_case(2, 33, 640);
    test_matmul_q4_1_case(11, 45, 1088);
    test_matmul_q4_1_case(1, 18, 128);

    memset(blk, 0, sizeof(blk));
    memset(x, 0, sizeof(x));
    ok(slora_qmatmul_quantize(blk, sizeof(blk), x, 40, 1, 40, 0, 1) == -1,
       "qmatmul refuses in not a multiple of 32");
    ok(slora_qmatmul_quantize(blk, sizeof(blk) - 1, x, 64, 1, 64, 0, 1)
       == -1, "qmatmul refuses a short activation buffer");
    ok(slora_qmatmul(y, 4, blk, sizeof(blk), blk, NULL, 1, 1, 64, 1, 1)
       == -1, "qmatmul refuses share 1 of 1");
    ok(slora_q4_1_pack_size(4, 96) == 0
       && slora_q4_1_pack(y, sizeof(y), (slora_block_q4_1_t *) x, 1, 96)
          == -1, "q4_1 refuses in not a multiple of 64");
    ok(slora_q4_1_quantize_act(x, 100, x, 64, 1, 64, 0, 1) == -1,
       "q4_1 refuses a short activation buffer");
    ok(slora_q4_1_matmul(y, 4, x, sizeof(x), x, NULL, 1, 1, 64, 1, 1) == -1,
       "q4_1 matmul refuses share 1 of 1");

    return done_testing();
}
