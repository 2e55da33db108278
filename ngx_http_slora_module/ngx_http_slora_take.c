/*
 * ngx_http_slora_take.c: a choice's tokens taken from its slot: each
 * published token counted (time to first token, the gaps between), its
 * log-probabilities read, detokenized into the choice's text (the marks
 * of calls and think blocks kept as text, other control tokens hidden),
 * held back while a stop string may still be forming, and handed on as
 * text (ngx_http_slora_emit_text); a completion's echoed prompt first.
 *
 * The one idea: the slot holds every token until the worker takes it, so
 * taking is a read of what was published since the last take, at the
 * worker's pace: a slow client leaves them in the slot, not in memory,
 * and a client that reads again after a stall takes them a pass of
 * events at a time, not all at once.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"


static ngx_int_t ngx_http_slora_take_echo(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    slora_queue_t *q, ngx_chain_t ***ll);
static ngx_uint_t ngx_http_slora_shown(ngx_http_slora_ctx_t *ctx,
    int32_t token);


/*
 * Detokenizes a choice's newly published tokens into ch->text and, when
 * streaming, turns what no stop string can still claim into chunk events.
 * NGX_DONE: a stop string matched and ch->text ends before it; NGX_AGAIN:
 * the pump's pass made its share of events (NGX_HTTP_SLORA_PASS_BYTES),
 * the rest stays in the slot for the next.
 */
ngx_int_t
ngx_http_slora_take_tokens(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, slora_queue_t *q, ngx_chain_t ***ll)
{
    size_t                  from, match, safe, which, chars;
    int32_t                 n, k, *tokens;
    ngx_int_t               rc;
    int64_t                 now;
    slora_slot_t           *s;
    ngx_http_slora_text_t   stops[NGX_HTTP_SLORA_MAX_STOPS];
    ngx_uint_t              i;

    s = slora_queue_slot(q, ch->slot);
    n = atomic_load_explicit(&s->n_out, memory_order_acquire);

    /* the zone is another process's: a count past the slot's room is
     * an engine gone wrong, not tokens to read */
    if (n < 0 || (uint32_t) n > q->geom.output_cap) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "slora: slot %uD says %D tokens, more than its %uD",
                      ch->slot, n, q->geom.output_cap);
        return NGX_ERROR;
    }

    if (ctx->echo && !ch->echoed
        && (n > 0 || atomic_load_explicit(&s->state, memory_order_acquire)
                     == SLORA_SLOT_FINISHED)
        && ngx_http_slora_take_echo(r, ctx, ch, q, ll) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (n <= ch->n_done) {
        return NGX_OK;
    }

    now = slora_now_ns();

    if (ch->n_done == 0) {
        if (ctx->ttft_ms < 0) {
            ctx->ttft_ms = (ngx_int_t) ((now - ctx->t_start_ns) / 1000000);
            slora_hist_observe(&q->ttft_seconds,
                               (now - ctx->t_start_ns) / 1e9);

            if (ctx->resp_background
                && (ngx_http_slora_resp_mark(r, ctx, "in_progress", NULL,
                                             NULL, 0,
                                             NGX_HTTP_SLORA_STORE_RUNNING
                                             | NGX_HTTP_SLORA_STORE_UPDATE)
                    == NGX_ERROR
                    || (ctx->stream
                        && ngx_http_slora_resp_state(r, ctx,
                                                     "response.in_progress",
                                                     "in_progress", ll)
                           != NGX_OK)))
            {
                return NGX_ERROR;
            }
        }

    } else {
        for (k = ch->n_done; k < n; k++) {
            slora_hist_observe(&q->inter_token_seconds,
                               (now - ch->t_last_ns) / 1e9
                               / (n - ch->n_done));
        }
    }

    ch->t_last_ns = now;
    /* written before the first token was published */
    ch->n_cached = s->n_cached;
    tokens = slora_queue_output(q, ch->slot);

    for (i = 0; i < ctx->n_stop; i++) {
        stops[i].data = ctx->stop[i].data;
        stops[i].len = ctx->stop[i].len;
    }

    for (k = ch->n_done; k < n; k++) {
        if (ctx->stream && ctx->pass_bytes >= NGX_HTTP_SLORA_PASS_BYTES) {
            return NGX_AGAIN;
        }

        from = ch->text_len;
        chars = ch->n_chars;

        if (ngx_http_slora_append(r, ctx, ch, tokens[k], 0) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->logprobs
            && ngx_http_slora_lp_add(r, ctx, ch, tokens[k],
                                     slora_queue_logprob(q, ch->slot,
                                                         (uint32_t) k),
                                     (int32_t) q->geom.top_cap, chars)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ctx->logprobs && ctx->resp != NULL && ctx->think_open != NULL
            && !ctx->stream
            && ngx_http_slora_think_mark(r, ch, from) != NGX_OK)
        {
            return NGX_ERROR;
        }

        ch->n_done++;
        safe = ch->text_len;

        if (ctx->n_stop) {
            /* a new match can only start this close to the new bytes,
             * and not in an echoed prompt */
            from = from > ctx->stop_max ? from - ctx->stop_max : 0;
            from = ngx_max(from, ch->scan_from);

            match = ngx_http_slora_stop_scan(ch->text + from,
                                             ch->text_len - from, stops,
                                             ctx->n_stop, &which, &safe);
            safe += from;

            if (match + from < ch->text_len) {
                ch->text_len = match + from;
                return NGX_DONE;
            }
        }

        if (ctx->stream && safe > 0
            && ngx_http_slora_think_take(r, ctx, ch, &safe, 0, ll) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ctx->stream && safe > 0) {
            rc = ctx->tools && !ch->tool_text
                 ? ngx_http_slora_tool_take(r, ctx, ch, safe, ll)
                 : ngx_http_slora_emit_text(r, ctx, ch, safe, ll);

            if (rc != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/*
 * A completion's echo, once the choice's first token or its end is
 * published (the engine wrote its prompt's log-probability records
 * before either): the prompt's text starts the choice's text, sent at
 * once when streaming, and with logprobs its tokens' entries start the
 * list, the first token's with null figures (nothing comes before it).
 */
static ngx_int_t
ngx_http_slora_take_echo(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, slora_queue_t *q, ngx_chain_t ***ll)
{
    size_t          chars;
    int32_t         k, n, *ids;
    slora_slot_t   *s;

    s = slora_queue_slot(q, ch->slot);
    ids = slora_queue_prompt(q, ch->slot);
    /* the worker's own writes, but in the other process's zone */
    n = s->n_prompt;
    ch->echoed = 1;

    if (n < 0 || (uint32_t) n > q->geom.prompt_cap) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "slora: slot %uD says a prompt of %D tokens, more"
                      " than its %uD", ch->slot, n, q->geom.prompt_cap);
        return NGX_ERROR;
    }

    for (k = 0; k < n; k++) {
        chars = ch->n_chars;

        if (ngx_http_slora_append(r, ctx, ch, ids[k], 0) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->logprobs
            && ngx_http_slora_lp_add(r, ctx, ch, ids[k],
                                     k > 0 ? slora_queue_score(q, ch->slot,
                                                               (uint32_t) k)
                                           : NULL,
                                     (int32_t) q->geom.top_cap, chars)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ch->scan_from = ch->text_len;

    if (ctx->stream && ch->text_len > 0) {
        if (ngx_http_slora_emit_text(r, ctx, ch, ch->text_len, ll)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ch->scan_from = 0;
    }

    return NGX_OK;
}


/* Appends the text of a token (or, with flush, what the detokenizer holds
 * back) to ch->text, growing it as needed. */
ngx_int_t
ngx_http_slora_append(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, int32_t token, ngx_uint_t flush)
{
    int                          rc;
    u_char                      *p;
    size_t                       n;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    for ( ;; ) {
        n = 0;

        if (flush) {
            rc = slora_detok_flush(&ch->detok, (char *) ch->text
                                   + ch->text_len,
                                   ch->text_cap - ch->text_len, &n);

        } else {
            rc = slora_detok_push(&ch->detok, smcf->tokenizer, token,
                                  !ngx_http_slora_shown(ctx, token),
                                  (char *) ch->text + ch->text_len,
                                  ch->text_cap - ch->text_len, &n);
        }

        if (rc == SLORA_OK) {
            /* code points, for a completion's text_offset: the bytes
             * that are not continuations */
            for (p = ch->text + ch->text_len;
                 ctx->logprobs && p < ch->text + ch->text_len + n;
                 p++)
            {
                ch->n_chars += (*p & 0xc0) != 0x80;
            }

            ch->text_len += n;
            return NGX_OK;
        }

        if (rc != SLORA_BUSY || ch->text_cap > 64 * 1024 * 1024) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "slora: cannot decode token %D", token);
            return NGX_ERROR;
        }

        p = ngx_pnalloc(r->pool, ch->text_cap * 2);
        if (p == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(p, ch->text, ch->text_len);
        /* the old copy goes back once it is a large allocation */
        ngx_pfree(r->pool, ch->text);
        ch->text = p;
        ch->text_cap *= 2;
    }
}


/* 1 when token, a control token, is detokenized as its text: one of the
 * request's marks of calls or of a think block. */
static ngx_uint_t
ngx_http_slora_shown(ngx_http_slora_ctx_t *ctx, int32_t token)
{
    ngx_uint_t  i;

    for (i = 0; i < 5; i++) {
        if (token >= 0 && token == ctx->shown[i]) {
            return 1;
        }
    }

    return 0;
}
