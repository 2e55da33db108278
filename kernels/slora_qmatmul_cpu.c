/*
 * slora_qmatmul_cpu.c: Q8_0 and Q4_1 quantization and the Q8_0 x Q8_0
 * and Q4_1 x Q8 matrix products on the CPU, with AVX512-VNNI, AVX2 and
 * portable C paths chosen at run time (__builtin_cpu_supports), and
 * on AArch64 NEON with dotprod (the kernel's HWCAP), each compiled for
 * its own target by a function attribute, so the build needs no -march
 * flag. The x86 paths live in slora_qmatmul_x86_cpu.c, the AArch64 one
 * in slora_qmatmul_arm_cpu.c, the layout they share in
 * slora_qmatmul_int.h.
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

#include <math.h>
#include <string.h>

#include "slora_qmatmul_int.h"


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
static float slora_q_f16_to_f32(uint16_t h);
static uint16_t slora_q_f32_to_f16(float f);
static float slora_q_tree(float *a);
static uint16_t slora_qblk_c(uint8_t *q, int32_t *sum, const float *x,
    uint8_t flip);
static float slora_q8_dot_c(const slora_qmm_t *mm, int64_t c, int64_t t);
static float slora_q41_dot_c(const slora_qmm_t *mm, int64_t c, int64_t t);


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

#ifdef SLORA_Q_ARM
static const slora_qisa_t  slora_qisa_neon = {
    slora_q8_tile_neon, slora_q41_tile_neon, slora_qblk_c, 4
};
#endif


int
slora_quantize_q8_0(slora_block_q8_0_t *dst, const float *src, int64_t n)
{
    return slora_quantize_q8_0_isa(dst, src, n, SLORA_QISA_AUTO);
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

#ifdef SLORA_Q_ARM
    case SLORA_QISA_NEON:
        return slora_qmatmul_neon_supported();
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

        /* a finite block past what f16 holds saturates, as Q8_0's
         * scale does: its minimum to +-65504, its step to 65504 (the
         * values past m + 15 d come back as that); an infinity shows */
        if (isfinite(mn) && isfinite(mx)) {
            mn = fminf(fmaxf(mn, -SLORA_Q_D_MAX), SLORA_Q_D_MAX);
            d = (mx - mn) / 15.0f;
            d = d <= SLORA_Q_D_MAX ? d : SLORA_Q_D_MAX;

        } else {
            d = (mx - mn) / 15.0f;
        }

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

#ifdef SLORA_Q_ARM
    if (isa == SLORA_QISA_AUTO && slora_qmatmul_isa_supported(SLORA_QISA_NEON))
    {
        isa = SLORA_QISA_NEON;
    }

    if (isa == SLORA_QISA_NEON) {
        return &slora_qisa_neon;
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
 * within +-127; a NaN becomes 0. A finite d past the largest f16, 65504
 * (max|x| past some 8.3e6), is cut to it, where ggml's rounds to
 * infinity and every product with the block is inf or NaN: the block's
 * values within 127.5 d keep their half step, those past it saturate to
 * +-127 d. An infinite max|x| keeps an infinite scale, so it shows. */

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
    d = d > SLORA_Q_D_MAX && isfinite(d) ? SLORA_Q_D_MAX : d;
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


void
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


void
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
