/*
 * slora_vec_cpu.h: the vector loops the CPU twins share: a dot product,
 * a sum, y += w x and exp. They are written so that -O2 vectorizes them
 * without -march flags or intrinsics.
 *
 * The one idea: the dot product keeps 16 running sums and the sum 8, each
 * folded in a fixed tree, so a result depends only on n, never on how the
 * caller shared the work out between threads, and a vector twin gives its
 * bits with a register of sums. And exp is ours, not the C
 * library's, so that a vector twin (slora_attention_x86_cpu.c) can give
 * its bits: the C library picks its own expf at run time (with FMA where
 * the processor has it), and a vector expf of its own would not match it.
 */

#ifndef SLORA_VEC_CPU_H
#define SLORA_VEC_CPU_H


#include <math.h>
#include <stdint.h>
#include <string.h>


/* where the x86 twins (slora_vec_x86_cpu.h) are built: they are chosen
 * at run time by what the processor has */
#if defined(__x86_64__) && defined(__GNUC__)
#define SLORA_VEC_X86  1
#endif


/*
 * expf as glibc computes it without FMA (ARM's optimized-routines
 * algorithm, within 0.502 ulp): x = (k + r) ln2 / 32 with k an integer
 * and |r| <= 1/2, 2^(k/32) from a table of 32 and the exponent field, and
 * 2^(r/32) by a cubic, all in double. The table holds 2^(i/32)'s bits
 * less i << 47, which the exponent trick adds back.
 */
#define SLORA_EXP_INVLN2N  0x1.71547652b82fep+5     /* 32 / ln 2 */
#define SLORA_EXP_SHIFT    0x1.8p+52                /* rounds to an int */
#define SLORA_EXP_C0       (0x1.c6af84b912394p-5 / 32 / 32 / 32)
#define SLORA_EXP_C1       (0x1.ebfce50fac4f3p-3 / 32 / 32)
#define SLORA_EXP_C2       (0x1.62e42ff0c52d6p-1 / 32)
#define SLORA_EXP_MAX      0x1.62e42ep6f            /* above: inf */
#define SLORA_EXP_MIN      (-0x1.9fe368p6f)         /* below: 0 */

static const uint64_t  slora_exp_tab[32] = {
    0x3ff0000000000000ULL, 0x3fefd9b0d3158574ULL, 0x3fefb5586cf9890fULL,
    0x3fef9301d0125b51ULL, 0x3fef72b83c7d517bULL, 0x3fef54873168b9aaULL,
    0x3fef387a6e756238ULL, 0x3fef1e9df51fdee1ULL, 0x3fef06fe0a31b715ULL,
    0x3feef1a7373aa9cbULL, 0x3feedea64c123422ULL, 0x3feece086061892dULL,
    0x3feebfdad5362a27ULL, 0x3feeb42b569d4f82ULL, 0x3feeab07dd485429ULL,
    0x3feea47eb03a5585ULL, 0x3feea09e667f3bcdULL, 0x3fee9f75e8ec5f74ULL,
    0x3feea11473eb0187ULL, 0x3feea589994cce13ULL, 0x3feeace5422aa0dbULL,
    0x3feeb737b0cdc5e5ULL, 0x3feec49182a3f090ULL, 0x3feed503b23e255dULL,
    0x3feee89f995ad3adULL, 0x3feeff76f2fb5e47ULL, 0x3fef199bdd85529cULL,
    0x3fef3720dcef9069ULL, 0x3fef5818dcfba487ULL, 0x3fef7c97337b9b5fULL,
    0x3fefa4afa2a490daULL, 0x3fefd0765b6e4540ULL
};


static inline float
slora_expf(float x)
{
    double    z, kd, r, r2, y, s;
    uint64_t  ki, t;

    if (!(x <= SLORA_EXP_MAX)) {
        return x != x ? x + x : INFINITY;       /* NaN, or too large */
    }

    if (x < SLORA_EXP_MIN) {
        return 0.0f;
    }

    z = SLORA_EXP_INVLN2N * (double) x;
    kd = z + SLORA_EXP_SHIFT;
    memcpy(&ki, &kd, sizeof(ki));
    kd -= SLORA_EXP_SHIFT;
    r = z - kd;

    t = slora_exp_tab[ki % 32] + (ki << 47);
    memcpy(&s, &t, sizeof(s));

    z = SLORA_EXP_C0 * r + SLORA_EXP_C1;
    r2 = r * r;
    y = SLORA_EXP_C2 * r + 1.0;
    y = z * r2 + y;

    return (float) (y * s);
}


/* slora_vec_dot's sixteen running sums and its tail folded in its fixed
 * tree: what a vector twin with the sums in registers stores and folds
 * to give its bits */
static inline float
slora_vec_fold16(float *acc, float tail)
{
    int32_t  j;

    for (j = 0; j < 8; j++) {
        acc[j] += acc[j + 8];
    }

    for (j = 0; j < 4; j++) {
        acc[j] += acc[j + 4];
    }

    return (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail;
}


static inline float
slora_vec_dot(const float *restrict a, const float *restrict b, int32_t n)
{
    float    acc[16], tail;
    int32_t  i, j;

    for (j = 0; j < 16; j++) {
        acc[j] = 0.0f;
    }

    for (i = 0; i + 16 <= n; i += 16) {
        for (j = 0; j < 16; j++) {
            acc[j] += a[i + j] * b[i + j];
        }
    }

    tail = 0.0f;

    for ( /* void */ ; i < n; i++) {
        tail += a[i] * b[i];
    }

    return slora_vec_fold16(acc, tail);
}


/* The sum of x[0, n): eight running sums over the blocks of eight, the
 * rest in order, folded as slora_vec_dot folds. */
static inline float
slora_vec_sum(const float *x, int32_t n)
{
    float    acc[8], tail;
    int32_t  i, j;

    for (j = 0; j < 8; j++) {
        acc[j] = 0.0f;
    }

    for (i = 0; i + 8 <= n; i += 8) {
        for (j = 0; j < 8; j++) {
            acc[j] += x[i + j];
        }
    }

    tail = 0.0f;

    for ( /* void */ ; i < n; i++) {
        tail += x[i];
    }

    for (j = 0; j < 4; j++) {
        acc[j] += acc[j + 4];
    }

    return (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail;
}


/* Blocks of 16 with a known trip count, which -O2's cheap vectorizer
 * takes (a plain loop of unknown n it leaves scalar); each element sees
 * the same multiply and add either way. */
static inline void
slora_vec_axpy(float *restrict y, float w, const float *restrict x,
    int32_t n)
{
    int32_t  i, j;

    for (i = 0; i + 16 <= n; i += 16) {
        for (j = 0; j < 16; j++) {
            y[i + j] += w * x[i + j];
        }
    }

    for ( /* void */ ; i < n; i++) {
        y[i] += w * x[i];
    }
}


#endif /* SLORA_VEC_CPU_H */
