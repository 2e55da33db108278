/*
 * ngx_http_slora_responses.c: the answer to a Responses API request
 * (POST .../responses; the request is engine/slora_openai_responses.c's):
 * a response object whose output is a message of output_text and the
 * function calls the answer made, or, streamed, the API's named events:
 * response.created and .in_progress; for each item
 * response.output_item.added, then a message's content_part.added,
 * output_text.delta events, output_text.done and content_part.done, or
 * a call's function_call_arguments.delta events and .done, or the
 * reasoning's (slora_reasoning: the think block, an item of type
 * reasoning before the others) content_part.added, reasoning_text.delta
 * events, reasoning_text.done and content_part.done; then
 * response.output_item.done; at the end response.completed (or
 * .incomplete when max_output_tokens cut it, or an error event and
 * response.failed when the engine failed it), each with its
 * sequence_number. No [DONE] ends it: the last event does. With
 * logprobs, each delta carries the entries of the tokens taken since
 * the one before (chat's entries), and the message's part all of them:
 * the message's tokens', not its think block's (ngx_http_slora_think.c).
 *
 * The one idea: the stream's other code does not change. It still hands
 * over text and calls as they come (ngx_http_slora_emit_text,
 * ngx_http_slora_tool_take) and ends choices and requests; here those
 * become items, and the items keep their text, because the done events
 * and the last response object repeat all of it. Ids are the request's
 * random part: resp_, msg_, fc_, rs_ and call_ with the item's index. Where
 * slora_responses_store keeps responses, one that ended is stored
 * (ngx_http_slora_store.c) before its last event or its body goes out.
 * A background response is answered "queued" at once and stored as it
 * goes (in_progress, then its end), the client's connection no longer
 * its concern (ngx_http_slora_resp_detach).
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"


#define NGX_HTTP_SLORA_RESP_OVERHEAD  1024
#define NGX_HTTP_SLORA_RESP_ID_LEN    24      /* the id's random hex */


static ngx_int_t ngx_http_slora_resp_add(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_uint_t kind, const char *name,
    ngx_chain_t ***ll);
static u_char *ngx_http_slora_resp_item_id(u_char *p,
    ngx_http_slora_ctx_t *ctx, ngx_uint_t k);
static ngx_int_t ngx_http_slora_resp_close(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const char *status, ngx_chain_t ***ll);
static ngx_int_t ngx_http_slora_resp_delta(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const char *type, const u_char *text,
    size_t len, ngx_http_slora_lpbuf_t *lp, ngx_chain_t ***ll);
static u_char *ngx_http_slora_resp_text_done(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_uint_t k, const u_char *text, u_char *p,
    ngx_chain_t ***ll);
static ngx_int_t ngx_http_slora_resp_keep(ngx_http_request_t *r,
    ngx_http_slora_resp_t *resp, const u_char *text, size_t len);
static ngx_int_t ngx_http_slora_resp_keep_lp(ngx_http_request_t *r,
    ngx_http_slora_resp_t *resp, ngx_http_slora_choice_t *ch);
static ngx_int_t ngx_http_slora_resp_send(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, const char *type, u_char *p, u_char *last,
    ngx_chain_t ***ll);
static u_char *ngx_http_slora_resp_head(u_char *p,
    ngx_http_slora_ctx_t *ctx, const char *type);
static u_char *ngx_http_slora_resp_at(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_uint_t k);
static u_char *ngx_http_slora_resp_item(u_char *p,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_resp_t *resp,
    const u_char *base, ngx_uint_t k, const char *status);
static u_char *ngx_http_slora_resp_reason_part(u_char *p,
    const u_char *text, size_t len);
static u_char *ngx_http_slora_resp_part(u_char *p,
    ngx_http_slora_resp_t *resp, const u_char *text, size_t len);
static u_char *ngx_http_slora_resp_object(u_char *p,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_resp_t *resp,
    const u_char *base, const char *status, const char *code,
    const u_char *msg, size_t len);
static size_t ngx_http_slora_resp_max(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_resp_t *resp, size_t extra);
static u_char *ngx_http_slora_resp_id(u_char *p, ngx_http_slora_ctx_t *ctx,
    const char *prefix, ngx_uint_t k);
static const char *ngx_http_slora_resp_status(ngx_http_slora_ctx_t *ctx);
static ngx_int_t ngx_http_slora_resp_record(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_resp_t *resp,
    const u_char *base, u_char *obj, u_char *obj_end, ngx_uint_t how);
static u_char *ngx_http_slora_resp_base(ngx_http_slora_resp_t *resp);
static u_char *ngx_http_slora_resp_raw(u_char *p, ngx_http_slora_lpbuf_t *b);


/* response.created and response.in_progress, when the engine begins
 * the answer (a background stream had its response.created at once). */
ngx_int_t
ngx_http_slora_resp_open(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_chain_t ***ll)
{
    if (ngx_http_slora_resp_state(r, ctx, "response.created",
                                  "in_progress", ll)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_slora_resp_state(r, ctx, "response.in_progress",
                                     "in_progress", ll);
}


/* An event of type carrying the response object (no output yet) in
 * status: response.created, .in_progress. */
ngx_int_t
ngx_http_slora_resp_state(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const char *type, const char *status, ngx_chain_t ***ll)
{
    u_char  *p, *last;

    p = ngx_pnalloc(r->pool, ngx_http_slora_resp_max(ctx, ctx->resp, 0));
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_slora_resp_head(p, ctx, type);
    last = ngx_http_slora_lit(last, ",\"response\":");
    last = ngx_http_slora_resp_object(last, ctx, ctx->resp, NULL, status,
                                      NULL, NULL, 0);
    *last++ = '}';

    return ngx_http_slora_resp_send(r, ctx, type, p, last, ll);
}


/* Text of the answer: an output_text.delta of the message, which opens
 * first if it is not open. */
ngx_int_t
ngx_http_slora_resp_text(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, const u_char *text, size_t len,
    ngx_chain_t ***ll)
{
    ngx_http_slora_resp_t  *resp;

    resp = ctx->resp;

    if (resp->open
        && resp->item[resp->n_items - 1].kind != NGX_HTTP_SLORA_ITEM_MESSAGE
        && ngx_http_slora_resp_close(r, ctx, "completed", ll) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!resp->open
        && ngx_http_slora_resp_add(r, ctx, NGX_HTTP_SLORA_ITEM_MESSAGE, NULL,
                                   ll)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_slora_resp_keep(r, resp, text, len) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the entries of the tokens taken since the delta before */
    if (ngx_http_slora_resp_delta(r, ctx, "response.output_text.delta",
                                  text, len, &ch->lp.part[0], ll)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_slora_resp_keep_lp(r, resp, ch);
}


/* Reasoning of the answer (its think block, which comes first): a
 * reasoning_text.delta of the reasoning item, which opens first if it is
 * not open. */
ngx_int_t
ngx_http_slora_resp_reason(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const u_char *text, size_t len, ngx_chain_t ***ll)
{
    ngx_http_slora_resp_t  *resp;

    resp = ctx->resp;

    if (!resp->open
        && ngx_http_slora_resp_add(r, ctx, NGX_HTTP_SLORA_ITEM_REASONING,
                                   NULL, ll)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (resp->item[resp->n_items - 1].kind != NGX_HTTP_SLORA_ITEM_REASONING
        || ngx_http_slora_resp_keep(r, resp, text, len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_slora_resp_delta(r, ctx, "response.reasoning_text.delta",
                                     text, len, NULL, ll);
}


/* A delta event of type for the open item's text, with lp's entries (a
 * message's; NULL: none, reasoning's). */
static ngx_int_t
ngx_http_slora_resp_delta(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const char *type, const u_char *text, size_t len,
    ngx_http_slora_lpbuf_t *lp, ngx_chain_t ***ll)
{
    u_char  *p, *last;

    p = ngx_http_slora_scratch(r, ctx,
                               NGX_HTTP_SLORA_RESP_OVERHEAD + 6 * len
                               + (lp != NULL ? lp->len : 0));
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_slora_resp_head(p, ctx, type);
    last = ngx_http_slora_resp_at(last, ctx, ctx->resp->n_items - 1);
    last = ngx_http_slora_lit(last, ",\"content_index\":0,\"delta\":");
    last = ngx_http_slora_json_str(last, text, len);

    if (lp != NULL) {
        last = ngx_http_slora_lit(last, ",\"logprobs\":[");
        last = ngx_http_slora_resp_raw(last, lp);
        *last++ = ']';
    }

    *last++ = '}';

    return ngx_http_slora_resp_send(r, ctx, type, p, last, ll);
}


/* A call of the answer: its start (name given), which closes what was
 * open, or a piece of its arguments. */
ngx_int_t
ngx_http_slora_resp_call(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const char *name, const u_char *args, size_t len, ngx_chain_t ***ll)
{
    u_char                 *p, *last;
    ngx_http_slora_resp_t  *resp;

    resp = ctx->resp;

    if (name != NULL) {
        if (resp->open
            && ngx_http_slora_resp_close(r, ctx, "completed", ll) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_slora_resp_add(r, ctx, NGX_HTTP_SLORA_ITEM_CALL, name,
                                       ll);
    }

    if (!resp->open
        || resp->item[resp->n_items - 1].kind != NGX_HTTP_SLORA_ITEM_CALL)
    {
        /* the scanner gives arguments only after a name */
        return NGX_ERROR;
    }

    if (ngx_http_slora_resp_keep(r, resp, args, len) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_http_slora_scratch(r, ctx,
                               NGX_HTTP_SLORA_RESP_OVERHEAD + 6 * len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_slora_resp_head(p, ctx,
                                    "response.function_call_arguments.delta");
    last = ngx_http_slora_resp_at(last, ctx, resp->n_items - 1);
    last = ngx_http_slora_lit(last, ",\"delta\":");
    last = ngx_http_slora_json_str(last, args, len);
    *last++ = '}';

    return ngx_http_slora_resp_send(r, ctx,
                                    "response.function_call_arguments.delta",
                                    p, last, ll);
}


/* The choice's end: what is open closes (an answer of nothing is an
 * empty message), incomplete when max_output_tokens cut it. */
ngx_int_t
ngx_http_slora_resp_end(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, ngx_chain_t ***ll)
{
    ngx_http_slora_resp_t  *resp;

    resp = ctx->resp;

    if (resp->open
        && resp->item[resp->n_items - 1].kind == NGX_HTTP_SLORA_ITEM_REASONING
        && ngx_http_slora_resp_close(r, ctx, "completed", ll) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((resp->n_items == 0
         || resp->item[resp->n_items - 1].kind
            == NGX_HTTP_SLORA_ITEM_REASONING)
        && ngx_http_slora_resp_add(r, ctx, NGX_HTTP_SLORA_ITEM_MESSAGE, NULL,
                                   ll)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!resp->open) {
        return NGX_OK;
    }

    /* entries of tokens a stop string cut, or the last ones */
    if (resp->item[resp->n_items - 1].kind == NGX_HTTP_SLORA_ITEM_MESSAGE
        && ngx_http_slora_resp_keep_lp(r, resp, ch) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_slora_resp_close(r, ctx,
                                     ngx_http_slora_resp_status(ctx), ll);
}


/* The stream's last event: response.completed or .incomplete, the whole
 * response object with its usage. */
ngx_int_t
ngx_http_slora_resp_finish(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_chain_t ***ll)
{
    u_char      *p, *last, *obj;
    const char  *status, *type;

    status = ngx_http_slora_resp_status(ctx);
    type = status[0] == 'c' ? "response.completed" : "response.incomplete";

    p = ngx_pnalloc(r->pool, ngx_http_slora_resp_max(ctx, ctx->resp, 0));
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_slora_resp_head(p, ctx, type);
    last = ngx_http_slora_lit(last, ",\"response\":");
    obj = last;
    last = ngx_http_slora_resp_object(last, ctx, ctx->resp,
                                      ngx_http_slora_resp_base(ctx->resp),
                                      status, NULL, NULL, 0);

    /* stored before the client hears of the end, so that its next
     * request finds it */
    if (ngx_http_slora_resp_record(r, ctx, ctx->resp,
                                   ngx_http_slora_resp_base(ctx->resp),
                                   obj, last,
                                   ctx->resp_background
                                   ? NGX_HTTP_SLORA_STORE_UPDATE
                                   : NGX_HTTP_SLORA_STORE_DONE)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    *last++ = '}';

    return ngx_http_slora_resp_send(r, ctx, type, p, last, ll);
}


/* A stream the engine failed after it began: an error event, then
 * response.failed with what was answered before and the error. */
ngx_int_t
ngx_http_slora_resp_fail(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const char *code, const u_char *msg, size_t len, ngx_chain_t ***ll)
{
    u_char  *p, *last;

    p = ngx_pnalloc(r->pool,
                    ngx_http_slora_resp_max(ctx, ctx->resp, 12 * len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_slora_resp_head(p, ctx, "error");
    last = ngx_http_slora_lit(last, ",\"code\":");
    last = ngx_http_slora_json_cstr(last, code);
    last = ngx_http_slora_lit(last, ",\"message\":");
    last = ngx_http_slora_json_str(last, msg, len);
    last = ngx_http_slora_lit(last, ",\"param\":null}");

    if (ngx_http_slora_resp_send(r, ctx, "error", p, last, ll) != NGX_OK) {
        return NGX_ERROR;
    }

    p = last;
    last = ngx_http_slora_resp_head(p, ctx, "response.failed");
    last = ngx_http_slora_lit(last, ",\"response\":");
    last = ngx_http_slora_resp_object(last, ctx, ctx->resp,
                                      ngx_http_slora_resp_base(ctx->resp),
                                      "failed", code, msg, len);
    *last++ = '}';

    return ngx_http_slora_resp_send(r, ctx, "response.failed", p, last, ll);
}


/*
 * background: the response stored running, its object "queued" (no
 * output, no usage yet) and its answer null, so that GET finds it and
 * input_items lists its input at once; a stream's events are kept with
 * it as they are sent (ngx_http_slora_resume.c follows them). Before the
 * engine has the request: NGX_DECLINED where the store has no room for
 * it.
 */
ngx_int_t
ngx_http_slora_resp_queue(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    return ngx_http_slora_resp_mark(r, ctx, "queued", NULL, NULL, 0,
                                    NGX_HTTP_SLORA_STORE_RUNNING
                                    | (ctx->stream
                                       ? NGX_HTTP_SLORA_STORE_STREAM : 0));
}


/*
 * background, the request in the engine's hands: the client has the
 * "queued" object at once, with Connection: close, and over HTTP/1 the
 * connection's sending side is shut once it is out, so that a client
 * reading to the end of the connection is not kept waiting; the request
 * lives on until the answer ends and goes to the store
 * (ngx_http_slora_resp_body, or ngx_http_slora_resp_mark "failed").
 * Nothing is read from the client any more: one that goes does not
 * cancel the answer, a cancel or a delete does (the stream's tick). A
 * client that cannot be written to is no failure either.
 */
void
ngx_http_slora_resp_detach(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_buf_t  *b;

    b = ngx_create_temp_buf(r->pool, ngx_http_slora_resp_max(ctx, ctx->resp,
                                                             0));
    if (b == NULL) {
        return;
    }

    b->last = ngx_http_slora_resp_object(b->last, ctx, ctx->resp, NULL,
                                         "queued", NULL, NULL, 0);
    *b->last++ = '\n';

    r->keepalive = 0;
    r->read_event_handler = ngx_http_block_reading;
    ctx->header_sent = 1;

    rc = ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
    ngx_http_slora_resp_sent(r, ctx, rc);
}


/* background: the "queued" object's send returned rc; once it is all out
 * an HTTP/1 connection's sending side is shut (HTTP/2 ended the stream
 * with it). */
void
ngx_http_slora_resp_sent(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (rc != NGX_OK || r->buffered || c->buffered || ctx->resp_shut
        || r->http_version > NGX_HTTP_VERSION_11)
    {
        return;
    }

    ctx->resp_shut = 1;

    if (ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1) {
        ngx_log_error(NGX_LOG_INFO, c->log, ngx_socket_errno,
                      ngx_shutdown_socket_n " failed");
    }
}


/*
 * A background answer's record replaced by its object in status (with
 * the error code and msg where it failed), no output, while it is still
 * running: "in_progress" when the engine began it, "failed" when it
 * failed. how: ngx_http_slora_store_put's.
 */
ngx_int_t
ngx_http_slora_resp_mark(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const char *status, const char *code, const u_char *msg, size_t len,
    ngx_uint_t how)
{
    u_char      *p, *last;
    ngx_uint_t   n_items;

    p = ngx_pnalloc(r->pool, ngx_http_slora_resp_max(ctx, ctx->resp,
                                                     12 * len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_slora_resp_object(p, ctx, ctx->resp, NULL, status, code,
                                      msg, len);

    n_items = ctx->resp->n_items;
    ctx->resp->n_items = 0;

    if (ngx_http_slora_resp_record(r, ctx, ctx->resp, (u_char *) "", p,
                                   last, how)
        != NGX_OK)
    {
        ctx->resp->n_items = n_items;
        return NGX_DECLINED;
    }

    ctx->resp->n_items = n_items;

    return NGX_OK;
}


/* The whole answer's response object: the reasoning (where there was
 * any), the message (the text before the calls, if any) and the calls
 * read from it. */
ngx_buf_t *
ngx_http_slora_resp_body(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    u_char                   *p;
    ngx_buf_t                *b;
    ngx_uint_t                k;
    ngx_http_slora_resp_t    *resp;
    ngx_http_slora_item_t    *it;
    ngx_http_slora_choice_t  *ch;

    resp = ctx->resp;
    ch = &ctx->choice[0];
    resp->n_items = 0;

    if (ch->reason_len > 0) {
        it = &resp->item[resp->n_items++];
        it->kind = NGX_HTTP_SLORA_ITEM_REASONING;
        it->text = ch->reason;
        it->off = 0;
        it->len = ch->reason_len;
    }

    if (ch->n_calls == 0 || ch->tool_content > 0) {
        it = &resp->item[resp->n_items++];
        it->kind = NGX_HTTP_SLORA_ITEM_MESSAGE;
        it->off = 0;
        it->len = ch->n_calls ? ch->tool_content : ch->text_len;
    }

    for (k = 0; k < ch->n_calls; k++) {
        it = &resp->item[resp->n_items++];
        it->kind = NGX_HTTP_SLORA_ITEM_CALL;
        ngx_memcpy(it->name, ch->calls[k].name, sizeof(it->name));
        it->off = ch->calls[k].args;
        it->len = ch->calls[k].args_len;
    }

    /* the whole answer's entries (not with tools: only a message) */
    resp->kept_lp = ch->lp.part[0];

    b = ngx_create_temp_buf(r->pool, ngx_http_slora_resp_max(ctx, resp, 0));
    if (b == NULL) {
        return NULL;
    }

    p = ngx_http_slora_resp_object(b->last, ctx, resp, ch->text,
                                   ngx_http_slora_resp_status(ctx), NULL,
                                   NULL, 0);

    /* a background answer replaces its running record, if it still is */
    if (ngx_http_slora_resp_record(r, ctx, resp, ch->text, b->last, p,
                                   ctx->resp_background
                                   ? NGX_HTTP_SLORA_STORE_UPDATE
                                   : NGX_HTTP_SLORA_STORE_DONE)
        == NGX_ERROR)
    {
        return NULL;
    }

    *p++ = '\n';
    b->last = p;

    return b;
}


/* A new item, open: output_item.added, and for a message its
 * content_part.added. */
static ngx_int_t
ngx_http_slora_resp_add(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_uint_t kind, const char *name, ngx_chain_t ***ll)
{
    u_char                 *p, *last;
    ngx_uint_t              k;
    ngx_http_slora_item_t  *it;
    ngx_http_slora_resp_t  *resp;

    resp = ctx->resp;

    if (resp->n_items == NGX_HTTP_SLORA_MAX_CALLS + 2) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "slora: a response of more than %d items",
                      NGX_HTTP_SLORA_MAX_CALLS + 2);
        return NGX_ERROR;
    }

    k = resp->n_items++;
    it = &resp->item[k];
    it->kind = kind;
    it->text = NULL;
    it->off = resp->kept.len;
    it->len = 0;
    it->name[0] = '\0';

    if (name != NULL) {
        ngx_cpystrn((u_char *) it->name, (u_char *) name, sizeof(it->name));
    }

    resp->open = 1;

    p = ngx_pnalloc(r->pool, 2 * NGX_HTTP_SLORA_RESP_OVERHEAD);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_slora_resp_head(p, ctx, "response.output_item.added");
    last = ngx_sprintf(last, ",\"output_index\":%ui,\"item\":", k);
    last = ngx_http_slora_resp_item(last, ctx, resp, NULL, k, "in_progress");
    *last++ = '}';

    if (ngx_http_slora_resp_send(r, ctx, "response.output_item.added", p,
                                 last, ll)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (kind == NGX_HTTP_SLORA_ITEM_CALL) {
        return NGX_OK;
    }

    p = last;
    last = ngx_http_slora_resp_head(p, ctx, "response.content_part.added");
    last = ngx_http_slora_resp_at(last, ctx, k);
    last = ngx_http_slora_lit(last, ",\"content_index\":0,\"part\":");
    last = kind == NGX_HTTP_SLORA_ITEM_REASONING
           ? ngx_http_slora_resp_reason_part(last, (u_char *) "", 0)
           : ngx_http_slora_resp_part(last, NULL, (u_char *) "", 0);
    *last++ = '}';

    return ngx_http_slora_resp_send(r, ctx, "response.content_part.added", p,
                                    last, ll);
}


/* The open item's done events, with all its text. */
static ngx_int_t
ngx_http_slora_resp_close(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const char *status, ngx_chain_t ***ll)
{
    u_char                 *p, *last, *text;
    ngx_uint_t              k;
    ngx_http_slora_item_t  *it;
    ngx_http_slora_resp_t  *resp;

    resp = ctx->resp;
    k = resp->n_items - 1;
    it = &resp->item[k];
    text = ngx_http_slora_resp_base(resp) + it->off;
    resp->open = 0;

    p = ngx_pnalloc(r->pool, 3 * (NGX_HTTP_SLORA_RESP_OVERHEAD
                                  + 6 * it->len + resp->kept_lp.len));
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (it->kind == NGX_HTTP_SLORA_ITEM_CALL) {
        last = ngx_http_slora_resp_head(p, ctx,
                                     "response.function_call_arguments.done");
        last = ngx_http_slora_resp_at(last, ctx, k);
        last = ngx_http_slora_lit(last, ",\"name\":");
        last = ngx_http_slora_json_cstr(last, it->name);
        last = ngx_http_slora_lit(last, ",\"arguments\":");
        last = ngx_http_slora_json_str(last, text, it->len);
        *last++ = '}';

        if (ngx_http_slora_resp_send(r, ctx,
                                     "response.function_call_arguments.done",
                                     p, last, ll)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        last = ngx_http_slora_resp_text_done(r, ctx, k, text, p, ll);

        if (last == NULL) {
            return NGX_ERROR;
        }
    }

    p = last;
    last = ngx_http_slora_resp_head(p, ctx, "response.output_item.done");
    last = ngx_sprintf(last, ",\"output_index\":%ui,\"item\":", k);
    last = ngx_http_slora_resp_item(last, ctx, resp,
                                    ngx_http_slora_resp_base(resp), k,
                                    status);
    *last++ = '}';

    return ngx_http_slora_resp_send(r, ctx, "response.output_item.done", p,
                                    last, ll);
}


/* A message's or reasoning's done events: output_text.done (with the
 * message's entries) or reasoning_text.done, then content_part.done;
 * written from p, the end returned (NULL: an error). */
static u_char *
ngx_http_slora_resp_text_done(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_uint_t k, const u_char *text, u_char *p,
    ngx_chain_t ***ll)
{
    u_char                 *last;
    ngx_uint_t              reasoning;
    const char             *type;
    ngx_http_slora_item_t  *it;
    ngx_http_slora_resp_t  *resp;

    resp = ctx->resp;
    it = &resp->item[k];
    reasoning = it->kind == NGX_HTTP_SLORA_ITEM_REASONING;
    type = reasoning ? "response.reasoning_text.done"
                     : "response.output_text.done";

    last = ngx_http_slora_resp_head(p, ctx, type);
    last = ngx_http_slora_resp_at(last, ctx, k);
    last = ngx_http_slora_lit(last, ",\"content_index\":0,\"text\":");
    last = ngx_http_slora_json_str(last, text, it->len);

    if (!reasoning) {
        last = ngx_http_slora_lit(last, ",\"logprobs\":[");
        last = ngx_http_slora_resp_raw(last, &resp->kept_lp);
        *last++ = ']';
    }

    *last++ = '}';

    if (ngx_http_slora_resp_send(r, ctx, type, p, last, ll) != NGX_OK) {
        return NULL;
    }

    p = last;
    last = ngx_http_slora_resp_head(p, ctx, "response.content_part.done");
    last = ngx_http_slora_resp_at(last, ctx, k);
    last = ngx_http_slora_lit(last, ",\"content_index\":0,\"part\":");
    last = reasoning ? ngx_http_slora_resp_reason_part(last, text, it->len)
                     : ngx_http_slora_resp_part(last, resp, text, it->len);
    *last++ = '}';

    if (ngx_http_slora_resp_send(r, ctx, "response.content_part.done", p,
                                 last, ll)
        != NGX_OK)
    {
        return NULL;
    }

    return last;
}


/* Appends text to the answer's kept text and to the open item. */
static ngx_int_t
ngx_http_slora_resp_keep(ngx_http_request_t *r, ngx_http_slora_resp_t *resp,
    const u_char *text, size_t len)
{
    if (ngx_http_slora_lp_put(r, &resp->kept, text, len) != NGX_OK) {
        return NGX_ERROR;
    }

    resp->item[resp->n_items - 1].len += len;

    return NGX_OK;
}


/* Moves the choice's waiting log-probability entries to the message's. */
static ngx_int_t
ngx_http_slora_resp_keep_lp(ngx_http_request_t *r,
    ngx_http_slora_resp_t *resp, ngx_http_slora_choice_t *ch)
{
    ngx_http_slora_lpbuf_t  *lp;

    lp = &ch->lp.part[0];

    if (lp->len == 0) {
        return NGX_OK;
    }

    if ((resp->kept_lp.len > 0
         && ngx_http_slora_lp_put(r, &resp->kept_lp, (u_char *) ",", 1)
            != NGX_OK)
        || ngx_http_slora_lp_put(r, &resp->kept_lp, lp->data, lp->len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    lp->len = 0;
    ch->lp.n = 0;

    return NGX_OK;
}


/* Frames p..last as the event type. */
static ngx_int_t
ngx_http_slora_resp_send(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const char *type, u_char *p, u_char *last, ngx_chain_t ***ll)
{
    return ngx_http_slora_emit_event(r, ctx, type, p, last - p, ll);
}


/* An event's start: its type and sequence_number (the next). */
static u_char *
ngx_http_slora_resp_head(u_char *p, ngx_http_slora_ctx_t *ctx,
    const char *type)
{
    return ngx_sprintf(p, "{\"type\":\"%s\",\"sequence_number\":%ui", type,
                       ctx->resp->seq++);
}


/* Item k's item_id and output_index. */
static u_char *
ngx_http_slora_resp_at(u_char *p, ngx_http_slora_ctx_t *ctx, ngx_uint_t k)
{
    p = ngx_http_slora_lit(p, ",\"item_id\":");
    p = ngx_http_slora_resp_item_id(p, ctx, k);
    return ngx_sprintf(p, ",\"output_index\":%ui", k);
}


/* Item k's id: msg_, fc_ or rs_ by its kind. */
static u_char *
ngx_http_slora_resp_item_id(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_uint_t k)
{
    static const char  *prefix[] = { "msg_", "fc_", "rs_" };

    return ngx_http_slora_resp_id(p, ctx, prefix[ctx->resp->item[k].kind], k);
}


/* Item k as an output item; base NULL: as it starts (no text yet). */
static u_char *
ngx_http_slora_resp_item(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_resp_t *resp, const u_char *base, ngx_uint_t k,
    const char *status)
{
    const u_char           *text;
    ngx_http_slora_item_t  *it;

    static const char  *type[] = { "message", "function_call", "reasoning" };

    it = &resp->item[k];
    text = it->text != NULL ? it->text : base != NULL ? base + it->off : NULL;

    p = ngx_http_slora_lit(p, "{\"id\":");
    p = ngx_http_slora_resp_item_id(p, ctx, k);
    p = ngx_sprintf(p, ",\"type\":\"%s\",\"status\":\"%s\"",
                    type[it->kind], status);

    if (it->kind == NGX_HTTP_SLORA_ITEM_REASONING) {
        p = ngx_http_slora_lit(p, ",\"summary\":[],\"content\":[");

        if (text != NULL) {
            p = ngx_http_slora_resp_reason_part(p, text, it->len);
        }

        *p++ = ']';

    } else if (it->kind == NGX_HTTP_SLORA_ITEM_CALL) {
        p = ngx_http_slora_lit(p, ",\"call_id\":");
        p = ngx_http_slora_resp_id(p, ctx, "call_", k);
        p = ngx_http_slora_lit(p, ",\"name\":");
        p = ngx_http_slora_json_cstr(p, it->name);
        p = ngx_http_slora_lit(p, ",\"arguments\":");
        p = text != NULL ? ngx_http_slora_json_str(p, text, it->len)
                         : ngx_http_slora_lit(p, "\"\"");

    } else {
        p = ngx_http_slora_lit(p, ",\"role\":\"assistant\",\"content\":[");

        if (text != NULL) {
            p = ngx_http_slora_resp_part(p, resp, text, it->len);
        }

        *p++ = ']';
    }

    *p++ = '}';

    return p;
}


/* A reasoning_text part. */
static u_char *
ngx_http_slora_resp_reason_part(u_char *p, const u_char *text, size_t len)
{
    p = ngx_http_slora_lit(p, "{\"type\":\"reasoning_text\",\"text\":");
    p = ngx_http_slora_json_str(p, text, len);
    *p++ = '}';

    return p;
}


/* An output_text part, with the message's entries (resp NULL: none
 * yet). */
static u_char *
ngx_http_slora_resp_part(u_char *p, ngx_http_slora_resp_t *resp,
    const u_char *text, size_t len)
{
    p = ngx_http_slora_lit(p, "{\"type\":\"output_text\",\"text\":");
    p = ngx_http_slora_json_str(p, text, len);
    p = ngx_http_slora_lit(p, ",\"annotations\":[],\"logprobs\":[");

    if (resp != NULL) {
        p = ngx_http_slora_resp_raw(p, &resp->kept_lp);
    }

    return ngx_http_slora_lit(p, "]}");
}


/*
 * The response object: status, the error (code given) or why it is
 * incomplete, the request's echoed fields, the items with their text in
 * base (NULL: none yet) and, once it ended, the usage.
 */
static u_char *
ngx_http_slora_resp_object(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_resp_t *resp, const u_char *base, const char *status,
    const char *code, const u_char *msg, size_t len)
{
    int32_t     n;
    ngx_uint_t  k, done, incomplete;

    incomplete = ngx_strcmp(status, "incomplete") == 0;
    done = incomplete || ngx_strcmp(status, "completed") == 0;

    p = ngx_http_slora_lit(p, "{\"id\":");
    p = ngx_http_slora_json_str(p, ctx->id, ctx->id_len);
    p = ngx_sprintf(p, ",\"object\":\"response\",\"created_at\":%T,"
                    "\"status\":\"%s\",\"background\":%s,\"error\":",
                    ctx->created, status,
                    ctx->resp_background ? "true" : "false");

    if (code != NULL) {
        p = ngx_http_slora_lit(p, "{\"code\":");
        p = ngx_http_slora_json_cstr(p, code);
        p = ngx_http_slora_lit(p, ",\"message\":");
        p = ngx_http_slora_json_str(p, msg, len);
        *p++ = '}';

    } else {
        p = ngx_http_slora_lit(p, "null");
    }

    p = ngx_http_slora_lit(p, ",\"incomplete_details\":");
    p = incomplete
        ? ngx_http_slora_lit(p, "{\"reason\":\"max_output_tokens\"}")
        : ngx_http_slora_lit(p, "null");

    *p++ = ',';
    p = ngx_cpymem(p, ctx->resp_echo.data, ctx->resp_echo.len);
    p = ngx_http_slora_lit(p, ",\"model\":");
    p = ngx_http_slora_json_str(p, ctx->model.data, ctx->model.len);
    p = ngx_http_slora_lit(p, ",\"output\":[");

    for (k = 0; base != NULL && k < resp->n_items; k++) {
        if (k) {
            *p++ = ',';
        }

        p = ngx_http_slora_resp_item(p, ctx, resp, base, k,
                                     done ? status : "incomplete");
    }

    p = ngx_http_slora_lit(p, "],\"previous_response_id\":");
    p = ctx->resp_prev.len
        ? ngx_http_slora_json_str(p, ctx->resp_prev.data, ctx->resp_prev.len)
        : ngx_http_slora_lit(p, "null");
    p = ngx_sprintf(p, ",\"reasoning\":{\"effort\":null,\"summary\":null},"
                    "\"service_tier\":\"default\",\"store\":%s,"
                    "\"usage\":",
                    ctx->resp_store ? "true" : "false");

    if (!done) {
        p = ngx_http_slora_lit(p, "null}");
        return p;
    }

    n = ngx_http_slora_completion_tokens(ctx);

    return ngx_sprintf(p, "{\"input_tokens\":%D,\"input_tokens_details\":"
                       "{\"cached_tokens\":%D},\"output_tokens\":%D,"
                       "\"output_tokens_details\":{\"reasoning_tokens\":%D},"
                       "\"total_tokens\":%D}}",
                       ctx->n_prompt, ngx_http_slora_cached_tokens(ctx), n,
                       ngx_http_slora_reasoning_tokens(ctx), ctx->n_prompt + n);
}


/* Bytes a response object (and an event around it) may take, with extra
 * bytes more. */
static size_t
ngx_http_slora_resp_max(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_resp_t *resp, size_t extra)
{
    size_t      size;
    ngx_uint_t  k;

    size = 2 * NGX_HTTP_SLORA_RESP_OVERHEAD + ctx->resp_echo.len
           + 6 * (ctx->model.len + ctx->resp_prev.len) + resp->kept_lp.len
           + extra;

    for (k = 0; k < resp->n_items; k++) {
        size += NGX_HTTP_SLORA_RESP_OVERHEAD + 6 * resp->item[k].len
                + 6 * sizeof(resp->item[k].name);
    }

    return size;
}


/* "prefix" and the request's random hex, then k's two hex digits, in
 * quotes. */
static u_char *
ngx_http_slora_resp_id(u_char *p, ngx_http_slora_ctx_t *ctx,
    const char *prefix, ngx_uint_t k)
{
    *p++ = '"';
    p = ngx_cpymem(p, prefix, ngx_strlen(prefix));
    p = ngx_cpymem(p, ctx->id + ctx->id_len - NGX_HTTP_SLORA_RESP_ID_LEN,
                   NGX_HTTP_SLORA_RESP_ID_LEN);
    return ngx_sprintf(p, "%02xi\"", k & 0xff);
}


/* completed, or incomplete when max_output_tokens ended the answer. */
static const char *
ngx_http_slora_resp_status(ngx_http_slora_ctx_t *ctx)
{
    const char  *finish;

    finish = ctx->choice[0].finish;

    return finish != NULL && ngx_strcmp(finish, "length") == 0
           ? "incomplete" : "completed";
}


/* The kept text (an answer of no text yet has none: its items are
 * empty, not absent). */
static u_char *
ngx_http_slora_resp_base(ngx_http_slora_resp_t *resp)
{
    return resp->kept.data != NULL ? resp->kept.data : (u_char *) "";
}


/*
 * A response that ended, kept in slora_responses_store (unless store was
 * false, or there is no store): its object obj..obj_end, and its own
 * messages, the request's input and then the answer as chat's assistant
 * message (content: the message's text, or null; reasoning_content: its
 * reasoning, if any, its item's id reasoning_item_id; tool_calls: its
 * calls with their call ids; each with its item's id, item_id), after
 * those of the response it continues, for a later previous_response_id;
 * in a conversation, after a mark naming it, and the input and the
 * answer added to it when it ends (store false or not). how:
 * ngx_http_slora_store_put's (a background answer's record, running, has
 * no items yet: its answer null). NGX_DECLINED: not stored (logged where
 * it did not fit).
 */
static ngx_int_t
ngx_http_slora_resp_record(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_resp_t *resp, const u_char *base, u_char *obj,
    u_char *obj_end, ngx_uint_t how)
{
    u_char                 *p, *conv;
    size_t                  size;
    ngx_int_t               rc;
    ngx_str_t               id, c, o, kept, mark;
    ngx_uint_t              k, calls, text;
    ngx_http_slora_item_t  *it;

    if (!(ctx->resp_store || ctx->resp_conversation.len)
        || ctx->resp_conv.len < 2)
    {
        return NGX_DECLINED;
    }

    size = ctx->resp_conv.len + NGX_HTTP_SLORA_RESP_OVERHEAD;

    for (k = 0; k < resp->n_items; k++) {
        size += NGX_HTTP_SLORA_RESP_OVERHEAD + 6 * resp->item[k].len;
    }

    conv = ngx_pnalloc(r->pool, size);
    if (conv == NULL) {
        return NGX_ERROR;
    }

    /* the request's messages, less the array's end */
    p = ngx_cpymem(conv, ctx->resp_conv.data, ctx->resp_conv.len - 1);

    if (ctx->resp_conv.len > 2) {
        *p++ = ',';
    }

    p = ngx_http_slora_lit(p, "{\"role\":\"assistant\",\"content\":");
    text = 0;
    calls = 0;

    for (k = 0; k < resp->n_items; k++) {
        it = &resp->item[k];

        if (it->kind == NGX_HTTP_SLORA_ITEM_MESSAGE) {
            /* with the id its item had, which the items listed later
             * (input_items, a conversation's) keep */
            p = ngx_http_slora_json_str(p, base + it->off, it->len);
            p = ngx_http_slora_lit(p, ",\"item_id\":");
            p = ngx_http_slora_resp_item_id(p, ctx, k);
            text = 1;
        }
    }

    if (!text) {
        p = ngx_http_slora_lit(p, "null");
    }

    /* its think block as the reasoning_content a reasoning item sent back
     * becomes (engine/slora_openai_resp_items.c): Qwen3's template writes
     * it back in a tool-calling loop that continues this response; with
     * its item's id, which the items listed later keep too */
    for (k = 0; k < resp->n_items; k++) {
        it = &resp->item[k];

        if (it->kind == NGX_HTTP_SLORA_ITEM_REASONING) {
            p = ngx_http_slora_lit(p, ",\"reasoning_content\":");
            p = ngx_http_slora_json_str(p, it->text != NULL
                                           ? it->text : base + it->off,
                                        it->len);
            p = ngx_http_slora_lit(p, ",\"reasoning_item_id\":");
            p = ngx_http_slora_resp_item_id(p, ctx, k);
            break;
        }
    }

    for (k = 0; k < resp->n_items; k++) {
        it = &resp->item[k];

        if (it->kind != NGX_HTTP_SLORA_ITEM_CALL) {
            continue;
        }

        p = calls++ ? ngx_http_slora_lit(p, ",{\"id\":")
                    : ngx_http_slora_lit(p, ",\"tool_calls\":[{\"id\":");
        p = ngx_http_slora_resp_id(p, ctx, "call_", k);
        p = ngx_http_slora_lit(p, ",\"type\":\"function\",\"function\":"
                                  "{\"name\":");
        p = ngx_http_slora_json_cstr(p, it->name);
        p = ngx_http_slora_lit(p, ",\"arguments\":");
        p = ngx_http_slora_json_str(p, base + it->off, it->len);
        p = ngx_http_slora_lit(p, "},\"item_id\":");
        p = ngx_http_slora_resp_item_id(p, ctx, k);
        *p++ = '}';
    }

    if (calls) {
        *p++ = ']';
    }

    p = ngx_http_slora_lit(p, "}]");

    id.data = ctx->id;
    id.len = ctx->id_len;
    c.data = conv;
    c.len = p - conv;
    o.data = obj;
    o.len = obj_end - obj;

    rc = NGX_DECLINED;

    if (ctx->resp_store) {
        /* in a conversation, its own turn after a mark naming the
         * conversation, which holds the rest: previous_response_id is
         * told to continue that instead (engine/slora_openai_responses.c)
         * and input_items passes the mark over; the store takes no copy
         * of the conversation for each of its responses */
        kept = c;

        if (ctx->resp_conversation.len) {
            p = ngx_pnalloc(r->pool, sizeof("[{\"conversation\":}]")
                                     + 6 * ctx->resp_conversation.len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            mark.data = p;
            p = ngx_http_slora_lit(p, "[{\"conversation\":");
            p = ngx_http_slora_json_str(p, ctx->resp_conversation.data,
                                        ctx->resp_conversation.len);
            p = ngx_http_slora_lit(p, "}]");
            mark.len = p - mark.data;

            if (ngx_http_slora_json_join(r->pool, &mark, &c, &kept)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        /* one that does not fit is logged, and the answer goes on */
        rc = ngx_http_slora_store_put(r, &id, &ctx->tenant, &ctx->resp_prev,
                                      &kept, &o, how, 0);
    }

    /* an answer that ended (not a background one cancelled meanwhile):
     * its input and answer added to its conversation */
    if (ctx->resp_conversation.len
        && (how & ~NGX_HTTP_SLORA_STORE_UPDATE) == NGX_HTTP_SLORA_STORE_DONE
        && (!(how & NGX_HTTP_SLORA_STORE_UPDATE) || rc == NGX_OK))
    {
        (void) ngx_http_slora_conv_extend(r, &ctx->resp_conversation,
                                          &ctx->tenant, &c);
    }

    return rc;
}


/* obj (a response object as ngx_http_slora_resp_object writes it, its
 * status the first "status" member: after id, object and created_at,
 * then background and error) with another status, and error (a JSON
 * object) for its null error where not NULL, a copy from r's pool. */
ngx_int_t
ngx_http_slora_resp_restatus(ngx_http_request_t *r, ngx_str_t *obj,
    const char *status, const char *error)
{
    u_char  *p, *q, *e, *last, *copy;
    size_t   len, elen;

    last = obj->data + obj->len;
    p = ngx_strlcasestrn(obj->data, last, (u_char *) "\"status\":\"",
                         sizeof("\"status\":\"") - 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p += sizeof("\"status\":\"") - 1;
    q = ngx_strlchr(p, last, '"');
    if (q == NULL) {
        return NGX_ERROR;
    }

    e = NULL;
    elen = 0;

    if (error != NULL) {
        e = ngx_strlcasestrn(q, last, (u_char *) "\"error\":null",
                             sizeof("\"error\":null") - 2);
        if (e == NULL) {
            return NGX_ERROR;
        }

        e += sizeof("\"error\":") - 1;
        elen = ngx_strlen(error);
    }

    len = ngx_strlen(status);
    copy = ngx_pnalloc(r->pool, obj->len - (q - p) + len + elen);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    last = ngx_cpymem(copy, obj->data, p - obj->data);
    last = ngx_cpymem(last, status, len);

    if (e != NULL) {
        last = ngx_cpymem(last, q, e - q);
        last = ngx_cpymem(last, error, elen);
        q = e + sizeof("null") - 1;
    }

    last = ngx_cpymem(last, q, obj->data + obj->len - q);

    obj->data = copy;
    obj->len = last - copy;

    return NGX_OK;
}


/* b's bytes as they are (an empty buffer may have no data: memcpy's
 * source must not be NULL even for 0 bytes). */
static u_char *
ngx_http_slora_resp_raw(u_char *p, ngx_http_slora_lpbuf_t *b)
{
    return b->len ? ngx_cpymem(p, b->data, b->len) : p;
}
