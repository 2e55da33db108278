/*
 * slora_qmatmul_arm_cpu.c: the quantized products' AArch64 path, NEON
 * with the dot-product extension (ARMv8.2-A dotprod: Apple's M series,
 * Graviton 2 and later, Cortex-A76 and later), compiled for it by a
 * function attribute and chosen at run time by slora_qmatmul_cpu.c
 * where the kernel says the CPU has it (HWCAP_ASIMDDP).
 *
 * The one idea: the same sixteen f32 accumulators a (row, token) keeps
 * on x86 (slora_qmatmul_cpu.c says how), here in four registers of
 * four: lanes 0-7 the even blocks', 8-15 the odd blocks'. sdot sums
 * four byte products into each int32 lane, which is exactly one lane's
 * share of a block (bytes 4j .. 4j + 3), so a block is two sdot, two
 * conversions and two fused multiply-adds by its scale d_w * d_x, and
 * the accumulators see the x86 paths' operations in their order: the
 * results agree to the bit. Q8_0 activations, stored as q + 128, get
 * their sign back by one xor; Q4_1 nibbles are taken as they are. The
 * activations' quantizer is the portable one (a small share of a
 * product).
 */

#include <string.h>

#include "slora_qmatmul_int.h"


#ifdef SLORA_Q_ARM

#include <sys/auxv.h>

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP  (1 << 20)
#endif


static inline float slora_q_tree128(const float32x4_t *a)
    SLORA_Q_DOTPROD __attribute__((always_inline));
static inline void slora_q_ld16h128(float32x4_t *v, const uint16_t *h,
    int32_t k) SLORA_Q_DOTPROD __attribute__((always_inline));
static inline void slora_q_ld16f128(float32x4_t *v, const float *f,
    int32_t k) SLORA_Q_DOTPROD __attribute__((always_inline));
static inline void slora_q_out128(const slora_qmm_t *mm, float *y,
    int64_t c, const float32x4_t (*acc)[4], const int nr, const int nt)
    SLORA_Q_DOTPROD __attribute__((always_inline));
static inline void slora_q8_tile128(const slora_qmm_t *mm, float *y,
    int64_t c, int64_t t, const int nr, const int nt)
    SLORA_Q_DOTPROD __attribute__((always_inline));
static inline void slora_q41_tile128(const slora_qmm_t *mm, float *y,
    int64_t c, int64_t t, const int nr, const int nt)
    SLORA_Q_DOTPROD __attribute__((always_inline));
static inline void slora_qtile128(const slora_qmm_t *mm, float *y,
    int64_t c, int64_t t, const int nr, const int nt, const int q41)
    SLORA_Q_DOTPROD __attribute__((always_inline));
static inline void slora_qrows128(const slora_qmm_t *mm, float *y,
    int64_t c0, int64_t c1, int64_t t, const int nt, const int q41)
    SLORA_Q_DOTPROD __attribute__((always_inline));
static inline void slora_qrows_neon(const slora_qmm_t *mm, float *y,
    int64_t c0, int64_t c1, int64_t t, int nt, const int q41)
    SLORA_Q_DOTPROD __attribute__((always_inline));


int
slora_qmatmul_neon_supported(void)
{
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
}


/* slora_q_tree on accumulators 0-3, 4-7, 8-11 and 12-15. */

static inline float
slora_q_tree128(const float32x4_t *a)
{
    float32x4_t  q;
    float32x2_t  h;

    q = vaddq_f32(vaddq_f32(a[0], a[2]), vaddq_f32(a[1], a[3]));
    h = vadd_f32(vget_low_f32(q), vget_high_f32(q));

    return vget_lane_f32(h, 0) + vget_lane_f32(h, 1);
}


/* k <= 16 f16 values as floats, zeros past k. */

static inline void
slora_q_ld16h128(float32x4_t *v, const uint16_t *h, int32_t k)
{
    uint16_t  b[SLORA_Q_GROUP];
    int       q;

    h = slora_q_group_pad(b, h, k, sizeof(uint16_t));

    for (q = 0; q < 4; q++) {
        v[q] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + 4 * q)));
    }
}


/* k <= 16 floats, zeros past k. */

static inline void
slora_q_ld16f128(float32x4_t *v, const float *f, int32_t k)
{
    float  b[SLORA_Q_GROUP];
    int    q;

    f = slora_q_group_pad(b, f, k, sizeof(float));

    for (q = 0; q < 4; q++) {
        v[q] = vld1q_f32(f + 4 * q);
    }
}


/* Each (row, token)'s sum, plus the row's bias, into y. */

static inline void
slora_q_out128(const slora_qmm_t *mm, float *y, int64_t c,
    const float32x4_t (*acc)[4], const int nr, const int nt)
{
    float  v;
    int    r, j;

    for (j = 0; j < nt; j++) {
        for (r = 0; r < nr; r++) {
            v = slora_q_tree128(acc[r * nt + j]);
            y[j * mm->ld_y + r] = mm->bias != NULL ? v + mm->bias[c + r] : v;
        }
    }
}


/*
 * Q8_0: a (row, token)'s accumulators in acc[r * nt + j][0..3], a
 * group's scales d_w * d_x stored and taken a lane at a time.
 */

static inline void
slora_q8_tile128(const slora_qmm_t *mm, float *y, int64_t c, int64_t t,
    const int nr, const int nt)
{
    const slora_block_q8_0_t  *wr[2], *wb;
    const uint8_t             *xr[4], *xb;
    float32x4_t                acc[4][4], dv[2][4], xv[4];
    int8x16_t                  w[2][4], x[4];
    int32x4_t                  zero;
    uint8x16_t                 flip;
    float                      s[4][SLORA_Q_GROUP];
    uint16_t                   hd[SLORA_Q_GROUP];
    int32_t                    nb, g, k, i, e;
    int                        r, j, q, h;

    nb = mm->nb;
    zero = vdupq_n_s32(0);
    flip = vdupq_n_u8(0x80);

    for (j = 0; j < nt; j++) {
        xr[j] = mm->x + (t + j) * mm->ld_x;
    }

    for (r = 0; r < nr; r++) {
        wr[r] = (const slora_block_q8_0_t *) mm->w + (c + r) * nb;
    }

    for (j = 0; j < nr * nt; j++) {
        for (q = 0; q < 4; q++) {
            acc[j][q] = vdupq_n_f32(0.0f);
        }
    }

    for (g = 0; g < nb; g += SLORA_Q_GROUP) {
        k = nb - g < SLORA_Q_GROUP ? nb - g : SLORA_Q_GROUP;

        for (r = 0; r < nr; r++) {
            for (e = 0; e < k; e++) {
                hd[e] = wr[r][g + e].d;
            }

            slora_q_ld16h128(dv[r], hd, k);
        }

        for (j = 0; j < nt; j++) {
            slora_q_ld16f128(xv, (const float *) (const void *)
                                 (xr[j] + mm->in) + g, k);

            for (r = 0; r < nr; r++) {
                for (q = 0; q < 4; q++) {
                    vst1q_f32(s[r * nt + j] + 4 * q,
                              vmulq_f32(dv[r][q], xv[q]));
                }
            }
        }

        for (i = 0; i < k; i += 2) {
            for (r = 0; r < nr; r++) {
                wb = wr[r] + g + i;
                w[r][0] = vld1q_s8(wb->qs);
                w[r][1] = vld1q_s8(wb->qs + 16);

                if (i + 1 < k) {
                    w[r][2] = vld1q_s8(wb[1].qs);
                    w[r][3] = vld1q_s8(wb[1].qs + 16);
                }
            }

            for (j = 0; j < nt; j++) {
                for (h = 0; h < 2 && i + h < k; h++) {
                    xb = xr[j] + (g + i + h) * SLORA_QK8_0;
                    x[2 * h] = vreinterpretq_s8_u8(
                                   veorq_u8(vld1q_u8(xb), flip));
                    x[2 * h + 1] = vreinterpretq_s8_u8(
                                       veorq_u8(vld1q_u8(xb + 16), flip));

                    for (r = 0; r < nr; r++) {
                        for (q = 2 * h; q < 2 * h + 2; q++) {
                            acc[r * nt + j][q] = vfmaq_n_f32(
                                acc[r * nt + j][q],
                                vcvtq_f32_s32(vdotq_s32(zero, w[r][q],
                                                        x[q])),
                                s[r * nt + j][i + h]);
                        }
                    }
                }
            }
        }
    }

    slora_q_out128(mm, y, c, acc, nr, nt);
}


/* Q4_1: a pair's 32 bytes give block 2p's nibbles (low) and block
 * 2p + 1's (high); the group's minimum terms go first, a block's into
 * its own lane, then the blocks, the even ones into lanes 0-7, the odd
 * ones into 8-15. */

static inline void
slora_q41_tile128(const slora_qmm_t *mm, float *y, int64_t c, int64_t t,
    const int nr, const int nt)
{
    const uint8_t   *xr[4], *wq[2], *wp;
    const uint16_t  *wd[2], *wm[2];
    const float     *xf;
    float32x4_t      acc[4][4], dv[2][4], mv[2][4], xv[4], sv[4];
    int8x16_t        w[2][4], x[4];
    int32x4_t        zero;
    uint8x16_t       nib, b0, b1;
    float            s[4][SLORA_Q_GROUP];
    int32_t          nb, g, k, i;
    int              r, j, q;

    nb = mm->nb;
    zero = vdupq_n_s32(0);
    nib = vdupq_n_u8(0x0f);

    for (j = 0; j < nt; j++) {
        xr[j] = mm->x + (t + j) * mm->ld_x;
    }

    for (r = 0; r < nr; r++) {
        wq[r] = (const uint8_t *) mm->w + (c + r) * nb * 16;
        wd[r] = mm->d + (c + r) * nb;
        wm[r] = mm->m + (c + r) * nb;
    }

    for (j = 0; j < nr * nt; j++) {
        for (q = 0; q < 4; q++) {
            acc[j][q] = vdupq_n_f32(0.0f);
        }
    }

    for (g = 0; g < nb; g += SLORA_Q_GROUP) {
        k = nb - g < SLORA_Q_GROUP ? nb - g : SLORA_Q_GROUP;

        for (r = 0; r < nr; r++) {
            slora_q_ld16h128(dv[r], wd[r] + g, k);
            slora_q_ld16h128(mv[r], wm[r] + g, k);
        }

        for (j = 0; j < nt; j++) {
            xf = (const float *) (const void *) (xr[j] + mm->in) + g;
            slora_q_ld16f128(xv, xf, k);
            slora_q_ld16f128(sv, xf + nb, k);

            for (r = 0; r < nr; r++) {
                for (q = 0; q < 4; q++) {
                    vst1q_f32(s[r * nt + j] + 4 * q,
                              vmulq_f32(dv[r][q], xv[q]));
                    acc[r * nt + j][q] = vfmaq_f32(acc[r * nt + j][q],
                                                   mv[r][q], sv[q]);
                }
            }
        }

        for (i = 0; i < k; i += 2) {
            for (r = 0; r < nr; r++) {
                wp = wq[r] + (g + i) * 16;
                b0 = vld1q_u8(wp);
                b1 = vld1q_u8(wp + 16);
                w[r][0] = vreinterpretq_s8_u8(vandq_u8(b0, nib));
                w[r][1] = vreinterpretq_s8_u8(vandq_u8(b1, nib));
                w[r][2] = vreinterpretq_s8_u8(vshrq_n_u8(b0, 4));
                w[r][3] = vreinterpretq_s8_u8(vshrq_n_u8(b1, 4));
            }

            for (j = 0; j < nt; j++) {
                for (q = 0; q < 4; q++) {
                    x[q] = vld1q_s8((const int8_t *) (const void *)
                                    (xr[j] + (g + i + q / 2) * SLORA_QK8_0
                                     + (q & 1) * 16));
                }

                for (r = 0; r < nr; r++) {
                    for (q = 0; q < 4; q++) {
                        acc[r * nt + j][q] = vfmaq_n_f32(
                            acc[r * nt + j][q],
                            vcvtq_f32_s32(vdotq_s32(zero, w[r][q], x[q])),
                            s[r * nt + j][i + q / 2]);
                    }
                }
            }
        }
    }

    slora_q_out128(mm, y, c, acc, nr, nt);
}


/* One tile of nr rows and nt tokens, Q4_1 or Q8_0. */

static inline void
slora_qtile128(const slora_qmm_t *mm, float *y, int64_t c, int64_t t,
    const int nr, const int nt, const int q41)
{
    if (q41) {
        slora_q41_tile128(mm, y, c, t, nr, nt);

    } else {
        slora_q8_tile128(mm, y, c, t, nr, nt);
    }
}


/*
 * Rows c0 .. c1 - 1 against nt tokens: one row at a time for several
 * tokens, two rows at a time for one; each shape compiled with its own
 * constants.
 */

static inline void
slora_qrows128(const slora_qmm_t *mm, float *y, int64_t c0, int64_t c1,
    int64_t t, const int nt, const int q41)
{
    int64_t  c;

    if (nt > 1) {
        for (c = c0; c < c1; c++) {
            slora_qtile128(mm, y + c - c0, c, t, 1, nt, q41);
        }

        return;
    }

    for (c = c0; c + 2 <= c1; c += 2) {
        slora_qtile128(mm, y + c - c0, c, t, 2, 1, q41);
    }

    if (c < c1) {
        slora_qtile128(mm, y + c - c0, c, t, 1, 1, q41);
    }
}


static inline void
slora_qrows_neon(const slora_qmm_t *mm, float *y, int64_t c0, int64_t c1,
    int64_t t, int nt, const int q41)
{
    switch (nt) {

    case 4:
        slora_qrows128(mm, y, c0, c1, t, 4, q41);
        return;

    case 2:
        slora_qrows128(mm, y, c0, c1, t, 2, q41);
        return;

    case 1:
        slora_qrows128(mm, y, c0, c1, t, 1, q41);
        return;

    default:
        if (q41) {
            slora_q41_tile_c(mm, y, c0, c1, t, nt);

        } else {
            slora_q8_tile_c(mm, y, c0, c1, t, nt);
        }
    }
}


void
slora_q8_tile_neon(const slora_qmm_t *mm, float *y, int64_t c0, int64_t c1,
    int64_t t, int nt)
{
    slora_qrows_neon(mm, y, c0, c1, t, nt, 0);
}


void
slora_q41_tile_neon(const slora_qmm_t *mm, float *y, int64_t c0,
    int64_t c1, int64_t t, int nt)
{
    slora_qrows_neon(mm, y, c0, c1, t, nt, 1);
}

#endif /* SLORA_Q_ARM */
