/*
 * slora_gemv.cu: thin base projections on the GPU, the device twin of
 * slora_gemv_cpu.c, for decode steps of at most SLORA_GEMV_MAX_N tokens.
 *
 * The one idea: the product reads W once and x from L1, so the kernel is
 * a stream of W. One warp a row of W: each lane loads 16 bytes at a time,
 * SLORA_GEMV_UNROLL of them in flight before it uses any (a row of 4096
 * is 16 loads a lane; 4 in flight for one row of x, 8 for more, as
 * test_gemv_cuda's timings chose), with the cache-streaming hint so that
 * W does not push the step's activations out of L2; the n dot products
 * are summed across the warp and lane 0 writes them.
 */

#include <stdint.h>
#include <stddef.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_gemv.h"
}


#define SLORA_GEMV_WARPS   8
#define SLORA_GEMV_UNROLL(n)  ((n) == 1 ? 4 : 8)   /* slora_gemv_cuda()'s */


/* acc[t] += W chunk c . x[t] chunk c */
template <int N>
static __device__ __forceinline__ void
slora_gemv_chunk(float *acc, uint4 wv, const uint16_t *__restrict__ x,
    int64_t ld_x, int32_t c)
{
    float  fw[SLORA_CUDA_VEC], fx[SLORA_CUDA_VEC];
    int    t, e;

    slora_unpack8(fw, wv);

#pragma unroll
    for (t = 0; t < N; t++) {
        slora_ld8(fx, x + (int64_t) t * ld_x + (int64_t) c * SLORA_CUDA_VEC);

#pragma unroll
        for (e = 0; e < SLORA_CUDA_VEC; e++) {
            acc[t] = fmaf(fw[e], fx[e], acc[t]);
        }
    }
}


template <int N, int U>
static __device__ __forceinline__ void
slora_gemv_row(void *y, int64_t ld_y, int f32_out,
    const uint16_t *__restrict__ x, int64_t ld_x,
    const uint16_t *__restrict__ w, const uint16_t *__restrict__ bias,
    int32_t row, int32_t in)
{
    int32_t          lane, n_chunks, c, u, t;
    const uint4     *wr;
    uint4            wv[U];
    float            acc[N], v;

    lane = threadIdx.x % SLORA_CUDA_WARP;
    wr = (const uint4 *) (w + (int64_t) row * in);
    n_chunks = in / SLORA_CUDA_VEC;

#pragma unroll
    for (t = 0; t < N; t++) {
        acc[t] = 0.0f;
    }

    for (c = lane; c + (U - 1) * SLORA_CUDA_WARP < n_chunks;
         c += U * SLORA_CUDA_WARP)
    {
#pragma unroll
        for (u = 0; u < U; u++) {
            wv[u] = __ldcs(wr + c + u * SLORA_CUDA_WARP);
        }

#pragma unroll
        for (u = 0; u < U; u++) {
            slora_gemv_chunk<N>(acc, wv[u], x, ld_x,
                                c + u * SLORA_CUDA_WARP);
        }
    }

    for (; c < n_chunks; c += SLORA_CUDA_WARP) {
        slora_gemv_chunk<N>(acc, __ldcs(wr + c), x, ld_x, c);
    }

#pragma unroll
    for (t = 0; t < N; t++) {
        acc[t] = slora_warp_sum(acc[t]);
    }

    if (lane != 0) {
        return;
    }

#pragma unroll
    for (t = 0; t < N; t++) {
        v = acc[t] + (bias != NULL ? slora_bf2f(bias[row]) : 0.0f);

        if (f32_out) {
            ((float *) y)[(int64_t) t * ld_y + row] = v;

        } else {
            ((uint16_t *) y)[(int64_t) t * ld_y + row] = slora_f2bf(v);
        }
    }
}


/* one row of W a warp, rows a grid apart: a grid of a block per 8 rows
 * does each row once */
template <int N, int U>
static __global__ void __launch_bounds__(SLORA_GEMV_WARPS * SLORA_CUDA_WARP)
slora_gemv_kernel(void *y, int64_t ld_y, int f32_out,
    const uint16_t *__restrict__ x, int64_t ld_x,
    const uint16_t *__restrict__ w, const uint16_t *__restrict__ bias,
    int32_t out, int32_t in)
{
    int32_t  row;

    slora_pdl_enter();

    for (row = blockIdx.x * SLORA_GEMV_WARPS + threadIdx.x / SLORA_CUDA_WARP;
         row < out; row += gridDim.x * SLORA_GEMV_WARPS)
    {
        slora_gemv_row<N, U>(y, ld_y, f32_out, x, ld_x, w, bias, row, in);
    }
}


extern "C" int
slora_gemv_cuda(void *y, int64_t ld_y, int f32_out, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, const uint16_t *bias, int32_t n,
    int32_t out, int32_t in, void *stream)
{
    return slora_gemv_cuda_shape(y, ld_y, f32_out, x, ld_x, w, bias, n, out,
                                 in, SLORA_GEMV_UNROLL(n), 0, stream);
}


extern "C" int
slora_gemv_cuda_shape(void *y, int64_t ld_y, int f32_out, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, const uint16_t *bias, int32_t n,
    int32_t out, int32_t in, int32_t unroll, int32_t max_blocks,
    void *stream)
{
    cudaStream_t  st;
    unsigned      grid;

    if (y == NULL || x == NULL || w == NULL || n < 1
        || n > SLORA_GEMV_MAX_N || out <= 0 || in <= 0
        || in % SLORA_CUDA_VEC != 0 || ld_x < in
        || ld_x % SLORA_CUDA_VEC != 0 || ld_y < out
        || !slora_cuda_aligned(x) || !slora_cuda_aligned(w)
        || (unroll != 4 && unroll != 8 && unroll != 16) || max_blocks < 0)
    {
        return -1;
    }

    st = (cudaStream_t) stream;
    grid = (unsigned) ((out + SLORA_GEMV_WARPS - 1) / SLORA_GEMV_WARPS);

    if (max_blocks > 0 && grid > (unsigned) max_blocks) {
        grid = (unsigned) max_blocks;
    }

#define SLORA_GEMV_LAUNCH(N, U)                                              \
    slora_launch(slora_gemv_kernel<N, U>, grid,                               \
        SLORA_GEMV_WARPS * SLORA_CUDA_WARP, 0, st, y, ld_y, f32_out, x, ld_x, \
        w, bias, out, in)

#define SLORA_GEMV_UNROLLS(N)                                                \
    if (unroll == 4) {                                                       \
        SLORA_GEMV_LAUNCH(N, 4);                                             \
    } else if (unroll == 8) {                                                \
        SLORA_GEMV_LAUNCH(N, 8);                                             \
    } else {                                                                 \
        SLORA_GEMV_LAUNCH(N, 16);                                            \
    }

    switch (n) {
    case 1:
        SLORA_GEMV_UNROLLS(1);
        break;
    case 2:
        SLORA_GEMV_UNROLLS(2);
        break;
    case 3:
        SLORA_GEMV_UNROLLS(3);
        break;
    default:
        SLORA_GEMV_UNROLLS(4);
        break;
    }

#undef SLORA_GEMV_UNROLLS
#undef SLORA_GEMV_LAUNCH

    return slora_cuda_launched();
}
