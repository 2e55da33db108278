/*
 * test_draft.c: drafts from a prediction (engine/slora_draft.c), run
 * against a known output as the engine would run them: each step
 * proposes a draft after the output so far, a verifier takes the draft's
 * tokens as far as they equal the output's, and the output grows by
 * those and one more token. A prediction equal to the output is taken
 * whole in few steps; one with an edit in its middle (tokens changed,
 * inserted, deleted) is followed again after the edit; an unrelated one
 * costs nothing but a few rejected tokens; none proposes nothing.
 * Lookup (drafts from the prompt and the output themselves): an output
 * that quotes its prompt, with an edit or not, or that repeats itself,
 * is drafted from what it repeats, from the latest place that holds its
 * last three tokens; an output that repeats nothing is never drafted.
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


static run_t run_drafts(slora_draft_t *d, const int32_t *prompt,
    int32_t n_prompt, const int32_t *want, int32_t n_want, int32_t max);


/* Generates want[0, n_want) after a prompt of N_PROMPT tokens with
 * drafts from pred, at most max a step. */
static run_t
run(const int32_t *want, int32_t n_want, const int32_t *pred, int32_t n_pred,
    int32_t max)
{
    int32_t        prompt[N_PROMPT], i;
    slora_draft_t  d;

    for (i = 0; i < N_PROMPT; i++) {
        prompt[i] = 1000 + i;
    }

    slora_draft_init(&d, pred, n_pred);

    return run_drafts(&d, prompt, N_PROMPT, want, n_want, max);
}


/* The same with lookup after the prompt given. */
static run_t
run_lookup(const int32_t *prompt, int32_t n_prompt, const int32_t *want,
    int32_t n_want)
{
    slora_draft_t  d;

    slora_draft_init_lookup(&d);

    return run_drafts(&d, prompt, n_prompt, want, n_want, SLORA_DRAFT_MAX);
}


static run_t
run_drafts(slora_draft_t *d, const int32_t *prompt, int32_t n_prompt,
    const int32_t *want, int32_t n_want, int32_t max)
{
    int32_t        out[1024], draft[SLORA_DRAFT_MAX + 4];
    int32_t        n_out, n_new, n, taken, i;
    run_t          r;

    memset(&r, 0, sizeof(r));
    memcpy(out, prompt, (size_t) n_prompt * sizeof(int32_t));

    /* the prompt's step gives the first token */
    out[n_prompt] = want[0];
    n_out = n_prompt + 1;
    n_new = 1;
    r.steps = 1;

    while (n_new < n_want) {
        n = slora_draft_propose(d, out, n_out, n_new, draft, max);
        r.overran |= n > max;
        r.longest = n > r.longest ? n : r.longest;

        for (taken = 0; taken < n && n_new + taken < n_want
                        && draft[taken] == want[n_new + taken];
             taken++)
        {
            /* the picks equal the draft */
        }

        if (n > 0) {
            slora_draft_taken(d, n, taken);
        }

        /* the draft's taken tokens, then the pick after them */
        for (i = 0; i <= taken && n_new < n_want; i++) {
            out[n_out++] = want[n_new++];
        }

        r.steps++;
    }

    r.accepted = d->accepted;
    r.rejected = d->rejected;

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

    /* lookup: an output that quotes its prompt (the prompt is some
     * words, then the 200 tokens) is drafted from it as a prediction
     * of them would be, after the first three tokens place it */
    {
        int32_t  prompt[220];

        for (i = 0; i < 20; i++) {
            prompt[i] = 8000 + i;
        }
        memcpy(prompt + 20, want, 200 * sizeof(int32_t));

        r = run_lookup(prompt, 220, want, 200);
        ok(r.rejected <= SLORA_DRAFT_MAX && r.accepted >= 199 - r.steps
           && r.steps < 25,
           "lookup: an output that quotes its prompt, in %d steps of 200, "
           "%lld tokens from drafts, %lld rejected (past its end)",
           r.steps, (long long) r.accepted, (long long) r.rejected);

        /* the quote with tokens 100-104 changed: rejoined after them */
        memcpy(pred, want, 200 * sizeof(int32_t));
        for (i = 100; i < 105; i++) {
            pred[i] = 7000 + i;
        }
        r = run_lookup(prompt, 220, pred, 200);
        ok(r.accepted >= 170 && r.rejected <= SLORA_DRAFT_MAX
           && r.steps < 40,
           "lookup: an edited quote followed again after the edit (%lld "
           "from drafts, %lld rejected, %d steps)", (long long) r.accepted,
           (long long) r.rejected, r.steps);

        /* an output the prompt and itself never hold three tokens of */
        r = run_lookup(prompt, 20, want, 300);
        ok(r.accepted == 0 && r.rejected == 0 && r.steps == 300,
           "lookup: an output that repeats nothing is never drafted");
    }

    /* an output that repeats itself: a phrase of 23 tokens 12 times */
    for (i = 0; i < 276; i++) {
        pred[i] = want[i % 23];
    }
    r = run_lookup(want + 250, 5, pred, 276);
    ok(r.rejected <= SLORA_DRAFT_MAX && r.accepted >= 276 - 23 - r.steps
       && r.steps < 45,
       "lookup: a phrase said 12 times, drafted from its last time after "
       "the first (%d steps, %lld from drafts, %lld rejected)", r.steps,
       (long long) r.accepted, (long long) r.rejected);

    /* one token over and over */
    for (i = 0; i < 100; i++) {
        pred[i] = 42;
    }
    r = run_lookup(want, 5, pred, 100);
    ok(r.rejected <= SLORA_DRAFT_MAX && r.steps < 16,
       "lookup: one token 100 times, in %d steps: the repeat runs on "
       "into the draft", r.steps);

    {
        int32_t        out[] = { 1, 2, 3, 9, 5, 1, 2, 3, 8, 6, 2, 3, 7, 1, 2,
                                 3 };
        int32_t        d4[8], got;
        slora_draft_t  d;

        /* the latest place of "1 2 3" gives "8 6 2 3 7 ..." */
        slora_draft_init_lookup(&d);
        got = slora_draft_propose(&d, out, 16, 1, d4, 8);
        ok(got == 4 && d4[0] == 8 && d4[1] == 6 && d4[3] == 3 && d.at == 8,
           "lookup: the latest earlier place of the last three tokens");

        /* "2 3" alone (at 10) does not place "... 7 2 3" */
        slora_draft_init_lookup(&d);
        out[13] = 0;
        got = slora_draft_propose(&d, out, 16, 1, d4, 8);
        is_int(got, 0, "lookup: two tokens alone do not place the output");

        /* a place lost stays lost: after a cut draft and a token that
         * places the output nowhere, one token equal to the old place's
         * next does not place it again */
        {
            int32_t  lost[] = { 1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 4 };

            slora_draft_init_lookup(&d);
            got = slora_draft_propose(&d, lost, 9, 1, d4, 8);
            ok(got == 4 && d.at == 3 && d4[0] == 4,
               "lookup: \"1 2 3\" placed at 3");
            slora_draft_taken(&d, got, 0);
            got = slora_draft_propose(&d, lost, 10, 1, d4, 8);
            is_int(got, 0, "lookup: \"2 3 7\" is nowhere before");
            got = slora_draft_propose(&d, lost, 11, 1, d4, 8);
            is_int(got, 0, "lookup: then 4, the old place's next, alone "
                   "does not place the output");

            /* nor after steps that proposed nothing (a held request) */
            slora_draft_init_lookup(&d);
            got = slora_draft_propose(&d, lost, 9, 1, d4, 8);
            got = slora_draft_propose(&d, lost, 11, 1, d4, 8);
            is_int(got, 0, "lookup: an output grown by two without a "
                   "proposal is placed again, not followed");
        }

        /* "5 6 5 6 5" at the end: period 2, drafted on through the
         * draft (the output's end is never read past) */
        slora_draft_init_lookup(&d);
        out[11] = 5;
        out[12] = 6;
        out[13] = 5;
        out[14] = 6;
        out[15] = 5;
        got = slora_draft_propose(&d, out, 16, 1, d4, 8);
        ok(got == SLORA_DRAFT_FIRST && d.at == 14 && d4[0] == 6
           && d4[1] == 5 && d4[2] == 6 && d4[3] == 5,
           "lookup: a repeat of period 2 drafts on repeating it");
    }

    return done_testing();
}
