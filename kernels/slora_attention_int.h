/*
 * slora_attention_int.h: what attention's two CPU files share:
 * slora_attention_cpu.c (the entry points, the share of work and the
 * portable row) and slora_attention_x86_cpu.c (the same row in AVX2,
 * compiled for it by a function attribute), which gives the portable
 * row's bits.
 */

#ifndef SLORA_ATTENTION_INT_H
#define SLORA_ATTENTION_INT_H


#include <stdint.h>

#include "slora_attention.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define SLORA_ATTN_X86  1
#endif


/*
 * One query row of one head: o = softmax(qh . K^T / sqrt(d)) V over the
 * first n_ctx positions of the sequence whose page ids are pages, kv head
 * kvh; sc holds n_ctx scores.
 */
typedef void (*slora_attn_row_pt)(float *o, const float *qh,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t kvh, float *sc);


#ifdef SLORA_ATTN_X86

/* head_dim a multiple of 16, at most SLORA_ATTN_AVX2_MAX_DIM */
#define SLORA_ATTN_AVX2_MAX_DIM  256

void slora_attn_row_avx2(float *o, const float *qh,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t kvh, float *sc);

#endif


#endif /* SLORA_ATTENTION_INT_H */
