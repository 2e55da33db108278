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


/* The k best of row[from, n) into ids[0, *got), *got of them so far:
 * insertion, a later id never passing an equal logit (ties keep the lower
 * id first) */
static inline void
slora_sample_top_row(int32_t *ids, int32_t *got, const float *row,
    int32_t from, int32_t n, int32_t k)
{
    int32_t  i, j;

    for (i = from; i < n && k > 0; i++) {
        if (*got == k && !(row[i] > row[ids[k - 1]])) {
            continue;
        }

        j = *got < k ? (*got)++ : k - 1;

        while (j > 0 && row[i] > row[ids[j - 1]]) {
            ids[j] = ids[j - 1];
            j--;
        }

        ids[j] = i;
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
void slora_sample_top_avx2(float *max, int32_t *ids, const float *row,
    int32_t n, int32_t k);
#endif


#endif /* SLORA_SAMPLE_INT_H */
