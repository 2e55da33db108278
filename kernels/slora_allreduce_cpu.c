/*
 * slora_allreduce_cpu.c: the tensor-parallel sum on the CPU, the order
 * of additions the device's all-reduce must reproduce to the bit.
 *
 * The one idea: f32 addition is not associative, so the sum is defined
 * element by element as ((b0 + b1) + b2) + ..., starting from rank 0's
 * value rather than from zero (which keeps a lone -0 a -0), and a bf16
 * sum is rounded once, after the last addition.
 */

#include "slora_allreduce.h"
#include "slora_convert.h"




void
slora_allreduce_f32(float *const *bufs, int n_ranks, int64_t n)
{
    int64_t  i;
    float    acc;
    int      r;

    if (n_ranks < 1) {
        return;
    }

    for (i = 0; i < n; i++) {
        acc = bufs[0][i];

        for (r = 1; r < n_ranks; r++) {
            acc += bufs[r][i];
        }

        for (r = 0; r < n_ranks; r++) {
            bufs[r][i] = acc;
        }
    }
}


void
slora_allreduce_bf16(uint16_t *const *bufs, int n_ranks, int64_t n)
{
    int64_t   i;
    float     acc;
    uint16_t  b;
    int       r;

    if (n_ranks < 1) {
        return;
    }

    for (i = 0; i < n; i++) {
        acc = slora_bf16_to_f32(bufs[0][i]);

        for (r = 1; r < n_ranks; r++) {
            acc += slora_bf16_to_f32(bufs[r][i]);
        }

        b = slora_f32_to_bf16(acc);

        for (r = 0; r < n_ranks; r++) {
            bufs[r][i] = b;
        }
    }
}
