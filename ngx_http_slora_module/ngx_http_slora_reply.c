/*
 * ngx_http_slora_reply.c: what the module answers itself, without the
 * engine: OpenAI's error object at its status (Retry-After on 429 and
 * 503), logged at a level that says whose fault it is; a method's 405,
 * or a CORS preflight's 204; the engine's 503 while it is not ready;
 * a whole body with its type and length; and OpenAI's error type and
 * code for a status.
 *
 * The one idea: every such answer goes through ngx_http_slora_send_body,
 * so status, length and type are set one way, and every error through
 * one va_list core, so the error object and its log line agree.
 */

#include "ngx_http_slora_module.h"


static ngx_int_t ngx_http_slora_send_verror(ngx_http_request_t *r,
    ngx_uint_t level, ngx_uint_t status, const char *type, const char *code,
    const char *param, const char *fmt, va_list args);
static ngx_int_t ngx_http_slora_send_error_at(ngx_http_request_t *r,
    ngx_uint_t level, ngx_uint_t status, const char *type, const char *code,
    const char *param, const char *fmt, ...);


/*
 * 405, with the methods the URI takes in Allow; but OPTIONS is answered,
 * 204 with those methods and OPTIONS in Allow, so that a browser's CORS
 * preflight gets the Access-Control-* headers the configuration adds to
 * it (add_header), not an error.
 */
ngx_int_t
ngx_http_slora_not_allowed(ngx_http_request_t *r, const char *allow)
{
    u_char     *p;
    ngx_int_t   rc;
    size_t      len;

    if (r->method == NGX_HTTP_OPTIONS) {
        len = ngx_strlen(allow);
        p = ngx_pnalloc(r->pool, len + sizeof(", OPTIONS"));
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ngx_cpymem(p, allow, len), ", OPTIONS",
                   sizeof(", OPTIONS"));

        if (ngx_http_slora_add_header(r, "Allow", (char *) p) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.status = NGX_HTTP_NO_CONTENT;
        r->headers_out.content_length_n = 0;
        r->header_only = 1;

        rc = ngx_http_send_header(r);

        return rc == NGX_ERROR || rc > NGX_OK ? rc : NGX_OK;
    }

    if (ngx_http_slora_add_header(r, "Allow", allow) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                     "invalid_request_error",
                                     "method_not_allowed", NULL,
                                     "Method %V is not allowed for %V",
                                     &r->method_name, &r->uri);
}


/* 503 engine_not_ready saying why, or NGX_DECLINED where requests go to
 * the engine now; a probe's 503 is its answer, logged at info, not warn. */
ngx_int_t
ngx_http_slora_not_ready(ngx_http_request_t *r, slora_queue_t *q,
    ngx_uint_t probe)
{
    const char  *down;

    down = ngx_http_slora_engine_down(q);
    if (down == NULL) {
        return NGX_DECLINED;
    }

    return ngx_http_slora_send_error_at(r, probe ? NGX_LOG_INFO : NGX_LOG_WARN,
                                        NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "server_error", "engine_not_ready",
                                        NULL, "The engine is not ready: %s",
                                        down);
}


static ngx_int_t
ngx_http_slora_send_error_at(ngx_http_request_t *r, ngx_uint_t level,
    ngx_uint_t status, const char *type, const char *code, const char *param,
    const char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    va_start(args, fmt);
    rc = ngx_http_slora_send_verror(r, level, status, type, code, param, fmt,
                                    args);
    va_end(args);

    return rc;
}


/* A parser's error as the API's error object. */
ngx_int_t
ngx_http_slora_send_parse_err(ngx_http_request_t *r, slora_openai_err_t *oe)
{
    return ngx_http_slora_send_error(r, (ngx_uint_t) oe->status, oe->type,
                                     oe->code, oe->param, "%*s", oe->len,
                                     oe->msg);
}


/* Logged at warn for a server error, at info for the client's. */
ngx_int_t
ngx_http_slora_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *code, const char *param,
    const char *fmt, ...)
{
    va_list    args;
    ngx_int_t  rc;

    va_start(args, fmt);
    rc = ngx_http_slora_send_verror(r,
                                    status >= NGX_HTTP_INTERNAL_SERVER_ERROR
                                    ? NGX_LOG_WARN : NGX_LOG_INFO,
                                    status, type, code, param, fmt, args);
    va_end(args);

    return rc;
}


static ngx_int_t
ngx_http_slora_send_verror(ngx_http_request_t *r, ngx_uint_t level,
    ngx_uint_t status, const char *type, const char *code, const char *param,
    const char *fmt, va_list args)
{
    u_char                *p, msg[512];
    size_t                 len;
    ngx_buf_t             *b;
    const char            *retry;
    ngx_http_slora_ctx_t  *ctx;

    /* one byte left for the NUL that slora_openai_clean_msg() writes
     * after the text: a message cut at the buffer's end (a long URI
     * quoted) fills all the rest */
    p = ngx_vslprintf(msg, msg + sizeof(msg) - 1, fmt, args);

    /* a name or path quoted from the request, or cut at the end, stays
     * UTF-8 (the JSON body must be) */
    len = p - msg;
    slora_openai_clean_msg((char *) msg, &len);
    p = msg + len;

    ngx_log_error(level, r->connection->log, 0, "slora: %ui %*s", status,
                  p - msg, msg);

    b = ngx_create_temp_buf(r->pool, ngx_http_slora_error_max(p - msg) + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_http_slora_error_json(b->last, type, code, param, msg,
                                        p - msg);
    *b->last++ = '\n';

    /* the engine's estimate of when a retry may be admitted, else 1 s */
    ctx = ngx_http_get_module_ctx(r, ngx_http_slora_module);
    retry = "1";

    if (ctx != NULL && ctx->retry_after > 0) {
        retry = (const char *) ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);
        if (retry == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        *ngx_sprintf((u_char *) retry, "%ui", ctx->retry_after) = '\0';
    }

    if ((status == NGX_HTTP_TOO_MANY_REQUESTS
         || status == NGX_HTTP_SERVICE_UNAVAILABLE)
        && ngx_http_slora_add_header(r, "Retry-After",
                                     status == NGX_HTTP_TOO_MANY_REQUESTS
                                     ? retry : "5")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_body(r, status, b, "application/json");
}


ngx_int_t
ngx_http_slora_add_header(ngx_http_request_t *r, const char *key,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


/*
 * Sends b, a whole response body of the given type, with its status and
 * length, and returns what a handler returns (an event handler passes it
 * to ngx_http_finalize_request()). Never NGX_AGAIN: what the client has
 * not taken yet waits in nginx's buffers, which the request's
 * finalization sees (its writer sends the rest), and NGX_AGAIN is what the
 * request's making answers while a thread works for it
 * (ngx_http_slora_encode.c): a send's would leave the request made, never
 * finalized, the rest of its answer never sent.
 */
ngx_int_t
ngx_http_slora_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_buf_t *b, const char *type)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc != NGX_ERROR && rc <= NGX_OK && !r->header_only) {
        out.buf = b;
        out.next = NULL;

        rc = ngx_http_output_filter(r, &out);
    }

    return rc == NGX_AGAIN ? NGX_OK : rc;
}


/* OpenAI's error type for an HTTP status. */
const char *
ngx_http_slora_error_type(ngx_uint_t status)
{
    switch (status) {

    case NGX_HTTP_FORBIDDEN:
        return "permission_error";

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limit_error";

    default:
        return status >= NGX_HTTP_INTERNAL_SERVER_ERROR
               ? "server_error" : "invalid_request_error";
    }
}


/* The error code for a status when the engine gave none. */
const char *
ngx_http_slora_error_code(ngx_uint_t status)
{
    switch (status) {

    case NGX_HTTP_BAD_REQUEST:
        return "invalid_value";

    case NGX_HTTP_FORBIDDEN:
        return "permission_denied";

    case NGX_HTTP_NOT_FOUND:
        return "model_not_found";

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return "rate_limit_exceeded";

    default:
        return "engine_error";
    }
}
