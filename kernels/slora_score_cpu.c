/*
 * slora_score_cpu.c: a row's log-softmax in part on the CPU
 * (slora_score.h), every host log-probability's and the GPU twin's
 * reference: the max and the k best of slora_sample_top_isa, the sum of
 * exponentials of slora_sample_sumexp_isa, both with the best
 * instructions this CPU has (every one gives the same answer).
 */

#include <math.h>

#include "slora_score.h"
#include "slora_sample.h"
#include "slora_qmatmul.h"


double
slora_score_row(const float *row, int32_t vocab, int32_t k, int32_t *ids,
    float *logprobs)
{
    float    max;
    double   sum, lse;
    int32_t  j;

    k = k < vocab ? k : vocab;

    (void) slora_sample_top_isa(&max, ids, row, vocab, k, SLORA_QISA_AUTO);
    (void) slora_sample_sumexp_isa(&sum, row, vocab, max, SLORA_QISA_AUTO);

    lse = (double) max + log(sum);

    for (j = 0; j < k; j++) {
        logprobs[j] = (float) ((double) row[ids[j]] - lse);
    }

    return lse;
}


void
slora_score_rows(slora_score_t *out, const float *logits, int64_t ld,
    int32_t vocab, const int32_t *tok, int32_t n, int32_t k)
{
    float           x;
    double          lse;
    int32_t         r, i, rank;
    const float    *row;
    slora_score_t  *o;

    for (r = 0; r < n; r++) {
        if (tok[r] < 0 || tok[r] >= vocab) {
            continue;
        }

        row = logits + r * ld;
        o = &out[r];
        o->n_top = k;
        lse = slora_score_row(row, vocab, k, o->top_ids, o->top_lp);
        x = row[tok[r]];
        o->logprob = (float) ((double) x - lse);

        for (i = 0, rank = 0; i < vocab; i++) {
            rank += row[i] >= x;
        }

        o->rank = rank;
    }
}
