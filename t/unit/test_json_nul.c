/*
 * test_json_nul.c: a schema whose strings hold a NUL (slora_json_schema.c).
 *
 * cJSON ends a string at an escaped NUL, so that a property "a\u0000b"
 * would be read, and written by the model, as "a"; an enum value, a
 * required name or a pattern would be cut the same way. Such a schema
 * is refused, with the byte where the NUL is; an escaped backslash
 * before "u0000" is no NUL and is taken, its key written as it is.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "slora_json.h"


static const char  *refused[] = {
    "{\"type\":\"object\",\"properties\":{\"a\\u0000b\":"
    "{\"type\":\"integer\"}}}",
    "{\"type\":\"object\",\"properties\":{\"a\\u0000b\":"
    "{\"type\":\"integer\"}},\"required\":[\"a\\u0000b\"]}",
    "{\"type\":\"object\",\"properties\":{\"v\":{\"enum\":"
    "[\"x\\u0000y\",\"z\"]}}}",
    "{\"type\":\"object\",\"properties\":{\"v\":{\"const\":"
    "{\"k\\u0000\":1}}}}",
    "{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"string\","
    "\"pattern\":\"^a\\u0000|b$\"}}}",
    "{\"type\":\"object\",\"properties\":{\"\\\\\\u0000\":{}}}",
};


static const char  raw[] =
    "{\"type\":\"object\",\"properties\":{\"a\0b\":{}}}";


int
main(void)
{
    int                   rc;
    size_t                k;
    const char           *text;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    for (k = 0; k < sizeof(refused) / sizeof(refused[0]); k++) {
        err.msg[0] = '\0';
        s = slora_json_schema_parse(refused[k], strlen(refused[k]), &err);
        ok(s == NULL && strstr(err.msg, "NUL") != NULL
           && strstr(err.msg, "at byte") != NULL,
           "%s is refused: %s", refused[k], err.msg);
        slora_json_schema_free(s);
    }

    /* the key cut at its NUL is not what the model may write */
    text = refused[1];
    s = slora_json_schema_parse(text, strlen(text), &err);
    slora_json_init(&j, s);
    rc = s != NULL && slora_json_feed(&j, "{\"a\":1}", 7)
         && slora_json_done(&j);
    ok(!rc, "{\"a\":1} is not an answer to a schema asking for \"a\\u0000b\"");
    slora_json_schema_free(s);

    /* a raw NUL byte inside a string, given with its length */
    err.msg[0] = '\0';
    s = slora_json_schema_parse(raw, sizeof(raw) - 1, &err);
    ok(s == NULL && strstr(err.msg, "NUL") != NULL,
       "a raw NUL byte in a key is refused: %s", err.msg);
    slora_json_schema_free(s);

    /* "\\u0000" is a backslash, then "u0000": no NUL */
    text = "{\"type\":\"object\",\"properties\":{\"a\\\\u0000\":"
           "{\"type\":\"integer\"}},\"required\":[\"a\\\\u0000\"],"
           "\"description\":\"\\\\\\\\u0000\"}";
    err.msg[0] = '\0';
    s = slora_json_schema_parse(text, strlen(text), &err);
    ok(s != NULL, "an escaped backslash before u0000 is taken %s", err.msg);

    if (s != NULL) {
        slora_json_init(&j, s);
        rc = slora_json_feed(&j, "{\"a\\\\u0000\":1}", 14)
             && slora_json_done(&j);
        ok(rc, "its key is written whole");
        slora_json_schema_free(s);
    }

    done_testing();
}
