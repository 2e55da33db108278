/*
 * slora_sample_int.h: what the draw's two CPU files share:
 * slora_sample_cpu.c (the draw, and the portable weights) and
 * slora_sample_x86_cpu.c (the weights in AVX2, compiled for it by a
 * function attribute), which gives the portable weights' bits.
 */

#ifndef SLORA_SAMPLE_INT_H
#define SLORA_SAMPLE_INT_H


#include <stdint.h>

#include "slora_sample.h"
#include "slora_vec_cpu.h"


/* w[i] = slora_sample_weight(row[i] * inv_temp - max), i < n: the
 * portable weights */
static inline void
slora_sample_weights_row(uint64_t *w, const float *row, int32_t n,
    float inv_temp, float max)
{
    int32_t  i;

    for (i = 0; i < n; i++) {
        w[i] = slora_sample_weight(row[i] * inv_temp - max);
    }
}


/* s[i % 8] += slora_expf(row[i] - max) for from <= i < n, then the
 * eight sums folded: the portable sum of exponentials */
static inline void
slora_sample_sumexp_row(double *s, const float *row, int32_t from,
    int32_t n, float max)
{
    int32_t  i;

    for (i = from; i < n; i++) {
        s[i % 8] += (double) slora_expf(row[i] - max);
    }
}


static inline double
slora_sample_sumexp_fold(const double *s)
{
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}


#ifdef SLORA_VEC_X86
void slora_sample_weights_avx2(uint64_t *w, const float *row, int32_t n,
    float inv_temp, float max);
void slora_sample_sumexp_avx2(double *s, const float *row, int32_t n,
    float max);
#endif


#endif /* SLORA_SAMPLE_INT_H */
