/*
 * slora_pyjson.h: JSON written as Python's json.dumps writes it, which is
 * what a chat template's tojson filter puts into the prompt (transformers
 * renders templates with json.dumps, non-ASCII kept, keys in the order
 * given). A model tuned on its template's text reads tools, calls and
 * results best in exactly those bytes.
 *
 * The one idea: one writer over a cJSON tree with Python's two layouts:
 * without indent the separators ", " and ": " on one line; with indent a
 * line per member, indent spaces a level, "," and ": ". Strings escape
 * '"', '\\' and the control bytes (\n, \r, \t, \b, \f, else \u00xx) and
 * keep every other byte. A key an object names twice is written once, at
 * its first place with its last value, as json.loads leaves the dict.
 * cJSON keeps numbers as doubles: a whole one is
 * written as an integer (a float such as 2.0 in the client's JSON comes
 * out as 2), others in the shortest form that reads back the same, as
 * Python's repr.
 */

#ifndef SLORA_PYJSON_H
#define SLORA_PYJSON_H


#include <stddef.h>

#include <cjson/cJSON.h>


typedef void (*slora_pyjson_put_pt)(void *data, const char *s, size_t n);


/* A text grown by slora_pyjson_append (a put): zeroed to begin; buf is
 * malloc()ed, failed set when memory ran out (then buf is to be freed
 * all the same). */
typedef struct {
    char        *buf;
    size_t       n;
    size_t       cap;
    int          failed;
} slora_pyjson_text_t;


/* v as json.dumps(v, indent=indent, ensure_ascii=False) writes it
 * (indent < 0: no indent), through put. */
void slora_pyjson_write(const cJSON *v, int indent, slora_pyjson_put_pt put,
    void *data);

/* s[0..n) as a JSON string, quotes included, through put. */
void slora_pyjson_string(const char *s, size_t n, slora_pyjson_put_pt put,
    void *data);

/* A put that appends s[0..n) to the slora_pyjson_text_t data. */
void slora_pyjson_append(void *data, const char *s, size_t n);


#endif /* SLORA_PYJSON_H */
