/*
 * cuda_test.h: what the CUDA kernel tests (the .cu files in t/kernels)
 * share: CK() to bail out on a CUDA error, a seeded generator of
 * inputs, and device buffers made or copied in one call.
 *
 * The one idea: every helper stops the test on failure (BAIL_OUT), so a
 * case never goes on with a missing buffer, and the generator is the
 * same splitmix64 in every binary, so a case's inputs depend on its seed
 * and its order only.
 */

#ifndef CUDA_TEST_H
#define CUDA_TEST_H


#include <stdint.h>
#include <cuda_runtime.h>

#include "tap.h"


#define CK(call)                                                              \
    do {                                                                      \
        cudaError_t  e_ = (call);                                             \
        if (e_ != cudaSuccess) {                                              \
            BAIL_OUT("%s:%d: %s: %s", __FILE__, __LINE__, #call,              \
                     cudaGetErrorString(e_));                                 \
        }                                                                     \
    } while (0)


static uint64_t  rng_state = 0x5eed5107a5eedULL;


static inline uint64_t
rng_next(void)
{
    uint64_t  z;

    z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static inline float
rng_unif(float lo, float hi)
{
    return lo + (hi - lo) * (float) ((rng_next() >> 40) * (1.0 / 16777216.0));
}


/* Device memory, at least 16 bytes. */
static inline void *
dmalloc(size_t bytes)
{
    void  *d;

    CK(cudaMalloc(&d, bytes < 16 ? 16 : bytes));

    return d;
}


static inline void *
dup_to_dev(const void *h, size_t bytes)
{
    void  *d;

    d = dmalloc(bytes);

    if (bytes > 0) {
        CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    }

    return d;
}


#endif /* CUDA_TEST_H */
