/*
 * ngx_http_slora_variables.c: $slora_adapter, $slora_tenant,
 * $slora_prompt_tokens, $slora_cached_tokens (of the prompt, those the
 * prefix cache gave), $slora_completion_tokens, $slora_ttft_ms,
 * $slora_finish_reason and $slora_response_id (the id the client was
 * given: chatcmpl-, cmpl-, resp_), for log_format and the like.
 *
 * The one idea: they all read the request context that the slora_api
 * handler made, so they are "not found" (logged as "-") for requests that
 * never reached a slot.
 */

#include "ngx_http_slora_module.h"


typedef enum {
    NGX_HTTP_SLORA_VAR_ADAPTER = 0,
    NGX_HTTP_SLORA_VAR_TENANT,
    NGX_HTTP_SLORA_VAR_PROMPT_TOKENS,
    NGX_HTTP_SLORA_VAR_CACHED_TOKENS,
    NGX_HTTP_SLORA_VAR_COMPLETION_TOKENS,
    NGX_HTTP_SLORA_VAR_TTFT_MS,
    NGX_HTTP_SLORA_VAR_FINISH_REASON,
    NGX_HTTP_SLORA_VAR_RESPONSE_ID
} ngx_http_slora_var_e;


static ngx_int_t ngx_http_slora_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_slora_vars[] = {

    { ngx_string("slora_adapter"), NULL, ngx_http_slora_variable,
      NGX_HTTP_SLORA_VAR_ADAPTER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("slora_tenant"), NULL, ngx_http_slora_variable,
      NGX_HTTP_SLORA_VAR_TENANT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("slora_prompt_tokens"), NULL, ngx_http_slora_variable,
      NGX_HTTP_SLORA_VAR_PROMPT_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("slora_cached_tokens"), NULL, ngx_http_slora_variable,
      NGX_HTTP_SLORA_VAR_CACHED_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("slora_completion_tokens"), NULL, ngx_http_slora_variable,
      NGX_HTTP_SLORA_VAR_COMPLETION_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("slora_ttft_ms"), NULL, ngx_http_slora_variable,
      NGX_HTTP_SLORA_VAR_TTFT_MS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("slora_finish_reason"), NULL, ngx_http_slora_variable,
      NGX_HTTP_SLORA_VAR_FINISH_REASON, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("slora_response_id"), NULL, ngx_http_slora_variable,
      NGX_HTTP_SLORA_VAR_RESPONSE_ID, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_slora_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_slora_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                *p;
    ngx_int_t              n;
    ngx_str_t              s;
    ngx_http_slora_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_slora_module);

    if (ctx == NULL || ctx->request == NULL) {
        /* no context, or only the one an error page made */
        v->not_found = 1;
        return NGX_OK;
    }

    n = -1;
    ngx_str_null(&s);

    switch (data) {

    case NGX_HTTP_SLORA_VAR_ADAPTER:
        s = ctx->model;
        break;

    case NGX_HTTP_SLORA_VAR_TENANT:
        s = ctx->tenant;
        break;

    case NGX_HTTP_SLORA_VAR_PROMPT_TOKENS:
        n = ctx->n_prompt;
        break;

    case NGX_HTTP_SLORA_VAR_CACHED_TOKENS:
        n = ngx_http_slora_cached_tokens(ctx);
        break;

    case NGX_HTTP_SLORA_VAR_COMPLETION_TOKENS:
        n = ngx_http_slora_completion_tokens(ctx);
        break;

    case NGX_HTTP_SLORA_VAR_TTFT_MS:
        n = ctx->ttft_ms;
        break;

    case NGX_HTTP_SLORA_VAR_RESPONSE_ID:
        s.data = ctx->id;
        s.len = ctx->id_len;
        break;

    default: /* NGX_HTTP_SLORA_VAR_FINISH_REASON */
        /* the first choice shown's (with best_of the likeliest) */
        if (ctx->n_choices && ctx->choice[ctx->lead].finish) {
            s.data = (u_char *) ctx->choice[ctx->lead].finish;
            s.len = ngx_strlen(ctx->choice[ctx->lead].finish);
        }
        break;
    }

    if (data == NGX_HTTP_SLORA_VAR_PROMPT_TOKENS
        || data == NGX_HTTP_SLORA_VAR_CACHED_TOKENS
        || data == NGX_HTTP_SLORA_VAR_COMPLETION_TOKENS
        || data == NGX_HTTP_SLORA_VAR_TTFT_MS)
    {
        if (n < 0) {
            v->not_found = 1;
            return NGX_OK;
        }

        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        s.data = p;
        s.len = ngx_sprintf(p, "%i", n) - p;
    }

    if (s.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = s.data;
    v->len = s.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
