/*
 * slora_json_grammar.c: vLLM's guided_grammar as the constrained-output
 * automaton holds it (slora_json.h). A grammar whose rules do not reach
 * themselves is its one regular expression, held as guided_regex's is;
 * one whose rules do is a stack of its rules' automata.
 *
 * The one idea: slora_grammar.c writes root and each rule that reaches
 * itself as an expression of its own, in which such a rule, where it is
 * named, is its call byte; so each is an automaton over bytes as any
 * pattern is, and the text so far is a stack of frames, each a rule and
 * its automaton's state (the frames below the top hold where their rule
 * goes on once the rule above it ends). A byte is taken by the top
 * rule's own automaton; else by calling a rule that can begin with it,
 * or by passing over the call of a rule that may take nothing; else by
 * ending the top rule so that the rule below takes it. Worked out once,
 * when the grammar is compiled, for every state of every rule: what it
 * can begin with, whether its rule may end there, how many frames above
 * it the text needs at least to end (need), and for each byte it can
 * begin with, how many frames taking that byte and then ending needs
 * (its way). So the stack never tries a way and goes back: a byte is
 * taken only where the text can still end within the stack's
 * SLORA_JSON_DEPTH_MAX frames, by the rule's own byte where that fits,
 * else by the call or pass of the fewest frames; whatever is taken, the
 * answer can still end, and a byte costs a few table looks a frame. A
 * call in its rule's last place (nothing can follow it there) replaces
 * its rule's frame rather than stacking on it, so a rule that names
 * itself last (a list: items ::= item ("," items)?) runs on without the
 * stack growing.
 *
 * Every text taken is one the grammar derives. Where the grammar leaves
 * two ways for the same byte, the texts of the way not kept may be lost
 * (a rule that may end or go on with the same byte goes on); a rule that
 * can name itself before any text of its own (left recursion) is
 * refused, since it would call itself without end.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_grammar.h"
#include "slora_json_lex.h"


#define SLORA_JSON_G_NEVER      255         /* need: the text cannot end */
#define SLORA_JSON_G_STATES_MAX 8192        /* of all rules' automata: each
                                               keeps 512 bytes of ways */
#define SLORA_JSON_G_PASSES_MAX 8           /* calls of rules that may
                                               take nothing passed over
                                               in a row, one frame */
#define SLORA_JSON_G_MOVES_MAX  1024        /* frames moved for one byte:
                                               a compiled grammar needs
                                               fewer (see take) */
#define SLORA_JSON_G_WORK_MAX   (1u << 23)  /* steps of each fixed point
                                               while compiling: some
                                               5 ms on a worker's event
                                               loop at most (25 rules
                                               calling each other need
                                               some 3 million) */


/* One state of a rule's automaton. */
typedef struct {
    uint64_t    first[4];   /* bytes it takes without its rule ending */
    uint8_t     end;        /* its rule may end here */
    uint8_t     need;       /* frames above its own the text needs to
                               end; SLORA_JSON_G_NEVER */
    uint8_t     pad[6];
} slora_json_gstate_t;


/* The grammar's block, at the schema's regexes: offsets from it. */
typedef struct {
    uint32_t    n_rules;
    uint32_t    pad;
    uint32_t    re[SLORA_GRAMMAR_CALLS_MAX];    /* rule k's automaton */
    uint32_t    st[SLORA_GRAMMAR_CALLS_MAX];    /* its states */
    uint32_t    way[SLORA_GRAMMAR_CALLS_MAX];   /* its states' ways: by
                                                   state and byte, two
                                                   bytes (see ways) */
    uint8_t     most[SLORA_GRAMMAR_CALLS_MAX];  /* the most frames any
                                                   state of it needs */
    uint8_t     callee[256];    /* byte: 1 + the rule it calls, or 0 */
} slora_json_gram_t;


static slora_json_schema_t *slora_json_gram_build(slora_grammar_t *gr,
    slora_err_t *err);
static int slora_json_gram_settle(slora_json_gram_t *g,
    const slora_grammar_t *gr, slora_err_t *err);
static int slora_json_gram_left(const slora_json_gram_t *g,
    const slora_grammar_t *gr, slora_err_t *err);
static int slora_json_gram_ways(slora_json_gram_t *g,
    const slora_grammar_t *gr, slora_err_t *err);
static int slora_json_gram_take(slora_json_t *j, const slora_json_gram_t *g,
    unsigned c);
static void slora_json_gram_settled(slora_json_t *j,
    const slora_json_gram_t *g);


static inline const slora_json_gram_t *
slora_json_gram(const slora_json_schema_t *s)
{
    return (const slora_json_gram_t *) (const void *)
           (s->regexes + s->nodes[s->root].first);
}


static inline const slora_regex_t *
slora_json_gram_re(const slora_json_gram_t *g, uint32_t k)
{
    return (const slora_regex_t *) (const void *) ((const char *) g
                                                   + g->re[k]);
}


static inline const slora_json_gstate_t *
slora_json_gram_st(const slora_json_gram_t *g, uint32_t k)
{
    return (const slora_json_gstate_t *) (const void *) ((const char *) g
                                                         + g->st[k]);
}


/* Rule k's way for byte c from state s: [0] the frames above its own
 * that taking c and then ending need at least, [1] how many calls of
 * rules that may take nothing that way passes over first. */
static inline const uint8_t *
slora_json_gram_way(const slora_json_gram_t *g, uint32_t k, uint32_t s,
    unsigned c)
{
    return (const uint8_t *) g + g->way[k] + ((size_t) s * 256 + c) * 2;
}


static inline int
slora_json_gram_any(const uint64_t *set)
{
    return (set[0] | set[1] | set[2] | set[3]) != 0;
}


/* 1 when a call that leads to state u of its rule is the rule's last:
 * nothing can follow it there, so the callee's frame stands for the
 * rule's own. */
static inline int
slora_json_gram_last(const slora_json_gstate_t *st, uint32_t u)
{
    return !slora_json_gram_any(st[u].first) && st[u].end;
}


/* The frames above the caller's that a call leading to state u needs,
 * where the callee needs inner above its own: the callee's alone where
 * the call is last, else its frame and inner, or u's need if more. */
static inline uint32_t
slora_json_gram_call(const slora_json_gstate_t *st, uint32_t u,
    uint32_t inner)
{
    return slora_json_gram_last(st, u) ? inner
           : inner + 1u > st[u].need ? inner + 1u : st[u].need;
}


slora_json_schema_t *
slora_json_grammar_parse(const char *text, size_t len, slora_err_t *err)
{
    slora_grammar_t       gr;
    slora_json_schema_t  *s;

    if (slora_grammar_write(text, len, &gr, err) != SLORA_OK) {
        slora_grammar_free(&gr);
        return NULL;
    }

    if (gr.n == 1 && !gr.calls) {
        s = slora_json_whole_parse(gr.text, gr.len[0],
                                   SLORA_REGEX_WHOLE | SLORA_REGEX_LONG,
                                   "the grammar", err);
    } else {
        s = slora_json_gram_build(&gr, err);
    }

    slora_grammar_free(&gr);

    return s;
}


/* Each rule's automaton and its states' table in one raw schema. */
static slora_json_schema_t *
slora_json_gram_build(slora_grammar_t *gr, slora_err_t *err)
{
    char                 *p, *at;
    size_t                budget, size;
    uint32_t              k, states;
    slora_regex_t        *re[SLORA_GRAMMAR_CALLS_MAX];
    slora_json_gram_t    *g;
    slora_json_text_t    *texts;
    slora_json_node_t    *root;
    slora_json_schema_t  *s;

    memset(re, 0, sizeof(re));
    budget = 2 * (size_t) SLORA_REGEX_WORK_MAX;
    size = (sizeof(slora_json_gram_t) + 7) & ~(size_t) 7;
    states = 0;
    s = NULL;

    for (k = 0; k < gr->n; k++) {
        re[k] = slora_regex_compile(gr->text + gr->off[k], gr->len[k], 0,
                                    SLORA_REGEX_NONE,
                                    SLORA_REGEX_WHOLE | SLORA_REGEX_LONG
                                    | SLORA_REGEX_CALLS, &budget, err);
        if (re[k] == NULL) {
            /* a byte of an expression the client never saw tells it
             * nothing */
            at = strstr(err->msg, " at byte ");
            if (at != NULL) {
                *at = '\0';
            }

            (void) slora_err_prefix(err, "the grammar's rule \"%s\", "
                                    "written out as a regular expression "
                                    "(each rule that does not reach itself "
                                    "where it is named), is refused",
                                    gr->name[k]);
            goto failed;
        }

        size += (re[k]->size + 7) & ~(size_t) 7;
        size += (size_t) re[k]->n_states * (sizeof(slora_json_gstate_t)
                                            + 512);
        states += re[k]->n_states;

        if (states > SLORA_JSON_G_STATES_MAX) {
            slora_err_set(err, SLORA_ERROR, "the grammar is too large to "
                          "hold: its rules' automata have more than %d "
                          "states in all", SLORA_JSON_G_STATES_MAX);
            goto failed;
        }
    }

    s = slora_json_raw_schema(0, 0, size, &root, &texts, &p, err);
    if (s == NULL) {
        goto failed;
    }

    root->kind = SLORA_JSON_K_GRAMMAR;
    root->first = 0;

    g = (slora_json_gram_t *) (void *) s->regexes;
    memset(g, 0, sizeof(*g));
    g->n_rules = gr->n;
    size = (sizeof(slora_json_gram_t) + 7) & ~(size_t) 7;

    for (k = 0; k < gr->n; k++) {
        g->callee[slora_grammar_call_byte[k]] = (uint8_t) (k + 1);

        g->re[k] = (uint32_t) size;
        memcpy((char *) g + size, re[k], re[k]->size);
        size += (re[k]->size + 7) & ~(size_t) 7;

        g->st[k] = (uint32_t) size;
        size += (size_t) re[k]->n_states * sizeof(slora_json_gstate_t);

        g->way[k] = (uint32_t) size;
        size += (size_t) re[k]->n_states * 512;
    }

    if (slora_json_gram_settle(g, gr, err) != SLORA_OK
        || slora_json_gram_left(g, gr, err) != SLORA_OK
        || slora_json_gram_ways(g, gr, err) != SLORA_OK)
    {
        slora_json_schema_free(s);
        s = NULL;
    }

failed:

    for (k = 0; k < gr->n; k++) {
        free(re[k]);
    }

    return s;
}


/*
 * Every state's first bytes, end and need, as least fixed points, in two
 * phases since need's way through a call (whether the call is its rule's
 * last) reads the others' final values: first, the bytes its automaton
 * takes, each call's rule's first, and where that rule may take nothing,
 * the first of the state after the call; end, an accepting state, or a
 * call of a rule that may take nothing to a state that may end. Then
 * need: 0 where it may end, else the least over a byte's next state's, a
 * call's (the called rule's need plus its frame, or where the call is
 * last, the called rule's alone) and a passed-over call's next state's.
 * Each phase passes over all states until none changes. Then what the
 * grammar cannot be is refused: a rule that never ends, a root that
 * takes nothing. (Root's need is under the stack's depth: a way that
 * needs the fewest frames opens no rule twice, and there are at most
 * SLORA_GRAMMAR_CALLS_MAX.)
 */
static int
slora_json_gram_settle(slora_json_gram_t *g, const slora_grammar_t *gr,
    slora_err_t *err)
{
    int                    changed, phase;
    size_t                 work;
    uint32_t               k, m, s, c, u, need, via, w, cls;
    uint64_t               first[4], bytes[256][4];
    const uint16_t        *next;
    const slora_regex_t   *r;
    slora_json_gstate_t   *st, *callee;

    work = 0;

    for (k = 0; k < g->n_rules; k++) {
        r = slora_json_gram_re(g, k);
        st = (slora_json_gstate_t *) slora_json_gram_st(g, k);

        for (s = 0; s < r->n_states; s++) {
            memset(&st[s], 0, sizeof(st[s]));
            st[s].need = SLORA_JSON_G_NEVER;
            st[s].end = (uint8_t) slora_regex_accepts(r, s, 0);
        }
    }

    for (phase = 0; phase < 2; phase++) {
        do {
            changed = 0;

            for (k = 0; k < g->n_rules; k++) {
                r = slora_json_gram_re(g, k);
                st = (slora_json_gstate_t *) slora_json_gram_st(g, k);
                next = slora_regex_table(r);
                work += (size_t) r->n_states * (r->n_classes + g->n_rules);

                if (work > SLORA_JSON_G_WORK_MAX) {
                    return slora_err_set(err, SLORA_ERROR, "the grammar is "
                                         "too large to hold: its rules' "
                                         "automata did not settle within "
                                         "%u steps", SLORA_JSON_G_WORK_MAX);
                }

                /* this rule's bytes of its own, by class: every byte but
                 * the call bytes (a class of call bytes alone has none) */
                memset(bytes, 0, sizeof(uint64_t) * 4 * r->n_classes);

                for (c = 0; c < 256; c++) {
                    if (g->callee[c] == 0) {
                        bytes[r->classes[c]][c >> 6] |=
                            (uint64_t) 1 << (c & 63);
                    }
                }

                for (s = r->n_states; s-- > 0; /* void */) {
                    if (phase == 0) {
                        memset(first, 0, sizeof(first));
                    }

                    need = st[s].end ? 0 : st[s].need;

                    for (cls = 0; cls < r->n_classes; cls++) {
                        u = next[s * r->n_classes + cls];

                        if (u == SLORA_REGEX_DEAD
                            || !slora_json_gram_any(bytes[cls]))
                        {
                            continue;
                        }

                        if (phase == 0) {
                            for (w = 0; w < 4; w++) {
                                first[w] |= bytes[cls][w];
                            }

                        } else if (st[u].need < need) {
                            need = st[u].need;
                        }
                    }

                    for (m = 0; m < g->n_rules; m++) {
                        u = slora_regex_next(r, s,
                                             slora_grammar_call_byte[m]);

                        if (u == SLORA_REGEX_DEAD) {
                            continue;
                        }

                        callee = (slora_json_gstate_t *)
                                 slora_json_gram_st(g, m);

                        if (phase == 0) {
                            for (w = 0; w < 4; w++) {
                                first[w] |= callee[0].first[w]
                                            | (callee[0].end
                                               ? st[u].first[w] : 0);
                            }

                            if (callee[0].end && st[u].end && !st[s].end) {
                                st[s].end = 1;
                                changed = 1;
                            }

                            continue;
                        }

                        if (callee[0].need != SLORA_JSON_G_NEVER) {
                            via = slora_json_gram_call(st, u,
                                                       callee[0].need);

                            if (via < need) {
                                need = via;
                            }
                        }

                        if (callee[0].end && st[u].need < need) {
                            need = st[u].need;
                        }
                    }

                    if (phase == 0) {
                        if (memcmp(first, st[s].first, sizeof(first)) != 0)
                        {
                            memcpy(st[s].first, first, sizeof(first));
                            changed = 1;
                        }

                    } else if (need < st[s].need) {
                        st[s].need = (uint8_t) need;
                        changed = 1;
                    }
                }
            }

        } while (changed);
    }

    /* the most a rule's states need: where the stack has that much room
     * above the rule's frame, its own bytes are always what is taken */
    for (k = 0; k < g->n_rules; k++) {
        r = slora_json_gram_re(g, k);
        st = (slora_json_gstate_t *) slora_json_gram_st(g, k);
        g->most[k] = 0;

        for (s = 0; s < r->n_states; s++) {
            /* (a state that can never end, if one were kept: the walk
             * is never used in that rule) */
            if (st[s].need > g->most[k]) {
                g->most[k] = st[s].need;
            }
        }
    }

    /* the rules root names first: root never ends when one of them
     * does not */
    for (k = g->n_rules; k-- > 0; /* void */) {
        st = (slora_json_gstate_t *) slora_json_gram_st(g, k);

        if (st[0].need == SLORA_JSON_G_NEVER) {
            return slora_err_set(err, SLORA_ERROR, "the grammar's rule "
                                 "\"%s\" never ends: every way through it "
                                 "names a rule that never ends, itself or "
                                 "another (a character no answer holds, a "
                                 "control character, is no way through)",
                                 gr->name[k]);
        }
    }

    st = (slora_json_gstate_t *) slora_json_gram_st(g, 0);

    if (!slora_json_gram_any(st[0].first)) {
        return slora_err_set(err, SLORA_ERROR, "the grammar matches only "
                             "the empty text");
    }

    return SLORA_OK;
}


/*
 * Left recursion: rule k may call rule m before any byte of its own (from
 * its start, passing over calls of rules that may take nothing); a rule
 * that may so call itself, on the way through others or not, is refused
 * naming the way.
 */
static int
slora_json_gram_left(const slora_json_gram_t *g, const slora_grammar_t *gr,
    slora_err_t *err)
{
    int                         n;
    char                        way[400];
    size_t                      len;
    uint32_t                    k, m, i, s, u, top, from;
    uint32_t                    calls[SLORA_GRAMMAR_CALLS_MAX];
    uint32_t                    path[SLORA_GRAMMAR_CALLS_MAX + 1];
    uint32_t                    at[SLORA_GRAMMAR_CALLS_MAX + 1];
    uint8_t                     mark[SLORA_GRAMMAR_CALLS_MAX];
    uint32_t                   *seen, *pending;
    const slora_regex_t        *r;
    const slora_json_gstate_t  *callee;

    memset(calls, 0, sizeof(calls));

    for (k = 0; k < g->n_rules; k++) {
        r = slora_json_gram_re(g, k);
        seen = calloc(r->n_states, sizeof(uint32_t));
        pending = malloc(r->n_states * sizeof(uint32_t));

        if (seen == NULL || pending == NULL) {
            free(seen);
            free(pending);
            return slora_err_set(err, SLORA_ERROR, "grammar: no memory");
        }

        /* the states reached from the start over calls alone */
        top = 0;
        pending[top++] = 0;
        seen[0] = 1;

        while (top > 0) {
            s = pending[--top];

            for (m = 0; m < g->n_rules; m++) {
                u = slora_regex_next(r, s, slora_grammar_call_byte[m]);

                if (u == SLORA_REGEX_DEAD) {
                    continue;
                }

                calls[k] |= 1u << m;
                callee = slora_json_gram_st(g, m);

                if (callee[0].end && !seen[u]) {
                    seen[u] = 1;
                    pending[top++] = u;
                }
            }
        }

        free(seen);
        free(pending);
    }

    /* a walk over "may call first", marking the rules on the way */
    memset(mark, 0, sizeof(mark));

    for (k = 0; k < g->n_rules; k++) {
        if (mark[k] != 0) {
            continue;
        }

        n = 0;
        path[0] = k;
        at[0] = 0;
        mark[k] = 1;

        while (n >= 0) {
            m = at[n]++;

            if (m == g->n_rules) {
                mark[path[n]] = 2;
                n--;
                continue;
            }

            if (!(calls[path[n]] >> m & 1) || mark[m] == 2) {
                continue;
            }

            if (mark[m] == 1) {
                for (from = 0; path[from] != m; from++) {
                    /* void */
                }

                len = 0;

                for (i = from; i <= (uint32_t) n + 1 && len < sizeof(way) - 1;
                     i++)
                {
                    len += (size_t) snprintf(way + len, sizeof(way) - len,
                                             "%s%s", i > from ? " -> " : "",
                                             gr->name[i <= (uint32_t) n
                                                      ? path[i] : m]);
                }

                return slora_err_set(err, SLORA_ERROR, "the grammar's rules "
                                     "name themselves before any text of "
                                     "their own (%s): left recursion is "
                                     "not held, write it as a repetition "
                                     "(a ::= b (\"+\" b)*)", way);
            }

            mark[m] = 1;
            n++;
            path[n] = m;
            at[n] = 0;
        }
    }

    return SLORA_OK;
}


/*
 * Every state's way for every byte it can begin with, as the least
 * fixed point of (frames, passes), compared frames first: the rule's own
 * byte, its next state's need; a call of a rule that can begin with the
 * byte, that rule's frames for it plus its own frame (or where the call
 * is last, the rule's alone, its frame standing for the caller's), and
 * the state after the call's need, the larger; a call of a rule that may
 * take nothing passed over, the next state's way with one pass more. So
 * a frame that takes a byte by a way that fits the stack's room ends
 * taking it, whichever way it is, and a way along passes over calls
 * strictly shortens them: the stack never tries a way and goes back.
 */
static int
slora_json_gram_ways(slora_json_gram_t *g, const slora_grammar_t *gr,
    slora_err_t *err)
{
    int                          changed;
    size_t                       work;
    uint32_t                     k, m, s, u, t, c, w, frames, passes;
    uint64_t                     bits;
    uint8_t                     *way;
    const uint8_t               *to;
    const slora_regex_t         *r;
    const slora_json_gstate_t   *st, *callee;

    for (k = 0; k < g->n_rules; k++) {
        r = slora_json_gram_re(g, k);
        memset((char *) g + g->way[k], SLORA_JSON_G_NEVER,
               (size_t) r->n_states * 512);
    }

    work = 0;

    do {
        changed = 0;

        for (k = 0; k < g->n_rules; k++) {
            r = slora_json_gram_re(g, k);
            st = slora_json_gram_st(g, k);

            for (s = r->n_states; s-- > 0; /* void */) {
                for (w = 0; w < 4; w++) {
                    for (bits = st[s].first[w]; bits != 0; bits &= bits - 1)
                    {
                        c = w * 64 + (uint32_t) __builtin_ctzll(bits);
                        way = (uint8_t *) slora_json_gram_way(g, k, s, c);
                        work += 1 + g->n_rules;

                        if (work > SLORA_JSON_G_WORK_MAX) {
                            return slora_err_set(err, SLORA_ERROR, "the "
                                                 "grammar is too large to "
                                                 "hold: its rules' ways did "
                                                 "not settle within %u "
                                                 "steps",
                                                 SLORA_JSON_G_WORK_MAX);
                        }

                        frames = way[0];
                        passes = way[1];

                        t = slora_regex_next(r, s, c);

                        if (t != SLORA_REGEX_DEAD && st[t].need < frames) {
                            frames = st[t].need;
                            passes = 0;
                        }

                        for (m = 0; m < g->n_rules; m++) {
                            u = slora_regex_next(r, s,
                                                 slora_grammar_call_byte[m]);

                            if (u == SLORA_REGEX_DEAD) {
                                continue;
                            }

                            callee = slora_json_gram_st(g, m);
                            to = slora_json_gram_way(g, m, 0, c);

                            if (to[0] != SLORA_JSON_G_NEVER) {
                                t = slora_json_gram_call(st, u, to[0]);

                                if (t < frames || (t == frames && passes > 0))
                                {
                                    frames = t;
                                    passes = 0;
                                }
                            }

                            to = slora_json_gram_way(g, k, u, c);

                            if (callee[0].end && u != s
                                && to[0] != SLORA_JSON_G_NEVER
                                && to[1] + 1u <= SLORA_JSON_G_PASSES_MAX
                                && (to[0] < frames
                                    || (to[0] == frames
                                        && to[1] + 1u < passes)))
                            {
                                frames = to[0];
                                passes = to[1] + 1u;
                            }
                        }

                        if (frames >= SLORA_JSON_G_NEVER) {
                            continue;
                        }

                        if (frames < way[0]
                            || (frames == way[0] && passes < way[1]))
                        {
                            way[0] = (uint8_t) frames;
                            way[1] = (uint8_t) passes;
                            changed = 1;
                        }
                    }
                }
            }
        }

    } while (changed);

    /* every byte a state can begin with has its way, unless passing over
     * more calls than SLORA_JSON_G_PASSES_MAX in a row was left out */
    for (k = 0; k < g->n_rules; k++) {
        r = slora_json_gram_re(g, k);
        st = slora_json_gram_st(g, k);

        for (s = 0; s < r->n_states; s++) {
            for (c = 0; c < 256; c++) {
                if (st[s].first[c >> 6] >> (c & 63) & 1
                    && slora_json_gram_way(g, k, s, c)[0]
                       == SLORA_JSON_G_NEVER)
                {
                    return slora_err_set(err, SLORA_ERROR, "the grammar's "
                                         "rule \"%s\" has a place where "
                                         "more than %d rules that may take "
                                         "nothing are named one after "
                                         "another before a character; this "
                                         "server holds at most %d",
                                         gr->name[k], SLORA_JSON_G_PASSES_MAX,
                                         SLORA_JSON_G_PASSES_MAX);
                }
            }
        }
    }

    return SLORA_OK;
}


int
slora_json_grammar_start(slora_json_t *j, uint32_t id, unsigned c)
{
    const slora_json_gram_t  *g;

    g = slora_json_gram(j->schema);

    if (g->callee[c & 0xff] != 0) {
        return 0;
    }

    j->frames[0].node = id;
    j->frames[0].phase = 0;
    j->frames[0].a = 0;
    j->frames[0].b = 0;
    j->frames[0].cand = 0;
    j->depth = 1;

    if (!slora_json_gram_take(j, g, c)) {
        j->depth = 0;
        return 0;
    }

    slora_json_gram_settled(j, g);

    return 1;
}


int
slora_json_grammar_byte(slora_json_t *j, unsigned c)
{
    const slora_json_gram_t  *g;

    g = slora_json_gram(j->schema);

    if (g->callee[c & 0xff] != 0) {
        return 0;
    }

    if (!slora_json_gram_take(j, g, c)) {
        return 0;
    }

    slora_json_gram_settled(j, g);

    return 1;
}


const slora_regex_t *
slora_json_grammar_walk(const slora_json_t *j, uint32_t *state)
{
    const slora_json_gram_t   *g;
    const slora_json_frame_t  *f;

    if (j->depth == 0
        || j->schema->nodes[j->schema->root].kind != SLORA_JSON_K_GRAMMAR)
    {
        return NULL;
    }

    g = slora_json_gram(j->schema);
    f = &j->frames[j->depth - 1];

    if (j->depth + g->most[f->a] > SLORA_JSON_DEPTH_MAX) {
        return NULL;
    }

    *state = (uint32_t) f->cand;

    return slora_json_gram_re(g, f->a);
}


int
slora_json_grammar_may_end(const slora_json_t *j)
{
    uint32_t                    k;
    const slora_json_gram_t    *g;
    const slora_json_frame_t   *f;

    g = slora_json_gram(j->schema);

    if (j->depth == 0) {
        return slora_json_gram_st(g, 0)[0].end;
    }

    for (k = 0; k < j->depth; k++) {
        f = &j->frames[k];

        if (!slora_json_gram_st(g, f->a)[f->cand].end) {
            return 0;
        }
    }

    return 1;
}


/*
 * Takes c: the top rule's own byte where its next state fits the stack's
 * room; else the call or the passed-over call whose way (ways) fits it
 * and needs the fewest frames (then the fewest passes, then the first in
 * the rule), which is sure to take c; else, where the rule may end and
 * has taken something (a frame pushed for c that ended would be its
 * call passed over), the frame below tries. Only the last goes back: a
 * frame below that cannot take c either leaves the frames as they were.
 */
static int
slora_json_gram_take(slora_json_t *j, const slora_json_gram_t *g,
    unsigned c)
{
    int                         fresh;
    uint8_t                     depth;
    uint32_t                    k, s, t, u, room, frames, moves;
    uint32_t                    best_k, best_u, best_frames, best_passes;
    slora_json_frame_t         *f;
    const uint8_t              *way;
    const slora_regex_t        *r;
    const slora_json_gstate_t  *st, *callee;

    depth = j->depth;
    fresh = 0;

    /* each move pushes or replaces the frame (at most once a rule
     * before the byte is taken: no left recursion), passes (at most
     * SLORA_JSON_G_PASSES_MAX in a row a frame) or pops (at most the
     * stack): some 800 at most */
    for (moves = 0; moves < SLORA_JSON_G_MOVES_MAX; moves++) {
        f = &j->frames[j->depth - 1];
        r = slora_json_gram_re(g, f->a);
        st = slora_json_gram_st(g, f->a);
        s = (uint32_t) f->cand;
        room = SLORA_JSON_DEPTH_MAX - j->depth;

        /* the rule's own byte */
        t = slora_regex_next(r, s, c);

        if (t != SLORA_REGEX_DEAD && st[t].need <= room) {
            f->cand = t;
            return 1;
        }

        /* the call, or the call passed over, of the fewest frames */
        best_k = SLORA_REGEX_NONE;
        best_u = 0;
        best_frames = room + 1;
        best_passes = SLORA_JSON_G_NEVER;

        for (k = 0; k < g->n_rules; k++) {
            u = slora_regex_next(r, s, slora_grammar_call_byte[k]);

            if (u == SLORA_REGEX_DEAD) {
                continue;
            }

            callee = slora_json_gram_st(g, k);
            way = slora_json_gram_way(g, k, 0, c);

            if (way[0] != SLORA_JSON_G_NEVER) {
                frames = slora_json_gram_call(st, u, way[0]);

                if (frames <= room
                    && (frames < best_frames
                        || (frames == best_frames && best_passes > 0)))
                {
                    best_k = k;
                    best_u = u;
                    best_frames = frames;
                    best_passes = 0;
                }
            }

            way = slora_json_gram_way(g, f->a, u, c);

            if (callee[0].end && u != s && way[0] <= room
                && (way[0] < best_frames
                    || (way[0] == best_frames && way[1] + 1u < best_passes)))
            {
                best_k = k;
                best_u = u;
                best_frames = way[0];
                best_passes = way[1] + 1u;
            }
        }

        if (best_k != SLORA_REGEX_NONE && best_passes > 0) {
            f->cand = best_u;
            continue;
        }

        if (best_k != SLORA_REGEX_NONE) {
            if (slora_json_gram_last(st, best_u)) {
                /* the call is its rule's last: the frame is the callee's */
                f->a = best_k;

            } else {
                f->cand = best_u;
                f = &j->frames[j->depth];
                f->node = j->frames[j->depth - 1].node;
                f->a = best_k;
                j->depth++;
            }

            f->phase = 0;
            f->b = 0;
            f->cand = 0;
            fresh = 1;
            continue;
        }

        /* the rule's end: the frame below takes c */
        if (st[s].end && j->depth > 1 && !fresh) {
            j->depth--;
            continue;
        }

        break;
    }

    /* no frame took c: only frames ended, none moved */
    j->depth = depth;

    return 0;
}


/* Done where no frame can take another byte: the answer must end. */
static void
slora_json_gram_settled(slora_json_t *j, const slora_json_gram_t *g)
{
    uint32_t                   k;
    const slora_json_frame_t  *f;

    for (k = j->depth; k-- > 0; /* void */) {
        f = &j->frames[k];

        if (slora_json_gram_any(slora_json_gram_st(g, f->a)[f->cand].first))
        {
            return;
        }
    }

    j->depth = 0;
    j->done = 1;
}
