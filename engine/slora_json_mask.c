/*
 * slora_json_mask.c: the tokens constrained JSON output lets the sampler
 * draw (slora_json.h): every token's bytes, grouped by first byte, and
 * the mask of a logits row for an automaton state.
 *
 * The one idea: a token is allowed when a copy of the state takes its
 * bytes, so the grammar lives in one place (slora_json.c); the mask only
 * avoids trying what cannot pass. Tokens are grouped in runs by their
 * first two bytes: a first byte the state refuses drops every run it
 * begins, a second byte its run (a byte-level vocabulary has some twenty
 * thousand tokens that begin with a blank, and after a blank most go no
 * further); and inside a string the tokens of plain string text (marked
 * once, as the bytes that leave a string's state unchanged but for its
 * count of characters, which is kept), which lead each run, are all
 * allowed at once without a try or a look, or in a string with a
 * maxLength each by its count. Inside a string with a pattern, the
 * tokens are walked in the order of their bytes through the pattern's
 * automaton, a table lookup a byte: a token goes on from the states of
 * the prefix it shares with the one before it, and a prefix the
 * automaton refuses drops every token that begins with it. A grammar's
 * tokens are walked so through the innermost rule's automaton, which is
 * what its stack tries first for every byte; a token that leaves that
 * automaton is tried on a copy of the state. A lazy schema's triggers
 * are watched in the same tokens' bytes by slora_json_trigger.c.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json.h"
#include "slora_json_int.h"


#define SLORA_JSON_WALK_MAX  256     /* a token's bytes walked through a
                                       pattern's automaton */

enum {                              /* what a walked automaton holds */
    SLORA_JSON_WALK_STRING = 0,     /* a JSON string's text */
    SLORA_JSON_WALK_RAW,            /* a guided regex's whole answer */
    SLORA_JSON_WALK_RULE            /* a grammar's innermost rule */
};


static slora_json_vocab_t *slora_json_vocab_alloc(int32_t n_vocab,
    size_t n_bytes, slora_err_t *err);
static int slora_json_vocab_index(slora_json_vocab_t *v, slora_err_t *err);
static int32_t slora_json_key(const char *p, uint32_t len);
static int32_t slora_json_mask_pattern(const slora_json_t *j,
    const slora_json_vocab_t *v, const slora_regex_t *re, uint32_t state,
    uint32_t chars, int walk, float *row);
static int slora_json_raw_byte(unsigned c);
static int slora_json_vocab_lex(slora_json_vocab_t *v, slora_err_t *err);
static int slora_json_lex_cmp(const void *a, const void *b);
static int slora_json_cmp(const void *a, const void *b);


slora_json_vocab_t *
slora_json_vocab_create(const slora_tokenizer_t *t, int32_t n_vocab,
    slora_err_t *err)
{
    char                *p;
    size_t               len, total;
    int32_t              id, n_tok;
    slora_json_vocab_t  *v;

    n_tok = slora_tokenizer_n_vocab(t);
    total = 0;

    /* two passes: the bytes' size, then the bytes */
    for (id = 0; id < n_vocab && id < n_tok; id++) {
        if (slora_tokenizer_is_special(t, id)) {
            continue;
        }

        if (slora_tokenizer_token_bytes(t, id, NULL, 0, &len) == SLORA_ERROR)
        {
            slora_err_set(err, SLORA_ERROR, "json: token %d has no bytes",
                          id);
            return NULL;
        }

        total += len;
    }

    v = slora_json_vocab_alloc(n_vocab, total, err);
    if (v == NULL) {
        return NULL;
    }

    p = v->bytes;

    for (id = 0; id < n_vocab; id++) {
        v->off[id] = (uint32_t) (p - v->bytes);
        len = 0;

        if (id < n_tok && !slora_tokenizer_is_special(t, id)
            && slora_tokenizer_token_bytes(t, id, p,
                                           total - (size_t) (p - v->bytes),
                                           &len) != SLORA_OK)
        {
            slora_json_vocab_free(v);
            slora_err_set(err, SLORA_ERROR, "json: token %d's bytes", id);
            return NULL;
        }

        p += len;
    }

    v->off[n_vocab] = (uint32_t) (p - v->bytes);

    if (slora_json_vocab_index(v, err) != SLORA_OK) {
        slora_json_vocab_free(v);
        return NULL;
    }

    return v;
}


slora_json_vocab_t *
slora_json_vocab_from(const char *const *tokens, const size_t *lens,
    int32_t n_vocab, slora_err_t *err)
{
    size_t               total;
    int32_t              id;
    slora_json_vocab_t  *v;

    total = 0;

    for (id = 0; id < n_vocab; id++) {
        total += lens[id];
    }

    v = slora_json_vocab_alloc(n_vocab, total, err);
    if (v == NULL) {
        return NULL;
    }

    total = 0;

    for (id = 0; id < n_vocab; id++) {
        v->off[id] = (uint32_t) total;
        memcpy(v->bytes + total, tokens[id], lens[id]);
        total += lens[id];
    }

    v->off[n_vocab] = (uint32_t) total;

    if (slora_json_vocab_index(v, err) != SLORA_OK) {
        slora_json_vocab_free(v);
        return NULL;
    }

    return v;
}


void
slora_json_vocab_free(slora_json_vocab_t *v)
{
    if (v == NULL) {
        return;
    }

    free(v->off);
    free(v->bytes);
    free(v->ids);
    free(v->runs);
    free(v->never);
    free(v->plain);
    free(v->lex);
    free(v->lex_off);
    free(v->lex_len);
    free(v->lcp);
    free(v->chars);
    free(v);
}


int32_t
slora_json_mask(const slora_json_t *j, const slora_json_vocab_t *v,
    float *row)
{
    int                      took1, took2, raw, walk;
    char                     c;
    int32_t                  r, k, id, n;
    int64_t                  room;
    uint32_t                 state, chars;
    slora_json_t             at1, at2, t;
    const slora_regex_t     *re;
    const slora_json_run_t  *run;

    /* plain text tokens leave such a state as it is but for the
     * characters it counts: all fit, or those within room */
    room = slora_json_text_room(j);
    re = slora_json_in_pattern(j, &state, &chars, &raw);
    walk = raw ? SLORA_JSON_WALK_RAW : SLORA_JSON_WALK_STRING;

    if (re == NULL) {
        re = slora_json_grammar_walk(j, &state);
        chars = 0;
        walk = SLORA_JSON_WALK_RULE;
    }

    took1 = 0;
    n = 0;

    if (re != NULL) {
        n = slora_json_mask_pattern(j, v, re, state, chars, walk, row);
    }

    for (r = 0; re == NULL && r < v->n_runs; r++) {
        run = &v->runs[r];

        if (r == 0 || run->b1 != v->runs[r - 1].b1) {
            slora_json_copy(&at1, j);
            c = (char) run->b1;
            took1 = slora_json_feed(&at1, &c, 1);
        }

        if (took1 && run->single) {
            n += run->end - run->start;
            continue;
        }

        /* the second byte is tried when a token of the run needs it */
        took2 = -1;

        k = run->start;

        if (took1 && room == INT64_MAX) {
            n += run->plain_end - run->start;
            k = run->plain_end;

        } else if (took1 && room >= 0) {
            for ( /* void */ ; k < run->plain_end; k++) {
                id = v->ids[k];

                if (v->chars[id] <= room) {
                    n++;

                } else {
                    row[id] = -INFINITY;
                }
            }
        }

        for ( /* void */ ; took1 && k < run->end; k++) {
            id = v->ids[k];

            if (took2 == -1) {
                slora_json_copy(&at2, &at1);
                c = (char) run->b2;
                took2 = slora_json_feed(&at2, &c, 1);

                if (!took2) {
                    break;
                }
            }

            if (v->off[id + 1] - v->off[id] == 2) {
                n++;
                continue;
            }

            slora_json_copy(&t, &at2);

            if (slora_json_feed(&t, v->bytes + v->off[id] + 2,
                                v->off[id + 1] - v->off[id] - 2))
            {
                n++;

            } else {
                row[id] = -INFINITY;
            }
        }

        /* a byte refused: the rest of the run (all of it, or from the
         * token that tried the second byte on) */
        for ( /* void */ ; k < run->end; k++) {
            row[v->ids[k]] = -INFINITY;
        }
    }

    for (k = 0; k < v->n_never; k++) {
        row[v->never[k]] = -INFINITY;
    }

    return n;
}


/* The mask inside a string with a pattern (or a guided regex's text),
 * token by token in the order of their bytes: st[d] is the automaton's
 * state after the first d bytes of the token before, and a token goes
 * on from the bytes it shares with it (walked); a prefix that led to no
 * state drops the tokens that share it without a look (a first byte's
 * all at once, from lex_first). A token holding
 * a byte the automaton does not take as it is (inside a JSON string: a
 * quote, a backslash, a control byte), or too long to walk, is tried on
 * a copy of the state. A state is viable after a token when it is after
 * each of its bytes, so only the last is asked. A grammar's rule
 * (SLORA_JSON_WALK_RULE) is left, not refused, where its automaton has
 * no next state: such a token is tried on a copy, and a first byte's
 * tokens dropped at once only where a copy refuses that byte; a control
 * byte (a call byte's kind) is tried on a copy too. */
static int32_t
slora_json_mask_pattern(const slora_json_t *j, const slora_json_vocab_t *v,
    const slora_regex_t *re, uint32_t state, uint32_t chars, int walk,
    float *row)
{
    int             out_ok;
    int32_t         k, id, n, end;
    uint32_t        d, len, walked, s, out_d;
    uint32_t        st[SLORA_JSON_WALK_MAX + 1], ch[SLORA_JSON_WALK_MAX + 1];
    slora_json_t    t, out;
    const uint8_t  *p;

    st[0] = state;
    ch[0] = chars;
    walked = 0;
    n = 0;
    out_d = 0;          /* a grammar's rule left after out_d bytes: out
                           is a copy of j that took them (out_ok) */
    out_ok = 0;

    for (k = 0; k < v->n_lex; k++) {
        if (v->lcp[k] < walked) {
            walked = v->lcp[k];
        }

        id = v->lex[k];
        p = (const uint8_t *) v->bytes + v->lex_off[k];
        len = v->lex_len[k] != 0 ? v->lex_len[k]
                                 : v->off[id + 1] - v->off[id];

        if (walked > 0 && st[walked] == SLORA_REGEX_DEAD) {
            if (walk == SLORA_JSON_WALK_RULE && out_ok) {
                /* the prefix that left the rule is taken: the rest */
                goto rest;
            }

            /* a refused first byte drops its tokens at once */
            end = walked == 1
                  ? v->lex_first[(uint8_t) v->bytes[v->lex_off[k]] + 1]
                  : k + 1;

            while (k < end) {
                row[v->lex[k++]] = -INFINITY;
            }

            k--;
            continue;
        }

        for (d = walked; d < len && d < SLORA_JSON_WALK_MAX; d++) {
            if (walk == SLORA_JSON_WALK_STRING
                ? !slora_json_raw_byte(p[d])
                : walk == SLORA_JSON_WALK_RULE && p[d] < 0x20)
            {
                break;
            }

            s = slora_regex_next(re, st[d], p[d]);
            st[d + 1] = s;
            ch[d + 1] = ch[d] + (uint32_t) slora_regex_lead(p[d]);

            if (s == SLORA_REGEX_DEAD) {
                d++;
                break;
            }
        }

        walked = d;

        if (d > 0 && st[d] == SLORA_REGEX_DEAD) {
            if (walk == SLORA_JSON_WALK_RULE) {
                /* out of the rule: the stack tries the prefix once for
                 * every token that shares it */
                out_d = d;
                slora_json_copy(&out, j);
                out_ok = slora_json_feed(&out, (const char *) p, d);

                if (out_ok) {
                    goto rest;
                }
            }

            row[id] = -INFINITY;

        } else if (d == len) {
            if (slora_regex_viable(re, st[d], ch[d])) {
                n++;

            } else {
                row[id] = -INFINITY;
            }

        } else {
            slora_json_copy(&t, j);

            if (slora_json_feed(&t, (const char *) p, len)) {
                n++;

            } else {
                row[id] = -INFINITY;
            }
        }

        continue;

    rest:

        slora_json_copy(&t, &out);

        if (slora_json_feed(&t, (const char *) p + out_d, len - out_d)) {
            n++;

        } else {
            row[id] = -INFINITY;
        }
    }

    return n;
}


/* A byte a string's pattern takes as it is: not the string's end, an
 * escape's start or a control byte. */
static int
slora_json_raw_byte(unsigned c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}


int
slora_json_feed_token(slora_json_t *j, const slora_json_vocab_t *v,
    int32_t id)
{
    if (id < 0 || id >= v->n_vocab || v->off[id] == v->off[id + 1]) {
        return 0;
    }

    return slora_json_feed(j, v->bytes + v->off[id],
                           v->off[id + 1] - v->off[id]);
}


static slora_json_vocab_t *
slora_json_vocab_alloc(int32_t n_vocab, size_t n_bytes, slora_err_t *err)
{
    slora_json_vocab_t  *v;

    if (n_vocab <= 0 || n_bytes >= UINT32_MAX) {
        slora_err_set(err, SLORA_ERROR, "json: a vocabulary of %d tokens, "
                      "%zu bytes", n_vocab, n_bytes);
        return NULL;
    }

    v = calloc(1, sizeof(slora_json_vocab_t));
    if (v == NULL) {
        slora_err_set(err, SLORA_ERROR, "json: out of memory");
        return NULL;
    }

    v->n_vocab = n_vocab;
    v->off = malloc(((size_t) n_vocab + 1) * sizeof(uint32_t));
    v->bytes = malloc(n_bytes + 1);
    v->ids = malloc((size_t) n_vocab * sizeof(int32_t));
    v->runs = malloc((size_t) n_vocab * sizeof(slora_json_run_t));
    v->never = malloc((size_t) n_vocab * sizeof(int32_t));
    v->plain = calloc((size_t) n_vocab, 1);
    v->lex = malloc((size_t) n_vocab * sizeof(int32_t));
    v->lex_off = malloc((size_t) n_vocab * sizeof(uint32_t));
    v->lex_len = malloc((size_t) n_vocab * sizeof(uint16_t));
    v->lcp = malloc((size_t) n_vocab);
    v->chars = calloc((size_t) n_vocab, sizeof(uint16_t));

    if (v->off == NULL || v->bytes == NULL || v->ids == NULL
        || v->runs == NULL || v->never == NULL || v->plain == NULL
        || v->lex == NULL || v->lex_off == NULL || v->lex_len == NULL
        || v->lcp == NULL || v->chars == NULL)
    {
        slora_json_vocab_free(v);
        slora_err_set(err, SLORA_ERROR, "json: out of memory");
        return NULL;
    }

    return v;
}


/* Sorts the tokens into runs by their first two bytes (a token of one
 * byte first) and marks the plain text ones: no '"' (which could leave a
 * string and come back to another), and taken inside a string to end
 * inside it, past any escape or UTF-8 sequence. */
static int
slora_json_vocab_index(slora_json_vocab_t *v, slora_err_t *err)
{
    int32_t            id, k, n, key;
    uint32_t           len;
    uint64_t          *sorted;
    const char        *p;
    slora_json_t       in_string, t;
    slora_json_run_t  *run;

    /* each token with bytes as its key << 33 | not plain << 32 | its id:
     * runs by key, the plain text tokens first in each */
    sorted = malloc((size_t) v->n_vocab * sizeof(uint64_t));
    if (sorted == NULL) {
        return slora_err_set(err, SLORA_ERROR, "json: out of memory");
    }

    slora_json_init(&in_string, NULL);

    if (!slora_json_feed(&in_string, "{\"", 2)) {
        free(sorted);
        return slora_err_set(err, SLORA_ERROR, "json: the automaton");
    }

    v->n_never = 0;
    n = 0;

    for (id = 0; id < v->n_vocab; id++) {
        len = v->off[id + 1] - v->off[id];
        p = v->bytes + v->off[id];

        if (len == 0) {
            v->never[v->n_never++] = id;
            continue;
        }

        slora_json_copy(&t, &in_string);
        v->plain[id] = memchr(p, '"', len) == NULL
                       && slora_json_feed(&t, p, len)
                       && slora_json_in_text(&t)
                       && t.frames[t.depth - 1].a <= UINT16_MAX;
        v->chars[id] = v->plain[id] ? (uint16_t) t.frames[t.depth - 1].a
                                    : 0;

        sorted[n++] = ((uint64_t) slora_json_key(p, len) << 33)
                      | ((uint64_t) !v->plain[id] << 32) | (uint32_t) id;
    }

    qsort(sorted, (size_t) n, sizeof(uint64_t), slora_json_cmp);

    v->n_runs = 0;
    run = NULL;

    for (k = 0; k < n; k++) {
        key = (int32_t) (sorted[k] >> 33);
        v->ids[k] = (int32_t) (uint32_t) sorted[k];

        if (run == NULL || key != ((int32_t) run->b1 << 9)
                                  + (run->single ? 0 : 256 + run->b2))
        {
            run = &v->runs[v->n_runs++];
            run->b1 = (uint8_t) (key >> 9);
            run->single = (key & 256) == 0;
            run->b2 = (uint8_t) key;
            run->start = k;
            run->plain_end = k;
        }

        run->end = k + 1;

        if (v->plain[v->ids[k]]) {
            run->plain_end = k + 1;
        }
    }

    free(sorted);

    return slora_json_vocab_lex(v, err);
}


/* The tokens with bytes in the order of their bytes, and how many bytes
 * each shares with the one before. */
typedef struct {
    const char  *p;
    uint32_t     len;
    int32_t      id;
} slora_json_lex_t;


static int
slora_json_vocab_lex(slora_json_vocab_t *v, slora_err_t *err)
{
    int32_t            id, k;
    uint32_t           m, common;
    slora_json_lex_t  *all;

    all = malloc((size_t) v->n_vocab * sizeof(slora_json_lex_t));
    if (all == NULL) {
        return slora_err_set(err, SLORA_ERROR, "json: out of memory");
    }

    v->n_lex = 0;

    for (id = 0; id < v->n_vocab; id++) {
        if (v->off[id + 1] > v->off[id]) {
            all[v->n_lex].p = v->bytes + v->off[id];
            all[v->n_lex].len = v->off[id + 1] - v->off[id];
            all[v->n_lex].id = id;
            v->n_lex++;
        }
    }

    qsort(all, (size_t) v->n_lex, sizeof(slora_json_lex_t),
          slora_json_lex_cmp);

    for (k = 0; k < v->n_lex; k++) {
        v->lex[k] = all[k].id;
        v->lex_off[k] = v->off[all[k].id];
        v->lex_len[k] = (uint16_t) (all[k].len <= UINT16_MAX ? all[k].len
                                                              : 0);
        common = 0;

        if (k > 0) {
            m = all[k].len < all[k - 1].len ? all[k].len : all[k - 1].len;

            while (common < m && common < 255
                   && all[k].p[common] == all[k - 1].p[common])
            {
                common++;
            }
        }

        v->lcp[k] = (uint8_t) common;
    }

    for (m = 0, k = 0; m <= 256; m++) {
        while (k < v->n_lex && (uint8_t) all[k].p[0] < m) {
            k++;
        }

        v->lex_first[m] = k;
    }

    free(all);

    return SLORA_OK;
}


static int
slora_json_lex_cmp(const void *a, const void *b)
{
    int                      c;
    const slora_json_lex_t  *x = a, *y = b;

    c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);

    if (c != 0) {
        return c;
    }

    return x->len < y->len ? -1 : x->len > y->len ? 1
           : x->id < y->id ? -1 : x->id > y->id;
}


static int
slora_json_cmp(const void *a, const void *b)
{
    uint64_t  x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}


/* A token's run: b1 << 9, then 256 + b2 for tokens of two bytes or
 * more, so that a token of one byte comes before the longer ones. */
static int32_t
slora_json_key(const char *p, uint32_t len)
{
    return ((int32_t) (unsigned char) p[0] << 9)
           | (len > 1 ? 256 | (unsigned char) p[1] : 0);
}
