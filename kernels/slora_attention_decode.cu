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
 * by their (max, sum) pairs; a split length is chosen so that even one
 * sequence fills the GPU, and no split is much longer than the batch's
 * share of a block. The blocks take their splits from a work list the
 * host writes into the step's index (slora_attention_decode_items), the
 * splits of contexts longer than one split first: one long context among
 * short ones is read beside them rather than after them, and no block
 * starts for a split past a short context. A sequence read by one block
 * has its output written by it; the others' splits are merged by a
 * second launch. Blocks are launched an item's kv heads first, so
 * those running together read whole rows of the same pages.
 *
 * Groups of 3 to 16 query heads a KV head (Llama 3's, Mistral's,
 * Qwen's; Mistral Large's 12, Llama 3.1 405B's 16 on 8 GPUs) go to a
 * second kernel on tensor cores, slora_dec_mma_kernel:
 * there the CUDA-core kernel's per-position work, G dot products each
 * reduced over 16 lanes, leaves it bound by issue far below the memory's
 * rate. Both split the context alike and share the merge.
 */

#include <stdint.h>
#include <stddef.h>
#include <float.h>
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


/* groups of this many query heads a KV head and more (up to
 * SLORA_DEC_MMA_G) go to the tensor-core kernel at head sizes 64 and 128 */
#define SLORA_DEC_MMA_MIN_G  3
#define SLORA_DEC_MMA_G      16      /* the rows of an mma's A */
#define SLORA_DEC_TILE       16      /* positions a warp's mmas take */


/* What every block of a launch is given: the pages' geometry, the
 * split, the step's index and work list (device), the splits' states. */
typedef struct {
    int64_t          page_elems;
    int32_t          tpp;
    slora_fastdiv_t  tpp_div;        /* t / tpp without a division */
    int32_t          n_kv_heads;
    int32_t          n_heads;
    int32_t          chunk;          /* positions of one split */
    const int32_t   *qo_indptr;
    const int32_t   *seq_pos;
    const int32_t   *kv_indptr;
    const int32_t   *kv_indices;
    const int4      *items;          /* a row of blocks' work: query row,
                                        first page, t0 (-1: the whole
                                        context from 0), t1 */
    const int32_t   *first;          /* a sequence's first item */
    float           *part;           /* NULL: no sequence is split */
} slora_dec_args_t;


/* The block's place: its item (row of the launch), kv head, the query
 * row and the positions [t0, t1) it reads, the sequence's pages, and
 * whether they are the sequence's whole context (the block then writes
 * the output, not a state to merge). */
typedef struct {
    int32_t          item;
    int32_t          kvh;
    int32_t          row;
    int32_t          t0;
    int32_t          t1;
    int32_t          whole;
    const int32_t   *pages;
} slora_dec_block_t;


/* 0 for a row of blocks past the work list's end. The item holds all
 * the block needs to start, so its first read is its page ids. */
static __device__ __forceinline__ int
slora_dec_block(slora_dec_block_t *b, const slora_dec_args_t &g)
{
    int4  it;

    b->item = blockIdx.y;
    it = g.items[b->item];

    if (it.x < 0) {
        return 0;
    }

    b->kvh = blockIdx.x;
    b->row = it.x;
    b->pages = g.kv_indices + it.y;
    b->whole = it.z < 0;
    b->t0 = b->whole ? 0 : it.z;
    b->t1 = it.w;

    return 1;
}


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
 * The block's warps merged, from sm[warp][j] = a warp's unnormalized sums
 * for query head j of the group, then its reference maximum and its sum
 * of exponentials (natural units): the output row where the split is
 * the sequence's whole context, else the split's state in part. Every
 * thread of the block calls it after the warps' states are in sm.
 */

template <int HD, int GS>
static __device__ __forceinline__ void
slora_dec_finish(const float (*sm)[GS][HD + 2], int32_t group,
    uint16_t *__restrict__ out, int64_t ld_out, const slora_dec_args_t &g,
    const slora_dec_block_t *b)
{
    const float  *pm;
    float        *pp;
    float         mm, ll, aa, e;
    int32_t       i, j, d, w, head;

    for (i = threadIdx.x; i < group * HD; i += SLORA_DEC_THREADS) {
        j = i / HD;
        d = i % HD;
        head = b->kvh * group + j;

        mm = -INFINITY;
        for (w = 0; w < SLORA_DEC_WARPS; w++) {
            mm = fmaxf(mm, sm[w][j][HD]);
        }

        ll = 0.0f;
        aa = 0.0f;

        if (mm != -INFINITY) {
            for (w = 0; w < SLORA_DEC_WARPS; w++) {
                pm = sm[w][j];

                if (pm[HD] != -INFINITY) {
                    e = __expf(pm[HD] - mm);
                    ll += pm[HD + 1] * e;
                    aa += pm[d] * e;
                }
            }
        }

        /* ll is 0 only where every score was -inf: NaN, as on the CPU */
        if (b->whole) {
            out[(int64_t) b->row * ld_out + (int64_t) head * HD + d] =
                slora_f2bf(aa / ll);
            continue;
        }

        pp = g.part + ((int64_t) b->item * g.n_heads + head) * (HD + 2);
        pp[d] = aa;

        if (d == 0) {
            pp[HD] = mm;
            pp[HD + 1] = ll;
        }
    }
}


/*
 * g.part: NULL where no sequence is split (every block writes the
 * output), else [items, n_heads, HD + 2] floats, a split sequence's
 * items' states: their unnormalized sums, then the maximum and the sum
 * of exponentials.
 */

template <int HD, int G>
static __global__ void __launch_bounds__(SLORA_DEC_THREADS)
slora_dec_kernel(uint16_t *__restrict__ out, int64_t ld_out,
    const uint16_t *__restrict__ q, int64_t ld_q,
    const uint16_t *__restrict__ kv, slora_dec_args_t g)
{
    constexpr int  LPP = HD / SLORA_CUDA_VEC;        /* lanes a position */
    constexpr int  PPW = SLORA_CUDA_WARP / LPP;      /* positions a warp */
    constexpr int  U = SLORA_DEC_UNROLL(G);          /* loads in flight */
    constexpr int  STRIDE = SLORA_DEC_WARPS * PPW;   /* a block's sweep */

    __shared__ float  sm[SLORA_DEC_WARPS][G][HD + 2];

    int32_t            tb, t, warp, lane, sub, sl, j, i, o, kv_dim, u;
    const uint16_t    *src;
    slora_dec_block_t  b;
    uint4            kr[U], vr[U];
    float            qf[G][SLORA_CUDA_VEC], acc[G][SLORA_CUDA_VEC], m[G],
                     l[G], kf[SLORA_CUDA_VEC], vf[SLORA_CUDA_VEC], sc, mn, c,
                     p, mo, lo, ao[SLORA_CUDA_VEC], qscale;

    slora_pdl_enter();

    if (!slora_dec_block(&b, g)) {
        return;
    }

    warp = threadIdx.x / SLORA_CUDA_WARP;
    lane = threadIdx.x % SLORA_CUDA_WARP;
    sub = lane / LPP;
    sl = lane % LPP;
    kv_dim = g.n_kv_heads * HD;
    qscale = rsqrtf((float) HD);

#pragma unroll
    for (j = 0; j < G; j++) {
        slora_ld8(qf[j], q + (int64_t) b.row * ld_q
                         + (int64_t) (b.kvh * G + j) * HD
                         + sl * SLORA_CUDA_VEC);

#pragma unroll
        for (i = 0; i < SLORA_CUDA_VEC; i++) {
            qf[j][i] *= qscale;
            acc[j][i] = 0.0f;
        }

        /* the lowest finite maximum, not -inf: a first score of -inf
         * then weighs exp(-inf) = 0, as on the CPU, where exp(-inf -
         * -inf) was a NaN that no later score could undo */
        m[j] = -FLT_MAX;
        l[j] = 0.0f;
    }

    /* the whole warp steps together so its shuffles see every lane; a
     * lane's positions are taken in the same order as one at a time */
    for (tb = b.t0 + warp * PPW; tb < b.t1; tb += STRIDE * U) {

#pragma unroll
        for (u = 0; u < U; u++) {
            t = tb + u * STRIDE + sub;

            if (t < b.t1) {
                src = kv + (int64_t) b.pages[t / g.tpp] * g.page_elems
                      + (int64_t) (t % g.tpp) * kv_dim
                      + (int64_t) b.kvh * HD
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

                if (t < b.t1) {
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

    slora_dec_finish<HD, G>(sm, G, out, ld_out, g, &b);
}


/*
 * The tensor-core kernel, for groups of SLORA_DEC_MMA_MIN_G to
 * SLORA_DEC_MMA_G query heads a KV head (Llama 3's, Mistral's and Qwen's
 * models): the CUDA-core kernel reduces every score over 16 lanes and
 * keeps a softmax per lane, G times a position, and so runs out of issue
 * slots long before memory (1.6-1.8 TB/s at G = 4, bench/RESULTS.md).
 * Here a warp takes 16 positions at a time and does both products as
 * mma.sync m16n8k16, bf16 in and fp32 sums:
 *
 *   S = Q K^T      the group's query heads as A's rows 0 .. 7 and, for
 *                  groups past 8, 8 .. 15 (else zeros), the 16
 *                  positions as two n-tiles of K^T;
 *   O^T += V^T P^T the head dimension as A's rows, the positions as k,
 *                  the group's heads as B's 8 columns (two mmas, NB = 2,
 *                  for groups past 8),
 *
 * so S's accumulators are P^T's B fragment as they stand (lane (g, t)
 * holds head g at positions 2t, 2t + 1 and 2t + 8, 2t + 9, which is
 * B's column g at those k). Nothing goes through shared memory before
 * the end: each lane loads its K and V from the pages straight into
 * fragments. K: 16 bytes of a position's row at k = 8t .. 8t + 7 of a
 * 32-wide chunk feed two mmas (slora_mma_x2). V: the lane's four
 * positions' 16-byte pieces at columns 64 j + 8 g .. + 7, paired by
 * byte permutes into A's (row, two positions) words; O^T's tile mt = 4 j
 * + w then holds columns 64 j + 8 g + 2 w (rows g) and + 1 (rows g + 8),
 * which the end writes back in order. A tile's 16 loads a lane are in
 * flight while the tile before is summed. The softmax is the prefill
 * kernel's: exp2 with the scale folded in, a maximum that moves only
 * when passed by 2^8 (a lazy rescale), each lane's part of the sums
 * kept to the end.
 */

/* a lane's K and V fragments of one tile of 16 positions */
template <int HD>
struct slora_dec_frag {
    uint4  k[2][HD / 32];               /* positions 8 nt + gr */
    uint4  v[4][HD / 64];               /* positions 2 tq + {0, 1, 8, 9} */
};


/*
 * Where the lane's loads of the tile at tb go: ko[nt] the K row of
 * position tb + 8 nt + gr, vo[i] the V row's of tb + 2 tq + {0, 1, 8, 9},
 * -1 past t1. pg is the page of lane i's position tb + i % 16, read a
 * sweep ahead; it leaves the page of the position a sweep on, so that
 * the loads never wait on the page table.
 */

template <int HD>
static __device__ __forceinline__ void
slora_dec_mma_offsets(int64_t *ko, int64_t *vo, int32_t &pg,
    const int32_t *__restrict__ pages, const slora_dec_args_t &g,
    int32_t kvh, int32_t tb, int32_t t1, int32_t lane)
{
    constexpr int  SWEEP = SLORA_DEC_WARPS * SLORA_DEC_TILE;

    int32_t  t, gr, tq;
    int64_t  off;

    gr = lane / 4;
    tq = lane % 4;
    t = tb + lane % SLORA_DEC_TILE;
    off = pg < 0 ? -1
                 : (int64_t) pg * g.page_elems
                   + (int64_t) (t - (int32_t) slora_fastdiv((uint32_t) t,
                                                            g.tpp_div)
                                    * g.tpp) * g.n_kv_heads * HD
                   + (int64_t) kvh * HD;
    t += SWEEP;
    pg = t < t1 ? pages[slora_fastdiv((uint32_t) t, g.tpp_div)] : -1;

    ko[0] = __shfl_sync(0xffffffffu, off, gr);
    ko[1] = __shfl_sync(0xffffffffu, off, 8 + gr);
    vo[0] = __shfl_sync(0xffffffffu, off, 2 * tq);
    vo[1] = __shfl_sync(0xffffffffu, off, 2 * tq + 1);
    vo[2] = __shfl_sync(0xffffffffu, off, 2 * tq + 8);
    vo[3] = __shfl_sync(0xffffffffu, off, 2 * tq + 9);
}


/* The lane's K fragments of a tile, zeros past t1 (masked columns then
 * multiply zeros, never stale values). */

template <int HD>
static __device__ __forceinline__ void
slora_dec_mma_load_k(slora_dec_frag<HD> &f, const uint16_t *__restrict__ kv,
    const int64_t *ko, int32_t lane)
{
    int32_t  nt, c;

#pragma unroll
    for (nt = 0; nt < 2; nt++) {
#pragma unroll
        for (c = 0; c < HD / 32; c++) {
            f.k[nt][c] = ko[nt] < 0
                         ? make_uint4(0, 0, 0, 0)
                         : *(const uint4 *) (kv + ko[nt] + c * 32
                                             + (lane % 4) * SLORA_CUDA_VEC);
        }
    }
}


/* The lane's V fragments of a tile (a page's V rows follow its tpp K
 * rows), zeros past t1. */

template <int HD>
static __device__ __forceinline__ void
slora_dec_mma_load_v(slora_dec_frag<HD> &f, const uint16_t *__restrict__ kv,
    const int64_t *vo, const slora_dec_args_t &g, int32_t lane)
{
    int32_t  i, j;

#pragma unroll
    for (i = 0; i < 4; i++) {
#pragma unroll
        for (j = 0; j < HD / 64; j++) {
            f.v[i][j] = vo[i] < 0
                        ? make_uint4(0, 0, 0, 0)
                        : *(const uint4 *) (kv + vo[i]
                                            + (int64_t) g.tpp * g.n_kv_heads
                                              * HD
                                            + j * 64
                                            + (lane / 4) * SLORA_CUDA_VEC);
        }
    }
}


/* S = Q K^T for the tile: heads gr (and gr + 8 where NB is 2) at
 * positions 8 nt + 2 tq + {0, 1} in sc[nt][0..1] (sc[nt][2..3]) */

template <int HD, int NB>
static __device__ __forceinline__ void
slora_dec_mma_scores(const slora_dec_frag<HD> &f, const uint4 (*qa)[HD / 32],
    float (*sc)[4])
{
    int32_t  nt, c;

#pragma unroll
    for (nt = 0; nt < 2; nt++) {
        sc[nt][0] = sc[nt][1] = sc[nt][2] = sc[nt][3] = 0.0f;

#pragma unroll
        for (c = 0; c < HD / 32; c++) {
            slora_mma_x2(sc[nt], qa[0][c],
                         NB == 2 ? qa[NB - 1][c] : make_uint4(0, 0, 0, 0),
                         f.k[nt][c]);
        }
    }
}


/* The tile's softmax and O^T += V^T P^T, for the lane: head block j's
 * row gr in m[j], l[j], its O^T in oc[j]. */

template <int HD, int NB>
static __device__ __forceinline__ void
slora_dec_mma_accum(const slora_dec_frag<HD> &f, float (*sc)[4],
    float (*oc)[HD / 16][4], float *m, float *l, float scale, int32_t tb,
    int32_t t1, int32_t lane)
{
    int32_t          tq, nt, e, mt, j;
    const uint32_t  *w0, *w1, *w2, *w3;
    uint32_t         pb[NB][2], a[4];
    float            mx, corr[NB], c0, c1;
    bool             upd[NB];

    tq = lane % 4;

    if (tb + SLORA_DEC_TILE > t1) {
#pragma unroll
        for (nt = 0; nt < 2; nt++) {
#pragma unroll
            for (e = 0; e < 4; e++) {
                if (tb + 8 * nt + 2 * tq + e % 2 >= t1) {
                    sc[nt][e] = -INFINITY;
                }
            }
        }
    }

    /* the online softmax of each row over its quad's 16 scores */

#pragma unroll
    for (j = 0; j < NB; j++) {
        mx = fmaxf(fmaxf(sc[0][2 * j], sc[0][2 * j + 1]),
                   fmaxf(sc[1][2 * j], sc[1][2 * j + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        mx *= scale;
        upd[j] = mx > m[j] + 8.0f;
        corr[j] = upd[j] ? slora_ex2(m[j] - mx) : 1.0f;
        m[j] = upd[j] ? mx : m[j];
        l[j] *= corr[j];

#pragma unroll
        for (nt = 0; nt < 2; nt++) {
#pragma unroll
            for (e = 2 * j; e < 2 * j + 2; e++) {
                sc[nt][e] = slora_ex2(fmaf(sc[nt][e], scale, -m[j]));
                l[j] += sc[nt][e];
            }
        }

        /* O^T's columns are heads 8 j + 2 tq and + 1, whose quads start
         * at lanes 8 tq and 8 tq + 4 */
        if (__any_sync(0xffffffffu, upd[j])) {
            c0 = __shfl_sync(0xffffffffu, corr[j], 8 * tq);
            c1 = __shfl_sync(0xffffffffu, corr[j], 8 * tq + 4);

#pragma unroll
            for (mt = 0; mt < HD / 16; mt++) {
                oc[j][mt][0] *= c0;
                oc[j][mt][1] *= c1;
                oc[j][mt][2] *= c0;
                oc[j][mt][3] *= c1;
            }
        }

        pb[j][0] = slora_pack_bf2(sc[0][2 * j], sc[0][2 * j + 1]);
        pb[j][1] = slora_pack_bf2(sc[1][2 * j], sc[1][2 * j + 1]);
    }

    /* O^T += V^T P^T */

#pragma unroll
    for (mt = 0; mt < HD / 16; mt++) {
        w0 = (const uint32_t *) &f.v[0][mt / 4];
        w1 = (const uint32_t *) &f.v[1][mt / 4];
        w2 = (const uint32_t *) &f.v[2][mt / 4];
        w3 = (const uint32_t *) &f.v[3][mt / 4];
        a[0] = __byte_perm(w0[mt % 4], w1[mt % 4], 0x5410);
        a[1] = __byte_perm(w0[mt % 4], w1[mt % 4], 0x7632);
        a[2] = __byte_perm(w2[mt % 4], w3[mt % 4], 0x5410);
        a[3] = __byte_perm(w2[mt % 4], w3[mt % 4], 0x7632);

#pragma unroll
        for (j = 0; j < NB; j++) {
            slora_mma(oc[j][mt], a[0], a[1], a[2], a[3], pb[j][0], pb[j][1]);
        }
    }
}


template <int HD, int NB>
static __global__ void __launch_bounds__(SLORA_DEC_THREADS)
slora_dec_mma_kernel(uint16_t *__restrict__ out, int64_t ld_out,
    const uint16_t *__restrict__ q, int64_t ld_q,
    const uint16_t *__restrict__ kv, slora_dec_args_t g)
{
    constexpr int  NK = HD / 32;            /* 32-wide chunks of a K row */
    constexpr int  NO = HD / 16;            /* O^T's 16-row tiles */
    constexpr int  SWEEP = SLORA_DEC_WARPS * SLORA_DEC_TILE;

    __shared__ float  sm[SLORA_DEC_WARPS][8 * NB][HD + 2];

    int32_t             group, tb, t, warp, lane, gr, tq, pg, c, mt, e, d, h,
                        j;
    int64_t             ko[2], vo[4];
    slora_dec_block_t   b;
    uint4               qa[NB][NK];
    float               oc[NB][NO][4], sc[2][4], scale, m[NB], l[NB];
    slora_dec_frag<HD>  f;

    slora_pdl_enter();

    if (!slora_dec_block(&b, g)) {
        return;
    }

    group = g.n_heads / g.n_kv_heads;
    warp = threadIdx.x / SLORA_CUDA_WARP;
    lane = threadIdx.x % SLORA_CUDA_WARP;
    gr = lane / 4;                      /* S's row (head), O^T's rows */
    tq = lane % 4;                      /* S's columns, O^T's heads 2tq.. */

    /* log2(e) folded in: the softmax runs on exp2 */
    scale = rsqrtf((float) HD) * 1.4426950408889634f;

    /* the group's heads as S's rows: block j's row gr is head 8 j + gr */

#pragma unroll
    for (j = 0; j < NB; j++) {
        h = 8 * j + gr;

#pragma unroll
        for (c = 0; c < NK; c++) {
            qa[j][c] = h < group
                       ? *(const uint4 *) (q + (int64_t) b.row * ld_q
                                           + (int64_t) (b.kvh * group + h)
                                             * HD
                                           + c * 32 + tq * SLORA_CUDA_VEC)
                       : make_uint4(0, 0, 0, 0);
        }

#pragma unroll
        for (mt = 0; mt < NO; mt++) {
            oc[j][mt][0] = oc[j][mt][1] = oc[j][mt][2] = oc[j][mt][3] = 0.0f;
        }

        m[j] = -FLT_MAX;            /* as in slora_dec_kernel */
        l[j] = 0.0f;
    }

    tb = b.t0 + warp * SLORA_DEC_TILE;
    t = tb + lane % SLORA_DEC_TILE;
    pg = t < b.t1 ? b.pages[slora_fastdiv((uint32_t) t, g.tpp_div)] : -1;

    /* the next tile's K loads go out once this tile's scores have read
     * K, its V loads once this tile's sums have read V: a tile's rows in
     * flight through the mmas in the same registers (bench/RESULTS.md:
     * 1.06x at 64 x 512 with groups of 4, and up to 1.26x over loading
     * each tile after the last one's sums; a second set of registers
     * for the next tile cost an SM a block and was slower at 16 x 512) */
    if (tb < b.t1) {
        slora_dec_mma_offsets<HD>(ko, vo, pg, b.pages, g, b.kvh, tb, b.t1,
                                  lane);
        slora_dec_mma_load_k<HD>(f, kv, ko, lane);
        slora_dec_mma_load_v<HD>(f, kv, vo, g, lane);
    }

    for (; tb < b.t1; tb += SWEEP) {
        slora_dec_mma_scores<HD, NB>(f, qa, sc);

        if (tb + SWEEP < b.t1) {
            slora_dec_mma_offsets<HD>(ko, vo, pg, b.pages, g, b.kvh,
                                      tb + SWEEP, b.t1, lane);
            slora_dec_mma_load_k<HD>(f, kv, ko, lane);
        }

        slora_dec_mma_accum<HD, NB>(f, sc, oc, m, l, scale, tb, b.t1, lane);

        if (tb + SWEEP < b.t1) {
            slora_dec_mma_load_v<HD>(f, kv, vo, g, lane);
        }
    }

    /* each row's sum over its quad; the warp's state into sm with the
     * maximum in natural units, as slora_dec_finish merges them */

#pragma unroll
    for (j = 0; j < NB; j++) {
        l[j] += __shfl_xor_sync(0xffffffffu, l[j], 1);
        l[j] += __shfl_xor_sync(0xffffffffu, l[j], 2);
        h = 8 * j + gr;

        if (tq == 0 && h < group) {
            sm[warp][h][HD] = m[j] * 0.6931471805599453f;
            sm[warp][h][HD + 1] = l[j];
        }

#pragma unroll
        for (e = 0; e < 2; e++) {
            h = 8 * j + 2 * tq + e;

            if (h < group) {
#pragma unroll
                for (mt = 0; mt < NO; mt++) {
                    d = (mt / 4) * 64 + gr * SLORA_CUDA_VEC + 2 * (mt % 4);
                    sm[warp][h][d] = oc[j][mt][e];
                    sm[warp][h][d + 1] = oc[j][mt][2 + e];
                }
            }
        }
    }

    __syncthreads();

    slora_dec_finish<HD, 8 * NB>(sm, group, out, ld_out, g, &b);
}


/* out = a split sequence's items' states merged: one block per
 * (sequence, head); a sequence read by one block has its output from it. */
static __global__ void
slora_dec_combine(uint16_t *__restrict__ out, int64_t ld_out,
    slora_dec_args_t g, int32_t hd)
{
    const float  *pp;
    int64_t       stride;
    int32_t       s, head, d, k, n;
    float         mm, ll, aa, e;

    slora_pdl_enter();

    s = blockIdx.x;
    head = blockIdx.y;

    if (g.qo_indptr[s + 1] - g.qo_indptr[s] != 1) {
        return;
    }

    n = (g.seq_pos[s] + g.chunk) / g.chunk;

    if (n <= 1) {
        return;
    }

    stride = (int64_t) g.n_heads * (hd + 2);
    pp = g.part + ((int64_t) g.first[s] * g.n_heads + head) * (hd + 2);

    mm = -INFINITY;
    for (k = 0; k < n; k++) {
        mm = fmaxf(mm, pp[k * stride + hd]);
    }

    for (d = threadIdx.x; d < hd; d += blockDim.x) {
        ll = 0.0f;
        aa = 0.0f;

        for (k = 0; k < n; k++) {
            e = __expf(pp[k * stride + hd] - mm);
            ll += pp[k * stride + hd + 1] * e;
            aa += pp[k * stride + d] * e;
        }

        out[(int64_t) g.qo_indptr[s] * ld_out + (int64_t) head * hd + d] =
            slora_f2bf(aa / ll);
    }
}


/* $SLORA_CUDA_DECODE_MMA=0 sends every group to the CUDA-core kernel (an
 * A/B in one device call) */
static const bool  slora_dec_mma_on = slora_env_on("SLORA_CUDA_DECODE_MMA");


typedef void (*slora_dec_kernel_t)(uint16_t *, int64_t, const uint16_t *,
    int64_t, const uint16_t *, slora_dec_args_t);


/* The kernels: the tensor-core one's by head size and its mmas of heads
 * (one for groups to 8, two past), the CUDA-core one's by head size and
 * group. */
static const slora_dec_kernel_t  slora_dec_mma_kernels[2][2] = {
    { slora_dec_mma_kernel<64, 1>, slora_dec_mma_kernel<64, 2> },
    { slora_dec_mma_kernel<128, 1>, slora_dec_mma_kernel<128, 2> }
};

static const int32_t  slora_dec_core_groups[] = { 1, 2, 3, 4, 8 };

static const slora_dec_kernel_t  slora_dec_core_kernels[3][5] = {
    { slora_dec_kernel<64, 1>, slora_dec_kernel<64, 2>,
      slora_dec_kernel<64, 3>, slora_dec_kernel<64, 4>,
      slora_dec_kernel<64, 8> },
    { slora_dec_kernel<128, 1>, slora_dec_kernel<128, 2>,
      slora_dec_kernel<128, 3>, slora_dec_kernel<128, 4>,
      slora_dec_kernel<128, 8> },
    { slora_dec_kernel<256, 1>, slora_dec_kernel<256, 2>,
      slora_dec_kernel<256, 3>, slora_dec_kernel<256, 4>,
      slora_dec_kernel<256, 8> }
};


/* The kernel a shape goes to and its split of the context. */
typedef struct {
    slora_dec_kernel_t  kernel;
    slora_dec_shape_t   sh;
} slora_dec_plan_t;


/*
 * -2 for a shape neither kernel takes, else the plan: the tensor-core
 * kernel for groups of SLORA_DEC_MMA_MIN_G to SLORA_DEC_MMA_G at head
 * sizes 64 and 128; splits that give the GPU enough blocks if every
 * context were the longest, none shorter than SLORA_DEC_MIN_CHUNK
 * positions. Where the contexts are far from even (the batch's share of
 * a block, dec_ctx, the decode rows' contexts summed, over the blocks,
 * under half that split), the split is the share to a power of two
 * instead: one long context among many short ones is split although
 * the sequences alone fill the GPU, so its splits run beside the short
 * ones. Down to the power of two for the CUDA-core kernel, up for the
 * tensor-core one, whose blocks each read faster and cost more to start
 * (bench/RESULTS.md, 2026-12-03 18:48). The work list's length, n_items,
 * bounds the splits of all sequences together: at most n_splits each,
 * and where the share set the split, at most one more a sequence than
 * the contexts' sum over the split.
 */
static int
slora_dec_plan(int32_t n_seqs, int32_t n_heads, int32_t n_kv_heads,
    int32_t head_dim, int32_t max_ctx, int64_t dec_ctx, slora_dec_plan_t *p)
{
    int64_t  want, blocks, share, pow2, items;
    int32_t  group, h, i, c, mma, skewed;

    if (n_seqs <= 0 || n_kv_heads <= 0 || n_heads <= 0
        || n_heads % n_kv_heads != 0 || max_ctx <= 0)
    {
        return -1;
    }

    if (head_dim != 64 && head_dim != 128 && head_dim != 256) {
        return -2;
    }

    group = n_heads / n_kv_heads;
    h = head_dim == 64 ? 0 : head_dim == 128 ? 1 : 2;
    p->kernel = NULL;
    mma = slora_dec_mma_on && group >= SLORA_DEC_MMA_MIN_G
          && group <= SLORA_DEC_MMA_G && head_dim <= 128;

    if (mma) {
        p->kernel = slora_dec_mma_kernels[h][group > 8];

    } else {
        for (i = 0; i < 5; i++) {
            if (slora_dec_core_groups[i] == group) {
                p->kernel = slora_dec_core_kernels[h][i];
            }
        }
    }

    if (p->kernel == NULL) {
        return -2;
    }

    /* the tensor-core kernel was slower with 3x and 6x the blocks
     * (bench/RESULTS.md): a block's start costs more than a wave's tail;
     * with one query head a KV head, twice the blocks read 20% faster at
     * 1 x 4096 and 11% at 16 x 512, the same from 64 sequences on */
    blocks = group == 1 ? 2 * SLORA_DEC_BLOCKS : SLORA_DEC_BLOCKS;
    want = (blocks + (int64_t) n_seqs * n_kv_heads - 1)
           / ((int64_t) n_seqs * n_kv_heads);
    want = want < 1 ? 1 : want;

    c = (int32_t) ((max_ctx + want - 1) / want);

    /* the share to a power of two: a captured decode graph holds the
     * split, and a share that moved with every step's contexts would
     * have a batch captured anew every few dozen steps */
    share = (dec_ctx * n_kv_heads + blocks - 1) / blocks;
    skewed = dec_ctx > 0 && 2 * share < c;

    if (skewed) {
        for (pow2 = SLORA_DEC_MIN_CHUNK; 2 * pow2 <= share; pow2 *= 2) {
            /* void */
        }

        c = (int32_t) (mma && pow2 < share ? 2 * pow2 : pow2);
    }

    c = c < SLORA_DEC_MIN_CHUNK ? SLORA_DEC_MIN_CHUNK : c;
    c = (c + SLORA_DEC_MIN_CHUNK - 1) / SLORA_DEC_MIN_CHUNK
        * SLORA_DEC_MIN_CHUNK;

    p->sh.chunk = c;
    p->sh.n_splits = (max_ctx + c - 1) / c;

    /* with the share's split, c >= share >= dec_ctx n_kv / blocks up,
     * c > share / 2 down */
    items = (int64_t) n_seqs * p->sh.n_splits;

    if (skewed) {
        blocks *= mma ? 1 : 2;
        items = std::min(items, n_seqs + (blocks + n_kv_heads - 1)
                                          / n_kv_heads);
    }

    p->sh.n_items = (int32_t) items;

    return 0;
}


extern "C" void
slora_attention_decode_shape(int32_t n_seqs, int32_t n_heads,
    int32_t n_kv_heads, int32_t head_dim, int32_t max_ctx, int64_t dec_ctx,
    slora_dec_shape_t *sh)
{
    slora_dec_plan_t  p;

    sh->chunk = 0;
    sh->n_splits = 0;
    sh->n_items = 0;

    if (slora_dec_plan(n_seqs, n_heads, n_kv_heads, head_dim, max_ctx,
                       dec_ctx, &p)
        == 0)
    {
        *sh = p.sh;
    }
}


/* The split states' bytes: an item's heads' sums, maximum and sum of
 * exponentials each, where any sequence is split. */
static size_t
slora_dec_work_bytes(const slora_dec_plan_t *p, int32_t n_heads,
    int32_t head_dim)
{
    return p->sh.n_splits == 1 ? 0 : (size_t) p->sh.n_items * n_heads
                                      * (head_dim + 2) * sizeof(float);
}


extern "C" size_t
slora_attention_decode_work_size(int32_t n_seqs, int32_t n_heads,
    int32_t n_kv_heads, int32_t head_dim, int32_t max_ctx, int64_t dec_ctx)
{
    slora_dec_plan_t  p;

    if (slora_dec_plan(n_seqs, n_heads, n_kv_heads, head_dim, max_ctx,
                       dec_ctx, &p)
        != 0)
    {
        return 0;
    }

    return slora_dec_work_bytes(&p, n_heads, head_dim);
}


/*
 * The sequences split in more than one go first, so that the longest
 * reads start first and the short ones fill in beside them; each
 * sequence's items are together, first[s] the first.
 */
extern "C" int32_t
slora_attention_decode_items(const slora_dec_shape_t *sh, int32_t n_seqs,
    const int32_t *qo_indptr, const int32_t *seq_pos,
    const int32_t *kv_indptr, int32_t *items, int32_t *first)
{
    int32_t  s, j, k, n, ctx, pass, *it;

    k = 0;

    for (pass = 0; pass < 2 && sh->chunk > 0; pass++) {
        for (s = 0; s < n_seqs; s++) {
            if (qo_indptr[s + 1] - qo_indptr[s] != 1) {
                first[s] = -1;
                continue;
            }

            ctx = seq_pos[s] + 1;
            n = (ctx + sh->chunk - 1) / sh->chunk;

            if ((n > 1) != (pass == 0)) {
                continue;
            }

            if (n > sh->n_items - k) {
                return -1;
            }

            first[s] = k;

            for (j = 0; j < n; j++) {
                it = items + 4 * k++;
                it[0] = qo_indptr[s];
                it[1] = kv_indptr[s];
                it[2] = n == 1 ? -1 : j * sh->chunk;
                it[3] = ctx < (j + 1) * sh->chunk ? ctx : (j + 1) * sh->chunk;
            }
        }
    }

    for (j = 4 * k; j < 4 * sh->n_items; j++) {
        items[j] = -1;
    }

    return k;
}


extern "C" int
slora_attention_decode_cuda(uint16_t *out, int64_t ld_out, const uint16_t *q,
    int64_t ld_q, int32_t n_heads, const uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, int32_t n_kv_heads, int32_t head_dim,
    const slora_seq_index_t *ix, int32_t max_ctx, int64_t dec_ctx,
    void *work, size_t work_size, void *stream)
{
    slora_dec_args_t   g;
    slora_dec_plan_t   p;
    cudaStream_t       st;
    int                rc;

    if (n_kv_heads <= 0 || n_heads <= 0 || n_heads % n_kv_heads != 0) {
        return -1;
    }

    if (ix != NULL && ix->n_seqs == 0) {
        return 0;
    }

    rc = slora_dec_plan(ix != NULL ? ix->n_seqs : 0, n_heads, n_kv_heads,
                        head_dim, max_ctx, dec_ctx, &p);

    if (rc != 0) {
        return rc;
    }

    if (out == NULL || q == NULL || kv == NULL || ix == NULL
        || tokens_per_page <= 0 || max_ctx <= 0
        || page_elems < 2 * (int64_t) tokens_per_page * n_kv_heads * head_dim
        || page_elems % SLORA_CUDA_VEC != 0
        || ld_q < (int64_t) n_heads * head_dim || ld_q % SLORA_CUDA_VEC != 0
        || ld_out < (int64_t) n_heads * head_dim || !slora_cuda_aligned(kv)
        || !slora_cuda_aligned(q) || ix->n_seqs < 0 || ix->n_seqs > 65535
        || p.sh.n_items > 65535
        || ix->qo_indptr == NULL || ix->seq_pos == NULL
        || ix->kv_indptr == NULL || ix->kv_indices == NULL
        || ix->dec_items == NULL || ix->dec_first == NULL
        || (uintptr_t) ix->dec_items % sizeof(int4) != 0)
    {
        return -1;
    }

    g.page_elems = page_elems;
    g.tpp = tokens_per_page;
    g.tpp_div = slora_fastdiv_make((uint32_t) tokens_per_page);
    g.n_kv_heads = n_kv_heads;
    g.n_heads = n_heads;
    g.chunk = p.sh.chunk;
    g.qo_indptr = ix->qo_indptr;
    g.seq_pos = ix->seq_pos;
    g.kv_indptr = ix->kv_indptr;
    g.kv_indices = ix->kv_indices;
    g.items = (const int4 *) ix->dec_items;
    g.first = ix->dec_first;
    g.part = NULL;

    if (p.sh.n_splits > 1) {
        if (work == NULL
            || work_size < slora_dec_work_bytes(&p, n_heads, head_dim))
        {
            return -1;
        }

        g.part = (float *) work;
    }

    st = (cudaStream_t) stream;

    /* an item's kv heads side by side in launch order: the blocks that
     * run together then read whole K and V rows of the same pages (each
     * head's slice of a row is 256 bytes at head_dim 128), not one slice
     * of many sequences' rows: 1-2% faster at the 7B shape
     * (bench/RESULTS.md, 2026-12-01 03:23-03:33) */
    slora_launch(p.kernel, dim3(n_kv_heads, p.sh.n_items), SLORA_DEC_THREADS,
        0, st, out, ld_out, q, ld_q, kv, g);

    if (slora_cuda_launched() != 0) {
        return -1;
    }

    if (g.part != NULL) {
        slora_launch(slora_dec_combine, dim3(ix->n_seqs, n_heads),
            head_dim < 128 ? 64 : 128, 0, st, out, ld_out, g, head_dim);

        return slora_cuda_launched();
    }

    return 0;
}
