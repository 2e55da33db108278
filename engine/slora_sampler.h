/*
 * slora_sampler.h: picks the next token from a row of logits: greedy,
 * temperature, top-k, top-p and a repetition penalty over the tokens a
 * request has seen, drawing from a per-request generator.
 *
 * The one idea: all randomness comes from the request's own slora_rng_t,
 * seeded from its seed, and one sample draws exactly one number from it,
 * so the same seed gives the same text whatever else runs in the batch.
 */

#ifndef SLORA_SAMPLER_H
#define SLORA_SAMPLER_H


#include "slora_core.h"
#include "slora_engine.h"
#include "slora_sample.h"


/* A temperature below this is greedy (as vLLM's): dividing by it tells
 * nothing from the argmax, and past float's range (1e-40) it overflows
 * to a row of infinities that no draw can read. */
#define SLORA_SAMPLING_EPS  1e-5f


/* xoshiro256** seeded through splitmix64. */
typedef struct {
    uint64_t    s[4];
} slora_rng_t;


void slora_rng_seed(slora_rng_t *rng, uint64_t seed);
uint64_t slora_rng_next(slora_rng_t *rng);
double slora_rng_uniform(slora_rng_t *rng);        /* [0, 1) */


typedef struct slora_sampler_s  slora_sampler_t;


/* Scratch for rows of vocab logits; one per engine thread. */
slora_sampler_t *slora_sampler_create(int32_t vocab, slora_err_t *err);
void slora_sampler_free(slora_sampler_t *s);

/*
 * Samples one id from logits[vocab], which it modifies. The logit bias
 * comes first (added to its tokens' logits), then bad_words (a run's
 * last token's logit -inf where the generated tokens end in the rest of
 * it), then allowed_token_ids (every other token's logit -inf; -1
 * returned where none of them is left above -inf: no token may come),
 * then the penalties.
 * history[n] are the request's tokens so far, its n_prompt prompt tokens
 * first: the repetition penalty looks at all of them, OpenAI's frequency
 * and presence penalties at the generated ones only (as OpenAI and vLLM
 * do): a generated token's logit loses count * frequency_penalty +
 * presence_penalty. A temperature below SLORA_SAMPLING_EPS is greedy:
 * the largest logit, the lowest id on ties.
 */
int32_t slora_sample(slora_sampler_t *s, const slora_sampling_t *sp,
    slora_rng_t *rng, float *logits, const int32_t *history, int32_t n,
    int32_t n_prompt);

/* 1 when sp picks the argmax of the raw logits (greedy, no penalty):
 * slora_sample would then return what slora_argmax_rows gives. */
int slora_sampling_greedy(const slora_sampling_t *sp);

/* 1 when sp needs nothing but the row's logits (no penalty, as every
 * penalty reads the tokens so far, and no logit bias): a backend can pick
 * its id. */
int slora_sampling_plain(const slora_sampling_t *sp);

/* sp as a draw (kernels/slora_sample.h): inv_temp 0 when greedy, else
 * 1 / temperature, the cuts (a top_p of 0 keeps the likeliest alone),
 * and u, the one number a draw takes of rng. */
void slora_sampling_draw(const slora_sampling_t *sp, slora_rng_t *rng,
    slora_draw_t *dr);


#endif /* SLORA_SAMPLER_H */
