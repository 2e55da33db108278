/*
 * slora_gemv_cpu.c: the reference of the CUDA GEMV, a plain loop of dot
 * products in f32.
 *
 * The one idea: it exists so that t/kernels can hold the device's thin
 * projections to something obviously right; the CPU backend's own
 * projections go through OpenBLAS and the quantized kernels.
 */

#include <stddef.h>

#include "slora_gemv.h"


void
slora_gemv(float *y, int64_t ld_y, const float *x, int64_t ld_x,
    const float *w, const float *bias, int32_t n, int32_t out, int32_t in)
{
    int32_t       t, o, i;
    const float  *xt, *wo;
    float         acc;

    for (t = 0; t < n; t++) {
        xt = x + (int64_t) t * ld_x;

        for (o = 0; o < out; o++) {
            wo = w + (int64_t) o * in;
            acc = 0.0f;

            for (i = 0; i < in; i++) {
                acc += xt[i] * wo[i];
            }

            y[(int64_t) t * ld_y + o] = acc + (bias != NULL ? bias[o] : 0.0f);
        }
    }
}
