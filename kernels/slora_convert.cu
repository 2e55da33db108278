/*
 * slora_convert.cu: f32 to bf16 on the GPU, the device twin of
 * slora_convert_cpu.c.
 *
 * The one idea: a grid-stride loop, one element per thread per turn;
 * the copy is memory-bound and runs once per weight upload, so plainness
 * beats vector width here. An adapter's pages go in one launch that
 * scatters them: the grid's x picks the page, whose destination comes
 * by value with the launch, and its y a stretch of it, 16 bytes a lane;
 * pages the host tier already holds in bf16 scatter the same way,
 * copied.
 */

#include <stdint.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_convert.h"
}


#define SLORA_CONVERT_THREADS  256


typedef struct {
    int64_t     off[SLORA_CONVERT_PAGES];
} slora_convert_pages_t;


static __global__ void __launch_bounds__(SLORA_CONVERT_THREADS)
slora_convert_kernel(uint16_t *__restrict__ dst,
    const float *__restrict__ src, int64_t n)
{
    int64_t  i;

    for (i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x)
    {
        dst[i] = slora_f2bf(src[i]);
    }
}


static __global__ void __launch_bounds__(SLORA_CONVERT_THREADS)
slora_convert_pages_kernel(uint16_t *__restrict__ dst,
    const slora_convert_pages_t pg, const float *__restrict__ src,
    int64_t width)
{
    int64_t       i;
    const float  *s;
    uint16_t     *d;
    float4        a, b;
    uint4         u;
    uint16_t     *h;

    s = src + (int64_t) blockIdx.x * width;
    d = dst + pg.off[blockIdx.x];
    h = (uint16_t *) &u;

    for (i = ((int64_t) blockIdx.y * SLORA_CONVERT_THREADS + threadIdx.x)
             * SLORA_CUDA_VEC;
         i < width;
         i += (int64_t) gridDim.y * SLORA_CONVERT_THREADS * SLORA_CUDA_VEC)
    {
        a = *(const float4 *) (s + i);
        b = *(const float4 *) (s + i + 4);
        h[0] = slora_f2bf(a.x);
        h[1] = slora_f2bf(a.y);
        h[2] = slora_f2bf(a.z);
        h[3] = slora_f2bf(a.w);
        h[4] = slora_f2bf(b.x);
        h[5] = slora_f2bf(b.y);
        h[6] = slora_f2bf(b.z);
        h[7] = slora_f2bf(b.w);
        *(uint4 *) (d + i) = u;
    }
}


/* slora_convert_pages_kernel's twin for bf16 pages: a copy */
static __global__ void __launch_bounds__(SLORA_CONVERT_THREADS)
slora_copy_pages_kernel(uint16_t *__restrict__ dst,
    const slora_convert_pages_t pg, const uint16_t *__restrict__ src,
    int64_t width)
{
    int64_t          i;
    const uint16_t  *s;
    uint16_t        *d;

    s = src + (int64_t) blockIdx.x * width;
    d = dst + pg.off[blockIdx.x];

    for (i = ((int64_t) blockIdx.y * SLORA_CONVERT_THREADS + threadIdx.x)
             * SLORA_CUDA_VEC;
         i < width;
         i += (int64_t) gridDim.y * SLORA_CONVERT_THREADS * SLORA_CUDA_VEC)
    {
        *(uint4 *) (d + i) = *(const uint4 *) (s + i);
    }
}


extern "C" int
slora_convert_bf16_cuda(uint16_t *dst, const float *src, int64_t n,
    void *stream)
{
    int64_t  blocks;

    if (n < 0 || (n > 0 && (dst == NULL || src == NULL))) {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    blocks = (n + SLORA_CONVERT_THREADS - 1) / SLORA_CONVERT_THREADS;
    blocks = blocks < 65536 ? blocks : 65536;

    slora_convert_kernel<<<(unsigned) blocks, SLORA_CONVERT_THREADS, 0,
                           (cudaStream_t) stream>>>(dst, src, n);

    return slora_cuda_launched();
}


/* Checks a page scatter's arguments and fills pg: 0, or -1. */
static int
slora_pages_args(slora_convert_pages_t *pg, const uint16_t *dst,
    const int64_t *dst_off, const void *src, int32_t n, int64_t width)
{
    int32_t  i;

    if (n < 0 || n > SLORA_CONVERT_PAGES || width <= 0
        || width % SLORA_CUDA_VEC != 0
        || (n > 0 && (dst == NULL || src == NULL || dst_off == NULL))
        || !slora_cuda_aligned(dst) || !slora_cuda_aligned(src))
    {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (dst_off[i] < 0 || dst_off[i] % SLORA_CUDA_VEC != 0) {
            return -1;
        }
        pg->off[i] = dst_off[i];
    }

    return 0;
}


/* a page's stretches of 2048 values, at most 64 */
static dim3
slora_pages_grid(int32_t n, int64_t width)
{
    int64_t  per;

    per = (width + SLORA_CONVERT_THREADS * SLORA_CUDA_VEC - 1)
          / (SLORA_CONVERT_THREADS * SLORA_CUDA_VEC);
    per = per < 64 ? per : 64;

    return dim3((unsigned) n, (unsigned) per);
}


extern "C" int
slora_convert_pages_bf16_cuda(uint16_t *dst, const int64_t *dst_off,
    const float *src, int32_t n, int64_t width, void *stream)
{
    slora_convert_pages_t  pg;

    if (slora_pages_args(&pg, dst, dst_off, src, n, width) != 0) {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    slora_convert_pages_kernel<<<slora_pages_grid(n, width),
                                 SLORA_CONVERT_THREADS, 0,
                                 (cudaStream_t) stream>>>(dst, pg, src,
                                                          width);

    return slora_cuda_launched();
}


extern "C" int
slora_copy_pages_bf16_cuda(uint16_t *dst, const int64_t *dst_off,
    const uint16_t *src, int32_t n, int64_t width, void *stream)
{
    slora_convert_pages_t  pg;

    if (slora_pages_args(&pg, dst, dst_off, src, n, width) != 0) {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    slora_copy_pages_kernel<<<slora_pages_grid(n, width),
                              SLORA_CONVERT_THREADS, 0,
                              (cudaStream_t) stream>>>(dst, pg, src, width);

    return slora_cuda_launched();
}
