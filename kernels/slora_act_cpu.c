/*
 * slora_act_cpu.c: SiLU-and-mul on the CPU; a call computes one share
 * (ith of nth) of the rows.
 *
 * The one idea: silu is written x / (1 + exp(-x)), the form ggml uses, so
 * both agree to the last bit or two for large |x|.
 */

#include <stddef.h>
#include <math.h>

#include "slora_act.h"


int
slora_silu_mul(float *out, int64_t ld_out, const float *g, int64_t ld_g,
    const float *u, int64_t ld_u, int64_t n_rows, int64_t dim, int ith,
    int nth)
{
    int64_t  r, r1;

    if (out == NULL || g == NULL || u == NULL || n_rows < 0 || dim <= 0
        || ld_out < dim || ld_g < dim || ld_u < dim || nth < 1 || ith < 0
        || ith >= nth)
    {
        return -1;
    }

    r1 = n_rows * (ith + 1) / nth;

    for (r = n_rows * ith / nth; r < r1; r++) {
        float        *o = out + r * ld_out;
        const float  *gr = g + r * ld_g;
        const float  *ur = u + r * ld_u;
        int64_t       i;
        float         x;

        for (i = 0; i < dim; i++) {
            x = gr[i];
            o[i] = x / (1.0f + expf(-x)) * ur[i];
        }
    }

    return 0;
}
