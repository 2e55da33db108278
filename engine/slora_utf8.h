/*
 * slora_utf8.h: UTF-8 for the engine's messages: how much of a name a
 * message may quote, and of a message its buffer may hold, without
 * splitting a character.
 */

#ifndef SLORA_UTF8_H
#define SLORA_UTF8_H

#include <stddef.h>
#include <string.h>


/* 1 if s[0..len) is well-formed UTF-8 without NUL, else 0 (a name, a
 * client's text); in slora_tokenizer.c beside slora_utf8_valid. */
int slora_utf8_text_valid(const char *s, size_t len);


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


/*
 * The length of s's first n bytes without a character that n cut short:
 * where a text was truncated at a byte count (vsnprintf's buffer), the
 * bytes of its last character's beginning go. A lead byte followed by
 * fewer continuation bytes than it announces is that beginning; stray
 * bytes stay.
 */
static inline size_t
slora_utf8_whole(const char *s, size_t n)
{
    size_t                k, need;
    const unsigned char  *p;

    p = (const unsigned char *) s;

    for (k = 0; k < 3 && k < n && (p[n - 1 - k] & 0xc0) == 0x80; k++) {
        /* void */
    }

    if (k == n) {
        return n;
    }

    need = (p[n - 1 - k] & 0xe0) == 0xc0 ? 1
           : (p[n - 1 - k] & 0xf0) == 0xe0 ? 2
           : (p[n - 1 - k] & 0xf8) == 0xf0 ? 3 : 0;

    return need > k ? n - 1 - k : n;
}


#endif /* SLORA_UTF8_H */
