/*
 * ngx_http_slora_sse.c: SSE framing (see the header). The one idea: an
 * SSE event cannot carry a bare line break in a field, so a payload with
 * line breaks is sent as several "data:" lines, which the client joins
 * back with "\n". JSON payloads never contain raw line breaks; the
 * splitting is for anything else sent this way.
 */

#include <string.h>

#include "ngx_http_slora_sse.h"


#define NGX_HTTP_SLORA_SSE_PREFIX      "data: "
#define NGX_HTTP_SLORA_SSE_PREFIX_LEN  (sizeof(NGX_HTTP_SLORA_SSE_PREFIX) - 1)


size_t
ngx_http_slora_sse_frame(unsigned char *dst, size_t cap,
    const unsigned char *data, size_t len)
{
    size_t                i, start, need, n;
    unsigned char        *p;

    /* pass 1: measure */
    need = 0;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r') {
            continue;
        }

        need += NGX_HTTP_SLORA_SSE_PREFIX_LEN + (i - start) + 1;

        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
        {
            i++;
        }

        start = i + 1;
    }

    need += 1;

    if (dst == NULL || need > cap) {
        return need;
    }

    /* pass 2: write */
    p = dst;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r') {
            continue;
        }

        n = i - start;
        memcpy(p, NGX_HTTP_SLORA_SSE_PREFIX, NGX_HTTP_SLORA_SSE_PREFIX_LEN);
        p += NGX_HTTP_SLORA_SSE_PREFIX_LEN;
        memcpy(p, data + start, n);
        p += n;
        *p++ = '\n';

        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
        {
            i++;
        }

        start = i + 1;
    }

    *p++ = '\n';

    return need;
}
