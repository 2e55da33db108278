/*
 * ngx_http_slora_engine_load.c: the engine process's model and what dead
 * processes leave: the model loaded (and loaded again, 1 s later, then
 * 2, 4, up to 32 s apart, where it failed: a binary upgrade's new engine
 * waits so for the GPU memory the old one holds), the adapters preloaded,
 * the slots an engine of an earlier epoch was running failed, and those
 * of a worker that died let go.
 *
 * The one idea: nothing here waits on a worker; a slot is given back only
 * by dropping the bit of the party that can no longer drop it.
 */

#include "ngx_http_slora_module.h"
#include "ngx_http_slora_engine_int.h"


static void ngx_http_slora_engine_preload(ngx_http_slora_engine_ctx_t *ec,
    int n);
static void ngx_http_slora_engine_access_hint(const char *model,
    const char *adir, slora_err_t *err);


/* Where the engine failed on a model or an adapter folder its user may not
 * read (nginx's `user`, "nobody" by default, with a master started as
 * root; a tree under a private home folder), the message says which user
 * that is: "Permission denied" alone reads as a fault of the file. */
static void
ngx_http_slora_engine_access_hint(const char *model, const char *adir,
    slora_err_t *err)
{
    u_char         *p, *last;
    const char     *path;
    struct passwd  *pw;

    if (access(model, R_OK) == -1 && errno == EACCES) {
        path = model;

    } else if (adir[0] != '\0' && access(adir, R_OK | X_OK) == -1
               && errno == EACCES)
    {
        path = adir;

    } else {
        return;
    }

    pw = getpwuid(geteuid());
    last = (u_char *) err->msg + sizeof(err->msg) - 1;
    p = (u_char *) err->msg + ngx_strlen(err->msg);

    if (ngx_strstr(err->msg, path) == NULL) {
        p = ngx_slprintf(p, last, "; \"%s\" is not readable", path);
    }

    p = ngx_slprintf(p, last, " (the engine runs as user \"%s\","
                     " nginx's \"user\")", pw ? pw->pw_name : "?");
    *p = '\0';
}


/* The engine made from the configuration (the model, the adapters'
 * catalog, the device), its adapters' names published and the zone
 * marked ready; where that fails, the error for /health and a later
 * try (ec->load_wait_ns). */
void
ngx_http_slora_engine_load(ngx_http_slora_engine_ctx_t *ec)
{
    char                        *model, *adir, *url, **roots;
    int32_t                      n, n_ctx;
    ngx_str_t                   *root;
    ngx_uint_t                   k, n_roots;
    const char                 **names;
    slora_err_t                  err;
    slora_engine_conf_t          conf;
    ngx_http_slora_main_conf_t  *smcf;
    const slora_model_config_t  *mc;

    smcf = ec->smcf;

    model = ngx_alloc(smcf->model.len + 1, ec->cycle->log);
    adir = ngx_alloc(smcf->adapter_dir.len + 1, ec->cycle->log);
    if (model == NULL || adir == NULL) {
        exit(2);
    }

    ngx_memcpy(model, smcf->model.data, smcf->model.len);
    model[smcf->model.len] = '\0';
    if (smcf->adapter_dir.len) {        /* none with a Redis catalog */
        ngx_memcpy(adir, smcf->adapter_dir.data, smcf->adapter_dir.len);
    }
    adir[smcf->adapter_dir.len] = '\0';

    url = NULL;
    roots = NULL;
    n_roots = 0;

    if (smcf->redis_url.len) {
        url = ngx_alloc(smcf->redis_url.len + 1, ec->cycle->log);
        n_roots = smcf->roots ? smcf->roots->nelts : 0;
        roots = ngx_alloc((n_roots + 1) * sizeof(char *), ec->cycle->log);
        if (url == NULL || roots == NULL) {
            exit(2);
        }

        ngx_memcpy(url, smcf->redis_url.data, smcf->redis_url.len);
        url[smcf->redis_url.len] = '\0';

        /* roots= values are NUL-terminated (ngx_http_slora_catalog) */
        root = smcf->roots ? smcf->roots->elts : NULL;
        for (k = 0; k < n_roots; k++) {
            roots[k] = (char *) root[k].data;
        }
    }

    ngx_memzero(&conf, sizeof(conf));
    conf.model_path = model;
    conf.adapter_dir = smcf->adapter_dir.len ? adir : NULL;
    /* NUL-ended: literals, or the ends of configuration tokens */
    conf.device = (const char *) smcf->device.data;
    conf.backend_lib = smcf->cuda_lib.len ? (const char *) smcf->cuda_lib.data
                                          : NULL;
    conf.tensor_parallel = (int32_t) smcf->tensor_parallel;
    conf.weights = conf.device[0] == 'c' && conf.device[1] == 'p'
                   ? (const char *) smcf->weights.data : NULL;
    conf.n_threads = (int32_t) smcf->threads;
    conf.pool_bytes = smcf->pool;
    conf.host_cache_bytes = smcf->host_cache;
    conf.no_prefetch = !smcf->prefetch;
    conf.no_prefix_cache = !smcf->prefix_cache;
    conf.draft_lookup = (int) smcf->draft_lookup;
    conf.lookup_running = (int32_t) smcf->lookup_requests;
    conf.pinned_max = (int32_t) smcf->pinned_max;
    conf.prefetch_threads = (int32_t) smcf->prefetch_threads;
    conf.max_batch_tokens = (int32_t) smcf->max_batch_tokens;
    conf.max_running = (int32_t) smcf->max_running;
    conf.max_ctx = (int32_t) smcf->max_ctx;
    conf.max_waiting = (int32_t) smcf->slots;
    /* NUL-ended: a literal, or the end of a configuration token */
    conf.schedule = (const char *) smcf->schedule.data;
    conf.slo_ttft_ms = (int32_t) smcf->slo_ttft;
    conf.fair_prefill = (int32_t) smcf->fair_prefill;
    conf.fair_decode = (int32_t) smcf->fair_decode;
    conf.tokenizer = smcf->tokenizer;
    conf.redis_url = url;
    conf.adapter_roots = (const char *const *) roots;
    conf.n_adapter_roots = (int32_t) n_roots;
    conf.redis_connect_timeout_ms = (int32_t) smcf->catalog_timeout;
    conf.redis_timeout_ms = (int32_t) smcf->catalog_timeout;

    err.msg[0] = '\0';
    ec->engine = slora_engine_init(&conf, &err);
    ec->keys_version = 0;
    ngx_time_update();

    if (ec->engine == NULL) {
        ngx_http_slora_engine_access_hint(model, adir, &err);

        ec->load_ns = slora_now_ns();
        ec->load_wait_ns = ec->load_wait_ns ? 2 * ec->load_wait_ns
                                            : NGX_HTTP_SLORA_LOAD_RETRY_NS;
        ec->load_wait_ns = ngx_min(ec->load_wait_ns,
                                   NGX_HTTP_SLORA_LOAD_RETRY_MAX);
        ngx_log_error(NGX_LOG_EMERG, ec->cycle->log, 0,
                      "slora engine: cannot load \"%s\": %s; trying again"
                      " in %L s", model, err.msg,
                      ec->load_wait_ns / 1000000000LL);
        ngx_cpystrn((u_char *) ec->q->engine_err, (u_char *) err.msg,
                    sizeof(ec->q->engine_err));
        ngx_free(model);
        ngx_free(adir);
        ngx_free(url);
        ngx_free(roots);
        return;
    }

    mc = slora_engine_model_config(ec->engine);
    n_ctx = (int32_t) smcf->max_ctx;

    if (mc->max_ctx > 0 && mc->max_ctx < n_ctx) {
        n_ctx = mc->max_ctx;
    }

    atomic_store(&ec->q->n_ctx, n_ctx);

    ngx_http_slora_engine_restore(ec);

    n = slora_engine_adapters(ec->engine, &names);

    if (slora_queue_set_names(ec->q, names, n > 0 ? (uint32_t) n : 0, &err)
        != SLORA_OK)
    {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: %s", err.msg);
    }

    if (smcf->preload) {
        ngx_http_slora_engine_preload(ec, n);
    }

    ec->q->engine_err[0] = '\0';
    ngx_http_slora_engine_stats(ec);
    atomic_store_explicit(&ec->q->ready, 1, memory_order_release);

    ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                  "slora engine: ready: model \"%s\" (%s, %d layers,"
                  " context %d) on %s, %d adapters%s%V, prefix cache %s%s",
                  model, mc->name, mc->n_layers, n_ctx, conf.device, n,
                  url ? ", catalog " : "", &smcf->redis_url,
                  conf.no_prefix_cache ? "off" : "on",
                  conf.draft_lookup ? ", speculate lookup" : "");
}


/* Fails what a dead engine of an earlier epoch left in flight. */
void
ngx_http_slora_engine_reap(ngx_http_slora_engine_ctx_t *ec)
{
    uint32_t       i, st, failed;
    slora_slot_t  *s;

    failed = 0;

    for (i = 0; i < ec->n_slots; i++) {
        s = slora_queue_slot(ec->q, i);

        if (!(atomic_load(&s->refs) & SLORA_REF_ENGINE)) {
            continue;
        }

        st = atomic_load_explicit(&s->state, memory_order_acquire);

        if (st == SLORA_SLOT_SUBMITTED || st == SLORA_SLOT_RUNNING) {
            /* the code a worker gives when it finds the engine gone */
            ngx_cpystrn((u_char *) s->err_code, (u_char *) "engine_failed",
                        sizeof(s->err_code));
            slora_queue_fail(ec->q, i, NGX_HTTP_SERVICE_UNAVAILABLE,
                             "the engine restarted and the request was"
                             " lost; retry it");
            ngx_http_slora_engine_mark(ec, i);
            failed++;

        } else if (st == SLORA_SLOT_FINISHED || st == SLORA_SLOT_FAILED) {
            slora_queue_release(ec->q, i, SLORA_REF_ENGINE);
            ngx_http_slora_engine_mark(ec, i);
        }
    }

    if (failed) {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: failed %uD requests of the previous"
                      " engine", failed);
    }

    if (slora_ring_repair(slora_queue_ring(ec->q))) {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: the previous engine died inside a"
                      " take from the submission ring; mended");
    }

    ngx_http_slora_engine_wake(ec);
}


/* Every second: the slots of a worker that died (killed, or crashed)
 * come back, their requests stopped (slora_queue_reap), and what one
 * killed inside a submission left is taken back (slora_queue_recover). */
void
ngx_http_slora_engine_orphans(ngx_http_slora_engine_ctx_t *ec)
{
    uint32_t  i, n;

    n = slora_queue_reap(ec->q);

    if (n) {
        ngx_log_error(NGX_LOG_WARN, ec->cycle->log, 0,
                      "slora engine: %uD slots of a worker that died let go,"
                      " their requests stopped", n);
        ngx_http_slora_engine_wake(ec);
    }

    for (i = 0; i < ec->n_slots; i++) {
        ec->held[i] = ec->active[i] | ec->pending[i];
    }

    n = slora_queue_recover(ec->q, ec->held, &ec->recover);

    if (n) {
        ngx_log_error(NGX_LOG_ALERT, ec->cycle->log, 0,
                      "slora engine: a worker died inside a submission:"
                      " %uD cells of the submission ring and slots it"
                      " left taken back", n);
        ngx_http_slora_engine_wake(ec);
    }
}


/*
 * slora_adapters preload=on: the host tier is filled with the catalog's
 * adapters (as many as host_cache= holds) before the engine says it is
 * ready, so their first requests only copy them to the pool. Requests
 * that come meanwhile are refused as during the model's load (503,
 * engine_not_ready, "the engine is loading").
 */
static void
ngx_http_slora_engine_preload(ngx_http_slora_engine_ctx_t *ec, int n)
{
    int64_t       t0;
    int32_t       loaded;
    slora_err_t   err;

    t0 = slora_now_ns();
    loaded = 0;
    err.msg[0] = '\0';

    if (slora_engine_preload(ec->engine, &loaded, &err) != SLORA_OK) {
        ngx_log_error(NGX_LOG_ERR, ec->cycle->log, 0,
                      "slora engine: preload: %s", err.msg);
    }

    ngx_time_update();
    atomic_store(&ec->q->heartbeat_ns, slora_now_ns());

    ngx_log_error(NGX_LOG_NOTICE, ec->cycle->log, 0,
                  "slora engine: preloaded %D of %d adapters into host"
                  " memory in %.1f s", loaded, n,
                  (double) (slora_now_ns() - t0) / 1e9);
}
