/*
 * test_json_pattern.c: strings held to a schema's "pattern" in
 * constrained output (slora_json.h, slora_regex.h).
 *
 *   (a) documents fed whole: those whose strings match their patterns
 *       (with escapes for '"', '\' and a newline, and lengths at their
 *       bounds) are taken and done; a string that breaks its pattern or
 *       its length, or that writes a \u escape, is refused;
 *   (b) the mask against every SmolLM2 token, at every byte of those
 *       documents;
 *   (c) the engine: SmolLM2's greedy and sampled answers under the
 *       schema parse, and each string matches its pattern as PCRE2 reads
 *       it, within its lengths;
 *   (d) the schema compiler's refusals of patterns, naming where;
 *   (e) formats held as patterns: a value of each taken, values a format
 *       does not admit refused (a leap second among them), ipv6 left an
 *       annotation; a pattern and a format together both held, a pair
 *       no string meets refused.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <cjson/cJSON.h>

#include "tap.h"
#include "chat_run.h"
#include "mask_check.h"
#include "slora_json.h"
#include "slora_engine.h"


static const char  *schema_text =
    "{\"type\": \"object\", \"properties\": {"
    "\"zip\": {\"type\": \"string\", \"pattern\": \"^\\\\d{5}(-\\\\d{4})?$\"},"
    "\"code\": {\"type\": \"string\", \"pattern\": \"^[A-Z]{2}-\\\\d+$\","
    " \"maxLength\": 6},"
    "\"name\": {\"pattern\": \"^\\\\S+ \\\\S+$\", \"minLength\": 5,"
    " \"maxLength\": 16},"
    "\"line\": {\"type\": \"string\", \"pattern\": \"^a\\\"b\\\\\\\\c\\\\n\","
    " \"maxLength\": 24},"
    "\"tags\": {\"type\": \"array\", \"maxItems\": 3, \"items\":"
    " {\"type\": \"string\", \"pattern\": \"^#[a-z]+$\","
    " \"maxLength\": 12}}},"
    " \"required\": [\"zip\", \"code\", \"name\", \"line\", \"tags\"]}";

/* each property's pattern and lengths, as (c) checks them */
static const struct {
    const char  *key;
    const char  *pattern;
    size_t       min;
    size_t       max;
} props[] = {
    { "zip", "^\\d{5}(-\\d{4})?$", 0, 1000 },
    { "code", "^[A-Z]{2}-\\d+$", 0, 6 },
    { "name", "^\\S+ \\S+$", 5, 16 },
    { "line", "^a\"b\\\\c\\n", 0, 24 },
};

static const char  *good[] = {
    "{\"zip\": \"12345-6789\", \"code\": \"FR-75\", \"name\": \"Ada Lovelace\","
    " \"line\": \"a\\\"b\\\\c\\nmore\", \"tags\": [\"#x\", \"#yz\"]}",
    "{\"zip\":\"00000\",\"code\":\"US-1\",\"name\":\"A\\/B C\","
    "\"line\":\"a\\\"b\\\\c\\n\",\"tags\":[]}",
    "{\"zip\": \"99999\", \"code\": \"DE-123\","
    " \"name\": \"\xc3\xa9mile Zola\","
    " \"line\": \"a\\\"b\\\\c\\n\\t\xe6\x97\xa5\", \"tags\": [\"#a\"]}",
    "{\"zip\": \"12345\", \"code\": \"GB-0\", \"name\": \"abcdefgh ijklmno\","
    " \"line\": \"a\\\"b\\\\c\\n\", \"tags\": [\"#a\", \"#b\", \"#c\"]}",
};

static const char  *bad[][2] = {
    { "{\"zip\": \"1234\"", "a zip of four digits" },
    { "{\"zip\": \"12345-\"", "a zip ending at its dash" },
    { "{\"zip\": \"12a", "a letter in a zip" },
    { "{\"zip\": \" 12345", "a blank before a zip" },
    { "{\"zip\": \"12345\", \"code\": \"FR-7500\"", "a code of 7 characters" },
    { "{\"zip\": \"12345\", \"code\": \"fr-1\"", "a code in lower case" },
    { "{\"zip\": \"12345\", \"code\": \"FR-\"", "a code without digits" },
    { "{\"zip\": \"12345\", \"code\": \"FR-1\", \"name\": \"A B\"",
      "a name of 3 characters" },
    { "{\"zip\": \"12345\", \"code\": \"FR-1\", \"name\": \"Ada\"",
      "a name without a blank" },
    { "{\"zip\": \"12345\", \"code\": \"FR-1\", \"name\": \"abcdefgh "
      "ijklmnop\"", "a name of 17 characters" },
    { "{\"zip\": \"12345\", \"code\": \"FR-1\", \"name\": \"\\u0041da B\"",
      "a \\u escape" },
    { "{\"zip\": \"12345\", \"code\": \"FR-1\", \"name\": \"Ada B\", "
      "\"line\": \"a\\\"b\\\\c\"", "a line without its newline" },
    { "{\"zip\": \"12345\", \"code\": \"FR-1\", \"name\": \"Ada B\", "
      "\"line\": \"a\"b", "a quote unescaped" },
    { "{\"zip\": \"12345\", \"code\": \"FR-1\", \"name\": \"Ada B\", "
      "\"line\": \"a\\\"b\\\\c\\n\", \"tags\": [\"x\"", "a tag without #" },
};


static void test_documents(const slora_json_schema_t *s);
static void test_mask(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v, const slora_json_schema_t *s);
static void test_engine(const slora_tokenizer_t *tok);
static int check_answer(const char *text, int i);
static void test_refused(void);
static void test_formats(void);
static void test_pattern_and_format(void);


int
main(void)
{
    slora_err_t           err;
    slora_tokenizer_t    *tok;
    slora_json_vocab_t   *v;
    slora_json_schema_t  *s;

    s = slora_json_schema_parse(schema_text, strlen(schema_text), &err);

    if (s == NULL) {
        BAIL_OUT("the schema: %s", err.msg);
    }

    v = mask_check_vocab(&tok);

    test_documents(s);
    test_mask(tok, v, s);
    test_engine(tok);
    test_refused();
    test_formats();

    slora_json_schema_free(s);
    slora_json_vocab_free(v);
    slora_tokenizer_free(tok);

    return done_testing();
}


/* (a) */
static void
test_documents(const slora_json_schema_t *s)
{
    size_t        i, k, n;
    slora_json_t  j;
    int           bytewise;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        slora_json_init(&j, s);
        ok(slora_json_feed(&j, good[i], strlen(good[i]))
           && slora_json_done(&j), "document %zu taken and done", i);

        /* a byte at a time: the same */
        slora_json_init(&j, s);
        bytewise = 1;
        n = strlen(good[i]);

        for (k = 0; k < n && bytewise; k++) {
            bytewise = slora_json_feed(&j, good[i] + k, 1);
        }

        ok(bytewise && slora_json_done(&j), "document %zu a byte at a time",
           i);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        slora_json_init(&j, s);
        ok(!slora_json_feed(&j, bad[i][0], strlen(bad[i][0])),
           "refused: %s", bad[i][1]);
    }
}


/* (b) */
static void
test_mask(const slora_tokenizer_t *tok, const slora_json_vocab_t *v,
    const slora_json_schema_t *s)
{
    int     same;
    size_t  states;

    states = 0;
    same = mask_agrees_along(tok, v, s, good,
                             sizeof(good) / sizeof(good[0]), &states);

    ok(same && states > 0, "the mask is what trying each of SmolLM2's "
       "tokens gives, at every byte of the documents (%zu states)", states);
}


/* (c) */
static void
test_engine(const slora_tokenizer_t *tok)
{
    int              i;
    char             text[CHAT_RUN_TOKENS * 8];
    size_t           k;
    int32_t          ids[CHAT_RUN_TOKENS], stop[8];
    chat_run_t       run;
    slora_err_t      err;
    slora_engine_t  *e;
    slora_request_t  req;

    e = chat_run_engine(tok);
    chat_run_request(&req, tok, "Describe a person as JSON: a US zip code, "
                     "a country code, a full name, a line of text and a "
                     "few hashtags.", ids, stop);

    for (i = 0; i < 3; i++) {
        req.id = (uint64_t) i;
        req.json_schema = schema_text;
        req.json_schema_len = strlen(schema_text);
        req.sampling.max_tokens = 200;
        req.sampling.temperature = i > 0 ? 1.5f : 0;
        req.sampling.seed = (uint64_t) i + 7;

        if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
            BAIL_OUT("submit: %s", err.msg);
        }
    }

    chat_run_steps(e, &run);
    is_int(run.errors, 0, "no request failed");

    for (i = 0; i < 3; i++) {
        chat_run_text(tok, run.tokens[i], run.n[i], text, sizeof(text));
        ok(run.finish[i] == SLORA_FINISH_STOP && check_answer(text, i),
           "answer %d (%s) parses, each string matching its pattern as "
           "PCRE2 reads it", i, i ? "sampled at 1.5" : "greedy");

        for (k = 0; text[k] != '\0'; k++) {
            text[k] = (unsigned char) text[k] < 0x20 ? ' ' : text[k];
        }

        diag("%s", text);
    }

    slora_engine_free(e);
}


/* 1 when text is the schema's object, its strings matching (PCRE2, a
 * search as JSON Schema's patterns are) within their lengths. */
static int
check_answer(const char *text, int i)
{
    int                 good_all, errcode;
    size_t              k, len;
    cJSON              *doc, *it, *tag;
    PCRE2_SIZE          erroff;
    pcre2_code         *re;
    pcre2_match_data   *md;
    const char         *str;

    doc = cJSON_Parse(text);
    good_all = cJSON_IsObject(doc);

    for (k = 0; good_all && k <= sizeof(props) / sizeof(props[0]); k++) {
        it = cJSON_GetObjectItemCaseSensitive(doc, k < 4 ? props[k].key
                                                         : "tags");
        re = pcre2_compile((PCRE2_SPTR) (k < 4 ? props[k].pattern
                                               : "^#[a-z]+$"),
                           PCRE2_ZERO_TERMINATED,
                           PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode,
                           &erroff, NULL);
        md = pcre2_match_data_create_from_pattern(re, NULL);

        if (k == 4) {
            good_all = cJSON_IsArray(it) && cJSON_GetArraySize(it) <= 3;

            cJSON_ArrayForEach(tag, it) {
                good_all &= cJSON_IsString(tag)
                            && strlen(tag->valuestring) <= 12
                            && pcre2_match(re, (PCRE2_SPTR) tag->valuestring,
                                           strlen(tag->valuestring), 0, 0,
                                           md, NULL) >= 0;
            }

        } else if (!cJSON_IsString(it)) {
            good_all = 0;

        } else {
            str = it->valuestring;
            len = 0;

            for (const char *p = str; *p; p++) {
                len += ((unsigned char) *p & 0xc0) != 0x80;
            }

            good_all = pcre2_match(re, (PCRE2_SPTR) str, strlen(str), 0, 0,
                                   md, NULL) >= 0
                       && len >= props[k].min && len <= props[k].max;

            if (!good_all) {
                diag("answer %d: \"%s\" is %s", i, props[k].key, str);
            }
        }

        pcre2_match_data_free(md);
        pcre2_code_free(re);
    }

    cJSON_Delete(doc);

    return good_all;
}


/* (d) */
static void
test_refused(void)
{
    static const char  *schemas[][2] = {
        { "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": "
          "\"string\", \"pattern\": \"(?=x)\"}}}",
          "pattern: lookahead is not supported at byte 2 (at "
          "#/properties/a)" },
        { "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": "
          "\"string\", \"pattern\": 5}}}",
          "pattern must be a string (at #/properties/a)" },
        { "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": "
          "\"string\", \"pattern\": \"^ab$\", \"minLength\": 3}}}",
          "pattern: admits no string of minLength to maxLength characters "
          "(at #/properties/a)" },
        { "{\"type\": \"object\", \"properties\": {\"a\": {\"pattern\": "
          "\"^a$\", \"enum\": [\"a\"]}}}",
          "pattern beside enum or const is not supported (at "
          "#/properties/a)" },
        { "{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": "
          "\"#/$defs/b\", \"pattern\": \"x\"}}, \"$defs\": {\"b\": "
          "{\"type\": \"string\"}}}", "$ref beside other keywords" },
    };

    static const char  one[] =
        "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": "
        "\"string\", \"pattern\": \"(a|b)*a(a|b){9}\"}}}";
    static const char  two[] =
        "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": "
        "\"string\", \"pattern\": \"(a|b)*a(a|b){9}\"}, \"b\": {\"type\": "
        "\"string\", \"pattern\": \"(a|b)*b(a|b){9}\"}}}";

    size_t                i;
    slora_err_t           err;
    slora_json_schema_t  *s;

    /* the patterns of a schema share one budget of work */
    s = slora_json_schema_parse(one, strlen(one), &err);
    ok(s != NULL, "a pattern of a thousand states compiles: %s",
       s ? "" : err.msg);
    slora_json_schema_free(s);
    s = slora_json_schema_parse(two, strlen(two), &err);
    ok(s == NULL && strstr(err.msg, "too complex") != NULL
       && strstr(err.msg, "#/properties/b") != NULL,
       "two of them in one schema exceed its budget: %s", err.msg);
    slora_json_schema_free(s);

    for (i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
        memset(&err, 0, sizeof(err));
        s = slora_json_schema_parse(schemas[i][0], strlen(schemas[i][0]),
                                    &err);
        ok(s == NULL && strstr(err.msg, schemas[i][1]) != NULL,
           "refused: %s", err.msg);
        slora_json_schema_free(s);
    }
}


/* (e) */
static void
test_formats(void)
{
    static const char  fmt_schema[] =
        "{\"type\": \"object\", \"properties\": {"
        "\"d\": {\"type\": \"string\", \"format\": \"date\"},"
        "\"t\": {\"type\": \"string\", \"format\": \"time\"},"
        "\"dt\": {\"type\": \"string\", \"format\": \"date-time\"},"
        "\"e\": {\"type\": \"string\", \"format\": \"email\"},"
        "\"h\": {\"type\": \"string\", \"format\": \"hostname\"},"
        "\"ip\": {\"type\": \"string\", \"format\": \"ipv4\"},"
        "\"u\": {\"type\": \"string\", \"format\": \"uuid\"},"
        "\"uri\": {\"type\": \"string\", \"format\": \"uri\"},"
        "\"v6\": {\"type\": \"string\", \"format\": \"ipv6\"}}}";

    static const char  *keys[] = { "d", "t", "dt", "e", "h", "ip", "u", "uri",
                                   "v6" };
    static const char  *good_values[] = {
        "2024-02-29", "23:59:59.5+05:30", "1969-07-20T20:17:40Z",
        "ada.lovelace+notes@math.example.org", "a-1.example", "192.168.0.255",
        "123e4567-E89B-12d3-a456-426614174000",
        "https://example.org/a?b=c#d", "not an address",
    };
    static const char  *bad_values[] = {
        "2024-13-01", "12:00:00", "1969-07-20 20:17:40Z", "ada@localhost",
        "-a.example", "256.1.1.1", "123e4567-e89b-12d3-a456-42661417400",
        "no scheme here", NULL,
    };

    static const struct {
        const char  *text;
        int          valid;
    } days[] = {
        { "2024-01-31", 1 }, { "2024-04-30", 1 }, { "2024-04-31", 0 },
        { "2023-02-28", 1 }, { "2023-02-29", 0 }, { "2024-02-29", 1 },
        { "1900-02-29", 0 }, { "2000-02-29", 1 }, { "2100-02-29", 0 },
        { "1996-02-29", 1 }, { "2024-02-30", 0 }, { "2024-06-31", 0 },
        { "2024-11-30", 1 }, { "2024-11-31", 0 }, { "2024-12-31", 1 },
        { "0400-02-29", 1 }, { "2024-00-10", 0 }, { "2024-07-00", 0 },
        { "0000-02-29", 0 }, { "0000-01-01", 0 }, { "0001-01-01", 1 },
        { "0010-12-31", 1 }, { "0100-02-28", 1 }, { "1000-02-28", 1 },
        { "0100-02-29", 0 }, { "0800-02-29", 1 }, { "0004-02-29", 1 },
    };

    static const char  *leaps[][2] = {
        { "t", "12:00:60Z" }, { "t", "23:59:60.5+05:30" },
        { "t", "23:59:60Z" }, { "dt", "2016-12-31T23:59:60Z" },
    };

    int                   taken;
    char                  doc[256];
    size_t                i, n;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    s = slora_json_schema_parse(fmt_schema, strlen(fmt_schema), &err);
    ok(s != NULL, "a schema of every format held compiles: %s",
       s ? "" : err.msg);
    if (s == NULL) {
        return;
    }

    /* the calendar: months' lengths and leap years */
    for (i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
        n = (size_t) snprintf(doc, sizeof(doc), "{\"d\": \"%s\"}",
                              days[i].text);
        slora_json_init(&j, s);
        taken = slora_json_feed(&j, doc, n) && slora_json_done(&j);
        ok(taken == days[i].valid, "date \"%s\" %s", days[i].text,
           days[i].valid ? "taken" : "refused");
    }

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        n = (size_t) snprintf(doc, sizeof(doc), "{\"%s\": \"%s\"}", keys[i],
                              good_values[i]);
        slora_json_init(&j, s);
        ok(slora_json_feed(&j, doc, n) && slora_json_done(&j),
           "format of \"%s\": \"%s\" taken", keys[i], good_values[i]);

        if (bad_values[i] == NULL) {
            continue;
        }

        n = (size_t) snprintf(doc, sizeof(doc), "{\"%s\": \"%s\"}", keys[i],
                              bad_values[i]);
        slora_json_init(&j, s);
        taken = slora_json_feed(&j, doc, n);
        ok(!taken, "format of \"%s\": \"%s\" refused", keys[i],
           bad_values[i]);
    }

    /* no leap second: none is a validator's time */
    for (i = 0; i < sizeof(leaps) / sizeof(leaps[0]); i++) {
        n = (size_t) snprintf(doc, sizeof(doc), "{\"%s\": \"%s\"}",
                              leaps[i][0], leaps[i][1]);
        slora_json_init(&j, s);
        ok(!slora_json_feed(&j, doc, n), "format of \"%s\": \"%s\" refused",
           leaps[i][0], leaps[i][1]);
    }

    slora_json_schema_free(s);

    test_pattern_and_format();
}


/* A pattern and an enforced format: the string holds to both; a pair
 * no string meets is refused; a format held as no pattern leaves the
 * pattern alone. */
static void
test_pattern_and_format(void)
{
    size_t                i, n;
    char                  doc[256];
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    static const char  both[] =
        "{\"type\": \"object\", \"properties\": {"
        "\"d\": {\"type\": \"string\", \"pattern\": \"^2024-\","
        "\"format\": \"date\"},"
        "\"v6\": {\"type\": \"string\", \"pattern\": \"^[a-f0-9:]+$\","
        "\"format\": \"ipv6\"}}}";
    static const char  never[] =
        "{\"type\": \"object\", \"properties\": {"
        "\"d\": {\"type\": \"string\", \"pattern\": \"^[0-9]{4}$\","
        "\"format\": \"date\"}}}";

    static const struct {
        const char  *doc;
        int          valid;
    } cases[] = {
        { "{\"d\": \"2024-02-29\"}", 1 },
        { "{\"d\": \"2023-02-28\"}", 0 },    /* the pattern's year */
        { "{\"d\": \"2024-13-01\"}", 0 },    /* the format's month */
        { "{\"d\": \"2024-\"}", 0 },
        { "{\"v6\": \"fe80::1\"}", 1 },
        { "{\"v6\": \"fe80::g\"}", 0 },
    };

    s = slora_json_schema_parse(both, strlen(both), &err);
    ok(s != NULL, "a string's pattern and format compile together: %s",
       s ? "" : err.msg);
    if (s == NULL) {
        return;
    }

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = (size_t) snprintf(doc, sizeof(doc), "%s", cases[i].doc);
        slora_json_init(&j, s);
        ok((slora_json_feed(&j, doc, n) && slora_json_done(&j))
           == cases[i].valid, "pattern and format: %s %s", cases[i].doc,
           cases[i].valid ? "taken" : "refused");
    }

    slora_json_schema_free(s);

    s = slora_json_schema_parse(never, strlen(never), &err);
    ok(s == NULL && strstr(err.msg, "pattern and format") != NULL
       && strstr(err.msg, "admits no") != NULL,
       "a pattern and a format no string meets together are refused: %s",
       s ? "compiled" : err.msg);
    slora_json_schema_free(s);
}
