/*
 * slora_sampler.c: token sampling. The order follows llama.cpp's common
 * chain, OpenAI's logit bias first: the bias, vLLM's bad_words and
 * allowed_token_ids, repetition penalty, frequency and presence
 * penalties, then greedy or temperature, min-p (vLLM's: before top-k),
 * top-k, softmax, top-p, one uniform draw; the draw itself is the
 * kernel family's (kernels/slora_sample.h), which the GPU does to the
 * same token.
 *
 * The one idea: each request has its own generator, seeded from its
 * seed, and a draw takes one number of it, so the result depends on the
 * seed alone, whatever else shares the batch.
 */

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slora_sampler.h"
#include "slora_argmax.h"
#include "slora_sample.h"


struct slora_sampler_s {
    int32_t        vocab;
    void          *scratch;     /* slora_sample_row's */
    uint8_t       *seen;        /* [vocab] repetition penalty marks */
    int32_t       *count;       /* [vocab] generated tokens, for OpenAI's
                                   penalties; all 0 between calls */
};


static uint64_t slora_splitmix64(uint64_t *x);
static int32_t slora_sampler_argmax(const float *logits, int32_t vocab);
static int32_t slora_sampler_allow(const slora_sampling_t *sp, float *logits,
    int32_t vocab);
static void slora_sampler_ban(const slora_sampling_t *sp, float *logits,
    const int32_t *out, int32_t n_out);
static void slora_sampler_penalize(slora_sampler_t *s, float penalty,
    float *logits, const int32_t *history, int32_t n);
static void slora_sampler_penalize_counts(slora_sampler_t *s,
    const slora_sampling_t *sp, float *logits, const int32_t *generated,
    int32_t n);


void
slora_rng_seed(slora_rng_t *rng, uint64_t seed)
{
    int  i;

    for (i = 0; i < 4; i++) {
        rng->s[i] = slora_splitmix64(&seed);
    }
}


uint64_t
slora_rng_next(slora_rng_t *rng)
{
    uint64_t  *s, r, t;

    s = rng->s;
    r = s[1] * 5;
    r = ((r << 7) | (r >> 57)) * 9;
    t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);

    return r;
}


double
slora_rng_uniform(slora_rng_t *rng)
{
    return (double) (slora_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}


slora_sampler_t *
slora_sampler_create(int32_t vocab, slora_err_t *err)
{
    slora_sampler_t  *s;

    if (vocab <= 0) {
        slora_err_set(err, SLORA_ERROR, "sampler: vocab %d", vocab);
        return NULL;
    }

    s = calloc(1, sizeof(slora_sampler_t));
    if (s == NULL) {
        slora_err_set(err, SLORA_ERROR, "sampler: out of memory");
        return NULL;
    }

    s->vocab = vocab;
    s->scratch = malloc(slora_sample_scratch_size(vocab));
    s->seen = calloc((size_t) vocab, 1);
    s->count = calloc((size_t) vocab, sizeof(int32_t));

    if (s->scratch == NULL || s->seen == NULL || s->count == NULL) {
        slora_sampler_free(s);
        slora_err_set(err, SLORA_ERROR, "sampler: out of memory");
        return NULL;
    }

    return s;
}


void
slora_sampler_free(slora_sampler_t *s)
{
    if (s == NULL) {
        return;
    }

    free(s->scratch);
    free(s->seen);
    free(s->count);
    free(s);
}


int
slora_sampling_greedy(const slora_sampling_t *sp)
{
    return sp->temperature < SLORA_SAMPLING_EPS && slora_sampling_plain(sp);
}


int32_t
slora_sample(slora_sampler_t *s, const slora_sampling_t *sp,
    slora_rng_t *rng, float *logits, const int32_t *history, int32_t n,
    int32_t n_prompt)
{
    int32_t       k;
    slora_draw_t  dr;

    for (k = 0; k < sp->n_logit_bias; k++) {
        logits[sp->logit_bias_ids[k]] += sp->logit_bias[k];
    }

    if (sp->n_bad > 0) {
        slora_sampler_ban(sp, logits, history != NULL ? history + n_prompt
                                                      : NULL,
                          history != NULL && n_prompt >= 0 && n_prompt <= n
                          ? n - n_prompt : 0);
    }

    if (sp->n_allowed > 0 && slora_sampler_allow(sp, logits, s->vocab) == 0)
    {
        return -1;
    }

    if (sp->repeat_penalty > 0 && sp->repeat_penalty != 1.0f) {
        slora_sampler_penalize(s, sp->repeat_penalty, logits, history, n);
    }

    if ((sp->frequency_penalty != 0 || sp->presence_penalty != 0)
        && n_prompt >= 0 && n_prompt < n)
    {
        slora_sampler_penalize_counts(s, sp, logits, history + n_prompt,
                                      n - n_prompt);
    }

    if (sp->temperature < SLORA_SAMPLING_EPS) {
        return slora_sampler_argmax(logits, s->vocab);
    }

    slora_sampling_draw(sp, rng, &dr);

    return slora_sample_row(logits, s->vocab, &dr, s->scratch);
}


int
slora_sampling_plain(const slora_sampling_t *sp)
{
    return (sp->repeat_penalty <= 0 || sp->repeat_penalty == 1.0f)
           && sp->frequency_penalty == 0 && sp->presence_penalty == 0
           && sp->n_logit_bias == 0 && sp->n_allowed == 0 && sp->n_bad == 0
           && !sp->json;
}


/* bad_ids' runs against the output so far, out[n_out]: each run's last
 * token -inf where the output ends in the rest of the run */
static void
slora_sampler_ban(const slora_sampling_t *sp, float *logits,
    const int32_t *out, int32_t n_out)
{
    int32_t         k, len;
    const int32_t  *run;

    for (k = 0; k < sp->n_bad; k += 1 + len) {
        len = sp->bad_ids[k];
        run = sp->bad_ids + k + 1;

        if (len - 1 <= n_out
            && (len == 1
                || memcmp(out + n_out - (len - 1), run,
                          (size_t) (len - 1) * sizeof(int32_t)) == 0))
        {
            logits[run[len - 1]] = -INFINITY;
        }
    }
}


/* Every logit but allowed_token_ids' -inf; how many of theirs are above
 * it (a logit masked before, a stop id held back, stays out). */
static int32_t
slora_sampler_allow(const slora_sampling_t *sp, float *logits, int32_t vocab)
{
    float    keep[SLORA_ALLOWED_MAX];
    int32_t  k, i, n;

    for (k = 0; k < sp->n_allowed; k++) {
        keep[k] = logits[sp->allowed_ids[k]];
    }

    for (i = 0; i < vocab; i++) {
        logits[i] = -INFINITY;
    }

    n = 0;

    for (k = 0; k < sp->n_allowed; k++) {
        logits[sp->allowed_ids[k]] = keep[k];
        n += keep[k] > -INFINITY;
    }

    return n;
}


void
slora_sampling_draw(const slora_sampling_t *sp, slora_rng_t *rng,
    slora_draw_t *dr)
{
    memset(dr, 0, sizeof(slora_draw_t));

    if (sp->temperature < SLORA_SAMPLING_EPS) {
        return;
    }

    dr->inv_temp = 1.0f / sp->temperature;
    dr->top_k = sp->top_k;

    /* a top_p of 0 (one too small for a float) is the narrowest cut,
     * the likeliest alone, where the draw reads 0 as off */
    dr->top_p = sp->top_p > 0.0f ? sp->top_p : FLT_MIN;
    dr->min_p = sp->min_p;
    dr->u = slora_rng_uniform(rng);
}


static uint64_t
slora_splitmix64(uint64_t *x)
{
    uint64_t  z;

    z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static void
slora_sampler_penalize(slora_sampler_t *s, float penalty, float *logits,
    const int32_t *history, int32_t n)
{
    int32_t  i, t;

    for (i = 0; i < n; i++) {
        t = history[i];
        if (t < 0 || t >= s->vocab || s->seen[t]) {
            continue;
        }

        s->seen[t] = 1;
        logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
    }

    for (i = 0; i < n; i++) {
        t = history[i];
        if (t >= 0 && t < s->vocab) {
            s->seen[t] = 0;
        }
    }
}


/* OpenAI's penalties: each distinct generated token's logit loses
 * count * frequency_penalty + presence_penalty, once. */
static void
slora_sampler_penalize_counts(slora_sampler_t *s, const slora_sampling_t *sp,
    float *logits, const int32_t *generated, int32_t n)
{
    int32_t  i, t;

    for (i = 0; i < n; i++) {
        t = generated[i];
        if (t >= 0 && t < s->vocab) {
            s->count[t]++;
        }
    }

    for (i = 0; i < n; i++) {
        t = generated[i];
        if (t < 0 || t >= s->vocab || s->count[t] == 0) {
            continue;
        }

        logits[t] -= (float) s->count[t] * sp->frequency_penalty
                     + sp->presence_penalty;
        s->count[t] = 0;
    }
}


static int32_t
slora_sampler_argmax(const float *logits, int32_t vocab)
{
    int32_t  best;

    slora_argmax_rows(&best, logits, vocab, 1, vocab);

    return best;
}
