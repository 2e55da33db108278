/*
 * slora_sample_cpu.c: the draw of a token from a row of logits on the
 * CPU (slora_sample.h says what it draws).
 *
 * The one idea: the plain way. The candidates are sorted by key when a
 * cut is asked for (top-k, top-p), the cuts are read off the sorted
 * weights' running sum, and the draw walks the kept ids in id order; the
 * GPU finds the same cuts by radix selection and the same id by a scan.
 */

#include <stdlib.h>

#include "slora_sample.h"


typedef struct {
    uint64_t  key;
    uint64_t  weight;
} slora_sample_cand_t;


static int slora_sample_cmp(const void *a, const void *b);


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
    uint64_t              lo, *w, sum, need, run, target;
    int32_t               i, k, n;
    int                   cut_k, cut_p;

    max = -INFINITY;

    for (i = 0; i < vocab; i++) {
        s = row[i] * dr->inv_temp;
        max = s > max ? s : max;
    }

    if (max == -INFINITY) {
        return 0;
    }

    /* each id's weight once; the candidates after them, if cut */
    w = scratch;
    c = (slora_sample_cand_t *) (w + vocab);

    for (i = 0; i < vocab; i++) {
        w[i] = slora_sample_weight(row[i] * dr->inv_temp - max);
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

        qsort(c, (size_t) n, sizeof(slora_sample_cand_t), slora_sample_cmp);

        n = cut_k && dr->top_k < n ? dr->top_k : n;
        lo = c[n - 1].key;

        if (cut_p) {
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


/* Larger keys first. */
static int
slora_sample_cmp(const void *a, const void *b)
{
    const slora_sample_cand_t  *x, *y;

    x = a;
    y = b;

    return x->key > y->key ? -1 : x->key < y->key;
}
