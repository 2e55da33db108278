/*
 * slora_json_schema.c: a JSON schema compiled into the node graph the
 * constrained-output automaton walks (slora_json.h, slora_json_int.h):
 * the first pass, the builder's primitives and the packing of the graph
 * into one block; the second pass is slora_json_settle.c.
 *
 * The one idea: one pass turns each schema object into a node, with
 * $ref as a placeholder node that points at its target's (so that a
 * recursive definition is a cycle in the graph, not an endless
 * compile); what needs the whole graph (references, unions) waits for
 * the second. What a schema asks that the automaton cannot enforce is
 * refused with the keyword and the place, never dropped. An object's
 * enum and const go to slora_json_literals.c.
 *
 * cJSON ends a string at a NUL (an escaped \u0000 or a raw 0 byte) and
 * gives no length, so that a property "a\u0000b" would be read as "a",
 * and an enum value, a required name or a pattern cut alike; the text
 * is scanned first, and a schema with a NUL in any string is refused.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json_build.h"
#include "slora_pyjson.h"
#include "slora_utf8.h"


/* Keywords that constrain what this compiler cannot enforce. */
static const char  *slora_json_unsupported[] = {
    "patternProperties", "propertyNames", "multipleOf",
    "minProperties",
    "maxProperties", "dependentRequired", "dependentSchemas", "dependencies",
    "prefixItems", "additionalItems", "contains", "minContains",
    "maxContains", "uniqueItems", "not", "if", "then", "else",
    "unevaluatedProperties", "unevaluatedItems", "$dynamicRef",
    "$recursiveRef", NULL
};


/* Keywords that shape a value, which $ref, allOf and anyOf take alone. */
static const char  *slora_json_shaping[] = {
    "type", "properties", "required", "additionalProperties", "items",
    "minItems", "maxItems", "minLength", "maxLength", "pattern", "enum",
    "const",
    "anyOf", "oneOf", "allOf", "$ref", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", NULL
};


/*
 * The formats a string is held to as patterns are (with a pattern of
 * its own too, to both): JSON Schema's date, time and date-time (RFC
 * 3339: a day of the calendar, its month's length and leap years
 * (February 29th in years divisible by 4, of centuries by 400) kept,
 * from the year 0001 (Python's dates, what clients parse one into,
 * have no year 0);
 * a time with its offset, and no leap second: RFC 3339 has one only at
 * 23:59:60 UTC, local time adjusted by the offset, and Python's
 * validators take none), email
 * (a dot-atom local part, a domain of two labels or more), hostname
 * (labels of letters, digits and inner hyphens, of any length: the
 * 63-byte limit would make its automaton 50 times larger), ipv4, uuid
 * and uri (a scheme, then URI characters). Other formats (ipv6,
 * duration, ...) stay annotations.
 */
#define SLORA_JSON_DATE                                                    \
    "(([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"                \
    "-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])"                          \
    "|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"        \
    "|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][48]|[2468]0"       \
    "|[13579][26])00)-02-29)"
#define SLORA_JSON_TIME  "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"        \
                         "(\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3])"    \
                         ":[0-5][0-9])"
#define SLORA_JSON_ATOM  "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
#define SLORA_JSON_LABEL "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
#define SLORA_JSON_OCTET "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#define SLORA_JSON_HEX4  "[0-9a-fA-F]{4}"

static const char  *slora_json_formats[][2] = {
    { "date", "^" SLORA_JSON_DATE "$" },
    { "time", "^" SLORA_JSON_TIME "$" },
    { "date-time", "^" SLORA_JSON_DATE "[Tt]" SLORA_JSON_TIME "$" },
    { "email", "^" SLORA_JSON_ATOM "(\\." SLORA_JSON_ATOM ")*@"
      SLORA_JSON_LABEL "(\\." SLORA_JSON_LABEL ")+$" },
    { "hostname", "^" SLORA_JSON_LABEL "(\\." SLORA_JSON_LABEL ")*$" },
    { "ipv4", "^(" SLORA_JSON_OCTET "\\.){3}" SLORA_JSON_OCTET "$" },
    { "uuid", "^" SLORA_JSON_HEX4 SLORA_JSON_HEX4 "-" SLORA_JSON_HEX4 "-"
      SLORA_JSON_HEX4 "-" SLORA_JSON_HEX4 "-" SLORA_JSON_HEX4
      SLORA_JSON_HEX4 SLORA_JSON_HEX4 "$" },
    { "uri", "^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9._~:/?#\\[\\]@!$&'()*+,;="
      "%-]+$" },
    { NULL, NULL }
};


/* The bounds of a number, held for an integer only. */
const char  *const slora_json_bounds[] = {
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL
};


static uint32_t slora_json_compile(slora_json_build_t *b, const cJSON *sch);
static uint32_t slora_json_compile_type(slora_json_build_t *b,
    const cJSON *sch, const char *type);
static uint32_t slora_json_compile_integer(slora_json_build_t *b,
    const cJSON *sch);
static uint32_t slora_json_compile_number(slora_json_build_t *b,
    const cJSON *sch);
static int slora_json_grid_meets(double lo, unsigned lo_open, double hi,
    unsigned hi_open);
static int64_t slora_json_int64(double x);
static const char *slora_json_bounded(const cJSON *sch);
static uint32_t slora_json_compile_object(slora_json_build_t *b,
    const cJSON *sch);
static uint32_t slora_json_compile_array(slora_json_build_t *b,
    const cJSON *sch);
static uint32_t slora_json_compile_string(slora_json_build_t *b,
    const cJSON *sch);
static uint32_t slora_json_compile_union(slora_json_build_t *b,
    const cJSON *list, const char *keyword);
static uint32_t slora_json_compile_types(slora_json_build_t *b,
    const cJSON *sch, const cJSON *types);
static uint32_t slora_json_compile_ref(slora_json_build_t *b,
    const char *ref);
static int slora_json_has(const cJSON *sch, const char *keyword);
static int slora_json_other(slora_json_build_t *b, const cJSON *sch,
    const char *keyword);
static void slora_json_enter(slora_json_build_t *b, const char *a,
    const char *c);
static void slora_json_leave(slora_json_build_t *b, size_t len);
static char *slora_json_put(char *p, const void *from, size_t size);


slora_json_schema_t *
slora_json_schema_parse(const char *text, size_t len, slora_err_t *err)
{
    cJSON                *doc;
    uint32_t              root;
    slora_json_build_t    b;
    slora_json_schema_t  *s;

    doc = slora_json_doc(text, len, "the schema", err);
    if (doc == NULL) {
        return NULL;
    }

    s = NULL;

    if (slora_json_build_init(&b, err) == SLORA_OK) {
        root = slora_json_compile_doc(&b, doc);

        if (root != SLORA_JSON_NONE && slora_json_settle(&b) == SLORA_OK
            && slora_json_resolve(&b, &root) == SLORA_OK
            && slora_json_finite(&b, root) == SLORA_OK)
        {
            if (b.nodes[root].kind != SLORA_JSON_K_OBJECT
                && b.nodes[root].kind != SLORA_JSON_K_MAP
                && b.nodes[root].kind != SLORA_JSON_K_TAGGED
                && b.nodes[root].kind != SLORA_JSON_K_ARRAY)
            {
                slora_err_set(err, SLORA_ERROR, "the schema's root must be "
                              "an object or an array (\"type\": "
                              "\"object\" or \"array\")");

            } else {
                s = slora_json_pack(&b, root);
            }
        }
    }

    slora_json_build_free(&b);
    cJSON_Delete(doc);

    return s;
}


cJSON *
slora_json_doc(const char *text, size_t len, const char *what,
    slora_err_t *err)
{
    cJSON   *doc;
    size_t   at;

    if (len > SLORA_JSON_SCHEMA_MAX) {
        slora_err_set(err, SLORA_ERROR, "%s is %zu bytes, at most %d", what,
                      len, SLORA_JSON_SCHEMA_MAX);
        return NULL;
    }

    at = slora_json_find_nul(text, len);

    if (at < len) {
        slora_err_set(err, SLORA_ERROR, "%s holds a NUL (\\u0000) in a "
                      "string at byte %zu, which is not supported", what, at);
        return NULL;
    }

    doc = cJSON_ParseWithLength(text, len);
    if (doc == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s is not JSON", what);
        return NULL;
    }

    /* a keyword given twice is its last, as Python's json reads it */
    if (slora_pyjson_dict(doc) != 0) {
        cJSON_Delete(doc);
        slora_err_set(err, SLORA_ERROR, "out of memory");
        return NULL;
    }

    return doc;
}


int
slora_json_build_init(slora_json_build_t *b, slora_err_t *err)
{
    memset(b, 0, sizeof(slora_json_build_t));
    b->regex_work = SLORA_REGEX_WORK_MAX;
    b->err = err;

    /* the built-in nodes, texts and bytes first */
    if (slora_json_grow(b, (void **) &b->nodes, &b->cap_nodes,
                        SLORA_JSON_N_BUILTIN, sizeof(slora_json_node_t))
        != SLORA_OK
        || slora_json_grow(b, (void **) &b->texts, &b->cap_texts,
                           SLORA_JSON_TEXTS_BUILTIN,
                           sizeof(slora_json_text_t)) != SLORA_OK
        || slora_json_grow(b, (void **) &b->bytes, &b->cap_bytes,
                           sizeof(SLORA_JSON_BYTES_BUILTIN), 1) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    memcpy(b->nodes, slora_json_builtin_nodes,
           sizeof(slora_json_node_t) * SLORA_JSON_N_BUILTIN);
    b->n_nodes = SLORA_JSON_N_BUILTIN;
    memcpy(b->texts, slora_json_builtin_texts,
           sizeof(slora_json_text_t) * SLORA_JSON_TEXTS_BUILTIN);
    b->n_texts = SLORA_JSON_TEXTS_BUILTIN;
    b->n_bytes = sizeof(SLORA_JSON_BYTES_BUILTIN) - 1;
    memcpy(b->bytes, SLORA_JSON_BYTES_BUILTIN, b->n_bytes);

    return SLORA_OK;
}


uint32_t
slora_json_compile_doc(slora_json_build_t *b, const cJSON *doc)
{
    b->doc = doc;
    b->nesting = 0;
    b->path[0] = '#';
    b->path[1] = '\0';
    b->path_len = 1;

    return slora_json_compile(b, doc);
}


void
slora_json_schema_free(slora_json_schema_t *s)
{
    free(s);
}


size_t
slora_json_schema_size(const slora_json_schema_t *s)
{
    return s->size;
}


static uint32_t
slora_json_compile(slora_json_build_t *b, const cJSON *sch)
{
    int           i;
    uint32_t      id;
    const cJSON  *ref, *all, *any, *type;

    if (cJSON_IsTrue(sch)) {
        return SLORA_JSON_N_ANY;
    }

    if (cJSON_IsFalse(sch)) {
        return slora_json_fail(b, "the schema false at %s admits no value",
                               NULL);
    }

    if (!cJSON_IsObject(sch)) {
        return slora_json_fail(b, "a schema must be an object or a boolean "
                               "(at %s)", NULL);
    }

    if (b->nesting == SLORA_JSON_NESTING_MAX) {
        return slora_json_fail(b, "the schema nests too deep (at %s)", NULL);
    }

    for (i = 0; slora_json_unsupported[i] != NULL; i++) {
        if (cJSON_GetObjectItemCaseSensitive(sch, slora_json_unsupported[i])
            != NULL)
        {
            return slora_json_fail(b, "the schema keyword \"%s\" is not "
                                   "supported (at %s)",
                                   slora_json_unsupported[i]);
        }
    }

    ref = cJSON_GetObjectItemCaseSensitive(sch, "$ref");
    all = cJSON_GetObjectItemCaseSensitive(sch, "allOf");
    any = cJSON_GetObjectItemCaseSensitive(sch, "anyOf");

    if (any == NULL) {
        any = cJSON_GetObjectItemCaseSensitive(sch, "oneOf");
    }

    b->nesting++;

    if (ref != NULL) {
        if (!cJSON_IsString(ref)) {
            id = slora_json_fail(b, "$ref must be a string (at %s)", NULL);

        } else {
            id = slora_json_other(b, sch, "$ref") ? SLORA_JSON_NONE
                 : slora_json_compile_ref(b, ref->valuestring);
        }

    } else if (all != NULL) {
        if (!cJSON_IsArray(all) || cJSON_GetArraySize(all) != 1) {
            id = slora_json_fail(b, "allOf of other than one schema is not "
                                 "supported (at %s)", NULL);

        } else if (slora_json_other(b, sch, "allOf")) {
            id = SLORA_JSON_NONE;

        } else {
            slora_json_enter(b, "allOf", "0");
            id = slora_json_compile(b, all->child);
        }

    } else if (any != NULL) {
        id = slora_json_other(b, sch, any->string) ? SLORA_JSON_NONE
             : slora_json_compile_union(b, any, any->string);

    } else if (cJSON_GetObjectItemCaseSensitive(sch, "enum") != NULL
               || cJSON_GetObjectItemCaseSensitive(sch, "const") != NULL)
    {
        id = slora_json_compile_literals(b, sch);

    } else {
        type = cJSON_GetObjectItemCaseSensitive(sch, "type");

        if (cJSON_IsArray(type)) {
            id = slora_json_compile_types(b, sch, type);

        } else if (type != NULL && !cJSON_IsString(type)) {
            id = slora_json_fail(b, "type must be a string or an array of "
                                 "them (at %s)", NULL);

        } else if (type != NULL) {
            id = slora_json_compile_type(b, sch, type->valuestring);

        } else if (slora_json_has(sch, "properties")
                   || slora_json_has(sch, "required")
                   || slora_json_has(sch, "additionalProperties"))
        {
            id = slora_json_compile_type(b, sch, "object");

        } else if (slora_json_has(sch, "items")
                   || slora_json_has(sch, "minItems")
                   || slora_json_has(sch, "maxItems"))
        {
            id = slora_json_compile_type(b, sch, "array");

        } else if (slora_json_has(sch, "minLength")
                   || slora_json_has(sch, "maxLength")
                   || slora_json_has(sch, "pattern"))
        {
            id = slora_json_compile_type(b, sch, "string");

        } else if (slora_json_bounded(sch) != NULL) {
            id = slora_json_fail(b, "%s without \"type\" \"integer\" or "
                                 "\"number\" is not supported (at %s)",
                                 slora_json_bounded(sch));

        } else {
            id = SLORA_JSON_N_ANY;
        }
    }

    b->nesting--;

    return id;
}


static uint32_t
slora_json_compile_type(slora_json_build_t *b, const cJSON *sch,
    const char *type)
{
    uint32_t  id;

    if (strcmp(type, "object") == 0) {
        return slora_json_compile_object(b, sch);
    }

    if (strcmp(type, "array") == 0) {
        return slora_json_compile_array(b, sch);
    }

    if (strcmp(type, "string") == 0) {
        return slora_json_compile_string(b, sch);
    }

    if (strcmp(type, "number") == 0) {
        return slora_json_bounded(sch) == NULL
               ? SLORA_JSON_N_ANY_NUMBER
               : slora_json_compile_number(b, sch);
    }

    if (strcmp(type, "integer") == 0) {
        return slora_json_compile_integer(b, sch);
    }

    if (strcmp(type, "boolean") == 0) {
        return slora_json_node(b, SLORA_JSON_K_LITERAL, 2, 0);
    }

    if (strcmp(type, "null") == 0) {
        id = slora_json_node(b, SLORA_JSON_K_LITERAL, 1, 2);
        return id;
    }

    return slora_json_fail(b, "type \"%s\" is not a JSON Schema type "
                           "(at %s)", type);
}


/* An integer, within minimum..maximum and past the exclusive bounds:
 * lo..hi as int64 (a fractional bound rounded inward, one from 2^53 on
 * moved inward a double's step, but a minimum or maximum that reads as
 * int64's end held there). */
static uint32_t
slora_json_compile_integer(slora_json_build_t *b, const cJSON *sch)
{
    int           i;
    double        x, lo, hi;
    uint32_t      id;
    const cJSON  *it;

    lo = -9223372036854775808.0;
    hi = 9223372036854775807.0;

    for (i = 0; slora_json_bounds[i] != NULL; i++) {
        it = cJSON_GetObjectItemCaseSensitive(sch, slora_json_bounds[i]);

        if (it == NULL) {
            continue;
        }

        if (!cJSON_IsNumber(it)) {
            return slora_json_fail(b, "%s must be a number (at %s)",
                                   slora_json_bounds[i]);
        }

        x = it->valuedouble;

        /* from 2^53 on a double may hold the written integer's
         * neighbour (9007199254740993 reads ...992): the bound moves
         * inward a step, past every integer the text may have been;
         * but INT64_MAX and INT64_MIN read as 2^63 and -2^63, where a
         * minimum moved on would admit no int64 ("minimum":
         * 9223372036854775807 refused), so a minimum or maximum there
         * is int64's end */
        if (fabs(x) >= 9007199254740992.0
            && !(i < 2 && fabs(x) == 9223372036854775808.0))
        {
            x = nextafter(x, i % 2 == 0 ? INFINITY : -INFINITY);
        }

        switch (i) {
        case 0:
            lo = fmax(lo, ceil(x));
            break;
        case 1:
            hi = fmin(hi, floor(x));
            break;
        case 2:
            lo = fmax(lo, floor(x) + 1);
            break;
        default:
            hi = fmin(hi, ceil(x) - 1);
            break;
        }
    }

    if (lo > hi) {
        return slora_json_fail(b, "the bounds admit no integer (at %s)",
                               NULL);
    }

    id = slora_json_node(b, SLORA_JSON_K_INTEGER, 0, 0);

    if (id != SLORA_JSON_NONE && slora_json_bounded(sch) != NULL) {
        b->nodes[id].bounded = 1;
        b->nodes[id].lo = slora_json_int64(lo);
        b->nodes[id].hi = slora_json_int64(hi);
    }

    return id;
}


/* A number within its bounds, each end closed or open (the tighter of
 * minimum and exclusiveMinimum, of maximum and exclusiveMaximum; at a
 * tie the open one); written without an exponent. */
static uint32_t
slora_json_compile_number(slora_json_build_t *b, const cJSON *sch)
{
    int                 i, open;
    double              x;
    uint32_t            id;
    const cJSON        *it;
    slora_json_node_t  *n;

    id = slora_json_node(b, SLORA_JSON_K_NUMBER, 0, 0);
    if (id == SLORA_JSON_NONE) {
        return SLORA_JSON_NONE;
    }

    n = &b->nodes[id];
    n->bounded = 1;
    n->flo = -INFINITY;
    n->fhi = INFINITY;
    n->excl = 0;

    for (i = 0; slora_json_bounds[i] != NULL; i++) {
        it = cJSON_GetObjectItemCaseSensitive(sch, slora_json_bounds[i]);

        if (it == NULL) {
            continue;
        }

        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
            return slora_json_fail(b, "%s must be a number (at %s)",
                                   slora_json_bounds[i]);
        }

        x = it->valuedouble;
        open = i >= 2;

        if (i % 2 == 0 && (x > n->flo || (x == n->flo && open))) {
            n->flo = x;
            n->excl = (n->excl & ~1u) | (open ? 1u : 0);

        } else if (i % 2 == 1 && (x < n->fhi || (x == n->fhi && open))) {
            n->fhi = x;
            n->excl = (n->excl & ~2u) | (open ? 2u : 0);
        }
    }

    if (n->flo > n->fhi || (n->flo == n->fhi && n->excl)) {
        return slora_json_fail(b, "the bounds admit no number (at %s)",
                               NULL);
    }

    /* what is written: at most 19 significant digits (under 1e19), 40
     * decimals (multiples of 1e-40), no exponent */
    if (n->flo >= 1e19 || n->fhi <= -1e19
        || !slora_json_grid_meets(n->flo, n->excl & 1u, n->fhi,
                                  n->excl & 2u))
    {
        return slora_json_fail(b, "the bounds admit no number of at most "
                               "19 digits and 40 decimals, as an answer "
                               "writes one (at %s)", NULL);
    }

    return id;
}


/* Whether a multiple of 1e-40 lies in lo..hi (each end open when said);
 * at a scale where doubles are whole, any closed interval holds one. */
static int
slora_json_grid_meets(double lo, unsigned lo_open, double hi,
    unsigned hi_open)
{
    double  a, z;

    if (isinf(lo) || isinf(hi)) {
        return 1;
    }

    a = ceil(lo * 1e40);
    z = floor(hi * 1e40);

    if (lo_open && a == lo * 1e40) {
        a += 1;
    }

    if (hi_open && z == hi * 1e40) {
        z -= 1;
    }

    return a <= z;
}


/* A whole double as int64, clamped (a bound past 2^53 is as exact as
 * the JSON number that gave it). */
static int64_t
slora_json_int64(double x)
{
    return x <= -9223372036854775808.0 ? INT64_MIN
           : x >= 9223372036854775807.0 ? INT64_MAX : (int64_t) x;
}


/* The first bound keyword sch has; NULL: none. */
static const char *
slora_json_bounded(const cJSON *sch)
{
    int  i;

    for (i = 0; slora_json_bounds[i] != NULL; i++) {
        if (slora_json_has(sch, slora_json_bounds[i])) {
            return slora_json_bounds[i];
        }
    }

    return NULL;
}


/* Declared properties, in their order (at most SLORA_JSON_CHOICES_MAX),
 * or without any, a map of additionalProperties' values. */
static uint32_t
slora_json_compile_object(slora_json_build_t *b, const cJSON *sch)
{
    int                 n, k;
    size_t              len;
    cJSON              *key;
    uint32_t            id, first, node;
    const cJSON        *props, *req, *add, *it, *r;
    slora_json_prop_t  *p;

    props = cJSON_GetObjectItemCaseSensitive(sch, "properties");
    req = cJSON_GetObjectItemCaseSensitive(sch, "required");
    add = cJSON_GetObjectItemCaseSensitive(sch, "additionalProperties");

    if ((props != NULL && !cJSON_IsObject(props))
        || (req != NULL && !cJSON_IsArray(req)))
    {
        return slora_json_fail(b, "properties must be an object and "
                               "required an array (at %s)", NULL);
    }

    for (r = req != NULL ? req->child : NULL; r != NULL; r = r->next) {
        if (!cJSON_IsString(r)
            || cJSON_GetObjectItemCaseSensitive(props, r->valuestring)
               == NULL)
        {
            return slora_json_fail(b, "required names \"%s\", which is not "
                                   "among properties (at %s)",
                                   cJSON_IsString(r) ? r->valuestring : "?");
        }
    }

    n = props != NULL ? cJSON_GetArraySize(props) : 0;

    if (n == 0 && !cJSON_IsFalse(add)) {
        if (add == NULL || cJSON_IsTrue(add)) {
            return SLORA_JSON_N_ANY_OBJECT;
        }

        len = b->path_len;
        slora_json_enter(b, "additionalProperties", NULL);
        node = slora_json_compile(b, add);
        slora_json_leave(b, len);

        return node == SLORA_JSON_NONE
               ? SLORA_JSON_NONE
               : slora_json_node(b, SLORA_JSON_K_MAP, 0, node);
    }

    if (n > SLORA_JSON_CHOICES_MAX) {
        return slora_json_fail(b, "an object of more than 64 properties is "
                               "not supported (at %s)", NULL);
    }

    /* the properties are contiguous: reserve them, then compile */
    if (slora_json_grow(b, (void **) &b->props, &b->cap_props,
                        b->n_props + (uint32_t) n, sizeof(slora_json_prop_t))
        != SLORA_OK)
    {
        return SLORA_JSON_NONE;
    }

    first = b->n_props;
    b->n_props += (uint32_t) n;
    id = slora_json_node(b, SLORA_JSON_K_OBJECT, (uint32_t) n, first);

    if (id == SLORA_JSON_NONE) {
        return SLORA_JSON_NONE;
    }

    k = 0;

    for (it = props != NULL ? props->child : NULL; it != NULL; it = it->next)
    {
        key = cJSON_CreateString(it->string);

        if (key == NULL
            || slora_json_text(b, key, &b->props[first + k].key) != SLORA_OK)
        {
            cJSON_Delete(key);
            return key == NULL ? slora_json_fail(b, "out of memory (at %s)",
                                                 NULL)
                               : SLORA_JSON_NONE;
        }

        cJSON_Delete(key);

        /* (a name given twice is one property, its last: the schema
         * was read as a dict, slora_json_schema_parse) */

        len = b->path_len;
        slora_json_enter(b, "properties", it->string);
        node = slora_json_compile(b, it);
        slora_json_leave(b, len);

        if (node == SLORA_JSON_NONE) {
            return SLORA_JSON_NONE;
        }

        /* b->props may have moved */
        p = &b->props[first + k];
        p->node = node;
        p->required = 0;

        for (r = req != NULL ? req->child : NULL; r != NULL; r = r->next) {
            p->required |= strcmp(r->valuestring, it->string) == 0;
        }

        k++;
    }

    return id;
}


static uint32_t
slora_json_compile_array(slora_json_build_t *b, const cJSON *sch)
{
    size_t        len;
    uint32_t      id, items, min, max;
    const cJSON  *it;

    min = 0;
    max = SLORA_JSON_NONE;

    if (slora_json_count(b, sch, "minItems", &min) != SLORA_OK
        || slora_json_count(b, sch, "maxItems", &max) != SLORA_OK)
    {
        return SLORA_JSON_NONE;
    }

    if (min > max) {
        return slora_json_fail(b, "minItems is above maxItems (at %s)",
                               NULL);
    }

    it = cJSON_GetObjectItemCaseSensitive(sch, "items");

    if (cJSON_IsArray(it)) {
        return slora_json_fail(b, "items as an array (a tuple) is not "
                               "supported (at %s)", NULL);
    }

    if (cJSON_IsFalse(it)) {
        if (min > 0) {
            return slora_json_fail(b, "items false with minItems admits no "
                                   "value (at %s)", NULL);
        }

        max = 0;
        items = SLORA_JSON_N_ANY;

    } else if (it == NULL) {
        items = SLORA_JSON_N_ANY;

    } else {
        len = b->path_len;
        slora_json_enter(b, "items", NULL);
        items = slora_json_compile(b, it);
        slora_json_leave(b, len);

        if (items == SLORA_JSON_NONE) {
            return SLORA_JSON_NONE;
        }
    }

    id = slora_json_node(b, SLORA_JSON_K_ARRAY, 0, items);

    if (id != SLORA_JSON_NONE) {
        b->nodes[id].min = min;
        b->nodes[id].max = max;
    }

    return id;
}


/* A string of minLength..maxLength characters; with a pattern, a
 * format held as one, or both, their automaton (which keeps the lengths
 * too) appended to the schema's. */
static uint32_t
slora_json_compile_string(slora_json_build_t *b, const cJSON *sch)
{
    char            why[224];
    uint32_t        id, min, max, off;
    slora_err_t     rerr;
    const char     *re, *fmt, *what;
    const cJSON    *pattern;
    slora_regex_t  *r;

    min = 0;
    max = SLORA_JSON_NONE;

    if (slora_json_count(b, sch, "minLength", &min) != SLORA_OK
        || slora_json_count(b, sch, "maxLength", &max) != SLORA_OK)
    {
        return SLORA_JSON_NONE;
    }

    if (min > max) {
        return slora_json_fail(b, "minLength is above maxLength (at %s)",
                               NULL);
    }

    pattern = cJSON_GetObjectItemCaseSensitive(sch, "pattern");

    if (pattern != NULL && !cJSON_IsString(pattern)) {
        return slora_json_fail(b, "pattern must be a string (at %s)", NULL);
    }

    re = pattern != NULL ? pattern->valuestring : NULL;
    fmt = slora_json_format(sch);
    what = re == NULL ? "format" : fmt == NULL ? "pattern"
                                                : "pattern and format";

    if (re == NULL) {
        re = fmt;
        fmt = NULL;
    }

    if (min == 0 && max == SLORA_JSON_NONE && re == NULL) {
        return SLORA_JSON_N_ANY_STRING;
    }

    off = 0;

    if (re != NULL) {
        memset(&rerr, 0, sizeof(slora_err_t));
        r = slora_regex_compile_both(re, strlen(re), fmt,
                                     fmt != NULL ? strlen(fmt) : 0, min,
                                     max == SLORA_JSON_NONE
                                     ? SLORA_REGEX_NONE : max,
                                     SLORA_REGEX_SEARCH, &b->regex_work,
                                     &rerr);
        if (r == NULL) {
            snprintf(why, sizeof(why), "%s: %.*s", what,
                     slora_utf8_cut(rerr.msg, 190), rerr.msg);
            return slora_json_fail(b, "%s (at %s)", why);
        }

        off = b->n_regexes;

        if (slora_json_grow(b, (void **) &b->regexes, &b->cap_regexes,
                            b->n_regexes + r->size, 1) != SLORA_OK)
        {
            free(r);
            return SLORA_JSON_NONE;
        }

        memcpy(b->regexes + off, r, r->size);
        b->n_regexes += r->size;
        free(r);
    }

    id = slora_json_node(b, SLORA_JSON_K_STRING, re != NULL, off);

    if (id != SLORA_JSON_NONE) {
        b->nodes[id].min = min;
        b->nodes[id].max = max;
    }

    return id;
}


/* The pattern a string's format is held to, or NULL (none, or one
 * that stays an annotation). */
const char *
slora_json_format(const cJSON *sch)
{
    int           i;
    const cJSON  *format;

    format = cJSON_GetObjectItemCaseSensitive(sch, "format");

    for (i = 0; cJSON_IsString(format) && slora_json_formats[i][0]; i++) {
        if (strcmp(format->valuestring, slora_json_formats[i][0]) == 0) {
            return slora_json_formats[i][1];
        }
    }

    return NULL;
}


/* anyOf or oneOf: the alternatives, settled later (slora_json_settle). */
static uint32_t
slora_json_compile_union(slora_json_build_t *b, const cJSON *list,
    const char *keyword)
{
    int           n, k;
    char          index[16];
    size_t        len;
    uint32_t      first, node;
    const cJSON  *it;

    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
        return slora_json_fail(b, "%s must be a non-empty array (at %s)",
                               keyword);
    }

    n = cJSON_GetArraySize(list);

    if (n > SLORA_JSON_CHOICES_MAX) {
        return slora_json_fail(b, "%s of more than 64 schemas is not "
                               "supported (at %s)", keyword);
    }

    first = slora_json_alts(b, (uint32_t) n);
    if (first == SLORA_JSON_NONE) {
        return SLORA_JSON_NONE;
    }
    k = 0;

    for (it = list->child; it != NULL; it = it->next, k++) {
        snprintf(index, sizeof(index), "%d", k);
        len = b->path_len;
        slora_json_enter(b, keyword, index);
        node = slora_json_compile(b, it);
        slora_json_leave(b, len);

        if (node == SLORA_JSON_NONE) {
            return SLORA_JSON_NONE;
        }

        b->alts[first + k] = node;
    }

    node = slora_json_node(b, SLORA_JSON_K_UNION, (uint32_t) n, first);

    if (node != SLORA_JSON_NONE && strcmp(keyword, "oneOf") == 0) {
        b->nodes[node].min = SLORA_JSON_ONE_OF;
    }

    return node;
}


/* "type": [...]: a union of the schema read as each type. */
static uint32_t
slora_json_compile_types(slora_json_build_t *b, const cJSON *sch,
    const cJSON *types)
{
    int           n, k;
    uint32_t      first, node;
    const cJSON  *t;

    n = cJSON_GetArraySize(types);

    if (n == 0 || n > 8) {
        return slora_json_fail(b, "type as an array must name 1 to 8 types "
                               "(at %s)", NULL);
    }

    first = slora_json_alts(b, (uint32_t) n);
    if (first == SLORA_JSON_NONE) {
        return SLORA_JSON_NONE;
    }
    k = 0;

    for (t = types->child; t != NULL; t = t->next, k++) {
        if (!cJSON_IsString(t)) {
            return slora_json_fail(b, "type as an array must hold strings "
                                   "(at %s)", NULL);
        }

        node = slora_json_compile_type(b, sch, t->valuestring);

        if (node == SLORA_JSON_NONE) {
            return SLORA_JSON_NONE;
        }

        b->alts[first + k] = node;
    }

    return slora_json_node(b, SLORA_JSON_K_UNION, (uint32_t) n, first);
}


/* A JSON pointer into the same document ("#", "#/$defs/Name"): a
 * placeholder node pointing at the target's, compiled once. */
static uint32_t
slora_json_compile_ref(slora_json_build_t *b, const char *ref)
{
    char          name[SLORA_JSON_PATH_LEN], saved[SLORA_JSON_PATH_LEN], *w;
    size_t        len;
    uint32_t      k, id, target;
    const char   *p;
    const cJSON  *at;

    if (ref[0] != '#' || (ref[1] != '\0' && ref[1] != '/')) {
        return slora_json_fail(b, "$ref \"%s\" is not a place in this "
                               "schema (\"#/...\") (at %s)", ref);
    }

    at = b->doc;

    for (p = ref + 1; *p == '/'; /* void */) {
        p++;
        w = name;

        while (*p != '\0' && *p != '/' && w < name + sizeof(name) - 1) {
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                *w++ = p[1] == '0' ? '~' : '/';
                p += 2;

            } else {
                *w++ = *p++;
            }
        }

        *w = '\0';

        at = cJSON_IsArray(at) ? cJSON_GetArrayItem(at, atoi(name))
             : cJSON_GetObjectItemCaseSensitive(at, name);

        if (at == NULL) {
            return slora_json_fail(b, "$ref \"%s\" names nothing in the "
                                   "schema (at %s)", ref);
        }
    }

    if (*p != '\0') {
        return slora_json_fail(b, "$ref \"%s\" is not a place in this "
                               "schema (at %s)", ref);
    }

    for (k = 0; k < b->n_memo; k++) {
        if (b->memo[k].at == at) {
            return b->memo[k].node;
        }
    }

    id = slora_json_node(b, SLORA_JSON_K_REF, 0, SLORA_JSON_NONE);

    if (id == SLORA_JSON_NONE
        || slora_json_grow(b, (void **) &b->memo, &b->cap_memo,
                           b->n_memo + 1, sizeof(slora_json_memo_t))
           != SLORA_OK)
    {
        return SLORA_JSON_NONE;
    }

    b->memo[b->n_memo].at = at;
    b->memo[b->n_memo].node = id;
    b->n_memo++;

    len = b->path_len;
    memcpy(saved, b->path, sizeof(saved));
    b->path_len = 0;
    slora_json_enter(b, ref, NULL);
    target = slora_json_compile(b, at);
    memcpy(b->path, saved, sizeof(saved));
    b->path_len = len;

    if (target == SLORA_JSON_NONE) {
        return SLORA_JSON_NONE;
    }

    b->nodes[id].first = target;

    return id;
}


/* Whether sch holds keyword, by its case: cJSON_HasObjectItem ignores
 * case, and "Properties" is no keyword. */
static int
slora_json_has(const cJSON *sch, const char *keyword)
{
    return cJSON_GetObjectItemCaseSensitive(sch, keyword) != NULL;
}


/* 1 (having failed) when sch has shaping keywords beside keyword. */
static int
slora_json_other(slora_json_build_t *b, const cJSON *sch, const char *keyword)
{
    int  i;

    for (i = 0; slora_json_shaping[i] != NULL; i++) {
        if (strcmp(slora_json_shaping[i], keyword) != 0
            && slora_json_has(sch, slora_json_shaping[i]))
        {
            slora_json_fail(b, "%s beside other keywords that shape the "
                            "value is not supported (at %s)", keyword);
            return 1;
        }
    }

    return 0;
}


int
slora_json_count(slora_json_build_t *b, const cJSON *sch, const char *keyword,
    uint32_t *out)
{
    const cJSON  *it;

    it = cJSON_GetObjectItemCaseSensitive(sch, keyword);

    if (it == NULL) {
        return SLORA_OK;
    }

    if (!cJSON_IsNumber(it) || it->valuedouble < 0
        || it->valuedouble > 1e9 || floor(it->valuedouble) != it->valuedouble)
    {
        slora_json_fail(b, "%s must be a whole number, 0 to 1e9 (at %s)",
                        keyword);
        return SLORA_ERROR;
    }

    *out = (uint32_t) it->valuedouble;

    return SLORA_OK;
}


uint32_t
slora_json_alts(slora_json_build_t *b, uint32_t n)
{
    uint32_t  first;

    if (slora_json_grow(b, (void **) &b->alts, &b->cap_alts, b->n_alts + n,
                        sizeof(uint32_t))
        != SLORA_OK)
    {
        return SLORA_JSON_NONE;
    }

    first = b->n_alts;
    b->n_alts += n;

    return first;
}


uint32_t
slora_json_node(slora_json_build_t *b, uint32_t kind, uint32_t n,
    uint32_t first)
{
    slora_json_node_t  *node;

    if (b->n_nodes == SLORA_JSON_NODES_MAX) {
        return slora_json_fail(b, "the schema has too many parts (at %s)",
                               NULL);
    }

    if (slora_json_grow(b, (void **) &b->nodes, &b->cap_nodes,
                        b->n_nodes + 1, sizeof(slora_json_node_t))
        != SLORA_OK)
    {
        return SLORA_JSON_NONE;
    }

    node = &b->nodes[b->n_nodes];
    node->kind = kind;
    node->n = n;
    node->first = first;
    node->min = 0;
    node->max = SLORA_JSON_NONE;
    node->bounded = 0;
    node->lo = INT64_MIN;
    node->hi = INT64_MAX;
    node->flo = 0;
    node->fhi = 0;
    node->excl = 0;
    node->height = 0;

    return b->n_nodes++;
}


/* value's compact JSON text into bytes. */
int
slora_json_text(slora_json_build_t *b, const cJSON *value,
    slora_json_text_t *t)
{
    int      rc;
    char    *s;

    s = cJSON_PrintUnformatted(value);
    if (s == NULL) {
        return slora_err_set(b->err, SLORA_ERROR, "out of memory");
    }

    rc = slora_json_bytes(b, s, strlen(s), t);
    free(s);

    return rc;
}


int
slora_json_bytes(slora_json_build_t *b, const char *p, size_t len,
    slora_json_text_t *t)
{
    if (len > SLORA_JSON_SCHEMA_MAX
        || slora_json_grow(b, (void **) &b->bytes, &b->cap_bytes,
                           b->n_bytes + (uint32_t) len + 1, 1) != SLORA_OK)
    {
        return slora_err_set(b->err, SLORA_ERROR, "out of memory");
    }

    memcpy(b->bytes + b->n_bytes, p, len);
    t->off = b->n_bytes;
    t->len = (uint32_t) len;
    b->n_bytes += (uint32_t) len;

    return SLORA_OK;
}


int
slora_json_grow(slora_json_build_t *b, void **p, uint32_t *cap,
    uint32_t need, size_t size)
{
    void      *q;
    uint32_t   n;

    if (need <= *cap) {
        return SLORA_OK;
    }

    n = *cap ? *cap : 16;

    while (n < need) {
        n *= 2;
    }

    q = realloc(*p, (size_t) n * size);
    if (q == NULL) {
        return slora_err_set(b->err, SLORA_ERROR, "out of memory");
    }

    *p = q;
    *cap = n;

    return SLORA_OK;
}


/* The place in the schema, for errors: "/a" or "/a/c" appended; one too
 * long to show whole ends in dots put between characters (a property's
 * name is UTF-8, and so must the message be). */
static void
slora_json_enter(slora_json_build_t *b, const char *a, const char *c)
{
    int     n;
    size_t  k;

    n = snprintf(b->path + b->path_len, sizeof(b->path) - b->path_len,
                 c != NULL ? "%s%s/%s" : "%s%s",
                 b->path_len ? "/" : "", a, c != NULL ? c : "");

    if (n > 0) {
        b->path_len += (size_t) n;

        /* too long to show whole: its start, and 3 to 6 dots */
        if (b->path_len >= sizeof(b->path)) {
            b->path_len = sizeof(b->path) - 1;
            k = b->path_len - 3;

            while (k > 0 && !slora_regex_lead((unsigned char) b->path[k])) {
                k--;
            }

            memset(b->path + k, '.', b->path_len - k);
        }
    }
}


static void
slora_json_leave(slora_json_build_t *b, size_t len)
{
    b->path_len = len;
    b->path[len] = '\0';
}


/* Fails with fmt, whose first %s is arg when arg is given, then the
 * place; returns SLORA_JSON_NONE. */
uint32_t
slora_json_fail(slora_json_build_t *b, const char *fmt, const char *arg)
{
    char  what[SLORA_ERR_LEN];

    if (arg != NULL) {
        snprintf(what, sizeof(what), fmt, arg, b->path);

    } else {
        snprintf(what, sizeof(what), fmt, b->path);
    }

    slora_err_set(b->err, SLORA_ERROR, "%s", what);

    return SLORA_JSON_NONE;
}


/* One block: the schema, then its arrays. */
slora_json_schema_t *
slora_json_pack(slora_json_build_t *b, uint32_t root)
{
    char                 *p;
    size_t                size;
    slora_json_schema_t  *s;

    size = sizeof(slora_json_schema_t)
           + b->n_nodes * sizeof(slora_json_node_t)
           + b->n_props * sizeof(slora_json_prop_t)
           + b->n_texts * sizeof(slora_json_text_t)
           + b->n_alts * sizeof(uint32_t) + b->n_bytes + 1;
    size = (size + 7) & ~(size_t) 7;
    size += b->n_regexes;

    s = malloc(size);
    if (s == NULL) {
        slora_err_set(b->err, SLORA_ERROR, "out of memory");
        return NULL;
    }

    p = (char *) (s + 1);
    s->nodes = (const slora_json_node_t *) p;
    p = slora_json_put(p, b->nodes, b->n_nodes * sizeof(slora_json_node_t));
    s->props = (const slora_json_prop_t *) p;
    p = slora_json_put(p, b->props, b->n_props * sizeof(slora_json_prop_t));
    s->texts = (const slora_json_text_t *) p;
    p = slora_json_put(p, b->texts, b->n_texts * sizeof(slora_json_text_t));
    s->alts = (const uint32_t *) p;
    p = slora_json_put(p, b->alts, b->n_alts * sizeof(uint32_t));
    s->bytes = p;
    p = slora_json_put(p, b->bytes, b->n_bytes);
    *p = '\0';
    s->regexes = (const char *) s + size - b->n_regexes;
    slora_json_put((char *) s->regexes, b->regexes, b->n_regexes);
    s->n_nodes = b->n_nodes;
    s->root = root;
    s->raw = 0;
    s->size = size;
    s->triggers = 0;
    s->n_triggers = 0;
    s->trigger_ends = 0;
    s->tag_first = 0;

    return s;
}


static char *
slora_json_put(char *p, const void *from, size_t size)
{
    if (size) {
        memcpy(p, from, size);
    }

    return p + size;
}


void
slora_json_build_free(slora_json_build_t *b)
{
    free(b->nodes);
    free(b->props);
    free(b->texts);
    free(b->alts);
    free(b->bytes);
    free(b->regexes);
    free(b->memo);
    free(b->settled);
}
