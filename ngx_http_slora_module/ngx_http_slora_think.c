/*
 * ngx_http_slora_think.c: a reasoning model's think block, kept apart
 * from its answer (slora_reasoning on). Qwen3's and QwQ's answers open
 * with <think> and close it with </think>; Mistral's reasoning models
 * (Magistral, Ministral 3's) write [THINK] ... [/THINK], control tokens
 * that are then shown as their text. A template that opens the block in
 * its generation prompt (DeepSeek-R1's: <｜Assistant｜><think>\n) has the
 * answer begin inside it. What the block holds is the message's
 * "reasoning"
 * (vLLM's field, once "reasoning_content"), streamed as delta.reasoning;
 * what follows the closing mark is its content (text, or the tool calls
 * read from it). A block never closed is reasoning to the end; an answer
 * that does not begin with the mark has none. The Responses API's
 * answers have it as an item of type reasoning before the others
 * (ngx_http_slora_resp_reason).
 *
 * The one idea: the block is read off the front of the choice's unsent
 * text before anything else looks at it (ngx_http_slora_think_scan, a
 * pure function), so the stop strings see the whole answer, as the
 * model wrote it, and the tool scanner only its content.
 *
 * With logprobs, chat's entries cover every token, the block's too (its
 * stream's reasoning chunks carry theirs, as vLLM's do); a Responses
 * message's output_text has only the message's: the entries of the
 * tokens that began in the block are dropped as it is read (a stream's
 * token by token, a whole answer's at its end), found by the tokens'
 * marks (ngx_http_slora_think_mark), so that both drop the same ones.
 * The same marks count the answer's reasoning tokens, those that began
 * in the block, its marks with them: usage's reasoning_tokens.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"


static ngx_int_t ngx_http_slora_think_keep(ngx_http_request_t *r,
    ngx_http_slora_choice_t *ch, const u_char *text, size_t len);
static void ngx_http_slora_think_drop(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, size_t n);
static ngx_uint_t ngx_http_slora_ends_with(ngx_str_t *text,
    const char *mark);


/* The request's marks, the control tokens shown for them and where each
 * choice's answer begins, where the location reads think blocks and the
 * request is a chat (or the Responses API's): prompt, its text rendered
 * with template chat (NULL: no chat). */
void
ngx_http_slora_think_init(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_str_t *prompt, slora_chat_e chat)
{
    ngx_uint_t                   i;
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);
    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    ctx->shown[3] = -1;
    ctx->shown[4] = -1;

    if (!slcf->reasoning || prompt == NULL) {
        return;
    }

    if (chat == SLORA_CHAT_MISTRAL_V7) {
        ctx->think_open = "[THINK]";
        ctx->think_close = "[/THINK]";

        if (smcf->tokenizer != NULL) {
            ctx->shown[3] = slora_tokenizer_find(smcf->tokenizer, "[THINK]",
                                                 7);
            ctx->shown[4] = slora_tokenizer_find(smcf->tokenizer,
                                                 "[/THINK]", 8);
        }

    } else {
        ctx->think_open = "<think>";
        ctx->think_close = "</think>";
    }

    if (ngx_http_slora_ends_with(prompt, ctx->think_open)) {
        /* the prompt opened the block */
        ctx->think_first = 1;

        for (i = 0; i < ctx->n_choices; i++) {
            ctx->choice[i].think = NGX_HTTP_SLORA_THINK_IN;
        }

    } else {
        /* a template whose model thinks first unless told not to
         * (Qwen3's enable_thinking false closes an empty block) */
        ctx->think_first = slcf->chat_template == NGX_HTTP_SLORA_CHAT_AUTO
                           && smcf->tokenizer != NULL
                           && slora_tokenizer_chat_think(smcf->tokenizer)
                           && !ngx_http_slora_ends_with(prompt,
                                                        ctx->think_close);
    }
}


/*
 * Where the answer thinks first (think_first), its schema waits for the
 * block's closing mark, as vLLM's structured output waits for its
 * reasoning parser: one the whole answer was to be held to
 * (response_format, a call that must come) has the mark as its trigger,
 * the value then ending the answer; a lazy one (tools' "auto": calls
 * after "<tool_call>") has it as its trigger's gate, so that a tag in
 * the reasoning starts nothing. The mark is written at dst (the slot's
 * schema area); returns its bytes (0: not thinking first).
 */
size_t
ngx_http_slora_think_trigger(ngx_http_slora_ctx_t *ctx, u_char *dst,
    size_t cap)
{
    size_t  n;

    if (!ctx->think_first) {
        return 0;
    }

    n = ngx_strlen(ctx->think_close);

    if (n > cap) {
        return 0;
    }

    ngx_memcpy(dst, ctx->think_close, n);

    return n;
}


/* 1 when text ends with mark, line breaks after it aside. */
static ngx_uint_t
ngx_http_slora_ends_with(ngx_str_t *text, const char *mark)
{
    size_t  n, m;

    n = text->len;
    m = ngx_strlen(mark);

    while (n > 0 && text->data[n - 1] == '\n') {
        n--;
    }

    return n >= m && ngx_strncmp(text->data + n - m, mark, m) == 0;
}


/*
 * The front of ch->text[0..*len) read for the block (final: the answer
 * ended): in a stream its reasoning goes out as chunks, else it is kept
 * in ch->reason; the bytes read leave the text, *len counting what is
 * left of the span. *len is 0 on return while the block may still be
 * coming: nothing may go out as content yet.
 */
ngx_int_t
ngx_http_slora_think_take(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, size_t *len, ngx_uint_t final,
    ngx_chain_t ***ll)
{
    u_char    *p, *last;
    size_t     n, skip, reason;
    unsigned   state;

    if (ctx->think_open == NULL || ch->think == NGX_HTTP_SLORA_THINK_OUT) {
        return NGX_OK;
    }

    state = ch->think;
    n = ngx_http_slora_think_scan(ch->text, *len, ctx->think_open,
                                  ctx->think_close, &state, final != 0,
                                  &skip, &reason);
    ch->think = state;

    if (reason > 0 && ctx->stream && ctx->resp != NULL) {
        if (ngx_http_slora_resp_reason(r, ctx, ch->text + skip, reason, ll)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (reason > 0 && ctx->plain) {
        /* a plain stream is the answer's text alone */

    } else if (reason > 0 && ctx->stream) {
        p = ngx_http_slora_scratch(r, ctx,
                                   ngx_http_slora_chunk_max(ctx, ch, reason));
        if (p == NULL) {
            return NGX_ERROR;
        }

        last = ngx_http_slora_reason_chunk_json(p, ctx, ch, ch->text + skip,
                                                reason);

        if (ngx_http_slora_emit(r, ctx, p, last - p, ll) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (reason > 0
               && ngx_http_slora_think_keep(r, ch, ch->text + skip, reason)
                  != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (final && ch->think == NGX_HTTP_SLORA_THINK_IN) {
        /* the answer ended inside the block: every token left is the
         * block's, those a stop string cut off after its end too */
        ngx_http_slora_think_drop(ctx, ch, (size_t) -1);

    } else if (n > 0 || ch->think == NGX_HTTP_SLORA_THINK_OUT) {
        ngx_http_slora_think_drop(ctx, ch, n);
    }

    ngx_memmove(ch->text, ch->text + n, ch->text_len - n);
    ch->text_len -= n;
    ch->tool_blank = 0;
    *len -= n;

    if (ch->think != NGX_HTTP_SLORA_THINK_OUT) {
        *len = 0;
    }

    return NGX_OK;
}


/* Appends text[0..len) to the reasoning a whole answer keeps. */
static ngx_int_t
ngx_http_slora_think_keep(ngx_http_request_t *r, ngx_http_slora_choice_t *ch,
    const u_char *text, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, ch->reason_len + len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (ch->reason_len) {
        ngx_memcpy(p, ch->reason, ch->reason_len);
    }

    ngx_memcpy(p + ch->reason_len, text, len);
    ch->reason = p;
    ch->reason_len += len;

    return NGX_OK;
}


/* A token that begins at text's byte start, its entry (with logprobs)
 * just taken: its mark, while the block may still be read (a stream's
 * tokens after it have none). */
ngx_int_t
ngx_http_slora_think_mark(ngx_http_request_t *r, ngx_http_slora_choice_t *ch,
    size_t start)
{
    ngx_http_slora_think_mark_t  *m;

    if (ch->think == NGX_HTTP_SLORA_THINK_OUT) {
        return NGX_OK;
    }

    if (ch->think_marks == NULL) {
        ch->think_marks = ngx_array_create(r->pool, 64,
                                           sizeof(ngx_http_slora_think_mark_t));
        if (ch->think_marks == NULL) {
            return NGX_ERROR;
        }
    }

    m = ngx_array_push(ch->think_marks);
    if (m == NULL) {
        return NGX_ERROR;
    }

    m->text = start;
    m->entry = ch->lp.part[0].len;

    return NGX_OK;
}


/*
 * The block took the front n bytes of the text: the tokens that began in
 * them, found by their marks, are the choice's reasoning tokens, and in
 * a Responses answer with logprobs their entries leave the message's.
 * A stream reads the block token by token, but what a stop
 * string may still claim is held back from it, so the bytes read with
 * the closing mark can have tokens of the message after it, their
 * entries waiting with the block's; the marks left count from the text's
 * new front, and once the block is read there are none.
 */
static void
ngx_http_slora_think_drop(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, size_t n)
{
    size_t                        cut;
    ngx_uint_t                    i, k;
    ngx_http_slora_lpbuf_t       *lp;
    ngx_http_slora_think_mark_t  *m;

    if (ch->think_marks == NULL) {
        return;
    }

    lp = &ch->lp.part[0];
    m = ch->think_marks->elts;
    k = 0;

    for (i = 0; i < ch->think_marks->nelts && m[i].text < n; i++) {
        k = i + 1;
    }

    ch->reason_tokens += k;

    /* the entries through token k - 1 and the comma after them */
    cut = 0;

    if (k > 0 && ctx->resp != NULL && ctx->logprobs) {
        cut = m[k - 1].entry < lp->len ? m[k - 1].entry + 1 : lp->len;

        ngx_memmove(lp->data, lp->data + cut, lp->len - cut);
        lp->len -= cut;
        ch->lp.n -= ngx_min(ch->lp.n, k);
    }

    if (ctx->stream && ch->think == NGX_HTTP_SLORA_THINK_OUT) {
        ch->think_marks->nelts = 0;
        return;
    }

    for (i = k; i < ch->think_marks->nelts; i++) {
        m[i - k].text = m[i].text - n;
        m[i - k].entry = m[i].entry - cut;
    }

    ch->think_marks->nelts -= k;
}
