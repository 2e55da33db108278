/*
 * slora_l2_cpu.c: the descriptor check of an L2 read-ahead, and its host
 * twin, which asks the CPU's cache for the same bytes.
 *
 * The one idea: the check is the one both twins make, so a descriptor the
 * device takes the host takes, and one that would read past the matrix
 * is refused before any launch.
 */

#include <stddef.h>

#include "slora_l2.h"


int
slora_l2_ahead_check(const slora_l2_ahead_t *a)
{
    if (a == NULL || a->base == NULL || a->rows < 1 || a->n_slices < 1
        || a->bytes < 16 || a->bytes % 16 != 0 || a->ld % 16 != 0
        || a->slice % 16 != 0 || ((uintptr_t) a->base & 15) != 0
        || a->slice < a->bytes
        || (a->n_slices > 1 && a->slice * (a->n_slices - 1) + a->bytes > a->ld)
        || (a->n_slices == 1 && a->bytes > a->ld)
        || (a->keep != 0 && a->keep != 1))
    {
        return -1;
    }

    return 0;
}


int
slora_l2_ahead(const slora_l2_ahead_t *a)
{
    const char  *p;
    int64_t      r, s, i;

    if (slora_l2_ahead_check(a) != 0) {
        return -1;
    }

    for (r = 0; r < a->rows; r++) {
        for (s = 0; s < a->n_slices; s++) {
            p = (const char *) a->base + r * a->ld + s * a->slice;

            for (i = 0; i < a->bytes; i += 64) {
                if (a->keep) {
                    __builtin_prefetch(p + i, 0, 3);

                } else {
                    __builtin_prefetch(p + i, 0, 1);
                }
            }
        }
    }

    return 0;
}
