/*
 * ngx_http_slora_conv.c: OpenAI's Conversations API under slora_api,
 * where slora_responses_store keeps responses: POST .../conversations
 * makes one (items and metadata, both optional), GET, POST (metadata)
 * and DELETE .../conversations/{id}, GET (a page) and POST (up to 20
 * more) .../conversations/{id}/items, GET and DELETE
 * .../conversations/{id}/items/{item_id}; and a Responses request's
 * conversation, whose input and answer are added to it when it ends.
 *
 * The one idea: HTTP and the store only. The bodies, the items and
 * their ids are the engine's (engine/slora_openai_conv.c and
 * _items.c), the conversation a record of the response store
 * (ngx_http_slora_store.c), a tenant's own like its responses. Every
 * change reads the conversation, makes the new one outside the store's
 * lock (an add and a response's end append bytes; a removal parses)
 * and puts it back over the record it read; where another request
 * changed it in between, it reads again (ngx_http_slora_conv_write), so
 * concurrent requests on one conversation each land whole.
 */

#include "ngx_http_slora_module.h"


#define NGX_HTTP_SLORA_CONV_ID_LEN  24      /* the id's random hex */
#define NGX_HTTP_SLORA_CONV_TRIES   16      /* reads of a conversation
                                               others keep changing */


typedef enum {
    NGX_HTTP_SLORA_CONV_CREATE = 0,         /* .../conversations */
    NGX_HTTP_SLORA_CONV_ONE,                /* .../conversations/{id} */
    NGX_HTTP_SLORA_CONV_ITEMS,              /* .../{id}/items */
    NGX_HTTP_SLORA_CONV_ITEM                /* .../{id}/items/{item} */
} ngx_http_slora_conv_e;


typedef struct {
    ngx_http_slora_conv_e      what;
    ngx_str_t                  id;
    ngx_str_t                  item;
} ngx_http_slora_conv_uri_t;


/* What a change makes of the conversation id read (conv, obj: changed
 * in place where it changes them) and its answer; NGX_DECLINED: a bad
 * request, oe says why. arg: the body, or the item's id. */
typedef ngx_int_t (*ngx_http_slora_conv_change_pt)(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *arg, ngx_str_t *conv, ngx_str_t *obj,
    ngx_str_t *answer, slora_openai_err_t *oe);


static ngx_int_t ngx_http_slora_conv_parse(ngx_http_request_t *r,
    ngx_http_slora_conv_uri_t *u);
static void ngx_http_slora_conv_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_slora_conv_answer(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_slora_conv_create(ngx_http_request_t *r,
    ngx_str_t *tenant, ngx_str_t *body);
static ngx_int_t ngx_http_slora_conv_write(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *tenant, ngx_str_t *body,
    ngx_http_slora_conv_change_pt change);
static ngx_int_t ngx_http_slora_conv_update(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *arg, ngx_str_t *conv, ngx_str_t *obj,
    ngx_str_t *answer, slora_openai_err_t *oe);
static ngx_int_t ngx_http_slora_conv_add(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *arg, ngx_str_t *conv, ngx_str_t *obj,
    ngx_str_t *answer, slora_openai_err_t *oe);
static ngx_int_t ngx_http_slora_conv_drop(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *arg, ngx_str_t *conv, ngx_str_t *obj,
    ngx_str_t *answer, slora_openai_err_t *oe);
static ngx_int_t ngx_http_slora_conv_list(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *conv);
static ngx_int_t ngx_http_slora_conv_item(ngx_http_request_t *r,
    ngx_str_t *id, ngx_str_t *item, ngx_str_t *conv);
static ngx_int_t ngx_http_slora_conv_reply(ngx_http_request_t *r, int rc,
    char *text, slora_openai_err_t *oe);
static ngx_int_t ngx_http_slora_conv_engine(ngx_http_request_t *r,
    char *text, ngx_str_t *out);
static ngx_int_t ngx_http_slora_conv_send(ngx_http_request_t *r,
    ngx_str_t *json);
static ngx_int_t ngx_http_slora_conv_none(ngx_http_request_t *r,
    ngx_str_t *id);


/* NGX_OK where r's URI is one of the Conversations API's. */
ngx_int_t
ngx_http_slora_conv_route(ngx_http_request_t *r)
{
    ngx_http_slora_conv_uri_t  u;

    return ngx_http_slora_conv_parse(r, &u);
}


/* The content handler's part for those URIs: the method checked, a
 * POST's body read first. */
ngx_int_t
ngx_http_slora_conv_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_slora_conv_uri_t    u;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    (void) ngx_http_slora_conv_parse(r, &u);

    /* HEAD as GET: its header alone (ngx_http_slora_send_body) */
    if (!(r->method
          & (u.what == NGX_HTTP_SLORA_CONV_CREATE ? NGX_HTTP_POST
             : u.what == NGX_HTTP_SLORA_CONV_ITEM
               ? (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE)
             : u.what == NGX_HTTP_SLORA_CONV_ITEMS
               ? (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST)
             : (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST|NGX_HTTP_DELETE))))
    {
        ngx_http_discard_request_body(r);

        return ngx_http_slora_not_allowed(r,
                   u.what == NGX_HTTP_SLORA_CONV_CREATE ? "POST"
                   : u.what == NGX_HTTP_SLORA_CONV_ITEM ? "GET, HEAD, DELETE"
                   : u.what == NGX_HTTP_SLORA_CONV_ITEMS ? "GET, HEAD, POST"
                   : "GET, HEAD, POST, DELETE");
    }

    if (smcf->store == NULL) {
        ngx_http_discard_request_body(r);

        return ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                         "invalid_request_error",
                                         "not_found", NULL,
                                         "This server keeps no"
                                         " conversations"
                                         " (slora_responses_store): %V %V"
                                         " has none to find",
                                         &r->method_name, &r->uri);
    }

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_slora_conv_answer(r, NULL);
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_slora_conv_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_slora_conv_body(ngx_http_request_t *r)
{
    ngx_str_t  body;

    if (ngx_http_slora_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_finalize_request(r, ngx_http_slora_conv_answer(r, &body));
}


/* The request answered (body: a POST's, else NULL). */
static ngx_int_t
ngx_http_slora_conv_answer(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char                     *p;
    ngx_int_t                   rc;
    ngx_str_t                   tenant, conv, obj, gone;
    ngx_http_slora_conv_uri_t   u;

    (void) ngx_http_slora_conv_parse(r, &u);

    if (ngx_http_slora_tenant(r, &tenant) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a name no request of its could carry is no tenant's (the store
     * would refuse its records as if it were full) */
    if (!ngx_http_slora_tenant_valid(&tenant)) {
        return ngx_http_slora_send_error(r, NGX_HTTP_FORBIDDEN,
                                         "permission_error",
                                         "unknown_tenant", NULL,
                                         "unknown tenant (the name is not"
                                         " valid)");
    }

    switch (u.what) {

    case NGX_HTTP_SLORA_CONV_CREATE:
        return ngx_http_slora_conv_create(r, &tenant, body);

    case NGX_HTTP_SLORA_CONV_ONE:
        if (r->method == NGX_HTTP_POST) {
            return ngx_http_slora_conv_write(r, &u.id, &tenant, body,
                                             ngx_http_slora_conv_update);
        }

        /* a DELETE needs no copy of the object */
        rc = ngx_http_slora_store_conversation(r, u.id.data, u.id.len,
                                               &tenant, NULL,
                                               r->method == NGX_HTTP_DELETE
                                               ? NULL : &obj, NULL,
                                               r->method == NGX_HTTP_DELETE);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != NGX_OK) {
            return ngx_http_slora_conv_none(r, &u.id);
        }

        if (r->method != NGX_HTTP_DELETE) {
            return ngx_http_slora_conv_send(r, &obj);
        }

        p = ngx_pnalloc(r->pool, 128 + 6 * u.id.len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        gone.data = p;
        p = ngx_http_slora_lit(p, "{\"id\":");
        p = ngx_http_slora_json_str(p, u.id.data, u.id.len);
        p = ngx_http_slora_lit(p, ",\"object\":\"conversation.deleted\","
                                  "\"deleted\":true}");
        gone.len = p - gone.data;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "slora: conversation %V deleted", &u.id);

        return ngx_http_slora_conv_send(r, &gone);

    case NGX_HTTP_SLORA_CONV_ITEMS:
        if (r->method == NGX_HTTP_POST) {
            return ngx_http_slora_conv_write(r, &u.id, &tenant, body,
                                             ngx_http_slora_conv_add);
        }

        break;

    default: /* NGX_HTTP_SLORA_CONV_ITEM */
        if (r->method == NGX_HTTP_DELETE) {
            /* the item's id travels as the change's "body" */
            return ngx_http_slora_conv_write(r, &u.id, &tenant, &u.item,
                                             ngx_http_slora_conv_drop);
        }

        break;
    }

    rc = ngx_http_slora_store_conversation(r, u.id.data, u.id.len, &tenant,
                                           &conv, NULL, NULL, 0);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_slora_conv_none(r, &u.id);
    }

    return u.what == NGX_HTTP_SLORA_CONV_ITEMS
           ? ngx_http_slora_conv_list(r, &u.id, &conv)
           : ngx_http_slora_conv_item(r, &u.id, &u.item, &conv);
}


/* POST .../conversations: a new conversation, answered with its
 * object. */
static ngx_int_t
ngx_http_slora_conv_create(ngx_http_request_t *r, ngx_str_t *tenant,
    ngx_str_t *body)
{
    u_char              *p, idbuf[sizeof("conv_")
                                  + NGX_HTTP_SLORA_CONV_ID_LEN];
    char                *conv_text, *obj_text;
    ngx_int_t            rc;
    ngx_str_t            id, conv, obj;
    slora_openai_err_t   oe;

    p = ngx_cpymem(idbuf, "conv_", 5);
    p = ngx_http_slora_random_id(p);
    *p = '\0';
    id.data = idbuf;
    id.len = p - idbuf;

    ngx_memzero(&oe, sizeof(slora_openai_err_t));

    if (slora_openai_conv_new((const char *) body->data, body->len,
                              (const char *) id.data, (int64_t) ngx_time(),
                              &conv_text, &obj_text, &oe)
        != SLORA_OK)
    {
        return ngx_http_slora_send_parse_err(r, &oe);
    }

    rc = ngx_http_slora_conv_engine(r, conv_text, &conv);

    if (rc == NGX_OK) {
        rc = ngx_http_slora_conv_engine(r, obj_text, &obj);

    } else {
        free(obj_text);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_slora_store_put(r, &id, tenant, NULL, &conv, &obj,
                                  NGX_HTTP_SLORA_STORE_CONV, 0);

    if (rc != NGX_OK) {
        /* the put logged why */
        return ngx_http_slora_send_error(r, NGX_HTTP_INSUFFICIENT_STORAGE,
                                         "server_error", "store_full", NULL,
                                         "The conversation (%uz bytes) does"
                                         " not fit this server's store",
                                         conv.len + obj.len);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "slora: conversation %V created", &id);

    return ngx_http_slora_conv_send(r, &obj);
}


/*
 * A conversation changed: read, changed (change, outside the lock) and
 * put back over the record read; read again where another request
 * changed it since. The answer is the change's.
 */
static ngx_int_t
ngx_http_slora_conv_write(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant, ngx_str_t *body, ngx_http_slora_conv_change_pt change)
{
    ngx_int_t            rc;
    ngx_str_t            conv, obj, new_conv, new_obj, answer;
    ngx_uint_t           gen, tries;
    slora_openai_err_t   oe;

    for (tries = 0; tries < NGX_HTTP_SLORA_CONV_TRIES; tries++) {
        rc = ngx_http_slora_store_conversation(r, id->data, id->len, tenant,
                                               &conv, &obj, &gen, 0);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc != NGX_OK) {
            return ngx_http_slora_conv_none(r, id);
        }

        new_conv = conv;
        new_obj = obj;
        ngx_memzero(&oe, sizeof(slora_openai_err_t));

        rc = change(r, id, body, &new_conv, &new_obj, &answer, &oe);

        if (rc == NGX_DECLINED) {
            return ngx_http_slora_send_parse_err(r, &oe);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_slora_store_put(r, id, tenant, NULL, &new_conv,
                                      &new_obj,
                                      NGX_HTTP_SLORA_STORE_CONV
                                      |NGX_HTTP_SLORA_STORE_UPDATE, gen);

        if (rc == NGX_OK) {
            return ngx_http_slora_conv_send(r, &answer);
        }

        if (rc == NGX_ABORT) {
            /* deleted, or dropped, since it was read */
            return ngx_http_slora_conv_none(r, id);
        }

        if (rc != NGX_BUSY) {
            /* the put logged why; the conversation is as it was */
            return ngx_http_slora_send_error(r,
                                             NGX_HTTP_INSUFFICIENT_STORAGE,
                                             "server_error", "store_full",
                                             NULL, "Conversation '%V' was"
                                             " not changed: it would not"
                                             " fit this server's store"
                                             " (%uz bytes)", id,
                                             new_conv.len + new_obj.len);
        }
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "slora: conversation %V changed by others %ui times"
                  " while this request changed it", id, tries);

    return ngx_http_slora_send_error(r, NGX_HTTP_CONFLICT,
                                     "invalid_request_error",
                                     "conversation_busy", NULL,
                                     "Conversation '%V' is being changed by"
                                     " other requests; try again", id);
}


/* POST .../conversations/{id}: its metadata replaced, answered with the
 * object. */
static ngx_int_t
ngx_http_slora_conv_update(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *arg, ngx_str_t *conv, ngx_str_t *obj, ngx_str_t *answer,
    slora_openai_err_t *oe)
{
    char  *text;

    if (slora_openai_conv_update((const char *) arg->data, arg->len,
                                 (const char *) obj->data, obj->len, &text,
                                 oe)
        != SLORA_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_slora_conv_engine(r, text, obj) != NGX_OK) {
        return NGX_ERROR;
    }

    *answer = *obj;

    return NGX_OK;
}


/* POST .../conversations/{id}/items: items added, answered with their
 * list. Their messages are appended to the conversation's bytes: the
 * conversation is counted, not parsed. */
static ngx_int_t
ngx_http_slora_conv_add(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *arg, ngx_str_t *conv, ngx_str_t *obj, ngx_str_t *answer,
    slora_openai_err_t *oe)
{
    int         places;
    char       *text, *list;
    ngx_int_t   rc;
    ngx_str_t   added, joined;

    places = slora_openai_json_count((const char *) conv->data, conv->len);
    if (places < 0) {
        return NGX_ERROR;
    }

    if (slora_openai_conv_add((const char *) arg->data, arg->len, places,
                              (const char *) id->data, id->len, &text, &list,
                              oe)
        != SLORA_OK)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_slora_conv_engine(r, text, &added);

    if (rc != NGX_OK) {
        free(list);
        return rc;
    }

    if (ngx_http_slora_json_join(r->pool, conv, &added, &joined) != NGX_OK)
    {
        free(list);
        return NGX_ERROR;
    }

    *conv = joined;

    return ngx_http_slora_conv_engine(r, list, answer);
}


/* DELETE .../conversations/{id}/items/{item} (arg: the item's id): the
 * item removed, answered with the conversation's object. */
static ngx_int_t
ngx_http_slora_conv_drop(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *arg, ngx_str_t *conv, ngx_str_t *obj, ngx_str_t *answer,
    slora_openai_err_t *oe)
{
    char  *text;

    if (slora_openai_conv_item((const char *) conv->data, conv->len,
                               (const char *) id->data, id->len,
                               (const char *) arg->data, arg->len, 1, &text,
                               oe)
        != SLORA_OK)
    {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "slora: item %V of conversation %V deleted", arg, id);

    *answer = *obj;

    return ngx_http_slora_conv_engine(r, text, conv);
}


/* GET .../conversations/{id}/items: a page of its items, by the
 * query's limit, order and after. */
static ngx_int_t
ngx_http_slora_conv_list(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *conv)
{
    int                      rc;
    char                    *text;
    slora_openai_err_t       oe;
    slora_openai_items_q_t   q;

    if (ngx_http_slora_items_query(r, &q) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&oe, sizeof(slora_openai_err_t));

    rc = slora_openai_conv_list((const char *) conv->data, conv->len,
                                (const char *) id->data, id->len, &q, &text,
                                &oe);

    return ngx_http_slora_conv_reply(r, rc, text, &oe);
}


/* GET .../conversations/{id}/items/{item}: the item. */
static ngx_int_t
ngx_http_slora_conv_item(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *item, ngx_str_t *conv)
{
    int                  rc;
    char                *text;
    slora_openai_err_t   oe;

    ngx_memzero(&oe, sizeof(slora_openai_err_t));

    rc = slora_openai_conv_item((const char *) conv->data, conv->len,
                                (const char *) id->data, id->len,
                                (const char *) item->data, item->len, 0,
                                &text, &oe);

    return ngx_http_slora_conv_reply(r, rc, text, &oe);
}


/* The engine's answer (rc: SLORA_OK with text, else oe's error) sent. */
static ngx_int_t
ngx_http_slora_conv_reply(ngx_http_request_t *r, int rc, char *text,
    slora_openai_err_t *oe)
{
    ngx_str_t  out;

    if (rc != SLORA_OK) {
        return ngx_http_slora_send_parse_err(r, oe);
    }

    if (ngx_http_slora_conv_engine(r, text, &out) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_slora_conv_send(r, &out);
}


/*
 * A Responses request's conversation id, once it has ended: msgs (its
 * input and its answer, a JSON array) added to it. Not kept any more, or
 * no room: logged, the answer stands.
 */
ngx_int_t
ngx_http_slora_conv_extend(ngx_http_request_t *r, ngx_str_t *id,
    ngx_str_t *tenant, ngx_str_t *msgs)
{
    ngx_int_t   rc;
    ngx_str_t   conv, obj, joined;
    ngx_uint_t  gen, tries;

    for (tries = 0; tries < NGX_HTTP_SLORA_CONV_TRIES; tries++) {
        rc = ngx_http_slora_store_conversation(r, id->data, id->len, tenant,
                                               &conv, &obj, &gen, 0);

        if (rc == NGX_OK
            && ngx_http_slora_json_join(r->pool, &conv, msgs, &joined)
               != NGX_OK)
        {
            rc = NGX_ERROR;
        }

        if (rc != NGX_OK) {
            break;
        }

        rc = ngx_http_slora_store_put(r, id, tenant, NULL, &joined, &obj,
                                      NGX_HTTP_SLORA_STORE_CONV
                                      |NGX_HTTP_SLORA_STORE_UPDATE, gen);

        if (rc != NGX_BUSY) {
            break;
        }
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "slora: the answer was not added to conversation %V:"
                      " %s", id, rc == NGX_BUSY ? "changed by others too"
                                                  " often"
                                 : rc == NGX_ERROR ? "out of memory"
                                 : rc == NGX_ABORT ? "no longer kept"
                                 : "no room for it");
    }

    return rc;
}


/* The JSON arrays a and b as one, a's elements first, from pool. */
ngx_int_t
ngx_http_slora_json_join(ngx_pool_t *pool, ngx_str_t *a, ngx_str_t *b,
    ngx_str_t *out)
{
    u_char  *p;

    if (a->len < 2 || b->len < 2) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, a->len + b->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    /* "[" a's elements ["," b's elements] "]" */
    p = ngx_cpymem(out->data, a->data, a->len - 1);

    if (a->len > 2 && b->len > 2) {
        *p++ = ',';
    }

    p = ngx_cpymem(p, b->data + 1, b->len - 1);
    out->len = p - out->data;

    return NGX_OK;
}


/* The engine's text (malloc'd) copied into r's pool, and freed. */
static ngx_int_t
ngx_http_slora_conv_engine(ngx_http_request_t *r, char *text, ngx_str_t *out)
{
    out->len = ngx_strlen(text);
    out->data = ngx_pnalloc(r->pool, out->len);

    if (out->data != NULL) {
        ngx_memcpy(out->data, text, out->len);
    }

    free(text);

    return out->data != NULL ? NGX_OK : NGX_ERROR;
}


/* A JSON answer, a line. */
static ngx_int_t
ngx_http_slora_conv_send(ngx_http_request_t *r, ngx_str_t *json)
{
    ngx_buf_t  *b;

    b = ngx_create_temp_buf(r->pool, json->len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, json->data, json->len);
    *b->last++ = '\n';

    return ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
}


/* The 404 of a conversation not kept (or another tenant's). */
static ngx_int_t
ngx_http_slora_conv_none(ngx_http_request_t *r, ngx_str_t *id)
{
    return ngx_http_slora_send_error(r, NGX_HTTP_NOT_FOUND,
                                     "invalid_request_error", "not_found",
                                     NULL, "Conversation with id '%V' not"
                                     " found", id);
}


/*
 * r's URI as one of the Conversations API's: the last ".../conversations"
 * followed by nothing, "/{id}", "/{id}/items" or "/{id}/items/{item}"
 * (ids of letters, digits, "_" and "-"). NGX_DECLINED: none.
 */
static ngx_int_t
ngx_http_slora_conv_parse(ngx_http_request_t *r,
    ngx_http_slora_conv_uri_t *u)
{
    u_char      *p, *from, *last, *seg[3], *end[3];
    ngx_uint_t   n, bad;

    last = r->uri.data + r->uri.len;
    from = r->uri.data;

    for ( ;; ) {
        p = ngx_strlcasestrn(from, last, (u_char *) "/conversations",
                             sizeof("/conversations") - 2);
        if (p == NULL) {
            return NGX_DECLINED;
        }

        from = p + 1;
        p += sizeof("/conversations") - 1;

        /* what follows: up to three segments, none empty */
        n = 0;
        bad = 0;

        while (p < last) {
            if (*p != '/' || n == 3) {
                bad = 1;
                break;
            }

            seg[n] = ++p;

            while (p < last
                   && ((*p >= '0' && *p <= '9')
                       || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')
                       || *p == '_' || *p == '-'))
            {
                p++;
            }

            end[n] = p;

            if (end[n] == seg[n]) {
                bad = 1;
                break;
            }

            n++;
        }

        if (bad
            || (n >= 2
                && !((size_t) (end[1] - seg[1]) == sizeof("items") - 1
                     && ngx_strncmp(seg[1], "items", 5) == 0)))
        {
            continue;
        }

        break;
    }

    ngx_memzero(u, sizeof(ngx_http_slora_conv_uri_t));

    u->what = n == 0 ? NGX_HTTP_SLORA_CONV_CREATE
              : n == 1 ? NGX_HTTP_SLORA_CONV_ONE
              : n == 2 ? NGX_HTTP_SLORA_CONV_ITEMS
              : NGX_HTTP_SLORA_CONV_ITEM;

    if (n >= 1) {
        u->id.data = seg[0];
        u->id.len = end[0] - seg[0];
    }

    if (n == 3) {
        u->item.data = seg[2];
        u->item.len = end[2] - seg[2];
    }

    return NGX_OK;
}
