/*
 * mask_check.h: the JSON tests' check of a mask against the automaton
 * itself: every token of a real vocabulary (SmolLM2's, loaded here) tried
 * on a copy of the state.
 *
 * The one idea: the mask's shortcuts must allow exactly what trying each
 * token's bytes allows, at any state, whatever the schema.
 */

#ifndef MASK_CHECK_H
#define MASK_CHECK_H


#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "chat_run.h"
#include "slora_json.h"
#include "slora_tokenizer.h"


/* SmolLM2's tokenizer (*tok) and its JSON vocabulary; bails out. */
static slora_json_vocab_t *
mask_check_vocab(slora_tokenizer_t **tok)
{
    slora_err_t          err;
    slora_json_vocab_t  *v;

    *tok = slora_tokenizer_load(CHAT_RUN_MODEL, &err);
    if (*tok == NULL) {
        BAIL_OUT("%s: %s (make models)", CHAT_RUN_MODEL, err.msg);
    }

    v = slora_json_vocab_create(*tok, slora_tokenizer_n_vocab(*tok), &err);
    if (v == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    return v;
}


/* 1 when j's mask is what trying every token's bytes gives; row is
 * [n_vocab] scratch. */
static int
mask_agrees(const slora_tokenizer_t *tok, const slora_json_vocab_t *v,
    const slora_json_t *j, float *row)
{
    int            same;
    char           bytes[256];
    size_t         len;
    int32_t        id, n_vocab, allowed, tried;
    slora_json_t   t;

    n_vocab = slora_tokenizer_n_vocab(tok);
    memset(row, 0, (size_t) n_vocab * sizeof(float));
    allowed = slora_json_mask(j, v, row);
    tried = 0;
    same = 1;

    for (id = 0; id < n_vocab; id++) {
        slora_json_copy(&t, j);

        if (slora_tokenizer_is_special(tok, id)
            || slora_tokenizer_token_bytes(tok, id, bytes, sizeof(bytes),
                                           &len)
               != SLORA_OK)
        {
            len = 0;
        }

        if (len > 0 && slora_json_feed(&t, bytes, len)) {
            tried++;
            same &= row[id] == 0;

        } else {
            same &= row[id] < -1e30f;
        }
    }

    return same && tried == allowed;
}


/* 1 when s's mask agrees (mask_agrees) at every byte of each of
 * texts[0..n), fed a byte at a time; *states counts the states
 * checked. */
static int mask_agrees_along(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v, const slora_json_schema_t *s,
    const char **texts, size_t n, size_t *states) __attribute__((unused));

static int
mask_agrees_along(const slora_tokenizer_t *tok, const slora_json_vocab_t *v,
    const slora_json_schema_t *s, const char **texts, size_t n,
    size_t *states)
{
    int            same;
    float         *row;
    size_t         i, at, len;
    slora_json_t   j;

    row = malloc((size_t) slora_tokenizer_n_vocab(tok) * sizeof(float));
    same = row != NULL;

    for (i = 0; i < n && same; i++) {
        slora_json_init(&j, s);
        len = strlen(texts[i]);

        for (at = 0; at < len && same; at++) {
            same = mask_agrees(tok, v, &j, row);
            slora_json_feed(&j, texts[i] + at, 1);
            (*states)++;
        }
    }

    free(row);

    return same;
}


#endif /* MASK_CHECK_H */
