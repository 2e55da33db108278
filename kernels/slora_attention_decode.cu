/*
 * slora_attention_decode.cu: paged grouped-query attention for decode
 * rows on the GPU (the sequences with one query row in a step), split over
 * the context as flash-decoding does; the device twin, for such rows, of
 * slora_attention_cpu.c. Prefill chunks go to slora_attention.cu.
 *
 * The one idea: a decode step reads each sequence's K and V once and
 * does little arithmetic on them, so the kernel is built for memory-level
 * parallelism. A block owns (sequence, kv head, split of the context) and
 * keeps the group's query vectors in registers; each warp takes whole
 * positions, a position's head_dim / 8 lanes read its K and V row in
 * 16-byte loads, reduce the dot products by shuffles and keep an online
 * softmax of their own eight columns. A warp issues the loads of its
 * next U (SLORA_DEC_UNROLL) positions before it uses the first, so each
 * lane has U K and V rows in flight rather than one: without that, a
 * warp waits out a memory latency for every position it reads, and the
 * SMs hold too few warps to cover it. Warps and then splits are merged
 * by their (max, sum) pairs; a split count is chosen so that even one
 * sequence fills the GPU. Blocks are launched a sequence's kv heads
 * first, so those running together read whole rows of the same pages.
 */

#include <stdint.h>
#include <stddef.h>
#include <math.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_attention.h"
}


#define SLORA_DEC_THREADS    128
#define SLORA_DEC_WARPS      (SLORA_DEC_THREADS / SLORA_CUDA_WARP)
#define SLORA_DEC_MIN_CHUNK  64      /* positions a split takes at least */
#define SLORA_DEC_BLOCKS     264     /* two per SM of an H100/H200 */

/* a warp's positions in flight, by group size: the group's queries and
 * sums take 16 registers a query head, the rows in flight 8 a position */
#define SLORA_DEC_UNROLL(G)  ((G) <= 2 ? 4 : (G) <= 4 ? 2 : 1)


typedef struct {
    int64_t          page_elems;
    int32_t          tpp;
    int32_t          n_kv_heads;
    int32_t          n_heads;
    int32_t          chunk;          /* positions of one split */
    int32_t          n_splits;
} slora_dec_geom_t;


/* Merges (m2, l2, a2) into (m, l, a): two online softmax states. */
static __device__ __forceinline__ void
slora_dec_merge(float *m, float *l, float *a, float m2, float l2,
    const float *a2)
{
    float  mm, c1, c2;
    int    i;

    if (m2 == -INFINITY) {
        return;
    }

    mm = fmaxf(*m, m2);
    c1 = *m == -INFINITY ? 0.0f : __expf(*m - mm);
    c2 = __expf(m2 - mm);

    *l = *l * c1 + l2 * c2;

#pragma unroll
    for (i = 0; i < SLORA_CUDA_VEC; i++) {
        a[i] = a[i] * c1 + a2[i] * c2;
    }

    *m = mm;
}


/*
 * part: NULL with one split (the block writes the output), else
 * [n_seqs, n_heads, n_splits, HD + 2] floats: the split's unnormalized
 * sums, then its max and its sum of exponentials.
 */

template <int HD, int G>
static __global__ void __launch_bounds__(SLORA_DEC_THREADS)
slora_dec_kernel(uint16_t *__restrict__ out, int64_t ld_out,
    const uint16_t *__restrict__ q, int64_t ld_q,
    const uint16_t *__restrict__ kv, slora_dec_geom_t g,
    const int32_t *__restrict__ qo_indptr,
    const int32_t *__restrict__ seq_pos,
    const int32_t *__restrict__ kv_indptr,
    const int32_t *__restrict__ kv_indices, float *__restrict__ part)
{
    constexpr int  LPP = HD / SLORA_CUDA_VEC;        /* lanes a position */
    constexpr int  PPW = SLORA_CUDA_WARP / LPP;      /* positions a warp */
    constexpr int  U = SLORA_DEC_UNROLL(G);          /* loads in flight */
    constexpr int  STRIDE = SLORA_DEC_WARPS * PPW;   /* a block's sweep */

    __shared__ float  sm[SLORA_DEC_WARPS][G][HD + 2];

    int32_t          s, kvh, split, row, ctx, t0, t1, tb, t, warp, lane, sub,
                     sl, j, i, o, kv_dim, head, d, w, u;
    const int32_t   *pages;
    const uint16_t  *src;
    uint4            kr[U], vr[U];
    float           *pp;
    float            qf[G][SLORA_CUDA_VEC], acc[G][SLORA_CUDA_VEC], m[G],
                     l[G], kf[SLORA_CUDA_VEC], vf[SLORA_CUDA_VEC], sc, mn, c,
                     p, mo, lo, ao[SLORA_CUDA_VEC], qscale, mm, ll, aa, e;

    slora_pdl_enter();

    s = blockIdx.y;

    if (qo_indptr[s + 1] - qo_indptr[s] != 1) {
        return;                         /* a prefill chunk: not ours */
    }

    kvh = blockIdx.x;
    split = blockIdx.z;
    warp = threadIdx.x / SLORA_CUDA_WARP;
    lane = threadIdx.x % SLORA_CUDA_WARP;
    sub = lane / LPP;
    sl = lane % LPP;
    kv_dim = g.n_kv_heads * HD;
    row = qo_indptr[s];
    ctx = seq_pos[s] + 1;
    t0 = split * g.chunk;
    t1 = min(ctx, t0 + g.chunk);
    pages = kv_indices + kv_indptr[s];
    qscale = rsqrtf((float) HD);

#pragma unroll
    for (j = 0; j < G; j++) {
        slora_ld8(qf[j], q + (int64_t) row * ld_q
                         + (int64_t) (kvh * G + j) * HD + sl * SLORA_CUDA_VEC);

#pragma unroll
        for (i = 0; i < SLORA_CUDA_VEC; i++) {
            qf[j][i] *= qscale;
            acc[j][i] = 0.0f;
        }

        m[j] = -INFINITY;
        l[j] = 0.0f;
    }

    /* the whole warp steps together so its shuffles see every lane; a
     * lane's positions are taken in the same order as one at a time */
    for (tb = t0 + warp * PPW; tb < t1; tb += STRIDE * U) {

#pragma unroll
        for (u = 0; u < U; u++) {
            t = tb + u * STRIDE + sub;

            if (t < t1) {
                src = kv + (int64_t) pages[t / g.tpp] * g.page_elems
                      + (int64_t) (t % g.tpp) * kv_dim + (int64_t) kvh * HD
                      + sl * SLORA_CUDA_VEC;
                kr[u] = *(const uint4 *) src;
                vr[u] = *(const uint4 *) (src + (int64_t) g.tpp * kv_dim);

            } else {
                kr[u] = make_uint4(0, 0, 0, 0);
                vr[u] = make_uint4(0, 0, 0, 0);
            }
        }

#pragma unroll
        for (u = 0; u < U; u++) {
            t = tb + u * STRIDE + sub;
            slora_unpack8(kf, kr[u]);
            slora_unpack8(vf, vr[u]);

#pragma unroll
            for (j = 0; j < G; j++) {
                sc = 0.0f;

#pragma unroll
                for (i = 0; i < SLORA_CUDA_VEC; i++) {
                    sc = fmaf(qf[j][i], kf[i], sc);
                }

#pragma unroll
                for (o = LPP / 2; o > 0; o >>= 1) {
                    sc += __shfl_xor_sync(0xffffffffu, sc, o);
                }

                if (t < t1) {
                    mn = fmaxf(m[j], sc);
                    c = m[j] == -INFINITY ? 0.0f : __expf(m[j] - mn);
                    p = __expf(sc - mn);
                    l[j] = l[j] * c + p;

#pragma unroll
                    for (i = 0; i < SLORA_CUDA_VEC; i++) {
                        acc[j][i] = fmaf(p, vf[i], acc[j][i] * c);
                    }

                    m[j] = mn;
                }
            }
        }
    }

    /* the positions of a warp, then the warps */

#pragma unroll
    for (j = 0; j < G; j++) {
#pragma unroll
        for (o = LPP; o < SLORA_CUDA_WARP; o <<= 1) {
            mo = __shfl_xor_sync(0xffffffffu, m[j], o);
            lo = __shfl_xor_sync(0xffffffffu, l[j], o);

#pragma unroll
            for (i = 0; i < SLORA_CUDA_VEC; i++) {
                ao[i] = __shfl_xor_sync(0xffffffffu, acc[j][i], o);
            }

            slora_dec_merge(&m[j], &l[j], acc[j], mo, lo, ao);
        }

        if (sub == 0) {
#pragma unroll
            for (i = 0; i < SLORA_CUDA_VEC; i++) {
                sm[warp][j][sl * SLORA_CUDA_VEC + i] = acc[j][i];
            }

            if (sl == 0) {
                sm[warp][j][HD] = m[j];
                sm[warp][j][HD + 1] = l[j];
            }
        }
    }

    __syncthreads();

    for (i = threadIdx.x; i < G * HD; i += SLORA_DEC_THREADS) {
        j = i / HD;
        d = i % HD;
        head = kvh * G + j;

        mm = -INFINITY;
        for (w = 0; w < SLORA_DEC_WARPS; w++) {
            mm = fmaxf(mm, sm[w][j][HD]);
        }

        ll = 0.0f;
        aa = 0.0f;

        if (mm != -INFINITY) {
            for (w = 0; w < SLORA_DEC_WARPS; w++) {
                if (sm[w][j][HD] != -INFINITY) {
                    e = __expf(sm[w][j][HD] - mm);
                    ll += sm[w][j][HD + 1] * e;
                    aa += sm[w][j][d] * e;
                }
            }
        }

        if (part == NULL) {
            out[(int64_t) row * ld_out + (int64_t) head * HD + d] =
                slora_f2bf(ll > 0.0f ? aa / ll : 0.0f);
            continue;
        }

        pp = part + (((int64_t) s * g.n_heads + head) * g.n_splits + split)
                    * (HD + 2);
        pp[d] = aa;

        if (d == 0) {
            pp[HD] = mm;
            pp[HD + 1] = ll;
        }
    }
}


/* out = the splits' states merged: one block per (sequence, head). */
static __global__ void
slora_dec_combine(uint16_t *__restrict__ out, int64_t ld_out,
    const float *__restrict__ part, int32_t n_heads, int32_t n_splits,
    int32_t hd, const int32_t *__restrict__ qo_indptr)
{
    const float  *pp;
    int32_t       s, head, d, k;
    float         mm, ll, aa, e;

    slora_pdl_enter();

    s = blockIdx.x;
    head = blockIdx.y;

    if (qo_indptr[s + 1] - qo_indptr[s] != 1) {
        return;
    }

    pp = part + ((int64_t) s * n_heads + head) * n_splits * (hd + 2);

    mm = -INFINITY;
    for (k = 0; k < n_splits; k++) {
        mm = fmaxf(mm, pp[k * (hd + 2) + hd]);
    }

    for (d = threadIdx.x; d < hd; d += blockDim.x) {
        ll = 0.0f;
        aa = 0.0f;

        for (k = 0; k < n_splits && mm != -INFINITY; k++) {
            if (pp[k * (hd + 2) + hd] != -INFINITY) {
                e = __expf(pp[k * (hd + 2) + hd] - mm);
                ll += pp[k * (hd + 2) + hd + 1] * e;
                aa += pp[k * (hd + 2) + d] * e;
            }
        }

        out[(int64_t) qo_indptr[s] * ld_out + (int64_t) head * hd + d] =
            slora_f2bf(ll > 0.0f ? aa / ll : 0.0f);
    }
}


/* Splits of the context: enough blocks to fill the GPU, none shorter
 * than SLORA_DEC_MIN_CHUNK positions. */
static void
slora_dec_splits(int32_t n_seqs, int32_t n_kv_heads, int32_t max_ctx,
    int32_t *chunk, int32_t *n_splits)
{
    int64_t  want;
    int32_t  c;

    want = (SLORA_DEC_BLOCKS + (int64_t) n_seqs * n_kv_heads - 1)
           / ((int64_t) n_seqs * n_kv_heads);
    want = want < 1 ? 1 : want;

    c = (int32_t) ((max_ctx + want - 1) / want);
    c = c < SLORA_DEC_MIN_CHUNK ? SLORA_DEC_MIN_CHUNK : c;
    c = (c + SLORA_DEC_MIN_CHUNK - 1) / SLORA_DEC_MIN_CHUNK
        * SLORA_DEC_MIN_CHUNK;

    *chunk = c;
    *n_splits = (max_ctx + c - 1) / c;
}


extern "C" void
slora_attention_decode_shape(int32_t n_seqs, int32_t n_kv_heads,
    int32_t max_ctx, int32_t *chunk, int32_t *n_splits)
{
    *chunk = 0;
    *n_splits = 0;

    if (n_seqs > 0 && n_kv_heads > 0 && max_ctx > 0) {
        slora_dec_splits(n_seqs, n_kv_heads, max_ctx, chunk, n_splits);
    }
}


extern "C" size_t
slora_attention_decode_work_size(int32_t n_seqs, int32_t n_heads,
    int32_t n_kv_heads, int32_t head_dim, int32_t max_ctx)
{
    int32_t  chunk, n_splits;

    if (n_seqs <= 0 || n_kv_heads <= 0 || max_ctx <= 0) {
        return 0;
    }

    slora_dec_splits(n_seqs, n_kv_heads, max_ctx, &chunk, &n_splits);

    return n_splits == 1 ? 0 : (size_t) n_seqs * n_heads * n_splits
                                * (head_dim + 2) * sizeof(float);
}


#define slora_dec_launch(hd, gr)                                              \
    slora_launch(slora_dec_kernel<hd, gr>, grid, SLORA_DEC_THREADS, 0, st,    \
        out, ld_out, q, ld_q, kv, g,                                          \
        ix->qo_indptr, ix->seq_pos, ix->kv_indptr, ix->kv_indices, part)

#define slora_dec_case(gr)                                                    \
    case gr:                                                                  \
        if (head_dim == 64) {                                                 \
            slora_dec_launch(64, gr);                                         \
        } else if (head_dim == 128) {                                         \
            slora_dec_launch(128, gr);                                        \
        } else {                                                              \
            slora_dec_launch(256, gr);                                        \
        }                                                                     \
        break


extern "C" int
slora_attention_decode_cuda(uint16_t *out, int64_t ld_out, const uint16_t *q,
    int64_t ld_q, int32_t n_heads, const uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, int32_t n_kv_heads, int32_t head_dim,
    const slora_seq_index_t *ix, int32_t max_ctx, void *work,
    size_t work_size, void *stream)
{
    slora_dec_geom_t   g;
    cudaStream_t       st;
    float             *part;
    dim3               grid;

    if (n_kv_heads <= 0 || n_heads <= 0 || n_heads % n_kv_heads != 0) {
        return -1;
    }

    switch (n_heads / n_kv_heads) {
    case 1: case 2: case 3: case 4: case 8:
        break;
    default:
        return -2;
    }

    if (head_dim != 64 && head_dim != 128 && head_dim != 256) {
        return -2;
    }

    if (out == NULL || q == NULL || kv == NULL || ix == NULL
        || tokens_per_page <= 0 || max_ctx <= 0
        || page_elems < 2 * (int64_t) tokens_per_page * n_kv_heads * head_dim
        || page_elems % SLORA_CUDA_VEC != 0
        || ld_q < (int64_t) n_heads * head_dim || ld_q % SLORA_CUDA_VEC != 0
        || ld_out < (int64_t) n_heads * head_dim || !slora_cuda_aligned(kv)
        || !slora_cuda_aligned(q) || ix->n_seqs < 0 || ix->n_seqs > 65535
        || (ix->n_seqs > 0
            && (ix->qo_indptr == NULL || ix->seq_pos == NULL
                || ix->kv_indptr == NULL || ix->kv_indices == NULL)))
    {
        return -1;
    }

    if (ix->n_seqs == 0) {
        return 0;
    }

    g.page_elems = page_elems;
    g.tpp = tokens_per_page;
    g.n_kv_heads = n_kv_heads;
    g.n_heads = n_heads;
    slora_dec_splits(ix->n_seqs, n_kv_heads, max_ctx, &g.chunk, &g.n_splits);

    part = NULL;

    if (g.n_splits > 1) {
        if (work == NULL
            || work_size < slora_attention_decode_work_size(ix->n_seqs,
                               n_heads, n_kv_heads, head_dim, max_ctx)
            || g.n_splits > 65535)
        {
            return -1;
        }

        part = (float *) work;
    }

    st = (cudaStream_t) stream;
    /* a sequence's kv heads side by side in launch order: the blocks
     * that run together then read whole K and V rows of the same pages
     * (each head's slice of a row is 256 bytes at head_dim 128), not
     * one slice of many sequences' rows: 1-2% faster at the 7B shape
     * (bench/RESULTS.md, 2026-12-01 03:23-03:33) */
    grid = dim3(n_kv_heads, ix->n_seqs, g.n_splits);

    switch (n_heads / n_kv_heads) {
    slora_dec_case(1);
    slora_dec_case(2);
    slora_dec_case(3);
    slora_dec_case(4);
    slora_dec_case(8);
    }

    if (slora_cuda_launched() != 0) {
        return -1;
    }

    if (part != NULL) {
        slora_launch(slora_dec_combine, dim3(ix->n_seqs, n_heads),
            head_dim < 128 ? 64 : 128, 0, st, out, ld_out, part, n_heads,
            g.n_splits, head_dim, ix->qo_indptr);

        return slora_cuda_launched();
    }

    return 0;
}
