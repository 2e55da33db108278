/*
 * test_openai_guided.c: guided decoding in the request parser
 * (engine/slora_openai_guided.c), in both of vLLM's spellings: guided_json
 * (a schema, or its text), guided_choice, guided_regex and
 * guided_grammar, and the structured_outputs object of one json, regex,
 * choice, grammar or json_object with its options (disable_any_whitespace
 * making JSON compact, disable_additional_properties and disable_fallback
 * taken), each kept as the schema's compact text of its form; and each
 * kind of bad input with the status, code and param a client sees: the
 * wrong types, none or two constraints, a field structured_outputs
 * lacks, what this server refuses (a left-recursive grammar, a
 * structural tag's format other than tags of JSON schemas, its
 * at_least_one, a whitespace pattern), structural tags in both shapes
 * and what is wrong in them, and each beside another, a JSON
 * response_format or tools; under the limits' compile_later, the
 * constraint kept uncompiled, refused only by a parse that compiles;
 * one the limits' schema_known knows, not compiled at all.
 * Every request is freed, failed ones too, so the ASan build finds a
 * leak.
 */

#include "tap.h"

#include "slora_json.h"
#include "slora_openai.h"
#include "openai_eq.h"


#define MSGS  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"


static const bad_case_t  bad_cases[] = {
    { "chat: guided_json beside response_format json_object", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_object\"},\"guided_json\":{\"type\":\"object\"}}",
      400, "invalid_value", "guided_json" },
    { "completions: guided_json text that is not a schema", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"guided_json\":\"[1]\"}",
      400, "invalid_type", "guided_json" },
    { "completions: guided_json text with a NUL in a string", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"guided_json\":"
      "\"{\\\"properties\\\":{\\\"a\\\\u0000b\\\":{}}}\"}",
      400, "invalid_value", "guided_json" },
    { "chat: a tool call's arguments with a NUL in a string", CHAT,
      "{\"model\":\"base\",\"messages\":[{\"role\":\"assistant\","
      "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
      "\"function\":{\"name\":\"f\",\"arguments\":"
      "\"{\\\"a\\\":\\\"x\\\\u0000y\\\"}\"}}]}]}",
      400, "invalid_value", "messages" },
    { "completions: guided_json the server cannot enforce", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"guided_json\":"
      "{\"type\":\"object\",\"properties\":{\"a\":{\"not\":{}}}}}",
      400, "invalid_value", "guided_json" },
    { "chat: guided_choice a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_choice\":\"a\"}",
      400, "invalid_type", "guided_choice" },
    { "chat: guided_choice of a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_choice\":[\"a\",1]}",
      400, "invalid_type", "guided_choice" },
    { "completions: guided_choice, one the start of another", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"guided_choice\":"
      "[\"yes\",\"yes!\"]}", 400, "invalid_value", "guided_choice" },
    { "chat: guided_choice beside guided_json", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_choice\":[\"a\"],"
      "\"guided_json\":{\"type\":\"object\"}}",
      400, "invalid_value", "guided_choice" },
    { "chat: guided_choice beside response_format json_object", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_choice\":[\"a\"],"
      "\"response_format\":{\"type\":\"json_object\"}}",
      400, "invalid_value", "guided_choice" },
    { "chat: guided_choice beside tools", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_choice\":[\"a\"],"
      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
      400, "invalid_value", "tool_choice" },
    { "completions: guided_regex a number", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"guided_regex\":5}",
      400, "invalid_type", "guided_regex" },
    { "chat: guided_regex with a lookahead", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_regex\":\"a(?=b)\"}",
      400, "invalid_value", "guided_regex" },
    { "chat: guided_regex matching only the empty text", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_regex\":\"(|)\"}",
      400, "invalid_value", "guided_regex" },
    { "chat: guided_regex beside guided_choice", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_choice\":[\"a\"],"
      "\"guided_regex\":\"a\"}", 400, "invalid_value", "guided_regex" },
    { "chat: guided_regex beside response_format json_object", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_regex\":\"a\","
      "\"response_format\":{\"type\":\"json_object\"}}",
      400, "invalid_value", "guided_regex" },
    { "chat: guided_regex beside tools", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_regex\":\"a\","
      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
      400, "invalid_value", "tool_choice" },
    { "chat: structured_outputs a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":\"x\"}",
      400, "invalid_type", "structured_outputs" },
    { "chat: structured_outputs with no constraint", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"disable_fallback\":true}}",
      400, "missing_required_parameter", "structured_outputs" },
    { "chat: structured_outputs with two constraints", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"regex\":\"a\",\"choice\":[\"a\"]}}",
      400, "invalid_value", "structured_outputs.choice" },
    { "chat: structured_outputs with a field it lacks", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"regex\":\"a\",\"regexp\":\"b\"}}",
      400, "invalid_value", "structured_outputs" },
    { "chat: structured_outputs.grammar left-recursive", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"grammar\":\"root ::= root \\\"a\\\" | \\\"b\\\"\"}}",
      400, "invalid_value", "structured_outputs.grammar" },
    { "chat: structured_outputs.grammar a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"grammar\":1}}",
      400, "invalid_type", "structured_outputs.grammar" },
    { "chat: structured_outputs.structural_tag without tags", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"structural_tag\":\"{}\"}}",
      400, "missing_required_parameter",
      "structured_outputs.structural_tag" },
    { "chat: structured_outputs.structural_tag not JSON", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"structural_tag\":\"{\"}}",
      400, "invalid_type", "structured_outputs.structural_tag" },
    { "chat: structural_tag with no triggers", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"structures\":[{\"begin\":\"<a>\","
      "\"schema\":{},\"end\":\"</a>\"}],\"triggers\":[]}}",
      400, "invalid_value", "response_format" },
    { "chat: structural_tag whose begin is no trigger's", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"structures\":[{\"begin\":\"<a>\","
      "\"schema\":{},\"end\":\"</a>\"}],\"triggers\":[\"<b\"]}}",
      400, "invalid_value", "response_format" },
    { "chat: structural_tag with a schema the server cannot hold", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"structures\":[{\"begin\":\"<a>\","
      "\"schema\":{\"not\":{}},\"end\":\"</a>\"}],"
      "\"triggers\":[\"<a\"]}}",
      400, "invalid_value", "response_format" },
    { "chat: structural_tag format of a type not served", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":\"regex\","
      "\"pattern\":\"a+\"}}}",
      400, "unsupported_parameter", "response_format" },
    { "chat: structural_tag triggered_tags at_least_one not a boolean",
      CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":"
      "\"triggered_tags\",\"triggers\":[\"<a\"],\"tags\":[{\"type\":"
      "\"tag\",\"begin\":\"<a>\",\"content\":{\"type\":\"json_schema\","
      "\"json_schema\":{}},\"end\":\"</a>\"}],\"at_least_one\":1}}}",
      400, "invalid_type", "response_format" },
    { "chat: structural_tag tag content of a type not served", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":\"tag\","
      "\"begin\":\"<a>\",\"content\":{\"type\":\"any_text\"},"
      "\"end\":\"</a>\"}}}",
      400, "unsupported_parameter", "response_format" },
    { "chat: structural_tag tag without an end", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":\"tag\","
      "\"begin\":\"<a>\",\"content\":{\"type\":\"json_schema\","
      "\"json_schema\":{}}}}}",
      400, "missing_required_parameter", "response_format" },
    { "chat: structural_tag beside response_format json_object", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"json_object\"},\"structured_outputs\":"
      "{\"structural_tag\":{\"structures\":[{\"begin\":\"<a>\","
      "\"schema\":{},\"end\":\"</a>\"}],\"triggers\":[\"<a\"]}}}",
      400, "invalid_value", "structured_outputs.structural_tag" },
    { "chat: structural_tag stop_after_first not a boolean", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"structures\":[{\"begin\":\"<a>\","
      "\"schema\":{},\"end\":\"</a>\"}],\"triggers\":[\"<a\"],"
      "\"stop_after_first\":1}}",
      400, "invalid_type", "response_format" },
    { "chat: structured_outputs.whitespace_pattern", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"json_object\":true,\"whitespace_pattern\":\" ?\"}}",
      400, "unsupported_parameter", "structured_outputs.whitespace_pattern" },
    { "chat: structured_outputs.disable_any_whitespace a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"json_object\":true,\"disable_any_whitespace\":1}}",
      400, "invalid_type", "structured_outputs" },
    { "chat: structured_outputs.disable_fallback a string", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"json_object\":true,\"disable_fallback\":\"yes\"}}",
      400, "invalid_type", "structured_outputs" },
    { "chat: structured_outputs.json_object false", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"json_object\":false}}",
      400, "invalid_value", "structured_outputs.json_object" },
    { "chat: structured_outputs.choice of a number", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"choice\":[\"a\",1]}}",
      400, "invalid_type", "structured_outputs.choice" },
    { "completions: structured_outputs.regex with a lookahead", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"structured_outputs\":"
      "{\"regex\":\"a(?=b)\"}}",
      400, "invalid_value", "structured_outputs.regex" },
    { "completions: structured_outputs.json text that is not a schema", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"structured_outputs\":"
      "{\"json\":\"[1]\"}}",
      400, "invalid_type", "structured_outputs.json" },
    { "chat: structured_outputs beside guided_regex", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"regex\":\"a\"},\"guided_regex\":\"a\"}",
      400, "invalid_value", "guided_regex" },
    { "chat: structured_outputs beside response_format json_object", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"json\":{\"type\":\"object\"}},\"response_format\":"
      "{\"type\":\"json_object\"}}",
      400, "invalid_value", "structured_outputs.json" },
    { "chat: structured_outputs beside tools", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"choice\":[\"a\"]},"
      "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
      400, "invalid_value", "tool_choice" },
    { "completions: guided_grammar that does not read", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"guided_grammar\":\"a\"}",
      400, "invalid_value", "guided_grammar" },
    { "completions: guided_grammar beside guided_regex", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\",\"guided_grammar\":"
      "\"root ::= \\\"a\\\"\",\"guided_regex\":\"a\"}",
      400, "invalid_value", "guided_grammar" },
    { "chat: guided_whitespace_pattern", CHAT,
      "{\"model\":\"base\"," MSGS ",\"guided_whitespace_pattern\":\" \"}",
      400, "unsupported_parameter", "guided_whitespace_pattern" },
};

/* A structural tag's request: the text the worker passes on (the shape
 * the engine reads), triggered and compact as marked; or, text NULL, a
 * 400 whose message holds msg. */
typedef struct {
    const char           *name;
    slora_openai_kind_e   kind;
    const char           *body;
    const char           *text;
    unsigned              triggered;
    unsigned              compact;
    const char           *msg;
} tag_case_t;


static const tag_case_t  tag_cases[] = {
    { "chat: structured_outputs.structural_tag's text: its structures and "
      "triggers, marked tags, compact", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"structural_tag\":\"{\\\"type\\\":\\\"structural_tag\\\","
      "\\\"structures\\\":[{\\\"begin\\\":\\\"<f=a>\\\","
      "\\\"schema\\\":{\\\"type\\\":\\\"object\\\"},"
      "\\\"end\\\":\\\"</f>\\\"}],\\\"triggers\\\":"
      "[\\\"<f=\\\"]}\",\"disable_any_whitespace\":true}}",
      "{\"structures\":[{\"begin\":\"<f=a>\",\"schema\":{\"type\":"
      "\"object\"},\"end\":\"</f>\"}],\"triggers\":[\"<f=\"]}", 1, 1,
      NULL },
    { "chat: structural_tag's text with triggers named twice: the last, "
      "as vLLM reads it; stop_after_first kept", CHAT,
      "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
      "{\"structural_tag\":\"{\\\"triggers\\\":[\\\"<g\\\"],"
      "\\\"structures\\\":[{\\\"begin\\\":\\\"<f=a>\\\","
      "\\\"schema\\\":{},\\\"end\\\":\\\"</f>\\\"}],"
      "\\\"triggers\\\":[\\\"<f=\\\"],"
      "\\\"stop_after_first\\\":true}\"}}",
      "{\"structures\":[{\"begin\":\"<f=a>\",\"schema\":{},"
      "\"end\":\"</f>\"}],\"triggers\":[\"<f=\"],"
      "\"stop_after_first\":true}", 1, 0, NULL },
    { "completions: response_format structural_tag of triggered_tags: the "
      "same shape, stop_after_first kept", COMP,
      "{\"model\":\"base\",\"prompt\":\"x\","
      "\"response_format\":{\"type\":\"structural_tag\","
      "\"format\":{\"type\":\"triggered_tags\",\"triggers\":"
      "[\"<f=\"],\"tags\":[{\"type\":\"tag\",\"begin\":\"<f=a>\","
      "\"content\":{\"type\":\"json_schema\",\"json_schema\":"
      "{\"type\":\"object\"}},\"end\":\"</f>\"}],"
      "\"at_least_one\":false,\"stop_after_first\":true}}}",
      "{\"structures\":[{\"begin\":\"<f=a>\",\"schema\":{\"type\":"
      "\"object\"},\"end\":\"</f>\"}],\"triggers\":[\"<f=\"],"
      "\"stop_after_first\":true}", 1, 0, NULL },
    { "chat: response_format structural_tag of triggered_tags with "
      "at_least_one: kept", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":"
      "\"triggered_tags\",\"triggers\":[\"<a\"],\"tags\":[{\"type\":"
      "\"tag\",\"begin\":\"<a>\",\"content\":{\"type\":\"json_schema\","
      "\"json_schema\":{}},\"end\":\"</a>\"}],\"at_least_one\":true}}}",
      "{\"structures\":[{\"begin\":\"<a>\",\"schema\":{},"
      "\"end\":\"</a>\"}],\"triggers\":[\"<a\"],"
      "\"stop_after_first\":false,\"at_least_one\":true}", 1, 0, NULL },
    { "chat: response_format structural_tag of one tag: no triggers, the "
      "answer the tag", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":"
      "\"tag\",\"begin\":\"<a>\",\"content\":{\"type\":"
      "\"json_schema\",\"json_schema\":{\"type\":\"array\"}},"
      "\"end\":\"</a>\"}}}",
      "{\"structures\":[{\"begin\":\"<a>\",\"schema\":{\"type\":"
      "\"array\"},\"end\":\"</a>\"}],\"triggers\":[]}", 0, 0, NULL },
    { "a format's tag with a schema the server cannot hold: named as "
      "written", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":"
      "\"triggered_tags\",\"triggers\":[\"<a\"],\"tags\":["
      "{\"type\":\"tag\",\"begin\":\"<a>\",\"content\":{\"type\":"
      "\"json_schema\",\"json_schema\":{}},\"end\":\"</a>\"},"
      "{\"type\":\"tag\",\"begin\":\"<ab\",\"content\":{\"type\":"
      "\"json_schema\",\"json_schema\":{\"not\":{}}},"
      "\"end\":\"</a>\"}]}}}", NULL, 0, 0,
      "response_format: format.tags[1].content.json_schema: " },
    { "a format's trigger that begins no tag: named as written", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":"
      "\"triggered_tags\",\"triggers\":[\"<a\",\"<q\"],\"tags\":["
      "{\"type\":\"tag\",\"begin\":\"<a>\",\"content\":{\"type\":"
      "\"json_schema\",\"json_schema\":{}},\"end\":\"</a>\"}]}}}", NULL,
      0, 0, "format.triggers[1] begins no tag" },
    { "one tag's empty begin: named as written", CHAT,
      "{\"model\":\"base\"," MSGS ",\"response_format\":"
      "{\"type\":\"structural_tag\",\"format\":{\"type\":"
      "\"tag\",\"begin\":\"\",\"content\":{\"type\":"
      "\"json_schema\",\"json_schema\":{}},\"end\":\"</a>\"}}}", NULL,
      0, 0, "response_format: format.begin is 0 bytes" },
};



static void test_good(void);
static void test_bad(void);
static void test_later(void);
static void test_known(void);
static int known_one(void *data, int form, const char *text, size_t len);


int
main(void)
{
    test_good();
    test_bad();
    test_later();
    test_known();

    return done_testing();
}


static void
test_good(void)
{
    int                 rc;
    size_t              i;
    const tag_case_t   *t;
    slora_openai_req_t  req;
    slora_openai_err_t  err;

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\",\"guided_json\":"
               "{\"type\": \"object\", \"required\": [\"a\"], "
               "\"properties\": {\"a\": {\"type\": \"string\"}}}}", &req,
               &err);
    ok(rc == SLORA_OK && req.schema.data != NULL
       && strcmp(req.schema.data, "{\"type\":\"object\",\"required\":"
                 "[\"a\"],\"properties\":{\"a\":{\"type\":\"string\"}}}")
          == 0, "completions: vLLM's guided_json is the schema: %s",
       req.schema.data != NULL ? req.schema.data : "(none)");
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"guided_choice\":"
               "[\"yes\", \"no\", \"\\u00e9\"]}", &req, &err);
    ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_CHOICE
       && req.schema.data != NULL
       && strcmp(req.schema.data, "[\"yes\",\"no\",\"\xc3\xa9\"]") == 0
       && !req.json,
       "chat: guided_choice: the texts' array, compact, marked a choice: "
       "%s", req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\",\"guided_regex\":"
               "\"(yes|no)\\\\.\\\"\"}", &req, &err);
    ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_REGEX
       && req.schema.data != NULL
       && strcmp(req.schema.data, "(yes|no)\\.\"") == 0 && !req.json,
       "completions: guided_regex: its text as it is, marked a regex: %s",
       req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\","
               "\"guided_grammar\":\"root ::= \\\"a\\\" [0-9]+\\n\"}", &req,
               &err);
    ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_GRAMMAR
       && req.schema.data != NULL
       && strcmp(req.schema.data, "root ::= \"a\" [0-9]+\n") == 0
       && !req.json,
       "completions: guided_grammar: its text as it is, marked a grammar:"
       " %s", req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
               "{\"grammar\":\"root ::= \\\"yes\\\" | \\\"no\\\"\","
               "\"disable_any_whitespace\":true}}", &req, &err);
    ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_GRAMMAR
       && req.schema.data != NULL
       && strcmp(req.schema.data, "root ::= \"yes\" | \"no\"") == 0
       && !req.json_compact,
       "chat: structured_outputs.grammar, disable_any_whitespace: a "
       "grammar, no JSON to make compact: %s",
       req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);

    /* vLLM's structured_outputs: the same kinds under one object */
    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
               "{\"choice\":[\"yes\",\"no\"],\"disable_fallback\":true}}",
               &req, &err);
    ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_CHOICE
       && req.schema.data != NULL
       && strcmp(req.schema.data, "[\"yes\",\"no\"]") == 0 && !req.json,
       "chat: structured_outputs.choice: a choice: %s",
       req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);

    rc = parse(COMP, "{\"model\":\"base\",\"prompt\":\"x\","
               "\"structured_outputs\":{\"regex\":\"[0-9]+\","
               "\"json\":null}}", &req, &err);
    ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_REGEX
       && req.schema.data != NULL && strcmp(req.schema.data, "[0-9]+") == 0,
       "completions: structured_outputs.regex (json null beside it): %s",
       req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
               "{\"json\":{\"type\":\"object\",\"properties\":{\"a\":"
               "{\"type\":\"string\"}}}}}", &req, &err);
    ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_SCHEMA
       && req.schema.data != NULL
       && strcmp(req.schema.data, "{\"type\":\"object\",\"properties\":"
                 "{\"a\":{\"type\":\"string\"}}}") == 0,
       "chat: structured_outputs.json: the schema: %s",
       req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
               "{\"json\":\"{\\\"type\\\":\\\"object\\\"}\","
               "\"disable_additional_properties\":true}}", &req, &err);
    ok(rc == SLORA_OK && req.schema.data != NULL
       && strcmp(req.schema.data, "{\"type\":\"object\"}") == 0,
       "chat: structured_outputs.json's text, disable_additional_properties:"
       " the schema as written (a free-form object stays free, as vLLM's): "
       "%s", req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);

    /* structural tags, in vLLM's earlier shape and in xgrammar's */
    for (i = 0; i < sizeof(tag_cases) / sizeof(tag_cases[0]); i++) {
        t = &tag_cases[i];
        rc = parse(t->kind, t->body, &req, &err);

        if (t->text != NULL) {
            ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_TAGS
               && req.tags_triggered == t->triggered
               && req.json_compact == t->compact && req.schema.data != NULL
               && strcmp(req.schema.data, t->text) == 0, "%s: %s", t->name,
               req.schema.data != NULL ? req.schema.data : err.msg);

        } else {
            ok(rc == SLORA_ERROR && err.status == 400
               && strstr(err.msg, t->msg) != NULL
               && err.len == strlen(err.msg), "%s: %s", t->name, err.msg);
        }

        slora_openai_req_free(&req);
    }

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
               "{\"json_object\":true}}", &req, &err);
    ok(rc == SLORA_OK && req.json && req.schema.data == NULL
       && !req.json_compact,
       "chat: structured_outputs.json_object: JSON mode: %s",
       rc == SLORA_OK ? "" : err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
               "{\"json_object\":true,\"disable_any_whitespace\":true}}",
               &req, &err);
    ok(rc == SLORA_OK && req.json && req.json_compact,
       "chat: ... with disable_any_whitespace: compact: %s",
       rc == SLORA_OK ? "" : err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
               "{\"json\":{\"type\":\"object\"},"
               "\"disable_any_whitespace\":true}}", &req, &err);
    ok(rc == SLORA_OK && req.schema.data != NULL && req.json_compact,
       "chat: structured_outputs.json, disable_any_whitespace: compact: %s",
       rc == SLORA_OK ? "" : err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"structured_outputs\":"
               "{\"regex\":\"a b\",\"disable_any_whitespace\":true}}",
               &req, &err);
    ok(rc == SLORA_OK && req.schema_form == SLORA_JSON_FORM_REGEX
       && !req.json_compact,
       "chat: structured_outputs.regex, disable_any_whitespace: no JSON to "
       "make compact, the regex's own blank kept: %s",
       rc == SLORA_OK ? "" : err.msg);
    slora_openai_req_free(&req);

    rc = parse(CHAT, "{\"model\":\"base\"," MSGS ",\"guided_json\":"
               "\"{\\\"type\\\": \\\"object\\\"}\"}", &req, &err);
    ok(rc == SLORA_OK && req.schema.data != NULL
       && strcmp(req.schema.data, "{\"type\":\"object\"}") == 0,
       "chat: so is guided_json's text: %s",
       req.schema.data != NULL ? req.schema.data : err.msg);
    slora_openai_req_free(&req);
}


static void
test_bad(void)
{
    size_t              i;
    const bad_case_t   *c;

    for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        c = &bad_cases[i];
        refused_as(c->name, c->kind, c->body, c->status, c->code, c->param);
    }
}


/* compile_later: the parse checks the constraint's size, keeps its text
 * and says it passed the compile over, for nginx's thread pool, whose
 * parse of the same body refuses what this one let through. */
static void
test_later(void)
{
    size_t                 i;
    int                    rc;
    slora_openai_req_t     req;
    slora_openai_err_t     err;
    slora_openai_limits_t  lim;

    static const struct {
        slora_openai_kind_e  kind;
        const char          *body;
        const char          *schema;
    } cases[] = {
        /* a lookahead the compile refuses */
        { COMP, "{\"model\":\"base\",\"prompt\":\"x\","
                "\"guided_regex\":\"(?=a)b\"}", "(?=a)b" },
        /* tools: the calls' schema, a function's parameters refused */
        { CHAT, "{\"model\":\"base\"," MSGS ",\"tool_choice\":"
                "\"required\",\"tools\":[{\"type\":\"function\","
                "\"function\":{\"name\":\"f\",\"parameters\":"
                "{\"type\":\"object\",\"properties\":{\"a\":"
                "{\"type\":\"string\",\"pattern\":\"(?=a)\"}}}}}]}",
          NULL },
        /* a schema it takes */
        { CHAT, "{\"model\":\"base\"," MSGS ",\"guided_json\":"
                "{\"type\":\"object\"}}", "{\"type\":\"object\"}" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lim = slora_openai_default_limits;
        lim.compile_later = 1;
        memset(&err, 0, sizeof(err));

        rc = slora_openai_parse(cases[i].body, strlen(cases[i].body),
                                cases[i].kind, &lim, &req, &err);

        ok(rc == SLORA_OK && req.schema_uncompiled && req.schema.data != NULL
           && (cases[i].schema == NULL
               || strcmp(req.schema.data, cases[i].schema) == 0),
           "compile_later, case %zu: parsed, the compile passed over, the "
           "text kept: %s", i,
           rc == SLORA_OK ? (req.schema.data ? req.schema.data : "(none)")
                          : err.msg);
        slora_openai_req_free(&req);

        lim.compile_later = 0;
        memset(&err, 0, sizeof(err));

        rc = slora_openai_parse(cases[i].body, strlen(cases[i].body),
                                cases[i].kind, &lim, &req, &err);

        ok(i == 2 ? rc == SLORA_OK && !req.schema_uncompiled
                  : rc == SLORA_ERROR && err.status == 400
                    && strstr(err.msg, "lookahead") != NULL,
           "compiled, case %zu: %s", i,
           rc == SLORA_OK ? "taken" : err.msg);
        slora_openai_req_free(&req);
    }

    /* the length's refusal stays with the first parse */
    {
        char    *body;
        size_t   n, len;

        n = SLORA_JSON_SCHEMA_MAX + 1;
        body = malloc(n + 64);
        if (body == NULL) {
            BAIL_OUT("out of memory");
        }

        len = (size_t) sprintf(body, "{\"model\":\"base\",\"prompt\":"
                               "\"x\",\"guided_regex\":\"");
        memset(body + len, 'a', n);
        len += n;
        len += (size_t) sprintf(body + len, "\"}");

        lim = slora_openai_default_limits;
        lim.compile_later = 1;
        memset(&err, 0, sizeof(err));

        rc = slora_openai_parse(body, len, COMP, &lim, &req, &err);
        ok(rc == SLORA_ERROR && err.status == 400
           && strstr(err.msg, "at most") != NULL,
           "compile_later: a regex over the length is refused at once: %s",
           rc == SLORA_OK ? "taken" : err.msg);
        slora_openai_req_free(&req);
        free(body);
    }
}


/* schema_known: a constraint the caller says compiles is taken as it
 * is, not compiled (one the compiler would refuse passes, which only a
 * constraint not compiled can), whatever compile_later says; one it
 * does not know is compiled, or passed over under compile_later; the
 * callback is asked the form and the text the engine is sent */
typedef struct {
    int          calls;
    int          form;
    const char  *text;                  /* known where equal */
    char         asked[64];
} known_t;


static void
test_known(void)
{
    int                    rc, later;
    known_t                k;
    slora_openai_req_t     req;
    slora_openai_err_t     err;
    slora_openai_limits_t  lim;

    static const char  body[] = "{\"model\":\"base\",\"prompt\":\"x\","
                                "\"guided_regex\":\"(?=a)b\"}";

    for (later = 0; later <= 1; later++) {
        memset(&k, 0, sizeof(k));
        k.text = "(?=a)b";
        lim = slora_openai_default_limits;
        lim.compile_later = later;
        lim.schema_known = known_one;
        lim.schema_known_data = &k;
        memset(&err, 0, sizeof(err));

        rc = slora_openai_parse(body, strlen(body), COMP, &lim, &req, &err);
        ok(rc == SLORA_OK && req.schema_was_known && !req.schema_uncompiled
           && req.schema.data != NULL
           && strcmp(req.schema.data, "(?=a)b") == 0 && k.calls == 1
           && k.form == SLORA_JSON_FORM_REGEX
           && strcmp(k.asked, "(?=a)b") == 0,
           "schema_known (compile_later %d): a known regex taken as it is, "
           "not compiled (asked %d times, form %d): %s", later, k.calls,
           k.form, rc == SLORA_OK ? "taken" : err.msg);
        slora_openai_req_free(&req);

        k.text = "another";
        k.calls = 0;
        memset(&err, 0, sizeof(err));

        rc = slora_openai_parse(body, strlen(body), COMP, &lim, &req, &err);
        ok(later ? rc == SLORA_OK && req.schema_uncompiled
                   && !req.schema_was_known
                 : rc == SLORA_ERROR && err.status == 400
                   && strstr(err.msg, "lookahead") != NULL,
           "schema_known (compile_later %d): one not known %s: %s", later,
           later ? "passed over" : "compiled and refused",
           rc == SLORA_OK ? "taken" : err.msg);
        slora_openai_req_free(&req);
    }
}


static int
known_one(void *data, int form, const char *text, size_t len)
{
    known_t  *k = data;

    k->calls++;
    k->form = form;
    snprintf(k->asked, sizeof(k->asked), "%.*s", (int) len, text);

    return strlen(k->text) == len && memcmp(k->text, text, len) == 0;
}
