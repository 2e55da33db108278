/*
 * ngx_http_slora_store_api.c: the stored responses' endpoints under
 * slora_api: GET .../responses/{id} (with ?stream=true a background
 * stream's events, ngx_http_slora_resume.c), DELETE, GET
 * .../responses/{id}/input_items and POST .../responses/{id}/cancel.
 *
 * The one idea: HTTP only. What they read and change is the store's
 * (ngx_http_slora_store.c), each a single call under its lock; here the
 * route's method and query are checked and the answer or the error is
 * written, in OpenAI's shapes.
 */

#include "ngx_http_slora_module.h"


static ngx_int_t ngx_http_slora_store_items_handler(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *tenant);
static ngx_int_t ngx_http_slora_store_cancel_handler(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *tenant);
static ngx_int_t ngx_http_slora_store_send(ngx_http_request_t *r,
    ngx_str_t *obj);


/*
 * GET .../responses/{id}: the stored response object (with ?stream=true a
 * background stream's events, ngx_http_slora_resume.c); DELETE: it goes,
 * answered {"id", "object": "response.deleted", "deleted": true}; GET
 * .../responses/{id}/input_items: a page of its input items; POST
 * .../responses/{id}/cancel: a background response being answered
 * stops, its object "cancelled". Not stored (or another tenant's, or no
 * store): 404; another method 405. Deleting a background response being
 * answered stops it too.
 */
ngx_int_t
ngx_http_slora_store_handler(ngx_http_request_t *r)
{
    u_char                      *p, *q, *last, *slash;
    ngx_int_t                    rc;
    ngx_str_t                    id, tenant, obj;
    ngx_buf_t                   *b;
    ngx_uint_t                   items, cancel;
    slora_openai_str_t           stream;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    last = r->uri.data + r->uri.len;

    /* the id follows the last "/responses/": a location's prefix (a
     * tenant's name) may hold one before it; the caller found one */
    p = NULL;
    q = r->uri.data;

    for ( ;; ) {
        q = ngx_strlcasestrn(q, last, (u_char *) "/responses/",
                             sizeof("/responses/") - 2);
        if (q == NULL) {
            break;
        }

        p = q++;
    }

    id.data = p + sizeof("/responses/") - 1;
    id.len = last - id.data;
    items = 0;
    cancel = 0;

    slash = ngx_strlchr(id.data, last, '/');

    if (slash != NULL) {
        items = (size_t) (last - slash) == sizeof("/input_items") - 1
                && ngx_strncmp(slash, "/input_items",
                               sizeof("/input_items") - 1) == 0;
        cancel = (size_t) (last - slash) == sizeof("/cancel") - 1
                 && ngx_strncmp(slash, "/cancel", sizeof("/cancel") - 1)
                    == 0;

        if (!(items || cancel) || slash == id.data) {
            return ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                             "invalid_request_error",
                                             "unknown_url", NULL,
                                             "Unknown request URL: %V %V",
                                             &r->method_name, &r->uri);
        }

        id.len = slash - id.data;
    }

    /* HEAD as GET: its header alone (ngx_http_slora_send_body) */
    if (items && !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_slora_not_allowed(r, "GET, HEAD");
    }

    if (cancel && r->method != NGX_HTTP_POST) {
        return ngx_http_slora_not_allowed(r, "POST");
    }

    if (!cancel
        && !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE)))
    {
        return ngx_http_slora_not_allowed(r, "GET, HEAD, DELETE");
    }

    if (smcf->store == NULL) {
        return ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                         "invalid_request_error",
                                         "not_found", NULL,
                                         "This server keeps no responses"
                                         " (slora_responses_store): %V %V"
                                         " has none to find",
                                         &r->method_name, &r->uri);
    }

    if (ngx_http_slora_tenant(r, &tenant) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_DELETE) {
        if (ngx_http_slora_store_state(r, id.data, id.len, &tenant, 1)
            == NGX_DECLINED)
        {
            goto none;
        }

        b = ngx_create_temp_buf(r->pool, 128 + 6 * id.len);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->last = ngx_http_slora_lit(b->last, "{\"id\":");
        b->last = ngx_http_slora_json_str(b->last, id.data, id.len);
        b->last = ngx_http_slora_lit(b->last, ",\"object\":"
                                     "\"response.deleted\","
                                     "\"deleted\":true}\n");

        return ngx_http_slora_send_body(r, NGX_HTTP_OK, b,
                                        "application/json");
    }

    if (items) {
        return ngx_http_slora_store_items_handler(r, &id, &tenant);
    }

    if (cancel) {
        return ngx_http_slora_store_cancel_handler(r, &id, &tenant);
    }

    rc = ngx_http_slora_query_arg(r, "stream", &stream);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a HEAD has no events to follow: the object's header */
    if (rc == NGX_OK && r->method == NGX_HTTP_GET) {
        if (stream.len == 4 && ngx_strncmp(stream.data, "true", 4) == 0) {
            /* a background stream's events (ngx_http_slora_resume.c) */
            return ngx_http_slora_resume(r, &id, &tenant);
        }

        if (!(stream.len == 5 && ngx_strncmp(stream.data, "false", 5) == 0))
        {
            return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid_request_error",
                                             "invalid_value", "stream",
                                             "stream must be true or"
                                             " false, not \"%*s\"",
                                             stream.len, stream.data);
        }
    }

    if (ngx_http_slora_store_get(r, id.data, id.len, &tenant, NULL, &obj)
        != NGX_OK)
    {
        goto none;
    }

    return ngx_http_slora_store_send(r, &obj);

none:

    return ngx_http_slora_store_none(r, &id);
}


/*
 * POST .../responses/{id}/cancel: a background response being answered
 * is cancelled: its record's object says "cancelled" (the answering
 * worker's next tick lets its engine request go, and stores nothing
 * over it); answered with that object. One cancelled already is
 * answered the same; one that ended or failed (or was never in the
 * background) is a 400.
 */
static ngx_int_t
ngx_http_slora_store_cancel_handler(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant)
{
    ngx_int_t  rc;
    ngx_str_t  obj;

    rc = ngx_http_slora_store_cancel(r, id, tenant, &obj);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_slora_store_none(r, id);
    }

    if (rc == NGX_HTTP_SLORA_STORE_DONE || rc == NGX_HTTP_SLORA_STORE_FAILED)
    {
        return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "invalid_value", NULL,
                                         "Response '%V' is not being"
                                         " answered in the background:"
                                         " only such a response can be"
                                         " cancelled", id);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "slora: background response %V cancelled", id);

    return ngx_http_slora_store_send(r, &obj);
}


/* A stored object as the answer. */
static ngx_int_t
ngx_http_slora_store_send(ngx_http_request_t *r, ngx_str_t *obj)
{
    ngx_buf_t  *b;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = obj->data;
    b->last = obj->data + obj->len;
    b->memory = 1;

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}


/* The 404 of an id not kept (or another tenant's). */
ngx_int_t
ngx_http_slora_store_none(ngx_http_request_t *r, ngx_str_t *id)
{
    return ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                     "invalid_request_error", "not_found",
                                     NULL, "Response with id '%V' not found",
                                     id);
}


/* GET .../responses/{id}/input_items: the engine's page of the stored
 * conversation's input items (engine/slora_openai_items.c), by the
 * query's limit, order and after. */
static ngx_int_t
ngx_http_slora_store_items_handler(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant)
{
    char                    *text;
    ngx_int_t                rc;
    ngx_str_t                conv;
    ngx_buf_t               *b;
    slora_openai_err_t       oe;
    slora_openai_items_q_t   q;

    rc = ngx_http_slora_store_get(r, id->data, id->len, tenant, &conv, NULL);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_slora_store_none(r, id);
    }

    if (ngx_http_slora_items_query(r, &q) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&oe, sizeof(slora_openai_err_t));

    if (slora_openai_input_items((const char *) conv.data, conv.len,
                                 (const char *) id->data, id->len, &q,
                                 &text, &oe)
        != SLORA_OK)
    {
        return ngx_http_slora_send_parse_err(r, &oe);
    }

    b = ngx_create_temp_buf(r->pool, ngx_strlen(text) + 1);

    if (b != NULL) {
        b->last = ngx_cpymem(b->last, text, ngx_strlen(text));
        *b->last++ = '\n';
    }

    free(text);

    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}


/* A list's query (input_items', a conversation's items'): limit, order
 * and after, each data NULL where absent. */
ngx_int_t
ngx_http_slora_items_query(ngx_http_request_t *r, slora_openai_items_q_t *q)
{
    ngx_memzero(q, sizeof(slora_openai_items_q_t));

    if (ngx_http_slora_query_arg(r, "limit", &q->limit) == NGX_ERROR
        || ngx_http_slora_query_arg(r, "order", &q->order) == NGX_ERROR
        || ngx_http_slora_query_arg(r, "after", &q->after) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
