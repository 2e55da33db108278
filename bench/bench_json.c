/*
 * bench_json.c: times JSON mode's mask (slora_json_mask) on SmolLM2's
 * 49152 tokens at states of each kind: before the object, after '{', in
 * a key, after it, after ':', in a string value, in a number, after '[',
 * in a literal, after a backslash; then under a tool call's schema (two
 * functions told apart by name, as tool_choice "required" sends it), a
 * guided_choice, strings with patterns (a zip code's digits, an email
 * address's free text, a name with both length bounds), a
 * guided_regex and a guided_grammar whose rules reach themselves
 * (llama.cpp's JSON grammar, held as a stack of its rules' automata,
 * beside JSON mode's states of the same texts), and structural tags
 * (two tool calls' tags after a trigger: in a begin text, in a value,
 * and in the free text before a trigger, where the guard tries the
 * tokens that may complete one: those holding one whole, and where the
 * text ends with a trigger's first bytes those beginning with its rest,
 * for a trigger "<function=" and one that ends with a blank). Prints
 * the tokens each state allows and the best of five rounds of 200
 * masks, in microseconds a row.
 *
 *     bench_json [model.gguf]
 *
 * The one idea: the mask runs once a step for every JSON-mode request,
 * on the host, so its cost a row is what JSON mode adds to a step.
 *
 * Build (from the repository root, after `make lib`):
 *     cc -std=gnu11 -O2 -Iengine -Ikernels bench/bench_json.c \
 *         build/libslora.a $(pkg-config --libs libcjson libpcre2-8 \
 *         openblas hiredis libcrypto) -lpthread -lm -o build/bench_json
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json.h"


#define BENCH_JSON_ROUNDS  5
#define BENCH_JSON_MASKS   200


/* One state's line: the text fed under schema s, the tokens it allows
 * and the best round's microseconds a row. */
static int
bench_json_state(const char *what, const slora_json_schema_t *s,
    const char *text, const slora_json_vocab_t *v, float *row)
{
    int            r, k;
    double         best, us;
    int32_t        n;
    int64_t        t0;
    slora_json_t   j;

    slora_json_init(&j, s);

    if (!slora_json_feed(&j, text, strlen(text))) {
        fprintf(stderr, "bench_json: \"%s\" refused\n", text);
        return 1;
    }

    best = 1e30;
    n = 0;

    for (r = 0; r < BENCH_JSON_ROUNDS; r++) {
        t0 = slora_now_ns();

        for (k = 0; k < BENCH_JSON_MASKS; k++) {
            n = slora_json_mask(&j, v, row);
        }

        us = (double) (slora_now_ns() - t0) / 1e3 / BENCH_JSON_MASKS;
        best = us < best ? us : best;
    }

    printf("%-14s %-58s %8d %8.1f\n", what, text, n, best);

    return 0;
}


/* The guard's line: a row of free text before one of s's triggers,
 * after text (which must not complete one): the tokens the guard tries
 * and leaves, and the best round's microseconds a row (the refused
 * tokens' entries set afresh before each). */
static int
bench_json_guard(const slora_json_schema_t *s, const char *text,
    const slora_json_vocab_t *v, float *row, int32_t n_vocab)
{
    int                    r, k;
    double                 best, us, list_us;
    size_t                 len;
    int32_t                n_ids, n_gone, id, j, left, *ids, *gone;
    int64_t                t0;
    uint32_t               i, n;
    const char            *p;
    slora_json_trigger_t   t[SLORA_JSON_TRIGGERS_MAX];

    n = slora_json_tags_triggers(s);
    memset(t, 0, sizeof(t));

    for (i = 0; i < n; i++) {
        p = slora_json_tags_trigger(s, i, &len);
        memcpy(t[i].text, p, len);
        t[i].len = (uint32_t) len;
        t[i].id = -1;
    }

    ids = malloc((size_t) n_vocab * sizeof(int32_t));
    gone = malloc((size_t) n_vocab * sizeof(int32_t));
    if (ids == NULL || gone == NULL) {
        free(gone);
        free(ids);
        return 1;
    }

    t0 = slora_now_ns();
    n_ids = slora_json_trigger_tokens(t, n, v, ids);
    list_us = (double) (slora_now_ns() - t0) / 1e3;
    memset(row, 0, (size_t) n_vocab * sizeof(float));

    /* the free text so far, in the triggers' tails */
    for (i = 0; i < n; i++) {
        len = strlen(text);
        len = len < t[i].len - 1 ? len : t[i].len - 1;
        memcpy(t[i].tail, text + strlen(text) - len, len);
        t[i].tail_len = (uint32_t) len;
    }

    /* the tokens it refuses, set afresh before each row timed: the guard
     * skips a token already refused */
    slora_json_trigger_guard(t, n, s, 0, 1, v, ids, n_ids, row);

    for (left = 0, n_gone = 0, id = 0; id < n_vocab; id++) {
        if (row[id] == 0) {
            left++;

        } else {
            gone[n_gone++] = id;
        }
    }

    best = 1e30;

    for (r = 0; r < BENCH_JSON_ROUNDS; r++) {
        t0 = slora_now_ns();

        for (k = 0; k < BENCH_JSON_MASKS; k++) {
            for (j = 0; j < n_gone; j++) {
                row[gone[j]] = 0;
            }

            slora_json_trigger_guard(t, n, s, 0, 1, v, ids, n_ids, row);
        }

        us = (double) (slora_now_ns() - t0) / 1e3 / BENCH_JSON_MASKS;
        best = us < best ? us : best;
    }

    memset(row, 0, (size_t) n_vocab * sizeof(float));

    printf("%-14s %-58s %8d %8.1f\n", "tags' guard", text, left, best);
    printf("%-14s %-58s %8d %8.1f\n", "",
           "(tokens holding a trigger whole, listed once)", n_ids, list_us);
    free(gone);
    free(ids);

    return 0;
}


int
main(int argc, char **argv)
{
    int                   i;
    float                *row;
    int32_t               n_vocab;
    int64_t               t0;
    const char           *path;
    slora_err_t           err;
    slora_tokenizer_t    *t;
    slora_json_vocab_t   *v;
    slora_json_schema_t  *call_s, *choice_s, *pat_s, *re_s, *gram_s, *tag_s;
    slora_json_schema_t  *act_s;

    static const char  *texts[] = {
        "", "{", "{\"na", "{\"name\"", "{\"name\":", "{\"name\": \"App",
        "{\"a\": 12", "{\"a\": [", "{\"a\": tr", "{\"a\": \"\\",
    };
    static const char   call[] =
        "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"name\":"
        "{\"const\":\"get_weather\"},\"arguments\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":32},"
        "\"unit\":{\"enum\":[\"celsius\",\"fahrenheit\"]}},\"required\":"
        "[\"city\"]}},\"required\":[\"name\",\"arguments\"]},{\"type\":"
        "\"object\",\"properties\":{\"name\":{\"const\":\"get_time\"},"
        "\"arguments\":{\"type\":\"object\",\"properties\":{\"timezone\":"
        "{\"type\":\"string\"}},\"required\":[\"timezone\"]}},"
        "\"required\":[\"name\",\"arguments\"]}]}";
    static const char  *calls[] = {
        "", "{", "{\"name\": ", "{\"name\": \"get_", "{\"name\": "
        "\"get_weather\", \"arguments\": ", "{\"name\": \"get_weather\", "
        "\"arguments\": {\"city\": \"Lis", "{\"name\": \"get_weather\", "
        "\"arguments\": {\"city\": \"Lisbon\", \"unit\": ",
    };
    static const char   choice[] = "[\"positive\",\"negative\",\"neutral\"]";
    static const char  *choices[] = { "", "ne" };
    static const char   pat[] =
        "{\"type\":\"object\",\"properties\":{\"zip\":{\"type\":\"string\","
        "\"pattern\":\"^\\\\d{5}(-\\\\d{4})?$\"},\"email\":{\"type\":"
        "\"string\",\"pattern\":\"^[^@\\\\s]+@[^@\\\\s]+\\\\.[a-z]{2,}$\"},"
        "\"name\":{\"type\":\"string\",\"pattern\":\"^\\\\S+ \\\\S+$\","
        "\"minLength\":5,\"maxLength\":40}},\"required\":[\"zip\","
        "\"email\",\"name\"]}";
    static const char  *pats[] = {
        "{\"zip\": \"12", "{\"zip\": \"12345\", \"email\": \"ana",
        "{\"zip\": \"12345\", \"email\": \"ana@example.org\", \"name\": "
        "\"Ada Love",
    };
    static const char   re[] = "(Yes|No), because [a-z ]{5,40}\\.";
    static const char  *res[] = { "", "No, because the sky" };
    static const char   gram[] =
        "root   ::= object\n"
        "value  ::= object | array | string | number | (\"true\" | "
        "\"false\" | \"null\") ws\n"
        "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string "
        "\":\" ws value)* )? \"}\" ws\n"
        "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
        "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" "
        "([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\" ws\n"
        "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? "
        "([eE] [-+]? [0-9] [1-9]{0,15})? ws\n"
        "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";
    static const char   tag[] =
        "{\"structures\":[{\"begin\":\"<function=get_weather>\",\"schema\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
        "\"string\",\"maxLength\":32},\"unit\":{\"enum\":[\"celsius\","
        "\"fahrenheit\"]}},\"required\":[\"city\"]},\"end\":"
        "\"</function>\"},{\"begin\":\"<function=get_time>\",\"schema\":"
        "{\"type\":\"object\",\"properties\":{\"timezone\":{\"type\":"
        "\"string\"}},\"required\":[\"timezone\"]},\"end\":"
        "\"</function>\"}],\"triggers\":[\"<function=\"]}";
    static const char  *tags[] = {
        "<function=", "<function=get_w", "<function=get_weather>",
        "<function=get_weather>{\"city\": \"Lis",
        "<function=get_weather>{\"city\": \"Lisbon\"}",
    };
    static const char  *frees[] = { "I will call", "I will <function" };
    /* a trigger that ends with a blank: where the output ends with the
     * rest of it, every token that begins with a blank is tried */
    static const char   act[] = "{\"structures\":[{\"begin\":\"Action: "
        "search(\",\"schema\":{\"type\":\"string\"},\"end\":\")\"}],"
        "\"triggers\":[\"Action: \"]}";
    static const char  *acts[] = {
        "I will act", "Thought: look it up. Action:"
    };
    static const char  *grams[] = {
        "", "{", "{\"a\": ", "{\"a\": \"te", "{\"a\": [1, {\"b\": ",
        "{\"a\": 12",
    };

    path = argc > 1 ? argv[1] : "models/SmolLM2-135M-Instruct.Q4_1.gguf";

    t = slora_tokenizer_load(path, &err);
    if (t == NULL) {
        fprintf(stderr, "bench_json: %s\n", err.msg);
        return 1;
    }

    n_vocab = slora_tokenizer_n_vocab(t);
    t0 = slora_now_ns();
    v = slora_json_vocab_create(t, n_vocab, &err);
    row = calloc((size_t) n_vocab, sizeof(float));

    if (v == NULL || row == NULL) {
        fprintf(stderr, "bench_json: %s\n", v ? "no memory" : err.msg);
        return 1;
    }

    printf("%d tokens, their table in %.1f ms\n", n_vocab,
           (double) (slora_now_ns() - t0) / 1e6);

    call_s = slora_json_schema_parse(call, strlen(call), &err);
    choice_s = call_s != NULL ? slora_json_choice_parse(choice,
                                                        strlen(choice), &err)
                              : NULL;
    pat_s = choice_s != NULL ? slora_json_schema_parse(pat, strlen(pat),
                                                       &err)
                             : NULL;
    re_s = pat_s != NULL ? slora_json_regex_parse(re, strlen(re), &err)
                         : NULL;
    gram_s = re_s != NULL ? slora_json_grammar_parse(gram, strlen(gram),
                                                     &err)
                          : NULL;
    tag_s = gram_s != NULL ? slora_json_tags_parse(tag, strlen(tag), &err)
                           : NULL;
    act_s = tag_s != NULL ? slora_json_tags_parse(act, strlen(act), &err)
                          : NULL;
    if (act_s == NULL) {
        fprintf(stderr, "bench_json: %s\n", err.msg);
        return 1;
    }

    for (i = 0; i < (int) (sizeof(texts) / sizeof(texts[0])); i++) {
        if (bench_json_state("JSON mode", NULL, texts[i], v, row) != 0) {
            return 1;
        }
    }

    for (i = 0; i < (int) (sizeof(calls) / sizeof(calls[0])); i++) {
        if (bench_json_state("a tool call", call_s, calls[i], v, row) != 0) {
            return 1;
        }
    }

    for (i = 0; i < (int) (sizeof(choices) / sizeof(choices[0])); i++) {
        if (bench_json_state("guided_choice", choice_s, choices[i], v, row)
            != 0)
        {
            return 1;
        }
    }

    for (i = 0; i < (int) (sizeof(pats) / sizeof(pats[0])); i++) {
        if (bench_json_state("patterns", pat_s, pats[i], v, row) != 0) {
            return 1;
        }
    }

    for (i = 0; i < (int) (sizeof(res) / sizeof(res[0])); i++) {
        if (bench_json_state("guided_regex", re_s, res[i], v, row) != 0) {
            return 1;
        }
    }

    for (i = 0; i < (int) (sizeof(grams) / sizeof(grams[0])); i++) {
        if (bench_json_state("guided_grammar", gram_s, grams[i], v, row) != 0
            || bench_json_state("JSON mode", NULL, grams[i], v, row) != 0)
        {
            return 1;
        }
    }

    for (i = 0; i < (int) (sizeof(tags) / sizeof(tags[0])); i++) {
        if (bench_json_state("structural tag", tag_s, tags[i], v, row)
            != 0)
        {
            return 1;
        }
    }

    for (i = 0; i < (int) (sizeof(frees) / sizeof(frees[0])); i++) {
        if (bench_json_guard(tag_s, frees[i], v, row, n_vocab) != 0) {
            return 1;
        }
    }

    for (i = 0; i < (int) (sizeof(acts) / sizeof(acts[0])); i++) {
        if (bench_json_guard(act_s, acts[i], v, row, n_vocab) != 0) {
            return 1;
        }
    }

    slora_json_schema_free(act_s);
    slora_json_schema_free(tag_s);
    slora_json_schema_free(call_s);
    slora_json_schema_free(gram_s);
    slora_json_schema_free(choice_s);
    slora_json_schema_free(pat_s);
    slora_json_schema_free(re_s);
    free(row);
    slora_json_vocab_free(v);
    slora_tokenizer_free(t);

    return 0;
}
