/*
 * test_json_depth.c: constrained output at the automaton's depth limit
 * (SLORA_JSON_DEPTH_MAX open containers, slora_json.h).
 *
 * A recursive schema lets the model nest as deep as it likes; at the
 * limit, a value that must open a container no longer fits. Each case
 * drives the automaton along a text that nests past the limit, byte by
 * byte as far as it is taken, and asserts that no state on the way is a
 * dead end (not done, and no byte but a blank taken: the mask would
 * allow no token and the answer would stop there); then that a text
 * which closes everything at the deepest place the schema fits is taken
 * whole, and that the byte which would open a value too deep to end is
 * refused.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "slora_json.h"


typedef struct {
    const char  *schema;
    const char  *unit;          /* repeated to nest */
    int          units;         /* how many times */
    const char  *tail;          /* after the units: more nesting */
    const char  *name;
} depth_case_t;


static const depth_case_t  cases[] = {
    { "{\"type\": \"object\", \"properties\": {\"c\": {\"$ref\": \"#\"}}}",
      "{\"c\":", SLORA_JSON_DEPTH_MAX + 8, "",
      "an optional property of the object itself" },
    { "{\"type\": \"object\", \"properties\": {\"c\": {\"$ref\": \"#\"},"
      " \"v\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}}},"
      " \"required\": [\"v\"]}",
      "{\"c\":", SLORA_JSON_DEPTH_MAX + 8, "",
      "a required array beside the recursion" },
    { "{\"type\": \"object\", \"additionalProperties\": {\"$ref\": \"#\"}}",
      "{\"k\":", SLORA_JSON_DEPTH_MAX + 8, "", "a map of maps" },
    { "{\"type\": \"array\", \"items\": {\"anyOf\": [{\"$ref\": \"#\"},"
      " {\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"array\","
      " \"minItems\": 1, \"items\": {\"type\": \"null\"}}},"
      " \"required\": [\"v\"]}]}}",
      "[", SLORA_JSON_DEPTH_MAX - 1, "{\"v\":",
      "an object that must hold an array, in arrays" },
};


static int stuck(const slora_json_t *j);
static int drive(const slora_json_schema_t *s, const depth_case_t *dc);
static int takes(const slora_json_schema_t *s, const char *text,
    int *done);
static char *repeat(const char *head, const char *unit, int times,
    const char *mid, const char *closer, int closers);


int
main(void)
{
    int                   i, at, done;
    char                 *text;
    size_t                k;
    slora_err_t           err;
    slora_json_schema_t  *s;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        s = slora_json_schema_parse(cases[k].schema,
                                    strlen(cases[k].schema), &err);
        if (s == NULL) {
            BAIL_OUT("%s: %s", cases[k].name, err.msg);
        }

        at = drive(s, &cases[k]);
        is_int(at, -1, "%s: no dead end nesting to the limit (byte %d "
               "stuck)", cases[k].name, at);

        slora_json_schema_free(s);
    }

    /* the deepest each schema fits, closed, is whole; one deeper not */
    s = slora_json_schema_parse(cases[0].schema, strlen(cases[0].schema),
                                &err);
    text = repeat("", "{\"c\":", SLORA_JSON_DEPTH_MAX - 1, "{", "}",
                  SLORA_JSON_DEPTH_MAX);
    ok(takes(s, text, &done) && done, "%d objects nested, closed: whole",
       SLORA_JSON_DEPTH_MAX);
    free(text);
    text = repeat("", "{\"c\":", SLORA_JSON_DEPTH_MAX, "", "", 0);
    ok(!takes(s, text, &done), "a key whose object would be the %dth: "
       "refused", SLORA_JSON_DEPTH_MAX + 1);
    free(text);
    slora_json_schema_free(s);

    s = slora_json_schema_parse(cases[1].schema, strlen(cases[1].schema),
                                &err);
    text = repeat("", "{\"c\":", SLORA_JSON_DEPTH_MAX - 2, "{\"v\":[1]}",
                  ",\"v\":[]}", SLORA_JSON_DEPTH_MAX - 2);
    ok(takes(s, text, &done) && done, "the array at the %dth level: "
       "whole", SLORA_JSON_DEPTH_MAX);
    free(text);
    text = repeat("", "{\"c\":", SLORA_JSON_DEPTH_MAX - 1, "{", "", 0);
    ok(!takes(s, text, &done), "an object that would hold its array at "
       "the %dth level: refused", SLORA_JSON_DEPTH_MAX + 1);
    free(text);
    slora_json_schema_free(s);

    s = slora_json_schema_parse(cases[2].schema, strlen(cases[2].schema),
                                &err);
    text = repeat("", "{\"k\":", SLORA_JSON_DEPTH_MAX - 1, "{}", "}",
                  SLORA_JSON_DEPTH_MAX - 1);
    ok(takes(s, text, &done) && done, "%d maps nested, closed: whole",
       SLORA_JSON_DEPTH_MAX);
    free(text);
    text = repeat("", "{\"k\":", SLORA_JSON_DEPTH_MAX - 1, "{\"", "", 0);
    ok(!takes(s, text, &done), "a key in the %dth map: refused",
       SLORA_JSON_DEPTH_MAX);
    free(text);
    slora_json_schema_free(s);

    s = slora_json_schema_parse(cases[3].schema, strlen(cases[3].schema),
                                &err);
    text = repeat("", "[", SLORA_JSON_DEPTH_MAX - 2, "{\"v\":[null]}", "]",
                  SLORA_JSON_DEPTH_MAX - 2);
    ok(takes(s, text, &done) && done, "the object and its array at the "
       "%dth level: whole", SLORA_JSON_DEPTH_MAX);
    free(text);
    text = repeat("", "[", SLORA_JSON_DEPTH_MAX - 1, "{", "", 0);
    ok(!takes(s, text, &done), "the object whose array would be the "
       "%dth container: refused", SLORA_JSON_DEPTH_MAX + 1);
    free(text);
    slora_json_schema_free(s);

    /* JSON mode nests to the limit as it did */
    for (i = 0; i < 2; i++) {
        text = repeat("", "{\"a\":", SLORA_JSON_DEPTH_MAX - 1,
                      i ? "{\"b\":[]}" : "{\"b\":1}", "}",
                      SLORA_JSON_DEPTH_MAX - 1);
        ok(takes(NULL, text, &done) == !i && done == !i, "JSON mode: %d "
           "objects, the last holding %s", SLORA_JSON_DEPTH_MAX,
           i ? "an array: refused" : "a number: whole");
        free(text);
    }

    done_testing();
}


/* 1 when j is not done and takes no byte but a blank. */
static int
stuck(const slora_json_t *j)
{
    int           c;
    char          b;
    slora_json_t  k;

    if (slora_json_done(j)) {
        return 0;
    }

    for (c = 0; c < 256; c++) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }

        b = (char) c;
        slora_json_copy(&k, j);

        if (slora_json_feed(&k, &b, 1)) {
            return 0;
        }
    }

    return 1;
}


/* Drives an automaton along units of dc, then its tail, as far as they
 * are taken: the first byte at which the state is stuck, or -1. */
static int
drive(const slora_json_schema_t *s, const depth_case_t *dc)
{
    int           at;
    char         *text;
    size_t        i, len;
    slora_json_t  j, k;

    text = repeat("", dc->unit, dc->units, dc->tail, "", 0);
    len = strlen(text);
    at = -1;
    slora_json_init(&j, s);

    for (i = 0; i <= len; i++) {
        if (stuck(&j)) {
            at = (int) i;
            break;
        }

        if (i == len) {
            break;
        }

        slora_json_copy(&k, &j);

        if (!slora_json_feed(&k, &text[i], 1)) {
            break;
        }

        slora_json_copy(&j, &k);
    }

    free(text);

    return at;
}


static int
takes(const slora_json_schema_t *s, const char *text, int *done)
{
    int           rc;
    slora_json_t  j;

    slora_json_init(&j, s);
    rc = slora_json_feed(&j, text, strlen(text));
    *done = slora_json_done(&j);

    return rc;
}


/* head, unit times, mid, closer closers times: a new string. */
static char *
repeat(const char *head, const char *unit, int times, const char *mid,
    const char *closer, int closers)
{
    int     i;
    char   *text, *p;
    size_t  len;

    len = strlen(head) + strlen(unit) * (size_t) times + strlen(mid)
          + strlen(closer) * (size_t) closers;
    text = malloc(len + 1);
    if (text == NULL) {
        BAIL_OUT("out of memory");
    }

    p = text;
    p += sprintf(p, "%s", head);

    for (i = 0; i < times; i++) {
        p += sprintf(p, "%s", unit);
    }

    p += sprintf(p, "%s", mid);

    for (i = 0; i < closers; i++) {
        p += sprintf(p, "%s", closer);
    }

    return text;
}
