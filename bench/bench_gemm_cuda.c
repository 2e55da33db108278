/*
 * bench_gemm_cuda.c: times the CUDA backend's base projections
 * (engine/slora_cuda_gemm.c: the GEMV kernels for few rows, cuBLASLt
 * with the heuristic's first answer above; $SLORA_CUDA_MMA and
 * $SLORA_CUDA_THIN=0 move the line between them) at the Llama-7B
 * shape's four projections, for the row counts of decode steps (1 to
 * 256) and of prefill chunks (up to 4096), and prints each as time, TB/s
 * of operands moved and TFLOP/s, beside the two ceilings the engine is
 * held to: the copy rate and the bf16 GEMM rate (bench/RESULTS.md).
 *
 *     bench_gemm_cuda [rows ...]
 *
 * The one idea: each shape is timed as a step runs it, 32 calls back to
 * back (a layer each), over copies of W that together outgrow L2, so
 * every call reads its weights from memory; the median of 5 runs.
 *
 * Built by `make cuda` (mk/cuda.mk) into build/cuda/.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "slora_core.h"
#include "slora_cuda_gemm.h"


#define B_CALLS    32
#define B_RUNS     5
#define B_L2_MIB   200


static int bench_cmp(const void *a, const void *b);


int
main(int argc, char **argv)
{
    static const int32_t  shapes[][2] = { { 12288, 4096 }, { 4096, 4096 },
                                          { 22016, 4096 },
                                          { 4096, 11008 } };
    static const char    *names[] = { "q,k,v", "o", "gate,up", "down" };
    static const int32_t  dflt[] = { 1, 16, 64, 256, 1024, 4096 };

    slora_cuda_gemm_t        *g;
    slora_cuda_gemm_shape_t   s;
    slora_err_t               err;
    cudaEvent_t               ev0, ev1;
    uint16_t                 *x, *y, *w[16];
    float                     ms[B_RUNS], med;
    int32_t                   rows[32], n_rows, si, ri, c, run, copies, n;
    size_t                    wbytes;
    double                    bytes, flops;

    n_rows = 0;
    for (c = 1; c < argc && n_rows < 32; c++) {
        rows[n_rows] = atoi(argv[c]);
        if (rows[n_rows] < 1 || rows[n_rows] > 4096) {
            fprintf(stderr, "bench_gemm_cuda: rows in [1, 4096]\n");
            return 2;
        }
        n_rows++;
    }

    if (n_rows == 0) {
        memcpy(rows, dflt, sizeof(dflt));
        n_rows = (int32_t) (sizeof(dflt) / sizeof(dflt[0]));
    }

    g = slora_cuda_gemm_create(32u << 20, &err);
    if (g == NULL) {
        fprintf(stderr, "bench_gemm_cuda: %s\n", err.msg);
        return 1;
    }

    if (cudaMalloc((void **) &x, (size_t) 4096 * 11008 * 2) != cudaSuccess
        || cudaMalloc((void **) &y, (size_t) 4096 * 22016 * 2) != cudaSuccess
        || cudaMemset(x, 0, (size_t) 4096 * 11008 * 2) != cudaSuccess
        || cudaEventCreate(&ev0) != cudaSuccess
        || cudaEventCreate(&ev1) != cudaSuccess)
    {
        fprintf(stderr, "bench_gemm_cuda: no room on the device\n");
        return 1;
    }

    printf("# %-8s %5s %10s %8s %9s\n", "proj", "rows", "us a call",
           "TB/s", "TFLOP/s");

    for (si = 0; si < 4; si++) {
        wbytes = (size_t) shapes[si][0] * (size_t) shapes[si][1] * 2;
        copies = (int32_t) ((size_t) B_L2_MIB * 1048576 / wbytes + 2);
        copies = copies > 16 ? 16 : copies;

        for (c = 0; c < copies; c++) {
            if (cudaMalloc((void **) &w[c], wbytes) != cudaSuccess
                || cudaMemset(w[c], 0, wbytes) != cudaSuccess)
            {
                fprintf(stderr, "bench_gemm_cuda: no room for W\n");
                return 1;
            }
        }

        for (ri = 0; ri < n_rows; ri++) {
            n = rows[ri];
            memset(&s, 0, sizeof(s));
            s.out = shapes[si][0];
            s.in = shapes[si][1];
            s.n = n;
            s.ld_x = s.in;
            s.ld_y = s.out;

            for (run = -1; run < B_RUNS; run++) {
                cudaEventRecord(ev0, NULL);

                for (c = 0; c < B_CALLS; c++) {
                    if (slora_cuda_gemm(g, &s, y, x, w[c % copies], NULL,
                                        NULL, &err)
                        != SLORA_OK)
                    {
                        fprintf(stderr, "bench_gemm_cuda: %s\n", err.msg);
                        return 1;
                    }
                }

                cudaEventRecord(ev1, NULL);
                cudaEventSynchronize(ev1);

                if (run >= 0) {
                    cudaEventElapsedTime(&ms[run], ev0, ev1);
                    ms[run] /= B_CALLS;
                }
            }

            qsort(ms, B_RUNS, sizeof(float), bench_cmp);
            med = ms[B_RUNS / 2];
            bytes = (double) wbytes
                    + (double) n * (s.in + s.out) * 2;
            flops = 2.0 * n * s.in * s.out;
            printf("  %-8s %5d %10.1f %8.2f %9.1f\n", names[si], n,
                   med * 1e3, bytes / (med * 1e-3) / 1e12,
                   flops / (med * 1e-3) / 1e12);
        }

        for (c = 0; c < copies; c++) {
            cudaFree(w[c]);
        }
    }

    if (cudaDeviceSynchronize() != cudaSuccess) {
        fprintf(stderr, "bench_gemm_cuda: %s\n",
                cudaGetErrorString(cudaGetLastError()));
        return 1;
    }

    slora_cuda_gemm_free(g);

    return 0;
}


static int
bench_cmp(const void *a, const void *b)
{
    float  fa = *(const float *) a, fb = *(const float *) b;

    return fa < fb ? -1 : fa > fb;
}
