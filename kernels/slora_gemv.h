/*
 * slora_gemv.h: the base projections of a decode step of a few tokens,
 * y[n, out] = x[n, in] W^T (+ bias), W row-major [out, in], when n is
 * small enough that the product only streams W.
 *
 * The one idea: at n <= SLORA_GEMV_MAX_N the product is a read of the
 * weights and nothing else, and the GEMM libraries' thin kernels read
 * them at about 3.2 TB/s on an H200 (bench/RESULTS.md); one warp a row
 * of W, 16 bytes a lane with several loads in flight, the few x rows
 * from L1, reads them near the copy rate. Up to SLORA_GEMV_MMA_MAX_N
 * rows the product is still a read of W, but too much arithmetic for
 * the CUDA cores: TMA copies feed the tensor cores (slora_gemv_mma.cu).
 * Above that n, cuBLASLt. One CPU twin serves both.
 */

#ifndef SLORA_GEMV_H
#define SLORA_GEMV_H


#include <stdint.h>


#define SLORA_GEMV_MAX_N  4


/* y[t, o] = sum_i x[t, i] w[o, i] (+ bias[o]) for t < n, o < out, in
 * f32 over f32 inputs (the reference: bf16 values widened); rows of x
 * and y ld_x and ld_y elements apart; bias may be NULL. */
void slora_gemv(float *y, int64_t ld_y, const float *x, int64_t ld_x,
    const float *w, const float *bias, int32_t n, int32_t out, int32_t in);


/* CUDA twin (kernels/slora_gemv.cu): x, w and bias bf16 device memory
 * (raw bits), y bf16 or, with f32_out, fp32; 1 <= n <=
 * SLORA_GEMV_MAX_N, in and ld_x multiples of 8, x and w 16-byte
 * aligned. Each sum runs in fp32 in its own order, so y is the CPU's
 * within fp32 rounding before y's own. stream is a cudaStream_t.
 * Returns 0, or -1 on bad arguments or a refused launch. */
int slora_gemv_cuda(void *y, int64_t ld_y, int f32_out, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, const uint16_t *bias, int32_t n,
    int32_t out, int32_t in, void *stream);

/* The same for 1 <= n <= SLORA_GEMV_MMA_MAX_N on tensor cores
 * (kernels/slora_gemv_mma.cu, TMA and wgmma, sm_90): any out, in a
 * multiple of 8. tr: the W rows a block takes over the whole of K, a
 * multiple of 8 up to SLORA_GEMV_MMA_MAX_ROWS, or 0 for
 * slora_gemv_mma_rows(out, 100) (one block an SM). let_in: the stages
 * before its end at which the kernel after it is let in (launched, to
 * wait on this one's end where it asks to), or below 0 at its exit: the
 * caller's choice, by what follows (bench/RESULTS.md, 2026-12-06). Each
 * sum runs in fp32 in a fixed order, whatever the grid. */
#define SLORA_GEMV_MMA_MAX_N     64
#define SLORA_GEMV_MMA_MAX_ROWS  256

int slora_gemv_mma_cuda(void *y, int64_t ld_y, int f32_out,
    const uint16_t *x, int64_t ld_x, const uint16_t *w, const uint16_t *bias,
    int32_t n, int32_t out, int32_t in, int32_t tr, int32_t let_in,
    void *stream);

/* The MLP's gate and up on the same kernel with SiLU-and-mul fused:
 * W row-major [2 ffn, in], gate's rows then up's; y[t, c] =
 * silu(g) * u for c < ffn, g and u the products rounded to bf16 as
 * slora_gemv_mma_cuda writes them, the activation as
 * slora_silu_mul_cuda computes it (the same bits as the two in turn at
 * the same tr), bf16 out. tr: gate's rows a block (and up's as many), a
 * multiple of 8 up to SLORA_GEMV_MMA_MAX_ROWS / 2, or 0 for
 * slora_gemv_mma_rows(ffn, 100). */
int slora_gemv_mma_glu_cuda(uint16_t *y, int64_t ld_y, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, int32_t n, int32_t ffn, int32_t in,
    int32_t tr, void *stream);

/* the W rows a block of slora_gemv_mma_cuda takes for this out so that
 * its grid of one block an SM takes share percent (1-100) of the
 * device's SMs, the rest left to kernels beside it: out over those SMs,
 * rounded up to 8, at most SLORA_GEMV_MMA_MAX_ROWS */
int32_t slora_gemv_mma_rows(int32_t out, int32_t share);

/* The same with the launch's shape named, for t/kernels' timings: loads
 * in flight a lane (4, 8 or 16; slora_gemv_cuda: 4 at n = 1, else 8) and
 * at most max_blocks blocks of 8 warps, each warp then taking rows a grid
 * apart (0: a block per 8 rows, slora_gemv_cuda's). */
int slora_gemv_cuda_shape(void *y, int64_t ld_y, int f32_out,
    const uint16_t *x, int64_t ld_x, const uint16_t *w, const uint16_t *bias,
    int32_t n, int32_t out, int32_t in, int32_t unroll, int32_t max_blocks,
    void *stream);

#endif /* SLORA_GEMV_H */
