/*
 * fuzz_regex.c: libFuzzer harness for a schema's pattern as an automaton
 * (slora_regex.h), which a client's JSON schema reaches with any text.
 *
 * An input is two bytes of lengths (minLength, and maxLength where its
 * byte is below 0xff; the first byte's top bit asks for a whole-text
 * match, as guided_regex is, rather than a search), then a pattern up
 * to the first 0xfe byte, then texts split at 0xff bytes. Oracles beyond
 * the sanitizers: a compile stays within its budgets (the sanitizers'
 * time limit finds one that does not); where the pattern is accepted,
 * PCRE2 (with the options that make its syntax ECMA-262's) compiles it
 * too and, on each text of printable ASCII, blanks and newlines, finds a
 * match exactly where ours does; every prefix of an admitted match is
 * viable (a string the automaton lets go on can end); and a text the
 * automaton refuses at a byte has no admitted match beginning with the
 * bytes up to it.
 *
 * The one idea: the automaton is checked against an independent reading
 * of the same pattern, not against itself.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "slora_regex.h"
#include "fuzz_text.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int fuzz_comparable_pattern(const uint8_t *p, size_t n);
static void fuzz_text(const slora_regex_t *r, pcre2_code *re,
    pcre2_match_data *md, const uint8_t *p, size_t n);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 errcode, how;
    size_t              at, end, n_pat;
    uint32_t            min, max;
    PCRE2_SIZE          erroff;
    pcre2_code         *re;
    slora_err_t         err;
    slora_regex_t      *r;
    const uint8_t      *sep;
    pcre2_match_data   *md;

    if (size < 2) {
        return 0;
    }

    how = data[0] & 0x80 ? SLORA_REGEX_WHOLE : SLORA_REGEX_SEARCH;
    min = data[0] % 16;
    max = data[1] == 0xff ? SLORA_REGEX_NONE : data[1] % 32;
    data += 2;
    size -= 2;

    sep = memchr(data, 0xfe, size);
    n_pat = sep != NULL ? (size_t) (sep - data) : size;

    r = slora_regex_compile((const char *) data, n_pat, min, max, how, NULL,
                            &err);

    if (r == NULL) {
        return 0;
    }

    re = NULL;
    md = NULL;

    if (fuzz_comparable_pattern(data, n_pat)) {
        re = pcre2_compile((PCRE2_SPTR) data, n_pat,
                           PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX
                           | PCRE2_ALLOW_EMPTY_CLASS | PCRE2_NO_AUTO_CAPTURE
                           | (how == SLORA_REGEX_WHOLE
                              ? PCRE2_ANCHORED | PCRE2_ENDANCHORED : 0),
                           &errcode, &erroff, NULL);

        if (re != NULL) {
            md = pcre2_match_data_create_from_pattern(re, NULL);
        }
    }

    if (sep != NULL) {
        for (at = n_pat + 1; ; at = end + 1) {
            sep = memchr(data + at, 0xff, size - at);
            end = sep != NULL ? (size_t) (sep - data) : size;
            fuzz_text(r, md != NULL ? re : NULL, md, data + at, end - at);

            if (sep == NULL) {
                break;
            }
        }
    }

    pcre2_match_data_free(md);
    pcre2_code_free(re);
    free(r);

    return 0;
}


/* Patterns whose meaning PCRE2 (as compiled above) shares: printable
 * ASCII only, no \v (a class in PCRE2, a character in ECMA-262), no \Z
 * (PCRE2's allows a final newline, Python's and ours do not), no
 * POSIX classes "[:" (ECMA-262 has none), no "(?" groups beyond (?: and
 * (?< (PCRE2 has many more, which ours refuses anyway). */
static int
fuzz_comparable_pattern(const uint8_t *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] > 0x7e) {
            return 0;
        }

        if (p[i] == '\\' && i + 1 < n) {
            if (p[i + 1] == 'v' || p[i + 1] == 'c' || p[i + 1] == 'u'
                || p[i + 1] == 'Z')
            {
                return 0;
            }

            i++;
            continue;
        }

        if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
            return 0;
        }
    }

    return 1;
}


static void
fuzz_text(const slora_regex_t *r, pcre2_code *re, pcre2_match_data *md,
    const uint8_t *p, size_t n)
{
    int       ours, theirs;
    size_t    i, chars;
    uint32_t  s;

    ours = slora_regex_match(r, (const char *) p, n);

    if (re != NULL && fuzz_comparable_text(p, n)) {
        chars = n;
        theirs = pcre2_match(re, (PCRE2_SPTR) p, n, 0, 0, md, NULL) >= 0
                 && chars >= r->min
                 && (r->max == SLORA_REGEX_NONE || chars <= r->max);

        if (ours != theirs) {
            abort();
        }
    }

    /* along the text: every prefix of a match viable; where the
     * automaton refuses, the text is no match */
    s = 0;
    chars = 0;

    for (i = 0; i < n; i++) {
        s = slora_regex_next(r, s, p[i]);

        if (s == SLORA_REGEX_DEAD) {
            if (ours) {
                abort();
            }

            return;
        }

        chars += (size_t) slora_regex_lead(p[i]);

        if (ours && !slora_regex_viable(r, s, (uint32_t) chars)) {
            abort();
        }
    }
}
