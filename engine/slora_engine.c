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
 */

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slora_engine.h"
#include "slora_backend.h"
#include "slora_pool.h"
#include "slora_adapter.h"
#include "slora_sched.h"
#include "slora_sampler.h"


#define SLORA_ENGINE_MAX_CTX        4096
#define SLORA_ENGINE_POOL_CAP       ((size_t) 2 << 30)
#define SLORA_ENGINE_REAP           64


typedef struct {
    slora_req_t             r;              /* first: the scheduler's */
    slora_sampling_t        sampling;
    slora_rng_t             rng;
    int32_t                *stop_ids;       /* [n_stop] */
    int32_t                 n_stop;
} slora_engine_req_t;


struct slora_engine_s {
    slora_engine_conf_t     conf;
    slora_model_t          *model;
    slora_backend_t        *backend;
    slora_pool_t           *pool;
    int64_t                *layer_off;      /* [n_layers] */
    slora_adapters_t       *adapters;
    slora_sched_t          *sched;
    slora_sampler_t        *sampler;

    int32_t                *tokens;         /* [max_batch_tokens] */
    slora_batch_seq_t      *seqs;           /* [max_running] */
    slora_lora_t           *loras;          /* [max_running] */
    float                  *logits;         /* [max_running, vocab] */

    const char            **names;
    int32_t                 n_cancel;

    uint64_t                steps;
    uint64_t                tokens_prefilled;
    uint64_t                tokens_decoded;
    int64_t                 last_step_ns;
};


static int slora_engine_catalog(slora_engine_t *e, const char *dir,
    slora_err_t *err);
static int slora_engine_name_cmp(const void *a, const void *b);
static size_t slora_engine_pool_size(const slora_engine_t *e);
static int slora_engine_valid_name(const char *name);
static void slora_engine_emit(slora_event_cb cb, void *data,
    slora_event_e type, uint64_t id, int32_t token, slora_finish_e finish,
    const char *error);
static void slora_engine_end(slora_engine_t *e, slora_engine_req_t *q);
static int slora_engine_run(slora_engine_t *e, slora_sched_step_t *step,
    slora_event_cb cb, void *data);


slora_engine_t *
slora_engine_init(const slora_engine_conf_t *conf, slora_err_t *err)
{
    long                    cores;
    int32_t                 l;
    size_t                  bytes;
    slora_engine_t         *e;
    slora_pool_geom_t       g;
    slora_sched_conf_t      sc;
    slora_model_config_t   *cfg;

    if (conf->model_path == NULL) {
        slora_err_set(err, SLORA_ERROR, "engine: no model path");
        return NULL;
    }

    if (conf->device != NULL && conf->device[0] != '\0'
        && strcmp(conf->device, "cpu") != 0)
    {
        slora_err_set(err, SLORA_ERROR, "engine: device \"%s\" is not "
                      "supported by this build (only \"cpu\")", conf->device);
        return NULL;
    }

    e = calloc(1, sizeof(slora_engine_t));
    if (e == NULL) {
        slora_err_set(err, SLORA_ERROR, "engine: out of memory");
        return NULL;
    }

    e->conf = *conf;
    e->conf.adapter_dir = NULL;
    e->conf.model_path = NULL;
    e->conf.device = "cpu";

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

    e->model = slora_model_load(conf->model_path, err);
    if (e->model == NULL) {
        goto failed;
    }

    cfg = &e->model->cfg;

    if (e->conf.max_ctx <= 0) {
        e->conf.max_ctx = cfg->max_ctx > 0 && cfg->max_ctx
                          < SLORA_ENGINE_MAX_CTX ? cfg->max_ctx
                                                 : SLORA_ENGINE_MAX_CTX;
    }

    e->backend = slora_backend_cpu_create(e->conf.n_threads, err);
    if (e->backend == NULL) {
        goto failed;
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

    e->pool = slora_pool_create(&g, slora_engine_pool_size(e), err);
    if (e->pool == NULL) {
        goto failed;
    }

    bytes = slora_pool_arena_bytes(e->pool);
    if (e->backend->alloc_arena(e->backend, bytes, err) != SLORA_OK) {
        goto failed;
    }

    e->layer_off = malloc((size_t) cfg->n_layers * sizeof(int64_t));
    e->tokens = malloc((size_t) e->conf.max_batch_tokens * sizeof(int32_t));
    e->seqs = calloc((size_t) e->conf.max_running, sizeof(slora_batch_seq_t));
    e->loras = calloc((size_t) e->conf.max_running, sizeof(slora_lora_t));
    e->logits = malloc((size_t) e->conf.max_running * (size_t) cfg->vocab
                       * sizeof(float));

    if (e->layer_off == NULL || e->tokens == NULL || e->seqs == NULL
        || e->loras == NULL || e->logits == NULL)
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

    if (conf->adapter_dir != NULL && conf->adapter_dir[0] != '\0'
        && slora_engine_catalog(e, conf->adapter_dir, err) != SLORA_OK)
    {
        goto failed;
    }

    sc.max_batch_tokens = e->conf.max_batch_tokens;
    sc.max_running = e->conf.max_running;

    e->sched = slora_sched_create(&sc, e->pool, e->adapters,
                                  &slora_sched_fcfs, err);
    if (e->sched == NULL) {
        goto failed;
    }

    e->sampler = slora_sampler_create(cfg->vocab, err);
    if (e->sampler == NULL) {
        goto failed;
    }

    return e;

failed:

    slora_engine_free(e);
    return NULL;
}


void
slora_engine_free(slora_engine_t *e)
{
    slora_req_t  *r;

    if (e == NULL) {
        return;
    }

    if (e->sched != NULL) {
        while ((r = slora_sched_first(e->sched)) != NULL) {
            slora_engine_end(e, (slora_engine_req_t *) r);
        }
    }

    slora_sched_free(e->sched);
    slora_sampler_free(e->sampler);
    slora_adapters_free(e->adapters);
    slora_pool_free(e->pool);

    if (e->backend != NULL) {
        e->backend->free(e->backend);
    }

    slora_model_free(e->model);

    free(e->layer_off);
    free(e->tokens);
    free(e->seqs);
    free(e->loras);
    free(e->logits);
    free(e->names);
    free(e);
}


int
slora_engine_add_adapter(slora_engine_t *e, const char *name,
    const char *dir, slora_err_t *err)
{
    slora_adapter_conf_t  conf;

    if (slora_adapter_read_config(dir, &e->model->cfg, &conf, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    return slora_adapters_add(e->adapters, name, dir, NULL, err);
}


int
slora_engine_submit(slora_engine_t *e, const slora_request_t *req,
    slora_err_t *err)
{
    int32_t                   i, vocab, cap;
    size_t                    size;
    slora_adapter_t          *a;
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

    if (sp->max_tokens < 1
        || (int64_t) req->n_prompt + sp->max_tokens > e->conf.max_ctx)
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: %d prompt "
                             "tokens + max_tokens %d must fit the context of "
                             "%d (max_tokens >= 1)",
                             (unsigned long long) req->id, req->n_prompt,
                             sp->max_tokens, e->conf.max_ctx);
    }

    if (!(sp->temperature >= 0) || !isfinite(sp->temperature)
        || sp->top_k < 0 || !(sp->top_p >= 0 && sp->top_p <= 1)
        || !(sp->repeat_penalty >= 0) || !isfinite(sp->repeat_penalty))
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: bad sampling "
                             "(temperature %g, top_k %d, top_p %g, "
                             "repeat_penalty %g)",
                             (unsigned long long) req->id,
                             (double) sp->temperature, sp->top_k,
                             (double) sp->top_p, (double) sp->repeat_penalty);
    }

    if (req->n_stop_ids < 0 || (req->n_stop_ids > 0 && req->stop_ids == NULL)
        || req->n_stop_ids > 1024)
    {
        return slora_err_set(err, SLORA_ERROR, "request %llu: bad stop ids",
                             (unsigned long long) req->id);
    }

    a = NULL;

    if (req->adapter != NULL && req->adapter[0] != '\0') {
        if (!slora_engine_valid_name(req->adapter)) {
            return slora_err_set(err, SLORA_ERROR, "request %llu: adapter "
                                 "name \"%.64s\" is refused",
                                 (unsigned long long) req->id, req->adapter);
        }

        a = slora_adapters_find(e->adapters, req->adapter);
        if (a == NULL) {
            return slora_err_set(err, SLORA_DECLINED, "request %llu: unknown "
                                 "adapter \"%s\"",
                                 (unsigned long long) req->id, req->adapter);
        }
    }

    if (slora_sched_waiting(e->sched) >= e->conf.max_waiting) {
        return slora_err_set(err, SLORA_BUSY, "request %llu: %d requests "
                             "wait already", (unsigned long long) req->id,
                             e->conf.max_waiting);
    }

    if (slora_sched_find(e->sched, req->id) != NULL) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: id in use",
                             (unsigned long long) req->id);
    }

    cap = req->n_prompt + sp->max_tokens;
    size = sizeof(slora_engine_req_t)
           + (size_t) (cap + req->n_stop_ids) * sizeof(int32_t);

    q = calloc(1, size);
    if (q == NULL) {
        return slora_err_set(err, SLORA_ERROR, "request %llu: no memory",
                             (unsigned long long) req->id);
    }

    q->r.id = req->id;
    q->r.adapter = a;
    q->r.tokens = (int32_t *) (q + 1);
    q->r.n_prompt = req->n_prompt;
    q->r.n_tokens = req->n_prompt;
    q->r.cap = cap;
    memcpy(q->r.tokens, req->prompt, (size_t) req->n_prompt * sizeof(int32_t));

    q->stop_ids = q->r.tokens + cap;
    q->n_stop = req->n_stop_ids;
    if (q->n_stop > 0) {
        memcpy(q->stop_ids, req->stop_ids,
               (size_t) q->n_stop * sizeof(int32_t));
    }

    q->sampling = *sp;
    slora_rng_seed(&q->rng, sp->seed);

    if (slora_sched_submit(e->sched, &q->r, err) != SLORA_OK) {
        free(q);
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


int
slora_engine_cancel(slora_engine_t *e, uint64_t id)
{
    slora_req_t  *r;

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
    int                  rc, did;
    int32_t              i, n;
    int64_t              t0;
    slora_req_t         *reaped[SLORA_ENGINE_REAP], *r;
    slora_sched_step_t   step;

    t0 = slora_now_ns();
    did = 0;

    while (e->n_cancel > 0) {
        n = slora_sched_reap(e->sched, reaped, SLORA_ENGINE_REAP);
        for (i = 0; i < n; i++) {
            slora_engine_emit(cb, data, SLORA_EV_DONE, reaped[i]->id, -1,
                              SLORA_FINISH_CANCEL, NULL);
            free(reaped[i]->pages);
            free(reaped[i]);
        }
        e->n_cancel = n == SLORA_ENGINE_REAP ? e->n_cancel : 0;
        did |= n > 0;
    }

    slora_sched_plan(e->sched, &step);

    for (i = 0; i < step.n_failed; i++) {
        r = step.failed[i];
        slora_engine_emit(cb, data, SLORA_EV_ERROR, r->id, -1,
                          SLORA_FINISH_NONE, r->err.msg);
        free(r->pages);
        free(r);
        did = 1;
    }

    if (step.n_items == 0) {
        return did ? SLORA_OK : SLORA_DONE;
    }

    rc = slora_engine_run(e, &step, cb, data);

    e->steps++;
    e->last_step_ns = slora_now_ns() - t0;

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
    int32_t                  p, n, run;
    slora_adapters_stats_t   as;

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
    st->adapter_evictions = as.evictions;
    st->adapter_hits = as.hits;
    st->preemptions = slora_sched_preemptions(e->sched);
    st->steps = e->steps;
    st->tokens_prefilled = e->tokens_prefilled;
    st->tokens_decoded = e->tokens_decoded;
    st->last_step_ns = e->last_step_ns;
    st->adapter_pool_elems = as.pool_elems;
    st->adapter_used_elems = as.pool_used_elems;

    n = slora_pool_n_pages(e->pool);
    run = 0;

    for (p = 0; p <= n; p++) {
        if (p < n && slora_pool_page_kind(e->pool, p) == SLORA_PAGE_FREE) {
            run++;
            continue;
        }

        if (run > 0) {
            st->free_runs++;
            st->free_run_max = run > st->free_run_max ? run
                                                      : st->free_run_max;
        }
        run = 0;
    }
}


int32_t
slora_engine_adapters(slora_engine_t *e, const char ***names)
{
    int32_t       i, n;
    const char  **list;

    n = slora_adapters_count(e->adapters);

    list = malloc((size_t) (n > 0 ? n : 1) * sizeof(const char *));
    if (list == NULL) {
        *names = e->names;
        return 0;
    }

    for (i = 0; i < n; i++) {
        list[i] = slora_adapter_name(slora_adapters_get(e->adapters, i));
    }

    free(e->names);
    e->names = list;
    *names = list;

    return n;
}


/* Registers every sub-folder of dir, sorted by name. */
static int
slora_engine_catalog(slora_engine_t *e, const char *dir, slora_err_t *err)
{
    int             rc;
    DIR            *d;
    char            path[1280], **names, **grown;
    size_t          n, cap, i;
    struct stat     sb;
    struct dirent  *de;

    d = opendir(dir);
    if (d == NULL) {
        return slora_err_set(err, SLORA_ERROR, "adapter dir %s: %s", dir,
                             strerror(errno));
    }

    names = NULL;
    n = 0;
    cap = 0;
    rc = SLORA_OK;

    while ((de = readdir(d)) != NULL) {
        if (!slora_engine_valid_name(de->d_name)) {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            continue;
        }

        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            grown = realloc(names, cap * sizeof(char *));
            if (grown == NULL) {
                rc = slora_err_set(err, SLORA_ERROR, "adapter dir %s: no "
                                   "memory", dir);
                break;
            }
            names = grown;
        }

        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = slora_err_set(err, SLORA_ERROR, "adapter dir %s: no memory",
                               dir);
            break;
        }
        n++;
    }

    closedir(d);

    if (rc == SLORA_OK) {
        qsort(names, n, sizeof(char *), slora_engine_name_cmp);
    }

    for (i = 0; i < n; i++) {
        if (rc == SLORA_OK) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            rc = slora_adapters_add(e->adapters, names[i], path, NULL, err);
        }
        free(names[i]);
    }

    free(names);

    return rc;
}


static int
slora_engine_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/*
 * Default: K/V for max_running sequences at half of max_ctx, plus a
 * quarter for adapters; at least two full contexts; else at most 2 GiB
 * and an eighth of the host's memory (the CPU backend's arena is host
 * memory, zeroed up front).
 */
static size_t
slora_engine_pool_size(const slora_engine_t *e)
{
    long                          pages, psize;
    size_t                        tok, want, floor_, cap;
    const slora_model_config_t   *cfg;

    if (e->conf.pool_bytes > 0) {
        return e->conf.pool_bytes;
    }

    cfg = &e->model->cfg;
    tok = (size_t) cfg->n_layers * 2 * (size_t) cfg->n_kv_heads
          * (size_t) cfg->head_dim * e->backend->elem_size;

    want = tok * (size_t) e->conf.max_running * (size_t) e->conf.max_ctx / 2;
    want += want / 4;
    floor_ = tok * (size_t) e->conf.max_ctx * 2;

    cap = SLORA_ENGINE_POOL_CAP;
    pages = sysconf(_SC_PHYS_PAGES);
    psize = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psize > 0 && (size_t) pages * (size_t) psize / 8 < cap) {
        cap = (size_t) pages * (size_t) psize / 8;
    }

    want = want < cap ? want : cap;

    return want > floor_ ? want : floor_;
}


static int
slora_engine_valid_name(const char *name)
{
    return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL
           && strstr(name, "..") == NULL && strlen(name) < 256;
}


static void
slora_engine_emit(slora_event_cb cb, void *data, slora_event_e type,
    uint64_t id, int32_t token, slora_finish_e finish, const char *error)
{
    slora_event_t  ev;

    if (cb == NULL) {
        return;
    }

    ev.type = type;
    ev.id = id;
    ev.token = token;
    ev.finish = finish;
    ev.error = error;

    cb(data, &ev);
}


static void
slora_engine_end(slora_engine_t *e, slora_engine_req_t *q)
{
    slora_sched_finish(e->sched, &q->r);
    free(q->r.pages);
    free(q);
}


static int
slora_engine_run(slora_engine_t *e, slora_sched_step_t *step,
    slora_event_cb cb, void *data)
{
    int                       stop;
    int32_t                   i, j, n_tok, n_loras, n_logits, tok, vocab;
    slora_err_t               err;
    slora_batch_t             batch;
    slora_engine_req_t       *q;
    slora_batch_seq_t        *sq;
    const slora_adapter_t    *last;
    const slora_sched_item_t *it;

    vocab = e->model->cfg.vocab;
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
        sq->logits_row = it->logits ? n_logits++ : -1;

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

    if (e->backend->forward(e->backend, &batch, e->layer_off,
                            slora_pool_page_elems(e->pool),
                            slora_pool_tokens_per_page(e->pool), &err)
        != SLORA_OK)
    {
        for (i = 0; i < step->n_items; i++) {
            q = (slora_engine_req_t *) step->items[i].req;
            slora_engine_emit(cb, data, SLORA_EV_ERROR, q->r.id, -1,
                              SLORA_FINISH_NONE, err.msg);
            slora_engine_end(e, q);
        }
        return SLORA_ERROR;
    }

    slora_sched_advance(e->sched, step);

    e->tokens_prefilled += (uint64_t) step->n_prefill;
    e->tokens_decoded += (uint64_t) step->n_decode;

    for (i = 0; i < step->n_items; i++) {
        it = &step->items[i];
        if (!it->logits) {
            continue;
        }

        q = (slora_engine_req_t *) it->req;

        tok = slora_sample(e->sampler, &q->sampling, &q->rng,
                           e->logits + (size_t) e->seqs[i].logits_row * vocab,
                           q->r.tokens, q->r.n_tokens);

        q->r.tokens[q->r.n_tokens++] = tok;

        stop = 0;
        for (j = 0; j < q->n_stop; j++) {
            stop |= q->stop_ids[j] == tok;
        }

        if (stop) {
            slora_engine_emit(cb, data, SLORA_EV_DONE, q->r.id, tok,
                              SLORA_FINISH_STOP, NULL);
            slora_engine_end(e, q);
            continue;
        }

        slora_engine_emit(cb, data, SLORA_EV_TOKEN, q->r.id, tok,
                          SLORA_FINISH_NONE, NULL);

        if (q->r.n_tokens == q->r.cap) {
            slora_engine_emit(cb, data, SLORA_EV_DONE, q->r.id, -1,
                              SLORA_FINISH_LENGTH, NULL);
            slora_engine_end(e, q);
        }
    }

    return SLORA_OK;
}
