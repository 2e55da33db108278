/*
 * slora_tokenizer.c: encoding and decoding for byte-level BPE and
 * SentencePiece BPE vocabularies, behaving as llama.cpp's llama-vocab.cpp
 * does (its tests' expected ids are ours).
 *
 * Encoding runs in three stages. Special tokens are cut out of the text
 * first, one token text at a time, longest first. The remaining text
 * fragments are split into words by the pre-tokenizer regexes, each regex
 * splitting the pieces the previous one left (matches and the gaps between
 * them both become pieces). Each word is then merged pair by pair from a
 * heap: by merge rank for byte-level BPE, by the merged token's score for
 * SentencePiece. Byte-level BPE works on the word's bytes, each standing
 * for one printable code point of GPT-2's byte map; a symbol left that is
 * no token falls back to one token per byte.
 *
 * The one idea: the tokenizer is read-only after loading; encode keeps all
 * its scratch in one per-call context, so any number of threads may share
 * a tokenizer.
 */

#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_tokenizer_int.h"


#define SLORA_TOK_EMPTY_KEY   (~(uint64_t) 0)


typedef struct {
    uint32_t        off;
    uint32_t        len;
    int32_t         id;          /* special token, or -1 for raw text */
} slora_tok_frag_t;


typedef struct {
    uint32_t        off;
    uint32_t        len;
} slora_tok_span_t;


typedef struct {
    int32_t         id;          /* intern id, -1 if none */
    uint32_t        off;         /* into the word */
    uint32_t        len;
    int32_t         prev;
    int32_t         next;
} slora_tok_sym_t;


typedef struct {
    float           prio;        /* higher pops first */
    int32_t         left;
    int32_t         right;
    int32_t         lid;         /* BPE: ids when pushed; SPM: size */
    int32_t         rid;
    int32_t         result;
} slora_tok_bigram_t;


typedef struct {
    const slora_tokenizer_t  *t;
    slora_err_t              *err;

    int32_t                  *ids;
    int32_t                   cap;
    int64_t                   n;

    slora_tok_sym_t          *syms;
    size_t                    syms_cap;
    slora_tok_bigram_t       *heap;
    size_t                    heap_len;
    size_t                    heap_cap;

    slora_tok_span_t         *spans;
    size_t                    n_spans;
    size_t                    spans_cap;
    slora_tok_span_t         *spans2;
    size_t                    spans2_cap;

    char                     *buf;       /* escaped SPM text, BPE words */
    size_t                    buf_cap;

    pcre2_match_data         *md;
} slora_tok_ctx_t;


static void slora_tok_byte_map_init(void);
static int slora_tok_store(slora_tokenizer_t *t, const char *text,
    size_t len, uint32_t *off);
static void slora_tok_map_put(slora_tokenizer_t *t, int32_t id);
static int slora_tok_hexbyte(const char *s, size_t n);
static int slora_tok_is_stop_text(const char *s, size_t n);
static void slora_tok_add_stop(slora_tokenizer_t *t, int32_t id);
static uint64_t slora_tok_hash(const char *s, size_t n);
static int slora_tok_map_grow(slora_tokenizer_t *t);
static uint32_t slora_tok_merge_slot(const slora_tokenizer_t *t,
    uint64_t key);
static int slora_tok_merges_grow(slora_tokenizer_t *t);
static const slora_tok_merge_t *slora_tok_merge_find(
    const slora_tokenizer_t *t, int32_t left, int32_t right);
static int slora_tok_build_pieces(slora_tokenizer_t *t, slora_err_t *err);
static int slora_tok_find_stops(slora_tokenizer_t *t);
static int slora_tok_cmp_special(const void *a, const void *b, void *arg);
static int slora_tok_sort_specials(slora_tokenizer_t *t, slora_err_t *err);
static size_t slora_tok_byte_char(uint8_t b, char *out);
static void slora_tok_emit(slora_tok_ctx_t *c, int32_t id);
static int slora_tok_reserve(void **p, size_t *cap, size_t need,
    size_t size);
static int slora_tok_partition(slora_tok_ctx_t *c, const char *text,
    size_t len, int parse_special, slora_tok_frag_t **frags,
    size_t *n_frags);
static int slora_tok_split(slora_tok_ctx_t *c, const char *text,
    size_t len);
static int slora_tok_bpe_fragment(slora_tok_ctx_t *c, const char *text,
    size_t len);
static int slora_tok_bpe_word(slora_tok_ctx_t *c, const char *word,
    size_t len);
static int slora_tok_spm_fragment(slora_tok_ctx_t *c, const char *text,
    size_t len, int prefix_space);
static int slora_tok_heap_push(slora_tok_ctx_t *c,
    const slora_tok_bigram_t *b);
static void slora_tok_heap_pop(slora_tok_ctx_t *c, slora_tok_bigram_t *b);
static int slora_tok_bigram_before(const slora_tok_bigram_t *a,
    const slora_tok_bigram_t *b);
static int slora_tok_bpe_pair(slora_tok_ctx_t *c, int32_t l, int32_t r);
static int slora_tok_spm_pair(slora_tok_ctx_t *c, const char *text,
    int32_t l, int32_t r);
static size_t slora_utf8_prefix(const uint8_t *s, size_t n, int *full);
static size_t slora_detok_emit(uint8_t *in, size_t n, int final,
    char *out, size_t *used);


/* GPT-2's byte map: printable bytes stand for themselves, the others
 * (controls, space, 0x7f-0xa0, 0xad) take 256, 257, ... in byte order. */
static uint32_t  slora_tok_byte_cpt[256];
static int16_t   slora_tok_cpt_byte[324];


static void
slora_tok_byte_map_init(void)
{
    uint32_t  b, extra;

    if (slora_tok_byte_cpt['!'] == '!') {
        return;
    }

    extra = 256;

    for (b = 0; b < 256; b++) {
        if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac)
            || (b >= 0xae))
        {
            slora_tok_byte_cpt[b] = b;

        } else {
            slora_tok_byte_cpt[b] = extra++;
        }
    }

    for (b = 0; b < 324; b++) {
        slora_tok_cpt_byte[b] = -1;
    }

    for (b = 0; b < 256; b++) {
        slora_tok_cpt_byte[slora_tok_byte_cpt[b]] = (int16_t) b;
    }
}


static uint64_t
slora_tok_hash(const char *s, size_t n)
{
    uint64_t  h;
    size_t    i;

    h = 0xcbf29ce484222325ULL;

    for (i = 0; i < n; i++) {
        h ^= (uint8_t) s[i];
        h *= 0x100000001b3ULL;
    }

    return h ^ (h >> 29);
}


size_t
slora_utf8_valid(const uint8_t *s, size_t n)
{
    uint32_t  c;

    if (n == 0) {
        return 0;
    }

    c = s[0];

    if (c < 0x80) {
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        return (n >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) {
            return 0;
        }

        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0)) {
            return 0;                       /* overlong, surrogate */
        }

        return 3;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80)
        {
            return 0;
        }

        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90)) {
            return 0;                       /* overlong, > U+10FFFF */
        }

        return 4;
    }

    return 0;
}


/* Building */


slora_tokenizer_t *
slora_tok_new(slora_tok_kind_e kind, int32_t n_vocab, const char *path,
    slora_err_t *err)
{
    int32_t             i;
    slora_tokenizer_t  *t;

    slora_tok_byte_map_init();

    if (n_vocab <= 0 || n_vocab > (1 << 24)) {
        slora_err_set(err, SLORA_ERROR, "%s: vocabulary of %d tokens",
                      path, (int) n_vocab);
        return NULL;
    }

    t = calloc(1, sizeof(slora_tokenizer_t));
    if (t == NULL) {
        goto nomem;
    }

    t->kind = kind;
    t->n_vocab = n_vocab;
    t->n_strs = n_vocab;
    t->cap_strs = n_vocab + 64;
    t->bos = -1;
    t->eos = -1;
    t->eot = -1;
    t->eom = -1;
    t->unk = -1;
    snprintf(t->path, sizeof(t->path), "%s", path);

    t->entries = calloc(t->cap_strs, sizeof(slora_tok_entry_t));
    t->strs_cap = (size_t) n_vocab * 8 + 64;
    t->strs = malloc(t->strs_cap);
    t->map.cap = 1024;

    while (t->map.cap < (uint32_t) n_vocab * 3) {
        t->map.cap <<= 1;
    }

    t->map.slots = malloc(t->map.cap * sizeof(int32_t));

    if (t->entries == NULL || t->strs == NULL || t->map.slots == NULL) {
        slora_tokenizer_free(t);
        goto nomem;
    }

    memset(t->map.slots, 0xff, t->map.cap * sizeof(int32_t));

    for (i = 0; i < 256; i++) {
        t->byte_tok[i] = -1;
    }

    return t;

nomem:

    slora_err_set(err, SLORA_ERROR, "%s: out of memory for %d tokens", path,
                  (int) n_vocab);
    return NULL;
}


void
slora_tokenizer_free(slora_tokenizer_t *t)
{
    int  i;

    if (t == NULL) {
        return;
    }

    for (i = 0; i < t->n_regex; i++) {
        pcre2_code_free(t->regex[i]);
    }

    free(t->entries);
    free(t->strs);
    free(t->pieces);
    free(t->map.slots);
    free(t->merges);
    free(t->specials);
    free(t);
}


static int
slora_tok_store(slora_tokenizer_t *t, const char *text, size_t len,
    uint32_t *off)
{
    char    *p;
    size_t   cap;

    if (len > 0xffff) {
        return SLORA_ERROR;
    }

    if (t->strs_len + len > t->strs_cap) {
        cap = t->strs_cap * 2 + len;
        p = realloc(t->strs, cap);
        if (p == NULL) {
            return SLORA_ERROR;
        }

        t->strs = p;
        t->strs_cap = cap;
    }

    if (t->strs_len + len > UINT32_MAX) {
        return SLORA_ERROR;
    }

    memcpy(t->strs + t->strs_len, text, len);
    *off = (uint32_t) t->strs_len;
    t->strs_len += len;

    return SLORA_OK;
}


int32_t
slora_tok_lookup(const slora_tokenizer_t *t, const char *text, size_t len)
{
    uint32_t                 mask, i;
    int32_t                  id;
    const slora_tok_entry_t  *e;

    mask = t->map.cap - 1;
    i = (uint32_t) slora_tok_hash(text, len) & mask;

    for ( ;; ) {
        id = t->map.slots[i];

        if (id < 0) {
            return -1;
        }

        e = &t->entries[id];

        if (e->len == len && memcmp(t->strs + e->off, text, len) == 0) {
            return id;
        }

        i = (i + 1) & mask;
    }
}


static void
slora_tok_map_put(slora_tokenizer_t *t, int32_t id)
{
    uint32_t            mask, i;
    slora_tok_entry_t  *e;

    e = &t->entries[id];
    mask = t->map.cap - 1;
    i = (uint32_t) slora_tok_hash(t->strs + e->off, e->len) & mask;

    while (t->map.slots[i] >= 0) {
        i = (i + 1) & mask;
    }

    t->map.slots[i] = id;
}


static int
slora_tok_map_grow(slora_tokenizer_t *t)
{
    int32_t   i, *slots, *old;
    uint32_t  cap;

    cap = t->map.cap * 2;
    slots = malloc(cap * sizeof(int32_t));
    if (slots == NULL) {
        return SLORA_ERROR;
    }

    memset(slots, 0xff, cap * sizeof(int32_t));
    old = t->map.slots;
    t->map.slots = slots;
    t->map.cap = cap;
    free(old);

    for (i = 0; i < t->n_strs; i++) {
        if (i >= t->n_vocab || t->entries[i].len > 0
            || t->entries[i].type != SLORA_TOK_UNDEFINED)
        {
            if (slora_tok_lookup(t, t->strs + t->entries[i].off,
                                 t->entries[i].len) < 0)
            {
                slora_tok_map_put(t, i);
            }
        }
    }

    return SLORA_OK;
}


int
slora_tok_set_token(slora_tokenizer_t *t, int32_t id, const char *text,
    size_t len, float score, int type, slora_err_t *err)
{
    int32_t             old;
    slora_tok_entry_t  *e;

    slora_assert(id >= 0 && id < t->n_vocab);

    if (len == 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: token %d is empty",
                             t->path, (int) id);
    }

    e = &t->entries[id];

    if (slora_tok_store(t, text, len, &e->off) != SLORA_OK) {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: token %d: %zu bytes too long or no memory",
                             t->path, (int) id, len);
    }

    e->len = (uint32_t) len;
    e->score = score;
    e->type = (uint8_t) (type >= SLORA_TOK_UNDEFINED && type <= SLORA_TOK_BYTE
                         ? type : SLORA_TOK_UNDEFINED);

    /* a later duplicate takes the text, as llama.cpp's map does */
    old = slora_tok_lookup(t, text, len);

    if (old >= 0) {
        return SLORA_OK;
    }

    slora_tok_map_put(t, id);

    return SLORA_OK;
}


int32_t
slora_tok_intern(slora_tokenizer_t *t, const char *text, size_t len)
{
    int32_t             id;
    slora_tok_entry_t  *e;

    id = slora_tok_lookup(t, text, len);
    if (id >= 0) {
        return id;
    }

    if (t->n_strs == t->cap_strs) {
        e = realloc(t->entries,
                    (size_t) t->cap_strs * 2 * sizeof(slora_tok_entry_t));
        if (e == NULL) {
            return -1;
        }

        memset(e + t->cap_strs, 0,
               (size_t) t->cap_strs * sizeof(slora_tok_entry_t));
        t->entries = e;
        t->cap_strs *= 2;
    }

    if ((uint32_t) t->n_strs * 2 >= t->map.cap) {
        if (slora_tok_map_grow(t) != SLORA_OK) {
            return -1;
        }
    }

    id = t->n_strs;
    e = &t->entries[id];

    if (slora_tok_store(t, text, len, &e->off) != SLORA_OK) {
        return -1;
    }

    e->len = (uint32_t) len;
    e->type = SLORA_TOK_UNUSED;
    t->n_strs++;
    slora_tok_map_put(t, id);

    return id;
}


static uint32_t
slora_tok_merge_slot(const slora_tokenizer_t *t, uint64_t key)
{
    uint64_t  h;
    uint32_t  mask, i;

    h = key * 0x9e3779b97f4a7c15ULL;
    mask = t->merges_cap - 1;
    i = (uint32_t) (h >> 32) & mask;

    while (t->merges[i].key != SLORA_TOK_EMPTY_KEY
           && t->merges[i].key != key)
    {
        i = (i + 1) & mask;
    }

    return i;
}


static int
slora_tok_merges_grow(slora_tokenizer_t *t)
{
    uint32_t            i, cap, old_cap;
    slora_tok_merge_t  *old;

    old = t->merges;
    old_cap = t->merges_cap;
    cap = old_cap ? old_cap * 2 : 4096;

    t->merges = malloc(cap * sizeof(slora_tok_merge_t));
    if (t->merges == NULL) {
        t->merges = old;
        return SLORA_ERROR;
    }

    t->merges_cap = cap;

    for (i = 0; i < cap; i++) {
        t->merges[i].key = SLORA_TOK_EMPTY_KEY;
    }

    for (i = 0; i < old_cap; i++) {
        if (old[i].key != SLORA_TOK_EMPTY_KEY) {
            t->merges[slora_tok_merge_slot(t, old[i].key)] = old[i];
        }
    }

    free(old);

    return SLORA_OK;
}


int
slora_tok_add_merge(slora_tokenizer_t *t, const char *left, size_t left_len,
    const char *right, size_t right_len, int32_t rank)
{
    char                stack[256], *cat;
    int32_t             l, r, res;
    uint64_t            key;
    uint32_t            slot;

    if ((t->n_merges + 1) * 2 > t->merges_cap) {
        if (slora_tok_merges_grow(t) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    cat = left_len + right_len <= sizeof(stack)
          ? stack : malloc(left_len + right_len);
    if (cat == NULL) {
        return SLORA_ERROR;
    }

    memcpy(cat, left, left_len);
    memcpy(cat + left_len, right, right_len);

    l = slora_tok_intern(t, left, left_len);
    r = slora_tok_intern(t, right, right_len);
    res = slora_tok_intern(t, cat, left_len + right_len);

    if (cat != stack) {
        free(cat);
    }

    if (l < 0 || r < 0 || res < 0) {
        return SLORA_ERROR;
    }

    key = ((uint64_t) (uint32_t) l << 32) | (uint32_t) r;
    slot = slora_tok_merge_slot(t, key);

    if (t->merges[slot].key == key) {
        return SLORA_OK;                    /* the first rank wins */
    }

    t->merges[slot].key = key;
    t->merges[slot].rank = rank;
    t->merges[slot].result = res;
    t->n_merges++;

    return SLORA_OK;
}


static const slora_tok_merge_t *
slora_tok_merge_find(const slora_tokenizer_t *t, int32_t left, int32_t right)
{
    uint64_t  key;
    uint32_t  slot;

    if (t->merges_cap == 0 || left < 0 || right < 0) {
        return NULL;
    }

    key = ((uint64_t) (uint32_t) left << 32) | (uint32_t) right;
    slot = slora_tok_merge_slot(t, key);

    return t->merges[slot].key == key ? &t->merges[slot] : NULL;
}


/* The pre-tokenizers, named as convert_hf_to_gguf.py names them. */

#define SLORA_RE_CONTRACT                                                     \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

#define SLORA_RE_GPT2                                                         \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"        \
    "|\\s+(?!\\S)"

#define SLORA_RE_LLAMA3                                                       \
    SLORA_RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"             \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define SLORA_RE_QWEN2                                                        \
    SLORA_RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"                  \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define SLORA_RE_QWEN35                                                       \
    SLORA_RE_CONTRACT "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}"          \
    "| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define SLORA_RE_TEKKEN                                                       \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*"              \
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?"                    \
    "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"      \
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"


typedef struct {
    const char  *names;          /* space-separated, padded with spaces */
    const char  *regex[SLORA_TOK_MAX_REGEX];
    unsigned     ignore_merges:1;
    unsigned     add_bos:1;
} slora_tok_pre_t;


static const slora_tok_pre_t  slora_tok_pres[] = {

    { " llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 "
      "dbrx smaug-bpe ",
      { SLORA_RE_LLAMA3 }, 1, 1 },

    { " tekken ", { SLORA_RE_TEKKEN }, 1, 1 },

    { " chatglm-bpe ", { SLORA_RE_LLAMA3 }, 0, 0 },

    { " deepseek-llm ",
      { "[\\r\\n]",
        "\\s?[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}"
        "\\x{1bc}-\\x{1bf}\\x{1c4}-\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}"
        "\\x{376}\\x{377}\\x{37b}-\\x{37d}\\x{37f}\\x{386}\\x{388}-\\x{38a}"
        "\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}\\x{3f7}-\\x{481}"
        "\\x{48a}-\\x{52f}\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}"
        "\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}"
        "\\x{1cbd}-\\x{1cbf}\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}"
        "\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}\\x{1f18}-\\x{1f1d}"
        "\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}"
        "\\x{1f5b}\\x{1f5d}\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}"
        "\\x{1fb6}-\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}\\x{1fc6}-\\x{1fcc}"
        "\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}\\x{1fe0}-\\x{1fec}"
        "\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}"
        "\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}\\x{2126}"
        "\\x{2128}\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}\\x{2139}"
        "\\x{213c}-\\x{213f}\\x{2145}-\\x{2149}\\x{214e}\\x{2183}\\x{2184}"
        "\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-\\x{2cee}\\x{2cf2}"
        "\\x{2cf3}\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}"
        "\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}"
        "\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}\\x{ff21}-\\x{ff3a}"
        "\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}"
        "\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}"
        "\\x{118a0}-\\x{118df}\\x{1e900}-\\x{1e943}]+",
        "\\s?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}"
        "\\x{3000}-\\x{3002}]+",
        "\\s+$",
        "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+",
        "\\p{N}+" }, 0, 0 },

    { " deepseek-coder ",
      { "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
        "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+",
        "\\p{N}" }, 0, 0 },

    { " deepseek-v3 ",
      { "\\p{N}{1,3}",
        "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+"
        "|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
        "| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, 0, 0 },

    { " falcon ",
      { "[\\p{P}\\$\\+<=>\\^~\\|`]+",
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
        "|\\s+(?!\\S)",
        "[0-9][0-9][0-9]" }, 0, 0 },

    { " starcoder refact command-r smollm codeshell exaone minerva ",
      { "\\p{N}", SLORA_RE_GPT2 }, 0, 0 },

    { " gpt-2 phi-2 jina-es jina-de gigachat jina-v2-es jina-v2-de mpt olmo "
      "jais trillion roberta-bpe jina-v1-en jina-v2-code exaone4 a.x-4.0 "
      "mellum modern-bert granite-docling ",
      { SLORA_RE_GPT2 }, 0, 0 },

    { " qwen2 deepseek-r1-qwen stablelm2 hunyuan kormo solar-open ",
      { SLORA_RE_QWEN2 }, 0, 0 },

    { " qwen35 ", { SLORA_RE_QWEN35 }, 0, 0 },

    { " poro-chat bloom ", { NULL }, 0, 0 },

    { " default ",
      { "[\\p{P}\\$\\+<=>\\^~\\|]+",
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+"
        "|\\s+(?!\\S)",
        "\\p{N}+",
        "[0-9][0-9][0-9]" }, 0, 0 },

    { NULL, { NULL }, 0, 0 }
};


int
slora_tok_add_regex(slora_tokenizer_t *t, const char *pattern,
    slora_err_t *err)
{
    int          rc;
    size_t       off;
    PCRE2_UCHAR  msg[128];
    pcre2_code  *re;

    if (t->n_regex == SLORA_TOK_MAX_REGEX) {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: more than %d pre-tokenizer regexes",
                             t->path, SLORA_TOK_MAX_REGEX);
    }

    re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED,
                       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY
                       | PCRE2_NO_UTF_CHECK, &rc, &off, NULL);
    if (re == NULL) {
        pcre2_get_error_message(rc, msg, sizeof(msg));
        return slora_err_set(err, SLORA_ERROR,
                             "%s: pre-tokenizer regex at %zu: %s", t->path,
                             off, (char *) msg);
    }

    (void) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    t->regex[t->n_regex++] = re;

    return SLORA_OK;
}


int
slora_tok_set_pre(slora_tokenizer_t *t, const char *name, slora_err_t *err)
{
    int                     i;
    char                    key[72];
    const slora_tok_pre_t  *p;

    if (name == NULL || name[0] == '\0') {
        name = "default";
    }

    snprintf(t->pre, sizeof(t->pre), "%s", name);
    snprintf(key, sizeof(key), " %s ", name);

    for (p = slora_tok_pres; p->names != NULL; p++) {
        if (strstr(p->names, key) != NULL) {
            break;
        }
    }

    if (p->names == NULL) {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: unknown pre-tokenizer \"%s\"", t->path,
                             name);
    }

    for (i = 0; i < SLORA_TOK_MAX_REGEX && p->regex[i] != NULL; i++) {
        if (slora_tok_add_regex(t, p->regex[i], err) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    t->ignore_merges = p->ignore_merges;
    t->add_bos = p->add_bos;

    return SLORA_OK;
}


static size_t
slora_tok_byte_char(uint8_t b, char *out)
{
    uint32_t  c;

    c = slora_tok_byte_cpt[b];

    if (c < 0x80) {
        out[0] = (char) c;
        return 1;
    }

    out[0] = (char) (0xc0 | (c >> 6));
    out[1] = (char) (0x80 | (c & 0x3f));

    return 2;
}


static int
slora_tok_hexbyte(const char *s, size_t n)
{
    int  v, i, d;

    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') {
        return -1;
    }

    v = 0;

    for (i = 3; i < 5; i++) {
        d = s[i];

        if (d >= '0' && d <= '9') {
            d -= '0';

        } else if (d >= 'A' && d <= 'F') {
            d -= 'A' - 10;

        } else if (d >= 'a' && d <= 'f') {
            d -= 'a' - 10;

        } else {
            return -1;
        }

        v = v * 16 + d;
    }

    return v;
}


/* Decoded bytes of every token, computed once: byte-level BPE maps code
 * points back to bytes, SentencePiece turns U+2581 into a space and
 * <0xNN> into its byte, control tokens keep their text. */
static int
slora_tok_build_pieces(slora_tokenizer_t *t, slora_err_t *err)
{
    int32_t             id;
    size_t              cap, i, n, need, k;
    uint32_t            c;
    uint8_t            *o;
    const uint8_t      *s;
    slora_tok_entry_t  *e;

    cap = t->strs_len + 16;
    t->pieces = malloc(cap);
    if (t->pieces == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             t->path);
    }

    t->pieces_len = 0;

    for (id = 0; id < t->n_vocab; id++) {
        e = &t->entries[id];
        s = (const uint8_t *) t->strs + e->off;
        n = e->len;
        o = (uint8_t *) t->pieces + t->pieces_len;
        e->piece_off = (uint32_t) t->pieces_len;
        k = 0;

        /* no decoded form is longer than its text */
        slora_assert(t->pieces_len + n <= cap);

        switch (e->type) {

        case SLORA_TOK_CONTROL:
        case SLORA_TOK_UNKNOWN:
        case SLORA_TOK_USER_DEFINED:
            memcpy(o, s, n);
            k = n;
            break;

        case SLORA_TOK_BYTE:
            c = (uint32_t) slora_tok_hexbyte((const char *) s, n);
            if ((int32_t) c >= 0) {
                o[k++] = (uint8_t) c;

            } else if (t->kind == SLORA_TOK_SPM) {
                memcpy(o, s, n);
                k = n;

            } else {
                goto bpe;
            }

            break;

        case SLORA_TOK_NORMAL:
            if (t->kind == SLORA_TOK_SPM) {
                for (i = 0; i < n; i++) {
                    if (i + 2 < n && s[i] == 0xe2 && s[i + 1] == 0x96
                        && s[i + 2] == 0x81)
                    {
                        o[k++] = ' ';
                        i += 2;

                    } else {
                        o[k++] = s[i];
                    }
                }

                break;
            }

        bpe:
            for (i = 0; i < n; i += need) {
                need = slora_utf8_valid(s + i, n - i);

                if (need == 0) {
                    need = 1;
                    o[k++] = s[i];
                    continue;
                }

                c = s[i];
                if (need == 2) {
                    c = ((c & 0x1f) << 6) | (s[i + 1] & 0x3f);
                }

                if (need <= 2 && c < 324 && slora_tok_cpt_byte[c] >= 0) {
                    o[k++] = (uint8_t) slora_tok_cpt_byte[c];

                } else {
                    memcpy(o + k, s + i, need);
                    k += need;
                }
            }

            break;

        default:
            break;                          /* unused: no text */
        }

        e->piece_len = (uint32_t) k;
        t->pieces_len += k;
    }

    return SLORA_OK;
}


static int
slora_tok_is_stop_text(const char *s, size_t n)
{
    static const char  *texts[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
        "<|endoftext|>", "<|eom_id|>", "<EOT>", "<|end_of_text|>",
        "<end_of_utterance>", NULL
    };
    const char        **p;

    for (p = texts; *p != NULL; p++) {
        if (strlen(*p) == n && memcmp(*p, s, n) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
slora_tok_add_stop(slora_tokenizer_t *t, int32_t id)
{
    int32_t  i;

    if (id < 0 || id >= t->n_vocab) {
        return;
    }

    for (i = 0; i < t->n_stop; i++) {
        if (t->stop[i] == id) {
            return;
        }
    }

    if (t->n_stop < SLORA_TOK_MAX_STOP) {
        t->stop[t->n_stop++] = id;
    }
}


static int
slora_tok_find_stops(slora_tokenizer_t *t)
{
    int32_t             id;
    slora_tok_entry_t  *e;

    t->n_stop = 0;
    slora_tok_add_stop(t, t->eos);

    for (id = 0; id < t->n_vocab; id++) {
        e = &t->entries[id];

        if (!slora_tok_is_stop_text(t->strs + e->off, e->len)) {
            continue;
        }

        /* control-looking tokens are control, as llama.cpp decides */
        e->type = SLORA_TOK_CONTROL;

        if (t->eot < 0 && !(e->len == 7
                            && memcmp(t->strs + e->off, "<|end|>", 7) == 0))
        {
            t->eot = id;
        }

        slora_tok_add_stop(t, id);
    }

    slora_tok_add_stop(t, t->eot);
    slora_tok_add_stop(t, t->eom);

    return SLORA_OK;
}


static int
slora_tok_cmp_special(const void *a, const void *b, void *arg)
{
    int32_t                   x, y;
    const slora_tokenizer_t  *t;

    t = arg;
    x = *(const int32_t *) a;
    y = *(const int32_t *) b;

    if (t->entries[x].len != t->entries[y].len) {
        return t->entries[x].len > t->entries[y].len ? -1 : 1;
    }

    return x < y ? -1 : (x > y);
}


static int
slora_tok_sort_specials(slora_tokenizer_t *t, slora_err_t *err)
{
    int32_t  id, n;
    uint8_t  type;

    n = 0;

    for (id = 0; id < t->n_vocab; id++) {
        type = t->entries[id].type;

        if (type == SLORA_TOK_CONTROL || type == SLORA_TOK_USER_DEFINED
            || type == SLORA_TOK_UNKNOWN)
        {
            n++;
        }
    }

    t->specials = malloc((size_t) (n ? n : 1) * sizeof(int32_t));
    if (t->specials == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             t->path);
    }

    t->n_specials = 0;

    for (id = 0; id < t->n_vocab; id++) {
        type = t->entries[id].type;

        if (type == SLORA_TOK_CONTROL || type == SLORA_TOK_USER_DEFINED
            || type == SLORA_TOK_UNKNOWN)
        {
            t->specials[t->n_specials++] = id;
        }
    }

    qsort_r(t->specials, t->n_specials, sizeof(int32_t),
            slora_tok_cmp_special, t);

    return SLORA_OK;
}


int
slora_tok_finish(slora_tokenizer_t *t, slora_err_t *err)
{
    int32_t  b, id;
    char     s[8];
    size_t   n;

    for (id = 0; id < t->n_vocab; id++) {
        if (t->entries[id].len == 0) {
            return slora_err_set(err, SLORA_ERROR, "%s: token %d missing",
                                 t->path, (int) id);
        }
    }

    for (b = 0; b < 256; b++) {
        if (t->kind == SLORA_TOK_BPE) {
            n = slora_tok_byte_char((uint8_t) b, s);
            id = slora_tok_lookup(t, s, n);

        } else {
            snprintf(s, sizeof(s), "<0x%02X>", (unsigned) b);
            id = slora_tok_lookup(t, s, 6);

            if (id < 0) {
                s[0] = (char) b;
                id = slora_tok_lookup(t, s, 1);
            }
        }

        t->byte_tok[b] = (id >= 0 && id < t->n_vocab) ? id : -1;
    }

    if (t->bos >= t->n_vocab) {
        t->bos = -1;
    }

    if (t->eos >= t->n_vocab) {
        t->eos = -1;
    }

    if (t->unk >= t->n_vocab) {
        t->unk = -1;
    }

    if (t->eot >= t->n_vocab) {
        t->eot = -1;
    }

    if (t->eom >= t->n_vocab) {
        t->eom = -1;
    }

    if (t->add_bos && t->bos < 0) {
        t->add_bos = 0;
    }

    if (slora_tok_find_stops(t) != SLORA_OK
        || slora_tok_sort_specials(t, err) != SLORA_OK
        || slora_tok_build_pieces(t, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/* Queries */


int32_t
slora_tokenizer_n_vocab(const slora_tokenizer_t *t)
{
    return t->n_vocab;
}


int32_t
slora_tokenizer_bos(const slora_tokenizer_t *t)
{
    return t->bos;
}


int32_t
slora_tokenizer_eos(const slora_tokenizer_t *t)
{
    return t->eos;
}


int32_t
slora_tokenizer_stop_ids(const slora_tokenizer_t *t, int32_t *ids,
    int32_t cap)
{
    int32_t  i;

    for (i = 0; i < t->n_stop && i < cap; i++) {
        ids[i] = t->stop[i];
    }

    return t->n_stop;
}


int
slora_tokenizer_add_bos(const slora_tokenizer_t *t)
{
    return t->add_bos;
}


int32_t
slora_tokenizer_find(const slora_tokenizer_t *t, const char *text,
    size_t len)
{
    int32_t  id;

    id = slora_tok_lookup(t, text, len);

    return id < t->n_vocab ? id : -1;
}


int
slora_tokenizer_is_special(const slora_tokenizer_t *t, int32_t id)
{
    uint8_t  type;

    if (id < 0 || id >= t->n_vocab) {
        return 0;
    }

    type = t->entries[id].type;

    return type == SLORA_TOK_CONTROL || type == SLORA_TOK_UNKNOWN;
}


slora_chat_e
slora_tokenizer_chat_template(const slora_tokenizer_t *t)
{
    return t->chat;
}


int
slora_tokenizer_token_bytes(const slora_tokenizer_t *t, int32_t id,
    char *buf, size_t cap, size_t *n)
{
    const slora_tok_entry_t  *e;

    if (id < 0 || id >= t->n_vocab) {
        *n = 0;
        return SLORA_ERROR;
    }

    e = &t->entries[id];
    *n = e->piece_len;

    if (e->piece_len > cap) {
        return SLORA_BUSY;
    }

    memcpy(buf, t->pieces + e->piece_off, e->piece_len);

    return SLORA_OK;
}


/* Encoding */


static int
slora_tok_reserve(void **p, size_t *cap, size_t need, size_t size)
{
    void    *q;
    size_t   c;

    if (need <= *cap) {
        return SLORA_OK;
    }

    c = *cap ? *cap : 64;

    while (c < need) {
        c *= 2;
    }

    q = realloc(*p, c * size);
    if (q == NULL) {
        return SLORA_ERROR;
    }

    *p = q;
    *cap = c;

    return SLORA_OK;
}


static void
slora_tok_emit(slora_tok_ctx_t *c, int32_t id)
{
    if (c->n < c->cap) {
        c->ids[c->n] = id;
    }

    c->n++;
}


/* Cuts special tokens out of the text, longest token first; each token
 * splits every raw fragment at each of its occurrences (llama.cpp's
 * tokenizer_st_partition). Without parse_special only user-defined tokens
 * are cut. */
static int
slora_tok_partition(slora_tok_ctx_t *c, const char *text, size_t len,
    int parse_special, slora_tok_frag_t **frags, size_t *n_frags)
{
    int32_t                   k, id;
    size_t                    n, cap, ncap, nn, i, tl, lo, ll, ro, rl;
    const char               *m, *tt;
    slora_tok_frag_t         *f, *g, *tmp;
    const slora_tokenizer_t  *t;
    const slora_tok_entry_t  *e;

    t = c->t;
    cap = 4;
    f = malloc(cap * sizeof(slora_tok_frag_t));
    ncap = 4;
    g = malloc(ncap * sizeof(slora_tok_frag_t));

    if (f == NULL || g == NULL) {
        goto nomem;
    }

    n = 0;

    if (len > 0) {
        f[0].off = 0;
        f[0].len = (uint32_t) len;
        f[0].id = -1;
        n = 1;
    }

    for (k = 0; k < t->n_specials && n > 0; k++) {
        id = t->specials[k];
        e = &t->entries[id];

        if (!parse_special && e->type != SLORA_TOK_USER_DEFINED) {
            continue;
        }

        tt = t->strs + e->off;
        tl = e->len;
        nn = 0;

        for (i = 0; i < n; i++) {
            if (slora_tok_reserve((void **) &g, &ncap, nn + 3,
                                  sizeof(slora_tok_frag_t)) != SLORA_OK)
            {
                goto nomem;
            }

            if (f[i].id >= 0) {
                g[nn++] = f[i];
                continue;
            }

            lo = f[i].off;
            ll = f[i].len;

            for ( ;; ) {
                m = ll >= tl ? memmem(text + lo, ll, tt, tl) : NULL;

                if (m == NULL) {
                    if (ll > 0) {
                        g[nn].off = (uint32_t) lo;
                        g[nn].len = (uint32_t) ll;
                        g[nn].id = -1;
                        nn++;
                    }

                    break;
                }

                rl = (size_t) (m - (text + lo));

                if (e->flags & SLORA_TOK_LSTRIP) {
                    while (rl > 0 && (text[lo + rl - 1] == ' '
                                      || (text[lo + rl - 1] >= '\t'
                                          && text[lo + rl - 1] <= '\r')))
                    {
                        rl--;
                    }
                }

                if (rl > 0) {
                    g[nn].off = (uint32_t) lo;
                    g[nn].len = (uint32_t) rl;
                    g[nn].id = -1;
                    nn++;
                }

                g[nn].off = (uint32_t) (m - text);
                g[nn].len = (uint32_t) tl;
                g[nn].id = id;
                nn++;

                ro = (size_t) (m - text) + tl;
                rl = lo + ll - ro;

                if (e->flags & SLORA_TOK_RSTRIP) {
                    while (rl > 0 && (text[ro] == ' '
                                      || (text[ro] >= '\t'
                                          && text[ro] <= '\r')))
                    {
                        ro++;
                        rl--;
                    }
                }

                lo = ro;
                ll = rl;

                if (slora_tok_reserve((void **) &g, &ncap, nn + 3,
                                      sizeof(slora_tok_frag_t)) != SLORA_OK)
                {
                    goto nomem;
                }
            }
        }

        tmp = f;
        f = g;
        g = tmp;
        n = nn;

        nn = cap;
        cap = ncap;
        ncap = nn;
    }

    free(g);
    *frags = f;
    *n_frags = n;

    return SLORA_OK;

nomem:

    free(f);
    free(g);

    return slora_err_set(c->err, SLORA_ERROR,
                         "%s: out of memory splitting special tokens",
                         t->path);
}


/* Splits text into c->spans with each regex in turn. */
static int
slora_tok_split(slora_tok_ctx_t *c, const char *text, size_t len)
{
    int                       r, rc;
    size_t                    i, n2, at, end, mo, me, step;
    PCRE2_SIZE               *ov;
    slora_tok_span_t         *tmp, sp;
    const slora_tokenizer_t  *t;

    t = c->t;
    c->n_spans = 0;

    if (slora_tok_reserve((void **) &c->spans, &c->spans_cap, 1,
                          sizeof(slora_tok_span_t)) != SLORA_OK)
    {
        goto nomem;
    }

    c->spans[0].off = 0;
    c->spans[0].len = (uint32_t) len;
    c->n_spans = 1;

    for (r = 0; r < t->n_regex; r++) {
        n2 = 0;

        for (i = 0; i < c->n_spans; i++) {
            sp = c->spans[i];
            at = 0;
            end = 0;                        /* end of the last piece */

            while (at <= sp.len) {
                rc = pcre2_match(t->regex[r], (PCRE2_SPTR) (text + sp.off),
                                 sp.len, at, PCRE2_NO_UTF_CHECK, c->md,
                                 NULL);

                if (rc == PCRE2_ERROR_NOMATCH) {
                    break;
                }

                if (rc < 0) {
                    return slora_err_set(c->err, SLORA_ERROR,
                                         "%s: pre-tokenizer regex failed "
                                         "(pcre2 error %d)", t->path, rc);
                }

                ov = pcre2_get_ovector_pointer(c->md);
                mo = ov[0];
                me = ov[1];

                if (slora_tok_reserve((void **) &c->spans2, &c->spans2_cap,
                                      n2 + 2, sizeof(slora_tok_span_t))
                    != SLORA_OK)
                {
                    goto nomem;
                }

                if (me == mo) {
                    /* an empty match splits nothing; step one character */
                    if (mo >= sp.len) {
                        break;
                    }

                    step = slora_utf8_valid((const uint8_t *) text + sp.off
                                            + mo, sp.len - mo);
                    at = mo + (step ? step : 1);
                    continue;
                }

                if (mo > end) {
                    c->spans2[n2].off = (uint32_t) (sp.off + end);
                    c->spans2[n2].len = (uint32_t) (mo - end);
                    n2++;
                }

                c->spans2[n2].off = (uint32_t) (sp.off + mo);
                c->spans2[n2].len = (uint32_t) (me - mo);
                n2++;
                end = me;
                at = me;
            }

            if (end < sp.len) {
                if (slora_tok_reserve((void **) &c->spans2, &c->spans2_cap,
                                      n2 + 1, sizeof(slora_tok_span_t))
                    != SLORA_OK)
                {
                    goto nomem;
                }

                c->spans2[n2].off = (uint32_t) (sp.off + end);
                c->spans2[n2].len = (uint32_t) (sp.len - end);
                n2++;
            }
        }

        tmp = c->spans;
        c->spans = c->spans2;
        c->spans2 = tmp;
        i = c->spans_cap;
        c->spans_cap = c->spans2_cap;
        c->spans2_cap = i;
        c->n_spans = n2;
    }

    return SLORA_OK;

nomem:

    return slora_err_set(c->err, SLORA_ERROR,
                         "%s: out of memory in the pre-tokenizer", t->path);
}


static int
slora_tok_bigram_before(const slora_tok_bigram_t *a,
    const slora_tok_bigram_t *b)
{
    if (a->prio != b->prio) {
        return a->prio > b->prio;
    }

    return a->left < b->left;
}


static int
slora_tok_heap_push(slora_tok_ctx_t *c, const slora_tok_bigram_t *b)
{
    size_t              i, p;
    slora_tok_bigram_t  *h;

    if (slora_tok_reserve((void **) &c->heap, &c->heap_cap, c->heap_len + 1,
                          sizeof(slora_tok_bigram_t)) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    h = c->heap;
    i = c->heap_len++;

    while (i > 0) {
        p = (i - 1) / 2;

        if (!slora_tok_bigram_before(b, &h[p])) {
            break;
        }

        h[i] = h[p];
        i = p;
    }

    h[i] = *b;

    return SLORA_OK;
}


static void
slora_tok_heap_pop(slora_tok_ctx_t *c, slora_tok_bigram_t *b)
{
    size_t               i, l, best, n;
    slora_tok_bigram_t  *h, last;

    h = c->heap;
    *b = h[0];
    n = --c->heap_len;

    if (n == 0) {
        return;
    }

    last = h[n];
    i = 0;

    for ( ;; ) {
        l = 2 * i + 1;

        if (l >= n) {
            break;
        }

        best = l;

        if (l + 1 < n && slora_tok_bigram_before(&h[l + 1], &h[l])) {
            best = l + 1;
        }

        if (!slora_tok_bigram_before(&h[best], &last)) {
            break;
        }

        h[i] = h[best];
        i = best;
    }

    h[i] = last;
}


static int
slora_tok_bpe_pair(slora_tok_ctx_t *c, int32_t l, int32_t r)
{
    slora_tok_bigram_t        b;
    const slora_tok_merge_t  *m;

    if (l < 0 || r < 0) {
        return SLORA_OK;
    }

    m = slora_tok_merge_find(c->t, c->syms[l].id, c->syms[r].id);
    if (m == NULL) {
        return SLORA_OK;
    }

    b.prio = -(float) m->rank;
    b.left = l;
    b.right = r;
    b.lid = c->syms[l].id;
    b.rid = c->syms[r].id;
    b.result = m->result;

    return slora_tok_heap_push(c, &b);
}


/* One pre-tokenized word of byte-level BPE. */
static int
slora_tok_bpe_word(slora_tok_ctx_t *c, const char *word, size_t len)
{
    int32_t                   id, i, n;
    size_t                    k, j;
    slora_tok_sym_t          *s;
    slora_tok_bigram_t        b;
    const slora_tokenizer_t  *t;

    t = c->t;

    if (t->ignore_merges) {
        if (slora_tok_reserve((void **) &c->buf, &c->buf_cap, len * 2 + 1,
                              1) != SLORA_OK)
        {
            goto nomem;
        }

        for (k = 0, j = 0; j < len; j++) {
            k += slora_tok_byte_char((uint8_t) word[j], c->buf + k);
        }

        id = slora_tok_lookup(t, c->buf, k);

        if (id >= 0 && id < t->n_vocab) {
            slora_tok_emit(c, id);
            return SLORA_OK;
        }
    }

    if (slora_tok_reserve((void **) &c->syms, &c->syms_cap, len,
                          sizeof(slora_tok_sym_t)) != SLORA_OK)
    {
        goto nomem;
    }

    n = (int32_t) len;
    s = c->syms;

    for (i = 0; i < n; i++) {
        s[i].id = t->byte_tok[(uint8_t) word[i]];

        if (s[i].id < 0) {
            /* a byte that is no token may still start a merge */
            k = slora_tok_byte_char((uint8_t) word[i], (char *) &b);
            s[i].id = slora_tok_lookup(t, (const char *) &b, k);
        }

        s[i].off = (uint32_t) i;
        s[i].len = 1;
        s[i].prev = i - 1;
        s[i].next = i + 1 < n ? i + 1 : -1;
    }

    c->heap_len = 0;

    for (i = 1; i < n; i++) {
        if (slora_tok_bpe_pair(c, i - 1, i) != SLORA_OK) {
            goto nomem;
        }
    }

    while (c->heap_len > 0) {
        slora_tok_heap_pop(c, &b);

        if (s[b.left].len == 0 || s[b.right].len == 0
            || s[b.left].id != b.lid || s[b.right].id != b.rid
            || s[b.left].next != b.right)
        {
            continue;                       /* stale */
        }

        s[b.left].len += s[b.right].len;
        s[b.left].id = b.result;
        s[b.right].len = 0;
        s[b.left].next = s[b.right].next;

        if (s[b.right].next >= 0) {
            s[s[b.right].next].prev = b.left;
        }

        if (slora_tok_bpe_pair(c, s[b.left].prev, b.left) != SLORA_OK
            || slora_tok_bpe_pair(c, b.left, s[b.left].next) != SLORA_OK)
        {
            goto nomem;
        }
    }

    for (i = 0; i >= 0; i = s[i].next) {
        if (s[i].id >= 0 && s[i].id < t->n_vocab) {
            slora_tok_emit(c, s[i].id);
            continue;
        }

        for (k = 0; k < s[i].len; k++) {
            id = t->byte_tok[(uint8_t) word[s[i].off + k]];

            if (id >= 0) {
                slora_tok_emit(c, id);
            }
        }
    }

    return SLORA_OK;

nomem:

    return slora_err_set(c->err, SLORA_ERROR, "%s: out of memory in BPE",
                         t->path);
}


static int
slora_tok_bpe_fragment(slora_tok_ctx_t *c, const char *text, size_t len)
{
    size_t  i;

    if (slora_tok_split(c, text, len) != SLORA_OK) {
        return SLORA_ERROR;
    }

    for (i = 0; i < c->n_spans; i++) {
        if (slora_tok_bpe_word(c, text + c->spans[i].off, c->spans[i].len)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


static int
slora_tok_spm_pair(slora_tok_ctx_t *c, const char *text, int32_t l,
    int32_t r)
{
    int32_t                   id;
    size_t                    n;
    slora_tok_bigram_t        b;
    const slora_tokenizer_t  *t;

    if (l < 0 || r < 0) {
        return SLORA_OK;
    }

    t = c->t;
    n = c->syms[l].len + c->syms[r].len;
    id = slora_tok_lookup(t, text + c->syms[l].off, n);

    if (id < 0 || id >= t->n_vocab) {
        return SLORA_OK;
    }

    b.prio = t->entries[id].score;
    b.left = l;
    b.right = r;
    b.lid = (int32_t) n;
    b.rid = 0;
    b.result = id;

    return slora_tok_heap_push(c, &b);
}


/* SentencePiece BPE: spaces become U+2581, a space is prepended to the
 * first fragment and to each one after a special token, and the pair
 * whose merged text is the best-scored token merges first. */
static int
slora_tok_spm_fragment(slora_tok_ctx_t *c, const char *text, size_t len,
    int prefix_space)
{
    int32_t                   i, n, id;
    size_t                    k, j, step;
    char                     *w;
    slora_tok_sym_t          *s;
    slora_tok_bigram_t        b;
    const slora_tokenizer_t  *t;

    t = c->t;

    if (slora_tok_reserve((void **) &c->buf, &c->buf_cap, len * 3 + 3, 1)
        != SLORA_OK
        || slora_tok_reserve((void **) &c->syms, &c->syms_cap, len + 1,
                             sizeof(slora_tok_sym_t)) != SLORA_OK)
    {
        goto nomem;
    }

    w = c->buf;
    k = 0;

    if (prefix_space) {
        memcpy(w, "\xe2\x96\x81", 3);
        k = 3;
    }

    for (j = 0; j < len; j++) {
        if (text[j] == ' ') {
            memcpy(w + k, "\xe2\x96\x81", 3);
            k += 3;

        } else {
            w[k++] = text[j];
        }
    }

    s = c->syms;
    n = 0;

    for (j = 0; j < k; j += step) {
        step = slora_utf8_valid((const uint8_t *) w + j, k - j);
        step = step ? step : 1;
        s[n].off = (uint32_t) j;
        s[n].len = (uint32_t) step;
        s[n].id = 0;
        s[n].prev = n - 1;
        s[n].next = j + step < k ? n + 1 : -1;
        n++;
    }

    c->heap_len = 0;

    for (i = 1; i < n; i++) {
        if (slora_tok_spm_pair(c, w, i - 1, i) != SLORA_OK) {
            goto nomem;
        }
    }

    while (c->heap_len > 0) {
        slora_tok_heap_pop(c, &b);

        if (s[b.left].len == 0 || s[b.right].len == 0
            || s[b.left].len + s[b.right].len != (uint32_t) b.lid)
        {
            continue;
        }

        s[b.left].len += s[b.right].len;
        s[b.right].len = 0;
        s[b.left].next = s[b.right].next;

        if (s[b.right].next >= 0) {
            s[s[b.right].next].prev = b.left;
        }

        if (slora_tok_spm_pair(c, w, s[b.left].prev, b.left) != SLORA_OK
            || slora_tok_spm_pair(c, w, b.left, s[b.left].next) != SLORA_OK)
        {
            goto nomem;
        }
    }

    for (i = 0; n > 0 && i >= 0; i = s[i].next) {
        id = slora_tok_lookup(t, w + s[i].off, s[i].len);

        if (id >= 0 && id < t->n_vocab) {
            slora_tok_emit(c, id);
            continue;
        }

        for (j = 0; j < s[i].len; j++) {
            id = t->byte_tok[(uint8_t) w[s[i].off + j]];

            if (id < 0) {
                id = t->unk;
            }

            if (id >= 0) {
                slora_tok_emit(c, id);
            }
        }
    }

    return SLORA_OK;

nomem:

    return slora_err_set(c->err, SLORA_ERROR, "%s: out of memory in SPM",
                         t->path);
}


int
slora_tokenizer_encode(const slora_tokenizer_t *t, const char *text,
    size_t len, int add_special, int parse_special, int32_t *ids,
    int32_t cap, int32_t *n, slora_err_t *err)
{
    int                rc, prev_special;
    size_t             i, step, n_frags;
    slora_tok_ctx_t    c;
    slora_tok_frag_t  *frags;

    *n = 0;

    if (len > INT32_MAX / 4) {
        return slora_err_set(err, SLORA_ERROR,
                             "%s: text of %zu bytes is too long to encode",
                             t->path, len);
    }

    for (i = 0; i < len; i += step) {
        if ((uint8_t) text[i] < 0x80) {
            step = 1;
            continue;
        }

        step = slora_utf8_valid((const uint8_t *) text + i, len - i);

        if (step == 0) {
            return slora_err_set(err, SLORA_ERROR,
                                 "%s: text is not valid UTF-8: byte 0x%02x "
                                 "at offset %zu", t->path,
                                 (unsigned) (uint8_t) text[i], i);
        }
    }

    memset(&c, 0, sizeof(c));
    c.t = t;
    c.err = err;
    c.ids = ids;
    c.cap = cap < 0 ? 0 : cap;

    c.md = pcre2_match_data_create(32, NULL);
    if (c.md == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             t->path);
    }

    frags = NULL;
    n_frags = 0;
    rc = slora_tok_partition(&c, text, len, parse_special, &frags, &n_frags);

    if (rc != SLORA_OK) {
        goto done;
    }

    if (add_special && t->add_bos && t->bos >= 0) {
        slora_tok_emit(&c, t->bos);
    }

    prev_special = 1;

    for (i = 0; i < n_frags && rc == SLORA_OK; i++) {
        if (frags[i].id >= 0) {
            slora_tok_emit(&c, frags[i].id);
            prev_special = 1;
            continue;
        }

        if (t->kind == SLORA_TOK_SPM) {
            rc = slora_tok_spm_fragment(&c, text + frags[i].off,
                                        frags[i].len,
                                        t->add_space_prefix && prev_special);

        } else {
            rc = slora_tok_bpe_fragment(&c, text + frags[i].off,
                                        frags[i].len);
        }

        prev_special = 0;
    }

done:

    free(frags);
    free(c.syms);
    free(c.heap);
    free(c.spans);
    free(c.spans2);
    free(c.buf);
    pcre2_match_data_free(c.md);

    if (rc != SLORA_OK) {
        return rc;
    }

    if (c.n > INT32_MAX) {
        return slora_err_set(err, SLORA_ERROR, "%s: too many tokens",
                             t->path);
    }

    *n = (int32_t) c.n;

    if (c.n > c.cap) {
        return slora_err_set(err, SLORA_BUSY,
                             "%s: %lld tokens do not fit in %d", t->path,
                             (long long) c.n, (int) c.cap);
    }

    return SLORA_OK;
}


/* Streaming detokenizer */


void
slora_detok_init(slora_detok_t *d)
{
    memset(d, 0, sizeof(slora_detok_t));
}


/* How many leading bytes of s[0..n) agree with some valid UTF-8 sequence
 * (0 when s[0] cannot start one); *full is set when they form one. */
static size_t
slora_utf8_prefix(const uint8_t *s, size_t n, int *full)
{
    size_t   need, i;
    uint8_t  c, lo, hi;

    *full = 0;
    c = s[0];

    if (c < 0x80) {
        *full = 1;
        return 1;
    }

    if (c < 0xc2 || c > 0xf4) {
        return 0;
    }

    need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

    for (i = 1; i < need && i < n; i++) {
        lo = 0x80;
        hi = 0xbf;

        if (i == 1) {
            lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
        }

        if (s[i] < lo || s[i] > hi) {
            return i;
        }
    }

    *full = (i == need);

    return i;
}


/* Writes the complete characters of in[0..n) to out + *used, one U+FFFD
 * for each maximal invalid subpart; returns how many input bytes were
 * consumed. Unless final, an incomplete but so far valid tail is left. */
static size_t
slora_detok_emit(uint8_t *in, size_t n, int final, char *out, size_t *used)
{
    int      full;
    size_t   i, k, p;

    i = 0;
    k = *used;

    while (i < n) {
        p = slora_utf8_prefix(in + i, n - i, &full);

        if (full) {
            memcpy(out + k, in + i, p);
            k += p;
            i += p;
            continue;
        }

        if (p > 0 && i + p == n && !final) {
            break;                          /* wait for the rest */
        }

        memcpy(out + k, "\xef\xbf\xbd", 3);
        k += 3;
        i += p ? p : 1;
    }

    *used = k;

    return i;
}


int
slora_detok_push(slora_detok_t *d, const slora_tokenizer_t *t, int32_t id,
    int skip_special, char *out, size_t cap, size_t *n)
{
    size_t                    len, used, k, worst;
    uint8_t                  *in, stack[256];
    const slora_tok_entry_t  *e;

    *n = 0;

    if (id < 0 || id >= t->n_vocab) {
        return SLORA_ERROR;
    }

    e = &t->entries[id];

    if (skip_special
        && (e->type == SLORA_TOK_CONTROL || e->type == SLORA_TOK_UNKNOWN))
    {
        d->n_tokens++;
        return SLORA_OK;
    }

    len = d->n_pending + e->piece_len;
    worst = (e->piece_len + 8) * 3;

    if (worst > cap) {
        return SLORA_BUSY;
    }

    in = len <= sizeof(stack) ? stack : malloc(len);
    if (in == NULL) {
        return SLORA_ERROR;
    }

    memcpy(in, d->pending, d->n_pending);
    memcpy(in + d->n_pending, t->pieces + e->piece_off, e->piece_len);

    used = 0;
    k = slora_detok_emit(in, len, 0, out, &used);

    slora_assert(len - k < sizeof(d->pending));
    d->n_pending = (uint32_t) (len - k);
    memcpy(d->pending, in + k, d->n_pending);

    if (in != stack) {
        free(in);
    }

    d->n_tokens++;
    *n = used;

    return SLORA_OK;
}


int
slora_detok_flush(slora_detok_t *d, char *out, size_t cap, size_t *n)
{
    size_t  used;

    *n = 0;

    if (d->n_pending * 3 > cap) {
        return SLORA_BUSY;
    }

    used = 0;
    (void) slora_detok_emit(d->pending, d->n_pending, 1, out, &used);
    d->n_pending = 0;
    *n = used;

    return SLORA_OK;
}
