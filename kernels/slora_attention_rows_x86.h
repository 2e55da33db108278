/*
 * slora_attention_rows_x86.h: the body of paged attention's x86 rows,
 * included by slora_attention_x86_cpu.c once for each instruction set it
 * compiles them for (no include guard): SLORA_ATTN_TARGET its target
 * attribute, SLORA_ATTN_W floats a register of sums and outputs (8: AVX2,
 * 16: AVX-512), SLORA_V_* the operations on such a register, and the
 * names below defined to the instance's own.
 *
 * The one idea: both instances give the portable rows' bits. A lane
 * holds one of slora_vec_dot's sixteen partial sums, or one output
 * column, so the width only changes how many lanes an instruction
 * takes: sixteen sums are two AVX2 registers or one AVX-512 register,
 * folded alike; an output column adds w v in position order either way.
 */


static inline __m256 slora_attn_sums(const SLORA_V *qv, const float *q,
    const float *k, int32_t d) SLORA_ATTN_INLINE;
static inline void slora_attn_qregs(SLORA_V *qv, const float *q, int32_t d)
    SLORA_ATTN_INLINE;
static inline __m256 slora_attn_dot8(const float *q,
    const float *const *k, int32_t d) SLORA_ATTN_INLINE;
static inline float slora_attn_fold(__m256 s) SLORA_ATTN_INLINE;
static inline float slora_attn_dot1(const float *q, const float *k,
    int32_t d) SLORA_ATTN_INLINE;
static inline void slora_attn_pv(float *o, int64_t ld_o, const float *sc,
    int32_t stride, const slora_paged_kv_t *c, const int32_t *pages,
    int32_t n_ctx, int32_t nr, int32_t kvh, int32_t col, const float *w,
    const int nv) SLORA_ATTN_INLINE;


/*
 * slora_vec_dot's sixteen sums of q . k, folded once: lane j holds
 * acc[j] + acc[j + 8]. qv holds q's first SLORA_ATTN_QREGS registers.
 */
static inline __m256
slora_attn_sums(const SLORA_V *qv, const float *q, const float *k, int32_t d)
{
    int32_t  i;

#if SLORA_ATTN_W == 16
    __m512   a, q0;

    a = _mm512_setzero_ps();

#pragma GCC unroll 8
    for (i = 0; i < d; i += 16) {
        q0 = i < 16 * SLORA_ATTN_QREGS ? qv[i / 16] : _mm512_loadu_ps(q + i);
        a = _mm512_add_ps(a, _mm512_mul_ps(q0, _mm512_loadu_ps(k + i)));
    }

    return _mm256_add_ps(_mm512_castps512_ps256(a),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(
                                              _mm512_castps_pd(a), 1)));
#else
    __m256   a, b, q0, q1;

    a = _mm256_setzero_ps();
    b = _mm256_setzero_ps();

#pragma GCC unroll 8
    for (i = 0; i < d; i += 16) {
        q0 = i < 8 * SLORA_ATTN_QREGS ? qv[i / 8] : _mm256_loadu_ps(q + i);
        q1 = i < 8 * SLORA_ATTN_QREGS ? qv[i / 8 + 1]
                                      : _mm256_loadu_ps(q + i + 8);
        a = _mm256_add_ps(a, _mm256_mul_ps(q0, _mm256_loadu_ps(k + i)));
        b = _mm256_add_ps(b, _mm256_mul_ps(q1, _mm256_loadu_ps(k + i + 8)));
    }

    return _mm256_add_ps(a, b);
#endif
}


/* q's first SLORA_ATTN_QREGS registers (zeros past d) */
static inline void
slora_attn_qregs(SLORA_V *qv, const float *q, int32_t d)
{
    int  m;

#pragma GCC unroll 8
    for (m = 0; m < SLORA_ATTN_QREGS; m++) {
        qv[m] = SLORA_ATTN_W * m < d ? SLORA_V_LOAD(q + SLORA_ATTN_W * m)
                                     : SLORA_V_ZERO();
    }
}


/*
 * The dot products of q with eight keys, in key order: slora_vec_dot's
 * tree, acc[j] + acc[j + 4], then (acc[0] + acc[2]) + (acc[1] + acc[3]),
 * then + 0 (its empty tail), for all eight by shuffles. Inlined where d
 * is a constant, q's first registers stay in registers for all eight.
 */
static inline __m256
slora_attn_dot8(const float *q, const float *const *k, int32_t d)
{
    SLORA_V  qv[SLORA_ATTN_QREGS];
    __m256   s[8], v01, v23, v45, v67, e0123, e4567, r;
    int      m;

    slora_attn_qregs(qv, q, d);

#pragma GCC unroll 8
    for (m = 0; m < 8; m++) {
        s[m] = slora_attn_sums(qv, q, k[m], d);
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


/* Eight sums folded as slora_vec_dot and slora_vec_sum fold theirs:
 * s[j] + s[j + 4], then (s[0] + s[2]) + (s[1] + s[3]). */
static inline float
slora_attn_fold(__m256 s)
{
    __m128  v, e;

    v = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    e = _mm_add_ps(v, _mm_movehl_ps(v, v));
    e = _mm_add_ss(e, _mm_shuffle_ps(e, e, 1));

    return _mm_cvtss_f32(e);
}


/* One key's dot product, the same tree. */
static inline float
slora_attn_dot1(const float *q, const float *k, int32_t d)
{
    SLORA_V  qv[SLORA_ATTN_QREGS];

    slora_attn_qregs(qv, q, d);

    return slora_attn_fold(slora_attn_sums(qv, q, k, d)) + 0.0f;
}


/*
 * Columns [col, col + SLORA_ATTN_W nv) of the rows' outputs, o_r = w_r
 * sum_t sc_r[t] v_t over row r's n_ctx + r positions (kv head kvh's part
 * of the V rows): sixteen positions at a time, every row adds them to its
 * columns in position order, as slora_vec_axpy does, keeping its sums in
 * o_r between the groups (a float stored and loaded is the same float);
 * then each row is scaled by its w_r.
 */
static inline void
slora_attn_pv(float *o, int64_t ld_o, const float *sc, int32_t stride,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t nr, int32_t kvh, int32_t col, const float *w, const int nv)
{
    SLORA_V       acc[8], p;
    int32_t       t, t1, e, j, x, n, tpp, pi, n_max, r;
    int64_t       kv_dim;
    const float  *page, *row, *s;
    float        *dst;
    int           u;

    tpp = c->tokens_per_page;
    kv_dim = (int64_t) c->n_kv_heads * c->head_dim;
    n_max = n_ctx + nr - 1;

    for (t = 0, pi = 0; t < n_max; pi++) {
        page = c->kv + (int64_t) pages[pi] * c->page_elems
               + (int64_t) tpp * kv_dim + (int64_t) kvh * c->head_dim + col;
        n = n_max - t < tpp ? n_max - t : tpp;

        for (j = 0; j < n; j += SLORA_ATTN_GROUP) {
            t1 = t + j;
            e = j + SLORA_ATTN_GROUP < n ? j + SLORA_ATTN_GROUP : n;

            for (r = 0; r < nr; r++) {
                if (t1 >= n_ctx + r) {
                    continue;
                }

                dst = o + r * ld_o + col;
                s = sc + r * stride + t1;

#pragma GCC unroll 8
                for (u = 0; u < nv; u++) {
                    acc[u] = t1 == 0 ? SLORA_V_ZERO()
                                     : SLORA_V_LOAD(dst + SLORA_ATTN_W * u);
                }

                row = page + (int64_t) j * kv_dim;

                for (x = j; x < e && t + x < n_ctx + r; x++) {
                    p = SLORA_V_SET1(*s++);

#pragma GCC unroll 8
                    for (u = 0; u < nv; u++) {
                        acc[u] = SLORA_V_ADD(acc[u],
                                     SLORA_V_MUL(p, SLORA_V_LOAD(row
                                                     + SLORA_ATTN_W * u)));
                    }

                    row += kv_dim;
                }

#pragma GCC unroll 8
                for (u = 0; u < nv; u++) {
                    SLORA_V_STORE(dst + SLORA_ATTN_W * u, acc[u]);
                }
            }
        }

        t += n;
    }

    for (r = 0; r < nr; r++) {
        dst = o + r * ld_o + col;
        p = SLORA_V_SET1(w[r]);

#pragma GCC unroll 8
        for (u = 0; u < nv; u++) {
            SLORA_V_STORE(dst + SLORA_ATTN_W * u,
                          SLORA_V_MUL(SLORA_V_LOAD(dst + SLORA_ATTN_W * u),
                                      p));
        }
    }
}


SLORA_ATTN_TARGET void
slora_attn_rows(float *o, int64_t ld_o, const float *q, int64_t ld_q,
    const slora_paged_kv_t *c, const int32_t *pages, int32_t n_ctx,
    int32_t nr, int32_t kvh, float *sc)
{
    int32_t       t, t0, j, n, d, pi, tpp, m, col, n_max, r, i;
    int64_t       kv_dim;
    const float  *page, *k[8], *qr;
    float        *sr, scale, mx, tail, w[SLORA_ATTN_ROWS];
    __m128        m4;
    __m256        e8, m8, acc, s8;

    d = c->head_dim;
    tpp = c->tokens_per_page;
    kv_dim = (int64_t) c->n_kv_heads * d;
    scale = 1.0f / sqrtf((float) d);
    n_max = n_ctx + nr - 1;

    /* the scores, eight keys at a time wherever they lie in pages, every
     * row in turn while they are in L1 (each row up to its own context) */
    m = 0;

    for (t = 0, pi = 0; t < n_max; pi++) {
        page = c->kv + (int64_t) pages[pi] * c->page_elems
               + (int64_t) kvh * d;
        n = n_max - t < tpp ? n_max - t : tpp;

        for (j = 0; j < n; j++, t++) {
            k[m++] = page + (int64_t) j * kv_dim;

            if (m < 8 && t + 1 < n_max) {
                continue;
            }

            t0 = t + 1 - m;

            for (r = 0; r < nr; r++) {
                qr = q + r * ld_q;
                sr = sc + r * n_max;

                if (m == 8 && t < n_ctx + r) {
                    /* d a constant where it is common: q in registers */
                    s8 = d == 64 ? slora_attn_dot8(qr, k, 64)
                         : d == 128 ? slora_attn_dot8(qr, k, 128)
                         : slora_attn_dot8(qr, k, d);
                    _mm256_storeu_ps(sr + t0,
                                     _mm256_mul_ps(s8, _mm256_set1_ps(scale)));
                    continue;
                }

                for (i = 0; i < m && t0 + i < n_ctx + r; i++) {
                    sr[t0 + i] = slora_attn_dot1(qr, k[i], d) * scale;
                }
            }

            m = 0;
        }
    }

    /* softmax: the largest score (the same whatever the order), the
     * exponentials and slora_vec_sum's eight sums, a block at a time */
    for (r = 0; r < nr; r++) {
        sr = sc + r * n_max;
        n = n_ctx + r;
        m8 = _mm256_set1_ps(-INFINITY);

        for (t = 0; t + 8 <= n; t += 8) {
            m8 = _mm256_max_ps(_mm256_loadu_ps(sr + t), m8);
        }

        m4 = _mm_max_ps(_mm256_castps256_ps128(m8),
                        _mm256_extractf128_ps(m8, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        mx = _mm_cvtss_f32(m4);

        for ( /* void */ ; t < n; t++) {
            mx = sr[t] > mx ? sr[t] : mx;
        }

        acc = _mm256_setzero_ps();

        for (t = 0; t + 8 <= n; t += 8) {
            e8 = slora_vec_exp8(_mm256_sub_ps(_mm256_loadu_ps(sr + t),
                                              _mm256_set1_ps(mx)));
            _mm256_storeu_ps(sr + t, e8);
            acc = _mm256_add_ps(acc, e8);
        }

        tail = 0.0f;

        for ( /* void */ ; t < n; t++) {
            sr[t] = slora_expf(sr[t] - mx);
            tail += sr[t];
        }

        w[r] = 1.0f / (slora_attn_fold(acc) + tail);
    }

    /* the outputs, 8 registers of columns at a time (nv a constant, so
     * the registers stay registers) */
    for (col = 0; col < d; col += 8 * SLORA_ATTN_W) {
        switch ((d - col) / SLORA_ATTN_W) {

#define SLORA_ATTN_PV(nv)                                                    \
        case nv:                                                             \
            slora_attn_pv(o, ld_o, sc, n_max, c, pages, n_ctx, nr, kvh, col, \
                          w, nv);                                            \
            break;

        SLORA_ATTN_PV(1) SLORA_ATTN_PV(2) SLORA_ATTN_PV(3) SLORA_ATTN_PV(4)
        SLORA_ATTN_PV(5) SLORA_ATTN_PV(6) SLORA_ATTN_PV(7)

#undef SLORA_ATTN_PV

        default:
            slora_attn_pv(o, ld_o, sc, n_max, c, pages, n_ctx, nr, kvh, col,
                          w, 8);
        }
    }
}
