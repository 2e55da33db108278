/*
 * slora_openai_responses.c: OpenAI's Responses API request (POST
 * /v1/responses): instructions and input (a string, or items: messages, the
 * function calls an earlier answer made and their outputs),
 * max_output_tokens, temperature, top_p, text.format (plain text, a JSON
 * object, or a JSON schema), function tools with tool_choice and
 * parallel_tool_calls, stream; vLLM's sampling fields, its guided_regex,
 * guided_choice, guided_grammar and guided_json, and
 * chat_template_kwargs as on chat;
 * where the server keeps responses, previous_response_id or
 * conversation (the caller's lookup gives the conversation so far; a
 * response made in a conversation is continued by that, not by its id)
 * and background. What needs a store where none is kept
 * (previous_response_id, conversation, background), or a model of another
 * kind (reasoning, images, files, built-in tools, moderation) is refused
 * with 400 unsupported_parameter, naming it, and so is a chat field the
 * Responses API names otherwise (max_tokens, response_format, ...),
 * saying where it moved: nothing that would change the answer is passed
 * over. include's "message.output_text.logprobs" and top_logprobs give
 * the message's log-probabilities. The input items are read by
 * slora_openai_resp_items.c.
 *
 * The one idea: a Responses request is a chat request in other clothes,
 * so it is checked in its own terms and then rewritten as the chat
 * request it means (a cJSON tree) and parsed by slora_openai.c like any
 * other: one set of checks for messages, sampling, schemas and tools.
 * Errors the chat parser finds name the Responses field where one maps.
 * The fields the answer echoes (instructions, tools, text, ...) are kept
 * as one compact JSON fragment, req->resp_echo, for the worker to paste
 * into the response object, and this request's input messages (not the
 * instructions, nor the conversation of the response it continues, which
 * the store keeps already) as req->resp_conv, for the worker to store
 * with the answer.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "slora_openai_int.h"


#define SLORA_OPENAI_RESP_ITEMS  4096   /* input items a request may send */


/* Which input item each chat message was made from, for errors the
 * chat parser finds in one: the messages before input (the
 * instructions, a stored conversation) are first, the next are made[0]
 * on (n of them). */
typedef struct {
    int                   first;
    int                   n;
    int                   made[SLORA_OPENAI_RESP_ITEMS];
} slora_openai_resp_map_t;


static int slora_openai_resp_refuse(cJSON *root, int stored,
    slora_openai_err_t *err);
static int slora_openai_resp_prev(cJSON *root, cJSON *msgs,
    slora_openai_prev_pt prev, void *prev_data, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_resp_input(cJSON *root, cJSON *msgs,
    slora_openai_prev_pt prev, void *prev_data, slora_openai_resp_map_t *map,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int slora_openai_resp_conversation(cJSON *root, cJSON *msgs,
    slora_openai_prev_pt prev, void *prev_data, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_resp_splice(cJSON *msgs, cJSON *conv,
    slora_openai_err_t *err);
static int slora_openai_resp_conv(cJSON *msgs, int skip,
    slora_openai_req_t *req, slora_openai_err_t *err);
static int slora_openai_resp_tools(cJSON *root, cJSON *chat,
    slora_openai_err_t *err);
static int slora_openai_resp_format(cJSON *root, cJSON *chat,
    slora_openai_err_t *err);
static int slora_openai_resp_logprobs(cJSON *root, cJSON *chat,
    slora_openai_err_t *err);
static int slora_openai_resp_echo(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_resp_background(cJSON *root, int stored,
    slora_openai_req_t *req, slora_openai_err_t *err);
static void slora_openai_resp_rename(slora_openai_err_t *err,
    const slora_openai_resp_map_t *map);


int
slora_openai_parse_responses(const char *body, size_t len,
    const slora_openai_limits_t *lim, slora_openai_prev_pt prev,
    void *prev_data, slora_openai_req_t *req, slora_openai_err_t *err)
{
    int                       rc;
    cJSON                    *root, *chat, *msgs, *item;
    size_t                    i;
    unsigned                  store;
    slora_openai_resp_map_t  *map;

    /* what the chat request takes as it is */
    static const char  *same[] = {
        "model", "temperature", "top_p", "stream", "parallel_tool_calls",
        "seed", "top_k", "min_p", "repetition_penalty", "frequency_penalty",
        "presence_penalty", "logit_bias", "stop", "stop_token_ids",
        "min_tokens", "ignore_eos", "skip_special_tokens", "guided_regex",
        "guided_choice", "guided_json", "guided_grammar",
        "chat_template_kwargs", "user", "allowed_token_ids", "bad_words",
        "include_stop_str_in_output", "cache_salt", "priority",
        "structured_outputs",
        /* vLLM's that chat refuses, refused so here too */
        "guided_whitespace_pattern"
    };

    slora_openai_defaults(req, SLORA_OPENAI_CHAT);
    req->responses = 1;

    root = slora_openai_root(body, len, err);
    if (root == NULL) {
        return SLORA_ERROR;
    }

    rc = SLORA_ERROR;
    msgs = NULL;

    chat = cJSON_CreateObject();
    map = calloc(1, sizeof(slora_openai_resp_map_t));

    if (chat == NULL || map == NULL) {
        slora_openai_nomem(err);
        goto done;
    }

    if (slora_openai_resp_refuse(root, prev != NULL, err) != SLORA_OK) {
        goto done;
    }

    for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        item = cJSON_GetObjectItemCaseSensitive(root, same[i]);

        if (item != NULL
            && !cJSON_AddItemToObject(chat, same[i],
                                      cJSON_Duplicate(item, 1)))
        {
            slora_openai_nomem(err);
            goto done;
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "max_output_tokens");
    if (item != NULL
        && !cJSON_AddItemToObject(chat, "max_tokens",
                                  cJSON_Duplicate(item, 1)))
    {
        slora_openai_nomem(err);
        goto done;
    }

    msgs = cJSON_AddArrayToObject(chat, "messages");
    if (msgs == NULL) {
        slora_openai_nomem(err);
        goto done;
    }

    rc = slora_openai_resp_input(root, msgs, prev, prev_data, map, req,
                                 err);

    if (rc != SLORA_OK) {
        /* SLORA_AGAIN: the lookup stopped the parse */
        goto done;
    }

    rc = SLORA_ERROR;

    if (slora_openai_resp_tools(root, chat, err) != SLORA_OK
        || slora_openai_resp_format(root, chat, err) != SLORA_OK
        || slora_openai_resp_logprobs(root, chat, err) != SLORA_OK)
    {
        goto done;
    }

    if (slora_openai_fields(chat, SLORA_OPENAI_CHAT, lim, req, err)
        != SLORA_OK)
    {
        slora_openai_resp_rename(err, map);
        goto done;
    }

    store = 1;

    if (slora_openai_bool(root, "store", &store, err) != SLORA_OK) {
        goto done;
    }

    req->resp_store = store;

    if (slora_openai_resp_background(root, prev != NULL, req, err)
        != SLORA_OK)
    {
        goto done;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "truncation");
    if (item != NULL && !cJSON_IsNull(item)
        && !slora_openai_resp_is(item, "auto")
        && !slora_openai_resp_is(item, "disabled"))
    {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                          "truncation", "truncation must be \"auto\" or"
                          " \"disabled\"");
        goto done;
    }

    req->truncate = slora_openai_resp_is(item, "auto");

    rc = slora_openai_resp_echo(root, req, err);

done:

    free(map);
    cJSON_Delete(chat);
    cJSON_Delete(root);

    return rc;
}


/* background: true: the answer goes to the store, so there must be one
 * (stored: the server keeps responses) and the request must let it keep
 * this one. */
static int
slora_openai_resp_background(cJSON *root, int stored,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    unsigned  background;

    background = 0;

    if (slora_openai_bool(root, "background", &background, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (!background) {
        return SLORA_OK;
    }

    if (!stored) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", "background",
                                 "background is not supported by this"
                                 " server: it keeps no responses"
                                 " (slora_responses_store) for the answer"
                                 " to go to");
    }

    if (!req->resp_store) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "background", "background requires store:"
                                 " the answer is read from the stored"
                                 " response");
    }

    req->resp_background = 1;

    return SLORA_OK;
}


/* The fields a server of a text model cannot honour (stored: it keeps
 * responses), and chat's fields where the Responses API has others. */
static int
slora_openai_resp_refuse(cJSON *root, int stored, slora_openai_err_t *err)
{
    size_t       i;
    cJSON       *item, *sub;
    const char  *why;

    static const struct {
        const char  *name;
        const char  *why;
    } fields[] = {
        { "previous_response_id", "this server keeps no responses"
          " (slora_responses_store); send the conversation's items in"
          " input" },
        { "conversation", "this server keeps no conversations"
          " (slora_responses_store); send the conversation's items in"
          " input" },
        { "prompt", "this server keeps no prompt templates" },
        { "context_management", "this server does not compact contexts" },
        { "max_tool_calls", "use parallel_tool_calls false for at most one"
          " call" },
        { "moderation", "this server has no moderation model to score or"
          " block the input and the answer with" },
    };

    static const struct {
        const char  *name;
        const char  *why;
    } moved[] = {
        { "messages", "this parameter has moved to 'input'" },
        { "max_tokens", "this parameter has moved to 'max_output_tokens'" },
        { "max_completion_tokens", "this parameter has moved to"
          " 'max_output_tokens'" },
        { "response_format", "this parameter has moved to 'text.format'" },
        { "logprobs", "log-probabilities are asked for with include's"
          " 'message.output_text.logprobs' or top_logprobs" },
        { "n", "a response has one answer" },
        { "functions", "functions are tools of type 'function'" },
        { "function_call", "this parameter has moved to 'tool_choice'" },
        { "continue_final_message", "an answer is a new assistant turn,"
          " not the last message's continuation" },
        { "add_generation_prompt", "an answer is a new assistant turn" },
    };

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        item = cJSON_GetObjectItemCaseSensitive(root, fields[i].name);

        /* previous_response_id and conversation need the store */
        if (item == NULL || cJSON_IsNull(item)
            || (stored && i <= 1))
        {
            continue;
        }

        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", fields[i].name,
                                 "%s is not supported by this server: %s",
                                 fields[i].name, fields[i].why);
    }

    /* chat's names for what the Responses API names otherwise: not
     * passed over (a client's max_tokens or response_format unheeded
     * would change the answer), but named with where they moved, as
     * OpenAI does */
    for (i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
        item = cJSON_GetObjectItemCaseSensitive(root, moved[i].name);

        /* what asks for nothing but what the Responses API does */
        if (item == NULL || cJSON_IsNull(item)
            || (cJSON_IsFalse(item)
                && (strcmp(moved[i].name, "logprobs") == 0
                    || strcmp(moved[i].name, "continue_final_message")
                       == 0))
            || (cJSON_IsTrue(item)
                && strcmp(moved[i].name, "add_generation_prompt") == 0)
            || (strcmp(moved[i].name, "n") == 0 && cJSON_IsNumber(item)
                && item->valuedouble == 1))
        {
            continue;
        }

        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", moved[i].name,
                                 "Unsupported parameter: '%s'. In the"
                                 " Responses API, %s", moved[i].name,
                                 moved[i].why);
    }

    /* a text model: no reasoning effort, no verbosity */
    why = NULL;
    item = cJSON_GetObjectItemCaseSensitive(root, "reasoning");

    if (item != NULL && !cJSON_IsNull(item)) {
        cJSON_ArrayForEach(sub, item) {
            if (!cJSON_IsNull(sub)) {
                why = "reasoning";
            }
        }

        if (!cJSON_IsObject(item)) {
            why = "reasoning";
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "text");
    sub = cJSON_IsObject(item)
          ? cJSON_GetObjectItemCaseSensitive(item, "verbosity") : NULL;

    if (sub != NULL && !cJSON_IsNull(sub)
        && !slora_openai_resp_is(sub, "medium"))
    {
        if (!slora_openai_resp_is(sub, "low")
            && !slora_openai_resp_is(sub, "high"))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "text.verbosity",
                                     "text.verbosity must be \"low\","
                                     " \"medium\" or \"high\"");
        }

        why = "text.verbosity";
    }

    if (why != NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", why,
                                 "%s is not supported by this server's"
                                 " model%s", why,
                                 strcmp(why, "text.verbosity") == 0
                                 ? " (but \"medium\", the default)" : "");
    }

    return SLORA_OK;
}


/* instructions, the previous response's conversation or the
 * conversation's, then input, as chat messages (map: the items they
 * came from); req->resp_conv the input's alone. */
static int
slora_openai_resp_input(cJSON *root, cJSON *msgs, slora_openai_prev_pt prev,
    void *prev_data, slora_openai_resp_map_t *map, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int      skip, rc;
    cJSON   *input, *it, *m;

    it = cJSON_GetObjectItemCaseSensitive(root, "instructions");

    if (it != NULL && !cJSON_IsNull(it) && !cJSON_IsString(it)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "instructions",
                                 "instructions must be a string");
    }

    /* "" is no instructions, as null is: vLLM adds the system message
     * only where instructions is truthy, so an empty one is not
     * rendered, and the template writes its own default where it has
     * one */
    if (cJSON_IsString(it) && it->valuestring[0] != '\0') {
        m = cJSON_CreateObject();
        if (m == NULL || !cJSON_AddItemToArray(msgs, m)
            || cJSON_AddStringToObject(m, "role", "system") == NULL
            || cJSON_AddStringToObject(m, "content", it->valuestring) == NULL)
        {
            return slora_openai_nomem(err);
        }
    }

    rc = slora_openai_resp_prev(root, msgs, prev, prev_data, req, err);

    if (rc == SLORA_OK) {
        rc = slora_openai_resp_conversation(root, msgs, prev, prev_data, req,
                                            err);
    }

    if (rc != SLORA_OK) {
        return rc;
    }

    skip = cJSON_GetArraySize(msgs);
    map->first = skip;

    input = cJSON_GetObjectItemCaseSensitive(root, "input");

    if (cJSON_IsString(input)) {
        m = cJSON_CreateObject();
        if (m == NULL || !cJSON_AddItemToArray(msgs, m)
            || cJSON_AddStringToObject(m, "role", "user") == NULL
            || cJSON_AddStringToObject(m, "content", input->valuestring)
               == NULL)
        {
            return slora_openai_nomem(err);
        }

        return slora_openai_resp_conv(msgs, skip, req, err);
    }

    if (!cJSON_IsArray(input) || cJSON_GetArraySize(input) == 0
        || cJSON_GetArraySize(input) > SLORA_OPENAI_RESP_ITEMS)
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 input ? "invalid_type"
                                       : "missing_required_parameter",
                                 "input", "input must be a string or a"
                                 " non-empty array of up to %d items",
                                 SLORA_OPENAI_RESP_ITEMS);
    }

    /* msgs holds all the input follows: each output's call is there */
    if (slora_openai_resp_items(input, "input", msgs, 1, map->made, &map->n,
                                err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    return slora_openai_resp_conv(msgs, skip, req, err);
}


/*
 * previous_response_id: the stored conversation's messages, appended
 * after the instructions and before the input (which are this
 * request's alone); an answer that only reasoned left out, as
 * slora_openai_conv_live leaves it out of a conversation.
 */
static int
slora_openai_resp_prev(cJSON *root, cJSON *msgs, slora_openai_prev_pt prev,
    void *prev_data, slora_openai_req_t *req, slora_openai_err_t *err)
{
    int          rc;
    size_t       conv_len;
    cJSON       *id, *conv, *m;
    const char  *conv_text;

    id = cJSON_GetObjectItemCaseSensitive(root, "previous_response_id");

    if (id == NULL || cJSON_IsNull(id)) {
        return SLORA_OK;
    }

    conv = cJSON_GetObjectItemCaseSensitive(root, "conversation");

    if (conv != NULL && !cJSON_IsNull(conv)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "mutually_exclusive_parameters",
                                 "conversation", "conversation and"
                                 " previous_response_id cannot be used"
                                 " together: a response continues one or"
                                 " the other");
    }

    if (!cJSON_IsString(id)
        || slora_openai_string(id, "previous_response_id", &req->resp_prev,
                               req, err) != SLORA_OK)
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "previous_response_id",
                                 "previous_response_id must be a string");
    }

    conv = NULL;
    rc = prev(prev_data, SLORA_OPENAI_PREVIOUS, req->resp_prev.data,
              req->resp_prev.len, &conv_text, &conv_len);

    if (rc == SLORA_AGAIN) {
        return SLORA_AGAIN;
    }

    if (rc == SLORA_OK) {
        conv = cJSON_ParseWithLength(conv_text, conv_len);
    }

    if (rc == SLORA_BUSY) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "previous_response_id",
                                 "Previous response with id '%.*s' has no"
                                 " answer to continue: it is being answered"
                                 " in the background, or was cancelled or"
                                 " failed",
                                 slora_utf8_cut(req->resp_prev.data, 64),
                                 req->resp_prev.data);
    }

    if (rc != SLORA_OK || !cJSON_IsArray(conv)) {
        cJSON_Delete(conv);
        return slora_openai_fail(err, 404, SLORA_OPENAI_BAD,
                                 "previous_response_not_found",
                                 "previous_response_id",
                                 "Previous response with id '%.*s' not"
                                 " found",
                                 slora_utf8_cut(req->resp_prev.data, 64),
                                 req->resp_prev.data);
    }

    /* a response made in a conversation is stored with its own turn and
     * the conversation's id (the worker's mark, first): the conversation
     * holds the rest, and is what continues it */
    m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(conv, 0),
                                         "conversation");

    if (cJSON_IsString(m)) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                          "previous_response_id", "Previous response"
                          " '%.*s' was made in conversation '%.*s': continue"
                          " it with conversation, not previous_response_id",
                          slora_utf8_cut(req->resp_prev.data, 64),
                          req->resp_prev.data,
                          slora_utf8_cut(m->valuestring, 64),
                          m->valuestring);
        cJSON_Delete(conv);
        return SLORA_ERROR;
    }

    /* as a conversation's: an answer that only reasoned is no turn */
    if (slora_openai_conv_live(conv, err) != SLORA_OK) {
        cJSON_Delete(conv);
        return SLORA_ERROR;
    }

    return slora_openai_resp_splice(msgs, conv, err);
}


/*
 * conversation (its id, or {"id"}): the stored conversation's messages
 * (less the items removed from it) after the instructions and before
 * the input; req->resp_conversation its id, for the worker to add the
 * input and the answer to.
 */
static int
slora_openai_resp_conversation(cJSON *root, cJSON *msgs,
    slora_openai_prev_pt prev, void *prev_data, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int          rc;
    size_t       conv_len;
    cJSON       *item, *id, *conv;
    const char  *conv_text;

    item = cJSON_GetObjectItemCaseSensitive(root, "conversation");

    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    id = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "id")
                              : item;

    if (!cJSON_IsString(id)
        || slora_openai_string(id, "conversation", &req->resp_conversation,
                               req, err) != SLORA_OK)
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "conversation", "conversation must be a"
                                 " conversation's id or an object with its"
                                 " id");
    }

    conv = NULL;
    rc = prev(prev_data, SLORA_OPENAI_CONVERSATION,
              req->resp_conversation.data, req->resp_conversation.len,
              &conv_text, &conv_len);

    if (rc == SLORA_AGAIN) {
        return SLORA_AGAIN;
    }

    if (rc == SLORA_OK) {
        conv = cJSON_ParseWithLength(conv_text, conv_len);
    }

    if (rc != SLORA_OK || !cJSON_IsArray(conv)) {
        cJSON_Delete(conv);
        return slora_openai_fail(err, 404, SLORA_OPENAI_BAD, "not_found",
                                 "conversation", "Conversation with id"
                                 " '%.*s' not found",
                                 slora_utf8_cut(
                                     req->resp_conversation.data, 64),
                                 req->resp_conversation.data);
    }

    if (slora_openai_conv_live(conv, err) != SLORA_OK) {
        cJSON_Delete(conv);
        return SLORA_ERROR;
    }

    return slora_openai_resp_splice(msgs, conv, err);
}


/* conv's messages moved to the end of msgs, and conv deleted. */
static int
slora_openai_resp_splice(cJSON *msgs, cJSON *conv, slora_openai_err_t *err)
{
    cJSON  *m;

    while ((m = cJSON_DetachItemFromArray(conv, 0)) != NULL) {
        if (!cJSON_AddItemToArray(msgs, m)) {
            cJSON_Delete(m);
            cJSON_Delete(conv);
            return slora_openai_nomem(err);
        }
    }

    cJSON_Delete(conv);

    return SLORA_OK;
}


/* req->resp_conv: the messages but the first skip (the instructions and
 * the previous response's conversation), printed compact. */
static int
slora_openai_resp_conv(cJSON *msgs, int skip, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    char   *text;
    cJSON  *conv, *m;

    conv = cJSON_CreateArray();
    if (conv == NULL) {
        return slora_openai_nomem(err);
    }

    cJSON_ArrayForEach(m, msgs) {
        if (skip) {
            skip--;
            continue;
        }

        if (!cJSON_AddItemReferenceToArray(conv, m)) {
            cJSON_Delete(conv);
            return slora_openai_nomem(err);
        }
    }

    text = cJSON_PrintUnformatted(conv);
    cJSON_Delete(conv);

    if (text == NULL) {
        return slora_openai_nomem(err);
    }

    req->resp_conv.len = strlen(text);
    req->resp_conv.data = slora_openai_copy(req, text, req->resp_conv.len);
    free(text);

    return req->resp_conv.data != NULL ? SLORA_OK : slora_openai_nomem(err);
}


/* tools ({"type": "function", "name", "parameters", ...}, flat) and
 * tool_choice ({"type": "function", "name"} for one) in chat's shape. */
static int
slora_openai_resp_tools(cJSON *root, cJSON *chat, slora_openai_err_t *err)
{
    size_t       i, k;
    cJSON       *tools, *tool, *type, *ct, *fn, *choice, *item;

    static const char  *keep[] = {
        "name", "description", "parameters", "strict"
    };

    tools = cJSON_GetObjectItemCaseSensitive(root, "tools");

    if (tools != NULL && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "tools",
                                     "tools must be an array");
        }

        ct = cJSON_AddArrayToObject(chat, "tools");
        if (ct == NULL) {
            return slora_openai_nomem(err);
        }

        i = 0;

        cJSON_ArrayForEach(tool, tools) {
            type = cJSON_GetObjectItemCaseSensitive(tool, "type");

            if (!slora_openai_resp_is(type, "function")) {
                return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                         cJSON_IsString(type)
                                         ? "unsupported_parameter"
                                         : "invalid_type",
                                         "tools", "tools[%zu]: only"
                                         " function tools are supported by"
                                         " this server", i);
            }

            item = cJSON_CreateObject();

            if (item == NULL || !cJSON_AddItemToArray(ct, item)
                || cJSON_AddStringToObject(item, "type", "function") == NULL
                || (fn = cJSON_AddObjectToObject(item, "function")) == NULL)
            {
                cJSON_Delete(item);
                return slora_openai_nomem(err);
            }

            for (k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
                type = cJSON_GetObjectItemCaseSensitive(tool, keep[k]);

                if (type != NULL
                    && !cJSON_AddItemToObject(fn, keep[k],
                                              cJSON_Duplicate(type, 1)))
                {
                    return slora_openai_nomem(err);
                }
            }

            i++;
        }
    }

    choice = cJSON_GetObjectItemCaseSensitive(root, "tool_choice");

    if (choice == NULL || cJSON_IsNull(choice)) {
        return SLORA_OK;
    }

    if (cJSON_IsString(choice)) {
        item = cJSON_Duplicate(choice, 0);

    } else if (slora_openai_resp_is(cJSON_GetObjectItemCaseSensitive(
                                        choice, "type"), "function")
               && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(choice,
                                                                  "name")))
    {
        item = cJSON_CreateObject();

        if (item != NULL
            && (cJSON_AddStringToObject(item, "type", "function") == NULL
                || (fn = cJSON_AddObjectToObject(item, "function")) == NULL
                || cJSON_AddStringToObject(fn, "name",
                       cJSON_GetObjectItemCaseSensitive(choice, "name")
                       ->valuestring) == NULL))
        {
            cJSON_Delete(item);
            item = NULL;
        }

    } else {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", "tool_choice",
                                 "tool_choice must be \"none\", \"auto\","
                                 " \"required\" or {\"type\": \"function\","
                                 " \"name\"}");
    }

    if (item == NULL || !cJSON_AddItemToObject(chat, "tool_choice", item)) {
        return slora_openai_nomem(err);
    }

    return SLORA_OK;
}


/* text.format as chat's response_format: text (none), json_object, or
 * json_schema with its name (required, as OpenAI requires it) and its
 * schema (an object), each named here as text.format.name and
 * text.format.schema, not as chat's response_format.json_schema's
 * field they become, which this flat request has not; strict and
 * description. */
static int
slora_openai_resp_format(cJSON *root, cJSON *chat, slora_openai_err_t *err)
{
    size_t   k;
    cJSON   *text, *format, *type, *rf, *js, *item;

    static const char  *keep[] = {
        "name", "schema", "strict", "description"
    };

    text = cJSON_GetObjectItemCaseSensitive(root, "text");

    if (text == NULL || cJSON_IsNull(text)) {
        return SLORA_OK;
    }

    format = cJSON_IsObject(text)
             ? cJSON_GetObjectItemCaseSensitive(text, "format") : NULL;

    if (!cJSON_IsObject(text)
        || (format != NULL && !cJSON_IsNull(format)
            && !cJSON_IsObject(format)))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "text.format", "text must be an object and"
                                 " text.format an object");
    }

    if (format == NULL || cJSON_IsNull(format)) {
        return SLORA_OK;
    }

    type = cJSON_GetObjectItemCaseSensitive(format, "type");

    if (slora_openai_resp_is(type, "text")) {
        return SLORA_OK;
    }

    rf = cJSON_AddObjectToObject(chat, "response_format");
    if (rf == NULL) {
        return slora_openai_nomem(err);
    }

    if (slora_openai_resp_is(type, "json_object")) {
        return cJSON_AddStringToObject(rf, "type", "json_object") != NULL
               ? SLORA_OK : slora_openai_nomem(err);
    }

    if (!slora_openai_resp_is(type, "json_schema")) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "text.format", "text.format.type must be"
                                 " text, json_object or json_schema");
    }

    item = cJSON_GetObjectItemCaseSensitive(format, "name");

    if (item == NULL || cJSON_IsNull(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "missing_required_parameter",
                                 "text.format.name", "Missing required"
                                 " parameter: 'text.format.name'.");
    }

    if (!cJSON_IsString(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "text.format.name", "text.format.name"
                                 " must be a string");
    }

    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(format, "schema"))) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "text.format.schema", "text.format.schema"
                                 " must be an object");
    }

    if (cJSON_AddStringToObject(rf, "type", "json_schema") == NULL
        || (js = cJSON_AddObjectToObject(rf, "json_schema")) == NULL)
    {
        return slora_openai_nomem(err);
    }

    for (k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
        item = cJSON_GetObjectItemCaseSensitive(format, keep[k]);

        if (item != NULL
            && !cJSON_AddItemToObject(js, keep[k], cJSON_Duplicate(item, 1)))
        {
            return slora_openai_nomem(err);
        }
    }

    return SLORA_OK;
}


/*
 * include and top_logprobs: "message.output_text.logprobs" (or
 * alternatives asked for) gives the message's tokens' log-probabilities,
 * as chat's logprobs and top_logprobs; the other values name parts of
 * items this server never makes (searches, images, reasoning), so there
 * is nothing of them to add. Not with tools that may be called: the
 * tokens of calls have nowhere to go; the field that asked is named.
 */
static int
slora_openai_resp_logprobs(cJSON *root, cJSON *chat, slora_openai_err_t *err)
{
    int          lp;
    size_t       i;
    cJSON       *include, *item, *top, *tools;

    static const char  *known[] = {
        "message.output_text.logprobs", "file_search_call.results",
        "web_search_call.results", "web_search_call.action.sources",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "code_interpreter_call.outputs", "reasoning.encrypted_content"
    };

    lp = 0;
    include = cJSON_GetObjectItemCaseSensitive(root, "include");

    if (include != NULL && !cJSON_IsNull(include)) {
        if (!cJSON_IsArray(include)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "include",
                                     "include must be an array of strings");
        }

        cJSON_ArrayForEach(item, include) {
            for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
                if (slora_openai_resp_is(item, known[i])) {
                    break;
                }
            }

            if (i == sizeof(known) / sizeof(known[0])) {
                return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                         "invalid_value", "include",
                                         "include: %s is not a value the"
                                         " Responses API knows",
                                         cJSON_IsString(item)
                                         ? item->valuestring
                                         : "(not a string)");
            }

            lp |= i == 0 ? 1 : 0;
        }
    }

    top = cJSON_GetObjectItemCaseSensitive(root, "top_logprobs");

    if (top != NULL && !cJSON_IsNull(top)) {
        if (!cJSON_AddItemToObject(chat, "top_logprobs",
                                   cJSON_Duplicate(top, 0)))
        {
            return slora_openai_nomem(err);
        }

        lp |= cJSON_IsNumber(top) && top->valuedouble > 0 ? 2 : 0;
    }

    if (!lp) {
        return SLORA_OK;
    }

    tools = cJSON_GetObjectItemCaseSensitive(chat, "tools");

    /* tool_choice "none": no calls, the answer is the message's */
    if (cJSON_GetArraySize(tools) > 0
        && !slora_openai_resp_is(cJSON_GetObjectItemCaseSensitive(
                                     chat, "tool_choice"), "none"))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter",
                                 lp & 1 ? "include" : "top_logprobs",
                                 "log-probabilities with tools are not"
                                 " supported by this server's Responses"
                                 " API (but with tool_choice \"none\")");
    }

    return cJSON_AddTrueToObject(chat, "logprobs") != NULL
           ? SLORA_OK : slora_openai_nomem(err);
}


/* The fields the response object echoes, as the request gave them or
 * their defaults, printed compact without the outer braces. */
static int
slora_openai_resp_echo(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    char        *text;
    size_t       i, n;
    cJSON       *echo, *item, *def, *fmt;

    static const char  *fields[] = {
        "conversation", "instructions", "max_output_tokens", "metadata",
        "parallel_tool_calls", "temperature", "text", "tool_choice",
        "tools", "top_logprobs", "top_p", "truncation", "user"
    };

    echo = cJSON_CreateObject();
    if (echo == NULL) {
        return slora_openai_nomem(err);
    }

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        item = cJSON_GetObjectItemCaseSensitive(root, fields[i]);

        if (strcmp(fields[i], "metadata") == 0) {
            /* kept with the response: held to a conversation's limits */
            def = slora_openai_metadata(root, err);

            if (def == NULL) {
                cJSON_Delete(echo);
                return SLORA_ERROR;
            }

        } else if (cJSON_IsString(item)
                   && strcmp(fields[i], "conversation") == 0)
        {
            /* the id as the object it names */
            def = cJSON_CreateObject();

            if (def != NULL
                && cJSON_AddStringToObject(def, "id", item->valuestring)
                   == NULL)
            {
                cJSON_Delete(def);
                def = NULL;
            }

        } else if (item != NULL && !cJSON_IsNull(item)) {
            def = cJSON_Duplicate(item, 1);

        } else if (strcmp(fields[i], "parallel_tool_calls") == 0) {
            def = cJSON_CreateTrue();

        } else if (strcmp(fields[i], "temperature") == 0
                   || strcmp(fields[i], "top_p") == 0)
        {
            def = cJSON_CreateNumber(1);

        } else if (strcmp(fields[i], "top_logprobs") == 0) {
            def = cJSON_CreateNumber(0);

        } else if (strcmp(fields[i], "text") == 0) {
            def = cJSON_Parse("{\"format\":{\"type\":\"text\"}}");

        } else if (strcmp(fields[i], "tool_choice") == 0) {
            def = cJSON_CreateString("auto");

        } else if (strcmp(fields[i], "truncation") == 0) {
            def = cJSON_CreateString("disabled");

        } else if (strcmp(fields[i], "tools") == 0) {
            def = cJSON_CreateArray();

        } else {
            def = cJSON_CreateNull();
        }

        if (strcmp(fields[i], "text") == 0 && cJSON_IsObject(def)
            && !cJSON_HasObjectItem(def, "format"))
        {
            /* a text of verbosity alone: its format is the default */
            fmt = cJSON_Parse("{\"type\":\"text\"}");

            if (fmt == NULL || !cJSON_AddItemToObject(def, "format", fmt)) {
                cJSON_Delete(fmt);
                cJSON_Delete(def);
                cJSON_Delete(echo);
                return slora_openai_nomem(err);
            }
        }

        if (!cJSON_AddItemToObject(echo, fields[i], def)) {
            cJSON_Delete(def);
            cJSON_Delete(echo);
            return slora_openai_nomem(err);
        }
    }

    text = cJSON_PrintUnformatted(echo);
    cJSON_Delete(echo);

    if (text == NULL) {
        return slora_openai_nomem(err);
    }

    /* "{...}" less its braces */
    n = strlen(text);
    req->resp_echo.data = slora_openai_copy(req, text + 1, n - 2);
    req->resp_echo.len = n - 2;
    free(text);

    return req->resp_echo.data != NULL ? SLORA_OK : slora_openai_nomem(err);
}


/* A chat parser's error, named as the Responses request names the
 * field, in its param and at the start of its message; a message's
 * place, the input item it was made from (map); a tool's fields, the
 * flat tool's. */
static void
slora_openai_resp_rename(slora_openai_err_t *err,
    const slora_openai_resp_map_t *map)
{
    char           msg[SLORA_OPENAI_MSG_LEN];
    char          *end;
    size_t         i, n;
    unsigned long  k;

    static const struct {
        const char  *chat;
        const char  *resp;
    } names[] = {
        { "messages", "input" },
        { "max_tokens", "max_output_tokens" },
        { "response_format", "text.format" }
    };

    if (err->param == NULL) {
        return;
    }

    /* "tools[k].function.name": a Responses tool is flat, tools[k].name */
    end = strstr(err->msg, "].function.");

    if (strcmp(err->param, "tools") == 0
        && strncmp(err->msg, "tools[", 6) == 0 && end != NULL)
    {
        n = strlen("function.");
        memmove(end + 2, end + 2 + n, strlen(end + 2 + n) + 1);
        err->len = strlen(err->msg);
        return;
    }

    /* chat's response_format anywhere in the message ("guided_json and
     * a JSON response_format"): the Responses request's text.format */
    while ((end = strstr(err->msg, "response_format")) != NULL) {
        n = strlen("text.format");
        memcpy(end, "text.format", n);
        memmove(end + n, end + strlen("response_format"),
                strlen(end + strlen("response_format")) + 1);
        err->len = strlen(err->msg);
    }

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        n = strlen(names[i].chat);

        if (strncmp(err->param, names[i].chat, n) != 0
            || (err->param[n] != '\0' && err->param[n] != '.'))
        {
            continue;
        }

        err->param = names[i].resp;

        /* "messages[k]": the chat's message k, which is input's item
         * map->made[k - first] (the messages before are the
         * instructions and a stored conversation's) */
        k = 0;
        end = NULL;

        if (i == 0 && strncmp(err->msg, "messages[", 9) == 0) {
            k = strtoul(err->msg + 9, &end, 10);

            if (end == err->msg + 9 || *end != ']') {
                end = NULL;
            }
        }

        if (end != NULL && k >= (unsigned long) map->first
            && k - map->first < (unsigned long) map->n)
        {
            snprintf(msg, sizeof(msg), "input[%d]%s",
                     map->made[k - map->first], end + 1);
            memcpy(err->msg, msg, sizeof(msg));
            err->len = strlen(err->msg);

        } else if (strncmp(err->msg, names[i].chat, n) == 0) {
            snprintf(msg, sizeof(msg), "%s%s", names[i].resp, err->msg + n);
            memcpy(err->msg, msg, sizeof(msg));
            err->len = strlen(err->msg);
        }

        return;
    }
}


int
slora_openai_resp_is(cJSON *item, const char *s)
{
    return cJSON_IsString(item) && strcmp(item->valuestring, s) == 0;
}
