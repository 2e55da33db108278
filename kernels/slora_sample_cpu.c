/*
 * slora_sample_cpu.c: the draw of a token from a row of logits on the
 * CPU (slora_sample.h says what it draws).
 *
 * The one idea: the plain way, sorting no more than a cut needs. Top-k
 * selects the k largest keys (a quickselect, no order among them) and
 * keeps down to the least of them; top-p sorts the largest keys in
 * growing prefixes, 64 first, until the running sum of their weights
 * reaches its share; the draw then walks the kept ids in id order. The
 * GPU finds the same cuts by radix selection and the same id by a scan.
 * The weights, a row's main cost, go four at a time in AVX2 where the
 * processor has it (slora_sample_x86_cpu.c), to the same bits.
 */

#include <stdlib.h>

#include "slora_sample_int.h"
#include "slora_argmax.h"
#include "slora_qmatmul.h"


typedef struct {
    uint64_t  key;
    uint64_t  weight;
} slora_sample_cand_t;


static int slora_sample_cmp(const void *a, const void *b);
static void slora_sample_select(slora_sample_cand_t *c, int32_t n,
    int32_t m);


#define SLORA_SAMPLE_PREFIX  64             /* top-p's first sorted run */


size_t
slora_sample_scratch_size(int32_t vocab)
{
    return (size_t) (vocab > 0 ? vocab : 1)
           * (sizeof(uint64_t) + sizeof(slora_sample_cand_t));
}


int32_t
slora_sample_row(const float *row, int32_t vocab, const slora_draw_t *dr,
    void *scratch)
{
    slora_sample_cand_t  *c;
    float                 max, s;
    uint64_t              lo, *w, sum, need, run, target, min_w;
    int32_t               i, k, n, m;
    int                   cut_k, cut_p;

    max = -INFINITY;

    for (i = 0; i < vocab; i++) {
        s = row[i] * dr->inv_temp;
        max = s > max ? s : max;
    }

    if (max == -INFINITY) {
        return 0;
    }

    /* a scaled logit of +inf (the logit's, or a temperature whose inverse
     * overflowed) leaves every weight NaN, 0: the row's argmax, which the
     * GPU twin leaves in place when no weight is left to draw from */
    if (max == INFINITY) {
        slora_argmax_rows(&m, row, vocab, 1, vocab);
        return m;
    }

    /* each id's weight once; the candidates after them, if cut */
    w = scratch;
    c = (slora_sample_cand_t *) (w + vocab);

    (void) slora_sample_weights_isa(w, row, vocab, dr->inv_temp, max,
                                    SLORA_QISA_AUTO);

    /* min-p: what weighs less than its share of the likeliest, nothing */
    min_w = slora_sample_min_weight(dr->min_p);

    for (i = 0; min_w > 0 && i < vocab; i++) {
        w[i] = w[i] >= min_w ? w[i] : 0;
    }

    cut_k = dr->top_k > 0 && dr->top_k < vocab;
    cut_p = dr->top_p > 0.0f && dr->top_p < 1.0f;
    lo = 0;                             /* the smallest key kept */

    if (cut_k || cut_p) {
        /* only what weighs something: it all comes before what does not
         * (weights grow with the logit), and a cut that keeps some of
         * the weightless keeps nothing that can be drawn */
        n = 0;
        for (i = 0; i < vocab; i++) {
            if (w[i] > 0) {
                c[n].key = slora_sample_key(row[i] * dr->inv_temp, i);
                c[n].weight = w[i];
                n++;
            }
        }

        /* top-k: the k largest first, in no order; the least kept */
        if (cut_k && dr->top_k < n) {
            slora_sample_select(c, n, dr->top_k);
            n = dr->top_k;
        }

        lo = c[0].key;
        sum = 0;
        for (i = 0; i < n; i++) {
            lo = c[i].key < lo ? c[i].key : lo;
            sum += c[i].weight;
        }

        /* top-p: the shortest run of the largest keys that reaches its
         * share of the kept weight, sorted in prefixes that grow until
         * one holds it (the last key when none does) */
        if (cut_p) {
            need = slora_sample_top_p_need(dr->top_p, sum);
            m = n < SLORA_SAMPLE_PREFIX ? n : SLORA_SAMPLE_PREFIX;

            for ( ;; ) {
                if (m < n) {
                    slora_sample_select(c, n, m);
                }

                qsort(c, (size_t) m, sizeof(slora_sample_cand_t),
                      slora_sample_cmp);

                run = 0;
                for (k = 0; k < m; k++) {
                    run += c[k].weight;
                    if (run >= need) {
                        break;
                    }
                }

                if (k < m || m == n) {
                    k = k < n - 1 ? k : n - 1;
                    break;
                }

                m = m < n / 4 ? m * 4 : n;
            }

            lo = c[k].key;
        }
    }

    /* the kept set's weight, then the draw in id order */
    sum = 0;
    for (i = 0; i < vocab; i++) {
        if (lo == 0 || slora_sample_key(row[i] * dr->inv_temp, i) >= lo) {
            sum += w[i];
        } else {
            w[i] = 0;
        }
    }

    target = slora_sample_target(dr->u, sum);
    run = 0;

    for (i = 0; i < vocab; i++) {
        run += w[i];
        if (run > target) {
            return i;
        }
    }

    return vocab - 1;                   /* not reached: sum > target */
}


int
slora_sample_weights_isa(uint64_t *w, const float *row, int32_t n,
    float inv_temp, float max, int isa)
{
    if (w == NULL || row == NULL || n < 0
        || !slora_qmatmul_isa_supported(isa))
    {
        return -1;
    }

#ifdef SLORA_VEC_X86
    if (isa != SLORA_QISA_C && slora_qmatmul_isa_supported(SLORA_QISA_AVX2)) {
        slora_sample_weights_avx2(w, row, n, inv_temp, max);
        return 0;
    }
#endif

    slora_sample_weights_row(w, row, n, inv_temp, max);

    return 0;
}


int
slora_sample_sumexp_isa(double *sum, const float *row, int32_t n,
    float max, int isa)
{
    double  s[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };

    if (sum == NULL || row == NULL || n < 0
        || !slora_qmatmul_isa_supported(isa))
    {
        return -1;
    }

#ifdef SLORA_VEC_X86
    if (isa != SLORA_QISA_C && slora_qmatmul_isa_supported(SLORA_QISA_AVX2)) {
        slora_sample_sumexp_avx2(s, row, n, max);
        *sum = slora_sample_sumexp_fold(s);
        return 0;
    }
#endif

    slora_sample_sumexp_row(s, row, 0, n, max);
    *sum = slora_sample_sumexp_fold(s);

    return 0;
}


int
slora_sample_top_isa(float *max, int32_t *ids, const float *row, int32_t n,
    int32_t k, int isa)
{
    float    m;
    int32_t  i, got;

    if (max == NULL || row == NULL || n < 1 || k < 0 || k > n
        || (k > 0 && ids == NULL) || !slora_qmatmul_isa_supported(isa))
    {
        return -1;
    }

#ifdef SLORA_VEC_X86
    if (isa != SLORA_QISA_C && slora_qmatmul_isa_supported(SLORA_QISA_AVX2)) {
        slora_sample_top_avx2(max, ids, row, n, k);
        return 0;
    }
#endif

    m = row[0];

    for (i = 1; i < n; i++) {
        m = row[i] > m ? row[i] : m;
    }

    *max = m;
    got = 0;
    slora_sample_top_row(ids, &got, row, 0, n, k);

    return 0;
}


/* Larger keys first. */
static int
slora_sample_cmp(const void *a, const void *b)
{
    const slora_sample_cand_t  *x, *y;

    x = a;
    y = b;

    return x->key > y->key ? -1 : x->key < y->key;
}


/*
 * Moves the m largest keys of c[0, n) into c[0, m), in no order (Hoare's
 * quickselect; keys are distinct, the id is in them).
 */
static void
slora_sample_select(slora_sample_cand_t *c, int32_t n, int32_t m)
{
    int32_t               lo, hi, i, j;
    uint64_t              a, b, d, pivot;
    slora_sample_cand_t   t;

    lo = 0;
    hi = n - 1;

    while (lo < hi) {
        a = c[lo].key;
        b = c[lo + (hi - lo) / 2].key;
        d = c[hi].key;
        pivot = a < b ? (b < d ? b : (a < d ? d : a))
                      : (a < d ? a : (b < d ? d : b));

        i = lo;
        j = hi;

        while (i <= j) {
            while (c[i].key > pivot) {
                i++;
            }

            while (c[j].key < pivot) {
                j--;
            }

            if (i <= j) {
                t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }

        if (m - 1 <= j) {
            hi = j;

        } else if (m - 1 >= i) {
            lo = i;

        } else {
            break;
        }
    }
}
