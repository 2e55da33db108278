/*
 * slora_pyjson.c: JSON as Python's json.dumps writes it (slora_pyjson.h).
 *
 * The one idea: the writer walks the tree once and hands every piece to
 * a put callback, so the chat renderer writes straight into its buffer
 * and the parser into a growing text (slora_pyjson_append).
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_pyjson.h"


typedef struct {
    const cJSON  *it;
    size_t        i;
} slora_pyjson_key_t;


static void slora_pyjson_value(const cJSON *v, int indent, int level,
    slora_pyjson_put_pt put, void *data);
static void slora_pyjson_number(double d, slora_pyjson_put_pt put,
    void *data);
static void slora_pyjson_newline(int indent, int level,
    slora_pyjson_put_pt put, void *data);
static const cJSON **slora_pyjson_members(const cJSON *v,
    const cJSON **small);
static slora_pyjson_key_t *slora_pyjson_sorted(const cJSON *v,
    slora_pyjson_key_t *few, size_t *k);
static size_t slora_pyjson_group_end(const slora_pyjson_key_t *keys,
    size_t k, size_t i);
static int slora_pyjson_key_cmp(const void *a, const void *b);
static void slora_pyjson_walk(cJSON *v, const char **p, const char *end,
    int *ok);
static void slora_pyjson_keep(cJSON *v, const char *s, size_t n, int *ok);
static size_t slora_pyjson_float(double d, char *buf, size_t cap);


#define SLORA_PYJSON_SMALL  16


void
slora_pyjson_write(const cJSON *v, int indent, slora_pyjson_put_pt put,
    void *data)
{
    slora_pyjson_value(v, indent, 0, put, data);
}


static void
slora_pyjson_value(const cJSON *v, int indent, int level,
    slora_pyjson_put_pt put, void *data)
{
    int            first, object;
    size_t         i;
    const cJSON   *it, *val, **vals, *small[SLORA_PYJSON_SMALL];

    if (cJSON_IsString(v)) {
        slora_pyjson_string(v->valuestring, strlen(v->valuestring), put,
                            data);
        return;
    }

    if (cJSON_IsNumber(v)) {
        if (v->valuestring != NULL) {
            put(data, v->valuestring, strlen(v->valuestring));

        } else {
            slora_pyjson_number(v->valuedouble, put, data);
        }

        return;
    }

    if (cJSON_IsTrue(v) || cJSON_IsFalse(v)) {
        put(data, cJSON_IsTrue(v) ? "true" : "false",
            cJSON_IsTrue(v) ? 4 : 5);
        return;
    }

    object = cJSON_IsObject(v);

    if (!object && !cJSON_IsArray(v)) {
        put(data, "null", 4);
        return;
    }

    if (v->child == NULL) {
        put(data, object ? "{}" : "[]", 2);
        return;
    }

    vals = object ? slora_pyjson_members(v, small) : NULL;

    put(data, object ? "{" : "[", 1);
    first = 1;

    for (it = v->child, i = 0; it != NULL; it = it->next, i++) {
        val = vals != NULL ? vals[i] : it;

        if (val == NULL) {
            continue;
        }

        if (!first) {
            put(data, indent >= 0 ? "," : ", ", indent >= 0 ? 1 : 2);
        }

        first = 0;
        slora_pyjson_newline(indent, level + 1, put, data);

        if (object) {
            slora_pyjson_string(it->string, strlen(it->string), put, data);
            put(data, ": ", 2);
        }

        slora_pyjson_value(val, indent, level + 1, put, data);
    }

    if (vals != NULL && vals != small) {
        free(vals);
    }

    slora_pyjson_newline(indent, level, put, data);
    put(data, object ? "}" : "]", 1);
}


/* What json.loads makes of an object's members: a key named twice is one
 * member of the dict, at the key's first place, holding its last value.
 * Returns the value to write at each place (NULL: none, the key came
 * before), in small where it fits; NULL when memory ran out (then every
 * member is written, as cJSON holds them). */
static const cJSON **
slora_pyjson_members(const cJSON *v, const cJSON **small)
{
    size_t               i, j, k;
    const cJSON         **vals;
    slora_pyjson_key_t  *keys, few[SLORA_PYJSON_SMALL];

    keys = slora_pyjson_sorted(v, few, &k);
    if (keys == NULL) {
        return NULL;
    }

    vals = k <= SLORA_PYJSON_SMALL ? small : malloc(k * sizeof(const cJSON *));

    if (vals != NULL) {
        for (i = 0; i < k; i++) {
            vals[i] = NULL;
        }

        for (i = 0; i < k; i = j) {
            j = slora_pyjson_group_end(keys, k, i);
            vals[keys[i].i] = keys[j - 1].it;
        }
    }

    if (keys != few) {
        free(keys);
    }

    return vals;
}


/* v's members sorted by key, then by place (in few where they fit, else
 * malloc()ed; NULL when memory ran out), *k their count: a key's members
 * side by side, so that grouping them is n log n however many a client's
 * object has. */
static slora_pyjson_key_t *
slora_pyjson_sorted(const cJSON *v, slora_pyjson_key_t *few, size_t *k)
{
    size_t               i;
    const cJSON         *it;
    slora_pyjson_key_t  *keys;

    for (it = v->child, *k = 0; it != NULL; it = it->next) {
        (*k)++;
    }

    keys = *k <= SLORA_PYJSON_SMALL ? few
           : malloc(*k * sizeof(slora_pyjson_key_t));

    if (keys == NULL) {
        return NULL;
    }

    for (it = v->child, i = 0; it != NULL; it = it->next, i++) {
        keys[i].it = it;
        keys[i].i = i;
    }

    qsort(keys, *k, sizeof(slora_pyjson_key_t), slora_pyjson_key_cmp);

    return keys;
}


/* The end of the group of keys[i]'s key in the sorted keys[0..k). */
static size_t
slora_pyjson_group_end(const slora_pyjson_key_t *keys, size_t k, size_t i)
{
    size_t  j;

    for (j = i + 1;
         j < k && strcmp(keys[j].it->string, keys[i].it->string) == 0;
         j++)
    {
        /* the key's later members */
    }

    return j;
}


static int
slora_pyjson_key_cmp(const void *a, const void *b)
{
    int                        c;
    const slora_pyjson_key_t  *x = a, *y = b;

    c = strcmp(x->it->string, y->it->string);

    if (c != 0) {
        return c;
    }

    return x->i < y->i ? -1 : x->i > y->i;
}


static void
slora_pyjson_newline(int indent, int level, slora_pyjson_put_pt put,
    void *data)
{
    int  i;

    if (indent < 0) {
        return;
    }

    put(data, "\n", 1);

    for (i = 0; i < indent * level; i++) {
        put(data, " ", 1);
    }
}


void
slora_pyjson_string(const char *s, size_t n, slora_pyjson_put_pt put,
    void *data)
{
    char           esc[8];
    size_t         i, from;
    unsigned char  c;

    put(data, "\"", 1);

    for (i = 0, from = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }

        put(data, s + from, i - from);
        from = i + 1;

        switch (c) {
        case '"':  put(data, "\\\"", 2); break;
        case '\\': put(data, "\\\\", 2); break;
        case '\n': put(data, "\\n", 2); break;
        case '\r': put(data, "\\r", 2); break;
        case '\t': put(data, "\\t", 2); break;
        case '\b': put(data, "\\b", 2); break;
        case '\f': put(data, "\\f", 2); break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(data, esc, 6);
            break;
        }
    }

    put(data, s + from, n - from);
    put(data, "\"", 1);
}


/* A whole number as an integer; another in the fewest significant
 * digits that read back the same double (%g's exponent form, 1e-05,
 * is Python repr's too: it takes it below 1e-4, and a number that is
 * not whole never reaches repr's 1e16). */
static void
slora_pyjson_number(double d, slora_pyjson_put_pt put, void *data)
{
    int   p, n;
    char  buf[40];

    if (d == floor(d) && fabs(d) < 9.2e18) {
        n = snprintf(buf, sizeof(buf), "%lld", (long long) d);
        put(data, buf, (size_t) n);
        return;
    }

    if (!isfinite(d)) {
        put(data, "null", 4);
        return;
    }

    for (p = 1; p <= 17; p++) {
        n = snprintf(buf, sizeof(buf), "%.*g", p, d);

        if (strtod(buf, NULL) == d) {
            break;
        }
    }

    put(data, buf, (size_t) n);
}


int
slora_pyjson_dict(cJSON *v)
{
    size_t               i, j, k;
    cJSON               *it, *last, **place, *few_places[SLORA_PYJSON_SMALL];
    slora_pyjson_key_t  *keys, few[SLORA_PYJSON_SMALL];

    for (it = v->child; it != NULL; it = it->next) {
        if (slora_pyjson_dict(it) != 0) {
            return -1;
        }
    }

    if (!cJSON_IsObject(v) || v->child == NULL) {
        return 0;
    }

    keys = slora_pyjson_sorted(v, few, &k);
    place = k <= SLORA_PYJSON_SMALL ? few_places
            : malloc(k * sizeof(cJSON *));

    if (keys == NULL || place == NULL) {
        if (keys != few) {
            free(keys);
        }
        if (place != few_places) {
            free(place);
        }
        return -1;
    }

    for (i = 0; i < k; i++) {
        place[i] = NULL;
    }

    /* a key's last member goes to its first's place, the others are
     * dropped */
    for (i = 0; i < k; i = j) {
        j = slora_pyjson_group_end(keys, k, i);
        place[keys[i].i] = (cJSON *) keys[j - 1].it;

        for ( /* void */ ; i < j - 1; i++) {
            it = (cJSON *) keys[i].it;
            it->next = NULL;                /* it alone, not its chain */
            it->prev = NULL;
            cJSON_Delete(it);
        }
    }

    v->child = NULL;
    last = NULL;

    for (i = 0; i < k; i++) {
        if (place[i] == NULL) {
            continue;
        }

        place[i]->prev = last;
        place[i]->next = NULL;

        if (last == NULL) {
            v->child = place[i];

        } else {
            last->next = place[i];
        }

        last = place[i];
    }

    v->child->prev = last;

    if (keys != few) {
        free(keys);
    }

    if (place != few_places) {
        free(place);
    }

    return 0;
}


void
slora_pyjson_numbers(cJSON *root, const char *text, size_t len)
{
    int          ok;
    const char  *p;

    ok = 1;
    p = text;
    slora_pyjson_walk(root, &p, text + len, &ok);
}


/* The tree in the text's order (cJSON keeps every member, a key named
 * twice too): each number takes the text's next number. */
static void
slora_pyjson_walk(cJSON *v, const char **p, const char *end, int *ok)
{
    cJSON       *it;
    const char  *s, *q;

    if (!*ok) {
        return;
    }

    if (cJSON_IsNumber(v)) {
        for (q = *p; q < end; q++) {
            if (*q == '"') {
                for (q++; q < end && *q != '"'; q++) {
                    q += *q == '\\';
                }

                continue;
            }

            if (*q == '-' || (*q >= '0' && *q <= '9')) {
                break;
            }
        }

        for (s = q; q < end && strchr("0123456789+-eE.", *q) != NULL
                    && *q != '\0'; q++)
        {
            /* cJSON's number characters */
        }

        *p = q;

        if (s == q) {
            *ok = 0;
            return;
        }

        slora_pyjson_keep(v, s, (size_t) (q - s), ok);
        return;
    }

    for (it = v->child; it != NULL; it = it->next) {
        slora_pyjson_walk(it, p, end, ok);
    }
}


/* json.loads makes s[0..n) an int, exact however long, or a float: kept
 * as the text to write where the double alone would be written
 * otherwise (an int of over 15 digits, a float that is whole: 2.0, 1e16,
 * -0.0, or out of range: 1e400 is Infinity). */
static void
slora_pyjson_keep(cJSON *v, const char *s, size_t n, int *ok)
{
    char    num[64], out[64], *k;
    size_t  len;
    double  d;

    if (n >= sizeof(num)) {
        return;
    }

    memcpy(num, s, n);
    num[n] = '\0';
    d = strtod(num, NULL);

    if (d != v->valuedouble) {
        *ok = 0;                    /* not the text it was parsed from */
        return;
    }

    if (strpbrk(num, ".eE") == NULL) {
        if (n - (num[0] == '-') <= 15) {
            return;
        }

        memcpy(out, num, n + 1);
        len = n;

    } else {
        if (isfinite(d) && d != floor(d)) {
            return;
        }

        len = slora_pyjson_float(d, out, sizeof(out));
    }

    k = cJSON_malloc(len + 1);

    if (k == NULL) {
        return;
    }

    memcpy(k, out, len + 1);
    v->valuestring = k;
}


/* d as Python's repr writes a float: the fewest digits that read back
 * the same, positional from 1e-4 up to below 1e16 with at least one
 * digit after the point, else d.ddde+XX. */
static size_t
slora_pyjson_float(double d, char *buf, size_t cap)
{
    int     p, x, m, i, k;
    char    e[40], dig[20], *c;

    if (isinf(d)) {
        return (size_t) snprintf(buf, cap, "%s", d < 0 ? "-Infinity"
                                                       : "Infinity");
    }

    for (p = 0; p < 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p, d);

        if (strtod(e, NULL) == d) {
            break;
        }
    }

    c = strchr(e, 'e');
    x = atoi(c + 1);

    if (x < -4 || x >= 16) {
        return (size_t) snprintf(buf, cap, "%s", e);
    }

    for (m = 0, i = 0; e + i < c; i++) {
        if (e[i] >= '0' && e[i] <= '9') {
            dig[m++] = e[i];
        }
    }

    k = 0;

    if (e[0] == '-') {
        buf[k++] = '-';
    }

    if (x < 0) {
        buf[k++] = '0';
        buf[k++] = '.';

        for (i = 0; i < -x - 1; i++) {
            buf[k++] = '0';
        }

        memcpy(buf + k, dig, m);
        k += m;

    } else {
        for (i = 0; i <= x; i++) {
            buf[k++] = i < m ? dig[i] : '0';
        }

        buf[k++] = '.';

        if (m <= x + 1) {
            buf[k++] = '0';

        } else {
            memcpy(buf + k, dig + x + 1, m - x - 1);
            k += m - x - 1;
        }
    }

    buf[k] = '\0';

    return (size_t) k;
}


void
slora_pyjson_append(void *data, const char *s, size_t n)
{
    char                *p;
    size_t               cap;
    slora_pyjson_text_t  *b = data;

    if (b->failed || n == 0) {
        return;
    }

    if (b->n + n > b->cap) {
        cap = b->cap ? b->cap : 256;

        while (cap < b->n + n) {
            cap *= 2;
        }

        p = realloc(b->buf, cap);

        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->buf = p;
        b->cap = cap;
    }

    memcpy(b->buf + b->n, s, n);
    b->n += n;
}
