/*
 * test_json_schema.c: JSON schemas (slora_json.h's schema compiler, the
 * automaton under a schema, the engine with response_format
 * json_schema).
 *
 *   (a) schemas the compiler refuses, each with the keyword or the
 *       reason and the place in its message.
 *   (b) a validator written here for the subset (types, declared keys
 *       in their order, each once, required ones present, lengths in
 *       characters, item counts, enum and const by value, anyOf, $ref),
 *       and a generator of documents a schema admits: on a schema using
 *       every part, 3000 generated documents are taken whole (done only
 *       at their last byte, every prefix taken); 3000 of their
 *       mutations are taken whole only when the validator accepts them.
 *   (c) the mask under a schema against trying every token of SmolLM2's
 *       vocabulary, at states along generated documents.
 *   (e) an array at the root (the list of tool calls that tool_choice
 *       "required" asks for): its items and counts held, done at its
 *       ']', nothing after; the mask agrees along such lists.
 *   (d) the engine on SmolLM2 (CPU): greedy and sampled answers under a
 *       schema are documents the validator accepts (or, cut at
 *       max_tokens, prefixes the automaton takes); a schema the compiler
 *       refuses is refused at submit with its reason.
 *
 * guided_choice and lazy schemas are in test_json_choice.c.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "tap.h"
#include "chat_run.h"
#include "mask_check.h"
#include "slora_json.h"
#include "slora_engine.h"
#include "slora_sampler.h"


#define DOC_MAX  8192


/* Every part: an object of declared keys (some optional), a string with
 * lengths, an integer, a number, a boolean, null through anyOf, an enum
 * of mixed values, a const, an array with counts, a map, any value, a
 * recursive definition through $ref, and two tagged unions (objects told
 * apart by their first key's constant: strings, and 1 beside 12). */
static const char  schema_all[] =
    "{\"$defs\": {\"Node\": {\"type\": \"object\", \"properties\": {"
    "  \"v\": {\"type\": \"integer\"},"
    "  \"next\": {\"anyOf\": [{\"$ref\": \"#/$defs/Node\"},"
    "                         {\"type\": \"null\"}]}},"
    "  \"required\": [\"v\", \"next\"]}},"
    " \"type\": \"object\", \"title\": \"all\", \"properties\": {"
    "  \"name\": {\"type\": \"string\", \"minLength\": 2,"
    "            \"maxLength\": 5, \"description\": \"d\"},"
    "  \"age\": {\"type\": \"integer\", \"minimum\": -5,"
    "          \"maximum\": 120},"
    "  \"count\": {\"type\": \"integer\", \"exclusiveMinimum\": 0.5},"
    "  \"score\": {\"type\": [\"number\", \"null\"]},"
    "  \"ok\": {\"type\": \"boolean\"},"
    "  \"kind\": {\"enum\": [\"a\", \"ab\", 1, 12, null, [1, 2], {\"x\": 1}]},"
    "  \"fixed\": {\"const\": \"\\u00e9t\\u00e9\"},"
    "  \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\","
    "            \"maxLength\": 3}, \"minItems\": 1, \"maxItems\": 3},"
    "  \"meta\": {\"type\": \"object\","
    "            \"additionalProperties\": {\"type\": \"integer\"}},"
    "  \"free\": {},"
    "  \"list\": {\"$ref\": \"#/$defs/Node\"},"
    "  \"empty\": {\"type\": \"object\", \"properties\": {},"
    "             \"additionalProperties\": false},"
    "  \"pet\": {\"anyOf\": [{\"type\": \"object\", \"properties\": {"
    "              \"kind\": {\"const\": \"cat\"}, \"lives\": {"
    "              \"type\": \"integer\", \"minimum\": 1,"
    "              \"maximum\": 9}}, \"required\": [\"kind\", \"lives\"]},"
    "            {\"type\": \"object\", \"properties\": {"
    "              \"kind\": {\"const\": \"dog\"},"
    "              \"good\": {\"type\": \"boolean\"}},"
    "             \"required\": [\"kind\"]},"
    "            {\"type\": \"null\"}]},"
    "  \"shape\": {\"anyOf\": [{\"type\": \"object\", \"properties\": {"
    "              \"n\": {\"const\": 1}, \"r\": {\"type\": \"number\"}},"
    "              \"required\": [\"n\", \"r\"]},"
    "            {\"type\": \"object\", \"properties\": {"
    "              \"n\": {\"const\": 12}}, \"required\": [\"n\"]}]}},"
    " \"required\": [\"name\", \"ok\", \"kind\", \"tags\", \"list\"],"
    " \"additionalProperties\": false}";


typedef struct {
    slora_rng_t   rng;
    char         *out;
    size_t        len;
    size_t        cap;
    const cJSON  *doc;                  /* the schema, for $ref */
} gen_t;


static void test_refusals(void);
static void test_against_validator(void);
static void test_integer_bounds(void);
static void test_number_bounds(void);
static int finishable(const slora_json_t *j, const char *tries);
static void test_array_root(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);
static void test_mask_smollm2(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);
static void test_engine(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);
static int valid(const cJSON *sch, const cJSON *root, const cJSON *val);
static int valid_type(const cJSON *sch, const cJSON *root, const cJSON *val,
    const char *t);
static const cJSON *deref(const cJSON *root, const cJSON *sch);
static int gen(gen_t *g, const cJSON *sch, int depth);
static void put(gen_t *g, const char *s);
static void blank(gen_t *g);


int
main(void)
{
    slora_tokenizer_t   *tok;
    slora_json_vocab_t  *v;

    test_refusals();
    test_against_validator();
    test_integer_bounds();
    test_number_bounds();

    v = mask_check_vocab(&tok);

    test_mask_smollm2(tok, v);
    test_array_root(tok, v);
    test_engine(tok, v);

    slora_json_vocab_free(v);
    slora_tokenizer_free(tok);

    return done_testing();
}


/* (a) */
static void
test_refusals(void)
{
    size_t                i;
    char                  big[SLORA_JSON_SCHEMA_MAX + 64];
    slora_err_t           err;
    slora_json_schema_t  *s;

    static const struct { const char *schema; const char *says; }  bad[] = {
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\","
          "\"multipleOf\":2}}}", "\"multipleOf\" is not supported (at "
          "#/properties/a)" },
        { "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\","
          "\"minimum\":1,\"exclusiveMaximum\":1}}}", "admit no number" },
        { "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\","
          "\"exclusiveMinimum\":0,\"maximum\":1e-45}}}",
          "admit no number of at most 19 digits and 40 decimals" },
        { "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\","
          "\"minimum\":1e20}}}",
          "admit no number of at most 19 digits and 40 decimals" },
        { "{\"type\":\"object\",\"properties\":{\"n\":{\"maximum\":0}}}",
          "maximum without \"type\" \"integer\" or \"number\"" },
        { "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"number\","
          "\"exclusiveMinimum\":true}}}",
          "exclusiveMinimum must be a number" },
        { "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\","
          "\"minimum\":2.5,\"exclusiveMaximum\":3}}}", "admit no integer" },
        { "{\"type\":\"string\"}", "root must be an object or an array" },
        { "{\"anyOf\":[{\"type\":\"object\"},{\"type\":\"null\"}]}",
          "root must be an object" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":["
          "{\"type\":\"object\"},{\"type\":\"object\",\"properties\":{}}]}}}",
          "objects must share a first required property" },
        { "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"t\":"
          "{\"const\":1}},\"required\":[\"t\"]},{\"type\":\"object\","
          "\"properties\":{\"t\":{\"const\":1}},\"required\":[\"t\"]}]}",
          "objects must share a first required property" },
        { "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"t\":"
          "{\"const\":1}},\"required\":[\"t\"]},{\"type\":\"object\","
          "\"properties\":{\"u\":{\"const\":2}},\"required\":[\"u\"]}]}",
          "objects must share a first required property" },
        { "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"t\":"
          "{\"const\":1}}},{\"type\":\"object\","
          "\"properties\":{\"t\":{\"const\":2}},\"required\":[\"t\"]}]}",
          "objects must share a first required property" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":["
          "{\"type\":\"string\"},{\"enum\":[\"x\"]}]}}}", "begin with '\"'" },
        { "{\"type\":\"object\",\"required\":[\"b\"],\"properties\":{\"a\":"
          "{}}}", "\"b\", which is not among properties" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":"
          "\"#/$defs/X\"}}}", "names nothing" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":"
          "\"http://x/s.json\"}}}", "not a place in this schema" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/A\""
          "}},\"$defs\":{\"A\":{\"$ref\":\"#/$defs/B\"},\"B\":{\"$ref\":"
          "\"#/$defs/A\"}}}", "cycle" },
        { "{\"type\":\"object\",\"properties\":{\"a\":false}}",
          "admits no value" },
        { "{\"type\":\"object\",\"properties\":{\"id\":{\"enum\":"
          "[1,9007199254740993]}}}", "below 2^53 in magnitude" },
        { "{\"type\":\"object\",\"properties\":{\"x\":{\"const\":"
          "{\"a\":[1e400]}}}}", "below 2^53 in magnitude" },
        { "{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":"
          "\"#\"}},\"required\":[\"next\"]}", "no value of finite size" },
        { "{\"type\":\"object\",\"properties\":{\"c\":{\"$ref\":"
          "\"#/$defs/N\"}},\"$defs\":{\"N\":{\"type\":\"object\","
          "\"properties\":{\"n\":{\"$ref\":\"#/$defs/N\"}},"
          "\"required\":[\"n\"]}}}", "no value of finite size" },
        { "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"},"
          "\"minItems\":1}", "no value of finite size" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":["
          "{\"type\":\"null\"},{\"$ref\":\"#/$defs/N\"}]}},\"$defs\":"
          "{\"N\":{\"type\":\"array\",\"items\":{\"$ref\":"
          "\"#/$defs/N\"},\"minItems\":2}}}", "no value of finite size" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\","
          "\"minItems\":3,\"maxItems\":2}}}", "minItems is above maxItems" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"date\"}}}",
          "\"date\" is not a JSON Schema type" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
          "\"maxLength\":-1}}}", "maxLength must be a whole number" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"allOf\":[{},{}]}}}",
          "allOf of other than one" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#\","
          "\"type\":\"string\"}}}", "$ref beside other keywords" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"anyOf\":["
          "{\"type\":\"string\"},{\"type\":\"integer\"}],\"oneOf\":["
          "{\"type\":\"integer\"}]}}}", "anyOf beside other keywords" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"oneOf\":["
          "{\"type\":\"number\"},{\"type\":\"integer\"}]}}}",
          "oneOf of a number and an integer" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"oneOf\":["
          "{\"type\":\"string\"},{\"anyOf\":[{},{\"type\":\"null\"}]}]}}}",
          "oneOf of a schema that admits any value" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"oneOf\":["
          "{\"const\":\"x\"},{\"enum\":[\"x\",\"y\"]}]}}}",
          "oneOf of two schemas that admit \"x\"" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"items\":[{}]}}}",
          "a tuple" },
        { "[1]", "must be an object or a boolean" },
        { "{\"type\":", "not JSON" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        s = slora_json_schema_parse(bad[i].schema, strlen(bad[i].schema),
                                    &err);
        ok(s == NULL && strstr(err.msg, bad[i].says) != NULL,
           "refuses schema %zu: %s", i, err.msg);
        slora_json_schema_free(s);
    }

    /* recursion with a way out: an optional or nullable self, an array
     * that may be empty; enum numbers a double holds exactly; a oneOf
     * whose alternatives admit no value in common */
    {
        static const char  *good[] = {
            "{\"type\":\"object\",\"properties\":{\"next\":"
            "{\"$ref\":\"#\"}}}",
            "{\"type\":\"object\",\"properties\":{\"next\":{\"anyOf\":"
            "[{\"$ref\":\"#\"},{\"type\":\"null\"}]}},"
            "\"required\":[\"next\"]}",
            "{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}",
            "{\"type\":\"object\",\"properties\":{\"id\":{\"enum\":"
            "[9007199254740991,-9007199254740991,0.1,1e-300]}}}",
            "{\"type\":\"object\",\"properties\":{\"kids\":{\"type\":"
            "\"array\",\"items\":{\"$ref\":\"#\"}}},"
            "\"required\":[\"kids\"]}",
            "{\"type\":\"object\",\"properties\":{\"a\":{\"oneOf\":["
            "{\"type\":\"string\"},{\"enum\":[1,1]},"
            "{\"type\":[\"array\",\"null\"]}]}}}",
        };

        for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            err.msg[0] = '\0';
            s = slora_json_schema_parse(good[i], strlen(good[i]), &err);
            ok(s != NULL, "takes schema %zu %s", i, err.msg);
            slora_json_schema_free(s);
        }
    }

    /* an enum of 65 values, a schema of more than the limit */
    {
        char  *p;
        int    k;

        p = big;
        p += sprintf(p, "{\"type\":\"object\",\"properties\":{\"a\":"
                     "{\"enum\":[0");
        for (k = 1; k < 65; k++) {
            p += sprintf(p, ",%d", k);
        }
        p += sprintf(p, "]}}}");

        s = slora_json_schema_parse(big, (size_t) (p - big), &err);
        ok(s == NULL && strstr(err.msg, "more than 64 values") != NULL,
           "an enum of 65 values is refused: %s", err.msg);

        memset(big, ' ', sizeof(big));
        memcpy(big, "{\"type\":\"object\"}", 17);
        s = slora_json_schema_parse(big, SLORA_JSON_SCHEMA_MAX + 1, &err);
        ok(s == NULL && strstr(err.msg, "at most 16384") != NULL,
           "a schema of 16385 bytes is refused: %s", err.msg);
        s = slora_json_schema_parse(big, SLORA_JSON_SCHEMA_MAX, &err);
        ok(s != NULL, "one of 16384 is taken");
        slora_json_schema_free(s);
    }
}


/* (b) */
static void
test_against_validator(void)
{
    int                   i, k, took, done, whole, agree, prefixes, mutated;
    int                   valid_docs, accepted_mut;
    char                  buf[DOC_MAX];
    size_t                n, at;
    cJSON                *sch, *val;
    gen_t                 g;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    s = slora_json_schema_parse(schema_all, strlen(schema_all), &err);
    ok(s != NULL, "the schema of every part compiles: %s",
       s == NULL ? err.msg : "");
    if (s == NULL) {
        return;
    }

    sch = cJSON_Parse(schema_all);
    slora_rng_seed(&g.rng, 7);
    g.out = buf;
    g.cap = sizeof(buf);
    g.doc = sch;
    whole = 1;
    prefixes = 1;
    valid_docs = 0;
    agree = 1;
    accepted_mut = 0;
    mutated = 0;

    for (i = 0; i < 3000; i++) {
        g.len = 0;

        if (!gen(&g, sch, 0)) {
            continue;
        }

        n = g.len;
        val = cJSON_ParseWithLength(buf, n);
        valid_docs += val != NULL && valid(sch, sch, val);
        cJSON_Delete(val);

        slora_json_init(&j, s);

        for (at = 0; at < n; at++) {
            if (!slora_json_feed(&j, buf + at, 1)
                || slora_json_done(&j) != (at == n - 1))
            {
                break;
            }
        }

        if (at != n) {
            if (whole) {
                diag("refused at byte %zu of %.*s", at, (int) n, buf);
            }
            whole = 0;
        }

        prefixes &= at == n;

        /* a mutation: a byte changed, dropped or doubled */
        k = (int) (slora_rng_next(&g.rng) % n);

        switch (slora_rng_next(&g.rng) % 3) {
        case 0:
            buf[k] = "{}[],:\"0123456789.-eEtfnul ax\\"[slora_rng_next(&g.rng)
                                                        % 30];
            break;
        case 1:
            memmove(buf + k, buf + k + 1, n - k - 1);
            n--;
            break;
        default:
            if (n + 1 < sizeof(buf)) {
                memmove(buf + k + 1, buf + k, n - k);
                n++;
            }
            break;
        }

        slora_json_init(&j, s);
        took = slora_json_feed(&j, buf, n);
        done = took && slora_json_done(&j);
        val = cJSON_ParseWithLength(buf, n);
        mutated++;

        if (done) {
            accepted_mut++;

            if (val == NULL || !valid(sch, sch, val)) {
                if (agree) {
                    diag("taken but invalid: %.*s", (int) n, buf);
                }
                agree = 0;
            }
        }

        cJSON_Delete(val);
    }

    is_int(valid_docs, 3000, "3000 generated documents: the validator "
           "accepts each");
    ok(whole && prefixes, "the automaton takes each whole, done only at its "
       "last byte");
    ok(agree, "of %d mutations it takes %d whole, each one the validator "
       "accepts", mutated, accepted_mut);
    ok(accepted_mut > 100 && accepted_mut < mutated - 100, "and it both "
       "takes and refuses some (%d of %d)", accepted_mut, mutated);

    /* written cases */
    {
        static const char  *yes[] = {
            "{\"name\":\"ab\",\"ok\":true,\"kind\":12,\"tags\":[\"x\"],"
            "\"list\":{\"v\":1,\"next\":null}}",
            "{ \"name\" : \"\\u00e9\\ud83d\\ude00\" , \"ok\":false,"
            "\"kind\":[1,2],\"tags\":[\"a\",\"b\",\"c\"],\"list\":{\"v\":-3,"
            "\"next\":{\"v\":0,\"next\":null}},\"empty\":{}}",
            "{\"name\":\"ab\",\"age\":-0,\"count\":1,\"ok\":true,"
            "\"kind\":1,\"tags\":[\"x\"],\"list\":{\"v\":1,"
            "\"next\":null}}",
            "{\"name\":\"ab\",\"age\":120,\"ok\":true,\"kind\":1,"
            "\"tags\":[\"x\"],\"list\":{\"v\":1,\"next\":null}}",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"x\"],"
            "\"list\":{\"v\":1,\"next\":null},\"pet\":{\"kind\":\"cat\","
            "\"lives\":9},\"shape\":{\"n\":1,\"r\":2.5}}",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"x\"],"
            "\"list\":{\"v\":1,\"next\":null},\"pet\": { \"kind\" : "
            "\"dog\" } ,\"shape\":{\"n\":12 }}",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"x\"],"
            "\"list\":{\"v\":1,\"next\":null},\"pet\":null,"
            "\"shape\":{\"n\":12}}",
        };
        static const char  *no[] = {
            "{\"ok\":true,\"name\":\"ab\"",         /* out of order */
            "{\"name\":\"a\"",                      /* too short */
            "{\"name\":\"abcdef\"",                 /* too long */
            "{\"name\":\"ab\",\"ok\":true,\"kind\":\"b\"",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[]",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\",\"b\","
            "\"c\",",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1.5",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1,\"next\":null}}}",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"]}",
            "{\"name\":\"ab\",\"zzz\":1",
            "{\"name\":\"ab\",\"age\":121",   /* past maximum */
            "{\"name\":\"ab\",\"age\":-6",    /* under minimum */
            "{\"name\":\"ab\",\"age\":1200",
            "{\"name\":\"ab\",\"age\":-10",
            "{\"name\":\"ab\",\"count\":0,",  /* exclusive 0.5 */
            "{\"name\":\"ab\",\"count\":-",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1,\"next\":null},\"empty\":{\"a\"",
            /* tagged unions: a tag of neither, the other's key, a
             * missing member, the tag not first, 1's member after 12 */
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1,\"next\":null},\"pet\":{\"kind\":\"cow\"",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1,\"next\":null},\"pet\":{\"kind\":\"dog\","
            "\"lives\"",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1,\"next\":null},\"pet\":{\"kind\":\"cat\"}",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1,\"next\":null},\"pet\":{\"lives\"",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1,\"next\":null},\"shape\":{\"n\":12,\"r\"",
            "{\"name\":\"ab\",\"ok\":true,\"kind\":1,\"tags\":[\"a\"],"
            "\"list\":{\"v\":1,\"next\":null},\"shape\":{\"n\":1}",
        };

        for (i = 0; i < (int) (sizeof(yes) / sizeof(yes[0])); i++) {
            slora_json_init(&j, s);
            ok(slora_json_feed(&j, yes[i], strlen(yes[i]))
               && slora_json_done(&j), "takes %s", yes[i]);
        }

        for (i = 0; i < (int) (sizeof(no) / sizeof(no[0])); i++) {
            slora_json_init(&j, s);
            ok(!slora_json_feed(&j, no[i], strlen(no[i])), "refuses %s",
               no[i]);
        }
    }

    cJSON_Delete(sch);
    slora_json_schema_free(s);
}


/* 1 when j is whole, or '}' makes it whole now or after some bytes,
 * each the first of tries that j takes (24 of them at most). */
static int
finishable(const slora_json_t *j, const char *tries)
{
    int            n;
    const char    *c;
    slora_json_t   t, u;

    if (slora_json_done(j)) {
        return 1;
    }

    slora_json_copy(&t, j);

    for (n = 0; n < 24; n++) {
        slora_json_copy(&u, &t);

        if (slora_json_feed(&u, "}", 1) && slora_json_done(&u)) {
            return 1;
        }

        for (c = tries; *c != '\0'; c++) {
            slora_json_copy(&u, &t);

            if (slora_json_feed(&u, c, 1)) {
                slora_json_copy(&t, &u);
                break;
            }
        }

        if (*c == '\0') {
            return 0;
        }
    }

    return 0;
}


/* (b) for bounded integers: every integer from -300 to 300, and those
 * at the ends of each range, is taken whole iff it lies inside; and
 * every prefix taken can still be finished (no dead end) */
static void
test_integer_bounds(void)
{
    int                   r, agree, finish;
    char                  schema[256], doc[64];
    size_t                len, at;
    int64_t               v, probe[8];
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    static const struct { const char *bounds; int64_t lo, hi; }  ranges[] = {
        { "\"minimum\":-15,\"maximum\":27", -15, 27 },
        { "\"minimum\":3,\"maximum\":3", 3, 3 },
        { "\"minimum\":-100,\"exclusiveMaximum\":-6.5", -100, -7 },
        { "\"minimum\":0,\"maximum\":9", 0, 9 },
        { "\"exclusiveMinimum\":9,\"maximum\":99", 10, 99 },
        { "\"minimum\":1000", 1000, INT64_MAX },
        { "\"maximum\":5", INT64_MIN, 5 },
        { "\"minimum\":1000000000000000,\"maximum\":1000000000000010",
          1000000000000000LL, 1000000000000010LL },
        /* past 2^53 the bound a double holds may be the written one's
         * neighbour: nothing beyond the written one is taken */
        { "\"minimum\":9007199254740993", 9007199254740994LL, INT64_MAX },
        { "\"maximum\":-9007199254740993", INT64_MIN, -9007199254740994LL },
        { "\"exclusiveMinimum\":1152921504606846976",
          1152921504606847232LL, INT64_MAX },
        { "\"exclusiveMaximum\":9223372036854775807", INT64_MIN,
          9223372036854774784LL },
        /* int64's ends, which read as 2^63 and -2^63: held there */
        { "\"minimum\":9223372036854775807", INT64_MAX, INT64_MAX },
        { "\"maximum\":-9223372036854775808", INT64_MIN, INT64_MIN },
        { "\"minimum\":-9223372036854775808,"
          "\"maximum\":9223372036854775807", INT64_MIN, INT64_MAX },
    };

    agree = 1;
    finish = 1;

    for (r = 0; r < (int) (sizeof(ranges) / sizeof(ranges[0])); r++) {
        snprintf(schema, sizeof(schema), "{\"type\":\"object\",\"required\":"
                 "[\"x\"],\"properties\":{\"x\":{\"type\":\"integer\",%s}}}",
                 ranges[r].bounds);
        s = slora_json_schema_parse(schema, strlen(schema), &err);
        if (s == NULL) {
            ok(0, "range %d compiles: %s", r, err.msg);
            continue;
        }

        probe[0] = ranges[r].lo;
        probe[1] = ranges[r].lo == INT64_MIN ? INT64_MIN : ranges[r].lo - 1;
        probe[2] = ranges[r].hi;
        probe[3] = ranges[r].hi == INT64_MAX ? INT64_MAX : ranges[r].hi + 1;
        probe[4] = INT64_MIN;
        probe[5] = INT64_MAX;
        probe[6] = ranges[r].lo / 10;
        probe[7] = ranges[r].hi / 10;

        for (v = -308; v <= 300; v++) {
            snprintf(doc, sizeof(doc), "{\"x\":%lld}",
                     (long long) (v < -300 ? probe[-301 - v] : v));
            len = strlen(doc);

            slora_json_init(&j, s);

            if ((slora_json_feed(&j, doc, len) && slora_json_done(&j))
                != ((v < -300 ? probe[-301 - v] : v) >= ranges[r].lo
                    && (v < -300 ? probe[-301 - v] : v) <= ranges[r].hi))
            {
                if (agree) {
                    diag("range %d: %s", r, doc);
                }
                agree = 0;
            }

            /* each prefix taken, and finished by some digits and '}' */
            slora_json_init(&j, s);

            for (at = 0; at < len && slora_json_feed(&j, doc + at, 1);
                 at++)
            {
                if (at >= 5 && !finishable(&j, "0123456789")) {
                    if (finish) {
                        diag("range %d: %.*s is a dead end", r,
                             (int) at + 1, doc);
                    }
                    finish = 0;
                }
            }
        }

        slora_json_schema_free(s);
    }

    ok(agree, "bounded integers: each of 609 a range is taken iff inside "
       "it, over 15 ranges (int64's ends and bounds past 2^53 among them)");
    ok(finish, "and every prefix taken can still become one inside");
}


/* (b) for bounded numbers: decimals from -20 to 20 in a few spellings
 * (trailing zeros, no fraction, -0, long fractions, an exponent) are
 * taken whole iff strtod reads them inside the bounds, without an
 * exponent (one of more than 19 significant digits only if inside);
 * every prefix taken can still be finished */
static void
test_number_bounds(void)
{
    int                   r, k, w, agree, finish, inside, taken;
    int                   long_digits;
    char                  schema[256], doc[96], num[64];
    double                x;
    size_t                len, at;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    static const struct {
        const char  *bounds;
        double       lo, hi;
        int          excl;
    }  ranges[] = {
        { "\"minimum\":0,\"maximum\":1", 0, 1, 0 },
        { "\"exclusiveMinimum\":0,\"exclusiveMaximum\":1", 0, 1, 3 },
        { "\"minimum\":-2.5,\"maximum\":3.75", -2.5, 3.75, 0 },
        { "\"minimum\":0.1,\"exclusiveMaximum\":0.3", 0.1, 0.3, 2 },
        { "\"exclusiveMinimum\":-1.05", -1.05, INFINITY, 1 },
        { "\"maximum\":-12.125", -INFINITY, -12.125, 0 },
    };

    static const char  *extra[] = {
        "0", "-0", "1", "1.0", "0.1", "0.10", "0.09999", "0.3", "0.2999999",
        "0.30000000000000004", "0.1000000000000000000001", "3.75",
        "3.7500001", "-2.5", "-2.50", "-2.5000001", "-1.05", "-1.0499",
        "-12.125", "-12.1249", "1e0", "0.5E-1", "-12.125e0", "99",
    };

    agree = 1;
    finish = 1;

    for (r = 0; r < (int) (sizeof(ranges) / sizeof(ranges[0])); r++) {
        snprintf(schema, sizeof(schema), "{\"type\":\"object\",\"required\":"
                 "[\"x\"],\"properties\":{\"x\":{\"type\":\"number\",%s}}}",
                 ranges[r].bounds);
        s = slora_json_schema_parse(schema, strlen(schema), &err);
        if (s == NULL) {
            ok(0, "range %d compiles: %s", r, err.msg);
            continue;
        }

        for (k = -20000 - (int) (sizeof(extra) / sizeof(extra[0]));
             k <= 20000; k += k < -20000 ? 1 : 3)
        {
            for (w = 0; w < 3; w++) {
                if (k < -20000) {
                    if (w > 0) {
                        break;
                    }
                    snprintf(num, sizeof(num), "%s", extra[-20001 - k]);

                } else {
                    /* k / 1000 as 3 fraction digits, 1, or trimmed */
                    snprintf(num, sizeof(num), w == 0 ? "%.3f" : w == 1
                             ? "%.1f" : "%.0f", k / 1000.0);
                }

                snprintf(doc, sizeof(doc), "{\"x\":%s}", num);
                len = strlen(doc);
                x = strtod(num, NULL);
                long_digits = strspn(num + strspn(num, "-0."), "0123456789.")
                              > 20;
                inside = strpbrk(num, "eE") == NULL
                         && ((ranges[r].excl & 1) ? x > ranges[r].lo
                                                  : x >= ranges[r].lo)
                         && ((ranges[r].excl & 2) ? x < ranges[r].hi
                                                  : x <= ranges[r].hi);

                slora_json_init(&j, s);
                taken = slora_json_feed(&j, doc, len) && slora_json_done(&j);

                /* past 19 significant digits the automaton ends a
                 * number (it may only refuse such a one) */
                if (long_digits ? taken && !inside : taken != inside) {
                    if (agree) {
                        diag("range %d: %s taken %d", r, doc, taken);
                    }
                    agree = 0;
                }

                /* each prefix taken is finished by '}' now, or after the
                 * highest digits that keep it reachable, or the point */
                slora_json_init(&j, s);

                for (at = 0; at < len && slora_json_feed(&j, doc + at, 1);
                     at++)
                {
                    if (at >= 5 && !finishable(&j, "9876543210.")) {
                        if (finish) {
                            diag("range %d: %.*s is a dead end", r,
                                 (int) at + 1, doc);
                        }
                        finish = 0;
                    }
                }
            }
        }

        slora_json_schema_free(s);
    }

    ok(agree, "bounded numbers: some 40000 decimals a range, over 6 ranges, "
       "taken iff strtod reads them inside, never with an exponent");
    ok(finish, "and every prefix taken can still become one inside");

    /* at the digits' limits: zeros after the point up to the 40th
     * decimal over an open 0; 19 digits, then a point */
    {
        static const struct { const char *bounds, *doc; }  walks[] = {
            { "\"exclusiveMinimum\":0,\"maximum\":1", "{\"x\":0."
              "000000000000000000000000000000000000000000000" },
            { "\"minimum\":0", "{\"x\":1234567890123456789.5" },
            { "\"exclusiveMinimum\":0.5", "{\"x\":0.5000000000000000000"
              "000000000000000000000000" },
        };

        finish = 1;

        for (r = 0; r < (int) (sizeof(walks) / sizeof(walks[0])); r++) {
            snprintf(schema, sizeof(schema), "{\"type\":\"object\","
                     "\"required\":[\"x\"],\"properties\":{\"x\":{\"type\":"
                     "\"number\",%s}}}", walks[r].bounds);
            s = slora_json_schema_parse(schema, strlen(schema), &err);
            if (s == NULL) {
                ok(0, "walk %d compiles: %s", r, err.msg);
                continue;
            }

            slora_json_init(&j, s);
            len = strlen(walks[r].doc);

            for (at = 0; at < len && slora_json_feed(&j, walks[r].doc + at,
                                                     1);
                 at++)
            {
                if (at >= 5 && !finishable(&j, "9876543210.")) {
                    diag("walk %d: %.*s is a dead end", r, (int) at + 1,
                         walks[r].doc);
                    finish = 0;
                    break;
                }
            }

            slora_json_schema_free(s);
        }

        ok(finish, "no dead end at the digits' limits (40 decimals, 19 "
           "digits)");
    }
}


/* (c): the mask is what trying every token gives, at the states along
 * generated documents */
static void
test_mask_smollm2(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                   d, same, states;
    char                  buf[DOC_MAX];
    float                *row;
    size_t                at;
    cJSON                *sch;
    gen_t                 g;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    s = slora_json_schema_parse(schema_all, strlen(schema_all), &err);
    sch = cJSON_Parse(schema_all);
    row = malloc((size_t) slora_tokenizer_n_vocab(tok) * sizeof(float));
    slora_rng_seed(&g.rng, 11);
    g.out = buf;
    g.cap = sizeof(buf);
    g.doc = sch;
    same = 1;
    states = 0;

    for (d = 0; d < 3 && s != NULL && row != NULL; d++) {
        g.len = 0;
        if (!gen(&g, sch, 0)) {
            continue;
        }

        slora_json_init(&j, s);

        for (at = 0; at < g.len; at += 1 + at % 5) {
            same &= mask_agrees(tok, v, &j, row);
            states++;

            /* on to the next state along the document */
            slora_json_feed(&j, buf + at, 1 + at % 5 < g.len - at
                                          ? 1 + at % 5 : g.len - at);
        }
    }

    ok(same && states > 20, "under a schema the mask is what trying every "
       "token gives, at %d states", states);

    free(row);
    cJSON_Delete(sch);
    slora_json_schema_free(s);
}


/* (e) */
static void
test_array_root(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                   i, all;
    size_t                states;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    static const char  schema[] =
        "{\"type\":\"array\",\"minItems\":1,\"maxItems\":3,\"items\":"
        "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},"
        "\"required\":[\"n\"]}}";
    static const char  *yes[] = {
        "[{\"n\":1}]",
        "\n [ {\"n\": -2} , {\"n\":3},{\"n\":0} ]",
    };
    static const char  *no[] = {
        "[]",                                   /* fewer than 1 */
        "[{\"n\":1},{\"n\":2},{\"n\":3},",      /* more than 3 */
        "{\"n\":1}",                            /* not a list */
        "[{\"n\":\"1\"}",                       /* an item of the wrong type */
        "[{\"n\":1}] ",                         /* anything after ']' */
        "[{\"n\":1}]x",
    };

    memset(&err, 0, sizeof(slora_err_t));
    s = slora_json_schema_parse(schema, sizeof(schema) - 1, &err);
    ok(s != NULL, "an array at the root compiles%s%s",
       s == NULL ? ": " : "", s == NULL ? err.msg : "");

    if (s == NULL) {
        return;
    }

    all = 1;

    for (i = 0; i < (int) (sizeof(yes) / sizeof(yes[0])); i++) {
        slora_json_init(&j, s);
        all &= slora_json_feed(&j, yes[i], strlen(yes[i]))
               && slora_json_done(&j);
    }

    slora_json_init(&j, s);
    all &= slora_json_feed(&j, "[{\"n\":1}", 8) && !slora_json_done(&j);
    ok(all, "lists of 1 and 3 items taken, done at their ']' and not "
       "before");

    for (i = 0; i < (int) (sizeof(no) / sizeof(no[0])); i++) {
        slora_json_init(&j, s);
        ok(!slora_json_feed(&j, no[i], strlen(no[i])), "refuses %s", no[i]);
    }

    states = 0;
    all = mask_agrees_along(tok, v, s, yes, 2, &states);
    ok(all && states > 30, "the mask is what trying every token gives "
       "along them, at %zu states", states);

    slora_json_schema_free(s);
}


/* (d) */
static void
test_engine(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                   i, prefixes;
    char                  text[8192];
    cJSON                *doc, *sch;
    int32_t               ids[CHAT_RUN_TOKENS], stop[8], k;
    chat_run_t            run;
    slora_err_t           err;
    slora_json_t          j;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_json_schema_t  *s;

    static const char  city[] =
        "{\"type\":\"object\",\"properties\":{"
        "\"name\":{\"type\":\"string\",\"maxLength\":24},"
        "\"country\":{\"type\":\"string\",\"maxLength\":24},"
        "\"population\":{\"type\":\"integer\"},"
        "\"coastal\":{\"type\":\"boolean\"},"
        "\"size\":{\"enum\":[\"small\",\"large\"]},"
        "\"districts\":{\"type\":\"array\",\"items\":{\"type\":\"string\","
        "\"maxLength\":16},\"minItems\":1,\"maxItems\":3}},"
        "\"required\":[\"name\",\"country\",\"population\",\"coastal\","
        "\"size\",\"districts\"]}";

    e = chat_run_engine(tok);

    chat_run_request(&req, tok, "Describe a city in JSON.", ids, stop);

    /* 0: greedy under the schema; 1: the same without it; 2, 3: sampled
     * under it */
    for (i = 0; i < 4; i++) {
        req.id = (uint64_t) i;
        req.json_schema = i != 1 ? city : NULL;
        req.json_schema_len = i != 1 ? strlen(city) : 0;
        req.sampling.max_tokens = i == 1 ? 40 : 200;
        req.sampling.temperature = i >= 2 ? 1.0f : 0;
        req.sampling.seed = (uint64_t) i;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            BAIL_OUT("submit: %s", err.msg);
        }
    }

    chat_run_steps(e, &run);

    is_int(run.errors, 0, "no request failed");

    s = slora_json_schema_parse(city, strlen(city), &err);
    sch = cJSON_Parse(city);

    for (i = 0; i < 4; i++) {
        chat_run_text(tok, run.tokens[i], run.n[i], text, sizeof(text));
        diag("%s: %s", i == 0 ? "greedy" : i == 1 ? "without" : "sampled",
             text);
        doc = cJSON_Parse(text);

        if (i == 1) {
            ok(doc == NULL || !valid(sch, sch, doc), "without the schema "
               "the answer is no document it admits");
            cJSON_Delete(doc);
            continue;
        }

        slora_json_init(&j, s);
        prefixes = run.n[i] > 0;

        for (k = 0; k < run.n[i]; k++) {
            prefixes &= slora_json_feed_token(&j, v, run.tokens[i][k]);
        }

        ok(prefixes, "answer %d is at every token the start of a document "
           "the schema admits", i);

        if (run.finish[i] == SLORA_FINISH_STOP) {
            ok(slora_json_done(&j) && doc != NULL && valid(sch, sch, doc),
               "it ended as it closed, a document the validator accepts");

        } else {
            ok(run.finish[i] == SLORA_FINISH_LENGTH && run.n[i] == 200
               && !slora_json_done(&j), "it ran to max_tokens, open");
        }

        cJSON_Delete(doc);
    }

    req.id = 8;
    req.json_schema = "{\"type\":\"object\",\"properties\":{\"a\":"
                      "{\"multipleOf\":2}}}";
    req.json_schema_len = strlen(req.json_schema);
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "\"multipleOf\" is not supported") != NULL,
       "a schema the compiler refuses is refused at submit: %s", err.msg);

    cJSON_Delete(sch);
    slora_json_schema_free(s);
    slora_engine_free(e);
}


/* The validator, for the subset, with the compiler's reading: declared
 * keys in their order, each once, no other (when properties are
 * declared); integers written without a fraction or exponent are what
 * the generator writes, so an integral number passes. */
static int
valid(const cJSON *sch, const cJSON *root, const cJSON *val)
{
    const cJSON  *it, *x, *types;

    sch = deref(root, sch);

    if (cJSON_IsTrue(sch) || (cJSON_IsObject(sch) && sch->child == NULL)) {
        return 1;
    }

    if ((it = cJSON_GetObjectItemCaseSensitive(sch, "anyOf")) != NULL) {
        for (x = it->child; x != NULL; x = x->next) {
            if (valid(x, root, val)) {
                return 1;
            }
        }

        return 0;
    }

    if ((it = cJSON_GetObjectItemCaseSensitive(sch, "enum")) != NULL) {
        for (x = it->child; x != NULL; x = x->next) {
            if (cJSON_Compare(x, val, 1)) {
                return 1;
            }
        }

        return 0;
    }

    if ((it = cJSON_GetObjectItemCaseSensitive(sch, "const")) != NULL) {
        return cJSON_Compare(it, val, 1);
    }

    types = cJSON_GetObjectItemCaseSensitive(sch, "type");

    if (cJSON_IsArray(types)) {
        for (x = types->child; x != NULL; x = x->next) {
            if (valid_type(sch, root, val, x->valuestring)) {
                return 1;
            }
        }

        return 0;
    }

    return valid_type(sch, root, val, cJSON_IsString(types)
                                      ? types->valuestring : "any");
}


static int
valid_type(const cJSON *sch, const cJSON *root, const cJSON *val,
    const char *t)
{
    int           n, shortest, longest;
    size_t        chars;
    const char   *p;
    const cJSON  *it, *props, *req, *prop, *x;

    if (strcmp(t, "object") == 0) {
        if (!cJSON_IsObject(val)) {
            return 0;
        }

        props = cJSON_GetObjectItemCaseSensitive(sch, "properties");
        req = cJSON_GetObjectItemCaseSensitive(sch, "required");

        if (props == NULL) {
            x = cJSON_GetObjectItemCaseSensitive(sch,
                                                 "additionalProperties");
            for (it = val->child; it != NULL; it = it->next) {
                if (x != NULL && !valid(x, root, it)) {
                    return 0;
                }
            }

            return 1;
        }

        /* declared keys, in order, once each */
        prop = props->child;

        for (it = val->child; it != NULL; it = it->next) {
            while (prop != NULL && strcmp(prop->string, it->string) != 0) {
                prop = prop->next;
            }

            if (prop == NULL || !valid(prop, root, it)) {
                return 0;
            }

            prop = prop->next;
        }

        for (x = req != NULL ? req->child : NULL; x != NULL; x = x->next) {
            if (cJSON_GetObjectItemCaseSensitive(val, x->valuestring)
                == NULL)
            {
                return 0;
            }
        }

        return 1;
    }

    if (strcmp(t, "array") == 0) {
        if (!cJSON_IsArray(val)) {
            return 0;
        }

        n = cJSON_GetArraySize(val);
        x = cJSON_GetObjectItemCaseSensitive(sch, "minItems");
        if (x != NULL && n < x->valueint) {
            return 0;
        }

        x = cJSON_GetObjectItemCaseSensitive(sch, "maxItems");
        if (x != NULL && n > x->valueint) {
            return 0;
        }

        x = cJSON_GetObjectItemCaseSensitive(sch, "items");
        for (it = val->child; x != NULL && it != NULL; it = it->next) {
            if (!valid(x, root, it)) {
                return 0;
            }
        }

        return 1;
    }

    if (strcmp(t, "string") == 0) {
        if (!cJSON_IsString(val)) {
            return 0;
        }

        chars = 0;
        for (p = val->valuestring; *p; p++) {
            chars += ((unsigned char) *p & 0xc0) != 0x80;
        }

        x = cJSON_GetObjectItemCaseSensitive(sch, "minLength");
        shortest = x == NULL || chars >= (size_t) x->valueint;
        x = cJSON_GetObjectItemCaseSensitive(sch, "maxLength");
        longest = x == NULL || chars <= (size_t) x->valueint;

        return shortest && longest;
    }

    if (strcmp(t, "integer") == 0) {
        if (!cJSON_IsNumber(val) || floor(val->valuedouble)
                                    != val->valuedouble)
        {
            return 0;
        }

        x = cJSON_GetObjectItemCaseSensitive(sch, "minimum");
        if (x != NULL && val->valuedouble < x->valuedouble) {
            return 0;
        }

        x = cJSON_GetObjectItemCaseSensitive(sch, "maximum");
        if (x != NULL && val->valuedouble > x->valuedouble) {
            return 0;
        }

        x = cJSON_GetObjectItemCaseSensitive(sch, "exclusiveMinimum");
        if (x != NULL && val->valuedouble <= x->valuedouble) {
            return 0;
        }

        x = cJSON_GetObjectItemCaseSensitive(sch, "exclusiveMaximum");
        return x == NULL || val->valuedouble < x->valuedouble;
    }

    if (strcmp(t, "number") == 0) {
        return cJSON_IsNumber(val);
    }

    if (strcmp(t, "boolean") == 0) {
        return cJSON_IsBool(val);
    }

    if (strcmp(t, "null") == 0) {
        return cJSON_IsNull(val);
    }

    return 1;
}


static const cJSON *
deref(const cJSON *root, const cJSON *sch)
{
    const cJSON  *ref;

    ref = cJSON_GetObjectItemCaseSensitive(sch, "$ref");

    if (cJSON_IsString(ref) && strncmp(ref->valuestring, "#/$defs/", 8) == 0)
    {
        return cJSON_GetObjectItemCaseSensitive(
                   cJSON_GetObjectItemCaseSensitive(root, "$defs"),
                   ref->valuestring + 8);
    }

    return sch;
}


/* A document sch admits, in the compiler's canonical form (declared keys
 * in order, literals compact), with random blanks where JSON has them;
 * 0 when it would not fit. */
static int
gen(gen_t *g, const cJSON *sch, int depth)
{
    int           k, n, min, max, first;
    char         *s;
    const cJSON  *it, *x, *req, *types;
    const char   *t;

    static const char  *words[] = { "a", "bc", "\\u00e9", "\\ud83d\\ude00",
                                    "\\\"", "x y", "\xc3\xa9t\xc3\xa9" };

    if (g->len + 64 > g->cap) {
        return 0;
    }

    sch = deref(g->doc, sch);

    if ((it = cJSON_GetObjectItemCaseSensitive(sch, "anyOf")) != NULL) {
        n = cJSON_GetArraySize(it);
        /* deep enough: the last alternative (null here) ends a chain */
        k = depth > 4 ? n - 1 : (int) (slora_rng_next(&g->rng) % n);
        return gen(g, cJSON_GetArrayItem(it, k), depth + 1);
    }

    if ((it = cJSON_GetObjectItemCaseSensitive(sch, "enum")) != NULL
        || (it = cJSON_GetObjectItemCaseSensitive(sch, "const")) != NULL)
    {
        x = cJSON_IsArray(it) && !cJSON_HasObjectItem(sch, "const")
            ? cJSON_GetArrayItem(it, (int) (slora_rng_next(&g->rng)
                                            % cJSON_GetArraySize(it)))
            : it;
        s = cJSON_PrintUnformatted(x);
        put(g, s);
        free(s);
        return g->len < g->cap;
    }

    types = cJSON_GetObjectItemCaseSensitive(sch, "type");

    if (cJSON_IsArray(types)) {
        t = cJSON_GetArrayItem(types, (int) (slora_rng_next(&g->rng)
                                             % cJSON_GetArraySize(types)))
            ->valuestring;

    } else {
        t = cJSON_IsString(types) ? types->valuestring : "any";
    }

    if (strcmp(t, "any") == 0) {
        t = depth > 3 ? "null"
            : (const char *[]) { "object", "array", "string", "number",
                                 "boolean", "null" }[slora_rng_next(&g->rng)
                                                      % 6];
        sch = NULL;
    }

    if (strcmp(t, "object") == 0) {
        put(g, "{");
        first = 1;
        it = cJSON_GetObjectItemCaseSensitive(sch, "properties");
        req = cJSON_GetObjectItemCaseSensitive(sch, "required");

        if (it == NULL) {
            x = cJSON_GetObjectItemCaseSensitive(sch, "additionalProperties");
            n = depth > 3 ? 0 : (int) (slora_rng_next(&g->rng) % 3);

            for (k = 0; k < n; k++) {
                blank(g);
                put(g, k ? ",\"k" : "\"k");
                put(g, words[slora_rng_next(&g->rng) % 2]);
                put(g, "\":");
                blank(g);
                if (!gen(g, x, depth + 1)) {
                    return 0;
                }
            }

        } else {
            for (x = it->child; x != NULL; x = x->next) {
                int  required = 0;
                const cJSON  *r;

                for (r = req != NULL ? req->child : NULL; r; r = r->next) {
                    required |= strcmp(r->valuestring, x->string) == 0;
                }

                if (!required && slora_rng_next(&g->rng) % 2) {
                    continue;
                }

                blank(g);
                put(g, first ? "\"" : ",\"");
                put(g, x->string);
                put(g, "\"");
                blank(g);
                put(g, ":");
                blank(g);
                first = 0;

                if (!gen(g, x, depth + 1)) {
                    return 0;
                }

                blank(g);
            }
        }

        put(g, "}");
        return g->len < g->cap;
    }

    if (strcmp(t, "array") == 0) {
        x = cJSON_GetObjectItemCaseSensitive(sch, "minItems");
        min = x != NULL ? x->valueint : 0;
        x = cJSON_GetObjectItemCaseSensitive(sch, "maxItems");
        max = x != NULL ? x->valueint : 3;
        n = depth > 3 ? min
            : min + (int) (slora_rng_next(&g->rng) % (max - min + 1));
        x = cJSON_GetObjectItemCaseSensitive(sch, "items");
        put(g, "[");

        for (k = 0; k < n; k++) {
            put(g, k ? "," : "");
            blank(g);
            if (!gen(g, x, depth + 1)) {
                return 0;
            }
        }

        put(g, "]");
        return g->len < g->cap;
    }

    if (strcmp(t, "string") == 0) {
        x = cJSON_GetObjectItemCaseSensitive(sch, "minLength");
        min = x != NULL ? x->valueint : 0;
        x = cJSON_GetObjectItemCaseSensitive(sch, "maxLength");
        max = x != NULL ? x->valueint : 6;
        n = min + (int) (slora_rng_next(&g->rng) % (max - min + 1));
        put(g, "\"");

        /* n characters: one-character words */
        for (k = 0; k < n; k++) {
            put(g, (const char *[]) { "a", "\\u00e9", "\\ud83d\\ude00",
                                      "\\\"", " ", "\xc3\xa9", "\\n" }
                   [slora_rng_next(&g->rng) % 7]);
        }

        put(g, "\"");
        return g->len < g->cap;
    }

    if (strcmp(t, "integer") == 0 || strcmp(t, "number") == 0) {
        char  num[32];

        if (t[0] == 'i') {
            int  lo = -1000, hi = 1000;

            x = cJSON_GetObjectItemCaseSensitive(sch, "minimum");
            lo = x != NULL ? (int) ceil(x->valuedouble) : lo;
            x = cJSON_GetObjectItemCaseSensitive(sch, "exclusiveMinimum");
            lo = x != NULL ? (int) floor(x->valuedouble) + 1 : lo;
            x = cJSON_GetObjectItemCaseSensitive(sch, "maximum");
            hi = x != NULL ? (int) floor(x->valuedouble) : hi;
            hi = hi > lo + 2000 ? lo + 2000 : hi;
            snprintf(num, sizeof(num), "%d",
                     lo + (int) (slora_rng_next(&g->rng)
                                 % (uint64_t) (hi - lo + 1)));

        } else {
            snprintf(num, sizeof(num), "%s",
                     (const char *[]) { "0", "-1.5", "2e10", "3.25E-2",
                                        "17" }[slora_rng_next(&g->rng) % 5]);
        }

        put(g, num);
        return g->len < g->cap;
    }

    put(g, strcmp(t, "boolean") == 0
           ? (slora_rng_next(&g->rng) % 2 ? "true" : "false") : "null");

    return g->len < g->cap;
}


static void
put(gen_t *g, const char *s)
{
    size_t  n;

    n = strlen(s);

    if (g->len + n < g->cap) {
        memcpy(g->out + g->len, s, n);
    }

    g->len += n;
}


/* Now and then a blank or a line break and an indent, as a printer
 * writes them: one run between two tokens. */
static void
blank(gen_t *g)
{
    if (g->len > 0 && g->len <= g->cap
        && (g->out[g->len - 1] == ' ' || g->out[g->len - 1] == '\n'))
    {
        return;
    }

    if (slora_rng_next(&g->rng) % 4 == 0) {
        put(g, slora_rng_next(&g->rng) % 2 ? " " : "\n  ");
    }
}


