/*
 * slora_rope.cu: RoPE on the GPU, the device twin of slora_rope_cpu.c.
 *
 * The one idea: one block per token, whose threads each turn their own
 * pairs of every q and k head, 16 bytes at a time where the head size
 * allows, so a decode step's few tokens still spread over the whole
 * block rather than walking the heads one after another. The angles
 * come from slora_rope_table()'s rows, made on the host: no thread
 * waits on double-precision trigonometry.
 */

#include <stdint.h>
#include <stddef.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_rope.h"
}


#define SLORA_ROPE_THREADS  256


static __device__ __forceinline__ void slora_rope_turn(uint16_t *x,
    int32_t a, int32_t b, float c, float s);
static __device__ __forceinline__ void slora_rope_ld4(float *d,
    const float *p);


/*
 * vec: head_dim is a multiple of 16 and rows 16-byte aligned, so a
 * thread takes 8 elements at a time: for NEOX 8 pairs (i .. i+7 with
 * their partners half away), for NORM 4 adjacent pairs.
 */

static __global__ void __launch_bounds__(SLORA_ROPE_THREADS)
slora_rope_kernel(uint16_t *q, int64_t ld_q, uint16_t *k, int64_t ld_k,
    const int32_t *__restrict__ pos, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, const float *__restrict__ table, int layout, int vec)
{
    int32_t       i, h, e, half, per, n_items, a, b;
    int64_t       t;
    uint16_t     *x;
    const float  *cs, *sn;
    float         fa[SLORA_CUDA_VEC], fb[SLORA_CUDA_VEC], c[SLORA_CUDA_VEC],
                  sv[SLORA_CUDA_VEC], x0, x1;

    slora_pdl_enter();

    t = blockIdx.x;
    half = head_dim / 2;
    cs = table + (int64_t) pos[t] * head_dim;
    sn = cs + half;

    /* items a head: vectors of 8 (vec) or single pairs */
    per = !vec ? half
               : layout == SLORA_ROPE_LAYOUT_NEOX ? half / SLORA_CUDA_VEC
                                                  : head_dim / SLORA_CUDA_VEC;
    n_items = (n_heads + n_kv_heads) * per;

    for (e = threadIdx.x; e < n_items; e += SLORA_ROPE_THREADS) {
        h = e / per;
        i = e % per;
        x = h < n_heads ? q + t * ld_q + (int64_t) h * head_dim
                        : k + t * ld_k + (int64_t) (h - n_heads) * head_dim;

        if (!vec) {
            a = layout == SLORA_ROPE_LAYOUT_NORM ? 2 * i : i;
            b = layout == SLORA_ROPE_LAYOUT_NORM ? 2 * i + 1 : i + half;
            slora_rope_turn(x, a, b, cs[i], sn[i]);
            continue;
        }

        if (layout == SLORA_ROPE_LAYOUT_NEOX) {
            a = i * SLORA_CUDA_VEC;
            slora_ld8(fa, x + a);
            slora_ld8(fb, x + a + half);
            slora_rope_ld4(c, cs + a);
            slora_rope_ld4(c + 4, cs + a + 4);
            slora_rope_ld4(sv, sn + a);
            slora_rope_ld4(sv + 4, sn + a + 4);

#pragma unroll
            for (b = 0; b < SLORA_CUDA_VEC; b++) {
                x0 = fa[b];
                x1 = fb[b];
                fa[b] = x0 * c[b] - x1 * sv[b];
                fb[b] = x0 * sv[b] + x1 * c[b];
            }

            slora_st8(x + a, fa);
            slora_st8(x + a + half, fb);

        } else {
            a = i * SLORA_CUDA_VEC;
            slora_ld8(fa, x + a);
            slora_rope_ld4(c, cs + a / 2);
            slora_rope_ld4(sv, sn + a / 2);

#pragma unroll
            for (b = 0; b < SLORA_CUDA_VEC; b += 2) {
                x0 = fa[b];
                x1 = fa[b + 1];
                fa[b] = x0 * c[b / 2] - x1 * sv[b / 2];
                fa[b + 1] = x0 * sv[b / 2] + x1 * c[b / 2];
            }

            slora_st8(x + a, fa);
        }
    }
}


/* four angles of a table row, 16 bytes at once (vec rows are aligned:
 * head_dim is a multiple of 16) */
static __device__ __forceinline__ void
slora_rope_ld4(float *d, const float *p)
{
    float4  f;

    f = __ldg((const float4 *) p);
    d[0] = f.x;
    d[1] = f.y;
    d[2] = f.z;
    d[3] = f.w;
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
    int32_t head_dim, const float *table, int layout, void *stream)
{
    int  vec;

    if (q == NULL || pos == NULL || table == NULL || n_tok < 0
        || n_tok > INT32_MAX || n_heads <= 0 || n_kv_heads < 0
        || head_dim <= 0 || head_dim % 2 != 0
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

    vec = head_dim % (2 * SLORA_CUDA_VEC) == 0 && ld_q % SLORA_CUDA_VEC == 0
          && slora_cuda_aligned(q)
          && (n_kv_heads == 0
              || (ld_k % SLORA_CUDA_VEC == 0 && slora_cuda_aligned(k)));

    slora_launch(slora_rope_kernel, (unsigned) n_tok, SLORA_ROPE_THREADS, 0,
        (cudaStream_t) stream, q, ld_q, n_kv_heads > 0 ? k : NULL, ld_k, pos,
        n_heads, n_kv_heads, head_dim, table, layout, vec);

    return slora_cuda_launched();
}
