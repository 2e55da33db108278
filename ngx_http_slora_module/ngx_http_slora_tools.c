/*
 * ngx_http_slora_tools.c: a chat answer read as tool calls, when the
 * request had tools (engine/slora_openai_tools.c). With tool_choice
 * "required" the answer is held by its schema to a JSON array of one or
 * more {"name", "arguments"} objects, with a named function (or
 * parallel_tool_calls false) to one bare object; with "auto" the model
 * writes such objects in <tool_call> tags, or plain text. A model told
 * of the tools in Llama 3.1's format writes one bare object, its
 * arguments under "parameters", as the whole answer, or plain text;
 * one told in Mistral's writes text, then [TOOL_CALLS] and its calls
 * (a JSON list, or name[ARGS]{...} each), that control token and its
 * kin shown as text to the scanner (ngx_http_slora_tool_marks).
 *
 * The one idea: the text goes through the scanner (engine/
 * slora_tool_scan.h) as it is detokenized. A stream holds the answer's
 * first bytes back while they could still be a call: once a name is
 * read, the call's start and then its arguments go out as they come;
 * once they cannot be, all of it goes out as text, as without tools.
 * With "auto", text before the first <tool_call> goes out as text as it
 * comes (blanks alone before a call are none), the calls after it. A
 * whole answer is read at its end into that text and calls whose
 * arguments are spans of its text. Either way the choice ends
 * "tool_calls" when the model chose to call (OpenAI keeps "stop" for a
 * function the client named).
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_text.h"
#include "slora_openai.h"


static slora_tool_shape_e ngx_http_slora_tool_shape(ngx_http_slora_ctx_t *ctx);


/*
 * A stream's choice: its text's first len bytes (held back from
 * ch->tool_fed on) through the scanner, and the chunks they make: text
 * before a call, the call's start, its arguments; or, once the answer
 * cannot be a call, all of it as text (ch->tool_text: from then on the
 * caller sends text itself).
 */
ngx_int_t
ngx_http_slora_tool_take(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch, size_t len, ngx_chain_t ***ll)
{
    int               content, tag;
    u_char           *p, *last;
    size_t            at, took, off, n;
    slora_tool_ev_e   ev;

    if (ctx->tools == SLORA_OPENAI_TOOLS_AUTO
        && ctx->tool_format != SLORA_OPENAI_TOOLFMT_LLAMA3
        && !ch->tool_tagged)
    {
        /* text before a call goes out as text; blanks before it do not */
        n = ngx_http_slora_tool_text(ch->text, len,
                                     slora_openai_tool_mark(ctx->tool_format),
                                     ch->tool_spoke, &ch->tool_blank,
                                     &content, &tag);

        if (n > 0 && content) {
            if (ngx_http_slora_emit_text(r, ctx, ch, n, ll) != NGX_OK) {
                return NGX_ERROR;
            }

            ch->tool_spoke = 1;

        } else if (n > 0) {
            ngx_memmove(ch->text, ch->text + n, ch->text_len - n);
            ch->text_len -= n;
        }

        len -= n;

        if (!tag) {
            return NGX_OK;
        }

        ch->tool_tagged = 1;
    }

    for (at = ch->tool_fed; at < len; at += took) {
        took = slora_tool_scan(&ch->tool, (const char *) ch->text + at,
                               len - at, &ev, &off, &n);

        if (ev == SLORA_TOOL_NOT) {
            if (ch->n_calls == 0) {
                ch->tool_text = 1;
                ch->tool_fed = 0;
                return ngx_http_slora_emit_text(r, ctx, ch, len, ll);
            }

            /* what follows the calls is dropped */
            ch->tool_shut = 1;
            took = len - at;
            continue;
        }

        if (ev == SLORA_TOOL_NAME) {
            if (ch->n_calls == NGX_HTTP_SLORA_MAX_CALLS
                || (ctx->tool_one && ch->n_calls == 1))
            {
                ch->tool_shut = 1;
            }

            if (ch->tool_shut) {
                continue;
            }

            ch->n_calls++;

        } else if (ev != SLORA_TOOL_ARGS || ch->tool_shut) {
            continue;
        }

        if (ctx->resp != NULL) {
            if (ngx_http_slora_resp_call(r, ctx,
                                         ev == SLORA_TOOL_NAME
                                         ? ch->tool.name : NULL,
                                         ch->text + at + off, n, ll)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        p = ngx_http_slora_scratch(r, ctx,
                                   ngx_http_slora_chunk_max(ctx, ch, n)
                                   + SLORA_TOOL_NAME_MAX * 6);
        if (p == NULL) {
            return NGX_ERROR;
        }

        last = ngx_http_slora_tool_chunk_json(p, ctx, ch, ch->n_calls - 1,
                                              ev == SLORA_TOOL_NAME
                                              ? ch->tool.name : NULL,
                                              ch->text + at + off, n);

        if (ngx_http_slora_emit(r, ctx, p, last - p, ll) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ch->n_calls == 0) {
        /* still undecided: hold what was read */
        ch->tool_fed = len;
        return NGX_OK;
    }

    ngx_memmove(ch->text, ch->text + len, ch->text_len - len);
    ch->text_len -= len;
    ch->tool_fed = 0;

    return NGX_OK;
}


/* A choice's scanner, before its first token. */
void
ngx_http_slora_tool_start(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch)
{
    slora_tool_scan_init(&ch->tool, ngx_http_slora_tool_shape(ctx),
                         ctx->tool_format == SLORA_OPENAI_TOOLFMT_LLAMA3);
}


/* The shape the answer's calls come in: the request's schema
 * (engine/slora_openai_tools.c) lists them for "required", holds a named
 * function (or "required" with parallel_tool_calls false) to one; with
 * "auto" the model writes them in its format: tagged, Mistral's after
 * their mark; in Llama 3.1's format the answer is one. */
static slora_tool_shape_e
ngx_http_slora_tool_shape(ngx_http_slora_ctx_t *ctx)
{
    if (ctx->tool_format == SLORA_OPENAI_TOOLFMT_LLAMA3) {
        return SLORA_TOOL_BARE;
    }

    if (ctx->tools == SLORA_OPENAI_TOOLS_AUTO) {
        switch (ctx->tool_format) {

        case SLORA_OPENAI_TOOLFMT_MISTRAL_LIST:
            return SLORA_TOOL_MISTRAL;

        case SLORA_OPENAI_TOOLFMT_MISTRAL_IDS:
        case SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS:
            return SLORA_TOOL_MISTRAL_NAMED;

        default:
            return SLORA_TOOL_TAGGED;
        }
    }

    if (ctx->tools == SLORA_OPENAI_TOOLS_REQUIRED && !ctx->tool_one) {
        return SLORA_TOOL_LISTED;
    }

    return SLORA_TOOL_BARE;
}


/* A whole answer (not streamed) read into ch->calls; none when it is
 * text. */
ngx_int_t
ngx_http_slora_tool_read(ngx_http_request_t *r, ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch)
{
    int                     content, tag;
    size_t                  at, took, off, n, blanks;
    slora_tool_ev_e         ev;
    ngx_http_slora_call_t  *call;

    ch->n_calls = 0;
    ch->tool_content = 0;
    at = 0;

    if (ctx->tools == SLORA_OPENAI_TOOLS_AUTO
        && ctx->tool_format != SLORA_OPENAI_TOOLFMT_LLAMA3)
    {
        /* the text before the first tag, content unless blanks alone */
        blanks = 0;
        at = ngx_http_slora_tool_text(ch->text, ch->text_len,
                                      slora_openai_tool_mark(ctx->tool_format),
                                      0, &blanks, &content, &tag);
        if (!tag) {
            return NGX_OK;
        }

        ch->tool_content = content ? at : 0;
    }

    ch->calls = ngx_pcalloc(r->pool, NGX_HTTP_SLORA_MAX_CALLS
                                     * sizeof(ngx_http_slora_call_t));
    if (ch->calls == NULL) {
        return NGX_ERROR;
    }

    ngx_http_slora_tool_start(ctx, ch);
    call = NULL;

    for ( /* void */ ; at < ch->text_len; at += took) {
        took = slora_tool_scan(&ch->tool, (const char *) ch->text + at,
                               ch->text_len - at, &ev, &off, &n);

        if (ev == SLORA_TOOL_NOT) {
            break;
        }

        if (ev == SLORA_TOOL_NAME) {
            if (ch->n_calls == NGX_HTTP_SLORA_MAX_CALLS
                || (ctx->tool_one && ch->n_calls == 1))
            {
                break;
            }

            call = &ch->calls[ch->n_calls++];
            ngx_memcpy(call->name, ch->tool.name, ch->tool.name_len + 1);

        } else if (ev == SLORA_TOOL_ARGS) {
            if (call->args_len == 0) {
                call->args = at + off;
            }

            call->args_len += n;
        }
    }

    return NGX_OK;
}


/* The choice's finish_reason, now that it ended. */
const char *
ngx_http_slora_tool_finish(ngx_http_slora_ctx_t *ctx,
    ngx_http_slora_choice_t *ch)
{
    if (ch->n_calls > 0 && ch->finish != NULL
        && ngx_strcmp(ch->finish, "stop") == 0
        && ctx->tools != SLORA_OPENAI_TOOLS_NAMED)
    {
        return "tool_calls";
    }

    return ch->finish;
}


/* Mistral's control tokens of calls, where the request has tools in
 * their format and the vocabulary has them as such: the stream shows
 * them as their text, which the scanner reads (others stay unseen). */
void
ngx_http_slora_tool_marks(ngx_http_slora_ctx_t *ctx)
{
    int32_t                      id;
    ngx_uint_t                   i;
    ngx_http_slora_main_conf_t  *smcf;

    static const char  *marks[] = { "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]" };

    smcf = ngx_http_get_module_main_conf(ctx->request, ngx_http_slora_module);

    for (i = 0; i < 3; i++) {
        id = -1;

        if (ctx->tools != SLORA_OPENAI_TOOLS_OFF
            && ctx->tool_format != SLORA_OPENAI_TOOLFMT_HERMES
            && ctx->tool_format != SLORA_OPENAI_TOOLFMT_LLAMA3
            && smcf->tokenizer != NULL)
        {
            id = slora_tokenizer_find(smcf->tokenizer, marks[i],
                                      ngx_strlen(marks[i]));
        }

        ctx->shown[i] = id;
    }
}
