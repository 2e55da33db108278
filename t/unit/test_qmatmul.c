/*
 * test_qmatmul.c: the Q8_0 kernels. Quantization follows ggml's rule (f16
 * scale of max|x| / 127, quants within +-127, error at most half a step
 * plus the scale's f16 rounding); every instruction set the CPU runs
 * gives the portable C dot product to the bit, and so does every output
 * of the matrix product; it matches an f32 product of the dequantized
 * weights and activations to 1e-5 and the unquantized one to 2e-2; a
 * row's output is the same to the bit alone and in a batch of 16, and
 * in 1 or 3 shares; bias is added; bad shapes are refused.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "tap.h"

#include "slora_tensor.h"
#include "slora_qmatmul.h"


static uint64_t  rng_state = 0x2545f4914f6cdd1dull;


static float
frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float) ((rng_state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f
           - 1.0f;
}


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
        v[i] = amp * frand();
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
        x[6 * 32 + i] = 1e-3f * frand();        /* f16 subnormal scale */
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


static void
test_isa(void)
{
    static const char   *names[] = { "auto", "C", "AVX2", "AVX512-VNNI" };
    slora_block_q8_0_t  *w, *x;
    float               *f, ref, got;
    int32_t              nb, k, isa, bad, runs;

    nb = 64;
    f = frand_vec(32 * nb, 2.0f);
    w = malloc(nb * sizeof(slora_block_q8_0_t));
    x = malloc(nb * sizeof(slora_block_q8_0_t));
    slora_quantize_q8_0(w, f, 32 * nb);
    free(f);

    for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_AVX512; isa++) {
        if (!slora_qmatmul_isa_supported(isa)) {
            ok(isnan(slora_qdot_q8_0(w, w, nb, isa)),
               "%s: not on this CPU, refused", names[isa]);
            continue;
        }

        bad = 0;
        runs = 0;

        for (k = 0; k < 200; k++) {
            f = frand_vec(32 * nb, k % 7 == 0 ? 1e3f : 1.0f);
            slora_quantize_q8_0(x, f, 32 * nb);
            free(f);

            /* extremes: +-127 in every lane of a block */
            if (k == 0) {
                memset(x[3].qs, 127, 32);
                memset(w[3].qs, 0x81, 32);
            }

            ref = slora_qdot_q8_0(w, x, 1 + k % nb, SLORA_QISA_C);
            got = slora_qdot_q8_0(w, x, 1 + k % nb, isa);
            bad += memcmp(&ref, &got, sizeof(float)) != 0;
            runs++;
        }

        ok(bad == 0, "%s dot == C dot to the bit (%d of %d differ)",
           names[isa], bad, runs);
    }

    free(w); free(x);
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


static void
test_matmul_case(int64_t n, int32_t out, int32_t in)
{
    slora_block_q8_0_t  *wq;
    float               *w, *wd, *x, *xd, *y, *y3, *y1, *bias, v;
    double              *ref, e;
    void                *xq;
    size_t               xs;
    int64_t              t, c;
    int                  ith, bad;

    w = frand_vec((int64_t) out * in, 0.1f);
    wd = malloc((int64_t) out * in * sizeof(float));
    wq = malloc((int64_t) out * (in / 32) * sizeof(slora_block_q8_0_t));
    x = frand_vec(n * in, 1.5f);
    xd = malloc(n * in * sizeof(float));
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
            v = slora_qdot_q8_0(wq + c * (in / 32),
                                (slora_block_q8_0_t *) xq + t * (in / 32),
                                in / 32, SLORA_QISA_C);
            bad += memcmp(&v, &y[t * out + c], sizeof(float)) != 0;
        }
    }
    ok(bad == 0, "qmatmul %lldx%d.%dT == C dot products to the bit (%d "
       "differ)", (long long) n, in, out, bad);

    slora_dequantize_q8_0(xd, xq, n * in);
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

    free(w); free(wd); free(wq); free(x); free(xd); free(y); free(y3);
    free(y1); free(bias); free(ref); free(xq);
}


int
main(void)
{
    slora_block_q8_0_t  blk[2];
    float               x[64], y[4];

    test_quantize();
    test_isa();

    test_matmul_case(16, 200, 576);
    test_matmul_case(1, 1536, 576);
    test_matmul_case(5, 576, 1536);
    test_matmul_case(3, 7, 32);

    memset(blk, 0, sizeof(blk));
    memset(x, 0, sizeof(x));
    ok(slora_qmatmul_quantize(blk, sizeof(blk), x, 40, 1, 40, 0, 1) == -1,
       "qmatmul refuses in not a multiple of 32");
    ok(slora_qmatmul_quantize(blk, sizeof(blk) - 1, x, 64, 1, 64, 0, 1)
       == -1, "qmatmul refuses a short activation buffer");
    ok(slora_qmatmul(y, 4, blk, sizeof(blk), blk, NULL, 1, 1, 64, 1, 1)
       == -1, "qmatmul refuses share 1 of 1");

    return done_testing();
}
