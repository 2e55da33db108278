/*
 * slora_act_cpu.c: SiLU-and-mul on the CPU, rows over OpenMP threads.
 *
 * The one idea: silu is written x / (1 + exp(-x)), the form ggml uses, so
 * both agree to the last bit or two for large |x|.
 */

#include <stddef.h>
#include <math.h>

#include "slora_act.h"


#define SLORA_ACT_PAR_MIN  (1 << 14)


int
slora_silu_mul(float *out, int64_t ld_out, const float *g, int64_t ld_g,
    const float *u, int64_t ld_u, int64_t n_rows, int64_t dim)
{
    int64_t  r;

    if (out == NULL || g == NULL || u == NULL || n_rows < 0 || dim <= 0
        || ld_out < dim || ld_g < dim || ld_u < dim)
    {
        return -1;
    }

#pragma omp parallel for if (n_rows > 1 && n_rows * dim >= SLORA_ACT_PAR_MIN)
    for (r = 0; r < n_rows; r++) {
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
