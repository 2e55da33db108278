/*
 * ngx_http_slora_sse.h: Server-Sent Events framing as a pure function, so
 * a unit test can check it without nginx.
 */

#ifndef NGX_HTTP_SLORA_SSE_H
#define NGX_HTTP_SLORA_SSE_H


#include <stddef.h>


/*
 * Frames data[0..len) as one SSE event: an "event: " line first when
 * event is not NULL (the Responses API's events are named; the name is
 * one line of the module's own), then every line of data (split at
 * "\n", "\r\n" or "\r", as the EventSource parser splits them) a
 * "data: " line, and an empty line ends the event, so the receiver's
 * event.data is data with its line breaks normalized to "\n". Returns the
 * bytes the frame needs; writes it to dst only when that fits in cap.
 */
size_t ngx_http_slora_sse_frame(unsigned char *dst, size_t cap,
    const char *event, const unsigned char *data, size_t len);


#endif /* NGX_HTTP_SLORA_SSE_H */
