/*
 * fuzz_draft.c: libFuzzer harness for drafts (engine/slora_draft.h),
 * from a prediction and from the output itself (lookup), run as the
 * engine runs them against an output the input gives.
 *
 * The input's first byte picks the mode (odd: lookup), the second the
 * step's room (1..SLORA_DRAFT_MAX + 3), the third splits the rest: its
 * bytes modulo 6 (a small vocabulary, so that tokens and runs of them
 * recur) are the prompt, then the prediction (not in lookup), then the
 * output. Each step proposes a draft after the output so far, takes it
 * as far as it equals the output's next tokens, then one more token.
 * Every buffer is allocated to its exact size, so that ASan sees a read
 * past the output or the prediction. Oracles beyond the sanitizers: a
 * draft is never longer than the room nor SLORA_DRAFT_MAX; a draft
 * follows the place the cursor names: in lookup its tokens are the
 * output's from there on (and on through the draft itself past the
 * output's end) and the three tokens before the place are the output's
 * last three; from a prediction they are the prediction's from there
 * and the token before the place is the output's last; the taken and
 * rejected counts add up to the drafts' lengths.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_draft.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             lookup;
    size_t          i, n_rest;
    int32_t         max, n_prompt, n_pred, n_want, n_out, n_new, n, k;
    int32_t         taken, *pred, *want, *out, *draft;
    int64_t         drafted;
    slora_draft_t   d;

    if (size < 4) {
        return 0;
    }

    lookup = data[0] & 1;
    max = 1 + data[1] % (SLORA_DRAFT_MAX + 3);
    n_rest = size - 3;
    if (n_rest > 600) {
        n_rest = 600;
    }

    /* the rest: prompt, prediction (thirds by the third byte), output */
    n_prompt = (int32_t) (n_rest * (data[2] & 15) / 32);
    n_pred = lookup ? 0 : (int32_t) (n_rest * (data[2] >> 4) / 32);
    n_want = (int32_t) n_rest - n_prompt - n_pred;
    if (n_want < 1) {
        return 0;
    }

    pred = malloc(((size_t) n_pred + 1) * sizeof(int32_t));
    want = malloc((size_t) n_want * sizeof(int32_t));
    draft = malloc((size_t) max * sizeof(int32_t));
    if (pred == NULL || want == NULL || draft == NULL) {
        abort();
    }

    for (i = 0; i < (size_t) n_pred; i++) {
        pred[i] = data[3 + n_prompt + i] % 6;
    }
    for (i = 0; i < (size_t) n_want; i++) {
        want[i] = data[3 + n_prompt + n_pred + i] % 6;
    }

    if (lookup) {
        slora_draft_init_lookup(&d);

    } else {
        slora_draft_init(&d, pred, n_pred);
    }

    /* the prompt, and the prompt's step's token */
    n_out = n_prompt + 1;
    out = malloc((size_t) n_out * sizeof(int32_t));
    if (out == NULL) {
        abort();
    }
    for (i = 0; i < (size_t) n_prompt; i++) {
        out[i] = data[3 + i] % 6;
    }
    out[n_prompt] = want[0];
    n_new = 1;
    drafted = 0;

    while (n_new < n_want) {
        n = slora_draft_propose(&d, out, n_out, n_new, draft, max);

        if (n < 0 || n > max || n > SLORA_DRAFT_MAX) {
            abort();
        }

        if (n > 0 && lookup) {
            if (d.at < SLORA_DRAFT_MATCH || d.at >= n_out
                || memcmp(out + d.at - SLORA_DRAFT_MATCH,
                          out + n_out - SLORA_DRAFT_MATCH,
                          SLORA_DRAFT_MATCH * sizeof(int32_t)) != 0)
            {
                abort();
            }

            for (k = 0; k < n; k++) {
                if (draft[k] != (d.at + k < n_out ? out[d.at + k]
                                                  : draft[d.at + k - n_out]))
                {
                    abort();
                }
            }

        } else if (n > 0) {
            if (d.at < 1 || d.at + n > n_pred
                || pred[d.at - 1] != out[n_out - 1]
                || memcmp(draft, pred + d.at, (size_t) n * sizeof(int32_t))
                   != 0)
            {
                abort();
            }
        }

        for (taken = 0; taken < n && n_new + taken < n_want
                        && draft[taken] == want[n_new + taken];
             taken++)
        {
            /* the picks equal the draft */
        }

        if (n > 0) {
            slora_draft_taken(&d, n, taken);
            drafted += n;
        }

        /* the output grows by the taken tokens and the pick after them,
         * into a buffer of its new size exactly */
        k = taken + 1 < n_want - n_new ? taken + 1 : n_want - n_new;
        out = realloc(out, ((size_t) n_out + (size_t) k) * sizeof(int32_t));
        if (out == NULL) {
            abort();
        }
        memcpy(out + n_out, want + n_new, (size_t) k * sizeof(int32_t));
        n_out += k;
        n_new += k;
    }

    if (d.accepted + d.rejected != drafted || d.accepted > n_want) {
        abort();
    }

    free(out);
    free(draft);
    free(want);
    free(pred);

    return 0;
}
