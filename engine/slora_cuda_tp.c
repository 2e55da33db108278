/*
 * slora_cuda_tp.c: tensor parallelism, one model over N GPUs of one host
 * (S-LoRA section 6, Megatron's split). The backend it returns holds one
 * slora_cuda_t a GPU, each a rank with 1/N of the heads, KV heads and
 * FFN (slora_cuda_rank_load), and one thread a GPU: rank 0 computes on
 * the engine's own thread, ranks 1..N-1 on threads of their own, all
 * running the same step at once. The engine above sees one backend: one
 * pool, one scheduler, one arena whose every page is split N ways.
 *
 * The one idea: the pool's pages are slice-major (slora_pool.h), so
 * rank r's arena is part r of every page, and every offset a rank uses
 * is the pool's divided by N. Adapter pages are scattered to the GPUs
 * as they are written; KV pages only ever exist on the GPUs.
 *
 * The ranks' sums (the partial outputs of o and down, LoRA's x A) go
 * through the one-shot all-reduce over NVLink peer memory when they fit
 * (kernels/slora_allreduce.cu), and through NCCL otherwise, with NCCL's
 * NVLink multicast off. NCCL is dlopen()ed here, so a single GPU never
 * needs it.
 *
 * Environment: SLORA_TP_ALLREDUCE=nccl sends every sum through NCCL;
 * SLORA_TP_LORA_COMM=0 skips LoRA's sums (wrong answers: the ablation
 * of S-LoRA's figure 8); SLORA_TP_SHARE_GPUS=1 lets N exceed the GPUs
 * from the first one, rank r on GPU first + r mod GPUs: for checking a
 * split of 4 or 8 on a host of fewer GPUs (its tokens, not its speed).
 * Ranks that share a GPU share its memory, and their sums go through
 * the one-shot kernel's staging in pieces of its capacity (NCCL takes
 * one rank a GPU) but not through its barrier, which spins on the GPU:
 * there it held SMs that a peer's cuBLASLt GEMM waited for, and the
 * GPU's context was lost (bench/RESULTS.md, 2026-11-30 22:09-22:25).
 * The ranks' threads meet at each sum instead (slora_cuda_share_t), and
 * no decode graph is kept. As every wait a stream then holds is for work
 * already enqueued, nothing on a GPU waits for a rank's thread, so a
 * thread that waits on the host for its GPU waits for finite work.
 * With a GPU a rank, a sum on one GPU does wait for its peers' parts:
 * a rank that fails after the step's meeting breaks the meeting, and
 * its peers, which wait for their GPUs polling, stop waiting
 * (slora_cuda_step_wait); the step is then fatal.
 */

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nccl.h>

#include "slora_cuda_int.h"


typedef struct slora_cuda_tp_s  slora_cuda_tp_t;

typedef int (*slora_cuda_tp_job_pt)(slora_cuda_tp_t *tp, int32_t r,
    slora_err_t *err);


typedef struct {
    slora_cuda_tp_t          *tp;
    int32_t                   r;
    uint64_t                  gen;              /* the last job run */
} slora_cuda_tp_worker_t;


struct slora_cuda_tp_s {
    int32_t                   n;
    int32_t                   per_gpu;          /* ranks on a GPU, most */
    slora_meet_t              meet;             /* the ranks' threads */
    slora_cuda_share_t        share;            /* for shared GPUs */
    slora_cuda_t             *rank[SLORA_CUDA_TP_MAX];
    ncclComm_t                nccl[SLORA_CUDA_TP_MAX];
    slora_allreduce_t        *ar[SLORA_CUDA_TP_MAX];

    pthread_t                 thread[SLORA_CUDA_TP_MAX];
    slora_cuda_tp_worker_t    worker[SLORA_CUDA_TP_MAX];
    int32_t                   n_threads;
    pthread_mutex_t           lock;
    pthread_cond_t            go;
    pthread_cond_t            done;
    uint64_t                  gen;
    int32_t                   pending;
    int                       quit;
    slora_cuda_tp_job_pt      job;
    int                       rc[SLORA_CUDA_TP_MAX];
    slora_err_t               err[SLORA_CUDA_TP_MAX];

    /* the job's arguments */
    const slora_model_t      *model;
    size_t                    rank_bytes;
    const slora_batch_t      *batch;
    int64_t                  *layer_off;        /* a rank's, [n_layers] */
    int32_t                   n_layers;
    int64_t                   page_elems;       /* the pool's */
    int32_t                   tokens_per_page;
};


/* The few NCCL entry points used, from libnccl.so.2. */
typedef struct {
    void                     *lib;
    ncclResult_t            (*init_all)(ncclComm_t *comm, int n,
                                        const int *devs);
    ncclResult_t            (*destroy)(ncclComm_t comm);
    ncclResult_t            (*abort)(ncclComm_t comm);
    ncclResult_t            (*all_reduce)(const void *send, void *recv,
                                          size_t count, ncclDataType_t type,
                                          ncclRedOp_t op, ncclComm_t comm,
                                          cudaStream_t stream);
    const char             *(*error)(ncclResult_t rc);
} slora_nccl_t;


static slora_nccl_t      slora_nccl;
static pthread_mutex_t   slora_nccl_lock = PTHREAD_MUTEX_INITIALIZER;


static int slora_cuda_allreduce_shared(slora_cuda_t *c, void *buf,
    int64_t n, int f32, slora_err_t *err);
static int slora_nccl_load(slora_err_t *err);
static int slora_cuda_tp_run(slora_cuda_tp_t *tp, slora_cuda_tp_job_pt job,
    slora_err_t *err);
static void *slora_cuda_tp_thread(void *arg);
static int slora_cuda_tp_job_load(slora_cuda_tp_t *tp, int32_t r,
    slora_err_t *err);
static int slora_cuda_tp_job_arena(slora_cuda_tp_t *tp, int32_t r,
    slora_err_t *err);
static int slora_cuda_tp_job_forward(slora_cuda_tp_t *tp, int32_t r,
    slora_err_t *err);
static int slora_cuda_tp_job_close(slora_cuda_tp_t *tp, int32_t r,
    slora_err_t *err);

static int slora_cuda_tp_load_model(slora_backend_t *b,
    const slora_model_t *m, slora_err_t *err);
static int slora_cuda_tp_alloc_arena(slora_backend_t *b, size_t bytes,
    int64_t page_elems, slora_err_t *err);
static int slora_cuda_tp_write_arena(slora_backend_t *b, int64_t off,
    const float *src, int64_t n, slora_err_t *err);
static int slora_cuda_tp_read_arena(slora_backend_t *b, int64_t off,
    float *dst, int64_t n, slora_err_t *err);
static int slora_cuda_tp_pages(slora_cuda_tp_t *tp, int64_t off, int64_t n,
    const char *what, slora_err_t *err);
static void slora_cuda_tp_unwrite(slora_cuda_tp_t *tp, int32_t n);
static int slora_cuda_tp_forward(slora_backend_t *b,
    const slora_batch_t *batch, const int64_t *pool_layer_off,
    int64_t page_elems, int32_t tokens_per_page, slora_err_t *err);
static size_t slora_cuda_tp_mem_free(slora_backend_t *b);
static void slora_cuda_tp_free(slora_backend_t *b);
static int slora_cuda_tp_fence(slora_backend_t *b, slora_err_t *err);
static int slora_cuda_tp_write_pages(slora_backend_t *b, const void *src,
    int32_t elem_size, int32_t n, int64_t page_elems, const int64_t *dst,
    slora_err_t *err);


slora_backend_t *
slora_cuda_tp_create(int device, int32_t tp_n, slora_err_t *err)
{
    slora_backend_t    *b;
    slora_cuda_tp_t    *tp;
    slora_cuda_host_t  *h;
    const char         *how, *lora, *share;
    ncclResult_t        nr;
    int                 devs[SLORA_CUDA_TP_MAX], count, gpus, one_shot;
    int32_t             r;

    count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        count = 0;
    }

    share = getenv("SLORA_TP_SHARE_GPUS");
    gpus = tp_n;

    if (share != NULL && strcmp(share, "0") != 0 && device >= 0
        && device + tp_n > count)
    {
        gpus = count - device;
    }

    if (tp_n < 2 || tp_n > SLORA_CUDA_TP_MAX || device < 0 || gpus < 1
        || device + gpus > count)
    {
        slora_err_set(err, SLORA_ERROR, "cuda backend: tensor_parallel=%d "
                      "from GPU %d needs GPUs %d..%d, this host has %d "
                      "(at most %d a model; SLORA_TP_SHARE_GPUS=1 puts "
                      "several ranks on a GPU, to check a split's tokens)",
                      tp_n, device, device, device + tp_n - 1, count,
                      SLORA_CUDA_TP_MAX);
        return NULL;
    }

    if (gpus == tp_n && slora_nccl_load(err) != SLORA_OK) {
        return NULL;
    }

    b = calloc(1, sizeof(slora_backend_t));
    tp = calloc(1, sizeof(slora_cuda_tp_t));

    if (b == NULL || tp == NULL) {
        free(b);
        free(tp);
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
        return NULL;
    }

    if (slora_meet_init(&tp->meet, tp_n) != 0) {
        free(b);
        free(tp);
        slora_err_set(err, SLORA_ERROR, "cuda backend: cannot make the "
                      "ranks' meeting point");
        return NULL;
    }

    tp->n = tp_n;
    tp->per_gpu = (tp_n + gpus - 1) / gpus;
    pthread_mutex_init(&tp->lock, NULL);
    pthread_cond_init(&tp->go, NULL);
    pthread_cond_init(&tp->done, NULL);

    b->name = "cuda";
    b->elem_size = sizeof(uint16_t);
    b->load_model = slora_cuda_tp_load_model;
    b->alloc_arena = slora_cuda_tp_alloc_arena;
    b->write_arena = slora_cuda_tp_write_arena;
    b->write_pages = slora_cuda_tp_write_pages;
    b->fence = slora_cuda_tp_fence;
    b->read_arena = slora_cuda_tp_read_arena;
    b->forward = slora_cuda_tp_forward;
    b->draws = 1;
    b->scores = 1;
    b->makes_random = 1;
    b->mem_free = slora_cuda_tp_mem_free;
    b->free = slora_cuda_tp_free;
    b->data = tp;

    for (r = 0; r < tp_n; r++) {
        devs[r] = device + r % gpus;
        tp->rank[r] = slora_cuda_rank_create(devs[r], r, tp_n, err);
        if (tp->rank[r] == NULL) {
            slora_cuda_tp_free(b);
            return NULL;
        }
    }

    h = malloc(sizeof(slora_cuda_host_t));
    if (h == NULL) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
        slora_cuda_tp_free(b);
        return NULL;
    }

    if (slora_cuda_host_init(h, tp->rank, tp_n, &b->host_mem, err)
        != SLORA_OK)
    {
        free(h);
        slora_cuda_tp_free(b);
        return NULL;
    }

    /* NVLink multicast (NVLS) stays off: it can take a shared host's
     * GPUs out of service */
    setenv("NCCL_NVLS_ENABLE", "0", 1);

    if (gpus == tp_n) {
        nr = slora_nccl.init_all(tp->nccl, tp_n, devs);
        if (nr != ncclSuccess) {
            memset(tp->nccl, 0, sizeof(tp->nccl));
            slora_err_set(err, SLORA_ERROR, "cuda backend: NCCL over GPUs "
                          "%d..%d: %s", device, device + tp_n - 1,
                          slora_nccl.error(nr));
            slora_cuda_tp_free(b);
            return NULL;
        }
    }

    /* the one-shot kernel needs peer access between every pair, which
     * slora_allreduce_connect() enables; without it, NCCL does it all */
    how = getenv("SLORA_TP_ALLREDUCE");
    one_shot = gpus < tp_n || how == NULL || strcmp(how, "nccl") != 0;

    for (r = 0; one_shot && r < tp_n; r++) {
        cudaSetDevice(devs[r]);
        tp->ar[r] = slora_allreduce_create(r, tp_n, SLORA_CUDA_AR_CAP);
        one_shot = tp->ar[r] != NULL;
    }

    if (one_shot && slora_allreduce_connect(tp->ar, tp_n) != 0) {
        one_shot = 0;
    }

    if (!one_shot) {
        for (r = 0; r < tp_n; r++) {
            slora_allreduce_free(tp->ar[r]);
            tp->ar[r] = NULL;
        }
        cudaGetLastError();

        if (gpus < tp_n) {
            slora_err_set(err, SLORA_ERROR, "cuda backend: %d ranks on %d "
                          "GPUs need the one-shot all-reduce, which could "
                          "not be set up", tp_n, gpus);
            slora_cuda_tp_free(b);
            return NULL;
        }
    }

    lora = getenv("SLORA_TP_LORA_COMM");

    for (r = 0; r < tp_n; r++) {
        tp->rank[r]->comm.nccl = tp->nccl[r];
        tp->rank[r]->comm.ar = tp->ar[r];
        tp->rank[r]->comm.lora_comm = lora == NULL || strcmp(lora, "0") != 0;
        tp->rank[r]->comm.meet = &tp->meet;
        tp->rank[r]->comm.share = gpus < tp_n ? &tp->share : NULL;
    }

    /* shared GPUs: the sums' events, and no decode graphs, whose replay
     * would skip the meetings between the ranks' threads */
    for (r = 0; gpus < tp_n && r < tp_n; r++) {
        tp->rank[r]->graphs = 0;

        if (slora_cuda_check(cudaSetDevice(devs[r]), "cudaSetDevice", err)
            != SLORA_OK
            || slora_cuda_check(cudaEventCreateWithFlags(&tp->share.staged[r],
                                    cudaEventDisableTiming),
                                "sum event", err)
               != SLORA_OK
            || slora_cuda_check(cudaEventCreateWithFlags(&tp->share.read[r],
                                    cudaEventDisableTiming),
                                "sum event", err)
               != SLORA_OK)
        {
            slora_cuda_tp_free(b);
            return NULL;
        }
    }

    fprintf(stderr, "slora: tensor parallel, %d ranks over GPUs %d..%d%s, "
            "sums by %s%s\n", tp_n, device, device + gpus - 1,
            gpus < tp_n ? " (shared: SLORA_TP_SHARE_GPUS)" : "",
            gpus < tp_n ? "the one-shot kernel, 8 MiB at a time"
            : one_shot ? "the one-shot kernel up to 8 MiB, then NCCL" : "NCCL",
            tp->rank[0]->comm.lora_comm ? "" : ", LoRA's sums skipped "
                                               "(ablation)");

    /* a worker starts from the generation it was made at, not the one
     * it finds: the first job may be posted before it runs */
    for (r = 1; r < tp_n; r++) {
        tp->worker[r].tp = tp;
        tp->worker[r].r = r;
        tp->worker[r].gen = tp->gen;

        if (pthread_create(&tp->thread[r], NULL, slora_cuda_tp_thread,
                           &tp->worker[r])
            != 0)
        {
            slora_err_set(err, SLORA_ERROR, "cuda backend: cannot start the "
                          "thread of rank %d", r);
            slora_cuda_tp_free(b);
            return NULL;
        }

        tp->n_threads = r;
    }

    cudaSetDevice(device);

    return b;
}


static int
slora_nccl_load(slora_err_t *err)
{
    void  *h;

    pthread_mutex_lock(&slora_nccl_lock);

    if (slora_nccl.lib != NULL) {
        pthread_mutex_unlock(&slora_nccl_lock);
        return SLORA_OK;
    }

    h = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        pthread_mutex_unlock(&slora_nccl_lock);
        return slora_err_set(err, SLORA_ERROR, "cuda backend: tensor "
                             "parallelism needs NCCL: %s", dlerror());
    }

    *(void **) &slora_nccl.init_all = dlsym(h, "ncclCommInitAll");
    *(void **) &slora_nccl.destroy = dlsym(h, "ncclCommDestroy");
    *(void **) &slora_nccl.abort = dlsym(h, "ncclCommAbort");
    *(void **) &slora_nccl.all_reduce = dlsym(h, "ncclAllReduce");
    *(void **) &slora_nccl.error = dlsym(h, "ncclGetErrorString");

    if (slora_nccl.init_all == NULL || slora_nccl.destroy == NULL
        || slora_nccl.abort == NULL || slora_nccl.all_reduce == NULL
        || slora_nccl.error == NULL)
    {
        dlclose(h);
        memset(&slora_nccl, 0, sizeof(slora_nccl));
        pthread_mutex_unlock(&slora_nccl_lock);
        return slora_err_set(err, SLORA_ERROR, "cuda backend: "
                             "libnccl.so.2 lacks the collectives used");
    }

    slora_nccl.lib = h;
    pthread_mutex_unlock(&slora_nccl_lock);

    return SLORA_OK;
}


/*
 * A rank's sum with its peers, in place, on its compute stream: the
 * one-shot kernel when the message fits, else NCCL (prefill's large
 * ones). The same bits land on every rank either way.
 */

int
slora_cuda_allreduce(slora_cuda_t *c, void *buf, int64_t n, int f32,
    slora_err_t *err)
{
    ncclResult_t  nr;
    int           rc;

    if (c->comm.share != NULL) {
        return slora_cuda_allreduce_shared(c, buf, n, f32, err);
    }

    if (c->comm.ar != NULL) {
        rc = f32 ? slora_allreduce_f32_cuda(c->comm.ar, buf, n, c->stream)
                 : slora_allreduce_bf16_cuda(c->comm.ar, buf, n, c->stream);

        if (rc == 0) {
            c->comm.n_one_shot++;
            return SLORA_OK;
        }

        if (rc != -2) {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: GPU %d: "
                                 "all-reduce of %lld values refused",
                                 c->device, (long long) n);
        }
    }

    nr = slora_nccl.all_reduce(buf, buf, (size_t) n,
                               f32 ? ncclFloat32 : ncclBfloat16, ncclSum,
                               (ncclComm_t) c->comm.nccl, c->stream);
    if (nr != ncclSuccess) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: GPU %d: NCCL "
                             "all-reduce of %lld values: %s", c->device,
                             (long long) n, slora_nccl.error(nr));
    }

    c->comm.n_nccl++;

    return SLORA_OK;
}


/*
 * The sum of ranks that share GPUs (slora_cuda_share_t), piece by piece
 * within the staging's capacity, every rank cutting its buffer the same
 * way (a piece is a multiple of 8 values, so each starts 16-byte
 * aligned). No kernel waits for a peer on the GPU: each rank's stream
 * waits for the peers' events, whose records the ranks' threads meet
 * after. A rank copies its piece into its staging once every peer's sum
 * has read the piece before, and sums once every rank's copy is done.
 */

static int
slora_cuda_allreduce_shared(slora_cuda_t *c, void *buf, int64_t n, int f32,
    slora_err_t *err)
{
    slora_cuda_share_t  *sh;
    int64_t              piece, at, m, size;
    int32_t              q, r;
    int                  own, any;

    sh = c->comm.share;
    r = c->tp_rank;
    size = f32 ? (int64_t) sizeof(float) : (int64_t) sizeof(uint16_t);
    piece = (int64_t) SLORA_CUDA_AR_CAP / size;
    piece -= piece % 8;

    for (at = 0; at < n; at += m) {
        m = n - at < piece ? n - at : piece;
        own = 0;

        for (q = 0; q < c->tp_n; q++) {
            own |= q != r && cudaStreamWaitEvent(c->stream, sh->read[q], 0)
                             != cudaSuccess;
        }

        own |= slora_allreduce_stage_cuda(c->comm.ar,
                                          (char *) buf + at * size, m * size,
                                          c->stream)
               != 0;
        own |= cudaEventRecord(sh->staged[r], c->stream) != cudaSuccess;

        any = slora_meet(c->comm.meet, own != 0);

        for (q = 0; q < c->tp_n; q++) {
            own |= q != r && cudaStreamWaitEvent(c->stream, sh->staged[q], 0)
                             != cudaSuccess;
        }

        own |= (f32 ? slora_allreduce_gather_f32_cuda(c->comm.ar,
                                                      (float *) buf + at, m,
                                                      c->stream)
                    : slora_allreduce_gather_bf16_cuda(c->comm.ar,
                                                       (uint16_t *) buf + at,
                                                       m, c->stream))
               != 0;
        own |= cudaEventRecord(sh->read[r], c->stream) != cudaSuccess;
        any |= slora_meet(c->comm.meet, own != 0);

        if (own) {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: rank %d "
                                 "(GPU %d): all-reduce of %lld values (a "
                                 "piece of %lld at %lld) refused", r,
                                 c->device, (long long) n, (long long) m,
                                 (long long) at);
        }

        if (any) {
            /* not this rank's own failure (slora_cuda_tp_run) */
            (void) slora_err_set(err, SLORA_DECLINED, "cuda backend: rank "
                                 "%d (GPU %d): another rank failed in an "
                                 "all-reduce", r, c->device);
            return SLORA_ERROR;
        }

        c->comm.n_one_shot++;
    }

    return SLORA_OK;
}


/*
 * Runs job on every rank at once: rank 0 on the calling thread, the
 * others on theirs; returns the first rank's own failure, naming its
 * GPU: a rank that failed only because a peer did ("another rank
 * failed", err code SLORA_DECLINED) is reported only where no rank
 * says more.
 */

static int
slora_cuda_tp_run(slora_cuda_tp_t *tp, slora_cuda_tp_job_pt job,
    slora_err_t *err)
{
    int32_t  r, first;
    int      rc;

    pthread_mutex_lock(&tp->lock);
    tp->job = job;
    tp->pending = tp->n - 1;
    tp->gen++;
    pthread_cond_broadcast(&tp->go);
    pthread_mutex_unlock(&tp->lock);

    rc = job(tp, 0, &tp->err[0]);

    pthread_mutex_lock(&tp->lock);
    while (tp->pending > 0) {
        pthread_cond_wait(&tp->done, &tp->lock);
    }
    pthread_mutex_unlock(&tp->lock);

    first = rc != SLORA_OK ? 0 : -1;

    for (r = 1; r < tp->n; r++) {
        if (tp->rc[r] != SLORA_OK
            && (first < 0 || (tp->err[first].code == SLORA_DECLINED
                              && tp->err[r].code != SLORA_DECLINED)))
        {
            first = r;
        }
    }

    if (first < 0) {
        return SLORA_OK;
    }

    *err = tp->err[first];

    if (err->code == SLORA_DECLINED) {
        err->code = SLORA_ERROR;
    }

    return first == 0 ? SLORA_ERROR
                      : slora_err_prefix(err, "GPU %d of %d", first, tp->n);
}


static void *
slora_cuda_tp_thread(void *arg)
{
    slora_cuda_tp_worker_t  *w = arg;
    slora_cuda_tp_t         *tp = w->tp;
    int                      rc;

    cudaSetDevice(tp->rank[w->r]->device);

    pthread_mutex_lock(&tp->lock);

    for ( ;; ) {
        while (tp->gen == w->gen && !tp->quit) {
            pthread_cond_wait(&tp->go, &tp->lock);
        }

        if (tp->quit) {
            break;
        }

        w->gen = tp->gen;
        pthread_mutex_unlock(&tp->lock);

        rc = tp->job(tp, w->r, &tp->err[w->r]);

        pthread_mutex_lock(&tp->lock);
        tp->rc[w->r] = rc;

        if (--tp->pending == 0) {
            pthread_cond_signal(&tp->done);
        }
    }

    pthread_mutex_unlock(&tp->lock);

    return NULL;
}


static int
slora_cuda_tp_job_load(slora_cuda_tp_t *tp, int32_t r, slora_err_t *err)
{
    return slora_cuda_rank_load(tp->rank[r], tp->model, err);
}


static int
slora_cuda_tp_job_arena(slora_cuda_tp_t *tp, int32_t r, slora_err_t *err)
{
    return slora_cuda_rank_arena(tp->rank[r], tp->rank_bytes, err);
}


static int
slora_cuda_tp_job_forward(slora_cuda_tp_t *tp, int32_t r, slora_err_t *err)
{
    return slora_cuda_rank_forward(tp->rank[r], tp->batch, tp->layer_off,
                                   tp->page_elems / tp->n,
                                   tp->tokens_per_page, err);
}


/*
 * Destroying a communicator waits for its peers, so each GPU's thread
 * destroys its own, all at once; graphs that captured NCCL calls hold
 * the communicator, so they go first. After a rank failed in the middle
 * of a step (the meeting broken), a NCCL kernel may still wait on a GPU
 * for that rank's part of a sum, and the stream with it: each thread
 * aborts its communicator first, which ends its kernels.
 */

static int
slora_cuda_tp_job_close(slora_cuda_tp_t *tp, int32_t r, slora_err_t *err)
{
    slora_cuda_t  *c = tp->rank[r];

    cudaSetDevice(c->device);

    if (tp->nccl[r] != NULL && slora_meet_broken(&tp->meet)) {
        slora_nccl.abort(tp->nccl[r]);
        tp->nccl[r] = NULL;
        cudaSetDevice(c->device);
    }

    cudaStreamSynchronize(c->stream);
    slora_cuda_graphs_drop(c);

    if (tp->nccl[r] != NULL) {
        slora_nccl.destroy(tp->nccl[r]);
        tp->nccl[r] = NULL;
    }

    return SLORA_OK;
}


static int
slora_cuda_tp_load_model(slora_backend_t *b, const slora_model_t *m,
    slora_err_t *err)
{
    slora_cuda_tp_t  *tp = b->data;

    if (m == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: no model");
    }

    if (tp->model != NULL) {
        return slora_err_set(err, SLORA_ERROR, "%s: cuda backend: a model "
                             "is loaded already (%s)", m->path,
                             tp->model->path);
    }

    tp->model = m;
    tp->n_layers = m->cfg.n_layers;

    free(tp->layer_off);
    tp->layer_off = calloc((size_t) (m->cfg.n_layers > 0 ? m->cfg.n_layers
                                                          : 1),
                           sizeof(int64_t));
    if (tp->layer_off == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
    }

    return slora_cuda_tp_run(tp, slora_cuda_tp_job_load, err);
}


static int
slora_cuda_tp_alloc_arena(slora_backend_t *b, size_t bytes,
    int64_t page_elems, slora_err_t *err)
{
    slora_cuda_tp_t  *tp = b->data;

    if (page_elems <= 0 || page_elems % (8 * tp->n) != 0
        || bytes % ((size_t) page_elems * sizeof(uint16_t)) != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: an arena of "
                             "%zu bytes in pages of %lld elements cannot be "
                             "split over %d GPUs", bytes,
                             (long long) page_elems, tp->n);
    }

    tp->page_elems = page_elems;
    tp->rank_bytes = bytes / (size_t) tp->n;

    return slora_cuda_tp_run(tp, slora_cuda_tp_job_arena, err);
}


/*
 * Whole slice-major pages: part r of each goes to rank r, where the
 * pages are contiguous again, 1/N as long.
 */

static int
slora_cuda_tp_write_arena(slora_backend_t *b, int64_t off, const float *src,
    int64_t n, slora_err_t *err)
{
    slora_cuda_tp_t  *tp = b->data;
    int64_t           part;
    int32_t           r;

    if (slora_cuda_tp_pages(tp, off, n, "write", err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    part = tp->page_elems / tp->n;

    for (r = 0; r < tp->n; r++) {
        if (slora_cuda_rank_write_cols(tp->rank[r], off / tp->n,
                                       src + r * part,
                                       (int32_t) (n / tp->page_elems),
                                       (int32_t) part, tp->page_elems, err)
            != SLORA_OK)
        {
            slora_cuda_tp_unwrite(tp, r);
            return slora_err_prefix(err, "GPU %d of %d", r, tp->n);
        }
    }

    return SLORA_OK;
}


/* Part r of every slice-major page to GPU r. */
static int
slora_cuda_tp_write_pages(slora_backend_t *b, const void *src,
    int32_t elem_size, int32_t n, int64_t page_elems, const int64_t *dst,
    slora_err_t *err)
{
    slora_cuda_tp_t  *tp = b->data;
    int32_t           r;

    if (page_elems != tp->page_elems) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: pages of %lld "
                             "elements, not the pool's %lld",
                             (long long) page_elems,
                             (long long) tp->page_elems);
    }

    for (r = 0; r < tp->n; r++) {
        if (slora_cuda_rank_write_pages(tp->rank[r], src, elem_size, n,
                                        page_elems, dst, r, tp->n, err)
            != SLORA_OK)
        {
            slora_cuda_tp_unwrite(tp, r);
            return slora_err_prefix(err, "GPU %d of %d", r, tp->n);
        }
    }

    return SLORA_OK;
}


/*
 * A write failed on rank n, whose own upload stream slora_cuda_wrote()
 * has drained: the caller gives the pages back to the pool, so nothing
 * that ranks 0..n-1 queued may still write them once a new owner's KV
 * is there, and no fence covers those writes yet.
 */

static void
slora_cuda_tp_unwrite(slora_cuda_tp_t *tp, int32_t n)
{
    slora_cuda_t  *c;
    int32_t        r;

    for (r = 0; r < n; r++) {
        c = tp->rank[r];

        pthread_mutex_lock(&c->upload_lock);

        if (cudaSetDevice(c->device) != cudaSuccess
            || cudaStreamSynchronize(c->upload) != cudaSuccess)
        {
            cudaGetLastError();
        }

        pthread_mutex_unlock(&c->upload_lock);
    }
}


static int
slora_cuda_tp_read_arena(slora_backend_t *b, int64_t off, float *dst,
    int64_t n, slora_err_t *err)
{
    slora_cuda_tp_t  *tp = b->data;
    float            *tmp;
    int64_t           part, pages, k;
    int32_t           r;

    if (slora_cuda_tp_pages(tp, off, n, "read", err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    part = tp->page_elems / tp->n;
    pages = n / tp->page_elems;

    tmp = malloc((size_t) (n / tp->n) * sizeof(float));
    if (tmp == NULL && n > 0) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
    }

    for (r = 0; r < tp->n; r++) {
        if (slora_cuda_rank_read(tp->rank[r], off / tp->n, tmp, n / tp->n,
                                 err)
            != SLORA_OK)
        {
            free(tmp);
            return slora_err_prefix(err, "GPU %d of %d", r, tp->n);
        }

        for (k = 0; k < pages; k++) {
            memcpy(dst + k * tp->page_elems + r * part, tmp + k * part,
                   (size_t) part * sizeof(float));
        }
    }

    free(tmp);

    return SLORA_OK;
}


static int
slora_cuda_tp_pages(slora_cuda_tp_t *tp, int64_t off, int64_t n,
    const char *what, slora_err_t *err)
{
    if (tp->page_elems == 0 || off < 0 || n < 0
        || off % tp->page_elems != 0 || n % tp->page_elems != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: a %s of %lld "
                             "elements at %lld is not whole pages of %lld, "
                             "which tensor parallelism splits", what,
                             (long long) n, (long long) off,
                             (long long) tp->page_elems);
    }

    return SLORA_OK;
}


static int
slora_cuda_tp_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err)
{
    slora_cuda_tp_t  *tp = b->data;
    uint64_t          captures;
    int64_t           setup;
    int32_t           l;

    if (batch == NULL || pool_layer_off == NULL || tp->layer_off == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: no batch, or "
                             "forward before load_model");
    }

    if (page_elems != tp->page_elems) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: pages of %lld "
                             "elements, the arena's are %lld",
                             (long long) page_elems,
                             (long long) tp->page_elems);
    }

    for (l = 0; l < tp->n_layers; l++) {
        if (pool_layer_off[l] % tp->n != 0) {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: layer %d "
                                 "at %lld does not split over %d GPUs", l,
                                 (long long) pool_layer_off[l], tp->n);
        }

        tp->layer_off[l] = pool_layer_off[l] / tp->n;
    }

    tp->batch = batch;
    tp->tokens_per_page = tokens_per_page;

    b->device_ns = 0;
    b->captured = 0;
    b->setup_ns = 0;
    captures = tp->rank[0]->graph_captures;
    setup = slora_cuda_gemm_setup_ns(tp->rank[0]->gemm);

    if (slora_cuda_tp_run(tp, slora_cuda_tp_job_forward, err) == SLORA_OK) {
        b->device_ns = tp->rank[0]->device_ns;
        b->captured = tp->rank[0]->graph_captures != captures;
        b->setup_ns = slora_cuda_gemm_setup_ns(tp->rank[0]->gemm) - setup;
        return SLORA_OK;
    }

    /* a rank that failed past the meeting broke it for good: its
     * peers' sums may have gone without its part, or still wait for it
     * on their GPUs (so their devices are not waited for here), and
     * every later step would fail, so start over (the ranks' threads
     * have all returned: tp_run waited for them) */
    if (slora_meet_broken(&tp->meet)) {
        slora_err_prefix(err, "cuda backend: a rank failed in the middle "
                         "of a step; the ranks cannot meet again");
        err->code = SLORA_FATAL;
        return SLORA_FATAL;
    }

    for (l = 0; l < tp->n; l++) {
        if (slora_cuda_lost(tp->rank[l], err) == SLORA_FATAL) {
            return SLORA_FATAL;
        }
    }

    return SLORA_ERROR;
}


/* In the pool's terms: N times the free memory of the fullest GPU. */

static int
slora_cuda_tp_fence(slora_backend_t *b, slora_err_t *err)
{
    slora_cuda_tp_t  *tp = b->data;
    int32_t           r;

    for (r = 0; r < tp->n; r++) {
        if (slora_cuda_rank_fence(tp->rank[r], err) != SLORA_OK) {
            return SLORA_ERROR;
        }
    }

    return SLORA_OK;
}


static size_t
slora_cuda_tp_mem_free(slora_backend_t *b)
{
    slora_cuda_tp_t  *tp = b->data;
    size_t            least, avail;
    int32_t           r;

    least = 0;

    /* ranks that share a GPU share what it has free */
    for (r = 0; r < tp->n; r++) {
        avail = slora_cuda_rank_mem_free(tp->rank[r]) / (size_t) tp->per_gpu;
        least = r == 0 || avail < least ? avail : least;
    }

    cudaSetDevice(tp->rank[0]->device);

    return least * (size_t) tp->n;
}


static void
slora_cuda_tp_free(slora_backend_t *b)
{
    slora_cuda_tp_t  *tp;
    slora_err_t       err;
    int32_t           r;

    if (b == NULL) {
        return;
    }

    tp = b->data;

    /* made whole (a thread a rank; communicators where each rank has a
     * GPU of its own): every rank's work done, graphs and communicators
     * gone, before any rank's memory is freed, as a peer's sum may read
     * it */
    if (tp->n_threads == tp->n - 1) {
        fprintf(stderr, "slora: tensor parallel: %llu one-shot and %llu NCCL "
                "all-reduces enqueued by GPU 0 (graphs replay the rest)\n",
                (unsigned long long) tp->rank[0]->comm.n_one_shot,
                (unsigned long long) tp->rank[0]->comm.n_nccl);

        (void) slora_cuda_tp_run(tp, slora_cuda_tp_job_close, &err);
    }

    pthread_mutex_lock(&tp->lock);
    tp->quit = 1;
    pthread_cond_broadcast(&tp->go);
    pthread_mutex_unlock(&tp->lock);

    for (r = 1; r <= tp->n_threads; r++) {
        pthread_join(tp->thread[r], NULL);
    }

    if (b->host_mem.ctx != NULL) {
        slora_cuda_host_done(b->host_mem.ctx);
        free(b->host_mem.ctx);
    }

    /* communicators are left only when creation failed half way, before
     * the threads: abort is local */
    for (r = 0; r < tp->n; r++) {
        if (tp->nccl[r] != NULL) {
            slora_nccl.abort(tp->nccl[r]);
        }

        slora_allreduce_free(tp->ar[r]);
        slora_cuda_rank_free(tp->rank[r]);

        if (tp->share.staged[r] != NULL) {
            cudaEventDestroy(tp->share.staged[r]);
        }

        if (tp->share.read[r] != NULL) {
            cudaEventDestroy(tp->share.read[r]);
        }
    }

    free(tp->layer_off);
    pthread_cond_destroy(&tp->go);
    pthread_cond_destroy(&tp->done);
    pthread_mutex_destroy(&tp->lock);
    slora_meet_destroy(&tp->meet);
    free(tp);
    free(b);
}
