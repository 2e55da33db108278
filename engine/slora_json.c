/*
 * slora_json.c: the automaton of constrained JSON output (slora_json.h):
 * one byte at a time, whether the text so far can still become an
 * object the schema admits, and whether it is one.
 *
 * The one idea: the open values are a stack of frames, each naming its
 * schema node; a container's frame knows what may come next in it (a
 * key, the colon, a value, a comma or the closer), a scalar's how far
 * its text has gone, and the byte-level details of strings and numbers
 * (escapes, UTF-8 sequences, a number's part) live once beside the
 * stack, since only the innermost value is ever being lexed. A value
 * starts in its container's frame, which moves on to "after a value"
 * before the value's frame is pushed, so that popping a finished value
 * leaves the container ready for what follows. Numbers (and literals
 * such as 1 beside 12) have no end of their own: the byte after them is
 * taken again by their container. A string with a pattern hands its
 * text's bytes (an escape's as the character it stands for) to the
 * pattern's automaton, whose state its frame keeps; a raw root of that
 * kind is guided_regex's whole answer. A structural tag's root frames
 * its value between a begin text, chosen by its bytes as a literal is,
 * and that begin's end text, which the value's container takes as it
 * would take its closer.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json_lex.h"


/* What may come next in a container. */
enum {
    SLORA_JSON_P_FIRST = 0,     /* after the opener: a member or the
                                   closer */
    SLORA_JSON_P_QUOTE,         /* after ',' in an object: a key's '"' */
    SLORA_JSON_P_KEY,           /* in a declared key (OBJECT) */
    SLORA_JSON_P_COLON,         /* after a key */
    SLORA_JSON_P_VALUE,         /* after ':', or ',' in an array */
    SLORA_JSON_P_AFTER          /* after a member: ',' or the closer */
};


const slora_json_node_t  slora_json_builtin_nodes[SLORA_JSON_N_BUILTIN] = {
    { .kind = SLORA_JSON_K_MAP, .first = SLORA_JSON_N_ANY,
      .max = SLORA_JSON_NONE, .height = 1 },
    { .kind = SLORA_JSON_K_ANY, .max = SLORA_JSON_NONE },
    { .kind = SLORA_JSON_K_ARRAY, .first = SLORA_JSON_N_ANY,
      .max = SLORA_JSON_NONE, .height = 1 },
    { .kind = SLORA_JSON_K_STRING, .max = SLORA_JSON_NONE },
    { .kind = SLORA_JSON_K_LITERAL, .n = 3, .max = SLORA_JSON_NONE },
    { .kind = SLORA_JSON_K_NUMBER, .max = SLORA_JSON_NONE },
};

const slora_json_text_t  slora_json_builtin_texts[SLORA_JSON_TEXTS_BUILTIN]
    = { { 0, 4 }, { 4, 5 }, { 9, 4 } };

const slora_json_schema_t  slora_json_any_object = {
    .nodes = slora_json_builtin_nodes,
    .texts = slora_json_builtin_texts,
    .bytes = SLORA_JSON_BYTES_BUILTIN,
    .n_nodes = SLORA_JSON_N_BUILTIN,
    .root = SLORA_JSON_N_ANY_OBJECT
};


/* A string's short escapes after the '\\', and the characters they
 * stand for, in the same order. */
static const char  slora_json_escapes[] = "\"\\/bfnrt";
static const char  slora_json_unescaped[] = "\"\\/\b\f\n\r\t";


static int slora_json_byte(slora_json_t *j, unsigned c);
static int slora_json_space(slora_json_t *j, unsigned c);
static int slora_json_begins(const slora_json_schema_t *s, uint32_t id,
    unsigned c);
static int slora_json_start(slora_json_t *j, uint32_t id, unsigned c);
static int slora_json_object(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c);
static int slora_json_key(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c);
static int slora_json_tagged(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c);
static void slora_json_tag(slora_json_t *j, const slora_json_frame_t *lit,
    slora_json_frame_t *up);
static uint64_t slora_json_keys(const slora_json_t *j,
    const slora_json_node_t *n, uint32_t from);
static int slora_json_fits(const slora_json_t *j, uint32_t id);
static int slora_json_may_close(const slora_json_schema_t *s,
    const slora_json_node_t *n, uint32_t from);
static int slora_json_map(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c);
static int slora_json_array(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c);
static int slora_json_literal(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c);
static int slora_json_framed(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c);
static void slora_json_framed_begun(const slora_json_t *j,
    slora_json_frame_t *f, const slora_json_node_t *n);
static uint64_t slora_json_texts_narrow(const slora_json_schema_t *s,
    uint32_t first, uint32_t stride, uint32_t n, uint64_t cand, uint32_t a,
    unsigned c, int *over);
static int slora_json_literal_over(const slora_json_t *j,
    const slora_json_frame_t *f, const slora_json_node_t *n);
static int slora_json_string(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c);
static int slora_json_escape_digit(slora_json_t *j, unsigned c);
static int slora_json_pattern(slora_json_t *j, slora_json_frame_t *f,
    const slora_regex_t *r, unsigned c);
static int slora_json_pattern_takes(const slora_json_frame_t *f,
    const slora_regex_t *r, unsigned c);
static int slora_json_pattern_take(slora_json_frame_t *f,
    const slora_regex_t *r, unsigned c);
static slora_json_frame_t *slora_json_push(slora_json_t *j, uint32_t id,
    int container);
static void slora_json_pop(slora_json_t *j);


void
slora_json_init(slora_json_t *j, const slora_json_schema_t *s)
{
    memset(j, 0, offsetof(slora_json_t, frames));
    j->schema = s != NULL ? s : &slora_json_any_object;
}


static inline int
slora_json_text_state(const slora_json_t *j)
{
    const slora_json_node_t  *n;

    if (j->depth == 0 || j->part != SLORA_JSON_E_NONE || j->utf8 != 0
        || j->hex != 0)
    {
        return 0;
    }

    n = &j->schema->nodes[j->frames[j->depth - 1].node];

    return n->kind == SLORA_JSON_K_STRING && n->max == SLORA_JSON_NONE
           && n->n == 0;
}


int
slora_json_in_text(const slora_json_t *j)
{
    return slora_json_text_state(j);
}


int64_t
slora_json_text_room(const slora_json_t *j)
{
    const slora_json_node_t   *n;
    const slora_json_frame_t  *f;

    if (j->depth == 0 || j->part != SLORA_JSON_E_NONE || j->utf8 != 0
        || j->hex != 0)
    {
        return -1;
    }

    f = &j->frames[j->depth - 1];
    n = &j->schema->nodes[f->node];

    if (n->kind != SLORA_JSON_K_STRING || n->n != 0) {
        return -1;
    }

    return n->max == SLORA_JSON_NONE ? INT64_MAX
                                     : (int64_t) n->max - (int64_t) f->a;
}


const slora_regex_t *
slora_json_in_pattern(const slora_json_t *j, uint32_t *state,
    uint32_t *chars, int *raw)
{
    const slora_json_node_t   *n;
    const slora_json_frame_t  *f;

    if (j->depth == 0 || j->part != SLORA_JSON_E_NONE) {
        return NULL;
    }

    f = &j->frames[j->depth - 1];
    n = &j->schema->nodes[f->node];

    if (n->kind != SLORA_JSON_K_STRING || n->n == 0) {
        return NULL;
    }

    *state = (uint32_t) f->cand;
    *chars = f->a;
    *raw = (int) j->schema->raw;

    return slora_json_regex(j->schema, n);
}


int
slora_json_feed(slora_json_t *j, const char *p, size_t n)
{
    size_t    i, from;
    unsigned  c;

    for (i = 0; i < n; i++) {
        /* a string's plain ASCII text, in one sweep: it only counts */
        if (slora_json_text_state(j)) {
            from = i;

            for ( /* void */ ; i < n; i++) {
                c = (unsigned char) p[i];

                if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
                    break;
                }
            }

            j->frames[j->depth - 1].a += (uint32_t) (i - from);

            if (i == n) {
                break;
            }
        }

        if (!slora_json_byte(j, (unsigned char) p[i])) {
            return 0;
        }
    }

    return 1;
}


int
slora_json_done(const slora_json_t *j)
{
    return j->done;
}


int
slora_json_may_end(const slora_json_t *j)
{
    const slora_json_node_t   *n;
    const slora_json_frame_t  *f;

    if (!j->schema->raw || j->done) {
        return 0;
    }

    n = &j->schema->nodes[j->schema->root];

    if (n->kind == SLORA_JSON_K_GRAMMAR) {
        return slora_json_grammar_may_end(j);
    }

    if (n->kind != SLORA_JSON_K_STRING || n->n == 0) {
        return 0;
    }

    f = &j->frames[0];

    return j->depth == 0
           ? slora_regex_accepts(slora_json_regex(j->schema, n), 0, 0)
           : slora_regex_accepts(slora_json_regex(j->schema, n),
                                 (uint32_t) f->cand, f->a);
}


static int
slora_json_byte(slora_json_t *j, unsigned c)
{
    int                       rc;
    slora_json_frame_t       *f;
    const slora_json_node_t  *n;

    for ( ;; ) {
        if (j->depth == 0) {
            if (j->done) {
                return 0;
            }

            if (slora_json_blank(c)
                && !j->schema->raw
                && j->schema->nodes[j->schema->root].kind
                   != SLORA_JSON_K_FRAMED)
            {
                return slora_json_space(j, c);
            }

            j->spaces = 0;
            j->lines = 0;

            return slora_json_start(j, j->schema->root, c);
        }

        f = &j->frames[j->depth - 1];
        n = &j->schema->nodes[f->node];

        switch (n->kind) {

        case SLORA_JSON_K_STRING:
            return slora_json_string(j, f, n, c);

        case SLORA_JSON_K_NUMBER:
        case SLORA_JSON_K_INTEGER:
            rc = slora_json_number(j, n->kind == SLORA_JSON_K_INTEGER, c);

            if (n->bounded && rc != 0) {
                rc = n->kind == SLORA_JSON_K_INTEGER
                     ? slora_json_bounded(f, n, c, rc)
                     : slora_json_fbounded(f, n, c, rc);
            }

            break;

        case SLORA_JSON_K_LITERAL:
            rc = slora_json_literal(j, f, n, c);
            break;

        case SLORA_JSON_K_GRAMMAR:
            return slora_json_grammar_byte(j, c);

        case SLORA_JSON_K_FRAMED:
            return slora_json_framed(j, f, n, c);

        default:
            if (f->phase == SLORA_JSON_P_KEY) {
                return n->kind == SLORA_JSON_K_TAGGED
                       ? slora_json_tagged(j, f, n, c)
                       : slora_json_key(j, f, n, c);
            }

            if (slora_json_blank(c)) {
                return slora_json_space(j, c);
            }

            j->spaces = 0;
            j->lines = 0;

            return n->kind == SLORA_JSON_K_OBJECT
                       ? slora_json_object(j, f, n, c)
                   : n->kind == SLORA_JSON_K_MAP
                       ? slora_json_map(j, f, n, c)
                   : n->kind == SLORA_JSON_K_TAGGED
                       ? slora_json_tagged(j, f, n, c)
                       : slora_json_array(j, f, n, c);
        }

        if (rc != SLORA_JSON_AGAIN) {
            return rc;
        }

        /* the value ended before c: its container takes c */
        slora_json_pop(j);
    }
}


/* A blank between tokens: one before a line break (a space, a tab, the
 * '\r' of "\r\n"), one line break, after it an indent of at most
 * SLORA_JSON_INDENT a level open and one more, and never more than the
 * count holds (255: 63 levels and more open). */
static int
slora_json_space(slora_json_t *j, unsigned c)
{
    uint32_t  most;

    if (j->compact) {
        return 0;
    }

    if (c == '\n') {
        if (j->lines) {
            return 0;
        }

        j->lines = 1;
        j->spaces = 0;
        return 1;
    }

    most = j->lines ? SLORA_JSON_INDENT * (j->depth + 1) : 1;

    if (j->spaces >= (most < UINT8_MAX ? most : UINT8_MAX)) {
        return 0;
    }

    j->spaces++;

    return 1;
}


/* 1 when a value of node id may begin with byte c. */
static int
slora_json_begins(const slora_json_schema_t *s, uint32_t id, unsigned c)
{
    uint32_t                  k;
    const slora_json_text_t  *t;
    const slora_json_node_t  *n;

    n = &s->nodes[id];

    switch (n->kind) {

    case SLORA_JSON_K_ANY:
        return c == '{' || c == '[' || c == '"' || c == '-'
               || (c >= '0' && c <= '9') || c == 't' || c == 'f'
               || c == 'n';

    case SLORA_JSON_K_OBJECT:
    case SLORA_JSON_K_MAP:
    case SLORA_JSON_K_TAGGED:
        return c == '{';

    case SLORA_JSON_K_ARRAY:
        return c == '[';

    case SLORA_JSON_K_STRING:
        return c == '"';

    case SLORA_JSON_K_NUMBER:
    case SLORA_JSON_K_INTEGER:
        return c == '-' || (c >= '0' && c <= '9');

    case SLORA_JSON_K_LITERAL:
    case SLORA_JSON_K_FRAMED:
        /* a literal's texts, or a framed value's begin texts */
        for (k = 0; k < n->n; k++) {
            t = &s->texts[n->first
                          + (n->kind == SLORA_JSON_K_FRAMED ? 2 * k : k)];

            if ((unsigned char) s->bytes[t->off] == c) {
                return 1;
            }
        }

        return 0;

    default:            /* UNION: its alternatives are no unions */
        for (k = 0; k < n->n; k++) {
            if (slora_json_begins(s, s->alts[n->first + k], c)) {
                return 1;
            }
        }

        return 0;
    }
}


/* The first byte c (not a blank) of a value of node id. */
static int
slora_json_start(slora_json_t *j, uint32_t id, unsigned c)
{
    uint32_t                    k;
    uint64_t                    cand;
    slora_json_frame_t         *f;
    const slora_json_text_t    *t;
    const slora_json_node_t    *n;
    const slora_json_schema_t  *s;

    s = j->schema;
    n = &s->nodes[id];

    switch (n->kind) {

    case SLORA_JSON_K_ANY:
        id = c == '{' ? SLORA_JSON_N_ANY_OBJECT
             : c == '[' ? SLORA_JSON_N_ANY_ARRAY
             : c == '"' ? SLORA_JSON_N_ANY_STRING
             : (c == 't' || c == 'f' || c == 'n')
               ? SLORA_JSON_N_TRUE_FALSE_NULL
             : SLORA_JSON_N_ANY_NUMBER;

        return slora_json_start(j, id, c);

    case SLORA_JSON_K_GRAMMAR:
        return slora_json_grammar_start(j, id, c);

    case SLORA_JSON_K_FRAMED:
        cand = 0;

        for (k = 0; k < n->n; k++) {
            t = &s->texts[n->first + 2 * k];

            if ((unsigned char) s->bytes[t->off] == c) {
                cand |= (uint64_t) 1 << k;
            }
        }

        if (cand == 0 || !slora_json_fits(j, id)) {
            return 0;
        }

        f = slora_json_push(j, id, 1);
        if (f == NULL) {
            return 0;
        }

        f->phase = SLORA_JSON_P_KEY;
        f->a = 1;
        f->cand = cand;
        slora_json_framed_begun(j, f, n);

        return 1;

    case SLORA_JSON_K_UNION:
        for (k = 0; k < n->n; k++) {
            if (slora_json_begins(s, s->alts[n->first + k], c)) {
                return slora_json_start(j, s->alts[n->first + k], c);
            }
        }

        return 0;

    case SLORA_JSON_K_OBJECT:
    case SLORA_JSON_K_MAP:
    case SLORA_JSON_K_TAGGED:
    case SLORA_JSON_K_ARRAY:
        if (c != (n->kind == SLORA_JSON_K_ARRAY ? '[' : '{')
            || !slora_json_fits(j, id))
        {
            return 0;
        }

        return slora_json_push(j, id, 1) != NULL;

    case SLORA_JSON_K_STRING:
        if (s->raw) {
            /* guided_regex: no quotes, the first byte is the text's */
            f = slora_json_push(j, id, 0);
            j->part = SLORA_JSON_E_NONE;

            return f != NULL && slora_json_string(j, f, n, c);
        }

        if (c != '"' || slora_json_push(j, id, 0) == NULL) {
            return 0;
        }

        j->part = SLORA_JSON_E_NONE;
        return 1;

    case SLORA_JSON_K_NUMBER:
    case SLORA_JSON_K_INTEGER:
        if (c != '-' && (c < '0' || c > '9')) {
            return 0;
        }

        if (n->bounded
            && !(n->kind == SLORA_JSON_K_INTEGER
                 ? slora_json_reachable(n, c == '-', c == '-' ? 0 : c - '0',
                                        c != '-')
                 : slora_json_freachable(n, c == '-', 0,
                                         c == '-' ? 0 : c - '0',
                                         c != '-', 0)))
        {
            return 0;
        }

        f = slora_json_push(j, id, 0);
        if (f == NULL) {
            return 0;
        }

        /* a bounded number's sign, digits and their value so far: a, b
         * (SLORA_JSON_B_*) and cand */
        f->b = c == '-' ? SLORA_JSON_B_NEG : 0;
        f->a = c != '-';
        f->cand = c == '-' ? 0 : c - '0';

        j->part = c == '-' ? SLORA_JSON_N_MINUS
                  : c == '0' ? SLORA_JSON_N_ZERO : SLORA_JSON_N_INT;
        return 1;

    default:            /* LITERAL */
        cand = 0;

        for (k = 0; k < n->n; k++) {
            t = &s->texts[n->first + k];

            if ((unsigned char) s->bytes[t->off] == c) {
                cand |= (uint64_t) 1 << k;
            }
        }

        if (cand == 0) {
            return 0;
        }

        f = slora_json_push(j, id, 0);
        if (f == NULL) {
            return 0;
        }

        f->a = 1;
        f->cand = cand;

        if (slora_json_literal_over(j, f, n)) {
            slora_json_pop(j);
        }

        return 1;
    }
}


/* An object of declared properties, in order: a (of n) passed, so keys
 * from a up to the first required one may come next. */
static int
slora_json_object(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c)
{
    const slora_json_schema_t  *s;

    s = j->schema;

    switch (f->phase) {

    case SLORA_JSON_P_FIRST:
    case SLORA_JSON_P_AFTER:
        if (c == '}') {
            if (!slora_json_may_close(s, n, f->a)) {
                return 0;
            }

            slora_json_pop(j);
            return 1;
        }

        if (f->phase == SLORA_JSON_P_AFTER) {
            if (c != ',' || slora_json_keys(j, n, f->a) == 0) {
                return 0;
            }

            f->phase = SLORA_JSON_P_QUOTE;
            return 1;
        }

        /* fall through */

    case SLORA_JSON_P_QUOTE:
        if (c != '"') {
            return 0;
        }

        f->cand = slora_json_keys(j, n, f->a);

        if (f->cand == 0) {
            return 0;
        }

        f->phase = SLORA_JSON_P_KEY;
        f->b = 1;
        return 1;

    case SLORA_JSON_P_COLON:
        if (c != ':') {
            return 0;
        }

        f->phase = SLORA_JSON_P_VALUE;
        return 1;

    default:            /* VALUE */
        f->phase = SLORA_JSON_P_AFTER;

        return slora_json_start(j, s->props[n->first + f->a - 1].node, c);
    }
}


/* A declared key's byte: the keys still matched narrow; the one whose
 * closing quote comes is the property (keys are distinct JSON strings,
 * so no other can match that far). */
static int
slora_json_key(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c)
{
    uint32_t                    k;
    uint64_t                    cand;
    const slora_json_text_t    *t;
    const slora_json_schema_t  *s;

    s = j->schema;
    cand = 0;

    for (k = f->a; k < n->n; k++) {
        if (!(f->cand & ((uint64_t) 1 << k))) {
            continue;
        }

        t = &s->props[n->first + k].key;

        if (t->len > f->b && (unsigned char) s->bytes[t->off + f->b] == c) {
            if (t->len == f->b + 1) {
                f->a = k + 1;
                f->phase = SLORA_JSON_P_COLON;
                return 1;
            }

            cand |= (uint64_t) 1 << k;
        }
    }

    if (cand == 0) {
        return 0;
    }

    f->cand = cand;
    f->b++;

    return 1;
}


/*
 * A tagged union's object until its tag is read: the objects' shared
 * first key, then its value, a literal of all their tags; popping that
 * literal (slora_json_tag) turns this frame into the frame of the object
 * whose tag it was, one property passed.
 */
static int
slora_json_tagged(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c)
{
    const slora_json_text_t    *t;
    const slora_json_schema_t  *s;

    s = j->schema;
    t = &s->props[s->nodes[s->alts[n->first]].first].key;

    switch (f->phase) {

    case SLORA_JSON_P_FIRST:
        if (c != '"') {
            return 0;
        }

        f->phase = SLORA_JSON_P_KEY;
        f->b = 1;
        return 1;

    case SLORA_JSON_P_KEY:
        if ((unsigned char) s->bytes[t->off + f->b] != c) {
            return 0;
        }

        if (++f->b == t->len) {
            f->phase = SLORA_JSON_P_COLON;
        }

        return 1;

    case SLORA_JSON_P_COLON:
        if (c != ':') {
            return 0;
        }

        f->phase = SLORA_JSON_P_VALUE;
        return 1;

    case SLORA_JSON_P_VALUE:
        f->phase = SLORA_JSON_P_AFTER;

        return slora_json_start(j, n->min, c);

    default:            /* never: the tag's end made this an object */
        return 0;
    }
}


/* The tag literal lit, whole, picks its tagged union's object: the text
 * that ended where lit did (tags are distinct, so one did). */
static void
slora_json_tag(slora_json_t *j, const slora_json_frame_t *lit,
    slora_json_frame_t *up)
{
    uint32_t                    k;
    const slora_json_node_t    *n, *tags;
    const slora_json_schema_t  *s;

    s = j->schema;
    n = &s->nodes[up->node];
    tags = &s->nodes[n->min];

    for (k = 0; k < tags->n; k++) {
        if ((lit->cand & ((uint64_t) 1 << k))
            && s->texts[tags->first + k].len == lit->a)
        {
            up->node = s->alts[n->first + k];
            up->a = 1;
            return;
        }
    }
}


/* The keys that may come after a properties passed in the innermost
 * open object: up to the first required one, or to the last, but for
 * those whose value would not fit under the depth limit. */
static uint64_t
slora_json_keys(const slora_json_t *j, const slora_json_node_t *n,
    uint32_t from)
{
    uint32_t                   k;
    uint64_t                   cand;
    const slora_json_prop_t   *p;

    cand = 0;

    for (k = from; k < n->n; k++) {
        p = &j->schema->props[n->first + k];

        if (slora_json_fits(j, p->node)) {
            cand |= (uint64_t) 1 << k;
        }

        if (p->required) {
            break;
        }
    }

    return cand;
}


/* 1 when a value of node id, begun after the values open now, can be
 * whole without passing SLORA_JSON_DEPTH_MAX open containers. */
static int
slora_json_fits(const slora_json_t *j, uint32_t id)
{
    return (int64_t) j->schema->nodes[id].height
           <= SLORA_JSON_DEPTH_MAX - (int64_t) j->depth;
}


static int
slora_json_may_close(const slora_json_schema_t *s, const slora_json_node_t *n,
    uint32_t from)
{
    uint32_t  k;

    for (k = from; k < n->n; k++) {
        if (s->props[n->first + k].required) {
            return 0;
        }
    }

    return 1;
}


/* An object of any keys, each value of node n->first. */
static int
slora_json_map(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c)
{
    switch (f->phase) {

    case SLORA_JSON_P_FIRST:
    case SLORA_JSON_P_AFTER:
        if (c == '}') {
            slora_json_pop(j);
            return 1;
        }

        /* a key only where its value fits */
        if (f->phase == SLORA_JSON_P_AFTER) {
            if (c != ',' || !slora_json_fits(j, n->first)) {
                return 0;
            }

            f->phase = SLORA_JSON_P_QUOTE;
            return 1;
        }

        if (!slora_json_fits(j, n->first)) {
            return 0;
        }

        /* fall through */

    case SLORA_JSON_P_QUOTE:
        f->phase = SLORA_JSON_P_COLON;

        return c == '"' && slora_json_start(j, SLORA_JSON_N_ANY_STRING, c);

    case SLORA_JSON_P_COLON:
        if (c != ':') {
            return 0;
        }

        f->phase = SLORA_JSON_P_VALUE;
        return 1;

    default:            /* VALUE */
        f->phase = SLORA_JSON_P_AFTER;

        return slora_json_start(j, n->first, c);
    }
}


/* An array of n->min..n->max items of node n->first; a counts them. */
static int
slora_json_array(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c)
{
    switch (f->phase) {

    case SLORA_JSON_P_FIRST:
    case SLORA_JSON_P_AFTER:
        if (c == ']') {
            if (f->a < n->min) {
                return 0;
            }

            slora_json_pop(j);
            return 1;
        }

        if (f->phase == SLORA_JSON_P_AFTER) {
            if (c != ',' || f->a == n->max) {
                return 0;
            }

            f->phase = SLORA_JSON_P_VALUE;
            return 1;
        }

        if (n->max == 0) {
            return 0;
        }

        /* fall through */

    default:            /* VALUE */
        f->phase = SLORA_JSON_P_AFTER;
        f->a++;

        return slora_json_start(j, n->first, c);
    }
}


/* A byte of one of some literal texts, a bytes in. */
static int
slora_json_literal(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c)
{
    int       over;
    uint64_t  cand;

    cand = slora_json_texts_narrow(j->schema, n->first, 1, n->n, f->cand,
                                   f->a, c, &over);

    if (cand == 0) {
        /* a text that ended here ends the value: c follows it */
        return over ? SLORA_JSON_AGAIN : 0;
    }

    f->cand = cand;
    f->a++;

    if (slora_json_literal_over(j, f, n)) {
        slora_json_pop(j);
    }

    return 1;
}


/* Of n texts (texts[first + stride * k]), the candidates cand that have
 * byte c after their first a: the candidates left; *over 1 when one of
 * cand ended after a bytes. */
static uint64_t
slora_json_texts_narrow(const slora_json_schema_t *s, uint32_t first,
    uint32_t stride, uint32_t n, uint64_t cand, uint32_t a, unsigned c,
    int *over)
{
    uint32_t                  k;
    uint64_t                  left;
    const slora_json_text_t  *t;

    left = 0;
    *over = 0;

    for (k = 0; k < n; k++) {
        if (!(cand & ((uint64_t) 1 << k))) {
            continue;
        }

        t = &s->texts[first + stride * k];

        if (t->len == a) {
            *over = 1;

        } else if ((unsigned char) s->bytes[t->off + a] == c) {
            left |= (uint64_t) 1 << k;
        }
    }

    return left;
}


/* 1 when every text still matched has ended: the value is whole. */
static int
slora_json_literal_over(const slora_json_t *j, const slora_json_frame_t *f,
    const slora_json_node_t *n)
{
    uint32_t  k;

    for (k = 0; k < n->n; k++) {
        if ((f->cand & ((uint64_t) 1 << k))
            && j->schema->texts[n->first + k].len > f->a)
        {
            return 0;
        }
    }

    return 1;
}


/*
 * A framed value's byte: in its begin text (phase KEY: cand the begin
 * texts still matched, a bytes in), before its value (VALUE: blanks,
 * then the value of the begin's node, b its index), or after it
 * (AFTER: blanks, unless the end text begins with one, then the end
 * text, a bytes in; its last byte ends the frame).
 */
static int
slora_json_framed(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c)
{
    int                         blank, over;
    unsigned                    e;
    uint64_t                    cand;
    const slora_json_text_t    *t;
    const slora_json_schema_t  *s;

    s = j->schema;

    if (f->phase == SLORA_JSON_P_KEY) {
        /* the begin texts, every other one of the node's texts */
        cand = slora_json_texts_narrow(s, n->first, 2, n->n, f->cand, f->a,
                                       c, &over);

        if (cand == 0) {
            return 0;
        }

        f->cand = cand;
        f->a++;
        slora_json_framed_begun(j, f, n);

        return 1;
    }

    blank = slora_json_blank(c);

    if (f->phase == SLORA_JSON_P_VALUE) {
        if (blank) {
            return slora_json_space(j, c);
        }

        j->spaces = 0;
        j->lines = 0;
        f->phase = SLORA_JSON_P_AFTER;
        f->a = 0;

        return slora_json_start(j, s->alts[n->min + f->b], c);
    }

    t = &s->texts[n->first + 2 * f->b + 1];
    e = (unsigned char) s->bytes[t->off + f->a];

    /* blanks before an end text that does not begin with one */
    if (blank && f->a == 0 && !slora_json_blank(e)) {
        return slora_json_space(j, c);
    }

    if (e != c) {
        return 0;
    }

    j->spaces = 0;
    j->lines = 0;

    if (++f->a == t->len) {
        slora_json_pop(j);
    }

    return 1;
}


/* A begin text whole after f->a bytes: its value comes next (none is
 * the start of another, so it is the one candidate left). */
static void
slora_json_framed_begun(const slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n)
{
    uint32_t  k;

    for (k = 0; k < n->n; k++) {
        if ((f->cand & ((uint64_t) 1 << k))
            && j->schema->texts[n->first + 2 * k].len == f->a)
        {
            f->phase = SLORA_JSON_P_VALUE;
            f->b = k;
            f->a = 0;
            return;
        }
    }
}


/* A string's byte; a counts its characters (a \u escape pair is one). */
static int
slora_json_string(slora_json_t *j, slora_json_frame_t *f,
    const slora_json_node_t *n, unsigned c)
{
    if (n->n) {
        return slora_json_pattern(j, f, slora_json_regex(j->schema, n), c);
    }

    if (j->utf8) {
        if (c < j->lo || c > j->hi) {
            return 0;
        }

        /* a sequence's first continuation byte has its own range */
        j->utf8--;
        j->lo = j->utf8 ? 0x80 : 0;
        j->hi = j->utf8 ? 0xbf : 0;
        return 1;
    }

    if (j->hex) {
        return slora_json_escape_digit(j, c);
    }

    switch (j->part) {

    case SLORA_JSON_E_BACKSLASH:
        if (c != 'u' && c != '"' && c != '\\' && c != '/' && c != 'b'
            && c != 'f' && c != 'n' && c != 'r' && c != 't')
        {
            return 0;
        }

        j->part = SLORA_JSON_E_NONE;

        if (c == 'u') {
            j->hex = 4;
            j->code = 0;
        }

        return 1;

    case SLORA_JSON_E_LOW_BACKSLASH:
        if (c != '\\') {
            return 0;
        }

        j->part = SLORA_JSON_E_LOW_U;
        return 1;

    case SLORA_JSON_E_LOW_U:
        if (c != 'u') {
            return 0;
        }

        j->part = SLORA_JSON_E_NONE;
        j->hex = 4;
        j->code = 0;
        j->low = 1;
        return 1;

    default:
        break;
    }

    if (c == '"') {
        if (f->a < n->min) {
            return 0;
        }

        slora_json_pop(j);
        return 1;
    }

    if (c < 0x20 || f->a == n->max) {
        return 0;
    }

    if (c == '\\') {
        j->part = SLORA_JSON_E_BACKSLASH;
        f->a++;
        return 1;
    }

    if (c < 0x80) {
        f->a++;
        return 1;
    }

    /* a UTF-8 lead byte, and the range of its first continuation byte
     * (no overlong forms, no surrogates, nothing past U+10FFFF) */
    j->lo = 0x80;
    j->hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        j->utf8 = 1;

    } else if (c >= 0xe0 && c <= 0xef) {
        j->utf8 = 2;
        j->lo = c == 0xe0 ? 0xa0 : 0x80;
        j->hi = c == 0xed ? 0x9f : 0xbf;

    } else if (c >= 0xf0 && c <= 0xf4) {
        j->utf8 = 3;
        j->lo = c == 0xf0 ? 0x90 : 0x80;
        j->hi = c == 0xf4 ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    f->a++;

    return 1;
}


/* A byte of a string with a pattern: its text runs through the
 * pattern's automaton (f->cand its state, f->a its characters), which
 * takes only UTF-8; an escape's character goes in as the one it stands
 * for. Every character is written as itself or with its short escape
 * (\u escapes are not written), so the automaton, which holds only what
 * can be written so, never waits on one. */
static int
slora_json_pattern(slora_json_t *j, slora_json_frame_t *f,
    const slora_regex_t *r, unsigned c)
{
    const char  *e;

    if (j->schema->raw) {
        /* guided_regex's text as it is, done where nothing extends it */
        if (!slora_json_pattern_take(f, r, c)) {
            return 0;
        }

        if (slora_regex_final(r, (uint32_t) f->cand, f->a)) {
            slora_json_pop(j);
        }

        return 1;
    }

    if (j->part == SLORA_JSON_E_BACKSLASH) {
        e = strchr(slora_json_escapes, (int) c);

        if (c == '\0' || e == NULL) {
            return 0;
        }

        j->part = SLORA_JSON_E_NONE;

        return slora_json_pattern_take(f, r, (unsigned char)
                   slora_json_unescaped[e - slora_json_escapes]);
    }

    if (c == '"') {
        if (!slora_regex_accepts(r, (uint32_t) f->cand, f->a)) {
            return 0;
        }

        slora_json_pop(j);
        return 1;
    }

    if (c < 0x20) {
        return 0;
    }

    if (c != '\\') {
        return slora_json_pattern_take(f, r, c);
    }

    /* a backslash only where some escape's character may follow */
    for (e = slora_json_unescaped; *e; e++) {
        if (slora_json_pattern_takes(f, r, (unsigned char) *e)) {
            j->part = SLORA_JSON_E_BACKSLASH;
            return 1;
        }
    }

    return 0;
}


/* 1 when the pattern's automaton may take byte c in frame f. */
static int
slora_json_pattern_takes(const slora_json_frame_t *f,
    const slora_regex_t *r, unsigned c)
{
    uint32_t  s;

    s = slora_regex_next(r, (uint32_t) f->cand, c);

    return s != SLORA_REGEX_DEAD
           && slora_regex_viable(r, s, f->a + slora_regex_lead(c));
}


/* Byte c into the pattern's automaton, if it may take it. */
static int
slora_json_pattern_take(slora_json_frame_t *f, const slora_regex_t *r,
    unsigned c)
{
    if (!slora_json_pattern_takes(f, r, c)) {
        return 0;
    }

    f->cand = slora_regex_next(r, (uint32_t) f->cand, c);
    f->a += (uint32_t) slora_regex_lead(c);

    return 1;
}


/* One hex digit of a \u escape. Each digit must leave some code the
 * escape may name: a low surrogate (DC00-DFFF) where one is due, else
 * anything but one; a high surrogate (D800-DBFF) then asks for a low. */
static int
slora_json_escape_digit(slora_json_t *j, unsigned c)
{
    unsigned  d, code, shift, first, last;

    if (c >= '0' && c <= '9') {
        d = c - '0';

    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
        d = (c | 0x20) - 'a' + 10;

    } else {
        return 0;
    }

    code = ((unsigned) j->code << 4) | d;
    shift = 4 * (j->hex - 1);
    first = code << shift;                  /* the codes still reachable */
    last = first | ((1u << shift) - 1);

    if (j->low ? (last < 0xdc00 || first > 0xdfff)
               : (first >= 0xdc00 && last <= 0xdfff))
    {
        return 0;
    }

    j->code = (uint16_t) code;

    if (--j->hex) {
        return 1;
    }

    j->code = 0;

    if (j->low) {
        j->low = 0;

    } else if (code >= 0xd800 && code <= 0xdbff) {
        j->part = SLORA_JSON_E_LOW_BACKSLASH;
    }

    return 1;
}




static slora_json_frame_t *
slora_json_push(slora_json_t *j, uint32_t id, int container)
{
    slora_json_frame_t  *f;

    if (j->depth == SLORA_JSON_DEPTH_MAX + (container ? 0 : 1)) {
        return NULL;
    }

    f = &j->frames[j->depth++];
    f->node = id;
    f->phase = SLORA_JSON_P_FIRST;
    f->a = 0;
    f->b = 0;
    f->cand = 0;

    return f;
}


static void
slora_json_pop(slora_json_t *j)
{
    slora_json_frame_t  *up;

    j->depth--;
    j->done = j->depth == 0;

    if (j->depth > 0) {
        up = &j->frames[j->depth - 1];

        if (j->schema->nodes[up->node].kind == SLORA_JSON_K_TAGGED) {
            slora_json_tag(j, &j->frames[j->depth], up);
        }
    }
}
