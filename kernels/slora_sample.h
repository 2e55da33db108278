/*
 * slora_sample.h: one token drawn from a row of logits with temperature,
 * top-k and top-p, the same to the token on the CPU and on the GPU.
 *
 * A row's candidates are its ids, ordered by scaled logit s = logit /
 * temperature, high first, and by id on ties. min_p first drops those
 * that weigh less than min_p of the likeliest (vLLM's and llama.cpp's
 * min-p, on the scaled logits). The top-k set is the first k of what is
 * left; the top-p set the shortest prefix of that whose weight is at
 * least top_p of the top-k set's; the draw walks the top-p set in id
 * order to where the running weight passes u times its whole weight.
 *
 * The one idea: every weight is an integer, round down of exp(s - max)
 * times 2^40, computed by a fixed chain of IEEE operations that the CPU
 * and the GPU both do exactly (slora_sample_weight: separate multiplies
 * and adds, never fused: -ffp-contract=off on the CPU, __dmul_rn and
 * __dadd_rn on the GPU; no library exp). Sums of integers do not depend
 * on their order, so the
 * GPU's parallel reductions cut top-p and place the draw exactly where
 * the CPU's loops do. A candidate under 2^-40 of the largest weighs
 * nothing and is never drawn.
 */

#ifndef SLORA_SAMPLE_H
#define SLORA_SAMPLE_H


#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>


#ifdef __CUDACC__
#define SLORA_SAMPLE_FN  static __host__ __device__ __forceinline__
#else
#define SLORA_SAMPLE_FN  static inline
#endif

/* a * b + c rounded twice, as written: nvcc would fuse the plain form */
#ifdef __CUDA_ARCH__
#define slora_sample_mad(a, b, c)  __dadd_rn(__dmul_rn(a, b), c)
#else
#define slora_sample_mad(a, b, c)  ((a) * (b) + (c))
#endif


typedef struct {
    float     inv_temp;     /* 1 / temperature, > 0 */
    int32_t   top_k;        /* 0: off */
    float     top_p;        /* in (0, 1); anything else: off */
    float     min_p;        /* in (0, 1]; anything else: off */
    double    u;            /* the draw, in [0, 1) */
} slora_draw_t;


/* The weight of a scaled logit d = s - max (d <= 0, float): round down
 * of exp(d) * 2^40; 0 below 2^-40, and for -inf or NaN. */
SLORA_SAMPLE_FN uint64_t
slora_sample_weight(float d)
{
    double    x, n, r, p, scale;
    uint64_t  bits;

    if (!(d > -27.8f)) {            /* exp(-27.8) < 2^-40; NaN too */
        return 0;
    }

    /* x = n ln2 + r, |r| <= ln2 / 2 (n rounded to nearest, even on ties,
     * by adding and taking away 1.5 2^52; ln2 in two parts: n ln2_hi is
     * exact), then e^r by its Taylor series to r^11 */
    x = (double) d;
    n = slora_sample_mad(x, 1.4426950408889634, 6755399441055744.0)
        - 6755399441055744.0;
    r = slora_sample_mad(-n, 0.6931471803691238, x);
    r = slora_sample_mad(-n, 1.9082149292705877e-10, r);

    p = 2.505210838544172e-08;
    p = slora_sample_mad(p, r, 2.755731922398589e-07);
    p = slora_sample_mad(p, r, 2.7557319223985893e-06);
    p = slora_sample_mad(p, r, 2.48015873015873e-05);
    p = slora_sample_mad(p, r, 0.0001984126984126984);
    p = slora_sample_mad(p, r, 0.001388888888888889);
    p = slora_sample_mad(p, r, 0.008333333333333333);
    p = slora_sample_mad(p, r, 0.041666666666666664);
    p = slora_sample_mad(p, r, 0.16666666666666666);
    p = slora_sample_mad(p, r, 0.5);
    p = slora_sample_mad(p, r, 1.0);
    p = slora_sample_mad(p, r, 1.0);

    /* times 2^(n + 40), n + 40 in [0, 40]: an exact scaling */
    bits = (uint64_t) ((int64_t) n + 40 + 1023) << 52;
    memcpy(&scale, &bits, sizeof(scale));

    return (uint64_t) (p * scale);
}


/* The least weight min_p keeps: ceil(min_p 2^40), the likeliest weighing
 * 2^40; 0 (all) when min_p is off. */
SLORA_SAMPLE_FN uint64_t
slora_sample_min_weight(float min_p)
{
    if (!(min_p > 0.0f && min_p <= 1.0f)) {
        return 0;
    }

    return (uint64_t) ceil((double) min_p * 1099511627776.0);
}


/* A weight, or 0 under min_w (slora_sample_min_weight). */
SLORA_SAMPLE_FN uint64_t
slora_sample_weight_min(float d, uint64_t min_w)
{
    uint64_t  w;

    w = slora_sample_weight(d);

    return w >= min_w ? w : 0;
}


/* A candidate's place in the order: its scaled logit's bits made to sort
 * as integers (NaN as -inf, -0 as +0: equal logits tie), then its id
 * inverted, so that a larger key comes first and keys are all distinct. */
SLORA_SAMPLE_FN uint64_t
slora_sample_key(float s, int32_t id)
{
    uint32_t  u;

    if (s != s) {
        s = -INFINITY;

    } else if (s == 0.0f) {
        s = 0.0f;
    }

    memcpy(&u, &s, sizeof(u));
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);

    return ((uint64_t) u << 32) | (uint32_t) ~(uint32_t) id;
}


/* The weight that top-p must reach of a set's weight w: at least 1. */
SLORA_SAMPLE_FN uint64_t
slora_sample_top_p_need(float top_p, uint64_t w)
{
    uint64_t  t;

    t = (uint64_t) ((double) top_p * (double) w);

    return t > 0 ? t : 1;
}


/* Where u falls in a set's weight w > 0: in [0, w). A u outside [0, 1)
 * lands on an end, never in a cast past uint64_t's range. */
SLORA_SAMPLE_FN uint64_t
slora_sample_target(double u, uint64_t w)
{
    double    x;
    uint64_t  t;

    x = u * (double) w;

    if (!(x >= 0.0)) {
        return 0;
    }

    if (!(x < (double) w)) {
        return w - 1;
    }

    t = (uint64_t) x;

    return t < w ? t : w - 1;
}


/* The draw from row[0:vocab], with slora_sample_scratch_size(vocab)
 * bytes of scratch. Rows whose logits are all NaN or -inf give id 0;
 * rows with a scaled logit of +inf give their argmax. */
int32_t slora_sample_row(const float *row, int32_t vocab,
    const slora_draw_t *dr, void *scratch);
size_t slora_sample_scratch_size(int32_t vocab);

/* The draw's weights, w[i] = slora_sample_weight(row[i] * inv_temp -
 * max) for i < n, with isa's instructions (SLORA_QISA_AUTO, _C, _AVX2 of
 * slora_qmatmul.h: each gives the same bits): 0, or -1 where this CPU
 * cannot run isa. slora_sample_row takes them with SLORA_QISA_AUTO. */
int slora_sample_weights_isa(uint64_t *w, const float *row, int32_t n,
    float inv_temp, float max, int isa);

/* The sum of slora_expf(row[i] - max) for i < n, in double, eight
 * running sums (i % 8) folded pairwise, with isa's instructions (each
 * gives the same bits): a log-softmax's denominator. 0, or -1 where this
 * CPU cannot run isa. */
int slora_sample_sumexp_isa(double *sum, const float *row, int32_t n,
    float max, int isa);

/* The row's largest logit as the scan m = row[i] > m ? row[i] : m from
 * row[0] gives it (*max), and its k likeliest ids (k <= n), likeliest
 * first, the lower id first on a tie, as inserting each id in turn
 * gives them, with isa's instructions (each gives the same answer): a
 * log-softmax's shift and its top alternatives. 0, or -1 where this CPU
 * cannot run isa. */
int slora_sample_top_isa(float *max, int32_t *ids, const float *row,
    int32_t n, int32_t k, int isa);


/* CUDA twin (kernels/slora_sample.cu): ids[r] = slora_sample_row of row
 * r of logits (ld floats apart) with draws[r], for r < n, but for rows
 * whose inv_temp is not > 0 (greedy), whose ids[r] are left as they are
 * (their argmax, slora_argmax_rows_cuda, goes first); logits, draws and
 * ids are device memory, no scratch. stream is a cudaStream_t. Returns
 * 0, or -1 on bad arguments or a refused launch. */
int slora_sample_rows_cuda(int32_t *ids, const float *logits, int64_t ld,
    int32_t vocab, const slora_draw_t *draws, int32_t n, void *stream);


#endif /* SLORA_SAMPLE_H */
