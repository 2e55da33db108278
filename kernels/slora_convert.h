/*
 * slora_convert.h: f32 to bf16, the one rounding every bf16 backend
 * uses for weights and adapter rows (round to nearest, ties to even;
 * a NaN stays a NaN).
 *
 * The one idea: weights are converted where they land, so the host
 * keeps f32 (the CPU backend's exact reference) and the device never
 * holds an f32 copy of the model, only a bounded staging buffer.
 */

#ifndef SLORA_CONVERT_H
#define SLORA_CONVERT_H


#include <stdint.h>


/* The bits of bf16(f). */
uint16_t slora_f32_to_bf16(float f);

/* dst[i] = bf16(src[i]) for i < n. */
void slora_convert_bf16(uint16_t *dst, const float *src, int64_t n);


/* CUDA twin (kernels/slora_convert.cu): dst and src are device memory.
 * stream is a cudaStream_t. Returns 0, or -1 on bad arguments or a
 * refused launch. */
int slora_convert_bf16_cuda(uint16_t *dst, const float *src, int64_t n,
    void *stream);

#endif /* SLORA_CONVERT_H */
