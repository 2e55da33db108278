/*
 * slora_tokenizer.c: the tokenizer's tables and the queries on them. The
 * loaders (slora_tokenizer_load.c) build a tokenizer through the calls
 * here: tokens and merge strings are interned into one hash, merges go
 * into a pair table, the pre-tokenizer is chosen by name from llama.cpp's
 * list; slora_tok_finish then computes each token's decoded bytes, the
 * stop tokens and the special tokens in matching order. Encoding
 * (slora_tokenizer_encode.c) and the streaming detokenizer (slora_detok.c)
 * only read these tables.
 *
 * The one idea: the tokenizer is read-only after loading; everything
 * encode and decode look up is computed once by slora_tok_finish, so any
 * number of threads may share a tokenizer.
 */

#define _GNU_SOURCE

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_tokenizer_int.h"
#include "slora_utf8.h"


#define SLORA_TOK_EMPTY_KEY   (~(uint64_t) 0)


static void slora_tok_byte_map_init(void);
static void slora_tok_find_fim(slora_tokenizer_t *t);
static int slora_tok_store(slora_tokenizer_t *t, const char *text,
    size_t len, uint32_t *off);
static void slora_tok_map_put(slora_tokenizer_t *t, int32_t id);
static void slora_tok_map_readd(slora_tokenizer_t *t, int32_t id);
static int slora_tok_hexbyte(const char *s, size_t n);
static int slora_tok_is_stop_text(const char *s, size_t n);
static void slora_tok_add_stop(slora_tokenizer_t *t, int32_t id);
static int slora_tok_map_grow(slora_tokenizer_t *t);
static uint32_t slora_tok_merge_slot(const slora_tokenizer_t *t,
    uint64_t key);
static int slora_tok_merges_grow(slora_tokenizer_t *t);
static int slora_tok_build_pieces(slora_tokenizer_t *t, slora_err_t *err);
static int slora_tok_find_stops(slora_tokenizer_t *t);
static int slora_tok_cmp_special(const void *a, const void *b, void *arg);
static int slora_tok_sort_specials(slora_tokenizer_t *t, slora_err_t *err);


/* GPT-2's byte map: printable bytes stand for themselves, the others
 * (controls, space, 0x7f-0xa0, 0xad) take 256, 257, ... in byte order. */
static uint32_t  slora_tok_byte_cpt[256];
static int16_t   slora_tok_cpt_byte[324];


/* Made once (pthread_once): tokenizers may be loaded on several threads
 * at once, and a table half made, read as made, maps bytes wrong. */
static void
slora_tok_byte_map_make(void)
{
    uint32_t  b, extra;

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


static void
slora_tok_byte_map_init(void)
{
    static pthread_once_t  once = PTHREAD_ONCE_INIT;

    (void) pthread_once(&once, slora_tok_byte_map_make);
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


int
slora_utf8_text_valid(const char *s, size_t len)
{
    size_t          i, n;
    const uint8_t  *p;

    p = (const uint8_t *) s;

    for (i = 0; i < len; i += n) {
        if (p[i] == 0) {
            return 0;
        }

        n = slora_utf8_valid(p + i, len - i);
        if (n == 0) {
            return 0;
        }
    }

    return 1;
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
    t->fim[0] = t->fim[1] = t->fim[2] = -1;     /* slora_tok_finish's */
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
    free(t->chat_system);
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
    i = (uint32_t) slora_fnv1a(text, len) & mask;

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
    i = (uint32_t) slora_fnv1a(t->strs + e->off, e->len) & mask;

    while (t->map.slots[i] >= 0) {
        i = (i + 1) & mask;
    }

    t->map.slots[i] = id;
    t->map.used++;
}


/* Puts id back into a map being rebuilt, unless its text is there. */
static void
slora_tok_map_readd(slora_tokenizer_t *t, int32_t id)
{
    if (slora_tok_lookup(t, t->strs + t->entries[id].off,
                         t->entries[id].len) < 0)
    {
        slora_tok_map_put(t, id);
    }
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
    t->map.used = 0;
    free(old);

    /* the tokens, highest id first (of tokens with one text, the last
     * set), then the strings interned beyond them, which no token's
     * text may lose to */
    for (i = t->n_vocab - 1; i >= 0; i--) {
        if (t->entries[i].len > 0
            || t->entries[i].type != SLORA_TOK_UNDEFINED)
        {
            slora_tok_map_readd(t, i);
        }
    }

    for (i = t->n_vocab; i < t->n_strs; i++) {
        slora_tok_map_readd(t, i);
    }

    return SLORA_OK;
}


int
slora_tok_set_token(slora_tokenizer_t *t, int32_t id, const char *text,
    size_t len, float score, int type, slora_err_t *err)
{
    uint32_t                  mask, i;
    slora_tok_entry_t        *e;
    const slora_tok_entry_t  *o;

    slora_assert(id >= 0 && id < t->n_vocab);

    if (len == 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: token %d is empty",
                             t->path, (int) id);
    }

    /* every call may take a slot: an id given again with another text
     * (tokenizer.json's vocab may do so) leaves its old slot taken, and
     * a full map would never end a probe */
    if ((t->map.used + 1) * 2 > t->map.cap
        && slora_tok_map_grow(t) != SLORA_OK)
    {
        return slora_err_set(err, SLORA_ERROR, "%s: token %d: no memory",
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

    if (e->len > t->max_len) {
        t->max_len = e->len;
    }

    e->type = (uint8_t) (type >= SLORA_TOK_UNDEFINED && type <= SLORA_TOK_BYTE
                         ? type : SLORA_TOK_UNDEFINED);

    /* a later duplicate takes the text, as llama.cpp's map does: the
     * slot of an earlier id with this text becomes this id's */
    mask = t->map.cap - 1;

    for (i = (uint32_t) slora_fnv1a(text, len) & mask;
         t->map.slots[i] >= 0;
         i = (i + 1) & mask)
    {
        o = &t->entries[t->map.slots[i]];

        if (o->len == len && memcmp(t->strs + o->off, text, len) == 0) {
            t->map.slots[i] = id;
            return SLORA_OK;
        }
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

    if ((t->map.used + 1) * 2 > t->map.cap) {
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


const slora_tok_merge_t *
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

    /* the pattern may come from tokenizer.json, whose strings cJSON
     * does not check: PCRE2 checks it (PCRE2_NO_UTF_CHECK is for the
     * match, whose subject encode has checked) */

    re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED,
                       PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &rc,
                       &off, NULL);
    if (re == NULL) {
        pcre2_get_error_message(rc, msg, sizeof(msg));

        if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) {
            return slora_err_set(err, SLORA_ERROR,
                                 "%s: pre-tokenizer regex is not valid "
                                 "UTF-8 at byte %zu: %s", t->path, off,
                                 (char *) msg);
        }

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


size_t
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

    slora_tok_find_fim(t);

    return SLORA_OK;
}


/*
 * The fill-in-the-middle marks into t->fim, once the tables are made (it
 * encodes): the first family whose three tokens the vocabulary has,
 * each a control or user-defined token whose text reads back as itself
 * with special tokens on. The families whose prompt is
 * the three marks alone, prefix, suffix, middle (PSM): Qwen2.5-Coder's,
 * StarCoder's and SantaCoder's spellings, DeepSeek Coder's. (CodeLlama's
 * wants its suffix without SentencePiece's leading space and GLM-4's the
 * suffix first in a chat turn: not served.)
 */
static void
slora_tok_find_fim(slora_tokenizer_t *t)
{
    int          rc;
    size_t       f, k, len;
    int32_t      id, ids[2], n;
    slora_err_t  err;

    static const char  *names[][3] = {
        { "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>" },
        { "<fim_prefix>", "<fim_suffix>", "<fim_middle>" },
        { "<fim-prefix>", "<fim-suffix>", "<fim-middle>" },
        { "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
          "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>",
          "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>" }
    };

    for (f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        for (k = 0; k < 3; k++) {
            len = strlen(names[f][k]);
            id = slora_tokenizer_find(t, names[f][k], len);

            if (id < 0
                || (t->entries[id].type != SLORA_TOK_CONTROL
                    && t->entries[id].type != SLORA_TOK_USER_DEFINED))
            {
                break;
            }

            rc = slora_tokenizer_encode(t, names[f][k], len, 0, 1, ids, 2,
                                        &n, &err);

            if (rc != SLORA_OK || n != 1 || ids[0] != id) {
                break;
            }

            t->fim[k] = id;
        }

        if (k == 3) {
            return;
        }
    }

    t->fim[0] = t->fim[1] = t->fim[2] = -1;
}


/* Queries */


int32_t
slora_tokenizer_n_vocab(const slora_tokenizer_t *t)
{
    return t->n_vocab;
}


size_t
slora_tokenizer_max_token_len(const slora_tokenizer_t *t)
{
    return t->max_len;
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


/* The fill-in-the-middle marks slora_tok_find_fim found at load. */
int
slora_tokenizer_fim(const slora_tokenizer_t *t, int32_t fim[3])
{
    if (t->fim[0] < 0) {
        return SLORA_ERROR;
    }

    fim[0] = t->fim[0];
    fim[1] = t->fim[1];
    fim[2] = t->fim[2];

    return SLORA_OK;
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


const char *
slora_tokenizer_chat_system(const slora_tokenizer_t *t)
{
    return t->chat_system;
}


int
slora_tokenizer_chat_bos(const slora_tokenizer_t *t)
{
    return t->chat_bos;
}


int
slora_tokenizer_chat_think(const slora_tokenizer_t *t)
{
    return t->chat_think;
}


int
slora_tokenizer_chat_call_ids(const slora_tokenizer_t *t)
{
    return t->chat_call_ids;
}


unsigned
slora_tokenizer_chat_flags(const slora_tokenizer_t *t)
{
    return t->chat_flags;
}


const char *
slora_tokenizer_token_text(const slora_tokenizer_t *t, int32_t id,
    size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }

    *len = t->entries[id].len;

    return t->strs + t->entries[id].off;
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
