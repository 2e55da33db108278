/*
 * slora_qmatmul_x86_cpu.c: the quantized products' AVX2 and AVX512-VNNI
 * paths: the tiles (one weight row and up to eight tokens, or up to four
 * rows of one token) and the vectorized quantizers, each compiled for its
 * target by a function attribute and chosen at run time by
 * slora_qmatmul_cpu.c.
 *
 * The one idea: every (row, token) keeps sixteen f32 accumulators, fed
 * by one FMA per pair of blocks in a fixed order and summed by one fixed
 * tree, exactly as the portable C path does lane by lane, so all three
 * paths agree to the bit (slora_qmatmul_cpu.c says how).
 */

#include <math.h>
#include <string.h>

#include "slora_qmatmul_int.h"


#ifdef SLORA_Q_X86

static inline __m256i slora_qround256(__m256 v)
    SLORA_Q_AVX2 __attribute__((always_inline));
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
static inline __m512i slora_qround512(__m512 v)
    SLORA_Q_AVX512 __attribute__((always_inline));
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


/* slora_qblk_c in four vectors, its scale saturated alike; max_ps(|x|,
 * m) keeps m when x is NaN, as the C comparison does. F16C rounds d as
 * slora_q_f32_to_f16 does (d is never NaN), and calling no SSE code
 * keeps the upper halves out of the way of the caller's. */

uint16_t
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
    d = d > SLORA_Q_D_MAX && isfinite(d) ? SLORA_Q_D_MAX : d;
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

    h = slora_q_group_pad(b, h, k, sizeof(uint16_t));

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


void
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


void
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


uint16_t
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
    d = d > SLORA_Q_D_MAX && isfinite(d) ? SLORA_Q_D_MAX : d;
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


void
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


void
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
