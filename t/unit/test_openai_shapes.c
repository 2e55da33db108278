/*
 * test_openai_shapes.c: the request shapes OpenAI's API types allow
 * (its Python client's TypedDicts), each as the parser answers it: the
 * fields a chat's messages may carry besides role and content, and the
 * request fields beside the sampling ones. A shape the server serves
 * parses to what it means; one it cannot honour is a 400 naming the
 * field, never dropped.
 *
 * The one idea: a field the server leaves unread must not change the
 * answer a client gets, so each such shape here is either read or
 * refused, and the table says which.
 */

#include "tap.h"

#include "slora_openai.h"
#include "openai_eq.h"


typedef struct {
    const char           *name;
    slora_openai_kind_e   kind;
    const char           *body;
    const char           *code;
    const char           *param;
} shape_bad_t;


#define HEAD  "{\"model\":\"base\",\"messages\":[{\"role\":\"user\"," \
              "\"content\":\"hi\"}"
#define MSGS  HEAD "]"
#define TOOL  "{\"type\":\"function\",\"function\":{\"name\":\"f\"," \
              "\"parameters\":{\"type\":\"object\"}}}"


static const shape_bad_t  bad_cases[] = {
    { "a refusal not a string", CHAT,
      HEAD ",{\"role\":\"assistant\",\"content\":null,\"refusal\":5}]}",
      "invalid_type", "messages.refusal" },
    { "a refusal part in a user message", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"user\",\"content\":"
      "[{\"type\":\"refusal\",\"refusal\":\"no\"}]}]}",
      "invalid_type", "messages.content" },
    { "an assistant's audio", CHAT,
      HEAD ",{\"role\":\"assistant\",\"content\":null,\"audio\":"
      "{\"id\":\"audio_abc\"}},{\"role\":\"user\",\"content\":\"and?\"}]}",
      "unsupported_parameter", "messages.audio" },
    { "an assistant's legacy function_call", CHAT,
      HEAD ",{\"role\":\"assistant\",\"content\":null,"
      "\"function_call\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}",
      "unsupported_parameter", "messages.function_call" },
    { "modalities with audio", CHAT,
      MSGS ",\"modalities\":[\"text\",\"audio\"]}",
      "unsupported_parameter", "modalities" },
    { "modalities audio alone", CHAT, MSGS ",\"modalities\":[\"audio\"]}",
      "unsupported_parameter", "modalities" },
    { "modalities not an array", CHAT, MSGS ",\"modalities\":\"text\"}",
      "invalid_type", "modalities" },
    { "web_search_options", CHAT,
      MSGS ",\"web_search_options\":{\"search_context_size\":\"low\"}}",
      "unsupported_parameter", "web_search_options" },
    { "web_search_options empty", CHAT, MSGS ",\"web_search_options\":{}}",
      "unsupported_parameter", "web_search_options" },
    { "moderation", CHAT,
      MSGS ",\"moderation\":{\"model\":\"omni-moderation-latest\","
      "\"policy\":{\"input\":{\"mode\":\"block\"}}}}",
      "unsupported_parameter", "moderation" },
    { "reasoning_effort", CHAT, MSGS ",\"reasoning_effort\":\"high\"}",
      "unsupported_parameter", "reasoning_effort" },
    { "reasoning_effort none", CHAT, MSGS ",\"reasoning_effort\":\"none\"}",
      "unsupported_parameter", "reasoning_effort" },
    { "verbosity low", CHAT, MSGS ",\"verbosity\":\"low\"}",
      "unsupported_parameter", "verbosity" },
    { "verbosity high", CHAT, MSGS ",\"verbosity\":\"high\"}",
      "unsupported_parameter", "verbosity" },
    { "stream_options.include_obfuscation a string", CHAT,
      MSGS ",\"stream\":true,\"stream_options\":{\"include_obfuscation\":"
      "\"no\"}}", "invalid_type", "stream_options" },
    { "stream_options.continuous_usage_stats a number", CHAT,
      MSGS ",\"stream\":true,\"stream_options\":{\"include_usage\":true,"
      "\"continuous_usage_stats\":1}}",
      "invalid_type", "stream_options" },
    { "a custom tool", CHAT,
      MSGS ",\"tools\":[{\"type\":\"custom\",\"custom\":{\"name\":\"g\","
      "\"format\":{\"type\":\"text\"}}}]}",
      "unsupported_parameter", "tools" },
    { "tool_choice allowed_tools", CHAT,
      MSGS ",\"tools\":[" TOOL "],\"tool_choice\":{\"type\":"
      "\"allowed_tools\",\"allowed_tools\":{\"mode\":\"required\","
      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
      "\"f\"}}]}}}",
      "unsupported_parameter", "tool_choice" },
    { "tool_choice custom", CHAT,
      MSGS ",\"tools\":[" TOOL "],\"tool_choice\":{\"type\":\"custom\","
      "\"custom\":{\"name\":\"f\"}}}",
      "unsupported_parameter", "tool_choice" },
    { "a custom tool's call sent back", CHAT,
      HEAD ",{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
      "[{\"id\":\"call_1\",\"type\":\"custom\",\"custom\":{\"name\":"
      "\"g\",\"input\":\"x\"}}]}]}",
      "unsupported_parameter", "messages" },
};


static void test_bad(void);
static void test_refusal(void);
static void test_neutral(void);
static void test_max_tokens(void);
static int content_is(const slora_openai_req_t *req, uint32_t i,
    const char *role, const char *want);


int
main(void)
{
    test_refusal();
    test_neutral();
    test_max_tokens();
    test_bad();

    return done_testing();
}


/* An assistant's refusal, sent back, is what it said: its text. */
static void
test_refusal(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    rc = parse(CHAT, HEAD ",{\"role\":\"assistant\",\"content\":null,"
               "\"refusal\":\"I can't help with that.\"},{\"role\":"
               "\"user\",\"content\":\"why?\"}]}", &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 3
       && content_is(&req, 1, "assistant", "I can't help with that."),
       "an assistant's refusal with null content is its text");
    slora_openai_req_free(&req);

    rc = parse(CHAT, HEAD ",{\"role\":\"assistant\",\"content\":\"Sorry. \","
               "\"refusal\":\"No.\"}]}", &req, &err);
    ok(rc == SLORA_OK && content_is(&req, 1, "assistant", "Sorry. No."),
       "a refusal beside a content follows it");
    slora_openai_req_free(&req);

    rc = parse(CHAT, HEAD ",{\"role\":\"assistant\",\"content\":\"A\","
               "\"refusal\":null}]}", &req, &err);
    ok(rc == SLORA_OK && content_is(&req, 1, "assistant", "A"),
       "a null refusal is none");
    slora_openai_req_free(&req);

    rc = parse(CHAT, HEAD ",{\"role\":\"assistant\",\"content\":[{\"type\":"
               "\"text\",\"text\":\"A \"},{\"type\":\"refusal\",\"refusal\":"
               "\"no\"}]}]}", &req, &err);
    ok(rc == SLORA_OK && content_is(&req, 1, "assistant", "A \nno"),
       "an assistant's refusal part is read as its text, a part of it");
    slora_openai_req_free(&req);

    rc = parse(CHAT, HEAD ",{\"role\":\"assistant\",\"content\":\"A\","
               "\"audio\":null,\"function_call\":null}]}", &req, &err);
    ok(rc == SLORA_OK && content_is(&req, 1, "assistant", "A"),
       "an assistant's null audio and function_call pass");
    slora_openai_req_free(&req);
}


/* A chat's max_completion_tokens wins over max_tokens, OpenAI's older
 * name for it; a completion's own is max_tokens. */
static void
test_max_tokens(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    rc = parse(CHAT, MSGS ",\"max_tokens\":10,\"max_completion_tokens\":20}",
               &req, &err);
    ok(rc == SLORA_OK && req.max_tokens == 20,
       "chat: max_completion_tokens beside max_tokens wins");
    slora_openai_req_free(&req);

    rc = parse(CHAT, MSGS ",\"max_completion_tokens\":20,\"max_tokens\":10}",
               &req, &err);
    ok(rc == SLORA_OK && req.max_tokens == 20,
       "chat: whichever comes first");
    slora_openai_req_free(&req);

    rc = parse(CHAT, MSGS ",\"max_tokens\":10,\"max_completion_tokens\":"
               "null}", &req, &err);
    ok(rc == SLORA_OK && req.max_tokens == 10,
       "chat: max_tokens where max_completion_tokens is null");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"max_tokens\":"
               "10,\"max_completion_tokens\":20}", &req, &err);
    ok(rc == SLORA_OK && req.max_tokens == 10,
       "completion: its max_tokens wins");
    slora_openai_req_free(&req);

    rc = parse(CHAT, MSGS ",\"max_completion_tokens\":20}", &req, &err);
    ok(rc == SLORA_OK && nstreq(req.max_name, "max_completion_tokens"),
       "chat: errors about it name max_completion_tokens");
    slora_openai_req_free(&req);

    rc = parse(CHAT, MSGS "}", &req, &err);
    ok(rc == SLORA_OK && nstreq(req.max_name, "max_tokens"),
       "chat: or max_tokens where neither is given");
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\","
               "\"max_completion_tokens\":0}", &req, &err);
    ok(rc == SLORA_ERROR && nstreq(err.param, "max_completion_tokens")
       && strcmp(err.msg, "max_completion_tokens must be at least 1 (0 only "
                 "with echo or prompt_logprobs)") == 0,
       "completion: max_completion_tokens 0 without echo is named");
    slora_openai_req_free(&req);

    rc = parse(CHAT, MSGS ",\"max_tokens\":\"x\",\"max_completion_tokens\":"
               "20}", &req, &err);
    ok(rc == SLORA_ERROR && nstreq(err.param, "max_tokens"),
       "chat: the max_tokens that loses is still checked");
    slora_openai_req_free(&req);
}


/* The request fields that ask for nothing this server lacks pass. */
static void
test_neutral(void)
{
    size_t              i;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  *bodies[] = {
        MSGS ",\"modalities\":[\"text\"]}",
        MSGS ",\"modalities\":[]}",
        MSGS ",\"modalities\":null,\"web_search_options\":null,"
        "\"moderation\":null,\"audio\":null}",
        MSGS ",\"reasoning_effort\":null,\"verbosity\":\"medium\"}",
        MSGS ",\"verbosity\":null}",
        MSGS ",\"stream\":true,\"stream_options\":{\"include_usage\":"
        "true,\"include_obfuscation\":false,\"continuous_usage_stats\":"
        "false}}",
        MSGS ",\"stream\":true,\"stream_options\":{\"include_obfuscation\":"
        "true,\"include_usage\":null}}",
    };

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        if (!ok(parse(CHAT, bodies[i], &req, &err) == SLORA_OK
                && !req.continuous_usage,
                "passes: %s", bodies[i] + sizeof(MSGS) - 1))
        {
            diag("%s", err.msg);
        }

        slora_openai_req_free(&req);
    }

    /* vLLM's continuous_usage_stats: the counts in every chunk, with
     * include_usage (as vLLM has it), on chat and completions alike */
    ok(parse(CHAT, MSGS ",\"stream\":true,\"stream_options\":{"
             "\"include_usage\":true,\"continuous_usage_stats\":true}}",
             &req, &err) == SLORA_OK
       && req.include_usage && req.continuous_usage,
       "stream_options.continuous_usage_stats with include_usage: both");
    slora_openai_req_free(&req);
    ok(parse(COMP, "{\"model\":\"base\",\"prompt\":\"hi\",\"stream\":true,"
             "\"stream_options\":{\"continuous_usage_stats\":true}}",
             &req, &err) == SLORA_OK
       && !req.include_usage && !req.continuous_usage,
       "a completion's continuous_usage_stats alone: no usage at all, as "
       "vLLM's");
    slora_openai_req_free(&req);
}


static void
test_bad(void)
{
    size_t              i;
    const shape_bad_t   *c;

    for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        c = &bad_cases[i];
        refused_as(c->name, c->kind, c->body, 400, c->code, c->param);
    }
}


/* The chat's message i is role's, with content want. */
static int
content_is(const slora_openai_req_t *req, uint32_t i, const char *role,
    const char *want)
{
    const slora_chat_msg_t  *m;

    if (i >= req->n_msgs) {
        return 0;
    }

    m = &req->msgs[i];

    return m->role_len == strlen(role)
           && memcmp(m->role, role, m->role_len) == 0
           && m->content_len == strlen(want)
           && memcmp(m->content, want, m->content_len) == 0;
}
