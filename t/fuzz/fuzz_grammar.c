/*
 * fuzz_grammar.c: libFuzzer harness for vLLM's guided_grammar
 * (slora_grammar.h, slora_json_grammar.c), which a client's request
 * reaches with any text.
 *
 * An input is a grammar up to the first 0xfe byte, then texts split at
 * 0xff bytes. Oracles beyond the sanitizers: a grammar refused says why;
 * one taken is written out as expressions that PCRE2 (told to read
 * \u{H...} as ECMA-262 does) compiles too, each with its calls as empty
 * groups, so that nothing the writer put in them is syntax it did not
 * mean, and that our regex compiler takes or refuses only for size
 * (states, work, bytes) or for what the grammar is (left recursion, a
 * rule that never ends), never for syntax. On each text of printable
 * ASCII, tabs and newlines: without recursion the compiled answer
 * (slora_json_grammar_parse) may end exactly where PCRE2 matches the whole
 * text; with it, PCRE2 reads the expressions as one pattern of named
 * groups that call each other, and every text our answer may end on
 * must be one PCRE2 matches (ours keeps one way where the grammar has
 * two, so it may derive fewer). And the answer is never stuck: after a
 * text's bytes that are taken, then the least byte taken, 64 times, at
 * each of those and at the first byte refused the answer may end or
 * some byte is taken (the first 8 texts of an input).
 *
 * The one idea: the written-out expressions are checked by an
 * independent reader of the same syntax, and the automata against that
 * reader.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "slora_grammar.h"
#include "slora_json.h"
#include "fuzz_text.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);



/* PCRE2's compile of pattern[0..len): NULL where it refuses for its
 * own limits, abort on any other refusal. */
static pcre2_code *
fuzz_pcre(const char *pattern, size_t len)
{
    int                     errcode;
    PCRE2_SIZE              erroff;
    pcre2_code             *code;
    pcre2_compile_context  *cc;

    cc = pcre2_compile_context_create(NULL);
    if (cc == NULL) {
        return NULL;
    }

    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    code = pcre2_compile((PCRE2_SPTR) pattern, len,
                         PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_NO_AUTO_CAPTURE
                         | PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                         &errcode, &erroff, cc);
    pcre2_compile_context_free(cc);

    /* only its own limits: groups nested too deep, a pattern too large
     * for its tables */
    if (code == NULL
        && errcode != PCRE2_ERROR_PARENTHESES_NEST_TOO_DEEP
        && errcode != PCRE2_ERROR_PATTERN_TOO_COMPLICATED
        && errcode != PCRE2_ERROR_PATTERN_TOO_LARGE
        && errcode != PCRE2_ERROR_HEAP_FAILED)
    {
        abort();
    }

    return code;
}


/* Expression k with each call \RHH as rep(j) (j the rule it calls):
 * "(?:)" or "(?&rJ)"; malloc'ed into *out, its length returned. */
static size_t
fuzz_calls(const slora_grammar_t *gr, uint32_t k, int named, char **out)
{
    char        *p;
    size_t       i, n, len;
    unsigned     b;
    uint32_t     j;
    const char  *e;

    e = gr->text + gr->off[k];
    len = gr->len[k];
    p = malloc(len * 3 + 16);
    *out = p;
    n = 0;

    if (p == NULL) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (e[i] == '\\' && i + 3 < len && e[i + 1] == 'R') {
            b = (unsigned) strtoul((char []) { e[i + 2], e[i + 3], 0 }, NULL,
                                   16);

            for (j = 0; j < gr->n && slora_grammar_call_byte[j] != b; j++) {
                /* void */
            }

            if (j == gr->n) {
                abort();        /* a call of no rule */
            }

            n += (size_t) (named ? sprintf(p + n, "(?&r%u)", j)
                                 : sprintf(p + n, "(?:)"));
            i += 3;
            continue;
        }

        if (e[i] == '\\' && i + 1 < len) {
            p[n++] = e[i++];
        }

        p[n++] = e[i];
    }

    p[n] = '\0';

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     ours, theirs, took, refused, walks;
    char                   *re, *all;
    size_t                  at, end, n_gram, len, k, n_all;
    unsigned                b;
    uint32_t                r;
    pcre2_code             *code;
    slora_err_t             err;
    slora_json_t            j, t;
    const uint8_t          *sep;
    slora_grammar_t         gr;
    pcre2_match_data       *md;
    slora_json_schema_t    *s;

    sep = memchr(data, 0xfe, size);
    n_gram = sep != NULL ? (size_t) (sep - data) : size;

    err.msg[0] = '\0';

    if (slora_grammar_write((const char *) data, n_gram, &gr, &err)
        != SLORA_OK)
    {
        slora_grammar_free(&gr);

        if (err.msg[0] == '\0') {
            abort();
        }

        return 0;
    }

    /* each expression's syntax, its calls as empty groups */
    for (r = 0; r < gr.n; r++) {
        if (strlen(gr.text + gr.off[r]) != gr.len[r]
            || gr.len[r] > SLORA_GRAMMAR_REGEX_MAX)
        {
            abort();
        }

        len = fuzz_calls(&gr, r, 0, &re);
        if (re == NULL) {
            slora_grammar_free(&gr);
            return 0;
        }

        code = fuzz_pcre(re, len);
        free(re);

        if (code == NULL) {
            slora_grammar_free(&gr);
            return 0;
        }

        pcre2_code_free(code);
    }

    /* the whole: one expression, or named groups calling each other */
    if (!gr.calls) {
        all = strdup(gr.text);
        n_all = all != NULL ? gr.len[0] : 0;

    } else {
        n_all = 0;
        all = malloc(16);

        for (r = 0; all != NULL && r < gr.n; r++) {
            len = fuzz_calls(&gr, r, 1, &re);
            all = re != NULL ? realloc(all, n_all + len + 64) : NULL;

            if (all != NULL) {
                n_all += (size_t) sprintf(all + n_all, "%s(?<r%u>%s)",
                                          r == 0 ? "(?(DEFINE)" : "", r, re);
            }

            free(re);
        }

        if (all != NULL) {
            n_all += (size_t) sprintf(all + n_all, ")(?&r0)");
        }
    }

    if (all == NULL) {
        slora_grammar_free(&gr);
        return 0;
    }

    code = fuzz_pcre(all, n_all);
    free(all);

    s = slora_json_grammar_parse((const char *) data, n_gram, &err);

    if (s == NULL) {
        /* refused for the automaton's limits, or as a grammar of the
         * empty text alone, or of texts with control characters an answer
         * may not hold, or for its recursion, which the message says; a
         * syntax error in what the writer wrote is a bug */
        if (strstr(err.msg, "too ") == NULL
            && strstr(err.msg, "more than") == NULL
            && strstr(err.msg, "at most") == NULL
            && strstr(err.msg, "only the empty text") == NULL
            && strstr(err.msg, "admits no text") == NULL
            && strstr(err.msg, "left recursion") == NULL
            && strstr(err.msg, "never ends") == NULL)
        {
            abort();
        }

        pcre2_code_free(code);
        slora_grammar_free(&gr);
        return 0;
    }

    md = code != NULL ? pcre2_match_data_create_from_pattern(code, NULL)
                      : NULL;
    walks = 0;

    for (at = n_gram + 1; sep != NULL && at <= size; at = end + 1) {
        sep = memchr(data + at, 0xff, size - at);
        end = sep != NULL ? (size_t) (sep - data) : size;

        /* never stuck: the text's bytes that are taken, then the least
         * byte taken for 64 bytes more; where the text's first byte is
         * refused and at each byte past the text, the answer may end or
         * some byte is taken */
        slora_json_init(&j, s);
        refused = 0;

        for (k = at; walks < 8 && k < end + 64 && !slora_json_done(&j); k++) {
            if (k < end) {
                if (slora_json_feed(&j, (const char *) data + k, 1)
                    || refused++ > 0)
                {
                    continue;
                }
            }

            took = 0;

            for (b = 0; b < 256 && !took; b++) {
                slora_json_copy(&t, &j);
                took = slora_json_feed(&t, (const char []) { (char) b }, 1);
            }

            if (!took) {
                if (!slora_json_may_end(&j)) {
                    abort();
                }

                break;
            }

            if (k >= end) {
                slora_json_copy(&j, &t);
            }
        }

        walks++;

        if (md == NULL || !fuzz_comparable_text(data + at, end - at)) {
            continue;
        }

        slora_json_init(&j, s);
        ours = slora_json_feed(&j, (const char *) data + at, end - at)
               && (slora_json_done(&j) || slora_json_may_end(&j));
        theirs = pcre2_match(code, (PCRE2_SPTR) data + at, end - at, 0, 0,
                             md, NULL);

        /* the empty text: the answer must hold something; PCRE2 out of
         * its match limits says nothing */
        if (end == at || theirs < PCRE2_ERROR_NOMATCH) {
            continue;
        }

        if (gr.calls ? ours && theirs < 0 : ours != (theirs >= 0)) {
            abort();
        }
    }

    pcre2_match_data_free(md);
    pcre2_code_free(code);
    slora_json_schema_free(s);
    slora_grammar_free(&gr);

    return 0;
}
