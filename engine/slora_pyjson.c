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


static void slora_pyjson_value(const cJSON *v, int indent, int level,
    slora_pyjson_put_pt put, void *data);
static void slora_pyjson_number(double d, slora_pyjson_put_pt put,
    void *data);
static void slora_pyjson_newline(int indent, int level,
    slora_pyjson_put_pt put, void *data);


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
    int           first, object;
    const cJSON  *it;

    if (cJSON_IsString(v)) {
        slora_pyjson_string(v->valuestring, strlen(v->valuestring), put,
                            data);
        return;
    }

    if (cJSON_IsNumber(v)) {
        slora_pyjson_number(v->valuedouble, put, data);
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

    put(data, object ? "{" : "[", 1);
    first = 1;

    for (it = v->child; it != NULL; it = it->next) {
        if (!first) {
            put(data, indent >= 0 ? "," : ", ", indent >= 0 ? 1 : 2);
        }

        first = 0;
        slora_pyjson_newline(indent, level + 1, put, data);

        if (object) {
            slora_pyjson_string(it->string, strlen(it->string), put, data);
            put(data, ": ", 2);
        }

        slora_pyjson_value(it, indent, level + 1, put, data);
    }

    slora_pyjson_newline(indent, level, put, data);
    put(data, object ? "}" : "]", 1);
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
