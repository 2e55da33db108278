/*
 * slora_adapter.c: the LoRA adapters' page plan and the two tiers they
 * live in: page images in host memory (f32, or bf16 where the backend's
 * pool is bf16: half the bytes; LRU under a byte budget) and
 * pages of the unified pool (pinned by running requests, LRU among the
 * idle). Reading a PEFT folder into a host image is slora_adapter_peft.c.
 *
 * The one idea: rows are the unit. A is stored as its rank rows [rank,
 * in], B as the rank rows of B^T [rank, out]; every row is placed whole in
 * a page (widths grouped, widest first, first fit), the same plan for
 * every layer, and the host copy is the exact page images, so an upload
 * is a copy of whole pages and the kernels find each row by one offset.
 * Under tensor parallelism a page is slice-major (slora_pool.h): rows are
 * written into it only by slora_adapter_row_put(), and the backend
 * scatters the pages' parts to the GPUs knowing nothing of rows.
 *
 * Design. Every registered adapter is in one of four states:
 *
 *     registered   nothing read                host == NULL, pages == NULL
 *     host         page images in host memory  host != NULL, pages == NULL
 *     pool, idle   in pool pages, refs == 0    on the idle list
 *     pool, pinned in pool pages, refs > 0     on no list
 *
 * A pool-resident adapter may have dropped its host copy (host LRU); it
 * is read from disk again if it is ever evicted and wanted back. An
 * adapter in host memory may go to the pool idle, ahead of need
 * (slora_adapters_warm), with an upload the backend may still be running
 * (slora_backend_t.fence): the first user of those pages, its admission
 * or whoever gets them after an eviction, fences first. An admin
 * pin is one more reference, so a pinned adapter is never idle. A change
 * of source (the catalog moved or rewrote it, or its files were rewritten
 * in place: their stamp, taken before the oldest copy was read, or, with
 * no copy left, before the last one was) bumps gen: copies of the old
 * source are dropped when nobody uses them ("stale" until then), and a
 * host image read off-thread for an older gen is refused at install.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slora_adapter.h"
#include "slora_convert.h"
#include "slora_names.h"


/* How long a rewritten file goes unchanged before it is read again. */
#define SLORA_ADAPTER_SETTLE_NS  1000000000LL


typedef struct {
    slora_adapter_t     *prev;
    slora_adapter_t     *next;
} slora_adapter_link_t;


typedef struct {
    slora_adapter_t     *head;          /* least recently used */
    slora_adapter_t     *tail;
} slora_adapter_list_t;


struct slora_adapter_s {
    char                   *name;
    char                   *dir;
    char                   *sha256;     /* expected, or NULL */
    char                   *version;    /* the catalog's, or NULL */
    uint64_t                gen;
    int                     stale;      /* source changed while pinned */
    int                     admin_pin;
    int32_t                 pin_pages;  /* what the pin counts */
    int                     planned;
    slora_adapter_conf_t    conf;
    slora_adapter_plan_t    plan;
    slora_adapter_stamp_t   stamp;      /* the files of the copies */

    void                   *host;       /* [n_layers][n_pages][page_elems]
                                           values of host_elem bytes */
    int32_t                 host_elem;
    const slora_host_mem_t *host_mem;   /* where host came from */
    size_t                  host_bytes;
    slora_adapter_link_t    host_link;

    int32_t                *pages;      /* [plan.n_pages] or NULL */
    int64_t                *row_off;    /* [plan.n_rows] physical offsets */
    slora_lora_t            lora;
    int32_t                 refs;
    slora_adapter_link_t    idle_link;
    int                     on_idle;
    int                     unfenced;   /* uploaded ahead, no fence yet */
};


struct slora_adapters_s {
    slora_model_config_t    cfg;
    slora_pool_t           *pool;
    slora_backend_t        *backend;
    size_t                  host_budget;
    size_t                  host_bytes;

    slora_adapter_t       **all;
    int32_t                 n;
    int32_t                 cap;
    slora_names_t           by_name;        /* name -> index in all,
                                               rebuilt twice as large
                                               when full */

    slora_adapter_list_t    host_lru;
    slora_adapter_list_t    idle_lru;

    int32_t                 in_pool;
    int64_t                 pool_elems;     /* of the in_pool's pages */
    int64_t                 pool_used_elems;
    int32_t                 in_host;
    uint64_t                loads;
    uint64_t                uploads;
    uint64_t                evictions;
    uint64_t                hits;
    uint64_t                host_hits;
    uint64_t                host_misses;
    uint64_t                host_evictions;
    uint64_t                prefetched;
    uint64_t                warmed;
    uint64_t                load_errors;
    int32_t                 pinned;
    int32_t                 pin_pages;      /* the pinned adapters' */
    int32_t                 pin_cap;        /* pin_pages at most */
};


static int slora_adapter_load_host(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err);
static void slora_adapter_take_image(slora_adapters_t *set,
    slora_adapter_t *a, slora_adapter_image_t *img);
static void slora_adapter_new_source(slora_adapters_t *set,
    slora_adapter_t *a);
static int slora_adapter_pin_full(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err);
static int slora_adapter_same_layout(const slora_adapter_conf_t *c1,
    const slora_adapter_plan_t *p1, const slora_adapter_conf_t *c2,
    const slora_adapter_plan_t *p2);
static int slora_adapter_str_differ(const char *a, const char *b);
static int slora_adapter_dup(char **dst, const char *src);
static int slora_adapter_place(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err);
static int slora_adapters_fence(slora_adapters_t *set, slora_err_t *err);
static int slora_adapters_index(slora_adapters_t *set, slora_adapter_t *a);
static int slora_adapter_upload(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err);
static void slora_adapter_evict_one(slora_adapters_t *set,
    slora_adapter_t *a);
static void slora_adapter_drop_host(slora_adapters_t *set,
    slora_adapter_t *a);
static void slora_adapter_trim_host(slora_adapters_t *set,
    slora_adapter_t *keep);
static void slora_adapter_list_push(slora_adapter_list_t *l,
    slora_adapter_t *a, size_t link);
static void slora_adapter_list_remove(slora_adapter_list_t *l,
    slora_adapter_t *a, size_t link);
static int slora_adapter_valid_name(const char *name);


#define slora_link(a, off)  ((slora_adapter_link_t *) ((char *) (a) + (off)))

#define SLORA_HOST_LINK  offsetof(slora_adapter_t, host_link)
#define SLORA_IDLE_LINK  offsetof(slora_adapter_t, idle_link)


int
slora_adapter_plan(const slora_model_config_t *cfg,
    const slora_adapter_conf_t *conf, int64_t page_elems, int32_t slices,
    slora_adapter_plan_t *plan, slora_err_t *err)
{
    int       p, side;
    int32_t   i, r, n_rows, n_pages, cap_pages, width, next_width, pg;
    int64_t  *fill, *grown;

    memset(plan, 0, sizeof(*plan));
    plan->page_elems = page_elems;
    plan->slices = slices;

    if (slices < 1) {
        return slora_err_set(err, SLORA_ERROR, "adapter plan: %d "
                             "tensor-parallel slices, at least 1 wanted",
                             slices);
    }

    if (page_elems < 1 || page_elems % slices != 0) {
        return slora_err_set(err, SLORA_ERROR, "adapter plan: a page of "
                             "%lld elements does not split in %d "
                             "tensor-parallel slices",
                             (long long) page_elems, slices);
    }

    n_rows = 0;
    for (p = 0; p < SLORA_PROJ_N; p++) {
        plan->first_row[p][0] = -1;
        plan->first_row[p][1] = -1;

        if (!(conf->proj_mask & (1u << p))) {
            continue;
        }

        if (slora_proj_in_dim(cfg, p) > page_elems
            || slora_proj_out_dim(cfg, p) > page_elems)
        {
            return slora_err_set(err, SLORA_ERROR, "adapter plan: %s rows "
                                 "are wider than a page of %lld",
                                 slora_proj_name(p), (long long) page_elems);
        }

        if (slora_proj_in_dim(cfg, p) % slices != 0
            || slora_proj_out_dim(cfg, p) % slices != 0)
        {
            return slora_err_set(err, SLORA_ERROR, "adapter plan: %s rows "
                                 "(%d in, %d out) do not split in %d "
                                 "tensor-parallel slices",
                                 slora_proj_name(p),
                                 slora_proj_in_dim(cfg, p),
                                 slora_proj_out_dim(cfg, p), slices);
        }

        plan->first_row[p][0] = n_rows;
        plan->first_row[p][1] = n_rows + conf->rank;
        n_rows += 2 * conf->rank;
    }

    if (n_rows == 0) {
        return slora_err_set(err, SLORA_ERROR, "adapter plan: no target");
    }

    plan->n_rows = n_rows;
    plan->row_off = malloc((size_t) n_rows * sizeof(int64_t));
    plan->row_width = malloc((size_t) n_rows * sizeof(int32_t));
    cap_pages = 16;
    fill = malloc((size_t) cap_pages * sizeof(int64_t));

    if (plan->row_off == NULL || plan->row_width == NULL || fill == NULL) {
        free(fill);
        slora_adapter_plan_free(plan);
        return slora_err_set(err, SLORA_ERROR, "adapter plan: no memory");
    }

    for (p = 0; p < SLORA_PROJ_N; p++) {
        for (side = 0; side < 2; side++) {
            if (plan->first_row[p][side] < 0) {
                continue;
            }
            width = side == 0 ? slora_proj_in_dim(cfg, p)
                              : slora_proj_out_dim(cfg, p);
            for (r = 0; r < conf->rank; r++) {
                plan->row_width[plan->first_row[p][side] + r] = width;
            }
        }
    }

    /* widest group first; within a group, rows in order; first fit */
    n_pages = 0;
    width = INT32_MAX;

    for ( ;; ) {
        next_width = 0;
        for (i = 0; i < n_rows; i++) {
            if (plan->row_width[i] < width && plan->row_width[i] > next_width) {
                next_width = plan->row_width[i];
            }
        }

        if (next_width == 0) {
            break;
        }

        width = next_width;

        for (i = 0; i < n_rows; i++) {
            if (plan->row_width[i] != width) {
                continue;
            }

            for (pg = 0; pg < n_pages; pg++) {
                if (page_elems - fill[pg] >= width) {
                    break;
                }
            }

            if (pg == n_pages) {
                if (n_pages == cap_pages) {
                    cap_pages *= 2;
                    grown = realloc(fill, (size_t) cap_pages * sizeof(int64_t));
                    if (grown == NULL) {
                        free(fill);
                        slora_adapter_plan_free(plan);
                        return slora_err_set(err, SLORA_ERROR,
                                             "adapter plan: no memory");
                    }
                    fill = grown;
                }
                fill[n_pages++] = 0;
            }

            plan->row_off[i] = (int64_t) pg * page_elems + fill[pg];
            fill[pg] += width;
            plan->used_elems += width;
        }
    }

    free(fill);
    plan->n_pages = n_pages;

    return SLORA_OK;
}


void
slora_adapter_row_put(const slora_adapter_plan_t *plan, void *layer,
    int32_t elem_size, int32_t row, const float *src)
{
    int32_t   s, n, part_w;
    int64_t   q, start, part, at;

    slora_assert(row >= 0 && row < plan->n_rows);

    n = plan->slices;
    part_w = plan->row_width[row] / n;
    part = plan->page_elems / n;
    q = plan->row_off[row] % plan->page_elems;
    start = plan->row_off[row] - q;

    slora_assert(q % n == 0 && part_w * n == plan->row_width[row]);

    for (s = 0; s < n; s++) {
        at = start + s * part + q / n;

        if (elem_size == 2) {
            slora_convert_bf16((uint16_t *) layer + at,
                               src + (int64_t) s * part_w, part_w);

        } else {
            memcpy((float *) layer + at, src + (int64_t) s * part_w,
                   (size_t) part_w * sizeof(float));
        }
    }
}


int
slora_adapter_image_alloc(slora_adapter_image_t *img, int32_t n_layers,
    const slora_host_mem_t *mem)
{
    img->mem = mem;
    img->elem_size = slora_host_elem_size(mem);
    img->bytes = (size_t) n_layers * (size_t) img->plan.n_pages
                 * (size_t) img->plan.page_elems * (size_t) img->elem_size;
    img->host = slora_host_alloc(mem, img->bytes);

    return img->host != NULL ? SLORA_OK : SLORA_ERROR;
}


void *
slora_adapter_image_layer(const slora_adapter_image_t *img, int32_t layer)
{
    return (char *) img->host + (size_t) layer * (size_t) img->plan.n_pages
                                * (size_t) img->plan.page_elems
                                * (size_t) img->elem_size;
}


void
slora_adapter_plan_free(slora_adapter_plan_t *plan)
{
    free(plan->row_off);
    free(plan->row_width);
    plan->row_off = NULL;
    plan->row_width = NULL;
}


slora_adapters_t *
slora_adapters_create(const slora_model_config_t *cfg, slora_pool_t *pool,
    slora_backend_t *backend, size_t host_budget, slora_err_t *err)
{
    slora_adapters_t  *set;

    set = calloc(1, sizeof(slora_adapters_t));
    if (set == NULL) {
        slora_err_set(err, SLORA_ERROR, "adapters: out of memory");
        return NULL;
    }

    set->cfg = *cfg;
    set->pool = pool;
    set->backend = backend;
    set->host_budget = host_budget;
    set->pin_cap = slora_pool_n_pages(pool) / 2;

    if (slora_names_init(&set->by_name, 64) != SLORA_OK) {
        free(set);
        slora_err_set(err, SLORA_ERROR, "adapters: out of memory");
        return NULL;
    }

    return set;
}


void
slora_adapters_free(slora_adapters_t *set)
{
    int32_t           i;
    slora_adapter_t  *a;

    if (set == NULL) {
        return;
    }

    for (i = 0; i < set->n; i++) {
        a = set->all[i];
        slora_host_free(a->host_mem, a->host, a->host_bytes);
        if (a->pages != NULL) {
            slora_pool_release(set->pool, a->plan.n_pages, a->pages);
        }
        free(a->pages);
        free(a->row_off);
        slora_adapter_plan_free(&a->plan);
        free(a->name);
        free(a->dir);
        free(a->sha256);
        free(a->version);
        free(a);
    }

    free(set->all);
    slora_names_free(&set->by_name);
    free(set);
}


int
slora_adapters_add(slora_adapters_t *set, const char *name, const char *dir,
    slora_adapter_t **out, slora_err_t *err)
{
    int32_t            cap;
    slora_adapter_t   *a, **grown;

    if (!slora_adapter_valid_name(name)) {
        return slora_err_set(err, SLORA_ERROR, "adapter name \"%s\" is "
                             "refused (empty, \"..\", \"/\" or a leading "
                             "\".\")", name);
    }

    if (slora_adapters_find(set, name) != NULL) {
        return slora_err_set(err, SLORA_DECLINED, "adapter \"%s\" is "
                             "already registered", name);
    }

    if (set->n == set->cap) {
        cap = set->cap ? set->cap * 2 : 64;
        grown = realloc(set->all, (size_t) cap * sizeof(slora_adapter_t *));
        if (grown == NULL) {
            return slora_err_set(err, SLORA_ERROR, "adapters: no memory");
        }
        set->all = grown;
        set->cap = cap;
    }

    a = calloc(1, sizeof(slora_adapter_t));
    if (a == NULL) {
        return slora_err_set(err, SLORA_ERROR, "adapters: no memory");
    }

    a->name = strdup(name);
    a->dir = strdup(dir);

    if (a->name == NULL || a->dir == NULL) {
        free(a->name);
        free(a->dir);
        free(a);
        return slora_err_set(err, SLORA_ERROR, "adapters: no memory");
    }

    set->all[set->n] = a;

    if (slora_adapters_index(set, a) != SLORA_OK) {
        free(a->name);
        free(a->dir);
        free(a);
        return slora_err_set(err, SLORA_ERROR, "adapters: no memory");
    }

    set->n++;

    if (out != NULL) {
        *out = a;
    }

    return SLORA_OK;
}


/* Adds a, at set->all[set->n], to the name index; a full index is built
 * again twice as large (the names are the adapters' own, which live as
 * long as the set). Thousands of adapters register at start, and each
 * request's adapter is looked up by name: a scan of the names would make
 * the one quadratic and the other linear in the catalog. */
static int
slora_adapters_index(slora_adapters_t *set, slora_adapter_t *a)
{
    int32_t        i;
    slora_names_t  grown;

    if (slora_names_add(&set->by_name, a->name, strlen(a->name), set->n)
        == SLORA_OK)
    {
        return SLORA_OK;
    }

    if (slora_names_init(&grown, 2 * (size_t) (set->n + 1)) != SLORA_OK) {
        return SLORA_ERROR;
    }

    for (i = 0; i <= set->n; i++) {
        if (slora_names_add(&grown, set->all[i]->name,
                            strlen(set->all[i]->name), i)
            != SLORA_OK)
        {
            slora_names_free(&grown);
            return SLORA_ERROR;
        }
    }

    slora_names_free(&set->by_name);
    set->by_name = grown;

    return SLORA_OK;
}


slora_adapter_t *
slora_adapters_find(slora_adapters_t *set, const char *name)
{
    int64_t  i;

    i = slora_names_find(&set->by_name, name, strlen(name));

    return i >= 0 ? set->all[i] : NULL;
}


int32_t
slora_adapters_count(const slora_adapters_t *set)
{
    return set->n;
}


slora_adapter_t *
slora_adapters_get(slora_adapters_t *set, int32_t i)
{
    slora_assert(i >= 0 && i < set->n);

    return set->all[i];
}


int
slora_adapter_acquire(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    int      rc;
    int32_t  need;

    if (a->stale) {
        return slora_err_set(err, SLORA_BUSY, "adapter %s: its source "
                             "changed; waiting for the old copy's users",
                             a->name);
    }

    if (a->pages != NULL) {
        /* uploaded ahead of need: the next step must wait for it */
        if (a->unfenced) {
            if (slora_adapters_fence(set, err) != SLORA_OK) {
                return SLORA_ERROR;
            }
            a->unfenced = 0;
        }

        if (a->refs++ == 0) {
            slora_adapter_list_remove(&set->idle_lru, a, SLORA_IDLE_LINK);
            a->on_idle = 0;
        }
        set->hits++;
        return SLORA_OK;
    }

    if (a->host == NULL) {
        set->host_misses++;
        if (slora_adapter_load_host(set, a, err) != SLORA_OK) {
            return SLORA_ERROR;
        }

    } else {
        set->host_hits++;
        slora_adapter_list_remove(&set->host_lru, a, SLORA_HOST_LINK);
        slora_adapter_list_push(&set->host_lru, a, SLORA_HOST_LINK);
    }

    need = a->plan.n_pages;

    if (slora_pool_count(set->pool, SLORA_PAGE_FREE) < need) {
        slora_adapters_evict(set, need);
    }

    rc = slora_adapter_place(set, a, err);
    if (rc != SLORA_OK) {
        if (rc == SLORA_BUSY) {
            slora_adapter_trim_host(set, a);
        }
        return rc;
    }

    a->refs = 1;

    slora_adapter_trim_host(set, NULL);

    if (slora_adapters_fence(set, err) != SLORA_OK) {
        a->unfenced = 1;
        slora_adapter_release(set, a);
        return SLORA_ERROR;
    }

    return SLORA_OK;
}


/* S-LoRA's prefetch to the GPU (slora_adapter.h). */
int
slora_adapters_warm(slora_adapters_t *set, slora_adapter_t *a,
    int32_t reserve, slora_err_t *err)
{
    int  rc;

    /* the prefix cache's idle pages count as free: they are reclaimed
     * for the upload, as they would be for anything else */
    if (a->stale || a->pages != NULL || a->host == NULL
        || slora_pool_count(set->pool, SLORA_PAGE_FREE)
           + slora_pool_count(set->pool, SLORA_PAGE_CACHED)
           < a->plan.n_pages + reserve)
    {
        return SLORA_DECLINED;
    }

    slora_pool_reclaim(set->pool, a->plan.n_pages);

    rc = slora_adapter_place(set, a, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    a->unfenced = set->backend->fence != NULL;
    a->refs = 0;
    slora_adapter_list_push(&set->idle_lru, a, SLORA_IDLE_LINK);
    a->on_idle = 1;
    slora_adapter_list_remove(&set->host_lru, a, SLORA_HOST_LINK);
    slora_adapter_list_push(&set->host_lru, a, SLORA_HOST_LINK);
    set->warmed++;

    return SLORA_OK;
}


/* a's pages from the pool and its rows written there (not fenced);
 * SLORA_BUSY: the pool has not the pages free. */

static int
slora_adapter_place(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    int      rc;
    int32_t  need;

    need = a->plan.n_pages;

    if (a->pages == NULL) {
        a->pages = malloc((size_t) need * sizeof(int32_t));
        a->row_off = malloc((size_t) a->plan.n_rows * sizeof(int64_t));
        if (a->pages == NULL || a->row_off == NULL) {
            free(a->pages);
            free(a->row_off);
            a->pages = NULL;
            a->row_off = NULL;
            return slora_err_set(err, SLORA_ERROR, "adapter %s: no memory",
                                 a->name);
        }
    }

    if (slora_pool_alloc(set->pool, SLORA_PAGE_ADAPTER, need, a->pages)
        != SLORA_OK)
    {
        free(a->pages);
        free(a->row_off);
        a->pages = NULL;
        a->row_off = NULL;
        return slora_err_set(err, SLORA_BUSY, "adapter %s: %d pages wanted, "
                             "%d free", a->name, need,
                             slora_pool_count(set->pool, SLORA_PAGE_FREE));
    }

    rc = slora_adapter_upload(set, a, err);
    if (rc != SLORA_OK) {
        slora_pool_release(set->pool, need, a->pages);
        free(a->pages);
        free(a->row_off);
        a->pages = NULL;
        a->row_off = NULL;
        return rc;
    }

    set->in_pool++;
    set->pool_elems += (int64_t) need * a->plan.page_elems;
    set->pool_used_elems += a->plan.used_elems;
    set->uploads++;

    return SLORA_OK;
}


/* The next forward waits for the uploads so far (slora_backend_t.fence). */
static int
slora_adapters_fence(slora_adapters_t *set, slora_err_t *err)
{
    if (set->backend->fence == NULL) {
        return SLORA_OK;
    }

    return set->backend->fence(set->backend, err);
}


void
slora_adapter_release(slora_adapters_t *set, slora_adapter_t *a)
{
    slora_assert(a->refs > 0 && a->pages != NULL);

    if (--a->refs == 0) {
        slora_adapter_list_push(&set->idle_lru, a, SLORA_IDLE_LINK);
        a->on_idle = 1;

        if (a->stale) {
            slora_adapter_evict_one(set, a);
            a->stale = 0;
        }
    }
}


int32_t
slora_adapters_evict(slora_adapters_t *set, int32_t n_free)
{
    int32_t           n;
    slora_adapter_t  *a;

    /* KV the prefix cache keeps goes first: it costs a prompt's
     * recomputation at most, an adapter an upload or a disk read */
    slora_pool_reclaim(set->pool, n_free);

    n = 0;
    while (slora_pool_count(set->pool, SLORA_PAGE_FREE) < n_free
           && set->idle_lru.head != NULL)
    {
        a = set->idle_lru.head;
        slora_adapter_evict_one(set, a);
        n++;
    }

    return n;
}


const char *
slora_adapter_name(const slora_adapter_t *a)
{
    return a->name;
}


int32_t
slora_adapter_refs(const slora_adapter_t *a)
{
    return a->refs;
}


const slora_lora_t *
slora_adapter_lora(const slora_adapter_t *a)
{
    slora_assert(a->pages != NULL);

    return &a->lora;
}


const slora_adapter_plan_t *
slora_adapter_get_plan(const slora_adapter_t *a)
{
    return a->planned ? &a->plan : NULL;
}


void
slora_adapters_stats(const slora_adapters_t *set, slora_adapters_stats_t *st)
{
    memset(st, 0, sizeof(*st));

    st->in_pool = set->in_pool;
    st->in_host = set->in_host;
    st->host_bytes = set->host_bytes;
    st->loads = set->loads;
    st->uploads = set->uploads;
    st->evictions = set->evictions;
    st->hits = set->hits;
    st->host_budget = set->host_budget;
    st->host_hits = set->host_hits;
    st->host_misses = set->host_misses;
    st->host_evictions = set->host_evictions;
    st->prefetched = set->prefetched;
    st->warmed = set->warmed;
    st->load_errors = set->load_errors;
    st->pinned = set->pinned;
    st->pin_pages = set->pin_pages;
    st->pin_cap = set->pin_cap;
    st->pool_elems = set->pool_elems;
    st->pool_used_elems = set->pool_used_elems;
}


int
slora_adapters_set_source(slora_adapters_t *set, slora_adapter_t *a,
    const char *dir, const char *sha256, const char *version,
    slora_err_t *err)
{
    char  *d, *h, *v;

    if (!slora_adapter_str_differ(a->dir, dir)
        && !slora_adapter_str_differ(a->sha256, sha256)
        && !slora_adapter_str_differ(a->version, version))
    {
        return 0;
    }

    d = NULL;
    h = NULL;
    v = NULL;

    if (slora_adapter_dup(&d, dir) != SLORA_OK
        || slora_adapter_dup(&h, sha256) != SLORA_OK
        || slora_adapter_dup(&v, version) != SLORA_OK)
    {
        free(d);
        free(h);
        free(v);
        return slora_err_set(err, SLORA_ERROR, "adapter %s: no memory",
                             a->name);
    }

    free(a->dir);
    free(a->sha256);
    free(a->version);
    a->dir = d;
    a->sha256 = h;
    a->version = v;

    slora_adapter_new_source(set, a);

    return 1;
}


int
slora_adapters_check_files(slora_adapters_t *set, slora_adapter_t *a)
{
    int64_t                settled;
    struct timespec        ts;
    slora_adapter_stamp_t  now;

    if (!a->stamp.valid || a->stale
        || (a->host == NULL && a->pages == NULL))
    {
        return 0;
    }

    slora_adapter_stamp(a->dir, &now);

    if (slora_adapter_stamp_same(&now, &a->stamp)) {
        return 0;
    }

    /* a file changed within the last second may be half written: its
     * writer gets until a second passes without a change (ctime moves
     * with every write, and no utime() sets it) */
    clock_gettime(CLOCK_REALTIME, &ts);
    settled = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec
              - SLORA_ADAPTER_SETTLE_NS;

    if (now.config.ctime_ns > settled || now.weights.ctime_ns > settled) {
        return 0;
    }

    slora_adapter_new_source(set, a);

    return 1;
}


/*
 * a's source changed: its copies go (the pool copy at the last release
 * where requests hold it) and a host image read for the old source is
 * refused at install.
 */
static void
slora_adapter_new_source(slora_adapters_t *set, slora_adapter_t *a)
{
    a->gen++;
    a->stamp.valid = 0;

    if (a->admin_pin) {
        slora_adapter_unpin(set, a);
    }

    if (a->host != NULL) {
        slora_adapter_drop_host(set, a);
    }

    if (a->pages != NULL) {
        if (a->refs == 0) {
            slora_adapter_evict_one(set, a);

        } else {
            a->stale = 1;
        }
    }
}


int
slora_adapters_install(slora_adapters_t *set, slora_adapter_t *a,
    uint64_t gen, slora_adapter_image_t *img)
{
    if (a->gen != gen || a->host != NULL || a->stale) {
        return SLORA_DECLINED;
    }

    /* the host copy of a pool copy is what the pool copy is uploaded
     * from again: it must come from the same files and be laid out by
     * the same plan. Files rewritten in place since (not settled yet:
     * gen is the same) decline it; the pool copy stays */
    if (a->pages != NULL && a->planned
        && (!slora_adapter_stamp_same(&img->stamp, &a->stamp)
            || !slora_adapter_same_layout(&img->conf, &img->plan, &a->conf,
                                          &a->plan)))
    {
        return SLORA_DECLINED;
    }

    slora_adapter_take_image(set, a, img);
    set->prefetched++;
    slora_adapter_trim_host(set, a);

    return SLORA_OK;
}


/*
 * Pins hold pool pages that nothing else may take, so together they hold
 * at most pin_cap of them (slora_adapters_set_pin_cap): the rest is kept
 * for KV and the adapters of the moment. The cap is checked before the
 * adapter is read where its size is known, and again after.
 */
int
slora_adapter_pin(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    int  rc;

    if (a->admin_pin) {
        return SLORA_OK;
    }

    if (a->planned && set->pin_pages + a->plan.n_pages > set->pin_cap) {
        return slora_adapter_pin_full(set, a, err);
    }

    rc = slora_adapter_acquire(set, a, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    if (set->pin_pages + a->plan.n_pages > set->pin_cap) {
        slora_adapter_release(set, a);
        return slora_adapter_pin_full(set, a, err);
    }

    a->admin_pin = 1;
    a->pin_pages = a->plan.n_pages;
    set->pinned++;
    set->pin_pages += a->pin_pages;

    return SLORA_OK;
}


static int
slora_adapter_pin_full(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    return slora_err_set(err, SLORA_BUSY, "adapter %s: pinning its %d pages "
                         "would hold %d of the pool's %d in pins, over the "
                         "%d pins may hold (pinned_max)", a->name,
                         a->plan.n_pages, set->pin_pages + a->plan.n_pages,
                         slora_pool_n_pages(set->pool), set->pin_cap);
}


int
slora_adapter_unpin(slora_adapters_t *set, slora_adapter_t *a)
{
    if (!a->admin_pin) {
        return SLORA_DECLINED;
    }

    a->admin_pin = 0;
    set->pinned--;
    set->pin_pages -= a->pin_pages;
    a->pin_pages = 0;
    slora_adapter_release(set, a);

    return SLORA_OK;
}


void
slora_adapters_set_pin_cap(slora_adapters_t *set, int32_t pages)
{
    set->pin_cap = pages;
}


int
slora_adapters_unload(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    if (a->refs > 0) {
        return slora_err_set(err, SLORA_BUSY, "adapter %s: %s", a->name,
                             a->admin_pin ? "pinned (unpin it first)"
                                          : "in use by running requests");
    }

    if (a->pages != NULL) {
        slora_adapter_evict_one(set, a);
    }

    if (a->host != NULL) {
        slora_adapter_drop_host(set, a);
    }

    return SLORA_OK;
}


const char *
slora_adapter_dir(const slora_adapter_t *a)
{
    return a->dir;
}


const char *
slora_adapter_sha256(const slora_adapter_t *a)
{
    return a->sha256;
}


uint64_t
slora_adapter_gen(const slora_adapter_t *a)
{
    return a->gen;
}


slora_tier_e
slora_adapter_tier(const slora_adapter_t *a)
{
    return a->pages != NULL ? SLORA_TIER_POOL
                            : a->host != NULL ? SLORA_TIER_HOST
                                              : SLORA_TIER_DISK;
}


int
slora_adapter_in_host(const slora_adapter_t *a)
{
    return a->host != NULL;
}


int
slora_adapter_pinned(const slora_adapter_t *a)
{
    return a->admin_pin;
}


size_t
slora_adapter_host_bytes(const slora_adapter_t *a)
{
    return a->host_bytes;
}


int32_t
slora_adapter_n_pages(const slora_adapter_t *a)
{
    return a->pages != NULL ? a->plan.n_pages : 0;
}


int32_t
slora_adapter_rank(const slora_adapter_t *a)
{
    return a->planned ? a->conf.rank : 0;
}


static int
slora_adapter_load_host(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    slora_adapter_image_t  img;

    if (slora_adapter_image_load(&set->cfg, slora_pool_page_elems(set->pool),
                                 slora_pool_slices(set->pool),
                                 &set->backend->host_mem, a->name, a->dir,
                                 a->sha256, &img, err)
        != SLORA_OK)
    {
        set->load_errors++;
        return SLORA_ERROR;
    }

    slora_adapter_take_image(set, a, &img);

    return SLORA_OK;
}


/* a has no host copy; its plan becomes the image's. */
static void
slora_adapter_take_image(slora_adapters_t *set, slora_adapter_t *a,
    slora_adapter_image_t *img)
{
    slora_assert(a->host == NULL);
    slora_assert(img->plan.page_elems == slora_pool_page_elems(set->pool)
                 && img->plan.slices == slora_pool_slices(set->pool));

    /* the stamp is the oldest copy's: a pool copy keeps its own. With
     * no copy left (evicted, unloaded), files rewritten since the last
     * one was read went unwatched: a new source for what was computed
     * with the old (the prefix cache's pages under gen) */
    if (a->pages == NULL) {
        if (a->stamp.valid
            && !slora_adapter_stamp_same(&img->stamp, &a->stamp))
        {
            a->gen++;
        }

        a->stamp = img->stamp;
    }

    if (a->pages == NULL || !a->planned) {
        if (a->planned) {
            slora_adapter_plan_free(&a->plan);
        }
        a->conf = img->conf;
        a->plan = img->plan;
        a->planned = 1;

    } else {
        slora_adapter_plan_free(&img->plan);
    }

    memset(&img->plan, 0, sizeof(img->plan));

    a->host = img->host;
    a->host_elem = img->elem_size;
    a->host_mem = img->mem;
    a->host_bytes = img->bytes;
    img->host = NULL;

    set->host_bytes += a->host_bytes;
    set->in_host++;
    set->loads++;
    slora_adapter_list_push(&set->host_lru, a, SLORA_HOST_LINK);
}


/* 1 if two reads gave the same rows in the same places, and scale. */
static int
slora_adapter_same_layout(const slora_adapter_conf_t *c1,
    const slora_adapter_plan_t *p1, const slora_adapter_conf_t *c2,
    const slora_adapter_plan_t *p2)
{
    return c1->rank == c2->rank && c1->proj_mask == c2->proj_mask
           && c1->scale == c2->scale
           && p1->page_elems == p2->page_elems && p1->slices == p2->slices
           && p1->n_pages == p2->n_pages && p1->n_rows == p2->n_rows
           && memcmp(p1->first_row, p2->first_row, sizeof(p1->first_row))
              == 0
           && memcmp(p1->row_off, p2->row_off,
                     (size_t) p1->n_rows * sizeof(int64_t)) == 0
           && memcmp(p1->row_width, p2->row_width,
                     (size_t) p1->n_rows * sizeof(int32_t)) == 0;
}


static int
slora_adapter_str_differ(const char *a, const char *b)
{
    a = a != NULL && a[0] != '\0' ? a : NULL;
    b = b != NULL && b[0] != '\0' ? b : NULL;

    if (a == NULL || b == NULL) {
        return a != b;
    }

    return strcmp(a, b) != 0;
}


static int
slora_adapter_dup(char **dst, const char *src)
{
    *dst = NULL;

    if (src == NULL || src[0] == '\0') {
        return SLORA_OK;
    }

    *dst = strdup(src);

    return *dst != NULL ? SLORA_OK : SLORA_ERROR;
}


/* The host copy's pages, [n_layers][n_pages] in a row, to where the
 * pool put them, in one write; then the rows' physical offsets. */

static int
slora_adapter_upload(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    int       p, rc;
    int32_t   l, k, n_pages;
    int64_t   pe, vpage, *dst;

    n_pages = a->plan.n_pages;
    pe = a->plan.page_elems;

    dst = malloc((size_t) set->cfg.n_layers * (size_t) n_pages
                 * sizeof(int64_t));
    if (dst == NULL) {
        return slora_err_set(err, SLORA_ERROR, "adapter %s: no memory",
                             a->name);
    }

    for (l = 0; l < set->cfg.n_layers; l++) {
        for (k = 0; k < n_pages; k++) {
            dst[l * n_pages + k] = slora_pool_offset(set->pool, l,
                                                     a->pages[k]);
        }
    }

    rc = slora_backend_write_pages(set->backend, a->host, a->host_elem,
                                   set->cfg.n_layers * n_pages, pe, dst,
                                   err);
    free(dst);

    if (rc != SLORA_OK) {
        return slora_err_prefix(err, "adapter %s", a->name);
    }

    for (k = 0; k < a->plan.n_rows; k++) {
        vpage = a->plan.row_off[k] / pe;
        a->row_off[k] = (int64_t) a->pages[vpage] * pe
                        + a->plan.row_off[k] % pe;
    }

    memset(&a->lora, 0, sizeof(a->lora));
    a->lora.rank = a->conf.rank;
    a->lora.scale = a->conf.scale;
    a->lora.proj_mask = a->conf.proj_mask;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        if (a->plan.first_row[p][0] >= 0) {
            a->lora.a_rows[p] = a->row_off + a->plan.first_row[p][0];
            a->lora.b_rows[p] = a->row_off + a->plan.first_row[p][1];
        }
    }

    return SLORA_OK;
}


static void
slora_adapter_evict_one(slora_adapters_t *set, slora_adapter_t *a)
{
    slora_assert(a->refs == 0 && a->on_idle && a->pages != NULL);

    /* pages whose upload may still be on its way are not handed on
     * before the next step waits for it */
    if (a->unfenced) {
        (void) slora_adapters_fence(set, NULL);
        a->unfenced = 0;
    }

    slora_adapter_list_remove(&set->idle_lru, a, SLORA_IDLE_LINK);
    a->on_idle = 0;

    slora_pool_release(set->pool, a->plan.n_pages, a->pages);
    free(a->pages);
    free(a->row_off);
    a->pages = NULL;
    a->row_off = NULL;

    set->in_pool--;
    set->pool_elems -= (int64_t) a->plan.n_pages * a->plan.page_elems;
    set->pool_used_elems -= a->plan.used_elems;
    set->evictions++;
}


static void
slora_adapter_drop_host(slora_adapters_t *set, slora_adapter_t *a)
{
    slora_adapter_list_remove(&set->host_lru, a, SLORA_HOST_LINK);
    slora_host_free(a->host_mem, a->host, a->host_bytes);
    a->host = NULL;
    set->host_bytes -= a->host_bytes;
    set->in_host--;
    a->host_bytes = 0;
}


static void
slora_adapter_trim_host(slora_adapters_t *set, slora_adapter_t *keep)
{
    slora_adapter_t  *a, *next;

    for (a = set->host_lru.head;
         a != NULL && set->host_bytes > set->host_budget;
         a = next)
    {
        next = a->host_link.next;
        if (a != keep) {
            slora_adapter_drop_host(set, a);
            set->host_evictions++;
        }
    }
}


static void
slora_adapter_list_push(slora_adapter_list_t *l, slora_adapter_t *a,
    size_t link)
{
    slora_adapter_link_t  *lk;

    lk = slora_link(a, link);
    lk->prev = l->tail;
    lk->next = NULL;

    if (l->tail != NULL) {
        slora_link(l->tail, link)->next = a;
    } else {
        l->head = a;
    }

    l->tail = a;
}


static void
slora_adapter_list_remove(slora_adapter_list_t *l, slora_adapter_t *a,
    size_t link)
{
    slora_adapter_link_t  *lk;

    lk = slora_link(a, link);

    if (lk->prev != NULL) {
        slora_link(lk->prev, link)->next = lk->next;
    } else {
        l->head = lk->next;
    }

    if (lk->next != NULL) {
        slora_link(lk->next, link)->prev = lk->prev;
    } else {
        l->tail = lk->prev;
    }

    lk->prev = NULL;
    lk->next = NULL;
}


static int
slora_adapter_valid_name(const char *name)
{
    return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL
           && strstr(name, "..") == NULL && strlen(name) < 256;
}
