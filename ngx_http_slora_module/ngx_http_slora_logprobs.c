/*
 * ngx_http_slora_logprobs.c: the "logprobs" of OpenAI's answers, from the
 * log-probability record the engine publishes beside each output token
 * (slora_logprob_t in the zone).
 *
 * Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]},
 * ...], "refusal": null}. Completions (the legacy API): {"tokens",
 * "token_logprobs", "top_logprobs" (an object a token: token text to
 * log-probability, the alternatives' and the chosen token's), "text_offset"
 * (code points into the completion)}. And vLLM's "prompt_logprobs" of
 * either, from the records the engine writes for the prompt: a list of
 * null and then, a prompt token each, an object of token ids to
 * {"logprob", "rank", "decoded_token"}; and vLLM's return_token_ids, the
 * prompt's ids and the generated ones, taken and sent as the entries
 * are.
 *
 * The one idea: a token's entry is printed once, when the worker takes
 * the token, into buffers that wait for the event (stream) or the body
 * (not) that carries the token's text; so the zone's record is read
 * while the slot is held, and a stream's chunk carries exactly the
 * tokens taken since the last chunk. A token's text is its own bytes as
 * UTF-8, a partial character as U+FFFD (its "bytes" are exact), or with
 * vLLM's return_tokens_as_token_ids "token_id:N" (its "bytes" still
 * its own).
 */

#include "ngx_http_slora_module.h"
#include <math.h>

#include "ngx_http_slora_text.h"


#define NGX_HTTP_SLORA_LP_TOKENS   0        /* chat: the content entries */
#define NGX_HTTP_SLORA_LP_LOGPROBS 1
#define NGX_HTTP_SLORA_LP_TOPS     2
#define NGX_HTTP_SLORA_LP_OFFSETS  3


static ngx_int_t ngx_http_slora_lp_token(ngx_http_request_t *r,
    ngx_http_slora_lp_t *lp, int32_t token, ngx_uint_t as_ids,
    ngx_str_t *raw, ngx_str_t *text);
static ngx_int_t ngx_http_slora_lp_prompt_entry(ngx_http_request_t *r,
    ngx_http_slora_choice_t *ch, int32_t token, float logprob,
    int32_t rank);
static ngx_int_t ngx_http_slora_lp_room(ngx_http_request_t *r,
    ngx_http_slora_lpbuf_t *b, size_t need);
static ngx_int_t ngx_http_slora_lp_str(ngx_http_request_t *r,
    ngx_http_slora_lpbuf_t *b, ngx_str_t *s);
static ngx_int_t ngx_http_slora_lp_num(ngx_http_request_t *r,
    ngx_http_slora_lpbuf_t *b, float v);
static ngx_int_t ngx_http_slora_lp_bytes(ngx_http_request_t *r,
    ngx_http_slora_lpbuf_t *b, ngx_str_t *raw);
static ngx_int_t ngx_http_slora_lp_chat_entry(ngx_http_request_t *r,
    ngx_http_slora_lp_t *lp, int32_t token, float logprob, int32_t n_top,
    const slora_top_t *top);


/* The entry of one output token, taken with its record in the zone
 * (the request's top_logprobs alternatives of it shown) and the code
 * points of the completion before its text; or of an echoed prompt's
 * token, the first without a record (zrec NULL: null figures). */
ngx_int_t
ngx_http_slora_lp_add(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, int32_t token, const slora_logprob_t *zrec,
    size_t offset)
{
    u_char                   num[32];
    float                    logprob;
    size_t                   mark;
    int32_t                  j, k, n_top, n_keys;
    ngx_str_t                raw, text;
    slora_top_t              top[SLORA_QUEUE_TOP_MAX + 1];
    ngx_http_slora_lpbuf_t  *part, *tops;
    struct {
        size_t               start;
        size_t               len;
    }                        key[SLORA_QUEUE_TOP_MAX + 1];

    /* a copy, its count bounded: the zone is another process's */
    logprob = zrec != NULL ? zrec->logprob : 0;
    n_top = zrec != NULL ? ngx_min(ngx_max(zrec->n_top, 0),
                                   ngx_min(ctx->top_logprobs,
                                           SLORA_QUEUE_TOP_MAX))
                         : 0;
    if (n_top > 0) {
        ngx_memcpy(top, zrec->top, (size_t) n_top * sizeof(slora_top_t));
    }

    part = ch->lp.part;
    ch->lp.as_ids = ctx->tokens_as_ids;

    if (ctx->kind == NGX_HTTP_SLORA_CHAT) {
        if ((part[0].len && ngx_http_slora_lp_put(r, &part[0],
                                                  (u_char *) ",", 1)
                            != NGX_OK)
            || ngx_http_slora_lp_chat_entry(r, &ch->lp, token, logprob,
                                            n_top, top)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        ch->lp.n++;
        return NGX_OK;
    }

    if (ngx_http_slora_lp_token(r, &ch->lp, token, ch->lp.as_ids, &raw,
                                &text)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (j = 0; j < 4; j++) {
        if (part[j].len
            && ngx_http_slora_lp_put(r, &part[j], (u_char *) ",", 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_slora_lp_str(r, &part[NGX_HTTP_SLORA_LP_TOKENS], &text)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (zrec == NULL) {
        if (ngx_http_slora_lp_put(r, &part[NGX_HTTP_SLORA_LP_LOGPROBS],
                                  (u_char *) "null", 4)
            != NGX_OK
            || ngx_http_slora_lp_put(r, &part[NGX_HTTP_SLORA_LP_TOPS],
                                     (u_char *) "null", 4)
               != NGX_OK
            || ngx_http_slora_lp_put(r, &part[NGX_HTTP_SLORA_LP_OFFSETS],
                                     num,
                                     ngx_sprintf(num, "%uz", offset) - num)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        ch->lp.n++;
        return NGX_OK;
    }

    /* the legacy API's object holds the chosen token too, where it is
     * not among the likeliest: up to logprobs + 1 entries (OpenAI's and
     * vLLM's) */
    for (j = 0; j < n_top && top[j].id != token; j++) { /* void */ }

    if (j == n_top) {
        top[n_top].id = token;
        top[n_top].logprob = logprob;
        n_top++;
    }

    if (ngx_http_slora_lp_num(r, &part[NGX_HTTP_SLORA_LP_LOGPROBS], logprob)
        != NGX_OK
        || ngx_http_slora_lp_put(r, &part[NGX_HTTP_SLORA_LP_TOPS],
                                 (u_char *) "{", 1)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a key once: tokens of one text (partial characters, each shown
     * U+FFFD) keep the likeliest's figure, the first in the object, the
     * rest left out rather than printed as keys a JSON parser would
     * take the last of */
    tops = &part[NGX_HTTP_SLORA_LP_TOPS];
    n_keys = 0;

    for (j = 0; j < n_top; j++) {
        mark = tops->len;

        if (ngx_http_slora_lp_token(r, &ch->lp, top[j].id, ch->lp.as_ids,
                                    &raw, &text)
            != NGX_OK
            || (n_keys && ngx_http_slora_lp_put(r, tops, (u_char *) ",", 1)
                          != NGX_OK))
        {
            return NGX_ERROR;
        }

        key[n_keys].start = tops->len;

        if (ngx_http_slora_lp_str(r, tops, &text) != NGX_OK) {
            return NGX_ERROR;
        }

        key[n_keys].len = tops->len - key[n_keys].start;

        for (k = 0; k < n_keys; k++) {
            if (key[k].len == key[n_keys].len
                && ngx_memcmp(tops->data + key[k].start,
                              tops->data + key[n_keys].start, key[k].len)
                   == 0)
            {
                break;
            }
        }

        if (k < n_keys) {
            tops->len = mark;
            continue;
        }

        n_keys++;

        if (ngx_http_slora_lp_put(r, tops, (u_char *) ":", 1) != NGX_OK
            || ngx_http_slora_lp_num(r, tops, top[j].logprob) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_slora_lp_put(r, &part[NGX_HTTP_SLORA_LP_TOPS],
                              (u_char *) "}", 1)
        != NGX_OK
        || ngx_http_slora_lp_put(r, &part[NGX_HTTP_SLORA_LP_OFFSETS], num,
                                 ngx_sprintf(num, "%uz", offset) - num)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ch->lp.n++;

    return NGX_OK;
}


/*
 * vLLM's prompt_logprobs, one prompt token's entry into the choice's
 * list: null for the first (nothing comes before it; zrec NULL), else an
 * object of token ids to {"logprob", "rank", "decoded_token"}: the
 * prompt's token first with its rank, then the row's max_top likeliest
 * (rank their place), the token itself not twice. The decoded token is
 * the token's text, as vLLM's, whatever return_tokens_as_token_ids says.
 */
ngx_int_t
ngx_http_slora_lp_prompt(ngx_http_request_t *r, ngx_http_slora_choice_t *ch,
    int32_t token, const slora_logprob_t *zrec, int32_t max_top)
{
    int32_t                  j, n_top;
    slora_top_t              top[SLORA_QUEUE_TOP_MAX];
    ngx_http_slora_lpbuf_t  *b;

    b = &ch->prompt_lp;

    if (b->len && ngx_http_slora_lp_put(r, b, (u_char *) ",", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (zrec == NULL) {
        return ngx_http_slora_lp_put(r, b, (u_char *) "null", 4);
    }

    /* a copy, its count bounded: the zone is another process's */
    n_top = ngx_min(ngx_max(zrec->n_top, 0),
                    ngx_min(max_top, SLORA_QUEUE_TOP_MAX));
    if (n_top > 0) {
        ngx_memcpy(top, zrec->top, (size_t) n_top * sizeof(slora_top_t));
    }

    if (ngx_http_slora_lp_put(r, b, (u_char *) "{", 1) != NGX_OK
        || ngx_http_slora_lp_prompt_entry(r, ch, token, zrec->logprob,
                                          zrec->rank)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (j = 0; j < n_top; j++) {
        if (top[j].id == token) {
            continue;
        }

        if (ngx_http_slora_lp_put(r, b, (u_char *) ",", 1) != NGX_OK
            || ngx_http_slora_lp_prompt_entry(r, ch, top[j].id,
                                              top[j].logprob, j + 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_slora_lp_put(r, b, (u_char *) "}", 1);
}


/* "id":{"logprob":x,"rank":n,"decoded_token":"text"} */
static ngx_int_t
ngx_http_slora_lp_prompt_entry(ngx_http_request_t *r,
    ngx_http_slora_choice_t *ch, int32_t token, float logprob, int32_t rank)
{
    u_char                   num[64];
    ngx_str_t                raw, text;
    ngx_http_slora_lpbuf_t  *b;

    b = &ch->prompt_lp;

    if (ngx_http_slora_lp_token(r, &ch->lp, token, 0, &raw, &text) != NGX_OK
        || ngx_http_slora_lp_put(r, b, num,
                                 ngx_sprintf(num, "\"%D\":{\"logprob\":",
                                             token)
                                 - num)
           != NGX_OK
        || ngx_http_slora_lp_num(r, b, logprob) != NGX_OK
        || ngx_http_slora_lp_put(r, b, num,
                                 ngx_sprintf(num, ",\"rank\":%D,"
                                             "\"decoded_token\":", rank)
                                 - num)
           != NGX_OK
        || ngx_http_slora_lp_str(r, b, &text) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_slora_lp_put(r, b, (u_char *) "}", 1);
}


/* vLLM's return_token_ids: a generated token's id into the choice's
 * list of those not yet sent. */
ngx_int_t
ngx_http_slora_ids_add(ngx_http_request_t *r, ngx_http_slora_choice_t *ch,
    int32_t token)
{
    u_char  num[16];

    return ngx_http_slora_lp_put(r, &ch->ids, num,
                                 ngx_sprintf(num, ch->ids.len ? ",%D" : "%D",
                                             token)
                                 - num);
}


/* Bytes ngx_http_slora_ids_json and, where its prompt's have not gone,
 * ngx_http_slora_prompt_ids_json may write for a choice (NULL: none). */
size_t
ngx_http_slora_ids_max(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch)
{
    if (!ctx->return_ids || ch == NULL) {
        return 0;
    }

    return sizeof(",\"token_ids\":[]") + ch->ids.len
           + (ch->prompt_ids_sent
              ? 0
              : sizeof(",\"prompt_token_ids\":[]")
                + (size_t) ch->n_prompt_ids * NGX_INT32_LEN);
}


/* ,"token_ids":[...]: the choice's ids taken since the last, dropped */
u_char *
ngx_http_slora_ids_json(u_char *p, ngx_http_slora_choice_t *ch)
{
    p = ngx_http_slora_lit(p, ",\"token_ids\":[");

    if (ch->ids.len) {
        p = ngx_cpymem(p, ch->ids.data, ch->ids.len);
    }

    *p++ = ']';
    ch->ids.len = 0;

    return p;
}


/* ,"prompt_token_ids":[...] of the choice's prompt, once */
u_char *
ngx_http_slora_prompt_ids_json(u_char *p, ngx_http_slora_choice_t *ch)
{
    int32_t  k;

    p = ngx_http_slora_lit(p, ",\"prompt_token_ids\":[");

    for (k = 0; k < ch->n_prompt_ids; k++) {
        p = ngx_sprintf(p, k ? ",%D" : "%D", ch->prompt_ids[k]);
    }

    *p++ = ']';
    ch->prompt_ids_sent = 1;

    return p;
}


/* Bytes ngx_http_slora_lp_json may write for a choice (NULL: none). */
size_t
ngx_http_slora_lp_max(ngx_http_slora_choice_t *ch)
{
    size_t      n;
    ngx_uint_t  j;

    n = 128;

    for (j = 0; ch != NULL && j < 4; j++) {
        n += ch->lp.part[j].len;
    }

    return n;
}


/*
 * The value of "logprobs": null when none were asked for, or none wait
 * and whole is 0 (a stream's chunk without tokens); else the entries
 * waiting, which it then drops.
 */
u_char *
ngx_http_slora_lp_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, ngx_uint_t whole)
{
    ngx_uint_t               j;
    ngx_http_slora_lpbuf_t  *part;

    if (!ctx->logprobs || (ch->lp.n == 0 && !whole)) {
        return ngx_http_slora_lit(p, "null");
    }

    part = ch->lp.part;

    if (ctx->kind == NGX_HTTP_SLORA_CHAT) {
        p = ngx_http_slora_lit(p, "{\"content\":[");
        p = ngx_cpymem(p, part[0].data, part[0].len);
        p = ngx_http_slora_lit(p, "],\"refusal\":null}");

    } else {
        p = ngx_http_slora_lit(p, "{\"tokens\":[");
        p = ngx_cpymem(p, part[0].data, part[0].len);
        p = ngx_http_slora_lit(p, "],\"token_logprobs\":[");
        p = ngx_cpymem(p, part[1].data, part[1].len);
        p = ngx_http_slora_lit(p, "],\"top_logprobs\":[");
        p = ngx_cpymem(p, part[2].data, part[2].len);
        p = ngx_http_slora_lit(p, "],\"text_offset\":[");
        p = ngx_cpymem(p, part[3].data, part[3].len);
        p = ngx_http_slora_lit(p, "]}");
    }

    for (j = 0; j < 4; j++) {
        part[j].len = 0;
    }

    ch->lp.n = 0;

    return p;
}


/* {"token", "logprob", "bytes", and with top "top_logprobs"} into the
 * chat's entries, part[0]. */
static ngx_int_t
ngx_http_slora_lp_chat_entry(ngx_http_request_t *r, ngx_http_slora_lp_t *lp,
    int32_t token, float logprob, int32_t n_top, const slora_top_t *top)
{
    int32_t                  j;
    ngx_str_t                raw, text;
    ngx_http_slora_lpbuf_t  *b;

    b = &lp->part[0];

    if (ngx_http_slora_lp_token(r, lp, token, lp->as_ids, &raw, &text)
        != NGX_OK
        || ngx_http_slora_lp_put(r, b, (u_char *) "{\"token\":", 9) != NGX_OK
        || ngx_http_slora_lp_str(r, b, &text) != NGX_OK
        || ngx_http_slora_lp_put(r, b, (u_char *) ",\"logprob\":", 11)
           != NGX_OK
        || ngx_http_slora_lp_num(r, b, logprob) != NGX_OK
        || ngx_http_slora_lp_put(r, b, (u_char *) ",\"bytes\":", 9) != NGX_OK
        || ngx_http_slora_lp_bytes(r, b, &raw) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (top != NULL) {
        if (ngx_http_slora_lp_put(r, b, (u_char *) ",\"top_logprobs\":[", 17)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (j = 0; j < n_top; j++) {
            if ((j && ngx_http_slora_lp_put(r, b, (u_char *) ",", 1)
                      != NGX_OK)
                || ngx_http_slora_lp_chat_entry(r, lp, top[j].id,
                                                top[j].logprob, 0, NULL)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (ngx_http_slora_lp_put(r, b, (u_char *) "]", 1) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_slora_lp_put(r, b, (u_char *) "}", 1);
}


/* A token's raw bytes, and its text: those bytes as UTF-8, a partial or
 * invalid sequence as U+FFFD (the streaming detokenizer, flushed), or
 * "token_id:N" with as_ids; both in lp's scratch, valid until the next
 * call. */
static ngx_int_t
ngx_http_slora_lp_token(ngx_http_request_t *r, ngx_http_slora_lp_t *lp,
    int32_t token, ngx_uint_t as_ids, ngx_str_t *raw, ngx_str_t *text)
{
    int                          rc;
    size_t                       n, k, cap;
    slora_detok_t                d;
    ngx_http_slora_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_slora_module);

    lp->raw.len = 0;
    n = 0;

    for ( ;; ) {
        if (ngx_http_slora_lp_room(r, &lp->raw, ngx_max(n, 64)) != NGX_OK) {
            return NGX_ERROR;
        }

        n = 0;
        rc = slora_tokenizer_token_bytes(smcf->tokenizer, token,
                                         (char *) lp->raw.data, lp->raw.cap,
                                         &n);

        if (rc == SLORA_BUSY && n > lp->raw.cap) {
            continue;
        }

        if (rc != SLORA_OK) {
            /* not a token of this vocabulary: an empty text */
            n = 0;
        }

        break;
    }

    raw->data = lp->raw.data;
    raw->len = n;

    /* each byte becomes at most a 3-byte U+FFFD; the detokenizer asks
     * for room for 8 held bytes more */
    cap = 3 * (n + 8);
    lp->text.len = 0;

    if (ngx_http_slora_lp_room(r, &lp->text, cap) != NGX_OK) {
        return NGX_ERROR;
    }

    if (as_ids) {
        text->data = lp->text.data;
        text->len = ngx_sprintf(lp->text.data, "token_id:%D", token)
                    - lp->text.data;
        return NGX_OK;
    }

    slora_detok_init(&d);
    k = 0;

    if (n > 0
        && slora_detok_push(&d, smcf->tokenizer, token, 0,
                            (char *) lp->text.data, cap, &k)
           != SLORA_OK)
    {
        k = 0;
    }

    n = 0;
    slora_detok_flush(&d, (char *) lp->text.data + k, cap - k, &n);
    text->data = lp->text.data;
    text->len = k + n;

    return NGX_OK;
}


/* Room for need more bytes in b. */
static ngx_int_t
ngx_http_slora_lp_room(ngx_http_request_t *r, ngx_http_slora_lpbuf_t *b,
    size_t need)
{
    u_char  *p;
    size_t   cap;

    if (b->len + need <= b->cap) {
        return NGX_OK;
    }

    cap = ngx_max(2 * b->cap, ngx_max(b->len + need, 256));

    p = ngx_pnalloc(r->pool, cap);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (b->len) {
        ngx_memcpy(p, b->data, b->len);
    }

    /* the old copy goes back once it is a large allocation of its own */
    if (b->data != NULL) {
        ngx_pfree(r->pool, b->data);
    }

    b->data = p;
    b->cap = cap;

    return NGX_OK;
}


/* Appends data to b, which grows as needed. */
ngx_int_t
ngx_http_slora_lp_put(ngx_http_request_t *r, ngx_http_slora_lpbuf_t *b,
    const u_char *data, size_t len)
{
    if (ngx_http_slora_lp_room(r, b, len) != NGX_OK) {
        return NGX_ERROR;
    }

    if (len) {
        ngx_memcpy(b->data + b->len, data, len);
        b->len += len;
    }

    return NGX_OK;
}


/* s as a JSON string */
static ngx_int_t
ngx_http_slora_lp_str(ngx_http_request_t *r, ngx_http_slora_lpbuf_t *b,
    ngx_str_t *s)
{
    if (ngx_http_slora_lp_room(r, b, ngx_http_slora_json_escape(NULL,
                                                                s->data,
                                                                s->len) + 2)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    b->data[b->len++] = '"';
    b->len += ngx_http_slora_json_escape(b->data + b->len, s->data, s->len);
    b->data[b->len++] = '"';

    return NGX_OK;
}


/* A log-probability: 9 significant digits, a float's round trip; one
 * that is not finite (a row that was) as the least a float holds. */
static ngx_int_t
ngx_http_slora_lp_num(ngx_http_request_t *r, ngx_http_slora_lpbuf_t *b,
    float v)
{
    int   n;
    char  num[32];

    if (!isfinite(v)) {
        v = -3.4028235e38f;
    }

    n = snprintf(num, sizeof(num), "%.9g", (double) v);

    return ngx_http_slora_lp_put(r, b, (u_char *) num, (size_t) n);
}


/* [b0,b1,...] */
static ngx_int_t
ngx_http_slora_lp_bytes(ngx_http_request_t *r, ngx_http_slora_lpbuf_t *b,
    ngx_str_t *raw)
{
    u_char      num[8];
    ngx_uint_t  i;

    if (ngx_http_slora_lp_put(r, b, (u_char *) "[", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < raw->len; i++) {
        if (ngx_http_slora_lp_put(r, b, num,
                                  ngx_sprintf(num, i ? ",%ui" : "%ui",
                                              (ngx_uint_t) raw->data[i])
                                  - num)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_slora_lp_put(r, b, (u_char *) "]", 1);
}
