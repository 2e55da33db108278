/*
 * slora_score.cu: a row's token log-probability and its likeliest
 * alternatives on the GPU, the device twin of slora_score_cpu.c
 * (slora_score.h says what). One block a row, read from L2 after the
 * first pass.
 *
 * The one idea: the k likeliest as k rounds of a block-wide argmax, each
 * over the logits that come after the last one taken in the order (a
 * larger logit first, a lower id first on a tie): no sort and no
 * per-thread lists, k reads of a row that the lm-head GEMM just wrote,
 * and the CPU's ids, ties included. NaN is never taken, as no comparison
 * holds for it. The token's rank is counted in the pass that sums the
 * exponentials.
 */

#include <stdint.h>
#include <stddef.h>
#include <math.h>

#include "slora_cuda.cuh"

extern "C" {
#include "slora_score.h"
}


#define SLORA_SCORE_THREADS  256
#define SLORA_SCORE_WARPS    (SLORA_SCORE_THREADS / SLORA_CUDA_WARP)


typedef struct {
    float    v;
    int32_t  id;            /* -1: none */
} slora_score_pick_t;


/* a before b: the larger logit, then the lower id; none last */
static __device__ __forceinline__ int
slora_score_before(slora_score_pick_t a, slora_score_pick_t b)
{
    return a.id >= 0 && (b.id < 0 || a.v > b.v || (a.v == b.v && a.id < b.id));
}


static __device__ slora_score_pick_t
slora_score_best(slora_score_pick_t p, slora_score_pick_t *red)
{
    int                 o, lane, warp, i;
    slora_score_pick_t  q;

    lane = threadIdx.x % SLORA_CUDA_WARP;
    warp = threadIdx.x / SLORA_CUDA_WARP;

    for (o = SLORA_CUDA_WARP / 2; o > 0; o >>= 1) {
        q.v = __shfl_xor_sync(0xffffffffu, p.v, o);
        q.id = __shfl_xor_sync(0xffffffffu, p.id, o);
        p = slora_score_before(q, p) ? q : p;
    }

    __syncthreads();

    if (lane == 0) {
        red[warp] = p;
    }

    __syncthreads();

    p = red[0];
    for (i = 1; i < SLORA_SCORE_WARPS; i++) {
        p = slora_score_before(red[i], p) ? red[i] : p;
    }

    return p;
}


static __device__ double
slora_score_sum(double v, double *red)
{
    int  o, lane, warp, i;

    lane = threadIdx.x % SLORA_CUDA_WARP;
    warp = threadIdx.x / SLORA_CUDA_WARP;

    for (o = SLORA_CUDA_WARP / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }

    __syncthreads();

    if (lane == 0) {
        red[warp] = v;
    }

    __syncthreads();

    v = 0;
    for (i = 0; i < SLORA_SCORE_WARPS; i++) {
        v += red[i];
    }

    return v;
}


__global__ void __launch_bounds__(SLORA_SCORE_THREADS)
slora_score_kernel(slora_score_t *out, const float *logits, int64_t ld,
    int32_t vocab, const int32_t *tok, int32_t k)
{
    __shared__ slora_score_pick_t  pred[SLORA_SCORE_WARPS];
    __shared__ double              sred[SLORA_SCORE_WARPS];

    int32_t             i, j, t, c;
    float               m, x, s, xt;
    double              lse, rank;
    const float        *row;
    slora_score_pick_t  p, last, best;

    slora_pdl_enter();

    t = tok[blockIdx.x];

    if (t < 0 || t >= vocab) {
        return;
    }

    row = logits + (int64_t) blockIdx.x * ld;

    /* the max, as the first of the k best (or alone) */
    last.v = 0;
    last.id = -1;
    p.v = 0;
    p.id = -1;

    for (i = threadIdx.x; i < vocab; i += SLORA_SCORE_THREADS) {
        x = row[i];
        if (x == x && (p.id < 0 || x > p.v)) {
            p.v = x;
            p.id = i;
        }
    }

    best = slora_score_best(p, pred);
    m = best.id >= 0 ? best.v : row[0];

    /* the sum of exponentials, and the logits at least the token's */
    xt = row[t];
    s = 0;
    c = 0;

    for (i = threadIdx.x; i < vocab; i += SLORA_SCORE_THREADS) {
        x = row[i];
        s += expf(x - m);
        c += x >= xt;
    }

    lse = (double) m + log(slora_score_sum((double) s, sred));
    rank = slora_score_sum((double) c, sred);

    for (j = 0; j < k && best.id >= 0; j++) {
        if (threadIdx.x == 0) {
            out[blockIdx.x].top_ids[j] = best.id;
            out[blockIdx.x].top_lp[j] = (float) ((double) best.v - lse);
        }

        if (j + 1 == k) {
            break;
        }

        /* the best after the one just taken */
        last = best;
        p.v = 0;
        p.id = -1;

        for (i = threadIdx.x; i < vocab; i += SLORA_SCORE_THREADS) {
            x = row[i];

            if ((x < last.v || (x == last.v && i > last.id))
                && (p.id < 0 || x > p.v))
            {
                p.v = x;
                p.id = i;
            }
        }

        best = slora_score_best(p, pred);
    }

    if (threadIdx.x == 0) {
        out[blockIdx.x].n_top = best.id >= 0 ? k : j;
        out[blockIdx.x].logprob = (float) ((double) xt - lse);
        out[blockIdx.x].rank = (int32_t) rank;
    }
}


extern "C" int
slora_score_rows_cuda(slora_score_t *out, const float *logits, int64_t ld,
    int32_t vocab, const int32_t *tok, int32_t n, int32_t k, void *stream)
{
    if (n < 0 || vocab <= 0 || ld < vocab || k < 0 || k > vocab
        || k > SLORA_SCORE_TOP_MAX
        || (n > 0 && (out == NULL || logits == NULL || tok == NULL)))
    {
        return -1;
    }

    if (n == 0) {
        return 0;
    }

    slora_launch(slora_score_kernel, n, SLORA_SCORE_THREADS, 0,
        (cudaStream_t) stream, out, logits, ld, vocab, tok, k);

    return slora_cuda_launched();
}
