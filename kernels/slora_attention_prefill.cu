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
 */

#include <stdint.h>
#include <stddef.h>
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
    int32_t          n_kv_heads;
    int32_t          group;
    int32_t          min_rows;
} slora_pf_geom_t;


/* positions a K/V tile: S's and O's registers together stay in budget */
template <int HD>
static constexpr __host__ __device__ int
slora_pf_bn(void)
{
    return HD > 128 ? 32 : 64;
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


static __device__ __forceinline__ void
slora_ldsm_x4(uint32_t *r, const void *p)
{
    uint32_t  a;

    a = (uint32_t) __cvta_generic_to_shared(p);

    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 "
                 "{%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}


static __device__ __forceinline__ void
slora_ldsm_x4_t(uint32_t *r, const void *p)
{
    uint32_t  a;

    a = (uint32_t) __cvta_generic_to_shared(p);

    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 "
                 "{%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}


static __device__ __forceinline__ uint32_t
slora_pack_bf2(float lo, float hi)
{
    __nv_bfloat162  h;

    h = __floats2bfloat162_rn(lo, hi);

    return *(uint32_t *) &h;
}


/*
 * The rows of K and V at positions t0 .. t0 + BN - 1 into ks and vs,
 * zeros past ctx_end (so that masked columns multiply zeros, never
 * stale values).
 */

template <int HD, int BN>
static __device__ __forceinline__ void
slora_pf_load_kv(__nv_bfloat16 *ks, __nv_bfloat16 *vs,
    const uint16_t *__restrict__ kv, const int32_t *__restrict__ pages,
    const slora_pf_geom_t &g, int32_t kvh, int32_t t0, int32_t ctx_end)
{
    constexpr int  LD = HD + SLORA_PF_PAD;
    constexpr int  V8 = HD / SLORA_CUDA_VEC;

    const uint16_t  *src;
    int32_t          e, j, d, t;
    int64_t          kv_dim;

    kv_dim = (int64_t) g.n_kv_heads * HD;

    for (e = threadIdx.x; e < BN * V8; e += SLORA_PF_THREADS) {
        j = e / V8;
        d = (e % V8) * SLORA_CUDA_VEC;
        t = t0 + j;
        src = kv;

        if (t < ctx_end) {
            src = kv + (int64_t) pages[t / g.tpp] * g.page_elems
                  + (int64_t) (t % g.tpp) * kv_dim + (int64_t) kvh * HD + d;
        }

        slora_cp16(ks + j * LD + d, src, t < ctx_end);
        slora_cp16(vs + j * LD + d, t < ctx_end ? src + g.tpp * kv_dim : kv,
                   t < ctx_end);
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
    float           scale, sc[NS][4], oc[NO][4], m[2], l[2], mx, mu, corr,
                    inv;
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

    slora_pf_load_kv<HD, BN>(ks, vs, kv, pages, g, kvh, 0, ctx_end);
    asm volatile("cp.async.commit_group;" ::: "memory");

#pragma unroll
    for (n = 0; n < NO; n++) {
        oc[n][0] = oc[n][1] = oc[n][2] = oc[n][3] = 0.0f;
    }

    m[0] = m[1] = -INFINITY;
    l[0] = l[1] = 0.0f;

    for (it = 0; it < n_tiles; it++) {
        t0 = it * BN;

        if (it + 1 < n_tiles) {
            slora_pf_load_kv<HD, BN>(ks + ((it + 1) & 1) * BN * LD,
                                     vs + ((it + 1) & 1) * BN * LD, kv, pages,
                                     g, kvh, t0 + BN, ctx_end);
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
                slora_ldsm_x4(a, qs + (warp * 16 + lane % 16) * LD + k * 16
                                 + (lane / 16) * 8);

#pragma unroll
                for (n = 0; n < NS; n += 2) {
                    slora_ldsm_x4(b, kt + (n * 8 + lane % 8 + (lane / 16) * 8)
                                          * LD
                                     + k * 16 + ((lane / 8) % 2) * 8);
                    slora_mma(sc[n], a[0], a[1], a[2], a[3], b[0], b[1]);
                    slora_mma(sc[n + 1], a[0], a[1], a[2], a[3], b[2], b[3]);
                }
            }

            /* the mask, where the tile reaches past the warp's first row,
             * and the online softmax: a row's four lanes share its
             * maximum; each keeps its own part of the sum until the end */

#pragma unroll
            for (j = 0; j < 2; j++) {
                mx = -INFINITY;

#pragma unroll
                for (n = 0; n < NS; n++) {
#pragma unroll
                    for (e = 0; e < 2; e++) {
                        key = t0 + n * 8 + 2 * tq + e;
                        sc[n][2 * j + e] = key <= qp[j]
                                           ? sc[n][2 * j + e] * scale
                                           : -INFINITY;
                        mx = fmaxf(mx, sc[n][2 * j + e]);
                    }
                }

                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                mx = fmaxf(m[j], mx);
                mu = mx == -INFINITY ? 0.0f : mx;
                corr = exp2f(m[j] - mu);
                m[j] = mx;
                l[j] *= corr;

#pragma unroll
                for (n = 0; n < NS; n++) {
#pragma unroll
                    for (e = 0; e < 2; e++) {
                        sc[n][2 * j + e] = exp2f(sc[n][2 * j + e] - mu);
                        l[j] += sc[n][2 * j + e];
                    }
                }

#pragma unroll
                for (n = 0; n < NO; n++) {
                    oc[n][2 * j] *= corr;
                    oc[n][2 * j + 1] *= corr;
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
                    slora_ldsm_x4_t(b, vt + (k * 16 + lane % 8
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

        inv = l[j] > 0.0f ? 1.0f / l[j] : 0.0f;
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
