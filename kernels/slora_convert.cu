/*
 * slora_convert.cu: f32 to bf16 on the GPU, the device twin of
 * slora_convert_cpu.c.
 *
 * The one idea: a grid-stride loop, one element per thread per turn;
 * the copy is memory-bound and runs once per weight upload, so plainness
 * beats vector width here.
 */

#include <stdint.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_convert.h"
}


#define SLORA_CONVERT_THREADS  256


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
