/*
 * slora_cuda_upload.c: a GPU's arena, and what reaches it from the host
 * and comes back: weights at load, adapter rows as the pool places them,
 * the host tier's pinned memory they come from, and the fences that
 * order the compute stream after them.
 *
 * The one idea: everything goes on the upload stream, in order, through
 * the f32 device staging buffer used as a ring, and the host never waits
 * for it: the ring is reused in stream order, a fence records the point
 * the next forward waits for on the GPU (slora_cuda_rank_forward), and
 * a host copy is freed only after the last write that read it. From the
 * host tier's pinned pages the copy engine reads the rows itself; other
 * memory (weights) goes through a pinned staging buffer first.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cuda_int.h"
#include "slora_convert.h"
#include "slora_spares.h"


static int slora_cuda_stage(slora_cuda_t *c, const void *src, size_t elem,
    int64_t rows,
    int64_t width, int64_t ld, int pinned, int64_t *pos, slora_err_t *err);
static int slora_cuda_pinned(const void *p);
static int slora_cuda_wrote(slora_cuda_t *c, int rc, int64_t n, int64_t t0,
    slora_err_t *err);


/*
 * The host tier's memory (slora_host_mem_t) for n GPUs' uploads: pinned
 * pages that any GPU's copy engine reads directly
 * (slora_cuda_upload_cols), or heap memory once the system pins no more.
 * A freed image is kept as a spare (engine/slora_spares.h) with a mark:
 * an event on each GPU's upload stream after the writes enqueued so far,
 * so that neither the engine's thread that frees it waits for those
 * writes nor a loader thread pins the next image afresh. Any thread may
 * call these.
 */

typedef struct {
    int32_t       n;
    cudaEvent_t   ev[SLORA_CUDA_TP_MAX];
} slora_cuda_mark_t;


static void *
slora_cuda_host_pin(void *ctx, size_t bytes)
{
    slora_cuda_host_t  *h = ctx;
    void               *p;

    if (cudaSetDevice(h->rank[0]->device) != cudaSuccess
        || cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess)
    {
        cudaGetLastError();
        return malloc(bytes);
    }

    return p;
}


static void
slora_cuda_host_unpin(void *ctx, void *p)
{
    (void) ctx;

    slora_cuda_host_release(p);
}


static void
slora_cuda_host_unmark(void *ctx, void *mark)
{
    slora_cuda_mark_t  *m = mark;
    int32_t             r;

    (void) ctx;

    for (r = 0; r < m->n; r++) {
        cudaEventDestroy(m->ev[r]);
    }

    free(m);
}


/* The calling thread's device is the same after as before: the engine's
 * thread marks, and under tensor parallelism it works on GPU 0. */
static void *
slora_cuda_host_mark(void *ctx)
{
    slora_cuda_host_t  *h = ctx;
    slora_cuda_mark_t  *m;
    slora_cuda_t       *c;
    int32_t             r;
    int                 dev;
    cudaError_t         ce;

    m = calloc(1, sizeof(*m));
    if (m == NULL || cudaGetDevice(&dev) != cudaSuccess) {
        cudaGetLastError();
        free(m);
        return NULL;
    }

    for (r = 0; r < h->n; r++) {
        c = h->rank[r];

        pthread_mutex_lock(&c->upload_lock);
        ce = cudaSetDevice(c->device);
        if (ce == cudaSuccess) {
            ce = cudaEventCreateWithFlags(&m->ev[r], cudaEventDisableTiming);
        }
        if (ce == cudaSuccess) {
            m->n++;
            ce = cudaEventRecord(m->ev[r], c->upload);
        }
        pthread_mutex_unlock(&c->upload_lock);

        if (ce != cudaSuccess) {
            cudaGetLastError();
            slora_cuda_host_unmark(ctx, m);
            m = NULL;
            break;
        }
    }

    if (cudaSetDevice(dev) != cudaSuccess) {
        cudaGetLastError();
    }

    return m;
}


static int
slora_cuda_host_passed(void *ctx, void *mark)
{
    slora_cuda_mark_t  *m = mark;
    int32_t             r;

    (void) ctx;

    for (r = 0; r < m->n; r++) {
        if (cudaEventQuery(m->ev[r]) != cudaSuccess) {
            cudaGetLastError();     /* not ready is no error */
            return 0;
        }
    }

    return 1;
}


static void
slora_cuda_host_drain(void *ctx)
{
    slora_cuda_host_t  *h = ctx;
    int32_t             r;
    int                 dev;

    if (cudaGetDevice(&dev) != cudaSuccess) {
        cudaGetLastError();
        dev = h->rank[0]->device;
    }

    for (r = 0; r < h->n; r++) {
        if (cudaSetDevice(h->rank[r]->device) != cudaSuccess
            || cudaStreamSynchronize(h->rank[r]->upload) != cudaSuccess)
        {
            cudaGetLastError();
        }
    }

    if (cudaSetDevice(dev) != cudaSuccess) {
        cudaGetLastError();
    }
}


int
slora_cuda_host_init(slora_cuda_host_t *h, slora_cuda_t *const *rank,
    int32_t n, slora_host_mem_t *mem, slora_err_t *err)
{
    int32_t              r;
    slora_spares_conf_t  conf;

    memset(h, 0, sizeof(*h));
    h->n = n;

    for (r = 0; r < n; r++) {
        h->rank[r] = rank[r];
    }

    memset(&conf, 0, sizeof(conf));
    conf.alloc = slora_cuda_host_pin;
    conf.release = slora_cuda_host_unpin;
    conf.mark = slora_cuda_host_mark;
    conf.passed = slora_cuda_host_passed;
    conf.unmark = slora_cuda_host_unmark;
    conf.drain = slora_cuda_host_drain;
    conf.ctx = h;
    conf.max_bytes = SLORA_CUDA_SPARE_BYTES;

    h->spares = slora_spares_create(&conf);
    if (h->spares == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of "
                             "memory");
    }

    mem->alloc = slora_cuda_host_alloc;
    mem->free = slora_cuda_host_free;
    mem->ctx = h;
    mem->elem_size = 2;            /* the pool is bf16: images too */

    return SLORA_OK;
}


/* Before the GPUs' streams go: waits for their uploads, unpins every
 * spare. The host tier's images must all have been freed. */
void
slora_cuda_host_done(slora_cuda_host_t *h)
{
    slora_spares_free(h->spares);
    h->spares = NULL;
}


void *
slora_cuda_host_alloc(void *ctx, size_t bytes)
{
    slora_cuda_host_t  *h = ctx;

    return slora_spares_get(h->spares, bytes);
}


/* p is free for reuse once the uploads enqueued so far have read it. */
void
slora_cuda_host_free(void *ctx, void *p, size_t bytes)
{
    slora_cuda_host_t  *h = ctx;

    slora_spares_put(h->spares, p, bytes);
}


/* The next forward waits for the uploads enqueued so far (the upload
 * stream is in order, so its last point covers them all). */

int
slora_cuda_rank_fence(slora_cuda_t *c, slora_err_t *err)
{
    int  rc;

    pthread_mutex_lock(&c->upload_lock);
    rc = slora_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err);
    if (rc == SLORA_OK) {
        rc = slora_cuda_check(cudaEventRecord(c->uploaded, c->upload),
                              "upload fence", err);
    }
    pthread_mutex_unlock(&c->upload_lock);

    return rc;
}


void
slora_cuda_host_release(void *p)
{
    struct cudaPointerAttributes  attr;

    if (cudaPointerGetAttributes(&attr, p) == cudaSuccess
        && attr.type == cudaMemoryTypeHost)
    {
        cudaFreeHost(p);
        return;
    }

    cudaGetLastError();
    free(p);
}


/* n f32 host values to bf16 device values (slora_cuda_upload_cols). */

int
slora_cuda_upload(slora_cuda_t *c, uint16_t *dst, const float *src,
    int64_t n, slora_err_t *err)
{
    return slora_cuda_upload_cols(c, dst, src, 1, n, n, err);
}


/*
 * rows x width f32 values, each row ld apart in src (a shard's columns,
 * or one row of any length), to a dense bf16 block at dst, on the
 * upload stream, staged a piece at a time (slora_cuda_stage).
 */

int
slora_cuda_upload_cols(slora_cuda_t *c, uint16_t *dst, const float *src,
    int32_t rows, int64_t width, int64_t ld, slora_err_t *err)
{
    const float  *s;
    int64_t       i, k, n, w, r, per, pos;
    int           pinned;

    pinned = slora_cuda_pinned(src);

    /* one row goes in pieces of the staging size, several rows in whole
     * rows at a time */
    per = rows == 1 ? 1 : SLORA_CUDA_STAGE / width;
    n = rows == 1 ? width : rows;

    for (i = 0; i < n; i += k) {
        if (rows == 1) {
            k = n - i < SLORA_CUDA_STAGE ? n - i : SLORA_CUDA_STAGE;
            w = k;
            r = 1;
            s = src + i;

        } else {
            k = n - i < per ? n - i : per;
            w = width;
            r = k;
            s = src + i * ld;
        }

        if (slora_cuda_stage(c, s, sizeof(float), r, w, ld, pinned, &pos,
                             err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (slora_convert_bf16_cuda(dst + (rows == 1 ? i : i * width),
                                    (const float *) ((char *) c->stage + pos),
                                    r * w, c->upload)
            != 0)
        {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: bf16 "
                                 "conversion refused");
        }
    }

    return SLORA_OK;
}


/*
 * rows x width values of elem bytes (f32, or bf16 pages), each row ld
 * values apart in src, into the device staging buffer, used as a ring,
 * at byte *pos (16-byte aligned). From pinned memory (the host
 * tier's copies, slora_cuda_host_alloc) the copy engine reads src
 * itself; other memory is first copied into the pinned staging buffer,
 * which waits for its last transfer. Nothing else here waits for the
 * device: the ring is reused in stream order, and the caller orders its
 * readers after the upload stream.
 */

static int
slora_cuda_stage(slora_cuda_t *c, const void *src, size_t elem, int64_t rows,
    int64_t width, int64_t ld, int pinned, int64_t *pos, slora_err_t *err)
{
    int64_t  j, bytes;

    bytes = rows * width * (int64_t) elem;

    if (c->ring + bytes > SLORA_CUDA_STAGE_BYTES) {
        c->ring = 0;
    }

    *pos = c->ring;
    c->ring += (bytes + 15) / 16 * 16;

    if (!pinned) {
        if (slora_cuda_check(cudaStreamSynchronize(c->upload), "upload", err)
            != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        for (j = 0; j < rows; j++) {
            memcpy((char *) c->stage_host + j * width * (int64_t) elem,
                   (const char *) src + j * ld * (int64_t) elem,
                   (size_t) width * elem);
        }

        src = c->stage_host;
        ld = width;
    }

    return slora_cuda_check(cudaMemcpy2DAsync((char *) c->stage + *pos,
                                              (size_t) width * elem, src,
                                              (size_t) ld * elem,
                                              (size_t) width * elem,
                                              (size_t) rows,
                                              cudaMemcpyHostToDevice,
                                              c->upload),
                            "upload", err);
}


/* Whether the copy engine may read p directly (page-locked memory). */
static int
slora_cuda_pinned(const void *p)
{
    struct cudaPointerAttributes  attr;
    int                           pinned;

    pinned = cudaPointerGetAttributes(&attr, p) == cudaSuccess
             && attr.type == cudaMemoryTypeHost;
    cudaGetLastError();

    return pinned;
}


int
slora_cuda_rank_write(slora_cuda_t *c, int64_t off, const float *src,
    int64_t n, slora_err_t *err)
{
    if (n < 0 || n > INT32_MAX) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: write of %lld "
                             "elements", (long long) n);
    }

    return slora_cuda_rank_write_cols(c, off, src, 1, (int32_t) n, n, err);
}


/* rows x width values of src, each row ld apart, to a dense run of the
 * arena at off: adapter pages, or a rank's part of slice-major ones */

int
slora_cuda_rank_write_cols(slora_cuda_t *c, int64_t off, const float *src,
    int32_t rows, int32_t width, int64_t ld, slora_err_t *err)
{
    int64_t  n, t0;
    int      rc;

    n = (int64_t) rows * width;
    t0 = slora_now_ns();

    if (c->arena == NULL || off < 0 || rows < 0 || width < 0
        || (rows > 1 && width > SLORA_CUDA_STAGE) || ld < width
        || off > c->arena_elems
        || n > c->arena_elems - off || (n > 0 && src == NULL))
    {
        return slora_err_set(err, SLORA_ERROR,
                             "cuda backend: write of %lld elements at %lld "
                             "outside the arena of %lld", (long long) n,
                             (long long) off, (long long) c->arena_elems);
    }

    if (n == 0) {
        return SLORA_OK;
    }

    pthread_mutex_lock(&c->upload_lock);

    /* the device is per thread: the caller may be another thread; the
     * step after the next fence waits for the upload
     * (slora_cuda_rank_forward), nothing here does */
    rc = slora_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err);
    if (rc == SLORA_OK) {
        rc = slora_cuda_upload_cols(c, c->arena + off, src, rows, width, ld,
                                    err);
    }

    rc = slora_cuda_wrote(c, rc, n, t0, err);

    pthread_mutex_unlock(&c->upload_lock);

    return rc;
}


/*
 * The end of a write of n values begun at t0 (rc: how it went): the
 * point host copies wait for before they are freed, and what the write
 * cost the thread that made it ($SLORA_CUDA_PROFILE).
 */

static int
slora_cuda_wrote(slora_cuda_t *c, int rc, int64_t n, int64_t t0,
    slora_err_t *err)
{
    if (rc == SLORA_OK) {
        rc = slora_cuda_check(cudaEventRecord(c->written, c->upload),
                              "adapter upload", err);
    }

    if (rc != SLORA_OK) {
        /* the pages go back to the pool: nothing queued may still write
         * them once a new owner's KV is there */
        (void) cudaStreamSynchronize(c->upload);
        (void) cudaGetLastError();
    }

    if (c->prof != NULL) {
        c->prof->writes++;
        c->prof->write_mb += (double) n * sizeof(float) / 1e6;
        c->prof->write_host_ms += (double) (slora_now_ns() - t0) / 1e6;
    }

    return rc;
}


/* The arena: allocated and zeroed before anything reaches it. */
int
slora_cuda_rank_arena(slora_cuda_t *c, size_t bytes, slora_err_t *err)
{
    void  *p;

    if (bytes < sizeof(uint16_t) || bytes % SLORA_CUDA_ALIGN != 0) {
        return slora_err_set(err, SLORA_ERROR,
                             "cuda backend: arena of %zu bytes", bytes);
    }

    if (slora_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError();
        return slora_err_set(err, SLORA_ERROR, "cuda backend: GPU %d: cannot "
                             "allocate an arena of %zu bytes (%zu free)",
                             c->device, bytes, slora_cuda_rank_mem_free(c));
    }

    /*
     * zeroed on the compute stream and waited for: cudaMemset runs on the
     * legacy stream, which the non-blocking upload stream does not wait
     * on, so an adapter's first upload could land before the zeroing of
     * tens of gigabytes and be zeroed after it
     */
    if (slora_cuda_check(cudaMemsetAsync(p, 0, bytes, c->stream), "arena",
                         err)
        != SLORA_OK
        || slora_cuda_check(cudaStreamSynchronize(c->stream), "arena", err)
           != SLORA_OK)
    {
        cudaFree(p);
        return SLORA_ERROR;
    }

    cudaFree(c->arena);
    c->arena = p;
    /* decode graphs captured the old arena's addresses */
    c->graphs_stale = 1;
    c->arena_elems = (int64_t) (bytes / sizeof(uint16_t));

    return SLORA_OK;
}


/*
 * Part `part` of `parts` of n page images (all of a page when parts is
 * 1), contiguous from src, to this GPU's arena pages at dst[i] / parts
 * (a rank's offsets are the pool's divided by the GPUs, slora_pool.h):
 * one copy into the staging ring and one scattering conversion (f32
 * images) or copy (bf16 images, elem_size 2) for up to
 * SLORA_CONVERT_PAGES pages, so an adapter costs the writing thread a
 * few calls, not two a page. A part is a multiple of 8 elements, as the
 * scatter's 16-byte rows want.
 */

int
slora_cuda_rank_write_pages(slora_cuda_t *c, const void *src,
    int32_t elem_size, int32_t n, int64_t page_elems, const int64_t *dst,
    int32_t part, int32_t parts, slora_err_t *err)
{
    int64_t      w, pos, off[SLORA_CONVERT_PAGES], t0;
    int32_t      i, j, k, per;
    int          pinned, rc, cv;
    const char  *s;
    void        *staged;

    w = page_elems / parts;

    if (c->arena == NULL || n < 0 || parts < 1 || part < 0 || part >= parts
        || page_elems <= 0 || page_elems % parts != 0
        || (elem_size != 4 && elem_size != 2)
        || w % 8 != 0 || w * elem_size > SLORA_CUDA_STAGE_BYTES
        || (n > 0 && (src == NULL || dst == NULL)))
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: a write of %d "
                             "pages of %lld %d-byte elements in %d parts "
                             "refused", n, (long long) page_elems, elem_size,
                             parts);
    }

    for (i = 0; i < n; i++) {
        if (dst[i] < 0 || dst[i] % page_elems != 0
            || dst[i] / parts > c->arena_elems - w)
        {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: page at "
                                 "%lld outside the arena of %lld",
                                 (long long) dst[i],
                                 (long long) c->arena_elems);
        }
    }

    if (n == 0) {
        return SLORA_OK;
    }

    t0 = slora_now_ns();
    pinned = slora_cuda_pinned(src);
    per = (int32_t) (SLORA_CUDA_STAGE_BYTES / (w * elem_size));
    per = per < SLORA_CONVERT_PAGES ? per : SLORA_CONVERT_PAGES;

    pthread_mutex_lock(&c->upload_lock);

    rc = slora_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err);

    for (i = 0; rc == SLORA_OK && i < n; i += k) {
        k = n - i < per ? n - i : per;
        s = (const char *) src
            + ((int64_t) i * page_elems + part * w) * elem_size;
        rc = slora_cuda_stage(c, s, (size_t) elem_size, k, w, page_elems,
                              pinned, &pos, err);

        for (j = 0; j < k; j++) {
            off[j] = dst[i + j] / parts;
        }

        if (rc != SLORA_OK) {
            break;
        }

        /* f32 images are converted as they land, bf16 ones copied */
        staged = (char *) c->stage + pos;
        cv = elem_size == 4
             ? slora_convert_pages_bf16_cuda(c->arena, off,
                                             (const float *) staged, k, w,
                                             c->upload)
             : slora_copy_pages_bf16_cuda(c->arena, off,
                                          (const uint16_t *) staged, k, w,
                                          c->upload);
        if (cv != 0) {
            rc = slora_err_set(err, SLORA_ERROR, "cuda backend: the page "
                               "scatter was refused");
        }
    }

    rc = slora_cuda_wrote(c, rc, (int64_t) n * w, t0, err);

    pthread_mutex_unlock(&c->upload_lock);

    return rc;
}


int
slora_cuda_rank_read(slora_cuda_t *c, int64_t off, float *dst, int64_t n,
    slora_err_t *err)
{
    uint16_t      *tmp;
    int64_t        i;

    if (slora_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err)
        != SLORA_OK
        || slora_cuda_check(cudaStreamSynchronize(c->upload), "upload", err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (c->arena == NULL || off < 0 || n < 0 || off > c->arena_elems
        || n > c->arena_elems - off || (n > 0 && dst == NULL))
    {
        return slora_err_set(err, SLORA_ERROR,
                             "cuda backend: read of %lld elements at %lld "
                             "outside the arena of %lld", (long long) n,
                             (long long) off, (long long) c->arena_elems);
    }

    if (n == 0) {
        return SLORA_OK;
    }

    tmp = malloc((size_t) n * sizeof(uint16_t));
    if (tmp == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
    }

    if (slora_cuda_check(cudaMemcpy(tmp, c->arena + off,
                                    (size_t) n * sizeof(uint16_t),
                                    cudaMemcpyDeviceToHost),
                         "arena read", err)
        != SLORA_OK)
    {
        free(tmp);
        return SLORA_ERROR;
    }

    for (i = 0; i < n; i++) {
        dst[i] = slora_bf16_to_f32(tmp[i]);
    }

    free(tmp);

    return SLORA_OK;
}
