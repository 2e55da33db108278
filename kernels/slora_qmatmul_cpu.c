/*
 * slora_qmatmul_cpu.c: Q8_0 quantization and the Q8_0 x Q8_0 matrix
 * product on the CPU, with AVX512-VNNI, AVX2 and portable C dot
 * products chosen at run time (__builtin_cpu_supports), each compiled
 * for its own target by a function attribute, so the build needs no
 * -march flag.
 *
 * The one idea (see slora_qmatmul.h): a block's 32 byte products are
 * summed exactly in eight int32 lanes of four; lane j of block b adds
 * the exact double d_w * d_x * lane into accumulator (b % 2, j); the
 * sixteen accumulators are summed by one fixed tree. The two interleaved
 * sets halve the add latency chain; since every term is exact, a fused
 * multiply-add or a plain one give the same double, so the three paths
 * agree to the bit. Quantization is plain C, shared by weights and
 * activations.
 */

#include <string.h>
#include <math.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SLORA_Q_X86  1
#endif

#include "slora_qmatmul.h"


#define SLORA_Q_COLS  16            /* weight rows kept hot per batch pass */


typedef float (*slora_qdot_fn)(const slora_block_q8_0_t *w,
    const slora_block_q8_0_t *x, int32_t nb);


static void slora_q_block(slora_block_q8_0_t *y, const float *x);
static float slora_q_f16_to_f32(uint16_t h);
static uint16_t slora_q_f32_to_f16(float f);
static double slora_q_reduce(const double *acc);
static slora_qdot_fn slora_qdot_pick(int isa);
static float slora_qdot_c(const slora_block_q8_0_t *w,
    const slora_block_q8_0_t *x, int32_t nb);
#ifdef SLORA_Q_X86
static float slora_qdot_avx2(const slora_block_q8_0_t *w,
    const slora_block_q8_0_t *x, int32_t nb)
    __attribute__((target("avx2,f16c")));
static float slora_qdot_avx512(const slora_block_q8_0_t *w,
    const slora_block_q8_0_t *x, int32_t nb)
    __attribute__((target("avx2,f16c,avx512f,avx512vl,avx512vnni")));
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
        return __builtin_cpu_supports("avx2");

    case SLORA_QISA_AVX512:
        return __builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("avx512f")
               && __builtin_cpu_supports("avx512vl")
               && __builtin_cpu_supports("avx512vnni");
#endif

    default:
        return 0;
    }
}


float
slora_qdot_q8_0(const slora_block_q8_0_t *w, const slora_block_q8_0_t *x,
    int32_t nb, int isa)
{
    slora_qdot_fn  fn;

    fn = slora_qdot_pick(isa);

    if (fn == NULL || w == NULL || x == NULL || nb < 0) {
        return NAN;
    }

    return fn(w, x, nb);
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

    return (size_t) n * (size_t) (in / SLORA_QK8_0)
           * sizeof(slora_block_q8_0_t);
}


int
slora_qmatmul_quantize(void *xq, size_t xq_size, const float *x,
    int64_t ld_x, int64_t n, int32_t in, int ith, int nth)
{
    slora_block_q8_0_t  *q = xq;
    int64_t              r, r1, nb;

    if (xq == NULL || x == NULL || n < 0 || in <= 0
        || in % SLORA_QK8_0 != 0 || ld_x < in || nth < 1 || ith < 0
        || ith >= nth || xq_size < slora_qmatmul_act_size(n, in))
    {
        return -1;
    }

    nb = in / SLORA_QK8_0;
    r1 = n * (ith + 1) / nth;

    for (r = n * ith / nth; r < r1; r++) {
        slora_quantize_q8_0(q + r * nb, x + r * ld_x, in);
    }

    return 0;
}


int
slora_qmatmul(float *y, int64_t ld_y, const void *xq, size_t xq_size,
    const slora_block_q8_0_t *w, const float *bias, int64_t n, int32_t out,
    int32_t in, int ith, int nth)
{
    const slora_block_q8_0_t  *xr;
    slora_qdot_fn              dot;
    int32_t                    nb, per, c0, c1, cb, ce, c;
    int64_t                    t;
    float                     *yt;

    if (y == NULL || xq == NULL || w == NULL || n < 0 || out <= 0
        || in <= 0 || in % SLORA_QK8_0 != 0 || ld_y < out || nth < 1
        || ith < 0 || ith >= nth || xq_size < slora_qmatmul_act_size(n, in))
    {
        return -1;
    }

    dot = slora_qdot_pick(SLORA_QISA_AUTO);
    nb = in / SLORA_QK8_0;
    per = ((out + nth - 1) / nth + 15) & ~15;
    c0 = ith * per < out ? ith * per : out;
    c1 = out - c0 < per ? out : c0 + per;

    for (cb = c0; cb < c1; cb += SLORA_Q_COLS) {
        ce = c1 - cb < SLORA_Q_COLS ? c1 : cb + SLORA_Q_COLS;

        for (t = 0; t < n; t++) {
            xr = (const slora_block_q8_0_t *) xq + t * nb;
            yt = y + t * ld_y;

            for (c = cb; c < ce; c++) {
                yt[c] = dot(w + (int64_t) c * nb, xr, nb);
            }

            if (bias != NULL) {
                for (c = cb; c < ce; c++) {
                    yt[c] += bias[c];
                }
            }
        }
    }

    return 0;
}


/* ggml's Q8_0: d = max|x| / 127, q = round(x / d); a NaN becomes 0. */

static void
slora_q_block(slora_block_q8_0_t *y, const float *x)
{
    float    amax, a, d, id, v;
    int32_t  i;

    amax = 0.0f;

    for (i = 0; i < SLORA_QK8_0; i++) {
        a = fabsf(x[i]);
        amax = a > amax ? a : amax;
    }

    d = amax / 127.0f;
    id = d != 0.0f && isfinite(d) ? 1.0f / d : 0.0f;
    y->d = slora_q_f32_to_f16(d);

    for (i = 0; i < SLORA_QK8_0; i++) {
        v = roundf(x[i] * id);
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        y->qs[i] = (int8_t) (v == v ? v : 0.0f);
    }
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


/* acc[0..15]: set 0 lanes 0..7, then set 1; one fixed order of adds. */

static double
slora_q_reduce(const double *acc)
{
    double   a[8];
    int32_t  j;

    for (j = 0; j < 8; j++) {
        a[j] = acc[j] + acc[8 + j];
    }

    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}


static slora_qdot_fn
slora_qdot_pick(int isa)
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
        return slora_qdot_avx512;
    }

    if (isa == SLORA_QISA_AVX2) {
        return slora_qdot_avx2;
    }
#endif

    return slora_qdot_c;
}


static float
slora_qdot_c(const slora_block_q8_0_t *w, const slora_block_q8_0_t *x,
    int32_t nb)
{
    double          acc[16], d;
    int32_t         b, j, k, p;
    const int8_t   *wq, *xq;

    for (j = 0; j < 16; j++) {
        acc[j] = 0.0;
    }

    for (b = 0; b < nb; b++) {
        d = (double) slora_q_f16_to_f32(w[b].d)
            * (double) slora_q_f16_to_f32(x[b].d);
        wq = w[b].qs;
        xq = x[b].qs;

        for (j = 0; j < 8; j++) {
            p = 0;

            for (k = 4 * j; k < 4 * j + 4; k++) {
                p += (int32_t) wq[k] * (int32_t) xq[k];
            }

            acc[(b & 1) * 8 + j] += d * (double) p;
        }
    }

    return (float) slora_q_reduce(acc);
}


#ifdef SLORA_Q_X86

/*
 * maddubs pairs |x| * sign(w, x) into int16 (at most 2 * 127 * 127, no
 * saturation), madd with ones sums the pairs into the eight lanes.
 * Blocks go by pairs so each set of accumulators stays in registers;
 * the upper halves are cleared before the plain C reduction runs.
 */

#define slora_qdot_avx2_block(acc_lo, acc_hi, wb, xb)                         \
    do {                                                                      \
        __m256i  wq_, xq_, p_;                                                \
        __m256d  d_;                                                          \
                                                                              \
        wq_ = _mm256_loadu_si256((const __m256i *) (const void *) (wb)->qs);  \
        xq_ = _mm256_loadu_si256((const __m256i *) (const void *) (xb)->qs);  \
        p_ = _mm256_madd_epi16(                                               \
                 _mm256_maddubs_epi16(_mm256_sign_epi8(xq_, xq_),             \
                                      _mm256_sign_epi8(wq_, xq_)),            \
                 ones);                                                       \
        d_ = _mm256_set1_pd((double) _cvtsh_ss((wb)->d)                       \
                            * (double) _cvtsh_ss((xb)->d));                   \
        acc_lo = _mm256_add_pd(acc_lo, _mm256_mul_pd(d_,                      \
                     _mm256_cvtepi32_pd(_mm256_castsi256_si128(p_))));        \
        acc_hi = _mm256_add_pd(acc_hi, _mm256_mul_pd(d_,                      \
                     _mm256_cvtepi32_pd(_mm256_extracti128_si256(p_, 1))));   \
    } while (0)


static float
slora_qdot_avx2(const slora_block_q8_0_t *w, const slora_block_q8_0_t *x,
    int32_t nb)
{
    __m256d  a0, a1, b0, b1;
    __m256i  ones;
    double   a[16];
    int32_t  b;

    a0 = _mm256_setzero_pd();
    a1 = _mm256_setzero_pd();
    b0 = _mm256_setzero_pd();
    b1 = _mm256_setzero_pd();
    ones = _mm256_set1_epi16(1);

    for (b = 0; b + 1 < nb; b += 2) {
        slora_qdot_avx2_block(a0, a1, w + b, x + b);
        slora_qdot_avx2_block(b0, b1, w + b + 1, x + b + 1);
    }

    if (b < nb) {
        slora_qdot_avx2_block(a0, a1, w + b, x + b);
    }

    _mm256_storeu_pd(a, a0);
    _mm256_storeu_pd(a + 4, a1);
    _mm256_storeu_pd(a + 8, b0);
    _mm256_storeu_pd(a + 12, b1);
    _mm256_zeroupper();

    return (float) slora_q_reduce(a);
}


/* dpbusd sums the four u8 x s8 products of each lane without
 * saturation; the lanes widen to eight doubles in one register. */

#define slora_qdot_avx512_block(acc, wb, xb)                                  \
    do {                                                                      \
        __m256i  wq_, xq_, p_;                                                \
        __m512d  d_;                                                          \
                                                                              \
        wq_ = _mm256_loadu_si256((const __m256i *) (const void *) (wb)->qs);  \
        xq_ = _mm256_loadu_si256((const __m256i *) (const void *) (xb)->qs);  \
        p_ = _mm256_dpbusd_epi32(_mm256_setzero_si256(),                      \
                                 _mm256_sign_epi8(xq_, xq_),                  \
                                 _mm256_sign_epi8(wq_, xq_));                 \
        d_ = _mm512_set1_pd((double) _cvtsh_ss((wb)->d)                       \
                            * (double) _cvtsh_ss((xb)->d));                   \
        acc = _mm512_add_pd(acc, _mm512_mul_pd(d_, _mm512_cvtepi32_pd(p_)));  \
    } while (0)


static float
slora_qdot_avx512(const slora_block_q8_0_t *w, const slora_block_q8_0_t *x,
    int32_t nb)
{
    __m512d  a0, a1;
    double   a[16];
    int32_t  b;

    a0 = _mm512_setzero_pd();
    a1 = _mm512_setzero_pd();

    for (b = 0; b + 1 < nb; b += 2) {
        slora_qdot_avx512_block(a0, w + b, x + b);
        slora_qdot_avx512_block(a1, w + b + 1, x + b + 1);
    }

    if (b < nb) {
        slora_qdot_avx512_block(a0, w + b, x + b);
    }

    _mm512_storeu_pd(a, a0);
    _mm512_storeu_pd(a + 8, a1);
    _mm256_zeroupper();

    return (float) slora_q_reduce(a);
}

#endif
