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


static size_t ngx_http_slora_sse_lines(unsigned char *p,
    const unsigned char *data, size_t len);


size_t
ngx_http_slora_sse_frame(unsigned char *dst, size_t cap, const char *event,
    const unsigned char *data, size_t len)
{
    size_t  need, head;

    head = event != NULL ? sizeof("event: \n") - 1 + strlen(event) : 0;
    need = head + ngx_http_slora_sse_lines(NULL, data, len);

    if (dst == NULL || need > cap) {
        return need;
    }

    if (event != NULL) {
        memcpy(dst, "event: ", 7);
        memcpy(dst + 7, event, head - 8);
        dst[head - 1] = '\n';
    }

    (void) ngx_http_slora_sse_lines(dst + head, data, len);

    return need;
}


/* The event's bytes: a "data: " line for each line of data (split at
 * \n, \r or \r\n), then the empty line; written to p unless NULL. */
static size_t
ngx_http_slora_sse_lines(unsigned char *p, const unsigned char *data,
    size_t len)
{
    size_t  i, start, n, need;

    need = 0;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && data[i] != '\n' && data[i] != '\r') {
            continue;
        }

        n = i - start;

        if (p != NULL) {
            memcpy(p + need, NGX_HTTP_SLORA_SSE_PREFIX,
                   NGX_HTTP_SLORA_SSE_PREFIX_LEN);
            memcpy(p + need + NGX_HTTP_SLORA_SSE_PREFIX_LEN, data + start, n);
            p[need + NGX_HTTP_SLORA_SSE_PREFIX_LEN + n] = '\n';
        }

        need += NGX_HTTP_SLORA_SSE_PREFIX_LEN + n + 1;

        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
        {
            i++;
        }

        start = i + 1;
    }

    if (p != NULL) {
        p[need] = '\n';
    }

    return need + 1;
}
