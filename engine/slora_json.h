/*
 * slora_json.h: JSON mode (OpenAI's response_format {"type":
 * "json_object"}): the output is made to be one JSON object by letting
 * the sampler draw only tokens whose bytes keep it the start of one.
 *
 * Two parts. slora_json_t is the text so far as an automaton state: it
 * takes bytes one at a time and says whether they can still begin a JSON
 * object (RFC 8259 over UTF-8; strict: no lone surrogate escapes, no
 * overlong or surrogate UTF-8, no control bytes in strings, at most
 * SLORA_JSON_DEPTH_MAX open containers, at most SLORA_JSON_SPACES_MAX
 * whitespace bytes in a row, so that a model cannot loop in blanks), and
 * whether they now are one, closed. slora_json_vocab_t holds every
 * token's bytes, grouped by first byte, and masks a logits row: a
 * token's logit goes to -inf unless its bytes, fed to a copy of the
 * state, are taken. Control tokens (EOS among them) are never allowed:
 * the request ends as the object closes.
 *
 * The one idea: the state is a small value with the open containers as
 * bits, so trying a token is copying it and feeding a few bytes; whole
 * groups of tokens fall at their first byte, and inside a string the
 * tokens of plain string text (most of a vocabulary) are allowed without
 * a try, since they leave the state as it was.
 */

#ifndef SLORA_JSON_H
#define SLORA_JSON_H


#include "slora_core.h"
#include "slora_tokenizer.h"


#define SLORA_JSON_DEPTH_MAX   64
#define SLORA_JSON_SPACES_MAX  32


typedef struct {
    uint64_t    objects;    /* bit d: the container at depth d + 1 is an
                               object (else an array) */
    uint8_t     depth;      /* open containers */
    uint8_t     state;      /* what may come: SLORA_JSON_S_* */
    uint8_t     part;       /* a number's part, a literal's bytes matched,
                               a string's escape stage */
    uint8_t     literal;    /* true, false, null */
    uint8_t     utf8;       /* a string's continuation bytes due */
    uint8_t     lo;         /* the next continuation byte's range */
    uint8_t     hi;
    uint8_t     hex;        /* \u digits due */
    uint8_t     low;        /* this \u must be a low surrogate */
    uint8_t     spaces;     /* whitespace bytes in a row */
    uint16_t    code;       /* a \u escape's digits so far */
} slora_json_t;


void slora_json_init(slora_json_t *j);

/* Feeds p[0..n): 1 when every byte keeps the text the start of a JSON
 * object (j then holds the state after them), 0 when one does not (j is
 * then left in between: feed a copy to try). */
int slora_json_feed(slora_json_t *j, const char *p, size_t n);

/* 1 when the text is a whole JSON object: nothing may follow. */
int slora_json_done(const slora_json_t *j);

/* 1 inside a string, past any escape or UTF-8 sequence: where bytes of
 * text without '"' leave the state as it is. */
int slora_json_in_text(const slora_json_t *j);


typedef struct slora_json_vocab_s  slora_json_vocab_t;


/* Every token's bytes for a model of n_vocab tokens (the tokenizer's
 * ids past n_vocab, and the model's past the tokenizer's, are never
 * allowed; nor are control tokens). */
slora_json_vocab_t *slora_json_vocab_create(const slora_tokenizer_t *t,
    int32_t n_vocab, slora_err_t *err);

/* The same from token texts (tests): tokens[i] is lens[i] bytes, or a
 * control token when lens[i] is 0. */
slora_json_vocab_t *slora_json_vocab_from(const char *const *tokens,
    const size_t *lens, int32_t n_vocab, slora_err_t *err);

void slora_json_vocab_free(slora_json_vocab_t *v);

/* Sets row[id] to -inf for every token that cannot follow j; returns how
 * many may (0: none, the row is then all -inf). row is [n_vocab]. */
int32_t slora_json_mask(const slora_json_t *j, const slora_json_vocab_t *v,
    float *row);

/* Feeds token id's bytes: 1 when taken, 0 when not (a control token, an
 * id out of range, bytes that break the object). */
int slora_json_feed_token(slora_json_t *j, const slora_json_vocab_t *v,
    int32_t id);


#endif /* SLORA_JSON_H */
