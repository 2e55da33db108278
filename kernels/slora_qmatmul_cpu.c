/*
 * slora_qmatmul_cpu.c: Q8_0 and Q4_1 quantization and the Q8_0 x Q8_0
 * and Q4_1 x Q8 matrix products on the CPU, with AVX512-VNNI, AVX2 and
 * portable C dot products chosen at run time (__builtin_cpu_supports),
 * each compiled for its own target by a function attribute, so the build
 * needs no -march flag.
 *
 * The one idea (see slora_qmatmul.h): a block's 32 byte products are
 * summed exactly in eight int32 lanes of four; lane j of block b adds
 * the exact double d_w * d_x * lane into accumulator (b % 2, j); the
 * sixteen accumulators are summed by one fixed tree. The two interleaved
 * sets halve the add latency chain; since every term is exact, a fused
 * multiply-add or a plain one give the same double, so the three paths
 * agree to the bit. Quantization is plain C, shared by weights and
 * activations. Q4_1 weights are unsigned nibbles, so dpbusd (u8 x s8)
 * and maddubs take them as they are, two blocks per load; its per-block
 * scales come eight at a time from the packed rows.
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

/* One row of packed Q4_1 weights and one row of Q4_1 activations. */
typedef struct {
    const uint8_t   *qs;                /* [nb / 2] pairs of 32 bytes */
    const uint16_t  *d;                 /* [nb] f16 */
    const uint16_t  *m;                 /* [nb] f16 */
    const int8_t    *xq;                /* [nb * 32] */
    const double    *xd;                /* [nb] d_x */
    const double    *xs;                /* [nb] d_x * sum(q_x) */
    int32_t          nb;
} slora_q41_row_t;

typedef float (*slora_q41dot_fn)(const slora_q41_row_t *r);


static void slora_q_block(slora_block_q8_0_t *y, const float *x);
static float slora_q_f16_to_f32(uint16_t h);
static uint16_t slora_q_f32_to_f16(float f);
static double slora_q_reduce(const double *acc);
static double slora_q_reduce8(const double *a);
static slora_qdot_fn slora_qdot_pick(int isa);
static slora_q41dot_fn slora_q41dot_pick(int isa);
static size_t slora_q41_act_row(int32_t in);
static void slora_q41_row(slora_q41_row_t *r, const void *w, int64_t out,
    int32_t in, int64_t c, const void *xq, int64_t t);
static float slora_q41dot_c(const slora_q41_row_t *r);
static float slora_qdot_c(const slora_block_q8_0_t *w,
    const slora_block_q8_0_t *x, int32_t nb);
#ifdef SLORA_Q_X86
static float slora_qdot_avx2(const slora_block_q8_0_t *w,
    const slora_block_q8_0_t *x, int32_t nb)
    __attribute__((target("avx2,f16c")));
static float slora_qdot_avx512(const slora_block_q8_0_t *w,
    const slora_block_q8_0_t *x, int32_t nb)
    __attribute__((target("avx2,f16c,avx512f,avx512vl,avx512bw,"
                          "avx512vnni")));
static double slora_q_reduce512(__m512d a)
    __attribute__((target("avx2,f16c,avx512f,avx512vl,avx512bw,"
                          "avx512vnni")));
static float slora_q41dot_avx2(const slora_q41_row_t *r)
    __attribute__((target("avx2,f16c")));
static float slora_q41dot_avx512(const slora_q41_row_t *r)
    __attribute__((target("avx2,f16c,avx512f,avx512vl,avx512bw,"
                          "avx512vnni")));
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
               && __builtin_cpu_supports("avx512bw")
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
    slora_block_q8_0_t   blk;
    uint8_t             *row;
    double              *xd, *xs;
    int64_t              r, r1, nb, b;
    int32_t              i, sum;

    if (xq == NULL || x == NULL || n < 0 || in <= 0 || in % 64 != 0
        || ld_x < in || nth < 1 || ith < 0 || ith >= nth
        || xq_size < slora_q4_1_act_size(n, in))
    {
        return -1;
    }

    nb = in / SLORA_QK8_0;
    r1 = n * (ith + 1) / nth;

    for (r = n * ith / nth; r < r1; r++) {
        row = (uint8_t *) xq + r * slora_q41_act_row(in);
        xd = (double *) (void *) (row + in);
        xs = xd + nb;

        for (b = 0; b < nb; b++) {
            slora_q_block(&blk, x + r * ld_x + b * SLORA_QK8_0);
            memcpy(row + b * SLORA_QK8_0, blk.qs, SLORA_QK8_0);
            sum = 0;

            for (i = 0; i < SLORA_QK8_0; i++) {
                sum += blk.qs[i];
            }

            xd[b] = (double) slora_q_f16_to_f32(blk.d);
            xs[b] = xd[b] * (double) sum;
        }
    }

    return 0;
}


float
slora_qdot_q4_1(const void *w, int32_t out, int32_t in, int32_t c,
    const void *xq, int64_t t, int isa)
{
    slora_q41dot_fn   fn;
    slora_q41_row_t   r;

    fn = slora_q41dot_pick(isa);

    if (fn == NULL || w == NULL || xq == NULL || in <= 0 || in % 64 != 0
        || c < 0 || c >= out || t < 0)
    {
        return NAN;
    }

    slora_q41_row(&r, w, out, in, c, xq, t);

    return fn(&r);
}


int
slora_q4_1_matmul(float *y, int64_t ld_y, const void *xq, size_t xq_size,
    const void *w, const float *bias, int64_t n, int32_t out, int32_t in,
    int ith, int nth)
{
    slora_q41dot_fn   dot;
    slora_q41_row_t   r;
    int32_t           per, c0, c1, cb, ce, c;
    int64_t           t;
    float            *yt;

    if (y == NULL || xq == NULL || w == NULL || n < 0 || out <= 0
        || in <= 0 || in % 64 != 0 || ld_y < out || nth < 1 || ith < 0
        || ith >= nth || xq_size < slora_q4_1_act_size(n, in))
    {
        return -1;
    }

    dot = slora_q41dot_pick(SLORA_QISA_AUTO);
    per = ((out + nth - 1) / nth + 15) & ~15;
    c0 = ith * per < out ? ith * per : out;
    c1 = out - c0 < per ? out : c0 + per;

    for (cb = c0; cb < c1; cb += SLORA_Q_COLS) {
        ce = c1 - cb < SLORA_Q_COLS ? c1 : cb + SLORA_Q_COLS;

        for (t = 0; t < n; t++) {
            yt = y + t * ld_y;

            for (c = cb; c < ce; c++) {
                slora_q41_row(&r, w, out, in, c, xq, t);
                yt[c] = dot(&r);
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


/* A row of activations: in quants, then 2 * nb doubles; 64-byte steps. */

static size_t
slora_q41_act_row(int32_t in)
{
    return ((size_t) in + (size_t) (in / SLORA_QK8_0) * 16 + 63)
           & ~(size_t) 63;
}


static void
slora_q41_row(slora_q41_row_t *r, const void *w, int64_t out, int32_t in,
    int64_t c, const void *xq, int64_t t)
{
    const uint8_t  *row;
    int64_t         nb;

    nb = in / SLORA_QK4_1;
    r->nb = (int32_t) nb;
    r->qs = (const uint8_t *) w + c * nb * 16;
    r->d = (const uint16_t *) (const void *) ((const uint8_t *) w
                                              + out * nb * 16) + c * nb;
    r->m = r->d + out * nb;

    row = (const uint8_t *) xq + t * slora_q41_act_row(in);
    r->xq = (const int8_t *) row;
    r->xd = (const double *) (const void *) (row + in);
    r->xs = r->xd + nb;
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


static double
slora_q_reduce8(const double *a)
{
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}


static slora_q41dot_fn
slora_q41dot_pick(int isa)
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
        return slora_q41dot_avx512;
    }

    if (isa == SLORA_QISA_AVX2) {
        return slora_q41dot_avx2;
    }
#endif

    return slora_q41dot_c;
}


/*
 * Lane j of set b % 2 adds d_w * d_x * (the products of elements 4j ..
 * 4j + 3 of block b); lane b % 8 of the minimum set adds m_w * d_x *
 * sum(q_x). Every term is exact; only the order of adds matters.
 */

static float
slora_q41dot_c(const slora_q41_row_t *r)
{
    double          acc[16], macc[8], s;
    int32_t         b, j, k, p, h;
    const uint8_t  *pq;
    const int8_t   *xq;

    for (j = 0; j < 16; j++) {
        acc[j] = 0.0;
    }

    for (j = 0; j < 8; j++) {
        macc[j] = 0.0;
    }

    for (b = 0; b < r->nb; b++) {
        h = b & 1;
        pq = r->qs + (b - h) * 16;
        xq = r->xq + b * 32;
        s = (double) slora_q_f16_to_f32(r->d[b]) * r->xd[b];

        for (j = 0; j < 8; j++) {
            p = 0;

            for (k = 4 * j; k < 4 * j + 4; k++) {
                p += (int32_t) (h ? pq[k] >> 4 : pq[k] & 0x0f)
                     * (int32_t) xq[k];
            }

            acc[h * 8 + j] += s * (double) p;
        }

        macc[b & 7] += (double) slora_q_f16_to_f32(r->m[b]) * r->xs[b];
    }

    return (float) (slora_q_reduce(acc) + slora_q_reduce8(macc));
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

    return (float) slora_q_reduce512(_mm512_add_pd(a0, a1));
}


/* slora_q_reduce8's tree in registers: the same adds of the same pairs. */

static double
slora_q_reduce512(__m512d a)
{
    __m256d  t;
    __m128d  u;

    t = _mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
    u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));

    return _mm_cvtsd_f64(_mm_add_sd(u, _mm_unpackhi_pd(u, u)));
}


/*
 * Q4_1, AVX2: a pair's 32 bytes give block 2p's elements (low nibbles)
 * and block 2p + 1's (high); maddubs takes them unsigned as they are.
 * Scales go eight at a time through F16C into s[], the minimum terms
 * into two vectors of four lanes; the blocks past the last group of
 * eight go through the same lanes in plain C, in the same order.
 */

#define slora_q41_avx2_half(lo, hi, s_, p_)                                  \
    do {                                                                      \
        __m256d  d_;                                                          \
                                                                              \
        d_ = _mm256_set1_pd(s_);                                              \
        lo = _mm256_add_pd(lo, _mm256_mul_pd(d_,                              \
                 _mm256_cvtepi32_pd(_mm256_castsi256_si128(p_))));            \
        hi = _mm256_add_pd(hi, _mm256_mul_pd(d_,                              \
                 _mm256_cvtepi32_pd(_mm256_extracti128_si256(p_, 1))));       \
    } while (0)


static float
slora_q41dot_avx2(const slora_q41_row_t *r)
{
    __m256d  a0, a1, b0, b1, m0, m1;
    __m256i  nib, ones, w, lo, hi, p0, p1;
    __m256   f;
    double   s[8], acc[16], macc[8];
    int32_t  g, k, i, b;

    a0 = _mm256_setzero_pd();
    a1 = _mm256_setzero_pd();
    b0 = _mm256_setzero_pd();
    b1 = _mm256_setzero_pd();
    m0 = _mm256_setzero_pd();
    m1 = _mm256_setzero_pd();
    nib = _mm256_set1_epi8(0x0f);
    ones = _mm256_set1_epi16(1);

    for (g = 0; g < r->nb; g += 8) {
        k = r->nb - g < 8 ? r->nb - g : 8;

        if (k == 8) {
            f = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)
                                                (const void *) (r->d + g)));
            _mm256_storeu_pd(s, _mm256_mul_pd(
                _mm256_cvtps_pd(_mm256_castps256_ps128(f)),
                _mm256_loadu_pd(r->xd + g)));
            _mm256_storeu_pd(s + 4, _mm256_mul_pd(
                _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)),
                _mm256_loadu_pd(r->xd + g + 4)));

            f = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)
                                                (const void *) (r->m + g)));
            m0 = _mm256_add_pd(m0, _mm256_mul_pd(
                _mm256_cvtps_pd(_mm256_castps256_ps128(f)),
                _mm256_loadu_pd(r->xs + g)));
            m1 = _mm256_add_pd(m1, _mm256_mul_pd(
                _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)),
                _mm256_loadu_pd(r->xs + g + 4)));

        } else {
            for (i = 0; i < k; i++) {
                s[i] = (double) _cvtsh_ss(r->d[g + i]) * r->xd[g + i];
            }
        }

        for (i = 0; i < k; i += 2) {
            b = g + i;
            w = _mm256_loadu_si256((const __m256i *) (const void *)
                                   (r->qs + b * 16));
            lo = _mm256_and_si256(w, nib);
            hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nib);
            p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo,
                     _mm256_loadu_si256((const __m256i *) (const void *)
                                        (r->xq + b * 32))), ones);
            p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi,
                     _mm256_loadu_si256((const __m256i *) (const void *)
                                        (r->xq + b * 32 + 32))), ones);
            slora_q41_avx2_half(a0, a1, s[i], p0);
            slora_q41_avx2_half(b0, b1, s[i + 1], p1);
        }
    }

    _mm256_storeu_pd(acc, a0);
    _mm256_storeu_pd(acc + 4, a1);
    _mm256_storeu_pd(acc + 8, b0);
    _mm256_storeu_pd(acc + 12, b1);
    _mm256_storeu_pd(macc, m0);
    _mm256_storeu_pd(macc + 4, m1);
    _mm256_zeroupper();

    for (b = r->nb & ~7; b < r->nb; b++) {
        macc[b & 7] += (double) _cvtsh_ss(r->m[b]) * r->xs[b];
    }

    return (float) (slora_q_reduce(acc) + slora_q_reduce8(macc));
}


/*
 * Q4_1, AVX512-VNNI: one dpbusd multiplies a whole pair of blocks; a
 * group of fewer than eight blocks at the end loads its scales under a
 * mask and leaves the minimum lanes past it as they are.
 */

static float
slora_q41dot_avx512(const slora_q41_row_t *r)
{
    __m512d    a0, a1, mv, sv;
    __m512i    p;
    __m256i    nib, w;
    __m256     f, fm;
    __mmask8   km;
    double     s[8];
    int32_t    g, k, i, b;

    a0 = _mm512_setzero_pd();
    a1 = _mm512_setzero_pd();
    mv = _mm512_setzero_pd();
    nib = _mm256_set1_epi8(0x0f);

    for (g = 0; g < r->nb; g += 8) {
        k = r->nb - g < 8 ? r->nb - g : 8;
        km = (__mmask8) ((1u << k) - 1);

        f = _mm256_cvtph_ps(_mm_maskz_loadu_epi16(km, r->d + g));
        fm = _mm256_cvtph_ps(_mm_maskz_loadu_epi16(km, r->m + g));
        sv = _mm512_mul_pd(_mm512_cvtps_pd(f),
                           _mm512_maskz_loadu_pd(km, r->xd + g));
        _mm512_storeu_pd(s, sv);
        mv = _mm512_mask_add_pd(mv, km, mv,
                                _mm512_mul_pd(_mm512_cvtps_pd(fm),
                                    _mm512_maskz_loadu_pd(km, r->xs + g)));

        for (i = 0; i < k; i += 2) {
            b = g + i;
            w = _mm256_loadu_si256((const __m256i *) (const void *)
                                   (r->qs + b * 16));
            p = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                    _mm512_inserti64x4(_mm512_castsi256_si512(
                                           _mm256_and_si256(w, nib)),
                                       _mm256_and_si256(
                                           _mm256_srli_epi16(w, 4), nib),
                                       1),
                    _mm512_loadu_si512((const void *) (r->xq + b * 32)));
            a0 = _mm512_add_pd(a0, _mm512_mul_pd(_mm512_set1_pd(s[i]),
                     _mm512_cvtepi32_pd(_mm512_castsi512_si256(p))));
            a1 = _mm512_add_pd(a1, _mm512_mul_pd(_mm512_set1_pd(s[i + 1]),
                     _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(p, 1))));
        }
    }

    return (float) (slora_q_reduce512(_mm512_add_pd(a0, a1))
                    + slora_q_reduce512(mv));
}

#endif
