/*
 * test_grammar.c: vLLM's guided_grammar (slora_grammar.h): a grammar in
 * xgrammar's and llama.cpp's EBNF without recursion, written out as a
 * regular expression and held as guided_regex is (rules that reach
 * themselves: test_grammar_stack.c).
 *
 *   (a) grammars taken: vLLM's documented SQL example, rules named before
 *       they are defined, comments, alternatives over line breaks,
 *       classes, negated classes, '-' at a class's ends, '.', escapes,
 *       counts, quantifiers on groups and on rules already quantified,
 *       CRLF, names with '-', '_' and digits, characters that are syntax
 *       in an expression ('=' and ':' in classes, which open POSIX
 *       classes to PCRE2); each with
 *       texts it derives (the answer may end there) and texts it does
 *       not (some byte refused, or the answer may not end there);
 *   (b) grammars refused, each with its reason and where: a rule named
 *       and not defined, no root, a rule defined twice, unknown escapes,
 *       unclosed literals, classes and groups, counts out of range, an
 *       empty class, a quantifier right after another, a grammar of the
 *       empty text alone, bytes that are not UTF-8 (above U+10FFFF, an
 *       overlong form, a surrogate); rules of groups nested 60 deep taken, 70
 *       refused in the grammar's terms; one too large written out;
 *   (c) the mask against every SmolLM2 token along a derived text, and
 *       the engine's greedy and sampled answers each a text of the
 *       grammar, as PCRE2 reads an expression written by hand for it.
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
static void test_refused(void);
static void test_model(const slora_tokenizer_t *tok,
    const slora_json_vocab_t *v);


int
main(void)
{
    slora_tokenizer_t   *tok;
    slora_json_vocab_t  *v;

    test_taken();
    test_refused();

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
        const char  *in[4];
        const char  *out[4];
    } cases[] = {
        { "vLLM's SQL example",
          "root ::= select_statement\n"
          "select_statement ::= \"SELECT \" column \" from \" table "
          "\" where \" condition\n"
          "column ::= \"col_1 \" | \"col_2 \"\n"
          "table ::= \"table_1 \" | \"table_2 \"\n"
          "condition ::= column \"= \" number\n"
          "number ::= \"1 \" | \"2 \"\n",
          { "SELECT col_1  from table_2  where col_2 = 1 ",
            "SELECT col_2  from table_1  where col_1 = 2 " },
          { "SELECT col_3  from table_2  where col_2 = 1 ",
            "SELECT col_1  from table_2  where col_2 = 1",
            "select col_1  from table_2  where col_2 = 1 ",
            "SELECT col_1  from table_2  where col_2 = 1 x" } },

        { "rules after their use, comments, alternatives over lines",
          "# an answer and a unit\n"
          "root ::= answer \" \" unit   # the whole\n"
          "unit ::= ( \"kg\"\n"
          "         | \"lb\" )\n"
          "answer ::= \"yes\"\n"
          "    | \"no\"\n"
          "    | [0-9]+ (\".\" [0-9]{1,3})?\n",
          { "yes kg", "no lb", "12.5 kg", "7.125 lb" },
          { "maybe kg", "12. kg", "1.2345 kg", "yes  kg" } },

        { "classes, negated classes, '.' and escapes",
          "root ::= \"\\\"\" [^\"\\\\\\n]* \"\\\" \" [a\\-z] . "
          "\"\\x41\\u00e9\\t\"",
          { "\"hello world\" -\xe2\x82\xac" "A\xc3\xa9\t",
            "\"\" zzA\xc3\xa9\t", "\"\t\" a.A\xc3\xa9\t" },
          { "\"a\\b\" zzA\xc3\xa9\t", "\"ab\" bzA\xc3\xa9\t",
            "\"ab\" zA\xc3\xa9\t", "\"ab\" zzA\xc3\xa9 " } },

        { "counts and quantifiers on groups and rules",
          "root ::= (\"ab\"){2} x{1,3} y{2,} \"z\"* (\"q\" \"r\")+ w?\n"
          "x ::= \"-\"\n"
          "y ::= [0-1]\n"
          "w ::= \"!\"\n",
          { "abab-01qr", "abab---0101zzzqrqr!", "abab--00qr" },
          { "ab-01qr", "abab----01qr", "abab-0qr", "abab-01q" } },

        { "characters that are syntax in an expression, as they are",
          "root ::= \"a.b*c+d?(e)[f]{2}|g^$\\\\/\" [.*+?()|{}^$]",
          { "a.b*c+d?(e)[f]{2}|g^$\\/.", "a.b*c+d?(e)[f]{2}|g^$\\/^" },
          { "aab*c+d?(e)[f]{2}|g^$\\/.", "a.bbc+d?(e)[f]{2}|g^$\\/.",
            "a.b*c+d?(e)[f]ff|g^$\\/.", "a.b*c+d?(e)[f]{2}|g^$\\/a" } },

        { "a quantified rule quantified again, classes with '-' at an end",
          "root ::= x+ y? [a-] [-b]\r\n"
          "x ::= \"a\"* \"b\"\r\n"
          "y ::= \"c\"{2}\n",
          { "bab-b", "aabbcc-b", "ab--" },
          { "b", "bcc", "babb", "bccc-b" } },

        { "names with '-', '_' and digits; a comment before a rule's ::=",
          "root ::= my-rule_2 \".\" any\n"
          "my-rule_2   # the word\n"
          "  ::= [a-z]+\n"
          "any ::= .\n",
          { "abc.\n", "x.." },
          { "abc.", "ABC.x", "abc.xy" } },

        { "'=' and ':' in classes, as they are (not POSIX classes)",
          "root ::= [=a=] [:b:]",
          { "=:", "ab", "a:", "=b" },
          { "[a", "==", "a", "[:b:]" } },

        { "an empty alternative and an empty literal",
          "root ::= \"x\" ( \"y\" | ) \"\" \"z\"",
          { "xyz", "xz" },
          { "xyyz", "x", "yz" } },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        grammar_texts(cases[i].what, cases[i].grammar, cases[i].in,
                      cases[i].out, 4);
    }
}


/* (b) */
static void
test_refused(void)
{
    int                   k;
    char                 *big;
    size_t                i, at;
    slora_err_t           err;
    slora_json_schema_t  *s;

    static const struct {
        const char  *grammar;
        const char  *says;
    } cases[] = {
        { "root ::= a b\na ::= \"x\"", "line 1, column 12: rule \"b\" is "
          "named but not defined" },
        { "start ::= \"x\"", "no rule \"root\"" },
        { "root ::= \"x\"\nroot ::= \"y\"", "line 2, column 1: rule "
          "\"root\" is defined twice" },
        { "root ::= \"\\q\"", "an escape this grammar does not know" },
        { "root ::= \"abc", "line 1, column 10: a '\"' without its "
          "closing '\"'" },
        { "root ::= [a-z", "a '[' without its ']'" },
        { "root ::= (\"a\" | \"b\"", "a '(' without its ')'" },
        { "root ::= \"a\" )", "a ')' without its '('" },
        { "root ::= \"a\"{1001}", "a count above 1000" },
        { "root ::= \"a\"{3,2}", "n below m" },
        { "root ::= []", "an empty class" },
        { "root ::= [z-a]", "out of order" },
        { "root ::= \"\"", "matches only the empty text" },
        { "root ::= \"a\" | ::= \"b\"", "expected a \"literal\"" },
        { "root \"a\"", "expected \"::=\"" },
        { "  # nothing\n", "holds no rule" },
        { "root ::= \"\\uD800\"", "no Unicode character" },
        { "root ::= \"a\"*?", "line 1, column 14: a quantifier right "
          "after another" },
        { "root ::= [^]", "an empty class" },
        { "root ::= \"\xf7\x9e\x9d\x9e\"", "line 1, column 11: bytes that "
          "are not UTF-8" },
        { "root ::= \"\xc0\xaf\"", "bytes that are not UTF-8" },
        { "root ::= [\xed\xa0\x80]", "bytes that are not UTF-8" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err.msg[0] = '\0';
        s = slora_json_grammar_parse(cases[i].grammar,
                                     strlen(cases[i].grammar), &err);
        ok(s == NULL && strstr(err.msg, cases[i].says) != NULL,
           "refused, saying \"%s\": %s", cases[i].says, err.msg);
        slora_json_schema_free(s);
    }

    /* a chain of rules each a group around the next, 60 deep: taken;
     * 70: refused in the grammar's terms (the expression holds 64
     * groups one in another) */
    for (k = 60; k <= 70; k += 10) {
        big = malloc(4096);
        at = (size_t) snprintf(big, 4096, "root ::= r0\n");

        for (i = 0; i < (size_t) k; i++) {
            at += (size_t) snprintf(big + at, 4096 - at,
                                    "r%zu ::= (\"<\" r%zu \">\")?\n", i,
                                    i + 1);
        }

        at += (size_t) snprintf(big + at, 4096 - at, "r%d ::= \"x\"\n", k);
        s = slora_json_grammar_parse(big, at, &err);
        ok(k == 60 ? s != NULL && grammar_derives(s, "<<>>")
                     && !grammar_derives(s, "<<x>>")
                   : s == NULL && strstr(err.msg, "groups nested more than "
                                         "64 deep") != NULL
                     && strstr(err.msg, "at byte") == NULL,
           "rules of groups nested %d deep: %s", k,
           s != NULL ? "taken" : err.msg);
        slora_json_schema_free(s);
        free(big);
    }

    /* each rule twice the one before: 2^20 times "ab" written out */
    big = malloc(4096);
    at = (size_t) snprintf(big, 4096, "root ::= r0 \n");

    for (k = 0; k < 20; k++) {
        at += (size_t) snprintf(big + at, 4096 - at, "r%d ::= r%d r%d\n", k,
                                k + 1, k + 1);
    }

    at += (size_t) snprintf(big + at, 4096 - at, "r20 ::= \"ab\"\n");
    s = slora_json_grammar_parse(big, at, &err);
    ok(s == NULL && strstr(err.msg, "over 65536 bytes") != NULL,
       "a grammar of 22 rules too large written out refused: %s",
       err.msg);
    slora_json_schema_free(s);
    free(big);
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
        "root ::= verdict \", because \" reason \".\"\n"
        "verdict ::= \"Yes\" | \"No\"\n"
        "reason ::= [a-z] [a-z ]{4,39}\n";
    static const char  by_hand[] = "(Yes|No), because [a-z][a-z ]{4,39}\\.";
    static const char  *texts[] = { "No, because the sky is blue.",
                                    "Yes, because grass." };

    s = slora_json_grammar_parse(grammar, strlen(grammar), &err);
    if (!ok(s != NULL, "the verdict grammar compiles")) {
        diag("%s", err.msg);
        return;
    }

    states = 0;
    same = mask_agrees_along(tok, v, s, texts, 2, &states);
    ok(same && states > 0, "the mask is what trying each of SmolLM2's "
       "tokens gives, along two texts (%zu states)", states);
    slora_json_schema_free(s);

    grammar_answers(tok, grammar, "Is the sky green? Answer yes or no, then "
                     "say why in a few words.",
                    by_hand);
}
