/*
 * slora_qmatmul.h: matrix products with quantized weights on the CPU: y =
 * x . W^T where W's rows are blocks of 32 weights, either Q8_0 (32 int8
 * quants and an f16 scale) or Q4_1 (32 nibbles, an f16 scale d and an
 * f16 minimum m: w = d q + m), GGUF's layouts, and x is quantized to
 * int8 blocks of 32 with an f16 scale, block by block, just before the
 * product.
 *
 * The one idea: one arithmetic per (row, token), whatever the batch. A
 * block's integer products are exact, summed in eight int32 lanes of four
 * bytes each (the shape of AVX512-VNNI's dpbusd and of AVX2's maddubs +
 * madd); lane j of block b goes into f32 accumulator 8 (b % 2) + j by one
 * fused multiply-add of the block's scale d_w * d_x (an exact f32
 * product), and the sixteen accumulators are summed by one fixed tree.
 * Q4_1 adds each block's m_w * d_x * sum(q_x) into accumulator b % 16,
 * once per group of sixteen blocks, before that group's products. So the
 * AVX512-VNNI, AVX2 and portable C paths agree to the bit, and a token's
 * result never depends on which tokens share its pass, how many there
 * are, or how the columns were shared out. That lets a pass load and
 * unpack a weight row once for up to eight tokens (or take four rows of
 * one token), so a batch shares the arithmetic of the weights, not only
 * their reads.
 *
 * Preconditions: in is a multiple of 32 (64 for Q4_1); quants lie in
 * [-127, 127] (what slora_quantize_q8_0 writes: a file's own Q8_0 blocks
 * are quantized again from their f32 values).
 *
 * No CUDA twin yet: the CUDA backend keeps bf16 weights and cuBLASLt.
 */

#ifndef SLORA_QMATMUL_H
#define SLORA_QMATMUL_H


#include <stddef.h>
#include <stdint.h>


#define SLORA_QK8_0           32
#define SLORA_QK4_1           32

#define SLORA_QISA_AUTO       0   /* the best the CPU runs */
#define SLORA_QISA_C          1   /* portable C */
#define SLORA_QISA_AVX2       2   /* AVX2 + FMA + F16C */
#define SLORA_QISA_AVX512     3   /* AVX512-VNNI (+VL, BW, F16C) */
#define SLORA_QISA_NEON       4   /* AArch64 NEON + dotprod (the
                                     quantized products alone) */
#define SLORA_QISA_LAST       SLORA_QISA_NEON


typedef struct {
    uint16_t        d;                  /* f16 scale */
    int8_t          qs[SLORA_QK8_0];    /* value = qs[i] * d */
} slora_block_q8_0_t;


typedef struct {
    uint16_t        d;                  /* f16 scale */
    uint16_t        m;                  /* f16 minimum */
    uint8_t         qs[SLORA_QK4_1 / 2];
                                        /* element i < 16: low nibble of
                                           qs[i]; i + 16: its high nibble;
                                           value = q * d + m */
} slora_block_q4_1_t;


/* dst[n / 32] = Q8_0 of src[n] (n a multiple of 32), as ggml quantizes:
 * d = max|x| / 127 rounded to f16, q = round(x / d). */
int slora_quantize_q8_0(slora_block_q8_0_t *dst, const float *src,
    int64_t n);

/* dst[n] = the values of src's n / 32 blocks. */
int slora_dequantize_q8_0(float *dst, const slora_block_q8_0_t *src,
    int64_t n);

/* 1 when this CPU runs isa (SLORA_QISA_AUTO and _C always do). */
int slora_qmatmul_isa_supported(int isa);

/* slora_quantize_q8_0 with the activations' quantizer of the given
 * instruction set: every supported isa writes the same bytes as
 * slora_quantize_q8_0. -1 when isa is not supported. */
int slora_quantize_q8_0_isa(slora_block_q8_0_t *dst, const float *src,
    int64_t n, int isa);

/*
 * Q8_0 activations: a row per token, 64-byte aligned steps: its in
 * quants as unsigned bytes q + 128 (dpbusd multiplies u8 by s8), then
 * each block's d_x as a float.
 */

/* Bytes of quantized activations for n rows of in elements. */
size_t slora_qmatmul_act_size(int64_t n, int32_t in);

/* xq = Q8_0 of the rows x[r, 0:in] of share ith of nth (rows
 * [n*ith/nth, n*(ith+1)/nth)); xq holds slora_qmatmul_act_size(n, in)
 * bytes. Every share must be done before slora_qmatmul reads xq. */
int slora_qmatmul_quantize(void *xq, size_t xq_size, const float *x,
    int64_t ld_x, int64_t n, int32_t in, int ith, int nth);

/* Row c of the [out, in / 32] blocks w times row t of xq as slora_qmatmul
 * computes it, on the given instruction set; every supported isa gives
 * the same bits. NAN when isa is not supported. */
float slora_qdot_q8_0(const slora_block_q8_0_t *w, int32_t out, int32_t in,
    int32_t c, const void *xq, int64_t t, int isa);

/* y[t, c] = xq[t, :] . w[c, :] (+ bias[c] when bias is not NULL) for t <
 * n and the output columns c of share ith of nth: the columns are cut
 * into nth slices of a multiple of 16. w is [out, in / 32] blocks. */
int slora_qmatmul(float *y, int64_t ld_y, const void *xq, size_t xq_size,
    const slora_block_q8_0_t *w, const float *bias, int64_t n, int32_t out,
    int32_t in, int ith, int nth);

/* slora_qmatmul on the given instruction set (-1 when not supported). */
int slora_qmatmul_isa(float *y, int64_t ld_y, const void *xq,
    size_t xq_size, const slora_block_q8_0_t *w, const float *bias,
    int64_t n, int32_t out, int32_t in, int ith, int nth, int isa);



/*
 * Q4_1 weights. The file's blocks are repacked at load into the layout
 * the kernels read (same 20 bytes per block): the nibbles of blocks 2p
 * and 2p + 1 of a row share 32 bytes (byte j: element j of block 2p low,
 * of block 2p + 1 high), then every row's scales, then every row's
 * minimums. The activations for Q4_1 are rows (64-byte aligned steps) of
 * int8 quants followed by each block's d_x and d_x * sum(q_x) as floats
 * (exact: 11 bits times at most 12).
 */

/* dst[n / 32] = Q4_1 of src[n], as ggml quantizes: m = min, d = (max -
 * min) / 15 rounded to f16, q = (x - m) / d rounded, at most 15. */
int slora_quantize_q4_1(slora_block_q4_1_t *dst, const float *src,
    int64_t n);

/* dst[n] = the values of src's n / 32 blocks, q * d + m in float. */
int slora_dequantize_q4_1(float *dst, const slora_block_q4_1_t *src,
    int64_t n);

/* Bytes of the packed copy of a [rows, in] Q4_1 matrix (in a multiple of
 * 64), or 0 when in is not. */
size_t slora_q4_1_pack_size(int64_t rows, int32_t in);

/* Packs the [rows, in / 32] blocks of src into dst (size bytes). */
int slora_q4_1_pack(void *dst, size_t size, const slora_block_q4_1_t *src,
    int64_t rows, int32_t in);

/* Bytes of Q4_1 activations for n rows of in elements. */
size_t slora_q4_1_act_size(int64_t n, int32_t in);

/* The activations of share ith of nth of the rows of x, as
 * slora_qmatmul_quantize (the same int8 quants and scales). */
int slora_q4_1_quantize_act(void *xq, size_t xq_size, const float *x,
    int64_t ld_x, int64_t n, int32_t in, int ith, int nth);

/* Row c of the packed [out, in] matrix w times row t of xq as
 * slora_q4_1_matmul computes it, on the given instruction set; every
 * supported isa gives the same bits. NAN when isa is not supported. */
float slora_qdot_q4_1(const void *w, int32_t out, int32_t in, int32_t c,
    const void *xq, int64_t t, int isa);

/* slora_qmatmul with packed Q4_1 weights and Q4_1 activations. */
int slora_q4_1_matmul(float *y, int64_t ld_y, const void *xq,
    size_t xq_size, const void *w, const float *bias, int64_t n,
    int32_t out, int32_t in, int ith, int nth);

/* slora_q4_1_matmul on the given instruction set (-1 when not
 * supported). */
int slora_q4_1_matmul_isa(float *y, int64_t ld_y, const void *xq,
    size_t xq_size, const void *w, const float *bias, int64_t n,
    int32_t out, int32_t in, int ith, int nth, int isa);


#endif /* SLORA_QMATMUL_H */
