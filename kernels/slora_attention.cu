/*
 * slora_attention.cu: paged, causal, grouped-query attention and the KV
 * store on the GPU, the device twins of slora_attention_cpu.c, for
 * decode and prefill rows in one launch.
 *
 * Head sizes 64, 128 and 256 go to the tensor-core kernel of
 * slora_attention_prefill.cu; this file keeps the general one.
 *
 * The one idea: a block owns (sequence, tile of query rows, kv head) and
 * every query head that reads that kv head, up to 16 query vectors; it
 * walks the sequence's page table 16 positions at a time, staging K and
 * V in shared memory once for all of them, and keeps a running maximum
 * and sum per query (online softmax), so the context length costs no
 * workspace. Decode is the tile of one row; a prefill chunk fills the
 * tile with rows of the same sequence, each masked at its own position.
 */

#include <stdint.h>
#include <stddef.h>
#include <math.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_attention.h"
}


#define SLORA_ATTN_NQ        16    /* query vectors per block */
#define SLORA_ATTN_TKV       16    /* positions per K/V tile */
#define SLORA_ATTN_THREADS   128
#define SLORA_ATTN_MAX_HD    256


typedef struct {
    int64_t          page_elems;
    int32_t          tpp;
    int32_t          n_kv_heads;
    int32_t          head_dim;
    int32_t          group;        /* query heads per kv head */
    int32_t          hg;           /* of them in one block */
    int32_t          qt;           /* query rows in one block */
    int32_t          n_chunks;     /* blocks per kv head: group / hg */
    int32_t          min_rows;     /* sequences with fewer are left alone */
} slora_attn_geom_t;


static size_t slora_attn_smem(int32_t head_dim);

/* The tensor-core kernel (slora_attention_prefill.cu): -2 for a shape it
 * does not take, which then runs here. */
extern "C" int slora_attention_tc_cuda(uint16_t *out, int64_t ld_out,
    const uint16_t *q, int64_t ld_q, int32_t n_heads, const uint16_t *kv,
    int64_t page_elems, int32_t tokens_per_page, int32_t n_kv_heads,
    int32_t head_dim, const slora_seq_index_t *ix, int32_t max_q_len,
    int32_t min_rows, void *stream);
static int slora_attention_launch(uint16_t *out, int64_t ld_out,
    const uint16_t *q, int64_t ld_q, int32_t n_heads, const uint16_t *kv,
    int64_t page_elems, int32_t tokens_per_page, int32_t n_kv_heads,
    int32_t head_dim, const slora_seq_index_t *ix, int32_t max_q_len,
    int32_t min_rows, void *stream);


static __global__ void __launch_bounds__(SLORA_ATTN_THREADS)
slora_kv_store_kernel(uint16_t *__restrict__ kv, int64_t page_elems,
    int32_t tpp, int32_t kv_dim, const int32_t *__restrict__ qo_indptr,
    const int32_t *__restrict__ seq_pos, const int32_t *__restrict__ kv_indptr,
    const int32_t *__restrict__ kv_indices, const uint16_t *__restrict__ k,
    int64_t ld_k, const uint16_t *__restrict__ v, int64_t ld_v)
{
    int32_t    s, r, t, i;
    uint16_t  *page;

    slora_pdl_enter();

    s = blockIdx.y;
    r = qo_indptr[s] + blockIdx.x;

    if (r >= qo_indptr[s + 1]) {
        return;
    }

    t = seq_pos[s] + blockIdx.x;
    page = kv + (int64_t) kv_indices[kv_indptr[s] + t / tpp] * page_elems;

    for (i = threadIdx.x * SLORA_CUDA_VEC; i < kv_dim;
         i += SLORA_ATTN_THREADS * SLORA_CUDA_VEC)
    {
        *(uint4 *) (page + (int64_t) (t % tpp) * kv_dim + i) =
            *(const uint4 *) (k + (int64_t) r * ld_k + i);
        *(uint4 *) (page + (int64_t) (tpp + t % tpp) * kv_dim + i) =
            *(const uint4 *) (v + (int64_t) r * ld_v + i);
    }
}


static __global__ void __launch_bounds__(SLORA_ATTN_THREADS)
slora_attn_kernel(uint16_t *__restrict__ out, int64_t ld_out,
    const uint16_t *__restrict__ q, int64_t ld_q,
    const uint16_t *__restrict__ kv, slora_attn_geom_t g,
    const int32_t *__restrict__ qo_indptr,
    const int32_t *__restrict__ seq_pos, const int32_t *__restrict__ kv_indptr,
    const int32_t *__restrict__ kv_indices)
{
    extern __shared__ float  sm[];

    __shared__ int32_t  qpos[SLORA_ATTN_NQ], qrow[SLORA_ATTN_NQ],
                        qhead[SLORA_ATTN_NQ];
    __shared__ float    mx[SLORA_ATTN_NQ], sum[SLORA_ATTN_NQ],
                        corr[SLORA_ATTN_NQ];

    int32_t          s, row0, rows, kvh, chunk, nq, hd, kv_dim, ctx, t0, t,
                     qi, i, j, d, e, n, page, ld_ks;
    const int32_t   *pages;
    const uint16_t  *src;
    float           *qs, *os, *ks, *vs, *ss, f[SLORA_CUDA_VEC], acc, m, p, l,
                     qscale;

    slora_pdl_enter();

    s = blockIdx.x;
    hd = g.head_dim;
    kv_dim = g.n_kv_heads * hd;
    kvh = blockIdx.z / g.n_chunks;
    chunk = blockIdx.z % g.n_chunks;
    rows = qo_indptr[s + 1] - qo_indptr[s];
    row0 = blockIdx.y * g.qt;

    if (row0 >= rows || rows < g.min_rows) {
        return;
    }

    nq = g.qt * g.hg;
    ld_ks = hd + 1;
    qs = sm;
    os = qs + SLORA_ATTN_NQ * hd;
    vs = os + SLORA_ATTN_NQ * hd;
    ks = vs + SLORA_ATTN_TKV * hd;
    ss = ks + SLORA_ATTN_TKV * ld_ks;
    pages = kv_indices + kv_indptr[s];
    qscale = rsqrtf((float) hd);

    if (threadIdx.x < nq) {
        qi = threadIdx.x;
        j = chunk * g.hg + qi % g.hg;

        if (row0 + qi / g.hg < rows && j < g.group) {
            qpos[qi] = seq_pos[s] + row0 + qi / g.hg;
            qrow[qi] = qo_indptr[s] + row0 + qi / g.hg;
            qhead[qi] = kvh * g.group + j;

        } else {
            qpos[qi] = -1;
        }

        mx[qi] = -INFINITY;
        sum[qi] = 0.0f;
    }

    __syncthreads();

    for (e = threadIdx.x; e < nq * hd; e += SLORA_ATTN_THREADS) {
        qi = e / hd;
        d = e % hd;
        qs[e] = qpos[qi] < 0
                ? 0.0f
                : slora_bf2f(q[(int64_t) qrow[qi] * ld_q
                               + (int64_t) qhead[qi] * hd + d]) * qscale;
        os[e] = 0.0f;
    }

    ctx = seq_pos[s] + min(rows, row0 + g.qt);

    for (t0 = 0; t0 < ctx; t0 += SLORA_ATTN_TKV) {
        n = min(SLORA_ATTN_TKV, ctx - t0);

        for (e = threadIdx.x; e < SLORA_ATTN_TKV * hd / SLORA_CUDA_VEC;
             e += SLORA_ATTN_THREADS)
        {
            j = e / (hd / SLORA_CUDA_VEC);
            d = (e % (hd / SLORA_CUDA_VEC)) * SLORA_CUDA_VEC;

            if (j < n) {
                t = t0 + j;
                page = pages[t / g.tpp];
                src = kv + (int64_t) page * g.page_elems
                      + (int64_t) (t % g.tpp) * kv_dim + (int64_t) kvh * hd
                      + d;

                slora_ld8(f, src);

#pragma unroll
                for (i = 0; i < SLORA_CUDA_VEC; i++) {
                    ks[j * ld_ks + d + i] = f[i];
                }

                slora_ld8(f, src + (int64_t) g.tpp * kv_dim);

#pragma unroll
                for (i = 0; i < SLORA_CUDA_VEC; i++) {
                    vs[j * hd + d + i] = f[i];
                }

            } else {

#pragma unroll
                for (i = 0; i < SLORA_CUDA_VEC; i++) {
                    ks[j * ld_ks + d + i] = 0.0f;
                    vs[j * hd + d + i] = 0.0f;
                }
            }
        }

        __syncthreads();

        for (e = threadIdx.x; e < nq * SLORA_ATTN_TKV;
             e += SLORA_ATTN_THREADS)
        {
            qi = e / SLORA_ATTN_TKV;
            j = e % SLORA_ATTN_TKV;

            if (qpos[qi] < 0 || t0 + j > qpos[qi]) {
                ss[e] = -INFINITY;
                continue;
            }

            acc = 0.0f;

            for (d = 0; d < hd; d++) {
                acc = fmaf(qs[qi * hd + d], ks[j * ld_ks + d], acc);
            }

            ss[e] = acc;
        }

        __syncthreads();

        if (threadIdx.x < nq) {
            qi = threadIdx.x;
            m = mx[qi];

            for (j = 0; j < SLORA_ATTN_TKV; j++) {
                m = fmaxf(m, ss[qi * SLORA_ATTN_TKV + j]);
            }

            if (m == -INFINITY) {
                corr[qi] = 1.0f;

            } else {
                corr[qi] = expf(mx[qi] - m);
                l = 0.0f;

                for (j = 0; j < SLORA_ATTN_TKV; j++) {
                    p = expf(ss[qi * SLORA_ATTN_TKV + j] - m);
                    ss[qi * SLORA_ATTN_TKV + j] = p;
                    l += p;
                }

                sum[qi] = sum[qi] * corr[qi] + l;
                mx[qi] = m;
            }
        }

        __syncthreads();

        for (e = threadIdx.x; e < nq * hd; e += SLORA_ATTN_THREADS) {
            qi = e / hd;
            d = e % hd;

            if (qpos[qi] < 0 || mx[qi] == -INFINITY) {
                continue;
            }

            acc = os[e] * corr[qi];

#pragma unroll 4
            for (j = 0; j < SLORA_ATTN_TKV; j++) {
                acc = fmaf(ss[qi * SLORA_ATTN_TKV + j], vs[j * hd + d], acc);
            }

            os[e] = acc;
        }

        __syncthreads();
    }

    for (e = threadIdx.x; e < nq * hd; e += SLORA_ATTN_THREADS) {
        qi = e / hd;
        d = e % hd;

        if (qpos[qi] >= 0) {
            out[(int64_t) qrow[qi] * ld_out + (int64_t) qhead[qi] * hd + d] =
                slora_f2bf(os[e] / sum[qi]);
        }
    }
}


extern "C" int
slora_kv_store_cuda(uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, int32_t n_kv_heads, int32_t head_dim,
    const slora_seq_index_t *ix, int32_t max_q_len, const uint16_t *k,
    int64_t ld_k, const uint16_t *v, int64_t ld_v, void *stream)
{
    int32_t  kv_dim;

    if (kv == NULL || k == NULL || v == NULL || ix == NULL
        || tokens_per_page <= 0 || n_kv_heads <= 0 || head_dim <= 0
        || head_dim % SLORA_CUDA_VEC != 0 || max_q_len < 0
        || ix->n_seqs < 0 || ix->n_seqs > 65535)
    {
        return -1;
    }

    kv_dim = n_kv_heads * head_dim;

    if (page_elems < 2 * (int64_t) tokens_per_page * kv_dim
        || page_elems % SLORA_CUDA_VEC != 0 || ld_k < kv_dim
        || ld_v < kv_dim || ld_k % SLORA_CUDA_VEC != 0
        || ld_v % SLORA_CUDA_VEC != 0 || !slora_cuda_aligned(kv)
        || !slora_cuda_aligned(k) || !slora_cuda_aligned(v)
        || (ix->n_seqs > 0
            && (ix->qo_indptr == NULL || ix->seq_pos == NULL
                || ix->kv_indptr == NULL || ix->kv_indices == NULL)))
    {
        return -1;
    }

    if (ix->n_seqs == 0 || max_q_len == 0) {
        return 0;
    }

    slora_launch(slora_kv_store_kernel, dim3(max_q_len, ix->n_seqs),
        SLORA_ATTN_THREADS, 0, (cudaStream_t) stream, kv, page_elems,
        tokens_per_page, kv_dim, ix->qo_indptr, ix->seq_pos, ix->kv_indptr,
        ix->kv_indices, k, ld_k, v, ld_v);

    return slora_cuda_launched();
}


static int
slora_attention_launch(uint16_t *out, int64_t ld_out, const uint16_t *q,
    int64_t ld_q, int32_t n_heads, const uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, int32_t n_kv_heads, int32_t head_dim,
    const slora_seq_index_t *ix, int32_t max_q_len, int32_t min_rows,
    void *stream)
{
    slora_attn_geom_t  g;
    size_t             smem;
    dim3               grid;
    int                rc;

    if (out == NULL || q == NULL || kv == NULL || ix == NULL
        || tokens_per_page <= 0 || n_kv_heads <= 0 || head_dim <= 0
        || head_dim % SLORA_CUDA_VEC != 0 || head_dim > SLORA_ATTN_MAX_HD
        || n_heads <= 0 || n_heads % n_kv_heads != 0 || max_q_len < 0
        || page_elems < 2 * (int64_t) tokens_per_page * n_kv_heads * head_dim
        || page_elems % SLORA_CUDA_VEC != 0
        || ld_q < (int64_t) n_heads * head_dim
        || ld_out < (int64_t) n_heads * head_dim || !slora_cuda_aligned(kv)
        || ix->n_seqs < 0
        || (ix->n_seqs > 0
            && (ix->qo_indptr == NULL || ix->seq_pos == NULL
                || ix->kv_indptr == NULL || ix->kv_indices == NULL)))
    {
        return -1;
    }

    if (ix->n_seqs == 0 || max_q_len == 0) {
        return 0;
    }

    rc = slora_attention_tc_cuda(out, ld_out, q, ld_q, n_heads, kv,
                                 page_elems, tokens_per_page, n_kv_heads,
                                 head_dim, ix, max_q_len, min_rows, stream);
    if (rc != -2) {
        return rc;
    }

    g.page_elems = page_elems;
    g.tpp = tokens_per_page;
    g.n_kv_heads = n_kv_heads;
    g.head_dim = head_dim;
    g.group = n_heads / n_kv_heads;
    g.hg = g.group < SLORA_ATTN_NQ ? g.group : SLORA_ATTN_NQ;
    g.n_chunks = (g.group + g.hg - 1) / g.hg;
    g.min_rows = min_rows;
    g.qt = SLORA_ATTN_NQ / g.hg < max_q_len ? SLORA_ATTN_NQ / g.hg
                                              : max_q_len;

    grid = dim3(ix->n_seqs, (max_q_len + g.qt - 1) / g.qt,
                n_kv_heads * g.n_chunks);

    if (grid.y > 65535 || grid.z > 65535) {
        return -1;
    }

    smem = slora_attn_smem(head_dim);

    if (smem > 48 * 1024
        && cudaFuncSetAttribute(slora_attn_kernel,
                                cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int) smem)
           != cudaSuccess)
    {
        return -1;
    }

    slora_launch(slora_attn_kernel, grid, SLORA_ATTN_THREADS, smem,
        (cudaStream_t) stream, out, ld_out, q, ld_q, kv, g,
        ix->qo_indptr, ix->seq_pos, ix->kv_indptr, ix->kv_indices);

    return slora_cuda_launched();
}


extern "C" int
slora_attention_cuda(uint16_t *out, int64_t ld_out, const uint16_t *q,
    int64_t ld_q, int32_t n_heads, const uint16_t *kv, int64_t page_elems,
    int32_t tokens_per_page, int32_t n_kv_heads, int32_t head_dim,
    const slora_seq_index_t *ix, int32_t max_q_len, void *stream)
{
    return slora_attention_launch(out, ld_out, q, ld_q, n_heads, kv,
                                  page_elems, tokens_per_page, n_kv_heads,
                                  head_dim, ix, max_q_len, 1, stream);
}


extern "C" int
slora_attention_prefill_cuda(uint16_t *out, int64_t ld_out,
    const uint16_t *q, int64_t ld_q, int32_t n_heads, const uint16_t *kv,
    int64_t page_elems, int32_t tokens_per_page, int32_t n_kv_heads,
    int32_t head_dim, const slora_seq_index_t *ix, int32_t max_q_len,
    void *stream)
{
    return slora_attention_launch(out, ld_out, q, ld_q, n_heads, kv,
                                  page_elems, tokens_per_page, n_kv_heads,
                                  head_dim, ix, max_q_len, 2, stream);
}


/* qs, os: [NQ][hd]; vs: [TKV][hd]; ks: [TKV][hd + 1]; ss: [NQ][TKV]. */

static size_t
slora_attn_smem(int32_t head_dim)
{
    return sizeof(float)
           * ((size_t) 2 * SLORA_ATTN_NQ * head_dim
              + (size_t) SLORA_ATTN_TKV * head_dim
              + (size_t) SLORA_ATTN_TKV * (head_dim + 1)
              + (size_t) SLORA_ATTN_NQ * SLORA_ATTN_TKV);
}
