/*
 * test_json_literals.c: enum and const beside the other keywords of
 * their schema object (slora_json_schema.c).
 *
 * JSON Schema takes every keyword of an object together: a value of an
 * enum must also be of its type, within its lengths, bounds and counts,
 * and equal to its const. Each case puts the schema under a required
 * property "v" of an object and asserts which values the automaton
 * takes whole and which it refuses; then that what cannot be checked
 * against the values is refused with its keyword, as is a schema whose
 * keywords leave no value. Last, that keywords are told apart by case.
 * A keyword given twice is its last value's, as Python reads the text.
 * And a refusal that quotes the schema's text only in part (a value, a
 * long place) cuts it between characters: the message stays UTF-8.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "slora_json.h"


typedef struct {
    const char  *schema;
    const char  *value;
    int          admits;
} literal_case_t;


typedef struct {
    const char  *schema;
    const char  *says;
} literal_bad_t;


static const literal_case_t  cases[] = {
    /* type */
    { "{\"type\":\"string\",\"enum\":[\"a\",1]}", "\"a\"", 1 },
    { "{\"type\":\"string\",\"enum\":[\"a\",1]}", "1", 0 },
    { "{\"type\":\"integer\",\"enum\":[1,1.5,\"x\"]}", "1", 1 },
    { "{\"type\":\"integer\",\"enum\":[1,1.5,\"x\"]}", "1.5", 0 },
    { "{\"type\":\"integer\",\"enum\":[1,1.5,\"x\"]}", "\"x\"", 0 },
    { "{\"type\":\"number\",\"enum\":[1,1.5,\"x\"]}", "1.5", 1 },
    { "{\"type\":\"number\",\"enum\":[1,1.5,\"x\"]}", "\"x\"", 0 },
    { "{\"type\":[\"number\",\"null\"],\"enum\":[1.5,null,\"x\"]}", "null",
      1 },
    { "{\"type\":[\"number\",\"null\"],\"enum\":[1.5,null,\"x\"]}", "1.5",
      1 },
    { "{\"type\":[\"number\",\"null\"],\"enum\":[1.5,null,\"x\"]}", "\"x\"",
      0 },
    { "{\"type\":\"boolean\",\"enum\":[true,\"true\"]}", "true", 1 },
    { "{\"type\":\"boolean\",\"enum\":[true,\"true\"]}", "\"true\"", 0 },
    { "{\"type\":\"object\",\"enum\":[{\"a\":1},[1]]}", "{\"a\":1}", 1 },
    { "{\"type\":\"object\",\"enum\":[{\"a\":1},[1]]}", "[1]", 0 },
    { "{\"type\":\"array\",\"enum\":[{\"a\":1},[1]]}", "{\"a\":1}", 0 },
    { "{\"type\":\"null\",\"const\":null}", "null", 1 },

    /* lengths, in characters (code points), not bytes */
    { "{\"enum\":[\"abc\",\"x\"],\"maxLength\":2}", "\"abc\"", 0 },
    { "{\"enum\":[\"abc\",\"x\"],\"maxLength\":2}", "\"x\"", 1 },
    { "{\"enum\":[\"\\u00e9t\\u00e9\",\"abcd\"],\"maxLength\":3}",
      "\"\xc3\xa9t\xc3\xa9\"", 1 },
    { "{\"enum\":[\"\\u00e9t\\u00e9\",\"abcd\"],\"maxLength\":3}",
      "\"abcd\"", 0 },
    { "{\"enum\":[\"ab\",\"\\u00e9\"],\"minLength\":2}", "\"\xc3\xa9\"",
      0 },
    { "{\"enum\":[\"ab\",\"\\u00e9\"],\"minLength\":2}", "\"ab\"", 1 },
    { "{\"enum\":[\"a\\nb\",\"abcd\"],\"maxLength\":3}", "\"a\\nb\"", 1 },

    /* bounds */
    { "{\"enum\":[1,5,9],\"minimum\":4}", "1", 0 },
    { "{\"enum\":[1,5,9],\"minimum\":4}", "5", 1 },
    { "{\"enum\":[1,5,9],\"minimum\":4}", "9", 1 },
    { "{\"enum\":[1,5,9],\"exclusiveMaximum\":9}", "9", 0 },
    { "{\"enum\":[1,5,9],\"exclusiveMaximum\":9}", "5", 1 },
    { "{\"enum\":[1,5,9],\"exclusiveMinimum\":1,\"maximum\":5}", "1", 0 },
    { "{\"enum\":[1,5,9],\"exclusiveMinimum\":1,\"maximum\":5}", "5", 1 },
    { "{\"enum\":[1,5,9],\"exclusiveMinimum\":1,\"maximum\":5}", "9", 0 },
    { "{\"enum\":[-0.5,0.25],\"type\":\"number\",\"minimum\":0}", "-0.5",
      0 },
    { "{\"enum\":[\"a\",5],\"minimum\":4}", "\"a\"", 1 },

    /* counts */
    { "{\"enum\":[[1],[1,2,3]],\"maxItems\":2}", "[1]", 1 },
    { "{\"enum\":[[1],[1,2,3]],\"maxItems\":2}", "[1,2,3]", 0 },
    { "{\"enum\":[[1],[1,2,3]],\"minItems\":2}", "[1]", 0 },
    { "{\"enum\":[[1],[1,2,3]],\"minItems\":2}", "[1,2,3]", 1 },

    /* a keyword given twice is its last, as Python's json reads it */
    { "{\"type\":\"string\",\"type\":\"integer\"}", "5", 1 },
    { "{\"type\":\"string\",\"type\":\"integer\"}", "\"x\"", 0 },
    { "{\"const\":\"a\",\"const\":\"b\"}", "\"b\"", 1 },
    { "{\"const\":\"a\",\"const\":\"b\"}", "\"a\"", 0 },
    { "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
      "\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}", "{\"a\":5}", 1 },
    { "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"},"
      "\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}", "{\"a\":\"x\"}",
      0 },

    /* const and enum together */
    { "{\"enum\":[\"a\",\"b\"],\"const\":\"b\"}", "\"a\"", 0 },
    { "{\"enum\":[\"a\",\"b\"],\"const\":\"b\"}", "\"b\"", 1 },
    { "{\"enum\":[{\"x\":[1,2]},{\"x\":[1]}],\"const\":{\"x\":[1]}}",
      "{\"x\":[1,2]}", 0 },
    { "{\"enum\":[{\"x\":[1,2]},{\"x\":[1]}],\"const\":{\"x\":[1]}}",
      "{\"x\":[1]}", 1 },
    { "{\"const\":\"x\",\"maxLength\":1}", "\"x\"", 1 },

    /* what Pydantic writes, and annotations beside enum */
    { "{\"const\":\"a\",\"enum\":[\"a\"],\"type\":\"string\"}", "\"a\"", 1 },
    { "{\"enum\":[\"red\",\"blue\"],\"type\":\"string\",\"title\":\"C\","
      "\"description\":\"a colour\",\"default\":\"red\","
      "\"examples\":[\"blue\"]}", "\"blue\"", 1 },
    { "{\"enum\":[\"red\",\"blue\"],\"type\":\"string\",\"title\":\"C\","
      "\"description\":\"a colour\",\"default\":\"red\","
      "\"examples\":[\"blue\"]}", "\"green\"", 0 },
    { "{\"enum\":[\"::1\"],\"type\":\"string\",\"format\":\"ipv6\"}",
      "\"::1\"", 1 },

    /* keywords are case-sensitive: "Properties", "MinLength" and "Items"
     * are none, and leave any value */
    { "{\"Properties\":{\"a\":{\"type\":\"string\"}}}", "1", 1 },
    { "{\"MinLength\":3}", "1", 1 },
    { "{\"Items\":{\"type\":\"string\"}}", "true", 1 },
    { "{\"Enum\":[\"a\"],\"type\":\"string\"}", "\"b\"", 1 },
};


static const literal_bad_t  bad[] = {
    { "{\"enum\":[{\"a\":1}],\"properties\":{\"a\":{}}}",
      "properties beside enum or const is not supported (at "
      "#/properties/v)" },
    { "{\"const\":{\"a\":1},\"required\":[\"a\"]}",
      "required beside enum or const is not supported" },
    { "{\"enum\":[{\"a\":1}],\"additionalProperties\":false}",
      "additionalProperties beside enum or const is not supported" },
    { "{\"enum\":[[1]],\"items\":{\"type\":\"string\"}}",
      "items beside enum or const is not supported" },
    { "{\"enum\":[\"a\"],\"pattern\":\"^b$\"}",
      "pattern beside enum or const is not supported" },
    { "{\"enum\":[\"a\"],\"type\":\"string\",\"format\":\"date\"}",
      "format beside enum or const is not supported" },
    { "{\"enum\":[\"a\"],\"type\":\"text\"}",
      "type \"text\" is not a JSON Schema type" },
    { "{\"enum\":[\"a\"],\"type\":[\"string\",1]}",
      "type as an array must hold strings" },
    { "{\"enum\":[\"a\"],\"type\":[]}",
      "type as an array must name 1 to 8 types" },
    { "{\"enum\":[\"a\"],\"type\":3}",
      "type must be a string or an array of them" },
    { "{\"enum\":[1],\"minimum\":\"x\"}", "minimum must be a number" },
    { "{\"enum\":[\"a\"],\"maxLength\":-1}",
      "maxLength must be a whole number" },
    { "{\"enum\":[1,2],\"const\":3}",
      "no value of enum or const satisfies the other keywords (at "
      "#/properties/v)" },
    { "{\"const\":1,\"type\":\"string\"}",
      "no value of enum or const satisfies the other keywords" },
    { "{\"enum\":[1,5],\"type\":\"integer\",\"minimum\":6}",
      "no value of enum or const satisfies the other keywords" },
    { "{\"enum\":[],\"type\":\"string\"}", "enum must be an array" },
    { "{\"enum\":\"a\"}", "enum must be an array" },
    { "{\"enum\":[1,9007199254740993],\"type\":\"string\"}",
      "below 2^53 in magnitude" },
};


static slora_json_schema_t *wrap(const char *schema, slora_err_t *err);
static int utf8(const char *s);


int
main(void)
{
    int                   rc;
    char                  text[256];
    size_t                k;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        s = wrap(cases[k].schema, &err);

        if (s == NULL) {
            ok(0, "%s takes %s: the schema is refused: %s",
               cases[k].schema, cases[k].value, err.msg);
            continue;
        }

        snprintf(text, sizeof(text), "{\"v\":%s}", cases[k].value);
        slora_json_init(&j, s);
        rc = slora_json_feed(&j, text, strlen(text)) && slora_json_done(&j);

        is_int(rc, cases[k].admits, "%s %s %s", cases[k].schema,
               cases[k].admits ? "takes" : "refuses", cases[k].value);

        slora_json_schema_free(s);
    }

    for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        err.msg[0] = '\0';
        s = wrap(bad[k].schema, &err);
        ok(s == NULL && strstr(err.msg, bad[k].says) != NULL,
           "%s is refused: %s", bad[k].schema, err.msg);
        slora_json_schema_free(s);
    }

    /* a value quoted in 40 bytes, its quote and 38 'a' before an e
     * acute; a place cut at 160 bytes through a name of e acutes */
    s = wrap("{\"oneOf\":[{\"const\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
             "\xc3\xa9\"},{\"enum\":[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
             "\xc3\xa9\"]}]}", &err);
    ok(s == NULL && strstr(err.msg, "admit \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                           "aaaaaaa is not") != NULL && utf8(err.msg),
       "a value quoted in part is cut before a character: %s", err.msg);

    memcpy(text, "{\"properties\":{\"x", 17);
    for (k = 17; k < 217; k += 2) {
        memcpy(text + k, "\xc3\xa9", 2);
    }
    strcpy(text + k, "\":{\"type\":\"text\"}}}");

    s = wrap(text, &err);
    ok(s == NULL && strstr(err.msg, "type \"text\"") != NULL
       && strstr(err.msg, "...") != NULL && utf8(err.msg),
       "a place cut short is cut before a character: %s", err.msg);

    return done_testing();
}


/* 1 when s is well-formed UTF-8. */
static int
utf8(const char *s)
{
    size_t  i, n;

    for (i = 0; s[i] != '\0'; i += n) {
        n = slora_utf8_valid((const uint8_t *) s + i, strlen(s + i));
        if (n == 0) {
            return 0;
        }
    }

    return 1;
}


/* schema as the required property "v" of an object's. */
static slora_json_schema_t *
wrap(const char *schema, slora_err_t *err)
{
    char  text[1024];

    snprintf(text, sizeof(text), "{\"type\":\"object\",\"properties\":"
             "{\"v\":%s},\"required\":[\"v\"]}", schema);

    return slora_json_schema_parse(text, strlen(text), err);
}
