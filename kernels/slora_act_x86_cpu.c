/*
 * slora_act_x86_cpu.c: one row of SiLU-and-mul in AVX2; slora_act_cpu.c
 * chooses it at run time where the processor has AVX2.
 *
 * The one idea: it gives the portable row's bits (slora_act_cpu.c), only
 * eight at a time: -x, slora_expf's exponential (slora_vec_exp8), 1 +, a
 * division and a product are each rounded as the scalar's are.
 */

#include "slora_act_int.h"
#include "slora_vec_x86_cpu.h"


#ifdef SLORA_VEC_X86

__attribute__((target("avx2"))) void
slora_silu_mul_row_avx2(float *o, const float *g, const float *u,
    int64_t dim)
{
    int64_t  i;
    __m256   x, e;

    for (i = 0; i + 8 <= dim; i += 8) {
        x = _mm256_loadu_ps(g + i);
        e = slora_vec_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        e = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(o + i, _mm256_mul_ps(e, _mm256_loadu_ps(u + i)));
    }

    slora_silu_mul_row(o + i, g + i, u + i, dim - i);
}

#endif /* SLORA_VEC_X86 */
