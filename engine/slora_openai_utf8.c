/*
 * slora_openai_utf8.c: the request parsers' UTF-8: a message that quotes
 * a client's text made one line of valid UTF-8 (the error bodies are
 * JSON; the worker's own messages go through the same). Whether a text
 * is well-formed is slora_utf8_text_valid (slora_utf8.h).
 */

#include <stdint.h>
#include <string.h>

#include "slora_openai.h"


/*
 * A message that quotes a client's text (a schema's type, a function's
 * name) stays one line of UTF-8: control bytes become blanks, a byte
 * that begins no valid sequence '?', and a sequence vsnprintf cut at the
 * end is dropped. A NUL follows the text: msg has room for *len + 1.
 */
void
slora_openai_clean_msg(char *msg, size_t *len)
{
    size_t          i, k, n;
    unsigned char  *p, lo, hi;

    p = (unsigned char *) msg;

    for (i = 0; i < *len; i += n) {
        n = 1;

        if (p[i] < 0x20 || p[i] == 0x7f) {
            p[i] = ' ';
            continue;
        }

        if (p[i] < 0x80) {
            continue;
        }

        n = p[i] >= 0xc2 && p[i] <= 0xdf ? 2
            : p[i] >= 0xe0 && p[i] <= 0xef ? 3
            : p[i] >= 0xf0 && p[i] <= 0xf4 ? 4 : 0;

        /* the second byte's range rules out overlong forms, surrogates
         * and code points past U+10FFFF */
        lo = p[i] == 0xe0 ? 0xa0 : p[i] == 0xf0 ? 0x90 : 0x80;
        hi = p[i] == 0xed ? 0x9f : p[i] == 0xf4 ? 0x8f : 0xbf;

        if (n > 0 && i + n > *len) {
            *len = i;
            break;
        }

        for (k = 1; k < n; k++) {
            if (p[i + k] < (k == 1 ? lo : 0x80)
                || p[i + k] > (k == 1 ? hi : 0xbf))
            {
                n = 0;
                break;
            }
        }

        if (n == 0) {
            p[i] = '?';
            n = 1;
        }
    }

    msg[*len] = '\0';
}

