/*
 * slora_openai.c: parses and checks OpenAI chat and text completion
 * requests (see slora_openai.h) with cJSON, without nginx: the body, the
 * model, prompts, sampling and the options, and the token endpoints'
 * requests; a chat's messages are slora_openai_messages.c's, the fields
 * that shape the answer slora_openai_answer.c's, the primitives all use
 * are here.
 *
 * The one idea: the checks run in a fixed order (body, model, messages or
 * prompt, sampling, n, stream, stream_options, log-probabilities,
 * logit_bias, what is not served, stop) and the first failure
 * is the answer, so a request with several mistakes always gets the same
 * error. Strings are copied out of the cJSON tree into the request's arena
 * and the tree is dropped before returning; nothing returned points into
 * the caller's body.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "slora_json.h"
#include "slora_openai_int.h"
#include "slora_prefix.h"
#include "slora_tokenizer_int.h"


#define SLORA_OPENAI_BLOCK   4096


struct slora_openai_block_s {
    slora_openai_block_t  *next;
    size_t                 size;
    size_t                 used;
    _Alignas(16) char      data[];
};


const slora_openai_limits_t  slora_openai_default_limits = {
    SLORA_OPENAI_MAX_STOPS, INT32_MAX, 20, 0, SLORA_CHAT_CHATML, NULL, 0, 1, 0,
    0, NULL, NULL
};


static int slora_openai_prompt_end(cJSON *root,
    const slora_openai_limits_t *lim, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_sampling(cJSON *root,
    const slora_openai_limits_t *lim, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_cache_salt(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_options(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_prompts(cJSON *item, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_token_ids(cJSON *root, const char *name, int max,
    int32_t *ids, uint32_t *n, slora_openai_err_t *err);
static int slora_openai_ids(cJSON *item, const char *param,
    slora_openai_prompt_t *p, slora_openai_req_t *req,
    slora_openai_err_t *err);
static int slora_openai_penalty(cJSON *root, const char *param, double min,
    double max, double *out, slora_openai_err_t *err);


int
slora_openai_parse(const char *body, size_t len, slora_openai_kind_e kind,
    const slora_openai_limits_t *lim, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int     rc;
    cJSON  *root;

    slora_openai_defaults(req, kind);

    root = slora_openai_root(body, len, err);
    if (root == NULL) {
        return SLORA_ERROR;
    }

    rc = slora_openai_fields(root, kind, lim, req, err);
    cJSON_Delete(root);

    return rc;
}


/* The body as a JSON object: not empty, UTF-8, no NUL in a string, one
 * object and only white space after it; NULL with err set otherwise. */
cJSON *
slora_openai_root(const char *body, size_t len, slora_openai_err_t *err)
{
    size_t       at;
    cJSON       *root;
    const char  *end;

    if (len == 0) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, NULL, NULL,
                          "The request body is empty; send a JSON object");
        return NULL;
    }

    if (!slora_utf8_text_valid(body, len)) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_utf8", NULL,
                          "The request body is not valid UTF-8");
        return NULL;
    }

    /* read, a string would end there, and what follows be lost */
    at = slora_json_find_nul(body, len);

    if (at < len) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value", NULL,
                          "The request body holds a NUL character"
                          " (\\u0000) in a string, at byte %zu: strings"
                          " may not hold one", at);
        return NULL;
    }

    end = NULL;
    root = cJSON_ParseWithLengthOpts(body, len, &end, 0);

    /* only white space may follow the object */
    while (root && end && end < body + len
           && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
    {
        end++;
    }

    if (root == NULL || !cJSON_IsObject(root) || end != body + len) {
        cJSON_Delete(root);
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_json", NULL,
                          "The request body is not a valid JSON object");
        return NULL;
    }

    /* tools and arguments reach a template's tojson as the client wrote
     * their numbers; a key given twice is read as its last, as OpenAI's
     * and vLLM's servers (Python's json) read it */
    slora_pyjson_numbers(root, body, len);

    if (slora_pyjson_dict(root) != 0) {
        cJSON_Delete(root);
        slora_openai_nomem(err);
        return NULL;
    }

    return root;
}


/* A request's fields from its object, req holding the defaults. */
int
slora_openai_fields(cJSON *root, slora_openai_kind_e kind,
    const slora_openai_limits_t *lim, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int     rc;
    cJSON  *item;

    if (lim == NULL) {
        lim = &slora_openai_default_limits;
    }

    slora_assert(lim->max_stops <= SLORA_OPENAI_MAX_STOPS
                 && lim->max_tokens >= 1 && lim->max_top_logprobs >= 0);

    rc = SLORA_ERROR;
    req->tool_format = slora_openai_tool_format(lim->chat, lim->call_ids);
    req->tool_spaced = lim->chat == SLORA_CHAT_MISTRAL;

    req->chat_flags |= lim->chat_flags;
    req->compile_later = lim->compile_later != 0;
    req->schema_known = lim->schema_known;
    req->schema_known_data = lim->schema_known_data;

    item = cJSON_GetObjectItemCaseSensitive(root, "model");
    if ((item == NULL || cJSON_IsNull(item)) && lim->model_optional) {
        req->model.data = "default";
        req->model.len = 7;

    } else if (item == NULL || cJSON_IsNull(item)) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                          "missing_required_parameter", "model",
                          "you must provide a model parameter");
        goto done;

    } else if (slora_openai_string(item, "model", &req->model, req, err)
               != SLORA_OK)
    {
        goto done;
    }

    if (kind == SLORA_OPENAI_CHAT) {
        item = cJSON_GetObjectItemCaseSensitive(root, "messages");

        if (slora_openai_messages(item, req, err) != SLORA_OK
            || slora_openai_default_system(lim->system, req, err)
               != SLORA_OK
            || slora_openai_prompt_end(root, lim, req, err) != SLORA_OK
            || slora_openai_chat_echo(root, req, err) != SLORA_OK)
        {
            goto done;
        }

    } else if (slora_openai_prompts(cJSON_GetObjectItemCaseSensitive(root,
                                                                     "prompt"),
                                    req, err)
               != SLORA_OK)
    {
        goto done;
    }

    if (slora_openai_sampling(root, lim, req, err) != SLORA_OK
        || slora_openai_options(root, req, err) != SLORA_OK
        || slora_openai_logprobs(root, lim, req, err) != SLORA_OK
        || slora_openai_logit_bias(root, req, err) != SLORA_OK
        || slora_openai_response_format(root, req, err) != SLORA_OK
        || slora_openai_guided(root, req, err) != SLORA_OK
        || slora_openai_best_of(root, req, err) != SLORA_OK
        || (kind == SLORA_OPENAI_COMPLETION
            && slora_openai_suffix(root, req, err) != SLORA_OK)
        || slora_openai_unsupported(root, req->kind, err) != SLORA_OK
        || (kind == SLORA_OPENAI_CHAT
            && (slora_openai_tools(root, req, err) != SLORA_OK
                || slora_openai_prediction(root, req, err) != SLORA_OK)))
    {
        goto done;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (slora_openai_stop(item, lim, req, err) != SLORA_OK) {
        goto done;
    }

    if (req->n_prompts * req->n > SLORA_OPENAI_MAX_N) {
        slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                          req->n_best ? "best_of" : "n",
                          "%s (%u) times the %u prompts must be at most %d"
                          " %s", req->n_best ? "best_of" : "n", req->n,
                          req->n_prompts, SLORA_OPENAI_MAX_N,
                          req->n_best ? "candidates" : "choices");
        goto done;
    }

    rc = SLORA_OK;

done:

    return rc;
}




int
slora_openai_parse_tokenize(const char *body, size_t len,
    const slora_openai_limits_t *lim, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int                    chat, rc;
    unsigned               flag;
    cJSON                 *root, *item;
    slora_openai_limits_t  tl;

    slora_openai_defaults(req, SLORA_OPENAI_COMPLETION);

    root = slora_openai_root(body, len, err);
    if (root == NULL) {
        return SLORA_ERROR;
    }

    /* messages: a chat's, rendered as a chat request would be */
    item = cJSON_GetObjectItemCaseSensitive(root, "messages");
    chat = item != NULL && !cJSON_IsNull(item);
    slora_openai_defaults(req, chat ? SLORA_OPENAI_CHAT
                                    : SLORA_OPENAI_COMPLETION);

    tl = lim != NULL ? *lim : slora_openai_default_limits;
    tl.model_optional = 1;

    rc = slora_openai_fields(root, req->kind, &tl, req, err);

    /* vLLM's return_token_strs: each token's vocabulary entry too */
    flag = 0;

    if (rc == SLORA_OK) {
        rc = slora_openai_bool(root, "return_token_strs", &flag, err);
        req->token_strs = flag;
    }

    cJSON_Delete(root);

    if (rc != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (!chat && (req->n_prompts != 1 || req->prompts[0].text.data == NULL))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "prompt", "tokenize takes one prompt, a "
                                 "string, or messages");
    }

    return SLORA_OK;
}


int
slora_openai_parse_detokenize(const char *body, size_t len,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    int     rc;
    cJSON  *root, *item;

    slora_openai_defaults(req, SLORA_OPENAI_COMPLETION);

    /* as every body: one object, nothing but blanks after it */
    root = slora_openai_root(body, len, err);
    if (root == NULL) {
        return SLORA_ERROR;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "tokens");

    if (!cJSON_IsArray(item)) {
        rc = slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                               item ? "invalid_type"
                                    : "missing_required_parameter",
                               "tokens", "tokens must be an array of token"
                               " ids");

    } else {
        req->n_prompts = 1;

        /* no ids: the empty text, as vLLM decodes them */
        rc = cJSON_GetArraySize(item) == 0
             ? SLORA_OK
             : slora_openai_ids(item, "tokens", &req->prompts[0], req, err);
    }

    cJSON_Delete(root);

    return rc;
}


void
slora_openai_req_free(slora_openai_req_t *req)
{
    slora_openai_block_t  *b, *next;

    for (b = req->arena; b; b = next) {
        next = b->next;
        free(b);
    }

    req->arena = NULL;
}


size_t
slora_openai_req_bytes(const slora_openai_req_t *req)
{
    size_t                 n;
    slora_openai_block_t  *b;

    n = 0;

    for (b = req->arena; b; b = b->next) {
        n += b->size;
    }

    return n;
}


void
slora_openai_defaults(slora_openai_req_t *req, slora_openai_kind_e kind)
{
    memset(req, 0, sizeof(slora_openai_req_t));

    req->kind = kind;
    req->max_tokens = -1;
    req->max_name = "max_tokens";
    req->temperature = 1.0;
    req->top_p = 1.0;
    req->repetition_penalty = 1.0;
    req->n = 1;
    req->chat_flags = SLORA_CHAT_GEN_PROMPT;
}


/* A chat without a system message begins with the template's default
 * one (text; NULL: none), as the template writes it: the template's text
 * (made), not the request's. */
int
slora_openai_default_system(const char *text, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    char    *dated, *copy;
    size_t   n;

    if (text == NULL || slora_openai_has_system(req)) {
        return SLORA_OK;
    }

    /* today's date where the template writes it: a copy the request
     * owns */
    dated = slora_chat_system_text(text);

    if (dated != NULL) {
        n = strlen(dated);
        copy = slora_openai_alloc(req, n + 1);

        if (copy == NULL) {
            free(dated);
            return slora_openai_nomem(err);
        }

        memcpy(copy, dated, n + 1);
        free(dated);
        text = copy;
    }

    if (slora_openai_system(req, text, strlen(text), err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    req->msgs[0].made = 1;

    return SLORA_OK;
}


int
slora_openai_has_system(const slora_openai_req_t *req)
{
    return req->n_msgs > 0 && req->msgs[0].role_len == 6
           && memcmp(req->msgs[0].role, "system", 6) == 0;
}


int
slora_openai_system(slora_openai_req_t *req, const char *text, size_t len,
    slora_openai_err_t *err)
{
    return slora_openai_insert(req, 0, "system", text, len, err);
}


int
slora_openai_insert(slora_openai_req_t *req, uint32_t at, const char *role,
    const char *text, size_t len, slora_openai_err_t *err)
{
    slora_chat_msg_t  *msgs;

    msgs = slora_openai_alloc(req,
                              (req->n_msgs + 1) * sizeof(slora_chat_msg_t));
    if (msgs == NULL) {
        return slora_openai_nomem(err);
    }

    memcpy(msgs, req->msgs, at * sizeof(slora_chat_msg_t));
    memset(&msgs[at], 0, sizeof(slora_chat_msg_t));
    msgs[at].role = role;
    msgs[at].role_len = strlen(role);
    msgs[at].content = text;
    msgs[at].content_len = len;
    memcpy(&msgs[at + 1], req->msgs + at,
           (req->n_msgs - at) * sizeof(slora_chat_msg_t));
    req->msgs = msgs;
    req->n_msgs++;

    return SLORA_OK;
}


/*
 * vLLM's add_generation_prompt (default true) and continue_final_message
 * (default false), booleans: the chat's text ends with the assistant's
 * header, or, continuing, inside the last message, an assistant's, so
 * that the answer goes on from its text (a prefilled answer). Both true
 * is a 400, as in vLLM. chat_template_kwargs, the template's variables:
 * enable_thinking (a boolean; false gives Qwen3's empty think block
 * where the template reads it, and nothing elsewhere, as a template
 * ignores what it does not read); any other is a 400, the server not
 * running the Jinja template itself.
 */
static int
slora_openai_prompt_end(cJSON *root, const slora_openai_limits_t *lim,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    cJSON     *item, *kw;
    unsigned   flag;

    kw = cJSON_GetObjectItemCaseSensitive(root, "chat_template_kwargs");

    if (kw != NULL && !cJSON_IsNull(kw) && !cJSON_IsObject(kw)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "chat_template_kwargs", "chat_template_kwargs "
                                 "must be an object");
    }

    if (!cJSON_IsObject(kw)) {
        kw = NULL;
    }

    cJSON_ArrayForEach(item, kw) {
        if (strcmp(item->string, "enable_thinking") != 0) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "unsupported_parameter",
                                     "chat_template_kwargs",
                                     "chat_template_kwargs.%.*s is not "
                                     "supported (enable_thinking is)",
                                     slora_utf8_cut(item->string, 64),
                                     item->string);
        }

        if (!cJSON_IsBool(item)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "chat_template_kwargs",
                                     "chat_template_kwargs.enable_thinking "
                                     "must be a boolean");
        }

        if (cJSON_IsFalse(item) && lim->think) {
            req->chat_flags |= SLORA_CHAT_NO_THINK;
        }
    }

    flag = 1;

    if (slora_openai_bool(root, "add_generation_prompt", &flag, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (!flag) {
        req->chat_flags &= ~SLORA_CHAT_GEN_PROMPT;
    }

    flag = 0;

    if (slora_openai_bool(root, "continue_final_message", &flag, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (flag) {
        req->chat_flags |= SLORA_CHAT_CONTINUE;
    }

    if (!(req->chat_flags & SLORA_CHAT_CONTINUE)) {
        return SLORA_OK;
    }

    if (req->chat_flags & SLORA_CHAT_GEN_PROMPT) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "continue_final_message",
                                 "continue_final_message and "
                                 "add_generation_prompt cannot both be "
                                 "true: set add_generation_prompt false");
    }

    if (req->msgs[req->n_msgs - 1].role_len != sizeof("assistant") - 1
        || memcmp(req->msgs[req->n_msgs - 1].role, "assistant",
                  sizeof("assistant") - 1) != 0)
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "continue_final_message",
                                 "continue_final_message needs the last "
                                 "message to be an assistant's");
    }

    return SLORA_OK;
}


static int
slora_openai_sampling(cJSON *root, const slora_openai_limits_t *lim,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    int          i;
    cJSON       *item;
    double       d;
    const char  *name;

    /* the field that wins first: a chat's max_completion_tokens, OpenAI's
     * name for what it deprecated max_tokens for (as vLLM reads both); a
     * completion's own max_tokens */
    static const char  *names[2][2] = {
        { "max_completion_tokens", "max_tokens" },
        { "max_tokens", "max_completion_tokens" }
    };

    /* both checked, the one that wins read last */
    for (i = 1; i >= 0; i--) {
        name = names[req->kind == SLORA_OPENAI_COMPLETION][i];
        item = cJSON_GetObjectItemCaseSensitive(root, name);

        if (item == NULL || cJSON_IsNull(item)) {
            continue;
        }

        /* 0: a completion's echo alone (slora_openai_logprobs) */
        if (slora_openai_int(item, name,
                             req->kind == SLORA_OPENAI_COMPLETION ? 0 : 1,
                             lim->max_tokens,
                             req->kind == SLORA_OPENAI_COMPLETION ? 0 : 1,
                             lim->max_tokens, &d, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        req->max_tokens = (int64_t) d;
        req->max_name = name;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "temperature");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsNumber(item)
            || !(item->valuedouble >= 0 && item->valuedouble <= 2))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "temperature",
                                     "temperature must be a number"
                                     " between 0 and 2");
        }

        req->temperature = item->valuedouble;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "top_p");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsNumber(item)
            || !(item->valuedouble > 0 && item->valuedouble <= 1))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "top_p",
                                     "top_p must be a number in (0, 1]");
        }

        req->top_p = item->valuedouble;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "min_p");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsNumber(item)
            || !(item->valuedouble >= 0 && item->valuedouble <= 1))
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "min_p",
                                     "min_p must be a number in [0, 1]");
        }

        req->min_p = item->valuedouble;
    }

    /* vLLM's: -1 (its default) and 0 are off */
    item = cJSON_GetObjectItemCaseSensitive(root, "top_k");
    if (item && !cJSON_IsNull(item)) {
        if (slora_openai_int(item, "top_k", -1, 1000000, -1, 1000000, &d,
                             err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        req->top_k = d < 0 ? 0 : (int32_t) d;
    }

    if (slora_openai_penalty(root, "frequency_penalty", -2, 2,
                             &req->frequency_penalty, err) != SLORA_OK
        || slora_openai_penalty(root, "presence_penalty", -2, 2,
                                &req->presence_penalty, err) != SLORA_OK
        || slora_openai_penalty(root, "repetition_penalty", 0, 100,
                                &req->repetition_penalty, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "seed");
    if (item && !cJSON_IsNull(item)) {
        /* 2^63 passes as INT64_MAX rounds to it; its 64 bits are kept */
        if (slora_openai_int(item, "seed", (double) INT64_MIN,
                             (double) INT64_MAX, INT64_MIN, INT64_MAX, &d,
                             err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        req->seed = d >= 0 ? (uint64_t) d : (uint64_t) (int64_t) d;
        req->has_seed = 1;
    }

    return SLORA_OK;
}


/* n, stream and stream_options. */
static int
slora_openai_options(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    cJSON     *item, *opt;
    double     d;
    unsigned   flag;

    item = cJSON_GetObjectItemCaseSensitive(root, "n");
    if (item && !cJSON_IsNull(item)) {
        if (slora_openai_int(item, "n", 1, SLORA_OPENAI_MAX_N, 1,
                             SLORA_OPENAI_MAX_N, &d, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        req->n = (uint32_t) d;
    }

    /* the end user's id, for the caller's logs: a string */
    item = cJSON_GetObjectItemCaseSensitive(root, "user");
    if (item && !cJSON_IsNull(item) && !cJSON_IsString(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 "user", "user must be a string");
    }

    flag = req->stream;

    if (slora_openai_bool(root, "stream", &flag, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    req->stream = flag;

    /* vLLM's: token ids that end the answer as the model's own
     * end-of-sequence ids do (ignore_eos leaves them in force), and
     * the only ones drawn ([] or null: any); whether they are in the
     * vocabulary is the caller's to check */
    if (slora_openai_token_ids(root, "stop_token_ids",
                               SLORA_OPENAI_MAX_STOP_IDS, req->stop_ids,
                               &req->n_stop_ids, err)
        != SLORA_OK
        || slora_openai_token_ids(root, "allowed_token_ids",
                                  SLORA_OPENAI_MAX_ALLOWED, req->allowed_ids,
                                  &req->n_allowed, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    /* vLLM's: words whose tokens are not drawn (the worker makes the
     * tokens; slora_engine.h's bad_ids) */
    item = cJSON_GetObjectItemCaseSensitive(root, "bad_words");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsArray(item)
            || cJSON_GetArraySize(item) > SLORA_OPENAI_MAX_BAD)
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "bad_words",
                                     "bad_words must be an array of up to"
                                     " %d strings", SLORA_OPENAI_MAX_BAD);
        }

        cJSON_ArrayForEach(opt, item) {
            if (slora_openai_string(opt, "bad_words",
                                    &req->bad_words[req->n_bad_words], req,
                                    err)
                != SLORA_OK)
            {
                return SLORA_ERROR;
            }

            if (req->bad_words[req->n_bad_words].len == 0
                || req->bad_words[req->n_bad_words].len
                   > SLORA_OPENAI_BAD_LEN)
            {
                return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                         "invalid_value", "bad_words",
                                         "a bad word is 1 to %d bytes",
                                         SLORA_OPENAI_BAD_LEN);
            }

            req->n_bad_words++;
        }
    }

    /* vLLM's: the prompt's last k tokens (-1: as many as the context
     * holds), cut from its start; null: the whole prompt */
    item = cJSON_GetObjectItemCaseSensitive(root, "truncate_prompt_tokens");
    if (item && !cJSON_IsNull(item)) {
        if (slora_openai_int(item, "truncate_prompt_tokens", -1, INT32_MAX,
                             -1, INT32_MAX, &d, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (d == 0) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value",
                                     "truncate_prompt_tokens",
                                     "truncate_prompt_tokens must be -1 (the"
                                     " context) or at least 1");
        }

        req->keep_last = (int32_t) d;
    }


    /* vLLM's: the model's end-of-sequence ids are not drawn before this
     * many tokens (the handler checks it against max_tokens) */
    item = cJSON_GetObjectItemCaseSensitive(root, "min_tokens");
    if (item && !cJSON_IsNull(item)) {
        if (slora_openai_int(item, "min_tokens", 0, INT32_MAX, 0, INT32_MAX,
                             &d, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        req->min_tokens = (int64_t) d;
    }

    /* vLLM's extension, which load generators use to get exactly
     * max_tokens: the model's end-of-sequence ids do not stop it */
    flag = req->ignore_eos;

    if (slora_openai_bool(root, "ignore_eos", &flag, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    req->ignore_eos = flag;

    /* vLLM's include_stop_str_in_output: the stop string that matched
     * stays at the end of the text */
    flag = req->stop_in_output;

    if (slora_openai_bool(root, "include_stop_str_in_output", &flag, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    req->stop_in_output = flag;

    /* vLLM's return_tokens_as_token_ids: the logprobs' tokens named by
     * their ids, "token_id:N", for clients that must know them exactly */
    flag = req->tokens_as_ids;

    if (slora_openai_bool(root, "return_tokens_as_token_ids", &flag, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    req->tokens_as_ids = flag;

    /* vLLM's return_token_ids: the prompt's ids and each choice's
     * generated ones beside the text (streamed: the prompt's in a
     * choice's first chunk, each chunk's own after) */
    flag = req->return_ids;

    if (slora_openai_bool(root, "return_token_ids", &flag, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    req->return_ids = flag;

    if (slora_openai_cache_salt(root, req, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    /* vLLM's skip_special_tokens, true unless given: false shows the
     * control tokens an answer holds as their text */
    flag = !req->show_special;

    if (slora_openai_bool(root, "skip_special_tokens", &flag, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    req->show_special = !flag;

    /* vLLM's add_special_tokens: a completion's text prompt encoded
     * with the special tokens (BOS) the tokenizer adds, true unless
     * given; a chat's special tokens come from its template, and true
     * (false unless given) adds the tokenizer's on top, a second BOS
     * where the template writes one, as vLLM does */
    flag = req->kind == SLORA_OPENAI_COMPLETION ? !req->no_special
                                                : req->add_special;

    if (slora_openai_bool(root, "add_special_tokens", &flag, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (req->kind == SLORA_OPENAI_COMPLETION) {
        req->no_special = !flag;

    } else {
        req->add_special = flag;
    }

    /* include_usage, include_obfuscation (OpenAI's padding of a
     * stream's chunks against length side channels: this server adds
     * none, and a client reads the chunks the same without it) and
     * vLLM's continuous_usage_stats (with include_usage, the counts so
     * far in every chunk, as vLLM has it), booleans or null */
    item = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsObject(item)) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "stream_options",
                                     "stream_options must be an object with"
                                     " a boolean include_usage");
        }

        cJSON_ArrayForEach(opt, item) {
            if ((strcmp(opt->string, "include_usage") == 0
                 || strcmp(opt->string, "include_obfuscation") == 0
                 || strcmp(opt->string, "continuous_usage_stats") == 0)
                && !cJSON_IsNull(opt) && !cJSON_IsBool(opt))
            {
                return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                         "invalid_type", "stream_options",
                                         "stream_options.%s must be a "
                                         "boolean", opt->string);
            }

        }

        opt = cJSON_GetObjectItemCaseSensitive(item, "include_usage");

        /* as OpenAI: a client that asks for a stream's usage chunk
         * without a stream would wait for it in vain */
        if (!req->stream) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "stream_options",
                                     "stream_options is only allowed when"
                                     " stream is true");
        }

        req->include_usage = cJSON_IsTrue(opt) ? 1 : 0;
        opt = cJSON_GetObjectItemCaseSensitive(item,
                                               "continuous_usage_stats");
        req->continuous_usage = req->include_usage && cJSON_IsTrue(opt);
    }

    return SLORA_OK;
}


/*
 * prompt (completions), as OpenAI takes it: a string, an array of
 * strings, an array of token ids, or an array of arrays of token ids.
 * Each string or id array is a prompt of its own with n choices (the
 * answer's choice index is prompt * n + choice); at most
 * SLORA_OPENAI_MAX_N prompts. Token ids go to the model as given (no
 * BOS added); whether they are in the vocabulary is the caller's to
 * check.
 */
static int
slora_openai_prompts(cJSON *item, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    int                     size;
    cJSON                  *el;
    slora_openai_prompt_t  *p;

    if (item == NULL || cJSON_IsNull(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "missing_required_parameter", "prompt",
                                 "you must provide a prompt parameter");
    }

    if (cJSON_IsString(item)) {
        req->n_prompts = 1;
        return slora_openai_string(item, "prompt", &req->prompts[0].text,
                                   req, err);
    }

    size = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : -1;

    if (size <= 0) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 size < 0 ? "invalid_type" : "invalid_value",
                                 "prompt", "prompt must be a string, an "
                                 "array of strings, or token ids");
    }

    /* one prompt of token ids */
    if (cJSON_IsNumber(cJSON_GetArrayItem(item, 0))) {
        req->n_prompts = 1;
        return slora_openai_ids(item, "prompt", &req->prompts[0], req, err);
    }

    if (size > SLORA_OPENAI_MAX_N) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "prompt", "prompt may hold at most %d "
                                 "prompts", SLORA_OPENAI_MAX_N);
    }

    cJSON_ArrayForEach(el, item) {
        p = &req->prompts[req->n_prompts++];

        if (cJSON_IsString(el)) {
            if (slora_openai_string(el, "prompt", &p->text, req, err)
                != SLORA_OK)
            {
                return SLORA_ERROR;
            }

        } else if (cJSON_IsArray(el)) {
            if (slora_openai_ids(el, "prompt", p, req, err) != SLORA_OK) {
                return SLORA_ERROR;
            }

        } else {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_type", "prompt",
                                     "prompt[%u] must be a string or an "
                                     "array of token ids",
                                     req->n_prompts - 1);
        }
    }

    return SLORA_OK;
}


/* A non-empty array of token ids: whole numbers from 0 to 2^31 - 1. */
static int
slora_openai_ids(cJSON *item, const char *param, slora_openai_prompt_t *p,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    int       size;
    cJSON    *el;
    int32_t  *ids;
    uint32_t  n;

    size = cJSON_GetArraySize(item);

    if (size <= 0) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s must hold one token id at"
                                 " least", param);
    }

    ids = slora_openai_alloc(req, (size_t) size * sizeof(int32_t));
    if (ids == NULL) {
        return slora_openai_nomem(err);
    }

    n = 0;

    cJSON_ArrayForEach(el, item) {
        if (!cJSON_IsNumber(el) || !(el->valuedouble >= 0
                                     && el->valuedouble <= INT32_MAX)
            || el->valuedouble != (double) (int32_t) el->valuedouble)
        {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", param,
                                     "token ids must be integers from 0 to"
                                     " 2147483647");
        }

        ids[n++] = (int32_t) el->valuedouble;
    }

    p->text.data = NULL;
    p->text.len = 0;
    p->ids = ids;
    p->n_ids = n;

    return SLORA_OK;
}


/*
 * vLLM's cache_salt: a request's pages in the prefix cache are shared
 * only with requests of the same salt (and adapter and tenant), so that
 * users of one tenant cannot learn from cached tokens, or from how soon
 * a first token comes, how each other's prompts begin. Kept as the first
 * 128 bits of its SHA-256; a non-empty string, null as absent.
 */
static int
slora_openai_cache_salt(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    size_t   len;
    cJSON   *item;

    item = cJSON_GetObjectItemCaseSensitive(root, "cache_salt");

    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    if (!cJSON_IsString(item) || item->valuestring == NULL
        || item->valuestring[0] == '\0')
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 cJSON_IsString(item) ? "invalid_value"
                                                      : "invalid_type",
                                 "cache_salt", "cache_salt must be a "
                                 "non-empty string");
    }

    len = strlen(item->valuestring);

    if (!slora_utf8_text_valid(item->valuestring, len)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_utf8",
                                 "cache_salt", "cache_salt is not valid "
                                 "UTF-8");
    }

    if (slora_prefix_salt(item->valuestring, len, req->cache_salt)
        != SLORA_OK)
    {
        return slora_openai_nomem(err);
    }

    return SLORA_OK;
}


/* A JSON string, checked for UTF-8 and copied out of the cJSON tree. */
int
slora_openai_string(cJSON *item, const char *param, slora_openai_str_t *out,
    slora_openai_req_t *req, slora_openai_err_t *err)
{
    size_t  len;

    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 item ? "invalid_type"
                                      : "missing_required_parameter",
                                 param, "%s must be a string", param);
    }

    len = strlen(item->valuestring);

    if (!slora_utf8_text_valid(item->valuestring, len)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_utf8",
                                 param, "%s is not valid UTF-8", param);
    }

    out->data = slora_openai_copy(req, item->valuestring, len);
    if (out->data == NULL) {
        return slora_openai_nomem(err);
    }

    out->len = len;

    return SLORA_OK;
}


int
slora_openai_bool(cJSON *root, const char *name, unsigned *out,
    slora_openai_err_t *err)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(root, name);

    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    if (!cJSON_IsBool(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 name, "%s must be a boolean", name);
    }

    *out = cJSON_IsTrue(item) ? 1 : 0;

    return SLORA_OK;
}


/* root's name, absent or null, or an array of up to max token ids (0 to
 * INT32_MAX) into ids[*n]: a 400 naming it otherwise */
static int
slora_openai_token_ids(cJSON *root, const char *name, int max, int32_t *ids,
    uint32_t *n, slora_openai_err_t *err)
{
    double   d;
    cJSON   *item, *id;

    item = cJSON_GetObjectItemCaseSensitive(root, name);

    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) > max) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "invalid_value", name, "%s must be an array"
                                 " of up to %d token ids", name, max);
    }

    cJSON_ArrayForEach(id, item) {
        if (slora_openai_int(id, name, 0, INT32_MAX, 0, INT32_MAX, &d, err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        ids[(*n)++] = (int32_t) d;
    }

    return SLORA_OK;
}


/* A JSON number that is a whole number in [min, max]; the message shows
 * the bounds as the integers they stand for. */
int
slora_openai_int(cJSON *item, const char *param, double min, double max,
    long long shown_min, long long shown_max, double *out,
    slora_openai_err_t *err)
{
    double  d;

    if (!cJSON_IsNumber(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s must be an integer", param);
    }

    d = item->valuedouble;

    if (d != floor(d) || d < min || d > max) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s must be an integer from %lld"
                                 " to %lld", param, shown_min, shown_max);
    }

    *out = d;

    return SLORA_OK;
}


/* root's param, absent or null to keep *out: a number in [min, max], or
 * in (0, max] when min is 0 (a repetition penalty of 0 means nothing). */
static int
slora_openai_penalty(cJSON *root, const char *param, double min, double max,
    double *out, slora_openai_err_t *err)
{
    cJSON   *item;
    double   d;

    item = cJSON_GetObjectItemCaseSensitive(root, param);
    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    if (!cJSON_IsNumber(item)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_type",
                                 param, "%s must be a number", param);
    }

    d = item->valuedouble;

    if (min == 0 && !(d > 0 && d <= max)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s must be a number above 0 and at"
                                 " most %g", param, max);
    }

    if (!(d >= min && d <= max)) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 param, "%s must be a number from %g to %g",
                                 param, min, max);
    }

    *out = d;

    return SLORA_OK;
}


/* Decimal digits only, no sign, at most INT64_MAX (nginx's ngx_atoi). */
int
slora_openai_atoi(const slora_openai_str_t *s, int64_t *out)
{
    size_t   i;
    int64_t  v, d;

    if (s->len == 0) {
        return SLORA_ERROR;
    }

    v = 0;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < '0' || s->data[i] > '9') {
            return SLORA_ERROR;
        }

        d = s->data[i] - '0';

        if (v > (INT64_MAX - d) / 10) {
            return SLORA_ERROR;
        }

        v = v * 10 + d;
    }

    *out = v;

    return SLORA_OK;
}


void *
slora_openai_alloc(slora_openai_req_t *req, size_t n)
{
    void                  *p;
    size_t                 size;
    slora_openai_block_t  *b;

    n = (n + 15) & ~(size_t) 15;
    b = req->arena;

    if (b == NULL || b->size - b->used < n) {
        size = n > SLORA_OPENAI_BLOCK ? n : SLORA_OPENAI_BLOCK;

        b = malloc(sizeof(slora_openai_block_t) + size);
        if (b == NULL) {
            return NULL;
        }

        b->next = req->arena;
        b->size = size;
        b->used = 0;
        req->arena = b;
    }

    p = b->data + b->used;
    b->used += n;

    return p;
}


char *
slora_openai_copy(slora_openai_req_t *req, const char *s, size_t len)
{
    char  *p;

    p = slora_openai_alloc(req, len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


int
slora_openai_nomem(slora_openai_err_t *err)
{
    return slora_openai_fail(err, 500, "server_error", NULL, NULL,
                             "out of memory");
}


int
slora_openai_fail(slora_openai_err_t *err, int status, const char *type,
    const char *code, const char *param, const char *fmt, ...)
{
    int      n;
    va_list  args;

    err->status = status;
    err->type = type;
    err->code = code;
    err->param = param;

    va_start(args, fmt);
    n = vsnprintf(err->msg, sizeof(err->msg), fmt, args);
    va_end(args);

    if (n < 0) {
        n = 0;
    }

    err->len = (size_t) n < sizeof(err->msg) ? (size_t) n
                                             : sizeof(err->msg) - 1;

    slora_openai_clean_msg(err->msg, &err->len);

    return SLORA_ERROR;
}
