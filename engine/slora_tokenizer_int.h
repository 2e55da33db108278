/*
 * slora_tokenizer_int.h: the tokenizer's private layout, shared by the
 * tables (slora_tokenizer.c), the loaders (slora_tokenizer_load.c),
 * encoding (slora_tokenizer_encode.c) and the detokenizer (slora_detok.c).
 *
 * The one idea: every string the merge tables mention is interned once.
 * Vocabulary tokens take ids 0 .. n_vocab-1; strings a merge names that are
 * not tokens (rare, but legal) take ids from n_vocab up. A merge is then a
 * pair of ids mapping to a rank and a result id, so the BPE loop never
 * builds or hashes strings.
 */

#ifndef SLORA_TOKENIZER_INT_H
#define SLORA_TOKENIZER_INT_H


#define PCRE2_CODE_UNIT_WIDTH  8
#include <pcre2.h>

#include "slora_tokenizer.h"


/* GGUF tokenizer.ggml.token_type values */
#define SLORA_TOK_UNDEFINED      0
#define SLORA_TOK_NORMAL         1
#define SLORA_TOK_UNKNOWN        2
#define SLORA_TOK_CONTROL        3
#define SLORA_TOK_USER_DEFINED   4
#define SLORA_TOK_UNUSED         5
#define SLORA_TOK_BYTE           6

#define SLORA_TOK_LSTRIP         0x01
#define SLORA_TOK_RSTRIP         0x02

#define SLORA_TOK_MAX_REGEX      8
#define SLORA_TOK_MAX_STOP       16


typedef enum {
    SLORA_TOK_BPE = 0,           /* byte-level BPE, merges by rank */
    SLORA_TOK_SPM                /* SentencePiece BPE, merges by score */
} slora_tok_kind_e;


typedef struct {
    uint32_t        off;         /* text in t->strs */
    uint32_t        len;
    uint32_t        piece_off;   /* decoded bytes in t->pieces */
    uint32_t        piece_len;
    float           score;
    uint8_t         type;        /* SLORA_TOK_NORMAL, ... */
    uint8_t         flags;       /* SLORA_TOK_LSTRIP, ... */
} slora_tok_entry_t;


/* Open-addressing hash from a byte string to an intern id. */
typedef struct {
    int32_t        *slots;       /* [cap], -1 when empty */
    uint32_t        cap;         /* power of two */
    uint32_t        used;        /* slots taken: at most half of cap */
} slora_tok_strmap_t;


/* Open-addressing hash from an id pair to a merge. */
typedef struct {
    uint64_t        key;         /* (left << 32) | right; ~0 when empty */
    int32_t         rank;
    int32_t         result;
} slora_tok_merge_t;


struct slora_tokenizer_s {
    slora_tok_kind_e    kind;
    int32_t             n_vocab;
    int32_t             n_strs;        /* interned strings, >= n_vocab */
    int32_t             cap_strs;
    slora_tok_entry_t  *entries;       /* [cap_strs] */

    char               *strs;          /* all interned text */
    size_t              strs_len;
    size_t              strs_cap;

    char               *pieces;        /* decoded bytes of every token */
    size_t              pieces_len;

    slora_tok_strmap_t  map;

    slora_tok_merge_t  *merges;        /* [merges_cap] */
    uint32_t            merges_cap;
    uint32_t            n_merges;

    int32_t             byte_tok[256]; /* token of each byte, -1 if none */
    uint32_t            max_len;       /* the longest token's text */

    int32_t            *specials;      /* ids matched before splitting, */
    int32_t             n_specials;    /* longest text first */

    pcre2_code         *regex[SLORA_TOK_MAX_REGEX];
    int                 n_regex;

    int32_t             bos;
    int32_t             eos;
    int32_t             eot;
    int32_t             eom;
    int32_t             fim[3];     /* fill-in-the-middle marks (prefix,
                                       suffix, middle), -1: none
                                       (slora_tokenizer_fim) */
    int32_t             unk;
    int32_t             stop[SLORA_TOK_MAX_STOP];
    int32_t             n_stop;

    unsigned            add_bos:1;
    unsigned            chat_bos:1;     /* the chat template writes the
                                           BOS first (slora_tok_guess_chat) */
    unsigned            add_space_prefix:1;
    unsigned            ignore_merges:1;

    slora_chat_e        chat;
    char               *chat_system;    /* the template's default system
                                           message, or NULL */
    unsigned            chat_think:1;   /* the template reads
                                           enable_thinking (Qwen3's) */
    unsigned            chat_call_ids:1;    /* Mistral v7's writes call
                                               ids (Small 3.2's) */
    unsigned            chat_flags;     /* render flags the template's
                                           text asks for
                                           (slora_chat_template_flags) */
    char                pre[64];       /* pre-tokenizer name, for messages */
    char                path[256];
};


/* Building a tokenizer (used by the loaders). */
slora_tokenizer_t *slora_tok_new(slora_tok_kind_e kind, int32_t n_vocab,
    const char *path, slora_err_t *err);
int slora_tok_set_token(slora_tokenizer_t *t, int32_t id, const char *text,
    size_t len, float score, int type, slora_err_t *err);
int32_t slora_tok_intern(slora_tokenizer_t *t, const char *text, size_t len);
int32_t slora_tok_lookup(const slora_tokenizer_t *t, const char *text,
    size_t len);
int slora_tok_add_merge(slora_tokenizer_t *t, const char *left,
    size_t left_len, const char *right, size_t right_len, int32_t rank);
int slora_tok_set_pre(slora_tokenizer_t *t, const char *name,
    slora_err_t *err);
int slora_tok_add_regex(slora_tokenizer_t *t, const char *pattern,
    slora_err_t *err);
int slora_tok_finish(slora_tokenizer_t *t, slora_err_t *err);

/* Lookups for encoding. */
const slora_tok_merge_t *slora_tok_merge_find(const slora_tokenizer_t *t,
    int32_t left, int32_t right);
/* Writes byte b as its UTF-8 code point of GPT-2's byte map; 1 or 2. */
size_t slora_tok_byte_char(uint8_t b, char *out);

/* The loaders. */
slora_tokenizer_t *slora_tok_load_gguf(const char *path, slora_err_t *err);
slora_tokenizer_t *slora_tok_load_json(const char *path,
    const char *config_path, slora_err_t *err);


#endif /* SLORA_TOKENIZER_INT_H */
