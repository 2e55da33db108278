/*
 * test_pyjson.c: JSON written as Python's json.dumps(json.loads(text),
 * ensure_ascii=False) writes it (engine/slora_pyjson.c), each expected
 * text Python's own for the client's text given.
 *
 *   (a) a key an object names twice: one member, at the key's first
 *       place, with its last value; in an object of a few members and
 *       of many (the writer sorts those), with indent and without.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_pyjson.h"


/* text parsed by cJSON, then written; NULL when it is no JSON. */
static char *
dumps(const char *text, int indent)
{
    cJSON                *v;
    slora_pyjson_text_t   t;

    v = cJSON_Parse(text);

    if (v == NULL) {
        return NULL;
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


int
main(void)
{
    test_duplicate_keys();

    done_testing();
}
