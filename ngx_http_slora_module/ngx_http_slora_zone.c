/*
 * ngx_http_slora_zone.c: the shared zone that carries engine/slora_queue.h
 * between the master, the workers and the engine process.
 *
 * The one idea: the zone is named after the hash of the engine's
 * configuration, "slora_<hash>". A reload that keeps the engine's
 * directives gets the same name and size, nginx hands the old zone back,
 * and the kept engine goes on using it; any other reload gets a fresh zone
 * for a fresh engine, while the old workers finish their streams on the old
 * zone with the old engine (an engine of the same hash told to quit, by
 * WINCH, drains on its zone while a new one starts on "slora_<hash>_<n>":
 * ngx_http_slora_engine_zone_salt). A fresh zone takes the adapters
 * registered at run time from the old cycle's. The queue region is one
 * slab allocation, so the slab's own header and mutex stay valid for
 * nginx.
 */

#include "ngx_http_slora_module.h"


static ngx_int_t ngx_http_slora_zone_init(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_slora_zone_geom(ngx_http_slora_main_conf_t *smcf,
    slora_queue_geom_t *g);
static void ngx_http_slora_zone_inherit(slora_queue_t *q,
    ngx_shm_zone_t *shm_zone);


ngx_int_t
ngx_http_slora_zone_add(ngx_conf_t *cf, ngx_http_slora_main_conf_t *smcf)
{
    size_t              size, memory;
    ngx_str_t           name;
    ngx_uint_t          salt;
    slora_queue_geom_t  g;

    ngx_http_slora_zone_geom(smcf, &g);

    size = slora_queue_size(&g);
    if (size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "slora_engine: slots=%i max_ctx=%i max_tokens=%i"
                           " give an invalid zone size", smcf->slots,
                           smcf->max_ctx, smcf->max_tokens);
        return NGX_ERROR;
    }

    /* room for the slab's page table and alignment */
    size += size / 16 + 16 * ngx_pagesize;
    size = ngx_align(size, ngx_pagesize);

    /* every process maps it, and nginx -t makes it too: a size past
     * half the machine's memory is a mistake in slots= or max_ctx=, said
     * so at slora_engine's line rather than by a failed mmap() */
    memory = (size_t) sysconf(_SC_PHYS_PAGES) * (size_t) sysconf(_SC_PAGESIZE);

    if (memory > 0 && size > memory / 2) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "slora_engine: slots=%i with max_ctx=%i, max_tokens=%i"
                      " and top_logprobs=%i make a shared zone of %uz MB,"
                      " more than half of this machine's %uz MB: fewer"
                      " slots or a shorter max_ctx in %V:%ui", smcf->slots,
                      smcf->max_ctx, smcf->max_tokens, smcf->top_logprobs,
                      size >> 20, memory >> 20, &smcf->engine_file,
                      smcf->engine_line);
        return NGX_ERROR;
    }

    name.data = ngx_pnalloc(cf->pool, sizeof("slora__") + 8 + NGX_INT_T_LEN);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    salt = ngx_http_slora_engine_zone_salt(smcf);

    if (salt == 0) {
        name.len = ngx_sprintf(name.data, "slora_%08xD", smcf->hash)
                   - name.data;

    } else {
        name.len = ngx_sprintf(name.data, "slora_%08xD_%ui", smcf->hash, salt)
                   - name.data;
    }

    smcf->zone = ngx_shared_memory_add(cf, &name, size,
                                       &ngx_http_slora_module);
    if (smcf->zone == NULL) {
        return NGX_ERROR;
    }

    smcf->zone->init = ngx_http_slora_zone_init;
    smcf->zone->data = smcf;

    return NGX_OK;
}


static void
ngx_http_slora_zone_geom(ngx_http_slora_main_conf_t *smcf,
    slora_queue_geom_t *g)
{
    g->n_slots = (uint32_t) smcf->slots;
    g->prompt_cap = (uint32_t) smcf->max_ctx;
    g->output_cap = (uint32_t) smcf->max_tokens;
    g->top_cap = (uint32_t) smcf->top_logprobs;
}


static ngx_int_t
ngx_http_slora_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_slora_main_conf_t  *smcf = shm_zone->data;

    size_t               size;
    slora_err_t          err;
    slora_queue_t       *q;
    ngx_slab_pool_t     *shpool;
    slora_queue_geom_t   g;

    ngx_http_slora_zone_geom(smcf, &g);
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (data != NULL) {
        /* a reload with unchanged engine directives: the same name; data
         * is the old cycle's conf, which dies with it, so keep ours */
        q = shpool->data;

        if (slora_queue_check(q, &g, &err) != SLORA_OK) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "slora zone \"%V\": %s", &shm_zone->shm.name,
                          err.msg);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        q = shpool->data;
        return slora_queue_check(q, &g, NULL) == SLORA_OK ? NGX_OK
                                                         : NGX_ERROR;
    }

    size = slora_queue_size(&g);

    q = ngx_slab_alloc(shpool, size);
    if (q == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "slora zone \"%V\": cannot allocate %uz bytes",
                      &shm_zone->shm.name, size);
        return NGX_ERROR;
    }

    if (slora_queue_init(q, size, &g, smcf->hash, &err) != SLORA_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "slora zone \"%V\": %s", &shm_zone->shm.name, err.msg);
        return NGX_ERROR;
    }

    shpool->data = q;

    ngx_http_slora_zone_inherit(q, shm_zone);

    return NGX_OK;
}


/*
 * A reload's fresh zone takes the adapters the old zone's engine had
 * registered at run time, so that the new engine serves them too. During
 * the reload ngx_cycle is still the old cycle, whose zone the master
 * still maps; at the first start (or a binary upgrade's new master) there
 * is none. The old cycle's conf is found by this module's index there:
 * a reload that loads the module for the first time gives it an index
 * past the old cycle's array of http modules' confs.
 */
static void
ngx_http_slora_zone_inherit(slora_queue_t *q, ngx_shm_zone_t *shm_zone)
{
    ngx_uint_t                   i;
    slora_queue_t               *old;
    ngx_http_conf_ctx_t         *octx;
    ngx_http_slora_main_conf_t  *omcf;

    if (ngx_cycle == NULL || ngx_cycle->conf_ctx == NULL
        || ngx_cycle->modules == NULL
        || ngx_cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return;
    }

    for (i = 0; ngx_cycle->modules[i] != NULL; i++) {
        if (ngx_cycle->modules[i]->type == NGX_HTTP_MODULE
            && ngx_strcmp(ngx_cycle->modules[i]->name,
                          ngx_http_slora_module.name) == 0)
        {
            break;
        }
    }

    if (ngx_cycle->modules[i] == NULL) {
        return;
    }

    octx = (ngx_http_conf_ctx_t *) ngx_cycle->conf_ctx[ngx_http_module.index];
    omcf = octx->main_conf[ngx_cycle->modules[i]->ctx_index];

    if (omcf == NULL || omcf->zone == shm_zone) {
        return;
    }

    old = ngx_http_slora_queue(omcf);
    if (old == NULL || old == q || old->magic != SLORA_QUEUE_MAGIC
        || old->version != SLORA_QUEUE_VERSION)
    {
        return;
    }

    /* from now on what the old engine registers would not reach the
     * new one: it refuses until it is told to quit (or, the reload
     * failing after this, for a few seconds) */
    atomic_store(&old->registry_copied_ns, slora_now_ns());

    slora_queue_registry_copy(q, old);
}


slora_queue_t *
ngx_http_slora_queue(ngx_http_slora_main_conf_t *smcf)
{
    ngx_slab_pool_t  *shpool;

    if (smcf->zone == NULL || smcf->zone->shm.addr == NULL) {
        return NULL;
    }

    shpool = (ngx_slab_pool_t *) smcf->zone->shm.addr;

    return shpool->data;
}


/*
 * Why requests cannot be served now, or NULL if the engine looks alive:
 * never started, still loading, failed to load, gone (its pid no longer
 * exists; workers run as another user, so EPERM still means alive), or
 * silent for longer than NGX_HTTP_SLORA_STALE_MS.
 */
const char *
ngx_http_slora_engine_down(slora_queue_t *q)
{
    int64_t   hb, now;
    ngx_pid_t pid;

    if (q == NULL) {
        return "the engine has not started";
    }

    if (atomic_load(&q->epoch) == 0) {
        /* the master's word when the engine could not be spawned */
        return q->engine_err[0] ? q->engine_err
                                : "the engine has not started";
    }

    if (!atomic_load_explicit(&q->ready, memory_order_acquire)) {
        return q->engine_err[0] ? q->engine_err : "the engine is loading";
    }

    pid = atomic_load(&q->engine_pid);

    if (pid <= 0 || (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH)) {
        return "the engine process is gone";
    }

    hb = atomic_load(&q->heartbeat_ns);
    now = slora_now_ns();

    if (now - hb > (int64_t) NGX_HTTP_SLORA_STALE_MS * 1000000) {
        return "the engine has not answered for a minute";
    }

    return NULL;
}
