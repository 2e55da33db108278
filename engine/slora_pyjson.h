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
 * cJSON keeps numbers as doubles: a whole one is written as an integer,
 * others in the shortest form that reads back the same, as Python's
 * repr; a number whose client text json.loads reads as more (2.0 is a
 * float, written 2.0; 2^53 + 1 an exact int) is written from that text
 * where slora_pyjson_numbers kept it on the tree.
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

/* Keeps on the numbers of root, just parsed by cJSON from text[0..len)
 * and not changed since, what json.loads would read in the client's text
 * beyond the double cJSON holds: an int of more than 15 digits exactly
 * (2^53 + 1 is not 2^53), a float that is whole as a float (2.0, 1e16,
 * -0.0; 1e400 is Infinity), as json.dumps writes it, in the number's
 * valuestring (cJSON frees and copies it with the number). */
void slora_pyjson_numbers(cJSON *root, const char *text, size_t len);

/* Makes every object of v what json.loads makes it, a dict: a key named
 * twice is one member, at the key's first place, holding its last value
 * (the others deleted), so that a request reads what Python's servers
 * read (cJSON's lookups take a key's first member). After
 * slora_pyjson_numbers, which pairs numbers by the text's order. 0, or
 * -1 when memory ran out (v is then as it was where not yet done). */
int slora_pyjson_dict(cJSON *v);

/* A put that appends s[0..n) to the slora_pyjson_text_t data. */
void slora_pyjson_append(void *data, const char *s, size_t n);


#endif /* SLORA_PYJSON_H */
