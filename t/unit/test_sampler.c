/*
 * test_sampler.c: greedy is the exact argmax (lowest id on ties, a NaN
 * never picked over a number); many
 * draws from a fixed logits row match softmax(l / T), restricted to the
 * top-k or top-p set and renormalized; the repetition penalty moves the
 * right logits; OpenAI's frequency and presence penalties take count *
 * frequency + presence off each generated token's logit and leave the
  * prompt's tokens alone; OpenAI's logit bias is added to its tokens'
 * logits before the penalties, and a row with one is not plain; a
 * token's rank counts the logits at least its own; the same seed gives
 * the same draws.
 */

#include <math.h>
#include <string.h>

#include "tap.h"
#include "slora_sampler.h"
#include "slora_score.h"


#define V       8
#define DRAWS   200000


static const float  base[V] = { 2.0f, 1.0f, 0.0f, 0.5f, -1.0f, 1.0f, 3.0f,
                                -2.0f };


static void draw(slora_sampler_t *s, const slora_sampling_t *sp,
    uint64_t seed, double *freq);
static double check(const double *freq, const double *want, const char *what);
static void softmax_cut(float t, int k, float p, double *want);
static void test_greedy(slora_sampler_t *s);
static void test_distributions(slora_sampler_t *s);
static void test_penalty(slora_sampler_t *s);
static void test_openai_penalties(slora_sampler_t *s);
static void test_logit_bias(slora_sampler_t *s);
static void test_allowed(slora_sampler_t *s);
static void test_bad_words(slora_sampler_t *s);
static void test_logprobs(void);
static void test_ranks(void);
static void test_seed(slora_sampler_t *s);


int
main(void)
{
    slora_err_t       err;
    slora_sampler_t  *s;

    s = slora_sampler_create(V, &err);
    if (s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    test_greedy(s);
    test_distributions(s);
    test_penalty(s);
    test_openai_penalties(s);
    test_logit_bias(s);
    test_allowed(s);
    test_bad_words(s);
    test_logprobs();
    test_seed(s);

    slora_sampler_free(s);

    return done_testing();
}


static void
test_greedy(slora_sampler_t *s)
{
    int               k;
    float             l[V];
    slora_rng_t       rng;
    slora_sampling_t  sp = { .top_p = 1, .repeat_penalty = 1,
                             .max_tokens = 1 };

    slora_rng_seed(&rng, 1);

    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 6, "greedy: argmax");

    memcpy(l, base, sizeof(l));
    l[2] = 3.0f;
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 2,
           "greedy: tie goes to the lowest id");

    memcpy(l, base, sizeof(l));
    l[7] = 3.0001f;
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 7,
           "greedy: last id when it is the largest");

    /* a NaN logit is never the pick where the row has a number, first
     * in the row or not, as a draw never takes one */
    memcpy(l, base, sizeof(l));
    l[0] = NAN;
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 6,
           "greedy: a NaN at id 0 is passed over for the argmax");
    l[6] = NAN;
    l[7] = -INFINITY;
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 1,
           "greedy: the lowest id of the largest number among NaNs");

    /* a temperature too small to divide by (1e-40's inverse overflows
     * float) is greedy, whatever the logits' signs */
    for (k = 0; k < V; k++) {
        l[k] = base[k] - 10;
    }

    sp.temperature = 1e-40f;
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 6,
           "a temperature of 1e-40 is greedy (every logit negative)");
    sp.temperature = 1e-6f;
    ok(slora_sampling_greedy(&sp), "a temperature of 1e-6 is greedy");
    sp.temperature = 1e-4f;
    ok(!slora_sampling_greedy(&sp), "one of 1e-4 is sampled");
}


static void
test_distributions(slora_sampler_t *s)
{
    double            freq[V], want[V];
    slora_sampling_t  sp = { .temperature = 1, .top_p = 1,
                             .repeat_penalty = 1, .max_tokens = 1 };

    draw(s, &sp, 7, freq);
    softmax_cut(1, 0, 1, want);
    check(freq, want, "T=1");

    sp.temperature = 0.5f;
    draw(s, &sp, 8, freq);
    softmax_cut(0.5f, 0, 1, want);
    check(freq, want, "T=0.5");

    sp.temperature = 2;
    draw(s, &sp, 9, freq);
    softmax_cut(2, 0, 1, want);
    check(freq, want, "T=2");

    sp.temperature = 1;
    sp.top_k = 3;
    draw(s, &sp, 10, freq);
    softmax_cut(1, 3, 1, want);
    check(freq, want, "top-k 3 (ids 6, 0, then 1 before its tie 5)");
    ok(freq[5] == 0 && freq[3] == 0, "top-k 3: nothing outside the set");

    /* softmax(base): 6: .574, 0: .211, 1 and 5: .078 each, 3: .047 ... */
    sp.top_k = 0;
    sp.top_p = 0.8f;
    draw(s, &sp, 11, freq);
    softmax_cut(1, 0, 0.8f, want);
    check(freq, want, "top-p 0.8 keeps 6, 0, 1");

    sp.top_p = 0.5f;
    draw(s, &sp, 12, freq);
    is_int((long long) (freq[6] * DRAWS), DRAWS,
           "top-p 0.5: only the top token (its mass .57 >= .5)");

    sp.top_k = 5;
    sp.top_p = 0.95f;
    draw(s, &sp, 13, freq);
    softmax_cut(1, 5, 0.95f, want);
    check(freq, want, "top-k 5 then top-p 0.95");

    /* a top_p the API takes (in (0, 1]) but too small for a float, 1e-50,
     * comes here as 0: the likeliest alone, the narrowest cut, never the
     * whole row */
    sp.top_k = 0;
    sp.top_p = (float) 1e-50;
    draw(s, &sp, 14, freq);
    ok(freq[6] > 1 - 0.5 / DRAWS, "top-p 1e-50 (0 as a float): only the "
       "top token (%g of the draws)", freq[6]);
}


static void
test_penalty(slora_sampler_t *s)
{
    float             l[V];
    int32_t           hist[] = { 6, 6, 4, 99, -1 };
    slora_rng_t       rng;
    slora_sampling_t  sp = { .top_p = 1, .repeat_penalty = 2,
                             .max_tokens = 1 };

    slora_rng_seed(&rng, 1);

    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, hist, 5, 0), 0,
           "penalty 2 on 6 (3 -> 1.5): argmax moves to id 0 (2.0)");
    ok(l[6] == 1.5f, "positive logit divided once, though 6 came twice");
    ok(l[4] == -2.0f, "negative logit multiplied");
    ok(l[1] == 1.0f && l[0] == 2.0f, "unseen logits untouched");

    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, hist, 0, 0), 6,
           "empty history: no penalty");

    sp.repeat_penalty = 0;
    memcpy(l, base, sizeof(l));
    ok(slora_sample(s, &sp, &rng, l, hist, 5, 0) == 6
       && memcmp(l, base, sizeof(l)) == 0,
       "penalty 0 is off: logits untouched, argmax 6");
}


/*
 * Prompt 6, 6, 2; generated 6, 2, 2, 6, 6 and one id outside the
 * vocabulary. Frequency 0.5: 6 (3 times generated) loses 1.5, 2 (twice)
 * 1.0; presence 0.25 takes 0.25 more off each; the prompt's copies count
 * for nothing, and nothing else moves. A negative penalty raises.
 */
static void
test_openai_penalties(slora_sampler_t *s)
{
    int               i, others;
    float             l[V];
    int32_t           hist[] = { 6, 6, 2, 6, 2, 2, 6, 6, 99 };
    slora_rng_t       rng;
    slora_sampling_t  sp = { .top_p = 1, .repeat_penalty = 1,
                             .max_tokens = 1,
                             .frequency_penalty = 0.5f,
                             .presence_penalty = 0.25f };

    slora_rng_seed(&rng, 1);

    ok(!slora_sampling_plain(&sp) && !slora_sampling_greedy(&sp),
       "frequency or presence penalty: neither plain nor greedy");

    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, hist, 9, 3), 0,
           "6 (3.0 - 1.5 - 0.25) falls below 0 (2.0): argmax 0");
    ok(l[6] == 3.0f - 1.5f - 0.25f && l[2] == 0.0f - 1.0f - 0.25f,
       "6 and 2 lose count * 0.5 + 0.25 (%g, %g)", (double) l[6],
       (double) l[2]);
    others = 0;
    for (i = 0; i < V; i++) {
        others += i != 6 && i != 2 && l[i] != base[i];
    }
    is_int(others, 0, "no other logit moves");

    memcpy(l, base, sizeof(l));
    slora_sample(s, &sp, &rng, l, hist, 3, 3);
    ok(memcmp(l, base, sizeof(l)) == 0,
       "nothing generated yet: the prompt's tokens are not penalized");

    memcpy(l, base, sizeof(l));
    slora_sample(s, &sp, &rng, l, hist, 9, 3);
    ok(l[6] == 3.0f - 1.5f - 0.25f,
       "the next call counts afresh (no count left over)");

    memcpy(l, base, sizeof(l));
    slora_sample(s, &sp, &rng, l, hist, 4, 3);
    ok(l[6] == 3.0f - 0.5f - 0.25f && l[2] == base[2],
       "one token generated: it alone is penalized (%g)", (double) l[6]);

    sp.frequency_penalty = 0;
    ok(!slora_sampling_plain(&sp), "a presence penalty alone: not plain");

    sp.frequency_penalty = -1.0f;
    sp.presence_penalty = 0;
    ok(!slora_sampling_plain(&sp), "a frequency penalty alone: not plain");
    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, hist, 9, 3), 6,
           "frequency -1: 6 rises to 6.0 and stays the argmax");
    ok(l[6] == 6.0f && l[2] == 2.0f, "a negative penalty raises: %g, %g",
       (double) l[6], (double) l[2]);

    sp.frequency_penalty = 0;
    sp.presence_penalty = 0;
    sp.repeat_penalty = 2;
    memcpy(l, base, sizeof(l));
    slora_sample(s, &sp, &rng, l, hist, 9, 3);
    ok(l[6] == 1.5f && l[2] == 0.0f,
       "the repetition penalty still reads the prompt too (6: 1.5)");
}


/*
 * The log-softmax in part: the likeliest first, the lower id first on a
 * tie (1.0 at ids 1 and 5), each id's logit less log(sum exp); over the
 * whole row the probabilities sum to 1; k 0 asks for the sum alone.
 */
static void
test_logit_bias(slora_sampler_t *s)
{
    int               i;
    float             l[V];
    double            freq[V], want[V], sum;
    int32_t           hist[1];
    slora_rng_t       rng;
    slora_sampling_t  sp = { .top_p = 1, .repeat_penalty = 1,
                             .max_tokens = 1 };

    slora_rng_seed(&rng, 3);

    sp.n_logit_bias = 2;
    sp.logit_bias_ids[0] = 4;
    sp.logit_bias[0] = 5;           /* -1 -> 4: above 6's 3 */
    sp.logit_bias_ids[1] = 1;
    sp.logit_bias[1] = -100;

    ok(!slora_sampling_plain(&sp) && !slora_sampling_greedy(&sp),
       "logit bias: neither plain nor greedy (the host samples it)");

    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 4,
           "logit bias +5 on token 4: greedy takes it");
    ok(l[4] == 4.0f && l[1] == -99.0f && l[6] == 3.0f,
       "logit bias: added to its tokens' logits, the others as they were");

    sp.logit_bias[0] = -100;
    memcpy(l, base, sizeof(l));
    sp.n_logit_bias = 1;
    sp.logit_bias_ids[0] = 6;
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 0,
           "logit bias -100 on the argmax: greedy takes the next");

    /* before the repetition penalty: (-1 + 5) / 2, not -1 * 2 + 5 */
    sp.logit_bias_ids[0] = 4;
    sp.logit_bias[0] = 5;
    sp.repeat_penalty = 2;
    hist[0] = 4;
    memcpy(l, base, sizeof(l));
    (void) slora_sample(s, &sp, &rng, l, hist, 1, 1);
    ok(l[4] == 2.0f, "logit bias: applied before the repetition penalty"
       " (got %g)", (double) l[4]);

    /* sampled: softmax(base + bias) */
    sp.repeat_penalty = 1;
    sp.temperature = 1;
    sp.logit_bias[0] = 3;
    draw(s, &sp, 21, freq);

    sum = 0;
    for (i = 0; i < V; i++) {
        want[i] = exp(base[i] + (i == 4 ? 3 : 0));
        sum += want[i];
    }
    for (i = 0; i < V; i++) {
        want[i] /= sum;
    }

    check(freq, want, "T=1 with +3 on token 4");
}


/*
 * vLLM's allowed_token_ids: greedy takes the likeliest of them, a draw
 * is softmax over them alone, the bias comes first, and where none of
 * them is left above -inf there is no token (-1).
 */
static void
test_allowed(slora_sampler_t *s)
{
    int               i;
    float             l[V];
    double            freq[V], want[V], sum;
    slora_rng_t       rng;
    slora_sampling_t  sp = { .top_p = 1, .repeat_penalty = 1,
                             .max_tokens = 1 };

    slora_rng_seed(&rng, 5);

    sp.n_allowed = 3;
    sp.allowed_ids[0] = 1;
    sp.allowed_ids[1] = 3;
    sp.allowed_ids[2] = 7;

    ok(!slora_sampling_plain(&sp) && !slora_sampling_greedy(&sp),
       "allowed_token_ids: neither plain nor greedy (the host samples it)");

    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 1,
           "allowed 1, 3, 7: greedy takes 1 (logit 1), not 6 (3)");
    ok(l[1] == 1.0f && l[3] == 0.5f && l[7] == -2.0f && isinf(l[6])
       && l[6] < 0 && isinf(l[0]) && l[0] < 0,
       "allowed: theirs as they were, the rest -inf");

    /* the bias first: +4 on 7 makes it the likeliest of them */
    sp.n_logit_bias = 1;
    sp.logit_bias_ids[0] = 7;
    sp.logit_bias[0] = 4;
    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 7,
           "allowed with a logit bias of +4 on 7: greedy takes 7");
    sp.n_logit_bias = 0;

    /* sampled: softmax over the allowed alone */
    sp.temperature = 1;
    draw(s, &sp, 23, freq);

    sum = 0;
    for (i = 0; i < V; i++) {
        want[i] = i == 1 || i == 3 || i == 7 ? exp(base[i]) : 0;
        sum += want[i];
    }
    for (i = 0; i < V; i++) {
        want[i] /= sum;
    }

    check(freq, want, "T=1 over allowed 1, 3, 7");
    sp.temperature = 0;

    /* none left: a stop id held back, the only one allowed */
    sp.n_allowed = 1;
    sp.allowed_ids[0] = 2;
    memcpy(l, base, sizeof(l));
    l[2] = -INFINITY;
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), -1,
           "allowed 2 alone, its logit -inf: no token (-1)");
}


/*
 * vLLM's bad_words as runs of tokens: a run of one is never drawn; a
 * longer run's last token is not drawn where the generated tokens (not
 * the prompt's) end in the rest of it.
 */
static void
test_bad_words(slora_sampler_t *s)
{
    float             l[V];
    int32_t           hist[2];
    slora_rng_t       rng;
    slora_sampling_t  sp = { .top_p = 1, .repeat_penalty = 1,
                             .max_tokens = 1 };

    slora_rng_seed(&rng, 7);

    /* runs: [6] and [2, 0] */
    sp.n_bad = 5;
    sp.bad_ids[0] = 1;
    sp.bad_ids[1] = 6;
    sp.bad_ids[2] = 2;
    sp.bad_ids[3] = 2;
    sp.bad_ids[4] = 0;

    ok(!slora_sampling_plain(&sp) && !slora_sampling_greedy(&sp),
       "bad_words: neither plain nor greedy (the host samples it)");

    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, NULL, 0, 0), 0,
           "bad run [6]: greedy takes the next likeliest, 0");

    hist[0] = 5;
    hist[1] = 2;
    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, hist, 2, 1), 1,
           "bad run [2, 0] after a generated 2: 0 banned too, greedy takes "
           "1 (tied with 5, the lower id)");
    ok(isinf(l[0]) && l[0] < 0 && isinf(l[6]) && l[5] == 1.0f,
       "bad runs: 0 and 6 -inf, the rest as they were");

    /* the 2 in the prompt does not count: [2, 0] holds back nothing */
    hist[0] = 2;
    memcpy(l, base, sizeof(l));
    is_int(slora_sample(s, &sp, &rng, l, hist, 1, 1), 0,
           "bad run [2, 0] after a prompt's 2: 0 drawn");
}


static void
test_logprobs(void)
{
    int       i;
    float     lp[V];
    double    lse, want, sum;
    int32_t   ids[V];

    static const float  tie[3] = { 3.0f, 1.0f, 1.0f };

    want = 0;
    for (i = 0; i < V; i++) {
        want += exp((double) base[i]);
    }
    want = log(want);

    /* the exponentials are slora_expf's (a float's, within an ulp),
     * summed in double: the log-probabilities go out as floats */
    lse = slora_score_row(base, V, 4, ids, lp);
    ok(fabs(lse - want) < 1e-7, "logprobs: log sum exp %.9f (want %.9f)",
       lse, want);
    ok(ids[0] == 6 && ids[1] == 0 && ids[2] == 1 && ids[3] == 5,
       "the 4 likeliest in order, ties by id: %d %d %d %d", ids[0], ids[1],
       ids[2], ids[3]);
    ok(lp[0] == (float) (3.0 - want) && lp[2] == (float) (1.0 - want)
       && lp[2] == lp[3], "each the logit less log sum exp");

    slora_score_row(base, V, V, ids, lp);
    sum = 0;
    for (i = 0; i < V; i++) {
        sum += exp((double) lp[i]);
    }
    ok(fabs(sum - 1) < 1e-6 && ids[V - 1] == 7 && ids[V - 2] == 4,
       "k = vocab: every id, probabilities summing to 1 (%.9f), least "
       "likely last", sum);

    ids[0] = -7;
    lse = slora_score_row(base, V, 0, ids, lp);
    ok(fabs(lse - want) < 1e-7 && ids[0] == -7,
       "k 0: the sum alone, no id written");

    lse = slora_score_row(base, V, 1, ids, lp);
    ok(ids[0] == 6, "k 1: the argmax");

    slora_score_row(base, V, 3, ids, lp);
    ok(ids[0] == 6 && ids[1] == 0 && ids[2] == 1,
       "k 3 ending on a tie (ids 1 and 5 at 1.0): the lower id is kept");

    slora_score_row(tie, 3, 2, ids, lp);
    ok(ids[0] == 0 && ids[1] == 1,
       "a later id equal to the last kept does not displace it");

    test_ranks();
}


/* A token's rank: the logits at least its own, itself and its ties
 * counted (vLLM's); a NaN logit has none. */
static void
test_ranks(void)
{
    int            i, right;
    float          nan_row[V];
    slora_score_t  out[V];

    static const int32_t  tok[V] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    static const int32_t  want[V] = { 2, 4, 6, 5, 7, 4, 1, 8 };

    memset(out, 0, sizeof(out));
    slora_score_rows(out, base, 0, V, tok, V, 2);

    right = 0;
    for (i = 0; i < V; i++) {
        right += out[i].rank == want[i];
    }

    ok(right == V, "ranks 2 4 6 5 7 4 1 8 of base's tokens (%d %d %d %d %d "
       "%d %d %d): ids 1 and 5 tied at 4", out[0].rank, out[1].rank,
       out[2].rank, out[3].rank, out[4].rank, out[5].rank, out[6].rank,
       out[7].rank);

    memcpy(nan_row, base, sizeof(nan_row));
    nan_row[2] = NAN;
    slora_score_rows(out, nan_row, 0, V, &tok[2], 1, 0);
    slora_score_rows(&out[1], nan_row, 0, V, &tok[6], 1, 0);
    ok(out[0].rank == 0 && out[1].rank == 1,
       "a NaN logit ranks 0, and a NaN elsewhere is not counted above the "
       "likeliest (%d, %d)", out[0].rank, out[1].rank);
}


static void
test_seed(slora_sampler_t *s)
{
    int               i, same, diff;
    float             l[V];
    int32_t           a[64], b[64], c[64];
    slora_rng_t       r1, r2, r3;
    slora_sampling_t  sp = { .temperature = 1.5f, .top_p = 1,
                             .repeat_penalty = 1, .max_tokens = 1 };

    slora_rng_seed(&r1, 42);
    slora_rng_seed(&r2, 42);
    slora_rng_seed(&r3, 43);

    for (i = 0; i < 64; i++) {
        memcpy(l, base, sizeof(l));
        a[i] = slora_sample(s, &sp, &r1, l, NULL, 0, 0);
        memcpy(l, base, sizeof(l));
        b[i] = slora_sample(s, &sp, &r2, l, NULL, 0, 0);
        memcpy(l, base, sizeof(l));
        c[i] = slora_sample(s, &sp, &r3, l, NULL, 0, 0);
    }

    same = memcmp(a, b, sizeof(a)) == 0;
    diff = memcmp(a, c, sizeof(a)) != 0;
    ok(same, "same seed, same 64 draws");
    ok(diff, "another seed, other draws");

    slora_rng_seed(&r1, 5);
    ok(slora_rng_uniform(&r1) < 1.0 && slora_rng_uniform(&r1) >= 0.0,
       "uniform in [0, 1)");
}


static void
draw(slora_sampler_t *s, const slora_sampling_t *sp, uint64_t seed,
    double *freq)
{
    int          i;
    float        l[V];
    int32_t      t;
    slora_rng_t  rng;

    slora_rng_seed(&rng, seed);
    memset(freq, 0, V * sizeof(double));

    for (i = 0; i < DRAWS; i++) {
        memcpy(l, base, sizeof(l));
        t = slora_sample(s, sp, &rng, l, NULL, 0, 0);
        if (t < 0 || t >= V) {
            BAIL_OUT("token %d out of range", t);
        }
        freq[t] += 1.0 / DRAWS;
    }
}


/* softmax(base / t) over the top k (ties by id), then the top-p prefix */
static void
softmax_cut(float t, int k, float p, double *want)
{
    int     i, j, order[V], keep, tmp;
    double  sum, cum;

    for (i = 0; i < V; i++) {
        order[i] = i;
    }
    for (i = 0; i < V; i++) {
        for (j = i + 1; j < V; j++) {
            if (base[order[j]] > base[order[i]]
                || (base[order[j]] == base[order[i]] && order[j] < order[i]))
            {
                tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
        }
    }

    keep = k > 0 ? k : V;
    sum = 0;
    for (i = 0; i < keep; i++) {
        sum += exp(base[order[i]] / t);
    }

    if (p < 1) {
        cum = 0;
        for (i = 0; i < keep; i++) {
            cum += exp(base[order[i]] / t) / sum;
            if (cum >= p) {
                break;
            }
        }
        keep = i + 1;
        sum *= cum;
    }

    memset(want, 0, V * sizeof(double));
    for (i = 0; i < keep; i++) {
        want[order[i]] = exp(base[order[i]] / t) / sum;
    }
}


static double
check(const double *freq, const double *want, const char *what)
{
    int     i, bad;
    double  sigma, worst, z;

    bad = 0;
    worst = 0;
    for (i = 0; i < V; i++) {
        sigma = sqrt(want[i] * (1 - want[i]) / DRAWS);
        if (want[i] == 0) {
            bad += freq[i] != 0;
            continue;
        }
        z = fabs(freq[i] - want[i]) / sigma;
        worst = z > worst ? z : worst;
        bad += z > 5;
    }

    ok(bad == 0, "%s: %d draws match the distribution (worst %.2f sigma)",
       what, DRAWS, worst);
    if (bad) {
        for (i = 0; i < V; i++) {
            diag("id %d: got %.4f want %.4f", i, freq[i], want[i]);
        }
    }

    return worst;
}
