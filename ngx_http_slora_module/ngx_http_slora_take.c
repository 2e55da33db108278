/*
 * ngx_http_slora_take.c: a choice's tokens taken from its slot: each
 * published token counted (time to first token, the gaps between), its
 * log-probabilities read, detokenized into the choice's text (the marks
 * of calls and think blocks kept as text, other control tokens hidden),
 * held back while a stop string may still be forming, and handed on as
 * text (ngx_http_slora_emit_text); a completion's echoed prompt first, and
 * vLLM's prompt_logprobs read with it.
 *
 * The one idea: the slot holds every token until the worker takes it, so
 * taking is a read of what was published since the last take, at the
 * worker's pace: a slow client leaves them in the slot while the engine
 * runs, and a client that reads again after a stall takes them a pass of
 * events at a time, not all at once. Once the engine has finished a
 * choice its slot is worth more than the bytes it holds: a stalled
 * client's rest is copied out (ngx_http_slora_take_keep) and the slot
 * goes back; the reads below take from either.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"


static ngx_int_t ngx_http_slora_take_prompt(ngx_http_request_t *r,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    slora_queue_t *q, ngx_chain_t ***ll);
static ngx_uint_t ngx_http_slora_shown(ngx_http_slora_ctx_t *ctx,
    int32_t token);
static int32_t ngx_http_slora_take_count(ngx_http_request_t *r,
    slora_queue_t *q, ngx_http_slora_choice_t *ch);
static slora_logprob_t *ngx_http_slora_take_logprob(slora_queue_t *q,
    ngx_http_slora_choice_t *ch, int32_t k);


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
    int32_t                 n, k, token, *tokens;
    ngx_int_t               rc;
    int64_t                 now;
    ngx_http_slora_text_t   stops[NGX_HTTP_SLORA_MAX_STOPS];
    ngx_uint_t              i;

    n = ngx_http_slora_take_count(r, q, ch);
    if (n < 0) {
        return NGX_ERROR;
    }

    if ((ctx->echo || ch->reads_scores) && !ch->echoed
        && (n > 0 || ngx_http_slora_take_state(q, ch) == SLORA_SLOT_FINISHED)
        && ngx_http_slora_take_prompt(r, ctx, ch, q, ll) != NGX_OK)
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
    ch->n_cached = ch->kept != NULL ? ch->kept->n_cached
                                    : slora_queue_slot(q, ch->slot)->n_cached;
    tokens = ch->kept != NULL ? NULL : slora_queue_output(q, ch->slot);

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
        token = tokens != NULL ? tokens[k]
                               : ch->kept->ids[k - ch->kept->from];

        if (ngx_http_slora_append(r, ctx, ch, token, 0) != NGX_OK
            || (ctx->return_ids
                && ngx_http_slora_ids_add(r, ch, token) != NGX_OK))
        {
            return NGX_ERROR;
        }

        if (ctx->logprobs
            && ngx_http_slora_lp_add(r, ctx, ch, token,
                                     ngx_http_slora_take_logprob(q, ch, k),
                                     chars)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ctx->n_best) {
            ch->lp_sum += ngx_http_slora_take_logprob(q, ch, k)->logprob;
        }

        if (ctx->think_open != NULL
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
                ch->text_len = match + from
                               + (ctx->stop_in_output ? stops[which].len : 0);
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


/* The tokens published for a choice so far (final once it is finished);
 * -1 for a count the slot has no room for. */
static int32_t
ngx_http_slora_take_count(ngx_http_request_t *r, slora_queue_t *q,
    ngx_http_slora_choice_t *ch)
{
    int32_t  n;

    if (ch->kept != NULL) {
        return ch->kept->n_out;
    }

    n = atomic_load_explicit(&slora_queue_slot(q, ch->slot)->n_out,
                             memory_order_acquire);

    /* the zone is another process's: a count past the slot's room is
     * an engine gone wrong, not tokens to read */
    if (n < 0 || (uint32_t) n > q->geom.output_cap) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "slora: slot %uD says %D tokens, more than its %uD",
                      ch->slot, n, q->geom.output_cap);
        return -1;
    }

    return n;
}


/* Output token k's log-probability record, k < the count published. */
static slora_logprob_t *
ngx_http_slora_take_logprob(slora_queue_t *q, ngx_http_slora_choice_t *ch,
    int32_t k)
{
    ngx_http_slora_kept_t  *kept;

    kept = ch->kept;

    if (kept == NULL) {
        return slora_queue_logprob(q, ch->slot, (uint32_t) k);
    }

    return (slora_logprob_t *) (kept->logprobs
                                + (size_t) (k - kept->from) * kept->lp_size);
}


/* A choice's slot state; a kept one's is FINISHED. */
uint32_t
ngx_http_slora_take_state(slora_queue_t *q, ngx_http_slora_choice_t *ch)
{
    if (ch->kept != NULL) {
        return SLORA_SLOT_FINISHED;
    }

    return atomic_load_explicit(&slora_queue_slot(q, ch->slot)->state,
                                memory_order_acquire);
}


/* A finished choice's last word: why it ended (and by which stop id),
 * and what the engine wrote before it finished the slot (an answer that
 * stopped before any token has n_cached from here). */
void
ngx_http_slora_take_end(slora_queue_t *q, ngx_http_slora_choice_t *ch)
{
    int32_t        finish;
    slora_slot_t  *s;

    if (ch->kept != NULL) {
        finish = ch->kept->finish;
        ch->stop_token = ch->kept->stop_token;
        ch->stop_logprob = ch->kept->stop_logprob;
        ch->n_cached = ch->kept->n_cached;
        ch->accepted = ch->kept->accepted;
        ch->rejected = ch->kept->rejected;

    } else {
        s = slora_queue_slot(q, ch->slot);
        finish = s->finish;
        ch->stop_token = s->stop_token;
        ch->stop_logprob = s->stop_logprob;
        ch->n_cached = s->n_cached;
        ch->accepted = s->accepted_prediction;
        ch->rejected = s->rejected_prediction;
    }

    ch->finish = finish == SLORA_FINISH_LENGTH ? "length" : "stop";
}


/* Counts, for a choice's tokens from..n_done just taken, the time since the
 * engine published each: what the worker adds to a stream's latency. */
void
ngx_http_slora_take_delivered(slora_queue_t *q, ngx_http_slora_choice_t *ch,
    int32_t from)
{
    int32_t   k;
    int64_t   now, published, *slot;

    if (from == ch->n_done) {
        return;
    }

    now = slora_now_ns();
    slot = ch->kept != NULL ? NULL : slora_queue_published(q, ch->slot);

    for (k = from; k < ch->n_done; k++) {
        published = slot != NULL ? slot[k]
                                 : ch->kept->published[k - ch->kept->from];
        slora_hist_fine_observe(&q->delivery_seconds, now - published);
    }
}


/*
 * A stalled stream's finished choices: what the client has not taken yet
 * is copied into the request's pool and the slot goes back at once, so
 * clients that read slowly hold worker memory for their answers (12 bytes
 * a token, with logprobs a record more; best_of's ranking reads one too,
 * though it never streams), not the engine's slots, of which
 * there are slots= in all. Best effort: a choice whose prompt is not
 * taken yet (echo and prompt_logprobs read the slot's), or one the pool
 * has no room for, keeps its slot.
 */
void
ngx_http_slora_take_keep(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    slora_queue_t *q)
{
    size_t                    m, lp;
    int32_t                   n;
    ngx_uint_t                i;
    slora_slot_t             *s;
    ngx_http_slora_kept_t    *kept;
    ngx_http_slora_choice_t  *ch;

    for (i = 0; i < ctx->n_choices; i++) {
        ch = &ctx->choice[i];

        if (!ch->have_slot || ch->finished
            || ((ctx->echo || ch->reads_scores) && !ch->echoed)
            || ngx_http_slora_take_state(q, ch) != SLORA_SLOT_FINISHED)
        {
            continue;
        }

        n = ngx_http_slora_take_count(r, q, ch);
        if (n < ch->n_done) {
            continue;
        }

        s = slora_queue_slot(q, ch->slot);
        m = (size_t) (n - ch->n_done);
        lp = ctx->logprobs || ctx->n_best ? slora_queue_lp_size(&q->geom)
                                          : 0;

        kept = ngx_palloc(r->pool, sizeof(ngx_http_slora_kept_t)
                                   + m * (sizeof(int32_t) + sizeof(int64_t)
                                          + lp));
        if (kept == NULL) {
            continue;
        }

        /* the records first: 8-aligned after the 8-aligned header */
        kept->published = (int64_t *) (kept + 1);
        kept->logprobs = (u_char *) (kept->published + m);
        kept->ids = (int32_t *) (kept->logprobs + m * lp);
        kept->lp_size = lp;
        kept->from = ch->n_done;
        kept->n_out = n;
        kept->finish = s->finish;
        kept->stop_token = s->stop_token;
        kept->stop_logprob = s->stop_logprob;
        kept->n_cached = s->n_cached;
        kept->accepted = s->accepted_prediction;
        kept->rejected = s->rejected_prediction;

        if (m > 0) {
            ngx_memcpy(kept->ids, slora_queue_output(q, ch->slot) + ch->n_done,
                       m * sizeof(int32_t));
            ngx_memcpy(kept->published,
                       slora_queue_published(q, ch->slot) + ch->n_done,
                       m * sizeof(int64_t));

            if (lp) {
                ngx_memcpy(kept->logprobs,
                           slora_queue_logprob(q, ch->slot,
                                               (uint32_t) ch->n_done),
                           m * lp);
            }
        }

        ch->kept = kept;
        ngx_http_slora_choice_let_go(ctx, ch);
    }
}


/*
 * The choice's prompt, once its first token or its end is published (the
 * engine wrote its prompt's log-probability records before either):
 * vLLM's prompt_logprobs list from them; and a completion's echo: the
 * prompt's text starts the choice's text, sent at once when streaming,
 * and with logprobs its tokens' entries start the list, the first
 * token's with null figures (nothing comes before it).
 */
static ngx_int_t
ngx_http_slora_take_prompt(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, slora_queue_t *q, ngx_chain_t ***ll)
{
    size_t                       chars;
    int32_t                      k, n, *ids;
    slora_slot_t                *s;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
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

    for (k = 0; ch->reads_scores && k < n; k++) {
        if (ngx_http_slora_lp_prompt(r, ch, ids[k],
                                     k > 0 ? slora_queue_score(q, ch->slot,
                                                               (uint32_t) k)
                                           : NULL,
                                     ctx->prompt_top)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (!ctx->echo) {
        return NGX_OK;
    }

    /* the prompt's text as it was given: without the space a
     * SentencePiece vocabulary put before it */
    slora_detok_init_text(&ch->detok, smcf->tokenizer);

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
                                     chars)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* the answer's text keeps its spaces */
    ch->detok.lead = 0;
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


/*
 * The end of a choice's tokens: what the detokenizer holds back (an
 * incomplete character, a U+FFFD now) joins the text, and the stop
 * strings are checked once more over it, as over each token's bytes: a
 * stop string ending in U+FFFD can be completed only here. A match cuts
 * the text there and is the choice's finish.
 */
ngx_int_t
ngx_http_slora_take_rest(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch)
{
    size_t                  from, match, safe, which;
    ngx_uint_t              i;
    ngx_http_slora_text_t   stops[NGX_HTTP_SLORA_MAX_STOPS];

    from = ch->text_len;

    if (ngx_http_slora_append(r, ctx, ch, 0, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->n_stop == 0 || ch->text_len == from) {
        return NGX_OK;
    }

    for (i = 0; i < ctx->n_stop; i++) {
        stops[i].data = ctx->stop[i].data;
        stops[i].len = ctx->stop[i].len;
    }

    from = from > ctx->stop_max ? from - ctx->stop_max : 0;
    from = ngx_max(from, ch->scan_from);

    match = ngx_http_slora_stop_scan(ch->text + from, ch->text_len - from,
                                     stops, ctx->n_stop, &which, &safe);

    if (match + from < ch->text_len) {
        ch->text_len = match + from
                       + (ctx->stop_in_output ? stops[which].len : 0);
        ch->finish = "stop";
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
 * request's marks of calls or of a think block, or any with vLLM's
 * skip_special_tokens false. */
static ngx_uint_t
ngx_http_slora_shown(ngx_http_slora_ctx_t *ctx, int32_t token)
{
    ngx_uint_t  i;

    if (ctx->show_special) {
        return 1;
    }

    for (i = 0; i < 5; i++) {
        if (token >= 0 && token == ctx->shown[i]) {
            return 1;
        }
    }

    return 0;
}
