/*
 * test_openai_responses.c: the Responses API request
 * (engine/slora_openai_responses.c).
 *
 *   (a) each Responses request parses to the same request as the chat
 *       request it means, field by field: input as a string and as
 *       items, instructions (none where "" or null), text parts,
 *       max_output_tokens and sampling, text.format (json_object,
 *       json_schema), flat function tools with tool_choice "required",
 *       a named function and "auto" (strict left out: calls held where
 *       the compiler takes the parameters, free where it refuses them;
 *       "strict": true makes that a 400), an earlier function_call with its
 *       function_call_output, vLLM's extras, include's logprobs and
 *       top_logprobs.
 *   (b) previous_response_id through a lookup: the stored conversation
 *       after the instructions, before the input; the conversation to
 *       store; an unknown id a 404, and a 400 where nothing is stored.
 *   (c) the echoed fields: the defaults, and what the request gave.
 *   (d) refusals: a 400 naming the Responses field (previous_response_id,
 *       a reasoning effort, an image part, a built-in tool, an unknown
 *       item type, a bad schema under text.format or one without its
 *       name or its schema, max_output_tokens 0, logprobs with tools,
 *       no input), with its code, and a message that speaks of the
 *       Responses fields, not of the chat's they became.
 *   (e) conversation through a lookup: the conversation's messages less
 *       its removed items after the instructions, before the input; the
 *       input's alone to add to it (resp_conv); echoed as {"id"}; an
 *       unknown one a 404, with previous_response_id a 400, a 400 where
 *       nothing is stored, a non-id a 400; previous_response_id naming
 *       a response made in a conversation a 400 saying to continue that.
 *   (f) a lookup that stops the parse (SLORA_AGAIN, as nginx's worker
 *       does to parse a long history on a thread): the parse answers
 *       SLORA_AGAIN for previous_response_id and for conversation, a
 *       bad field after the history not yet reported; errors before the
 *       lookup are still reported at once.
 *   (g) an input item the chat parser refuses is named by its place in
 *       input, whatever came before it (instructions, a stored
 *       conversation) or was joined.
 *   (h) a reasoning item sent back is the reasoning_content of the
 *       assistant's message or call after it, which Qwen3's template
 *       writes back in a tool-calling loop; with nothing of the
 *       assistant's after it, passed over; bad parts a 400 at its place.
 *       Checked under Qwen3's think turns, where it shows: written back
 *       past the last user query, dropped before it, given to no answer
 *       before it or past a user message.
 *   (i) instructions "": no system message, so a template's default one
 *       comes first, as with none.
 *   (j) a function_call_output whose call_id no function_call before it
 *       has (in input, the stored response's or the conversation's
 *       items) a 400 naming its item, as OpenAI refuses it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_openai.h"


#define WEATHER_PARAMS                                                     \
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"\
    "\"required\":[\"city\"]}"


#define STORED                                                             \
    "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"             \
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"      \
    "\"call_1\",\"type\":\"function\",\"function\":{\"name\":"              \
    "\"get_weather\",\"arguments\":\"{}\"}}]}]"


/* A reasoning item sent back, its text "hm" */
#define RS_HM                                                              \
    "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[],\"content\":"   \
    "[{\"type\":\"reasoning_text\",\"text\":\"hm\"}]}"


/* A conversation's messages as the store keeps them: the first user
 * message and one of the answer's two calls removed. */
#define KEPT                                                               \
    "[{\"role\":\"user\",\"content\":\"Hi\",\"deleted\":true},"         \
    "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"            \
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"      \
    "\"call_1\",\"type\":\"function\",\"function\":{\"name\":"              \
    "\"get_weather\",\"arguments\":\"{}\"},\"deleted\":true},{\"id\":"      \
    "\"call_2\",\"type\":\"function\",\"function\":{\"name\":"              \
    "\"get_time\",\"arguments\":\"{}\"}}]}]"


static int stop_lookup(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len);
static int prev_lookup(void *data, slora_openai_stored_e what,
    const char *id, size_t len, const char **conv, size_t *conv_len);
static void test_conversation(void);
static void test_stopped(void);
static void test_item_place(void);
static void test_reasoning(void);
static void test_no_instructions(void);
static void test_unanswered(void);
static int same_req(const slora_openai_req_t *a, const slora_openai_req_t *b);
static int same_str(const slora_openai_str_t *a, const slora_openai_str_t *b);
static void check_same(const char *resp, const char *chat, const char *what);
static void check_auto_strict(void);
static void check_think(const char *input, const char *msgs,
    const char *what);
static void check_same_as(const char *resp, const char *chat,
    const slora_openai_limits_t *lim, const char *what);
static void check_refused(const char *resp, const char *param,
    const char *code, const char *what);


static void
test_same(void)
{
    check_same("{\"model\":\"base\",\"input\":\"Hello!\"}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hello!\"}]}",
               "input as a string: one user message");

    check_same("{\"model\":\"demo\",\"instructions\":\"Be brief.\","
               "\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"input_text\",\"text\":\"Hi \"},{\"type\":\"input_text\","
               "\"text\":\"there\"}]},{\"type\":\"message\",\"role\":"
               "\"assistant\",\"content\":[{\"type\":\"output_text\","
               "\"text\":\"Hello.\"}]},{\"role\":\"developer\",\"content\":"
               "\"Now in French.\"},{\"role\":\"user\",\"content\":\"Bye\"}],"
               "\"max_output_tokens\":40,\"temperature\":0.5,\"top_p\":0.9,"
               "\"stream\":true,\"seed\":7,\"top_k\":20}",
               "{\"model\":\"demo\",\"messages\":[{\"role\":\"system\","
               "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
               "\"Hi \\nthere\"},{\"role\":\"assistant\",\"content\":"
               "\"Hello.\"},{\"role\":\"system\",\"content\":\"Now in "
               "French.\"},{\"role\":\"user\",\"content\":\"Bye\"}],"
               "\"max_tokens\":40,\"temperature\":0.5,\"top_p\":0.9,"
               "\"stream\":true,\"seed\":7,\"top_k\":20}",
               "instructions, items with text parts (joined by a newline), "
               "an assistant turn, developer, sampling, stream and vLLM's "
               "top_k");

    /* vLLM adds the system message only where instructions is truthy:
     * "" renders none (nor keeps out a template's default one) */
    check_same("{\"model\":\"base\",\"instructions\":\"\",\"input\":"
               "\"Hi\"}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"}]}",
               "instructions \"\": no system message, as none");
    check_same("{\"model\":\"base\",\"instructions\":null,\"input\":"
               "\"Hi\"}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"}]}",
               "instructions null: no system message");
    check_same("{\"model\":\"base\",\"instructions\":\" \",\"input\":"
               "\"Hi\"}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"system\","
               "\"content\":\" \"},{\"role\":\"user\",\"content\":"
               "\"Hi\"}]}",
               "instructions of a space: a system message still");

    check_same("{\"model\":\"base\",\"input\":\"Hi\",\"include\":["
               "\"message.output_text.logprobs\"],\"top_logprobs\":2}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"}],\"logprobs\":true,\"top_logprobs\":2}",
               "include's message.output_text.logprobs and top_logprobs: "
               "chat's logprobs");
    check_same("{\"model\":\"base\",\"input\":\"Hi\",\"top_logprobs\":3}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"}],\"logprobs\":true,\"top_logprobs\":3}",
               "top_logprobs alone asks for them too");
    check_same("{\"model\":\"base\",\"input\":\"Hi\",\"include\":["
               "\"reasoning.encrypted_content\"]}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"}]}",
               "include of parts of items never made: nothing to add");

    check_same("{\"model\":\"base\",\"input\":\"Yes or no?\","
               "\"guided_choice\":[\"yes\",\"no\"]}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Yes or no?\"}],\"guided_choice\":[\"yes\","
               "\"no\"]}",
               "vLLM's guided_choice, as on chat");
    check_same("{\"model\":\"base\",\"input\":\"A year?\","
               "\"guided_regex\":\"[0-9]{4}\"}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"A year?\"}],\"guided_regex\":\"[0-9]{4}\"}",
               "vLLM's guided_regex, as on chat");

    check_same("{\"model\":\"base\",\"input\":\"Name a city.\",\"text\":"
               "{\"format\":{\"type\":\"json_object\"}}}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Name a city.\"}],\"response_format\":"
               "{\"type\":\"json_object\"}}",
               "text.format json_object: JSON mode");

    check_same("{\"model\":\"base\",\"input\":\"Name a city.\",\"text\":"
               "{\"format\":{\"type\":\"json_schema\",\"name\":\"city\","
               "\"strict\":true,\"schema\":" WEATHER_PARAMS "}}}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Name a city.\"}],\"response_format\":"
               "{\"type\":\"json_schema\",\"json_schema\":{\"name\":"
               "\"city\",\"strict\":true,\"schema\":" WEATHER_PARAMS "}}}",
               "text.format json_schema: the schema held");

    check_same("{\"model\":\"base\",\"input\":\"Hi\",\"text\":{\"format\":"
               "{\"type\":\"text\"}}}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"}]}",
               "text.format text: free text");

    check_same("{\"model\":\"base\",\"input\":\"Weather in Paris?\","
               "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\","
               "\"description\":\"Weather in a city\",\"parameters\":"
               WEATHER_PARAMS ",\"strict\":true}],\"tool_choice\":"
               "\"required\",\"parallel_tool_calls\":false}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Weather in Paris?\"}],\"tools\":[{\"type\":"
               "\"function\",\"function\":{\"name\":\"get_weather\","
               "\"description\":\"Weather in a city\",\"parameters\":"
               WEATHER_PARAMS ",\"strict\":true}}],\"tool_choice\":"
               "\"required\",\"parallel_tool_calls\":false}",
               "flat function tools, tool_choice required, "
               "parallel_tool_calls");

    /* strict left out, as OpenAI's Responses leaves it: under "auto" the
     * calls are held to parameters the compiler takes and left free where
     * it refuses them (a lookahead); "strict": true makes that a 400 */
    check_same("{\"model\":\"base\",\"input\":\"Weather?\",\"tools\":["
               "{\"type\":\"function\",\"name\":\"get_weather\","
               "\"parameters\":" WEATHER_PARAMS "}]}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Weather?\"}],\"tools\":[{\"type\":"
               "\"function\",\"function\":{\"name\":\"get_weather\","
               "\"parameters\":" WEATHER_PARAMS "}}]}",
               "auto, strict left out: held as chat holds it");
    check_auto_strict();

    check_same("{\"model\":\"base\",\"input\":\"Weather?\",\"tools\":["
               "{\"type\":\"function\",\"name\":\"get_weather\","
               "\"parameters\":" WEATHER_PARAMS "},{\"type\":\"function\","
               "\"name\":\"get_time\",\"parameters\":{}}],\"tool_choice\":"
               "{\"type\":\"function\",\"name\":\"get_time\"}}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Weather?\"}],\"tools\":[{\"type\":"
               "\"function\",\"function\":{\"name\":\"get_weather\","
               "\"parameters\":" WEATHER_PARAMS "}},{\"type\":\"function\","
               "\"function\":{\"name\":\"get_time\",\"parameters\":{}}}],"
               "\"tool_choice\":{\"type\":\"function\",\"function\":"
               "{\"name\":\"get_time\"}}}",
               "tool_choice naming a function");

    check_same("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
               "\"content\":\"Weather in Paris and Rome?\"},{\"type\":"
               "\"message\",\"role\":\"assistant\",\"content\":[{\"type\":"
               "\"output_text\",\"text\":\"Checking.\"}]},{\"type\":"
               "\"function_call\",\"call_id\":\"c1\",\"name\":"
               "\"get_weather\",\"arguments\":\"{\\\"city\\\":"
               "\\\"Paris\\\"}\"},{\"type\":\"function_call\",\"call_id\":"
               "\"c2\",\"name\":\"get_weather\",\"arguments\":"
               "\"{\\\"city\\\":\\\"Rome\\\"}\"},{\"type\":"
               "\"function_call_output\",\"call_id\":\"c1\",\"output\":"
               "\"18 C\"},{\"type\":\"function_call_output\",\"call_id\":"
               "\"c2\",\"output\":[{\"type\":\"input_text\",\"text\":"
               "\"21 C\"}]}],\"tools\":[{\"type\":\"function\",\"name\":"
               "\"get_weather\",\"parameters\":" WEATHER_PARAMS "}]}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Weather in Paris and Rome?\"},{\"role\":"
               "\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
               "{\"id\":\"c1\",\"type\":\"function\",\"function\":"
               "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
               "\\\"Paris\\\"}\"}},{\"id\":\"c2\",\"type\":\"function\","
               "\"function\":{\"name\":\"get_weather\",\"arguments\":"
               "\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},{\"role\":\"tool\","
               "\"tool_call_id\":\"c1\",\"content\":\"18 C\"},{\"role\":"
               "\"tool\",\"tool_call_id\":\"c2\",\"content\":\"21 C\"}],"
               "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
               "\"get_weather\",\"parameters\":" WEATHER_PARAMS "}}]}",
               "function_call items join the assistant message before "
               "them, their outputs are tool messages");

    check_same("{\"model\":\"base\",\"input\":[{\"type\":\"function_call\","
               "\"call_id\":\"c1\",\"name\":\"now\",\"arguments\":\"{}\"},"
               "{\"type\":\"function_call_output\",\"call_id\":\"c1\","
               "\"output\":\"noon\"},{\"role\":\"user\",\"content\":"
               "\"And?\"}],\"reasoning\":{\"effort\":null},\"store\":false,"
               "\"truncation\":\"disabled\",\"metadata\":{\"k\":\"v\"},"
               "\"include\":[],\"top_logprobs\":0}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"assistant\","
               "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
               "\"function\",\"function\":{\"name\":\"now\",\"arguments\":"
               "\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\","
               "\"content\":\"noon\"},{\"role\":\"user\",\"content\":"
               "\"And?\"}]}",
               "a call with no message before it; fields that ask for "
               "nothing (a null effort, store, metadata, empty include) "
               "taken");
}


/* previous_response_id: the stored conversation goes before the input,
 * after this request's instructions; resp_conv is the input alone (the
 * store keeps the rest); an id not stored is a 404; store false is
 * kept. */
static void
test_previous(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"model\":\"base\",\"previous_response_id\":\"resp_a\","
        "\"instructions\":\"Be brief.\",\"input\":[{\"type\":"
        "\"function_call_output\",\"call_id\":\"call_1\",\"output\":"
        "\"18 C\"}],\"store\":false}";
    static const char  unknown[] =
        "{\"model\":\"base\",\"previous_response_id\":\"resp_b\","
        "\"input\":\"Hi\"}";

    check_same(body,
               "{\"model\":\"base\",\"messages\":[{\"role\":\"system\","
               "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
               "\"Weather in Paris?\"},{\"role\":\"assistant\",\"content\":"
               "null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
               "\"function\",\"function\":{\"name\":\"get_weather\","
               "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
               "\"call_1\",\"content\":\"18 C\"}]}",
               "previous_response_id: its conversation after the "
               "instructions, before the input");

    /* an answer that only reasoned (cut inside its think block): no
     * message of the assistant's to write it with, left out as a
     * conversation leaves it out */
    check_same("{\"model\":\"base\",\"previous_response_id\":"
               "\"resp_r\",\"input\":\"Go on.\"}",
               "{\"model\":\"base\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Think.\"},{\"role\":\"user\",\"content\":"
               "\"Go on.\"}]}",
               "previous_response_id: an answer of reasoning alone is no "
               "assistant turn");

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(body, sizeof(body) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_OK && !req.resp_store && req.resp_prev.data != NULL
       && strcmp(req.resp_prev.data, "resp_a") == 0,
       "the previous id kept, store false kept: %s", err.msg);
    is_str(req.resp_conv.data,
           "[{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":"
           "\"18 C\"}]",
           "the messages to store: the input's, neither the stored "
           "conversation's nor the instructions");
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(unknown, sizeof(unknown) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 404
       && strcmp(err.code, "previous_response_not_found") == 0
       && strcmp(err.param, "previous_response_id") == 0,
       "an id not stored: 404 previous_response_not_found: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(unknown, sizeof(unknown) - 1, NULL,
                                      NULL, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "unsupported_parameter") == 0,
       "no store: previous_response_id a 400: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(body, sizeof(body) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_OK && req.resp_conv.len == strlen(req.resp_conv.data),
       "its length is its text's");
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses("{\"model\":\"base\",\"input\":"
                                      "\"Hi\"}", 29, NULL, prev_lookup,
                                      NULL, &req, &err);
    ok(rc == SLORA_OK && req.resp_store && req.resp_prev.data == NULL
       && strcmp(req.resp_conv.data,
                 "[{\"role\":\"user\",\"content\":\"Hi\"}]") == 0,
       "without one: store by default, the conversation the input's");
    slora_openai_req_free(&req);
}


static void
test_echo(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  body[] = "{\"model\":\"base\",\"input\":\"Hi\"}";
    static const char  body2[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"instructions\":\"Be "
        "brief.\",\"max_output_tokens\":9,\"temperature\":0.25,"
        "\"metadata\":{\"k\":\"v\"},\"tools\":[{\"type\":\"function\","
        "\"name\":\"f\"}],\"tool_choice\":\"none\",\"user\":\"u1\","
        "\"truncation\":\"auto\"}";
    static const char  body3[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"text\":{\"verbosity\":"
        "\"medium\"}}";
    static const char  body4[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"user\":{\"id\":7}}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(body, sizeof(body) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_OK && req.responses && req.kind == SLORA_OPENAI_CHAT,
       "a Responses request is marked, a chat underneath: %s", err.msg);
    is_str(req.resp_echo.data,
           "\"conversation\":null,\"instructions\":null,"
           "\"max_output_tokens\":null,\"metadata\":{},"
           "\"parallel_tool_calls\":true,\"temperature\":1,\"text\":"
           "{\"format\":{\"type\":\"text\"}},\"tool_choice\":\"auto\","
           "\"tools\":[],\"top_logprobs\":0,\"top_p\":1,\"truncation\":"
           "\"disabled\",\"user\":null",
           "the echo: every field at its default");
    ok(!req.truncate, "truncation: disabled unless asked");
    ok(req.resp_echo.len == strlen(req.resp_echo.data),
       "its length is its text's");
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(body2, sizeof(body2) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_OK, "a request of echoed fields parses: %s", err.msg);
    is_str(req.resp_echo.data,
           "\"conversation\":null,\"instructions\":\"Be brief.\","
           "\"max_output_tokens\":9,"
           "\"metadata\":{\"k\":\"v\"},\"parallel_tool_calls\":true,"
           "\"temperature\":0.25,\"text\":{\"format\":{\"type\":\"text\"}},"
           "\"tool_choice\":\"none\",\"tools\":[{\"type\":\"function\","
           "\"name\":\"f\"}],\"top_logprobs\":0,\"top_p\":1,"
           "\"truncation\":\"auto\",\"user\":\"u1\"",
           "the echo: what the request gave");
    ok(req.truncate, "truncation auto: the worker may leave out the "
       "oldest turns");
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(body3, sizeof(body3) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_OK && req.resp_echo.data != NULL
       && strstr(req.resp_echo.data, "\"text\":{\"verbosity\":\"medium\","
                 "\"format\":{\"type\":\"text\"}}") != NULL,
       "the echo: a text of verbosity alone has the default format: %s",
       rc == SLORA_OK ? req.resp_echo.data : err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(body4, sizeof(body4) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "invalid_type") == 0
       && strcmp(err.param, "user") == 0,
       "user not a string: 400 invalid_type naming it: %s", err.msg);
    slora_openai_req_free(&req);
}


/* background: where responses are kept, stored, not streamed */
static void
test_background(void)
{
    size_t              i;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const struct {
        const char  *body;
        int          status;
        const char  *param;
        const char  *code;
        int          background;
        const char  *what;
    } cases[] = {
        { "{\"model\":\"base\",\"input\":\"Hi\",\"background\":true}",
          0, NULL, NULL, 1, "background true: taken" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"background\":false}",
          0, NULL, NULL, 0, "background false: the foreground" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"background\":null}",
          0, NULL, NULL, 0, "background null: the foreground" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"background\":true,"
          "\"store\":false}", 400, "background", "invalid_value", 0,
          "background without store" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"background\":true,"
          "\"stream\":true}", 0, NULL, NULL, 1, "background streamed: taken" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"background\":\"yes\"}",
          400, "background", "invalid_type", 0, "background a string" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"metadata\":[1]}",
          400, "metadata", "invalid_type", 0, "metadata not an object" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"metadata\":{\"k\":1}}",
          400, "metadata", "invalid_value", 0, "metadata's value a number" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"metadata\":{\"a\":"
          "\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\",\"e\":\"1\",\"f\":"
          "\"1\",\"g\":\"1\",\"h\":\"1\",\"i\":\"1\",\"j\":\"1\",\"k\":"
          "\"1\",\"l\":\"1\",\"m\":\"1\",\"n\":\"1\",\"o\":\"1\",\"p\":"
          "\"1\",\"q\":\"1\"}}", 400, "metadata", "invalid_value", 0,
          "metadata of 17 pairs" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"metadata\":{\"k\":"
          "\"v\"}}", 0, NULL, NULL, 0, "metadata of one pair: taken" },
        { "{\"model\":\"base\",\"input\":\"Hi\",\"previous_response_id\":"
          "\"resp_busy\"}", 400, "previous_response_id", "invalid_value", 0,
          "continuing a response not answered yet" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));

        if (slora_openai_parse_responses(cases[i].body,
                                         strlen(cases[i].body), NULL,
                                         prev_lookup, NULL, &req, &err)
            == SLORA_OK)
        {
            ok(cases[i].status == 0
               && req.resp_background == (unsigned) cases[i].background,
               "%s (background %u)", cases[i].what, req.resp_background);

        } else {
            ok(err.status == cases[i].status && cases[i].param != NULL
               && err.param != NULL && strcmp(err.param, cases[i].param) == 0
               && err.code != NULL && strcmp(err.code, cases[i].code) == 0,
               "%s: %d %s %s: %s", cases[i].what, err.status,
               err.param ? err.param : "(null)",
               err.code ? err.code : "(null)", err.msg);
        }

        slora_openai_req_free(&req);
    }
}


static void
test_refused(void)
{
    check_refused("{\"model\":\"base\",\"input\":\"Hi\","
                  "\"previous_response_id\":\"resp_1\"}",
                  "previous_response_id", "unsupported_parameter",
                  "previous_response_id: no responses are kept");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"conversation\":"
                  "\"conv_1\"}", "conversation", "unsupported_parameter",
                  "conversation");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"background\":true}",
                  "background", "unsupported_parameter",
                  "background: no responses are kept");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"reasoning\":"
                  "{\"effort\":\"high\"}}", "reasoning",
                  "unsupported_parameter", "a reasoning effort");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"include\":["
                  "\"message.output_text.logprobs\"],\"tools\":[{\"type\":"
                  "\"function\",\"name\":\"f\"}]}", "include",
                  "unsupported_parameter", "log-probabilities with tools");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"include\":["
                  "\"message.everything\"]}", "include", "invalid_value",
                  "an include value the API does not know");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"top_logprobs\":"
                  "21}", "top_logprobs", "invalid_value",
                  "top_logprobs above 20");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"truncation\":"
                  "\"middle\"}", "truncation", "invalid_value",
                  "a truncation the API does not know");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"truncation\":"
                  "true}", "truncation", "invalid_value",
                  "a truncation not a string");
    check_refused("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
                  "\"content\":[{\"type\":\"input_image\",\"image_url\":"
                  "\"http://x/y.png\"}]}]}", "input",
                  "unsupported_parameter", "an image part");
    check_refused("{\"model\":\"base\",\"input\":[{\"role\":\"robot\","
                  "\"content\":\"Hi\"}]}", "input", "invalid_value",
                  "an unknown role");
    check_refused("{\"model\":\"base\",\"input\":[{\"type\":"
                  "\"function_call\",\"name\":\"f\",\"arguments\":\"{}\"}]}",
                  "input", "invalid_type", "a function_call without call_id");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"tools\":["
                  "{\"type\":\"web_search\"}]}", "tools",
                  "unsupported_parameter", "a built-in tool");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"tool_choice\":"
                  "{\"type\":\"allowed_tools\",\"tools\":[]}}", "tool_choice",
                  "unsupported_parameter", "tool_choice allowed_tools");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
                  "{\"format\":{\"type\":\"json_schema\",\"name\":\"x\","
                  "\"schema\":{\"type\":\"number\",\"multipleOf\":3}}}}",
                  "text.format", "invalid_value",
                  "a schema keyword the server cannot hold, named as "
                  "text.format");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
                  "{\"format\":{\"type\":\"json_schema\",\"schema\":"
                  "{\"type\":\"object\"}}}}", "text.format.name",
                  "missing_required_parameter",
                  "a json_schema format without its name, which OpenAI "
                  "requires");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
                  "{\"format\":{\"type\":\"json_schema\",\"name\":7,"
                  "\"schema\":{\"type\":\"object\"}}}}", "text.format.name",
                  "invalid_type", "a json_schema format's name not a string");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
                  "{\"format\":{\"type\":\"json_schema\",\"name\":\"x\"}}}",
                  "text.format.schema", "invalid_type",
                  "a json_schema format without its schema");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
                  "{\"format\":{\"type\":\"json_schema\",\"name\":\"x\","
                  "\"schema\":true}}}", "text.format.schema", "invalid_type",
                  "a json_schema format's schema not an object");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"text\":"
                  "{\"format\":{\"type\":\"grammar\"}}}", "text.format",
                  "invalid_value", "an unknown format");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\","
                  "\"max_output_tokens\":0}", "max_output_tokens",
                  "invalid_value", "max_output_tokens 0, named so");
    check_refused("{\"model\":\"base\"}", "input",
                  "missing_required_parameter", "no input");
    check_refused("{\"model\":\"base\",\"input\":[]}", "input",
                  "invalid_type", "an empty input");
    check_refused("{\"input\":\"Hi\"}", "model",
                  "missing_required_parameter", "no model");
    check_refused("{\"model\":\"base\",\"input\":\"Hi\",\"temperature\":3}",
                  "temperature", "invalid_value", "temperature out of range");
}


/* text.format's schema named as the flat request has it: not as chat's
 * response_format.json_schema.schema, which a rename made
 * text.format.json_schema.schema. */
static void
test_format_schema(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"model\":\"base\",\"input\":\"Hi\",\"text\":{\"format\":"
        "{\"type\":\"json_schema\",\"name\":\"x\",\"schema\":[]}}}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(body, sizeof(body) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.param != NULL
       && strcmp(err.param, "text.format.schema") == 0,
       "a schema not an object: param text.format.schema (%s)",
       err.param ? err.param : "(null)");
    is_str(err.msg, "text.format.schema must be an object",
           "its message names text.format.schema");
    slora_openai_req_free(&req);
}


static void
test_conversation(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"model\":\"base\",\"instructions\":\"Be brief.\","
        "\"conversation\":\"conv_a\",\"input\":[{\"type\":"
        "\"function_call_output\",\"call_id\":\"call_2\",\"output\":"
        "\"noon\"}]}";
    static const char  unknown[] =
        "{\"model\":\"base\",\"conversation\":{\"id\":\"conv_b\"},"
        "\"input\":\"Hi\"}";
    static const char  both[] =
        "{\"model\":\"base\",\"conversation\":\"conv_a\","
        "\"previous_response_id\":\"resp_a\",\"input\":\"Hi\"}";
    static const char  not_id[] =
        "{\"model\":\"base\",\"conversation\":{\"id\":5},"
        "\"input\":\"Hi\"}";
    static const char  object[] =
        "{\"model\":\"base\",\"conversation\":{\"id\":\"conv_a\"},"
        "\"input\":\"And now?\"}";
    static const char  in_conv[] =
        "{\"model\":\"base\",\"previous_response_id\":\"resp_c\","
        "\"input\":\"And now?\"}";

    check_same(body,
               "{\"model\":\"base\",\"messages\":[{\"role\":\"system\","
               "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":"
               "\"Weather in Paris?\"},{\"role\":\"assistant\",\"content\":"
               "null,\"tool_calls\":[{\"id\":\"call_2\",\"type\":"
               "\"function\",\"function\":{\"name\":\"get_time\","
               "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
               "\"call_2\",\"content\":\"noon\"}]}",
               "conversation: its messages less the removed ones after the "
               "instructions, before the input");

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(body, sizeof(body) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_OK && req.resp_conversation.data != NULL
       && strcmp(req.resp_conversation.data, "conv_a") == 0
       && req.resp_prev.data == NULL,
       "the conversation's id kept: %s", err.msg);
    is_str(req.resp_conv.data,
           "[{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":"
           "\"noon\"}]",
           "the messages to add to it: the input's alone");
    ok(req.resp_echo.data != NULL
       && strstr(req.resp_echo.data,
                 "\"conversation\":{\"id\":\"conv_a\"}") != NULL,
       "echoed as the object it names: %s", req.resp_echo.data);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(object, sizeof(object) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_OK && strcmp(req.resp_conversation.data, "conv_a") == 0
       && strstr(req.resp_echo.data,
                 "\"conversation\":{\"id\":\"conv_a\"}") != NULL,
       "given as {\"id\"}: the same: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses("{\"model\":\"base\",\"input\":"
                                      "\"Hi\"}", 29, NULL, prev_lookup,
                                      NULL, &req, &err);
    ok(rc == SLORA_OK && req.resp_conversation.data == NULL
       && strstr(req.resp_echo.data, "\"conversation\":null") != NULL,
       "without one: none, echoed null");
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(in_conv, sizeof(in_conv) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "previous_response_id") == 0
       && strstr(err.msg, "conv_a") != NULL
       && strstr(err.msg, "continue it with conversation") != NULL,
       "previous_response_id of a response made in a conversation: 400, "
       "continue the conversation: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(unknown, sizeof(unknown) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 404
       && strcmp(err.code, "not_found") == 0
       && strcmp(err.param, "conversation") == 0
       && strstr(err.msg, "conv_b") != NULL,
       "an unknown conversation: 404 naming it: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(both, sizeof(both) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "mutually_exclusive_parameters") == 0,
       "with previous_response_id: 400: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(not_id, sizeof(not_id) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "invalid_type") == 0
       && strcmp(err.param, "conversation") == 0,
       "an id that is not a string: 400: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(object, sizeof(object) - 1, NULL,
                                      NULL, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "unsupported_parameter") == 0
       && strcmp(err.param, "conversation") == 0,
       "no store: conversation a 400: %s", err.msg);
    slora_openai_req_free(&req);
}


int
main(void)
{
    test_same();
    test_previous();
    test_echo();
    test_background();
    test_conversation();
    test_refused();
    test_format_schema();
    test_stopped();
    test_item_place();
    test_reasoning();
    test_no_instructions();
    test_unanswered();

    done_testing();
}


/* An input item the chat parser refuses is named by its place in input,
 * not by the chat message it became: the instructions, a stored
 * conversation, a call joined to the assistant message before it and a
 * reasoning item take no place of their own in input. */
static void
test_item_place(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  inst[] =
        "{\"model\":\"base\",\"instructions\":\"Be brief.\",\"input\":"
        "[{\"role\":\"user\",\"content\":\"Hi\"},{\"type\":"
        "\"function_call\",\"call_id\":\"c1\",\"name\":\"f\","
        "\"arguments\":\"{bad\"}]}";
    static const char  joined[] =
        "{\"model\":\"base\",\"input\":[{\"role\":\"user\",\"content\":"
        "\"Hi\"},{\"type\":\"reasoning\"},{\"role\":\"assistant\","
        "\"content\":\"Let me see.\"},{\"type\":\"function_call\","
        "\"call_id\":\"c0\",\"name\":\"f\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c0\","
        "\"output\":\"1\"},{\"type\":\"function_call\",\"call_id\":"
        "\"c1\",\"name\":\"f\",\"arguments\":\"{bad\"}]}";
    static const char  prev[] =
        "{\"model\":\"base\",\"previous_response_id\":\"resp_a\","
        "\"input\":[{\"type\":\"function_call_output\",\"call_id\":"
        "\"call_1\",\"output\":\"1\"},{\"type\":\"function_call\","
        "\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{bad\"}]}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(inst, sizeof(inst) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "input") == 0
       && strncmp(err.msg, "input[1].", 9) == 0,
       "after instructions, the bad call is input[1]: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(joined, sizeof(joined) - 1, NULL,
                                      NULL, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strncmp(err.msg, "input[5].", 9) == 0,
       "after a reasoning item and a call joined to its message, the bad "
       "call is input[5]: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(prev, sizeof(prev) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strncmp(err.msg, "input[1].", 9) == 0,
       "after a stored conversation, the bad call is input[1]: %s",
       err.msg);
    slora_openai_req_free(&req);
}


static void
test_stopped(void)
{
    int                 rc, asked;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  prev[] =
        "{\"model\":\"base\",\"previous_response_id\":\"resp_a\","
        "\"input\":\"Hi\",\"tools\":\"not a list\"}";
    static const char  conv[] =
        "{\"model\":\"base\",\"conversation\":\"conv_a\","
        "\"input\":\"Hi\"}";
    static const char  early[] =
        "{\"model\":\"base\",\"previous_response_id\":\"resp_a\","
        "\"instructions\":7,\"input\":\"Hi\"}";

    memset(&err, 0, sizeof(err));
    asked = 0;
    rc = slora_openai_parse_responses(prev, sizeof(prev) - 1, NULL,
                                      stop_lookup, &asked, &req, &err);
    ok(rc == SLORA_AGAIN && asked == 1,
       "previous_response_id, the lookup stopping: SLORA_AGAIN, the tools "
       "after it not looked at (%d, asked %d)", rc, asked);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(prev, sizeof(prev) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "tools") == 0,
       "the same given its history: the tools' 400: %s", err.msg);
    slora_openai_req_free(&req);

    asked = 0;
    rc = slora_openai_parse_responses(conv, sizeof(conv) - 1, NULL,
                                      stop_lookup, &asked, &req, &err);
    ok(rc == SLORA_AGAIN && asked == 1,
       "conversation, the lookup stopping: SLORA_AGAIN");
    slora_openai_req_free(&req);

    asked = 0;
    rc = slora_openai_parse_responses(early, sizeof(early) - 1, NULL,
                                      stop_lookup, &asked, &req, &err);
    ok(rc == SLORA_ERROR && asked == 0 && err.status == 400
       && strcmp(err.param, "instructions") == 0,
       "a bad field before the lookup: its 400 at once: %s", err.msg);
    slora_openai_req_free(&req);
}


/* A reasoning item sent back, under Qwen3's template's think turns: the
 * reasoning_content of the assistant's item after it, as vLLM makes it,
 * so a tool-calling loop's call keeps its think block. */
static void
test_reasoning(void)
{
    int                    rc_a, rc_b, same;
    uint32_t               i;
    slora_openai_req_t     a, b;
    slora_openai_err_t     err_a, err_b;
    slora_openai_limits_t  lim;

    static const char  resp[] =
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":"
        "\"Q\"},{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[],"
        "\"content\":[{\"type\":\"reasoning_text\",\"text\":\"plan\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\","
        "\"arguments\":\"{}\"},{\"type\":\"function_call_output\","
        "\"call_id\":\"c1\",\"output\":\"R\"}]}";
    static const char  chat[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"Q\"},{\"role\":\"assistant\",\"content\":null,"
        "\"reasoning_content\":\"plan\",\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
        "\"c1\",\"content\":\"R\"}]}";

    memset(&err_a, 0, sizeof(err_a));
    memset(&err_b, 0, sizeof(err_b));
    lim = slora_openai_default_limits;
    lim.chat = SLORA_CHAT_CHATML;
    lim.chat_flags = SLORA_CHAT_THINK_TURNS;

    rc_a = slora_openai_parse_responses(resp, sizeof(resp) - 1, &lim, NULL,
                                        NULL, &a, &err_a);
    rc_b = slora_openai_parse(chat, sizeof(chat) - 1, SLORA_OPENAI_CHAT,
                              &lim, &b, &err_b);

    same = rc_a == SLORA_OK && rc_b == SLORA_OK && a.n_msgs == b.n_msgs
           && b.n_msgs == 3 && b.msgs[1].content_len > 14
           && memcmp(b.msgs[1].content, "<think>\nplan\n", 13) == 0;

    for (i = 0; same && i < a.n_msgs; i++) {
        same = a.msgs[i].content_len == b.msgs[i].content_len
               && memcmp(a.msgs[i].content, b.msgs[i].content,
                         a.msgs[i].content_len) == 0;
    }

    if (!same && rc_a == SLORA_OK && a.n_msgs > 1) {
        diag("%.*s", (int) a.msgs[1].content_len, a.msgs[1].content);
    }

    ok(same, "a reasoning item before a call: the call's think block, as "
       "chat's reasoning_content (%s / %s)", err_a.msg, err_b.msg);

    slora_openai_req_free(&a);
    slora_openai_req_free(&b);

    /* under the think turns, where the reasoning lands shows: written
     * back past the last user query, dropped before it */
    check_think("[{\"role\":\"user\",\"content\":\"Hi\"}," RS_HM ","
                "{\"role\":\"assistant\",\"content\":\"Hello\"},"
                "{\"role\":\"user\",\"content\":\"And?\"}]",
                "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                "\"assistant\",\"content\":\"Hello\"},{\"role\":\"user\","
                "\"content\":\"And?\"}]",
                "a reasoning item sent back before the last user query: not "
                "rendered, as the templates drop earlier reasoning");
    check_think("[{\"role\":\"user\",\"content\":\"Hi\"}," RS_HM ","
                "{\"role\":\"assistant\",\"content\":\"Hello\"}]",
                "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                "\"assistant\",\"content\":\"Hello\",\"reasoning_content\":"
                "\"hm\"}]",
                "... and after it: rendered, the message's think block");
    check_think("[{\"role\":\"user\",\"content\":\"Hi\"}," RS_HM ","
                "{\"role\":\"user\",\"content\":\"And?\"},{\"role\":"
                "\"assistant\",\"content\":\"ok\"}]",
                "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                "\"user\",\"content\":\"And?\"},{\"role\":\"assistant\","
                "\"content\":\"ok\"}]",
                "a reasoning item with no answer of its own after it: passed "
                "over, not given to the answer after the next query");
    check_think("[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                "\"assistant\",\"content\":\"ok\"}," RS_HM "]",
                "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                "\"assistant\",\"content\":\"ok\"}]",
                "a reasoning item last: passed over, not given to the answer "
                "before it");
    check_think("[{\"role\":\"user\",\"content\":\"Hi\"}," RS_HM ","
                "{\"role\":\"assistant\",\"content\":\"Let me look.\"},"
                "{\"type\":\"reasoning\",\"content\":[{\"type\":"
                "\"reasoning_text\",\"text\":\"then f\"}]},"
                "{\"type\":\"function_call\",\"call_id\":\"c1\","
                "\"name\":\"f\",\"arguments\":\"{}\"}]",
                "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":"
                "\"assistant\",\"content\":\"Let me look.\","
                "\"reasoning_content\":\"hm\\nthen f\",\"tool_calls\":"
                "[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
                "{\"name\":\"f\",\"arguments\":\"{}\"}}]}]",
                "reasoning, a message, more reasoning and a call joining "
                "that message: one think block of both, after a newline");
    check_refused("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
                  "\"content\":\"Hi\"},{\"type\":\"reasoning\",\"content\":"
                  "[{\"type\":\"reasoning_text\"}]}]}", "input",
                  "invalid_type", "a reasoning part without its text");
    check_refused("{\"model\":\"base\",\"input\":[{\"role\":\"user\","
                  "\"content\":\"Hi\"},{\"type\":\"reasoning\",\"content\":"
                  "\"hm\"},{\"role\":\"assistant\",\"content\":\"Hello\"}]}",
                  "input", "invalid_type", "a reasoning content not parts");
}


/* instructions "" is none: a template's default system message comes
 * first, as where instructions is left out, not an empty one. */
static void
test_no_instructions(void)
{
    int                    rc;
    slora_openai_req_t     req;
    slora_openai_err_t     err;
    slora_openai_limits_t  lim;

    static const char  body[] =
        "{\"model\":\"base\",\"instructions\":\"\",\"input\":\"Hi\"}";

    memset(&err, 0, sizeof(err));
    lim = slora_openai_default_limits;
    lim.system = "You are a helpful assistant.";

    rc = slora_openai_parse_responses(body, sizeof(body) - 1, &lim, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 2 && req.msgs[0].role_len == 6
       && memcmp(req.msgs[0].role, "system", 6) == 0
       && req.msgs[0].content_len == strlen(lim.system)
       && memcmp(req.msgs[0].content, lim.system,
                 req.msgs[0].content_len) == 0,
       "instructions \"\": the template's default system message first, "
       "not an empty one (%s)", err.msg);
    slora_openai_req_free(&req);
}


/* A function_call_output answers a function_call before it: in input,
 * or in the stored conversation it continues (its live calls); else a
 * 400 naming the output's place, as OpenAI answers. */
static void
test_unanswered(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  none[] =
        "{\"model\":\"base\",\"input\":[{\"role\":\"user\",\"content\":"
        "\"Hi\"},{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":"
        "\"f\",\"arguments\":\"{}\"},{\"type\":\"function_call_output\","
        "\"call_id\":\"c1\",\"output\":\"1\"},{\"type\":"
        "\"function_call_output\",\"call_id\":\"c2\",\"output\":\"2\"}]}";
    static const char  after[] =
        "{\"model\":\"base\",\"input\":[{\"type\":\"function_call_output\","
        "\"call_id\":\"c1\",\"output\":\"1\"},{\"type\":\"function_call\","
        "\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"}]}";
    static const char  prev[] =
        "{\"model\":\"base\",\"previous_response_id\":\"resp_a\","
        "\"input\":[{\"type\":\"function_call_output\",\"call_id\":"
        "\"call_9\",\"output\":\"1\"}]}";
    static const char  removed[] =
        "{\"model\":\"base\",\"conversation\":\"conv_a\",\"input\":"
        "[{\"type\":\"function_call_output\",\"call_id\":\"call_1\","
        "\"output\":\"1\"}]}";

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(none, sizeof(none) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "invalid_value") == 0
       && strcmp(err.param, "input") == 0
       && strcmp(err.msg, "input[3]: no function_call with call_id \"c2\""
                 " comes before this function_call_output") == 0,
       "an output of no call: 400 naming its item: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(after, sizeof(after) - 1, NULL, NULL,
                                      NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strncmp(err.msg, "input[0]: no function_call ", 27) == 0,
       "an output before its call: 400: %s", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(prev, sizeof(prev) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.param, "input") == 0
       && strstr(err.msg, "input[0]: no function_call with call_id "
                 "\"call_9\"") != NULL,
       "after a stored response whose calls it answers none of: 400: %s",
       err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse_responses(removed, sizeof(removed) - 1, NULL,
                                      prev_lookup, NULL, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strstr(err.msg, "input[0]: no function_call with call_id "
                 "\"call_1\"") != NULL,
       "a call removed from the conversation answered: 400: %s", err.msg);
    slora_openai_req_free(&req);

    /* more calls than the set's first slots: each output finds its own,
     * the last answers none */
    {
        int     k;
        char    body[16384], *p;

        p = body + sprintf(body, "{\"model\":\"base\",\"input\":[");

        for (k = 0; k < 100; k++) {
            p += sprintf(p, "{\"type\":\"function_call\",\"call_id\":"
                         "\"call_%d\",\"name\":\"f\",\"arguments\":"
                         "\"{}\"},", k);
        }

        for (k = 99; k >= 0; k--) {
            p += sprintf(p, "{\"type\":\"function_call_output\","
                         "\"call_id\":\"call_%d\",\"output\":\"r\"},", k);
        }

        sprintf(p, "{\"type\":\"function_call_output\",\"call_id\":"
                "\"call_100\",\"output\":\"r\"}]}");

        rc = slora_openai_parse_responses(body, strlen(body), NULL, NULL,
                                          NULL, &req, &err);
        ok(rc == SLORA_ERROR
           && strncmp(err.msg, "input[200]: no function_call with call_id"
                      " \"call_100\"", 41 + 11) == 0,
           "100 calls, their 100 outputs taken, one more refused: %s",
           err.msg);
        slora_openai_req_free(&req);

        strcpy(strrchr(body, '{') - 1, "]}");
        memset(&err, 0, sizeof(err));
        rc = slora_openai_parse_responses(body, strlen(body), NULL, NULL,
                                          NULL, &req, &err);
        ok(rc == SLORA_OK, "... and without it, taken: %s", err.msg);
        slora_openai_req_free(&req);
    }
}


/* The Responses body resp and the chat body chat parse alike. */
static void
check_same(const char *resp, const char *chat, const char *what)
{
    check_same_as(resp, chat, NULL, what);
}


/* The Responses input and the chat messages msgs parse alike under
 * Qwen3's think turns (SLORA_CHAT_THINK_TURNS), where an assistant's
 * reasoning past the last user query is written back and one before it
 * dropped: so where a reasoning item's text went shows. */
static void
check_think(const char *input, const char *msgs, const char *what)
{
    char                   resp[1024], chat[1024];
    slora_openai_limits_t  lim;

    lim = slora_openai_default_limits;
    lim.chat = SLORA_CHAT_CHATML;
    lim.chat_flags = SLORA_CHAT_THINK_TURNS;

    snprintf(resp, sizeof(resp), "{\"model\":\"base\",\"input\":%s}",
             input);
    snprintf(chat, sizeof(chat), "{\"model\":\"base\",\"messages\":%s}",
             msgs);

    check_same_as(resp, chat, &lim, what);
}


/* Under "auto", a Responses tool whose parameters the schema compiler
 * refuses: calls left free with "strict" left out, a 400 naming the
 * Responses field with "strict": true. */
static void
check_auto_strict(void)
{
    int                 i, rc;
    char                body[512];
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    for (i = 0; i < 2; i++) {
        snprintf(body, sizeof(body), "{\"model\":\"base\",\"input\":"
                 "\"Hi\",\"tools\":[{\"type\":\"function\",\"name\":"
                 "\"g\"%s,\"parameters\":{\"type\":\"object\","
                 "\"properties\":{\"a\":{\"type\":\"string\","
                 "\"pattern\":\"(?=x)\"}}}}]}", i ? ",\"strict\":true" : "");
        memset(&err, 0, sizeof(err));
        rc = slora_openai_parse_responses(body, strlen(body), NULL, NULL,
                                          NULL, &req, &err);

        if (i == 0) {
            ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_AUTO
               && req.schema.data == NULL && req.schema_trigger.data == NULL,
               "auto, strict left out, parameters refused by the compiler: "
               "calls left free: %s", err.msg);

        } else {
            ok(rc == SLORA_ERROR && err.status == 400
               && strstr(err.msg, "lookahead is not supported") != NULL,
               "auto, strict true, parameters refused by the compiler: "
               "400: %s %s", err.param ? err.param : "(null)", err.msg);
        }

        slora_openai_req_free(&req);
    }
}


/* The Responses body resp and the chat body chat parse alike under lim
 * (NULL: the defaults). */
static void
check_same_as(const char *resp, const char *chat,
    const slora_openai_limits_t *lim, const char *what)
{
    int                 rc_a, rc_b;
    slora_openai_req_t  a, b;
    slora_openai_err_t  err_a, err_b;

    memset(&err_a, 0, sizeof(err_a));
    memset(&err_b, 0, sizeof(err_b));

    rc_a = slora_openai_parse_responses(resp, strlen(resp), lim,
                                        prev_lookup, NULL, &a, &err_a);
    rc_b = slora_openai_parse(chat, strlen(chat), SLORA_OPENAI_CHAT, lim,
                              &b, &err_b);

    ok(rc_a == SLORA_OK && rc_b == SLORA_OK && a.responses && !b.responses
       && same_req(&a, &b),
       "%s (%s / %s)", what, err_a.msg, err_b.msg);

    slora_openai_req_free(&a);
    slora_openai_req_free(&b);
}


static void
check_refused(const char *resp, const char *param, const char *code,
    const char *what)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    memset(&err, 0, sizeof(err));
    rc = slora_openai_parse_responses(resp, strlen(resp), NULL, NULL, NULL,
                                      &req, &err);

    ok(rc == SLORA_ERROR && err.status == 400 && err.param != NULL
       && strcmp(err.param, param) == 0 && err.code != NULL
       && strcmp(err.code, code) == 0 && err.len == strlen(err.msg)
       && err.len > 0 && strstr(err.msg, "messages") == NULL
       && strstr(err.msg, "max_tokens") == NULL
       && strstr(err.msg, "response_format") == NULL,
       "refused, %s: %s %s: %s", what, err.param ? err.param : "(null)",
       err.code ? err.code : "(null)", err.msg);

    slora_openai_req_free(&req);
}


static int
same_req(const slora_openai_req_t *a, const slora_openai_req_t *b)
{
    uint32_t  i;

    if (a->n_msgs != b->n_msgs) {
        diag("messages: %u against %u", a->n_msgs, b->n_msgs);
        return 0;
    }

    for (i = 0; i < a->n_msgs; i++) {
        if (a->msgs[i].role_len != b->msgs[i].role_len
            || a->msgs[i].content_len != b->msgs[i].content_len
            || memcmp(a->msgs[i].role, b->msgs[i].role,
                      a->msgs[i].role_len) != 0
            || memcmp(a->msgs[i].content, b->msgs[i].content,
                      a->msgs[i].content_len) != 0)
        {
            diag("message %u: %.*s: \"%.*s\" against %.*s: \"%.*s\"", i,
                 (int) a->msgs[i].role_len, a->msgs[i].role,
                 (int) a->msgs[i].content_len, a->msgs[i].content,
                 (int) b->msgs[i].role_len, b->msgs[i].role,
                 (int) b->msgs[i].content_len, b->msgs[i].content);
            return 0;
        }
    }

    return same_str(&a->model, &b->model)
           && a->max_tokens == b->max_tokens
           && a->temperature == b->temperature && a->top_p == b->top_p
           && a->top_k == b->top_k && a->seed == b->seed
           && a->has_seed == b->has_seed && a->stream == b->stream
           && a->json == b->json && same_str(&a->schema, &b->schema)
           && a->schema_form == b->schema_form
           && same_str(&a->schema_trigger, &b->schema_trigger)
           && a->tools == b->tools && same_str(&a->tool_name, &b->tool_name)
           && a->tool_one == b->tool_one && a->n == b->n
           && a->logprobs == b->logprobs
           && a->top_logprobs == b->top_logprobs;
}


static int
same_str(const slora_openai_str_t *a, const slora_openai_str_t *b)
{
    if (a->data == NULL || b->data == NULL) {
        return a->data == b->data;
    }

    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}


/* A lookup that stops the parse, counting its calls in *data. */
static int
stop_lookup(void *data, slora_openai_stored_e what, const char *id,
    size_t len, const char **conv, size_t *conv_len)
{
    (void) what;
    (void) id;
    (void) len;
    (void) conv;
    (void) conv_len;

    (*(int *) data)++;

    return SLORA_AGAIN;
}


/* The store the tests see: resp_a holds STORED, the conversation
 * conv_a KEPT. */
static int
prev_lookup(void *data, slora_openai_stored_e what, const char *id,
    size_t len, const char **conv, size_t *conv_len)
{
    (void) data;

    if (what == SLORA_OPENAI_CONVERSATION) {
        if (len != 6 || memcmp(id, "conv_a", 6) != 0) {
            return SLORA_DECLINED;
        }

        *conv = KEPT;
        *conv_len = sizeof(KEPT) - 1;

        return SLORA_OK;
    }

    if (len == 6 && memcmp(id, "resp_c", 6) == 0) {
        /* made in conv_a: its own turn after the worker's mark */
        *conv = "[{\"conversation\":\"conv_a\"},{\"role\":\"user\","
                "\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":"
                "\"Hello\"}]";
        *conv_len = strlen(*conv);
        return SLORA_OK;
    }

    if (len == 6 && memcmp(id, "resp_r", 6) == 0) {
        /* an answer cut inside its think block: reasoning, no text */
        *conv = "[{\"role\":\"user\",\"content\":\"Think.\"},"
                "{\"role\":\"assistant\",\"content\":null,"
                "\"reasoning_content\":\"Hmm\"}]";
        *conv_len = strlen(*conv);
        return SLORA_OK;
    }

    if (len == 9 && memcmp(id, "resp_busy", 9) == 0) {
        /* a background response being answered */
        return SLORA_BUSY;
    }

    if (len != 6 || memcmp(id, "resp_a", 6) != 0) {
        return SLORA_DECLINED;
    }

    *conv = STORED;
    *conv_len = sizeof(STORED) - 1;

    return SLORA_OK;
}
