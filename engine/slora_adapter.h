/*
 * slora_adapter.h: LoRA adapters and their two memory tiers. An adapter
 * is a Hugging Face PEFT folder (adapter_config.json and
 * adapter_model.safetensors). The host tier holds its weights as f32 page
 * images in host memory, under a byte budget (LRU); the pool tier holds
 * them in pages of the unified pool, where the LoRA kernels read them.
 *
 * The one idea: an adapter is planned once into pages (its "page plan":
 * which virtual page and offset each row of A and of B^T takes, the same
 * in every layer), and its host copy is already laid out page by page, so
 * making it resident is a page allocation and one copy per layer. Running
 * requests pin their adapter (a reference count); only idle adapters are
 * evicted, least recently used first.
 *
 * Disk reads may happen on another thread: slora_adapter_image_load() is
 * a pure function of a folder (and the sha256 the catalog expects), and
 * slora_adapters_install() hands its result to the set on the set's own
 * thread; everything else here belongs to the thread that owns the set.
 */

#ifndef SLORA_ADAPTER_H
#define SLORA_ADAPTER_H


#include "slora_core.h"
#include "slora_catalog.h"
#include "slora_model.h"
#include "slora_pool.h"
#include "slora_batch.h"
#include "slora_backend.h"
#include "slora_sha256.h"


#define SLORA_ADAPTER_MAX_RANK  1024


/* What adapter_config.json says, checked against the model. */
typedef struct {
    int32_t          rank;
    float            alpha;
    float            scale;         /* alpha / r, or alpha / sqrt(r) */
    uint32_t         proj_mask;     /* 1 << SLORA_PROJ_* */
    int              rslora;
} slora_adapter_conf_t;


/*
 * Where the rows of one adapter go, per layer. Rows are numbered
 * projection by projection (SLORA_PROJ_* order): rank rows of A, then
 * rank rows of B^T. row_off[i] = vpage * page_elems + offset in the page;
 * a row never straddles two pages. With slices N > 1 (tensor
 * parallelism, slora_pool.h) every width and offset is a multiple of N
 * and a row is stored as N slices, one in each part of its page:
 * slora_adapter_row_put() is the one place that knows how.
 */
typedef struct {
    int64_t          page_elems;
    int32_t          slices;                /* parts of a page, >= 1 */
    int32_t          n_pages;
    int32_t          n_rows;
    int64_t          used_elems;            /* per layer */
    int32_t          first_row[SLORA_PROJ_N][2];    /* A, B; -1: none */
    int64_t         *row_off;               /* [n_rows] */
    int32_t         *row_width;             /* [n_rows] */
} slora_adapter_plan_t;


typedef struct slora_adapter_s   slora_adapter_t;
typedef struct slora_adapters_s  slora_adapters_t;


/* Where an adapter's weights are. */
typedef enum {
    SLORA_TIER_DISK = 0,            /* registered, nothing read */
    SLORA_TIER_HOST,                /* page images in host memory */
    SLORA_TIER_POOL                 /* in pool pages */
} slora_tier_e;


/*
 * What a PEFT folder's two files were when an adapter was read from it
 * (stat(): device, inode, size, mtime, ctime of adapter_config.json and
 * of adapter_model.safetensors). A file rewritten in place keeps its
 * name and the folder's mtime, not these.
 */
typedef struct {
    uint64_t               dev;
    uint64_t               ino;
    int64_t                size;
    int64_t                mtime_ns;
    int64_t                ctime_ns;
} slora_file_stamp_t;

typedef struct {
    slora_file_stamp_t     config;
    slora_file_stamp_t     weights;
    int                    valid;       /* 0: not a folder (random) */
} slora_adapter_stamp_t;


/* An adapter read from disk into page images, not yet in a set. */
typedef struct {
    slora_adapter_conf_t   conf;
    slora_adapter_plan_t   plan;
    void                  *host;    /* [n_layers][n_pages][page_elems],
                                     * pages slice-major, values of
                                     * elem_size bytes: f32 or bf16 */
    size_t                 bytes;
    int32_t                elem_size;   /* slora_host_elem_size(mem) */
    const slora_host_mem_t *mem;    /* where host came from */
    slora_adapter_stamp_t  stamp;   /* the files, taken before reading */
} slora_adapter_image_t;


typedef struct {
    int32_t          in_pool;
    int32_t          in_host;
    size_t           host_bytes;
    int64_t          pool_elems;            /* pages * page_elems, 1 layer */
    int64_t          pool_used_elems;       /* rows in those pages */
    uint64_t         loads;                 /* disk -> host */
    uint64_t         uploads;               /* host -> pool */
    uint64_t         evictions;             /* from the pool */
    uint64_t         hits;                  /* acquired while resident */
    size_t           host_budget;
    uint64_t         host_hits;             /* upload from the host copy */
    uint64_t         host_misses;           /* upload needed a disk read */
    uint64_t         host_evictions;        /* host copies dropped (LRU) */
    uint64_t         prefetched;            /* images installed */
    uint64_t         warmed;                /* uploaded ahead of need */
    uint64_t         load_errors;           /* disk reads that failed */
    int32_t          pinned;                /* pinned by the admin */
    int32_t          pin_pages;             /* the pool pages they hold */
    int32_t          pin_cap;               /* ... at most */
} slora_adapters_stats_t;


/*
 * Adapters with random weights named by a spec where a folder would be
 * (slora_adapter_random.c): "random:rank=R,targets=q+v,seed=S,scale=X"
 * is one adapter, "random:n=N,ranks=8+16,targets=...,seed=S" a catalog
 * of N (r0000, r0001, ...). read_config and image_load take either.
 */
#define SLORA_ADAPTER_RANDOM_RANKS  16

typedef struct {
    int32_t          n;                     /* catalog: how many */
    int32_t          ranks[SLORA_ADAPTER_RANDOM_RANKS];
    int32_t          n_ranks;
    uint32_t         proj_mask;
    uint64_t         seed;
    float            scale;
} slora_adapter_random_t;

int slora_adapter_is_random(const char *dir);
/* want_n: a catalog's spec (n=, ranks=), else one adapter's (rank=). */
int slora_adapter_random_spec(const char *spec, int want_n,
    slora_adapter_random_t *rs, slora_err_t *err);
int slora_adapter_random_config(const char *spec, slora_adapter_conf_t *conf,
    slora_err_t *err);
int slora_adapter_image_random(const slora_model_config_t *cfg,
    int64_t page_elems, int32_t slices, const slora_host_mem_t *mem,
    const char *name, const char *spec, slora_adapter_image_t *img,
    slora_err_t *err);
/* Entry i of a catalog spec: its name and its one-adapter spec. */
int slora_adapter_random_entry(const slora_adapter_random_t *cat, int32_t i,
    char *name, size_t name_size, char *spec, size_t spec_size);


/* Parses dir/adapter_config.json (at most 1 MiB, read as
 * slora_adapter_file_read() reads) and checks it against the model. */
int slora_adapter_read_config(const char *dir, const slora_model_config_t *cfg,
    slora_adapter_conf_t *conf, slora_err_t *err);

/* Plans rows into pages of page_elems elements, each of slices parts
 * (1: no tensor parallelism); refuses a width slices does not divide. */
int slora_adapter_plan(const slora_model_config_t *cfg,
    const slora_adapter_conf_t *conf, int64_t page_elems, int32_t slices,
    slora_adapter_plan_t *plan, slora_err_t *err);
void slora_adapter_plan_free(slora_adapter_plan_t *plan);

/*
 * Stores row `row` (src: its row_width values in logical order) into
 * layer, one layer's page images ([n_pages][page_elems], values of
 * elem_size bytes: 4 as they are, 2 rounded to bf16): slice s of the
 * row at page_start + s * (page_elems / slices) + q / slices, where q is
 * its offset in the page. The writers of page images all go through it.
 */
void slora_adapter_row_put(const slora_adapter_plan_t *plan, void *layer,
    int32_t elem_size, int32_t row, const float *src);

/* img's host copy for n_layers layers of its plan's pages, zeroed, from
 * mem in mem's value size (img->mem, elem_size and bytes are set);
 * SLORA_ERROR without memory. Layer l's images start at
 * slora_adapter_image_layer(img, l). */
int slora_adapter_image_alloc(slora_adapter_image_t *img, int32_t n_layers,
    const slora_host_mem_t *mem);
void *slora_adapter_image_layer(const slora_adapter_image_t *img,
    int32_t layer);

/*
 * A PEFT folder's file dir/file read whole (slora_adapter_file.c). *dfd
 * is the folder, opened at the first call (-1 before it; the caller
 * closes it), and file is opened relative to it: a symlink is refused,
 * not followed, and so is anything but a regular file (a FIFO, a device,
 * a folder), or one of more than max bytes. Its fstat() size is read
 * into a malloc()ed *buf (a NUL after its *len bytes) that the caller
 * frees; a file cut short while it is read is an error.
 */
int slora_adapter_file_read(int *dfd, const char *dir, const char *file,
    size_t max, uint8_t **buf, size_t *len, slora_err_t *err);
/* Hex sha256 of dir/file, opened as slora_adapter_file_read() does. */
int slora_adapter_file_sha256(const char *dir, const char *file,
    char hex[SLORA_SHA256_HEX], slora_err_t *err);


/* The stamp of folder dir's files now; a file that cannot be stat()ed
 * has a stamp of zeros. */
void slora_adapter_stamp(const char *dir, slora_adapter_stamp_t *stamp);
int slora_adapter_stamp_same(const slora_adapter_stamp_t *a,
    const slora_adapter_stamp_t *b);

/*
 * Reads the PEFT folder dir into img, for pages of page_elems elements in
 * slices parts (slora_pool_slices()), its host copy from mem (NULL: the
 * heap); name only labels errors. adapter_model.safetensors is read once
 * into memory and parsed there; with sha256 (hex, not NULL or ""), the
 * bytes read must hash to it. Every tensor is checked before the host
 * copy is allocated, and the plan has rows only for the modules that
 * have weights (img->conf.proj_mask: those of target_modules with
 * tensors). Touches no shared state: any thread may call it.
 */
int slora_adapter_image_load(const slora_model_config_t *cfg,
    int64_t page_elems, int32_t slices, const slora_host_mem_t *mem,
    const char *name, const char *dir, const char *sha256,
    slora_adapter_image_t *img, slora_err_t *err);
void slora_adapter_image_free(slora_adapter_image_t *img);


/*
 * The tiers. cfg, pool and backend outlive the set; host_budget is the
 * host tier's byte budget (the adapter being made resident may exceed it
 * on its own).
 */
slora_adapters_t *slora_adapters_create(const slora_model_config_t *cfg,
    slora_pool_t *pool, slora_backend_t *backend, size_t host_budget,
    slora_err_t *err);
void slora_adapters_free(slora_adapters_t *set);

/* Registers an adapter by name and folder; nothing is read yet.
 * SLORA_DECLINED: the name is taken. */
int slora_adapters_add(slora_adapters_t *set, const char *name,
    const char *dir, slora_adapter_t **out, slora_err_t *err);
slora_adapter_t *slora_adapters_find(slora_adapters_t *set, const char *name);
int32_t slora_adapters_count(const slora_adapters_t *set);
slora_adapter_t *slora_adapters_get(slora_adapters_t *set, int32_t i);

/*
 * Makes a resident in the pool and pins it: reads it from disk into the
 * host tier if needed, then evicts idle adapters (LRU) if the pool lacks
 * pages. SLORA_BUSY: the pool has no room even so (nothing changes);
 * SLORA_ERROR: the adapter cannot be read (err says why).
 */
int slora_adapter_acquire(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err);
void slora_adapter_release(slora_adapters_t *set, slora_adapter_t *a);

/*
 * Uploads a, which is in host memory only, into free pool pages while
 * at least reserve pages stay free after it, and leaves it idle: the
 * upload may run beside the step being computed (slora_backend_t.fence),
 * and the step that admits a's request finds it resident. The prefix
 * cache's idle KV pages count as free and are reclaimed for it; no
 * adapter is evicted for it. SLORA_DECLINED: a is not in host memory
 * only, or the pages are not free; SLORA_ERROR: the upload failed.
 */
int slora_adapters_warm(slora_adapters_t *set, slora_adapter_t *a,
    int32_t reserve, slora_err_t *err);

/* Has the pool reclaim the prefix cache's idle KV pages, then evicts
 * idle adapters, least recently used first, until at least n_free pages
 * are free or none is idle. Returns how many adapters it evicted. */
int32_t slora_adapters_evict(slora_adapters_t *set, int32_t n_free);

/*
 * Points a at another source (folder, expected sha256, version; NULL
 * sha256 or version: none). When any differs, the copies read from the
 * old source are dropped: at once if idle, at the last release if running
 * requests hold it (until then it is not acquired again: SLORA_BUSY); an
 * admin pin is dropped. Returns 1 when the source changed, 0 if not,
 * SLORA_ERROR without memory.
 */
int slora_adapters_set_source(slora_adapters_t *set, slora_adapter_t *a,
    const char *dir, const char *sha256, const char *version,
    slora_err_t *err);

/*
 * Looks at the files a's copies were read from (a folder's, not a random
 * adapter's): where they were rewritten in place and neither has changed
 * for a second (a writer done with them, not half way), the copies are
 * dropped as for a new source (gen bumped; the pool copy at
 * the last release where requests hold it; an admin pin dropped), and
 * the next use reads the files again. Returns 1 then, else 0. Two
 * stat()s; a driver calls it for the adapters in host memory or the pool
 * every second or so.
 */
int slora_adapters_check_files(slora_adapters_t *set, slora_adapter_t *a);

/*
 * Gives a the host copy img read (off this thread) from the source of
 * generation gen. SLORA_DECLINED: a has a host copy already, its source
 * changed since, or it has a pool copy that img was not read from (the
 * files' stamp or the plan differ: rewritten in place, not yet settled);
 * the caller frees img. SLORA_OK: img is taken.
 */
int slora_adapters_install(slora_adapters_t *set, slora_adapter_t *a,
    uint64_t gen, slora_adapter_image_t *img);

/* Admin pin: a is made resident and never evicted until unpinned.
 * SLORA_BUSY where the pins would hold more than the cap's pages. */
int slora_adapter_pin(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err);
/* SLORA_DECLINED if a was not pinned. */
int slora_adapter_unpin(slora_adapters_t *set, slora_adapter_t *a);
/* The pool pages pins may hold together; half the pool unless set. */
void slora_adapters_set_pin_cap(slora_adapters_t *set, int32_t pages);

/* Drops a from the pool and the host tier. SLORA_BUSY: requests or an
 * admin pin hold it. */
int slora_adapters_unload(slora_adapters_t *set, slora_adapter_t *a,
    slora_err_t *err);

const char *slora_adapter_name(const slora_adapter_t *a);
const char *slora_adapter_dir(const slora_adapter_t *a);
/* The expected sha256 of its weights, or NULL. */
const char *slora_adapter_sha256(const slora_adapter_t *a);
/* Bumped by every change of source. */
uint64_t slora_adapter_gen(const slora_adapter_t *a);
int32_t slora_adapter_refs(const slora_adapter_t *a);
slora_tier_e slora_adapter_tier(const slora_adapter_t *a);
int slora_adapter_in_host(const slora_adapter_t *a);
int slora_adapter_pinned(const slora_adapter_t *a);
size_t slora_adapter_host_bytes(const slora_adapter_t *a);
int32_t slora_adapter_n_pages(const slora_adapter_t *a);
/* The rank adapter_config.json gave, once read; else 0. */
int32_t slora_adapter_rank(const slora_adapter_t *a);
/* The kernels' view; valid while the adapter is pinned. */
const slora_lora_t *slora_adapter_lora(const slora_adapter_t *a);
/* The plan of an adapter read at least once, else NULL. */
const slora_adapter_plan_t *slora_adapter_get_plan(const slora_adapter_t *a);

void slora_adapters_stats(const slora_adapters_t *set,
    slora_adapters_stats_t *st);


/* A random adapter in PEFT layout (slora mkadapter, tests). */
typedef struct {
    int32_t          rank;
    float            alpha;         /* 0: rank */
    uint32_t         proj_mask;
    uint64_t         seed;
    float            scale;         /* size of B(Ax) relative to x; 0: 0.5 */
} slora_adapter_gen_t;

int slora_adapter_write_random(const char *dir,
    const slora_model_config_t *cfg, const slora_adapter_gen_t *gen,
    slora_err_t *err);


#endif /* SLORA_ADAPTER_H */
