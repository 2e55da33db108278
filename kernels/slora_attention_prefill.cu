/*
 * slora_attention_prefill.cu: paged, causal, grouped-query attention on
 * tensor cores, for the rows of prefill chunks (and, through
 * slora_attention_cuda, for any rows); the device twin of
 * slora_attention_cpu.c for those rows.
 *
 * The one idea: flash attention with everything a row owns kept in
 * registers. A block owns (sequence, tile of 64 query rows, query head)
 * and each of its four warps 16 of the rows; the block walks the
 * sequence's page table a tile of K and V at a time, the next tile's
 * rows copied into shared memory (cp.async) while the warps work on
 * this one. A warp computes S = Q K^T with mma.sync (bf16 in, fp32
 * sums), masks the positions after each row's own, keeps the running
 * maximum and sum of its rows in registers, and feeds exp(S - max) as
 * bf16 straight from S's accumulators into O += P V, whose accumulators
 * stay in registers from the first tile to the last: nothing of S, P or
 * O goes through shared memory. A warp skips the tiles that lie wholly
 * after its rows. A chunk so attends causally to its own rows and to
 * everything before it.
 *
 * What keeps the instructions a tile few (the kernel is bound by issue,
 * not by memory): the mask is applied only on tiles that cross the
 * diagonal; a page's id is read a tile before its rows are copied, and
 * the row within it found by a multiply and shift (slora_fastdiv: the
 * pool's pages hold 43 tokens at Llama-7B's shape); a row's maximum, and
 * with it O's rescaling, moves only when the row's scores pass it by
 * 2^8 (a lazy rescale: P stays below 256, and the
 * quotient O / l is the same).
 */

#include <stdint.h>
#include <stddef.h>
#include <float.h>
#include <math.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_attention.h"
}


#define SLORA_PF_BM        64      /* query rows a block */
#define SLORA_PF_THREADS   128     /* four warps of 16 rows */
#define SLORA_PF_PAD       8       /* bf16 row padding: ldmatrix rows
                                    * 16 bytes apart modulo 128 */


typedef struct {
    int64_t          page_elems;
    int32_t          tpp;
    slora_fastdiv_t  tpp_div;          /* t / tpp without a division */
    int32_t          n_kv_heads;
    int32_t          group;
    int32_t          min_rows;
} slora_pf_geom_t;


/* positions a K/V tile: 32 from head_dim 128 on keeps four blocks an SM
 * (registers and shared memory), which ran 1.07-1.17x faster at 128
 * than 64 positions and two (bench/RESULTS.md) */
template <int HD>
static constexpr __host__ __device__ int
slora_pf_bn(void)
{
    return HD >= 128 ? 32 : 64;
}


template <int HD>
static constexpr size_t
slora_pf_smem(void)
{
    return (size_t) (SLORA_PF_BM + 4 * slora_pf_bn<HD>())
           * (HD + SLORA_PF_PAD) * sizeof(uint16_t);      /* Q, 2 x K, V */
}


/* 16 bytes global to shared, or 16 zero bytes where ok is 0 */
static __device__ __forceinline__ void
slora_cp16(void *dst, const void *src, int ok)
{
    uint32_t  d;

    d = (uint32_t) __cvta_generic_to_shared(dst);

    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :: "r"(d), "l"(src), "r"(ok ? 16 : 0) : "memory");
}


/* four 8 x 8 bf16 matrices from shared memory as mma fragments, each
 * transposed on the way with TRANS (V's rows as B's columns) */
template <bool TRANS>
static __device__ __forceinline__ void
slora_ldsm_x4(uint32_t *r, const void *p)
{
    uint32_t  a;

    a = (uint32_t) __cvta_generic_to_shared(p);

#define SLORA_LDSM(trans)                                                     \
    asm volatile("ldmatrix.sync.aligned.m8n8.x4" trans ".shared.b16 "       \
                 "{%0, %1, %2, %3}, [%4];"                                    \
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])             \
                 : "r"(a))

    if constexpr (TRANS) {
        SLORA_LDSM(".trans");

    } else {
        SLORA_LDSM("");
    }

#undef SLORA_LDSM
}


/*
 * A thread's share of a K/V tile: rows threadIdx.x / V8 + i * (THREADS /
 * V8) for i < RPT, 16 bytes at column (threadIdx.x % V8) * 8 of each.
 * The page ids of a tile are read one tile ahead of its copy, so that
 * the copy never waits on the page table.
 */

template <int HD, int BN>
struct slora_pf_share {
    static constexpr int  V8 = HD / SLORA_CUDA_VEC;
    static constexpr int  RPT = BN * V8 / SLORA_PF_THREADS;
    static constexpr int  STEP = SLORA_PF_THREADS / V8;

    static_assert(BN * V8 % SLORA_PF_THREADS == 0
                  && SLORA_PF_THREADS % V8 == 0,
                  "a tile's 16-byte pieces fall evenly on the threads");
};


/* pg[i] = the page of the thread's row i of the tile at t0, -1 past
 * ctx_end */

template <int HD, int BN>
static __device__ __forceinline__ void
slora_pf_pages(int32_t *pg, const int32_t *__restrict__ pages,
    slora_fastdiv_t tpp_div, int32_t t0, int32_t ctx_end)
{
    using  sh = slora_pf_share<HD, BN>;

    int32_t  i, t;

#pragma unroll
    for (i = 0; i < sh::RPT; i++) {
        t = t0 + (int32_t) threadIdx.x / sh::V8 + i * sh::STEP;
        pg[i] = t < ctx_end ? pages[slora_fastdiv((uint32_t) t, tpp_div)]
                            : -1;
    }
}


/* The thread's rows of K and V at t0 into ks and vs, zeros where pg[i]
 * is -1 (so that masked columns multiply zeros, never stale values). */

template <int HD, int BN>
static __device__ __forceinline__ void
slora_pf_load_kv(__nv_bfloat16 *ks, __nv_bfloat16 *vs,
    const uint16_t *__restrict__ kv, const int32_t *pg,
    const slora_pf_geom_t &g, int32_t kvh, int32_t t0)
{
    using  sh = slora_pf_share<HD, BN>;
    constexpr int  LD = HD + SLORA_PF_PAD;

    const uint16_t  *src;
    int32_t          i, j, d, t;
    int64_t          kv_dim;

    kv_dim = (int64_t) g.n_kv_heads * HD;
    d = ((int32_t) threadIdx.x % sh::V8) * SLORA_CUDA_VEC;

#pragma unroll
    for (i = 0; i < sh::RPT; i++) {
        j = (int32_t) threadIdx.x / sh::V8 + i * sh::STEP;
        t = t0 + j;
        src = kv;

        if (pg[i] >= 0) {
            src = kv + (int64_t) pg[i] * g.page_elems
                  + (int64_t) (t - (int32_t) slora_fastdiv((uint32_t) t,
                                                           g.tpp_div)
                                   * g.tpp) * kv_dim
                  + (int64_t) kvh * HD + d;
        }

        slora_cp16(ks + j * LD + d, src, pg[i] >= 0);
        slora_cp16(vs + j * LD + d, pg[i] >= 0 ? src + g.tpp * kv_dim : kv,
                   pg[i] >= 0);
    }
}


template <int HD>
static __global__ void __launch_bounds__(SLORA_PF_THREADS)
slora_pf_kernel(uint16_t *__restrict__ out, int64_t ld_out,
    const uint16_t *__restrict__ q, int64_t ld_q,
    const uint16_t *__restrict__ kv, slora_pf_geom_t g,
    const int32_t *__restrict__ qo_indptr,
    const int32_t *__restrict__ seq_pos,
    const int32_t *__restrict__ kv_indptr,
    const int32_t *__restrict__ kv_indices)
{
    constexpr int  BN = slora_pf_bn<HD>();
    constexpr int  LD = HD + SLORA_PF_PAD;
    constexpr int  V8 = HD / SLORA_CUDA_VEC;
    constexpr int  NS = BN / 8;                     /* S's n-tiles */
    constexpr int  NO = HD / 8;                     /* O's n-tiles */

    extern __shared__ __align__(128) unsigned char  smem[];

    __nv_bfloat16  *qs, *ks, *vs;
    const int32_t  *pages;
    const uint16_t *src;
    int32_t         s, h, kvh, rows, row0, nr, pos0, ctx_end, n_tiles, it,
                    t0, e, r, d, warp, lane, gr, tq, wpos, j, k, n, key,
                    qp[2];
    int64_t         orow;
    float           scale, sc[NS][4], oc[NO][4], m[2], l[2], corr[2], mx,
                    inv;
    bool            diag, upd;
    int32_t         pg[slora_pf_share<HD, BN>::RPT];
    uint32_t        a[4], b[4], pa[4];

    slora_pdl_enter();

    s = blockIdx.x;
    rows = qo_indptr[s + 1] - qo_indptr[s];
    row0 = blockIdx.y * SLORA_PF_BM;

    if (rows < g.min_rows || row0 >= rows) {
        return;
    }

    h = blockIdx.z;
    kvh = h / g.group;
    nr = min(SLORA_PF_BM, rows - row0);
    pos0 = seq_pos[s] + row0;
    ctx_end = pos0 + nr;
    n_tiles = (ctx_end + BN - 1) / BN;
    pages = kv_indices + kv_indptr[s];
    warp = threadIdx.x / SLORA_CUDA_WARP;
    lane = threadIdx.x % SLORA_CUDA_WARP;
    gr = lane / 4;                      /* the lane's rows gr, gr + 8 */
    tq = lane % 4;                      /* its columns 2 tq, 2 tq + 1 */
    wpos = pos0 + warp * 16;            /* the warp's first row's position */
    qp[0] = wpos + gr;
    qp[1] = wpos + gr + 8;

    /* log2(e) folded in: the softmax runs on exp2 */
    scale = rsqrtf((float) HD) * 1.4426950408889634f;

    qs = (__nv_bfloat16 *) smem;
    ks = qs + SLORA_PF_BM * LD;         /* two buffers of K, then of V */
    vs = ks + 2 * BN * LD;

    for (e = threadIdx.x; e < SLORA_PF_BM * V8; e += SLORA_PF_THREADS) {
        r = e / V8;
        d = (e % V8) * SLORA_CUDA_VEC;
        src = r < nr ? q + (int64_t) (qo_indptr[s] + row0 + r) * ld_q
                         + (int64_t) h * HD + d
                     : q;
        slora_cp16(qs + r * LD + d, src, r < nr);
    }

    slora_pf_pages<HD, BN>(pg, pages, g.tpp_div, 0, ctx_end);
    slora_pf_load_kv<HD, BN>(ks, vs, kv, pg, g, kvh, 0);
    asm volatile("cp.async.commit_group;" ::: "memory");
    slora_pf_pages<HD, BN>(pg, pages, g.tpp_div, BN, ctx_end);

#pragma unroll
    for (n = 0; n < NO; n++) {
        oc[n][0] = oc[n][1] = oc[n][2] = oc[n][3] = 0.0f;
    }

    /* the lowest finite maximum, not -inf: a tile whose scores of a row
     * are all -inf then weighs exp2(-inf) = 0, as on the CPU, where
     * exp2(-inf + inf) was a NaN that no later tile could undo */
    m[0] = m[1] = -FLT_MAX;
    l[0] = l[1] = 0.0f;

    for (it = 0; it < n_tiles; it++) {
        t0 = it * BN;

        if (it + 1 < n_tiles) {
            slora_pf_load_kv<HD, BN>(ks + ((it + 1) & 1) * BN * LD,
                                     vs + ((it + 1) & 1) * BN * LD, kv, pg,
                                     g, kvh, t0 + BN);
            slora_pf_pages<HD, BN>(pg, pages, g.tpp_div, t0 + 2 * BN, ctx_end);
        }

        asm volatile("cp.async.commit_group;" ::: "memory");
        asm volatile("cp.async.wait_group 1;" ::: "memory");
        __syncthreads();

        /* a tile wholly after the warp's last row adds nothing to it */
        if (t0 <= wpos + 15) {
            const __nv_bfloat16  *kt = ks + (it & 1) * BN * LD;
            const __nv_bfloat16  *vt = vs + (it & 1) * BN * LD;

            /* S = Q K^T */

#pragma unroll
            for (n = 0; n < NS; n++) {
                sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
            }

#pragma unroll
            for (k = 0; k < HD / 16; k++) {
                slora_ldsm_x4<false>(a, qs + (warp * 16 + lane % 16) * LD
                                        + k * 16 + (lane / 16) * 8);

#pragma unroll
                for (n = 0; n < NS; n += 2) {
                    slora_ldsm_x4<false>(b, kt + (n * 8 + lane % 8
                                                  + (lane / 16) * 8) * LD
                                            + k * 16 + ((lane / 8) % 2) * 8);
                    slora_mma(sc[n], a[0], a[1], a[2], a[3], b[0], b[1]);
                    slora_mma(sc[n + 1], a[0], a[1], a[2], a[3], b[2], b[3]);
                }
            }

            /* the mask, on a tile that reaches past the warp's first
             * row, and the online softmax: a row's four lanes share its
             * maximum (the scale goes into exp2's FMA); each lane keeps
             * its own part of the sum until the end */

            diag = t0 + BN - 1 > wpos;

#pragma unroll
            for (j = 0; j < 2; j++) {
                mx = -INFINITY;

#pragma unroll
                for (n = 0; n < NS; n++) {
#pragma unroll
                    for (e = 0; e < 2; e++) {
                        key = t0 + n * 8 + 2 * tq + e;

                        if (diag && key > qp[j]) {
                            sc[n][2 * j + e] = -INFINITY;
                        }

                        mx = fmaxf(mx, sc[n][2 * j + e]);
                    }
                }

                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                /* m[j] is scaled; it moves only when the row's maximum
                 * passes it by 2^8, so P stays below 256 and O is
                 * seldom rescaled (the sums are the same either way) */
                mx *= scale;
                upd = mx > m[j] + 8.0f;
                corr[j] = upd ? slora_ex2(m[j] - mx) : 1.0f;
                m[j] = upd ? mx : m[j];
                l[j] *= corr[j];

#pragma unroll
                for (n = 0; n < NS; n++) {
#pragma unroll
                    for (e = 0; e < 2; e++) {
                        sc[n][2 * j + e] = slora_ex2(fmaf(sc[n][2 * j + e],
                                                          scale, -m[j]));
                        l[j] += sc[n][2 * j + e];
                    }
                }
            }

            if (__any_sync(0xffffffffu, corr[0] != 1.0f || corr[1] != 1.0f)) {
#pragma unroll
                for (n = 0; n < NO; n++) {
                    oc[n][0] *= corr[0];
                    oc[n][1] *= corr[0];
                    oc[n][2] *= corr[1];
                    oc[n][3] *= corr[1];
                }
            }

            /* O += P V: two of S's n-tiles are one k16 block of P */

#pragma unroll
            for (k = 0; k < BN / 16; k++) {
                pa[0] = slora_pack_bf2(sc[2 * k][0], sc[2 * k][1]);
                pa[1] = slora_pack_bf2(sc[2 * k][2], sc[2 * k][3]);
                pa[2] = slora_pack_bf2(sc[2 * k + 1][0], sc[2 * k + 1][1]);
                pa[3] = slora_pack_bf2(sc[2 * k + 1][2], sc[2 * k + 1][3]);

#pragma unroll
                for (n = 0; n < NO; n += 2) {
                    slora_ldsm_x4<true>(b, vt + (k * 16 + lane % 8
                                                 + ((lane / 8) % 2) * 8) * LD
                                           + n * 8 + (lane / 16) * 8);
                    slora_mma(oc[n], pa[0], pa[1], pa[2], pa[3], b[0], b[1]);
                    slora_mma(oc[n + 1], pa[0], pa[1], pa[2], pa[3], b[2],
                              b[3]);
                }
            }
        }

        __syncthreads();
    }

    asm volatile("cp.async.wait_group 0;" ::: "memory");

    /* the row sums over the four lanes, and O / l as bf16 pairs */

#pragma unroll
    for (j = 0; j < 2; j++) {
        l[j] += __shfl_xor_sync(0xffffffffu, l[j], 1);
        l[j] += __shfl_xor_sync(0xffffffffu, l[j], 2);
        r = warp * 16 + gr + 8 * j;

        if (r >= nr) {
            continue;
        }

        /* l is 0 only where every score was -inf: NaN, as on the CPU */
        inv = 1.0f / l[j];
        orow = (int64_t) (qo_indptr[s] + row0 + r) * ld_out + (int64_t) h * HD;

#pragma unroll
        for (n = 0; n < NO; n++) {
            *(uint32_t *) (out + orow + n * 8 + 2 * tq) =
                slora_pack_bf2(oc[n][2 * j] * inv, oc[n][2 * j + 1] * inv);
        }
    }
}


template <int HD>
static int
slora_pf_launch(uint16_t *out, int64_t ld_out, const uint16_t *q,
    int64_t ld_q, int32_t n_heads, const uint16_t *kv, slora_pf_geom_t g,
    const slora_seq_index_t *ix, int32_t max_q_len, cudaStream_t st)
{
    size_t  smem;
    dim3    grid;

    smem = slora_pf_smem<HD>();

    if (cudaFuncSetAttribute(slora_pf_kernel<HD>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                             (int) smem)
        != cudaSuccess)
    {
        return -1;
    }

    grid = dim3(ix->n_seqs, (max_q_len + SLORA_PF_BM - 1) / SLORA_PF_BM,
                n_heads);

    if (grid.y > 65535 || grid.z > 65535) {
        return -1;
    }

    slora_launch(slora_pf_kernel<HD>, grid, SLORA_PF_THREADS, smem, st, out,
        ld_out, q, ld_q, kv, g, ix->qo_indptr, ix->seq_pos, ix->kv_indptr,
        ix->kv_indices);

    return slora_cuda_launched();
}


/*
 * Called by slora_attention_cuda and slora_attention_prefill_cuda once
 * they have checked their arguments; -2 for a head_dim this kernel does
 * not take.
 */

extern "C" int
slora_attention_tc_cuda(uint16_t *out, int64_t ld_out, const uint16_t *q,
    int64_t ld_q, int32_t n_heads, const uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, int32_t n_kv_heads, int32_t head_dim,
    const slora_seq_index_t *ix, int32_t max_q_len, int32_t min_rows,
    void *stream)
{
    slora_pf_geom_t  g;
    cudaStream_t     st;

    if (head_dim != 64 && head_dim != 128 && head_dim != 256) {
        return -2;
    }

    if (!slora_cuda_aligned(q) || ld_q % SLORA_CUDA_VEC != 0
        || !slora_cuda_aligned(out) || ld_out % SLORA_CUDA_VEC != 0)
    {
        return -2;
    }

    g.page_elems = page_elems;
    g.tpp = tokens_per_page;
    g.tpp_div = slora_fastdiv_make((uint32_t) tokens_per_page);
    g.n_kv_heads = n_kv_heads;
    g.group = n_heads / n_kv_heads;
    g.min_rows = min_rows;
    st = (cudaStream_t) stream;

    switch (head_dim) {
    case 64:
        return slora_pf_launch<64>(out, ld_out, q, ld_q, n_heads, kv, g, ix,
                                   max_q_len, st);
    case 128:
        return slora_pf_launch<128>(out, ld_out, q, ld_q, n_heads, kv, g, ix,
                                    max_q_len, st);
    default:
        return slora_pf_launch<256>(out, ld_out, q, ld_q, n_heads, kv, g, ix,
                                    max_q_len, st);
    }
}
