/*
 * slora_norm.h: RMSNorm over rows, alone or fused with the residual add
 * that precedes it in every Llama block, and over each head of q and k
 * (Qwen3).
 *
 * The one idea: the sum of squares is accumulated in double, as ggml
 * does, so a row of a few thousand floats normalizes the same way on
 * every backend; the scale itself is applied in float.
 */

#ifndef SLORA_NORM_H
#define SLORA_NORM_H


#include <stdint.h>


/* out[r,:] = x[r,:] * rsqrt(mean(x[r,:]^2) + eps) * w[:] for the rows
 * r of share ith of nth (rows [n_rows*ith/nth, n_rows*(ith+1)/nth)); a
 * single-threaded caller passes 0, 1. Strides are in elements; out may
 * equal x. */
int slora_rmsnorm(float *out, int64_t ld_out, const float *x, int64_t ld_x,
    const float *w, int64_t n_rows, int64_t dim, float eps, int ith,
    int nth);

/* x[r,:] += res[r,:], then out[r,:] = rmsnorm(x[r,:]) * w, for the rows
 * of share ith of nth. x is updated in place (it is the residual
 * stream); out must not alias x or res. */
int slora_add_rmsnorm(float *out, int64_t ld_out, float *x, int64_t ld_x,
    const float *res, int64_t ld_res, const float *w, int64_t n_rows,
    int64_t dim, float eps, int ith, int nth);


/* Each head of each token RMS-normed in place (Qwen3's q and k norms):
 * x holds n_tok rows of ld elements, each n_heads heads of head_dim;
 * head h of row t becomes rmsnorm(x[t, h*head_dim ...]) * w[:], w of
 * head_dim. The tokens of share ith of nth. */
int slora_head_rmsnorm(float *x, int64_t ld, int64_t n_tok, int32_t n_heads,
    int32_t head_dim, const float *w, float eps, int ith, int nth);


/* CUDA twins (kernels/slora_norm.cu): out, x, res and w are bf16 device
 * memory (raw bits), sums fp32; dim and every stride are multiples of 8,
 * pointers 16-byte aligned. stream is a cudaStream_t. The residual's d,
 * unless NULL, is an fp32 LoRA delta of res (row stride ld_d, a
 * multiple of 4; slora_lora_expand_delta_cuda): res is first rounded to
 * bf16(res + d), as the expand into res would have left it. */
int slora_rmsnorm_cuda(uint16_t *out, int64_t ld_out, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, int64_t n_rows, int64_t dim, float eps,
    void *stream);
int slora_add_rmsnorm_cuda(uint16_t *out, int64_t ld_out, uint16_t *x,
    int64_t ld_x, const uint16_t *res, int64_t ld_res, const float *d,
    int64_t ld_d, const uint16_t *w, int64_t n_rows, int64_t dim, float eps,
    void *stream);
/* slora_head_rmsnorm's twin: a warp a head, head_dim at most 512. */
int slora_head_rmsnorm_cuda(uint16_t *x, int64_t ld, int64_t n_tok,
    int32_t n_heads, int32_t head_dim, const uint16_t *w, float eps,
    void *stream);

#endif /* SLORA_NORM_H */
