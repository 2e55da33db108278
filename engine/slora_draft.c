/*
 * slora_draft.c: drafts from a prediction of the output (slora_draft.h):
 * the cursor that follows the output through the prediction, and the
 * draft's length, which grows while the prediction is right.
 */

#include <string.h>

#include "slora_draft.h"


static int32_t slora_draft_rejoin(const slora_draft_t *d, const int32_t *tail,
    int32_t g, int32_t from);


void
slora_draft_init(slora_draft_t *d, const int32_t *pred, int32_t n_pred)
{
    memset(d, 0, sizeof(*d));
    d->pred = pred;
    d->n_pred = n_pred;
    d->len = SLORA_DRAFT_FIRST;
}


int32_t
slora_draft_propose(slora_draft_t *d, const int32_t *out, int32_t n_out,
    int32_t n_new, int32_t *draft, int32_t max)
{
    int32_t  g, at, n;

    if (d->n_pred == 0 || n_new < 1 || n_out < n_new) {
        return 0;
    }

    if (d->at < d->n_pred && d->pred[d->at] == out[n_out - 1]) {
        /* the newest token is the prediction's next */
        d->at++;

    } else {
        /* rejoin where the prediction holds the output's last tokens,
         * two at least once there are two (one alone is too common to
         * say where the output stands), the most that match */
        at = -1;

        for (g = n_new < SLORA_DRAFT_MATCH ? n_new : SLORA_DRAFT_MATCH;
             at < 0 && g >= (n_new < 2 ? 1 : 2);
             g--)
        {
            at = slora_draft_rejoin(d, out + n_out - g, g, d->at);

            if (at < 0) {
                at = slora_draft_rejoin(d, out + n_out - g, g, 0);
            }
        }

        if (at < 0) {
            return 0;
        }

        d->at = at;
    }

    n = d->n_pred - d->at;
    n = n < d->len ? n : d->len;
    n = n < max ? n : max;

    if (n <= 0) {
        return 0;
    }

    memcpy(draft, d->pred + d->at, (size_t) n * sizeof(int32_t));

    return n;
}


void
slora_draft_taken(slora_draft_t *d, int32_t n, int32_t taken)
{
    d->accepted += taken;
    d->rejected += n - taken;
    d->at += taken;

    if (taken == n) {
        d->len = d->len * 2 < SLORA_DRAFT_MAX ? d->len * 2 : SLORA_DRAFT_MAX;

    } else {
        d->len = d->len / 2 > 1 ? d->len / 2 : 1;
    }
}


/* The index just after the first place from `from` on where the
 * prediction holds tail[0, g); -1: none. */
static int32_t
slora_draft_rejoin(const slora_draft_t *d, const int32_t *tail, int32_t g,
    int32_t from)
{
    int32_t  j;

    for (j = from + g; j <= d->n_pred; j++) {
        if (memcmp(d->pred + j - g, tail, (size_t) g * sizeof(int32_t))
            == 0)
        {
            return j;
        }
    }

    return -1;
}
