/*
 * slora_attention_int.h: what attention's two CPU files share:
 * slora_attention_cpu.c (the entry points, the share of work and the
 * portable rows) and slora_attention_x86_cpu.c (the same rows in AVX2
 * and in AVX-512, each compiled for its instruction set), which give the
 * portable rows' bits.
 */

#ifndef SLORA_ATTENTION_INT_H
#define SLORA_ATTENTION_INT_H


#include <stdint.h>

#include "slora_attention.h"
#include "slora_vec_cpu.h"


/* query rows a unit of work takes at once (consecutive positions) */
#define SLORA_ATTN_ROWS  4


/*
 * nr <= SLORA_ATTN_ROWS consecutive query rows of one head, row r at q +
 * r ld_q with the first n_ctx + r positions of the sequence whose page
 * ids are pages: o + r ld_o = softmax(q_r . K^T / sqrt(d)) V over kv head
 * kvh; sc holds nr rows of n_ctx + nr - 1 scores.
 */
typedef void (*slora_attn_rows_pt)(float *o, int64_t ld_o, const float *q,
    int64_t ld_q, const slora_paged_kv_t *c, const int32_t *pages,
    int32_t n_ctx, int32_t nr, int32_t kvh, float *sc);


#ifdef SLORA_VEC_X86

/* head_dim a multiple of 16, at most SLORA_ATTN_X86_MAX_DIM */
#define SLORA_ATTN_X86_MAX_DIM  256

void slora_attn_rows_avx2(float *o, int64_t ld_o, const float *q,
    int64_t ld_q, const slora_paged_kv_t *c, const int32_t *pages,
    int32_t n_ctx, int32_t nr, int32_t kvh, float *sc);
void slora_attn_rows_avx512(float *o, int64_t ld_o, const float *q,
    int64_t ld_q, const slora_paged_kv_t *c, const int32_t *pages,
    int32_t n_ctx, int32_t nr, int32_t kvh, float *sc);

#endif


#endif /* SLORA_ATTENTION_INT_H */
