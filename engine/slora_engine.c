/*
 * slora_engine.c: the engine as a library: it loads the model, creates
 * the backend, sizes the unified pool, lists the adapter catalog, and
 * runs steps: the scheduler plans, the backend computes, the sampler
 * picks, and events go back through the caller's callback.
 *
 * The one idea: a step is a pure function of the scheduler's plan. The
 * engine turns the plan into one slora_batch_t (sequences grouped by
 * adapter, each with its page table), runs one forward over it, samples
 * one token for each sequence whose chunk reached its last known token,
 * and reports. A request that fails (its adapter cannot be read, it can
 * never fit) gets an ERROR event and leaves; the others go on.
 *
 * Before the scheduler sees a request, its tenant and adapter are
 * resolved through the catalog, and its adapter read from disk while
 * others run, by the prefetch thread: slora_engine_adapters.c has that
 * side, with the admin operations.
 *
 * Every step's tokens and wall time go to the scheduler's step-time
 * model, which the "slo" policy's estimates of time to first token use.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "slora_engine_int.h"
#include "slora_utf8.h"


static size_t slora_engine_pool_size(const slora_engine_t *e);
static void slora_engine_peaks(slora_engine_t *e);
static int slora_engine_run(slora_engine_t *e, slora_sched_step_t *step,
    slora_event_cb cb, void *data);
static void slora_engine_picks(slora_engine_t *e,
    const slora_sched_step_t *step, slora_batch_t *batch);
static void slora_engine_scores(slora_engine_t *e,
    const slora_sched_item_t *it, int32_t first, slora_event_cb cb,
    void *data);


slora_engine_t *
slora_engine_init(const slora_engine_conf_t *conf, slora_err_t *err)
{
    long                    cores;
    int32_t                 l;
    size_t                  bytes;
    slora_engine_t         *e;
    slora_pool_geom_t       g;
    slora_sched_conf_t      sc;
    slora_catalog_conf_t    cc;
    slora_model_config_t   *cfg;

    const slora_sched_policy_t  *policy;

    if (conf->model_path == NULL) {
        slora_err_set(err, SLORA_ERROR, "engine: no model path");
        return NULL;
    }

    policy = slora_sched_policy(conf->schedule != NULL
                                && conf->schedule[0] != '\0'
                                ? conf->schedule : "fcfs");
    if (policy == NULL) {
        slora_err_set(err, SLORA_ERROR, "engine: schedule \"%s\" is not "
                      "one of " SLORA_SCHED_POLICIES, conf->schedule);
        return NULL;
    }

    e = calloc(1, sizeof(slora_engine_t));
    if (e == NULL) {
        slora_err_set(err, SLORA_ERROR, "engine: out of memory");
        return NULL;
    }

    e->wake_fd = -1;
    slora_engine_log_open(e);
    e->resolving_tail = &e->resolving;
    e->conf = *conf;
    e->conf.adapter_dir = NULL;
    e->conf.model_path = NULL;
    e->conf.redis_url = NULL;
    e->conf.adapter_roots = NULL;
    e->conf.device = NULL;
    e->conf.backend_lib = NULL;

    if (e->conf.n_threads <= 0) {
        cores = sysconf(_SC_NPROCESSORS_ONLN);
        e->conf.n_threads = cores > 0 ? (int32_t) cores : 1;
    }

    if (e->conf.host_cache_bytes == 0) {
        e->conf.host_cache_bytes = (size_t) 1 << 30;
    }

    if (e->conf.max_batch_tokens <= 0) {
        e->conf.max_batch_tokens = 512;
    }

    if (e->conf.max_running <= 0) {
        e->conf.max_running = 64;
    }

    if (e->conf.max_running > e->conf.max_batch_tokens) {
        e->conf.max_running = e->conf.max_batch_tokens;
    }

    if (e->conf.max_waiting <= 0) {
        e->conf.max_waiting = 4096;
    }

    if (e->conf.pinned_max <= 0 || e->conf.pinned_max > 100) {
        e->conf.pinned_max = 50;
    }

    if (e->conf.tensor_parallel <= 0) {
        e->conf.tensor_parallel = 1;
    }

    e->backend = slora_backend_open(conf->device, e->conf.tensor_parallel,
                                    e->conf.n_threads, conf->weights,
                                    conf->backend_lib, err);
    e->conf.weights = NULL;
    if (e->backend == NULL) {
        goto failed;
    }

    if (e->conf.lookup_running <= 0) {
        e->conf.lookup_running = SLORA_ENGINE_LOOKUP_RUNNING;
    }

    /* a backend that makes a random model's weights itself gets none
     * from the host (the 70B shape would be 280 GB of f32 there) */
    e->model = e->backend->makes_random
               && slora_model_is_random(conf->model_path)
               ? slora_model_random_deferred(conf->model_path, err)
               : slora_model_load(conf->model_path, err);
    if (e->model == NULL) {
        goto failed;
    }

    cfg = &e->model->cfg;

    if (e->conf.max_ctx <= 0) {
        e->conf.max_ctx = cfg->max_ctx > 0 && cfg->max_ctx
                          < SLORA_ENGINE_MAX_CTX ? cfg->max_ctx
                                                 : SLORA_ENGINE_MAX_CTX;
    }

    if (e->backend->load_model(e->backend, e->model, err) != SLORA_OK) {
        goto failed;
    }

    g.n_layers = cfg->n_layers;
    g.kv_dim = cfg->n_kv_heads * cfg->head_dim;
    g.hidden = cfg->hidden;
    g.ffn = cfg->ffn;
    g.elem_size = e->backend->elem_size;
    g.min_tokens_per_page = 0;
    g.slices = e->conf.tensor_parallel;

    e->pool = slora_pool_create(&g, slora_engine_pool_size(e), err);
    if (e->pool == NULL) {
        goto failed;
    }

    bytes = slora_pool_arena_bytes(e->pool);
    if (e->backend->alloc_arena(e->backend, bytes,
                                slora_pool_page_elems(e->pool), err)
        != SLORA_OK)
    {
        goto failed;
    }

    e->layer_off = malloc((size_t) cfg->n_layers * sizeof(int64_t));
    e->tokens = malloc((size_t) e->conf.max_batch_tokens * sizeof(int32_t));
    e->seqs = calloc((size_t) e->conf.max_running, sizeof(slora_batch_seq_t));
    e->loras = calloc((size_t) e->conf.max_running, sizeof(slora_lora_t));
    /* a row for every running request's last token, and the rows a step
     * gives prompts' log-probabilities (slora_sched_conf_t.score_rows):
     * on the host a row's logits are the vocabulary's floats, so a few;
     * a backend that scores them sends back a few numbers a row, so a
     * step's whole budget, up to where the pinned rows the engine keeps
     * for every row (a pick may follow them) grow too large */
    e->score_rows = SLORA_ENGINE_SCORE_ROWS;

    if (e->backend->scores && e->conf.max_batch_tokens > e->score_rows) {
        e->score_rows = e->conf.max_batch_tokens < SLORA_ENGINE_SCORE_ROWS_MAX
                        ? e->conf.max_batch_tokens
                        : SLORA_ENGINE_SCORE_ROWS_MAX;
    }

    e->max_rows = e->conf.max_running + e->score_rows;
    /* the backend's host memory: a GPU copies rows straight into it */
    e->logits_bytes = (size_t) e->max_rows * (size_t) cfg->vocab
                      * sizeof(float);
    e->logits = slora_host_alloc(&e->backend->host_mem, e->logits_bytes);
    e->ids = malloc((size_t) e->max_rows * sizeof(int32_t));
    e->draws = malloc((size_t) e->max_rows * sizeof(slora_draw_t));
    e->host_rows = malloc((size_t) e->max_rows);
    e->score_tok = malloc((size_t) e->max_rows * sizeof(int32_t));
    e->scores = malloc((size_t) e->max_rows * sizeof(slora_score_t));

    if (e->layer_off == NULL || e->tokens == NULL || e->seqs == NULL
        || e->loras == NULL || e->logits == NULL || e->ids == NULL
        || e->draws == NULL || e->host_rows == NULL || e->score_tok == NULL
        || e->scores == NULL)
    {
        slora_err_set(err, SLORA_ERROR, "engine: out of memory");
        goto failed;
    }

    for (l = 0; l < cfg->n_layers; l++) {
        e->layer_off[l] = slora_pool_layer_offset(e->pool, l);
    }

    e->adapters = slora_adapters_create(cfg, e->pool, e->backend,
                                        e->conf.host_cache_bytes, err);
    if (e->adapters == NULL) {
        goto failed;
    }

    slora_adapters_set_pin_cap(e->adapters,
                               (int32_t) ((int64_t) slora_pool_n_pages(e->pool)
                                          * e->conf.pinned_max / 100));

    e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->wake_fd < 0) {
        slora_err_set(err, SLORA_ERROR, "engine: eventfd: %s",
                      strerror(errno));
        goto failed;
    }

    cc.redis_url = conf->redis_url;
    cc.adapter_dir = conf->adapter_dir;
    cc.roots = conf->adapter_roots;
    cc.n_roots = conf->n_adapter_roots;
    cc.connect_timeout_ms = conf->redis_connect_timeout_ms;
    cc.command_timeout_ms = conf->redis_timeout_ms;
    cc.hint_interval_ms = conf->hint_interval_ms;
    cc.n_popular = 0;
    cc.wake_fd = e->wake_fd;

    e->redis = conf->redis_url != NULL && conf->redis_url[0] != '\0';
    e->catalog = slora_catalog_create(&cc, err);
    if (e->catalog == NULL || slora_engine_catalog(e, err) != SLORA_OK) {
        goto failed;
    }

    if (!conf->no_prefetch) {
        e->prefetch = slora_prefetch_create(cfg,
                                            slora_pool_page_elems(e->pool),
                                            slora_pool_slices(e->pool),
                                            &e->backend->host_mem,
                                            conf->prefetch_threads,
                                            e->wake_fd, err);
        if (e->prefetch == NULL) {
            goto failed;
        }
    }

    memset(&sc, 0, sizeof(sc));
    sc.max_batch_tokens = e->conf.max_batch_tokens;
    sc.max_running = e->conf.max_running;
    sc.slo_ttft_ms = conf->slo_ttft_ms;
    sc.fair_prefill = conf->fair_prefill;
    sc.fair_decode = conf->fair_decode;
    sc.prefix_cache = !conf->no_prefix_cache;
    sc.score_rows = e->score_rows;
    e->conf.schedule = policy->name;

    e->sched = slora_sched_create(&sc, e->pool, e->adapters, policy, err);
    if (e->sched == NULL) {
        goto failed;
    }

    if (slora_engine_host_init(&e->host, cfg->vocab, e->conf.max_running,
                               e->max_rows, e->conf.n_threads, err)
        != SLORA_OK)
    {
        goto failed;
    }

    if (conf->tokenizer != NULL) {
        e->json_vocab = slora_json_vocab_create(conf->tokenizer, cfg->vocab,
                                                err);
        if (e->json_vocab == NULL) {
            goto failed;
        }
    }

    return e;

failed:

    slora_engine_free(e);
    return NULL;
}


void
slora_engine_free(slora_engine_t *e)
{
    slora_req_t             *r;
    slora_engine_req_t      *q;
    slora_prefetch_done_t    done;

    if (e == NULL) {
        return;
    }

    slora_engine_log_close(e);

    /* the threads first: they write to wake_fd */
    slora_catalog_free(e->catalog);
    slora_engine_schemas_stop(e);
    slora_engine_drop_checked(e);

    if (e->prefetch != NULL) {
        while (slora_prefetch_take(e->prefetch, &done)) {
            slora_adapter_image_free(&done.img);
        }
        slora_prefetch_free(e->prefetch);
    }

    slora_engine_reading_clear(e);

    if (e->wake_fd >= 0) {
        close(e->wake_fd);
    }

    while (e->resolving != NULL) {
        q = e->resolving;
        e->resolving = q->next_resolving;
        slora_engine_req_free(e, q);
    }

    if (e->sched != NULL) {
        while ((r = slora_sched_first(e->sched)) != NULL) {
            slora_engine_end(e, (slora_engine_req_t *) r);
        }
    }

    slora_sched_free(e->sched);
    slora_engine_host_free(&e->host);
    slora_json_vocab_free(e->json_vocab);
    free(e->guard_ids);
    slora_engine_schemas_free(e);
    slora_adapters_free(e->adapters);
    slora_pool_free(e->pool);

    if (e->backend != NULL) {
        slora_host_free(&e->backend->host_mem, e->logits, e->logits_bytes);
        e->backend->free(e->backend);
    }

    slora_model_free(e->model);

    free(e->layer_off);
    free(e->tokens);
    free(e->seqs);
    free(e->loras);
    free(e->ids);
    free(e->draws);
    free(e->host_rows);
    free(e->score_tok);
    free(e->scores);
    free(e->names);
    free(e->infos);
    free(e->hint_pins);
    free(e);
}


int
slora_engine_submit(slora_engine_t *e, const slora_request_t *req,
    slora_err_t *err)
{
    int                       rc;
    int32_t                   i, k, len, vocab, cap;
    int64_t                   now;
    size_t                    size;
    slora_engine_req_t       *q;
    const slora_sampling_t   *sp;

    vocab = e->model->cfg.vocab;
    sp = &req->sampling;

    if (req->n_prompt < 1 || req->prompt == NULL) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: empty prompt",
                             (unsigned long long) req->id);
    }

    for (i = 0; i < req->n_prompt; i++) {
        if (req->prompt[i] < 0 || req->prompt[i] >= vocab) {
            return slora_err_set(err, SLORA_ERROR, "request %llu: prompt "
                                 "token %d is %d, outside the vocabulary "
                                 "(%d)", (unsigned long long) req->id, i,
                                 req->prompt[i], vocab);
        }
    }

    if (sp->max_tokens < (req->prompt_logprobs ? 0 : 1)
        || (int64_t) req->n_prompt + sp->max_tokens > e->conf.max_ctx)
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: %d prompt "
                             "tokens + max_tokens %d must fit the context of "
                             "%d (max_tokens >= 1, or 0 with the prompt's "
                             "log-probabilities)",
                             (unsigned long long) req->id, req->n_prompt,
                             sp->max_tokens, e->conf.max_ctx);
    }

    if (!(sp->temperature >= 0) || !isfinite(sp->temperature)
        || sp->top_k < 0 || !(sp->top_p >= 0 && sp->top_p <= 1)
        || !(sp->min_p >= 0 && sp->min_p <= 1)
        || !(sp->repeat_penalty >= 0) || !isfinite(sp->repeat_penalty)
        || !(sp->frequency_penalty >= -2 && sp->frequency_penalty <= 2)
        || !(sp->presence_penalty >= -2 && sp->presence_penalty <= 2))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: bad sampling "
                             "(temperature %g, top_k %d, top_p %g, min_p %g, "
                             "repeat_penalty %g, frequency_penalty %g, "
                             "presence_penalty %g)",
                             (unsigned long long) req->id,
                             (double) sp->temperature, sp->top_k,
                             (double) sp->top_p, (double) sp->min_p,
                             (double) sp->repeat_penalty,
                             (double) sp->frequency_penalty,
                             (double) sp->presence_penalty);
    }

    if (sp->n_logit_bias < 0 || sp->n_logit_bias > SLORA_LOGIT_BIAS_MAX) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: %d logit "
                             "biases (0 to %d)", (unsigned long long) req->id,
                             sp->n_logit_bias, SLORA_LOGIT_BIAS_MAX);
    }

    for (i = 0; i < sp->n_logit_bias; i++) {
        if (sp->logit_bias_ids[i] < 0 || sp->logit_bias_ids[i] >= vocab
            || !(sp->logit_bias[i] >= -100 && sp->logit_bias[i] <= 100))
        {
            return slora_err_set(err, SLORA_ERROR, "request %llu: logit "
                                 "bias %g on token %d (tokens 0 to %d, "
                                 "biases -100 to 100)",
                                 (unsigned long long) req->id,
                                 (double) sp->logit_bias[i],
                                 sp->logit_bias_ids[i], vocab - 1);
        }
    }

    if (sp->n_allowed < 0 || sp->n_allowed > SLORA_ALLOWED_MAX) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: %d allowed "
                             "tokens (0 to %d)", (unsigned long long) req->id,
                             sp->n_allowed, SLORA_ALLOWED_MAX);
    }

    for (i = 0; i < sp->n_allowed; i++) {
        if (sp->allowed_ids[i] < 0 || sp->allowed_ids[i] >= vocab) {
            return slora_err_set(err, SLORA_ERROR, "request %llu: allowed "
                                 "token %d (tokens 0 to %d)",
                                 (unsigned long long) req->id,
                                 sp->allowed_ids[i], vocab - 1);
        }
    }

    /* bad_ids: runs of a length (1 or more) and that many tokens, filling
     * n_bad exactly */
    if (sp->n_bad < 0 || sp->n_bad > SLORA_BAD_MAX) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: %d ints of "
                             "bad words (0 to %d)",
                             (unsigned long long) req->id, sp->n_bad,
                             SLORA_BAD_MAX);
    }

    for (i = 0; i < sp->n_bad; i += 1 + len) {
        len = sp->bad_ids[i];

        if (len < 1 || len > sp->n_bad - i - 1) {
            return slora_err_set(err, SLORA_ERROR, "request %llu: a bad "
                                 "word's run of %d at %d of %d",
                                 (unsigned long long) req->id, len, i,
                                 sp->n_bad);
        }

        for (k = i + 1; k <= i + len; k++) {
            if (sp->bad_ids[k] < 0 || sp->bad_ids[k] >= vocab) {
                return slora_err_set(err, SLORA_ERROR, "request %llu: bad "
                                     "word token %d (tokens 0 to %d)",
                                     (unsigned long long) req->id,
                                     sp->bad_ids[k], vocab - 1);
            }
        }
    }

    if ((req->json_trigger_lead && req->json_trigger == NULL)
        || (req->json_gate != NULL
            && ((req->json_trigger == NULL
                 && req->json_form != SLORA_JSON_FORM_TAGS)
                || req->json_trigger_lead == SLORA_TRIGGER_LEAD
                || req->json_gate_len == 0
                || req->json_gate_len > SLORA_JSON_TRIGGER_MAX))
        || req->json_trigger_lead < 0
        || req->json_trigger_lead > SLORA_TRIGGER_ENDS
        || (req->json_trigger != NULL
            && (req->json_schema == NULL
            || (req->json_form != SLORA_JSON_FORM_SCHEMA
                && req->json_form != SLORA_JSON_FORM_TAGS) || sp->json
            || req->json_trigger_len == 0
            || req->json_trigger_len > SLORA_JSON_TRIGGER_MAX)))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: a schema's "
                             "trigger is 1 to %d bytes, with a JSON schema "
                             "alone", (unsigned long long) req->id,
                             SLORA_JSON_TRIGGER_MAX);
    }

    if (req->json_compact != 0
        && (req->json_compact != 1
            || (sp->json == 0
                && (req->json_schema == NULL
                    || (req->json_form != SLORA_JSON_FORM_SCHEMA
                        && req->json_form != SLORA_JSON_FORM_TAGS)))))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: compact JSON "
                             "is 0 or 1, with JSON mode, a JSON schema or "
                             "a structural tag",
                             (unsigned long long) req->id);
    }

    if ((sp->json != 0 || req->json_schema != NULL)
        && (sp->json < 0 || sp->json > 1 || e->json_vocab == NULL))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: JSON mode %s",
                             (unsigned long long) req->id,
                             e->json_vocab != NULL ? "is 0 or 1"
                             : "needs the model's tokenizer, which this "
                               "engine was not given");
    }

    if (sp->min_tokens < 0 || sp->min_tokens > sp->max_tokens) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: min_tokens "
                             "%d not in [0, max_tokens %d]",
                             (unsigned long long) req->id, sp->min_tokens,
                             sp->max_tokens);
    }

    if (req->logprobs
        && (req->top_logprobs < 0 || req->top_logprobs > SLORA_LOGPROBS_MAX))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: top_logprobs "
                             "%d not in [0, %d]", (unsigned long long) req->id,
                             req->top_logprobs, SLORA_LOGPROBS_MAX);
    }

    if (req->prompt_logprobs
        && (req->prompt_top < 0 || req->prompt_top > SLORA_LOGPROBS_MAX))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: prompt_top "
                             "%d not in [0, %d]", (unsigned long long) req->id,
                             req->prompt_top, SLORA_LOGPROBS_MAX);
    }

    if (req->n_stop_ids < 0 || (req->n_stop_ids > 0 && req->stop_ids == NULL)
        || req->n_stop_ids > 1024)
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: bad stop ids",
                             (unsigned long long) req->id);
    }

    if (req->n_prediction < 0 || req->n_prediction > e->conf.max_ctx
        || (req->n_prediction > 0 && req->prediction == NULL))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: a prediction "
                             "of %d tokens (0 to the context, %d)",
                             (unsigned long long) req->id, req->n_prediction,
                             e->conf.max_ctx);
    }

    for (i = 0; i < req->n_prediction; i++) {
        if (req->prediction[i] < 0 || req->prediction[i] >= vocab) {
            return slora_err_set(err, SLORA_ERROR, "request %llu: "
                                 "prediction token %d is %d, outside the "
                                 "vocabulary (%d)",
                                 (unsigned long long) req->id, i,
                                 req->prediction[i], vocab);
        }
    }

    if (req->adapter != NULL && req->adapter[0] != '\0'
        && strcmp(req->adapter, "default") != 0
        && !slora_catalog_valid_name(req->adapter))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: adapter "
                             "name \"%.*s\" is refused",
                             (unsigned long long) req->id,
                             slora_utf8_cut(req->adapter, 64), req->adapter);
    }

    /* with Redis a tenant's name is a key there, and one the catalog
     * refuses is no tenant's; with the directory it is only a fair share
     * account, and any name goes */
    if (req->tenant != NULL && e->redis
        && !slora_catalog_valid_name(req->tenant))
    {
        return slora_err_set(err, SLORA_FORBIDDEN, "request %llu: unknown "
                             "tenant \"%.*s\" (not a valid name)",
                             (unsigned long long) req->id,
                             slora_utf8_cut(req->tenant, 64), req->tenant);
    }

    if (slora_sched_waiting(e->sched) + e->n_resolving
        >= e->conf.max_waiting)
    {
        return slora_err_set(err, SLORA_BUSY, "request %llu: %d requests "
                             "wait already", (unsigned long long) req->id,
                             e->conf.max_waiting);
    }

    if (slora_sched_find(e->sched, req->id) != NULL) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: id in use",
                             (unsigned long long) req->id);
    }

    for (q = e->resolving; q != NULL; q = q->next_resolving) {
        if (q->r.id == req->id) {
            return slora_err_set(err, SLORA_ERROR, "request %llu: id in use",
                                 (unsigned long long) req->id);
        }
    }

    cap = req->n_prompt + sp->max_tokens;
    size = sizeof(slora_engine_req_t)
           + (size_t) (cap + req->n_stop_ids + req->n_prediction)
             * sizeof(int32_t);

    q = calloc(1, size);
    if (q == NULL) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: no memory",
                             (unsigned long long) req->id);
    }

    q->r.id = req->id;
    q->r.tokens = (int32_t *) (q + 1);
    q->r.n_prompt = req->n_prompt;
    q->r.n_tokens = req->n_prompt;
    q->r.cap = cap;
    q->r.score_to = req->prompt_logprobs ? req->n_prompt - 1 : 0;
    q->score_top = req->prompt_logprobs ? req->prompt_top : 0;
    now = slora_now_ns();
    q->r.arrival_ns = req->arrived_ns > 0 && req->arrived_ns < now
                      ? req->arrived_ns : now;
    memcpy(q->r.tokens, req->prompt, (size_t) req->n_prompt * sizeof(int32_t));

    q->stop_ids = q->r.tokens + cap;
    q->n_stop = req->n_stop_ids;
    if (q->n_stop > 0) {
        memcpy(q->stop_ids, req->stop_ids,
               (size_t) q->n_stop * sizeof(int32_t));
    }

    if (req->n_prediction > 0) {
        memcpy(q->stop_ids + q->n_stop, req->prediction,
               (size_t) req->n_prediction * sizeof(int32_t));
    }
    if (req->n_prediction == 0 && e->conf.draft_lookup) {
        slora_draft_init_lookup(&q->draft);

    } else {
        slora_draft_init(&q->draft, q->stop_ids + q->n_stop,
                         req->n_prediction);
    }

    q->sampling = *sp;
    q->top_logprobs = req->logprobs ? req->top_logprobs : -1;
    q->max_tokens = sp->max_tokens;
    slora_rng_seed(&q->rng, sp->seed);

    if (req->json_schema != NULL
        && slora_engine_lazy_set(e, q, req, err) != SLORA_OK)
    {
        slora_engine_req_free(e, q);
        return SLORA_ERROR;
    }

    q->json_compact = req->json_compact != 0;
    slora_json_init(&q->json, q->schema);
    q->json.compact = q->json_compact;

    if ((req->tenant != NULL && (q->tenant = strdup(req->tenant)) == NULL)
        || (req->adapter != NULL && req->adapter[0] != '\0'
            && (q->adapter = strdup(req->adapter)) == NULL))
    {
        slora_engine_req_free(e, q);
        return slora_err_set(err, SLORA_ERROR, "request %llu: no memory",
                             (unsigned long long) req->id);
    }

    q->r.tenant = q->tenant;
    q->r.cache_salt[0] = req->cache_salt[0];
    q->r.cache_salt[1] = req->cache_salt[1];
    q->rate_free = req->rate_free != 0;

    rc = slora_engine_resolve(e, q, err);

    if (rc == SLORA_AGAIN) {
        *e->resolving_tail = q;
        e->resolving_tail = &q->next_resolving;
        e->n_resolving++;
        return SLORA_OK;
    }

    if (rc == SLORA_OK) {
        rc = slora_sched_submit(e->sched, &q->r, err);
    }

    if (rc != SLORA_OK) {
        slora_engine_req_free(e, q);
        return rc;
    }

    return SLORA_OK;
}


int
slora_engine_cancel(slora_engine_t *e, uint64_t id)
{
    slora_req_t         *r;
    slora_engine_req_t  *q;

    for (q = e->resolving; q != NULL; q = q->next_resolving) {
        if (q->r.id == id) {
            if (q->r.cancelled) {
                return SLORA_DECLINED;
            }
            q->r.cancelled = 1;
            e->n_cancel++;
            return SLORA_OK;
        }
    }

    r = slora_sched_find(e->sched, id);
    if (r == NULL || r->cancelled) {
        return SLORA_DECLINED;
    }

    r->cancelled = 1;
    e->n_cancel++;

    return SLORA_OK;
}


int
slora_engine_step(slora_engine_t *e, slora_event_cb cb, void *data)
{
    int                    rc, did;
    int32_t                i, n;
    uint64_t               wakes;
    slora_req_t           *reaped[SLORA_ENGINE_REAP], *r;
    slora_sched_step_t     step;
    slora_engine_times_t   t;

    t.start = slora_now_ns();
    did = 0;

    if (read(e->wake_fd, &wakes, sizeof(wakes)) < 0) {
        /* nothing was written: EAGAIN */
    }

    slora_catalog_poll(e->catalog);
    slora_engine_prefetch_install(e);
    slora_engine_schemas_step(e);
    t.installed = slora_now_ns();

    while (e->n_cancel > 0) {
        did |= slora_engine_reap_resolving(e, cb, data) > 0;
        n = slora_sched_reap(e->sched, reaped, SLORA_ENGINE_REAP);
        for (i = 0; i < n; i++) {
            slora_engine_emit(cb, data, SLORA_EV_DONE, reaped[i]->id, -1,
                              SLORA_FINISH_CANCEL, NULL,
                              SLORA_ERRCODE_NONE);
            slora_engine_req_free(e, (slora_engine_req_t *) reaped[i]);
        }
        e->n_cancel = n == SLORA_ENGINE_REAP ? e->n_cancel : 0;
        did |= n > 0;
    }

    did |= slora_engine_resolve_all(e, cb, data);

    slora_engine_hints(e);
    slora_engine_prefetch(e);
    t.resolved = slora_now_ns();

    slora_engine_drafts(e);
    slora_sched_plan(e->sched, &step);
    t.planned = slora_now_ns();

    for (i = 0; i < step.n_failed; i++) {
        r = step.failed[i];

        if (r->err.code == SLORA_ABORTED) {
            /* refused before any compute: its SLO cannot be met */
            slora_engine_refuse(cb, data, r->id, &r->err);

        } else {
            slora_engine_emit(cb, data, SLORA_EV_ERROR, r->id, -1,
                              SLORA_FINISH_NONE, r->err.msg,
                              SLORA_ERRCODE_INTERNAL);
        }

        slora_engine_req_free(e, (slora_engine_req_t *) r);
        did = 1;
    }

    if (step.n_items == 0) {
        slora_engine_peaks(e);
        return did ? SLORA_OK : e->n_resolving > 0 ? SLORA_AGAIN : SLORA_DONE;
    }

    slora_engine_warm(e);

    t.run = slora_now_ns();
    e->last_step_rows_ns = 0;
    rc = slora_engine_run(e, &step, cb, data);

    slora_engine_peaks(e);
    e->steps++;
    t.end = slora_now_ns();
    e->last_step_ns = t.end - t.start;
    e->last_step_device_ns = rc == SLORA_OK ? e->backend->device_ns : 0;
    e->last_step_captured = rc == SLORA_OK ? e->backend->captured : 0;
    e->last_step_setup_ns = rc == SLORA_OK ? e->backend->setup_ns : 0;
    e->last_step_attention_ns = rc == SLORA_OK ? e->backend->attention_ns
                                               : 0;
    slora_engine_log_step(e, &step, &t);
    e->last_step_prefill = step.n_prefill;
    e->last_step_decode = step.n_decode;

    if (rc == SLORA_OK) {
        slora_sched_observe(e->sched, &step, e->last_step_ns,
                            e->last_step_attention_ns);
    }

    return rc;
}


const slora_model_config_t *
slora_engine_model_config(const slora_engine_t *e)
{
    return &e->model->cfg;
}


void
slora_engine_stats(const slora_engine_t *e, slora_engine_stats_t *st)
{
    slora_catalog_stats_t       cs;
    slora_adapters_stats_t      as;
    slora_prefix_stats_t        ps;
    slora_sched_model_t         model;
    const slora_engine_req_t   *q;

    memset(st, 0, sizeof(*st));

    slora_adapters_stats(e->adapters, &as);

    st->waiting = slora_sched_waiting(e->sched);
    st->running = slora_sched_running(e->sched);
    st->pages_total = slora_pool_n_pages(e->pool);
    st->pages_free = slora_pool_count(e->pool, SLORA_PAGE_FREE);
    st->pages_kv = slora_pool_count(e->pool, SLORA_PAGE_KV);
    st->pages_adapter = slora_pool_count(e->pool, SLORA_PAGE_ADAPTER);
    st->adapters_in_pool = as.in_pool;
    st->adapters_in_host = as.in_host;
    st->adapter_loads = as.loads;
    st->adapter_uploads = as.uploads;
    st->adapter_warmed = as.warmed;
    st->adapter_evictions = as.evictions;
    st->adapter_hits = as.hits;
    st->preemptions = slora_sched_preemptions(e->sched);
    st->slo_aborted = slora_sched_aborted(e->sched);
    st->rate_limited = e->rate_limited;
    st->steps = e->steps;
    st->tokens_prefilled = e->tokens_prefilled;
    st->tokens_decoded = e->tokens_decoded;
    st->last_step_ns = e->last_step_ns;
    st->last_step_device_ns = e->last_step_device_ns;
    st->last_step_rows_ns = e->last_step_rows_ns;
    st->last_step_prefill = e->last_step_prefill;
    slora_sched_step_model(e->sched, &model);
    st->model_step_ns = model.per_step_ns;
    st->model_token_ns = model.per_token_ns;
    st->model_pair_ns = model.per_pair_ns;
    st->last_step_decode = e->last_step_decode;
    st->adapter_pool_elems = as.pool_elems;
    st->adapter_used_elems = as.pool_used_elems;

    slora_sched_prefix_stats(e->sched, &ps);
    st->pages_cached = slora_pool_count(e->pool, SLORA_PAGE_CACHED);
    st->prefix_pages = ps.pages;
    st->prefix_lookups = ps.lookups;
    st->prefix_hit_tokens = ps.hit_tokens;
    st->prefix_evictions = ps.evictions;
    st->schema_compiles = e->schema_compiles;
    st->schema_hits = e->schema_hits;
    st->schema_bytes = e->schema_bytes;

    slora_engine_schemas_count(e, &st->schemas_kept,
                               &st->schemas_compiling);
    st->prediction_accepted = e->prediction_accepted;
    st->prediction_rejected = e->prediction_rejected;
    st->lookup_accepted = e->lookup_accepted;
    st->lookup_rejected = e->lookup_rejected;

    slora_catalog_stats(e->catalog, &cs);

    st->resolving = 0;
    for (q = e->resolving; q != NULL; q = q->next_resolving) {
        st->resolving += !q->loading;
    }

    st->adapters_pinned = as.pinned;
    st->host_bytes = as.host_bytes;
    st->host_bytes_peak = e->host_bytes_peak;
    st->host_budget = as.host_budget;
    st->pages_used_peak = e->pages_used_peak;
    st->pool_bytes = slora_pool_arena_bytes(e->pool);
    st->host_hits = as.host_hits;
    st->host_misses = as.host_misses;
    st->host_evictions = as.host_evictions;
    st->prefetched = as.prefetched;
    st->load_errors = as.load_errors;
    st->catalog_redis = cs.redis;
    st->catalog_up = cs.up;
    st->catalog_hits = cs.cache_hits;
    st->catalog_misses = cs.cache_misses;
    st->catalog_fetches = cs.fetches;
    st->catalog_invalidations = cs.invalidations;
    st->catalog_reconnects = cs.reconnects;
}


int32_t
slora_engine_prefix_flush(slora_engine_t *e)
{
    return slora_sched_prefix_flush(e->sched);
}


void
slora_engine_free_runs(const slora_engine_t *e, int32_t *runs,
    int32_t *longest)
{
    int32_t  p, n, run;

    *runs = 0;
    *longest = 0;
    n = slora_pool_n_pages(e->pool);
    run = 0;

    for (p = 0; p <= n; p++) {
        if (p < n && slora_pool_page_kind(e->pool, p) == SLORA_PAGE_FREE) {
            run++;
            continue;
        }

        if (run > 0) {
            (*runs)++;
            *longest = run > *longest ? run : *longest;
        }
        run = 0;
    }
}


int
slora_engine_wake_fd(const slora_engine_t *e)
{
    return e->wake_fd;
}


slora_errcode_e
slora_engine_errcode(int status)
{
    switch (status) {

    case SLORA_OK:
        return SLORA_ERRCODE_NONE;

    case SLORA_ERROR:
        return SLORA_ERRCODE_BAD_REQUEST;

    case SLORA_DECLINED:
        return SLORA_ERRCODE_NOT_FOUND;

    case SLORA_FORBIDDEN:
        return SLORA_ERRCODE_FORBIDDEN;

    case SLORA_BUSY:
        return SLORA_ERRCODE_BUSY;

    case SLORA_UNAVAILABLE:
        return SLORA_ERRCODE_UNAVAILABLE;

    case SLORA_ABORTED:
        return SLORA_ERRCODE_SLO;

    case SLORA_LIMITED:
        return SLORA_ERRCODE_RATE;

    default:
        return SLORA_ERRCODE_INTERNAL;
    }
}


/*
 * Default: K/V for max_running sequences at half of max_ctx, plus a
 * quarter for adapters; at least two full contexts (of 256 tokens at
 * least); else at most 2 GiB
 * and an eighth of the host's memory (the CPU backend's arena is host
 * memory, zeroed up front). On a device the pool takes most of what is
 * free after the weights, as S-LoRA's unified pool does.
 */
static size_t
slora_engine_pool_size(const slora_engine_t *e)
{
    long                          pages, psize;
    size_t                        tok, want, floor_, cap, free_, room;
    const slora_model_config_t   *cfg;

    if (e->conf.pool_bytes > 0) {
        return e->conf.pool_bytes;
    }

    cfg = &e->model->cfg;
    tok = (size_t) cfg->n_layers * 2 * (size_t) cfg->n_kv_heads
          * (size_t) cfg->head_dim * e->backend->elem_size;

    want = tok * (size_t) e->conf.max_running * (size_t) e->conf.max_ctx / 2;
    want += want / 4;

    /* two contexts of at least 256 tokens: a page holds a few dozen, and
     * a context of 10 tokens still takes whole pages */
    floor_ = tok * (size_t) (e->conf.max_ctx > 256 ? e->conf.max_ctx : 256)
             * 2;

    if (e->backend->mem_free != NULL) {
        /* a device: the pool takes what the weights left, less a tenth
         * (at least 2 GiB) for the step's scratch */
        free_ = e->backend->mem_free(e->backend);
        room = free_ / 10 > ((size_t) 2 << 30) ? free_ / 10
                                                : ((size_t) 2 << 30);
        want = free_ > room ? free_ - room : 0;

        return want > floor_ ? want : floor_;
    }

    cap = SLORA_ENGINE_POOL_CAP;
    pages = sysconf(_SC_PHYS_PAGES);
    psize = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psize > 0 && (size_t) pages * (size_t) psize / 8 < cap) {
        cap = (size_t) pages * (size_t) psize / 8;
    }

    want = want < cap ? want : cap;

    return want > floor_ ? want : floor_;
}


void
slora_engine_emit(slora_event_cb cb, void *data, slora_event_e type,
    uint64_t id, int32_t token, slora_finish_e finish, const char *error,
    slora_errcode_e code)
{
    slora_event_t  ev;

    if (cb == NULL) {
        return;
    }

    memset(&ev, 0, sizeof(slora_event_t));
    ev.type = type;
    ev.id = id;
    ev.token = token;
    ev.finish = finish;
    ev.error = error;
    ev.code = code;

    cb(data, &ev);
}


void
slora_engine_refuse(slora_event_cb cb, void *data, uint64_t id,
    const slora_err_t *err)
{
    slora_event_t  ev;

    if (cb == NULL) {
        return;
    }

    memset(&ev, 0, sizeof(slora_event_t));
    ev.type = SLORA_EV_ERROR;
    ev.id = id;
    ev.token = -1;
    ev.finish = SLORA_FINISH_NONE;
    ev.error = err->msg;
    ev.code = slora_engine_errcode(err->code);
    ev.retry_after_ms = err->retry_ms;

    cb(data, &ev);
}


void
slora_engine_end(slora_engine_t *e, slora_engine_req_t *q)
{
    slora_sched_finish(e->sched, &q->r);
    slora_engine_req_free(e, q);
}


void
slora_engine_req_free(slora_engine_t *e, slora_engine_req_t *q)
{
    free(q->r.pages);
    free(q->guard);
    free(q->gate_guard);
    free(q->tenant);
    free(q->adapter);
    slora_engine_schema_drop(e, q->schema_held, q->schema);
    free(q);
}


/*
 * The high-water marks of the host tier and of the pool, taken after
 * every step: the status shows that memory stayed within its budgets
 * over a whole run, not only at the moments someone looked.
 */
static void
slora_engine_peaks(slora_engine_t *e)
{
    int32_t                  used;
    slora_adapters_stats_t   as;

    slora_adapters_stats(e->adapters, &as);

    if (as.host_bytes > e->host_bytes_peak) {
        e->host_bytes_peak = as.host_bytes;
    }

    used = slora_pool_count(e->pool, SLORA_PAGE_KV)
           + slora_pool_count(e->pool, SLORA_PAGE_ADAPTER);

    if (used > e->pages_used_peak) {
        e->pages_used_peak = used;
    }
}


/*
 * Who picks the step's ids. The backend does, so that no logits row
 * leaves its device: the argmax of a greedy row, the draw of a sampled
 * one when the backend draws (each request's draw takes its number of
 * the request's generator here, in step order, as the host's sampler
 * would). The engine's sampler does, from the row's logits, which the
 * backend then writes too (host_rows), when a row needs the tokens so
 * far (a penalty), asks for log-probabilities, or is sampled by a
 * backend that does not draw; the other rows of the step stay the
 * backend's. A prompt's rows are scored by a backend that scores
 * (score_tok), else on the host from their logits. With margins every
 * row comes to the host.
 */

static void
slora_engine_picks(slora_engine_t *e, const slora_sched_step_t *step,
    slora_batch_t *batch)
{
    int32_t                    i, j, row;
    int                        sampled, host, on_host;
    slora_engine_req_t        *q;
    const slora_sched_item_t  *it;

    batch->ids = NULL;
    batch->draws = NULL;
    batch->host_rows = NULL;
    batch->score_tok = NULL;
    batch->score_k = 0;
    batch->scores = NULL;

    if (e->conf.margins) {
        return;
    }

    sampled = 0;
    host = 0;

    for (i = 0; i < step->n_items; i++) {
        it = &step->items[i];
        q = (slora_engine_req_t *) it->req;

        /* a prompt's rows before its last token's: scored by the
         * backend, or by the host from their logits; nothing is drawn
         * there */
        for (j = 0; j < it->n_rows - it->logits - it->draft; j++) {
            row = e->seqs[i].logits_row + j;
            memset(&e->draws[row], 0, sizeof(slora_draw_t));

            if (e->backend->scores) {
                e->host_rows[row] = 0;
                e->score_tok[row] =
                    q->r.tokens[it->pos + it->n_tokens - it->n_rows + j + 1];
                batch->score_tok = e->score_tok;
                batch->score_k = q->score_top > batch->score_k
                                 ? q->score_top : batch->score_k;

            } else {
                e->host_rows[row] = 1;
                host = 1;
            }
        }

        if (!it->logits) {
            continue;
        }

        /* the last token's row, and a draft's before it: picks, all
         * the host's or all the backend's */
        on_host = slora_engine_on_host(e, q);
        host |= on_host;
        sampled |= !on_host && !slora_sampling_greedy(&q->sampling);

        for (row = slora_engine_last_row(e, i) - it->draft;
             row <= slora_engine_last_row(e, i);
             row++)
        {
            e->score_tok[row] = -1;
            e->host_rows[row] = (uint8_t) on_host;
        }
    }

    batch->ids = e->ids;
    batch->host_rows = host ? e->host_rows : NULL;
    batch->scores = batch->score_tok != NULL ? e->scores : NULL;

    if (!sampled) {
        return;
    }

    for (i = 0; i < step->n_items; i++) {
        q = (slora_engine_req_t *) step->items[i].req;

        if (!step->items[i].logits) {
            continue;
        }

        row = slora_engine_last_row(e, i);

        if (e->host_rows[row]) {
            /* the host draws it, from its own generator */
            memset(&e->draws[row], 0, sizeof(slora_draw_t));
            continue;
        }

        /* a draft's rows draw what the tokens would have drawn one a
         * step; the step keeps as many draws as it takes tokens */
        q->rng_before = q->rng;

        for (j = row - step->items[i].draft; j <= row; j++) {
            slora_sampling_draw(&q->sampling, &q->rng, &e->draws[j]);
        }
    }

    batch->draws = e->draws;
}


static int
slora_engine_run(slora_engine_t *e, slora_sched_step_t *step,
    slora_event_cb cb, void *data)
{
    int32_t                   i, n_tok, n_loras, n_logits, row;
    int64_t                   t0;
    slora_err_t               err;
    slora_batch_t             batch;
    slora_engine_req_t       *q;
    slora_batch_seq_t        *sq;
    slora_engine_pick_t      *pk;
    const slora_adapter_t    *last;
    const slora_sched_item_t *it;

    n_tok = 0;
    n_loras = 0;
    n_logits = 0;
    last = NULL;

    for (i = 0; i < step->n_items; i++) {
        it = &step->items[i];
        sq = &e->seqs[i];

        memcpy(e->tokens + n_tok, it->req->tokens + it->pos,
               (size_t) it->n_tokens * sizeof(int32_t));
        n_tok += it->n_tokens;

        sq->n_tokens = it->n_tokens;
        sq->pos = it->pos;
        sq->n_pages = it->req->n_pages;
        sq->pages = it->req->pages;
        sq->logits_row = it->n_rows > 0 ? n_logits : -1;
        sq->n_rows = it->n_rows;
        n_logits += it->n_rows;

        if (it->req->adapter == NULL) {
            sq->lora = -1;

        } else {
            /* items come grouped by adapter */
            if (it->req->adapter != last) {
                e->loras[n_loras++] = *slora_adapter_lora(it->req->adapter);
                last = it->req->adapter;
            }
            sq->lora = n_loras - 1;
        }
    }

    batch.n_seqs = step->n_items;
    batch.n_tokens = n_tok;
    batch.tokens = e->tokens;
    batch.seqs = e->seqs;
    batch.n_loras = n_loras;
    batch.loras = e->loras;
    batch.n_logits = n_logits;
    batch.logits = e->logits;
    slora_engine_picks(e, step, &batch);

    if (e->backend->forward(e->backend, &batch, e->layer_off,
                            slora_pool_page_elems(e->pool),
                            slora_pool_tokens_per_page(e->pool), &err)
        != SLORA_OK)
    {
        for (i = 0; i < step->n_items; i++) {
            q = (slora_engine_req_t *) step->items[i].req;
            slora_engine_emit(cb, data, SLORA_EV_ERROR, q->r.id, -1,
                              SLORA_FINISH_NONE, err.msg,
                              SLORA_ERRCODE_INTERNAL);
            slora_engine_end(e, q);
        }

        return err.code == SLORA_FATAL ? SLORA_FATAL : SLORA_ERROR;
    }

    slora_sched_advance(e->sched, step);

    e->tokens_prefilled += (uint64_t) step->n_prefill;
    e->tokens_decoded += (uint64_t) step->n_decode;

    /* log-probabilities and the host's draws, rows side by side */
    t0 = slora_now_ns();
    slora_engine_host_picks(e, step, &batch);
    e->last_step_rows_ns = slora_now_ns() - t0;

    for (i = 0; i < step->n_items; i++) {
        it = &step->items[i];
        q = (slora_engine_req_t *) it->req;

        if (it->n_rows - it->draft > it->logits) {
            slora_engine_scores(e, it, e->seqs[i].logits_row, cb, data);
        }

        if (!it->logits) {
            continue;
        }

        if (q->r.n_tokens == q->r.cap) {
            /* max_tokens 0: the prompt was all it asked for */
            slora_engine_emit(cb, data, SLORA_EV_DONE, q->r.id, -1,
                              SLORA_FINISH_LENGTH, NULL, SLORA_ERRCODE_NONE);
            slora_engine_end(e, q);
            continue;
        }

        if (it->draft > 0) {
            slora_engine_verify(e, it, i, &batch, cb, data);
            continue;
        }

        pk = &e->host.picks[i];
        row = slora_engine_last_row(e, i);
        (void) slora_engine_take(e, q, pk->on_host ? pk->tok : batch.ids[row],
                                 pk, row, cb, data);
    }

    return SLORA_OK;
}


/* SCORE events for the prompt rows of an item from row first on (all of
 * its rows but a last one that picks), in the prompt's order. */
static void
slora_engine_scores(slora_engine_t *e, const slora_sched_item_t *it,
    int32_t first, slora_event_cb cb, void *data)
{
    int32_t                     j, pos;
    slora_event_t               ev;
    const slora_engine_pick_t  *sc;

    if (cb == NULL) {
        return;
    }

    pos = it->pos + it->n_tokens - it->n_rows;

    for (j = 0; j < it->n_rows - it->logits - it->draft; j++) {
        sc = &e->host.scores[first + j];

        memset(&ev, 0, sizeof(ev));
        ev.type = SLORA_EV_SCORE;
        ev.id = it->req->id;
        ev.token = sc->tok;
        ev.pos = pos + j + 1;
        ev.logprob = sc->logprob;
        ev.rank = sc->rank;
        ev.n_top = sc->n_top;
        ev.top_ids = sc->top_ids;
        ev.top_logprobs = sc->top_lp;
        cb(data, &ev);
    }
}
