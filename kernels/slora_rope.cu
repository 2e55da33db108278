/*
 * slora_rope.cu: RoPE on the GPU, the device twin of slora_rope_cpu.c.
 *
 * The one idea: one block per token and one thread per rotation pair;
 * the thread computes its angle once, in double as the CPU does, and
 * turns that pair in every q and k head of the token.
 */

#include <stdint.h>
#include <stddef.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_rope.h"
}


#define SLORA_ROPE_THREADS  128


static __device__ __forceinline__ void slora_rope_turn(uint16_t *x,
    int32_t a, int32_t b, float c, float s);


static __global__ void __launch_bounds__(SLORA_ROPE_THREADS)
slora_rope_kernel(uint16_t *q, int64_t ld_q, uint16_t *k, int64_t ld_k,
    const int32_t *__restrict__ pos, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, float theta, int layout)
{
    int32_t    i, h, a, b, half;
    int64_t    t;
    double     ang;
    float      c, s;
    uint16_t  *qt, *kt;

    t = blockIdx.x;
    half = head_dim / 2;
    qt = q + t * ld_q;
    kt = k != NULL ? k + t * ld_k : NULL;

    for (i = threadIdx.x; i < half; i += SLORA_ROPE_THREADS) {
        ang = (double) pos[t]
              * pow((double) theta, -2.0 * i / (double) head_dim);
        c = (float) cos(ang);
        s = (float) sin(ang);

        if (layout == SLORA_ROPE_LAYOUT_NORM) {
            a = 2 * i;
            b = 2 * i + 1;

        } else {
            a = i;
            b = i + half;
        }

        for (h = 0; h < n_heads; h++) {
            slora_rope_turn(qt + (int64_t) h * head_dim, a, b, c, s);
        }

        for (h = 0; h < n_kv_heads; h++) {
            slora_rope_turn(kt + (int64_t) h * head_dim, a, b, c, s);
        }
    }
}


static __device__ __forceinline__ void
slora_rope_turn(uint16_t *x, int32_t a, int32_t b, float c, float s)
{
    float  x0, x1;

    x0 = slora_bf2f(x[a]);
    x1 = slora_bf2f(x[b]);
    x[a] = slora_f2bf(x0 * c - x1 * s);
    x[b] = slora_f2bf(x0 * s + x1 * c);
}


extern "C" int
slora_rope_cuda(uint16_t *q, int64_t ld_q, uint16_t *k, int64_t ld_k,
    const int32_t *pos, int64_t n_tok, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, float theta, int layout, void *stream)
{
    if (q == NULL || pos == NULL || n_tok < 0 || n_tok > INT32_MAX
        || n_heads <= 0 || n_kv_heads < 0 || head_dim <= 0
        || head_dim % 2 != 0 || theta <= 0.0f
        || ld_q < (int64_t) n_heads * head_dim
        || (n_kv_heads > 0
            && (k == NULL || ld_k < (int64_t) n_kv_heads * head_dim))
        || (layout != SLORA_ROPE_LAYOUT_NORM
            && layout != SLORA_ROPE_LAYOUT_NEOX))
    {
        return -1;
    }

    if (n_tok == 0) {
        return 0;
    }

    slora_rope_kernel<<<(unsigned) n_tok, SLORA_ROPE_THREADS, 0,
                        (cudaStream_t) stream>>>(q, ld_q,
                                                 n_kv_heads > 0 ? k : NULL,
                                                 ld_k, pos, n_heads,
                                                 n_kv_heads, head_dim, theta,
                                                 layout);

    return slora_cuda_launched();
}
