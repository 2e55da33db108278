/*
 * slora_act.h: the gated activation of the Llama MLP.
 *
 * The one idea: silu(g) * u is computed in one pass from the gate and up
 * projections, so the MLP never stores silu(g) on its own.
 */

#ifndef SLORA_ACT_H
#define SLORA_ACT_H


#include <stdint.h>


/* out[r,i] = g[r,i] / (1 + exp(-g[r,i])) * u[r,i] for the rows r of
 * share ith of nth (rows [n_rows*ith/nth, n_rows*(ith+1)/nth)); a
 * single-threaded caller passes 0, 1. out may equal g or u. */
int slora_silu_mul(float *out, int64_t ld_out, const float *g, int64_t ld_g,
    const float *u, int64_t ld_u, int64_t n_rows, int64_t dim, int ith,
    int nth);

/* The same in instruction set isa (slora_qmatmul.h's SLORA_QISA_*; AUTO:
 * the best this processor runs), with the same bits in each; -1 where
 * isa is not supported. */
int slora_silu_mul_isa(float *out, int64_t ld_out, const float *g,
    int64_t ld_g, const float *u, int64_t ld_u, int64_t n_rows, int64_t dim,
    int ith, int nth, int isa);


/* CUDA twin (kernels/slora_act.cu): bf16 device memory (raw bits); dim
 * and the strides are multiples of 8, pointers 16-byte aligned. stream
 * is a cudaStream_t. */
int slora_silu_mul_cuda(uint16_t *out, int64_t ld_out, const uint16_t *g,
    int64_t ld_g, const uint16_t *u, int64_t ld_u, int64_t n_rows,
    int64_t dim, void *stream);

#endif /* SLORA_ACT_H */
