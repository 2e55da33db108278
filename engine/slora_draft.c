/*
 * slora_draft.c: drafts from a prediction of the output, or from the
 * output itself (slora_draft.h): the cursor that follows the output
 * through its source, and the draft's length, which grows while the
 * source is right.
 */

#include <string.h>

#include "slora_draft.h"


static int32_t slora_draft_rejoin(const slora_draft_t *d, const int32_t *tail,
    int32_t g, int32_t from);
static int32_t slora_draft_rejoin_latest(const int32_t *out, int32_t n_out,
    int32_t g);


void
slora_draft_init(slora_draft_t *d, const int32_t *pred, int32_t n_pred)
{
    memset(d, 0, sizeof(*d));
    d->pred = pred;
    d->n_pred = n_pred;
    d->len = SLORA_DRAFT_FIRST;
}


void
slora_draft_init_lookup(slora_draft_t *d)
{
    slora_draft_init(d, NULL, 0);
    d->lookup = 1;
}


int32_t
slora_draft_propose(slora_draft_t *d, const int32_t *out, int32_t n_out,
    int32_t n_new, int32_t *draft, int32_t max)
{
    int32_t         g, at, n, n_src, k;
    const int32_t  *src;

    if (!slora_draft_on(d) || n_new < 1 || n_out < n_new) {
        return 0;
    }

    /* lookup's source is the output itself: its guess for the next
     * token is an earlier one, out[at] with 0 < at < n_out - 1 */
    src = d->lookup ? out : d->pred;
    n_src = d->lookup ? n_out - 1 : d->n_pred;

    if (d->at < n_src
        && (!d->lookup || (d->at > 0 && n_out == d->n_seen + 1))
        && src[d->at] == out[n_out - 1])
    {
        /* the newest token is the source's next */
        d->at++;

    } else if (d->lookup) {
        /* rejoin just after the latest earlier place that holds the
         * output's last SLORA_DRAFT_MATCH tokens (fewer match by chance
         * too often: each miss costs the draft's rows) */
        at = slora_draft_rejoin_latest(out, n_out, SLORA_DRAFT_MATCH);

        if (at < 0) {
            /* lost: one token later equal to out[at] by chance must
             * not place the output again */
            d->at = 0;
            return 0;
        }

        d->at = at;

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

    d->n_seen = n_out;

    n = d->lookup ? max : n_src - d->at;
    n = n < d->len ? n : d->len;
    n = n < max ? n : max;

    if (n <= 0) {
        return 0;
    }

    if (d->lookup) {
        /* what follows the place, which may run on through the newest
         * token into the draft itself: a repeat of period p places the
         * output p tokens back, and goes on repeating */
        for (k = 0; k < n; k++) {
            draft[k] = d->at + k < n_out ? out[d->at + k]
                                         : draft[d->at + k - n_out];
        }

        return n;
    }

    memcpy(draft, src + d->at, (size_t) n * sizeof(int32_t));

    return n;
}


void
slora_draft_taken(slora_draft_t *d, int32_t n, int32_t taken)
{
    d->accepted += taken;
    d->rejected += n - taken;
    d->at += taken;
    d->n_seen += taken;

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


/* The index just after the latest place before the end of out[0, n_out)
 * that holds its last g tokens (the place that is those tokens themselves
 * left out); -1: none. */
static int32_t
slora_draft_rejoin_latest(const int32_t *out, int32_t n_out, int32_t g)
{
    int32_t         j;
    const int32_t  *tail;

    if (n_out < g + 1) {
        return -1;
    }

    tail = out + n_out - g;

    for (j = n_out - 1; j >= g; j--) {
        if (out[j - 1] == tail[g - 1]
            && memcmp(out + j - g, tail, (size_t) g * sizeof(int32_t)) == 0)
        {
            return j;
        }
    }

    return -1;
}
