/*
 * slora_grammar.c: a GBNF/EBNF grammar (vLLM's guided_grammar) read into
 * a tree of nodes, its rules that reach themselves found, and written out
 * as regular expressions for slora_regex.c (slora_grammar.h): root's,
 * and one for each rule that reaches itself, each such rule named in
 * them by its call byte.
 *
 * The one idea: the parser keeps every node in one array and every list
 * of children in another, with indexes for links, so that a rule's
 * body is a node id and writing a rule out where its name stands is a
 * walk from that id; a rule named before it is defined gets its entry at
 * the name, filled by its definition. Which rules reach themselves is
 * the transitive closure of "names" over the rules, as bit sets. Every
 * code point is written as an escape but letters, digits and a few
 * marks, so that nothing in a literal or a class can mean syntax to the
 * expression's parser.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_grammar.h"
#include "slora_regex.h"
#include "slora_tokenizer.h"


#define SLORA_GRAMMAR_DEPTH_MAX  64       /* groups in groups */
#define SLORA_GRAMMAR_EMIT_MAX   1000     /* rules and groups written out
                                             one inside another */
#define SLORA_GRAMMAR_CODE_MAX   0x10ffff


typedef enum {
    SLORA_G_LIT = 0,        /* a: first code point, n: how many */
    SLORA_G_CLASS,          /* a: first range, n: how many; negate */
    SLORA_G_ANY,
    SLORA_G_REF,            /* a: the rule */
    SLORA_G_SEQ,            /* a: first child, n: how many */
    SLORA_G_ALT,            /* a: first child, n: how many */
    SLORA_G_REP             /* a: the node, min..max */
} slora_g_kind_e;


typedef struct {
    uint8_t     kind;
    uint8_t     negate;
    uint32_t    a;
    uint32_t    n;
    uint32_t    min;
    uint32_t    max;        /* SLORA_REGEX_NONE: no bound */
} slora_g_node_t;


typedef struct {
    const char *name;       /* into the text */
    size_t      len;
    uint32_t    body;       /* SLORA_REGEX_NONE: named, not defined */
    const char *used;       /* where it was first named */
    uint32_t    call;       /* 0, or 1 + its expression's index */
} slora_g_rule_t;


typedef struct {
    const char      *start;
    const char      *p;
    const char      *end;
    slora_err_t     *err;

    slora_g_node_t  *nodes;
    uint32_t         n_nodes;
    uint32_t         cap_nodes;
    uint32_t        *kids;
    uint32_t         n_kids;
    uint32_t         cap_kids;
    uint32_t        *cps;       /* literals' code points; classes' ranges,
                                   two a range */
    uint32_t         n_cps;
    uint32_t         cap_cps;
    uint32_t        *stack;     /* children of the lists being read */
    uint32_t         n_stack;
    uint32_t         cap_stack;
    slora_g_rule_t   rules[SLORA_GRAMMAR_RULES_MAX];
    uint32_t         n_rules;
    uint32_t         depth;

    uint64_t         names[SLORA_GRAMMAR_RULES_MAX][SLORA_GRAMMAR_RULES_MAX
                                                    / 64];
                                /* rule i names rule k, directly or on the
                                   way: bit k of names[i] */

    char            *out;
    size_t           n_out;
    size_t           cap_out;
    size_t           expr;      /* where the expression being written
                                   began in out */
    uint32_t         calls;     /* a call written */
} slora_g_t;


static int slora_g_rule(slora_g_t *g);
static uint32_t slora_g_alt(slora_g_t *g);
static uint32_t slora_g_seq(slora_g_t *g);
static uint32_t slora_g_primary(slora_g_t *g);
static uint32_t slora_g_quantify(slora_g_t *g, uint32_t node);
static uint32_t slora_g_literal(slora_g_t *g);
static uint32_t slora_g_class(slora_g_t *g);
static int slora_g_char(slora_g_t *g, int in_class, uint32_t *cp);
static int slora_g_utf8(slora_g_t *g, uint32_t *cp);
static int slora_g_number(slora_g_t *g, uint32_t *v);
static uint32_t slora_g_list(slora_g_t *g, uint32_t kind, uint32_t from);
static uint32_t slora_g_node(slora_g_t *g, uint32_t kind, uint32_t a,
    uint32_t n);
static int slora_g_push(slora_g_t *g, uint32_t **arr, uint32_t *n,
    uint32_t *cap, uint32_t v, uint32_t limit, const char *what);
static int slora_g_grow(slora_g_t *g, void **arr, uint32_t n, uint32_t *cap,
    size_t size, uint32_t limit, const char *what);
static uint32_t slora_g_rule_id(slora_g_t *g, const char *name, size_t len);
static void slora_g_skip(slora_g_t *g);
static int slora_g_name_char(int c);
static int slora_g_at_rule(slora_g_t *g);
static int slora_g_fail(slora_g_t *g, const char *at, const char *fmt,
    const char *what);
static int slora_g_calls(slora_g_t *g, uint32_t root, slora_grammar_t *gr);
static void slora_g_names(slora_g_t *g, uint32_t rule, uint32_t node);
static int slora_g_emit(slora_g_t *g, uint32_t node, uint32_t depth);
static int slora_g_quantified(slora_g_t *g, uint32_t node);
static int slora_g_put(slora_g_t *g, const char *s, size_t n);
static int slora_g_put_cp(slora_g_t *g, uint32_t cp, int in_class);
static void slora_g_free(slora_g_t *g);


const uint8_t  slora_grammar_call_byte[SLORA_GRAMMAR_CALLS_MAX] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0b, 0x0e, 0x0f, 0x10, 0x11,
    0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
    0x1e, 0x1f
};


int
slora_grammar_write(const char *text, size_t len, slora_grammar_t *gr,
    slora_err_t *err)
{
    uint32_t    i, k, root;
    slora_g_t  *g;

    memset(gr, 0, sizeof(*gr));

    g = calloc(1, sizeof(slora_g_t));
    if (g == NULL) {
        return slora_err_set(err, SLORA_ERROR, "grammar: no memory");
    }

    g->start = text;
    g->p = text;
    g->end = text + len;
    g->err = err;

    slora_g_skip(g);

    if (g->p == g->end) {
        slora_g_free(g);
        return slora_err_set(err, SLORA_ERROR, "the grammar holds no rule");
    }

    while (g->p < g->end) {
        if (slora_g_rule(g) != SLORA_OK) {
            slora_g_free(g);
            return SLORA_ERROR;
        }
    }

    root = SLORA_REGEX_NONE;

    for (i = 0; i < g->n_rules; i++) {
        if (g->rules[i].body == SLORA_REGEX_NONE) {
            slora_g_fail(g, g->rules[i].used, "rule \"%s\" is named but "
                         "not defined", NULL);
            slora_g_free(g);
            return SLORA_ERROR;
        }

        if (g->rules[i].len == 4 && memcmp(g->rules[i].name, "root", 4) == 0)
        {
            root = i;
        }
    }

    if (root == SLORA_REGEX_NONE) {
        slora_g_free(g);
        return slora_err_set(err, SLORA_ERROR, "the grammar has no rule "
                             "\"root\", which the answer is");
    }

    if (slora_g_calls(g, root, gr) != SLORA_OK) {
        slora_g_free(g);
        return SLORA_ERROR;
    }

    /* each expression: the rule's alternatives, then a NUL */
    for (k = 0; k < gr->n; k++) {
        for (i = 0; g->rules[i].call != k + 1; i++) {
            /* void */
        }

        g->expr = g->n_out;
        gr->off[k] = g->n_out;

        if (slora_g_emit(g, g->rules[i].body, 0) != SLORA_OK) {
            slora_g_free(g);
            return SLORA_ERROR;
        }

        gr->len[k] = g->n_out - gr->off[k];

        if (slora_g_put(g, "", 1) != SLORA_OK) {
            slora_g_free(g);
            return SLORA_ERROR;
        }
    }

    gr->text = g->out;
    gr->calls = g->calls;
    g->out = NULL;
    slora_g_free(g);

    return SLORA_OK;
}


void
slora_grammar_free(slora_grammar_t *gr)
{
    free(gr->text);
    gr->text = NULL;
    gr->n = 0;
}


/* name ::= alternatives */
static int
slora_g_rule(slora_g_t *g)
{
    uint32_t     id, body;
    const char  *name;

    name = g->p;

    while (g->p < g->end && slora_g_name_char((unsigned char) *g->p)) {
        g->p++;
    }

    if (g->p == name) {
        return slora_g_fail(g, name, "expected a rule's name (letters, "
                            "digits, '_', '-') then \"::=\"", NULL);
    }

    id = slora_g_rule_id(g, name, (size_t) (g->p - name));
    if (id == SLORA_REGEX_NONE) {
        return SLORA_ERROR;
    }

    slora_g_skip(g);

    if (g->end - g->p < 3 || memcmp(g->p, "::=", 3) != 0) {
        return slora_g_fail(g, g->p, "expected \"::=\" after a rule's name",
                            NULL);
    }

    if (g->rules[id].body != SLORA_REGEX_NONE) {
        g->rules[id].used = name;
        return slora_g_fail(g, name, "rule \"%s\" is defined twice", NULL);
    }

    g->p += 3;
    g->depth = 0;

    body = slora_g_alt(g);
    if (body == SLORA_REGEX_NONE) {
        return SLORA_ERROR;
    }

    if (g->p < g->end && *g->p == ')') {
        /* slora_g_seq stops at a ')' too */
        return slora_g_fail(g, g->p, "a ')' without its '('", NULL);
    }

    g->rules[id].body = body;

    return SLORA_OK;
}


/* seq ('|' seq)* */
static uint32_t
slora_g_alt(slora_g_t *g)
{
    uint32_t  from, seq;

    from = g->n_stack;

    for ( ;; ) {
        seq = slora_g_seq(g);

        if (seq == SLORA_REGEX_NONE
            || slora_g_push(g, &g->stack, &g->n_stack, &g->cap_stack, seq,
                            SLORA_GRAMMAR_NODES_MAX, "alternatives")
               != SLORA_OK)
        {
            return SLORA_REGEX_NONE;
        }

        if (g->p == g->end || *g->p != '|') {
            break;
        }

        g->p++;
    }

    if (g->n_stack - from == 1) {
        g->n_stack--;
        return seq;
    }

    return slora_g_list(g, SLORA_G_ALT, from);
}


/* Items up to a '|', a ')', the next rule or the end (skipped past the
 * blanks after it). */
static uint32_t
slora_g_seq(slora_g_t *g)
{
    uint32_t  from, item;

    from = g->n_stack;
    item = SLORA_REGEX_NONE;

    for ( ;; ) {
        slora_g_skip(g);

        if (g->p == g->end || *g->p == '|' || *g->p == ')'
            || slora_g_at_rule(g))
        {
            break;
        }

        item = slora_g_primary(g);

        if (item != SLORA_REGEX_NONE) {
            item = slora_g_quantify(g, item);
        }

        if (item == SLORA_REGEX_NONE
            || slora_g_push(g, &g->stack, &g->n_stack, &g->cap_stack, item,
                            SLORA_GRAMMAR_NODES_MAX, "items")
               != SLORA_OK)
        {
            return SLORA_REGEX_NONE;
        }
    }

    if (g->n_stack - from == 1) {
        g->n_stack--;
        return item;
    }

    return slora_g_list(g, SLORA_G_SEQ, from);
}


static uint32_t
slora_g_primary(slora_g_t *g)
{
    uint32_t     node, id;
    const char  *name;

    switch (*g->p) {

    case '"':
        g->p++;
        return slora_g_literal(g);

    case '[':
        g->p++;
        return slora_g_class(g);

    case '.':
        g->p++;
        return slora_g_node(g, SLORA_G_ANY, 0, 0);

    case '(':
        if (++g->depth > SLORA_GRAMMAR_DEPTH_MAX) {
            slora_g_fail(g, g->p, "groups nested deeper than 64", NULL);
            return SLORA_REGEX_NONE;
        }

        name = g->p++;
        node = slora_g_alt(g);

        if (node == SLORA_REGEX_NONE) {
            return SLORA_REGEX_NONE;
        }

        if (g->p == g->end || *g->p != ')') {
            slora_g_fail(g, name, "a '(' without its ')'", NULL);
            return SLORA_REGEX_NONE;
        }

        g->p++;
        g->depth--;

        return node;
    }

    if (!slora_g_name_char((unsigned char) *g->p)) {
        slora_g_fail(g, g->p, "expected a \"literal\", a [class], '.', a "
                     "'(' group or a rule's name", NULL);
        return SLORA_REGEX_NONE;
    }

    name = g->p;

    while (g->p < g->end && slora_g_name_char((unsigned char) *g->p)) {
        g->p++;
    }

    id = slora_g_rule_id(g, name, (size_t) (g->p - name));

    return id == SLORA_REGEX_NONE ? SLORA_REGEX_NONE
                                  : slora_g_node(g, SLORA_G_REF, id, 0);
}


/* One * + ? {m} {m,} {m,n} after an item, or none, blanks before it;
 * another right after is refused, as llama.cpp's reader refuses it (a
 * group says what it means: ("a"*)?). */
static uint32_t
slora_g_quantify(slora_g_t *g, uint32_t node)
{
    uint32_t     min, max, rep;
    const char  *at;

    for ( ;; ) {
        slora_g_skip(g);

        if (g->p == g->end) {
            return node;
        }

        at = g->p;

        if (g->nodes[node].kind == SLORA_G_REP
            && (*g->p == '*' || *g->p == '+' || *g->p == '?'
                || *g->p == '{'))
        {
            slora_g_fail(g, at, "a quantifier right after another: put the"
                         " item and its first in a group", NULL);
            return SLORA_REGEX_NONE;
        }

        switch (*g->p) {

        case '*':
            min = 0;
            max = SLORA_REGEX_NONE;
            g->p++;
            break;

        case '+':
            min = 1;
            max = SLORA_REGEX_NONE;
            g->p++;
            break;

        case '?':
            min = 0;
            max = 1;
            g->p++;
            break;

        case '{':
            g->p++;
            slora_g_skip(g);

            if (slora_g_number(g, &min) != SLORA_OK) {
                return SLORA_REGEX_NONE;
            }

            slora_g_skip(g);
            max = min;

            if (g->p < g->end && *g->p == ',') {
                g->p++;
                slora_g_skip(g);
                max = SLORA_REGEX_NONE;

                if (g->p < g->end && *g->p != '}'
                    && slora_g_number(g, &max) != SLORA_OK)
                {
                    return SLORA_REGEX_NONE;
                }

                slora_g_skip(g);
            }

            if (g->p == g->end || *g->p != '}') {
                slora_g_fail(g, at, "a '{' without its '}' (a count is {m},"
                             " {m,} or {m,n})", NULL);
                return SLORA_REGEX_NONE;
            }

            g->p++;

            if (max < min) {
                slora_g_fail(g, at, "a count {m,n} with n below m", NULL);
                return SLORA_REGEX_NONE;
            }

            break;

        default:
            return node;
        }

        rep = slora_g_node(g, SLORA_G_REP, node, 0);
        if (rep == SLORA_REGEX_NONE) {
            return SLORA_REGEX_NONE;
        }

        g->nodes[rep].min = min;
        g->nodes[rep].max = max;
        node = rep;
    }
}


static int
slora_g_number(slora_g_t *g, uint32_t *v)
{
    const char  *at;

    at = g->p;
    *v = 0;

    while (g->p < g->end && *g->p >= '0' && *g->p <= '9') {
        *v = *v * 10 + (uint32_t) (*g->p++ - '0');

        if (*v > SLORA_REGEX_REPEAT_MAX) {
            return slora_g_fail(g, at, "a count above 1000", NULL);
        }
    }

    if (g->p == at) {
        return slora_g_fail(g, at, "expected a count's digits", NULL);
    }

    return SLORA_OK;
}


/* "..." after the quote. */
static uint32_t
slora_g_literal(slora_g_t *g)
{
    uint32_t     from, cp;
    const char  *at;

    at = g->p - 1;
    from = g->n_cps;

    for ( ;; ) {
        if (g->p == g->end) {
            slora_g_fail(g, at, "a '\"' without its closing '\"'", NULL);
            return SLORA_REGEX_NONE;
        }

        if (*g->p == '"') {
            g->p++;
            break;
        }

        if (slora_g_char(g, 0, &cp) != SLORA_OK
            || slora_g_push(g, &g->cps, &g->n_cps, &g->cap_cps, cp,
                            UINT32_MAX / 2, "characters")
               != SLORA_OK)
        {
            return SLORA_REGEX_NONE;
        }
    }

    return slora_g_node(g, SLORA_G_LIT, from, g->n_cps - from);
}


/* [...] or [^...] after the '[': characters and ranges. */
static uint32_t
slora_g_class(slora_g_t *g)
{
    int          negate;
    uint32_t     from, lo, hi, node;
    const char  *at;

    at = g->p - 1;
    from = g->n_cps;
    negate = g->p < g->end && *g->p == '^';
    g->p += negate;

    for ( ;; ) {
        if (g->p == g->end) {
            slora_g_fail(g, at, "a '[' without its ']'", NULL);
            return SLORA_REGEX_NONE;
        }

        if (*g->p == ']') {
            g->p++;
            break;
        }

        if (slora_g_char(g, 1, &lo) != SLORA_OK) {
            return SLORA_REGEX_NONE;
        }

        hi = lo;

        if (g->end - g->p >= 2 && *g->p == '-' && g->p[1] != ']') {
            g->p++;

            if (slora_g_char(g, 1, &hi) != SLORA_OK) {
                return SLORA_REGEX_NONE;
            }

            if (hi < lo) {
                slora_g_fail(g, at, "a class range out of order", NULL);
                return SLORA_REGEX_NONE;
            }
        }

        if (slora_g_push(g, &g->cps, &g->n_cps, &g->cap_cps, lo,
                         UINT32_MAX / 2, "characters") != SLORA_OK
            || slora_g_push(g, &g->cps, &g->n_cps, &g->cap_cps, hi,
                            UINT32_MAX / 2, "characters") != SLORA_OK)
        {
            return SLORA_REGEX_NONE;
        }
    }

    if (g->n_cps == from) {
        slora_g_fail(g, at, "an empty class ([] or [^])", NULL);
        return SLORA_REGEX_NONE;
    }

    node = slora_g_node(g, SLORA_G_CLASS, from, (g->n_cps - from) / 2);

    if (node != SLORA_REGEX_NONE) {
        g->nodes[node].negate = (uint8_t) negate;
    }

    return node;
}


/* One character of a literal or a class, maybe an escape. */
static int
slora_g_char(slora_g_t *g, int in_class, uint32_t *cp)
{
    int          i, n;
    unsigned     c, d;
    const char  *at;

    at = g->p;

    if (*g->p != '\\') {
        return slora_g_utf8(g, cp);
    }

    if (++g->p == g->end) {
        return slora_g_fail(g, at, "a '\\' at the end", NULL);
    }

    c = (unsigned char) *g->p++;

    switch (c) {
    case 'n':
        *cp = '\n';
        return SLORA_OK;
    case 'r':
        *cp = '\r';
        return SLORA_OK;
    case 't':
        *cp = '\t';
        return SLORA_OK;
    case 'x':
        n = 2;
        break;
    case 'u':
        n = 4;
        break;
    case 'U':
        n = 8;
        break;
    case '\\': case '"': case '\'': case '[': case ']': case '-': case '^':
        *cp = c;
        return SLORA_OK;
    default:
        return slora_g_fail(g, at, "an escape this grammar does not know "
                            "(\\n \\r \\t \\\\ \\\" \\' \\[ \\] \\- \\^ \\xHH "
                            "\\uHHHH \\UHHHHHHHH are)", NULL);
    }

    *cp = 0;

    for (i = 0; i < n; i++) {
        if (g->p == g->end) {
            return slora_g_fail(g, at, "an escape cut short", NULL);
        }

        d = (unsigned char) *g->p++;

        if (d >= '0' && d <= '9') {
            d -= '0';
        } else if ((d | 0x20) >= 'a' && (d | 0x20) <= 'f') {
            d = (d | 0x20) - 'a' + 10;
        } else {
            return slora_g_fail(g, at, "an escape's hex digit expected",
                                NULL);
        }

        *cp = (*cp << 4) | d;
    }

    if (*cp > SLORA_GRAMMAR_CODE_MAX || (*cp >= 0xd800 && *cp <= 0xdfff)) {
        return slora_g_fail(g, at, "an escape of no Unicode character",
                            NULL);
    }

    return SLORA_OK;
}


/* One UTF-8 character (the request's strings are checked UTF-8). */
static int
slora_g_utf8(slora_g_t *g, uint32_t *cp)
{
    size_t                n, i;
    const unsigned char  *p;

    /* the tokenizer's check: the shortest form, no surrogate, nothing
     * above U+10FFFF */
    p = (const unsigned char *) g->p;
    n = slora_utf8_valid(p, (size_t) (g->end - g->p));

    if (n == 0) {
        return slora_g_fail(g, g->p, "bytes that are not UTF-8", NULL);
    }

    *cp = n == 1 ? p[0] : p[0] & (0x7f >> n);

    for (i = 1; i < n; i++) {
        *cp = (*cp << 6) | (p[i] & 0x3f);
    }

    g->p += n;

    return SLORA_OK;
}


/* The stack's children from `from` on, as a list node of kind. */
static uint32_t
slora_g_list(slora_g_t *g, uint32_t kind, uint32_t from)
{
    uint32_t  i, first;

    first = g->n_kids;

    for (i = from; i < g->n_stack; i++) {
        if (slora_g_push(g, &g->kids, &g->n_kids, &g->cap_kids,
                         g->stack[i], SLORA_GRAMMAR_NODES_MAX, "items")
            != SLORA_OK)
        {
            return SLORA_REGEX_NONE;
        }
    }

    g->n_stack = from;

    return slora_g_node(g, kind, first, g->n_kids - first);
}


static uint32_t
slora_g_node(slora_g_t *g, uint32_t kind, uint32_t a, uint32_t n)
{
    if (slora_g_grow(g, (void **) &g->nodes, g->n_nodes, &g->cap_nodes,
                     sizeof(slora_g_node_t), SLORA_GRAMMAR_NODES_MAX,
                     "items") != SLORA_OK)
    {
        return SLORA_REGEX_NONE;
    }

    memset(&g->nodes[g->n_nodes], 0, sizeof(slora_g_node_t));
    g->nodes[g->n_nodes].kind = (uint8_t) kind;
    g->nodes[g->n_nodes].a = a;
    g->nodes[g->n_nodes].n = n;

    return g->n_nodes++;
}


static int
slora_g_push(slora_g_t *g, uint32_t **arr, uint32_t *n, uint32_t *cap,
    uint32_t v, uint32_t limit, const char *what)
{
    if (slora_g_grow(g, (void **) arr, *n, cap, sizeof(uint32_t), limit,
                     what) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    (*arr)[(*n)++] = v;

    return SLORA_OK;
}


/* Room in *arr (n of *cap elements of size bytes in use) for one more,
 * at most limit: twice the room where it is full. */
static int
slora_g_grow(slora_g_t *g, void **arr, uint32_t n, uint32_t *cap,
    size_t size, uint32_t limit, const char *what)
{
    char       text[80];
    void      *grown;
    uint32_t   want;

    if (n < *cap) {
        return SLORA_OK;
    }

    if (n >= limit) {
        snprintf(text, sizeof(text), "%s (more than %u)", what, limit);
        return slora_g_fail(g, g->p, "the grammar has too many %s", text);
    }

    want = *cap ? *cap * 2 : 64;
    grown = realloc(*arr, (size_t) want * size);

    if (grown == NULL) {
        return slora_err_set(g->err, SLORA_ERROR, "grammar: no memory");
    }

    *arr = grown;
    *cap = want;

    return SLORA_OK;
}


/* The rule of that name, entered if new. */
static uint32_t
slora_g_rule_id(slora_g_t *g, const char *name, size_t len)
{
    uint32_t  i;

    for (i = 0; i < g->n_rules; i++) {
        if (g->rules[i].len == len && memcmp(g->rules[i].name, name, len) == 0)
        {
            return i;
        }
    }

    if (g->n_rules == SLORA_GRAMMAR_RULES_MAX) {
        slora_g_fail(g, name, "the grammar has more than 256 rules", NULL);
        return SLORA_REGEX_NONE;
    }

    g->rules[i].name = name;
    g->rules[i].len = len;
    g->rules[i].body = SLORA_REGEX_NONE;
    g->rules[i].used = name;
    g->rules[i].call = 0;

    return g->n_rules++;
}


/* Blanks, line breaks and # comments. */
static void
slora_g_skip(slora_g_t *g)
{
    while (g->p < g->end) {
        if (*g->p == ' ' || *g->p == '\t' || *g->p == '\n' || *g->p == '\r')
        {
            g->p++;

        } else if (*g->p == '#') {
            while (g->p < g->end && *g->p != '\n') {
                g->p++;
            }

        } else {
            break;
        }
    }
}


static int
slora_g_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


/* 1 at "name ::=": the next rule begins. */
static int
slora_g_at_rule(slora_g_t *g)
{
    const char  *p;

    p = g->p;

    while (p < g->end && slora_g_name_char((unsigned char) *p)) {
        p++;
    }

    if (p == g->p) {
        return 0;
    }

    for ( ;; ) {
        while (p < g->end && (*p == ' ' || *p == '\t' || *p == '\n'
                              || *p == '\r'))
        {
            p++;
        }

        if (p == g->end || *p != '#') {
            break;
        }

        while (p < g->end && *p != '\n') {
            p++;
        }
    }

    return g->end - p >= 3 && memcmp(p, "::=", 3) == 0;
}


/* err: where at is (line and column), then fmt with what, or at's rule
 * name for a "%s" without what. */
static int
slora_g_fail(slora_g_t *g, const char *at, const char *fmt,
    const char *what)
{
    int          line, col, name_len;
    char         msg[80], text[200];
    const char  *p, *name;

    line = 1;
    col = 1;

    for (p = g->start; p < at && p < g->end; p++) {
        if (*p == '\n') {
            line++;
            col = 1;

        } else if (((unsigned char) *p & 0xc0) != 0x80) {
            col++;
        }
    }

    if (what == NULL && strstr(fmt, "%s") != NULL) {
        name = at;
        name_len = 0;

        while (at + name_len < g->end && name_len < 64
               && slora_g_name_char((unsigned char) at[name_len]))
        {
            name_len++;
        }

        snprintf(msg, sizeof(msg), "%.*s", name_len, name);
        what = msg;
    }

    snprintf(text, sizeof(text), fmt, what != NULL ? what : "");

    return slora_err_set(g->err, SLORA_ERROR, "grammar line %d, column %d: "
                         "%s", line, col, text);
}


/*
 * Which rules are called, each an expression of its own: root first (the
 * answer), then the rules reached from root that reach themselves, in
 * the order they were named. The rest are written out where they are
 * named.
 */
static int
slora_g_calls(slora_g_t *g, uint32_t root, slora_grammar_t *gr)
{
    uint32_t  i, k, w, words;

    words = (g->n_rules + 63) / 64;

    for (i = 0; i < g->n_rules; i++) {
        slora_g_names(g, i, g->rules[i].body);
    }

    /* Warshall's closure: i names k on the way, k names j: i names j */
    for (k = 0; k < g->n_rules; k++) {
        for (i = 0; i < g->n_rules; i++) {
            if (g->names[i][k / 64] >> (k % 64) & 1) {
                for (w = 0; w < words; w++) {
                    g->names[i][w] |= g->names[k][w];
                }
            }
        }
    }

    g->rules[root].call = 1;
    gr->n = 1;

    for (i = 0; i < g->n_rules; i++) {
        if (i == root || !(g->names[root][i / 64] >> (i % 64) & 1)
            || !(g->names[i][i / 64] >> (i % 64) & 1))
        {
            continue;
        }

        if (gr->n == SLORA_GRAMMAR_CALLS_MAX) {
            return slora_g_fail(g, g->rules[i].name, "rule \"%s\": the "
                                "grammar has more than 25 rules besides root "
                                "that reach themselves", NULL);
        }

        g->rules[i].call = ++gr->n;
    }

    for (i = 0; i < g->n_rules; i++) {
        if (g->rules[i].call != 0) {
            k = g->rules[i].call - 1;
            snprintf(gr->name[k], sizeof(gr->name[k]), "%.*s",
                     (int) (g->rules[i].len > SLORA_GRAMMAR_NAME_MAX
                            ? SLORA_GRAMMAR_NAME_MAX : g->rules[i].len),
                     g->rules[i].name);
        }
    }

    return SLORA_OK;
}


/* Sets in names[rule] the rules node names itself (not on the way). */
static void
slora_g_names(slora_g_t *g, uint32_t rule, uint32_t node)
{
    uint32_t         i;
    slora_g_node_t  *nd;

    nd = &g->nodes[node];

    switch (nd->kind) {

    case SLORA_G_SEQ:
    case SLORA_G_ALT:
        for (i = 0; i < nd->n; i++) {
            slora_g_names(g, rule, g->kids[nd->a + i]);
        }

        return;

    case SLORA_G_REP:
        slora_g_names(g, rule, nd->a);
        return;

    case SLORA_G_REF:
        g->names[rule][nd->a / 64] |= (uint64_t) 1 << (nd->a % 64);
        return;

    default:
        return;
    }
}


/* node written out as an expression that is one item (it can take a
 * quantifier), at depth rules and groups deep. */
static int
slora_g_emit(slora_g_t *g, uint32_t node, uint32_t depth)
{
    char             q[32];
    uint32_t         i, cp;
    slora_g_node_t  *nd;

    if (depth > SLORA_GRAMMAR_EMIT_MAX) {
        return slora_err_set(g->err, SLORA_ERROR, "the grammar nests rules "
                             "and groups more than %d deep",
                             SLORA_GRAMMAR_EMIT_MAX);
    }

    nd = &g->nodes[node];

    switch (nd->kind) {

    case SLORA_G_LIT:
        if (nd->n == 1) {
            return slora_g_put_cp(g, g->cps[nd->a], 0);
        }

        if (slora_g_put(g, "(?:", 3) != SLORA_OK) {
            return SLORA_ERROR;
        }

        for (i = 0; i < nd->n; i++) {
            if (slora_g_put_cp(g, g->cps[nd->a + i], 0) != SLORA_OK) {
                return SLORA_ERROR;
            }
        }

        return slora_g_put(g, ")", 1);

    case SLORA_G_CLASS:
        if (slora_g_put(g, nd->negate ? "[^" : "[", nd->negate ? 2 : 1)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        for (i = 0; i < nd->n; i++) {
            cp = g->cps[nd->a + 2 * i];

            if (slora_g_put_cp(g, cp, 1) != SLORA_OK
                || (g->cps[nd->a + 2 * i + 1] != cp
                    && (slora_g_put(g, "-", 1) != SLORA_OK
                        || slora_g_put_cp(g, g->cps[nd->a + 2 * i + 1], 1)
                           != SLORA_OK)))
            {
                return SLORA_ERROR;
            }
        }

        return slora_g_put(g, "]", 1);

    case SLORA_G_ANY:
        return slora_g_put(g, "[\\s\\S]", 6);

    case SLORA_G_REF:
        if (g->rules[nd->a].call != 0) {
            snprintf(q, sizeof(q), "\\R%02x", slora_grammar_call_byte[
                                       g->rules[nd->a].call - 1]);
            g->calls = 1;
            return slora_g_put(g, q, 4);
        }

        return slora_g_emit(g, g->rules[nd->a].body, depth + 1);

    case SLORA_G_SEQ:
    case SLORA_G_ALT:
        if (slora_g_put(g, "(?:", 3) != SLORA_OK) {
            return SLORA_ERROR;
        }

        for (i = 0; i < nd->n; i++) {
            if ((i > 0 && nd->kind == SLORA_G_ALT
                 && slora_g_put(g, "|", 1) != SLORA_OK)
                || slora_g_emit(g, g->kids[nd->a + i], depth + 1)
                   != SLORA_OK)
            {
                return SLORA_ERROR;
            }
        }

        return slora_g_put(g, ")", 1);

    default: /* SLORA_G_REP */
        if (nd->min == 0 && nd->max == SLORA_REGEX_NONE) {
            snprintf(q, sizeof(q), "*");
        } else if (nd->min == 1 && nd->max == SLORA_REGEX_NONE) {
            snprintf(q, sizeof(q), "+");
        } else if (nd->min == 0 && nd->max == 1) {
            snprintf(q, sizeof(q), "?");
        } else if (nd->max == SLORA_REGEX_NONE) {
            snprintf(q, sizeof(q), "{%u,}", nd->min);
        } else if (nd->max == nd->min) {
            snprintf(q, sizeof(q), "{%u}", nd->min);
        } else {
            snprintf(q, sizeof(q), "{%u,%u}", nd->min, nd->max);
        }

        /*
         * Its item is written as one item already (a character, a class,
         * a group), but where it is itself quantified (a rule whose
         * body is: x ::= "a"*, then x+), which a group of its own keeps
         * from reading as a lazy or possessive quantifier; so each
         * quantified group is one level of the expression's nesting.
         */
        if (!slora_g_quantified(g, nd->a)) {
            if (slora_g_emit(g, nd->a, depth + 1) != SLORA_OK) {
                return SLORA_ERROR;
            }

        } else if (slora_g_put(g, "(?:", 3) != SLORA_OK
                   || slora_g_emit(g, nd->a, depth + 1) != SLORA_OK
                   || slora_g_put(g, ")", 1) != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        return slora_g_put(g, q, strlen(q));
    }
}


/* 1 when node, its rules followed, is a quantified item. */
static int
slora_g_quantified(slora_g_t *g, uint32_t node)
{
    uint32_t  hops;

    /* a called rule is one byte; the others do not reach themselves:
     * at most n_rules hops */
    for (hops = 0; g->nodes[node].kind == SLORA_G_REF
                   && g->rules[g->nodes[node].a].call == 0
                   && hops <= g->n_rules;
         hops++)
    {
        node = g->rules[g->nodes[node].a].body;
    }

    return g->nodes[node].kind == SLORA_G_REP;
}


static int
slora_g_put(slora_g_t *g, const char *s, size_t n)
{
    char    *grown;
    size_t   want;

    if (g->n_out - g->expr + n > SLORA_GRAMMAR_REGEX_MAX + 1) {
        return slora_err_set(g->err, SLORA_ERROR, "the grammar written out "
                             "as regular expressions (root and each rule "
                             "that reaches itself, each other rule where "
                             "it is named) has one over %d bytes",
                             SLORA_GRAMMAR_REGEX_MAX);
    }

    if (g->n_out + n > g->cap_out) {

        want = g->cap_out ? g->cap_out * 2 : 256;

        while (want < g->n_out + n) {
            want *= 2;
        }

        grown = realloc(g->out, want);
        if (grown == NULL) {
            return slora_err_set(g->err, SLORA_ERROR, "grammar: no memory");
        }

        g->out = grown;
        g->cap_out = want;
    }

    memcpy(g->out + g->n_out, s, n);
    g->n_out += n;

    return SLORA_OK;
}


/* cp as itself where it cannot be syntax, else as \u{H...}. */
static int
slora_g_put_cp(slora_g_t *g, uint32_t cp, int in_class)
{
    int   n;
    char  buf[16];

    /* in a class, ':' and '=' too are escaped: "[:" and "[=" open a
     * POSIX class or collating element to other readers of the
     * expression (PCRE2's) */
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')
        || (cp >= '0' && cp <= '9') || cp == ' ' || cp == '_'
        || cp == ',' || cp == ';' || cp == '"' || cp == '\''
        || cp == '<' || cp == '>' || cp == '@' || cp == '%'
        || cp == '&' || cp == '!' || cp == '#' || cp == '~' || cp == '`'
        || ((cp == '-' || cp == ':' || cp == '=') && !in_class))
    {
        buf[0] = (char) cp;
        return slora_g_put(g, buf, 1);
    }

    n = snprintf(buf, sizeof(buf), "\\u{%x}", cp);

    return slora_g_put(g, buf, (size_t) n);
}


static void
slora_g_free(slora_g_t *g)
{
    free(g->nodes);
    free(g->kids);
    free(g->cps);
    free(g->stack);
    free(g->out);
    free(g);
}
