/*
 * ngx_http_slora_text.c: JSON escaping, stop-string matching, the text
 * before a tool call and a think block (see the header). The one idea
 * of stop strings: a stop string may arrive split over several tokens,
 * so the tail of the generated text that is a proper prefix of some stop
 * string is held back until the next token either completes the match
 * or rules it out.
 */

#include <stdint.h>
#include <string.h>

#include "ngx_http_slora_text.h"
#include "slora_tokenizer.h"


static size_t ngx_http_slora_stop_find(const unsigned char *text,
    size_t len, const ngx_http_slora_text_t *stop, size_t *tail);


size_t
ngx_http_slora_json_escape(unsigned char *dst, const unsigned char *src,
    size_t len)
{
    size_t          i, n, k;
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

        } else if (c >= 0x80) {
            k = slora_utf8_valid(src + i, len - i);

            if (k == 0) {
                if (dst) {
                    memcpy(dst + n, "\\ufffd", 6);
                }

                n += 6;
                continue;
            }

            if (dst) {
                memcpy(dst + n, src + i, k);
            }

            n += k;
            i += k - 1;

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
    size_t  k, at, best, held, tail;

    best = len;
    held = 0;

    for (k = 0; k < n_stops; k++) {
        at = ngx_http_slora_stop_find(text, len, &stops[k], &tail);

        if (at < best) {
            best = at;
            *which = k;
        }

        held = tail > held ? tail : held;
    }

    /* a match cuts the text; else the longest tail that is a proper
     * prefix of a stop is held back */
    *safe = best < len ? best : len - held;

    return best;
}


/*
 * Where stop first occurs in text[0..len) (len: nowhere), and in *tail
 * the longest tail of the text that is a proper prefix of it (0 where
 * it occurs): the Knuth-Morris-Pratt automaton, in time linear in len
 * and the stop's length, where trying each offset in turn costs len
 * times the stop's length on a text made to almost match it.
 */
static size_t
ngx_http_slora_stop_find(const unsigned char *text, size_t len,
    const ngx_http_slora_text_t *stop, size_t *tail)
{
    size_t          i, j, m;
    const uint8_t  *s;
    uint16_t        border[NGX_HTTP_SLORA_STOP_MAX];

    *tail = 0;
    m = stop->len;
    s = stop->data;

    if (m == 0 || m > NGX_HTTP_SLORA_STOP_MAX) {
        return len;                 /* none; a longer one is refused
                                     * before it gets here */
    }

    /* border[i]: the longest proper prefix of s[0..i] that ends it */
    border[0] = 0;

    for (i = 1, j = 0; i < m; i++) {
        while (j > 0 && s[i] != s[j]) {
            j = border[j - 1];
        }

        j += s[i] == s[j];
        border[i] = (uint16_t) j;
    }

    for (i = 0, j = 0; i < len; i++) {
        while (j > 0 && text[i] != s[j]) {
            j = border[j - 1];
        }

        j += text[i] == s[j];

        if (j == m) {
            return i + 1 - m;
        }
    }

    *tail = j;

    return len;
}


size_t
ngx_http_slora_tool_text(const unsigned char *text, size_t len,
    const char *mark, int spoke, size_t *blanks, int *content, int *tag)
{
    size_t                 b, n, m, which, safe;
    ngx_http_slora_text_t  call;

    /* the blanks read before are not read again: no mark begins in
     * them (a cut by a stop string leaves blanks) */
    b = *blanks < len ? *blanks : len;

    while (b < len
           && (text[b] == ' ' || text[b] == '\t' || text[b] == '\n'
               || text[b] == '\r'))
    {
        b++;
    }

    *blanks = b;

    call.data = (const unsigned char *) mark;
    call.len = strlen(mark);

    m = ngx_http_slora_stop_scan(text + b, len - b, &call, 1, &which, &safe);
    n = m < len - b ? m : safe;
    *tag = m < len - b;

    /* past the blanks the first byte is none: any byte settled is text */
    *content = spoke || n > 0;

    if (!*content && !*tag) {
        /* blanks alone so far: a call or text may follow */
        return 0;
    }

    /* settled: the caller sends or drops them, and the blanks with them */
    *blanks = 0;

    return b + n;
}


size_t
ngx_http_slora_think_scan(const unsigned char *text, size_t len,
    const char *open, const char *close, unsigned *state, int final,
    size_t *skip, size_t *reason)
{
    size_t  on, cn, i, k, held;

    on = strlen(open);
    cn = strlen(close);
    *skip = 0;
    *reason = 0;

    if (*state == NGX_HTTP_SLORA_THINK_START) {
        if (len >= on && memcmp(text, open, on) == 0) {
            *skip = on;
            *state = NGX_HTTP_SLORA_THINK_IN;

        } else if (len < on && !final && memcmp(text, open, len) == 0) {
            /* the mark may be coming */
            return 0;

        } else {
            *state = NGX_HTTP_SLORA_THINK_OUT;
            return 0;
        }
    }

    if (*state != NGX_HTTP_SLORA_THINK_IN) {
        return 0;
    }

    for (i = *skip; i + cn <= len; i++) {
        if (memcmp(text + i, close, cn) == 0) {
            *reason = i - *skip;
            *state = NGX_HTTP_SLORA_THINK_OUT;
            return i + cn;
        }
    }

    /* the longest end that begins the closing mark is held */
    held = 0;

    for (k = cn - 1; !final && k > 0 && held == 0; k--) {
        if (k <= len - *skip && memcmp(text + len - k, close, k) == 0) {
            held = k;
        }
    }

    *reason = len - *skip - held;

    return len - held;
}
