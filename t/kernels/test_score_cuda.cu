/*
 * test_score_cuda.cu: a row's token log-probability and its likeliest
 * alternatives on the GPU (kernels/slora_score.cu) against its CPU twin:
 * rows of random logits at SmolLM2's and Llama's vocabularies and a
 * small one, k from 0 to 20, logits on a grid of 16 values (ties, which
 * both break by the lower id), -inf among them, rows skipped (token -1)
 * left alone; then the time of 256 rows. Speaks TAP.
 *
 * The one idea: the ids and the token's rank are an order and a count
 * both compute exactly, so they must be equal; the figures are sums
 * of exponentials in two orders, so they are held to 1e-5 (a
 * log-probability's error is the sum's relative one).
 *
 *   test_score_cuda
 */

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <cuda_runtime.h>

extern "C" {
#include "slora_score.h"
}

#include "tap.h"
#include "cuda_test.h"


#define ROWS   256
#define CLOSE  1e-5


static void test_vocab(int32_t vocab, int ties, const char *what);
static void bench(int32_t vocab, int32_t k);


int
main(void)
{
    cuda_test_devices();

    test_vocab(49152, 0, "SmolLM2's vocabulary");
    test_vocab(32000, 0, "Llama's vocabulary");
    test_vocab(32000, 1, "logits on a grid of 16 values (ties)");
    test_vocab(24, 0, "a vocabulary of 24");
    bench(49152, 1);
    bench(49152, 5);

    return done_testing();
}


/* ROWS rows, row r with k = r % 21 (at most the vocabulary), its token
 * at random; every 9th row skipped (token -1), every 7th with a -inf in
 * it. */
static void
test_vocab(int32_t vocab, int ties, const char *what)
{
    float          *x, *d_x, d, worst;
    int32_t        *tok, *d_tok, r, i, k, ids_same, n_same, untouched, want,
                    skipped, rank_same, ranked;
    slora_score_t  *cpu, *gpu, *d_out;

    x = (float *) malloc((size_t) ROWS * vocab * sizeof(float));
    tok = (int32_t *) malloc(ROWS * sizeof(int32_t));
    cpu = (slora_score_t *) malloc(ROWS * sizeof(slora_score_t));
    gpu = (slora_score_t *) malloc(ROWS * sizeof(slora_score_t));

    for (r = 0; r < ROWS; r++) {
        for (i = 0; i < vocab; i++) {
            x[(size_t) r * vocab + i] = ties
                ? (float) (rng_next() % 16) * 0.25f
                : rng_unif(-8.0f, 8.0f);
        }

        if (r % 7 == 3) {
            x[(size_t) r * vocab + 2] = -INFINITY;
        }

        tok[r] = r % 9 == 4 ? -1 : (int32_t) (rng_next() % (uint64_t) vocab);
    }

    ids_same = 0;
    n_same = 0;
    untouched = 0;
    want = 0;
    skipped = 0;
    rank_same = 0;
    ranked = 0;
    worst = 0;

    for (k = 0; k <= SLORA_SCORE_TOP_MAX && k <= vocab; k += 5) {
        memset(cpu, 0x5a, ROWS * sizeof(slora_score_t));
        memset(gpu, 0x5a, ROWS * sizeof(slora_score_t));
        slora_score_rows(cpu, x, vocab, vocab, tok, ROWS, k);

        d_x = (float *) dup_to_dev(x, (size_t) ROWS * vocab * sizeof(float));
        d_tok = (int32_t *) dup_to_dev(tok, ROWS * sizeof(int32_t));
        d_out = (slora_score_t *) dup_to_dev(gpu,
                                             ROWS * sizeof(slora_score_t));

        if (slora_score_rows_cuda(d_out, d_x, vocab, vocab, d_tok, ROWS, k,
                                  NULL)
            != 0)
        {
            BAIL_OUT("%s: launch refused", what);
        }

        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(gpu, d_out, ROWS * sizeof(slora_score_t),
                      cudaMemcpyDeviceToHost));

        for (r = 0; r < ROWS; r++) {
            if (tok[r] < 0) {
                untouched += memcmp(&gpu[r], &cpu[r], sizeof(slora_score_t))
                             == 0;
                skipped++;
                continue;
            }

            want++;
            n_same += gpu[r].n_top == k;
            rank_same += gpu[r].rank == cpu[r].rank;
            /* ranks that say something: tokens not the likeliest */
            ranked += cpu[r].rank > 1;
            ids_same += memcmp(gpu[r].top_ids, cpu[r].top_ids,
                               (size_t) k * sizeof(int32_t))
                        == 0;

            d = fabsf(gpu[r].logprob - cpu[r].logprob);
            worst = d > worst ? d : worst;

            for (i = 0; i < k; i++) {
                d = fabsf(gpu[r].top_lp[i] - cpu[r].top_lp[i]);
                worst = d > worst ? d : worst;
            }
        }

        CK(cudaFree(d_x));
        CK(cudaFree(d_tok));
        CK(cudaFree(d_out));
    }

    ok(want > 0 && n_same == want && ids_same == want, "%s: every scored "
       "row's k likeliest are the CPU's ids (%d of %d, k 0 to 20)", what,
       ids_same, want);
    ok(rank_same == want && ranked > want / 2, "%s: every scored token's "
       "rank the CPU's (%d of %d, %d past the first)", what, rank_same, want,
       ranked);
    ok(worst <= CLOSE, "%s: the figures within %g of the CPU's (%.3g)",
       what, CLOSE, (double) worst);
    ok(skipped > 0 && untouched == skipped, "%s: rows without a token left "
       "alone (%d)", what, skipped);

    free(x); free(tok); free(cpu); free(gpu);
}


/* ROWS rows, median of 20 launches. */
static void
bench(int32_t vocab, int32_t k)
{
    float          *x, *d_x, ms[20], t;
    int32_t        *tok, *d_tok, r, i, n;
    slora_score_t  *d_out;
    cudaEvent_t     e0, e1;

    x = (float *) malloc((size_t) ROWS * vocab * sizeof(float));
    tok = (int32_t *) malloc(ROWS * sizeof(int32_t));

    for (i = 0; i < ROWS * vocab; i++) {
        x[i] = rng_unif(-8.0f, 8.0f);
    }

    for (r = 0; r < ROWS; r++) {
        tok[r] = r;
    }

    d_x = (float *) dup_to_dev(x, (size_t) ROWS * vocab * sizeof(float));
    d_tok = (int32_t *) dup_to_dev(tok, ROWS * sizeof(int32_t));
    d_out = (slora_score_t *) dmalloc(ROWS * sizeof(slora_score_t));
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));

    for (n = 0; n < 23; n++) {
        CK(cudaEventRecord(e0, NULL));
        if (slora_score_rows_cuda(d_out, d_x, vocab, vocab, d_tok, ROWS, k,
                                  NULL)
            != 0)
        {
            BAIL_OUT("launch");
        }
        CK(cudaEventRecord(e1, NULL));
        CK(cudaEventSynchronize(e1));

        if (n >= 3) {
            CK(cudaEventElapsedTime(&ms[n - 3], e0, e1));
        }
    }

    for (n = 1; n < 20; n++) {
        for (i = n; i > 0 && ms[i] < ms[i - 1]; i--) {
            t = ms[i];
            ms[i] = ms[i - 1];
            ms[i - 1] = t;
        }
    }

    diag("%d rows of %d logits, k %d: %.3f ms (median of 20), %.1f us a "
         "row", ROWS, vocab, k, (double) ms[10], (double) ms[10] * 1e3 / ROWS);

    CK(cudaFree(d_x));
    CK(cudaFree(d_tok));
    CK(cudaFree(d_out));
    free(x); free(tok);
}
