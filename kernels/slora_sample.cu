/*
 * slora_sample.cu: the draw of a token from rows of logits on the GPU,
 * the device twin of slora_sample_cpu.c (slora_sample.h says what it
 * draws). One block a row.
 *
 * The one idea: no sort. The top-k cut is the k-th largest key and the
 * top-p cut the key where the running weight reaches top_p of the
 * whole, both found by radix selection over the 64-bit keys: eight
 * passes of a 256-bin histogram of counts or of integer weights, each
 * keeping the digit where the weight above it first reaches what is
 * needed. The draw is an exclusive scan of the kept weights in id
 * order. Integer sums are the same in any order, so the block gets the
 * CPU's token; the scaled logit and its distance to the max are
 * __fmul_rn and __fsub_rn, which nvcc never fuses into an fma.
 */

#include <stdint.h>
#include <stddef.h>
#include <math.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_sample.h"
}


#define SLORA_SAMPLE_THREADS  512
#define SLORA_SAMPLE_WARPS    (SLORA_SAMPLE_THREADS / SLORA_CUDA_WARP)


typedef unsigned long long  slora_u64_t;       /* what atomicAdd takes */


typedef struct {
    slora_u64_t   hist[256];
    slora_u64_t   red[SLORA_SAMPLE_WARPS];
    float         fred[SLORA_SAMPLE_WARPS];
    slora_u64_t   prefix, above;
} slora_sample_smem_t;


/* The two reductions a row needs: integer weights add, logits take the
 * larger (NaN ignored, as the CPU's comparison does). */
struct slora_sample_add {
    __device__ slora_u64_t operator()(slora_u64_t a, slora_u64_t b) const
    {
        return a + b;
    }
};

struct slora_sample_max {
    __device__ float operator()(float a, float b) const
    {
        return fmaxf(a, b);
    }
};


/* op over the block, red one T a warp; every thread gets the result. */
template <typename T, typename F>
static __device__ T
slora_sample_block(T v, T *red, F op)
{
    int  o, lane, warp, i;

    lane = threadIdx.x % SLORA_CUDA_WARP;
    warp = threadIdx.x / SLORA_CUDA_WARP;

    for (o = SLORA_CUDA_WARP / 2; o > 0; o >>= 1) {
        v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    }

    __syncthreads();

    if (lane == 0) {
        red[warp] = v;
    }

    __syncthreads();

    v = red[0];
    for (i = 1; i < SLORA_SAMPLE_WARPS; i++) {
        v = op(v, red[i]);
    }

    return v;
}


/*
 * The largest key x >= lo of the row such that the candidates with keys
 * >= x weigh at least need (by_weight: min-p's weights, min_w the least)
 * or number at least need: the key of the candidate where the running
 * sum, in key order, first reaches need. The caller makes sure the
 * candidates >= lo reach it.
 */
static __device__ uint64_t
slora_sample_select(const float *row, int32_t vocab, float inv, float max,
    uint64_t lo, uint64_t need, int by_weight, uint64_t min_w,
    slora_sample_smem_t *sm)
{
    int32_t   i, shift, d;
    uint64_t  key, prefix, above, acc, w;
    float     s;

    prefix = 0;
    above = 0;

    for (shift = 56; shift >= 0; shift -= 8) {
        for (i = threadIdx.x; i < 256; i += SLORA_SAMPLE_THREADS) {
            sm->hist[i] = 0;
        }

        __syncthreads();

        for (i = threadIdx.x; i < vocab; i += SLORA_SAMPLE_THREADS) {
            s = __fmul_rn(row[i], inv);
            key = slora_sample_key(s, i);

            /* below the floor, or off the digits chosen so far */
            if (key < lo
                || (shift < 56
                    && (key >> (shift + 8)) != (prefix >> (shift + 8))))
            {
                continue;
            }

            w = by_weight ? slora_sample_weight_min(__fsub_rn(s, max), min_w)
                          : 1;

            if (w > 0) {
                atomicAdd(&sm->hist[(key >> shift) & 255], (slora_u64_t) w);
            }
        }

        __syncthreads();

        if (threadIdx.x == 0) {
            acc = above;

            for (d = 255; d > 0; d--) {
                if (acc + sm->hist[d] >= need) {
                    break;
                }
                acc += sm->hist[d];
            }

            sm->prefix = prefix | ((uint64_t) d << shift);
            sm->above = acc;
        }

        __syncthreads();

        prefix = sm->prefix;
        above = sm->above;
    }

    return prefix;
}


static __global__ void __launch_bounds__(SLORA_SAMPLE_THREADS)
slora_sample_kernel(int32_t *__restrict__ ids, const float *__restrict__ x,
    int64_t ld, int32_t vocab, const slora_draw_t *__restrict__ draws)
{
    __shared__ slora_sample_smem_t  sm;

    const float   *row;
    slora_draw_t   dr;
    float          inv, max, s;
    uint64_t       lo, w, mine, excl, target, run, key, min_w;
    int32_t        i, chunk, i0, i1, o, lane, warp;
    slora_u64_t    v, t;

    slora_pdl_enter();

    row = x + (int64_t) blockIdx.x * ld;
    dr = draws[blockIdx.x];
    inv = dr.inv_temp;
    min_w = slora_sample_min_weight(dr.min_p);

    if (!(inv > 0.0f)) {
        return;                     /* greedy: its argmax is there */
    }

    max = -INFINITY;
    for (i = threadIdx.x; i < vocab; i += SLORA_SAMPLE_THREADS) {
        max = fmaxf(max, __fmul_rn(row[i], inv));
    }
    max = slora_sample_block(max, sm.fred, slora_sample_max());

    if (max == -INFINITY) {
        if (threadIdx.x == 0) {
            ids[blockIdx.x] = 0;
        }
        return;
    }

    lo = 0;

    if (dr.top_k > 0 && dr.top_k < vocab) {
        lo = slora_sample_select(row, vocab, inv, max, 0,
                                 (uint64_t) dr.top_k, 0, 0, &sm);
    }

    if (dr.top_p > 0.0f && dr.top_p < 1.0f) {
        w = 0;
        for (i = threadIdx.x; i < vocab; i += SLORA_SAMPLE_THREADS) {
            s = __fmul_rn(row[i], inv);
            if (slora_sample_key(s, i) >= lo) {
                w += slora_sample_weight_min(__fsub_rn(s, max), min_w);
            }
        }
        w = slora_sample_block((slora_u64_t) w, sm.red, slora_sample_add());

        lo = slora_sample_select(row, vocab, inv, max, lo,
                                 slora_sample_top_p_need(dr.top_p, w), 1,
                                 min_w, &sm);
    }

    /* the kept weights in id order: a chunk a thread, then a scan */
    chunk = (vocab + SLORA_SAMPLE_THREADS - 1) / SLORA_SAMPLE_THREADS;
    i0 = min(vocab, (int32_t) threadIdx.x * chunk);
    i1 = min(vocab, i0 + chunk);
    mine = 0;

    for (i = i0; i < i1; i++) {
        s = __fmul_rn(row[i], inv);
        if (slora_sample_key(s, i) >= lo) {
            mine += slora_sample_weight_min(__fsub_rn(s, max), min_w);
        }
    }

    lane = threadIdx.x % SLORA_CUDA_WARP;
    warp = threadIdx.x / SLORA_CUDA_WARP;
    v = mine;

    for (o = 1; o < SLORA_CUDA_WARP; o <<= 1) {
        t = __shfl_up_sync(0xffffffffu, v, o);
        if (lane >= o) {
            v += t;
        }
    }

    __syncthreads();

    if (lane == SLORA_CUDA_WARP - 1) {
        sm.red[warp] = v;
    }

    __syncthreads();

    excl = v - mine;
    w = 0;
    for (i = 0; i < SLORA_SAMPLE_WARPS; i++) {
        excl += i < warp ? sm.red[i] : 0;
        w += sm.red[i];
    }

    target = slora_sample_target(dr.u, w);

    if (excl <= target && target < excl + mine) {
        run = excl;

        for (i = i0; i < i1; i++) {
            s = __fmul_rn(row[i], inv);
            key = slora_sample_key(s, i);

            if (key >= lo) {
                run += slora_sample_weight_min(__fsub_rn(s, max), min_w);
                if (run > target) {
                    ids[blockIdx.x] = i;
                    break;
                }
            }
        }
    }
}


extern "C" int
slora_sample_rows_cuda(int32_t *ids, const float *logits, int64_t ld,
    int32_t vocab, const slora_draw_t *draws, int32_t n, void *stream)
{
    if (n < 0 || vocab <= 0 || ld < vocab
        || (n > 0 && (ids == NULL || logits == NULL || draws == NULL)))
    {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    slora_launch(slora_sample_kernel, n, SLORA_SAMPLE_THREADS, 0,
        (cudaStream_t) stream, ids, logits, ld, vocab, draws);

    return slora_cuda_launched();
}
