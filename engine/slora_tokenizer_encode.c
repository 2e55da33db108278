/*
 * slora_tokenizer_encode.c: encoding for byte-level BPE and SentencePiece
 * BPE vocabularies, behaving as llama.cpp's llama-vocab.cpp does (its
 * tests' expected ids are ours).
 *
 * Encoding runs in three stages. Special tokens are cut out of the text
 * first, one token text at a time, longest first (a rendered chat's plain
 * spans, the request's text, keep theirs as text). The remaining text
 * fragments are split into words by the pre-tokenizer regexes, each regex
 * splitting the pieces the previous one left (matches and the gaps between
 * them both become pieces). Each word is then merged pair by pair from a
 * heap: by merge rank for byte-level BPE, by the merged token's score for
 * SentencePiece. Byte-level BPE works on the word's bytes, each standing for
 * one printable code point of GPT-2's byte map; a symbol left that is no
 * token falls back to one token per byte.
 *
 * The one idea: encode keeps all its scratch in one per-call context and
 * only reads the tokenizer, so any number of threads may share one.
 */

#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "slora_tokenizer_int.h"


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
    int64_t                   limit;     /* stop once n passes it */

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


static void slora_tok_emit(slora_tok_ctx_t *c, int32_t id);
static int slora_tok_reserve(void **p, size_t *cap, size_t need,
    size_t size);
static int slora_tok_encode(const slora_tokenizer_t *t, const char *text,
    size_t len, int n_bos, int parse_special, const slora_span_t *plain,
    size_t n_plain, int32_t *ids, int32_t cap, int32_t limit, int32_t *n,
    slora_err_t *err);
static int slora_tok_partition(slora_tok_ctx_t *c, const char *text,
    size_t len, int parse_special, const slora_span_t *plain,
    size_t n_plain, slora_tok_frag_t **frags, size_t *n_frags);
static size_t slora_tok_plain(const slora_span_t *plain, size_t n_plain,
    size_t off, size_t len);
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
 * are cut; with it, all, but for an occurrence of a control token that
 * overlaps one of plain[0..n_plain) (the search goes on past that span's
 * end: any occurrence that begins in it overlaps it too). */
static int
slora_tok_partition(slora_tok_ctx_t *c, const char *text, size_t len,
    int parse_special, const slora_span_t *plain, size_t n_plain,
    slora_tok_frag_t **frags, size_t *n_frags)
{
    int32_t                   k, id;
    size_t                    n, cap, ncap, nn, i, tl, lo, ll, ro, rl, at,
                              end, skip;
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
            at = lo;

            for ( ;; ) {
                end = lo + ll;
                m = at < end && end - at >= tl
                    ? memmem(text + at, end - at, tt, tl) : NULL;

                if (m != NULL && n_plain > 0
                    && e->type != SLORA_TOK_USER_DEFINED)
                {
                    skip = slora_tok_plain(plain, n_plain,
                                           (size_t) (m - text), tl);

                    if (skip > 0) {
                        at = skip;
                        continue;
                    }
                }

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
                at = lo;

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


/* The end of the plain span that bytes [off, off + len) overlap, 0 where
 * they overlap none (spans sorted: a binary search for the first that
 * ends after off). */
static size_t
slora_tok_plain(const slora_span_t *plain, size_t n_plain, size_t off,
    size_t len)
{
    size_t  lo, hi, mid;

    lo = 0;
    hi = n_plain;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (plain[mid].off + plain[mid].len <= off) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return lo < n_plain && plain[lo].off < off + len
           ? plain[lo].off + plain[lo].len : 0;
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

    for (i = 0; i < c->n_spans && c->n <= c->limit; i++) {
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
    return slora_tok_encode(t, text, len, add_special > 0 && t->add_bos,
                            parse_special, NULL, 0, ids, cap, INT32_MAX - 1,
                            n, err);
}


int
slora_tokenizer_encode_upto(const slora_tokenizer_t *t, const char *text,
    size_t len, int add_special, int parse_special, int32_t *ids,
    int32_t cap, int32_t limit, int32_t *n, slora_err_t *err)
{
    return slora_tok_encode(t, text, len, add_special > 0 && t->add_bos,
                            parse_special, NULL, 0, ids, cap, limit, n, err);
}


int
slora_tokenizer_encode_chat(const slora_tokenizer_t *t, const char *text,
    size_t len, int bos, const slora_span_t *plain, size_t n_plain,
    int32_t *ids, int32_t cap, int32_t limit, int32_t *n, slora_err_t *err)
{
    size_t  i;

    for (i = 0; i < n_plain; i++) {
        slora_assert(plain[i].len <= len && plain[i].off <= len - plain[i].len
                     && (i == 0
                         || plain[i].off >= plain[i - 1].off
                                            + plain[i - 1].len));
    }

    return slora_tok_encode(t, text, len,
                            ((bos & SLORA_TOK_BOS_TEMPLATE) != 0)
                            + ((bos & SLORA_TOK_BOS_TOKENIZER) && t->add_bos),
                            1, plain, n_plain, ids, cap, limit, n, err);
}


/* The encoders' one body: n_bos BOS first (where the vocabulary has
 * one), special tokens cut (parse_special, and outside plain[0..n_plain)),
 * then each fragment merged, up to limit tokens. */
static int
slora_tok_encode(const slora_tokenizer_t *t, const char *text, size_t len,
    int n_bos, int parse_special, const slora_span_t *plain,
    size_t n_plain, int32_t *ids, int32_t cap, int32_t limit, int32_t *n,
    slora_err_t *err)
{
    int                rc, prev_special, k;
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
    c.limit = limit < c.cap ? c.cap : limit;

    c.md = pcre2_match_data_create(32, NULL);
    if (c.md == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: out of memory",
                             t->path);
    }

    frags = NULL;
    n_frags = 0;
    rc = slora_tok_partition(&c, text, len, parse_special, plain, n_plain,
                             &frags, &n_frags);

    if (rc != SLORA_OK) {
        goto done;
    }

    /* a rendered chat may ask for two: the template's (which the
     * renderer leaves to the encoder) and the tokenizer's on top, as
     * vLLM's add_special_tokens gives a chat (slora_tokenizer_encode_chat
     * counts them) */
    for (k = 0; k < n_bos && t->bos >= 0; k++) {
        slora_tok_emit(&c, t->bos);
    }

    prev_special = 1;

    for (i = 0; i < n_frags && rc == SLORA_OK && c.n <= c.limit; i++) {
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

    if (c.n > c.limit) {
        *n = (int32_t) c.limit + 1;
        return slora_err_set(err, SLORA_BUSY,
                             "%s: more than %lld tokens do not fit in %d",
                             t->path, (long long) c.limit, (int) c.cap);
    }

    *n = (int32_t) c.n;

    if (c.n > c.cap) {
        return slora_err_set(err, SLORA_BUSY,
                             "%s: %lld tokens do not fit in %d", t->path,
                             (long long) c.n, (int) c.cap);
    }

    return SLORA_OK;
}
