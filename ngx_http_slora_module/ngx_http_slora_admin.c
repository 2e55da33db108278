/*
 * ngx_http_slora_admin.c: requests that ask the engine something rather
 * than generate: the slora_admin endpoints (load, unload, pin, unpin an
 * adapter; list the adapters with their tiers; flush the prefix cache;
 * vLLM's load_lora_adapter and unload_lora_adapter, which register an
 * adapter's folder under a name at run time and take it back) and, with
 * the catalog in Redis, the model list of a tenant. Who may call the
 * admin endpoints is nginx's business (allow/deny in their location).
 *
 * The one idea: such a request travels exactly like a generation, through
 * a slot with an op kind (engine/slora_queue.h), so the worker never
 * blocks on the engine or on Redis: the engine answers into the slot's
 * prompt buffer, the slot's eventfd wakes the request, and a listing
 * longer than one buffer is asked for again, page by page, after the last
 * name the engine wrote.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"


typedef struct {
    ngx_uint_t         status;
    const char        *code;
    u_char             msg[256];
    size_t             len;
} ngx_http_slora_op_err_t;


static ngx_int_t ngx_http_slora_op_submit(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const u_char *name, size_t len,
    ngx_http_slora_op_err_t *e);
static ngx_int_t ngx_http_slora_op_keep(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const u_char *data, size_t len);
static ngx_buf_t *ngx_http_slora_op_body(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
static ngx_buf_t *ngx_http_slora_models_body(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_uint_t *found);
static ngx_int_t ngx_http_slora_lora_route(ngx_http_request_t *r);
static void ngx_http_slora_lora_body(ngx_http_request_t *r);


static struct {
    ngx_str_t    name;
    slora_op_e   op;
} ngx_http_slora_admin_ops[] = {
    { ngx_string("load"), SLORA_OP_LOAD },
    { ngx_string("unload"), SLORA_OP_UNLOAD },
    { ngx_string("pin"), SLORA_OP_PIN },
    { ngx_string("unpin"), SLORA_OP_UNPIN }
};


/*
 * GET <loc>adapters, POST <loc>adapters/NAME/{load,unload,pin,unpin},
 * POST <loc>prefix_cache/flush: matched on the end of the URI, as
 * slora_api does.
 */
ngx_int_t
ngx_http_slora_admin_handler(ngx_http_request_t *r)
{
    u_char                *p, *end, *slash, *name;
    size_t                 len;
    ngx_int_t              rc;
    ngx_str_t              n;
    ngx_uint_t             i, get;
    slora_op_e             op;
    ngx_http_slora_ctx_t  *ctx;

    static ngx_str_t       list = ngx_string("/adapters");
    static ngx_str_t       flush = ngx_string("/prefix_cache/flush");

    if (ngx_http_slora_lora_route(r) != SLORA_OP_GENERATE) {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_slora_not_allowed(r, "POST");
        }

        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r, ngx_http_slora_lora_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    p = r->uri.data;
    end = r->uri.data + r->uri.len;
    name = NULL;
    len = 0;
    op = SLORA_OP_ADAPTERS;

    if ((size_t) (end - p) >= list.len
        && ngx_strncmp(end - list.len, list.data, list.len) == 0)
    {
        get = 1;

    } else if ((size_t) (end - p) >= flush.len
               && ngx_strncmp(end - flush.len, flush.data, flush.len) == 0)
    {
        get = 0;
        op = SLORA_OP_PREFIX_FLUSH;

    } else {
        /* .../adapters/NAME/OP */
        get = 0;

        slash = end;
        while (slash > p && slash[-1] != '/') {
            slash--;
        }

        n.data = slash;
        n.len = end - slash;
        op = SLORA_OP_GENERATE;

        for (i = 0; i < sizeof(ngx_http_slora_admin_ops)
                        / sizeof(ngx_http_slora_admin_ops[0]); i++)
        {
            if (n.len == ngx_http_slora_admin_ops[i].name.len
                && ngx_strncmp(n.data, ngx_http_slora_admin_ops[i].name.data,
                               n.len) == 0)
            {
                op = ngx_http_slora_admin_ops[i].op;
            }
        }

        if (op != SLORA_OP_GENERATE && slash > p) {
            end = slash - 1;
            name = end;

            while (name > p && name[-1] != '/') {
                name--;
            }

            len = end - name;

            if (name - p < (ssize_t) list.len + 1
                || ngx_strncmp(name - list.len - 1, list.data, list.len)
                   != 0
                || name[-1] != '/')
            {
                op = SLORA_OP_GENERATE;
            }
        }

        if (op == SLORA_OP_GENERATE) {
            return ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                             "invalid_request_error",
                                             "unknown_url", NULL,
                                             "Unknown admin URL: %V %V",
                                             &r->method_name, &r->uri);
        }
    }

    if (get ? !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
            : r->method != NGX_HTTP_POST)
    {
        return ngx_http_slora_not_allowed(r, get ? "GET, HEAD" : "POST");
    }

    n.data = name;
    n.len = len;

    if (name != NULL && !ngx_http_slora_valid_name(&n)) {
        return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "invalid_value", NULL,
                                         "\"%V\" is not a valid adapter name"
                                         " (empty, \"..\", a leading \".\","
                                         " a control character, not UTF-8,"
                                         " or %d bytes or more)", &n,
                                         SLORA_QUEUE_ADAPTER_LEN);
    }

    ctx = ngx_http_slora_ctx_create(r, 1);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->op = op;
    ctx->model = n;

    return ngx_http_slora_op_start(r, ctx, NULL, name ? &n : NULL);
}


/* vLLM's routes: REGISTER for .../load_lora_adapter, DEREGISTER for
 * .../unload_lora_adapter, GENERATE for any other URI. */
static ngx_int_t
ngx_http_slora_lora_route(ngx_http_request_t *r)
{
    static ngx_str_t  load = ngx_string("/load_lora_adapter");
    static ngx_str_t  unload = ngx_string("/unload_lora_adapter");

    if (r->uri.len >= unload.len
        && ngx_strncmp(r->uri.data + r->uri.len - unload.len, unload.data,
                       unload.len) == 0)
    {
        return SLORA_OP_DEREGISTER;
    }

    if (r->uri.len >= load.len
        && ngx_strncmp(r->uri.data + r->uri.len - load.len, load.data,
                       load.len) == 0)
    {
        return SLORA_OP_REGISTER;
    }

    return SLORA_OP_GENERATE;
}


/* The body of load_lora_adapter or unload_lora_adapter has been read. */
static void
ngx_http_slora_lora_body(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    body, n;
    slora_op_e                   op;
    slora_openai_err_t           oe;
    slora_openai_lora_t         *lora;
    ngx_http_slora_ctx_t        *ctx;
    ngx_http_slora_main_conf_t  *smcf;

    op = ngx_http_slora_lora_route(r);

    lora = ngx_palloc(r->pool, sizeof(slora_openai_lora_t));
    if (lora == NULL || ngx_http_slora_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memzero(&oe, sizeof(oe));

    if (slora_openai_parse_lora((const char *) body.data, body.len,
                                op == SLORA_OP_REGISTER, lora, &oe)
        != SLORA_OK)
    {
        ngx_http_finalize_request(r, ngx_http_slora_send_parse_err(r, &oe));
        return;
    }

    n.data = (u_char *) lora->name;
    n.len = ngx_strlen(lora->name);

    if (!ngx_http_slora_valid_name(&n)) {
        ngx_http_finalize_request(r,
            ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_value", "lora_name",
                                      "\"%V\" is not a valid adapter name"
                                      " (empty, \"..\", a leading \".\","
                                      " a control character, not UTF-8,"
                                      " or %d bytes or more)", &n,
                                      SLORA_QUEUE_ADAPTER_LEN));
        return;
    }

    /* the names a request's model means otherwise: no adapter of one
     * could ever be asked for */
    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    if (op == SLORA_OP_REGISTER
        && ((n.len == 4 && ngx_strncmp(n.data, "base", 4) == 0)
            || (n.len == 7 && ngx_strncmp(n.data, "default", 7) == 0)
            || (n.len == smcf->model_id.len
                && ngx_strncmp(n.data, smcf->model_id.data, n.len) == 0)))
    {
        ngx_http_finalize_request(r,
            ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_value", "lora_name",
                                      "\"%V\" names the base model or a "
                                      "tenant's default adapter in a "
                                      "request's model here: give the "
                                      "adapter another name", &n));
        return;
    }

    if (op == SLORA_OP_REGISTER || op == SLORA_OP_DEREGISTER) {
        /*
         * A worker a reload or a stop told to exit: its engine, if it
         * goes on (the reload kept it), takes the op, or refuses it
         * while a new engine takes over (slora_engine_op), in these
         * words; if that engine has already quit, the words are the same
         * rather than "the engine process is gone".
         */
        if ((ngx_exiting || ngx_terminate || ngx_quit)
            && ngx_http_slora_engine_down(ngx_http_slora_queue(smcf))
               != NULL)
        {
            ngx_http_finalize_request(r,
                ngx_http_slora_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                          "server_error", "engine_not_ready",
                                          NULL, "nginx is reloading or "
                                          "stopping: ask again"));
            return;
        }
    }

    if (ngx_strlen(lora->path) >= SLORA_QUEUE_PATH_LEN) {
        ngx_http_finalize_request(r,
            ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                      "invalid_request_error",
                                      "invalid_value", "lora_path",
                                      "lora_path is at most %d bytes",
                                      SLORA_QUEUE_PATH_LEN - 1));
        return;
    }

    ctx = ngx_http_slora_ctx_create(r, 1);
    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->op = op == SLORA_OP_REGISTER && lora->inplace ? SLORA_OP_REPLACE
                                                       : op;
    ctx->model = n;
    ctx->op_path.data = (u_char *) lora->path;
    ctx->op_path.len = ngx_strlen(lora->path);

    rc = ngx_http_slora_op_start(r, ctx, NULL, &n);

    /* NGX_DONE: the engine answers; the request counted once more */
    ngx_http_finalize_request(r, rc);
}


/* Submits an op from a content handler: NGX_DONE, or the error sent. */
ngx_int_t
ngx_http_slora_op_start(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const ngx_str_t *tenant, const ngx_str_t *name)
{
    ngx_http_slora_op_err_t  e;

    ctx->request = r;

    if (tenant != NULL) {
        ctx->tenant = *tenant;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_slora_module);

    ngx_memzero(&e, sizeof(e));

    if (ngx_http_slora_op_submit(r, ctx, name ? name->data : NULL,
                                 name ? name->len : 0, &e)
        == NGX_OK)
    {
        r->main->count++;
        return NGX_DONE;
    }

    if (e.status == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_error(r, e.status,
                                     ngx_http_slora_error_type(e.status),
                                     e.code, NULL, "%*s", e.len, e.msg);
}


/* Claims a slot for ctx->op with name (the adapter, or the cursor of a
 * listing) and the tenant, and hands it to the engine. */
static ngx_int_t
ngx_http_slora_op_submit(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const u_char *name, size_t len, ngx_http_slora_op_err_t *e)
{
    uint32_t                     idx;
    slora_slot_t                *s;
    slora_queue_t               *q;
    const char                  *down;
    ngx_http_slora_main_conf_t  *smcf;

    static uint32_t              hint;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    down = ngx_http_slora_engine_down(q);
    if (down != NULL) {
        e->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        e->code = "engine_not_ready";
        e->len = ngx_snprintf(e->msg, sizeof(e->msg), "The engine is not"
                              " ready: %s", down) - e->msg;
        return NGX_ERROR;
    }

    if (len >= SLORA_QUEUE_ADAPTER_LEN
        || !ngx_http_slora_tenant_valid(&ctx->tenant))
    {
        e->status = NGX_HTTP_FORBIDDEN;
        e->code = "unknown_tenant";
        e->len = ngx_snprintf(e->msg, sizeof(e->msg), "unknown tenant (the"
                              " name is not valid)") - e->msg;
        return NGX_ERROR;
    }

    /* a registration's folder travels in the slot's prompt buffer */
    if ((ctx->op == SLORA_OP_REGISTER || ctx->op == SLORA_OP_REPLACE)
        && ctx->op_path.len > q->geom.prompt_cap * sizeof(int32_t))
    {
        e->status = NGX_HTTP_BAD_REQUEST;
        e->code = "invalid_value";
        e->len = ngx_snprintf(e->msg, sizeof(e->msg), "lora_path is %uz"
                              " bytes, more than the %uz a request slot"
                              " holds here (4 a token of slora_engine"
                              " max_ctx=)", ctx->op_path.len,
                              (size_t) q->geom.prompt_cap * sizeof(int32_t))
                 - e->msg;
        return NGX_ERROR;
    }

    if (slora_queue_claim(q, hint++ + (uint32_t) ngx_pid, &idx) != SLORA_OK)
    {
        e->status = NGX_HTTP_TOO_MANY_REQUESTS;
        e->code = "rate_limit_exceeded";
        e->len = ngx_snprintf(e->msg, sizeof(e->msg), "All %uD request slots"
                              " are busy; retry shortly", q->geom.n_slots)
                 - e->msg;
        return NGX_ERROR;
    }

    s = slora_queue_slot(q, idx);

    s->op = ctx->op;
    if (len) {
        ngx_memcpy(s->adapter, name, len);
    }
    s->adapter[len] = '\0';
    if (ctx->tenant.len) {
        ngx_memcpy(s->tenant, ctx->tenant.data, ctx->tenant.len);
    }
    s->tenant[ctx->tenant.len] = '\0';
    s->n_prompt = 0;
    s->max_tokens = 0;
    s->n_stop_ids = 0;

    if (ctx->op == SLORA_OP_REGISTER || ctx->op == SLORA_OP_REPLACE) {
        /* the folder's path in the prompt buffer, as bytes */
        ngx_memcpy(slora_queue_prompt(q, idx), ctx->op_path.data,
                   ctx->op_path.len);
        s->n_prompt = (uint32_t) ctx->op_path.len;
    }

    ctx->choice[0].slot = idx;
    ctx->choice[0].have_slot = 1;
    ctx->finished = 0;

    if (ngx_http_slora_stream_start(r, ctx) != NGX_DONE) {
        e->status = NGX_HTTP_SERVICE_UNAVAILABLE;
        e->code = "engine_not_ready";
        e->len = ngx_snprintf(e->msg, sizeof(e->msg), "The request could"
                              " not be queued") - e->msg;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The engine answered (or failed) an op: ask for the next page, or send
 * the response. */
void
ngx_http_slora_op_pump(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    slora_queue_t *q, uint32_t st)
{
    u_char                   cursor[SLORA_QUEUE_ADAPTER_LEN];
    size_t                   len;
    uint32_t                 more, n;
    ngx_int_t                rc;
    ngx_buf_t               *b;
    ngx_uint_t               found;
    slora_slot_t            *s;
    ngx_http_slora_op_err_t  e;

    s = slora_queue_slot(q, ctx->choice[0].slot);

    if (st == SLORA_SLOT_FAILED) {
        ngx_http_slora_choice_fail(r, ctx, &ctx->choice[0], q);
        return;
    }

    if (st != SLORA_SLOT_FINISHED) {
        return;
    }

    n = s->answer_len;
    if (n > q->geom.prompt_cap * sizeof(int32_t)) {
        n = 0;
    }

    if (ngx_http_slora_op_keep(r, ctx, (u_char *) slora_queue_prompt(q,
                                                 ctx->choice[0].slot), n)
        != NGX_OK)
    {
        ngx_http_slora_stream_release(ctx);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    more = s->more;
    len = ngx_strnlen((u_char *) s->adapter, sizeof(cursor) - 1);
    ngx_memcpy(cursor, s->adapter, len);
    cursor[len] = '\0';

    ngx_http_slora_stream_release(ctx);

    if (more && n > 0) {
        ngx_memzero(&e, sizeof(e));

        if (ngx_http_slora_op_submit(r, ctx, cursor, len, &e) != NGX_OK) {
            ngx_http_slora_stream_release(ctx);
            ctx->finished = 1;
            ngx_http_finalize_request(r,
                ngx_http_slora_send_error(r, e.status
                                          ? e.status
                                          : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          ngx_http_slora_error_type(e.status),
                                          e.code, NULL, "%*s", e.len, e.msg));
        }

        return;
    }

    ctx->finished = 1;
    found = 1;

    if (ctx->op == SLORA_OP_REGISTER || ctx->op == SLORA_OP_REPLACE
        || ctx->op == SLORA_OP_DEREGISTER)
    {
        /* vLLM's answer, word for word: its clients may read it */
        b = ngx_create_temp_buf(r->pool, ctx->model.len + 64);
        if (b == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        b->last = ngx_sprintf(b->last, "Success: LoRA adapter '%V' %s"
                              " successfully.", &ctx->model,
                              ctx->op == SLORA_OP_DEREGISTER ? "removed"
                                                             : "added");

        ngx_http_finalize_request(r,
            ngx_http_slora_send_body(r, NGX_HTTP_OK, b,
                                     "text/plain; charset=utf-8"));
        return;
    }

    b = ctx->op == SLORA_OP_MODELS ? ngx_http_slora_models_body(r, ctx, &found)
                                   : ngx_http_slora_op_body(r, ctx);

    if (b == NULL && !found) {
        ngx_http_finalize_request(r,
            ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                      "invalid_request_error",
                                      "model_not_found", "model",
                                      "The model `%V` does not exist",
                                      &ctx->model));
        return;
    }

    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
    ngx_http_finalize_request(r, rc);
}


/* Appends a page of the engine's answer to the op's text. */
static ngx_int_t
ngx_http_slora_op_keep(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const u_char *data, size_t len)
{
    u_char                   *p;
    size_t                    cap;
    ngx_http_slora_choice_t  *ch;

    ch = &ctx->choice[0];

    if (ch->text_len + len > ch->text_cap) {
        cap = ngx_max(ch->text_cap * 2, ch->text_len + len);

        p = ngx_pnalloc(r->pool, cap);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, ch->text, ch->text_len);
        ch->text = p;
        ch->text_cap = cap;
    }

    ngx_memcpy(ch->text + ch->text_len, data, len);
    ch->text_len += len;

    return NGX_OK;
}


/* The admin answers: the adapter list, or what an operation did. */
static ngx_buf_t *
ngx_http_slora_op_body(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    u_char                   *p;
    size_t                    skip;
    ngx_int_t                 n;
    ngx_buf_t                *b;
    const char               *verb;
    ngx_http_slora_choice_t  *ch;

    ch = &ctx->choice[0];

    b = ngx_create_temp_buf(r->pool, ch->text_len + 6 * ctx->model.len
                                     + 256);
    if (b == NULL) {
        return NULL;
    }

    p = b->last;

    if (ctx->op == SLORA_OP_ADAPTERS) {
        /* the engine puts a comma before every object */
        skip = (ch->text_len && ch->text[0] == ',') ? 1 : 0;

        p = ngx_http_slora_lit(p, "{\"object\":\"list\",\"data\":[");
        p = ngx_cpymem(p, ch->text + skip, ch->text_len - skip);
        p = ngx_http_slora_lit(p, "]}\n");

    } else if (ctx->op == SLORA_OP_PREFIX_FLUSH) {
        /* the engine answers the pages it returned, in digits */
        n = ngx_atoi(ch->text, ch->text_len);
        if (n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "slora: the engine's answer to a prefix cache"
                          " flush is not a count: \"%*s\"",
                          ngx_min(ch->text_len, 32), ch->text);
            return NULL;
        }

        p = ngx_sprintf(p, "{\"object\":\"prefix_cache.operation\","
                        "\"op\":\"flush\",\"ok\":true,\"flushed\":%i}\n",
                        n);

    } else {
        verb = ctx->op == SLORA_OP_LOAD ? "load"
               : ctx->op == SLORA_OP_UNLOAD ? "unload"
               : ctx->op == SLORA_OP_PIN ? "pin" : "unpin";

        p = ngx_http_slora_lit(p, "{\"object\":\"adapter.operation\","
                                  "\"adapter\":\"");
        p += ngx_http_slora_json_escape(p, ctx->model.data, ctx->model.len);
        p = ngx_sprintf(p, "\",\"op\":\"%s\",\"ok\":true}\n", verb);
    }

    b->last = p;

    return b;
}


/*
 * A tenant's model list (or, without a tenant, the base model and every
 * adapter the catalog knows), from the engine's records: a flag byte
 * ("d": the tenant's default; "b": the base model, a tenant's default),
 * the name, a NUL. With ctx->model (GET
 * .../models/{id}) only that model's object, NULL with *found 0 when the
 * list lacks it.
 */
static ngx_buf_t *
ngx_http_slora_models_body(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_uint_t *found)
{
    u_char                      *p, *rec, *end, *nul;
    int32_t                      max_len;
    ngx_str_t                    id, base;
    ngx_buf_t                   *b;
    ngx_uint_t                   n, one;
    slora_queue_t               *q;
    ngx_http_slora_choice_t     *ch;
    ngx_http_slora_main_conf_t  *smcf;

    ch = &ctx->choice[0];
    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);
    max_len = q ? ngx_http_slora_n_ctx(q) : 0;
    one = ctx->model.len > 0;
    *found = 0;

    /*
     * a record is 2 bytes at least (a flag, a NUL): each an object with
     * the base model's id as its parent, ",\"default\":true" and a comma;
     * before them "base" (or the id asked for) and the base model's own
     */
    n = ch->text_len / 2 + 1;

    b = ngx_create_temp_buf(r->pool,
                            n * (ngx_http_slora_model_max(0,
                                                    smcf->model_id.len)
                                 + 16)
                            + 6 * ch->text_len
                            + ngx_http_slora_model_max(ctx->model.len + 4, 0)
                            + ngx_http_slora_model_max(smcf->model_id.len, 0)
                            + 64);
    if (b == NULL) {
        return NULL;
    }

    p = one ? b->last
            : ngx_http_slora_lit(b->last, "{\"object\":\"list\",\"data\":[");
    n = 0;

    if (ctx->tenant.len == 0) {
        ngx_str_set(&base, "base");

        if (!one || ngx_http_slora_same(&ctx->model, &base)
            || ngx_http_slora_same(&ctx->model, &smcf->model_id))
        {
            p = ngx_http_slora_model_obj(p, one ? &ctx->model : &base, NULL,
                                         0, max_len);
            n++;
        }

        if (!one) {
            *p++ = ',';
            p = ngx_http_slora_model_obj(p, &smcf->model_id, NULL, 0,
                                         max_len);
            n++;
        }
    }

    rec = ch->text;
    end = ch->text + ch->text_len;

    while (rec + 1 < end && !(one && n > 0)) {
        nul = ngx_strlchr(rec + 1, end, '\0');
        if (nul == NULL) {
            break;
        }

        id.data = rec + 1;
        id.len = nul - rec - 1;

        if (rec[0] == 'b') {
            /* the base model, a tenant's default: by either name */
            ngx_str_set(&base, "base");

            if (!one || ngx_http_slora_same(&ctx->model, &base)
                || ngx_http_slora_same(&ctx->model, &smcf->model_id))
            {
                if (n++ > 0) {
                    *p++ = ',';
                }

                p = ngx_http_slora_model_obj(p, one ? &ctx->model : &base,
                                             NULL, 1, max_len);
            }

        } else if (!one || ngx_http_slora_same(&ctx->model, &id)) {
            if (n++ > 0) {
                *p++ = ',';
            }

            p = ngx_http_slora_model_obj(p, &id, &smcf->model_id,
                                         rec[0] == 'd', max_len);
        }

        rec = nul + 1;
    }

    if (one && n == 0) {
        return NULL;
    }

    p = one ? ngx_http_slora_lit(p, "\n") : ngx_http_slora_lit(p, "]}\n");
    b->last = p;
    *found = 1;

    return b;
}
