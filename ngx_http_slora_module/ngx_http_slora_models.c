/*
 * ngx_http_slora_models.c: GET .../models and .../models/{id}, OpenAI's
 * model list and one model's object: the base model (as "base" and as
 * its id) and the adapters, from the names the engine published in the
 * zone, or from the engine itself where only it knows them (a Redis
 * catalog, which knows what each tenant may use; more names than the
 * zone holds).
 */

#include "ngx_http_slora_module.h"


static ngx_int_t ngx_http_slora_model_one(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_queue_t *q, ngx_str_t *id);


/* OpenAI's model list, or with .../models/{id} one model's object (404
 * model_not_found when the caller may not use it, or it is none). */
ngx_int_t
ngx_http_slora_models(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_str_t                    tenant, id;
    slora_queue_t               *q;
    ngx_http_slora_ctx_t        *ctx;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    if (ngx_http_slora_model_path(r, &id) != NGX_OK) {
        ngx_str_null(&id);
    }

    rc = ngx_http_slora_not_ready(r, q, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (smcf->redis_url.len || !slora_queue_names_all(q)) {
        /* only the engine knows what a tenant may use, or every adapter
         * where their names did not all fit the zone: ask it */
        if (ngx_http_slora_tenant(r, &tenant) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx = ngx_http_slora_ctx_create(r, 1);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->op = SLORA_OP_MODELS;
        ctx->tenant = tenant;
        ctx->model = id;

        return ngx_http_slora_op_start(r, ctx, &tenant, NULL);
    }

    if (id.len) {
        return ngx_http_slora_model_one(r, smcf, q, &id);
    }

    b = ngx_http_slora_models_json(r, smcf, q);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}


/* The id of a .../models/{id} URI: the last segment, after "/models/",
 * not empty (no id has a '/'), so that a location's prefix or a tenant
 * named "models" (/t/models/v1/...) is not taken for the route. */
ngx_int_t
ngx_http_slora_model_path(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char  *p, *last;

    last = r->uri.data + r->uri.len;
    p = last;

    while (p > r->uri.data && p[-1] != '/') {
        p--;
    }

    if (p == last
        || (size_t) (p - r->uri.data) < sizeof("/models/") - 1
        || ngx_strncasecmp(p - (sizeof("/models/") - 1),
                           (u_char *) "/models/", sizeof("/models/") - 1)
           != 0)
    {
        return NGX_DECLINED;
    }

    id->data = p;
    id->len = last - p;

    return NGX_OK;
}


/* One model's object from the zone's names: the base model (as "base" or
 * its id) or an adapter. */
static ngx_int_t
ngx_http_slora_model_one(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_queue_t *q, ngx_str_t *id)
{
    ngx_str_t   base;
    ngx_buf_t  *b;
    ngx_uint_t  adapter;

    ngx_str_set(&base, "base");
    adapter = 0;

    if (!ngx_http_slora_same(id, &base)
        && !ngx_http_slora_same(id, &smcf->model_id))
    {
        if (!ngx_http_slora_valid_name(id)
            || slora_queue_find_name(q, (const char *) id->data, id->len)
               < 0)
        {
            return ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                             "invalid_request_error",
                                             "model_not_found", "model",
                                             "The model `%V` does not exist",
                                             id);
        }

        adapter = 1;
    }

    b = ngx_create_temp_buf(r->pool,
                            ngx_http_slora_model_max(id->len,
                                                     smcf->model_id.len) + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_http_slora_model_obj(b->last, id,
                                       adapter ? &smcf->model_id : NULL, 0,
                                       ngx_http_slora_n_ctx(q));
    *b->last++ = '\n';

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}
