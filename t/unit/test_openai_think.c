/*
 * test_openai_think.c: an assistant's think block in a chat's earlier
 * turns under Qwen3's template (SLORA_CHAT_THINK_TURNS): dropped up to
 * the last user query (a tool's result, a string or text parts joined,
 * is none), written back past it where there is reasoning and in the
 * chat's last message; a call's newline after it as the template writes
 * it; reasoning (vLLM's) or reasoning_content read in place of the
 * content's block, "" too; a block's marks the template's text, the
 * reasoning and the content the request's (plain spans); the template's
 * flag read from its text.
 * The Jinja template's own rendering of the same chats is
 * t/templates.t's.
 */

#include "tap.h"

#include "slora_openai.h"


#define SYS    "{\"role\":\"system\",\"content\":\"S\"}"
#define ASK    "{\"role\":\"user\",\"content\":\"Q\"}"
#define CALL   "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\"," \
               "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]"
#define RESULT "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"R\"}"


/* the last parse's error */
static slora_openai_err_t  err;

static int parse(const char *msgs, unsigned flags, slora_openai_req_t *req);
static int param_is(const char *want);
static int content_is(const slora_openai_req_t *req, uint32_t i,
    const char *want);
static int plain_is(const slora_openai_req_t *req, uint32_t i,
    const char *want);


int
main(void)
{
    slora_openai_req_t  req;

    /* before the last user query: the block dropped */
    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>\\nx</think> a <think>y</think>\\n\\nHello.\"},"
             ASK "]", SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "Hello."),
       "an earlier answer's think blocks dropped, its text after the last");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>\\nx</think>\\n\\nHello.\"}," ASK "]", 0, &req)
       == SLORA_OK
       && content_is(&req, 2, "<think>\nx</think>\n\nHello."),
       "without the template's flag the content is as sent");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"no block </b>\"}," ASK "]", SLORA_CHAT_THINK_TURNS, &req)
       == SLORA_OK
       && content_is(&req, 2, "no block </b>"),
       "an earlier answer without a block as sent");
    slora_openai_req_free(&req);

    /* past it: the reasoning written back, the first call right after */
    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>\\n\\nplan\\n\\n</think>\\n\\n\"," CALL "}," RESULT
             "]", SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "<think>\nplan\n</think>\n\n<tool_call>\n"
                     "{\"name\": \"f\", \"arguments\": {}}\n</tool_call>"),
       "a tool loop's reasoning written back, no newline before the call");
    ok(plain_is(&req, 2, "plan|f|{}"),
       "the block's marks and the call's the template's, the reasoning, "
       "name and arguments the request's");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>plan</think>\\nLet me look.\"," CALL "}," RESULT
             "]", SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "<think>\nplan\n</think>\n\nLet me look.\n"
                     "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n"
                     "</tool_call>"),
       "with text after the block: a newline before the call");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":\"A.\","
             CALL "}," RESULT "]", SLORA_CHAT_THINK_TURNS, &req)
       == SLORA_OK
       && content_is(&req, 2, "A.\n<tool_call>\n{\"name\": \"f\", "
                     "\"arguments\": {}}\n</tool_call>"),
       "past the query, no reasoning and not last: as sent");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"\\nFour.\"}]", SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "<think>\n\n</think>\n\nFour."),
       "the chat's last message: an empty block before its text");
    slora_openai_req_free(&req);

    /* a tool's result as a user message is no query */
    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>p</think>A\"},{\"role\":\"user\",\"content\":"
             "\"<tool_response>\\nR\\n</tool_response>\"},{\"role\":"
             "\"assistant\",\"content\":\"B\"}]", SLORA_CHAT_THINK_TURNS,
             &req) == SLORA_OK
       && content_is(&req, 2, "<think>\np\n</think>\n\nA")
       && content_is(&req, 4, "<think>\n\n</think>\n\nB"),
       "a user message that is a tool's result is no query");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>p</think>A\"},{\"role\":\"user\",\"content\":["
             "{\"type\":\"text\",\"text\":\"<tool_response>\"},"
             "{\"type\":\"text\",\"text\":\"R\\n</tool_response>\"}]},"
             "{\"role\":\"assistant\",\"content\":\"B\"}]",
             SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "<think>\np\n</think>\n\nA")
       && content_is(&req, 3, "<tool_response>\nR\n</tool_response>"),
       "nor one whose text parts, joined, are a tool's result");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>p</think>A\"},{\"role\":\"user\",\"content\":["
             "{\"type\":\"text\",\"text\":\"Q\"}]},{\"role\":"
             "\"assistant\",\"content\":\"B\"}]", SLORA_CHAT_THINK_TURNS,
             &req) == SLORA_OK
       && content_is(&req, 2, "A"),
       "a user message of text parts that is no tool's result is a query");
    slora_openai_req_free(&req);

    /* reasoning_content, vLLM's field, in place of the content's block */
    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>old</think>A\",\"reasoning_content\":\"\\nnew\\n\"},"
             RESULT "]", SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "<think>\nnew\n</think>\n\n<think>old"
                     "</think>A"),
       "reasoning_content is the reasoning, the content left whole");
    ok(plain_is(&req, 2, "new|<think>old</think>A"),
       "the block's marks the template's, not the request's text; the "
       "reasoning and the content (a block of its own too) the request's");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"\\nFour.\"}]", SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && plain_is(&req, 2, "Four."),
       "an empty block's marks the template's");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>p</think>A\"}," ASK "]", SLORA_CHAT_THINK_TURNS, &req)
       == SLORA_OK
       && plain_is(&req, 2, "A"),
       "a block dropped: the content left all the request's");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":\"\","
             "\"reasoning\":\"now\",\"reasoning_content\":\"then\"},"
             RESULT "]", SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "<think>\nnow\n</think>\n\n"),
       "reasoning (vLLM's answers' name) first, as vLLM passes it on");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":\"A\","
             "\"reasoning_content\":\"r\"}," ASK "]",
             SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "A"),
       "reasoning_content before the query dropped");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>old</think>A\",\"reasoning_content\":\"\"}]",
             SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "<think>\n\n</think>\n\n<think>old</think>A"),
       "reasoning_content \"\" on the last message: an empty block, the "
       "content left whole");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":"
             "\"<think>old</think>A\",\"reasoning_content\":\"\"}," RESULT
             "]", SLORA_CHAT_THINK_TURNS, &req) == SLORA_OK
       && content_is(&req, 2, "<think>old</think>A"),
       "reasoning_content \"\" past the query, not last: as sent");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":\"A\","
             "\"reasoning_content\":7}]", SLORA_CHAT_THINK_TURNS, &req)
       == SLORA_ERROR
       && param_is("messages.reasoning_content"),
       "reasoning_content not a string: a 400 naming it");
    slora_openai_req_free(&req);

    ok(parse("[" SYS "," ASK ",{\"role\":\"assistant\",\"content\":\"A\","
             "\"reasoning\":[]}]", SLORA_CHAT_THINK_TURNS, &req)
       == SLORA_ERROR
       && param_is("messages.reasoning"),
       "reasoning not a string: a 400 naming it");
    slora_openai_req_free(&req);

    /* the flag, from the template's text */
    {
        static const char  qwen3[] =
            "{%- set ns = namespace(multi_step_tool=true, "
            "last_query_index=messages|length - 1) %}"
            "{%- if message.reasoning_content is defined %}";
        static const char  chatml[] =
            "{% for message in messages %}<|im_start|>{{ message.role }}";

        is_int((int) slora_chat_template_flags(SLORA_CHAT_CHATML, qwen3,
                                               sizeof(qwen3) - 1),
               SLORA_CHAT_THINK_TURNS, "Qwen3's template: its flag");
        is_int((int) slora_chat_template_flags(SLORA_CHAT_CHATML, chatml,
                                               sizeof(chatml) - 1),
               0, "a plain ChatML template: none");
    }

    return done_testing();
}


static int
parse(const char *msgs, unsigned flags, slora_openai_req_t *req)
{
    char                   body[2048];
    slora_openai_limits_t  lim;

    memset(&err, 0, sizeof(err));
    lim = slora_openai_default_limits;
    lim.chat = SLORA_CHAT_CHATML;
    lim.chat_flags = flags;

    snprintf(body, sizeof(body), "{\"model\":\"m\",\"messages\":%s}", msgs);

    return slora_openai_parse(body, strlen(body), SLORA_OPENAI_CHAT, &lim,
                              req, &err);
}


static int
param_is(const char *want)
{
    if (err.param == NULL || strcmp(err.param, want) != 0) {
        diag("param %s: %.*s", err.param ? err.param : "null",
             (int) err.len, err.msg);
        return 0;
    }

    return 1;
}


/* The parts of message i's content that came from the request, joined
 * by '|': all of it where the message was not made. */
static int
plain_is(const slora_openai_req_t *req, uint32_t i, const char *want)
{
    char                     got[1024];
    size_t                   k, n;
    const slora_chat_msg_t  *m;

    if (i >= req->n_msgs) {
        return 0;
    }

    m = &req->msgs[i];
    n = 0;
    got[0] = '\0';

    if (!m->made) {
        n = (size_t) snprintf(got, sizeof(got), "%.*s",
                              (int) m->content_len, m->content);
    }

    for (k = 0; m->made && k < m->n_plain && n < sizeof(got); k++) {
        n += (size_t) snprintf(got + n, sizeof(got) - n, "%s%.*s",
                               k > 0 ? "|" : "", (int) m->plain[k].len,
                               m->content + m->plain[k].off);
    }

    if (strcmp(got, want) != 0) {
        diag("message %u's plain parts: \"%s\"", i, got);
        return 0;
    }

    return 1;
}


static int
content_is(const slora_openai_req_t *req, uint32_t i, const char *want)
{
    const slora_chat_msg_t  *m;

    if (i >= req->n_msgs) {
        return 0;
    }

    m = &req->msgs[i];

    if (m->content_len != strlen(want)
        || memcmp(m->content, want, m->content_len) != 0)
    {
        diag("message %u: \"%.*s\"", i, (int) m->content_len, m->content);
        return 0;
    }

    return 1;
}
