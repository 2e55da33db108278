/*
 * ngx_http_slora_slot.c: what a choice's slot asks of the engine besides
 * its prompt, filled from the request: the sampling settings, the
 * log-probabilities (the output's, and the prompt's records for echo and
 * vLLM's prompt_logprobs, which only a prompt's first choice reads), the
 * constraints (a JSON schema or grammar with its trigger and a think
 * block's gate, logit_bias, allowed_token_ids, bad_words' runs), the seed,
 * the token bounds and the prefix cache's salt (the client's cache_salt
 * with `slora_cache_salt`'s value folded in). ngx_http_slora_handler.c
 * claims the slot and writes its adapter, prompt and prediction.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_prompt.h"
#include "slora_prefix.h"


/* Choice i of the request (its prompt pi, bad[n_bad] the bad_words'
 * runs) into its claimed slot. */
void
ngx_http_slora_slot_sampling(ngx_http_slora_ctx_t *ctx,
    const slora_openai_req_t *req, slora_queue_t *q,
    ngx_http_slora_choice_t *ch, ngx_uint_t i,
    const ngx_http_slora_prompt_t *pi, const int32_t *bad, int32_t n_bad)
{
    slora_slot_t  *s;

    s = slora_queue_slot(q, ch->slot);

    s->temperature = (float) req->temperature;
    s->top_p = (float) req->top_p;
    s->min_p = (float) req->min_p;
    s->top_k = (int32_t) req->top_k;
    s->repeat_penalty = (float) req->repetition_penalty;
    s->frequency_penalty = (float) req->frequency_penalty;
    s->presence_penalty = (float) req->presence_penalty;
    /* best_of's ranking reads each token's own log-probability */
    s->logprobs = req->logprobs ? req->top_logprobs
                  : req->n_best ? 0 : -1;
    /* the prompt's records, with the alternatives of whichever asks
     * for more: echo's log-probabilities (with max_tokens 0 the
     * engine's part is the prompt's alone, and those are what it
     * computes) and vLLM's prompt_logprobs, which the prompt's
     * first choice reads for all of them */
    s->prompt_logprobs = -1;
    ch->reads_scores = req->prompt_logprobs && i % req->n == 0;

    if (req->echo && (req->logprobs || pi->max_tokens == 0)) {
        s->prompt_logprobs = req->logprobs ? req->top_logprobs : 0;
    }

    if (ch->reads_scores) {
        s->prompt_logprobs = ngx_max(s->prompt_logprobs,
                                     req->prompt_top);
    }
    s->json = req->json;
    s->schema_len = (uint32_t) req->schema.len;
    s->schema_form = req->schema_form;
    s->json_compact = req->json_compact;
    s->trigger_len = (uint32_t) req->schema_trigger.len;
    s->trigger_lead = req->trigger_lead ? SLORA_TRIGGER_LEAD
                      : req->trigger_ends ? SLORA_TRIGGER_ENDS : 0;

    if (req->schema.len) {
        ngx_memcpy(slora_queue_schema(q, ch->slot), req->schema.data,
                   req->schema.len);
    }

    s->gate_len = 0;

    if (req->schema_trigger.len) {
        ngx_memcpy(slora_queue_schema(q, ch->slot) + req->schema.len,
                   req->schema_trigger.data, req->schema_trigger.len);

        /* a reasoning model's calls come after its think block */
        if (!req->trigger_lead) {
            s->gate_len = (uint32_t) ngx_http_slora_think_trigger(ctx,
                              (u_char *) slora_queue_schema(q, ch->slot)
                              + req->schema.len + req->schema_trigger.len,
                              SLORA_QUEUE_SCHEMA_LEN - req->schema.len
                              - req->schema_trigger.len);
        }

    } else if (req->schema.len && req->tags_triggered) {
        /* a reasoning model's tags come after its think block */
        s->gate_len = (uint32_t) ngx_http_slora_think_trigger(ctx,
                          (u_char *) slora_queue_schema(q, ch->slot)
                          + req->schema.len,
                          SLORA_QUEUE_SCHEMA_LEN - req->schema.len);

    } else if (req->schema.len
               && (req->schema_form == SLORA_JSON_FORM_SCHEMA
                   || req->schema_form == SLORA_JSON_FORM_TAGS))
    {
        /* a reasoning model's schema, or its one tag, holds after its
         * think block */
        s->trigger_len = (uint32_t) ngx_http_slora_think_trigger(ctx,
                             (u_char *) slora_queue_schema(q, ch->slot)
                             + req->schema.len,
                             SLORA_QUEUE_SCHEMA_LEN - req->schema.len);
        s->trigger_lead = s->trigger_len ? SLORA_TRIGGER_ENDS : 0;
    }

    s->n_logit_bias = req->n_logit_bias;
    ngx_memcpy(s->logit_bias_ids, req->logit_bias_ids,
               req->n_logit_bias * sizeof(int32_t));
    ngx_memcpy(s->logit_bias, req->logit_bias,
               req->n_logit_bias * sizeof(float));
    s->n_allowed = (int32_t) req->n_allowed;
    ngx_memcpy(s->allowed_ids, req->allowed_ids,
               req->n_allowed * sizeof(int32_t));
    s->n_bad = n_bad;
    ngx_memcpy(s->bad_ids, bad, n_bad * sizeof(int32_t));
    /* a given seed makes each choice's draws its own and repeatable,
     * each prompt's as it would be alone */
    s->seed = req->has_seed ? req->seed + i % req->n
                            : ((uint64_t) ngx_random() << 32)
                              ^ (uint64_t) ngx_random()
                              ^ (uint64_t) ctx->t_start_ns;
    s->max_tokens = pi->max_tokens;
    s->min_tokens = (int32_t) req->min_tokens;
    s->cache_salt[0] = req->cache_salt[0];
    s->cache_salt[1] = req->cache_salt[1];
}


/*
 * slora_cache_salt's value, where it is not empty, folded into the
 * request's cache salt: the first 128 bits of the SHA-256 of a NUL, the
 * client's salt's 16 bytes (zeros without one) and the value. A
 * client's own salt is the digest of a string without a NUL, so no
 * cache_salt a client sends gives the salt of another's value: pages
 * are shared only between requests whose values, and cache_salts, are
 * the same.
 */
ngx_int_t
ngx_http_slora_cache_salt(ngx_http_request_t *r, slora_openai_req_t *req)
{
    u_char                     *in;
    ngx_str_t                   v;
    ngx_http_slora_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_slora_module);

    if (slcf->cache_salt == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, slcf->cache_salt, &v) != NGX_OK) {
        return NGX_ERROR;
    }

    if (v.len == 0) {
        return NGX_OK;
    }

    in = ngx_pnalloc(r->pool, 1 + sizeof(req->cache_salt) + v.len);
    if (in == NULL) {
        return NGX_ERROR;
    }

    in[0] = '\0';
    ngx_memcpy(in + 1, req->cache_salt, sizeof(req->cache_salt));
    ngx_memcpy(in + 1 + sizeof(req->cache_salt), v.data, v.len);

    if (slora_prefix_salt(in, 1 + sizeof(req->cache_salt) + v.len,
                          req->cache_salt)
        != SLORA_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
