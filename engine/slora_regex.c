/*
 * slora_regex.c: a pattern's syntax tree (slora_regex_parse.c) into the
 * deterministic automaton slora_regex.h describes, and the questions
 * constrained output asks of it.
 *
 * Four steps. Thompson's construction makes a byte automaton with empty
 * moves: each set of code points, cut to what a JSON string can hold,
 * becomes the UTF-8 byte sequences of its ranges, which share their
 * common tails, and x{n,m}'s optional copies nest, so that both cost
 * states in line with their length. Bytes that every state treats alike
 * share a class, so the subset construction that follows tries each
 * class once, within a budget of work that turns a pattern whose
 * automaton would blow up into a refusal rather than a stalled worker.
 * Trimming keeps the states from which a match can still be reached.
 * Last (slora_regex_len.c), each state's least and most characters to a
 * match, and with both a minLength and a maxLength the exact lengths, so
 * that slora_regex_viable is exact: a string the automaton lets continue
 * can always end in an admitted match. Two patterns (a string's pattern
 * and its format) are followed side by side in one subset construction,
 * so that the automaton takes the texts both match.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_regex_int.h"


#define SLORA_RE_NFA_MAX     65536          /* byte automaton's states */
#define SLORA_RE_BITS_MAX    (1u << 22)     /* states x lengths */
#define SLORA_RE_SLOTS       (4 * SLORA_REGEX_STATES_MAX) /* the sets'
                                             * table: a quarter full at
                                             * most, a power of two */
#define SLORA_RE_TAILS       256            /* a set's shared byte states,
                                             * a power of two */


typedef enum {
    SLORA_RE_S_BYTE = 0,        /* lo..hi to out */
    SLORA_RE_S_SPLIT,           /* to out and out2 */
    SLORA_RE_S_EPS,             /* to out */
    SLORA_RE_S_MATCH,
    SLORA_RE_S_FAIL             /* nowhere */
} slora_re_state_e;


typedef struct {
    uint8_t     kind;
    uint8_t     lo;
    uint8_t     hi;
    uint32_t    out;
    uint32_t    out2;
} slora_re_state_t;


/* A piece of the byte automaton: from start, out of end's dangling out */
typedef struct {
    uint32_t    start;
    uint32_t    end;
} slora_re_frag_t;


typedef struct {
    const slora_re_tree_t  *tree;
    slora_re_state_t       *s;
    uint32_t                n;
    uint32_t                cap;
    size_t                  work_left;  /* the compile's budget */
    slora_err_t            *err;
    uint32_t                split;      /* with two patterns: the second's
                                           first state (0: one) */
    uint32_t                tails[SLORA_RE_TAILS];  /* the set's byte
                                           states by range and out (0:
                                           none; the state 0 is never
                                           one) */
} slora_re_nfa_t;


/* The deterministic automaton while it is built. */
typedef struct {
    uint32_t   *sets;           /* each state's byte automaton states */
    size_t      n_sets;
    size_t      cap_sets;
    uint32_t   *set_off;        /* [n + 1] */
    uint32_t   *set_hash;
    uint32_t   *seen;           /* [byte automaton's states]: marks */
    uint32_t    seen_gen;
    uint16_t   *next;           /* [cap_rows][n_classes] */
    uint32_t    cap_rows;
    uint32_t    n;
    uint32_t   *table;          /* hash table of states, 2 * MAX */
    uint32_t    n_classes;
    uint8_t     classes[256];
    uint8_t     rep[256];       /* a class's first byte */
} slora_re_dfa_t;


static int slora_re_emit(slora_re_nfa_t *a, uint32_t id,
    slora_re_frag_t *f);
static int slora_re_emit_set(slora_re_nfa_t *a, const slora_re_node_t *node,
    slora_re_frag_t *f);
static int slora_re_utf8(slora_re_nfa_t *a, uint32_t lo, uint32_t hi,
    uint32_t end, uint32_t *start);
static int slora_re_encode(uint32_t cp, uint8_t *b);
static uint32_t slora_re_state(slora_re_nfa_t *a, uint32_t kind,
    uint32_t out, uint32_t out2);
static void slora_re_patch(slora_re_nfa_t *a, uint32_t end, uint32_t to);
static uint32_t slora_re_tail(slora_re_nfa_t *a, uint8_t lo, uint8_t hi,
    uint32_t out);
static int slora_re_subsets(slora_re_nfa_t *a, uint32_t start,
    slora_re_dfa_t *d, slora_err_t *err);
static uint32_t slora_re_closure(const slora_re_nfa_t *a, uint32_t *stack,
    uint32_t n_stack, uint32_t *mark, uint32_t gen, uint32_t *out,
    size_t *work);
static int slora_re_both(const slora_re_nfa_t *a, const uint32_t *set,
    uint32_t n);
static int slora_re_same(slora_re_dfa_t *d, const uint32_t *a,
    const uint32_t *b, uint32_t n);
static int slora_re_intern(slora_re_dfa_t *d, const uint32_t *set,
    uint32_t n, uint32_t *id);
static slora_regex_t *slora_re_finish(slora_re_nfa_t *a,
    const slora_re_dfa_t *d, uint32_t min, uint32_t max, slora_err_t *err);
static void slora_re_parts(const slora_regex_t *r, const uint32_t **least,
    const uint32_t **most, const uint8_t **accept, const uint64_t **bits);
static size_t slora_re_align(size_t n);


slora_regex_t *
slora_regex_compile(const char *pattern, size_t len, uint32_t min,
    uint32_t max, int how, size_t *budget, slora_err_t *err)
{
    return slora_regex_compile_both(pattern, len, NULL, 0, min, max, how,
                                    budget, err);
}


/*
 * Two patterns are one byte automaton with two match states, the
 * second's states numbered after the first's, entered together: the
 * subset construction follows both at once, a state of it where either
 * has no way on is dead, and one that holds both match states accepts.
 */
slora_regex_t *
slora_regex_compile_both(const char *pattern, size_t len, const char *also,
    size_t also_len, uint32_t min, uint32_t max, int how, size_t *budget,
    slora_err_t *err)
{
    int               k, n;
    uint32_t          match, start;
    slora_regex_t    *r;
    slora_re_frag_t   f[2];
    slora_re_nfa_t    a;
    slora_re_dfa_t    d;
    slora_re_tree_t   t[2];

    memset(t, 0, sizeof(t));
    memset(&a, 0, sizeof(slora_re_nfa_t));
    memset(&d, 0, sizeof(slora_re_dfa_t));
    a.err = err;
    a.work_left = budget != NULL ? *budget : SLORA_REGEX_WORK_MAX;
    r = NULL;
    n = also != NULL ? 2 : 1;
    start = SLORA_REGEX_NONE;

    for (k = 0; k < n; k++) {
        a.tree = &t[k];
        a.split = k == 1 ? a.n : 0;

        if (slora_re_parse(&t[k], k == 0 ? pattern : also,
                           k == 0 ? len : also_len, how, err)
            != SLORA_OK
            || slora_re_emit(&a, t[k].root, &f[k]) != SLORA_OK)
        {
            goto done;
        }

        match = slora_re_state(&a, SLORA_RE_S_MATCH, 0, 0);

        if (match == SLORA_REGEX_NONE) {
            goto done;
        }

        slora_re_patch(&a, f[k].end, match);
    }

    start = n == 2 ? slora_re_state(&a, SLORA_RE_S_SPLIT, f[0].start,
                                    f[1].start)
                   : f[0].start;

    if (start != SLORA_REGEX_NONE
        && slora_re_subsets(&a, start, &d, err) == SLORA_OK)
    {
        r = slora_re_finish(&a, &d, min, max, err);
    }

done:

    slora_re_tree_free(&t[0]);
    slora_re_tree_free(&t[1]);
    free(a.s);
    free(d.sets);
    free(d.set_off);
    free(d.set_hash);
    free(d.seen);
    free(d.next);
    free(d.table);

    if (budget != NULL) {
        *budget = a.work_left;
    }

    return r;
}


/* slora_regex_viable with a minLength or a maxLength. */
int
slora_regex_viable_within(const slora_regex_t *r, uint32_t s,
    uint32_t chars)
{
    uint32_t         lo, hi, w, last;
    uint64_t         m;
    const uint8_t   *accept;
    const uint32_t  *least, *most;
    const uint64_t  *bits;

    if (s >= r->n_states || (r->max != SLORA_REGEX_NONE && chars > r->max))
    {
        return 0;
    }

    slora_re_parts(r, &least, &most, &accept, &bits);

    lo = chars < r->min ? r->min - chars : 0;

    if (r->max != SLORA_REGEX_NONE && least[s] > r->max - chars) {
        return 0;
    }

    if (most[s] != SLORA_REGEX_NONE && most[s] < lo) {
        return 0;
    }

    if (r->words == 0) {
        return 1;
    }

    /* both bounds: some length L in lo..hi a match can end at */
    hi = r->max - chars;
    bits += (size_t) s * r->words;

    for (w = lo / 64, last = hi / 64; w <= last; w++) {
        m = bits[w];

        if (w == lo / 64) {
            m &= ~(uint64_t) 0 << (lo % 64);
        }

        if (w == last && hi % 64 != 63) {
            m &= ((uint64_t) 1 << (hi % 64 + 1)) - 1;
        }

        if (m) {
            return 1;
        }
    }

    return 0;
}


int
slora_regex_accepts(const slora_regex_t *r, uint32_t s, uint32_t chars)
{
    const uint8_t   *accept;
    const uint32_t  *least, *most;
    const uint64_t  *bits;

    if (s >= r->n_states) {
        return 0;
    }

    slora_re_parts(r, &least, &most, &accept, &bits);

    return accept[s] && chars >= r->min
           && (r->max == SLORA_REGEX_NONE || chars <= r->max);
}


int
slora_regex_final(const slora_regex_t *r, uint32_t s, uint32_t chars)
{
    uint32_t  c, t;

    if (!slora_regex_accepts(r, s, chars)) {
        return 0;
    }

    for (c = 0; c < 256; c++) {
        t = slora_regex_next(r, s, c);

        if (t != SLORA_REGEX_DEAD
            && slora_regex_viable(r, t,
                                  chars + (uint32_t) slora_regex_lead(c)))
        {
            return 0;
        }
    }

    return 1;
}


int
slora_regex_match(const slora_regex_t *r, const char *text, size_t n)
{
    size_t    i;
    uint32_t  s, chars;

    s = 0;
    chars = 0;

    for (i = 0; i < n; i++) {
        s = slora_regex_next(r, s, (unsigned char) text[i]);

        if (s == SLORA_REGEX_DEAD) {
            return 0;
        }

        chars += slora_regex_lead((unsigned char) text[i]);
    }

    return slora_regex_accepts(r, s, chars);
}


/* Thompson's construction, node by node. */
static int
slora_re_emit(slora_re_nfa_t *a, uint32_t id, slora_re_frag_t *f)
{
    uint32_t                k, end, fin, split, count;
    slora_re_frag_t         g;
    const slora_re_node_t  *node;

    node = &a->tree->nodes[id];

    switch (node->kind) {

    case SLORA_RE_SET:
        return slora_re_emit_set(a, node, f);

    case SLORA_RE_BYTE:
        f->start = slora_re_state(a, SLORA_RE_S_BYTE, SLORA_REGEX_NONE, 0);

        if (f->start == SLORA_REGEX_NONE) {
            return SLORA_ERROR;
        }

        a->s[f->start].lo = (uint8_t) node->a;
        a->s[f->start].hi = (uint8_t) node->a;
        f->end = f->start;
        return SLORA_OK;

    case SLORA_RE_CAT:
        for (k = 0; k < node->n; k++) {
            if (slora_re_emit(a, a->tree->kids[node->a + k], &g)
                != SLORA_OK)
            {
                return SLORA_ERROR;
            }

            if (k == 0) {
                f->start = g.start;

            } else {
                slora_re_patch(a, f->end, g.start);
            }

            f->end = g.end;
        }

        return SLORA_OK;

    case SLORA_RE_ALT:
        end = slora_re_state(a, SLORA_RE_S_EPS, SLORA_REGEX_NONE, 0);

        if (end == SLORA_REGEX_NONE) {
            return SLORA_ERROR;
        }

        for (k = 0; k < node->n; k++) {
            if (slora_re_emit(a, a->tree->kids[node->a + k], &g)
                != SLORA_OK)
            {
                return SLORA_ERROR;
            }

            slora_re_patch(a, g.end, end);

            if (k == 0) {
                f->start = g.start;
                continue;
            }

            split = slora_re_state(a, SLORA_RE_S_SPLIT, g.start, f->start);

            if (split == SLORA_REGEX_NONE) {
                return SLORA_ERROR;
            }

            f->start = split;
        }

        f->end = end;
        return SLORA_OK;

    case SLORA_RE_REPEAT:
        /* min copies, then a loop or max - min optional ones nested, as
         * x{1,3} is x(x(x)?)?: each one's skip goes past all the rest,
         * so after k characters one copy alone is live and the
         * automaton's states and work grow with max, not with its
         * square (a skip to the next copy only, x x? x?, left every
         * later copy live: [a-z ]{1,500} over the budget) */
        end = slora_re_state(a, SLORA_RE_S_EPS, SLORA_REGEX_NONE, 0);
        fin = node->max == SLORA_REGEX_NONE
              ? end : slora_re_state(a, SLORA_RE_S_EPS, SLORA_REGEX_NONE, 0);

        if (end == SLORA_REGEX_NONE || fin == SLORA_REGEX_NONE) {
            return SLORA_ERROR;
        }

        f->start = end;
        f->end = end;
        count = node->max == SLORA_REGEX_NONE ? node->min + 1 : node->max;

        for (k = 0; k < count; k++) {
            if (slora_re_emit(a, node->a, &g) != SLORA_OK) {
                return SLORA_ERROR;
            }

            if (k < node->min) {
                slora_re_patch(a, f->end, g.start);
                f->end = g.end;
                continue;
            }

            /* an optional copy: skip it and every one after it, or take
             * it (and, unbounded, come back to the choice) */
            split = slora_re_state(a, SLORA_RE_S_SPLIT, g.start,
                                   SLORA_REGEX_NONE);

            if (split == SLORA_REGEX_NONE) {
                return SLORA_ERROR;
            }

            slora_re_patch(a, f->end, split);

            if (node->max != SLORA_REGEX_NONE) {
                a->s[split].out2 = fin;
                f->end = g.end;
                continue;
            }

            end = slora_re_state(a, SLORA_RE_S_EPS, SLORA_REGEX_NONE, 0);

            if (end == SLORA_REGEX_NONE) {
                return SLORA_ERROR;
            }

            a->s[split].out2 = end;
            slora_re_patch(a, g.end, split);
            f->end = end;
        }

        if (node->max != SLORA_REGEX_NONE) {
            slora_re_patch(a, f->end, fin);
            f->end = fin;
        }

        return SLORA_OK;

    default:                    /* EMPTY */
        f->start = slora_re_state(a, SLORA_RE_S_EPS, SLORA_REGEX_NONE, 0);
        f->end = f->start;
        return f->start == SLORA_REGEX_NONE ? SLORA_ERROR : SLORA_OK;
    }
}


/* One code point of the set, as a string's text can hold it: no
 * surrogates (not UTF-8), and of the control characters only those JSON
 * writes with a short escape (\b \t \n \f \r). */
static int
slora_re_emit_set(slora_re_nfa_t *a, const slora_re_node_t *node,
    slora_re_frag_t *f)
{
    static const slora_re_range_t  writable[] = {
        { 0x08, 0x0a }, { 0x0c, 0x0d }, { 0x20, 0xd7ff },
        { 0xe000, SLORA_RE_CODE_MAX }
    };

    uint32_t                 k, w, lo, hi, end, start;
    const slora_re_range_t  *r;

    end = slora_re_state(a, SLORA_RE_S_EPS, SLORA_REGEX_NONE, 0);
    start = slora_re_state(a, SLORA_RE_S_FAIL, 0, 0);

    if (end == SLORA_REGEX_NONE || start == SLORA_REGEX_NONE) {
        return SLORA_ERROR;
    }

    memset(a->tails, 0, sizeof(a->tails));

    for (k = 0; k < node->n; k++) {
        r = &a->tree->ranges[node->a + k];

        for (w = 0; w < sizeof(writable) / sizeof(writable[0]); w++) {
            lo = r->lo > writable[w].lo ? r->lo : writable[w].lo;
            hi = r->hi < writable[w].hi ? r->hi : writable[w].hi;

            if (lo <= hi && slora_re_utf8(a, lo, hi, end, &start)
                            != SLORA_OK)
            {
                return SLORA_ERROR;
            }
        }
    }

    f->start = start;
    f->end = end;

    return SLORA_OK;
}


/* The code points lo..hi (one UTF-8 length, no surrogates) as byte
 * sequences whose every position is a plain byte range, each a chain of
 * states to end, joined to *start by a split. */
static int
slora_re_utf8(slora_re_nfa_t *a, uint32_t lo, uint32_t hi, uint32_t end,
    uint32_t *start)
{
    static const uint32_t  last[] = { 0x7f, 0x7ff, 0xffff };

    int       n, k, i;
    uint8_t   bl[4], bh[4];
    uint32_t  m, at, split;

    /* cut where the encoding's length changes */
    for (k = 0; k < 3; k++) {
        if (lo <= last[k] && hi > last[k]) {
            return slora_re_utf8(a, lo, last[k], end, start) != SLORA_OK
                   ? SLORA_ERROR
                   : slora_re_utf8(a, last[k] + 1, hi, end, start);
        }
    }

    n = slora_re_encode(lo, bl);

    /* cut until each continuation position spans whole ranges */
    for (i = 1; i < n; i++) {
        m = (1u << (6 * i)) - 1;

        if ((lo & ~m) == (hi & ~m)) {
            continue;
        }

        if ((lo & m) != 0) {
            return slora_re_utf8(a, lo, lo | m, end, start) != SLORA_OK
                   ? SLORA_ERROR
                   : slora_re_utf8(a, (lo | m) + 1, hi, end, start);
        }

        if ((hi & m) != m) {
            return slora_re_utf8(a, lo, (hi & ~m) - 1, end, start)
                   != SLORA_OK
                   ? SLORA_ERROR
                   : slora_re_utf8(a, hi & ~m, hi, end, start);
        }
    }

    slora_re_encode(hi, bh);
    at = end;

    for (k = n - 1; k >= 0; k--) {
        at = slora_re_tail(a, bl[k], bh[k], at);

        if (at == SLORA_REGEX_NONE) {
            return SLORA_ERROR;
        }
    }

    if (a->s[*start].kind == SLORA_RE_S_FAIL) {
        *start = at;
        return SLORA_OK;
    }

    split = slora_re_state(a, SLORA_RE_S_SPLIT, at, *start);

    if (split == SLORA_REGEX_NONE) {
        return SLORA_ERROR;
    }

    *start = split;

    return SLORA_OK;
}


/* The byte state lo..hi to out, shared by every sequence of the set that
 * ends the same way (the 80-BF before the end of each sequence of two or
 * more bytes): after a lead byte the automaton is in one state whatever
 * the lead, so a character class such as . costs a few states a
 * character rather than one a sequence (RE2's UTF-8 suffix sharing).
 * The table is the set's (slora_re_emit_set clears it); when its probe
 * finds no room the state is made unshared. */
static uint32_t
slora_re_tail(slora_re_nfa_t *a, uint8_t lo, uint8_t hi, uint32_t out)
{
    uint32_t  h, i, id;

    h = (out * 2654435761u) ^ ((uint32_t) lo << 8 | hi) * 40503u;

    for (i = 0; i < 8; i++) {
        id = a->tails[(h + i) & (SLORA_RE_TAILS - 1)];

        if (id == 0) {
            break;
        }

        if (a->s[id].lo == lo && a->s[id].hi == hi && a->s[id].out == out) {
            return id;
        }
    }

    id = slora_re_state(a, SLORA_RE_S_BYTE, out, 0);

    if (id == SLORA_REGEX_NONE) {
        return SLORA_REGEX_NONE;
    }

    a->s[id].lo = lo;
    a->s[id].hi = hi;

    if (i < 8) {
        a->tails[(h + i) & (SLORA_RE_TAILS - 1)] = id;
    }

    return id;
}


static int
slora_re_encode(uint32_t cp, uint8_t *b)
{
    if (cp < 0x80) {
        b[0] = (uint8_t) cp;
        return 1;
    }

    if (cp < 0x800) {
        b[0] = (uint8_t) (0xc0 | cp >> 6);
        b[1] = (uint8_t) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        b[0] = (uint8_t) (0xe0 | cp >> 12);
        b[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        b[2] = (uint8_t) (0x80 | (cp & 0x3f));
        return 3;
    }

    b[0] = (uint8_t) (0xf0 | cp >> 18);
    b[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
    b[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
    b[3] = (uint8_t) (0x80 | (cp & 0x3f));

    return 4;
}


static uint32_t
slora_re_state(slora_re_nfa_t *a, uint32_t kind, uint32_t out,
    uint32_t out2)
{
    uint32_t           cap;
    slora_re_state_t  *more;

    if (a->n == a->cap) {
        if (a->n == SLORA_RE_NFA_MAX) {
            slora_err_set(a->err, SLORA_ERROR, "too large to hold as an "
                          "automaton (more than %d states "
                          "before determinizing)", SLORA_RE_NFA_MAX);
            return SLORA_REGEX_NONE;
        }

        cap = a->cap ? 2 * a->cap : 256;
        more = realloc(a->s, cap * sizeof(slora_re_state_t));

        if (more == NULL) {
            slora_err_set(a->err, SLORA_ERROR, "out of memory");
            return SLORA_REGEX_NONE;
        }

        a->s = more;
        a->cap = cap;
    }

    a->s[a->n].kind = (uint8_t) kind;
    a->s[a->n].lo = 0;
    a->s[a->n].hi = 0;
    a->s[a->n].out = out;
    a->s[a->n].out2 = out2;

    return a->n++;
}


static void
slora_re_patch(slora_re_nfa_t *a, uint32_t end, uint32_t to)
{
    a->s[end].out = to;
}


/* The subset construction, class by class from the start's closure,
 * states numbered as found (the start 0). */
static int
slora_re_subsets(slora_re_nfa_t *a, uint32_t start, slora_re_dfa_t *d,
    slora_err_t *err)
{
    int        cut[257], rc;
    size_t     work;
    uint32_t   b, k, i, c, n, id, gen, *mark, *stack, *set;
    const uint32_t  *from;

    /* the classes: cut at every range's ends, and where a byte stops or
     * starts being a continuation byte (characters are counted by
     * class) */
    memset(cut, 0, sizeof(cut));
    cut[0x80] = 1;
    cut[0xc0] = 1;

    for (k = 0; k < a->n; k++) {
        if (a->s[k].kind == SLORA_RE_S_BYTE) {
            cut[a->s[k].lo] = 1;
            cut[a->s[k].hi + 1] = 1;
        }
    }

    d->n_classes = 0;

    for (b = 0; b < 256; b++) {
        if (b > 0 && cut[b]) {
            d->n_classes++;
        }

        if (b == 0 || cut[b]) {
            d->rep[d->n_classes] = (uint8_t) b;
        }

        d->classes[b] = (uint8_t) d->n_classes;
    }

    d->n_classes++;

    mark = calloc(a->n, sizeof(uint32_t));
    stack = malloc(a->n * sizeof(uint32_t));
    set = malloc(a->n * sizeof(uint32_t));
    d->table = malloc(SLORA_RE_SLOTS * sizeof(uint32_t));
    d->set_off = malloc((SLORA_REGEX_STATES_MAX + 1) * sizeof(uint32_t));
    d->set_hash = malloc(SLORA_REGEX_STATES_MAX * sizeof(uint32_t));
    d->seen = calloc(a->n, sizeof(uint32_t));

    if (mark == NULL || stack == NULL || set == NULL || d->table == NULL
        || d->set_off == NULL || d->set_hash == NULL || d->seen == NULL)
    {
        free(mark);
        free(stack);
        free(set);
        return slora_err_set(err, SLORA_ERROR, "out of memory");
    }

    memset(d->table, 0xff, SLORA_RE_SLOTS * sizeof(uint32_t));
    d->set_off[0] = 0;
    gen = 1;
    work = 0;

    stack[0] = start;
    n = slora_re_closure(a, stack, 1, mark, gen++, set, &work);

    if (n == 0) {
        slora_err_set(err, SLORA_ERROR, "admits no text a JSON string can "
                      "hold");
        rc = SLORA_DECLINED;
        goto failed;
    }

    rc = slora_re_intern(d, set, n, &id);

    if (rc != SLORA_OK) {
        goto failed;
    }

    for (i = 0; i < d->n; i++) {
        for (c = 0; c < d->n_classes; c++) {
            from = d->sets + d->set_off[i];
            n = 0;

            for (k = 0; k < d->set_off[i + 1] - d->set_off[i]; k++) {
                if (a->s[from[k]].kind == SLORA_RE_S_BYTE
                    && a->s[from[k]].lo <= d->rep[c]
                    && d->rep[c] <= a->s[from[k]].hi)
                {
                    stack[n++] = a->s[from[k]].out;
                }
            }

            work += d->set_off[i + 1] - d->set_off[i];
            n = n ? slora_re_closure(a, stack, n, mark, gen++, set, &work)
                  : 0;

            if (a->split > 0 && !slora_re_both(a, set, n)) {
                n = 0;                      /* one pattern has no way on */
            }

            if (work > a->work_left) {
                slora_err_set(err, SLORA_ERROR, "too complex to hold as an "
                              "automaton");
                rc = SLORA_DECLINED;
                goto failed;
            }

            if (n == 0) {
                d->next[(size_t) i * d->n_classes + c] = SLORA_REGEX_DEAD;
                continue;
            }

            rc = slora_re_intern(d, set, n, &id);
            work += n;

            if (rc != SLORA_OK) {
                goto failed;
            }

            d->next[(size_t) i * d->n_classes + c] = (uint16_t) id;
        }
    }

    free(mark);
    free(stack);
    free(set);
    a->work_left -= work;

    return SLORA_OK;

failed:

    if (rc == SLORA_BUSY) {
        slora_err_set(err, SLORA_ERROR, "needs more than %d states as "
                      "an automaton", SLORA_REGEX_STATES_MAX);

    } else if (rc == SLORA_ERROR) {
        slora_err_set(err, SLORA_ERROR, "out of memory");
    }

    free(mark);
    free(stack);
    free(set);

    return SLORA_ERROR;
}


/* The byte and match states reached from stack[0..n) by empty moves,
 * in out (in no order): their count; *work grows by the states
 * visited. */
static uint32_t
slora_re_closure(const slora_re_nfa_t *a, uint32_t *stack, uint32_t n_stack,
    uint32_t *mark, uint32_t gen, uint32_t *out, size_t *work)
{
    uint32_t                 n, s;
    const slora_re_state_t  *st;

    n = 0;

    while (n_stack > 0) {
        s = stack[--n_stack];
        (*work)++;

        if (s == SLORA_REGEX_NONE || mark[s] == gen) {
            continue;
        }

        mark[s] = gen;
        st = &a->s[s];

        switch (st->kind) {
        case SLORA_RE_S_SPLIT:
            stack[n_stack++] = st->out2;
            stack[n_stack++] = st->out;
            break;
        case SLORA_RE_S_EPS:
            stack[n_stack++] = st->out;
            break;
        case SLORA_RE_S_FAIL:
            break;
        default:
            out[n++] = s;
            break;
        }
    }

    return n;
}


/* 1 when set[0..n) holds states of both patterns (a->split apart). */
static int
slora_re_both(const slora_re_nfa_t *a, const uint32_t *set, uint32_t n)
{
    uint32_t  k;
    unsigned  sides;

    sides = 0;

    for (k = 0; k < n && sides != 3; k++) {
        sides |= set[k] < a->split ? 1 : 2;
    }

    return sides == 3;
}


/* The state of set[0..n): found, or added (its row of next states
 * made room for). SLORA_BUSY: too many states; SLORA_ERROR: out of
 * memory. */
static int
slora_re_intern(slora_re_dfa_t *d, const uint32_t *set, uint32_t n,
    uint32_t *id)
{
    size_t     need, cap;
    uint16_t  *rows;
    uint32_t   h, k, slot, *more;

    /* a hash that does not depend on the order of the set */
    h = n;

    for (k = 0; k < n; k++) {
        slot = set[k] * 0x9e3779b1u;
        slot ^= slot >> 15;
        h += slot * 0x85ebca77u;
    }

    for (slot = h & (SLORA_RE_SLOTS - 1); ;
         slot = (slot + 1) & (SLORA_RE_SLOTS - 1))
    {
        k = d->table[slot];

        if (k == SLORA_REGEX_NONE) {
            break;
        }

        if (d->set_hash[k] == h && d->set_off[k + 1] - d->set_off[k] == n
            && slora_re_same(d, d->sets + d->set_off[k], set, n))
        {
            *id = k;
            return SLORA_OK;
        }
    }

    if (d->n == SLORA_REGEX_STATES_MAX) {
        return SLORA_BUSY;
    }

    if (d->n == d->cap_rows) {
        cap = d->cap_rows ? 2 * d->cap_rows : 64;
        rows = realloc(d->next, cap * d->n_classes * sizeof(uint16_t));

        if (rows == NULL) {
            return SLORA_ERROR;
        }

        d->next = rows;
        d->cap_rows = (uint32_t) cap;
    }

    need = d->n_sets + n;

    if (need > d->cap_sets) {
        cap = d->cap_sets ? 2 * d->cap_sets : 1024;

        while (cap < need) {
            cap *= 2;
        }

        more = realloc(d->sets, cap * sizeof(uint32_t));

        if (more == NULL) {
            return SLORA_ERROR;
        }

        d->sets = more;
        d->cap_sets = cap;
    }

    memcpy(d->sets + d->n_sets, set, n * sizeof(uint32_t));
    d->n_sets = need;
    d->set_hash[d->n] = h;
    d->set_off[d->n + 1] = (uint32_t) need;
    d->table[slot] = d->n;
    *id = d->n++;

    return SLORA_OK;
}


/* 1 when the sets a[0..n) and b[0..n), each without repeats, hold the
 * same states (in any order). */
static int
slora_re_same(slora_re_dfa_t *d, const uint32_t *a, const uint32_t *b,
    uint32_t n)
{
    uint32_t  k;

    d->seen_gen++;

    for (k = 0; k < n; k++) {
        d->seen[a[k]] = d->seen_gen;
    }

    for (k = 0; k < n; k++) {
        if (d->seen[b[k]] != d->seen_gen) {
            return 0;
        }
    }

    return 1;
}


/* Trims the automaton to the states a match can be reached from,
 * renumbered in order (the start stays 0), and lays out the block. */
static slora_regex_t *
slora_re_finish(slora_re_nfa_t *a, const slora_re_dfa_t *d,
    uint32_t min, uint32_t max, slora_err_t *err)
{
    size_t           size;
    uint8_t         *accept, *lead, *r_accept;
    uint16_t        *next;
    uint32_t         i, k, c, n, t, words, *dist, *keep, *r_least, *r_most;
    uint64_t        *r_bits;
    const uint32_t  *set;
    slora_regex_t   *r;
    slora_re_edges_t e;

    accept = calloc(d->n, 1);
    dist = malloc(d->n * sizeof(uint32_t));
    keep = malloc(d->n * sizeof(uint32_t));
    lead = malloc(d->n_classes);
    memset(&e, 0, sizeof(slora_re_edges_t));
    r = NULL;

    if (accept == NULL || dist == NULL || keep == NULL || lead == NULL) {
        slora_err_set(err, SLORA_ERROR, "out of memory");
        goto done;
    }

    /* a match of every pattern: its one match state, or both */
    for (i = 0; i < d->n; i++) {
        set = d->sets + d->set_off[i];
        t = 0;

        for (k = 0; k < d->set_off[i + 1] - d->set_off[i]; k++) {
            t += a->s[set[k]].kind == SLORA_RE_S_MATCH;
        }

        accept[i] = t == (a->split > 0 ? 2u : 1u);
    }

    for (c = 0; c < d->n_classes; c++) {
        lead[c] = (uint8_t) slora_regex_lead(d->rep[c]);
    }

    if (slora_re_edges(&e, d->next, lead, d->n, d->n_classes) != SLORA_OK
        || slora_re_least(&e, d->n, accept, dist) != SLORA_OK)
    {
        slora_err_set(err, SLORA_ERROR, "out of memory");
        goto done;
    }

    if (dist[0] == SLORA_RE_FAR) {
        slora_err_set(err, SLORA_ERROR, "admits no text a JSON string can "
                      "hold");
        goto done;
    }

    n = 0;

    for (i = 0; i < d->n; i++) {
        keep[i] = dist[i] == SLORA_RE_FAR ? SLORA_REGEX_DEAD : n++;
    }

    words = 0;

    if (min > 0 && max != SLORA_REGEX_NONE) {
        words = max / 64 + 1;

        /* the lengths' sweeps: five over the edges a length */
        if ((uint64_t) n * (max + 1) > SLORA_RE_BITS_MAX
            || (uint64_t) e.n * (max + 1) * 5 > a->work_left)
        {
            slora_err_set(err, SLORA_ERROR, "with both minLength and "
                          "maxLength %u, its automaton of %u states is too "
                          "large to hold", max, n);
            goto done;
        }

        a->work_left -= (size_t) e.n * (max + 1) * 5;
    }

    size = slora_re_align(sizeof(slora_regex_t))
           + slora_re_align((size_t) n * d->n_classes * sizeof(uint16_t))
           + 2 * slora_re_align((size_t) n * sizeof(uint32_t))
           + slora_re_align(n)
           + (size_t) n * words * sizeof(uint64_t);

    r = calloc(1, size);

    if (r == NULL) {
        slora_err_set(err, SLORA_ERROR, "out of memory");
        goto done;
    }

    r->size = (uint32_t) size;
    r->n_states = n;
    r->n_classes = d->n_classes;
    r->min = min;
    r->max = max;
    r->words = words;
    memcpy(r->classes, d->classes, 256);

    next = (uint16_t *) (r + 1);

    for (i = 0; i < d->n; i++) {
        if (keep[i] == SLORA_REGEX_DEAD) {
            continue;
        }

        for (c = 0; c < d->n_classes; c++) {
            t = d->next[(size_t) i * d->n_classes + c];
            next[(size_t) keep[i] * d->n_classes + c] =
                (uint16_t) (t == SLORA_REGEX_DEAD ? SLORA_REGEX_DEAD
                                                  : keep[t]);
        }
    }

    slora_re_parts(r, (const uint32_t **) &r_least,
                   (const uint32_t **) &r_most, (const uint8_t **) &r_accept,
                   (const uint64_t **) &r_bits);

    for (i = 0; i < d->n; i++) {
        if (keep[i] != SLORA_REGEX_DEAD) {
            r_accept[keep[i]] = accept[i];
            r_least[keep[i]] = dist[i];
        }
    }

    slora_re_edges_free(&e);

    if (slora_re_edges(&e, next, lead, n, d->n_classes) != SLORA_OK
        || slora_re_most(&e, n, r_most) != SLORA_OK)
    {
        slora_err_set(err, SLORA_ERROR, "out of memory");
        free(r);
        r = NULL;
        goto done;
    }

    if (words) {
        slora_re_lengths(&e, n, r_accept, max, words, r_bits);
    }

    if (!slora_regex_viable(r, 0, 0)) {
        slora_err_set(err, SLORA_ERROR, "admits no string of minLength to "
                      "maxLength characters");
        free(r);
        r = NULL;
    }

done:

    slora_re_edges_free(&e);
    free(accept);
    free(dist);
    free(keep);
    free(lead);

    return r;
}




static void
slora_re_parts(const slora_regex_t *r, const uint32_t **least,
    const uint32_t **most, const uint8_t **accept, const uint64_t **bits)
{
    const char  *p;

    p = (const char *) r + slora_re_align(sizeof(slora_regex_t))
        + slora_re_align((size_t) r->n_states * r->n_classes
                         * sizeof(uint16_t));
    *least = (const uint32_t *) p;
    p += slora_re_align((size_t) r->n_states * sizeof(uint32_t));
    *most = (const uint32_t *) p;
    p += slora_re_align((size_t) r->n_states * sizeof(uint32_t));
    *accept = (const uint8_t *) p;
    p += slora_re_align(r->n_states);
    *bits = (const uint64_t *) p;
}


static size_t
slora_re_align(size_t n)
{
    return (n + 7) & ~(size_t) 7;
}
