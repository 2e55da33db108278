/*
 * slora_norm_cpu.c: RMSNorm and residual-add + RMSNorm on the CPU; a
 * call computes the rows of one share (ith of nth), so the caller's
 * thread pool spreads a batch's rows.
 *
 * The one idea: each row is independent, so the fused variant adds the
 * residual and accumulates the sum of squares in the same pass, and a
 * row's result never depends on how the rows were shared out.
 */

#include <stddef.h>
#include <math.h>

#include "slora_norm.h"


static void slora_norm_row(float *out, const float *x, const float *w,
    int64_t dim, double ss, float eps);


int
slora_head_rmsnorm(float *x, int64_t ld, int64_t n_tok, int32_t n_heads,
    int32_t head_dim, const float *w, float eps, int ith, int nth)
{
    int64_t  t, t1;

    if (x == NULL || w == NULL || n_tok < 0 || n_heads <= 0 || head_dim <= 0
        || ld < (int64_t) n_heads * head_dim || nth < 1 || ith < 0
        || ith >= nth)
    {
        return -1;
    }

    t1 = n_tok * (ith + 1) / nth;

    for (t = n_tok * ith / nth; t < t1; t++) {
        if (slora_rmsnorm(x + t * ld, head_dim, x + t * ld, head_dim, w,
                          n_heads, head_dim, eps, 0, 1)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


int
slora_rmsnorm(float *out, int64_t ld_out, const float *x, int64_t ld_x,
    const float *w, int64_t n_rows, int64_t dim, float eps, int ith, int nth)
{
    int64_t  r, r1;

    if (out == NULL || x == NULL || w == NULL || n_rows < 0 || dim <= 0
        || ld_out < dim || ld_x < dim || nth < 1 || ith < 0 || ith >= nth)
    {
        return -1;
    }

    r1 = n_rows * (ith + 1) / nth;

    for (r = n_rows * ith / nth; r < r1; r++) {
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
    int64_t dim, float eps, int ith, int nth)
{
    int64_t  r, r1;

    if (out == NULL || x == NULL || res == NULL || w == NULL || n_rows < 0
        || dim <= 0 || ld_out < dim || ld_x < dim || ld_res < dim || nth < 1
        || ith < 0 || ith >= nth)
    {
        return -1;
    }

    r1 = n_rows * (ith + 1) / nth;

    for (r = n_rows * ith / nth; r < r1; r++) {
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
