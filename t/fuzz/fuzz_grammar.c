/*
 * fuzz_grammar.c: libFuzzer harness for vLLM's guided_grammar
 * (slora_grammar.h), which a client's request reaches with any text.
 *
 * An input is a grammar up to the first 0xfe byte, then texts split at
 * 0xff bytes. Oracles beyond the sanitizers: a grammar refused says why;
 * one taken is written out as an expression that PCRE2 (told to read
 * \u{H...} as ECMA-262 does) compiles too, so that nothing the writer
 * put in it is syntax it did not mean, and that our regex compiler takes
 * or refuses only for its size (states, work, bytes), never for its
 * syntax; and on each text of printable ASCII, tabs and newlines the
 * compiled answer (slora_json_grammar_parse) may end exactly where PCRE2
 * matches the whole text.
 *
 * The one idea: the written-out expression is checked by an independent
 * reader of the same syntax, and the automaton against that reader.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "slora_grammar.h"
#include "slora_json.h"
#include "fuzz_text.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);



int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     errcode, ours, theirs;
    char                   *re;
    size_t                  at, end, n_gram, re_len;
    PCRE2_SIZE              erroff;
    pcre2_code             *code;
    slora_err_t             err;
    slora_json_t            j;
    const uint8_t          *sep;
    pcre2_match_data       *md;
    slora_json_schema_t    *s;
    pcre2_compile_context  *cc;

    sep = memchr(data, 0xfe, size);
    n_gram = sep != NULL ? (size_t) (sep - data) : size;

    err.msg[0] = '\0';
    re = slora_grammar_regex((const char *) data, n_gram, &re_len, &err);

    if (re == NULL) {
        if (err.msg[0] == '\0') {
            abort();
        }

        return 0;
    }

    if (strlen(re) != re_len || re_len > SLORA_GRAMMAR_REGEX_MAX) {
        abort();
    }

    cc = pcre2_compile_context_create(NULL);
    if (cc == NULL) {
        free(re);
        return 0;
    }

    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    code = pcre2_compile((PCRE2_SPTR) re, re_len,
                         PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_NO_AUTO_CAPTURE
                         | PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                         &errcode, &erroff, cc);
    pcre2_compile_context_free(cc);

    if (code == NULL) {
        /* only its own limits: groups nested too deep, a pattern too
         * large for PCRE2's tables */
        if (errcode != PCRE2_ERROR_PARENTHESES_NEST_TOO_DEEP
            && errcode != PCRE2_ERROR_PATTERN_TOO_COMPLICATED
            && errcode != PCRE2_ERROR_PATTERN_TOO_LARGE
            && errcode != PCRE2_ERROR_HEAP_FAILED)
        {
            abort();
        }

        free(re);
        return 0;
    }

    s = slora_json_grammar_parse((const char *) data, n_gram, &err);
    free(re);

    if (s == NULL) {
        /* refused for the automaton's limits, or as a grammar of the
         * empty text alone or of texts with control characters an answer
         * may not hold, which the message says; a syntax error in what
         * the writer wrote is a bug */
        if (strstr(err.msg, "too ") == NULL
            && strstr(err.msg, "more than") == NULL
            && strstr(err.msg, "at most") == NULL
            && strstr(err.msg, "only the empty text") == NULL
            && strstr(err.msg, "admits no text") == NULL)
        {
            abort();
        }

        pcre2_code_free(code);
        return 0;
    }

    md = pcre2_match_data_create_from_pattern(code, NULL);

    if (sep != NULL && md != NULL) {
        for (at = n_gram + 1; ; at = end + 1) {
            sep = memchr(data + at, 0xff, size - at);
            end = sep != NULL ? (size_t) (sep - data) : size;

            if (fuzz_comparable_text(data + at, end - at)) {
                slora_json_init(&j, s);
                ours = slora_json_feed(&j, (const char *) data + at,
                                       end - at)
                       && (slora_json_done(&j) || slora_json_may_end(&j));
                theirs = pcre2_match(code, (PCRE2_SPTR) data + at, end - at,
                                     0, 0, md, NULL) >= 0;

                /* the empty text: the answer must hold something */
                if (end > at && ours != theirs) {
                    abort();
                }
            }

            if (sep == NULL) {
                break;
            }
        }
    }

    pcre2_match_data_free(md);
    pcre2_code_free(code);
    slora_json_schema_free(s);

    return 0;
}
