/*
 * slora_attention_x86_cpu.c: one query row of paged attention in AVX2,
 * for head dims that are multiples of 16; slora_attention_cpu.c chooses
 * it at run time where the processor has AVX2.
 *
 * The one idea: it gives the portable row's bits (slora_attention_cpu.c,
 * slora_vec_cpu.h), only faster. A score is slora_vec_dot's sixteen
 * partial sums in two registers, each lane multiplying then adding in
 * the same order (no FMA: it would round once where the portable code
 * rounds twice), then the same folding tree, done for eight keys at once
 * by shuffles that add the same pairs. The output row stays in registers
 * over all positions, 64 columns a pass, each column adding w v in
 * position order as slora_vec_axpy does. Softmax's exponentials stay the
 * C library's expf, one by one.
 */

#include <math.h>
#include <string.h>

#include "slora_attention_int.h"


#ifdef SLORA_ATTN_X86

#include <immintrin.h>

#define SLORA_ATTN_AVX2   __attribute__((target("avx2")))
#define SLORA_ATTN_INLINE SLORA_ATTN_AVX2 __attribute__((always_inline))


static inline __m256 slora_attn_sums(const float *q, const float *k,
    int32_t d) SLORA_ATTN_INLINE;
static inline __m256 slora_attn_dot8(const float *q,
    const float *const *k, int32_t d) SLORA_ATTN_INLINE;
static inline float slora_attn_dot1(const float *q, const float *k,
    int32_t d) SLORA_ATTN_INLINE;
static inline void slora_attn_pv(float *o, const float *sc,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t kvh, int32_t col, float w, const int nv) SLORA_ATTN_INLINE;


/*
 * slora_vec_dot's sixteen sums of q . k, folded once: lane j holds
 * acc[j] + acc[j + 8].
 */
static inline __m256
slora_attn_sums(const float *q, const float *k, int32_t d)
{
    __m256   a, b;
    int32_t  i;

    a = _mm256_setzero_ps();
    b = _mm256_setzero_ps();

    for (i = 0; i < d; i += 16) {
        a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(q + i),
                                           _mm256_loadu_ps(k + i)));
        b = _mm256_add_ps(b, _mm256_mul_ps(_mm256_loadu_ps(q + i + 8),
                                           _mm256_loadu_ps(k + i + 8)));
    }

    return _mm256_add_ps(a, b);
}


/*
 * The dot products of q with eight keys, in key order: slora_vec_dot's
 * tree, acc[j] + acc[j + 4], then (acc[0] + acc[2]) + (acc[1] + acc[3]),
 * then + 0 (its empty tail), for all eight by shuffles.
 */
static inline __m256
slora_attn_dot8(const float *q, const float *const *k, int32_t d)
{
    __m256  s[8], v01, v23, v45, v67, e0123, e4567, r;
    int     m;

#pragma GCC unroll 8
    for (m = 0; m < 8; m++) {
        s[m] = slora_attn_sums(q, k[m], d);
    }

    /* [lo(s0) | lo(s1)] + [hi(s0) | hi(s1)]: keys 0 and 1's acc[j] +
     * acc[j + 4], j < 4 */
    v01 = _mm256_add_ps(_mm256_permute2f128_ps(s[0], s[1], 0x20),
                        _mm256_permute2f128_ps(s[0], s[1], 0x31));
    v23 = _mm256_add_ps(_mm256_permute2f128_ps(s[2], s[3], 0x20),
                        _mm256_permute2f128_ps(s[2], s[3], 0x31));
    v45 = _mm256_add_ps(_mm256_permute2f128_ps(s[4], s[5], 0x20),
                        _mm256_permute2f128_ps(s[4], s[5], 0x31));
    v67 = _mm256_add_ps(_mm256_permute2f128_ps(s[6], s[7], 0x20),
                        _mm256_permute2f128_ps(s[6], s[7], 0x31));

    /* acc[0] + acc[2] and acc[1] + acc[3]: [k0 k0 k2 k2 | k1 k1 k3 k3] */
    e0123 = _mm256_add_ps(_mm256_shuffle_ps(v01, v23, 0x44),
                          _mm256_shuffle_ps(v01, v23, 0xee));
    e4567 = _mm256_add_ps(_mm256_shuffle_ps(v45, v67, 0x44),
                          _mm256_shuffle_ps(v45, v67, 0xee));

    /* their sum: [k0 k2 k4 k6 | k1 k3 k5 k7], + the empty tail */
    r = _mm256_add_ps(_mm256_shuffle_ps(e0123, e4567, 0x88),
                      _mm256_shuffle_ps(e0123, e4567, 0xdd));
    r = _mm256_add_ps(r, _mm256_setzero_ps());

    return _mm256_permutevar8x32_ps(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6,
                                                          3, 7));
}


/* One key's dot product, the same tree. */
static inline float
slora_attn_dot1(const float *q, const float *k, int32_t d)
{
    __m256  s;
    __m128  v, e;

    s = slora_attn_sums(q, k, d);
    v = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    e = _mm_add_ps(v, _mm_movehl_ps(v, v));
    e = _mm_add_ss(e, _mm_shuffle_ps(e, e, 1));

    return _mm_cvtss_f32(e) + 0.0f;
}


/*
 * Columns [col, col + 8 nv) of o = w sum_t sc[t] v_t (kv head kvh's part
 * of the V rows), every column adding
 * sc[t] v_t[j] in position order from 0, as slora_vec_axpy does, then
 * scaled by w.
 */
static inline void
slora_attn_pv(float *o, const float *sc, const slora_paged_kv_t *c,
    const int32_t *pages, int32_t n_ctx, int32_t kvh, int32_t col, float w,
    const int nv)
{
    __m256        acc[8], p;
    int32_t       t, j, n, tpp, pi;
    int64_t       kv_dim;
    const float  *row;
    int           u;

    tpp = c->tokens_per_page;
    kv_dim = (int64_t) c->n_kv_heads * c->head_dim;

#pragma GCC unroll 8
    for (u = 0; u < nv; u++) {
        acc[u] = _mm256_setzero_ps();
    }

    for (t = 0, pi = 0; t < n_ctx; pi++) {
        row = c->kv + (int64_t) pages[pi] * c->page_elems
              + (int64_t) tpp * kv_dim + (int64_t) kvh * c->head_dim + col;
        n = n_ctx - t < tpp ? n_ctx - t : tpp;

        for (j = 0; j < n; j++, t++, row += kv_dim) {
            p = _mm256_set1_ps(sc[t]);

#pragma GCC unroll 8
            for (u = 0; u < nv; u++) {
                acc[u] = _mm256_add_ps(acc[u],
                                       _mm256_mul_ps(p, _mm256_loadu_ps(row
                                                                   + 8 * u)));
            }
        }
    }

    p = _mm256_set1_ps(w);

#pragma GCC unroll 8
    for (u = 0; u < nv; u++) {
        _mm256_storeu_ps(o + col + 8 * u, _mm256_mul_ps(acc[u], p));
    }
}


SLORA_ATTN_AVX2 void
slora_attn_row_avx2(float *o, const float *qh, const slora_paged_kv_t *c,
    const int32_t *pages, int32_t n_ctx, int32_t kvh, float *sc)
{
    int32_t       t, j, n, d, pi, tpp, m, col, left;
    int64_t       kv_dim;
    const float  *page, *k[8];
    float         scale, mx, sum, w;

    d = c->head_dim;
    tpp = c->tokens_per_page;
    kv_dim = (int64_t) c->n_kv_heads * d;
    scale = 1.0f / sqrtf((float) d);

    /* the scores, eight keys at a time wherever they lie in pages */
    m = 0;

    for (t = 0, pi = 0; t < n_ctx; pi++) {
        page = c->kv + (int64_t) pages[pi] * c->page_elems
               + (int64_t) kvh * d;
        n = n_ctx - t < tpp ? n_ctx - t : tpp;

        for (j = 0; j < n; j++, t++) {
            k[m++] = page + (int64_t) j * kv_dim;

            if (m == 8) {
                _mm256_storeu_ps(sc + t - 7,
                                 _mm256_mul_ps(slora_attn_dot8(qh, k, d),
                                               _mm256_set1_ps(scale)));
                m = 0;
            }
        }
    }

    for (j = 0; j < m; j++) {
        sc[n_ctx - m + j] = slora_attn_dot1(qh, k[j], d) * scale;
    }

    mx = -INFINITY;

    for (t = 0; t < n_ctx; t++) {
        mx = sc[t] > mx ? sc[t] : mx;
    }

    sum = 0.0f;

    for (t = 0; t < n_ctx; t++) {
        sc[t] = expf(sc[t] - mx);
        sum += sc[t];
    }

    w = 1.0f / sum;

    for (col = 0; col < d; col += 64) {
        left = d - col;

        if (left >= 64) {
            slora_attn_pv(o, sc, c, pages, n_ctx, kvh, col, w, 8);

        } else if (left == 48) {
            slora_attn_pv(o, sc, c, pages, n_ctx, kvh, col, w, 6);

        } else if (left == 32) {
            slora_attn_pv(o, sc, c, pages, n_ctx, kvh, col, w, 4);

        } else {
            slora_attn_pv(o, sc, c, pages, n_ctx, kvh, col, w, 2);
        }
    }
}

#endif /* SLORA_ATTN_X86 */
