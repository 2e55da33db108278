/*
 * slora_openai_answer.c: the request fields that shape the answer rather
 * than the run (slora_openai.h): log-probabilities and a completion's
 * echo, logit_bias, response_format (a JSON schema, compiled here to
 * refuse what cannot be held; vLLM's guided decoding is
 * slora_openai_guided.c's), the fields this
 * server refuses rather than ignores (a message's and /tokenize's
 * too), and stop
 * strings. slora_openai.c
 * calls them in its fixed order, so the first mistake is the answer.
 *
 * The one idea: each takes the parsed object and the request, sets the
 * fields it owns or fails with the field's OpenAI error, and never reads
 * another's fields but for those the order has already settled (echo
 * reads max_tokens).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_json.h"
#include "slora_openai_int.h"


#define SLORA_OPENAI_STOP_LEN  1024


static int slora_openai_stop_len(slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_unserved(cJSON *root, slora_openai_err_t *err);
static int slora_openai_vllm_unserved(cJSON *root, slora_openai_err_t *err);


/*
 * Log-probabilities. Chat: logprobs true, and top_logprobs alternatives
 * (0 to the limit; more than 0 only with logprobs). Completions: logprobs
 * N, the legacy API's, asks for the token's log-probability and N
 * alternatives (0 to the limit, at most 5 as OpenAI's); and echo true
 * puts the prompt before the completion, its tokens among the
 * log-probabilities (the first with null ones), which is how a client
 * scores a text: max_tokens may then be 0, the prompt alone. Both: vLLM's
 * prompt_logprobs N (0 to the limit) asks for each prompt token's
 * log-probability, rank and N alternatives in the answer, apart from the
 * logprobs; a stream has no place for them (N above 0 with stream is
 * vLLM's 400, 0 is passed over), and a completion may then be the
 * prompt's alone too (max_tokens 0).
 */
int
slora_openai_logprobs(cJSON *root, const slora_openai_limits_t *lim,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    cJSON     *lp, *top;
    double     d, most;
    unsigned   flag;

    top = cJSON_GetObjectItemCaseSensitive(root, "prompt_logprobs");

    if (top != NULL && !cJSON_IsNull(top)) {
        if (cJSON_IsNumber(top) && top->valuedouble == -1) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "prompt_logprobs",
                                     "prompt_logprobs -1 (every token of "
                                     "the vocabulary) is not served: at "
                                     "most %d alternatives",
                                     lim->max_top_logprobs);
        }

        if (slora_openai_int(top, "prompt_logprobs", 0,
                             lim->max_top_logprobs, 0,
                             lim->max_top_logprobs, &d, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (req->stream && d > 0) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "prompt_logprobs",
                                     "`prompt_logprobs` are not available "
                                     "when `stream=True`.");
        }

        /* stream was read before (slora_openai_options) */
        req->prompt_logprobs = !req->stream;
        req->prompt_top = (int32_t) d;
    }

    lp = cJSON_GetObjectItemCaseSensitive(root, "logprobs");

    if (req->kind == SLORA_OPENAI_COMPLETION) {
        flag = req->echo;

        if (slora_openai_bool(root, "echo", &flag, err) != SLORA_OK) {
            return SLORA_ERROR;
        }

        req->echo = flag;

        if (req->max_tokens == 0 && !req->echo && !req->prompt_logprobs) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", req->max_name,
                                     "%s must be at least 1 (0 only with "
                                     "echo or prompt_logprobs)",
                                     req->max_name);
        }

        if (lp == NULL || cJSON_IsNull(lp)) {
            return SLORA_OK;
        }

        most = lim->max_top_logprobs < 5 ? lim->max_top_logprobs : 5;

        if (slora_openai_int(lp, "logprobs", 0, most, 0, (long long) most,
                             &d, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        req->logprobs = 1;
        req->top_logprobs = (int32_t) d;

        return SLORA_OK;
    }

    flag = req->logprobs;

    if (slora_openai_bool(root, "logprobs", &flag, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    req->logprobs = flag;

    top = cJSON_GetObjectItemCaseSensitive(root, "top_logprobs");

    if (top == NULL || cJSON_IsNull(top)) {
        return SLORA_OK;
    }

    if (slora_openai_int(top, "top_logprobs", 0, lim->max_top_logprobs, 0,
                         lim->max_top_logprobs, &d, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (d > 0 && !req->logprobs) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "invalid_value", "top_logprobs",
                                 "top_logprobs needs logprobs true");
    }

    req->top_logprobs = (int32_t) d;

    return SLORA_OK;
}


/*
 * logit_bias: an object of token ids (in decimal) to a bias from -100 to
 * 100 that the sampler adds to the token's logit, at most
 * SLORA_OPENAI_MAX_BIAS of them, each id once; {} or null: none. Whether
 * an id is in the vocabulary is the caller's to check.
 */
int
slora_openai_logit_bias(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    char       *end;
    long        id;
    cJSON      *item, *b;
    uint32_t    k;

    item = cJSON_GetObjectItemCaseSensitive(root, "logit_bias");
    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    if (!cJSON_IsObject(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "logit_bias", "logit_bias must be an object"
                                 " of token ids to biases");
    }

    cJSON_ArrayForEach(b, item) {
        if (req->n_logit_bias == SLORA_OPENAI_MAX_BIAS) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "logit_bias",
                                     "logit_bias may name at most %d tokens",
                                     SLORA_OPENAI_MAX_BIAS);
        }

        errno = 0;
        id = strtol(b->string, &end, 10);

        if (b->string[0] < '0' || b->string[0] > '9' || *end != '\0'
            || errno != 0 || id > INT32_MAX)
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "logit_bias",
                                     "logit_bias keys must be token ids,"
                                     " not \"%.*s\"",
                                     slora_utf8_cut(b->string, 32),
                                     b->string);
        }

        if (!cJSON_IsNumber(b) || !(b->valuedouble >= -100
                                    && b->valuedouble <= 100))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "logit_bias",
                                     "the logit_bias of token %ld must be a"
                                     " number from -100 to 100", id);
        }

        for (k = 0; k < req->n_logit_bias; k++) {
            if (req->logit_bias_ids[k] == (int32_t) id) {
                return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                         "invalid_value", "logit_bias",
                                         "logit_bias names token %ld twice",
                                         id);
            }
        }

        req->logit_bias_ids[req->n_logit_bias] = (int32_t) id;
        req->logit_bias[req->n_logit_bias] = (float) b->valuedouble;
        req->n_logit_bias++;
    }

    return SLORA_OK;
}


/*
 * response_format: {"type": "json_object"} is JSON mode (the answer is
 * one JSON object: slora_json.h); {"type": "json_schema", "json_schema":
 * {"name", "schema", "strict"}} makes it one object that schema admits,
 * the schema compiled here once so that one this server cannot enforce
 * is refused now, naming the keyword and where ("strict" is taken as
 * true: the schema is always enforced); the name is required, as
 * OpenAI and vLLM's JsonSchemaResponseFormat require it, though nothing
 * here reads it, and looked for first, as OpenAI reports it missing
 * before anything else; {"type": "structural_tag", ...} is vLLM's
 * (slora_openai_structural_tag); {"type": "text"} and null are the
 * default.
 * Served on completions too, as vLLM does.
 */
int
slora_openai_response_format(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    cJSON       *item, *type, *js, *sch, *name;
    const char  *t;

    item = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    type = cJSON_GetObjectItemCaseSensitive(item, "type");

    if (!cJSON_IsObject(item) || !cJSON_IsString(type)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "response_format", "response_format must "
                                 "be an object with a type");
    }

    t = type->valuestring;

    if (strcmp(t, "json_object") == 0) {
        req->json = 1;
        return SLORA_OK;
    }

    if (strcmp(t, "text") == 0) {
        return SLORA_OK;
    }

    if (strcmp(t, "structural_tag") == 0) {
        return slora_openai_structural_tag(item, "response_format", req,
                                           err);
    }

    if (strcmp(t, "json_schema") != 0) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "response_format", "response_format's type "
                                 "must be \"text\", \"json_object\", "
                                 "\"json_schema\" or \"structural_tag\"");
    }

    js = cJSON_GetObjectItemCaseSensitive(item, "json_schema");
    sch = cJSON_GetObjectItemCaseSensitive(js, "schema");
    name = cJSON_GetObjectItemCaseSensitive(js, "name");

    if (!cJSON_IsObject(js)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "response_format", "response_format's "
                                 "json_schema must be an object with a "
                                 "name string and a schema object");
    }

    if (name == NULL || cJSON_IsNull(name)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "missing_required_parameter",
                                 "response_format.json_schema.name",
                                 "Missing required parameter: "
                                 "'response_format.json_schema.name'.");
    }

    if (!cJSON_IsString(name)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "response_format.json_schema.name",
                                 "response_format.json_schema.name must be"
                                 " a string");
    }

    if (!cJSON_IsObject(sch)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "response_format", "response_format."
                                 "json_schema.schema must be an object");
    }

    return slora_openai_schema(sch, "response_format", req, err);
}


/* A schema object (or, by req->schema_form, guided_choice's array) as
 * its compact text, kept by slora_openai_schema_text. */
int
slora_openai_schema(cJSON *sch, const char *param, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int    rc;
    char  *text;

    text = cJSON_PrintUnformatted(sch);
    if (text == NULL) {
        return slora_openai_nomem(err);
    }

    rc = slora_openai_schema_text(text, strlen(text), param, req, err);
    free(text);

    return rc;
}


/* A schema's text of req->schema_form, compiled once here so that one
 * this server cannot enforce is refused now (or, under compile_later, by
 * the parse that compiles it), and kept; not compiled where the caller
 * knows it compiles (schema_known). */
int
slora_openai_schema_text(const char *text, size_t len, const char *param,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    int                   text_form;
    slora_err_t           e;
    slora_json_schema_t  *compiled;

    /* a regex's or a grammar's own text, not JSON */
    text_form = req->schema_form == SLORA_JSON_FORM_REGEX
                || req->schema_form == SLORA_JSON_FORM_GRAMMAR;

    if (len > SLORA_JSON_SCHEMA_MAX) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s%s is %zu bytes%s; this server "
                                 "takes at most %d", param,
                                 text_form ? "" : "'s schema", len,
                                 text_form ? "" : " written compactly",
                                 SLORA_JSON_SCHEMA_MAX);
    }

    if (req->schema_known != NULL
        && req->schema_known(req->schema_known_data, req->schema_form, text,
                             len))
    {
        req->schema_was_known = 1;

    } else if (req->compile_later) {
        req->schema_uncompiled = 1;

    } else {
        compiled = slora_json_form_parse(req->schema_form, text, len, &e);

        if (compiled == NULL) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", param, "%s%s: %s",
                                     param,
                                     req->schema_form
                                     == SLORA_JSON_FORM_SCHEMA
                                     ? "'s schema" : "", e.msg);
        }

        slora_json_schema_free(compiled);
    }

    req->schema.data = slora_openai_copy(req, text, len);
    req->schema.len = len;

    return req->schema.data != NULL ? SLORA_OK : slora_openai_nomem(err);
}


/*
 * Fields that ask for what this server does not do: refused with 400
 * unsupported_parameter rather than ignored, since a client asking for
 * prompt log-probabilities or tool calls would otherwise take an answer
 * without them for one with them, or one asking to store a completion
 * would look for it later in vain. Their neutral values, which clients
 * send by default, pass: false, 0, null, "", [], {}, tool_choice
 * "none" or "auto". (Chat's logprobs and top_logprobs, and a
 * completion's logprobs and echo, are served: slora_openai_logprobs;
 * chat's echo: slora_openai_chat_echo; so are logit_bias and
 * response_format; chat's tools and tool_choice: slora_openai_tools;
 * chat's prediction: slora_openai_prediction; best_of:
 * slora_openai_best_of; a completion's suffix: slora_openai_suffix.)
 */
int
slora_openai_unsupported(cJSON *root, slora_openai_kind_e kind,
    slora_openai_err_t *err)
{
    int          asks;
    size_t       i;
    cJSON       *item;
    const char  *name;

    static const char  *fields[] = {
        "top_logprobs", "suffix", "tools", "functions",
        "tool_choice", "function_call", "audio", "prediction", "store"
    };

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        name = fields[i];

        /* chat's top_logprobs, tools and prediction are served, and a
         * completion's suffix */
        if ((kind == SLORA_OPENAI_CHAT
             && (strcmp(name, "top_logprobs") == 0
                 || strcmp(name, "tools") == 0
                 || strcmp(name, "tool_choice") == 0
                 || strcmp(name, "prediction") == 0))
            || (kind == SLORA_OPENAI_COMPLETION
                && strcmp(name, "suffix") == 0))
        {
            continue;
        }

        item = cJSON_GetObjectItemCaseSensitive(root, name);

        if (item == NULL || cJSON_IsNull(item) || cJSON_IsFalse(item)) {
            continue;
        }

        if (cJSON_IsNumber(item)) {
            /* any other than the neutral value: a negative one is no
             * more served than a positive one */
            asks = item->valuedouble != 0;

        } else if (cJSON_IsString(item)) {
            asks = item->valuestring[0] != '\0'
                   && !(strcmp(name, "tool_choice") == 0
                        && (strcmp(item->valuestring, "none") == 0
                            || strcmp(item->valuestring, "auto") == 0))
                   && !(strcmp(name, "function_call") == 0
                        && (strcmp(item->valuestring, "none") == 0
                            || strcmp(item->valuestring, "auto") == 0));

        } else {
            asks = cJSON_IsTrue(item) || cJSON_GetArraySize(item) > 0;
        }

        if (asks) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "unsupported_parameter", name,
                                     "%s is not supported by this server%s",
                                     name,
                                     strcmp(name, "store") == 0
                                     ? " (no completion is kept; the"
                                       " Responses API stores responses)"
                                     : "");
        }
    }

    if (slora_openai_unserved(root, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    return slora_openai_vllm_unserved(root, err);
}


/*
 * vLLM's extensions that change the answer and that this server does not
 * serve: beam search and a template of the request's own. Refused rather
 * than passed over; their neutral values (null, false, an empty list or
 * string) pass. And vLLM's priority, as vLLM refuses it where its
 * scheduler has no priorities: here they are the tenants' (the
 * catalog's), never a client's to raise; 0 passes.
 */
static int
slora_openai_vllm_unserved(cJSON *root, slora_openai_err_t *err)
{
    int          asks;
    size_t       i;
    cJSON       *item;
    const char  *name;

    static const char  *fields[] = {
        "use_beam_search", "chat_template"
    };

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        name = fields[i];
        item = cJSON_GetObjectItemCaseSensitive(root, name);

        if (item == NULL || cJSON_IsNull(item) || cJSON_IsFalse(item)) {
            continue;
        }

        asks = cJSON_IsString(item) ? item->valuestring[0] != '\0'
               : cJSON_IsArray(item) ? cJSON_GetArraySize(item) > 0
               : 1;

        if (asks) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "unsupported_parameter", name,
                                     "%s (vLLM's) is not supported by this "
                                     "server", name);
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "priority");

    if (item != NULL && !cJSON_IsNull(item)
        && !(cJSON_IsNumber(item) && item->valuedouble == 0))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", "priority",
                                 "priority (vLLM's) is not taken from "
                                 "requests: a tenant's priority is the "
                                 "catalog's (slora catalog tenant NAME "
                                 "--priority N)");
    }

    return SLORA_OK;
}


/*
 * What a text model served here cannot give: modalities other than
 * ["text"] (an answer in audio), web_search_options (a search before the
 * answer, an object however empty), moderation (the input and answer
 * scored or blocked), a reasoning_effort and a verbosity other than
 * "medium" (as the Responses API's reasoning and text.verbosity). null
 * passes, and ["text"] or [].
 */
static int
slora_openai_unserved(cJSON *root, slora_openai_err_t *err)
{
    size_t       i;
    cJSON       *item, *m;
    const char  *name;

    static const char  *objects[] = { "web_search_options", "moderation",
                                      "reasoning_effort" };

    item = cJSON_GetObjectItemCaseSensitive(root, "modalities");

    if (item != NULL && !cJSON_IsNull(item)) {
        if (!cJSON_IsArray(item)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "modalities",
                                     "modalities must be an array");
        }

        cJSON_ArrayForEach(m, item) {
            if (!cJSON_IsString(m) || strcmp(m->valuestring, "text") != 0) {
                return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                         "unsupported_parameter",
                                         "modalities", "modalities: this "
                                         "server answers in text alone "
                                         "([\"text\"])");
            }
        }
    }

    for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
        name = objects[i];
        item = cJSON_GetObjectItemCaseSensitive(root, name);

        if (item != NULL && !cJSON_IsNull(item)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "unsupported_parameter", name,
                                     "%s is not supported by this server",
                                     name);
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "verbosity");

    if (item != NULL && !cJSON_IsNull(item)
        && !(cJSON_IsString(item) && strcmp(item->valuestring, "medium") == 0))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", "verbosity",
                                 "verbosity is not supported by this "
                                 "server's model (\"medium\" is its "
                                 "answers')");
    }

    return SLORA_OK;
}


/*
 * An assistant message's audio ({"id"}: an earlier answer's audio, kept
 * by OpenAI and read back by its id) and function_call (the legacy
 * functions' call) are refused rather than dropped: the chat would be
 * rendered without what the assistant said or did. null passes.
 */
int
slora_openai_msg_unsupported(cJSON *m, size_t i, slora_openai_err_t *err)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(m, "audio");

    if (item != NULL && !cJSON_IsNull(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", "messages.audio",
                                 "messages[%zu].audio is not supported by "
                                 "this server (it keeps no audio): send "
                                 "the answer's transcript as content", i);
    }

    item = cJSON_GetObjectItemCaseSensitive(m, "function_call");

    if (item != NULL && !cJSON_IsNull(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter",
                                 "messages.function_call",
                                 "messages[%zu].function_call is not "
                                 "supported by this server: send the call "
                                 "in tool_calls", i);
    }

    return SLORA_OK;
}


/*
 * The stop strings: a string, or an array of up to lim->max_stops, each
 * of SLORA_OPENAI_STOP_LEN bytes at most (the worker holds back and
 * scans an answer's last bytes for each at every token: a stop of
 * megabytes would cost that a token).
 */
int
slora_openai_stop(cJSON *stop, const slora_openai_limits_t *lim,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    cJSON  *s;

    if (stop == NULL || cJSON_IsNull(stop)) {
        return SLORA_OK;
    }

    if (cJSON_IsString(stop)) {
        if (slora_openai_string(stop, "stop", &req->stop[0], req, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        req->n_stop = req->stop[0].len ? 1 : 0;
        return slora_openai_stop_len(req, err);
    }

    if (!cJSON_IsArray(stop)
        || (uint32_t) cJSON_GetArraySize(stop) > lim->max_stops)
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "stop", "stop must be a string or an array"
                                 " of up to %u strings", lim->max_stops);
    }

    cJSON_ArrayForEach(s, stop) {
        if (slora_openai_string(s, "stop", &req->stop[req->n_stop], req, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (req->stop[req->n_stop].len) {
            req->n_stop++;
        }
    }

    return slora_openai_stop_len(req, err);
}


static int
slora_openai_stop_len(slora_openai_req_t *req, slora_openai_err_t *err)
{
    uint32_t  i;

    for (i = 0; i < req->n_stop; i++) {
        if (req->stop[i].len > SLORA_OPENAI_STOP_LEN) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "stop", "a stop string"
                                     " is %d bytes at most",
                                     SLORA_OPENAI_STOP_LEN);
        }
    }

    return SLORA_OK;
}
