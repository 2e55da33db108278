/*
 * test_openai_resp_shapes.c: shapes of a Responses request that OpenAI's
 * types allow, each taken with its meaning or refused naming the
 * Responses field (engine/slora_openai_responses.c).
 *
 *   (a) an earlier answer sent back: an output message's refusal part is
 *       the assistant's text; a text part without its text is a type
 *       error at its place, not an unsupported part.
 *   (b) a function tool's field the chat parser refuses is named as the
 *       flat Responses tool has it (tools[k].name, tools[k].parameters),
 *       not as chat's tools[k].function.name.
 *   (c) a function_call item's bad name or arguments are named by that
 *       item's place, also where it joins the assistant message or the
 *       call before it (chat's error named the message's first item).
 *   (d) chat's names for what the Responses API names otherwise
 *       (max_tokens, response_format, messages, logprobs, n, functions)
 *       and vLLM's prompt ends (continue_final_message,
 *       add_generation_prompt) are refused naming them, not passed over;
 *       null, logprobs false, n 1 and the prompt ends' defaults, which
 *       ask for nothing, are taken.
 *   (e) vLLM's guided_json and chat_template_kwargs are read as on chat
 *       (they were passed over), and the guided decodings chat refuses
 *       are refused; a message of chat's naming response_format names
 *       text.format.
 *   (f) log-probabilities with tools: refused naming the field that asked
 *       for them (top_logprobs alone is not include), and taken with
 *       tool_choice "none", where no call can come; the model is still
 *       told of the tools then, as on chat.
 *   (g) moderation (a moderation model to score or block with) is
 *       refused naming it, not passed over; null is taken.
 *   (h) text.verbosity: "medium" taken, "low" and "high" refused as
 *       unsupported, a value the API has not an invalid_value.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_openai.h"


static void test_tools(void);
static void test_calls(void);
static void test_moved(void);
static void test_vllm(void);
static void test_logprobs(void);
static void test_moderation(void);
static void test_verbosity(void);
static void check_msgs(const char *resp, const char *chat,
    const char *what);
static void check_err(const char *resp, const char *param,
    const char *code, const char *msg, const char *what);


static void
test_sent_back(void)
{
    check_msgs("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
               "\"content\":\"Hi\"},{\"type\":\"message\",\"id\":\"msg_1\","
               "\"status\":\"completed\",\"role\":\"assistant\","
               "\"content\":[{\"type\":\"refusal\",\"refusal\":"
               "\"I can't help with that.\"}]},{\"role\":\"user\","
               "\"content\":\"Why?\"}]}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":"
               "\"I can't help with that.\"},{\"role\":\"user\","
               "\"content\":\"Why?\"}]}",
               "an output message's refusal part: the assistant's text");

    check_err("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
              "\"content\":[{\"type\":\"refusal\",\"refusal\":\"no\"}]}]}",
              "input", "unsupported_parameter", "input[0].content: ",
              "a refusal part is an answer's, not a user's");
    check_err("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
              "\"content\":[{\"type\":\"input_text\",\"text\":\"a\"},"
              "{\"type\":\"input_text\"}]}]}", "input", "invalid_type",
              "input[0].content[1].text must be a string",
              "an input_text part without text: a type error at its place");
    check_err("{\"model\":\"base\",\"input\":[{\"type\":"
              "\"function_call_output\",\"call_id\":\"c\",\"output\":"
              "[{\"type\":\"input_text\",\"text\":7}]}]}", "input",
              "invalid_type", "input[0].output[0].text must be a string",
              "an output's text part with a number for text");
}


static void
test_tools(void)
{
    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"tools\":[{\"type\":"
              "\"function\",\"name\":\"f\"},{\"type\":\"function\","
              "\"name\":\"a b\"}]}", "tools", "invalid_value",
              "tools[1].name must be ", "a tool's bad name: tools[1].name");
    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"tools\":[{\"type\":"
              "\"function\",\"name\":\"f\",\"parameters\":\"x\"}]}",
              "tools", "invalid_type", "tools[0].parameters must be ",
              "a tool's parameters not a schema: tools[0].parameters");
    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"tools\":[{\"type\":"
              "\"function\",\"name\":\"f\",\"parameters\":{\"type\":"
              "\"object\",\"properties\":{\"a\":{\"type\":\"number\","
              "\"multipleOf\":3}}}}],\"tool_choice\":\"required\"}",
              "tools", "invalid_value", "tools[0].parameters: ",
              "a schema keyword the server cannot hold in a tool's "
              "parameters: tools[0].parameters");
    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"tools\":[{\"type\":"
              "\"function\",\"function\":{\"name\":\"f\"}}]}", "tools",
              "invalid_value", "tools[0].name must be ",
              "chat's nested tool: the flat tool's name is missing");
}


static void
test_calls(void)
{
    check_err("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
              "\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":"
              "\"Let me see.\"},{\"type\":\"function_call\",\"call_id\":"
              "\"c1\",\"name\":\"f\",\"arguments\":\"{bad\"}]}", "input",
              "invalid_value", "input[2].arguments are not JSON",
              "a call joining the assistant message before it: its own "
              "place");
    check_err("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
              "\"content\":\"Hi\"},{\"type\":\"function_call\","
              "\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
              "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":"
              "\"f\",\"arguments\":\"[1,\"}]}", "input", "invalid_value",
              "input[2].arguments are not JSON",
              "the second of two calls: its own place");
    check_err("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
              "\"content\":\"Hi\"},{\"type\":\"function_call\","
              "\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
              "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":"
              "\"no name\",\"arguments\":\"{}\"}]}", "input",
              "invalid_value", "input[2].name must be ",
              "a call's bad name: its own place, the Responses field");
    check_err("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
              "\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":"
              "\"Hm.\"},{\"type\":\"function_call\",\"call_id\":\"c1\","
              "\"name\":\"f\",\"arguments\":"
              "\"{\\\"a\\\":\\\"\\\\u0000\\\"}\"}]}",
              "input", "invalid_value", "input[2].arguments hold a NUL",
              "a call's arguments holding a NUL: its own place");
}


static void
test_moved(void)
{
    size_t              i;
    slora_openai_req_t  req;
    slora_openai_err_t  err;
    char                body[256];

    static const char  *moved[][2] = {
        { "max_tokens", "5" },
        { "max_completion_tokens", "5" },
        { "response_format", "{\"type\":\"json_object\"}" },
        { "messages", "[{\"role\":\"user\",\"content\":\"Hi\"}]" },
        { "logprobs", "true" },
        { "n", "2" },
        { "functions", "[{\"name\":\"f\"}]" },
        { "function_call", "\"auto\"" },
        { "continue_final_message", "true" },
        { "add_generation_prompt", "false" },
    };

    static const char  *taken[] = {
        "\"max_tokens\":null", "\"response_format\":null",
        "\"logprobs\":false", "\"n\":1",
        "\"continue_final_message\":false",
        "\"add_generation_prompt\":true"
    };

    for (i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
        snprintf(body, sizeof(body), "{\"model\":\"base\",\"input\":"
                 "\"Hi\",\"%s\":%s}", moved[i][0], moved[i][1]);
        check_err(body, moved[i][0], "unsupported_parameter",
                  "Unsupported parameter: ", moved[i][0]);
    }

    for (i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
        snprintf(body, sizeof(body), "{\"model\":\"base\",\"input\":"
                 "\"Hi\",%s}", taken[i]);
        memset(&err, 0, sizeof(err));
        ok(slora_openai_parse_responses(body, strlen(body), NULL, NULL,
                                        NULL, &req, &err)
           == SLORA_OK, "%s asks for nothing: taken (%s)", taken[i],
           err.msg);
        slora_openai_req_free(&req);
    }
}


static void
test_vllm(void)
{
    int                 rc_a, rc_b;
    slora_openai_req_t  a, b;
    slora_openai_err_t  err;

    static const char  resp[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"guided_json\":"
        "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":"
        "\"integer\"}},\"required\":[\"n\"]}}";
    static const char  chat[] =
        "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"Hi\"}],\"guided_json\":{\"type\":\"object\","
        "\"properties\":{\"n\":{\"type\":\"integer\"}},\"required\":"
        "[\"n\"]}}";

    memset(&err, 0, sizeof(err));
    rc_a = slora_openai_parse_responses(resp, sizeof(resp) - 1, NULL, NULL,
                                        NULL, &a, &err);
    rc_b = slora_openai_parse(chat, sizeof(chat) - 1, SLORA_OPENAI_CHAT,
                              NULL, &b, &err);
    ok(rc_a == SLORA_OK && rc_b == SLORA_OK && a.schema.data != NULL
       && b.schema.data != NULL && a.schema.len == b.schema.len
       && memcmp(a.schema.data, b.schema.data, a.schema.len) == 0
       && a.schema_form == b.schema_form,
       "guided_json: the answer held to its schema, as on chat (%s)",
       err.msg);
    slora_openai_req_free(&a);
    slora_openai_req_free(&b);

    static const char  resp_so[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"structured_outputs\":"
        "{\"regex\":\"[a-z]+\"}}";
    static const char  chat_so[] =
        "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"Hi\"}],\"structured_outputs\":{\"regex\":"
        "\"[a-z]+\"}}";

    rc_a = slora_openai_parse_responses(resp_so, sizeof(resp_so) - 1, NULL,
                                        NULL, NULL, &a, &err);
    rc_b = slora_openai_parse(chat_so, sizeof(chat_so) - 1,
                              SLORA_OPENAI_CHAT, NULL, &b, &err);
    ok(rc_a == SLORA_OK && rc_b == SLORA_OK && a.schema.data != NULL
       && b.schema.data != NULL && a.schema.len == b.schema.len
       && memcmp(a.schema.data, b.schema.data, a.schema.len) == 0
       && a.schema_form == SLORA_JSON_FORM_REGEX
       && b.schema_form == SLORA_JSON_FORM_REGEX,
       "structured_outputs: passed to the chat request, a regex as there"
       " (%s)", err.msg);
    slora_openai_req_free(&a);
    slora_openai_req_free(&b);

    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"guided_json\":"
              "{\"type\":\"object\"},\"text\":{\"format\":{\"type\":"
              "\"json_object\"}}}", "guided_json", "invalid_value",
              "guided_json and a JSON text.format",
              "guided_json with text.format: one or the other, named in "
              "the Responses request's terms");
    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"guided_grammar\":"
              "\"root ::= x\"}", "guided_grammar", "invalid_value",
              "guided_grammar: grammar line 1, column 10: rule \"x\" "
              "is named but not defined",
              "guided_grammar: passed, read as on chat");
    check_err("{\"model\":\"base\",\"input\":\"Hi\","
              "\"guided_whitespace_pattern\":\" \"}",
              "guided_whitespace_pattern", "unsupported_parameter",
              "guided_whitespace_pattern is not supported",
              "guided_whitespace_pattern: refused, as on chat");
    check_err("{\"model\":\"base\",\"input\":\"Hi\","
              "\"chat_template_kwargs\":3}", "chat_template_kwargs",
              "invalid_type", "chat_template_kwargs must be an object",
              "chat_template_kwargs: read, as on chat");
}


static void
test_logprobs(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  none[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"top_logprobs\":2,"
        "\"include\":[\"message.output_text.logprobs\"],\"tools\":"
        "[{\"type\":\"function\",\"name\":\"f\"}],\"tool_choice\":"
        "\"none\"}";

    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"top_logprobs\":2,"
              "\"tools\":[{\"type\":\"function\",\"name\":\"f\"}]}",
              "top_logprobs", "unsupported_parameter",
              "log-probabilities with tools",
              "top_logprobs with tools: named top_logprobs, not include");
    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"include\":"
              "[\"message.output_text.logprobs\"],\"tools\":[{\"type\":"
              "\"function\",\"name\":\"f\"}]}", "include",
              "unsupported_parameter", "log-probabilities with tools",
              "include's logprobs with tools: named include");

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(none, sizeof(none) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_OK && req.logprobs && req.top_logprobs == 2
       && req.tools == SLORA_OPENAI_TOOLS_OFF,
       "log-probabilities with tool_choice none: taken, no call can come "
       "(%s)", err.msg);
    ok(rc == SLORA_OK && req.n_msgs == 2 && req.schema.data == NULL
       && req.schema_trigger.data == NULL
       && strstr(req.msgs[0].content, "<tools>\n{\"type\": \"function\", "
                 "\"function\": {\"name\": \"f\"}}\n</tools>") != NULL,
       "tool_choice none: the tools still in the prompt, as chat's, no "
       "call held");
    slora_openai_req_free(&req);
}


static void
test_moderation(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  null[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"moderation\":null}";

    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"moderation\":"
              "{\"model\":\"omni-moderation-latest\",\"policy\":"
              "{\"input\":{\"mode\":\"block\"}}}}", "moderation",
              "unsupported_parameter", "moderation is not supported",
              "moderation blocking the input: refused, not passed over");

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(null, sizeof(null) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_OK, "moderation null: taken (%s)", err.msg);
    slora_openai_req_free(&req);
}


static void
test_verbosity(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  medium[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"text\":{\"verbosity\":"
        "\"medium\"}}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(medium, sizeof(medium) - 1, NULL,
                                      NULL, NULL, &req, &err);
    ok(rc == SLORA_OK, "text.verbosity medium: taken (%s)", err.msg);
    slora_openai_req_free(&req);

    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
              "{\"verbosity\":\"low\"}}", "text.verbosity",
              "unsupported_parameter", "text.verbosity is not supported",
              "text.verbosity low: unsupported");
    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
              "{\"verbosity\":\"loud\"}}", "text.verbosity",
              "invalid_value", "text.verbosity must be ",
              "text.verbosity loud: not a value the API has");
    check_err("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
              "{\"verbosity\":2}}", "text.verbosity", "invalid_value",
              "text.verbosity must be ", "text.verbosity 2: not a value");
}


int
main(void)
{
    test_sent_back();
    test_tools();
    test_calls();
    test_moved();
    test_vllm();
    test_logprobs();
    test_moderation();
    test_verbosity();

    done_testing();
}


/* The Responses body resp and the chat body chat give the same
 * messages. */
static void
check_msgs(const char *resp, const char *chat, const char *what)
{
    int                 rc_a, rc_b, same;
    uint32_t            i;
    slora_openai_req_t  a, b;
    slora_openai_err_t  err_a, err_b;

    memset(&err_a, 0, sizeof(err_a));
    memset(&err_b, 0, sizeof(err_b));

    rc_a = slora_openai_parse_responses(resp, strlen(resp), NULL, NULL, NULL,
                                        &a, &err_a);
    rc_b = slora_openai_parse(chat, strlen(chat), SLORA_OPENAI_CHAT, NULL,
                              &b, &err_b);

    same = rc_a == SLORA_OK && rc_b == SLORA_OK && a.n_msgs == b.n_msgs;

    for (i = 0; same && i < a.n_msgs; i++) {
        same = a.msgs[i].role_len == b.msgs[i].role_len
               && a.msgs[i].content_len == b.msgs[i].content_len
               && memcmp(a.msgs[i].role, b.msgs[i].role,
                         a.msgs[i].role_len) == 0
               && memcmp(a.msgs[i].content, b.msgs[i].content,
                         a.msgs[i].content_len) == 0;
    }

    ok(same, "%s (%s / %s)", what, err_a.msg, err_b.msg);

    slora_openai_req_free(&a);
    slora_openai_req_free(&b);
}


/* resp is a 400 naming param with code, its message beginning msg. */
static void
check_err(const char *resp, const char *param, const char *code,
    const char *msg, const char *what)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(resp, strlen(resp), NULL, NULL, NULL,
                                      &req, &err);

    ok(rc == SLORA_ERROR && err.status == 400 && err.param != NULL
       && strcmp(err.param, param) == 0 && err.code != NULL
       && strcmp(err.code, code) == 0
       && strncmp(err.msg, msg, strlen(msg)) == 0,
       "%s: %s %s: %s", what, err.param ? err.param : "(null)",
       err.code ? err.code : "(null)", err.msg);

    slora_openai_req_free(&req);
}
