/*
 * slora_openai_int.h: what the parser's files share (slora_openai.c, the
 * request itself, its arena and the primitives of every field;
 * slora_openai_answer.c, the fields that shape the answer rather than the
 * run; slora_openai_tools.c, function calling): the error's type and the
 * field parsers each file lends the other. Not for callers of the parser.
 */

#ifndef SLORA_OPENAI_INT_H
#define SLORA_OPENAI_INT_H


#include <cjson/cJSON.h>

#include "slora_openai.h"
#include "slora_pyjson.h"
#include "slora_utf8.h"


#define SLORA_OPENAI_BAD     "invalid_request_error"


/* slora_openai.c: the primitives */

/* req zeroed and given its kind's defaults. */
void slora_openai_defaults(slora_openai_req_t *req, slora_openai_kind_e kind);
/* A chat without a system message begins with the template's default
 * one (text; NULL: none), as the template writes it. */
int slora_openai_default_system(const char *text, slora_openai_req_t *req,
    slora_openai_err_t *err);
/* The body as a JSON object; NULL with err set when it is not one. */
cJSON *slora_openai_root(const char *body, size_t len,
    slora_openai_err_t *err);
/* A chat or completion request's fields from its object. */
int slora_openai_fields(cJSON *root, slora_openai_kind_e kind,
    const slora_openai_limits_t *lim, slora_openai_req_t *req,
    slora_openai_err_t *err);

/* A JSON string, checked for UTF-8 and copied into req's arena. */
int slora_openai_string(cJSON *item, const char *param,
    slora_openai_str_t *out, slora_openai_req_t *req,
    slora_openai_err_t *err);
/* root's boolean field name into *out (1 true, 0 false; left as it is
 * where absent or null); another type is a 400 naming it. */
int slora_openai_bool(cJSON *root, const char *name, unsigned *out,
    slora_openai_err_t *err);
/* A number that is an integer in [min, max] (shown as shown_min ..
 * shown_max in the error). */
int slora_openai_int(cJSON *item, const char *param, double min, double max,
    long long shown_min, long long shown_max, double *out,
    slora_openai_err_t *err);
/* A query argument's decimal digits (no sign, no blanks) as an integer;
 * SLORA_ERROR when it is not one or overflows. */
int slora_openai_atoi(const slora_openai_str_t *s, int64_t *out);
void *slora_openai_alloc(slora_openai_req_t *req, size_t n);
char *slora_openai_copy(slora_openai_req_t *req, const char *s, size_t len);
int slora_openai_nomem(slora_openai_err_t *err);
/* Sets err (status, type, code, param, message); returns SLORA_ERROR. */
int slora_openai_fail(slora_openai_err_t *err, int status, const char *type,
    const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));


/* slora_openai_answer.c: log-probabilities and echo, logit_bias,
 * response_format, what is not served, stop */

int slora_openai_logprobs(cJSON *root, const slora_openai_limits_t *lim,
    slora_openai_req_t *req, slora_openai_err_t *err);
int slora_openai_logit_bias(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
int slora_openai_response_format(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
int slora_openai_unsupported(cJSON *root, slora_openai_kind_e kind,
    slora_openai_err_t *err);
/* A completion's best_of and suffix (slora_openai_completion.c). */
int slora_openai_best_of(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
int slora_openai_suffix(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
/* messages[i]'s fields this server cannot render (an earlier answer's
 * audio, a legacy function_call): a 400 naming the field */
int slora_openai_msg_unsupported(cJSON *m, size_t i,
    slora_openai_err_t *err);
int slora_openai_stop(cJSON *stop, const slora_openai_limits_t *lim,
    slora_openai_req_t *req, slora_openai_err_t *err);
/* A schema object (req->schema_choice: guided_choice's array), compiled
 * (a 400 naming param if it cannot be enforced) and kept in req->schema
 * as its compact text. */
int slora_openai_schema(cJSON *sch, const char *param,
    slora_openai_req_t *req, slora_openai_err_t *err);
/* The same from a schema's text (of req->schema_form) */
int slora_openai_schema_text(const char *text, size_t len,
    const char *param, slora_openai_req_t *req, slora_openai_err_t *err);


/* slora_openai_guided.c: vLLM's guided decoding (guided_json,
 * guided_choice, guided_regex) and its structured_outputs */

int slora_openai_guided(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
/* A structural tag (either of vLLM's shapes; item an object or its JSON
 * text) into req->schema, SLORA_JSON_FORM_TAGS; param names it. */
int slora_openai_structural_tag(cJSON *item, const char *param,
    slora_openai_req_t *req, slora_openai_err_t *err);


/* slora_openai_tools.c: function calling */

/* The spans of a text being made for the model (a slora_pyjson_text_t:
 * tools, calls, results in its format) that came from the request; the
 * rest is the format's marks. */
typedef struct {
    slora_span_t         *span;     /* malloc()ed [cap] */
    size_t                n;
    size_t                cap;
    int                   failed;   /* memory ran out */
} slora_openai_plain_t;

slora_openai_toolfmt_e slora_openai_tool_format(slora_chat_e chat,
    int call_ids);
/* Bytes [from, to) of the text being made came from the request. */
void slora_openai_plain(slora_openai_plain_t *p, size_t from, size_t to);
/* m's content, written into the text being made from at: its spans that
 * came from the request (all of it, unless m was made). */
void slora_openai_plain_msg(slora_openai_plain_t *p,
    const slora_chat_msg_t *m, size_t at);
/* The text t, written for the model, as m's content as it is, made (its
 * plain spans p's); t's buffer and p's spans freed. */
int slora_openai_tool_verbatim(slora_pyjson_text_t *t,
    slora_openai_plain_t *p, slora_chat_msg_t *m, slora_openai_req_t *req,
    slora_openai_err_t *err);
/* 1 when the chat's first message is a system message. */
int slora_openai_has_system(const slora_openai_req_t *req);
/* A system message of text[0..len) put before the chat's messages. */
int slora_openai_system(slora_openai_req_t *req, const char *text,
    size_t len, slora_openai_err_t *err);
/* A message of role and text[0..len) put before the chat's message at
 * (at == n_msgs: after the last). */
int slora_openai_insert(slora_openai_req_t *req, uint32_t at,
    const char *role, const char *text, size_t len, slora_openai_err_t *err);
int slora_openai_tools(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
int slora_openai_tool_message(cJSON *m, size_t i, slora_chat_msg_t *cm,
    slora_chat_msg_t *prev, slora_openai_req_t *req,
    slora_openai_err_t *err);
/* A function's name as tools and calls may have it: 1 to
 * SLORA_TOOL_NAME_MAX letters, digits, '_', '-' or '.'. */
int slora_openai_tool_name_ok(const char *name);

/* slora_openai_messages.c: a chat's messages, its echo (after its
 * flags: slora_openai_prompt_end), and its prediction */
int slora_openai_messages(cJSON *msgs, slora_openai_req_t *req,
    slora_openai_err_t *err);
int slora_openai_chat_echo(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);
int slora_openai_prediction(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err);

/* slora_openai_think.c */
/* 1 when a user message's content c[0..cl) is a query (Qwen3's
 * last_query_index), 0 when it is a tool's result. */
int slora_openai_think_query(const char *c, size_t cl);
int slora_openai_think_turn(cJSON *m, size_t k, size_t query, int last,
    slora_chat_msg_t *cm, slora_openai_req_t *req, slora_openai_err_t *err);


/* slora_openai_mistral.c: function calling in Mistral's formats */

int slora_openai_mistral_tools(cJSON *tools, slora_openai_req_t *req,
    slora_openai_err_t *err);
int slora_openai_mistral_calls(cJSON *calls, cJSON *args, size_t i,
    slora_chat_msg_t *cm, slora_openai_req_t *req, slora_openai_err_t *err);
int slora_openai_mistral_result(cJSON *m, size_t i, slora_chat_msg_t *cm,
    slora_openai_req_t *req, slora_openai_err_t *err);



/* slora_openai_resp_items.c: Responses API items as chat messages
 * (input: a request's input, else a conversation's items) */
int slora_openai_resp_items(cJSON *items, const char *param, cJSON *msgs,
    int input, int *made, int *n, slora_openai_err_t *err);
/* the reasoning text r (taken) joined to the assistant's message m's */
int slora_openai_reason_join(cJSON *m, cJSON *r, int before,
    slora_openai_err_t *err);
/* slora_openai_responses.c: item is the string s */
int slora_openai_resp_is(cJSON *item, const char *s);

/* slora_openai_conv.c: a stored conversation's messages less the items
 * removed from it (what a prompt reads) */
int slora_openai_conv_live(cJSON *msgs, slora_openai_err_t *err);
/* A request's metadata (absent or null: {}), a copy checked against
 * OpenAI's limits (a conversation's, a response's); NULL with err set. */
cJSON *slora_openai_metadata(cJSON *root, slora_openai_err_t *err);


#endif /* SLORA_OPENAI_INT_H */
