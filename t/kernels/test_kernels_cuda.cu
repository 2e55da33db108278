/*
 * test_kernels_cuda.cu: conformance of every CUDA kernel against its CPU
 * twin (the kernels/slora_<family>_cpu.c files, compiled into this
 * binary), then timings of the LoRA kernels. The all-reduce, the
 * conversions and the attention family have tests of their own
 * (test_allreduce_cuda.cu, test_convert_cuda.cu,
 * test_attention_cuda.cu). Speaks TAP; the timings are '#' lines and a
 * table.
 *
 * The one idea: both sides see the very same bf16 values (the CPU gets
 * them widened to fp32), every case draws fresh random inputs, device
 * outputs are poisoned with NaN before each launch, and the error is
 * ||gpu - cpu|| / ||cpu|| with bounds for what each side rounds: fp32
 * sums only (1e-4) or a final bf16 rounding (1e-2). LoRA cases cover
 * Punica's adapter mixes and heterogeneous ranks in one launch.
 *
 *   test_kernels_cuda [--no-bench]
 */

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <algorithm>
#include <cuda_runtime.h>

extern "C" {
#include "slora_lora.h"
#include "slora_norm.h"
#include "slora_rope.h"
#include "slora_act.h"
#include "slora_embed.h"
}

#include "tap.h"
#include "cuda_test.h"


#define TOL_F32        1e-4
#define TOL_BF16       1e-2
#define N_SHARES       4      /* CPU twins run as shares 0 .. 3 */
#define N_ADAPTERS     32
#define N_SETS         8      /* arena copies rotated while timing */
#define N_REPS         60
#define COPY_TBPS      4.25   /* measured device-to-device copy, r + w */
#define FLUSH_BYTES    (256u << 20)
#define BENCH_TOK      4608   /* token rows of the timed calls' x and y */


typedef enum {
    MIX_IDENTICAL = 0,
    MIX_DISTINCT,
    MIX_UNIFORM,
    MIX_ZIPF,
    MIX_SKEWED,
    MIX_N
} mix_e;


static const char  *mix_name[MIX_N] = {
    "identical", "distinct", "uniform", "zipf1.5", "skewed90"
};


/* Adapters placed row by row at shuffled slots of a bf16 arena. */
typedef struct {
    int32_t      in_dim;
    int32_t      out_dim;
    int32_t      n;
    int32_t      rank[N_ADAPTERS];
    float        scale[N_ADAPTERS];
    int64_t     *a_rows[N_ADAPTERS];
    int64_t     *b_rows[N_ADAPTERS];
    int64_t     *d_a_rows[N_ADAPTERS];
    int64_t     *d_b_rows[N_ADAPTERS];
    size_t       elems;
    float       *f;
    uint16_t    *d;            /* N_SETS copies, elems apart */
} pool_t;


static __global__ void flush_l2(const uint4 *p, size_t n, unsigned *sink);
static void pool_make(pool_t *p, int32_t in_dim, int32_t out_dim,
    const int32_t *ranks, int32_t n_ranks);
static void pool_free(pool_t *p);
static int32_t mix_pick(mix_e mix, int32_t i);
static int test_lora(pool_t *p, const int32_t *seg_len, const int32_t *seg_ad,
    int32_t n_segs, const char *what);
static int test_lora_proj(pool_t *p, const int32_t *seg_len,
    const int32_t *seg_ad, int32_t n_segs, int32_t n_proj, const char *what);
static void test_lora_all(void);
static void test_norm(void);
static void test_head_norm(void);
static void test_act(void);
static void test_rope(void);
static void test_embed(void);
static void bench_lora(void);
static float time_segs(const pool_t *p, const int32_t *seg_len,
    const int32_t *seg_ad, int32_t n_segs, const uint16_t *d_x,
    uint16_t *d_y, float *d_v, int *rc);
static float time_apply(const pool_t *p, const slora_lora_segs_t *dsg,
    int64_t n_tok, int32_t max_rank, int32_t max_len, const uint16_t *d_x,
    uint16_t *d_y, float *d_v, int *rc);


int
main(int argc, char **argv)
{
    int             bench;
    cudaDeviceProp  prop;

    bench = !(argc > 1 && strcmp(argv[1], "--no-bench") == 0);
    cuda_test_devices();

    CK(cudaGetDeviceProperties(&prop, 0));
    diag("device: %s, %d SMs, L2 %d MB, cc %d.%d", prop.name,
         prop.multiProcessorCount, prop.l2CacheSize >> 20, prop.major,
         prop.minor);

    test_lora_all();
    test_norm();
    test_head_norm();
    test_act();
    test_rope();
    test_embed();

    kstat_print();

    if (bench) {
        bench_lora();
    }

    return done_testing();
}


static void
test_lora_all(void)
{
    static const int32_t  r16[] = { 16 };
    static const int32_t  mixed[] = { 8, 16, 32, 64 };
    static const int32_t  wide[] = { 8, 12, 40, 64, 100, 128 };
    static const int32_t  pre_len[] = { 37, 1, 200, 64, 513, 5 };
    static const int32_t  dec3_len[] = { 3, 1, 2, 3, 3, 1, 2 };
    static const int32_t  batch[] = { 1, 16, 64, 256 };
    static const int32_t  empty_len[] = { 0, 70, 0, 0, 3, 0 };

    struct {
        int32_t          in_dim, out_dim, n_ranks;
        const int32_t   *ranks;
        const char      *name;
    } shape[] = {
        { 4096, 4096, 1, r16, "4096x4096 r16" },
        { 4096, 4096, 4, mixed, "4096x4096 r{8..64}" },
        { 4096, 1024, 6, wide, "4096x1024 r{8..128}" },
        { 1536, 576, 4, mixed, "1536x576 r{8..64}" },
    };

    pool_t   p;
    int32_t  seg_len[512], seg_ad[512], n, i, b, sh;
    mix_e    mix;
    char     what[128];

    for (sh = 0; sh < (int) (sizeof(shape) / sizeof(shape[0])); sh++) {
        pool_make(&p, shape[sh].in_dim, shape[sh].out_dim, shape[sh].ranks,
                  shape[sh].n_ranks);

        /* decode, MBGMV: one token per segment, every mix and batch */
        for (b = 0; b < 4; b++) {
            for (mix = MIX_IDENTICAL; mix < MIX_N; mix = (mix_e) (mix + 1)) {
                if (sh > 1 && batch[b] != 64) {
                    continue;
                }

                for (i = 0; i < batch[b]; i++) {
                    seg_len[i] = 1;
                    seg_ad[i] = mix_pick(mix, i);
                }

                snprintf(what, sizeof(what), "decode %s b%d %s",
                         shape[sh].name, batch[b], mix_name[mix]);
                test_lora(&p, seg_len, seg_ad, batch[b], what);
            }
        }

        /* decode with base-model rows: a quarter of the tokens have none */
        for (i = 0; i < 64; i++) {
            seg_len[i] = 1;
            seg_ad[i] = i % 4 == 3 ? -1 : mix_pick(MIX_UNIFORM, i);
        }

        snprintf(what, sizeof(what), "decode %s b64 uniform+base",
                 shape[sh].name);
        test_lora(&p, seg_len, seg_ad, 64, what);

        /* MBGMV segments of a few tokens */
        n = (int32_t) (sizeof(dec3_len) / sizeof(dec3_len[0]));

        for (i = 0; i < n; i++) {
            seg_len[i] = dec3_len[i];
            seg_ad[i] = i == 4 ? -1 : mix_pick(MIX_UNIFORM, i);
        }

        snprintf(what, sizeof(what), "grouped decode %s", shape[sh].name);
        test_lora(&p, seg_len, seg_ad, n, what);

        /* prefill, MBGMM: long segments, one without an adapter */
        n = (int32_t) (sizeof(pre_len) / sizeof(pre_len[0]));

        for (i = 0; i < n; i++) {
            seg_len[i] = pre_len[i];
            seg_ad[i] = i == 3 ? -1 : (int32_t) (rng_next() % p.n);
        }

        snprintf(what, sizeof(what), "prefill %s", shape[sh].name);
        test_lora(&p, seg_len, seg_ad, n, what);

        /* a step that mixes prompts with decode: three prompt chunks
         * among 120 segments of 1 to 4 tokens, every one its own
         * adapter or none; the short ones take the MBGMV body inside
         * the MBGMM launch */
        for (i = 0; i < 123; i++) {
            seg_len[i] = i == 7 ? 256 : i == 60 ? 65 : i == 122 ? 130
                         : 1 + (int32_t) (rng_next() % SLORA_LORA_GMV_MAX_SEG);
            seg_ad[i] = i % 9 == 4 ? -1 : mix_pick(MIX_DISTINCT, i);
        }

        snprintf(what, sizeof(what), "mixed step %s", shape[sh].name);
        test_lora(&p, seg_len, seg_ad, 123, what);

        /* empty segments, which have no work tile: fewer tiles than
         * segments in the MBGMM launch, and empty ones among decode
         * segments */
        n = (int32_t) (sizeof(empty_len) / sizeof(empty_len[0]));

        for (i = 0; i < n; i++) {
            seg_len[i] = empty_len[i];
            seg_ad[i] = mix_pick(MIX_DISTINCT, i);
        }

        snprintf(what, sizeof(what), "empty segments %s", shape[sh].name);
        test_lora(&p, seg_len, seg_ad, n, what);

        for (i = 0; i < n; i++) {
            seg_len[i] = empty_len[i] > SLORA_LORA_GMV_MAX_SEG ? 2
                                                               : empty_len[i];
        }

        snprintf(what, sizeof(what), "empty decode segments %s",
                 shape[sh].name);
        test_lora(&p, seg_len, seg_ad, n, what);

        pool_free(&p);
    }
}


/*
 * One batch: segment s has seg_len[s] tokens and adapter seg_ad[s] (-1:
 * none), run through one projection and then through three that share
 * a launch, as q, k and v do: projection k > 0 takes another adapter of
 * the pool for the same segment (none on some segments of the third, as
 * an adapter that leaves v alone), writes half the columns, and its
 * output sits beside the others in one row, q | k | v. Runs the CPU twin
 * of each projection and the CUDA shrink + expand on the same bf16
 * values and compares v, y and the LoRA delta y - y0.
 */

static int
test_lora(pool_t *p, const int32_t *seg_len, const int32_t *seg_ad,
    int32_t n_segs, const char *what)
{
    int32_t              n_proj, ok_all;

    ok_all = 1;

    for (n_proj = 1; n_proj <= SLORA_LORA_MAX_PROJ; n_proj += 2) {
        ok_all &= test_lora_proj(p, seg_len, seg_ad, n_segs, n_proj, what);
    }

    return ok_all;
}


static int
test_lora_proj(pool_t *p, const int32_t *seg_len, const int32_t *seg_ad,
    int32_t n_segs, int32_t n_proj, const char *what)
{
    int32_t             *indptr, *rank[SLORA_LORA_MAX_PROJ], max_rank,
                         max_len, s, j, k, ad, out_dim[SLORA_LORA_MAX_PROJ];
    float               *scale, *xf, *y0f, *ycpu, *vcpu, *vgpu, *ygpu, *dg,
                        *dc;
    uint16_t            *xh, *y0h, *d_x, *d_y, *d_yk[SLORA_LORA_MAX_PROJ];
    const int64_t      **a_h[SLORA_LORA_MAX_PROJ], **b_h[SLORA_LORA_MAX_PROJ],
                       **a_d[SLORA_LORA_MAX_PROJ], **b_d[SLORA_LORA_MAX_PROJ];
    int64_t              n_tok, t, i, n_base, n_v, base_same, ld_y,
                         off[SLORA_LORA_MAX_PROJ], n_work;
    float               *d_v, *d_v2, *d_work, *vagain, *d_delta, *hdelta,
                        *d_dk[SLORA_LORA_MAX_PROJ];
    int                  same_bits, delta_same, rc_d;
    slora_lora_segs_t    sg, dsg[SLORA_LORA_MAX_PROJ];
    double               ev, ey, ed;
    int                  rc_c, rc_g, ok_all, ith;
    const int64_t      **d_a_arr[SLORA_LORA_MAX_PROJ],
                       **d_b_arr[SLORA_LORA_MAX_PROJ];
    int32_t             *d_indptr, *d_rank[SLORA_LORA_MAX_PROJ], *tiles,
                        *d_tiles;
    float               *d_scale;

    indptr = (int32_t *) malloc((n_segs + 1) * sizeof(int32_t));
    tiles = (int32_t *) malloc((n_segs + 1) * sizeof(int32_t));
    scale = (float *) malloc(n_segs * sizeof(float));
    indptr[0] = 0;
    max_rank = 0;
    max_len = 0;
    ld_y = 0;

    for (s = 0; s < n_segs; s++) {
        indptr[s + 1] = indptr[s] + seg_len[s];
        max_len = std::max(max_len, seg_len[s]);
        scale[s] = seg_ad[s] < 0 ? 0.0f : p->scale[seg_ad[s]];
    }

    for (k = 0; k < n_proj; k++) {
        out_dim[k] = k == 0 ? p->out_dim : p->out_dim / 16 * 8;
        off[k] = ld_y;
        ld_y += out_dim[k];
        rank[k] = (int32_t *) malloc(n_segs * sizeof(int32_t));
        a_h[k] = (const int64_t **) calloc(n_segs, sizeof(int64_t *));
        b_h[k] = (const int64_t **) calloc(n_segs, sizeof(int64_t *));
        a_d[k] = (const int64_t **) calloc(n_segs, sizeof(int64_t *));
        b_d[k] = (const int64_t **) calloc(n_segs, sizeof(int64_t *));

        for (s = 0; s < n_segs; s++) {
            ad = seg_ad[s] < 0 || (k == 2 && s % 3 == 1)
                 ? -1 : (seg_ad[s] + 5 * k) % p->n;
            rank[k][s] = ad < 0 ? 0 : p->rank[ad];

            if (ad >= 0) {
                a_h[k][s] = p->a_rows[ad];
                b_h[k][s] = p->b_rows[ad];
                a_d[k][s] = p->d_a_rows[ad];
                b_d[k][s] = p->d_b_rows[ad];
                max_rank = std::max(max_rank, rank[k][s]);
            }
        }
    }

    n_tok = indptr[n_segs];
    n_v = n_tok * max_rank;

    xh = (uint16_t *) malloc(n_tok * p->in_dim * 2);
    xf = (float *) malloc(n_tok * p->in_dim * 4);
    y0h = (uint16_t *) malloc(n_tok * ld_y * 2);
    y0f = (float *) malloc(n_tok * ld_y * 4);
    ycpu = (float *) malloc(n_tok * ld_y * 4);
    ygpu = (float *) malloc(n_tok * ld_y * 4);
    dg = (float *) malloc(n_tok * ld_y * 4);
    dc = (float *) malloc(n_tok * ld_y * 4);
    vcpu = (float *) malloc((n_proj * n_v + 1) * 4);
    vgpu = (float *) malloc((n_proj * n_v + 1) * 4);

    fill(xh, xf, n_tok * p->in_dim, -1.0f, 1.0f);
    fill(y0h, y0f, n_tok * ld_y, -1.0f, 1.0f);
    memcpy(ycpu, y0f, n_tok * ld_y * 4);

    rc_c = 0;

    for (k = 0; k < n_proj; k++) {
        sg.n_segs = n_segs;
        sg.seg_indptr = indptr;
        sg.rank = rank[k];
        sg.scale = scale;
        sg.a_rows = a_h[k];
        sg.b_rows = b_h[k];

        for (ith = 0; ith < N_SHARES; ith++) {
            rc_c |= slora_lora_shrink(vcpu + k * n_v, max_rank, xf,
                                      p->in_dim, p->f, p->in_dim, &sg, ith,
                                      N_SHARES);
        }
        for (ith = 0; ith < N_SHARES; ith++) {
            rc_c |= slora_lora_expand(ycpu + off[k], ld_y, vcpu + k * n_v,
                                      max_rank, p->f, out_dim[k], &sg, ith,
                                      N_SHARES);
        }
    }

    d_indptr = (int32_t *) dup_to_dev(indptr, (n_segs + 1) * 4);
    slora_lora_tiles_cuda(indptr, n_segs, tiles, &sg);
    d_tiles = (int32_t *) dup_to_dev(tiles, (n_segs + 1) * 4);
    d_scale = (float *) dup_to_dev(scale, n_segs * 4);
    d_x = (uint16_t *) dup_to_dev(xh, n_tok * p->in_dim * 2);
    d_y = (uint16_t *) dup_to_dev(y0h, n_tok * ld_y * 2);
    d_v = (float *) dmalloc((n_proj * n_v + 1) * 4);
    CK(cudaMemset(d_v, 0xff, (n_proj * n_v + 1) * 4));
    d_v2 = (float *) dmalloc((n_proj * n_v + 1) * 4);
    CK(cudaMemset(d_v2, 0xff, (n_proj * n_v + 1) * 4));
    n_work = (int64_t) SLORA_LORA_SPLIT_MAX * n_proj * n_v;
    d_work = (float *) dmalloc((n_work + 1) * 4);

    for (k = 0; k < n_proj; k++) {
        d_rank[k] = (int32_t *) dup_to_dev(rank[k], n_segs * 4);
        d_a_arr[k] = (const int64_t **) dup_to_dev(a_d[k],
                                                   n_segs * sizeof(void *));
        d_b_arr[k] = (const int64_t **) dup_to_dev(b_d[k],
                                                   n_segs * sizeof(void *));
        d_yk[k] = d_y + off[k];
        dsg[k].n_segs = n_segs;
        dsg[k].seg_indptr = d_indptr;
        dsg[k].n_tiles = sg.n_tiles;
        dsg[k].n_long = sg.n_long;
        dsg[k].tile_indptr = d_tiles;
        dsg[k].rank = d_rank[k];
        dsg[k].scale = d_scale;
        dsg[k].a_rows = d_a_arr[k];
        dsg[k].b_rows = d_b_arr[k];
    }

    rc_g = slora_lora_shrink_cuda(d_v, max_rank, n_v, d_work, n_work, d_x,
                                  p->in_dim, p->d, p->in_dim, dsg, n_proj,
                                  n_tok, max_rank, max_len, NULL);
    rc_g |= slora_lora_expand_cuda(d_yk, ld_y, out_dim, d_v, max_rank, n_v,
                                   p->d, dsg, n_proj, max_rank, max_len,
                                   NULL);
    /* the shrink again: the same bits, its split summed in order */
    rc_g |= slora_lora_shrink_cuda(d_v2, max_rank, n_v, d_work, n_work, d_x,
                                   p->in_dim, p->d, p->in_dim, dsg, n_proj,
                                   n_tok, max_rank, max_len, NULL);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(vgpu, d_v, n_proj * n_v * 4, cudaMemcpyDeviceToHost));
    vagain = (float *) malloc(n_proj * n_v * 4 + 4);
    CK(cudaMemcpy(vagain, d_v2, n_proj * n_v * 4, cudaMemcpyDeviceToHost));
    from_dev_bf(ygpu, d_y, n_tok * ld_y);

    /* compare v only where a rank covers it; the columns of a projection
     * without an adapter on a token must come back bit for bit */
    n_base = 0;
    base_same = 1;

    for (k = 0; k < n_proj; k++) {
        for (s = 0; s < n_segs; s++) {
            for (t = indptr[s]; t < indptr[s + 1]; t++) {
                for (j = rank[k][s]; j < max_rank; j++) {
                    vcpu[k * n_v + t * max_rank + j] = 0.0f;
                    vgpu[k * n_v + t * max_rank + j] = 0.0f;
                }

                for (i = off[k]; i < off[k] + out_dim[k]; i++) {
                    dg[t * ld_y + i] = ygpu[t * ld_y + i] - y0f[t * ld_y + i];
                    dc[t * ld_y + i] = ycpu[t * ld_y + i] - y0f[t * ld_y + i];

                    if (rank[k][s] == 0) {
                        base_same &= ygpu[t * ld_y + i] == y0f[t * ld_y + i];
                    }
                }

                n_base += rank[k][s] == 0;
            }
        }
    }

    same_bits = 1;
    for (k = 0; k < n_proj; k++) {
        for (s = 0; s < n_segs; s++) {
            for (t = indptr[s]; t < indptr[s + 1]; t++) {
                same_bits &= memcmp(vgpu + k * n_v + t * max_rank,
                                    vagain + k * n_v + t * max_rank,
                                    rank[k][s] * 4) == 0;
            }
        }
    }
    free(vagain);

    /* the expand into fp32 deltas (decode segments only): bf16(y0 + d)
     * is the expand into y to the bit, and rows without an adapter get
     * zeros, not what the buffer held */
    d_delta = (float *) dmalloc(n_tok * ld_y * 4 + 4);
    CK(cudaMemset(d_delta, 0xff, n_tok * ld_y * 4 + 4));

    for (k = 0; k < n_proj; k++) {
        d_dk[k] = d_delta + off[k];
    }

    rc_d = slora_lora_expand_delta_cuda(d_dk, ld_y, out_dim, d_v, max_rank,
                                        n_v, p->d, dsg, n_proj, max_rank,
                                        max_len, NULL);
    delta_same = rc_d == 0 || (rc_d == -2 && max_len > SLORA_LORA_GMV_MAX_SEG);

    if (rc_d == 0) {
        CK(cudaDeviceSynchronize());
        hdelta = (float *) malloc(n_tok * ld_y * 4);
        CK(cudaMemcpy(hdelta, d_delta, n_tok * ld_y * 4,
                      cudaMemcpyDeviceToHost));

        for (k = 0; k < n_proj; k++) {
            for (s = 0; s < n_segs; s++) {
                for (t = indptr[s]; t < indptr[s + 1]; t++) {
                    for (i = off[k]; i < off[k] + out_dim[k]; i++) {
                        delta_same &=
                            rank[k][s] == 0
                            ? hdelta[t * ld_y + i] == 0.0f
                            : slora_bf16_to_f32(slora_f32_to_bf16(
                                  y0f[t * ld_y + i] + hdelta[t * ld_y + i]))
                              == ygpu[t * ld_y + i];
                    }
                }
            }
        }

        free(hdelta);
    }

    CK(cudaFree(d_delta));

    ev = rel_err(vgpu, vcpu, n_proj * n_v);
    ey = rel_err(ygpu, ycpu, n_tok * ld_y);
    ed = rel_err(dg, dc, n_tok * ld_y);

    note("lora shrink (v)", ev);
    note("lora apply (y)", ey);
    note("lora delta (y - y0)", ed);

    ok_all = rc_c == 0 && rc_g == 0 && ev <= TOL_F32 && ey <= TOL_BF16
             && ed <= TOL_BF16 && base_same && same_bits && delta_same;
    ok(ok_all, "lora %s, %d projection%s: v %.1e y %.1e delta %.1e, "
       "rows without an adapter %s (%lld), v %s twice, the fp32 delta %s",
       what, n_proj, n_proj > 1 ? "s" : "", ev, ey, ed,
       base_same ? "kept" : "CHANGED", (long long) n_base,
       same_bits ? "the same" : "DIFFERENT",
       rc_d == -2 ? "refused (prefill)" : delta_same ? "y's to the bit"
                                                    : "DIFFERENT");

    if (rc_c != 0 || rc_g != 0) {
        diag("return codes: cpu %d cuda %d", rc_c, rc_g);
    }

    for (k = 0; k < n_proj; k++) {
        CK(cudaFree(d_rank[k]));
        CK(cudaFree((void *) d_a_arr[k]));
        CK(cudaFree((void *) d_b_arr[k]));
        free(rank[k]); free(a_h[k]); free(b_h[k]); free(a_d[k]);
        free(b_d[k]);
    }

    CK(cudaFree(d_indptr));
    CK(cudaFree(d_tiles));
    CK(cudaFree(d_scale));
    CK(cudaFree(d_x));
    CK(cudaFree(d_y));
    CK(cudaFree(d_v));
    CK(cudaFree(d_v2));
    CK(cudaFree(d_work));
    free(indptr); free(tiles); free(scale);
    free(xh); free(xf); free(y0h); free(y0f); free(ycpu); free(ygpu);
    free(dg); free(dc); free(vcpu); free(vgpu);

    return ok_all;
}


static void
test_norm(void)
{
    static const int64_t  rows[] = { 1, 5, 64 };
    static const int64_t  dims[] = { 576, 4096, 8192 };

    int64_t    ri, di, n_rows, dim, n, i;
    uint16_t  *xh, *rh, *wh, *d_x, *d_r, *d_w, *d_o;
    float     *xf, *rf, *wf, *oc, *og, *xg, *df, *d_d;
    double     e1, e2, e3;
    int        rc, k;

    for (ri = 0; ri < 3; ri++) {
        for (di = 0; di < 3; di++) {
            n_rows = rows[ri];
            dim = dims[di];
            n = n_rows * dim;
            xh = (uint16_t *) malloc(n * 2);
            rh = (uint16_t *) malloc(n * 2);
            wh = (uint16_t *) malloc(dim * 2);
            xf = (float *) malloc(n * 4);
            rf = (float *) malloc(n * 4);
            wf = (float *) malloc(dim * 4);
            oc = (float *) malloc(n * 4);
            og = (float *) malloc(n * 4);
            xg = (float *) malloc(n * 4);
            df = (float *) malloc(n * 4);

            fill(xh, xf, n, -3.0f, 3.0f);
            fill(rh, rf, n, -1.0f, 1.0f);
            fill(wh, wf, dim, 0.5f, 1.5f);

            d_x = (uint16_t *) dup_to_dev(xh, n * 2);
            d_r = (uint16_t *) dup_to_dev(rh, n * 2);
            d_w = (uint16_t *) dup_to_dev(wh, dim * 2);
            d_o = (uint16_t *) dmalloc(n * 2);

            CK(cudaMemset(d_o, 0xff, n * 2));
            rc = slora_rmsnorm(oc, dim, xf, dim, wf, n_rows, dim, 1e-5f, 0,
                               1);
            rc |= slora_rmsnorm_cuda(d_o, dim, d_x, dim, d_w, n_rows, dim,
                                     1e-5f, NULL);
            CK(cudaDeviceSynchronize());
            from_dev_bf(og, d_o, n);
            e1 = rel_err(og, oc, n);
            note("rmsnorm", e1);
            ok(rc == 0 && e1 <= TOL_BF16, "rmsnorm %lldx%lld: %.1e",
               (long long) n_rows, (long long) dim, e1);

            /* the residual add, then again with a LoRA delta on the
             * residual: res becomes bf16(res + d) first, on both sides */
            d_d = NULL;

            for (k = 0; k < 2; k++) {
                if (k == 1) {
                    for (i = 0; i < n; i++) {
                        df[i] = rng_unif(-0.5f, 0.5f);
                        rf[i] = slora_bf16_to_f32(
                                    slora_f32_to_bf16(rf[i] + df[i]));
                    }

                    d_d = (float *) dup_to_dev(df, n * 4);
                }

                CK(cudaMemset(d_o, 0xff, n * 2));
                rc = slora_add_rmsnorm(oc, dim, xf, dim, rf, dim, wf, n_rows,
                                       dim, 1e-5f, 0, 1);
                rc |= slora_add_rmsnorm_cuda(d_o, dim, d_x, dim, d_r, dim, d_d,
                                             dim, d_w, n_rows, dim, 1e-5f,
                                             NULL);
                CK(cudaDeviceSynchronize());
                from_dev_bf(og, d_o, n);
                from_dev_bf(xg, d_x, n);
                e2 = rel_err(og, oc, n);
                e3 = rel_err(xg, xf, n);
                note(k == 0 ? "add_rmsnorm (out)" : "add_rmsnorm + delta (out)",
                     e2);
                note(k == 0 ? "add_rmsnorm (x+res)"
                            : "add_rmsnorm + delta (x+res)", e3);
                ok(rc == 0 && e2 <= TOL_BF16 && e3 <= TOL_BF16,
                   "add_rmsnorm %lldx%lld%s: out %.1e residual %.1e",
                   (long long) n_rows, (long long) dim,
                   k == 0 ? "" : " with the residual's delta", e2, e3);
            }

            ok(slora_add_rmsnorm_cuda(d_o, dim, d_x, dim, d_r, dim, d_d, 2,
                                      d_w, n_rows, dim, 1e-5f, NULL) == -1,
               "add_rmsnorm refuses a delta stride under dim");
            CK(cudaFree(d_d));
            free(df);

            CK(cudaFree(d_x)); CK(cudaFree(d_r)); CK(cudaFree(d_w));
            CK(cudaFree(d_o));
            free(xh); free(rh); free(wh); free(xf); free(rf); free(wf);
            free(oc); free(og); free(xg);
        }
    }
}


/* Qwen3's head norms: each head of each row of a q|k|v-like buffer
 * (row stride wider than the heads), in place; the rest of the row
 * untouched. */
static void
test_head_norm(void)
{
    static const int32_t  cfg[][3] = { { 32, 128, 17 }, { 4, 64, 1 },
                                       { 8, 256, 5 } };

    int32_t    ci, nh, hd, i, untouched;
    int64_t    n_tok, ld, n;
    uint16_t  *xh, *wh, *d_x, *d_w, *back;
    float     *xf, *wf, *xg;
    double     e;
    int        rc;

    for (ci = 0; ci < 3; ci++) {
        nh = cfg[ci][0];
        hd = cfg[ci][1];
        n_tok = cfg[ci][2];
        ld = (int64_t) nh * hd + 3 * hd;            /* k and v beyond */
        n = n_tok * ld;
        xh = (uint16_t *) malloc(n * 2);
        back = (uint16_t *) malloc(n * 2);
        wh = (uint16_t *) malloc(hd * 2);
        xf = (float *) malloc(n * 4);
        xg = (float *) malloc(n * 4);
        wf = (float *) malloc(hd * 4);

        fill(xh, xf, n, -3.0f, 3.0f);
        fill(wh, wf, hd, 0.5f, 1.5f);
        d_x = (uint16_t *) dup_to_dev(xh, n * 2);
        d_w = (uint16_t *) dup_to_dev(wh, hd * 2);

        rc = slora_head_rmsnorm(xf, ld, n_tok, nh, hd, wf, 1e-6f, 0, 1);
        rc |= slora_head_rmsnorm_cuda(d_x, ld, n_tok, nh, hd, d_w, 1e-6f,
                                      NULL);
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(back, d_x, n * 2, cudaMemcpyDeviceToHost));
        from_dev_bf(xg, d_x, n);
        e = rel_err(xg, xf, n);
        untouched = 1;
        for (i = 0; i < n; i++) {
            if (i % ld >= (int64_t) nh * hd) {
                untouched &= back[i] == xh[i];
            }
        }
        note("head_rmsnorm", e);
        ok(rc == 0 && e <= TOL_BF16 && untouched, "head_rmsnorm %lld tokens "
           "x %d heads of %d: %.1e, the row past the heads untouched",
           (long long) n_tok, nh, hd, e);

        CK(cudaFree(d_x)); CK(cudaFree(d_w));
        free(xh); free(back); free(wh); free(xf); free(xg); free(wf);
    }

    d_x = (uint16_t *) dmalloc(2048 * 2);
    ok(slora_head_rmsnorm_cuda(d_x, 1024, 1, 1, 1024, d_x, 1e-6f, NULL)
       == -1, "head_rmsnorm refuses a head over 512");
    CK(cudaFree(d_x));
}


static void
test_act(void)
{
    static const int64_t  rows[] = { 1, 33 };
    static const int64_t  dims[] = { 1536, 14336 };

    int64_t    ri, di, n;
    uint16_t  *gh, *uh, *d_g, *d_u, *d_o;
    float     *gf, *uf, *oc, *og;
    double     e;
    int        rc;

    for (ri = 0; ri < 2; ri++) {
        for (di = 0; di < 2; di++) {
            n = rows[ri] * dims[di];
            gh = (uint16_t *) malloc(n * 2);
            uh = (uint16_t *) malloc(n * 2);
            gf = (float *) malloc(n * 4);
            uf = (float *) malloc(n * 4);
            oc = (float *) malloc(n * 4);
            og = (float *) malloc(n * 4);

            fill(gh, gf, n, -8.0f, 8.0f);
            fill(uh, uf, n, -2.0f, 2.0f);
            d_g = (uint16_t *) dup_to_dev(gh, n * 2);
            d_u = (uint16_t *) dup_to_dev(uh, n * 2);
            d_o = (uint16_t *) dmalloc(n * 2);
            CK(cudaMemset(d_o, 0xff, n * 2));

            rc = slora_silu_mul(oc, dims[di], gf, dims[di], uf, dims[di],
                                rows[ri], dims[di], 0, 1);
            rc |= slora_silu_mul_cuda(d_o, dims[di], d_g, dims[di], d_u,
                                      dims[di], rows[ri], dims[di], NULL);
            CK(cudaDeviceSynchronize());
            from_dev_bf(og, d_o, n);
            e = rel_err(og, oc, n);
            note("silu_mul", e);
            ok(rc == 0 && e <= TOL_BF16, "silu_mul %lldx%lld: %.1e",
               (long long) rows[ri], (long long) dims[di], e);

            CK(cudaFree(d_g)); CK(cudaFree(d_u)); CK(cudaFree(d_o));
            free(gh); free(uh); free(gf); free(uf); free(oc); free(og);
        }
    }
}


static void
test_rope(void)
{
    /* head sizes of 16k take 16-byte steps, 40 the pair-wise path */
    static const int32_t  cfg[][3] = { { 32, 8, 128 }, { 9, 3, 64 },
                                       { 4, 2, 40 } };
    /* 1 and 17 tokens split over 8 blocks each, 200 a block each */
    static const int64_t  toks[] = { 1, 17, 200 };

    int32_t   ci, layout, nh, nkv, hd, *pos, *d_pos, n_pos;
    int64_t   ti, n_tok, nq, nk, t;
    uint16_t *qh, *kh, *d_q, *d_k;
    float    *qf, *kf, *qg, *kg, *table, *d_table, ff[64];
    double    eq, ek;
    int       rc;

    n_pos = 32768;

    for (ci = 0; ci < 3; ci++) {
        for (ti = 0; ti < 3; ti++) {
            for (layout = 0; layout < 2; layout++) {
                nh = cfg[ci][0];
                nkv = cfg[ci][1];
                hd = cfg[ci][2];
                n_tok = toks[ti];
                nq = n_tok * nh * hd;
                nk = n_tok * nkv * hd;
                qh = (uint16_t *) malloc(nq * 2);
                kh = (uint16_t *) malloc(nk * 2);
                qf = (float *) malloc(nq * 4);
                kf = (float *) malloc(nk * 4);
                qg = (float *) malloc(nq * 4);
                kg = (float *) malloc(nk * 4);
                pos = (int32_t *) malloc(n_tok * 4);

                fill(qh, qf, nq, -2.0f, 2.0f);
                fill(kh, kf, nk, -2.0f, 2.0f);

                for (t = 0; t < n_tok; t++) {
                    pos[t] = (int32_t) (rng_next() % 32768);
                }

                d_q = (uint16_t *) dup_to_dev(qh, nq * 2);
                d_k = (uint16_t *) dup_to_dev(kh, nk * 2);
                d_pos = (int32_t *) dup_to_dev(pos, n_tok * 4);

                /* the angles' table, made on the host as the backend
                 * makes it */
                table = (float *) malloc((size_t) n_pos * hd * 4);
                /* layout NORM with Llama 3.1's frequency divisors (an
                 * old context of 1024 so that they vary over these
                 * heads), NEOX without */
                rc = slora_rope_llama3_factors(ff, hd, 10000.0f, 8.0f, 1.0f,
                                               4.0f, 1024.0f);
                rc |= slora_rope_table(table, n_pos, hd, 10000.0f,
                                       layout == 0 ? ff : NULL);
                d_table = (float *) dup_to_dev(table,
                                               (size_t) n_pos * hd * 4);

                rc |= slora_rope(qf, nh * hd, kf, nkv * hd, pos, n_tok, nh,
                                 nkv, hd, 10000.0f, layout == 0 ? ff : NULL,
                                 layout, 0, 1);
                rc |= slora_rope_cuda(d_q, nh * hd, d_k, nkv * hd, d_pos,
                                      n_tok, nh, nkv, hd, d_table, layout,
                                      NULL);
                CK(cudaDeviceSynchronize());
                from_dev_bf(qg, d_q, nq);
                from_dev_bf(kg, d_k, nk);
                eq = rel_err(qg, qf, nq);
                ek = rel_err(kg, kf, nk);
                note("rope", std::max(eq, ek));
                ok(rc == 0 && eq <= TOL_BF16 && ek <= TOL_BF16,
                   "rope %s h%d/%d d%d tok %lld: q %.1e k %.1e",
                   layout ? "neox" : "norm", nh, nkv, hd, (long long) n_tok,
                   eq, ek);

                ok(slora_rope_cuda(d_q, nh * hd, d_k, nkv * hd, d_pos,
                                   n_tok, nh, nkv, hd, NULL, layout, NULL)
                   == -1, "rope without a table is refused");

                CK(cudaFree(d_q)); CK(cudaFree(d_k)); CK(cudaFree(d_pos));
                CK(cudaFree(d_table));
                free(qh); free(kh); free(qf); free(kf); free(qg); free(kg);
                free(pos); free(table);
            }
        }
    }
}


static void
test_embed(void)
{
    int64_t    vocab, dim, n, t, i;
    int32_t   *ids, *d_ids, *d_bad, bad;
    uint16_t  *th, *d_t, *d_o, *oh;
    float     *tf, *of;
    int        rc_c, rc_g, same, zero;

    vocab = 1000;
    dim = 576;
    n = 37;
    th = (uint16_t *) malloc(vocab * dim * 2);
    tf = (float *) malloc(vocab * dim * 4);
    oh = (uint16_t *) malloc(n * dim * 2);
    of = (float *) malloc(n * dim * 4);
    ids = (int32_t *) malloc(n * 4);

    fill(th, tf, vocab * dim, -1.0f, 1.0f);

    for (t = 0; t < n; t++) {
        ids[t] = (int32_t) (rng_next() % vocab);
    }

    d_t = (uint16_t *) dup_to_dev(th, vocab * dim * 2);
    d_ids = (int32_t *) dup_to_dev(ids, n * 4);
    d_o = (uint16_t *) dmalloc(n * dim * 2);
    d_bad = (int32_t *) dmalloc(4);
    CK(cudaMemset(d_o, 0xff, n * dim * 2));
    CK(cudaMemset(d_bad, 0, 4));

    rc_g = slora_embed_cuda(d_o, dim, d_t, vocab, dim, d_ids, n, d_bad, NULL);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(oh, d_o, n * dim * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(&bad, d_bad, 4, cudaMemcpyDeviceToHost));
    same = 1;

    for (t = 0; t < n; t++) {
        same &= memcmp(oh + t * dim, th + (int64_t) ids[t] * dim, dim * 2)
                == 0;
    }

    note("embed", same ? 0.0 : 1.0);
    ok(rc_g == 0 && same && bad == 0, "embed %lld ids: rows bit-exact",
       (long long) n);

    ids[5] = (int32_t) vocab;
    CK(cudaMemcpy(d_ids, ids, n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemset(d_o, 0xff, n * dim * 2));
    rc_c = slora_embed(of, dim, tf, vocab, dim, ids, n);
    rc_g = slora_embed_cuda(d_o, dim, d_t, vocab, dim, d_ids, n, d_bad, NULL);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(oh, d_o, n * dim * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(&bad, d_bad, 4, cudaMemcpyDeviceToHost));
    zero = 1;

    for (i = 0; i < dim; i++) {
        zero &= oh[5 * dim + i] == 0;
    }

    ok(rc_c == -1 && rc_g == 0 && bad == 1 && zero,
       "embed: id == vocab refused (cpu -1, cuda flag %d, row zeroed %d)",
       bad, zero);

    CK(cudaFree(d_t)); CK(cudaFree(d_ids)); CK(cudaFree(d_o));
    CK(cudaFree(d_bad));
    free(th); free(tf); free(of); free(oh); free(ids);
}


/*
 * Decode timings: batch x rank set x mix, hidden 4096 in and out, 32
 * adapters; L2 is flushed before each timed call so the adapter rows
 * come from HBM. The floor counts the distinct adapters' rows, x, y read
 * and written, and v written and read.
 */

static void
bench_lora(void)
{
    static const int32_t  batch[] = { 1, 16, 64, 256 };
    static const int32_t  r16[] = { 16 };
    static const int32_t  mixed[] = { 8, 16, 32, 64 };

    pool_t              p;
    int32_t             rs, b, n, i, s, max_rank, max_len, *indptr, *rank,
                        used[N_ADAPTERS], *d_indptr, *d_rank, seg_len[512],
                        seg_ad[512];
    float               scale[512], *d_scale, *d_v, med, alone;
    const int64_t      *a_d[512], *b_d[512], **d_a_arr, **d_b_arr;
    uint16_t           *d_x, *d_y, *xh;
    float              *xf;
    mix_e               mix;
    slora_lora_segs_t   dsg;
    double              bytes, gbs, flops;
    int                 rc;
    const int32_t      *ranks;

    printf("# LoRA decode (MBGMV shrink + expand), 4096 -> r -> 4096, "
           "%d adapters, median of %d\n", N_ADAPTERS, N_REPS);
    printf("# %-6s %-10s %5s %10s %10s %8s\n", "ranks", "mix", "batch",
           "us", "GB/s", "of copy");

    xh = (uint16_t *) malloc(BENCH_TOK * 4096 * 2);
    xf = (float *) malloc(BENCH_TOK * 4096 * 4);
    fill(xh, xf, BENCH_TOK * 4096, -1.0f, 1.0f);
    d_x = (uint16_t *) dup_to_dev(xh, BENCH_TOK * 4096 * 2);
    d_y = (uint16_t *) dup_to_dev(xh, BENCH_TOK * 4096 * 2);
    d_v = (float *) dmalloc(BENCH_TOK * 64 * 4);
    memset(&dsg, 0, sizeof(dsg));
    indptr = (int32_t *) malloc(513 * 4);
    rank = (int32_t *) malloc(512 * 4);
    d_indptr = (int32_t *) dmalloc(513 * 4);
    d_rank = (int32_t *) dmalloc(512 * 4);
    d_scale = (float *) dmalloc(512 * 4);
    d_a_arr = (const int64_t **) dmalloc(512 * sizeof(void *));
    d_b_arr = (const int64_t **) dmalloc(512 * sizeof(void *));

    for (rs = 0; rs < 2; rs++) {
        ranks = rs == 0 ? r16 : mixed;
        pool_make(&p, 4096, 4096, ranks, rs == 0 ? 1 : 4);

        for (mix = MIX_IDENTICAL; mix < MIX_N; mix = (mix_e) (mix + 1)) {
            for (b = 0; b < 4; b++) {
                n = batch[b];
                indptr[0] = 0;
                max_rank = 0;
                max_len = 1;
                memset(used, 0, sizeof(used));

                for (s = 0; s < n; s++) {
                    i = mix_pick(mix, s);
                    indptr[s + 1] = s + 1;
                    rank[s] = p.rank[i];
                    scale[s] = p.scale[i];
                    a_d[s] = p.d_a_rows[i];
                    b_d[s] = p.d_b_rows[i];
                    used[i] = 1;
                    max_rank = std::max(max_rank, rank[s]);
                }

                CK(cudaMemcpy(d_indptr, indptr, (n + 1) * 4,
                              cudaMemcpyHostToDevice));
                CK(cudaMemcpy(d_rank, rank, n * 4, cudaMemcpyHostToDevice));
                CK(cudaMemcpy(d_scale, scale, n * 4, cudaMemcpyHostToDevice));
                CK(cudaMemcpy(d_a_arr, a_d, n * sizeof(void *),
                              cudaMemcpyHostToDevice));
                CK(cudaMemcpy(d_b_arr, b_d, n * sizeof(void *),
                              cudaMemcpyHostToDevice));

                dsg.n_segs = n;
                dsg.seg_indptr = d_indptr;
                dsg.rank = d_rank;
                dsg.scale = d_scale;
                dsg.a_rows = d_a_arr;
                dsg.b_rows = d_b_arr;

                med = time_apply(&p, &dsg, n, max_rank, max_len, d_x, d_y,
                                 d_v, &rc);

                bytes = (double) n * 4096 * 2 + (double) n * 4096 * 2 * 2
                        + (double) n * max_rank * 4 * 2;

                for (i = 0; i < p.n; i++) {
                    bytes += used[i] ? (double) p.rank[i] * 8192 * 2 : 0.0;
                }

                gbs = bytes / (med * 1e-3) / 1e9;
                printf("# %-6s %-10s %5d %10.2f %10.1f %7.1f%%%s\n",
                       rs == 0 ? "16" : "8..64", mix_name[mix], n,
                       med * 1e3, gbs, 100.0 * gbs / (COPY_TBPS * 1e3),
                       rc ? " LAUNCH FAILED" : "");
            }
        }

        /* prefill, MBGMM: 4 segments of 512 tokens, uniform adapters */
        for (s = 0; s < 4; s++) {
            seg_len[s] = 512;
            seg_ad[s] = mix_pick(MIX_UNIFORM, s);
        }

        med = time_segs(&p, seg_len, seg_ad, 4, d_x, d_y, d_v, &rc);
        flops = 0.0;

        for (s = 0; s < 4; s++) {
            flops += 2.0 * 512 * p.rank[seg_ad[s]] * (4096 + 4096);
        }

        printf("# prefill MBGMM, ranks %s, 4 x 512 tokens: %.2f us, "
               "%.2f TFLOP/s%s\n", rs == 0 ? "16" : "8..64", med * 1e3,
               flops / (med * 1e-3) / 1e12, rc ? " LAUNCH FAILED" : "");

        /* a step of continuous batching: 16 prompts of 256 tokens and
         * 240 decode tokens, a segment each, against the two halves
         * timed apart (decode alone takes the MBGMV kernels) */
        for (s = 0; s < 256; s++) {
            seg_len[s] = s % 16 == 0 ? 256 : 1;
            seg_ad[s] = mix_pick(MIX_DISTINCT, s);
        }

        med = time_segs(&p, seg_len, seg_ad, 256, d_x, d_y, d_v, &rc);

        for (s = 0, n = 0, i = 0; s < 256; s++) {
            if (seg_len[s] == 1) {
                seg_len[n] = 1;
                seg_ad[n++] = seg_ad[s];

            } else {
                seg_ad[256 + i++] = seg_ad[s];
            }
        }

        alone = time_segs(&p, seg_len, seg_ad, n, d_x, d_y, d_v, &rc);

        for (s = 0; s < i; s++) {
            seg_len[s] = 256;
            seg_ad[s] = seg_ad[256 + s];
        }

        alone += time_segs(&p, seg_len, seg_ad, i, d_x, d_y, d_v, &rc);

        printf("# mixed step MBGMM, ranks %s, 16 x 256 + 240 x 1 tokens: "
               "%.2f us, the halves apart %.2f us (%.2fx)%s\n",
               rs == 0 ? "16" : "8..64", med * 1e3, alone * 1e3,
               med / alone, rc ? " LAUNCH FAILED" : "");

        pool_free(&p);
    }

    CK(cudaFree(d_x)); CK(cudaFree(d_y)); CK(cudaFree(d_v));
    CK(cudaFree(d_indptr)); CK(cudaFree(d_rank)); CK(cudaFree(d_scale));
    CK(cudaFree((void *) d_a_arr)); CK(cudaFree((void *) d_b_arr));
    free(xh); free(xf); free(indptr); free(rank);
}


/*
 * time_apply() over segments of seg_len[s] tokens with adapter
 * seg_ad[s], laid out on the device here; rc gathers launch failures.
 */

static float
time_segs(const pool_t *p, const int32_t *seg_len, const int32_t *seg_ad,
    int32_t n_segs, const uint16_t *d_x, uint16_t *d_y, float *d_v, int *rc)
{
    int32_t             indptr[513], tiles[513], rank[512], s, max_rank,
                        max_len, *d_indptr, *d_tiles, *d_rank;
    float               scale[512], *d_scale, med;
    const int64_t      *a_d[512], *b_d[512], **d_a_arr, **d_b_arr;
    slora_lora_segs_t   dsg;
    int                 rc_t;

    indptr[0] = 0;
    max_rank = 0;
    max_len = 0;

    for (s = 0; s < n_segs; s++) {
        indptr[s + 1] = indptr[s] + seg_len[s];
        rank[s] = p->rank[seg_ad[s]];
        scale[s] = p->scale[seg_ad[s]];
        a_d[s] = p->d_a_rows[seg_ad[s]];
        b_d[s] = p->d_b_rows[seg_ad[s]];
        max_rank = std::max(max_rank, rank[s]);
        max_len = std::max(max_len, seg_len[s]);
    }

    if (indptr[n_segs] > BENCH_TOK) {
        BAIL_OUT("a timed call of %d tokens", indptr[n_segs]);
    }

    dsg.n_segs = n_segs;
    slora_lora_tiles_cuda(indptr, n_segs, tiles, &dsg);
    dsg.seg_indptr = d_indptr = (int32_t *) dup_to_dev(indptr,
                                                       (n_segs + 1) * 4);
    dsg.tile_indptr = d_tiles = (int32_t *) dup_to_dev(tiles,
                                                       (n_segs + 1) * 4);
    dsg.rank = d_rank = (int32_t *) dup_to_dev(rank, n_segs * 4);
    dsg.scale = d_scale = (float *) dup_to_dev(scale, n_segs * 4);
    dsg.a_rows = d_a_arr = (const int64_t **) dup_to_dev(a_d,
                                                n_segs * sizeof(void *));
    dsg.b_rows = d_b_arr = (const int64_t **) dup_to_dev(b_d,
                                                n_segs * sizeof(void *));

    med = time_apply(p, &dsg, indptr[n_segs], max_rank, max_len, d_x, d_y,
                     d_v, &rc_t);
    *rc |= rc_t;

    CK(cudaFree(d_indptr)); CK(cudaFree(d_tiles)); CK(cudaFree(d_rank));
    CK(cudaFree(d_scale)); CK(cudaFree((void *) d_a_arr));
    CK(cudaFree((void *) d_b_arr));

    return med;
}


/*
 * Median time of one y += LoRA(x) over N_REPS calls after a warm-up,
 * each on the next copy of the arena and after a 256 MB read that
 * leaves none of it in L2 (outside the timed events), as in a real step
 * where the base weights pass through L2 between two LoRA calls. A
 * read, not a memset: dirty lines would be written back inside the
 * timed call.
 */

static float
time_apply(const pool_t *p, const slora_lora_segs_t *dsg, int64_t n_tok,
    int32_t max_rank, int32_t max_len, const uint16_t *d_x, uint16_t *d_y,
    float *d_v, int *rc)
{
    static void     *flush;
    static float    *d_work;
    static int32_t   out_dim = 4096;
    int64_t          n_work;
    cudaEvent_t      ev[2 * N_REPS];
    float            ms[N_REPS];
    int              rep, k;
    const uint16_t  *base;

    *rc = 0;

    n_work = (int64_t) SLORA_LORA_SPLIT_MAX * BENCH_TOK * 128;

    if (flush == NULL) {
        flush = dmalloc(FLUSH_BYTES + 16);
        CK(cudaMemset(flush, 0x5a, FLUSH_BYTES + 16));
        d_work = (float *) dmalloc(n_work * 4);
    }

    for (rep = 0; rep < 2 * N_REPS; rep++) {
        CK(cudaEventCreate(&ev[rep]));
    }

    for (rep = 0; rep < 5 + N_REPS; rep++) {
        k = rep - 5;
        flush_l2<<<1024, 256>>>((const uint4 *) flush, FLUSH_BYTES / 16,
                                (unsigned *) ((char *) flush + FLUSH_BYTES));
        CK(cudaGetLastError());

        if (k >= 0) {
            CK(cudaEventRecord(ev[2 * k], NULL));
        }

        base = p->d + (size_t) (rep % N_SETS) * p->elems;
        *rc |= slora_lora_shrink_cuda(d_v, max_rank, 0, d_work, n_work, d_x,
                                      4096, base, 4096, dsg, 1, n_tok,
                                      max_rank, max_len, NULL);
        *rc |= slora_lora_expand_cuda(&d_y, 4096, &out_dim, d_v, max_rank,
                                      0, base, dsg, 1, max_rank, max_len,
                                      NULL);

        if (k >= 0) {
            CK(cudaEventRecord(ev[2 * k + 1], NULL));
        }
    }

    CK(cudaDeviceSynchronize());
    CK(cudaGetLastError());

    for (rep = 0; rep < N_REPS; rep++) {
        CK(cudaEventElapsedTime(&ms[rep], ev[2 * rep], ev[2 * rep + 1]));
    }

    for (rep = 0; rep < 2 * N_REPS; rep++) {
        CK(cudaEventDestroy(ev[rep]));
    }

    std::sort(ms, ms + N_REPS);

    return ms[N_REPS / 2];
}


static void
pool_make(pool_t *p, int32_t in_dim, int32_t out_dim, const int32_t *ranks,
    int32_t n_ranks)
{
    int32_t    a, j, w, n_slots, *perm, used, k;
    uint16_t  *h;

    memset(p, 0, sizeof(*p));
    p->in_dim = in_dim;
    p->out_dim = out_dim;
    p->n = N_ADAPTERS;
    w = std::max(in_dim, out_dim);
    n_slots = 0;

    for (a = 0; a < p->n; a++) {
        p->rank[a] = ranks[a % n_ranks];
        p->scale[a] = (float) (2.0 / sqrt((double) in_dim * p->rank[a]));
        n_slots += 2 * p->rank[a];
    }

    n_slots += 7;
    perm = (int32_t *) malloc(n_slots * 4);

    for (j = 0; j < n_slots; j++) {
        perm[j] = j;
    }

    for (j = n_slots - 1; j > 0; j--) {
        std::swap(perm[j], perm[rng_next() % (j + 1)]);
    }

    p->elems = (size_t) n_slots * w;
    p->f = (float *) malloc(p->elems * 4);
    h = (uint16_t *) malloc(p->elems * 2);
    fill(h, p->f, p->elems, -1.0f, 1.0f);

    used = 0;

    for (a = 0; a < p->n; a++) {
        p->a_rows[a] = (int64_t *) malloc(p->rank[a] * 8);
        p->b_rows[a] = (int64_t *) malloc(p->rank[a] * 8);

        for (j = 0; j < p->rank[a]; j++) {
            p->a_rows[a][j] = (int64_t) perm[used++] * w;
            p->b_rows[a][j] = (int64_t) perm[used++] * w;
        }

        p->d_a_rows[a] = (int64_t *) dup_to_dev(p->a_rows[a],
                                                p->rank[a] * 8);
        p->d_b_rows[a] = (int64_t *) dup_to_dev(p->b_rows[a],
                                                p->rank[a] * 8);
    }

    p->d = (uint16_t *) dmalloc(p->elems * 2 * N_SETS);

    for (k = 0; k < N_SETS; k++) {
        CK(cudaMemcpy(p->d + (size_t) k * p->elems, h, p->elems * 2,
                      cudaMemcpyHostToDevice));
    }

    free(h);
    free(perm);
}


static void
pool_free(pool_t *p)
{
    int32_t  a;

    for (a = 0; a < p->n; a++) {
        free(p->a_rows[a]);
        free(p->b_rows[a]);
        CK(cudaFree(p->d_a_rows[a]));
        CK(cudaFree(p->d_b_rows[a]));
    }

    CK(cudaFree(p->d));
    free(p->f);
}


/*
 * Adapter of token i under a mix: identical (all one), distinct (i mod
 * 32: every adapter in turn), uniform, Zipf with alpha 1.5 (Punica's
 * skewed mix), and skewed90 (a hot adapter takes 90%, the rest uniform).
 */

static int32_t
mix_pick(mix_e mix, int32_t i)
{
    double   u, z, acc;
    int32_t  k;

    switch (mix) {

    case MIX_IDENTICAL:
        return 0;

    case MIX_DISTINCT:
        return i % N_ADAPTERS;

    case MIX_UNIFORM:
        return (int32_t) (rng_next() % N_ADAPTERS);

    case MIX_ZIPF:
        z = 0.0;

        for (k = 1; k <= N_ADAPTERS; k++) {
            z += pow(k, -1.5);
        }

        u = rng_unif(0.0f, 1.0f) * z;
        acc = 0.0;

        for (k = 1; k <= N_ADAPTERS; k++) {
            acc += pow(k, -1.5);
            if (u <= acc) {
                return k - 1;
            }
        }

        return N_ADAPTERS - 1;

    default:
        return rng_unif(0.0f, 1.0f) < 0.9f
               ? 0 : (int32_t) (rng_next() % N_ADAPTERS);
    }
}


/* Reads n 16-byte words; the never-true store keeps the loads alive. */

static __global__ void
flush_l2(const uint4 *p, size_t n, unsigned *sink)
{
    size_t    i;
    uint4     u;
    unsigned  acc;

    acc = 0;

    for (i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t) gridDim.x * blockDim.x)
    {
        u = p[i];
        acc ^= u.x ^ u.y ^ u.z ^ u.w;
    }

    if (acc == 0x12345678u) {
        *sink = acc;
    }
}


