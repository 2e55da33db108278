/*
 * slora_openai_query.c: the GET stream endpoint's query (model, prompt,
 * chat, max_tokens, temperature) as a request, for EventSource and
 * curl, which send no body.
 *
 * The one idea: the query's values are read as the body's are, no more
 * loosely: max_tokens in decimal digits, temperature a number as JSON
 * writes one (slora_openai_number_text), so that a value strtod() alone
 * would take ("+1", " 1", "1x", "inf") is the 400 a body's would be.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_openai_int.h"


static int slora_openai_number_text(const char *s, size_t len);


int
slora_openai_parse_query(const slora_openai_query_t *args,
    const char *system, slora_openai_req_t *req, slora_openai_err_t *err)
{
    int                 chat;
    char                buf[32];
    const char         *model;
    size_t              model_len;
    slora_chat_msg_t   *m;
    slora_openai_str_t  v;

    slora_openai_defaults(req, SLORA_OPENAI_COMPLETION);
    req->stream = 1;

    model = args->model.data ? args->model.data : "base";
    model_len = args->model.data ? args->model.len : 4;

    if (args->prompt.data == NULL) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "missing_required_parameter", "prompt",
                                 "The query needs prompt=TEXT");
    }

    v = args->chat;
    chat = v.data != NULL
           && ((v.len == 1 && v.data[0] == '1')
               || (v.len == 4 && memcmp(v.data, "true", 4) == 0));

    if (args->max_tokens.data != NULL
        && (slora_openai_atoi(&args->max_tokens, &req->max_tokens)
            != SLORA_OK
            || req->max_tokens <= 0))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "max_tokens", "max_tokens must be a"
                                 " positive integer");
    }

    v = args->temperature;

    if (v.data != NULL) {
        if (v.len >= sizeof(buf) || !slora_openai_number_text(v.data, v.len))
        {
            goto bad_temperature;
        }

        memcpy(buf, v.data, v.len);
        buf[v.len] = '\0';
        req->temperature = strtod(buf, NULL);

        if (!(req->temperature >= 0 && req->temperature <= 2)) {
            goto bad_temperature;
        }
    }

    if (!slora_utf8_text_valid(args->prompt.data, args->prompt.len)
        || !slora_utf8_text_valid(model, model_len))
    {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_utf8",
                                 "prompt", "The query holds invalid UTF-8");
    }

    req->model.data = slora_openai_copy(req, model, model_len);
    req->model.len = model_len;
    req->prompts[0].text.data = slora_openai_copy(req, args->prompt.data,
                                                  args->prompt.len);
    req->prompts[0].text.len = args->prompt.len;
    req->n_prompts = 1;

    if (req->model.data == NULL || req->prompts[0].text.data == NULL) {
        return slora_openai_nomem(err);
    }

    if (chat) {
        m = slora_openai_alloc(req, sizeof(slora_chat_msg_t));
        if (m == NULL) {
            return slora_openai_nomem(err);
        }

        memset(m, 0, sizeof(slora_chat_msg_t));
        m->role = "user";
        m->role_len = 4;
        m->content = req->prompts[0].text.data;
        m->content_len = req->prompts[0].text.len;

        req->kind = SLORA_OPENAI_CHAT;
        req->msgs = m;
        req->n_msgs = 1;
        req->n_prompts = 0;

        if (slora_openai_default_system(system, req, err) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;

bad_temperature:

    return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                             "temperature", "temperature must be a number"
                             " between 0 and 2");
}



/*
 * Whether s is a number as JSON writes one (RFC 8259: an optional minus,
 * digits without a leading zero, a fraction, an exponent) and nothing
 * else: the query's numbers read as the body's do, where strtod() alone
 * would take blanks before, a tail after, hex, "inf" and a sign "+".
 */
static int
slora_openai_number_text(const char *s, size_t len)
{
    size_t  i, from;

    i = (len > 0 && s[0] == '-');

    if (i < len && s[i] == '0') {
        i++;

    } else {
        for (from = i; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* the integer part's digits */
        }

        if (i == from) {
            return 0;
        }
    }

    if (i < len && s[i] == '.') {
        for (from = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* the fraction's digits */
        }

        if (i == from) {
            return 0;
        }
    }

    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        i += (i < len && (s[i] == '+' || s[i] == '-'));

        for (from = i; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* the exponent's digits */
        }

        if (i == from) {
            return 0;
        }
    }

    return i == len;
}
