/*
 * ngx_http_slora_stream.c: a request from the moment its slots are
 * submitted until it ends: each slot's eventfd in the worker's event loop,
 * its published tokens taken (ngx_http_slora_take.c: detokenizing, stop
 * strings), and sending either SSE chunks (stream) or one JSON body at
 * the end. A request for n choices
 * has n slots, one engine request each; its chunks carry their choice's
 * index, the body all n, and the usage their sum.
 *
 * The one idea: the worker reacts to three events and never waits. A
 * slot's eventfd (registered with ngx_get_connection only while the
 * request lives, edge-triggered, so it is drained in the handler) says
 * tokens or the end were published; the client's write event says a slow
 * client has taken what was sent (until then tokens simply stay in the
 * slot, which holds max_tokens, and once the engine has finished a choice
 * they are copied out and the slot goes back); a 500 ms tick enforces the
 * deadline,
 * notices a dead engine within a tick or two, and keeps a gracefully
 * exiting worker alive until its streams end (notes/toolchain.md pitfall
 * e). Output buffers are recycled with ngx_chain_update_chains().
 *
 * A stream's response header waits for the engine's first event (a token,
 * the end, or an error): the engine resolves the tenant and the adapter
 * after the slot is submitted, and a request refused then (403, 404, 503)
 * gets that status rather than a 200 with an error event in it. One
 * choice's failure fails the request: its other slots are let go.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_sse.h"
#include "ngx_http_slora_text.h"


static void ngx_http_slora_wake(ngx_event_t *ev);
static void ngx_http_slora_tick(ngx_event_t *ev);
static void ngx_http_slora_write_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_slora_watch(ngx_http_request_t *r,
    ngx_http_slora_choice_t *ch);
static void ngx_http_slora_pump(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
static ngx_int_t ngx_http_slora_ready(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, slora_queue_t *q);
static ngx_int_t ngx_http_slora_send(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_chain_t *out);
static void ngx_http_slora_keep(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_chain_t *out);
static void ngx_http_slora_detach(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
static ngx_int_t ngx_http_slora_stop(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
static ngx_int_t ngx_http_slora_choice_end(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    ngx_chain_t ***ll);
static void ngx_http_slora_finish(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_chain_t *out, ngx_chain_t **ll);
static void ngx_http_slora_send_last(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_chain_t *out);
static ngx_int_t ngx_http_slora_open(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
static ngx_int_t ngx_http_slora_send_header(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx);
static void ngx_http_slora_choice_release(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch);
static void ngx_http_slora_cleanup(void *data);
static ngx_uint_t ngx_http_slora_generating(ngx_http_slora_ctx_t *ctx,
    slora_queue_t *q);


/* this worker's live eventfd connections, by slot, for exit_process */
static ngx_connection_t  **ngx_http_slora_conns;
static ngx_uint_t          ngx_http_slora_n_conns;


/* A request context with n choices (n may be 0: an error page's). */
ngx_http_slora_ctx_t *
ngx_http_slora_ctx_create(ngx_http_request_t *r, ngx_uint_t n)
{
    ngx_uint_t             i;
    ngx_http_slora_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_slora_ctx_t)
                               + n * sizeof(ngx_http_slora_choice_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->choice = (ngx_http_slora_choice_t *) (ctx + 1);
    ctx->n_choices = n;
    ctx->ttft_ms = -1;

    for (i = 0; i < n; i++) {
        ctx->choice[i].ctx = ctx;
        ctx->choice[i].index = i;
        ctx->choice[i].stop_token = -1;
    }

    return ctx;
}


ngx_int_t
ngx_http_slora_stream_start(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    ngx_uint_t                   i;
    slora_queue_t               *q;
    ngx_http_cleanup_t          *cln;
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        goto failed;
    }

    cln->handler = ngx_http_slora_cleanup;
    cln->data = ctx;

    if (ngx_http_slora_conns == NULL) {
        ngx_http_slora_n_conns = q->geom.n_slots;
        ngx_http_slora_conns = ngx_calloc(ngx_http_slora_n_conns
                                          * sizeof(ngx_connection_t *),
                                          ngx_cycle->log);
        if (ngx_http_slora_conns == NULL) {
            goto failed;
        }
    }

    for (i = 0; i < ctx->n_choices; i++) {
        if (ngx_http_slora_watch(r, &ctx->choice[i]) != NGX_OK) {
            goto failed;
        }
    }

    ctx->deadline = ngx_current_msec + slcf->deadline;
    ctx->tick.handler = ngx_http_slora_tick;
    ctx->tick.data = ctx;
    ctx->tick.log = r->connection->log;
    ngx_add_timer(&ctx->tick, NGX_HTTP_SLORA_TICK_MS);

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_slora_write_handler;

    for (i = 0; i < ctx->n_choices; i++) {
        if (slora_queue_submit(q, ctx->choice[i].slot) != SLORA_OK) {
            goto failed;
        }
    }

    ngx_http_slora_submit_notify();

    return NGX_DONE;

failed:

    ngx_http_slora_stream_release(ctx);
    return NGX_ERROR;
}


/* Puts a choice's slot eventfd into the event loop, its text ready. */
static ngx_int_t
ngx_http_slora_watch(ngx_http_request_t *r, ngx_http_slora_choice_t *ch)
{
    uint64_t           v;
    ngx_int_t          fd;
    ngx_connection_t  *wc;

    fd = ngx_http_slora_slot_fd(ch->slot);
    if (fd == -1 || ch->slot >= ngx_http_slora_n_conns) {
        return NGX_ERROR;
    }

    /* counts left from the slot's previous request */
    while (read(fd, &v, sizeof(v)) > 0) { /* void */ }

    wc = ngx_get_connection(fd, r->connection->log);
    if (wc == NULL) {
        return NGX_ERROR;
    }

    wc->data = ch;
    wc->read->handler = ngx_http_slora_wake;
    wc->read->log = r->connection->log;
    wc->write->log = r->connection->log;
    ch->wc = wc;
    ngx_http_slora_conns[ch->slot] = wc;

    if (ngx_handle_read_event(wc->read, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ch->text == NULL) {
        ch->text_cap = 1024;
        ch->text = ngx_pnalloc(r->pool, ch->text_cap);
        if (ch->text == NULL) {
            return NGX_ERROR;
        }
    }

    slora_detok_init(&ch->detok);

    return NGX_OK;
}


/*
 * The worker is exiting. After a graceful QUIT no stream is left; after
 * TERM (fast shutdown) the streams still open would otherwise just be
 * cut, so each gets its error event (or a 503 before its header) and
 * [DONE] while its connection is still there, and its slots are given
 * back, as when the engine fails. The writes are one attempt each: what
 * the socket does not take is lost with the process.
 */

void
ngx_http_slora_stream_exit_process(void)
{
    ngx_uint_t                i;
    ngx_connection_t         *wc;
    ngx_http_slora_ctx_t     *ctx;
    ngx_http_slora_choice_t  *ch;

    for (i = 0; i < ngx_http_slora_n_conns; i++) {
        wc = ngx_http_slora_conns[i];

        if (wc == NULL) {
            continue;
        }

        ch = wc->data;
        ctx = ch != NULL ? ch->ctx : NULL;

        if (ctx != NULL && !ctx->finished) {
            /* releases the slots and their wc, which clears conns[] */
            ngx_http_slora_stream_fail(ctx->request, ctx,
                                       NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "server_error", "shutting_down",
                                       "the server is shutting down");
        }

        wc = ngx_http_slora_conns[i];

        if (wc != NULL) {
            ngx_free_connection(wc);
            wc->fd = (ngx_socket_t) -1;
            ngx_http_slora_conns[i] = NULL;
        }
    }
}


static void
ngx_http_slora_wake(ngx_event_t *ev)
{
    uint64_t                  v;
    ngx_connection_t         *wc, *c;
    ngx_http_request_t       *r;
    ngx_http_slora_ctx_t     *ctx;
    ngx_http_slora_choice_t  *ch;

    wc = ev->data;
    ch = wc->data;
    ctx = ch->ctx;
    r = ctx->request;
    c = r->connection;

    while (read(wc->fd, &v, sizeof(v)) > 0) { /* void */ }

    ev->ready = 0;

    ngx_http_set_log_request(c->log, r);

    ngx_http_slora_pump(r, ctx);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_slora_tick(ngx_event_t *ev)
{
    uint32_t                     st;
    ngx_uint_t                   i;
    const char                  *down;
    slora_slot_t                *s;
    slora_queue_t               *q;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_slora_ctx_t        *ctx;
    ngx_http_slora_choice_t     *ch;
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    if (ctx->finished) {
        return;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    /* the deadline bounds the engine's work; an answer it has finished
     * is the client's to take within as long again from its end (what
     * it has not taken kept meanwhile: ngx_http_slora_take_keep) */
    if (!ctx->engine_done && !ngx_http_slora_generating(ctx, q)) {
        slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);
        ctx->engine_done = 1;
        ctx->deadline = ngx_current_msec + slcf->deadline;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - ctx->deadline) >= 0) {
        ngx_http_slora_stream_fail(r, ctx, NGX_HTTP_GATEWAY_TIME_OUT,
                                    "timeout", "deadline_exceeded",
                                    ctx->engine_done
                                    ? "The client did not take the answer"
                                      " within slora_deadline of its end"
                                    : "The request ran past its deadline"
                                      " (slora_deadline)");
        goto done;
    }

    /* a background answer cancelled or deleted: its engine request goes,
     * nothing is stored over the record */
    if (ctx->resp_background
        && ngx_http_slora_store_state(r, ctx->id, ctx->id_len, &ctx->tenant,
                                      0)
           != NGX_HTTP_SLORA_STORE_RUNNING)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "slora: background response %*s stopped: cancelled"
                      " or deleted", ctx->id_len, ctx->id);
        ngx_http_slora_stream_release(ctx);
        ctx->finished = 1;
        ngx_http_finalize_request(r, ngx_http_slora_stop(r, ctx));
        goto done;
    }

    for (i = 0; i < ctx->n_choices; i++) {
        ch = &ctx->choice[i];

        if (!ch->have_slot) {
            continue;
        }

        s = slora_queue_slot(q, ch->slot);
        st = atomic_load_explicit(&s->state, memory_order_acquire);

        if (st != SLORA_SLOT_SUBMITTED && st != SLORA_SLOT_RUNNING) {
            continue;
        }

        down = ngx_http_slora_engine_down(q);

        if (down == NULL && st == SLORA_SLOT_RUNNING
            && s->epoch != atomic_load(&q->epoch))
        {
            down = "the engine restarted";
        }

        if (down != NULL) {
            ngx_http_slora_stream_fail(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "server_error", "engine_failed",
                                        down);
            goto done;
        }
    }

    /* a lost wakeup costs a tick, never a hang; the timer is set first
     * because the pump may end the request, and ctx with it */
    ngx_add_timer(&ctx->tick, NGX_HTTP_SLORA_TICK_MS);
    ngx_http_slora_pump(r, ctx);

done:

    ngx_http_run_posted_requests(c);
}


/* 1 while the engine still works on one of the request's choices. */
static ngx_uint_t
ngx_http_slora_generating(ngx_http_slora_ctx_t *ctx, slora_queue_t *q)
{
    uint32_t                  st;
    ngx_uint_t                i;
    ngx_http_slora_choice_t  *ch;

    for (i = 0; i < ctx->n_choices; i++) {
        ch = &ctx->choice[i];

        if (!ch->have_slot) {
            continue;
        }

        st = atomic_load_explicit(&slora_queue_slot(q, ch->slot)->state,
                                  memory_order_acquire);

        if (st != SLORA_SLOT_FINISHED && st != SLORA_SLOT_FAILED) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_slora_write_handler(ngx_http_request_t *r)
{
    ngx_event_t           *wev;
    ngx_http_slora_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_slora_module);
    wev = r->connection->write;

    if (ctx == NULL || ctx->finished) {
        return;
    }

    if (ctx->resp_background && !ctx->stream) {
        /* the "queued" object's bytes the socket did not take at once; a
         * client gone or too slow for them loses only them */
        if (!wev->timedout && !r->connection->error) {
            ngx_http_slora_resp_sent(r, ctx, ngx_http_output_filter(r, NULL));
        }

        return;
    }

    if (wev->timedout && ctx->resp_background) {
        /* a background stream's client too slow: as if it went */
        wev->timedout = 0;
        ngx_http_slora_detach(r, ctx);
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, NGX_ETIMEDOUT,
                      "slora: client timed out");
        r->connection->timedout = 1;
        ngx_http_slora_stream_release(ctx);
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ngx_http_slora_send(r, ctx, NULL) == NGX_ERROR) {
        ngx_http_slora_stream_release(ctx);
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (ctx->busy == NULL) {
        ngx_http_slora_pump(r, ctx);
    }
}


/* Takes what the engine published and moves the request on. */
static void
ngx_http_slora_pump(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    int32_t                      n0;
    uint32_t                     st;
    ngx_int_t                    rc;
    ngx_uint_t                   i, more;
    ngx_chain_t                 *out, **ll;
    slora_slot_t                *s;
    slora_queue_t               *q;
    ngx_http_slora_choice_t     *ch;
    ngx_http_slora_main_conf_t  *smcf;

    if (ctx->finished) {
        return;
    }

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    if (ctx->op != SLORA_OP_GENERATE) {
        ch = &ctx->choice[0];

        if (ch->have_slot) {
            s = slora_queue_slot(q, ch->slot);
            st = atomic_load_explicit(&s->state, memory_order_acquire);
            ngx_http_slora_op_pump(r, ctx, q, st);
        }

        return;
    }

    if (ctx->stream && ctx->busy) {
        /* a slow client: the tokens wait in the slots, or, once finished,
         * in the request's pool */
        ngx_http_slora_take_keep(r, ctx, q);
        return;
    }

    if (ctx->stream && !ctx->header_sent) {
        rc = ngx_http_slora_ready(r, ctx, q);

        if (rc != NGX_OK) {
            return;
        }

        if (ctx->busy) {
            /* a slow client did not take even the header */
            return;
        }
    }

    /* a pass makes at most NGX_HTTP_SLORA_PASS_BYTES of events and sends
     * them; while the client takes each whole, the next pass follows,
     * so a backlog (a client that read again after a stall) goes out
     * through the same few buffers, not one for each of its events */

again:

    out = NULL;
    ll = &out;
    more = 0;
    ctx->pass_bytes = 0;

    for (i = 0; i < ctx->n_choices; i++) {
        ch = &ctx->choice[i];

        if (ch->finished) {
            continue;
        }

        /* the state first: once terminal, n_out is final */
        st = ngx_http_slora_take_state(q, ch);
        n0 = ch->n_done;

        rc = ngx_http_slora_take_tokens(r, ctx, ch, q, &ll);

        if (rc == NGX_AGAIN) {
            /* the pass's share made: the rest of this choice and the
             * choices after it in the next pass */
            ngx_http_slora_take_delivered(q, ch, n0);
            more = 1;
            break;
        }

        if (rc == NGX_OK && st == SLORA_SLOT_FINISHED) {
            ngx_http_slora_take_end(q, ch);

            /* what the detokenizer holds back belongs to the text, unless
             * a stop string cut it (or ends in it) */
            rc = ngx_http_slora_take_rest(r, ctx, ch);

            /* return_token_ids: the stop id the text leaves out ends
             * them, as vLLM's do */
            if (rc == NGX_OK && ctx->return_ids && ch->stop_token >= 0) {
                rc = ngx_http_slora_ids_add(r, ch, ch->stop_token);
            }

            if (rc == NGX_OK) {
                rc = NGX_DONE;
            }

        } else if (rc == NGX_DONE) {
            /* a stop string matched */
            ch->finish = "stop";
        }

        if (rc == NGX_ERROR) {
            ngx_http_slora_stream_fail(r, ctx,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "server_error", "internal_error",
                                        "The output could not be decoded");
            return;
        }

        if (ctx->stream) {
            ngx_http_slora_take_delivered(q, ch, n0);
        }

        if (rc == NGX_DONE) {
            if (ngx_http_slora_choice_end(r, ctx, ch, &ll) != NGX_OK) {
                goto failed;
            }

            continue;
        }

        if (st == SLORA_SLOT_FAILED) {
            if (out && ngx_http_slora_send(r, ctx, out) == NGX_ERROR) {
                goto failed;
            }

            ngx_http_slora_choice_fail(r, ctx, ch, q);
            return;
        }
    }

    if (ctx->n_finished == ctx->n_choices) {
        ngx_http_slora_finish(r, ctx, out, ll);
        return;
    }

    if (out == NULL) {
        return;
    }

    if (ngx_http_slora_send(r, ctx, out) != NGX_ERROR) {
        if (more && ctx->busy == NULL) {
            goto again;
        }

        if (ctx->busy) {
            ngx_http_slora_take_keep(r, ctx, q);
        }

        return;
    }

failed:

    ngx_http_slora_stream_release(ctx);
    ngx_http_finalize_request(r, NGX_ERROR);
}


/*
 * A stream's header goes out with the engine's first event for any of its
 * choices: NGX_OK once sent. A choice refused before any token fails the
 * request with the engine's status instead (NGX_DONE).
 */
static ngx_int_t
ngx_http_slora_ready(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    slora_queue_t *q)
{
    uint32_t                  st;
    ngx_uint_t                i, ready;
    ngx_http_slora_choice_t  *ch;

    ready = 0;

    for (i = 0; i < ctx->n_choices; i++) {
        ch = &ctx->choice[i];
        st = ngx_http_slora_take_state(q, ch);

        if (st == SLORA_SLOT_FINISHED
            || atomic_load_explicit(&slora_queue_slot(q, ch->slot)->n_out,
                                    memory_order_acquire) > 0)
        {
            ready = 1;

        } else if (st == SLORA_SLOT_FAILED) {
            /* refused before any token: a real status */
            ngx_http_slora_choice_fail(r, ctx, ch, q);
            return NGX_DONE;
        }
    }

    if (!ready) {
        return NGX_AGAIN;
    }

    if (ngx_http_slora_open(r, ctx) != NGX_OK) {
        ngx_http_slora_stream_release(ctx);
        ngx_http_finalize_request(r, NGX_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Sends ch->text[0..len) as one chunk event and drops it from text. */
ngx_int_t
ngx_http_slora_emit_text(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, size_t len, ngx_chain_t ***ll)
{
    u_char  *p, *last;

    if (ctx->resp != NULL) {
        if (ngx_http_slora_resp_text(r, ctx, ch, ch->text, len, ll)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ctx->plain) {
        if (ngx_http_slora_emit(r, ctx, ch->text, len, ll) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        p = ngx_http_slora_scratch(r, ctx,
                                   ngx_http_slora_chunk_max(ctx, ch, len));
        if (p == NULL) {
            return NGX_ERROR;
        }

        last = ngx_http_slora_chunk_json(p, ctx, ch, ch->text, len, NULL, 0);

        if (ngx_http_slora_emit(r, ctx, p, last - p, ll) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    ngx_memmove(ch->text, ch->text + len, ch->text_len - len);
    ch->text_len -= len;
    ch->tool_blank = 0;

    return NGX_OK;
}


/* Frames data as one SSE event (a plain stream: as it is) into a
 * recycled buffer linked at **ll. */
ngx_int_t
ngx_http_slora_emit(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const u_char *data, size_t len, ngx_chain_t ***ll)
{
    return ngx_http_slora_emit_event(r, ctx, NULL, data, len, ll);
}


/*
 * Room for one event's JSON before ngx_http_slora_emit_event frames it
 * (a copy into a recycled buffer): the same bytes for every event of
 * the request, grown as an event needs, so that a long stream's memory
 * does not grow by an event's worth a token.
 */
u_char *
ngx_http_slora_scratch(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    size_t size)
{
    if (size <= ctx->scratch_cap) {
        return ctx->scratch;
    }

    if (ctx->scratch != NULL) {
        ngx_pfree(r->pool, ctx->scratch);
    }

    size = ngx_max(size, 2 * ctx->scratch_cap);

    ctx->scratch = ngx_pnalloc(r->pool, size);
    ctx->scratch_cap = ctx->scratch != NULL ? size : 0;

    return ctx->scratch;
}


/* The same, the event named (NULL: unnamed). */
ngx_int_t
ngx_http_slora_emit_event(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    const char *event, const u_char *data, size_t len, ngx_chain_t ***ll)
{
    size_t        need, size;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    need = ctx->plain ? len : ngx_http_slora_sse_frame(NULL, 0, event, data,
                                                        len);
    ctx->pass_bytes += need;

    cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;

    if (b->start == NULL || (size_t) (b->end - b->start) < need) {
        size = ngx_max(need, 1024);

        b->start = ngx_palloc(r->pool, size);
        if (b->start == NULL) {
            return NGX_ERROR;
        }

        b->end = b->start + size;
    }

    b->pos = b->start;
    b->last = ctx->plain
              ? ngx_cpymem(b->start, data, len)
              : b->start + ngx_http_slora_sse_frame(b->start,
                                                    b->end - b->start,
                                                    event, data, len);
    b->temporary = 1;
    b->flush = 0;
    b->last_buf = 0;
    b->last_in_chain = 0;
    b->tag = (ngx_buf_tag_t) &ngx_http_slora_module;

    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}


/* Sends out (or, with NULL, what is pending) and recycles sent buffers;
 * arms the write event while a slow client holds some. */
static ngx_int_t
ngx_http_slora_send(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_chain_t *out)
{
    ngx_int_t                  rc;
    ngx_chain_t               *cl;
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    for (cl = out; cl; cl = cl->next) {
        if (cl->next == NULL) {
            cl->buf->flush = 1;
        }
    }

    rc = NGX_OK;

    ngx_http_slora_keep(r, ctx, out);

    if (!ctx->detached) {
        rc = ngx_http_output_filter(r, out);

        if (rc == NGX_ERROR && !ctx->resp_background) {
            return NGX_ERROR;
        }

        if (rc == NGX_ERROR) {
            ngx_http_slora_detach(r, ctx);
            rc = NGX_OK;
        }
    }

    if (ctx->detached) {
        /* the client went: its bytes go nowhere, its buffers back */
        for (cl = out; cl; cl = cl->next) {
            cl->buf->pos = cl->buf->last;
        }
    }

    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_slora_module);

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (ctx->busy) {
        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    return rc;
}


/* A background stream's events kept in the store, whether its client is
 * there or not, for GET ?stream=true (ngx_http_slora_resume.c). */
static void
ngx_http_slora_keep(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_chain_t *out)
{
    if (ctx->resp_background && ctx->stream && out != NULL) {
        (void) ngx_http_slora_store_append(r, ctx->id, ctx->id_len,
                                           &ctx->tenant, out, 0);
    }
}


/* A background stream's client went (a write failed, or send_timeout
 * passed): nothing more is sent, and the answer goes on to the store. */
static void
ngx_http_slora_detach(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    if (ctx->detached) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "slora: the client of background response %*s went; its"
                  " answer goes on", ctx->id_len, ctx->id);

    ctx->detached = 1;

    /* what waited for the client stays in nginx's output chain (which
     * still points at those buffers) until the request ends: none of
     * them is taken back for new events */
    ctx->busy = NULL;
}


/*
 * The end of a background answer cancelled or deleted while it ran: no
 * last event (the stored object says what became of it), but a stream
 * whose client is still there ends as a body does, so that the client
 * sees the end rather than waiting on an open one; a client that went
 * has nothing to end.
 */
static ngx_int_t
ngx_http_slora_stop(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    if (!ctx->stream) {
        /* the client had the "queued" object */
        return NGX_OK;
    }

    if (ctx->detached || !ctx->header_sent) {
        return NGX_ERROR;
    }

    return ngx_http_send_special(r, NGX_HTTP_LAST);
}


/* A choice's end: its slot let go, its answer read as calls when there
 * were tools, and, in a stream, its last text and the chunk with its
 * finish_reason. */
static ngx_int_t
ngx_http_slora_choice_end(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, ngx_chain_t ***ll)
{
    u_char  *p, *last;
    size_t   len;

    ngx_http_slora_choice_release(ctx, ch);
    ch->finished = 1;
    ctx->n_finished++;

    /* the think block's rest, all of it now */
    len = ch->text_len;

    if (ngx_http_slora_think_take(r, ctx, ch, &len, 1, ll) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!ctx->stream) {
        if (ctx->tools
            && ngx_http_slora_tool_read(r, ctx, ch) != NGX_OK)
        {
            return NGX_ERROR;
        }

        ch->finish = ngx_http_slora_tool_finish(ctx, ch);
        return NGX_OK;
    }

    /* the held-back rest: calls, or text (also what never became one) */
    if (ctx->tools && !ch->tool_text && ch->text_len
        && ngx_http_slora_tool_take(r, ctx, ch, ch->text_len, ll) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ch->text_len
        && ngx_http_slora_emit_text(r, ctx, ch, ch->text_len, ll) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ch->finish = ngx_http_slora_tool_finish(ctx, ch);

    if (ctx->resp != NULL) {
        return ngx_http_slora_resp_end(r, ctx, ch, ll);
    }

    if (ctx->plain) {
        /* no finish_reason in bare text: the text ends its line */
        return ngx_http_slora_emit(r, ctx, (u_char *) "\n", 1, ll);
    }

    p = ngx_pnalloc(r->pool, ngx_http_slora_chunk_max(ctx, ch, 0));
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_http_slora_chunk_json(p, ctx, ch, (u_char *) "", 0,
                                     ch->finish, 0);

    return ngx_http_slora_emit(r, ctx, p, last - p, ll);
}


/* A choice (or an op's slot) the engine failed fails its request, with the
 * engine's status and message. */
void
ngx_http_slora_choice_fail(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, slora_queue_t *q)
{
    ngx_uint_t     status;
    slora_slot_t  *s;

    s = slora_queue_slot(q, ch->slot);

    /* the engine's word, but a status of a client or server error only:
     * nginx writes the status line in three digits */
    status = s->err_status >= 400 && s->err_status <= 599
             ? (ngx_uint_t) s->err_status : NGX_HTTP_INTERNAL_SERVER_ERROR;
    ctx->retry_after = s->retry_after > 0 ? (ngx_uint_t) s->retry_after : 0;

    ngx_http_slora_stream_fail(r, ctx, status,
                               ngx_http_slora_error_type(status),
                               s->err_code[0]
                               ? s->err_code
                               : ngx_http_slora_error_code(status),
                               s->err);
}


/* The end of a request whose choices all ended: usage and [DONE] after the
 * events in out (stream), or the whole JSON body. */
static void
ngx_http_slora_finish(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_chain_t *out, ngx_chain_t **ll)
{
    u_char     *p, *last;
    ngx_int_t   rc;
    ngx_buf_t  *b;

    ngx_http_slora_stream_release(ctx);
    ctx->finished = 1;

    if (!ctx->stream) {
        b = ctx->resp != NULL ? ngx_http_slora_resp_body(r, ctx)
                              : ngx_http_slora_response_json(r, ctx);
        if (b == NULL) {
            ngx_http_finalize_request(r, ctx->resp_background
                                         ? NGX_ERROR
                                         : NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (ctx->resp_background) {
            /* stored by resp_body; the client had its answer */
            ngx_http_finalize_request(r, NGX_OK);
            return;
        }

        rc = ngx_http_slora_send_body(r, NGX_HTTP_OK, b, "application/json");
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->resp != NULL) {
        /* the Responses API's stream ends with its last event */
        if (ngx_http_slora_resp_finish(r, ctx, &ll) != NGX_OK) {
            goto failed;
        }

        ngx_http_slora_send_last(r, ctx, out);
        return;
    }

    if (ctx->plain) {
        /* its line ended (ngx_http_slora_choice_end) */
        ngx_http_slora_send_last(r, ctx, out);
        return;
    }

    if (ctx->include_usage) {
        p = ngx_pnalloc(r->pool, ngx_http_slora_chunk_max(ctx, NULL, 0));
        if (p == NULL) {
            goto failed;
        }

        last = ngx_http_slora_usage_json(p, ctx);
        if (ngx_http_slora_emit(r, ctx, p, last - p, &ll) != NGX_OK) {
            goto failed;
        }
    }

    if (ngx_http_slora_emit(r, ctx, (u_char *) "[DONE]", 6, &ll) != NGX_OK) {
        goto failed;
    }

    ngx_http_slora_send_last(r, ctx, out);
    return;

failed:

    ngx_http_finalize_request(r, NGX_ERROR);
}


void
ngx_http_slora_stream_fail(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_uint_t status, const char *type, const char *code, const char *msg)
{
    u_char       *p, *last, copy[SLORA_QUEUE_ERR_LEN];
    u_char        code_copy[SLORA_QUEUE_CODE_LEN];
    size_t        len;
    ngx_uint_t    i;
    ngx_chain_t  *out, **ll;

    /* msg and code may live in a slot, which is gone once released */
    ngx_cpystrn(copy, (u_char *) msg, sizeof(copy));
    msg = (const char *) copy;
    ngx_cpystrn(code_copy, (u_char *) code, sizeof(code_copy));
    code = (const char *) code_copy;

    ngx_http_slora_stream_release(ctx);
    ctx->finished = 1;

    for (i = 0; i < ctx->n_choices; i++) {
        ctx->choice[i].finish = NULL;
    }

    if (ctx->resp_background) {
        /* the failure is the stored answer's too; a client that had the
         * "queued" object hears nothing more, a stream's its events */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "slora: background response %*s failed: %s",
                      ctx->id_len, ctx->id, msg);
        (void) ngx_http_slora_resp_mark(r, ctx, "failed", code,
                                        (u_char *) msg, ngx_strlen(msg),
                                        NGX_HTTP_SLORA_STORE_FAILED
                                        | NGX_HTTP_SLORA_STORE_UPDATE);

        if (!ctx->stream) {
            ngx_http_finalize_request(r, NGX_OK);
            return;
        }
    }

    if (!ctx->header_sent) {
        ngx_http_finalize_request(r,
            ngx_http_slora_send_error(r, status, type, code, NULL, "%s",
                                      msg));
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "slora: stream failed: %s", msg);

    len = ngx_strlen(msg);

    p = ngx_pnalloc(r->pool, ngx_http_slora_error_max(len));
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    last = ctx->plain
           ? ngx_sprintf(p, "\n[error] %s: %s\n", code, msg)
           : ngx_http_slora_error_json(p, type, code, NULL, (u_char *) msg,
                                       len);

    out = NULL;
    ll = &out;

    /* an error event and [DONE]; a plain stream's line of error */
    if (ctx->resp != NULL
        ? ngx_http_slora_resp_fail(r, ctx, code, (u_char *) msg, len, &ll)
          != NGX_OK
        : (ngx_http_slora_emit(r, ctx, p, last - p, &ll) != NGX_OK
           || (!ctx->plain
               && ngx_http_slora_emit(r, ctx, (u_char *) "[DONE]", 6, &ll)
                  != NGX_OK)))
    {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    ngx_http_slora_send_last(r, ctx, out);
}


/* Sends the stream's last events with last_buf and ends the request. */
static void
ngx_http_slora_send_last(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_chain_t *out)
{
    ngx_chain_t  *cl;

    ngx_http_slora_keep(r, ctx, out);

    if (ctx->detached) {
        /* a background stream's client went: its events are kept, and
         * the connection goes with the request */
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    for (cl = out; cl->next; cl = cl->next) { /* void */ }

    cl->buf->flush = 1;
    cl->buf->last_buf = (r == r->main) ? 1 : 0;
    cl->buf->last_in_chain = 1;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, out));
}


/* A stream's header and, for chat, each choice's role chunk and its
 * echo's (for the Responses API its first events): sent when the engine
 * has something for it. */
static ngx_int_t
ngx_http_slora_open(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    u_char       *p;
    size_t        n;
    ngx_uint_t    i;
    ngx_chain_t  *out, **ll;

    if (ngx_http_slora_send_header(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    out = NULL;
    ll = &out;

    if (ctx->resp != NULL) {
        if (ngx_http_slora_resp_open(r, ctx, &ll) != NGX_OK
            || ngx_http_slora_send(r, ctx, out) == NGX_ERROR)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ctx->kind != NGX_HTTP_SLORA_CHAT || ctx->plain) {
        return NGX_OK;
    }

    for (i = 0; i < ctx->n_choices; i++) {
        p = ngx_pnalloc(r->pool, ngx_http_slora_chunk_max(ctx,
                                                          &ctx->choice[i],
                                                          0));
        if (p == NULL) {
            return NGX_ERROR;
        }

        n = ngx_http_slora_chunk_json(p, ctx, &ctx->choice[i], NULL, 0,
                                      NULL, 1)
            - p;

        if (ngx_http_slora_emit(r, ctx, p, n, &ll) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->chat_echo.len == 0) {
            continue;
        }

        /* vLLM's chat echo: the last message's text, a chunk of its own
         * after the role's */
        p = ngx_pnalloc(r->pool, ngx_http_slora_chunk_max(ctx,
                                                          &ctx->choice[i],
                                                          ctx->chat_echo.len));
        if (p == NULL) {
            return NGX_ERROR;
        }

        n = ngx_http_slora_chunk_json(p, ctx, &ctx->choice[i],
                                      ctx->chat_echo.data, ctx->chat_echo.len,
                                      NULL, 0)
            - p;

        if (ngx_http_slora_emit(r, ctx, p, n, &ll) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_slora_send(r, ctx, out) == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* A background stream's header and its response.created ("queued") at
 * once, before the engine has anything for it: whatever the wait, its
 * client has the response's id, to pick the stream up again or cancel
 * it (the engine's first token brings response.in_progress, a refusal
 * the error event and response.failed). */
ngx_int_t
ngx_http_slora_stream_accept(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    ngx_chain_t  *out, **ll;

    out = NULL;
    ll = &out;

    if (ngx_http_slora_send_header(r, ctx) != NGX_OK
        || ngx_http_slora_resp_state(r, ctx, "response.created", "queued",
                                     &ll)
           != NGX_OK
        || ngx_http_slora_send(r, ctx, out) == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_slora_send_header(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    if (ngx_http_slora_stream_header(r, ctx->plain) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->header_sent = 1;

    return NGX_OK;
}


/* A stream's header: 200, text/event-stream (plain: text/plain, bare
 * UTF-8 text), not cached, not buffered by a proxy in front. */
ngx_int_t
ngx_http_slora_stream_header(ngx_http_request_t *r, ngx_uint_t plain)
{
    ngx_int_t  rc;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = -1;

    if (plain) {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; charset=utf-8");

    } else {
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    if (ngx_http_slora_add_header(r, "Cache-Control", "no-cache") != NGX_OK
        || ngx_http_slora_add_header(r, "X-Accel-Buffering", "no")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Lets go of every slot of the request and its tick (idempotent). */
void
ngx_http_slora_stream_release(ngx_http_slora_ctx_t *ctx)
{
    ngx_uint_t  i;

    if (ctx->tick.timer_set) {
        ngx_del_timer(&ctx->tick);
    }

    for (i = 0; i < ctx->n_choices; i++) {
        ngx_http_slora_choice_release(ctx, &ctx->choice[i]);
    }
}


/* Lets go of a choice's slot and counts the tokens it gave (idempotent). */
static void
ngx_http_slora_choice_release(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch)
{
    slora_queue_t               *q;
    ngx_http_slora_main_conf_t  *smcf;

    ngx_http_slora_choice_let_go(ctx, ch);

    if (ch->counted) {
        return;
    }

    ch->counted = 1;

    smcf = ngx_http_get_module_main_conf(ctx->request, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);

    atomic_fetch_add_explicit(&q->tokens_completion,
                              ngx_http_slora_choice_tokens(ch),
                              memory_order_relaxed);
}


/*
 * Lets go of a choice's slot and eventfd (idempotent); a kept choice's
 * tokens are still to be taken. A slot the engine still runs gets its
 * cancel flag; the engine frees its pages at the next step and, holding
 * the last bit, returns the slot to FREE. The prompt's tokens count once
 * a request that reached the engine, with its first choice.
 */
void
ngx_http_slora_choice_let_go(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch)
{
    uint32_t                     st;
    slora_slot_t                *s;
    slora_queue_t               *q;
    ngx_connection_t            *wc;
    ngx_http_slora_main_conf_t  *smcf;

    wc = ch->wc;

    if (wc != NULL) {
        if (wc->read->active) {
            ngx_del_event(wc->read, NGX_READ_EVENT, 0);
        }

        /* a wakeup posted in the same batch as what ends the request
         * (accept_mutex on posts them) must not run after it */
        if (wc->read->posted) {
            ngx_delete_posted_event(wc->read);
        }

        ngx_free_connection(wc);
        wc->fd = (ngx_socket_t) -1;
        ngx_http_slora_conns[ch->slot] = NULL;
        ch->wc = NULL;
    }

    if (!ch->have_slot) {
        return;
    }

    smcf = ngx_http_get_module_main_conf(ctx->request, ngx_http_slora_module);
    q = ngx_http_slora_queue(smcf);
    s = slora_queue_slot(q, ch->slot);

    st = atomic_load_explicit(&s->state, memory_order_acquire);

    if (st == SLORA_SLOT_SUBMITTED || st == SLORA_SLOT_RUNNING) {
        atomic_store(&s->cancel, 1);
        ngx_http_slora_submit_notify();
    }

    slora_queue_release(q, ch->slot, SLORA_REF_WORKER);
    ch->have_slot = 0;

    if (ch->index == 0 && st != SLORA_SLOT_CLAIMED) {
        atomic_fetch_add_explicit(&q->tokens_prompt, ctx->n_prompt,
                                  memory_order_relaxed);
    }
}


static void
ngx_http_slora_cleanup(void *data)
{
    ngx_http_slora_ctx_t  *ctx = data;

    static u_char  ended[] = "the request ended before its answer";

    ngx_http_slora_stream_release(ctx);

    /* a background answer's request ended some other way: its record is
     * not left running (unevictable) for ever */
    if (ctx->resp_background && !ctx->finished) {
        ctx->finished = 1;
        (void) ngx_http_slora_resp_mark(ctx->request, ctx, "failed",
                                        "request_ended", ended,
                                        sizeof(ended) - 1,
                                        NGX_HTTP_SLORA_STORE_FAILED
                                        | NGX_HTTP_SLORA_STORE_UPDATE);
    }

    /* its kept events are all there will be */
    if (ctx->resp_background && ctx->stream) {
        (void) ngx_http_slora_store_append(ctx->request, ctx->id,
                                           ctx->id_len, &ctx->tenant, NULL,
                                           1);
    }
}
