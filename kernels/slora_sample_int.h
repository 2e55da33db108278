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


#ifdef SLORA_VEC_X86
void slora_sample_weights_avx2(uint64_t *w, const float *row, int32_t n,
    float inv_temp, float max);
#endif


#endif /* SLORA_SAMPLE_INT_H */
