/*
 * slora_qmatmul_cpu.c: Q8_0 and Q4_1 quantization and the Q8_0 x Q8_0
 * and Q4_1 x Q8 matrix products on the CPU, with AVX512-VNNI, AVX2 and
 * portable C paths chosen at run time (__builtin_cpu_supports), each
 * compiled for its own target by a function attribute, so the build
 * needs no -march flag.
 *
 * The one idea (see slora_qmatmul.h): a product is cut into tiles of one
 * weight row and up to eight tokens (or up to four rows of one token);
 * a tile loads and unpacks each pair of weight blocks once, and every
 * (row, token) of it keeps sixteen f32 accumulators in one register:
 * lanes 0-7 take the even blocks' eight int32 lane sums, lanes 8-15 the
 * odd blocks', each by one fused multiply-add of the block's scale
 * d_w * d_x, so the two blocks of a pair take one dpbusd, one conversion,
 * one permute of the scales and one FMA per token. The accumulators of
 * a (row, token) see the same operations in the same order whatever the
 * tile, and one fixed tree sums them, so the portable C path (fmaf, lane
 * by lane), AVX2 (two eight-lane halves) and AVX512-VNNI agree to the
 * bit and a token's result does not depend on its batch. Quantization is
 * vectorized too, rounding half away from zero as roundf does, and gives
 * the portable C bytes on every path. Q8_0 activations are stored as q +
 * 128, so dpbusd (u8 x s8) takes them as they are and the weights' part
 * of the offset, 128 times a lane's weights, is taken off once per
 * weight row; AVX2 gets the signs back with one xor. Q4_1 weights are
 * unsigned nibbles, so dpbusd and maddubs take them as they are, two
 * blocks per load.
 */

#include <string.h>
#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SLORA_Q_X86  1
#endif

#include "slora_qmatmul.h"


#define SLORA_Q_COLS    16          /* weight rows kept hot per pass */
#define SLORA_Q_GROUP   16          /* blocks per group of scales */

#define SLORA_Q_AVX2    __attribute__((target("avx2,fma,f16c")))
#define SLORA_Q_AVX512  __attribute__((target("avx2,fma,f16c,avx512f,"      \
                                              "avx512vl,avx512bw,"          \
                                              "avx512vnni")))


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


static const slora_qisa_t *slora_qisa_get(int isa);
static size_t slora_q8_act_row(int32_t in);
static size_t slora_q41_act_row(int32_t in);
static void slora_q8_mm(slora_qmm_t *mm, int64_t ld_y, const void *xq,
    const slora_block_q8_0_t *w, const float *bias, int32_t in);
static void slora_q41_mm(slora_qmm_t *mm, int64_t ld_y, const void *xq,
    const void *w, const float *bias, int32_t out, int32_t in);
static void slora_qmm_run(const slora_qmm_t *mm, slora_qtile_fn tile,
    const slora_qisa_t *k, float *y, int64_t n, int32_t out, int ith,
    int nth);
static void slora_q_block(slora_block_q8_0_t *y, const float *x);
static float slora_q_f16_to_f32(uint16_t h);
static uint16_t slora_q_f32_to_f16(float f);
static float slora_q_tree(float *a);
static uint16_t slora_qblk_c(uint8_t *q, int32_t *sum, const float *x,
    uint8_t flip);
static float slora_q8_dot_c(const slora_qmm_t *mm, int64_t c, int64_t t);
static float slora_q41_dot_c(const slora_qmm_t *mm, int64_t c, int64_t t);
static void slora_q8_tile_c(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt);
static void slora_q41_tile_c(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt);
#ifdef SLORA_Q_X86
static inline __m256i slora_qround256(__m256 v)
    SLORA_Q_AVX2 __attribute__((always_inline));
static uint16_t slora_qblk_avx2(uint8_t *q, int32_t *sum, const float *x,
    uint8_t flip) SLORA_Q_AVX2;
static inline float slora_q_tree256(__m256 e, __m256 o)
    SLORA_Q_AVX2 __attribute__((always_inline));
static inline void slora_q_ld16h(__m256 *lo, __m256 *hi,
    const uint16_t *h, int32_t k) SLORA_Q_AVX2 __attribute__((always_inline));
static inline void slora_q8_tile256(const slora_qmm_t *mm, float *y,
    int64_t c, int64_t t, const int nr, const int nt)
    SLORA_Q_AVX2 __attribute__((always_inline));
static inline void slora_q41_tile256(const slora_qmm_t *mm, float *y,
    int64_t c, int64_t t, const int nr, const int nt)
    SLORA_Q_AVX2 __attribute__((always_inline));
static inline void slora_qrows256(const slora_qmm_t *mm, float *y,
    int64_t c0, int64_t c1, int64_t t, const int nt, const int q41)
    SLORA_Q_AVX2 __attribute__((always_inline));
static void slora_q8_tile_avx2(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt) SLORA_Q_AVX2;
static void slora_q41_tile_avx2(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt) SLORA_Q_AVX2;
static inline __m512i slora_qround512(__m512 v)
    SLORA_Q_AVX512 __attribute__((always_inline));
static uint16_t slora_qblk_avx512(uint8_t *q, int32_t *sum, const float *x,
    uint8_t flip) SLORA_Q_AVX512;
static inline float slora_q_tree512(__m512 a)
    SLORA_Q_AVX512 __attribute__((always_inline));
static inline __m256 slora_q_tree512n(const __m512 *a, const int n)
    SLORA_Q_AVX512 __attribute__((always_inline));
static inline void slora_q_out512(float *y, int64_t ld_y, const __m512 *acc,
    const float *bias, const int nr, const int nt)
    SLORA_Q_AVX512 __attribute__((always_inline));
static inline void slora_q8_tile512(const slora_qmm_t *mm, float *y,
    int64_t c, int64_t t, const int nr, const int nt)
    SLORA_Q_AVX512 __attribute__((always_inline));
static inline void slora_q41_tile512(const slora_qmm_t *mm, float *y,
    int64_t c, int64_t t, const int nr, const int nt)
    SLORA_Q_AVX512 __attribute__((always_inline));
static inline void slora_qrows512(const slora_qmm_t *mm, float *y,
    int64_t c0, int64_t c1, int64_t t, const int nt, const int q41)
    SLORA_Q_AVX512 __attribute__((always_inline));
static void slora_q8_tile_avx512(const slora_qmm_t *mm, float *y,
    int64_t c0, int64_t c1, int64_t t, int nt) SLORA_Q_AVX512;
static void slora_q41_tile_avx512(const slora_qmm_t *mm, float *y,
    int64_t c0, int64_t c1, int64_t t, int nt) SLORA_Q_AVX512;
#endif


static const slora_qisa_t  slora_qisa_c = {
    slora_q8_tile_c, slora_q41_tile_c, slora_qblk_c, 8
};

#ifdef SLORA_Q_X86
static const slora_qisa_t  slora_qisa_avx2 = {
    slora_q8_tile_avx2, slora_q41_tile_avx2, slora_qblk_avx2, 4
};

static const slora_qisa_t  slora_qisa_avx512 = {
    slora_q8_tile_avx512, slora_q41_tile_avx512, slora_qblk_avx512, 8
};
#endif


int
slora_quantize_q8_0(slora_block_q8_0_t *dst, const float *src, int64_t n)
{
    int64_t  b;

    if (dst == NULL || src == NULL || n < 0 || n % SLORA_QK8_0 != 0) {
        return -1;
    }

    for (b = 0; b < n / SLORA_QK8_0; b++) {
        slora_q_block(dst + b, src + b * SLORA_QK8_0);
    }

    return 0;
}


int
slora_dequantize_q8_0(float *dst, const slora_block_q8_0_t *src, int64_t n)
{
    int64_t  b;
    int32_t  i;
    float    d;

    if (dst == NULL || src == NULL || n < 0 || n % SLORA_QK8_0 != 0) {
        return -1;
    }

    for (b = 0; b < n / SLORA_QK8_0; b++) {
        d = slora_q_f16_to_f32(src[b].d);

        for (i = 0; i < SLORA_QK8_0; i++) {
            dst[b * SLORA_QK8_0 + i] = (float) src[b].qs[i] * d;
        }
    }

    return 0;
}


int
slora_qmatmul_isa_supported(int isa)
{
    switch (isa) {

    case SLORA_QISA_AUTO:
    case SLORA_QISA_C:
        return 1;

#ifdef SLORA_Q_X86
    /*
     * F16C is not asked for: every processor with AVX2 has it (Haswell,
     * Zen and later), and clang's __builtin_cpu_supports() does not know
     * the name.
     */

    case SLORA_QISA_AVX2:
        return __builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("fma");

    case SLORA_QISA_AVX512:
        return __builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("fma")
               && __builtin_cpu_supports("avx512f")
               && __builtin_cpu_supports("avx512vl")
               && __builtin_cpu_supports("avx512bw")
               && __builtin_cpu_supports("avx512vnni");
#endif

    default:
        return 0;
    }
}


int
slora_quantize_q8_0_isa(slora_block_q8_0_t *dst, const float *src,
    int64_t n, int isa)
{
    const slora_qisa_t  *k;
    int64_t              b;
    int32_t              sum;

    k = slora_qisa_get(isa);

    if (k == NULL || dst == NULL || src == NULL || n < 0
        || n % SLORA_QK8_0 != 0)
    {
        return -1;
    }

    for (b = 0; b < n / SLORA_QK8_0; b++) {
        dst[b].d = k->blk((uint8_t *) dst[b].qs, &sum,
                          src + b * SLORA_QK8_0, 0);
    }

    return 0;
}


size_t
slora_qmatmul_act_size(int64_t n, int32_t in)
{
    if (n < 1) {
        n = 1;
    }

    if (in < SLORA_QK8_0) {
        in = SLORA_QK8_0;
    }

    return (size_t) n * slora_q8_act_row(in);
}


int
slora_qmatmul_quantize(void *xq, size_t xq_size, const float *x,
    int64_t ld_x, int64_t n, int32_t in, int ith, int nth)
{
    const slora_qisa_t  *k;
    uint8_t             *row;
    float               *xd;
    int64_t              r, r1;
    int32_t              nb, b, sum;

    if (xq == NULL || x == NULL || n < 0 || in <= 0
        || in % SLORA_QK8_0 != 0 || ld_x < in || nth < 1 || ith < 0
        || ith >= nth || xq_size < slora_qmatmul_act_size(n, in))
    {
        return -1;
    }

    k = slora_qisa_get(SLORA_QISA_AUTO);
    nb = in / SLORA_QK8_0;
    r1 = n * (ith + 1) / nth;

    for (r = n * ith / nth; r < r1; r++) {
        row = (uint8_t *) xq + r * slora_q8_act_row(in);
        xd = (float *) (void *) (row + in);

        for (b = 0; b < nb; b++) {
            xd[b] = slora_q_f16_to_f32(k->blk(row + b * SLORA_QK8_0, &sum,
                                              x + r * ld_x
                                              + b * SLORA_QK8_0,
                                              0x80));
        }
    }

    return 0;
}


float
slora_qdot_q8_0(const slora_block_q8_0_t *w, int32_t out, int32_t in,
    int32_t c, const void *xq, int64_t t, int isa)
{
    const slora_qisa_t  *k;
    slora_qmm_t          mm;
    float                v;

    k = slora_qisa_get(isa);

    if (k == NULL || w == NULL || xq == NULL || in <= 0
        || in % SLORA_QK8_0 != 0 || c < 0 || c >= out || t < 0)
    {
        return NAN;
    }

    slora_q8_mm(&mm, 1, xq, w, NULL, in);
    k->q8(&mm, &v, c, c + 1, t, 1);

    return v;
}


int
slora_qmatmul(float *y, int64_t ld_y, const void *xq, size_t xq_size,
    const slora_block_q8_0_t *w, const float *bias, int64_t n, int32_t out,
    int32_t in, int ith, int nth)
{
    return slora_qmatmul_isa(y, ld_y, xq, xq_size, w, bias, n, out, in, ith,
                             nth, SLORA_QISA_AUTO);
}


int
slora_qmatmul_isa(float *y, int64_t ld_y, const void *xq, size_t xq_size,
    const slora_block_q8_0_t *w, const float *bias, int64_t n, int32_t out,
    int32_t in, int ith, int nth, int isa)
{
    const slora_qisa_t  *k;
    slora_qmm_t          mm;

    k = slora_qisa_get(isa);

    if (k == NULL || y == NULL || xq == NULL || w == NULL || n < 0
        || out <= 0 || in <= 0 || in % SLORA_QK8_0 != 0 || ld_y < out
        || nth < 1 || ith < 0 || ith >= nth
        || xq_size < slora_qmatmul_act_size(n, in))
    {
        return -1;
    }

    slora_q8_mm(&mm, ld_y, xq, w, bias, in);
    slora_qmm_run(&mm, k->q8, k, y, n, out, ith, nth);

    return 0;
}


int
slora_quantize_q4_1(slora_block_q4_1_t *dst, const float *src, int64_t n)
{
    int64_t              b;
    int32_t              i, q0, q1;
    float                mn, mx, d, id, v0, v1;
    const float         *x;

    if (dst == NULL || src == NULL || n < 0 || n % SLORA_QK4_1 != 0) {
        return -1;
    }

    for (b = 0; b < n / SLORA_QK4_1; b++) {
        x = src + b * SLORA_QK4_1;
        mn = x[0];
        mx = x[0];

        for (i = 1; i < SLORA_QK4_1; i++) {
            mn = x[i] < mn ? x[i] : mn;
            mx = x[i] > mx ? x[i] : mx;
        }

        d = (mx - mn) / 15.0f;
        id = d != 0.0f && isfinite(d) ? 1.0f / d : 0.0f;
        dst[b].d = slora_q_f32_to_f16(d);
        dst[b].m = slora_q_f32_to_f16(mn);

        for (i = 0; i < SLORA_QK4_1 / 2; i++) {
            v0 = (x[i] - mn) * id + 0.5f;
            v1 = (x[i + 16] - mn) * id + 0.5f;
            q0 = v0 == v0 && v0 > 0.0f ? (v0 < 15.0f ? (int32_t) v0 : 15) : 0;
            q1 = v1 == v1 && v1 > 0.0f ? (v1 < 15.0f ? (int32_t) v1 : 15) : 0;
            dst[b].qs[i] = (uint8_t) (q0 | (q1 << 4));
        }
    }

    return 0;
}


int
slora_dequantize_q4_1(float *dst, const slora_block_q4_1_t *src, int64_t n)
{
    int64_t  b;
    int32_t  i;
    float    d, m;

    if (dst == NULL || src == NULL || n < 0 || n % SLORA_QK4_1 != 0) {
        return -1;
    }

    for (b = 0; b < n / SLORA_QK4_1; b++) {
        d = slora_q_f16_to_f32(src[b].d);
        m = slora_q_f16_to_f32(src[b].m);

        for (i = 0; i < SLORA_QK4_1 / 2; i++) {
            dst[b * 32 + i] = (float) (src[b].qs[i] & 0x0f) * d + m;
            dst[b * 32 + i + 16] = (float) (src[b].qs[i] >> 4) * d + m;
        }
    }

    return 0;
}


size_t
slora_q4_1_pack_size(int64_t rows, int32_t in)
{
    if (rows < 1 || in <= 0 || in % 64 != 0) {
        return 0;
    }

    return (size_t) rows * (size_t) (in / SLORA_QK4_1)
           * sizeof(slora_block_q4_1_t);
}


int
slora_q4_1_pack(void *dst, size_t size, const slora_block_q4_1_t *src,
    int64_t rows, int32_t in)
{
    const slora_block_q4_1_t  *b0, *b1;
    uint8_t                   *qs, *pq;
    uint16_t                  *d, *m;
    int64_t                    r, nb, p, b;
    int32_t                    j;
    uint8_t                    e0, e1;

    if (dst == NULL || src == NULL || slora_q4_1_pack_size(rows, in) == 0
        || size < slora_q4_1_pack_size(rows, in))
    {
        return -1;
    }

    nb = in / SLORA_QK4_1;
    qs = dst;
    d = (uint16_t *) (void *) (qs + rows * nb * 16);
    m = d + rows * nb;

    for (r = 0; r < rows; r++) {
        for (b = 0; b < nb; b++) {
            d[r * nb + b] = src[r * nb + b].d;
            m[r * nb + b] = src[r * nb + b].m;
        }

        for (p = 0; p < nb / 2; p++) {
            b0 = src + r * nb + 2 * p;
            b1 = b0 + 1;
            pq = qs + (r * nb + 2 * p) * 16;

            for (j = 0; j < 32; j++) {
                e0 = j < 16 ? b0->qs[j] & 0x0f : b0->qs[j - 16] >> 4;
                e1 = j < 16 ? b1->qs[j] & 0x0f : b1->qs[j - 16] >> 4;
                pq[j] = (uint8_t) (e0 | (e1 << 4));
            }
        }
    }

    return 0;
}


size_t
slora_q4_1_act_size(int64_t n, int32_t in)
{
    if (n < 1) {
        n = 1;
    }

    if (in < 64) {
        in = 64;
    }

    return (size_t) n * slora_q41_act_row(in);
}


int
slora_q4_1_quantize_act(void *xq, size_t xq_size, const float *x,
    int64_t ld_x, int64_t n, int32_t in, int ith, int nth)
{
    const slora_qisa_t  *k;
    uint8_t             *row;
    float               *xd, *xs;
    int64_t              r, r1;
    int32_t              nb, b, sum;

    if (xq == NULL || x == NULL || n < 0 || in <= 0 || in % 64 != 0
        || ld_x < in || nth < 1 || ith < 0 || ith >= nth
        || xq_size < slora_q4_1_act_size(n, in))
    {
        return -1;
    }

    k = slora_qisa_get(SLORA_QISA_AUTO);
    nb = in / SLORA_QK8_0;
    r1 = n * (ith + 1) / nth;

    for (r = n * ith / nth; r < r1; r++) {
        row = (uint8_t *) xq + r * slora_q41_act_row(in);
        xd = (float *) (void *) (row + in);
        xs = xd + nb;

        for (b = 0; b < nb; b++) {
            xd[b] = slora_q_f16_to_f32(k->blk(row + b * SLORA_QK8_0, &sum,
                                              x + r * ld_x
                                              + b * SLORA_QK8_0,
                                              0));
            xs[b] = xd[b] * (float) sum;
        }
    }

    return 0;
}


float
slora_qdot_q4_1(const void *w, int32_t out, int32_t in, int32_t c,
    const void *xq, int64_t t, int isa)
{
    const slora_qisa_t  *k;
    slora_qmm_t          mm;
    float                v;

    k = slora_qisa_get(isa);

    if (k == NULL || w == NULL || xq == NULL || in <= 0 || in % 64 != 0
        || c < 0 || c >= out || t < 0)
    {
        return NAN;
    }

    slora_q41_mm(&mm, 1, xq, w, NULL, out, in);
    k->q41(&mm, &v, c, c + 1, t, 1);

    return v;
}


int
slora_q4_1_matmul(float *y, int64_t ld_y, const void *xq, size_t xq_size,
    const void *w, const float *bias, int64_t n, int32_t out, int32_t in,
    int ith, int nth)
{
    return slora_q4_1_matmul_isa(y, ld_y, xq, xq_size, w, bias, n, out, in,
                                 ith, nth, SLORA_QISA_AUTO);
}


int
slora_q4_1_matmul_isa(float *y, int64_t ld_y, const void *xq,
    size_t xq_size, const void *w, const float *bias, int64_t n,
    int32_t out, int32_t in, int ith, int nth, int isa)
{
    const slora_qisa_t  *k;
    slora_qmm_t          mm;

    k = slora_qisa_get(isa);

    if (k == NULL || y == NULL || xq == NULL || w == NULL || n < 0
        || out <= 0 || in <= 0 || in % 64 != 0 || ld_y < out || nth < 1
        || ith < 0 || ith >= nth || xq_size < slora_q4_1_act_size(n, in))
    {
        return -1;
    }

    slora_q41_mm(&mm, ld_y, xq, w, bias, out, in);
    slora_qmm_run(&mm, k->q41, k, y, n, out, ith, nth);

    return 0;
}


/* The best isa for SLORA_QISA_AUTO; NULL when isa is not supported. */

static const slora_qisa_t *
slora_qisa_get(int isa)
{
    if (!slora_qmatmul_isa_supported(isa)) {
        return NULL;
    }

#ifdef SLORA_Q_X86
    if (isa == SLORA_QISA_AUTO) {
        isa = slora_qmatmul_isa_supported(SLORA_QISA_AVX512)
              ? SLORA_QISA_AVX512
              : slora_qmatmul_isa_supported(SLORA_QISA_AVX2)
                ? SLORA_QISA_AVX2 : SLORA_QISA_C;
    }

    if (isa == SLORA_QISA_AVX512) {
        return &slora_qisa_avx512;
    }

    if (isa == SLORA_QISA_AVX2) {
        return &slora_qisa_avx2;
    }
#endif

    return &slora_qisa_c;
}


/* A row of Q8_0 activations: in quants, then nb floats; 64-byte steps. */

static size_t
slora_q8_act_row(int32_t in)
{
    return ((size_t) in + (size_t) (in / SLORA_QK8_0) * 4 + 63)
           & ~(size_t) 63;
}


/* A row of Q4_1 activations: in quants, then 2 * nb floats. */

static size_t
slora_q41_act_row(int32_t in)
{
    return ((size_t) in + (size_t) (in / SLORA_QK8_0) * 8 + 63)
           & ~(size_t) 63;
}


static void
slora_q8_mm(slora_qmm_t *mm, int64_t ld_y, const void *xq,
    const slora_block_q8_0_t *w, const float *bias, int32_t in)
{
    mm->ld_y = ld_y;
    mm->x = xq;
    mm->ld_x = slora_q8_act_row(in);
    mm->w = w;
    mm->d = NULL;
    mm->m = NULL;
    mm->bias = bias;
    mm->in = in;
    mm->nb = in / SLORA_QK8_0;
}


static void
slora_q41_mm(slora_qmm_t *mm, int64_t ld_y, const void *xq, const void *w,
    const float *bias, int32_t out, int32_t in)
{
    mm->ld_y = ld_y;
    mm->x = xq;
    mm->ld_x = slora_q41_act_row(in);
    mm->w = w;
    mm->nb = in / SLORA_QK4_1;
    mm->d = (const uint16_t *) (const void *) ((const uint8_t *) w
                                               + (int64_t) out * mm->nb
                                                 * 16);
    mm->m = mm->d + (int64_t) out * mm->nb;
    mm->bias = bias;
    mm->in = in;
}


/*
 * Share ith of nth of the output columns (slices of a multiple of 16),
 * SLORA_Q_COLS rows at a time, so their blocks stay in L1 while every
 * token passes, k->nt tokens a pass (shorter tails take the largest
 * power of two that fits).
 */

static void
slora_qmm_run(const slora_qmm_t *mm, slora_qtile_fn tile,
    const slora_qisa_t *k, float *y, int64_t n, int32_t out, int ith,
    int nth)
{
    int32_t  per, c0, c1, cb, ce;
    int64_t  t;
    int      nt;

    per = ((out + nth - 1) / nth + 15) & ~15;
    c0 = ith * per < out ? ith * per : out;
    c1 = out - c0 < per ? out : c0 + per;

    for (cb = c0; cb < c1; cb += SLORA_Q_COLS) {
        ce = c1 - cb < SLORA_Q_COLS ? c1 : cb + SLORA_Q_COLS;

        for (t = 0; t < n; t += nt) {
            for (nt = k->nt; nt > n - t; nt /= 2) { /* void */ }

            tile(mm, y + t * mm->ld_y + cb, cb, ce, t, nt);
        }
    }
}


/* ggml's Q8_0 for a weight block: d = max|x| / 127, q = round(x / d). */

static void
slora_q_block(slora_block_q8_0_t *y, const float *x)
{
    int32_t  sum;

    y->d = slora_qblk_c((uint8_t *) y->qs, &sum, x, 0);
}


static float
slora_q_f16_to_f32(uint16_t h)
{
    uint32_t  sign, exp, mant, bits;
    float     f;

    sign = (uint32_t) (h & 0x8000) << 16;
    exp = (h >> 10) & 0x1f;
    mant = h & 0x3ff;

    if (exp == 0x1f) {
        bits = sign | 0x7f800000 | (mant << 13);

    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);

    } else {
        f = (float) mant * 0x1p-24f;
        return sign ? -f : f;
    }

    memcpy(&f, &bits, 4);
    return f;
}


/* Round to nearest even, subnormals and overflow to infinity included. */

static uint16_t
slora_q_f32_to_f16(float f)
{
    uint32_t  x, sign, mant, full, m, rem, half;
    int32_t   exp, shift;
    uint16_t  h;

    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000;
    mant = x & 0x7fffff;

    if (((x >> 23) & 0xff) == 0xff) {
        return (uint16_t) (sign | 0x7c00 | (mant != 0 ? 0x200 : 0));
    }

    exp = (int32_t) ((x >> 23) & 0xff) - 127 + 15;

    if (exp >= 31) {
        return (uint16_t) (sign | 0x7c00);
    }

    if (exp <= 0) {
        if (exp < -10) {
            return (uint16_t) sign;
        }

        full = mant | 0x800000;
        shift = 14 - exp;
        m = full >> shift;
        rem = full & ((1u << shift) - 1);
        half = 1u << (shift - 1);

        if (rem > half || (rem == half && (m & 1))) {
            m++;
        }

        return (uint16_t) (sign | m);
    }

    h = (uint16_t) (sign | ((uint32_t) exp << 10) | (mant >> 13));
    rem = mant & 0x1fff;

    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) {
        h++;
    }

    return h;
}


/* The sixteen accumulators' one tree: a[j] + a[j + 8], then + 4, + 2,
 * + 1, as the vector paths fold their halves. */

static float
slora_q_tree(float *a)
{
    int32_t  j;

    for (j = 0; j < 8; j++) {
        a[j] = a[j] + a[j + 8];
    }

    for (j = 0; j < 4; j++) {
        a[j] = a[j] + a[j + 4];
    }

    a[0] = a[0] + a[2];
    a[1] = a[1] + a[3];

    return a[0] + a[1];
}


/* ggml's rule: d = max|x| / 127, q = round(x / d) half away from zero,
 * within +-127; a NaN becomes 0. */

static uint16_t
slora_qblk_c(uint8_t *q, int32_t *sum, const float *x, uint8_t flip)
{
    float    amax, a, d, id, v;
    int32_t  i, s;
    int8_t   qi;

    amax = 0.0f;

    for (i = 0; i < SLORA_QK8_0; i++) {
        a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }

    d = amax / 127.0f;
    id = d != 0.0f && isfinite(d) ? 1.0f / d : 0.0f;
    s = 0;

    for (i = 0; i < SLORA_QK8_0; i++) {
        v = roundf(x[i] * id);
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        qi = (int8_t) (v == v ? v : 0.0f);
        s += qi;
        q[i] = (uint8_t) qi ^ flip;
    }

    *sum = s;

    return slora_q_f32_to_f16(d);
}


/*
 * The arithmetic every path reproduces. Lane j of block b: the sum of
 * its four byte products, into accumulator 8 (b % 2) + j by fmaf with
 * the block's scale d_w * d_x (g, the group of sixteen blocks, starts
 * even, so b % 2 == i % 2).
 */

static float
slora_q8_dot_c(const slora_qmm_t *mm, int64_t c, int64_t t)
{
    const slora_block_q8_0_t  *w;
    const uint8_t             *xu;
    const float               *xd;
    float                      acc[16], s;
    int32_t                    g, k, i, j, e, b, h, p;

    w = (const slora_block_q8_0_t *) mm->w + c * mm->nb;
    xu = mm->x + t * mm->ld_x;
    xd = (const float *) (const void *) (xu + mm->in);

    for (j = 0; j < 16; j++) {
        acc[j] = 0.0f;
    }

    for (g = 0; g < mm->nb; g += SLORA_Q_GROUP) {
        k = mm->nb - g < SLORA_Q_GROUP ? mm->nb - g : SLORA_Q_GROUP;

        for (i = 0; i < k; i++) {
            b = g + i;
            h = i & 1;
            s = slora_q_f16_to_f32(w[b].d) * xd[b];

            for (j = 0; j < 8; j++) {
                p = 0;

                for (e = 4 * j; e < 4 * j + 4; e++) {
                    p += (int32_t) w[b].qs[e]
                         * ((int32_t) xu[b * SLORA_QK8_0 + e] - 128);
                }

                acc[h * 8 + j] = fmaf(s, (float) p, acc[h * 8 + j]);
            }
        }
    }

    return slora_q_tree(acc);
}


/* As slora_q8_dot_c, and each group first adds its blocks' m_w * d_x *
 * sum(q_x), block g + j into accumulator j. */

static float
slora_q41_dot_c(const slora_qmm_t *mm, int64_t c, int64_t t)
{
    const uint8_t   *qs, *pq;
    const uint16_t  *d, *m;
    const int8_t    *xq;
    const float     *xd, *xs;
    float            acc[16], s;
    int32_t          g, k, i, j, e, b, h, p;

    qs = (const uint8_t *) mm->w + c * mm->nb * 16;
    d = mm->d + c * mm->nb;
    m = mm->m + c * mm->nb;
    xq = (const int8_t *) (mm->x + t * mm->ld_x);
    xd = (const float *) (const void *) ((const uint8_t *) xq + mm->in);
    xs = xd + mm->nb;

    for (j = 0; j < 16; j++) {
        acc[j] = 0.0f;
    }

    for (g = 0; g < mm->nb; g += SLORA_Q_GROUP) {
        k = mm->nb - g < SLORA_Q_GROUP ? mm->nb - g : SLORA_Q_GROUP;

        for (j = 0; j < k; j++) {
            acc[j] = fmaf(slora_q_f16_to_f32(m[g + j]), xs[g + j], acc[j]);
        }

        for (i = 0; i < k; i++) {
            b = g + i;
            h = i & 1;
            pq = qs + (b - h) * 16;
            s = slora_q_f16_to_f32(d[b]) * xd[b];

            for (j = 0; j < 8; j++) {
                p = 0;

                for (e = 4 * j; e < 4 * j + 4; e++) {
                    p += (int32_t) (h ? pq[e] >> 4 : pq[e] & 0x0f)
                         * (int32_t) xq[b * SLORA_QK8_0 + e];
                }

                acc[h * 8 + j] = fmaf(s, (float) p, acc[h * 8 + j]);
            }
        }
    }

    return slora_q_tree(acc);
}


static void
slora_q8_tile_c(const slora_qmm_t *mm, float *y, int64_t c0, int64_t c1,
    int64_t t, int nt)
{
    int64_t  c;
    float    v;
    int      j;

    for (j = 0; j < nt; j++) {
        for (c = c0; c < c1; c++) {
            v = slora_q8_dot_c(mm, c, t + j);
            y[j * mm->ld_y + c - c0] = mm->bias != NULL ? v + mm->bias[c]
                                                        : v;
        }
    }
}


static void
slora_q41_tile_c(const slora_qmm_t *mm, float *y, int64_t c0, int64_t c1,
    int64_t t, int nt)
{
    int64_t  c;
    float    v;
    int      j;

    for (j = 0; j < nt; j++) {
        for (c = c0; c < c1; c++) {
            v = slora_q41_dot_c(mm, c, t + j);
            y[j * mm->ld_y + c - c0] = mm->bias != NULL ? v + mm->bias[c]
                                                        : v;
        }
    }
}


#ifdef SLORA_Q_X86

/*
 * roundf as a vector: truncate, then step away from zero when the part
 * cut off is at least a half (exact: v - trunc(v) is representable);
 * then slora_qblk_c's clamp, a NaN to 0.
 */

static inline __m256i
slora_qround256(__m256 v)
{
    __m256  t, f, sgn, c127, n127;

    sgn = _mm256_set1_ps(-0.0f);
    c127 = _mm256_set1_ps(127.0f);
    n127 = _mm256_set1_ps(-127.0f);

    t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    f = _mm256_cmp_ps(_mm256_andnot_ps(sgn, _mm256_sub_ps(v, t)),
                      _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    t = _mm256_add_ps(t, _mm256_and_ps(f, _mm256_or_ps(
                             _mm256_and_ps(v, sgn), _mm256_set1_ps(1.0f))));
    t = _mm256_blendv_ps(t, c127, _mm256_cmp_ps(t, c127, _CMP_GT_OQ));
    t = _mm256_blendv_ps(t, n127, _mm256_cmp_ps(t, n127, _CMP_LT_OQ));
    t = _mm256_and_ps(t, _mm256_cmp_ps(t, t, _CMP_ORD_Q));

    return _mm256_cvttps_epi32(t);
}


/* slora_qblk_c in four vectors; max_ps(|x|, m) keeps m when x is NaN, as
 * the C comparison does. F16C rounds d as slora_q_f32_to_f16 does (d is
 * never NaN), and calling no SSE code keeps the upper halves out of the
 * way of the caller's. */

static uint16_t
slora_qblk_avx2(uint8_t *q, int32_t *sum, const float *x, uint8_t flip)
{
    __m256   a[4], m, id;
    __m256i  r[4], p;
    __m128   h;
    __m128i  s;
    float    amax, d, inv;
    int      i;

    m = _mm256_setzero_ps();

    for (i = 0; i < 4; i++) {
        a[i] = _mm256_loadu_ps(x + 8 * i);
        m = _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a[i]), m);
    }

    h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    amax = _mm_cvtss_f32(h);

    d = amax / 127.0f;
    inv = d != 0.0f && isfinite(d) ? 1.0f / d : 0.0f;
    id = _mm256_set1_ps(inv);

    for (i = 0; i < 4; i++) {
        r[i] = slora_qround256(_mm256_mul_ps(a[i], id));
    }

    p = _mm256_add_epi32(_mm256_add_epi32(r[0], r[1]),
                         _mm256_add_epi32(r[2], r[3]));
    s = _mm_add_epi32(_mm256_castsi256_si128(p),
                      _mm256_extracti128_si256(p, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    *sum = _mm_cvtsi128_si32(s);

    p = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]),
                           _mm256_packs_epi32(r[2], r[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6,
                                                         3, 7));
    p = _mm256_xor_si256(p, _mm256_set1_epi8((char) flip));
    _mm256_storeu_si256((__m256i *) (void *) q, p);

    return _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
}


/* slora_q_tree on accumulators 0-7 (e) and 8-15 (o). */

static inline float
slora_q_tree256(__m256 e, __m256 o)
{
    __m256  h;
    __m128  q;

    h = _mm256_add_ps(e, o);
    q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));

    return _mm_cvtss_f32(q);
}


/* k <= 16 f16 values as floats, zeros past k. */

static inline void
slora_q_ld16h(__m256 *lo, __m256 *hi, const uint16_t *h, int32_t k)
{
    uint16_t  b[SLORA_Q_GROUP];

    if (k < SLORA_Q_GROUP) {
        memset(b, 0, sizeof(b));
        memcpy(b, h, (size_t) k * sizeof(uint16_t));
        h = b;
    }

    *lo = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (const void *) h));
    *hi = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (const void *)
                                          (h + 8)));
}


/*
 * AVX2 tiles: accumulators 0-7 and 8-15 of a (row, token) in two
 * registers, a block a register, the scales d_w * d_x of a group stored
 * and broadcast from memory. Q8_0: maddubs(|w|, sign(x, w)) after the
 * xor that gives x back its sign (|w|, |x| <= 127: no saturation).
 */

static inline void
slora_q8_tile256(const slora_qmm_t *mm, float *y, int64_t c, int64_t t,
    const int nr, const int nt)
{
    const slora_block_q8_0_t  *wr[2], *wb;
    const uint8_t             *xr[4];
    const float               *xd;
    __m256                     ae[4], ao[4], dl[2], dh[2], xl, xh;
    __m256i                    we[2], wo[2], ue[2], uo[2], x, ones, flip;
    __m256i                    lane, m0, m1;
    float                      s[4][SLORA_Q_GROUP], v;
    uint16_t                   hd[SLORA_Q_GROUP];
    int32_t                    nb, g, k, i, e;
    int                        r, j;

    nb = mm->nb;
    ones = _mm256_set1_epi16(1);
    flip = _mm256_set1_epi8((char) 0x80);
    lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

#pragma GCC unroll 4
    for (j = 0; j < nt; j++) {
        xr[j] = mm->x + (t + j) * mm->ld_x;
    }

#pragma GCC unroll 2
    for (r = 0; r < nr; r++) {
        wr[r] = (const slora_block_q8_0_t *) mm->w + (c + r) * nb;
    }

#pragma GCC unroll 4
    for (j = 0; j < nr * nt; j++) {
        ae[j] = _mm256_setzero_ps();
        ao[j] = _mm256_setzero_ps();
    }

    for (g = 0; g < nb; g += SLORA_Q_GROUP) {
        k = nb - g < SLORA_Q_GROUP ? nb - g : SLORA_Q_GROUP;
        m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(k), lane);
        m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(k - 8), lane);

#pragma GCC unroll 2
        for (r = 0; r < nr; r++) {
            for (e = 0; e < k; e++) {
                hd[e] = wr[r][g + e].d;
            }

            slora_q_ld16h(&dl[r], &dh[r], hd, k);
        }

#pragma GCC unroll 4
        for (j = 0; j < nt; j++) {
            xd = (const float *) (const void *) (xr[j] + mm->in) + g;
            xl = _mm256_maskload_ps(xd, m0);
            xh = _mm256_maskload_ps(xd + 8, m1);

#pragma GCC unroll 2
            for (r = 0; r < nr; r++) {
                _mm256_storeu_ps(s[r * nt + j], _mm256_mul_ps(dl[r], xl));
                _mm256_storeu_ps(s[r * nt + j] + 8, _mm256_mul_ps(dh[r], xh));
            }
        }

        for (i = 0; i < k; i += 2) {
#pragma GCC unroll 2
            for (r = 0; r < nr; r++) {
                wb = wr[r] + g + i;
                we[r] = _mm256_loadu_si256((const __m256i *) (const void *)
                                           wb->qs);
                ue[r] = _mm256_abs_epi8(we[r]);
                wo[r] = i + 1 < k
                        ? _mm256_loadu_si256((const __m256i *)
                                             (const void *) wb[1].qs)
                        : _mm256_setzero_si256();
                uo[r] = _mm256_abs_epi8(wo[r]);
            }

#pragma GCC unroll 4
            for (j = 0; j < nt; j++) {
                x = _mm256_xor_si256(flip, _mm256_loadu_si256(
                        (const __m256i *) (const void *)
                        (xr[j] + (g + i) * SLORA_QK8_0)));

#pragma GCC unroll 2
                for (r = 0; r < nr; r++) {
                    ae[r * nt + j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(
                        _mm256_madd_epi16(_mm256_maddubs_epi16(ue[r],
                            _mm256_sign_epi8(x, we[r])), ones)),
                        _mm256_broadcast_ss(&s[r * nt + j][i]),
                        ae[r * nt + j]);
                }

                if (i + 1 == k) {
                    continue;
                }

                x = _mm256_xor_si256(flip, _mm256_loadu_si256(
                        (const __m256i *) (const void *)
                        (xr[j] + (g + i + 1) * SLORA_QK8_0)));

#pragma GCC unroll 2
                for (r = 0; r < nr; r++) {
                    ao[r * nt + j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(
                        _mm256_madd_epi16(_mm256_maddubs_epi16(uo[r],
                            _mm256_sign_epi8(x, wo[r])), ones)),
                        _mm256_broadcast_ss(&s[r * nt + j][i + 1]),
                        ao[r * nt + j]);
                }
            }
        }
    }

#pragma GCC unroll 4
    for (j = 0; j < nt; j++) {
#pragma GCC unroll 2
        for (r = 0; r < nr; r++) {
            v = slora_q_tree256(ae[r * nt + j], ao[r * nt + j]);
            y[j * mm->ld_y + r] = mm->bias != NULL ? v + mm->bias[c + r] : v;
        }
    }
}


/* Q4_1: a pair's 32 bytes give block 2p's nibbles (low) and block
 * 2p + 1's (high); the group's minimum terms go first, blocks g .. g + 7
 * into the even register, g + 8 .. g + 15 into the odd one. */

static inline void
slora_q41_tile256(const slora_qmm_t *mm, float *y, int64_t c, int64_t t,
    const int nr, const int nt)
{
    const uint8_t   *xr[4], *wq[2];
    const uint16_t  *wd[2], *wm[2];
    const float     *xf;
    __m256           ae[4], ao[4], dl[2], dh[2], ml[2], mh[2];
    __m256           xl, xh, sl, sh;
    __m256i          lo[2], hi[2], wb, x0, x1, nib, ones, lane, m0, m1;
    float            s[4][SLORA_Q_GROUP], v;
    int32_t          nb, g, k, i;
    int              r, j;

    nb = mm->nb;
    nib = _mm256_set1_epi8(0x0f);
    ones = _mm256_set1_epi16(1);
    lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

#pragma GCC unroll 4
    for (j = 0; j < nt; j++) {
        xr[j] = mm->x + (t + j) * mm->ld_x;
    }

#pragma GCC unroll 2
    for (r = 0; r < nr; r++) {
        wq[r] = (const uint8_t *) mm->w + (c + r) * nb * 16;
        wd[r] = mm->d + (c + r) * nb;
        wm[r] = mm->m + (c + r) * nb;
    }

#pragma GCC unroll 4
    for (j = 0; j < nr * nt; j++) {
        ae[j] = _mm256_setzero_ps();
        ao[j] = _mm256_setzero_ps();
    }

    for (g = 0; g < nb; g += SLORA_Q_GROUP) {
        k = nb - g < SLORA_Q_GROUP ? nb - g : SLORA_Q_GROUP;
        m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(k), lane);
        m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(k - 8), lane);

#pragma GCC unroll 2
        for (r = 0; r < nr; r++) {
            slora_q_ld16h(&dl[r], &dh[r], wd[r] + g, k);
            slora_q_ld16h(&ml[r], &mh[r], wm[r] + g, k);
        }

#pragma GCC unroll 4
        for (j = 0; j < nt; j++) {
            xf = (const float *) (const void *) (xr[j] + mm->in) + g;
            xl = _mm256_maskload_ps(xf, m0);
            xh = _mm256_maskload_ps(xf + 8, m1);
            sl = _mm256_maskload_ps(xf + nb, m0);
            sh = _mm256_maskload_ps(xf + nb + 8, m1);

#pragma GCC unroll 2
            for (r = 0; r < nr; r++) {
                _mm256_storeu_ps(s[r * nt + j], _mm256_mul_ps(dl[r], xl));
                _mm256_storeu_ps(s[r * nt + j] + 8, _mm256_mul_ps(dh[r], xh));
                ae[r * nt + j] = _mm256_fmadd_ps(ml[r], sl, ae[r * nt + j]);
                ao[r * nt + j] = _mm256_fmadd_ps(mh[r], sh, ao[r * nt + j]);
            }
        }

        for (i = 0; i < k; i += 2) {
#pragma GCC unroll 2
            for (r = 0; r < nr; r++) {
                wb = _mm256_loadu_si256((const __m256i *) (const void *)
                                        (wq[r] + (g + i) * 16));
                lo[r] = _mm256_and_si256(wb, nib);
                hi[r] = _mm256_and_si256(_mm256_srli_epi16(wb, 4), nib);
            }

#pragma GCC unroll 4
            for (j = 0; j < nt; j++) {
                x0 = _mm256_loadu_si256((const __m256i *) (const void *)
                                        (xr[j] + (g + i) * SLORA_QK8_0));
                x1 = _mm256_loadu_si256((const __m256i *) (const void *)
                                        (xr[j] + (g + i + 1)
                                                 * SLORA_QK8_0));

#pragma GCC unroll 2
                for (r = 0; r < nr; r++) {
                    ae[r * nt + j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(
                        _mm256_madd_epi16(_mm256_maddubs_epi16(lo[r], x0),
                                          ones)),
                        _mm256_broadcast_ss(&s[r * nt + j][i]),
                        ae[r * nt + j]);
                    ao[r * nt + j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(
                        _mm256_madd_epi16(_mm256_maddubs_epi16(hi[r], x1),
                                          ones)),
                        _mm256_broadcast_ss(&s[r * nt + j][i + 1]),
                        ao[r * nt + j]);
                }
            }
        }
    }

#pragma GCC unroll 4
    for (j = 0; j < nt; j++) {
#pragma GCC unroll 2
        for (r = 0; r < nr; r++) {
            v = slora_q_tree256(ae[r * nt + j], ao[r * nt + j]);
            y[j * mm->ld_y + r] = mm->bias != NULL ? v + mm->bias[c + r] : v;
        }
    }
}


/*
 * Rows c0 .. c1 - 1 against nt tokens: one row at a time for several
 * tokens, two rows at a time for one; each shape compiled with its own
 * constants.
 */

static inline void
slora_qrows256(const slora_qmm_t *mm, float *y, int64_t c0, int64_t c1,
    int64_t t, const int nt, const int q41)
{
    int64_t  c;

    if (nt > 1) {
        for (c = c0; c < c1; c++) {
            if (q41) {
                slora_q41_tile256(mm, y + c - c0, c, t, 1, nt);

            } else {
                slora_q8_tile256(mm, y + c - c0, c, t, 1, nt);
            }
        }

        return;
    }

    for (c = c0; c + 2 <= c1; c += 2) {
        if (q41) {
            slora_q41_tile256(mm, y + c - c0, c, t, 2, 1);

        } else {
            slora_q8_tile256(mm, y + c - c0, c, t, 2, 1);
        }
    }

    if (c < c1) {
        if (q41) {
            slora_q41_tile256(mm, y + c - c0, c, t, 1, 1);

        } else {
            slora_q8_tile256(mm, y + c - c0, c, t, 1, 1);
        }
    }
}


static void
slora_q8_tile_avx2(const slora_qmm_t *mm, float *y, int64_t c0, int64_t c1,
    int64_t t, int nt)
{
    switch (nt) {

    case 4:
        slora_qrows256(mm, y, c0, c1, t, 4, 0);
        return;

    case 2:
        slora_qrows256(mm, y, c0, c1, t, 2, 0);
        return;

    case 1:
        slora_qrows256(mm, y, c0, c1, t, 1, 0);
        return;

    default:
        slora_q8_tile_c(mm, y, c0, c1, t, nt);
    }
}


static void
slora_q41_tile_avx2(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt)
{
    switch (nt) {

    case 4:
        slora_qrows256(mm, y, c0, c1, t, 4, 1);
        return;

    case 2:
        slora_qrows256(mm, y, c0, c1, t, 2, 1);
        return;

    case 1:
        slora_qrows256(mm, y, c0, c1, t, 1, 1);
        return;

    default:
        slora_q41_tile_c(mm, y, c0, c1, t, nt);
    }
}


/* slora_qround256 in sixteen lanes. */

static inline __m512i
slora_qround512(__m512 v)
{
    __m512  t, c127, n127;
    __m512  one;

    c127 = _mm512_set1_ps(127.0f);
    n127 = _mm512_set1_ps(-127.0f);
    one = _mm512_castsi512_ps(_mm512_or_si512(
              _mm512_and_si512(_mm512_castps_si512(v),
                               _mm512_set1_epi32((int) 0x80000000u)),
              _mm512_castps_si512(_mm512_set1_ps(1.0f))));

    t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    t = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(
                                  _mm512_abs_ps(_mm512_sub_ps(v, t)),
                                  _mm512_set1_ps(0.5f), _CMP_GE_OQ),
                           t, one);
    t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, c127, _CMP_GT_OQ), c127);
    t = _mm512_mask_mov_ps(t, _mm512_cmp_ps_mask(t, n127, _CMP_LT_OQ), n127);
    t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, t, _CMP_ORD_Q), t);

    return _mm512_cvttps_epi32(t);
}


static uint16_t
slora_qblk_avx512(uint8_t *q, int32_t *sum, const float *x, uint8_t flip)
{
    __m512   a0, a1, m, id;
    __m512i  r0, r1;
    __m128i  f;
    float    amax, d, inv;

    a0 = _mm512_loadu_ps(x);
    a1 = _mm512_loadu_ps(x + 16);
    m = _mm512_max_ps(_mm512_abs_ps(a0), _mm512_setzero_ps());
    m = _mm512_max_ps(_mm512_abs_ps(a1), m);
    amax = _mm512_reduce_max_ps(m);

    d = amax / 127.0f;
    inv = d != 0.0f && isfinite(d) ? 1.0f / d : 0.0f;
    id = _mm512_set1_ps(inv);

    r0 = slora_qround512(_mm512_mul_ps(a0, id));
    r1 = slora_qround512(_mm512_mul_ps(a1, id));
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(r0, r1));

    f = _mm_set1_epi8((char) flip);
    _mm_storeu_si128((__m128i *) (void *) q,
                     _mm_xor_si128(_mm512_cvtepi32_epi8(r0), f));
    _mm_storeu_si128((__m128i *) (void *) (q + 16),
                     _mm_xor_si128(_mm512_cvtepi32_epi8(r1), f));

    return _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
}


/* slora_q_tree in one register. */

static inline float
slora_q_tree512(__m512 a)
{
    __m256  h;
    __m128  q;

    h = _mm256_add_ps(_mm512_castps512_ps256(a),
                      _mm256_castpd_ps(_mm512_extractf64x4_pd(
                          _mm512_castps_pd(a), 1)));
    q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));

    return _mm_cvtss_f32(q);
}


/*
 * slora_q_tree on n (2, 4 or 8) registers at once: each level adds the
 * same lanes as slora_q_tree, for two to eight accumulators in one
 * instruction (halves of two registers, then quarters of two, then
 * pairs within quarters); sum i lands in lane i.
 */

static inline __m256
slora_q_tree512n(const __m512 *a, const int n)
{
    __m512  s[4], t[2], u;
    int     k;

#pragma GCC unroll 4
    for (k = 0; k < n / 2; k++) {
        s[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1],
                                                  0x44),
                             _mm512_shuffle_f32x4(a[2 * k], a[2 * k + 1],
                                                  0xee));
    }

    if (n == 2) {
        s[1] = s[0];
    }

#pragma GCC unroll 2
    for (k = 0; k < (n + 3) / 4; k++) {
        t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1],
                                                  0x88),
                             _mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1],
                                                  0xdd));
    }

    if (n <= 4) {
        t[1] = t[0];
    }

    u = _mm512_add_ps(_mm512_shuffle_ps(t[0], t[1], 0x44),
                      _mm512_shuffle_ps(t[0], t[1], 0xee));
    u = _mm512_add_ps(u, _mm512_movehdup_ps(u));

    /* token (or row) k of the first four in lane 4k, of the next four
     * in lane 4k + 2 */
    return _mm512_castps512_ps256(_mm512_permutexvar_ps(
               _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0,
                                 0, 0),
               u));
}


/* A tile's sums, plus the bias, into y: nt tokens of one row (ld_y
 * apart) or nr rows of one token (side by side). */

static inline void
slora_q_out512(float *y, int64_t ld_y, const __m512 *acc, const float *bias,
    const int nr, const int nt)
{
    __m256     v;
    __mmask8   km;
    float      o[8];
    int        j;

    if (nr * nt == 1) {
        o[0] = slora_q_tree512(acc[0]);
        y[0] = bias != NULL ? o[0] + bias[0] : o[0];
        return;
    }

    if (nt == 1) {
        km = (__mmask8) ((1u << nr) - 1);
        v = slora_q_tree512n(acc, nr);

        if (bias != NULL) {
            v = _mm256_add_ps(v, _mm256_maskz_loadu_ps(km, bias));
        }

        _mm256_mask_storeu_ps(y, km, v);
        return;
    }

    v = slora_q_tree512n(acc, nt);

    if (bias != NULL) {
        v = _mm256_add_ps(v, _mm256_set1_ps(bias[0]));
    }

    _mm256_storeu_ps(o, v);

#pragma GCC unroll 8
    for (j = 0; j < nt; j++) {
        y[j * ld_y] = o[j];
    }
}


/*
 * AVX512-VNNI tiles: a (row, token) keeps its sixteen accumulators in
 * one register; a pair of blocks is one 64-byte dpbusd, one conversion,
 * one permute that spreads the pair's two scales over their halves, and
 * one FMA. Q8_0: dpbusd(x + 128, w) is the product plus 128 times the
 * lane's weights; the accumulator starts at minus that, computed once
 * per weight pair. A last odd block pairs with zeros: its upper half
 * adds 0 * 0, which leaves every accumulator as it is (none is -0).
 */

static inline void
slora_q8_tile512(const slora_qmm_t *mm, float *y, int64_t c, int64_t t,
    const int nr, const int nt)
{
    const slora_block_q8_0_t  *wr[4], *wb;
    const uint8_t             *xr[8], *xp;
    const float               *xd;
    __m512                     acc[8], s[8], dw[4], dx;
    __m512i                    wv[4], cr[4], xv, idx, two, off, c80;
    __m256i                    hi;
    __mmask16                  km;
    int32_t                    nb, g, k, i;
    int                        r, j;

    nb = mm->nb;
    two = _mm512_set1_epi32(2);
    c80 = _mm512_set1_epi8((char) 0x80);
    off = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
                                               10, 11, 12, 13, 14, 15),
                             _mm512_set1_epi32(
                                 (int) sizeof(slora_block_q8_0_t)));

#pragma GCC unroll 8
    for (j = 0; j < nt; j++) {
        xr[j] = mm->x + (t + j) * mm->ld_x;
    }

#pragma GCC unroll 4
    for (r = 0; r < nr; r++) {
        wr[r] = (const slora_block_q8_0_t *) mm->w + (c + r) * nb;
    }

#pragma GCC unroll 8
    for (j = 0; j < nr * nt; j++) {
        acc[j] = _mm512_setzero_ps();
    }

    for (g = 0; g < nb; g += SLORA_Q_GROUP) {
        k = nb - g < SLORA_Q_GROUP ? nb - g : SLORA_Q_GROUP;
        km = (__mmask16) ((1u << k) - 1);

        /* the scales: 32 bits gathered from each block's start, d the
         * low 16 */
#pragma GCC unroll 4
        for (r = 0; r < nr; r++) {
            dw[r] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(
                        _mm512_mask_i32gather_epi32(_mm512_setzero_si512(),
                                                    km, off, wr[r] + g, 1)));
        }

#pragma GCC unroll 8
        for (j = 0; j < nt; j++) {
            xd = (const float *) (const void *) (xr[j] + mm->in);
            dx = _mm512_maskz_loadu_ps(km, xd + g);

#pragma GCC unroll 4
            for (r = 0; r < nr; r++) {
                s[r * nt + j] = _mm512_mul_ps(dw[r], dx);
            }
        }

        idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1,
                                1);

        for (i = 0; i < k; i += 2) {
#pragma GCC unroll 4
            for (r = 0; r < nr; r++) {
                wb = wr[r] + g + i;
                hi = i + 1 < k
                     ? _mm256_loadu_si256((const __m256i *) (const void *)
                                          wb[1].qs)
                     : _mm256_setzero_si256();
                wv[r] = _mm512_inserti64x4(_mm512_castsi256_si512(
                            _mm256_loadu_si256((const __m256i *)
                                               (const void *) wb->qs)),
                            hi, 1);
                cr[r] = _mm512_sub_epi32(_mm512_setzero_si512(),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), c80,
                                                wv[r]));
            }

#pragma GCC unroll 8
            for (j = 0; j < nt; j++) {
                xp = xr[j] + (g + i) * SLORA_QK8_0;
                xv = i + 1 < k
                     ? _mm512_loadu_si512((const void *) xp)
                     : _mm512_zextsi256_si512(_mm256_loadu_si256(
                           (const __m256i *) (const void *) xp));

#pragma GCC unroll 4
                for (r = 0; r < nr; r++) {
                    acc[r * nt + j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(
                        _mm512_dpbusd_epi32(cr[r], xv, wv[r])),
                        _mm512_permutexvar_ps(idx, s[r * nt + j]),
                        acc[r * nt + j]);
                }
            }

            idx = _mm512_add_epi32(idx, two);
        }
    }

    slora_q_out512(y, mm->ld_y, acc, mm->bias != NULL ? mm->bias + c : NULL,
                   nr, nt);
}


/* Q4_1: a pair's 32 bytes, loaded into both halves, shift right by 0
 * and 4 and give both blocks; each group first adds its minimum terms,
 * sixteen blocks in one FMA. */

static inline void
slora_q41_tile512(const slora_qmm_t *mm, float *y, int64_t c, int64_t t,
    const int nr, const int nt)
{
    const uint8_t   *xr[8], *wq[4];
    const uint16_t  *wd[4], *wm[4];
    const float     *xf;
    __m512           acc[8], s[8], dw[4], mw[4], dx, xs;
    __m512i          wv[4], xv, idx, two, nib, sh;
    __mmask16        km;
    int32_t          nb, g, k, i;
    int              r, j;

    nb = mm->nb;
    nib = _mm512_set1_epi8(0x0f);
    sh = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    two = _mm512_set1_epi32(2);

#pragma GCC unroll 8
    for (j = 0; j < nt; j++) {
        xr[j] = mm->x + (t + j) * mm->ld_x;
    }

#pragma GCC unroll 4
    for (r = 0; r < nr; r++) {
        wq[r] = (const uint8_t *) mm->w + (c + r) * nb * 16;
        wd[r] = mm->d + (c + r) * nb;
        wm[r] = mm->m + (c + r) * nb;
    }

#pragma GCC unroll 8
    for (j = 0; j < nr * nt; j++) {
        acc[j] = _mm512_setzero_ps();
    }

    for (g = 0; g < nb; g += SLORA_Q_GROUP) {
        k = nb - g < SLORA_Q_GROUP ? nb - g : SLORA_Q_GROUP;
        km = (__mmask16) ((1u << k) - 1);

#pragma GCC unroll 4
        for (r = 0; r < nr; r++) {
            dw[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(km, wd[r] + g));
            mw[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(km, wm[r] + g));
        }

#pragma GCC unroll 8
        for (j = 0; j < nt; j++) {
            xf = (const float *) (const void *) (xr[j] + mm->in);
            dx = _mm512_maskz_loadu_ps(km, xf + g);
            xs = _mm512_maskz_loadu_ps(km, xf + nb + g);

#pragma GCC unroll 4
            for (r = 0; r < nr; r++) {
                s[r * nt + j] = _mm512_mul_ps(dw[r], dx);
                acc[r * nt + j] = _mm512_fmadd_ps(mw[r], xs,
                                                  acc[r * nt + j]);
            }
        }

        idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1,
                                1);

        for (i = 0; i < k; i += 2) {
#pragma GCC unroll 4
            for (r = 0; r < nr; r++) {
                wv[r] = _mm512_and_si512(_mm512_srlv_epi16(
                            _mm512_broadcast_i64x4(_mm256_loadu_si256(
                                (const __m256i *) (const void *)
                                (wq[r] + (g + i) * 16))),
                            sh), nib);
            }

#pragma GCC unroll 8
            for (j = 0; j < nt; j++) {
                xv = _mm512_loadu_si512((const void *)
                                        (xr[j] + (g + i) * SLORA_QK8_0));

#pragma GCC unroll 4
                for (r = 0; r < nr; r++) {
                    acc[r * nt + j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(
                        _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r],
                                            xv)),
                        _mm512_permutexvar_ps(idx, s[r * nt + j]),
                        acc[r * nt + j]);
                }
            }

            idx = _mm512_add_epi32(idx, two);
        }
    }

    slora_q_out512(y, mm->ld_y, acc, mm->bias != NULL ? mm->bias + c : NULL,
                   nr, nt);
}


/* As slora_qrows256, four rows at a time for one token. */

static inline void
slora_qrows512(const slora_qmm_t *mm, float *y, int64_t c0, int64_t c1,
    int64_t t, const int nt, const int q41)
{
    int64_t  c;

    if (nt > 1) {
        for (c = c0; c < c1; c++) {
            if (q41) {
                slora_q41_tile512(mm, y + c - c0, c, t, 1, nt);

            } else {
                slora_q8_tile512(mm, y + c - c0, c, t, 1, nt);
            }
        }

        return;
    }

    for (c = c0; c + 4 <= c1; c += 4) {
        if (q41) {
            slora_q41_tile512(mm, y + c - c0, c, t, 4, 1);

        } else {
            slora_q8_tile512(mm, y + c - c0, c, t, 4, 1);
        }
    }

    if (c + 2 <= c1) {
        if (q41) {
            slora_q41_tile512(mm, y + c - c0, c, t, 2, 1);

        } else {
            slora_q8_tile512(mm, y + c - c0, c, t, 2, 1);
        }

        c += 2;
    }

    if (c < c1) {
        if (q41) {
            slora_q41_tile512(mm, y + c - c0, c, t, 1, 1);

        } else {
            slora_q8_tile512(mm, y + c - c0, c, t, 1, 1);
        }
    }
}


static void
slora_q8_tile_avx512(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt)
{
    switch (nt) {

    case 8:
        slora_qrows512(mm, y, c0, c1, t, 8, 0);
        return;

    case 4:
        slora_qrows512(mm, y, c0, c1, t, 4, 0);
        return;

    case 2:
        slora_qrows512(mm, y, c0, c1, t, 2, 0);
        return;

    case 1:
        slora_qrows512(mm, y, c0, c1, t, 1, 0);
        return;

    default:
        slora_q8_tile_c(mm, y, c0, c1, t, nt);
    }
}


static void
slora_q41_tile_avx512(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt)
{
    switch (nt) {

    case 8:
        slora_qrows512(mm, y, c0, c1, t, 8, 1);
        return;

    case 4:
        slora_qrows512(mm, y, c0, c1, t, 4, 1);
        return;

    case 2:
        slora_qrows512(mm, y, c0, c1, t, 2, 1);
        return;

    case 1:
        slora_qrows512(mm, y, c0, c1, t, 1, 1);
        return;

    default:
        slora_q41_tile_c(mm, y, c0, c1, t, nt);
    }
}

#endif
