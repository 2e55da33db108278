/*
 * slora_cuda_backend.c: the CUDA backend, built into libslora_cuda.so,
 * which the engine dlopen()s for device=cuda (slora_backend_open.c).
 * Weights live on the GPU in bf16 (slora_cuda_load.c loads them), the
 * pool's arena too (KV pages and adapter rows side by side, as on the
 * CPU), and a forward pass runs the whole batch through the kernels/
 * twins of the CPU backend's ops, with the base projections through
 * cuBLASLt (slora_cuda_gemm.c).
 *
 * The one idea: the layer loop is the CPU backend's, op for op, so the
 * two can be held to each other; what differs is only where the data is.
 * q, k and v come out of one GEMM over the concatenated weights, gate and
 * up out of another, and the kernels read them as strided views of one
 * buffer. A step's indices (tokens, positions, page tables, adapter row
 * tables) go to the device in one copy (slora_cuda_step.c); after that
 * nothing but kernels and GEMMs is enqueued, or a decode step's captured
 * graph replayed (slora_cuda_graph.c), until the logits, or with greedy
 * sampling only the chosen ids, come back.
 *
 * Adapter rows reach the arena through write_arena on a stream of their
 * own: a copy the copy engine reads from the host tier's pinned pages
 * and a bf16 conversion, overlapped with whatever the compute stream is
 * running. The host thread never waits for them: fence records the
 * upload stream's point that the next forward waits for on the GPU, so
 * the uploads of adapters wanted later (slora_adapters_warm) run beside
 * the step that is computed meanwhile.
 *
 * Under tensor parallelism (slora_cuda_tp.c) each GPU runs this same
 * code as one rank over its Megatron shard: its cfg has 1/N of the heads
 * and of the FFN, o and down end in an all-reduce, and LoRA's side of
 * width hidden is sliced (slora_proj_row_split), its shrink all-reduced
 * before the expand, as S-LoRA's section 6 does. LoRA's launches are
 * slora_cuda_lora.c's.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slora_cuda_int.h"

#include "slora_act.h"
#include "slora_argmax.h"
#include "slora_embed.h"
#include "slora_norm.h"
#include "slora_rope.h"


slora_backend_t *slora_backend_cuda_create(int device, int32_t tp,
    slora_err_t *err);

static int slora_cuda_load_model(slora_backend_t *b, const slora_model_t *m,
    slora_err_t *err);
static int slora_cuda_alloc_arena(slora_backend_t *b, size_t bytes,
    int64_t page_elems, slora_err_t *err);
static int slora_cuda_write_pages(slora_backend_t *b, const void *src,
    int32_t elem_size, int32_t n, int64_t page_elems, const int64_t *dst,
    slora_err_t *err);
static int slora_cuda_write_arena(slora_backend_t *b, int64_t off,
    const float *src, int64_t n, slora_err_t *err);
static int slora_cuda_read_arena(slora_backend_t *b, int64_t off, float *dst,
    int64_t n, slora_err_t *err);
static int slora_cuda_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err);
static size_t slora_cuda_mem_free(slora_backend_t *b);
static void slora_cuda_free(slora_backend_t *b);
static int slora_cuda_fence(slora_backend_t *b, slora_err_t *err);

static int slora_cuda_rank_prepare(slora_cuda_t *c,
    const slora_batch_t *batch, const int64_t *pool_layer_off,
    int64_t page_elems, int32_t tokens_per_page, slora_cuda_step_t *st,
    slora_cuda_layout_t *lay, slora_err_t *err);
static int slora_cuda_layer(slora_cuda_t *c, slora_cuda_step_t *st,
    int32_t l, slora_err_t *err);
static int slora_cuda_glu(slora_cuda_t *c, uint16_t *y, int64_t ld_y,
    const uint16_t *x, int64_t ld_x, const uint16_t *w, int32_t ffn,
    int32_t in, int32_t n, slora_err_t *err);
static int slora_cuda_linear(slora_cuda_t *c, int beside, void *y,
    int64_t ld_y, const uint16_t *x, int64_t ld_x, const uint16_t *w,
    const uint16_t *bias, int32_t out, int32_t in, int32_t n, int f32_out,
    slora_err_t *err);
static int slora_cuda_sum(slora_cuda_t *c, uint16_t *y, int32_t n,
    slora_err_t *err);
static int slora_cuda_logits(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err);
static int slora_cuda_step_sync(slora_cuda_t *c, slora_err_t *err);
static int slora_cuda_step_wait(slora_cuda_t *c, slora_err_t *err);
static int slora_cuda_finish(slora_cuda_t *c, slora_cuda_step_t *st,
    slora_err_t *err);


slora_backend_t *
slora_backend_cuda_create(int device, int32_t tp, slora_err_t *err)
{
    slora_backend_t    *b;
    slora_cuda_t       *c;
    slora_cuda_host_t  *h;

    if (tp > 1) {
        return slora_cuda_tp_create(device, tp, err);
    }

    b = calloc(1, sizeof(slora_backend_t));
    if (b == NULL) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
        return NULL;
    }

    c = slora_cuda_rank_create(device, 0, 1, err);
    if (c == NULL) {
        free(b);
        return NULL;
    }

    b->name = "cuda";
    b->elem_size = sizeof(uint16_t);
    b->load_model = slora_cuda_load_model;
    b->alloc_arena = slora_cuda_alloc_arena;
    b->write_arena = slora_cuda_write_arena;
    b->write_pages = slora_cuda_write_pages;
    b->fence = slora_cuda_fence;
    b->read_arena = slora_cuda_read_arena;
    b->forward = slora_cuda_forward;
    b->draws = 1;
    b->scores = 1;
    b->makes_random = 1;
    b->mem_free = slora_cuda_mem_free;
    b->free = slora_cuda_free;
    b->data = c;

    h = malloc(sizeof(slora_cuda_host_t));
    if (h == NULL) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
        slora_cuda_free(b);
        return NULL;
    }

    if (slora_cuda_host_init(h, &c, 1, &b->host_mem, err) != SLORA_OK) {
        free(h);
        slora_cuda_free(b);
        return NULL;
    }

    return b;
}


/* One GPU's state: a whole model's (tp_n 1) or rank tp_rank's shard. */

slora_cuda_t *
slora_cuda_rank_create(int device, int32_t tp_rank, int32_t tp_n,
    slora_err_t *err)
{
    slora_cuda_t        *c;
    const char          *e;
    unsigned long long   k;
    int                  n, r;

    n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        cudaGetLastError();
        slora_err_set(err, SLORA_ERROR, "cuda backend: no CUDA device");
        return NULL;
    }

    if (device < 0 || device >= n) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: device %d of %d",
                      device, n);
        return NULL;
    }

    c = calloc(1, sizeof(slora_cuda_t));
    if (c == NULL) {
        slora_err_set(err, SLORA_ERROR, "cuda backend: out of memory");
        return NULL;
    }

    c->device = device;
    c->tp_rank = tp_rank;
    c->tp_n = tp_n;
    c->comm.lora_comm = 1;
    pthread_mutex_init(&c->upload_lock, NULL);

    if (slora_cuda_check(cudaSetDevice(device), "cudaSetDevice", err)
        != SLORA_OK
        || slora_cuda_check(cudaStreamCreateWithFlags(&c->stream,
                                                      cudaStreamNonBlocking),
                            "stream", err)
           != SLORA_OK
        || slora_cuda_check(cudaStreamCreateWithFlags(&c->upload,
                                                      cudaStreamNonBlocking),
                            "stream", err)
           != SLORA_OK
        || slora_cuda_check(cudaStreamCreateWithFlags(&c->side,
                                                      cudaStreamNonBlocking),
                            "stream", err)
           != SLORA_OK
        || slora_cuda_check(cudaEventCreateWithFlags(&c->fork,
                                                     cudaEventDisableTiming),
                            "LoRA event", err)
           != SLORA_OK
        || slora_cuda_check(cudaEventCreateWithFlags(&c->join,
                                                     cudaEventDisableTiming),
                            "LoRA event", err)
           != SLORA_OK
        || slora_cuda_check(cudaEventCreate(&c->busy[0]), "step event", err)
           != SLORA_OK
        || slora_cuda_check(cudaEventCreate(&c->busy[1]), "step event", err)
           != SLORA_OK
        || slora_cuda_check(cudaMalloc((void **) &c->stage,
                                       SLORA_CUDA_STAGE * sizeof(float)),
                            "staging buffer", err)
           != SLORA_OK
        || slora_cuda_check(cudaHostAlloc((void **) &c->stage_host,
                                          SLORA_CUDA_STAGE * sizeof(float),
                                          cudaHostAllocDefault),
                            "pinned staging buffer", err)
           != SLORA_OK
        || slora_cuda_check(cudaEventCreateWithFlags(&c->uploaded,
                                                     cudaEventDisableTiming),
                            "upload event", err)
           != SLORA_OK
        || slora_cuda_check(cudaEventCreateWithFlags(&c->written,
                                                     cudaEventDisableTiming),
                            "upload event", err)
           != SLORA_OK)
    {
        slora_cuda_rank_free(c);
        return NULL;
    }

    c->gemm = slora_cuda_gemm_create(SLORA_CUDA_GEMM_WORK, err);
    if (c->gemm == NULL) {
        slora_cuda_rank_free(c);
        return NULL;
    }

    c->graphs = getenv("SLORA_CUDA_GRAPHS") == NULL
                || strcmp(getenv("SLORA_CUDA_GRAPHS"), "0") != 0;
    c->graph_edges = getenv("SLORA_CUDA_GRAPH_EDGES") != NULL
                     && tp_rank == 0;
    c->forks = getenv("SLORA_CUDA_FORK") == NULL
               || strcmp(getenv("SLORA_CUDA_FORK"), "0") != 0;

    /* $SLORA_CUDA_TP_FAIL=r:k: rank r of a group fails its k-th step
     * with tokens past the ranks' meeting, before its first sum, to
     * check that its peers stop (bench/device-tp.sh fail) */
    e = getenv("SLORA_CUDA_TP_FAIL");
    if (e != NULL && tp_n > 1 && sscanf(e, "%d:%llu", &r, &k) == 2
        && r == tp_rank)
    {
        c->fail_at = (uint64_t) k;
    }

    /* one profile a model: rank 0's; $SLORA_CUDA_PROFILE_SKIP leaves
     * out the first steps (warm-up: plans made, scratch grown) */
    if (getenv("SLORA_CUDA_PROFILE") != NULL && tp_rank == 0) {
        c->prof = calloc(1, sizeof(slora_cuda_prof_t));
        for (n = 0; c->prof != NULL && n < SLORA_CUDA_MARKS; n++) {
            cudaEventCreate(&c->prof->ev[n]);
        }

        if (c->prof != NULL && getenv("SLORA_CUDA_PROFILE_SKIP") != NULL) {
            c->prof->skip = strtoull(getenv("SLORA_CUDA_PROFILE_SKIP"), NULL,
                                     10);
        }
    }

    return c;
}


static int
slora_cuda_load_model(slora_backend_t *b, const slora_model_t *m,
    slora_err_t *err)
{
    return slora_cuda_rank_load(b->data, m, err);
}


static int
slora_cuda_alloc_arena(slora_backend_t *b, size_t bytes, int64_t page_elems,
    slora_err_t *err)
{
    (void) page_elems;

    return slora_cuda_rank_arena(b->data, bytes, err);
}


static int
slora_cuda_write_arena(slora_backend_t *b, int64_t off, const float *src,
    int64_t n, slora_err_t *err)
{
    return slora_cuda_rank_write(b->data, off, src, n, err);
}


static int
slora_cuda_write_pages(slora_backend_t *b, const void *src,
    int32_t elem_size, int32_t n, int64_t page_elems, const int64_t *dst,
    slora_err_t *err)
{
    return slora_cuda_rank_write_pages(b->data, src, elem_size, n,
                                       page_elems, dst, 0, 1, err);
}


static int
slora_cuda_fence(slora_backend_t *b, slora_err_t *err)
{
    return slora_cuda_rank_fence(b->data, err);
}


static int
slora_cuda_read_arena(slora_backend_t *b, int64_t off, float *dst, int64_t n,
    slora_err_t *err)
{
    return slora_cuda_rank_read(b->data, off, dst, n, err);
}


static size_t
slora_cuda_mem_free(slora_backend_t *b)
{
    return slora_cuda_rank_mem_free(b->data);
}


size_t
slora_cuda_rank_mem_free(slora_cuda_t *c)
{
    size_t  avail, total;

    if (cudaSetDevice(c->device) != cudaSuccess
        || cudaMemGetInfo(&avail, &total) != cudaSuccess)
    {
        cudaGetLastError();
        return 0;
    }

    return avail;
}


static int
slora_cuda_forward(slora_backend_t *b, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err)
{
    slora_cuda_t  *c = b->data;
    uint64_t       captures;
    int64_t        setup;

    b->device_ns = 0;
    b->captured = 0;
    b->setup_ns = 0;
    captures = c->graph_captures;
    setup = slora_cuda_gemm_setup_ns(c->gemm);

    if (slora_cuda_rank_forward(c, batch, pool_layer_off, page_elems,
                                tokens_per_page, err)
        != SLORA_OK)
    {
        return slora_cuda_lost(c, err);
    }

    b->device_ns = c->device_ns;
    b->captured = c->graph_captures != captures;
    b->setup_ns = slora_cuda_gemm_setup_ns(c->gemm) - setup;

    return SLORA_OK;
}


/* A rank's offsets and page size are its own: 1/tp_n of the pool's. */

int
slora_cuda_rank_forward(slora_cuda_t *c, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_err_t *err)
{
    slora_cuda_step_t      st;
    slora_cuda_layout_t    lay;
    cudaGraphExec_t        exec;
    int                    rc, failed;

    /* decode steps replay a captured graph; others launch one by one */
    exec = NULL;
    rc = slora_cuda_rank_prepare(c, batch, pool_layer_off, page_elems,
                                 tokens_per_page, &st, &lay, err);

    if (rc == SLORA_OK && batch->n_tokens > 0 && c->graphs
        && c->prof == NULL && batch->n_tokens == batch->n_seqs)
    {
        rc = slora_cuda_graph_get(c, &st, &exec, err);
    }

    /* tensor-parallel ranks start a step's kernels together, once all are
     * past its setup: one rank's sum spins on its GPU until every peer's
     * comes, and a peer still in its setup may wait on the host for the
     * devices (growing pinned or device scratch can), which then waits
     * for that sum. Every rank comes, failed or not. */
    if (c->comm.meet != NULL) {
        failed = slora_meet(c->comm.meet, rc != SLORA_OK);

        if (rc == SLORA_OK && failed) {
            /* SLORA_DECLINED: not this rank's own failure, which
             * slora_cuda_tp_run reports in its stead */
            (void) slora_err_set(err, SLORA_DECLINED, "cuda backend: rank "
                                 "%d: another rank failed the step's "
                                 "setup", c->tp_rank);
            return SLORA_ERROR;
        }
    }

    if (rc != SLORA_OK || batch->n_tokens == 0) {
        return rc;
    }

    if (c->fail_at != 0 && ++c->steps == c->fail_at) {
        rc = slora_err_set(err, SLORA_ERROR, "cuda backend: rank %d: step "
                           "%llu failed on cue ($SLORA_CUDA_TP_FAIL)",
                           c->tp_rank, (unsigned long long) c->steps);

    } else {
        rc = exec != NULL
             ? slora_cuda_check(cudaGraphLaunch(exec, c->stream),
                                "graph launch", err)
             : slora_cuda_compute(c, &st, err);
    }

    /* past the meeting a rank's failure can leave its peers' sums
     * waiting for its part on their GPUs (a NCCL kernel for ever): it
     * breaks the meeting, which their host waits watch
     * (slora_cuda_step_wait), and the group goes no further
     * (slora_cuda_tp_forward) */
    if (rc != SLORA_OK || slora_cuda_finish(c, &st, err) != SLORA_OK) {
        if (c->comm.meet != NULL) {
            slora_meet_break(c->comm.meet);
        }

        return SLORA_ERROR;
    }

    if (c->prof != NULL) {
        slora_cuda_mark(c, SLORA_OP_LOGITS);
        slora_cuda_prof_step(c, batch->n_tokens > batch->n_seqs);
    }

    return SLORA_OK;
}


/* A step's checks, scratch and indices, up to its first kernel: where a
 * step can fail for want of memory or on a bad batch. */

static int
slora_cuda_rank_prepare(slora_cuda_t *c, const slora_batch_t *batch,
    const int64_t *pool_layer_off, int64_t page_elems,
    int32_t tokens_per_page, slora_cuda_step_t *st, slora_cuda_layout_t *lay,
    slora_err_t *err)
{
    int32_t  n, i;

    if (c->model == NULL || c->arena == NULL) {
        return slora_err_set(err, SLORA_ERROR,
                             "cuda backend: forward before load_model and "
                             "alloc_arena");
    }

    if (batch == NULL || pool_layer_off == NULL) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: no batch");
    }

    /* the adapter rows this step reads may still be on their way */
    if (slora_cuda_check(cudaSetDevice(c->device), "cudaSetDevice", err)
        != SLORA_OK
        || slora_cuda_check(cudaStreamWaitEvent(c->stream, c->uploaded, 0),
                            "upload wait", err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    memset(st, 0, sizeof(*st));
    st->batch = batch;
    st->layer_off = pool_layer_off;
    st->page_elems = page_elems;
    st->tokens_per_page = tokens_per_page;

    /* a rank's arena is part tp_rank of every pool page, while the
     * batch's adapter rows are at the pool's offsets, over the whole
     * model's widths */
    if (slora_batch_check(batch, &c->model->cfg, c->tp_n, pool_layer_off,
                          c->arena_elems, page_elems, tokens_per_page,
                          "cuda backend", &st->info, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (page_elems % 8 != 0) {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: page of %lld "
                             "elements is not a multiple of 8",
                             (long long) page_elems);
    }

    n = batch->n_tokens;

    for (i = 0; i < n; i++) {
        if (batch->tokens[i] < 0 || batch->tokens[i] >= c->cfg.vocab) {
            return slora_err_set(err, SLORA_ERROR, "cuda backend: batch: "
                                 "token id %d outside the vocabulary of %d",
                                 batch->tokens[i], c->cfg.vocab);
        }
    }

    if (n == 0) {
        return SLORA_OK;
    }

    if (c->prof != NULL) {
        c->prof->t0 = slora_now_ns();
        slora_cuda_mark(c, SLORA_OP_INDEX);
    }

    if (slora_cuda_reserve(c, st, lay, err) != SLORA_OK
        || slora_cuda_index(c, st, lay, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_INDEX);

    return slora_cuda_check(cudaEventRecord(c->busy[0], c->stream),
                            "step event", err);
}


/* Everything a step enqueues between its indices and its results. */

int
slora_cuda_compute(slora_cuda_t *c, slora_cuda_step_t *st, slora_err_t *err)
{
    int32_t  l, n;

    n = st->batch->n_tokens;

    if (slora_embed_cuda(c->x.p, c->cfg.hidden, c->tok_embd, c->cfg.vocab,
                         c->cfg.hidden, st->tokens, n, NULL, c->stream)
        != 0
        || slora_rmsnorm_cuda(c->h.p, c->cfg.hidden, c->x.p, c->cfg.hidden,
                              c->layers[0].attn_norm, n, c->cfg.hidden,
                              c->cfg.norm_eps, c->stream)
           != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: embedding "
                             "refused");
    }

    slora_cuda_mark(c, SLORA_OP_EMBED);

    for (l = 0; l < c->cfg.n_layers; l++) {
        if (slora_cuda_layer(c, st, l, err) != SLORA_OK) {
            return slora_err_prefix(err, "cuda backend: layer %d", l);
        }
    }

    return slora_cuda_logits(c, st, err);
}


/*
 * One transformer block over all rows of the step, as in the CPU
 * backend: on entry h holds rmsnorm(x) with this layer's attn_norm, on
 * exit x has both residuals added and h the next layer's normed input.
 */

static int
slora_cuda_layer(slora_cuda_t *c, slora_cuda_step_t *st, int32_t l,
    slora_err_t *err)
{
    const slora_model_config_t  *cfg = &c->cfg;
    const slora_cuda_layer_t    *D = &c->layers[l];
    const uint16_t              *next_norm;
    uint16_t                    *x, *h, *qkv, *k, *v, *att, *o, *g, *u, *kv;
    slora_cuda_lora_out_t        out[3];
    slora_cuda_lora_call_t       lc;
    int32_t                      n, hidden, ffn;
    int64_t                      ld;
    int                          rc, layout;

    n = st->batch->n_tokens;
    hidden = cfg->hidden;
    ffn = cfg->ffn;
    ld = c->qkv_dim;
    x = c->x.p;
    h = c->h.p;
    qkv = c->qkv.p;
    k = qkv + c->q_dim;
    v = k + c->kv_dim;
    att = c->att.p;
    o = c->o.p;
    g = c->gu.p;
    u = g + ffn;
    kv = c->arena + st->layer_off[l];
    lc.out = out;
    lc.l = l;
    lc.delta = NULL;

    /* attention */

    out[0].p = SLORA_PROJ_Q;
    out[0].y = qkv;
    out[1].p = SLORA_PROJ_K;
    out[1].y = k;
    out[2].p = SLORA_PROJ_V;
    out[2].y = v;
    out[0].ld_y = out[1].ld_y = out[2].ld_y = ld;
    lc.n_out = 3;
    lc.x = h;
    lc.ld_x = hidden;
    /* slora_rope_store_cuda's deltas; not where the heads are normed
     * first (Qwen3): the norm reads the rows with LoRA's part in them */
    lc.may_delta = cfg->head_dim % 16 == 0 && D->q_norm == NULL;

    if (slora_cuda_lora_shrink(c, st, &lc, err) != SLORA_OK
        || slora_cuda_linear(c, lc.forked, qkv, ld, h, hidden, D->wqkv,
                             D->bqkv, c->qkv_dim, hidden, n, 0, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_GEMM_QKV);

    if (slora_cuda_lora_expand(c, st, &lc, err) != SLORA_OK) {
        return SLORA_ERROR;
    }

    /* Qwen3: each head of q and k RMS-normed before RoPE */
    if (D->q_norm != NULL
        && (slora_head_rmsnorm_cuda(qkv, ld, n, cfg->n_heads, cfg->head_dim,
                                    D->q_norm, cfg->norm_eps, c->stream)
            != 0
            || slora_head_rmsnorm_cuda(k, ld, n, cfg->n_kv_heads,
                                       cfg->head_dim, D->k_norm,
                                       cfg->norm_eps, c->stream)
               != 0))
    {
        return slora_err_set(err, SLORA_ERROR, "q and k head norms "
                             "refused");
    }

    /* RoPE and the new rows' K and V (LoRA's deltas added) into their
     * pages in one launch, or two where the rows do not allow it (-2) */
    layout = cfg->rope == SLORA_ROPE_NEOX ? SLORA_ROPE_LAYOUT_NEOX
                                          : SLORA_ROPE_LAYOUT_NORM;
    rc = slora_rope_store_cuda(qkv, ld, k, ld, v, ld, st->pos, n,
                               cfg->n_heads, cfg->n_kv_heads, cfg->head_dim,
                               c->rope.p, layout, kv, st->page_elems,
                               st->tokens_per_page, &st->ix, lc.delta, ld,
                               c->stream);

    if (rc == -2 && lc.delta == NULL) {
        rc = slora_rope_cuda(qkv, ld, k, ld, st->pos, n, cfg->n_heads,
                             cfg->n_kv_heads, cfg->head_dim, c->rope.p,
                             layout, c->stream);

        if (rc == 0) {
            rc = slora_kv_store_cuda(kv, st->page_elems, st->tokens_per_page,
                                     cfg->n_kv_heads, cfg->head_dim, &st->ix,
                                     st->info.max_q_len, k, ld, v, ld,
                                     c->stream);
        }
    }

    if (rc != 0) {
        return slora_err_set(err, SLORA_ERROR, "rope and paged kv store "
                             "refused");
    }

    slora_cuda_mark(c, SLORA_OP_ROPE_KV);

    /* decode rows split the context (flash-decoding), prefill chunks go
     * to the tiled kernel; a shape the decode kernel does not take (-2)
     * sends every row to the tiled kernel */
    rc = slora_attention_decode_cuda(att, c->q_dim, qkv, ld, cfg->n_heads,
                                     kv, st->page_elems, st->tokens_per_page,
                                     cfg->n_kv_heads, cfg->head_dim, &st->ix,
                                     st->info.max_ctx, st->info.dec_ctx,
                                     c->attn_work.p, c->attn_work.cap,
                                     c->stream);

    if (rc == -2) {
        rc = slora_attention_cuda(att, c->q_dim, qkv, ld, cfg->n_heads, kv,
                                  st->page_elems, st->tokens_per_page,
                                  cfg->n_kv_heads, cfg->head_dim, &st->ix,
                                  st->info.max_q_len, c->stream);

    } else if (rc == 0 && st->info.max_q_len > 1) {
        rc = slora_attention_prefill_cuda(att, c->q_dim, qkv, ld,
                                          cfg->n_heads, kv, st->page_elems,
                                          st->tokens_per_page,
                                          cfg->n_kv_heads, cfg->head_dim,
                                          &st->ix, st->info.max_q_len,
                                          c->stream);
    }

    if (rc != 0) {
        return slora_err_set(err, SLORA_ERROR, "paged attention refused");
    }

    slora_cuda_mark(c, SLORA_OP_ATTENTION);

    out[0].p = SLORA_PROJ_O;
    out[0].y = o;
    out[0].ld_y = hidden;
    lc.n_out = 1;
    lc.x = att;
    lc.ld_x = c->q_dim;
    lc.may_delta = 1;                           /* the norm adds it */

    if (slora_cuda_lora_shrink(c, st, &lc, err) != SLORA_OK
        || slora_cuda_linear(c, lc.forked, o, hidden, att, c->q_dim, D->wo,
                             NULL, hidden, c->q_dim, n, 0, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_GEMM_O);

    if (slora_cuda_lora_expand(c, st, &lc, err) != SLORA_OK
        || slora_cuda_sum(c, o, n, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    if (slora_add_rmsnorm_cuda(h, hidden, x, hidden, o, hidden, lc.delta,
                               hidden, D->ffn_norm, n, hidden, cfg->norm_eps,
                               c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "rmsnorm refused");
    }

    slora_cuda_mark(c, SLORA_OP_NORM);

    /* MLP */

    out[0].p = SLORA_PROJ_GATE;
    out[0].y = g;
    out[1].p = SLORA_PROJ_UP;
    out[1].y = u;
    out[0].ld_y = out[1].ld_y = 2 * (int64_t) ffn;
    lc.n_out = 2;
    lc.x = h;
    lc.ld_x = hidden;
    lc.may_delta = 0;                           /* SiLU-and-mul adds none */

    /* without LoRA on them, gate, up and SiLU-and-mul in one launch
     * where the GEMM's kernel takes them (slora_cuda_gemm_glu) */
    rc = slora_cuda_lora_wanted(st, &lc)
         ? SLORA_DECLINED
         : slora_cuda_glu(c, g, 2 * (int64_t) ffn, h, hidden, D->wgu, ffn,
                          hidden, n, err);

    if (rc == SLORA_ERROR) {
        return SLORA_ERROR;
    }

    if (rc == SLORA_OK) {
        slora_cuda_mark(c, SLORA_OP_GEMM_GU);

    } else {
        if (slora_cuda_lora_shrink(c, st, &lc, err) != SLORA_OK
            || slora_cuda_linear(c, lc.forked, g, 2 * (int64_t) ffn, h,
                                 hidden, D->wgu, NULL, 2 * ffn, hidden, n, 0,
                                 err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        slora_cuda_mark(c, SLORA_OP_GEMM_GU);

        if (slora_cuda_lora_expand(c, st, &lc, err) != SLORA_OK) {
            return SLORA_ERROR;
        }

        if (slora_silu_mul_cuda(g, 2 * (int64_t) ffn, g, 2 * (int64_t) ffn,
                                u, 2 * (int64_t) ffn, n, ffn, c->stream)
            != 0)
        {
            return slora_err_set(err, SLORA_ERROR, "silu_mul refused");
        }

        slora_cuda_mark(c, SLORA_OP_ACT);
    }

    out[0].p = SLORA_PROJ_DOWN;
    out[0].y = o;
    out[0].ld_y = hidden;
    lc.n_out = 1;
    lc.x = g;
    lc.ld_x = 2 * (int64_t) ffn;
    lc.may_delta = 1;

    if (slora_cuda_lora_shrink(c, st, &lc, err) != SLORA_OK
        || slora_cuda_linear(c, lc.forked, o, hidden, g, 2 * (int64_t) ffn,
                             D->wdown, NULL, hidden, ffn, n, 0, err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_GEMM_DOWN);

    if (slora_cuda_lora_expand(c, st, &lc, err) != SLORA_OK
        || slora_cuda_sum(c, o, n, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    next_norm = l + 1 < cfg->n_layers ? c->layers[l + 1].attn_norm
                                      : c->out_norm;

    if (slora_add_rmsnorm_cuda(h, hidden, x, hidden, o, hidden, lc.delta,
                               hidden, next_norm, n, hidden, cfg->norm_eps,
                               c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "rmsnorm refused");
    }

    slora_cuda_mark(c, SLORA_OP_NORM);

    return SLORA_OK;
}


/* silu(x W_gate^T) * (x W_up^T) into y[n, ffn] where the fused kernel
 * takes the shape (slora_cuda_gemm_glu), else SLORA_DECLINED */

static int
slora_cuda_glu(slora_cuda_t *c, uint16_t *y, int64_t ld_y, const uint16_t *x,
    int64_t ld_x, const uint16_t *w, int32_t ffn, int32_t in, int32_t n,
    slora_err_t *err)
{
    slora_cuda_gemm_shape_t  s;

    memset(&s, 0, sizeof(s));
    s.out = ffn;
    s.n = n;
    s.in = in;
    s.ld_x = ld_x;
    s.ld_y = ld_y;

    return slora_cuda_gemm_glu(c->gemm, &s, y, x, w, c->stream, err);
}


static int
slora_cuda_linear(slora_cuda_t *c, int beside, void *y, int64_t ld_y,
    const uint16_t *x, int64_t ld_x, const uint16_t *w, const uint16_t *bias,
    int32_t out, int32_t in, int32_t n, int f32_out, slora_err_t *err)
{
    slora_cuda_gemm_shape_t  s;

    memset(&s, 0, sizeof(s));
    s.out = out;
    s.n = n;
    s.in = in;
    s.f32_out = f32_out;
    s.ld_x = ld_x;
    s.ld_y = ld_y;
    s.bias = bias != NULL;
    s.beside = beside;

    return slora_cuda_gemm(c->gemm, &s, y, x, w, bias, c->stream, err);
}


/* The partial outputs of o and down, [n, hidden], summed over ranks. */

static int
slora_cuda_sum(slora_cuda_t *c, uint16_t *y, int32_t n, slora_err_t *err)
{
    if (c->tp_n == 1) {
        return SLORA_OK;
    }

    if (slora_cuda_allreduce(c, y, (int64_t) n * c->cfg.hidden, 0, err)
        != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    slora_cuda_mark(c, SLORA_OP_COMM);

    return SLORA_OK;
}


/*
 * The rows of every sequence that wants logits (its last token's, or a
 * prompt's every token's: slora_batch_seq_t.n_rows) are gathered (the
 * embedding kernel over h), multiplied by the output matrix in fp32, and
 * either its id (the argmax, or the draw of a sampled row) or the whole
 * row comes back to the host.
 */

static int
slora_cuda_logits(slora_cuda_t *c, slora_cuda_step_t *st, slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    int32_t               m, hidden, vocab;

    m = st->info.n_logits;
    hidden = c->cfg.hidden;
    vocab = c->cfg.vocab;

    /* every rank's h is the same after the last sum: rank 0 answers */
    if (m == 0 || c->tp_rank != 0) {
        return SLORA_OK;
    }

    if (slora_embed_cuda(c->lx.p, hidden, c->h.p, bt->n_tokens, hidden,
                         st->lidx, m, NULL, c->stream)
        != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: logits gather "
                             "refused");
    }

    if (slora_cuda_linear(c, 0, c->lout.p, vocab, c->lx.p, hidden, c->output,
                          NULL, vocab, hidden, m, 1, err)
        != SLORA_OK)
    {
        return slora_err_prefix(err, "cuda backend: logits");
    }

    if (bt->ids != NULL
        && slora_argmax_rows_cuda(c->ids.p, c->lout.p, vocab, m, vocab,
                                  c->stream)
           != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: argmax "
                             "refused");
    }

    /* the sampled rows' draws over the greedy ids (slora_sample.h) */
    if (st->draws != NULL
        && slora_sample_rows_cuda(c->ids.p, c->lout.p, vocab, vocab,
                                  st->draws, m, c->stream)
           != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: sampling "
                             "refused");
    }

    /* a prompt's rows scored where they are (slora_score.h) */
    if (st->score_tok != NULL
        && slora_score_rows_cuda(c->scores.p, c->lout.p, vocab, vocab,
                                 st->score_tok, m, bt->score_k, c->stream)
           != 0)
    {
        return slora_err_set(err, SLORA_ERROR, "cuda backend: scores "
                             "refused");
    }

    return SLORA_OK;
}


/*
 * The step's end: wait for the device, and keep how long its work took
 * from the first launch after the indices to the last copy back
 * (device_ns), so that the host's share of a step can be read off.
 */

static int
slora_cuda_step_sync(slora_cuda_t *c, slora_err_t *err)
{
    float  ms;

    if (slora_cuda_check(cudaEventRecord(c->busy[1], c->stream), "step event",
                         err)
        != SLORA_OK
        || slora_cuda_step_wait(c, err) != SLORA_OK
        || slora_cuda_check(cudaEventElapsedTime(&ms, c->busy[0],
                                                 c->busy[1]),
                            "step event", err)
           != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    c->device_ns = (int64_t) ((double) ms * 1e6);

    return SLORA_OK;
}


/*
 * The host's wait for the step's device work (busy[1]). A rank with a
 * GPU of its own may wait there for a peer's part of a sum that never
 * comes, the peer having failed between the step's meeting and its sum
 * (or its GPU having failed): a NCCL kernel waits for ever, the one-shot
 * kernel traps after seconds. So it polls, and gives up once a peer
 * has broken the ranks' meeting, and the engine can exit instead of
 * hanging. Ranks that share a GPU only ever wait for finite work
 * (slora_cuda_tp.c), as one GPU does.
 */

static int
slora_cuda_step_wait(slora_cuda_t *c, slora_err_t *err)
{
    cudaError_t  rc;

    if (c->comm.meet == NULL || c->comm.share != NULL) {
        return slora_cuda_check(cudaStreamSynchronize(c->stream), "step",
                                err);
    }

    while ((rc = cudaEventQuery(c->busy[1])) == cudaErrorNotReady) {
        (void) cudaGetLastError();          /* not ready is no error */

        if (slora_meet_broken(c->comm.meet)) {
            (void) slora_err_set(err, SLORA_DECLINED, "cuda backend: rank "
                                 "%d: another rank failed in the middle "
                                 "of the step", c->tp_rank);
            return SLORA_ERROR;
        }
    }

    return slora_cuda_check(rc, "step", err);
}


/* The step's results back to the host: the argmax ids, and the logits
 * rows that host_rows names (copied straight into the batch's rows); or
 * every logits row. Each into its batch row. */

static int
slora_cuda_finish(slora_cuda_t *c, slora_cuda_step_t *st, slora_err_t *err)
{
    const slora_batch_t  *bt = st->batch;
    int32_t               m, i, j, vocab, *ids;
    float                *rows;

    m = st->info.n_logits;
    vocab = c->cfg.vocab;

    if (m == 0 || c->tp_rank != 0) {
        return slora_cuda_step_sync(c, err);
    }

    if (bt->ids != NULL) {
        if (slora_cuda_check(cudaMemcpyAsync(c->ids_host.p, c->ids.p,
                                                (size_t) m * sizeof(int32_t),
                                                cudaMemcpyDeviceToHost,
                                                c->stream),
                                "argmax", err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        /* the host's rows straight into the batch's (the engine keeps
         * them in this backend's pinned memory), neighbours in one copy */
        for (i = 0; bt->host_rows != NULL && i < m; i = j) {
            for (j = i; j < m && bt->host_rows[st->lrow[j]]
                        && st->lrow[j] == st->lrow[i] + (j - i);
                 j++)
            {
                /* void */
            }

            if (j == i) {
                j++;
                continue;
            }

            if (slora_cuda_check(cudaMemcpyAsync(
                                     bt->logits
                                     + (int64_t) st->lrow[i] * vocab,
                                     (float *) c->lout.p
                                     + (int64_t) i * vocab,
                                     (size_t) (j - i) * vocab
                                     * sizeof(float),
                                     cudaMemcpyDeviceToHost, c->stream),
                                 "logits rows", err)
                != SLORA_OK)
            {
                return SLORA_ERROR;
            }
        }

        if (bt->score_tok != NULL
            && slora_cuda_check(cudaMemcpyAsync(c->scores_host.p,
                                                c->scores.p,
                                                (size_t) m
                                                * sizeof(slora_score_t),
                                                cudaMemcpyDeviceToHost,
                                                c->stream),
                                "scores", err)
               != SLORA_OK)
        {
            return SLORA_ERROR;
        }

        if (slora_cuda_step_sync(c, err) != SLORA_OK) {
            return SLORA_ERROR;
        }

        ids = c->ids_host.p;

        for (i = 0; i < m; i++) {
            bt->ids[st->lrow[i]] = ids[i];

            if (bt->score_tok != NULL && bt->score_tok[st->lrow[i]] >= 0) {
                bt->scores[st->lrow[i]] =
                    ((slora_score_t *) c->scores_host.p)[i];
            }
        }

        return SLORA_OK;
    }

    if (slora_cuda_check(cudaMemcpyAsync(c->lout_host.p, c->lout.p,
                                         (size_t) m * vocab * sizeof(float),
                                         cudaMemcpyDeviceToHost, c->stream),
                         "logits", err)
        != SLORA_OK
        || slora_cuda_step_sync(c, err) != SLORA_OK)
    {
        return SLORA_ERROR;
    }

    rows = c->lout_host.p;

    if (st->info.direct) {
        memcpy(bt->logits, rows, (size_t) m * vocab * sizeof(float));
        return SLORA_OK;
    }

    for (i = 0; i < m; i++) {
        memcpy(bt->logits + (int64_t) st->lrow[i] * vocab,
               rows + (int64_t) i * vocab, (size_t) vocab * sizeof(float));
    }

    return SLORA_OK;
}


static void
slora_cuda_free(slora_backend_t *b)
{
    if (b == NULL) {
        return;
    }

    if (b->host_mem.ctx != NULL) {
        slora_cuda_host_done(b->host_mem.ctx);
        free(b->host_mem.ctx);
    }

    slora_cuda_rank_free(b->data);
    free(b);
}


void
slora_cuda_rank_free(slora_cuda_t *c)
{
    int32_t  i;

    if (c != NULL) {
        cudaSetDevice(c->device);

        if (c->stream != NULL) {
            cudaStreamSynchronize(c->stream);
        }

        if (c->upload != NULL) {
            cudaStreamSynchronize(c->upload);
        }

        for (i = 0; i < c->n_allocs; i++) {
            cudaFree(c->allocs[i]);
        }

        free(c->allocs);
        free(c->layers);
        cudaFree(c->arena);
        cudaFree(c->stage);

        if (c->stage_host != NULL) {
            cudaFreeHost(c->stage_host);
        }

        slora_cuda_buf_free(&c->x, 0);
        slora_cuda_buf_free(&c->h, 0);
        slora_cuda_buf_free(&c->qkv, 0);
        slora_cuda_buf_free(&c->att, 0);
        slora_cuda_buf_free(&c->o, 0);
        slora_cuda_buf_free(&c->gu, 0);
        slora_cuda_buf_free(&c->lora_work, 0);
        slora_cuda_buf_free(&c->lora_delta, 0);
        slora_cuda_buf_free(&c->attn_work, 0);
        slora_cuda_buf_free(&c->lx, 0);
        slora_cuda_buf_free(&c->lout, 0);
        slora_cuda_buf_free(&c->ids, 0);
        slora_cuda_buf_free(&c->ix, 0);
        slora_cuda_buf_free(&c->rope, 0);
        slora_cuda_buf_free(&c->ix_host, 1);
        free(c->seg_lora.p);
        free(c->lora_tab.p);
        slora_cuda_buf_free(&c->lout_host, 1);
        slora_cuda_buf_free(&c->ids_host, 1);
        slora_cuda_buf_free(&c->scores, 0);
        slora_cuda_buf_free(&c->scores_host, 1);

        slora_cuda_gemm_free(c->gemm);

        if (c->upload != NULL) {
            cudaStreamDestroy(c->upload);
        }

        if (c->uploaded != NULL) {
            cudaEventDestroy(c->uploaded);
        }

        if (c->written != NULL) {
            cudaEventDestroy(c->written);
        }

        if (c->stream != NULL) {
            cudaStreamDestroy(c->stream);
        }

        if (c->side != NULL) {
            cudaStreamDestroy(c->side);
        }

        if (c->fork != NULL) {
            cudaEventDestroy(c->fork);
        }

        if (c->join != NULL) {
            cudaEventDestroy(c->join);
        }

        for (i = 0; i < 2; i++) {
            if (c->busy[i] != NULL) {
                cudaEventDestroy(c->busy[i]);
            }
        }

        slora_cuda_graphs_drop(c);

        if (c->prof != NULL) {
            slora_cuda_prof_print(c);
            for (i = 0; i < SLORA_CUDA_MARKS; i++) {
                cudaEventDestroy(c->prof->ev[i]);
            }
            free(c->prof);
        }

        pthread_mutex_destroy(&c->upload_lock);
        free(c);
    }
}
