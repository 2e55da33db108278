/*
 * slora_pool.h: the unified paged pool (S-LoRA section 5.1). One arena
 * holds KV-cache pages and adapter-weight pages together; the pool only
 * hands out page ids and keeps the books. The memory itself belongs to
 * the backend (host memory on the CPU, device memory on a GPU), so the
 * same code serves both.
 *
 * Geometry. The arena is laid out [n_layers][n_pages][page_elems]: page p
 * is the same page id in every layer, so one page table per request and
 * one page list per adapter serve all layers. page_elems is a multiple of
 * 2 * kv_dim (a page holds tokens_per_page tokens' K then V, exactly) and
 * of every LoRA row width (hidden, kv_dim, ffn), so on a grouped-query
 * model, where the K/V row is narrower than a LoRA row, both kinds tile a
 * page with no padding.
 *
 * KV page layout, per layer: K[tokens_per_page][kv_dim] then
 * V[tokens_per_page][kv_dim]. Adapter pages hold rows placed by the
 * adapter code (slora_adapter.c); a row never straddles two pages.
 *
 * Tensor parallelism. With slices = N (the GPUs of a tensor-parallel
 * group; 1 without), every page is N equal parts of page_elems / N
 * elements, and GPU s holds part s of every page, so its own arena is
 * laid out [n_layers][n_pages][page_elems / N]. Pages are slice-major:
 * an adapter row of width W planned at in-page offset q keeps its slice s
 * (elements [s * W / N, (s + 1) * W / N), Megatron's split: A rows by
 * input columns, B^T rows by output columns) in part s at offset q / N,
 * that is at page_start + s * (page_elems / N) + q / N of the host image,
 * and on GPU s at row_off / N of its arena. A KV page's part s holds GPU
 * s's kv heads, K[tokens_per_page][kv_dim / N] then V likewise. So that
 * every part is whole, hidden, kv_dim, ffn (hence page_elems, every row
 * width and every in-page offset) are multiples of N. With N = 1 a page
 * is one part and all of this is the layout above.
 */

#ifndef SLORA_POOL_H
#define SLORA_POOL_H


#include "slora_core.h"


typedef enum {
    SLORA_PAGE_FREE = 0,
    SLORA_PAGE_KV,
    SLORA_PAGE_ADAPTER,
    SLORA_PAGE_CACHED,                  /* KV the prefix cache keeps and
                                           no request holds: reclaimable */
    SLORA_PAGE_KIND_N
} slora_page_kind_e;


typedef struct {
    int32_t     n_layers;
    int32_t     kv_dim;
    int32_t     hidden;
    int32_t     ffn;
    size_t      elem_size;              /* 4 for f32, 2 for bf16 */
    int32_t     min_tokens_per_page;    /* 0: default 8 */
    int32_t     slices;                 /* tensor-parallel parts of every
                                         * page, 0 or 1: one */
} slora_pool_geom_t;


typedef struct slora_pool_s  slora_pool_t;


/* Sizes the pool to fit arena_bytes; fails if not even 2 pages fit. */
slora_pool_t *slora_pool_create(const slora_pool_geom_t *g,
    size_t arena_bytes, slora_err_t *err);
void slora_pool_free(slora_pool_t *pool);

int32_t slora_pool_n_pages(const slora_pool_t *pool);
int64_t slora_pool_page_elems(const slora_pool_t *pool);
int32_t slora_pool_tokens_per_page(const slora_pool_t *pool);
size_t slora_pool_arena_bytes(const slora_pool_t *pool);   /* used part */
/* Tensor-parallel parts of every page, 1 or more. */
int32_t slora_pool_slices(const slora_pool_t *pool);

/* Element offset of (layer, page) from the arena's start. */
int64_t slora_pool_offset(const slora_pool_t *pool, int32_t layer,
    int32_t page);
/* Element offset of layer's first page: rows of adapters are stored as
 * offsets relative to it, the same in every layer. */
int64_t slora_pool_layer_offset(const slora_pool_t *pool, int32_t layer);

/* Takes n free pages for kind into pages[]; all or nothing.
 * Returns SLORA_BUSY when fewer than n are free. */
int slora_pool_alloc(slora_pool_t *pool, slora_page_kind_e kind, int32_t n,
    int32_t *pages);
void slora_pool_release(slora_pool_t *pool, int32_t n, const int32_t *pages);

int32_t slora_pool_count(const slora_pool_t *pool, slora_page_kind_e kind);
/* A KV page becoming CACHED (its last holder let go of it, the prefix
 * cache keeps it) or back; no other change of kind goes through here. */
void slora_pool_set_kind(slora_pool_t *pool, int32_t page,
    slora_page_kind_e kind);

/*
 * Reclaimable pages: whoever keeps CACHED pages (the prefix cache) gives
 * the pool a function that releases up to n of them and returns how many
 * it did. slora_pool_reclaim() has it release enough for n_free pages to
 * be free, if it can, and returns the free count; allocators call it
 * before they evict anything of their own.
 */
typedef int32_t (*slora_pool_reclaim_pt)(void *data, int32_t n);

void slora_pool_set_reclaim(slora_pool_t *pool, slora_pool_reclaim_pt fn,
    void *data);
int32_t slora_pool_reclaim(slora_pool_t *pool, int32_t n_free);

/* Kind of one page (fragmentation reports, tests). */
slora_page_kind_e slora_pool_page_kind(const slora_pool_t *pool,
    int32_t page);


#endif /* SLORA_POOL_H */
