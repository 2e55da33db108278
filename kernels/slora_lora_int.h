/*
 * slora_lora_int.h: what the LoRA kernels' CPU files share:
 * slora_lora_cpu.c (the entry points, the work items and the portable
 * loops) and slora_lora_x86_cpu.c (the same loops in AVX2 and in
 * AVX-512, each compiled for its set by a function attribute), which
 * give the portable loops' bits.
 *
 * The one idea: a work item's inner loops (a shrink item's dot products
 * over its segment's tokens, an expand item's y += w B over its tokens
 * and ranks) are one function each, so the instruction set is chosen
 * once a call and no call is made per dot product or per row of B.
 */

#ifndef SLORA_LORA_INT_H
#define SLORA_LORA_INT_H


#include <stdint.h>

#include "slora_lora.h"
#include "slora_vec_cpu.h"


/* v[t, j] = x[t, :in_dim] . a for t in [t0, t1) */
typedef void (*slora_lora_shrink_pt)(float *v, int64_t ld_v, const float *x,
    int64_t ld_x, const float *a, int32_t in_dim, int32_t t0, int32_t t1,
    int32_t j);

/* y[t, c0 : c0 + nc] += (sc * v[t, j]) B_j[c0 : c0 + nc], B_j at base +
 * rows[j], for t in [t0, t1) and then j in [0, r) */
typedef void (*slora_lora_expand_pt)(float *y, int64_t ld_y, const float *v,
    int64_t ld_v, const float *base, const int64_t *rows, int32_t r,
    float sc, int32_t t0, int32_t t1, int32_t c0, int32_t nc);


static inline void
slora_lora_shrink_item(float *v, int64_t ld_v, const float *x, int64_t ld_x,
    const float *a, int32_t in_dim, int32_t t0, int32_t t1, int32_t j)
{
    int32_t  t;

    for (t = t0; t < t1; t++) {
        v[(int64_t) t * ld_v + j] = slora_vec_dot(x + (int64_t) t * ld_x, a,
                                                  in_dim);
    }
}


static inline void
slora_lora_expand_item(float *y, int64_t ld_y, const float *v, int64_t ld_v,
    const float *base, const int64_t *rows, int32_t r, float sc, int32_t t0,
    int32_t t1, int32_t c0, int32_t nc)
{
    int32_t  t, j;

    for (t = t0; t < t1; t++) {
        for (j = 0; j < r; j++) {
            slora_vec_axpy(y + (int64_t) t * ld_y + c0,
                           sc * v[(int64_t) t * ld_v + j],
                           base + rows[j] + c0, nc);
        }
    }
}


#ifdef SLORA_VEC_X86
void slora_lora_shrink_item_avx2(float *v, int64_t ld_v, const float *x,
    int64_t ld_x, const float *a, int32_t in_dim, int32_t t0, int32_t t1,
    int32_t j);
void slora_lora_expand_item_avx2(float *y, int64_t ld_y, const float *v,
    int64_t ld_v, const float *base, const int64_t *rows, int32_t r,
    float sc, int32_t t0, int32_t t1, int32_t c0, int32_t nc);
void slora_lora_shrink_item_avx512(float *v, int64_t ld_v, const float *x,
    int64_t ld_x, const float *a, int32_t in_dim, int32_t t0, int32_t t1,
    int32_t j);
void slora_lora_expand_item_avx512(float *y, int64_t ld_y, const float *v,
    int64_t ld_v, const float *base, const int64_t *rows, int32_t r,
    float sc, int32_t t0, int32_t t1, int32_t c0, int32_t nc);
#endif


#endif /* SLORA_LORA_INT_H */
