/*
 * slora_argmax_cpu.c: the row argmax on the CPU, a left-to-right scan.
 *
 * The one idea: only a strictly larger value moves the choice, which is
 * what gives ties to the lowest index.
 */

#include "slora_argmax.h"


void
slora_argmax_rows(int32_t *out, const float *x, int64_t ld, int64_t rows,
    int64_t n)
{
    const float  *row;
    int64_t       r, i, best;

    for (r = 0; r < rows; r++) {
        row = x + r * ld;
        best = 0;

        for (i = 1; i < n; i++) {
            if (row[i] > row[best]) {
                best = i;
            }
        }

        out[r] = (int32_t) best;
    }
}
