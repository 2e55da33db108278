/*
 * test_pyjson.c: JSON written as Python's json.dumps(json.loads(text),
 * ensure_ascii=False) writes it (engine/slora_pyjson.c), each expected
 * text Python's own for the client's text given.
 *
 *   (a) a key an object names twice: one member, at the key's first
 *       place, with its last value; in an object of a few members and
 *       of many (the writer sorts those), with indent and without.
 *   (b) numbers as json.loads reads the client's text, kept by
 *       slora_pyjson_numbers: an int exact past 2^53, a float that is
 *       whole written as a float (2.0, 1e+16, -0.0), one past the
 *       doubles as Infinity; without it, the double alone.
 *   (c) slora_pyjson_dict: the tree itself made a dict's, so that
 *       cJSON's lookups read a key's last value, in objects of a few
 *       members and of many, nested, the members after a dropped one
 *       still linked both ways.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_pyjson.h"


/* text parsed by cJSON (its numbers' text kept where numbers), then
 * written; NULL when it is no JSON. */
static char *
dumps_as(const char *text, int indent, int numbers)
{
    cJSON                *v, *d;
    slora_pyjson_text_t   t;

    v = cJSON_Parse(text);

    if (v == NULL) {
        return NULL;
    }

    if (numbers) {
        slora_pyjson_numbers(v, text, strlen(text));
        d = cJSON_Duplicate(v, 1);          /* a copy keeps the text */
        cJSON_Delete(v);
        v = d;
    }

    memset(&t, 0, sizeof(t));
    slora_pyjson_write(v, indent, slora_pyjson_append, &t);
    slora_pyjson_append(&t, "", 1);
    cJSON_Delete(v);

    if (t.failed) {
        free(t.buf);
        return NULL;
    }

    return t.buf;
}


static char *
dumps(const char *text, int indent)
{
    return dumps_as(text, indent, 1);
}


static void
check(const char *text, int indent, const char *want, const char *name)
{
    char  *got;

    got = dumps(text, indent);
    is_str(got, want, "%s", name);
    free(got);
}


static void
test_duplicate_keys(void)
{
    int   i;
    char  in[1024], want[1024], *p, *w;

    check("{\"a\":1,\"b\":2,\"a\":3}", -1, "{\"a\": 3, \"b\": 2}",
          "a key twice: its last value at its first place");

    check("{\"a\":1,\"a\":2,\"a\":[],\"b\":{\"c\":1,\"c\":{}}}", 2,
          "{\n  \"a\": [],\n  \"b\": {\n    \"c\": {}\n  }\n}",
          "a key three times, and twice in a nested object, with indent");

    check("{\"x\":1,\"y\":2,\"x\":3,\"y\":4}", -1, "{\"x\": 3, \"y\": 4}",
          "two keys twice each keep their order");

    check("[{\"a\":1},{\"a\":2}]", -1, "[{\"a\": 1}, {\"a\": 2}]",
          "the same key in two objects is no duplicate");

    /* 40 members, keys k0..k19 each twice, the second time value 1 */
    p = in;
    w = want;
    p += sprintf(p, "{");
    w += sprintf(w, "{");

    for (i = 0; i < 40; i++) {
        p += sprintf(p, "%s\"k%d\":%d", i ? "," : "", i % 20, i / 20);
    }

    for (i = 0; i < 20; i++) {
        w += sprintf(w, "%s\"k%d\": 1", i ? ", " : "", i);
    }

    sprintf(p, "}");
    sprintf(w, "}");

    check(in, -1, want, "an object of many members: each key once, "
          "its last value");
}


static void
test_numbers(void)
{
    char  *got;

    check("[2.0, 1.0e2, 120e-1, 0.0, -0.0, -0, 1e15, 1E16, 1e16, 1.5e300]",
          -1, "[2.0, 100.0, 12.0, 0.0, -0.0, 0, 1000000000000000.0, "
          "1e+16, 1e+16, 1.5e+300]",
          "whole floats as floats, in repr's two forms");

    check("[9007199254740993, -123456789012345678901, 1234567890123456]",
          -1, "[9007199254740993, -123456789012345678901, 1234567890123456]",
          "ints past 2^53 exactly");

    check("[1e400, -1e999, 0.1, 1e-7, 2, 0.5]", -1,
          "[Infinity, -Infinity, 0.1, 1e-07, 2, 0.5]",
          "past the doubles: Infinity; others as they were");

    check("{\"a\":\"1.0 -2\",\"b\":[1.0,{\"c\":\"\\\"3\",\"d\":4.0}],"
          "\"e\":5}", 2, "{\n  \"a\": \"1.0 -2\",\n  \"b\": [\n    1.0,\n"
          "    {\n      \"c\": \"\\\"3\",\n      \"d\": 4.0\n    }\n  ],\n"
          "  \"e\": 5\n}",
          "digits in strings are no numbers");

    check("{\"k\":1.0,\"k\":2.0}", -1, "{\"k\": 2.0}",
          "a key twice: its last number's text");

    got = dumps_as("[2.0, 9007199254740993]", -1, 0);
    is_str(got, "[2, 9007199254740992]",
           "without the text kept: the double alone");
    free(got);
}


/* (c) */
static void
test_dict(void)
{
    int     i, n, fwd, back;
    char    in[4096], *p, *got;
    cJSON  *v, *it;

    v = cJSON_Parse("{\"a\":1,\"b\":{\"c\":1,\"c\":2},\"a\":3,\"d\":4}");
    ok(v != NULL && slora_pyjson_dict(v) == 0, "a dict made");
    got = v != NULL ? cJSON_PrintUnformatted(v) : NULL;
    is_str(got, "{\"a\":3,\"b\":{\"c\":2},\"d\":4}",
           "each key once, at its first place, its last value, nested too");
    ok(v != NULL
       && cJSON_GetObjectItemCaseSensitive(v, "a")->valuedouble == 3,
       "a lookup reads the last value");
    free(got);
    cJSON_Delete(v);

    /* 300 members: k0..k99 three times, values 0, 1, 2 */
    p = in;
    p += sprintf(p, "{");

    for (i = 0; i < 300; i++) {
        p += sprintf(p, "%s\"k%d\":%d", i ? "," : "", i % 100, i / 100);
    }

    sprintf(p, "}");
    v = cJSON_Parse(in);
    ok(v != NULL && slora_pyjson_dict(v) == 0, "a dict of many members");

    n = 0;
    fwd = 1;
    back = 1;

    for (it = v != NULL ? v->child : NULL; it != NULL; it = it->next) {
        fwd &= it->valuedouble == 2 && atoi(it->string + 1) == n;
        back &= it == v->child ? it->prev != NULL && it->prev->next == NULL
                               : it->prev->next == it;
        n++;
    }

    ok(n == 100 && fwd && back, "100 members, k0..k99 in order, each its "
       "last value, linked both ways (%d)", n);
    cJSON_Delete(v);
}


int
main(void)
{
    test_duplicate_keys();
    test_numbers();
    test_dict();

    done_testing();
}
