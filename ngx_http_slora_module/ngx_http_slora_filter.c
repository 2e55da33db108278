/*
 * ngx_http_slora_filter.c: header and body filters that turn nginx's own
 * error pages inside slora_api locations into OpenAI's error shape, so a
 * client sees {"error": {...}} for every failure, including those nginx
 * answers before the module runs: 413 (client_max_body_size), 400 (a bad
 * request line or chunked body), 408 (client_body_timeout), 500, and
 * what the configuration answers in front of the API: 401 for a missing
 * or unknown API key (`return 401`), 403 (allow/deny), 429 (limit_req,
 * limit_conn; with Retry-After).
 *
 * The one idea: nginx marks such responses with r->err_status (its special
 * response handler sets it; the module's own JSON errors do not), so the
 * header filter swaps the content type and length and the body filter
 * swaps the HTML for the JSON, once.
 */

#include "ngx_http_slora_module.h"


static ngx_int_t ngx_http_slora_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_slora_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static const char *ngx_http_slora_errpage_text(ngx_uint_t status,
    const char **code);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_slora_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_slora_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_slora_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_header_filter(ngx_http_request_t *r)
{
    size_t                      len;
    ngx_buf_t                  *b;
    const char                 *msg, *code;
    ngx_http_slora_ctx_t       *ctx;
    ngx_http_slora_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);

    if (slcf->api == NGX_HTTP_SLORA_API_NONE || r != r->main
        || r->err_status < NGX_HTTP_BAD_REQUEST
        || r->headers_out.status != r->err_status)
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_slora_module);

    if (ctx == NULL) {
        ctx = ngx_http_slora_ctx_create(r, 0);
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_slora_module);
    }

    msg = ngx_http_slora_errpage_text(r->err_status, &code);
    len = ngx_strlen(msg);

    b = ngx_create_temp_buf(r->pool, ngx_http_slora_error_max(len) + 1);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_http_slora_error_json(b->last,
                                        ngx_http_slora_error_type(
                                            r->err_status),
                                        code, NULL, (u_char *) msg, len);
    *b->last++ = '\n';
    b->last_buf = 1;
    b->last_in_chain = 1;

    ctx->errpage = b;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = b->last - b->pos;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    if (r->err_status == NGX_HTTP_TOO_MANY_REQUESTS
        && ngx_http_slora_add_header(r, "Retry-After", "1") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_slora_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t            *cl, out;
    ngx_http_slora_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_slora_module);

    if (ctx == NULL || ctx->errpage == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* the HTML page is dropped */
    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->errpage_sent) {
        return NGX_OK;
    }

    ctx->errpage_sent = 1;

    out.buf = ctx->errpage;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static const char *
ngx_http_slora_errpage_text(ngx_uint_t status, const char **code)
{
    switch (status) {

    case NGX_HTTP_UNAUTHORIZED:
        *code = "invalid_api_key";
        return "Incorrect or missing API key (Authorization: Bearer KEY)";

    case NGX_HTTP_FORBIDDEN:
        *code = "permission_denied";
        return "You are not allowed to use this server";

    case NGX_HTTP_TOO_MANY_REQUESTS:
        *code = "rate_limit_exceeded";
        return "Too many requests; retry shortly";

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        *code = "request_too_large";
        return "The request body is larger than this server accepts"
               " (client_max_body_size)";

    case NGX_HTTP_REQUEST_TIME_OUT:
        *code = "timeout";
        return "The client did not send the request in time";

    case NGX_HTTP_NOT_ALLOWED:
        *code = "method_not_allowed";
        return "Method not allowed";

    case NGX_HTTP_NOT_FOUND:
        *code = "not_found";
        return "Not found";

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        *code = "service_unavailable";
        return "The service is unavailable";

    default:
        *code = status >= NGX_HTTP_INTERNAL_SERVER_ERROR ? "internal_error"
                                                         : "bad_request";
        return status >= NGX_HTTP_INTERNAL_SERVER_ERROR
               ? "The server failed to handle the request"
               : "The request is malformed";
    }
}
