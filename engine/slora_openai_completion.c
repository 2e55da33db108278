/*
 * slora_openai_completion.c: a completion's own fields beyond its
 * prompts: best_of (candidates of which the likeliest are returned, the
 * ranking the worker's: ngx_http_slora_openai.c) and suffix (the text
 * after the answer, filled in the middle: the worker's
 * ngx_http_slora_fim_ids). Each is checked against the fields read
 * before it (n, stream, temperature, echo, the prompts, vLLM's
 * truncate_prompt_tokens), so slora_openai_parse calls them last.
 */

#include "slora_openai_int.h"


/*
 * best_of, after n, stream and temperature: a completion's candidates a
 * prompt, of which the n likeliest (by the mean log-probability of
 * their answers' tokens, as OpenAI ranks them) are returned; req->n
 * becomes the candidates and req->n_best the n returned. Fewer than n
 * is wrong (a 400 naming it, as OpenAI and vLLM answer); n itself asks
 * for nothing; more than n cannot stream (the ranking waits for every
 * candidate's end) and wants sampling: at temperature 0 every candidate
 * is the same answer (vLLM refuses it too). Chat has no best_of
 * (OpenAI's has none): null and 1 pass, any other value is refused as
 * unsupported.
 */
int
slora_openai_best_of(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    cJSON   *item;
    double   d;

    item = cJSON_GetObjectItemCaseSensitive(root, "best_of");
    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    if (req->kind != SLORA_OPENAI_COMPLETION) {
        if (cJSON_IsNumber(item) && item->valuedouble == 1) {
            return SLORA_OK;
        }

        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                 "unsupported_parameter", "best_of",
                                 "best_of is served by completions only");
    }

    if (slora_openai_int(item, "best_of", 1, SLORA_OPENAI_MAX_N, 1,
                         SLORA_OPENAI_MAX_N, &d, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (d < req->n) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "best_of", "best_of must be greater than or"
                                 " equal to n, got n=%u and best_of=%g",
                                 req->n, d);
    }

    if (d == req->n) {
        return SLORA_OK;
    }

    if (req->stream) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "best_of", "best_of greater than n cannot"
                                 " stream: the n best are known only at the"
                                 " candidates' end");
    }

    if (req->temperature == 0) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "best_of", "best_of greater than n needs"
                                 " sampling: at temperature 0 every"
                                 " candidate is the same answer");
    }

    req->n_best = req->n;
    req->n = (uint32_t) d;

    return SLORA_OK;
}


/*
 * A completion's suffix, after its prompts and echo: the text that comes
 * after the answer, which then fills the middle (the model's own
 * fill-in-the-middle marks around the prompt and the suffix, put there
 * by the worker: slora_tokenizer_fim). null and "" ask for nothing.
 * Each prompt must be a text (the marks go between texts); echo is
 * refused with it (the prompt it would show is not the model's), and
 * vLLM's truncate_prompt_tokens (its cut would take the first mark).
 * (Chat's suffix is refused as unsupported: slora_openai_unsupported.)
 */
int
slora_openai_suffix(cJSON *root, slora_openai_req_t *req,
    slora_openai_err_t *err)
{
    uint32_t             k;
    cJSON               *item;
    slora_openai_str_t   s;

    item = cJSON_GetObjectItemCaseSensitive(root, "suffix");
    if (item == NULL || cJSON_IsNull(item)) {
        return SLORA_OK;
    }

    if (slora_openai_string(item, "suffix", &s, req, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (s.len == 0) {
        return SLORA_OK;
    }

    for (k = 0; k < req->n_prompts; k++) {
        if (req->prompts[k].text.data == NULL) {
            return slora_openai_fail(err, 400, SLORA_OPENAI_BAD,
                                     "invalid_value", "suffix",
                                     "suffix needs the prompt as text, not"
                                     " token ids");
        }
    }

    if (req->echo) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "suffix", "echo cannot be combined with"
                                 " suffix");
    }

    if (req->keep_last != 0) {
        return slora_openai_fail(err, 400, SLORA_OPENAI_BAD, "invalid_value",
                                 "suffix", "truncate_prompt_tokens cannot be"
                                 " combined with suffix (it would cut the"
                                 " marks the suffix puts first)");
    }

    req->suffix = s;

    return SLORA_OK;
}
