/*
 * ngx_http_slora_prompt.c: a request's prompt, made in the worker: the
 * chat template chosen and rendered, the text tokenized within the
 * context (the encoding stops past a limit, so a megabyte of text costs
 * the worker that many tokens' work, not the megabyte's), token ids a
 * client sent checked against the vocabulary, and the Responses API's
 * truncation "auto" (the oldest turns left out, the fewest that fit), and
 * a completion's prompt around its suffix (fill in the middle).
 * A chat's text is encoded with the spans the template reports as the
 * request's: a special token's text there is text, so a client cannot
 * write a turn of its own making. A long text is encoded on a thread
 * (ngx_http_slora_encode.c), the request made again when it is done.
 *
 * The one idea: every refusal here is the client's 400 or 413 in
 * OpenAI's shape (ngx_http_slora_err_t), decided before a slot is taken.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"
#include "ngx_http_slora_prompt.h"


static ngx_int_t ngx_http_slora_truncate_try(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_openai_req_t *req,
    int32_t n_ctx, slora_chat_msg_t *all, ngx_uint_t head, ngx_uint_t from,
    ngx_str_t *text, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_prompt_t *out, ngx_http_slora_err_t *e);
static ngx_uint_t ngx_http_slora_chat_bos(ngx_http_request_t *r,
    slora_openai_req_t *req);


/*
 * A prompt's token ids into out: text tokenized (a chat's rendered
 * template with special tokens parsed but in plain's spans, the
 * request's text; a completion's, plain NULL, without; add_special the
 * BOS first: a completion's 0 or 1, where the tokenizer adds one, a
 * chat's the set ngx_http_slora_chat_bos gives), or the client's token
 * ids as they are,
 * each in the tokenizer's vocabulary. Refuses an empty prompt (400) and
 * one that fills the context (413). The encoding stops past limit
 * tokens: the 413 says "more than limit" there, and the worker's time
 * on a megabyte of text stays that of limit tokens. keep > 0 (vLLM's
 * truncate_prompt_tokens): the prompt's last keep tokens, a text
 * encoded whole for them (up to NGX_HTTP_SLORA_KEEP_FROM tokens, a 413
 * past it). NGX_AGAIN: the text went to enc's thread pool
 * (ngx_http_slora_encode.c), and the request is made again when it is
 * done; so too from chat_ids and truncate.
 */
ngx_int_t
ngx_http_slora_prompt_ids(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, ngx_http_slora_kind_e kind,
    ngx_str_t *text, const slora_chat_plain_t *plain, ngx_uint_t add_special,
    const slora_openai_prompt_t *pr, int32_t n_ctx, int32_t limit,
    int32_t keep, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_prompt_t *out, ngx_http_slora_err_t *e)
{
    int32_t      n, cut, cap, drop;
    ngx_int_t    rc;
    slora_err_t  err;

    cap = n_ctx;

    if (keep > 0 && (pr == NULL || pr->text.data != NULL)) {
        /* a token holds a byte of the text at least, but a BOS */
        cap = (int32_t) ngx_min(text->len + 2, NGX_HTTP_SLORA_KEEP_FROM);
        cap = ngx_max(cap, n_ctx);
        limit = cap;
    }

    out->ids = ngx_palloc(r->pool, cap * sizeof(int32_t));
    if (out->ids == NULL) {
        return NGX_ERROR;
    }

    err.msg[0] = '\0';
    n = 0;
    cut = 0;

    if (pr != NULL && pr->text.data == NULL) {
        if (ngx_http_slora_vocab_ids(smcf, pr->ids, pr->n_ids, "prompt", e)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        n = (int32_t) ngx_min(pr->n_ids, (uint32_t) NGX_MAX_INT32_VALUE);
        drop = keep > 0 && n > keep ? n - keep : 0;
        n -= drop;
        rc = n >= n_ctx ? SLORA_BUSY : SLORA_OK;

        if (rc == SLORA_OK) {
            ngx_memcpy(out->ids, pr->ids + drop, n * sizeof(int32_t));
        }

    } else {
        rc = ngx_http_slora_encode(enc, smcf->tokenizer, text->data,
                                   text->len, add_special, plain, out->ids,
                                   cap, limit, &n, &err);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        cut = (rc == SLORA_BUSY && n > limit);

        if (rc == SLORA_OK && keep > 0 && n > keep) {
            ngx_memmove(out->ids, out->ids + (n - keep),
                        keep * sizeof(int32_t));
            n = keep;
        }
    }

    if (rc == SLORA_BUSY || (rc == SLORA_OK && n >= n_ctx)) {
        return ngx_http_slora_fail(e, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   "invalid_request_error",
                                   "context_length_exceeded",
                                   kind == NGX_HTTP_SLORA_CHAT
                                   ? "messages" : "prompt",
                                   "This model's maximum context length is"
                                   " %D tokens. However, your prompt"
                                   " resulted in %s%D tokens", n_ctx,
                                   cut ? "more than " : "", n - cut);
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

    out->n = n;

    return NGX_OK;
}


/* A 400 naming param unless every one of ids[0..n) is in the tokenizer's
 * vocabulary. */
ngx_int_t
ngx_http_slora_vocab_ids(ngx_http_slora_main_conf_t *smcf,
    const int32_t *ids, uint32_t n, const char *param,
    ngx_http_slora_err_t *e)
{
    int32_t   vocab;
    uint32_t  i;

    vocab = slora_tokenizer_n_vocab(smcf->tokenizer);

    for (i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) {
            return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request_error",
                                       "invalid_value", param,
                                       "%s names token %D, not in the"
                                       " vocabulary of %D tokens", param,
                                       ids[i], vocab);
        }
    }

    return NGX_OK;
}


/*
 * vLLM's allowed_token_ids: in the vocabulary (a 400 naming them), and
 * not each a stop id while min_tokens holds the stop ids back (the
 * model's, but with ignore_eos, and the request's): then no token could
 * be drawn, a 400 rather than a failed step.
 */
ngx_int_t
ngx_http_slora_allowed_ids(ngx_http_slora_main_conf_t *smcf,
    const slora_openai_req_t *req, ngx_http_slora_err_t *e)
{
    uint32_t    i, j, held;
    ngx_uint_t  n_model;

    if (ngx_http_slora_vocab_ids(smcf, req->allowed_ids, req->n_allowed,
                                 "allowed_token_ids", e)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (req->min_tokens == 0 || req->n_allowed == 0) {
        return NGX_OK;
    }

    n_model = req->ignore_eos ? 0 : smcf->n_stop_ids;

    for (i = 0; i < req->n_allowed; i++) {
        held = 0;

        for (j = 0; j < n_model; j++) {
            held |= smcf->stop_ids[j] == req->allowed_ids[i];
        }

        for (j = 0; j < req->n_stop_ids; j++) {
            held |= req->stop_ids[j] == req->allowed_ids[i];
        }

        if (!held) {
            return NGX_OK;
        }
    }

    return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                               "invalid_request_error", "invalid_value",
                               "allowed_token_ids", "each of the "
                               "allowed_token_ids ends the answer, and "
                               "min_tokens (%i) holds those back: no token "
                               "could be drawn", (ngx_int_t) req->min_tokens);
}


/*
 * vLLM's bad_words as runs of tokens into bad[*n], at most cap ints, each
 * run its length and then its ids, as vLLM makes them: a word without
 * its leading blanks, then with one space before it where that begins
 * with another token in as many tokens (a word at the start of the text
 * and one inside it); a blank word is none. A control token's text is
 * that token, as HF's encode in vLLM reads it, so "<|im_end|>" bans the
 * end of the turn. A 400 where they come to more than cap.
 */
ngx_int_t
ngx_http_slora_bad_ids(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, const slora_openai_req_t *req,
    int32_t *bad, int32_t cap, int32_t *n, ngx_http_slora_err_t *e)
{
    u_char                    *text;
    size_t                     skip;
    int32_t                    ids[64], m, k, first, len;
    ngx_uint_t                 i, space;
    slora_err_t                err;
    const slora_openai_str_t  *w;

    *n = 0;

    for (i = 0; i < req->n_bad_words; i++) {
        w = &req->bad_words[i];

        for (skip = 0; skip < w->len
                       && (w->data[skip] == ' ' || w->data[skip] == '\t'
                           || w->data[skip] == '\n' || w->data[skip] == '\r');
             skip++)
        { /* void */ }

        text = ngx_pnalloc(r->pool, w->len - skip + 1);
        if (text == NULL) {
            return NGX_ERROR;
        }

        text[0] = ' ';
        ngx_memcpy(text + 1, w->data + skip, w->len - skip);
        first = -1;
        len = 0;

        for (space = 0; skip < w->len && space < 2; space++) {
            if (slora_tokenizer_encode(smcf->tokenizer,
                                       (char *) text + 1 - space,
                                       w->len - skip + space, 0, 1, ids, 64,
                                       &m, &err)
                != SLORA_OK)
            {
                return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                           "invalid_request_error",
                                           "invalid_value", "bad_words",
                                           "bad_words: \"%*s%s\" is more"
                                           " than 64 tokens",
                                           (size_t) slora_utf8_cut(w->data,
                                                                   40),
                                           w->data,
                                           w->len > 40 ? "..." : "");
            }

            if (m == 0 || (space && (ids[0] == first || m != len))) {
                continue;
            }

            if (*n + 1 + m > cap) {
                return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                           "invalid_request_error",
                                           "invalid_value", "bad_words",
                                           "bad_words come to more than %D"
                                           " tokens", cap);
            }

            bad[(*n)++] = m;

            for (k = 0; k < m; k++) {
                bad[(*n)++] = ids[k];
            }

            first = ids[0];
            len = m;
        }
    }

    return NGX_OK;
}


/* The chat template of r's location: slora_chat_template, or the
 * model's. */
slora_chat_e
ngx_http_slora_chat_template(ngx_http_request_t *r)
{
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);

    return slcf->chat_template == NGX_HTTP_SLORA_CHAT_AUTO
           ? smcf->model_template : (slora_chat_e) slcf->chat_template;
}


/* The BOS of r's chat prompt (SLORA_TOK_BOS_*): the template's where it
 * writes one first (the model's own template, or the format the
 * location names in its place), and with vLLM's add_special_tokens the
 * tokenizer's. */
static ngx_uint_t
ngx_http_slora_chat_bos(ngx_http_request_t *r, slora_openai_req_t *req)
{
    int                          own;
    ngx_uint_t                   bos;
    ngx_http_slora_loc_conf_t   *slcf;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);

    own = slcf->chat_template == NGX_HTTP_SLORA_CHAT_AUTO;
    bos = 0;

    if (own ? smcf->tokenizer != NULL
              && slora_tokenizer_chat_bos(smcf->tokenizer)
            : slora_chat_bos((slora_chat_e) slcf->chat_template))
    {
        bos |= SLORA_TOK_BOS_TEMPLATE;
    }

    if (req->add_special) {
        bos |= SLORA_TOK_BOS_TOKENIZER;
    }

    return bos;
}


/* A chat request's prompt: its messages rendered and tokenized, or with
 * truncation "auto" (req->truncate) the turns that fit; text the
 * rendered prompt. */
ngx_int_t
ngx_http_slora_chat_ids(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_openai_req_t *req,
    int32_t n_ctx, ngx_str_t *text, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_prompt_t *out, ngx_http_slora_err_t *e)
{
    slora_chat_plain_t  plain;

    if (req->truncate) {
        return ngx_http_slora_truncate(r, smcf, req, n_ctx, text, enc, out,
                                       e);
    }

    if (ngx_http_slora_render(r, req, n_ctx, text, &plain, e) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_slora_prompt_ids(r, smcf, NGX_HTTP_SLORA_CHAT, text,
                                     &plain, ngx_http_slora_chat_bos(r, req),
                                     NULL, n_ctx,
                                     NGX_HTTP_SLORA_COUNT_TO(n_ctx),
                                     ngx_http_slora_keep(req, n_ctx), enc,
                                     out, e);
}


/*
 * A completion's prompt with a suffix, to fill in the middle: the
 * model's marks around the prompt's tokens and the suffix's, PRE prompt
 * SUF suffix MID (the answer is the middle), the BOS first as a
 * completion's. Each text is tokenized as a plain completion's, on its
 * own (a control token's text in it is text), the prompt's first: where
 * one goes to the thread pool the request is made again, and then finds
 * it done, the suffix's too for every prompt after the first (the same
 * bytes). A 400 naming suffix where the model has no marks, a 413 where
 * the two do not fit the context with them.
 */
ngx_int_t
ngx_http_slora_fim_ids(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, const slora_openai_req_t *req,
    const slora_openai_prompt_t *pr, int32_t n_ctx,
    ngx_http_slora_encoder_t *enc, ngx_http_slora_prompt_t *out,
    ngx_http_slora_err_t *e)
{
    int32_t                   fim[3], n[2], *ids[2], *p, bos, total;
    ngx_int_t                 rc[2];
    ngx_uint_t                k, cut;
    slora_err_t               err;
    slora_openai_str_t        part[2];
    const slora_tokenizer_t  *tok;

    tok = smcf->tokenizer;

    if (slora_tokenizer_fim(tok, fim) != SLORA_OK) {
        return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request_error", "invalid_value",
                                   "suffix", "This model has no"
                                   " fill-in-the-middle tokens: a suffix"
                                   " cannot be served");
    }

    part[0] = pr->text;
    part[1] = req->suffix;
    cut = 0;

    for (k = 0; k < 2; k++) {
        ids[k] = ngx_palloc(r->pool, n_ctx * sizeof(int32_t));
        if (ids[k] == NULL) {
            return NGX_ERROR;
        }

        err.msg[0] = '\0';
        n[k] = 0;
        rc[k] = ngx_http_slora_encode(enc, tok, (const u_char *) part[k].data,
                                      part[k].len, 0, NULL, ids[k], n_ctx,
                                      NGX_HTTP_SLORA_COUNT_TO(n_ctx), &n[k],
                                      &err);

        if (rc[k] == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc[k] == SLORA_BUSY) {
            cut |= n[k] > NGX_HTTP_SLORA_COUNT_TO(n_ctx);

        } else if (rc[k] != SLORA_OK) {
            return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request_error",
                                       "invalid_prompt",
                                       k ? "suffix" : "prompt",
                                       "The %s cannot be tokenized: %s",
                                       k ? "suffix" : "prompt", err.msg);
        }
    }

    bos = !req->no_special && slora_tokenizer_add_bos(tok)
          ? slora_tokenizer_bos(tok) : -1;
    total = (bos >= 0) + 3 + n[0] - cut + n[1];

    if (rc[0] == SLORA_BUSY || rc[1] == SLORA_BUSY || total >= n_ctx) {
        return ngx_http_slora_fail(e, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   "invalid_request_error",
                                   "context_length_exceeded",
                                   rc[1] == SLORA_BUSY ? "suffix" : "prompt",
                                   "This model's maximum context length is"
                                   " %D tokens. However, your prompt and"
                                   " suffix resulted in %s%D tokens", n_ctx,
                                   cut ? "more than " : "", total);
    }

    out->ids = ngx_palloc(r->pool, total * sizeof(int32_t));
    if (out->ids == NULL) {
        return NGX_ERROR;
    }

    p = out->ids;

    if (bos >= 0) {
        *p++ = bos;
    }

    for (k = 0; k < 2; k++) {
        *p++ = fim[k];
        ngx_memcpy(p, ids[k], n[k] * sizeof(int32_t));
        p += n[k];
    }

    *p = fim[2];
    out->n = total;

    return NGX_OK;
}


/*
 * req's chat messages in the location's template, into text (r's pool;
 * a buffer grown to what the template needs), and into plain the spans
 * of it that came from the request (r's pool): a 400 where they cannot
 * be rendered, a 413 where the text would be longer than n_ctx tokens of
 * the longest could cover (a template may repeat a part for each turn:
 * Mistral's tools before each user message; the text is not made).
 */
ngx_int_t
ngx_http_slora_render(ngx_http_request_t *r, slora_openai_req_t *req,
    int32_t n_ctx, ngx_str_t *text, slora_chat_plain_t *plain,
    ngx_http_slora_err_t *e)
{
    int                          rc;
    size_t                       cap, n, most;
    ngx_uint_t                   i;
    slora_err_t                  err;
    slora_chat_e                 tmpl;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);
    tmpl = ngx_http_slora_chat_template(r);
    most = (size_t) n_ctx * slora_tokenizer_max_token_len(smcf->tokenizer)
           + 1024;

    cap = 256;
    plain->cap = 8;

    for (i = 0; i < req->n_msgs; i++) {
        cap += req->msgs[i].content_len + 64;
        plain->cap += 2 + req->msgs[i].n_plain;
    }

    for ( ;; ) {
        text->data = ngx_pnalloc(r->pool, cap);
        plain->span = ngx_palloc(r->pool, plain->cap * sizeof(slora_span_t));

        if (text->data == NULL || plain->span == NULL) {
            return NGX_ERROR;
        }

        err.msg[0] = '\0';
        n = 0;

        rc = slora_chat_render(tmpl, req->msgs, (int) req->n_msgs,
                               req->chat_flags, (char *) text->data, cap, &n,
                               plain, &err);

        if (rc == SLORA_BUSY && (n + 1 > cap || plain->n > plain->cap)) {
            if (n > most) {
                return ngx_http_slora_fail(e,
                                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "invalid_request_error",
                                       "context_length_exceeded",
                                       "messages", "This model's maximum"
                                       " context length is %D tokens."
                                       " However, your messages render"
                                       " to %uz bytes, more than that many"
                                       " tokens cover", n_ctx, n);
            }

            /* the spans, none empty or touching another, are fewer than
             * the text's bytes */
            cap = ngx_max(cap, n + 1);
            plain->cap = ngx_max(plain->cap, plain->n);
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


/*
 * The Responses API's truncation "auto": a conversation too long for the
 * context, with room for max_output_tokens (else for one token), loses
 * its oldest turns, the fewest that make it fit. A turn is a user
 * message and what follows it up to the next one; what comes before the
 * first (the instructions, system messages, Mistral's tools) and the
 * last turn stay, so the roles still alternate and no tool result loses
 * its call; where the first user message carries the tools (Llama 3.1's
 * format, SLORA_CHAT_TOOLS), its turn stays too. The turns dropped are
 * found by a binary search, each try a render and an encoding; a
 * conversation that fits is rendered once, as without.
 * The request's messages are left as they were (the store keeps the
 * whole conversation); the prompt is the one that fit.
 */
ngx_int_t
ngx_http_slora_truncate(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_openai_req_t *req,
    int32_t n_ctx, ngx_str_t *text, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_prompt_t *out, ngx_http_slora_err_t *e)
{
    ngx_int_t          rc;
    ngx_uint_t         i, head, n_turns, kept, lo, hi, mid, *turn;
    slora_chat_msg_t  *all;
    uint32_t           n_all;

    all = req->msgs;
    n_all = req->n_msgs;

    turn = ngx_palloc(r->pool, (n_all + 1) * sizeof(ngx_uint_t));
    if (turn == NULL) {
        return NGX_ERROR;
    }

    n_turns = 0;

    for (i = 0; i < n_all; i++) {
        if (all[i].role_len == 4 && ngx_strncmp(all[i].role, "user", 4) == 0)
        {
            turn[n_turns++] = i;
        }
    }

    kept = (req->chat_flags & SLORA_CHAT_TOOLS) && n_turns > 0;
    turn += kept;
    n_turns -= kept;
    head = n_turns > 0 ? turn[0] : n_all;

    rc = ngx_http_slora_truncate_try(r, smcf, req, n_ctx, all, head, head,
                                     text, enc, out, e);

    if (rc != NGX_DECLINED || n_turns < 2) {
        return rc == NGX_DECLINED ? NGX_ERROR : rc;
    }

    /* the fewest turns dropped, between 1 and all but the last */
    lo = 1;
    hi = n_turns - 1;

    rc = ngx_http_slora_truncate_try(r, smcf, req, n_ctx, all, head,
                                     turn[hi], text, enc, out, e);

    if (rc != NGX_OK) {
        return rc == NGX_AGAIN ? NGX_AGAIN : NGX_ERROR;
    }

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        rc = ngx_http_slora_truncate_try(r, smcf, req, n_ctx, all, head,
                                         turn[mid], text, enc, out, e);

        if (rc == NGX_ERROR || rc == NGX_AGAIN) {
            return rc;
        }

        if (rc == NGX_OK) {
            hi = mid;

        } else {
            lo = mid + 1;
        }
    }

    rc = ngx_http_slora_truncate_try(r, smcf, req, n_ctx, all, head,
                                     turn[lo], text, enc, out, e);

    if (rc != NGX_OK) {
        return rc == NGX_AGAIN ? NGX_AGAIN : NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "slora: truncation \"auto\" left out turns %ui to %ui of "
                  "the conversation's %ui (%D prompt tokens)", kept + 1,
                  kept + lo, kept + n_turns, out->n);

    return NGX_OK;
}


/* The prompt of the messages before head and those from from on: NGX_OK
 * where it fits, NGX_DECLINED where it is too long (e says so), else
 * NGX_ERROR. */
static ngx_int_t
ngx_http_slora_truncate_try(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_openai_req_t *req,
    int32_t n_ctx, slora_chat_msg_t *all, ngx_uint_t head, ngx_uint_t from,
    ngx_str_t *text, ngx_http_slora_encoder_t *enc,
    ngx_http_slora_prompt_t *out, ngx_http_slora_err_t *e)
{
    ngx_int_t           rc;
    uint32_t            n_all;
    slora_chat_msg_t   *view;
    slora_chat_plain_t  plain;

    n_all = req->n_msgs;
    view = all;

    if (from > head) {
        view = ngx_palloc(r->pool, (head + n_all - from)
                                   * sizeof(slora_chat_msg_t));
        if (view == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(view, all, head * sizeof(slora_chat_msg_t));
        ngx_memcpy(view + head, all + from,
                   (n_all - from) * sizeof(slora_chat_msg_t));
    }

    req->msgs = view;
    req->n_msgs = (uint32_t) (head + n_all - from);

    rc = ngx_http_slora_render(r, req, n_ctx, text, &plain, e);

    if (rc == NGX_OK) {
        rc = ngx_http_slora_prompt_ids(r, smcf, NGX_HTTP_SLORA_CHAT, text,
                                       &plain,
                                       ngx_http_slora_chat_bos(r, req),
                                       NULL, n_ctx, n_ctx, 0, enc, out, e);
    }

    req->msgs = all;
    req->n_msgs = n_all;

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc != NGX_OK) {
        return e->code != NULL
               && ngx_strcmp(e->code, "context_length_exceeded") == 0
               ? NGX_DECLINED : NGX_ERROR;
    }

    if (req->max_tokens >= 0 && out->n + req->max_tokens > n_ctx) {
        (void) ngx_http_slora_fail(e, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                   "invalid_request_error",
                                   "context_length_exceeded",
                                   "max_output_tokens",
                                   "This model's maximum context length is"
                                   " %D tokens. However, you requested %D"
                                   " tokens (%D in the prompt, %D for the"
                                   " completion)", n_ctx,
                                   out->n + (int32_t) req->max_tokens,
                                   out->n, (int32_t) req->max_tokens);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The prompt's log-probabilities a request asks for, bounded: vLLM's
 * prompt_logprobs list each prompt token after the first with its
 * alternatives, once a prompt; a completion's echo with logprobs lists
 * each prompt token in every choice's lists (its token, figure, offset
 * and alternatives). Their entries, over the request, at most
 * NGX_HTTP_SLORA_PROMPT_LP_MAX: an entry is some 80 bytes of the worker's
 * memory until the answer goes. A 400 naming the field past it.
 */
ngx_int_t
ngx_http_slora_prompt_lp_bound(const slora_openai_req_t *req,
    const ngx_http_slora_prompt_t *prompt, ngx_uint_t n_prompts,
    ngx_http_slora_err_t *e)
{
    int64_t     entries;
    ngx_uint_t  k;

    entries = 0;

    for (k = 0; k < n_prompts; k++) {
        if (req->prompt_logprobs) {
            entries += (int64_t) (prompt[k].n - 1) * (req->prompt_top + 1);
        }

        if (req->echo && req->logprobs) {
            entries += (int64_t) req->n * prompt[k].n
                       * (req->top_logprobs + 2);
        }
    }

    if (entries <= NGX_HTTP_SLORA_PROMPT_LP_MAX) {
        return NGX_OK;
    }

    return ngx_http_slora_fail(e, NGX_HTTP_BAD_REQUEST,
                               "invalid_request_error", "invalid_value",
                               req->prompt_logprobs ? "prompt_logprobs"
                                                    : "logprobs",
                               "The prompt's log-probabilities would list "
                               "%L entries (each prompt token and its "
                               "alternatives%s), more than the %d this "
                               "server gives a request; ask for fewer "
                               "alternatives, choices or prompt tokens",
                               entries,
                               req->echo && req->logprobs
                               ? ", in each choice's echo" : "",
                               NGX_HTTP_SLORA_PROMPT_LP_MAX);
}
