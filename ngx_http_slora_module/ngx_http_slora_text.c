/*
 * ngx_http_slora_text.c: UTF-8 validation, JSON escaping and stop-string
 * matching (see the header). The one idea of stop strings: a stop string
 * may arrive split over several tokens, so the tail of the generated text
 * that is a proper prefix of some stop string is held back until the
 * next token either completes the match or rules it out.
 */

#include <string.h>

#include "ngx_http_slora_text.h"


int
ngx_http_slora_utf8_valid(const unsigned char *p, size_t len)
{
    size_t         i, n, k;
    unsigned int   c, min;

    for (i = 0; i < len; i += n) {
        c = p[i];

        if (c == 0) {
            return 0;
        }

        if (c < 0x80) {
            n = 1;
            continue;
        }

        if ((c & 0xe0) == 0xc0) {
            n = 2; c &= 0x1f; min = 0x80;

        } else if ((c & 0xf0) == 0xe0) {
            n = 3; c &= 0x0f; min = 0x800;

        } else if ((c & 0xf8) == 0xf0) {
            n = 4; c &= 0x07; min = 0x10000;

        } else {
            return 0;
        }

        if (len - i < n) {
            return 0;
        }

        for (k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            c = (c << 6) | (p[i + k] & 0x3f);
        }

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


size_t
ngx_http_slora_json_escape(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    size_t          i, n;
    unsigned char   c;
    static const char  hex[] = "0123456789abcdef";

    n = 0;

    for (i = 0; i < len; i++) {
        c = src[i];

        if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t'
            || c == '\b' || c == '\f')
        {
            if (dst) {
                dst[n] = '\\';
                dst[n + 1] = c == '\n' ? 'n' : c == '\r' ? 'r'
                             : c == '\t' ? 't' : c == '\b' ? 'b'
                             : c == '\f' ? 'f' : c;
            }

            n += 2;

        } else if (c < 0x20 || c == 0x7f) {
            if (dst) {
                memcpy(dst + n, "\\u00", 4);
                dst[n + 4] = hex[c >> 4];
                dst[n + 5] = hex[c & 0xf];
            }

            n += 6;

        } else {
            if (dst) {
                dst[n] = c;
            }

            n++;
        }
    }

    return n;
}


size_t
ngx_http_slora_stop_scan(const unsigned char *text, size_t len,
    const ngx_http_slora_text_t *stops, size_t n_stops, size_t *which,
    size_t *safe)
{
    size_t  i, k, best, tail;

    best = len;

    for (k = 0; k < n_stops; k++) {
        if (stops[k].len == 0 || stops[k].len > len) {
            continue;
        }

        for (i = 0; i + stops[k].len <= len && i < best; i++) {
            if (memcmp(text + i, stops[k].data, stops[k].len) == 0) {
                best = i;
                *which = k;
                break;
            }
        }
    }

    if (best < len) {
        *safe = best;
        return best;
    }

    /* hold back the longest tail that is a proper prefix of a stop */
    for (i = 0; i < len; i++) {
        tail = len - i;

        for (k = 0; k < n_stops; k++) {
            if (stops[k].len > tail
                && memcmp(text + i, stops[k].data, tail) == 0)
            {
                *safe = i;
                return len;
            }
        }
    }

    *safe = len;

    return len;
}
