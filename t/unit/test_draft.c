/*
 * test_draft.c: drafts from a prediction (engine/slora_draft.c), run
 * against a known output as the engine would run them: each step
 * proposes a draft after the output so far, a verifier takes the draft's
 * tokens as far as they equal the output's, and the output grows by
 * those and one more token. A prediction equal to the output is taken
 * whole in few steps; one with an edit in its middle (tokens changed,
 * inserted, deleted) is followed again after the edit; an unrelated one
 * costs nothing but a few rejected tokens; none proposes nothing.
 */

#include "tap.h"

#include "slora_draft.h"


#define N_PROMPT  5


typedef struct {
    int32_t   steps;
    int64_t   accepted;
    int64_t   rejected;
    int32_t   longest;      /* the longest draft proposed */
    int       overran;      /* a draft longer than max */
} run_t;


/* Generates want[0, n_want) after a prompt of N_PROMPT tokens with
 * drafts from pred, at most max a step. */
static run_t
run(const int32_t *want, int32_t n_want, const int32_t *pred, int32_t n_pred,
    int32_t max)
{
    int32_t        out[N_PROMPT + 512], draft[SLORA_DRAFT_MAX + 4];
    int32_t        n_out, n_new, n, taken, i;
    run_t          r;
    slora_draft_t  d;

    memset(&r, 0, sizeof(r));
    slora_draft_init(&d, pred, n_pred);

    for (i = 0; i < N_PROMPT; i++) {
        out[i] = 1000 + i;
    }

    /* the prompt's step gives the first token */
    out[N_PROMPT] = want[0];
    n_out = N_PROMPT + 1;
    n_new = 1;
    r.steps = 1;

    while (n_new < n_want) {
        n = slora_draft_propose(&d, out, n_out, n_new, draft, max);
        r.overran |= n > max;
        r.longest = n > r.longest ? n : r.longest;

        for (taken = 0; taken < n && n_new + taken < n_want
                        && draft[taken] == want[n_new + taken];
             taken++)
        {
            /* the picks equal the draft */
        }

        if (n > 0) {
            slora_draft_taken(&d, n, taken);
        }

        /* the draft's taken tokens, then the pick after them */
        for (i = 0; i <= taken && n_new < n_want; i++) {
            out[n_out++] = want[n_new++];
        }

        r.steps++;
    }

    r.accepted = d.accepted;
    r.rejected = d.rejected;

    return r;
}


int
main(void)
{
    int32_t  want[300], pred[320], n, i, j;
    run_t    r;

    /* an output of 300 tokens with few repeats, as text has */
    for (i = 0; i < 300; i++) {
        want[i] = (int32_t) ((i * 7919u) % 5003u);
    }

    /* the prediction is the output: drafts of 4, 8, then 16 tokens,
     * each taken whole with the pick after it: 5, 9, then 17 tokens a
     * step */
    r = run(want, 300, want, 300, SLORA_DRAFT_MAX);
    is_int(r.rejected, 0, "a right prediction: no draft token rejected");
    is_int(r.steps, 1 + 2 + (299 - 5 - 9 + 16) / 17,
           "... 300 tokens in %d steps (drafts grow to %d)", r.steps,
           SLORA_DRAFT_MAX);
    ok(r.accepted >= 299 - r.steps,
       "... every token but the first and the steps' own picks from a "
       "draft (%lld)", (long long) r.accepted);
    is_int(r.longest, SLORA_DRAFT_MAX, "... the longest draft the most");

    r = run(want, 300, want, 300, 3);
    ok(!r.overran && r.longest == 3 && r.rejected == 0
       && r.steps == 1 + (299 + 3) / 4,
       "drafts never longer than the step allows (3): %d steps", r.steps);

    /* an edit: tokens 100-109 changed, 5 inserted at 200, 5 deleted at
     * 250 */
    n = 0;
    for (i = 0; i < 300; i++) {
        if (i == 200) {
            for (j = 0; j < 5; j++) {
                pred[n++] = 6000 + j;
            }
        }
        if (i >= 250 && i < 255) {
            continue;
        }
        pred[n++] = i >= 100 && i < 110 ? 7000 + i : want[i];
    }

    r = run(want, 300, pred, n, SLORA_DRAFT_MAX);
    ok(r.accepted >= 240,
       "an edited prediction: followed again after each edit (%lld of "
       "299 tokens from drafts)", (long long) r.accepted);
    ok(r.rejected <= 3 * SLORA_DRAFT_MAX,
       "... %lld rejected, a few drafts' worth", (long long) r.rejected);
    ok(r.steps < 60, "... in %d steps of 300", r.steps);

    /* the output is the prediction with its first half dropped: its
     * first token places it */
    r = run(want + 150, 150, want, 300, SLORA_DRAFT_MAX);
    ok(r.rejected == 0 && r.steps <= 1 + 2 + (149 - 14 + 16) / 17,
       "an output that starts in the prediction's middle: %d steps, "
       "%lld rejected", r.steps, (long long) r.rejected);

    /* an unrelated prediction */
    for (i = 0; i < 300; i++) {
        pred[i] = 9000 + i;
    }
    r = run(want, 300, pred, 300, SLORA_DRAFT_MAX);
    is_int(r.accepted, 0, "an unrelated prediction: nothing accepted");
    is_int(r.rejected, 0, "... nothing rejected: the output is never "
           "placed in it, so nothing is drafted");
    is_int(r.steps, 300, "... one token a step, as without");

    r = run(want, 300, NULL, 0, SLORA_DRAFT_MAX);
    ok(r.accepted == 0 && r.rejected == 0 && r.steps == 300,
       "no prediction: no drafts");

    /* one token alone does not place the output once it has two: the
     * prediction's 4 recurs all over it */
    {
        int32_t        out[] = { 1, 2, 3, 1, 4 }, d4[8], got;
        int32_t        rep[] = { 4, 5, 6, 4, 7, 8, 4, 9 };
        slora_draft_t  d;

        slora_draft_init(&d, rep, 8);
        d.at = 8;
        got = slora_draft_propose(&d, out, 5, 2, d4, 8);
        is_int(got, 0, "a common token alone does not place the output");

        out[3] = 8;
        got = slora_draft_propose(&d, out, 5, 2, d4, 8);
        ok(got == 1 && d4[0] == 9 && d.at == 7,
           "two do: \"8 4\" is at 5, the draft what follows");
    }

    return done_testing();
}
