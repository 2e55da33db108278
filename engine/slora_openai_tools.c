/*
 * slora_openai_tools.c: OpenAI's function calling, the request's side:
 * tools and tool_choice; the assistant's earlier tool_calls and the tool
 * messages that answer them, rendered into the chat; and, when the
 * answer must be a call, the schema that holds it to one.
 *
 * The one idea: the model is told of the tools and shown its earlier
 * calls in the format most open chat models are tuned on for tools
 * (Hermes', as Qwen2.5's template writes it; SmolLM's tool instructions
 * use the same tags): the tools'
 * JSON inside <tools></tools> at the end of the system message, each
 * call as {"name", "arguments"} inside <tool_call></tool_call>, each
 * result inside <tool_response></tool_response> in a user turn. A call
 * that must come is a JSON schema over that same object, the function's
 * name a const, so the constrained decoder of response_format does the
 * work: the objects of several tools form a tagged union told apart by
 * the name. tool_choice "required" holds the answer to a JSON array of
 * one to 16 such calls (as vLLM does; one bare call when
 * parallel_tool_calls is false), a function named to one bare call. With
 * "auto" the call's schema holds lazily, from the moment the model
 * writes <tool_call> until the call is whole.
 *
 * A model whose template has a format of its own is told in that one
 * (slora_openai_tool_format). Llama 3.1's (and 3.2's, 3.3's): the tools
 * as indented JSON before the first user text, with its template's own
 * instruction; a call is the whole answer, {"name", "parameters"}, one a
 * message (its template renders no more), so "required" holds the
 * answer to one bare call too, and "auto" holds it from the answer's
 * first bytes '{"name":' on; results are ipython turns
 * (engine/slora_chat.c). Mistral's formats are written by
 * engine/slora_openai_mistral.c; "auto" holds their list of calls from
 * [TOOL_CALLS] on, and the answer ends with the list.
 *
 * What is made here is a made message's content (slora_chat_msg_t): the
 * format's tags and words are the template's text, and the spans that
 * came from the request (the tools' JSON, a call's name and arguments, a
 * result, the message's own text) are listed as plain, so that a tag's
 * or a control token's text a client writes there stays text.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_openai_int.h"
#include "slora_json.h"
#include "slora_pyjson.h"
#include "slora_tool_scan.h"


#define SLORA_OPENAI_TOOLS_MAX  64      /* a tagged union's alternatives */
#define SLORA_OPENAI_TOOL_TRIGGER  "<tool_call>"
#define SLORA_OPENAI_LLAMA3_TRIGGER  "{\"name\":"
#define SLORA_OPENAI_MISTRAL_TRIGGER  "[TOOL_CALLS]"


static const char  slora_openai_tools_head[] =
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML "
    "tags:\n<tools>";

/* Llama 3.1's template's words before the tools, in the first user
 * message (tools_in_user_message, its default) */
static const char  slora_openai_llama3_head[] =
    "Given the following functions, please respond with a JSON for a "
    "function call with its proper arguments that best answers the given "
    "prompt.\n\n"
    "Respond in the format {\"name\": function name, \"parameters\": "
    "dictionary of argument name and its value}.Do not use variables.\n\n";

static const char  slora_openai_tools_tail[] =
    "\n</tools>\n\n"
    "For each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n"
    "<tool_call>\n"
    "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
    "</tool_call>";


static int slora_openai_tool_list(cJSON *tools, slora_openai_err_t *err);
static int slora_openai_tool_tell(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_tool_choice(cJSON *choice, cJSON *tools,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int slora_openai_tool_schema(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_tool_strict(cJSON *tools);
static int slora_openai_tool_id_schema(cJSON *props);
static cJSON *slora_openai_tool_params(cJSON *params);
static void slora_openai_tool_blame(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err);
static void slora_openai_tool_refs(cJSON *sch, const char *base,
    int names);
static int slora_openai_tool_named(const char *keyword);
static int slora_openai_tool_prompt(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_tool_prompt_llama3(cJSON *tools,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int slora_openai_tool_calls(cJSON *calls, size_t i,
    slora_chat_msg_t *cm, slora_openai_req_t *req, slora_openai_err_t *err);

static int slora_openai_tool_custom(cJSON *call);
static int slora_openai_tool_join(slora_openai_req_t *req,
    slora_chat_msg_t *prev, slora_chat_msg_t *cm);
static cJSON *slora_openai_tool_function(cJSON *tool);
static char *slora_openai_cat(slora_openai_req_t *req, const char *a,
    size_t a_len, const char *b, size_t b_len, const char *c, size_t c_len);


/* The tool format of a chat template's model; call_ids: a
 * mistral-v7-tekken template that writes them (Small 3.2's). */
slora_openai_toolfmt_e
slora_openai_tool_format(slora_chat_e chat, int call_ids)
{
    switch (chat) {

    case SLORA_CHAT_LLAMA31:
    case SLORA_CHAT_LLAMA32:
        return SLORA_OPENAI_TOOLFMT_LLAMA3;

    case SLORA_CHAT_MISTRAL:
    case SLORA_CHAT_MISTRAL_TEKKEN:
        return SLORA_OPENAI_TOOLFMT_MISTRAL_LIST;

    case SLORA_CHAT_MISTRAL_V7:
        return call_ids ? SLORA_OPENAI_TOOLFMT_MISTRAL_IDS
                        : SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS;

    default:
        return SLORA_OPENAI_TOOLFMT_HERMES;
    }
}


/*
 * tools, tool_choice and parallel_tool_calls of a chat request (after
 * its messages): req->tools says what the answer may or must be, the
 * chat tells the model of the tools, and a call that must come is
 * req->schema.
 */
int
slora_openai_tools(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int                  strict, held;
    cJSON               *tools, *choice;
    unsigned             parallel;
    const char          *trigger;
    slora_openai_err_t   lenient;

    tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    choice = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");
    parallel = 1;

    if (slora_openai_bool(root, "parallel_tool_calls", &parallel, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    req->tool_one = !parallel;

    if (tools != NULL && !cJSON_IsNull(tools)
        && slora_openai_tool_list(tools, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (tools != NULL && cJSON_GetArraySize(tools) == 0) {
        tools = NULL;
    }

    if (slora_openai_tool_choice(choice, tools, req, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (req->tools == SLORA_OPENAI_TOOLS_OFF) {
        /*
         * No tools; or tool_choice "none", whose tools the model is still
         * told of, as vLLM gives them to its template (unless its
         * --exclude-tools-when-tool-choice-none) and as OpenAI's model
         * sees them: the prompt is the one "auto" gives. Only the answer
         * is no call: nothing holds it to the calls' schema or reads
         * calls in it, its text is the message's content, and a JSON
         * response_format may shape it.
         */
        return tools != NULL ? slora_openai_tool_tell(tools, req, err)
                             : SLORA_OK;
    }

    if (req->tool_format == SLORA_OPENAI_TOOLFMT_LLAMA3) {
        /* one call a message is all its template renders */
        req->tool_one = 1;
    }

    if (req->json || req->schema.data != NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "tool_choice", "tools and a JSON "
                                 "response_format (or guided_json, "
                                 "guided_choice, guided_regex, "
                                 "guided_grammar, a structural tag or "
                                 "structured_outputs) cannot "
                                 "both shape the answer: give one, or "
                                 "tool_choice \"none\"");
    }

    if (req->tools != SLORA_OPENAI_TOOLS_AUTO
        && slora_openai_tool_schema(tools, req, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    trigger = slora_openai_tool_mark(req->tool_format);

    if (req->tools == SLORA_OPENAI_TOOLS_AUTO
        && (req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_IDS
            || req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_ARGS))
    {
        /* name[ARGS]{...} is no JSON value: such calls go free */
        trigger = NULL;
    }

    if (req->tools == SLORA_OPENAI_TOOLS_AUTO && trigger != NULL) {
        /* a call the model chooses to write is held to the tools' schema
         * from its mark on; tools whose schema cannot be enforced (or is
         * too long) leave it free, but where a tool asks for "strict":
         * true, which promises calls its parameters admit: then that is
         * a 400, as under "required" */
        strict = slora_openai_tool_strict(tools);
        held = slora_openai_tool_schema(tools, req, strict ? err : &lenient)
               == SLORA_OK;

        if (held && req->schema.len + strlen(trigger) > SLORA_JSON_SCHEMA_MAX)
        {
            held = 0;

            if (strict) {
                return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                         "invalid_value", "tools", "the "
                                         "tools' parameters are %zu bytes "
                                         "written compactly with their "
                                         "call's frame; this server holds "
                                         "\"strict\" calls to at most %d",
                                         req->schema.len + strlen(trigger),
                                         SLORA_JSON_SCHEMA_MAX);
            }
        }

        if (!held && strict) {
            return SLORA_ERROR;
        }

        if (held) {
            req->schema_trigger.data = trigger;
            req->schema_trigger.len = strlen(trigger);
            req->trigger_lead =
                req->tool_format == SLORA_OPENAI_TOOLFMT_LLAMA3;
            req->trigger_ends =
                req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_LIST;

        } else {
            req->schema.data = NULL;
            req->schema.len = 0;
        }
    }

    return slora_openai_tool_tell(tools, req, err);
}


/* The tools told to the model, in its template's format. */
static int
slora_openai_tool_tell(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    switch (req->tool_format) {

    case SLORA_OPENAI_TOOLFMT_LLAMA3:
        return slora_openai_tool_prompt_llama3(tools, req, err);

    case SLORA_OPENAI_TOOLFMT_HERMES:
        return slora_openai_tool_prompt(tools, req, err);

    default:
        return slora_openai_mistral_tools(tools, req, err);
    }
}


/* What begins the calls a model chooses to write, in its format:
 * Hermes' tag, Llama 3.1's call's own first bytes, Mistral's
 * [TOOL_CALLS]. */
const char *
slora_openai_tool_mark(slora_openai_toolfmt_e format)
{
    switch (format) {

    case SLORA_OPENAI_TOOLFMT_HERMES:
        return SLORA_OPENAI_TOOL_TRIGGER;

    case SLORA_OPENAI_TOOLFMT_LLAMA3:
        return SLORA_OPENAI_LLAMA3_TRIGGER;

    default:
        return SLORA_OPENAI_MISTRAL_TRIGGER;
    }
}


/* tools: an array of at most 64 functions, names valid and distinct,
 * parameters (when given) the schema of an object. */
static int
slora_openai_tool_list(cJSON *tools, slora_openai_err_t *err)
{
    int     i, k;
    cJSON  *tool, *fn, *name, *params, *type, *strict, *other;

    if (!cJSON_IsArray(tools)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "tools", "tools must be an array");
    }

    if (cJSON_GetArraySize(tools) > SLORA_OPENAI_TOOLS_MAX) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "tools", "tools may list at most %d "
                                 "functions", SLORA_OPENAI_TOOLS_MAX);
    }

    i = 0;

    cJSON_ArrayForEach(tool, tools) {
        type = cJSON_GetObjectItemCaseSensitive(tool, "type");
        fn = cJSON_GetObjectItemCaseSensitive(tool, "function");

        /* OpenAI's custom tools (free-form input, a grammar) */
        if (cJSON_IsObject(tool) && cJSON_IsString(type)
            && strcmp(type->valuestring, "custom") == 0)
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "unsupported_parameter", "tools",
                                     "tools[%d] is of type \"%.*s\", "
                                     "which this server does not support "
                                     "(\"function\" tools are)", i,
                                     slora_utf8_cut(type->valuestring, 32),
                                     type->valuestring);
        }

        if (!cJSON_IsObject(tool) || !cJSON_IsString(type)
            || strcmp(type->valuestring, "function") != 0
            || !cJSON_IsObject(fn))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "tools", "tools[%d] "
                                     "must be {\"type\": \"function\", "
                                     "\"function\": {...}}", i);
        }

        name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");

        if (!cJSON_IsString(name)
            || !slora_openai_tool_name_ok(name->valuestring))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "tools", "tools[%d]."
                                     "function.name must be 1 to %d "
                                     "letters, digits, '_', '-' or '.'",
                                     i, SLORA_TOOL_NAME_MAX);
        }

        if (params != NULL && !cJSON_IsNull(params)
            && !cJSON_IsObject(params))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "tools", "tools[%d]."
                                     "function.parameters must be a JSON "
                                     "schema object", i);
        }

        strict = cJSON_GetObjectItemCaseSensitive(fn, "strict");

        if (strict != NULL && !cJSON_IsBool(strict) && !cJSON_IsNull(strict))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "tools", "tools[%d]."
                                     "function.strict must be a boolean",
                                     i);
        }

        type = cJSON_GetObjectItemCaseSensitive(params, "type");

        if (type != NULL
            && !(cJSON_IsString(type)
                 && strcmp(type->valuestring, "object") == 0))
        {
            /* a call's arguments are an object */
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "tools", "tools[%d]."
                                     "function.parameters must describe "
                                     "an object (\"type\": \"object\")",
                                     i);
        }

        k = 0;

        cJSON_ArrayForEach(other, tools) {
            if (k++ == i) {
                break;
            }

            if (strcmp(cJSON_GetObjectItemCaseSensitive(
                           slora_openai_tool_function(other), "name")
                           ->valuestring,
                       name->valuestring) == 0)
            {
                return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                         "invalid_value", "tools",
                                         "tools name the function \"%s\" "
                                         "twice", name->valuestring);
            }
        }

        i++;
    }

    return SLORA_OK;
}


/* tool_choice: "none", "auto" (the default with tools), "required", or
 * {"type": "function", "function": {"name": ...}}, which must be one of
 * tools. Without tools only "none" and "auto" mean anything. */
static int
slora_openai_tool_choice(cJSON *choice, cJSON *tools,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    cJSON       *fn, *name, *tool, *type;
    const char  *s;

    if (choice == NULL || cJSON_IsNull(choice)) {
        req->tools = tools != NULL ? SLORA_OPENAI_TOOLS_AUTO
                                   : SLORA_OPENAI_TOOLS_OFF;
        return SLORA_OK;
    }

    if (cJSON_IsString(choice)) {
        s = choice->valuestring;

        if (strcmp(s, "none") == 0) {
            req->tools = SLORA_OPENAI_TOOLS_OFF;
            return SLORA_OK;
        }

        if (strcmp(s, "auto") == 0) {
            req->tools = tools != NULL ? SLORA_OPENAI_TOOLS_AUTO
                                       : SLORA_OPENAI_TOOLS_OFF;
            return SLORA_OK;
        }

        if (strcmp(s, "required") != 0) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "tool_choice",
                                     "tool_choice must be \"none\", "
                                     "\"auto\", \"required\" or a "
                                     "function");
        }

        if (tools == NULL) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "tool_choice",
                                     "tool_choice \"required\" needs "
                                     "tools");
        }

        req->tools = SLORA_OPENAI_TOOLS_REQUIRED;
        return SLORA_OK;
    }

    type = cJSON_GetObjectItemCaseSensitive(choice, "type");
    fn = cJSON_GetObjectItemCaseSensitive(choice, "function");
    name = cJSON_GetObjectItemCaseSensitive(fn, "name");

    /* OpenAI's allowed_tools (a subset the answer may call) and custom
     * (a custom tool's call) */
    if (cJSON_IsObject(choice) && cJSON_IsString(type)
        && (strcmp(type->valuestring, "allowed_tools") == 0
            || strcmp(type->valuestring, "custom") == 0))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", "tool_choice",
                                 "tool_choice of type \"%.*s\" is not "
                                 "supported by this server (\"none\", "
                                 "\"auto\", \"required\" and {\"type\": "
                                 "\"function\", ...} are)",
                                 slora_utf8_cut(type->valuestring, 32),
                                 type->valuestring);
    }

    if (!cJSON_IsObject(choice) || !cJSON_IsString(type)
        || strcmp(type->valuestring, "function") != 0
        || !cJSON_IsString(name))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "tool_choice", "tool_choice must be "
                                 "\"none\", \"auto\", \"required\" or "
                                 "{\"type\": \"function\", \"function\": "
                                 "{\"name\": ...}}");
    }

    cJSON_ArrayForEach(tool, tools) {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(
                       slora_openai_tool_function(tool), "name")->valuestring,
                   name->valuestring) == 0)
        {
            req->tools = SLORA_OPENAI_TOOLS_NAMED;
            return slora_openai_string(name, "tool_choice", &req->tool_name,
                                       req, err);
        }
    }

    return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                             "tool_choice", "tool_choice names the function "
                             "\"%.*s\", which is not among tools",
                             slora_utf8_cut(name->valuestring, 64),
                             name->valuestring);
}


/*
 * The schema of the answer's calls: {"name": const, "arguments" (Llama 3.1's
 * "parameters"): the function's parameters} for the named function, or an
 * anyOf of one such object per tool ("auto" from its trigger on, and
 * "required" with parallel_tool_calls false); "required" lists one to
 * SLORA_OPENAI_CALLS_MAX of them in an array. Mistral's list may close
 * a call with the "id" its templates write there (9 letters or digits),
 * which its models learnt to write; the scanner reads it and the answer
 * gives a call an id of its own, as without a schema. A parameters schema's own
 * "#..." references are moved to where it now sits. It is compiled once; when
 * it cannot be, the function whose parameters are at fault is named
 * (slora_openai_tool_blame).
 */
static int
slora_openai_tool_schema(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int          rc;
    char         base[64];
    cJSON       *sch, *any, *obj, *props, *tool, *fn, *name, *params, *args;
    cJSON       *req_list, *list;
    const char  *at, *key;

    key = req->tool_format == SLORA_OPENAI_TOOLFMT_LLAMA3 ? "parameters"
                                                          : "arguments";
    sch = NULL;
    any = NULL;
    list = NULL;
    at = "";

    if ((req->tools == SLORA_OPENAI_TOOLS_REQUIRED && !req->tool_one)
        || (req->tools == SLORA_OPENAI_TOOLS_AUTO
            && req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_LIST))
    {
        /* "required", and Mistral's list after [TOOL_CALLS] */
        list = cJSON_CreateObject();

        if (list == NULL
            || cJSON_AddStringToObject(list, "type", "array") == NULL
            || cJSON_AddNumberToObject(list, "minItems", 1) == NULL
            || cJSON_AddNumberToObject(list, "maxItems",
                                       SLORA_OPENAI_CALLS_MAX) == NULL)
        {
            cJSON_Delete(list);
            return slora_openai_nomem(err);
        }

        at = "/items";
    }

    if (req->tools != SLORA_OPENAI_TOOLS_NAMED) {
        sch = cJSON_CreateObject();
        any = cJSON_AddArrayToObject(sch, "anyOf");

        if (any == NULL) {
            cJSON_Delete(sch);
            cJSON_Delete(list);
            return slora_openai_nomem(err);
        }
    }

    rc = SLORA_OK;

    cJSON_ArrayForEach(tool, tools) {
        fn = slora_openai_tool_function(tool);
        name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");

        if (req->tools == SLORA_OPENAI_TOOLS_NAMED
            && strcmp(name->valuestring, req->tool_name.data) != 0)
        {
            continue;
        }

        args = slora_openai_tool_params(params);

        if (args == NULL) {
            rc = slora_openai_nomem(err);
            break;
        }

        if (any != NULL) {
            snprintf(base, sizeof(base), "%s/anyOf/%d/properties/%s",
                     at, cJSON_GetArraySize(any), key);

        } else {
            snprintf(base, sizeof(base), "/properties/%s", key);
        }

        slora_openai_tool_refs(args, base, 0);

        obj = cJSON_CreateObject();
        props = cJSON_AddStringToObject(obj, "type", "object") != NULL
                ? cJSON_AddObjectToObject(obj, "properties") : NULL;
        req_list = cJSON_CreateStringArray((const char *[]) { "name", key },
                                           2);

        if (obj == NULL || props == NULL || req_list == NULL
            || cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "name"),
                                       "const", name->valuestring) == NULL)
        {
            cJSON_Delete(obj);
            cJSON_Delete(args);
            cJSON_Delete(req_list);
            rc = slora_openai_nomem(err);
            break;
        }

        cJSON_AddItemToObject(props, key, args);
        cJSON_AddItemToObject(obj, "required", req_list);

        if (req->tool_format == SLORA_OPENAI_TOOLFMT_MISTRAL_LIST
            && slora_openai_tool_id_schema(props) != SLORA_OK)
        {
            cJSON_Delete(obj);
            rc = slora_openai_nomem(err);
            break;
        }

        if (any != NULL) {
            cJSON_AddItemToArray(any, obj);

        } else {
            sch = obj;
        }
    }

    if (list != NULL) {
        cJSON_AddItemToObject(list, "items", sch);
        sch = list;
    }

    if (rc == SLORA_OK) {
        rc = slora_openai_schema(sch, "tools", req, err);

        if (rc == SLORA_ERROR && err->status == 400) {
            slora_openai_tool_blame(tools, req, err);
        }
    }

    cJSON_Delete(sch);

    return rc;
}


/* A Mistral list call's optional "id", after its arguments: 9 letters
 * or digits (NeMo's template refuses any other). */
static int
slora_openai_tool_id_schema(cJSON *props)
{
    cJSON  *id;

    id = cJSON_AddObjectToObject(props, "id");

    return id != NULL && cJSON_AddStringToObject(id, "type", "string") != NULL
           && cJSON_AddStringToObject(id, "pattern", "^[A-Za-z0-9]{9}$")
              != NULL
           ? SLORA_OK : SLORA_ERROR;
}


/* 1 where a tool of the list asks for "strict": true. */
static int
slora_openai_tool_strict(cJSON *tools)
{
    cJSON  *tool;

    cJSON_ArrayForEach(tool, tools) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                             slora_openai_tool_function(tool), "strict")))
        {
            return 1;
        }
    }

    return 0;
}


/* A function's parameters as a schema of its own (none: a function of
 * none, {}); one that says nothing of its value's type ({}, a
 * description alone) is given "type": "object", since a call's
 * arguments are an object (a $ref or a union says it itself); NULL: out
 * of memory. */
static cJSON *
slora_openai_tool_params(cJSON *params)
{
    cJSON  *args;

    if (!cJSON_IsObject(params)) {
        return cJSON_Parse("{\"type\":\"object\",\"properties\":{},"
                           "\"additionalProperties\":false}");
    }

    args = cJSON_Duplicate(params, 1);

    if (args != NULL
        && cJSON_GetObjectItemCaseSensitive(args, "type") == NULL
        && cJSON_GetObjectItemCaseSensitive(args, "$ref") == NULL
        && cJSON_GetObjectItemCaseSensitive(args, "anyOf") == NULL
        && cJSON_GetObjectItemCaseSensitive(args, "oneOf") == NULL
        && cJSON_GetObjectItemCaseSensitive(args, "allOf") == NULL
        && cJSON_AddStringToObject(args, "type", "object") == NULL)
    {
        cJSON_Delete(args);
        return NULL;
    }

    return args;
}


/* The calls' schema was refused: the first function in it whose
 * parameters the compiler refuses alone is named in err, with the
 * compiler's reason and place inside them (a refusal no one function
 * causes, such as the whole's size, stays as it was). */
static void
slora_openai_tool_blame(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int                   i, refused;
    char                 *text;
    cJSON                *tool, *fn, *args;
    slora_err_t           e;
    slora_json_schema_t  *compiled;

    i = -1;

    cJSON_ArrayForEach(tool, tools) {
        i++;
        fn = slora_openai_tool_function(tool);

        if (req->tools == SLORA_OPENAI_TOOLS_NAMED
            && strcmp(cJSON_GetObjectItemCaseSensitive(fn, "name")
                          ->valuestring, req->tool_name.data) != 0)
        {
            continue;
        }

        args = slora_openai_tool_params(
                   cJSON_GetObjectItemCaseSensitive(fn, "parameters"));
        text = args != NULL ? cJSON_PrintUnformatted(args) : NULL;
        cJSON_Delete(args);

        if (text == NULL) {
            return;
        }

        compiled = slora_json_schema_parse(text, strlen(text), &e);
        refused = compiled == NULL;
        slora_json_schema_free(compiled);
        free(text);

        if (refused) {
            slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                              "tools", "tools[%d].function.parameters: %s",
                              i, e.msg);
            return;
        }
    }
}


/* Every "$ref": "#..." in a schema that now sits at base: "#" + base +
 * the rest. Values (const, enum, default, examples) are not schemas and
 * are left as they are; names is 1 where sch's members are schemas by
 * name (properties, $defs, ...), whose names are no keywords (a
 * property may be called "default"). */
static void
slora_openai_tool_refs(cJSON *sch, const char *base, int names)
{
    char   *moved;
    size_t  len;
    cJSON  *it;

    cJSON_ArrayForEach(it, sch) {
        if (!names && it->string != NULL
            && (strcmp(it->string, "const") == 0
                || strcmp(it->string, "enum") == 0
                || strcmp(it->string, "default") == 0
                || strcmp(it->string, "examples") == 0))
        {
            continue;
        }

        if (!names && it->string != NULL && strcmp(it->string, "$ref") == 0
            && cJSON_IsString(it) && it->valuestring[0] == '#')
        {
            len = strlen(base) + strlen(it->valuestring) + 1;
            moved = malloc(len);

            if (moved != NULL) {
                snprintf(moved, len, "#%s%s", base, it->valuestring + 1);
                cJSON_SetValuestring(it, moved);
                free(moved);
            }

            continue;
        }

        if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            slora_openai_tool_refs(it, base,
                                   !names && it->string != NULL
                                   && slora_openai_tool_named(it->string));
        }
    }
}


/* 1 for a keyword whose value holds schemas by name. */
static int
slora_openai_tool_named(const char *keyword)
{
    return strcmp(keyword, "properties") == 0
           || strcmp(keyword, "$defs") == 0
           || strcmp(keyword, "definitions") == 0
           || strcmp(keyword, "patternProperties") == 0
           || strcmp(keyword, "dependentSchemas") == 0;
}


/* The tools, told to the model at the end of the system message (one
 * made for them when the chat has none), each as tojson writes it. */
static int
slora_openai_tool_prompt(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    size_t                 from;
    cJSON                 *tool;
    slora_chat_msg_t      *sys;
    slora_pyjson_text_t    t;
    slora_openai_plain_t   p;

    sys = slora_openai_has_system(req) ? &req->msgs[0] : NULL;

    memset(&t, 0, sizeof(t));
    memset(&p, 0, sizeof(p));

    if (sys != NULL) {
        slora_pyjson_append(&t, sys->content, sys->content_len);
        slora_openai_plain_msg(&p, sys, 0);
        slora_pyjson_append(&t, "\n\n", 2);
    }

    slora_pyjson_append(&t, slora_openai_tools_head,
                        sizeof(slora_openai_tools_head) - 1);

    cJSON_ArrayForEach(tool, tools) {
        slora_pyjson_append(&t, "\n", 1);
        from = t.n;
        slora_pyjson_write(tool, -1, slora_pyjson_append, &t);
        slora_openai_plain(&p, from, t.n);
    }

    slora_pyjson_append(&t, slora_openai_tools_tail,
                        sizeof(slora_openai_tools_tail) - 1);

    if (sys == NULL) {
        if (slora_openai_system(req, "", 0, err) != SLORA_OK) {
            free(t.buf);
            free(p.span);
            return SLORA_ERROR;
        }

        sys = &req->msgs[0];
    }

    return slora_openai_tool_verbatim(&t, &p, sys, req, err);
}


/*
 * A message's part in function calling, after its content was read: an
 * assistant's tool_calls as its template writes them
 * (slora_openai_tool_calls); in Hermes' format a tool message's content
 * goes inside <tool_response> tags, in a user turn, joined to the tool
 * message before it (prev, or NULL) as one turn (in Llama 3.1's it is a
 * turn of its own, which the template writes; in Mistral's, one in their
 * marks). SLORA_DONE: the message was joined to prev.
 */
int
slora_openai_tool_message(cJSON *m, size_t i, slora_chat_msg_t *cm,
    slora_chat_msg_t *prev, slora_openai_req_t *req, slora_openai_err_t *err)
{
    cJSON         *calls, *id;
    const char    *text;
    slora_span_t  *sp;

    if (cm->role_len == 4 && memcmp(cm->role, "tool", 4) == 0) {
        id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");

        if (id != NULL && !cJSON_IsString(id)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "messages",
                                     "messages[%zu].tool_call_id must be a "
                                     "string", i);
        }

        if (req->tool_format == SLORA_OPENAI_TOOLFMT_LLAMA3) {
            /* a turn of its own, which the template writes */
            return SLORA_OK;
        }

        if (req->tool_format != SLORA_OPENAI_TOOLFMT_HERMES) {
            /* Mistral's: its own mark, written as it is */
            return slora_openai_mistral_result(m, i, cm, req, err);
        }

        cm->role = "user";
        cm->role_len = 4;

        if (prev != NULL) {
            /* one more in a run: joined to the first's message */
            return slora_openai_tool_join(req, prev, cm) == SLORA_OK
                   ? SLORA_DONE : slora_openai_nomem(err);
        }

        text = slora_openai_cat(req, "<tool_response>\n", 16, cm->content,
                                cm->content_len, "\n</tool_response>", 17);
        sp = slora_openai_alloc(req, sizeof(slora_span_t));
        if (text == NULL || sp == NULL) {
            return slora_openai_nomem(err);
        }

        /* the tags the format's, the result the request's */
        sp->off = 16;
        sp->len = cm->content_len;
        cm->content = text;
        cm->content_len = 16 + cm->content_len + 17;
        cm->made = 1;
        cm->plain = sp;
        cm->n_plain = 1;
        req->tool_run = NULL;
        req->tool_run_plain = NULL;
        return SLORA_OK;
    }

    calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");

    if (calls == NULL || cJSON_IsNull(calls)) {
        return SLORA_OK;
    }

    if (!cJSON_IsArray(calls)
        || !(cm->role_len == 9 && memcmp(cm->role, "assistant", 9) == 0))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "messages", "messages[%zu].tool_calls must "
                                 "be an array, in an assistant message", i);
    }

    if (cJSON_GetArraySize(calls) == 0) {
        return SLORA_OK;
    }

    return slora_openai_tool_calls(calls, i, cm, req, err);
}


/*
 * Llama 3.1's tools: its template's words, then each tool as
 * json.dumps(tool, indent=4) and a blank line, then the first user
 * message's text trimmed, all as that message's content, verbatim; the
 * system header says "Environment: ipython" (SLORA_CHAT_TOOLS).
 */
static int
slora_openai_tool_prompt_llama3(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    uint32_t              first;
    const char           *c;
    size_t                cl, from;
    cJSON                *tool;
    slora_chat_msg_t     *m;
    slora_pyjson_text_t   t;
    slora_openai_plain_t  p;

    first = slora_openai_has_system(req);

    if (first >= req->n_msgs
        || !(req->msgs[first].role_len == 4
             && memcmp(req->msgs[first].role, "user", 4) == 0))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "messages", "this model's chat template "
                                 "(Llama 3.1's tool format) puts the tools "
                                 "into the first user message: the messages "
                                 "must begin with one (after a system "
                                 "message)");
    }

    m = &req->msgs[first];
    c = m->content;
    cl = m->content_len;
    slora_chat_trim(&c, &cl);

    memset(&t, 0, sizeof(t));
    memset(&p, 0, sizeof(p));
    slora_pyjson_append(&t, slora_openai_llama3_head,
                        sizeof(slora_openai_llama3_head) - 1);

    cJSON_ArrayForEach(tool, tools) {
        from = t.n;
        slora_pyjson_write(tool, 4, slora_pyjson_append, &t);
        slora_openai_plain(&p, from, t.n);
        slora_pyjson_append(&t, "\n\n", 2);
    }

    from = t.n;
    slora_pyjson_append(&t, c, cl);
    slora_openai_plain(&p, from, t.n);

    if (slora_openai_tool_verbatim(&t, &p, m, req, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    req->chat_flags |= SLORA_CHAT_TOOLS;

    return SLORA_OK;
}


/*
 * An assistant's tool_calls as its template writes them, each call
 * {"name": "f", "arguments": ARGS}: Hermes' after the message's text,
 * each in <tool_call> tags; Llama 3.1's the whole message, one call (its
 * template raises on more), its key "parameters", the text not rendered
 * (its template drops it); Mistral's in theirs
 * (engine/slora_openai_mistral.c). ARGS: the arguments parsed (a
 * string's JSON text, "" as {}) and written as json.dumps writes them,
 * as vLLM parses them before its template's tojson sees them.
 */
static int
slora_openai_tool_calls(cJSON *calls, size_t i, slora_chat_msg_t *cm,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    int                   llama3, k, rc;
    size_t                from;
    cJSON                *c, *fn, *name, *a, *args, *parsed;
    const char           *code, *fail;
    slora_pyjson_text_t   t;
    slora_openai_plain_t  p;

    llama3 = req->tool_format == SLORA_OPENAI_TOOLFMT_LLAMA3;

    if (llama3 && cJSON_GetArraySize(calls) != 1) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "messages", "messages[%zu] makes %d tool "
                                 "calls: this model's chat template "
                                 "(Llama 3.1's tool format) takes one a "
                                 "message", i, cJSON_GetArraySize(calls));
    }

    parsed = cJSON_CreateArray();
    if (parsed == NULL) {
        return slora_openai_nomem(err);
    }

    code = "invalid_value";
    fail = NULL;

    cJSON_ArrayForEach(c, calls) {
        fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");

        /* a custom tool's call ({"type": "custom", "custom": {"name",
         * "input"}}), OpenAI's, of tools this server does not take */
        if (slora_openai_tool_custom(c)) {
            code = "unsupported_parameter";
            fail = " of type \"custom\" are not supported by this "
                   "server (\"function\" calls are)";
            break;
        }

        if (!cJSON_IsString(name)
            || !slora_openai_tool_name_ok(name->valuestring)
            || !(cJSON_IsString(a) || cJSON_IsObject(a)))
        {
            code = "invalid_type";
            fail = " must each be {\"function\": {\"name\", "
                   "\"arguments\"}}";
            break;
        }

        if (cJSON_IsString(a) && slora_json_holds_nul(a->valuestring)) {
            code = "invalid_value";
            fail = "' arguments hold a NUL character (\\u0000) in a string";
            break;
        }

        args = !cJSON_IsString(a) ? cJSON_Duplicate(a, 1)
               : a->valuestring[0] == '\0' ? cJSON_CreateObject()
               : cJSON_Parse(a->valuestring);

        if (args == NULL) {
            fail = "' arguments are not JSON";
            break;
        }

        if (cJSON_IsString(a)) {
            slora_pyjson_numbers(args, a->valuestring,
                                 strlen(a->valuestring));
        }

        if (slora_pyjson_dict(args) != 0) {
            cJSON_Delete(args);
            fail = "' arguments: out of memory";
            break;
        }

        cJSON_AddItemToArray(parsed, args);

        /* escapes may stand for what is no UTF-8 (a lone surrogate) */
        memset(&t, 0, sizeof(t));
        slora_pyjson_write(args, -1, slora_pyjson_append, &t);
        k = !t.failed && !slora_utf8_text_valid(t.buf, t.n);
        free(t.buf);

        if (k) {
            code = "invalid_utf8";
            fail = "' arguments are not valid UTF-8";
            break;
        }
    }

    if (fail != NULL) {
        cJSON_Delete(parsed);
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, code,
                                 "messages", "messages[%zu].tool_calls%s",
                                 i, fail);
    }

    if (req->tool_format != SLORA_OPENAI_TOOLFMT_HERMES && !llama3) {
        rc = slora_openai_mistral_calls(calls, parsed, i, cm, req, err);
        cJSON_Delete(parsed);
        return rc;
    }

    memset(&t, 0, sizeof(t));
    memset(&p, 0, sizeof(p));
    k = 0;

    if (!llama3) {
        slora_pyjson_append(&t, cm->content, cm->content_len);
        slora_openai_plain_msg(&p, cm, 0);
    }

    args = parsed->child;

    cJSON_ArrayForEach(c, calls) {
        name = cJSON_GetObjectItemCaseSensitive(
                   cJSON_GetObjectItemCaseSensitive(c, "function"), "name");

        if (!llama3) {
            slora_pyjson_append(&t, "\n",
                                cm->content_len > cm->lead || k ? 1 : 0);
            slora_pyjson_append(&t, "<tool_call>\n", strlen("<tool_call>\n"));
        }

        slora_pyjson_append(&t, "{\"name\": \"", strlen("{\"name\": \""));
        from = t.n;
        slora_pyjson_append(&t, name->valuestring, strlen(name->valuestring));
        slora_openai_plain(&p, from, t.n);
        slora_pyjson_append(&t, llama3 ? "\", \"parameters\": "
                                       : "\", \"arguments\": ",
                            strlen(llama3 ? "\", \"parameters\": "
                                          : "\", \"arguments\": "));
        from = t.n;
        slora_pyjson_write(args, -1, slora_pyjson_append, &t);
        slora_openai_plain(&p, from, t.n);
        slora_pyjson_append(&t, "}", 1);

        if (!llama3) {
            slora_pyjson_append(&t, "\n</tool_call>",
                                strlen("\n</tool_call>"));
        }

        args = args->next;
        k++;
    }

    cJSON_Delete(parsed);

    return slora_openai_tool_verbatim(&t, &p, cm, req, err);
}


int
slora_openai_tool_verbatim(slora_pyjson_text_t *t, slora_openai_plain_t *p,
    slora_chat_msg_t *m, slora_openai_req_t *req, slora_openai_err_t *err)
{
    slora_span_t  *sp;

    m->content = t->failed ? NULL : slora_openai_copy(req, t->buf, t->n);
    m->content_len = t->n;
    m->verbatim = 1;
    m->made = 1;
    m->plain = NULL;
    m->n_plain = 0;

    sp = NULL;

    if (p->n > 0 && !p->failed) {
        sp = slora_openai_alloc(req, p->n * sizeof(slora_span_t));

        if (sp != NULL) {
            memcpy(sp, p->span, p->n * sizeof(slora_span_t));
            m->plain = sp;
            m->n_plain = p->n;
        }
    }

    free(t->buf);
    free(p->span);

    return m->content != NULL && !p->failed && (p->n == 0 || sp != NULL)
           ? SLORA_OK : slora_openai_nomem(err);
}


void
slora_openai_plain(slora_openai_plain_t *p, size_t from, size_t to)
{
    size_t         cap;
    slora_span_t  *sp;

    if (from >= to || p->failed) {
        return;
    }

    if (p->n > 0 && p->span[p->n - 1].off + p->span[p->n - 1].len == from) {
        p->span[p->n - 1].len += to - from;
        return;
    }

    if (p->n == p->cap) {
        cap = p->cap ? 2 * p->cap : 8;
        sp = realloc(p->span, cap * sizeof(slora_span_t));

        if (sp == NULL) {
            p->failed = 1;
            return;
        }

        p->span = sp;
        p->cap = cap;
    }

    p->span[p->n].off = from;
    p->span[p->n].len = to - from;
    p->n++;
}


void
slora_openai_plain_msg(slora_openai_plain_t *p, const slora_chat_msg_t *m,
    size_t at)
{
    size_t  i;

    if (!m->made) {
        slora_openai_plain(p, at, at + m->content_len);
        return;
    }

    for (i = 0; i < m->n_plain; i++) {
        slora_openai_plain(p, at + m->plain[i].off,
                           at + m->plain[i].off + m->plain[i].len);
    }
}


int
slora_openai_tool_name_ok(const char *name)
{
    size_t  i;

    for (i = 0; name[i] != '\0'; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '_' || name[i] == '-' || name[i] == '.'))
        {
            return 0;
        }
    }

    return i > 0 && i <= SLORA_TOOL_NAME_MAX;
}


/* A call of OpenAI's custom type. */
static int
slora_openai_tool_custom(cJSON *call)
{
    cJSON  *type;

    type = cJSON_GetObjectItemCaseSensitive(call, "type");

    return cJSON_IsString(type) && strcmp(type->valuestring, "custom") == 0;
}


/* A checked tool's function object. */
static cJSON *
slora_openai_tool_function(cJSON *tool)
{
    return cJSON_GetObjectItemCaseSensitive(tool, "function");
}


/*
 * A tool result joined to the run's message before it (Hermes: one user
 * turn of <tool_response> blocks). The run's text grows in a buffer of
 * the request that doubles, not in a new copy a result: a run of K
 * results costs its size, not K times it; so do its plain spans, one a
 * result.
 */
static int
slora_openai_tool_join(slora_openai_req_t *req, slora_chat_msg_t *prev,
    slora_chat_msg_t *cm)
{
    char          *p;
    size_t         need, cap;
    slora_span_t  *sp;

    if (req->tool_run_plain != prev->plain
        || prev->n_plain + 1 > req->tool_run_plain_cap)
    {
        cap = prev->n_plain < 8 ? 16 : 2 * (prev->n_plain + 1);

        sp = slora_openai_alloc(req, cap * sizeof(slora_span_t));
        if (sp == NULL) {
            return SLORA_ERROR;
        }

        memcpy(sp, prev->plain, prev->n_plain * sizeof(slora_span_t));
        prev->plain = sp;
        req->tool_run_plain = sp;
        req->tool_run_plain_cap = cap;
    }

    need = prev->content_len + 1 + 16 + cm->content_len + 17 + 1;

    if (req->tool_run != prev->content || need > req->tool_run_cap) {
        cap = need < 256 ? 512 : 2 * need;

        p = slora_openai_alloc(req, cap);
        if (p == NULL) {
            return SLORA_ERROR;
        }

        memcpy(p, prev->content, prev->content_len);
        prev->content = p;
        req->tool_run = p;
        req->tool_run_cap = cap;
    }

    p = req->tool_run + prev->content_len;
    memcpy(p, "\n<tool_response>\n", 17);
    p += 17;
    req->tool_run_plain[prev->n_plain].off = (size_t) (p - req->tool_run);
    req->tool_run_plain[prev->n_plain].len = cm->content_len;
    prev->n_plain++;
    memcpy(p, cm->content, cm->content_len);
    p += cm->content_len;
    memcpy(p, "\n</tool_response>", 17);
    p += 17;
    *p = '\0';

    prev->content_len = p - req->tool_run;

    return SLORA_OK;
}


/* a, b and c joined, NUL-terminated, in req's arena. */
static char *
slora_openai_cat(slora_openai_req_t *req, const char *a, size_t a_len,
    const char *b, size_t b_len, const char *c, size_t c_len)
{
    char  *p;

    p = slora_openai_alloc(req, a_len + b_len + c_len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, a, a_len);
    memcpy(p + a_len, b, b_len);
    memcpy(p + a_len + b_len, c, c_len);
    p[a_len + b_len + c_len] = '\0';

    return p;
}
