/*
 * slora_engine_adapters.c: the engine's side of the adapter catalog:
 * adapters found by name (the directory, or Redis through the catalog's
 * thread), requests parked while their tenant or adapter resolves or
 * while the prefetch thread reads their adapter, what the prefetch thread
 * is fed (waiting requests, the catalog's hints) and what it hands back,
 * the admin operations (load, unload, pin, unpin, list), adapters
 * registered at run time (their folders read by a prefetch thread), and
 * the preload of the whole catalog into the host tier before serving.
 *
 * The one idea: a request reaches the scheduler only once its adapter is
 * known and, when others are running, in host memory; until then it sits
 * on the resolving list, retried at every step, so the engine thread
 * never waits on Redis or the disk for one request while others run.
 */

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_engine_int.h"
#include "slora_utf8.h"


#define SLORA_ENGINE_PRELOAD_THREADS  64

/* Adapters whose files a refresh looks at, at most (in turn). */
#define SLORA_ENGINE_FILES_CHECKS     64


/* One adapter of a preload: read by whichever thread claims it. */
typedef struct {
    slora_adapter_t        *a;
    uint64_t                gen;
    int                     rc;
    slora_adapter_image_t   img;
    slora_err_t             err;
} slora_engine_preload_job_t;


typedef struct {
    const slora_model_config_t   *cfg;
    int64_t                       page_elems;
    int32_t                       slices;
    const slora_host_mem_t       *mem;
    slora_engine_preload_job_t   *jobs;         /* [n_jobs] */
    int32_t                       n_jobs;
    atomic_int                    next;         /* the next unclaimed */
} slora_engine_preload_t;


static int slora_engine_check_here(slora_engine_t *e, const char *path,
    slora_err_t *err);
static int slora_engine_checked(slora_engine_t *e, int rc,
    slora_adapter_image_t *img);
static void slora_engine_reading_done(slora_engine_t *e,
    slora_prefetch_done_t *done);
static int slora_engine_get_adapter(slora_engine_t *e, const char *name,
    int use, slora_adapter_t **out, slora_err_t *err);
static void slora_engine_prefetch_one(slora_engine_t *e, slora_adapter_t *a);
static void slora_engine_drop_copies(slora_engine_t *e, slora_adapter_t *a);
static int slora_engine_preload_size(slora_engine_t *e, slora_adapter_t *a,
    size_t *bytes, slora_err_t *err);
static void *slora_engine_preload_main(void *arg);


int
slora_engine_add_adapter(slora_engine_t *e, const char *name,
    const char *dir, slora_err_t *err)
{
    int                       rc;
    char                     *rp;
    slora_adapter_t          *a;
    slora_adapter_conf_t      conf;
    slora_catalog_adapter_t  *ca;

    /* a folder by its realpath, the one the catalog holds and its files
     * are opened along (through no link: slora_adapter_file.c); a
     * random adapter's spec as it is */
    rp = slora_adapter_is_random(dir) ? strdup(dir) : realpath(dir, NULL);
    if (rp == NULL) {
        return slora_err_set(err, SLORA_ERROR, "adapter %s: %s: %s", name,
                             dir, strerror(errno));
    }

    rc = slora_adapter_read_config(rp, &e->model->cfg, &conf, err);

    if (rc == SLORA_OK && slora_adapters_find(e->adapters, name) != NULL) {
        rc = slora_err_set(err, SLORA_DECLINED, "adapter \"%s\" is "
                           "already registered", name);
    }

    if (rc == SLORA_OK
        && (slora_catalog_put(e->catalog, name, rp, &ca, err) != SLORA_OK
            || slora_adapters_add(e->adapters, name, ca->path, &a, err)
               != SLORA_OK))
    {
        rc = SLORA_ERROR;
    }

    free(rp);

    if (rc != SLORA_OK) {
        return rc;
    }

    ca->data = a;

    return SLORA_OK;
}


/*
 * slora_catalog_runtime_add's check: the folder holds an adapter of this
 * model, its config and its weights read as a request's would be, into
 * the backend's host memory. With the adapter folder the image read is
 * kept, and becomes the adapter's host copy once registered (the folder
 * read once); with Redis the registration ends in another call, after
 * the write, and its first use reads the folder again.
 *
 * The weights are read by a prefetch thread where the engine has them,
 * so that no stream waits for them: the first call hands the folder
 * out and answers SLORA_AGAIN, as does every call while it is out, or
 * while another registration's outcome waits for its owner; the owner's
 * call after the read ended (the engine's wake_fd says when) takes it.
 * Without prefetch threads the engine's thread reads it here.
 */
static int
slora_engine_check_folder(void *data, const char *path, slora_err_t *err)
{
    int                      rc;
    slora_engine_t          *e = data;
    slora_adapter_image_t    img;
    slora_engine_reading_t  *rd;

    memset(&img, 0, sizeof(img));
    slora_engine_drop_checked(e);

    if (e->prefetch == NULL) {
        return slora_engine_check_here(e, path, err);
    }

    rd = &e->reading;

    if (rd->state == SLORA_READING_OUT
        || (rd->state == SLORA_READING_DONE && rd->owner != e->asking))
    {
        return SLORA_AGAIN;
    }

    if (rd->state == SLORA_READING_DONE) {
        if (strcmp(rd->path, path) == 0) {
            rc = rd->done.status;
            if (rc != SLORA_OK) {
                *err = rd->done.err;
            }

            img = rd->done.img;
            memset(&rd->done.img, 0, sizeof(rd->done.img));
            slora_engine_reading_clear(e);

            return slora_engine_checked(e, rc, &img);
        }

        /* the path leads elsewhere since: that folder is read */
        slora_engine_reading_clear(e);
    }

    rd->path = strdup(path);
    if (rd->path == NULL) {
        return slora_err_set(err, SLORA_ERROR, "engine: no memory for a "
                             "registration's path");
    }

    rc = slora_prefetch_submit(e->prefetch, rd, 0, path, path, NULL);

    if (rc == SLORA_OK) {
        rd->state = SLORA_READING_OUT;
        rd->owner = e->asking;
        return SLORA_AGAIN;
    }

    slora_engine_reading_clear(e);

    if (rc != SLORA_BUSY) {
        return slora_err_set(err, SLORA_ERROR, "engine: cannot hand %s to a"
                             " prefetch thread: no memory", path);
    }

    /*
     * Its loads are all out: requests' adapters, which each step hands
     * out again as they end, so a turn might never come; this one is
     * read here, as without the threads.
     */
    return slora_engine_check_here(e, path, err);
}


/* A registration's folder read on the engine's thread. */
static int
slora_engine_check_here(slora_engine_t *e, const char *path,
    slora_err_t *err)
{
    int                    rc;
    slora_adapter_image_t  img;

    memset(&img, 0, sizeof(img));

    rc = slora_adapter_image_load(&e->model->cfg,
                                  slora_pool_page_elems(e->pool),
                                  slora_pool_slices(e->pool),
                                  &e->backend->host_mem, path, path, NULL,
                                  &img, err);

    return slora_engine_checked(e, rc, &img);
}


/* A registration's folder read (rc, img): kept as the adapter's host
 * copy with the folder catalog, freed with Redis or on failure. */
static int
slora_engine_checked(slora_engine_t *e, int rc, slora_adapter_image_t *img)
{
    if (rc == SLORA_OK && !e->redis) {
        e->checked = *img;
        e->have_checked = 1;
        return SLORA_OK;
    }

    slora_adapter_image_free(img);

    return rc == SLORA_OK ? SLORA_OK : SLORA_ERROR;
}


/* A prefetch thread's read of a registration's folder ended: its owner
 * takes it at its next call, or it is dropped if the owner went. */
static void
slora_engine_reading_done(slora_engine_t *e, slora_prefetch_done_t *done)
{
    slora_engine_reading_t  *rd = &e->reading;

    rd->done = *done;
    rd->state = SLORA_READING_DONE;

    if (rd->orphan) {
        slora_engine_reading_clear(e);
    }
}


void
slora_engine_reading_clear(slora_engine_t *e)
{
    slora_engine_reading_t  *rd = &e->reading;

    if (rd->state == SLORA_READING_DONE) {
        slora_adapter_image_free(&rd->done.img);
    }

    free(rd->path);
    memset(rd, 0, sizeof(slora_engine_reading_t));
}


void
slora_engine_drop_checked(slora_engine_t *e)
{
    if (e->have_checked) {
        slora_adapter_image_free(&e->checked);
        e->have_checked = 0;
    }
}


/* slora_engine_restore_adapter's: the config alone, the weights read at
 * first use as any adapter's */
static int
slora_engine_check_config(void *data, const char *path, slora_err_t *err)
{
    slora_engine_t        *e = data;
    slora_adapter_conf_t   conf;

    return slora_adapter_read_config(path, &e->model->cfg, &conf, err);
}


int
slora_engine_restore_adapter(slora_engine_t *e, const char *name,
    const char *dir, slora_err_t *err)
{
    slora_catalog_adapter_t  *ca;

    return slora_catalog_runtime_add(e->catalog, name, dir, 1, 0,
                                     slora_engine_check_config, e, &ca, err);
}


int
slora_engine_register_adapter(slora_engine_t *e, const char *name,
    const char *dir, int replace, uint64_t owner, const char **path,
    slora_err_t *err)
{
    int                       rc;
    slora_adapter_t          *a;
    slora_catalog_adapter_t  *ca;

    e->asking = owner;
    rc = slora_catalog_runtime_add(e->catalog, name, dir, replace, owner,
                                   slora_engine_check_folder, e, &ca, err);
    if (rc != SLORA_OK) {
        slora_engine_drop_checked(e);

        if (rc != SLORA_AGAIN) {
            /* refused before its check took the read (the folder gone
             * meanwhile, the name taken) */
            slora_engine_registration_end(e, owner);
        }

        return rc;
    }

    *path = ca != NULL ? ca->path : NULL;
    err->msg[0] = '\0';

    if (ca == NULL) {
        slora_engine_drop_checked(e);
        return SLORA_OK;
    }

    /* into host memory and the pool, as vLLM's add_lora loads it (the
     * host copy the image the check read, where it is not stale); a pool
     * with no room now takes it at its first request */
    rc = slora_engine_get_adapter(e, name, 0, &a, err);

    if (rc == SLORA_OK && e->have_checked
        && slora_adapters_install(e->adapters, a, slora_adapter_gen(a),
                                  &e->checked)
           == SLORA_OK)
    {
        e->have_checked = 0;
    }

    slora_engine_drop_checked(e);

    if (rc == SLORA_OK) {
        rc = slora_adapter_acquire(e->adapters, a, err);
        if (rc == SLORA_OK) {
            slora_adapter_release(e->adapters, a);
        }
    }

    if (rc == SLORA_OK || rc == SLORA_BUSY) {
        err->msg[0] = '\0';
        return SLORA_OK;
    }

    /* registered all the same (the catalog holds it now): the files
     * changed since the check, or memory is short; its first request
     * reads them again and answers what they lack */
    (void) slora_err_prefix(err, "not resident");

    return SLORA_OK;
}


void
slora_engine_abandon_registration(slora_engine_t *e, uint64_t owner)
{
    slora_catalog_runtime_abandon(e->catalog, owner);
    slora_engine_registration_end(e, owner);
}


void
slora_engine_registration_end(slora_engine_t *e, uint64_t owner)
{
    slora_engine_reading_t  *rd = &e->reading;

    if (rd->state == SLORA_READING_NONE || rd->owner != owner) {
        return;
    }

    if (rd->state == SLORA_READING_OUT) {
        rd->orphan = 1;             /* dropped when the read ends */
        return;
    }

    slora_engine_reading_clear(e);
}


int
slora_engine_deregister_adapter(slora_engine_t *e, const char *name,
    uint64_t owner, slora_err_t *err)
{
    int               rc;
    slora_adapter_t  *a;

    rc = slora_catalog_runtime_drop(e->catalog, name, owner, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    a = slora_adapters_find(e->adapters, name);
    if (a != NULL) {
        slora_engine_drop_copies(e, a);
    }

    return SLORA_OK;
}


int32_t
slora_engine_adapters(slora_engine_t *e, const char ***names)
{
    int32_t                    i, n;
    const char               **list;
    slora_catalog_adapter_t  **cl;

    n = slora_catalog_adapters(e->catalog, &cl);

    list = malloc((size_t) (n > 0 ? n : 1) * sizeof(const char *));
    if (list == NULL) {
        *names = e->names;
        return 0;
    }

    for (i = 0; i < n; i++) {
        list[i] = cl[i]->name;
    }

    free(e->names);
    e->names = list;
    *names = list;

    return n;
}


int32_t
slora_engine_check_files(slora_engine_t *e, const char **name)
{
    int32_t           i, n, looked, rewritten;
    slora_adapter_t  *a;

    *name = NULL;
    rewritten = 0;

    /* files rewritten inside a folder leave its mtime as it was: those
     * of the adapters with copies are looked at, a share a call in turn
     * (two stat()s each, some 7 us); Redis's entries change by version */
    n = e->redis ? 0 : slora_adapters_count(e->adapters);
    looked = 0;

    for (i = 0; i < n && looked < SLORA_ENGINE_FILES_CHECKS; i++) {
        if (e->files_next >= n) {
            e->files_next = 0;
        }

        a = slora_adapters_get(e->adapters, e->files_next++);

        if (slora_adapter_tier(a) == SLORA_TIER_DISK) {
            continue;
        }

        looked++;

        if (slora_adapters_check_files(e->adapters, a)) {
            rewritten++;
            *name = slora_adapter_name(a);
        }
    }

    return rewritten;
}


int
slora_engine_refresh_adapters(slora_engine_t *e, slora_err_t *err)
{
    int                       rc;
    int32_t                   i, n;
    slora_err_t               one;
    slora_adapter_t          *a;
    slora_catalog_adapter_t  *ca;

    rc = slora_catalog_refresh(e->catalog, err);

    if (rc != 1) {
        return rc;
    }

    /* an adapter whose folder is gone has a source no more */
    n = slora_adapters_count(e->adapters);

    for (i = 0; i < n; i++) {
        a = slora_adapters_get(e->adapters, i);

        if (slora_adapter_tier(a) != SLORA_TIER_DISK
            && slora_catalog_adapter(e->catalog, slora_adapter_name(a), &ca,
                                     &one)
               == SLORA_DECLINED)
        {
            slora_engine_drop_copies(e, a);
        }
    }

    return 1;
}


/* An adapter the catalog no longer holds: its copies leave host memory
 * now, and the pool now or, where requests still hold it, as the last
 * one ends (slora_adapters_set_source). */
static void
slora_engine_drop_copies(slora_engine_t *e, slora_adapter_t *a)
{
    slora_err_t  one;

    if (slora_adapter_tier(a) != SLORA_TIER_DISK) {
        (void) slora_adapters_set_source(e->adapters, a,
                                         slora_adapter_dir(a), NULL,
                                         "removed", &one);
    }
}


int
slora_engine_tenant(slora_engine_t *e, const char *name,
    const slora_catalog_tenant_t **t, slora_err_t *err)
{
    int                      rc;
    slora_catalog_tenant_t  *found;

    if (!e->redis) {
        return slora_err_set(err, SLORA_ERROR, "tenant %.*s: the catalog "
                             "is the adapter directory, which has no "
                             "tenants", slora_utf8_cut(name, 64), name);
    }

    if (!slora_catalog_valid_name(name)) {
        return slora_err_set(err, SLORA_DECLINED, "unknown tenant "
                             "\"%.*s\" (not a valid name)",
                             slora_utf8_cut(name, 64), name);
    }

    rc = slora_catalog_tenant(e->catalog, name, &found, err);
    if (rc == SLORA_OK) {
        *t = found;
    }

    return rc;
}


int
slora_engine_adapter_load(slora_engine_t *e, const char *name,
    slora_err_t *err)
{
    int               rc;
    slora_adapter_t  *a;

    rc = slora_engine_get_adapter(e, name, 0, &a, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    rc = slora_adapter_acquire(e->adapters, a, err);
    if (rc == SLORA_OK) {
        slora_adapter_release(e->adapters, a);
    }

    return rc;
}


int
slora_engine_adapter_unload(slora_engine_t *e, const char *name,
    slora_err_t *err)
{
    int               rc;
    slora_adapter_t  *a;

    rc = slora_engine_get_adapter(e, name, 0, &a, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    return slora_adapters_unload(e->adapters, a, err);
}


int
slora_engine_adapter_pin(slora_engine_t *e, const char *name,
    slora_err_t *err)
{
    int               rc;
    slora_adapter_t  *a;

    rc = slora_engine_get_adapter(e, name, 0, &a, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    return slora_adapter_pin(e->adapters, a, err);
}


int
slora_engine_adapter_unpin(slora_engine_t *e, const char *name,
    slora_err_t *err)
{
    int32_t           i;
    slora_adapter_t  *a;

    a = slora_adapters_find(e->adapters, name);
    if (a == NULL || slora_adapter_unpin(e->adapters, a) != SLORA_OK) {
        return slora_err_set(err, SLORA_DECLINED, "adapter \"%.*s\" is "
                             "not pinned", slora_utf8_cut(name, 64), name);
    }

    for (i = 0; i < e->n_hint_pins; i++) {
        if (e->hint_pins[i] == a) {
            e->hint_pins[i] = e->hint_pins[--e->n_hint_pins];
            break;
        }
    }

    /* the room it leaves may take a hint's pin the cap refused */
    e->hints_pending = 1;

    return SLORA_OK;
}


int32_t
slora_engine_adapter_list(slora_engine_t *e, const char *after,
    int32_t max, const slora_adapter_info_t **list)
{
    int32_t                    i, n, lo, hi, mid;
    slora_adapter_t           *a;
    slora_adapter_info_t      *info, *grown;
    slora_catalog_adapter_t  **cl;
    static const char         *tiers[] = { "disk", "host", "pool" };

    n = slora_catalog_adapters(e->catalog, &cl);

    /* the first name past after, by bisection over the sorted list */
    lo = 0;
    hi = n;

    while (after != NULL && after[0] != '\0' && lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (strcmp(cl[mid]->name, after) <= 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    cl += lo;
    n -= lo;
    n = max > 0 && max < n ? max : n;

    grown = realloc(e->infos, (size_t) (n > 0 ? n : 1)
                              * sizeof(slora_adapter_info_t));
    if (grown == NULL) {
        *list = e->infos;
        return 0;
    }

    e->infos = grown;

    for (i = 0; i < n; i++) {
        info = &e->infos[i];
        a = cl[i]->data;

        memset(info, 0, sizeof(*info));
        info->name = cl[i]->name;
        info->path = cl[i]->path;
        info->tier = tiers[a != NULL ? slora_adapter_tier(a)
                                     : SLORA_TIER_DISK];
        info->rank = cl[i]->rank;

        if (a != NULL) {
            info->pinned = slora_adapter_pinned(a);
            info->refs = slora_adapter_refs(a);
            info->host_bytes = slora_adapter_host_bytes(a);
            info->pool_pages = slora_adapter_n_pages(a);
            info->rank = slora_adapter_rank(a) > 0 ? slora_adapter_rank(a)
                                                   : info->rank;
        }
    }

    *list = e->infos;

    return n;
}


/*
 * The jobs are chosen first, in the catalog's order, by the size their
 * plan gives (config and plan only, no weights), so that no more is read
 * than the host tier holds (an adapter whose config is refused is
 * skipped, its error kept); then n threads (this one among them) claim
 * them one by one, each reading into its own job's image, and this
 * thread installs them once all have returned. Nothing here runs while
 * the threads do, so the adapters' names and folders they read stay put.
 */
int
slora_engine_preload(slora_engine_t *e, int32_t *loaded, slora_err_t *err)
{
    int                            rc;
    int32_t                        i, n, nth, started;
    size_t                         room, bytes;
    pthread_t                     *threads;
    slora_err_t                    one;
    slora_adapter_t               *a;
    slora_adapters_stats_t         as;
    slora_engine_preload_t         pl;
    slora_catalog_adapter_t      **cl;
    slora_engine_preload_job_t    *j;

    *loaded = 0;
    rc = SLORA_OK;

    n = slora_catalog_adapters(e->catalog, &cl);

    pl.cfg = &e->model->cfg;
    pl.page_elems = slora_pool_page_elems(e->pool);
    pl.slices = slora_pool_slices(e->pool);
    pl.mem = &e->backend->host_mem;
    pl.n_jobs = 0;
    atomic_init(&pl.next, 0);
    pl.jobs = calloc((size_t) (n > 0 ? n : 1),
                     sizeof(slora_engine_preload_job_t));
    if (pl.jobs == NULL) {
        return slora_err_set(err, SLORA_ERROR, "preload: out of memory");
    }

    slora_adapters_stats(e->adapters, &as);
    room = as.host_budget > as.host_bytes ? as.host_budget - as.host_bytes
                                          : 0;

    for (i = 0; i < n; i++) {
        a = cl[i]->data;

        if (a == NULL
            && slora_engine_get_adapter(e, cl[i]->name, 0, &a, &one)
               != SLORA_OK)
        {
            continue;
        }

        if (slora_adapter_in_host(a)) {
            continue;
        }

        if (slora_engine_preload_size(e, a, &bytes, &one) != SLORA_OK) {
            if (rc == SLORA_OK) {
                *err = one;
                rc = SLORA_ERROR;
            }
            continue;
        }

        if (bytes > room) {
            continue;
        }

        room -= bytes;
        j = &pl.jobs[pl.n_jobs++];
        j->a = a;
        j->gen = slora_adapter_gen(a);
    }

    nth = e->conf.n_threads;
    nth = nth < SLORA_ENGINE_PRELOAD_THREADS ? nth
                                             : SLORA_ENGINE_PRELOAD_THREADS;
    nth = nth < pl.n_jobs ? nth : pl.n_jobs;
    started = 0;
    threads = NULL;

    if (nth > 1) {
        threads = malloc((size_t) (nth - 1) * sizeof(pthread_t));
    }

    /* a thread that cannot start leaves its share to the others */
    while (threads != NULL && started < nth - 1
           && pthread_create(&threads[started], NULL,
                             slora_engine_preload_main, &pl)
              == 0)
    {
        started++;
    }

    slora_engine_preload_main(&pl);

    for (i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
    }

    free(threads);

    for (i = 0; i < pl.n_jobs; i++) {
        j = &pl.jobs[i];

        if (j->rc != SLORA_OK) {
            if (rc == SLORA_OK) {
                *err = j->err;
                rc = SLORA_ERROR;
            }
            continue;
        }

        if (slora_adapters_install(e->adapters, j->a, j->gen, &j->img)
            != SLORA_OK)
        {
            slora_adapter_image_free(&j->img);
        }
    }

    free(pl.jobs);

    n = slora_catalog_adapters(e->catalog, &cl);

    for (i = 0; i < n; i++) {
        a = cl[i]->data;
        *loaded += a != NULL && slora_adapter_in_host(a);
    }

    return rc;
}


/* The bytes a's host image takes, from its config and plan. */
static int
slora_engine_preload_size(slora_engine_t *e, slora_adapter_t *a,
    size_t *bytes, slora_err_t *err)
{
    slora_adapter_conf_t   conf;
    slora_adapter_plan_t   plan;

    *bytes = 0;

    if (slora_adapter_read_config(slora_adapter_dir(a), &e->model->cfg,
                                  &conf, err)
        != SLORA_OK
        || slora_adapter_plan(&e->model->cfg, &conf,
                              slora_pool_page_elems(e->pool),
                              slora_pool_slices(e->pool), &plan, err)
           != SLORA_OK)
    {
        return slora_err_prefix(err, "adapter %s", slora_adapter_name(a));
    }

    *bytes = (size_t) e->model->cfg.n_layers * (size_t) plan.n_pages
             * (size_t) plan.page_elems
             * (size_t) slora_host_elem_size(&e->backend->host_mem);
    slora_adapter_plan_free(&plan);

    return SLORA_OK;
}


/* A preload thread: reads the jobs it claims until none is left. */
static void *
slora_engine_preload_main(void *arg)
{
    int32_t                        i;
    slora_adapter_t               *a;
    slora_engine_preload_t        *pl = arg;
    slora_engine_preload_job_t    *j;

    for ( ;; ) {
        i = atomic_fetch_add_explicit(&pl->next, 1, memory_order_relaxed);
        if (i >= pl->n_jobs) {
            return NULL;
        }

        j = &pl->jobs[i];
        a = j->a;
        j->rc = slora_adapter_image_load(pl->cfg, pl->page_elems,
                                         pl->slices, pl->mem,
                                         slora_adapter_name(a),
                                         slora_adapter_dir(a),
                                         slora_adapter_sha256(a), &j->img,
                                         &j->err);
    }
}


/* Registers every adapter of the directory source, sorted by name. */
int
slora_engine_catalog(slora_engine_t *e, slora_err_t *err)
{
    int32_t                    i, n;
    slora_adapter_t           *a;
    slora_catalog_adapter_t  **cl;

    n = slora_catalog_adapters(e->catalog, &cl);

    for (i = 0; i < n; i++) {
        /* its version too (the folder's), or the first request's look
         * at the catalog would take it for a new one and drop what
         * preload read */
        if (slora_adapters_add(e->adapters, cl[i]->name, cl[i]->path, &a,
                               err)
            != SLORA_OK
            || slora_adapters_set_source(e->adapters, a, cl[i]->path,
                                         cl[i]->sha256, cl[i]->version, err)
               < 0)
        {
            return SLORA_ERROR;
        }
        cl[i]->data = a;
    }

    return SLORA_OK;
}


/*
 * The adapter set's entry for name, registered on first sight and kept
 * pointing at the catalog's current folder. Statuses as the catalog's
 * lookups, a refused entry reported as SLORA_DECLINED. use: a request's
 * first lookup, counted toward slora:popular (the engine's own lookups,
 * hints, admin and retries while a request waits, are not: the popular
 * list would feed itself).
 */
static int
slora_engine_get_adapter(slora_engine_t *e, const char *name, int use,
    slora_adapter_t **out, slora_err_t *err)
{
    int                       rc;
    slora_adapter_t          *a;
    slora_catalog_adapter_t  *ca;

    rc = slora_catalog_adapter(e->catalog, name, &ca, err);

    if (rc == SLORA_ERROR) {
        err->code = SLORA_DECLINED;
        return SLORA_DECLINED;
    }

    if (rc != SLORA_OK) {
        return rc;
    }

    a = ca->data;

    if (a == NULL) {
        a = slora_adapters_find(e->adapters, name);
        if (a == NULL
            && slora_adapters_add(e->adapters, name, ca->path, &a, err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }
        ca->data = a;
    }

    if (slora_adapters_set_source(e->adapters, a, ca->path, ca->sha256,
                                  ca->version, err)
        < 0)
    {
        return SLORA_ERROR;
    }

    if (use) {
        slora_catalog_hit(e->catalog, ca);
    }

    *out = a;

    return SLORA_OK;
}


/* Tenant, then adapter; SLORA_AGAIN while the catalog reads either. */
int
slora_engine_resolve(slora_engine_t *e, slora_engine_req_t *q,
    slora_err_t *err)
{
    int                      rc;
    int32_t                  max_tokens, retry_ms;
    const char              *name;
    slora_adapter_t         *a;
    slora_catalog_tenant_t  *t;

    name = q->adapter;
    max_tokens = q->max_tokens;
    q->r.priority = 0;
    q->r.ttft_slo_ms = 0;

    if (q->tenant != NULL && e->redis) {
        rc = slora_catalog_tenant(e->catalog, q->tenant, &t, err);

        if (rc == SLORA_AGAIN || rc == SLORA_UNAVAILABLE) {
            return rc;
        }

        if (rc != SLORA_OK) {
            err->code = SLORA_FORBIDDEN;
            return SLORA_FORBIDDEN;
        }

        if (name == NULL || strcmp(name, "default") == 0) {
            name = t->default_adapter;

        } else if (strcmp(name, "base") == 0) {
            if (t->default_adapter != NULL) {
                return slora_err_set(err, SLORA_FORBIDDEN, "the base model "
                                     "is not allowed for tenant %s (its "
                                     "models are its adapters)", q->tenant);
            }

            name = NULL;

        } else if (!slora_catalog_tenant_allows(t, name)) {
            return slora_err_set(err, SLORA_FORBIDDEN, "adapter %s is not "
                                 "allowed for tenant %s", name, q->tenant);
        }

        /* once a request, when it is first let through */
        if (!q->rated && !q->rate_free && t->rate > 0
            && !slora_rate_take(&t->bucket, t->rate, slora_now_ns(),
                                &retry_ms))
        {
            slora_err_set(err, SLORA_LIMITED, "tenant %s is over its rate "
                          "(%g requests/s)", q->tenant, t->rate);
            err->retry_ms = retry_ms;
            e->rate_limited++;
            return SLORA_LIMITED;
        }

        q->rated = 1;

        if (t->max_tokens > 0 && max_tokens > t->max_tokens) {
            max_tokens = t->max_tokens;
        }

        q->r.priority = t->priority;
        q->r.ttft_slo_ms = t->ttft_slo_ms;

    } else if (name != NULL
               && (strcmp(name, "default") == 0 || strcmp(name, "base") == 0))
    {
        name = NULL;
    }

    q->r.cap = q->r.n_prompt + max_tokens;
    q->r.adapter = NULL;

    if (name == NULL) {
        return SLORA_OK;
    }

    rc = slora_engine_get_adapter(e, name, !q->used, &a, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    q->used = 1;
    q->r.adapter = a;

    return slora_engine_wait_load(e, q) ? SLORA_AGAIN : SLORA_OK;
}


/*
 * Whether q should wait for the prefetch threads to read its adapter
 * before it goes to the scheduler: while other requests run (they would
 * wait for a read on this thread), or, with nothing running, when there
 * are several loader threads (a burst of requests for cold adapters is
 * read in parallel rather than one after another at admission); and for
 * one read at most (a read that failed is retried by the admission,
 * which reports the error). While the loaders have SLORA_PREFETCH_MAX
 * reads out, q waits for a place among them: read at admission instead,
 * each such adapter would stop every running request's step for its
 * read. With nothing running and one loader, a read already out is
 * settled (withdrawn if queued, waited for if running) and its image
 * installed, so that the folder is not read twice.
 */
int
slora_engine_wait_load(slora_engine_t *e, slora_engine_req_t *q)
{
    int               rc;
    slora_adapter_t  *a;

    a = q->r.adapter;
    q->loading = 0;

    if (e->prefetch == NULL || a == NULL
        || slora_adapter_tier(a) != SLORA_TIER_DISK)
    {
        return 0;
    }

    if (slora_sched_running(e->sched) == 0
        && slora_prefetch_threads(e->prefetch) < 2)
    {
        if (slora_prefetch_settle(e->prefetch, a)) {
            slora_engine_prefetch_install(e);
        }
        return 0;
    }

    if (!slora_prefetch_pending(e->prefetch, a)) {
        if (q->load_asked) {
            return 0;
        }

        rc = slora_prefetch_submit(e->prefetch, a, slora_adapter_gen(a),
                                   slora_adapter_name(a),
                                   slora_adapter_dir(a),
                                   slora_adapter_sha256(a));

        if (rc == SLORA_BUSY) {
            q->loading = 1;         /* asked again at the next step */
            return 1;
        }

        if (rc != SLORA_OK) {
            return 0;
        }
    }

    q->load_asked = 1;
    q->loading = 1;

    return 1;
}


/* Retries the resolving requests; returns 1 if any left the list. */
int
slora_engine_resolve_all(slora_engine_t *e, slora_event_cb cb, void *data)
{
    int                  rc, did;
    slora_err_t          err;
    slora_engine_req_t  *q, **pp;

    did = 0;
    pp = &e->resolving;

    while ((q = *pp) != NULL) {
        rc = slora_engine_resolve(e, q, &err);

        if (rc == SLORA_AGAIN) {
            pp = &q->next_resolving;
            continue;
        }

        *pp = q->next_resolving;
        e->n_resolving--;
        did = 1;

        if (rc == SLORA_OK) {
            rc = slora_sched_submit(e->sched, &q->r, &err);
        }

        if (rc == SLORA_LIMITED) {
            slora_engine_refuse(cb, data, q->r.id, &err);
            slora_engine_req_free(e, q);

        } else if (rc != SLORA_OK) {
            slora_engine_emit(cb, data, SLORA_EV_ERROR, q->r.id, -1,
                              SLORA_FINISH_NONE, err.msg,
                              slora_engine_errcode(rc));
            slora_engine_req_free(e, q);
        }
    }

    e->resolving_tail = pp;

    return did;
}


int
slora_engine_reap_resolving(slora_engine_t *e, slora_event_cb cb,
    void *data)
{
    int32_t              n;
    slora_engine_req_t  *q, **pp;

    n = 0;
    pp = &e->resolving;

    while ((q = *pp) != NULL) {
        if (!q->r.cancelled) {
            pp = &q->next_resolving;
            continue;
        }

        *pp = q->next_resolving;
        e->n_resolving--;
        n++;

        slora_engine_emit(cb, data, SLORA_EV_DONE, q->r.id, -1,
                          SLORA_FINISH_CANCEL, NULL, SLORA_ERRCODE_NONE);
        slora_engine_req_free(e, q);
    }

    e->resolving_tail = pp;

    return n;
}


/*
 * Uploads the adapters of the next waiting requests that are in host
 * memory into free pool pages, after the step's own admissions and
 * before its forward, which does not wait for them: the copies run while
 * the step computes, and the admission of those requests finds their
 * adapters resident. A sixteenth of the pool stays free for the KV
 * cache; what the cache needs later evicts them like any idle adapter.
 * An upload that fails is left to the request's own admission to report.
 */
void
slora_engine_warm(slora_engine_t *e)
{
    int32_t       n, reserve;
    slora_err_t   err;
    slora_req_t  *r;

    reserve = slora_pool_n_pages(e->pool) / SLORA_ENGINE_WARM_RESERVE;
    n = 0;

    for (r = slora_sched_waiting_head(e->sched);
         r != NULL && n < SLORA_ENGINE_WARM;
         r = r->next, n++)
    {
        if (r->adapter != NULL && !r->pinned) {
            (void) slora_adapters_warm(e->adapters, r->adapter, reserve,
                                       &err);
        }
    }
}


/*
 * Installs what the prefetch thread read, then asks it for the adapters
 * of the next waiting requests that are on disk only. A request is asked
 * for from its second step in the queue: one the scheduler admits at
 * once has its adapter read by the admission, and reading it on the
 * prefetch thread as well would only take a core from the step.
 */
void
slora_engine_prefetch(slora_engine_t *e)
{
    int32_t              n;
    slora_req_t         *r;
    slora_engine_req_t  *q;

    if (e->prefetch == NULL) {
        return;
    }

    slora_engine_prefetch_install(e);

    n = 0;

    for (r = slora_sched_waiting_head(e->sched);
         r != NULL && n < SLORA_ENGINE_LOOKAHEAD;
         r = r->next, n++)
    {
        q = (slora_engine_req_t *) r;

        if (r->adapter != NULL && q->seen) {
            slora_engine_prefetch_one(e, r->adapter);
        }

        q->seen = 1;
    }
}


/* Installs the images the prefetch thread has read. A failed read is
 * dropped: the request's own load reports the error. */
void
slora_engine_prefetch_install(slora_engine_t *e)
{
    slora_prefetch_done_t  done;

    if (e->prefetch == NULL) {
        return;
    }

    while (slora_prefetch_take(e->prefetch, &done)) {
        if (done.key == &e->reading) {
            slora_engine_reading_done(e, &done);
            continue;
        }

        if (done.status != SLORA_OK
            || slora_adapters_install(e->adapters, done.key, done.gen,
                                      &done.img)
               != SLORA_OK)
        {
            slora_adapter_image_free(&done.img);
        }
    }
}


static void
slora_engine_prefetch_one(slora_engine_t *e, slora_adapter_t *a)
{
    if (e->prefetch == NULL || slora_adapter_tier(a) != SLORA_TIER_DISK) {
        return;
    }

    (void) slora_prefetch_submit(e->prefetch, a, slora_adapter_gen(a),
                                 slora_adapter_name(a), slora_adapter_dir(a),
                                 slora_adapter_sha256(a));
}


/*
 * The catalog's hints: adapters in slora:pinned are pinned (read here if
 * need be: hints change rarely), those no longer there are unpinned; the
 * most popular are prefetched while the host tier is under 3/4 full.
 */
void
slora_engine_hints(slora_engine_t *e)
{
    int                            rc, keep;
    int32_t                        i, j;
    slora_err_t                    err;
    slora_adapter_t               *a;
    slora_adapter_t              **grown;
    slora_adapters_stats_t         as;
    const slora_catalog_hints_t   *h;

    h = slora_catalog_hints(e->catalog);

    if (h->gen == e->hints_gen && !e->hints_pending) {
        return;
    }

    e->hints_gen = h->gen;
    e->hints_pending = 0;

    for (i = 0; i < e->n_hint_pins; /* void */ ) {
        keep = 0;
        for (j = 0; j < h->n_pinned; j++) {
            keep |= strcmp(h->pinned[j],
                           slora_adapter_name(e->hint_pins[i])) == 0;
        }

        if (keep) {
            i++;
            continue;
        }

        slora_adapter_unpin(e->adapters, e->hint_pins[i]);
        e->hint_pins[i] = e->hint_pins[--e->n_hint_pins];
    }

    for (j = 0; j < h->n_pinned; j++) {
        rc = slora_engine_get_adapter(e, h->pinned[j], 0, &a, &err);

        if (rc == SLORA_AGAIN) {
            e->hints_pending = 1;
            continue;
        }

        if (rc != SLORA_OK || slora_adapter_pinned(a)) {
            continue;
        }

        /* over the pins' cap (or no room now): tried again after an
         * unpin or a change of the hints */
        if (slora_adapter_pin(e->adapters, a, &err) != SLORA_OK) {
            continue;
        }

        /* listed already: its pin went with a change of its source */
        for (i = 0; i < e->n_hint_pins && e->hint_pins[i] != a; i++) {
            /* void */
        }

        if (i < e->n_hint_pins) {
            continue;
        }

        grown = realloc(e->hint_pins, (size_t) (e->n_hint_pins + 1)
                                      * sizeof(slora_adapter_t *));
        if (grown == NULL) {
            slora_adapter_unpin(e->adapters, a);
            continue;
        }

        e->hint_pins = grown;
        e->hint_pins[e->n_hint_pins++] = a;
    }

    for (j = 0; j < h->n_popular; j++) {
        slora_adapters_stats(e->adapters, &as);
        if (as.host_bytes >= as.host_budget / 4 * 3) {
            break;
        }

        rc = slora_engine_get_adapter(e, h->popular[j], 0, &a, &err);

        if (rc == SLORA_AGAIN) {
            e->hints_pending = 1;

        } else if (rc == SLORA_OK) {
            slora_engine_prefetch_one(e, a);
        }
    }
}
