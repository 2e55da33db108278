/*
 * slora_qmatmul_int.h: what the quantized products' two files share:
 * slora_qmatmul_cpu.c (quantization, the public entry points, the tiling
 * and the portable C path) and slora_qmatmul_x86_cpu.c (the AVX2 and
 * AVX512-VNNI tiles and quantizers, each compiled for its own target by
 * a function attribute). See slora_qmatmul_cpu.c for the arithmetic they
 * all follow, to the bit.
 */

#ifndef SLORA_QMATMUL_INT_H
#define SLORA_QMATMUL_INT_H


#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SLORA_Q_X86  1
#endif

#if defined(__aarch64__) && defined(__GNUC__)
#include <arm_neon.h>
#define SLORA_Q_ARM  1
#endif

#include "slora_qmatmul.h"


#define SLORA_Q_COLS    16          /* weight rows kept hot per pass */
#define SLORA_Q_GROUP   16          /* blocks per group of scales */
#define SLORA_Q_D_MAX   65504.0f    /* the largest finite f16: a finite
                                       block's scale saturates to it */

#define SLORA_Q_AVX2    __attribute__((target("avx2,fma,f16c")))
#define SLORA_Q_AVX512  __attribute__((target("avx2,fma,f16c,avx512f,"      \
                                              "avx512vl,avx512bw,"          \
                                              "avx512vnni")))
#define SLORA_Q_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))


/* src when it holds a whole group of n-byte values, else b (room for a
 * group) holding its first k values and zeros past them: a partial
 * group loads as a whole one. */
static inline const void *
slora_q_group_pad(void *b, const void *src, int32_t k, size_t n)
{
    if (k >= SLORA_Q_GROUP) {
        return src;
    }

    memset(b, 0, SLORA_Q_GROUP * n);
    memcpy(b, src, (size_t) k * n);

    return b;
}


/* One product's operands, as every tile reads them. */
typedef struct {
    int64_t            ld_y;
    const uint8_t     *x;           /* activation row 0 */
    size_t             ld_x;        /* bytes from one activation row to
                                       the next */
    const void        *w;           /* Q8_0: [out, nb] blocks; Q4_1: the
                                       packed nibbles [out, nb / 2, 32] */
    const uint16_t    *d;           /* Q4_1: [out, nb] f16 scales */
    const uint16_t    *m;           /* Q4_1: [out, nb] f16 minimums */
    const float       *bias;        /* [out] or NULL */
    int32_t            in;
    int32_t            nb;
} slora_qmm_t;

/* y[j * ld_y + c - c0] = row c times token t + j, for c0 <= c < c1 and
 * j < nt (a power of two up to the isa's nt). */
typedef void (*slora_qtile_fn)(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt);

/* One block of 32 values: quants (xor flip) into q, their sum, the f16
 * scale returned. */
typedef uint16_t (*slora_qblk_fn)(uint8_t *q, int32_t *sum, const float *x,
    uint8_t flip);

typedef struct {
    slora_qtile_fn     q8;
    slora_qtile_fn     q41;
    slora_qblk_fn      blk;
    int                nt;          /* most tokens in a tile */
} slora_qisa_t;


/* The portable tiles, also the x86 paths' tails. */
void slora_q8_tile_c(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt);
void slora_q41_tile_c(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt);

#ifdef SLORA_Q_X86
void slora_q8_tile_avx2(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt) SLORA_Q_AVX2;
void slora_q41_tile_avx2(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt) SLORA_Q_AVX2;
uint16_t slora_qblk_avx2(uint8_t *q, int32_t *sum, const float *x,
    uint8_t flip) SLORA_Q_AVX2;
void slora_q8_tile_avx512(const slora_qmm_t *mm, float *y,
    int64_t c0, int64_t c1, int64_t t, int nt) SLORA_Q_AVX512;
void slora_q41_tile_avx512(const slora_qmm_t *mm, float *y,
    int64_t c0, int64_t c1, int64_t t, int nt) SLORA_Q_AVX512;
uint16_t slora_qblk_avx512(uint8_t *q, int32_t *sum, const float *x,
    uint8_t flip) SLORA_Q_AVX512;
#endif

#ifdef SLORA_Q_ARM
int slora_qmatmul_neon_supported(void);
void slora_q8_tile_neon(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt) SLORA_Q_DOTPROD;
void slora_q41_tile_neon(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt) SLORA_Q_DOTPROD;
#endif


#endif /* SLORA_QMATMUL_INT_H */
