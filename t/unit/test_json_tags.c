/*
 * test_json_tags.c: vLLM's structural tags (slora_json_tags_parse, the
 * framed root in slora_json.c, the triggers in slora_json_mask.c and
 * the engine).
 *
 *   (a) the tags refused, each with what is wrong named;
 *   (b) the automaton: a tag's begin, value and end taken, blanks where
 *       JSON has them and not before an end that begins with one, done
 *       at the end's last byte; what breaks a tag refused; the mask
 *       against every SmolLM2 token along tags;
 *   (c) the triggers: the earliest found where two are, the tokens that
 *       may complete one, and the guard refusing those that would run on
 *       where no tag goes;
 *   (d) the engine: SmolLM2's greedy answer free up to a trigger, then
 *       the tag whole, then free again, or the end with
 *       stop_after_first; behind a gate the trigger passes, the free
 *       answer; a trigger a token of that answer runs past, another
 *       answer that writes it only as a tag's; without triggers the
 *       answer one tag;
 *   (e) a lead trigger's guard (a Llama 3.1 call that opens the answer,
 *       '{"name":'): while the answer may still begin with it, a token
 *       that completes it and runs on where the call does not go is
 *       refused, one that completes it as a call may, and the rest are
 *       left alone; once the answer began otherwise, nothing is.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "chat_run.h"
#include "mask_check.h"
#include "slora_json.h"
#include "slora_engine.h"


/* One tag, <a>, any value, </a>, its list left open. */
#define TAG_A  "{\"structures\":[{\"begin\":\"<a>\",\"schema\":{}," \
               "\"end\":\"</a>\"}"

#define TAGS_SCHEMA  "{\"type\":\"object\",\"properties\":{\"city\":" \
                     "{\"type\":\"string\",\"maxLength\":12}},"         \
                     "\"required\":[\"city\"]}"


static void test_refused(void);
static void test_automaton(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);
static void test_triggers(const slora_json_vocab_t *v);
static void test_guard_overlap(void);
static void overlap_row(const char *const *tokens, const char *tags,
    const char *a, const char *b, float *row);
static void test_guard_random(void);
static void test_guard_lead(void);
static int guard_case(uint32_t *rng, int whole, int *refused);
static uint32_t guard_rand(uint32_t *rng, uint32_t n);
static void test_engine(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);
static int printable(const char *text);
static void tags_after(char *tags, size_t size, const char *trig,
    const char *more);
static void answer(slora_engine_t *e, slora_request_t *req, uint64_t id,
    const char *schema, const slora_tokenizer_t *tok, chat_run_t *run,
    char *text, size_t size);
static int takes(const slora_json_schema_t *s, int compact, const char *text,
    int *done);


int
main(void)
{
    slora_tokenizer_t   *tok;
    slora_json_vocab_t  *v;

    v = mask_check_vocab(&tok);

    test_refused();
    test_automaton(tok, v);
    test_triggers(v);
    test_guard_overlap();
    test_guard_random();
    test_guard_lead();
    test_engine(tok, v);

    slora_json_vocab_free(v);
    slora_tokenizer_free(tok);

    return done_testing();
}


static void
test_refused(void)
{
    size_t                i;
    slora_err_t           err;
    slora_json_schema_t  *s;

    static const struct {
        const char  *text;
        const char  *says;
    } bad[] = {
        { "[1]", "structures" },
        { "{\"structures\":[],\"triggers\":[]}", "1 to 64 tags" },
        { TAG_A "],"
          "\"triggers\":[],\"extra\":1}", "no field \"extra\"" },
        { TAG_A "]}",
          "triggers must be an array" },
        { "{\"structures\":[{\"begin\":\"\",\"schema\":{},\"end\":\"</a>\"}],"
          "\"triggers\":[]}", "structures[0].begin is 0 bytes" },
        { "{\"structures\":[{\"begin\":\"<a>\",\"schema\":{},\"end\":5}],"
          "\"triggers\":[]}", "structures[0].end must be a string" },
        { "{\"structures\":[{\"begin\":\"<a>\",\"schema\":7,\"end\":\"</a>\"}],"
          "\"triggers\":[]}",
          "structures[0].schema must be an object or true" },
        { TAG_A ","
          "{\"begin\":\"<a>x\",\"schema\":{},\"end\":\"</a>\"}],"
          "\"triggers\":[]}",
          "structures[0].begin is the start of structures[1].begin" },
        { TAG_A ","
          "{\"begin\":\"<a>\",\"schema\":{},\"end\":\"</b>\"}],"
          "\"triggers\":[]}",
          "structures[0].begin is the same as structures[1].begin" },
        { TAG_A "],"
          "\"triggers\":[\"<b\"]}",
          "structures[0].begin does not begin with a trigger" },
        { TAG_A "],"
          "\"triggers\":[\"<a\",\"<\",\"<c\"]}", "triggers[2] begins no tag" },
        { TAG_A "],"
          "\"triggers\":[\"<\",\"<\",\"<\",\"<\",\"<\",\"<\",\"<\",\"<\","
          "\"<\"]}", "at most 8 strings" },
        { "{\"structures\":[{\"begin\":"
          "\"<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>\","
          "\"schema\":{},\"end\":\"</a>\"}],"
          "\"triggers\":[\"<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}",
          "triggers[0] is 34 bytes: 1 to 32" },
        { TAG_A ","
          "{\"begin\":\"<b>\",\"schema\":{\"type\":\"object\",\"properties\":"
          "{\"n\":{\"type\":\"integer\",\"multipleOf\":2}}},\"end\":\"</b>\"}],"
          "\"triggers\":[\"<\"]}",
          "structures[1].schema: the schema keyword \"multipleOf\"" },
        { "{\"structures\":[{\"begin\":\"<a>\",\"schema\":{\"$ref\":"
          "\"#/$defs/x\"},\"end\":\"</a>\"}],\"triggers\":[]}",
          "structures[0].schema" },
        { TAG_A "],"
          "\"triggers\":[\"<a\"],\"stop_after_first\":1}",
          "stop_after_first must be a boolean" },
        { TAG_A "],"
          "\"triggers\":[\"<a\"],\"at_least_one\":\"yes\"}",
          "at_least_one must be a boolean" },
        { "{\"structures\":[{\"begin\":\"<a\xff>\",\"schema\":{},"
          "\"end\":\"</a>\"}],\"triggers\":[]}",
          "structures[0].begin is not UTF-8" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        s = slora_json_tags_parse(bad[i].text, strlen(bad[i].text), &err);
        ok(s == NULL && strstr(err.msg, bad[i].says) != NULL,
           "refused, saying \"%s\": %s", bad[i].says, err.msg);
        slora_json_schema_free(s);
    }

    /* a $ref is the tag's own schema's, each a document of its own */
    {
        const char  *refs = "{\"structures\":[{\"begin\":\"<a>\",\"schema\":"
                            "{\"$defs\":{\"x\":{\"type\":\"integer\"}},"
                            "\"type\":\"object\",\"properties\":{\"n\":"
                            "{\"$ref\":\"#/$defs/x\"}},\"required\":[\"n\"]},"
                            "\"end\":\"</a>\"}],\"triggers\":[]}";
        int          done;

        s = slora_json_tags_parse(refs, strlen(refs), &err);
        ok(s != NULL && takes(s, 0, "<a>{\"n\": 12}</a>", &done) && done
           && !takes(s, 0, "<a>{\"n\": \"12\"}", &done),
           "a tag's $ref is to its own schema's $defs");
        slora_json_schema_free(s);
    }
}


/* 1 when a fresh automaton of s takes text whole; *done: it is done. */
static int
takes(const slora_json_schema_t *s, int compact, const char *text, int *done)
{
    int           rc;
    slora_json_t  j;

    slora_json_init(&j, s);
    j.compact = compact;
    rc = slora_json_feed(&j, text, strlen(text));
    *done = slora_json_done(&j);

    return rc;
}


static void
test_automaton(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                   done, same;
    size_t                i, states;
    slora_err_t           err;
    slora_json_schema_t  *s;

    const char  *tags = "{\"structures\":["
                        "{\"begin\":\"<f=weather>\",\"schema\":" TAGS_SCHEMA
                        ",\"end\":\"</f>\"},"
                        "{\"begin\":\"<f=date>\",\"schema\":{\"type\":"
                        "\"integer\"},\"end\":\"<end>\"},"
                        "{\"begin\":\"<tool_call>\\n\",\"schema\":"
                        TAGS_SCHEMA ",\"end\":\"\\n</tool_call>\"}],"
                        "\"triggers\":[\"<f=\",\"<tool_call>\"]}";

    static const char  *good[] = {
        "<f=weather>{\"city\": \"Paris\"}</f>",
        "<f=weather> {\"city\":\"Rome\"} </f>",
        "<f=weather>\n{\"city\": \"Oslo\"}\n</f>",
        "<f=date>12<end>",
        "<f=date>-7 <end>",
        "<tool_call>\n{\"city\": \"Lima\"}\n</tool_call>",
    };

    static const struct {
        const char  *text;
        const char  *why;
    } bad[] = {
        { " <f=weather>", "a blank before the begin" },
        { "<f=wind>", "a begin no tag has" },
        { "<f=weather>{\"town\"", "a key the schema has not" },
        { "<f=weather>{\"city\": \"Paris\"}</g>", "another end" },
        { "<f=weather>{\"city\": \"Paris\"}}", "the value ended, more of it" },
        { "<f=date>1.5", "a number where an integer is" },
        { "<f=date>12</f>", "another tag's end" },
        { "<f=weather>{\"city\": \"Paris\"}</f> ", "a byte after the end" },
        { "<tool_call>\n{\"city\": \"Lima\"} \n</tool_call>",
          "a blank before an end that begins with one" },
        { "<tool_call>\n{\"city\": \"Lima\"}\n\n</tool_call>",
          "a second line break before it" },
    };

    s = slora_json_tags_parse(tags, strlen(tags), &err);
    ok(s != NULL, "three tags, two triggers: %s", s ? "compiled" : err.msg);
    if (s == NULL) {
        return;
    }

    ok(slora_json_tags_triggers(s) == 2 && !slora_json_tags_end_first(s),
       "its two triggers kept, the tags not ending the answer");

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ok(takes(s, 0, good[i], &done) && done, "a whole tag, done (%zu)",
           i);
    }

    ok(takes(s, 0, "<f=weather>{\"city\": \"Paris\"}</", &done) && !done,
       "an end text part written: not done");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ok(!takes(s, 0, bad[i].text, &done), "refused: %s", bad[i].why);
    }

    ok(!takes(s, 1, "<f=weather> {", &done)
       && takes(s, 1, "<f=weather>{\"city\":\"Rome\"}</f>", &done) && done,
       "compact: no blank before the value, a tag without them taken");

    states = 0;
    same = mask_agrees_along(tok, v, s, good, sizeof(good) / sizeof(good[0]),
                             &states);
    ok(same, "the mask is every token whose bytes the automaton takes, at "
       "each of %zu states along the tags", states);

    slora_json_schema_free(s);
}


static void
test_triggers(const slora_json_vocab_t *sv)
{
    int                    k, fired, refused, kept;
    int32_t                n, ids[10];
    float                  row[10];
    slora_err_t            err;
    slora_json_schema_t   *s;
    slora_json_vocab_t    *v;
    slora_json_trigger_t   t[2];

    /* 0 "<f", 1 "=w", 2 "=", 3 "ab", 4 "<f=w", 5 "=x", 6 "c", 7 "f=",
     * 8 "a=b", 9 "={" */
    static const char  *const tokens[] = {
        "<f", "=w", "=", "ab", "<f=w", "=x", "c", "f=", "a=b", "={"
    };
    static const size_t  lens[] = { 2, 2, 1, 2, 4, 2, 1, 2, 3, 2 };

    const char  *tags = "{\"structures\":[{\"begin\":\"<f=w>\",\"schema\":"
                        "{\"type\":\"integer\"},\"end\":\"</f>\"},"
                        "{\"begin\":\"f=d>\",\"schema\":{\"type\":"
                        "\"integer\"},\"end\":\"</d>\"}],"
                        "\"triggers\":[\"<f=\",\"f=\"]}";

    v = slora_json_vocab_from(tokens, lens, 10, &err);
    s = slora_json_tags_parse(tags, strlen(tags), &err);

    if (v == NULL || s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    memset(t, 0, sizeof(t));
    memcpy(t[0].text, "<f=", 3);
    t[0].len = 3;
    t[0].id = -1;
    memcpy(t[1].text, "f=", 2);
    t[1].len = 2;
    t[1].id = -1;

    /* "<f" then "=w": both end at the '=', the longer one taken */
    fired = slora_json_triggers_feed(t, 2, v, 0);
    k = slora_json_triggers_feed(t, 2, v, 1);
    ok(fired == -1 && k == 0 && t[0].past == 1 && t[1].tail_len == 0,
       "two triggers ending at one byte: the longer found, 1 byte past it, "
       "the other's text before it forgotten");

    k = slora_json_triggers_feed(t, 2, v, 7);
    ok(k == 1 && t[1].past == 0, "then only \"f=\": the shorter found");

    /* the tokens that hold a trigger whole and run on: "<f=w" alone; not
     * "f=", which ends where both triggers do, nor "a=b", whose '=' ends
     * neither's text */
    n = slora_json_trigger_tokens(t, 2, v, ids);
    ok(n == 1 && ids[0] == 4,
       "the tokens that hold a trigger whole and run on: %d", n);

    /* after "<f": "=w" and "<f=w" go on into the first tag; "=x" and
     * "={" into none (found by their first byte, the trigger's rest) */
    memset(row, 0, sizeof(row));
    (void) slora_json_triggers_feed(t, 2, v, 0);
    slora_json_trigger_guard(t, 2, s, 0, 1, v, ids, n, row);
    refused = row[5] < -1e30f && row[9] < -1e30f;
    kept = row[1] == 0 && row[2] == 0 && row[4] == 0 && row[7] == 0
           && row[0] == 0 && row[3] == 0 && row[6] == 0 && row[8] == 0;
    ok(refused && kept, "the guard refuses the tokens that complete a "
       "trigger and run on where no tag goes, and only them");

    ok(t[0].tail_len == 2, "the guard tries copies: the triggers' own "
       "text kept");

    /* after "ab" no trigger is begun: "=x" is text like any */
    ok(slora_json_triggers_begun(t, 2), "after \"<f\" a trigger is begun");
    (void) slora_json_triggers_feed(t, 2, v, 3);
    memset(row, 0, sizeof(row));
    slora_json_trigger_guard(t, 2, s, 0, 1, v, ids, n, row);
    ok(row[5] == 0 && row[1] == 0 && !slora_json_triggers_begun(t, 2),
       "where the output ends with no trigger's first bytes, none is "
       "begun, and a token beginning with its rest is kept");

    /* a tool call's trigger: its value from the trigger's end, blanks
     * skipped (slora_json_trigger_past) */
    slora_json_schema_free(s);
    s = slora_json_schema_parse("{\"type\":\"object\"}", 17, &err);

    if (s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    t[1].len = 0;
    t[0].tail_len = 0;
    (void) slora_json_triggers_feed(t, 1, v, 0);
    n = slora_json_trigger_tokens(t, 1, v, ids);
    memset(row, 0, sizeof(row));
    slora_json_trigger_guard(t, 1, s, 0, 0, v, ids, n, row);
    refused = row[1] < -1e30f && row[5] < -1e30f && row[4] < -1e30f;
    kept = row[9] == 0 && row[2] == 0 && row[7] == 0 && row[8] == 0;
    ok(n == 1 && refused && kept, "a tool call's trigger: after \"<f\", "
       "\"={\" goes on into the object and \"=\" ends with the trigger; "
       "\"=w\", \"=x\" and \"<f=w\" are refused");

    slora_json_schema_free(s);
    slora_json_vocab_free(v);
    (void) sv;
}


/*
 * Two triggers one token completes both: the one that ends first in its
 * bytes is found (or the longer where they end alike), and the guard
 * refuses or keeps the token by that one's tag, not by the other's,
 * whose begin may refuse the byte after it.
 */
static void
test_guard_overlap(void)
{
    float  row[4];

    /* 0 "x", 1 "f", 2 "fw#a", 3 "fw#1" */
    static const char  *const early[] = { "x", "f", "fw#a", "fw#1" };
    /* 0 "x", 1 "ff", 2 "w#1", 3 "wa" */
    static const char  *const tie[] = { "x", "ff", "w#1", "wa" };

    /* after "xf": "fw#a" completes "ff" at its first byte, and "xffw" at
     * its second, after which the tags' begins ("xffwz") refuse the '#' */
    overlap_row(early, "{\"structures\":["
                "{\"begin\":\"ffw#a\",\"schema\":{},\"end\":\"</>\"},"
                "{\"begin\":\"xffwz\",\"schema\":{},\"end\":\"</>\"}],"
                "\"triggers\":[\"ff\",\"xffw\"]}", "ff", "xffw", row);
    ok(row[2] == 0 && row[3] < -1e30f, "a token completing two triggers: "
       "the earlier's tag decides (\"fw#a\" kept, \"fw#1\" refused)");

    /* after "xff": "w#1" completes "fw" and "ffw" at one byte, the
     * longer found, whose begin "ffw#1" goes on; "wa" goes on only into
     * the shorter's, "fwa" */
    overlap_row(tie, "{\"structures\":["
                "{\"begin\":\"fwa\",\"schema\":{},\"end\":\"</>\"},"
                "{\"begin\":\"ffw#1\",\"schema\":{},\"end\":\"</>\"}],"
                "\"triggers\":[\"fw\",\"ffw\"]}", "fw", "ffw", row);
    ok(row[2] == 0 && row[3] < -1e30f, "two triggers ending alike: the "
       "longer's tag decides (\"w#1\" kept, \"wa\" refused)");
}


/* The guard's row over a vocabulary of four tokens (NUL-terminated),
 * the tags' triggers a and b, after tokens 0 and 1. */
static void
overlap_row(const char *const *tokens, const char *tags, const char *a,
    const char *b, float *row)
{
    int32_t                i, n, ids[4];
    size_t                 lens[4];
    slora_err_t            err;
    slora_json_vocab_t    *v;
    slora_json_schema_t   *s;
    slora_json_trigger_t   t[2];

    for (i = 0; i < 4; i++) {
        lens[i] = strlen(tokens[i]);
    }

    v = slora_json_vocab_from(tokens, lens, 4, &err);
    s = slora_json_tags_parse(tags, strlen(tags), &err);

    if (v == NULL || s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    memset(t, 0, sizeof(t));
    t[0].len = (uint32_t) strlen(a);
    memcpy(t[0].text, a, t[0].len);
    t[0].id = -1;
    t[1].len = (uint32_t) strlen(b);
    memcpy(t[1].text, b, t[1].len);
    t[1].id = -1;

    (void) slora_json_triggers_feed(t, 2, v, 0);
    (void) slora_json_triggers_feed(t, 2, v, 1);
    n = slora_json_trigger_tokens(t, 2, v, ids);
    memset(row, 0, 4 * sizeof(float));
    slora_json_trigger_guard(t, 2, s, 0, 1, v, ids, n, row);

    slora_json_schema_free(s);
    slora_json_vocab_free(v);
}


/* (e) */
static void
test_guard_lead(void)
{
    int                    i, kept, refused;
    float                  row[15];
    slora_err_t            err;
    slora_json_vocab_t    *v;
    slora_json_schema_t   *s;
    slora_json_trigger_t   t, after;

    /* 0 {"  1 name  2 ":  3 ":"  4 ":[  5 ' {"name":"'  6 blanks  7 hi
     * 8 {"name":{  9 "  10 {"na  11 '\t{"name":{'  12 '\r\n  {"name":{'
     * 13 ' \n{"name":"a'  14 40 blanks and '{"name":{' */
    static const char  *const tokens[] = {
        "{\"", "name", "\":", "\":\"", "\":[", " {\"name\":\"", "  ", "hi",
        "{\"name\":{", "\"", "{\"na", "\t{\"name\":{", "\r\n  {\"name\":{",
        " \n{\"name\":\"a",
        "                                        {\"name\":{"
    };
    static const size_t  lens[] = {
        2, 4, 2, 3, 3, 10, 2, 2, 9, 1, 4, 10, 13, 12, 49
    };

    static const char  schema[] =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":"
        "\"string\"}},\"required\":[\"name\"]}";

    v = slora_json_vocab_from(tokens, lens, 15, &err);
    s = slora_json_schema_parse(schema, strlen(schema), &err);

    if (v == NULL || s == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    memset(&t, 0, sizeof(t));
    memcpy(t.text, "{\"name\":", 8);
    t.len = 8;
    t.id = -1;
    t.lead = 1;

    /* the answer's first token */
    memset(row, 0, sizeof(row));
    slora_json_trigger_guard_lead(&t, s, 0, v, row);
    for (i = 0, kept = 1, refused = 1; i < 15; i++) {
        if (i == 8 || i == 11 || i == 12 || i == 14) {
            refused &= row[i] < -1e30f;

        } else {
            kept &= row[i] == 0;
        }
    }
    ok(refused && kept, "first: '{\"name\":{' refused, after a tab, after "
       "blanks over lines and after 40 blanks too; ' {\"name\":\"' and ' \\n"
       "{\"name\":\"a' (blanks, the trigger, a string) and the trigger's "
       "first bytes kept, and text that is no call");

    /* after '{"' and 'name' the trigger's last two bytes are to come */
    (void) slora_json_trigger_feed(&t, v, 0);
    (void) slora_json_trigger_feed(&t, v, 1);
    memset(row, 0, sizeof(row));
    slora_json_trigger_guard_lead(&t, s, 0, v, row);
    for (i = 0, kept = 1; i < 15; i++) {
        kept &= i == 4 ? 1 : row[i] == 0;
    }
    ok(t.seen == 6 && row[4] < -1e30f && kept,
       "after '{\"name': '\":[' refused; '\":' and '\":\"' kept, and '\"', "
       "which does not complete it, and the tokens of blanks first (the "
       "answer is begun)");

    /* an answer that began otherwise is free */
    memset(&after, 0, sizeof(after));
    memcpy(after.text, t.text, 8);
    after.len = 8;
    after.id = -1;
    after.lead = 1;
    (void) slora_json_trigger_feed(&after, v, 7);
    memset(row, 0, sizeof(row));
    slora_json_trigger_guard_lead(&after, s, 0, v, row);
    for (i = 0, kept = 1; i < 15; i++) {
        kept &= row[i] == 0;
    }
    ok(after.seen == after.len && kept, "after 'hi' the answer is no "
       "call: no token refused");

    slora_json_schema_free(s);
    slora_json_vocab_free(v);
}

/*
 * The guard against trying every token: on random small vocabularies,
 * triggers and text before, the tokens it refuses are exactly those
 * that, fed to copies of the triggers, complete one and run on where
 * the value does not go (a tag's begin after the trigger's text, or a
 * tool call's object after its end), so that its shortcuts (the list of
 * tokens holding a trigger whole, the runs found by bisection, the
 * first byte past the trigger) miss none and refuse none more; and a
 * step the engine leaves to the backend unguarded (no token holding a
 * trigger whole, the text ending with no trigger's first bytes) is one
 * where it refuses none.
 */

static void
test_guard_random(void)
{
    int       i, whole, bad, refused, all;
    uint32_t  rng;

    rng = 12345;

    for (whole = 0; whole <= 1; whole++) {
        bad = 0;
        all = 0;

        for (i = 0; i < 1000; i++) {
            refused = 0;
            bad += guard_case(&rng, whole, &refused);
            all += refused;
        }

        ok(bad == 0 && all > 1000, "%s: the guard refuses what trying every "
           "token refuses, on 1000 random vocabularies (%d cases apart, "
           "%d tokens refused)", whole ? "a structural tag's triggers"
           : "a tool call's trigger", bad, all);
    }
}


/* One random case: 1 when the guard and trying every token disagree on
 * some token; *refused, the tokens refused. */
static int
guard_case(uint32_t *rng, int whole, int *refused)
{
    int                    k, fired, apart, begun;
    char                   text[64][7], trig[2][5], tags[512];
    size_t                 lens[64], len;
    int32_t                i, id, n_vocab, n_ids, ids[64];
    float                  row[64];
    uint32_t               n, m;
    slora_err_t            err;
    slora_json_t           j;
    slora_json_vocab_t    *v;
    slora_json_schema_t   *s;
    slora_json_trigger_t   t[2], tried[2];
    const char            *texts[64];

    static const char  alpha[] = "fw=<#a{ 1";
    static const char  more[] = "w#a1{ ";

    /* one or two distinct triggers of 1 to 4 bytes of "fw=", which
     * overlap often */
    n = 1 + guard_rand(rng, 2);

    do {
        memset(trig, 0, sizeof(trig));

        for (k = 0; k < (int) n; k++) {
            len = 1 + guard_rand(rng, 4);

            for (m = 0; m < len; m++) {
                trig[k][m] = alpha[guard_rand(rng, 3)];
            }
        }
    } while (n == 2 && strcmp(trig[0], trig[1]) == 0);

    /* 64 distinct tokens of 1 to 6 bytes: half random, half a trigger's
     * first bytes (text that begins one) or its last ones and a few more
     * (tokens that finish one and run on) */
    for (n_vocab = 0; n_vocab < 64; /* void */) {
        k = (int) guard_rand(rng, n);
        len = strlen(trig[k]);
        m = 1 + guard_rand(rng, (uint32_t) len);

        if (n_vocab < 32) {
            len = 1 + guard_rand(rng, 6);

            for (m = 0; m < len; m++) {
                text[n_vocab][m] = alpha[guard_rand(rng, sizeof(alpha) - 1)];
            }

        } else if (guard_rand(rng, 2) == 0) {
            memcpy(text[n_vocab], trig[k], m);
            len = m;

        } else {
            memcpy(text[n_vocab], trig[k] + len - m, m);
            len = m + 1 + guard_rand(rng, 3);

            for (/* void */; m < len; m++) {
                text[n_vocab][m] = more[guard_rand(rng, sizeof(more) - 1)];
            }
        }

        for (i = 0; i < n_vocab; i++) {
            if (lens[i] == len && memcmp(text[i], text[n_vocab], len) == 0) {
                break;
            }
        }

        if (i == n_vocab) {
            texts[n_vocab] = text[n_vocab];
            lens[n_vocab++] = len;
        }
    }

    if (whole) {
        snprintf(tags, sizeof(tags), "{\"structures\":["
                 "{\"begin\":\"%sw#a\",\"schema\":{\"type\":\"integer\"},"
                 "\"end\":\"</>\"}%s%s%s],\"triggers\":[\"%s\"%s%s%s]}",
                 trig[0], n == 2 ? ",{\"begin\":\"" : "",
                 n == 2 ? trig[1] : "",
                 n == 2 ? "w#1\",\"schema\":{\"type\":\"integer\"},"
                          "\"end\":\"</>\"}" : "",
                 trig[0], n == 2 ? ",\"" : "", n == 2 ? trig[1] : "",
                 n == 2 ? "\"" : "");
        s = slora_json_tags_parse(tags, strlen(tags), &err);

    } else {
        n = 1;
        s = slora_json_schema_parse("{\"type\":\"object\"}", 17, &err);
    }

    v = slora_json_vocab_from(texts, lens, n_vocab, &err);

    if (s == NULL || v == NULL) {
        BAIL_OUT("%s", err.msg);
    }

    memset(t, 0, sizeof(t));

    for (k = 0; k < (int) n; k++) {
        t[k].len = (uint32_t) strlen(trig[k]);
        memcpy(t[k].text, trig[k], t[k].len);
        t[k].id = -1;
    }

    /* the text before: a few random tokens */
    for (m = guard_rand(rng, 4); m > 0; m--) {
        (void) slora_json_triggers_feed(t, n, v, (int32_t) guard_rand(rng,
                                                                (uint32_t)
                                                                n_vocab));
    }

    n_ids = slora_json_trigger_tokens(t, n, v, ids);
    memset(row, 0, sizeof(row));
    slora_json_trigger_guard(t, n, s, 0, whole, v, ids, n_ids, row);
    begun = n_ids > 0 || slora_json_triggers_begun(t, n);

    apart = 0;

    for (id = 0; id < n_vocab; id++) {
        memcpy(tried, t, sizeof(t));
        fired = slora_json_triggers_feed(tried, n, v, id);
        slora_json_init(&j, s);

        k = fired >= 0
            && !(whole ? slora_json_trigger_whole(&tried[fired], &j, v, id)
                       : slora_json_trigger_past(&tried[fired], &j, v, id));

        apart |= k != (row[id] < -1e30f);
        *refused += k;

        /* a step the engine leaves unguarded refuses nothing */
        apart |= k && !begun;
    }

    if (apart) {
        diag("apart: triggers \"%s\" \"%s\", tail \"%.*s\"", trig[0],
             n == 2 ? trig[1] : "", (int) t[0].tail_len, t[0].tail);
    }

    slora_json_schema_free(s);
    slora_json_vocab_free(v);

    return apart;
}


static uint32_t
guard_rand(uint32_t *rng, uint32_t n)
{
    *rng = *rng * 1664525u + 1013904223u;

    return (*rng >> 8) % n;
}


/* Whether text is printable ASCII but a quote or a backslash (a
 * trigger written into a JSON string as it is). */
static int
printable(const char *text)
{
    for (/* void */; *text != '\0'; text++) {
        if (*text < 0x20 || *text > 0x7e || *text == '"' || *text == '\\') {
            return 0;
        }
    }

    return 1;
}


/* One tag after trigger trig (its begin trig "<t>", TAGS_SCHEMA, end
 * "</t>"), more added to the object, into tags. */
static void
tags_after(char *tags, size_t size, const char *trig, const char *more)
{
    snprintf(tags, size, "{\"structures\":[{\"begin\":\"%s<t>\","
             "\"schema\":" TAGS_SCHEMA ",\"end\":\"</t>\"}],"
             "\"triggers\":[\"%s\"]%s}", trig, trig, more);
}


/* req (id, schema) through engine e to its end: its text. */
static void
answer(slora_engine_t *e, slora_request_t *req, uint64_t id,
    const char *schema, const slora_tokenizer_t *tok, chat_run_t *run,
    char *text, size_t size)
{
    slora_err_t  err;

    req->id = id;
    req->json_schema = schema;
    req->json_schema_len = strlen(schema);

    if (slora_engine_submit(e, req, &err) != SLORA_OK) {
        BAIL_OUT("submit: %s", err.msg);
    }

    chat_run_steps(e, run);
    chat_run_text(tok, run->tokens[id], run->n[id], text, size);
}


/*
 * SmolLM2 answers freely. A trigger made of that answer's first tokens'
 * text comes where the free answer has it, and the tag follows it; a
 * trigger of the same text less its last byte, which the last of those
 * tokens runs past where no tag goes, is written only as a tag's (the
 * guard refuses that token), so the answer turns away from it.
 */
static void
test_engine(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                   whole, done, held;
    char                  text[4096], free_text[4096], trig[64];
    char                  tags[1024], gate[64], gated[64], again[4096];
    char                 *at;
    size_t                n, m;
    int32_t               k, ids[CHAT_RUN_TOKENS], stop[8], n_free;
    int32_t               free_ids[CHAT_RUN_TOKENS];
    chat_run_t            run;
    slora_err_t           err;
    slora_engine_t       *e;
    slora_request_t       req;
    slora_json_schema_t  *s, *g;

    e = chat_run_engine(tok);
    chat_run_request(&req, tok, "Name a city and describe it.", ids, stop);
    req.id = 0;
    req.sampling.max_tokens = 64;
    req.sampling.temperature = 0;

    if (slora_engine_submit(e, &req, &err) != SLORA_OK) {
        BAIL_OUT("submit: %s", err.msg);
    }

    chat_run_steps(e, &run);
    chat_run_text(tok, run.tokens[0], run.n[0], free_text, sizeof(free_text));
    diag("free: %s", free_text);
    n_free = run.n[0];
    memcpy(free_ids, run.tokens[0], (size_t) n_free * sizeof(int32_t));

    /* the first tokens' text, 4 bytes or more */
    n = 0;

    for (k = 1; k <= run.n[0]; k++) {
        n = chat_run_text(tok, run.tokens[0], k, trig, sizeof(trig));

        if (n >= 4) {
            break;
        }
    }

    for (at = trig; *at != '\0' && *at != '"' && *at != '\\'
                    && (unsigned char) *at >= 0x20; at++)
    {
        /* void */
    }

    ok(n >= 4 && n <= SLORA_JSON_TRIGGER_MAX && *at == '\0',
       "the trigger: the free answer's first %d tokens, \"%s\"", k, trig);

    tags_after(tags, sizeof(tags), trig, "");
    req.json_form = SLORA_JSON_FORM_TAGS;
    answer(e, &req, 1, tags, tok, &run, text, sizeof(text));

    s = slora_json_tags_parse(tags, strlen(tags), &err);
    at = strstr(text, "</t>");
    whole = strncmp(text, trig, n) == 0 && at != NULL;

    if (whole) {
        at[4] = '\0';
        whole = takes(s, 0, text, &done) && done;
        at[4] = text[0];
    }

    ok(whole, "the answer begins with the trigger, as the free one does, "
       "and from it a whole tag: the begin, a value its schema admits, the "
       "end");
    at = strstr(text, "</t>");
    ok(run.errors == 0 && at != NULL
       && (at[4] != '\0' || run.stopped_by[1] >= 0),
       "and the tag's end does not end the answer: %s",
       at == NULL ? "no end" : at[4] != '\0' ? "text after it"
       : "the model's own stop token after it");

    /* stop_after_first: the tag's end ends the answer */
    tags_after(tags, sizeof(tags), trig, ",\"stop_after_first\":true");
    answer(e, &req, 2, tags, tok, &run, text, sizeof(text));
    n = strlen(text);
    ok(run.finish[2] == SLORA_FINISH_STOP && run.stopped_by[2] == -1
       && n > 4 && strcmp(text + n - 4, "</t>") == 0
       && takes(s, 0, text, &done) && done,
       "stop_after_first: the tag's end ends the answer");

    /* behind a gate of the same text (a think block's end), the trigger
     * passes the gate at the answer's start and begins no tag there:
     * the free answer, as the trigger does not come again in it */
    tags_after(tags, sizeof(tags), trig, "");
    req.json_gate = trig;
    req.json_gate_len = strlen(trig);
    answer(e, &req, 3, tags, tok, &run, text, sizeof(text));
    ok(strcmp(text, free_text) == 0 && strstr(free_text + 1, trig) == NULL,
       "behind a gate the trigger passes at the start: the free answer");
    req.json_gate = NULL;
    req.json_gate_len = 0;

    /* a gate the free answer's first token passes with a byte to spare,
     * a trigger of that byte and the second token's text: the trigger
     * begins in the token that passes the gate, and comes */
    n = chat_run_text(tok, free_ids, 1, gate, sizeof(gate));
    m = chat_run_text(tok, free_ids, 2, text, sizeof(text));
    snprintf(gated, sizeof(gated), "%s", text + n - 1);
    gate[n - 1] = '\0';
    ok(n >= 2 && m > n && m - n + 1 <= SLORA_JSON_TRIGGER_MAX
       && printable(gated), "a gate \"%s\", a trigger \"%s\"", gate,
       gated);
    tags_after(tags, sizeof(tags), gated, "");
    req.json_gate = gate;
    req.json_gate_len = strlen(gate);
    answer(e, &req, 3, tags, tok, &run, text, sizeof(text));
    req.json_gate = NULL;
    req.json_gate_len = 0;
    g = slora_json_tags_parse(tags, strlen(tags), &err);
    at = strstr(text, "</t>");
    whole = g != NULL && at != NULL && strncmp(text, free_text, m) == 0
            && strncmp(text + m, "<t>", 3) == 0;

    if (whole) {
        at[4] = '\0';
        whole = takes(g, 0, text + m - strlen(gated), &done) && done;
    }

    ok(whole, "a trigger begun in the token that passes the gate comes, "
       "its tag whole after it");
    slora_json_schema_free(g);

    /* the trigger less its last byte: the free answer runs past it */
    n = strlen(trig) - 1;
    trig[n] = '\0';
    tags_after(tags, sizeof(tags), trig, "");
    answer(e, &req, 3, tags, tok, &run, text, sizeof(text));

    held = 1;

    for (at = strstr(text, trig); at != NULL; at = strstr(at + 1, trig)) {
        held &= strncmp(at + n, "<t>", 3) == 0;
    }

    ok(strncmp(free_text, trig, n) == 0
       && strncmp(free_text + n, "<t>", 3) != 0 && held
       && run.errors == 0 && strcmp(text, free_text) != 0,
       "a trigger the free answer's token runs past (\"%s\"): the answer "
       "is another, and wherever it holds the trigger a tag follows", trig);

    /* the same as a tool call's trigger (its value an object from the
     * trigger's end, blanks skipped): the token is refused too, and
     * wherever the answer holds the trigger an object follows */
    req.json_form = SLORA_JSON_FORM_SCHEMA;
    req.json_trigger = trig;
    req.json_trigger_len = n;
    answer(e, &req, 3, TAGS_SCHEMA, tok, &run, text, sizeof(text));

    held = 1;

    for (at = strstr(text, trig); at != NULL; at = strstr(at + 1, trig)) {
        held &= at[n + strspn(at + n, " \n\t\r")] == '{';
    }

    ok(held && run.errors == 0 && strcmp(text, free_text) != 0,
       "a tool call's trigger the free answer's token runs past: the "
       "answer is another, and wherever it holds the trigger an object "
       "follows");
    req.json_trigger = NULL;
    req.json_trigger_len = 0;
    req.json_form = SLORA_JSON_FORM_TAGS;

    /* a trigger a token of the free answer holds whole, a byte after
     * it, the text before it ending with none of the trigger's first
     * bytes: a step the backend would draw unguarded but for the list of
     * such tokens, which the guard refuses */
    trig[0] = '\0';

    for (k = 0; k < n_free && trig[0] == '\0'; k++) {
        n = chat_run_text(tok, free_ids, k, text, sizeof(text));

        if (chat_run_text(tok, free_ids, k + 1, trig, sizeof(trig)) < n + 4
            || !printable(trig + n))
        {
            trig[0] = '\0';
            continue;
        }

        memmove(trig, trig + n, strlen(trig + n) + 1);
        trig[strlen(trig) - 1] = '\0';

        for (m = 1; m < strlen(trig); m++) {
            if (n >= m && strncmp(text + n - m, trig, m) == 0) {
                trig[0] = '\0';
                break;
            }
        }
    }

    ok(trig[0] != '\0', "a token of the free answer of 4 bytes or more, "
       "the trigger its text less its last: \"%s\"", trig);
    tags_after(tags, sizeof(tags), trig, "");
    answer(e, &req, 3, tags, tok, &run, text, sizeof(text));
    n = strlen(trig);
    held = 1;

    for (at = strstr(text, trig); at != NULL; at = strstr(at + 1, trig)) {
        held &= strncmp(at + n, "<t>", 3) == 0;
    }

    ok(held && run.errors == 0 && strcmp(text, free_text) != 0,
       "a token holding the trigger whole runs past it: the answer is "
       "another, and wherever it holds the trigger a tag follows");

    /* again: the engine's list of such tokens kept from the last
     * request of the same triggers, the same answer */
    snprintf(again, sizeof(again), "%s", text);
    answer(e, &req, 2, tags, tok, &run, text, sizeof(text));
    ok(strcmp(text, again) == 0, "the same triggers again (the list "
       "kept): the same answer");

    /* that token the only one allowed: the guard leaves none, and says
     * why */
    req.sampling.n_allowed = 1;
    req.sampling.allowed_ids[0] = free_ids[k - 1];
    answer(e, &req, 2, tags, tok, &run, text, sizeof(text));
    req.sampling.n_allowed = 0;
    ok(chat_run_guard_refused(&run, 2),
       "allowed_token_ids of that token alone: an error naming the "
       "trigger: %s", run.error);

    /* no triggers: the answer is one tag */
    snprintf(tags, sizeof(tags), "{\"structures\":[{\"begin\":\"<t>\","
             "\"schema\":" TAGS_SCHEMA ",\"end\":\"</t>\"}],"
             "\"triggers\":[]}");
    slora_json_schema_free(s);
    s = slora_json_tags_parse(tags, strlen(tags), &err);
    answer(e, &req, 0, tags, tok, &run, text, sizeof(text));
    ok(run.finish[0] == SLORA_FINISH_STOP && takes(s, 0, text, &done)
       && done, "no triggers: the answer one tag, whole");

    /* compact: the same tag with no blank outside its strings */
    req.json_compact = 1;
    answer(e, &req, 0, tags, tok, &run, text, sizeof(text));
    diag("compact: %s", text);
    ok(run.finish[0] == SLORA_FINISH_STOP && takes(s, 1, text, &done)
       && done, "compact: the tag whole, no blank outside its strings");
    req.json_compact = 0;

    /* at_least_one: a tag from the answer's first byte, as without
     * triggers, then the text free again; with stop_after_first the
     * answer is that tag */
    tags_after(tags, sizeof(tags), "#", ",\"at_least_one\":true");
    slora_json_schema_free(s);
    s = slora_json_tags_parse(tags, strlen(tags), &err);
    ok(s != NULL && slora_json_tags_first(s) && strchr(free_text, '#') == NULL,
       "at_least_one parsed; the free answer holds no trigger \"#\"");
    answer(e, &req, 0, tags, tok, &run, text, sizeof(text));
    diag("at_least_one: %s", text);
    at = strstr(text, "</t>");
    whole = at != NULL && strncmp(text, "#<t>", 4) == 0;

    if (whole) {
        m = (size_t) (at + 4 - text);
        snprintf(again, sizeof(again), "%.*s", (int) m, text);
        whole = takes(s, 0, again, &done) && done;
    }

    ok(whole && run.errors == 0 && (at[4] != '\0' || run.stopped_by[0] >= 0),
       "at_least_one: the answer begins with a whole tag and goes on after "
       "it (%s)", at == NULL ? "no end" : at[4] != '\0' ? "text after it"
       : "the model's own stop token after it");

    tags_after(tags, sizeof(tags), "#",
               ",\"at_least_one\":true,\"stop_after_first\":true");
    answer(e, &req, 0, tags, tok, &run, text, sizeof(text));
    ok(run.finish[0] == SLORA_FINISH_STOP && run.stopped_by[0] == -1
       && takes(s, 0, text, &done) && done,
       "at_least_one and stop_after_first: the answer one tag, whole");

    /* behind a gate the first tag comes after it: a gate the free
     * answer's first token passes with a byte c to spare. With begin
     * "c#<t>" that byte begins the tag: the token, then the tag whole.
     * With begin "#<t>" no tag begins with it: the token is not drawn
     * (the gate's guard), the answer another, and wherever it passes the
     * gate a tag follows */
    n = chat_run_text(tok, free_ids, 1, gate, sizeof(gate));
    ok(n >= 2 && printable(gate), "a gate: \"%.*s\", c \"%c\"",
       (int) n - 1, gate, gate[n - 1]);
    snprintf(gated, sizeof(gated), "%c#", gate[n - 1]);
    gate[n - 1] = '\0';
    req.json_gate = gate;
    req.json_gate_len = n - 1;

    tags_after(tags, sizeof(tags), gated,
               ",\"at_least_one\":true,\"stop_after_first\":true");
    g = slora_json_tags_parse(tags, strlen(tags), &err);
    answer(e, &req, 0, tags, tok, &run, text, sizeof(text));
    diag("at_least_one behind a gate: %s", text);
    ok(g != NULL && strncmp(text, free_text, n) == 0
       && strncmp(text + n, "#<t>", 4) == 0
       && takes(g, 0, text + n - 1, &done) && done
       && run.finish[0] == SLORA_FINISH_STOP,
       "at_least_one behind a gate, the begin \"c#<t>\": the token that "
       "passes it, the byte past the gate beginning the tag whole");
    slora_json_schema_free(g);

    tags_after(tags, sizeof(tags), "#",
               ",\"at_least_one\":true,\"stop_after_first\":true");
    answer(e, &req, 0, tags, tok, &run, text, sizeof(text));
    diag("at_least_one behind a gate, \"#<t>\": %s", text);
    held = 1;

    for (at = strstr(text, gate); at != NULL; at = strstr(at + 1, gate)) {
        m = strlen(gate);
        held &= strncmp(at + m + strspn(at + m, " \n\t\r"), "#<t>", 4)
                == 0;
    }

    ok(run.errors == 0 && strncmp(text, free_text, n) != 0 && held,
       "at_least_one behind a gate, the begin \"#<t>\": the token that "
       "passes the gate with a byte no tag begins with is not drawn, and "
       "wherever the answer passes the gate a tag follows");

    req.json_gate = NULL;
    req.json_gate_len = 0;

    /* a trigger beside a structural tag's own is refused */
    req.json_trigger = "<t";
    req.json_trigger_len = 2;
    snprintf(tags, sizeof(tags), "{\"structures\":[{\"begin\":\"<t>\","
             "\"schema\":{},\"end\":\"</t>\"}],\"triggers\":[\"<t\"]}");
    req.json_schema_len = strlen(tags);
    ok(slora_engine_submit(e, &req, &err) == SLORA_ERROR
       && strstr(err.msg, "takes no other") != NULL,
       "a trigger beside a structural tag's triggers is refused: %s",
       err.msg);

    slora_json_schema_free(s);
    slora_engine_free(e);
    (void) v;
}
