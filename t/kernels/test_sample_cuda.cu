/*
 * test_sample_cuda.cu: the draw of a token on the GPU (kernels/
 * slora_sample.cu) against its CPU twin, to the token: rows of random
 * logits at SmolLM2's and Llama's vocabularies, with temperature, top-k,
 * top-p, min-p and all of them, logits with many ties, NaN and -inf
 * among them, a row of nothing but -inf, and greedy rows, whose ids are
 * left alone; the greedy argmax (kernels/slora_argmax.cu) against its
 * twin on rows of NaN, infinities and ties, and rows whose scaled max is
 * +inf drawn over it as the backend draws; then the time of a batch of
 * 256 rows. Speaks TAP.
 *
 * The one idea: the twins share their weights and keys
 * (kernels/slora_sample.h) and sum integers, so any difference at all is
 * a bug, not rounding: the check is equality, row by row.
 *
 *   test_sample_cuda
 */

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <cuda_runtime.h>

extern "C" {
#include "slora_sample.h"
#include "slora_argmax.h"
}

#include "tap.h"
#include "cuda_test.h"


#define ROWS  256


static void test_vocab(int32_t vocab, int ties, const char *what);
static void test_argmax(int32_t vocab);
static void test_inf(int32_t vocab);
static void special_row(float *x, int32_t r, int32_t vocab);
static int gpu_ids(int32_t *gpu, const float *x, int32_t vocab,
    const slora_draw_t *dr, int argmax);
static int32_t same_ids(const int32_t *cpu, const int32_t *gpu,
    int32_t *first);
static void say_draw(const int32_t *cpu, const int32_t *gpu,
    const slora_draw_t *dr, int32_t first);
static void bench(int32_t vocab);
static void draw_params(slora_draw_t *dr, int32_t r, int32_t vocab);


int
main(void)
{
    cuda_test_devices();

    test_vocab(49152, 0, "SmolLM2's vocabulary");
    test_vocab(32000, 0, "Llama's vocabulary");
    test_vocab(32000, 1, "logits on a grid of 16 values (ties)");
    test_vocab(10, 0, "a vocabulary of 10");
    test_argmax(32000);
    test_argmax(10);
    test_inf(32000);
    test_inf(10);
    bench(49152);

    return done_testing();
}


/*
 * ROWS rows, each with its own draw; every 7th row has a NaN and a -inf
 * in it, every 11th is greedy, the last row is all -inf.
 */
static void
test_vocab(int32_t vocab, int ties, const char *what)
{
    float         *x;
    slora_draw_t  *dr;
    int32_t       *cpu, *gpu, r, i, same, first;
    void          *scratch;

    x = (float *) malloc((size_t) ROWS * vocab * sizeof(float));
    dr = (slora_draw_t *) calloc(ROWS, sizeof(slora_draw_t));
    cpu = (int32_t *) malloc(ROWS * sizeof(int32_t));
    gpu = (int32_t *) malloc(ROWS * sizeof(int32_t));
    scratch = malloc(slora_sample_scratch_size(vocab));

    for (r = 0; r < ROWS; r++) {
        for (i = 0; i < vocab; i++) {
            x[(size_t) r * vocab + i] = ties
                ? (float) (rng_next() % 16) * 0.25f
                : rng_unif(-8.0f, 8.0f);
        }

        if (r % 7 == 3 && vocab > 2) {
            x[(size_t) r * vocab + 1] = NAN;
            x[(size_t) r * vocab + 2] = -INFINITY;
        }

        if (r == ROWS - 1) {
            for (i = 0; i < vocab; i++) {
                x[(size_t) r * vocab + i] = -INFINITY;
            }
        }

        draw_params(&dr[r], r, vocab);
        cpu[r] = dr[r].inv_temp > 0.0f
                 ? slora_sample_row(x + (size_t) r * vocab, vocab, &dr[r],
                                    scratch)
                 : -1;              /* greedy: the 0xff.. left alone */
    }

    ok(gpu_ids(gpu, x, vocab, dr, 0), "%s: launched", what);
    same = same_ids(cpu, gpu, &first);
    ok(same == ROWS, "%s: %d of %d rows draw the CPU's token", what, same,
       ROWS);
    say_draw(cpu, gpu, dr, first);

    free(x); free(dr); free(cpu); free(gpu); free(scratch);
}


/*
 * The argmax of ROWS rows of NaN, infinities and ties (special_row)
 * against the CPU's left-to-right scan, row by row.
 */
static void
test_argmax(int32_t vocab)
{
    float    *x;
    int32_t  *cpu, *gpu, r, same, first;

    x = (float *) malloc((size_t) ROWS * vocab * sizeof(float));
    cpu = (int32_t *) malloc(ROWS * sizeof(int32_t));
    gpu = (int32_t *) malloc(ROWS * sizeof(int32_t));

    for (r = 0; r < ROWS; r++) {
        special_row(x + (size_t) r * vocab, r, vocab);
    }

    slora_argmax_rows(cpu, x, vocab, ROWS, vocab);

    ok(gpu_ids(gpu, x, vocab, NULL, 1), "argmax, vocabulary %d: launched",
       vocab);
    same = same_ids(cpu, gpu, &first);
    ok(same == ROWS, "argmax, vocabulary %d: %d of %d rows (NaN, inf, "
       "ties) give the CPU's id", vocab, same, ROWS);

    if (first >= 0) {
        diag("row %d (kind %d): cpu %d gpu %d", first, first % 8,
             cpu[first], gpu[first]);
    }

    free(x); free(cpu); free(gpu);
}


/*
 * Rows whose scaled max is +inf, drawn as the backend draws: the argmax
 * first, then the draw over it; the CPU gives the row's argmax. The
 * even rows hold a NaN at 1 and +inf at two places (special_row's kind
 * 2), the odd ones random logits and a NaN at 1 under a temperature
 * whose inverse overflows them; every 11th row is greedy and keeps its
 * argmax.
 */
static void
test_inf(int32_t vocab)
{
    float         *x;
    slora_draw_t  *dr;
    int32_t       *cpu, *gpu, r, i, same, first;
    void          *scratch;

    x = (float *) malloc((size_t) ROWS * vocab * sizeof(float));
    dr = (slora_draw_t *) calloc(ROWS, sizeof(slora_draw_t));
    cpu = (int32_t *) malloc(ROWS * sizeof(int32_t));
    gpu = (int32_t *) malloc(ROWS * sizeof(int32_t));
    scratch = malloc(slora_sample_scratch_size(vocab));

    for (r = 0; r < ROWS; r++) {
        draw_params(&dr[r], r, vocab);

        if (r % 2 == 0) {
            special_row(x + (size_t) r * vocab, r / 2 * 8 + 2, vocab);

        } else {
            for (i = 0; i < vocab; i++) {
                x[(size_t) r * vocab + i] = rng_unif(-8.0f, 8.0f);
            }

            x[(size_t) r * vocab + 1] = NAN;
            dr[r].inv_temp = dr[r].inv_temp > 0.0f ? 1e38f : 0.0f;
        }

        if (dr[r].inv_temp > 0.0f) {
            cpu[r] = slora_sample_row(x + (size_t) r * vocab, vocab, &dr[r],
                                      scratch);

        } else {
            slora_argmax_rows(&cpu[r], x + (size_t) r * vocab, vocab, 1,
                              vocab);
        }
    }

    ok(gpu_ids(gpu, x, vocab, dr, 1), "+inf, vocabulary %d: launched",
       vocab);
    same = same_ids(cpu, gpu, &first);
    ok(same == ROWS, "+inf, vocabulary %d: %d of %d rows draw the CPU's "
       "token", vocab, same, ROWS);
    say_draw(cpu, gpu, dr, first);

    free(x); free(dr); free(cpu); free(gpu); free(scratch);
}


/*
 * The GPU's ids for the rows x[ROWS, vocab] as the backend makes them:
 * the argmax (argmax), then the draws under dr over it (dr not NULL),
 * into gpu, whose rows nothing wrote stay 0xff..; 1 where every launch
 * was taken.
 */
static int
gpu_ids(int32_t *gpu, const float *x, int32_t vocab, const slora_draw_t *dr,
    int argmax)
{
    int            taken;
    float         *d_x;
    slora_draw_t  *d_dr;
    int32_t       *d_ids;

    d_x = (float *) dup_to_dev(x, (size_t) ROWS * vocab * sizeof(float));
    d_dr = dr != NULL
           ? (slora_draw_t *) dup_to_dev(dr, ROWS * sizeof(slora_draw_t))
           : NULL;
    d_ids = (int32_t *) dmalloc(ROWS * sizeof(int32_t));
    CK(cudaMemset(d_ids, 0xff, ROWS * sizeof(int32_t)));

    taken = (!argmax
             || slora_argmax_rows_cuda(d_ids, d_x, vocab, ROWS, vocab, NULL)
                == 0)
            && (dr == NULL
                || slora_sample_rows_cuda(d_ids, d_x, vocab, vocab, d_dr,
                                          ROWS, NULL)
                   == 0);

    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(gpu, d_ids, ROWS * sizeof(int32_t),
                  cudaMemcpyDeviceToHost));
    CK(cudaFree(d_x));
    CK(cudaFree(d_ids));

    if (d_dr != NULL) {
        CK(cudaFree(d_dr));
    }

    return taken;
}


/* How many of the ROWS rows' ids are the CPU's; *first the first that
 * is not (-1: none). */
static int32_t
same_ids(const int32_t *cpu, const int32_t *gpu, int32_t *first)
{
    int32_t  r, same;

    same = 0;
    *first = -1;

    for (r = 0; r < ROWS; r++) {
        if (gpu[r] == cpu[r]) {
            same++;

        } else if (*first < 0) {
            *first = r;
        }
    }

    return same;
}


/* The first row drawn otherwise than on the CPU, and its draw. */
static void
say_draw(const int32_t *cpu, const int32_t *gpu, const slora_draw_t *dr,
    int32_t first)
{
    if (first >= 0) {
        diag("row %d: cpu %d gpu %d (inv_temp %g top_k %d top_p %g min_p %g"
             " u %.17g)", first, cpu[first], gpu[first], dr[first].inv_temp,
             dr[first].top_k, dr[first].top_p, dr[first].min_p, dr[first].u);
    }
}


/*
 * Row x of kind r % 8, random logits under them: 0, a NaN at 1 (the
 * first of the second thread's slice) and the max at 3; 1, a NaN at 0;
 * 2, a NaN at 1 and +inf at two places; 3, all -inf; 4, all NaN; 5, all
 * NaN but one place; 6, -inf with NaN at every 5th place; 7, one NaN in
 * every 37 places and ties on a grid of 16 values.
 */
static void
special_row(float *x, int32_t r, int32_t vocab)
{
    int32_t  i, k, a, b;

    k = r % 8;
    a = (int32_t) (rng_next() % (uint64_t) vocab);
    b = (int32_t) (rng_next() % (uint64_t) vocab);

    for (i = 0; i < vocab; i++) {
        x[i] = k == 3 || k == 6 ? -INFINITY
               : k == 4 || k == 5 ? NAN
               : k == 7 ? (float) (rng_next() % 16) * 0.25f
               : rng_unif(-8.0f, 8.0f);

        if ((k == 6 && i % 5 == 0) || (k == 7 && i % 37 == 1)) {
            x[i] = NAN;
        }
    }

    if (k == 0 || k == 2) {
        x[1 % vocab] = NAN;
    }

    if (k == 0) {
        x[3 % vocab] = 100.0f;
    }

    if (k == 1) {
        x[0] = NAN;
    }

    if (k == 2) {
        x[a] = INFINITY;
        x[b] = INFINITY;
    }

    if (k == 5) {
        x[a] = rng_unif(-8.0f, 8.0f);
    }
}


/* Temperatures 0.3 to 2, top-k off, 1, 40 or most of the vocabulary,
 * top-p off, 0.5, 0.9 or 0.99, min-p off, 0.01, 0.1 or 0.5, in turn,
 * and a fresh u. */
static void
draw_params(slora_draw_t *dr, int32_t r, int32_t vocab)
{
    static const float  temp[] = { 0.3f, 0.7f, 1.0f, 2.0f };
    static const float  top_p[] = { 0.0f, 0.5f, 0.9f, 0.99f };
    static const float  min_p[] = { 0.0f, 0.01f, 0.1f, 0.5f };
    int32_t             top_k[4];

    top_k[0] = 0;
    top_k[1] = 1;
    top_k[2] = vocab > 40 ? 40 : vocab / 2;
    top_k[3] = vocab - 1;

    dr->inv_temp = r % 11 == 5 ? 0.0f : 1.0f / temp[r % 4];
    dr->top_k = top_k[(r / 4) % 4];
    dr->top_p = top_p[(r / 16) % 4];
    dr->min_p = min_p[(r / 64) % 4];
    dr->u = (double) (rng_next() >> 11) * (1.0 / 9007199254740992.0);
}


/* ROWS rows of a vocabulary with top-k 40 and top-p 0.9, median of 20. */
static void
bench(int32_t vocab)
{
    float         *x, *d_x, ms[20], t;
    slora_draw_t  *dr, *d_dr;
    int32_t       *d_ids, r, i, k;
    cudaEvent_t    e0, e1;

    x = (float *) malloc((size_t) ROWS * vocab * sizeof(float));
    dr = (slora_draw_t *) calloc(ROWS, sizeof(slora_draw_t));

    for (i = 0; i < ROWS * vocab; i++) {
        x[i] = rng_unif(-8.0f, 8.0f);
    }

    for (r = 0; r < ROWS; r++) {
        dr[r].inv_temp = 1.0f / 0.7f;
        dr[r].top_k = 40;
        dr[r].top_p = 0.9f;
        dr[r].u = 0.5;
    }

    d_x = (float *) dup_to_dev(x, (size_t) ROWS * vocab * sizeof(float));
    d_dr = (slora_draw_t *) dup_to_dev(dr, ROWS * sizeof(slora_draw_t));
    d_ids = (int32_t *) dmalloc(ROWS * sizeof(int32_t));
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));

    for (k = 0; k < 23; k++) {
        CK(cudaEventRecord(e0, NULL));
        if (slora_sample_rows_cuda(d_ids, d_x, vocab, vocab, d_dr, ROWS,
                                   NULL) != 0)
        {
            BAIL_OUT("launch");
        }
        CK(cudaEventRecord(e1, NULL));
        CK(cudaEventSynchronize(e1));

        if (k >= 3) {
            CK(cudaEventElapsedTime(&ms[k - 3], e0, e1));
        }
    }

    for (i = 0; i < 20; i++) {
        for (k = i + 1; k < 20; k++) {
            if (ms[k] < ms[i]) {
                t = ms[i];
                ms[i] = ms[k];
                ms[k] = t;
            }
        }
    }

    printf("# sample: %d rows of %d logits, top-k 40, top-p 0.9: %.1f us "
           "(median of 20)\n", ROWS, vocab, ms[10] * 1e3);

    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    CK(cudaFree(d_x));
    CK(cudaFree(d_dr));
    CK(cudaFree(d_ids));
    free(x); free(dr);
}
