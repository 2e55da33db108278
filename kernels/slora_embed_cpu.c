/*
 * slora_embed_cpu.c: gathers embedding rows on the CPU.
 *
 * The one idea: all ids are validated first, then rows are copied with
 * memcpy; the copy is memory-bound, so it stays on one thread.
 */

#include <string.h>

#include "slora_embed.h"


int
slora_embed(float *out, int64_t ld_out, const float *table, int64_t vocab,
    int64_t dim, const int32_t *ids, int64_t n)
{
    int64_t  t;

    if (out == NULL || table == NULL || ids == NULL || n < 0 || dim <= 0
        || ld_out < dim)
    {
        return -1;
    }

    for (t = 0; t < n; t++) {
        if (ids[t] < 0 || ids[t] >= vocab) {
            return -1;
        }
    }

    for (t = 0; t < n; t++) {
        memcpy(out + t * ld_out, table + (int64_t) ids[t] * dim,
               (size_t) dim * sizeof(float));
    }

    return 0;
}
