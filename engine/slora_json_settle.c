/*
 * slora_json_settle.c: the JSON schema compiler's second pass
 * (slora_json_build.h): what needed the whole graph.
 *
 * The one idea: references are replaced by their targets (a cycle of
 * references alone admits no value and is refused), and each anyOf is
 * flattened and checked to tell its alternatives apart by their first
 * byte (any value absorbs the others, a number an integer, literals
 * merge, objects that share a first required key whose values are
 * distinct constants become one tagged union), since the automaton must
 * know which alternative a value is from its first byte, or an object
 * from its first member; a oneOf's must admit no value in common besides
 * (a value matching two is not one of them). Last, every node the root
 * reaches must admit a value of finite size (slora_json_finite).
 */

#include <stdlib.h>
#include <string.h>

#include "slora_json_build.h"


static int slora_json_settle_union(slora_json_build_t *b, uint32_t id);
static int slora_json_settle_one_of(slora_json_build_t *b, uint32_t first,
    uint32_t last);
static int slora_json_settle_tagged(slora_json_build_t *b, uint32_t id);
static const slora_json_text_t *slora_json_tag_of(slora_json_build_t *b,
    uint32_t id);
static void slora_json_first_bytes(slora_json_build_t *b, uint32_t id,
    uint64_t set[4]);
static uint32_t slora_json_height(slora_json_build_t *b, uint32_t id,
    const uint32_t *height);
static void slora_json_visit(uint32_t id, uint32_t *stack, uint32_t *top,
    uint8_t *seen);


/* The second pass: every reference to a placeholder goes to its target,
 * then every union is flattened and checked. */
int
slora_json_settle(slora_json_build_t *b)
{
    uint32_t            k;
    slora_json_node_t  *n;

    for (k = 0; k < b->n_props; k++) {
        if (slora_json_resolve(b, &b->props[k].node) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    for (k = 0; k < b->n_alts; k++) {
        if (slora_json_resolve(b, &b->alts[k]) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    for (k = 0; k < b->n_nodes; k++) {
        n = &b->nodes[k];

        if ((n->kind == SLORA_JSON_K_MAP || n->kind == SLORA_JSON_K_ARRAY)
            && slora_json_resolve(b, &n->first) != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    b->settled = calloc(b->n_nodes, 1);
    if (b->settled == NULL) {
        return slora_err_set(b->err, SLORA_ERROR, "out of memory");
    }

    for (k = 0; k < b->n_nodes; k++) {
        if (b->nodes[k].kind == SLORA_JSON_K_UNION
            && slora_json_settle_union(b, k) != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


int
slora_json_resolve(slora_json_build_t *b, uint32_t *id)
{
    uint32_t  steps;

    for (steps = 0; b->nodes[*id].kind == SLORA_JSON_K_REF; steps++) {
        if (steps == b->n_nodes) {
            return slora_err_set(b->err, SLORA_ERROR, "the schema's $refs "
                                 "form a cycle that admits no value");
        }

        *id = b->nodes[*id].first;
    }

    return SLORA_OK;
}


/*
 * A union's alternatives, flattened (a union inside is settled first and
 * its alternatives taken; one that leads back to itself is refused), any
 * value absorbing the rest, a number the integers, the literals merged
 * into one; then no two may begin with the same byte.
 */
static int
slora_json_settle_union(slora_json_build_t *b, uint32_t id)
{
    int                 any, number, c;
    uint32_t            k, i, m, a, n_lit, first, out, lit, w;
    uint64_t            seen[4], set[4];
    slora_json_node_t  *n, *alt;

    if (b->settled[id] == 2) {
        return SLORA_OK;
    }

    if (b->settled[id] == 1) {
        return slora_err_set(b->err, SLORA_ERROR, "an anyOf that contains "
                             "itself is not supported");
    }

    b->settled[id] = 1;

    for (k = 0; k < b->nodes[id].n; k++) {
        a = b->alts[b->nodes[id].first + k];

        if (b->nodes[a].kind == SLORA_JSON_K_UNION
            && slora_json_settle_union(b, a) != SLORA_OK)
        {
            return SLORA_ERROR;
        }
    }

    /* the flattened list goes at the end of alts; literals' texts at the
     * end of texts */
    any = 0;
    number = 0;
    n_lit = 0;
    m = 0;
    n = &b->nodes[id];

    for (k = 0; k < n->n; k++) {
        alt = &b->nodes[b->alts[n->first + k]];

        if (alt->kind == SLORA_JSON_K_UNION) {
            m += alt->n;

        } else {
            m++;
        }
    }

    if (m > SLORA_JSON_CHOICES_MAX) {
        return slora_err_set(b->err, SLORA_ERROR, "an anyOf of more than "
                             "64 schemas, flattened, is not supported");
    }

    first = slora_json_alts(b, m);
    if (first == SLORA_JSON_NONE) {
        return SLORA_ERROR;
    }

    n = &b->nodes[id];
    out = first;

    for (k = 0; k < n->n; k++) {
        a = b->alts[n->first + k];
        alt = &b->nodes[a];

        if (alt->kind == SLORA_JSON_K_UNION) {
            for (i = 0; i < alt->n; i++) {
                b->alts[out++] = b->alts[alt->first + i];
            }

        } else {
            b->alts[out++] = a;
        }
    }

    for (k = first; k < out; k++) {
        alt = &b->nodes[b->alts[k]];
        any |= alt->kind == SLORA_JSON_K_ANY;
        number |= alt->kind == SLORA_JSON_K_NUMBER;

        if (alt->kind == SLORA_JSON_K_LITERAL) {
            n_lit += alt->n;
        }
    }

    b->settled[id] = 2;

    if (b->nodes[id].min == SLORA_JSON_ONE_OF
        && slora_json_settle_one_of(b, first, out) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (any) {
        b->nodes[id].kind = SLORA_JSON_K_ANY;
        return SLORA_OK;
    }

    if (n_lit > SLORA_JSON_CHOICES_MAX) {
        return slora_err_set(b->err, SLORA_ERROR, "an anyOf of more than 64 "
                             "values in all is not supported");
    }

    /* one literal node of every literal alternative's texts */
    lit = SLORA_JSON_NONE;

    if (n_lit > 0) {
        if (slora_json_grow(b, (void **) &b->texts, &b->cap_texts,
                            b->n_texts + n_lit, sizeof(slora_json_text_t))
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        lit = slora_json_node(b, SLORA_JSON_K_LITERAL, n_lit, b->n_texts);

        if (lit == SLORA_JSON_NONE) {
            return SLORA_ERROR;
        }

        for (k = first; k < out; k++) {
            alt = &b->nodes[b->alts[k]];

            if (alt->kind == SLORA_JSON_K_LITERAL) {
                memcpy(&b->texts[b->n_texts], &b->texts[alt->first],
                       alt->n * sizeof(slora_json_text_t));
                b->n_texts += alt->n;
            }
        }
    }

    /* keep the others, and the merged literal once */
    m = first;

    for (k = first; k < out; k++) {
        alt = &b->nodes[b->alts[k]];

        if (alt->kind == SLORA_JSON_K_LITERAL
            || (number && alt->kind == SLORA_JSON_K_INTEGER))
        {
            continue;
        }

        b->alts[m++] = b->alts[k];
    }

    if (lit != SLORA_JSON_NONE) {
        b->alts[m++] = lit;
    }

    b->n_alts = m;
    n = &b->nodes[id];
    n->first = first;
    n->n = m - first;

    if (slora_json_settle_tagged(b, id) != SLORA_OK) {
        return SLORA_ERROR;
    }

    n = &b->nodes[id];
    first = n->first;
    m = first + n->n;

    if (n->n == 1) {
        /* one alternative left: the union is it */
        b->nodes[id] = b->nodes[b->alts[first]];
        return SLORA_OK;
    }

    /* each alternative's first bytes, as 256 bits: none twice */
    memset(seen, 0, sizeof(seen));

    for (k = first; k < m; k++) {
        slora_json_first_bytes(b, b->alts[k], set);

        for (w = 0; w < 4; w++) {
            if (seen[w] & set[w]) {
                c = (int) (w * 64 + (uint32_t) __builtin_ctzll(seen[w]
                                                               & set[w]));

                if (c == '{') {
                    return slora_err_set(b->err, SLORA_ERROR, "anyOf's "
                                         "objects must share a first "
                                         "required property whose const "
                                         "value tells them apart");
                }

                return slora_err_set(b->err, SLORA_ERROR, "anyOf's "
                                     "alternatives must begin differently "
                                     "(an object, an array, a string, a "
                                     "number, literals): two of them may "
                                     "begin with '%c'", c);
            }

            seen[w] |= set[w];
        }
    }

    return SLORA_OK;
}


/*
 * oneOf's flattened alternatives alts[first, last) before they are
 * merged: a value must match exactly one, so none may take what another
 * takes where anyOf's merging would hide it (any value beside others, a
 * number beside an integer, one literal in two alternatives); the
 * first-byte check that follows keeps the others apart.
 */
static int
slora_json_settle_one_of(slora_json_build_t *b, uint32_t first,
    uint32_t last)
{
    int                       number, integer;
    uint32_t                  k, l, i, j, n;
    const slora_json_text_t  *t, *u;
    const slora_json_node_t  *a, *z;

    number = 0;
    integer = 0;

    for (k = first; k < last; k++) {
        a = &b->nodes[b->alts[k]];

        if (a->kind == SLORA_JSON_K_ANY && last - first > 1) {
            return slora_err_set(b->err, SLORA_ERROR, "oneOf of a schema "
                                 "that admits any value beside others is "
                                 "not supported: a value would match two");
        }

        number |= a->kind == SLORA_JSON_K_NUMBER;
        integer |= a->kind == SLORA_JSON_K_INTEGER;

        for (l = k + 1; a->kind == SLORA_JSON_K_LITERAL && l < last; l++) {
            z = &b->nodes[b->alts[l]];

            for (i = 0; z->kind == SLORA_JSON_K_LITERAL && i < a->n; i++) {
                for (j = 0; j < z->n; j++) {
                    t = &b->texts[a->first + i];
                    u = &b->texts[z->first + j];

                    if (t->len != u->len
                        || memcmp(b->bytes + t->off, b->bytes + u->off,
                                  t->len) != 0)
                    {
                        continue;
                    }

                    /* its first 40 bytes, cut between characters: the
                     * message is UTF-8 */
                    n = t->len < 40 ? t->len : 40;

                    while (n < t->len && n > 0
                           && !slora_regex_lead((unsigned char)
                                                b->bytes[t->off + n]))
                    {
                        n--;
                    }

                    return slora_err_set(b->err, SLORA_ERROR, "oneOf of "
                                         "two schemas that admit %.*s is "
                                         "not supported: it would match "
                                         "both", (int) n, b->bytes + t->off);
                }
            }
        }
    }

    if (number && integer) {
        return slora_err_set(b->err, SLORA_ERROR, "oneOf of a number and an "
                             "integer is not supported: an integer would "
                             "match both");
    }

    return SLORA_OK;
}


/*
 * A settled union's objects, when there are two or more and each's first
 * property is required, has the same key and a value of one constant,
 * distinct from the others': one tagged union node in their stead, whose
 * tag literal lists their constants in the objects' order. Otherwise the
 * union stays as it was (and its first-byte check refuses it).
 */
static int
slora_json_settle_tagged(slora_json_build_t *b, uint32_t id)
{
    uint32_t                  k, i, m, n_obj, lit, tagged, objs;
    slora_json_node_t        *n;
    const slora_json_text_t  *t, *u, *key, *key0;

    n = &b->nodes[id];
    n_obj = 0;
    key0 = NULL;

    for (k = n->first; k < n->first + n->n; k++) {
        if (b->nodes[b->alts[k]].kind != SLORA_JSON_K_OBJECT) {
            continue;
        }

        t = slora_json_tag_of(b, b->alts[k]);
        if (t == NULL) {
            return SLORA_OK;
        }

        key = &b->props[b->nodes[b->alts[k]].first].key;

        if (key0 == NULL) {
            key0 = key;

        } else if (key->len != key0->len
                   || memcmp(b->bytes + key->off, b->bytes + key0->off,
                             key->len) != 0)
        {
            return SLORA_OK;
        }

        /* no tag twice */
        for (i = n->first; i < k; i++) {
            if (b->nodes[b->alts[i]].kind != SLORA_JSON_K_OBJECT) {
                continue;
            }

            u = slora_json_tag_of(b, b->alts[i]);

            if (u->len == t->len
                && memcmp(b->bytes + u->off, b->bytes + t->off, t->len) == 0)
            {
                return SLORA_OK;
            }
        }

        n_obj++;
    }

    if (n_obj < 2) {
        return SLORA_OK;
    }

    if (slora_json_grow(b, (void **) &b->texts, &b->cap_texts,
                        b->n_texts + n_obj, sizeof(slora_json_text_t))
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    lit = slora_json_node(b, SLORA_JSON_K_LITERAL, n_obj, b->n_texts);
    tagged = lit != SLORA_JSON_NONE
             ? slora_json_node(b, SLORA_JSON_K_TAGGED, n_obj, 0)
             : SLORA_JSON_NONE;
    objs = tagged != SLORA_JSON_NONE ? slora_json_alts(b, n_obj)
                                     : SLORA_JSON_NONE;

    if (objs == SLORA_JSON_NONE) {
        return SLORA_ERROR;
    }

    b->nodes[tagged].first = objs;
    b->nodes[tagged].min = lit;

    /* the objects move to the tagged node; the union keeps the rest */
    n = &b->nodes[id];
    m = n->first;

    for (k = n->first; k < n->first + n->n; k++) {
        if (b->nodes[b->alts[k]].kind == SLORA_JSON_K_OBJECT) {
            b->texts[b->n_texts++] = *slora_json_tag_of(b, b->alts[k]);
            b->alts[objs++] = b->alts[k];

        } else {
            b->alts[m++] = b->alts[k];
        }
    }

    b->alts[m++] = tagged;
    n->n = m - n->first;

    return SLORA_OK;
}


/* An object's tag: the text of its first property's one constant value,
 * when that property is required; NULL when it has none. */
static const slora_json_text_t *
slora_json_tag_of(slora_json_build_t *b, uint32_t id)
{
    const slora_json_prop_t  *p;
    const slora_json_node_t  *n, *v;

    n = &b->nodes[id];

    if (n->n == 0) {
        return NULL;
    }

    p = &b->props[n->first];
    v = &b->nodes[p->node];

    if (!p->required || v->kind != SLORA_JSON_K_LITERAL || v->n != 1) {
        return NULL;
    }

    return &b->texts[v->first];
}


/* The bytes a value of node id (no union) may begin with, as 256 bits:
 * what slora_json_begins says, byte by byte, in one pass. */
static void
slora_json_first_bytes(slora_json_build_t *b, uint32_t id, uint64_t set[4])
{
    uint32_t                  k;
    const char               *p;
    const slora_json_node_t  *n;

    memset(set, 0, 4 * sizeof(uint64_t));
    n = &b->nodes[id];

#define slora_json_bit(c)  set[(unsigned char) (c) >> 6]                    \
                               |= (uint64_t) 1 << ((unsigned char) (c) & 63)

    switch (n->kind) {

    case SLORA_JSON_K_OBJECT:
    case SLORA_JSON_K_MAP:
    case SLORA_JSON_K_TAGGED:
        slora_json_bit('{');
        break;

    case SLORA_JSON_K_ARRAY:
        slora_json_bit('[');
        break;

    case SLORA_JSON_K_STRING:
        slora_json_bit('"');
        break;

    case SLORA_JSON_K_LITERAL:
        for (k = 0; k < n->n; k++) {
            slora_json_bit(b->bytes[b->texts[n->first + k].off]);
        }
        break;

    default:            /* NUMBER, INTEGER (ANY absorbs a union) */
        slora_json_bit('-');

        for (p = "0123456789"; *p; p++) {
            slora_json_bit(*p);
        }
        break;
    }

#undef slora_json_bit
}


/*
 * Refuses a schema where the root reaches a node that admits no value
 * of finite size: an object whose required properties, or an array
 * whose minItems worth of items, lead back to it with no way out
 * ({"properties": {"next": {"$ref": "#"}}, "required": ["next"]}). The
 * automaton would let the model begin such a value and never let it
 * end. Each node's height (the fewest containers a whole value of it
 * opens at once, SLORA_JSON_NONE where no value ends) is a least
 * fixpoint (every node first "never", then each that ends by what it
 * holds, until none changes); then a walk from the root finds any that
 * never ends. The heights stay in the nodes: the automaton begins a
 * value, or a key whose value must follow, only where its height fits
 * under SLORA_JSON_DEPTH_MAX.
 */
int
slora_json_finite(slora_json_build_t *b, uint32_t root)
{
    int                 rc, changed;
    uint8_t            *seen;
    uint32_t            k, id, top, h, *stack, *height;
    slora_json_node_t  *n;

    height = malloc((size_t) b->n_nodes * sizeof(uint32_t));
    stack = malloc((size_t) b->n_nodes * sizeof(uint32_t));
    seen = calloc(b->n_nodes, 1);

    if (height == NULL || stack == NULL || seen == NULL) {
        free(height);
        free(stack);
        free(seen);
        return slora_err_set(b->err, SLORA_ERROR, "out of memory");
    }

    for (k = 0; k < b->n_nodes; k++) {
        height[k] = SLORA_JSON_NONE;
    }

    do {
        changed = 0;

        for (k = 0; k < b->n_nodes; k++) {
            h = slora_json_height(b, k, height);

            if (h < height[k]) {
                height[k] = h;
                changed = 1;
            }
        }

    } while (changed);

    for (k = 0; k < b->n_nodes; k++) {
        b->nodes[k].height = height[k];
    }

    rc = SLORA_OK;
    top = 0;
    stack[top++] = root;
    seen[root] = 1;

    while (top > 0) {
        id = stack[--top];
        n = &b->nodes[id];

        if (height[id] == SLORA_JSON_NONE) {
            rc = slora_err_set(b->err, SLORA_ERROR, "the schema admits no "
                               "value of finite size: an object's required "
                               "properties or an array's minItems lead back "
                               "to it with no way out");
            break;
        }

        switch (n->kind) {

        case SLORA_JSON_K_OBJECT:
            for (k = 0; k < n->n; k++) {
                slora_json_visit(b->props[n->first + k].node, stack, &top,
                                 seen);
            }
            break;

        case SLORA_JSON_K_UNION:
        case SLORA_JSON_K_TAGGED:
            for (k = 0; k < n->n; k++) {
                slora_json_visit(b->alts[n->first + k], stack, &top, seen);
            }
            break;

        case SLORA_JSON_K_FRAMED:
            for (k = 0; k < n->n; k++) {
                slora_json_visit(b->alts[n->min + k], stack, &top, seen);
            }
            break;

        case SLORA_JSON_K_MAP:
            slora_json_visit(n->first, stack, &top, seen);
            break;

        case SLORA_JSON_K_ARRAY:
            if (n->max != 0) {
                slora_json_visit(n->first, stack, &top, seen);
            }
            break;

        default:
            break;
        }
    }

    free(height);
    free(stack);
    free(seen);

    return rc;
}


/* Node id's height, given the heights found so far (SLORA_JSON_NONE:
 * none yet): an object one above its required values' highest, an
 * array one above its items' when it must hold one, a union its lowest
 * alternative (the first byte picks one), a tagged union its highest
 * object (its tag picks one after it began), a framed value one above
 * its highest value (its begin text picks one, and its frame stays
 * open around it). */
static uint32_t
slora_json_height(slora_json_build_t *b, uint32_t id, const uint32_t *height)
{
    uint32_t            k, h, most, least;
    slora_json_node_t  *n;

    n = &b->nodes[id];

    switch (n->kind) {

    case SLORA_JSON_K_OBJECT:
        most = 0;

        for (k = 0; k < n->n; k++) {
            if (b->props[n->first + k].required) {
                h = height[b->props[n->first + k].node];
                most = h > most ? h : most;
            }
        }

        return most == SLORA_JSON_NONE ? SLORA_JSON_NONE : most + 1;

    case SLORA_JSON_K_ARRAY:
        h = n->min == 0 ? 0 : height[n->first];

        return h == SLORA_JSON_NONE ? SLORA_JSON_NONE : h + 1;

    case SLORA_JSON_K_MAP:
        return 1;

    case SLORA_JSON_K_UNION:
        least = SLORA_JSON_NONE;

        for (k = 0; k < n->n; k++) {
            h = height[b->alts[n->first + k]];
            least = h < least ? h : least;
        }

        return least;

    case SLORA_JSON_K_TAGGED:
        most = 0;

        for (k = 0; k < n->n; k++) {
            h = height[b->alts[n->first + k]];
            most = h > most ? h : most;
        }

        return most;

    case SLORA_JSON_K_FRAMED:
        most = 0;

        for (k = 0; k < n->n; k++) {
            h = height[b->alts[n->min + k]];
            most = h > most ? h : most;
        }

        return most == SLORA_JSON_NONE ? SLORA_JSON_NONE : most + 1;

    case SLORA_JSON_K_REF:
        return height[n->first];

    default:
        return 0;                   /* any value, a scalar */
    }
}


/* id onto the walk's stack, once. */
static void
slora_json_visit(uint32_t id, uint32_t *stack, uint32_t *top, uint8_t *seen)
{
    if (!seen[id]) {
        seen[id] = 1;
        stack[(*top)++] = id;
    }
}
