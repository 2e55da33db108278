/*
 * slora_openai_think.c: an assistant's think block in a chat's earlier
 * turns, as Qwen3's template writes it (SLORA_CHAT_THINK_TURNS).
 *
 * Qwen3's template reads each assistant message's reasoning from its
 * reasoning_content (vLLM reads an answer's think block sent back as
 * reasoning, its answers' name for it, and passes it on so; its older
 * name, reasoning_content, is taken too) or, without one, from a think
 * block in its content: the text before the first </think>, after its
 * <think>, and the content is what follows the last </think>. Past the
 * last user query (the last user message that is not a tool's result
 * wrapped in <tool_response> tags, its text parts joined as the template
 * is given them: the turns of a tool-calling loop), a message that has
 * reasoning, and the chat's last message always, is written back as
 * <think>\n REASONING \n</think>\n\n CONTENT; every other message is its
 * content alone, its reasoning dropped. So a client that sends back the
 * answers it was given, think blocks and all, has the prompt the model
 * was trained on, not one holding every earlier turn's reasoning.
 *
 * The message's content is rewritten here, before its calls are added
 * to it (slora_openai_tools.c), with lead the bytes of the think block
 * before the message's own text: the template puts a newline before a
 * first call only where that text is not empty. A block written back
 * makes the message made: its marks are the template's text, which
 * holds <think> and </think> as the tokens they are, the reasoning and
 * the content the request's (plain spans), as the template's rendering
 * would be encoded.
 */

#define _GNU_SOURCE

#include <string.h>

#include "slora_openai_int.h"


static int slora_think_cut(const char **s, size_t *n, const char *mark,
    size_t mark_len, int last);
static void slora_think_strip(const char **s, size_t *n, int head,
    int tail);


/*
 * Whether a user message of content c[0..cl) (its text parts joined, the
 * string the template reads) is a query, as the template's loop for
 * last_query_index decides: one that is not a tool's result in
 * <tool_response> tags (it starts with the one and ends with the other).
 */
int
slora_openai_think_query(const char *c, size_t cl)
{
    return !(cl >= 31 && memcmp(c, "<tool_response>", 15) == 0
             && memcmp(c + cl - 16, "</tool_response>", 16) == 0);
}


/*
 * Rewrites the content of cm, the assistant message m, the k-th of the
 * chat's messages (query: the last user query's index; last: whether m
 * is the chat's last message), as Qwen3's template writes it.
 */
int
slora_openai_think_turn(cJSON *m, size_t k, size_t query, int last,
    slora_chat_msg_t *cm, slora_openai_req_t *req, slora_openai_err_t *err)
{
    char          *p;
    size_t         cl, rl;
    cJSON         *item;
    const char    *c, *r, *name, *param;
    slora_span_t  *sp;

    c = cm->content;
    cl = cm->content_len;
    r = "";
    rl = 0;

    /* vLLM's reasoning (what its answers, and this server's, carry),
     * else reasoning_content (its older name, the template's); an error
     * names the one sent */
    name = "reasoning";
    param = "messages.reasoning";
    item = cJSON_GetObjectItemCaseSensitive(m, name);

    if (item == NULL || cJSON_IsNull(item)) {
        name = "reasoning_content";
        param = "messages.reasoning_content";
        item = cJSON_GetObjectItemCaseSensitive(m, name);
    }

    if (item != NULL && !cJSON_IsNull(item)) {
        if (!cJSON_IsString(item)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", param,
                                     "messages[%zu].%s must be a string",
                                     k, name);
        }

        if (!slora_utf8_text_valid(item->valuestring,
                                     strlen(item->valuestring)))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_utf8", param,
                                     "messages[%zu].%s is not valid UTF-8",
                                     k, name);
        }

        r = item->valuestring;
        rl = strlen(r);

    } else if (memmem(c, cl, "</think>", 8) != NULL) {
        /* the reasoning: before the first </think>, after the last
         * <think> there; the content: after the last </think> */
        r = c;
        rl = cl;
        slora_think_cut(&r, &rl, "</think>", 8, 0);
        slora_think_strip(&r, &rl, 0, 1);
        slora_think_cut(&r, &rl, "<think>", 7, 1);
        slora_think_strip(&r, &rl, 1, 0);

        slora_think_cut(&c, &cl, "</think>", 8, 1);
        slora_think_strip(&c, &cl, 1, 0);
    }

    if (k <= query || !(last || rl > 0)) {
        cm->content = c;
        cm->content_len = cl;
        cm->lead = 0;
        return SLORA_OK;
    }

    slora_think_strip(&r, &rl, 1, 1);
    slora_think_strip(&c, &cl, 1, 0);

    p = slora_openai_alloc(req, sizeof("<think>\n\n</think>\n\n") - 1 + rl
                                + cl + 1);
    sp = slora_openai_alloc(req, 2 * sizeof(slora_span_t));
    if (p == NULL || sp == NULL) {
        return slora_openai_nomem(err);
    }

    cm->content = p;
    cm->lead = sizeof("<think>\n\n</think>\n\n") - 1 + rl;
    cm->content_len = cm->lead + cl;

    memcpy(p, "<think>\n", 8);
    memcpy(p + 8, r, rl);
    memcpy(p + 8 + rl, "\n</think>\n\n", 11);
    memcpy(p + cm->lead, c, cl);
    p[cm->content_len] = '\0';

    /* the reasoning and the content the request's, the marks the
     * template's */
    cm->made = 1;
    cm->plain = sp;
    cm->n_plain = 0;

    if (rl > 0) {
        sp[cm->n_plain].off = 8;
        sp[cm->n_plain].len = rl;
        cm->n_plain++;
    }

    if (cl > 0) {
        sp[cm->n_plain].off = cm->lead;
        sp[cm->n_plain].len = cl;
        cm->n_plain++;
    }

    return SLORA_OK;
}


/* s[0..n) cut at mark, the first one or the last: what is before the
 * first, or after the last; 0 where there is none (s left whole). */
static int
slora_think_cut(const char **s, size_t *n, const char *mark,
    size_t mark_len, int last)
{
    const char  *at, *found;

    found = NULL;
    at = *s;

    while ((at = memmem(at, *n - (size_t) (at - *s), mark, mark_len))
           != NULL)
    {
        found = at;

        if (!last) {
            break;
        }

        at += mark_len;
    }

    if (found == NULL) {
        return 0;
    }

    if (last) {
        *n -= (size_t) (found + mark_len - *s);
        *s = found + mark_len;

    } else {
        *n = (size_t) (found - *s);
    }

    return 1;
}


/* s[0..n) less its leading (head) and trailing (tail) newlines, as
 * Python's lstrip('\n') and rstrip('\n'). */
static void
slora_think_strip(const char **s, size_t *n, int head, int tail)
{
    while (head && *n > 0 && **s == '\n') {
        (*s)++;
        (*n)--;
    }

    while (tail && *n > 0 && (*s)[*n - 1] == '\n') {
        (*n)--;
    }
}
