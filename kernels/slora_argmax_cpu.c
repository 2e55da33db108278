/*
 * slora_argmax_cpu.c: the row argmax on the CPU, a left-to-right scan.
 *
 * The one idea: only a strictly larger value moves the choice, which is
 * what gives ties to the lowest index; a NaN is never larger, and one
 * the scan starts on gives way to the first number after it.
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

        /* a NaN first in the row gives way to the first number */
        for (i = 1; i < n; i++) {
            if (row[i] > row[best] || (row[best] != row[best]
                                       && row[i] == row[i]))
            {
                best = i;
            }
        }

        out[r] = (int32_t) best;
    }
}
