/*
 * slora_act.cu: SiLU-and-mul on the GPU, the device twin of
 * slora_act_cpu.c.
 *
 * The one idea: a purely elementwise, memory-bound pass; each thread
 * reads 16 bytes of g and of u and writes 16 bytes, and silu is written
 * x / (1 + exp(-x)) with the accurate expf, the form the CPU uses
 * (slora_silu_mul1, which the decode GEMM's fused epilogue shares).
 */

#include <stdint.h>
#include <stddef.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_act.h"
}


#define SLORA_ACT_THREADS  256


static __global__ void __launch_bounds__(SLORA_ACT_THREADS)
slora_silu_mul_kernel(uint16_t *out, int64_t ld_out, const uint16_t *g,
    int64_t ld_g, const uint16_t *u, int64_t ld_u, int64_t dim)
{
    int64_t  i, r;
    int      e;
    float    fg[SLORA_CUDA_VEC], fu[SLORA_CUDA_VEC];

    slora_pdl_enter();

    r = blockIdx.x;
    i = ((int64_t) blockIdx.y * SLORA_ACT_THREADS + threadIdx.x)
        * SLORA_CUDA_VEC;

    if (i >= dim) {
        return;
    }

    slora_ld8(fg, g + r * ld_g + i);
    slora_ld8(fu, u + r * ld_u + i);

#pragma unroll
    for (e = 0; e < SLORA_CUDA_VEC; e++) {
        fg[e] = slora_silu_mul1(fg[e], fu[e]);
    }

    slora_st8(out + r * ld_out + i, fg);
}


extern "C" int
slora_silu_mul_cuda(uint16_t *out, int64_t ld_out, const uint16_t *g,
    int64_t ld_g, const uint16_t *u, int64_t ld_u, int64_t n_rows,
    int64_t dim, void *stream)
{
    int64_t  n_blk;

    if (out == NULL || g == NULL || u == NULL || n_rows < 0 || dim <= 0
        || n_rows > INT32_MAX || dim % SLORA_CUDA_VEC != 0 || ld_out < dim
        || ld_g < dim || ld_u < dim || ld_out % SLORA_CUDA_VEC != 0
        || ld_g % SLORA_CUDA_VEC != 0 || ld_u % SLORA_CUDA_VEC != 0
        || !slora_cuda_aligned(out) || !slora_cuda_aligned(g)
        || !slora_cuda_aligned(u))
    {
        return -1;
    }

    n_blk = (dim / SLORA_CUDA_VEC + SLORA_ACT_THREADS - 1) / SLORA_ACT_THREADS;

    if (n_rows == 0) {
        return 0;
    }

    if (n_blk > 65535) {
        return -1;
    }

    slora_launch(slora_silu_mul_kernel,
        dim3((unsigned) n_rows, (unsigned) n_blk), SLORA_ACT_THREADS, 0,
        (cudaStream_t) stream, out, ld_out, g, ld_g, u, ld_u, dim);

    return slora_cuda_launched();
}
