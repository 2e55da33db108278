/*
 * slora_json_literals.c: a schema object's enum and const (the first
 * pass of slora_json_schema.c hands them here), and the scan for NUL
 * characters that a schema's text and a request's are refused for.
 *
 * The one idea: JSON Schema takes every keyword of an object together,
 * so a value of an enum must also be of its type, within its lengths,
 * bounds and counts, and equal to its const. The values are filtered by
 * those keywords, each kept as its compact JSON text for the automaton
 * to match; a keyword that cannot be checked against a value (an
 * object's properties, a pattern) is refused, never dropped.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json_build.h"


/* Keywords beside enum or const that their values are not checked
 * against (and format, where it is held as a pattern). */
static const char  *slora_json_unchecked[] = {
    "properties", "required", "additionalProperties", "items", "pattern",
    NULL
};


/* The names of type, in the order of slora_json_rules_t's bits. */
static const char  *slora_json_types[] = {
    "string", "number", "integer", "boolean", "null", "object", "array",
    NULL
};


/* What a value of enum or const must meet besides. */
typedef struct {
    const cJSON  *one;          /* const's value, beside enum; or NULL */
    uint32_t      types;        /* bit k: slora_json_types[k]; 0: any */
    uint32_t      bounded;      /* bit i: bound[i] holds */
    double        bound[4];     /* as slora_json_bounds */
    uint32_t      min_len;      /* a string's, in characters */
    uint32_t      max_len;
    uint32_t      min_items;    /* an array's */
    uint32_t      max_items;
} slora_json_rules_t;


static int slora_json_rules(slora_json_build_t *b, const cJSON *sch,
    slora_json_rules_t *r);
static int slora_json_meets(const slora_json_rules_t *r, const cJSON *v);
static int slora_json_is_type(const cJSON *v, int type);
static int slora_json_exact(const cJSON *value);


/*
 * enum's values (or const's value alone), each matched as its compact
 * JSON text: those that meet the object's other keywords too, as JSON
 * Schema takes them all together (equal to const, of type, within the
 * lengths, bounds and counts of their own type). What is not checked
 * against a value is refused; so is an object that leaves no value.
 */
uint32_t
slora_json_compile_literals(slora_json_build_t *b, const cJSON *sch)
{
    int                  n, k;
    uint32_t             first;
    const cJSON         *values, *v;
    slora_json_rules_t   r;

    values = cJSON_GetObjectItemCaseSensitive(sch, "enum");

    if (values != NULL
        && (!cJSON_IsArray(values) || cJSON_GetArraySize(values) == 0))
    {
        return slora_json_fail(b, "enum must be an array of values (at %s)",
                               NULL);
    }

    n = values != NULL ? cJSON_GetArraySize(values) : 1;

    if (n > SLORA_JSON_CHOICES_MAX) {
        return slora_json_fail(b, "an enum of more than 64 values is not "
                               "supported (at %s)", NULL);
    }

    if (slora_json_rules(b, sch, &r) != SLORA_OK) {
        return SLORA_JSON_NONE;
    }

    if (r.one != NULL && !slora_json_exact(r.one)) {
        return slora_json_fail(b, "enum and const numbers must be below "
                               "2^53 in magnitude (at %s)", NULL);
    }

    if (slora_json_grow(b, (void **) &b->texts, &b->cap_texts,
                        b->n_texts + (uint32_t) n, sizeof(slora_json_text_t))
        != SLORA_OK)
    {
        return SLORA_JSON_NONE;
    }

    first = b->n_texts;
    k = 0;

    for (v = values != NULL ? values->child
             : cJSON_GetObjectItemCaseSensitive(sch, "const");
         v != NULL;
         v = values != NULL ? v->next : NULL)
    {
        if (!slora_json_exact(v)) {
            return slora_json_fail(b, "enum and const numbers must be "
                                   "below 2^53 in magnitude (at %s)", NULL);
        }

        if (!slora_json_meets(&r, v)) {
            continue;
        }

        if (slora_json_text(b, v, &b->texts[first + k]) != SLORA_OK) {
            return SLORA_JSON_NONE;
        }

        k++;
    }

    if (k == 0) {
        return slora_json_fail(b, "no value of enum or const satisfies the "
                               "other keywords (at %s)", NULL);
    }

    b->n_texts = first + (uint32_t) k;

    return slora_json_node(b, SLORA_JSON_K_LITERAL, (uint32_t) k, first);
}


/* The keywords beside enum or const, read into r: SLORA_OK, or failed
 * on one that is not checked against a value or is not well formed
 * (as where it shapes a value alone). */
static int
slora_json_rules(slora_json_build_t *b, const cJSON *sch,
    slora_json_rules_t *r)
{
    int           i, k, n;
    const cJSON  *it, *type, *t;

    for (i = 0; slora_json_unchecked[i] != NULL; i++) {
        if (cJSON_GetObjectItemCaseSensitive(sch, slora_json_unchecked[i])
            != NULL)
        {
            slora_json_fail(b, "%s beside enum or const is not supported "
                            "(at %s)", slora_json_unchecked[i]);
            return SLORA_ERROR;
        }
    }

    if (slora_json_format(sch) != NULL) {
        slora_json_fail(b, "%s beside enum or const is not supported "
                        "(at %s)", "format");
        return SLORA_ERROR;
    }

    memset(r, 0, sizeof(slora_json_rules_t));
    r->max_len = SLORA_JSON_NONE;
    r->max_items = SLORA_JSON_NONE;

    if (cJSON_GetObjectItemCaseSensitive(sch, "enum") != NULL) {
        r->one = cJSON_GetObjectItemCaseSensitive(sch, "const");
    }

    type = cJSON_GetObjectItemCaseSensitive(sch, "type");

    if (type != NULL && !cJSON_IsString(type) && !cJSON_IsArray(type)) {
        slora_json_fail(b, "type must be a string or an array of them "
                        "(at %s)", NULL);
        return SLORA_ERROR;
    }

    n = cJSON_IsArray(type) ? cJSON_GetArraySize(type) : 1;

    if (cJSON_IsArray(type) && (n == 0 || n > 8)) {
        slora_json_fail(b, "type as an array must name 1 to 8 types "
                        "(at %s)", NULL);
        return SLORA_ERROR;
    }

    for (t = cJSON_IsArray(type) ? type->child : type; t != NULL;
         t = cJSON_IsArray(type) ? t->next : NULL)
    {
        if (!cJSON_IsString(t)) {
            slora_json_fail(b, "type as an array must hold strings "
                            "(at %s)", NULL);
            return SLORA_ERROR;
        }

        for (k = 0; slora_json_types[k] != NULL; k++) {
            if (strcmp(t->valuestring, slora_json_types[k]) == 0) {
                break;
            }
        }

        if (slora_json_types[k] == NULL) {
            slora_json_fail(b, "type \"%s\" is not a JSON Schema type "
                            "(at %s)", t->valuestring);
            return SLORA_ERROR;
        }

        r->types |= 1u << k;
    }

    for (i = 0; slora_json_bounds[i] != NULL; i++) {
        it = cJSON_GetObjectItemCaseSensitive(sch, slora_json_bounds[i]);

        if (it == NULL) {
            continue;
        }

        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
            slora_json_fail(b, "%s must be a number (at %s)",
                            slora_json_bounds[i]);
            return SLORA_ERROR;
        }

        r->bounded |= 1u << i;
        r->bound[i] = it->valuedouble;
    }

    if (slora_json_count(b, sch, "minLength", &r->min_len) != SLORA_OK
        || slora_json_count(b, sch, "maxLength", &r->max_len) != SLORA_OK
        || slora_json_count(b, sch, "minItems", &r->min_items) != SLORA_OK
        || slora_json_count(b, sch, "maxItems", &r->max_items) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/* 1 when v meets r: a string's length counted in characters, as the
 * automaton counts them (each a code point, however it is written). */
static int
slora_json_meets(const slora_json_rules_t *r, const cJSON *v)
{
    int                   k, i;
    double                x;
    uint32_t              len;
    const unsigned char  *p;

    if (r->one != NULL && !cJSON_Compare(v, r->one, 1)) {
        return 0;
    }

    if (r->types != 0) {
        for (k = 0; slora_json_types[k] != NULL; k++) {
            if ((r->types & (1u << k)) && slora_json_is_type(v, k)) {
                break;
            }
        }

        if (slora_json_types[k] == NULL) {
            return 0;
        }
    }

    if (cJSON_IsString(v)) {
        len = 0;

        for (p = (const unsigned char *) v->valuestring; *p; p++) {
            len += (*p & 0xc0) != 0x80;
        }

        return len >= r->min_len && len <= r->max_len;
    }

    if (cJSON_IsArray(v)) {
        len = (uint32_t) cJSON_GetArraySize(v);

        return len >= r->min_items && len <= r->max_items;
    }

    if (cJSON_IsNumber(v)) {
        x = v->valuedouble;

        for (i = 0; i < 4; i++) {
            if (!(r->bounded & (1u << i))) {
                continue;
            }

            if ((i == 0 && x < r->bound[i]) || (i == 1 && x > r->bound[i])
                || (i == 2 && x <= r->bound[i])
                || (i == 3 && x >= r->bound[i]))
            {
                return 0;
            }
        }
    }

    return 1;
}


/* 1 when v is of the type slora_json_types[type]. */
static int
slora_json_is_type(const cJSON *v, int type)
{
    switch (type) {
    case 0:
        return cJSON_IsString(v);
    case 1:
        return cJSON_IsNumber(v);
    case 2:
        return cJSON_IsNumber(v) && floor(v->valuedouble) == v->valuedouble;
    case 3:
        return cJSON_IsBool(v);
    case 4:
        return cJSON_IsNull(v);
    case 5:
        return cJSON_IsObject(v);
    default:
        return cJSON_IsArray(v);
    }
}


/*
 * Whether value's compact text is the schema's own: cJSON keeps a number
 * as a double, so an integer from 2^53 on (9007199254740993) would be
 * matched as its neighbour (...992) and a number past a double's range
 * as null; a number of 2^53 or more, anywhere in the value, is refused
 * rather than the answer held to another.
 */
static int
slora_json_exact(const cJSON *value)
{
    const cJSON  *it;

    if (cJSON_IsNumber(value)) {
        return isfinite(value->valuedouble)
               && fabs(value->valuedouble) < 9007199254740992.0;
    }

    for (it = value->child; it != NULL; it = it->next) {
        if (!slora_json_exact(it)) {
            return 0;
        }
    }

    return 1;
}


int
slora_json_holds_nul(const char *text)
{
    size_t  len;

    len = strlen(text);

    return slora_json_find_nul(text, len) < len;
}


size_t
slora_json_find_nul(const char *text, size_t len)
{
    int     in;
    size_t  i;

    in = 0;

    for (i = 0; i < len; i++) {
        if (text[i] == '\0') {
            return i;
        }

        if (text[i] == '"') {
            in = !in;

        } else if (in && text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && len - i >= 6
                && memcmp(text + i + 2, "0000", 4) == 0)
            {
                return i;
            }

            /* the escaped character, a quote or a backslash included */
            i++;
        }
    }

    return len;
}
