/*
 * slora_prefetch.h: the prefetch threads (a small fixed pool), which read
 * adapters from disk into host page images ahead of need, so that the
 * engine's thread only copies host images into the pool. Several images
 * are built at once; a key's load is only ever built by one thread.
 *
 * The one idea: the threads share nothing with the adapter set. A load
 * is given a folder and gets back an image (slora_adapter_image_load(), a
 * pure function); the engine's thread takes finished images and installs
 * them with slora_adapters_install(), which refuses an image read for a
 * source that has changed since (gen). A load is known by its key (the
 * caller's adapter, or the registration the engine has read), so the
 * engine can ask whether one is out for an adapter, and settle it rather
 * than read the same folder twice.
 */

#ifndef SLORA_PREFETCH_H
#define SLORA_PREFETCH_H


#include "slora_core.h"
#include "slora_adapter.h"


#define SLORA_PREFETCH_MAX      16      /* loads queued or running */
#define SLORA_PREFETCH_THREADS  4       /* the default's upper bound */


typedef struct slora_prefetch_s  slora_prefetch_t;


typedef struct {
    void                    *key;       /* the caller's */
    uint64_t                 gen;
    int                      status;    /* SLORA_OK: img is filled */
    slora_adapter_image_t    img;
    slora_err_t              err;
} slora_prefetch_done_t;


/* Images are for the pool's pages: page_elems and slices as
 * slora_pool_page_elems() and slora_pool_slices() say, their host copies
 * from mem (NULL: the heap; it outlives the prefetch). n_threads loads
 * run at once, 1 to SLORA_PREFETCH_MAX; 0: half the cores, 1 to
 * SLORA_PREFETCH_THREADS. wake_fd (or -1) gets an 8-byte write when a
 * load finishes. Freeing waits for the running loads (joins every
 * thread) and drops the others. */
slora_prefetch_t *slora_prefetch_create(const slora_model_config_t *cfg,
    int64_t page_elems, int32_t slices, const slora_host_mem_t *mem,
    int32_t n_threads, int wake_fd, slora_err_t *err);
void slora_prefetch_free(slora_prefetch_t *p);

/* Queues a load. SLORA_BUSY: SLORA_PREFETCH_MAX are out; SLORA_DECLINED:
 * key is out already. */
int slora_prefetch_submit(slora_prefetch_t *p, void *key, uint64_t gen,
    const char *name, const char *dir, const char *sha256);

/* Takes one finished load into out: 1, or 0 when none is finished. */
int slora_prefetch_take(slora_prefetch_t *p, slora_prefetch_done_t *out);

/* 1 if a load of key is queued, running, or finished and not taken. */
int slora_prefetch_pending(slora_prefetch_t *p, const void *key);

/*
 * Ends the uncertainty about key's load, for a caller about to read the
 * folder itself: a load still queued is withdrawn, a running one is
 * waited for. Returns 1 if a finished load of key waits to be taken.
 */
int slora_prefetch_settle(slora_prefetch_t *p, const void *key);

int32_t slora_prefetch_out(slora_prefetch_t *p);

/* The threads; the loads running now; the most ever running at once. */
int32_t slora_prefetch_threads(slora_prefetch_t *p);
int32_t slora_prefetch_running(slora_prefetch_t *p);
int32_t slora_prefetch_peak_running(slora_prefetch_t *p);


#endif /* SLORA_PREFETCH_H */
