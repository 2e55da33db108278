/*
 * slora_lora.cu: LoRA shrink and expand over heterogeneous segments on
 * the GPU, the device twin of slora_lora_cpu.c: MBGMV for decode
 * segments (a token or a few) and MBGMM for prefill segments.
 *
 * The one idea: adapter rows are gathered where they sit in the arena,
 * by the row offsets of the segment, and each thread block owns one
 * segment's slice of the output, so one launch serves any mix of ranks
 * and blocks past a segment's rank leave at once. MBGMV gives each warp
 * a quarter of an A row (shrink) or one rank stripe of B (expand), the
 * partial sums meeting in shared memory, reading 16 bytes per lane and
 * a segment's tokens at once; MBGMM tiles tokens x
 * rank (shrink) and tokens x columns (expand) through shared memory so
 * a gathered row is read once per 64 tokens. Sums are fp32; v is fp32.
 * Projections that read the same x (q, k and v) share a launch: the
 * grid's z picks the projection, so a decode step pays one launch
 * latency for the three, not three.
 *
 * A decode expand can also write fp32 deltas instead of adding into y
 * (slora_lora_expand_delta_cuda): it then needs nothing the base GEMM
 * writes and runs beside it, and the kernel that reads y next adds them.
 *
 * A step that mixes prefill chunks with decode tokens takes the MBGMM
 * kernels, whose grid runs over work tiles, not (segment, tile) pairs:
 * a segment of up to SLORA_LORA_GMV_MAX_SEG tokens is one tile and its
 * block runs the MBGMV body, a longer one ceil(len / 64) tiles. So 240
 * decode tokens of 240 adapters beside 16 prompts cost what they cost in
 * a decode step, not 240 mostly empty 64-token tiles each.
 */

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_lora.h"
}


#define SLORA_GMV_MAX_SEG    SLORA_LORA_GMV_MAX_SEG
#define SLORA_GMV_EX_WARPS   8     /* rank stripes per expand block */
#define SLORA_GMV_SH_SLICES  4     /* warps a decode A row is split over */
#define SLORA_GMV_SH_ROWS    (SLORA_GMV_EX_WARPS / SLORA_GMV_SH_SLICES)
                                   /* A rows a decode shrink block */
#define SLORA_GMV_TOKENS     2     /* a decode kernel's tokens at once */
#define SLORA_GMV_EX_COLS    (SLORA_CUDA_WARP * SLORA_CUDA_VEC)
#define SLORA_GMM_TM         64    /* tokens per MBGMM tile */
#define SLORA_GMM_TN         32    /* ranks per shrink tile */
#define SLORA_GMM_TC         64    /* columns per expand tile */
#define SLORA_GMM_TK         32    /* reduction step */
#define SLORA_GMM_THREADS    256
#define SLORA_LORA_MAX_RANK  1024
#define SLORA_GMM_MIN_BLOCKS 264   /* two per SM of an H100/H200 */
#define SLORA_GMM_SH_BLOCKS  3     /* per SM: 85 registers, no spills */


/*
 * What differs between the projections of one launch, by value; device
 * code reads a field through slora_pj(), whose constant indices keep the
 * struct in the parameter bank (a computed index would copy it to local
 * memory in every thread).
 */
typedef struct {
    const int32_t         *rank[SLORA_LORA_MAX_PROJ];
    const int64_t *const  *rows[SLORA_LORA_MAX_PROJ];   /* A or B^T */
    uint16_t              *y[SLORA_LORA_MAX_PROJ];      /* expand only */
    float                 *d[SLORA_LORA_MAX_PROJ];      /* or its delta */
    int32_t                out_dim[SLORA_LORA_MAX_PROJ];
} slora_lora_proj_t;

static_assert(SLORA_LORA_MAX_PROJ == 3, "slora_pj() picks among three");

#define slora_pj(pj, field, k)                                                \
    ((k) == 0 ? (pj).field[0] : (k) == 1 ? (pj).field[1] : (pj).field[2])


static int slora_lora_args(const slora_lora_segs_t *sg, int n_proj,
    int32_t max_rank, int32_t max_seg_len);
static int slora_lora_expand_launch(uint16_t *const *y, float *const *d,
    int64_t ld, const int32_t *out_dim, const float *v, int64_t ld_v,
    int64_t v_stride, const uint16_t *base, const slora_lora_segs_t *sg,
    int n_proj, int32_t max_rank, int32_t max_seg_len, void *stream);

static_assert(SLORA_GMV_EX_WARPS * SLORA_CUDA_WARP == SLORA_GMM_THREADS
              && SLORA_GMV_EX_COLS % SLORA_GMM_TC == 0,
              "an MBGMM expand block runs the MBGMV body over whole tiles");


/*
 * sum[m] = x[t + m, kb:ke] . a[kb:ke] for the T tokens from t (past t_end
 * the last token again): one warp, 16 bytes a lane, each chunk of a read
 * once for the T tokens; every lane gets the sums. Each token's sum runs
 * in the same order whatever T.
 */

template <int T>
static __device__ __forceinline__ void
slora_gmv_dot(float (&sum)[T], const uint16_t *x, int64_t ld_x,
    const uint16_t *a, int32_t kb, int32_t ke, int32_t t, int32_t t_end,
    int32_t lane)
{
    int32_t          i, e, m;
    const uint16_t  *xt[T];
    float            fa[SLORA_CUDA_VEC], fx[SLORA_CUDA_VEC];

#pragma unroll
    for (m = 0; m < T; m++) {
        xt[m] = x + (int64_t) min(t + m, t_end - 1) * ld_x;
        sum[m] = 0.0f;
    }

#pragma unroll 4
    for (i = kb + lane * SLORA_CUDA_VEC; i < ke;
         i += SLORA_CUDA_WARP * SLORA_CUDA_VEC)
    {
        slora_ld8(fa, a + i);

#pragma unroll
        for (m = 0; m < T; m++) {
            slora_ld8(fx, xt[m] + i);

#pragma unroll
            for (e = 0; e < SLORA_CUDA_VEC; e++) {
                sum[m] = fmaf(fa[e], fx[e], sum[m]);
            }
        }
    }

#pragma unroll
    for (m = 0; m < T; m++) {
        sum[m] = slora_warp_sum(sum[m]);
    }
}


/*
 * v[t, j] = x[t, kb:ke] . A row j[kb:ke] for the tokens [t0, t1) of a
 * short segment: one warp; lane 0 stores the sums (a slice's partials
 * when the reduction is split over blocks: the MBGMM kernel's short
 * segments).
 */

static __device__ __forceinline__ void
slora_gmv_shrink_row(float *v, int64_t ld_v, const uint16_t *x, int64_t ld_x,
    const uint16_t *a, int32_t kb, int32_t ke, int32_t t0, int32_t t1,
    int32_t j, int32_t lane)
{
    int32_t  t;
    float    sum[1];

    for (t = t0; t < t1; t++) {
        slora_gmv_dot<1>(sum, x, ld_x, a, kb, ke, t, t1, lane);

        if (lane == 0) {
            v[(int64_t) t * ld_v + j] = sum[0];
        }
    }
}


/*
 * v[t, j] = x[t,:] . A row j for the tokens [t0, t1) of a short segment
 * and its A rows j0 .. j0 + SLORA_GMV_SH_ROWS - 1 below r, on a block of
 * 8 warps: warp w takes row j0 + w / 4 and slice w % 4 of its K (whole
 * rounds of the lanes' 16 bytes), T tokens a pass, so a row's loads are
 * in flight together (at 4096 a warp's four rounds, one wait on memory
 * where a warp the row waited four, and twice that for a segment of two
 * tokens); the slices' sums meet in part and are added in slice order,
 * so v is the same bits run after run. A decode shrink and expand of
 * one rank-16 projection 4096 wide took 9.6 us where a warp a row took
 * 14.2 at batch 1, 13.3 where 17.0 at 64 distinct adapters; at 256, 25.4
 * where 23.7 (bench/RESULTS.md, 2026-12-01 14:33-14:59). Every thread of the
 * block calls it (it synchronises the block).
 */

template <int T>
using slora_gmv_slices_t =
    float[SLORA_GMV_SH_ROWS][SLORA_GMV_SH_SLICES][T];

template <int T>
static __device__ __forceinline__ void
slora_gmv_shrink_rows(float *v, int64_t ld_v, const uint16_t *x,
    int64_t ld_x, const uint16_t *base, const int64_t *rows, int32_t r,
    int32_t j0, int32_t in_dim, int32_t t0, int32_t t1,
    slora_gmv_slices_t<T> &part)
{
    int32_t  warp, lane, jr, q, j, per, kb, ke, t, m, w, row, tok;
    float    sum, sums[T];

    warp = threadIdx.x / SLORA_CUDA_WARP;
    lane = threadIdx.x % SLORA_CUDA_WARP;
    jr = warp / SLORA_GMV_SH_SLICES;
    q = warp % SLORA_GMV_SH_SLICES;
    j = j0 + jr;

    /* the slice: whole rounds of 256 elements, the last one short */
    per = (in_dim + SLORA_GMV_EX_COLS - 1) / SLORA_GMV_EX_COLS;
    per = (per + SLORA_GMV_SH_SLICES - 1) / SLORA_GMV_SH_SLICES
          * SLORA_GMV_EX_COLS;
    kb = min(in_dim, q * per);
    ke = min(in_dim, kb + per);

    for (t = t0; t < t1; t += T) {
        if (j < r) {
            slora_gmv_dot<T>(sums, x, ld_x, base + rows[j], kb, ke, t, t1,
                             lane);

            if (lane == 0) {

#pragma unroll
                for (m = 0; m < T; m++) {
                    part[jr][q][m] = sums[m];
                }
            }
        }

        __syncthreads();

        /* a thread a (row, token) adds the row's slices up, in order */
        if ((int32_t) threadIdx.x < SLORA_GMV_SH_ROWS * T) {
            row = threadIdx.x / T;
            tok = threadIdx.x % T;

            if (j0 + row < r && t + tok < t1) {
                sum = 0.0f;

                for (w = 0; w < SLORA_GMV_SH_SLICES; w++) {
                    sum += part[row][w][tok];
                }

                v[(int64_t) (t + tok) * ld_v + j0 + row] = sum;
            }
        }

        __syncthreads();
    }
}


/* v[t, j] = x[t,:] . A_s[j,:]; a block per (segment, SLORA_GMV_SH_ROWS A
 * rows, projection), T of a segment's tokens a pass. */

template <int T>
static __global__ void
__launch_bounds__(SLORA_GMV_EX_WARPS * SLORA_CUDA_WARP)
slora_gmv_shrink(float *__restrict__ v, int64_t ld_v, int64_t v_stride,
    const uint16_t *__restrict__ x, int64_t ld_x,
    const uint16_t *__restrict__ base, int32_t in_dim,
    const int32_t *__restrict__ indptr, const slora_lora_proj_t pj)
{
    __shared__ slora_gmv_slices_t<T>  part;

    int32_t         s, j0, k, r;
    const int64_t  *rows;

    /* the step's tables and the A rows, which no kernel of the step
     * writes, are read and asked into L2 before the wait on the kernel
     * before (slora_prefetch_l2) */
    s = blockIdx.x;
    k = blockIdx.z;
    j0 = blockIdx.y * SLORA_GMV_SH_ROWS;
    r = slora_pj(pj, rank, k)[s];

    if (j0 >= r) {
        return;
    }

    rows = slora_pj(pj, rows, k)[s];

    if ((int32_t) threadIdx.x < SLORA_GMV_SH_ROWS
        && j0 + (int32_t) threadIdx.x < r)
    {
        slora_prefetch_l2(base + rows[j0 + threadIdx.x],
                          (uint32_t) in_dim * sizeof(uint16_t));
    }

    slora_pdl_enter();

    slora_gmv_shrink_rows<T>(v + k * v_stride, ld_v, x, ld_x, base, rows, r,
                             j0, in_dim, indptr[s], indptr[s + 1], part);
}


/*
 * y[t, c] += scale * sum_j v[t, j] B[j, c] for the tokens [t0, t1) of a
 * short segment and one stripe of 256 columns from c0, T tokens at a
 * time: warp w sums ranks w, w + 8, ... for the T tokens at once (a B
 * row is read once for them), the warps' partial sums meet in part, and
 * each thread adds its column's sums to y, whose values it loaded first
 * (they wait on nothing but the GEMM before); with D, it writes them to
 * the fp32 delta dl instead (same stride), and y is not touched: what
 * the consumer adds to y is then y's sum to the bit. The decode kernel takes
 * two at once (a batch of 64 over 32 adapters has segments of 2, and
 * more would cost it blocks an SM); the MBGMM kernel, whose registers
 * and shared memory the body shares, one. Every thread of the 256 must
 * call it (it synchronises the block).
 */

template <int T>
using slora_gmv_part_t =
    float4[T][SLORA_GMV_EX_WARPS][SLORA_GMV_EX_COLS / 4];

template <int T, bool D>
static __device__ __forceinline__ void
slora_gmv_expand_cols(uint16_t *y, float *dl, int64_t ld_y, int32_t out_dim,
    const float *v, int64_t ld_v, const uint16_t *base,
    const int64_t *rows, int32_t r, float sc, int32_t t0, int32_t t1,
    int32_t c0, slora_gmv_part_t<T> &part)
{
    int32_t    t, n, i, j, e, c, cy, lane, warp, w;
    float      acc[T][SLORA_CUDA_VEC], fb[SLORA_CUDA_VEC], vj, sum;
    uint16_t   yv[T];

    lane = threadIdx.x % SLORA_CUDA_WARP;
    warp = threadIdx.x / SLORA_CUDA_WARP;
    c = c0 + lane * SLORA_CUDA_VEC;
    cy = c0 + threadIdx.x;

    for (t = t0; t < t1; t += T) {
        n = min(T, t1 - t);

#pragma unroll
        for (i = 0; i < T; i++) {
            yv[i] = !D && i < n && cy < out_dim
                    ? y[(int64_t) (t + i) * ld_y + cy] : 0;

#pragma unroll
            for (e = 0; e < SLORA_CUDA_VEC; e++) {
                acc[i][e] = 0.0f;
            }
        }

        if (c < out_dim) {

#pragma unroll 2
            for (j = warp; j < r; j += SLORA_GMV_EX_WARPS) {
                slora_ld8(fb, base + rows[j] + c);

#pragma unroll
                for (i = 0; i < T; i++) {
                    vj = i < n ? v[(int64_t) (t + i) * ld_v + j] : 0.0f;

#pragma unroll
                    for (e = 0; e < SLORA_CUDA_VEC; e++) {
                        acc[i][e] = fmaf(vj, fb[e], acc[i][e]);
                    }
                }
            }
        }

#pragma unroll
        for (i = 0; i < T; i++) {
            part[i][warp][2 * lane] = make_float4(acc[i][0], acc[i][1],
                                                  acc[i][2], acc[i][3]);
            part[i][warp][2 * lane + 1] = make_float4(acc[i][4], acc[i][5],
                                                      acc[i][6], acc[i][7]);
        }

        __syncthreads();

        if (cy < out_dim) {

#pragma unroll
            for (i = 0; i < T; i++) {
                if (i < n) {
                    sum = 0.0f;

                    for (w = 0; w < SLORA_GMV_EX_WARPS; w++) {
                        sum += ((const float *) part[i][w])[threadIdx.x];
                    }

                    /* rounded product, then sum (no fused multiply-add):
                     * the delta's consumer adds the same two roundings */
                    if (D) {
                        dl[(int64_t) (t + i) * ld_y + cy] = __fmul_rn(sc, sum);

                    } else {
                        y[(int64_t) (t + i) * ld_y + cy] =
                            slora_f2bf(__fadd_rn(slora_bf2f(yv[i]),
                                                 __fmul_rn(sc, sum)));
                    }
                }
            }
        }

        __syncthreads();
    }
}


/* The decode expand: one block per (segment, 256 columns, projection),
 * T of a segment's tokens at a time (1 where no segment has more, which
 * keeps the registers of 6 blocks an SM; 2 takes 48 and 5 blocks). With
 * D it writes the delta, zeros where the segment has no adapter. */

template <int T, bool D>
static __global__ void
__launch_bounds__(SLORA_GMV_EX_WARPS * SLORA_CUDA_WARP, T == 1 ? 6 : 5)
slora_gmv_expand(int64_t ld_y, const float *__restrict__ v, int64_t ld_v,
    int64_t v_stride, const uint16_t *__restrict__ base,
    const int32_t *__restrict__ indptr, const float *__restrict__ scale,
    const slora_lora_proj_t pj)
{
    __shared__ slora_gmv_part_t<T>  part;

    int32_t         s, r, c0, k, out_dim, t, cy;
    float          *dl;
    const int64_t  *rows;

    /* the step's tables and the block's stripe of the B rows, which no
     * kernel of the step writes, are read and asked into L2 before the
     * wait on the kernel before; v, y and the delta only after it */
    s = blockIdx.x;
    k = blockIdx.z;
    r = slora_pj(pj, rank, k)[s];
    out_dim = slora_pj(pj, out_dim, k);
    c0 = blockIdx.y * SLORA_GMV_EX_COLS;
    dl = D ? slora_pj(pj, d, k) : NULL;
    rows = slora_pj(pj, rows, k)[s];

    if (c0 >= out_dim) {
        return;
    }

    if ((int32_t) threadIdx.x < r) {
        slora_prefetch_l2(base + rows[threadIdx.x] + c0,
                          (uint32_t) min(SLORA_GMV_EX_COLS, out_dim - c0)
                          * sizeof(uint16_t));
    }

    slora_pdl_enter();

    if (r == 0) {
        cy = c0 + threadIdx.x;

        for (t = indptr[s]; D && t < indptr[s + 1] && cy < out_dim; t++) {
            dl[(int64_t) t * ld_y + cy] = 0.0f;
        }

        return;
    }

    slora_gmv_expand_cols<T, D>(slora_pj(pj, y, k), dl, ld_y, out_dim,
                                v + k * v_stride, ld_v, base, rows, r,
                                scale[s], indptr[s], indptr[s + 1], c0,
                                part);
}


/*
 * The segment that MBGMM work tile b falls in: the last s with
 * tiles[s] <= b (tiles is the prefix count, slora_lora_tiles_cuda).
 */

static __device__ __forceinline__ int32_t
slora_tile_seg(const int32_t *__restrict__ tiles, int32_t n_segs, int32_t b)
{
    int32_t  lo, hi, mid;

    lo = 0;
    hi = n_segs - 1;

    while (lo < hi) {
        mid = (lo + hi + 1) / 2;

        if (tiles[mid] <= b) {
            lo = mid;

        } else {
            hi = mid - 1;
        }
    }

    return lo;
}


/*
 * v[t0 + m, n0 + n] for a tile of 64 tokens x 32 ranks on the tensor
 * cores: each warp a 16 x 16 block of it, fed straight from 16-byte
 * loads of x and of the gathered A rows (slora_mma_x2), fp32 sums as
 * before, bf16 inputs as before, only the order of the sums changed.
 * blockIdx.x is the work tile (the segment's by tiles), blockIdx.z
 * (projection, slice of k, rank tile), and block z / n_rtiles of v is
 * where it writes; with k_chunk < in_dim the launcher passes its work
 * for v, zeroed, a block a (projection, slice), which
 * slora_lora_split_sum adds up (split-K: a few long segments still
 * fill the GPU, and the sum's order is fixed). A tile of at most 4
 * tokens (a short segment's, or a long one's last) gives its 8 warps the
 * tile's 32 A rows, MBGMV's way.
 */

static __global__ void
__launch_bounds__(SLORA_GMM_THREADS, SLORA_GMM_SH_BLOCKS)
slora_gmm_shrink(float *__restrict__ v, int64_t ld_v, int64_t v_stride,
    const uint16_t *__restrict__ x, int64_t ld_x,
    const uint16_t *__restrict__ base, int32_t in_dim,
    const int32_t *__restrict__ indptr, const int32_t *__restrict__ tiles,
    int32_t n_segs, const slora_lora_proj_t pj, int32_t n_rtiles,
    int32_t n_split, int32_t k_chunk)
{
    __shared__ float  half[SLORA_GMM_THREADS / SLORA_CUDA_WARP / 2][8]
                          [SLORA_CUDA_WARP];

    int32_t          s, r, t0, t1, n0, tid, warp, lane, g, tq, m0, j0, jj,
                     k, kb, ke, kh, p, i, tok, rk, pair;
    const int64_t   *rows;
    const uint16_t  *xg, *xh, *ag[2];
    uint4            xl, xu, av, z;
    float            acc[2][4];

    slora_pdl_enter();

    s = slora_tile_seg(tiles, n_segs, blockIdx.x);
    p = blockIdx.z / (n_rtiles * n_split);
    r = slora_pj(pj, rank, p)[s];
    t0 = indptr[s] + (blockIdx.x - tiles[s]) * SLORA_GMM_TM;
    t1 = indptr[s + 1];
    n0 = (blockIdx.z % n_rtiles) * SLORA_GMM_TN;
    kb = (blockIdx.z / n_rtiles % n_split) * k_chunk;
    ke = min(in_dim, kb + k_chunk);

    if (r == 0 || t0 >= t1 || n0 >= r) {
        return;
    }

    /* block (projection, slice) of v: with a split, the launcher's v is
     * the partials' scratch, a block for each pair */
    v += (int64_t) (blockIdx.z / n_rtiles) * v_stride;
    tid = threadIdx.x;
    rows = slora_pj(pj, rows, p)[s];

    if (t1 - t0 <= SLORA_GMV_MAX_SEG) {
        for (i = n0 + tid / SLORA_CUDA_WARP; i < min(r, n0 + SLORA_GMM_TN);
             i += SLORA_GMM_THREADS / SLORA_CUDA_WARP)
        {
            slora_gmv_shrink_row(v, ld_v, x, ld_x, base + rows[i], kb, ke,
                                 t0, t1, i, tid % SLORA_CUDA_WARP);
        }

        return;
    }

    /* on the tensor cores: warp w takes the tile's tokens 16 (w / 2) ..
     * + 15 (mma's A: x rows) and ranks 16 (w % 2) .. + 15 (its B: two
     * columns of 8 A rows); lane (g, tq) loads x rows g and g + 8 and A
     * rows 8 jj + g, 16 bytes at k = 8 tq of each 32-wide chunk
     * (slora_mma_x2); rows past the segment or the rank read zeros.
     * Where the tile's ranks end within its first 16 (rank 16 or 8, the
     * common ones), the odd warps would have nothing to do: they take the
     * second half of the slice's k for their even partner's ranks
     * instead, and the pair's sums meet in shared memory, the first half
     * first (so the bits are the same run after run) */
    warp = tid / SLORA_CUDA_WARP;
    lane = tid % SLORA_CUDA_WARP;
    g = lane / 4;
    tq = lane % 4;
    m0 = t0 + 16 * (warp / 2);
    pair = r - n0 <= 16;
    j0 = pair ? n0 : n0 + 16 * (warp % 2);

    if (!pair && (m0 >= t1 || j0 >= r)) {
        return;
    }

    if (pair) {
        kh = kb + (ke - kb) / (2 * SLORA_GMM_TK) * SLORA_GMM_TK;
        kb = warp % 2 == 0 ? kb : kh;
        ke = warp % 2 == 0 ? kh : ke;
    }

    xg = m0 + g < t1 ? x + (int64_t) (m0 + g) * ld_x : NULL;
    xh = m0 + g + 8 < t1 ? x + (int64_t) (m0 + g + 8) * ld_x : NULL;

#pragma unroll
    for (jj = 0; jj < 2; jj++) {
        ag[jj] = j0 + 8 * jj + g < r ? base + rows[j0 + 8 * jj + g] : NULL;
        acc[jj][0] = acc[jj][1] = acc[jj][2] = acc[jj][3] = 0.0f;
    }

    z = make_uint4(0, 0, 0, 0);

#pragma unroll 2
    for (k = kb + 8 * tq; k < ke + 8 * tq; k += SLORA_GMM_TK) {
        xl = xg != NULL && k < ke ? __ldg((const uint4 *) (xg + k)) : z;
        xu = xh != NULL && k < ke ? __ldg((const uint4 *) (xh + k)) : z;

#pragma unroll
        for (jj = 0; jj < 2; jj++) {
            av = ag[jj] != NULL && k < ke ? __ldg((const uint4 *) (ag[jj] + k))
                                          : z;
            slora_mma_x2(acc[jj], xl, xu, av);
        }
    }

    if (pair) {
        if (warp % 2 == 1) {
#pragma unroll
            for (jj = 0; jj < 2; jj++) {
#pragma unroll
                for (i = 0; i < 4; i++) {
                    half[warp / 2][jj * 4 + i][lane] = acc[jj][i];
                }
            }
        }

        __syncthreads();

        if (warp % 2 == 1 || m0 >= t1) {
            return;
        }

#pragma unroll
        for (jj = 0; jj < 2; jj++) {
#pragma unroll
            for (i = 0; i < 4; i++) {
                acc[jj][i] += half[warp / 2][jj * 4 + i][lane];
            }
        }
    }

    /* c0, c1: token g, ranks 2 tq, + 1 of each 8; c2, c3: token g + 8 */
#pragma unroll
    for (jj = 0; jj < 2; jj++) {
#pragma unroll
        for (i = 0; i < 4; i++) {
            tok = m0 + g + 8 * (i / 2);
            rk = j0 + 8 * jj + 2 * tq + i % 2;

            if (tok < t1 && rk < r) {
                v[(int64_t) tok * ld_v + rk] = acc[jj][i];
            }
        }
    }
}


/*
 * y[t0 + m, c0 + c] += scale * v . B_s for a tile of 64 tokens x 64
 * columns on the tensor cores; the rank is the reduction, 32 at a time:
 * the block stages those 32 B rows' 64 columns in shared memory,
 * transposed (bt[column][rank], so a lane reads its B fragment's two
 * ranks as one word), and each warp takes 16 tokens x 32 columns (four
 * mma tiles) with v's fp32 rows split into a bf16 part and a bf16
 * remainder, two mmas each: v to about 16 bits where fp32 FMAs had 24,
 * far below y's own bf16 rounding. blockIdx.x is the work tile,
 * blockIdx.z (projection, column tile). A tile of at most 4 tokens runs
 * the MBGMV body over 256 columns in the blocks of every fourth column
 * tile; the other three leave.
 */

#define SLORA_GMM_BT_LD  (SLORA_GMM_TK + 8)   /* bt's row: no bank clash */

static_assert(sizeof(uint16_t) * SLORA_GMM_TC * SLORA_GMM_BT_LD
              <= sizeof(slora_gmv_part_t<1>),
              "the transposed B tile fits in the MBGMV body's smem");


/* v[row, j] and v[row, j + 1] as the two bf16 of a word (hi), and what
 * their rounding left (lo); zeros past the rank or for no row */
static __device__ __forceinline__ void
slora_v_pair(uint32_t *hi, uint32_t *lo, const float *__restrict__ row,
    int32_t j, int32_t r)
{
    float           f0, f1;
    __nv_bfloat162  h, l;

    f0 = row != NULL && j < r ? row[j] : 0.0f;
    f1 = row != NULL && j + 1 < r ? row[j + 1] : 0.0f;
    h = __floats2bfloat162_rn(f0, f1);
    l = __floats2bfloat162_rn(f0 - __low2float(h), f1 - __high2float(h));
    *hi = *(uint32_t *) &h;
    *lo = *(uint32_t *) &l;
}


static __global__ void __launch_bounds__(SLORA_GMM_THREADS)
slora_gmm_expand(int64_t ld_y, const float *__restrict__ v, int64_t ld_v,
    int64_t v_stride, const uint16_t *__restrict__ base,
    const int32_t *__restrict__ indptr, const int32_t *__restrict__ tiles,
    int32_t n_segs, const float *__restrict__ scale,
    const slora_lora_proj_t pj, int32_t n_ctiles)
{
    __shared__ __align__(16) slora_gmv_part_t<1>  sm;

    int32_t          s, r, t0, t1, c0, tid, warp, lane, g, tq, m0, cb, jb,
                     cc, j0, kk, n, e, p, out_dim, tok, col, half;
    const int64_t   *rows;
    const float     *vg, *vh;
    uint16_t        *bt, *h, *yr[2];
    uint32_t         ahi[4], alo[4], b0, b1, u, uw[4][2];
    uint4            bv;
    float            acc[4][4], sc;

    slora_pdl_enter();

    s = slora_tile_seg(tiles, n_segs, blockIdx.x);
    p = blockIdx.z / n_ctiles;
    r = slora_pj(pj, rank, p)[s];
    out_dim = slora_pj(pj, out_dim, p);
    t0 = indptr[s] + (blockIdx.x - tiles[s]) * SLORA_GMM_TM;
    t1 = indptr[s + 1];
    c0 = (blockIdx.z % n_ctiles) * SLORA_GMM_TC;

    if (r == 0 || t0 >= t1 || c0 >= out_dim) {
        return;
    }

    rows = slora_pj(pj, rows, p)[s];
    v += p * v_stride;

    if (t1 - t0 <= SLORA_GMV_MAX_SEG) {
        if (c0 % SLORA_GMV_EX_COLS == 0) {
            slora_gmv_expand_cols<1, false>(slora_pj(pj, y, p), NULL, ld_y,
                                            out_dim, v, ld_v, base, rows, r,
                                            scale[s], t0, t1, c0, sm);
        }

        return;
    }

    tid = threadIdx.x;
    warp = tid / SLORA_CUDA_WARP;
    lane = tid % SLORA_CUDA_WARP;
    g = lane / 4;
    tq = lane % 4;
    m0 = t0 + 16 * (warp / 2);
    cb = 32 * (warp % 2);
    jb = tid / 8;
    cc = (tid % 8) * SLORA_CUDA_VEC;
    bt = (uint16_t *) &sm;

    vg = m0 + g < t1 ? v + (int64_t) (m0 + g) * ld_v : NULL;
    vh = m0 + g + 8 < t1 ? v + (int64_t) (m0 + g + 8) * ld_v : NULL;

#pragma unroll
    for (n = 0; n < 4; n++) {
        acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
    }

    for (j0 = 0; j0 < r; j0 += SLORA_GMM_TK) {

        /* B row j0 + jb, columns c0 + cc .. + 7, into bt[column][rank] */
        bv = j0 + jb < r && c0 + cc < out_dim
             ? *(const uint4 *) (base + rows[j0 + jb] + c0 + cc)
             : make_uint4(0, 0, 0, 0);
        h = (uint16_t *) &bv;

#pragma unroll
        for (e = 0; e < SLORA_CUDA_VEC; e++) {
            bt[(cc + e) * SLORA_GMM_BT_LD + jb] = h[e];
        }

        __syncthreads();

#pragma unroll
        for (kk = 0; kk < SLORA_GMM_TK; kk += 16) {
            slora_v_pair(&ahi[0], &alo[0], vg, j0 + kk + 2 * tq, r);
            slora_v_pair(&ahi[1], &alo[1], vh, j0 + kk + 2 * tq, r);
            slora_v_pair(&ahi[2], &alo[2], vg, j0 + kk + 2 * tq + 8, r);
            slora_v_pair(&ahi[3], &alo[3], vh, j0 + kk + 2 * tq + 8, r);

#pragma unroll
            for (n = 0; n < 4; n++) {
                col = cb + 8 * n + g;
                b0 = *(const uint32_t *) &bt[col * SLORA_GMM_BT_LD + kk
                                             + 2 * tq];
                b1 = *(const uint32_t *) &bt[col * SLORA_GMM_BT_LD + kk
                                             + 2 * tq + 8];
                slora_mma(acc[n], ahi[0], ahi[1], ahi[2], ahi[3], b0, b1);
                slora_mma(acc[n], alo[0], alo[1], alo[2], alo[3], b0, b1);
            }
        }

        __syncthreads();
    }

    /* c0, c1: token g, columns 2 tq, + 1 of each 8; c2, c3: token g + 8.
     * The eight words of y are loaded before any is stored, so their
     * loads are in flight together, not one memory latency each */
    sc = scale[s];
    col = c0 + cb + 2 * tq;

#pragma unroll
    for (half = 0; half < 2; half++) {
        tok = m0 + g + 8 * half;
        yr[half] = tok < t1 ? slora_pj(pj, y, p) + (int64_t) tok * ld_y + col
                            : NULL;

#pragma unroll
        for (n = 0; n < 4; n++) {
            uw[n][half] = yr[half] != NULL && col + 8 * n < out_dim
                          ? *(const uint32_t *) (yr[half] + 8 * n) : 0;
        }
    }

#pragma unroll
    for (half = 0; half < 2; half++) {
#pragma unroll
        for (n = 0; n < 4; n++) {
            if (yr[half] == NULL || col + 8 * n >= out_dim) {
                continue;
            }

            u = uw[n][half];
            h = (uint16_t *) &u;
            h[0] = slora_f2bf(slora_bf2f(h[0]) + sc * acc[n][2 * half]);
            h[1] = slora_f2bf(slora_bf2f(h[1]) + sc * acc[n][2 * half + 1]);
            *(uint32_t *) (yr[half] + 8 * n) = u;
        }
    }
}


/*
 * v[p, t, j] = the sum of the n_split slices' partials, slice 0 first:
 * one thread an element of the n_proj blocks of n_tok x ld_v.
 */

static __global__ void
slora_lora_split_sum(float *__restrict__ v, int64_t v_stride,
    const float *__restrict__ work, int64_t slice, int32_t n_proj,
    int32_t n_split)
{
    int64_t  e, i;
    int32_t  p, q;
    float    sum;

    slora_pdl_enter();

    e = (int64_t) blockIdx.x * blockDim.x + threadIdx.x;

    if (e >= slice * n_proj) {
        return;
    }

    p = (int32_t) (e / slice);
    i = e % slice;
    sum = 0.0f;

    for (q = 0; q < n_split; q++) {
        sum += work[((int64_t) p * n_split + q) * slice + i];
    }

    v[p * v_stride + i] = sum;
}


/*
 * The MBGMM shrink may split the reduction when its tiles alone would
 * leave SMs idle, as far as work holds the slices' partials: it zeroes
 * them, the slices write theirs, and slora_lora_split_sum adds them up.
 */

extern "C" int
slora_lora_shrink_cuda(float *v, int64_t ld_v, int64_t v_stride,
    float *work, int64_t work_elems, const uint16_t *x, int64_t ld_x,
    const uint16_t *base, int32_t in_dim, const slora_lora_segs_t *sg,
    int n_proj, int64_t n_tok, int32_t max_rank, int32_t max_seg_len,
    void *stream)
{
    slora_lora_proj_t  pj;
    cudaStream_t       st;
    int64_t            tiles, n_split, slice, fit;
    int32_t            n_rtiles, k_chunk;
    int                k;
    dim3               grid;

    if (v == NULL || x == NULL || base == NULL || in_dim <= 0
        || work_elems < 0 || (work_elems > 0 && work == NULL)
        || in_dim % SLORA_CUDA_VEC != 0 || ld_x < in_dim
        || ld_x % SLORA_CUDA_VEC != 0 || ld_v < max_rank || n_tok < 0
        || (n_proj > 1 && v_stride < n_tok * ld_v)
        || !slora_cuda_aligned(x) || !slora_cuda_aligned(base)
        || slora_lora_args(sg, n_proj, max_rank, max_seg_len) != 0)
    {
        return -1;
    }

    if (sg->n_segs == 0 || max_rank == 0 || max_seg_len == 0) {
        return 0;
    }

    memset(&pj, 0, sizeof(pj));

    for (k = 0; k < n_proj; k++) {
        pj.rank[k] = sg[k].rank;
        pj.rows[k] = sg[k].a_rows;
    }

    st = (cudaStream_t) stream;

    if (max_seg_len <= SLORA_GMV_MAX_SEG) {
        grid = dim3(sg->n_segs,
                    (max_rank + SLORA_GMV_SH_ROWS - 1) / SLORA_GMV_SH_ROWS,
                    n_proj);

        slora_launch(max_seg_len == 1
                     ? slora_gmv_shrink<1>
                     : slora_gmv_shrink<SLORA_GMV_TOKENS>,
            grid, SLORA_GMV_EX_WARPS * SLORA_CUDA_WARP, 0, st, v, ld_v,
            v_stride, x, ld_x, base, in_dim, sg->seg_indptr, pj);

        return slora_cuda_launched();
    }

    /* the prompts' tiles alone must fill the GPU: a short segment's
     * tile is done long before a long one's, whatever their number */
    n_rtiles = (max_rank + SLORA_GMM_TN - 1) / SLORA_GMM_TN;
    tiles = (int64_t) (sg->n_long > 0 ? sg->n_long : sg->n_tiles)
            * n_rtiles * n_proj;
    n_split = 1;

    slice = n_tok * ld_v;
    fit = slice > 0 ? work_elems / (slice * n_proj) : 0;

    if (tiles < SLORA_GMM_MIN_BLOCKS) {
        n_split = (SLORA_GMM_MIN_BLOCKS + tiles - 1) / tiles;
        n_split = n_split < in_dim / 256 ? n_split : in_dim / 256;
        n_split = n_split < SLORA_LORA_SPLIT_MAX ? n_split
                                                 : SLORA_LORA_SPLIT_MAX;
        n_split = n_split < fit ? n_split : fit;
        n_split = n_split < 1 ? 1 : n_split;
    }

    k_chunk = (int32_t) ((in_dim + n_split - 1) / n_split);
    k_chunk = (k_chunk + SLORA_GMM_TK - 1) / SLORA_GMM_TK * SLORA_GMM_TK;
    n_split = (in_dim + k_chunk - 1) / k_chunk;

    if (n_split > 1) {
        if (cudaMemsetAsync(work, 0, (size_t) (n_split * n_proj * slice)
                                     * sizeof(float), st)
            != cudaSuccess)
        {
            return -1;
        }

    } else {
        k_chunk = in_dim;
    }

    grid = dim3(sg->n_tiles, 1, (unsigned) (n_rtiles * n_split * n_proj));

    slora_launch(slora_gmm_shrink, grid, SLORA_GMM_THREADS, 0, st,
        n_split > 1 ? work : v, ld_v, n_split > 1 ? slice : v_stride, x, ld_x,
        base, in_dim, sg->seg_indptr, sg->tile_indptr, sg->n_segs, pj,
        n_rtiles, (int32_t) n_split, k_chunk);

    if (n_split > 1) {
        slora_launch(slora_lora_split_sum,
            (unsigned) ((slice * n_proj + 255) / 256), 256, 0, st, v, v_stride,
            work, slice, n_proj, (int32_t) n_split);
    }

    return slora_cuda_launched();
}


extern "C" int
slora_lora_expand_cuda(uint16_t *const *y, int64_t ld_y,
    const int32_t *out_dim, const float *v, int64_t ld_v, int64_t v_stride,
    const uint16_t *base, const slora_lora_segs_t *sg, int n_proj,
    int32_t max_rank, int32_t max_seg_len, void *stream)
{
    if (y == NULL) {
        return -1;
    }

    return slora_lora_expand_launch(y, NULL, ld_y, out_dim, v, ld_v, v_stride,
                                    base, sg, n_proj, max_rank, max_seg_len,
                                    stream);
}


/*
 * The decode expand into fp32 deltas: d[k][t, c] = scale * v . B_s, 0 for
 * a segment without an adapter, so every row of the step is written and
 * y stays as the GEMM left it. It reads nothing the base GEMM writes, so
 * it can run beside it; the kernel that reads y next adds the delta.
 */

extern "C" int
slora_lora_expand_delta_cuda(float *const *d, int64_t ld_d,
    const int32_t *out_dim, const float *v, int64_t ld_v, int64_t v_stride,
    const uint16_t *base, const slora_lora_segs_t *sg, int n_proj,
    int32_t max_rank, int32_t max_seg_len, void *stream)
{
    if (d == NULL) {
        return -1;
    }

    return slora_lora_expand_launch(NULL, d, ld_d, out_dim, v, ld_v, v_stride,
                                    base, sg, n_proj, max_rank, max_seg_len,
                                    stream);
}


/*
 * Both expands: into y (bf16, added; the MBGMM kernel for prefill
 * segments) or, d instead of y, into fp32 deltas (decode segments only,
 * else -2). ld is the stride of y's rows or d's.
 */

static int
slora_lora_expand_launch(uint16_t *const *y, float *const *d, int64_t ld,
    const int32_t *out_dim, const float *v, int64_t ld_v, int64_t v_stride,
    const uint16_t *base, const slora_lora_segs_t *sg, int n_proj,
    int32_t max_rank, int32_t max_seg_len, void *stream)
{
    slora_lora_proj_t  pj;
    cudaStream_t       st;
    int32_t            max_out, n_ctiles;
    int                k;
    dim3               grid;

    if (out_dim == NULL || v == NULL || base == NULL || ld_v < max_rank
        || (y != NULL && ld % SLORA_CUDA_VEC != 0)
        || !slora_cuda_aligned(base)
        || slora_lora_args(sg, n_proj, max_rank, max_seg_len) != 0)
    {
        return -1;
    }

    if (d != NULL && max_seg_len > SLORA_GMV_MAX_SEG) {
        return -2;
    }

    memset(&pj, 0, sizeof(pj));
    max_out = 0;

    for (k = 0; k < n_proj; k++) {
        if (out_dim[k] <= 0 || out_dim[k] % SLORA_CUDA_VEC != 0
            || ld < out_dim[k]
            || (y != NULL && (y[k] == NULL || !slora_cuda_aligned(y[k])))
            || (d != NULL && d[k] == NULL))
        {
            return -1;
        }

        pj.rank[k] = sg[k].rank;
        pj.rows[k] = sg[k].b_rows;
        pj.y[k] = y != NULL ? y[k] : NULL;
        pj.d[k] = d != NULL ? d[k] : NULL;
        pj.out_dim[k] = out_dim[k];
        max_out = out_dim[k] > max_out ? out_dim[k] : max_out;
    }

    /* the delta's rows are all written, even where every rank is 0 */
    if (sg->n_segs == 0 || max_seg_len == 0 || (d == NULL && max_rank == 0)) {
        return 0;
    }

    st = (cudaStream_t) stream;

    if (max_seg_len <= SLORA_GMV_MAX_SEG) {
        grid = dim3(sg->n_segs,
                    (max_out + SLORA_GMV_EX_COLS - 1) / SLORA_GMV_EX_COLS,
                    n_proj);

        if (d != NULL) {
            slora_launch(max_seg_len == 1
                         ? slora_gmv_expand<1, true>
                         : slora_gmv_expand<SLORA_GMV_TOKENS, true>,
                grid, SLORA_GMV_EX_WARPS * SLORA_CUDA_WARP, 0, st, ld, v,
                ld_v, v_stride, base, sg->seg_indptr, sg->scale, pj);

        } else {
            slora_launch(max_seg_len == 1
                         ? slora_gmv_expand<1, false>
                         : slora_gmv_expand<SLORA_GMV_TOKENS, false>,
                grid, SLORA_GMV_EX_WARPS * SLORA_CUDA_WARP, 0, st, ld, v,
                ld_v, v_stride, base, sg->seg_indptr, sg->scale, pj);
        }

    } else {
        n_ctiles = (max_out + SLORA_GMM_TC - 1) / SLORA_GMM_TC;
        grid = dim3(sg->n_tiles, 1, (unsigned) (n_ctiles * n_proj));

        slora_launch(slora_gmm_expand, grid, SLORA_GMM_THREADS, 0, st, ld, v,
            ld_v, v_stride, base, sg->seg_indptr, sg->tile_indptr, sg->n_segs,
            sg->scale, pj, n_ctiles);
    }

    return slora_cuda_launched();
}


/*
 * What the host can check of a device-side segment list: the arrays are
 * there, the bounds fit the grid, and the projections of one launch
 * share the batch's segments.
 */

static int
slora_lora_args(const slora_lora_segs_t *sg, int n_proj, int32_t max_rank,
    int32_t max_seg_len)
{
    int  k;

    if (sg == NULL || n_proj < 1 || n_proj > SLORA_LORA_MAX_PROJ
        || sg->n_segs < 0 || max_rank < 0
        || max_rank > SLORA_LORA_MAX_RANK || max_seg_len < 0)
    {
        return -1;
    }

    /* the MBGMM kernels' grid runs over the work tiles: one at least,
     * since a segment is longer than the decode kernels take, and none
     * for an empty segment, so there may be fewer than segments */
    if (max_seg_len > SLORA_GMV_MAX_SEG && sg->n_segs > 0
        && (sg->tile_indptr == NULL || sg->n_tiles < 1
            || sg->n_long < 0 || sg->n_long > sg->n_tiles))
    {
        return -1;
    }

    for (k = 0; k < n_proj; k++) {
        if (sg[k].n_segs != sg->n_segs
            || sg[k].seg_indptr != sg->seg_indptr
            || sg[k].scale != sg->scale
            || sg[k].n_tiles != sg->n_tiles || sg[k].n_long != sg->n_long
            || sg[k].tile_indptr != sg->tile_indptr)
        {
            return -1;
        }

        if (sg->n_segs > 0
            && (sg[k].seg_indptr == NULL || sg[k].rank == NULL
                || sg[k].scale == NULL || sg[k].a_rows == NULL
                || sg[k].b_rows == NULL))
        {
            return -1;
        }
    }

    return 0;
}


/*
 * The MBGMM work tiles of a segment list, as the kernels above count
 * them: a segment of up to SLORA_LORA_GMV_MAX_SEG tokens is one tile, a
 * longer one a tile per 64 tokens, an empty one none.
 */

extern "C" void
slora_lora_tiles_cuda(const int32_t *seg_indptr, int32_t n_segs,
    int32_t *tiles, slora_lora_segs_t *sg)
{
    int32_t  s, len;

    tiles[0] = 0;
    sg->n_long = 0;

    for (s = 0; s < n_segs; s++) {
        len = seg_indptr[s + 1] - seg_indptr[s];

        if (len > SLORA_GMV_MAX_SEG) {
            sg->n_long += (len + SLORA_GMM_TM - 1) / SLORA_GMM_TM;
        }

        tiles[s + 1] = tiles[s]
                       + (len <= 0 ? 0
                          : len <= SLORA_GMV_MAX_SEG ? 1
                          : (len + SLORA_GMM_TM - 1) / SLORA_GMM_TM);
    }

    sg->n_tiles = tiles[n_segs];
}
