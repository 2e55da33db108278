/*
 * slora_qmatmul.h: matrix products with Q8_0 weights on the CPU: y =
 * x . W^T where W's rows are blocks of 32 int8 quants and an f16 scale
 * (GGUF's Q8_0 layout) and x is quantized the same way, block by block,
 * just before the product.
 *
 * The one idea: single-stream decode reads every weight once per token,
 * so it runs at memory speed; Q8_0 reads 34 bytes per 32 weights instead
 * of 128. A block's integer products are exact, summed in eight lanes of
 * four bytes each (the shape of AVX512-VNNI's dpbusd and of AVX2's
 * maddubs + madd), and every lane's term, d_w * d_x * lane sum, is
 * exact in double (11 + 11 + 17 bits), so the lanes accumulate the same
 * doubles in the same order on every instruction set: the AVX512-VNNI,
 * the AVX2 and the portable C paths agree to the bit, and a row's result
 * never depends on the other rows of the batch or on how the columns
 * were shared out.
 *
 * Preconditions: in is a multiple of 32; quants lie in [-127, 127] (what
 * slora_quantize_q8_0 writes: a file's own Q8_0 blocks are quantized
 * again from their f32 values).
 *
 * No CUDA twin yet: the CUDA backend keeps bf16 weights and cuBLASLt.
 */

#ifndef SLORA_QMATMUL_H
#define SLORA_QMATMUL_H


#include <stddef.h>
#include <stdint.h>


#define SLORA_QK8_0           32

#define SLORA_QISA_AUTO       0   /* the best the CPU runs */
#define SLORA_QISA_C          1   /* portable C */
#define SLORA_QISA_AVX2       2   /* AVX2 + F16C */
#define SLORA_QISA_AVX512     3   /* AVX512-VNNI (+VL, F16C) */


typedef struct {
    uint16_t        d;                  /* f16 scale */
    int8_t          qs[SLORA_QK8_0];    /* value = qs[i] * d */
} slora_block_q8_0_t;


/* dst[n / 32] = Q8_0 of src[n] (n a multiple of 32), as ggml quantizes:
 * d = max|x| / 127 rounded to f16, q = round(x / d). */
int slora_quantize_q8_0(slora_block_q8_0_t *dst, const float *src,
    int64_t n);

/* dst[n] = the values of src's n / 32 blocks. */
int slora_dequantize_q8_0(float *dst, const slora_block_q8_0_t *src,
    int64_t n);

/* 1 when this CPU runs isa (SLORA_QISA_AUTO and _C always do). */
int slora_qmatmul_isa_supported(int isa);

/* The dot product of nb blocks of w and x as slora_qmatmul computes it,
 * on the given instruction set; every supported isa gives the same bits.
 * Returns NAN when isa is not supported. */
float slora_qdot_q8_0(const slora_block_q8_0_t *w,
    const slora_block_q8_0_t *x, int32_t nb, int isa);

/* Bytes of quantized activations for n rows of in elements. */
size_t slora_qmatmul_act_size(int64_t n, int32_t in);

/* xq = Q8_0 of the rows x[r, 0:in] of share ith of nth (rows
 * [n*ith/nth, n*(ith+1)/nth)); xq holds slora_qmatmul_act_size(n, in)
 * bytes. Every share must be done before slora_qmatmul reads xq. */
int slora_qmatmul_quantize(void *xq, size_t xq_size, const float *x,
    int64_t ld_x, int64_t n, int32_t in, int ith, int nth);

/* y[t, c] = xq[t, :] . w[c, :] (+ bias[c] when bias is not NULL) for t <
 * n and the output columns c of share ith of nth: the columns are cut
 * into nth slices of a multiple of 16. w is [out, in / 32] blocks. */
int slora_qmatmul(float *y, int64_t ld_y, const void *xq, size_t xq_size,
    const slora_block_q8_0_t *w, const float *bias, int64_t n, int32_t out,
    int32_t in, int ith, int nth);


#endif /* SLORA_QMATMUL_H */
