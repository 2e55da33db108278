/*
 * slora_random.h: the weights of the random models
 * (engine/slora_model_random.c), element by element: each is a pure
 * function of (seed, tensor key, index), splitmix64 of the three scaled
 * to [-amp, amp]; amp 0 gives 1 (a norm).
 *
 * The one idea: a value is made wherever it is needed from its name
 * alone, so the CPU fills f32 tensors while the CUDA backend makes the
 * same values on the GPU, rounded to bf16 as an upload of the f32 ones
 * would be (slora_convert.h), without a host copy of the model: the
 * Llama-70B shape is 280 GB of f32.
 */

#ifndef SLORA_RANDOM_H
#define SLORA_RANDOM_H


#include <stdint.h>

#ifdef __CUDACC__
#define SLORA_RANDOM_FN  static __host__ __device__ inline
#else
#define SLORA_RANDOM_FN  static inline
#endif


/* Element i of tensor key. Every step but the last product is exact in
 * f32, so the host and the device agree bit for bit. */
SLORA_RANDOM_FN float
slora_random_value(uint64_t seed, uint64_t key, uint64_t i, float amp)
{
    uint64_t  x;

    if (amp == 0.0f) {
        return 1.0f;
    }

    x = seed ^ (key << 40) ^ i;
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;

    return amp * ((float) (x >> 40) * (2.0f / 16777216.0f) - 1.0f);
}


/* dst[r * cols + c] = bf16(value(first + r * ld + c)) for r < rows, c <
 * cols: a rows x cols block of the tensor (a tensor-parallel shard),
 * whose rows are ld elements apart, dense at dst. */
void slora_random_fill_bf16(uint16_t *dst, int64_t rows, int64_t cols,
    int64_t ld, int64_t first, uint64_t seed, uint64_t key, float amp);

/* The CUDA twin (kernels/slora_random.cu): dst is device memory; stream
 * a cudaStream_t. Returns 0, or -1 on bad arguments or a refused
 * launch. */
int slora_random_fill_bf16_cuda(uint16_t *dst, int64_t rows, int64_t cols,
    int64_t ld, int64_t first, uint64_t seed, uint64_t key, float amp,
    void *stream);


#endif /* SLORA_RANDOM_H */
