/*
 * slora_regex_parse.c: a pattern's text into its syntax tree
 * (slora_regex_int.h), by recursive descent over ECMA-262's grammar:
 * alternatives of sequences of quantified atoms.
 *
 * The one idea: every character the pattern names becomes a set of code
 * points, normalized (sorted, merged, complemented where negated) as
 * soon as it is read, so the tree holds no escapes, classes or dots;
 * anchors are read only where they mean "the string begins or ends
 * here", and an unanchored end of a top-level alternative is given
 * "any text" there, as JSON Schema's patterns match anywhere (unless
 * the whole text is to match). What the
 * automaton cannot hold (back references, lookaround, word boundaries,
 * property escapes) is refused with its name, never read as something
 * else.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_regex_int.h"
#include "slora_tokenizer.h"


typedef struct {
    slora_re_tree_t      *t;
    const unsigned char  *p;
    const unsigned char  *end;
    const unsigned char  *start;
    int                   depth;
    int                   whole;    /* no "any text" at either end */
    int                   calls;    /* \RHH: the byte 0xHH as it is */
    slora_err_t          *err;
} slora_re_parser_t;


/* The class escapes' sets (\D, \W and \S are their complements). */
static const slora_re_range_t  slora_re_digit[] = { { 0x30, 0x39 } };
static const slora_re_range_t  slora_re_word[] = {
    { 0x30, 0x39 }, { 0x41, 0x5a }, { 0x5f, 0x5f }, { 0x61, 0x7a }
};
static const slora_re_range_t  slora_re_space[] = {
    { 0x09, 0x0d }, { 0x20, 0x20 }, { 0xa0, 0xa0 }, { 0x1680, 0x1680 },
    { 0x2000, 0x200a }, { 0x2028, 0x2029 }, { 0x202f, 0x202f },
    { 0x205f, 0x205f }, { 0x3000, 0x3000 }, { 0xfeff, 0xfeff }
};
/* what "." does not match: the line terminators */
static const slora_re_range_t  slora_re_eol[] = {
    { 0x0a, 0x0a }, { 0x0d, 0x0d }, { 0x2028, 0x2029 }
};

#define slora_re_n(a)  (sizeof(a) / sizeof((a)[0]))

#define SLORA_RE_BEGIN  1           /* slora_re_anchor's kinds */
#define SLORA_RE_END    2


static uint32_t slora_re_alt(slora_re_parser_t *ps, int top);
static uint32_t slora_re_seq(slora_re_parser_t *ps, int top);
static int slora_re_anchor(slora_re_parser_t *ps, size_t *len);
static uint32_t slora_re_atom(slora_re_parser_t *ps);
static uint32_t slora_re_quantify(slora_re_parser_t *ps, uint32_t atom);
static int slora_re_braces(slora_re_parser_t *ps, uint32_t *min,
    uint32_t *max);
static uint32_t slora_re_group(slora_re_parser_t *ps);
static uint32_t slora_re_class(slora_re_parser_t *ps);
static int slora_re_class_char(slora_re_parser_t *ps, uint32_t *cp);
static int slora_re_escape(slora_re_parser_t *ps, int in_class,
    uint32_t *cp);
static int slora_re_hex(slora_re_parser_t *ps, int n, uint32_t *cp);
static int slora_re_char(slora_re_parser_t *ps, uint32_t *cp);
static int slora_re_add_set(slora_re_parser_t *ps,
    const slora_re_range_t *set, size_t n, int negate);
static int slora_re_add(slora_re_parser_t *ps, uint32_t lo, uint32_t hi);
static uint32_t slora_re_set_end(slora_re_parser_t *ps, uint32_t from,
    int negate);
static int slora_re_range_cmp(const void *a, const void *b);
static uint32_t slora_re_any_text(slora_re_parser_t *ps);
static uint32_t slora_re_node(slora_re_parser_t *ps, uint32_t kind,
    uint32_t a, uint32_t n);
static uint32_t slora_re_cat(slora_re_parser_t *ps, const uint32_t *items,
    uint32_t n);
static int slora_re_grow(slora_re_parser_t *ps, void **p, uint32_t *cap,
    uint32_t need, size_t size, uint32_t limit);
static uint32_t slora_re_fail(slora_re_parser_t *ps, const char *what);


int
slora_re_parse(slora_re_tree_t *t, const char *pattern, size_t len,
    int how, slora_err_t *err)
{
    slora_re_parser_t  ps;

    if (len > ((how & SLORA_REGEX_LONG) ? SLORA_REGEX_LONG_MAX
                                          : SLORA_REGEX_PATTERN_MAX))
    {
        return slora_err_set(err, SLORA_ERROR, "the pattern is %zu bytes, "
                             "at most %d", len,
                             (how & SLORA_REGEX_LONG)
                             ? SLORA_REGEX_LONG_MAX : SLORA_REGEX_PATTERN_MAX);
    }

    ps.t = t;
    ps.p = (const unsigned char *) pattern;
    ps.end = ps.p + len;
    ps.start = ps.p;
    ps.depth = 0;
    ps.whole = (how & SLORA_REGEX_WHOLE) != 0;
    ps.calls = (how & SLORA_REGEX_CALLS) != 0;
    ps.err = err;

    t->root = slora_re_alt(&ps, 1);

    if (t->root == SLORA_REGEX_NONE) {
        return SLORA_ERROR;
    }

    if (ps.p != ps.end) {           /* only a ')' stops the top level */
        slora_re_fail(&ps, "an unmatched ')'");
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


void
slora_re_tree_free(slora_re_tree_t *t)
{
    free(t->nodes);
    free(t->ranges);
    free(t->kids);
}


/* seq ('|' seq)*, up to a ')' or the end. */
static uint32_t
slora_re_alt(slora_re_parser_t *ps, int top)
{
    uint32_t   id, n, cap, *items, *more;

    items = NULL;
    n = 0;
    cap = 0;

    for ( ;; ) {
        id = slora_re_seq(ps, top);

        if (id == SLORA_REGEX_NONE) {
            free(items);
            return SLORA_REGEX_NONE;
        }

        if (n == cap) {
            cap = cap ? 2 * cap : 4;
            more = realloc(items, cap * sizeof(uint32_t));

            if (more == NULL) {
                free(items);
                return slora_re_fail(ps, "out of memory");
            }

            items = more;
        }

        items[n++] = id;

        if (ps->p == ps->end || *ps->p != '|') {
            break;
        }

        ps->p++;
    }

    if (n == 1) {
        id = items[0];

    } else if (slora_re_grow(ps, (void **) &ps->t->kids, &ps->t->cap_kids,
                             ps->t->n_kids + n, sizeof(uint32_t), UINT32_MAX)
               != SLORA_OK)
    {
        id = SLORA_REGEX_NONE;

    } else {
        memcpy(ps->t->kids + ps->t->n_kids, items, n * sizeof(uint32_t));
        id = slora_re_node(ps, SLORA_RE_ALT, ps->t->n_kids, n);
        ps->t->n_kids += n;
    }

    free(items);

    return id;
}


/* Quantified atoms up to a '|', a ')' or the end; at the top level a
 * leading '^' and a trailing '$' anchor it, and "any text" stands where
 * one is missing. */
static uint32_t
slora_re_seq(slora_re_parser_t *ps, int top)
{
    int        begins, ends, anchor;
    size_t     len;
    uint32_t   id, n, cap, *items, *more;

    items = NULL;
    n = 0;
    cap = 0;
    begins = 0;
    ends = 0;
    id = 0;

    if (top && slora_re_anchor(ps, &len) == SLORA_RE_BEGIN) {
        begins = 1;
        ps->p += len;
    }

    while (ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
        anchor = slora_re_anchor(ps, &len);

        if (anchor != 0) {
            if (!top || anchor == SLORA_RE_BEGIN
                || (ps->p + len < ps->end && ps->p[len] != '|'))
            {
                id = slora_re_fail(ps, "an anchor (^, $, \\A, \\Z) is "
                                   "supported only at the start or the "
                                   "end of the pattern or of a top-level "
                                   "alternative");
                break;
            }

            ends = 1;
            ps->p += len;
            break;
        }

        id = slora_re_atom(ps);

        if (id != SLORA_REGEX_NONE) {
            id = slora_re_quantify(ps, id);
        }

        if (id == SLORA_REGEX_NONE) {
            break;
        }

        if (n + 2 > cap) {
            cap = cap ? 2 * cap : 8;
            more = realloc(items, cap * sizeof(uint32_t));

            if (more == NULL) {
                id = slora_re_fail(ps, "out of memory");
                break;
            }

            items = more;
        }

        items[n++] = id;
    }

    if (top && id != SLORA_REGEX_NONE) {
        /* room for two more, and the first moved up for "any text" */
        more = realloc(items, (n + 2) * sizeof(uint32_t));

        if (more == NULL) {
            id = slora_re_fail(ps, "out of memory");

        } else {
            items = more;

            if (!begins && !ps->whole) {
                memmove(items + 1, items, n * sizeof(uint32_t));
                items[0] = slora_re_any_text(ps);
                n++;
                id = items[0];
            }

            if (!ends && !ps->whole && id != SLORA_REGEX_NONE) {
                items[n++] = slora_re_any_text(ps);
                id = items[n - 1];
            }
        }
    }

    if (id != SLORA_REGEX_NONE) {
        id = slora_re_cat(ps, items, n);
    }

    free(items);

    return id;
}


/* An anchor at ps->p: SLORA_RE_BEGIN (^, or Python's \\A), SLORA_RE_END
 * ($, or Python's \\Z, both the very end here), or 0; *len its bytes. */
static int
slora_re_anchor(slora_re_parser_t *ps, size_t *len)
{
    if (ps->p == ps->end) {
        return 0;
    }

    *len = 1;

    if (*ps->p == '^' || *ps->p == '$') {
        return *ps->p == '^' ? SLORA_RE_BEGIN : SLORA_RE_END;
    }

    if (*ps->p == '\\' && ps->p + 1 < ps->end
        && (ps->p[1] == 'A' || ps->p[1] == 'Z'))
    {
        *len = 2;
        return ps->p[1] == 'A' ? SLORA_RE_BEGIN : SLORA_RE_END;
    }

    return 0;
}


static uint32_t
slora_re_atom(slora_re_parser_t *ps)
{
    int       rc;
    uint32_t  from, cp, min, max;

    switch (*ps->p) {

    case '(':
        return slora_re_group(ps);

    case '[':
        ps->p++;
        return slora_re_class(ps);

    case '.':
        ps->p++;
        from = ps->t->n_ranges;

        if (slora_re_add_set(ps, slora_re_eol, slora_re_n(slora_re_eol), 1)
            != SLORA_OK)
        {
            return SLORA_REGEX_NONE;
        }

        return slora_re_set_end(ps, from, 0);

    case '*':
    case '+':
    case '?':
        return slora_re_fail(ps, "a quantifier with nothing to repeat");

    case '{':
        rc = slora_re_braces(ps, &min, &max);

        if (rc == SLORA_OK) {
            return slora_re_fail(ps, "a quantifier with nothing to repeat");
        }

        if (rc == SLORA_ERROR) {
            return SLORA_REGEX_NONE;
        }

        break;                          /* a literal '{' */

    default:
        break;
    }

    from = ps->t->n_ranges;

    if (ps->calls && *ps->p == '\\' && ps->end - ps->p >= 2
        && ps->p[1] == 'R')
    {
        /* a grammar's call: the byte as it is, no set of characters */
        ps->p += 2;

        if (slora_re_hex(ps, 2, &cp) != SLORA_OK) {
            return SLORA_REGEX_NONE;
        }

        return slora_re_node(ps, SLORA_RE_BYTE, cp, 0);
    }

    if (*ps->p == '\\') {
        ps->p++;
        rc = slora_re_escape(ps, 0, &cp);

    } else {
        rc = slora_re_char(ps, &cp);
    }

    if (rc == SLORA_ERROR
        || (rc == SLORA_OK && slora_re_add(ps, cp, cp) != SLORA_OK))
    {
        return SLORA_REGEX_NONE;
    }

    return slora_re_set_end(ps, from, 0);
}


/* An atom's quantifier, if one follows: * + ? {n} {n,} {n,m}, each
 * perhaps with a lazy '?' (the same texts match). */
static uint32_t
slora_re_quantify(slora_re_parser_t *ps, uint32_t atom)
{
    int                   rc;
    uint32_t              id, min, max, more_min, more_max;
    slora_re_node_t      *n;
    const unsigned char  *at;

    if (ps->p == ps->end) {
        return atom;
    }

    switch (*ps->p) {
    case '*':
        min = 0;
        max = SLORA_REGEX_NONE;
        ps->p++;
        break;
    case '+':
        min = 1;
        max = SLORA_REGEX_NONE;
        ps->p++;
        break;
    case '?':
        min = 0;
        max = 1;
        ps->p++;
        break;
    case '{':
        rc = slora_re_braces(ps, &min, &max);

        if (rc != SLORA_OK) {
            return rc == SLORA_ERROR ? SLORA_REGEX_NONE : atom;
        }
        break;
    default:
        return atom;
    }

    if (ps->p < ps->end && *ps->p == '?') {
        ps->p++;
    }

    rc = SLORA_DECLINED;

    if (ps->p < ps->end && *ps->p == '{') {
        at = ps->p;
        rc = slora_re_braces(ps, &more_min, &more_max);
        ps->p = at;

        if (rc == SLORA_ERROR) {
            return SLORA_REGEX_NONE;
        }
    }

    if (rc == SLORA_OK || (ps->p < ps->end && (*ps->p == '*'
                                               || *ps->p == '+'
                                               || *ps->p == '?')))
    {
        return slora_re_fail(ps, "a quantifier with nothing to repeat");
    }

    id = slora_re_node(ps, SLORA_RE_REPEAT, atom, 0);

    if (id != SLORA_REGEX_NONE) {
        n = &ps->t->nodes[id];
        n->min = min;
        n->max = max;
    }

    return id;
}


/* {n}, {n,} or {n,m} at ps->p: SLORA_OK and past it; SLORA_DECLINED
 * where the brace is no quantifier (a literal '{', as ECMA-262's Annex B
 * reads it), ps->p unmoved; SLORA_ERROR with the error set (a bound
 * too large, or reversed). */
static int
slora_re_braces(slora_re_parser_t *ps, uint32_t *min, uint32_t *max)
{
    uint32_t              *at, v[2];
    const unsigned char   *p;
    int                    k, digits;

    p = ps->p + 1;
    v[0] = 0;
    v[1] = 0;
    k = 0;
    *max = 0;

    for ( ;; ) {
        digits = 0;
        at = &v[k];

        while (p < ps->end && *p >= '0' && *p <= '9') {
            if (*at <= SLORA_REGEX_REPEAT_MAX) {
                *at = *at * 10 + (uint32_t) (*p - '0');
            }

            digits++;
            p++;
        }

        if (p == ps->end || (digits == 0 && (k == 0 || *p != '}'))) {
            return SLORA_DECLINED;
        }

        if (*p == '}') {
            *min = v[0];
            *max = k == 0 ? v[0] : digits ? v[1] : SLORA_REGEX_NONE;
            break;
        }

        if (*p != ',' || k == 1) {
            return SLORA_DECLINED;
        }

        k = 1;
        p++;
    }

    if (*min > SLORA_REGEX_REPEAT_MAX
        || (*max != SLORA_REGEX_NONE && *max > SLORA_REGEX_REPEAT_MAX))
    {
        slora_re_fail(ps, "a repeat count above 1000");
        return SLORA_ERROR;
    }

    if (*max < *min) {
        slora_re_fail(ps, "a quantifier {n,m} with m below n");
        return SLORA_ERROR;
    }

    ps->p = p + 1;

    return SLORA_OK;
}


/* ( alt ), (?: alt ), (?<name> alt ); lookaround refused. */
static uint32_t
slora_re_group(slora_re_parser_t *ps)
{
    unsigned              c;
    uint32_t              id;
    const unsigned char  *name;

    ps->p++;

    if (ps->p < ps->end && *ps->p == '?') {
        ps->p++;

        if (ps->p < ps->end && *ps->p == ':') {
            ps->p++;

        } else if (ps->p < ps->end && (*ps->p == '=' || *ps->p == '!')) {
            return slora_re_fail(ps, "lookahead is not supported");

        } else if (ps->p + 1 < ps->end && *ps->p == '<'
                   && (ps->p[1] == '=' || ps->p[1] == '!'))
        {
            return slora_re_fail(ps, "lookbehind is not supported");

        } else if (ps->p + 1 < ps->end && *ps->p == 'P' && ps->p[1] == '=') {
            return slora_re_fail(ps, "back references are not supported");

        } else if (ps->p < ps->end
                   && (*ps->p == '<'
                       || (*ps->p == 'P' && ps->p + 1 < ps->end
                           && ps->p[1] == '<')))
        {
            /* a name, as ECMA-262 (?<name>) or Python (?P<name>): an
             * identifier (letters, '_', '$', any character beyond
             * ASCII, and digits but first) */
            ps->p += *ps->p == 'P' ? 2 : 1;
            name = ps->p;

            while (ps->p < ps->end && *ps->p != '>') {
                c = *ps->p;

                if (!(c >= 0x80 || c == '_' || c == '$'
                      || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
                      || (ps->p > name && c >= '0' && c <= '9')))
                {
                    return slora_re_fail(ps, "a group's name that is no "
                                         "identifier");
                }

                ps->p++;
            }

            if (ps->p == ps->end) {
                return slora_re_fail(ps, "a group's name without '>'");
            }

            if (ps->p == name) {
                return slora_re_fail(ps, "a group's empty name");
            }

            ps->p++;

        } else {
            return slora_re_fail(ps, "an unknown group '(?'");
        }
    }

    if (++ps->depth > SLORA_RE_DEPTH_MAX) {
        return slora_re_fail(ps, "groups nested more than 64 deep");
    }

    id = slora_re_alt(ps, 0);
    ps->depth--;

    if (id == SLORA_REGEX_NONE) {
        return SLORA_REGEX_NONE;
    }

    if (ps->p == ps->end) {
        return slora_re_fail(ps, "a '(' without its ')'");
    }

    ps->p++;

    return id;
}


/* A class's character, escaped or not (slora_re_escape's codes). */
static int
slora_re_class_char(slora_re_parser_t *ps, uint32_t *cp)
{
    if (*ps->p == '\\') {
        ps->p++;
        return slora_re_escape(ps, 1, cp);
    }

    return slora_re_char(ps, cp);
}


/* [...] or [^...] after the '[': characters, ranges and class escapes. */
static uint32_t
slora_re_class(slora_re_parser_t *ps)
{
    int       negate, rc;
    uint32_t  from, lo, hi;

    from = ps->t->n_ranges;
    negate = ps->p < ps->end && *ps->p == '^';
    ps->p += negate;

    for ( ;; ) {
        if (ps->p == ps->end) {
            return slora_re_fail(ps, "a '[' without its ']'");
        }

        if (*ps->p == ']') {
            ps->p++;
            break;
        }

        rc = slora_re_class_char(ps, &lo);

        if (rc == SLORA_ERROR) {
            return SLORA_REGEX_NONE;
        }

        /* a range, unless the '-' is last */
        if (ps->p + 1 < ps->end && *ps->p == '-' && ps->p[1] != ']') {
            ps->p++;
            rc = rc == SLORA_OK ? slora_re_class_char(ps, &hi)
                                : SLORA_DECLINED;

            if (rc == SLORA_ERROR) {
                return SLORA_REGEX_NONE;
            }

            if (rc != SLORA_OK) {
                return slora_re_fail(ps, "a class range with a class "
                                     "escape (\\d, \\w, \\s) at an end");
            }

            if (hi < lo) {
                return slora_re_fail(ps, "a class range out of order");
            }

            if (slora_re_add(ps, lo, hi) != SLORA_OK) {
                return SLORA_REGEX_NONE;
            }

            continue;
        }

        if (rc == SLORA_OK && slora_re_add(ps, lo, lo) != SLORA_OK) {
            return SLORA_REGEX_NONE;
        }
    }

    return slora_re_set_end(ps, from, negate);
}


/* After a '\': SLORA_OK with one code point in *cp; SLORA_DECLINED when
 * it was a class escape, whose set has been added; SLORA_ERROR. */
static int
slora_re_escape(slora_re_parser_t *ps, int in_class, uint32_t *cp)
{
    unsigned  c;

    if (ps->p == ps->end) {
        slora_re_fail(ps, "a '\\' at the end");
        return SLORA_ERROR;
    }

    c = *ps->p++;

    switch (c) {

    case 'd':
    case 'D':
        return slora_re_add_set(ps, slora_re_digit, slora_re_n(slora_re_digit),
                                c == 'D') == SLORA_OK ? SLORA_DECLINED
                                                      : SLORA_ERROR;
    case 'w':
    case 'W':
        return slora_re_add_set(ps, slora_re_word, slora_re_n(slora_re_word),
                                c == 'W') == SLORA_OK ? SLORA_DECLINED
                                                      : SLORA_ERROR;
    case 's':
    case 'S':
        return slora_re_add_set(ps, slora_re_space, slora_re_n(slora_re_space),
                                c == 'S') == SLORA_OK ? SLORA_DECLINED
                                                      : SLORA_ERROR;
    case 't':
        *cp = '\t';
        return SLORA_OK;
    case 'n':
        *cp = '\n';
        return SLORA_OK;
    case 'v':
        *cp = '\v';
        return SLORA_OK;
    case 'f':
        *cp = '\f';
        return SLORA_OK;
    case 'r':
        *cp = '\r';
        return SLORA_OK;

    case 'b':
        if (in_class) {
            *cp = '\b';
            return SLORA_OK;
        }
        /* fall through */
    case 'B':
        slora_re_fail(ps, "word boundaries (\\b, \\B) are not supported");
        return SLORA_ERROR;

    case '0':
        if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            slora_re_fail(ps, "octal escapes are not supported");
            return SLORA_ERROR;
        }

        *cp = 0;
        return SLORA_OK;

    case 'x':
        return slora_re_hex(ps, 2, cp);

    case 'u':
        if (ps->p < ps->end && *ps->p == '{') {
            ps->p++;

            if (slora_re_hex(ps, -1, cp) != SLORA_OK) {
                return SLORA_ERROR;
            }

            if (ps->p == ps->end || *ps->p != '}') {
                slora_re_fail(ps, "a \\u{...} escape without its '}'");
                return SLORA_ERROR;
            }

            ps->p++;
            return SLORA_OK;
        }

        if (slora_re_hex(ps, 4, cp) != SLORA_OK) {
            return SLORA_ERROR;
        }

        /* a surrogate pair written as two escapes is one code point */
        if (*cp >= 0xd800 && *cp <= 0xdbff && ps->end - ps->p >= 6
            && ps->p[0] == '\\' && ps->p[1] == 'u')
        {
            const unsigned char  *at = ps->p;
            uint32_t              low;

            ps->p += 2;

            if (slora_re_hex(ps, 4, &low) == SLORA_OK
                && low >= 0xdc00 && low <= 0xdfff)
            {
                *cp = 0x10000 + ((*cp - 0xd800) << 10) + (low - 0xdc00);

            } else {
                ps->p = at;
            }
        }

        return SLORA_OK;

    case 'c':
        if (ps->p < ps->end && ((*ps->p | 0x20) >= 'a'
                                && (*ps->p | 0x20) <= 'z'))
        {
            *cp = *ps->p++ % 32;
            return SLORA_OK;
        }

        slora_re_fail(ps, "a \\c escape without a letter");
        return SLORA_ERROR;

    case 'k':
        slora_re_fail(ps, "back references are not supported");
        return SLORA_ERROR;

    case 'p':
    case 'P':
        slora_re_fail(ps, "Unicode property escapes (\\p, \\P) are not "
                      "supported");
        return SLORA_ERROR;

    default:
        break;
    }

    if (c >= '1' && c <= '9') {
        slora_re_fail(ps, "back references are not supported");
        return SLORA_ERROR;
    }

    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
        slora_re_fail(ps, "an unknown escape (a letter after '\\')");
        return SLORA_ERROR;
    }

    ps->p--;

    return slora_re_char(ps, cp);
}


/* n hex digits (-1: one or more, for \u{...}, leading zeros as many as
 * written) into *cp. */
static int
slora_re_hex(slora_re_parser_t *ps, int n, uint32_t *cp)
{
    int       k;
    unsigned  c, d;

    *cp = 0;

    for (k = 0; n < 0 || k < n; k++) {
        if (ps->p == ps->end) {
            break;
        }

        c = *ps->p;

        if (c >= '0' && c <= '9') {
            d = c - '0';

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            d = (c | 0x20) - 'a' + 10;

        } else {
            break;
        }

        if (*cp <= SLORA_RE_CODE_MAX) {     /* above stays above */
            *cp = *cp << 4 | d;
        }

        ps->p++;
    }

    if ((n < 0 && k == 0) || (n > 0 && k < n) || *cp > SLORA_RE_CODE_MAX) {
        slora_re_fail(ps, "a malformed hex escape");
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/* One UTF-8 character of the pattern as it is (its bytes checked by
 * the tokenizer's slora_utf8_valid). */
static int
slora_re_char(slora_re_parser_t *ps, uint32_t *cp)
{
    size_t  n, k;

    n = slora_utf8_valid(ps->p, (size_t) (ps->end - ps->p));

    if (n == 0) {
        slora_re_fail(ps, "text that is not UTF-8");
        return SLORA_ERROR;
    }

    *cp = n == 1 ? ps->p[0] : ps->p[0] & (0x7f >> n);

    for (k = 1; k < n; k++) {
        *cp = *cp << 6 | (ps->p[k] & 0x3f);
    }

    ps->p += n;

    return SLORA_OK;
}


/* Adds set[0..n) to the set being read, or its complement. */
static int
slora_re_add_set(slora_re_parser_t *ps, const slora_re_range_t *set,
    size_t n, int negate)
{
    size_t    k;
    uint32_t  next;

    if (!negate) {
        for (k = 0; k < n; k++) {
            if (slora_re_add(ps, set[k].lo, set[k].hi) != SLORA_OK) {
                return SLORA_ERROR;
            }
        }

        return SLORA_OK;
    }

    next = 0;

    for (k = 0; k < n; k++) {
        if (set[k].lo > next
            && slora_re_add(ps, next, set[k].lo - 1) != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        next = set[k].hi + 1;
    }

    return next > SLORA_RE_CODE_MAX ? SLORA_OK
           : slora_re_add(ps, next, SLORA_RE_CODE_MAX);
}


static int
slora_re_add(slora_re_parser_t *ps, uint32_t lo, uint32_t hi)
{
    slora_re_tree_t  *t = ps->t;

    if (slora_re_grow(ps, (void **) &t->ranges, &t->cap_ranges,
                      t->n_ranges + 1, sizeof(slora_re_range_t),
                      SLORA_RE_RANGES_MAX) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    t->ranges[t->n_ranges].lo = lo;
    t->ranges[t->n_ranges].hi = hi;
    t->n_ranges++;

    return SLORA_OK;
}


/* The ranges added since from, sorted and merged (complemented where
 * negate), as a SET node. */
static uint32_t
slora_re_set_end(slora_re_parser_t *ps, uint32_t from, int negate)
{
    uint32_t           k, n, count;
    slora_re_range_t  *r, *tmp;

    count = ps->t->n_ranges - from;
    n = 0;

    if (count > 0) {            /* (an empty class has no ranges at all) */
        r = ps->t->ranges + from;

        qsort(r, count, sizeof(slora_re_range_t), slora_re_range_cmp);

        for (k = 0; k < count; k++) {
            if (n > 0 && r[k].lo <= r[n - 1].hi + 1) {
                if (r[k].hi > r[n - 1].hi) {
                    r[n - 1].hi = r[k].hi;
                }

                continue;
            }

            r[n++] = r[k];
        }
    }

    ps->t->n_ranges = from + n;

    if (negate) {
        tmp = malloc((n + 1) * sizeof(slora_re_range_t));

        if (tmp == NULL) {
            return slora_re_fail(ps, "out of memory");
        }

        if (n > 0) {
            memcpy(tmp, ps->t->ranges + from, n * sizeof(slora_re_range_t));
        }

        ps->t->n_ranges = from;

        if (slora_re_add_set(ps, tmp, n, 1) != SLORA_OK) {
            free(tmp);
            return SLORA_REGEX_NONE;
        }

        free(tmp);
        n = ps->t->n_ranges - from;
    }

    return slora_re_node(ps, SLORA_RE_SET, from, n);
}


static int
slora_re_range_cmp(const void *a, const void *b)
{
    const slora_re_range_t  *x = a, *y = b;

    return x->lo < y->lo ? -1 : x->lo > y->lo;
}


/* Any text: any code point, any number of times. */
static uint32_t
slora_re_any_text(slora_re_parser_t *ps)
{
    uint32_t  from, set, id;

    from = ps->t->n_ranges;

    if (slora_re_add(ps, 0, SLORA_RE_CODE_MAX) != SLORA_OK) {
        return SLORA_REGEX_NONE;
    }

    set = slora_re_set_end(ps, from, 0);

    if (set == SLORA_REGEX_NONE) {
        return SLORA_REGEX_NONE;
    }

    id = slora_re_node(ps, SLORA_RE_REPEAT, set, 0);

    if (id != SLORA_REGEX_NONE) {
        ps->t->nodes[id].min = 0;
        ps->t->nodes[id].max = SLORA_REGEX_NONE;
    }

    return id;
}


static uint32_t
slora_re_node(slora_re_parser_t *ps, uint32_t kind, uint32_t a, uint32_t n)
{
    slora_re_tree_t  *t = ps->t;
    slora_re_node_t  *node;

    if (slora_re_grow(ps, (void **) &t->nodes, &t->cap_nodes,
                      t->n_nodes + 1, sizeof(slora_re_node_t),
                      SLORA_RE_NODES_MAX) != SLORA_OK)
    {
        return SLORA_REGEX_NONE;
    }

    node = &t->nodes[t->n_nodes];
    node->kind = kind;
    node->a = a;
    node->n = n;
    node->min = 0;
    node->max = 0;

    return t->n_nodes++;
}


/* items[0..n) one after another: the empty text, the one, or a CAT. */
static uint32_t
slora_re_cat(slora_re_parser_t *ps, const uint32_t *items, uint32_t n)
{
    uint32_t          id;
    slora_re_tree_t  *t = ps->t;

    if (n == 0) {
        return slora_re_node(ps, SLORA_RE_EMPTY, 0, 0);
    }

    if (n == 1) {
        return items[0];
    }

    if (slora_re_grow(ps, (void **) &t->kids, &t->cap_kids, t->n_kids + n,
                      sizeof(uint32_t), UINT32_MAX) != SLORA_OK)
    {
        return SLORA_REGEX_NONE;
    }

    memcpy(t->kids + t->n_kids, items, n * sizeof(uint32_t));
    id = slora_re_node(ps, SLORA_RE_CAT, t->n_kids, n);
    t->n_kids += n;

    return id;
}


static int
slora_re_grow(slora_re_parser_t *ps, void **p, uint32_t *cap, uint32_t need,
    size_t size, uint32_t limit)
{
    void      *more;
    uint32_t   n;

    if (need <= *cap) {
        return SLORA_OK;
    }

    if (need > limit) {
        slora_re_fail(ps, "a pattern too large");
        return SLORA_ERROR;
    }

    n = *cap ? *cap : 16;

    while (n < need) {
        n *= 2;
    }

    more = realloc(*p, (size_t) n * size);

    if (more == NULL) {
        slora_re_fail(ps, "out of memory");
        return SLORA_ERROR;
    }

    *p = more;
    *cap = n;

    return SLORA_OK;
}


static uint32_t
slora_re_fail(slora_re_parser_t *ps, const char *what)
{
    slora_err_set(ps->err, SLORA_ERROR, "%s at byte %ld",
                  what, (long) (ps->p - ps->start));

    return SLORA_REGEX_NONE;
}
