/*
 * slora_rope.cu: RoPE on the GPU, the device twin of slora_rope_cpu.c.
 *
 * The one idea: the blocks of a token (one, or a few where a decode
 * step has few tokens: SLORA_ROPE_BLOCKS over the step) share its pairs
 * of every q and k head, a thread its own 16 bytes at a time where the
 * head size allows, so a decode step's few tokens still spread over the
 * GPU rather than a block walking the heads one after another. The angles
 * come from slora_rope_table()'s rows, made on the host: no thread
 * waits on double-precision trigonometry. slora_rope_store_cuda also
 * writes the turned k rows and the v rows into their KV page slots from
 * the same blocks (what slora_kv_store_cuda does), so that a layer's
 * RoPE and store are one launch, not two.
 */

#include <stdint.h>
#include <stddef.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_rope.h"
}


#define SLORA_ROPE_THREADS  256
#define SLORA_ROPE_BLOCKS   128     /* a step's blocks where its tokens
                                       are fewer: a token's work split */
#define SLORA_ROPE_SPLIT    8       /* ... over at most this many */


/* the page slots slora_rope_store_cuda writes k and v to; kv NULL: none */
typedef struct {
    uint16_t         *kv;
    int64_t           page_elems;
    int32_t           tpp;
    slora_fastdiv_t   tpp_div;
    int32_t           kv_dim;
    int32_t           n_seqs;
    const uint16_t   *v;
    int64_t           ld_v;
    const int32_t    *qo_indptr;
    const int32_t    *seq_pos;
    const int32_t    *kv_indptr;
    const int32_t    *kv_indices;
    const float      *d;            /* LoRA's fp32 deltas of q|k|v rows,
                                       added first; NULL: none */
    int64_t           ld_d;
} slora_rope_store_t;


static int slora_rope_split(int64_t n_tok);
static __device__ __forceinline__ void slora_rope_turn(uint16_t *x,
    int32_t a, int32_t b, float c, float s);
static __device__ __forceinline__ void slora_rope_ld4(float *d,
    const float *p);


/*
 * Where token t's k and v rows go (slora_kv_store's page slots): its
 * sequence is the last s with qo_indptr[s] <= t, its position seq_pos[s]
 * + t - qo_indptr[s].
 */

static __device__ __forceinline__ void
slora_rope_slot(const slora_rope_store_t *st, int32_t t, uint16_t **kp,
    uint16_t **vp)
{
    int32_t   lo, hi, mid, p, slot;
    uint16_t *page;

    lo = 0;
    hi = st->n_seqs - 1;

    while (lo < hi) {
        mid = (lo + hi + 1) / 2;

        if (st->qo_indptr[mid] <= t) {
            lo = mid;

        } else {
            hi = mid - 1;
        }
    }

    p = st->seq_pos[lo] + t - st->qo_indptr[lo];
    slot = (int32_t) slora_fastdiv((uint32_t) p, st->tpp_div);
    page = st->kv + (int64_t) st->kv_indices[st->kv_indptr[lo] + slot]
                    * st->page_elems;
    p -= slot * st->tpp;
    *kp = page + (int64_t) p * st->kv_dim;
    *vp = page + (int64_t) (st->tpp + p) * st->kv_dim;
}


/*
 * vec: head_dim is a multiple of 16 and rows 16-byte aligned, so a
 * thread takes 8 elements at a time: for NEOX 8 pairs (i .. i+7 with
 * their partners half away), for NORM 4 adjacent pairs.
 */

static __global__ void __launch_bounds__(SLORA_ROPE_THREADS)
slora_rope_kernel(uint16_t *q, int64_t ld_q, uint16_t *k, int64_t ld_k,
    const int32_t *__restrict__ pos, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, const float *__restrict__ table, int layout, int vec,
    slora_rope_store_t st)
{
    int32_t       i, h, e, half, per, n_items, a, b, e0, step;
    int64_t       t;
    uint16_t     *x, *kp, *vp;
    const float  *cs, *sn, *dq, *dh;
    float         fa[SLORA_CUDA_VEC], fb[SLORA_CUDA_VEC], c[SLORA_CUDA_VEC],
                  sv[SLORA_CUDA_VEC], x0, x1;

    slora_pdl_enter();

    /* the token's blocks take its items in turn */
    t = blockIdx.x;
    e0 = (int32_t) (blockIdx.y * SLORA_ROPE_THREADS + threadIdx.x);
    step = (int32_t) (gridDim.y * SLORA_ROPE_THREADS);
    half = head_dim / 2;
    cs = table + (int64_t) pos[t] * head_dim;
    sn = cs + half;
    kp = NULL;
    vp = NULL;

    if (st.kv != NULL) {
        slora_rope_slot(&st, (int32_t) t, &kp, &vp);
    }

    /* items a head: vectors of 8 (vec) or single pairs */
    per = !vec ? half
               : layout == SLORA_ROPE_LAYOUT_NEOX ? half / SLORA_CUDA_VEC
                                                  : head_dim / SLORA_CUDA_VEC;
    n_items = (n_heads + n_kv_heads) * per;

    /* the v rows' vectors go straight to the page (their LoRA delta
     * added, where there is one) */
    dq = st.d != NULL ? st.d + t * st.ld_d : NULL;

    if (kp != NULL) {
        for (e = e0; e < n_kv_heads * head_dim / SLORA_CUDA_VEC; e += step)
        {
            if (dq != NULL) {
                slora_ld8(fa, st.v + t * st.ld_v + e * SLORA_CUDA_VEC);
                slora_add_delta8(fa, dq + (int64_t) (n_heads + n_kv_heads)
                                         * head_dim + e * SLORA_CUDA_VEC);
                slora_st8(vp + e * SLORA_CUDA_VEC, fa);
                continue;
            }

            *(uint4 *) (vp + e * SLORA_CUDA_VEC) =
                *(const uint4 *) (st.v + t * st.ld_v + e * SLORA_CUDA_VEC);
        }
    }

    for (e = e0; e < n_items; e += step) {
        h = e / per;
        i = e % per;
        x = h < n_heads ? q + t * ld_q + (int64_t) h * head_dim
                        : k + t * ld_k + (int64_t) (h - n_heads) * head_dim;
        dh = dq != NULL ? dq + (int64_t) h * head_dim : NULL;

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

            if (dh != NULL) {
                slora_add_delta8(fa, dh + a);
                slora_add_delta8(fb, dh + a + half);
            }
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

            if (kp != NULL && h >= n_heads) {
                slora_st8(kp + (int64_t) (h - n_heads) * head_dim + a, fa);
                slora_st8(kp + (int64_t) (h - n_heads) * head_dim + a + half,
                          fb);
            }

        } else {
            a = i * SLORA_CUDA_VEC;
            slora_ld8(fa, x + a);

            if (dh != NULL) {
                slora_add_delta8(fa, dh + a);
            }

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

            if (kp != NULL && h >= n_heads) {
                slora_st8(kp + (int64_t) (h - n_heads) * head_dim + a, fa);
            }
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


/* The blocks a token's work is split over: SLORA_ROPE_BLOCKS over the
 * step, at most SLORA_ROPE_SPLIT, one a token from 64 tokens on;
 * $SLORA_CUDA_ROPE_SPLIT=0, one a token (for an A/B). Split, 1 and 16
 * tokens took 0.05 ms less a step; 64 tokens in 4 blocks each 0.04 less
 * without LoRA but 0.125 more with its deltas (bench/RESULTS.md,
 * 2026-12-06 02:11-02:23). Each element is turned as alone: the same bits
 * however many. */
static int
slora_rope_split(int64_t n_tok)
{
    int64_t           split;

    static const int  on = slora_env_on("SLORA_CUDA_ROPE_SPLIT");

    if (!on || n_tok >= SLORA_ROPE_BLOCKS / 2) {
        return 1;
    }

    split = (SLORA_ROPE_BLOCKS + n_tok - 1) / n_tok;

    return (int) (split < SLORA_ROPE_SPLIT ? split : SLORA_ROPE_SPLIT);
}


/* Checks and launches; st.kv NULL turns q and k only. Returns -2 where
 * storing is asked but the rows do not allow 16-byte steps. */

static int
slora_rope_launch(uint16_t *q, int64_t ld_q, uint16_t *k, int64_t ld_k,
    const int32_t *pos, int64_t n_tok, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, const float *table, int layout,
    const slora_rope_store_t *st, void *stream)
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

    vec = head_dim % (2 * SLORA_CUDA_VEC) == 0 && ld_q % SLORA_CUDA_VEC == 0
          && slora_cuda_aligned(q)
          && (n_kv_heads == 0
              || (ld_k % SLORA_CUDA_VEC == 0 && slora_cuda_aligned(k)));

    if (st->kv != NULL
        && (!vec || n_kv_heads == 0 || st->ld_v % SLORA_CUDA_VEC != 0
            || !slora_cuda_aligned(st->v) || !slora_cuda_aligned(st->kv)
            || st->page_elems % SLORA_CUDA_VEC != 0))
    {
        return -2;
    }

    if (n_tok == 0) {
        return 0;
    }

    slora_launch(slora_rope_kernel, dim3((unsigned) n_tok,
        (unsigned) slora_rope_split(n_tok)), SLORA_ROPE_THREADS, 0,
        (cudaStream_t) stream, q, ld_q, n_kv_heads > 0 ? k : NULL, ld_k, pos,
        n_heads, n_kv_heads, head_dim, table, layout, vec, *st);

    return slora_cuda_launched();
}


extern "C" int
slora_rope_cuda(uint16_t *q, int64_t ld_q, uint16_t *k, int64_t ld_k,
    const int32_t *pos, int64_t n_tok, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, const float *table, int layout, void *stream)
{
    slora_rope_store_t  st;

    memset(&st, 0, sizeof(st));

    return slora_rope_launch(q, ld_q, k, ld_k, pos, n_tok, n_heads,
                             n_kv_heads, head_dim, table, layout, &st, stream);
}


extern "C" int
slora_rope_store_cuda(uint16_t *q, int64_t ld_q, uint16_t *k, int64_t ld_k,
    const uint16_t *v, int64_t ld_v, const int32_t *pos, int64_t n_tok,
    int32_t n_heads, int32_t n_kv_heads, int32_t head_dim, const float *table,
    int layout, uint16_t *kv, int64_t page_elems, int32_t tokens_per_page,
    const slora_seq_index_t *ix, const float *d, int64_t ld_d, void *stream)
{
    slora_rope_store_t  st;

    if (kv == NULL || v == NULL || ix == NULL || tokens_per_page <= 0
        || ix->n_seqs <= 0 || ix->qo_indptr == NULL || ix->seq_pos == NULL
        || ix->kv_indptr == NULL || ix->kv_indices == NULL
        || page_elems < 2 * (int64_t) tokens_per_page * n_kv_heads * head_dim
        || ld_v < (int64_t) n_kv_heads * head_dim
        || (d != NULL
            && (ld_d < (int64_t) (n_heads + 2 * n_kv_heads) * head_dim
                || ld_d % 4 != 0 || !slora_cuda_aligned(d))))
    {
        return -1;
    }

    st.kv = kv;
    st.page_elems = page_elems;
    st.tpp = tokens_per_page;
    st.tpp_div = slora_fastdiv_make((uint32_t) tokens_per_page);
    st.kv_dim = n_kv_heads * head_dim;
    st.n_seqs = ix->n_seqs;
    st.v = v;
    st.ld_v = ld_v;
    st.qo_indptr = ix->qo_indptr;
    st.seq_pos = ix->seq_pos;
    st.kv_indptr = ix->kv_indptr;
    st.kv_indices = ix->kv_indices;
    st.d = d;
    st.ld_d = ld_d;

    return slora_rope_launch(q, ld_q, k, ld_k, pos, n_tok, n_heads,
                             n_kv_heads, head_dim, table, layout, &st, stream);
}
