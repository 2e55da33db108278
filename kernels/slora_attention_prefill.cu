/*
 * slora_attention_prefill.cu: paged, causal, grouped-query attention on
 * tensor cores, for the rows of prefill chunks (and, through
 * slora_attention_cuda, for any rows); the device twin of
 * slora_attention_cpu.c for those rows.
 *
 * The one idea: the flash-attention loop with the two products on tensor
 * cores (WMMA, bf16 in, fp32 out). A block owns (sequence, tile of 64
 * query rows, query head); it walks the sequence's page table 64
 * positions at a time, staging K and V in shared memory, and each of its
 * four warps takes 16 query rows: S = Q K^T into shared memory, the
 * online softmax over its rows (two lanes a row), P in bf16, then
 * O += P V into an fp32 O kept in shared memory, rescaled row by row when
 * a row's maximum moves. Positions after a row's own are masked, so a
 * chunk attends causally to its own rows and to everything before it.
 */

#include <stdint.h>
#include <stddef.h>
#include <math.h>
#include <mma.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_attention.h"
}


#define SLORA_PF_BM        64      /* query rows a block */
#define SLORA_PF_BN        64      /* positions a K/V tile */
#define SLORA_PF_THREADS   128
#define SLORA_PF_PAD       8       /* bf16 row padding in shared memory */
#define SLORA_PF_FPAD      4       /* float row padding */


using namespace nvcuda;


typedef struct {
    int64_t          page_elems;
    int32_t          tpp;
    int32_t          n_kv_heads;
    int32_t          group;
    int32_t          min_rows;
} slora_pf_geom_t;


template <int HD>
static constexpr size_t
slora_pf_smem(void)
{
    return (size_t) 3 * SLORA_PF_BM * (HD + SLORA_PF_PAD) * 2      /* Q K V */
           + (size_t) SLORA_PF_BM * (SLORA_PF_BN + SLORA_PF_FPAD) * 4 /* S */
           + (size_t) SLORA_PF_BM * (SLORA_PF_BN + SLORA_PF_PAD) * 2  /* P */
           + (size_t) SLORA_PF_BM * (HD + SLORA_PF_FPAD) * 4          /* O */
           + (size_t) 3 * SLORA_PF_BM * 4;                           /* m l c */
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
    constexpr int  LQ = HD + SLORA_PF_PAD;          /* Q, K, V rows */
    constexpr int  LS = SLORA_PF_BN + SLORA_PF_FPAD;
    constexpr int  LP = SLORA_PF_BN + SLORA_PF_PAD;
    constexpr int  LO = HD + SLORA_PF_FPAD;
    constexpr int  V8 = HD / SLORA_CUDA_VEC;        /* 16-byte chunks a row */

    extern __shared__ __align__(128) unsigned char  smem[];

    __nv_bfloat16  *qs, *ks, *vs, *ps;
    float          *ss, *os, *mrow, *lrow, *crow;
    int32_t         s, h, kvh, rows, row0, nr, pos0, ctx_end, t0, t, e, r,
                    j, c, d, warp, lane, half, kv_dim, n, k, nd;
    const int32_t  *pages;
    const uint16_t *src;
    int32_t         qpos;
    float           scale, x, mx, m_new, corr, p, sum;
    uint4           z;

    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16,
                   wmma::row_major>                      fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16,
                   wmma::col_major>                      fk;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16,
                   wmma::row_major>                      fv;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float>  fc;

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
    kv_dim = g.n_kv_heads * HD;
    pages = kv_indices + kv_indptr[s];
    warp = threadIdx.x / SLORA_CUDA_WARP;
    lane = threadIdx.x % SLORA_CUDA_WARP;
    scale = rsqrtf((float) HD);
    z = make_uint4(0, 0, 0, 0);

    qs = (__nv_bfloat16 *) smem;
    ks = qs + SLORA_PF_BM * LQ;
    vs = ks + SLORA_PF_BN * LQ;
    ss = (float *) (vs + SLORA_PF_BN * LQ);
    ps = (__nv_bfloat16 *) (ss + SLORA_PF_BM * LS);
    os = (float *) (ps + SLORA_PF_BM * LP);
    mrow = os + SLORA_PF_BM * LO;
    lrow = mrow + SLORA_PF_BM;
    crow = lrow + SLORA_PF_BM;

    for (e = threadIdx.x; e < SLORA_PF_BM * V8; e += SLORA_PF_THREADS) {
        r = e / V8;
        d = (e % V8) * SLORA_CUDA_VEC;

        *(uint4 *) (qs + r * LQ + d) =
            r < nr ? *(const uint4 *) (q + (int64_t) (qo_indptr[s] + row0 + r)
                                           * ld_q + (int64_t) h * HD + d)
                   : z;
    }

    for (e = threadIdx.x; e < SLORA_PF_BM * HD; e += SLORA_PF_THREADS) {
        os[(e / HD) * LO + e % HD] = 0.0f;
    }

    if (threadIdx.x < SLORA_PF_BM) {
        mrow[threadIdx.x] = -INFINITY;
        lrow[threadIdx.x] = 0.0f;
    }

    for (t0 = 0; t0 < ctx_end; t0 += SLORA_PF_BN) {
        __syncthreads();

        for (e = threadIdx.x; e < SLORA_PF_BN * V8; e += SLORA_PF_THREADS) {
            j = e / V8;
            d = (e % V8) * SLORA_CUDA_VEC;
            t = t0 + j;

            if (t < ctx_end) {
                src = kv + (int64_t) pages[t / g.tpp] * g.page_elems
                      + (int64_t) (t % g.tpp) * kv_dim + (int64_t) kvh * HD
                      + d;
                *(uint4 *) (ks + j * LQ + d) = *(const uint4 *) src;
                *(uint4 *) (vs + j * LQ + d) =
                    *(const uint4 *) (src + (int64_t) g.tpp * kv_dim);

            } else {
                *(uint4 *) (ks + j * LQ + d) = z;
                *(uint4 *) (vs + j * LQ + d) = z;
            }
        }

        __syncthreads();

        /* S = Q K^T for this warp's 16 rows */

        for (n = 0; n < SLORA_PF_BN / 16; n++) {
            wmma::fill_fragment(fc, 0.0f);

#pragma unroll
            for (k = 0; k < HD / 16; k++) {
                wmma::load_matrix_sync(fa, qs + warp * 16 * LQ + k * 16, LQ);
                wmma::load_matrix_sync(fk, ks + n * 16 * LQ + k * 16, LQ);
                wmma::mma_sync(fc, fa, fk, fc);
            }

            wmma::store_matrix_sync(ss + warp * 16 * LS + n * 16, fc, LS,
                                    wmma::mem_row_major);
        }

        __syncwarp();

        /* online softmax: two lanes a row, 32 columns each */

        r = warp * 16 + lane / 2;
        half = lane % 2;
        qpos = pos0 + r;
        mx = -INFINITY;

        for (c = half * 32; c < half * 32 + 32; c++) {
            x = t0 + c <= qpos && r < nr
                ? ss[r * LS + c] * scale : -INFINITY;
            ss[r * LS + c] = x;
            mx = fmaxf(mx, x);
        }

        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        m_new = fmaxf(mrow[r], mx);
        sum = 0.0f;

        for (c = half * 32; c < half * 32 + 32; c++) {
            x = ss[r * LS + c];
            p = x == -INFINITY ? 0.0f : __expf(x - m_new);
            sum += p;
            ps[r * LP + c] = __float2bfloat16_rn(p);
        }

        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        corr = mrow[r] == -INFINITY ? (m_new == -INFINITY ? 1.0f : 0.0f)
                                    : __expf(mrow[r] - m_new);

        __syncwarp();

        if (half == 0) {
            lrow[r] = lrow[r] * corr + sum;
            mrow[r] = m_new;
            crow[r] = corr;
        }

        __syncwarp();

        for (e = lane; e < 16 * HD; e += SLORA_CUDA_WARP) {
            r = warp * 16 + e / HD;
            os[r * LO + e % HD] *= crow[r];
        }

        __syncwarp();

        /* O += P V */

        for (nd = 0; nd < HD / 16; nd++) {
            wmma::load_matrix_sync(fc, os + warp * 16 * LO + nd * 16, LO,
                                   wmma::mem_row_major);

#pragma unroll
            for (k = 0; k < SLORA_PF_BN / 16; k++) {
                wmma::load_matrix_sync(fa, ps + warp * 16 * LP + k * 16, LP);
                wmma::load_matrix_sync(fv, vs + k * 16 * LQ + nd * 16, LQ);
                wmma::mma_sync(fc, fa, fv, fc);
            }

            wmma::store_matrix_sync(os + warp * 16 * LO + nd * 16, fc, LO,
                                    wmma::mem_row_major);
        }
    }

    __syncthreads();

    for (e = threadIdx.x; e < nr * HD; e += SLORA_PF_THREADS) {
        r = e / HD;
        d = e % HD;
        out[(int64_t) (qo_indptr[s] + row0 + r) * ld_out + (int64_t) h * HD
            + d] = slora_f2bf(lrow[r] > 0.0f ? os[r * LO + d] / lrow[r]
                                             : 0.0f);
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

    if (!slora_cuda_aligned(q) || ld_q % SLORA_CUDA_VEC != 0) {
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
