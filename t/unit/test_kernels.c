/*
 * test_kernels.c: each CPU kernel against the formula it implements,
 * written out directly in double on random inputs: RMSNorm (plain and
 * fused with the residual), RoPE (both layouts, and NORM on permuted
 * rows equal to NEOX on the original rows), SiLU-and-mul, the embedding
 * gather, the paged KV store and attention over shuffled pages, and the
 * LoRA shrink/expand over segments mixing ranks 8..128 and base-only
 * rows with adapter rows scattered through an arena, and the thin
 * projection (the CUDA GEMV's reference) with strides and a bias; the
 * vector helpers slora_expf and slora_vec_sum. Every kernel that takes a
 * share (ith of nth) is also run as 3 shares, last share first, and must
 * give the single-share result to the bit; attention in every
 * instruction set the processor has gives the portable code's bits.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "tap.h"

#include "slora_norm.h"
#include "slora_rope.h"
#include "slora_act.h"
#include "slora_embed.h"
#include "slora_attention.h"
#include "slora_lora.h"
#include "slora_gemv.h"
#include "slora_qmatmul.h"
#include "slora_vec_cpu.h"


static void test_gemv(void);


static float *
frand_vec(size_t n)
{
    float   *v;
    size_t   i;

    v = malloc(n * sizeof(float) + 1);
    if (v == NULL) {
        BAIL_OUT("out of memory");
    }

    for (i = 0; i < n; i++) {
        v[i] = tap_frand();
    }

    return v;
}


/* max |a - b| / max |b|, b the reference */
static double
rel_err(const float *a, const double *b, size_t n)
{
    double  d, m;
    size_t  i;

    d = 0;
    m = 1e-30;

    for (i = 0; i < n; i++) {
        if (isnan(a[i])) {
            return INFINITY;
        }
        d = fmax(d, fabs((double) a[i] - b[i]));
        m = fmax(m, fabs(b[i]));
    }

    return d / m;
}


static void
test_norm(void)
{
    static const int64_t  rows[] = { 1, 5, 33 };
    static const int64_t  dims[] = { 64, 576, 1000 };
    int64_t               n, d, r, i, ld;
    size_t                a, b;
    float                *x, *w, *res, *out, *x2, *x3, *out3;
    double               *ref, *xref, ss;
    int                   ith, bad;
    float                 eps = 1e-5f;

    for (a = 0; a < 3; a++) {
        for (b = 0; b < 3; b++) {
            n = rows[a];
            d = dims[b];
            ld = d + 3;

            x = frand_vec(n * ld);
            res = frand_vec(n * ld);
            w = frand_vec(d);
            out = frand_vec(n * d);
            x2 = malloc(n * ld * sizeof(float));
            ref = malloc(n * d * sizeof(double));
            xref = malloc(n * d * sizeof(double));
            memcpy(x2, x, n * ld * sizeof(float));

            for (r = 0; r < n; r++) {
                ss = 0;
                for (i = 0; i < d; i++) {
                    ss += (double) x[r * ld + i] * x[r * ld + i];
                }
                ss = 1.0 / sqrt(ss / d + eps);
                for (i = 0; i < d; i++) {
                    ref[r * d + i] = x[r * ld + i] * ss * w[i];
                }
            }

            ok(slora_rmsnorm(out, d, x, ld, w, n, d, eps, 0, 1) == 0,
               "rmsnorm %lldx%lld runs", (long long) n, (long long) d);
            ok(rel_err(out, ref, n * d) < 1e-6,
               "rmsnorm %lldx%lld matches: %.2e", (long long) n,
               (long long) d, rel_err(out, ref, n * d));

            out3 = frand_vec(n * d);
            bad = 0;
            for (ith = 2; ith >= 0; ith--) {
                bad += slora_rmsnorm(out3, d, x, ld, w, n, d, eps, ith, 3);
            }
            ok(bad == 0 && memcmp(out3, out, n * d * sizeof(float)) == 0,
               "rmsnorm %lldx%lld in 3 shares == 1 share", (long long) n,
               (long long) d);

            for (r = 0; r < n; r++) {
                ss = 0;
                for (i = 0; i < d; i++) {
                    xref[r * d + i] = (double) x[r * ld + i]
                                      + res[r * ld + i];
                    ss += xref[r * d + i] * xref[r * d + i];
                }
                ss = 1.0 / sqrt(ss / d + eps);
                for (i = 0; i < d; i++) {
                    ref[r * d + i] = xref[r * d + i] * ss * w[i];
                }
            }

            x3 = malloc(n * ld * sizeof(float));
            memcpy(x3, x2, n * ld * sizeof(float));

            ok(slora_add_rmsnorm(out, d, x2, ld, res, ld, w, n, d, eps, 0, 1)
               == 0, "add_rmsnorm runs");

            bad = 0;
            for (ith = 2; ith >= 0; ith--) {
                bad += slora_add_rmsnorm(out3, d, x3, ld, res, ld, w, n, d,
                                         eps, ith, 3);
            }
            ok(bad == 0 && memcmp(out3, out, n * d * sizeof(float)) == 0
               && memcmp(x3, x2, n * ld * sizeof(float)) == 0,
               "add_rmsnorm %lldx%lld in 3 shares == 1 share", (long long) n,
               (long long) d);
            ok(rel_err(out, ref, n * d) < 1e-6,
               "add_rmsnorm %lldx%lld output matches: %.2e", (long long) n,
               (long long) d, rel_err(out, ref, n * d));

            for (r = 0; r < n; r++) {
                memcpy(out + r * d, x2 + r * ld, d * sizeof(float));
            }
            ok(rel_err(out, xref, n * d) < 1e-7,
               "add_rmsnorm %lldx%lld residual updated", (long long) n,
               (long long) d);

            free(x); free(res); free(w); free(out); free(x2);
            free(ref); free(xref); free(x3); free(out3);
        }
    }

    /* Qwen3's head norms: each head of each row normed alone, in three
     * shares as in one, the row past the heads untouched */
    {
        int64_t   t, hh, ldx = 4 * 16 + 7;
        float    *hx, *hy, *hw, *hr;
        int       same, shares;

        hx = frand_vec(5 * ldx);
        hy = malloc(5 * ldx * sizeof(float));
        hr = malloc(5 * ldx * sizeof(float));
        hw = frand_vec(16);
        memcpy(hy, hx, 5 * ldx * sizeof(float));
        memcpy(hr, hx, 5 * ldx * sizeof(float));

        for (t = 0; t < 5; t++) {
            for (hh = 0; hh < 4; hh++) {
                slora_rmsnorm(hr + t * ldx + hh * 16, 16,
                              hr + t * ldx + hh * 16, 16, hw, 1, 16, eps, 0,
                              1);
            }
        }

        ok(slora_head_rmsnorm(hy, ldx, 5, 4, 16, hw, eps, 0, 1) == 0
           && memcmp(hy, hr, 5 * ldx * sizeof(float)) == 0,
           "head rmsnorm: each head normed alone, the rest of the row as "
           "it was");
        memcpy(hy, hx, 5 * ldx * sizeof(float));
        shares = 0;
        for (t = 2; t >= 0; t--) {
            shares += slora_head_rmsnorm(hy, ldx, 5, 4, 16, hw, eps, (int) t,
                                         3);
        }
        same = memcmp(hy, hr, 5 * ldx * sizeof(float)) == 0;
        ok(shares == 0 && same, "head rmsnorm: in 3 shares the same");
        ok(slora_head_rmsnorm(hy, 63, 5, 4, 16, hw, eps, 0, 1) == -1,
           "head rmsnorm refuses rows narrower than the heads");
        free(hx); free(hy); free(hr); free(hw);
    }

    ok(slora_rmsnorm(NULL, 4, NULL, 4, NULL, 1, 4, eps, 0, 1) == -1,
       "rmsnorm refuses NULL");
    x = frand_vec(8);
    ok(slora_rmsnorm(x, 4, x, 4, x, 1, 4, eps, 3, 3) == -1
       && slora_rmsnorm(x, 4, x, 4, x, 1, 4, eps, 0, 0) == -1,
       "rmsnorm refuses a share outside 0 .. nth - 1");
    free(x);
}


/* the direct formula, in double */
static void
rope_ref(double *out, const float *x, int64_t n_tok, int32_t n_heads,
    int32_t hd, const int32_t *pos, float theta, int neox)
{
    int64_t  t;
    int32_t  h, i, a, b;
    double   ang, x0, x1;

    for (t = 0; t < n_tok; t++) {
        for (h = 0; h < n_heads; h++) {
            const float  *xh = x + (t * n_heads + h) * hd;
            double       *oh = out + (t * n_heads + h) * hd;

            for (i = 0; i < hd / 2; i++) {
                a = neox ? i : 2 * i;
                b = neox ? i + hd / 2 : 2 * i + 1;
                ang = pos[t] * pow(theta, -2.0 * i / hd);
                x0 = xh[a];
                x1 = xh[b];
                oh[a] = x0 * cos(ang) - x1 * sin(ang);
                oh[b] = x0 * sin(ang) + x1 * cos(ang);
            }
        }
    }
}


/* HF row order -> GGUF NORM order within each head: row 2i+j of the
 * result is row j*hd/2+i of the source (llama.cpp's convert permute). */
static void
permute_heads(float *dst, const float *src, int64_t n_rows_of_heads,
    int32_t hd)
{
    int64_t  g;
    int32_t  i, j;

    for (g = 0; g < n_rows_of_heads; g++) {
        for (i = 0; i < hd / 2; i++) {
            for (j = 0; j < 2; j++) {
                dst[g * hd + 2 * i + j] = src[g * hd + j * (hd / 2) + i];
            }
        }
    }
}


static void
test_rope(void)
{
    static const int32_t  hds[] = { 64, 128, 16 };
    int64_t               n, i, nq, nk;
    int32_t               nh, nkv, hd, *pos, layout;
    size_t                c;
    float                *q, *k, *q0, *k0, *qp, *kp, *qpp, *q3, *k3;
    double               *ref;
    float                 theta, odd[5];
    int                   ith, bad;

    for (c = 0; c < 3; c++) {
        hd = hds[c];
        nh = 6;
        nkv = 2;
        n = 7;
        theta = c == 1 ? 500000.0f : 10000.0f;
        nq = n * nh * hd;
        nk = n * nkv * hd;

        pos = malloc(n * sizeof(int32_t));
        for (i = 0; i < n; i++) {
            pos[i] = i == 0 ? 0 : tap_irand(4000);
        }

        q0 = frand_vec(nq);
        k0 = frand_vec(nk);
        q = malloc(nq * sizeof(float));
        k = malloc(nk * sizeof(float));
        qp = malloc(nq * sizeof(float));
        kp = malloc(nk * sizeof(float));
        qpp = malloc(nq * sizeof(float));
        ref = malloc(nq * sizeof(double));

        for (layout = 0; layout < 2; layout++) {
            memcpy(q, q0, nq * sizeof(float));
            memcpy(k, k0, nk * sizeof(float));

            ok(slora_rope(q, nh * hd, k, nkv * hd, pos, n, nh, nkv, hd,
                          theta, NULL, layout, 0, 1)
               == 0, "rope hd %d layout %d runs", hd, layout);

            q3 = malloc(nq * sizeof(float));
            k3 = malloc(nk * sizeof(float));
            memcpy(q3, q0, nq * sizeof(float));
            memcpy(k3, k0, nk * sizeof(float));
            bad = 0;
            for (ith = 2; ith >= 0; ith--) {
                bad += slora_rope(q3, nh * hd, k3, nkv * hd, pos, n, nh, nkv,
                                  hd, theta, NULL, layout, ith, 3);
            }
            ok(bad == 0 && memcmp(q3, q, nq * sizeof(float)) == 0
               && memcmp(k3, k, nk * sizeof(float)) == 0,
               "rope hd %d layout %d in 3 shares == 1 share", hd, layout);
            free(q3);
            free(k3);

            rope_ref(ref, q0, n, nh, hd, pos, theta, layout);
            ok(rel_err(q, ref, nq) < 1e-5, "rope q hd %d layout %d: %.2e",
               hd, layout, rel_err(q, ref, nq));

            rope_ref(ref, k0, n, nkv, hd, pos, theta, layout);
            ok(rel_err(k, ref, nk) < 1e-5, "rope k hd %d layout %d: %.2e",
               hd, layout, rel_err(k, ref, nk));
        }

        /* NORM on permuted rows == permuted NEOX on the original rows */
        memcpy(q, q0, nq * sizeof(float));
        memcpy(k, k0, nk * sizeof(float));
        permute_heads(qp, q0, n * nh, hd);
        permute_heads(kp, k0, n * nkv, hd);

        slora_rope(q, nh * hd, k, nkv * hd, pos, n, nh, nkv, hd, theta, NULL,
                   SLORA_ROPE_LAYOUT_NEOX, 0, 1);
        slora_rope(qp, nh * hd, kp, nkv * hd, pos, n, nh, nkv, hd, theta,
                   NULL, SLORA_ROPE_LAYOUT_NORM, 0, 1);
        permute_heads(qpp, q, n * nh, hd);

        ok(memcmp(qpp, qp, nq * sizeof(float)) == 0,
           "rope hd %d: NORM(permuted q) == permuted NEOX(q)", hd);

        for (i = 0; i < nq; i++) {
            qpp[i] = 0;
        }
        permute_heads(qpp, k, n * nkv, hd);
        ok(memcmp(qpp, kp, nk * sizeof(float)) == 0,
           "rope hd %d: NORM(permuted k) == permuted NEOX(k)", hd);

        /* and the two layouts do differ on the same rows */
        memcpy(qpp, q0, nq * sizeof(float));
        slora_rope(qpp, nh * hd, NULL, 0, pos, n, nh, 0, hd, theta, NULL,
                   SLORA_ROPE_LAYOUT_NORM, 0, 1);
        ok(memcmp(qpp, q, nq * sizeof(float)) != 0,
           "rope hd %d: NORM and NEOX differ", hd);

        free(pos); free(q0); free(k0); free(q); free(k); free(qp);
        free(kp); free(qpp); free(ref);
    }

    memset(odd, 0, sizeof(odd));
    ok(slora_rope(odd, 5, NULL, 0, &hds[0], 1, 1, 0, 5, 1e4f, NULL, 0, 0, 1)
       == -1, "rope refuses an odd head_dim");

    /* the CUDA twin's table holds the very cos and sin the CPU turns by:
     * pair (1, 0) turned at position p comes out as (cos, sin) */
    {
        int32_t   p, tp[3] = { 0, 1, 4095 };
        float    *table, unit[128];
        int       same;

        table = malloc(4096 * 128 * sizeof(float));
        ok(slora_rope_table(table, 4096, 128, 500000.0f, NULL) == 0,
           "rope table of 4096 positions, head 128");
        same = 1;
        for (p = 0; p < 3; p++) {
            for (i = 0; i < 128; i++) {
                unit[i] = i < 64 ? 1.0f : 0.0f;
            }
            slora_rope(unit, 128, NULL, 0, &tp[p], 1, 1, 0, 128, 500000.0f,
                       NULL, SLORA_ROPE_LAYOUT_NEOX, 0, 1);
            same &= memcmp(unit, table + (int64_t) tp[p] * 128,
                           128 * sizeof(float)) == 0;
        }
        ok(same, "the table's rows are the angles slora_rope turns by");
        ok(table[64] == 0.0f && table[0] == 1.0f,
           "position 0: cos 1, sin 0");
        ok(slora_rope_table(table, 4, 7, 1e4f, NULL) == -1,
           "rope table refuses an odd head_dim");
        free(table);
    }

    /* frequency divisors: Llama 3.1's (head 128, theta 500000, factor 8,
     * low 1, high 4, old context 8192) as convert_hf_to_gguf.py computes
     * them: 29 fast pairs left, 29 slow ones divided by 8, six between */
    {
        int32_t        p, n1, n8, tp, t2;
        float          ff[64], two[64], a[128], b[128], *table;
        double         d;
        static const double  mid[6] = {
            1.207484, 1.553415, 2.026313, 2.69453, 3.684253, 5.257327
        };

        ok(slora_rope_llama3_factors(ff, 128, 500000.0f, 8.0f, 1.0f, 4.0f,
                                     8192.0f) == 0, "llama3 factors");
        n1 = n8 = 0;
        d = 0;
        for (i = 0; i < 64; i++) {
            n1 += ff[i] == 1.0f && i < 29;
            n8 += ff[i] == 8.0f && i >= 35;
        }
        for (i = 0; i < 6; i++) {
            d = fmax(d, fabs(ff[29 + i] - mid[i]) / mid[i]);
        }
        ok(n1 == 29 && n8 == 29 && d < 1e-5, "llama3 factors: pairs 0-28 "
           "1, 35-63 8, 29-34 the converter's (%.1e)", d);
        ok(slora_rope_llama3_factors(ff, 128, 5e5f, 8.0f, 4.0f, 1.0f,
                                     8192.0f) == -1,
           "llama3 factors refuse high <= low");

        /* dividing every frequency by 2 turns position 2p as none turns
         * position p */
        for (i = 0; i < 64; i++) {
            two[i] = 2.0f;
        }
        tp = 1234;
        t2 = 2 * tp;
        for (i = 0; i < 128; i++) {
            a[i] = b[i] = sinf(0.37f * (float) i) + 0.25f;
        }
        slora_rope(a, 128, NULL, 0, &t2, 1, 1, 0, 128, 500000.0f, two,
                   SLORA_ROPE_LAYOUT_NORM, 0, 1);
        slora_rope(b, 128, NULL, 0, &tp, 1, 1, 0, 128, 500000.0f, NULL,
                   SLORA_ROPE_LAYOUT_NORM, 0, 1);
        ok(memcmp(a, b, sizeof(a)) == 0, "rope: divisors of 2 at position "
           "%d == none at %d", t2, tp);

        /* the CUDA twin's table with the divisors is the CPU's turn */
        table = malloc(64 * 128 * sizeof(float));
        slora_rope_llama3_factors(ff, 128, 500000.0f, 8.0f, 1.0f, 4.0f,
                                  8192.0f);
        ok(slora_rope_table(table, 64, 128, 500000.0f, ff) == 0,
           "rope table with divisors");
        n1 = 1;
        for (p = 0; p < 64; p += 21) {
            for (i = 0; i < 128; i++) {
                a[i] = i < 64 ? 1.0f : 0.0f;
            }
            slora_rope(a, 128, NULL, 0, &p, 1, 1, 0, 128, 500000.0f, ff,
                       SLORA_ROPE_LAYOUT_NEOX, 0, 1);
            n1 &= memcmp(a, table + (int64_t) p * 128, sizeof(a)) == 0;
        }
        ok(n1, "the table's rows with divisors are slora_rope's angles");
        free(table);
    }
}


static void
test_act_embed(void)
{
    int64_t   n, d, i, r;
    float    *g, *u, *out, *out3, *table;
    double   *ref;
    int32_t   ids[9];
    int       ith, bad;

    n = 9;
    d = 1536;
    g = frand_vec(n * d);
    u = frand_vec(n * d);
    out = malloc(n * d * sizeof(float));
    ref = malloc(n * d * sizeof(double));

    for (i = 0; i < n * d; i++) {
        g[i] *= 8.0f;
        ref[i] = (double) g[i] / (1.0 + exp(-(double) g[i])) * u[i];
    }

    ok(slora_silu_mul(out, d, g, d, u, d, n, d, 0, 1) == 0,
       "silu_mul runs");
    ok(rel_err(out, ref, n * d) < 1e-6, "silu_mul matches: %.2e",
       rel_err(out, ref, n * d));

    out3 = frand_vec(n * d);
    bad = 0;
    for (ith = 2; ith >= 0; ith--) {
        bad += slora_silu_mul(out3, d, g, d, u, d, n, d, ith, 3);
    }
    ok(bad == 0 && memcmp(out3, out, n * d * sizeof(float)) == 0,
       "silu_mul in 3 shares == 1 share");

    /* every instruction set, to the portable row's bits, over a row
     * with exp's edges in it and a width with a tail past the blocks */
    {
        static const float  edge[] = { 100.0f, -100.0f, 88.8f, -88.8f,
                                       104.0f, -104.0f, 0.0f, -0.0f,
                                       1e-30f, -1e-30f, INFINITY, -INFINITY,
                                       3.0f };
        float   *want, *got, *ge;
        int      isa, same, ran;
        int64_t  w;

        ge = malloc(n * d * sizeof(float));
        memcpy(ge, g, n * d * sizeof(float));

        for (i = 0; i < 13; i++) {
            ge[i] = edge[i];
        }

        want = malloc(n * d * sizeof(float));
        got = malloc(n * d * sizeof(float));

        for (w = d; w >= 13; w -= d - 13) {
            ok(slora_silu_mul_isa(want, w, ge, w, u, w, n, w, 0, 1,
                                  SLORA_QISA_C) == 0,
               "silu_mul, portable, width %lld", (long long) w);

            for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_LAST; isa++) {
                if (!slora_qmatmul_isa_supported(isa)) {
                    ok(slora_silu_mul_isa(got, w, ge, w, u, w, n, w, 0, 1,
                                          isa) == -1,
                       "silu_mul isa %d: not on this CPU, refused", isa);
                    continue;
                }

                ran = slora_silu_mul_isa(got, w, ge, w, u, w, n, w, 0, 1,
                                         isa) == 0;
                same = memcmp(got, want, n * w * sizeof(float)) == 0;
                ok(ran && same, "silu_mul isa %d, width %lld: the portable "
                   "row's bits", isa, (long long) w);
            }
        }

        free(want);
        free(got);
        free(ge);
    }

    ok(slora_silu_mul(g, d, g, d, u, d, n, d, 0, 1) == 0
       && rel_err(g, ref, n * d) < 1e-6, "silu_mul in place");

    table = frand_vec(97 * 64);
    for (i = 0; i < n; i++) {
        ids[i] = tap_irand(97);
    }
    ids[0] = 96;
    ids[1] = 0;

    ok(slora_embed(out, 64, table, 97, 64, ids, n) == 0, "embed runs");
    for (r = 0, i = 0; r < n; r++) {
        i += memcmp(out + r * 64, table + ids[r] * 64, 64 * sizeof(float))
             != 0;
    }
    ok(i == 0, "embed gathers the rows");

    ids[4] = 97;
    ok(slora_embed(out, 64, table, 97, 64, ids, n) == -1,
       "embed refuses id == vocab");
    ids[4] = -1;
    ok(slora_embed(out, 64, table, 97, 64, ids, n) == -1,
       "embed refuses a negative id");

    free(g); free(u); free(out); free(ref); free(table); free(out3);
}


/*
 * Three sequences with contexts of different lengths over shuffled pages
 * of one arena; the reference keeps each sequence's K and V dense.
 */

static void
test_attention_case(int32_t nh, int32_t nkv, int32_t hd, int32_t tpp,
    int nth, float qscale)
{
    /* a prompt's chunk, a first token, a chunk at the end of a long
     * context, and a decode row deep in one */
    enum { NS = 4 };
    static const int32_t  ctx[NS] = { 37, 1, 90, 61 };
    static const int32_t  nnew[NS] = { 11, 1, 3, 1 };
    int32_t               s, t, j, i, h, np, total_pages, *pages;
    int32_t               qo[NS + 1], pos0[NS], kvp[NS + 1], qo2[NS + 1];
    int32_t               pos2[NS];
    int64_t               kv_dim, page_elems, off;
    float                *arena, *k, *v, *q, *out, *out1, *kd[NS], *vd[NS];
    double               *ref, *sc, mx, sum, acc;
    void                 *work;
    size_t                ws;
    slora_paged_kv_t      c;
    slora_seq_index_t     ix;
    int                   bad, ith, isa;

    kv_dim = (int64_t) nkv * hd;
    page_elems = 2 * tpp * kv_dim + 8;

    total_pages = 0;
    kvp[0] = 0;
    qo[0] = 0;
    for (s = 0; s < NS; s++) {
        np = (ctx[s] + tpp - 1) / tpp;
        kvp[s + 1] = kvp[s] + np;
        total_pages += np;
        qo[s + 1] = qo[s] + ctx[s];
        pos0[s] = 0;
    }

    total_pages += 4;       /* pages nobody uses */
    pages = malloc(total_pages * sizeof(int32_t));
    for (i = 0; i < total_pages; i++) {
        pages[i] = i;
    }
    tap_shuffle(pages, total_pages);

    arena = frand_vec(total_pages * page_elems);
    k = frand_vec(qo[NS] * kv_dim);
    v = frand_vec(qo[NS] * kv_dim);

    c.kv = arena;
    c.page_elems = page_elems;
    c.tokens_per_page = tpp;
    c.n_kv_heads = nkv;
    c.head_dim = hd;

    ix.n_seqs = NS;
    ix.qo_indptr = qo;
    ix.seq_pos = pos0;
    ix.kv_indptr = kvp;
    ix.kv_indices = pages;

    ok(slora_kv_store(&c, &ix, k, kv_dim, v, kv_dim) == 0, "kv_store runs");

    bad = 0;
    for (s = 0; s < NS; s++) {
        for (t = 0; t < ctx[s]; t++) {
            off = pages[kvp[s] + t / tpp] * page_elems + (t % tpp) * kv_dim;
            bad += memcmp(arena + off, k + (qo[s] + t) * kv_dim,
                          kv_dim * sizeof(float)) != 0;
            bad += memcmp(arena + off + tpp * kv_dim,
                          v + (qo[s] + t) * kv_dim,
                          kv_dim * sizeof(float)) != 0;
        }
        kd[s] = k + qo[s] * kv_dim;
        vd[s] = v + qo[s] * kv_dim;
    }
    ok(bad == 0, "kv_store puts K and V rows in their page slots");

    /* queries: the last nnew[s] positions of each sequence */
    qo2[0] = 0;
    for (s = 0; s < NS; s++) {
        qo2[s + 1] = qo2[s] + nnew[s];
        pos2[s] = ctx[s] - nnew[s];
    }
    ix.qo_indptr = qo2;
    ix.seq_pos = pos2;

    q = frand_vec(qo2[NS] * nh * hd);
    for (i = 0; i < qo2[NS] * nh * hd; i++) {
        q[i] *= qscale;
    }
    out = malloc(qo2[NS] * nh * hd * sizeof(float));
    ref = malloc(qo2[NS] * nh * hd * sizeof(double));
    sc = malloc(128 * sizeof(double));

    for (s = 0; s < NS; s++) {
        for (i = 0; i < nnew[s]; i++) {
            int32_t  r = qo2[s] + i, p = pos2[s] + i;

            for (h = 0; h < nh; h++) {
                const float  *qh = q + (r * nh + h) * hd;
                int32_t       kh = h / (nh / nkv);

                mx = -INFINITY;
                for (t = 0; t <= p; t++) {
                    acc = 0;
                    for (j = 0; j < hd; j++) {
                        acc += (double) qh[j]
                               * kd[s][t * kv_dim + kh * hd + j];
                    }
                    sc[t] = acc / sqrt(hd);
                    mx = fmax(mx, sc[t]);
                }
                sum = 0;
                for (t = 0; t <= p; t++) {
                    sc[t] = exp(sc[t] - mx);
                    sum += sc[t];
                }
                for (j = 0; j < hd; j++) {
                    acc = 0;
                    for (t = 0; t <= p; t++) {
                        acc += sc[t] * vd[s][t * kv_dim + kh * hd + j];
                    }
                    ref[(r * nh + h) * hd + j] = acc / sum;
                }
            }
        }
    }

    ws = slora_attention_workspace_size(90, nth);
    work = malloc(ws);

    ok(slora_attention(out, nh * hd, q, nh * hd, nh, &c, &ix, work, ws - 4,
                       nth - 1, nth)
       == -1, "attention refuses a short workspace");

    bad = 0;
    for (ith = nth - 1; ith >= 0; ith--) {
        bad += slora_attention(out, nh * hd, q, nh * hd, nh, &c, &ix, work,
                               ws, ith, nth) != 0;
    }
    ok(bad == 0, "attention runs in %d shares", nth);
    ok(rel_err(out, ref, qo2[NS] * nh * hd) < 1e-5,
       "attention heads %d/%d hd %d tpp %d shares %d: %.2e", nh, nkv, hd,
       tpp, nth, rel_err(out, ref, qo2[NS] * nh * hd));

    out1 = malloc(qo2[NS] * nh * hd * sizeof(float));
    ok(slora_attention(out1, nh * hd, q, nh * hd, nh, &c, &ix, work, ws, 0, 1)
       == 0 && memcmp(out1, out, qo2[NS] * nh * hd * sizeof(float)) == 0,
       "attention in %d shares == 1 share", nth);

    /* every instruction set this processor runs gives the portable
     * code's bits, in any number of shares */
    bad = 0;
    for (ith = nth - 1; ith >= 0; ith--) {
        bad += slora_attention_isa(out1, nh * hd, q, nh * hd, nh, &c, &ix,
                                   work, ws, ith, nth, SLORA_QISA_C) != 0;
    }

    for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_LAST; isa++) {
        memset(out, 0x5a, qo2[NS] * nh * hd * sizeof(float));

        if (!slora_qmatmul_isa_supported(isa)) {
            ok(slora_attention_isa(out, nh * hd, q, nh * hd, nh, &c, &ix,
                                   work, ws, 0, 1, isa) == -1,
               "attention isa %d: not on this CPU, refused", isa);
            continue;
        }

        ok(bad == 0 && slora_attention_isa(out, nh * hd, q, nh * hd, nh, &c,
                                           &ix, work, ws, 0, 1, isa) == 0
           && memcmp(out1, out, qo2[NS] * nh * hd * sizeof(float)) == 0,
           "attention isa %d, hd %d: the portable code's bits", isa, hd);
    }

    free(pages); free(arena); free(k); free(v); free(q); free(out);
    free(ref); free(sc); free(work); free(out1);
}


/*
 * slora_expf against the C library's expf: within one ulp over [-110,
 * 90] in steps that hit every binade, and the C library's answers for
 * NaN, the infinities and what lies past either end.
 */
static void
test_exp(void)
{
    static const float  edge[] = { -INFINITY, INFINITY, -1e30f, 1e30f,
                                   -103.97f, -103.9f, -87.5f, -0.0f, 0.0f,
                                   88.72f, 88.73f, 1e-30f, -1e-30f };
    float               x, got, want;
    int32_t             far, i, d;

    far = 0;

    for (x = -110.0f; x <= 90.0f; x += 0.00137f) {
        got = slora_expf(x);
        want = expf(x);
        memcpy(&i, &got, 4);
        memcpy(&d, &want, 4);
        far += abs(i - d) > 1;
    }

    ok(far == 0, "slora_expf within 1 ulp of expf over [-110, 90] (%d off)",
       far);

    far = 0;

    for (i = 0; i < (int32_t) (sizeof(edge) / sizeof(edge[0])); i++) {
        got = slora_expf(edge[i]);
        want = expf(edge[i]);
        far += !(got == want
                 || fabsf(got - want) <= 1.2e-7f * fabsf(want));
    }

    ok(far == 0 && isnan(slora_expf(NAN)),
       "slora_expf's edges: the infinities, overflow, underflow, zeros, NaN");
}


/*
 * slora_vec_sum: its eight sums and their tree, written out here, to the
 * bit (the AVX2 softmax adds the same pairs), and within float rounding
 * of the exact sum, for every length from 0 to 67.
 */
static void
test_sum(void)
{
    float    x[67], acc[8], want, got, tail;
    double   exact;
    int32_t  n, i, j, bits, far;

    for (i = 0; i < 67; i++) {
        x[i] = (float) ((i * 7919) % 1000) / 97.0f + 1e-3f * (float) i;
    }

    bits = 0;
    far = 0;

    for (n = 0; n <= 67; n++) {
        memset(acc, 0, sizeof(acc));
        exact = 0;

        for (i = 0; i < n; i++) {
            exact += x[i];
        }

        for (i = 0; i + 8 <= n; i += 8) {
            for (j = 0; j < 8; j++) {
                acc[j] += x[i + j];
            }
        }

        for (tail = 0.0f; i < n; i++) {
            tail += x[i];
        }

        want = ((acc[0] + acc[4]) + (acc[2] + acc[6]))
               + ((acc[1] + acc[5]) + (acc[3] + acc[7])) + tail;
        got = slora_vec_sum(x, n);

        bits += memcmp(&want, &got, sizeof(float)) != 0;
        far += fabs(got - exact) > 1e-6 * (exact + 1);
    }

    is_int(bits, 0, "slora_vec_sum: its sums and tree to the bit, n 0-67");
    is_int(far, 0, "slora_vec_sum: within rounding of the exact sum");
}


static void
test_attention(void)
{
    test_attention_case(4, 2, 16, 3, 2, 1.0f);
    test_attention_case(9, 3, 64, 8, 2, 1.0f);
    test_attention_case(8, 8, 32, 16, 1, 1.0f);
    test_attention_case(6, 1, 8, 1, 3, 1.0f);
    test_attention_case(4, 4, 128, 16, 2, 1.0f);
    test_attention_case(3, 3, 48, 4, 3, 1.0f);
    test_attention_case(2, 1, 80, 5, 2, 1.0f);

    /* scores tens of units apart: exponentials that underflow, some to
     * subnormals, some to 0 */
    test_attention_case(4, 2, 64, 8, 2, 200.0f);
    test_exp();
    test_sum();
}


/*
 * Segments of different lengths, each with an adapter of its own rank or
 * none; A rows and B^T rows sit in shuffled slots of a shared arena.
 */

static void
test_lora_case(int32_t in, int32_t out, int nth)
{
    enum { NS = 8 };
    static const int32_t  lens[NS] = { 17, 1, 1, 4, 0, 1, 9, 2 };
    static const int32_t  ranks[NS] = { 64, 8, 0, 128, 8, 16, 32, 0 };
    int32_t               s, j, i, t, indptr[NS + 1], rank[NS], width;
    int32_t               n_slots, slot, *perm, n_tok;
    int64_t              *arows[NS], *brows[NS];
    const int64_t        *ca[NS], *cb[NS];
    float                 scale[NS], *arena, *x, *y, *y0, *vv, *y3, *vc,
                         *vi, *yc, *yi;
    double               *ref, *vref, acc;
    slora_lora_segs_t     sg;
    void                 *work;
    size_t                ws;
    int                   bad, ith, isa;

    width = in > out ? in : out;
    n_slots = 0;
    indptr[0] = 0;
    for (s = 0; s < NS; s++) {
        indptr[s + 1] = indptr[s] + lens[s];
        rank[s] = ranks[s];
        scale[s] = 2.0f / (s + 1);
        n_slots += 2 * ranks[s];
    }
    n_tok = indptr[NS];

    /* slots of width floats, handed out in shuffled order */
    perm = malloc((n_slots + 5) * sizeof(int32_t));
    for (i = 0; i < n_slots + 5; i++) {
        perm[i] = i;
    }
    tap_shuffle(perm, n_slots + 5);
    arena = frand_vec((int64_t) (n_slots + 6) * width);

    slot = 0;
    for (s = 0; s < NS; s++) {
        arows[s] = malloc((ranks[s] + 1) * sizeof(int64_t));
        brows[s] = malloc((ranks[s] + 1) * sizeof(int64_t));
        for (j = 0; j < ranks[s]; j++) {
            arows[s][j] = (int64_t) perm[slot++] * width;
            brows[s][j] = (int64_t) perm[slot++] * width + (j % 3);
        }
        ca[s] = ranks[s] ? arows[s] : NULL;
        cb[s] = ranks[s] ? brows[s] : NULL;
    }

    x = frand_vec(n_tok * in);
    y = frand_vec(n_tok * out);
    y0 = malloc(n_tok * out * sizeof(float));
    memcpy(y0, y, n_tok * out * sizeof(float));
    vv = malloc(n_tok * 128 * sizeof(float));
    vref = calloc(n_tok * 128, sizeof(double));
    ref = malloc(n_tok * out * sizeof(double));

    for (s = 0; s < NS; s++) {
        for (t = indptr[s]; t < indptr[s + 1]; t++) {
            for (j = 0; j < ranks[s]; j++) {
                acc = 0;
                for (i = 0; i < in; i++) {
                    acc += (double) x[t * in + i] * arena[arows[s][j] + i];
                }
                vref[t * 128 + j] = acc;
            }
            for (i = 0; i < out; i++) {
                acc = 0;
                for (j = 0; j < ranks[s]; j++) {
                    acc += vref[t * 128 + j] * arena[brows[s][j] + i];
                }
                ref[t * out + i] = y0[t * out + i] + scale[s] * acc;
            }
        }
    }

    sg.n_segs = NS;
    sg.seg_indptr = indptr;
    sg.rank = rank;
    sg.scale = scale;
    sg.a_rows = ca;
    sg.b_rows = cb;

    for (i = 0; i < n_tok * 128; i++) {
        vv[i] = NAN;
    }

    bad = 0;
    for (ith = nth - 1; ith >= 0; ith--) {
        bad += slora_lora_shrink(vv, 128, x, in, arena, in, &sg, ith, nth)
               != 0;
    }
    ok(bad == 0, "shrink runs in %d shares", nth);

    bad = 0;
    for (s = 0; s < NS; s++) {
        for (t = indptr[s]; t < indptr[s + 1]; t++) {
            for (j = 0; j < 128; j++) {
                if (j < ranks[s]) {
                    acc = fabs(vv[t * 128 + j] - vref[t * 128 + j]);
                    bad += !(acc <= 1e-5 * (1 + fabs(vref[t * 128 + j])));

                } else {
                    bad += !isnan(vv[t * 128 + j]);
                }
            }
        }
    }
    ok(bad == 0, "shrink %d->r matches and leaves other columns alone "
       "(%d bad)", in, bad);

    ws = slora_lora_workspace_size(n_tok, 128);
    work = malloc(ws);

    ok(slora_lora_apply(y, out, x, in, arena, in, out, &sg, work, ws / 2)
       == -1, "apply refuses a short workspace");
    ok(slora_lora_apply(y, out, x, in, arena, in, out, &sg, work, ws - 1)
       == -1, "... and one a byte short (the last segment's rows count)");
    ok(slora_lora_shrink(vv, 127, x, in, arena, in, &sg, 0, 1) == -1,
       "shrink refuses a v narrower than the largest rank");
    ok(slora_lora_apply(y, out, x, in, arena, in, out, &sg, work, ws) == 0,
       "apply runs");
    ok(rel_err(y, ref, n_tok * out) < 1e-5,
       "lora %d->%d ranks {64,8,0,128,8 (no rows),16,32,0}: %.2e", in, out,
       rel_err(y, ref, n_tok * out));

    /* shrink and expand in nth shares each == apply on one thread */
    y3 = malloc(n_tok * out * sizeof(float));
    memcpy(y3, y0, n_tok * out * sizeof(float));
    bad = 0;
    for (ith = nth - 1; ith >= 0; ith--) {
        bad += slora_lora_shrink(work, 128, x, in, arena, in, &sg, ith, nth)
               != 0;
    }
    for (ith = 0; ith < nth; ith++) {
        bad += slora_lora_expand(y3, out, work, 128, arena, out, &sg, ith,
                                 nth)
               != 0;
    }
    ok(bad == 0 && memcmp(y3, y, n_tok * out * sizeof(float)) == 0,
       "lora %d->%d in %d shares == 1 share", in, out, nth);

    /* each instruction set the processor has: the portable code's bits,
     * v and y (v's unused columns zeroed first in both) */
    vc = calloc(n_tok * 128, sizeof(float));
    vi = calloc(n_tok * 128, sizeof(float));
    yc = malloc(n_tok * out * sizeof(float));
    yi = malloc(n_tok * out * sizeof(float));
    memcpy(yc, y0, n_tok * out * sizeof(float));
    bad = 0;

    for (ith = 0; ith < nth; ith++) {
        bad += slora_lora_shrink_isa(vc, 128, x, in, arena, in, &sg, ith,
                                     nth, SLORA_QISA_C) != 0;
    }

    for (ith = 0; ith < nth; ith++) {
        bad += slora_lora_expand_isa(yc, out, vc, 128, arena, out, &sg, ith,
                                     nth, SLORA_QISA_C) != 0;
    }

    ok(bad == 0 && memcmp(yc, y, n_tok * out * sizeof(float)) == 0,
       "lora %d->%d: the portable code's y is the default's to the bit",
       in, out);

    for (isa = SLORA_QISA_AVX2; isa <= SLORA_QISA_LAST; isa++) {
        if (!slora_qmatmul_isa_supported(isa)) {
            ok(slora_lora_shrink_isa(vi, 128, x, in, arena, in, &sg, 0, 1,
                                     isa) == -1
               && slora_lora_expand_isa(yi, out, vi, 128, arena, out, &sg,
                                        0, 1, isa) == -1,
               "lora isa %d: not on this CPU, refused", isa);
            continue;
        }

        memset(vi, 0, n_tok * 128 * sizeof(float));
        memcpy(yi, y0, n_tok * out * sizeof(float));
        bad = 0;

        for (ith = 0; ith < nth; ith++) {
            bad += slora_lora_shrink_isa(vi, 128, x, in, arena, in, &sg, ith,
                                         nth, isa) != 0;
        }

        for (ith = 0; ith < nth; ith++) {
            bad += slora_lora_expand_isa(yi, out, vi, 128, arena, out, &sg,
                                         ith, nth, isa) != 0;
        }

        ok(bad == 0 && memcmp(vi, vc, n_tok * 128 * sizeof(float)) == 0
           && memcmp(yi, yc, n_tok * out * sizeof(float)) == 0,
           "lora %d->%d, isa %d: the portable code's v and y to the bit",
           in, out, isa);
    }

    free(vc); free(vi); free(yc); free(yi);

    bad = 0;
    for (s = 0; s < NS; s++) {
        if (ranks[s] == 0) {
            bad += memcmp(y + indptr[s] * out, y0 + indptr[s] * out,
                          lens[s] * out * sizeof(float)) != 0;
        }
    }
    ok(bad == 0, "base-only rows untouched");

    rank[1] = -1;
    ok(slora_lora_apply(y, out, x, in, arena, in, out, &sg, work, ws) == -1,
       "apply refuses a negative rank");

    for (s = 0; s < NS; s++) {
        free(arows[s]);
        free(brows[s]);
    }
    free(perm); free(arena); free(x); free(y); free(y0); free(vv);
    free(vref); free(ref); free(work); free(y3);
}


static void
test_lora(void)
{
    test_lora_case(64, 96, 2);
    test_lora_case(576, 192, 2);
    test_lora_case(96, 64, 1);
    test_lora_case(200, 130, 3);
}


int
main(void)
{
    tap_seed(0x9e3779b97f4a7c15ull);

    test_norm();
    test_rope();
    test_act_embed();
    test_attention();
    test_lora();
    test_gemv();

    return done_testing();
}


/* y = x W^T + bias over strided rows, against the sums in double; the
 * columns between out and ld_y are left as they were */
static void
test_gemv(void)
{
    int32_t   n, out, in, t, o, i, kept;
    int64_t   ld_x, ld_y;
    float    *x, *w, *b, *y, *got;
    double   *ref, acc;

    n = 3;
    out = 37;
    in = 200;
    ld_x = in + 5;
    ld_y = out + 4;
    x = frand_vec((size_t) n * ld_x);
    w = frand_vec((size_t) out * in);
    b = frand_vec(out);
    y = malloc((size_t) n * ld_y * sizeof(float));
    got = malloc((size_t) n * out * sizeof(float));
    ref = malloc((size_t) n * out * sizeof(double));

    for (i = 0; i < n * ld_y; i++) {
        y[i] = -7.0f;
    }

    slora_gemv(y, ld_y, x, ld_x, w, b, n, out, in);

    kept = 1;

    for (t = 0; t < n; t++) {
        for (o = 0; o < out; o++) {
            acc = b[o];
            for (i = 0; i < in; i++) {
                acc += (double) x[t * ld_x + i] * w[(int64_t) o * in + i];
            }
            ref[t * out + o] = acc;
            got[t * out + o] = y[t * ld_y + o];
        }

        for (o = out; o < ld_y; o++) {
            kept &= y[t * ld_y + o] == -7.0f;
        }
    }

    ok(rel_err(got, ref, (size_t) n * out) < 1e-5, "gemv 3 x %d -> %d: %.2e",
       in, out, rel_err(got, ref, (size_t) n * out));
    ok(kept, "gemv leaves the columns past out alone");

    free(x);
    free(w);
    free(b);
    free(y);
    free(got);
    free(ref);
}
