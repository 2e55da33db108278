/*
 * test_gemv_cuda.cu: the thin projections on the GPU (kernels/
 * slora_gemv.cu, and slora_gemv_mma.cu on tensor cores for 1 to 64
 * rows, and its fused form for the MLP's gate, up and SiLU-and-mul)
 * against their CPU twins, then the CUDA-core kernel's read rate on
 * the Llama-7B shape's projections for every launch shape. Speaks TAP;
 * the timings are '#' lines.
 *
 * The one idea: both sides see the same bf16 values, the device output
 * is poisoned with NaN before each launch, and the error is ||gpu -
 * cpu|| / ||cpu||: fp32 sums alone (1e-4) or a final bf16 rounding
 * (1e-2), as in test_kernels_cuda.
 *
 *   test_gemv_cuda [--no-bench]
 */

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <algorithm>
#include <cuda_runtime.h>

extern "C" {
#include "slora_gemv.h"
#include "slora_act.h"
}

#include "tap.h"
#include "cuda_test.h"


#define TOL_F32   1e-4
#define TOL_BF16  1e-2


static double gemv_case(int32_t n, int32_t out, int32_t in, int f32,
    int with_bias, int32_t tr, int *rc);

static void test_gemv(void);
static void test_gemv_mma(void);
static void test_gemv_glu(void);
static void bench_gemv(void);
static void bench_gemv_mma(void);


int
main(int argc, char **argv)
{
    cuda_test_devices();

    test_gemv();
    test_gemv_mma();
    test_gemv_glu();

    if (!(argc > 1 && strcmp(argv[1], "--no-bench") == 0)) {
        bench_gemv();
        bench_gemv_mma();
    }

    return done_testing();
}


/*
 * One case against the CPU twin: n token rows, strided x and y, bf16 or
 * fp32 output, with or without a bias, through the CUDA-core kernel
 * (tr < 0) or the tensor-core one (tr: the W rows a block, 0 for its
 * own choice). The launch's return code goes to *rc; the error is the
 * relative norm over the out columns of each row (the only ones
 * written).
 */

static double
gemv_case(int32_t n, int32_t out, int32_t in, int f32, int with_bias,
    int32_t tr, int *rc)
{
    int64_t    ld_x, ld_y, t, o;
    uint16_t  *xh, *wh, *bh, *d_x, *d_w, *d_b;
    float     *xf, *wf, *bf, *yc, *yg;
    void      *d_y;
    double     e;

    ld_x = in + 8 * (n % 2);
    ld_y = out + 3;

    xh = (uint16_t *) malloc(n * ld_x * 2);
    xf = (float *) malloc(n * ld_x * 4);
    wh = (uint16_t *) malloc((size_t) out * in * 2);
    wf = (float *) malloc((size_t) out * in * 4);
    bh = (uint16_t *) malloc(out * 2);
    bf = (float *) malloc(out * 4);
    yc = (float *) malloc(n * ld_y * 4);
    yg = (float *) malloc(n * ld_y * 4);

    fill(xh, xf, n * ld_x, -1.0f, 1.0f);
    fill(wh, wf, (size_t) out * in, -0.1f, 0.1f);
    fill(bh, bf, out, -1.0f, 1.0f);

    d_x = (uint16_t *) dup_to_dev(xh, n * ld_x * 2);
    d_w = (uint16_t *) dup_to_dev(wh, (size_t) out * in * 2);
    d_b = (uint16_t *) dup_to_dev(bh, out * 2);
    CK(cudaMalloc(&d_y, n * ld_y * 4));
    CK(cudaMemset(d_y, 0xff, n * ld_y * 4));

    slora_gemv(yc, ld_y, xf, ld_x, wf, with_bias ? bf : NULL, n, out, in);
    *rc = tr < 0
          ? slora_gemv_cuda(d_y, ld_y, f32, d_x, ld_x, d_w,
                            with_bias ? d_b : NULL, n, out, in, NULL)
          : slora_gemv_mma_cuda(d_y, ld_y, f32, d_x, ld_x, d_w,
                                with_bias ? d_b : NULL, n, out, in, tr,
                                n % 3 - 1, NULL);     /* let in at the
                                                         exit, after the
                                                         products, a stage
                                                         before the end */
    CK(cudaDeviceSynchronize());

    if (f32) {
        CK(cudaMemcpy(yg, d_y, n * ld_y * 4, cudaMemcpyDeviceToHost));

    } else {
        from_dev_bf(yg, (uint16_t *) d_y, n * ld_y);
    }

    for (t = 0; t < n; t++) {
        for (o = 0; o < out; o++) {
            yc[t * out + o] = yc[t * ld_y + o];
            yg[t * out + o] = yg[t * ld_y + o];
        }
    }

    e = rel_err(yg, yc, (size_t) n * out);

    CK(cudaFree(d_x)); CK(cudaFree(d_w)); CK(cudaFree(d_b));
    CK(cudaFree(d_y));
    free(xh); free(xf); free(wh); free(wf); free(bh); free(bf);
    free(yc); free(yg);

    return e;
}


/*
 * The thin projections: n = 1 .. 4 token rows, strided x and y, bf16 and
 * fp32 outputs, with and without a bias, widths of 4096 (16 loads a
 * lane, the unrolled path only), 11008 (with a tail) and 40 (the tail
 * alone), and a row count not a multiple of the block's 8.
 */

static void
test_gemv(void)
{
    static const int32_t  shapes[][2] = { { 4096, 4096 }, { 300, 11008 },
                                          { 37, 40 } };

    int32_t    si, n, out, in, f32, with_bias;
    double     e, worst;
    int        rc;

    worst = 0.0;

    for (si = 0; si < 3; si++) {
        for (n = 1; n <= SLORA_GEMV_MAX_N; n++) {
            f32 = (n + si) % 2;
            with_bias = n % 2 == 0;
            out = shapes[si][0];
            in = shapes[si][1];

            e = gemv_case(n, out, in, f32, with_bias, -1, &rc);
            worst = e > worst ? e : worst;
            ok(rc == 0 && e <= (f32 ? TOL_F32 : TOL_BF16),
               "gemv n %d %d -> %d%s%s: %.1e", n, in, out,
               f32 ? " f32" : " bf16", with_bias ? " bias" : "", e);
        }
    }

    ok(slora_gemv_cuda(NULL, 8, 0, NULL, 8, NULL, NULL, 1, 8, 8, NULL) == -1
       && slora_gemv_cuda((void *) 16, 8, 0, (const uint16_t *) 16, 8,
                          (const uint16_t *) 16, NULL, SLORA_GEMV_MAX_N + 1,
                          8, 8, NULL) == -1
       && slora_gemv_cuda((void *) 16, 8, 0, (const uint16_t *) 16, 12,
                          (const uint16_t *) 16, NULL, 1, 8, 12, NULL) == -1,
       "gemv refuses no output, too many rows and a width not of 8");
    printf("# gemv: worst ||gpu - cpu|| / ||cpu|| %.3e\n", worst);
}


/*
 * The tensor-core projections: n from 1 to 64 (x's rows one, part of
 * wgmma's 64 and all of them), W rows a block from 8 to 256 (every
 * width of wgmma's N that the kernel is built for, full and part full:
 * 24 of 32, 40 of 48, 56 of 64, 120 of 128, 168 of 192) and its own
 * choice, shapes whose out ends inside a block (960, 200), a K of one
 * stage (64) and one that ends inside a stage (328: TMA's zeros past the
 * edge), then the 7B's o and down (cut to 256 rows) at a few of them;
 * strided x and y, both outputs, with and without bias.
 */

static void
test_gemv_mma(void)
{
    static const int32_t  small[][2] = { { 960, 576 }, { 128, 64 },
                                         { 200, 328 } };
    static const int32_t  large[][2] = { { 4096, 4096 }, { 256, 11008 } };
    static const int32_t  ns[] = { 1, 4, 5, 8, 9, 16, 33, 64 };
    static const int32_t  trs[] = { 0, 8, 24, 40, 56, 96, 120, 168, 256 };
    static const int32_t  large_ns[] = { 1, 16, 64 };
    static const int32_t  large_trs[] = { 0, 32, 96 };

    int32_t   si, ni, ti, n, out, in, tr, f32, with_bias, k;
    double    e, worst;
    int       rc, sms;

    worst = 0.0;
    k = 0;

    for (si = 0; si < 5; si++) {
        for (ni = 0; ni < (si < 3 ? 8 : 3); ni++) {
            for (ti = 0; ti < (si < 3 ? 9 : 3); ti++) {
                out = si < 3 ? small[si][0] : large[si - 3][0];
                in = si < 3 ? small[si][1] : large[si - 3][1];
                n = si < 3 ? ns[ni] : large_ns[ni];
                tr = si < 3 ? trs[ti] : large_trs[ti];

                k++;
                f32 = k % 2;
                with_bias = k % 3 == 0;

                e = gemv_case(n, out, in, f32, with_bias, tr, &rc);
                worst = e > worst ? e : worst;
                ok(rc == 0 && e <= (f32 ? TOL_F32 : TOL_BF16),
                   "gemv mma n %d %d -> %d, %d rows a block%s%s: %.1e", n,
                   in, out, tr, f32 ? " f32" : " bf16",
                   with_bias ? " bias" : "", e);
            }
        }
    }

    sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    tr = slora_gemv_mma_rows(4096, 100);
    ok(tr > 8 && tr % 8 == 0 && (4096 + tr - 1) / tr <= sms
       && (4096 + tr - 9) / (tr - 8) > sms,
       "gemv mma: 4096 rows make %d rows a block over %d SMs", tr, sms);
    tr = slora_gemv_mma_rows(4096, 80);
    ok(tr > 8 && tr % 8 == 0 && (4096 + tr - 1) / tr <= sms * 80 / 100
       && (4096 + tr - 9) / (tr - 8) > sms * 80 / 100,
       "gemv mma: 4096 rows over 80%% of the SMs make %d rows a block", tr);
    ok(slora_gemv_mma_rows(1 << 20, 100) == SLORA_GEMV_MMA_MAX_ROWS
       && slora_gemv_mma_rows(1, 100) == 8
       && slora_gemv_mma_rows(4096, 0) == slora_gemv_mma_rows(4096, 1)
       && slora_gemv_mma_rows(4096, 200) == slora_gemv_mma_rows(4096, 100),
       "gemv mma: rows a block within 8 .. %d, shares within 1 .. 100",
       SLORA_GEMV_MMA_MAX_ROWS);

    ok(slora_gemv_mma_cuda((void *) 16, 4096, 0, (const uint16_t *) 16,
                           4096, (const uint16_t *) 16, NULL, 65, 4096, 4096,
                           0, -1, NULL) == -1
       && slora_gemv_mma_cuda((void *) 16, 4096, 0, (const uint16_t *) 16,
                              4096, (const uint16_t *) 16, NULL, 8, 4096,
                              4092, 0, -1, NULL) == -1
       && slora_gemv_mma_cuda((void *) 16, 4096, 0, (const uint16_t *) 16,
                              4096, (const uint16_t *) 16, NULL, 8, 4096,
                              4096, 12, -1, NULL) == -1
       && slora_gemv_mma_cuda((void *) 16, 4096, 0, (const uint16_t *) 16,
                              4096, (const uint16_t *) 16, NULL, 8, 4096,
                              4096, SLORA_GEMV_MMA_MAX_ROWS + 8, -1, NULL)
          == -1
       && slora_gemv_mma_cuda((void *) 16, 4096, 0, (const uint16_t *) 24,
                              4096, (const uint16_t *) 16, NULL, 8, 4096,
                              4096, 0, -1, NULL) == -1,
       "gemv mma refuses 65 rows, in not of 8, rows a block not of 8 or "
       "too many, x not 16-byte aligned");
    printf("# gemv mma: worst ||gpu - cpu|| / ||cpu|| %.3e\n", worst);
}


/*
 * The fused gate, up and SiLU-and-mul (slora_gemv_mma_glu_cuda), one
 * case: its bits against the tensor-core GEMM of both at twice its rows
 * a block (the same sums, in the same order) followed by
 * slora_silu_mul_cuda, as the engine ran them before; its values
 * against the CPU twins (the GEMV, bf16 rounding, SiLU-and-mul); and
 * y's columns past ffn left as they were. *bits: whether the bits agree;
 * the return: the relative error against the CPU.
 */

static double
glu_case(int32_t n, int32_t ffn, int32_t in, int32_t tr, int *rc, int *bits,
    int *kept)
{
    int64_t    ld_x, ld_y, t, o, e;
    int32_t    te;
    uint16_t  *xh, *wh, *d_x, *d_w, *d_f, *d_u, *fh, *uh;
    float     *xf, *wf, *yc, *sc, *yg;
    double     err;

    ld_x = in + 8 * (n % 2);
    ld_y = 2 * (int64_t) ffn;
    e = n * ld_y;

    xh = (uint16_t *) malloc(n * ld_x * 2);
    xf = (float *) malloc(n * ld_x * 4);
    wh = (uint16_t *) malloc((size_t) ld_y * in * 2);
    wf = (float *) malloc((size_t) ld_y * in * 4);
    yc = (float *) malloc(e * 4);
    sc = (float *) malloc(n * ffn * 4);
    yg = (float *) malloc(n * ffn * 4);
    fh = (uint16_t *) malloc(e * 2);
    uh = (uint16_t *) malloc(e * 2);

    fill(xh, xf, n * ld_x, -1.0f, 1.0f);
    fill(wh, wf, (size_t) ld_y * in, -0.1f, 0.1f);

    d_x = (uint16_t *) dup_to_dev(xh, n * ld_x * 2);
    d_w = (uint16_t *) dup_to_dev(wh, (size_t) ld_y * in * 2);
    d_f = (uint16_t *) dmalloc(e * 2);
    d_u = (uint16_t *) dmalloc(e * 2);
    CK(cudaMemset(d_f, 0xff, e * 2));
    CK(cudaMemset(d_u, 0xff, e * 2));

    te = tr > 0 ? tr : slora_gemv_mma_rows(ffn, 100);
    *rc = slora_gemv_mma_glu_cuda(d_f, ld_y, d_x, ld_x, d_w, n, ffn, in, tr,
                                  NULL)
          | slora_gemv_mma_cuda(d_u, ld_y, 0, d_x, ld_x, d_w, NULL, n,
                                2 * ffn, in, 2 * te, -1, NULL)
          | slora_silu_mul_cuda(d_u, ld_y, d_u, ld_y, d_u + ffn, ld_y, n, ffn,
                                NULL);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(fh, d_f, e * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(uh, d_u, e * 2, cudaMemcpyDeviceToHost));

    /* the CPU: both products, each rounded to bf16 as the GEMM writes
     * it, then the activation, rounded */
    slora_gemv(yc, ld_y, xf, ld_x, wf, NULL, n, 2 * ffn, in);

    for (o = 0; o < e; o++) {
        yc[o] = slora_bf16_to_f32(slora_f32_to_bf16(yc[o]));
    }

    slora_silu_mul(sc, ffn, yc, ld_y, yc + ffn, ld_y, n, ffn, 0, 1);

    *bits = 1;
    *kept = 1;

    for (t = 0; t < n; t++) {
        for (o = 0; o < ffn; o++) {
            *bits &= fh[t * ld_y + o] == uh[t * ld_y + o];
            *kept &= fh[t * ld_y + ffn + o] == 0xffff;
            sc[t * ffn + o] = slora_bf16_to_f32(slora_f32_to_bf16(
                                                    sc[t * ffn + o]));
            yg[t * ffn + o] = slora_bf16_to_f32(fh[t * ld_y + o]);
        }
    }

    err = rel_err(yg, sc, (size_t) n * ffn);

    CK(cudaFree(d_x)); CK(cudaFree(d_w)); CK(cudaFree(d_f));
    CK(cudaFree(d_u));
    free(xh); free(xf); free(wh); free(wf); free(yc); free(sc); free(yg);
    free(fh); free(uh);

    return err;
}


/*
 * The fused gate, up and SiLU-and-mul: n from 1 to 64, gate's rows a
 * block from 8 to 128 (every wgmma N it runs, at 16 to 256) and its own
 * choice, an MLP whose width ends inside a block (200) with a K that
 * ends inside a stage (328), SmolLM2's (1536 over 576) and the 7B's cut
 * to 1376 rows; then what it refuses.
 */

static void
test_gemv_glu(void)
{
    static const int32_t  shapes[][2] = { { 200, 328 }, { 1536, 576 },
                                          { 1376, 4096 } };
    static const int32_t  ns[] = { 1, 5, 16, 33, 64 };
    static const int32_t  trs[] = { 0, 8, 24, 48, 88, 128 };

    int32_t   si, ni, ti;
    double    e, worst;
    int       rc, bits, kept;

    worst = 0.0;

    for (si = 0; si < 3; si++) {
        for (ni = 0; ni < 5; ni++) {
            for (ti = 0; ti < 6; ti++) {
                if (si == 2 && ti % 2 == 1) {
                    continue;
                }

                e = glu_case(ns[ni], shapes[si][0], shapes[si][1], trs[ti],
                             &rc, &bits, &kept);
                worst = e > worst ? e : worst;
                ok(rc == 0 && bits && kept && e <= TOL_BF16,
                   "gemv glu n %d %d -> 2 x %d, %d rows a block: %s, %s, "
                   "%.1e", ns[ni], shapes[si][1], shapes[si][0], trs[ti],
                   bits ? "bits of GEMM then SiLU" : "BITS DIFFER",
                   kept ? "up's half untouched" : "UP'S HALF WRITTEN", e);
            }
        }
    }

    ok(slora_gemv_mma_glu_cuda((uint16_t *) 16, 4096, (const uint16_t *) 16,
                               4096, (const uint16_t *) 16, 65, 2048, 4096, 0,
                               NULL) == -1
       && slora_gemv_mma_glu_cuda((uint16_t *) 16, 4096,
                                  (const uint16_t *) 16, 4096,
                                  (const uint16_t *) 16, 8, 2048, 4096, 12,
                                  NULL) == -1
       && slora_gemv_mma_glu_cuda((uint16_t *) 16, 4096,
                                  (const uint16_t *) 16, 4096,
                                  (const uint16_t *) 16, 8, 2048, 4096,
                                  SLORA_GEMV_MMA_MAX_ROWS / 2 + 8, NULL) == -1
       && slora_gemv_mma_glu_cuda((uint16_t *) 16, 1024,
                                  (const uint16_t *) 16, 4096,
                                  (const uint16_t *) 16, 8, 2048, 4096, 0,
                                  NULL) == -1,
       "gemv glu refuses 65 rows, rows a block not of 8 or over %d, y's "
       "rows shorter than the MLP", SLORA_GEMV_MMA_MAX_ROWS / 2);
    printf("# gemv glu: worst ||gpu - cpu|| / ||cpu|| %.3e\n", worst);
}


/*
 * The timings' common parts: copies of a W of wbytes that together
 * outgrow L2 (so that every call reads W from memory, as a decode step's
 * do; returns how many), and the median over 5 runs of one call's time
 * in ms, each run 20 calls back to back (as a decode step's graph
 * launches them: a call's launch hides behind the one before); call(r)
 * makes the r-th.
 */

static int32_t
bench_w_copies(uint16_t **d_w, size_t wbytes)
{
    int32_t  copies, r;

    copies = (int32_t) std::min<size_t>(8, (size_t) (200u << 20) / wbytes
                                           + 1);

    for (r = 0; r < copies; r++) {
        CK(cudaMalloc(&d_w[r], wbytes));
        CK(cudaMemset(d_w[r], 0, wbytes));
    }

    return copies;
}


template <typename F>
static float
bench_median(F call)
{
    cudaEvent_t  ev0, ev1;
    float        ms[5];
    int32_t      rep, r;

    CK(cudaEventCreate(&ev0));
    CK(cudaEventCreate(&ev1));

    for (rep = 0; rep < 5; rep++) {
        CK(cudaEventRecord(ev0));

        for (r = 0; r < 20; r++) {
            call(r);
        }

        CK(cudaEventRecord(ev1));
        CK(cudaEventSynchronize(ev1));
        CK(cudaEventElapsedTime(&ms[rep], ev0, ev1));
        ms[rep] /= 20;
    }

    CK(cudaEventDestroy(ev0));
    CK(cudaEventDestroy(ev1));
    std::sort(ms, ms + 5);

    return ms[2];
}


/*
 * The thin projections' read rate, W's bytes over the time of a call in
 * a run of 20 back to back (as a decode step's graph launches them: a
 * call's launch hides behind the one before; the median of 5 runs), for
 * the 7B shape's four projections at n = 1 and 4, and for
 * each launch shape (loads in flight a lane; a block per 8 rows, or a
 * grid of 4 or 8 blocks an SM whose warps take rows a grid apart). The
 * calls rotate over copies of W that together outgrow L2, so every call
 * reads from memory, as a decode step's do.
 */

static void
bench_gemv(void)
{
    static const int32_t  shapes[][2] = { { 12288, 4096 }, { 4096, 4096 },
                                          { 22016, 4096 },
                                          { 4096, 11008 } };
    static const char    *names[] = { "q,k,v", "o", "gate,up", "down" };
    static const int32_t  unrolls[] = { 4, 8, 16 };

    cudaDeviceProp  prop;
    uint16_t       *d_x, *d_y, *d_w[8];
    float           med;
    int32_t         si, n, ui, gi, r, out, in, copies, grids[3];
    size_t          wbytes;

    CK(cudaGetDeviceProperties(&prop, 0));
    grids[0] = 0;
    grids[1] = 4 * prop.multiProcessorCount;
    grids[2] = 8 * prop.multiProcessorCount;
    CK(cudaMalloc(&d_x, (size_t) SLORA_GEMV_MAX_N * 11008 * 2));
    CK(cudaMemset(d_x, 0, (size_t) SLORA_GEMV_MAX_N * 11008 * 2));
    CK(cudaMalloc(&d_y, (size_t) SLORA_GEMV_MAX_N * 22016 * 4));
    printf("# gemv: TB/s of W read (20 calls back to back, median of 5 "
           "runs), by loads in flight a lane and grid\n");
    printf("# %-8s %2s %12s %12s %12s %12s %12s %12s %12s %12s %12s\n",
           "proj", "n", "u4", "u4 4/SM", "u4 8/SM", "u8", "u8 4/SM",
           "u8 8/SM", "u16", "u16 4/SM", "u16 8/SM");

    for (si = 0; si < 4; si++) {
        out = shapes[si][0];
        in = shapes[si][1];
        wbytes = (size_t) out * in * 2;
        copies = bench_w_copies(d_w, wbytes);

        for (n = 1; n <= SLORA_GEMV_MAX_N; n += 3) {
            printf("# %-8s %2d", names[si], n);

            for (ui = 0; ui < 3; ui++) {
                for (gi = 0; gi < 3; gi++) {
                    med = bench_median([&](int32_t k) {
                        slora_gemv_cuda_shape(d_y, out, 0, d_x, in,
                                              d_w[k % copies], NULL, n,
                                              out, in, unrolls[ui],
                                              grids[gi], NULL);
                    });
                    printf(" %5.1fus %4.2f", med * 1e3,
                           (double) wbytes / (med * 1e-3) / 1e12);
                }
            }

            printf("\n");
        }

        for (r = 0; r < copies; r++) {
            CK(cudaFree(d_w[r]));
        }
    }

    CK(cudaFree(d_x));
    CK(cudaFree(d_y));
}


/*
 * The tensor-core kernel's time a call by W rows a block (0: its own
 * choice, one block an SM), at 1 to 64 rows, over copies of W that
 * outgrow L2: 20 calls back to back, the median of 5 runs.
 */

static void
bench_gemv_mma(void)
{
    static const int32_t  shapes[][2] = { { 12288, 4096 }, { 4096, 4096 },
                                          { 22016, 4096 },
                                          { 4096, 11008 } };
    static const char    *names[] = { "q,k,v", "o", "gate,up", "down" };
    static const int32_t  ns[] = { 1, 4, 8, 16, 32, 64 };
    static const int32_t  grids[] = { 0, 64, 128, 256 };

    uint16_t       *d_x, *d_y, *d_w[8];
    float           med;
    int32_t         si, ni, pi, r, out, in, copies;
    size_t          wbytes;
    int             rc;

    CK(cudaMalloc(&d_x, (size_t) 64 * 11008 * 2));
    CK(cudaMemset(d_x, 0, (size_t) 64 * 11008 * 2));
    CK(cudaMalloc(&d_y, (size_t) 64 * 22016 * 4));
    printf("# gemv mma: us a call (TB/s of W) by W rows a block "
           "(r0: its own choice)\n");

    for (si = 0; si < 4; si++) {
        out = shapes[si][0];
        in = shapes[si][1];
        wbytes = (size_t) out * in * 2;
        copies = bench_w_copies(d_w, wbytes);

        for (ni = 0; ni < 6; ni++) {
            printf("# %-8s %2d", names[si], ns[ni]);

            for (pi = 0; pi < 4; pi++) {
                rc = 0;
                med = bench_median([&](int32_t k) {
                    rc |= slora_gemv_mma_cuda(d_y, out, 0, d_x, in,
                                              d_w[k % copies], NULL,
                                              ns[ni], out, in, grids[pi],
                                              -1, NULL);
                });
                printf("  r%d %6.1fus %4.2f%s", grids[pi], med * 1e3,
                       (double) wbytes / (med * 1e-3) / 1e12,
                       rc ? "!" : "");
            }

            printf("\n");
        }

        for (r = 0; r < copies; r++) {
            CK(cudaFree(d_w[r]));
        }
    }

    CK(cudaFree(d_x));
    CK(cudaFree(d_y));
}
