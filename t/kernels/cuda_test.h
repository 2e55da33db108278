/*
 * cuda_test.h: what the CUDA kernel tests (the .cu files in t/kernels)
 * share: CK() to bail out on a CUDA error, a seeded generator of
 * inputs, device buffers made or copied in one call, bf16 on the host
 * (rounding, widening, random fills, a device buffer read back) and the
 * relative error the tolerances speak of.
 *
 * The one idea: every helper stops the test on failure (BAIL_OUT), so a
 * case never goes on with a missing buffer, and the generator is the
 * same splitmix64 in every binary, so a case's inputs depend on its seed
 * and its order only.
 */

#ifndef CUDA_TEST_H
#define CUDA_TEST_H


#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cuda_runtime.h>

#include "tap.h"

extern "C" {
#include "slora_convert.h"          /* bf16 both ways, the kernels' own */
}


#define CK(call)                                                              \
    do {                                                                      \
        cudaError_t  e_ = (call);                                             \
        if (e_ != cudaSuccess) {                                              \
            BAIL_OUT("%s:%d: %s: %s", __FILE__, __LINE__, #call,              \
                     cudaGetErrorString(e_));                                 \
        }                                                                     \
    } while (0)


static uint64_t  rng_state = 0x5eed5107a5eedULL;


static inline uint64_t
rng_next(void)
{
    uint64_t  z;

    z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static inline float
rng_unif(float lo, float hi)
{
    return lo + (hi - lo) * (float) ((rng_next() >> 40) * (1.0 / 16777216.0));
}


/* Device memory, at least 16 bytes. */
static inline void *
dmalloc(size_t bytes)
{
    void  *d;

    CK(cudaMalloc(&d, bytes < 16 ? 16 : bytes));

    return d;
}


static inline void *
dup_to_dev(const void *h, size_t bytes)
{
    void  *d;

    d = dmalloc(bytes);

    if (bytes > 0) {
        CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    }

    return d;
}


static inline void
fill(uint16_t *h, float *f, size_t n, float lo, float hi)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        h[i] = slora_f32_to_bf16(rng_unif(lo, hi));
        f[i] = slora_bf16_to_f32(h[i]);
    }
}


/* ||got - ref|| / ||ref||; NaN anywhere (an unwritten, poisoned output)
 * gives infinity. */

static inline double
rel_err(const float *got, const float *ref, size_t n)
{
    size_t  i;
    double  d, num, den;

    num = 0.0;
    den = 0.0;

    for (i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(ref[i])) {
            return INFINITY;
        }

        d = (double) got[i] - (double) ref[i];
        num += d * d;
        den += (double) ref[i] * (double) ref[i];
    }

    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}


static inline void
from_dev_bf(float *f, const uint16_t *d, size_t n)
{
    uint16_t  *h;
    size_t     i;

    h = (uint16_t *) malloc(n * 2 + 2);
    CK(cudaMemcpy(h, d, n * 2, cudaMemcpyDeviceToHost));

    for (i = 0; i < n; i++) {
        f[i] = slora_bf16_to_f32(h[i]);
    }

    free(h);
}


/* The number of CUDA devices; with none, the TAP plan that skips every
 * test, and the program ends there. */

static inline int
cuda_test_devices(void)
{
    int  n;

    n = 0;

    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("1..0 # SKIP no CUDA device\n");
        exit(0);
    }

    return n;
}


/* The worst error seen per kernel, printed as the run's summary. */

typedef struct {
    const char  *name;
    double       worst;
} kstat_t;

static kstat_t  kstat[16];
static int      n_kstat;


static inline void
note(const char *kernel, double err)
{
    int  i;

    for (i = 0; i < n_kstat; i++) {
        if (strcmp(kstat[i].name, kernel) == 0) {
            kstat[i].worst = kstat[i].worst > err ? kstat[i].worst : err;
            return;
        }
    }

    if (n_kstat == (int) (sizeof(kstat) / sizeof(kstat[0]))) {
        printf("# note(): no room for \"%s\" in the summary\n", kernel);
        return;
    }

    kstat[n_kstat].name = kernel;
    kstat[n_kstat].worst = err;
    n_kstat++;
}


static inline void
kstat_print(void)
{
    int  i;

    printf("# conformance: kernel, worst ||gpu - cpu|| / ||cpu||\n");

    for (i = 0; i < n_kstat; i++) {
        printf("#   %-22s %.3e\n", kstat[i].name, kstat[i].worst);
    }
}

#endif /* CUDA_TEST_H */
