/*
 * slora_utf8.h: UTF-8 for the engine's messages: how much of a name a
 * message may quote without splitting a character.
 */

#ifndef SLORA_UTF8_H
#define SLORA_UTF8_H

#include <stddef.h>
#include <string.h>


/*
 * How much of a name a message quotes: "%.64s" cuts at a byte count,
 * which may split a character that a cleaned message shows as "??".
 * This is the length of the longest prefix of at most max bytes that
 * ends where a character does, for "%.*s"; s is ended by a NUL, read no
 * further. s may be invalid UTF-8 (a catalog's value): a character is 4
 * bytes at most, so no more than 3 continuation bytes are given back,
 * and a run of stray ones before them stays in the quote.
 */
static inline int
slora_utf8_cut(const char *s, size_t max)
{
    size_t                n, k;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    n = strnlen(s, max);

    /* s[n] is NUL or a byte within s: when it is a character's second,
     * third or fourth byte, the prefix ends before that character's
     * first */
    for (k = 0; k < 3 && n > 0 && (p[n] & 0xc0) == 0x80; k++) {
        n--;
    }

    if ((p[n] & 0xc0) == 0x80) {
        /* no character of 4 bytes at most ends here: invalid bytes, the
         * cut is where it was */
        n += k;
    }

    return (int) n;
}


#endif /* SLORA_UTF8_H */
