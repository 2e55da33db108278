/*
 * slora_vec_x86_cpu.h: slora_expf (slora_vec_cpu.h) eight floats at a
 * time in AVX2, for the x86 twins of the CPU kernels (attention's
 * softmax, SiLU), each compiled for AVX2 by a function attribute.
 *
 * The one idea: every lane does slora_expf's operations in its order, in
 * four-lane doubles, so a twin gives the portable code's bits; the
 * out-of-range answers (inf, 0, NaN) are blended in as the scalar's.
 */

#ifndef SLORA_VEC_X86_CPU_H
#define SLORA_VEC_X86_CPU_H


#include "slora_vec_cpu.h"

#ifdef SLORA_VEC_X86

#include <immintrin.h>

#define SLORA_VEC_AVX2_INLINE  __attribute__((target("avx2"), always_inline))


static inline __m128 slora_vec_exp4(__m128 x) SLORA_VEC_AVX2_INLINE;
static inline __m256 slora_vec_exp8(__m256 x) SLORA_VEC_AVX2_INLINE;


/* slora_expf of four floats, its double arithmetic lane by lane */
static inline __m128
slora_vec_exp4(__m128 x)
{
    __m256d  z, kd, r, r2, y, s;
    __m256i  ki, t;

    z = _mm256_mul_pd(_mm256_set1_pd(SLORA_EXP_INVLN2N), _mm256_cvtps_pd(x));
    kd = _mm256_add_pd(z, _mm256_set1_pd(SLORA_EXP_SHIFT));
    ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, _mm256_set1_pd(SLORA_EXP_SHIFT));
    r = _mm256_sub_pd(z, kd);

    t = _mm256_i64gather_epi64((const long long *) slora_exp_tab,
                               _mm256_and_si256(ki, _mm256_set1_epi64x(31)),
                               8);
    s = _mm256_castsi256_pd(_mm256_add_epi64(t, _mm256_slli_epi64(ki, 47)));

    z = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(SLORA_EXP_C0), r),
                      _mm256_set1_pd(SLORA_EXP_C1));
    r2 = _mm256_mul_pd(r, r);
    y = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(SLORA_EXP_C2), r),
                      _mm256_set1_pd(1.0));
    y = _mm256_add_pd(_mm256_mul_pd(z, r2), y);

    return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}


/* slora_expf of eight floats, its out-of-range answers included */
static inline __m256
slora_vec_exp8(__m256 x)
{
    __m256  y;

    y = _mm256_set_m128(slora_vec_exp4(_mm256_extractf128_ps(x, 1)),
                        slora_vec_exp4(_mm256_castps256_ps128(x)));

    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY),
                         _mm256_cmp_ps(x, _mm256_set1_ps(SLORA_EXP_MAX),
                                       _CMP_GT_OQ));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(),
                         _mm256_cmp_ps(x, _mm256_set1_ps(SLORA_EXP_MIN),
                                       _CMP_LT_OQ));

    return _mm256_blendv_ps(y, _mm256_add_ps(x, x),
                            _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}


#endif /* SLORA_VEC_X86 */


#endif /* SLORA_VEC_X86_CPU_H */
