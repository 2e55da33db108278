/*
 * pcre_whole.h: whether PCRE2 matches a regular expression against the
 * whole of a text (UTF-8, anchored at both ends): the independent
 * reading the guided-decoding tests hold the engine's answers to
 * (test_json_choice.c's guided_regex, test_grammar.c's grammars).
 */

#ifndef PCRE_WHOLE_H
#define PCRE_WHOLE_H


#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>

#include <string.h>


/* 1 when PCRE2 matches re against the whole of text. */
static inline int
pcre_whole(const char *re, const char *text)
{
    int                 m, errcode;
    PCRE2_SIZE          erroff;
    pcre2_code         *code;
    pcre2_match_data   *md;

    code = pcre2_compile((PCRE2_SPTR) re, PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                         &errcode, &erroff, NULL);
    if (code == NULL) {
        return 0;
    }

    md = pcre2_match_data_create_from_pattern(code, NULL);
    m = pcre2_match(code, (PCRE2_SPTR) text, strlen(text), 0, 0, md, NULL)
        >= 0;
    pcre2_match_data_free(md);
    pcre2_code_free(code);

    return m;
}


#endif /* PCRE_WHOLE_H */
