/*
 * slora_sampler.c: token sampling. The order follows llama.cpp's common
 * chain: repetition penalty, then greedy or temperature, top-k, softmax,
 * top-p, one uniform draw.
 *
 * The one idea: candidates are ordered by logit and then by id, so every
 * cut (top-k, top-p) and every tie is decided the same way on every run;
 * with the request's own generator the result depends on the seed alone.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slora_sampler.h"
#include "slora_argmax.h"


typedef struct {
    float        logit;
    int32_t      id;
} slora_cand_t;


struct slora_sampler_s {
    int32_t        vocab;
    slora_cand_t  *cand;        /* [vocab] */
    float         *prob;        /* [vocab] */
    uint8_t       *seen;        /* [vocab] repetition penalty marks */
};


static uint64_t slora_splitmix64(uint64_t *x);
static int slora_sampler_cmp(const void *a, const void *b);
static int32_t slora_sampler_argmax(const float *logits, int32_t vocab);
static void slora_sampler_penalize(slora_sampler_t *s, float penalty,
    float *logits, const int32_t *history, int32_t n);


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
    s->cand = malloc((size_t) vocab * sizeof(slora_cand_t));
    s->prob = malloc((size_t) vocab * sizeof(float));
    s->seen = calloc((size_t) vocab, 1);

    if (s->cand == NULL || s->prob == NULL || s->seen == NULL) {
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

    free(s->cand);
    free(s->prob);
    free(s->seen);
    free(s);
}


int
slora_sampling_greedy(const slora_sampling_t *sp)
{
    return sp->temperature <= 0
           && (sp->repeat_penalty <= 0 || sp->repeat_penalty == 1.0f);
}


int32_t
slora_sample(slora_sampler_t *s, const slora_sampling_t *sp,
    slora_rng_t *rng, float *logits, const int32_t *history, int32_t n)
{
    int32_t  i, k, vocab;
    double   sum, cum, u;
    float    inv_t, max;

    vocab = s->vocab;

    if (sp->repeat_penalty > 0 && sp->repeat_penalty != 1.0f) {
        slora_sampler_penalize(s, sp->repeat_penalty, logits, history, n);
    }

    if (sp->temperature <= 0) {
        return slora_sampler_argmax(logits, vocab);
    }

    inv_t = 1.0f / sp->temperature;
    for (i = 0; i < vocab; i++) {
        s->cand[i].id = i;
        s->cand[i].logit = logits[i] * inv_t;
    }

    k = vocab;

    if ((sp->top_k > 0 && sp->top_k < vocab)
        || (sp->top_p > 0 && sp->top_p < 1))
    {
        qsort(s->cand, (size_t) vocab, sizeof(slora_cand_t),
              slora_sampler_cmp);

        if (sp->top_k > 0 && sp->top_k < vocab) {
            k = sp->top_k;
        }
    }

    max = -INFINITY;
    for (i = 0; i < k; i++) {
        if (s->cand[i].logit > max) {
            max = s->cand[i].logit;
        }
    }

    if (max == -INFINITY) {
        return slora_sampler_argmax(logits, vocab);
    }

    sum = 0;
    for (i = 0; i < k; i++) {
        s->prob[i] = expf(s->cand[i].logit - max);
        sum += s->prob[i];
    }

    if (sp->top_p > 0 && sp->top_p < 1) {
        /* the smallest prefix whose mass reaches top_p */
        cum = 0;
        for (i = 0; i < k; i++) {
            cum += s->prob[i];
            if (cum >= sp->top_p * sum) {
                k = i + 1;
                break;
            }
        }

        sum = cum;
    }

    u = slora_rng_uniform(rng) * sum;

    cum = 0;
    for (i = 0; i < k - 1; i++) {
        cum += s->prob[i];
        if (u < cum) {
            break;
        }
    }

    return s->cand[i].id;
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


static int
slora_sampler_cmp(const void *a, const void *b)
{
    const slora_cand_t  *x, *y;

    x = a;
    y = b;

    if (x->logit != y->logit) {
        return x->logit > y->logit ? -1 : 1;
    }

    return x->id < y->id ? -1 : (x->id > y->id);
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


static int32_t
slora_sampler_argmax(const float *logits, int32_t vocab)
{
    int32_t  best;

    slora_argmax_rows(&best, logits, vocab, 1, vocab);

    return best;
}
