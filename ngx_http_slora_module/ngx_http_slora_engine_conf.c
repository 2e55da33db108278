/*
 * ngx_http_slora_engine_conf.c: the slora_engine directive: its key=value
 * parameters read and checked (each bound named in its error, at the
 * directive's line), the pairs that need each other (slo_ttft= and
 * schedule=slo, ...), the paths made absolute against the prefix, and the
 * model's tokenizer loaded in the master, where every worker inherits it.
 *
 * The one idea: whatever the engine would refuse at start is refused here,
 * by nginx -t, with the line that says it; the engine then starts on a
 * configuration known good (a reload with a bad one keeps the old).
 */

#include "ngx_http_slora_module.h"
#include "slora_threads.h"


static char *ngx_http_slora_engine_param(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf, ngx_str_t *key, ngx_str_t *val);
static char *ngx_http_slora_engine_flag(ngx_conf_t *cf, ngx_str_t *key,
    ngx_str_t *val, const char *on, ngx_flag_t *flag);
static char *ngx_http_slora_fair_weights(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf, ngx_str_t *val);
static char *ngx_http_slora_load_tokenizer(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf);
static void ngx_http_slora_tokenizer_cleanup(void *data);


char *
ngx_http_slora_engine(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_slora_main_conf_t  *smcf = conf;

    char        *rv;
    u_char      *eq, *p;
    ngx_str_t   *value, key, val;
    ngx_uint_t   i;

    if (smcf->enabled) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        if (eq == NULL || eq == value[i].data) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_engine: \"%V\" is not key=value",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        key.data = value[i].data;
        key.len = eq - value[i].data;
        val.data = eq + 1;
        val.len = value[i].data + value[i].len - val.data;

        rv = ngx_http_slora_engine_param(cf, smcf, &key, &val);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    if (smcf->model.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: model=PATH is required");
        return NGX_CONF_ERROR;
    }

    if (smcf->lookup_requests != NGX_CONF_UNSET && smcf->draft_lookup != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: speculate_requests= needs"
                           " speculate=lookup");
        return NGX_CONF_ERROR;
    }

    if (smcf->slo_ttft != NGX_CONF_UNSET_MSEC
        && !(smcf->schedule.len == 3
             && ngx_strncmp(smcf->schedule.data, "slo", 3) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: slo_ttft= needs schedule=slo");
        return NGX_CONF_ERROR;
    }

    if (smcf->fair_prefill != NGX_CONF_UNSET
        && !(smcf->schedule.len == 4
             && ngx_strncmp(smcf->schedule.data, "fair", 4) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: fair_weights= needs schedule=fair");
        return NGX_CONF_ERROR;
    }

    /* "random:<shape>,..." is a spec, not a path (slora_model_random.c);
     * such a model has no tokenizer of its own */
    if (smcf->model.len > 7
        && ngx_strncmp(smcf->model.data, "random:", 7) == 0)
    {
        if (smcf->tokenizer_path.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_engine: model=\"%V\" has no "
                               "tokenizer: name one with tokenizer=",
                               &smcf->model);
            return NGX_CONF_ERROR;
        }

    } else {
        if (ngx_conf_full_name(cf->cycle, &smcf->model, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        /* the engine keeps the path in a buffer of its own */
        if (smcf->model.len >= SLORA_MODEL_PATH_LEN) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_engine: model= is a path of %uz"
                               " bytes: at most %d", smcf->model.len,
                               SLORA_MODEL_PATH_LEN - 1);
            return NGX_CONF_ERROR;
        }
    }

    if (smcf->tokenizer_path.len
        && ngx_conf_full_name(cf->cycle, &smcf->tokenizer_path, 0) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* as load_module's path: relative to the prefix, not to the folder
     * nginx was started in, nor the loader's path */
    if (smcf->cuda_lib.len
        && ngx_conf_full_name(cf->cycle, &smcf->cuda_lib, 0) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* the stable model id: the file (or folder) name less ".gguf" */
    p = smcf->model.data + smcf->model.len;
    while (p > smcf->model.data && p[-1] == '/') {
        p--;
    }

    smcf->model_id.data = p;
    while (smcf->model_id.data > smcf->model.data
           && smcf->model_id.data[-1] != '/')
    {
        smcf->model_id.data--;
    }

    smcf->model_id.len = p - smcf->model_id.data;

    if (smcf->model_id.len > 5
        && ngx_strncasecmp(p - 5, (u_char *) ".gguf", 5) == 0)
    {
        smcf->model_id.len -= 5;
    }

    if (smcf->model_id.len == 0
        || smcf->model_id.len >= SLORA_QUEUE_ADAPTER_LEN)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: model=\"%V\" gives no usable name",
                           &smcf->model);
        return NGX_CONF_ERROR;
    }

    if (smcf->tensor_parallel != NGX_CONF_UNSET && smcf->tensor_parallel > 1
        && (smcf->device.len == 0
            || ngx_strncmp(smcf->device.data, "cuda", 4) != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: tensor_parallel=%i needs"
                           " device=cuda (or cuda:N)",
                           smcf->tensor_parallel);
        return NGX_CONF_ERROR;
    }

    smcf->enabled = 1;
    smcf->engine_file = cf->conf_file->file.name;
    smcf->engine_line = cf->conf_file->line;

    return ngx_http_slora_load_tokenizer(cf, smcf);
}


static char *
ngx_http_slora_engine_param(ngx_conf_t *cf, ngx_http_slora_main_conf_t *smcf,
    ngx_str_t *key, ngx_str_t *val)
{
    off_t       size;
    ngx_int_t   n, *np;

    if (val->len == 0) {
        goto invalid;
    }

    if (key->len == 5 && ngx_strncmp(key->data, "model", 5) == 0) {
        smcf->model = *val;
        return NGX_CONF_OK;
    }

    if (key->len == 6 && ngx_strncmp(key->data, "device", 6) == 0) {
        if (!(val->len == 3 && ngx_strncmp(val->data, "cpu", 3) == 0)
            && !(val->len == 4 && ngx_strncmp(val->data, "cuda", 4) == 0)
            && !(val->len > 5 && val->len < 10
                 && ngx_strncmp(val->data, "cuda:", 5) == 0
                 && ngx_atoi(val->data + 5, val->len - 5) != NGX_ERROR))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_engine: device=\"%V\": not \"cpu\", "
                               "\"cuda\" or \"cuda:N\"", val);
            return NGX_CONF_ERROR;
        }

        smcf->device = *val;
        return NGX_CONF_OK;
    }

    if (key->len == 8 && ngx_strncmp(key->data, "cuda_lib", 8) == 0) {
        smcf->cuda_lib = *val;
        return NGX_CONF_OK;
    }

    if (key->len == 9 && ngx_strncmp(key->data, "tokenizer", 9) == 0) {
        smcf->tokenizer_path = *val;
        return NGX_CONF_OK;
    }

    if (key->len == 7 && ngx_strncmp(key->data, "weights", 7) == 0) {
        if (!(val->len == 6 && ngx_strncmp(val->data, "native", 6) == 0)
            && !(val->len == 4 && ngx_strncmp(val->data, "q8_0", 4) == 0)
            && !(val->len == 3 && ngx_strncmp(val->data, "f32", 3) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_engine: weights=\"%V\" must be"
                               " \"native\", \"q8_0\" or \"f32\"", val);
            return NGX_CONF_ERROR;
        }

        smcf->weights = *val;
        return NGX_CONF_OK;
    }

    if (key->len == 8 && ngx_strncmp(key->data, "schedule", 8) == 0) {
        if (!(val->len == 4 && ngx_strncmp(val->data, "fcfs", 4) == 0)
            && !(val->len == 4 && ngx_strncmp(val->data, "lcfs", 4) == 0)
            && !(val->len == 3 && ngx_strncmp(val->data, "slo", 3) == 0)
            && !(val->len == 4 && ngx_strncmp(val->data, "fair", 4) == 0))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_engine: schedule=\"%V\" must be"
                               " \"fcfs\", \"lcfs\", \"slo\" or \"fair\"",
                               val);
            return NGX_CONF_ERROR;
        }

        smcf->schedule = *val;
        return NGX_CONF_OK;
    }

    if (key->len == 8 && ngx_strncmp(key->data, "slo_ttft", 8) == 0) {
        /* a unit is required: a bare number would be seconds */
        smcf->slo_ttft = ngx_parse_time(val, 0);
        if (smcf->slo_ttft == (ngx_msec_t) NGX_ERROR || smcf->slo_ttft == 0
            || smcf->slo_ttft > 3600000
            || (val->data[val->len - 1] >= '0'
                && val->data[val->len - 1] <= '9'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_engine: slo_ttft=\"%V\" must be a time"
                               " from 1ms to 1h (\"500ms\", \"6s\")", val);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (key->len == 12 && ngx_strncmp(key->data, "fair_weights", 12) == 0) {
        return ngx_http_slora_fair_weights(cf, smcf, val);
    }

    if (key->len == 12 && ngx_strncmp(key->data, "prefix_cache", 12) == 0) {
        return ngx_http_slora_engine_flag(cf, key, val, "on",
                                          &smcf->prefix_cache);
    }

    if (key->len == 9 && ngx_strncmp(key->data, "speculate", 9) == 0) {
        return ngx_http_slora_engine_flag(cf, key, val, "lookup",
                                          &smcf->draft_lookup);
    }

    if (key->len == 10 && ngx_strncmp(key->data, "pinned_max", 10) == 0) {
        /* N%: the share of the pool's pages pinned adapters may hold */
        if (val->len < 2 || val->data[val->len - 1] != '%') {
            goto invalid;
        }

        n = ngx_atoi(val->data, val->len - 1);
        if (n == NGX_ERROR || n < 1 || n > 100) {
            goto invalid;
        }

        smcf->pinned_max = n;
        return NGX_CONF_OK;
    }

    if ((key->len == 4 && ngx_strncmp(key->data, "pool", 4) == 0)) {
        size = ngx_parse_offset(val);
        if (size == NGX_ERROR) {
            goto invalid;
        }

        smcf->pool = (size_t) size;
        return NGX_CONF_OK;
    }

    if (key->len == 5 && ngx_strncmp(key->data, "slots", 5) == 0) {
        /*
         * a slot is a request running or waiting, and holds max_ctx
         * prompt and max_tokens output tokens with their log-probability
         * records (some 0.46 MB at the defaults) in a zone every process
         * maps; the engine runs max_running of them and lets as many
         * wait as it has slots, 4096 at most, its own default
         */
        n = ngx_atoi(val->data, val->len);
        if (n == NGX_ERROR || n < 1 || n > SLORA_QUEUE_SLOTS_MAX) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "slora_engine: slots=\"%V\" must be from 1"
                               " to %d", val, SLORA_QUEUE_SLOTS_MAX);
            return NGX_CONF_ERROR;
        }

        smcf->slots = n;
        return NGX_CONF_OK;
    }

    np = NULL;

    if (key->len == 7 && ngx_strncmp(key->data, "threads", 7) == 0) {
        np = &smcf->threads;

    } else if (key->len == 16
               && ngx_strncmp(key->data, "max_batch_tokens", 16) == 0)
    {
        np = &smcf->max_batch_tokens;

    } else if (key->len == 11
               && ngx_strncmp(key->data, "max_running", 11) == 0)
    {
        np = &smcf->max_running;

    } else if (key->len == 7 && ngx_strncmp(key->data, "max_ctx", 7) == 0) {
        np = &smcf->max_ctx;

    } else if (key->len == 10
               && ngx_strncmp(key->data, "max_tokens", 10) == 0)
    {
        np = &smcf->max_tokens;

    } else if (key->len == 15
               && ngx_strncmp(key->data, "tensor_parallel", 15) == 0)
    {
        np = &smcf->tensor_parallel;

    } else if (key->len == 12
               && ngx_strncmp(key->data, "top_logprobs", 12) == 0)
    {
        np = &smcf->top_logprobs;

    } else if (key->len == 18
               && ngx_strncmp(key->data, "speculate_requests", 18) == 0)
    {
        np = &smcf->lookup_requests;
    }

    if (np == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: unknown parameter \"%V\"", key);
        return NGX_CONF_ERROR;
    }

    n = ngx_atoi(val->data, val->len);
    if (n == NGX_ERROR || n > 1000000
        || (n == 0 && np != &smcf->threads && np != &smcf->top_logprobs)
        || (np == &smcf->threads && n > SLORA_THREADS_MAX)
        || (np == &smcf->tensor_parallel && n > 64)
        || (np == &smcf->top_logprobs && n > SLORA_QUEUE_TOP_MAX))
    {
        goto invalid;
    }

    *np = n;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "slora_engine: invalid value \"%V\" for \"%V\"",
                       val, key);

    return NGX_CONF_ERROR;
}


/* A parameter of two values: `on` (its word for yes: "on", "lookup")
 * sets *flag, "off" clears it. */
static char *
ngx_http_slora_engine_flag(ngx_conf_t *cf, ngx_str_t *key, ngx_str_t *val,
    const char *on, ngx_flag_t *flag)
{
    size_t  n;

    n = ngx_strlen(on);

    if (val->len == n && ngx_strncmp(val->data, on, n) == 0) {
        *flag = 1;
        return NGX_CONF_OK;
    }

    if (val->len == 3 && ngx_strncmp(val->data, "off", 3) == 0) {
        *flag = 0;
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "slora_engine: %V=\"%V\" must be \"%s\" or \"off\"",
                       key, val, on);

    return NGX_CONF_ERROR;
}


/* fair_weights=P:D, a prompt token's and a generated token's weight. */
static char *
ngx_http_slora_fair_weights(ngx_conf_t *cf, ngx_http_slora_main_conf_t *smcf,
    ngx_str_t *val)
{
    u_char     *colon;
    ngx_int_t   pw, dw;

    colon = ngx_strlchr(val->data, val->data + val->len, ':');

    if (colon != NULL) {
        pw = ngx_atoi(val->data, colon - val->data);
        dw = ngx_atoi(colon + 1, val->data + val->len - colon - 1);

        if (pw >= 1 && pw <= 1000 && dw >= 1 && dw <= 1000) {
            smcf->fair_prefill = pw;
            smcf->fair_decode = dw;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "slora_engine: fair_weights=\"%V\" must be P:D,"
                       " two integers from 1 to 1000 (\"1:2\")", val);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_slora_load_tokenizer(ngx_conf_t *cf,
    ngx_http_slora_main_conf_t *smcf)
{
    char                *path;
    ngx_str_t           *src;
    slora_err_t          err;
    ngx_pool_cleanup_t  *cln;

    src = smcf->tokenizer_path.len ? &smcf->tokenizer_path : &smcf->model;

    path = ngx_pnalloc(cf->pool, src->len + 1);
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(path, src->data, src->len);
    path[src->len] = '\0';

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    err.msg[0] = '\0';
    smcf->tokenizer = slora_tokenizer_load(path, &err);

    if (smcf->tokenizer == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: cannot load the tokenizer of"
                           " \"%V\": %s", src, err.msg);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_slora_tokenizer_cleanup;
    cln->data = smcf->tokenizer;

    smcf->model_template = slora_tokenizer_chat_template(smcf->tokenizer);
    smcf->n_stop_ids = slora_tokenizer_stop_ids(smcf->tokenizer,
                                                 smcf->stop_ids,
                                                 NGX_HTTP_SLORA_MODEL_STOP_IDS);
    if (smcf->n_stop_ids > NGX_HTTP_SLORA_MODEL_STOP_IDS) {
        smcf->n_stop_ids = NGX_HTTP_SLORA_MODEL_STOP_IDS;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_slora_tokenizer_cleanup(void *data)
{
    slora_tokenizer_free(data);
}
