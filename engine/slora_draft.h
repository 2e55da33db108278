/*
 * slora_draft.h: drafts for speculative decoding from a prediction of
 * the output (OpenAI's predicted outputs: a client that edits a text
 * sends the text, most of which the answer repeats). The engine runs a
 * request's last token and a draft of the tokens the prediction says
 * come next in one step, takes every position's pick, and keeps the
 * draft's tokens as far as they equal the picks, then the first pick
 * that differs: the output is the one it would be without a draft (the
 * CPU backend's kernels give a position the same logits in a chunk as
 * alone; a GPU's may differ in bf16 at a near-tie), in fewer steps where
 * the prediction is right.
 *
 * The one idea: a cursor into the prediction says where the output
 * stands in it. The output's newest token moves it on where it is the
 * prediction's next token; where it is not (the answer changed
 * something), the cursor goes to just after the first place, from where
 * it stood on (else from the start), at which the prediction holds the
 * output's last few tokens, so the draft follows the output again once
 * it has rejoined the prediction.
 *
 * Without a prediction the engine may draft from the request's own
 * tokens (prompt lookup, `speculate=lookup`): the same cursor walks the
 * prompt and the output so far, and where it loses the output it goes
 * to just after the latest earlier place that holds the output's last
 * SLORA_DRAFT_MATCH tokens, so an answer that quotes its prompt, or
 * repeats itself, is drafted from what it quotes.
 */

#ifndef SLORA_DRAFT_H
#define SLORA_DRAFT_H


#include <stdint.h>


#define SLORA_DRAFT_MAX    16      /* draft tokens of one step, at most */
#define SLORA_DRAFT_FIRST  4       /* a request's first draft length */
#define SLORA_DRAFT_MATCH  3       /* output tokens that rejoin the
                                      prediction, at most; lookup's
                                      place, all of them */


typedef struct {
    const int32_t   *pred;          /* [n_pred] (none in lookup) */
    int32_t          n_pred;
    int32_t          at;            /* pred[0, at) is behind the output
                                       (lookup: out[at] is the next
                                       token's guess, at > 0) */
    int32_t          n_seen;        /* lookup: the output's length the
                                       cursor stands for (at the last
                                       proposal, and what it took since):
                                       an output that grew otherwise
                                       (steps without a proposal) is
                                       placed again, not followed */
    unsigned         lookup:1;      /* drafts from the output itself */
    int32_t          len;           /* the next draft's length: doubles
                                       while drafts are taken whole, halves
                                       when one is cut (1..SLORA_DRAFT_MAX) */
    int64_t          accepted;      /* draft tokens taken */
    int64_t          rejected;      /* draft tokens computed, not taken */
} slora_draft_t;


void slora_draft_init(slora_draft_t *d, const int32_t *pred, int32_t n_pred);
void slora_draft_init_lookup(slora_draft_t *d);

/* Whether d can draft at all: a prediction, or lookup. */
#define slora_draft_on(d)  ((d)->n_pred > 0 || (d)->lookup)

/*
 * The draft after the output so far, out[0, n_out) of which the last
 * n_new are new (generated, not the prompt; n_new >= 1): at most max
 * tokens into draft[]; returns how many (0: the prediction, or the
 * output, says nothing here). Lookup copies from out[] itself, so
 * draft[] must not overlap out[0, n_out).
 */
int32_t slora_draft_propose(slora_draft_t *d, const int32_t *out,
    int32_t n_out, int32_t n_new, int32_t *draft, int32_t max);

/* A draft of n tokens was computed and its first taken were equal to
 * the picks. */
void slora_draft_taken(slora_draft_t *d, int32_t n, int32_t taken);


#endif /* SLORA_DRAFT_H */
