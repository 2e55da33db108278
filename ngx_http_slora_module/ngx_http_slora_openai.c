/*
 * ngx_http_slora_openai.c: the JSON bodies of OpenAI's API as this module
 * sends them: errors, chat.completion and text_completion objects, their
 * streaming chunks with the usage chunk, and the model list. A request
 * for n choices has n entries in its body and chunks that each carry their
 * choice's index; usage counts its prompt once and the completions of all
 * its choices. A chat answer read as tool calls (ngx_http_slora_tools.c)
 * has them in "tool_calls" and a null content; a stream's chunks start
 * each call (id, type, name) and then carry its arguments' text. Usage
 * counts the prompt's tokens the prefix cache gave as OpenAI does,
 * prompt_tokens_details.cached_tokens, and, where think blocks are read
 * (slora_reasoning), the answers' tokens in them,
 * completion_tokens_details.reasoning_tokens. vLLM's prompt_logprobs go in
 * each completion choice, or once in a chat answer, as vLLM puts them;
 * so do return_token_ids' prompt_token_ids (a stream's in a choice's
 * first chunk), with each choice's (or chunk's) token_ids. A completion
 * with best_of above n shows each prompt's n likeliest candidates
 * (ngx_http_slora_ranked); usage counts every candidate's tokens, all of
 * them generated.
 *
 * The one idea: these bodies are templates with a few escaped strings in
 * them, so they are printed straight into nginx buffers whose size is
 * bounded up front (every escaped byte takes at most 6), instead of being
 * built as cJSON trees for every token.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"


#define NGX_HTTP_SLORA_JSON_OVERHEAD  640


static u_char *ngx_http_slora_head_json(u_char *p,
    ngx_http_slora_ctx_t *ctx, const char *object);
static u_char *ngx_http_slora_usage_obj(u_char *p,
    ngx_http_slora_ctx_t *ctx);
static u_char *ngx_http_slora_chunk_usage(u_char *p,
    ngx_http_slora_ctx_t *ctx);
static u_char *ngx_http_slora_content_json(u_char *p,
    ngx_http_slora_ctx_t *ctx, const u_char *text, size_t len);
static u_char *ngx_http_slora_calls_json(u_char *p,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch);
static u_char *ngx_http_slora_prompt_lp_json(u_char *p,
    ngx_http_slora_choice_t *ch);
static ngx_uint_t ngx_http_slora_ranked(ngx_http_slora_ctx_t *ctx,
    ngx_uint_t *shown);
static ngx_uint_t ngx_http_slora_likelier(ngx_http_slora_choice_t *a,
    ngx_http_slora_choice_t *b);
static double ngx_http_slora_lp_mean(ngx_http_slora_choice_t *ch,
    ngx_uint_t n);
static u_char *ngx_http_slora_call_id(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, ngx_uint_t k);
static u_char *ngx_http_slora_delta_json(u_char *p,
    ngx_http_slora_ctx_t *ctx, ngx_http_slora_choice_t *ch,
    const char *key, const u_char *text, size_t len, const char *finish,
    ngx_uint_t role);


size_t
ngx_http_slora_error_max(size_t msg_len)
{
    return NGX_HTTP_SLORA_JSON_OVERHEAD + 6 * msg_len;
}


u_char *
ngx_http_slora_error_json(u_char *p, const char *type, const char *code,
    const char *param, const u_char *msg, size_t len)
{
    p = ngx_http_slora_lit(p, "{\"error\":{\"message\":");
    p = ngx_http_slora_json_str(p, msg, len);
    p = ngx_http_slora_lit(p, ",\"type\":");
    p = ngx_http_slora_json_cstr(p, type);
    p = ngx_http_slora_lit(p, ",\"param\":");
    p = ngx_http_slora_json_cstr(p, param);
    p = ngx_http_slora_lit(p, ",\"code\":");
    p = ngx_http_slora_json_cstr(p, code);
    p = ngx_http_slora_lit(p, "}}");

    return p;
}


/* Bytes a chunk of choice ch (NULL: none) with len bytes of text may
 * take. */
size_t
ngx_http_slora_chunk_max(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, size_t len)
{
    return NGX_HTTP_SLORA_JSON_OVERHEAD + 6 * (ctx->model.len + len)
           + ngx_http_slora_lp_max(ch) + ngx_http_slora_ids_max(ctx, ch);
}


u_char *
ngx_http_slora_chunk_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, const u_char *text, size_t len,
    const char *finish, ngx_uint_t role)
{
    return ngx_http_slora_delta_json(p, ctx, ch, "content", text, len,
                                     finish, role);
}


/* A chat chunk of reasoning: delta.reasoning, the think block's text
 * (ngx_http_slora_think.c); at most ngx_http_slora_chunk_max(ctx, ch,
 * len) bytes. */
u_char *
ngx_http_slora_reason_chunk_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, const u_char *text, size_t len)
{
    return ngx_http_slora_delta_json(p, ctx, ch, "reasoning", text, len,
                                     NULL, 0);
}


/* A chunk whose chat delta has text under key. */
static u_char *
ngx_http_slora_delta_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, const char *key, const u_char *text,
    size_t len, const char *finish, ngx_uint_t role)
{
    if (ctx->kind == NGX_HTTP_SLORA_CHAT) {
        p = ngx_http_slora_head_json(p, ctx, "chat.completion.chunk");
        p = ngx_sprintf(p, ",\"choices\":[{\"index\":%ui,\"delta\":{",
                        ch->index);

        if (role) {
            p = ngx_http_slora_lit(p, "\"role\":\"assistant\","
                                      "\"content\":\"\"");

        } else if (finish == NULL) {
            p = ngx_sprintf(p, "\"%s\":", key);
            p = ngx_http_slora_json_str(p, text, len);
        }

        p = ngx_http_slora_lit(p, "},\"logprobs\":");
        p = ngx_http_slora_lp_json(p, ctx, ch, 0);

    } else {
        p = ngx_http_slora_head_json(p, ctx, "text_completion");
        p = ngx_http_slora_lit(p, ",\"choices\":[{\"text\":");
        p = ngx_http_slora_json_str(p, text, len);
        p = ngx_sprintf(p, ",\"index\":%ui,\"logprobs\":", ch->index);
        p = ngx_http_slora_lp_json(p, ctx, ch, 0);

        /* return_token_ids: the prompt's in the choice's first chunk */
        if (ctx->return_ids && !ch->prompt_ids_sent) {
            p = ngx_http_slora_prompt_ids_json(p, ch);
        }
    }

    if (ctx->return_ids) {
        p = ngx_http_slora_ids_json(p, ch);
    }

    p = ngx_http_slora_lit(p, ",\"finish_reason\":");
    p = ngx_http_slora_json_cstr(p, finish);
    p = ngx_http_slora_lit(p, "}]");

    /* a chat's, beside the choices of its first chunk (the role's) */
    if (ctx->return_ids && role) {
        p = ngx_http_slora_prompt_ids_json(p, ch);
    }

    p = ngx_http_slora_chunk_usage(p, ctx);

    *p++ = '}';

    return p;
}


/* A stream's chunk of tool call k of choice ch: its start (name given:
 * id, type, the name and empty arguments) or a piece of its arguments.
 * It takes at most ngx_http_slora_chunk_max(ctx, ch, len) bytes. */
u_char *
ngx_http_slora_tool_chunk_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, ngx_uint_t k, const char *name,
    const u_char *args, size_t len)
{
    p = ngx_http_slora_head_json(p, ctx, "chat.completion.chunk");
    p = ngx_sprintf(p, ",\"choices\":[{\"index\":%ui,\"delta\":"
                    "{\"tool_calls\":[{\"index\":%ui,", ch->index, k);

    if (name != NULL) {
        p = ngx_http_slora_call_id(p, ctx, ch, k);
        p = ngx_http_slora_lit(p, ",\"type\":\"function\",\"function\":"
                                  "{\"name\":");
        p = ngx_http_slora_json_cstr(p, name);
        p = ngx_http_slora_lit(p, ",\"arguments\":\"\"}}]}");

    } else {
        p = ngx_http_slora_lit(p, "\"function\":{\"arguments\":");
        p = ngx_http_slora_json_str(p, args, len);
        p = ngx_http_slora_lit(p, "}}]}");
    }

    p = ngx_http_slora_lit(p, ",\"logprobs\":");
    p = ngx_http_slora_lp_json(p, ctx, ch, 0);

    if (ctx->return_ids) {
        p = ngx_http_slora_ids_json(p, ch);
    }

    p = ngx_http_slora_lit(p, ",\"finish_reason\":null}]");

    p = ngx_http_slora_chunk_usage(p, ctx);

    *p++ = '}';

    return p;
}


/* A chunk's usage, where include_usage asks for the last chunk's: null,
 * or with vLLM's continuous_usage_stats the request's counts so far (as
 * the last chunk's counts them; at most 80 bytes, within the chunk's
 * overhead). */
static u_char *
ngx_http_slora_chunk_usage(u_char *p, ngx_http_slora_ctx_t *ctx)
{
    int32_t  n;

    if (!ctx->include_usage) {
        return p;
    }

    if (!ctx->continuous_usage) {
        return ngx_http_slora_lit(p, ",\"usage\":null");
    }

    n = ngx_http_slora_completion_tokens(ctx);

    return ngx_sprintf(p, ",\"usage\":{\"prompt_tokens\":%D,"
                       "\"completion_tokens\":%D,\"total_tokens\":%D}",
                       ctx->n_prompt, n, ctx->n_prompt + n);
}


u_char *
ngx_http_slora_usage_json(u_char *p, ngx_http_slora_ctx_t *ctx)
{
    p = ngx_http_slora_head_json(p, ctx,
                                 ctx->kind == NGX_HTTP_SLORA_CHAT
                                 ? "chat.completion.chunk"
                                 : "text_completion");
    p = ngx_http_slora_lit(p, ",\"choices\":[],");
    p = ngx_http_slora_usage_obj(p, ctx);
    *p++ = '}';

    return p;
}


ngx_buf_t *
ngx_http_slora_response_json(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx)
{
    u_char                   *p;
    size_t                    size;
    ngx_buf_t                *b;
    ngx_uint_t                i, k, n_shown;
    ngx_uint_t                shown[SLORA_OPENAI_MAX_N];
    ngx_http_slora_choice_t  *ch;

    size = 0;
    n_shown = ngx_http_slora_ranked(ctx, shown);

    for (i = 0; i < ctx->n_choices; i++) {
        ch = &ctx->choice[i];
        size += ngx_http_slora_chunk_max(ctx, ch, ch->text_len
                                              + ctx->chat_echo.len)
                + ch->n_calls * NGX_HTTP_SLORA_JSON_OVERHEAD
                + 6 * ch->reason_len + sizeof(",\"reasoning\":null")
                + sizeof(",\"prompt_logprobs\":[]")
                + ctx->choice[i - i % ctx->n_each].prompt_lp.len;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NULL;
    }

    p = ngx_http_slora_head_json(b->last, ctx,
                                 ctx->kind == NGX_HTTP_SLORA_CHAT
                                 ? "chat.completion" : "text_completion");
    p = ngx_http_slora_lit(p, ",\"choices\":[");

    for (k = 0; k < n_shown; k++) {
        i = shown[k];
        ch = &ctx->choice[i];

        if (k) {
            *p++ = ',';
        }

        if (ctx->kind == NGX_HTTP_SLORA_CHAT) {
            p = ngx_sprintf(p, "{\"index\":%ui,\"message\":"
                            "{\"role\":\"assistant\",\"content\":", k);

            if (ch->n_calls > 0) {
                p = ngx_http_slora_calls_json(p, ctx, ch);

            } else {
                p = ngx_http_slora_content_json(p, ctx, ch->text,
                                                ch->text_len);
            }

            if (ctx->think_open != NULL) {
                /* with reasoning on, null where the answer had none */
                p = ngx_http_slora_lit(p, ",\"reasoning\":");
                p = ch->reason_len > 0
                    ? ngx_http_slora_json_str(p, ch->reason, ch->reason_len)
                    : ngx_http_slora_lit(p, "null");
            }

            p = ngx_http_slora_lit(p, "},\"logprobs\":");
            p = ngx_http_slora_lp_json(p, ctx, ch, 1);

            if (ctx->return_ids) {
                p = ngx_http_slora_ids_json(p, ch);
            }

        } else {
            p = ngx_http_slora_lit(p, "{\"text\":");
            p = ngx_http_slora_json_str(p, ch->text, ch->text_len);
            p = ngx_sprintf(p, ",\"index\":%ui,\"logprobs\":", k);
            p = ngx_http_slora_lp_json(p, ctx, ch, 1);

            if (ctx->prompt_lp) {
                /* its prompt's, which the prompt's first choice read */
                p = ngx_http_slora_prompt_lp_json(p,
                                           &ctx->choice[i - i % ctx->n_each]);
            }

            if (ctx->return_ids) {
                p = ngx_http_slora_prompt_ids_json(p, ch);
                p = ngx_http_slora_ids_json(p, ch);
            }
        }

        p = ngx_http_slora_lit(p, ",\"finish_reason\":");
        p = ngx_http_slora_json_cstr(p, ch->finish);
        *p++ = '}';
    }

    p = ngx_http_slora_lit(p, "],");
    p = ngx_http_slora_usage_obj(p, ctx);

    /* chat's are the answer's, of its one prompt (vLLM's) */
    if (ctx->kind == NGX_HTTP_SLORA_CHAT && ctx->prompt_lp) {
        p = ngx_http_slora_prompt_lp_json(p, &ctx->choice[0]);
    }

    if (ctx->kind == NGX_HTTP_SLORA_CHAT && ctx->return_ids) {
        p = ngx_http_slora_prompt_ids_json(p, &ctx->choice[0]);
    }

    *p++ = '}';
    *p++ = '\n';

    b->last = p;

    return b;
}


/*
 * The choices a response shows, in their order, into shown: all of them;
 * or with best_of, each prompt's n_best likeliest candidates, likeliest
 * first, the first shown ctx->lead; "index" counts the choices shown.
 * Likeliest by the mean log-probability of the tokens of a candidate's
 * answer, OpenAI's measure ("the highest log probability per token"),
 * which a longer answer does not lose by its length alone as by the
 * sum; the stop id that ended it counts as one of its tokens (vLLM's
 * cumulative log-probability has it too), so an answer the model was
 * unlikely to end there ranks lower. Ties keep the candidates' order.
 */
static ngx_uint_t
ngx_http_slora_ranked(ngx_http_slora_ctx_t *ctx, ngx_uint_t *shown)
{
    ngx_uint_t  i, j, g, n, first;

    if (ctx->n_best == 0) {
        for (i = 0; i < ctx->n_choices; i++) {
            shown[i] = i;
        }

        return ctx->n_choices;
    }

    n = 0;

    for (g = 0; g < ctx->n_choices; g += ctx->n_each) {
        first = n;

        /* an insertion into the prompt's list so far, kept sorted */
        for (i = g; i < g + ctx->n_each; i++) {
            for (j = n; j > first
                        && ngx_http_slora_likelier(&ctx->choice[i],
                                                   &ctx->choice[shown[j - 1]]);
                 j--)
            {
                shown[j] = shown[j - 1];
            }

            shown[j] = i;
            n++;
        }

        n = first + ctx->n_best;
    }

    ctx->lead = shown[0];

    return n;
}


/* Whether candidate a ranks before b: a higher mean log-probability a
 * token, its stop id's included; an answer of no tokens and no stop id
 * has none and ranks last. */
static ngx_uint_t
ngx_http_slora_likelier(ngx_http_slora_choice_t *a,
    ngx_http_slora_choice_t *b)
{
    ngx_uint_t  na, nb;

    na = a->n_done + (a->stop_token >= 0);
    nb = b->n_done + (b->stop_token >= 0);

    if (na == 0) {
        return 0;
    }

    if (nb == 0) {
        return 1;
    }

    return ngx_http_slora_lp_mean(a, na) > ngx_http_slora_lp_mean(b, nb);
}


/* A candidate's mean log-probability over its n tokens, the stop id that
 * ended it one of them. */
static double
ngx_http_slora_lp_mean(ngx_http_slora_choice_t *ch, ngx_uint_t n)
{
    return (ch->lp_sum + (ch->stop_token >= 0 ? ch->stop_logprob : 0)) / n;
}


/* ,"prompt_logprobs":[null,{...},...] of a choice's prompt */
static u_char *
ngx_http_slora_prompt_lp_json(u_char *p, ngx_http_slora_choice_t *ch)
{
    p = ngx_http_slora_lit(p, ",\"prompt_logprobs\":[");

    if (ch->prompt_lp.len) {
        p = ngx_cpymem(p, ch->prompt_lp.data, ch->prompt_lp.len);
    }

    *p++ = ']';

    return p;
}


/* A message's content: text, after the request's chat echo where it
 * has one (vLLM's); at most 6 times their bytes and the quotes. */
static u_char *
ngx_http_slora_content_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    const u_char *text, size_t len)
{
    *p++ = '"';
    p += ngx_http_slora_json_escape(p, ctx->chat_echo.data,
                                    ctx->chat_echo.len);
    p += ngx_http_slora_json_escape(p, text, len);
    *p++ = '"';

    return p;
}


/* A message's tool calls: the text before them as content (or null;
 * after the chat echo where there is one),
 * then "tool_calls", each call's arguments its text in ch->text; at most
 * n_calls * the overhead bytes and 6 times the text. */
static u_char *
ngx_http_slora_calls_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch)
{
    ngx_uint_t              k;
    ngx_http_slora_call_t  *call;

    if (ch->tool_content > 0 || ctx->chat_echo.len > 0) {
        p = ngx_http_slora_content_json(p, ctx, ch->text, ch->tool_content);

    } else {
        p = ngx_http_slora_lit(p, "null");
    }

    p = ngx_http_slora_lit(p, ",\"tool_calls\":[");

    for (k = 0; k < ch->n_calls; k++) {
        call = &ch->calls[k];

        if (k) {
            *p++ = ',';
        }

        *p++ = '{';
        p = ngx_http_slora_call_id(p, ctx, ch, k);
        p = ngx_http_slora_lit(p, ",\"type\":\"function\",\"function\":"
                                  "{\"name\":");
        p = ngx_http_slora_json_cstr(p, call->name);
        p = ngx_http_slora_lit(p, ",\"arguments\":");
        p = ngx_http_slora_json_str(p, ch->text + call->args,
                                    call->args_len);
        p = ngx_http_slora_lit(p, "}}");
    }

    *p++ = ']';

    return p;
}


/* "id": "call_" and the request's id's random part, the choice's index
 * and the call's, two hex digits each (a request has at most 16 of
 * either). */
static u_char *
ngx_http_slora_call_id(u_char *p, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, ngx_uint_t k)
{
    size_t  skip;

    skip = sizeof("chatcmpl-") - 1;

    p = ngx_http_slora_lit(p, "\"id\":\"call_");
    p = ngx_cpymem(p, ctx->id + skip, ctx->id_len - skip);
    p = ngx_sprintf(p, "%02xi%02xi\"", ch->index & 0xff, k & 0xff);

    return p;
}


/* The completion tokens of all the request's choices. */
int32_t
ngx_http_slora_completion_tokens(ngx_http_slora_ctx_t *ctx)
{
    int32_t     n;
    ngx_uint_t  i;

    n = 0;

    for (i = 0; i < ctx->n_choices; i++) {
        n += ngx_http_slora_choice_tokens(&ctx->choice[i]);
    }

    return n;
}


/* The tokens a choice generated: its text's, and the stop id that ended
 * it, which the text leaves out (vLLM counts it, as its token ids hold
 * it). */
int32_t
ngx_http_slora_choice_tokens(ngx_http_slora_choice_t *ch)
{
    return ch->n_done + (ch->stop_token >= 0);
}


/* The tokens of all the request's choices that began in a think block
 * (ngx_http_slora_think.c). */
int32_t
ngx_http_slora_reasoning_tokens(ngx_http_slora_ctx_t *ctx)
{
    int32_t     n;
    ngx_uint_t  i;

    n = 0;

    for (i = 0; i < ctx->n_choices; i++) {
        n += ctx->choice[i].reason_tokens;
    }

    return n;
}


/* The prompt tokens the prefix cache gave, over a completion's prompts
 * as prompt_tokens counts them: each prompt's, the fewest any of its
 * choices took (a choice's prompt may take the pages another choice of
 * it computed). */
int32_t
ngx_http_slora_cached_tokens(ngx_http_slora_ctx_t *ctx)
{
    int32_t     n, least;
    ngx_uint_t  i, each;

    n = 0;
    least = 0;
    each = ctx->n_each > 0 ? ctx->n_each : 1;

    for (i = 0; i < ctx->n_choices; i++) {
        if (i % each == 0 || ctx->choice[i].n_cached < least) {
            least = ctx->choice[i].n_cached;
        }

        if (i % each == each - 1 || i == ctx->n_choices - 1) {
            n += least;
        }
    }

    return n;
}


ngx_buf_t *
ngx_http_slora_models_json(ngx_http_request_t *r,
    ngx_http_slora_main_conf_t *smcf, slora_queue_t *q)
{
    u_char      *p;
    size_t       size;
    int32_t      max_len;
    uint32_t     pos;
    ngx_str_t    base, id;
    ngx_buf_t   *b;
    const char  *name;

    size = NGX_HTTP_SLORA_JSON_OVERHEAD + ngx_http_slora_model_max(4, 0)
           + ngx_http_slora_model_max(smcf->model_id.len, 0);
    pos = 0;

    while (q && (name = slora_queue_next_name(q, &pos)) != NULL) {
        size += ngx_http_slora_model_max(ngx_strlen(name),
                                         smcf->model_id.len);
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        return NULL;
    }

    max_len = q ? ngx_http_slora_n_ctx(q) : 0;
    ngx_str_set(&base, "base");
    p = ngx_http_slora_lit(b->last, "{\"object\":\"list\",\"data\":[");
    p = ngx_http_slora_model_obj(p, &base, NULL, 0, max_len);
    *p++ = ',';
    p = ngx_http_slora_model_obj(p, &smcf->model_id, NULL, 0, max_len);

    pos = 0;

    while (q && (name = slora_queue_next_name(q, &pos)) != NULL) {
        id.data = (u_char *) name;
        id.len = ngx_strlen(name);
        *p++ = ',';
        p = ngx_http_slora_model_obj(p, &id, &smcf->model_id, 0, max_len);
    }

    p = ngx_http_slora_lit(p, "]}\n");
    b->last = p;

    return b;
}


/* Bytes ngx_http_slora_model_obj may write for an id and a parent of
 * these lengths. */
size_t
ngx_http_slora_model_max(size_t id_len, size_t parent_len)
{
    return 160 + 6 * (id_len + parent_len);
}


/* A model object: {"id", "object": "model", "created", "owned_by",
 * "max_model_len"} (vLLM's: the context a prompt and its answer share;
 * left out where max_len is 0), an adapter's with its "parent" (the base
 * model's id), a tenant's default adapter's with "default": true. */
u_char *
ngx_http_slora_model_obj(u_char *p, ngx_str_t *id, ngx_str_t *parent,
    ngx_uint_t is_default, int32_t max_len)
{
    p = ngx_http_slora_lit(p, "{\"id\":");
    p = ngx_http_slora_json_str(p, id->data, id->len);
    p = ngx_sprintf(p, ",\"object\":\"model\",\"created\":%T,"
                    "\"owned_by\":\"slora\"", ngx_time());

    if (max_len > 0) {
        p = ngx_sprintf(p, ",\"max_model_len\":%D", max_len);
    }

    if (parent != NULL) {
        p = ngx_http_slora_lit(p, ",\"parent\":");
        p = ngx_http_slora_json_str(p, parent->data, parent->len);
    }

    if (is_default) {
        p = ngx_http_slora_lit(p, ",\"default\":true");
    }

    *p++ = '}';

    return p;
}


static u_char *
ngx_http_slora_head_json(u_char *p, ngx_http_slora_ctx_t *ctx,
    const char *object)
{
    p = ngx_http_slora_lit(p, "{\"id\":\"");
    p = ngx_cpymem(p, ctx->id, ctx->id_len);
    p = ngx_sprintf(p, "\",\"object\":\"%s\",\"created\":%T,\"model\":",
                    object, ctx->created);
    p = ngx_http_slora_json_str(p, ctx->model.data, ctx->model.len);

    if (ctx->kind == NGX_HTTP_SLORA_CHAT) {
        p = ngx_http_slora_lit(p, ",\"system_fingerprint\":null");
    }

    return p;
}


static u_char *
ngx_http_slora_usage_obj(u_char *p, ngx_http_slora_ctx_t *ctx)
{
    int32_t     n, accepted, rejected;
    ngx_uint_t  i;

    n = ngx_http_slora_completion_tokens(ctx);

    p = ngx_sprintf(p, "\"usage\":{\"prompt_tokens\":%D,"
                    "\"completion_tokens\":%D,\"total_tokens\":%D,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":%D}",
                    ctx->n_prompt, n, ctx->n_prompt + n,
                    ngx_http_slora_cached_tokens(ctx));

    if (!ctx->prediction && ctx->think_open == NULL) {
        *p++ = '}';
        return p;
    }

    p = ngx_http_slora_lit(p, ",\"completion_tokens_details\":{");

    if (ctx->think_open != NULL) {
        /* the tokens of the answers' think blocks */
        p = ngx_sprintf(p, "\"reasoning_tokens\":%D%s",
                        ngx_http_slora_reasoning_tokens(ctx),
                        ctx->prediction ? "," : "");
    }

    if (ctx->prediction) {
        /* OpenAI's: the prediction's tokens the answer took, and those
         * it did not */
        accepted = 0;
        rejected = 0;

        for (i = 0; i < ctx->n_choices; i++) {
            accepted += ctx->choice[i].accepted;
            rejected += ctx->choice[i].rejected;
        }

        p = ngx_sprintf(p, "\"accepted_prediction_tokens\":%D,"
                        "\"rejected_prediction_tokens\":%D",
                        accepted, rejected);
    }

    *p++ = '}';
    *p++ = '}';

    return p;
}


u_char *
ngx_http_slora_json_str(u_char *p, const u_char *s, size_t len)
{
    *p++ = '"';
    p += ngx_http_slora_json_escape(p, s, len);
    *p++ = '"';

    return p;
}


u_char *
ngx_http_slora_json_cstr(u_char *p, const char *s)
{
    if (s == NULL) {
        return ngx_http_slora_lit(p, "null");
    }

    return ngx_http_slora_json_str(p, (const u_char *) s, ngx_strlen(s));
}
