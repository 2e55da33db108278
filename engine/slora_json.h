/*
 * slora_json.h: constrained JSON output. JSON mode (OpenAI's
 * response_format {"type": "json_object"}) makes the output one JSON
 * object; a JSON schema (response_format {"type": "json_schema"}) makes
 * it one object the schema admits. The sampler draws only tokens whose
 * bytes keep the text the start of such an object.
 *
 * Three parts. slora_json_schema_t is a schema compiled into a graph of
 * nodes (slora_json_schema.c): what a value may be (any value, an object
 * of declared properties in their order, a map, an array, a string, a
 * number, an integer, one of some literal texts, one of some nodes told
 * apart by their first byte). JSON mode's schema is the built-in one,
 * "any object". slora_json_t is the text so far as an automaton state
 * over a schema: it takes bytes one at a time and says whether they can
 * still begin an object the schema admits (RFC 8259 over UTF-8; strict:
 * no lone surrogate escapes, no overlong or surrogate UTF-8, no control
 * bytes in strings, at most SLORA_JSON_DEPTH_MAX open containers, a
 * value or a key begun only where what it must hold fits under them; and
 * blanks between tokens as a printer writes them: none, one, or one
 * line break and an indent of at most SLORA_JSON_INDENT a level open
 * and one level more, so that a model cannot loop in blanks: SmolLM2
 * asked a greeting under a schema wrote runs of 32 line breaks until
 * max_tokens, and pushed towards '{"' filled an empty object with 32
 * blanks twice), and whether they now are one, closed.
 * slora_json_vocab_t holds every token's bytes, grouped by first byte,
 * and masks a logits row: a token's logit goes to -inf unless its bytes,
 * fed to a copy of the state, are taken. Control tokens (EOS among them)
 * are never allowed: the request ends as the object closes (the engine
 * lets its stop tokens through only where slora_json_may_end says the
 * answer may end early, as a guided regex's may).
 *
 * The one idea: the state is a stack of small frames, one per open
 * value, each naming its schema node and how far into it the text is;
 * the node graph is shared and read-only, so trying a token is copying
 * the frames in use and feeding a few bytes. Whole groups of tokens fall
 * at their first byte, and inside a string without a length limit the
 * tokens of plain string text (most of a vocabulary) are allowed without
 * a try, since they leave the state as it was.
 */

#ifndef SLORA_JSON_H
#define SLORA_JSON_H


#include <stddef.h>
#include <string.h>

#include "slora_core.h"
#include "slora_regex.h"
#include "slora_tokenizer.h"


#define SLORA_JSON_DEPTH_MAX    64      /* open containers */
#define SLORA_JSON_INDENT       4       /* blanks a level after a line
                                           break */
#define SLORA_JSON_SCHEMA_MAX   16384   /* bytes of a schema's text */
#define SLORA_JSON_CHOICES_MAX  64      /* properties of an object, values
                                           of an enum */


/* One of JSON's four blanks, which may come around any value. */
#define slora_json_blank(c)                                                   \
    ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')


typedef struct slora_json_schema_s  slora_json_schema_t;


/* One open value: its node and how far into it the text is. */
typedef struct {
    uint32_t    node;
    uint8_t     phase;      /* an object's, a map's or an array's: what
                               may come next */
    uint8_t     pad[3];
    uint32_t    a;          /* object: properties passed; array: items;
                               string: characters; literal: bytes
                               matched; bounded number: digits */
    uint32_t    b;          /* object: a key's bytes matched; bounded
                               number: sign, point, fraction digits */
    uint64_t    cand;       /* literal: the texts still matched; object:
                               the keys; bounded number: its digits'
                               value */
} slora_json_frame_t;


typedef struct {
    const slora_json_schema_t  *schema;
    uint8_t     depth;      /* frames in use */
    uint8_t     done;       /* the object closed */
    uint8_t     part;       /* a number's part, a string's escape stage */
    uint8_t     utf8;       /* a string's continuation bytes due */
    uint8_t     lo;         /* the next continuation byte's range */
    uint8_t     hi;
    uint8_t     hex;        /* \u digits due */
    uint8_t     low;        /* this \u must be a low surrogate */
    uint8_t     spaces;     /* blanks in a row, since the line break
                                   among them if one came */
    uint8_t     lines;      /* a line break among them */
    uint8_t     compact;    /* no blanks at all between tokens (vLLM's
                               disable_any_whitespace): set after
                               slora_json_init, which clears it */
    uint16_t    code;       /* a \u escape's digits so far */
    slora_json_frame_t  frames[SLORA_JSON_DEPTH_MAX + 1];
} slora_json_t;


/*
 * Compiles the JSON schema text[0..len) (draft 2020-12's keywords that shape
 * a value: type, properties, required, additionalProperties, items, minItems,
 * maxItems, minLength, maxLength, a string's pattern (slora_regex.h) and its
 * format (date, time, date-time, email, hostname, ipv4, uuid, uri: held as
 * patterns), a number's or an integer's minimum, maximum and their exclusive
 * forms, enum, const, anyOf, oneOf (alternatives beginning differently, or
 * objects told apart by a shared first required key's const; a oneOf's
 * admitting no value in common, so not a number beside an integer, any
 * value beside others or one literal twice), allOf of one,
 * $ref to a place in the same document, $defs; annotations such as title,
 * description, default and other formats are ignored). The root must be an
 * object, or a union of objects told apart so. A keyword that would constrain
 * what this compiler cannot (multipleOf, uniqueItems, ...) and a pattern the
 * automaton cannot hold are errors naming it and where, rather than a
 * constraint silently dropped. Keys come in the order of properties; those
 * not in required may be left out.
 */
slora_json_schema_t *slora_json_schema_parse(const char *text, size_t len,
    slora_err_t *err);

void slora_json_schema_free(slora_json_schema_t *s);

/* The bytes a compiled schema holds (one allocation, read only once made:
 * requests may share it). */
size_t slora_json_schema_size(const slora_json_schema_t *s);

/* Where JSON text[0, len) first holds a NUL: a \u0000 escape inside a
 * string, or a raw 0 byte anywhere; len: nowhere. cJSON ends a string
 * at a NUL and gives no length, so a text with one reads as another. */
size_t slora_json_find_nul(const char *text, size_t len);

/* Whether the NUL-ended JSON text holds one so (a JSON text carried in
 * a request's string: guided_json, a tool call's arguments). */
int slora_json_holds_nul(const char *text);

/* What a request's schema text is. */
typedef enum {
    SLORA_JSON_FORM_SCHEMA = 0,     /* a JSON schema */
    SLORA_JSON_FORM_CHOICE,         /* vLLM's guided_choice: a JSON array
                                       of texts */
    SLORA_JSON_FORM_REGEX,          /* vLLM's guided_regex: a regular
                                       expression, as it is */
    SLORA_JSON_FORM_GRAMMAR,        /* vLLM's guided_grammar: a grammar
                                       (slora_grammar.h) */
    SLORA_JSON_FORM_TAGS            /* vLLM's structural_tag: tags with
                                       a JSON schema each, and the
                                       triggers that begin them
                                       (slora_json_tags_parse) */
} slora_json_form_e;

/* Compiles text[0..len) as a schema of that form (each parser below). */
slora_json_schema_t *slora_json_form_parse(int form, const char *text,
    size_t len, slora_err_t *err);

/* The request field a form comes in, for messages: "response_format's
 * schema", "guided_choice", "guided_regex", "guided_grammar",
 * "structural_tag". */
const char *slora_json_form_name(int form);


/*
 * vLLM's guided_choice: text[0..len) is a JSON array of 1 to 64
 * non-empty strings, none the start of another; the output is one of
 * them as it is (not as JSON), nothing before or after it. Freed with
 * slora_json_schema_free.
 */
slora_json_schema_t *slora_json_choice_parse(const char *text, size_t len,
    slora_err_t *err);

/*
 * vLLM's guided_regex: text[0..len) is a regular expression
 * (slora_regex.h's syntax) the whole output matches, as it is (not as
 * JSON). The output is done where nothing can extend the match, and may
 * end before, wherever it is one (slora_json_may_end). Freed with
 * slora_json_schema_free.
 */
slora_json_schema_t *slora_json_regex_parse(const char *text, size_t len,
    slora_err_t *err);

/*
 * vLLM's guided_grammar: text[0..len) is a grammar (slora_grammar.h) the
 * whole output is a text of: without recursion, held as its regular
 * expression is (as guided_regex's); with rules that reach themselves, as
 * a stack of their automata up to SLORA_JSON_DEPTH_MAX deep, where a
 * byte the grammar could take two ways is taken by the innermost rule
 * where it can, else by the way that nests the fewest rules
 * (slora_json_grammar.c). Done, and may end, as guided_regex's. Freed
 * with slora_json_schema_free.
 */
slora_json_schema_t *slora_json_grammar_parse(const char *text, size_t len,
    slora_err_t *err);


/*
 * vLLM's structural tags, as its earlier releases take them (xgrammar's
 * StructuralTagItem list), two fields added: text[0..len) is
 * {"structures": [{"begin": B, "schema": S, "end": E}, ...], "triggers":
 * [T, ...], "stop_after_first": false, "at_least_one": false}. 1 to
 * SLORA_JSON_TAGS_MAX tags, each begin and end 1 to
 * SLORA_JSON_TAG_TEXT_MAX bytes of UTF-8, no begin the start of
 * another, each schema as slora_json_schema_parse takes one (any value
 * at its root); 0 to SLORA_JSON_TRIGGERS_MAX triggers of 1 to
 * SLORA_JSON_TRIGGER_MAX bytes, every begin beginning with one. The
 * automaton takes one tag whole, its begin text first: with triggers
 * the engine starts it on the trigger the free text ends with
 * (slora_json_trigger_whole), and after the tag the text is free again
 * (stop_after_first: the tag ends the output); without, the output is
 * one tag. at_least_one (with triggers): the output begins with a tag,
 * as without them, and goes on as with them. Blanks may come before a
 * value and after it (not before an end text that begins with one), as
 * between JSON's tokens.
 */
#define SLORA_JSON_TAGS_MAX       64
#define SLORA_JSON_TAG_TEXT_MAX   256
#define SLORA_JSON_TRIGGERS_MAX   8

slora_json_schema_t *slora_json_tags_parse(const char *text, size_t len,
    slora_err_t *err);

/* A structural tag's triggers: how many, the k-th's text, whether the
 * first tag whole ends the output, and whether the output begins with a
 * tag whatever its triggers (at_least_one). */
uint32_t slora_json_tags_triggers(const slora_json_schema_t *s);
const char *slora_json_tags_trigger(const slora_json_schema_t *s,
    uint32_t k, size_t *len);
int slora_json_tags_end_first(const slora_json_schema_t *s);
int slora_json_tags_first(const slora_json_schema_t *s);


/* Starts an output under schema s; NULL: JSON mode (any object). */
void slora_json_init(slora_json_t *j, const slora_json_schema_t *s);

/* dst = src, copying only the frames in use (inline: the mask copies a
 * state for every token it tries). */
static inline void
slora_json_copy(slora_json_t *dst, const slora_json_t *src)
{
    uint8_t  k;

    memcpy(dst, src, offsetof(slora_json_t, frames));

    for (k = 0; k < src->depth; k++) {
        dst->frames[k].node = src->frames[k].node;
        dst->frames[k].phase = src->frames[k].phase;
        dst->frames[k].a = src->frames[k].a;
        dst->frames[k].b = src->frames[k].b;
        dst->frames[k].cand = src->frames[k].cand;
    }
}

/* Feeds p[0..n): 1 when every byte keeps the text the start of an object
 * the schema admits (j then holds the state after them), 0 when one does
 * not (j is then left in between: feed a copy to try). */
int slora_json_feed(slora_json_t *j, const char *p, size_t n);

/* 1 when the text is a whole object: nothing may follow. */
int slora_json_done(const slora_json_t *j);

/* 1 when the text may end here though more could follow: a guided
 * regex's output that is a match (the sampler then lets the model's end
 * of text through). */
int slora_json_may_end(const slora_json_t *j);

/* 1 inside a string without a length limit, past any escape or UTF-8
 * sequence: where bytes of text without '"' leave the state as it is. */
int slora_json_in_text(const slora_json_t *j);

/* Inside a string, between characters: how many more it may hold
 * (INT64_MAX: no maxLength); -1 elsewhere. */
int64_t slora_json_text_room(const slora_json_t *j);

/* Inside a string with a pattern, past any escape: the pattern's
 * automaton, with its state, the characters so far and whether every
 * byte goes to it as it is (*raw 1: a guided regex's text; 0: a JSON
 * string, where a quote ends it and a backslash begins an escape); the
 * mask runs tokens' bytes through it directly. NULL elsewhere. */
const slora_regex_t *slora_json_in_pattern(const slora_json_t *j,
    uint32_t *state, uint32_t *chars, int *raw);

/* Under a grammar whose rules reach themselves: the innermost rule's
 * automaton and its state, which the stack tries first for every byte,
 * where the stack has room for anything that rule may call; the mask
 * walks tokens' bytes through it and tries on a copy of j only those
 * that leave it. NULL elsewhere. */
const slora_regex_t *slora_json_grammar_walk(const slora_json_t *j,
    uint32_t *state);


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


/*
 * A lazy schema's trigger: text after which the output must be a value
 * the schema admits (then free again until the next time it comes), as
 * a model that chose to call a tool writes "<tool_call>" before the
 * call. The output's last bytes are kept to find it. A lead trigger is
 * the value's own first bytes, and counts only as the output's first
 * (blanks before them aside): a Llama 3.1 answer that begins '{"name":'
 * is a call, held to the schema from those bytes on
 * (slora_json_trigger_lead), and the value whole is the output whole.
 */
#define SLORA_JSON_TRIGGER_MAX  32

typedef struct {
    char        text[SLORA_JSON_TRIGGER_MAX];
    uint32_t    len;                    /* 0: none */
    char        tail[SLORA_JSON_TRIGGER_MAX];
    uint32_t    tail_len;
    uint32_t    lead;                   /* a lead trigger */
    uint32_t    seen;                   /* lead: its bytes the output
                                           began with (after blanks);
                                           len once found or not */
    uint32_t    at;                     /* lead, found: of them, those
                                           before the token that
                                           completed it */
    uint32_t    past;                   /* not lead, found: the bytes of
                                           the token that completed it
                                           past its end ("<tool_call>\n{"
                                           in one token, or Mistral's
                                           "][" after "[TOOL_CALLS") */
    int32_t     id;                     /* the control token whose text
                                           the trigger is (Mistral's
                                           [TOOL_CALLS]: such a token has
                                           no bytes here), found by its
                                           id; -1: none */
} slora_json_trigger_t;

/* 1 when the output, token id's bytes appended, holds the trigger's text
 * ending in those bytes (t->past of them after it; the tail then forgets
 * it, so it is found once), or id is the trigger's own control token; a
 * lead
 * trigger, when the output's first bytes but blanks are its text, the
 * token that completes them maybe running on. */
int slora_json_trigger_feed(slora_json_trigger_t *t,
    const slora_json_vocab_t *v, int32_t id);

/* A trigger (not lead) just found by token id: j (fresh) takes id's
 * bytes past the trigger's end, but the blanks they begin with. 1 when
 * it took them all. */
int slora_json_trigger_past(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id);

/* A lead trigger just found by token id: j (fresh) takes the output so
 * far, the trigger's bytes before id and id's own (with the blanks it
 * may begin with). 1 when it took them all. */
int slora_json_trigger_lead(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id);

/* Feeds token id to each of the n triggers t[]: the index of the one it
 * completed (the earliest in its bytes where two did, the longer where
 * they end alike), each then forgetting the text before it, or -1. */
int slora_json_triggers_feed(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id);

/* As slora_json_triggers_feed, the last past bytes of token id alone
 * (those after a gate it passed), to the triggers that are not lead. */
int slora_json_triggers_feed_past(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id, uint32_t past);

/* The tokens that hold one of the n triggers t[] whole with bytes after
 * it into ids[] (room for the vocabulary): how many. */
int32_t slora_json_trigger_tokens(const slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t *ids);

/* Whether the output so far ends with the first bytes of one of the n
 * triggers t[] (not lead), which a token may finish. */
int slora_json_triggers_begun(const slora_json_trigger_t *t, uint32_t n);

/* Before a lazy schema's trigger (schema s; the triggers not lead):
 * refuses in row each token that would complete one of the n triggers
 * t[] and run on with bytes the value does not go on with, so that a
 * trigger written is a value begun: a structural tag's (whole: its
 * begin goes on from the trigger's text, slora_json_trigger_whole) or a
 * tool call's (slora_json_trigger_past). It tries ids[0..n_ids)
 * (slora_json_trigger_tokens') and, where the output ends with a
 * trigger's first bytes, the tokens that begin with its rest and have
 * more. */
void slora_json_trigger_guard(const slora_json_trigger_t *t, uint32_t n,
    const slora_json_schema_t *s, int compact, int whole,
    const slora_json_vocab_t *v, const int32_t *ids, int32_t n_ids,
    float *row);

/* While the output may still begin with lead trigger t (its first bytes
 * so far, blanks aside): refuses in row each token that would complete
 * it and run on with bytes its value (schema s) does not go on with, so
 * that an answer that begins a call is held to the schema. */
void slora_json_trigger_guard_lead(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, const slora_json_vocab_t *v,
    float *row);

/* A structural tag's trigger just found by token id: j (fresh) takes
 * the trigger's text, then id's bytes past it, blanks and all (a tag's
 * begin text goes on from the trigger's last byte). 1 when it took them
 * all. */
int slora_json_trigger_whole(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id);


#endif /* SLORA_JSON_H */
