/*
 * slora_backend.h: the one vtable behind which the engine computes. A
 * backend owns the weights in its own memory, the pool's arena, and the
 * forward pass over a slora_batch_t. The CPU backend is the reference;
 * the CUDA backend (a separate .so the engine dlopen()s) must match it
 * op by op, which t/kernels checks.
 */

#ifndef SLORA_BACKEND_H
#define SLORA_BACKEND_H


#include "slora_core.h"
#include "slora_model.h"
#include "slora_batch.h"


typedef struct slora_backend_s  slora_backend_t;

struct slora_backend_s {
    const char  *name;              /* "cpu", "cuda" */
    size_t       elem_size;         /* arena element: 4 (f32), 2 (bf16) */

    /* Takes what it needs of m; m outlives the backend. Once: a second
     * model is refused (what the first one's weights took stays theirs
     * until free). */
    int   (*load_model)(slora_backend_t *b, const slora_model_t *m,
                        slora_err_t *err);
    /* Allocates the pool's arena of the given size, zeroed, in pages of
     * page_elems (whole slice-major pages are what a tensor-parallel
     * backend splits over its GPUs, slora_pool.h). */
    int   (*alloc_arena)(slora_backend_t *b, size_t bytes,
                         int64_t page_elems, slora_err_t *err);
    /* Copies n f32 values to arena elements [off, off + n). A backend
     * with fence may only have enqueued the copy when it returns. */
    int   (*write_arena)(slora_backend_t *b, int64_t off, const float *src,
                         int64_t n, slora_err_t *err);
    /* The same for n whole pages of page_elems values, contiguous from
     * src, page i to the arena page starting at element dst[i]: an
     * adapter's page images, in one call (slora_backend_write_pages), of
     * values elem_size bytes each: 4 (f32), or 2 (bf16) for a backend
     * whose host_mem asks for them. NULL: write_arena a page at a time,
     * f32 only. */
    int   (*write_pages)(slora_backend_t *b, const void *src,
                         int32_t elem_size, int32_t n, int64_t page_elems,
                         const int64_t *dst, slora_err_t *err);
    /* The next forward waits for every write made before this call, not
     * for later ones, which may still be on their way while it runs (the
     * adapter uploads made ahead of need). NULL: writes are done when
     * write_arena returns. */
    int   (*fence)(slora_backend_t *b, slora_err_t *err);
    /* Reads arena elements back as f32 (tests, debugging). */
    int   (*read_arena)(slora_backend_t *b, int64_t off, float *dst,
                        int64_t n, slora_err_t *err);
    /* pool_layer_off[l]: element offset of layer l's region; page_elems
     * and tokens_per_page as the pool computed them. */
    int   (*forward)(slora_backend_t *b, const slora_batch_t *batch,
                     const int64_t *pool_layer_off, int64_t page_elems,
                     int32_t tokens_per_page, slora_err_t *err);
    /* Device memory still free, for sizing the pool; NULL on the CPU,
     * whose arena is host memory. */
    size_t (*mem_free)(slora_backend_t *b);
    void  (*free)(slora_backend_t *b);

    /* where host copies of adapters go (zeroed: the heap) */
    slora_host_mem_t   host_mem;

    /* forward draws the rows batch->draws names (slora_batch.h); 0: the
     * engine samples such rows itself from the logits */
    int                draws;

    /* forward scores the rows batch->score_tok names (slora_batch.h);
     * 0: the engine scores them itself from their logits */
    int                scores;

    /* load_model takes a random model whose weights were left out
     * (slora_model_t.random_deferred) and makes them itself */
    int                makes_random;

    /* how long the last forward kept the device busy, from its first
     * launch to its results' copy back (the first GPU's, with tensor
     * parallelism; 0: not measured, as on the CPU); the rest of a step
     * is the host's */
    int64_t            device_ns;

    /* the last forward captured a new decode graph (0: it replayed one,
     * ran without, or runs on the CPU): a capture costs the host every
     * launch of the step and an instantiation, which a replay does not */
    int32_t            captured;

    /* host time the last forward spent making what later forwards
     * reuse: cuBLASLt's plans for GEMM shapes new to the backend (rank
     * 0's with tensor parallelism; 0 on the CPU), which makes a cold
     * step slow once */
    int64_t            setup_ns;

    /* how long the last forward spent in attention over the KV pages
     * (0: not measured, as on the GPU), for the step-time model's
     * context term (slora_sched.h) */
    int64_t            attention_ns;

    void        *data;
};


/* weights: "f32" (or NULL), the exact path; "q8_0": projections and the
 * output matrix quantized to Q8_0 at load (slora_qmatmul.h); "native":
 * the matrices a GGUF file holds as Q4_1 keep their blocks (packed for
 * slora_q4_1_matmul), every other one goes to Q8_0 as with "q8_0". */
slora_backend_t *slora_backend_cpu_create(int n_threads, const char *weights,
    slora_err_t *err);

/* The backend a device names: "cpu" (or NULL), or "cuda" / "cuda:N",
 * which dlopen()s the CUDA backend from lib (NULL: $SLORA_CUDA_LIB, else
 * "libslora_cuda.so" on the loader's path) and creates it on GPU N (0),
 * or with tp > 1 over GPUs N..N+tp-1 (tensor parallelism; the CPU takes
 * tp 1 only). The library stays loaded for the life of the process. */
slora_backend_t *slora_backend_open(const char *device, int32_t tp,
    int n_threads, const char *weights, const char *lib, slora_err_t *err);

/* b->write_pages, or write_arena for each page where b has none (f32
 * pages only). */
int slora_backend_write_pages(slora_backend_t *b, const void *src,
    int32_t elem_size, int32_t n, int64_t page_elems, const int64_t *dst,
    slora_err_t *err);


#endif /* SLORA_BACKEND_H */
