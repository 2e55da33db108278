/*
 * slora_embed.cu: the token embedding gather on the GPU, the device twin
 * of slora_embed_cpu.c.
 *
 * The one idea: one block per token copies its row in 16-byte chunks; an
 * id outside the table copies nothing (the row is zeroed and a flag the
 * caller reads is raised), so a bad id can never read past the weights.
 */

#include <stdint.h>
#include <stddef.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_embed.h"
}


#define SLORA_EMBED_THREADS  128


static __global__ void __launch_bounds__(SLORA_EMBED_THREADS)
slora_embed_kernel(uint16_t *__restrict__ out, int64_t ld_out,
    const uint16_t *__restrict__ table, int64_t vocab, int64_t dim,
    const int32_t *__restrict__ ids, int32_t *bad)
{
    int64_t    i;
    int32_t    id;
    uint16_t  *o;
    uint4      z;

    slora_pdl_enter();

    id = ids[blockIdx.x];
    o = out + (int64_t) blockIdx.x * ld_out;

    if (id < 0 || id >= vocab) {
        z = make_uint4(0, 0, 0, 0);

        for (i = threadIdx.x * SLORA_CUDA_VEC; i < dim;
             i += SLORA_EMBED_THREADS * SLORA_CUDA_VEC)
        {
            *(uint4 *) (o + i) = z;
        }

        if (bad != NULL && threadIdx.x == 0) {
            *bad = 1;
        }

        return;
    }

    for (i = threadIdx.x * SLORA_CUDA_VEC; i < dim;
         i += SLORA_EMBED_THREADS * SLORA_CUDA_VEC)
    {
        *(uint4 *) (o + i) = *(const uint4 *) (table + (int64_t) id * dim + i);
    }
}


extern "C" int
slora_embed_cuda(uint16_t *out, int64_t ld_out, const uint16_t *table,
    int64_t vocab, int64_t dim, const int32_t *ids, int64_t n, int32_t *bad,
    void *stream)
{
    if (out == NULL || table == NULL || ids == NULL || n < 0 || dim <= 0
        || vocab <= 0 || n > INT32_MAX || dim % SLORA_CUDA_VEC != 0
        || ld_out < dim || ld_out % SLORA_CUDA_VEC != 0
        || !slora_cuda_aligned(out) || !slora_cuda_aligned(table))
    {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    slora_launch(slora_embed_kernel, (unsigned) n, SLORA_EMBED_THREADS, 0,
        (cudaStream_t) stream, out, ld_out, table, vocab, dim, ids, bad);

    return slora_cuda_launched();
}
