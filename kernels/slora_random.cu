/*
 * slora_random.cu: a block of a random model's tensor, made in bf16 on
 * the GPU, the device twin of slora_random_cpu.c: the CUDA backend
 * fills its weights this way when the model's values were never made
 * on the host.
 *
 * The one idea: a grid-stride loop over the block's elements, each
 * hashed from its index in the whole tensor (slora_random_value), so a
 * tensor-parallel rank makes its shard and nothing else.
 */

#include <stdint.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_random.h"
}


#define SLORA_RANDOM_THREADS  256


static __global__ void __launch_bounds__(SLORA_RANDOM_THREADS)
slora_random_kernel(uint16_t *__restrict__ dst, int64_t rows, int64_t cols,
    int64_t ld, int64_t first, uint64_t seed, uint64_t key, float amp)
{
    int64_t  i, n, r, c;

    n = rows * cols;

    for (i = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * blockDim.x)
    {
        r = i / cols;
        c = i - r * cols;
        dst[i] = slora_f2bf(slora_random_value(seed, key,
                                               (uint64_t) (first + r * ld
                                                           + c),
                                               amp));
    }
}


extern "C" int
slora_random_fill_bf16_cuda(uint16_t *dst, int64_t rows, int64_t cols,
    int64_t ld, int64_t first, uint64_t seed, uint64_t key, float amp,
    void *stream)
{
    int64_t  blocks;

    if (rows < 0 || cols < 0 || first < 0 || (rows > 1 && ld < cols)
        || ((rows > 0 && cols > 0) && dst == NULL))
    {
        return -1;
    }

    if (rows == 0 || cols == 0) {
        return 0;
    }

    blocks = (rows * cols + SLORA_RANDOM_THREADS - 1) / SLORA_RANDOM_THREADS;
    blocks = blocks < 65536 ? blocks : 65536;

    slora_random_kernel<<<(unsigned) blocks, SLORA_RANDOM_THREADS, 0,
                          (cudaStream_t) stream>>>(dst, rows, cols, ld, first,
                                                   seed, key, amp);

    return slora_cuda_launched();
}
