/*
 * slora_json_int.h: a compiled JSON schema's node graph, shared by its
 * compiler (slora_json_schema.c) and the automaton that walks it
 * (slora_json.c); and the vocabulary's index, shared by the mask
 * (slora_json_mask.c) and the triggers (slora_json_trigger.c).
 *
 * The one idea: every schema, JSON mode's included, begins with the same
 * built-in nodes (any object, any value, any array, any string, the
 * literals true, false and null, any number), so that "any value" inside
 * a compiled schema and JSON mode itself are the same few nodes.
 */

#ifndef SLORA_JSON_INT_H
#define SLORA_JSON_INT_H


#include "slora_json.h"
#include "slora_regex.h"


typedef enum {
    SLORA_JSON_K_ANY = 0,       /* any value */
    SLORA_JSON_K_OBJECT,        /* props[first, first + n), in order */
    SLORA_JSON_K_MAP,           /* any keys, each value node first */
    SLORA_JSON_K_ARRAY,         /* items of node first, min..max */
    SLORA_JSON_K_STRING,        /* min..max characters; n = 1: its text
                                   matches the pattern whose automaton
                                   is at regexes + first */
    SLORA_JSON_K_NUMBER,        /* bounded: flo..fhi, no exponent */
    SLORA_JSON_K_INTEGER,       /* bounded: lo..hi */
    SLORA_JSON_K_LITERAL,       /* one of texts[first, first + n) */
    SLORA_JSON_K_UNION,         /* one of alts[first, first + n), none
                                   a union, no two beginning alike */
    SLORA_JSON_K_TAGGED,        /* one of the objects alts[first,
                                   first + n), told apart by their
                                   shared first key's value: one of the
                                   literal node min's texts, the k-th
                                   the k-th object's */
    SLORA_JSON_K_GRAMMAR,       /* a raw root: a grammar whose rules
                                   reach themselves, its block at
                                   regexes + first; its frames' a: a
                                   rule, cand: its automaton's state
                                   (slora_json_grammar.c) */
    SLORA_JSON_K_FRAMED         /* a root: one of n values between two
                                   texts (a structural tag), told apart
                                   by their begin texts
                                   texts[first + 2k], none the start of
                                   another; then a value of node
                                   alts[min + k], then the end text
                                   texts[first + 2k + 1]
                                   (slora_json_tags.c) */
} slora_json_kind_e;


#define SLORA_JSON_NONE  UINT32_MAX     /* no maximum */


typedef struct {
    uint32_t    kind;
    uint32_t    n;
    uint32_t    first;
    uint32_t    min;
    uint32_t    max;
    uint32_t    bounded;    /* INTEGER: lo..hi hold; NUMBER: flo..fhi,
                               each end open where excl says */
    int64_t     lo;
    int64_t     hi;
    double      flo;
    double      fhi;
    uint32_t    excl;       /* 1: flo open; 2: fhi open */
    uint32_t    height;     /* the fewest containers open at once that
                               a whole value of it needs: 0 for a
                               scalar, 1 for an object of scalars, ... */
} slora_json_node_t;


/* bytes[off, off + len): a property's key as JSON text, quotes included,
 * or a literal value's text */
typedef struct {
    uint32_t    off;
    uint32_t    len;
} slora_json_text_t;


typedef struct {
    slora_json_text_t  key;
    uint32_t    node;
    uint32_t    required;
} slora_json_prop_t;


struct slora_json_schema_s {
    const slora_json_node_t  *nodes;
    const slora_json_prop_t  *props;
    const slora_json_text_t  *texts;
    const uint32_t           *alts;
    const char               *bytes;
    const char               *regexes;  /* patterns' automata, each
                                           8-byte aligned */
    uint32_t    n_nodes;
    uint32_t    root;
    uint32_t    raw;        /* the root is text as it is, no blanks
                               before it (slora_json_choice_parse) */
    uint32_t    triggers;   /* structural tags: texts[triggers,
                               triggers + n_triggers) are the texts after
                               which the output must go on with a tag
                               (slora_json_tags.c) */
    uint32_t    n_triggers; /* 0: the output is one tag, from its first
                               byte */
    uint32_t    trigger_ends;  /* 1: the first tag whole ends the
                               output */
    uint32_t    tag_first;  /* 1: with triggers, the output still begins
                               with a tag (xgrammar's at_least_one) */
    size_t      size;       /* the one allocation's bytes, this struct's
                               among them */
};


/* The automaton of a string node's pattern (n->n == 1). */
static inline const slora_regex_t *
slora_json_regex(const slora_json_schema_t *s, const slora_json_node_t *n)
{
    return (const slora_regex_t *) (const void *) (s->regexes + n->first);
}


/* A raw schema (slora_json_choice.c): the built-in nodes, then *root;
 * n_texts texts at *texts, n_bytes bytes at *bytes, regex_size bytes at
 * s->regexes for automata. */
slora_json_schema_t *slora_json_raw_schema(uint32_t n_texts, size_t n_bytes,
    size_t regex_size, slora_json_node_t **root, slora_json_text_t **texts,
    char **bytes, slora_err_t *err);

/* The raw schema of the texts pattern[0..len) matches whole (how:
 * SLORA_REGEX_WHOLE, maybe SLORA_REGEX_LONG); what names it in errors. */
slora_json_schema_t *slora_json_whole_parse(const char *pattern, size_t len,
    int how, const char *what, slora_err_t *err);

/* A grammar root's first byte, a byte after it, and whether the answer may
 * end (slora_json_grammar.c). */
int slora_json_grammar_start(slora_json_t *j, uint32_t id, unsigned c);
int slora_json_grammar_byte(slora_json_t *j, unsigned c);
int slora_json_grammar_may_end(const slora_json_t *j);


/* The built-in nodes, first in every schema. */
enum {
    SLORA_JSON_N_ANY_OBJECT = 0,
    SLORA_JSON_N_ANY,
    SLORA_JSON_N_ANY_ARRAY,
    SLORA_JSON_N_ANY_STRING,
    SLORA_JSON_N_TRUE_FALSE_NULL,
    SLORA_JSON_N_ANY_NUMBER,
    SLORA_JSON_N_BUILTIN
};

#define SLORA_JSON_TEXTS_BUILTIN  3         /* true, false, null */
#define SLORA_JSON_BYTES_BUILTIN  "truefalsenull"


/* JSON mode's schema: the built-in nodes, rooted at any object. */
extern const slora_json_schema_t  slora_json_any_object;
extern const slora_json_node_t    slora_json_builtin_nodes[];
extern const slora_json_text_t    slora_json_builtin_texts[];


/* The vocabulary's index (slora_json_mask.c builds it; the mask and the
 * triggers, slora_json_trigger.c, read it). */
/* The tokens of one byte b1, or of at least two beginning b1 b2. */
typedef struct {
    uint8_t     b1;
    uint8_t     b2;
    uint8_t     single;
    int32_t     start;          /* ids[start, end), the plain text ones
                                   first: ids[start, plain_end) */
    int32_t     plain_end;
    int32_t     end;
} slora_json_run_t;


struct slora_json_vocab_s {
    int32_t     n_vocab;
    uint32_t   *off;            /* [n_vocab + 1]: id's bytes are
                                   bytes[off[id], off[id + 1]) */
    char       *bytes;
    slora_json_run_t  *runs;    /* [n_runs], by first byte */
    int32_t     n_runs;
    int32_t    *ids;            /* the tokens with bytes, run by run */
    int32_t    *never;          /* [n_never]: control tokens, no bytes */
    int32_t     n_never;
    uint8_t    *plain;          /* [n_vocab]: plain string text */
    int32_t    *lex;            /* [n_lex]: the tokens with bytes, in
                                   the order of their bytes */
    uint32_t   *lex_off;        /* [n_lex]: their bytes' offsets */
    uint16_t   *lex_len;        /* [n_lex]: and lengths (at most
                                   65535; longer ones walk 0 bytes) */
    uint8_t    *lcp;            /* [n_lex]: the bytes token lex[k]
                                   shares with lex[k - 1] (at most
                                   255) */
    int32_t     n_lex;
    int32_t     lex_first[257]; /* lex[lex_first[b]] is the first token
                                   whose first byte is b or more */
    uint16_t   *chars;          /* [n_vocab]: a plain one's characters */
};


#endif /* SLORA_JSON_INT_H */
