/*
 * slora_score.h: a logits row's log-softmax, in part: the
 * log-probability of one token and the likeliest tokens with theirs.
 * What a prompt's scoring (echo with logprobs) needs of each of its
 * rows, on the device that holds them, so that a few numbers a row come
 * back instead of the row.
 *
 * The one idea: the k likeliest are an order, by logit and then by the
 * lower id, so the GPU may find them a round at a time (the best after
 * the one before) and give the CPU's ids; the figures are a logit less
 * the log of a sum of exponentials, which the two sum in their own order
 * (the CPU in double from slora_expf, the GPU in float from expf, then
 * double): equal to some 1e-6. A token's rank is a count of logits at
 * least its own (vLLM's: the token itself and its ties included), which
 * both count exactly.
 */

#ifndef SLORA_SCORE_H
#define SLORA_SCORE_H


#include <stdint.h>


#define SLORA_SCORE_TOP_MAX  20


typedef struct {
    float      logprob;                          /* the token's */
    int32_t    rank;                             /* 1 + the tokens more
                                                    likely, its ties
                                                    counted (0: a NaN
                                                    logit) */
    int32_t    n_top;
    int32_t    top_ids[SLORA_SCORE_TOP_MAX];     /* likeliest first, the
                                                    lower id on a tie */
    float      top_lp[SLORA_SCORE_TOP_MAX];
} slora_score_t;


/*
 * The log-softmax of row[vocab], in part: returns the log of the sum of
 * exp(row) (a token's log-probability is its logit less that), and
 * writes the k likeliest ids (k at most vocab), likeliest first and the
 * lower id first on a tie, with their log-probabilities, into ids[k] and
 * logprobs[k]. The CPU's, with slora_sample_top_isa and
 * slora_sample_sumexp_isa; what every log-probability the host gives
 * comes from.
 */
double slora_score_row(const float *row, int32_t vocab, int32_t k,
    int32_t *ids, float *logprobs);

/* For r < n with tok[r] >= 0: out[r] gets the log-probability of tok[r]
 * under row r of logits (ld floats apart, vocab wide), its rank and its k
 * likeliest tokens (k <= SLORA_SCORE_TOP_MAX and <= vocab); rows with
 * tok[r] < 0 are left alone. The CPU's: slora_score_row's. */
void slora_score_rows(slora_score_t *out, const float *logits, int64_t ld,
    int32_t vocab, const int32_t *tok, int32_t n, int32_t k);

/* CUDA twin (kernels/slora_score.cu), one block a row; out, logits and
 * tok are device memory. stream is a cudaStream_t. Returns 0, or -1 on
 * bad arguments or a refused launch. */
int slora_score_rows_cuda(slora_score_t *out, const float *logits,
    int64_t ld, int32_t vocab, const int32_t *tok, int32_t n, int32_t k,
    void *stream);


#endif /* SLORA_SCORE_H */
