/*
 * ngx_http_slora_handler.c: the slora_api content handler: routes the
 * OpenAI paths, reads and validates the request (JSON body or the GET
 * stream's query), renders the chat template, tokenizes, and hands the
 * token ids to a request slot; ngx_http_slora_stream.c takes it from
 * there.
 *
 * The one idea: every check that needs no model runs here, in the worker,
 * before a slot is taken: bad JSON, wrong types, invalid UTF-8, unknown
 * roles or adapters, and a prompt that cannot fit the context are refused
 * with OpenAI's error shape without costing the engine anything.
 */

#include <math.h>
#include <cjson/cJSON.h>

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"


typedef struct {
    ngx_uint_t         status;
    const char        *type;
    const char        *code;
    const char        *param;
    u_char             msg[256];
    size_t             len;
} ngx_http_slora_err_t;


typedef struct {
    ngx_http_slora_kind_e   kind;
    ngx_str_t               model;
    ngx_str_t               prompt;        /* completion */
    slora_chat_msg_t       *msgs;          /* chat */
    ngx_uint_t              n_msgs;
    ngx_int_t               max_tokens;    /* -1: not given */
    double                  temperature;
    double                  top_p;
    ngx_int_t               top_k;
    uint64_t                seed;
    ngx_str_t               stop[NGX_HTTP_SLORA_MAX_STOPS];
    ngx_uint_t              n_stop;
    unsigned                has_seed:1;
    unsigned                stream:1;
    unsigned                include_usage:1;
} ngx_http_slora_params_t;


typedef enum {
    NGX_HTTP_SLORA_ROUTE_CHAT = 0,
    NGX_HTTP_SLORA_ROUTE_COMPLETIONS,
    NGX_HTTP_SLORA_ROUTE_MODELS,
    NGX_HTTP_SLORA_ROUTE_STREAM,
    NGX_HTTP_SLORA_ROUTE_NONE
} ngx_http_slora_route_e;


static ngx_http_slora_route_e ngx_http_slora_route(ngx_http_request_t *r);
static ngx_int_t ngx_http_slora_models(ngx_http_request_t *r);
static void ngx_http_slora_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_slora_get_stream(ngx_http_request_t *r);
static ngx_int_t ngx_http_slora_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_slora_parse_body(ngx_http_request_t *r,
    ngx_str_t *body, ngx_http_slora_params_t *pr, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_parse_messages(ngx_http_request_t *r,
    cJSON *msgs, ngx_http_slora_params_t *pr, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_parse_sampling(cJSON *root,
    ngx_http_slora_params_t *pr, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_parse_stop(ngx_pool_t *pool, cJSON *stop,
    ngx_http_slora_params_t *pr, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_json_string(ngx_pool_t *pool, cJSON *item,
    const char *param, ngx_str_t *out, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_json_int(cJSON *item, const char *param,
    ngx_int_t min, ngx_int_t max, ngx_int_t *out, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_query_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *out);
static ngx_int_t ngx_http_slora_start(ngx_http_request_t *r,
    ngx_http_slora_params_t *pr, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_render(ngx_http_request_t *r,
    ngx_http_slora_params_t *pr, ngx_str_t *text, ngx_http_slora_err_t *e);
static ngx_int_t ngx_http_slora_fail(ngx_http_slora_err_t *e,
    ngx_uint_t status, const char *type, const char *code, const char *param,
    const char *fmt, ...);
static ngx_int_t ngx_http_slora_send_err(ngx_http_request_t *r,
    ngx_http_slora_err_t *e);


ngx_int_t
ngx_http_slora_api_handler(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_http_slora_route_e  route;

    route = ngx_http_slora_route(r);

    switch (route) {

    case NGX_HTTP_SLORA_ROUTE_NONE:
        ngx_http_discard_request_body(r);
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

    if (ngx_http_slora_add_header(r, "Allow",
                                  route == NGX_HTTP_SLORA_ROUTE_MODELS
                                  ? "GET, HEAD"
                                  : route == NGX_HTTP_SLORA_ROUTE_STREAM
                                  ? "GET" : "POST")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                     "invalid_request_error",
                                     "method_not_allowed", NULL,
                                     "Method %V is not allowed for %V",
                                     &r->method_name, &r->uri);
}


/* Routes by the end of the URI, so regex locations work as well. */
static ngx_http_slora_route_e
ngx_http_slora_route(ngx_http_request_t *r)
{
    size_t      i;
    ngx_str_t  *u;

    static struct {
        ngx_str_t               suffix;
        ngx_http_slora_route_e  route;
    } routes[] = {
        { ngx_string("/chat/completions"), NGX_HTTP_SLORA_ROUTE_CHAT },
        { ngx_string("/completions"), NGX_HTTP_SLORA_ROUTE_COMPLETIONS },
        { ngx_string("/models"), NGX_HTTP_SLORA_ROUTE_MODELS },
        { ngx_string("/stream"), NGX_HTTP_SLORA_ROUTE_STREAM }
    };

    u = &r->uri;

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


static ngx_int_t
ngx_http_slora_models(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_buf_t                   *b;
    ngx_chain_t                  out;
    slora_queue_t               *q;
    const char                  *down;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    down = ngx_http_slora_engine_down(q);
    if (down != NULL) {
        return ngx_http_slora_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "server_error", "engine_not_ready",
                                         NULL, "The engine is not ready: %s",
                                         down);
    }

    b = ngx_http_slora_models_json(r, smcf, q);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static void
ngx_http_slora_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_str_t                body;
    ngx_http_slora_err_t     e;
    ngx_http_slora_params_t  pr;

    ngx_memzero(&pr, sizeof(pr));
    pr.kind = ngx_http_slora_route(r) == NGX_HTTP_SLORA_ROUTE_CHAT
              ? NGX_HTTP_SLORA_CHAT : NGX_HTTP_SLORA_COMPLETION;

    if (ngx_http_slora_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_slora_parse_body(r, &body, &pr, &e) != NGX_OK) {
        ngx_http_finalize_request(r, ngx_http_slora_send_err(r, &e));
        return;
    }

    rc = ngx_http_slora_start(r, &pr, &e);

    if (rc == NGX_DONE) {
        /* the stream finalizes the request when it ends */
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, ngx_http_slora_send_err(r, &e));
        return;
    }
}


static ngx_int_t
ngx_http_slora_get_stream(ngx_http_request_t *r)
{
    ngx_int_t                rc, chat;
    ngx_str_t                v;
    ngx_http_slora_err_t     e;
    ngx_http_slora_params_t  pr;

    static slora_chat_msg_t  proto = { "user", 4, NULL, 0 };

    ngx_memzero(&pr, sizeof(pr));
    pr.max_tokens = -1;
    pr.temperature = 1.0;
    pr.top_p = 1.0;
    pr.stream = 1;

    if (ngx_http_slora_query_arg(r, "model", &pr.model) != NGX_OK) {
        ngx_str_set(&pr.model, "base");
    }

    if (ngx_http_slora_query_arg(r, "prompt", &pr.prompt) != NGX_OK) {
        return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "missing_required_parameter",
                                         "prompt",
                                         "The query needs prompt=TEXT");
    }

    chat = 0;
    if (ngx_http_slora_query_arg(r, "chat", &v) == NGX_OK) {
        chat = (v.len == 1 && v.data[0] == '1')
               || (v.len == 4 && ngx_strncmp(v.data, "true", 4) == 0);
    }

    if (ngx_http_slora_query_arg(r, "max_tokens", &v) == NGX_OK) {
        pr.max_tokens = ngx_atoi(v.data, v.len);

        if (pr.max_tokens <= 0) {
            return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid_request_error",
                                             "invalid_value", "max_tokens",
                                             "max_tokens must be a positive"
                                             " integer");
        }
    }

    if (ngx_http_slora_query_arg(r, "temperature", &v) == NGX_OK) {
        u_char  buf[32];

        if (v.len == 0 || v.len >= sizeof(buf)) {
            goto bad_temperature;
        }

        ngx_memcpy(buf, v.data, v.len);
        buf[v.len] = '\0';
        pr.temperature = strtod((char *) buf, NULL);

        if (!(pr.temperature >= 0 && pr.temperature <= 2)) {
            goto bad_temperature;
        }
    }

    if (!ngx_http_slora_utf8_valid(pr.prompt.data, pr.prompt.len)
        || !ngx_http_slora_utf8_valid(pr.model.data, pr.model.len))
    {
        return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request_error",
                                         "invalid_utf8", "prompt",
                                         "The query holds invalid UTF-8");
    }

    if (chat) {
        pr.kind = NGX_HTTP_SLORA_CHAT;
        pr.msgs = ngx_palloc(r->pool, sizeof(slora_chat_msg_t));
        if (pr.msgs == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        pr.msgs[0] = proto;
        pr.msgs[0].content = (const char *) pr.prompt.data;
        pr.msgs[0].content_len = pr.prompt.len;
        pr.n_msgs = 1;

    } else {
        pr.kind = NGX_HTTP_SLORA_COMPLETION;
    }

    rc = ngx_http_slora_start(r, &pr, &e);

    if (rc == NGX_DONE) {
        r->main->count++;
        return NGX_DONE;
    }

    if (rc != NGX_OK) {
        return ngx_http_slora_send_err(r, &e);
    }

    return NGX_OK;

bad_temperature:

    return ngx_http_slora_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "invalid_request_error",
                                     "invalid_value", "temperature",
                                     "temperature must be a number"
                                     " between 0 and 2");
}


/* An argument of the query string, percent-decoded, '+' as a space; the
 * request line itself is left as it came (the access log shows it). */
static ngx_int_t
ngx_http_slora_query_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *out)
{
    u_char     *src, *dst, *p;
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
    out->data = dst;
    ngx_unescape_uri(&dst, &src, raw.len, 0);
    out->len = dst - out->data;
    *dst = '\0';

    return NGX_OK;
}


static ngx_int_t
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

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';
    body->len = p - body->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_parse_body(ngx_http_request_t *r, ngx_str_t *body,
    ngx_http_slora_params_t *pr, ngx_http_slora_err_t *e)
{
    cJSON       *root, *item, *opt;
    ngx_int_t    rc, n;
    const char  *end;

    if (body->len == 0) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", NULL, NULL,
                                   "The request body is empty; send a JSON"
                                   " object");
    }

    if (!ngx_http_slora_utf8_valid(body->data, body->len)) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_utf8",
                                   NULL, "The request body is not valid"
                                   " UTF-8");
    }

    end = NULL;
    root = cJSON_ParseWithLengthOpts((const char *) body->data, body->len,
                                     &end, 0);

    /* only white space may follow the object */
    while (root && end && end < (const char *) body->data + body->len
           && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
    {
        end++;
    }

    if (root == NULL || !cJSON_IsObject(root)
        || end != (const char *) body->data + body->len)
    {
        cJSON_Delete(root);
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_json",
                                   NULL, "The request body is not a valid"
                                   " JSON object");
    }

    rc = NGX_ERROR;

    item = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (item == NULL || cJSON_IsNull(item)) {
        ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                            "missing_required_parameter", "model",
                            "you must provide a model parameter");
        goto done;
    }

    if (ngx_http_slora_json_string(r->pool, item, "model", &pr->model, e)
        != NGX_OK)
    {
        goto done;
    }

    if (pr->kind == NGX_HTTP_SLORA_CHAT) {
        item = cJSON_GetObjectItemCaseSensitive(root, "messages");

        if (ngx_http_slora_parse_messages(r, item, pr, e) != NGX_OK) {
            goto done;
        }

    } else {
        item = cJSON_GetObjectItemCaseSensitive(root, "prompt");

        if (cJSON_IsArray(item) && cJSON_GetArraySize(item) == 1) {
            item = cJSON_GetArrayItem(item, 0);
        }

        if (item == NULL) {
            ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                "invalid_request_error",
                                "missing_required_parameter", "prompt",
                                "you must provide a prompt parameter");
            goto done;
        }

        if (ngx_http_slora_json_string(r->pool, item, "prompt", &pr->prompt, e)
            != NGX_OK)
        {
            goto done;
        }
    }

    if (ngx_http_slora_parse_sampling(root, pr, e) != NGX_OK) {
        goto done;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "n");
    if (item && !cJSON_IsNull(item)) {
        if (ngx_http_slora_json_int(item, "n", 1, 1, &n, e) != NGX_OK) {
            ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                "invalid_request_error", "invalid_value",
                                "n", "Only n=1 is supported");
            goto done;
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsBool(item)) {
            ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                "invalid_request_error", "invalid_type",
                                "stream", "stream must be a boolean");
            goto done;
        }

        pr->stream = cJSON_IsTrue(item) ? 1 : 0;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (item && !cJSON_IsNull(item)) {
        opt = cJSON_IsObject(item)
              ? cJSON_GetObjectItemCaseSensitive(item, "include_usage")
              : NULL;

        if (!cJSON_IsObject(item) || (opt && !cJSON_IsBool(opt))) {
            ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                "invalid_request_error", "invalid_type",
                                "stream_options", "stream_options must be an"
                                " object with a boolean include_usage");
            goto done;
        }

        pr->include_usage = cJSON_IsTrue(opt) ? 1 : 0;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (ngx_http_slora_parse_stop(r->pool, item, pr, e) != NGX_OK) {
        goto done;
    }

    rc = NGX_OK;

done:

    /* the strings are copied by ngx_http_slora_json_string() */
    cJSON_Delete(root);

    return rc;
}


static ngx_int_t
ngx_http_slora_parse_messages(ngx_http_request_t *r, cJSON *msgs,
    ngx_http_slora_params_t *pr, ngx_http_slora_err_t *e)
{
    u_char            *p;
    size_t             len;
    cJSON             *m, *role, *content, *part, *text;
    ngx_str_t          s;
    ngx_uint_t         i;
    slora_chat_msg_t  *cm;

    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error",
                                   msgs ? "invalid_type"
                                        : "missing_required_parameter",
                                   "messages", "messages must be a non-empty"
                                   " array");
    }

    pr->n_msgs = cJSON_GetArraySize(msgs);
    pr->msgs = ngx_pcalloc(r->pool, pr->n_msgs * sizeof(slora_chat_msg_t));
    if (pr->msgs == NULL) {
        return ngx_http_slora_fail(e, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "server_error", NULL, NULL,
                                   "out of memory");
    }

    i = 0;

    cJSON_ArrayForEach(m, msgs) {
        cm = &pr->msgs[i];

        if (!cJSON_IsObject(m)) {
            return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request_error",
                                       "invalid_type", "messages",
                                       "messages[%ui] must be an object", i);
        }

        role = cJSON_GetObjectItemCaseSensitive(m, "role");

        if (ngx_http_slora_json_string(r->pool, role, "messages.role", &s, e)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (!((s.len == 6 && ngx_strncmp(s.data, "system", 6) == 0)
              || (s.len == 4 && ngx_strncmp(s.data, "user", 4) == 0)
              || (s.len == 9 && ngx_strncmp(s.data, "assistant", 9) == 0)))
        {
            return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request_error",
                                       "invalid_value", "messages.role",
                                       "messages[%ui].role must be system,"
                                       " user or assistant", i);
        }

        cm->role = (const char *) s.data;
        cm->role_len = s.len;

        content = cJSON_GetObjectItemCaseSensitive(m, "content");

        if (cJSON_IsArray(content)) {
            /* content parts: only text parts, concatenated */
            len = 0;

            cJSON_ArrayForEach(part, content) {
                text = cJSON_GetObjectItemCaseSensitive(part, "text");

                if (!cJSON_IsString(text)) {
                    return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                               "invalid_request_error",
                                               "invalid_type",
                                               "messages.content",
                                               "messages[%ui].content parts"
                                               " must be text parts", i);
                }

                len += ngx_strlen(text->valuestring);
            }

            p = ngx_pnalloc(r->pool, len + 1);
            if (p == NULL) {
                return NGX_ERROR;
            }

            cm->content = (const char *) p;

            cJSON_ArrayForEach(part, content) {
                text = cJSON_GetObjectItemCaseSensitive(part, "text");
                p = ngx_cpymem(p, text->valuestring,
                               ngx_strlen(text->valuestring));
            }

            *p = '\0';
            cm->content_len = len;

            if (!ngx_http_slora_utf8_valid((u_char *) cm->content, len)) {
                return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                           "invalid_request_error",
                                           "invalid_utf8",
                                           "messages.content",
                                           "messages[%ui].content is not"
                                           " valid UTF-8", i);
            }

        } else if (content == NULL || cJSON_IsNull(content)) {
            cm->content = "";
            cm->content_len = 0;

        } else {
            if (ngx_http_slora_json_string(r->pool, content,
                                           "messages.content", &s, e)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            cm->content = (const char *) s.data;
            cm->content_len = s.len;
        }

        i++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_parse_sampling(cJSON *root, ngx_http_slora_params_t *pr,
    ngx_http_slora_err_t *e)
{
    cJSON      *item;
    ngx_int_t   n;

    pr->max_tokens = -1;
    pr->temperature = 1.0;
    pr->top_p = 1.0;

    item = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");
    if (item == NULL || cJSON_IsNull(item)) {
        item = cJSON_GetObjectItemCaseSensitive(root,
                                                "max_completion_tokens");
    }

    if (item && !cJSON_IsNull(item)) {
        if (ngx_http_slora_json_int(item, "max_tokens", 1, NGX_MAX_INT32_VALUE,
                                    &pr->max_tokens, e)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "temperature");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsNumber(item)
            || !(item->valuedouble >= 0 && item->valuedouble <= 2))
        {
            return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request_error",
                                       "invalid_value", "temperature",
                                       "temperature must be a number"
                                       " between 0 and 2");
        }

        pr->temperature = item->valuedouble;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "top_p");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsNumber(item)
            || !(item->valuedouble > 0 && item->valuedouble <= 1))
        {
            return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request_error",
                                       "invalid_value", "top_p",
                                       "top_p must be a number in (0, 1]");
        }

        pr->top_p = item->valuedouble;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "top_k");
    if (item && !cJSON_IsNull(item)) {
        if (ngx_http_slora_json_int(item, "top_k", 0, 1000000, &pr->top_k, e)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (item && !cJSON_IsNull(item)) {
        if (ngx_http_slora_json_int(item, "seed", -NGX_MAX_INT_T_VALUE - 1,
                                    NGX_MAX_INT_T_VALUE, &n, e)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        pr->seed = (uint64_t) n;
        pr->has_seed = 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_parse_stop(ngx_pool_t *pool, cJSON *stop,
    ngx_http_slora_params_t *pr, ngx_http_slora_err_t *e)
{
    cJSON  *s;

    if (stop == NULL || cJSON_IsNull(stop)) {
        return NGX_OK;
    }

    if (cJSON_IsString(stop)) {
        if (ngx_http_slora_json_string(pool, stop, "stop", &pr->stop[0], e)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        pr->n_stop = pr->stop[0].len ? 1 : 0;
        return NGX_OK;
    }

    if (!cJSON_IsArray(stop)
        || cJSON_GetArraySize(stop) > NGX_HTTP_SLORA_MAX_STOPS)
    {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_value",
                                   "stop", "stop must be a string or an"
                                   " array of up to 4 strings");
    }

    cJSON_ArrayForEach(s, stop) {
        if (ngx_http_slora_json_string(pool, s, "stop",
                                       &pr->stop[pr->n_stop], e)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (pr->stop[pr->n_stop].len) {
            pr->n_stop++;
        }
    }

    return NGX_OK;
}


/* A JSON string, checked for UTF-8 and copied out of the cJSON tree. */
static ngx_int_t
ngx_http_slora_json_string(ngx_pool_t *pool, cJSON *item, const char *param,
    ngx_str_t *out, ngx_http_slora_err_t *e)
{
    size_t  len;

    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error",
                                   item ? "invalid_type"
                                        : "missing_required_parameter",
                                   param, "%s must be a string", param);
    }

    len = ngx_strlen(item->valuestring);

    if (!ngx_http_slora_utf8_valid((u_char *) item->valuestring, len)) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_utf8",
                                   param, "%s is not valid UTF-8", param);
    }

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return ngx_http_slora_fail(e, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "server_error", NULL, NULL,
                                   "out of memory");
    }

    ngx_memcpy(out->data, item->valuestring, len + 1);
    out->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_json_int(cJSON *item, const char *param, ngx_int_t min,
    ngx_int_t max, ngx_int_t *out, ngx_http_slora_err_t *e)
{
    double  d;

    if (!cJSON_IsNumber(item)) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_type",
                                   param, "%s must be an integer", param);
    }

    d = item->valuedouble;

    if (d != floor(d) || d < (double) min || d > (double) max) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_value",
                                   param, "%s must be an integer from %i"
                                   " to %i", param, min, max);
    }

    *out = (ngx_int_t) d;

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_start(ngx_http_request_t *r, ngx_http_slora_params_t *pr,
    ngx_http_slora_err_t *e)
{
    u_char                      *p;
    int32_t                     *ids, n, n_ctx, limit, max_tokens;
    uint32_t                     idx;
    ngx_int_t                    rc;
    ngx_str_t                    text, adapter;
    ngx_uint_t                   i;
    slora_err_t                  err;
    slora_slot_t                *s;
    slora_queue_t               *q;
    const char                  *down;
    ngx_http_slora_ctx_t        *ctx;
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    static uint32_t              hint;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    down = ngx_http_slora_engine_down(q);
    if (down != NULL) {
        return ngx_http_slora_fail(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "server_error", "engine_not_ready", NULL,
                                   "The engine is not ready: %s", down);
    }

    /* the model: "base", the model's id, or an adapter the engine knows */

    ngx_str_null(&adapter);
    ngx_str_null(&text);

    if (!((pr->model.len == 4 && ngx_strncmp(pr->model.data, "base", 4) == 0)
          || (pr->model.len == smcf->model_id.len
              && ngx_strncmp(pr->model.data, smcf->model_id.data,
                             pr->model.len) == 0)))
    {
        if (pr->model.len >= SLORA_QUEUE_ADAPTER_LEN
            || slora_queue_find_name(q, (const char *) pr->model.data,
                                     pr->model.len) < 0)
        {
            return ngx_http_slora_fail(e, NGX_HTTP_NOT_FOUND,
                                       "invalid_request_error",
                                       "model_not_found", "model",
                                       "The model `%V` does not exist",
                                       &pr->model);
        }

        adapter = pr->model;
    }

    /* the prompt's token ids */

    if (pr->kind == NGX_HTTP_SLORA_CHAT) {
        if (ngx_http_slora_render(r, pr, &text, e) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        text = pr->prompt;
    }

    n_ctx = atomic_load(&q->n_ctx);
    if (n_ctx <= 0 || (uint32_t) n_ctx > q->geom.prompt_cap) {
        n_ctx = (int32_t) q->geom.prompt_cap;
    }

    ids = ngx_palloc(r->pool, n_ctx * sizeof(int32_t));
    if (ids == NULL) {
        return NGX_ERROR;
    }

    err.msg[0] = '\0';
    n = 0;

    rc = slora_tokenizer_encode(smcf->tokenizer, (const char *) text.data,
                                text.len, 1,
                                pr->kind == NGX_HTTP_SLORA_CHAT, ids, n_ctx,
                                &n, &err);

    if (rc == SLORA_BUSY || (rc == SLORA_OK && n >= n_ctx)) {
        return ngx_http_slora_fail(e, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   "invalid_request_error",
                                   "context_length_exceeded",
                                   pr->kind == NGX_HTTP_SLORA_CHAT
                                   ? "messages" : "prompt",
                                   "This model's maximum context length is"
                                   " %D tokens. However, your prompt"
                                   " resulted in %D tokens", n_ctx, n);
    }

    if (rc != SLORA_OK) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_prompt",
                                   NULL, "The prompt cannot be tokenized: %s",
                                   err.msg);
    }

    if (n == 0) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_value",
                                   "prompt", "The prompt is empty");
    }

    /* max_tokens: capped by the directive, and by the context */

    limit = (int32_t) ngx_min((uint32_t) smcf->max_tokens,
                              q->geom.output_cap);

    if (pr->max_tokens > limit) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_value",
                                   "max_tokens",
                                   "max_tokens is too large: %i. This server"
                                   " allows at most %D completion tokens",
                                   pr->max_tokens, limit);
    }

    if (pr->max_tokens > 0) {
        max_tokens = (int32_t) pr->max_tokens;

        if (n + max_tokens > n_ctx) {
            return ngx_http_slora_fail(e, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "invalid_request_error",
                                       "context_length_exceeded",
                                       "max_tokens",
                                       "This model's maximum context length"
                                       " is %D tokens. However, you requested"
                                       " %D tokens (%D in the prompt, %D for"
                                       " the completion)", n_ctx,
                                       n + max_tokens, n, max_tokens);
        }

    } else {
        max_tokens = ngx_min(NGX_HTTP_SLORA_DEFAULT_MAX_TOKENS, limit);
        max_tokens = ngx_min(max_tokens, n_ctx - n);
    }

    /* the request context */

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_slora_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_slora_module);

    ctx->request = r;
    ctx->kind = pr->kind;
    ctx->model = pr->model;
    ctx->adapter = adapter;
    ctx->n_prompt = n;
    ctx->max_tokens = max_tokens;
    ctx->ttft_ms = -1;
    ctx->stream = pr->stream;
    ctx->include_usage = pr->include_usage;
    ctx->created = ngx_time();
    ctx->t_start_ns = slora_now_ns();
    ctx->n_stop = pr->n_stop;

    for (i = 0; i < pr->n_stop; i++) {
        ctx->stop[i] = pr->stop[i];
        ctx->stop_max = ngx_max(ctx->stop_max, pr->stop[i].len);
    }

    p = ngx_cpymem(ctx->id, pr->kind == NGX_HTTP_SLORA_CHAT ? "chatcmpl-"
                                                             : "cmpl-",
                   pr->kind == NGX_HTTP_SLORA_CHAT ? 9 : 5);
    p = ngx_sprintf(p, "%08xD%08xD%08xD", (uint32_t) ngx_random(),
                    (uint32_t) ngx_random(), (uint32_t) ngx_random());
    ctx->id_len = p - ctx->id;

    if (slcf->tenant != NULL
        && ngx_http_complex_value(r, slcf->tenant, &ctx->tenant) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->tenant.len) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "slora: tenant \"%V\" model \"%V\"", &ctx->tenant,
                      &ctx->model);
    }

    /* a slot */

    if (slora_queue_claim(q, hint++ + (uint32_t) ngx_pid, &idx) != SLORA_OK)
    {
        return ngx_http_slora_fail(e, NGX_HTTP_TOO_MANY_REQUESTS,
                                   "rate_limit_error", "rate_limit_exceeded",
                                   NULL, "All %uD request slots are busy;"
                                   " retry shortly", q->geom.n_slots);
    }

    s = slora_queue_slot(q, idx);

    ngx_memcpy(s->adapter, adapter.data, adapter.len);
    s->adapter[adapter.len] = '\0';
    s->temperature = (float) pr->temperature;
    s->top_p = (float) pr->top_p;
    s->top_k = (int32_t) pr->top_k;
    s->repeat_penalty = 1.0f;
    s->seed = pr->has_seed ? pr->seed
                           : ((uint64_t) ngx_random() << 32)
                             ^ (uint64_t) ngx_random()
                             ^ (uint64_t) ctx->t_start_ns;
    s->max_tokens = max_tokens;
    s->n_prompt = n;
    s->n_stop_ids = smcf->n_stop_ids;
    ngx_memcpy(s->stop_ids, smcf->stop_ids,
               smcf->n_stop_ids * sizeof(int32_t));
    ngx_memcpy(slora_queue_prompt(q, idx), ids, n * sizeof(int32_t));

    ctx->slot = idx;
    ctx->gen = s->gen;
    ctx->have_slot = 1;

    if (ngx_http_slora_stream_start(r, ctx) != NGX_DONE) {
        return ngx_http_slora_fail(e, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "server_error", "engine_not_ready", NULL,
                                   "The request could not be queued");
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_slora_render(ngx_http_request_t *r, ngx_http_slora_params_t *pr,
    ngx_str_t *text, ngx_http_slora_err_t *e)
{
    int                          rc;
    size_t                       cap, n;
    ngx_uint_t                   i;
    slora_err_t                  err;
    slora_chat_e                 tmpl;
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);

    tmpl = slcf->chat_template == NGX_HTTP_SLORA_CHAT_AUTO
           ? smcf->model_template : (slora_chat_e) slcf->chat_template;

    cap = 256;
    for (i = 0; i < pr->n_msgs; i++) {
        cap += pr->msgs[i].content_len + 64;
    }

    for ( ;; ) {
        text->data = ngx_pnalloc(r->pool, cap);
        if (text->data == NULL) {
            return NGX_ERROR;
        }

        err.msg[0] = '\0';
        n = 0;

        rc = slora_chat_render(tmpl, pr->msgs, (int) pr->n_msgs,
                               (char *) text->data, cap, &n, &err);

        if (rc == SLORA_BUSY && n + 1 > cap) {
            cap = n + 1;
            continue;
        }

        break;
    }

    if (rc != SLORA_OK) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_value",
                                   "messages", "The messages cannot be"
                                   " rendered: %s", err.msg);
    }

    text->len = n;

    return NGX_OK;
}


static ngx_int_t
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


static ngx_int_t
ngx_http_slora_send_err(ngx_http_request_t *r, ngx_http_slora_err_t *e)
{
    if (e->status == 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_send_error(r, e->status, e->type, e->code,
                                     e->param, "%*s", e->len, e->msg);
}


ngx_int_t
ngx_http_slora_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *code, const char *param,
    const char *fmt, ...)
{
    u_char       *p, msg[512];
    va_list       args;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_uint_t    level;
    ngx_chain_t   out;

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    level = status >= NGX_HTTP_INTERNAL_SERVER_ERROR ? NGX_LOG_WARN
                                                     : NGX_LOG_INFO;
    ngx_log_error(level, r->connection->log, 0, "slora: %ui %*s", status,
                  p - msg, msg);

    b = ngx_create_temp_buf(r->pool, ngx_http_slora_error_max(p - msg) + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_http_slora_error_json(b->last, type, code, param, msg,
                                        p - msg);
    *b->last++ = '\n';
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    if ((status == NGX_HTTP_TOO_MANY_REQUESTS
         || status == NGX_HTTP_SERVICE_UNAVAILABLE)
        && ngx_http_slora_add_header(r, "Retry-After",
                                     status == NGX_HTTP_TOO_MANY_REQUESTS
                                     ? "1" : "5")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
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
