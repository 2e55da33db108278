/*
 * slora_convert.h: f32 to bf16, the one rounding every bf16 backend
 * uses for weights and adapter rows (round to nearest, ties to even;
 * a NaN stays a NaN).
 *
 * The one idea: weights are converted where they land, so the host
 * keeps f32 (the CPU backend's exact reference) and the device never
 * holds an f32 copy of the model, only a bounded staging buffer. The
 * host tier's adapter images for a bf16 backend are converted once, as
 * they are read (the same rounding), and their pages only copied.
 */

#ifndef SLORA_CONVERT_H
#define SLORA_CONVERT_H


#include <stdint.h>


/* The bits of bf16(f). */
uint16_t slora_f32_to_bf16(float f);

/* The f32 value of bf16 bits h (exact: bf16 is f32's top half). */
float slora_bf16_to_f32(uint16_t h);

/* dst[i] = bf16(src[i]) for i < n. */
void slora_convert_bf16(uint16_t *dst, const float *src, int64_t n);

/* n pages of width values, page i at src + i * width, each converted to
 * dst + dst_off[i]: an adapter's page images to the pool pages it got. */
void slora_convert_pages_bf16(uint16_t *dst, const int64_t *dst_off,
    const float *src, int32_t n, int64_t width);

/* The same for pages already in bf16: each copied to dst + dst_off[i]. */
void slora_copy_pages_bf16(uint16_t *dst, const int64_t *dst_off,
    const uint16_t *src, int32_t n, int64_t width);


/* CUDA twins (kernels/slora_convert.cu): dst and src are device memory,
 * dst_off host memory, passed to the kernel by value: n is at most
 * SLORA_CONVERT_PAGES; width, every dst_off and src are multiples of 8
 * elements (16-byte rows). stream is a cudaStream_t. They return 0, or
 * -1 on bad arguments or a refused launch. */
#define SLORA_CONVERT_PAGES  256

int slora_convert_bf16_cuda(uint16_t *dst, const float *src, int64_t n,
    void *stream);
int slora_convert_pages_bf16_cuda(uint16_t *dst, const int64_t *dst_off,
    const float *src, int32_t n, int64_t width, void *stream);
int slora_copy_pages_bf16_cuda(uint16_t *dst, const int64_t *dst_off,
    const uint16_t *src, int32_t n, int64_t width, void *stream);

#endif /* SLORA_CONVERT_H */
