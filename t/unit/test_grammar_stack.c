/*
 * test_grammar_stack.c: vLLM's guided_grammar with rules that reach
 * themselves, held as a stack of the rules' automata
 * (slora_json_grammar.c).
 *
 *   (a) grammars taken, each with texts it derives (the answer may end
 *       there) and texts it does not: nested parentheses, llama.cpp's
 *       JSON grammar, arithmetic through three rules, a rule that may
 *       take nothing named in its own middle and end, a list that names
 *       itself last run for 2000 items without the stack growing,
 *       nesting up to the stack's 64 frames and a byte refused past
 *       them (the text can still end), and the innermost rule's way
 *       kept where the grammar leaves two for a byte;
 *   (b) grammars refused, each with its reason: left recursion, direct,
 *       through another rule and past a rule that may take nothing; a
 *       rule that never ends; 26 rules that reach themselves;
 *   (d) what depends on the order of rules or of states: the fixed
 *       points read each rule's own bytes (a grammar refused as never
 *       ending before, one taken that never ends), a call last in its
 *       rule counted only once first and end are settled (a stack that
 *       could be filled past where the text can end), calls of rules
 *       that may take nothing passed over in a cycle (texts refused
 *       that the grammar derives), a call whose way needs one frame more
 *       than is left, the JSON grammar 64 deep, at most 8 calls of rules
 *       that may take nothing in a row; each never stuck: some byte taken or
 *       the answer may end, at every byte of a walk to the stack's
 *       depth;
 *   (c) the mask against every SmolLM2 token along derived texts, and
 *       the engine's greedy and sampled answers each a text of the
 *       grammar as PCRE2 reads a recursive expression written by hand.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "grammar_run.h"
#include "mask_check.h"
#include "slora_grammar.h"
#include "slora_json.h"
#include "slora_engine.h"


static void test_taken(void);
static void test_long(void);
static void test_refused(void);
static void test_orders(void);
static int never_stuck(const slora_json_schema_t *s, const char *text);
static void test_model(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);


static const char  json_gbnf[] =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | "
    "\"null\") ws\n"
    "object ::=\n"
    "  \"{\" ws (\n"
    "            string \":\" ws value\n"
    "    (\",\" ws string \":\" ws value)*\n"
    "  )? \"}\" ws\n"
    "array  ::=\n"
    "  \"[\" ws (\n"
    "            value\n"
    "    (\",\" ws value)*\n"
    "  )? \"]\" ws\n"
    "string ::=\n"
    "  \"\\\"\" (\n"
    "    [^\"\\\\\\x7F\\x00-\\x1F] |\n"
    "    \"\\\\\" ([\"\\\\bfnrt] | \"u\" [0-9a-fA-F]{4})\n"
    "  )* \"\\\"\" ws\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? "
    "([eE] [-+]? [0-9] [1-9]{0,15})? ws\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";


int
main(void)
{
    slora_tokenizer_t   *tok;
    slora_json_vocab_t  *v;

    test_taken();
    test_long();
    test_refused();
    test_orders();

    v = mask_check_vocab(&tok);
    test_model(tok, v);

    slora_json_vocab_free(v);
    slora_tokenizer_free(tok);

    return done_testing();
}


/* (a) */
static void
test_taken(void)
{
    size_t  i;

    static const struct {
        const char  *what;
        const char  *grammar;
        const char  *in[5];
        const char  *out[5];
    } cases[] = {
        { "nested parentheses: root names itself",
          "root ::= \"(\" root \")\" | \"x\"",
          { "x", "(x)", "((((x))))" },
          { "(x", "x)", "()", "((x)", "(x))" } },

        { "llama.cpp's JSON grammar",
          json_gbnf,
          { "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}",
            "{}", "{\"k\": [[[]], {\"x\": -1.5e3}], \"s\": \"\\u00e9\\n\"} ",
            "{\n  \"a\": true\n}" },
          { "{\"a\": }", "{\"a\": [1,]}", "[1]", "{\"a\": [}", "{\"a\" 1}" } },

        { "arithmetic through three rules",
          "root ::= expr\n"
          "expr ::= term ((\"+\" | \"-\") term)*\n"
          "term ::= factor ((\"*\" | \"/\") factor)*\n"
          "factor ::= [0-9]+ | \"(\" expr \")\"\n",
          { "1+2*(3-4)", "((7))", "(1+(2*(3/(4-5))))*6" },
          { "1+", "(1+2", "1+2)", "()", "1++2" } },

        { "a rule that may take nothing, named in its middle and at its end",
          "root ::= a \"z\"\n"
          "a ::= \"(\" a \")\" a | \n",
          { "z", "()z", "(())()z", "()(()())z" },
          { "(z", ")z", "(()z", "())z", "" } },

        { "of two ways for a byte the innermost rule's is kept: p goes on "
          "with '!'",
          "root ::= p \"!\"\n"
          "p ::= \"(\" p \")\" \"!\"? | \"x\"\n",
          { "x!", "(x)!!", "((x)!)!!" },
          { "(x)!", "x!!", "(x)" } },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        grammar_texts(cases[i].what, cases[i].grammar, cases[i].in,
                      cases[i].out, 5);
    }
}


/* (a) the stack: a list named last, nesting to the stack's depth */
static void
test_long(void)
{
    int                   deepest;
    char                 *text;
    size_t                k, at;
    slora_err_t           err;
    slora_json_t          j, t;
    slora_json_schema_t  *s;

    static const char  list[] =
        "root ::= \"[\" items \"]\"\n"
        "items ::= item (\",\" items)?\n"
        "item ::= [a-z]+\n";
    static const char  nest[] = "root ::= \"(\" root \")\" | \"x\"";

    s = slora_json_grammar_parse(list, strlen(list), &err);
    if (!ok(s != NULL, "a list that names itself last: taken")) {
        diag("%s", err.msg);
        return;
    }

    text = malloc(8192);
    at = 0;
    text[at++] = '[';

    for (k = 0; k < 2000; k++) {
        text[at++] = (char) ('a' + k % 26);
        text[at++] = ',';
    }

    text[at - 1] = ']';
    text[at] = '\0';

    slora_json_init(&j, s);
    deepest = 0;

    for (k = 0; k < at; k++) {
        if (!slora_json_feed(&j, text + k, 1)) {
            break;
        }

        deepest = j.depth > deepest ? j.depth : deepest;
    }

    ok(k == at && (slora_json_done(&j) || slora_json_may_end(&j))
       && deepest == 2,
       "2000 items taken, the stack never past 2 frames (%zu of %zu bytes, "
       "%d deep)", k, at, deepest);
    slora_json_schema_free(s);

    s = slora_json_grammar_parse(nest, strlen(nest), &err);
    if (!ok(s != NULL, "nested parentheses: taken")) {
        diag("%s", err.msg);
        free(text);
        return;
    }

    /* 63 open: the 64th '(' would leave no frame for the text to end */
    slora_json_init(&j, s);
    memset(text, '(', 63);

    ok(slora_json_feed(&j, text, 63), "63 '(' taken");

    slora_json_copy(&t, &j);
    ok(!slora_json_feed(&t, "(", 1), "a 64th refused");

    slora_json_copy(&t, &j);
    text[0] = 'x';
    memset(text + 1, ')', 63);
    ok(slora_json_feed(&t, text, 64) && slora_json_done(&t),
       "'x' and 63 ')' end the answer there");

    slora_json_copy(&t, &j);
    ok(slora_json_feed(&t, "x))", 3) && !slora_json_may_end(&t)
       && !slora_json_feed(&t, "x", 1),
       "with parentheses still open the answer may not end, nor take "
       "another 'x'");

    slora_json_schema_free(s);
    free(text);
}


/* (b) */
static void
test_refused(void)
{
    char                 *big;
    size_t                i, at;
    slora_err_t           err;
    slora_json_schema_t  *s;

    static const struct {
        const char  *grammar;
        const char  *says;
    } cases[] = {
        { "root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"",
          "before any text of their own (expr -> expr): left recursion" },
        { "root ::= a\na ::= b \"x\" | \"y\"\nb ::= a \"z\"",
          "(a -> b -> a)" },
        { "root ::= a\na ::= n a \"x\" | \"y\"\nn ::= \"q\" n | ",
          "(a -> a)" },
        { "root ::= \"x\" root", "rule \"root\" never ends" },
        { "root ::= \"(\" a \")\"\na ::= \"[\" a \"]\"", "rule \"a\" never "
          "ends" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err.msg[0] = '\0';
        s = slora_json_grammar_parse(cases[i].grammar,
                                     strlen(cases[i].grammar), &err);
        ok(s == NULL && strstr(err.msg, cases[i].says) != NULL,
           "refused, saying \"%s\": %s", cases[i].says, err.msg);
        slora_json_schema_free(s);
    }

    /* 25 rules that reach themselves are held, 26 are not */
    for (i = 25; i <= 26; i++) {
        big = malloc(8192);
        at = (size_t) snprintf(big, 8192, "root ::= r0\n");

        for (size_t k = 0; k < i; k++) {
            at += (size_t) snprintf(big + at, 8192 - at,
                                    "r%zu ::= \"<\" r%zu \">\" | \"x\"\n", k,
                                    (k + 1) % i);
        }

        s = slora_json_grammar_parse(big, at, &err);
        ok(i == 25 ? s != NULL && grammar_derives(s, "<<<x>>>")
                   : s == NULL && strstr(err.msg, "more than 25 rules besides "
                                         "root that reach themselves") != NULL,
           "%zu rules that reach themselves: %s", i,
           s != NULL ? "taken" : err.msg);
        slora_json_schema_free(s);
        free(big);
    }
}


/* (d) */
static void
test_orders(void)
{
    char                  text[256];
    size_t                i, k, at;
    slora_err_t           err;
    slora_json_t          j, t;
    slora_json_schema_t  *s;

    static const char  nested[] =
        "c ::= \"{\" c \"}\" | \"z\"\n"
        "b ::= c b | c\n"
        "a ::= \"(\" a \")\" | \"y\"\n"
        "root ::= \"<\" root \">\" | k\n"
        "k ::= \"[\" k \"]\" | \"x\" a b?\n";
    static const char  small[] =
        "c ::= \"x\" b b\n"
        "root ::= b\n"
        "b ::= a\n"
        "a ::= \"x\" \")\" | (\"y\" \"x\" a)? c\n";
    static const char  endless[] =
        "b ::= root b\n"
        "a ::= \"y\" | [0-9] b\n"
        "root ::= (a root b | [0-9])+ \"(\" (b \"x\")\n"
        "c ::= root a\n";
    static const char  cycle[] =
        "root ::= (n n)* m \"z\"\n"
        "n ::= \"\" | \"(\" n \")\"\n"
        "m ::= \"\" | \"[\" m \"]\"\n";
    static const char  room[] =
        "root ::= a\n"
        "a ::= \"(\" a \")\" | \"x\" (\"[\" b \"]\")? | \"\"\n"
        "b ::= \"{\" b \"}\" | \"y\"\n";
    static const char  cycle_deep[] =
        "root ::= \"<\" root \">\" | (n n)* m \"z\"\n"
        "n ::= \"\" | \"(\" n \")\"\n"
        "m ::= \"\" | \"[\" m \"]\"\n";

    s = slora_json_grammar_parse(nested, strlen(nested), &err);
    ok(s != NULL && grammar_derives(s, "xyz")
       && grammar_derives(s, "<[xy{z}z]>") && !grammar_derives(s, "<x>"),
       "five rules calling each other, b read with its own bytes: taken, "
       "its texts derived: %s", s != NULL ? "taken" : err.msg);

    if (s != NULL) {
        /* root after '<' needs 2 frames above it: 62 open at most */
        memset(text, '<', 62);
        slora_json_init(&j, s);
        ok(slora_json_feed(&j, text, 62), "62 '<' taken");
        slora_json_copy(&t, &j);
        ok(!slora_json_feed(&t, "<", 1), "a 63rd refused: the text could "
           "not end within the stack");
        memcpy(text + 62, "xyz", 3);
        memset(text + 65, '>', 62);
        text[127] = '\0';
        ok(never_stuck(s, text) && grammar_derives(s, text), "62 '<', \"xyz\" "
           "and 62 '>': never stuck, derived");
        slora_json_schema_free(s);
    }

    s = slora_json_grammar_parse(small, strlen(small), &err);
    ok(s != NULL && grammar_derives(s, "x)") && !grammar_derives(s, "yxx)"),
       "a rule named only through others: taken, \"x)\" derived: %s",
       s != NULL ? "taken" : err.msg);
    slora_json_schema_free(s);

    s = slora_json_grammar_parse(endless, strlen(endless), &err);
    ok(s == NULL && strstr(err.msg, "never ends") != NULL,
       "a grammar with no finite text refused: %s", err.msg);
    slora_json_schema_free(s);

    s = slora_json_grammar_parse(cycle, strlen(cycle), &err);
    ok(s != NULL && grammar_derives(s, "z") && grammar_derives(s, "()z")
       && grammar_derives(s, "()()z") && grammar_derives(s, "[]z")
       && grammar_derives(s, "(())[]z")
       && !grammar_derives(s, "(z"),
       "calls of rules that may take nothing, passed over in a cycle: "
       "their texts derived: %s", s != NULL ? "taken" : err.msg);
    slora_json_schema_free(s);

    /* a call whose way needs one frame more than is left is not taken */
    s = slora_json_grammar_parse(room, strlen(room), &err);
    memset(text, '(', 64);
    memcpy(text + 64, "x[y]", 4);
    memset(text + 68, ')', 64);
    text[132] = '\0';
    ok(s != NULL && never_stuck(s, text), "64 '(' then \"x[\", where '[' "
       "would call b with no frame left: never stuck");
    slora_json_schema_free(s);

    s = slora_json_grammar_parse(json_gbnf, strlen(json_gbnf), &err);
    at = (size_t) snprintf(text, sizeof(text), "{\"a\":");
    memset(text + at, '[', 63);
    snprintf(text + at + 63, sizeof(text) - at - 63, "{\"b\": 1}");
    ok(s != NULL && never_stuck(s, text), "the JSON grammar 64 deep: never "
       "stuck");
    slora_json_schema_free(s);

    /* 8 rules that may take nothing named in a row are held, 9 are not */
    for (k = 8; k <= 9; k++) {
        at = (size_t) snprintf(text, sizeof(text), "root ::= ");

        for (i = 0; i < k; i++) {
            at += (size_t) snprintf(text + at, sizeof(text) - at, "n ");
        }

        snprintf(text + at, sizeof(text) - at, "\"z\"\n"
                 "n ::= \"\" | \"(\" n \")\"\n");
        s = slora_json_grammar_parse(text, strlen(text), &err);
        ok(k == 8 ? s != NULL && grammar_derives(s, "z")
                    && grammar_derives(s, "()(())z")
                  : s == NULL && strstr(err.msg, "more than 8 rules that may "
                                        "take nothing are named one after "
                                        "another") != NULL,
           "%zu rules that may take nothing in a row: %s", k,
           s != NULL ? "taken" : err.msg);
        slora_json_schema_free(s);
    }

    s = slora_json_grammar_parse(cycle_deep, strlen(cycle_deep), &err);
    memset(text, '<', 63);
    memcpy(text + 63, "z", 1);
    memset(text + 64, '>', 63);
    text[127] = '\0';
    ok(s != NULL && never_stuck(s, text) && grammar_derives(s, text),
       "and 63 '<' deep, where no call has room: never stuck, \"z\" taken");
    slora_json_schema_free(s);
}


/* 1 when at every byte of text that is taken, and where one is refused,
 * the answer may end or some byte is taken. */
static int
never_stuck(const slora_json_schema_t *s, const char *text)
{
    int           took;
    char          c;
    size_t        at, len;
    unsigned      b;
    slora_json_t  j, t;

    slora_json_init(&j, s);
    len = strlen(text);

    for (at = 0; at <= len; at++) {
        took = slora_json_done(&j) || slora_json_may_end(&j);

        for (b = 0; b < 256 && !took; b++) {
            slora_json_copy(&t, &j);
            c = (char) b;
            took = slora_json_feed(&t, &c, 1);
        }

        if (!took) {
            diag("stuck after %zu bytes", at);
            return 0;
        }

        if (at == len || !slora_json_feed(&j, text + at, 1)) {
            return 1;
        }
    }

    return 1;
}


/* (c) */
static void
test_model(const slora_tokenizer_t *tok, const slora_json_vocab_t *v)
{
    int                   same;
    size_t                states;
    slora_err_t           err;
    slora_json_schema_t  *s;

    static const char  grammar[] =
        "root ::= \"(\" inner \")\"\n"
        "inner ::= [a-z] [a-z ]{0,19} | \"(\" inner \")\" | inner \" \" "
        "word\n"
        "word ::= [a-z]{1,8}\n";
    static const char  fixed[] =
        "root ::= \"(\" inner \")\"\n"
        "inner ::= [a-z] [a-z ]{0,19} | \"(\" inner \")\"\n";
    static const char  by_hand[] =
        "\\((?<i>[a-z][a-z ]{0,19}|\\((?&i)\\))\\)";
    static const char  *texts[] = { "((a nested phrase))", "(x)",
                                    "(((deep words here)))" };
    static const char  *json_texts[] = {
        "{\"a\": [1, {\"b\": null, \"c\": [\"x y\", -2.5e3]}], "
        "\"d\": {}}",
        "{\n  \"key\": \"va\\\"lue\",\n  \"n\": [[[true]]]\n}",
    };
    static const char   nest[] = "root ::= \"(\" root \")\" | \"x\"";
    static char         deep[128];
    static const char  *deep_texts[] = { deep };

    /* inner names itself first: refused as left recursion */
    s = slora_json_grammar_parse(grammar, strlen(grammar), &err);
    ok(s == NULL && strstr(err.msg, "inner -> inner") != NULL,
       "left recursion in the phrase grammar refused: %s", err.msg);

    s = slora_json_grammar_parse(fixed, strlen(fixed), &err);
    if (!ok(s != NULL, "the phrase grammar compiles")) {
        diag("%s", err.msg);
        return;
    }

    states = 0;
    same = mask_agrees_along(tok, v, s, texts, 3, &states);
    ok(same && states > 0, "the mask is what trying each of SmolLM2's "
       "tokens gives, along three texts (%zu states)", states);
    slora_json_schema_free(s);

    /* the walk through the innermost rule, left for calls and returns;
     * and past the depth where it is not used (63 open) */
    s = slora_json_grammar_parse(json_gbnf, strlen(json_gbnf), &err);
    if (!ok(s != NULL, "llama.cpp's JSON grammar compiles")) {
        diag("%s", err.msg);
        return;
    }

    states = 0;
    same = mask_agrees_along(tok, v, s, json_texts, 2, &states);
    ok(same && states > 0, "the mask is what trying each of SmolLM2's "
       "tokens gives under the JSON grammar, along two texts (%zu states)",
       states);
    slora_json_schema_free(s);

    s = slora_json_grammar_parse(nest, strlen(nest), &err);
    memset(deep, '(', 63);
    deep[63] = 'x';
    memset(deep + 64, ')', 63);
    deep[127] = '\0';
    states = 0;
    same = s != NULL && mask_agrees_along(tok, v, s, deep_texts, 1, &states);
    ok(same && states == 127, "and along 63 parentheses opened and closed "
       "(%zu states)", states);
    slora_json_schema_free(s);

    grammar_answers(tok, fixed, "Write a short phrase in parentheses.",
                    by_hand);
}
