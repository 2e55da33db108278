/*
 * slora_adapter.c: LoRA adapters from Hugging Face PEFT folders, their
 * page plan, and the two tiers they live in: f32 page images in host
 * memory (LRU under a byte budget) and pages of the unified pool (pinned
 * by running requests, LRU among the idle).
 *
 * The one idea: rows are the unit. A is stored as its rank rows [rank,
 * in], B as the rank rows of B^T [rank, out]; every row is placed whole in
 * a page (widths grouped, widest first, first fit), the same plan for
 * every layer, and the host copy is the exact page images, so an upload
 * is a copy of whole pages and the kernels find each row by one offset.
 *
 * Design. Every registered adapter is in one of four states:
 *
 *     registered   nothing read                host == NULL, pages == NULL
 *     host         page images in host memory  host != NULL, pages == NULL
 *     pool, idle   in pool pages, refs == 0    on the idle list
 *     pool, pinned in pool pages, refs > 0     on no list
 *
 * A pool-resident adapter may have dropped its host copy (host LRU); it
 * is read from disk again if it is ever evicted and wanted back. An admin
 * pin is one more reference, so a pinned adapter is never idle. A change
 * of source (the catalog moved or rewrote it) bumps gen: copies of the old
 * source are dropped when nobody uses them ("stale" until then), and a
 * host image read off-thread for an older gen is refused at install.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <openssl/evp.h>

#include "slora_adapter.h"
#include "slora_safetensors.h"
#include "slora_sampler.h"


#define SLORA_ADAPTER_CONFIG_MAX  (1 << 20)


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
    int                     planned;
    slora_adapter_conf_t    conf;
    slora_adapter_plan_t    plan;

    float                  *host;       /* [n_layers][n_pages][page_elems] */
    size_t                  host_bytes;
    slora_adapter_link_t    host_link;

    int32_t                *pages;      /* [plan.n_pages] or NULL */
    int64_t                *row_off;    /* [plan.n_rows] physical offsets */
    slora_lora_t            lora;
    int32_t                 refs;
    slora_adapter_link_t    idle_link;
    int                     on_idle;
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

    slora_adapter_list_t    host_lru;
    slora_adapter_list_t    idle_lru;

    int32_t                 in_pool;
    int32_t                 in_host;
    uint64_t                loads;
    uint64_t                uploads;
    uint64_t                evictions;
    uint64_t                hits;
    uint64_t                host_hits;
    uint64_t                host_misses;
    uint64_t                host_evictions;
    uint64_t                prefetched;
    uint64_t                load_errors;
    int32_t                 pinned;
};


static const char  *slora_adapter_proj_path[SLORA_PROJ_N] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
    "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"
};


static char *slora_adapter_read_file(const char *path, size_t max,
    size_t *len, slora_err_t *err);
static int slora_adapter_proj_by_name(const char *s, size_t len);
static int slora_adapter_targets(const char *path, const cJSON *t,
    uint32_t *mask, slora_err_t *err);
static int slora_adapter_targets_regex(const char *path, const char *re,
    uint32_t *mask, slora_err_t *err);
static int slora_adapter_parse_name(const char *name, int32_t *layer,
    int *proj, int *is_b);
static int slora_adapter_load_host(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err);
static void slora_adapter_take_image(slora_adapters_t *set,
    slora_adapter_t *a, slora_adapter_image_t *img);
static int slora_adapter_fill(const slora_model_config_t *cfg,
    slora_adapter_image_t *img, const slora_tensor_t *t, int32_t layer,
    int proj, int is_b, float *tmp, slora_err_t *err);
static int slora_adapter_str_differ(const char *a, const char *b);
static int slora_adapter_dup(char **dst, const char *src);
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
static int slora_adapter_write_config(const char *dir,
    const slora_adapter_gen_t *gen, slora_err_t *err);


#define slora_link(a, off)  ((slora_adapter_link_t *) ((char *) (a) + (off)))

#define SLORA_HOST_LINK  offsetof(slora_adapter_t, host_link)
#define SLORA_IDLE_LINK  offsetof(slora_adapter_t, idle_link)


int
slora_adapter_read_config(const char *dir, const slora_model_config_t *cfg,
    slora_adapter_conf_t *conf, slora_err_t *err)
{
    int           rc;
    char          path[1280], *text;
    size_t        len;
    cJSON        *root, *v;
    const char   *why;

    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);

    text = slora_adapter_read_file(path, SLORA_ADAPTER_CONFIG_MAX, &len, err);
    if (text == NULL) {
        return SLORA_ERROR;
    }

    root = cJSON_ParseWithLength(text, len);
    free(text);

    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return slora_err_set(err, SLORA_ERROR, "%s: not a JSON object",
                             path);
    }

    memset(conf, 0, sizeof(*conf));
    rc = SLORA_ERROR;
    why = NULL;

    v = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (v != NULL && (!cJSON_IsString(v)
                      || strcmp(v->valuestring, "LORA") != 0))
    {
        why = "peft_type is not \"LORA\"";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "r");
    if (!cJSON_IsNumber(v) || v->valuedouble != (double) (int) v->valuedouble
        || v->valuedouble < 1 || v->valuedouble > SLORA_ADAPTER_MAX_RANK)
    {
        slora_err_set(err, SLORA_ERROR, "%s: \"r\" must be an integer in "
                      "1..%d", path, SLORA_ADAPTER_MAX_RANK);
        goto failed;
    }
    conf->rank = (int32_t) v->valuedouble;

    v = cJSON_GetObjectItemCaseSensitive(root, "lora_alpha");
    if (v == NULL) {
        conf->alpha = (float) conf->rank;

    } else if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
        why = "\"lora_alpha\" is not a number";
        goto done;

    } else {
        conf->alpha = (float) v->valuedouble;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "use_rslora");
    conf->rslora = cJSON_IsTrue(v);
    conf->scale = conf->rslora ? conf->alpha / sqrtf((float) conf->rank)
                               : conf->alpha / (float) conf->rank;

    v = cJSON_GetObjectItemCaseSensitive(root, "use_dora");
    if (cJSON_IsTrue(v)) {
        why = "DoRA adapters (use_dora) are not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "fan_in_fan_out");
    if (cJSON_IsTrue(v)) {
        why = "fan_in_fan_out adapters are not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "bias");
    if (v != NULL && !cJSON_IsNull(v)
        && (!cJSON_IsString(v) || strcmp(v->valuestring, "none") != 0))
    {
        why = "\"bias\" other than \"none\" is not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "modules_to_save");
    if (v != NULL && !cJSON_IsNull(v)
        && !(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 0))
    {
        why = "\"modules_to_save\" (fully trained modules) is not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "rank_pattern");
    if (v != NULL && !cJSON_IsNull(v) && cJSON_GetArraySize(v) != 0) {
        why = "\"rank_pattern\" (per-module ranks) is not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "alpha_pattern");
    if (v != NULL && !cJSON_IsNull(v) && cJSON_GetArraySize(v) != 0) {
        why = "\"alpha_pattern\" (per-module alphas) is not supported";
        goto done;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    if (slora_adapter_targets(path, v, &conf->proj_mask, err) != SLORA_OK) {
        goto failed;
    }

    if (cfg != NULL && cfg->n_heads * cfg->head_dim <= 0) {
        why = "the model's configuration is incomplete";
        goto done;
    }

    rc = SLORA_OK;

done:

    if (why != NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", path, why);
    }

failed:

    cJSON_Delete(root);
    return rc;
}


int
slora_adapter_plan(const slora_model_config_t *cfg,
    const slora_adapter_conf_t *conf, int64_t page_elems,
    slora_adapter_plan_t *plan, slora_err_t *err)
{
    int       p, side;
    int32_t   i, r, n_rows, n_pages, cap_pages, width, next_width, pg;
    int64_t  *fill, *grown;

    memset(plan, 0, sizeof(*plan));
    plan->page_elems = page_elems;

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
        free(a->host);
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

    set->all[set->n++] = a;

    if (out != NULL) {
        *out = a;
    }

    return SLORA_OK;
}


slora_adapter_t *
slora_adapters_find(slora_adapters_t *set, const char *name)
{
    int32_t  i;

    for (i = 0; i < set->n; i++) {
        if (strcmp(set->all[i]->name, name) == 0) {
            return set->all[i];
        }
    }

    return NULL;
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
        slora_adapter_trim_host(set, a);
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

    a->refs = 1;
    set->in_pool++;
    set->uploads++;

    slora_adapter_trim_host(set, NULL);

    return SLORA_OK;
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
    int32_t           i;
    slora_adapter_t  *a;

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
    st->load_errors = set->load_errors;
    st->pinned = set->pinned;

    for (i = 0; i < set->n; i++) {
        a = set->all[i];
        if (a->pages != NULL) {
            st->pool_elems += (int64_t) a->plan.n_pages * a->plan.page_elems;
            st->pool_used_elems += a->plan.used_elems;
        }
    }
}


int
slora_sha256_file(const char *path, char hex[SLORA_SHA256_HEX],
    slora_err_t *err)
{
    int             rc, i;
    FILE           *f;
    size_t          n;
    unsigned int    len;
    EVP_MD_CTX     *ctx;
    unsigned char   buf[65536], md[EVP_MAX_MD_SIZE];

    f = fopen(path, "rb");
    if (f == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        fclose(f);
        return slora_err_set(err, SLORA_ERROR, "%s: sha256: no context",
                             path);
    }

    rc = SLORA_OK;

    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (EVP_DigestUpdate(ctx, buf, n) != 1) {
            rc = SLORA_ERROR;
            break;
        }
    }

    if (ferror(f)) {
        rc = SLORA_ERROR;
    }

    fclose(f);

    if (rc == SLORA_OK && EVP_DigestFinal_ex(ctx, md, &len) != 1) {
        rc = SLORA_ERROR;
    }

    EVP_MD_CTX_free(ctx);

    if (rc != SLORA_OK || len != 32) {
        return slora_err_set(err, SLORA_ERROR, "%s: read error while "
                             "hashing", path);
    }

    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }

    return SLORA_OK;
}


int
slora_adapter_image_load(const slora_model_config_t *cfg, int64_t page_elems,
    const char *name, const char *dir, const char *sha256,
    slora_adapter_image_t *img, slora_err_t *err)
{
    int                    proj, is_b, rc;
    char                   path[1280], hex[SLORA_SHA256_HEX];
    float                 *tmp;
    size_t                 tmp_elems;
    uint8_t               *seen;
    int32_t                layer, n_layers;
    int64_t                i, n;
    slora_safetensors_t   *st;
    const slora_tensor_t  *t;

    memset(img, 0, sizeof(*img));
    n_layers = cfg->n_layers;

    if (slora_adapter_read_config(dir, cfg, &img->conf, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    if (slora_adapter_plan(cfg, &img->conf, page_elems, &img->plan, err)
        != SLORA_OK)
    {
        return slora_err_prefix(err, "adapter %s", name);
    }

    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);

    if (sha256 != NULL && sha256[0] != '\0') {
        if (slora_sha256_file(path, hex, err) != SLORA_OK) {
            slora_adapter_image_free(img);
            return SLORA_ERROR;
        }

        if (strcasecmp(hex, sha256) != 0) {
            slora_adapter_image_free(img);
            return slora_err_set(err, SLORA_ERROR, "%s: sha256 is %s, the "
                                 "catalog says %.64s: refused", path, hex,
                                 sha256);
        }
    }

    img->bytes = (size_t) n_layers * (size_t) img->plan.n_pages
                 * (size_t) img->plan.page_elems * sizeof(float);

    st = slora_safetensors_open(path, err);
    if (st == NULL) {
        slora_adapter_image_free(img);
        return SLORA_ERROR;
    }

    img->host = calloc(1, img->bytes);
    seen = calloc((size_t) n_layers * SLORA_PROJ_N * 2, 1);
    tmp_elems = (size_t) img->conf.rank
                * (size_t) (cfg->ffn > cfg->hidden ? cfg->ffn : cfg->hidden);
    tmp_elems = tmp_elems > (size_t) img->plan.page_elems
                ? tmp_elems : (size_t) img->plan.page_elems;
    tmp = malloc(tmp_elems * 2 * sizeof(float));

    rc = SLORA_ERROR;

    if (img->host == NULL || seen == NULL || tmp == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: no memory for %zu bytes", path,
                      img->bytes);
        goto done;
    }

    n = slora_safetensors_n_tensors(st);

    for (i = 0; i < n; i++) {
        t = slora_safetensors_tensor(st, i);

        if (slora_adapter_parse_name(t->name, &layer, &proj, &is_b)
            != SLORA_OK)
        {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s is not a LoRA "
                          "weight of a module we can apply (q, k, v, o, "
                          "gate, up, down projections)", path, t->name);
            goto done;
        }

        if (layer >= n_layers) {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s: layer %d, the "
                          "model has %d", path, t->name, layer, n_layers);
            goto done;
        }

        if (!(img->conf.proj_mask & (1u << proj))) {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s: %s is not in "
                          "target_modules", path, t->name,
                          slora_proj_name(proj));
            goto done;
        }

        if (seen[(layer * SLORA_PROJ_N + proj) * 2 + is_b]++) {
            slora_err_set(err, SLORA_ERROR, "%s: tensor %s given twice",
                          path, t->name);
            goto done;
        }

        if (slora_adapter_fill(cfg, img, t, layer, proj, is_b, tmp, err)
            != SLORA_OK)
        {
            slora_err_prefix(err, "%s", path);
            goto done;
        }
    }

    n = 0;
    for (i = 0; i < (int64_t) n_layers * SLORA_PROJ_N; i++) {
        if (seen[2 * i] != seen[2 * i + 1]) {
            slora_err_set(err, SLORA_ERROR, "%s: layer %d %s has lora_%c "
                          "without lora_%c", path, (int) (i / SLORA_PROJ_N),
                          slora_proj_name((int) (i % SLORA_PROJ_N)),
                          seen[2 * i] ? 'A' : 'B', seen[2 * i] ? 'B' : 'A');
            goto done;
        }
        n += seen[2 * i];
    }

    if (n == 0) {
        slora_err_set(err, SLORA_ERROR, "%s: no LoRA weights", path);
        goto done;
    }

    rc = SLORA_OK;

done:

    slora_safetensors_close(st);
    free(seen);
    free(tmp);

    if (rc != SLORA_OK) {
        slora_adapter_image_free(img);
    }

    return rc;
}


void
slora_adapter_image_free(slora_adapter_image_t *img)
{
    free(img->host);
    img->host = NULL;
    slora_adapter_plan_free(&img->plan);
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
    a->gen++;

    if (a->admin_pin) {
        a->admin_pin = 0;
        set->pinned--;
        slora_adapter_release(set, a);
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

    return 1;
}


int
slora_adapters_install(slora_adapters_t *set, slora_adapter_t *a,
    uint64_t gen, slora_adapter_image_t *img)
{
    if (a->gen != gen || a->host != NULL || a->stale) {
        return SLORA_DECLINED;
    }

    if (a->pages != NULL && a->planned
        && (img->plan.n_pages != a->plan.n_pages
            || img->plan.n_rows != a->plan.n_rows))
    {
        /* the folder was rewritten in place: the pool copy stays */
        return SLORA_DECLINED;
    }

    slora_adapter_take_image(set, a, img);
    set->prefetched++;
    slora_adapter_trim_host(set, a);

    return SLORA_OK;
}


int
slora_adapter_pin(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    int  rc;

    if (a->admin_pin) {
        return SLORA_OK;
    }

    rc = slora_adapter_acquire(set, a, err);
    if (rc != SLORA_OK) {
        return rc;
    }

    a->admin_pin = 1;
    set->pinned++;

    return SLORA_OK;
}


int
slora_adapter_unpin(slora_adapters_t *set, slora_adapter_t *a)
{
    if (!a->admin_pin) {
        return SLORA_DECLINED;
    }

    a->admin_pin = 0;
    set->pinned--;
    slora_adapter_release(set, a);

    return SLORA_OK;
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


static char *
slora_adapter_read_file(const char *path, size_t max, size_t *len,
    slora_err_t *err)
{
    FILE    *f;
    char    *buf;
    size_t   n;

    f = fopen(path, "rb");
    if (f == NULL) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", path, strerror(errno));
        return NULL;
    }

    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        slora_err_set(err, SLORA_ERROR, "%s: no memory", path);
        return NULL;
    }

    n = fread(buf, 1, max + 1, f);

    if (ferror(f) || n > max) {
        slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                      n > max ? "file too large" : "read error");
        fclose(f);
        free(buf);
        return NULL;
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;
}


static int
slora_adapter_proj_by_name(const char *s, size_t len)
{
    int          p;
    const char  *name;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        name = slora_proj_name(p);
        if (strlen(name) == len && memcmp(name, s, len) == 0) {
            return p;
        }
    }

    return -1;
}


static int
slora_adapter_targets(const char *path, const cJSON *t, uint32_t *mask,
    slora_err_t *err)
{
    int           p;
    size_t        len;
    const char   *s, *dot;
    const cJSON  *item;

    *mask = 0;

    if (cJSON_IsString(t)) {
        if (strcmp(t->valuestring, "all-linear") == 0) {
            *mask = (1u << SLORA_PROJ_N) - 1;
            return SLORA_OK;
        }

        p = slora_adapter_proj_by_name(t->valuestring,
                                       strlen(t->valuestring));
        if (p >= 0) {
            *mask = 1u << p;
            return SLORA_OK;
        }

        return slora_adapter_targets_regex(path, t->valuestring, mask, err);
    }

    if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) == 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: \"target_modules\" must "
                             "be a non-empty list or a string", path);
    }

    cJSON_ArrayForEach(item, t) {
        if (!cJSON_IsString(item)) {
            return slora_err_set(err, SLORA_ERROR, "%s: \"target_modules\" "
                                 "holds a non-string", path);
        }

        /* "model.layers.0.self_attn.q_proj" names the same as "q_proj" */
        s = item->valuestring;
        dot = strrchr(s, '.');
        s = dot ? dot + 1 : s;
        len = strlen(s);

        p = slora_adapter_proj_by_name(s, len);
        if (p < 0) {
            return slora_err_set(err, SLORA_ERROR, "%s: target module "
                                 "\"%s\" cannot be applied (supported: "
                                 "q_proj, k_proj, v_proj, o_proj, gate_proj, "
                                 "up_proj, down_proj)", path,
                                 item->valuestring);
        }

        *mask |= 1u << p;
    }

    return SLORA_OK;
}


/* PEFT full-matches a string target_modules against module paths. */
static int
slora_adapter_targets_regex(const char *path, const char *re,
    uint32_t *mask, slora_err_t *err)
{
    int                    p, rc;
    char                   mod[128];
    size_t                 off;
    pcre2_code            *code;
    pcre2_match_data      *md;
    PCRE2_UCHAR            msg[128];

    code = pcre2_compile((PCRE2_SPTR) re, PCRE2_ZERO_TERMINATED,
                         PCRE2_ANCHORED | PCRE2_ENDANCHORED, &rc, &off, NULL);
    if (code == NULL) {
        pcre2_get_error_message(rc, msg, sizeof(msg));
        return slora_err_set(err, SLORA_ERROR, "%s: \"target_modules\" "
                             "regex at %zu: %s", path, off, (char *) msg);
    }

    md = pcre2_match_data_create_from_pattern(code, NULL);
    if (md == NULL) {
        pcre2_code_free(code);
        return slora_err_set(err, SLORA_ERROR, "%s: no memory", path);
    }

    for (p = 0; p < SLORA_PROJ_N; p++) {
        snprintf(mod, sizeof(mod), "model.layers.0.%s",
                 slora_adapter_proj_path[p]);
        if (pcre2_match(code, (PCRE2_SPTR) mod, strlen(mod), 0, 0, md, NULL)
            >= 0)
        {
            *mask |= 1u << p;
        }
    }

    pcre2_match_data_free(md);
    pcre2_code_free(code);

    if (*mask == 0) {
        return slora_err_set(err, SLORA_ERROR, "%s: \"target_modules\" "
                             "\"%s\" matches no module we can apply", path,
                             re);
    }

    return SLORA_OK;
}


/*
 * base_model.model.model.layers.N.self_attn.q_proj.lora_A[.default].weight
 * Returns SLORA_OK or SLORA_DECLINED for any other name.
 */
static int
slora_adapter_parse_name(const char *name, int32_t *layer, int *proj,
    int *is_b)
{
    int          p;
    long         n;
    char        *end;
    size_t       len;
    const char  *s;

    s = strstr(name, "layers.");
    if (s == NULL || (s != name && s[-1] != '.')) {
        return SLORA_DECLINED;
    }

    s += sizeof("layers.") - 1;
    if (*s < '0' || *s > '9') {
        return SLORA_DECLINED;
    }

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || *end != '.' || n > INT32_MAX) {
        return SLORA_DECLINED;
    }
    s = end + 1;

    for (p = 0; p < SLORA_PROJ_N; p++) {
        len = strlen(slora_adapter_proj_path[p]);
        if (strncmp(s, slora_adapter_proj_path[p], len) == 0
            && s[len] == '.')
        {
            break;
        }
    }

    if (p == SLORA_PROJ_N) {
        return SLORA_DECLINED;
    }

    s += len + 1;

    if (strcmp(s, "lora_A.weight") == 0
        || strcmp(s, "lora_A.default.weight") == 0)
    {
        *is_b = 0;

    } else if (strcmp(s, "lora_B.weight") == 0
               || strcmp(s, "lora_B.default.weight") == 0)
    {
        *is_b = 1;

    } else {
        return SLORA_DECLINED;
    }

    *layer = (int32_t) n;
    *proj = p;

    return SLORA_OK;
}


static int
slora_adapter_load_host(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    slora_adapter_image_t  img;

    if (slora_adapter_image_load(&set->cfg, slora_pool_page_elems(set->pool),
                                 a->name, a->dir, a->sha256, &img, err)
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
    a->host_bytes = img->bytes;
    img->host = NULL;

    set->host_bytes += a->host_bytes;
    set->in_host++;
    set->loads++;
    slora_adapter_list_push(&set->host_lru, a, SLORA_HOST_LINK);
}


/* Copies tensor t (A [r, in] or B [out, r]) into the page images. */
static int
slora_adapter_fill(const slora_model_config_t *cfg,
    slora_adapter_image_t *img, const slora_tensor_t *t, int32_t layer,
    int proj, int is_b, float *tmp, slora_err_t *err)
{
    int32_t   r, rank, row, j, in, out, want0, want1, heads;
    float    *base, *dst;
    int64_t   layer_elems;

    rank = img->conf.rank;
    in = slora_proj_in_dim(cfg, proj);
    out = slora_proj_out_dim(cfg, proj);
    want0 = is_b ? out : rank;
    want1 = is_b ? rank : in;

    if (t->n_dims != 2 || t->dims[0] != want0 || t->dims[1] != want1) {
        return slora_err_set(err, SLORA_ERROR, "tensor %s: shape [%lld, %lld]"
                             ", the model and r=%d want [%d, %d]", t->name,
                             (long long) t->dims[0],
                             (long long) (t->n_dims > 1 ? t->dims[1] : 0),
                             rank, want0, want1);
    }

    if (slora_tensor_to_f32(t, tmp, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    for (j = 0; j < (int32_t) t->n_elems; j++) {
        if (!isfinite(tmp[j])) {
            return slora_err_set(err, SLORA_ERROR, "tensor %s: element %d "
                                 "is not finite", t->name, j);
        }
    }

    if (is_b && cfg->rope == SLORA_ROPE_NORM
        && (proj == SLORA_PROJ_Q || proj == SLORA_PROJ_K))
    {
        heads = proj == SLORA_PROJ_Q ? cfg->n_heads : cfg->n_kv_heads;
        if (slora_model_permute_qk_rows(tmp, heads, cfg->head_dim, rank)
            != SLORA_OK)
        {
            return slora_err_set(err, SLORA_ERROR, "tensor %s: cannot "
                                 "permute rows for rope", t->name);
        }
    }

    layer_elems = (int64_t) img->plan.n_pages * img->plan.page_elems;
    base = img->host + layer * layer_elems;

    for (r = 0; r < rank; r++) {
        row = img->plan.first_row[proj][is_b] + r;
        dst = base + img->plan.row_off[row];

        if (!is_b) {
            memcpy(dst, tmp + (size_t) r * in, (size_t) in * sizeof(float));

        } else {
            for (j = 0; j < out; j++) {
                dst[j] = tmp[(size_t) j * rank + r];
            }
        }
    }

    return SLORA_OK;
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


static int
slora_adapter_upload(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err)
{
    int       p;
    int32_t   l, k, run, n_pages;
    int64_t   pe, off, vpage;
    float    *src;

    n_pages = a->plan.n_pages;
    pe = a->plan.page_elems;

    for (l = 0; l < set->cfg.n_layers; l++) {
        src = a->host + (int64_t) l * n_pages * pe;

        /* runs of consecutive physical pages go in one copy */
        for (k = 0; k < n_pages; k += run) {
            run = 1;
            while (k + run < n_pages && a->pages[k + run] == a->pages[k] + run)
            {
                run++;
            }

            off = slora_pool_offset(set->pool, l, a->pages[k]);
            if (set->backend->write_arena(set->backend, off, src + k * pe,
                                          run * pe, err)
                != SLORA_OK)
            {
                return slora_err_prefix(err, "adapter %s", a->name);
            }
        }
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

    slora_adapter_list_remove(&set->idle_lru, a, SLORA_IDLE_LINK);
    a->on_idle = 0;

    slora_pool_release(set->pool, a->plan.n_pages, a->pages);
    free(a->pages);
    free(a->row_off);
    a->pages = NULL;
    a->row_off = NULL;

    set->in_pool--;
    set->evictions++;
}


static void
slora_adapter_drop_host(slora_adapters_t *set, slora_adapter_t *a)
{
    slora_adapter_list_remove(&set->host_lru, a, SLORA_HOST_LINK);
    free(a->host);
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


int
slora_adapter_write_random(const char *dir, const slora_model_config_t *cfg,
    const slora_adapter_gen_t *gen, slora_err_t *err)
{
    int                         p, side, rc;
    char                        path[1280], name[160];
    float                      *buf, amp;
    size_t                      max_elems;
    int32_t                     l, in, out;
    int64_t                     i, n, dims[2];
    slora_rng_t                 rng;
    slora_safetensors_writer_t *w;

    if (gen->rank < 1 || gen->rank > SLORA_ADAPTER_MAX_RANK
        || gen->proj_mask == 0 || gen->proj_mask >= (1u << SLORA_PROJ_N))
    {
        return slora_err_set(err, SLORA_ERROR, "mkadapter: rank 1..%d and "
                             "at least one target wanted",
                             SLORA_ADAPTER_MAX_RANK);
    }

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", dir,
                             strerror(errno));
    }

    if (slora_adapter_write_config(dir, gen, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    max_elems = (size_t) gen->rank
                * (size_t) (cfg->ffn > cfg->hidden ? cfg->ffn : cfg->hidden);
    if ((size_t) cfg->n_heads * cfg->head_dim > (size_t) cfg->hidden) {
        max_elems = (size_t) gen->rank * cfg->n_heads * cfg->head_dim;
    }

    buf = malloc(max_elems * sizeof(float));
    w = slora_safetensors_writer_new();

    if (buf == NULL || w == NULL) {
        free(buf);
        slora_safetensors_writer_free(w);
        return slora_err_set(err, SLORA_ERROR, "mkadapter: no memory");
    }

    slora_rng_seed(&rng, gen->seed);
    rc = SLORA_ERROR;

    /*
     * A ~ U(-1, 1) * sqrt(3 / in) has unit variance per input, so (Ax)_i
     * has the size of an rms element of x; B ~ U(-1, 1) * scale *
     * sqrt(3 / r) keeps B(Ax) at scale times that.
     */
    for (l = 0; l < cfg->n_layers; l++) {
        for (p = 0; p < SLORA_PROJ_N; p++) {
            if (!(gen->proj_mask & (1u << p))) {
                continue;
            }

            in = slora_proj_in_dim(cfg, p);
            out = slora_proj_out_dim(cfg, p);

            for (side = 0; side < 2; side++) {
                dims[0] = side ? out : gen->rank;
                dims[1] = side ? gen->rank : in;
                n = dims[0] * dims[1];
                amp = side ? (gen->scale > 0 ? gen->scale : 0.5f)
                             * sqrtf(3.0f / (float) gen->rank)
                           : sqrtf(3.0f / (float) in);

                for (i = 0; i < n; i++) {
                    buf[i] = amp * (float) (2 * slora_rng_uniform(&rng) - 1);
                }

                snprintf(name, sizeof(name), "base_model.model.model.layers."
                         "%d.%s.lora_%c.weight", l,
                         slora_adapter_proj_path[p], side ? 'B' : 'A');

                if (slora_safetensors_writer_tensor(w, name, SLORA_DT_F32, 2,
                                                    dims, buf, err)
                    != SLORA_OK)
                {
                    goto done;
                }
            }
        }
    }

    snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
    rc = slora_safetensors_writer_write(w, path, err);

done:

    free(buf);
    slora_safetensors_writer_free(w);

    return rc;
}


static int
slora_adapter_write_config(const char *dir, const slora_adapter_gen_t *gen,
    slora_err_t *err)
{
    int     p, first, rc;
    char    path[1280];
    FILE   *f;

    snprintf(path, sizeof(path), "%s/adapter_config.json", dir);

    f = fopen(path, "w");
    if (f == NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: %s", path,
                             strerror(errno));
    }

    fprintf(f, "{\n  \"peft_type\": \"LORA\",\n  \"task_type\": "
               "\"CAUSAL_LM\",\n  \"r\": %d,\n  \"lora_alpha\": %g,\n"
               "  \"lora_dropout\": 0.0,\n  \"bias\": \"none\",\n"
               "  \"fan_in_fan_out\": false,\n  \"use_rslora\": false,\n"
               "  \"target_modules\": [", gen->rank,
            gen->alpha > 0 ? gen->alpha : (double) gen->rank);

    first = 1;
    for (p = 0; p < SLORA_PROJ_N; p++) {
        if (gen->proj_mask & (1u << p)) {
            fprintf(f, "%s\"%s\"", first ? "" : ", ", slora_proj_name(p));
            first = 0;
        }
    }

    fprintf(f, "],\n  \"slora_seed\": %llu\n}\n",
            (unsigned long long) gen->seed);

    rc = ferror(f);
    if (fclose(f) != 0 || rc) {
        return slora_err_set(err, SLORA_ERROR, "%s: write error", path);
    }

    return SLORA_OK;
}
