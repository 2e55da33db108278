/*
 * slora_pool.c: the books of the unified paged pool: its geometry, a free
 * list, the kind of every page and a count per kind. The memory the pages
 * stand for belongs to the backend; this file never touches it.
 *
 * The one idea: page_elems is the least common multiple of the K+V row
 * of a token and every LoRA row width, grown until a page holds enough
 * tokens, so KV pages and adapter rows both tile a page exactly. The free
 * list is a stack of page ids: alloc and release are O(1) per page, and an
 * allocation takes all the pages it asks for or none. With tensor-parallel
 * slices every width is a multiple of their number, hence page_elems too,
 * and a page splits into equal parts, one per GPU.
 */

#include <stdlib.h>
#include <string.h>

#include "slora_pool.h"


#define SLORA_POOL_DEFAULT_TOKENS  8


struct slora_pool_s {
    slora_pool_geom_t   geom;
    int32_t             n_pages;
    int64_t             page_elems;
    int32_t             tokens_per_page;
    int32_t            *free_stack;     /* [n_pages], top at n_free - 1 */
    int32_t             n_free;
    uint8_t            *kind;           /* [n_pages]: slora_page_kind_e */
    int32_t             counts[SLORA_PAGE_KIND_N];
    slora_pool_reclaim_pt  reclaim;     /* CACHED pages' keeper */
    void               *reclaim_data;
};


static int64_t slora_pool_gcd(int64_t a, int64_t b);
static int slora_pool_lcm(int64_t a, int64_t b, int64_t *out);


slora_pool_t *
slora_pool_create(const slora_pool_geom_t *g, size_t arena_bytes,
    slora_err_t *err)
{
    int32_t        i, min_tokens, slices;
    int64_t        base, elems, tpp, n;
    size_t         page_bytes;
    slora_pool_t  *pool;

    if (g->n_layers <= 0 || g->kv_dim <= 0 || g->hidden <= 0 || g->ffn <= 0
        || (g->elem_size != 2 && g->elem_size != 4) || g->slices < 0)
    {
        slora_err_set(err, SLORA_ERROR, "pool: bad geometry (layers %d, "
                      "kv_dim %d, hidden %d, ffn %d, elem %zu, slices %d)",
                      g->n_layers, g->kv_dim, g->hidden, g->ffn,
                      g->elem_size, g->slices);
        return NULL;
    }

    slices = g->slices > 0 ? g->slices : 1;

    if (g->hidden % slices != 0 || g->kv_dim % slices != 0
        || g->ffn % slices != 0)
    {
        slora_err_set(err, SLORA_ERROR, "pool: hidden %d, kv_dim %d and ffn "
                      "%d must all be multiples of the %d tensor-parallel "
                      "slices", g->hidden, g->kv_dim, g->ffn, slices);
        return NULL;
    }

    min_tokens = g->min_tokens_per_page > 0 ? g->min_tokens_per_page
                                            : SLORA_POOL_DEFAULT_TOKENS;

    base = 2 * (int64_t) g->kv_dim;

    /* (a multiple of 2 * kv_dim is one of kv_dim) */
    if (slora_pool_lcm(base, g->hidden, &base) != SLORA_OK
        || slora_pool_lcm(base, g->ffn, &base) != SLORA_OK)
    {
        slora_err_set(err, SLORA_ERROR, "pool: page size overflows for "
                      "kv_dim %d, hidden %d, ffn %d", g->kv_dim, g->hidden,
                      g->ffn);
        return NULL;
    }

    /* the smallest multiple of base holding min_tokens tokens */
    tpp = base / (2 * (int64_t) g->kv_dim);
    n = (min_tokens + tpp - 1) / tpp;
    elems = base * n;
    tpp *= n;

    if (elems > ((int64_t) 1 << 40) || tpp > INT32_MAX) {
        slora_err_set(err, SLORA_ERROR, "pool: page of %lld elements is too "
                      "large", (long long) elems);
        return NULL;
    }

    /* follows from the widths above; a guard should the sizing change */
    if (elems % slices != 0) {
        slora_err_set(err, SLORA_ERROR, "pool: page of %lld elements does "
                      "not split in %d tensor-parallel slices",
                      (long long) elems, slices);
        return NULL;
    }

    page_bytes = (size_t) elems * g->elem_size * (size_t) g->n_layers;
    n = (int64_t) (arena_bytes / page_bytes);

    if (n < 2) {
        slora_err_set(err, SLORA_ERROR, "pool: %zu bytes hold fewer than 2 "
                      "pages of %zu bytes (all layers)", arena_bytes,
                      page_bytes);
        return NULL;
    }

    if (n > INT32_MAX / 2) {
        n = INT32_MAX / 2;
    }

    pool = calloc(1, sizeof(slora_pool_t));
    if (pool == NULL) {
        slora_err_set(err, SLORA_ERROR, "pool: out of memory");
        return NULL;
    }

    pool->free_stack = malloc((size_t) n * sizeof(int32_t));
    pool->kind = calloc((size_t) n, 1);

    if (pool->free_stack == NULL || pool->kind == NULL) {
        slora_pool_free(pool);
        slora_err_set(err, SLORA_ERROR, "pool: out of memory for %lld pages",
                      (long long) n);
        return NULL;
    }

    pool->geom = *g;
    pool->geom.min_tokens_per_page = min_tokens;
    pool->geom.slices = slices;
    pool->n_pages = (int32_t) n;
    pool->page_elems = elems;
    pool->tokens_per_page = (int32_t) tpp;

    /* low ids on top, so a fresh pool hands out pages 0, 1, 2, ... */
    for (i = 0; i < pool->n_pages; i++) {
        pool->free_stack[i] = pool->n_pages - 1 - i;
    }

    pool->n_free = pool->n_pages;
    pool->counts[SLORA_PAGE_FREE] = pool->n_pages;

    return pool;
}


void
slora_pool_free(slora_pool_t *pool)
{
    if (pool == NULL) {
        return;
    }

    free(pool->free_stack);
    free(pool->kind);
    free(pool);
}


int32_t
slora_pool_n_pages(const slora_pool_t *pool)
{
    return pool->n_pages;
}


int64_t
slora_pool_page_elems(const slora_pool_t *pool)
{
    return pool->page_elems;
}


int32_t
slora_pool_tokens_per_page(const slora_pool_t *pool)
{
    return pool->tokens_per_page;
}


size_t
slora_pool_arena_bytes(const slora_pool_t *pool)
{
    return (size_t) pool->n_pages * (size_t) pool->page_elems
           * pool->geom.elem_size * (size_t) pool->geom.n_layers;
}


int32_t
slora_pool_slices(const slora_pool_t *pool)
{
    return pool->geom.slices;
}


int64_t
slora_pool_offset(const slora_pool_t *pool, int32_t layer, int32_t page)
{
    slora_assert(layer >= 0 && layer < pool->geom.n_layers);
    slora_assert(page >= 0 && page < pool->n_pages);

    return ((int64_t) layer * pool->n_pages + page) * pool->page_elems;
}


int64_t
slora_pool_layer_offset(const slora_pool_t *pool, int32_t layer)
{
    slora_assert(layer >= 0 && layer < pool->geom.n_layers);

    return (int64_t) layer * pool->n_pages * pool->page_elems;
}


int
slora_pool_alloc(slora_pool_t *pool, slora_page_kind_e kind, int32_t n,
    int32_t *pages)
{
    int32_t  i, p;

    slora_assert(kind == SLORA_PAGE_KV || kind == SLORA_PAGE_ADAPTER);
    slora_assert(n >= 0);

    if (n > pool->n_free) {
        return SLORA_BUSY;
    }

    for (i = 0; i < n; i++) {
        p = pool->free_stack[--pool->n_free];
        slora_assert(pool->kind[p] == SLORA_PAGE_FREE);
        pool->kind[p] = (uint8_t) kind;
        pages[i] = p;
    }

    pool->counts[SLORA_PAGE_FREE] -= n;
    pool->counts[kind] += n;

    return SLORA_OK;
}


void
slora_pool_release(slora_pool_t *pool, int32_t n, const int32_t *pages)
{
    int32_t  i, p;

    for (i = 0; i < n; i++) {
        p = pages[i];
        slora_assert(p >= 0 && p < pool->n_pages);
        slora_assert(pool->kind[p] != SLORA_PAGE_FREE);   /* double free */

        pool->counts[pool->kind[p]]--;
        pool->counts[SLORA_PAGE_FREE]++;
        pool->kind[p] = SLORA_PAGE_FREE;
        pool->free_stack[pool->n_free++] = p;
    }
}


void
slora_pool_set_kind(slora_pool_t *pool, int32_t page, slora_page_kind_e kind)
{
    slora_assert(page >= 0 && page < pool->n_pages);
    slora_assert((kind == SLORA_PAGE_CACHED
                  && pool->kind[page] == SLORA_PAGE_KV)
                 || (kind == SLORA_PAGE_KV
                     && pool->kind[page] == SLORA_PAGE_CACHED));

    pool->counts[pool->kind[page]]--;
    pool->counts[kind]++;
    pool->kind[page] = (uint8_t) kind;
}


void
slora_pool_set_reclaim(slora_pool_t *pool, slora_pool_reclaim_pt fn,
    void *data)
{
    pool->reclaim = fn;
    pool->reclaim_data = data;
}


int32_t
slora_pool_reclaim(slora_pool_t *pool, int32_t n_free)
{
    if (pool->n_free < n_free && pool->reclaim != NULL
        && pool->counts[SLORA_PAGE_CACHED] > 0)
    {
        pool->reclaim(pool->reclaim_data, n_free - pool->n_free);
    }

    return pool->n_free;
}


int32_t
slora_pool_count(const slora_pool_t *pool, slora_page_kind_e kind)
{
    slora_assert(kind >= 0 && kind < SLORA_PAGE_KIND_N);

    return pool->counts[kind];
}


slora_page_kind_e
slora_pool_page_kind(const slora_pool_t *pool, int32_t page)
{
    slora_assert(page >= 0 && page < pool->n_pages);

    return (slora_page_kind_e) pool->kind[page];
}


static int64_t
slora_pool_gcd(int64_t a, int64_t b)
{
    int64_t  t;

    while (b != 0) {
        t = a % b;
        a = b;
        b = t;
    }

    return a;
}


static int
slora_pool_lcm(int64_t a, int64_t b, int64_t *out)
{
    int64_t  q;

    q = a / slora_pool_gcd(a, b);

    if (q > ((int64_t) 1 << 40) / b) {
        return SLORA_ERROR;
    }

    *out = q * b;
    return SLORA_OK;
}
