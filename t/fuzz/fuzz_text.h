/*
 * fuzz_text.h: the texts a harness compares with PCRE2's reading of the
 * same expression: printable ASCII, tabs and line feeds. The automaton
 * (slora_regex.h) leaves out the control characters a JSON string cannot
 * hold as they are, and a '\r', which ECMA-262's '.' refuses, PCRE2's
 * takes; so a text holding either is not compared.
 */

#ifndef FUZZ_TEXT_H
#define FUZZ_TEXT_H


#include <stddef.h>
#include <stdint.h>


static inline int
fuzz_comparable_text(const uint8_t *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\n') || p[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}


#endif /* FUZZ_TEXT_H */
