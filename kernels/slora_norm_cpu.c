/*
 * slora_norm_cpu.c: RMSNorm and residual-add + RMSNorm on the CPU, rows
 * spread over OpenMP threads when there are enough of them to pay for
 * the team.
 *
 * The one idea: each row is independent, so the fused variant adds the
 * residual and accumulates the sum of squares in the same pass.
 */

#include <stddef.h>
#include <math.h>

#include "slora_norm.h"


#define SLORA_NORM_PAR_MIN  (1 << 14)


static void slora_norm_row(float *out, const float *x, const float *w,
    int64_t dim, double ss, float eps);


int
slora_rmsnorm(float *out, int64_t ld_out, const float *x, int64_t ld_x,
    const float *w, int64_t n_rows, int64_t dim, float eps)
{
    int64_t  r;

    if (out == NULL || x == NULL || w == NULL || n_rows < 0 || dim <= 0
        || ld_out < dim || ld_x < dim)
    {
        return -1;
    }

#pragma omp parallel for if (n_rows > 1 && n_rows * dim >= SLORA_NORM_PAR_MIN)
    for (r = 0; r < n_rows; r++) {
        const float  *xr = x + r * ld_x;
        double        ss = 0.0;
        int64_t       i;

        for (i = 0; i < dim; i++) {
            ss += (double) xr[i] * (double) xr[i];
        }

        slora_norm_row(out + r * ld_out, xr, w, dim, ss, eps);
    }

    return 0;
}


int
slora_add_rmsnorm(float *out, int64_t ld_out, float *x, int64_t ld_x,
    const float *res, int64_t ld_res, const float *w, int64_t n_rows,
    int64_t dim, float eps)
{
    int64_t  r;

    if (out == NULL || x == NULL || res == NULL || w == NULL || n_rows < 0
        || dim <= 0 || ld_out < dim || ld_x < dim || ld_res < dim)
    {
        return -1;
    }

#pragma omp parallel for if (n_rows > 1 && n_rows * dim >= SLORA_NORM_PAR_MIN)
    for (r = 0; r < n_rows; r++) {
        float        *xr = x + r * ld_x;
        const float  *rr = res + r * ld_res;
        double        ss = 0.0;
        int64_t       i;

        for (i = 0; i < dim; i++) {
            xr[i] += rr[i];
            ss += (double) xr[i] * (double) xr[i];
        }

        slora_norm_row(out + r * ld_out, xr, w, dim, ss, eps);
    }

    return 0;
}


static void
slora_norm_row(float *out, const float *x, const float *w, int64_t dim,
    double ss, float eps)
{
    float    scale;
    int64_t  i;

    scale = 1.0f / sqrtf((float) (ss / (double) dim) + eps);

    for (i = 0; i < dim; i++) {
        out[i] = x[i] * scale * w[i];
    }
}
