/*
 * test_sample.c: the draw's kernel family on the CPU (kernels/
 * slora_sample.h): the integer weights follow exp() within their round
 * down and are monotonic, the keys order by scaled logit then id, and a
 * grid of u lands on each kept id as often as its weight says (to within
 * two), with the min-p, top-k and top-p cuts where the definitions put
 * them;
 * and on rows of 49152 logits, the cuts the kernel finds by selection
 * equal those of a full sort written out here; every instruction set
 * this CPU has gives the portable weights' bits (the AVX2 ones), on
 * ordinary logits and on the edges (-27.8, -inf, NaN, the maximum), and
 * the portable sum of exponentials' bits, which is libm's sum to 1e-7;
 * and a log-softmax's shift and top alternatives (slora_sample_top_isa)
 * as a full sort gives them, the same from every instruction set, ties,
 * -inf and NaN among the logits.
 *
 * The one idea: the GPU twin is checked against this one to the token
 * (t/kernels/test_sample_cuda.cu); here it is checked against the
 * definitions, with no randomness, so every count is known.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "slora_sample.h"
#include "slora_qmatmul.h"


#define V     10
#define GRID  100000


static const float  row[V] = { 1.0f, 2.5f, -1.0f, 2.5f, 0.0f, 3.0f, NAN,
                               -INFINITY, 1.5f, -30.0f };


static void test_weight(void);
static void test_key(void);
static void test_target(void);
static void test_edges(void);
static void test_draws(void);
static void counts(const slora_draw_t *dr, int64_t *n);
static void test_large(void);
static void test_weights_isa(void);
static void test_top_isa(void);
static uint64_t ref_weight(const float *r, int32_t i,
    const slora_draw_t *dr, float max);
static int32_t sorted_draw(const float *r, int32_t vocab,
    const slora_draw_t *dr);


int
main(void)
{
    test_weight();
    test_key();
    test_target();
    test_edges();
    test_draws();
    test_large();
    test_weights_isa();
    test_top_isa();

    return done_testing();
}


static void
test_weight(void)
{
    double    worst, e;
    uint64_t  last, w;
    float     d;
    int       mono;

    ok(slora_sample_weight(0.0f) == ((uint64_t) 1 << 40), "weight(0) = 2^40");
    ok(slora_sample_weight(-27.9f) == 0 && slora_sample_weight(-INFINITY) == 0
       && slora_sample_weight(NAN) == 0, "nothing below 2^-40, -inf, NaN");

    worst = 0;
    mono = 1;
    last = 0;

    for (d = -27.0f; d <= 0.0f; d += 0.00123f) {
        w = slora_sample_weight(d);
        /* round down: off by less than 1, plus the exp's own error */
        e = (fabs((double) w - ldexp(exp((double) d), 40)) - 1.0)
            / ldexp(exp((double) d), 40);
        worst = e > worst ? e : worst;
        mono &= w >= last;
        last = w;
    }

    ok(worst < 1e-12, "weights within 1 + %.1e of exp(d) 2^40 over "
       "[-27, 0]", worst);
    ok(mono, "weights never fall as d grows");
}


static void
test_key(void)
{
    ok(slora_sample_key(1.0f, 5) > slora_sample_key(0.5f, 0),
       "a larger logit comes first");
    ok(slora_sample_key(1.0f, 3) > slora_sample_key(1.0f, 4),
       "on a tie, the lower id comes first");
    ok(slora_sample_key(-1.0f, 0) > slora_sample_key(-2.0f, 0)
       && slora_sample_key(0.0f, 0) > slora_sample_key(-0.5f, 0)
       && slora_sample_key(-1e30f, 0) > slora_sample_key(-INFINITY, 0),
       "negative logits order too");
    ok(slora_sample_key(NAN, 2) == slora_sample_key(-INFINITY, 2),
       "NaN counts as -inf");
    ok(slora_sample_key(-0.0f, 0) > slora_sample_key(0.0f, 1)
       && slora_sample_key(0.0f, 0) > slora_sample_key(-0.0f, 1),
       "-0 and +0 are one logit: the lower id first, whatever the sign");
}


/* The edges of a cut: top-p's share reached exactly by the first of two
 * equal tokens keeps that one alone; a u of 0 draws the first kept id,
 * not an id before it that the cut left out; a scaled logit of +inf
 * draws the argmax, not the last id. */
static void
test_edges(void)
{
    int           i, same;
    float         tiny = 1e-40f;
    float         r[4] = { 5.0f, 5.0f, -100.0f, -100.0f };
    float         r2[3] = { 1.0f, 3.0f, 2.0f };
    double        us[4] = { 0.0, 0.3, 0.6, 0.999 };
    void         *scratch;
    slora_draw_t  dr;

    scratch = malloc(slora_sample_scratch_size(4));
    if (scratch == NULL) {
        BAIL_OUT("no memory");
    }

    memset(&dr, 0, sizeof(dr));
    dr.inv_temp = 1.0f;
    dr.top_p = 0.5f;
    same = 0;
    for (i = 0; i < 4; i++) {
        dr.u = us[i];
        same += slora_sample_row(r, 4, &dr, scratch) == 0;
    }
    is_int(same, 4, "top-p 0.5 over two equal tokens keeps the first only");

    memset(&dr, 0, sizeof(dr));
    dr.inv_temp = 1.0f;
    dr.top_k = 1;
    dr.u = 0.0;
    is_int(slora_sample_row(r2, 3, &dr, scratch), 1,
           "top-k 1 with u 0: the kept id, not id 0 before it");

    /* -0 and +0 tie (a negative logit times a tiny 1 / temperature
     * gives -0): top-k 1 keeps the lower id, as on any tie */
    r[0] = -0.0f;
    r[1] = 0.0f;
    r[2] = -1.0f;
    dr.u = 0.999;
    is_int(slora_sample_row(r, 3, &dr, scratch), 0,
           "top-k 1 over -0 and +0 keeps the lower id, -0's");
    r[0] = 5.0f;
    r[1] = 5.0f;
    r[2] = -100.0f;

    /* a scaled logit of +inf: a temperature whose inverse overflows
     * (1e-40 is a float subnormal) or a logit that did; every weight is
     * inf - inf, NaN, so the draw is the row's argmax, as the GPU's
     * leaves it, with or without cuts */
    same = 0;
    for (i = 0; i < 4; i++) {
        memset(&dr, 0, sizeof(dr));
        dr.inv_temp = 1.0f / tiny;
        dr.top_k = i & 1 ? 2 : 0;
        dr.top_p = i & 2 ? 0.5f : 0.0f;
        dr.u = us[i];
        same += slora_sample_row(r2, 3, &dr, scratch) == 1;

        r[1] = INFINITY;
        r[3] = INFINITY;
        dr.inv_temp = 1.0f;
        same += slora_sample_row(r, 4, &dr, scratch) == 1;
        r[1] = 5.0f;
        r[3] = -100.0f;
    }
    is_int(same, 8, "a scaled logit of +inf: the argmax, cut or not");

    free(scratch);
}


static void
test_target(void)
{
    uint64_t  big;

    big = (uint64_t) 1 << 52;

    ok(slora_sample_target(0.0, 10) == 0
       && slora_sample_target(0.55, 10) == 5
       && slora_sample_target(0.999999, 10) == 9,
       "u in [0, 1) falls in its tenth of a weight of 10");
    ok(slora_sample_target(0.5, big) == big / 2
       && slora_sample_target(nextafter(1.0, 0.0), big) == big - 1,
       "and of a weight of 2^52");
    ok(slora_sample_target(1.0, 10) == 9
       && slora_sample_target(1e30, 10) == 9
       && slora_sample_target(INFINITY, 10) == 9,
       "a u of 1 or past it takes the last: no cast past uint64_t's range");
    ok(slora_sample_target(-0.5, 10) == 0
       && slora_sample_target(-1e30, 10) == 0
       && slora_sample_target(NAN, 10) == 0,
       "a negative or NaN u takes the first");
}


/*
 * u = (j + 0.5) / GRID for every j: id i gets the u's of its slice of the
 * kept weight, so its count is GRID w_i / W to within one.
 */
static void
test_draws(void)
{
    slora_draw_t  dr;
    int64_t       n[V];
    double        w[V], sum;
    int           i, exact;
    double        kept[2];

    memset(&dr, 0, sizeof(dr));

    /* no cut, T = 1 */
    dr.inv_temp = 1.0f;
    counts(&dr, n);
    sum = 0;
    for (i = 0; i < V; i++) {
        w[i] = (double) slora_sample_weight(row[i] - 3.0f);
        sum += w[i];
    }
    exact = 1;
    for (i = 0; i < V; i++) {
        exact &= fabs((double) n[i] - GRID * w[i] / sum) <= 2.0;
    }
    ok(exact, "no cut: every id drawn in proportion to its weight");
    ok(n[6] == 0 && n[7] == 0, "NaN and -inf never drawn");
    is_int(n[9], 0, "a logit 33 under the top (weight 0) never drawn");

    /* top-k 3: 5 (3.0), then 1 and 3 tie at 2.5; 8 (1.5) is out */
    dr.top_k = 3;
    counts(&dr, n);
    ok(n[5] > 0 && n[1] > 0 && n[3] > 0
       && n[0] + n[2] + n[4] + n[8] + n[9] == 0,
       "top-k 3 keeps 5, 1 and 3, nothing else");
    ok(fabs((double) n[1] - n[3]) <= 2.0, "the tie at 2.5 is drawn evenly");

    /* top-k 2: the tie at 2.5 goes to the lower id */
    dr.top_k = 2;
    counts(&dr, n);
    ok(n[5] > 0 && n[1] > 0 && n[3] == 0, "top-k 2 keeps 5 and 1, not 3");

    /* top-p: 5 weighs e^0 = 1, 1 and 3 weigh e^-0.5 each; of the whole
     * (about 2.64), 5 alone is 0.38, 5 and 1 0.61 */
    dr.top_k = 0;
    dr.top_p = 0.5f;
    counts(&dr, n);
    ok(n[5] > 0 && n[1] > 0 && n[3] == 0 && n[8] == 0,
       "top-p 0.5 keeps 5 and 1: the shortest prefix reaching half");
    kept[0] = (double) slora_sample_weight(0.0f);
    kept[1] = (double) slora_sample_weight(-0.5f);
    ok(fabs((double) n[5] - GRID * kept[0] / (kept[0] + kept[1])) <= 2.0,
       "... renormalized over the two");

    dr.top_p = 0.3f;
    counts(&dr, n);
    is_int(n[5], GRID, "top-p 0.3: the top token alone");

    /* min-p: 1 and 3 weigh 0.61 of 5, 8 0.22, 0 0.14 */
    dr.top_p = 0;
    dr.min_p = 0.5f;
    counts(&dr, n);
    ok(n[5] > 0 && n[1] > 0 && n[3] > 0
       && n[0] + n[2] + n[4] + n[8] + n[9] == 0,
       "min-p 0.5 keeps 5, 1 and 3, nothing else");
    ok(fabs((double) n[5] - GRID * kept[0] / (kept[0] + 2 * kept[1]))
       <= 2.0, "... renormalized over the three");
    dr.min_p = 0.2f;
    counts(&dr, n);
    ok(n[8] > 0 && n[0] == 0, "min-p 0.2 keeps 8 (0.22), not 0 (0.14)");
    dr.min_p = 1.0f;
    counts(&dr, n);
    is_int(n[5], GRID, "min-p 1: the top token alone");
    dr.min_p = 0.5f;
    dr.top_k = 2;
    counts(&dr, n);
    ok(n[5] > 0 && n[1] > 0 && n[3] == 0, "min-p 0.5 and top-k 2: 5 and 1");
    dr.top_k = 0;
    dr.min_p = 0;

    /* temperature: T = 0.5 doubles every gap */
    dr.top_p = 0;
    dr.inv_temp = 2.0f;
    counts(&dr, n);
    ok(fabs((double) n[5] / n[1]
            - (double) slora_sample_weight(0.0f)
              / (double) slora_sample_weight(-1.0f)) < 1e-3,
       "T 0.5: 5 against 1 is e^1, not e^0.5");

    /* all -inf */
    {
        float     dead[3] = { -INFINITY, NAN, -INFINITY };
        uint64_t  scratch[3 * 3];

        dr.inv_temp = 1.0f;
        dr.u = 0.7;
        is_int(slora_sample_row(dead, 3, &dr, scratch), 0,
               "a row of -inf and NaN gives id 0");
    }
}


static void
counts(const slora_draw_t *dr, int64_t *n)
{
    slora_draw_t  d;
    void         *scratch;
    int32_t       j, t;

    scratch = malloc(slora_sample_scratch_size(V));
    if (scratch == NULL) {
        BAIL_OUT("no memory");
    }

    d = *dr;
    memset(n, 0, V * sizeof(int64_t));

    for (j = 0; j < GRID; j++) {
        d.u = (j + 0.5) / GRID;
        t = slora_sample_row(row, V, &d, scratch);

        if (t < 0 || t >= V) {
            BAIL_OUT("id %d", t);
        }

        n[t]++;
    }

    free(scratch);
}


/*
 * Rows of SmolLM2's vocabulary, logits spread so that top-p's share
 * takes from a few ids to thousands, every mix of cuts, a u each:
 * slora_sample_row's id against sorted_draw's.
 */
static void
test_large(void)
{
    static const int32_t  ks[] = { 0, 1, 40, 1000 };
    static const float    ps[] = { 1.0f, 0.5f, 0.95f, 0.999f };
    static const float    ms[] = { 0.0f, 0.05f, 0.3f };

    int32_t        vocab, r, i, ki, pi, mi, same, n;
    float         *lg, spread;
    void          *scratch;
    slora_draw_t   dr;
    uint64_t       z;

    vocab = 49152;
    lg = malloc((size_t) vocab * sizeof(float));
    scratch = malloc(slora_sample_scratch_size(vocab));
    z = 0x2545f4914f6cdd1dull;
    same = 0;
    n = 0;

    for (r = 0; r < 8; r++) {
        spread = r < 4 ? 2.0f : 20.0f;

        for (i = 0; i < vocab; i++) {
            z ^= z << 13;
            z ^= z >> 7;
            z ^= z << 17;
            lg[i] = spread * (float) ((z >> 11) * (1.0 / 9007199254740992.0))
                    + (i % 997 == 0 ? 6.0f : 0.0f);
        }

        for (ki = 0; ki < 4; ki++) {
            for (pi = 0; pi < 4; pi++) {
                for (mi = 0; mi < 3; mi++) {
                    memset(&dr, 0, sizeof(dr));
                    dr.inv_temp = r % 2 ? 1.0f / 0.7f : 1.0f;
                    dr.top_k = ks[ki];
                    dr.top_p = ps[pi];
                    dr.min_p = ms[mi];
                    z ^= z << 13;
                    z ^= z >> 7;
                    z ^= z << 17;
                    dr.u = (double) (z >> 11) * (1.0 / 9007199254740992.0);

                    same += slora_sample_row(lg, vocab, &dr, scratch)
                            == sorted_draw(lg, vocab, &dr);
                    n++;
                }
            }
        }
    }

    is_int(same, n, "%d draws over rows of %d: the selected cuts give the "
           "sorted ones' ids", n, vocab);

    free(lg);
    free(scratch);
}


typedef struct {
    uint64_t  key;
    uint64_t  weight;
} ref_cand_t;


static int
ref_cmp(const void *a, const void *b)
{
    const ref_cand_t  *x = a, *y = b;

    return x->key > y->key ? -1 : x->key < y->key;
}


/* The draw by its definition: every weighing candidate sorted, the cuts
 * read off the sorted running sum, the kept walked in id order; min-p
 * as its share of the likeliest's weight, 2^40. */
static uint64_t
ref_weight(const float *r, int32_t i, const slora_draw_t *dr, float max)
{
    uint64_t  w;

    w = slora_sample_weight(r[i] * dr->inv_temp - max);

    return dr->min_p > 0.0f
           && (double) w < (double) dr->min_p * 1099511627776.0 ? 0 : w;
}


static int32_t
sorted_draw(const float *r, int32_t vocab, const slora_draw_t *dr)
{
    ref_cand_t  *c;
    uint64_t     lo, sum, need, run, target, w;
    float        max, s;
    int32_t      i, k, n;

    max = -INFINITY;
    for (i = 0; i < vocab; i++) {
        s = r[i] * dr->inv_temp;
        max = s > max ? s : max;
    }

    c = malloc((size_t) vocab * sizeof(ref_cand_t));
    n = 0;
    for (i = 0; i < vocab; i++) {
        w = ref_weight(r, i, dr, max);
        if (w > 0) {
            c[n].key = slora_sample_key(r[i] * dr->inv_temp, i);
            c[n].weight = w;
            n++;
        }
    }

    qsort(c, (size_t) n, sizeof(ref_cand_t), ref_cmp);
    lo = 0;

    if ((dr->top_k > 0 && dr->top_k < vocab)
        || (dr->top_p > 0.0f && dr->top_p < 1.0f))
    {
        n = dr->top_k > 0 && dr->top_k < n ? dr->top_k : n;
        lo = c[n - 1].key;

        if (dr->top_p > 0.0f && dr->top_p < 1.0f) {
            sum = 0;
            for (i = 0; i < n; i++) {
                sum += c[i].weight;
            }
            need = slora_sample_top_p_need(dr->top_p, sum);
            run = 0;
            for (k = 0; k < n - 1; k++) {
                run += c[k].weight;
                if (run >= need) {
                    break;
                }
            }
            lo = c[k].key;
        }
    }

    free(c);

    sum = 0;
    for (i = 0; i < vocab; i++) {
        if (lo == 0 || slora_sample_key(r[i] * dr->inv_temp, i) >= lo) {
            sum += ref_weight(r, i, dr, max);
        }
    }

    target = slora_sample_target(dr->u, sum);
    run = 0;
    for (i = 0; i < vocab; i++) {
        if (lo == 0 || slora_sample_key(r[i] * dr->inv_temp, i) >= lo) {
            run += ref_weight(r, i, dr, max);
            if (run > target) {
                return i;
            }
        }
    }

    return vocab - 1;
}


static void
test_weights_isa(void)
{
    int        isa, ran;
    int32_t    i, n, lens[3] = { 49152, 4099, 3 };
    float     *r, max, t;
    uint64_t  *want, *got;
    uint32_t   x;

    static const float  edge[] = { 0.0f, -0.0f, -27.8f, -27.799999f,
                                   -27.800001f, -INFINITY, NAN, -1e-30f,
                                   -0.34657359f, -13.5f, 1e-7f };

    r = malloc(49152 * sizeof(float));
    want = malloc(49152 * sizeof(uint64_t));
    got = malloc(49152 * sizeof(uint64_t));
    if (r == NULL || want == NULL || got == NULL) {
        BAIL_OUT("out of memory");
    }

    /* logits from -40 to 8 by a fixed generator, the edges first */
    x = 12345;
    for (i = 0; i < 49152; i++) {
        x = x * 1664525u + 1013904223u;
        r[i] = (float) (x >> 8) / (float) (1 << 24) * 48.0f - 40.0f;
    }
    for (i = 0; i < (int32_t) (sizeof(edge) / sizeof(edge[0])); i++) {
        r[i] = edge[i];
    }

    for (t = 0.5f; t <= 2.0f; t *= 4.0f) {
        max = -INFINITY;
        for (i = 0; i < 49152; i++) {
            max = r[i] * t > max ? r[i] * t : max;
        }

        for (n = 0; n < 3; n++) {
            ok(slora_sample_weights_isa(want, r, lens[n], t, max,
                                        SLORA_QISA_C) == 0,
               "weights, portable, %d logits, 1/T %g", lens[n], (double) t);

            for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_LAST; isa++) {
                if (!slora_qmatmul_isa_supported(isa)) {
                    ok(slora_sample_weights_isa(got, r, lens[n], t, max,
                                                isa) == -1,
                       "weights isa %d: not on this CPU, refused", isa);
                    continue;
                }

                memset(got, 0xa5, (size_t) lens[n] * sizeof(uint64_t));
                ran = slora_sample_weights_isa(got, r, lens[n], t, max, isa)
                      == 0;
                ok(ran && memcmp(got, want, (size_t) lens[n]
                                            * sizeof(uint64_t)) == 0,
                   "weights isa %d, %d logits, 1/T %g: the portable bits",
                   isa, lens[n], (double) t);
            }
        }
    }

    ok(want[5] == 0 && want[6] == 0 && want[2] == 0,
       "-inf, NaN and -27.8 weigh nothing");

    /* the sum of exponentials, without the NaN */
    r[6] = -1.0f;
    max = -INFINITY;
    for (i = 0; i < 49152; i++) {
        max = r[i] > max ? r[i] : max;
    }

    for (n = 0; n < 3; n++) {
        double  ref, base, sum;

        ref = 0;
        for (i = 0; i < lens[n]; i++) {
            ref += exp((double) r[i] - (double) max);
        }

        base = -1;
        ran = slora_sample_sumexp_isa(&base, r, lens[n], max, SLORA_QISA_C)
              == 0;
        ok(ran && fabs(base - ref) <= 1e-7 * ref,
           "sum of exponentials, portable, %d logits: %.12g, libm's %.12g",
           lens[n], base, ref);

        for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_LAST; isa++) {
            if (!slora_qmatmul_isa_supported(isa)) {
                ok(slora_sample_sumexp_isa(&sum, r, lens[n], max, isa) == -1,
                   "sum of exponentials isa %d: not on this CPU, refused",
                   isa);
                continue;
            }

            sum = -1;
            ok(slora_sample_sumexp_isa(&sum, r, lens[n], max, isa) == 0
               && memcmp(&sum, &base, sizeof(sum)) == 0,
               "sum of exponentials isa %d, %d logits: the portable bits",
               isa, lens[n]);
        }
    }

    free(r);
    free(want);
    free(got);
}


typedef struct {
    float    v;
    int32_t  id;
} top_ref_t;


/* likelier first, the lower id first on a tie */
static int
top_ref_cmp(const void *a, const void *b)
{
    const top_ref_t  *x = a, *y = b;

    if (x->v != y->v) {
        return x->v > y->v ? -1 : 1;
    }

    return x->id < y->id ? -1 : x->id > y->id;
}


static void
test_top_isa(void)
{
    int          isa, c, bad_ref, bad_isa;
    float       *r, max, want_max, got_max;
    int32_t      i, n, k, j, want[20], got[20];
    top_ref_t   *sorted;

    static const int32_t  lens[] = { 1, 7, 8, 9, 23, 100, 49152 };
    static const int32_t  ks[] = { 0, 1, 2, 5, 20 };

    r = malloc(49152 * sizeof(float));
    sorted = malloc(49152 * sizeof(top_ref_t));
    if (r == NULL || sorted == NULL) {
        BAIL_OUT("no memory");
    }

    bad_ref = 0;
    bad_isa = 0;

    /* case 0: ties (logits in steps of 1/4); 1: spread; 2: with -inf;
     * 3: NaN in the middle; 4: NaN first */
    for (c = 0; c < 5; c++) {
        tap_seed(100 + (uint64_t) c);

        for (i = 0; i < 49152; i++) {
            r[i] = c == 0 ? (float) tap_irand(64) / 4.0f - 8.0f
                          : tap_frand() * 30.0f - 15.0f;
        }

        if (c == 2) {
            for (i = 0; i < 49152; i += 3) {
                r[i] = -INFINITY;
            }
        }

        if (c >= 3) {
            r[c == 3 ? 5 : 0] = NAN;
            r[c == 3 ? 40 : 17] = NAN;
        }

        for (j = 0; j < (int32_t) (sizeof(lens) / sizeof(lens[0])); j++) {
            n = lens[j];

            for (i = 0; i < n; i++) {
                sorted[i].v = r[i];
                sorted[i].id = i;
            }

            qsort(sorted, (size_t) n, sizeof(top_ref_t), top_ref_cmp);

            for (k = 0; k < (int32_t) (sizeof(ks) / sizeof(ks[0])); k++) {
                if (ks[k] > n) {
                    continue;
                }

                if (slora_sample_top_isa(&want_max, want, r, n, ks[k],
                                         SLORA_QISA_C)
                    != 0)
                {
                    bad_ref++;
                    continue;
                }

                /* without NaN: the sort's order and max */
                if (c < 3) {
                    max = r[0];
                    for (i = 1; i < n; i++) {
                        max = r[i] > max ? r[i] : max;
                    }

                    bad_ref += memcmp(&max, &want_max, sizeof(max)) != 0;

                    for (i = 0; i < ks[k]; i++) {
                        bad_ref += want[i] != sorted[i].id;
                    }
                }

                for (isa = SLORA_QISA_AUTO; isa <= SLORA_QISA_LAST;
                     isa++)
                {
                    if (!slora_qmatmul_isa_supported(isa)) {
                        bad_isa += slora_sample_top_isa(&got_max, got, r, n,
                                                        ks[k], isa)
                                   != -1;
                        continue;
                    }

                    memset(got, 0xff, sizeof(got));
                    bad_isa += slora_sample_top_isa(&got_max, got, r, n,
                                                    ks[k], isa)
                               != 0
                               || memcmp(&got_max, &want_max,
                                         sizeof(got_max)) != 0
                               || memcmp(got, want,
                                         (size_t) ks[k] * sizeof(int32_t))
                                  != 0;
                }
            }
        }
    }

    is_int(bad_ref, 0, "top alternatives, portable: a full sort's, likelier "
           "first and lower ids first on a tie, the scan's max, over "
           "lengths 1 to 49152 and k 0 to 20");
    is_int(bad_isa, 0, "every instruction set: the portable max and ids, "
           "NaN first or in the middle included; those this CPU lacks "
           "refused");
    ok(slora_sample_top_isa(&got_max, got, r, 4, 5, SLORA_QISA_C) == -1
       && slora_sample_top_isa(&got_max, got, r, 0, 0, SLORA_QISA_C) == -1,
       "k past n, or no logits: refused");

    free(r);
    free(sorted);
}
