/*
 * slora_norm.cu: RMSNorm and residual-add + RMSNorm on the GPU, the
 * device twin of slora_norm_cpu.c, and the per-head RMSNorm of Qwen3's q
 * and k (a warp a head).
 *
 * The one idea: one block per row; each thread walks the same 16-byte
 * chunks in both passes, so the fused variant writes the updated
 * residual in the first pass and reads its own writes back in the
 * second with no barrier but the one inside the block sum.
 */

#include <stdint.h>
#include <stddef.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_norm.h"
}


#define SLORA_NORM_THREADS  256


static int slora_norm_launch(uint16_t *out, int64_t ld_out, uint16_t *x,
    int64_t ld_x, const uint16_t *res, int64_t ld_res, const float *d,
    int64_t ld_d, const uint16_t *w, int64_t n_rows, int64_t dim, float eps,
    void *stream);


static __global__ void __launch_bounds__(SLORA_NORM_THREADS)
slora_rmsnorm_kernel(uint16_t *__restrict__ out, int64_t ld_out,
    uint16_t *__restrict__ x, int64_t ld_x,
    const uint16_t *__restrict__ res, int64_t ld_res,
    const float *__restrict__ d, int64_t ld_d,
    const uint16_t *__restrict__ w, int64_t dim, float eps)
{
    __shared__ float  red[SLORA_NORM_THREADS / SLORA_CUDA_WARP];

    int64_t    i;
    int        e;
    uint16_t  *xr, *o;
    float      f[SLORA_CUDA_VEC], g[SLORA_CUDA_VEC], ss, scale;

    slora_pdl_enter();

    xr = x + (int64_t) blockIdx.x * ld_x;
    o = out + (int64_t) blockIdx.x * ld_out;
    ss = 0.0f;

    for (i = threadIdx.x * SLORA_CUDA_VEC; i < dim;
         i += SLORA_NORM_THREADS * SLORA_CUDA_VEC)
    {
        slora_ld8(f, xr + i);

        if (res != NULL) {
            slora_ld8(g, res + (int64_t) blockIdx.x * ld_res + i);

            /* the residual's LoRA delta, rounded as the expand into it
             * would have */
            if (d != NULL) {
                slora_add_delta8(g, d + (int64_t) blockIdx.x * ld_d + i);
            }

#pragma unroll
            for (e = 0; e < SLORA_CUDA_VEC; e++) {
                f[e] += g[e];
            }

            slora_st8(xr + i, f);
        }

#pragma unroll
        for (e = 0; e < SLORA_CUDA_VEC; e++) {
            ss = fmaf(f[e], f[e], ss);
        }
    }

    ss = slora_block_sum(ss, red);
    scale = rsqrtf(ss / (float) dim + eps);

    for (i = threadIdx.x * SLORA_CUDA_VEC; i < dim;
         i += SLORA_NORM_THREADS * SLORA_CUDA_VEC)
    {
        slora_ld8(f, xr + i);
        slora_ld8(g, w + i);

#pragma unroll
        for (e = 0; e < SLORA_CUDA_VEC; e++) {
            f[e] = f[e] * scale * g[e];
        }

        slora_st8(o + i, f);
    }
}


extern "C" int
slora_rmsnorm_cuda(uint16_t *out, int64_t ld_out, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, int64_t n_rows, int64_t dim, float eps,
    void *stream)
{
    return slora_norm_launch(out, ld_out, (uint16_t *) x, ld_x, NULL, 0, NULL,
                             0, w, n_rows, dim, eps, stream);
}


extern "C" int
slora_add_rmsnorm_cuda(uint16_t *out, int64_t ld_out, uint16_t *x,
    int64_t ld_x, const uint16_t *res, int64_t ld_res, const float *d,
    int64_t ld_d, const uint16_t *w, int64_t n_rows, int64_t dim, float eps,
    void *stream)
{
    if (res == NULL || ld_res < dim || ld_res % SLORA_CUDA_VEC != 0
        || !slora_cuda_aligned(res) || out == x
        || (d != NULL
            && (ld_d < dim || ld_d % 4 != 0 || !slora_cuda_aligned(d))))
    {
        return -1;
    }

    return slora_norm_launch(out, ld_out, x, ld_x, res, ld_res, d, ld_d, w,
                             n_rows, dim, eps, stream);
}


/* A warp a head: lane l takes the 8-value chunks l, l + 32, ... */
#define SLORA_HEAD_NORM_WARPS    4
#define SLORA_HEAD_NORM_THREADS  (SLORA_HEAD_NORM_WARPS * SLORA_CUDA_WARP)

static __global__ void __launch_bounds__(SLORA_HEAD_NORM_THREADS)
slora_head_rmsnorm_kernel(uint16_t *__restrict__ x, int64_t ld,
    int64_t n_heads_all, int32_t n_heads, int32_t head_dim,
    const uint16_t *__restrict__ w, float eps)
{
    int64_t    hh;
    int32_t    c, lane, e;
    uint16_t  *xh;
    float      f[SLORA_CUDA_VEC], g[SLORA_CUDA_VEC], ss, scale;

    slora_pdl_enter();

    hh = (int64_t) blockIdx.x * SLORA_HEAD_NORM_WARPS
         + threadIdx.x / SLORA_CUDA_WARP;
    lane = threadIdx.x % SLORA_CUDA_WARP;

    if (hh >= n_heads_all) {
        return;
    }

    xh = x + (hh / n_heads) * ld + (hh % n_heads) * head_dim;
    ss = 0.0f;

    for (c = lane * SLORA_CUDA_VEC; c < head_dim;
         c += SLORA_CUDA_WARP * SLORA_CUDA_VEC)
    {
        slora_ld8(f, xh + c);

#pragma unroll
        for (e = 0; e < SLORA_CUDA_VEC; e++) {
            ss = fmaf(f[e], f[e], ss);
        }
    }

    ss = slora_warp_sum(ss);
    scale = rsqrtf(ss / (float) head_dim + eps);

    for (c = lane * SLORA_CUDA_VEC; c < head_dim;
         c += SLORA_CUDA_WARP * SLORA_CUDA_VEC)
    {
        slora_ld8(f, xh + c);
        slora_ld8(g, w + c);

#pragma unroll
        for (e = 0; e < SLORA_CUDA_VEC; e++) {
            f[e] = f[e] * scale * g[e];
        }

        slora_st8(xh + c, f);
    }
}


extern "C" int
slora_head_rmsnorm_cuda(uint16_t *x, int64_t ld, int64_t n_tok,
    int32_t n_heads, int32_t head_dim, const uint16_t *w, float eps,
    void *stream)
{
    int64_t  n;

    if (x == NULL || w == NULL || n_tok < 0 || n_heads <= 0
        || head_dim <= 0 || head_dim > 512 || head_dim % SLORA_CUDA_VEC != 0
        || ld < (int64_t) n_heads * head_dim || ld % SLORA_CUDA_VEC != 0
        || !slora_cuda_aligned(x) || !slora_cuda_aligned(w))
    {
        return -1;
    }

    n = n_tok * n_heads;

    if (n == 0) {
        return 0;
    }

    slora_launch(slora_head_rmsnorm_kernel,
        (unsigned) ((n + SLORA_HEAD_NORM_WARPS - 1) / SLORA_HEAD_NORM_WARPS),
        SLORA_HEAD_NORM_THREADS, 0, (cudaStream_t) stream, x,
        ld, n, n_heads, head_dim, w, eps);

    return slora_cuda_launched();
}


/* res NULL: plain RMSNorm, x is only read. */

static int
slora_norm_launch(uint16_t *out, int64_t ld_out, uint16_t *x, int64_t ld_x,
    const uint16_t *res, int64_t ld_res, const float *d, int64_t ld_d,
    const uint16_t *w, int64_t n_rows, int64_t dim, float eps, void *stream)
{
    if (out == NULL || x == NULL || w == NULL || n_rows < 0 || dim <= 0
        || n_rows > INT32_MAX || dim % SLORA_CUDA_VEC != 0 || ld_out < dim
        || ld_x < dim || ld_out % SLORA_CUDA_VEC != 0
        || ld_x % SLORA_CUDA_VEC != 0 || !slora_cuda_aligned(out)
        || !slora_cuda_aligned(x) || !slora_cuda_aligned(w))
    {
        return -1;
    }

    if (n_rows == 0) {
        return 0;
    }

    slora_launch(slora_rmsnorm_kernel, (unsigned) n_rows, SLORA_NORM_THREADS, 0,
        (cudaStream_t) stream, out, ld_out, x, ld_x, res, ld_res, d, ld_d, w,
        dim, eps);

    return slora_cuda_launched();
}
