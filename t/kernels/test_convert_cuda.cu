/*
 * test_convert_cuda.cu: f32 to bf16 on the GPU (kernels/slora_convert.cu)
 * against its CPU twin, bit for bit: the plain conversion of weights,
 * and the scattering one that puts an adapter's page images where the
 * pool placed them; and a random model's weights made on the device in
 * bf16 (kernels/slora_random.cu), block by block. Speaks TAP.
 *
 * The one idea: the CPU's rounding (slora_convert_cpu.c) is the
 * reference to the bit, specials and ties included, and the scattered
 * pages land in an arena filled with a pattern first, so a page written
 * to the wrong slot, or a slot written that was not named, shows.
 *
 *   test_convert_cuda
 */

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <algorithm>
#include <cuda_runtime.h>

extern "C" {
#include "slora_convert.h"
#include "slora_random.h"
}

#include "tap.h"
#include "cuda_test.h"


static void test_convert(void);
static void test_random(void);


int
main(void)
{
    cuda_test_devices();

    test_convert();
    test_random();

    return done_testing();
}


/*
 * f32 to bf16, bit for bit against the CPU's rounding, specials and ties
 * included; and an adapter's pages scattered: 37 pages of 1024 values to
 * shuffled page slots of a bigger arena, the slots not named left as
 * they were, plus the launcher's refusals.
 */
static void
test_convert(void)
{
    enum { N = 1 << 20, PAGES = 37, W = 1024, SLOTS = 64 };

    float     *src, *d_src;
    uint16_t  *cpu, *gpu, *d_dst;
    int64_t    off[PAGES], i;
    int32_t    perm[SLOTS], j, t;
    int        rc, same;

    src = (float *) malloc(N * sizeof(float));
    cpu = (uint16_t *) malloc((size_t) SLOTS * W * 2);
    gpu = (uint16_t *) malloc((size_t) SLOTS * W * 2);

    for (i = 0; i < N; i++) {
        src[i] = rng_unif(-3.0f, 3.0f);
    }
    src[0] = NAN;
    src[1] = INFINITY;
    src[2] = -INFINITY;
    src[3] = 1.00390625f;           /* a tie: 1 + 2^-8 */
    src[4] = 1.01171875f;           /* a tie, rounds up to even */
    src[5] = 1e-40f;                /* subnormal */

    d_src = (float *) dup_to_dev(src, N * sizeof(float));
    d_dst = (uint16_t *) dmalloc((size_t) N * 2);

    slora_convert_bf16(cpu, src, SLOTS * W);
    rc = slora_convert_bf16_cuda(d_dst, d_src, SLOTS * W, NULL);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(gpu, d_dst, (size_t) SLOTS * W * 2,
                  cudaMemcpyDeviceToHost));
    ok(rc == 0 && memcmp(cpu, gpu, (size_t) SLOTS * W * 2) == 0,
       "convert: %d values bit for bit, NaN, infinities, ties, subnormal",
       SLOTS * W);

    for (j = 0; j < SLOTS; j++) {
        perm[j] = j;
    }
    for (j = SLOTS - 1; j > 0; j--) {
        t = (int32_t) (rng_next() % (uint64_t) (j + 1));
        std::swap(perm[j], perm[t]);
    }
    for (j = 0; j < PAGES; j++) {
        off[j] = (int64_t) perm[j] * W;
    }

    /* the arena starts as a known pattern; the CPU twin writes the same
     * pages over a copy of it */
    for (i = 0; i < (int64_t) SLOTS * W; i++) {
        cpu[i] = (uint16_t) (i * 2654435761u >> 16);
    }
    CK(cudaMemcpy(d_dst, cpu, (size_t) SLOTS * W * 2,
                  cudaMemcpyHostToDevice));
    slora_convert_pages_bf16(cpu, off, src + 7 * W, PAGES, W);
    rc = slora_convert_pages_bf16_cuda(d_dst, off, d_src + 7 * W, PAGES, W,
                                       NULL);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(gpu, d_dst, (size_t) SLOTS * W * 2,
                  cudaMemcpyDeviceToHost));
    same = memcmp(cpu, gpu, (size_t) SLOTS * W * 2) == 0;
    ok(rc == 0 && same, "convert pages: %d pages to shuffled slots of %d, "
       "the others untouched, bit for bit", PAGES, SLOTS);

    /* bf16 pages (a bf16 host tier's images) copied to other slots of
     * the same arena: the bf16 values of the first pages above */
    {
        uint16_t  *half, *d_half;
        int64_t    off2[PAGES];

        half = (uint16_t *) malloc((size_t) PAGES * W * 2);
        slora_convert_bf16(half, src + 3 * W, (int64_t) PAGES * W);
        d_half = (uint16_t *) dup_to_dev(half, (size_t) PAGES * W * 2);

        for (j = 0; j < PAGES; j++) {
            off2[j] = (int64_t) perm[SLOTS - 1 - j] * W;
        }

        slora_copy_pages_bf16(cpu, off2, half, PAGES, W);
        rc = slora_copy_pages_bf16_cuda(d_dst, off2, d_half, PAGES, W, NULL);
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(gpu, d_dst, (size_t) SLOTS * W * 2,
                      cudaMemcpyDeviceToHost));
        ok(rc == 0 && memcmp(cpu, gpu, (size_t) SLOTS * W * 2) == 0,
           "copy pages: %d bf16 pages to shuffled slots, the others "
           "untouched, bit for bit", PAGES);

        CK(cudaFree(d_half));
        free(half);
    }

    off[0] = 4;
    ok(slora_convert_pages_bf16_cuda(d_dst, off, d_src, 1, W, NULL) == -1
       && slora_convert_pages_bf16_cuda(d_dst, off + 1, d_src,
                                        SLORA_CONVERT_PAGES + 1, W, NULL)
          == -1
       && slora_convert_pages_bf16_cuda(d_dst, off + 1, d_src, 1, W + 4,
                                        NULL) == -1,
       "convert pages: refuses an unaligned page, too many pages, a width "
       "not a multiple of 8");

    CK(cudaFree(d_src));
    CK(cudaFree(d_dst));
    free(src);
    free(cpu);
    free(gpu);
}


/*
 * A random model's tensor made on the device in bf16 against the CPU
 * twin, bit for bit: a whole tensor, a shard of rows, and a shard of
 * columns (rows ld apart) past 2^32 elements into the tensor, as the
 * 70B shape's ranks take them; a norm (amp 0) is all ones; and the
 * launcher's refusals.
 */
static void
test_random(void)
{
    enum { ROWS = 640, COLS = 384 };
    static const int64_t  shape[3][4] = {       /* rows, cols, ld, first */
        { 1, ROWS * COLS, ROWS * COLS, 0 },
        { ROWS, COLS, 3 * COLS, COLS },
        { ROWS, COLS, 28672, (int64_t) 5 << 30 }
    };
    uint16_t  *want, *got, *d;
    int64_t    i, n, bad;
    int        k;
    float      amp;

    n = ROWS * COLS;
    want = (uint16_t *) malloc(n * sizeof(uint16_t));
    got = (uint16_t *) malloc(n * sizeof(uint16_t));
    CK(cudaMalloc(&d, n * sizeof(uint16_t)));

    for (k = 0; k < 4; k++) {
        const int64_t  *s = shape[k < 3 ? k : 1];

        amp = k < 3 ? 1.0f / sqrtf(8192.0f) : 0.0f;
        slora_random_fill_bf16(want, s[0], s[1], s[2], s[3], 7, 42 + k, amp);
        CK(cudaMemset(d, 0xff, n * sizeof(uint16_t)));
        ok(slora_random_fill_bf16_cuda(d, s[0], s[1], s[2], s[3], 7, 42 + k,
                                       amp, NULL) == 0,
           "random fill %d launched", k);
        CK(cudaMemcpy(got, d, n * sizeof(uint16_t), cudaMemcpyDeviceToHost));

        bad = 0;
        for (i = 0; i < n; i++) {
            bad += got[i] != want[i];
        }

        ok(bad == 0, "random fill %s: %lld x %lld from %lld, ld %lld, bit "
           "for bit (%lld differ)", k == 3 ? "of a norm" : "of a matrix",
           (long long) s[0], (long long) s[1], (long long) s[3],
           (long long) s[2], (long long) bad);
    }

    bad = 0;
    for (i = 0; i < n; i++) {
        bad += want[i] != 0x3f80;
    }
    ok(bad == 0, "a norm's values are all 1.0");

    ok(slora_random_fill_bf16_cuda(d, 2, 10, 5, 0, 7, 1, 1.0f, NULL) != 0
       && slora_random_fill_bf16_cuda(d, -1, 10, 10, 0, 7, 1, 1.0f, NULL)
          != 0
       && slora_random_fill_bf16_cuda(NULL, 1, 10, 10, 0, 7, 1, 1.0f, NULL)
          != 0,
       "random fill refuses rows closer than their width, negative sizes, "
       "no destination");

    CK(cudaFree(d));
    free(want);
    free(got);
}
