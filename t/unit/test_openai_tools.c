/*
 * test_openai_tools.c: function calling in the request parser
 * (engine/slora_openai_tools.c).
 *
 *   (a) tool_choice: tools alone are "auto", "none" holds and reads no
 *       call, "required" and a named function give the schema of a call,
 *       each the exact compact text, which the automaton holds an answer
 *       to: a call of a listed function with arguments its parameters
 *       admit, and nothing else.
 *   (b) the chat the model sees: the tools in <tools> at the end of the
 *       system message (one made when there is none), each as tojson
 *       writes it, an assistant's tool_calls in <tool_call> tags after
 *       its content (arguments parsed and written the same way), tool
 *       messages in a row one user turn of <tool_response>s; numbers
 *       as json.loads read the client's text (2.0 stays 2.0).
 *   (c) a parameters schema's own $defs still reached where it now sits.
 *   (d) the tokenize endpoint's chat renders the tools the same way.
 *   (e) Llama 3.1's format: the tools as json.dumps(indent=4) before the
 *       first user text with its template's words, calls as the whole
 *       assistant message {"name", "parameters"}, one a message, results
 *       tool turns of their own; "required" one bare call, "auto" a lead
 *       trigger '{"name":'; rendered, the official template's text (as
 *       tools/chat-reference gave it).
 *   (f) a template's default system message begins a chat without one.
 *   (g) tool_choice "none" still tells the model of the tools, as vLLM
 *       does by default: the prompt "auto" gives, in Hermes', Llama 3.1's
 *       and Mistral's formats; the answer is held to no schema and read
 *       as no call (req->tools off, which the module reads), so a JSON
 *       response_format may shape it.
 *
 * Bad tools and tool_choice values are in test_openai.c's table.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#include "slora_openai.h"
#include "slora_json.h"
#include "slora_utf8.h"


#define WEATHER                                                            \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","       \
    "\"description\":\"Weather in a city\",\"parameters\":{\"type\":"      \
    "\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"           \
    "\"unit\":{\"enum\":[\"C\",\"F\"]}},\"required\":[\"city\"]}}}"
#define TIME                                                               \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}"
/* the two as json.dumps writes them (tojson, in the prompt) */
#define WEATHER_PY                                                         \
    "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", " \
    "\"description\": \"Weather in a city\", \"parameters\": {\"type\": "  \
    "\"object\", \"properties\": {\"city\": {\"type\": \"string\"}, "    \
    "\"unit\": {\"enum\": [\"C\", \"F\"]}}, \"required\": [\"city\"]}}}"
#define TIME_PY                                                            \
    "{\"type\": \"function\", \"function\": {\"name\": \"get_time\"}}"
#define USER  "{\"role\":\"user\",\"content\":\"Weather in Paris?\"}"
/* the schemas of a call of WEATHER and of TIME */
#define CALLS                                                              \
    "{\"type\":\"object\",\"properties\":{\"name\":"                       \
    "{\"const\":\"get_weather\"},\"arguments\":{\"type\":"                 \
    "\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"           \
    "\"unit\":{\"enum\":[\"C\",\"F\"]}},\"required\":[\"city\"]}},"        \
    "\"required\":[\"name\",\"arguments\"]},{\"type\":\"object\","         \
    "\"properties\":{\"name\":{\"const\":\"get_time\"},"                   \
    "\"arguments\":{\"type\":\"object\",\"properties\":{},"                \
    "\"additionalProperties\":false}},"                                    \
    "\"required\":[\"name\",\"arguments\"]}"


static int parse(const char *body, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int parse_tmpl(const char *body, slora_chat_e tmpl, int call_ids,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int parse_as(const char *body, slora_chat_e tmpl,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int takes(const slora_openai_str_t *schema, const char *doc);
static int takes_calls(const slora_openai_str_t *schema, int n);
static int str_is(const char *s, size_t len, const char *want);


static void
test_choice(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               WEATHER "]}", &req, &err);
    ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_AUTO
       && !req.tool_one
       && str_is(req.schema_trigger.data, req.schema_trigger.len,
                 "<tool_call>"),
       "tools without tool_choice: auto, a call held to the schema from "
       "\"<tool_call>\" on: %s", err.msg);
    ok(takes(&req.schema, "{\"name\": \"get_weather\", \"arguments\": "
             "{\"city\": \"Paris\"}}")
       && !takes(&req.schema, "{\"name\":\"get_time\",\"arguments\":{}}"),
       "that schema: a call of one of the tools");
    slora_openai_req_free(&req);

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               "{\"type\":\"function\",\"function\":{\"name\":\"f\","
               "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":"
               "{\"type\":\"string\",\"pattern\":\"(?=x)\"}}}}}]}", &req,
               &err);
    ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_AUTO
       && req.schema.data == NULL && req.schema_trigger.data == NULL,
       "auto with parameters the schema compiler refuses: calls left free, "
       "no error: %s", err.msg);
    slora_openai_req_free(&req);

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               WEATHER "],\"tool_choice\":\"none\"}", &req, &err);
    ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_OFF
       && req.schema.data == NULL && req.schema_trigger.data == NULL,
       "tool_choice none: no call held or read, no schema (%s)", err.msg);
    ok(rc == SLORA_OK && req.n_msgs == 2
       && strstr(req.msgs[0].content, "<tools>\n" WEATHER_PY "\n</tools>")
          != NULL,
       "tool_choice none: the model is still told of the tools");
    slora_openai_req_free(&req);

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],"
               "\"tool_choice\":\"auto\",\"parallel_tool_calls\":false}",
               &req, &err);
    ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_OFF
       && req.n_msgs == 1 && req.tool_one,
       "tool_choice auto without tools: plain text; parallel_tool_calls "
       "false kept");
    slora_openai_req_free(&req);

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               WEATHER "," TIME "],\"tool_choice\":{\"type\":\"function\","
               "\"function\":{\"name\":\"get_weather\"}}}", &req, &err);
    ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_NAMED
       && str_is(req.tool_name.data, req.tool_name.len, "get_weather"),
       "a named function: %s", err.msg);
    ok(str_is(req.schema.data, req.schema.len,
              "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":"
              "\"get_weather\"},\"arguments\":{\"type\":\"object\","
              "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":"
              "{\"enum\":[\"C\",\"F\"]}},\"required\":[\"city\"]}},"
              "\"required\":[\"name\",\"arguments\"]}"),
       "its schema: the name a const, the arguments its parameters");
    ok(takes(&req.schema, "{\"name\": \"get_weather\", \"arguments\": "
             "{\"city\": \"Paris\", \"unit\": \"C\"}}"),
       "which takes a call of it");
    ok(!takes(&req.schema, "{\"name\":\"get_time\",\"arguments\":{}}")
       && !takes(&req.schema, "{\"name\":\"get_weather\",\"arguments\":"
                 "{\"unit\":\"C\"}}")
       && !takes(&req.schema, "{\"arguments\":{\"city\":\"x\"},"
                 "\"name\":\"get_weather\"}"),
       "and not another function's, one without a required argument, "
       "or the name after the arguments");
    slora_openai_req_free(&req);

    /* parameters that say nothing of their value's type: a call's
     * arguments are still an object, which the answer is read as */
    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               "{\"type\":\"function\",\"function\":{\"name\":\"f\","
               "\"parameters\":{}}},{\"type\":\"function\",\"function\":"
               "{\"name\":\"g\",\"parameters\":{\"description\":\"x\"}}}],"
               "\"tool_choice\":\"required\"}", &req, &err);
    ok(rc == SLORA_OK
       && takes(&req.schema, "[{\"name\":\"f\",\"arguments\":{\"a\":1}},"
                "{\"name\":\"g\",\"arguments\":{}}]")
       && !takes(&req.schema, "[{\"name\":\"f\",\"arguments\":\"a\"}]")
       && !takes(&req.schema, "[{\"name\":\"f\",\"arguments\":[1]}]")
       && !takes(&req.schema, "[{\"name\":\"g\",\"arguments\":5}]"),
       "parameters {} or a description alone: arguments an object, not a "
       "string, a list or a number (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               WEATHER "," TIME "],\"tool_choice\":\"required\","
               "\"parallel_tool_calls\":false}", &req, &err);
    ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_REQUIRED
       && req.tool_one,
       "tool_choice required, parallel_tool_calls false: %s", err.msg);
    ok(str_is(req.schema.data, req.schema.len,
              "{\"anyOf\":[" CALLS "]}"),
       "its schema: an anyOf of each tool's call, no parameters an empty "
       "object");
    ok(takes(&req.schema, "{\"name\":\"get_time\",\"arguments\":{}}")
       && takes(&req.schema, "{\"name\":\"get_weather\",\"arguments\":"
                "{\"city\":\"Paris\"}}"),
       "which takes a call of either");
    ok(!takes(&req.schema, "{\"name\":\"get_time\",\"arguments\":"
              "{\"city\":\"Paris\"}}")
       && !takes(&req.schema, "{\"name\":\"get_date\",\"arguments\":{}}")
       && !takes(&req.schema, "{\"name\":\"get_weather\",\"arguments\":"
                 "{}}")
       && !takes(&req.schema, "[{\"name\":\"get_time\",\"arguments\":{}}]"),
       "and not arguments of the other, an unknown name, a missing "
       "argument, or a list");
    slora_openai_req_free(&req);

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               WEATHER "," TIME "],\"tool_choice\":\"required\"}", &req,
               &err);
    ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_REQUIRED
       && !req.tool_one,
       "tool_choice required (parallel calls by default): %s", err.msg);
    ok(str_is(req.schema.data, req.schema.len,
              "{\"type\":\"array\",\"minItems\":1,\"maxItems\":16,"
              "\"items\":{\"anyOf\":[" CALLS "]}}"),
       "its schema: a list of 1 to 16 calls, each of one of the tools");
    ok(takes(&req.schema, "[{\"name\":\"get_time\",\"arguments\":{}}]")
       && takes(&req.schema, " [ {\"name\":\"get_weather\",\"arguments\":"
                "{\"city\":\"Paris\"}} , {\"name\":\"get_time\","
                "\"arguments\":{}} ]"),
       "which takes one call, or two of different functions");
    ok(!takes(&req.schema, "[]")
       && !takes(&req.schema, "{\"name\":\"get_time\",\"arguments\":{}}")
       && !takes(&req.schema, "[{\"name\":\"get_time\",\"arguments\":"
                 "{\"city\":\"Paris\"}}]")
       && !takes(&req.schema, "[{\"name\":\"get_weather\",\"arguments\":"
                 "{}}]"),
       "and not an empty list, a bare call, or a list holding a call its "
       "function does not take");
    ok(takes_calls(&req.schema, 16) && !takes_calls(&req.schema, 17),
       "16 calls taken, 17 refused");
    ok(!takes(&req.schema, "[{\"name\":\"get_time\",\"arguments\":{},"
              "\"id\":\"abcDEF123\"}]"),
       "a call's \"id\" is Mistral's list's alone: refused here");
    slora_openai_req_free(&req);
    slora_openai_req_free(&req);
}


/* A call's schema the compiler refuses names the function at fault by
 * its place in tools, a named one as well. */
static void
test_blame(void)
{
    int                 rc, i;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  *choice[] = {
        "\"required\"",
        "{\"type\":\"function\",\"function\":{\"name\":\"g\"}}"
    };
    char  body[1024];

    for (i = 0; i < 2; i++) {
        snprintf(body, sizeof(body), "{\"model\":\"base\",\"messages\":["
                 USER "],\"tools\":[" TIME ",{\"type\":\"function\","
                 "\"function\":{\"name\":\"g\",\"parameters\":{\"type\":"
                 "\"object\",\"properties\":{\"a\":{\"type\":\"string\","
                 "\"pattern\":\"(?=x)\"}}}}}],\"tool_choice\":%s}",
                 choice[i]);
        rc = parse(body, &req, &err);
        ok(rc == SLORA_ERROR && err.status == 400
           && strstr(err.msg, "tools[1].function.parameters: pattern: "
                              "lookahead is not supported at byte 2 (at "
                              "#/properties/a)") != NULL,
           "%s: the function at fault named, the place inside its "
           "parameters: %s", i ? "named" : "required", err.msg);
        slora_openai_req_free(&req);
    }

    /* under "auto" such a function leaves calls free, but not where a
     * tool asks for "strict": true, which promises calls its parameters
     * admit: then it is refused as under "required" */
    for (i = 0; i < 3; i++) {
        static const char  *strict[] = { "", ",\"strict\":false",
                                         ",\"strict\":null" };

        snprintf(body, sizeof(body), "{\"model\":\"base\",\"messages\":["
                 USER "],\"tools\":[" TIME ",{\"type\":\"function\","
                 "\"function\":{\"name\":\"g\"%s,\"parameters\":{"
                 "\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
                 "\"string\",\"pattern\":\"(?=x)\"}}}}}]}", strict[i]);
        rc = parse(body, &req, &err);
        ok(rc == SLORA_OK && req.tools == SLORA_OPENAI_TOOLS_AUTO
           && req.schema.data == NULL && req.schema_trigger.data == NULL,
           "auto, strict \"%s\": calls left free: %s", strict[i], err.msg);
        slora_openai_req_free(&req);
    }

    for (i = 0; i < 2; i++) {
        /* the strict one is the refused one, or the other */
        snprintf(body, sizeof(body), "{\"model\":\"base\",\"messages\":["
                 USER "],\"tools\":[{\"type\":\"function\",\"function\":"
                 "{\"name\":\"get_time\"%s}},{\"type\":\"function\","
                 "\"function\":{\"name\":\"g\"%s,\"parameters\":{"
                 "\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
                 "\"string\",\"pattern\":\"(?=x)\"}}}}}]}",
                 i ? ",\"strict\":true" : "", i ? "" : ",\"strict\":true");
        rc = parse(body, &req, &err);
        ok(rc == SLORA_ERROR && err.status == 400
           && strstr(err.msg, "tools[1].function.parameters: pattern: "
                              "lookahead is not supported at byte 2 (at "
                              "#/properties/a)") != NULL,
           "auto with a strict tool (%s): the function at fault named: %s",
           i ? "another" : "the refused one", err.msg);
        slora_openai_req_free(&req);
    }

    /* a strict tool whose parameters can be held: held from the mark */
    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               "{\"type\":\"function\",\"function\":{\"name\":"
               "\"get_time\",\"strict\":true}}]}", &req, &err);
    ok(rc == SLORA_OK && req.schema.data != NULL
       && str_is(req.schema_trigger.data, req.schema_trigger.len,
                 "<tool_call>"),
       "auto, a strict tool the server can hold: held from \"<tool_call>\""
       " on: %s", err.msg);
    slora_openai_req_free(&req);

    /* a strict tool whose calls' schema, framed by the mark, passes the
     * server's bound: refused, where the same tool not strict leaves
     * calls free; the description's length is stepped over the bound */
    {
        int    fits, framed, over;
        char  *big;
        size_t n;

        fits = framed = over = 0;
        big = malloc(SLORA_JSON_SCHEMA_MAX + 1024);

        for (n = SLORA_JSON_SCHEMA_MAX - 256; big != NULL
             && n < SLORA_JSON_SCHEMA_MAX; n++)
        {
            snprintf(big, SLORA_JSON_SCHEMA_MAX + 1024,
                     "{\"model\":\"base\",\"messages\":[" USER "],"
                     "\"tools\":[{\"type\":\"function\",\"function\":"
                     "{\"name\":\"get_time\",\"strict\":true,"
                     "\"parameters\":{\"type\":\"object\","
                     "\"description\":\"%0*d\"}}}]}", (int) n, 0);
            rc = parse(big, &req, &err);

            if (rc == SLORA_OK && req.schema.data != NULL) {
                fits += framed == 0 && over == 0;

            } else if (rc == SLORA_ERROR && err.status == 400
                       && strstr(err.msg, "with their call's frame; this "
                                 "server holds \"strict\" calls to at "
                                 "most 16384") != NULL)
            {
                framed += over == 0;

            } else if (rc == SLORA_ERROR && err.status == 400) {
                over++;
            }

            slora_openai_req_free(&req);
        }

        free(big);
        ok(fits > 0 && framed == (int) strlen("<tool_call>") && over > 0,
           "a strict tool's schema: held (%d lengths), then refused for "
           "the mark's %d bytes (%d), then too long itself (%d)", fits,
           (int) strlen("<tool_call>"), framed, over);
    }

    /* strict: a boolean (or null) */
    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               "{\"type\":\"function\",\"function\":{\"name\":"
               "\"get_time\",\"strict\":\"yes\"}}]}", &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strcmp(err.code, "invalid_type") == 0
       && strcmp(err.msg, "tools[0].function.strict must be a boolean") == 0,
       "strict \"yes\": 400 invalid_type: %s", err.msg);
    slora_openai_req_free(&req);
}


static void
test_chat(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               TIME "]}", &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 2
       && str_is(req.msgs[0].role, req.msgs[0].role_len, "system"),
       "no system message: one is made for the tools");
    ok(str_is(req.msgs[0].content, req.msgs[0].content_len,
              "# Tools\n\nYou may call one or more functions to assist with "
              "the user query.\n\nYou are provided with function signatures "
              "within <tools></tools> XML tags:\n<tools>\n" TIME_PY
              "\n</tools>\n\nFor each function call, return a json object "
              "with function name and arguments within "
              "<tool_call></tool_call> XML tags:\n<tool_call>\n"
              "{\"name\": <function-name>, \"arguments\": "
              "<args-json-object>}\n</tool_call>"),
       "it tells of the tools, Hermes' words");
    ok(str_is(req.msgs[1].content, req.msgs[1].content_len,
              "Weather in Paris?"), "the user's message follows");
    slora_openai_req_free(&req);

    /* vLLM's tokenize of a chat with tools counts what the model sees */
    {
        static const char  body[] = "{\"messages\":[" USER "],\"tools\":["
                                    TIME "]}";

        rc = slora_openai_parse_tokenize(body, strlen(body), NULL,
                                         &req, &err);
        ok(rc == SLORA_OK && req.n_msgs == 2
           && strstr(req.msgs[0].content, "<tools>\n" TIME_PY "\n</tools>")
              != NULL,
           "tokenize renders the tools as the chat request does: %s",
           err.msg);
        slora_openai_req_free(&req);
    }

    rc = parse("{\"model\":\"base\",\"messages\":["
               "{\"role\":\"system\",\"content\":\"Be brief.\"}," USER ","
               "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
               "{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
               "{\"name\":\"get_weather\",\"arguments\":"
               "\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
               "{\"id\":\"call_2\",\"type\":\"function\",\"function\":"
               "{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
               "{\"role\":\"tool\",\"tool_call_id\":\"call_1\","
               "\"content\":\"sunny\"},"
               "{\"role\":\"tool\",\"tool_call_id\":\"call_2\","
               "\"content\":[{\"type\":\"text\",\"text\":\"noon\"}]},"
               "{\"role\":\"user\",\"content\":\"And tomorrow?\"}],"
               "\"tools\":[" WEATHER "," TIME "]}", &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 5, "a conversation with calls and "
       "results: 5 turns (%s)", err.msg);

    if (rc == SLORA_OK && req.n_msgs == 5) {
        ok(strncmp(req.msgs[0].content, "Be brief.\n\n# Tools\n", 19) == 0
           && strstr(req.msgs[0].content, "<tools>\n" WEATHER_PY "\n"
                     TIME_PY "\n</tools>") != NULL,
           "the system message, then the tools, one a line");
        ok(str_is(req.msgs[2].role, req.msgs[2].role_len, "assistant")
           && str_is(req.msgs[2].content, req.msgs[2].content_len,
                     "<tool_call>\n{\"name\": \"get_weather\", "
                     "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
                     "<tool_call>\n{\"name\": \"get_time\", \"arguments\": "
                     "{}}\n</tool_call>"),
           "the assistant's calls in tags, empty arguments as {}");
        ok(str_is(req.msgs[3].role, req.msgs[3].role_len, "user")
           && str_is(req.msgs[3].content, req.msgs[3].content_len,
                     "<tool_response>\nsunny\n</tool_response>\n"
                     "<tool_response>\nnoon\n</tool_response>"),
           "the two results one user turn");
        ok(str_is(req.msgs[4].content, req.msgs[4].content_len,
                  "And tomorrow?"), "then the user's next message");
    }

    slora_openai_req_free(&req);

    /* a run of 5000 results: one turn, in memory of the order of its
     * size (each result joined by a copy of the run took 5000 copies,
     * some 440 MB) */
    {
        char    *body, *p;
        size_t   i, n, want;

        n = 5000;
        body = malloc(64 + n * 32);
        p = body + sprintf(body, "{\"model\":\"base\",\"messages\":["
                           USER);

        for (i = 0; i < n; i++) {
            p += sprintf(p, ",{\"role\":\"tool\",\"content\":\"r\"}");
        }

        sprintf(p, "]}");
        rc = parse(body, &req, &err);
        want = n * (16 + 1 + 17) + (n - 1);
        ok(rc == SLORA_OK && req.n_msgs == 2
           && req.msgs[1].content_len == want
           && strlen(req.msgs[1].content) == want
           && strncmp(req.msgs[1].content + want - 35,
                      "\n<tool_response>\nr\n</tool_response>", 35) == 0,
           "5000 results in a row: one turn of %zu bytes", want);
        ok(slora_openai_req_bytes(&req) < 16 * want + (1 << 20),
           "parsed in %zu bytes of the request's memory",
           slora_openai_req_bytes(&req));
        slora_openai_req_free(&req);
        free(body);
    }

    /* an assistant's text before its call */
    rc = parse("{\"model\":\"base\",\"messages\":[" USER ","
               "{\"role\":\"assistant\",\"content\":\"Let me see.\","
               "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
               "\"function\":{\"name\":\"get_time\",\"arguments\":"
               "{\"tz\":\"UTC\"}}}]}]}", &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 2
       && str_is(req.msgs[1].content, req.msgs[1].content_len,
                 "Let me see.\n<tool_call>\n{\"name\": \"get_time\", "
                 "\"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>"),
       "content, then the call (arguments given as an object)");
    slora_openai_req_free(&req);

    /* numbers as json.loads reads the client's text: 2.0 a float, an
     * int past 2^53 exact, 1e16 a float, in arguments given as a string
     * and as an object */
    rc = parse("{\"model\":\"base\",\"messages\":[" USER ","
               "{\"role\":\"assistant\",\"content\":null,"
               "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
               "\"function\":{\"name\":\"f\",\"arguments\":"
               "\"{\\\"t\\\": 2.0, \\\"id\\\": 9007199254740993}\"}},"
               "{\"id\":\"d\",\"type\":\"function\",\"function\":"
               "{\"name\":\"g\",\"arguments\":{\"x\":1e16,\"y\":-0.0,"
               "\"z\":3}}}]}]}", &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 2
       && str_is(req.msgs[1].content, req.msgs[1].content_len,
                 "<tool_call>\n{\"name\": \"f\", \"arguments\": "
                 "{\"t\": 2.0, \"id\": 9007199254740993}}\n</tool_call>\n"
                 "<tool_call>\n{\"name\": \"g\", \"arguments\": "
                 "{\"x\": 1e+16, \"y\": -0.0, \"z\": 3}}\n</tool_call>"),
       "arguments' numbers as json.dumps(json.loads()) writes them: 2.0, "
       "9007199254740993, 1e+16, -0.0 (%s)", err.msg);
    slora_openai_req_free(&req);
}


static void
test_llama3(void)
{
    int                 rc;
    char                buf[4096];
    size_t              n;
    slora_err_t         e;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    /* tools/chat-reference on Llama-3.1-8B-Instruct's template */
    static const char  want[] =
        "<|start_header_id|>system<|end_header_id|>\n\nEnvironment: "
        "ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 "
        "Jul 2024\n\nBe brief.<|eot_id|><|start_header_id|>user"
        "<|end_header_id|>\n\nGiven the following functions, please "
        "respond with a JSON for a function call with its proper arguments "
        "that best answers the given prompt.\n\nRespond in the format "
        "{\"name\": function name, \"parameters\": dictionary of argument "
        "name and its value}.Do not use variables.\n\n{\n    \"type\": "
        "\"function\",\n    \"function\": {\n        \"name\": "
        "\"get_weather\",\n        \"description\": \"Weather in a "
        "city\",\n        \"parameters\": {\n            \"type\": "
        "\"object\",\n            \"properties\": {\n                "
        "\"city\": {\n                    \"type\": \"string\"\n        "
        "        },\n                \"unit\": {\n                    "
        "\"enum\": [\n                        \"C\",\n                  "
        "      \"F\"\n                    ]\n                }\n         "
        "   },\n            \"required\": [\n                \"city\"\n "
        "           ]\n        }\n    }\n}\n\n{\n    \"type\": "
        "\"function\",\n    \"function\": {\n        \"name\": "
        "\"get_time\"\n    }\n}\n\nWeather in Paris?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": "
        "\"get_weather\", \"parameters\": {\"city\": \"Paris\", \"n\": "
        "[1, 2.5, -0.001, true, null]}}<|eot_id|><|start_header_id|>ipython"
        "<|end_header_id|>\n\n\"sunny\"<|eot_id|><|start_header_id|>"
        "ipython<|end_header_id|>\n\n\"noon\"<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAnd tomorrow?"
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

    rc = parse_as("{\"model\":\"base\",\"messages\":["
                  "{\"role\":\"system\",\"content\":\"Be brief.\"}," USER ","
                  "{\"role\":\"assistant\",\"content\":\"Let me see.\","
                  "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                  "\"function\":{\"name\":\"get_weather\",\"arguments\":"
                  "\"{\\\"city\\\":\\\"Paris\\\",\\\"n\\\":"
                  "[1,2.5,-1e-3,true,null]}\"}}]},"
                  "{\"role\":\"tool\",\"tool_call_id\":\"call_1\","
                  "\"content\":\"sunny\"},"
                  "{\"role\":\"tool\",\"tool_call_id\":\"call_1\","
                  "\"content\":\"noon\"},"
                  "{\"role\":\"user\",\"content\":\"And tomorrow?\"}],"
                  "\"tools\":[" WEATHER "," TIME "]}", SLORA_CHAT_LLAMA31,
                  &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 6
       && (req.chat_flags & SLORA_CHAT_TOOLS),
       "llama3.1: a conversation with a call and two results: 6 turns, "
       "the tools flag (%s)", err.msg);
    rc = rc == SLORA_OK
         ? slora_chat_render(SLORA_CHAT_LLAMA31, req.msgs, (int) req.n_msgs,
                             req.chat_flags, buf, sizeof(buf), &n, NULL, &e)
         : SLORA_ERROR;
    is_str(rc == SLORA_OK ? buf : "", want, "llama3.1: rendered, the "
           "official template's text: the tools before the first user "
           "text, the call as the assistant's message (its text dropped, "
           "the arguments as json.dumps writes them), each result an "
           "ipython turn");
    ok(req.tools == SLORA_OPENAI_TOOLS_AUTO
       && str_is(req.schema_trigger.data, req.schema_trigger.len,
                 "{\"name\":") && req.trigger_lead
       && takes(&req.schema, "{\"name\":\"get_weather\",\"parameters\":"
                "{\"city\":\"Rome\"}}")
       && !takes(&req.schema, "{\"name\":\"get_weather\",\"arguments\":"
                 "{\"city\":\"Rome\"}}"),
       "llama3.1 auto: a lead trigger '{\"name\":', the schema a call "
       "with \"parameters\"");
    slora_openai_req_free(&req);

    rc = parse_as("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
                  WEATHER "," TIME "],\"tool_choice\":\"required\"}",
                  SLORA_CHAT_LLAMA31, &req, &err);
    ok(rc == SLORA_OK && req.tool_one && req.schema_trigger.data == NULL
       && takes(&req.schema, "{\"name\":\"get_time\",\"parameters\":{}}")
       && !takes_calls(&req.schema, 1),
       "llama3.1 required: one bare call, not a list (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = parse_as("{\"model\":\"base\",\"messages\":[" USER ","
                  "{\"role\":\"assistant\",\"tool_calls\":["
                  "{\"id\":\"a\",\"type\":\"function\",\"function\":"
                  "{\"name\":\"get_time\",\"arguments\":\"{}\"}},"
                  "{\"id\":\"b\",\"type\":\"function\",\"function\":"
                  "{\"name\":\"get_time\",\"arguments\":\"{}\"}}]}],"
                  "\"tools\":[" TIME "]}", SLORA_CHAT_LLAMA31, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strstr(err.msg, "one a message") != NULL,
       "llama3.1: two calls in one message is a 400 (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = parse_as("{\"model\":\"base\",\"messages\":[" USER ","
                  "{\"role\":\"assistant\",\"tool_calls\":["
                  "{\"id\":\"a\",\"type\":\"function\",\"function\":"
                  "{\"name\":\"get_time\",\"arguments\":\"{no\"}}]}],"
                  "\"tools\":[" TIME "]}", SLORA_CHAT_LLAMA31, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strstr(err.msg, "not JSON") != NULL,
       "llama3.1: a call's arguments that are not JSON: 400 (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = parse_as("{\"model\":\"base\",\"messages\":[{\"role\":"
                  "\"system\",\"content\":\"x\"}],\"tools\":[" TIME "]}",
                  SLORA_CHAT_LLAMA31, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strstr(err.msg, "first user message") != NULL,
       "llama3.1: tools with no user message to go into: 400 (%s)",
       err.msg);
    slora_openai_req_free(&req);

    /* the tokenize endpoint renders them the same way */
    {
        static const char  body[] = "{\"messages\":[" USER "],\"tools\":["
                                    TIME "]}";

        slora_openai_limits_t  lim;

        lim = slora_openai_default_limits;
        lim.chat = SLORA_CHAT_LLAMA32;
        rc = slora_openai_parse_tokenize(body, strlen(body), &lim, &req,
                                         &err);
        ok(rc == SLORA_OK && req.n_msgs == 1 && req.msgs[0].verbatim
           && strncmp(req.msgs[0].content, "Given the following", 19) == 0
           && (req.chat_flags & SLORA_CHAT_TOOLS),
           "tokenize with llama3.2: the tools in the user message (%s)",
           err.msg);
        slora_openai_req_free(&req);
    }
}


/* (f) a template's default system message: a chat without a system
 * message begins with it (before the tools' block, as Qwen2.5's
 * template writes them), one with its own keeps that */
static void
test_default_system(void)
{
    int                    rc;
    slora_openai_req_t     req;
    slora_openai_err_t     err;
    slora_openai_limits_t  lim;

    static const char  plain[] = "{\"model\":\"base\",\"messages\":["
                                 USER "]}";
    static const char  tools[] = "{\"model\":\"base\",\"messages\":["
                                 USER "],\"tools\":[" TIME "]}";
    static const char  own[] = "{\"model\":\"base\",\"messages\":["
                               "{\"role\":\"system\",\"content\":"
                               "\"Terse.\"}," USER "]}";

    lim = slora_openai_default_limits;
    lim.system = "You are Qwen.";
    memset(&err, 0, sizeof(err));

    rc = slora_openai_parse(plain, strlen(plain), SLORA_OPENAI_CHAT, &lim,
                            &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 2
       && str_is(req.msgs[0].role, req.msgs[0].role_len, "system")
       && str_is(req.msgs[0].content, req.msgs[0].content_len,
                 "You are Qwen."),
       "no system message: the template's default first (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse(tools, strlen(tools), SLORA_OPENAI_CHAT, &lim,
                            &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 2
       && strncmp(req.msgs[0].content, "You are Qwen.\n\n# Tools\n", 23)
          == 0, "with tools: the default, then the tools (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = slora_openai_parse(own, strlen(own), SLORA_OPENAI_CHAT, &lim, &req,
                            &err);
    ok(rc == SLORA_OK && req.n_msgs == 2
       && str_is(req.msgs[0].content, req.msgs[0].content_len, "Terse."),
       "a system message of its own: kept, no default");
    slora_openai_req_free(&req);

    rc = parse("{\"model\":\"base\",\"messages\":[" USER ","
               "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\","
               "\"type\":\"function\",\"function\":{\"name\":"
               "\"get_time\",\"arguments\":\"{no\"}}]}]}", &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strstr(err.msg, "not JSON") != NULL,
       "a call's arguments that are not JSON: 400 (%s)", err.msg);
    slora_openai_req_free(&req);
}


static void
test_refs(void)
{
    int                 rc;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  body[] =
        "{\"model\":\"base\",\"messages\":[" USER "],\"tools\":[" TIME ","
        "{\"type\":\"function\",\"function\":{\"name\":\"move\","
        "\"parameters\":{\"$defs\":{\"Point\":{\"type\":\"object\","
        "\"properties\":{\"x\":{\"type\":\"integer\"}},"
        "\"required\":[\"x\"]}},\"type\":\"object\",\"properties\":{"
        "\"to\":{\"$ref\":\"#/$defs/Point\"},"
        "\"tag\":{\"const\":{\"$ref\":\"#/x\"}}},"
        "\"required\":[\"to\"]}}}],\"tool_choice\":\"required\"}";

    rc = parse(body, &req, &err);
    ok(rc == SLORA_OK, "a parameters schema with $defs: %s", err.msg);
    ok(rc == SLORA_OK
       && strstr(req.schema.data, "\"$ref\":\"#/items/anyOf/1/"
                 "properties/arguments/$defs/Point\"") != NULL
       && strstr(req.schema.data, "\"const\":{\"$ref\":\"#/x\"}") != NULL,
       "its $ref moved to where it sits (in the list's items), a "
       "const's text left alone");
    ok(rc == SLORA_OK
       && takes(&req.schema, "[{\"name\":\"move\",\"arguments\":{\"to\":"
                "{\"x\":3}}}]")
       && !takes(&req.schema, "[{\"name\":\"move\",\"arguments\":"
                 "{\"to\":{\"y\":3}}}]"),
       "and the referenced definition holds the arguments");
    slora_openai_req_free(&req);

    /* properties named as keywords whose values are not schemas: their
     * schemas' $refs move too */
    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               "{\"type\":\"function\",\"function\":{\"name\":\"set\","
               "\"parameters\":{\"$defs\":{\"N\":{\"type\":\"integer\"}},"
               "\"type\":\"object\",\"properties\":{"
               "\"default\":{\"$ref\":\"#/$defs/N\"}}}}}],"
               "\"tool_choice\":\"required\"}", &req, &err);
    ok(rc == SLORA_OK
       && takes(&req.schema, "[{\"name\":\"set\",\"arguments\":"
                "{\"default\":3}}]"),
       "a parameter named default, a $ref to the parameters' $defs: %s",
       rc == SLORA_OK ? "taken" : err.msg);
    slora_openai_req_free(&req);

    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               "{\"type\":\"function\",\"function\":{\"name\":\"set\","
               "\"parameters\":{\"type\":\"object\",\"properties\":{"
               "\"enum\":{\"$ref\":\"#\"}}}}}],"
               "\"tool_choice\":\"required\"}", &req, &err);
    ok(rc == SLORA_OK
       && takes(&req.schema, "[{\"name\":\"set\",\"arguments\":"
                "{\"enum\":{\"enum\":{}}}}]")
       && !takes(&req.schema, "[{\"name\":\"set\",\"arguments\":"
                 "{\"enum\":["),
       "a parameter named enum, a $ref to the parameters' root: the "
       "parameters again, not the list of calls");
    slora_openai_req_free(&req);
}


/*
 * tool_choice "none" against "auto": the same prompt, the tools in it, in
 * each format; only "auto" holds or reads calls.
 */
static void
test_none(void)
{
    int                 rc, k, c;
    char                body[1024], got[2][4096];
    size_t              n;
    slora_err_t         e;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const slora_chat_e  tmpls[] = {
        SLORA_CHAT_CHATML, SLORA_CHAT_LLAMA31, SLORA_CHAT_MISTRAL
    };
    static const char         *names[] = { "chatml", "llama3.1", "mistral" };
    static const char         *choices[] = { "auto", "none" };

    for (k = 0; k < 3; k++) {
        for (c = 0; c < 2; c++) {
            snprintf(body, sizeof(body), "{\"model\":\"base\","
                     "\"messages\":[{\"role\":\"system\",\"content\":"
                     "\"Be brief.\"}," USER "],\"tools\":[" WEATHER ","
                     TIME "],\"tool_choice\":\"%s\"}", choices[c]);

            rc = parse_as(body, tmpls[k], &req, &err);
            rc = rc == SLORA_OK
                 ? slora_chat_render(tmpls[k], req.msgs, (int) req.n_msgs,
                                     req.chat_flags, got[c], sizeof(got[c]),
                                     &n, NULL, &e)
                 : SLORA_ERROR;

            if (rc != SLORA_OK) {
                snprintf(got[c], sizeof(got[c]), "(refused: %s)", err.msg);
            }

            if (c == 1) {
                ok(req.tools == SLORA_OPENAI_TOOLS_OFF
                   && req.schema.data == NULL
                   && req.schema_trigger.data == NULL,
                   "%s, tool_choice none: no call held or read",
                   names[k]);
            }

            slora_openai_req_free(&req);
        }

        ok(strstr(got[1], "\"get_weather\"") != NULL
           && strstr(got[1], "\"get_time\"") != NULL
           && strstr(got[1], "Weather in a city") != NULL,
           "%s, tool_choice none: the tools in the prompt", names[k]);
        is_str(got[1], got[0], "%s, tool_choice none: the prompt auto "
               "gives", names[k]);
    }

    /* the answer not a call: a JSON response_format may shape it */
    rc = parse("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
               WEATHER "],\"tool_choice\":\"none\",\"response_format\":"
               "{\"type\":\"json_object\"}}", &req, &err);
    ok(rc == SLORA_OK && req.json && req.tools == SLORA_OPENAI_TOOLS_OFF
       && req.schema_trigger.data == NULL && req.n_msgs == 2,
       "tool_choice none with a JSON response_format: taken, the tools "
       "told (%s)", err.msg);
    slora_openai_req_free(&req);
}


/* A message quoting a client's text cuts it between characters:
 * slora_utf8_cut itself, and tool_choice naming a function not among
 * tools, of 'a' and 40 two-byte characters, which 64 bytes would end
 * inside the 32nd (shown '?' once the message is cleaned). */
static void
test_cut(void)
{
    int                 rc;
    char                body[512], want[128];
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  name[] =
        "a\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
        "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
        "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
        "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9";

    is_int(slora_utf8_cut("abc", 64), 3, "cut: a short text whole");
    is_int(slora_utf8_cut("abc", 2), 2, "cut: ASCII at the byte");
    is_int(slora_utf8_cut("a\u00e9", 2), 1, "cut: not inside a 2-byte "
           "character");
    is_int(slora_utf8_cut("a\u00e9", 3), 3, "cut: a 2-byte character "
           "whole");
    is_int(slora_utf8_cut("\u20ac\u20ac", 5), 3, "cut: not inside a "
           "3-byte character");
    is_int(slora_utf8_cut("\xf0\x9f\x98\x80", 3), 0, "cut: not inside a "
           "4-byte character");
    is_int(slora_utf8_cut("\xf0\x9f\x98\x80!", 4), 4, "cut: a 4-byte "
           "character whole");
    is_int(slora_utf8_cut("", 8), 0, "cut: an empty text");
    is_int(slora_utf8_cut("\u00e9", 0), 0, "cut: nothing of max 0");
    is_int((int) slora_utf8_whole("ab", 2), 2, "whole: ASCII whole");
    is_int((int) slora_utf8_whole("a\u20ac", 3), 1, "whole: a 3-byte "
           "character's first 2 bytes go");
    is_int((int) slora_utf8_whole("a\u20ac", 4), 4, "whole: a 3-byte "
           "character kept");
    is_int((int) slora_utf8_whole("\xf0\x9f\x98\x80", 3), 0, "whole: a "
           "4-byte character's first 3 bytes go");
    is_int((int) slora_utf8_whole("a\xc3", 2), 1, "whole: a lone lead "
           "byte goes");
    is_int((int) slora_utf8_whole("a\x80\x80", 3), 3, "whole: stray "
           "continuation bytes stay");
    is_int((int) slora_utf8_whole("", 0), 0, "whole: nothing");
    is_int(slora_utf8_cut("ab\xf0\x9f\x98\x80", 5), 2, "cut: not "
           "inside a 4-byte character at its last byte");
    is_int(slora_utf8_cut("a\x80\x80\x80\x80\x80" "b", 4), 4, "cut: stray "
           "continuation bytes, more than a character's: at the byte");
    is_int(slora_utf8_cut("\x80\x80", 1), 1, "cut: stray continuation "
           "bytes at the start: at the byte");
    is_int(slora_utf8_cut("a\xc3", 8), 2, "cut: a lead byte at the NUL: "
           "no further");
    is_int(slora_utf8_cut("ab\xe2\x82", 3), 2, "cut: not inside a "
           "3-byte sequence with none of its end");

    snprintf(body, sizeof(body), "{\"model\":\"base\",\"messages\":["
             USER "],\"tools\":[" TIME "],\"tool_choice\":{\"type\":"
             "\"function\",\"function\":{\"name\":\"%s\"}}}", name);
    snprintf(want, sizeof(want), "\"%.63s\", which is not among tools",
             name);

    rc = parse(body, &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && slora_utf8_text_valid(err.msg, err.len)
       && strchr(err.msg, '?') == NULL && strstr(err.msg, want) != NULL,
       "a function's name cut between characters: 'a' and 31 of them, "
       "no '?' (%s)", err.msg);
    slora_openai_req_free(&req);
}


/* Mistral's formats: v0.3's list (the text tools/chat-reference renders
 * with Mistral-7B-Instruct-v0.3's template, the ids the last 9
 * characters of OpenAI's), and what "auto" holds in each. */
static void
test_mistral(void)
{
    int                 rc;
    char                buf[4096];
    size_t              n;
    slora_err_t         e;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    static const char  chat[] =
        "{\"model\":\"base\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"}," USER ","
        "{\"role\":\"assistant\",\"content\":\"Let me see.\",\"tool_calls\":["
        "{\"id\":\"call_abcdefghi\",\"type\":\"function\",\"function\":"
        "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
        "\\\"Paris\\\"}\"}},{\"id\":\"jklmnopqr\",\"type\":\"function\","
        "\"function\":{\"arguments\":\"\",\"name\":\"get_time\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_abcdefghi\","
        "\"content\":\"sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"jklmnopqr\","
        "\"content\":\"noon\"},"
        "{\"role\":\"assistant\",\"content\":\"  Sunny, at noon. \"},"
        "{\"role\":\"user\",\"content\":\"And tomorrow?\"}],"
        "\"tools\":[" WEATHER "," TIME "]}";
    static const char  want[] =
        "[INST] Weather in Paris?[/INST][TOOL_CALLS] [{\"name\": "
        "\"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": "
        "\"abcdefghi\"}, {\"arguments\": {}, \"name\": \"get_time\", "
        "\"id\": \"jklmnopqr\"}]</s>[TOOL_RESULTS] {\"content\": sunny, "
        "\"call_id\": \"abcdefghi\"}[/TOOL_RESULTS][TOOL_RESULTS] "
        "{\"content\": noon, \"call_id\": \"jklmnopqr\"}[/TOOL_RESULTS] "
        "Sunny, at noon.</s>[AVAILABLE_TOOLS] [{\"type\": \"function\", "
        "\"function\": {\"name\": \"get_weather\", \"description\": "
        "\"Weather in a city\", \"parameters\": {\"type\": \"object\", "
        "\"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": "
        "{\"enum\": [\"C\", \"F\"]}}, \"required\": [\"city\"]}}}, "
        "{\"type\": \"function\", \"function\": {\"name\": \"get_time\"}}]"
        "[/AVAILABLE_TOOLS][INST] Be brief.\n\nAnd tomorrow?[/INST]";

    rc = parse_as(chat, SLORA_CHAT_MISTRAL, &req, &err);
    rc = rc == SLORA_OK
         ? slora_chat_render(SLORA_CHAT_MISTRAL, req.msgs, (int) req.n_msgs,
                             req.chat_flags, buf, sizeof(buf), &n, NULL, &e)
         : SLORA_ERROR;
    is_str(rc == SLORA_OK ? buf : err.msg, want, "mistral v0.3: the "
           "official template's text: the calls a list after [TOOL_CALLS] "
           "(their text dropped, the function's keys in their order), ids "
           "the last 9 characters, each result with its call's id, the "
           "tools before the last user message, the system text in it");
    ok(req.tools == SLORA_OPENAI_TOOLS_AUTO
       && str_is(req.schema_trigger.data, req.schema_trigger.len,
                 "[TOOL_CALLS]") && !req.trigger_lead
       && takes_calls(&req.schema, 2)
       && !takes(&req.schema, "{\"name\":\"get_time\",\"arguments\":{}}"),
       "mistral v0.3 auto: the schema, a list of calls, holds from "
       "[TOOL_CALLS] on");
    ok(takes(&req.schema, "[{\"name\":\"get_time\",\"arguments\":{},"
             "\"id\":\"abcDEF123\"},{\"name\":\"get_time\","
             "\"arguments\":{}}]")
       && !takes(&req.schema, "[{\"name\":\"get_time\",\"arguments\":{},"
                 "\"id\":\"abcDEF12\"}]")
       && !takes(&req.schema, "[{\"name\":\"get_time\",\"arguments\":{},"
                 "\"id\":\"abc-EF123\"}]")
       && !takes(&req.schema, "[{\"name\":\"get_time\",\"id\":"
                 "\"abcDEF123\",\"arguments\":{}}]"),
       "mistral v0.3: a call may close with the id its template writes "
       "there, 9 letters or digits, after the arguments only");
    slora_openai_req_free(&req);

    rc = parse_tmpl("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
                    WEATHER "," TIME "]}", SLORA_CHAT_MISTRAL_V7, 1, &req,
                    &err);
    ok(rc == SLORA_OK && req.tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_IDS
       && req.schema.data == NULL && req.schema_trigger.data == NULL
       && !(req.chat_flags & SLORA_CHAT_TOOLS_FIRST),
       "mistral v7 with call ids (Small 3.2's) auto: calls go free, the "
       "tools before the last user message (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = parse_tmpl("{\"model\":\"base\",\"messages\":[" USER "],\"tools\":["
                    WEATHER "," TIME "],\"tool_choice\":\"required\"}",
                    SLORA_CHAT_MISTRAL_V7, 0, &req, &err);
    ok(rc == SLORA_OK && req.tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS
       && takes_calls(&req.schema, 1) && req.schema_trigger.data == NULL
       && (req.chat_flags & SLORA_CHAT_TOOLS_FIRST),
       "mistral v7 without ids (Devstral's, Ministral 3's) required: a "
       "list of calls from the answer's start, the tools after the system "
       "prompt (%s)", err.msg);
    slora_openai_req_free(&req);

    rc = parse_as("{\"model\":\"base\",\"messages\":[" USER ","
                  "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\","
                  "\"type\":\"function\",\"function\":{\"name\":\"get_time\","
                  "\"arguments\":\"{}\"}}]}]}", SLORA_CHAT_MISTRAL_TEKKEN,
                  &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strstr(err.msg, "messages[1].tool_calls[].id") != NULL
       && strstr(err.msg, "at least 9 characters") != NULL,
       "mistral: a call id under 9 characters is a 400 (%s)", err.msg);
    slora_openai_req_free(&req);

    /* "call_" and 9 two-byte characters: 23 bytes; the last 9 bytes
     * would begin inside a character */
    rc = parse_as("{\"model\":\"base\",\"messages\":[" USER ","
                  "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
                  "\"call_\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                  "\u00e9\u00e0\",\"type\":\"function\",\"function\":"
                  "{\"name\":\"get_time\",\"arguments\":\"{}\"}}]}]}",
                  SLORA_CHAT_MISTRAL_TEKKEN, &req, &err);
    ok(rc == SLORA_OK && req.n_msgs == 2
       && slora_utf8_text_valid(req.msgs[1].content,
                                  req.msgs[1].content_len)
       && strstr(req.msgs[1].content,
                 "\"id\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa0\"") != NULL,
       "mistral: a call id's last 9 characters are characters, not bytes: "
       "no UTF-8 cut in two (%s)", rc == SLORA_OK ? "taken" : err.msg);
    slora_openai_req_free(&req);

    /* 5 characters of 2 bytes: 10 bytes, still too short */
    rc = parse_as("{\"model\":\"base\",\"messages\":[" USER ","
                  "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
                  "\"\u00e9\u00e9\u00e9\u00e9\u00e9\",\"type\":"
                  "\"function\",\"function\":{\"name\":\"get_time\","
                  "\"arguments\":\"{}\"}}]}]}", SLORA_CHAT_MISTRAL_TEKKEN,
                  &req, &err);
    ok(rc == SLORA_ERROR && err.status == 400
       && strstr(err.msg, "at least 9 characters") != NULL,
       "mistral: a call id of 5 characters in 10 bytes is a 400 (%s)",
       rc == SLORA_OK ? "taken" : err.msg);
    slora_openai_req_free(&req);
}


int
main(void)
{
    test_choice();
    test_blame();
    test_chat();
    test_llama3();
    test_mistral();
    test_none();
    test_default_system();
    test_refs();
    test_cut();

    return done_testing();
}


static int
parse(const char *body, slora_openai_req_t *req, slora_openai_err_t *err)
{
    return parse_as(body, SLORA_CHAT_CHATML, req, err);
}


/* A chat to be rendered with template tmpl. */
static int
parse_as(const char *body, slora_chat_e tmpl, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    return parse_tmpl(body, tmpl, 1, req, err);
}


/* The same, call_ids saying whether a mistral-v7-tekken template writes
 * them (Small 3.2's) or not (Devstral's, Ministral 3's). */
static int
parse_tmpl(const char *body, slora_chat_e tmpl, int call_ids,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    slora_openai_limits_t  lim;

    memset(err, 0, sizeof(slora_openai_err_t));
    lim = slora_openai_default_limits;
    lim.chat = tmpl;
    lim.call_ids = call_ids;

    return slora_openai_parse(body, strlen(body), SLORA_OPENAI_CHAT, &lim,
                              req, err);
}


/* 1 when doc is whole under the schema. */
static int
takes(const slora_openai_str_t *schema, const char *doc)
{
    int                   whole;
    slora_err_t           err;
    slora_json_t          j;
    slora_json_schema_t  *s;

    if (schema->data == NULL) {
        return 0;
    }

    s = slora_json_schema_parse(schema->data, schema->len, &err);
    if (s == NULL) {
        diag("schema: %s", err.msg);
        return 0;
    }

    slora_json_init(&j, s);
    whole = slora_json_feed(&j, doc, strlen(doc)) && slora_json_done(&j);
    slora_json_schema_free(s);

    return whole;
}


/* Whether schema takes a list of n calls of get_time. */
static int
takes_calls(const slora_openai_str_t *schema, int n)
{
    int    k;
    char  *p, doc[64 * 40];

    p = doc;
    *p++ = '[';

    for (k = 0; k < n; k++) {
        p += sprintf(p, "%s{\"name\":\"get_time\",\"arguments\":{}}",
                     k > 0 ? "," : "");
    }

    strcpy(p, "]");

    return takes(schema, doc);
}


static int
str_is(const char *s, size_t len, const char *want)
{
    if (s == NULL || len != strlen(want) || memcmp(s, want, len) != 0) {
        diag("got:  %.*s", (int) len, s ? s : "(null)");
        diag("want: %s", want);
        return 0;
    }

    return 1;
}
