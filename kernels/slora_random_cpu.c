/*
 * slora_random_cpu.c: a block of a random model's tensor, made in bf16
 * on the CPU: the reference of the CUDA twin, and what an upload of the
 * f32 tensor (engine/slora_model_random.c) would give.
 */

#include "slora_convert.h"
#include "slora_random.h"


void
slora_random_fill_bf16(uint16_t *dst, int64_t rows, int64_t cols,
    int64_t ld, int64_t first, uint64_t seed, uint64_t key, float amp)
{
    int64_t  r, c;

    for (r = 0; r < rows; r++) {
        for (c = 0; c < cols; c++) {
            dst[r * cols + c] = slora_f32_to_bf16(
                slora_random_value(seed, key,
                                   (uint64_t) (first + r * ld + c), amp));
        }
    }
}
