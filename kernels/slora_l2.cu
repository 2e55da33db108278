/*
 * slora_l2.cu: an L2 read-ahead of a weight matrix on the GPU, the
 * device twin of slora_l2_cpu.c.
 *
 * The one idea: the copy engine of each SM (the TMA unit) takes a bulk
 * prefetch as one instruction of any 16-byte multiple and needs no
 * registers or shared memory to land it, so a few blocks ask for tens of
 * megabytes and leave while the bytes are still on their way; the SMs
 * stay free for the kernel the gap holds.
 */

#include <stdint.h>
#include <stddef.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_l2.h"
}


#define SLORA_L2_THREADS  256
#define SLORA_L2_BLOCKS   32


static __global__ void __launch_bounds__(SLORA_L2_THREADS)
slora_l2_ahead_kernel(const slora_l2_ahead_t a)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    int64_t      i, n;
    const char  *p;
    uint64_t     policy;

    n = a.rows * a.n_slices;

    if (a.keep) {
        asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;"
                     : "=l"(policy));
    }

    for (i = (int64_t) blockIdx.x * SLORA_L2_THREADS + threadIdx.x; i < n;
         i += (int64_t) gridDim.x * SLORA_L2_THREADS)
    {
        p = (const char *) a.base + i / a.n_slices * a.ld
            + i % a.n_slices * a.slice;

        if (a.keep) {
            asm volatile("cp.async.bulk.prefetch.L2.global.L2::cache_hint"
                         " [%0], %1, %2;"
                         :: "l"(p), "r"(a.bytes), "l"(policy) : "memory");

        } else {
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;"
                         :: "l"(p), "r"(a.bytes) : "memory");
        }
    }
#endif

    /* after the asks: the kernel before it on the stream may still run
     * (a prefetch reads only weights), and the kernel after it waits for
     * this one and so, in turn, for that one */
    slora_pdl_enter();
}


extern "C" int
slora_l2_ahead_cuda(const slora_l2_ahead_t *a, void *stream)
{
    int64_t  n, blocks;

    if (slora_l2_ahead_check(a) != 0) {
        return -1;
    }

    n = a->rows * a->n_slices;
    blocks = (n + SLORA_L2_THREADS - 1) / SLORA_L2_THREADS;
    blocks = blocks < SLORA_L2_BLOCKS ? blocks : SLORA_L2_BLOCKS;

    slora_launch(slora_l2_ahead_kernel, (unsigned) blocks, SLORA_L2_THREADS,
        0, (cudaStream_t) stream, *a);

    return slora_cuda_launched();
}
