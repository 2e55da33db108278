/*
 * ngx_http_slora_handler.c: the slora_api content handler: routes the
 * OpenAI paths, reads the request (JSON body or the GET stream's query)
 * and has engine/slora_openai.c check it, has the prompt made
 * (ngx_http_slora_prompt.c: the chat template, the tokens, truncation),
 * and hands the token ids to a request slot; ngx_http_slora_stream.c
 * takes it from there. The token endpoints
 * (vLLM's tokenize and detokenize, the Responses API's input token
 * count) are answered here, by the worker's tokenizer alone.
 *
 * The one idea: every check that needs no GPU runs here, in the worker,
 * before a slot is taken: the request's shape (slora_openai_parse), an
 * unknown adapter, and a prompt that cannot fit the context are refused
 * with OpenAI's error shape without costing the engine anything. With the
 * catalog in Redis the worker cannot know the adapters or the tenant
 * (it never talks to Redis): it passes the names in the slot and the
 * engine's answer, possibly a refusal, comes back through the slot.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"
#include <sys/random.h>
#include "slora_json.h"
#include "slora_openai.h"
#include "ngx_http_slora_prompt.h"


/* a request's stop ids, schema, logit_bias and allowed_token_ids fit
 * its slot */
_Static_assert(NGX_HTTP_SLORA_MODEL_STOP_IDS + SLORA_OPENAI_MAX_STOP_IDS
               <= SLORA_QUEUE_STOP_IDS,
               "stop ids: the slot holds fewer than the model's and a"
               " request's");
_Static_assert(SLORA_JSON_SCHEMA_MAX + SLORA_JSON_TRIGGER_MAX
               <= SLORA_QUEUE_SCHEMA_LEN,
               "a slot's schema region holds the longest schema the parser"
               " takes and a trigger");
_Static_assert(SLORA_OPENAI_MAX_BIAS <= SLORA_QUEUE_BIAS_MAX,
               "logit_bias: the slot holds fewer entries than a request");
_Static_assert(SLORA_OPENAI_MAX_ALLOWED <= SLORA_QUEUE_ALLOWED_MAX,
               "allowed_token_ids: the slot holds fewer than a request");


typedef enum {
    NGX_HTTP_SLORA_ROUTE_CHAT = 0,
    NGX_HTTP_SLORA_ROUTE_COMPLETIONS,
    NGX_HTTP_SLORA_ROUTE_MODELS,
    NGX_HTTP_SLORA_ROUTE_STREAM,
    NGX_HTTP_SLORA_ROUTE_TOKENIZE,
    NGX_HTTP_SLORA_ROUTE_DETOKENIZE,
    NGX_HTTP_SLORA_ROUTE_RESPONSES,
    NGX_HTTP_SLORA_ROUTE_INPUT_TOKENS,
    NGX_HTTP_SLORA_ROUTE_NONE
} ngx_http_slora_route_e;


/* A body's request, as ngx_http_slora_make makes it again. */
typedef struct {
    ngx_http_slora_route_e     route;
    slora_openai_req_t        *req;         /* NULL: a body to parse
                                               (ngx_http_slora_parse.c) */
    ngx_http_slora_encoder_t  *enc;
    ngx_str_t                  body;
    slora_openai_limits_t      lim;
} ngx_http_slora_making_t;


static ngx_http_slora_route_e ngx_http_slora_route(ngx_http_request_t *r);
static void ngx_http_slora_body_handler(ngx_http_request_t *r);
static void ngx_http_slora_make(ngx_http_slora_encoder_t *enc);
static ngx_int_t ngx_http_slora_get_stream(ngx_http_request_t *r);
static void ngx_http_slora_req_cleanup(void *data);
static ngx_int_t ngx_http_slora_start(ngx_http_request_t *r,
    slora_openai_req_t *req, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_err_t *e);
static void ngx_http_slora_chat_limits(ngx_http_request_t *r,
    slora_openai_limits_t *lim);
static ngx_int_t ngx_http_slora_tokenize(ngx_http_request_t *r,
    slora_openai_req_t *req, ngx_http_slora_encoder_t *enc);
static ngx_int_t ngx_http_slora_detokenize(ngx_http_request_t *r,
    slora_openai_req_t *req, ngx_str_t *body);
static ngx_int_t ngx_http_slora_input_tokens(ngx_http_request_t *r,
    slora_openai_req_t *req, ngx_http_slora_encoder_t *enc);
static ngx_int_t ngx_http_slora_send_req_err(ngx_http_request_t *r,
    slora_openai_req_t *req, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_send_err(ngx_http_request_t *r,
    ngx_http_slora_err_t *e);
static ngx_uint_t ngx_http_slora_query_valid(ngx_str_t *args);


ngx_int_t
ngx_http_slora_api_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_slora_route_e  route;

    route = ngx_http_slora_route(r);

    /* a GET's query is read (the stream's prompt, a list's cursor): an
     * escape that is none would be read as something else, not refused */
    if ((r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        && !ngx_http_slora_query_valid(&r->args))
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "invalid_value", NULL,
                                         "The query string is not valid"
                                         " percent-encoding: a \"%%\" must be"
                                         " followed by two hex digits");
    }

    switch (route) {

    case NGX_HTTP_SLORA_ROUTE_NONE:
        if (ngx_http_slora_conv_route(r) == NGX_OK) {
            /* the Conversations API (ngx_http_slora_conv.c) */
            return ngx_http_slora_conv_handler(r);
        }

        ngx_http_discard_request_body(r);

        if (ngx_strlcasestrn(r->uri.data, r->uri.data + r->uri.len,
                             (u_char *) "/responses/",
                             sizeof("/responses/") - 2)
            != NULL)
        {
            /* retrieve or delete a response (ngx_http_slora_store.c) */
            return ngx_http_slora_store_handler(r);
        }

        return ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                         "invalid_request_error",
                                         "unknown_url", NULL,
                                         "Unknown request URL: %V %V",
                                         &r->method_name, &r->uri);

    case NGX_HTTP_SLORA_ROUTE_MODELS:
    case NGX_HTTP_SLORA_ROUTE_STREAM:
        if (!(r->method
              & (route == NGX_HTTP_SLORA_ROUTE_MODELS
                 ? (NGX_HTTP_GET|NGX_HTTP_HEAD) : NGX_HTTP_GET)))
        {
            break;
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return route == NGX_HTTP_SLORA_ROUTE_MODELS
               ? ngx_http_slora_models(r) : ngx_http_slora_get_stream(r);

    default:
        if (r->method != NGX_HTTP_POST) {
            break;
        }

        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_slora_body_handler);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    ngx_http_discard_request_body(r);

    return ngx_http_slora_not_allowed(r,
                                      route == NGX_HTTP_SLORA_ROUTE_MODELS
                                      ? "GET, HEAD"
                                      : route == NGX_HTTP_SLORA_ROUTE_STREAM
                                      ? "GET" : "POST");
}


/* Routes by the end of the URI, so regex locations work as well;
 * .../models/{id} is the models route too. */
static ngx_http_slora_route_e
ngx_http_slora_route(ngx_http_request_t *r)
{
    size_t      i;
    ngx_str_t  *u, id;

    static struct {
        ngx_str_t               suffix;
        ngx_http_slora_route_e  route;
    } routes[] = {
        { ngx_string("/chat/completions"), NGX_HTTP_SLORA_ROUTE_CHAT },
        { ngx_string("/completions"), NGX_HTTP_SLORA_ROUTE_COMPLETIONS },
        { ngx_string("/models"), NGX_HTTP_SLORA_ROUTE_MODELS },
        { ngx_string("/stream"), NGX_HTTP_SLORA_ROUTE_STREAM },
        { ngx_string("/tokenize"), NGX_HTTP_SLORA_ROUTE_TOKENIZE },
        { ngx_string("/detokenize"), NGX_HTTP_SLORA_ROUTE_DETOKENIZE },
        { ngx_string("/responses"), NGX_HTTP_SLORA_ROUTE_RESPONSES },
        { ngx_string("/responses/input_tokens"),
          NGX_HTTP_SLORA_ROUTE_INPUT_TOKENS }
    };

    u = &r->uri;

    if (ngx_http_slora_model_path(r, &id) == NGX_OK) {
        return NGX_HTTP_SLORA_ROUTE_MODELS;
    }

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (u->len >= routes[i].suffix.len
            && ngx_strncmp(u->data + u->len - routes[i].suffix.len,
                           routes[i].suffix.data, routes[i].suffix.len) == 0)
        {
            return routes[i].route;
        }
    }

    return NGX_HTTP_SLORA_ROUTE_NONE;
}


static void
ngx_http_slora_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    body;
    ngx_uint_t                   tokens;
    slora_openai_req_t          *req;
    slora_openai_err_t           oe;
    slora_openai_limits_t        lim;
    ngx_http_slora_route_e       route;
    ngx_http_slora_making_t     *mk;
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    route = ngx_http_slora_route(r);

    /* under slora_tenant, no model means the tenant's default */
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);
    lim = slora_openai_default_limits;
    lim.model_optional = slcf->tenant != NULL;
    lim.max_top_logprobs = (int32_t) smcf->top_logprobs;
    ngx_http_slora_chat_limits(r, &lim);

    /* a request's body is parsed as the request is made: one with a long
     * stored history or a constraint to compile is parsed on the thread
     * pool (ngx_http_slora_parse.c) */
    tokens = route == NGX_HTTP_SLORA_ROUTE_TOKENIZE
             || route == NGX_HTTP_SLORA_ROUTE_DETOKENIZE;
    req = tokens ? ngx_http_slora_req_create(r) : NULL;

    if ((req == NULL && tokens)
        || ngx_http_slora_read_body(r, &body) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    switch (route) {

    case NGX_HTTP_SLORA_ROUTE_DETOKENIZE:
        ngx_http_finalize_request(r,
                                  ngx_http_slora_detokenize(r, req, &body));
        return;

    case NGX_HTTP_SLORA_ROUTE_TOKENIZE:
        lim = slora_openai_default_limits;
        ngx_http_slora_chat_limits(r, &lim);
        rc = slora_openai_parse_tokenize((const char *) body.data, body.len,
                                         &lim, req, &oe);
        break;

    case NGX_HTTP_SLORA_ROUTE_INPUT_TOKENS:
        lim.model_optional = 1;
        /* fall through */

    default:
        rc = SLORA_OK;
    }

    if (rc != SLORA_OK) {
        ngx_http_finalize_request(r, ngx_http_slora_send_parse_err(r, &oe));
        return;
    }

    mk = ngx_palloc(r->pool, sizeof(ngx_http_slora_making_t));
    if (mk == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    mk->route = route;
    mk->req = req;
    mk->body = body;
    mk->lim = lim;

    mk->enc = ngx_http_slora_encoder_create(r, ngx_http_slora_make, mk);
    if (mk->enc == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_slora_make(mk->enc);
}


/* A body's request made: a Responses body parsed, its prompt's tokens,
 * then its answer or its slot. Again from the top where a long text's
 * encoding or a long history's parse went to the thread pool
 * (ngx_http_slora_encode.c), when it is done. */
static void
ngx_http_slora_make(ngx_http_slora_encoder_t *enc)
{
    ngx_int_t                 rc;
    slora_openai_err_t        oe;
    ngx_http_request_t       *r;
    ngx_http_slora_err_t      e;
    ngx_http_slora_making_t  *mk;

    r = enc->request;
    mk = enc->data;

    if (mk->req == NULL) {
        rc = ngx_http_slora_parse(enc, &mk->body,
                                  mk->route == NGX_HTTP_SLORA_ROUTE_CHAT
                                  ? SLORA_OPENAI_CHAT
                                  : SLORA_OPENAI_COMPLETION,
                                  mk->route == NGX_HTTP_SLORA_ROUTE_RESPONSES
                                  || mk->route
                                     == NGX_HTTP_SLORA_ROUTE_INPUT_TOKENS,
                                  &mk->lim, &mk->req, &oe);

        if (rc == NGX_AGAIN) {
            /* the body's reference stays until the parse is done */
            return;
        }

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, rc == NGX_DECLINED
                                    ? ngx_http_slora_send_parse_err(r, &oe)
                                    : NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    switch (mk->route) {

    case NGX_HTTP_SLORA_ROUTE_TOKENIZE:
        rc = ngx_http_slora_tokenize(r, mk->req, enc);
        break;

    case NGX_HTTP_SLORA_ROUTE_INPUT_TOKENS:
        rc = ngx_http_slora_input_tokens(r, mk->req, enc);
        break;

    default:
        ngx_memzero(&e, sizeof(e));

        rc = ngx_http_slora_start(r, mk->req, enc, &e);

        if (rc == NGX_DONE) {
            /* the stream finalizes the request when it ends */
            return;
        }

        if (rc != NGX_AGAIN) {
            rc = ngx_http_slora_send_req_err(r, mk->req, &e);
        }
    }

    if (rc == NGX_AGAIN) {
        /* the body's reference stays until the encoding is done */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_slora_get_stream(ngx_http_request_t *r)
{
    ngx_int_t              rc;
    ngx_uint_t             plain;
    slora_openai_str_t     format;
    slora_openai_req_t    *req;
    slora_openai_err_t     oe;
    slora_openai_query_t   args;
    ngx_http_slora_err_t   e;
    ngx_http_slora_ctx_t  *ctx;
    slora_openai_limits_t  lim;

    ngx_memzero(&args, sizeof(args));

    /* format=text: the answer's bare text, for curl and the like */
    rc = ngx_http_slora_query_arg(r, "format", &format);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    plain = rc == NGX_OK && format.len == 4
            && ngx_strncmp(format.data, "text", 4) == 0;

    if (rc == NGX_OK && !plain
        && !(format.len == 3 && ngx_strncmp(format.data, "sse", 3) == 0))
    {
        return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "invalid_value", "format",
                                         "format must be sse (events, the"
                                         " default) or text (the bare"
                                         " text), not \"%*s\"",
                                         format.len, format.data);
    }

    if (ngx_http_slora_query_arg(r, "model", &args.model) == NGX_ERROR
        || ngx_http_slora_query_arg(r, "prompt", &args.prompt) == NGX_ERROR
        || ngx_http_slora_query_arg(r, "chat", &args.chat) == NGX_ERROR
        || ngx_http_slora_query_arg(r, "max_tokens", &args.max_tokens)
           == NGX_ERROR
        || ngx_http_slora_query_arg(r, "temperature", &args.temperature)
           == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req = ngx_http_slora_req_create(r);
    if (req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lim = slora_openai_default_limits;
    ngx_http_slora_chat_limits(r, &lim);

    if (slora_openai_parse_query(&args, lim.system, req, &oe) != SLORA_OK) {
        return ngx_http_slora_send_parse_err(r, &oe);
    }

    ngx_memzero(&e, sizeof(e));

    rc = ngx_http_slora_start(r, req, NULL, &e);

    if (rc == NGX_DONE) {
        /* the header goes out with the first token, not before */
        ctx = ngx_http_get_module_ctx(r, ngx_http_slora_module);
        ctx->plain = plain;
        r->main->count++;
        return NGX_DONE;
    }

    if (rc != NGX_OK) {
        return ngx_http_slora_send_err(r, &e);
    }

    return NGX_OK;
}


/* A parsed request lives in its own arena, freed with the request's
 * pool. */
slora_openai_req_t *
ngx_http_slora_req_create(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(slora_openai_req_t));
    if (cln == NULL) {
        return NULL;
    }

    ngx_memzero(cln->data, sizeof(slora_openai_req_t));
    cln->handler = ngx_http_slora_req_cleanup;

    return cln->data;
}


static void
ngx_http_slora_req_cleanup(void *data)
{
    slora_openai_req_free(data);
}


/* 1 where every "%" of the query string begins an escape: two hex
 * digits (nginx's own decoding keeps or drops a bad one silently). */
static ngx_uint_t
ngx_http_slora_query_valid(ngx_str_t *args)
{
    u_char  *p, *last;

    last = args->data + args->len;

    for (p = args->data; p < last; p++) {
        if (*p == '%'
            && (last - p < 3 || !isxdigit(p[1]) || !isxdigit(p[2])))
        {
            return 0;
        }
    }

    return 1;
}


/* An argument of the query string, percent-decoded, '+' as a space; the
 * request line itself is left as it came (the access log shows it). */
ngx_int_t
ngx_http_slora_query_arg(ngx_http_request_t *r, const char *name,
    slora_openai_str_t *out)
{
    u_char     *src, *dst, *p, *start;
    ngx_str_t   raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, raw.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst, raw.data, raw.len);

    for (p = dst; p < dst + raw.len; p++) {
        if (*p == '+') {
            *p = ' ';
        }
    }

    src = dst;
    start = dst;
    ngx_unescape_uri(&dst, &src, raw.len, 0);
    *dst = '\0';

    out->data = (const char *) start;
    out->len = dst - start;

    return NGX_OK;
}


ngx_int_t
ngx_http_slora_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = (u_char *) "";

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;

        } else if (b->last != b->pos) {     /* an empty body's buffer
                                             * may have no memory */
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';
    body->len = p - body->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_start(ngx_http_request_t *r, slora_openai_req_t *req,
    ngx_http_slora_encoder_t *enc, ngx_http_slora_err_t *e)
{
    u_char                      *p;
    int32_t                      n, n_all, n_ctx, limit, n_pred, *pred,
                                 n_bad, bad[SLORA_QUEUE_BAD_MAX];
    ngx_int_t                    rc;
    ngx_str_t                    text, adapter, model;
    slora_err_t                  err;
    ngx_uint_t                   i, k, names, n_prompts;
    slora_slot_t                *s;
    slora_queue_t               *q;
    const char                  *down, *max_name;
    ngx_http_slora_ctx_t        *ctx;
    ngx_http_slora_kind_e        kind;
    ngx_http_slora_choice_t     *ch;
    ngx_http_slora_main_conf_t  *smcf;
    ngx_http_slora_prompt_t     *pi, prompt[SLORA_OPENAI_MAX_N];
    const slora_openai_prompt_t *pr;

    static uint32_t              hint;

    kind = req->kind == SLORA_OPENAI_CHAT ? NGX_HTTP_SLORA_CHAT
                                          : NGX_HTTP_SLORA_COMPLETION;
    model.data = (u_char *) req->model.data;
    model.len = req->model.len;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    down = ngx_http_slora_engine_down(q);
    if (down != NULL) {
        return ngx_http_slora_fail(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "server_error", "engine_not_ready", NULL,
                                   "The engine is not ready: %s", down);
    }

    /*
     * the model: "base", the model's id, "default" (the tenant's default
     * adapter), or an adapter: one the engine published (the directory,
     * where all names fit the zone), or any valid name, which the engine
     * resolves (Redis, or a directory of more names than the zone holds)
     */

    ngx_str_null(&adapter);
    ngx_str_null(&text);

    if (model.len == 7 && ngx_strncmp(model.data, "default", 7) == 0) {
        if (smcf->redis_url.len) {
            adapter = model;
        }

    } else if (!((model.len == 4 && ngx_strncmp(model.data, "base", 4) == 0)
                 || (model.len == smcf->model_id.len
                     && ngx_strncmp(model.data, smcf->model_id.data,
                                    model.len) == 0)))
    {
        /* a name the zone does not hold is the engine's to resolve where
         * the catalog is Redis or the names did not all fit */
        names = smcf->redis_url.len == 0 && slora_queue_names_all(q);

        if (!names && !ngx_http_slora_valid_name(&model)) {
            return ngx_http_slora_fail(e, NGX_HTTP_NOT_FOUND,
                                       "invalid_request_error",
                                       "model_not_found", "model",
                                       "The model `%V` does not exist: not"
                                       " a valid adapter name (empty, \"/\","
                                       " \"..\", a leading \".\", a control"
                                       " character, not UTF-8, or %d bytes"
                                       " or more)",
                                       &model, SLORA_QUEUE_ADAPTER_LEN);
        }

        if (model.len >= SLORA_QUEUE_ADAPTER_LEN
            || ngx_strlchr(model.data, model.data + model.len, '\0')
            || (names
                && slora_queue_find_name(q, (const char *) model.data,
                                         model.len) < 0))
        {
            return ngx_http_slora_fail(e, NGX_HTTP_NOT_FOUND,
                                       "invalid_request_error",
                                       "model_not_found", "model",
                                       "The model `%V` does not exist",
                                       &model);
        }

        adapter = model;
    }

    /* each prompt's token ids (a chat has one, a completion up to
     * SLORA_OPENAI_MAX_N) and its max_tokens: capped by the directive,
     * and by the context */

    n_ctx = ngx_http_slora_n_ctx(q);

    limit = (int32_t) ngx_min((uint32_t) smcf->max_tokens,
                              q->geom.output_cap);

    max_name = req->responses ? "max_output_tokens" : req->max_name;

    if (req->max_tokens > limit) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_value",
                                   max_name,
                                   "%s is too large: %i. This server allows"
                                   " at most %D completion tokens", max_name,
                                   (ngx_int_t) req->max_tokens, limit);
    }

    n_prompts = kind == NGX_HTTP_SLORA_CHAT ? 1 : req->n_prompts;
    n_all = 0;

    for (k = 0; k < n_prompts; k++) {
        if (kind == NGX_HTTP_SLORA_CHAT) {
            rc = ngx_http_slora_chat_ids(r, smcf, req, n_ctx, &text, enc,
                                         &prompt[k], e);

        } else if (req->suffix.data != NULL) {
            rc = ngx_http_slora_fim_ids(r, smcf, req, &req->prompts[k], n_ctx,
                                        enc, &prompt[k], e);

        } else {
            pr = &req->prompts[k];
            text.data = (u_char *) pr->text.data;
            text.len = pr->text.len;

            rc = ngx_http_slora_prompt_ids(r, smcf, kind, &text, NULL,
                                           !req->no_special, pr, n_ctx,
                                           NGX_HTTP_SLORA_COUNT_TO(n_ctx),
                                           ngx_http_slora_keep(req, n_ctx),
                                           enc, &prompt[k], e);
        }

        if (rc != NGX_OK) {
            return rc == NGX_AGAIN ? NGX_AGAIN : NGX_ERROR;
        }

        n = prompt[k].n;
        n_all += n;

        if (req->max_tokens >= 0) {
            prompt[k].max_tokens = (int32_t) req->max_tokens;

            if (n + prompt[k].max_tokens > n_ctx) {
                return ngx_http_slora_fail(e,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           "invalid_request_error",
                                           "context_length_exceeded",
                                           max_name,
                                           "This model's maximum context"
                                           " length is %D tokens. However,"
                                           " you requested %D tokens (%D in"
                                           " the prompt, %D for the"
                                           " completion)", n_ctx,
                                           n + prompt[k].max_tokens, n,
                                           prompt[k].max_tokens);
            }

        } else {
            prompt[k].max_tokens = ngx_min(NGX_HTTP_SLORA_DEFAULT_MAX_TOKENS,
                                           limit);
            prompt[k].max_tokens = ngx_min(prompt[k].max_tokens, n_ctx - n);
        }

        if (req->min_tokens > prompt[k].max_tokens) {
            return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request_error",
                                       "invalid_value", "min_tokens",
                                       "min_tokens (%i) must be at most"
                                       " %s (%D)",
                                       (ngx_int_t) req->min_tokens, max_name,
                                       prompt[k].max_tokens);
        }
    }

    /* a prediction's token ids, which follow each prompt's in its slot
     * as far as they fit: a prediction only saves steps */

    n_pred = 0;
    pred = NULL;

    if (req->prediction.data != NULL) {
        pred = ngx_palloc(r->pool, n_ctx * sizeof(int32_t));
        if (pred == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_http_slora_encode(enc, smcf->tokenizer,
                                   (const u_char *) req->prediction.data,
                                   req->prediction.len, 0, NULL, pred, n_ctx,
                                   n_ctx, &n_pred, &err);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc == SLORA_ERROR) {
            return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request_error",
                                       "invalid_value", "prediction",
                                       "The prediction cannot be tokenized:"
                                       " %s", err.msg);
        }

        n_pred = ngx_min(n_pred, n_ctx);
    }

    /* logit_bias, stop_token_ids and allowed_token_ids: tokens the
     * tokenizer has, the last not all held back; bad_words' tokens */

    if (ngx_http_slora_vocab_ids(smcf, req->stop_ids, req->n_stop_ids,
                                 "stop_token_ids", e)
        != NGX_OK
        || ngx_http_slora_vocab_ids(smcf, req->logit_bias_ids,
                                    req->n_logit_bias, "logit_bias", e)
           != NGX_OK
        || ngx_http_slora_allowed_ids(smcf, req, e) != NGX_OK
        || ngx_http_slora_bad_ids(r, smcf, req, bad, SLORA_QUEUE_BAD_MAX,
                                  &n_bad, e)
           != NGX_OK
        || ngx_http_slora_prompt_lp_bound(req, prompt, n_prompts, e)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the request context */

    ctx = ngx_http_slora_ctx_create(r, n_prompts * req->n);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_slora_module);

    ctx->request = r;
    ctx->kind = kind;
    ctx->model = model;
    ctx->adapter = adapter;
    ctx->n_prompt = n_all;
    ctx->n_each = req->n;
    ctx->n_best = req->n_best;
    ctx->stream = req->stream;
    ctx->include_usage = req->include_usage;
    ctx->continuous_usage = req->continuous_usage;
    ctx->prediction = req->prediction.data != NULL;
    ctx->logprobs = req->logprobs;
    ctx->top_logprobs = req->top_logprobs;
    ctx->tokens_as_ids = req->tokens_as_ids;
    ctx->return_ids = req->return_ids;
    ctx->echo = req->echo;
    ctx->chat_echo.data = (u_char *) req->chat_echo.data;
    ctx->chat_echo.len = req->chat_echo.len;
    ctx->prompt_lp = req->prompt_logprobs;
    ctx->prompt_top = req->prompt_top;
    ctx->show_special = req->show_special;
    ctx->tools = req->tools;
    ctx->tool_one = req->tool_one;
    ctx->tool_format = req->tool_format;
    ngx_http_slora_tool_marks(ctx);
    ctx->created = ngx_time();
    ctx->t_start_ns = slora_now_ns();
    ctx->n_stop = req->n_stop;
    ctx->stop_in_output = req->stop_in_output;

    for (i = 0; i < req->n_stop; i++) {
        ctx->stop[i].data = (u_char *) req->stop[i].data;
        ctx->stop[i].len = req->stop[i].len;
        ctx->stop_max = ngx_max(ctx->stop_max, req->stop[i].len);
    }

    if (req->responses) {
        ctx->resp = ngx_pcalloc(r->pool, sizeof(ngx_http_slora_resp_t));
        if (ctx->resp == NULL) {
            return NGX_ERROR;
        }

        ctx->resp_echo.data = (u_char *) req->resp_echo.data;
        ctx->resp_echo.len = req->resp_echo.len;
        ctx->resp_conv.data = (u_char *) req->resp_conv.data;
        ctx->resp_conv.len = req->resp_conv.len;
        ctx->resp_prev.data = (u_char *) req->resp_prev.data;
        ctx->resp_prev.len = req->resp_prev.len;
        ctx->resp_conversation.data = (u_char *) req->resp_conversation.data;
        ctx->resp_conversation.len = req->resp_conversation.len;
        ctx->resp_store = req->resp_store && smcf->store != NULL;
        ctx->resp_background = req->resp_background && ctx->resp_store;
    }

    ngx_http_slora_think_init(r, ctx,
                              kind == NGX_HTTP_SLORA_CHAT ? &text : NULL,
                              ngx_http_slora_chat_template(r));

    p = ngx_cpymem(ctx->id, req->responses ? "resp_"
                            : kind == NGX_HTTP_SLORA_CHAT ? "chatcmpl-"
                            : "cmpl-",
                   req->responses ? 5 : kind == NGX_HTTP_SLORA_CHAT ? 9 : 5);
    p = ngx_http_slora_random_id(p);
    ctx->id_len = p - ctx->id;

    if (ngx_http_slora_tenant(r, &ctx->tenant) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!ngx_http_slora_tenant_valid(&ctx->tenant)) {
        return ngx_http_slora_fail(e, NGX_HTTP_FORBIDDEN, "permission_error",
                                   "unknown_tenant", NULL,
                                   "unknown tenant (the name is not valid)");
    }

    /* once a request: no return NGX_AGAIN (a tokenization on the
     * thread pool, which calls this again) comes after it */
    if (ngx_http_slora_cache_salt(r, req) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->tenant.len) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "slora: tenant \"%V\" model \"%V\"", &ctx->tenant,
                      &ctx->model);

        /* the base model by name: under a Redis tenant "" is its
         * default adapter */
        if (adapter.len == 0 && smcf->redis_url.len) {
            ngx_str_set(&adapter, "base");
        }
    }

    /* a slot a choice, all or none; prompt k's choices are k * n to
     * k * n + n - 1 */

    for (i = 0; i < ctx->n_choices; i++) {
        ch = &ctx->choice[i];
        pi = &prompt[i / req->n];
        ngx_http_slora_tool_start(ctx, ch);

        if (slora_queue_claim(q, hint++ + (uint32_t) ngx_pid, &ch->slot)
            != SLORA_OK)
        {
            ngx_http_slora_stream_release(ctx);

            return ngx_http_slora_fail(e, NGX_HTTP_TOO_MANY_REQUESTS,
                                       "rate_limit_error",
                                       "rate_limit_exceeded", NULL,
                                       "All %uD request slots are busy;"
                                       " retry shortly", q->geom.n_slots);
        }

        ch->have_slot = 1;
        ch->prompt_ids = pi->ids;
        ch->n_prompt_ids = pi->n;
        s = slora_queue_slot(q, ch->slot);
        s->rate_free = i > 0;

        /* an empty string may have no data: memcpy's source must not be
         * NULL even for 0 bytes */
        if (adapter.len) {
            ngx_memcpy(s->adapter, adapter.data, adapter.len);
        }
        s->adapter[adapter.len] = '\0';

        if (ctx->tenant.len) {
            ngx_memcpy(s->tenant, ctx->tenant.data, ctx->tenant.len);
        }
        s->tenant[ctx->tenant.len] = '\0';
        ngx_http_slora_slot_sampling(ctx, req, q, ch, i, pi, bad, n_bad);
        s->n_prompt = pi->n;
        s->n_stop_ids = req->ignore_eos ? 0 : smcf->n_stop_ids;
        ngx_memcpy(s->stop_ids, smcf->stop_ids,
                   s->n_stop_ids * sizeof(int32_t));
        ngx_memcpy(s->stop_ids + s->n_stop_ids, req->stop_ids,
                   req->n_stop_ids * sizeof(int32_t));
        s->n_stop_ids += req->n_stop_ids;
        ngx_memcpy(slora_queue_prompt(q, ch->slot), pi->ids,
                   pi->n * sizeof(int32_t));
        s->n_prediction = ngx_min(n_pred,
                                  (int32_t) q->geom.prompt_cap - pi->n);

        if (s->n_prediction > 0) {
            ngx_memcpy(slora_queue_prompt(q, ch->slot) + pi->n, pred,
                       s->n_prediction * sizeof(int32_t));
        }
    }

    /* background: stored before the engine has it, answered after */
    if (ctx->resp_background) {
        rc = ngx_http_slora_resp_queue(r, ctx);

        if (rc != NGX_OK) {
            ngx_http_slora_stream_release(ctx);

            return rc == NGX_ERROR
                   ? NGX_ERROR
                   : ngx_http_slora_fail(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "server_error", "store_full", NULL,
                                         "The response store has no room"
                                         " for a background response"
                                         " (slora_responses_store)");
        }
    }

    if (ngx_http_slora_stream_start(r, ctx) != NGX_DONE) {
        if (ctx->resp_background) {
            (void) ngx_http_slora_store_state(r, ctx->id, ctx->id_len,
                                              &ctx->tenant, 1);
        }

        return ngx_http_slora_fail(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "server_error", "engine_not_ready", NULL,
                                   "The request could not be queued");
    }

    if (ctx->resp_background) {
        if (ctx->stream) {
            /* response.created at once, then as in the foreground; a
             * client that goes is noticed by a failed write, which does
             * not end it */
            r->read_event_handler = ngx_http_block_reading;

            if (ngx_http_slora_stream_accept(r, ctx) != NGX_OK) {
                /* its cleanup stores it failed */
                ngx_http_slora_stream_release(ctx);
                ngx_http_finalize_request(r, NGX_ERROR);
            }

        } else {
            ngx_http_slora_resp_detach(r, ctx);
        }
    }

    return NGX_DONE;
}


/* The context a prompt and its answer share: the engine's, once it has
 * published it, else the slots' prompt buffers. */
int32_t
ngx_http_slora_n_ctx(slora_queue_t *q)
{
    int32_t  n_ctx;

    n_ctx = atomic_load(&q->n_ctx);

    if (n_ctx <= 0 || (uint32_t) n_ctx > q->geom.prompt_cap) {
        n_ctx = (int32_t) q->geom.prompt_cap;
    }

    return n_ctx;
}


/*
 * The random part of an id (24 hex digits) at p: of the kernel's
 * generator, not of random(), whose sequence nginx seeds with its pid
 * and the time. A stored response's or a conversation's id is all a
 * client needs to read or delete it (where slora_tenant does not part
 * the store), so it must not be guessed from ids seen before.
 */
u_char *
ngx_http_slora_random_id(u_char *p)
{
    uint32_t  v[3];

    if (getrandom(v, sizeof(v), GRND_NONBLOCK) != (ssize_t) sizeof(v)) {
        /* no kernel generator yet (early boot): random()'s */
        v[0] = (uint32_t) ngx_random();
        v[1] = (uint32_t) ngx_random();
        v[2] = (uint32_t) ngx_random();
    }

    return ngx_sprintf(p, "%08xD%08xD%08xD", v[0], v[1], v[2]);
}


/*
 * POST tokenize (vLLM's): a chat's messages, rendered as a chat request
 * would be, or one prompt string, as the server tokenizes them:
 * {"count", "max_model_len", "tokens"}, and with return_token_strs each
 * token's vocabulary entry in "token_strs". Every adapter shares the
 * base model's tokenizer, so model is optional and not looked up.
 */
static ngx_int_t
ngx_http_slora_tokenize(ngx_http_request_t *r, slora_openai_req_t *req,
    ngx_http_slora_encoder_t *enc)
{
    u_char                      *p;
    size_t                       size, len;
    int32_t                      n_ctx, i;
    const char                  *s;
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_str_t                    text;
    slora_queue_t               *q;
    ngx_http_slora_err_t         e;
    ngx_http_slora_kind_e        kind;
    ngx_http_slora_prompt_t      prompt;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);
    kind = req->kind == SLORA_OPENAI_CHAT ? NGX_HTTP_SLORA_CHAT
                                          : NGX_HTTP_SLORA_COMPLETION;

    n_ctx = ngx_http_slora_n_ctx(q);

    ngx_memzero(&e, sizeof(e));
    text.data = (u_char *) req->prompts[0].text.data;
    text.len = req->prompts[0].text.len;

    /* as a chat or completion would make the prompt, suffix included */
    rc = kind == NGX_HTTP_SLORA_CHAT
         ? ngx_http_slora_chat_ids(r, smcf, req, n_ctx, &text, enc, &prompt,
                                   &e)
         : req->suffix.data != NULL
         ? ngx_http_slora_fim_ids(r, smcf, req, &req->prompts[0], n_ctx, enc,
                                  &prompt, &e)
         : ngx_http_slora_prompt_ids(r, smcf, kind, &text, NULL,
                                     !req->no_special, NULL, n_ctx,
                                     NGX_HTTP_SLORA_COUNT_TO(n_ctx),
                                     ngx_http_slora_keep(req, n_ctx), enc,
                                     &prompt, &e);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc != NGX_OK) {
        return e.status ? ngx_http_slora_send_err(r, &e)
                        : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the object's keys and counts, each id, and each entry escaped */
    size = 96 + (size_t) prompt.n * 12;

    for (i = 0; req->token_strs && i < prompt.n; i++) {
        (void) slora_tokenizer_token_text(smcf->tokenizer, prompt.ids[i],
                                          &len);
        size += 6 * len + 3;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"count\":%D,\"max_model_len\":%D,"
                    "\"tokens\":[", prompt.n, n_ctx);

    for (i = 0; i < prompt.n; i++) {
        p = ngx_sprintf(p, i ? ",%D" : "%D", prompt.ids[i]);
    }

    *p++ = ']';

    if (req->token_strs) {
        p = ngx_cpymem(p, ",\"token_strs\":[", 15);

        for (i = 0; i < prompt.n; i++) {
            s = slora_tokenizer_token_text(smcf->tokenizer, prompt.ids[i],
                                           &len);
            p = ngx_cpymem(p, i ? ",\"" : "\"", i ? 2 : 1);
            p += ngx_http_slora_json_escape(p, (const u_char *) s,
                                            s != NULL ? len : 0);
            *p++ = '"';
        }

        *p++ = ']';
    }

    b->last = ngx_cpymem(p, "}\n", 2);

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}


/*
 * POST detokenize (vLLM's): "tokens", ids of the vocabulary, to their
 * text, control tokens as their text, a byte sequence that is not UTF-8
 * as U+FFFD: {"prompt"}.
 */
static ngx_int_t
ngx_http_slora_detokenize(ngx_http_request_t *r, slora_openai_req_t *req,
    ngx_str_t *body)
{
    u_char                      *text, *p;
    size_t                       len, cap, n;
    uint32_t                     i;
    ngx_buf_t                   *b;
    slora_detok_t                d;
    slora_openai_err_t           oe;
    ngx_http_slora_err_t         e;
    slora_openai_prompt_t       *pr;
    ngx_http_slora_main_conf_t  *smcf;

    if (slora_openai_parse_detokenize((const char *) body->data, body->len,
                                      req, &oe)
        != SLORA_OK)
    {
        return ngx_http_slora_send_parse_err(r, &oe);
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    pr = &req->prompts[0];
    cap = 64;

    ngx_memzero(&e, sizeof(e));

    if (ngx_http_slora_vocab_ids(smcf, pr->ids, pr->n_ids, "tokens", &e)
        != NGX_OK)
    {
        return ngx_http_slora_send_err(r, &e);
    }

    for (i = 0; i < pr->n_ids; i++) {
        len = 0;
        (void) slora_tokenizer_token_bytes(smcf->tokenizer, pr->ids[i],
                                           NULL, 0, &len);
        cap += 3 * (len + 8);
    }

    text = ngx_pnalloc(r->pool, cap);
    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    slora_detok_init_text(&d, smcf->tokenizer);
    len = 0;

    for (i = 0; i < pr->n_ids; i++) {
        if (slora_detok_push(&d, smcf->tokenizer, pr->ids[i], 0,
                             (char *) text + len, cap - len, &n)
            != SLORA_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        len += n;
    }

    if (slora_detok_flush(&d, (char *) text + len, cap - len, &n)
        != SLORA_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len += n;

    b = ngx_create_temp_buf(r->pool, 6 * len + 32);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(b->last, "{\"prompt\":\"", 11);
    p += ngx_http_slora_json_escape(p, text, len);
    b->last = ngx_cpymem(p, "\"}\n", 3);

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}


/* A name the catalog may hold (slora_catalog_valid_name), as a counted
 * string shorter than a slot's field. */
ngx_int_t
ngx_http_slora_valid_name(ngx_str_t *name)
{
    char  buf[SLORA_QUEUE_ADAPTER_LEN];

    if (name->len == 0 || name->len >= sizeof(buf)
        || ngx_strlchr(name->data, name->data + name->len, '\0'))
    {
        return 0;
    }

    ngx_memcpy(buf, name->data, name->len);
    buf[name->len] = '\0';

    return slora_catalog_valid_name(buf);
}


/* What the request parser needs of the chat template: which one (tools
 * go in its format) and, the model's own, its default system message. */
static void
ngx_http_slora_chat_limits(ngx_http_request_t *r, slora_openai_limits_t *lim)
{
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);

    lim->chat = ngx_http_slora_chat_template(r);
    lim->system = slcf->chat_template == NGX_HTTP_SLORA_CHAT_AUTO
                  && smcf->tokenizer != NULL
                  ? slora_tokenizer_chat_system(smcf->tokenizer) : NULL;
    lim->think = slcf->chat_template == NGX_HTTP_SLORA_CHAT_AUTO
                 && smcf->tokenizer != NULL
                 && slora_tokenizer_chat_think(smcf->tokenizer);
    lim->call_ids = slcf->chat_template != NGX_HTTP_SLORA_CHAT_AUTO
                    || smcf->tokenizer == NULL
                    || slora_tokenizer_chat_call_ids(smcf->tokenizer);
    lim->chat_flags = slcf->chat_template == NGX_HTTP_SLORA_CHAT_AUTO
                      && smcf->tokenizer != NULL
                      ? slora_tokenizer_chat_flags(smcf->tokenizer) : 0;
}


ngx_int_t
ngx_http_slora_fail(ngx_http_slora_err_t *e, ngx_uint_t status,
    const char *type, const char *code, const char *param,
    const char *fmt, ...)
{
    va_list  args;

    e->status = status;
    e->type = type;
    e->code = code;
    e->param = param;

    va_start(args, fmt);
    e->len = ngx_vslprintf(e->msg, e->msg + sizeof(e->msg), fmt, args)
             - e->msg;
    va_end(args);

    return NGX_ERROR;
}



/*
 * POST responses/input_tokens (the Responses API's count, the client's
 * responses.input_tokens.count): the body a Responses request would be,
 * its previous response or conversation read from the store, made into
 * the prompt that request would have (its chat template, tools,
 * instructions, truncation "auto"), answered with the prompt's length
 * alone: {"object": "response.input_tokens", "input_tokens"}. Nothing
 * reaches the engine; model is optional and not looked up, as on
 * tokenize, and a prompt past the context is the 413 its request would
 * get.
 */
static ngx_int_t
ngx_http_slora_input_tokens(ngx_http_request_t *r, slora_openai_req_t *req,
    ngx_http_slora_encoder_t *enc)
{
    int32_t                      n_ctx;
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_str_t                    text;
    ngx_http_slora_err_t         e;
    ngx_http_slora_prompt_t      prompt;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    n_ctx = ngx_http_slora_n_ctx(ngx_http_slora_queue(smcf));

    ngx_memzero(&e, sizeof(e));
    ngx_str_null(&text);

    rc = ngx_http_slora_chat_ids(r, smcf, req, n_ctx, &text, enc, &prompt,
                                 &e);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc != NGX_OK) {
        return e.status ? ngx_http_slora_send_req_err(r, req, &e)
                        : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_create_temp_buf(r->pool, 64);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"object\":\"response.input_tokens\","
                          "\"input_tokens\":%D}\n", prompt.n);

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}


/* An error of a request made from a parsed body, where a Responses
 * request's messages are named as its input. */
static ngx_int_t
ngx_http_slora_send_req_err(ngx_http_request_t *r, slora_openai_req_t *req,
    ngx_http_slora_err_t *e)
{
    if (req->responses && e->param != NULL
        && ngx_strcmp(e->param, "messages") == 0)
    {
        e->param = "input";
    }

    return ngx_http_slora_send_err(r, e);
}


static ngx_int_t
ngx_http_slora_send_err(ngx_http_request_t *r, ngx_http_slora_err_t *e)
{
    if (e->status == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_error(r, e->status, e->type, e->code,
                                     e->param, "%*s", e->len, e->msg);
}


/* The request's tenant: slora_tenant's value, or none. */
ngx_int_t
ngx_http_slora_tenant(ngx_http_request_t *r, ngx_str_t *tenant)
{
    ngx_http_slora_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);
    ngx_str_null(tenant);

    if (slcf->tenant == NULL) {
        return NGX_OK;
    }

    return ngx_http_complex_value(r, slcf->tenant, tenant);
}


/* Whether a tenant's name fits a slot's field (its NUL included) and
 * holds no NUL: the engine's requests and the store's records take no
 * other (a 403 unknown_tenant on every path). */
ngx_uint_t
ngx_http_slora_tenant_valid(ngx_str_t *tenant)
{
    return tenant->len < SLORA_QUEUE_TENANT_LEN
           && ngx_strlchr(tenant->data, tenant->data + tenant->len, '\0')
              == NULL;
}
