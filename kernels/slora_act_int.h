/*
 * slora_act_int.h: what SiLU-and-mul's two CPU files share:
 * slora_act_cpu.c (the entry points and the portable row) and
 * slora_act_x86_cpu.c (the row in AVX2, compiled for it by a function
 * attribute), which gives the portable row's bits.
 */

#ifndef SLORA_ACT_INT_H
#define SLORA_ACT_INT_H


#include <stdint.h>

#include "slora_act.h"
#include "slora_vec_cpu.h"


/* o[i] = g[i] / (1 + exp(-g[i])) * u[i], i < dim: the portable row */
static inline void
slora_silu_mul_row(float *o, const float *g, const float *u, int64_t dim)
{
    int64_t  i;
    float    x;

    for (i = 0; i < dim; i++) {
        x = g[i];
        o[i] = x / (1.0f + slora_expf(-x)) * u[i];
    }
}


#ifdef SLORA_VEC_X86
void slora_silu_mul_row_avx2(float *o, const float *g, const float *u,
    int64_t dim);
#endif


#endif /* SLORA_ACT_INT_H */
