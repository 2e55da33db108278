/*
 * slora_cuda_gemm.h: the CUDA backend's base projections through
 * cuBLASLt, with the descriptors and algorithm of each shape made once
 * (slora_cuda_gemm.c says how).
 *
 * Built into the CUDA backend's .so only; nothing in libslora.a
 * includes it.
 */

#ifndef SLORA_CUDA_GEMM_H
#define SLORA_CUDA_GEMM_H


#include <cuda_runtime.h>
#include <cublasLt.h>

#include "slora_core.h"


typedef struct slora_cuda_gemm_s  slora_cuda_gemm_t;


/* y[n, out] (row stride ld_y) = x[n, in] (row stride ld_x) W^T, W
 * row-major [out, in] bf16; y bf16, or fp32 with f32_out; plus a bf16
 * bias[out] with bias. beside: LoRA's shrink and expand run beside this
 * GEMM on another stream, so our kernel leaves them part of the SMs
 * (slora_cuda_gemm.c). Every other field is
 * part of a cuBLASLt plan's key, so the struct is zeroed before it is
 * filled. */
typedef struct {
    int32_t     out;
    int32_t     n;
    int32_t     in;
    int32_t     f32_out;
    int64_t     ld_x;
    int64_t     ld_y;
    int32_t     bias;
    int32_t     beside;
} slora_cuda_gemm_shape_t;


slora_cuda_gemm_t *slora_cuda_gemm_create(size_t work_size, slora_err_t *err);
void slora_cuda_gemm_free(slora_cuda_gemm_t *g);

/* Enqueues the GEMM on stream. */
int slora_cuda_gemm(slora_cuda_gemm_t *g, const slora_cuda_gemm_shape_t *s,
    void *y, const uint16_t *x, const uint16_t *w, const uint16_t *bias,
    cudaStream_t stream, slora_err_t *err);

/* The MLP's gate and up, W row-major [2 out, in] (gate's rows, then
 * up's), with SiLU-and-mul fused: y[n, out] (row stride ld_y) =
 * silu(x W_gate^T) * (x W_up^T) in bf16, as the GEMM of both and
 * slora_silu_mul_cuda give it. SLORA_DECLINED where the fused kernel
 * does not take the shape (s->out is the MLP's width; a bias, fp32 out
 * or a GEMM with LoRA beside it are not taken): the caller then runs the
 * two. */
int slora_cuda_gemm_glu(slora_cuda_gemm_t *g, const slora_cuda_gemm_shape_t *s,
    uint16_t *y, const uint16_t *x, const uint16_t *w, cudaStream_t stream,
    slora_err_t *err);

/* The host time spent so far making cuBLASLt plans for shapes new to g
 * (its heuristic's query and the descriptors), which a forward that
 * meets new shapes pays once. */
int64_t slora_cuda_gemm_setup_ns(const slora_cuda_gemm_t *g);


#endif /* SLORA_CUDA_GEMM_H */
