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
 * automaton is tried on a copy of the state. A lazy schema's trigger is
 * looked for in the same tokens' bytes; before it (a structural tag's,
 * a tool call's), the tokens that would complete one and run on where
 * its value does not go are refused: those holding a trigger whole,
 * listed once, and where the text ends with a trigger's first bytes the
 * run of tokens beginning with its rest, found by bisection in the
 * order of their bytes, most refused by their first byte past it.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json.h"


#define SLORA_JSON_WALK_MAX  256     /* a token's bytes walked through a
                                       pattern's automaton */

enum {                              /* what a walked automaton holds */
    SLORA_JSON_WALK_STRING = 0,     /* a JSON string's text */
    SLORA_JSON_WALK_RAW,            /* a guided regex's whole answer */
    SLORA_JSON_WALK_RULE            /* a grammar's innermost rule */
};


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


static slora_json_vocab_t *slora_json_vocab_alloc(int32_t n_vocab,
    size_t n_bytes, slora_err_t *err);
static int slora_json_vocab_index(slora_json_vocab_t *v, slora_err_t *err);
static int32_t slora_json_key(const char *p, uint32_t len);
static int slora_json_trigger_inside(const slora_json_trigger_t *t,
    uint32_t n, const char *p, size_t len);
static int slora_json_trigger_holds(const slora_json_trigger_t *t,
    uint32_t need);
static int32_t slora_json_trigger_range(const slora_json_trigger_t *t,
    uint32_t m, const slora_json_vocab_t *v, int32_t *lo);
static int slora_json_prefix_cmp(const char *q, uint32_t len,
    const char *p, uint32_t m);
static int slora_json_trigger_scan(slora_json_trigger_t *t, const char *p,
    size_t n);
static int slora_json_triggers_look(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id, int64_t past);
static size_t slora_json_trigger_end(const slora_json_trigger_t *t,
    const char *p, size_t n);
static void slora_json_trigger_takes(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, int whole, uint8_t *takes);
static int slora_json_trigger_first(const slora_json_trigger_t *t,
    uint32_t n, uint32_t k, const char *p, size_t len, size_t m);
static void slora_json_trigger_try(const slora_json_trigger_t *t,
    uint32_t n, const slora_json_schema_t *s, int compact, int whole,
    const slora_json_vocab_t *v, int32_t id, float *row);
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


int
slora_json_trigger_feed(slora_json_trigger_t *t,
    const slora_json_vocab_t *v, int32_t id)
{
    size_t       n, keep, skip;
    const char  *p;

    if (t->len == 0 || id < 0 || id >= v->n_vocab) {
        return 0;
    }

    if (id == t->id && !t->lead) {
        t->past = 0;
        t->tail_len = 0;
        return 1;
    }

    p = v->bytes + v->off[id];
    n = v->off[id + 1] - v->off[id];

    if (t->lead) {
        /* blanks before it are no text yet */
        for (skip = 0; t->seen == 0 && skip < n && (p[skip] == ' '
                       || p[skip] == '\n' || p[skip] == '\t'
                       || p[skip] == '\r'); skip++)
        {
            /* void */
        }

        if (t->seen >= t->len || skip == n) {
            return 0;
        }

        keep = t->len - t->seen < n - skip ? t->len - t->seen : n - skip;

        if (memcmp(p + skip, t->text + t->seen, keep) != 0) {
            t->seen = t->len;
            t->at = t->len;
            return 0;
        }

        t->at = t->seen;
        t->seen += (uint32_t) keep;

        return t->seen == t->len;
    }

    return slora_json_trigger_scan(t, p, n);
}


/* Bytes p[0..n) that end a token, looked at by trigger t (not lead): 1
 * when they complete it (t->past of them after it), else kept in its
 * tail. */
static int
slora_json_trigger_scan(slora_json_trigger_t *t, const char *p, size_t n)
{
    size_t  end, keep;

    end = slora_json_trigger_end(t, p, n);

    if (end > 0) {
        t->past = (uint32_t) (n - end);
        t->tail_len = 0;
        return 1;
    }

    /* the tail: the last len - 1 bytes of the output (a whole trigger
     * would have been found) */
    if (n >= t->len - 1) {
        memcpy(t->tail, p + n - (t->len - 1), t->len - 1);
        t->tail_len = t->len - 1;

    } else {
        keep = t->tail_len + n > t->len - 1 ? t->len - 1 - n : t->tail_len;
        memmove(t->tail, t->tail + t->tail_len - keep, keep);
        memcpy(t->tail + keep, p, n);
        t->tail_len = (uint32_t) (keep + n);
    }

    return 0;
}


/* Where a token's bytes p[0..n) complete trigger t (not lead), the
 * output's last bytes before them in its tail: the end of the first
 * such (1 to n), or 0. */
static size_t
slora_json_trigger_end(const slora_json_trigger_t *t, const char *p,
    size_t n)
{
    char    c;
    size_t  end, k, at;

    for (end = 1; end <= n; end++) {
        if (t->tail_len + end < t->len) {
            continue;
        }

        for (k = 0; k < t->len; k++) {
            /* byte k of the trigger, at tail + p's byte end - len + k */
            at = t->tail_len + end - t->len + k;
            c = at < t->tail_len ? t->tail[at] : p[at - t->tail_len];

            if (c != t->text[k]) {
                break;
            }
        }

        if (k == t->len) {
            return end;
        }
    }

    return 0;
}


int
slora_json_trigger_past(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id)
{
    size_t       n;
    const char  *p;

    if (t->past == 0 || id == t->id) {
        return 1;
    }

    p = v->bytes + v->off[id + 1] - t->past;
    n = t->past;

    /* blanks between the trigger and the value are none of the value's
     * (a think block's "</think>\n\n" more than it would take before
     * one, a compact one none) */
    while (n > 0 && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) {
        p++;
        n--;
    }

    return slora_json_feed(j, p, n);
}


int
slora_json_triggers_feed(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id)
{
    return slora_json_triggers_look(t, n, v, id, -1);
}


int
slora_json_triggers_feed_past(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id, uint32_t past)
{
    if (id < 0 || id >= v->n_vocab || past == 0
        || past > v->off[id + 1] - v->off[id])
    {
        return -1;
    }

    return slora_json_triggers_look(t, n, v, id, (int64_t) past);
}


/* The n triggers fed token id (past < 0) or its last past bytes (lead
 * triggers then not): the index of the one found (the earliest end in
 * the bytes, the longer where two end alike), each then forgetting the
 * text before it, or -1. */
static int
slora_json_triggers_look(slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t id, int64_t past)
{
    int       found, hit;
    uint32_t  k;

    found = -1;

    for (k = 0; k < n; k++) {
        hit = past < 0 ? slora_json_trigger_feed(&t[k], v, id)
              : t[k].len > 0 && !t[k].lead
                && slora_json_trigger_scan(&t[k], v->bytes + v->off[id + 1]
                                                  - past, (size_t) past);

        if (hit && (found < 0 || t[k].past > t[found].past
                    || (t[k].past == t[found].past
                        && t[k].len > t[found].len)))
        {
            found = (int) k;
        }
    }

    if (found >= 0) {
        for (k = 0; k < n; k++) {
            t[k].tail_len = 0;
        }
    }

    return found;
}


int32_t
slora_json_trigger_tokens(const slora_json_trigger_t *t, uint32_t n,
    const slora_json_vocab_t *v, int32_t *ids)
{
    int32_t   id, m;

    m = 0;

    for (id = 0; id < v->n_vocab; id++) {
        if (slora_json_trigger_inside(t, n, v->bytes + v->off[id],
                                      v->off[id + 1] - v->off[id]))
        {
            ids[m++] = id;
        }
    }

    return m;
}


/* Whether bytes p[0..len) hold one of the n triggers whole with a byte
 * after it. */
static int
slora_json_trigger_inside(const slora_json_trigger_t *t, uint32_t n,
    const char *p, size_t len)
{
    size_t     e;
    uint32_t   k;

    for (k = 0; k < n; k++) {
        for (e = t[k].len; t[k].len > 0 && e < len; e++) {
            if (memcmp(p + e - t[k].len, t[k].text, t[k].len) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


int
slora_json_triggers_begun(const slora_json_trigger_t *t, uint32_t n)
{
    uint32_t  k, need;

    for (k = 0; k < n; k++) {
        for (need = 1; need < t[k].len; need++) {
            if (slora_json_trigger_holds(&t[k], need)) {
                return 1;
            }
        }
    }

    return 0;
}


/* Whether the output so far (trigger t's tail) ends with t's first need
 * bytes. */
static int
slora_json_trigger_holds(const slora_json_trigger_t *t, uint32_t need)
{
    return t->tail_len >= need
           && memcmp(t->tail + t->tail_len - need, t->text, need) == 0;
}


/*
 * The tokens that begin with the trigger's last m bytes and have more,
 * where the output so far ends with its first len - m (the tail holds
 * them): lex[*lo..return), those of v's tokens whose bytes begin with
 * those m, found by bisection in byte order. 0 at *lo when the tail
 * does not end so.
 */
static int32_t
slora_json_trigger_range(const slora_json_trigger_t *t, uint32_t m,
    const slora_json_vocab_t *v, int32_t *lo)
{
    int32_t      a, b, mid, c, first;
    uint32_t     need, len;
    const char  *p;

    need = t->len - m;
    *lo = 0;

    if (!slora_json_trigger_holds(t, need)) {
        return 0;
    }

    p = t->text + need;
    first = v->lex_first[(uint8_t) p[0]];

    /* the first token not before p, then the first one past p's run */
    for (c = 0; c <= 1; c++) {
        a = first;
        b = v->lex_first[(uint8_t) p[0] + 1];

        while (a < b) {
            mid = a + (b - a) / 2;
            len = v->off[v->lex[mid] + 1] - v->off[v->lex[mid]];

            if (slora_json_prefix_cmp(v->bytes + v->off[v->lex[mid]], len,
                                      p, m) < c)
            {
                a = mid + 1;

            } else {
                b = mid;
            }
        }

        if (c == 0) {
            *lo = a;
            first = a;
        }
    }

    return a;
}


/* Bytes q[0..len) against a prefix p[0..m): 0 when they begin with it,
 * else the sign of their order. */
static int
slora_json_prefix_cmp(const char *q, uint32_t len, const char *p,
    uint32_t m)
{
    int  c;

    c = memcmp(q, p, len < m ? len : m);

    return c != 0 ? c : len < m ? -1 : 0;
}


/*
 * A token the guard tries: refused in row when it completes one of the
 * n triggers (the one slora_json_triggers_feed finds) and the bytes past
 * that do not go on as the value does (whole: after the trigger's own
 * text, as a tag's begin text does).
 */
static void
slora_json_trigger_try(const slora_json_trigger_t *t, uint32_t n,
    const slora_json_schema_t *s, int compact, int whole,
    const slora_json_vocab_t *v, int32_t id, float *row)
{
    int                    k;
    slora_json_t           j;
    slora_json_trigger_t   tried[SLORA_JSON_TRIGGERS_MAX];

    if (row[id] == -INFINITY) {
        return;
    }

    memcpy(tried, t, n * sizeof(slora_json_trigger_t));
    k = slora_json_triggers_feed(tried, n, v, id);

    if (k < 0) {
        return;
    }

    slora_json_init(&j, s);
    j.compact = compact;

    if (whole ? !slora_json_trigger_whole(&tried[k], &j, v, id)
              : !slora_json_trigger_past(&tried[k], &j, v, id))
    {
        row[id] = -INFINITY;
    }
}


void
slora_json_trigger_guard(const slora_json_trigger_t *t, uint32_t n,
    const slora_json_schema_t *s, int compact, int whole,
    const slora_json_vocab_t *v, const int32_t *ids, int32_t n_ids,
    float *row)
{
    int32_t        i, lo, hi, id;
    uint32_t       k, m, len;
    uint8_t        takes[256];
    const char    *p;

    for (i = 0; i < n_ids; i++) {
        slora_json_trigger_try(t, n, s, compact, whole, v, ids[i], row);
    }

    /* a trigger begun in the output, finished by a token's first bytes */
    for (k = 0; k < n; k++) {
        takes[0] = 2;           /* not yet known */

        for (m = 1; m < t[k].len; m++) {
            hi = slora_json_trigger_range(&t[k], m, v, &lo);

            if (lo < hi && takes[0] == 2) {
                slora_json_trigger_takes(&t[k], s, compact, whole, takes);
            }

            for (i = lo; i < hi; i++) {
                id = v->lex[i];
                p = v->bytes + v->off[id];
                len = v->off[id + 1] - v->off[id];

                if (len <= m || row[id] == -INFINITY) {
                    continue;
                }

                /* most such tokens go on with a byte the value does not
                 * take after the trigger: refused without a walk */
                if (!takes[(uint8_t) p[m]]
                    && slora_json_trigger_first(t, n, k, p, len, m))
                {
                    row[id] = -INFINITY;
                    continue;
                }

                slora_json_trigger_try(t, n, s, compact, whole, v, id,
                                       row);
            }
        }
    }
}


/* The bytes the value (schema s) may go on with right after trigger t:
 * takes[b] 1 or 0; whole, after the trigger's own text; else from its
 * start, a blank too (slora_json_trigger_past skips blanks). */
static void
slora_json_trigger_takes(const slora_json_trigger_t *t,
    const slora_json_schema_t *s, int compact, int whole, uint8_t *takes)
{
    char          c;
    unsigned      b;
    slora_json_t  j, one;

    slora_json_init(&j, s);
    j.compact = compact;

    if (whole && !slora_json_feed(&j, t->text, t->len)) {
        memset(takes, 0, 256);
        return;
    }

    for (b = 0; b < 256; b++) {
        c = (char) b;
        slora_json_copy(&one, &j);
        takes[b] = (uint8_t) ((!whole && (c == ' ' || c == '\n' || c == '\t'
                                          || c == '\r'))
                              || slora_json_feed(&one, &c, 1));
    }
}


/* Whether trigger k of the n is the one that token bytes p[0..len)
 * complete (slora_json_triggers_feed's choice: the earliest end, the
 * longer where two end alike), ending after the token's first m. */
static int
slora_json_trigger_first(const slora_json_trigger_t *t, uint32_t n,
    uint32_t k, const char *p, size_t len, size_t m)
{
    size_t    end;
    uint32_t  i;

    if (slora_json_trigger_end(&t[k], p, len) != m) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        end = i != k && t[i].len > 0 ? slora_json_trigger_end(&t[i], p, len)
                                     : 0;

        if (end > 0 && (end < m || (end == m && t[i].len > t[k].len))) {
            return 0;
        }
    }

    return 1;
}


int
slora_json_trigger_whole(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id)
{
    return slora_json_feed(j, t->text, t->len)
           && slora_json_feed(j, v->bytes + v->off[id + 1] - t->past,
                              t->past);
}


int
slora_json_trigger_lead(const slora_json_trigger_t *t, slora_json_t *j,
    const slora_json_vocab_t *v, int32_t id)
{
    return slora_json_feed(j, t->text, t->at)
           && slora_json_feed_token(j, v, id);
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
