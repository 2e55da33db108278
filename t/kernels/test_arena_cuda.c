/*
 * test_arena_cuda.c: the CUDA backend's arena against the writes that
 * follow its allocation at once (run on the device machine by
 * bench/device-engine.sh; it needs a GPU).
 *
 * alloc_arena zeroes the arena; an adapter's pages written right after
 * it must read back as written, whatever the zeroing's length. The
 * zeroing once ran on the legacy stream, which the non-blocking upload
 * stream does not wait for: pages written within the tens of
 * milliseconds a large arena takes to clear were cleared after they
 * landed, and an adapter did nothing. The arena here is most of the
 * GPU's free memory and the pages are its last ones, which the zeroing
 * reaches last.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "slora_backend.h"
#include "slora_model.h"


#define PAGE_ELEMS  8192
#define N_WRITE     16


int
main(void)
{
    int               round, all;
    size_t            bytes, free_mem;
    float            *src, *back;
    int64_t           i, n_pages, dst[N_WRITE];
    slora_err_t       err;
    slora_model_t    *m;
    slora_backend_t  *be;

    m = slora_model_random("random:llama-7b,layers=1,vocab=1024,seed=3",
                           &err);
    if (m == NULL) {
        BAIL_OUT("model: %s", err.msg);
    }

    src = malloc(N_WRITE * PAGE_ELEMS * sizeof(float));
    back = malloc(N_WRITE * PAGE_ELEMS * sizeof(float));
    if (src == NULL || back == NULL) {
        BAIL_OUT("no memory");
    }

    for (i = 0; i < N_WRITE * PAGE_ELEMS; i++) {
        src[i] = 1.0f + (float) (i % 97);
    }

    for (round = 0; round < 3; round++) {
        be = slora_backend_open("cuda", 1, 1, NULL, NULL, &err);
        if (be == NULL || be->load_model(be, m, &err) != SLORA_OK) {
            BAIL_OUT("cuda backend: %s", err.msg);
        }

        free_mem = be->mem_free(be);
        bytes = free_mem / 10 * 8;
        bytes -= bytes % (PAGE_ELEMS * sizeof(uint16_t));
        n_pages = (int64_t) (bytes / (PAGE_ELEMS * sizeof(uint16_t)));

        if (be->alloc_arena(be, bytes, PAGE_ELEMS, &err) != SLORA_OK) {
            BAIL_OUT("arena of %zu bytes: %s", bytes, err.msg);
        }

        /* at once: the last pages, which a zeroing reaches last */
        for (i = 0; i < N_WRITE; i++) {
            dst[i] = (n_pages - N_WRITE + i) * PAGE_ELEMS;
        }

        if (slora_backend_write_pages(be, src, 4, N_WRITE, PAGE_ELEMS, dst,
                                      &err)
            != SLORA_OK
            || (be->fence != NULL && be->fence(be, &err) != SLORA_OK)
            || be->read_arena(be, dst[0], back,
                              (int64_t) N_WRITE * PAGE_ELEMS, &err)
               != SLORA_OK)
        {
            BAIL_OUT("write or read back: %s", err.msg);
        }

        all = 1;
        for (i = 0; i < N_WRITE * PAGE_ELEMS && all; i++) {
            all = back[i] == src[i];
        }

        ok(all, "round %d: an arena of %.1f GB, its last %d pages written"
           " at once read back as written%s", round, (double) bytes / 1e9,
           N_WRITE, all ? "" : " (found zeros: the zeroing came after)");

        be->free(be);
    }

    free(src);
    free(back);
    slora_model_free(m);

    return done_testing();
}
