/*
 * slora_act_cpu.c: SiLU-and-mul on the CPU; a call computes one share
 * (ith of nth) of the rows, each row in AVX2 where the processor has it
 * (slora_act_x86_cpu.c), else in portable C, with the same bits.
 *
 * The one idea: silu is written x / (1 + exp(-x)), the form ggml uses, so
 * both agree to the last bit or two for large |x|; the exponential is
 * slora_expf (within an ulp of the C library's), which the AVX2 row
 * computes eight at a time.
 */

#include <stddef.h>

#include "slora_act_int.h"
#include "slora_qmatmul.h"


typedef void (*slora_silu_row_pt)(float *o, const float *g, const float *u,
    int64_t dim);


int
slora_silu_mul(float *out, int64_t ld_out, const float *g, int64_t ld_g,
    const float *u, int64_t ld_u, int64_t n_rows, int64_t dim, int ith,
    int nth)
{
    return slora_silu_mul_isa(out, ld_out, g, ld_g, u, ld_u, n_rows, dim,
                              ith, nth, SLORA_QISA_AUTO);
}


int
slora_silu_mul_isa(float *out, int64_t ld_out, const float *g,
    int64_t ld_g, const float *u, int64_t ld_u, int64_t n_rows, int64_t dim,
    int ith, int nth, int isa)
{
    int64_t            r, r1;
    slora_silu_row_pt  row;

    if (out == NULL || g == NULL || u == NULL || n_rows < 0 || dim <= 0
        || ld_out < dim || ld_g < dim || ld_u < dim || nth < 1 || ith < 0
        || ith >= nth || !slora_qmatmul_isa_supported(isa))
    {
        return -1;
    }

    row = slora_silu_mul_row;

#ifdef SLORA_VEC_X86
    if (isa != SLORA_QISA_C && slora_qmatmul_isa_supported(SLORA_QISA_AVX2)) {
        row = slora_silu_mul_row_avx2;
    }
#endif

    r1 = n_rows * (ith + 1) / nth;

    for (r = n_rows * ith / nth; r < r1; r++) {
        row(out + r * ld_out, g + r * ld_g, u + r * ld_u, dim);
    }

    return 0;
}
