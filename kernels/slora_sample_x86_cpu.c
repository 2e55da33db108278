/*
 * slora_sample_x86_cpu.c: a draw's weights (slora_sample_weight) four at
 * a time in AVX2; slora_sample_cpu.c chooses them at run time where the
 * processor has AVX2.
 *
 * The one idea: each lane does slora_sample_weight's IEEE operations in
 * its order, a multiply and an add apart (never fused), so the weights
 * are the scalar's bits and the draw the GPU's: the scaled logit in
 * float, its double, n by the 1.5 2^52 rounding, r in two steps, the
 * Taylor series by Horner, 2^(n + 40) built in the exponent's bits, and
 * the round down of a product below 2^41 read from the bits of it plus
 * 2^52. Lanes at or below -27.8, -inf and NaN weigh 0, as the scalar's.
 * And a log-softmax's sum of exponentials (slora_sample_sumexp_isa) in
 * eight lanes, slora_expf's bits each, summed as the portable loop does;
 * its shift and top alternatives (slora_sample_top_isa), the scan's.
 */

#include "slora_sample_int.h"
#include "slora_vec_x86_cpu.h"


#ifdef SLORA_VEC_X86

#define SLORA_SAMPLE_TWO52  4503599627370496.0          /* 2^52 */


__attribute__((target("avx2"))) void
slora_sample_weights_avx2(uint64_t *w, const float *row, int32_t n,
    float inv_temp, float max)
{
    int      k;
    int32_t  i;
    __m128   d, keep;
    __m256d  x, m, nn, r, p, v;
    __m256i  e, u;

    static const double  taylor[12] = {
        2.505210838544172e-08, 2.755731922398589e-07,
        2.7557319223985893e-06, 2.48015873015873e-05,
        0.0001984126984126984, 0.001388888888888889,
        0.008333333333333333, 0.041666666666666664,
        0.16666666666666666, 0.5, 1.0, 1.0
    };

    for (i = 0; i + 4 <= n; i += 4) {
        d = _mm_sub_ps(_mm_mul_ps(_mm_loadu_ps(row + i),
                                  _mm_set1_ps(inv_temp)),
                       _mm_set1_ps(max));
        keep = _mm_cmp_ps(d, _mm_set1_ps(-27.8f), _CMP_GT_OQ);

        x = _mm256_cvtps_pd(d);
        m = _mm256_set1_pd(6755399441055744.0);
        nn = _mm256_sub_pd(_mm256_add_pd(
                 _mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)), m),
                 m);

        /* -n: the sign flipped, as the scalar's unary minus */
        m = _mm256_xor_pd(nn, _mm256_set1_pd(-0.0));
        r = _mm256_add_pd(_mm256_mul_pd(m,
                              _mm256_set1_pd(0.6931471803691238)), x);
        r = _mm256_add_pd(_mm256_mul_pd(m,
                              _mm256_set1_pd(1.9082149292705877e-10)), r);

        p = _mm256_set1_pd(taylor[0]);

        for (k = 1; k < 12; k++) {
            p = _mm256_add_pd(_mm256_mul_pd(p, r),
                              _mm256_set1_pd(taylor[k]));
        }

        /* 2^(n + 40): n is a whole number in [-40, 0] where it counts;
         * then the round down of a product below 2^41 */
        e = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(nn));
        e = _mm256_slli_epi64(_mm256_add_epi64(e,
                                  _mm256_set1_epi64x(40 + 1023)), 52);
        v = _mm256_mul_pd(p, _mm256_castsi256_pd(e));
        v = _mm256_round_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        u = _mm256_sub_epi64(
                _mm256_castpd_si256(_mm256_add_pd(
                    v, _mm256_set1_pd(SLORA_SAMPLE_TWO52))),
                _mm256_castpd_si256(_mm256_set1_pd(SLORA_SAMPLE_TWO52)));

        u = _mm256_and_si256(u, _mm256_cvtepi32_epi64(
                                    _mm_castps_si128(keep)));
        _mm256_storeu_si256((__m256i *) (w + i), u);
    }

    slora_sample_weights_row(w + i, row + i, n - i, inv_temp, max);
}

/* The eight running sums of slora_sample_sumexp_row in two vectors of
 * four, each exponential slora_vec_exp8's (slora_expf's bits). */
__attribute__((target("avx2"))) void
slora_sample_sumexp_avx2(double *s, const float *row, int32_t n, float max)
{
    int32_t  i;
    __m256   e;
    __m256d  lo, hi;

    lo = _mm256_setzero_pd();
    hi = _mm256_setzero_pd();

    for (i = 0; i + 8 <= n; i += 8) {
        e = slora_vec_exp8(_mm256_sub_ps(_mm256_loadu_ps(row + i),
                                         _mm256_set1_ps(max)));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }

    _mm256_storeu_pd(s, lo);
    _mm256_storeu_pd(s + 4, hi);

    slora_sample_sumexp_row(s, row, i, n, max);
}

/*
 * The max and the k best in eight lanes. Each lane keeps m = x > m ? x :
 * m from row[0] (_mm256_max_ps(x, m) is that, NaN included), and the
 * lanes' answers fold the same way, so the max is the scan's. The k best
 * are the scalar insertion's: the first k ids go through it one by one,
 * then only blocks of eight with a logit above the k-th best so far,
 * each in index order, so no id the scan would take is skipped and none
 * is taken out of turn.
 */
__attribute__((target("avx2"))) void
slora_sample_top_avx2(float *max, int32_t *ids, const float *row,
    int32_t n, int32_t k)
{
    int32_t  i, got, lane;
    float    m, lanes[8];
    __m256   vm;

    vm = _mm256_set1_ps(row[0]);

    for (i = 0; i + 8 <= n; i += 8) {
        vm = _mm256_max_ps(_mm256_loadu_ps(row + i), vm);
    }

    _mm256_storeu_ps(lanes, vm);
    m = row[0];

    for (lane = 0; lane < 8; lane++) {
        m = lanes[lane] > m ? lanes[lane] : m;
    }

    for ( /* void */ ; i < n; i++) {
        m = row[i] > m ? row[i] : m;
    }

    *max = m;

    if (k == 0) {
        return;
    }

    got = 0;

    for (i = 0; i < n && got < k; i++) {
        slora_sample_top_row(ids, &got, row, i, i + 1, k);
    }

    for ( /* void */ ; i < n && (i & 7) != 0; i++) {
        slora_sample_top_row(ids, &got, row, i, i + 1, k);
    }

    for ( /* void */ ; i + 8 <= n; i += 8) {
        if (got == k
            && _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + i),
                                                _mm256_set1_ps(row[ids[k - 1]]),
                                                _CMP_GT_OQ))
               == 0)
        {
            continue;
        }

        slora_sample_top_row(ids, &got, row, i, i + 8, k);
    }

    slora_sample_top_row(ids, &got, row, i, n, k);
}

#endif /* SLORA_VEC_X86 */
